/* End to end: the real `codeframe-webhook serve --tls-secret ...` binary
 * against the fake API server. A client that trusts ONLY the caBundle
 * written into the ValidatingWebhookConfiguration and asks for SNI
 * hook.guard.svc completes a handshake; /readyz is 503 until then; a short
 * leaf is renewed while a client keeps connecting with no failed
 * handshake; a second replica adopts the first one's Secret; an outage
 * keeps the certificate served; bad flag combinations and an absent
 * configuration are refused or reported. */
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
#include <openssl/evp.h>

#include "support/fake_apiserver.h"
#include "support/fake_ca.h"
#include "support/ts_https.h"
#include "support/ts_proc.h"

#define SECRETS "/api/v1/secrets"
#define VWCS    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
#define SNI     "hook.guard.svc"

static char err[2048];
static fake_ca ca;
static fake_apiserver *fs;
static char kc_path[400], cfg_path[400], bundle_path[400];

typedef struct replica {
	ts_proc proc;
	unsigned port, probe;
	char log[400];
} replica;

static replica r1, r2;

static const char *bin(void)
{
	static char path[512];
	const char *b = getenv("CF_BUILD_DIR");
	snprintf(path, sizeof path, "%s/codeframe-webhook", b && *b ? b : "build");
	return path;
}

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

static void put_vwc(void)
{
	cr_assert_gt(fake_apiserver_put(
	                 fs, VWCS,
	                 "{\"metadata\":{\"name\":\"guard-vwc\"},\"webhooks\":["
	                 "{\"name\":\"a.codeframe.io\",\"clientConfig\":{\"service\":{"
	                 "\"namespace\":\"guard\",\"name\":\"hook\",\"path\":\"/validate\"}}},"
	                 "{\"name\":\"b.codeframe.io\",\"clientConfig\":{\"service\":{"
	                 "\"namespace\":\"guard\",\"name\":\"hook\",\"path\":\"/validate\"}}}]}"),
	             0);
}

static void write_config(const char *extra)
{
	char text[2048];
	snprintf(text, sizeof text,
	         "server:\n  tlsSyncIntervalSeconds: 1\n  tlsRolloverPropagationSeconds: 1\n%s",
	         extra ? extra : "");
	cr_assert_eq(fake_ca_write_file(ca.dir, "config.yaml", text, cfg_path, sizeof cfg_path), 0);
}

static void setup(void)
{
	ts_https_global_init();
	cr_assert_eq(fake_ca_create(&ca, "e2e", err, sizeof err), 0, "%s", err);
	fs = fake_apiserver_start(&ca, "tok", err, sizeof err);
	cr_assert_not_null(fs, "%s", err);
	char kc[4096];
	snprintf(kc, sizeof kc,
	         "apiVersion: v1\nkind: Config\ncurrent-context: e2e\n"
	         "clusters:\n- name: fake\n  cluster:\n    server: %s\n"
	         "    certificate-authority: ca.crt\n"
	         "contexts:\n- name: e2e\n  context: {cluster: fake, user: u}\n"
	         "users:\n- name: u\n  user:\n    token: tok\n",
	         fake_apiserver_url(fs));
	cr_assert_eq(fake_ca_write_file(ca.dir, "kubeconfig", kc, kc_path, sizeof kc_path), 0);
	snprintf(bundle_path, sizeof bundle_path, "%s/cabundle.pem", ca.dir);
	write_config(NULL);
	put_vwc();
	memset(&r1, 0, sizeof r1);
	memset(&r2, 0, sizeof r2);
}

static void teardown(void)
{
	ts_proc_kill(&r1.proc);
	ts_proc_kill(&r2.proc);
	fake_apiserver_stop(fs);
	fs = NULL;
	fake_ca_destroy(&ca);
}

static void start_replica(replica *r, const char *name)
{
	snprintf(r->log, sizeof r->log, "%s/%s.log", ca.dir, name);
	for (int attempt = 0; attempt < 3; attempt++) {
		r->port = ts_free_port();
		r->probe = ts_free_port();
		char listen[64], probe[64];
		snprintf(listen, sizeof listen, "127.0.0.1:%u", r->port);
		snprintf(probe, sizeof probe, "127.0.0.1:%u", r->probe);
		char *argv[] = {(char *)bin(),
		                "serve",
		                "--config",
		                cfg_path,
		                "--listen",
		                listen,
		                "--probe-listen",
		                probe,
		                "--kubeconfig",
		                kc_path,
		                "--tls-secret",
		                "guard/guard-tls",
		                "--webhook-config",
		                "guard-vwc",
		                "--service",
		                "hook",
		                NULL};
		cr_assert_eq(ts_proc_spawn(&r->proc, argv, r->log), 0);
		ts_proc_atexit(&r->proc);
		if (ts_proc_wait_port(&r->proc, "127.0.0.1", r->probe, scaled(10000)) == 0)
			return;
		ts_proc_kill(&r->proc);
	}
	char *log = ts_read_text(r->log);
	cr_assert_fail("webhook did not start: %s", log ? log : "(no log)");
}

