/* Tests for webhook/wh_policy (and its internal wh_psa): the fixtures in
 * tests/fixtures/policy (every controller kind, NetworkPolicy selection,
 * worker checks), PSA precedence rules, message format, configuration, and
 * malformed objects (which must give -EINVAL with a message, never crash). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "cf_yaml.h"
#include "wh_policy.h"

#define FIXTURES "tests/fixtures/policy"

static char err[512];

static cJSON *yaml(const char *text)
{
	cf_yaml_docs d;
	int rc = cf_yaml_parse(text, strlen(text), &d, err, sizeof err);
	cr_assert_eq(rc, 0, "yaml: %s", err);
	cJSON *doc = cJSON_DetachItemFromArray(d.docs, 0);
	cf_yaml_docs_free(&d);
	return doc;
}

/* Evaluates `text` (one object); asserts rc; returns the result. */
static wh_result eval_cfg(const wh_policy_config *cfg, wh_profile p, const char *text,
                          const wh_netpol_set *np, int want_rc)
{
	cJSON *o = yaml(text);
	wh_result r;
	wh_result_init(&r);
	err[0] = '\0';
	int rc = wh_policy_evaluate(cfg, p, o, NULL, np, &r, err, sizeof err);
	cr_assert_eq(rc, want_rc, "rc %d (want %d): %s", rc, want_rc, err);
	if (want_rc)
		cr_assert_neq(err[0], '\0', "an error carries a message");
	cJSON_Delete(o);
	return r;
}

static wh_result eval(wh_profile p, const char *text)
{
	return eval_cfg(NULL, p, text, NULL, 0);
}

static size_t count(const wh_result *r, const char *check)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_violations; i++)
		n += !strcmp(r->violations[i].check, check);
	return n;
}

static const wh_violation *find(const wh_result *r, const char *check)
{
	for (size_t i = 0; i < r->n_violations; i++)
		if (!strcmp(r->violations[i].check, check))
			return &r->violations[i];
	return NULL;
}

/* A restricted-compliant pod; tests append fields to it. */
#define POD_HEAD "kind: Pod\nmetadata: {name: p, namespace: ci, labels: {app: w}}\nspec:\n"
#define GOOD_SC                                                                                    \
	"{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: "    \
	"[ALL]}}"
#define GOOD_POD                                                                                   \
	POD_HEAD                                                                                   \
	"  automountServiceAccountToken: false\n"                                                  \
	"  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n"        \
	"  containers:\n  - name: runner\n    securityContext: " GOOD_SC "\n"                      \
	"    resources: {limits: {cpu: 500m, memory: 1Gi}}\n"

/* ---------------------------------------------------------------------- */
/* Fixtures: "# expect: a, b" (or none), "# profile: X", "# warnings: N"   */
/* ---------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool header_value(const char *text, const char *key, char *out, size_t outlen)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\n# %s:", key);
	const char *p = strstr(text, pat);
	if (!p && !strncmp(text, pat + 1, strlen(pat + 1)))
		p = text - 1;
	if (!p)
		return false;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	size_t n = strcspn(p, "\n");
	snprintf(out, outlen, "%.*s", (int)n, p);
	return true;
}

/* Does the comma-separated list contain `id`? */
static bool list_has(const char *list, const char *id)
{
	size_t l = strlen(id);
	for (const char *p = list; (p = strstr(p, id)); p += l) {
		bool start = p == list || p[-1] == ' ' || p[-1] == ',';
		bool end = p[l] == '\0' || p[l] == ',' || p[l] == ' ';
		if (start && end)
			return true;
	}
	return false;
}

static bool run_fixture(const char *name)
{
	char path[512], expect[512] = "", prof[64] = "worker", warn[16] = "0";
	snprintf(path, sizeof path, "%s/%s", FIXTURES, name);
	cf_buf buf;
	cr_assert_eq(cf_read_file(path, CF_MAX_INPUT_FILE_BYTES, &buf, err, sizeof err), 0, "%s",
	             err);
	cr_assert(header_value(buf.data, "expect", expect, sizeof expect), "%s: no expect", name);
	header_value(buf.data, "profile", prof, sizeof prof);
	header_value(buf.data, "warnings", warn, sizeof warn);
	wh_profile p;
	cr_assert_eq(wh_profile_parse(prof, &p), 0, "%s: profile %s", name, prof);
	cf_yaml_docs d;
	cr_assert_eq(cf_yaml_parse(buf.data, buf.len, &d, err, sizeof err), 0, "%s: %s", name, err);
	wh_netpol_set *np = wh_netpol_set_new();
	const cJSON *doc;
	cJSON_ArrayForEach(doc, d.docs)
	{
		const cJSON *k = cJSON_GetObjectItem(doc, "kind");
		if (cJSON_IsString(k) && !strcmp(k->valuestring, "NetworkPolicy"))
			cr_assert_eq(wh_netpol_set_add(np, doc, err, sizeof err), 0, "%s: %s", name,
			             err);
	}
	wh_result r;
	wh_result_init(&r);
	size_t workloads = 0;
	cJSON_ArrayForEach(doc, d.docs)
	{
		const cJSON *k = cJSON_GetObjectItem(doc, "kind");
		if (!cJSON_IsString(k) || !wh_policy_is_workload_kind(k->valuestring))
			continue;
		workloads++;
		cr_assert_eq(wh_policy_evaluate(NULL, p, doc, NULL, np, &r, err, sizeof err), 0,
		             "%s: %s", name, err);
	}
	cr_assert_gt(workloads, 0, "%s has no workload", name);
	bool ok = true;
	for (size_t i = 0; i < r.n_violations; i++) {
		if (!list_has(expect, r.violations[i].check)) {
			cr_log_error("%s: unexpected %s", name, r.violations[i].message);
			ok = false;
		}
	}
	/* every expected id must appear */
	char copy[512];
	snprintf(copy, sizeof copy, "%s", expect);
	for (char *save = NULL, *id = strtok_r(copy, ", ", &save); id;
	     id = strtok_r(NULL, ", ", &save)) {
		if (!strcmp(id, "none"))
			continue;
		bool seen = false;
		for (size_t i = 0; i < r.n_violations; i++)
			seen |= !strcmp(r.violations[i].check, id);
		if (!seen) {
			cr_log_error("%s: expected a [%s] violation", name, id);
			ok = false;
		}
	}
	long want_warn = strtol(warn, NULL, 10);
	if ((long)r.n_warnings != want_warn) {
		cr_log_error("%s: %zu warnings, expected %ld", name, r.n_warnings, want_warn);
		ok = false;
	}
	wh_result_free(&r);
	wh_netpol_set_unref(np);
	cf_yaml_docs_free(&d);
	cf_buf_free(&buf);
	return ok;
}

