/* cf_kube.c - see cf_kube.h. libcurl (OpenSSL backend) stops at this file. */
#include "cf_kube.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "cf_limits.h"
#include "cf_yaml.h"

struct cf_kube {
	cf_kube_config cfg;
	CURL *curl;
	char *token;          /* current bearer token (from cfg.token or the file) */
	time_t token_read_at; /* monotonic seconds of the last file read */
	int (*aborted)(void *);
	void *aborted_ud;
};

/* ---- configuration ---------------------------------------------------- */

void cf_kube_config_init(cf_kube_config *c)
{
	memset(c, 0, sizeof *c);
	c->timeout_ms = CF_KUBE_DEFAULT_TIMEOUT_MS;
	c->connect_timeout_ms = CF_KUBE_DEFAULT_CONNECT_TIMEOUT_MS;
	c->token_reread_seconds = CF_KUBE_TOKEN_REREAD_SECONDS;
}

void cf_kube_config_free(cf_kube_config *c)
{
	if (!c)
		return;
	free(c->ca_pem);
	free(c->cert_pem);
	if (c->key_pem)
		memset(c->key_pem, 0, c->key_len);
	free(c->key_pem);
	if (c->token)
		memset(c->token, 0, strlen(c->token));
	free(c->token);
	cf_kube_config_init(c);
}

static int copy_config(cf_kube_config *dst, const cf_kube_config *src)
{
	*dst = *src;
	dst->ca_pem = dst->cert_pem = dst->key_pem = dst->token = NULL;
	if (src->ca_pem && !(dst->ca_pem = malloc(src->ca_len + 1)))
		goto fail;
	if (src->ca_pem)
		memcpy(dst->ca_pem, src->ca_pem, src->ca_len + 1);
	if (src->cert_pem && !(dst->cert_pem = malloc(src->cert_len + 1)))
		goto fail;
	if (src->cert_pem)
		memcpy(dst->cert_pem, src->cert_pem, src->cert_len + 1);
	if (src->key_pem && !(dst->key_pem = malloc(src->key_len + 1)))
		goto fail;
	if (src->key_pem)
		memcpy(dst->key_pem, src->key_pem, src->key_len + 1);
	if (src->token && !(dst->token = strdup(src->token)))
		goto fail;
	return 0;
fail:
	cf_kube_config_free(dst);
	return -ENOMEM;
}

/* A token file holds the token, possibly followed by whitespace. An empty
 * token or one with inner control characters would make a bad header. */
static int read_token_file(const char *path, char **out, char *err, size_t errlen)
{
	cf_buf b;
	int rc = cf_read_file(path, CF_KUBE_MAX_TOKEN_BYTES, &b, err, errlen);
	if (rc)
		return rc;
	size_t n = b.len;
	while (n && isspace((unsigned char)b.data[n - 1]))
		n--;
	size_t start = 0;
	while (start < n && isspace((unsigned char)b.data[start]))
		start++;
	if (start == n) {
		snprintf(err, errlen, "%s: token file is empty", path);
		rc = -EINVAL;
		goto fail;
	}
	for (size_t i = start; i < n; i++) {
		unsigned char ch = (unsigned char)b.data[i];
		if (ch < 0x21 || ch > 0x7e) {
			snprintf(err, errlen, "%s: token contains a non-printable character", path);
			rc = -EINVAL;
			goto fail;
		}
	}
	*out = strndup(b.data + start, n - start);
	rc = *out ? 0 : -ENOMEM;
fail:
	memset(b.data, 0, b.len);
	cf_buf_free(&b);
	return rc;
}

static int read_blob(const char *path, size_t limit, char **out, size_t *outlen, char *err,
                     size_t errlen)
{
	cf_buf b;
	int rc = cf_read_file(path, limit, &b, err, errlen);
	if (rc)
		return rc;
	if (b.len == 0) {
		snprintf(err, errlen, "%s: file is empty", path);
		cf_buf_free(&b);
		return -EINVAL;
	}
	*outlen = b.len;
	*out = cf_buf_steal(&b);
	return *out ? 0 : -ENOMEM;
}

/* A host from the environment: a DNS name, IPv4 or IPv6 address; nothing
 * that could change the URL's meaning. */
