/* Integration tests for `codeframe-webhook serve`: the real binary on
 * 127.0.0.1 with a throwaway CA, spoken to over real HTTPS. Every test
 * starts its own server in a fresh directory and stops it in the fixture's
 * teardown, so a failing assertion leaves nothing running. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "support/ts_fixtures.h"
#include "support/ts_https.h"
#include "support/ts_pki.h"
#include "support/ts_proc.h"

static char dir[256], ca_path[300], crt_path[300], key_path[300], np_path[300], cfg_path[300],
    log_path[300];
static unsigned port, probe_port;
static ts_proc proc;
static ts_ca *ca;
static char err[512];

static const char *NETPOLS =
    "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: deny-in\n"
    "  namespace: workers\nspec:\n  podSelector:\n    matchLabels: {codeframe.io/role: worker}\n"
    "  policyTypes: [Ingress]\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
    "metadata:\n  name: dns-out\n  namespace: workers\nspec:\n  podSelector:\n"
    "    matchLabels: {codeframe.io/role: worker}\n  policyTypes: [Egress]\n  egress:\n"
    "  - ports: [{protocol: UDP, port: 53}]\n";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "write %s", path);
	fputs(text, f);
	fclose(f);
}

static void issue(const char *cn, const char *crt, const char *key)
{
	const char *sans[] = {"DNS:localhost", "DNS:webhook.codeframe.svc", "IP:127.0.0.1"};
	cr_assert_eq(ts_ca_issue(ca, cn, sans, 3, 2, crt, key), 0);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/cf-serve-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
	snprintf(crt_path, sizeof crt_path, "%s/tls.crt", dir);
	snprintf(key_path, sizeof key_path, "%s/tls.key", dir);
	snprintf(np_path, sizeof np_path, "%s/netpol.yaml", dir);
	snprintf(cfg_path, sizeof cfg_path, "%s/config.yaml", dir);
	snprintf(log_path, sizeof log_path, "%s/server.log", dir);
	ts_https_global_init();
	ca = ts_ca_new("codeframe test CA", 2);
	cr_assert_not_null(ca);
	cr_assert_eq(ts_ca_write_cert(ca, ca_path), 0);
	issue("webhook-v1", crt_path, key_path);
	write_file(np_path, NETPOLS);
	memset(&proc, 0, sizeof proc);
	ts_proc_atexit(&proc);
}

static void teardown(void)
{
	ts_proc_kill(&proc);
	ts_ca_free(ca);
	ca = NULL;
	if (dir[0] && !getenv("CF_KEEP_TEST_DIRS"))
		ts_rm_tree(dir);
}

/* Starts the server with extra flags (NULL-terminated); retries on a
 * port race. With `config` non-NULL the YAML is written and passed. */
