/* Tests for na_wire: the holder <-> policy side messages. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "na_wire.h"

static int sv[2];

static void setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
}

static void teardown(void)
{
	close(sv[0]);
	close(sv[1]);
}

TestSuite(na_wire, .init = setup, .fini = teardown);

Test(na_wire, notify_round_trip)
{
	na_wire_msg m, got;
	int fd;
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_NOTIFY;
	m.key = 42;
	m.flags = NA_WIRE_ENTRY_ANSWERED;
	m.u.req.id = 7;
	m.u.req.pid = 1234;
	cr_assert_eq(na_wire_send(sv[0], &m, -1, 0), 0);
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, 0), 1);
	cr_assert_eq(fd, -1);
	cr_assert_eq(got.type, NA_WIRE_NOTIFY);
	cr_assert_eq(got.key, 42);
	cr_assert_eq(got.flags, NA_WIRE_ENTRY_ANSWERED);
	cr_assert_eq(got.u.req.id, 7);
	cr_assert_eq(got.u.req.pid, 1234);
}

Test(na_wire, add_carries_identity_and_fd)
{
	na_wire_msg m, got;
	int fd, p[2];
	cr_assert_eq(pipe(p), 0);
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_ADD;
	m.key = 1;
	snprintf(m.u.id.container, sizeof m.u.id.container, "runner");
	cr_assert_eq(na_wire_send(sv[0], &m, p[0], 0), 0);
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, 0), 1);
	cr_assert(fd >= 0);
	cr_assert_str_eq(got.u.id.container, "runner");
	cr_assert_eq(write(p[1], "x", 1), 1);
	char c;
	cr_assert_eq(read(fd, &c, 1), 1, "the received fd is the pipe");
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	close(p[0]);
	close(p[1]);
}

Test(na_wire, small_messages_are_header_only)
{
	cr_assert_lt(na_wire_size(NA_WIRE_READY), na_wire_size(NA_WIRE_ANSWER));
	cr_assert_lt(na_wire_size(NA_WIRE_ANSWER), na_wire_size(NA_WIRE_ADD));
	cr_assert_eq(na_wire_size(NA_WIRE_REMOVE), na_wire_size(NA_WIRE_REJECTED));
}

Test(na_wire, eof_is_zero)
{
	na_wire_msg got;
	int fd;
	close(sv[0]);
	sv[0] = -1;
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, 0), 0);
}

Test(na_wire, nothing_pending_is_eagain)
{
	na_wire_msg got;
	int fd;
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, MSG_DONTWAIT), -EAGAIN);
}

Test(na_wire, unknown_type_not_sent)
{
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = 99;
	cr_assert_eq(na_wire_send(sv[0], &m, -1, 0), -EINVAL);
	m.type = 0;
	cr_assert_eq(na_wire_send(sv[0], &m, -1, 0), -EINVAL);
}

Test(na_wire, unknown_type_received_is_eproto)
{
	uint32_t junk[8] = {99};
	na_wire_msg got;
	int fd;
	cr_assert_eq(send(sv[0], junk, sizeof junk, 0), (ssize_t)sizeof junk);
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, 0), -EPROTO);
}

Test(na_wire, wrong_size_is_eproto)
{
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_ANSWER;
	/* An ANSWER cut short by 4 bytes. */
	cr_assert_eq(send(sv[0], &m, na_wire_size(NA_WIRE_ANSWER) - 4, 0),
	             (ssize_t)(na_wire_size(NA_WIRE_ANSWER) - 4));
	na_wire_msg got;
	int fd;
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, 0), -EPROTO);
	/* Too short to hold a type. */
	cr_assert_eq(send(sv[0], "ab", 2, 0), 2);
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, 0), -EPROTO);
}

Test(na_wire, fd_on_a_message_that_takes_none_is_closed)
{
	na_wire_msg m, got;
	int fd, p[2];
	cr_assert_eq(pipe(p), 0);
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_NOTIFY;
	cr_assert_eq(na_wire_send(sv[0], &m, p[1], 0), 0);
	close(p[1]);
	cr_assert_eq(na_wire_recv(sv[1], &got, &fd, 0), -EPROTO);
	cr_assert_eq(fd, -1);
	/* The stray copy was closed: the pipe's last writer is gone. */
	char c;
	cr_assert_eq(read(p[0], &c, 1), 0);
	close(p[0]);
}

Test(na_wire, peer_gone_on_send)
{
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_READY;
	close(sv[1]);
	sv[1] = -1;
	int rc = na_wire_send(sv[0], &m, -1, 0);
	cr_assert(rc == -EPIPE || rc == -ECONNRESET, "rc %d", rc);
}
