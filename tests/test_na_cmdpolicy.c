/* test_na_cmdpolicy.c - command policy: loading (both forms, every key
 * validated), layering (tighten only), and decisions, table-driven. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_limits.h"
#include "na_cmdpolicy.h"
#include "na_shell.h"

static na_policy *load(const char *const *texts, size_t n)
{
	char err[512];
	na_policy *p = na_policy_new();
	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof name, "layer%zu.yml", i);
		int rc =
		    na_policy_load_buffer(p, name, texts[i], strlen(texts[i]), err, sizeof err);
		cr_assert_eq(rc, 0, "%s: %s", texts[i], err);
	}
	return p;
}

/* ---- loading errors: every one names the file and the line ---- */

struct bad {
	const char *text;
	const char *want; /* substring of the error */
};

static const struct bad bad_files[] = {
    {"enforcement_level: strict\nalowed_commands: [ls]\n",
     "line 2: unknown key \"alowed_commands\""},
    {"enforcement_level: loud\n", "line 1: enforcement_level must be one of"},
    {"enforcement_level: 3\n", "line 1: enforcement_level"},
    {"command_validation: strict\n", "line 1: command_validation must be one of warn, enforce"},
    {"enforcement_level: enforce\n", "enforcement_level must be one of warn, strict"},
    {"allowed_commands: ls\n", "line 1: allowed_commands must be a list of strings"},
    {"allowed_commands:\n  - ls\n  - 7\n",
     "line 3: allowed_commands[1] must be a non-empty string"},
    {"allowed_commands: [\"\"]\n", "allowed_commands[0] must be a non-empty string"},
    {"allowed_commands: [/bin/ls]\n", "must be a command name"},
    {"allowed_commands: [\"ls -l\"]\n", "must be a command name"},
    {"allowed_commands: [[ls]]\n", "allowed_commands[0] must be a non-empty string"},
    {"allowed_shell_operators: [\"&&\", and]\n", "allowed_shell_operators[1] must be one of"},
    {"allowed_shell_operators: \"&&\"\n", "allowed_shell_operators must be a list"},
    {"blocked_patterns: {a: b}\n", "blocked_patterns must be a list of strings"},
    {"blocked_patterns: [\"\"]\n", "blocked_patterns[0] must be a non-empty string"},
    {"require_approval: [1]\n", "require_approval[0] must be a non-empty string"},
    {"allow_shell_operators: yes\n", "allow_shell_operators must be true or false"},
    {"safe_commands_only: \"true\"\n", "safe_commands_only must be true or false"},
    {"enforcement_level: strict\ncommand_validation: enforce\n", "line 2: mixes"},
    {"safe_commands_only: true\nallowed_commands: [ls]\n", "mixes"},
    {"- enforcement_level: strict\n", "must be a mapping"},
    {"just text\n", "must be a mapping"},
    {"enforcement_level: strict\n---\nenforcement_level: warn\n", "one YAML document"},
    {"enforcement_level: strict\nenforcement_level: warn\n", "duplicate"},
    {"enforcement_level: [strict\n", "layer.yml"},
    {"allowed_commands: null\n", "allowed_commands must be a list"},
};

Test(na_cmdpolicy, load_errors_name_file_and_line)
{
	for (size_t i = 0; i < sizeof bad_files / sizeof *bad_files; i++) {
		char err[512] = "";
		na_policy *p = na_policy_new();
		int rc = na_policy_load_buffer(p, "layer.yml", bad_files[i].text,
		                               strlen(bad_files[i].text), err, sizeof err);
		cr_expect_lt(rc, 0, "accepted: %s", bad_files[i].text);
		cr_expect(strstr(err, bad_files[i].want) != NULL, "%s: error \"%s\" lacks \"%s\"",
		          bad_files[i].text, err, bad_files[i].want);
		cr_expect(strncmp(err, "layer.yml", 9) == 0, "error does not name the file: %s",
		          err);
		/* A failed load leaves the policy as it was. */
		cr_expect_eq(p->n_files, 0);
		cr_expect_eq(p->level, NA_LEVEL_WARN);
		na_policy_free(p);
	}
}