static void start_with(const char *config, const char *const *extra)
{
	if (config)
		write_file(cfg_path, config);
	for (int attempt = 0; attempt < 5; attempt++) {
		port = ts_free_port();
		probe_port = ts_free_port();
		char listen[64], plisten[64];
		snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
		snprintf(plisten, sizeof plisten, "127.0.0.1:%u", probe_port);
		const char *argv[40] = {ts_webhook_bin(), "serve",  "--listen",  listen,
		                        "--tls-cert",     crt_path, "--tls-key", key_path,
		                        "--probe-listen", plisten};
		size_t n = 10;
		if (config) {
			argv[n++] = "--config";
			argv[n++] = cfg_path;
		}
		for (size_t i = 0; extra && extra[i] && n < 38; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		cr_assert_eq(ts_proc_spawn(&proc, (char *const *)argv, log_path), 0);
		int rc = ts_proc_wait_port(&proc, "127.0.0.1", port, 10000);
		if (rc == 0)
			rc = ts_proc_wait_port(&proc, "127.0.0.1", probe_port, 5000);
		if (rc == 0)
			return;
		ts_proc_kill(&proc);
		char *log = ts_read_text(log_path);
		bool race = log && strstr(log, "Address already in use");
		cr_assert(race, "server did not start (rc %d): %s", rc, log ? log : "");
		free(log);
	}
	cr_assert_fail("no free port after 5 attempts");
}

static void start(const char *const *extra)
{
	const char *np[] = {"--network-policies", np_path, NULL};
	const char *all[20];
	size_t n = 0;
	for (size_t i = 0; np[i]; i++)
		all[n++] = np[i];
	for (size_t i = 0; extra && extra[i] && n < 19; i++)
		all[n++] = extra[i];
	all[n] = NULL;
	start_with(NULL, all);
}

static void stop_ok(void)
{
	cr_assert_eq(ts_proc_signal(&proc, SIGTERM), 0);
	cr_assert_eq(ts_proc_wait(&proc, 15000), 0, "server did not exit after SIGTERM");
	cr_assert(WIFEXITED(proc.status) && WEXITSTATUS(proc.status) == 0, "exit status %d: %s",
	          proc.status, ts_read_text(log_path));
}

static char *pod_json(const char *spec)
{
	size_t n = strlen(spec) + 512;
	char *s = malloc(n);
	snprintf(s, n,
	         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"w1\","
	         "\"namespace\":\"workers\",\"labels\":%s},\"spec\":%s}",
	         ts_worker_labels, spec);
	return s;
}

static char *controller_json(const char *kind, const char *spec)
{
	const char *api = "apps/v1";
	if (!strcmp(kind, "Job") || !strcmp(kind, "CronJob"))
		api = "batch/v1";
	if (!strcmp(kind, "ReplicationController") || !strcmp(kind, "PodTemplate"))
		api = "v1";
	size_t n = strlen(spec) + 1024;
	char *tmpl = malloc(n), *s = malloc(n + 512);
	snprintf(tmpl, n, "{\"metadata\":{\"labels\":%s},\"spec\":%s}", ts_worker_labels, spec);
	const char *md = "\"metadata\":{\"name\":\"ctl\",\"namespace\":\"workers\"}";
	if (!strcmp(kind, "PodTemplate"))
		snprintf(s, n + 512, "{\"apiVersion\":\"%s\",\"kind\":\"%s\",%s,\"template\":%s}",
		         api, kind, md, tmpl);
	else if (!strcmp(kind, "CronJob"))
		snprintf(s, n + 512,
		         "{\"apiVersion\":\"%s\",\"kind\":\"%s\",%s,\"spec\":{\"schedule\":\"* * * "
		         "* *\","
		         "\"jobTemplate\":{\"spec\":{\"template\":%s}}}}",
		         api, kind, md, tmpl);
	else
		snprintf(s, n + 512,
		         "{\"apiVersion\":\"%s\",\"kind\":\"%s\",%s,\"spec\":{\"template\":%s}}",
		         api, kind, md, tmpl);
	free(tmpl);
	return s;
}

static const char *group_of(const char *kind)
{
	if (!strcmp(kind, "Job") || !strcmp(kind, "CronJob"))
		return "batch";
	if (!strcmp(kind, "Pod") || !strcmp(kind, "ReplicationController") ||
	    !strcmp(kind, "PodTemplate"))
		return "";
	return "apps";
}

/* An AdmissionReview around `object` (taken over). */
static char *review(const char *uid, const char *op, const char *kind, char *object)
{
	size_t n = strlen(object) + 1024;
	char *s = malloc(n);
	snprintf(
	    s, n,
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
	    "\"uid\":\"%s\",\"kind\":{\"group\":\"%s\",\"version\":\"v1\",\"kind\":\"%s\"},"
	    "\"resource\":{\"group\":\"%s\",\"version\":\"v1\",\"resource\":\"x\"},"
	    "\"namespace\":\"workers\",\"operation\":\"%s\",\"userInfo\":{\"username\":"
	    "\"alice\"},\"object\":%s,\"dryRun\":false}}",
	    uid, group_of(kind), kind, group_of(kind), op, object);
	free(object);
	return s;
}

/* POST /validate; returns the parsed response review (or NULL on non-200). */
static cJSON *validate(const char *body, ts_http_resp *out)
{
	const char *h[] = {"Content-Type: application/json"};
	ts_http_req req = {.port = port,
	                   .path = "/validate?timeout=10s",
	                   .body = body,
	                   .body_len = strlen(body),
	                   .headers = h,
	                   .n_headers = 1,
	                   .ca_file = ca_path,
	                   .host = "webhook.codeframe.svc"};
	int rc = ts_https_do(&req, out, err, sizeof err);
	cr_assert_eq(rc, 0, "request failed: %s", err);
	if (out->status != 200)
		return NULL;
	cJSON *j = cJSON_Parse(out->body);
	cr_assert_not_null(j, "response is not JSON: %s", out->body);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "apiVersion")->valuestring, "admission.k8s.io/v1");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "kind")->valuestring, "AdmissionReview");
	cJSON *r = cJSON_GetObjectItem(j, "response");
	cr_assert_null(cJSON_GetObjectItem(r, "patch"));
	cr_assert_null(cJSON_GetObjectItem(r, "patchType"));
	return j;
}

static cJSON *resp_of(cJSON *j)
{
	return cJSON_GetObjectItem(j, "response");
}

static bool is_allowed(cJSON *j)
{
	return cJSON_IsTrue(cJSON_GetObjectItem(resp_of(j), "allowed"));
}

static ts_http_resp get(unsigned p, const char *path, bool tls)
{
	ts_http_resp r;
	ts_http_req req = {.port = p,
	                   .path = path,
	                   .ca_file = tls ? ca_path : NULL,
	                   .host = tls ? "localhost" : NULL};
	cr_assert_eq(ts_https_do(&req, &r, err, sizeof err), 0, "%s: %s", path, err);
	return r;
}

static ts_http_resp send_raw(const char *method, const char *path, const char *body, size_t len,
                             bool chunked, bool expect)
{
	ts_http_resp r;
	ts_http_req req = {.method = method,
	                   .port = port,
	                   .path = path,
	                   .body = body,
	                   .body_len = len,
	                   .chunked = chunked,
	                   .expect_100 = expect,
	                   .ca_file = ca_path,
	                   .host = "localhost"};
	int rc = ts_https_do(&req, &r, err, sizeof err);
	cr_assert(rc == 0 || r.status != 0, "%s %s: %s", method, path, err);
	return r;
}

/* ---- positive cases ---- */

Test(serve, compliant_worker_pod_is_allowed_and_logged, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_http_resp r;
	char *body = review("uid-good-1", "CREATE", "Pod", pod_json(ts_worker_spec));
	cJSON *j = validate(body, &r);
	cr_assert_not_null(j, "status %ld: %s", r.status, r.body);
	cr_assert(is_allowed(j), "%s", r.body);
	cr_assert_str_eq(cJSON_GetObjectItem(resp_of(j), "uid")->valuestring, "uid-good-1");
	cr_assert(strstr(r.headers, "application/json"));
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	cr_assert_eq(ts_wait_for_text(log_path, "\"uid\":\"uid-good-1\"", 3000), 0);
	char *log = ts_read_text(log_path);
	const char *line = strstr(log, "\"uid\":\"uid-good-1\"");
	while (line > log && line[-1] != '\n')
		line--;
	cJSON *entry = cJSON_ParseWithOpts(line, NULL, false);
	cr_assert_not_null(entry, "log line is JSON");
	const char *fields[] = {"time", "uid",      "kind", "namespace",  "name",      "operation",
	                        "user", "decision", "mode", "violations", "latency_us"};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		cr_assert_not_null(cJSON_GetObjectItem(entry, fields[i]), "log field %s",
		                   fields[i]);
	cr_assert_str_eq(cJSON_GetObjectItem(entry, "decision")->valuestring, "allow");
	cr_assert_null(strstr(line, "readOnlyRootFilesystem\":true"), "no object in logs");
	cJSON_Delete(entry);
	free(log);
	stop_ok();
}

