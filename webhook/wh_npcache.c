/* wh_npcache.c - see wh_npcache.h. A mutex rather than an atomic pointer:
 * the reference bump must happen before a concurrent publish can drop the
 * last reference, and the critical section is a few instructions. */
#include "wh_npcache.h"

#include <pthread.h>
#include <stdlib.h>

struct wh_npcache {
	pthread_mutex_t lock;
	wh_netpol_set *current;
};

wh_npcache *wh_npcache_new(void)
{
	wh_npcache *c = calloc(1, sizeof *c);
	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

void wh_npcache_free(wh_npcache *c)
{
	if (!c)
		return;
	wh_netpol_set_unref(c->current);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void wh_npcache_publish(wh_npcache *c, wh_netpol_set *set)
{
	pthread_mutex_lock(&c->lock);
	wh_netpol_set *old = c->current;
	c->current = set;
	pthread_mutex_unlock(&c->lock);
	wh_netpol_set_unref(old);
}

wh_netpol_set *wh_npcache_acquire(wh_npcache *c)
{
	pthread_mutex_lock(&c->lock);
	wh_netpol_set *set = c->current ? wh_netpol_set_ref(c->current) : NULL;
	pthread_mutex_unlock(&c->lock);
	return set;
}

bool wh_npcache_synced(wh_npcache *c)
{
	pthread_mutex_lock(&c->lock);
	bool synced = c->current != NULL;
	pthread_mutex_unlock(&c->lock);
	return synced;
}
