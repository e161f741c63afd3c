/*
 * wh_psa.c - Pod Security Standards checks and the shared pod view (see
 * wh_psa.h).
 *
 * The checks follow Pod Security Admission at its latest policy version
 * (v1.35): the same fields, the same allowed values, the same pod-level vs
 * container-level precedence, the same exemptions (Windows pods for the
 * Linux-only restricted checks; `hostUsers: false` pods for runAsNonRoot,
 * runAsUser and baseline procMount). Where PSA folds a check's findings into
 * one sentence, this engine reports each offending field on its own, with
 * its path and container, so every violation can be fixed from its line.
 *
 * Thread-safety: no globals; reentrant. Ownership: see wh_psa.h.
 */
#include "wh_psa.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_json.h"

/* ---------------------------------------------------------------------- */
/* Type checking of every field the engine reads                           */
/* ---------------------------------------------------------------------- */

/* snprintf for field paths: a path longer than its buffer is cut, which
 * only shortens a message (the fixed parts are short; names are bounded). */
static void pathf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pathf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

enum {
	T_OBJ = 1,    /* object */
	T_ARR = 2,    /* list */
	T_STR = 3,    /* string */
	T_BOOL = 4,   /* true/false */
	T_INT = 5,    /* integral number */
	T_MAPSTR = 6, /* object whose values are all strings */
	T_QTYMAP = 7, /* object whose values are strings or numbers (quantities) */
};

typedef struct vfield {
	const char *key;
	int type;
	const struct vfield *sub; /* T_OBJ: its fields; T_ARR of T_OBJ: element fields */
	int elem;                 /* T_ARR: element type */
	int other;                /* T_OBJ: type every key not listed must have (0: any) */
} vfield;

