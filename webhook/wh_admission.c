/* wh_admission.c - see wh_admission.h. */
#include "wh_admission.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_jarena.h"
#include "cf_jparse.h"
#include "cf_json.h"
#include "cf_limits.h"

const char *wh_decision_name(wh_decision d)
{
	switch (d) {
	case WH_DECISION_SKIP:
		return "skip";
	case WH_DECISION_ALLOW:
		return "allow";
	case WH_DECISION_DENY:
		return "deny";
	case WH_DECISION_WARN:
		return "warn";
	case WH_DECISION_AUDIT:
		return "audit";
	}
	return "unknown";
}

static const char *get_str(const cJSON *obj, const char *key)
{
	const cJSON *it = cf_json_get(obj, key);
	return cJSON_IsString(it) && it->valuestring ? it->valuestring : NULL;
}

static const cJSON *get_obj(const cJSON *obj, const char *key)
{
	const cJSON *it = cf_json_get(obj, key);
	return cJSON_IsObject(it) ? it : NULL;
}

/* A required string field: present, a string, bounded. */
static int need_str(const cJSON *obj, const char *key, const char *path, size_t max,
                    const char **out, char *err, size_t errlen)
{
	const cJSON *it = cf_json_get(obj, key);
	if (!it || cJSON_IsNull(it)) {
		snprintf(err, errlen, "%s is missing", path);
		return -EINVAL;
	}
	if (!cJSON_IsString(it) || !it->valuestring) {
		snprintf(err, errlen, "%s must be a string", path);
		return -EINVAL;
	}
	size_t n = strlen(it->valuestring);
	if (n == 0) {
		snprintf(err, errlen, "%s is empty", path);
		return -EINVAL;
	}
	if (n > max) {
		snprintf(err, errlen, "%s is longer than %zu bytes", path, max);
		return -EINVAL;
	}
	*out = it->valuestring;
	return 0;
}

int wh_admission_parse(const char *body, size_t len, wh_admission_request *out, char *err,
                       size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (len == 0) {
		snprintf(err, errlen, "empty body: expected an AdmissionReview");
		return -EINVAL;
	}
	/* cJSON stops at a NUL; a body with one inside would be read short
	 * and the rest ignored, so it is refused outright. */
	if (memchr(body, '\0', len)) {
		snprintf(err, errlen, "body is not JSON: it contains a NUL byte");
		return -EINVAL;
	}
	char jerr[160];
	cf_jarena_begin();
	cJSON *root = cf_jparse(body, len, NULL, jerr, sizeof jerr);
	bool arena_whole;
	bool in_arena = cf_jarena_end(root != NULL, &arena_whole);
	if (!root) {
		snprintf(err, errlen, "body is not JSON: %s", jerr);
		return -EINVAL;
	}
	if (!cJSON_IsObject(root)) {
		snprintf(err, errlen, "body is not a JSON object: expected an AdmissionReview");
		goto fail;
	}
	const char *api = get_str(root, "apiVersion"), *kind = get_str(root, "kind");
	if (!api || strcmp(api, WH_ADMISSION_API_VERSION) != 0) {
		snprintf(err, errlen, "apiVersion must be \"%s\", got %s%.64s%s",
		         WH_ADMISSION_API_VERSION, api ? "\"" : "", api ? api : "none",
		         api ? "\"" : "");
		goto fail;
	}
	if (!kind || strcmp(kind, "AdmissionReview") != 0) {
		snprintf(err, errlen, "kind must be \"AdmissionReview\", got %s%.64s%s",
		         kind ? "\"" : "", kind ? kind : "none", kind ? "\"" : "");
		goto fail;
	}
	const cJSON *req = get_obj(root, "request");
	if (!req) {
		snprintf(err, errlen, "request is missing or not an object");
		goto fail;
	}
	if (need_str(req, "uid", "request.uid", CF_MAX_ADMISSION_UID_BYTES, &out->uid, err, errlen))
		goto fail;
	/* The uid is echoed into the response and the log: printable ASCII
	 * only (API server uids are UUIDs). */
	for (const char *p = out->uid; *p; p++) {
		if (*p < 0x20 || *p > 0x7e) {
			snprintf(err, errlen, "request.uid contains a non-printable byte");
			goto fail;
		}
	}
	if (need_str(req, "operation", "request.operation", 32, &out->operation, err, errlen))
		goto fail;
	const cJSON *gvk = get_obj(req, "kind");
	if (!gvk) {
		snprintf(err, errlen, "request.kind is missing or not an object");
		goto fail;
	}
	if (need_str(gvk, "kind", "request.kind.kind", 253, &out->kind, err, errlen))
		goto fail;
	const cJSON *res = get_obj(req, "resource");
	out->resource = res && get_str(res, "resource") ? get_str(res, "resource") : "";
	out->subresource = get_str(req, "subResource") ? get_str(req, "subResource") : "";
	out->namespace_ = get_str(req, "namespace") ? get_str(req, "namespace") : "";
	const cJSON *ui = get_obj(req, "userInfo");
	out->username = ui && get_str(ui, "username") ? get_str(ui, "username") : "";
	out->dry_run = cJSON_IsTrue(cf_json_get(req, "dryRun"));
	out->object = get_obj(req, "object");
	out->old_object = get_obj(req, "oldObject");
	out->name = get_str(req, "name");
	if (!out->name || !*out->name) {
		const cJSON *md = out->object ? get_obj(out->object, "metadata") : NULL;
		const char *n = md ? get_str(md, "name") : NULL;
		if (!n || !*n)
			n = md ? get_str(md, "generateName") : NULL;
		out->name = n ? n : "";
	}
	out->root = root;
	out->in_arena = in_arena;
	out->arena_whole = in_arena && arena_whole;
	return 0;
fail:
	cJSON_Delete(root);
	if (in_arena)
		cf_jarena_release();
	memset(out, 0, sizeof *out);
	return -EINVAL;
}