Test(na_cmdpolicy, too_many_entries)
{
	size_t n = CF_AGENT_MAX_POLICY_ENTRIES + 1;
	char *text = malloc(n * 8 + 64);
	cr_assert_not_null(text);
	size_t o = (size_t)snprintf(text, 64, "blocked_patterns:\n");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(text + o, 16, "- p%zu\n", i);
	char err[512];
	na_policy *p = na_policy_new();
	cr_assert_eq(na_policy_load_buffer(p, "big.yml", text, o, err, sizeof err), -E2BIG);
	cr_assert(strstr(err, "more than") != NULL, "%s", err);
	na_policy_free(p);
	free(text);
}

Test(na_cmdpolicy, missing_file)
{
	char err[512];
	na_policy *p = na_policy_new();
	cr_assert_eq(na_policy_load_file(p, "/nonexistent/policy.yml", err, sizeof err), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/policy.yml") != NULL);
	na_policy_free(p);
}

Test(na_cmdpolicy, load_both_forms)
{
	const char *seed[] = {"enforcement_level: strict\n"
	                      "allowed_commands: [npm, node]\n"
	                      "allowed_shell_operators: [\"&&\", \"|\"]\n"
	                      "blocked_patterns: [\"rm -rf\"]\n"
	                      "require_approval: [\"git push*\"]\n"};
	na_policy *p = load(seed, 1);
	cr_assert_eq(p->level, NA_LEVEL_STRICT);
	cr_assert(p->has_allowed);
	cr_assert_eq(p->n_allowed, 2);
	cr_assert_eq(p->allowed_ops, NA_SH_BIT(NA_SH_AND) | NA_SH_BIT(NA_SH_PIPE));
	cr_assert_eq(p->n_blocked, 1);
	cr_assert_eq(p->n_approval, 1);
	na_policy_free(p);

	const char *deploy[] = {"command_validation: enforce\n"
	                        "allow_shell_operators: true\n"
	                        "safe_commands_only: true\n"};
	p = load(deploy, 1);
	cr_assert_eq(p->level, NA_LEVEL_STRICT);
	cr_assert_eq(p->allowed_ops, NA_SH_ALL_OPS);
	cr_assert(p->has_allowed);
	bool has_git = false, has_rm = false;
	for (size_t i = 0; i < p->n_allowed; i++) {
		has_git |= strcmp(p->allowed[i], "git") == 0;
		has_rm |= strcmp(p->allowed[i], "rm") == 0;
	}
	cr_assert(has_git && !has_rm);
	na_policy_free(p);

	const char *empty[] = {"# nothing here\n", "safe_commands_only: false\n"};
	p = load(empty, 2);
	cr_assert_eq(p->level, NA_LEVEL_WARN);
	cr_assert(!p->level_set);
	cr_assert(!p->has_allowed);
	cr_assert_eq(p->n_files, 2);
	na_policy_free(p);
}

/* ---- layering: a later file can only tighten ---- */

Test(na_cmdpolicy, layering_tightens)
{
	const char *l[] = {
	    "enforcement_level: strict\n"
	    "allowed_commands: [npm, node, git]\n"
	    "allowed_shell_operators: [\"&&\", \"|\", \";\"]\n"
	    "blocked_patterns: [\"rm -rf\"]\n",
	    "enforcement_level: warn\n" /* cannot loosen */
	    "allowed_commands: [node, git, curl]\n"
	    "allowed_shell_operators: [\"&&\", \">\"]\n"
	    "blocked_patterns: [\"curl\"]\n"
	    "require_approval: [\"git push*\"]\n",
	};
	na_policy *p = load(l, 2);
	cr_assert_eq(p->level, NA_LEVEL_STRICT);
	cr_assert_eq(p->n_allowed, 2); /* node, git */
	cr_assert_eq(p->allowed_ops, NA_SH_BIT(NA_SH_AND));
	cr_assert_eq(p->n_blocked, 2);
	cr_assert_eq(p->n_approval, 1);
	na_policy_free(p);
}

Test(na_cmdpolicy, layering_disjoint_allowlists_allow_nothing)
{
	const char *l[] = {"allowed_commands: [npm]\n", "allowed_commands: [make]\n"};
	na_policy *p = load(l, 2);
	cr_assert(p->has_allowed);
	cr_assert_eq(p->n_allowed, 0);
	na_policy_free(p);
}

Test(na_cmdpolicy, layering_cannot_disable)
{
	const char *l[] = {"enforcement_level: warn\n", "enforcement_level: disabled\n",
	                   "allowed_commands: []\n", "allow_shell_operators: true\n"};
	const char *first[] = {"enforcement_level: warn\nallowed_commands: [ls]\n"
	                       "allowed_shell_operators: [\";\"]\n"};
	na_policy *p = load(first, 1);
	char err[256];
	for (size_t i = 0; i < sizeof l / sizeof *l; i++)
		cr_assert_eq(na_policy_load_buffer(p, "x", l[i], strlen(l[i]), err, sizeof err), 0);
	cr_assert_eq(p->level, NA_LEVEL_WARN);
	cr_assert(p->has_allowed);
	cr_assert_eq(p->n_allowed, 1);
	cr_assert_eq(p->allowed_ops, NA_SH_BIT(NA_SH_SEMI));
	na_policy_free(p);
}

Test(na_cmdpolicy, layering_project_can_enable_from_disabled)
{
	const char *l[] = {"enforcement_level: disabled\n", "enforcement_level: strict\n"};
	na_policy *p = load(l, 2);
	cr_assert_eq(p->level, NA_LEVEL_STRICT);
	na_policy_free(p);
}

/* ---- decisions ---- */

static const char *const base_policy = "enforcement_level: strict\n"
                                       "allowed_commands: [npm, make, git, sh, echo]\n"
                                       "allowed_shell_operators: [\"&&\", \"|\"]\n"
                                       "blocked_patterns: [\"rm -rf\", \"curl http\", \"Secret\"]\n"
                                       "require_approval: [\"git push*\", \"npm publish\"]\n";

struct dcase {
	const char *exe;    /* exe_base; NULL -> argv[0]'s basename */
	const char *target; /* target_base */
	const char *argv[8];
	bool first, ancestor;
	na_verdict want;
	const char *rule;
};

/* Allowed. */
static const struct dcase allowed_cases[] = {
    {"npm", NULL, {"npm", "test"}, false, false, NA_VERDICT_ALLOW, "allowed_commands"},
    {NULL, NULL, {"/usr/bin/make", "-j2"}, false, false, NA_VERDICT_ALLOW, "allowed_commands"},
    {"node", NULL, {"node", "x.js"}, false, true, NA_VERDICT_ALLOW, "ancestry"},
    {"python3", NULL, {"python3", "t.py"}, true, false, NA_VERDICT_ALLOW, "entrypoint"},
    {"sh",
     NULL,
     {"sh", "-c", "make && make test | tee"},
     false,
     false,
     NA_VERDICT_ALLOW,
     "allowed_commands"},
    {"sh",
     NULL,
     {"sh", "-c", "echo 'a; b' \"c > d\""},
     false,
     false,
     NA_VERDICT_ALLOW,
     "allowed_commands"},
    {"ls", "busybox", {"echo", "hi"}, false, false, NA_VERDICT_ALLOW, "allowed_commands"},
    {"git", NULL, {"git", "status"}, false, false, NA_VERDICT_ALLOW, "allowed_commands"},
    {"echo", NULL, {"echo", "secret"}, false, false, NA_VERDICT_ALLOW, "allowed_commands"},
    {"sh", NULL, {"sh", "script.sh", "a;b"}, false, false, NA_VERDICT_ALLOW, "allowed_commands"},
};

/* Denied or held. */
static const struct dcase denied_cases[] = {
    {"rm", NULL, {"rm", "x"}, false, false, NA_VERDICT_DENY, "allowed_commands"},
    {"rm", NULL, {"rm", "-rf", "/"}, false, true, NA_VERDICT_DENY, "blocked_patterns"},
    {"rm", NULL, {"rm", "-rf", "/"}, true, false, NA_VERDICT_DENY, "blocked_patterns"},
    {"sh",
     NULL,
     {"sh", "-c", "make; make test"},
     false,
     false,
     NA_VERDICT_DENY,
     "allowed_shell_operators"},
    {"bash",
     NULL,
     {"bash", "-c", "echo $(id)"},
     false,
     true,
     NA_VERDICT_DENY,
     "allowed_shell_operators"},
    {"sh",
     NULL,
     {"sh", "-c", "echo 'unterminated"},
     false,
     false,
     NA_VERDICT_DENY,
     "allowed_shell_operators"},
    {"sh",
     NULL,
     {"sh", "-c", "echo ok\nrm x"},
     false,
     false,
     NA_VERDICT_DENY,
     "allowed_shell_operators"},
    {"sh",
     NULL,
     {"sh", "-c", "x=\"$(rm -rf /)\""},
     false,
     false,
     NA_VERDICT_DENY,
     "blocked_patterns"},
    {"git", NULL, {"git", "push", "origin"}, false, false, NA_VERDICT_APPROVAL, "require_approval"},
    {"npm", NULL, {"npm", "publish"}, false, false, NA_VERDICT_APPROVAL, "require_approval"},
    /* argv[0] lies: the name comes from the executed file. */
    {"rm", NULL, {"npm", "x"}, false, false, NA_VERDICT_DENY, "allowed_commands"},
    /* busybox: argv[0] names the applet, even through an allowed link. */
    {"echo", "busybox", {"rm", "x"}, false, false, NA_VERDICT_DENY, "allowed_commands"},
    {"busybox", NULL, {"busybox", "rm", "x"}, false, false, NA_VERDICT_DENY, "allowed_commands"},
    {"curl", NULL, {"curl", "http://x"}, false, true, NA_VERDICT_DENY, "blocked_patterns"},
    {"echo", NULL, {"echo", "Secret"}, false, false, NA_VERDICT_DENY, "blocked_patterns"},
    {"make", NULL, {"make", "rm", "-rf"}, false, false, NA_VERDICT_DENY, "blocked_patterns"},
    {"zsh", NULL, {"zsh", "-c", "a > b"}, false, true, NA_VERDICT_DENY, "allowed_shell_operators"},
    {"dash",
     NULL,
     {"dash", "-ec", "a & b"},
     false,
     true,
     NA_VERDICT_DENY,
     "allowed_shell_operators"},
    /* a shell behind another name (symlink) is still scanned */
    {"make",
     "dash",
     {"make", "-c", "a; b"},
     false,
     false,
     NA_VERDICT_DENY,
     "allowed_shell_operators"},
};

static void run_case(const na_policy *p, const struct dcase *c, size_t idx, const char *table)
{
	size_t argc = 0;
	while (argc < 8 && c->argv[argc])
		argc++;
	na_cmd cmd = {
	    .exe_base = c->exe,
	    .target_base = c->target,
	    .argv = (char *const *)c->argv,
	    .argc = argc,
	};
	na_cmd_context ctx = {.first_exec = c->first, .allowed_ancestor = c->ancestor};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, &ctx, &d), 0);
	cr_expect_eq(d.verdict, c->want, "%s[%zu] %s: verdict %s, want %s", table, idx, c->argv[0],
	             na_verdict_name(d.verdict), na_verdict_name(c->want));
	cr_expect_str_eq(d.rule, c->rule, "%s[%zu] %s: rule %s, want %s", table, idx, c->argv[0],
	                 d.rule, c->rule);
	if (c->want != NA_VERDICT_ALLOW) {
		cr_expect_eq(d.log_level, CF_LOG_WARNING);
		cr_expect_gt(d.n_findings, 0);
	}
}

