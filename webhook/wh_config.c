/*
 * wh_config.c - see wh_config.h. The file goes through cf_yaml (which keeps
 * every node's line) and is then validated section by section against a
 * fixed list of keys, so a misspelt key is an error naming its line instead
 * of a setting silently left at its default. A key given as null (or left
 * empty) keeps its default for mappings and lists; a scalar key must have a
 * value of its type.
 */
#include "wh_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "cf_yaml.h"

static const char *const mode_names[] = {"enforce", "warn", "audit"};

int wh_mode_parse(const char *name, wh_mode *out)
{
	for (size_t i = 0; name && i < sizeof mode_names / sizeof mode_names[0]; i++) {
		if (strcmp(name, mode_names[i]) == 0) {
			*out = (wh_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *wh_mode_name(wh_mode m)
{
	if ((unsigned)m >= sizeof mode_names / sizeof mode_names[0])
		return "unknown";
	return mode_names[m];
}

/* ---- allocation and reference counting ---- */

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void config_free(wh_config *cfg)
{
	wh_policy_config_free(&cfg->policy);
	wh_selector_free(cfg->worker_selector);
	free_list(cfg->worker_namespaces, cfg->n_worker_namespaces);
	free_list(cfg->exempt_namespaces, cfg->n_exempt_namespaces);
	free_list(cfg->exempt_usernames, cfg->n_exempt_usernames);
	free_list(cfg->server.network_policy_files, cfg->server.n_network_policy_files);
	free(cfg);
}

wh_config *wh_config_new_default(void)
{
	wh_config *cfg = calloc(1, sizeof *cfg);
	if (!cfg)
		return NULL;
	cfg->profile = WH_PROFILE_WORKER;
	cfg->mode = WH_MODE_ENFORCE;
	wh_policy_config_defaults(&cfg->policy);
	snprintf(cfg->server.listen, sizeof cfg->server.listen, "0.0.0.0:8443");
	cfg->server.threads = 4;
	cfg->server.connection_limit = 1024;
	cfg->server.connection_timeout = 10;
	snprintf(cfg->server.tls_key_type, sizeof cfg->server.tls_key_type, "ecdsa-p256");
	cfg->server.tls_ca_validity = 157680000u;
	cfg->server.tls_leaf_validity = 7776000u;
	cfg->server.tls_propagation = 300u;
	cfg->server.tls_sync_interval = 60u;
	cfg->refs = 1;
	return cfg;
}

wh_config *wh_config_ref(wh_config *cfg)
{
	if (cfg)
		__atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
	return cfg;
}

void wh_config_unref(wh_config *cfg)
{
	/* acq_rel: the thread that frees must see every other holder's reads
	 * finished, as with any reference count. */
	if (cfg && __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
		config_free(cfg);
}

/* ---- selection ---- */

static bool in_list(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

bool wh_config_selects(const wh_config *cfg, const char *ns, const cJSON *labels)
{
	if (!ns || !*ns)
		ns = "default";
	if (in_list(cfg->exempt_namespaces, cfg->n_exempt_namespaces, ns))
		return false;
	if (cfg->n_worker_namespaces &&
	    !in_list(cfg->worker_namespaces, cfg->n_worker_namespaces, ns))
		return false;
	if (cfg->worker_selector && !wh_selector_matches(cfg->worker_selector, labels))
		return false;
	return true;
}

bool wh_config_user_exempt(const wh_config *cfg, const char *username)
{
	return username && in_list(cfg->exempt_usernames, cfg->n_exempt_usernames, username);
}

/* ---- parsing ---- */

typedef struct pctx {
	const cf_yaml_docs *docs;
	const char *name;
	char *err;
	size_t errlen;
} pctx;

/* "NAME: line N: message"; the line is that of `node` (a mapping member's
 * line is its key's). Always returns -EINVAL. */
__attribute__((format(printf, 3, 4))) static int perr(const pctx *c, const cJSON *node,
                                                      const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	unsigned line = cf_yaml_line(c->docs, node);
	if (line)
		snprintf(c->err, c->errlen, "%s: line %u: %s", c->name, line, msg);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->name, msg);
	return -EINVAL;
}

static const char *type_name(const cJSON *n)
{
	if (cJSON_IsNull(n))
		return "null";
	if (cJSON_IsBool(n))
		return "a boolean";
	if (cJSON_IsNumber(n))
		return "a number";
	if (cJSON_IsString(n))
		return "a string";
	if (cJSON_IsArray(n))
		return "a list";
	return "a mapping";
}

/* `path` is the dotted name of a member for messages ("server.threads"). */
static void member_path(char *out, size_t outlen, const char *section, const char *key)
{
	snprintf(out, outlen, "%s%s%s", section, *section ? "." : "", key);
}

static int check_keys(const pctx *c, const cJSON *obj, const char *section,
                      const char *const *allowed)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, obj)
	{
		bool known = false;
		for (size_t i = 0; allowed[i] && !known; i++)
			known = strcmp(it->string, allowed[i]) == 0;
		if (!known) {
			char p[300];
			member_path(p, sizeof p, section, it->string);
			return perr(c, it, "unknown key \"%s\"", p);
		}
	}
	return 0;
}

/* A nested mapping; absent or null leaves *out NULL. */
static int get_section(const pctx *c, const cJSON *parent, const char *section, const char *key,
                       const cJSON **out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(parent, key);
	*out = NULL;
	if (!it || cJSON_IsNull(it))
		return 0;
	if (!cJSON_IsObject(it)) {
		char p[300];
		member_path(p, sizeof p, section, key);
		return perr(c, it, "\"%s\" must be a mapping, not %s", p, type_name(it));
	}
	*out = it;
	return 0;
}

static int get_bool(const pctx *c, const cJSON *obj, const char *section, const char *key,
                    bool *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!it)
		return 0;
	if (!cJSON_IsBool(it)) {
		char p[300];
		member_path(p, sizeof p, section, key);
		return perr(c, it, "\"%s\" must be true or false, not %s", p, type_name(it));
	}
	*out = cJSON_IsTrue(it);
	return 0;
}

/* A string scalar; sets *node to the member (NULL when absent). */
static int get_string(const pctx *c, const cJSON *obj, const char *section, const char *key,
                      char *out, size_t outlen, const cJSON **node)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	char p[300];
	if (node)
		*node = it;
	if (!it)
		return 0;
	member_path(p, sizeof p, section, key);
	if (!cJSON_IsString(it))
		return perr(c, it, "\"%s\" must be a string, not %s", p, type_name(it));
	size_t len = strlen(it->valuestring);
	if (len >= outlen)
		return perr(c, it, "\"%s\" is longer than %zu characters", p, outlen - 1);
	memcpy(out, it->valuestring, len + 1);
	return 0;
}

static int get_uint(const pctx *c, const cJSON *obj, const char *section, const char *key,
                    unsigned min, unsigned max, unsigned *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!it)
		return 0;
	char p[300];
	member_path(p, sizeof p, section, key);
	if (!cJSON_IsNumber(it))
		return perr(c, it, "\"%s\" must be an integer, not %s", p, type_name(it));
	double d = it->valuedouble;
	/* Range first so the integer conversion below is defined. */
	if (!(d >= (double)min && d <= (double)max))
		return perr(c, it, "\"%s\" must be between %u and %u", p, min, max);
	unsigned v = (unsigned)d;
	if ((double)v != d)
		return perr(c, it, "\"%s\" must be a whole number", p);
	*out = v;
	return 0;
}

