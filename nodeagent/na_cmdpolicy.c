/* na_cmdpolicy.c - see na_cmdpolicy.h. */
#include "na_cmdpolicy.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_yaml.h"
#include "na_shell.h"

/* `safe_commands_only: true` (config/security.yml) allows these names:
 * everyday build, test and inspection tools. Destructive or networked
 * administration tools (rm, curl, wget, nc, ssh, chmod, dd, ...) are not
 * in it; a project that needs them uses the allowed_commands form. */
static const char *const safe_commands[] = {
    "[",     "awk",   "basename", "black",  "bundle", "c++",    "cargo",   "cat",     "cc",
    "clang", "cmake", "cp",       "cut",    "date",   "diff",   "dirname", "dotnet",  "echo",
    "egrep", "env",   "eslint",   "false",  "fgrep",  "find",   "g++",     "gcc",     "git",
    "go",    "gofmt", "gradle",   "grep",   "head",   "java",   "javac",   "jest",    "ls",
    "make",  "mkdir", "mv",       "mvn",    "mypy",   "node",   "npm",     "npx",     "pip",
    "pip3",  "pnpm",  "prettier", "printf", "pwd",    "pytest", "python",  "python3", "rake",
    "rspec", "ruby",  "ruff",     "rustc",  "sed",    "sleep",  "sort",    "tail",    "tee",
    "test",  "touch", "tr",       "true",   "tsc",    "uniq",   "uv",      "wc",      "which",
    "xargs", "yarn",
};

static const char *const multicall[] = {"busybox", "toybox"};

const char *na_level_name(na_level l)
{
	switch (l) {
	case NA_LEVEL_DISABLED:
		return "disabled";
	case NA_LEVEL_STRICT:
		return "strict";
	default:
		return "warn";
	}
}

const char *na_verdict_name(na_verdict v)
{
	switch (v) {
	case NA_VERDICT_DENY:
		return "deny";
	case NA_VERDICT_APPROVAL:
		return "approval-required";
	default:
		return "allow";
	}
}

/* ---- string lists ---- */

static void list_free(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static bool list_has(char *const *l, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i], s) == 0)
			return true;
	return false;
}

/* Appends a copy of s unless present. 0 or -ENOMEM. */
static int list_add(char ***l, size_t *n, const char *s)
{
	if (list_has(*l, *n, s))
		return 0;
	char *c = strdup(s);
	char **nl = c ? realloc(*l, (*n + 1) * sizeof *nl) : NULL;
	if (!nl) {
		free(c);
		return -ENOMEM;
	}
	nl[(*n)++] = c;
	*l = nl;
	return 0;
}

na_policy *na_policy_new(void)
{
	na_policy *p = calloc(1, sizeof *p);
	if (p)
		p->level = NA_LEVEL_WARN;
	return p;
}

void na_policy_free(na_policy *p)
{
	if (!p)
		return;
	list_free(p->allowed, p->n_allowed);
	list_free(p->blocked, p->n_blocked);
	list_free(p->approval, p->n_approval);
	free(p);
}

/* ---- loading ---- */

static void errf(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void errf(char *err, size_t errlen, const char *name, unsigned line, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "%s: line %u: %s", name, line, msg);
	else
		snprintf(err, errlen, "%s: %s", name, msg);
}

/* Reads a list of non-empty strings into a fresh array. `names` requires
 * each entry to be a command name (no '/', no blanks). */
static int read_list(const cf_yaml_docs *d, const cJSON *node, const char *key, bool names,
                     char ***out, size_t *n, const char *fname, char *err, size_t errlen)
{
	unsigned line = cf_yaml_line(d, node);
	if (!cJSON_IsArray(node)) {
		errf(err, errlen, fname, line, "%s must be a list of strings", key);
		return -EINVAL;
	}
	if ((size_t)cJSON_GetArraySize(node) > CF_AGENT_MAX_POLICY_ENTRIES) {
		errf(err, errlen, fname, line, "%s has more than %u entries", key,
		     CF_AGENT_MAX_POLICY_ENTRIES);
		return -E2BIG;
	}
	size_t idx = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, node)
	{
		unsigned il = cf_yaml_line(d, it);
		if (!il)
			il = line;
		if (!cJSON_IsString(it) || !it->valuestring[0]) {
			/* `true`, `false`, `null` and numbers are real command
			 * names that YAML reads as other types. */
			bool scalar = cJSON_IsBool(it) || cJSON_IsNumber(it) || cJSON_IsNull(it);
			errf(err, errlen, fname, il, "%s[%zu] must be a non-empty string%s", key,
			     idx,
			     scalar ? " (quote it: YAML reads true, false, null and numbers as "
			              "other types)"
			            : "");
			return -EINVAL;
		}
		if (names && strpbrk(it->valuestring, "/ \t\n")) {
			errf(err, errlen, fname, il,
			     "%s[%zu] \"%s\" must be a command name (a basename, no '/' or blanks)",
			     key, idx, it->valuestring);
			return -EINVAL;
		}
		if (list_add(out, n, it->valuestring) < 0)
			return -ENOMEM;
		idx++;
	}
	return 0;
}

