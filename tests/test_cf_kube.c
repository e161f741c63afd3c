/* Tests for common/cf_kube: kubeconfig and in-cluster configuration (good
 * and malformed), requests against the fake API server (tokens, client
 * certificates, TLS verification, API errors with their Status message),
 * streams, abort, token rotation, and the backoff bounds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cf_kube.h"
#include "support/fake_apiserver.h"
#include "support/fake_ca.h"

static char err[2048];
static fake_ca ca;
static fake_apiserver *fs;

#define NP "/apis/networking.k8s.io/v1/networkpolicies"

static void b64(const char *in, char *out, size_t outlen)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
		unsigned v = (unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = t[(v >> 18) & 63];
		out[o++] = t[(v >> 12) & 63];
		out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = '\0';
}

static void setup_ca(void)
{
	cr_assert_eq(fake_ca_create(&ca, "alice", err, sizeof err), 0, "%s", err);
}

static void setup_server(void)
{
	setup_ca();
	fs = fake_apiserver_start(&ca, "good-token", err, sizeof err);
	cr_assert_not_null(fs, "%s", err);
}

static void teardown(void)
{
	fake_apiserver_stop(fs);
	fs = NULL;
	fake_ca_destroy(&ca);
}

static void teardown_ca(void)
{
	fake_ca_destroy(&ca);
}

static int parse_kc(const char *text, cf_kube_config *out)
{
	err[0] = '\0';
	return cf_kube_config_kubeconfig_text(text, strlen(text), "kc.yaml", ca.dir, NULL, out, err,
	                                      sizeof err);
}

/* A kubeconfig for the fake server with the given user block. */
static void kubeconfig(char *out, size_t outlen, const char *server, const char *user)
{
	static char cadata[8192];
	b64(ca.ca_pem, cadata, sizeof cadata);
	snprintf(out, outlen,
	         "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
	         "clusters:\n- name: c1\n  cluster:\n    server: %s\n"
	         "    certificate-authority-data: %s\n"
	         "contexts:\n- name: test\n  context:\n    cluster: c1\n    user: u1\n"
	         "    namespace: team-a\n"
	         "- name: other\n  context:\n    cluster: c1\n    user: u2\n"
	         "users:\n- name: u1\n  user:\n%s"
	         "- name: u2\n  user:\n    client-certificate: client.crt\n"
	         "    client-key: client.key\n",
	         server, cadata, user);
}

static char kc[32768];

/* ---- kubeconfig ------------------------------------------------------- */

Test(kubeconfig, token_and_ca_data, .init = setup_ca, .fini = teardown_ca)
{
	cf_kube_config c;
	kubeconfig(kc, sizeof kc, "https://127.0.0.1:6443/", "    token: abc.def\n");
	cr_assert_eq(parse_kc(kc, &c), 0, "%s", err);
	cr_assert_str_eq(c.server, "https://127.0.0.1:6443", "trailing slash dropped");
	cr_assert_str_eq(c.token, "abc.def");
	cr_assert_eq(c.ca_len, strlen(ca.ca_pem));
	cr_assert_eq(memcmp(c.ca_pem, ca.ca_pem, c.ca_len), 0);
	cr_assert_str_eq(c.namespace_name, "team-a");
	cr_assert_null(c.cert_pem);
	cr_assert(strstr(c.source, "context test"));
	cf_kube_config_free(&c);
}

Test(kubeconfig, named_context_with_relative_client_cert_files, .init = setup_ca,
     .fini = teardown_ca)
{
	cf_kube_config c;
	kubeconfig(kc, sizeof kc, "https://[::1]:6443", "    token: abc\n");
	cr_assert_eq(cf_kube_config_kubeconfig_text(kc, strlen(kc), "kc", ca.dir, "other", &c, err,
	                                            sizeof err),
	             0, "%s", err);
	cr_assert_str_eq(c.server, "https://[::1]:6443");
	cr_assert_not_null(c.cert_pem);
	cr_assert_not_null(c.key_pem);
	cr_assert_null(c.token);
	cr_assert_str_eq(c.cert_pem, ca.client_cert_pem);
	cf_kube_config_free(&c);
}