static bool valid_host(const char *h)
{
	if (!*h || strlen(h) > 253)
		return false;
	for (const char *p = h; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:%_", *p))
			return false;
	return true;
}

static bool valid_port(const char *p)
{
	if (!*p || strlen(p) > 5)
		return false;
	unsigned long v = 0;
	for (const char *q = p; *q; q++) {
		if (!isdigit((unsigned char)*q))
			return false;
		v = v * 10 + (unsigned long)(*q - '0');
	}
	return v >= 1 && v <= 65535;
}

bool cf_kube_in_cluster_detect(const char *sa_dir)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	if (!host || !*host)
		return false;
	char path[4200];
	snprintf(path, sizeof path, "%s/token", sa_dir ? sa_dir : CF_KUBE_SA_DIR);
	return access(path, F_OK) == 0;
}

int cf_kube_config_in_cluster(const char *sa_dir, cf_kube_config *out, char *err, size_t errlen)
{
	cf_kube_config_init(out);
	if (!sa_dir)
		sa_dir = CF_KUBE_SA_DIR;
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	if (!host || !*host || !port || !*port) {
		snprintf(err, errlen,
		         "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
		         "must be set");
		return -ENOENT;
	}
	if (!valid_host(host)) {
		snprintf(err, errlen,
		         "in-cluster config: KUBERNETES_SERVICE_HOST \"%.100s\" is not a host name "
		         "or address",
		         host);
		return -EINVAL;
	}
	if (!valid_port(port)) {
		snprintf(
		    err, errlen,
		    "in-cluster config: KUBERNETES_SERVICE_PORT \"%.20s\" is not a port number",
		    port);
		return -EINVAL;
	}
	/* An IPv6 literal needs brackets in a URL (RFC 3986). */
	bool v6 = strchr(host, ':') != NULL;
	snprintf(out->server, sizeof out->server, "https://%s%s%s:%s", v6 ? "[" : "", host,
	         v6 ? "]" : "", port);
	int rc;
	if ((size_t)snprintf(out->token_file, sizeof out->token_file, "%s/token", sa_dir) >=
	    sizeof out->token_file) {
		snprintf(err, errlen, "in-cluster config: service account directory name too long");
		rc = -ENAMETOOLONG;
		goto fail;
	}
	char *token = NULL;
	rc = read_token_file(out->token_file, &token, err, errlen);
	if (rc)
		goto fail;
	memset(token, 0, strlen(token));
	free(token);
	char path[4200];
	snprintf(path, sizeof path, "%s/ca.crt", sa_dir);
	rc = read_blob(path, CF_KUBE_MAX_CA_BYTES, &out->ca_pem, &out->ca_len, err, errlen);
	if (rc)
		goto fail;
	snprintf(path, sizeof path, "%s/namespace", sa_dir);
	cf_buf ns;
	char ignored[256];
	if (cf_read_file(path, 253, &ns, ignored, sizeof ignored) == 0) {
		size_t n = ns.len;
		while (n && isspace((unsigned char)ns.data[n - 1]))
			n--;
		snprintf(out->namespace_name, sizeof out->namespace_name, "%.*s", (int)n, ns.data);
		cf_buf_free(&ns);
	}
	snprintf(out->source, sizeof out->source, "in-cluster (%s)", out->server);
	return 0;
fail:
	cf_kube_config_free(out);
	return rc;
}

/* Standard base64 (kubeconfig *-data fields); whitespace is skipped. */
static int base64_decode(const char *in, char **out, size_t *outlen)
{
	size_t n = strlen(in);
	char *buf = malloc(n / 4 * 3 + 4);
	if (!buf)
		return -ENOMEM;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	size_t o = 0, digits = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;
		if (isspace(c))
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		if (c >= 'A' && c <= 'Z')
			v = c - 'A';
		else if (c >= 'a' && c <= 'z')
			v = c - 'a' + 26;
		else if (c >= '0' && c <= '9')
			v = c - '0' + 52;
		else if (c == '+')
			v = 62;
		else if (c == '/')
			v = 63;
		else
			goto bad;
		digits++;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	if (digits % 4 == 1 || pad > 2 || (pad && (digits + (size_t)pad) % 4 != 0) || o == 0)
		goto bad;
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
bad:
	free(buf);
	return -EINVAL;
}