Test(serve, noncompliant_pod_is_denied_with_403, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_http_resp r;
	char *body = review("uid-bad-1", "CREATE", "Pod", pod_json(ts_violating_spec));
	cJSON *j = validate(body, &r);
	cr_assert_not_null(j);
	cr_assert_not(is_allowed(j));
	cJSON *st = cJSON_GetObjectItem(resp_of(j), "status");
	cr_assert_eq(cJSON_GetObjectItem(st, "code")->valueint, 403);
	const char *msg = cJSON_GetObjectItem(st, "message")->valuestring;
	cr_assert(strstr(msg, "[readOnlyRootFilesystem]") && strstr(msg, "[runAsNonRoot]"), "%s",
	          msg);
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	cr_assert_eq(ts_wait_for_text(log_path, "\"decision\":\"deny\"", 3000), 0);
	stop_ok();
}

Test(serve, every_controller_kind_is_checked_through_its_template, .init = setup, .fini = teardown)
{
	start(NULL);
	const char *kinds[] = {"Deployment", "ReplicaSet", "StatefulSet",           "DaemonSet",
	                       "Job",        "CronJob",    "ReplicationController", "PodTemplate"};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		ts_http_resp r;
		char *body = review("uid-ctl", "CREATE", kinds[i],
		                    controller_json(kinds[i], ts_violating_spec));
		cJSON *j = validate(body, &r);
		cr_assert_not_null(j, "%s: %ld", kinds[i], r.status);
		cr_assert_not(is_allowed(j), "%s with a bad template must be denied", kinds[i]);
		cJSON_Delete(j);
		ts_http_resp_free(&r);
		free(body);
		body = review("uid-ctl", "CREATE", kinds[i],
		              controller_json(kinds[i], ts_worker_spec));
		j = validate(body, &r);
		cr_assert(j && is_allowed(j), "%s with a good template must be allowed: %s",
		          kinds[i], r.body);
		cJSON_Delete(j);
		ts_http_resp_free(&r);
		free(body);
	}
	stop_ok();
}

Test(serve, warn_mode_admits_with_warnings, .init = setup, .fini = teardown)
{
	const char *extra[] = {"--mode", "warn", NULL};
	start(extra);
	ts_http_resp r;
	char *body = review("uid-warn", "CREATE", "Pod", pod_json(ts_violating_spec));
	cJSON *j = validate(body, &r);
	cr_assert(j && is_allowed(j));
	cJSON *w = cJSON_GetObjectItem(resp_of(j), "warnings");
	cr_assert_gt(cJSON_GetArraySize(w), 0);
	size_t total = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, w)
	{
		cr_assert_leq(strlen(it->valuestring), CF_MAX_WARNING_CHARS);
		total += strlen(it->valuestring);
	}
	cr_assert_leq(total, CF_MAX_WARNINGS_TOTAL_BYTES);
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	stop_ok();
}

Test(serve, audit_mode_admits_with_annotations, .init = setup, .fini = teardown)
{
	const char *extra[] = {"--mode", "audit", NULL};
	start(extra);
	ts_http_resp r;
	char *body = review("uid-audit", "CREATE", "Pod", pod_json(ts_violating_spec));
	cJSON *j = validate(body, &r);
	cr_assert(j && is_allowed(j));
	cJSON *ann = cJSON_GetObjectItem(resp_of(j), "auditAnnotations");
	cr_assert(cJSON_IsString(cJSON_GetObjectItem(ann, "violations")));
	cr_assert(cJSON_IsString(cJSON_GetObjectItem(ann, "checks")));
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	stop_ok();
}

Test(serve, probes_and_metrics_on_https_and_plain_port, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_http_resp r = get(port, "/healthz", true);
	cr_assert_eq(r.status, 200);
	ts_http_resp_free(&r);
	r = get(port, "/readyz", true);
	cr_assert_eq(r.status, 200, "%s", r.body);
	cr_assert(strstr(r.body, "netpol cache synced"), "%s", r.body);
	ts_http_resp_free(&r);
	r = get(probe_port, "/readyz", false);
	cr_assert_eq(r.status, 200);
	ts_http_resp_free(&r);
	char *body = review("uid-m", "CREATE", "Pod", pod_json(ts_violating_spec));
	cJSON *j = validate(body, &r);
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	r = get(probe_port, "/metrics", false);
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.body, "codeframe_webhook_requests_total{decision=\"deny\",kind=\"Pod\","
	                         "operation=\"CREATE\"} 1"),
	          "%s", r.body);
	cr_assert(
	    strstr(r.body, "codeframe_webhook_violations_total{check=\"readOnlyRootFilesystem\"}"));
	cr_assert(
	    strstr(r.body, "codeframe_webhook_request_duration_seconds_bucket{le=\"0.0001\"}"));
	cr_assert(strstr(r.body, "codeframe_webhook_certificate_expiry_timestamp_seconds 1"));
	ts_http_resp_free(&r);
	stop_ok();
}

