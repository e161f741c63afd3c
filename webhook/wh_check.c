/*
 * wh_check.c - `codeframe-webhook check`: the admission rules, offline.
 *
 * Reads every PATH first (YAML streams or JSON; "-" is standard input),
 * then builds the NetworkPolicy set from the NetworkPolicy objects among
 * them, then evaluates each workload object, so the answer does not depend
 * on the order of the files (`check app.yaml netpol.yaml` answers as the
 * cluster would once both are applied). Any input that cannot be read or
 * parsed stops the run before evaluation: a partial policy set would give
 * wrong networkPolicy answers.
 *
 * Exit status: 0 every workload object passes, 1 at least one violation,
 * 2 usage error, bad config, or unreadable/unparseable input.
 * Thread-safety: single-threaded, called once from main.
 * Ownership: everything allocated here is freed before returning.
 */
#include "wh_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "cf_yaml.h"
#include "wh_config.h"
#include "wh_netpol.h"
#include "wh_policy.h"

#define EXIT_PASS       0
#define EXIT_VIOLATIONS 1
#define EXIT_ERROR      2

typedef enum out_format {
	OUT_TEXT,
	OUT_JSON,
} out_format;

typedef struct input {
	const char *path;    /* as given on the command line */
	const char *display; /* what messages call it */
	cf_yaml_docs docs;
	bool parsed;
} input;

typedef struct object_ref {
	const cJSON *obj;
	size_t input;
} object_ref;

typedef struct run {
	out_format format;
	wh_profile profile;
	wh_config *cfg;
	input *inputs;
	size_t n_inputs;
	object_ref *objects;
	size_t n_objects, cap_objects;
	wh_netpol_set *netpols;
	cJSON *json_results;
	/* Counters for the summary. */
	size_t passed, failed, skipped, errors, violations, warnings;
} run;

static void usage(FILE *f)
{
	fputs("usage: codeframe-webhook check [--profile baseline|restricted|worker] [--config "
	      "FILE]\n"
	      "                               [-o text|json] PATH...\n"
	      "  PATH     a YAML (multi-document) or JSON manifest file, or - for standard input\n"
	      "  --profile NAME   policy profile (default: the config's, else worker)\n"
	      "  --config FILE    webhook config file (docs/config.md)\n"
	      "  -o, --output FMT text (default): one line per violation; json: one result per "
	      "object\n"
	      "NetworkPolicy objects among the inputs are the policy set for the networkPolicy\n"
	      "check (each counts only in its own namespace; no namespace means default).\n"
	      "exit status: 0 all pass, 1 violations found, 2 usage or input error\n",
	      f);
}

/* Writes `s` with control characters replaced by '?': names and messages
 * come from untrusted files, and a newline or an escape sequence in a pod
 * name must not forge output lines or drive the terminal of a CI log. */
static void put_clean(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		fputc(ch < 0x20 || ch == 0x7f ? '?' : ch, f);
	}
}

__attribute__((format(printf, 1, 2))) static void error_msg(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fputs("codeframe-webhook check: ", stderr);
	put_clean(stderr, msg);
	fputc('\n', stderr);
}

/* ---- arguments ---- */

typedef struct options {
	const char *profile;
	const char *config;
	const char *output;
	char **paths;
	size_t n_paths;
} options;

/* Matches "--name VALUE", "--name=VALUE" and, for a short name, "-oVALUE".
 * Returns 1 when matched (value set, *i advanced), 0 when not this option,
 * -1 when the value is missing. */
static int take_value(int argc, char **argv, int *i, const char *lng, const char *shrt,
                      const char **value)
{
	const char *a = argv[*i];
	size_t n = strlen(lng);
	if (strcmp(a, lng) == 0 || (shrt && strcmp(a, shrt) == 0)) {
		if (*i + 1 >= argc)
			return -1;
		*value = argv[++*i];
		return 1;
	}
	if (strncmp(a, lng, n) == 0 && a[n] == '=') {
		*value = a + n + 1;
		return 1;
	}
	if (shrt && strncmp(a, shrt, 2) == 0 && a[2]) {
		*value = a + 2;
		return 1;
	}
	return 0;
}