/* Finds the entry named `name` in a kubeconfig list (clusters, users,
 * contexts) and returns its `field` object. */
static const cJSON *named_entry(const cJSON *root, const char *list, const char *field,
                                const char *name, char *err, size_t errlen)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, list);
	if (arr && !cJSON_IsArray(arr) && !cJSON_IsNull(arr)) {
		snprintf(err, errlen, "\"%s\" must be a list", list);
		return NULL;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
		if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, field);
			if (!cJSON_IsObject(v)) {
				snprintf(err, errlen, "%s entry \"%.100s\" has no \"%s\" mapping",
				         list, name, field);
				return NULL;
			}
			return v;
		}
	}
	snprintf(err, errlen, "no %s entry named \"%.100s\"", list, name);
	return NULL;
}

/* A string field, or NULL when absent; -EINVAL for a non-string. */
static int opt_string(const cJSON *obj, const char *key, const char **out, const char *where,
                      char *err, size_t errlen)
{
	*out = NULL;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "%s.%s must be a string", where, key);
		return -EINVAL;
	}
	*out = v->valuestring;
	return 0;
}

static int resolve_path(const char *base_dir, const char *name, char *out, size_t outlen)
{
	int n;
	if (name[0] == '/' || !base_dir || !*base_dir)
		n = snprintf(out, outlen, "%s", name);
	else
		n = snprintf(out, outlen, "%s/%s", base_dir, name);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* `data` (base64) or `file`: exactly one may be given. */
static int load_pem(const char *where, const char *data_key, const char *data, const char *file_key,
                    const char *file, const char *base_dir, size_t limit, char **out,
                    size_t *outlen, char *err, size_t errlen)
{
	char ferr[512];
	if (data && file) {
		snprintf(err, errlen, "%s: give %s or %s, not both", where, data_key, file_key);
		return -EINVAL;
	}
	if (data) {
		int rc = base64_decode(data, out, outlen);
		if (rc == -EINVAL)
			snprintf(err, errlen, "%s.%s is not valid base64", where, data_key);
		if (!rc && *outlen > limit) {
			free(*out);
			*out = NULL;
			snprintf(err, errlen, "%s.%s is over the limit of %zu bytes", where,
			         data_key, limit);
			return -E2BIG;
		}
		return rc;
	}
	if (file) {
		char path[4096];
		if (resolve_path(base_dir, file, path, sizeof path)) {
			snprintf(err, errlen, "%s.%s: path too long", where, file_key);
			return -ENAMETOOLONG;
		}
		int rc = read_blob(path, limit, out, outlen, ferr, sizeof ferr);
		if (rc)
			snprintf(err, errlen, "%s.%s: %s", where, file_key, ferr);
		return rc;
	}
	return 0;
}

static int check_server_url(const char *url, char *err, size_t errlen)
{
	if (strncmp(url, "https://", 8) != 0) {
		snprintf(err, errlen,
		         "cluster server \"%.200s\" is not an https:// URL (TLS is required)", url);
		return -EINVAL;
	}
	const char *h = url + 8;
	if (!*h || *h == '/') {
		snprintf(err, errlen, "cluster server \"%.200s\" has no host", url);
		return -EINVAL;
	}
	if (strlen(url) >= CF_KUBE_MAX_URL_BYTES) {
		snprintf(err, errlen, "cluster server URL is too long");
		return -EINVAL;
	}
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#' ||
		    *p == '@') {
			snprintf(err, errlen,
			         "cluster server \"%.200s\" contains a character not allowed here",
			         url);
			return -EINVAL;
		}
	return 0;
}

static const char *const unsupported_user_keys[][2] = {
    {"exec", "exec credential plugins"},
    {"auth-provider", "auth providers"},
    {"username", "basic authentication"},
    {"password", "basic authentication"},
    {"as", "impersonation"},
};

