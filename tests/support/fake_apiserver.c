/* fake_apiserver.c - see fake_apiserver.h. One mutex guards the store, the
 * event log, faults and stats; watch streams run in MHD's per-connection
 * threads and wait on a condition variable for new events. */
#include "fake_apiserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "cf_buf.h"

typedef struct fobj {
	char *collection, *ns, *name;
	cJSON *json; /* full object, kind/apiVersion included */
} fobj;

typedef struct fevent {
	char *collection, *ns;
	char type[16];
	char *object_json; /* serialized object at the time of the event */
	long rv;
} fevent;

#define MAX_FAULTS 64

struct fake_apiserver {
	struct MHD_Daemon *d;
	char url[64];
	unsigned short port;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *token;
	fobj *objs;
	size_t n_objs, cap_objs;
	fevent *events;
	size_t n_events, cap_events;
	long rv, compacted_rv;
	unsigned end_gen;
	bool stopping;
	fake_fault faults[MAX_FAULTS];
	size_t n_faults;
	fake_apiserver_stats stats;
	char *cert, *key, *trust;
	unsigned long uid_counter;
	int down_status;     /* every request answered with this status (0: off) */
	char down_path[256]; /* ... when its URL contains this ("" = all) */
};

/* ---- store helpers (lock held) ---------------------------------------- */

static const char *resource_of(const char *collection)
{
	const char *s = strrchr(collection, '/');
	return s ? s + 1 : collection;
}

/* The list kind: the singular kind + "List". */
static void list_kind(const char *collection, char *out, size_t outlen)
{
	static const char *const map[][2] = {
	    {"networkpolicies", "NetworkPolicy"},
	    {"secrets", "Secret"},
	    {"validatingwebhookconfigurations", "ValidatingWebhookConfiguration"},
	    {"mutatingwebhookconfigurations", "MutatingWebhookConfiguration"},
	    {"pods", "Pod"},
	    {"nodes", "Node"},
	    {"namespaces", "Namespace"},
	    {"configmaps", "ConfigMap"},
	    {"services", "Service"},
	};
	const char *r = resource_of(collection);
	for (size_t i = 0; i < sizeof map / sizeof *map; i++)
		if (!strcmp(map[i][0], r)) {
			snprintf(out, outlen, "%sList", map[i][1]);
			return;
		}
	snprintf(out, outlen, "%c%sList", r[0] >= 'a' && r[0] <= 'z' ? r[0] - 32 : r[0], r + 1);
}

static void api_version_of(const char *collection, char *out, size_t outlen)
{
	if (!strncmp(collection, "/api/", 5)) {
		const char *v = collection + 5;
		const char *e = strchr(v, '/');
		snprintf(out, outlen, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
		return;
	}
	const char *g = collection + 6; /* "/apis/" */
	const char *e = strrchr(g, '/');
	snprintf(out, outlen, "%.*s", (int)(e ? e - g : (long)strlen(g)), g);
}

static fobj *find_obj(fake_apiserver *fs, const char *collection, const char *ns, const char *name)
{
	for (size_t i = 0; i < fs->n_objs; i++) {
		fobj *o = &fs->objs[i];
		if (!strcmp(o->collection, collection) && !strcmp(o->ns, ns) &&
		    !strcmp(o->name, name))
			return o;
	}
	return NULL;
}

static int record_event(fake_apiserver *fs, const char *collection, const char *ns,
                        const char *type, const cJSON *obj)
{
	if (fs->n_events == fs->cap_events) {
		size_t cap = fs->cap_events ? fs->cap_events * 2 : 64;
		fevent *e = realloc(fs->events, cap * sizeof *e);
		if (!e)
			return -ENOMEM;
		fs->events = e;
		fs->cap_events = cap;
	}
	fevent *e = &fs->events[fs->n_events];
	memset(e, 0, sizeof *e);
	e->collection = strdup(collection);
	e->ns = strdup(ns);
	snprintf(e->type, sizeof e->type, "%s", type);
	e->rv = fs->rv;
	if (obj) {
		e->object_json = cJSON_PrintUnformatted(obj);
	} else {
		/* BOOKMARK: only kind, apiVersion and metadata.resourceVersion. */
		char kind[128], apiv[128];
		list_kind(collection, kind, sizeof kind);
		kind[strlen(kind) - 4] = '\0';
		api_version_of(collection, apiv, sizeof apiv);
		cJSON *b = cJSON_CreateObject();
		cJSON_AddStringToObject(b, "kind", kind);
		cJSON_AddStringToObject(b, "apiVersion", apiv);
		cJSON *md = cJSON_AddObjectToObject(b, "metadata");
		char rv[32];
		snprintf(rv, sizeof rv, "%ld", fs->rv);
		cJSON_AddStringToObject(md, "resourceVersion", rv);
		e->object_json = cJSON_PrintUnformatted(b);
		cJSON_Delete(b);
	}
	if (!e->collection || !e->ns || !e->object_json) {
		free(e->collection);
		free(e->ns);
		free(e->object_json);
		return -ENOMEM;
	}
	fs->n_events++;
	pthread_cond_broadcast(&fs->cond);
	return 0;
}

static void set_string(cJSON *obj, const char *key, const char *value)
{
	cJSON *v = cJSON_CreateString(value);
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, v);
	else
		cJSON_AddItemToObject(obj, key, v);
}

