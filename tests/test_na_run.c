/* Tests for `codeframe-agent run` as a process: command line and startup
 * errors, hostile handoffs on its socket, metrics HTTP, shutdown. Exec
 * decisions with real containers are in tests/test_agent_runc.sh. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <seccomp.h>

#include "cf_buf.h"
#include "support/ts_proc.h"

static char dir[64], sock[128], policy[128], logpath[128], errpath[128];
static int port;

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/na_run_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	snprintf(policy, sizeof policy, "%s/policy.yml", dir);
	snprintf(logpath, sizeof logpath, "%s/agent.log", dir);
	snprintf(errpath, sizeof errpath, "%s/agent.err", dir);
	FILE *f = fopen(policy, "w");
	cr_assert_not_null(f);
	fputs("enforcement_level: strict\nallowed_commands: [ls]\n", f);
	fclose(f);
	port = 30000 + (int)(getpid() % 20000);
}

/* Every process a test starts, so that a failed assertion (which ends the
 * test process early) never leaves an agent or a seccomp child running. */
static pid_t children[16];
static size_t n_children;

static void track(pid_t pid)
{
	if (n_children < sizeof children / sizeof children[0])
		children[n_children++] = pid;
}

static void teardown(void)
{
	for (size_t i = 0; i < n_children; i++) {
		if (kill(children[i], SIGKILL) == 0)
			waitpid(children[i], NULL, 0);
	}
	n_children = 0;
	ts_rm_tree(dir);
}

TestSuite(na_run, .init = setup, .fini = teardown, .timeout = 60);

static pid_t spawn(char *const *args)
{
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		/* Dies with the test process even when it ends in an assert. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int out = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		int err = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execv(ts_build_path("codeframe-agent"), args);
		_exit(127);
	}
	track(pid);
	return pid;
}

static int wait_status(pid_t pid)
{
	int st;
	for (int i = 0; i < 200; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	cr_assert_fail("agent did not exit");
	return -1;
}

static char *slurp(const char *path)
{
	cf_buf b;
	char err[256];
	if (cf_read_file(path, 1u << 20, &b, err, sizeof err) < 0)
		return strdup("");
	return cf_buf_steal(&b);
}

/* Runs `codeframe-agent run ARGS...` expecting it to exit; returns status. */
static int run_expect_exit(char *const *args)
{
	return wait_status(spawn(args));
}

static pid_t start_agent(void)
{
	char portarg[32];
	snprintf(portarg, sizeof portarg, "127.0.0.1:%d", port);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--state-dir",
	                dir,
	                (char *)"--profile-dir",
	                dir,
	                (char *)"--metrics-listen",
	                portarg,
	                (char *)"--node-name",
	                (char *)"node-x",
	                NULL};
	pid_t pid = spawn(args);
	struct stat st;
	for (int i = 0; i < 100 && stat(sock, &st) < 0; i++)
		usleep(50000);
	cr_assert_eq(stat(sock, &st), 0, "agent did not create its socket: %s", slurp(errpath));
	return pid;
}

static void stop_agent(pid_t pid)
{
	kill(pid, SIGTERM);
	cr_assert_eq(wait_status(pid), 0);
}

static char *http(const char *request)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(s, (struct sockaddr *)&sin, sizeof sin), 0, "%s", strerror(errno));
	cr_assert_eq(write(s, request, strlen(request)), (ssize_t)strlen(request));
	cf_buf b;
	cf_buf_init(&b, 1u << 20);
	cr_assert_eq(cf_read_fd(s, &b), 0);
	close(s);
	return cf_buf_steal(&b);
}

static bool log_contains_within(const char *needle, int tenths)
{
	for (int i = 0; i < tenths; i++) {
		char *text = slurp(logpath);
		bool found = strstr(text, needle) != NULL;
		free(text);
		if (found)
			return true;
		usleep(100000);
	}
	return false;
}

static bool log_contains(const char *needle)
{
	return log_contains_within(needle, 50);
}