Test(na_cmdpolicy, decide_allowed)
{
	const char *t[] = {base_policy};
	na_policy *p = load(t, 1);
	for (size_t i = 0; i < sizeof allowed_cases / sizeof *allowed_cases; i++)
		run_case(p, &allowed_cases[i], i, "allowed");
	na_policy_free(p);
}

Test(na_cmdpolicy, decide_denied)
{
	const char *t[] = {base_policy};
	na_policy *p = load(t, 1);
	for (size_t i = 0; i < sizeof denied_cases / sizeof *denied_cases; i++)
		run_case(p, &denied_cases[i], i, "denied");
	na_policy_free(p);
}

Test(na_cmdpolicy, warn_mode_allows_with_warning)
{
	const char *t[] = {"enforcement_level: warn\nallowed_commands: [npm]\n"
	                   "blocked_patterns: [\"rm -rf\"]\nrequire_approval: [\"git push*\"]\n"};
	na_policy *p = load(t, 1);
	char *argv[] = {"rm", "-rf", "/", NULL};
	na_cmd cmd = {.exe_base = "rm", .argv = argv, .argc = 3};
	na_cmd_context ctx = {0};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, &ctx, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_ALLOW);
	cr_assert_eq(d.log_level, CF_LOG_WARNING);
	cr_assert_str_eq(d.rule, "blocked_patterns");
	cr_assert_eq(d.n_findings, 2); /* pattern and allowlist */
	char *argv2[] = {"git", "push", NULL};
	cmd = (na_cmd){.exe_base = "git", .argv = argv2, .argc = 2};
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, &ctx, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_ALLOW);
	cr_assert_eq(d.log_level, CF_LOG_WARNING);
	char *argv3[] = {"npm", "test", NULL};
	cmd = (na_cmd){.exe_base = "npm", .argv = argv3, .argc = 2};
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, &ctx, &d), 0);
	cr_assert_eq(d.log_level, CF_LOG_DEBUG);
	na_policy_free(p);
}