/* Validates one list entry; returns NULL when valid, else why not. */
typedef const char *(*entry_check)(const char *s);

static int get_string_list(const pctx *c, const cJSON *obj, const char *section, const char *key,
                           entry_check check, char ***out, size_t *n_out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!it || cJSON_IsNull(it))
		return 0;
	char p[300];
	member_path(p, sizeof p, section, key);
	if (!cJSON_IsArray(it))
		return perr(c, it, "\"%s\" must be a list, not %s", p, type_name(it));
	size_t n = (size_t)cJSON_GetArraySize(it);
	char **v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		return perr(c, it, "out of memory");
	size_t i = 0;
	int rc = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, it)
	{
		if (!cJSON_IsString(e)) {
			rc = perr(c, e, "\"%s\" entries must be strings, not %s", p, type_name(e));
			goto fail;
		}
		const char *why = check ? check(e->valuestring) : NULL;
		if (why) {
			rc = perr(c, e, "\"%s\": \"%s\" %s", p, e->valuestring, why);
			goto fail;
		}
		if (in_list(v, i, e->valuestring)) {
			rc = perr(c, e, "\"%s\": \"%s\" is listed twice", p, e->valuestring);
			goto fail;
		}
		v[i] = strdup(e->valuestring);
		if (!v[i]) {
			rc = perr(c, e, "out of memory");
			goto fail;
		}
		i++;
	}
	free_list(*out, *n_out);
	*out = v;
	*n_out = i;
	return 0;
