/* End to end: the real `codeframe-webhook serve --kubeconfig` binary
 * against the fake API server. A worker pod without a covering
 * NetworkPolicy is denied; a policy added on the watch admits it (polled,
 * bounded wait); deleting it denies it again; /readyz and the decision
 * before the first sync; controllers evaluated with their template labels
 * in their own namespace; bad kubeconfigs refused at start. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "support/fake_apiserver.h"
#include "support/fake_ca.h"
#include "support/ts_https.h"
#include "support/ts_proc.h"

#define NP "/apis/networking.k8s.io/v1/networkpolicies"

static char err[2048];
static fake_ca ca;
static fake_apiserver *fs;
static ts_proc proc;
static unsigned port;
static char kc_path[400], log_path[400];

static const char *bin(void)
{
	static char path[512];
	const char *b = getenv("CF_BUILD_DIR");
	snprintf(path, sizeof path, "%s/codeframe-webhook", b && *b ? b : "build");
	return path;
}

/* Sanitizer builds run several times slower: the bounded waits scale. */
static unsigned scaled(unsigned ms)
{
	const char *s = getenv("SANITIZE");
	return s && *s ? ms * 5 : ms;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_kubeconfig(const char *token)
{
	char kc[4096];
	snprintf(kc, sizeof kc,
	         "apiVersion: v1\nkind: Config\ncurrent-context: e2e\n"
	         "clusters:\n- name: fake\n  cluster:\n    server: %s\n"
	         "    certificate-authority: ca.crt\n"
	         "contexts:\n- name: e2e\n  context: {cluster: fake, user: u}\n"
	         "users:\n- name: u\n  user:\n    token: %s\n",
	         fake_apiserver_url(fs), token);
	cr_assert_eq(fake_ca_write_file(ca.dir, "kubeconfig", kc, kc_path, sizeof kc_path), 0);
}

static void setup(void)
{
	ts_https_global_init();
	cr_assert_eq(fake_ca_create(&ca, "e2e", err, sizeof err), 0, "%s", err);
	fs = fake_apiserver_start(&ca, "tok", err, sizeof err);
	cr_assert_not_null(fs, "%s", err);
	write_kubeconfig("tok");
	snprintf(log_path, sizeof log_path, "%s/webhook.log", ca.dir);
	memset(&proc, 0, sizeof proc);
}

static void teardown(void)
{
	ts_proc_kill(&proc);
	fake_apiserver_stop(fs);
	fs = NULL;
	fake_ca_destroy(&ca);
}

/* Starts serve with extra arguments (NULL-terminated list). */
static void start_webhook(const char *extra1, const char *extra2)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		port = ts_free_port();
		char listen[64];
		snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
		char *argv[16];
		int n = 0;
		argv[n++] = (char *)bin();
		argv[n++] = "serve";
		argv[n++] = "--listen";
		argv[n++] = listen;
		argv[n++] = "--tls-cert";
		argv[n++] = ca.server_cert_file;
		argv[n++] = "--tls-key";
		argv[n++] = ca.server_key_file;
		argv[n++] = "--kubeconfig";
		argv[n++] = kc_path;
		if (extra1)
			argv[n++] = (char *)extra1;
		if (extra2)
			argv[n++] = (char *)extra2;
		argv[n] = NULL;
		cr_assert_eq(ts_proc_spawn(&proc, argv, log_path), 0);
		ts_proc_atexit(&proc);
		int rc = ts_proc_wait_port(&proc, "127.0.0.1", port, scaled(10000));
		if (rc == 0)
			return;
		ts_proc_kill(&proc);
	}
	char *log = ts_read_text(log_path);
	cr_assert_fail("webhook did not start: %s", log ? log : "(no log)");
}

static const char *pod_spec =
    "{\"automountServiceAccountToken\":false,\"securityContext\":{\"runAsNonRoot\":true,"
    "\"runAsUser\":10001,\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},"
    "\"containers\":[{\"name\":\"runner\",\"image\":\"busybox\",\"resources\":{\"limits\":"
    "{\"cpu\":\"1\",\"memory\":\"1Gi\"}},\"securityContext\":{\"allowPrivilegeEscalation\":"
    "false,\"readOnlyRootFilesystem\":true,\"capabilities\":{\"drop\":[\"ALL\"]}}}]}";