Test(na_cmdpolicy, no_allowlist_is_info)
{
	const char *t[] = {"enforcement_level: strict\n"};
	na_policy *p = load(t, 1);
	char *argv[] = {"anything", NULL};
	na_cmd cmd = {.exe_base = "anything", .argv = argv, .argc = 1};
	na_cmd_context ctx = {0};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, &ctx, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_ALLOW);
	cr_assert_eq(d.log_level, CF_LOG_INFO);
	cr_assert_str_eq(d.rule, "unknown_command");
	cr_assert(!d.name_allowed);
	na_policy_free(p);
}

Test(na_cmdpolicy, disabled_decides_nothing)
{
	const char *t[] = {"enforcement_level: disabled\nblocked_patterns: [rm]\n"};
	na_policy *p = load(t, 1);
	char *argv[] = {"rm", "-rf", "/", NULL};
	na_cmd cmd = {.exe_base = "rm", .argv = argv, .argc = 3};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_ALLOW);
	cr_assert_str_eq(d.rule, "disabled");
	cr_assert_eq(d.n_findings, 0);
	na_policy_free(p);
}

Test(na_cmdpolicy, truncated_argv_is_a_finding)
{
	const char *t[] = {"enforcement_level: strict\n"};
	na_policy *p = load(t, 1);
	char *argv[] = {"ls", NULL};
	na_cmd cmd = {.exe_base = "ls", .argv = argv, .argc = 1, .truncated = true};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_DENY);
	cr_assert_str_eq(d.rule, "truncated");
	na_policy_free(p);
}