static long probe_status(replica *r, const char *path)
{
	ts_http_req rq = {.port = r->probe, .path = path, .timeout_ms = 5000};
	ts_http_resp resp;
	memset(&resp, 0, sizeof resp);
	long st = ts_https_do(&rq, &resp, err, sizeof err) == 0 ? resp.status : 0;
	ts_http_resp_free(&resp);
	return st;
}

static bool wait_ready(replica *r, unsigned bound_ms)
{
	long end = now_ms() + (long)bound_ms;
	do {
		if (probe_status(r, "/readyz") == 200)
			return true;
		usleep(50000);
	} while (now_ms() < end);
	return false;
}

/* Writes webhook i's caBundle (decoded) to bundle_path; false if none. */
static bool save_bundle(int i)
{
	char *text = fake_apiserver_get(fs, VWCS, "", "guard-vwc");
	cJSON *o = cJSON_Parse(text);
	free(text);
	const cJSON *cab = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "webhooks"), i),
	        "clientConfig"),
	    "caBundle");
	bool ok = false;
	if (cJSON_IsString(cab)) {
		size_t l = strlen(cab->valuestring);
		unsigned char *buf = calloc(1, l + 1);
		int n = EVP_DecodeBlock(buf, (const unsigned char *)cab->valuestring, (int)l);
		char out[400];
		ok = n > 0 &&
		     fake_ca_write_file(ca.dir, "cabundle.pem", (char *)buf, out, sizeof out) == 0;
		free(buf);
	}
	cJSON_Delete(o);
	return ok;
}

/* One HTTPS request trusting only the saved bundle, SNI hook.guard.svc. */
static long https_get(replica *r, const char *path, char *serial, size_t seriallen)
{
	ts_http_req rq = {
	    .host = SNI, .port = r->port, .path = path, .ca_file = bundle_path, .timeout_ms = 5000};
	ts_http_resp resp;
	memset(&resp, 0, sizeof resp);
	long st = ts_https_do(&rq, &resp, err, sizeof err) == 0 ? resp.status : 0;
	if (serial)
		snprintf(serial, seriallen, "%s", resp.serial);
	ts_http_resp_free(&resp);
	return st;
}

Test(selfmanaged_e2e, client_trusting_only_the_cabundle_completes_a_handshake, .init = setup,
     .fini = teardown)
{
	start_replica(&r1, "r1");
	cr_assert(wait_ready(&r1, scaled(15000)), "never ready: %s", ts_read_text(r1.log));
	cr_assert(save_bundle(0));
	cr_assert_eq(https_get(&r1, "/healthz", NULL, 0), 200, "%s", err);
	cr_assert(save_bundle(1), "the second webhook has no caBundle");
	cr_assert_eq(https_get(&r1, "/healthz", NULL, 0), 200, "%s", err);
	/* The fake CA of the API server is not trusted for the webhook. */
	ts_http_req rq = {.host = SNI, .port = r1.port, .path = "/healthz", .ca_file = ca.ca_file};
	ts_http_resp resp;
	memset(&resp, 0, sizeof resp);
	cr_assert_neq(ts_https_do(&rq, &resp, err, sizeof err), 0, "an unrelated CA was accepted");
	ts_http_resp_free(&resp);
	char *secret = fake_apiserver_get(fs, SECRETS, "guard", "guard-tls");
	cr_assert_not_null(secret);
	cr_assert(strstr(secret, "kubernetes.io/tls"));
	free(secret);
	/* Metrics carry the expiry and the TLS counters. */
	ts_http_req mq = {.port = r1.probe, .path = "/metrics", .timeout_ms = 5000};
	memset(&resp, 0, sizeof resp);
	cr_assert_eq(ts_https_do(&mq, &resp, err, sizeof err), 0, "%s", err);
	cr_assert(strstr(resp.body, "codeframe_webhook_certificate_rotations_total"));
	cr_assert(strstr(resp.body, "codeframe_webhook_certificate_api_errors_total"));
	cr_assert(strstr(resp.body, "codeframe_webhook_ca_expiry_timestamp_seconds"));
	cr_assert_null(
	    strstr(resp.body, "codeframe_webhook_certificate_expiry_timestamp_seconds 0\n"), "%s",
	    resp.body);
	ts_http_resp_free(&resp);
}