void wh_admission_request_free(wh_admission_request *req)
{
	if (!req)
		return;
	/* A tree wholly in the arena holds no malloc'd memory: walking it to
	 * free nothing would cost as much as a tenth of the parse. */
	if (!req->arena_whole)
		cJSON_Delete(req->root);
	if (req->in_arena)
		cf_jarena_release();
	memset(req, 0, sizeof *req);
}

/* The API group each evaluated kind lives in: a CRD that reuses a kind
 * name in another group is not a pod controller. */
static const char *workload_group(const char *kind)
{
	static const struct {
		const char *kind, *group;
	} kinds[] = {
	    {"Pod", ""},
	    {"PodTemplate", ""},
	    {"ReplicationController", ""},
	    {"Deployment", "apps"},
	    {"ReplicaSet", "apps"},
	    {"StatefulSet", "apps"},
	    {"DaemonSet", "apps"},
	    {"Job", "batch"},
	    {"CronJob", "batch"},
	};
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].kind, kind) == 0)
			return kinds[i].group;
	return NULL;
}

static bool same_item(const cJSON *a, const cJSON *b)
{
	if (!a || !b)
		return a == b;
	return cJSON_Compare(a, b, true);
}

/* A Pod UPDATE matters when any container list changed (images are part
 * of the containers); other spec fields are immutable or not ours. */
static bool pod_containers_changed(const cJSON *obj, const cJSON *old)
{
	static const char *const lists[] = {"initContainers", "containers", "ephemeralContainers"};
	const cJSON *s1 = get_obj(obj, "spec"), *s2 = get_obj(old, "spec");
	for (size_t i = 0; i < 3; i++) {
		const cJSON *a = s1 ? cf_json_get(s1, lists[i]) : NULL;
		const cJSON *b = s2 ? cf_json_get(s2, lists[i]) : NULL;
		if (!same_item(a, b))
			return true;
	}
	return false;
}

/* A controller UPDATE matters when its pod template (metadata or spec)
 * changed; a scale or status-only change does not. */
static bool template_changed(const cJSON *obj, const cJSON *old)
{
	const cJSON *md1 = NULL, *md2 = NULL;
	const char *p1 = NULL, *p2 = NULL;
	const cJSON *s1 = wh_policy_find_pod_spec(obj, &md1, &p1);
	const cJSON *s2 = wh_policy_find_pod_spec(old, &md2, &p2);
	return !same_item(s1, s2) || !same_item(md1, md2);
}

