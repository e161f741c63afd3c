/* na_wire.c - see na_wire.h. */
#include "na_wire.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HDR_BYTES offsetof(na_wire_msg, u)

size_t na_wire_size(uint32_t type)
{
	switch (type) {
	case NA_WIRE_ADD:
		return HDR_BYTES + sizeof(na_container_identity);
	case NA_WIRE_REMOVE:
	case NA_WIRE_READY:
	case NA_WIRE_LEVEL:
	case NA_WIRE_REJECTED:
	case NA_WIRE_CONTROL:
	case NA_WIRE_LISTENING:
	case NA_WIRE_UNLABEL:
		return HDR_BYTES;
	case NA_WIRE_NOTIFY:
	case NA_WIRE_ANSWER:
	case NA_WIRE_DROP:
	case NA_WIRE_EXTEND:
		return HDR_BYTES + sizeof(na_notify_req);
	default:
		return 0;
	}
}

int na_wire_send(int sock, const na_wire_msg *m, int fd, int flags)
{
	size_t len = na_wire_size(m->type);
	if (!len)
		return -EINVAL;
	struct iovec iov = {.iov_base = (void *)m, .iov_len = len};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&cbuf, 0, sizeof cbuf);
		msg.msg_control = cbuf.buf;
		msg.msg_controllen = sizeof cbuf.buf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	for (;;) {
		ssize_t n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return -EPROTO; /* SEQPACKET sends whole messages or nothing */
		if (errno == EINTR)
			continue;
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	}
}

int na_wire_recv(int sock, na_wire_msg *m, int *fd_out, int flags)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} cbuf;
	struct iovec iov = {.iov_base = m, .iov_len = sizeof *m};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = cbuf.buf,
	                     .msg_controllen = sizeof cbuf.buf};
	ssize_t n;
	*fd_out = -1;
	memset(m, 0, sizeof *m);
	do
		n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	int fds[4], nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k && nfds < 4; i++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
	}
	if (n == 0 && nfds == 0)
		return 0;
	size_t want = n >= (ssize_t)sizeof(uint32_t) ? na_wire_size(m->type) : 0;
	int ok = want && (size_t)n == want && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
	         nfds <= (m->type == NA_WIRE_ADD || m->type == NA_WIRE_CONTROL ? 1 : 0);
	if (!ok) {
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
		return -EPROTO;
	}
	if (nfds == 1)
		*fd_out = fds[0];
	return 1;
}