static void run_fixtures(const char *prefix, const char *suffix, size_t min)
{
	DIR *dir = opendir(FIXTURES);
	cr_assert_not_null(dir, "run from the repository root");
	char *names[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(dir)) && n < 256) {
		size_t l = strlen(e->d_name), sl = strlen(suffix);
		if (!strncmp(e->d_name, prefix, strlen(prefix)) && l > sl &&
		    !strcmp(e->d_name + l - sl, suffix))
			names[n++] = strdup(e->d_name);
	}
	closedir(dir);
	qsort(names, n, sizeof names[0], cmp_names);
	size_t good = 0;
	for (size_t i = 0; i < n; i++) {
		good += run_fixture(names[i]);
		free(names[i]);
	}
	cr_assert_geq(n, min, "expected at least %zu fixtures %s*%s, found %zu", min, prefix,
	              suffix, n);
	cr_assert_eq(good, n, "%zu of %zu fixtures %s*%s agree", good, n, prefix, suffix);
}

Test(wh_policy_fixtures, every_controller_kind_passes_when_compliant)
{
	run_fixtures("kind-", "-pass.yaml", 9);
}

Test(wh_policy_fixtures, every_controller_kind_fails_through_its_template)
{
	run_fixtures("kind-", "-fail.yaml", 9);
}

Test(wh_policy_fixtures, netpol_selection_that_covers)
{
	run_fixtures("netpol-", "-pass.yaml", 7);
	run_fixtures("netpol-", "-warn.yaml", 1);
}

Test(wh_policy_fixtures, netpol_selection_that_does_not_cover)
{
	run_fixtures("netpol-", "-fail.yaml", 8);
}

Test(wh_policy_fixtures, worker_checks_pass_cases)
{
	run_fixtures("", "pass.yaml", 22);
}

Test(wh_policy_fixtures, worker_checks_fail_cases)
{
	run_fixtures("", "fail.yaml", 30);
}

/* ---------------------------------------------------------------------- */
/* Messages, paths, order                                                  */
/* ---------------------------------------------------------------------- */

Test(wh_policy, message_format_names_path_container_and_check)
{
	wh_result r = eval(WH_PROFILE_WORKER, POD_HEAD
	                   "  automountServiceAccountToken: false\n"
	                   "  securityContext: {runAsNonRoot: true, seccompProfile: {type: "
	                   "RuntimeDefault}}\n"
	                   "  containers:\n  - name: runner\n    securityContext: "
	                   "{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n"
	                   "    resources: {limits: {cpu: 1, memory: 1Gi}}\n");
	const wh_violation *v = find(&r, "readOnlyRootFilesystem");
	cr_assert_not_null(v);
	cr_assert_str_eq(v->message,
	                 "spec.containers[0].securityContext.readOnlyRootFilesystem "
	                 "must be true (container \"runner\") [readOnlyRootFilesystem]");
	cr_assert_str_eq(v->path, "spec.containers[0].securityContext.readOnlyRootFilesystem");
	cr_assert_str_eq(v->container, "runner");
	const wh_violation *np = find(&r, "networkPolicy");
	cr_assert_not_null(np, "no NetworkPolicy set: not synced is a violation by default");
	cr_assert_null(np->container, "pod-level findings carry no container");
	wh_result_free(&r);
}

Test(wh_policy, all_violations_reported_in_a_stable_order)
{
	const char *pod =
	    POD_HEAD "  hostPID: true\n  hostIPC: true\n  containers:\n"
	             "  - name: a\n  - name: b\n    securityContext: {privileged: true}\n";
	wh_result r1 = eval(WH_PROFILE_RESTRICTED, pod);
	wh_result r2 = eval(WH_PROFILE_RESTRICTED, pod);
	cr_assert_eq(count(&r1, "hostNamespaces"), 2);
	cr_assert_eq(count(&r1, "privileged"), 1);
	cr_assert_eq(count(&r1, "allowPrivilegeEscalation"), 2, "one per container");
	cr_assert_eq(count(&r1, "runAsNonRoot"), 2);
	cr_assert_eq(r1.n_violations, r2.n_violations);
	for (size_t i = 0; i < r1.n_violations; i++)
		cr_assert_str_eq(r1.violations[i].message, r2.violations[i].message);
	cr_assert_str_eq(r1.violations[0].check, "hostNamespaces", "baseline checks come first");
	wh_result_free(&r1);
	wh_result_free(&r2);
}

Test(wh_policy, template_paths_per_kind)
{
	wh_result r = eval(WH_PROFILE_BASELINE,
	                   "kind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n"
	                   "      template:\n        spec:\n          containers:\n"
	                   "          - {name: x, securityContext: {privileged: true}}\n");
	cr_assert_eq(r.n_violations, 1);
	cr_assert_str_eq(
	    r.violations[0].path,
	    "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged");
	wh_result_free(&r);
	r = eval(WH_PROFILE_BASELINE, "kind: PodTemplate\nmetadata: {name: t}\ntemplate:\n"
	                              "  metadata: {annotations: {container.apparmor.security.beta."
	                              "kubernetes.io/x: unconfined}}\n"
	                              "  spec: {containers: [{name: x}]}\n");
	cr_assert_eq(r.n_violations, 1);
	cr_assert(strstr(r.violations[0].path, "template.metadata.annotations[") ==
	              r.violations[0].path,
	          "%s", r.violations[0].path);
	wh_result_free(&r);
}