fail:
	free_list(v, i);
	return rc;
}

/* ---- value validators (Kubernetes' own rules for names) ---- */

static bool is_lower_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

/* RFC 1123 label: what namespace and Service names must be. */
static bool is_dns_label(const char *s, size_t len)
{
	if (len == 0 || len > 63 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!is_lower_alnum(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 1123 subdomain: dot-separated labels, at most 253 characters. */
static bool is_dns_subdomain(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > 253)
		return false;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (!is_dns_label(s, n))
			return false;
		s += n;
		if (*s == '.' && !*++s)
			return false;
	}
	return true;
}

static const char *check_namespace(const char *s)
{
	return is_dns_label(s, strlen(s)) ? NULL : "is not a valid namespace name";
}

static const char *check_subdomain(const char *s)
{
	return is_dns_subdomain(s) ? NULL : "is not a valid Kubernetes object name";
}

static const char *check_nonempty(const char *s)
{
	return *s ? NULL : "is empty";
}

static const char *check_capability(const char *s)
{
	if (strcmp(s, "ALL") == 0)
		return "cannot be allowed (it would allow every capability)";
	if (strncmp(s, "CAP_", 4) == 0)
		return "must be written without the CAP_ prefix, as in a pod spec";
	if (!*s || strlen(s) > 64 ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(s))
		return "is not a capability name (upper-case, e.g. NET_RAW)";
	return NULL;
}

static const char *check_resource_name(const char *s)
{
	if (!strcmp(s, "cpu") || !strcmp(s, "memory") || !strcmp(s, "ephemeral-storage"))
		return NULL;
	return "is not one of cpu, memory, ephemeral-storage";
}

/* "HOST:PORT" with an IPv6 host in brackets; port 1-65535. */
static bool valid_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || !colon[1])
		return false;
	const char *port = colon + 1;
	if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5)
		return false;
	unsigned long v = strtoul(port, NULL, 10);
	if (v == 0 || v > 65535)
		return false;
	size_t hlen = (size_t)(colon - s);
	if (s[0] == '[')
		return hlen > 2 && s[hlen - 1] == ']';
	return memchr(s, ':', hlen) == NULL && memchr(s, ' ', hlen) == NULL;
}

/* ---- sections ---- */

static int parse_checks(const pctx *c, const cJSON *root, wh_policy_config *p)
{
	static const char *const keys[] = {"readOnlyRootFilesystem",
	                                   "resourceLimits",
	                                   "networkPolicy",
	                                   "secrets",
	                                   "serviceAccountToken",
	                                   "seccompLocalhost",
	                                   NULL};
	const cJSON *s;
	int rc = get_section(c, root, "", "checks", &s);
	if (rc || !s)
		return rc;
	if ((rc = check_keys(c, s, "checks", keys)) ||
	    (rc = get_bool(c, s, "checks", "readOnlyRootFilesystem",
	                   &p->read_only_root_filesystem)) ||
	    (rc = get_bool(c, s, "checks", "resourceLimits", &p->resource_limits)) ||
	    (rc = get_bool(c, s, "checks", "networkPolicy", &p->network_policy)) ||
	    (rc = get_bool(c, s, "checks", "secrets", &p->secrets)) ||
	    (rc = get_bool(c, s, "checks", "serviceAccountToken", &p->service_account_token)) ||
	    (rc = get_bool(c, s, "checks", "seccompLocalhost", &p->seccomp_localhost)))
		return rc;
	return 0;
}

