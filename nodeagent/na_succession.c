/* na_succession.c - see na_succession.h. */
#include "na_succession.h"
#include "na_unixsock.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cf_limits.h"

#define REQUEST     "CFHANDOFF1\n"
#define REQUEST_LEN (sizeof REQUEST - 1)
#define ACK         "ACK1"
#define ACK_LEN     (sizeof ACK - 1)

struct header {
	char magic[8]; /* "CFHOVER1" */
	uint32_t n;
	uint32_t has_listener;
};

struct batch {
	uint32_t count;
	uint32_t reserved;
	struct {
		uint32_t len;
		uint32_t flags;
	} e[CF_SUCCESSION_BATCH_FDS];
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_io(int fd, short ev, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = ev};
		int rc = poll(&p, 1, (int)left);
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -errno;
	}
}

/* Sends len bytes; the fds (if any) ride on the first sendmsg. */
static int send_all(int conn, const void *data, size_t len, const int *fds, size_t nfds,
                    long long deadline)
{
	const char *p = data;
	size_t off = 0;
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * CF_SUCCESSION_BATCH_FDS)];
	} cbuf;
	while (off < len) {
		struct iovec iov = {.iov_base = (void *)(p + off), .iov_len = len - off};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		if (off == 0 && nfds > 0) {
			memset(&cbuf, 0, sizeof cbuf);
			msg.msg_control = cbuf.buf;
			msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		int rc = wait_io(conn, POLLOUT, deadline);
		if (rc < 0)
			return rc;
		ssize_t n = sendmsg(conn, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		off += (size_t)n;
	}
	return 0;
}

/* Reads exactly len bytes, collecting up to max_fds fds (more is -EPROTO). */
static int recv_all(int conn, void *data, size_t len, int *fds, size_t max_fds, size_t *nfds,
                    long long deadline)
{
	char *p = data;
	size_t off = 0;
	if (nfds)
		*nfds = 0;
	while (off < len) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int) * CF_SUCCESSION_BATCH_FDS)];
		} cbuf;
		struct iovec iov = {.iov_base = p + off, .iov_len = len - off};
		struct msghdr msg = {.msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = cbuf.buf,
		                     .msg_controllen = sizeof cbuf.buf};
		int rc = wait_io(conn, POLLIN, deadline);
		if (rc < 0)
			return rc;
		ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		int bad = (msg.msg_flags & MSG_CTRUNC) != 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
				if (nfds && *nfds < max_fds)
					fds[(*nfds)++] = fd;
				else {
					close(fd);
					bad = 1;
				}
			}
		}
		if (bad)
			return -EPROTO;
		if (n == 0)
			return -ECONNRESET;
		off += (size_t)n;
	}
	return 0;
}

void na_succession_set_free(na_succession_set *s)
{
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	for (size_t i = 0; i < s->n; i++) {
		if (s->entries[i].fd >= 0)
			close(s->entries[i].fd);
		free(s->entries[i].json);
	}
	free(s->entries);
	memset(s, 0, sizeof *s);
	s->listen_fd = -1;
}