Test(wh_policy, find_pod_spec_for_every_kind)
{
	static const char *const k[] = {"ReplicationController", "ReplicaSet", "Deployment",
	                                "StatefulSet",           "DaemonSet",  "Job"};
	char text[256];
	for (size_t i = 0; i < 6; i++) {
		snprintf(text, sizeof text,
		         "kind: %s\nspec: {template: {metadata: {labels: {a: b}}, spec: {x: 1}}}",
		         k[i]);
		cJSON *o = yaml(text);
		const cJSON *md;
		const char *path;
		const cJSON *s = wh_policy_find_pod_spec(o, &md, &path);
		cr_assert_not_null(s, "%s", k[i]);
		cr_assert_str_eq(path, "spec.template.spec");
		cr_assert_not_null(cJSON_GetObjectItem(md, "labels"));
		cr_assert(wh_policy_is_workload_kind(k[i]));
		cJSON_Delete(o);
	}
	cJSON *o = yaml("kind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n");
	const char *path;
	const cJSON *md;
	cr_assert_not_null(wh_policy_find_pod_spec(o, &md, &path));
	cr_assert_str_eq(path, "spec");
	cr_assert_str_eq(cJSON_GetObjectItem(md, "name")->valuestring, "p");
	cJSON_Delete(o);
}

/* ---------------------------------------------------------------------- */
/* PSA precedence and exemptions                                           */
/* ---------------------------------------------------------------------- */

Test(wh_policy, run_as_non_root_container_overrides_pod)
{
	wh_result r = eval(WH_PROFILE_RESTRICTED, GOOD_POD);
	cr_assert_eq(r.n_violations, 0, "%s", r.n_violations ? r.violations[0].message : "");
	wh_result_free(&r);
	/* pod unset, container true */
	r = eval(WH_PROFILE_RESTRICTED,
	         POD_HEAD "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n"
	                  "  containers:\n  - name: a\n    securityContext: {runAsNonRoot: true, "
	                  "allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n");
	cr_assert_eq(count(&r, "runAsNonRoot"), 0);
	wh_result_free(&r);
	/* pod false, container true: the pod-level false is itself a violation */
	r = eval(WH_PROFILE_RESTRICTED,
	         POD_HEAD "  securityContext: {runAsNonRoot: false, seccompProfile: {type: "
	                  "RuntimeDefault}}\n"
	                  "  containers:\n  - name: a\n    securityContext: {runAsNonRoot: true, "
	                  "allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n");
	cr_assert_eq(count(&r, "runAsNonRoot"), 1);
	cr_assert_null(find(&r, "runAsNonRoot")->container);
	wh_result_free(&r);
}

Test(wh_policy, run_as_user_zero_at_either_level)
{
	wh_result r = eval(WH_PROFILE_RESTRICTED, POD_HEAD
	                   "  securityContext: {runAsNonRoot: true, runAsUser: 0, "
	                   "seccompProfile: {type: RuntimeDefault}}\n"
	                   "  containers:\n  - name: a\n    securityContext: {runAsUser: 0, "
	                   "allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n"
	                   "  - name: b\n    securityContext: {runAsUser: 1000, "
	                   "allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n");
	cr_assert_eq(count(&r, "runAsUser"), 2);
	cr_assert_eq(r.n_violations, 2);
	wh_result_free(&r);
}

Test(wh_policy, seccomp_pod_level_satisfies_unless_container_overrides)
{
	wh_result r = eval(WH_PROFILE_RESTRICTED, POD_HEAD
	                   "  securityContext: {runAsNonRoot: true, seccompProfile: {type: "
	                   "Localhost, localhostProfile: x.json}}\n"
	                   "  containers:\n  - name: a\n    securityContext: " GOOD_SC "\n"
	                   "  - name: b\n    securityContext: {allowPrivilegeEscalation: false, "
	                   "capabilities: {drop: [ALL]}, seccompProfile: {type: Unconfined}}\n");
	cr_assert_eq(count(&r, "seccompProfile_restricted"), 1);
	cr_assert_str_eq(find(&r, "seccompProfile_restricted")->container, "b");
	cr_assert_eq(count(&r, "seccompProfile_baseline"), 1);
	wh_result_free(&r);
	/* no pod profile: only the container that sets none fails */
	r = eval(WH_PROFILE_RESTRICTED,
	         POD_HEAD "  securityContext: {runAsNonRoot: true}\n"
	                  "  containers:\n  - name: a\n    securityContext: " GOOD_SC "\n"
	                  "  - name: b\n    securityContext: {allowPrivilegeEscalation: false, "
	                  "capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}\n");
	cr_assert_eq(count(&r, "seccompProfile_restricted"), 1);
	cr_assert_str_eq(find(&r, "seccompProfile_restricted")->container, "a");
	wh_result_free(&r);
}

Test(wh_policy, capabilities_exact_all_and_allowed_adds)
{
	wh_result r = eval(WH_PROFILE_RESTRICTED, POD_HEAD
	                   "  securityContext: {runAsNonRoot: true, seccompProfile: {type: "
	                   "RuntimeDefault}}\n  containers:\n"
	                   "  - name: a\n    securityContext: {allowPrivilegeEscalation: false, "
	                   "capabilities: {drop: [all, CAP_ALL]}}\n"
	                   "  - name: b\n    securityContext: {allowPrivilegeEscalation: false, "
	                   "capabilities: {drop: [ALL], add: [NET_BIND_SERVICE, CHOWN]}}\n");
	cr_assert_eq(count(&r, "capabilities_restricted"), 2);
	cr_assert_str_eq(r.violations[0].path,
	                 "spec.containers[0].securityContext.capabilities.drop");
	cr_assert_str_eq(r.violations[1].path,
	                 "spec.containers[1].securityContext.capabilities.add[1]");
	cr_assert_eq(count(&r, "capabilities_baseline"), 0, "CHOWN is a baseline default");
	wh_result_free(&r);
}

/* Container paths count past one digit and in every list. */
Test(wh_policy, container_paths_name_the_list_and_index)
{
	char text[4096] = POD_HEAD "  initContainers:\n  - name: i0\n"
	                           "    securityContext: {privileged: true}\n  containers:\n";
	for (int i = 0; i < 12; i++)
		snprintf(text + strlen(text), sizeof text - strlen(text), "  - name: c%d\n%s", i,
		         i == 11 ? "    securityContext: {privileged: true}\n" : "");
	wh_result r = eval(WH_PROFILE_BASELINE, text);
	cr_assert_eq(count(&r, "privileged"), 2);
	cr_assert_str_eq(r.violations[0].path, "spec.initContainers[0].securityContext.privileged");
	cr_assert_str_eq(r.violations[1].path, "spec.containers[11].securityContext.privileged");
	wh_result_free(&r);
}

