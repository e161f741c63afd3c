/* Tests for approvals: the na_approval table and control protocol, and the
 * running agent (`run`) with `approvals`/`approve`/`deny`: granted, denied,
 * timed out, the process died while waiting, a signal-restarted exec finds
 * its approval, unauthorized peers refused, group members allowed.
 *
 * The exec probe: a child with a notify filter on execve hands its fd to
 * the agent; on request it forks a grandchild that execs
 * `/bin/echo approve-me` (its pid is not the tree's root, so it is not the
 * trusted entrypoint) and reports the grandchild's pid and exec result. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
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

#include "cf_buf.h"
#include "cf_limits.h"
#include "na_approval.h"
#include "support/ts_proc.h"

/* ---- the table ---- */

static na_approval_info info(pid_t pid, uint64_t start, const char *cmd)
{
	na_approval_info i = {.container_id = "c1",
	                      .pid = pid,
	                      .start = start,
	                      .cmdline = cmd,
	                      .namespace_ = "ns",
	                      .pod = "p",
	                      .container = "runner"};
	return i;
}

Test(na_approval_table, same_key_same_id)
{
	na_approvals *a = na_approvals_new();
	char id1[NA_APPROVAL_ID_LEN + 1], id2[NA_APPROVAL_ID_LEN + 1];
	na_approval_info i = info(10, 5, "npm publish");
	cr_assert_eq(na_approvals_request(a, &i, 60000, id1), 0);
	cr_assert_eq(na_approvals_request(a, &i, 60000, id2), 1);
	cr_assert_str_eq(id1, id2);
	cr_assert_eq(strlen(id1), NA_APPROVAL_ID_LEN);
	cr_assert_eq(na_approvals_count(a), 1);
	na_approvals_free(a);
}

Test(na_approval_table, reused_pid_or_other_argv_is_another_approval)
{
	na_approvals *a = na_approvals_new();
	char id1[NA_APPROVAL_ID_LEN + 1], id2[NA_APPROVAL_ID_LEN + 1], id3[NA_APPROVAL_ID_LEN + 1];
	na_approval_info i = info(10, 5, "npm publish");
	na_approval_info reused = info(10, 6, "npm publish");
	na_approval_info other = info(10, 5, "npm publish --force");
	cr_assert_eq(na_approvals_request(a, &i, 60000, id1), 0);
	cr_assert_eq(na_approvals_request(a, &reused, 60000, id2), 0);
	cr_assert_eq(na_approvals_request(a, &other, 60000, id3), 0);
	cr_assert_str_neq(id1, id2);
	cr_assert_str_neq(id1, id3);
	cr_assert_eq(na_approvals_answer(a, id1, true), 0);
	long left;
	bool expired;
	cr_assert_eq(na_approvals_state(a, id1, &left, &expired), NA_APPROVAL_GRANTED);
	cr_assert_eq(na_approvals_state(a, id2, &left, &expired), NA_APPROVAL_PENDING,
	             "the reused pid did not inherit the approval");
	na_approvals_free(a);
}

Test(na_approval_table, answer_twice_and_unknown)
{
	na_approvals *a = na_approvals_new();
	char id[NA_APPROVAL_ID_LEN + 1];
	na_approval_info i = info(10, 5, "x");
	cr_assert_eq(na_approvals_request(a, &i, 60000, id), 0);
	cr_assert_eq(na_approvals_answer(a, id, false), 0);
	cr_assert_eq(na_approvals_answer(a, id, true), -EALREADY);
	cr_assert_eq(na_approvals_answer(a, "000000000000", true), -ENOENT);
	long left;
	bool expired;
	cr_assert_eq(na_approvals_state(a, id, &left, &expired), NA_APPROVAL_DENIED);
	cr_assert(!expired);
	na_approvals_remove(a, id);
	cr_assert_eq(na_approvals_state(a, id, &left, &expired), -ENOENT);
	cr_assert_eq(na_approvals_answer(a, id, true), -ENOENT);
	na_approvals_free(a);
}