Test(serve, keep_alive_serves_many_requests_on_one_connection, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_tls *t = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	char *body = review("uid-ka", "CREATE", "Pod", pod_json(ts_worker_spec));
	for (int i = 0; i < 3; i++) {
		char head[256];
		snprintf(head, sizeof head,
		         "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
		         "application/json\r\nContent-Length: %zu\r\n\r\n",
		         strlen(body));
		cr_assert_eq(ts_tls_write(t, head, strlen(head)), 0);
		cr_assert_eq(ts_tls_write(t, body, strlen(body)), 0);
		char buf[4096] = "";
		long n = ts_tls_read(t, buf, 1, 3000);
		cr_assert_eq(n, 1, "response %d", i);
		/* Read what is there; the response is small. */
		n = ts_tls_read(t, buf + 1, sizeof buf - 2, 200);
		cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
		cr_assert(strstr(buf, "\"allowed\":true"), "%s", buf);
	}
	/* Probes and errors keep the connection too. */
	const char *gets[] = {"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
	                      "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n",
	                      "GET /validate HTTP/1.1\r\nHost: localhost\r\n\r\n",
	                      "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"};
	const char *want[] = {"HTTP/1.1 200", "HTTP/1.1 404", "HTTP/1.1 405", "HTTP/1.1 200"};
	for (size_t i = 0; i < 4; i++) {
		cr_assert_eq(ts_tls_write(t, gets[i], strlen(gets[i])), 0);
		char buf[8192] = "";
		cr_assert_eq(ts_tls_read(t, buf, 1, 3000), 1, "response to %s", gets[i]);
		ts_tls_read(t, buf + 1, sizeof buf - 2, 200);
		cr_assert(strstr(buf, want[i]), "%s -> %s", gets[i], buf);
		cr_assert_null(strstr(buf, "Connection: close"), "%s", buf);
	}
	ts_tls_close(t);
	free(body);
	stop_ok();
}

Test(serve, config_file_selects_worker_namespaces, .init = setup, .fini = teardown)
{
	char cfg[1024];
	snprintf(cfg, sizeof cfg,
	         "workers:\n  namespaces: [other]\nserver:\n  networkPolicyFiles: [%s]\n", np_path);
	start_with(cfg, NULL);
	ts_http_resp r;
	char *body = review("uid-sel", "CREATE", "Pod", pod_json(ts_violating_spec));
	cJSON *j = validate(body, &r);
	cr_assert(j && is_allowed(j), "pods outside the worker namespaces are not evaluated");
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	cr_assert_eq(ts_wait_for_text(log_path, "\"decision\":\"skip\"", 3000), 0);
	stop_ok();
}