int cf_kube_config_kubeconfig_text(const char *text, size_t len, const char *name,
                                   const char *base_dir, const char *context, cf_kube_config *out,
                                   char *err, size_t errlen)
{
	cf_kube_config_init(out);
	cf_yaml_docs docs = {0};
	char msg[768] = "";
	int rc = cf_yaml_parse(text, len, &docs, msg, sizeof msg);
	if (rc) {
		snprintf(err, errlen, "%s: %s", name, msg);
		return rc;
	}
	rc = -EINVAL;
	if (cJSON_GetArraySize(docs.docs) != 1) {
		snprintf(msg, sizeof msg, "expected exactly one YAML document");
		goto fail;
	}
	const cJSON *root = cJSON_GetArrayItem(docs.docs, 0);
	if (!cJSON_IsObject(root)) {
		snprintf(msg, sizeof msg, "not a mapping");
		goto fail;
	}
	const char *kind = NULL;
	if (opt_string(root, "kind", &kind, "kubeconfig", msg, sizeof msg))
		goto fail;
	if (kind && strcmp(kind, "Config") != 0) {
		snprintf(msg, sizeof msg, "kind is \"%.100s\", expected Config", kind);
		goto fail;
	}
	const char *ctx_name = context;
	if (!ctx_name) {
		if (opt_string(root, "current-context", &ctx_name, "kubeconfig", msg, sizeof msg))
			goto fail;
		if (!ctx_name || !*ctx_name) {
			snprintf(msg, sizeof msg, "no current-context set");
			goto fail;
		}
	}
	const cJSON *ctx = named_entry(root, "contexts", "context", ctx_name, msg, sizeof msg);
	if (!ctx)
		goto fail;
	const char *cluster_name = NULL, *user_name = NULL, *ns = NULL;
	if (opt_string(ctx, "cluster", &cluster_name, "context", msg, sizeof msg) ||
	    opt_string(ctx, "user", &user_name, "context", msg, sizeof msg) ||
	    opt_string(ctx, "namespace", &ns, "context", msg, sizeof msg))
		goto fail;
	if (!cluster_name) {
		snprintf(msg, sizeof msg, "context \"%.100s\" names no cluster", ctx_name);
		goto fail;
	}
	const cJSON *cluster =
	    named_entry(root, "clusters", "cluster", cluster_name, msg, sizeof msg);
	if (!cluster)
		goto fail;
	const char *server = NULL, *ca_file = NULL, *ca_data = NULL;
	if (opt_string(cluster, "server", &server, "cluster", msg, sizeof msg) ||
	    opt_string(cluster, "certificate-authority", &ca_file, "cluster", msg, sizeof msg) ||
	    opt_string(cluster, "certificate-authority-data", &ca_data, "cluster", msg, sizeof msg))
		goto fail;
	if (!server || !*server) {
		snprintf(msg, sizeof msg, "cluster \"%.100s\" has no server", cluster_name);
		goto fail;
	}
	if (check_server_url(server, msg, sizeof msg))
		goto fail;
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cluster, "insecure-skip-tls-verify"))) {
		snprintf(msg, sizeof msg,
		         "cluster \"%.100s\" sets insecure-skip-tls-verify; TLS verification is "
		         "always on",
		         cluster_name);
		goto fail;
	}
	if (cJSON_GetObjectItemCaseSensitive(cluster, "tls-server-name") ||
	    cJSON_GetObjectItemCaseSensitive(cluster, "proxy-url")) {
		snprintf(msg, sizeof msg,
		         "cluster \"%.100s\": tls-server-name and proxy-url are not supported",
		         cluster_name);
		goto fail;
	}
	snprintf(out->server, sizeof out->server, "%s", server);
	size_t sl = strlen(out->server);
	while (sl && out->server[sl - 1] == '/')
		out->server[--sl] = '\0';
	rc = load_pem("cluster", "certificate-authority-data", ca_data, "certificate-authority",
	              ca_file, base_dir, CF_KUBE_MAX_CA_BYTES, &out->ca_pem, &out->ca_len, msg,
	              sizeof msg);
	if (rc)
		goto fail;
	rc = -EINVAL;
	if (user_name) {
		const cJSON *user = named_entry(root, "users", "user", user_name, msg, sizeof msg);
		if (!user)
			goto fail;
		for (size_t i = 0; i < sizeof unsupported_user_keys / sizeof *unsupported_user_keys;
		     i++)
			if (cJSON_GetObjectItemCaseSensitive(user, unsupported_user_keys[i][0])) {
				snprintf(msg, sizeof msg,
				         "user \"%.100s\": %s (%s) are not supported; use a token "
				         "or a client certificate",
				         user_name, unsupported_user_keys[i][1],
				         unsupported_user_keys[i][0]);
				goto fail;
			}
		const char *cert_file = NULL, *cert_data = NULL, *key_file = NULL, *key_data = NULL,
		           *token = NULL, *token_file = NULL;
		if (opt_string(user, "client-certificate", &cert_file, "user", msg, sizeof msg) ||
		    opt_string(user, "client-certificate-data", &cert_data, "user", msg,
		               sizeof msg) ||
		    opt_string(user, "client-key", &key_file, "user", msg, sizeof msg) ||
		    opt_string(user, "client-key-data", &key_data, "user", msg, sizeof msg) ||
		    opt_string(user, "token", &token, "user", msg, sizeof msg) ||
		    opt_string(user, "tokenFile", &token_file, "user", msg, sizeof msg))
			goto fail;
		rc = load_pem("user", "client-certificate-data", cert_data, "client-certificate",
		              cert_file, base_dir, CF_KUBE_MAX_CA_BYTES, &out->cert_pem,
		              &out->cert_len, msg, sizeof msg);
		if (!rc)
			rc = load_pem("user", "client-key-data", key_data, "client-key", key_file,
			              base_dir, CF_KUBE_MAX_CA_BYTES, &out->key_pem, &out->key_len,
			              msg, sizeof msg);
		if (rc)
			goto fail;
		rc = -EINVAL;
		if (!out->cert_pem != !out->key_pem) {
			snprintf(msg, sizeof msg,
			         "user \"%.100s\": a client certificate needs a client key and "
			         "vice versa",
			         user_name);
			goto fail;
		}
		if (token && token_file) {
			snprintf(msg, sizeof msg,
			         "user \"%.100s\": give token or tokenFile, not both", user_name);
			goto fail;
		}
		if (token) {
			for (const char *p = token; *p; p++)
				if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e) {
					snprintf(msg, sizeof msg,
					         "user \"%.100s\": token contains a non-printable "
					         "character",
					         user_name);
					goto fail;
				}
			if (!*token) {
				snprintf(msg, sizeof msg, "user \"%.100s\": token is empty",
				         user_name);
				goto fail;
			}
			if (!(out->token = strdup(token))) {
				rc = -ENOMEM;
				goto fail;
			}
		}
		if (token_file) {
			if (resolve_path(base_dir, token_file, out->token_file,
			                 sizeof out->token_file)) {
				snprintf(msg, sizeof msg, "user.tokenFile: path too long");
				goto fail;
			}
			char *t = NULL;
			char ferr[512];
			rc = read_token_file(out->token_file, &t, ferr, sizeof ferr);
			if (rc) {
				snprintf(msg, sizeof msg, "user.tokenFile: %s", ferr);
				goto fail;
			}
			memset(t, 0, strlen(t));
			free(t);
		}
	}
	if (ns)
		snprintf(out->namespace_name, sizeof out->namespace_name, "%s", ns);
	snprintf(out->source, sizeof out->source, "kubeconfig %.2048s (context %.1024s)", name,
	         ctx_name);
	cf_yaml_docs_free(&docs);
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", name, msg);
	cf_yaml_docs_free(&docs);
	cf_kube_config_free(out);
	return rc ? rc : -EINVAL;
}