static int parse_seccomp_profile(const pctx *c, const cJSON *root, wh_policy_config *p)
{
	const cJSON *node;
	char buf[sizeof p->seccomp_localhost_profile];
	int rc = get_string(c, root, "", "seccompLocalhostProfile", buf, sizeof buf, &node);
	if (rc || !node)
		return rc;
	/* The kubelet resolves it under its seccomp root: it must be relative
	 * and stay inside, as the API server requires. */
	if (!*buf || buf[0] == '/' || !strcmp(buf, "..") || !strncmp(buf, "../", 3) ||
	    strstr(buf, "/../") || (strlen(buf) >= 3 && !strcmp(buf + strlen(buf) - 3, "/..")))
		return perr(c, node,
		            "\"seccompLocalhostProfile\" must be a non-empty relative path without "
		            "\"..\" (e.g. codeframe/worker.json)");
	memcpy(p->seccomp_localhost_profile, buf, sizeof buf);
	return 0;
}

static int parse_max(const pctx *c, const cJSON *max, wh_policy_config *p)
{
	static const char *const keys[] = {"cpu", "memory", "ephemeral-storage", NULL};
	int rc = check_keys(c, max, "resources.max", keys);
	if (rc)
		return rc;
	const cJSON *it;
	cJSON_ArrayForEach(it, max)
	{
		wh_quantity q;
		if (!cJSON_IsString(it) && !cJSON_IsNumber(it))
			return perr(c, it, "\"resources.max.%s\" must be a quantity, not %s",
			            it->string, type_name(it));
		if (wh_quantity_from_json(it, &q) != 0)
			return perr(c, it,
			            "\"resources.max.%s\": \"%s\" is not a Kubernetes quantity "
			            "(e.g. 500m, 2, 8Gi)",
			            it->string, it->valuestring ? it->valuestring : "?");
		if (q.nanos <= 0)
			return perr(c, it, "\"resources.max.%s\" must be greater than zero",
			            it->string);
		if (!strcmp(it->string, "cpu")) {
			p->has_max_cpu = true;
			p->max_cpu = q;
		} else if (!strcmp(it->string, "memory")) {
			p->has_max_memory = true;
			p->max_memory = q;
		} else {
			p->has_max_ephemeral_storage = true;
			p->max_ephemeral_storage = q;
		}
	}
	return 0;
}

static int parse_resources(const pctx *c, const cJSON *root, wh_policy_config *p)
{
	static const char *const keys[] = {"requireLimits", "max", NULL};
	const cJSON *s;
	int rc = get_section(c, root, "", "resources", &s);
	if (rc || !s)
		return rc;
	if ((rc = check_keys(c, s, "resources", keys)))
		return rc;
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(s, "requireLimits");
	if (req && !cJSON_IsNull(req)) {
		char **names = NULL;
		size_t n = 0;
		if ((rc = get_string_list(c, s, "resources", "requireLimits", check_resource_name,
		                          &names, &n)))
			return rc;
		p->require_cpu_limit = in_list(names, n, "cpu");
		p->require_memory_limit = in_list(names, n, "memory");
		p->require_ephemeral_storage_limit = in_list(names, n, "ephemeral-storage");
		free_list(names, n);
	}
	const cJSON *max;
	if ((rc = get_section(c, s, "resources", "max", &max)))
		return rc;
	return max ? parse_max(c, max, p) : 0;
}

static int parse_optional(const pctx *c, const cJSON *root, wh_policy_config *p)
{
	static const char *const keys[] = {"allowedRuntimeClasses", "requireHostUsersFalse",
	                                   "requireEmptyDirSizeLimit", NULL};
	const cJSON *s;
	int rc = get_section(c, root, "", "optional", &s);
	if (rc || !s)
		return rc;
	if ((rc = check_keys(c, s, "optional", keys)) ||
	    (rc = get_string_list(c, s, "optional", "allowedRuntimeClasses", check_subdomain,
	                          &p->allowed_runtime_classes, &p->n_allowed_runtime_classes)) ||
	    (rc = get_bool(c, s, "optional", "requireHostUsersFalse",
	                   &p->require_host_users_false)) ||
	    (rc = get_bool(c, s, "optional", "requireEmptyDirSizeLimit",
	                   &p->require_emptydir_size_limit)))
		return rc;
	return 0;
}

static int parse_enum(const pctx *c, const cJSON *root, const char *key, const char *allowed,
                      const cJSON **node, const char **value)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
	*node = it;
	*value = NULL;
	if (!it)
		return 0;
	if (!cJSON_IsString(it))
		return perr(c, it, "\"%s\" must be one of %s, not %s", key, allowed, type_name(it));
	*value = it->valuestring;
	return 0;
}