/* Stores `obj` (taken over) as namespace/name, bumping the resourceVersion.
 * Returns the new rv or -errno. */
static long store_obj(fake_apiserver *fs, const char *collection, const char *ns, const char *name,
                      cJSON *obj)
{
	cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	if (!cJSON_IsObject(md)) {
		cJSON_Delete(obj);
		return -EINVAL;
	}
	fs->rv++;
	char rv[32];
	snprintf(rv, sizeof rv, "%ld", fs->rv);
	set_string(md, "resourceVersion", rv);
	if (ns[0])
		set_string(md, "namespace", ns);
	fobj *o = find_obj(fs, collection, ns, name);
	const char *type = "MODIFIED";
	if (o) {
		const cJSON *uid = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(o->json, "metadata"), "uid");
		if (cJSON_IsString(uid) && !cJSON_GetObjectItemCaseSensitive(md, "uid"))
			set_string(md, "uid", uid->valuestring);
		cJSON_Delete(o->json);
		o->json = obj;
	} else {
		type = "ADDED";
		if (!cJSON_GetObjectItemCaseSensitive(md, "uid")) {
			char uid[64];
			snprintf(uid, sizeof uid, "00000000-0000-4000-8000-%012lu",
			         ++fs->uid_counter);
			set_string(md, "uid", uid);
		}
		if (fs->n_objs == fs->cap_objs) {
			size_t cap = fs->cap_objs ? fs->cap_objs * 2 : 64;
			fobj *n = realloc(fs->objs, cap * sizeof *n);
			if (!n) {
				cJSON_Delete(obj);
				return -ENOMEM;
			}
			fs->objs = n;
			fs->cap_objs = cap;
		}
		o = &fs->objs[fs->n_objs];
		o->collection = strdup(collection);
		o->ns = strdup(ns);
		o->name = strdup(name);
		o->json = obj;
		if (!o->collection || !o->ns || !o->name) {
			free(o->collection);
			free(o->ns);
			free(o->name);
			cJSON_Delete(obj);
			return -ENOMEM;
		}
		fs->n_objs++;
	}
	int rc = record_event(fs, collection, ns, type, o->json);
	return rc ? rc : fs->rv;
}

static long delete_obj(fake_apiserver *fs, const char *collection, const char *ns, const char *name)
{
	fobj *o = find_obj(fs, collection, ns, name);
	if (!o)
		return -ENOENT;
	fs->rv++;
	char rv[32];
	snprintf(rv, sizeof rv, "%ld", fs->rv);
	cJSON *md = cJSON_GetObjectItemCaseSensitive(o->json, "metadata");
	if (md)
		set_string(md, "resourceVersion", rv);
	int rc = record_event(fs, collection, ns, "DELETED", o->json);
	cJSON_Delete(o->json);
	free(o->collection);
	free(o->ns);
	free(o->name);
	*o = fs->objs[--fs->n_objs];
	return rc ? rc : fs->rv;
}

static bool take_fault(fake_apiserver *fs, fake_fault f)
{
	for (size_t i = 0; i < fs->n_faults; i++)
		if (fs->faults[i] == f) {
			memmove(&fs->faults[i], &fs->faults[i + 1],
			        (fs->n_faults - i - 1) * sizeof *fs->faults);
			fs->n_faults--;
			return true;
		}
	return false;
}