Test(na_cmdpolicy, ten_thousand_arguments)
{
	const char *t[] = {base_policy};
	na_policy *p = load(t, 1);
	size_t n = 10000;
	char **argv = calloc(n + 1, sizeof *argv);
	cr_assert_not_null(argv);
	argv[0] = "make";
	for (size_t i = 1; i < n; i++)
		argv[i] = "target";
	na_cmd cmd = {.exe_base = "make", .argv = argv, .argc = n};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_ALLOW);
	/* The pattern spans two arguments at the very end. */
	argv[n - 2] = "rm";
	argv[n - 1] = "-rf";
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_DENY);
	cr_assert_str_eq(d.rule, "blocked_patterns");
	free(argv);
	na_policy_free(p);
}

Test(na_cmdpolicy, one_megabyte_script)
{
	const char *t[] = {base_policy};
	na_policy *p = load(t, 1);
	size_t n = 1024 * 1024;
	char *script = malloc(n + 1);
	cr_assert_not_null(script);
	for (size_t i = 0; i < n; i++)
		script[i] = "echo hi && "[i % 11];
	script[n] = '\0';
	char *argv[] = {"sh", "-c", script, NULL};
	na_cmd cmd = {.exe_base = "sh", .argv = argv, .argc = 3};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_ALLOW, "%s", d.rule);
	script[n - 3] = ';';
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cr_assert_eq(d.verdict, NA_VERDICT_DENY);
	cr_assert_str_eq(d.rule, "allowed_shell_operators");
	free(script);
	na_policy_free(p);
}