/* 0 ok, 1 help printed, -1 usage error (reported). */
static int parse_args(int argc, char **argv, options *o)
{
	const struct {
		const char *lng, *shrt;
		const char **slot;
	} opts[] = {
	    {"--profile", NULL, &o->profile},
	    {"--config", NULL, &o->config},
	    {"--output", "-o", &o->output},
	};
	bool only_paths = false;
	o->paths = calloc((size_t)argc, sizeof *o->paths);
	if (!o->paths) {
		error_msg("out of memory");
		return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_paths || a[0] != '-' || strcmp(a, "-") == 0) {
			o->paths[o->n_paths++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_paths = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 1;
		}
		int matched = 0;
		for (size_t k = 0; k < sizeof opts / sizeof opts[0] && !matched; k++) {
			matched =
			    take_value(argc, argv, &i, opts[k].lng, opts[k].shrt, opts[k].slot);
			if (matched < 0) {
				error_msg("%s needs a value", a);
				return -1;
			}
		}
		if (!matched) {
			error_msg("unknown option \"%s\"", a);
			return -1;
		}
	}
	if (o->n_paths == 0) {
		error_msg("no PATH given (use - for standard input)");
		return -1;
	}
	size_t stdin_uses = 0;
	for (size_t i = 0; i < o->n_paths; i++)
		stdin_uses += strcmp(o->paths[i], "-") == 0;
	if (stdin_uses > 1) {
		error_msg("standard input (-) can be given only once");
		return -1;
	}
	return 0;
}

/* ---- reading and collecting objects ---- */

static const char *str_member(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(it) ? it->valuestring : NULL;
}

static const char *object_kind(const cJSON *obj)
{
	return str_member(obj, "kind");
}

static const char *object_name(const cJSON *obj)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *name = str_member(meta, "name");
	if (name && *name)
		return name;
	const char *gen = str_member(meta, "generateName");
	return gen && *gen ? gen : "(unnamed)";
}

static const char *object_namespace(const cJSON *obj)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const char *ns = str_member(meta, "namespace");
	return ns && *ns ? ns : "default";
}

/* `check` speaks of YAML sequences (its input is manifests). */
static const char *type_name(const cJSON *n)
{
	return cf_yaml_type_name(n, "a sequence");
}