int cf_kube_config_kubeconfig(const char *path, const char *context, cf_kube_config *out, char *err,
                              size_t errlen)
{
	cf_kube_config_init(out);
	cf_buf b;
	int rc = cf_read_file(path, CF_KUBE_MAX_KUBECONFIG_BYTES, &b, err, errlen);
	if (rc)
		return rc;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		dir[0] = '\0';
	rc = cf_kube_config_kubeconfig_text(b.data ? b.data : "", b.len, path, dir, context, out,
	                                    err, errlen);
	cf_buf_free(&b);
	return rc;
}

/* ---- client ----------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -EIO;
}

int cf_kube_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return global_rc;
}

static time_t mono_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

cf_kube *cf_kube_new(const cf_kube_config *cfg, char *err, size_t errlen)
{
	if (cf_kube_global_init()) {
		snprintf(err, errlen, "libcurl initialisation failed");
		return NULL;
	}
	if (!cfg->server[0]) {
		snprintf(err, errlen, "no API server URL");
		return NULL;
	}
	cf_kube *k = calloc(1, sizeof *k);
	if (!k || copy_config(&k->cfg, cfg)) {
		free(k);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->curl = curl_easy_init();
	if (!k->curl) {
		snprintf(err, errlen, "curl_easy_init failed");
		goto fail;
	}
	if (k->cfg.token && !(k->token = strdup(k->cfg.token))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (k->cfg.token_file[0]) {
		if (read_token_file(k->cfg.token_file, &k->token, err, errlen))
			goto fail;
		k->token_read_at = mono_seconds();
	}
	return k;
fail:
	cf_kube_free(k);
	return NULL;
}

void cf_kube_free(cf_kube *k)
{
	if (!k)
		return;
	if (k->curl)
		curl_easy_cleanup(k->curl);
	if (k->token)
		memset(k->token, 0, strlen(k->token));
	free(k->token);
	cf_kube_config_free(&k->cfg);
	free(k);
}

const cf_kube_config *cf_kube_get_config(const cf_kube *k)
{
	return &k->cfg;
}

void cf_kube_set_abort(cf_kube *k, int (*aborted)(void *ud), void *ud)
{
	k->aborted = aborted;
	k->aborted_ud = ud;
}

/* Rotated tokens: re-read the file when the last read is old enough. A
 * failed re-read keeps the previous token (the file is replaced by an
 * atomic rename, so a failure is transient) and the request proceeds; the
 * API server will say 401 if the old token expired. */
