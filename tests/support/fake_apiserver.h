/*
 * fake_apiserver.h - an in-process Kubernetes API server for tests
 * (libmicrohttpd over TLS) that answers the way kube-apiserver does:
 *
 * - Resources are addressed like the real API: /api/v1/... and
 *   /apis/GROUP/VERSION/..., cluster-wide (/apis/G/V/RESOURCE), per
 *   namespace (/apis/G/V/namespaces/NS/RESOURCE) and per object
 *   (.../RESOURCE/NAME). Any resource works; the store is generic.
 * - A small in-memory object store with one global resourceVersion counter:
 *   every create/update/delete bumps it and is recorded in an event log.
 * - GET on a collection lists (kind <Kind>List, metadata.resourceVersion,
 *   items without kind/apiVersion as the real server sends them; `limit` and
 *   `continue` paginate); `?watch=1` streams newline-delimited JSON events
 *   {"type":..., "object":...} over chunked encoding from `resourceVersion`
 *   (absent or "0": synthetic ADDED for every object first), honouring
 *   `allowWatchBookmarks` (BOOKMARK objects carry only kind, apiVersion and
 *   metadata.resourceVersion) and `timeoutSeconds`. A resourceVersion older
 *   than the last compaction gets 200 and an ERROR event with a 410 Status
 *   ("too old resource version"), as the real server does.
 * - POST creates (409 AlreadyExists), PUT updates (409 Conflict on a stale
 *   metadata.resourceVersion, 404 when missing), PATCH applies a JSON merge
 *   patch (application/merge-patch+json) or an RFC 6902 JSON patch
 *   (application/json-patch+json: add, replace, remove, test; a failed test
 *   or a missing path is 422 Invalid, a malformed patch 400, as the real
 *   server answers), DELETE deletes; errors are Status objects with code,
 *   reason and message. Secrets and ValidatingWebhookConfigurations are
 *   plain objects of this store like any other.
 * - Authentication: `Authorization: Bearer <token>` equal to the configured
 *   token, or a client certificate signed by the test CA; otherwise 401.
 * - Scripted faults, consumed in order by the next matching request: a watch
 *   stream cut in the middle of an event, a slow watch (each event delivered
 *   a few bytes at a time), an HTTP 410 on watch, an ERROR 410 event, a 500
 *   on list, a 409 Conflict on update.
 *
 * Thread-safety: all functions may be called from the test thread while
 * the server's threads serve requests (one lock guards the store).
 * Ownership: fake_apiserver_stop frees everything; objects passed in are
 * copied.
 */
#ifndef FAKE_APISERVER_H
#define FAKE_APISERVER_H

#include <stddef.h>

#include "fake_ca.h"

typedef struct fake_apiserver fake_apiserver;

typedef enum fake_fault {
	FAKE_FAULT_WATCH_CUT = 1,    /* next watch: cut the connection halfway through an event */
	FAKE_FAULT_WATCH_SLOW,       /* next watch: events in pieces of 1-3 bytes */
	FAKE_FAULT_WATCH_GONE_HTTP,  /* next watch: HTTP 410 Status */
	FAKE_FAULT_WATCH_EXPIRED,    /* next watch: 200, then an ERROR event with code 410 */
	FAKE_FAULT_LIST_500,         /* next list: HTTP 500 */
	FAKE_FAULT_UPDATE_CONFLICT,  /* next PUT/PATCH: 409 Conflict */
	FAKE_FAULT_CONTINUE_EXPIRED, /* next list page with `continue`: 410 Expired */
} fake_fault;

typedef struct fake_apiserver_stats {
	unsigned requests, lists, watches, unauthorized, watch_events_sent;
	unsigned watches_active;
	unsigned json_patches; /* JSON patches applied */
	/* The query of the latest watch request. */
	char last_watch_rv[64];
	int last_watch_bookmarks; /* allowWatchBookmarks=true seen */
	char last_list_continue[128];
} fake_apiserver_stats;

/* Listens on 127.0.0.1 (ephemeral port) with ca's server certificate,
 * accepting `token` (NULL: bearer tokens never accepted) and client
 * certificates signed by ca. NULL with `err` on failure. */
fake_apiserver *fake_apiserver_start(const fake_ca *ca, const char *token, char *err,
                                     size_t errlen);
/* Ends every stream and stops the server. */
void fake_apiserver_stop(fake_apiserver *fs);
const char *fake_apiserver_url(const fake_apiserver *fs); /* "https://127.0.0.1:PORT" */
unsigned short fake_apiserver_port(const fake_apiserver *fs);
void fake_apiserver_set_token(fake_apiserver *fs, const char *token);

/* Creates or replaces an object (JSON text with metadata.name and, for a
 * namespaced resource, metadata.namespace) in `collection`, e.g.
 * "/apis/networking.k8s.io/v1/networkpolicies". Records ADDED or
 * MODIFIED. Returns the new resourceVersion, or -errno. */
long fake_apiserver_put(fake_apiserver *fs, const char *collection, const char *json);
/* Deletes namespace/name (ns "" for cluster-scoped); records DELETED.
 * Returns the new resourceVersion, -ENOENT when absent. */
long fake_apiserver_delete(fake_apiserver *fs, const char *collection, const char *ns,
                           const char *name);
/* Records a BOOKMARK at the current resourceVersion for `collection`. */
void fake_apiserver_bookmark(fake_apiserver *fs, const char *collection);
/* Records a raw line (without its newline) that open and future watches
 * of `collection` deliver verbatim as their next event: garbage, unknown
 * types, ERROR events with other codes. No resourceVersion is used up. */
void fake_apiserver_inject_raw(fake_apiserver *fs, const char *collection, const char *line);
/* Forgets the event history: a watch from an older resourceVersion gets 410. */
void fake_apiserver_compact(fake_apiserver *fs);
/* Ends every open watch stream cleanly (as timeoutSeconds would). */
void fake_apiserver_end_watches(fake_apiserver *fs);
/* An outage or an RBAC refusal: every request whose URL contains
 * `path_part` (NULL or "": every request) is answered with `status` (403
 * Forbidden, or e.g. 503), before authentication. 0 ends it. */
void fake_apiserver_set_down(fake_apiserver *fs, int status, const char *path_part);
void fake_apiserver_add_fault(fake_apiserver *fs, fake_fault f);
long fake_apiserver_resource_version(fake_apiserver *fs);
/* A copy of the stored object (caller frees), or NULL. */
char *fake_apiserver_get(fake_apiserver *fs, const char *collection, const char *ns,
                         const char *name);
void fake_apiserver_stats_get(fake_apiserver *fs, fake_apiserver_stats *out);

#endif
