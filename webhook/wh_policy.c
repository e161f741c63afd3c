/*
 * wh_policy.c - the pod policy engine (see wh_policy.h): finds the pod
 * template in a workload object, runs the Pod Security Standards checks of
 * the profile (wh_psa.c) and, for the `worker` profile, the worker checks
 * of DESIGN.md ("Webhook").
 *
 * Order of findings (deterministic): baseline checks, restricted checks,
 * then readOnlyRootFilesystem, resourceLimits, networkPolicy, secrets,
 * serviceAccountToken, seccompLocalhost, runtimeClass, hostUsers,
 * emptyDirSizeLimit; within a check, pod-level fields first, then
 * containers in PSA's order (initContainers, containers,
 * ephemeralContainers).
 *
 * Thread-safety: pure and reentrant (no globals, no I/O). Ownership: the
 * caller owns the object, config and result; the result owns its strings.
 */
#include "wh_policy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_json.h"
#include "wh_psa.h"

#define SECRETS_STORE_CSI_DRIVER "secrets-store.csi.k8s.io"

int wh_profile_parse(const char *name, wh_profile *out)
{
	static const char *const names[] = {"baseline", "restricted", "worker"};
	for (int i = 0; name && i < 3; i++) {
		if (!strcmp(name, names[i])) {
			*out = (wh_profile)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *wh_profile_name(wh_profile p)
{
	switch (p) {
	case WH_PROFILE_BASELINE:
		return "baseline";
	case WH_PROFILE_RESTRICTED:
		return "restricted";
	case WH_PROFILE_WORKER:
		return "worker";
	}
	return "unknown";
}

void wh_policy_config_defaults(wh_policy_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->read_only_root_filesystem = true;
	cfg->resource_limits = true;
	cfg->network_policy = true;
	cfg->secrets = true;
	cfg->service_account_token = true;
	cfg->seccomp_localhost = false;
	snprintf(cfg->seccomp_localhost_profile, sizeof cfg->seccomp_localhost_profile, "%s",
	         "codeframe/worker.json");
	cfg->require_cpu_limit = true;
	cfg->require_memory_limit = true;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		free(list[i]);
	free(list);
}

void wh_policy_config_free(wh_policy_config *cfg)
{
	if (!cfg)
		return;
	free_list(cfg->allowed_capabilities, cfg->n_allowed_capabilities);
	free_list(cfg->allowed_runtime_classes, cfg->n_allowed_runtime_classes);
	cfg->allowed_capabilities = NULL;
	cfg->n_allowed_capabilities = 0;
	cfg->allowed_runtime_classes = NULL;
	cfg->n_allowed_runtime_classes = 0;
}

void wh_result_init(wh_result *r)
{
	memset(r, 0, sizeof *r);
}

void wh_result_free(wh_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_violations; i++) {
		wh_violation *v = &r->violations[i];
		free(v->check);
		free(v->path);
		free(v->container);
		free(v->message);
	}
	free(r->violations);
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->warnings);
	wh_result_init(r);
}

/* ---------------------------------------------------------------------- */
/* Finding the pod template                                                */
/* ---------------------------------------------------------------------- */

typedef struct kind_info {
	const char *kind;
	const char *const *chain; /* keys from the object to the pod template */
	const char *spec_path;
} kind_info;

static const char *const chain_pod[] = {NULL};
static const char *const chain_podtemplate[] = {"template", NULL};
static const char *const chain_template[] = {"spec", "template", NULL};
static const char *const chain_cronjob[] = {"spec", "jobTemplate", "spec", "template", NULL};

static const kind_info kinds[] = {
    {"Pod", chain_pod, "spec"},
    {"PodTemplate", chain_podtemplate, "template.spec"},
    {"ReplicationController", chain_template, "spec.template.spec"},
    {"ReplicaSet", chain_template, "spec.template.spec"},
    {"Deployment", chain_template, "spec.template.spec"},
    {"StatefulSet", chain_template, "spec.template.spec"},
    {"DaemonSet", chain_template, "spec.template.spec"},
    {"Job", chain_template, "spec.template.spec"},
    {"CronJob", chain_cronjob, "spec.jobTemplate.spec.template.spec"},
};

static const kind_info *kind_of(const char *kind)
{
	for (size_t i = 0; kind && i < sizeof kinds / sizeof kinds[0]; i++)
		if (!strcmp(kind, kinds[i].kind))
			return &kinds[i];
	return NULL;
}

bool wh_policy_is_workload_kind(const char *kind)
{
	return kind_of(kind) != NULL;
}

static const char *type_name(const cJSON *j)
{
	if (!j)
		return "missing";
	if (cJSON_IsNull(j))
		return "null";
	if (cJSON_IsArray(j))
		return "a list";
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsNumber(j))
		return "a number";
	return "an object";
}

