/* test_na_procmem.c - na_notify + na_procmem against real children: a child
 * installs the exec-notify filter, hands the listener over, and execs in a
 * chosen way; the test reads the exec from the child's memory and answers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_limits.h"
#include "na_notify.h"
#include "na_procmem.h"

extern char **environ;

enum how {
	VIA_EXECVE,
	VIA_EXECVEAT,
	VIA_FEXECVE,
	VIA_BUSYBOX,
	VIA_HUGE,
	VIA_NULL_ARGV,
	VIA_PROC_SELF_EXE,
	VIA_PROC_SELF_FD,
};

static void send_fd(int sock, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char b = 'x';
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	memset(cbuf, 0, sizeof cbuf);
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof cbuf;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(sock, &mh, 0) < 0)
		_exit(3);
}

static int recv_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	char b;
	struct iovec iov = {.iov_base = &b, .iov_len = 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	if (recvmsg(sock, &mh, 0) <= 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (!c)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* The child: filter, hand over, exec; exits 42 when the exec got EPERM. */
static void child(int sock, enum how how, const char *dir)
{
	char err[256];
	int fd;
	if (chdir("/usr") != 0)
		_exit(4);
	if (na_notify_install_exec_filter(&fd, err, sizeof err) < 0)
		_exit(5);
	send_fd(sock, fd);
	close(fd);
	char *argv[] = {"mytrue", "a b", "c", NULL};
	switch (how) {
	case VIA_EXECVE:
		execve("bin/true", argv, environ);
		break;
	case VIA_EXECVEAT: {
		int dfd = open("/usr/bin", O_PATH | O_DIRECTORY);
		syscall(SYS_execveat, dfd, "true", argv, environ, 0);
		break;
	}
	case VIA_FEXECVE: {
		int f = open("/usr/bin/true", O_PATH);
		syscall(SYS_execveat, f, "", argv, environ, AT_EMPTY_PATH);
		break;
	}
	case VIA_BUSYBOX: {
		char link[512];
		snprintf(link, sizeof link, "%s/ls", dir);
		char *bb[] = {"rm", "-rf", "/nothing", NULL};
		execve(link, bb, environ);
		break;
	}
	case VIA_HUGE: {
		size_t n = CF_AGENT_MAX_ARGC + 10;
		char **big = calloc(n + 1, sizeof *big);
		if (!big)
			_exit(6);
		for (size_t i = 0; i < n; i++)
			big[i] = "x";
		execve("/usr/bin/true", big, environ);
		break;
	}
	case VIA_NULL_ARGV:
		syscall(SYS_execve, "/usr/bin/true", NULL, environ);
		break;
	case VIA_PROC_SELF_EXE:
		execve("/proc/self/exe", argv, environ);
		break;
	case VIA_PROC_SELF_FD: {
		char path[64];
		snprintf(path, sizeof path, "/proc/self/fd/%d", open("/usr/bin/true", O_RDONLY));
		execve(path, argv, environ);
		break;
	}
	}
	_exit(errno == EPERM ? 42 : 7);
}

struct run {
	pid_t pid;
	na_notify *n;
	na_notify_req req;
};

static void start(struct run *r, enum how how, const char *dir)
{
	int sv[2];
	char err[256];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	r->pid = fork();
	cr_assert_geq(r->pid, 0);
	if (r->pid == 0) {
		close(sv[0]);
		child(sv[1], how, dir);
	}
	close(sv[1]);
	int fd = recv_fd(sv[0]);
	close(sv[0]);
	cr_assert_geq(fd, 0);
	r->n = na_notify_new(fd, err, sizeof err);
	cr_assert_not_null(r->n, "%s", err);
	int rc;
	do
		rc = na_notify_receive(r->n, &r->req);
	while (rc == -EINTR);
	cr_assert_eq(rc, 0, "receive: %s", strerror(-rc));
	cr_assert_eq(r->req.pid, r->pid);
}

