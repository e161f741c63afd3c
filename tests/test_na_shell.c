/* test_na_shell.c - the shell operator scanner, table-driven, with hostile
 * input. "Negative" cases are those where something is hidden (quoted,
 * escaped, commented) and must NOT be reported, or where the scanner must
 * report a problem instead of guessing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_limits.h"
#include "na_shell.h"

#define B(op) NA_SH_BIT(NA_SH_##op)

struct scase {
	const char *script;
	unsigned ops;
	unsigned problems;
};

/* Operators that must be found. */
static const struct scase found[] = {
    {"a && b", B(AND), 0},
    {"a || b", B(OR), 0},
    {"a; b", B(SEMI), 0},
    {"a | b", B(PIPE), 0},
    {"a & b", B(BG), 0},
    {"a > f", B(OUT), 0},
    {"a >> f", B(OUT), 0},
    {"a < f", B(IN), 0},
    {"echo $(id)", B(SUBST), 0},
    {"echo `id`", B(BACKTICK), 0},
    {"a\nb", B(NEWLINE), 0},
    {"a&&b||c", B(AND) | B(OR), 0},
    {"a 2>&1", B(OUT), 0},
    {"a &> f", B(OUT), 0},
    {"a |& b", B(PIPE), 0},
    {"echo \"$(id)\"", B(SUBST), 0},
    {"echo \"`id`\"", B(BACKTICK), 0},
    {"echo \"$(a; b)\"", B(SUBST) | B(SEMI), 0},
    {"echo $(a | b)", B(SUBST) | B(PIPE), 0},
    {"echo $((1+2)); x", B(SUBST) | B(SEMI), 0},
    {"(a; b)", B(SEMI), 0},
    {"echo 'x';y", B(SEMI), 0},
    {"echo \"x\"|y", B(PIPE), 0},
    {"diff <(a) <(b)", B(IN), 0},
    {"cat <<EOF\nbody\nEOF\nrm x", B(IN) | B(NEWLINE), 0},
    {"cat <<EOF\n$(id)\nEOF", B(IN) | B(SUBST), 0},
    {"cat <<EOF\n$(a;b)\nEOF", B(IN) | B(SUBST) | B(SEMI), 0},
    {"echo ${x:-$(id)}", B(SUBST), 0},
    {"a\\\n&& b", B(AND), 0},
    {"x=1 # c\ny", B(NEWLINE), 0},
    {"echo a#b;c", B(SEMI), 0},
    {"case x in a) y;; esac", B(SEMI), 0},
    {"a\r#;b", B(SEMI), 0},
};

/* Things that must NOT be reported as operators. */
static const struct scase hidden[] = {
    {"echo 'a && b'", 0, 0},
    {"echo \"a && b\"", 0, 0},
    {"echo 'a; b | c > d < e & f'", 0, 0},
    {"echo \"a; b | c > d < e & f\"", 0, 0},
    {"echo a\\;b", 0, 0},
    {"echo a\\&\\&b", 0, 0},
    {"echo a\\|b", 0, 0},
    {"echo a\\>b", 0, 0},
    {"echo \\$(id)", 0, 0},
    {"echo \\`id\\`", 0, 0},
    {"echo '$(id)'", 0, 0},
    {"echo '`id`'", 0, 0},
    {"echo \"\\$(id)\"", 0, 0},
    {"echo \"\\`id\\`\"", 0, 0},
    {"echo hi # ; rm -rf /", 0, 0},
    {"#!/bin/sh; x", 0, 0},
    {"echo hi\n", 0, 0},
    {"\n\necho hi", 0, 0},
    {"a &&\nb", B(AND), 0},
    {"a |\nb", B(PIPE), 0},
    {"echo a\\\nb", 0, 0},
    {"cat <<'EOF'\n$(id); `x` | y\nEOF", B(IN), 0},
    {"cat <<\"EOF\"\n$(id)\nEOF", B(IN), 0},
    {"cat <<\\EOF\n$(id)\nEOF", B(IN), 0},
    {"cat <<EOF\na; b | c && d\nEOF", B(IN), 0},
    {"cat <<-EOF\n\ta; b\n\tEOF", B(IN), 0},
    {"echo ${x:-;}", 0, 0},
    {"echo $'a\\'; b'", 0, 0},
    {"echo \"it's\"", 0, 0},
    {"echo 'say \"x\"'", 0, 0},
    {"echo a\\ b", 0, 0},
    {"", 0, 0},
    {"echo $HOME", 0, 0},
    {"echo \"$HOME\"", 0, 0},
};