Test(na_cmdpolicy, findings_are_bounded)
{
	char text[8192] = "enforcement_level: strict\nblocked_patterns:\n";
	for (int i = 0; i < 40; i++) {
		char line[32];
		snprintf(line, sizeof line, "- \"a%d\"\n", i);
		strncat(text, line, sizeof text - strlen(text) - 1);
	}
	const char *t[] = {text};
	na_policy *p = load(t, 1);
	char arg[512] = "";
	for (int i = 0; i < 40; i++) {
		char w[16];
		snprintf(w, sizeof w, "a%d ", i);
		strncat(arg, w, sizeof arg - strlen(arg) - 1);
	}
	char *argv[] = {"x", arg, NULL};
	na_cmd cmd = {.exe_base = "x", .argv = argv, .argc = 2};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cr_assert_eq(d.n_findings, CF_AGENT_MAX_FINDINGS);
	cr_assert_gt(d.findings_dropped, 0);
	cr_assert_eq(d.verdict, NA_VERDICT_DENY);
	na_policy_free(p);
}

/* ---- names ---- */

struct ncase {
	const char *exe, *target;
	const char *argv[4];
	const char *want;
};

static const struct ncase names[] = {
    {"ls", NULL, {"whatever"}, "ls"},
    {"ls", "busybox", {"rm", "-rf"}, "rm"},
    {"ls", "busybox", {"/bin/cat"}, "cat"},
    {"ls", "busybox", {"-sh"}, "sh"},
    {"busybox", NULL, {"busybox", "wget", "x"}, "wget"},
    {"busybox", NULL, {"busybox", "--help"}, "busybox"},
    {"toybox", NULL, {"ls"}, "ls"},
    {"", NULL, {"/usr/bin/env"}, "env"},
    {NULL, NULL, {"python3"}, "python3"},
    {"python3", "python3.11", {"python"}, "python3"},
    {"..", "make", {"x"}, "make"},
};

Test(na_cmdpolicy, names)
{
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		size_t argc = 0;
		while (argc < 4 && names[i].argv[argc])
			argc++;
		na_cmd cmd = {.exe_base = names[i].exe,
		              .target_base = names[i].target,
		              .argv = (char *const *)names[i].argv,
		              .argc = argc};
		char out[256];
		na_cmdpolicy_name(&cmd, out, sizeof out);
		cr_expect_str_eq(out, names[i].want, "names[%zu]: %s, want %s", i, out,
		                 names[i].want);
	}
}

/* ---- globs ---- */

struct gcase {
	const char *pat, *text;
	bool want;
};