static void refresh_token(cf_kube *k)
{
	if (!k->cfg.token_file[0])
		return;
	time_t now = mono_seconds();
	time_t every = k->cfg.token_reread_seconds ? (time_t)k->cfg.token_reread_seconds
	                                           : CF_KUBE_TOKEN_REREAD_SECONDS;
	if (k->token && k->token_read_at && now - k->token_read_at < every)
		return;
	char *t = NULL;
	char ignored[256];
	if (read_token_file(k->cfg.token_file, &t, ignored, sizeof ignored) == 0) {
		if (k->token)
			memset(k->token, 0, strlen(k->token));
		free(k->token);
		k->token = t;
	}
	k->token_read_at = now;
}

void cf_kube_response_init(cf_kube_response *r)
{
	r->status = 0;
	r->reason[0] = '\0';
	cf_buf_init(&r->body, CF_KUBE_MAX_RESPONSE_BYTES);
}

void cf_kube_response_free(cf_kube_response *r)
{
	cf_buf_free(&r->body);
}

int cf_kube_status_errno(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
	case 422:
		return -EINVAL;
	case 401:
		return -EACCES;
	case 403:
		return -EPERM;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	case 410:
		return -ESTALE;
	case 429:
	case 503:
	case 504:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static int curl_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
		return -EHOSTUNREACH;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return -EPROTO;
	default:
		return -EIO;
	}
}

/* The API server's Status object: "message" and "reason". */
static void status_message(const cf_buf *body, char *msg, size_t msglen, char *reason,
                           size_t reasonlen)
{
	msg[0] = '\0';
	if (reason)
		reason[0] = '\0';
	if (!body->len)
		return;
	cJSON *j = cJSON_ParseWithLength(body->data, body->len);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "reason");
	if (cJSON_IsString(m))
		snprintf(msg, msglen, "%s", m->valuestring);
	if (reason && cJSON_IsString(r))
		snprintf(reason, reasonlen, "%s", r->valuestring);
	if (!j) {
		/* Not JSON (a proxy's page?): quote the start, printable only. */
		size_t o = 0;
		for (size_t i = 0; i < body->len && o + 1 < msglen && o < 200; i++) {
			unsigned char c = (unsigned char)body->data[i];
			msg[o++] = (char)(c >= 0x20 && c < 0x7f ? c : ' ');
		}
		msg[o] = '\0';
	}
	cJSON_Delete(j);
}

