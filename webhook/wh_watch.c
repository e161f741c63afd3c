/* wh_watch.c - see wh_watch.h. */
#include "wh_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_limits.h"
#include "cf_log.h"
#include "wh_netpol.h"

#define COMPONENT "netpol-watch"
/* A stream may last timeoutSeconds; the client allows this much more
 * before it gives up on a server that never ends it. */
#define STREAM_SLACK_SECONDS 30u
/* Internal results of one watch attempt. */
#define WATCH_GONE        1 /* 410: relist */
#define WATCH_RELIST      2 /* unusable event: relist to get back in step */
#define WATCH_ERROR_EVENT 3 /* an ERROR event other than 410: reconnect */

/* ---- parser ----------------------------------------------------------- */

void wh_watch_parser_init(wh_watch_parser *p, size_t max_line, wh_watch_event_fn fn, void *ud)
{
	cf_buf_init(&p->line, max_line);
	p->max_line = max_line;
	p->fn = fn;
	p->ud = ud;
	p->events = 0;
}

void wh_watch_parser_free(wh_watch_parser *p)
{
	cf_buf_free(&p->line);
}

void wh_watch_parser_reset(wh_watch_parser *p)
{
	cf_buf_reset(&p->line);
}

size_t wh_watch_parser_pending(const wh_watch_parser *p)
{
	return p->line.len;
}

static int parse_line(wh_watch_parser *p, const char *s, size_t n, char *err, size_t errlen)
{
	while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	size_t start = 0;
	while (start < n && (s[start] == ' ' || s[start] == '\t'))
		start++;
	if (start == n)
		return 0; /* blank line: keep-alive or framing */
	/* cJSON stops after the first value: trailing bytes are an error too. */
	const char *end = NULL;
	cJSON *ev = cJSON_ParseWithLengthOpts(s + start, n - start, &end, 0);
	if (ev && end != s + n) {
		cJSON_Delete(ev);
		ev = NULL;
	}
	if (!ev) {
		snprintf(err, errlen, "watch event %lu is not valid JSON", p->events + 1);
		return -EPROTO;
	}
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "type");
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	int rc = 0;
	if (!cJSON_IsString(type) || !cJSON_IsObject(obj)) {
		snprintf(err, errlen,
		         "watch event %lu lacks a string \"type\" or an object \"object\"",
		         p->events + 1);
		rc = -EPROTO;
	} else {
		p->events++;
		rc = p->fn(p->ud, type->valuestring, obj);
	}
	cJSON_Delete(ev);
	return rc;
}

int wh_watch_parser_feed(wh_watch_parser *p, const char *data, size_t len, char *err, size_t errlen)
{
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t seg = nl ? (size_t)(nl - data) : len;
		if (p->line.len + seg > p->max_line) {
			snprintf(err, errlen, "watch event over the limit of %zu bytes",
			         p->max_line);
			return -E2BIG;
		}
		if (!nl) {
			int rc = cf_buf_append(&p->line, data, seg);
			if (rc) {
				snprintf(err, errlen, "out of memory buffering a watch event");
				return rc;
			}
			return 0;
		}
		int rc;
		if (p->line.len == 0) {
			/* The whole event is in this piece: parse it in place. */
			rc = parse_line(p, data, seg, err, errlen);
		} else {
			rc = cf_buf_append(&p->line, data, seg);
			if (rc) {
				snprintf(err, errlen, "out of memory buffering a watch event");
				return rc;
			}
			rc = parse_line(p, p->line.data, p->line.len, err, errlen);
			cf_buf_reset(&p->line);
		}
		if (rc)
			return rc;
		data += seg + 1;
		len -= seg + 1;
	}
	return 0;
}

/* ---- the watch -------------------------------------------------------- */

struct wh_watch {
	cf_kube_config kcfg;
	cf_kube *kube;
	wh_npcache *cache;
	unsigned timeout_seconds, backoff_base_ms, backoff_max_ms;
	bool timeout_random;
	pthread_t thread;
	bool thread_started;
	atomic_int stopping;
	pthread_mutex_t lock; /* stats, and the stop condition */
	pthread_cond_t cond;
	wh_watch_stats stats;
	/* Watch thread only: */
	wh_netpol_set *current; /* last published set (own reference) */
	wh_netpol_set *pending; /* clone being updated by a batch of events */
	char rv[CF_KUBE_MAX_RESOURCE_VERSION_BYTES];
	int event_rc; /* WATCH_GONE / WATCH_RELIST from an event */
	bool got_event;
	char event_err[512];
	uint64_t rng;
};