Test(wh_policy, worker_allowed_capabilities_extend_both_lists)
{
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	cfg.network_policy = false;
	cfg.allowed_capabilities = calloc(1, sizeof(char *));
	cfg.allowed_capabilities[0] = strdup("SYS_PTRACE");
	cfg.n_allowed_capabilities = 1;
	const char *pod =
	    GOOD_POD "  - name: dbg\n    securityContext: {allowPrivilegeEscalation: "
	             "false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL], "
	             "add: [SYS_PTRACE]}}\n    resources: {limits: {cpu: 1, memory: 1}}\n";
	wh_result r = eval_cfg(&cfg, WH_PROFILE_WORKER, pod, NULL, 0);
	cr_assert_eq(r.n_violations, 0, "%s", r.n_violations ? r.violations[0].message : "");
	wh_result_free(&r);
	r = eval_cfg(&cfg, WH_PROFILE_RESTRICTED, pod, NULL, 0);
	cr_assert_eq(count(&r, "capabilities_baseline"), 1, "restricted keeps PSA's lists");
	cr_assert_eq(count(&r, "capabilities_restricted"), 1);
	wh_result_free(&r);
	wh_policy_config_free(&cfg);
}

Test(wh_policy, host_users_false_relaxes_run_as_and_baseline_proc_mount)
{
	const char *pod =
	    POD_HEAD "  hostUsers: false\n  securityContext: {seccompProfile: {type: "
	             "RuntimeDefault}}\n  containers:\n  - name: a\n    "
	             "securityContext: {runAsUser: 0, procMount: Unmasked, "
	             "allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";
	wh_result r = eval(WH_PROFILE_BASELINE, pod);
	cr_assert_eq(r.n_violations, 0);
	wh_result_free(&r);
	r = eval(WH_PROFILE_RESTRICTED, pod);
	cr_assert_eq(count(&r, "runAsNonRoot"), 0);
	cr_assert_eq(count(&r, "runAsUser"), 0);
	cr_assert_eq(count(&r, "procMount_restricted"), 1, "restricted still wants Default");
	cr_assert_eq(r.n_violations, 1);
	wh_result_free(&r);
}

Test(wh_policy, windows_pods_exempt_from_linux_only_checks)
{
	const char *pod =
	    POD_HEAD "  os: {name: windows}\n  securityContext: {runAsNonRoot: true}\n"
	             "  containers:\n  - name: a\n";
	wh_result r = eval(WH_PROFILE_RESTRICTED, pod);
	cr_assert_eq(r.n_violations, 0);
	wh_result_free(&r);
	/* runAsNonRoot still applies to Windows pods */
	r = eval(WH_PROFILE_RESTRICTED,
	         POD_HEAD "  os: {name: windows}\n  containers:\n  - name: a\n");
	cr_assert_eq(count(&r, "runAsNonRoot"), 1);
	cr_assert_eq(r.n_violations, 1);
	wh_result_free(&r);
}

Test(wh_policy, baseline_value_lists)
{
	wh_result r = eval(WH_PROFILE_BASELINE, POD_HEAD
	                   "  securityContext:\n    seLinuxOptions: {type: container_engine_t}\n"
	                   "    sysctls: [{name: net.ipv4.tcp_wmem, value: '4096'}, {name: "
	                   "kernel.msgmax, value: '1'}]\n"
	                   "    appArmorProfile: {type: Localhost, localhostProfile: p}\n"
	                   "  containers:\n  - name: a\n    ports: [{containerPort: 80, hostPort: "
	                   "0}]\n    startupProbe: {httpGet: {host: '', port: 80}}\n"
	                   "    securityContext: {appArmorProfile: {type: Unconfined}, "
	                   "seLinuxOptions: {user: system_u}}\n");
	cr_assert_eq(count(&r, "sysctls"), 1);
	cr_assert(strstr(find(&r, "sysctls")->message, "kernel.msgmax"));
	cr_assert_eq(count(&r, "appArmorProfile"), 1);
	cr_assert_eq(count(&r, "seLinuxOptions"), 1);
	cr_assert_eq(count(&r, "hostPorts"), 0, "hostPort 0 is unset");
	cr_assert_eq(count(&r, "hostProbesAndHostLifecycle"), 0, "an empty host is allowed");
	cr_assert_eq(r.n_violations, 3);
	wh_result_free(&r);
}

Test(wh_policy, restricted_volume_allowlist)
{
	wh_result r = eval(WH_PROFILE_RESTRICTED, GOOD_POD
	                   "  volumes:\n  - {name: a}\n  - {name: b, image: {reference: x}}\n"
	                   "  - {name: c, ephemeral: {volumeClaimTemplate: {spec: {}}}}\n"
	                   "  - {name: d, nfs: {server: s, path: /}}\n"
	                   "  - {name: e, hostPath: {path: /etc}}\n");
	cr_assert_eq(count(&r, "restrictedVolumes"), 2);
	cr_assert_eq(count(&r, "hostPathVolumes"), 1);
	cr_assert_str_eq(find(&r, "restrictedVolumes")->path, "spec.volumes[3].nfs");
	wh_result_free(&r);
}

Test(wh_policy, host_probes_and_lifecycle_hooks)
{
	wh_result r = eval(WH_PROFILE_BASELINE, POD_HEAD
	                   "  initContainers:\n  - name: side\n    restartPolicy: Always\n"
	                   "    lifecycle: {preStop: {tcpSocket: {host: 10.0.0.1, port: 1}}}\n"
	                   "  ephemeralContainers:\n  - name: dbg\n"
	                   "    readinessProbe: {httpGet: {host: example.com, port: 1}}\n"
	                   "  containers: [{name: a}]\n");
	cr_assert_eq(count(&r, "hostProbesAndHostLifecycle"), 2);
	cr_assert_str_eq(r.violations[0].path,
	                 "spec.initContainers[0].lifecycle.preStop.tcpSocket.host");
	cr_assert_str_eq(r.violations[1].path,
	                 "spec.ephemeralContainers[0].readinessProbe.httpGet.host");
	wh_result_free(&r);
}