/* Input the scanner cannot read with certainty: a problem, never a crash. */
static const struct scase broken[] = {
    {"echo 'abc", 0, NA_SH_P_UNTERMINATED_SQUOTE},
    {"echo \"abc", 0, NA_SH_P_UNTERMINATED_DQUOTE},
    {"echo $(abc", B(SUBST), NA_SH_P_UNTERMINATED_SUBST},
    {"echo `abc", B(BACKTICK), NA_SH_P_UNTERMINATED_BACKTICK},
    {"echo ${abc", 0, NA_SH_P_UNTERMINATED_SUBST},
    {"cat <<EOF\nabc", B(IN), NA_SH_P_UNTERMINATED_HEREDOC},
    {"cat <<", B(IN), NA_SH_P_UNTERMINATED_HEREDOC},
    {"echo abc\\", 0, NA_SH_P_TRAILING_BACKSLASH},
    {"echo 'a; b", 0, NA_SH_P_UNTERMINATED_SQUOTE},
    {"echo \"a; b", 0, NA_SH_P_UNTERMINATED_DQUOTE},
    {"echo $'abc", 0, NA_SH_P_UNTERMINATED_SQUOTE},
    {"echo \"$(a; b", B(SUBST) | B(SEMI), NA_SH_P_UNTERMINATED_SUBST | NA_SH_P_UNTERMINATED_DQUOTE},
};

static void check_case(const struct scase *c, size_t idx, const char *table)
{
	na_shell_result r;
	na_shell_scan(c->script, strlen(c->script), &r);
	cr_expect_eq(r.ops, c->ops, "%s[%zu] %s: ops 0x%x, want 0x%x", table, idx, c->script, r.ops,
	             c->ops);
	cr_expect_eq(r.problems, c->problems, "%s[%zu] %s: problems 0x%x, want 0x%x", table, idx,
	             c->script, r.problems, c->problems);
}

Test(na_shell, operators_found)
{
	for (size_t i = 0; i < sizeof found / sizeof *found; i++)
		check_case(&found[i], i, "found");
}

Test(na_shell, quoted_escaped_commented_not_found)
{
	for (size_t i = 0; i < sizeof hidden / sizeof *hidden; i++)
		check_case(&hidden[i], i, "hidden");
}

Test(na_shell, unterminated_is_a_problem)
{
	for (size_t i = 0; i < sizeof broken / sizeof *broken; i++)
		check_case(&broken[i], i, "broken");
}

Test(na_shell, first_offsets)
{
	na_shell_result r;
	const char *s = "echo a; b && c; d";
	na_shell_scan(s, strlen(s), &r);
	cr_assert_eq(r.first[NA_SH_SEMI], 6);
	cr_assert_eq(r.first[NA_SH_AND], 10);
}

Test(na_shell, nul_bytes_do_not_hide_operators)
{
	const char s[] = "echo a\0; rm -rf /";
	na_shell_result r;
	na_shell_scan(s, sizeof s - 1, &r);
	cr_assert(r.problems & NA_SH_P_NUL);
	cr_assert(r.ops & B(SEMI));
	const char q[] = "echo '\0'";
	na_shell_scan(q, sizeof q - 1, &r);
	cr_assert(r.problems & NA_SH_P_NUL || r.ops == 0);
}

Test(na_shell, deep_nesting_is_bounded)
{
	size_t n = CF_AGENT_MAX_SHELL_DEPTH * 4;
	char *s = malloc(n * 2 + 1);
	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = '$';
		s[2 * i + 1] = '(';
	}
	s[2 * n] = '\0';
	na_shell_result r;
	na_shell_scan(s, 2 * n, &r);
	cr_assert(r.problems & NA_SH_P_TOO_DEEP);
	cr_assert(r.ops & B(SUBST));
	free(s);
}

Test(na_shell, one_megabyte_script)
{
	size_t n = 1024 * 1024;
	char *s = malloc(n + 16);
	cr_assert_not_null(s);
	/* Long quoted text (no operators), then an operator at the very end. */
	s[0] = '\'';
	memset(s + 1, ';', n - 2);
	s[n - 1] = '\'';
	memcpy(s + n, " && x", 6);
	na_shell_result r;
	na_shell_scan(s, n + 5, &r);
	cr_assert_eq(r.ops, B(AND));
	cr_assert_eq(r.problems, 0);
	cr_assert_eq(r.first[NA_SH_AND], n + 1);
	/* Many here-documents and quotes: still one linear pass. */
	for (size_t i = 0; i < n; i++)
		s[i] = "'\"`$(\\\n<<"[i % 9];
	na_shell_scan(s, n, &r);
	cr_assert(r.problems != 0 || r.ops != 0);
	free(s);
}

