/* Tests for na_config: the agent's YAML configuration. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "na_config.h"

static int load(na_config *c, const char *yaml, char *err, size_t errlen)
{
	return na_config_load_buffer(c, "agent.yaml", yaml, strlen(yaml), err, errlen);
}

Test(na_config, defaults)
{
	na_config c;
	setenv("NODE_NAME", "node-1", 1);
	cr_assert_eq(na_config_init(&c), 0);
	cr_assert_str_eq(c.socket, "/run/codeframe-guard/agent.sock");
	cr_assert_str_eq(c.state_dir, "/run/codeframe-guard/state");
	cr_assert_eq(c.n_policies, 1);
	cr_assert_str_eq(c.policies[0], "/etc/codeframe-guard/policy.yml");
	cr_assert_str_eq(c.metrics_listen, "0.0.0.0:9090");
	cr_assert_eq(c.log_level, CF_LOG_INFO);
	cr_assert_str_eq(c.profile_dir, "/var/lib/kubelet/seccomp");
	cr_assert_str_eq(c.approval_group, "");
	cr_assert_eq(c.approval_timeout_s, 60);
	cr_assert_str_eq(c.node_name, "node-1");
	na_config_free(&c);
	unsetenv("NODE_NAME");
}

Test(na_config, full_file)
{
	na_config c;
	char err[256] = "";
	cr_assert_eq(na_config_init(&c), 0);
	cr_assert_eq(load(&c,
	                  "socket: /run/x/agent.sock\nstateDir: /run/x/state\n"
	                  "policies:\n  - /etc/a.yml\n  - /etc/b.yml\nmetricsListen: \"\"\n"
	                  "logLevel: debug\nprofileDir: /var/lib/k/seccomp\n"
	                  "approvalGroup: codeframe\napprovalTimeoutSeconds: 30\nnodeName: n2\n",
	                  err, sizeof err),
	             0, "%s", err);
	cr_assert_str_eq(c.socket, "/run/x/agent.sock");
	cr_assert_eq(c.n_policies, 2);
	cr_assert_str_eq(c.policies[1], "/etc/b.yml");
	cr_assert_str_eq(c.metrics_listen, "");
	cr_assert_eq(c.log_level, CF_LOG_DEBUG);
	cr_assert_str_eq(c.approval_group, "codeframe");
	cr_assert_eq(c.approval_timeout_s, 30);
	cr_assert_str_eq(c.node_name, "n2");
	na_config_free(&c);
}

Test(na_config, empty_file_keeps_defaults)
{
	na_config c;
	char err[256] = "";
	cr_assert_eq(na_config_init(&c), 0);
	cr_assert_eq(load(&c, "# nothing\n", err, sizeof err), 0, "%s", err);
	cr_assert_eq(load(&c, "profileDir: \"\"\n", err, sizeof err), 0, "%s", err);
	cr_assert_str_eq(c.profile_dir, "");
	cr_assert_str_eq(c.socket, "/run/codeframe-guard/agent.sock");
	na_config_free(&c);
}

Test(na_config, listen_parsing)
{
	uint32_t a;
	uint16_t p;
	char err[128];
	cr_assert_eq(na_config_parse_listen("127.0.0.1:9090", &a, &p, err, sizeof err), 0);
	cr_assert_eq(a, htonl(INADDR_LOOPBACK));
	cr_assert_eq(p, 9090);
	cr_assert_eq(na_config_parse_listen("localhost:1", &a, &p, err, sizeof err), 0);
	cr_assert_eq(na_config_parse_listen("0.0.0.0:65535", &a, &p, err, sizeof err), 0);
}

/* Negative cases: each leaves the configuration unchanged. */

static void expect_error(const char *yaml, const char *needle)
{
	na_config c;
	char err[256] = "";
	cr_assert_eq(na_config_init(&c), 0);
	cr_assert(load(&c, yaml, err, sizeof err) < 0, "accepted: %s", yaml);
	cr_assert_not_null(strstr(err, needle), "%s: %s", yaml, err);
	cr_assert_str_eq(c.socket, "/run/codeframe-guard/agent.sock");
	cr_assert_eq(c.n_policies, 1);
	na_config_free(&c);
}

Test(na_config, unknown_key)
{
	expect_error("socket: /run/a.sock\nsockett: /x\n", "agent.yaml:2: unknown key \"sockett\"");
}

Test(na_config, wrong_types)
{
	expect_error("socket: 5\n", "must be a string");
	expect_error("policies: /etc/p.yml\n", "list of paths");
	expect_error("policies: [\"\"]\n", "non-empty");
	expect_error("policies: [1]\n", "non-empty");
	expect_error("logLevel: loud\n", "logLevel");
	expect_error("approvalTimeoutSeconds: \"60\"\n", "approvalTimeoutSeconds");
	expect_error("approvalTimeoutSeconds: 0\n", "approvalTimeoutSeconds");
	expect_error("approvalTimeoutSeconds: 1.5\n", "approvalTimeoutSeconds");
	expect_error("approvalTimeoutSeconds: 100000\n", "approvalTimeoutSeconds");
}

Test(na_config, bad_paths_and_listen)
{
	expect_error("socket: relative.sock\n", "absolute");
	expect_error("stateDir: \"\"\n", "must not be empty");
	expect_error("profileDir: var/lib\n", "absolute");
	expect_error("metricsListen: 9090\n", "must be a string");
	expect_error("metricsListen: \"nohost\"\n", "ADDR:PORT");
	expect_error("metricsListen: \"1.2.3.4:0\"\n", "port");
	expect_error("metricsListen: \"1.2.3.4:70000\"\n", "port");
	expect_error("metricsListen: \"example.com:80\"\n", "IPv4");
}

Test(na_config, not_a_mapping_or_bad_yaml)
{
	expect_error("- a\n- b\n", "mapping");
	expect_error("a: [\n", "agent.yaml");
	expect_error("socket: /a\n---\nsocket: /b\n", "one YAML document");
	expect_error("socket: /a\nsocket: /b\n", "duplicate");
}

Test(na_config, missing_file)
{
	na_config c;
	char err[256] = "";
	cr_assert_eq(na_config_init(&c), 0);
	cr_assert_eq(na_config_load_file(&c, "/nonexistent/agent.yaml", err, sizeof err), -ENOENT);
	cr_assert_not_null(strstr(err, "/nonexistent/agent.yaml"));
	na_config_free(&c);
}

Test(na_config, listen_errors)
{
	uint32_t a;
	uint16_t p;
	char err[128];
	cr_assert_eq(na_config_parse_listen(NULL, &a, &p, err, sizeof err), -EINVAL);
	cr_assert_eq(na_config_parse_listen(":80", &a, &p, err, sizeof err), -EINVAL);
	cr_assert_eq(na_config_parse_listen("1.2.3.4:", &a, &p, err, sizeof err), -EINVAL);
	cr_assert_eq(na_config_parse_listen("1.2.3.4:-1", &a, &p, err, sizeof err), -EINVAL);
	cr_assert_eq(na_config_parse_listen("1.2.3.4:80x", &a, &p, err, sizeof err), -EINVAL);
	cr_assert_eq(na_config_parse_listen("1.2.3:80", &a, &p, err, sizeof err), -EINVAL);
}