static int read_ops(const cf_yaml_docs *d, const cJSON *node, unsigned *ops, const char *fname,
                    char *err, size_t errlen)
{
	unsigned line = cf_yaml_line(d, node);
	if (!cJSON_IsArray(node)) {
		errf(err, errlen, fname, line, "allowed_shell_operators must be a list of strings");
		return -EINVAL;
	}
	size_t idx = 0;
	const cJSON *it;
	*ops = 0;
	cJSON_ArrayForEach(it, node)
	{
		unsigned il = cf_yaml_line(d, it);
		na_shell_op op;
		if (!il)
			il = line;
		if (!cJSON_IsString(it) || na_shell_op_parse(it->valuestring, &op) < 0) {
			errf(err, errlen, fname, il,
			     "allowed_shell_operators[%zu] must be one of \"&&\", \"||\", \";\", "
			     "\"|\", \"&\", \">\", \"<\", \"$(\", \"`\", \"newline\"",
			     idx);
			return -EINVAL;
		}
		*ops |= NA_SH_BIT(op);
		idx++;
	}
	return 0;
}

static int read_bool(const cf_yaml_docs *d, const cJSON *node, const char *key, bool *out,
                     const char *fname, char *err, size_t errlen)
{
	if (!cJSON_IsBool(node)) {
		errf(err, errlen, fname, cf_yaml_line(d, node), "%s must be true or false", key);
		return -EINVAL;
	}
	*out = cJSON_IsTrue(node);
	return 0;
}

/* Parses one mapping into a fresh layer (a na_policy used as a record of
 * what the file said). */
