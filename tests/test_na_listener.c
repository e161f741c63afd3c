/* Tests for na_listener: the runtime handoff socket. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "na_listener.h"
#include "support/ts_proc.h"

static char dir[64];
static char sock[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/na_listener.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof sock, "%s/run/agent.sock", dir);
}

static void teardown(void)
{
	ts_rm_tree(dir);
}

TestSuite(na_listener, .init = setup, .fini = teardown);

static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(s >= 0);
	cr_assert_eq(connect(s, (struct sockaddr *)&sun, sizeof sun), 0, "%s", strerror(errno));
	return s;
}

/* Sends `data` with `nfds` fds attached (SCM_RIGHTS). */
static void send_with_fds(int s, const char *data, size_t len, const int *fds, size_t nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * 64)];
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (nfds) {
		memset(ctl, 0, sizeof ctl);
		msg.msg_control = ctl;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	cr_assert_eq(sendmsg(s, &msg, MSG_NOSIGNAL), (ssize_t)len, "%s", strerror(errno));
}

static const char state[] =
    "{\"fds\":[\"seccompFd\"],\"pid\":1,\"state\":{\"id\":\"a\",\"pid\":1}}";

Test(na_listener, open_mode_and_close_unlinks)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	struct stat st;
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_str_eq(na_listener_path(l), sock);
	na_listener_close(l);
	cr_assert_eq(lstat(sock, &st), -1);
}

Test(na_listener, group_mode)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, 0, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	struct stat st;
	cr_assert_eq(lstat(sock, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0660);
	na_listener_close(l);
}

Test(na_listener, receives_state_and_fd)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int c = connect_to(sock);
	/* JSON in two writes, the fd on the second, like a slow sender. */
	send_with_fds(c, state, 10, NULL, 0);
	send_with_fds(c, state + 10, sizeof state - 1 - 10, &p[0], 1);
	close(c);
	na_handoff h;
	cr_assert_eq(na_listener_accept(l, &h, err, sizeof err), 0, "%s", err);
	cr_assert_eq(h.len, sizeof state - 1);
	cr_assert_str_eq(h.json, state);
	cr_assert_eq(h.n_fds, 1);
	cr_assert_eq(h.peer_uid, 0);
	cr_assert_eq(h.peer_pid, getpid());
	cr_assert_eq(na_fd_is_seccomp_notify(h.fds[0]), 0);
	int fd = na_handoff_take_fd(&h, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(na_handoff_take_fd(&h, 0), -1);
	cr_assert_eq(na_handoff_take_fd(&h, 5), -1);
	/* The received fd is the pipe's read end. */
	cr_assert_eq(write(p[1], "x", 1), 1);
	char ch;
	cr_assert_eq(read(fd, &ch, 1), 1);
	cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
	na_handoff_free(&h);
	close(p[0]);
	close(p[1]);
	na_listener_close(l);
}

Test(na_listener, stale_socket_replaced)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	/* Simulate a crashed agent: the socket file stays, nobody listens. */
	close(na_listener_fd(l));
	free(l); /* deliberately not na_listener_close: the path must stay */
	struct stat st;
	cr_assert_eq(lstat(sock, &st), 0);
	na_listener *l2 = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l2, "stale socket not replaced: %s", err);
	na_listener_close(l2);
}

Test(na_listener, seccomp_fd_recognised)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(getppid), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(1);
		int nfd = seccomp_notify_fd(ctx);
		char ctl[CMSG_SPACE(sizeof(int))];
		memset(ctl, 0, sizeof ctl);
		struct iovec iov = {.iov_base = (void *)"s", .iov_len = 1};
		struct msghdr msg = {.msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = ctl,
		                     .msg_controllen = sizeof ctl};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &nfd, sizeof nfd);
		_exit(sendmsg(sv[1], &msg, 0) == 1 ? 0 : 2);
	}
	close(sv[1]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	na_handoff h;
	char err[256] = "";
	cr_assert_eq(na_handoff_recv(sv[0], (uid_t)-1, 1000, &h, err, sizeof err), 0, "%s", err);
	cr_assert_eq(h.n_fds, 1);
	cr_assert_eq(na_fd_is_seccomp_notify(h.fds[0]), 1);
	na_handoff_free(&h);
	close(sv[0]);
}

