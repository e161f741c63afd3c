/* Tests for node gating (na_node through `codeframe-agent run`): against
 * tests/support/fake_apiserver the agent labels its node
 * codeframe.io/agent-ready=true once it listens, keeps the label across a
 * handoff to a successor, removes it on shutdown, retries while the API
 * refuses, and does nothing (with a clear log line) without API access. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_buf.h"
#include "support/fake_apiserver.h"
#include "support/ts_pki.h"
#include "support/ts_proc.h"

#define NODES "/api/v1/nodes"

static ts_pki ca;
static fake_apiserver *fs;
static char dir[64], sock[128], policy[128], state[128], kc[128];
static pid_t tracked[8];
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
	char err[512] = "";
	cr_assert_eq(ts_pki_create(&ca, "agent", err, sizeof err), 0, "%s", err);
	fs = fake_apiserver_start(&ca, "node-token", err, sizeof err);
	cr_assert_not_null(fs, "%s", err);
	snprintf(dir, sizeof dir, "/tmp/na_node_test.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof sock, "%s/agent.sock", dir);
	snprintf(policy, sizeof policy, "%s/policy.yml", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	snprintf(kc, sizeof kc, "%s/kubeconfig", dir);
	write_file(policy, "enforcement_level: strict\nallowed_commands: [ls]\n");
	char text[4096];
	snprintf(text, sizeof text,
	         "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
	         "clusters:\n- name: c\n  cluster:\n    server: %s\n"
	         "    certificate-authority: %s\n"
	         "contexts:\n- name: t\n  context:\n    cluster: c\n    user: u\n"
	         "users:\n- name: u\n  user:\n    token: node-token\n",
	         fake_apiserver_url(fs), ca.ca_file);
	write_file(kc, text);
	n_tracked = 0;
}

static void teardown(void)
{
	for (size_t i = 0; i < n_tracked; i++) {
		kill(tracked[i], SIGKILL);
		waitpid(tracked[i], NULL, 0);
	}
	fake_apiserver_stop(fs);
	fs = NULL;
	ts_pki_destroy(&ca);
	ts_rm_tree(dir);
}

TestSuite(na_node, .init = setup, .fini = teardown, .timeout = 90);

static void put_node(const char *name)
{
	char json[512];
	snprintf(json, sizeof json,
	         "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
	         "\"labels\":{\"kubernetes.io/hostname\":\"%s\"}}}",
	         name, name);
	cr_assert_gt(fake_apiserver_put(fs, NODES, json), 0);
}

/* The label's value: "true", "" when absent, NULL when no node. */
static char *label_of(const char *name)
{
	char *obj = fake_apiserver_get(fs, NODES, "", name);
	if (!obj)
		return NULL;
	const char *p = strstr(obj, "\"codeframe.io/agent-ready\":\"");
	char *v = strdup(p ? (strncmp(p + 28, "true\"", 5) == 0 ? "true" : "other") : "");
	cr_assert(strstr(obj, "\"kubernetes.io/hostname\""), "other labels are kept: %s", obj);
	free(obj);
	return v;
}

static bool label_is_within(const char *name, const char *want, int tenths)
{
	for (int i = 0; i < tenths; i++) {
		char *v = label_of(name);
		bool ok = v && strcmp(v, want) == 0;
		free(v);
		if (ok)
			return true;
		usleep(100000);
	}
	return false;
}

static char *slurp(const char *path)
{
	cf_buf b;
	char err[256];
	if (cf_read_file(path, 1u << 22, &b, err, sizeof err) < 0)
		return strdup("");
	return cf_buf_steal(&b);
}

static bool log_has(const char *log, const char *needle, int tenths)
{
	return ts_wait_for_text(log, needle, (unsigned)tenths * 100u) == 0;
}

/* kubeconfig/node NULL: the flag is left out. */
static pid_t start_agent(const char *log, const char *kubeconfig, const char *node)
{
	char *args[20];
	int n = 0;
	args[n++] = (char *)"codeframe-agent";
	args[n++] = (char *)"run";
	args[n++] = (char *)"--socket";
	args[n++] = sock;
	args[n++] = (char *)"--policy";
	args[n++] = policy;
	args[n++] = (char *)"--state-dir";
	args[n++] = state;
	args[n++] = (char *)"--profile-dir";
	args[n++] = (char *)"";
	args[n++] = (char *)"--metrics-listen";
	args[n++] = (char *)"";
	if (kubeconfig) {
		args[n++] = (char *)"--kubeconfig";
		args[n++] = (char *)kubeconfig;
	}
	if (node) {
		args[n++] = (char *)"--node-name";
		args[n++] = (char *)node;
	}
	args[n] = NULL;
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		unsetenv("NODE_NAME");
		int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			_exit(126);
		execv(ts_build_path("codeframe-agent"), args);
		_exit(127);
	}
	if (n_tracked < sizeof tracked / sizeof tracked[0])
		tracked[n_tracked++] = pid;
	cr_assert(log_has(log, "\"msg\":\"listening on", 100), "%s", slurp(log));
	return pid;
}

static int stop_agent(pid_t pid)
{
	kill(pid, SIGTERM);
	int st;
	for (int i = 0; i < 400; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50000);
	}
	return -1;
}

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