typedef struct xfer {
	cf_kube *k;
	cf_buf *body;         /* plain requests: the body; streams: the error body */
	cf_kube_stream_fn fn; /* streams only */
	void *ud;
	int fn_rc;
	bool status_checked;
	bool is_error;
	bool overflow;
} xfer;

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	xfer *x = ud;
	size_t n = size * nmemb;
	if (x->fn && !x->status_checked) {
		long code = 0;
		curl_easy_getinfo(x->k->curl, CURLINFO_RESPONSE_CODE, &code);
		x->is_error = code < 200 || code >= 300;
		x->status_checked = true;
	}
	if (x->fn && !x->is_error) {
		x->fn_rc = x->fn(x->ud, ptr, n);
		return x->fn_rc ? 0 : n;
	}
	int rc = cf_buf_append(x->body, ptr, n);
	if (rc == -E2BIG && x->fn) {
		/* An error body is only read for its message: keep the start. */
		return n;
	}
	if (rc) {
		x->overflow = rc == -E2BIG;
		return 0;
	}
	return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	xfer *x = ud;
	return x->k->aborted && x->k->aborted(x->k->aborted_ud) ? 1 : 0;
}

static int setup(cf_kube *k, const char *method, const char *path, struct curl_slist **hdrs,
                 xfer *x, char *curl_err, char *err, size_t errlen)
{
	CURL *c = k->curl;
	curl_easy_reset(c);
	if (path[0] != '/') {
		snprintf(err, errlen, "%s %.200s: path must start with /", method, path);
		return -EINVAL;
	}
	cf_buf url;
	cf_buf_init(&url, CF_KUBE_MAX_URL_BYTES + 8192);
	if (cf_buf_appendf(&url, "%s%s", k->cfg.server, path)) {
		cf_buf_free(&url);
		snprintf(err, errlen, "%s %.200s: URL too long", method, path);
		return -E2BIG;
	}
	curl_easy_setopt(c, CURLOPT_URL, url.data);
	cf_buf_free(&url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)k->cfg.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "codeframe-guard");
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (k->cfg.ca_pem) {
		struct curl_blob blob = {k->cfg.ca_pem, k->cfg.ca_len, CURL_BLOB_COPY};
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	}
	if (k->cfg.cert_pem) {
		struct curl_blob cert = {k->cfg.cert_pem, k->cfg.cert_len, CURL_BLOB_COPY};
		struct curl_blob key = {k->cfg.key_pem, k->cfg.key_len, CURL_BLOB_COPY};
		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
		curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
		curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
	}
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);

	struct curl_slist *h = NULL, *t;
	refresh_token(k);
	if (!(t = curl_slist_append(h, "Accept: application/json")))
		goto nomem;
	h = t;
	if (k->token) {
		cf_buf auth;
		cf_buf_init(&auth, 0);
		int rc = cf_buf_appendf(&auth, "Authorization: Bearer %s", k->token);
		t = rc ? NULL : curl_slist_append(h, auth.data);
		if (auth.data)
			memset(auth.data, 0, auth.len);
		cf_buf_free(&auth);
		if (!t)
			goto nomem;
		h = t;
	}
	*hdrs = h;
	return 0;
nomem:
	curl_slist_free_all(h);
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

static void transport_error(const char *method, const char *path, CURLcode cc, const char *curl_err,
                            const cf_kube *k, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s %s%.300s: %s%s%s", method, k->cfg.server, path,
	         curl_easy_strerror(cc), curl_err[0] ? ": " : "", curl_err);
}

static void http_error(const char *method, const char *path, long status, const cf_buf *body,
                       const cf_kube *k, char *reason, size_t reasonlen, char *err, size_t errlen)
{
	char msg[1024];
	status_message(body, msg, sizeof msg, reason, reasonlen);
	snprintf(err, errlen, "%s %s%.300s: HTTP %ld%s%s", method, k->cfg.server, path, status,
	         msg[0] ? ": " : "", msg);
}