/* Negative cases. */

Test(na_listener, live_agent_not_replaced)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	na_listener *l2 = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_null(l2);
	cr_assert_not_null(strstr(err, "another agent"), "%s", err);
	na_listener_close(l);
}

Test(na_listener, non_socket_path_not_replaced)
{
	char err[256] = "", sub[160];
	snprintf(sub, sizeof sub, "%s/run", dir);
	mkdir(sub, 0700);
	int fd = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert_null(na_listener_open(sock, (gid_t)-1, err, sizeof err));
	cr_assert_not_null(strstr(err, "not a socket"), "%s", err);
	struct stat st;
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert(S_ISREG(st.st_mode));
}

Test(na_listener, bad_paths)
{
	char err[256] = "", longp[200];
	cr_assert_null(na_listener_open("relative.sock", (gid_t)-1, err, sizeof err));
	cr_assert_not_null(strstr(err, "absolute"));
	cr_assert_null(na_listener_open(NULL, (gid_t)-1, err, sizeof err));
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	cr_assert_null(na_listener_open(longp, (gid_t)-1, err, sizeof err));
	cr_assert_not_null(strstr(err, "too long"));
	cr_assert_null(na_listener_open("/proc/self/agent.sock", (gid_t)-1, err, sizeof err));
}

Test(na_listener, close_keeps_successor_socket)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	/* A successor replaced the path (rename over it). */
	cr_assert_eq(unlink(sock), 0);
	int fd = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	na_listener_close(l);
	struct stat st;
	cr_assert_eq(stat(sock, &st), 0, "successor's path removed");
}

Test(na_listener, no_pending_connection)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	na_handoff h;
	cr_assert_eq(na_listener_accept(l, &h, err, sizeof err), -EAGAIN);
	na_listener_close(l);
}

Test(na_listener, no_fd_rejected)
{
	char err[256] = "";
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_with_fds(sv[1], state, sizeof state - 1, NULL, 0);
	close(sv[1]);
	na_handoff h;
	cr_assert_eq(na_handoff_recv(sv[0], (uid_t)-1, 1000, &h, err, sizeof err), -EPROTO);
	cr_assert_not_null(strstr(err, "no fd"));
	cr_assert_null(h.json);
	close(sv[0]);
}

Test(na_listener, oversized_rejected_fds_closed)
{
	char err[256] = "";
	int sv[2], p[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int before = count_fds();
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		size_t n = CF_HANDOFF_MAX_BYTES + 4096;
		char *big = malloc(n);
		memset(big, ' ', n);
		send_with_fds(sv[1], "{", 1, &p[0], 1);
		size_t off = 0;
		while (off < n) {
			ssize_t w = send(sv[1], big + off, n - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		_exit(0);
	}
	close(sv[1]);
	na_handoff h;
	cr_assert_eq(na_handoff_recv(sv[0], (uid_t)-1, 5000, &h, err, sizeof err), -E2BIG, "%s",
	             err);
	close(sv[0]);
	waitpid(pid, NULL, 0);
	/* The received copy of p[0] was closed again. */
	cr_assert_eq(count_fds(), before - 2);
	close(p[0]);
	close(p[1]);
}

Test(na_listener, too_many_fds_rejected)
{
	char err[256] = "";
	int sv[2], fds[CF_HANDOFF_MAX_FDS + 1];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (size_t i = 0; i < CF_HANDOFF_MAX_FDS + 1; i++)
		fds[i] = devnull;
	int before = count_fds();
	send_with_fds(sv[1], state, sizeof state - 1, fds, CF_HANDOFF_MAX_FDS + 1);
	close(sv[1]);
	na_handoff h;
	int rc = na_handoff_recv(sv[0], (uid_t)-1, 1000, &h, err, sizeof err);
	cr_assert(rc == -E2BIG || rc == -EPROTO, "rc %d", rc);
	close(sv[0]);
	cr_assert_eq(count_fds(), before - 2, "received fds leaked");
	close(devnull);
}

Test(na_listener, silent_peer_times_out)
{
	char err[256] = "";
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv), 0);
	na_handoff h;
	cr_assert_eq(na_handoff_recv(sv[0], (uid_t)-1, 50, &h, err, sizeof err), -ETIMEDOUT);
	cr_assert_not_null(strstr(err, "within"));
	close(sv[0]);
	close(sv[1]);
}