/* ---------------------------------------------------------------------- */
/* Worker checks and configuration                                        */
/* ---------------------------------------------------------------------- */

static wh_netpol_set *deny_all(const char *ns)
{
	char text[256];
	snprintf(text, sizeof text,
	         "kind: NetworkPolicy\nmetadata: {name: d, namespace: %s}\n"
	         "spec: {podSelector: {}, policyTypes: [Ingress, Egress]}\n",
	         ns);
	cJSON *p = yaml(text);
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(wh_netpol_set_add(s, p, err, sizeof err), 0, "%s", err);
	cJSON_Delete(p);
	return s;
}

Test(wh_policy, compliant_worker_has_no_findings)
{
	wh_netpol_set *np = deny_all("ci");
	wh_result r = eval_cfg(NULL, WH_PROFILE_WORKER, GOOD_POD, np, 0);
	cr_assert_eq(r.n_violations, 0, "%s", r.n_violations ? r.violations[0].message : "");
	cr_assert_eq(r.n_warnings, 0);
	wh_result_free(&r);
	wh_netpol_set_unref(np);
}

Test(wh_policy, default_namespace_applies_to_objects_without_one)
{
	wh_netpol_set *np = deny_all("team");
	cJSON *o =
	    yaml("kind: Pod\nmetadata: {name: p}\nspec: {automountServiceAccountToken: false, "
	         "securityContext: {runAsNonRoot: true, seccompProfile: {type: "
	         "RuntimeDefault}}, containers: [{name: a, securityContext: " GOOD_SC
	         ", resources: {limits: {cpu: 1, memory: 1}}}]}\n");
	wh_result r;
	wh_result_init(&r);
	cr_assert_eq(
	    wh_policy_evaluate(NULL, WH_PROFILE_WORKER, o, "team", np, &r, err, sizeof err), 0);
	cr_assert_eq(r.n_violations, 0);
	cr_assert_eq(wh_policy_evaluate(NULL, WH_PROFILE_WORKER, o, NULL, np, &r, err, sizeof err),
	             0);
	cr_assert_eq(count(&r, "networkPolicy"), 2, "no default namespace: \"default\"");
	cr_assert(strstr(find(&r, "networkPolicy")->message, "\"default\""));
	wh_result_free(&r);
	cJSON_Delete(o);
	wh_netpol_set_unref(np);
}

Test(wh_policy, unsynced_netpol_state_violation_or_warning)
{
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	wh_result r = eval_cfg(&cfg, WH_PROFILE_WORKER, GOOD_POD, NULL, 0);
	cr_assert_eq(count(&r, "networkPolicy"), 1);
	cr_assert(strstr(r.violations[0].message, "not synced"));
	wh_result_free(&r);
	cfg.netpol_unsynced_warn = true;
	r = eval_cfg(&cfg, WH_PROFILE_WORKER, GOOD_POD, NULL, 0);
	cr_assert_eq(r.n_violations, 0);
	cr_assert_eq(r.n_warnings, 1);
	cr_assert(strstr(r.warnings[0], "[networkPolicy]"));
	wh_result_free(&r);
}

Test(wh_policy, limit_maxima_and_ephemeral_storage)
{
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	cfg.network_policy = false;
	cfg.has_max_cpu = true;
	cr_assert_eq(wh_quantity_parse("1", &cfg.max_cpu), 0);
	cfg.has_max_memory = true;
	cr_assert_eq(wh_quantity_parse("1Gi", &cfg.max_memory), 0);
	cfg.require_ephemeral_storage_limit = true;
	wh_result r =
	    eval_cfg(&cfg, WH_PROFILE_WORKER,
	             POD_HEAD "  automountServiceAccountToken: false\n  securityContext: "
	                      "{runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}\n"
	                      "  containers:\n  - name: a\n    securityContext: " GOOD_SC
	                      "\n    resources: {limits: {cpu: 1000m, memory: 1025Mi, "
	                      "ephemeral-storage: 1Gi}}\n"
	                      "  - name: b\n    securityContext: " GOOD_SC
	                      "\n    resources: {limits: {cpu: '1.5', memory: 1Gi}}\n",
	             NULL, 0);
	cr_assert_eq(count(&r, "resourceLimits"), 3, "memory over, cpu over, storage missing");
	cr_assert_str_eq(r.violations[0].path, "spec.containers[1].resources.limits.cpu");
	cr_assert(strstr(r.violations[0].message, "must be at most 1 (is 1.5)"), "%s",
	          r.violations[0].message);
	wh_result_free(&r);
}

Test(wh_policy, seccomp_localhost_when_enabled)
{
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	cfg.network_policy = false;
	cfg.seccomp_localhost = true;
	wh_result r =
	    eval_cfg(&cfg, WH_PROFILE_WORKER,
	             POD_HEAD "  automountServiceAccountToken: false\n  securityContext: "
	                      "{runAsNonRoot: true, seccompProfile: {type: Localhost, "
	                      "localhostProfile: codeframe/worker.json}}\n  containers:\n"
	                      "  - name: a\n    securityContext: " GOOD_SC "\n"
	                      "    resources: {limits: {cpu: 1, memory: 1}}\n"
	                      "  - name: b\n    securityContext: {allowPrivilegeEscalation: "
	                      "false, readOnlyRootFilesystem: true, capabilities: {drop: "
	                      "[ALL]}, seccompProfile: {type: RuntimeDefault}}\n"
	                      "    resources: {limits: {cpu: 1, memory: 1}}\n",
	             NULL, 0);
	cr_assert_eq(r.n_violations, 1);
	cr_assert_str_eq(r.violations[0].check, "seccompLocalhost");
	cr_assert_str_eq(r.violations[0].container, "b");
	wh_result_free(&r);
}