static void wait_for_subject(const char *cn)
{
	for (int i = 0; i < 100; i++) {
		ts_http_resp r = get(port, "/healthz", true);
		bool hit = strstr(r.subject, cn) != NULL;
		ts_http_resp_free(&r);
		if (hit)
			return;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	cr_assert_fail("certificate %s never served", cn);
}

Test(serve, certificate_rotation_reaches_new_connections, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_http_resp r = get(port, "/healthz", true);
	cr_assert(strstr(r.subject, "webhook-v1"), "subject %s", r.subject);
	ts_http_resp_free(&r);
	/* A connection opened before the rotation keeps working after it. */
	ts_tls *old = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
	cr_assert_not_null(old, "%s", err);
	char crt2[320], key2[320];
	snprintf(crt2, sizeof crt2, "%s/new.crt", dir);
	snprintf(key2, sizeof key2, "%s/new.key", dir);
	issue("webhook-v2", crt2, key2);
	cr_assert_eq(rename(key2, key_path), 0);
	cr_assert_eq(rename(crt2, crt_path), 0);
	wait_for_subject("webhook-v2");
	const char *req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
	cr_assert_eq(ts_tls_write(old, req, strlen(req)), 0);
	char buf[512] = "";
	ts_tls_read(old, buf, sizeof buf - 1, 2000);
	cr_assert(strstr(buf, "200 OK"), "old connection after rotation: %s", buf);
	ts_tls_close(old);
	cr_assert_eq(ts_wait_for_text(log_path, "certificate reloaded", 3000), 0);
	stop_ok();
}

Test(serve, secret_volume_symlink_swap_is_seen, .init = setup, .fini = teardown)
{
	/* The kubelet's layout: tls.crt -> ..data/tls.crt, ..data -> ..v1. */
	char v1[320], v2[320], data[320], tmp[320], p[400], q[400];
	snprintf(v1, sizeof v1, "%s/..v1", dir);
	snprintf(v2, sizeof v2, "%s/..v2", dir);
	snprintf(data, sizeof data, "%s/..data", dir);
	snprintf(tmp, sizeof tmp, "%s/..data_tmp", dir);
	cr_assert_eq(mkdir(v1, 0755), 0);
	cr_assert_eq(mkdir(v2, 0755), 0);
	snprintf(p, sizeof p, "%s/tls.crt", v1);
	snprintf(q, sizeof q, "%s/tls.key", v1);
	issue("webhook-v1", p, q);
	snprintf(p, sizeof p, "%s/tls.crt", v2);
	snprintf(q, sizeof q, "%s/tls.key", v2);
	issue("webhook-v2", p, q);
	cr_assert_eq(symlink("..v1", data), 0);
	unlink(crt_path);
	unlink(key_path);
	cr_assert_eq(symlink("..data/tls.crt", crt_path), 0);
	cr_assert_eq(symlink("..data/tls.key", key_path), 0);
	start(NULL);
	wait_for_subject("webhook-v1");
	cr_assert_eq(symlink("..v2", tmp), 0);
	cr_assert_eq(rename(tmp, data), 0);
	wait_for_subject("webhook-v2");
	stop_ok();
}

Test(serve, sigterm_drains_a_request_in_flight, .init = setup, .fini = teardown)
{
	start(NULL);
	char *body = review("uid-drain", "CREATE", "Pod", pod_json(ts_worker_spec));
	size_t len = strlen(body);
	ts_tls *t = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	char head[256];
	snprintf(head, sizeof head,
	         "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n\r\n", len);
	cr_assert_eq(ts_tls_write(t, head, strlen(head)), 0);
	cr_assert_eq(ts_tls_write(t, body, len / 2), 0);
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	cr_assert_eq(ts_proc_signal(&proc, SIGTERM), 0);
	cr_assert_eq(ts_wait_for_text(log_path, "draining", 3000), 0);
	int fd = ts_tcp_connect(port);
	cr_assert_lt(fd, 0, "new connections are refused while draining");
	cr_assert_eq(ts_tls_write(t, body + len / 2, len - len / 2), 0);
	char buf[4096] = "";
	ts_tls_read(t, buf, sizeof buf - 1, 3000);
	cr_assert(strstr(buf, "HTTP/1.1 200") && strstr(buf, "uid-drain"), "in-flight: %s", buf);
	ts_tls_close(t);
	free(body);
	cr_assert_eq(ts_proc_wait(&proc, 15000), 0);
	cr_assert(WIFEXITED(proc.status) && WEXITSTATUS(proc.status) == 0);
}

/* SIGTERM as soon as the server says it listens, repeatedly: every stop
 * must be a clean exit 0. (A race of this kind, the listen socket closed
 * before each thread-pool worker had dropped it from its epoll set, made
 * libmicrohttpd abort in about one start in twenty under ASan when driven
 * from a shell loop; this test guards the behaviour but does not reproduce
 * that timing reliably.) */
Test(serve, sigterm_right_after_start_exits_cleanly_every_time, .init = setup, .fini = teardown)
{
	for (int i = 0; i < 20; i++) {
		char listen[64];
		snprintf(listen, sizeof listen, "127.0.0.1:%u", ts_free_port());
		char *const argv[] = {(char *)ts_webhook_bin(),
		                      "serve",
		                      "--listen",
		                      listen,
		                      "--tls-cert",
		                      crt_path,
		                      "--tls-key",
		                      key_path,
		                      "--profile",
		                      "restricted",
		                      NULL};
		unlink(log_path); /* spawn appends: only this run's lines count */
		cr_assert_eq(ts_proc_spawn(&proc, argv, log_path), 0);
		if (ts_wait_for_text(log_path, "\"listening\"", 10000) != 0) {
			/* Lost a port race with another process: try again. */
			ts_proc_kill(&proc);
			continue;
		}
		stop_ok();
	}
}

Test(serve, sighup_reloads_a_valid_config, .init = setup, .fini = teardown)
{
	char cfg[512];
	snprintf(cfg, sizeof cfg, "mode: enforce\nserver:\n  networkPolicyFiles: [%s]\n", np_path);
	start_with(cfg, NULL);
	snprintf(cfg, sizeof cfg, "mode: warn\nserver:\n  networkPolicyFiles: [%s]\n", np_path);
	write_file(cfg_path, cfg);
	cr_assert_eq(ts_proc_signal(&proc, SIGHUP), 0);
	cr_assert_eq(ts_wait_for_text(log_path, "config reloaded", 3000), 0);
	ts_http_resp r;
	char *body = review("uid-hup", "CREATE", "Pod", pod_json(ts_violating_spec));
	cJSON *j = validate(body, &r);
	cr_assert(j && is_allowed(j), "warn mode after reload");
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	stop_ok();
}

/* ---- negative cases ---- */

static char *big_body(size_t n)
{
	char *b = malloc(n + 1);
	memset(b, ' ', n);
	b[0] = '{';
	b[n - 1] = '}';
	b[n] = '\0';
	return b;
}

Test(serve, oversize_body_with_content_length_gets_413, .init = setup, .fini = teardown)
{
	start(NULL);
	size_t n = CF_MAX_ADMISSION_BODY_BYTES + 1;
	char *b = big_body(n);
	ts_http_resp r = send_raw("POST", "/validate", b, n, false, false);
	cr_assert_eq(r.status, 413);
	ts_http_resp_free(&r);
	free(b);
	stop_ok();
}

Test(serve, oversize_body_with_expect_100_gets_413_before_the_body, .init = setup, .fini = teardown)
{
	start(NULL);
	size_t n = 2 * CF_MAX_ADMISSION_BODY_BYTES;
	char *b = big_body(n);
	ts_http_resp r = send_raw("POST", "/validate", b, n, false, true);
	cr_assert_eq(r.status, 413);
	cr_assert_null(strstr(r.headers, "100 Continue"), "no 100 Continue: %s", r.headers);
	cr_assert_lt(r.upload_bytes, (double)n, "the body was not sent");
	ts_http_resp_free(&r);
	free(b);
	stop_ok();
}

Test(serve, chunked_oversize_body_gets_413, .init = setup, .fini = teardown)
{
	start(NULL);
	size_t n = CF_MAX_ADMISSION_BODY_BYTES + 4096;
	char *b = big_body(n);
	ts_http_resp r = send_raw("POST", "/validate", b, n, true, false);
	cr_assert_eq(r.status, 413);
	ts_http_resp_free(&r);
	free(b);
	/* Still serving. */
	r = get(port, "/healthz", true);
	cr_assert_eq(r.status, 200);
	ts_http_resp_free(&r);
	stop_ok();
}

static void expect_400(const char *body, const char *needle)
{
	ts_http_resp r = send_raw("POST", "/validate", body, strlen(body), false, false);
	cr_assert_eq(r.status, 400, "%s -> %ld", body, r.status);
	cr_assert(strstr(r.body, needle), "message %s lacks %s", r.body, needle);
	ts_http_resp_free(&r);
}

Test(serve, not_json_gets_400, .init = setup, .fini = teardown)
{
	start(NULL);
	expect_400("this is not json", "not JSON");
	expect_400("{\"apiVersion\":", "not JSON");
	stop_ok();
}

Test(serve, wrong_api_version_or_kind_gets_400, .init = setup, .fini = teardown)
{
	start(NULL);
	expect_400("{\"apiVersion\":\"admission.k8s.io/v1beta1\",\"kind\":\"AdmissionReview\","
	           "\"request\":{\"uid\":\"u\"}}",
	           "apiVersion");
	expect_400("{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"Pod\"}", "kind");
	stop_ok();
}

Test(serve, missing_uid_gets_400, .init = setup, .fini = teardown)
{
	start(NULL);
	expect_400(
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":"
	    "{\"operation\":\"CREATE\",\"kind\":{\"kind\":\"Pod\"}}}",
	    "uid");
	stop_ok();
}

Test(serve, wrong_method_gets_405_and_unknown_path_404, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_http_resp r = get(port, "/validate", true);
	cr_assert_eq(r.status, 405);
	cr_assert(strstr(r.headers, "Allow: POST"), "%s", r.headers);
	ts_http_resp_free(&r);
	r = send_raw("POST", "/healthz", "x", 1, false, false);
	cr_assert_eq(r.status, 405);
	ts_http_resp_free(&r);
	r = get(port, "/nope", true);
	cr_assert_eq(r.status, 404);
	ts_http_resp_free(&r);
	r = get(probe_port, "/validate", false);
	cr_assert_eq(r.status, 404, "the plain port never serves /validate");
	ts_http_resp_free(&r);
	stop_ok();
}

Test(serve, tls_below_1_2_is_refused, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_http_resp r;
	ts_http_req req = {.port = port,
	                   .path = "/healthz",
	                   .ca_file = ca_path,
	                   .host = "localhost",
	                   .tls_max = "1.1"};
	cr_assert_neq(ts_https_do(&req, &r, err, sizeof err), 0, "TLS 1.1 must fail");
	ts_http_resp_free(&r);
	req.tls_max = "1.2";
	cr_assert_eq(ts_https_do(&req, &r, err, sizeof err), 0, "TLS 1.2 works: %s", err);
	cr_assert_eq(r.status, 200);
	ts_http_resp_free(&r);
	stop_ok();
}

Test(serve, client_hanging_up_mid_body_is_survived, .init = setup, .fini = teardown)
{
	start(NULL);
	for (int i = 0; i < 3; i++) {
		ts_tls *t = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
		cr_assert_not_null(t, "%s", err);
		const char *head = "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Length: "
		                   "5000\r\n\r\n{\"apiVersion\":";
		cr_assert_eq(ts_tls_write(t, head, strlen(head)), 0);
		ts_tls_close(t);
	}
	ts_http_resp r;
	char *body = review("uid-after", "CREATE", "Pod", pod_json(ts_worker_spec));
	cJSON *j = validate(body, &r);
	cr_assert(j && is_allowed(j));
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	bool seen = false;
	for (int i = 0; i < 40 && !seen; i++) {
		r = get(probe_port, "/metrics", false);
		seen = strstr(r.body,
		              "codeframe_webhook_errors_total{reason=\"client_aborted\"}") != NULL;
		ts_http_resp_free(&r);
		if (!seen) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	cr_assert(seen, "aborted requests are counted");
	stop_ok();
}

Test(serve, silent_client_times_out, .init = setup, .fini = teardown)
{
	char cfg[512];
	snprintf(cfg, sizeof cfg,
	         "server:\n  connectionTimeoutSeconds: 1\n  networkPolicyFiles: [%s]\n", np_path);
	start_with(cfg, NULL);
	int fd = ts_tcp_connect(port);
	cr_assert_geq(fd, 0);
	cr_assert(ts_tcp_peer_closed(fd, 5000), "the server closes a silent connection");
	close(fd);
	/* A client that stalls after the TLS handshake, mid-headers. */
	ts_tls *t = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_eq(ts_tls_write(t, "POST /validate HTTP/1.1\r\n", 25), 0);
	cr_assert(ts_tls_peer_closed(t, 5000), "stalled request times out");
	ts_tls_close(t);
	stop_ok();
}

Test(serve, connection_limit_holds, .init = setup, .fini = teardown)
{
	char cfg[512];
	snprintf(cfg, sizeof cfg,
	         "server:\n  threads: 1\n  connectionLimit: 2\n  connectionTimeoutSeconds: 5\n"
	         "  networkPolicyFiles: [%s]\n",
	         np_path);
	start_with(cfg, NULL);
	int a = ts_tcp_connect(port), b = ts_tcp_connect(port);
	cr_assert(a >= 0 && b >= 0);
	struct timespec ts = {0, 200 * 1000 * 1000};
	nanosleep(&ts, NULL);
	/* At the limit the server stops accepting: a third client is not
	 * served (it waits in the kernel's backlog) ... */
	ts_http_resp r;
	ts_http_req req = {.port = port,
	                   .path = "/healthz",
	                   .ca_file = ca_path,
	                   .host = "localhost",
	                   .timeout_ms = 1000};
	cr_assert_neq(ts_https_do(&req, &r, err, sizeof err), 0, "served over the limit");
	ts_http_resp_free(&r);
	/* ... until a slot frees up. */
	close(a);
	close(b);
	req.timeout_ms = 5000;
	cr_assert_eq(ts_https_do(&req, &r, err, sizeof err), 0, "%s", err);
	cr_assert_eq(r.status, 200);
	ts_http_resp_free(&r);
	stop_ok();
}

Test(serve, broken_new_certificate_keeps_the_old_one, .init = setup, .fini = teardown)
{
	start(NULL);
	char junk[320];
	snprintf(junk, sizeof junk, "%s/junk", dir);
	cr_assert_eq(ts_write_garbage(junk, 700), 0);
	cr_assert_eq(rename(junk, crt_path), 0);
	cr_assert_eq(ts_wait_for_text(log_path, "certificate reload failed", 5000), 0);
	ts_http_resp r = get(port, "/healthz", true);
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.subject, "webhook-v1"), "old certificate still served: %s", r.subject);
	ts_http_resp_free(&r);
	/* A mismatched pair is refused too: a new key with the old cert. */
	char crt2[320], key2[320];
	snprintf(crt2, sizeof crt2, "%s/n.crt", dir);
	snprintf(key2, sizeof key2, "%s/n.key", dir);
	issue("webhook-v3", crt2, key2);
	cr_assert_eq(rename(key2, key_path), 0);
	struct timespec ts = {2, 0};
	nanosleep(&ts, NULL);
	r = get(port, "/healthz", true);
	cr_assert(strstr(r.subject, "webhook-v1"), "%s", r.subject);
	ts_http_resp_free(&r);
	cr_assert_geq(ts_count_text(log_path, "certificate reload failed"), 2);
	stop_ok();
}