Test(na_listener, non_root_peer_refused)
{
	char err[256] = "";
	na_listener *l = na_listener_open(sock, (gid_t)-1, err, sizeof err);
	cr_assert_not_null(l, "%s", err);
	/* Let uid 65534 reach the 0600 socket only through an open connection
	 * made after dropping privileges; chmod the path for the test. */
	cr_assert_eq(chmod(sock, 0666), 0);
	char d2[160];
	snprintf(d2, sizeof d2, "%s/run", dir);
	chmod(d2, 0755);
	chmod(dir, 0755);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		if (setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
			_exit(3);
		int p[2];
		if (pipe(p) < 0)
			_exit(4);
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		memcpy(sun.sun_path, sock, strlen(sock) + 1);
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)&sun, sizeof sun) < 0)
			_exit(5);
		send_with_fds(s, state, sizeof state - 1, &p[0], 1);
		close(s);
		_exit(0);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d", status);
	na_handoff h;
	cr_assert_eq(na_listener_accept(l, &h, err, sizeof err), -EPERM);
	cr_assert_not_null(strstr(err, "uid 65534"), "%s", err);
	cr_assert_eq(h.n_fds, 0);
	na_listener_close(l);
}

Test(na_listener, handoff_free_is_safe_twice)
{
	na_handoff h;
	memset(&h, 0, sizeof h);
	na_handoff_free(&h);
	na_handoff_free(&h);
	na_handoff_free(NULL);
	cr_assert_eq(na_fd_is_seccomp_notify(-1), -ENOENT);
}

/* runc 1.1 keeps its end open while the container runs: a complete JSON
 * object plus its fd ends the handoff without EOF. */
Test(na_listener, complete_object_without_eof)
{
	char err[256] = "";
	int sv[2], p[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	static const char tricky[] =
	    "{\"fds\":[\"seccompFd\"],\"pid\":1,\"state\":{\"id\":\"a}\\\"}\","
	    "\"pid\":1,\"annotations\":{\"k\":\"{{[\"}}}";
	send_with_fds(sv[1], tricky, 20, &p[0], 1);
	send_with_fds(sv[1], tricky + 20, sizeof tricky - 1 - 20, NULL, 0);
	na_handoff h;
	cr_assert_eq(na_handoff_recv(sv[0], (uid_t)-1, 2000, &h, err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(h.json, tricky);
	na_handoff_free(&h);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

/* A complete object whose fd never comes is still a timeout, and an
 * incomplete object is never taken for a complete one. */
Test(na_listener, incomplete_object_times_out)
{
	char err[256] = "";
	int sv[2], p[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	send_with_fds(sv[1], "{\"a\":\"}\"", 8, &p[0], 1);
	na_handoff h;
	cr_assert_eq(na_handoff_recv(sv[0], (uid_t)-1, 100, &h, err, sizeof err), -ETIMEDOUT);
	send_with_fds(sv[1], "}", 1, NULL, 0);
	close(sv[0]);
	close(sv[1]);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_with_fds(sv[1], state, sizeof state - 1, NULL, 0);
	cr_assert_eq(na_handoff_recv(sv[0], (uid_t)-1, 100, &h, err, sizeof err), -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}