Test(selfmanaged_e2e, leaf_renewed_with_no_failed_handshake, .init = setup, .fini = teardown)
{
	write_config("  tlsLeafValiditySeconds: 4\n  tlsCAValiditySeconds: 3600\n");
	start_replica(&r1, "r1");
	cr_assert(wait_ready(&r1, scaled(15000)), "never ready: %s", ts_read_text(r1.log));
	cr_assert(save_bundle(0));
	char first[128] = "", cur[128];
	unsigned ok = 0, failed = 0, serials = 0;
	long end = now_ms() + 9000;
	while (now_ms() < end) {
		long st = https_get(&r1, "/healthz", cur, sizeof cur);
		if (st == 200) {
			ok++;
			if (strcmp(cur, first) != 0) {
				serials++;
				snprintf(first, sizeof first, "%s", cur);
			}
		} else {
			failed++;
		}
		usleep(100000);
	}
	cr_assert_eq(failed, 0, "%u failed handshakes (last: %s)", failed, err);
	cr_assert_gt(ok, 10);
	cr_assert_geq(serials, 3, "the leaf was not renewed (%u serials)", serials);
}

Test(selfmanaged_e2e, second_replica_adopts_and_outage_keeps_serving, .init = setup,
     .fini = teardown)
{
	start_replica(&r1, "r1");
	cr_assert(wait_ready(&r1, scaled(15000)));
	long rv = fake_apiserver_resource_version(fs);
	start_replica(&r2, "r2");
	cr_assert(wait_ready(&r2, scaled(15000)), "%s", ts_read_text(r2.log));
	cr_assert(save_bundle(0));
	char s1[128], s2[128];
	cr_assert_eq(https_get(&r1, "/healthz", s1, sizeof s1), 200);
	cr_assert_eq(https_get(&r2, "/healthz", s2, sizeof s2), 200);
	cr_assert_str_eq(s1, s2, "the replicas serve different certificates");
	cr_assert_eq(fake_apiserver_resource_version(fs), rv, "the second replica wrote");
	/* Outage: both keep serving and stay ready. */
	fake_apiserver_set_down(fs, 503, NULL);
	sleep(3);
	cr_assert_eq(https_get(&r1, "/healthz", NULL, 0), 200);
	cr_assert_eq(https_get(&r2, "/healthz", NULL, 0), 200);
	cr_assert_eq(probe_status(&r1, "/readyz"), 200);
	cr_assert(ts_count_text(r1.log, "TLS sync failed") > 0);
	fake_apiserver_set_down(fs, 0, NULL);
}

Test(selfmanaged_e2e_bad, absent_configuration_is_not_ready_until_created, .init = setup,
     .fini = teardown)
{
	cr_assert_gt(fake_apiserver_delete(fs, VWCS, "", "guard-vwc"), 0);
	start_replica(&r1, "r1");
	sleep(2);
	cr_assert_eq(probe_status(&r1, "/readyz"), 503);
	cr_assert_eq(probe_status(&r1, "/healthz"), 200);
	/* No certificate is served before its CA is in a caBundle. */
	ts_http_req rq = {.host = SNI,
	                  .port = r1.port,
	                  .path = "/healthz",
	                  .ca_file = ca.ca_file,
	                  .timeout_ms = 3000};
	ts_http_resp resp;
	memset(&resp, 0, sizeof resp);
	cr_assert_neq(ts_https_do(&rq, &resp, err, sizeof err), 0);
	ts_http_resp_free(&resp);
	cr_assert(ts_wait_for_text(r1.log, "not found", scaled(5000)) == 0);
	put_vwc();
	cr_assert(wait_ready(&r1, scaled(15000)), "%s", ts_read_text(r1.log));
	cr_assert(save_bundle(0));
	cr_assert_eq(https_get(&r1, "/healthz", NULL, 0), 200, "%s", err);
}

Test(selfmanaged_e2e_bad, forbidden_secret_is_not_ready, .init = setup, .fini = teardown)
{
	fake_apiserver_set_down(fs, 403, "/secrets");
	start_replica(&r1, "r1");
	cr_assert(ts_wait_for_text(r1.log, "403", scaled(5000)) == 0);
	cr_assert_eq(probe_status(&r1, "/readyz"), 503);
	fake_apiserver_set_down(fs, 0, NULL);
}

