/*
 * wh_watch.h - the live NetworkPolicy cache: list, then watch,
 * networking.k8s.io/v1 NetworkPolicies in all namespaces and publish each
 * state as a wh_netpol_set snapshot into a wh_npcache.
 *
 * Behaviour (as client-go's reflector does it):
 * - List (/apis/networking.k8s.io/v1/networkpolicies, in pages of
 *   CF_KUBE_LIST_PAGE_ITEMS with `continue`), build a complete set, publish
 *   it (the cache becomes synced: /readyz turns true), remember the list's
 *   metadata.resourceVersion.
 * - Watch from that resourceVersion with allowWatchBookmarks=true and
 *   timeoutSeconds. Events are applied copy-on-write: the current set is
 *   cloned once per batch of events that arrived together, the events are
 *   applied, and the clone is published. Admission threads never wait.
 * - 410 Gone (an HTTP 410, or an ERROR event whose Status code is 410) means
 *   the resourceVersion is too old: relist. A stream the server ends
 *   normally is resumed at once from the last resourceVersion seen
 *   (bookmarks advance it). A failed request or a stream cut mid-event is
 *   retried with exponential backoff and jitter, from the last
 *   resourceVersion; a malformed event relists.
 * - Only NetworkPolicies are watched. A policy the engine cannot read is
 *   logged and left out (a missing policy can only deny, never admit).
 *
 * The stream parser is exposed for tests: newline-delimited JSON, one
 * event per line, an event may arrive in any number of pieces and a piece
 * may hold any number of events; a line is bounded by
 * CF_KUBE_MAX_WATCH_EVENT_BYTES.
 *
 * Thread-safety: wh_watch_start runs the watch in its own thread;
 * wh_watch_stats_get may be called from any thread; wh_watch_stop from the
 * thread that started it. A parser is used by one thread.
 * Ownership: the watch copies the kube config, borrows the cache (which
 * must outlive it) and holds its own reference to the last set it built.
 */
#ifndef WH_WATCH_H
#define WH_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "cf_buf.h"
#include "cf_kube.h"
#include "wh_npcache.h"

#define WH_WATCH_NETPOL_PATH "/apis/networking.k8s.io/v1/networkpolicies"

/* ---- stream parser ---------------------------------------------------- */

/* Called for each complete event: `type` is the event's type string and
 * `object` its object (a JSON object). Return 0 to go on; anything else
 * stops the feed and is returned by wh_watch_parser_feed. */
typedef int (*wh_watch_event_fn)(void *ud, const char *type, const cJSON *object);

typedef struct wh_watch_parser {
	cf_buf line; /* the incomplete event so far */
	size_t max_line;
	wh_watch_event_fn fn;
	void *ud;
	unsigned long events;
} wh_watch_parser;

void wh_watch_parser_init(wh_watch_parser *p, size_t max_line, wh_watch_event_fn fn, void *ud);
void wh_watch_parser_free(wh_watch_parser *p);
/* Drops a partial event (after a reconnect). */
void wh_watch_parser_reset(wh_watch_parser *p);
/* Feeds bytes. 0, the callback's value, -E2BIG (an event longer than
 * max_line), -EPROTO (not JSON, or not {"type": string, "object": object}),
 * -ENOMEM; `err` says which. After an error the parser must be reset. */
int wh_watch_parser_feed(wh_watch_parser *p, const char *data, size_t len, char *err,
                         size_t errlen);
/* Bytes of an incomplete event held. */
size_t wh_watch_parser_pending(const wh_watch_parser *p);

/* ---- the watch -------------------------------------------------------- */

typedef struct wh_watch_options {
	const cf_kube_config *kube; /* copied */
	wh_npcache *cache;          /* borrowed */
	unsigned timeout_seconds;   /* watch timeoutSeconds; 0: random in [300, 600] */
	unsigned backoff_base_ms;   /* 0: 250 */
	unsigned backoff_max_ms;    /* 0: 30000 */
} wh_watch_options;

typedef struct wh_watch_stats {
	bool synced;            /* the first list was published */
	unsigned long lists;    /* complete lists (the first and every relist) */
	unsigned long watches;  /* watch requests started */
	unsigned long events;   /* events applied (bookmarks included) */
	unsigned long errors;   /* failed lists or watches */
	unsigned long relists;  /* 410 Gone handled */
	unsigned long policies; /* policies in the current set */
	char resource_version[128];
	char last_error[1024];
} wh_watch_stats;

typedef struct wh_watch wh_watch;

/* Starts the watch thread. NULL with `err` when the client cannot be built
 * or the thread cannot start; API errors happen later, are logged,
 * retried, and show in the stats. */
wh_watch *wh_watch_start(const wh_watch_options *opt, char *err, size_t errlen);
/* Stops the thread (a blocked request is aborted within about a second)
 * and frees the watch. NULL is fine. */
void wh_watch_stop(wh_watch *w);
void wh_watch_stats_get(wh_watch *w, wh_watch_stats *out);

#endif
