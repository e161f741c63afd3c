/*
 * cf_buf.h - growable byte buffer with a hard size limit, bounded file
 * reading on top of it, and the doubling step of growable arrays (cf_grow).
 *
 * Purpose: every reader of untrusted bytes (files, stdin, HTTP bodies, watch
 * streams) accumulates into a cf_buf whose limit is one of cf_limits.h, so
 * "too big" is decided in one place and reported as -E2BIG.
 * Thread-safety: a cf_buf is not shared; callers serialise access.
 * Ownership: the buffer owns `data`; cf_buf_steal hands it to the caller.
 * `data` is always NUL-terminated (not counted in `len`) once anything has
 * been appended, so text can be passed to parsers directly.
 */
#ifndef CF_BUF_H
#define CF_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct cf_buf {
	char *data;
	size_t len;
	size_t cap;
	size_t limit; /* maximum len; 0 means no limit */
} cf_buf;

void cf_buf_init(cf_buf *b, size_t limit);
void cf_buf_free(cf_buf *b);
void cf_buf_reset(cf_buf *b);
/* 0, -E2BIG when len would pass the limit (nothing appended), -ENOMEM. */
int cf_buf_append(cf_buf *b, const void *data, size_t n);
int cf_buf_append_str(cf_buf *b, const char *s);
int cf_buf_appendf(cf_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cf_buf_vappendf(cf_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Returns the NUL-terminated data (never NULL; "" when empty) and leaves the
 * buffer empty; the caller frees the result. NULL only on allocation failure. */
char *cf_buf_steal(cf_buf *b);

/* Copies src into dst[dstlen] (dstlen > 0), cut short if need be and always
 * NUL-terminated; returns strlen(src), so a result >= dstlen means it was
 * cut. What snprintf(dst, dstlen, "%s", src) does, without the formatting
 * machinery (a request path copies a few names per admission). */
size_t cf_str_copy(char *dst, size_t dstlen, const char *src);

/* Reads a whole file ("-" means standard input) into `out` (initialised
 * here with `limit`). Errors: -ENOENT, -EACCES, -EISDIR, -E2BIG (file larger
 * than limit; decided from st_size for regular files before reading), other
 * -errno. `err` receives a message naming the path. */
int cf_read_file(const char *path, size_t limit, cf_buf *out, char *err, size_t errlen);
/* Reads fd to EOF into `out` (already initialised), respecting its limit. */
int cf_read_fd(int fd, cf_buf *out);

/* Growable arrays: returns `items` (capacity *cap items of `item_size`
 * bytes) reallocated to hold at least `need` items, the capacity doubled
 * (CF_GROW_FIRST_CAP at first) and stored in *cap. NULL when the size
 * would overflow or memory is short; `items` and *cap are then unchanged
 * and still owned by the caller. Typical use:
 *   if (n == cap) { T *v = cf_grow(a, &cap, n + 1, sizeof *v);
 *                   if (!v) return -ENOMEM; a = v; } */
#define CF_GROW_FIRST_CAP 16u
void *cf_grow(void *items, size_t *cap, size_t need, size_t item_size);

#endif
