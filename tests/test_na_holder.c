/* Tests for the agent's resilience (na_holder, na_succession): the policy
 * side killed or stopped, a successor taking over, hostile or failed
 * handoffs. A "probe" child holds a seccomp notify filter on getppid and
 * hands its fd to the agent like a runtime; each call it makes is a
 * notification the agent must answer (getppid is not an exec, so the policy
 * side answers it with the level's default: strict EPERM, warn CONTINUE).
 * Real containers: tests/test_agent_runc.sh. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <seccomp.h>

#include "cf_buf.h"
#include "na_succession.h"
#include "support/ts_proc.h"

static char dir[64], sock[128], policy[128], warnpol[128], badpol[128], hsock[128];
static pid_t tracked[16];
static const char *pod_uid_env; /* POD_UID for the next spawn, or NULL */
static size_t n_tracked;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/na_holder_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	snprintf(policy, sizeof policy, "%s/strict.yml", dir);
	snprintf(warnpol, sizeof warnpol, "%s/warn.yml", dir);
	snprintf(badpol, sizeof badpol, "%s/bad.yml", dir);
	snprintf(hsock, sizeof hsock, "%s/state/handoff.sock", dir);
	write_file(policy, "enforcement_level: strict\nallowed_commands: [ls]\n");
	write_file(warnpol, "enforcement_level: warn\nallowed_commands: [ls]\n");
	write_file(badpol, "enforcement_level: strict\nallowed_comands: [ls]\n");
	pod_uid_env = NULL;
	n_tracked = 0;
}

static void track(pid_t pid)
{
	if (n_tracked < sizeof tracked / sizeof tracked[0])
		tracked[n_tracked++] = pid;
}

static void teardown(void)
{
	for (size_t i = 0; i < n_tracked; i++) {
		kill(tracked[i], SIGKILL);
		waitpid(tracked[i], NULL, 0);
	}
	ts_rm_tree(dir);
}

TestSuite(na_holder, .init = setup, .fini = teardown, .timeout = 90);

static char *slurp(const char *path)
{
	cf_buf b;
	char err[256];
	if (cf_read_file(path, 1u << 22, &b, err, sizeof err) < 0)
		return strdup("");
	return cf_buf_steal(&b);
}

static bool file_contains_within(const char *path, const char *needle, int tenths)
{
	return ts_wait_for_text(path, needle, (unsigned)tenths * 100u) == 0;
}

/* `codeframe-agent run` with stdout and stderr into LOG. */
static pid_t spawn_agent(const char *pol, const char *log)
{
	char state[128];
	snprintf(state, sizeof state, "%s/state", dir);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                (char *)pol,
	                (char *)"--state-dir",
	                state,
	                (char *)"--profile-dir",
	                (char *)"",
	                (char *)"--metrics-listen",
	                (char *)"",
	                NULL};
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		if (pod_uid_env)
			setenv("POD_UID", pod_uid_env, 1);
		else
			unsetenv("POD_UID");
		execv(ts_build_path("codeframe-agent"), args);
		_exit(127);
	}
	track(pid);
	return pid;
}

static pid_t start_agent(const char *pol, const char *log)
{
	pid_t pid = spawn_agent(pol, log);
	cr_assert(file_contains_within(log, "\"msg\":\"listening on", 100),
	          "agent did not start: %s", slurp(log));
	return pid;
}

/* Exit status, or -1 when it does not exit within 20 s. */
static int wait_exit(pid_t pid)
{
	int st;
	for (int i = 0; i < 400; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50000);
	}
	return -1;
}

/* The agent's policy side (its child), or 0. */
static pid_t policy_side(pid_t agent)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)agent, (int)agent);
	char *text = slurp(path);
	long pid = strtol(text, NULL, 10);
	free(text);
	return (pid_t)pid;
}

static pid_t new_policy_side(pid_t agent, pid_t old)
{
	for (int i = 0; i < 200; i++) {
		pid_t p = policy_side(agent);
		if (p > 0 && p != old)
			return p;
		usleep(50000);
	}
	return 0;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(s, (struct sockaddr *)&sun, sizeof sun) < 0) {
		close(s);
		return -1;
	}
	return s;
}

typedef struct probe {
	pid_t pid;
	int cmd, res;
} probe;