static int cmp_obj(const void *a, const void *b)
{
	const fobj *x = *(const fobj *const *)a, *y = *(const fobj *const *)b;
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

/* ---- HTTP plumbing ---------------------------------------------------- */

typedef struct req {
	cf_buf body;
} req;

static char *status_json(int code, const char *reason, const char *message)
{
	cJSON *s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "kind", "Status");
	cJSON_AddStringToObject(s, "apiVersion", "v1");
	cJSON_AddObjectToObject(s, "metadata");
	cJSON_AddStringToObject(s, "status", "Failure");
	cJSON_AddStringToObject(s, "message", message);
	cJSON_AddStringToObject(s, "reason", reason);
	cJSON_AddNumberToObject(s, "code", code);
	char *out = cJSON_PrintUnformatted(s);
	cJSON_Delete(s);
	return out;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, char *text)
{
	if (!text)
		return MHD_NO;
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_status(struct MHD_Connection *c, int code, const char *reason,
                                   const char *message)
{
	return send_json(c, (unsigned)code, status_json(code, reason, message));
}

static enum MHD_Result send_obj(struct MHD_Connection *c, unsigned code, const cJSON *o)
{
	return send_json(c, code, cJSON_PrintUnformatted(o));
}

static bool authorized(fake_apiserver *fs, struct MHD_Connection *c)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	pthread_mutex_lock(&fs->lock);
	bool ok = auth && fs->token && !strncmp(auth, "Bearer ", 7) && !strcmp(auth + 7, fs->token);
	pthread_mutex_unlock(&fs->lock);
	if (ok)
		return true;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return false;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	unsigned n = 0;
	if (!gnutls_certificate_get_peers(s, &n) || n == 0)
		return false;
	unsigned status = 0;
	return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

/* Splits the URL into collection, namespace and name. false: not an API path. */
static bool parse_path(const char *url, char *collection, size_t clen, char *ns, size_t nslen,
                       char *name, size_t namelen)
{
	char buf[1024];
	if (strlen(url) >= sizeof buf)
		return false;
	snprintf(buf, sizeof buf, "%s", url);
	char *seg[12];
	size_t n = 0;
	for (char *p = buf; *p;) {
		while (*p == '/')
			*p++ = '\0';
		if (!*p)
			break;
		if (n == 12)
			return false;
		seg[n++] = p;
		while (*p && *p != '/')
			p++;
	}
	size_t i;
	char prefix[512];
	if (n >= 2 && !strcmp(seg[0], "api")) {
		snprintf(prefix, sizeof prefix, "/api/%s", seg[1]);
		i = 2;
	} else if (n >= 3 && !strcmp(seg[0], "apis")) {
		snprintf(prefix, sizeof prefix, "/apis/%s/%s", seg[1], seg[2]);
		i = 3;
	} else {
		return false;
	}
	size_t rest = n - i;
	ns[0] = name[0] = '\0';
	const char *resource;
	if (rest >= 3 && !strcmp(seg[i], "namespaces")) {
		if (rest > 4)
			return false;
		snprintf(ns, nslen, "%s", seg[i + 1]);
		resource = seg[i + 2];
		if (rest == 4)
			snprintf(name, namelen, "%s", seg[i + 3]);
	} else if (rest == 1 || rest == 2) {
		resource = seg[i];
		if (rest == 2)
			snprintf(name, namelen, "%s", seg[i + 1]);
	} else {
		return false;
	}
	int w = snprintf(collection, clen, "%s/%s", prefix, resource);
	return w > 0 && (size_t)w < clen;
}

/* ---- list ------------------------------------------------------------- */

static enum MHD_Result do_list(fake_apiserver *fs, struct MHD_Connection *c, const char *collection,
                               const char *ns)
{
	const char *limit_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
	const char *cont = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "continue");
	long limit = limit_s ? strtol(limit_s, NULL, 10) : 0;
	pthread_mutex_lock(&fs->lock);
	fs->stats.lists++;
	snprintf(fs->stats.last_list_continue, sizeof fs->stats.last_list_continue, "%s",
	         cont ? cont : "");
	if (take_fault(fs, FAKE_FAULT_LIST_500)) {
		pthread_mutex_unlock(&fs->lock);
		return send_status(c, 500, "InternalError", "injected fault: list failed");
	}
	long offset = 0, list_rv = fs->rv;
	if (cont && *cont) {
		if (sscanf(cont, "o%ld-r%ld", &offset, &list_rv) != 2 || offset < 0) {
			pthread_mutex_unlock(&fs->lock);
			return send_status(c, 400, "BadRequest", "invalid continue token");
		}
		if (list_rv < fs->compacted_rv || take_fault(fs, FAKE_FAULT_CONTINUE_EXPIRED)) {
			pthread_mutex_unlock(&fs->lock);
			return send_status(c, 410, "Expired",
			                   "The provided continue parameter is too old to display "
			                   "a consistent list result.");
		}
	}
	fobj **sel = calloc(fs->n_objs + 1, sizeof *sel);
	size_t m = 0;
	for (size_t i = 0; sel && i < fs->n_objs; i++)
		if (!strcmp(fs->objs[i].collection, collection) &&
		    (!ns[0] || !strcmp(fs->objs[i].ns, ns)))
			sel[m++] = &fs->objs[i];
	qsort(sel, m, sizeof *sel, cmp_obj);
	cJSON *list = cJSON_CreateObject();
	char kind[160], apiv[160], rv[32];
	list_kind(collection, kind, sizeof kind);
	api_version_of(collection, apiv, sizeof apiv);
	cJSON_AddStringToObject(list, "kind", kind);
	cJSON_AddStringToObject(list, "apiVersion", apiv);
	cJSON *md = cJSON_AddObjectToObject(list, "metadata");
	snprintf(rv, sizeof rv, "%ld", list_rv);
	cJSON_AddStringToObject(md, "resourceVersion", rv);
	cJSON *items = cJSON_AddArrayToObject(list, "items");
	size_t end = m;
	if (limit > 0 && (size_t)offset + (size_t)limit < m)
		end = (size_t)offset + (size_t)limit;
	for (size_t i = (size_t)offset; i < end; i++) {
		cJSON *it = cJSON_Duplicate(sel[i]->json, 1);
		/* The real server leaves kind and apiVersion out of list items. */
		cJSON_DeleteItemFromObjectCaseSensitive(it, "kind");
		cJSON_DeleteItemFromObjectCaseSensitive(it, "apiVersion");
		cJSON_AddItemToArray(items, it);
	}
	if (end < m) {
		char tok[96];
		snprintf(tok, sizeof tok, "o%zu-r%ld", end, list_rv);
		cJSON_AddStringToObject(md, "continue", tok);
		cJSON_AddNumberToObject(md, "remainingItemCount", (double)(m - end));
	}
	free(sel);
	pthread_mutex_unlock(&fs->lock);
	enum MHD_Result ret = send_obj(c, 200, list);
	cJSON_Delete(list);
	return ret;
}

/* ---- watch ------------------------------------------------------------ */

