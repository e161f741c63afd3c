/* na_listener.c - see na_listener.h. */
#include "na_listener.h"
#include "na_unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cf_buf.h"

struct na_listener {
	int fd;
	dev_t dev; /* identity of the socket inode we bound, so close never */
	ino_t ino; /* unlinks a successor's socket */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* An existing path: 0 when it may be replaced (absent, or a socket nobody
 * accepts on), else -errno with a message. */
static int check_existing(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		int e = errno;
		snprintf(err, errlen, "cannot inspect %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; refusing to replace it",
		         path);
		return -EEXIST;
	}
	struct sockaddr_un sun;
	na_unix_addr(&sun, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		int e = errno;
		snprintf(err, errlen, "socket: %s", strerror(e));
		return -e;
	}
	int rc = connect(s, (struct sockaddr *)&sun, sizeof sun);
	int e = errno;
	close(s);
	if (rc == 0) {
		snprintf(err, errlen, "another agent is listening on %s", path);
		return -EADDRINUSE;
	}
	if (e == ECONNREFUSED)
		return 0; /* stale: bound by a process that is gone */
	snprintf(err, errlen, "cannot probe existing socket %s: %s", path, strerror(e));
	return -e;
}

static int ensure_parent(const char *path, char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return 0;
	size_t n = (size_t)(slash - path);
	memcpy(dir, path, n);
	dir[n] = '\0';
	if (mkdir(dir, 0755) == 0 || errno == EEXIST)
		return 0;
	int e = errno;
	snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(e));
	return -e;
}

na_listener *na_listener_open(const char *path, gid_t group, char *err, size_t errlen)
{
	if (!path || path[0] != '/') {
		snprintf(err, errlen, "socket path must be absolute: \"%s\"", path ? path : "");
		return NULL;
	}
	na_listener *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (strlen(path) >= sizeof l->path) {
		snprintf(err, errlen, "socket path too long: %s", path);
		goto fail;
	}
	memcpy(l->path, path, strlen(path) + 1);
	if (ensure_parent(path, err, errlen) < 0 || check_existing(path, err, errlen) < 0)
		goto fail;
	struct stat st;
	l->fd = na_unix_listen(path, group, SOMAXCONN, "runtime socket", &st, err, errlen);
	if (l->fd < 0)
		goto fail;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return l;
fail:
	free(l);
	return NULL;
}

int na_listener_fd(const na_listener *l)
{
	return l->fd;
}

const char *na_listener_path(const na_listener *l)
{
	return l->path;
}

na_listener *na_listener_adopt(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	na_listener *l = calloc(1, sizeof *l);
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (strlen(path) >= sizeof l->path || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "the handed-over socket is no longer at %s", path);
		free(l);
		return NULL;
	}
	memcpy(l->path, path, strlen(path) + 1);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "handed-over socket: %s", strerror(errno));
		free(l);
		return NULL;
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return l;
}

int na_listener_release(na_listener *l)
{
	int fd = l->fd;
	free(l);
	return fd;
}

void na_listener_close(na_listener *l)
{
	struct stat st;
	if (!l)
		return;
	if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->path);
	close(l->fd);
	free(l);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fds(na_handoff *h)
{
	for (size_t i = 0; i < h->n_fds; i++)
		if (h->fds[i] >= 0)
			close(h->fds[i]);
	h->n_fds = 0;
}

/* Collects SCM_RIGHTS fds from one message into h. -E2BIG past the limit
 * (all fds of the message are closed in that case). */
static int collect_fds(struct msghdr *msg, na_handoff *h)
{
	int rc = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, fds + i, sizeof fd);
			if (rc == 0 && h->n_fds < CF_HANDOFF_MAX_FDS)
				h->fds[h->n_fds++] = fd;
			else {
				rc = -E2BIG;
				close(fd);
			}
		}
	}
	return rc;
}

/* Tracks whether the bytes seen so far form one complete JSON object:
 * runc 1.1 sends the state in one message but keeps its end of the
 * connection open while the container runs, so EOF cannot be the only end
 * marker. Strings (with escapes) are skipped so braces inside them do not
 * count. */
struct json_scan {
	int depth;
	bool started, in_string, escape, complete;
};