static int parse_top_scalars(const pctx *c, const cJSON *root, wh_config *cfg)
{
	const cJSON *node;
	const char *v;
	int rc = parse_enum(c, root, "profile", "baseline, restricted, worker", &node, &v);
	if (rc)
		return rc;
	if (v && wh_profile_parse(v, &cfg->profile) != 0)
		return perr(c, node,
		            "\"profile\": \"%s\" is not one of baseline, restricted, worker", v);
	if ((rc = parse_enum(c, root, "mode", "enforce, warn, audit", &node, &v)))
		return rc;
	if (v && wh_mode_parse(v, &cfg->mode) != 0)
		return perr(c, node, "\"mode\": \"%s\" is not one of enforce, warn, audit", v);
	if ((rc = parse_enum(c, root, "networkPolicyNotSynced", "deny, warn", &node, &v)))
		return rc;
	if (v) {
		if (strcmp(v, "deny") && strcmp(v, "warn"))
			return perr(c, node,
			            "\"networkPolicyNotSynced\": \"%s\" is not one of deny, warn",
			            v);
		cfg->policy.netpol_unsynced_warn = strcmp(v, "warn") == 0;
	}
	return get_string_list(c, root, "", "allowedCapabilities", check_capability,
	                       &cfg->policy.allowed_capabilities,
	                       &cfg->policy.n_allowed_capabilities);
}

static int parse_workers(const pctx *c, const cJSON *root, wh_config *cfg)
{
	static const char *const keys[] = {"namespaces", "selector", NULL};
	const cJSON *s;
	int rc = get_section(c, root, "", "workers", &s);
	if (rc || !s)
		return rc;
	if ((rc = check_keys(c, s, "workers", keys)) ||
	    (rc = get_string_list(c, s, "workers", "namespaces", check_namespace,
	                          &cfg->worker_namespaces, &cfg->n_worker_namespaces)))
		return rc;
	const cJSON *sel = cJSON_GetObjectItemCaseSensitive(s, "selector");
	if (!sel || cJSON_IsNull(sel))
		return 0;
	if (!cJSON_IsObject(sel))
		return perr(c, sel, "\"workers.selector\" must be a LabelSelector mapping, not %s",
		            type_name(sel));
	/* The selector parser reads only the fields it knows; in a config
	 * file a misspelt field must be an error like any other key. */
	static const char *const sel_keys[] = {"matchLabels", "matchExpressions", NULL};
	if ((rc = check_keys(c, sel, "workers.selector", sel_keys)))
		return rc;
	char why[256] = "";
	if (wh_selector_parse(sel, &cfg->worker_selector, why, sizeof why) != 0) {
		cfg->worker_selector = NULL;
		return perr(c, sel, "\"workers.selector\": %s", why[0] ? why : "invalid selector");
	}
	return 0;
}

static int parse_exemptions(const pctx *c, const cJSON *root, wh_config *cfg)
{
	static const char *const keys[] = {"namespaces", "usernames", NULL};
	const cJSON *s;
	int rc = get_section(c, root, "", "exemptions", &s);
	if (rc || !s)
		return rc;
	if ((rc = check_keys(c, s, "exemptions", keys)) ||
	    (rc = get_string_list(c, s, "exemptions", "namespaces", check_namespace,
	                          &cfg->exempt_namespaces, &cfg->n_exempt_namespaces)) ||
	    (rc = get_string_list(c, s, "exemptions", "usernames", check_nonempty,
	                          &cfg->exempt_usernames, &cfg->n_exempt_usernames)))
		return rc;
	return 0;
}

static int parse_listen(const pctx *c, const cJSON *s, const char *key, char *out, size_t outlen,
                        bool allow_empty)
{
	const cJSON *node;
	char buf[128];
	int rc =
	    get_string(c, s, "server", key, buf, sizeof buf < outlen ? sizeof buf : outlen, &node);
	if (rc || !node)
		return rc;
	if (!(allow_empty && !*buf) && !valid_listen(buf))
		return perr(c, node,
		            "\"server.%s\": \"%s\" is not ADDRESS:PORT (e.g. 0.0.0.0:8443, "
		            "[::]:8443)",
		            key, buf);
	snprintf(out, outlen, "%s", buf);
	return 0;
}

