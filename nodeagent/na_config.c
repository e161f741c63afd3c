/* na_config.c - see na_config.h. */
#include "na_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "cf_yaml.h"

int na_config_set(char **field, const char *value)
{
	char *copy = strdup(value ? value : "");
	if (!copy)
		return -ENOMEM;
	free(*field);
	*field = copy;
	return 0;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

int na_config_set_policies(na_config *c, char *const *paths, size_t n)
{
	char **list = calloc(n ? n : 1, sizeof *list);
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		list[i] = strdup(paths[i]);
		if (!list[i]) {
			free_list(list, i);
			return -ENOMEM;
		}
	}
	free_list(c->policies, c->n_policies);
	c->policies = list;
	c->n_policies = n;
	return 0;
}

void na_config_free(na_config *c)
{
	if (!c)
		return;
	free(c->socket);
	free(c->state_dir);
	free_list(c->policies, c->n_policies);
	free(c->metrics_listen);
	free(c->profile_dir);
	free(c->approval_group);
	free(c->node_name);
	memset(c, 0, sizeof *c);
}

int na_config_init(na_config *c)
{
	memset(c, 0, sizeof *c);
	char *def_policy = NA_CONFIG_DEFAULT_POLICY;
	const char *node = getenv("NODE_NAME");
	c->log_level = CF_LOG_INFO;
	c->approval_timeout_s = 60;
	if (na_config_set(&c->socket, NA_CONFIG_DEFAULT_SOCKET) < 0 ||
	    na_config_set(&c->state_dir, NA_CONFIG_DEFAULT_STATE_DIR) < 0 ||
	    na_config_set(&c->metrics_listen, NA_CONFIG_DEFAULT_METRICS) < 0 ||
	    na_config_set(&c->profile_dir, NA_CONFIG_DEFAULT_PROFILE_DIR) < 0 ||
	    na_config_set(&c->approval_group, "") < 0 ||
	    na_config_set(&c->node_name, node ? node : "") < 0 ||
	    na_config_set_policies(c, &def_policy, 1) < 0) {
		na_config_free(c);
		return -ENOMEM;
	}
	return 0;
}

static int want_string(const cf_yaml_docs *d, const cJSON *v, const char *name, char *err,
                       size_t errlen)
{
	if (cJSON_IsString(v))
		return 0;
	snprintf(err, errlen, "%s:%u: \"%s\" must be a string", name, cf_yaml_line(d, v),
	         v->string);
	return -EINVAL;
}

/* Applies one document to a scratch copy; the caller swaps on success. */
static int apply(na_config *c, const cf_yaml_docs *d, const cJSON *root, const char *name,
                 char *err, size_t errlen)
{
	const cJSON *v;
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "%s:%u: the configuration must be a mapping", name,
		         cf_yaml_line(d, root));
		return -EINVAL;
	}
	cJSON_ArrayForEach(v, root)
	{
		const char *k = v->string;
		unsigned line = cf_yaml_line(d, v);
		int rc = 0;
		char **field = NULL;
		if (strcmp(k, "socket") == 0)
			field = &c->socket;
		else if (strcmp(k, "stateDir") == 0)
			field = &c->state_dir;
		else if (strcmp(k, "metricsListen") == 0)
			field = &c->metrics_listen;
		else if (strcmp(k, "profileDir") == 0)
			field = &c->profile_dir;
		else if (strcmp(k, "approvalGroup") == 0)
			field = &c->approval_group;
		else if (strcmp(k, "nodeName") == 0)
			field = &c->node_name;
		if (field) {
			if ((rc = want_string(d, v, name, err, errlen)) < 0)
				return rc;
			if (strcmp(k, "metricsListen") != 0 && strcmp(k, "approvalGroup") != 0 &&
			    strcmp(k, "nodeName") != 0 && strcmp(k, "profileDir") != 0 &&
			    v->valuestring[0] == '\0') {
				snprintf(err, errlen, "%s:%u: \"%s\" must not be empty", name, line,
				         k);
				return -EINVAL;
			}
			if ((strcmp(k, "socket") == 0 || strcmp(k, "stateDir") == 0 ||
			     strcmp(k, "profileDir") == 0) &&
			    v->valuestring[0] && v->valuestring[0] != '/') {
				snprintf(err, errlen, "%s:%u: \"%s\" must be an absolute path",
				         name, line, k);
				return -EINVAL;
			}
			if (strcmp(k, "metricsListen") == 0 && v->valuestring[0]) {
				uint32_t a;
				uint16_t p;
				char e2[128];
				if (na_config_parse_listen(v->valuestring, &a, &p, e2, sizeof e2) <
				    0) {
					snprintf(err, errlen, "%s:%u: %s", name, line, e2);
					return -EINVAL;
				}
			}
			rc = na_config_set(field, v->valuestring);
		} else if (strcmp(k, "policies") == 0) {
			const cJSON *p;
			size_t n = 0;
			if (!cJSON_IsArray(v)) {
				snprintf(err, errlen, "%s:%u: \"policies\" must be a list of paths",
				         name, line);
				return -EINVAL;
			}
			cJSON_ArrayForEach(p, v)
			{
				if (!cJSON_IsString(p) || !p->valuestring[0]) {
					snprintf(
					    err, errlen,
					    "%s:%u: \"policies\" entries must be non-empty paths",
					    name, cf_yaml_line(d, p));
					return -EINVAL;
				}
				n++;
			}
			if (n > CF_AGENT_MAX_POLICY_ENTRIES) {
				snprintf(err, errlen, "%s:%u: too many policy files", name, line);
				return -E2BIG;
			}
			char **paths = calloc(n ? n : 1, sizeof *paths);
			if (!paths)
				return -ENOMEM;
			n = 0;
			cJSON_ArrayForEach(p, v) paths[n++] = p->valuestring;
			rc = na_config_set_policies(c, paths, n);
			free(paths);
		} else if (strcmp(k, "logLevel") == 0) {
			if ((rc = want_string(d, v, name, err, errlen)) < 0)
				return rc;
			if (cf_log_parse_level(v->valuestring, &c->log_level) < 0) {
				snprintf(
				    err, errlen,
				    "%s:%u: \"logLevel\" must be debug, info, warning or error",
				    name, line);
				return -EINVAL;
			}
		} else if (strcmp(k, "approvalTimeoutSeconds") == 0) {
			if (!cJSON_IsNumber(v) || floor(v->valuedouble) != v->valuedouble ||
			    v->valuedouble < 1 || v->valuedouble > NA_CONFIG_MAX_APPROVAL_TIMEOUT) {
				snprintf(err, errlen,
				         "%s:%u: \"approvalTimeoutSeconds\" must be a whole number "
				         "from 1 to %d",
				         name, line, NA_CONFIG_MAX_APPROVAL_TIMEOUT);
				return -EINVAL;
			}
			c->approval_timeout_s = (long)v->valuedouble;
		} else {
			snprintf(err, errlen, "%s:%u: unknown key \"%s\"", name, line, k);
			return -EINVAL;
		}
		if (rc < 0) {
			snprintf(err, errlen, "out of memory");
			return rc;
		}
	}
	return 0;
}