static void set_error(wh_watch *w, const char *msg)
{
	pthread_mutex_lock(&w->lock);
	w->stats.errors++;
	snprintf(w->stats.last_error, sizeof w->stats.last_error, "%s", msg);
	pthread_mutex_unlock(&w->lock);
}

static void publish(wh_watch *w, wh_netpol_set *set)
{
	wh_netpol_set *old = w->current;
	w->current = set;
	wh_npcache_publish(w->cache, wh_netpol_set_ref(set));
	wh_netpol_set_unref(old);
	pthread_mutex_lock(&w->lock);
	w->stats.policies = wh_netpol_set_count(set);
	w->stats.synced = true;
	snprintf(w->stats.resource_version, sizeof w->stats.resource_version, "%s", w->rv);
	pthread_mutex_unlock(&w->lock);
}

/* List items and watch objects: kind and apiVersion are absent from list
 * items (the real API server drops them), so they are filled in. */
static void ensure_kind(cJSON *obj)
{
	if (!cJSON_GetObjectItemCaseSensitive(obj, "kind"))
		cJSON_AddStringToObject(obj, "kind", "NetworkPolicy");
	if (!cJSON_GetObjectItemCaseSensitive(obj, "apiVersion"))
		cJSON_AddStringToObject(obj, "apiVersion", "networking.k8s.io/v1");
}

static void name_of(const cJSON *obj, const char **ns, const char **name)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(md, "name");
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(md, "namespace");
	*name = cJSON_IsString(n) ? n->valuestring : NULL;
	/* As wh_netpol: no namespace, or an empty one, is "default". */
	*ns = cJSON_IsString(s) && s->valuestring[0] ? s->valuestring : "default";
}

/* The object's resourceVersion, or NULL when missing or oversized. */
static const char *rv_of(const cJSON *obj)
{
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "resourceVersion");
	if (!cJSON_IsString(rv) || !rv->valuestring[0] ||
	    strlen(rv->valuestring) >= CF_KUBE_MAX_RESOURCE_VERSION_BYTES)
		return NULL;
	return rv->valuestring;
}

/* Adds a policy to `set`; a policy the engine refuses is logged and left
 * out, and a previous version of it is removed. */
static int add_policy(wh_netpol_set *set, const cJSON *obj)
{
	char err[512] = "";
	int rc = wh_netpol_set_add(set, obj, err, sizeof err);
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		const char *ns, *name;
		name_of(obj, &ns, &name);
		cf_log_msg(CF_LOG_WARNING, COMPONENT, "NetworkPolicy %s/%s ignored: %s", ns,
		           name ? name : "?", err);
		if (name)
			wh_netpol_set_remove(set, ns, name);
	}
	return 0;
}

static int apply_event(wh_watch *w, const char *type, bool is_del, const cJSON *object);