Test(kubeconfig, file_with_token_file, .init = setup_ca, .fini = teardown_ca)
{
	char tok[400], path[400];
	cr_assert_eq(fake_ca_write_file(ca.dir, "tok", "file-token\n", tok, sizeof tok), 0);
	kubeconfig(kc, sizeof kc, "https://127.0.0.1:1", "    tokenFile: tok\n");
	cr_assert_eq(fake_ca_write_file(ca.dir, "kc.yaml", kc, path, sizeof path), 0);
	cf_kube_config c;
	cr_assert_eq(cf_kube_config_kubeconfig(path, NULL, &c, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(c.token_file, tok, "relative to the kubeconfig's directory");
	cr_assert_null(c.token);
	cf_kube_config_free(&c);
	unlink(path);
	unlink(tok);
}

static void expect_kc_error(const char *text, int code, const char *needle)
{
	cf_kube_config c;
	int rc = parse_kc(text, &c);
	cr_assert_eq(rc, code, "rc %d for: %s", rc, err);
	cr_assert(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
	cr_assert(strstr(err, "kc.yaml"), "message names the file: %s", err);
	cr_assert_null(c.ca_pem);
	cr_assert_null(c.token);
}

Test(kubeconfig_bad, yaml_syntax_error_names_line, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("apiVersion: v1\nclusters: [\n  - a: b\n  c\n", -EINVAL, "line");
}

Test(kubeconfig_bad, no_current_context, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("apiVersion: v1\nkind: Config\nclusters: []\n", -EINVAL,
	                "no current-context");
}

Test(kubeconfig_bad, unknown_context, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("current-context: nope\ncontexts:\n- name: x\n  context: {cluster: c}\n",
	                -EINVAL, "no contexts entry named \"nope\"");
}

Test(kubeconfig_bad, unknown_cluster_and_user, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n",
	                -EINVAL, "no clusters entry named \"c\"");
	expect_kc_error("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: "
	                "u}\nclusters:\n- name: c\n  cluster: {server: \"https://h\"}\n",
	                -EINVAL, "no users entry named \"u\"");
}

Test(kubeconfig_bad, cluster_without_server, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
	                "clusters:\n- name: c\n  cluster: {}\n",
	                -EINVAL, "has no server");
}

Test(kubeconfig_bad, plain_http_server_refused, .init = setup_ca, .fini = teardown_ca)
{
	kubeconfig(kc, sizeof kc, "http://127.0.0.1:8080", "    token: a\n");
	expect_kc_error(kc, -EINVAL, "not an https:// URL");
}

Test(kubeconfig_bad, server_with_userinfo_refused, .init = setup_ca, .fini = teardown_ca)
{
	kubeconfig(kc, sizeof kc, "https://user@127.0.0.1", "    token: a\n");
	expect_kc_error(kc, -EINVAL, "not allowed");
}

Test(kubeconfig_bad, insecure_skip_tls_verify_refused, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
	                "clusters:\n- name: c\n  cluster: {server: \"https://h\", "
	                "insecure-skip-tls-verify: true}\n",
	                -EINVAL, "TLS verification is always on");
}

Test(kubeconfig_bad, exec_plugin_refused, .init = setup_ca, .fini = teardown_ca)
{
	kubeconfig(
	    kc, sizeof kc, "https://h",
	    "    exec:\n      command: aws\n      apiVersion: client.authentication.k8s.io/v1\n");
	expect_kc_error(kc, -EINVAL, "exec credential plugins");
}

Test(kubeconfig_bad, basic_auth_refused, .init = setup_ca, .fini = teardown_ca)
{
	kubeconfig(kc, sizeof kc, "https://h", "    username: a\n    password: b\n");
	expect_kc_error(kc, -EINVAL, "basic authentication");
}

Test(kubeconfig_bad, bad_base64_ca, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
	                "clusters:\n- name: c\n  cluster: {server: \"https://h\", "
	                "certificate-authority-data: \"@@notbase64@@\"}\n",
	                -EINVAL, "certificate-authority-data is not valid base64");
}