static int connect_agent(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, sock, strlen(sock) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(s, (struct sockaddr *)&sun, sizeof sun) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static void send_fd(int s, const char *data, int fd)
{
	char ctl[CMSG_SPACE(sizeof(int))];
	memset(ctl, 0, sizeof ctl);
	struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
	struct msghdr msg = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	sendmsg(s, &msg, MSG_NOSIGNAL);
}

/* A child with a seccomp notify filter (on getppid, never called) hands
 * its notify fd to the agent with `json`, then waits to be killed. */
static pid_t handoff_seccomp_fd(const char *json)
{
	int ready[2];
	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(getppid), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(1);
		int s = connect_agent();
		if (s < 0)
			_exit(2);
		send_fd(s, json, seccomp_notify_fd(ctx));
		close(s);
		if (write(ready[1], "x", 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	track(pid);
	close(ready[1]);
	char c;
	cr_assert_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

Test(na_run, help_exits_zero)
{
	char *args[] = {(char *)"codeframe-agent", (char *)"run", (char *)"--help", NULL};
	cr_assert_eq(run_expect_exit(args), 0);
}

Test(na_run, serves_metrics_and_exits_on_sigterm)
{
	pid_t pid = start_agent();
	char *m = http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	cr_assert_not_null(strstr(m, "HTTP/1.1 200 OK"));
	cr_assert_not_null(strstr(m, "codeframe_agent_notify_fds 0"), "%s", m);
	cr_assert_not_null(strstr(m, "codeframe_agent_notifications_total{decision=\"deny\"} 0"));
	cr_assert_not_null(strstr(m, "codeframe_agent_decision_latency_seconds"));
	free(m);
	m = http("GET /healthz HTTP/1.1\r\n\r\n");
	cr_assert_not_null(strstr(m, "\r\n\r\nok\n"));
	free(m);
	/* The profile was installed for this socket. */
	char path[256];
	snprintf(path, sizeof path, "%s/codeframe/worker.json", dir);
	char *profile = slurp(path);
	cr_assert_not_null(strstr(profile, sock));
	free(profile);
	stop_agent(pid);
	struct stat st;
	cr_assert_eq(stat(sock, &st), -1, "socket left behind");
}

Test(na_run, seccomp_handoff_registered_with_identity)
{
	pid_t pid = start_agent();
	char json[512];
	snprintf(json, sizeof json,
	         "{\"fds\":[\"seccompFd\"],\"pid\":%d,\"metadata\":\"codeframe-guard/worker/v1\","
	         "\"state\":{\"id\":\"c-1\",\"pid\":%d,\"annotations\":{"
	         "\"io.kubernetes.pod.namespace\":\"ns\",\"io.kubernetes.pod.name\":\"p\","
	         "\"io.kubernetes.container.name\":\"runner\"}}}",
	         getpid(), getpid());
	pid_t child = handoff_seccomp_fd(json);
	cr_assert(log_contains("\"msg\":\"container registered\""));
	cr_assert(log_contains("\"container\":\"runner\""));
	cr_assert(log_contains("\"node\":\"node-x\""));
	char *m = http("GET /metrics HTTP/1.0\r\n\r\n");
	cr_assert_not_null(strstr(m, "codeframe_agent_notify_fds 1"), "%s", m);
	cr_assert_not_null(strstr(m, "codeframe_agent_handoffs_total{result=\"accepted\"} 1"));
	free(m);
	/* Its only process exits: hang-up releases the container. */
	reap(child);
	cr_assert(log_contains("\"msg\":\"container released\""));
	stop_agent(pid);
}

/* Negative cases. */

Test(na_run, usage_errors)
{
	char *a1[] = {(char *)"codeframe-agent", (char *)"run", (char *)"--bogus", NULL};
	cr_assert_eq(run_expect_exit(a1), 2);
	char *a2[] = {(char *)"codeframe-agent", (char *)"run", (char *)"extra", NULL};
	cr_assert_eq(run_expect_exit(a2), 2);
	char *a3[] = {(char *)"codeframe-agent", (char *)"run", (char *)"--metrics-listen",
	              (char *)"nope", NULL};
	cr_assert_eq(run_expect_exit(a3), 2);
	char *a4[] = {(char *)"codeframe-agent", (char *)"run", (char *)"--socket", NULL};
	cr_assert_eq(run_expect_exit(a4), 2);
}

Test(na_run, invalid_policy_fails_startup)
{
	FILE *f = fopen(policy, "w");
	fputs("enforcement_level: sometimes\n", f);
	fclose(f);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--profile-dir",
	                (char *)"",
	                (char *)"--metrics-listen",
	                (char *)"",
	                (char *)"--state-dir",
	                dir,
	                NULL};
	cr_assert_eq(run_expect_exit(args), 1);
	char *e = slurp(errpath);
	cr_assert_not_null(strstr(e, "policy.yml"), "%s", e);
	free(e);
}

Test(na_run, missing_config_fails_startup)
{
	char *args[] = {(char *)"codeframe-agent", (char *)"run", (char *)"--config",
	                (char *)"/nonexistent/agent.yaml", NULL};
	cr_assert_eq(run_expect_exit(args), 1);
	char *e = slurp(errpath);
	cr_assert_not_null(strstr(e, "/nonexistent/agent.yaml"), "%s", e);
	free(e);
}

Test(na_run, socket_path_occupied_by_file)
{
	int fd = open(sock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--profile-dir",
	                (char *)"",
	                (char *)"--metrics-listen",
	                (char *)"",
	                (char *)"--state-dir",
	                dir,
	                NULL};
	cr_assert_eq(run_expect_exit(args), 1);
	char *e = slurp(errpath);
	cr_assert_not_null(strstr(e, "not a socket"), "%s", e);
	free(e);
}

Test(na_run, unwritable_profile_dir_fails_startup)
{
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--profile-dir",
	                (char *)"/proc/self",
	                (char *)"--metrics-listen",
	                (char *)"",
	                (char *)"--state-dir",
	                dir,
	                NULL};
	cr_assert_eq(run_expect_exit(args), 1);
	char *e = slurp(errpath);
	cr_assert_not_null(strstr(e, "/proc/self/codeframe"), "%s", e);
	free(e);
}

/* Same runtime socket, another state directory: not a successor (a
 * successor shares the state directory), so it must not steal the socket. */
Test(na_run, second_agent_refused)
{
	pid_t pid = start_agent();
	char other[128];
	snprintf(other, sizeof other, "%s/other-state", dir);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--profile-dir",
	                (char *)"",
	                (char *)"--metrics-listen",
	                (char *)"",
	                (char *)"--state-dir",
	                other,
	                NULL};
	pid_t second = fork();
	if (second == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int err = open("/dev/null", O_WRONLY);
		dup2(err, 1);
		dup2(err, 2);
		execv(ts_build_path("codeframe-agent"), args);
		_exit(127);
	}
	cr_assert_eq(wait_status(second), 1);
	stop_agent(pid);
}

Test(na_run, non_seccomp_fd_rejected)
{
	pid_t pid = start_agent();
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	int s = connect_agent();
	cr_assert(s >= 0);
	send_fd(s, "{\"fds\":[\"seccompFd\"],\"pid\":1,\"state\":{\"id\":\"x\",\"pid\":1}}", p[0]);
	close(s);
	cr_assert(log_contains("not a seccomp notify fd"));
	char *m = http("GET /metrics HTTP/1.0\r\n\r\n");
	cr_assert_not_null(strstr(m, "codeframe_agent_handoffs_total{result=\"rejected\"} 1"), "%s",
	                   m);
	cr_assert_not_null(strstr(m, "codeframe_agent_notify_fds 0"));
	free(m);
	close(p[0]);
	close(p[1]);
	stop_agent(pid);
}

Test(na_run, garbage_state_keeps_policing)
{
	pid_t pid = start_agent();
	pid_t child = handoff_seccomp_fd("{\"fds\":[\"seccompFd\"],\"state\":{\"id\":[]}}");
	cr_assert(log_contains("handoff state unreadable"));
	cr_assert(log_contains("\"container\":\"unknown\""));
	char *m = http("GET /metrics HTTP/1.0\r\n\r\n");
	cr_assert_not_null(strstr(m, "codeframe_agent_notify_fds 1"), "%s", m);
	free(m);
	reap(child);
	stop_agent(pid);
}

Test(na_run, silent_and_oversized_clients_do_not_wedge)
{
	pid_t pid = start_agent();
	/* A connection that never sends: dropped after the handoff timeout;
	 * meanwhile metrics (another thread) still answer. */
	int quiet = connect_agent();
	cr_assert(quiet >= 0);
	char *m = http("GET /healthz HTTP/1.0\r\n\r\n");
	cr_assert_not_null(strstr(m, "ok"));
	free(m);
	cr_assert(log_contains_within("handoff rejected: handoff not complete", 150));
	close(quiet);
	stop_agent(pid);
}

Test(na_run, metrics_bad_requests)
{
	pid_t pid = start_agent();
	char *m = http("GET /other HTTP/1.0\r\n\r\n");
	cr_assert_not_null(strstr(m, "404"), "%s", m);
	free(m);
	m = http("POST /metrics HTTP/1.0\r\n\r\n");
	cr_assert_not_null(strstr(m, "405"), "%s", m);
	free(m);
	m = http("\r\n\r\n");
	cr_assert_not_null(strstr(m, "405"), "%s", m);
	free(m);
	stop_agent(pid);
}

Test(na_run, policy_reload_error_keeps_running)
{
	pid_t pid = start_agent();
	FILE *f = fopen(policy, "w");
	fputs("enforcement_level: [\n", f);
	fclose(f);
	cr_assert(log_contains("keeping the previous policy"));
	kill(pid, SIGHUP);
	char *m = NULL;
	for (int i = 0; i < 50; i++) {
		free(m);
		m = http("GET /metrics HTTP/1.0\r\n\r\n");
		if (strstr(m, "codeframe_agent_policy_reloads_total{result=\"error\"} 2"))
			break;
		usleep(50000);
	}
	cr_assert_not_null(strstr(m, "codeframe_agent_policy_reloads_total{result=\"error\"} 2"),
	                   "%s", m);
	free(m);
	stop_agent(pid);
}

/* The profile subcommands as the DaemonSet's init step would run them. */
Test(na_run, install_profile_command)
{
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"install-profile",
	                (char *)"--dir",
	                dir,
	                (char *)"--listener",
	                sock,
	                NULL};
	cr_assert_eq(run_expect_exit(args), 0);
	char path[256];
	snprintf(path, sizeof path, "%s/codeframe/worker.json", dir);
	char *p = slurp(path);
	cr_assert_not_null(strstr(p, "\"SCMP_ACT_NOTIFY\""));
	cr_assert_not_null(strstr(p, sock));
	free(p);
	char *pargs[] = {(char *)"codeframe-agent", (char *)"profile", NULL};
	cr_assert_eq(run_expect_exit(pargs), 0);
	char *out = slurp(logpath);
	cr_assert_not_null(strstr(out, "/run/codeframe-guard/agent.sock"), "%s", out);
	free(out);
}