Test(serve, sighup_with_a_bad_config_keeps_the_old_one, .init = setup, .fini = teardown)
{
	char cfg[512];
	snprintf(cfg, sizeof cfg, "mode: enforce\nserver:\n  networkPolicyFiles: [%s]\n", np_path);
	start_with(cfg, NULL);
	write_file(cfg_path, "mode: enforse\nunknownKey: 1\n");
	cr_assert_eq(ts_proc_signal(&proc, SIGHUP), 0);
	cr_assert_eq(ts_wait_for_text(log_path, "config reload failed", 3000), 0);
	ts_http_resp r;
	char *body = review("uid-hup-bad", "CREATE", "Pod", pod_json(ts_violating_spec));
	cJSON *j = validate(body, &r);
	cr_assert(j && !is_allowed(j), "still enforcing with the old config");
	cJSON_Delete(j);
	ts_http_resp_free(&r);
	free(body);
	stop_ok();
}

static int run_to_exit(const char *const *argv)
{
	cr_assert_eq(ts_proc_spawn(&proc, (char *const *)argv, log_path), 0);
	cr_assert_eq(ts_proc_wait(&proc, 10000), 0, "exits on its own");
	cr_assert(WIFEXITED(proc.status));
	return WEXITSTATUS(proc.status);
}