/* Walks to the pod template; on failure names the first bad step. */
static const cJSON *find_template(const cJSON *object, const kind_info *ki, char *err,
                                  size_t errlen)
{
	const cJSON *cur = object;
	char path[96] = "";
	for (const char *const *k = ki->chain; *k; k++) {
		const cJSON *next = cf_json_get(cur, *k);
		size_t pl = strlen(path);
		snprintf(path + pl, sizeof path - pl, "%s%s", pl ? "." : "", *k);
		if (!cJSON_IsObject(next)) {
			snprintf(err, errlen, "%s: must be an object, not %s", path,
			         type_name(next));
			return NULL;
		}
		cur = next;
	}
	return cur;
}

const cJSON *wh_policy_find_pod_spec(const cJSON *object, const cJSON **metadata, const char **path)
{
	if (metadata)
		*metadata = NULL;
	if (path)
		*path = NULL;
	if (!cJSON_IsObject(object))
		return NULL;
	const cJSON *kind = cf_json_get(object, "kind");
	const kind_info *ki = cJSON_IsString(kind) ? kind_of(kind->valuestring) : NULL;
	if (!ki)
		return NULL;
	char dummy[1];
	const cJSON *tmpl = find_template(object, ki, dummy, sizeof dummy);
	if (!tmpl)
		return NULL;
	const cJSON *spec = cf_json_get(tmpl, "spec");
	if (!cJSON_IsObject(spec))
		return NULL;
	if (metadata) {
		const cJSON *md = cf_json_get(tmpl, "metadata");
		*metadata = cJSON_IsObject(md) ? md : NULL;
	}
	if (path)
		*path = ki->spec_path;
	return spec;
}

/* ---------------------------------------------------------------------- */
/* Worker checks                                                           */
/* ---------------------------------------------------------------------- */

static bool is_set(const cJSON *obj, const char *key)
{
	const cJSON *v = cf_json_get(obj, key);
	return v && !cJSON_IsNull(v);
}

static void pathf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static void check_read_only_root(wh_psa_pod *pod)
{
	char path[160];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		if (cJSON_IsTrue(cf_json_get(c->sc, "readOnlyRootFilesystem")))
			continue;
		pathf(path, sizeof path, "%s.securityContext.readOnlyRootFilesystem", c->path);
		wh_psa_violation(pod, "readOnlyRootFilesystem", c, path, "must be true");
	}
}

typedef struct limit_rule {
	const char *resource;
	bool required;
	const wh_quantity *max; /* NULL: no maximum */
} limit_rule;

/* A set limit must be a quantity, > 0, and within the configured maximum.
 * The path (base.resources.limits.<resource>) is only built for a finding:
 * this runs for every limit of every container. */