int cf_kube_request(cf_kube *k, const char *method, const char *path, const char *content_type,
                    const char *body, size_t body_len, cf_kube_response *resp, char *err,
                    size_t errlen)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	resp->status = 0;
	resp->reason[0] = '\0';
	cf_buf_reset(&resp->body);
	xfer x = {.k = k, .body = &resp->body};
	struct curl_slist *hdrs = NULL;
	int rc = setup(k, method, path, &hdrs, &x, curl_err, err, errlen);
	if (rc)
		return rc;
	if (body) {
		cf_buf ct;
		cf_buf_init(&ct, 0);
		struct curl_slist *t = NULL;
		if (!cf_buf_appendf(&ct, "Content-Type: %s",
		                    content_type ? content_type : "application/json"))
			t = curl_slist_append(hdrs, ct.data);
		cf_buf_free(&ct);
		if (!t) {
			curl_slist_free_all(hdrs);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		hdrs = t;
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(k->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT_MS, (long)k->cfg.timeout_ms);
	CURLcode cc = curl_easy_perform(k->curl);
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK) {
		if (x.overflow) {
			snprintf(err, errlen,
			         "%s %s%.300s: response is over the limit of %zu bytes", method,
			         k->cfg.server, path, resp->body.limit);
			return -E2BIG;
		}
		transport_error(method, path, cc, curl_err, k, err, errlen);
		return curl_errno(cc);
	}
	rc = cf_kube_status_errno(resp->status);
	if (rc)
		http_error(method, path, resp->status, &resp->body, k, resp->reason,
		           sizeof resp->reason, err, errlen);
	if (resp->status == 401)
		k->token_read_at = 0; /* maybe rotated: re-read before the next request */
	return rc;
}

int cf_kube_get(cf_kube *k, const char *path, cf_kube_response *resp, char *err, size_t errlen)
{
	return cf_kube_request(k, "GET", path, NULL, NULL, 0, resp, err, errlen);
}

int cf_kube_stream(cf_kube *k, const char *path, unsigned max_seconds, cf_kube_stream_fn fn,
                   void *ud, long *status, char *err, size_t errlen)
{
	char curl_err[CURL_ERROR_SIZE] = "";
	cf_buf ebody;
	cf_buf_init(&ebody, CF_KUBE_MAX_ERROR_BODY_BYTES);
	xfer x = {.k = k, .body = &ebody, .fn = fn, .ud = ud};
	struct curl_slist *hdrs = NULL;
	*status = 0;
	int rc = setup(k, "GET", path, &hdrs, &x, curl_err, err, errlen);
	if (rc)
		goto out;
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(k->curl, CURLOPT_TIMEOUT, (long)max_seconds);
	CURLcode cc = curl_easy_perform(k->curl);
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, status);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (x.fn_rc) {
		rc = x.fn_rc;
		goto out;
	}
	if (cc != CURLE_OK && !(x.is_error && *status)) {
		transport_error("GET", path, cc, curl_err, k, err, errlen);
		rc = curl_errno(cc);
		goto out;
	}
	rc = cf_kube_status_errno(*status);
	if (rc)
		http_error("GET", path, *status, &ebody, k, NULL, 0, err, errlen);
	if (*status == 401)
		k->token_read_at = 0;
out:
	cf_buf_free(&ebody);
	return rc;
}

/* ---- helpers ---------------------------------------------------------- */

/* xorshift64*: jitter needs spread, not secrecy. */
static uint64_t next_random(uint64_t *s)
{
	if (*s == 0)
		*s = 0x9e3779b97f4a7c15ull;
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

uint64_t cf_kube_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint64_t *rng)
{
	if (base_ms == 0)
		base_ms = 1;
	if (max_ms < base_ms)
		max_ms = base_ms;
	uint64_t cap = base_ms;
	for (unsigned i = 0; i < attempt && cap < max_ms; i++)
		cap = cap > max_ms / 2 ? max_ms : cap * 2;
	if (cap > max_ms)
		cap = max_ms;
	uint64_t half = cap / 2;
	uint64_t span = cap - half;
	uint64_t d = half + (span ? next_random(rng) % (span + 1) : 0);
	return d ? d : 1;
}

int cf_kube_append_escaped(cf_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int rc;
		if (isalnum(*p) || strchr("-._~", *p)) {
			char ch = (char)*p;
			rc = cf_buf_append(b, &ch, 1);
		} else {
			char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			rc = cf_buf_append(b, enc, 3);
		}
		if (rc)
			return rc;
	}
	return 0;
}
