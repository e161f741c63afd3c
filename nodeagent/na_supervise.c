/* na_supervise.c - see na_supervise.h. */
#include "na_supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "na_ancestry.h"
#include "na_events.h"
#include "na_notify.h"
#include "na_procmem.h"

static const int forwarded[] = {SIGINT,  SIGTERM, SIGHUP,   SIGQUIT,
                                SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

struct loop {
	const na_supervise_opts *o;
	int stopping;         /* atomic: the notify thread must return */
	na_procmem_root root; /* the tree's root, opened once */
	na_notify *notify;
	na_ancestry *anc;
	na_events *events;
	na_identity who;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* PATH search done here, before the filter exists: execvp would try each
 * PATH entry, and the first (failing) attempt would be taken for the
 * tree's trusted entrypoint. */
static int find_program(const char *name, char *out, size_t outlen)
{
	if (strchr(name, '/')) {
		snprintf(out, outlen, "%s", name);
		return access(out, X_OK) == 0 ? 0 : -errno;
	}
	const char *env = getenv("PATH");
	const char *dirs = env && env[0] ? env : "/usr/local/bin:/usr/bin:/bin";
	int last = -ENOENT;
	while (*dirs) {
		const char *colon = strchr(dirs, ':');
		size_t dl = colon ? (size_t)(colon - dirs) : strlen(dirs);
		int n = snprintf(out, outlen, "%.*s/%s", (int)dl, dl ? dirs : ".", name);
		if (n > 0 && (size_t)n < outlen) {
			if (access(out, X_OK) == 0)
				return 0;
			if (errno != ENOENT)
				last = -errno;
		}
		dirs += dl + (colon ? 1 : 0);
	}
	return last;
}

static int send_fd(int sock, int fd, const char *msg)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg) + 1};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	memset(cbuf, 0, sizeof cbuf);
	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Receives the listener fd (or the child's error text). */
static int recv_fd(int sock, int *fd, char *msg, size_t msglen)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = msg, .iov_len = msglen - 1};
	struct msghdr mh = {
	    .msg_iov = &iov,
	    .msg_iovlen = 1,
	    .msg_control = cbuf,
	    .msg_controllen = sizeof cbuf,
	};
	*fd = -1;
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	msg[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	}
	return *fd >= 0 ? 0 : -EPROTO;
}