Test(na_approval_table, expiry_denies_and_sweeps)
{
	na_approvals *a = na_approvals_new();
	char id[NA_APPROVAL_ID_LEN + 1];
	na_approval_info i = info(10, 5, "x");
	cr_assert_eq(na_approvals_request(a, &i, 0, id), 0);
	long left;
	bool expired;
	cr_assert_eq(na_approvals_state(a, id, &left, &expired), NA_APPROVAL_DENIED);
	cr_assert(expired);
	cr_assert_eq(left, 0);
	cr_assert_eq(na_approvals_answer(a, id, true), -ENOENT, "too late");
	cf_buf b;
	cf_buf_init(&b, 0);
	cr_assert_eq(na_approvals_list(a, &b), 0);
	cr_assert_eq(b.len, 0, "expired ones are not listed");
	cf_buf_free(&b);
	cr_assert_eq(na_approvals_sweep(a, 0), 1);
	cr_assert_eq(na_approvals_count(a), 0);
	na_approvals_free(a);
}

Test(na_approval_table, bounded)
{
	na_approvals *a = na_approvals_new();
	char id[NA_APPROVAL_ID_LEN + 1];
	for (unsigned i = 0; i < CF_AGENT_MAX_APPROVALS; i++) {
		na_approval_info in = info((pid_t)(i + 1), 1, "x");
		cr_assert_eq(na_approvals_request(a, &in, 60000, id), 0);
	}
	na_approval_info more = info(99999, 1, "x");
	cr_assert_eq(na_approvals_request(a, &more, 60000, id), -ENOSPC);
	na_approvals_free(a);
}

Test(na_approval_table, list_fields)
{
	na_approvals *a = na_approvals_new();
	char id[NA_APPROVAL_ID_LEN + 1];
	na_approval_info i = info(42, 5, "npm publish");
	cr_assert_eq(na_approvals_request(a, &i, 60000, id), 0);
	cf_buf b;
	cf_buf_init(&b, 0);
	cr_assert_eq(na_approvals_list(a, &b), 0);
	cr_assert_not_null(strstr(b.data, id));
	cr_assert_not_null(strstr(b.data, "\"command\":\"npm publish\""));
	cr_assert_not_null(strstr(b.data, "\"pid\":42"));
	cr_assert_not_null(strstr(b.data, "\"namespace\":\"ns\""));
	cf_buf_free(&b);
	na_approvals_free(a);
}

Test(na_approval_table, peer_allowed)
{
	gid_t sup[] = {5, 77};
	cr_assert(na_control_peer_allowed(0, 0, NULL, 0, (gid_t)-1));
	cr_assert(na_control_peer_allowed(0, 9, NULL, 0, 77));
	cr_assert(!na_control_peer_allowed(1000, 1000, NULL, 0, (gid_t)-1));
	cr_assert(!na_control_peer_allowed(1000, 77, NULL, 0, (gid_t)-1), "no group configured");
	cr_assert(na_control_peer_allowed(1000, 77, NULL, 0, 77));
	cr_assert(na_control_peer_allowed(1000, 1000, sup, 2, 77), "supplementary group");
	cr_assert(!na_control_peer_allowed(1000, 1000, sup, 2, 78));
}

/* ---- the control protocol over a socketpair ---- */

static char *serve(na_approvals *a, const char *request, gid_t group)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(write(sv[0], request, strlen(request)), (ssize_t)strlen(request));
	shutdown(sv[0], SHUT_WR);
	na_control_serve(a, sv[1], group);
	cf_buf b;
	cf_buf_init(&b, 1u << 20);
	cr_assert_eq(cf_read_fd(sv[0], &b), 0);
	close(sv[0]);
	char *s = cf_buf_steal(&b);
	return s ? s : strdup("");
}