/* An AdmissionReview for a Pod or a Deployment (template labels) in ns. */
static char *review(const char *kind, const char *ns, const char *app)
{
	char obj[4096];
	bool pod = !strcmp(kind, "Pod");
	if (pod)
		snprintf(obj, sizeof obj,
		         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"w\","
		         "\"namespace\":\"%s\",\"labels\":{\"app\":\"%s\"}},\"spec\":%s}",
		         ns, app, pod_spec);
	else
		snprintf(obj, sizeof obj,
		         "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
		         "\"name\":\"d\",\"namespace\":\"%s\",\"labels\":{\"app\":\"unrelated\"}},"
		         "\"spec\":{\"selector\":{\"matchLabels\":{\"app\":\"%s\"}},\"template\":{"
		         "\"metadata\":{\"labels\":{\"app\":\"%s\"}},\"spec\":%s}}}",
		         ns, app, app, pod_spec);
	char *r = NULL;
	cr_assert_geq(
	    asprintf(&r,
	             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\","
	             "\"request\":{\"uid\":\"e2e-uid\",\"kind\":{\"group\":\"%s\",\"version\":"
	             "\"v1\",\"kind\":\"%s\"},\"resource\":{\"group\":\"%s\",\"version\":\"v1\","
	             "\"resource\":\"%s\"},\"namespace\":\"%s\",\"operation\":\"CREATE\","
	             "\"userInfo\":{\"username\":\"dev\"},\"object\":%s}}",
	             pod ? "" : "apps", kind, pod ? "" : "apps", pod ? "pods" : "deployments", ns,
	             obj),
	    0);
	return r;
}

typedef struct verdict {
	int allowed; /* 1, 0, or -1 when no usable answer */
	char message[2048];
	char warnings[2048];
} verdict;

static verdict validate(const char *kind, const char *ns, const char *app)
{
	verdict v = {.allowed = -1};
	char *body = review(kind, ns, app);
	ts_http_req rq = {.method = "POST",
	                  .port = port,
	                  .path = "/validate?timeout=10s",
	                  .body = body,
	                  .body_len = strlen(body),
	                  .ca_file = ca.ca_file,
	                  .timeout_ms = 10000};
	const char *hdr[] = {"Content-Type: application/json"};
	rq.headers = hdr;
	rq.n_headers = 1;
	ts_http_resp resp;
	memset(&resp, 0, sizeof resp);
	if (ts_https_do(&rq, &resp, err, sizeof err) == 0 && resp.status == 200) {
		cJSON *j = cJSON_Parse(resp.body);
		const cJSON *r = cJSON_GetObjectItem(j, "response");
		const cJSON *a = cJSON_GetObjectItem(r, "allowed");
		const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "status"), "message");
		char *w = cJSON_PrintUnformatted(cJSON_GetObjectItem(r, "warnings"));
		if (cJSON_IsBool(a))
			v.allowed = cJSON_IsTrue(a);
		snprintf(v.message, sizeof v.message, "%s",
		         cJSON_IsString(m) ? m->valuestring : "");
		snprintf(v.warnings, sizeof v.warnings, "%s", w ? w : "");
		free(w);
		cJSON_Delete(j);
	}
	ts_http_resp_free(&resp);
	free(body);
	return v;
}

static long get_status(const char *path, char *body, size_t bodylen)
{
	ts_http_req rq = {.port = port, .path = path, .ca_file = ca.ca_file, .timeout_ms = 5000};
	ts_http_resp resp;
	memset(&resp, 0, sizeof resp);
	long st = ts_https_do(&rq, &resp, err, sizeof err) == 0 ? resp.status : 0;
	if (body)
		snprintf(body, bodylen, "%s", resp.body ? resp.body : "");
	ts_http_resp_free(&resp);
	return st;
}

/* Polls until the decision for (kind, ns, app) is `want` (bounded). */
static bool wait_allowed(const char *kind, const char *ns, const char *app, int want,
                         unsigned bound_ms)
{
	long end = now_ms() + (long)bound_ms;
	do {
		if (validate(kind, ns, app).allowed == want)
			return true;
		usleep(10000);
	} while (now_ms() < end);
	return false;
}