Test(na_shell, too_many_heredocs)
{
	char s[2048] = "cat";
	for (unsigned i = 0; i < CF_AGENT_MAX_HEREDOCS + 2; i++)
		strncat(s, " <<E", sizeof s - strlen(s) - 1);
	strncat(s, "\nE\n", sizeof s - strlen(s) - 1);
	na_shell_result r;
	na_shell_scan(s, strlen(s), &r);
	cr_assert(r.problems & NA_SH_P_TOO_MANY_HEREDOCS);
}

Test(na_shell, op_parse)
{
	na_shell_op op;
	cr_assert_eq(na_shell_op_parse("&&", &op), 0);
	cr_assert_eq(op, NA_SH_AND);
	cr_assert_eq(na_shell_op_parse(">>", &op), 0);
	cr_assert_eq(op, NA_SH_OUT);
	cr_assert_eq(na_shell_op_parse("newline", &op), 0);
	cr_assert_eq(op, NA_SH_NEWLINE);
	cr_assert_eq(na_shell_op_parse("$(", &op), 0);
	cr_assert_eq(op, NA_SH_SUBST);
	for (unsigned k = 0; k < NA_SH_OP_COUNT; k++) {
		cr_assert_eq(na_shell_op_parse(na_shell_op_text(k), &op), 0);
		cr_assert_eq((unsigned)op, k);
	}
}

Test(na_shell, op_parse_rejects)
{
	static const char *const bad[] = {"", "&&&", "and", " ;", "$", "(", "||;", "\\n"};
	na_shell_op op;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_expect_eq(na_shell_op_parse(bad[i], &op), -EINVAL, "%s accepted", bad[i]);
	cr_assert_eq(na_shell_op_parse(NULL, &op), -EINVAL);
}

Test(na_shell, script_arg)
{
	char *a1[] = {"sh", "-c", "echo hi", "name", NULL};
	char *a2[] = {"bash", "-ec", "x", NULL};
	char *a3[] = {"bash", "-o", "pipefail", "-c", "y", NULL};
	char *a4[] = {"bash", "--norc", "-c", "z", NULL};
	char *a5[] = {"sh", "-c", "--", "w", NULL};
	cr_assert_str_eq(na_shell_script_arg(a1, 4), "echo hi");
	cr_assert_str_eq(na_shell_script_arg(a2, 3), "x");
	cr_assert_str_eq(na_shell_script_arg(a3, 5), "y");
	cr_assert_str_eq(na_shell_script_arg(a4, 4), "z");
	cr_assert_str_eq(na_shell_script_arg(a5, 4), "w");
}

Test(na_shell, script_arg_none)
{
	char *b1[] = {"sh", "script.sh", NULL};
	char *b2[] = {"sh", "-c", NULL};
	char *b3[] = {"sh", NULL};
	char *b4[] = {"sh", "-o", "c", "file", NULL};
	char *b5[] = {"sh", "+c", "file", NULL};
	char *b6[] = {"bash", "--rcfile", "-c", "file", NULL};
	cr_assert_null(na_shell_script_arg(b1, 2));
	cr_assert_null(na_shell_script_arg(b2, 2));
	cr_assert_null(na_shell_script_arg(b3, 1));
	cr_assert_null(na_shell_script_arg(b4, 4));
	cr_assert_null(na_shell_script_arg(b5, 3));
	cr_assert_null(na_shell_script_arg(b6, 4));
}

Test(na_shell, is_shell)
{
	cr_assert(na_shell_is_shell("sh"));
	cr_assert(na_shell_is_shell("bash"));
	cr_assert(na_shell_is_shell("dash"));
	cr_assert(na_shell_is_shell("ash"));
	cr_assert(na_shell_is_shell("zsh"));
	cr_assert(!na_shell_is_shell("shx"));
	cr_assert(!na_shell_is_shell("python"));
	cr_assert(!na_shell_is_shell(""));
	cr_assert(!na_shell_is_shell(NULL));
	cr_assert(!na_shell_is_shell("/bin/sh"));
}

/* Deterministic random scripts from the shell's special characters: never
 * a crash, every reported offset inside the script. */
Test(na_shell, random_scripts_are_safe)
{
	static const char alphabet[] = "'\"`$(){}\\;|&<>#\n\t -cEOFa\0";
	unsigned seed = 12345;
	char buf[300];
	for (int iter = 0; iter < 20000; iter++) {
		seed = seed * 1103515245u + 12345u;
		size_t len = (seed >> 16) % sizeof buf;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
		}
		na_shell_result r;
		na_shell_scan(buf, len, &r);
		for (unsigned k = 0; k < NA_SH_OP_COUNT; k++)
			if (r.ops & NA_SH_BIT(k))
				cr_assert_lt(r.first[k], len, "iter %d op %u", iter, k);
		if (r.problems)
			cr_assert_leq(r.problem_offset, len);
	}
}
