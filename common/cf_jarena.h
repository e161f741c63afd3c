/*
 * cf_jarena.h - a per-thread bump arena for the cJSON tree of one parsed
 * document (an AdmissionReview), so that parsing a 4 KB review is not a
 * few hundred malloc/free pairs on the request path.
 *
 * cJSON allocates through process-wide hooks with no context argument.
 * cf_jarena_install() points them at functions that allocate from the
 * calling thread's arena while that thread is inside cf_jarena_begin/end
 * (a parse), and from malloc otherwise; freeing an arena block is a no-op
 * (the arena is rewound when no tree from it is alive any more), anything
 * else goes to free(). A document that does not fit in the arena
 * (CF_JARENA_BYTES) continues in malloc'd memory, so size limits are
 * unchanged. Without cf_jarena_install() every function here does nothing
 * and cJSON uses malloc as usual.
 *
 * Rules for users: a tree (or any part of it) allocated inside begin/end
 * is freed with cJSON_Delete on the same thread, followed by
 * cf_jarena_release(); it is never kept after that (copy with
 * cJSON_Duplicate outside begin/end if it must be). Trees built outside
 * begin/end may be freed anywhere as before.
 *
 * Thread-safety: install once before threads use cJSON; everything else
 * acts on the calling thread's arena only. Ownership: each thread's arena
 * block is freed when the thread exits.
 */
#ifndef CF_JARENA_H
#define CF_JARENA_H

#include <stdbool.h>
#include <stddef.h>

/* Per-thread arena size: a typical AdmissionReview tree is ~30 KB. */
#define CF_JARENA_BYTES (128u * 1024u)

/* What cJSON_malloc does (the installed hook: the arena inside begin/end,
 * malloc otherwise; plain malloc before cf_jarena_install), as a direct
 * call, for code that builds cJSON nodes itself (cf_jparse). Free with
 * cJSON_free or cJSON_Delete as usual. */
void *cf_jarena_alloc(size_t n);
/* n bytes from the arena, or NULL when they cannot come from it (outside
 * begin/end, not installed, or no room): memory whose blocks may be
 * pointed into, since freeing an arena pointer is a no-op. */
void *cf_jarena_try_alloc(size_t n);

/* Installs the cJSON hooks (idempotent). 0 or -ENOMEM. */
int cf_jarena_install(void);
bool cf_jarena_installed(void);
/* Allocations of cJSON on this thread come from the arena until _end.
 * The arena is rewound first if no tree from it is alive. */
void cf_jarena_begin(void);
/* kept: the parse produced a tree that is still alive. Returns true when
 * that tree lives (partly) in the arena: call cf_jarena_release once it has
 * been deleted. *whole (may be NULL) tells whether every allocation since
 * begin came from the arena: then, as long as nothing was attached to the
 * tree since, cJSON_Delete of it would free nothing and may be skipped. */
bool cf_jarena_end(bool kept, bool *whole);
/* A tree for which cf_jarena_end returned true has been deleted (or, when
 * whole, is no longer used). */
void cf_jarena_release(void);

#endif