int na_succession_connect(const char *path, int *conn_out, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	struct stat st;
	*conn_out = -1;
	if (na_unix_addr(&sun, path) < 0) {
		snprintf(err, errlen, "handoff socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	if (lstat(path, &st) < 0)
		return -ENOENT;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		int e = errno;
		close(fd);
		if (e == ECONNREFUSED) {
			unlink(path); /* a crashed agent's leftover */
			return -ENOENT;
		}
		snprintf(err, errlen, "connect %s: %s", path, strerror(e));
		return -e;
	}
	*conn_out = fd;
	return 0;
}

int na_succession_receive(int conn, na_succession_set *out, char *err, size_t errlen)
{
	long long deadline = now_ms() + CF_SUCCESSION_TIMEOUT_MS;
	struct header h;
	int lfd[1];
	size_t nl = 0;
	int rc;
	memset(out, 0, sizeof *out);
	out->listen_fd = -1;
	rc = send_all(conn, REQUEST, REQUEST_LEN, NULL, 0, deadline);
	if (rc < 0) {
		snprintf(err, errlen, "cannot send the handoff request: %s", strerror(-rc));
		return rc;
	}
	rc = recv_all(conn, &h, sizeof h, lfd, 1, &nl, deadline);
	if (nl == 1)
		out->listen_fd = lfd[0];
	if (rc < 0) {
		snprintf(err, errlen, "no handoff header from the running agent: %s",
		         strerror(-rc));
		goto fail;
	}
	if (memcmp(h.magic, "CFHOVER1", 8) != 0 || h.n > CF_SUCCESSION_MAX_CONTAINERS ||
	    (h.has_listener != 0) != (nl == 1)) {
		snprintf(err, errlen, "malformed handoff header from the running agent");
		rc = -EPROTO;
		goto fail;
	}
	if (h.n) {
		out->entries = calloc(h.n, sizeof *out->entries);
		if (!out->entries) {
			snprintf(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto fail;
		}
	}
	while (out->n < h.n) {
		struct batch b;
		int fds[CF_SUCCESSION_BATCH_FDS];
		size_t nf = 0;
		rc = recv_all(conn, &b, sizeof b, fds, CF_SUCCESSION_BATCH_FDS, &nf, deadline);
		size_t base = out->n;
		if (base + nf > h.n) { /* more fds than announced */
			for (size_t i = 0; i < nf; i++)
				close(fds[i]);
			nf = 0;
			if (rc == 0)
				rc = -EPROTO;
		}
		for (size_t i = 0; i < nf; i++) {
			out->entries[base + i].fd = fds[i];
			out->n++;
		}
		if (rc < 0) {
			snprintf(err, errlen, "handoff batch: %s", strerror(-rc));
			goto fail;
		}
		if (b.count == 0 || b.count > CF_SUCCESSION_BATCH_FDS || nf != b.count ||
		    base + b.count > h.n) {
			snprintf(err, errlen, "malformed handoff batch (%u entries, %zu fds)",
			         b.count, nf);
			rc = -EPROTO;
			goto fail;
		}
		for (size_t i = 0; i < b.count; i++) {
			na_succession_entry *e = &out->entries[base + i];
			if (b.e[i].len == 0 || b.e[i].len > CF_HANDOFF_MAX_BYTES) {
				snprintf(err, errlen, "handoff entry of %u bytes", b.e[i].len);
				rc = -E2BIG;
				goto fail;
			}
			e->flags = b.e[i].flags;
			e->json_len = b.e[i].len;
			e->json = malloc(e->json_len + 1);
			if (!e->json) {
				snprintf(err, errlen, "out of memory");
				rc = -ENOMEM;
				goto fail;
			}
			rc = recv_all(conn, e->json, e->json_len, NULL, 0, NULL, deadline);
			if (rc < 0) {
				snprintf(err, errlen, "handoff entry: %s", strerror(-rc));
				goto fail;
			}
			e->json[e->json_len] = '\0';
		}
	}
	return 0;
fail:
	/* Entries past n were never filled: their fd fields are 0 from calloc
	 * and must not be closed. */
	na_succession_set_free(out);
	return rc;
}

int na_succession_ack(int conn, char *err, size_t errlen)
{
	long long deadline = now_ms() + CF_SUCCESSION_TIMEOUT_MS;
	int rc = send_all(conn, ACK, ACK_LEN, NULL, 0, deadline);
	if (rc < 0) {
		snprintf(err, errlen, "cannot acknowledge the handoff: %s", strerror(-rc));
		return rc;
	}
	/* The old agent closes the connection as its last act. */
	char c;
	rc = recv_all(conn, &c, 1, NULL, 0, NULL, deadline);
	if (rc == -ECONNRESET)
		return 0;
	snprintf(err, errlen, "the old agent did not stop after the handoff: %s",
	         rc < 0 ? strerror(-rc) : "unexpected data");
	return rc < 0 ? rc : -EPROTO;
}

int na_succession_read_request(int conn, char *err, size_t errlen)
{
	char buf[REQUEST_LEN];
	int rc = recv_all(conn, buf, sizeof buf, NULL, 0, NULL, now_ms() + CF_HANDOFF_TIMEOUT_MS);
	if (rc < 0) {
		snprintf(err, errlen, "handoff request: %s", strerror(-rc));
		return rc;
	}
	if (memcmp(buf, REQUEST, REQUEST_LEN) != 0) {
		snprintf(err, errlen, "not a handoff request");
		return -EPROTO;
	}
	return 0;
}

int na_succession_send(int conn, int listen_fd, const na_succession_entry *entries, size_t n,
                       char *err, size_t errlen)
{
	long long deadline = now_ms() + CF_SUCCESSION_TIMEOUT_MS;
	struct header h;
	memset(&h, 0, sizeof h);
	memcpy(h.magic, "CFHOVER1", 8);
	h.n = (uint32_t)n;
	h.has_listener = listen_fd >= 0;
	int rc = send_all(conn, &h, sizeof h, &listen_fd, listen_fd >= 0 ? 1 : 0, deadline);
	for (size_t i = 0; rc == 0 && i < n; i += CF_SUCCESSION_BATCH_FDS) {
		struct batch b;
		int fds[CF_SUCCESSION_BATCH_FDS];
		memset(&b, 0, sizeof b);
		size_t k = n - i < CF_SUCCESSION_BATCH_FDS ? n - i : CF_SUCCESSION_BATCH_FDS;
		b.count = (uint32_t)k;
		for (size_t j = 0; j < k; j++) {
			b.e[j].len = (uint32_t)entries[i + j].json_len;
			b.e[j].flags = entries[i + j].flags;
			fds[j] = entries[i + j].fd;
		}
		rc = send_all(conn, &b, sizeof b, fds, k, deadline);
		for (size_t j = 0; rc == 0 && j < k; j++)
			rc = send_all(conn, entries[i + j].json, entries[i + j].json_len, NULL, 0,
			              deadline);
	}
	if (rc < 0)
		snprintf(err, errlen, "sending the handoff: %s", strerror(-rc));
	return rc;
}

int na_succession_wait_ack(int conn, char *err, size_t errlen)
{
	char buf[ACK_LEN];
	int rc =
	    recv_all(conn, buf, sizeof buf, NULL, 0, NULL, now_ms() + CF_SUCCESSION_TIMEOUT_MS);
	if (rc == 0 && memcmp(buf, ACK, ACK_LEN) != 0)
		rc = -EPROTO;
	if (rc < 0)
		snprintf(err, errlen, "no acknowledgement from the successor: %s", strerror(-rc));
	return rc;
}

int na_succession_listen(const char *path, char *err, size_t errlen)
{
	return na_unix_listen(path, (gid_t)-1, 4, "handoff socket", NULL, err, errlen);
}