typedef struct watch {
	fake_apiserver *fs;
	char collection[512], ns[256];
	bool bookmarks, slow, cut, end_after_pending, counted;
	size_t next; /* index into fs->events */
	unsigned end_gen;
	struct timespec deadline;
	cf_buf pend;
	size_t pend_off, cut_at;
	unsigned seed;
} watch;

static void append_event(watch *w, const char *type, const char *object_json)
{
	cf_buf_appendf(&w->pend, "{\"type\":\"%s\",\"object\":%s}\n", type, object_json);
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	watch *w = cls;
	fake_apiserver *fs = w->fs;
	for (;;) {
		if (w->pend_off < w->pend.len) {
			size_t n = w->pend.len - w->pend_off;
			if (n > max)
				n = max;
			if (w->slow) {
				size_t piece = 1 + (size_t)(rand_r(&w->seed) % 3);
				if (n > piece)
					n = piece;
				usleep(200);
			}
			if (w->cut_at) {
				if (w->pend_off >= w->cut_at)
					return MHD_CONTENT_READER_END_WITH_ERROR;
				if (w->pend_off + n > w->cut_at)
					n = w->cut_at - w->pend_off;
			}
			memcpy(buf, w->pend.data + w->pend_off, n);
			w->pend_off += n;
			return (ssize_t)n;
		}
		if (w->cut_at)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (w->end_after_pending)
			return MHD_CONTENT_READER_END_OF_STREAM;
		cf_buf_reset(&w->pend);
		w->pend_off = 0;
		pthread_mutex_lock(&fs->lock);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		if (fs->stopping || fs->end_gen != w->end_gen || now.tv_sec > w->deadline.tv_sec ||
		    (now.tv_sec == w->deadline.tv_sec && now.tv_nsec >= w->deadline.tv_nsec)) {
			pthread_mutex_unlock(&fs->lock);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		bool got = false;
		while (w->next < fs->n_events && !got) {
			fevent *e = &fs->events[w->next++];
			bool bookmark = !strcmp(e->type, "BOOKMARK");
			bool raw = !strcmp(e->type, "RAW");
			if (strcmp(e->collection, w->collection) ||
			    (w->ns[0] && !bookmark && !raw && strcmp(e->ns, w->ns)))
				continue;
			if (bookmark && !w->bookmarks)
				continue;
			if (!strcmp(e->type, "RAW"))
				cf_buf_appendf(&w->pend, "%s\n", e->object_json);
			else
				append_event(w, e->type, e->object_json);
			fs->stats.watch_events_sent++;
			got = true;
		}
		if (got) {
			if (w->cut) {
				w->cut_at = w->pend.len / 2;
				w->cut = false;
			}
			pthread_mutex_unlock(&fs->lock);
			continue;
		}
		struct timespec until = now;
		until.tv_nsec += 50 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&fs->cond, &fs->lock, &until);
		pthread_mutex_unlock(&fs->lock);
	}
}

static void watch_free(void *cls)
{
	watch *w = cls;
	pthread_mutex_lock(&w->fs->lock);
	if (w->counted)
		w->fs->stats.watches_active--;
	pthread_mutex_unlock(&w->fs->lock);
	cf_buf_free(&w->pend);
	free(w);
}

