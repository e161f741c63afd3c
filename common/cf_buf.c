/* cf_buf.c - see cf_buf.h. */
#include "cf_buf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cf_buf_init(cf_buf *b, size_t limit)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->limit = limit;
}

void cf_buf_free(cf_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void cf_buf_reset(cf_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int reserve(cf_buf *b, size_t extra)
{
	if (b->limit && (extra > b->limit || b->len > b->limit - extra))
		return -E2BIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need) {
		if (cap > ((size_t)-1) / 2)
			return -ENOMEM;
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int cf_buf_append(cf_buf *b, const void *data, size_t n)
{
	int rc = reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int cf_buf_append_str(cf_buf *b, const char *s)
{
	return cf_buf_append(b, s, strlen(s));
}

int cf_buf_vappendf(cf_buf *b, const char *fmt, va_list ap)
{
	va_list copy;
	va_copy(copy, ap);
	int n = vsnprintf(NULL, 0, fmt, copy);
	va_end(copy);
	if (n < 0)
		return -EINVAL;
	int rc = reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int cf_buf_appendf(cf_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = cf_buf_vappendf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *cf_buf_steal(cf_buf *b)
{
	char *p = b->data;
	if (!p)
		p = calloc(1, 1);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}

int cf_read_fd(int fd, cf_buf *out)
{
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		int rc = cf_buf_append(out, chunk, (size_t)n);
		if (rc)
			return rc;
	}
	/* An empty input still yields a NUL-terminated string. */
	return cf_buf_append(out, "", 0);
}

int cf_read_file(const char *path, size_t limit, cf_buf *out, char *err, size_t errlen)
{
	cf_buf_init(out, limit);
	int fd = 0;
	int rc;
	if (strcmp(path, "-") != 0) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-rc));
			return rc;
		}
		struct stat st;
		if (fstat(fd, &st) == 0) {
			if (S_ISDIR(st.st_mode)) {
				close(fd);
				snprintf(err, errlen, "%s: is a directory", path);
				return -EISDIR;
			}
			if (S_ISREG(st.st_mode) && limit && (size_t)st.st_size > limit) {
				close(fd);
				snprintf(err, errlen,
				         "%s: file is %lld bytes, over the limit of %zu", path,
				         (long long)st.st_size, limit);
				return -E2BIG;
			}
		}
	}
	rc = cf_read_fd(fd, out);
	if (fd != 0)
		close(fd);
	if (rc == -E2BIG)
		snprintf(err, errlen, "%s: input is over the limit of %zu bytes", path, limit);
	else if (rc)
		snprintf(err, errlen, "%s: read failed: %s", path, strerror(-rc));
	if (rc)
		cf_buf_free(out);
	return rc;
}

void *cf_grow(void *items, size_t *cap, size_t need, size_t item_size)
{
	if (need <= *cap && items)
		return items;
	size_t n = *cap ? *cap : CF_GROW_FIRST_CAP;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return NULL;
		n *= 2;
	}
	if (item_size && n > SIZE_MAX / item_size)
		return NULL;
	void *p = realloc(items, n * item_size);
	if (p)
		*cap = n;
	return p;
}

size_t cf_str_copy(char *dst, size_t dstlen, const char *src)
{
	size_t n = strlen(src);
	size_t k = n < dstlen ? n : dstlen - 1;
	memcpy(dst, src, k);
	dst[k] = '\0';
	return n;
}