Test(kubeconfig_bad, missing_ca_file_named, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
	                "clusters:\n- name: c\n  cluster: {server: \"https://h\", "
	                "certificate-authority: /nonexistent/ca.crt}\n",
	                -ENOENT, "certificate-authority: /nonexistent/ca.crt");
}

Test(kubeconfig_bad, cert_without_key, .init = setup_ca, .fini = teardown_ca)
{
	kubeconfig(kc, sizeof kc, "https://h", "    client-certificate: client.crt\n");
	expect_kc_error(kc, -EINVAL, "needs a client key");
}

Test(kubeconfig_bad, token_and_token_file, .init = setup_ca, .fini = teardown_ca)
{
	kubeconfig(kc, sizeof kc, "https://h", "    token: a\n    tokenFile: client.crt\n");
	expect_kc_error(kc, -EINVAL, "not both");
}

Test(kubeconfig_bad, wrong_types_and_kind, .init = setup_ca, .fini = teardown_ca)
{
	expect_kc_error("kind: Pod\n", -EINVAL, "expected Config");
	expect_kc_error("current-context: [a]\n", -EINVAL, "must be a string");
	expect_kc_error("current-context: x\ncontexts: {a: 1}\n", -EINVAL, "must be a list");
	expect_kc_error("- a\n- b\n", -EINVAL, "not a mapping");
	expect_kc_error("a: 1\n---\nb: 2\n", -EINVAL, "exactly one YAML document");
}

Test(kubeconfig_bad, missing_file)
{
	cf_kube_config c;
	cr_assert_eq(
	    cf_kube_config_kubeconfig("/nonexistent/kubeconfig", NULL, &c, err, sizeof err),
	    -ENOENT);
	cr_assert(strstr(err, "/nonexistent/kubeconfig"));
}

/* ---- in-cluster ------------------------------------------------------- */

static char sadir[300];

static void setup_sa(void)
{
	setup_ca();
	snprintf(sadir, sizeof sadir, "%s", ca.dir);
	char p[400];
	cr_assert_eq(fake_ca_write_file(sadir, "token", "sa-token\n", p, sizeof p), 0);
	cr_assert_eq(fake_ca_write_file(sadir, "namespace", "codeframe-guard", p, sizeof p), 0);
	/* ca.crt: the fake CA's file is named ca.crt already. */
}

static void teardown_sa(void)
{
	char p[400];
	snprintf(p, sizeof p, "%s/token", sadir);
	unlink(p);
	snprintf(p, sizeof p, "%s/namespace", sadir);
	unlink(p);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	teardown_ca();
}