static int on_event(void *ud, const char *type, const cJSON *object)
{
	wh_watch *w = ud;
	if (!strcmp(type, "ERROR")) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(object, "code");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(object, "message");
		snprintf(w->event_err, sizeof w->event_err, "watch ERROR event: code %d: %s",
		         cJSON_IsNumber(code) ? code->valueint : 0,
		         cJSON_IsString(msg) ? msg->valuestring : "(no message)");
		if (cJSON_IsNumber(code) && code->valueint == 410)
			return w->event_rc = WATCH_GONE;
		return w->event_rc = WATCH_ERROR_EVENT;
	}
	bool is_bookmark = !strcmp(type, "BOOKMARK");
	bool is_add = !strcmp(type, "ADDED") || !strcmp(type, "MODIFIED");
	bool is_del = !strcmp(type, "DELETED");
	if (!is_bookmark && !is_add && !is_del) {
		snprintf(w->event_err, sizeof w->event_err, "unknown watch event type \"%.64s\"",
		         type);
		return w->event_rc = WATCH_RELIST;
	}
	const char *rv = rv_of(object);
	if (!rv) {
		snprintf(w->event_err, sizeof w->event_err,
		         "%s event without a usable metadata.resourceVersion", type);
		return w->event_rc = WATCH_RELIST;
	}
	int rc = is_bookmark ? 0 : apply_event(w, type, is_del, object);
	if (rc)
		return rc;
	/* Only an applied event moves the resume point. */
	snprintf(w->rv, sizeof w->rv, "%s", rv);
	w->got_event = true;
	pthread_mutex_lock(&w->lock);
	w->stats.events++;
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static int apply_event(wh_watch *w, const char *type, bool is_del, const cJSON *object)
{
	const char *ns, *name;
	name_of(object, &ns, &name);
	if (!name) {
		snprintf(w->event_err, sizeof w->event_err, "%s event without metadata.name", type);
		return w->event_rc = WATCH_RELIST;
	}
	if (!w->pending) {
		w->pending = wh_netpol_set_clone(w->current);
		if (!w->pending)
			return -ENOMEM;
	}
	if (is_del) {
		wh_netpol_set_remove(w->pending, ns, name);
		return 0;
	}
	/* Watch objects carry kind already; only a copy may be amended. */
	if (cJSON_GetObjectItemCaseSensitive(object, "kind"))
		return add_policy(w->pending, object);
	cJSON *copy = cJSON_Duplicate(object, 1);
	if (!copy)
		return -ENOMEM;
	ensure_kind(copy);
	int rc = add_policy(w->pending, copy);
	cJSON_Delete(copy);
	return rc;
}

typedef struct stream_ctx {
	wh_watch *w;
	wh_watch_parser parser;
	char err[512];
} stream_ctx;

static int on_bytes(void *ud, const char *data, size_t len)
{
	stream_ctx *s = ud;
	wh_watch *w = s->w;
	int rc = wh_watch_parser_feed(&s->parser, data, len, s->err, sizeof s->err);
	/* Whatever arrived whole in this piece is published together, also
	 * when a later event in it failed: those were applied in order. */
	if (w->pending) {
		wh_netpol_set *set = w->pending;
		w->pending = NULL;
		publish(w, set);
	} else if (rc == 0 && w->got_event) {
		pthread_mutex_lock(&w->lock);
		snprintf(w->stats.resource_version, sizeof w->stats.resource_version, "%s", w->rv);
		pthread_mutex_unlock(&w->lock);
	}
	if (rc == -E2BIG || rc == -EPROTO) {
		/* An event was lost: only a fresh list is known to be right. */
		if (!w->event_err[0])
			snprintf(w->event_err, sizeof w->event_err, "%s", s->err);
		return WATCH_RELIST;
	}
	return rc;
}

static int aborted(void *ud)
{
	wh_watch *w = ud;
	return atomic_load(&w->stopping);
}