static enum MHD_Result do_watch(fake_apiserver *fs, struct MHD_Connection *c,
                                const char *collection, const char *ns)
{
	const char *rv_s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "resourceVersion");
	const char *bm =
	    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "allowWatchBookmarks");
	const char *to = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeoutSeconds");
	watch *w = calloc(1, sizeof *w);
	if (!w)
		return MHD_NO;
	w->fs = fs;
	snprintf(w->collection, sizeof w->collection, "%s", collection);
	snprintf(w->ns, sizeof w->ns, "%s", ns);
	w->bookmarks = bm && !strcmp(bm, "true");
	w->seed = (unsigned)time(NULL);
	cf_buf_init(&w->pend, 0);
	long timeout = to ? strtol(to, NULL, 10) : 0;
	if (timeout <= 0)
		timeout = 1800;
	clock_gettime(CLOCK_REALTIME, &w->deadline);
	w->deadline.tv_sec += timeout;
	long rv = 0;
	if (rv_s && *rv_s) {
		char *end;
		rv = strtol(rv_s, &end, 10);
		if (*end || rv < 0) {
			free(w);
			return send_status(c, 400, "BadRequest", "invalid resourceVersion");
		}
	}
	pthread_mutex_lock(&fs->lock);
	fs->stats.watches++;
	snprintf(fs->stats.last_watch_rv, sizeof fs->stats.last_watch_rv, "%s", rv_s ? rv_s : "");
	fs->stats.last_watch_bookmarks = w->bookmarks;
	if (take_fault(fs, FAKE_FAULT_WATCH_GONE_HTTP)) {
		pthread_mutex_unlock(&fs->lock);
		free(w);
		return send_status(c, 410, "Gone", "too old resource version");
	}
	w->slow = take_fault(fs, FAKE_FAULT_WATCH_SLOW);
	w->cut = take_fault(fs, FAKE_FAULT_WATCH_CUT);
	w->end_gen = fs->end_gen;
	bool expired = take_fault(fs, FAKE_FAULT_WATCH_EXPIRED) || (rv && rv < fs->compacted_rv);
	if (expired) {
		char msg[128];
		snprintf(msg, sizeof msg, "too old resource version: %ld (%ld)", rv,
		         fs->compacted_rv);
		char *st = status_json(410, "Expired", msg);
		append_event(w, "ERROR", st ? st : "{}");
		free(st);
		w->end_after_pending = true;
	} else if (rv == 0) {
		/* No resourceVersion: the current state as ADDED, then changes. */
		for (size_t i = 0; i < fs->n_objs; i++)
			if (!strcmp(fs->objs[i].collection, collection) &&
			    (!ns[0] || !strcmp(fs->objs[i].ns, ns))) {
				char *j = cJSON_PrintUnformatted(fs->objs[i].json);
				if (j)
					append_event(w, "ADDED", j);
				free(j);
			}
		w->next = fs->n_events;
	} else {
		w->next = 0;
		while (w->next < fs->n_events && fs->events[w->next].rv <= rv)
			w->next++;
	}
	if (w->cut && w->pend.len) {
		w->cut_at = w->pend.len / 2;
		w->cut = false;
	}
	w->counted = true;
	fs->stats.watches_active++;
	pthread_mutex_unlock(&fs->lock);
	struct MHD_Response *r =
	    MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, watch_read, w, watch_free);
	if (!r) {
		watch_free(w);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- writes ----------------------------------------------------------- */

/* RFC 7386 JSON merge patch; returns the new target (takes over target). */
static cJSON *merge_patch(cJSON *target, const cJSON *patch)
{
	if (!cJSON_IsObject(patch)) {
		cJSON_Delete(target);
		return cJSON_Duplicate(patch, 1);
	}
	if (!cJSON_IsObject(target)) {
		cJSON_Delete(target);
		target = cJSON_CreateObject();
	}
	const cJSON *p;
	cJSON_ArrayForEach(p, patch)
	{
		cJSON *old = cJSON_DetachItemFromObjectCaseSensitive(target, p->string);
		if (cJSON_IsNull(p)) {
			cJSON_Delete(old);
			continue;
		}
		cJSON_AddItemToObject(target, p->string, merge_patch(old, p));
	}
	return target;
}

/* RFC 6902 JSON patch, the operations the clients here use: add, replace,
 * remove, test. Pointers per RFC 6901 (~0 ~1; "-" appends to an array).
 * 0 applied; -EINVAL malformed (400); -ENOENT path missing or -ESTALE test
 * failed (both 422, as kube-apiserver answers). `doc` is modified. */
static cJSON *ptr_parent(cJSON *doc, const char *path, char *last, size_t lastlen)
{
	if (path[0] != '/')
		return NULL;
	cJSON *cur = doc;
	const char *p = path + 1;
	for (;;) {
		char tok[256];
		size_t n = 0;
		while (*p && *p != '/') {
			char ch = *p++;
			if (ch == '~') {
				if (*p == '0')
					ch = '~';
				else if (*p == '1')
					ch = '/';
				else
					return NULL;
				p++;
			}
			if (n + 1 >= sizeof tok)
				return NULL;
			tok[n++] = ch;
		}
		tok[n] = '\0';
		if (!*p) {
			snprintf(last, lastlen, "%s", tok);
			return cur;
		}
		p++;
		if (cJSON_IsArray(cur)) {
			char *end;
			long i = strtol(tok, &end, 10);
			if (!tok[0] || *end || i < 0)
				return NULL;
			cur = cJSON_GetArrayItem(cur, (int)i);
		} else if (cJSON_IsObject(cur)) {
			cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
		} else {
			return NULL;
		}
		if (!cur)
			return NULL;
	}
}

static int json_patch(cJSON *doc, const cJSON *ops, char *msg, size_t msglen)
{
	const cJSON *op;
	cJSON_ArrayForEach(op, ops)
	{
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(op, "op");
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(op, "path");
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(op, "value");
		if (!cJSON_IsString(o) || !cJSON_IsString(path)) {
			snprintf(msg, msglen, "json patch operation without op or path");
			return -EINVAL;
		}
		bool is_add = !strcmp(o->valuestring, "add"),
		     is_rep = !strcmp(o->valuestring, "replace");
		bool is_rm = !strcmp(o->valuestring, "remove"),
		     is_test = !strcmp(o->valuestring, "test");
		if (!is_add && !is_rep && !is_rm && !is_test) {
			snprintf(msg, msglen, "unsupported json patch op \"%.40s\"",
			         o->valuestring);
			return -EINVAL;
		}
		if (!is_rm && !value) {
			snprintf(msg, msglen, "json patch %s without value", o->valuestring);
			return -EINVAL;
		}
		char last[256];
		cJSON *parent = ptr_parent(doc, path->valuestring, last, sizeof last);
		if (!parent) {
			snprintf(msg, msglen,
			         "jsonpatch %s operation does not apply: doc is missing path: "
			         "\"%.200s\"",
			         o->valuestring, path->valuestring);
			return -ENOENT;
		}
		cJSON *target = NULL;
		long idx = -1;
		if (cJSON_IsArray(parent)) {
			char *end;
			if (!strcmp(last, "-") && is_add) {
				idx = cJSON_GetArraySize(parent);
			} else {
				idx = strtol(last, &end, 10);
				if (!last[0] || *end || idx < 0 ||
				    idx > cJSON_GetArraySize(parent)) {
					snprintf(msg, msglen, "bad array index in \"%.200s\"",
					         path->valuestring);
					return -ENOENT;
				}
			}
			target = cJSON_GetArrayItem(parent, (int)idx);
		} else if (cJSON_IsObject(parent)) {
			target = cJSON_GetObjectItemCaseSensitive(parent, last);
		} else {
			snprintf(msg, msglen, "doc is missing path: \"%.200s\"", path->valuestring);
			return -ENOENT;
		}
		if (is_test) {
			if (!target || !cJSON_Compare(target, value, 1)) {
				snprintf(msg, msglen, "testing value %.200s failed",
				         path->valuestring);
				return -ESTALE;
			}
			continue;
		}
		if ((is_rep || is_rm) && !target) {
			snprintf(
			    msg, msglen,
			    "jsonpatch %s operation does not apply: doc is missing key: %.200s",
			    o->valuestring, path->valuestring);
			return -ENOENT;
		}
		if (is_rm) {
			if (cJSON_IsArray(parent))
				cJSON_DeleteItemFromArray(parent, (int)idx);
			else
				cJSON_DeleteItemFromObjectCaseSensitive(parent, last);
			continue;
		}
		cJSON *v = cJSON_Duplicate(value, 1);
		if (cJSON_IsArray(parent)) {
			if (is_rep)
				cJSON_ReplaceItemInArray(parent, (int)idx, v);
			else if (idx == cJSON_GetArraySize(parent))
				cJSON_AddItemToArray(parent, v);
			else
				cJSON_InsertItemInArray(parent, (int)idx, v);
		} else if (target) {
			cJSON_ReplaceItemInObjectCaseSensitive(parent, last, v);
		} else {
			cJSON_AddItemToObject(parent, last, v);
		}
	}
	return 0;
}

static enum MHD_Result do_write(fake_apiserver *fs, struct MHD_Connection *c, const char *method,
                                const char *collection, const char *ns, const char *name,
                                const cf_buf *body)
{
	char msg[512];
	const char *resource = resource_of(collection);
	cJSON *in = NULL;
	if (!strcmp(method, "PATCH")) {
		const char *pct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (!pct || (strncmp(pct, "application/merge-patch+json", 28) != 0 &&
		             strncmp(pct, "application/json-patch+json", 27) != 0))
			return send_status(
			    c, 415, "UnsupportedMediaType",
			    "the fake API server applies merge and JSON patches only");
	}
	if (strcmp(method, "DELETE") != 0) {
		in = body->len ? cJSON_ParseWithLength(body->data, body->len) : NULL;
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		bool json_patch_body = !strcmp(method, "PATCH") && ct &&
		                       !strncmp(ct, "application/json-patch+json", 27);
		if (json_patch_body && !cJSON_IsArray(in)) {
			cJSON_Delete(in);
			return send_status(c, 400, "BadRequest", "json patch body is not an array");
		}
		if (!json_patch_body && !cJSON_IsObject(in)) {
			cJSON_Delete(in);
			return send_status(c, 400, "BadRequest",
			                   "request body is not a JSON object");
		}
	}
	pthread_mutex_lock(&fs->lock);
	enum MHD_Result ret;
	fobj *o = name[0] ? find_obj(fs, collection, ns, name) : NULL;
	if (!strcmp(method, "POST")) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(in, "metadata"), "name");
		if (name[0] || !cJSON_IsString(n) || !n->valuestring[0]) {
			pthread_mutex_unlock(&fs->lock);
			cJSON_Delete(in);
			return send_status(c, 422, "Invalid", "metadata.name: Required value");
		}
		if (find_obj(fs, collection, ns, n->valuestring)) {
			snprintf(msg, sizeof msg, "%.200s \"%.200s\" already exists", resource,
			         n->valuestring);
			pthread_mutex_unlock(&fs->lock);
			cJSON_Delete(in);
			return send_status(c, 409, "AlreadyExists", msg);
		}
		char nm[256];
		snprintf(nm, sizeof nm, "%s", n->valuestring);
		long rv = store_obj(fs, collection, ns, nm, in);
		o = rv > 0 ? find_obj(fs, collection, ns, nm) : NULL;
		ret = o ? send_obj(c, 201, o->json) : send_status(c, 500, "InternalError", "store");
		pthread_mutex_unlock(&fs->lock);
		return ret;
	}
	if (!o) {
		snprintf(msg, sizeof msg, "%.200s \"%.200s\" not found", resource, name);
		pthread_mutex_unlock(&fs->lock);
		cJSON_Delete(in);
		return send_status(c, 404, "NotFound", msg);
	}
	if (!strcmp(method, "DELETE")) {
		cJSON *copy = cJSON_Duplicate(o->json, 1);
		delete_obj(fs, collection, ns, name);
		pthread_mutex_unlock(&fs->lock);
		ret = send_obj(c, 200, copy);
		cJSON_Delete(copy);
		return ret;
	}
	snprintf(
	    msg, sizeof msg,
	    "Operation cannot be fulfilled on %.150s \"%.150s\": the object has been modified; "
	    "please apply your changes to the latest version and try again",
	    resource, name);
	if (take_fault(fs, FAKE_FAULT_UPDATE_CONFLICT)) {
		pthread_mutex_unlock(&fs->lock);
		cJSON_Delete(in);
		return send_status(c, 409, "Conflict", msg);
	}
	cJSON *next;
	if (!strcmp(method, "PUT")) {
		const cJSON *want = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(in, "metadata"), "resourceVersion");
		const cJSON *have = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(o->json, "metadata"), "resourceVersion");
		if (cJSON_IsString(want) &&
		    (!cJSON_IsString(have) || strcmp(want->valuestring, have->valuestring))) {
			pthread_mutex_unlock(&fs->lock);
			cJSON_Delete(in);
			return send_status(c, 409, "Conflict", msg);
		}
		next = in;
	} else {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (ct && !strncmp(ct, "application/json-patch+json", 27)) {
			next = cJSON_Duplicate(o->json, 1);
			char pmsg[512];
			int prc = json_patch(next, in, pmsg, sizeof pmsg);
			cJSON_Delete(in);
			if (prc) {
				pthread_mutex_unlock(&fs->lock);
				cJSON_Delete(next);
				return send_status(c, prc == -EINVAL ? 400 : 422,
				                   prc == -EINVAL ? "BadRequest" : "Invalid", pmsg);
			}
			fs->stats.json_patches++;
		} else if (!ct || strncmp(ct, "application/merge-patch+json", 28) != 0) {
			pthread_mutex_unlock(&fs->lock);
			cJSON_Delete(in);
			return send_status(
			    c, 415, "UnsupportedMediaType",
			    "the fake API server applies merge and JSON patches only");
		} else {
			next = merge_patch(cJSON_Duplicate(o->json, 1), in);
			cJSON_Delete(in);
		}
	}
	long rv = store_obj(fs, collection, ns, name, next);
	o = rv > 0 ? find_obj(fs, collection, ns, name) : NULL;
	ret = o ? send_obj(c, 200, o->json)
	        : send_status(c, 422, "Invalid", "object has no metadata");
	pthread_mutex_unlock(&fs->lock);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
	(void)version;
	fake_apiserver *fs = cls;
	req *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		cf_buf_init(&r->body, 8u * 1024u * 1024u);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (cf_buf_append(&r->body, upload_data, *upload_data_size))
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&fs->lock);
	fs->stats.requests++;
	pthread_mutex_unlock(&fs->lock);
	pthread_mutex_lock(&fs->lock);
	int down = fs->down_status;
	char down_path[256];
	snprintf(down_path, sizeof down_path, "%s", fs->down_path);
	pthread_mutex_unlock(&fs->lock);
	if (down && (!down_path[0] || strstr(url, down_path))) {
		return send_status(c, down, down == 403 ? "Forbidden" : "ServiceUnavailable",
		                   down == 403 ? "injected: forbidden by RBAC"
		                               : "injected: the API server is unavailable");
	}
	if (!authorized(fs, c)) {
		pthread_mutex_lock(&fs->lock);
		fs->stats.unauthorized++;
		pthread_mutex_unlock(&fs->lock);
		return send_status(c, 401, "Unauthorized", "Unauthorized");
	}
	char collection[512], ns[256], name[256];
	if (!parse_path(url, collection, sizeof collection, ns, sizeof ns, name, sizeof name))
		return send_status(c, 404, "NotFound",
		                   "the server could not find the requested resource");
	if (!strcmp(method, "GET")) {
		if (name[0]) {
			pthread_mutex_lock(&fs->lock);
			fobj *o = find_obj(fs, collection, ns, name);
			char *text = o ? cJSON_PrintUnformatted(o->json) : NULL;
			pthread_mutex_unlock(&fs->lock);
			if (!o) {
				char msg[600];
				snprintf(msg, sizeof msg, "%s \"%s\" not found",
				         resource_of(collection), name);
				return send_status(c, 404, "NotFound", msg);
			}
			return send_json(c, 200, text);
		}
		const char *wv = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "watch");
		if (wv && (!strcmp(wv, "1") || !strcmp(wv, "true")))
			return do_watch(fs, c, collection, ns);
		return do_list(fs, c, collection, ns);
	}
	if (!strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH") ||
	    !strcmp(method, "DELETE"))
		return do_write(fs, c, method, collection, ns, name, &r->body);
	return send_status(c, 405, "MethodNotAllowed", "method not allowed");
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	req *r = *con_cls;
	if (r) {
		cf_buf_free(&r->body);
		free(r);
		*con_cls = NULL;
	}
}