Test(in_cluster, ipv4_and_files, .init = setup_sa, .fini = teardown_sa)
{
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	cr_assert(cf_kube_in_cluster_detect(sadir));
	cf_kube_config c;
	cr_assert_eq(cf_kube_config_in_cluster(sadir, &c, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(c.server, "https://10.96.0.1:443");
	cr_assert_str_eq(c.namespace_name, "codeframe-guard");
	cr_assert(strstr(c.token_file, "/token"));
	cr_assert_not_null(c.ca_pem);
	cf_kube_config_free(&c);
}

Test(in_cluster, ipv6_host_is_bracketed, .init = setup_sa, .fini = teardown_sa)
{
	setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	cf_kube_config c;
	cr_assert_eq(cf_kube_config_in_cluster(sadir, &c, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(c.server, "https://[fd00:10:96::1]:6443");
	cf_kube_config_free(&c);
}

Test(in_cluster_bad, not_in_a_cluster, .init = setup_sa, .fini = teardown_sa)
{
	unsetenv("KUBERNETES_SERVICE_HOST");
	cr_assert_not(cf_kube_in_cluster_detect(sadir));
	cf_kube_config c;
	cr_assert_eq(cf_kube_config_in_cluster(sadir, &c, err, sizeof err), -ENOENT);
	cr_assert(strstr(err, "KUBERNETES_SERVICE_HOST"));
}

Test(in_cluster_bad, token_file_missing, .init = setup_sa, .fini = teardown_sa)
{
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	cr_assert_not(cf_kube_in_cluster_detect("/nonexistent"));
	cf_kube_config c;
	cr_assert_eq(cf_kube_config_in_cluster("/nonexistent", &c, err, sizeof err), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/token"), "%s", err);
}

Test(in_cluster_bad, malformed_environment, .init = setup_sa, .fini = teardown_sa)
{
	cf_kube_config c;
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	const char *ports[] = {"0", "65536", "44x", "-1", ""};
	for (size_t i = 0; i < sizeof ports / sizeof *ports; i++) {
		setenv("KUBERNETES_SERVICE_PORT", ports[i], 1);
		int rc = cf_kube_config_in_cluster(sadir, &c, err, sizeof err);
		cr_assert(rc == -EINVAL || rc == -ENOENT, "port \"%s\" accepted", ports[i]);
	}
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	const char *hosts[] = {"evil.com/path", "a@b", "h h", "x?y"};
	for (size_t i = 0; i < sizeof hosts / sizeof *hosts; i++) {
		setenv("KUBERNETES_SERVICE_HOST", hosts[i], 1);
		cr_assert_eq(cf_kube_config_in_cluster(sadir, &c, err, sizeof err), -EINVAL,
		             "host \"%s\" accepted", hosts[i]);
		cr_assert(strstr(err, "KUBERNETES_SERVICE_HOST"));
	}
}

Test(in_cluster_bad, empty_token, .init = setup_sa, .fini = teardown_sa)
{
	char p[400];
	cr_assert_eq(fake_ca_write_file(sadir, "token", " \n", p, sizeof p), 0);
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	cf_kube_config c;
	cr_assert_eq(cf_kube_config_in_cluster(sadir, &c, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "empty"), "%s", err);
}

/* ---- requests against the fake API server ------------------------------ */

static cf_kube *client_with(const char *token, const char *ca_pem, bool cert)
{
	cf_kube_config c;
	cf_kube_config_init(&c);
	snprintf(c.server, sizeof c.server, "%s", fake_apiserver_url(fs));
	c.ca_pem = strdup(ca_pem);
	c.ca_len = strlen(ca_pem);
	if (token)
		c.token = strdup(token);
	if (cert) {
		c.cert_pem = strdup(ca.client_cert_pem);
		c.cert_len = strlen(c.cert_pem);
		c.key_pem = strdup(ca.client_key_pem);
		c.key_len = strlen(c.key_pem);
	}
	c.timeout_ms = 5000;
	cf_kube *k = cf_kube_new(&c, err, sizeof err);
	cf_kube_config_free(&c);
	cr_assert_not_null(k, "%s", err);
	return k;
}

static const char *np_json = "{\"kind\":\"NetworkPolicy\",\"apiVersion\":\"networking.k8s.io/v1\","
                             "\"metadata\":{\"name\":\"deny\",\"namespace\":\"ns1\"},"
                             "\"spec\":{\"podSelector\":{},\"policyTypes\":[\"Ingress\"]}}";

Test(request, list_with_token, .init = setup_server, .fini = teardown)
{
	cr_assert_gt(fake_apiserver_put(fs, NP, np_json), 0);
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), 0, "%s", err);
	cr_assert_eq(r.status, 200);
	cr_assert(strstr(r.body.data, "\"NetworkPolicyList\""));
	cr_assert(strstr(r.body.data, "\"resourceVersion\":\"1001\""), "%s", r.body.data);
	/* The connection is reused for a second request. */
	cr_assert_eq(cf_kube_get(k, NP "?limit=1", &r, err, sizeof err), 0, "%s", err);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request, client_certificate_authenticates, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with(NULL, ca.ca_pem, true);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), 0, "%s", err);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request, create_update_patch_conflict, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	const char *sec =
	    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"tls\"},"
	    "\"data\":{\"a\":\"YQ==\"}}";
	const char *path = "/api/v1/namespaces/cg/secrets";
	cr_assert_eq(cf_kube_request(k, "POST", path, NULL, sec, strlen(sec), &r, err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(r.status, 201);
	cr_assert_eq(cf_kube_request(k, "POST", path, NULL, sec, strlen(sec), &r, err, sizeof err),
	             -EEXIST);
	cr_assert_str_eq(r.reason, "AlreadyExists");
	cr_assert(strstr(err, "HTTP 409") && strstr(err, "already exists"), "%s", err);
	const char *stale = "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":"
	                    "\"tls\",\"resourceVersion\":\"1\"}}";
	cr_assert_eq(cf_kube_request(k, "PUT", "/api/v1/namespaces/cg/secrets/tls", NULL, stale,
	                             strlen(stale), &r, err, sizeof err),
	             -EEXIST);
	cr_assert_str_eq(r.reason, "Conflict");
	const char *patch = "{\"data\":{\"b\":\"Yg==\",\"a\":null}}";
	cr_assert_eq(cf_kube_request(k, "PATCH", "/api/v1/namespaces/cg/secrets/tls",
	                             "application/merge-patch+json", patch, strlen(patch), &r, err,
	                             sizeof err),
	             0, "%s", err);
	cr_assert(strstr(r.body.data, "\"b\":\"Yg==\"") && !strstr(r.body.data, "\"a\":"), "%s",
	          r.body.data);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request, cluster_scoped_get_put_patch_delete, .init = setup_server, .fini = teardown)
{
	const char *coll = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations";
	cr_assert_gt(fake_apiserver_put(fs, coll,
	                                "{\"apiVersion\":\"admissionregistration.k8s.io/v1\","
	                                "\"kind\":\"ValidatingWebhookConfiguration\",\"metadata\":"
	                                "{\"name\":\"cg\"},\"webhooks\":[]}"),
	             0);
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	char path[256];
	snprintf(path, sizeof path, "%s/cg", coll);
	cr_assert_eq(cf_kube_get(k, path, &r, err, sizeof err), 0, "%s", err);
	cJSON *o = cJSON_Parse(r.body.data);
	const cJSON *rv =
	    cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metadata"), "resourceVersion");
	cr_assert(cJSON_IsString(rv));
	char put[512];
	snprintf(put, sizeof put,
	         "{\"apiVersion\":\"admissionregistration.k8s.io/v1\",\"kind\":"
	         "\"ValidatingWebhookConfiguration\",\"metadata\":{\"name\":\"cg\","
	         "\"resourceVersion\":\"%s\"},\"webhooks\":[{\"name\":\"a\"}]}",
	         rv->valuestring);
	cJSON_Delete(o);
	cr_assert_eq(cf_kube_request(k, "PUT", path, NULL, put, strlen(put), &r, err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(cf_kube_request(k, "PUT", path, NULL, put, strlen(put), &r, err, sizeof err),
	             -EEXIST, "the same resourceVersion again is stale");
	cr_assert_str_eq(r.reason, "Conflict");
	const char *patch = "{\"metadata\":{\"labels\":{\"a\":\"b\"}}}";
	cr_assert_eq(cf_kube_request(k, "PATCH", path, "application/merge-patch+json", patch,
	                             strlen(patch), &r, err, sizeof err),
	             0, "%s", err);
	cr_assert(strstr(r.body.data, "\"labels\":{\"a\":\"b\"}"), "%s", r.body.data);
	cr_assert(strstr(r.body.data, "\"webhooks\":[{\"name\":\"a\"}]"), "kept: %s", r.body.data);
	cr_assert_eq(cf_kube_request(k, "DELETE", path, NULL, NULL, 0, &r, err, sizeof err), 0);
	cr_assert_eq(cf_kube_get(k, path, &r, err, sizeof err), -ENOENT);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request_bad, unsupported_patch_type_and_bad_body, .init = setup_server, .fini = teardown)
{
	cr_assert_gt(fake_apiserver_put(fs, "/api/v1/secrets",
	                                "{\"metadata\":{\"name\":\"s\",\"namespace\":\"x\"}}"),
	             0);
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	/* The fake applies merge and JSON patches; a strategic merge patch is
	 * refused with 415 (the real server does so for custom resources). */
	const char *patch = "{\"data\":{}}";
	cr_assert_eq(cf_kube_request(k, "PATCH", "/api/v1/namespaces/x/secrets/s",
	                             "application/strategic-merge-patch+json", patch, strlen(patch),
	                             &r, err, sizeof err),
	             -EIO);
	cr_assert_eq(r.status, 415);
	cr_assert(strstr(err, "HTTP 415"), "%s", err);
	/* A JSON patch operation without a path is a malformed patch: 400. */
	const char *bad = "[{\"op\":\"add\"}]";
	cr_assert_eq(cf_kube_request(k, "PATCH", "/api/v1/namespaces/x/secrets/s",
	                             "application/json-patch+json", bad, strlen(bad), &r, err,
	                             sizeof err),
	             -EINVAL);
	cr_assert_eq(r.status, 400);
	cr_assert(strstr(err, "without op or path"), "%s", err);
	cr_assert_eq(cf_kube_request(k, "POST", "/api/v1/namespaces/x/secrets", NULL, "nope", 4, &r,
	                             err, sizeof err),
	             -EINVAL);
	cr_assert(strstr(err, "HTTP 400: request body is not a JSON object"), "%s", err);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request_bad, bad_token_is_401_with_message, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with("wrong", ca.ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), -EACCES);
	cr_assert_eq(r.status, 401);
	cr_assert(strstr(err, "GET ") && strstr(err, NP) && strstr(err, "HTTP 401: Unauthorized"),
	          "%s", err);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request_bad, not_found_carries_api_message, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, "/api/v1/namespaces/x/secrets/missing", &r, err, sizeof err),
	             -ENOENT);
	cr_assert(strstr(err, "HTTP 404: secrets \"missing\" not found"), "%s", err);
	cr_assert_str_eq(r.reason, "NotFound");
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request_bad, untrusted_server_certificate, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with("good-token", ca.other_ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), -EPROTO, "%s", err);
	cr_assert_eq(r.status, 0);
	cr_assert(strstr(err, "GET https://127.0.0.1:"), "%s", err);
	fake_apiserver_stats st;
	fake_apiserver_stats_get(fs, &st);
	cr_assert_eq(st.requests, 0, "no request reached the server");
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request_bad, connection_refused, .init = setup_server, .fini = teardown)
{
	cf_kube_config c;
	cf_kube_config_init(&c);
	snprintf(c.server, sizeof c.server, "https://127.0.0.1:1");
	cf_kube *k = cf_kube_new(&c, err, sizeof err);
	cr_assert_not_null(k);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, "/api", &r, err, sizeof err), -ECONNREFUSED, "%s", err);
	cr_assert(strstr(err, "127.0.0.1:1"), "%s", err);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request_bad, path_must_be_absolute_and_server_set, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, "api/v1", &r, err, sizeof err), -EINVAL);
	cf_kube_response_free(&r);
	cf_kube_free(k);
	cf_kube_config c;
	cf_kube_config_init(&c);
	cr_assert_null(cf_kube_new(&c, err, sizeof err));
	cr_assert(strstr(err, "no API server URL"));
}