/* Runs in the child after fork: never returns. */
static void child(int sock, const char *path, char *const *argv, const sigset_t *oldmask)
{
	char err[256] = "";
	int fd = -1;
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	if (na_notify_install_exec_filter(&fd, err, sizeof err) < 0) {
		send_fd(sock, -1, err);
		_exit(126);
	}
	if (send_fd(sock, fd, "ok") < 0)
		_exit(126);
	close(fd);
	close(sock);
	execv(path, argv);
	int e = errno;
	dprintf(2, "codeframe-agent: %s: %s\n", argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

static void submit(struct loop *l, pid_t pid, char *const *argv, size_t argc, const na_decision *d,
                   const char *decision_text, const char *error, uint64_t latency)
{
	if (d->log_level < l->o->log_level)
		return;
	char *cmdline = argv ? na_cmdpolicy_cmdline(argv, argc, NULL) : NULL;
	na_event ev = {
	    .who = &l->who,
	    .pid = pid,
	    .command = cmdline ? cmdline : "",
	    .decision = d,
	    .decision_text = decision_text,
	    .error = error,
	    .latency_us = latency,
	};
	na_events_submit(l->events, &ev);
	free(cmdline);
}

/* A receive found nothing: the target of a notification died before it
 * was received, or the whole tree has exited (since Linux 6.6 a receive no
 * longer blocks once no task can notify). Waits in poll instead of going
 * round again: a real-time thread spinning on receive held a CPU for the
 * kernel's whole real-time budget (0.95 s) before the tree could be
 * reaped. Returns 1 when the tree is gone (POLLHUP), else 0. */
static int wait_for_notification(struct loop *l)
{
	struct pollfd pfd = {.fd = na_notify_fd(l->notify), .events = POLLIN};
	if (poll(&pfd, 1, -1) == 1 && (pfd.revents & POLLHUP) && !(pfd.revents & POLLIN))
		return 1;
	return 0;
}

/* One notification: receive, read, decide, answer, log. Returns 0, 1 when
 * no task is left to notify, or -errno when the notify fd is unusable. */
static int handle_one(struct loop *l)
{
	na_notify_req req;
	na_exec_info info;
	na_decision d;
	char err[256];
	int rc = na_notify_receive(l->notify, &req);
	if (rc == -ENOENT)
		return wait_for_notification(l);
	if (rc == -EINTR || rc == -EAGAIN)
		return 0;
	if (rc < 0)
		return rc;
	uint64_t t0 = now_us();
	const na_policy *p = l->o->policy;

	if (p->level == NA_LEVEL_DISABLED) {
		/* Disabled: nothing is read, every exec continues. */
		na_notify_respond(l->notify, req.id, 0);
		return 0;
	}
	rc = na_procmem_read_exec_at(&req, na_notify_fd(l->notify), &l->root, &info, err,
	                             sizeof err);
	if (rc == -ENOENT)
		return 0; /* the target is gone: nothing to answer */
	if (rc < 0) {
		/* Could not see the exec: answer the level's default. */
		memset(&d, 0, sizeof d);
		d.enforcement = p->level;
		d.verdict = p->level == NA_LEVEL_STRICT ? NA_VERDICT_DENY : NA_VERDICT_ALLOW;
		d.log_level = CF_LOG_WARNING;
		snprintf(d.rule, sizeof d.rule, "unreadable");
		na_notify_respond(l->notify, req.id, d.verdict == NA_VERDICT_ALLOW ? 0 : EPERM);
		submit(l, req.pid, NULL, 0, &d, NULL, err, now_us() - t0);
		return 0;
	}

	na_cmd_context ctx;
	na_ancestry_lookup(l->anc, req.pid, &ctx);
	na_cmd cmd = {
	    .exe_base = info.exe_base,
	    .target_base = info.target_base,
	    .argv = info.argv,
	    .argc = info.argc,
	    .truncated = info.truncated,
	};
	rc = na_cmdpolicy_decide(p, &cmd, &ctx, &d);
	const char *text = NULL;
	const char *note = rc < 0 ? "out of memory while deciding" : NULL;
	if (d.verdict == NA_VERDICT_APPROVAL) {
		/* Nobody can answer an approval in exec mode. */
		d.verdict = NA_VERDICT_DENY;
		text = "deny";
		note = "approval required, and exec mode has no approver";
	}
	bool allow = d.verdict == NA_VERDICT_ALLOW;
	rc = na_notify_respond(l->notify, req.id, allow ? 0 : EPERM);
	uint64_t latency = now_us() - t0;
	if (rc == 0 && allow)
		na_ancestry_record(l->anc, req.pid, &ctx, d.name_allowed);
	if (rc == -ENOENT)
		note = "the process went away before the answer";
	submit(l, req.pid, info.argv, info.argc, &d, text, note, latency);
	na_exec_info_free(&info);
	return 0;
}

/* The notify thread blocks in the receive ioctl itself (not in poll), the
 * one kind of waiter the kernel's synchronous wake-up reaches: each exec
 * then hands its CPU to this thread and gets it back with the answer. As a
 * real-time thread (where permitted) it finishes its turn before the exec
 * it answered runs on. */
static void *notify_thread(void *arg)
{
	struct loop *l = arg;
	na_notify_set_sync_wakeup(l->notify); /* before Linux 6.6: ordinary wake-ups */
	na_notify_receiver_realtime();        /* not permitted: an ordinary thread */
	while (!__atomic_load_n(&l->stopping, __ATOMIC_ACQUIRE)) {
		int rc = handle_one(l); /* EINTR (the stop signal) comes back as 0 */
		if (rc == 1)
			return NULL; /* nothing can exec under this listener any more */
		if (rc < 0) {
			/* An unusable listener: close it so that the tree's
			 * execs fail (ENOSYS) instead of hanging on an fd
			 * nobody reads. */
			dprintf(l->o->log_fd,
			        "codeframe-agent: seccomp listener failed (%s); later execs in the "
			        "tree fail\n",
			        strerror(-rc));
			na_notify_free(l->notify);
			l->notify = NULL;
			return NULL;
		}
	}
	return NULL;
}

static void on_wake(int sig)
{
	(void)sig;
}

/* The thread may be blocked in receive or poll (before Linux 6.6 a receive
 * with no task left to notify blocks for good), so it is interrupted (a
 * signal without SA_RESTART: EINTR) until it has seen the flag or ended; a
 * signal landing outside the ioctl is retried. */
static void stop_notify_thread(struct loop *l, pthread_t t)
{
	__atomic_store_n(&l->stopping, 1, __ATOMIC_RELEASE);
	for (;;) {
		pthread_kill(t, SIGRTMIN);
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += 5 * 1000 * 1000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
		if (pthread_timedjoin_np(t, NULL, &deadline) == 0)
			return;
	}
}

static int status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

int na_supervise_run(const na_supervise_opts *o, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int sv[2] = {-1, -1}, sfd = -1, nfd = -1, rc, status = 0;
	sigset_t mask, oldmask;
	struct loop l = {.o = o, .root = {.fd = -1, .path = NULL}};
	char rootpath[PATH_MAX];
	pid_t pid = -1;
	char msg[256];
	pthread_t notifier;
	bool notifier_running = false;

	l.who.project_id = o->project_id;
	l.who.user_id = o->user_id;
	if (!o->argv || !o->argv[0]) {
		snprintf(err, errlen, "no command given");
		return -EINVAL;
	}
	rc = find_program(o->argv[0], path, sizeof path);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", o->argv[0],
		         rc == -ENOENT ? "command not found" : strerror(-rc));
		return rc == -ENOENT ? 127 : 126;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof *forwarded; i++)
		sigaddset(&mask, forwarded[i]);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		close(sv[0]);
		child(sv[1], path, o->argv, &oldmask);
	}
	close(sv[1]);
	sv[1] = -1;
	rc = recv_fd(sv[0], &nfd, msg, sizeof msg);
	if (rc < 0) {
		snprintf(err, errlen, "the command's seccomp filter could not be set up%s%s",
		         msg[0] && rc == -EPROTO ? ": " : "", rc == -EPROTO ? msg : "");
		goto fail;
	}
	close(sv[0]);
	sv[0] = -1;

	/* Threads only after fork: the writer thread starts here. */
	l.events = na_events_new(o->log_fd, o->log_level, 0, err, errlen);
	l.notify = l.events ? na_notify_new(nfd, err, errlen) : NULL;
	if (!l.notify) {
		rc = -ENOMEM;
		goto fail;
	}
	nfd = -1;
	l.anc = na_ancestry_new(pid, NULL, NULL);
	/* The tree shares CMD's root (the child is blocked in its first exec
	 * until we answer, so this is the root it will run in). A tree that
	 * chroots (root only) is resolved against this one. */
	snprintf(rootpath, sizeof rootpath, "/proc/%d/root", (int)pid);
	l.root.fd = open(rootpath, O_PATH | O_DIRECTORY | O_CLOEXEC);
	char link[PATH_MAX];
	ssize_t rl = readlink(rootpath, link, sizeof link - 1);
	if (rl > 0) {
		link[rl] = '\0';
		snprintf(rootpath, sizeof rootpath, "%s", link);
		l.root.path = rootpath;
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (!l.anc || sfd < 0) {
		rc = l.anc ? -errno : -ENOMEM;
		snprintf(err, errlen, "setting up the supervisor: %s", strerror(-rc));
		goto fail;
	}

	struct sigaction wake = {.sa_handler = on_wake}; /* no SA_RESTART */
	sigaction(SIGRTMIN, &wake, NULL);
	rc = pthread_create(&notifier, NULL, notify_thread, &l);
	if (rc != 0) {
		rc = -rc;
		snprintf(err, errlen, "starting the notify thread: %s", strerror(-rc));
		goto fail;
	}
	notifier_running = true;
	for (bool done = false; !done;) {
		struct signalfd_siginfo si;
		struct pollfd pf = {.fd = sfd, .events = POLLIN};
		if (poll(&pf, 1, -1) < 0 && errno != EINTR) {
			rc = -errno;
			snprintf(err, errlen, "poll: %s", strerror(errno));
			goto fail;
		}
		while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
			if (si.ssi_signo != SIGCHLD) {
				kill(pid, (int)si.ssi_signo);
				continue;
			}
			pid_t w;
			while ((w = waitpid(-1, &status, WNOHANG)) > 0)
				if (w == pid)
					done = true;
		}
	}
	rc = status_code(status);
	pid = -1;
fail:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (notifier_running)
		stop_notify_thread(&l, notifier);
	if (l.events)
		na_events_flush(l.events);
	na_events_free(l.events);
	na_notify_free(l.notify);
	na_ancestry_free(l.anc);
	if (l.root.fd >= 0)
		close(l.root.fd);
	if (nfd >= 0)
		close(nfd);
	if (sfd >= 0)
		close(sfd);
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	return rc;
}