/* ---- lifecycle -------------------------------------------------------- */

fake_apiserver *fake_apiserver_start(const fake_ca *ca, const char *token, char *err, size_t errlen)
{
	fake_apiserver *fs = calloc(1, sizeof *fs);
	if (!fs) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&fs->lock, NULL);
	pthread_cond_init(&fs->cond, NULL);
	fs->rv = 1000;
	fs->token = token ? strdup(token) : NULL;
	fs->cert = strdup(ca->server_cert_pem);
	fs->key = strdup(ca->server_key_pem);
	fs->trust = strdup(ca->ca_pem);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fs->d = MHD_start_daemon(
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL,
	    NULL, handle, fs, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_CERT, fs->cert,
	    MHD_OPTION_HTTPS_MEM_KEY, fs->key, MHD_OPTION_HTTPS_MEM_TRUST, fs->trust,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, fs, MHD_OPTION_END);
	if (!fs->d) {
		snprintf(err, errlen, "MHD_start_daemon failed");
		fake_apiserver_stop(fs);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(fs->d, MHD_DAEMON_INFO_BIND_PORT);
	fs->port = di ? di->port : 0;
	snprintf(fs->url, sizeof fs->url, "https://127.0.0.1:%u", fs->port);
	return fs;
}

void fake_apiserver_stop(fake_apiserver *fs)
{
	if (!fs)
		return;
	pthread_mutex_lock(&fs->lock);
	fs->stopping = true;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
	if (fs->d)
		MHD_stop_daemon(fs->d);
	for (size_t i = 0; i < fs->n_objs; i++) {
		free(fs->objs[i].collection);
		free(fs->objs[i].ns);
		free(fs->objs[i].name);
		cJSON_Delete(fs->objs[i].json);
	}
	for (size_t i = 0; i < fs->n_events; i++) {
		free(fs->events[i].collection);
		free(fs->events[i].ns);
		free(fs->events[i].object_json);
	}
	free(fs->objs);
	free(fs->events);
	free(fs->token);
	free(fs->cert);
	free(fs->key);
	free(fs->trust);
	pthread_cond_destroy(&fs->cond);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

const char *fake_apiserver_url(const fake_apiserver *fs)
{
	return fs->url;
}

unsigned short fake_apiserver_port(const fake_apiserver *fs)
{
	return fs->port;
}

void fake_apiserver_set_token(fake_apiserver *fs, const char *token)
{
	pthread_mutex_lock(&fs->lock);
	free(fs->token);
	fs->token = token ? strdup(token) : NULL;
	pthread_mutex_unlock(&fs->lock);
}

long fake_apiserver_put(fake_apiserver *fs, const char *collection, const char *json)
{
	cJSON *o = cJSON_Parse(json);
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
	if (!cJSON_IsString(name)) {
		cJSON_Delete(o);
		return -EINVAL;
	}
	char nm[256], nsb[256];
	snprintf(nm, sizeof nm, "%s", name->valuestring);
	snprintf(nsb, sizeof nsb, "%s", cJSON_IsString(ns) ? ns->valuestring : "");
	pthread_mutex_lock(&fs->lock);
	long rv = store_obj(fs, collection, nsb, nm, o);
	pthread_mutex_unlock(&fs->lock);
	return rv;
}

long fake_apiserver_delete(fake_apiserver *fs, const char *collection, const char *ns,
                           const char *name)
{
	pthread_mutex_lock(&fs->lock);
	long rv = delete_obj(fs, collection, ns ? ns : "", name);
	pthread_mutex_unlock(&fs->lock);
	return rv;
}

void fake_apiserver_bookmark(fake_apiserver *fs, const char *collection)
{
	pthread_mutex_lock(&fs->lock);
	record_event(fs, collection, "", "BOOKMARK", NULL);
	pthread_mutex_unlock(&fs->lock);
}

void fake_apiserver_inject_raw(fake_apiserver *fs, const char *collection, const char *line)
{
	pthread_mutex_lock(&fs->lock);
	if (record_event(fs, collection, "", "RAW", NULL) == 0) {
		fevent *e = &fs->events[fs->n_events - 1];
		char *copy = strdup(line);
		if (copy) {
			free(e->object_json);
			e->object_json = copy;
		}
	}
	pthread_mutex_unlock(&fs->lock);
}

void fake_apiserver_compact(fake_apiserver *fs)
{
	pthread_mutex_lock(&fs->lock);
	fs->compacted_rv = fs->rv;
	pthread_mutex_unlock(&fs->lock);
}

void fake_apiserver_end_watches(fake_apiserver *fs)
{
	pthread_mutex_lock(&fs->lock);
	fs->end_gen++;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->lock);
}