static void check_limit_value(wh_psa_pod *pod, const wh_psa_container *c, const cJSON *value,
                              const char *base, const limit_rule *rule)
{
	wh_quantity q;
	char shown[64], max[64], path[192];
	int rc = wh_quantity_from_json(value, &q);
	if (rc == 0 && q.nanos > 0 && !(rule->max && wh_quantity_cmp(&q, rule->max) > 0))
		return;
	pathf(path, sizeof path, "%s.resources.limits.%s", base, rule->resource);
	if (rc) {
		const char *text = cJSON_IsString(value) ? value->valuestring
		                   : value->valuestring  ? value->valuestring
		                                         : "?";
		wh_psa_violation(pod, "resourceLimits", c, path, "is not a valid quantity (\"%s\")",
		                 text);
		return;
	}
	if (q.nanos <= 0) {
		wh_quantity_format(&q, shown, sizeof shown);
		wh_psa_violation(pod, "resourceLimits", c, path, "must be greater than 0 (is %s)",
		                 shown);
		return;
	}
	if (rule->max && wh_quantity_cmp(&q, rule->max) > 0) {
		wh_quantity_format(&q, shown, sizeof shown);
		wh_quantity_format(rule->max, max, sizeof max);
		wh_psa_violation(pod, "resourceLimits", c, path, "must be at most %s (is %s)", max,
		                 shown);
	}
}

static void check_resource_limits(wh_psa_pod *pod, const wh_policy_config *cfg)
{
	const limit_rule rules[] = {
	    {"cpu", cfg->require_cpu_limit, cfg->has_max_cpu ? &cfg->max_cpu : NULL},
	    {"memory", cfg->require_memory_limit, cfg->has_max_memory ? &cfg->max_memory : NULL},
	    {"ephemeral-storage", cfg->require_ephemeral_storage_limit,
	     cfg->has_max_ephemeral_storage ? &cfg->max_ephemeral_storage : NULL},
	};
	char path[192];
	const cJSON *pod_limits = cf_json_object(cf_json_object(pod->spec, "resources"), "limits");
	for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
		const limit_rule *rule = &rules[r];
		const cJSON *pv = cf_json_get(pod_limits, rule->resource);
		bool pod_set = pv && !cJSON_IsNull(pv);
		if (pod_set)
			check_limit_value(pod, NULL, pv, pod->spec_path, rule);
		for (size_t i = 0; i < pod->n_ctrs; i++) {
			const wh_psa_container *c = &pod->ctrs[i];
			/* Ephemeral containers cannot carry resources (API rule). */
			if (c->kind == WH_PSA_EPHEMERAL)
				continue;
			const cJSON *v = cf_json_get(c->limits, rule->resource);
			bool set = v && !cJSON_IsNull(v);
			if (!set && (!rule->required || pod_set))
				continue;
			if (set) {
				check_limit_value(pod, c, v, c->path, rule);
				continue;
			}
			pathf(path, sizeof path, "%s.resources.limits.%s", c->path, rule->resource);
			wh_psa_violation(pod, "resourceLimits", c, path,
			                 "must be set (or %s.resources.limits.%s)", pod->spec_path,
			                 rule->resource);
		}
	}
}

static void check_network_policy(wh_psa_pod *pod, const wh_policy_config *cfg, const char *ns,
                                 const wh_netpol_set *netpols)
{
	char path[96]; /* "<metadata>.labels", formatted only for a finding */
	if (!netpols) {
		pathf(path, sizeof path, "%s.labels", pod->meta_path);
		if (cfg->netpol_unsynced_warn)
			wh_psa_warning(pod,
			               "%s: NetworkPolicy coverage not checked: the NetworkPolicy "
			               "state is not synced yet [networkPolicy]",
			               path);
		else
			wh_psa_violation(pod, "networkPolicy", NULL, path,
			                 "cannot be checked: the NetworkPolicy state is not synced "
			                 "yet");
		return;
	}
	wh_netpol_coverage cov;
	wh_netpol_coverage_for(netpols, ns, cf_json_object(pod->meta, "labels"), &cov);
	static const char *const dirs[] = {"Ingress", "Egress"};
	for (int d = 0; d < 2; d++) {
		bool covered = d ? cov.egress : cov.ingress;
		bool all = d ? cov.egress_allow_all : cov.ingress_allow_all;
		const char *name = d ? cov.egress_policy : cov.ingress_policy;
		if (!covered) {
			pathf(path, sizeof path, "%s.labels", pod->meta_path);
			wh_psa_violation(
			    pod, "networkPolicy", NULL, path,
			    "must be selected by a NetworkPolicy with policyType %s in "
			    "namespace \"%s\"",
			    dirs[d], ns);
		} else if (all) {
			wh_psa_warning(pod,
			               "NetworkPolicy \"%s\" in namespace \"%s\" allows all %s "
			               "traffic to this pod [networkPolicy]",
			               name, ns, d ? "egress" : "ingress");
		}
	}
}