static int parse_layer(const cf_yaml_docs *d, const cJSON *root, na_policy *l, const char *fname,
                       char *err, size_t errlen)
{
	const char *seed_key = NULL, *deploy_key = NULL;
	const cJSON *it;
	int rc;
	cJSON_ArrayForEach(it, root)
	{
		const char *k = it->string;
		unsigned line = cf_yaml_line(d, it);
		bool deploy = strcmp(k, "command_validation") == 0 ||
		              strcmp(k, "allow_shell_operators") == 0 ||
		              strcmp(k, "safe_commands_only") == 0;
		bool seedk =
		    strcmp(k, "enforcement_level") == 0 || strcmp(k, "allowed_commands") == 0 ||
		    strcmp(k, "allowed_shell_operators") == 0 ||
		    strcmp(k, "blocked_patterns") == 0 || strcmp(k, "require_approval") == 0;
		if (deploy && !deploy_key)
			deploy_key = k;
		if (seedk && !seed_key)
			seed_key = k;
		if (seed_key && deploy_key) {
			errf(err, errlen, fname, line,
			     "mixes the security-policy.yml form (%s) with the security.yml form "
			     "(%s); use one form per file",
			     seed_key, deploy_key);
			return -EINVAL;
		}
		if (strcmp(k, "enforcement_level") == 0 || strcmp(k, "command_validation") == 0) {
			bool seed = k[0] == 'e';
			const char *v = cJSON_IsString(it) ? it->valuestring : NULL;
			if (v && strcmp(v, "warn") == 0)
				l->level = NA_LEVEL_WARN;
			else if (v && strcmp(v, "disabled") == 0)
				l->level = NA_LEVEL_DISABLED;
			else if (v && strcmp(v, seed ? "strict" : "enforce") == 0)
				l->level = NA_LEVEL_STRICT;
			else {
				errf(err, errlen, fname, line, "%s must be one of %s", k,
				     seed ? "warn, strict, disabled" : "warn, enforce, disabled");
				return -EINVAL;
			}
			l->level_set = true;
		} else if (strcmp(k, "allowed_commands") == 0) {
			char **tmp = NULL;
			size_t n = 0;
			rc = read_list(d, it, k, true, &tmp, &n, fname, err, errlen);
			if (rc < 0) {
				list_free(tmp, n);
				return rc;
			}
			/* An empty list means "no allowlist" (DESIGN.md: the
			 * check applies when the list is non-empty). */
			l->allowed = tmp;
			l->n_allowed = n;
			l->has_allowed = n > 0;
		} else if (strcmp(k, "allowed_shell_operators") == 0) {
			rc = read_ops(d, it, &l->allowed_ops, fname, err, errlen);
			if (rc < 0)
				return rc;
			l->ops_set = true;
		} else if (strcmp(k, "blocked_patterns") == 0) {
			rc = read_list(d, it, k, false, &l->blocked, &l->n_blocked, fname, err,
			               errlen);
			if (rc < 0)
				return rc;
		} else if (strcmp(k, "require_approval") == 0) {
			rc = read_list(d, it, k, false, &l->approval, &l->n_approval, fname, err,
			               errlen);
			if (rc < 0)
				return rc;
		} else if (strcmp(k, "allow_shell_operators") == 0) {
			bool b;
			rc = read_bool(d, it, k, &b, fname, err, errlen);
			if (rc < 0)
				return rc;
			l->ops_set = true;
			l->allowed_ops = b ? NA_SH_ALL_OPS : 0;
		} else if (strcmp(k, "safe_commands_only") == 0) {
			bool b;
			rc = read_bool(d, it, k, &b, fname, err, errlen);
			if (rc < 0)
				return rc;
			if (b) {
				for (size_t i = 0; i < sizeof safe_commands / sizeof *safe_commands;
				     i++)
					if (list_add(&l->allowed, &l->n_allowed, safe_commands[i]) <
					    0)
						return -ENOMEM;
				l->has_allowed = true;
			}
		} else {
			errf(err, errlen, fname, line,
			     "unknown key \"%s\" (a command policy has enforcement_level, "
			     "allowed_commands, allowed_shell_operators, blocked_patterns, "
			     "require_approval; or command_validation, allow_shell_operators, "
			     "safe_commands_only)",
			     k);
			return -EINVAL;
		}
	}
	return 0;
}

/* Layers `l` onto `p`: level max, allowlists intersected, operator sets
 * intersected, blocked patterns and approval globs unioned. Builds the
 * result aside so that `p` is unchanged on -ENOMEM. */
static int layer(na_policy *p, const na_policy *l)
{
	char **allowed = NULL, **blocked = NULL, **approval = NULL;
	size_t na = 0, nb = 0, nap = 0;
	const char *const *src_allowed = (const char *const *)p->allowed;
	size_t n_src_allowed = p->n_allowed;
	bool has_allowed = p->has_allowed;

	if (l->has_allowed) {
		if (!p->has_allowed) {
			src_allowed = (const char *const *)l->allowed;
			n_src_allowed = l->n_allowed;
		}
		has_allowed = true;
	}
	for (size_t i = 0; i < n_src_allowed; i++) {
		bool keep = !l->has_allowed || !p->has_allowed ||
		            list_has(l->allowed, l->n_allowed, src_allowed[i]);
		if (keep && list_add(&allowed, &na, src_allowed[i]) < 0)
			goto fail;
	}
	for (size_t i = 0; i < p->n_blocked; i++)
		if (list_add(&blocked, &nb, p->blocked[i]) < 0)
			goto fail;
	for (size_t i = 0; i < l->n_blocked; i++)
		if (list_add(&blocked, &nb, l->blocked[i]) < 0)
			goto fail;
	for (size_t i = 0; i < p->n_approval; i++)
		if (list_add(&approval, &nap, p->approval[i]) < 0)
			goto fail;
	for (size_t i = 0; i < l->n_approval; i++)
		if (list_add(&approval, &nap, l->approval[i]) < 0)
			goto fail;

	list_free(p->allowed, p->n_allowed);
	list_free(p->blocked, p->n_blocked);
	list_free(p->approval, p->n_approval);
	p->allowed = allowed;
	p->n_allowed = na;
	p->has_allowed = has_allowed;
	p->blocked = blocked;
	p->n_blocked = nb;
	p->approval = approval;
	p->n_approval = nap;
	if (l->level_set) {
		if (!p->level_set || l->level > p->level)
			p->level = l->level;
		p->level_set = true;
	}
	if (l->ops_set) {
		p->allowed_ops = p->ops_set ? (p->allowed_ops & l->allowed_ops) : l->allowed_ops;
		p->ops_set = true;
	}
	p->n_files++;
	return 0;
fail:
	list_free(allowed, na);
	list_free(blocked, nb);
	list_free(approval, nap);
	return -ENOMEM;
}

