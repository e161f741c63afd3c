/*
 * na_cmdpolicy.h - the command policy: which execs a worker may run.
 *
 * Purpose: loads command policy files (both forms in DESIGN.md "Node agent"),
 * layers them (a later file can only tighten), and decides one exec from the
 * agent's own copy of its path and argv plus the tree's ancestry state.
 * docs/nodeagent.md states the semantics with examples; in short:
 * - name: the basename of the executed path (relative paths resolved by the
 *   kernel against cwd/dirfd); for a multi-call binary (the path resolves to
 *   busybox or toybox) argv[0]'s basename, and for `busybox APPLET ...`
 *   argv[1]'s.
 * - strict: a blocked pattern, a disallowed shell operator (or a script the
 *   scanner cannot read), an argv the reader had to truncate, or a name that
 *   is neither allowed, allowed-by-ancestry nor the tree's first exec ->
 *   deny (EPERM); a require_approval match -> approval-required.
 *   warn: the same findings -> allow, event level WARNING; otherwise an
 *   allowed name DEBUG, an unknown one INFO. disabled: allow, nothing read.
 *
 * Decisions are pure: na_cmdpolicy_decide reads only its arguments, so the
 * process that decides can be separate from the one that holds notify fds.
 *
 * Thread-safety: a loaded na_policy is immutable; any number of threads may
 * call na_cmdpolicy_decide on it concurrently. Loading is single-threaded.
 * Ownership: na_policy_new/na_policy_free; the policy owns its strings. A
 * na_decision is a plain value (fixed-size buffers, nothing to free).
 */
#ifndef NA_CMDPOLICY_H
#define NA_CMDPOLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "cf_limits.h"
#include "cf_log.h"

typedef enum na_level {
	NA_LEVEL_DISABLED = 0,
	NA_LEVEL_WARN = 1,
	NA_LEVEL_STRICT = 2,
} na_level;

const char *na_level_name(na_level l); /* "disabled" / "warn" / "strict" */

typedef struct na_policy {
	na_level level; /* effective level; NA_LEVEL_WARN when no file set one */
	bool level_set; /* some file named a level */
	/* allowed_commands: has_allowed means a constraint exists; after
	 * layering the intersection may be empty (then no name is allowed). */
	bool has_allowed;
	char **allowed;
	size_t n_allowed;
	bool ops_set;         /* some file named the allowed shell operators */
	unsigned allowed_ops; /* NA_SH_BIT set; none when no file says */
	char **blocked;       /* blocked_patterns (union) */
	size_t n_blocked;
	char **approval; /* require_approval globs (union) */
	size_t n_approval;
	unsigned n_files; /* files layered so far */
} na_policy;

/* An empty policy: level warn (not set), no lists, no shell operator
 * allowed. */
na_policy *na_policy_new(void);
void na_policy_free(na_policy *p);

/* Parses one policy file and layers it onto `p` (tightening only). The form
 * is recognised by its keys; a file mixing both forms, an unknown key, a
 * wrong type, an empty or oversized list entry is an error naming the file
 * and line ("policy.yml:7: unknown key \"alowed_commands\""). On error `p`
 * is unchanged. Returns 0, -EINVAL, -E2BIG, -ENOMEM or a read error. */
int na_policy_load_file(na_policy *p, const char *path, char *err, size_t errlen);
/* The same for bytes already in memory; `name` is used in messages. */
int na_policy_load_buffer(na_policy *p, const char *name, const char *data, size_t len, char *err,
                          size_t errlen);

/* The policy as JSON (for `check-command --explain`-style output and logs). */
cJSON *na_policy_to_json(const na_policy *p);

/* One exec as the agent read it. */
typedef struct na_cmd {
	const char *exe_base;    /* basename of the executed path, last component
	                          * not followed; NULL/"" -> argv[0]'s basename */
	const char *target_base; /* basename with symlinks followed (multi-call
	                          * detection); NULL -> same as exe_base */
	char *const *argv;
	size_t argc;
	bool truncated; /* the reader hit a CF_AGENT_* bound: argv incomplete */
} na_cmd;

/* Where the exec sits in its process tree (na_ancestry.h computes it). */
typedef struct na_cmd_context {
	bool first_exec;       /* the container's / tree's entrypoint: trusted */
	bool allowed_ancestor; /* an ancestor was admitted as an allowed command */
} na_cmd_context;

typedef enum na_verdict {
	NA_VERDICT_ALLOW = 0,
	NA_VERDICT_DENY = 1,
	NA_VERDICT_APPROVAL = 2, /* strict + require_approval: wait for an answer */
} na_verdict;

const char *na_verdict_name(na_verdict v); /* "allow" / "deny" / "approval-required" */

typedef struct na_finding {
	char rule[32];    /* "blocked_patterns", "allowed_shell_operators", ... */
	char detail[256]; /* human text, e.g. "matches \"rm -rf\"" */
} na_finding;

typedef struct na_decision {
	na_verdict verdict;
	na_level enforcement;   /* the policy's level */
	cf_log_level log_level; /* the event's level */
	/* Why: "disabled", "entrypoint", "allowed_commands", "ancestry",
	 * "unrestricted" (no allowlist), "unknown_command", "blocked_patterns",
	 * "allowed_shell_operators", "require_approval", "truncated". The
	 * rule of the first finding when there are findings. */
	char rule[32];
	char name[256];    /* the command's name as decided */
	bool name_allowed; /* name is in allowed_commands: admitted as an allowed
	                    * command, so its descendants are allowed-by-ancestry */
	size_t n_findings; /* kept; more are counted in findings_dropped */
	size_t findings_dropped;
	na_finding findings[CF_AGENT_MAX_FINDINGS];
} na_decision;

/* Decides one exec. Pure. 0, or -ENOMEM (the command line could not be
 * built; the caller answers the level's default: deny under strict). */
int na_cmdpolicy_decide(const na_policy *p, const na_cmd *cmd, const na_cmd_context *ctx,
                        na_decision *out);

/* The command's name (rules above) into out (truncated to outlen). */
void na_cmdpolicy_name(const na_cmd *cmd, char *out, size_t outlen);

/* argv joined by single spaces (the "command line" patterns and globs see).
 * Returns a malloc'd NUL-terminated string and its length, or NULL. */
char *na_cmdpolicy_cmdline(char *const *argv, size_t argc, size_t *len);

/* Glob match: `*` any run (incl. empty), `?` one byte, everything else
 * literal. Bounded: O(len(pattern) * len(text)) worst case. */
bool na_glob_match(const char *pattern, const char *text, size_t textlen);

/* {"decision","level","enforcement","rule","name","findings":[{rule,detail}]} */
cJSON *na_decision_to_json(const na_decision *d);

#endif
