/*
 * na_main.c - `codeframe-agent`: command dispatch.
 *
 * Each subcommand is one entry in `commands`; add new ones there. Exit
 * codes: check-command 0 allow (also warn-mode findings), 1 deny or
 * approval-required, 2 error; exec returns CMD's status (2 for agent
 * usage/policy errors, 126/127 when CMD cannot be run).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_log.h"
#include "na_cmdpolicy.h"
#include "na_procmem.h"
#include "na_profile.h"
#include "na_run.h"
#include "na_supervise.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static int cmd_check(int argc, char **argv);
static int cmd_exec(int argc, char **argv);

static const struct command commands[] = {
    {"check-command", cmd_check, "check-command [--policy FILE]... -- ARGV..."},
    {"exec", cmd_exec, "exec [--policy FILE]... [--log FILE] [--log-level LEVEL] -- CMD ARGS..."},
    {"profile", na_profile_cmd_profile, "profile [--listener PATH]"},
    {"install-profile", na_profile_cmd_install, "install-profile [--dir DIR] [--listener PATH]"},
    {"run", na_run_main,
     "run [--config FILE] [--socket PATH] [--policy FILE]... [--state-dir DIR]\n"
     "      [--metrics-listen ADDR:PORT] [--profile-dir DIR] [--node-name NAME]"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage:\n");
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(f, "  codeframe-agent %s\n", commands[i].usage);
}

/* Options shared by check-command and exec. Returns the index of the
 * first operand (after `--`), or -1 after printing an error. */
struct opts {
	na_policy *policy;
	const char *log;
	const char *log_level;
};

static int parse_opts(int argc, char **argv, struct opts *o, bool exec_opts)
{
	char err[1024];
	int i = 1;
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1;
		const char *val = NULL;
		bool is_policy = strcmp(a, "--policy") == 0;
		bool is_log = exec_opts && strcmp(a, "--log") == 0;
		bool is_level = exec_opts && strcmp(a, "--log-level") == 0;
		if (!is_policy && !is_log && !is_level) {
			if (a[0] == '-') {
				fprintf(stderr, "codeframe-agent %s: unknown option %s\n", argv[0],
				        a);
				return -1;
			}
			return i; /* operands may start without `--` */
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "codeframe-agent %s: %s needs a value\n", argv[0], a);
			return -1;
		}
		val = argv[++i];
		if (is_policy) {
			int rc = na_policy_load_file(o->policy, val, err, sizeof err);
			if (rc < 0) {
				fprintf(stderr, "codeframe-agent: %s\n", err);
				return -1;
			}
		} else if (is_log) {
			o->log = val;
		} else {
			o->log_level = val;
		}
	}
	return i;
}

static int cmd_check(int argc, char **argv)
{
	struct opts o = {.policy = na_policy_new()};
	int rc = 2;
	if (!o.policy) {
		fprintf(stderr, "codeframe-agent: out of memory\n");
		return 2;
	}
	int first = parse_opts(argc, argv, &o, false);
	if (first < 0)
		goto out;
	if (first >= argc) {
		fprintf(stderr, "codeframe-agent check-command: no command given (-- ARGV...)\n");
		goto out;
	}
	char exe[256], target[256];
	na_procmem_resolve_local(argv[first], exe, sizeof exe, target, sizeof target);
	na_cmd cmd = {
	    .exe_base = exe,
	    .target_base = target,
	    .argv = argv + first,
	    .argc = (size_t)(argc - first),
	};
	na_cmd_context ctx = {0};
	na_decision d;
	if (na_cmdpolicy_decide(o.policy, &cmd, &ctx, &d) < 0) {
		fprintf(stderr, "codeframe-agent: out of memory\n");
		goto out;
	}
	cJSON *j = na_decision_to_json(&d);
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!s) {
		fprintf(stderr, "codeframe-agent: out of memory\n");
		goto out;
	}
	printf("%s\n", s);
	free(s);
	rc = d.verdict == NA_VERDICT_ALLOW ? 0 : 1;
out:
	na_policy_free(o.policy);
	return rc;
}

static int cmd_exec(int argc, char **argv)
{
	struct opts o = {.policy = na_policy_new()};
	int rc = 2, log_fd = 2;
	char err[1024] = "";
	/* Every exec is one line by default (DESIGN.md); the level field
	 * tells routine ones (debug) from the rest, and --log-level trims. */
	cf_log_level level = CF_LOG_DEBUG;
	if (!o.policy) {
		fprintf(stderr, "codeframe-agent: out of memory\n");
		return 2;
	}
	int first = parse_opts(argc, argv, &o, true);
	if (first < 0)
		goto out;
	if (first >= argc) {
		fprintf(stderr, "codeframe-agent exec: no command given (-- CMD ARGS...)\n");
		goto out;
	}
	if (o.log_level && cf_log_parse_level(o.log_level, &level) < 0) {
		fprintf(stderr, "codeframe-agent exec: --log-level must be debug, info, warning "
		                "or error\n");
		goto out;
	}
	if (o.log) {
		log_fd = open(o.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
		if (log_fd < 0) {
			fprintf(stderr, "codeframe-agent exec: %s: %s\n", o.log, strerror(errno));
			goto out;
		}
	}
	na_supervise_opts so = {
	    .policy = o.policy,
	    .argv = argv + first,
	    .log_fd = log_fd,
	    .log_level = level,
	    .project_id = getenv("CODEFRAME_PROJECT_ID"),
	    .user_id = getenv("CODEFRAME_USER_ID"),
	};
	rc = na_supervise_run(&so, err, sizeof err);
	if (rc < 0) {
		fprintf(stderr, "codeframe-agent exec: %s\n", err);
		rc = 2;
	} else if (rc >= 126 && err[0]) {
		fprintf(stderr, "codeframe-agent exec: %s\n", err);
	}
out:
	if (log_fd > 2)
		close(log_fd);
	na_policy_free(o.policy);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "codeframe-agent: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 2;
}