static void json_scan_feed(struct json_scan *js, const char *p, size_t n)
{
	for (size_t i = 0; i < n && !js->complete; i++) {
		char ch = p[i];
		if (js->in_string) {
			if (js->escape)
				js->escape = false;
			else if (ch == '\\')
				js->escape = true;
			else if (ch == '"')
				js->in_string = false;
			continue;
		}
		if (ch == '"') {
			js->in_string = true;
		} else if (ch == '{' || ch == '[') {
			js->depth++;
			js->started = true;
		} else if (ch == '}' || ch == ']') {
			js->depth--;
			if (js->started && js->depth <= 0)
				js->complete = true;
		}
	}
}

int na_handoff_recv(int conn, uid_t required_uid, int timeout_ms, na_handoff *out, char *err,
                    size_t errlen)
{
	cf_buf b;
	int rc;
	memset(out, 0, sizeof *out);
	cf_buf_init(&b, CF_HANDOFF_MAX_BYTES);
	struct ucred cred;
	socklen_t clen = sizeof cred;
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		rc = -errno;
		snprintf(err, errlen, "SO_PEERCRED: %s", strerror(-rc));
		goto fail;
	}
	out->peer_pid = cred.pid;
	out->peer_uid = cred.uid;
	if (required_uid != (uid_t)-1 && cred.uid != required_uid) {
		snprintf(err, errlen,
		         "handoff from uid %u (pid %d) refused: only uid %u may connect",
		         (unsigned)cred.uid, (int)cred.pid, (unsigned)required_uid);
		rc = -EPERM;
		goto fail;
	}
	long long deadline = now_ms() + timeout_ms;
	struct json_scan js = {0};
	while (!(js.complete && out->n_fds > 0)) {
		char data[16384];
		union {
			char buf[CMSG_SPACE(sizeof(int) * CF_HANDOFF_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
		struct msghdr msg = {.msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = ctl.buf,
		                     .msg_controllen = sizeof ctl.buf};
		ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				rc = -errno;
				snprintf(err, errlen, "recvmsg: %s", strerror(-rc));
				goto fail;
			}
			long long left = deadline - now_ms();
			if (left <= 0) {
				rc = -ETIMEDOUT;
				snprintf(err, errlen, "handoff not complete within %d ms",
				         timeout_ms);
				goto fail;
			}
			struct pollfd p = {.fd = conn, .events = POLLIN};
			if (poll(&p, 1, (int)left) < 0 && errno != EINTR) {
				rc = -errno;
				snprintf(err, errlen, "poll: %s", strerror(-rc));
				goto fail;
			}
			continue;
		}
		rc = collect_fds(&msg, out);
		if (rc < 0) {
			snprintf(err, errlen, "handoff carries more than %u fds",
			         CF_HANDOFF_MAX_FDS);
			goto fail;
		}
		if (msg.msg_flags & MSG_CTRUNC) {
			rc = -EPROTO;
			snprintf(err, errlen, "handoff control data truncated");
			goto fail;
		}
		if (n == 0)
			break;
		rc = cf_buf_append(&b, data, (size_t)n);
		if (rc < 0) {
			snprintf(err, errlen, "handoff larger than %u bytes", CF_HANDOFF_MAX_BYTES);
			goto fail;
		}
		json_scan_feed(&js, data, (size_t)n);
	}
	if (out->n_fds == 0) {
		rc = -EPROTO;
		snprintf(err, errlen, "handoff carries no fd");
		goto fail;
	}
	out->len = b.len;
	out->json = cf_buf_steal(&b);
	if (!out->json) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return 0;
fail:
	cf_buf_free(&b);
	close_fds(out);
	free(out->json);
	memset(out, 0, sizeof *out);
	return rc;
}

int na_listener_accept(na_listener *l, na_handoff *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int conn = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (conn < 0) {
		int e = errno;
		snprintf(err, errlen, "accept: %s", strerror(e));
		return -e;
	}
	int rc = na_handoff_recv(conn, 0, CF_HANDOFF_TIMEOUT_MS, out, err, errlen);
	close(conn);
	return rc;
}

int na_handoff_take_fd(na_handoff *h, size_t index)
{
	if (index >= h->n_fds)
		return -1;
	int fd = h->fds[index];
	h->fds[index] = -1;
	return fd;
}

void na_handoff_free(na_handoff *h)
{
	if (!h)
		return;
	close_fds(h);
	free(h->json);
	memset(h, 0, sizeof *h);
}

int na_fd_is_seccomp_notify(int fd)
{
	char link[64], target[128];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (n < 0)
		return -errno;
	target[n] = '\0';
	return strcmp(target, "anon_inode:seccomp notify") == 0;
}