static int copy_config(na_config *dst, const na_config *src)
{
	memset(dst, 0, sizeof *dst);
	dst->log_level = src->log_level;
	dst->approval_timeout_s = src->approval_timeout_s;
	if (na_config_set(&dst->socket, src->socket) < 0 ||
	    na_config_set(&dst->state_dir, src->state_dir) < 0 ||
	    na_config_set(&dst->metrics_listen, src->metrics_listen) < 0 ||
	    na_config_set(&dst->profile_dir, src->profile_dir) < 0 ||
	    na_config_set(&dst->approval_group, src->approval_group) < 0 ||
	    na_config_set(&dst->node_name, src->node_name) < 0 ||
	    na_config_set_policies(dst, src->policies, src->n_policies) < 0) {
		na_config_free(dst);
		return -ENOMEM;
	}
	return 0;
}

int na_config_load_buffer(na_config *c, const char *name, const char *data, size_t len, char *err,
                          size_t errlen)
{
	cf_yaml_docs d;
	char yerr[256] = "";
	na_config tmp;
	int rc = cf_yaml_parse(data, len, &d, yerr, sizeof yerr);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", name, yerr);
		return rc;
	}
	int ndocs = cJSON_GetArraySize(d.docs);
	if (ndocs > 1) {
		snprintf(err, errlen, "%s: expected one YAML document, found %d", name, ndocs);
		cf_yaml_docs_free(&d);
		return -EINVAL;
	}
	if (ndocs == 0) { /* an empty file keeps every default */
		cf_yaml_docs_free(&d);
		return 0;
	}
	rc = copy_config(&tmp, c);
	if (rc == 0) {
		rc = apply(&tmp, &d, cJSON_GetArrayItem(d.docs, 0), name, err, errlen);
		if (rc == 0) {
			na_config_free(c);
			*c = tmp;
		} else {
			na_config_free(&tmp);
		}
	} else {
		snprintf(err, errlen, "out of memory");
	}
	cf_yaml_docs_free(&d);
	return rc;
}

int na_config_load_file(na_config *c, const char *path, char *err, size_t errlen)
{
	cf_buf b;
	int rc = cf_read_file(path, CF_AGENT_CONFIG_MAX_BYTES, &b, err, errlen);
	if (rc < 0)
		return rc;
	rc = na_config_load_buffer(c, path, b.data ? b.data : "", b.len, err, errlen);
	cf_buf_free(&b);
	return rc;
}

int na_config_parse_listen(const char *s, uint32_t *addr_be, uint16_t *port, char *err,
                           size_t errlen)
{
	char host[64];
	const char *colon = s ? strrchr(s, ':') : NULL;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof host) {
		snprintf(err, errlen, "listen address \"%s\" must be ADDR:PORT", s ? s : "");
		return -EINVAL;
	}
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *end = NULL;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p < 1 || p > 65535 || colon[1] == '-' ||
	    colon[1] == '+') {
		snprintf(err, errlen, "listen address \"%s\": port must be 1..65535", s);
		return -EINVAL;
	}
	struct in_addr a;
	if (strcmp(host, "localhost") == 0)
		a.s_addr = htonl(INADDR_LOOPBACK);
	else if (inet_pton(AF_INET, host, &a) != 1) {
		snprintf(err, errlen, "listen address \"%s\": \"%s\" is not an IPv4 address", s,
		         host);
		return -EINVAL;
	}
	*addr_be = a.s_addr;
	*port = (uint16_t)p;
	return 0;
}