static const struct gcase globs[] = {
    {"git push*", "git push origin main", true},
    {"git push*", "git push", true},
    {"git push*", "git pushx", true},
    {"*deploy*", "make deploy-prod", true},
    {"npm publish", "npm publish", true},
    {"n?m *", "npm test", true},
    {"*", "", true},
    {"a*b*c", "aXXbYYc", true},
    {"git push*", "git  push", false},
    {"git push*", "sudo git push", false},
    {"npm publish", "npm publish --dry-run", false},
    {"n?m", "nm", false},
    {"a*b*c", "aXXbYY", false},
    {"?", "", false},
    {"Git*", "git push", false},
    {"*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
};

Test(na_cmdpolicy, globs)
{
	for (size_t i = 0; i < sizeof globs / sizeof *globs; i++)
		cr_expect_eq(na_glob_match(globs[i].pat, globs[i].text, strlen(globs[i].text)),
		             globs[i].want, "glob %s vs %s", globs[i].pat, globs[i].text);
}

Test(na_cmdpolicy, cmdline_join)
{
	char *argv[] = {"sh", "-c", "a  b", "", NULL};
	size_t n;
	char *s = na_cmdpolicy_cmdline(argv, 4, &n);
	cr_assert_str_eq(s, "sh -c a  b ");
	cr_assert_eq(n, strlen(s));
	free(s);
	s = na_cmdpolicy_cmdline(argv, 0, &n);
	cr_assert_str_eq(s, "");
	free(s);
}

Test(na_cmdpolicy, decision_json)
{
	const char *t[] = {base_policy};
	na_policy *p = load(t, 1);
	char *argv[] = {"rm", "-rf", "x", NULL};
	na_cmd cmd = {.exe_base = "rm", .argv = argv, .argc = 3};
	na_decision d;
	cr_assert_eq(na_cmdpolicy_decide(p, &cmd, NULL, &d), 0);
	cJSON *j = na_decision_to_json(&d);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "decision")->valuestring, "deny");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, "warning");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "enforcement")->valuestring, "strict");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "rule")->valuestring, "blocked_patterns");
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "findings")), 2);
	cJSON_Delete(j);
	j = na_policy_to_json(p);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "enforcement_level")->valuestring, "strict");
	cJSON_Delete(j);
	na_policy_free(p);
}

Test(na_cmdpolicy, unknown_key_in_deploy_form)
{
	const char *text = "command_validation: enforce\nsafe_commands: true\n";
	char err[512];
	na_policy *p = na_policy_new();
	cr_assert_eq(na_policy_load_buffer(p, "security.yml", text, strlen(text), err, sizeof err),
	             -EINVAL);
	cr_assert(strstr(err, "security.yml: line 2: unknown key \"safe_commands\"") != NULL, "%s",
	          err);
	na_policy_free(p);
}

/* Every key with every YAML type: accepted or a clear error, never a crash,
 * and a failed load leaves the policy untouched. */
Test(na_cmdpolicy, every_key_every_type)
{
	static const char *const keys[] = {"enforcement_level",       "allowed_commands",
	                                   "allowed_shell_operators", "blocked_patterns",
	                                   "require_approval",        "command_validation",
	                                   "allow_shell_operators",   "safe_commands_only"};
	static const char *const values[] = {
	    "null",   "true",     "false", "1",    "-2.5",   "\"\"", "warn",
	    "strict", "enforce",  "[]",    "{}",   "[null]", "[1]",  "[\"\"]",
	    "[x]",    "[\"&&\"]", "[{}]",  "[[]]", "{a: 1}",
	};
	size_t accepted = 0, rejected = 0;
	for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
		for (size_t v = 0; v < sizeof values / sizeof *values; v++) {
			char text[256], err[512] = "";
			snprintf(text, sizeof text, "%s: %s\n", keys[k], values[v]);
			na_policy *p = na_policy_new();
			int rc =
			    na_policy_load_buffer(p, "t.yml", text, strlen(text), err, sizeof err);
			if (rc == 0) {
				accepted++;
				cr_expect_eq(p->n_files, 1);
			} else {
				rejected++;
				cr_expect_eq(rc, -EINVAL, "%s: rc %d", text, rc);
				cr_expect(strncmp(err, "t.yml: line 1: ", 15) == 0, "%s: %s", text,
				          err);
				cr_expect_eq(p->n_files, 0);
			}
			na_policy_free(p);
		}
	}
	cr_assert_gt(accepted, 0);
	cr_assert_gt(rejected, accepted);
}