static void check_secrets(wh_psa_pod *pod)
{
	char path[224];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		int j = 0;
		const cJSON *e;
		cJSON_ArrayForEach(e, cf_json_array(c->obj, "env"))
		{
			const cJSON *ref =
			    cf_json_object(cf_json_object(e, "valueFrom"), "secretKeyRef");
			if (ref) {
				pathf(path, sizeof path, "%s.env[%d].valueFrom.secretKeyRef",
				      c->path, j);
				wh_psa_violation(
				    pod, "secrets", c, path, "must not be used (secret \"%s\")",
				    cf_json_string(ref, "name") ? cf_json_string(ref, "name") : "");
			}
			j++;
		}
		j = 0;
		cJSON_ArrayForEach(e, cf_json_array(c->obj, "envFrom"))
		{
			const cJSON *ref = cf_json_object(e, "secretRef");
			if (ref) {
				pathf(path, sizeof path, "%s.envFrom[%d].secretRef", c->path, j);
				wh_psa_violation(
				    pod, "secrets", c, path, "must not be used (secret \"%s\")",
				    cf_json_string(ref, "name") ? cf_json_string(ref, "name") : "");
			}
			j++;
		}
	}
	int i = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, cf_json_array(pod->spec, "volumes"))
	{
		const char *vname = cf_json_string(v, "name") ? cf_json_string(v, "name") : "";
		if (is_set(v, "secret")) {
			pathf(path, sizeof path, "%s.volumes[%d].secret", pod->spec_path, i);
			wh_psa_violation(pod, "secrets", NULL, path,
			                 "must not be used (volume \"%s\")", vname);
		}
		int k = 0;
		const cJSON *src;
		cJSON_ArrayForEach(src, cf_json_array(cf_json_object(v, "projected"), "sources"))
		{
			static const char *const bad[] = {"secret", "serviceAccountToken"};
			for (int b = 0; b < 2; b++) {
				if (!is_set(src, bad[b]))
					continue;
				pathf(path, sizeof path, "%s.volumes[%d].projected.sources[%d].%s",
				      pod->spec_path, i, k, bad[b]);
				wh_psa_violation(pod, "secrets", NULL, path,
				                 "must not be used (volume \"%s\")", vname);
			}
			k++;
		}
		const char *driver = cf_json_string(cf_json_object(v, "csi"), "driver");
		if (driver && !strcmp(driver, SECRETS_STORE_CSI_DRIVER)) {
			pathf(path, sizeof path, "%s.volumes[%d].csi.driver", pod->spec_path, i);
			wh_psa_violation(pod, "secrets", NULL, path,
			                 "must not be " SECRETS_STORE_CSI_DRIVER " (volume \"%s\")",
			                 vname);
		}
		i++;
	}
}

static void check_service_account_token(wh_psa_pod *pod)
{
	if (cJSON_IsFalse(cf_json_get(pod->spec, "automountServiceAccountToken")))
		return;
	char path[96];
	pathf(path, sizeof path, "%s.automountServiceAccountToken", pod->spec_path);
	wh_psa_violation(pod, "serviceAccountToken", NULL, path,
	                 "must be false (the token is an API credential)");
}