static bool wait_ready(unsigned bound_ms)
{
	long end = now_ms() + (long)bound_ms;
	do {
		if (get_status("/readyz", NULL, 0) == 200)
			return true;
		usleep(20000);
	} while (now_ms() < end);
	return false;
}

static void put_policy(const char *ns, const char *name, const char *selector)
{
	char j[1024];
	snprintf(j, sizeof j,
	         "{\"kind\":\"NetworkPolicy\",\"apiVersion\":\"networking.k8s.io/v1\","
	         "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{\"podSelector\":%s,"
	         "\"policyTypes\":[\"Ingress\",\"Egress\"]}}",
	         name, ns, selector);
	cr_assert_gt(fake_apiserver_put(fs, NP, j), 0);
}

Test(kube_e2e, policy_added_and_deleted_on_the_watch, .init = setup, .fini = teardown)
{
	start_webhook(NULL, NULL);
	cr_assert(wait_ready(scaled(10000)), "ready once the first list synced");
	verdict v = validate("Pod", "team-a", "worker");
	cr_assert_eq(v.allowed, 0, "no covering policy: denied");
	cr_assert(strstr(v.message, "NetworkPolicy with policyType Ingress"), "%s", v.message);

	put_policy("team-a", "isolate-workers", "{\"matchLabels\":{\"app\":\"worker\"}}");
	long t0 = now_ms();
	cr_assert(wait_allowed("Pod", "team-a", "worker", 1, scaled(1000)),
	          "admitted within a second of the policy being added");
	cr_log_info("admitted %ld ms after the policy was added", now_ms() - t0);
	cr_assert_eq(validate("Pod", "team-b", "worker").allowed, 0,
	             "a policy in another namespace does not count");

	char metrics[65536];
	cr_assert_eq(get_status("/metrics", metrics, sizeof metrics), 200);
	cr_assert(strstr(metrics, "codeframe_webhook_netpol_policies 1"), "%s", metrics);
	cr_assert(strstr(metrics, "codeframe_webhook_netpol_cache_synced 1"));

	cr_assert_gt(fake_apiserver_delete(fs, NP, "team-a", "isolate-workers"), 0);
	cr_assert(wait_allowed("Pod", "team-a", "worker", 0, scaled(1000)),
	          "denied again within a second of the delete");

	/* Clean stop: SIGTERM ends the watch thread and the process. */
	cr_assert_eq(ts_proc_signal(&proc, SIGTERM), 0);
	cr_assert_eq(ts_proc_wait(&proc, scaled(15000)), 0);
	cr_assert(WIFEXITED(proc.status) && WEXITSTATUS(proc.status) == 0);
}

Test(kube_e2e, controllers_use_template_labels_in_their_namespace, .init = setup, .fini = teardown)
{
	put_policy("team-a", "isolate-workers", "{\"matchLabels\":{\"app\":\"worker\"}}");
	put_policy("team-b", "isolate-other", "{\"matchLabels\":{\"app\":\"other\"}}");
	start_webhook(NULL, NULL);
	cr_assert(wait_ready(scaled(10000)));
	cr_assert_eq(validate("Deployment", "team-a", "worker").allowed, 1,
	             "the template's labels are selected");
	verdict v = validate("Deployment", "team-a", "other");
	cr_assert_eq(v.allowed, 0, "a policy for these labels exists only in team-b");
	cr_assert(strstr(v.message, "spec.template.metadata.labels"), "%s", v.message);
	cr_assert_eq(validate("Deployment", "team-b", "other").allowed, 1);
}

Test(kube_e2e_bad, not_ready_and_denied_until_synced, .init = setup, .fini = teardown)
{
	fake_apiserver_set_token(fs, "not-yet"); /* every request gets 401 */
	put_policy("team-a", "isolate-workers", "{}");
	start_webhook(NULL, NULL);
	cr_assert_eq(get_status("/readyz", NULL, 0), 503);
	verdict v = validate("Pod", "team-a", "worker");
	cr_assert_eq(v.allowed, 0);
	cr_assert(strstr(v.message, "not synced"), "%s", v.message);
	cr_assert_eq(ts_wait_for_text(log_path, "HTTP 401", scaled(10000)), 0, "the log says why");
	fake_apiserver_set_token(fs, "tok");
	cr_assert(wait_ready(scaled(20000)), "ready after the API accepts the token");
	cr_assert_eq(validate("Pod", "team-a", "worker").allowed, 1);
}