Test(request, token_file_is_reread_after_401, .init = setup_server, .fini = teardown)
{
	char tok[400];
	cr_assert_eq(fake_ca_write_file(ca.dir, "tok", "old-token\n", tok, sizeof tok), 0);
	fake_apiserver_set_token(fs, "new-token");
	cf_kube_config c;
	cf_kube_config_init(&c);
	snprintf(c.server, sizeof c.server, "%s", fake_apiserver_url(fs));
	c.ca_pem = strdup(ca.ca_pem);
	c.ca_len = strlen(ca.ca_pem);
	snprintf(c.token_file, sizeof c.token_file, "%s", tok);
	c.token_reread_seconds = 3600; /* the periodic re-read cannot be what helps */
	cf_kube *k = cf_kube_new(&c, err, sizeof err);
	cf_kube_config_free(&c);
	cr_assert_not_null(k, "%s", err);
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), -EACCES);
	/* The kubelet rotates the projected token. */
	cr_assert_eq(fake_ca_write_file(ca.dir, "tok", "new-token\n", tok, sizeof tok), 0);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), 0, "rotated token used: %s", err);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), 0);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

Test(request_bad, unreadable_rotated_token_keeps_the_old_one, .init = setup_server,
     .fini = teardown)
{
	char tok[400];
	cr_assert_eq(fake_ca_write_file(ca.dir, "tok", "new-token\n", tok, sizeof tok), 0);
	fake_apiserver_set_token(fs, "new-token");
	cf_kube_config c;
	cf_kube_config_init(&c);
	snprintf(c.server, sizeof c.server, "%s", fake_apiserver_url(fs));
	c.ca_pem = strdup(ca.ca_pem);
	c.ca_len = strlen(ca.ca_pem);
	snprintf(c.token_file, sizeof c.token_file, "%s", tok);
	c.token_reread_seconds = 1;
	cf_kube *k = cf_kube_new(&c, err, sizeof err);
	cf_kube_config_free(&c);
	cr_assert_not_null(k, "%s", err);
	/* Mid-rotation the file is briefly empty: the previous token stays. */
	cr_assert_eq(fake_ca_write_file(ca.dir, "tok", "", tok, sizeof tok), 0);
	fake_apiserver_set_token(fs, "other");
	cf_kube_response r;
	cf_kube_response_init(&r);
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), -EACCES); /* forces a re-read */
	fake_apiserver_set_token(fs, "new-token");
	cr_assert_eq(cf_kube_get(k, NP, &r, err, sizeof err), 0, "old token kept: %s", err);
	cf_kube_response_free(&r);
	cf_kube_free(k);
}