Test(na_approval_control, requests)
{
	na_approvals *a = na_approvals_new();
	char id[NA_APPROVAL_ID_LEN + 1], req[64];
	na_approval_info i = info(42, 5, "npm publish");
	cr_assert_eq(na_approvals_request(a, &i, 60000, id), 0);
	char *s = serve(a, "list\n", (gid_t)-1);
	cr_assert_not_null(strstr(s, id));
	free(s);
	snprintf(req, sizeof req, "approve %s\n", id);
	s = serve(a, req, (gid_t)-1);
	cr_assert(strncmp(s, "ok: approved", 12) == 0, "%s", s);
	free(s);
	s = serve(a, req, (gid_t)-1);
	cr_assert_not_null(strstr(s, "already answered"), "%s", s);
	free(s);
	s = serve(a, "deny 0123456789ab\n", (gid_t)-1);
	cr_assert_not_null(strstr(s, "error: no pending approval"), "%s", s);
	free(s);
	na_approvals_free(a);
}

Test(na_approval_control, bad_requests)
{
	na_approvals *a = na_approvals_new();
	const char *bad[] = {"frobnicate\n", "approve xyz\n", "approve 0123456789AB\n",
	                     "deny \n",      "list",          "approve ../../etc\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *s = serve(a, bad[i], (gid_t)-1);
		cr_assert(strncmp(s, "error:", 6) == 0, "%s -> %s", bad[i], s);
		free(s);
	}
	/* A request line past the bound. */
	char big[CF_CONTROL_MAX_REQUEST_BYTES + 100];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	char *s = serve(a, big, (gid_t)-1);
	cr_assert(strncmp(s, "error:", 6) == 0, "%s", s);
	free(s);
	na_approvals_free(a);
}

Test(na_approval_control, request_without_agent)
{
	cf_buf b;
	char err[256] = "";
	cf_buf_init(&b, 0);
	cr_assert_lt(na_control_request("/nonexistent/control.sock", "list", &b, err, sizeof err),
	             0);
	cr_assert_not_null(strstr(err, "cannot reach the agent"));
	cf_buf_free(&b);
}

/* ---- the running agent ---- */

static char dir[64], sock[128], policy[128], config[128], state[128], logpath[128], csock[160];
static pid_t agent = -1, prober = -1;
static int cmd_w = -1, res_r = -1;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	cf_buf b;
	char err[256];
	if (cf_read_file(path, 1u << 22, &b, err, sizeof err) < 0)
		return strdup("");
	return cf_buf_steal(&b);
}

static bool log_has(const char *needle, int tenths)
{
	for (int i = 0; i < tenths; i++) {
		char *t = slurp(logpath);
		bool f = strstr(t, needle) != NULL;
		free(t);
		if (f)
			return true;
		usleep(100000);
	}
	return false;
}