static void input_error(const run *r, size_t in, const cJSON *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void input_error(const run *r, size_t in, const cJSON *node, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	unsigned line = cf_yaml_line(&r->inputs[in].docs, node);
	if (line)
		error_msg("%s: line %u: %s", r->inputs[in].display, line, msg);
	else
		error_msg("%s: %s", r->inputs[in].display, msg);
}

static int add_object(run *r, const cJSON *obj, size_t in)
{
	if (r->n_objects == r->cap_objects) {
		object_ref *v = cf_grow(r->objects, &r->cap_objects, r->n_objects + 1, sizeof *v);
		if (!v)
			return -ENOMEM;
		r->objects = v;
	}
	r->objects[r->n_objects++] = (object_ref){obj, in};
	return 0;
}

static bool is_list_kind(const char *kind)
{
	size_t n = strlen(kind);
	return n >= 4 && strcmp(kind + n - 4, "List") == 0;
}

/* Returns 0, or -EINVAL after reporting the problem. */
static int collect(run *r, const cJSON *obj, size_t in, unsigned depth)
{
	if (!cJSON_IsObject(obj)) {
		input_error(r, in, obj, "%s is %s, not a Kubernetes object (a mapping with kind)",
		            depth ? "list item" : "document", type_name(obj));
		return -EINVAL;
	}
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	if (!kind) {
		input_error(r, in, obj, "not a Kubernetes object: no \"kind\"");
		return -EINVAL;
	}
	if (!cJSON_IsString(kind) || !kind->valuestring[0]) {
		input_error(r, in, kind, "\"kind\" must be a non-empty string, not %s",
		            cJSON_IsString(kind) ? "empty" : type_name(kind));
		return -EINVAL;
	}
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(obj, "items");
	if (!is_list_kind(kind->valuestring))
		return add_object(r, obj, in) ? -ENOMEM : 0;
	if (depth >= CF_CHECK_MAX_LIST_DEPTH) {
		input_error(r, in, obj, "lists nested deeper than %d levels",
		            CF_CHECK_MAX_LIST_DEPTH);
		return -EINVAL;
	}
	if (!items || cJSON_IsNull(items))
		return 0;
	if (!cJSON_IsArray(items)) {
		input_error(r, in, items, "%s \"items\" must be a sequence, not %s",
		            kind->valuestring, type_name(items));
		return -EINVAL;
	}
	const cJSON *it;
	int rc = 0;
	cJSON_ArrayForEach(it, items)
	{
		int one = collect(r, it, in, depth + 1);
		if (one == -ENOMEM)
			return one;
		if (one)
			rc = one;
	}
	return rc;
}

/* Reads and parses every input; reports each failure. */
static int read_inputs(run *r, const options *o)
{
	int status = 0;
	r->inputs = calloc(o->n_paths, sizeof *r->inputs);
	if (!r->inputs) {
		error_msg("out of memory");
		return -ENOMEM;
	}
	r->n_inputs = o->n_paths;
	for (size_t i = 0; i < o->n_paths; i++) {
		input *in = &r->inputs[i];
		in->path = o->paths[i];
		in->display = strcmp(in->path, "-") == 0 ? "<stdin>" : in->path;
		char err[512] = "";
		cf_buf b;
		int rc = cf_read_file(in->path, CF_MAX_INPUT_FILE_BYTES, &b, err, sizeof err);
		if (rc) {
			/* cf_read_file names the path; stdin is "-" there. */
			error_msg("%s", err);
			status = -EINVAL;
			continue;
		}
		rc = cf_yaml_parse(b.data, b.len, &in->docs, err, sizeof err);
		cf_buf_free(&b);
		if (rc) {
			error_msg("%s: %s", in->display, err);
			status = -EINVAL;
			continue;
		}
		in->parsed = true;
		if (cJSON_GetArraySize(in->docs.docs) == 0) {
			error_msg("%s: no Kubernetes objects (the input is empty)", in->display);
			status = -EINVAL;
			continue;
		}
		const cJSON *doc;
		cJSON_ArrayForEach(doc, in->docs.docs)
		{
			rc = collect(r, doc, i, 0);
			if (rc == -ENOMEM) {
				error_msg("out of memory");
				return rc;
			}
			if (rc)
				status = rc;
		}
	}
	return status;
}

static int build_netpols(run *r)
{
	int status = 0;
	r->netpols = wh_netpol_set_new();
	if (!r->netpols) {
		error_msg("out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < r->n_objects; i++) {
		const cJSON *obj = r->objects[i].obj;
		if (strcmp(object_kind(obj), "NetworkPolicy") != 0)
			continue;
		char err[512] = "";
		if (wh_netpol_set_add(r->netpols, obj, err, sizeof err) != 0) {
			input_error(r, r->objects[i].input, obj, "NetworkPolicy/%s: %s",
			            object_name(obj), err[0] ? err : "malformed NetworkPolicy");
			status = -EINVAL;
		}
	}
	return status;
}

/* ---- evaluation and output ---- */

static bool ends_with_check_id(const char *msg, const char *check)
{
	size_t m = strlen(msg), c = strlen(check);
	return m >= c + 2 && msg[m - 1] == ']' && msg[m - c - 2] == '[' &&
	       strncmp(msg + m - c - 1, check, c) == 0;
}

static void print_prefix(const run *r, const object_ref *ref)
{
	put_clean(stdout, r->inputs[ref->input].display);
	fputs(": ", stdout);
	put_clean(stdout, object_kind(ref->obj));
	fputc('/', stdout);
	put_clean(stdout, object_name(ref->obj));
	fputs(": ", stdout);
}

static void print_text(const run *r, const object_ref *ref, const wh_result *res)
{
	for (size_t i = 0; i < res->n_violations; i++) {
		const wh_violation *v = &res->violations[i];
		const char *msg = v->message ? v->message : "";
		const char *check = v->check ? v->check : "unknown";
		print_prefix(r, ref);
		put_clean(stdout, msg);
		if (!ends_with_check_id(msg, check)) {
			fputs(" [", stdout);
			put_clean(stdout, check);
			fputc(']', stdout);
		}
		fputc('\n', stdout);
	}
	for (size_t i = 0; i < res->n_warnings; i++) {
		print_prefix(r, ref);
		fputs("warning: ", stdout);
		put_clean(stdout, res->warnings[i]);
		fputc('\n', stdout);
	}
}

static cJSON *json_result(const run *r, const object_ref *ref, const char *status)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "file", r->inputs[ref->input].display);
	cJSON_AddNumberToObject(o, "line", cf_yaml_line(&r->inputs[ref->input].docs, ref->obj));
	cJSON_AddStringToObject(o, "kind", object_kind(ref->obj));
	cJSON_AddStringToObject(o, "name", object_name(ref->obj));
	cJSON_AddStringToObject(o, "namespace", object_namespace(ref->obj));
	cJSON_AddStringToObject(o, "status", status);
	cJSON_AddItemToArray(r->json_results, o);
	return o;
}