void fake_apiserver_set_down(fake_apiserver *fs, int status, const char *path_part)
{
	pthread_mutex_lock(&fs->lock);
	fs->down_status = status;
	snprintf(fs->down_path, sizeof fs->down_path, "%s", path_part ? path_part : "");
	pthread_mutex_unlock(&fs->lock);
}

void fake_apiserver_add_fault(fake_apiserver *fs, fake_fault f)
{
	pthread_mutex_lock(&fs->lock);
	if (fs->n_faults < MAX_FAULTS)
		fs->faults[fs->n_faults++] = f;
	pthread_mutex_unlock(&fs->lock);
}

long fake_apiserver_resource_version(fake_apiserver *fs)
{
	pthread_mutex_lock(&fs->lock);
	long rv = fs->rv;
	pthread_mutex_unlock(&fs->lock);
	return rv;
}

char *fake_apiserver_get(fake_apiserver *fs, const char *collection, const char *ns,
                         const char *name)
{
	pthread_mutex_lock(&fs->lock);
	fobj *o = find_obj(fs, collection, ns ? ns : "", name);
	char *out = o ? cJSON_PrintUnformatted(o->json) : NULL;
	pthread_mutex_unlock(&fs->lock);
	return out;
}

void fake_apiserver_stats_get(fake_apiserver *fs, fake_apiserver_stats *out)
{
	pthread_mutex_lock(&fs->lock);
	*out = fs->stats;
	pthread_mutex_unlock(&fs->lock);
}