Test(wh_policy, optional_checks_runtime_class_host_users_emptydir)
{
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	cfg.network_policy = false;
	cfg.allowed_runtime_classes = calloc(2, sizeof(char *));
	cfg.allowed_runtime_classes[0] = strdup("gvisor");
	cfg.allowed_runtime_classes[1] = strdup("kata");
	cfg.n_allowed_runtime_classes = 2;
	cfg.require_host_users_false = true;
	cfg.require_emptydir_size_limit = true;
	wh_result r = eval_cfg(&cfg, WH_PROFILE_WORKER,
	                       GOOD_POD "  volumes:\n  - {name: t, emptyDir: {}}\n"
	                                "  - {name: u, emptyDir: {sizeLimit: 1Gi}}\n",
	                       NULL, 0);
	cr_assert_eq(count(&r, "runtimeClass"), 1);
	cr_assert(strstr(find(&r, "runtimeClass")->message, "gvisor, kata"));
	cr_assert_eq(count(&r, "hostUsers"), 1);
	cr_assert_eq(count(&r, "emptyDirSizeLimit"), 1);
	wh_result_free(&r);
	r = eval_cfg(&cfg, WH_PROFILE_WORKER,
	             GOOD_POD "  runtimeClassName: kata\n  hostUsers: false\n"
	                      "  volumes:\n  - {name: u, emptyDir: {sizeLimit: 512Mi}}\n",
	             NULL, 0);
	cr_assert_eq(r.n_violations, 0, "%s", r.n_violations ? r.violations[0].message : "");
	wh_result_free(&r);
	wh_policy_config_free(&cfg);
}

Test(wh_policy, worker_checks_can_be_switched_off)
{
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	cfg.read_only_root_filesystem = false;
	cfg.resource_limits = false;
	cfg.network_policy = false;
	cfg.secrets = false;
	cfg.service_account_token = false;
	wh_result r = eval_cfg(&cfg, WH_PROFILE_WORKER,
	                       POD_HEAD "  securityContext: {runAsNonRoot: true, seccompProfile: "
	                                "{type: RuntimeDefault}}\n  containers:\n  - name: a\n"
	                                "    securityContext: {allowPrivilegeEscalation: false, "
	                                "capabilities: {drop: [ALL]}}\n"
	                                "    envFrom: [{secretRef: {name: s}}]\n",
	                       NULL, 0);
	cr_assert_eq(r.n_violations, 0, "%s", r.n_violations ? r.violations[0].message : "");
	wh_result_free(&r);
}

Test(wh_policy, profile_names_and_config_defaults)
{
	wh_profile p;
	cr_assert_eq(wh_profile_parse("baseline", &p), 0);
	cr_assert_eq(p, WH_PROFILE_BASELINE);
	cr_assert_eq(wh_profile_parse("worker", &p), 0);
	cr_assert_str_eq(wh_profile_name(p), "worker");
	cr_assert_str_eq(wh_profile_name(WH_PROFILE_RESTRICTED), "restricted");
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	cr_assert(cfg.read_only_root_filesystem && cfg.resource_limits && cfg.network_policy &&
	          cfg.secrets && cfg.service_account_token && cfg.require_cpu_limit &&
	          cfg.require_memory_limit);
	cr_assert_not(cfg.seccomp_localhost || cfg.require_ephemeral_storage_limit ||
	              cfg.has_max_cpu || cfg.require_host_users_false || cfg.netpol_unsynced_warn);
	cr_assert_str_eq(cfg.seccomp_localhost_profile, "codeframe/worker.json");
	wh_policy_config_free(&cfg);
	wh_policy_config_free(NULL);
	wh_result_free(NULL);
}

Test(wh_policy, null_fields_mean_unset)
{
	wh_result r = eval(WH_PROFILE_BASELINE,
	                   POD_HEAD "  securityContext: null\n  volumes: null\n  containers:\n"
	                            "  - name: a\n    securityContext: {capabilities: null, "
	                            "privileged: null}\n    ports: null\n");
	cr_assert_eq(r.n_violations, 0);
	wh_result_free(&r);
}

/* ---------------------------------------------------------------------- */
/* Negative cases: malformed objects and bad arguments                     */
/* ---------------------------------------------------------------------- */

static void expect_einval(const char *text, const char *needle)
{
	wh_result r = eval_cfg(NULL, WH_PROFILE_WORKER, text, NULL, -EINVAL);
	cr_assert_eq(r.n_violations, 0);
	if (needle)
		cr_assert(strstr(err, needle), "error \"%s\" should name \"%s\"", err, needle);
	wh_result_free(&r);
}

Test(wh_policy_bad, rejects_non_objects_1)
{
	expect_einval("[1, 2]", "not a Kubernetes object");
}

Test(wh_policy_bad, rejects_non_objects_2)
{
	expect_einval("just a string", "not a Kubernetes object");
}

Test(wh_policy_bad, rejects_non_objects_3)
{
	expect_einval("42", "not a Kubernetes object");
}

Test(wh_policy_bad, rejects_missing_or_unknown_kind_1)
{
	expect_einval("metadata: {name: x}\n", "kind");
}

Test(wh_policy_bad, rejects_missing_or_unknown_kind_2)
{
	expect_einval("kind: 3\n", "kind");
}

Test(wh_policy_bad, rejects_missing_or_unknown_kind_3)
{
	expect_einval("kind: Service\nspec: {}\n", "Service");
}

Test(wh_policy_bad, rejects_missing_or_unknown_kind_4)
{
	expect_einval("kind: List\nitems: []\n", "List");
}

Test(wh_policy_bad, rejects_bad_spec_and_template_1)
{
	expect_einval("kind: Pod\nspec: x\n", "spec: must be an object");
}

Test(wh_policy_bad, rejects_bad_spec_and_template_2)
{
	expect_einval("kind: Pod\n", "spec");
}

Test(wh_policy_bad, rejects_bad_spec_and_template_3)
{
	expect_einval("kind: Deployment\nspec: {template: x}\n", "spec.template");
}

Test(wh_policy_bad, rejects_bad_spec_and_template_4)
{
	expect_einval("kind: CronJob\nspec: {schedule: x}\n", "spec.jobTemplate");
}

Test(wh_policy_bad, rejects_bad_spec_and_template_5)
{
	expect_einval("kind: Job\nspec: {template: {metadata: {}}}\n", "spec.template.spec");
}

Test(wh_policy_bad, rejects_bad_spec_and_template_6)
{
	expect_einval("kind: PodTemplate\ntemplate: [x]\n", "template");
}

Test(wh_policy_bad, rejects_containers_of_the_wrong_type_1)
{
	expect_einval("kind: Pod\nspec: {containers: x}\n", "spec.containers: must be a list");
}