/* One complete list; on success the set is published and w->rv set. */
static int do_list(wh_watch *w, char *err, size_t errlen)
{
	wh_netpol_set *set = wh_netpol_set_new();
	cf_kube_response resp;
	cf_kube_response_init(&resp);
	cf_buf path;
	cf_buf_init(&path, 0);
	char cont[4096] = "";
	char rv[CF_KUBE_MAX_RESOURCE_VERSION_BYTES] = "";
	int rc = set ? 0 : -ENOMEM;
	unsigned long pages = 0;
	while (rc == 0) {
		cf_buf_reset(&path);
		rc = cf_buf_appendf(&path, "%s?limit=%u", WH_WATCH_NETPOL_PATH,
		                    CF_KUBE_LIST_PAGE_ITEMS);
		if (!rc && cont[0]) {
			rc = cf_buf_append_str(&path, "&continue=");
			if (!rc)
				rc = cf_kube_append_escaped(&path, cont);
		}
		if (rc)
			break;
		rc = cf_kube_get(w->kube, path.data, &resp, err, errlen);
		if (rc)
			break;
		cJSON *list = cJSON_ParseWithLength(resp.body.data, resp.body.len);
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(list, "metadata");
		const cJSON *lrv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(md, "continue");
		cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
		if (!cJSON_IsObject(list) || !cJSON_IsString(lrv) || !lrv->valuestring[0] ||
		    strlen(lrv->valuestring) >= sizeof rv ||
		    !(cJSON_IsArray(items) || cJSON_IsNull(items) || !items) ||
		    (c && !cJSON_IsString(c)) ||
		    (cJSON_IsString(c) && strlen(c->valuestring) >= sizeof cont)) {
			snprintf(err, errlen,
			         "list %s: the response is not a NetworkPolicyList with "
			         "metadata.resourceVersion",
			         WH_WATCH_NETPOL_PATH);
			cJSON_Delete(list);
			rc = -EPROTO;
			break;
		}
		/* Every page of one list carries the first page's version. */
		if (!pages)
			snprintf(rv, sizeof rv, "%s", lrv->valuestring);
		pages++;
		cJSON *it;
		cJSON_ArrayForEach(it, items)
		{
			if (!cJSON_IsObject(it))
				continue;
			ensure_kind(it);
			if ((rc = add_policy(set, it)))
				break;
		}
		snprintf(cont, sizeof cont, "%s", cJSON_IsString(c) ? c->valuestring : "");
		cJSON_Delete(list);
		if (rc || !cont[0])
			break;
		if (atomic_load(&w->stopping))
			rc = -ECANCELED;
	}
	cf_buf_free(&path);
	cf_kube_response_free(&resp);
	if (rc) {
		wh_netpol_set_unref(set);
		return rc;
	}
	snprintf(w->rv, sizeof w->rv, "%s", rv);
	publish(w, set);
	pthread_mutex_lock(&w->lock);
	w->stats.lists++;
	pthread_mutex_unlock(&w->lock);
	cf_log_msg(CF_LOG_INFO, COMPONENT, "listed %zu NetworkPolicies at resourceVersion %s",
	           wh_netpol_set_count(w->current), w->rv);
	return 0;
}

/* One watch request; returns 0 (server ended it), WATCH_GONE,
 * WATCH_RELIST, WATCH_ERROR_EVENT, or -errno. */
static int do_watch(wh_watch *w, char *err, size_t errlen)
{
	cf_buf path;
	cf_buf_init(&path, 0);
	/* As client-go: a random length in [t, 2t] by default, so that many
	 * replicas do not all reconnect at once. */
	unsigned timeout = w->timeout_seconds;
	if (w->timeout_random) /* uniform in [t, 2t]: the jitter helper does that */
		timeout = (unsigned)cf_kube_backoff_ms(1, timeout, 2ull * timeout, &w->rng);
	int rc = cf_buf_appendf(&path, "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%u",
	                        WH_WATCH_NETPOL_PATH, timeout);
	if (!rc)
		rc = cf_buf_append_str(&path, "&resourceVersion=");
	if (!rc)
		rc = cf_kube_append_escaped(&path, w->rv);
	if (rc) {
		cf_buf_free(&path);
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	stream_ctx *s = calloc(1, sizeof *s);
	if (!s) {
		cf_buf_free(&path);
		return -ENOMEM;
	}
	s->w = w;
	wh_watch_parser_init(&s->parser, CF_KUBE_MAX_WATCH_EVENT_BYTES, on_event, w);
	w->event_rc = 0;
	w->event_err[0] = '\0';
	w->got_event = false;
	pthread_mutex_lock(&w->lock);
	w->stats.watches++;
	pthread_mutex_unlock(&w->lock);
	long status = 0;
	rc = cf_kube_stream(w->kube, path.data, timeout + STREAM_SLACK_SECONDS, on_bytes, s,
	                    &status, err, errlen);
	if (w->pending) { /* a failed event left a half-applied batch */
		wh_netpol_set_unref(w->pending);
		w->pending = NULL;
	}
	if (rc == -ESTALE && status == 410)
		rc = WATCH_GONE;
	if ((rc == WATCH_GONE || rc == WATCH_RELIST || rc == WATCH_ERROR_EVENT) && w->event_err[0])
		snprintf(err, errlen, "%s", w->event_err);
	if (rc == 0 && wh_watch_parser_pending(&s->parser)) {
		snprintf(err, errlen, "watch stream ended inside an event");
		rc = -EPIPE;
	}
	wh_watch_parser_free(&s->parser);
	free(s);
	cf_buf_free(&path);
	return rc;
}

static void sleep_ms(wh_watch *w, uint64_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->stopping))
		if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w->lock);
}