static void check_seccomp_localhost(wh_psa_pod *pod, const char *profile)
{
	char path[160];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		const cJSON *eff = wh_psa_effective_seccomp(pod, c);
		const char *t = cf_json_string(eff, "type");
		const char *lp = cf_json_string(eff, "localhostProfile");
		if (t && !strcmp(t, "Localhost") && lp && !strcmp(lp, profile))
			continue;
		pathf(path, sizeof path, "%s.securityContext.seccompProfile", c->path);
		wh_psa_violation(pod, "seccompLocalhost", c, path,
		                 "must be type Localhost with localhostProfile \"%s\" (here or in "
		                 "%s.securityContext)",
		                 profile, pod->spec_path);
	}
}

static void check_runtime_class(wh_psa_pod *pod, const wh_policy_config *cfg)
{
	const char *rc = cf_json_string(pod->spec, "runtimeClassName");
	for (size_t i = 0; rc && i < cfg->n_allowed_runtime_classes; i++)
		if (cfg->allowed_runtime_classes[i] && !strcmp(rc, cfg->allowed_runtime_classes[i]))
			return;
	char list[512] = "";
	size_t used = 0;
	for (size_t i = 0; i < cfg->n_allowed_runtime_classes && used < sizeof list; i++) {
		int n = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
		                 cfg->allowed_runtime_classes[i] ? cfg->allowed_runtime_classes[i]
		                                                 : "");
		if (n < 0)
			break;
		used += (size_t)n;
	}
	char path[96];
	pathf(path, sizeof path, "%s.runtimeClassName", pod->spec_path);
	if (rc)
		wh_psa_violation(pod, "runtimeClass", NULL, path, "must be one of %s (is \"%s\")",
		                 list, rc);
	else
		wh_psa_violation(pod, "runtimeClass", NULL, path, "must be one of %s (is unset)",
		                 list);
}

static void check_host_users(wh_psa_pod *pod)
{
	if (pod->host_users_false)
		return;
	char path[96];
	pathf(path, sizeof path, "%s.hostUsers", pod->spec_path);
	wh_psa_violation(pod, "hostUsers", NULL, path,
	                 "must be false (run the pod in its own user namespace)");
}

static void check_emptydir_size_limit(wh_psa_pod *pod)
{
	char path[192];
	int i = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, cf_json_array(pod->spec, "volumes"))
	{
		const cJSON *ed = cf_json_object(v, "emptyDir");
		const char *vname = cf_json_string(v, "name") ? cf_json_string(v, "name") : "";
		if (ed) {
			const cJSON *sl = cf_json_get(ed, "sizeLimit");
			pathf(path, sizeof path, "%s.volumes[%d].emptyDir.sizeLimit",
			      pod->spec_path, i);
			wh_quantity q;
			if (!sl || cJSON_IsNull(sl))
				wh_psa_violation(pod, "emptyDirSizeLimit", NULL, path,
				                 "must be set (volume \"%s\")", vname);
			else if (wh_quantity_from_json(sl, &q))
				wh_psa_violation(pod, "emptyDirSizeLimit", NULL, path,
				                 "is not a valid quantity (volume \"%s\")", vname);
			else if (q.nanos <= 0)
				wh_psa_violation(pod, "emptyDirSizeLimit", NULL, path,
				                 "must be greater than 0 (volume \"%s\")", vname);
		}
		i++;
	}
}