Test(na_run, profile_command_errors)
{
	char *a1[] = {(char *)"codeframe-agent", (char *)"profile", (char *)"--listener",
	              (char *)"relative.sock", NULL};
	cr_assert_eq(run_expect_exit(a1), 1);
	char *e = slurp(errpath);
	cr_assert_not_null(strstr(e, "absolute"), "%s", e);
	free(e);
	char *a2[] = {(char *)"codeframe-agent", (char *)"install-profile", (char *)"--dir",
	              (char *)"/proc/self", NULL};
	cr_assert_eq(run_expect_exit(a2), 1);
	e = slurp(errpath);
	cr_assert_not_null(strstr(e, "cannot create directory /proc/self/codeframe"), "%s", e);
	free(e);
	char *a3[] = {(char *)"codeframe-agent", (char *)"install-profile", (char *)"--bogus",
	              NULL};
	cr_assert_eq(run_expect_exit(a3), 2);
}

Test(na_run, unknown_approval_group_fails_startup)
{
	char cfg[160];
	snprintf(cfg, sizeof cfg, "%s/agent.yaml", dir);
	FILE *f = fopen(cfg, "w");
	fputs("approvalGroup: no-such-group-codeframe\nmetricsListen: \"\"\nprofileDir: \"\"\n", f);
	fclose(f);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--config",
	                cfg,
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--state-dir",
	                dir,
	                NULL};
	cr_assert_eq(run_expect_exit(args), 1);
	char *e = slurp(errpath);
	cr_assert_not_null(strstr(e, "no-such-group-codeframe"), "%s", e);
	free(e);
}
