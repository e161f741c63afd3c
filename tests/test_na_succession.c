/* Tests for na_succession: the upgrade handoff protocol over a socketpair,
 * with the old agent's side in a child process; malformed peers. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_limits.h"
#include "na_succession.h"

static int sv[2];
static pid_t child;

static void setup(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	child = 0;
}

static void teardown(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	close(sv[0]);
	close(sv[1]);
}

TestSuite(na_succession, .init = setup, .fini = teardown, .timeout = 60);

/* The old agent: n entries of pipes, their write ends kept to test them. */
static void old_agent(size_t n, bool ack_expected)
{
	child = fork();
	cr_assert(child >= 0);
	if (child) {
		close(sv[1]); /* only the old agent holds its end */
		sv[1] = -1;
		return;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	close(sv[0]);
	char err[256];
	na_succession_entry *e = calloc(n ? n : 1, sizeof *e);
	char **json = calloc(n ? n : 1, sizeof *json);
	for (size_t i = 0; i < n; i++) {
		int p[2];
		if (pipe(p) < 0)
			_exit(10);
		json[i] = malloc(64);
		snprintf(json[i], 64, "{\"n\":%zu}", i);
		e[i].fd = p[0];
		e[i].json = json[i];
		e[i].json_len = strlen(json[i]);
		e[i].flags = i % 2 ? NA_SUCCESSION_ENTRY_ANSWERED : 0u;
		/* Each pipe holds its index so the receiver can check it. */
		if (write(p[1], &i, sizeof i) != (ssize_t)sizeof i)
			_exit(11);
	}
	int lp[2];
	if (pipe(lp) < 0)
		_exit(12);
	if (na_succession_read_request(sv[1], err, sizeof err) < 0)
		_exit(13);
	if (na_succession_send(sv[1], lp[0], e, n, err, sizeof err) < 0)
		_exit(14);
	int rc = na_succession_wait_ack(sv[1], err, sizeof err);
	_exit(ack_expected ? (rc == 0 ? 0 : 15) : (rc < 0 ? 0 : 16));
}

static int child_status(void)
{
	int st;
	cr_assert_eq(waitpid(child, &st, 0), child);
	child = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void check_set(na_succession_set *s, size_t n)
{
	cr_assert_eq(s->n, n);
	cr_assert(s->listen_fd >= 0);
	for (size_t i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof want, "{\"n\":%zu}", i);
		cr_assert_str_eq(s->entries[i].json, want);
		cr_assert_eq(s->entries[i].flags, i % 2 ? NA_SUCCESSION_ENTRY_ANSWERED : 0u);
		size_t got;
		cr_assert_eq(read(s->entries[i].fd, &got, sizeof got), (ssize_t)sizeof got);
		cr_assert_eq(got, i, "fd %zu is the right pipe", i);
	}
}

Test(na_succession, hands_over_in_batches)
{
	size_t n = CF_SUCCESSION_BATCH_FDS * 2 + 3; /* three batches, the last partial */
	old_agent(n, false);
	char err[256] = "";
	na_succession_set s;
	cr_assert_eq(na_succession_receive(sv[0], &s, err, sizeof err), 0, "%s", err);
	check_set(&s, n);
	close(sv[0]);
	sv[0] = -1;
	na_succession_set_free(&s);
	/* No acknowledgement came: the old agent sees the failure (and so
	 * would resume serving). */
	cr_assert_eq(child_status(), 0);
}

Test(na_succession, ack_completes)
{
	old_agent(2, true);
	char err[256] = "";
	na_succession_set s;
	cr_assert_eq(na_succession_receive(sv[0], &s, err, sizeof err), 0, "%s", err);
	check_set(&s, 2);
	cr_assert_eq(na_succession_ack(sv[0], err, sizeof err), 0, "%s", err);
	na_succession_set_free(&s);
	cr_assert_eq(child_status(), 0);
}

Test(na_succession, nothing_held_is_fine)
{
	old_agent(0, true);
	char err[256] = "";
	na_succession_set s;
	cr_assert_eq(na_succession_receive(sv[0], &s, err, sizeof err), 0, "%s", err);
	cr_assert_eq(s.n, 0);
	cr_assert(s.listen_fd >= 0);
	cr_assert_eq(na_succession_ack(sv[0], err, sizeof err), 0, "%s", err);
	na_succession_set_free(&s);
	cr_assert_eq(child_status(), 0);
}

Test(na_succession, garbage_request_refused)
{
	char err[256] = "";
	cr_assert_eq(write(sv[0], "HELLO THERE", 11), 11);
	cr_assert_eq(na_succession_read_request(sv[1], err, sizeof err), -EPROTO);
	cr_assert_not_null(strstr(err, "not a handoff request"));
}

Test(na_succession, short_request_is_reset)
{
	char err[256] = "";
	cr_assert_eq(write(sv[0], "CFHAND", 6), 6);
	close(sv[0]);
	sv[0] = -1;
	cr_assert_eq(na_succession_read_request(sv[1], err, sizeof err), -ECONNRESET);
}

Test(na_succession, wrong_ack_refused)
{
	char err[256] = "";
	cr_assert_eq(write(sv[0], "NOPE", 4), 4);
	cr_assert_eq(na_succession_wait_ack(sv[1], err, sizeof err), -EPROTO);
}

/* A fake old agent writing raw bytes. */
static void fake_old(const void *data, size_t len)
{
	child = fork();
	cr_assert(child >= 0);
	if (child)
		return;
	char req[11];
	if (read(sv[1], req, sizeof req) != (ssize_t)sizeof req)
		_exit(1);
	if (write(sv[1], data, len) != (ssize_t)len)
		_exit(2);
	pause();
	_exit(0);
}

struct header {
	char magic[8];
	uint32_t n;
	uint32_t has_listener;
};

Test(na_succession, bad_magic_refused)
{
	struct header h = {.magic = "XXXXXXXX", .n = 0};
	fake_old(&h, sizeof h);
	char err[256] = "";
	na_succession_set s;
	cr_assert_eq(na_succession_receive(sv[0], &s, err, sizeof err), -EPROTO);
	cr_assert_eq(s.n, 0);
	cr_assert_eq(s.listen_fd, -1);
}

Test(na_succession, too_many_containers_refused)
{
	struct header h = {.n = CF_SUCCESSION_MAX_CONTAINERS + 1};
	memcpy(h.magic, "CFHOVER1", 8);
	fake_old(&h, sizeof h);
	char err[256] = "";
	na_succession_set s;
	cr_assert_eq(na_succession_receive(sv[0], &s, err, sizeof err), -EPROTO);
}

Test(na_succession, listener_announced_but_missing_refused)
{
	struct header h = {.n = 0, .has_listener = 1};
	memcpy(h.magic, "CFHOVER1", 8);
	fake_old(&h, sizeof h);
	char err[256] = "";
	na_succession_set s;
	cr_assert_eq(na_succession_receive(sv[0], &s, err, sizeof err), -EPROTO);
}

Test(na_succession, batch_without_fds_refused)
{
	struct {
		struct header h;
		uint32_t count, reserved;
		uint32_t e[CF_SUCCESSION_BATCH_FDS * 2];
	} msg;
	memset(&msg, 0, sizeof msg);
	memcpy(msg.h.magic, "CFHOVER1", 8);
	msg.h.n = 1;
	msg.count = 1;
	msg.e[0] = 5;
	fake_old(&msg, sizeof msg);
	char err[256] = "";
	na_succession_set s;
	cr_assert_eq(na_succession_receive(sv[0], &s, err, sizeof err), -EPROTO);
	cr_assert_not_null(strstr(err, "malformed handoff batch"), "%s", err);
}

Test(na_succession, truncated_stream_refused)
{
	struct header h = {.n = 3};
	memcpy(h.magic, "CFHOVER1", 8);
	fake_old(&h, sizeof h);
	char err[256] = "";
	na_succession_set s;
	kill(child, SIGKILL); /* closes its end after the header */
	waitpid(child, NULL, 0);
	child = 0;
	close(sv[1]);
	sv[1] = -1;
	cr_assert_lt(na_succession_receive(sv[0], &s, err, sizeof err), 0);
	cr_assert_eq(s.n, 0);
}

Test(na_succession, connect_without_socket_is_enoent)
{
	int conn;
	char err[256] = "";
	cr_assert_eq(na_succession_connect("/nonexistent/dir/handoff.sock", &conn, err, sizeof err),
	             -ENOENT);
}

Test(na_succession, connect_to_stale_socket_removes_it)
{
	char d[] = "/tmp/na_succ.XXXXXX", path[128], err[256] = "";
	cr_assert_not_null(mkdtemp(d));
	snprintf(path, sizeof path, "%s/handoff.sock", d);
	int fd = na_succession_listen(path, err, sizeof err);
	cr_assert(fd >= 0, "%s", err);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	close(fd); /* nobody listens any more */
	int conn;
	cr_assert_eq(na_succession_connect(path, &conn, err, sizeof err), -ENOENT);
	cr_assert_neq(stat(path, &st), 0, "the stale socket is removed");
	rmdir(d);
}

Test(na_succession, connect_to_non_socket_refused)
{
	char d[] = "/tmp/na_succ.XXXXXX", path[128], err[256] = "";
	cr_assert_not_null(mkdtemp(d));
	snprintf(path, sizeof path, "%s/handoff.sock", d);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	int conn;
	cr_assert_eq(na_succession_connect(path, &conn, err, sizeof err), -EEXIST);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "someone else's file is left alone");
	unlink(path);
	rmdir(d);
}

Test(na_succession, listen_path_too_long)
{
	char path[200], err[256] = "";
	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	cr_assert_eq(na_succession_listen(path, err, sizeof err), -ENAMETOOLONG);
}