static int add_invalid(wh_result *r, const char *msg)
{
	if (r->n_violations == r->cap_violations) {
		size_t cap = r->cap_violations ? r->cap_violations * 2 : 4;
		wh_violation *v = realloc(r->violations, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		r->violations = v;
		r->cap_violations = cap;
	}
	wh_violation *v = &r->violations[r->n_violations];
	memset(v, 0, sizeof *v);
	cf_buf b;
	cf_buf_init(&b, 0);
	v->check = strdup("invalid");
	v->path = strdup("request.object");
	if (cf_buf_appendf(&b, "object cannot be evaluated: %s [invalid]", msg) == 0)
		v->message = cf_buf_steal(&b);
	cf_buf_free(&b);
	if (!v->check || !v->path || !v->message) {
		free(v->check);
		free(v->path);
		free(v->message);
		return -ENOMEM;
	}
	r->n_violations++;
	return 0;
}

static int skip(wh_admission_decision *out, const char *why)
{
	out->decision = WH_DECISION_SKIP;
	out->skip_reason = why;
	return 0;
}

int wh_admission_decide(const wh_config *cfg, const wh_admission_request *req,
                        const wh_netpol_set *netpols, wh_admission_decision *out)
{
	memset(out, 0, sizeof *out);
	wh_result_init(&out->result);
	out->mode = cfg->mode;
	out->profile = cfg->profile;

	bool create = strcmp(req->operation, "CREATE") == 0;
	bool update = strcmp(req->operation, "UPDATE") == 0;
	if (!create && !update)
		return skip(out, "operation not evaluated");

	const char *group_want = workload_group(req->kind);
	if (!group_want)
		return skip(out, "kind not evaluated");
	const cJSON *gvk = cf_json_get(cf_json_get(req->root, "request"), "kind");
	const char *group = get_str(gvk, "group");
	if (strcmp(group ? group : "", group_want) != 0)
		return skip(out, "kind not evaluated (other API group)");

	bool is_pod = strcmp(req->kind, "Pod") == 0;
	if (req->subresource[0]) {
		bool pod_sub = is_pod && strcmp(req->resource, "pods") == 0 &&
		               (strcmp(req->subresource, "ephemeralcontainers") == 0 ||
		                strcmp(req->subresource, "resize") == 0);
		if (!pod_sub)
			return skip(out, "subresource not evaluated");
	} else if (update && req->object && req->old_object) {
		if (is_pod && !pod_containers_changed(req->object, req->old_object))
			return skip(out, "update does not change containers");
		if (!is_pod && !template_changed(req->object, req->old_object))
			return skip(out, "update does not change the pod template");
	}

	if (wh_config_user_exempt(cfg, req->username))
		return skip(out, "user exempt");

	const cJSON *md = NULL;
	const char *path = NULL;
	const cJSON *spec = req->object ? wh_policy_find_pod_spec(req->object, &md, &path) : NULL;
	const cJSON *labels = md ? cf_json_get(md, "labels") : NULL;
	if (!cJSON_IsObject(labels))
		labels = NULL;
	if (!wh_config_selects(cfg, req->namespace_, labels))
		return skip(out, "not selected as a worker");

	int rc;
	if (!req->object) {
		rc = add_invalid(&out->result, "request.object is missing");
	} else if (!spec) {
		rc = add_invalid(&out->result, "no pod template found in the object");
	} else {
		char err[512] = "";
		const char *ns = req->namespace_[0] ? req->namespace_ : NULL;
		rc = wh_policy_evaluate(&cfg->policy, cfg->profile, req->object, ns, netpols,
		                        &out->result, err, sizeof err);
		if (rc == -EINVAL)
			rc = add_invalid(&out->result, err[0] ? err : "malformed object");
	}
	if (rc)
		return rc;
	if (out->result.n_violations == 0)
		out->decision = WH_DECISION_ALLOW;
	else if (cfg->mode == WH_MODE_WARN)
		out->decision = WH_DECISION_WARN;
	else if (cfg->mode == WH_MODE_AUDIT)
		out->decision = WH_DECISION_AUDIT;
	else
		out->decision = WH_DECISION_DENY;
	return 0;
}

void wh_admission_decision_free(wh_admission_decision *d)
{
	if (!d)
		return;
	wh_result_free(&d->result);
	memset(d, 0, sizeof *d);
}

cJSON *wh_admission_check_ids(const wh_admission_decision *d)
{
	cJSON *arr = cJSON_CreateArray();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < d->result.n_violations; i++) {
		const char *c = d->result.violations[i].check;
		if (!c)
			continue;
		bool seen = false;
		const cJSON *it;
		cJSON_ArrayForEach(it, arr) if (strcmp(it->valuestring, c) == 0) seen = true;
		if (!seen && !cJSON_AddItemToArray(arr, cJSON_CreateString(c))) {
			cJSON_Delete(arr);
			return NULL;
		}
	}
	return arr;
}