Test(wh_policy_bad, rejects_containers_of_the_wrong_type_2)
{
	expect_einval("kind: Pod\nspec: {containers: [x]}\n", "spec.containers[0]");
}

Test(wh_policy_bad, rejects_containers_of_the_wrong_type_3)
{
	expect_einval("kind: Pod\nspec: {initContainers: {name: a}}\n", "spec.initContainers");
}

Test(wh_policy_bad, rejects_containers_of_the_wrong_type_4)
{
	expect_einval("kind: Pod\nspec: {ephemeralContainers: [null]}\n", "ephemeralContainers[0]");
}

Test(wh_policy_bad, rejects_containers_of_the_wrong_type_5)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: 5}]}\n", "spec.containers[0].name");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_1)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, securityContext: []}]}\n",
	              "spec.containers[0].securityContext");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_2)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, securityContext: {privileged: "
	              "'true'}}]}\n",
	              "privileged: must be a boolean");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_3)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, securityContext: {capabilities: "
	              "{drop: ALL}}}]}\n",
	              "capabilities.drop: must be a list");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_4)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, securityContext: {capabilities: "
	              "{add: [1]}}}]}\n",
	              "capabilities.add[0]");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_5)
{
	expect_einval("kind: Pod\nspec: {securityContext: {runAsUser: '0'}, containers: []}\n",
	              "runAsUser: must be an integer");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_6)
{
	expect_einval("kind: Pod\nspec: {securityContext: {runAsUser: 1.5}, containers: []}\n",
	              "runAsUser");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_7)
{
	expect_einval("kind: Pod\nspec: {securityContext: {seccompProfile: Unconfined}}\n",
	              "seccompProfile");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_8)
{
	expect_einval("kind: Pod\nspec: {securityContext: {sysctls: {name: x}}}\n", "sysctls");
}

Test(wh_policy_bad, rejects_security_context_of_the_wrong_type_9)
{
	expect_einval("kind: Pod\nspec: {hostNetwork: yes}\n", "hostNetwork: must be a boolean");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_1)
{
	expect_einval("kind: Pod\nspec: {volumes: x}\n", "spec.volumes");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_2)
{
	expect_einval("kind: Pod\nspec: {volumes: [{name: a, nfs: server}]}\n", "volumes[0].nfs");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_3)
{
	expect_einval("kind: Pod\nspec: {volumes: [{name: a, projected: {sources: x}}]}\n",
	              "projected.sources");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_4)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, env: {A: b}}]}\n", "env");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_5)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, envFrom: [x]}]}\n", "envFrom[0]");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_6)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, resources: {limits: [1]}}]}\n",
	              "limits");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_7)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, resources: {limits: {cpu: "
	              "{}}}}]}\n",
	              "limits.cpu");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_8)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, ports: [{hostPort: x}]}]}\n",
	              "hostPort");
}

Test(wh_policy_bad, rejects_bad_volumes_env_and_resources_9)
{
	expect_einval("kind: Pod\nspec: {containers: [{name: a, livenessProbe: {httpGet: {host: "
	              "[]}}}]}\n",
	              "livenessProbe.httpGet.host");
}

Test(wh_policy_bad, rejects_bad_metadata_1)
{
	expect_einval("kind: Pod\nmetadata: x\nspec: {}\n", "metadata");
}

Test(wh_policy_bad, rejects_bad_metadata_2)
{
	expect_einval("kind: Pod\nmetadata: {namespace: [a]}\nspec: {}\n", "metadata.namespace");
}

Test(wh_policy_bad, rejects_bad_metadata_3)
{
	expect_einval("kind: Pod\nmetadata: {labels: {a: 1}}\nspec: {}\n", "metadata.labels.a");
}

Test(wh_policy_bad, rejects_bad_metadata_4)
{
	expect_einval("kind: Pod\nmetadata: {annotations: [a]}\nspec: {}\n",
	              "metadata.annotations");
}

Test(wh_policy_bad, rejects_bad_metadata_5)
{
	expect_einval("kind: Deployment\nspec: {template: {metadata: {labels: x}, spec: {}}}\n",
	              "spec.template.metadata.labels");
}

Test(wh_policy_bad, rejects_bad_arguments)
{
	cJSON *o = yaml(GOOD_POD);
	wh_result r;
	wh_result_init(&r);
	cr_assert_eq(
	    wh_policy_evaluate(NULL, WH_PROFILE_WORKER, o, NULL, NULL, NULL, err, sizeof err),
	    -EINVAL);
	cr_assert_eq(wh_policy_evaluate(NULL, (wh_profile)7, o, NULL, NULL, &r, err, sizeof err),
	             -EINVAL);
	cr_assert_eq(
	    wh_policy_evaluate(NULL, WH_PROFILE_WORKER, NULL, NULL, NULL, &r, err, sizeof err),
	    -EINVAL);
	cr_assert_eq(wh_policy_evaluate(NULL, WH_PROFILE_WORKER, NULL, NULL, NULL, &r, NULL, 0),
	             -EINVAL, "no error buffer is fine");
	wh_profile p = WH_PROFILE_WORKER;
	cr_assert_eq(wh_profile_parse("Worker", &p), -EINVAL);
	cr_assert_eq(wh_profile_parse("privileged", &p), -EINVAL);
	cr_assert_eq(wh_profile_parse(NULL, &p), -EINVAL);
	cr_assert_eq(p, WH_PROFILE_WORKER, "unchanged on error");
	cr_assert_null(wh_policy_find_pod_spec(NULL, NULL, NULL));
	cr_assert_not(wh_policy_is_workload_kind("NetworkPolicy"));
	cr_assert_not(wh_policy_is_workload_kind(NULL));
	wh_result_free(&r);
	cJSON_Delete(o);
}

Test(wh_policy_bad, find_pod_spec_rejects_incomplete_templates)
{
	static const char *const bad[] = {
	    "kind: Deployment\nspec: {}\n",
	    "kind: Deployment\nspec: {template: {spec: x}}\n",
	    "kind: CronJob\nspec: {jobTemplate: {spec: {}}}\n",
	    "kind: Pod\n",
	    "kind: Service\nspec: {template: {spec: {}}}\n",
	    "kind: [Pod]\nspec: {}\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cJSON *o = yaml(bad[i]);
		const cJSON *md = (const cJSON *)1;
		const char *path = "x";
		cr_assert_null(wh_policy_find_pod_spec(o, &md, &path), "%s", bad[i]);
		cr_assert_null(md);
		cr_assert_null(path);
		cJSON_Delete(o);
	}
}