static void add_json_findings(cJSON *o, const wh_result *res)
{
	cJSON *vs = cJSON_AddArrayToObject(o, "violations");
	for (size_t i = 0; vs && i < res->n_violations; i++) {
		const wh_violation *v = &res->violations[i];
		cJSON *j = cJSON_CreateObject();
		if (!j)
			break;
		cJSON_AddStringToObject(j, "check", v->check ? v->check : "");
		cJSON_AddStringToObject(j, "path", v->path ? v->path : "");
		if (v->container)
			cJSON_AddStringToObject(j, "container", v->container);
		else
			cJSON_AddNullToObject(j, "container");
		cJSON_AddStringToObject(j, "message", v->message ? v->message : "");
		cJSON_AddItemToArray(vs, j);
	}
	cJSON *ws = cJSON_AddArrayToObject(o, "warnings");
	for (size_t i = 0; ws && i < res->n_warnings; i++)
		cJSON_AddItemToArray(ws, cJSON_CreateString(res->warnings[i]));
}

static void skip(run *r, const object_ref *ref, const char *reason)
{
	r->skipped++;
	if (r->format != OUT_JSON)
		return;
	cJSON *o = json_result(r, ref, "skipped");
	if (o)
		cJSON_AddStringToObject(o, "reason", reason);
}

static void evaluate_one(run *r, const object_ref *ref)
{
	const char *kind = object_kind(ref->obj);
	if (strcmp(kind, "NetworkPolicy") == 0) {
		skip(r, ref, "NetworkPolicy: part of the policy set for the networkPolicy check");
		return;
	}
	if (!wh_policy_is_workload_kind(kind)) {
		skip(r, ref, "not a workload kind (no pod template)");
		return;
	}
	const cJSON *meta = NULL;
	const char *path = NULL;
	const cJSON *spec = wh_policy_find_pod_spec(ref->obj, &meta, &path);
	if (spec) {
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
		if (!wh_config_selects(r->cfg, object_namespace(ref->obj), labels)) {
			skip(r, ref, "not a worker: outside the config's workers/exemptions");
			return;
		}
	}
	wh_result res;
	wh_result_init(&res);
	char err[512] = "";
	int rc = wh_policy_evaluate(&r->cfg->policy, r->profile, ref->obj, NULL, r->netpols, &res,
	                            err, sizeof err);
	if (rc) {
		r->errors++;
		input_error(r, ref->input, ref->obj, "%s/%s: %s", kind, object_name(ref->obj),
		            rc == -ENOMEM ? "out of memory"
		            : err[0]      ? err
		                          : "cannot be evaluated");
		if (r->format == OUT_JSON) {
			cJSON *o = json_result(r, ref, "error");
			if (o)
				cJSON_AddStringToObject(o, "error", err);
		}
		wh_result_free(&res);
		return;
	}
	if (res.n_violations)
		r->failed++;
	else
		r->passed++;
	r->violations += res.n_violations;
	r->warnings += res.n_warnings;
	if (r->format == OUT_JSON) {
		cJSON *o = json_result(r, ref, res.n_violations ? "fail" : "pass");
		if (o)
			add_json_findings(o, &res);
	} else {
		print_text(r, ref, &res);
	}
	wh_result_free(&res);
}