static int finish(struct run *r)
{
	int st = 0;
	cr_assert_eq(waitpid(r->pid, &st, 0), r->pid);
	na_notify_free(r->n);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(na_procmem, execve_relative_to_cwd_then_eperm)
{
	struct run r;
	start(&r, VIA_EXECVE, NULL);
	cr_assert_eq(na_notify_syscall_kind(&r.req), NA_SYSCALL_EXECVE);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	cr_assert_str_eq(e.path, "bin/true");
	cr_assert_str_eq(e.cwd, "/usr");
	cr_assert_str_eq(e.resolved, "/usr/bin/true");
	cr_assert_str_eq(e.exe_base, "true");
	cr_assert_str_eq(e.target_base, "true");
	cr_assert_eq(e.argc, 3);
	cr_assert_str_eq(e.argv[0], "mytrue");
	cr_assert_str_eq(e.argv[1], "a b");
	cr_assert_null(e.argv[3]);
	cr_assert(!e.truncated);
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
}

Test(na_procmem, execveat_dirfd_then_continue)
{
	struct run r;
	start(&r, VIA_EXECVEAT, NULL);
	cr_assert_eq(na_notify_syscall_kind(&r.req), NA_SYSCALL_EXECVEAT);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	cr_assert_str_eq(e.resolved, "/usr/bin/true");
	cr_assert_str_eq(e.exe_base, "true");
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, 0), 0);
	cr_assert_eq(finish(&r), 0);
}

Test(na_procmem, fexecve_empty_path)
{
	struct run r;
	start(&r, VIA_FEXECVE, NULL);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	cr_assert_str_eq(e.path, "");
	cr_assert_str_eq(e.exe_base, "true");
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
}

Test(na_procmem, busybox_link_target)
{
	const char *bb =
	    access("/usr/bin/busybox", X_OK) == 0 ? "/usr/bin/busybox" : "/bin/busybox";
	cr_assert_eq(access(bb, X_OK), 0, "busybox missing");
	char dir[] = "/tmp/na_procmem.XXXXXX", link[512];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(link, sizeof link, "%s/ls", dir);
	cr_assert_eq(symlink(bb, link), 0);
	struct run r;
	start(&r, VIA_BUSYBOX, dir);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	cr_assert_str_eq(e.exe_base, "ls");
	cr_assert_str_eq(e.target_base, "busybox");
	cr_assert_str_eq(e.argv[0], "rm");
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
	unlink(link);
	rmdir(dir);
}

/* /proc/self names the target, not the agent reading it. */
Test(na_procmem, proc_self_exe_is_the_targets_executable)
{
	struct run r;
	start(&r, VIA_PROC_SELF_EXE, NULL);
	na_exec_info e;
	char err[256], self[PATH_MAX];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	cr_assert_gt(n, 0);
	self[n] = '\0';
	cr_assert_str_eq(e.path, "/proc/self/exe");
	cr_assert_str_eq(e.resolved, self, "the child runs this test binary");
	cr_assert_str_eq(e.exe_base, strrchr(self, '/') + 1);
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
}

Test(na_procmem, proc_self_fd_is_the_file_it_names)
{
	struct run r;
	start(&r, VIA_PROC_SELF_FD, NULL);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	cr_assert_str_eq(e.resolved, "/usr/bin/true");
	cr_assert_str_eq(e.exe_base, "true");
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
}

Test(na_procmem, argv_past_the_bound_is_truncated)
{
	struct run r;
	start(&r, VIA_HUGE, NULL);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	cr_assert(e.truncated);
	cr_assert_eq(e.argc, CF_AGENT_MAX_ARGC);
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
}

Test(na_procmem, null_argv)
{
	struct run r;
	start(&r, VIA_NULL_ARGV, NULL);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), 0, "%s",
	             err);
	cr_assert_eq(e.argc, 0);
	cr_assert_not_null(e.argv);
	na_exec_info_free(&e);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
}

Test(na_procmem, target_gone_is_enoent)
{
	struct run r;
	start(&r, VIA_EXECVE, NULL);
	kill(r.pid, SIGKILL);
	int st;
	cr_assert_eq(waitpid(r.pid, &st, 0), r.pid);
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_procmem_read_exec(&r.req, na_notify_fd(r.n), &e, err, sizeof err), -ENOENT);
	cr_assert_eq(na_notify_id_valid(r.n, r.req.id), -ENOENT);
	cr_assert_eq(na_notify_respond(r.n, r.req.id, 0), -ENOENT);
	na_notify_free(r.n);
}