static void start(const char *cfg_text)
{
	snprintf(dir, sizeof dir, "/tmp/na_approval_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	snprintf(policy, sizeof policy, "%s/policy.yml", dir);
	snprintf(config, sizeof config, "%s/agent.yaml", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	snprintf(logpath, sizeof logpath, "%s/agent.log", dir);
	snprintf(csock, sizeof csock, "%s/control.sock", state);
	write_file(policy, "enforcement_level: strict\nallowed_commands: [echo, ls]\n"
	                   "require_approval: [\"echo approve-me*\"]\n");
	write_file(config, cfg_text);
	char *args[] = {(char *)"codeframe-agent",
	                (char *)"run",
	                (char *)"--config",
	                config,
	                (char *)"--socket",
	                sock,
	                (char *)"--policy",
	                policy,
	                (char *)"--state-dir",
	                state,
	                (char *)"--profile-dir",
	                (char *)"",
	                (char *)"--metrics-listen",
	                (char *)"",
	                NULL};
	agent = fork();
	cr_assert(agent >= 0);
	if (agent == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int out = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		execv(ts_build_path("codeframe-agent"), args);
		_exit(127);
	}
	cr_assert(log_has("\"msg\":\"listening on", 100), "%s", slurp(logpath));
}

static void restart_handler(int sig)
{
	(void)sig;
}

/* The exec probe (see the top of the file). */
static void start_prober(void)
{
	int cmd[2], res[2];
	cr_assert_eq(pipe2(cmd, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(res, O_CLOEXEC), 0);
	prober = fork();
	cr_assert(prober >= 0);
	if (prober == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
		if (!ctx || seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SCMP_SYS(execve), 0) < 0 ||
		    seccomp_load(ctx) < 0)
			_exit(1);
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		memcpy(sun.sun_path, sock, strlen(sock) + 1);
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(s, (struct sockaddr *)&sun, sizeof sun) < 0)
			_exit(2);
		char json[256];
		snprintf(
		    json, sizeof json,
		    "{\"fds\":[\"seccompFd\"],\"pid\":%d,\"state\":{\"id\":\"probe\",\"pid\":%d,"
		    "\"annotations\":{\"io.kubernetes.pod.namespace\":\"team-a\","
		    "\"io.kubernetes.pod.name\":\"w\",\"io.kubernetes.container.name\":"
		    "\"runner\"}}}",
		    getpid(), getpid());
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
			pid_t g = fork();
			if (g == 0) {
				/* A signal during the wait restarts the execve. */
				struct sigaction sa = {.sa_handler = restart_handler,
				                       .sa_flags = SA_RESTART};
				sigaction(SIGUSR1, &sa, NULL);
				int null = open("/dev/null", O_WRONLY);
				dup2(null, 1);
				char *argv[] = {(char *)"echo", (char *)"approve-me", NULL};
				execv("/bin/echo", argv);
				_exit(100 + (errno & 63));
			}
			if (write(res[1], &g, sizeof g) != (ssize_t)sizeof g)
				_exit(4);
			int st;
			waitpid(g, &st, 0);
			int r = WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
			if (write(res[1], &r, sizeof r) != (ssize_t)sizeof r)
				_exit(5);
		}
		_exit(0);
	}
	close(cmd[0]);
	close(res[1]);
	cmd_w = cmd[1];
	res_r = res[0];
	cr_assert(log_has("\"msg\":\"container registered\"", 100), "%s", slurp(logpath));
}

/* Starts one exec; returns the grandchild's pid. */
static pid_t exec_start(void)
{
	cr_assert_eq(write(cmd_w, "x", 1), 1);
	pid_t g;
	cr_assert_eq(read(res_r, &g, sizeof g), (ssize_t)sizeof g);
	return g;
}

/* The exec's result: 0 ran, 100+errno failed, 200+sig killed; -1 none
 * within `ms`. */