/* ---- streams ---------------------------------------------------------- */

typedef struct sink {
	char data[65536];
	size_t len;
	int stop_after_bytes;
} sink;

static int on_bytes(void *ud, const char *d, size_t n)
{
	sink *s = ud;
	if (s->len + n < sizeof s->data) {
		memcpy(s->data + s->len, d, n);
		s->len += n;
		s->data[s->len] = '\0';
	}
	if (s->stop_after_bytes && s->len >= (size_t)s->stop_after_bytes)
		return -EINTR;
	return 0;
}

Test(stream, watch_stream_delivers_events_until_server_ends, .init = setup_server, .fini = teardown)
{
	cr_assert_gt(fake_apiserver_put(fs, NP, np_json), 0);
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	sink s = {.len = 0};
	long status = 0;
	/* timeoutSeconds=1: the server ends the stream by itself. */
	int rc = cf_kube_stream(k, NP "?watch=1&timeoutSeconds=1", 10, on_bytes, &s, &status, err,
	                        sizeof err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(status, 200);
	cr_assert(strstr(s.data, "{\"type\":\"ADDED\",\"object\":{"), "%s", s.data);
	cf_kube_free(k);
}

Test(stream, callback_stops_the_stream, .init = setup_server, .fini = teardown)
{
	cr_assert_gt(fake_apiserver_put(fs, NP, np_json), 0);
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	sink s = {.stop_after_bytes = 1};
	long status = 0;
	cr_assert_eq(cf_kube_stream(k, NP "?watch=1", 10, on_bytes, &s, &status, err, sizeof err),
	             -EINTR);
	cf_kube_free(k);
}

static atomic_int abort_flag;

static int aborted(void *ud)
{
	(void)ud;
	return atomic_load(&abort_flag);
}

Test(stream_bad, idle_stream_is_aborted_by_callback, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	atomic_store(&abort_flag, 1);
	cf_kube_set_abort(k, aborted, NULL);
	sink s = {.len = 0};
	long status = 0;
	cr_assert_eq(cf_kube_stream(k, NP "?watch=1&resourceVersion=1000", 30, on_bytes, &s,
	                            &status, err, sizeof err),
	             -ECANCELED, "%s", err);
	cf_kube_free(k);
}

Test(stream_bad, http_error_is_not_passed_to_callback, .init = setup_server, .fini = teardown)
{
	cf_kube *k = client_with("bad", ca.ca_pem, false);
	sink s = {.len = 0};
	long status = 0;
	cr_assert_eq(cf_kube_stream(k, NP "?watch=1", 10, on_bytes, &s, &status, err, sizeof err),
	             -EACCES);
	cr_assert_eq(status, 401);
	cr_assert_eq(s.len, 0);
	cr_assert(strstr(err, "HTTP 401: Unauthorized"), "%s", err);
	cf_kube_free(k);
}

Test(stream_bad, cut_stream_is_an_error, .init = setup_server, .fini = teardown)
{
	cr_assert_gt(fake_apiserver_put(fs, NP, np_json), 0);
	fake_apiserver_add_fault(fs, FAKE_FAULT_WATCH_CUT);
	cf_kube *k = client_with("good-token", ca.ca_pem, false);
	sink s = {.len = 0};
	long status = 0;
	int rc = cf_kube_stream(k, NP "?watch=1", 10, on_bytes, &s, &status, err, sizeof err);
	cr_assert_lt(rc, 0, "a cut stream is not a clean end");
	cr_assert_neq(rc, -ECANCELED);
	cr_assert_null(strchr(s.data, '\n'), "only half an event arrived");
	cf_kube_free(k);
}

/* ---- helpers ---------------------------------------------------------- */

Test(backoff, grows_and_stays_within_bounds)
{
	uint64_t rng = 42;
	for (unsigned a = 0; a < 80; a++) {
		uint64_t cap = 100;
		for (unsigned i = 0; i < a && cap < 30000; i++)
			cap = cap * 2 > 30000 ? 30000 : cap * 2;
		for (int i = 0; i < 50; i++) {
			uint64_t d = cf_kube_backoff_ms(a, 100, 30000, &rng);
			cr_assert_geq(d, cap / 2, "attempt %u: %lu < %lu", a, (unsigned long)d,
			              (unsigned long)(cap / 2));
			cr_assert_leq(d, cap);
		}
	}
}

Test(backoff, jitter_spreads)
{
	uint64_t rng = 7, lo = UINT64_MAX, hi = 0;
	for (int i = 0; i < 200; i++) {
		uint64_t d = cf_kube_backoff_ms(5, 100, 30000, &rng);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
	}
	cr_assert_lt(lo, hi, "not constant");
}

Test(backoff_bad, degenerate_inputs_never_zero_nor_past_max)
{
	uint64_t rng = 0;
	cr_assert_geq(cf_kube_backoff_ms(0, 0, 0, &rng), 1);
	cr_assert_leq(cf_kube_backoff_ms(UINT32_MAX, 100, 5000, &rng), 5000);
	cr_assert_leq(cf_kube_backoff_ms(63, UINT64_MAX / 2, UINT64_MAX, &rng), UINT64_MAX);
	cr_assert_eq(cf_kube_backoff_ms(3, 500, 100, &rng) <= 500, 1, "max below base: base");
}

Test(status, errno_mapping)
{
	cr_assert_eq(cf_kube_status_errno(200), 0);
	cr_assert_eq(cf_kube_status_errno(201), 0);
	cr_assert_eq(cf_kube_status_errno(401), -EACCES);
	cr_assert_eq(cf_kube_status_errno(403), -EPERM);
	cr_assert_eq(cf_kube_status_errno(404), -ENOENT);
	cr_assert_eq(cf_kube_status_errno(409), -EEXIST);
	cr_assert_eq(cf_kube_status_errno(410), -ESTALE);
	cr_assert_eq(cf_kube_status_errno(429), -EAGAIN);
	cr_assert_eq(cf_kube_status_errno(500), -EIO);
	cr_assert_eq(cf_kube_status_errno(302), -EIO);
}

Test(escape, query_values)
{
	cf_buf b;
	cf_buf_init(&b, 0);
	cr_assert_eq(cf_kube_append_escaped(&b, "a b/c?d=e&f~_.-"), 0);
	cr_assert_str_eq(b.data, "a%20b%2Fc%3Fd%3De%26f~_.-");
	cf_buf_free(&b);
}