Test(na_procmem, other_syscall_is_not_read)
{
	na_notify_req req = {.id = 1, .pid = getpid(), .nr = 0, .arch = 0};
	na_exec_info e;
	char err[256];
	cr_assert_eq(na_notify_syscall_kind(&req), NA_SYSCALL_OTHER);
	cr_assert_eq(na_procmem_read_exec(&req, -1, &e, err, sizeof err), -EPROTONOSUPPORT);
}

Test(na_notify, bad_fd)
{
	char err[256];
	na_notify *n = na_notify_new(-1, err, sizeof err);
	cr_assert_not_null(n);
	na_notify_req req;
	cr_assert_eq(na_notify_receive(n, &req), -EBADF);
	cr_assert_eq(na_notify_respond(n, 1, 0), -EBADF);
	cr_assert_eq(na_notify_id_valid_fd(-1, 1), -ENOENT);
	cr_assert_eq(na_notify_set_sync_wakeup(n), -EBADF);
	na_notify_free(n);
}

/* The synchronous wake-up is accepted on a real listener (Linux 6.6+) or
 * refused as unknown (older kernels), and either way the exec is still
 * received and answered. */
Test(na_notify, sync_wakeup_keeps_the_listener_working)
{
	struct run r;
	start(&r, VIA_EXECVE, NULL);
	int rc = na_notify_set_sync_wakeup(r.n);
	cr_assert(rc == 0 || rc == -EINVAL, "set flags: %s", strerror(-rc));
	cr_assert_eq(na_notify_respond(r.n, r.req.id, EPERM), 0);
	cr_assert_eq(finish(&r), 42);
}

/* Policy of the calling thread after na_notify_receiver_realtime, and of a
 * process it forks; written to fd as two ints. */
static void report_realtime(int fd)
{
	int got[3] = {na_notify_receiver_realtime(), sched_getscheduler(0), -1};
	pid_t pid = fork();
	if (pid == 0) {
		int child = sched_getscheduler(0);
		_exit(child == SCHED_OTHER ? 0 : 1);
	}
	int st;
	if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st))
		got[2] = WEXITSTATUS(st);
	ssize_t w = write(fd, got, sizeof got); /* short: the reader's assert fails */
	(void)w;
}

static void *realtime_thread(void *arg)
{
	report_realtime(*(int *)arg);
	return NULL;
}

/* Granted (root here): the thread is SCHED_FIFO, and what it forks is not. */
Test(na_notify, receiver_realtime_is_not_inherited)
{
	int p[2], got[3];
	pthread_t t;
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pthread_create(&t, NULL, realtime_thread, &p[1]), 0);
	pthread_join(t, NULL);
	cr_assert_eq(read(p[0], got, sizeof got), (ssize_t)sizeof got);
	if (got[0] == -EPERM)
		cr_skip_test("not permitted to use SCHED_FIFO here");
	cr_assert_eq(got[0], 0, "%s", strerror(-got[0]));
	cr_assert_eq(got[1], SCHED_FIFO | SCHED_RESET_ON_FORK);
	cr_assert_eq(got[2], 0, "a forked child kept the real-time policy");
	cr_assert_eq(sched_getscheduler(0), SCHED_OTHER, "only the calling thread changes");
}

/* Refused (no CAP_SYS_NICE, RLIMIT_RTPRIO 0): -EPERM, and nothing changes. */
Test(na_notify, receiver_realtime_refused_changes_nothing)
{
	int p[2], got[3];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
		struct __user_cap_data_struct d[2];
		struct rlimit none = {0, 0};
		if (syscall(SYS_capget, &h, d) != 0)
			_exit(2);
		d[CAP_SYS_NICE / 32].effective &= ~(1u << (CAP_SYS_NICE % 32));
		d[CAP_SYS_NICE / 32].permitted &= ~(1u << (CAP_SYS_NICE % 32));
		if (syscall(SYS_capset, &h, d) != 0 || setrlimit(RLIMIT_RTPRIO, &none) != 0)
			_exit(2);
		report_realtime(p[1]);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	cr_assert_eq(read(p[0], got, sizeof got), (ssize_t)sizeof got);
	cr_assert_eq(got[0], -EPERM);
	cr_assert_eq(got[1], SCHED_OTHER);
}