int na_policy_load_buffer(na_policy *p, const char *name, const char *data, size_t len, char *err,
                          size_t errlen)
{
	cf_yaml_docs d = {0};
	na_policy l = {0};
	char yerr[512];
	int rc = cf_yaml_parse(data, len, &d, yerr, sizeof yerr);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", name, yerr);
		goto fail;
	}
	int ndocs = cJSON_GetArraySize(d.docs);
	if (ndocs > 1) {
		errf(err, errlen, name, cf_yaml_line(&d, cJSON_GetArrayItem(d.docs, 1)),
		     "a command policy is one YAML document, found %d", ndocs);
		rc = -EINVAL;
		goto fail;
	}
	if (ndocs == 1) {
		cJSON *root = cJSON_GetArrayItem(d.docs, 0);
		if (!cJSON_IsObject(root)) {
			errf(err, errlen, name, cf_yaml_line(&d, root),
			     "a command policy must be a mapping");
			rc = -EINVAL;
			goto fail;
		}
		rc = parse_layer(&d, root, &l, name, err, errlen);
		if (rc < 0)
			goto fail;
	}
	rc = layer(p, &l);
	if (rc < 0)
		snprintf(err, errlen, "%s: out of memory", name);
fail:
	list_free(l.allowed, l.n_allowed);
	list_free(l.blocked, l.n_blocked);
	list_free(l.approval, l.n_approval);
	cf_yaml_docs_free(&d);
	return rc;
}

int na_policy_load_file(na_policy *p, const char *path, char *err, size_t errlen)
{
	cf_buf b;
	int rc = cf_read_file(path, CF_MAX_INPUT_FILE_BYTES, &b, err, errlen);
	if (rc < 0)
		return rc;
	rc = na_policy_load_buffer(p, path, b.data ? b.data : "", b.len, err, errlen);
	cf_buf_free(&b);
	return rc;
}

static cJSON *string_array(char *const *l, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(l[i]));
	return a;
}

cJSON *na_policy_to_json(const na_policy *p)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "enforcement_level", na_level_name(p->level));
	if (p->has_allowed)
		cJSON_AddItemToObject(o, "allowed_commands",
		                      string_array(p->allowed, p->n_allowed));
	cJSON *ops = cJSON_AddArrayToObject(o, "allowed_shell_operators");
	for (unsigned k = 0; ops && k < NA_SH_OP_COUNT; k++)
		if (p->allowed_ops & NA_SH_BIT(k))
			cJSON_AddItemToArray(ops, cJSON_CreateString(na_shell_op_text(k)));
	cJSON_AddItemToObject(o, "blocked_patterns", string_array(p->blocked, p->n_blocked));
	cJSON_AddItemToObject(o, "require_approval", string_array(p->approval, p->n_approval));
	return o;
}

/* ---- deciding ---- */