static const vfield v_caps[] = {
    {"add", T_ARR, NULL, T_STR, 0},
    {"drop", T_ARR, NULL, T_STR, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_profile[] = {
    {"type", T_STR, NULL, 0, 0},
    {"localhostProfile", T_STR, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_selinux[] = {
    {"type", T_STR, NULL, 0, 0},  {"user", T_STR, NULL, 0, 0}, {"role", T_STR, NULL, 0, 0},
    {"level", T_STR, NULL, 0, 0}, {NULL, 0, NULL, 0, 0},
};
static const vfield v_windows[] = {
    {"hostProcess", T_BOOL, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_sysctl[] = {
    {"name", T_STR, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_sc[] = {
    {"privileged", T_BOOL, NULL, 0, 0},
    {"allowPrivilegeEscalation", T_BOOL, NULL, 0, 0},
    {"readOnlyRootFilesystem", T_BOOL, NULL, 0, 0},
    {"runAsNonRoot", T_BOOL, NULL, 0, 0},
    {"runAsUser", T_INT, NULL, 0, 0},
    {"procMount", T_STR, NULL, 0, 0},
    {"capabilities", T_OBJ, v_caps, 0, 0},
    {"seccompProfile", T_OBJ, v_profile, 0, 0},
    {"appArmorProfile", T_OBJ, v_profile, 0, 0},
    {"seLinuxOptions", T_OBJ, v_selinux, 0, 0},
    {"windowsOptions", T_OBJ, v_windows, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_psc[] = {
    {"runAsNonRoot", T_BOOL, NULL, 0, 0},       {"runAsUser", T_INT, NULL, 0, 0},
    {"seccompProfile", T_OBJ, v_profile, 0, 0}, {"appArmorProfile", T_OBJ, v_profile, 0, 0},
    {"seLinuxOptions", T_OBJ, v_selinux, 0, 0}, {"windowsOptions", T_OBJ, v_windows, 0, 0},
    {"sysctls", T_ARR, v_sysctl, T_OBJ, 0},     {NULL, 0, NULL, 0, 0},
};
static const vfield v_host[] = {
    {"host", T_STR, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_handler[] = {
    {"httpGet", T_OBJ, v_host, 0, 0},
    {"tcpSocket", T_OBJ, v_host, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_lifecycle[] = {
    {"postStart", T_OBJ, v_handler, 0, 0},
    {"preStop", T_OBJ, v_handler, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_port[] = {
    {"hostPort", T_INT, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_resources[] = {
    {"limits", T_QTYMAP, NULL, 0, 0},
    {"requests", T_QTYMAP, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_value_from[] = {
    {"secretKeyRef", T_OBJ, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_env[] = {
    {"name", T_STR, NULL, 0, 0},
    {"valueFrom", T_OBJ, v_value_from, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_env_from[] = {
    {"secretRef", T_OBJ, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_container[] = {
    {"name", T_STR, NULL, 0, 0},
    {"securityContext", T_OBJ, v_sc, 0, 0},
    {"ports", T_ARR, v_port, T_OBJ, 0},
    {"livenessProbe", T_OBJ, v_handler, 0, 0},
    {"readinessProbe", T_OBJ, v_handler, 0, 0},
    {"startupProbe", T_OBJ, v_handler, 0, 0},
    {"lifecycle", T_OBJ, v_lifecycle, 0, 0},
    {"resources", T_OBJ, v_resources, 0, 0},
    {"env", T_ARR, v_env, T_OBJ, 0},
    {"envFrom", T_ARR, v_env_from, T_OBJ, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_projection[] = {
    {"secret", T_OBJ, NULL, 0, 0},
    {"serviceAccountToken", T_OBJ, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_projected[] = {
    {"sources", T_ARR, v_projection, T_OBJ, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_csi[] = {
    {"driver", T_STR, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_volume[] = {
    {"name", T_STR, NULL, 0, 0},
    {"projected", T_OBJ, v_projected, 0, 0},
    {"csi", T_OBJ, v_csi, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_os[] = {
    {"name", T_STR, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_spec[] = {
    {"hostNetwork", T_BOOL, NULL, 0, 0},
    {"hostPID", T_BOOL, NULL, 0, 0},
    {"hostIPC", T_BOOL, NULL, 0, 0},
    {"hostUsers", T_BOOL, NULL, 0, 0},
    {"automountServiceAccountToken", T_BOOL, NULL, 0, 0},
    {"runtimeClassName", T_STR, NULL, 0, 0},
    {"os", T_OBJ, v_os, 0, 0},
    {"securityContext", T_OBJ, v_psc, 0, 0},
    {"resources", T_OBJ, v_resources, 0, 0},
    /* every volume source is an object; "name" is the only scalar */
    {"volumes", T_ARR, v_volume, T_OBJ, T_OBJ},
    {"initContainers", T_ARR, v_container, T_OBJ, 0},
    {"containers", T_ARR, v_container, T_OBJ, 0},
    {"ephemeralContainers", T_ARR, v_container, T_OBJ, 0},
    {NULL, 0, NULL, 0, 0},
};
static const vfield v_meta[] = {
    {"labels", T_MAPSTR, NULL, 0, 0},
    {"annotations", T_MAPSTR, NULL, 0, 0},
    {NULL, 0, NULL, 0, 0},
};

static const char *json_type_name(const cJSON *j)
{
	if (cJSON_IsObject(j))
		return "an object";
	if (cJSON_IsArray(j))
		return "a list";
	if (cJSON_IsString(j))
		return "a string";
	if (cJSON_IsBool(j))
		return "a boolean";
	if (cJSON_IsNumber(j))
		return "a number";
	return "something else";
}

static const char *want_name(int type)
{
	switch (type) {
	case T_OBJ:
	case T_MAPSTR:
	case T_QTYMAP:
		return "an object";
	case T_ARR:
		return "a list";
	case T_STR:
		return "a string";
	case T_BOOL:
		return "a boolean";
	case T_INT:
		return "an integer";
	}
	return "?";
}

static bool type_ok(const cJSON *j, int type)
{
	switch (type) {
	case T_OBJ:
		return cJSON_IsObject(j);
	case T_ARR:
		return cJSON_IsArray(j);
	case T_STR:
		return cJSON_IsString(j);
	case T_BOOL:
		return cJSON_IsBool(j);
	case T_INT:
		return cJSON_IsNumber(j) && isfinite(j->valuedouble) &&
		       j->valuedouble == floor(j->valuedouble);
	case T_MAPSTR:
	case T_QTYMAP:
		return cJSON_IsObject(j);
	}
	return false;
}

/* Where a value sits, as a chain of parents: rendered into text only when
 * there is an error to report, so a valid pod costs no formatting. */
typedef struct vpath {
	const struct vpath *up;
	const char *key; /* member name, or NULL for a list element */
	int idx;
} vpath;

static size_t vpath_render(const vpath *p, char *buf, size_t len)
{
	size_t used = p->up ? vpath_render(p->up, buf, len) : 0;
	if (used >= len)
		return used;
	int n;
	if (p->key)
		n = snprintf(buf + used, len - used, "%s%s", p->up ? "." : "", p->key);
	else
		n = snprintf(buf + used, len - used, "[%d]", p->idx);
	return n < 0 ? used : used + (size_t)n;
}

static int type_error(const vpath *p, const char *key, const char *want, const cJSON *got,
                      char *err, size_t errlen)
{
	char path[512];
	vpath leaf = {p, key, 0};
	vpath_render(key ? &leaf : p, path, sizeof path);
	snprintf(err, errlen, "%s: must be %s, not %s", path, want,
	         cJSON_IsNull(got) ? "null" : json_type_name(got));
	return -EINVAL;
}

static int validate_obj(const cJSON *obj, const vfield *fields, int other, const vpath *path,
                        char *err, size_t errlen);

/* One value against its expected type; null always means "not set". */
static int validate_value(const cJSON *v, const vfield *f, int type, const vpath *path, char *err,
                          size_t errlen)
{
	if (cJSON_IsNull(v))
		return 0;
	if (!type_ok(v, type))
		return type_error(path, NULL, want_name(type), v, err, errlen);
	if (type == T_MAPSTR || type == T_QTYMAP) {
		const cJSON *kv;
		cJSON_ArrayForEach(kv, v)
		{
			bool ok = cJSON_IsString(kv) || (type == T_QTYMAP && cJSON_IsNumber(kv));
			if (!ok)
				return type_error(path, kv->string ? kv->string : "?", "a string",
				                  kv, err, errlen);
		}
	} else if (type == T_OBJ && f && f->sub) {
		return validate_obj(v, f->sub, f->other, path, err, errlen);
	} else if (type == T_ARR && f) {
		vpath elem = {path, NULL, 0};
		const cJSON *e;
		cJSON_ArrayForEach(e, v)
		{
			/* list elements may not be null: the API has no null element */
			if (cJSON_IsNull(e) || !type_ok(e, f->elem))
				return type_error(&elem, NULL, want_name(f->elem), e, err, errlen);
			if (f->elem == T_OBJ && f->sub) {
				int rc = validate_obj(e, f->sub, f->other, &elem, err, errlen);
				if (rc)
					return rc;
			}
			elem.idx++;
		}
	}
	return 0;
}

/* The schema entry for a member name, or NULL. The schema is a short
 * contiguous array, so scanning it is cheaper than walking the member
 * list once per schema field. */
static const vfield *schema_field(const vfield *fields, const char *key)
{
	for (const vfield *f = fields; f->key; f++)
		if (f->key[0] == key[0] && strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

/* One pass over the members: a listed one against its schema entry, any
 * other against `other` (0: not checked). Every occurrence of a duplicated
 * key is checked. */
static int validate_obj(const cJSON *obj, const vfield *fields, int other, const vpath *path,
                        char *err, size_t errlen)
{
	const cJSON *kv;
	cJSON_ArrayForEach(kv, obj)
	{
		const vfield *f = kv->string ? schema_field(fields, kv->string) : NULL;
		if (f) {
			vpath sub = {path, f->key, 0};
			int rc = validate_value(kv, f, f->type, &sub, err, errlen);
			if (rc)
				return rc;
		} else if (other && !cJSON_IsNull(kv) && !type_ok(kv, other)) {
			return type_error(path, kv->string ? kv->string : "?", want_name(other), kv,
			                  err, errlen);
		}
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Pod view and result appending                                           */
/* ---------------------------------------------------------------------- */

static bool is_true(const cJSON *obj, const char *key)
{
	return cJSON_IsTrue(cf_json_get(obj, key));
}

static bool is_false(const cJSON *obj, const char *key)
{
	return cJSON_IsFalse(cf_json_get(obj, key));
}

static bool is_set(const cJSON *obj, const char *key)
{
	const cJSON *v = cf_json_get(obj, key);
	return v && !cJSON_IsNull(v);
}

/* "<spec_path>.<list>[<i>]", cut to fit like pathf. Built for every
 * container of every request, where snprintf cost a twentieth of the
 * whole admission's instructions. */
static void container_path(char *buf, size_t len, const char *spec_path, const char *list, int i)
{
	char digits[12];
	size_t nd = 0;
	for (unsigned v = (unsigned)i; nd == 0 || v; v /= 10)
		digits[nd++] = (char)('0' + v % 10);
	char tail[16] = "[";
	size_t t = 1;
	while (nd)
		tail[t++] = digits[--nd];
	tail[t++] = ']';
	tail[t] = '\0';
	const char *parts[] = {spec_path, ".", list, tail};
	size_t at = 0;
	for (size_t k = 0; k < 4 && at < len - 1; k++)
		at += cf_str_copy(buf + at, len - at, parts[k]);
}

int wh_psa_pod_init(wh_psa_pod *pod, const cJSON *spec, const char *spec_path, const cJSON *meta,
                    wh_result *out, char *err, size_t errlen)
{
	memset(pod, 0, sizeof *pod);
	if (!cJSON_IsObject(spec)) {
		snprintf(err, errlen, "%s: must be an object, not %s", spec_path,
		         spec ? json_type_name(spec) : "missing");
		return -EINVAL;
	}
	cf_str_copy(pod->spec_path, sizeof pod->spec_path, spec_path);
	/* "spec" -> "metadata"; "x.spec" -> "x.metadata" */
	size_t sl = strlen(pod->spec_path);
	if (sl > 5 && !strcmp(pod->spec_path + sl - 5, ".spec"))
		snprintf(pod->meta_path, sizeof pod->meta_path, "%.*s.metadata", (int)(sl - 5),
		         pod->spec_path);
	else
		cf_str_copy(pod->meta_path, sizeof pod->meta_path, "metadata");

	vpath root = {NULL, pod->spec_path, 0};
	int rc = validate_obj(spec, v_spec, 0, &root, err, errlen);
	if (rc)
		return rc;
	if (meta && !cJSON_IsNull(meta)) {
		if (!cJSON_IsObject(meta)) {
			snprintf(err, errlen, "%s: must be an object, not %s", pod->meta_path,
			         json_type_name(meta));
			return -EINVAL;
		}
		vpath mroot = {NULL, pod->meta_path, 0};
		rc = validate_obj(meta, v_meta, 0, &mroot, err, errlen);
		if (rc)
			return rc;
		pod->meta = meta;
	}
	pod->spec = spec;
	pod->psc = cf_json_object(spec, "securityContext");
	const char *os = cf_json_string(cf_json_object(spec, "os"), "name");
	pod->windows = os && !strcmp(os, "windows");
	pod->host_users_false = is_false(spec, "hostUsers");
	pod->out = out;

	static const char *const lists[] = {"initContainers", "containers", "ephemeralContainers"};
	size_t total = 0;
	for (size_t k = 0; k < 3; k++)
		total += (size_t)cJSON_GetArraySize(cf_json_array(spec, lists[k]));
	if (total) {
		pod->ctrs = calloc(total, sizeof *pod->ctrs);
		if (!pod->ctrs) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	for (size_t k = 0; k < 3; k++) {
		int i = 0;
		const cJSON *c;
		cJSON_ArrayForEach(c, cf_json_array(spec, lists[k]))
		{
			wh_psa_container *w = &pod->ctrs[pod->n_ctrs++];
			w->obj = c;
			w->sc = cf_json_object(c, "securityContext");
			w->limits = cf_json_object(cf_json_object(c, "resources"), "limits");
			w->name = cf_json_string(c, "name") ? cf_json_string(c, "name") : "";
			w->kind = (wh_psa_kind)k;
			container_path(w->path, sizeof w->path, pod->spec_path, lists[k], i++);
		}
	}
	return 0;
}

void wh_psa_pod_free(wh_psa_pod *pod)
{
	free(pod->ctrs);
	pod->ctrs = NULL;
	pod->n_ctrs = 0;
}

static char *vformat(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *format(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = vformat(fmt, ap);
	va_end(ap);
	return s;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

void wh_psa_violation(wh_psa_pod *pod, const char *check, const wh_psa_container *c,
                      const char *path, const char *what_fmt, ...)
{
	if (pod->rc)
		return;
	wh_result *r = pod->out;
	va_list ap;
	va_start(ap, what_fmt);
	char *what = vformat(what_fmt, ap);
	va_end(ap);
	wh_violation v = {0};
	if (!what)
		goto oom;
	if (c)
		v.message = format("%s %s (container \"%s\") [%s]", path, what, c->name, check);
	else
		v.message = format("%s %s [%s]", path, what, check);
	free(what);
	v.check = strdup(check);
	v.path = strdup(path);
	v.container = c ? strdup(c->name) : NULL;
	if (!v.message || !v.check || !v.path || (c && !v.container))
		goto oom;
	if (grow((void **)&r->violations, &r->cap_violations, r->n_violations,
	         sizeof *r->violations))
		goto oom;
	r->violations[r->n_violations++] = v;
	return;
oom:
	free(v.message);
	free(v.check);
	free(v.path);
	free(v.container);
	pod->rc = -ENOMEM;
}

void wh_psa_warning(wh_psa_pod *pod, const char *fmt, ...)
{
	if (pod->rc)
		return;
	wh_result *r = pod->out;
	va_list ap;
	va_start(ap, fmt);
	char *w = vformat(fmt, ap);
	va_end(ap);
	if (!w ||
	    grow((void **)&r->warnings, &r->cap_warnings, r->n_warnings, sizeof *r->warnings)) {
		free(w);
		pod->rc = -ENOMEM;
		return;
	}
	r->warnings[r->n_warnings++] = w;
}

/* ---------------------------------------------------------------------- */
/* Baseline                                                                */
/* ---------------------------------------------------------------------- */

static bool in_list(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static bool in_extra(const char *s, const wh_psa_caps *extra)
{
	for (size_t i = 0; extra && i < extra->n; i++)
		if (extra->names[i] && !strcmp(s, extra->names[i]))
			return true;
	return false;
}

static void check_host_namespaces(wh_psa_pod *pod)
{
	static const char *const fields[] = {"hostNetwork", "hostPID", "hostIPC"};
	char path[128];
	for (size_t i = 0; i < 3; i++) {
		if (!is_true(pod->spec, fields[i]))
			continue;
		pathf(path, sizeof path, "%s.%s", pod->spec_path, fields[i]);
		wh_psa_violation(pod, "hostNamespaces", NULL, path, "must not be true");
	}
}

static void check_privileged(wh_psa_pod *pod)
{
	char path[160];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		if (!is_true(c->sc, "privileged"))
			continue;
		pathf(path, sizeof path, "%s.securityContext.privileged", c->path);
		wh_psa_violation(pod, "privileged", c, path, "must not be true");
	}
}

static const char *const baseline_caps[] = {
    "AUDIT_WRITE",      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",       "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT", NULL,
};

static void check_capabilities_baseline(wh_psa_pod *pod, const wh_psa_caps *extra)
{
	char path[192];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		int j = 0;
		const cJSON *cap;
		cJSON_ArrayForEach(cap, cf_json_array(cf_json_object(c->sc, "capabilities"), "add"))
		{
			const char *name = cap->valuestring;
			if (!in_list(name, baseline_caps) && !in_extra(name, extra)) {
				pathf(path, sizeof path, "%s.securityContext.capabilities.add[%d]",
				      c->path, j);
				wh_psa_violation(pod, "capabilities_baseline", c, path,
				                 "must not add \"%s\"", name);
			}
			j++;
		}
	}
}

static void check_host_path_volumes(wh_psa_pod *pod)
{
	char path[160];
	int i = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, cf_json_array(pod->spec, "volumes"))
	{
		if (is_set(v, "hostPath")) {
			pathf(path, sizeof path, "%s.volumes[%d].hostPath", pod->spec_path, i);
			wh_psa_violation(
			    pod, "hostPathVolumes", NULL, path, "must not be used (volume \"%s\")",
			    cf_json_string(v, "name") ? cf_json_string(v, "name") : "");
		}
		i++;
	}
}

static void check_host_ports(wh_psa_pod *pod)
{
	char path[160];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		int j = 0;
		const cJSON *p;
		cJSON_ArrayForEach(p, cf_json_array(c->obj, "ports"))
		{
			const cJSON *hp = cf_json_get(p, "hostPort");
			if (cJSON_IsNumber(hp) && hp->valuedouble != 0) {
				pathf(path, sizeof path, "%s.ports[%d].hostPort", c->path, j);
				wh_psa_violation(pod, "hostPorts", c, path,
				                 "must be unset or 0, not %.0f", hp->valuedouble);
			}
			j++;
		}
	}
}

static bool apparmor_type_ok(const cJSON *profile)
{
	const char *t = cf_json_string(profile, "type");
	return t && (!strcmp(t, "RuntimeDefault") || !strcmp(t, "Localhost"));
}

static void check_apparmor(wh_psa_pod *pod)
{
	static const char prefix[] = "container.apparmor.security.beta.kubernetes.io/";
	char path[512];
	const cJSON *kv;
	cJSON_ArrayForEach(kv, cf_json_object(pod->meta, "annotations"))
	{
		if (!kv->string || strncmp(kv->string, prefix, sizeof prefix - 1) != 0)
			continue;
		const char *v = kv->valuestring;
		if (!v[0] || !strcmp(v, "runtime/default") || !strncmp(v, "localhost/", 10))
			continue;
		pathf(path, sizeof path, "%s.annotations[\"%s\"]", pod->meta_path, kv->string);
		wh_psa_violation(pod, "appArmorProfile", NULL, path,
		                 "must be runtime/default or localhost/<profile>, not \"%s\"", v);
	}
	const cJSON *pp = cf_json_object(pod->psc, "appArmorProfile");
	if (pp && !apparmor_type_ok(pp)) {
		pathf(path, sizeof path, "%s.securityContext.appArmorProfile.type", pod->spec_path);
		wh_psa_violation(pod, "appArmorProfile", NULL, path,
		                 "must be RuntimeDefault or Localhost, not \"%s\"",
		                 cf_json_string(pp, "type") ? cf_json_string(pp, "type") : "");
	}
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		const cJSON *cp = cf_json_object(c->sc, "appArmorProfile");
		if (!cp || apparmor_type_ok(cp))
			continue;
		pathf(path, sizeof path, "%s.securityContext.appArmorProfile.type", c->path);
		wh_psa_violation(pod, "appArmorProfile", c, path,
		                 "must be RuntimeDefault or Localhost, not \"%s\"",
		                 cf_json_string(cp, "type") ? cf_json_string(cp, "type") : "");
	}
}

static const char *const selinux_types[] = {
    "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t", NULL,
};

static void selinux_one(wh_psa_pod *pod, const cJSON *opts, const char *base,
                        const wh_psa_container *c)
{
	char path[192];
	if (!opts)
		return;
	const char *t = cf_json_string(opts, "type");
	if (t && !in_list(t, selinux_types)) {
		pathf(path, sizeof path, "%s.securityContext.seLinuxOptions.type", base);
		wh_psa_violation(pod, "seLinuxOptions", c, path,
		                 "must be container_t, container_init_t, container_kvm_t or "
		                 "container_engine_t, not \"%s\"",
		                 t);
	}
	static const char *const ur[] = {"user", "role"};
	for (size_t k = 0; k < 2; k++) {
		const char *v = cf_json_string(opts, ur[k]);
		if (v && v[0]) {
			pathf(path, sizeof path, "%s.securityContext.seLinuxOptions.%s", base,
			      ur[k]);
			wh_psa_violation(pod, "seLinuxOptions", c, path,
			                 "must not be set (is \"%s\")", v);
		}
	}
}

static void check_selinux(wh_psa_pod *pod)
{
	selinux_one(pod, cf_json_object(pod->psc, "seLinuxOptions"), pod->spec_path, NULL);
	for (size_t i = 0; i < pod->n_ctrs; i++)
		selinux_one(pod, cf_json_object(pod->ctrs[i].sc, "seLinuxOptions"),
		            pod->ctrs[i].path, &pod->ctrs[i]);
}

static void proc_mount(wh_psa_pod *pod, const char *check, const char *why)
{
	char path[160];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		const char *pm = cf_json_string(c->sc, "procMount");
		if (!pm || !strcmp(pm, "Default"))
			continue;
		pathf(path, sizeof path, "%s.securityContext.procMount", c->path);
		wh_psa_violation(pod, check, c, path, "must be Default, not \"%s\"%s", pm, why);
	}
}

static void check_seccomp_baseline(wh_psa_pod *pod)
{
	char path[160];
	const char *t = cf_json_string(cf_json_object(pod->psc, "seccompProfile"), "type");
	if (t && !strcmp(t, "Unconfined")) {
		pathf(path, sizeof path, "%s.securityContext.seccompProfile.type", pod->spec_path);
		wh_psa_violation(pod, "seccompProfile_baseline", NULL, path,
		                 "must not be Unconfined");
	}
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		t = cf_json_string(cf_json_object(c->sc, "seccompProfile"), "type");
		if (t && !strcmp(t, "Unconfined")) {
			pathf(path, sizeof path, "%s.securityContext.seccompProfile.type", c->path);
			wh_psa_violation(pod, "seccompProfile_baseline", c, path,
			                 "must not be Unconfined");
		}
	}
}

/* The safe set: namespaced and isolated from other pods (PSA v1.32+). */
static const char *const safe_sysctls[] = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    NULL,
};

static void check_sysctls(wh_psa_pod *pod)
{
	char path[160];
	int i = 0;
	const cJSON *s;
	cJSON_ArrayForEach(s, cf_json_array(pod->psc, "sysctls"))
	{
		const char *name = cf_json_string(s, "name");
		if (!name || !in_list(name, safe_sysctls)) {
			pathf(path, sizeof path, "%s.securityContext.sysctls[%d].name",
			      pod->spec_path, i);
			wh_psa_violation(pod, "sysctls", NULL, path, "\"%s\" is not a safe sysctl",
			                 name ? name : "");
		}
		i++;
	}
}

static void check_windows_host_process(wh_psa_pod *pod)
{
	char path[192];
	if (is_true(cf_json_object(pod->psc, "windowsOptions"), "hostProcess")) {
		pathf(path, sizeof path, "%s.securityContext.windowsOptions.hostProcess",
		      pod->spec_path);
		wh_psa_violation(pod, "windowsHostProcess", NULL, path, "must not be true");
	}
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		if (!is_true(cf_json_object(c->sc, "windowsOptions"), "hostProcess"))
			continue;
		pathf(path, sizeof path, "%s.securityContext.windowsOptions.hostProcess", c->path);
		wh_psa_violation(pod, "windowsHostProcess", c, path, "must not be true");
	}
}

static void check_host_probes(wh_psa_pod *pod)
{
	static const char *const probes[] = {"livenessProbe", "readinessProbe", "startupProbe"};
	static const char *const hooks[] = {"postStart", "preStop"};
	static const char *const handlers[] = {"httpGet", "tcpSocket"};
	char path[224];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		for (size_t p = 0; p < 5; p++) {
			const cJSON *h = p < 3 ? cf_json_object(c->obj, probes[p])
			                       : cf_json_object(cf_json_object(c->obj, "lifecycle"),
			                                        hooks[p - 3]);
			for (size_t k = 0; k < 2 && h; k++) {
				const char *host =
				    cf_json_string(cf_json_object(h, handlers[k]), "host");
				if (!host || !host[0])
					continue;
				if (p < 3)
					pathf(path, sizeof path, "%s.%s.%s.host", c->path,
					      probes[p], handlers[k]);
				else
					pathf(path, sizeof path, "%s.lifecycle.%s.%s.host", c->path,
					      hooks[p - 3], handlers[k]);
				wh_psa_violation(pod, "hostProbesAndHostLifecycle", c, path,
				                 "must not be set (is \"%s\")", host);
			}
		}
	}
}

void wh_psa_baseline(wh_psa_pod *pod, const wh_psa_caps *extra)
{
	check_host_namespaces(pod);
	check_privileged(pod);
	check_capabilities_baseline(pod, extra);
	check_host_path_volumes(pod);
	check_host_ports(pod);
	check_apparmor(pod);
	check_selinux(pod);
	/* v1.35: a pod in its own user namespace may use an unmasked /proc. */
	if (!pod->host_users_false)
		proc_mount(pod, "procMount", " (unless spec.hostUsers is false)");
	check_seccomp_baseline(pod);
	check_sysctls(pod);
	check_windows_host_process(pod);
	check_host_probes(pod);
}

/* ---------------------------------------------------------------------- */
/* Restricted                                                              */
/* ---------------------------------------------------------------------- */

static const char *const restricted_volume_sources[] = {
    "configMap", "csi",    "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim",
    "projected", "secret", NULL,
};

static void check_restricted_volumes(wh_psa_pod *pod)
{
	char path[192];
	int i = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, cf_json_array(pod->spec, "volumes"))
	{
		const cJSON *kv;
		cJSON_ArrayForEach(kv, v)
		{
			if (!kv->string || !strcmp(kv->string, "name") || cJSON_IsNull(kv) ||
			    in_list(kv->string, restricted_volume_sources))
				continue;
			pathf(path, sizeof path, "%s.volumes[%d].%s", pod->spec_path, i,
			      kv->string);
			wh_psa_violation(
			    pod, "restrictedVolumes", NULL, path,
			    "must not be used (volume \"%s\" has a type restricted does not allow)",
			    cf_json_string(v, "name") ? cf_json_string(v, "name") : "");
		}
		i++;
	}
}

static void check_allow_privilege_escalation(wh_psa_pod *pod)
{
	char path[160];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		if (is_false(c->sc, "allowPrivilegeEscalation"))
			continue;
		pathf(path, sizeof path, "%s.securityContext.allowPrivilegeEscalation", c->path);
		wh_psa_violation(pod, "allowPrivilegeEscalation", c, path, "must be false");
	}
}

static void check_run_as_non_root(wh_psa_pod *pod)
{
	char path[160];
	bool pod_true = is_true(pod->psc, "runAsNonRoot");
	if (is_false(pod->psc, "runAsNonRoot")) {
		pathf(path, sizeof path, "%s.securityContext.runAsNonRoot", pod->spec_path);
		wh_psa_violation(pod, "runAsNonRoot", NULL, path, "must not be false");
	}
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		/* The container's own setting wins; unset inherits the pod's. */
		bool own = is_set(c->sc, "runAsNonRoot");
		if (own ? !is_false(c->sc, "runAsNonRoot") : pod_true)
			continue;
		pathf(path, sizeof path, "%s.securityContext.runAsNonRoot", c->path);
		if (own) {
			wh_psa_violation(pod, "runAsNonRoot", c, path, "must not be false");
		} else {
			wh_psa_violation(pod, "runAsNonRoot", c, path,
			                 "must be true (here or in %s.securityContext)",
			                 pod->spec_path);
		}
	}
}

static bool is_zero_number(const cJSON *obj, const char *key)
{
	const cJSON *v = cf_json_get(obj, key);
	return cJSON_IsNumber(v) && v->valuedouble == 0;
}

static void check_run_as_user(wh_psa_pod *pod)
{
	char path[160];
	if (is_zero_number(pod->psc, "runAsUser")) {
		pathf(path, sizeof path, "%s.securityContext.runAsUser", pod->spec_path);
		wh_psa_violation(pod, "runAsUser", NULL, path, "must not be 0");
	}
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		if (!is_zero_number(c->sc, "runAsUser"))
			continue;
		pathf(path, sizeof path, "%s.securityContext.runAsUser", c->path);
		wh_psa_violation(pod, "runAsUser", c, path, "must not be 0");
	}
}

static bool seccomp_type_ok(const cJSON *profile)
{
	const char *t = cf_json_string(profile, "type");
	return t && (!strcmp(t, "RuntimeDefault") || !strcmp(t, "Localhost"));
}

static void check_seccomp_restricted(wh_psa_pod *pod)
{
	char path[160];
	const cJSON *pp = cf_json_object(pod->psc, "seccompProfile");
	bool pod_ok = pp && seccomp_type_ok(pp);
	if (pp && !pod_ok) {
		pathf(path, sizeof path, "%s.securityContext.seccompProfile.type", pod->spec_path);
		wh_psa_violation(pod, "seccompProfile_restricted", NULL, path,
		                 "must be RuntimeDefault or Localhost, not \"%s\"",
		                 cf_json_string(pp, "type") ? cf_json_string(pp, "type") : "");
	}
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		const cJSON *cp = cf_json_object(c->sc, "seccompProfile");
		if (cp ? seccomp_type_ok(cp) : pod_ok)
			continue;
		pathf(path, sizeof path, "%s.securityContext.seccompProfile.type", c->path);
		if (cp)
			wh_psa_violation(pod, "seccompProfile_restricted", c, path,
			                 "must be RuntimeDefault or Localhost, not \"%s\"",
			                 cf_json_string(cp, "type") ? cf_json_string(cp, "type")
			                                            : "");
		else
			wh_psa_violation(pod, "seccompProfile_restricted", c, path,
			                 "must be RuntimeDefault or Localhost (here or in "
			                 "%s.securityContext)",
			                 pod->spec_path);
	}
}

static void check_capabilities_restricted(wh_psa_pod *pod, const wh_psa_caps *extra)
{
	char path[192];
	for (size_t i = 0; i < pod->n_ctrs; i++) {
		const wh_psa_container *c = &pod->ctrs[i];
		const cJSON *caps = cf_json_object(c->sc, "capabilities");
		bool dropped_all = false;
		const cJSON *d;
		cJSON_ArrayForEach(d, cf_json_array(caps, "drop"))
		{
			/* Exactly "ALL": the runtime ignores "all" or "CAP_ALL". */
			if (!strcmp(d->valuestring, "ALL"))
				dropped_all = true;
		}
		if (!dropped_all) {
			pathf(path, sizeof path, "%s.securityContext.capabilities.drop", c->path);
			wh_psa_violation(pod, "capabilities_restricted", c, path,
			                 "must include \"ALL\"");
		}
		int j = 0;
		const cJSON *a;
		cJSON_ArrayForEach(a, cf_json_array(caps, "add"))
		{
			const char *name = a->valuestring;
			if (strcmp(name, "NET_BIND_SERVICE") != 0 && !in_extra(name, extra)) {
				pathf(path, sizeof path, "%s.securityContext.capabilities.add[%d]",
				      c->path, j);
				wh_psa_violation(pod, "capabilities_restricted", c, path,
				                 "must not add \"%s\" (only NET_BIND_SERVICE)",
				                 name);
			}
			j++;
		}
	}
}

void wh_psa_restricted(wh_psa_pod *pod, const wh_psa_caps *extra)
{
	check_restricted_volumes(pod);
	/* Linux-only fields: the API rejects them on Windows pods, so PSA
	 * exempts those pods (policy v1.25+). */
	if (!pod->windows)
		check_allow_privilege_escalation(pod);
	/* v1.35: a pod in its own user namespace is not root on the node. */
	if (!pod->host_users_false) {
		check_run_as_non_root(pod);
		check_run_as_user(pod);
	}
	if (!pod->windows) {
		check_seccomp_restricted(pod);
		check_capabilities_restricted(pod, extra);
	}
	proc_mount(pod, "procMount_restricted", "");
}

const cJSON *wh_psa_effective_seccomp(const wh_psa_pod *pod, const wh_psa_container *c)
{
	const cJSON *cp = cf_json_object(c->sc, "seccompProfile");
	return cp ? cp : cf_json_object(pod->psc, "seccompProfile");
}