static void check_worker(wh_psa_pod *pod, const wh_policy_config *cfg, const char *ns,
                         const wh_netpol_set *netpols)
{
	/* readOnlyRootFilesystem and seccomp profiles are Linux-only fields
	 * the API rejects on Windows pods, as PSA's own exemptions do. */
	if (cfg->read_only_root_filesystem && !pod->windows)
		check_read_only_root(pod);
	if (cfg->resource_limits)
		check_resource_limits(pod, cfg);
	if (cfg->network_policy)
		check_network_policy(pod, cfg, ns, netpols);
	if (cfg->secrets)
		check_secrets(pod);
	if (cfg->service_account_token)
		check_service_account_token(pod);
	if (cfg->seccomp_localhost && !pod->windows)
		check_seccomp_localhost(pod, cfg->seccomp_localhost_profile);
	if (cfg->n_allowed_runtime_classes)
		check_runtime_class(pod, cfg);
	if (cfg->require_host_users_false)
		check_host_users(pod);
	if (cfg->require_emptydir_size_limit)
		check_emptydir_size_limit(pod);
}

/* ---------------------------------------------------------------------- */
/* Entry point                                                             */
/* ---------------------------------------------------------------------- */

int wh_policy_evaluate(const wh_policy_config *cfg, wh_profile profile, const cJSON *object,
                       const char *default_namespace, const wh_netpol_set *netpols, wh_result *out,
                       char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	if (!out) {
		snprintf(err, errlen, "no result to fill");
		return -EINVAL;
	}
	if (profile != WH_PROFILE_BASELINE && profile != WH_PROFILE_RESTRICTED &&
	    profile != WH_PROFILE_WORKER) {
		snprintf(err, errlen, "unknown profile %d", (int)profile);
		return -EINVAL;
	}
	wh_policy_config defaults;
	if (!cfg) {
		wh_policy_config_defaults(&defaults);
		cfg = &defaults;
	}
	if (!cJSON_IsObject(object)) {
		snprintf(err, errlen, "not a Kubernetes object: the document is %s",
		         type_name(object));
		return -EINVAL;
	}
	const cJSON *kind = cf_json_get(object, "kind");
	if (!cJSON_IsString(kind)) {
		snprintf(err, errlen, "kind: must be a string, not %s", type_name(kind));
		return -EINVAL;
	}
	const kind_info *ki = kind_of(kind->valuestring);
	if (!ki) {
		snprintf(err, errlen, "kind \"%s\" carries no pod template", kind->valuestring);
		return -EINVAL;
	}
	const cJSON *md = cf_json_get(object, "metadata");
	if (md && !cJSON_IsNull(md) && !cJSON_IsObject(md)) {
		snprintf(err, errlen, "metadata: must be an object, not %s", type_name(md));
		return -EINVAL;
	}
	const cJSON *nsj = cf_json_get(md, "namespace");
	if (nsj && !cJSON_IsNull(nsj) && !cJSON_IsString(nsj)) {
		snprintf(err, errlen, "metadata.namespace: must be a string, not %s",
		         type_name(nsj));
		return -EINVAL;
	}
	const char *ns = cJSON_IsString(nsj) && nsj->valuestring[0]  ? nsj->valuestring
	                 : default_namespace && default_namespace[0] ? default_namespace
	                                                             : "default";

	const cJSON *tmpl = find_template(object, ki, err, errlen);
	if (!tmpl)
		return -EINVAL;
	const cJSON *spec = cf_json_get(tmpl, "spec");
	const cJSON *pmeta = ki->chain[0] ? cf_json_get(tmpl, "metadata") : md;

	wh_psa_pod pod;
	int rc = wh_psa_pod_init(&pod, spec, ki->spec_path, pmeta, out, err, errlen);
	if (rc)
		return rc;
	wh_psa_caps extra = {NULL, 0};
	if (profile == WH_PROFILE_WORKER) {
		extra.names = cfg->allowed_capabilities;
		extra.n = cfg->n_allowed_capabilities;
	}
	wh_psa_baseline(&pod, &extra);
	if (profile != WH_PROFILE_BASELINE)
		wh_psa_restricted(&pod, &extra);
	if (profile == WH_PROFILE_WORKER)
		check_worker(&pod, cfg, ns, netpols);
	rc = pod.rc;
	wh_psa_pod_free(&pod);
	if (rc)
		snprintf(err, errlen, "out of memory");
	return rc;
}