/* Bytes of `s` that fit in `max` without splitting a UTF-8 sequence. */
static size_t utf8_fit(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

/* One warning of at most CF_MAX_WARNING_CHARS bytes. A long message keeps
 * its trailing " [check-id]" and loses the middle, so the reader still
 * sees which check fired. */
static int short_line(cf_buf *out, const char *msg)
{
	size_t len = strlen(msg), max = CF_MAX_WARNING_CHARS;
	if (len <= max)
		return cf_buf_append(out, msg, len);
	const char *tag = strrchr(msg, '[');
	size_t tag_len = tag && tag > msg && tag[-1] == ' ' ? strlen(tag - 1) : 0;
	if (tag_len > max / 2)
		tag_len = 0;
	size_t head = utf8_fit(msg, len, max - 3 - tag_len);
	int rc = cf_buf_append(out, msg, head);
	if (!rc)
		rc = cf_buf_append(out, "...", 3);
	if (!rc && tag_len)
		rc = cf_buf_append(out, msg + len - tag_len, tag_len);
	return rc;
}

/* Adds warning lines while the total stays within
 * CF_MAX_WARNINGS_TOTAL_BYTES, keeping room for a final "N more" line. */
typedef struct warn_acc {
	cJSON *arr;
	size_t total, dropped;
} warn_acc;

#define WARN_RESERVE 64u

static int warn_add(warn_acc *w, const char *msg)
{
	cf_buf b;
	cf_buf_init(&b, 0);
	int rc = short_line(&b, msg);
	if (rc)
		goto out;
	if (w->total + b.len + WARN_RESERVE > CF_MAX_WARNINGS_TOTAL_BYTES) {
		w->dropped++;
		goto out;
	}
	cJSON *s = cJSON_CreateString(b.data ? b.data : "");
	if (!s || !cJSON_AddItemToArray(w->arr, s)) {
		cJSON_Delete(s);
		rc = -ENOMEM;
		goto out;
	}
	w->total += b.len;
out:
	cf_buf_free(&b);
	return rc;
}

static int warn_finish(warn_acc *w)
{
	if (!w->dropped)
		return 0;
	char line[WARN_RESERVE];
	snprintf(line, sizeof line, "... and %zu more findings not shown", w->dropped);
	cJSON *s = cJSON_CreateString(line);
	if (!s || !cJSON_AddItemToArray(w->arr, s)) {
		cJSON_Delete(s);
		return -ENOMEM;
	}
	return 0;
}

/* "v1; v2; ..." bounded by `limit`, ending "... and N more" when cut. */
static int join_messages(cf_buf *out, const wh_result *r, size_t limit)
{
	for (size_t i = 0; i < r->n_violations; i++) {
		const char *m = r->violations[i].message ? r->violations[i].message : "";
		size_t need = strlen(m) + 2;
		if (out->len + need + 40 > limit) {
			return cf_buf_appendf(out, "%s... and %zu more", i ? "; " : "",
			                      r->n_violations - i);
		}
		int rc = cf_buf_appendf(out, "%s%s", i ? "; " : "", m);
		if (rc)
			return rc;
	}
	return 0;
}

static int build_response(const wh_admission_request *req, const wh_admission_decision *d,
                          cJSON *resp)
{
	bool allowed = d->decision != WH_DECISION_DENY;
	if (!cJSON_AddStringToObject(resp, "uid", req->uid) ||
	    !cJSON_AddBoolToObject(resp, "allowed", allowed))
		return -ENOMEM;
	int rc = 0;
	cf_buf b;
	cf_buf_init(&b, 0);
	if (d->decision == WH_DECISION_DENY) {
		cJSON *st = cJSON_AddObjectToObject(resp, "status");
		rc = cf_buf_appendf(
		    &b, "%s %s%s%s violates the %s profile (%zu finding%s): ", req->kind,
		    req->namespace_, req->namespace_[0] ? "/" : "",
		    req->name[0] ? req->name : "(unnamed)", wh_profile_name(d->profile),
		    d->result.n_violations, d->result.n_violations == 1 ? "" : "s");
		if (!rc)
			rc = join_messages(&b, &d->result, CF_MAX_DENY_MESSAGE_BYTES);
		if (rc || !st || !cJSON_AddNumberToObject(st, "code", 403) ||
		    !cJSON_AddStringToObject(st, "reason", "Forbidden") ||
		    !cJSON_AddStringToObject(st, "message", b.data ? b.data : ""))
			goto nomem;
	}
	if (d->decision == WH_DECISION_AUDIT) {
		cJSON *ann = cJSON_AddObjectToObject(resp, "auditAnnotations");
		cJSON *ids = wh_admission_check_ids(d);
		char *joined = NULL;
		cf_buf ck;
		cf_buf_init(&ck, CF_MAX_AUDIT_ANNOTATION_BYTES);
		const cJSON *it;
		cJSON_ArrayForEach(it, ids)
		{
			if (cf_buf_appendf(&ck, "%s%s", ck.len ? "," : "", it->valuestring))
				break;
		}
		cf_buf_reset(&b);
		rc = join_messages(&b, &d->result, CF_MAX_AUDIT_ANNOTATION_BYTES);
		joined = cf_buf_steal(&ck);
		bool ok = !rc && ann && ids && joined &&
		          cJSON_AddStringToObject(ann, "violations", b.data ? b.data : "") &&
		          cJSON_AddStringToObject(ann, "checks", joined) &&
		          cJSON_AddStringToObject(ann, "profile", wh_profile_name(d->profile));
		cJSON_Delete(ids);
		free(joined);
		cf_buf_free(&ck);
		if (!ok)
			goto nomem;
	}
	if (d->decision != WH_DECISION_SKIP) {
		warn_acc w = {.arr = cJSON_CreateArray()};
		if (!w.arr)
			goto nomem;
		if (d->decision == WH_DECISION_WARN)
			for (size_t i = 0; !rc && i < d->result.n_violations; i++)
				rc = warn_add(&w, d->result.violations[i].message
				                      ? d->result.violations[i].message
				                      : "");
		for (size_t i = 0; !rc && i < d->result.n_warnings; i++)
			rc = warn_add(&w, d->result.warnings[i] ? d->result.warnings[i] : "");
		if (!rc)
			rc = warn_finish(&w);
		if (rc || cJSON_GetArraySize(w.arr) == 0) {
			cJSON_Delete(w.arr);
			if (rc)
				goto nomem;
		} else if (!cJSON_AddItemToObject(resp, "warnings", w.arr)) {
			cJSON_Delete(w.arr);
			goto nomem;
		}
	}
	cf_buf_free(&b);
	return 0;
nomem:
	cf_buf_free(&b);
	return -ENOMEM;
}

/* The common answer - admitted, nothing to add - written out directly:
 * building and printing a cJSON tree for it cost more instructions than
 * judging the pod. The same bytes cJSON prints (tested). */
static char *plain_admit(const char *uid, size_t *len)
{
	static const char head[] = "{\"apiVersion\":\"" WH_ADMISSION_API_VERSION
	                           "\",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":";
	static const char tail[] = ",\"allowed\":true}}";
	cf_buf b;
	cf_buf_init(&b, 0);
	if (cf_buf_append(&b, head, sizeof head - 1) || cf_json_append_quoted(&b, uid) ||
	    cf_buf_append(&b, tail, sizeof tail - 1)) {
		cf_buf_free(&b);
		return NULL;
	}
	if (len)
		*len = b.len;
	return cf_buf_steal(&b);
}

char *wh_admission_response(const wh_admission_request *req, const wh_admission_decision *d,
                            size_t *len)
{
	if (d->decision == WH_DECISION_SKIP ||
	    (d->decision == WH_DECISION_ALLOW && d->result.n_warnings == 0))
		return plain_admit(req->uid, len);
	char *text = NULL;
	cJSON *root = cJSON_CreateObject();
	if (!root || !cJSON_AddStringToObject(root, "apiVersion", WH_ADMISSION_API_VERSION) ||
	    !cJSON_AddStringToObject(root, "kind", "AdmissionReview"))
		goto out;
	cJSON *resp = cJSON_AddObjectToObject(root, "response");
	if (!resp || build_response(req, d, resp))
		goto out;
	text = cJSON_PrintUnformatted(root);
	if (text && len)
		*len = strlen(text);
out:
	cJSON_Delete(root);
	return text;
}