Test(serve, startup_errors_are_json_lines_and_fail, .init = setup, .fini = teardown)
{
	const char *missing[] = {ts_webhook_bin(), "serve",      "--listen",
	                         "127.0.0.1:0",    "--tls-cert", "/nonexistent.crt",
	                         "--tls-key",      key_path,     NULL};
	cr_assert_eq(run_to_exit(missing), 1);
	char *log = ts_read_text(log_path);
	cr_assert(strstr(log, "{\"time\":") && strstr(log, "\"level\":\"error\"") &&
	              strstr(log, "nonexistent.crt"),
	          "%s", log);
	cr_assert_null(strstr(log, "PRIVATE KEY"), "no key material in logs");
	free(log);
	write_file(cfg_path, "modee: enforce\n");
	const char *badcfg[] = {ts_webhook_bin(), "serve", "--config", cfg_path, NULL};
	cr_assert_eq(run_to_exit(badcfg), 1);
	cr_assert_eq(ts_wait_for_text(log_path, "modee", 100), 0);
	const char *nocert[] = {ts_webhook_bin(), "serve", "--listen", "127.0.0.1:0", NULL};
	cr_assert_eq(run_to_exit(nocert), 1);
	const char *badflag[] = {ts_webhook_bin(), "serve", "--bogus", NULL};
	cr_assert_eq(run_to_exit(badflag), 2);
	cr_assert_eq(ts_wait_for_text(log_path, "\"msg\":\"bad command line\"", 100), 0);
	const char *badmode[] = {ts_webhook_bin(), "serve",     "--mode", "loud", "--tls-cert",
	                         crt_path,         "--tls-key", key_path, NULL};
	cr_assert_eq(run_to_exit(badmode), 1);
	const char *badaddr[] = {ts_webhook_bin(), "serve",     "--listen", "nowhere", "--tls-cert",
	                         crt_path,         "--tls-key", key_path,   NULL};
	cr_assert_eq(run_to_exit(badaddr), 1);
	const char *badnp[] = {ts_webhook_bin(),    "serve",      "--listen",
	                       "127.0.0.1:0",       "--tls-cert", crt_path,
	                       "--tls-key",         key_path,     "--network-policies",
	                       "/nonexistent.yaml", NULL};
	cr_assert_eq(run_to_exit(badnp), 1);
}