static int exec_result(int ms)
{
	struct pollfd p = {.fd = res_r, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return -1;
	int r;
	if (read(res_r, &r, sizeof r) != (ssize_t)sizeof r)
		return -1;
	return r;
}

static void stop_all(void)
{
	if (cmd_w >= 0)
		close(cmd_w);
	if (res_r >= 0)
		close(res_r);
	cmd_w = res_r = -1;
	if (prober > 0) {
		kill(prober, SIGKILL);
		waitpid(prober, NULL, 0);
	}
	prober = -1;
	if (agent > 0) {
		kill(agent, SIGTERM);
		int st = 0;
		for (int i = 0; i < 200 && waitpid(agent, &st, WNOHANG) == 0; i++)
			usleep(50000);
		kill(agent, SIGKILL);
		waitpid(agent, NULL, 0);
	}
	agent = -1;
	if (dir[0])
		ts_rm_tree(dir);
	dir[0] = '\0';
}

TestSuite(na_approval_agent, .fini = stop_all, .timeout = 90);

/* Runs the CLI; returns its exit status, its stdout in *out. uid/gid: run
 * as (0 = unchanged). */
static int cli(char **out, uid_t uid, gid_t gid, const char *verb, const char *id)
{
	char outpath[160];
	snprintf(outpath, sizeof outpath, "%s/cli.out", dir);
	pid_t p = fork();
	cr_assert(p >= 0);
	if (p == 0) {
		int fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC, 0666);
		dup2(fd, 1);
		dup2(fd, 2);
		if (gid && (setgroups(0, NULL) < 0 || setgid(gid) < 0))
			_exit(90);
		if (uid && setuid(uid) < 0)
			_exit(91);
		char *args[] = {(char *)"codeframe-agent",
		                (char *)verb,
		                (char *)"--state-dir",
		                state,
		                (char *)id,
		                NULL};
		execv(ts_build_path("codeframe-agent"), args);
		_exit(127);
	}
	int st;
	waitpid(p, &st, 0);
	if (out)
		*out = slurp(outpath);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Waits for exactly one pending approval and returns its id. */
static void pending_id(char id[NA_APPROVAL_ID_LEN + 1])
{
	for (int i = 0; i < 100; i++) {
		char *out = NULL;
		int rc = cli(&out, 0, 0, "approvals", NULL);
		cr_assert_eq(rc, 0, "%s", out);
		const char *p = strstr(out, "\"id\":\"");
		if (p) {
			memcpy(id, p + 6, NA_APPROVAL_ID_LEN);
			id[NA_APPROVAL_ID_LEN] = '\0';
			cr_assert_not_null(strstr(out, "\"command\":\"echo approve-me\""), "%s",
			                   out);
			cr_assert_not_null(strstr(out, "\"namespace\":\"team-a\""), "%s", out);
			free(out);
			return;
		}
		free(out);
		usleep(100000);
	}
	cr_assert_fail("no pending approval: %s", slurp(logpath));
}

Test(na_approval_agent, granted)
{
	start("approvalTimeoutSeconds: 30\n");
	start_prober();
	exec_start();
	char id[NA_APPROVAL_ID_LEN + 1];
	pending_id(id);
	cr_assert_eq(exec_result(300), -1, "still waiting");
	char *out;
	cr_assert_eq(cli(&out, 0, 0, "approve", id), 0, "%s", out);
	cr_assert_not_null(strstr(out, "approved"));
	free(out);
	cr_assert_eq(exec_result(20000), 0, "the approved exec ran");
	cr_assert(log_has("\"command\":\"echo approve-me\",\"decision\":\"allow\"", 50), "%s",
	          slurp(logpath));
	/* Consumed: the next identical exec (another process) asks again. */
	exec_start();
	char id2[NA_APPROVAL_ID_LEN + 1];
	pending_id(id2);
	cr_assert_str_neq(id, id2);
	cr_assert_eq(cli(NULL, 0, 0, "deny", id2), 0);
	cr_assert_eq(exec_result(20000), 100 + EPERM);
}

Test(na_approval_agent, denied)
{
	start("approvalTimeoutSeconds: 30\n");
	start_prober();
	exec_start();
	char id[NA_APPROVAL_ID_LEN + 1];
	pending_id(id);
	char *out;
	cr_assert_eq(cli(&out, 0, 0, "deny", id), 0, "%s", out);
	free(out);
	cr_assert_eq(exec_result(20000), 100 + EPERM);
	cr_assert_eq(cli(&out, 0, 0, "approve", id), 1, "answered already: %s", out);
	free(out);
}

Test(na_approval_agent, timed_out)
{
	start("approvalTimeoutSeconds: 1\n");
	start_prober();
	exec_start();
	char id[NA_APPROVAL_ID_LEN + 1];
	pending_id(id);
	cr_assert_eq(exec_result(20000), 100 + EPERM, "denied on timeout");
	cr_assert(log_has("the approval timed out", 50));
	char *out;
	cr_assert_eq(cli(&out, 0, 0, "approve", id), 1, "%s", out);
	cr_assert_not_null(strstr(out, "no pending approval"), "%s", out);
	free(out);
}

Test(na_approval_agent, process_died_while_waiting)
{
	start("approvalTimeoutSeconds: 30\n");
	start_prober();
	pid_t g = exec_start();
	char id[NA_APPROVAL_ID_LEN + 1];
	pending_id(id);
	cr_assert_eq(kill(g, SIGKILL), 0);
	cr_assert_eq(exec_result(20000), 200 + SIGKILL);
	cr_assert(log_has("withdrawn: process", 50), "%s", slurp(logpath));
	char *out;
	cr_assert_eq(cli(&out, 0, 0, "approve", id), 1, "%s", out);
	cr_assert_not_null(strstr(out, "no pending approval"), "%s", out);
	free(out);
	/* The agent goes on: a new exec waits, and a deny applies to it. */
	exec_start();
	char id2[NA_APPROVAL_ID_LEN + 1];
	pending_id(id2);
	cr_assert_str_neq(id, id2);
	cr_assert_eq(cli(NULL, 0, 0, "deny", id2), 0);
	cr_assert_eq(exec_result(20000), 100 + EPERM);
	cr_assert_eq(kill(agent, 0), 0);
}

Test(na_approval_agent, signal_restarted_exec_finds_its_approval)
{
	start("approvalTimeoutSeconds: 30\n");
	start_prober();
	pid_t g = exec_start();
	char id[NA_APPROVAL_ID_LEN + 1];
	pending_id(id);
	/* Interrupts the pending execve (new notification id, same key). */
	cr_assert_eq(kill(g, SIGUSR1), 0);
	cr_assert(log_has("exec waits for approval (again)", 50), "%s", slurp(logpath));
	char id2[NA_APPROVAL_ID_LEN + 1];
	pending_id(id2);
	cr_assert_str_eq(id, id2);
	cr_assert_eq(cli(NULL, 0, 0, "approve", id), 0);
	cr_assert_eq(exec_result(20000), 0, "the restarted exec got the answer");
}

Test(na_approval_agent, unauthorized_peer_refused)
{
	start("approvalTimeoutSeconds: 30\n");
	struct stat st;
	cr_assert_eq(stat(csock, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	/* Loosen the path so only the credential check stands in the way. */
	cr_assert_eq(chmod(dir, 0755), 0);
	cr_assert_eq(chmod(state, 0755), 0);
	cr_assert_eq(chmod(csock, 0666), 0);
	char *out;
	cr_assert_eq(cli(&out, 65534, 65534, "approvals", NULL), 1, "%s", out);
	cr_assert_not_null(strstr(out, "permission denied"), "%s", out);
	free(out);
	cr_assert_eq(cli(&out, 65534, 65534, "approve", "0123456789ab"), 1, "%s", out);
	free(out);
	cr_assert(log_has("a peer without permission was refused", 50));
}

Test(na_approval_agent, approval_group_member_allowed)
{
	start("approvalTimeoutSeconds: 30\napprovalGroup: nogroup\n");
	struct stat st;
	cr_assert_eq(stat(csock, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0660);
	cr_assert_eq(st.st_gid, 65534);
	cr_assert_eq(stat(state, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0710);
	cr_assert_eq(chmod(dir, 0755), 0);
	start_prober();
	exec_start();
	char id[NA_APPROVAL_ID_LEN + 1];
	pending_id(id);
	char *out;
	/* uid nobody with gid nogroup: allowed by the group. */
	cr_assert_eq(cli(&out, 65534, 65534, "approvals", NULL), 0, "%s", out);
	cr_assert_not_null(strstr(out, id));
	free(out);
	cr_assert_eq(cli(&out, 65534, 65534, "approve", id), 0, "%s", out);
	free(out);
	cr_assert_eq(exec_result(20000), 0);
	/* Another uid and group: refused (here by the socket's mode). */
	cr_assert_eq(cli(&out, 1234, 1234, "approvals", NULL), 2, "%s", out);
	free(out);
}

Test(na_approval_agent, cli_usage_errors)
{
	start("approvalTimeoutSeconds: 30\n");
	char *out;
	cr_assert_eq(cli(&out, 0, 0, "approve", NULL), 2, "%s", out);
	cr_assert_not_null(strstr(out, "approval ID is required"), "%s", out);
	free(out);
	cr_assert_eq(cli(&out, 0, 0, "approve", "not-an-id"), 1, "%s", out);
	cr_assert_not_null(strstr(out, "not an approval id"), "%s", out);
	free(out);
	/* No agent behind the state directory. */
	char saved[128];
	memcpy(saved, state, sizeof saved);
	snprintf(state, sizeof state, "%s/nowhere", dir);
	cr_assert_eq(cli(&out, 0, 0, "approvals", NULL), 2, "%s", out);
	cr_assert_not_null(strstr(out, "cannot reach the agent"), "%s", out);
	free(out);
	memcpy(state, saved, sizeof saved);
}