/* A child with a notify filter on getppid hands its fd to the agent. */
static probe start_probe(void)
{
	int cmd[2], res[2];
	cr_assert_eq(pipe2(cmd, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(res, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(getppid), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(1);
		int s = connect_unix(sock);
		if (s < 0)
			_exit(2);
		char json[256];
		snprintf(json, sizeof json,
		         "{\"fds\":[\"seccompFd\"],\"pid\":%d,\"state\":{\"id\":\"probe-%d\","
		         "\"pid\":%d}}",
		         getpid(), getpid(), getpid());
		int fd = seccomp_notify_fd(ctx);
		char ctl[CMSG_SPACE(sizeof(int))];
		memset(ctl, 0, sizeof ctl);
		struct iovec iov = {.iov_base = json, .iov_len = strlen(json)};
		struct msghdr msg = {.msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = ctl,
		                     .msg_controllen = sizeof ctl};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
		if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0)
			_exit(3);
		close(s);
		close(fd);
		char b;
		while (read(cmd[0], &b, 1) == 1) {
			long r = syscall(SYS_getppid);
			int e = r < 0 ? errno : 0;
			if (write(res[1], &e, sizeof e) != (ssize_t)sizeof e)
				_exit(4);
		}
		_exit(0);
	}
	track(pid);
	close(cmd[0]);
	close(res[1]);
	probe p = {.pid = pid, .cmd = cmd[1], .res = res[0]};
	return p;
}

/* errno of one getppid in the probe (0: it ran), or -1 when no answer came
 * within 30 s (a hang: CF_AGENT_ANSWER_TIMEOUT_MS is 10 s). */
static int probe_call(probe *p)
{
	cr_assert_eq(write(p->cmd, "x", 1), 1);
	struct pollfd pf = {.fd = p->res, .events = POLLIN};
	if (poll(&pf, 1, 30000) != 1)
		return -1;
	int e;
	if (read(p->res, &e, sizeof e) != (ssize_t)sizeof e)
		return -1;
	return e;
}

static void stop_probe(probe *p)
{
	close(p->cmd);
	close(p->res);
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
}

static probe registered_probe(const char *log, int expect_registrations)
{
	probe p = start_probe();
	/* Registered once the policy side logged it; count occurrences. */
	for (int i = 0; i < 100; i++) {
		char *text = slurp(log);
		int n = 0;
		for (char *s = text; (s = strstr(s, "\"msg\":\"container registered\"")); s++)
			n++;
		free(text);
		if (n >= expect_registrations)
			return p;
		usleep(100000);
	}
	cr_assert_fail("probe not registered: %s", slurp(log));
	return p;
}

Test(na_holder, policy_side_kill9_is_restarted_and_nothing_fails)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(policy, log);
	probe p = registered_probe(log, 1);
	cr_assert_eq(probe_call(&p), EPERM);
	for (int round = 0; round < 3; round++) {
		pid_t ps = policy_side(a);
		cr_assert(ps > 0);
		cr_assert_eq(kill(ps, SIGKILL), 0);
		/* Answered (the restarted side gets it re-sent, or the default
		 * applies), never ENOSYS, never a hang. */
		cr_assert_eq(probe_call(&p), EPERM, "round %d", round);
		cr_assert(new_policy_side(a, ps) > 0);
	}
	cr_assert(file_contains_within(log, "policy side restarted", 50));
	cr_assert_eq(probe_call(&p), EPERM);
	stop_probe(&p);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

/* A stuck policy side: the holder's bounded wait answers the default. */
Test(na_holder, stopped_policy_side_strict_default_is_eperm)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(policy, log);
	probe p = registered_probe(log, 1);
	pid_t ps = policy_side(a);
	cr_assert_eq(kill(ps, SIGSTOP), 0);
	cr_assert_eq(probe_call(&p), EPERM);
	cr_assert(file_contains_within(log, "exec answered by the level's default", 50));
	kill(ps, SIGCONT);
	stop_probe(&p);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

Test(na_holder, stopped_policy_side_warn_default_is_continue)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(warnpol, log);
	probe p = registered_probe(log, 1);
	cr_assert_eq(probe_call(&p), 0);
	pid_t ps = policy_side(a);
	cr_assert_eq(kill(ps, SIGSTOP), 0);
	cr_assert_eq(probe_call(&p), 0);
	cr_assert(file_contains_within(log, "\"answer\":\"CONTINUE\"", 50));
	kill(ps, SIGCONT);
	stop_probe(&p);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

Test(na_holder, successor_takes_over)
{
	char loga[128], logb[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(logb, sizeof logb, "%s/b.log", dir);
	pid_t a = start_agent(policy, loga);
	probe p = registered_probe(loga, 1);
	probe q = registered_probe(loga, 2);
	cr_assert_eq(probe_call(&p), EPERM);
	pid_t b = start_agent(policy, logb);
	cr_assert_eq(wait_exit(a), 0, "%s", slurp(loga));
	cr_assert(file_contains_within(logb, "took over 2 container(s)", 50), "%s", slurp(logb));
	cr_assert(file_contains_within(loga, "handed 2 container(s) to the successor", 50));
	cr_assert_eq(probe_call(&p), EPERM);
	cr_assert_eq(probe_call(&q), EPERM);
	struct stat st;
	cr_assert_eq(stat(sock, &st), 0);
	cr_assert_eq(stat(hsock, &st), 0);
	/* The successor accepts new containers on the same socket. */
	probe r = registered_probe(logb, 1);
	cr_assert_eq(probe_call(&r), EPERM);
	/* And a second upgrade works as well. */
	char logc[128];
	snprintf(logc, sizeof logc, "%s/c.log", dir);
	pid_t c = start_agent(policy, logc);
	cr_assert_eq(wait_exit(b), 0);
	cr_assert(file_contains_within(logc, "took over 3 container(s)", 50), "%s", slurp(logc));
	cr_assert_eq(probe_call(&q), EPERM);
	stop_probe(&p);
	stop_probe(&q);
	stop_probe(&r);
	kill(c, SIGTERM);
	cr_assert_eq(wait_exit(c), 0);
	cr_assert_neq(stat(sock, &st), 0, "the last agent removes its socket");
	cr_assert_neq(stat(hsock, &st), 0, "the last agent removes its handoff socket");
}

/* A successor whose policy does not load takes nothing. */
Test(na_holder, successor_with_broken_policy_leaves_old_serving)
{
	char loga[128], logb[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(logb, sizeof logb, "%s/b.log", dir);
	pid_t a = start_agent(policy, loga);
	probe p = registered_probe(loga, 1);
	pid_t b = spawn_agent(badpol, logb);
	cr_assert_eq(wait_exit(b), 1);
	cr_assert_eq(kill(a, 0), 0);
	cr_assert_eq(probe_call(&p), EPERM);
	stop_probe(&p);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

/* A successor that dies before acknowledging: the old agent resumes. */
Test(na_holder, successor_dying_mid_handoff_old_resumes)
{
	char loga[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	pid_t a = start_agent(policy, loga);
	probe p = registered_probe(loga, 1);
	int conn = connect_unix(hsock);
	cr_assert(conn >= 0);
	cr_assert_eq(write(conn, "CFHANDOFF1\n", 11), 11);
	char buf[64];
	struct pollfd pf = {.fd = conn, .events = POLLIN};
	cr_assert_eq(poll(&pf, 1, 20000), 1);
	cr_assert(read(conn, buf, sizeof buf) > 0); /* the header (fds dropped) */
	close(conn);
	cr_assert(file_contains_within(loga, "resuming service", 400), "%s", slurp(loga));
	cr_assert_eq(probe_call(&p), EPERM);
	probe q = registered_probe(loga, 2);
	cr_assert_eq(probe_call(&q), EPERM);
	stop_probe(&p);
	stop_probe(&q);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

Test(na_holder, garbage_handoff_request_refused)
{
	char loga[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	pid_t a = start_agent(policy, loga);
	probe p = registered_probe(loga, 1);
	int conn = connect_unix(hsock);
	cr_assert(conn >= 0);
	cr_assert_eq(write(conn, "GET / HTTP/1.0\r\n", 16), 16);
	char buf[8];
	/* Closed without an answer (a reset: the rest was never read). */
	cr_assert(read(conn, buf, sizeof buf) <= 0);
	close(conn);
	cr_assert(file_contains_within(loga, "not a handoff request", 50));
	cr_assert_eq(probe_call(&p), EPERM);
	stop_probe(&p);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

Test(na_holder, silent_handoff_peer_times_out)
{
	char loga[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	pid_t a = start_agent(policy, loga);
	int conn = connect_unix(hsock);
	cr_assert(conn >= 0);
	char buf[8];
	cr_assert_eq(read(conn, buf, sizeof buf), 0, "closed after the request timeout");
	close(conn);
	cr_assert(file_contains_within(loga, "handoff request refused", 50));
	cr_assert_eq(kill(a, 0), 0);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

Test(na_holder, non_root_handoff_peer_refused)
{
	char loga[128], state[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	pid_t a = start_agent(policy, loga);
	/* Loosen the path so only the credential check stands in the way. */
	cr_assert_eq(chmod(dir, 0755), 0);
	cr_assert_eq(chmod(state, 0755), 0);
	cr_assert_eq(chmod(hsock, 0666), 0);
	pid_t c = fork();
	cr_assert(c >= 0);
	if (c == 0) {
		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(10);
		int conn = connect_unix(hsock);
		if (conn < 0)
			_exit(11);
		signal(SIGPIPE, SIG_IGN);
		/* Refused: the write fails (the agent already closed) or the
		 * read sees the connection closed without a handoff. */
		if (write(conn, "CFHANDOFF1\n", 11) != 11)
			_exit(0);
		char buf[8];
		_exit(read(conn, buf, sizeof buf) <= 0 ? 0 : 13);
	}
	track(c);
	int st = wait_exit(c);
	cr_assert_eq(st, 0, "peer status %d", st);
	cr_assert(file_contains_within(loga, "handoff request from a non-root peer refused", 50));
	cr_assert_eq(kill(a, 0), 0);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

/* Someone else's file at the handoff path: startup fails, nothing removed. */
Test(na_holder, handoff_path_not_a_socket)
{
	char loga[128], state[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	cr_assert_eq(mkdir(state, 0700), 0);
	write_file(hsock, "not a socket");
	pid_t a = spawn_agent(policy, loga);
	cr_assert_eq(wait_exit(a), 1);
	cr_assert(file_contains_within(loga, "is not a socket", 10), "%s", slurp(loga));
	char *text = slurp(hsock);
	cr_assert_str_eq(text, "not a socket");
	free(text);
}

/* A stale handoff socket (its agent was killed) is replaced. */
Test(na_holder, stale_handoff_socket_replaced)
{
	char loga[128], logb[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(logb, sizeof logb, "%s/b.log", dir);
	pid_t a = start_agent(policy, loga);
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	pid_t b = start_agent(policy, logb);
	cr_assert(!file_contains_within(logb, "taking over", 5));
	probe p = registered_probe(logb, 1);
	cr_assert_eq(probe_call(&p), EPERM);
	stop_probe(&p);
	kill(b, SIGTERM);
	cr_assert_eq(wait_exit(b), 0);
}

Test(na_holder, policy_side_role_rejects_bad_fd)
{
	char *args[][5] = {
	    {(char *)"codeframe-agent", (char *)"__policy-side", NULL},
	    {(char *)"codeframe-agent", (char *)"__policy-side", (char *)"abc", (char *)"run",
	     NULL},
	    {(char *)"codeframe-agent", (char *)"__policy-side", (char *)"1", (char *)"run", NULL},
	    {(char *)"codeframe-agent", (char *)"__policy-side", (char *)"99", (char *)"run", NULL},
	};
	for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 1);
			dup2(null, 2);
			execv(ts_build_path("codeframe-agent"), args[i]);
			_exit(127);
		}
		cr_assert_eq(wait_exit(pid), 2, "case %zu", i);
	}
}

/* "Name:\tvalue" from /proc/PID/status, or "". */
static void status_field(pid_t pid, const char *name, char *out, size_t outlen)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	char *text = slurp(path);
	out[0] = '\0';
	char key[64];
	snprintf(key, sizeof key, "\n%s:", name);
	const char *p = strstr(text, key);
	if (p) {
		p += strlen(key);
		while (*p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, "\n");
		snprintf(out, outlen, "%.*s", (int)n, p);
	}
	free(text);
}

static void assert_least_privilege(pid_t pid, const char *who)
{
	char v[64];
	/* CAP_SYS_PTRACE is bit 19. */
	status_field(pid, "CapEff", v, sizeof v);
	cr_assert_str_eq(v, "0000000000080000", "%s CapEff", who);
	status_field(pid, "CapPrm", v, sizeof v);
	cr_assert_str_eq(v, "0000000000080000", "%s CapPrm", who);
	status_field(pid, "CapBnd", v, sizeof v);
	cr_assert_str_eq(v, "0000000000080000", "%s CapBnd", who);
	status_field(pid, "CapInh", v, sizeof v);
	cr_assert_str_eq(v, "0000000000000000", "%s CapInh", who);
	status_field(pid, "CapAmb", v, sizeof v);
	cr_assert_str_eq(v, "0000000000000000", "%s CapAmb", who);
	status_field(pid, "NoNewPrivs", v, sizeof v);
	cr_assert_str_eq(v, "1", "%s NoNewPrivs", who);
}

Test(na_holder, keeps_only_cap_sys_ptrace_and_still_works)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(policy, log);
	probe p = registered_probe(log, 1);
	cr_assert_eq(probe_call(&p), EPERM);
	assert_least_privilege(a, "holder");
	pid_t ps = policy_side(a);
	cr_assert(ps > 0);
	assert_least_privilege(ps, "policy side");
	/* A restarted policy side cannot regain anything either. */
	kill(ps, SIGKILL);
	pid_t ps2 = new_policy_side(a, ps);
	cr_assert(ps2 > 0);
	cr_assert_eq(probe_call(&p), EPERM);
	assert_least_privilege(ps2, "restarted policy side");
	/* New containers are still accepted and sockets still removed. */
	probe q = registered_probe(log, 2);
	cr_assert_eq(probe_call(&q), EPERM);
	stop_probe(&p);
	stop_probe(&q);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
	struct stat st;
	cr_assert_neq(stat(sock, &st), 0, "the socket was removed without privileges");
	cr_assert_neq(stat(hsock, &st), 0);
}

/* A DaemonSet pod's container that handed over is restarted by the kubelet
 * until the pod is deleted: it must not take the fds back. */
Test(na_holder, restarted_retired_pod_stays_idle)
{
	char loga[128], logb[128], loga2[128], marker[192];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(logb, sizeof logb, "%s/b.log", dir);
	snprintf(loga2, sizeof loga2, "%s/a2.log", dir);
	snprintf(marker, sizeof marker, "%s/state/retired.pod-a", dir);
	pod_uid_env = "pod-a";
	pid_t a = start_agent(policy, loga);
	probe p = registered_probe(loga, 1);
	pod_uid_env = "pod-b";
	pid_t b = start_agent(policy, logb);
	cr_assert_eq(wait_exit(a), 0);
	struct stat st;
	cr_assert_eq(stat(marker, &st), 0, "the old pod is marked retired");
	/* The kubelet restarts pod-a's container. */
	pod_uid_env = "pod-a";
	pid_t a2 = spawn_agent(policy, loga2);
	cr_assert(file_contains_within(loga2, "already handed over to a successor", 50), "%s",
	          slurp(loga2));
	cr_assert(!file_contains_within(logb, "a successor asks for the handoff", 5));
	cr_assert_eq(probe_call(&p), EPERM, "the successor still answers");
	/* The pod is deleted: the idle process exits, touching nothing. */
	kill(a2, SIGTERM);
	cr_assert_eq(wait_exit(a2), 0);
	cr_assert_neq(stat(marker, &st), 0, "the marker goes with the pod");
	cr_assert_eq(probe_call(&p), EPERM);
	cr_assert_eq(stat(sock, &st), 0);
	/* Another pod (or no pod) still takes over normally. */
	pod_uid_env = NULL;
	char logc[128];
	snprintf(logc, sizeof logc, "%s/c.log", dir);
	pid_t c = start_agent(policy, logc);
	cr_assert_eq(wait_exit(b), 0);
	cr_assert(file_contains_within(logc, "took over 1 container(s)", 50));
	cr_assert_eq(probe_call(&p), EPERM);
	stop_probe(&p);
	kill(c, SIGTERM);
	cr_assert_eq(wait_exit(c), 0);
}

Test(na_holder, malformed_pod_uid_ignored)
{
	char loga[128], logb[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(logb, sizeof logb, "%s/b.log", dir);
	pod_uid_env = "../../etc/passwd";
	pid_t a = start_agent(policy, loga);
	pid_t b = start_agent(policy, logb);
	cr_assert_eq(wait_exit(a), 0);
	pod_uid_env = NULL;
	struct stat st;
	char bad[192];
	snprintf(bad, sizeof bad, "%s/state/retired.../../etc/passwd", dir);
	cr_assert_neq(stat(bad, &st), 0);
	kill(b, SIGTERM);
	cr_assert_eq(wait_exit(b), 0);
}

/* A log reader that stalls (a full stdout pipe) costs log lines, never
 * answers: the exec is decided by the policy side (counted in its metrics),
 * not merely answered by the holder's default after its timeout. */
Test(na_holder, stalled_log_pipe_never_stalls_answers)
{
	int pp[2];
	cr_assert_eq(pipe2(pp, O_CLOEXEC), 0);
	fcntl(pp[1], F_SETPIPE_SZ, 4096);
	fcntl(pp[1], F_SETFL, O_NONBLOCK);
	char junk[512];
	memset(junk, 'x', sizeof junk);
	while (write(pp[1], junk, sizeof junk) > 0)
		;
	fcntl(pp[1], F_SETFL, 0);
	char state[128], errlog[128], portarg[32];
	snprintf(state, sizeof state, "%s/state", dir);
	snprintf(errlog, sizeof errlog, "%s/err.log", dir);
	int port = 20000 + (int)(getpid() % 20000);
	snprintf(portarg, sizeof portarg, "127.0.0.1:%d", port);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--state-dir",
	                state,
	                (char *)"--profile-dir",
	                (char *)"",
	                (char *)"--metrics-listen",
	                portarg,
	                NULL};
	pid_t a = fork();
	cr_assert(a >= 0);
	if (a == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int e = open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (e < 0 || dup2(pp[1], 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execv(ts_build_path("codeframe-agent"), args);
		_exit(127);
	}
	track(a);
	close(pp[1]);
	struct stat st;
	for (int i = 0; i < 200 && stat(sock, &st) < 0; i++)
		usleep(50000);
	cr_assert_eq(stat(sock, &st), 0, "the agent starts with its log stalled: %s",
	             slurp(errlog));
	probe p = start_probe();
	cr_assert_eq(probe_call(&p), EPERM);
	/* Decided by the policy side: its counter moved. */
	bool decided = false;
	for (int i = 0; i < 100 && !decided; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (connect(s, (struct sockaddr *)&sin, sizeof sin) == 0) {
			const char *req = "GET /metrics HTTP/1.0\r\n\r\n";
			cr_assert_eq(write(s, req, strlen(req)), (ssize_t)strlen(req));
			cf_buf b;
			cf_buf_init(&b, 1u << 20);
			if (cf_read_fd(s, &b) == 0 && b.data &&
			    strstr(b.data,
			           "codeframe_agent_notifications_total{decision=\"deny\"} 1"))
				decided = true;
			cf_buf_free(&b);
		}
		close(s);
		if (!decided)
			usleep(100000);
	}
	cr_assert(decided, "the policy side answered, not the holder's timeout default");
	cr_assert(!file_contains_within(errlog, "exec answered by the level's default", 1));
	stop_probe(&p);
	close(pp[0]); /* the reader goes away: writes fail instead of blocking */
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

/* ---- the entrypoint: the first exec that replaces init's image ----
 * A child filters execve with a notify filter, hands its fd over as a
 * container whose init is itself, then runs `first` (an exec the kernel
 * fails after the agent continued it, or NULL) and then `argv`. Its exit
 * status, or -1 when it does not exit within 20 s. */
static int entry_probe(const char *log, const char *first, char *const argv[])
{
	int go[2];
	cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(go[1]);
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execve), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(101);
		int s = connect_unix(sock);
		if (s < 0)
			_exit(102);
		char json[256];
		snprintf(json, sizeof json,
		         "{\"fds\":[\"seccompFd\"],\"pid\":%d,\"state\":{\"id\":\"entry-%d\","
		         "\"pid\":%d}}",
		         getpid(), getpid(), getpid());
		int fd = seccomp_notify_fd(ctx);
		char ctl[CMSG_SPACE(sizeof(int))];
		memset(ctl, 0, sizeof ctl);
		struct iovec iov = {.iov_base = json, .iov_len = strlen(json)};
		struct msghdr msg = {.msg_iov = &iov,
		                     .msg_iovlen = 1,
		                     .msg_control = ctl,
		                     .msg_controllen = sizeof ctl};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
		if (sendmsg(s, &msg, MSG_NOSIGNAL) < 0)
			_exit(103);
		close(s);
		close(fd);
		char b;
		if (read(go[0], &b, 1) != 1)
			_exit(104);
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null >= 0)
			dup2(null, 2); /* sh's message for a refused exec */
		char *const env[] = {(char *)"PATH=/usr/bin:/bin", NULL};
		if (first) {
			/* Continued as the entrypoint, then failed by the kernel:
			 * init's image is unchanged, as after a retried execve. */
			execve(first, argv, env);
			if (errno != ENOENT)
				_exit(105);
		}
		execve(argv[0], argv, env);
		_exit(errno == EPERM ? 106 : 107);
	}
	track(pid);
	close(go[0]);
	for (int i = 0; i < 100 && !file_contains_within(log, "\"container_id\":\"entry-", 1); i++)
		usleep(100000);
	cr_assert_eq(write(go[1], "x", 1), 1);
	close(go[1]);
	return wait_exit(pid);
}

/* The kernel may discard a delivered CONTINUE (a signal interrupted its
 * wait for the answer) or fail the exec after it: the retry by the same,
 * unchanged init is still the entrypoint (strict: sh is not an allowed
 * command and runs only as the entrypoint). */
Test(na_holder, entrypoint_retried_after_a_continue_is_still_the_entrypoint)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(policy, log);
	char *const argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"exit 7", NULL};
	int st = entry_probe(log, "/nonexistent-entrypoint/sh", argv);
	cr_assert_eq(st, 7, "the retried entrypoint did not run (status %d): %s", st, slurp(log));
	cr_assert(file_contains_within(log, "entrypoint exec retried after it was continued", 50));
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

/* Once the entrypoint replaced init's image, an exec by init is decided
 * like any other: `exec cat` from the entrypoint shell is denied. */
Test(na_holder, exec_by_init_after_the_entrypoint_ran_is_decided)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(policy, log);
	char *const argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"exec /bin/cat /dev/null",
	                      NULL};
	int st = entry_probe(log, NULL, argv);
	/* sh exits 126 when its `exec` is refused. */
	cr_assert_eq(st, 126, "status %d: %s", st, slurp(log));
	cr_assert(file_contains_within(log, "\"command\":\"/bin/cat /dev/null\"", 50), "%s",
	          slurp(log));
	char *text = slurp(log);
	char *line = strstr(text, "\"command\":\"/bin/cat /dev/null\"");
	char *end = line ? strchr(line, '\n') : NULL;
	if (end)
		*end = '\0';
	cr_assert(line && strstr(line, "\"decision\":\"deny\""), "%s", text);
	free(text);
	cr_assert(!file_contains_within(log, "entrypoint exec retried", 1));
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

/* A failed entrypoint exec followed by an exec of something else after the
 * image changed is not the entrypoint: the entrypoint shell runs and its
 * own `exec` of a second non-allowed command from init is refused. */
Test(na_holder, retried_entrypoint_then_exec_by_init_is_decided)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(policy, log);
	char *const argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)"exec /bin/cat /dev/null",
	                      NULL};
	int st = entry_probe(log, "/nonexistent-entrypoint/sh", argv);
	/* sh exits 126 when its `exec` is refused. */
	cr_assert_eq(st, 126, "status %d: %s", st, slurp(log));
	cr_assert(file_contains_within(log, "\"command\":\"/bin/cat /dev/null\"", 50), "%s",
	          slurp(log));
	char *text = slurp(log);
	char *line = strstr(text, "\"command\":\"/bin/cat /dev/null\"");
	char *end = line ? strchr(line, '\n') : NULL;
	if (end)
		*end = '\0';
	cr_assert(line && strstr(line, "\"decision\":\"deny\""), "%s", text);
	free(text);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}