Test(serve, port_in_use_fails_cleanly, .init = setup, .fini = teardown)
{
	start(NULL);
	char listen[64];
	snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
	ts_proc second;
	const char *argv[] = {ts_webhook_bin(), "serve",     "--listen", listen, "--tls-cert",
	                      crt_path,         "--tls-key", key_path,   NULL};
	char log2[320];
	snprintf(log2, sizeof log2, "%s/second.log", dir);
	cr_assert_eq(ts_proc_spawn(&second, (char *const *)argv, log2), 0);
	int rc = ts_proc_wait(&second, 10000);
	if (rc)
		ts_proc_kill(&second);
	cr_assert_eq(rc, 0);
	cr_assert(WIFEXITED(second.status) && WEXITSTATUS(second.status) == 1);
	cr_assert_eq(ts_wait_for_text(log2, "in use", 100), 0);
	stop_ok();
}

/* ---- responses leave as one TLS record (wh_http cork) ---- */

/* Reads from t until `needle` has been seen `count` times, the peer closes
 * or nothing arrives for 3 s; returns how often it was seen. */
static int read_counting(ts_tls *t, char *buf, size_t cap, const char *needle, int count)
{
	size_t len = 0;
	int seen = 0;
	while (seen < count) {
		if (len + 1 >= cap) { /* keep the tail, drop what was counted */
			size_t keep = strlen(needle);
			memmove(buf, buf + len - keep, keep);
			len = keep;
		}
		long n = ts_tls_read(t, buf + len, cap - len - 1, 3000);
		if (n <= 0)
			break;
		buf[len + (size_t)n] = '\0';
		/* count occurrences that end in the new bytes */
		size_t from = len >= strlen(needle) ? len - strlen(needle) + 1 : 0;
		len += (size_t)n;
		for (char *p = strstr(buf + from, needle); p; p = strstr(p + 1, needle))
			seen++;
	}
	return seen;
}

Test(serve, closing_clients_get_whole_responses, .init = setup, .fini = teardown)
{
	start(NULL);
	char *body = review("uid-close", "CREATE", "Pod", pod_json(ts_worker_spec));
	const char *forms[] = {"HTTP/1.1\r\nConnection: close", "HTTP/1.0"};
	for (size_t i = 0; i < 2; i++) {
		ts_tls *t = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
		cr_assert_not_null(t, "%s", err);
		char head[256];
		snprintf(head, sizeof head,
		         "POST /validate %s\r\nHost: localhost\r\nContent-Type: "
		         "application/json\r\nContent-Length: %zu\r\n\r\n",
		         forms[i], strlen(body));
		cr_assert_eq(ts_tls_write(t, head, strlen(head)), 0);
		cr_assert_eq(ts_tls_write(t, body, strlen(body)), 0);
		char buf[8192] = "";
		cr_assert_eq(read_counting(t, buf, sizeof buf, "\"allowed\":true}}", 1), 1,
		             "%s: %s", forms[i], buf);
		cr_assert(strstr(buf, " 200 OK"), "%s", buf);
		cr_assert(ts_tls_peer_closed(t, 3000), "%s: the server closes after it", forms[i]);
		ts_tls_close(t);
	}
	free(body);
	stop_ok();
}

Test(serve, pipelined_requests_are_all_answered_in_order, .init = setup, .fini = teardown)
{
	start(NULL);
	ts_tls *t = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	char *body = review("uid-pipe", "CREATE", "Pod", pod_json(ts_worker_spec));
	size_t blen = strlen(body), n = 40;
	cf_buf all;
	cf_buf_init(&all, 0);
	for (size_t i = 0; i < n; i++) {
		if (i % 2)
			cf_buf_append_str(&all, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
		else
			cf_buf_appendf(
			    &all,
			    "POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
			    "application/json\r\nContent-Length: %zu\r\n\r\n%s",
			    blen, body);
	}
	cr_assert_eq(ts_tls_write(t, all.data, all.len), 0);
	char buf[16384] = "";
	cr_assert_eq(read_counting(t, buf, sizeof buf, "HTTP/1.1 200", (int)n), (int)n);
	ts_tls_close(t);
	cf_buf_free(&all);
	free(body);
	stop_ok();
}

/* Far more answers than the socket buffers hold, none read for a while:
 * other clients are served meanwhile, and this one gets every answer once
 * it reads. */
static void pipeline_without_reading(const char *req, size_t n)
{
	ts_tls *t = ts_tls_connect(port, "localhost", ca_path, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	cf_buf all;
	cf_buf_init(&all, 0);
	for (size_t i = 0; i < n; i++)
		cf_buf_append_str(&all, req);
	cr_assert_eq(ts_tls_write(t, all.data, all.len), 0);
	struct timespec pause = {0, 600 * 1000 * 1000};
	nanosleep(&pause, NULL);
	/* Other clients are served meanwhile. */
	ts_http_resp r = get(port, "/healthz", true);
	cr_assert_eq(r.status, 200);
	ts_http_resp_free(&r);
	/* And the stalled client still gets every answer once it reads. */
	char buf[16384] = "";
	cr_assert_eq(read_counting(t, buf, sizeof buf, "HTTP/1.1 200", (int)n), (int)n);
	ts_tls_close(t);
	cf_buf_free(&all);
}

Test(serve, client_not_reading_pipelined_answers_does_not_stall_others, .init = setup,
     .timeout = 60, .fini = teardown)
{
	start(NULL);
	/* Answers of a few KiB (metrics), and tiny ones, many of which are
	 * corked between two checks of the socket's queue. */
	pipeline_without_reading("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n", 2000);
	pipeline_without_reading("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n", 20000);
	stop_ok();
}