static const char *base_of(const char *path)
{
	if (!path)
		return "";
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static bool is_multicall(const char *name)
{
	for (size_t i = 0; i < sizeof multicall / sizeof *multicall; i++)
		if (strcmp(name, multicall[i]) == 0)
			return true;
	return false;
}

static void copy_name(char *out, size_t outlen, const char *s)
{
	snprintf(out, outlen, "%s", s ? s : "");
}

void na_cmdpolicy_name(const na_cmd *cmd, char *out, size_t outlen)
{
	const char *a0 = cmd->argc > 0 && cmd->argv[0] ? base_of(cmd->argv[0]) : "";
	const char *base = cmd->exe_base;
	if (!base || !base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
		base = cmd->target_base && cmd->target_base[0] ? cmd->target_base : a0;
	const char *tgt = cmd->target_base && cmd->target_base[0] ? cmd->target_base : base;
	if (!is_multicall(tgt) && !is_multicall(base)) {
		copy_name(out, outlen, base);
		return;
	}
	/* A multi-call binary runs the applet named by argv[0] (a login
	 * shell's leading '-' stripped); `busybox APPLET` by argv[1]. */
	if (a0[0] == '-' && a0[1])
		a0++;
	if (is_multicall(a0) && cmd->argc > 1 && cmd->argv[1] && cmd->argv[1][0] != '-') {
		copy_name(out, outlen, base_of(cmd->argv[1]));
		return;
	}
	copy_name(out, outlen, a0[0] ? a0 : tgt);
}

char *na_cmdpolicy_cmdline(char *const *argv, size_t argc, size_t *len)
{
	size_t total = 0;
	for (size_t i = 0; i < argc; i++)
		total += strlen(argv[i] ? argv[i] : "") + 1;
	char *s = malloc(total ? total : 1);
	if (!s)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < argc; i++) {
		const char *a = argv[i] ? argv[i] : "";
		size_t n = strlen(a);
		if (i)
			s[o++] = ' ';
		memcpy(s + o, a, n);
		o += n;
	}
	s[o] = '\0';
	if (len)
		*len = o;
	return s;
}

bool na_glob_match(const char *pattern, const char *text, size_t textlen)
{
	/* Iterative matcher with one backtrack point (the last '*'): linear
	 * in the common case and O(len(pattern) * len(text)) at worst. */
	const char *p = pattern, *star = NULL;
	size_t t = 0, star_t = 0;
	while (t < textlen) {
		if (*p == '*') {
			star = p++;
			star_t = t;
		} else if (*p && (*p == '?' || *p == text[t])) {
			p++;
			t++;
		} else if (star) {
			p = star + 1;
			t = ++star_t;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

static void add_finding(na_decision *d, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_finding(na_decision *d, const char *rule, const char *fmt, ...)
{
	if (d->n_findings >= CF_AGENT_MAX_FINDINGS) {
		d->findings_dropped++;
		return;
	}
	na_finding *f = &d->findings[d->n_findings++];
	snprintf(f->rule, sizeof f->rule, "%s", rule);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->detail, sizeof f->detail, fmt, ap);
	va_end(ap);
}

/* A pattern quoted for a finding, shortened so the detail stays readable. */
static const char *shorten(const char *s, char *buf, size_t buflen)
{
	size_t n = strlen(s);
	if (n < buflen)
		return s;
	snprintf(buf, buflen, "%.*s...", (int)(buflen - 4), s);
	return buf;
}

static bool memmem_has(const char *hay, size_t haylen, const char *needle)
{
	size_t n = strlen(needle);
	return n <= haylen && memmem(hay, haylen, needle, n) != NULL;
}

int na_cmdpolicy_decide(const na_policy *p, const na_cmd *cmd, const na_cmd_context *ctx,
                        na_decision *out)
{
	char sbuf[160];
	memset(out, 0, sizeof *out);
	out->enforcement = p->level;
	na_cmdpolicy_name(cmd, out->name, sizeof out->name);
	if (p->level == NA_LEVEL_DISABLED) {
		out->verdict = NA_VERDICT_ALLOW;
		out->log_level = CF_LOG_DEBUG;
		copy_name(out->rule, sizeof out->rule, "disabled");
		return 0;
	}

	out->name_allowed = p->has_allowed && list_has(p->allowed, p->n_allowed, out->name);
	size_t cl_len = 0;
	char *cl = na_cmdpolicy_cmdline(cmd->argv, cmd->argc, &cl_len);
	if (!cl) {
		/* The caller answers the level's default; say so in the rule. */
		out->verdict = p->level == NA_LEVEL_STRICT ? NA_VERDICT_DENY : NA_VERDICT_ALLOW;
		out->log_level = CF_LOG_ERROR;
		copy_name(out->rule, sizeof out->rule, "error");
		return -ENOMEM;
	}

	if (cmd->truncated)
		add_finding(out, "truncated",
		            "argv is larger than the agent reads (%u args, %u bytes): not fully "
		            "checked",
		            CF_AGENT_MAX_ARGC, CF_AGENT_MAX_ARGV_BYTES);

	for (size_t i = 0; i < p->n_blocked; i++)
		if (memmem_has(cl, cl_len, p->blocked[i]))
			add_finding(
			    out, "blocked_patterns", "matches blocked pattern \"%s\"",
			    shorten(p->blocked[i], sbuf,
			            sizeof sbuf)); /* A shell under another name through a symlink
			                            * (`ln -s /bin/sh x`) is still a shell: its
			                            * target's name counts too. */
	if (na_shell_is_shell(out->name) ||
	    (cmd->target_base && na_shell_is_shell(cmd->target_base))) {
		const char *script = na_shell_script_arg(cmd->argv, cmd->argc);
		if (script) {
			na_shell_result r;
			na_shell_scan(script, strlen(script), &r);
			for (unsigned k = 0; k < NA_SH_OP_COUNT; k++)
				if ((r.ops & NA_SH_BIT(k)) && !(p->allowed_ops & NA_SH_BIT(k)))
					add_finding(out, "allowed_shell_operators",
					            "shell operator \"%s\" (at offset %zu of the "
					            "-c script) is not allowed",
					            na_shell_op_text(k), r.first[k]);
			for (unsigned b = 1; b < (1u << NA_SH_P_COUNT); b <<= 1)
				if (r.problems & b)
					add_finding(out, "allowed_shell_operators",
					            "cannot read the -c script: %s (at offset %zu)",
					            na_shell_problem_text(b), r.problem_offset);
		}
	}

	const char *allow_rule = "unknown_command";
	if (p->has_allowed && !out->name_allowed) {
		if (ctx && ctx->first_exec)
			allow_rule = "entrypoint";
		else if (ctx && ctx->allowed_ancestor)
			allow_rule = "ancestry";
		else
			add_finding(out, "allowed_commands",
			            "\"%s\" is not an allowed command and has no allowed ancestor",
			            shorten(out->name, sbuf, sizeof sbuf));
	} else if (out->name_allowed) {
		allow_rule = "allowed_commands";
	} else if (ctx && ctx->first_exec) {
		allow_rule = "entrypoint";
	}

	const char *approval = NULL;
	for (size_t i = 0; i < p->n_approval && !approval; i++)
		if (na_glob_match(p->approval[i], cl, cl_len))
			approval = p->approval[i];

	size_t n_problems = out->n_findings + out->findings_dropped;
	if (approval)
		add_finding(out, "require_approval", "matches approval glob \"%s\"",
		            shorten(approval, sbuf, sizeof sbuf));

	if (n_problems) {
		out->verdict = p->level == NA_LEVEL_STRICT ? NA_VERDICT_DENY : NA_VERDICT_ALLOW;
		out->log_level = CF_LOG_WARNING;
		copy_name(out->rule, sizeof out->rule, out->findings[0].rule);
	} else if (approval) {
		out->verdict = p->level == NA_LEVEL_STRICT ? NA_VERDICT_APPROVAL : NA_VERDICT_ALLOW;
		out->log_level = CF_LOG_WARNING;
		copy_name(out->rule, sizeof out->rule, "require_approval");
	} else {
		out->verdict = NA_VERDICT_ALLOW;
		copy_name(out->rule, sizeof out->rule, allow_rule);
		/* Known-good names and their descendants are routine (DEBUG);
		 * a command nothing vouches for, or a tree's entrypoint, is
		 * worth a line at the default level (INFO). */
		bool routine = strcmp(allow_rule, "allowed_commands") == 0 ||
		               strcmp(allow_rule, "ancestry") == 0;
		out->log_level = routine ? CF_LOG_DEBUG : CF_LOG_INFO;
	}
	free(cl);
	return 0;
}

cJSON *na_decision_to_json(const na_decision *d)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "decision", na_verdict_name(d->verdict));
	cJSON_AddStringToObject(o, "level", cf_log_level_name(d->log_level));
	cJSON_AddStringToObject(o, "enforcement", na_level_name(d->enforcement));
	cJSON_AddStringToObject(o, "rule", d->rule);
	cJSON_AddStringToObject(o, "name", d->name);
	cJSON *fa = cJSON_AddArrayToObject(o, "findings");
	for (size_t i = 0; fa && i < d->n_findings; i++) {
		cJSON *f = cJSON_CreateObject();
		if (!f)
			break;
		cJSON_AddStringToObject(f, "rule", d->findings[i].rule);
		cJSON_AddStringToObject(f, "detail", d->findings[i].detail);
		cJSON_AddItemToArray(fa, f);
	}
	if (d->findings_dropped)
		cJSON_AddNumberToObject(o, "findings_dropped", (double)d->findings_dropped);
	return o;
}