Test(na_node, labelled_when_listening_removed_on_shutdown)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	put_node("node-x");
	put_node("node-y");
	pid_t a = start_agent(log, kc, "node-x");
	cr_assert(label_is_within("node-x", "true", 100), "%s", slurp(log));
	cr_assert(log_has(log, "node node-x labelled codeframe.io/agent-ready=true", 50));
	char *other = label_of("node-y");
	cr_assert_str_eq(other, "", "only its own node");
	free(other);
	cr_assert_eq(stop_agent(a), 0);
	cr_assert(label_is_within("node-x", "", 10), "removed on shutdown: %s", slurp(log));
}

Test(na_node, handoff_keeps_the_label)
{
	char loga[128], logb[128];
	snprintf(loga, sizeof loga, "%s/a.log", dir);
	snprintf(logb, sizeof logb, "%s/b.log", dir);
	put_node("node-x");
	pid_t a = start_agent(loga, kc, "node-x");
	cr_assert(label_is_within("node-x", "true", 100));
	fake_apiserver_stats before, after;
	fake_apiserver_stats_get(fs, &before);
	pid_t b = start_agent(logb, kc, "node-x");
	cr_assert_eq(wait_exit(a), 0);
	char *v = label_of("node-x");
	cr_assert_str_eq(v, "true", "a handoff never unlabels the node");
	free(v);
	cr_assert(!log_has(loga, "label codeframe.io/agent-ready removed", 1));
	cr_assert(log_has(logb, "node node-x labelled", 100));
	fake_apiserver_stats_get(fs, &after);
	cr_assert_gt(after.requests, before.requests);
	cr_assert_eq(stop_agent(b), 0);
	cr_assert(label_is_within("node-x", "", 10));
}

Test(na_node, policy_side_restart_relabels_without_removing)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	put_node("node-x");
	pid_t a = start_agent(log, kc, "node-x");
	cr_assert(label_is_within("node-x", "true", 100));
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)a, (int)a);
	char *kids = slurp(path);
	pid_t ps = (pid_t)strtol(kids, NULL, 10);
	free(kids);
	cr_assert_gt(ps, 0);
	kill(ps, SIGKILL);
	cr_assert(log_has(log, "policy side restarted", 50));
	char *v = label_of("node-x");
	cr_assert_str_eq(v, "true");
	free(v);
	cr_assert_eq(stop_agent(a), 0);
	cr_assert(label_is_within("node-x", "", 10));
}

Test(na_node, api_refusal_is_retried)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	put_node("node-x");
	fake_apiserver_set_down(fs, 403, "/api/v1/nodes");
	pid_t a = start_agent(log, kc, "node-x");
	cr_assert(log_has(log, "cannot label node node-x (retrying", 100), "%s", slurp(log));
	char *v = label_of("node-x");
	cr_assert_str_eq(v, "");
	free(v);
	fake_apiserver_set_down(fs, 0, NULL);
	cr_assert(label_is_within("node-x", "true", 400), "%s", slurp(log));
	cr_assert_eq(stop_agent(a), 0);
}

Test(na_node, missing_node_keeps_serving)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(log, kc, "node-gone");
	cr_assert(log_has(log, "cannot label node node-gone", 100), "%s", slurp(log));
	cr_assert_eq(kill(a, 0), 0);
	cr_assert_eq(stop_agent(a), 0);
	cr_assert(log_has(log, "cannot remove the label", 50));
}

Test(na_node, no_api_access_is_a_logged_noop)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	put_node("node-x");
	pid_t a = start_agent(log, NULL, "node-x");
	cr_assert(log_has(log, "no Kubernetes API access", 50), "%s", slurp(log));
	cr_assert_eq(stop_agent(a), 0);
	fake_apiserver_stats st;
	fake_apiserver_stats_get(fs, &st);
	cr_assert_eq(st.requests, 0);
}

Test(na_node, no_node_name_is_a_logged_noop)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(log, kc, NULL);
	cr_assert(log_has(log, "no node name", 50), "%s", slurp(log));
	cr_assert_eq(stop_agent(a), 0);
}

Test(na_node, invalid_node_name_refused)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	pid_t a = start_agent(log, kc, "Node_X/../x");
	cr_assert(log_has(log, "is not a valid Kubernetes name", 50), "%s", slurp(log));
	cr_assert_eq(stop_agent(a), 0);
	fake_apiserver_stats st;
	fake_apiserver_stats_get(fs, &st);
	cr_assert_eq(st.requests, 0);
}

Test(na_node, broken_kubeconfig_is_logged)
{
	char log[128], bad[160];
	snprintf(log, sizeof log, "%s/a.log", dir);
	snprintf(bad, sizeof bad, "%s/bad-kubeconfig", dir);
	write_file(bad, "apiVersion: v1\nkind: Config\nclusters: 7\n");
	pid_t a = start_agent(log, bad, "node-x");
	cr_assert(log_has(log, "Kubernetes API configuration", 50), "%s", slurp(log));
	cr_assert_eq(stop_agent(a), 0);
}

Test(na_node, wrong_token_is_retried_not_fatal)
{
	char log[128];
	snprintf(log, sizeof log, "%s/a.log", dir);
	put_node("node-x");
	fake_apiserver_set_token(fs, "another-token");
	pid_t a = start_agent(log, kc, "node-x");
	cr_assert(log_has(log, "cannot label node node-x", 100), "%s", slurp(log));
	fake_apiserver_set_token(fs, "node-token");
	cr_assert(label_is_within("node-x", "true", 400), "%s", slurp(log));
	cr_assert_eq(stop_agent(a), 0);
}
