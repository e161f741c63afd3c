/*
 * na_shell.h - finds the shell operators in a `sh -c` script.
 *
 * Purpose: the command policy lets a project allow some shell operators
 * (`&&`, `|`, ...) and not others. A script is untrusted text, so this
 * scanner reads it the way a POSIX shell (and bash/zsh for `$'...'`, `|&`,
 * `&>`) tokenises operators: single quotes are literal, double quotes keep
 * `$(` and backticks live but hide `;|&<>`, backslash escapes one character
 * (inside double quotes only `$`, backtick, `"`, `\` and newline), `#` at
 * the start of a word starts a comment, here-document bodies are data (with
 * `$(`/backticks live unless the delimiter is quoted), and `$(`, backticks
 * and `${` open nested contexts whose own operators count.
 *
 * Every operator is reported once with the offset of its first occurrence.
 * Redirection forms map onto `>`/`<` (`>>`, `>|`, `>&`, `&>`, `2>&1`,
 * `<<`, `<<<`, `<>`, `<(`/`>(`); `|&` is `|`; `;;`/`;&` are `;`; `$((` is
 * `$(`. A newline counts only when it separates two commands (not leading,
 * trailing, after `&&`/`||`/`|`, or escaped).
 *
 * Anything the scanner cannot read with certainty is a *problem* (an
 * unterminated quote or substitution, a NUL byte, nesting deeper than
 * CF_AGENT_MAX_SHELL_DEPTH, too many here-documents): the policy treats a
 * problem as a finding, so ambiguity never reads as "no operators".
 * Work is one pass, O(len), with bounded state; scripts of any size are
 * scanned in full.
 *
 * Thread-safety: pure; no shared state. Ownership: none (no allocation).
 */
#ifndef NA_SHELL_H
#define NA_SHELL_H

#include <stdbool.h>
#include <stddef.h>

typedef enum na_shell_op {
	NA_SH_AND = 0,  /* && */
	NA_SH_OR,       /* || */
	NA_SH_SEMI,     /* ; */
	NA_SH_PIPE,     /* | */
	NA_SH_BG,       /* & */
	NA_SH_OUT,      /* > */
	NA_SH_IN,       /* < */
	NA_SH_SUBST,    /* $( */
	NA_SH_BACKTICK, /* ` */
	NA_SH_NEWLINE,  /* newline between commands */
	NA_SH_OP_COUNT
} na_shell_op;

#define NA_SH_BIT(op) (1u << (unsigned)(op))
#define NA_SH_ALL_OPS ((1u << (unsigned)NA_SH_OP_COUNT) - 1u)

/* Problems: bits in na_shell_result.problems. */
#define NA_SH_P_UNTERMINATED_SQUOTE   0x01u
#define NA_SH_P_UNTERMINATED_DQUOTE   0x02u
#define NA_SH_P_UNTERMINATED_SUBST    0x04u /* $( ... or ${ ... without its close */
#define NA_SH_P_UNTERMINATED_BACKTICK 0x08u
#define NA_SH_P_UNTERMINATED_HEREDOC  0x10u
#define NA_SH_P_NUL                   0x20u
#define NA_SH_P_TOO_DEEP              0x40u
#define NA_SH_P_TOO_MANY_HEREDOCS     0x80u
#define NA_SH_P_TRAILING_BACKSLASH    0x100u
#define NA_SH_P_COUNT                 9

typedef struct na_shell_result {
	unsigned ops;                 /* NA_SH_BIT() set of operators found */
	size_t first[NA_SH_OP_COUNT]; /* byte offset of each one's first occurrence */
	unsigned problems;            /* NA_SH_P_* bits */
	size_t problem_offset;        /* offset of the first problem */
} na_shell_result;

/* Scans script[0..len) (NUL bytes inside are a problem, not an end).
 * Never fails; `out` is fully written. */
void na_shell_scan(const char *script, size_t len, na_shell_result *out);

/* "&&", "||", ";", "|", "&", ">", "<", "$(", "`", "newline". */
const char *na_shell_op_text(na_shell_op op);
/* Accepts the texts above, plus ">>" (as ">"), "<<" (as "<"), "|&" (as
 * "|"), "\n" (as newline), "``" (as backtick), "$()" (as "$("). 0 and *out,
 * or -EINVAL. */
int na_shell_op_parse(const char *text, na_shell_op *out);
/* Short text for one NA_SH_P_* bit ("unterminated single quote", ...). */
const char *na_shell_problem_text(unsigned bit);

/* True when `name` (a command name) is one of the shells whose `-c` script
 * is scanned: sh, bash, dash, ash, zsh (also ksh, mksh, busybox's sh). */
bool na_shell_is_shell(const char *name);
/* For a shell's argv: the `-c` script (the first operand after an option
 * cluster containing `c`, e.g. `-c`, `-ec`, `-xc`), or NULL when the shell
 * reads a file or stdin. */
const char *na_shell_script_arg(char *const *argv, size_t argc);

#endif