Test(kube_e2e, unsynced_warn_admits_with_warning, .init = setup, .fini = teardown)
{
	fake_apiserver_set_token(fs, "not-yet");
	char cfg[400];
	cr_assert_eq(fake_ca_write_file(ca.dir, "config.yaml", "networkPolicyNotSynced: warn\n",
	                                cfg, sizeof cfg),
	             0);
	start_webhook("--config", cfg);
	cr_assert_eq(get_status("/readyz", NULL, 0), 503);
	verdict v = validate("Pod", "team-a", "worker");
	cr_assert_eq(v.allowed, 1, "%s", v.message);
	cr_assert(strstr(v.warnings, "not synced"), "%s", v.warnings);
}

static int run_serve_expect_failure(char *out, size_t outlen)
{
	char listen[64];
	snprintf(listen, sizeof listen, "127.0.0.1:%u", ts_free_port());
	char *argv[] = {(char *)bin(),
	                "serve",
	                "--listen",
	                listen,
	                "--tls-cert",
	                ca.server_cert_file,
	                "--tls-key",
	                ca.server_key_file,
	                "--kubeconfig",
	                kc_path,
	                NULL};
	cr_assert_eq(ts_proc_spawn(&proc, argv, log_path), 0);
	ts_proc_atexit(&proc);
	cr_assert_eq(ts_proc_wait(&proc, scaled(10000)), 0, "exits by itself");
	char *log = ts_read_text(log_path);
	snprintf(out, outlen, "%s", log ? log : "");
	free(log);
	return WIFEXITED(proc.status) ? WEXITSTATUS(proc.status) : -1;
}

Test(kube_e2e_bad, malformed_kubeconfig_refused_at_start, .init = setup, .fini = teardown)
{
	cr_assert_eq(fake_ca_write_file(ca.dir, "kubeconfig", "current-context: [oops\n", kc_path,
	                                sizeof kc_path),
	             0);
	char log[8192];
	cr_assert_eq(run_serve_expect_failure(log, sizeof log), 1);
	cr_assert(strstr(log, "Kubernetes API access") && strstr(log, "kubeconfig"), "%s", log);
}

Test(kube_e2e_bad, insecure_kubeconfig_refused_at_start, .init = setup, .fini = teardown)
{
	char kc[1024];
	snprintf(kc, sizeof kc,
	         "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: \"%s\", insecure-skip-tls-verify: "
	         "true}\nusers:\n- name: u\n  user: {token: tok}\n",
	         fake_apiserver_url(fs));
	cr_assert_eq(fake_ca_write_file(ca.dir, "kubeconfig", kc, kc_path, sizeof kc_path), 0);
	char log[8192];
	cr_assert_eq(run_serve_expect_failure(log, sizeof log), 1);
	cr_assert(strstr(log, "insecure-skip-tls-verify"), "%s", log);
}

Test(kube_e2e_bad, wrong_ca_never_syncs, .init = setup, .fini = teardown)
{
	char kc[4096];
	snprintf(kc, sizeof kc,
	         "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
	         "clusters:\n- name: c\n  cluster: {server: \"%s\", certificate-authority: "
	         "other-ca.crt}\nusers:\n- name: u\n  user: {token: tok}\n",
	         fake_apiserver_url(fs));
	cr_assert_eq(fake_ca_write_file(ca.dir, "kubeconfig", kc, kc_path, sizeof kc_path), 0);
	start_webhook(NULL, NULL);
	cr_assert_eq(ts_wait_for_text(log_path, "NetworkPolicy list failed", scaled(10000)), 0);
	cr_assert_eq(get_status("/readyz", NULL, 0), 503);
	fake_apiserver_stats st;
	fake_apiserver_stats_get(fs, &st);
	cr_assert_eq(st.requests, 0, "nothing sent to an unverified server");
	cr_assert_eq(validate("Pod", "team-a", "worker").allowed, 0);
}