static void *run(void *arg)
{
	wh_watch *w = arg;
	char err[1024];
	unsigned attempt = 0;
	bool need_list = true;
	while (!atomic_load(&w->stopping)) {
		err[0] = '\0';
		if (need_list) {
			int rc = do_list(w, err, sizeof err);
			if (atomic_load(&w->stopping))
				break;
			if (rc) {
				set_error(w, err);
				uint64_t d = cf_kube_backoff_ms(attempt++, w->backoff_base_ms,
				                                w->backoff_max_ms, &w->rng);
				cf_log_msg(CF_LOG_ERROR, COMPONENT,
				           "NetworkPolicy list failed (retry in %llu ms): %s",
				           (unsigned long long)d, err);
				sleep_ms(w, d);
				continue;
			}
			need_list = false;
			attempt = 0;
		}
		int rc = do_watch(w, err, sizeof err);
		if (atomic_load(&w->stopping))
			break;
		if (w->got_event)
			attempt = 0;
		if (rc == 0)
			continue; /* timeoutSeconds reached: resume from w->rv */
		if (rc == WATCH_GONE || rc == WATCH_RELIST) {
			pthread_mutex_lock(&w->lock);
			if (rc == WATCH_GONE)
				w->stats.relists++;
			else
				w->stats.errors++;
			snprintf(w->stats.last_error, sizeof w->stats.last_error, "%s", err);
			pthread_mutex_unlock(&w->lock);
			cf_log_msg(rc == WATCH_GONE ? CF_LOG_INFO : CF_LOG_WARNING, COMPONENT,
			           "relisting NetworkPolicies: %s", err);
			need_list = true;
			if (rc != WATCH_GONE)
				sleep_ms(w, cf_kube_backoff_ms(attempt++, w->backoff_base_ms,
				                               w->backoff_max_ms, &w->rng));
			continue;
		}
		set_error(w, err);
		uint64_t d =
		    cf_kube_backoff_ms(attempt++, w->backoff_base_ms, w->backoff_max_ms, &w->rng);
		cf_log_msg(CF_LOG_WARNING, COMPONENT,
		           "NetworkPolicy watch failed (reconnect in %llu ms): %s",
		           (unsigned long long)d, err);
		sleep_ms(w, d);
	}
	return NULL;
}

wh_watch *wh_watch_start(const wh_watch_options *opt, char *err, size_t errlen)
{
	if (!opt || !opt->kube || !opt->cache) {
		snprintf(err, errlen, "watch: kube config and cache are required");
		return NULL;
	}
	wh_watch *w = calloc(1, sizeof *w);
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	w->cache = opt->cache;
	w->timeout_seconds = opt->timeout_seconds ? opt->timeout_seconds : 300;
	w->timeout_random = !opt->timeout_seconds;
	w->backoff_base_ms = opt->backoff_base_ms ? opt->backoff_base_ms : 250;
	w->backoff_max_ms = opt->backoff_max_ms ? opt->backoff_max_ms : 30000;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	w->rng = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)w;
	w->kube = cf_kube_new(opt->kube, err, errlen);
	if (!w->kube)
		goto fail;
	cf_kube_set_abort(w->kube, aborted, w);
	int rc = pthread_create(&w->thread, NULL, run, w);
	if (rc) {
		snprintf(err, errlen, "watch: cannot start thread: %s", strerror(rc));
		goto fail;
	}
	w->thread_started = true;
	return w;
fail:
	wh_watch_stop(w);
	return NULL;
}

void wh_watch_stop(wh_watch *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stopping, 1);
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->thread_started)
		pthread_join(w->thread, NULL);
	cf_kube_free(w->kube);
	wh_netpol_set_unref(w->pending);
	wh_netpol_set_unref(w->current);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void wh_watch_stats_get(wh_watch *w, wh_watch_stats *out)
{
	pthread_mutex_lock(&w->lock);
	*out = w->stats;
	pthread_mutex_unlock(&w->lock);
}