static int parse_names(const pctx *c, const cJSON *s, wh_server_config *sv)
{
	const cJSON *node;
	int rc =
	    get_string(c, s, "server", "tlsSecret", sv->tls_secret, sizeof sv->tls_secret, &node);
	if (rc)
		return rc;
	if (node && sv->tls_secret[0]) {
		const char *slash = strchr(sv->tls_secret, '/');
		if (!slash || !is_dns_label(sv->tls_secret, (size_t)(slash - sv->tls_secret)) ||
		    !is_dns_subdomain(slash + 1))
			return perr(c, node, "\"server.tlsSecret\": \"%s\" is not NAMESPACE/NAME",
			            sv->tls_secret);
	}
	if ((rc = get_string(c, s, "server", "webhookConfiguration", sv->webhook_config,
	                     sizeof sv->webhook_config, &node)))
		return rc;
	if (node && sv->webhook_config[0] && !is_dns_subdomain(sv->webhook_config))
		return perr(c, node, "\"server.webhookConfiguration\": \"%s\" is not a valid name",
		            sv->webhook_config);
	if ((rc = get_string(c, s, "server", "service", sv->service, sizeof sv->service, &node)))
		return rc;
	if (node && sv->service[0] && !is_dns_label(sv->service, strlen(sv->service)))
		return perr(c, node, "\"server.service\": \"%s\" is not a valid Service name",
		            sv->service);
	return 0;
}

static int parse_server(const pctx *c, const cJSON *root, wh_server_config *sv)
{
	static const char *const keys[] = {"listen",
	                                   "tlsCert",
	                                   "tlsKey",
	                                   "probeListen",
	                                   "threads",
	                                   "connectionLimit",
	                                   "connectionTimeoutSeconds",
	                                   "tlsSecret",
	                                   "webhookConfiguration",
	                                   "service",
	                                   "kubeconfig",
	                                   "networkPolicyFiles",
	                                   "tlsKeyType",
	                                   "tlsCAValiditySeconds",
	                                   "tlsLeafValiditySeconds",
	                                   "tlsRolloverPropagationSeconds",
	                                   "tlsSyncIntervalSeconds",
	                                   NULL};
	const cJSON *s;
	int rc = get_section(c, root, "", "server", &s);
	if (rc || !s)
		return rc;
	const cJSON *cert, *key;
	if ((rc = check_keys(c, s, "server", keys)) ||
	    (rc = parse_listen(c, s, "listen", sv->listen, sizeof sv->listen, false)) ||
	    (rc = parse_listen(c, s, "probeListen", sv->probe_listen, sizeof sv->probe_listen,
	                       true)) ||
	    (rc =
	         get_string(c, s, "server", "tlsCert", sv->tls_cert, sizeof sv->tls_cert, &cert)) ||
	    (rc = get_string(c, s, "server", "tlsKey", sv->tls_key, sizeof sv->tls_key, &key)) ||
	    (rc = get_uint(c, s, "server", "threads", 1, 256, &sv->threads)) ||
	    (rc = get_uint(c, s, "server", "connectionLimit", 1, 1000000, &sv->connection_limit)) ||
	    (rc = get_uint(c, s, "server", "connectionTimeoutSeconds", 1, 3600,
	                   &sv->connection_timeout)) ||
	    (rc = parse_names(c, s, sv)) ||
	    (rc = get_string(c, s, "server", "kubeconfig", sv->kubeconfig, sizeof sv->kubeconfig,
	                     NULL)) ||
	    (rc = get_string_list(c, s, "server", "networkPolicyFiles", check_nonempty,
	                          &sv->network_policy_files, &sv->n_network_policy_files)))
		return rc;
	const cJSON *kt;
	if ((rc = get_string(c, s, "server", "tlsKeyType", sv->tls_key_type,
	                     sizeof sv->tls_key_type, &kt)) ||
	    (rc = get_uint(c, s, "server", "tlsCAValiditySeconds", 6, 3153600000u,
	                   &sv->tls_ca_validity)) ||
	    (rc = get_uint(c, s, "server", "tlsLeafValiditySeconds", 3, 1576800000u,
	                   &sv->tls_leaf_validity)) ||
	    (rc = get_uint(c, s, "server", "tlsRolloverPropagationSeconds", 0, 86400,
	                   &sv->tls_propagation)) ||
	    (rc = get_uint(c, s, "server", "tlsSyncIntervalSeconds", 1, 3600,
	                   &sv->tls_sync_interval)))
		return rc;
	if (kt && strcmp(sv->tls_key_type, "ecdsa-p256") && strcmp(sv->tls_key_type, "rsa-2048") &&
	    strcmp(sv->tls_key_type, "rsa-3072") && strcmp(sv->tls_key_type, "rsa-4096"))
		return perr(c, kt,
		            "\"server.tlsKeyType\": \"%s\" is not ecdsa-p256, rsa-2048, rsa-3072 "
		            "or rsa-4096",
		            sv->tls_key_type);
	if ((unsigned long long)sv->tls_ca_validity < 2ull * sv->tls_leaf_validity)
		return perr(c, s,
		            "\"server.tlsCAValiditySeconds\" (%u) must be at least twice "
		            "\"server.tlsLeafValiditySeconds\" (%u)",
		            sv->tls_ca_validity, sv->tls_leaf_validity);
	/* A certificate without its key (or the reverse) cannot serve TLS. */
	if (!sv->tls_cert[0] != !sv->tls_key[0])
		return perr(c, sv->tls_cert[0] ? cert : key,
		            "\"server.tlsCert\" and \"server.tlsKey\" must be given together");
	return 0;
}