Test(wh_policy_bad, deeply_nested_garbage_does_not_crash)
{
	/* 100 nested lists under a field the engine reads */
	char text[1024];
	size_t n = (size_t)snprintf(text, sizeof text, "kind: Pod\nspec: {containers: ");
	for (int i = 0; i < 100; i++)
		text[n++] = '[';
	for (int i = 0; i < 100; i++)
		text[n++] = ']';
	snprintf(text + n, sizeof text - n, "}\n");
	expect_einval(text, "spec.containers[0]");
}

/* ---------------------------------------------------------------------- */
/* Reentrancy: the same inputs evaluated from several threads at once     */
/* ---------------------------------------------------------------------- */

typedef struct thread_job {
	const cJSON *obj;
	const wh_netpol_set *np;
	size_t n_violations, n_warnings;
	char first[512];
	int rc;
} thread_job;

static void *eval_thread(void *arg)
{
	thread_job *j = arg;
	for (int round = 0; round < 200; round++) {
		wh_result r;
		wh_result_init(&r);
		char e[256];
		j->rc = wh_policy_evaluate(NULL, WH_PROFILE_WORKER, j->obj, NULL, j->np, &r, e,
		                           sizeof e);
		j->n_violations = r.n_violations;
		j->n_warnings = r.n_warnings;
		snprintf(j->first, sizeof j->first, "%s",
		         r.n_violations ? r.violations[0].message : "");
		wh_result_free(&r);
		if (j->rc)
			break;
	}
	return NULL;
}

Test(wh_policy, concurrent_evaluations_agree)
{
	cJSON *o = yaml(POD_HEAD "  hostPID: true\n  containers:\n  - name: a\n  - name: b\n");
	wh_netpol_set *np = deny_all("ci");
	thread_job jobs[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		memset(&jobs[i], 0, sizeof jobs[i]);
		jobs[i].obj = o;
		jobs[i].np = np;
		cr_assert_eq(pthread_create(&t[i], NULL, eval_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(jobs[i].rc, 0);
		cr_assert_eq(jobs[i].n_violations, jobs[0].n_violations);
		cr_assert_str_eq(jobs[i].first, jobs[0].first);
	}
	cr_assert_gt(jobs[0].n_violations, 10);
	cr_assert_str_eq(jobs[0].first, "spec.hostPID must not be true [hostNamespaces]");
	wh_netpol_set_unref(np);
	cJSON_Delete(o);
}

/* ---------------------------------------------------------------------- */
/* Robustness: every node of real workloads replaced by every JSON type   */
/* ---------------------------------------------------------------------- */

/* The k-th node in preorder (the root is 0), with its parent. */
static cJSON *nth_node(cJSON *node, cJSON *parent, size_t *k, cJSON **parent_out)
{
	if (*k == 0) {
		*parent_out = parent;
		return node;
	}
	(*k)--;
	cJSON *child;
	cJSON_ArrayForEach(child, node)
	{
		cJSON *hit = nth_node(child, node, k, parent_out);
		if (hit)
			return hit;
	}
	return NULL;
}

static cJSON *replacement(int which)
{
	switch (which) {
	case 0:
		return cJSON_CreateString("x");
	case 1:
		return cJSON_CreateArray();
	case 2:
		return cJSON_CreateNumber(1.5);
	case 3:
		return cJSON_CreateNull();
	case 4:
		return cJSON_CreateObject();
	default:
		return cJSON_CreateTrue();
	}
}

Test(wh_policy_bad, every_node_of_every_type_never_crashes, .timeout = 120)
{
	static const char *const files[] = {
	    "kind-cronjob-fail.yaml",
	    "kind-deployment-pass.yaml",
	    "kind-podtemplate-fail.yaml",
	    "kind-job-pass.yaml",
	    "secrets-projected-fail.yaml",
	    "netpol-allow-all-egress-warn.yaml",
	    "worker-pod-pass.yaml",
	    "ephemeral-writable-root-fail.yaml",
	    "sidecar-without-limits-fail.yaml",
	    "windows-restricted-pass.yaml",
	};
	size_t evaluations = 0, rejected = 0;
	for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
		char path[256];
		snprintf(path, sizeof path, "%s/%s", FIXTURES, files[f]);
		cf_buf buf;
		cr_assert_eq(cf_read_file(path, CF_MAX_INPUT_FILE_BYTES, &buf, err, sizeof err), 0);
		cf_yaml_docs d;
		cr_assert_eq(cf_yaml_parse(buf.data, buf.len, &d, err, sizeof err), 0);
		cJSON *obj = cJSON_GetArrayItem(d.docs, cJSON_GetArraySize(d.docs) - 1);
		for (size_t k = 1;; k++) {
			cJSON *dup = cJSON_Duplicate(obj, 1);
			size_t kk = k;
			cJSON *parent = NULL;
			cJSON *victim = nth_node(dup, NULL, &kk, &parent);
			cJSON_Delete(dup);
			if (!victim)
				break;
			for (int which = 0; which < 6; which++) {
				dup = cJSON_Duplicate(obj, 1);
				kk = k;
				victim = nth_node(dup, NULL, &kk, &parent);
				cJSON_ReplaceItemViaPointer(parent, victim, replacement(which));
				wh_result r;
				wh_result_init(&r);
				err[0] = '\0';
				int rc = wh_policy_evaluate(NULL, WH_PROFILE_WORKER, dup, NULL,
				                            NULL, &r, err, sizeof err);
				cr_assert(rc == 0 || rc == -EINVAL, "rc %d", rc);
				if (rc) {
					cr_assert_neq(err[0], '\0');
					rejected++;
				}
				evaluations++;
				wh_result_free(&r);
				cJSON_Delete(dup);
			}
		}
		cf_yaml_docs_free(&d);
		cf_buf_free(&buf);
	}
	cr_log_info("%zu mutated objects evaluated, %zu rejected as malformed", evaluations,
	            rejected);
	cr_assert_gt(evaluations, 1000);
	cr_assert_gt(rejected, 100, "type errors are caught, not ignored");
}
