/* cf_jarena.c - see cf_jarena.h. */
#include "cf_jarena.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

typedef struct arena {
	char *base;    /* CF_JARENA_BYTES, or NULL until first used */
	size_t used;   /* bytes handed out since the last rewind */
	unsigned live; /* kept trees not yet released */
	bool active;   /* inside begin/end */
	bool spilled;  /* an allocation inside begin/end came from malloc */
} arena;

static _Thread_local arena th;
static bool installed;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key; /* frees a thread's block when it exits */

static void free_block(void *p)
{
	free(p);
}

static bool in_arena(const void *p)
{
	uintptr_t a = (uintptr_t)p, b = (uintptr_t)th.base;
	return th.base && a >= b && a < b + CF_JARENA_BYTES;
}

void *cf_jarena_try_alloc(size_t n)
{
	if (th.active && th.base) {
		size_t need = (n + 15u) & ~(size_t)15u; /* malloc's alignment */
		if (need >= n && need <= CF_JARENA_BYTES - th.used) {
			void *p = th.base + th.used;
			th.used += need;
			return p;
		}
	}
	return NULL;
}

void *cf_jarena_alloc(size_t n)
{
	void *p = cf_jarena_try_alloc(n);
	if (p)
		return p;
	if (th.active)
		th.spilled = true;
	return malloc(n);
}

static void hook_free(void *p)
{
	if (!in_arena(p))
		free(p);
}

static void init_once(void)
{
	if (pthread_key_create(&exit_key, free_block) != 0)
		return;
	cJSON_Hooks h = {.malloc_fn = cf_jarena_alloc, .free_fn = hook_free};
	cJSON_InitHooks(&h);
	installed = true;
}

int cf_jarena_install(void)
{
	pthread_once(&once, init_once);
	return installed ? 0 : -ENOMEM;
}

bool cf_jarena_installed(void)
{
	return installed;
}

void cf_jarena_begin(void)
{
	if (!installed)
		return;
	if (!th.base) {
		th.base = malloc(CF_JARENA_BYTES);
		if (!th.base)
			return; /* plain malloc for this thread, maybe next time */
		if (pthread_setspecific(exit_key, th.base) != 0) {
			free(th.base);
			th.base = NULL;
			return;
		}
	}
	if (th.live == 0)
		th.used = 0;
	th.active = true;
	th.spilled = false;
}

bool cf_jarena_end(bool kept, bool *whole)
{
	if (whole)
		*whole = false;
	if (!th.active)
		return false;
	th.active = false;
	if (whole)
		*whole = !th.spilled;
	if (kept)
		th.live++;
	return kept;
}

void cf_jarena_release(void)
{
	if (th.live)
		th.live--;
}