static void print_summary(const run *r)
{
	char errors[64] = "";
	if (r->errors)
		snprintf(errors, sizeof errors, ", %zu not evaluable", r->errors);
	fprintf(stderr,
	        "check: %zu object%s in %zu input%s (profile %s): %zu passed, %zu failed, "
	        "%zu skipped%s; %zu violation%s, %zu warning%s\n",
	        r->n_objects, r->n_objects == 1 ? "" : "s", r->n_inputs,
	        r->n_inputs == 1 ? "" : "s", wh_profile_name(r->profile), r->passed, r->failed,
	        r->skipped, errors, r->violations, r->violations == 1 ? "" : "s", r->warnings,
	        r->warnings == 1 ? "" : "s");
}

static int print_json(const run *r)
{
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return -ENOMEM;
	cJSON_AddStringToObject(root, "profile", wh_profile_name(r->profile));
	cJSON_AddItemReferenceToObject(root, "results", r->json_results);
	cJSON *sum = cJSON_AddObjectToObject(root, "summary");
	if (sum) {
		cJSON_AddNumberToObject(sum, "objects", (double)r->n_objects);
		cJSON_AddNumberToObject(sum, "passed", (double)r->passed);
		cJSON_AddNumberToObject(sum, "failed", (double)r->failed);
		cJSON_AddNumberToObject(sum, "skipped", (double)r->skipped);
		cJSON_AddNumberToObject(sum, "errors", (double)r->errors);
		cJSON_AddNumberToObject(sum, "violations", (double)r->violations);
		cJSON_AddNumberToObject(sum, "warnings", (double)r->warnings);
	}
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text)
		return -ENOMEM;
	puts(text);
	free(text);
	return 0;
}

static void run_free(run *r)
{
	for (size_t i = 0; i < r->n_inputs; i++)
		if (r->inputs[i].parsed)
			cf_yaml_docs_free(&r->inputs[i].docs);
	free(r->inputs);
	free(r->objects);
	wh_netpol_set_unref(r->netpols);
	wh_config_unref(r->cfg);
	cJSON_Delete(r->json_results);
}

static int setup(run *r, const options *o)
{
	if (o->output) {
		if (strcmp(o->output, "text") == 0) {
			r->format = OUT_TEXT;
		} else if (strcmp(o->output, "json") == 0) {
			r->format = OUT_JSON;
		} else {
			error_msg("unknown output format \"%s\" (text, json)", o->output);
			return -EINVAL;
		}
	}
	char err[512] = "";
	r->cfg = o->config ? wh_config_load(o->config, err, sizeof err) : wh_config_new_default();
	if (!r->cfg) {
		error_msg("%s", err[0] ? err : "out of memory");
		return -EINVAL;
	}
	r->profile = r->cfg->profile;
	if (o->profile && wh_profile_parse(o->profile, &r->profile) != 0) {
		error_msg("unknown profile \"%s\" (baseline, restricted, worker)", o->profile);
		return -EINVAL;
	}
	r->json_results = cJSON_CreateArray();
	if (!r->json_results) {
		error_msg("out of memory");
		return -ENOMEM;
	}
	return 0;
}

int wh_check_main(int argc, char **argv)
{
	options o = {0};
	run r = {0};
	int status = EXIT_ERROR;
	int rc = parse_args(argc, argv, &o);
	if (rc) {
		if (rc < 0)
			usage(stderr);
		status = rc > 0 ? EXIT_PASS : EXIT_ERROR;
		goto fail;
	}
	if (setup(&r, &o))
		goto fail;
	/* Nothing is evaluated unless every input was read: a missing
	 * NetworkPolicy file would otherwise turn into false violations. */
	if (read_inputs(&r, &o) || build_netpols(&r))
		goto fail;
	for (size_t i = 0; i < r.n_objects; i++)
		evaluate_one(&r, &r.objects[i]);
	if (r.format == OUT_JSON && print_json(&r)) {
		error_msg("out of memory");
		goto fail;
	}
	if (fflush(stdout) != 0) {
		error_msg("writing the results failed");
		goto fail;
	}
	print_summary(&r);
	status = r.errors ? EXIT_ERROR : r.failed ? EXIT_VIOLATIONS : EXIT_PASS;
fail:
	run_free(&r);
	free(o.paths);
	return status;
}