static int run_expect_failure(char *const *extra, char *out, size_t outlen)
{
	char listen[64];
	snprintf(listen, sizeof listen, "127.0.0.1:%u", ts_free_port());
	char *argv[24];
	int n = 0;
	argv[n++] = (char *)bin();
	argv[n++] = "serve";
	argv[n++] = "--listen";
	argv[n++] = listen;
	for (; *extra && n < 22; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	snprintf(r1.log, sizeof r1.log, "%s/fail.log", ca.dir);
	cr_assert_eq(ts_proc_spawn(&r1.proc, argv, r1.log), 0);
	ts_proc_atexit(&r1.proc);
	cr_assert_eq(ts_proc_wait(&r1.proc, scaled(10000)), 0, "exits by itself");
	char *log = ts_read_text(r1.log);
	snprintf(out, outlen, "%s", log ? log : "");
	free(log);
	return WIFEXITED(r1.proc.status) ? WEXITSTATUS(r1.proc.status) : -1;
}

Test(selfmanaged_e2e_bad, incomplete_flags_refused, .init = setup, .fini = teardown)
{
	char out[4096];
	char *extra[] = {
	    "--kubeconfig", kc_path, "--tls-secret", "guard/guard-tls", "--webhook-config",
	    "guard-vwc",    NULL};
	cr_assert_neq(run_expect_failure(extra, out, sizeof out), 0);
	cr_assert(strstr(out, "--service"), "%s", out);
}

Test(selfmanaged_e2e_bad, files_and_secret_exclude_each_other, .init = setup, .fini = teardown)
{
	char out[4096];
	char *extra[] = {"--kubeconfig",
	                 kc_path,
	                 "--tls-secret",
	                 "guard/guard-tls",
	                 "--webhook-config",
	                 "guard-vwc",
	                 "--service",
	                 "hook",
	                 "--tls-cert",
	                 ca.server_cert_file,
	                 "--tls-key",
	                 ca.server_key_file,
	                 NULL};
	cr_assert_neq(run_expect_failure(extra, out, sizeof out), 0);
	cr_assert(strstr(out, "exclude each other"), "%s", out);
}

Test(selfmanaged_e2e_bad, malformed_secret_flag_refused, .init = setup, .fini = teardown)
{
	char out[4096];
	char *extra[] = {
	    "--kubeconfig", kc_path,     "--tls-secret", "no-slash", "--webhook-config",
	    "guard-vwc",    "--service", "hook",         NULL};
	cr_assert_neq(run_expect_failure(extra, out, sizeof out), 0);
	cr_assert(strstr(out, "NAMESPACE/NAME"), "%s", out);
}

Test(selfmanaged_e2e_bad, bad_key_type_in_config_refused, .init = setup, .fini = teardown)
{
	write_config("  tlsKeyType: rsa-1024\n");
	char out[4096];
	char *extra[] = {"--config",
	                 cfg_path,
	                 "--kubeconfig",
	                 kc_path,
	                 "--tls-secret",
	                 "guard/guard-tls",
	                 "--webhook-config",
	                 "guard-vwc",
	                 "--service",
	                 "hook",
	                 NULL};
	cr_assert_neq(run_expect_failure(extra, out, sizeof out), 0);
	cr_assert(strstr(out, "tlsKeyType"), "%s", out);
}

Test(selfmanaged_e2e_bad, ca_shorter_than_two_leaves_refused, .init = setup, .fini = teardown)
{
	write_config("  tlsLeafValiditySeconds: 100\n  tlsCAValiditySeconds: 150\n");
	char out[4096];
	char *extra[] = {"--config",
	                 cfg_path,
	                 "--kubeconfig",
	                 kc_path,
	                 "--tls-secret",
	                 "guard/guard-tls",
	                 "--webhook-config",
	                 "guard-vwc",
	                 "--service",
	                 "hook",
	                 NULL};
	cr_assert_neq(run_expect_failure(extra, out, sizeof out), 0);
	cr_assert(strstr(out, "twice"), "%s", out);
}

Test(selfmanaged_e2e_bad, no_api_access_refused, .init = setup, .fini = teardown)
{
	char out[4096];
	char *extra[] = {"--tls-secret",
	                 "guard/guard-tls",
	                 "--webhook-config",
	                 "guard-vwc",
	                 "--service",
	                 "hook",
	                 NULL};
	cr_assert_neq(run_expect_failure(extra, out, sizeof out), 0);
	cr_assert(strstr(out, "API access"), "%s", out);
}

Test(selfmanaged_e2e, sigterm_stops_the_manager_and_exits_cleanly, .init = setup, .fini = teardown)
{
	start_replica(&r1, "r1");
	cr_assert(wait_ready(&r1, scaled(15000)), "never ready: %s", ts_read_text(r1.log));
	cr_assert_eq(ts_proc_signal(&r1.proc, SIGTERM), 0);
	cr_assert_eq(ts_proc_wait(&r1.proc, scaled(15000)), 0, "did not exit");
	/* Under ASan a leak at exit would make the status non-zero. */
	cr_assert(WIFEXITED(r1.proc.status) && WEXITSTATUS(r1.proc.status) == 0, "status %d: %s",
	          r1.proc.status, ts_read_text(r1.log));
}