static int parse_root(const pctx *c, const cJSON *root, wh_config *cfg)
{
	static const char *const keys[] = {"profile",   "mode",
	                                   "checks",    "seccompLocalhostProfile",
	                                   "resources", "allowedCapabilities",
	                                   "optional",  "networkPolicyNotSynced",
	                                   "workers",   "exemptions",
	                                   "server",    NULL};
	int rc;
	if ((rc = check_keys(c, root, "", keys)) || (rc = parse_top_scalars(c, root, cfg)) ||
	    (rc = parse_checks(c, root, &cfg->policy)) ||
	    (rc = parse_seccomp_profile(c, root, &cfg->policy)) ||
	    (rc = parse_resources(c, root, &cfg->policy)) ||
	    (rc = parse_optional(c, root, &cfg->policy)) || (rc = parse_workers(c, root, cfg)) ||
	    (rc = parse_exemptions(c, root, cfg)) || (rc = parse_server(c, root, &cfg->server)))
		return rc;
	return 0;
}

wh_config *wh_config_parse(const char *text, size_t len, const char *name, char *err, size_t errlen)
{
	cf_yaml_docs docs;
	char yerr[256] = "";
	if (!name)
		name = "config";
	int rc = cf_yaml_parse(text, len, &docs, yerr, sizeof yerr);
	if (rc) {
		snprintf(err, errlen, "%s: %s", name, yerr[0] ? yerr : "invalid YAML");
		return NULL;
	}
	wh_config *cfg = wh_config_new_default();
	pctx c = {&docs, name, err, errlen};
	if (!cfg) {
		snprintf(err, errlen, "%s: out of memory", name);
		goto fail;
	}
	int ndocs = cJSON_GetArraySize(docs.docs);
	/* An empty file (or comments only) is the default configuration. */
	if (ndocs == 0) {
		cf_yaml_docs_free(&docs);
		return cfg;
	}
	const cJSON *root = cJSON_GetArrayItem(docs.docs, 0);
	if (ndocs > 1) {
		perr(&c, cJSON_GetArrayItem(docs.docs, 1),
		     "a config file holds one YAML document, found %d", ndocs);
		goto fail;
	}
	if (!cJSON_IsObject(root)) {
		perr(&c, root, "the top level must be a mapping of settings, not %s",
		     type_name(root));
		goto fail;
	}
	if (parse_root(&c, root, cfg))
		goto fail;
	cf_yaml_docs_free(&docs);
	return cfg;
fail:
	wh_config_unref(cfg);
	cf_yaml_docs_free(&docs);
	return NULL;
}

wh_config *wh_config_load(const char *path, char *err, size_t errlen)
{
	cf_buf b;
	if (cf_read_file(path, CF_MAX_INPUT_FILE_BYTES, &b, err, errlen) != 0)
		return NULL;
	wh_config *cfg = wh_config_parse(b.data, b.len, path, err, errlen);
	cf_buf_free(&b);
	return cfg;
}
