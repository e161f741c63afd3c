/*
 * wh_npcache.h - the current NetworkPolicy snapshot the admission threads
 * read, whatever its source (`--network-policies` files, or the live watch).
 *
 * A writer builds a complete wh_netpol_set and publishes it; readers
 * acquire a reference to the current set, evaluate, and release it. No
 * reader ever waits on network I/O: acquire only takes a short mutex to
 * bump a reference count.
 * Before the first publish the cache is "not synced" and acquire returns
 * NULL (wh_policy_evaluate treats NULL as not synced).
 * Thread-safety: all functions are safe from any thread.
 * Ownership: publish takes over the caller's reference; acquire returns a
 * reference the caller drops with wh_netpol_set_unref.
 */
#ifndef WH_NPCACHE_H
#define WH_NPCACHE_H

#include <stdbool.h>

#include "wh_netpol.h"

typedef struct wh_npcache wh_npcache;

wh_npcache *wh_npcache_new(void);
void wh_npcache_free(wh_npcache *c);
/* Replaces the current set with `set` (reference taken over) and marks the
 * cache synced. */
void wh_npcache_publish(wh_npcache *c, wh_netpol_set *set);
/* A reference to the current set, or NULL when never synced. */
wh_netpol_set *wh_npcache_acquire(wh_npcache *c);
bool wh_npcache_synced(wh_npcache *c);

#endif
