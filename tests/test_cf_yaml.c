/* Tests for common/cf_yaml: scalar resolution, line numbers, and hostile
 * input (duplicate keys, alias bombs, deep nesting, garbage). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "cf_yaml.h"

static char err[256];

static int parse(const char *text, cf_yaml_docs *d)
{
	err[0] = '\0';
	return cf_yaml_parse(text, strlen(text), d, err, sizeof err);
}

Test(cf_yaml, resolves_scalars_like_yaml_1_2_core)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("a: 1\nb: '1'\nc: true\nd: ~\ne: 1e3\nf: yes\ng: 0.5\nh: -3\n", &d), 0);
	cJSON *o = cJSON_GetArrayItem(d.docs, 0);
	cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(o, "a")));
	cr_assert(cJSON_IsString(cJSON_GetObjectItem(o, "b")));
	cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "c")));
	cr_assert(cJSON_IsNull(cJSON_GetObjectItem(o, "d")));
	cJSON *e = cJSON_GetObjectItem(o, "e");
	cr_assert(cJSON_IsNumber(e));
	cr_assert_eq(e->valuedouble, 1000.0);
	cr_assert_str_eq(e->valuestring, "1e3", "number keeps its source text");
	cr_assert(cJSON_IsString(cJSON_GetObjectItem(o, "f")), "yes stays a string");
	cr_assert_eq(cJSON_GetObjectItem(o, "h")->valuedouble, -3.0);
	cf_yaml_docs_free(&d);
}

Test(cf_yaml, multi_document_stream_skips_empty_documents)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("---\n# only a comment\n---\nkind: Pod\n---\n---\nkind: Job\n", &d), 0);
	cr_assert_eq(cJSON_GetArraySize(d.docs), 2);
	cr_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(d.docs, 1), "kind")->valuestring,
	                 "Job");
	cf_yaml_docs_free(&d);
}

Test(cf_yaml, json_input_parses)
{
	cf_yaml_docs d;
	cr_assert_eq(
	    parse("{\"kind\": \"Pod\", \"spec\": {\"containers\": [{\"name\": \"a\"}]}}", &d), 0);
	cJSON *o = cJSON_GetArrayItem(d.docs, 0);
	cr_assert_str_eq(cJSON_GetObjectItem(o, "kind")->valuestring, "Pod");
	cf_yaml_docs_free(&d);
}

Test(cf_yaml, records_key_lines)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("a: 1\nspec:\n  containers:\n  - name: x\n    image: y\n", &d), 0);
	cJSON *o = cJSON_GetArrayItem(d.docs, 0);
	cJSON *spec = cJSON_GetObjectItem(o, "spec");
	cr_assert_eq(cf_yaml_line(&d, spec), 2);
	cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(spec, "containers"), 0);
	cr_assert_eq(cf_yaml_line(&d, c0), 4);
	cr_assert_eq(cf_yaml_line(&d, cJSON_GetObjectItem(c0, "image")), 5);
	cf_yaml_docs_free(&d);
}

Test(cf_yaml, aliases_expand)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("base: &b {x: 1}\ncopy: *b\n", &d), 0);
	cJSON *o = cJSON_GetArrayItem(d.docs, 0);
	cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "copy"), "x")->valuedouble, 1.0);
	cf_yaml_docs_free(&d);
}

Test(cf_yaml, rejects_duplicate_keys_with_line)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("a: 1\nb: 2\na: 3\n", &d), -EINVAL);
	cr_assert(strstr(err, "line 3") && strstr(err, "duplicate key"), "%s", err);
	cr_assert_null(d.docs);
}

Test(cf_yaml, rejects_merge_keys)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("a: &x {k: 1}\nb:\n  <<: *x\n", &d), -EINVAL);
	cr_assert(strstr(err, "merge"), "%s", err);
}

Test(cf_yaml, rejects_alias_bomb)
{
	const char *bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	                   "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	                   "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	                   "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	                   "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	                   "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	                   "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
	cf_yaml_docs d;
	cr_assert_eq(parse(bomb, &d), -E2BIG);
	cr_assert(strstr(err, "alias bomb"), "%s", err);
}

Test(cf_yaml, rejects_deep_nesting)
{
	static char deep[4000];
	memset(deep, '[', 3000);
	deep[3000] = '\0';
	cf_yaml_docs d;
	cr_assert_eq(parse(deep, &d), -E2BIG);
	cr_assert(strstr(err, "nesting"), "%s", err);
}

Test(cf_yaml, rejects_garbage_and_nul_bytes)
{
	cf_yaml_docs d;
	const char garbage[] = "\x01\x02\xff\xfe kind: [";
	cr_assert_eq(cf_yaml_parse(garbage, sizeof garbage - 1, &d, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "line 1"), "%s", err);
	const char nul[] = "kind: P\0od\n";
	cr_assert_eq(cf_yaml_parse(nul, sizeof nul - 1, &d, err, sizeof err), -EINVAL);
}

Test(cf_yaml, rejects_unterminated_flow_and_bad_indent)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("a: [1, 2\n", &d), -EINVAL);
	cr_assert_eq(parse("a:\n  b: 1\n c: 2\n", &d), -EINVAL);
	cr_assert(strstr(err, "line"), "%s", err);
}

Test(cf_yaml, rejects_unknown_alias_and_non_scalar_keys)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("a: *nope\n", &d), -EINVAL);
	cr_assert_eq(parse("? [a, b]\n: 1\n", &d), -EINVAL);
	cr_assert(strstr(err, "keys must be scalars"), "%s", err);
}

Test(cf_yaml, empty_input_has_no_documents)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("", &d), 0);
	cr_assert_eq(cJSON_GetArraySize(d.docs), 0);
	cf_yaml_docs_free(&d);
}

Test(cf_yaml, names_node_types_for_messages)
{
	cf_yaml_docs d;
	cr_assert_eq(parse("[~, true, 1, x, [], {}]\n", &d), 0, "%s", err);
	const cJSON *seq = cJSON_GetArrayItem(d.docs, 0);
	const char *want[] = {"null", "a boolean", "a number", "a string", "a list", "a mapping"};
	for (int i = 0; i < 6; i++)
		cr_assert_str_eq(cf_yaml_type_name(cJSON_GetArrayItem(seq, i), "a list"), want[i]);
	cr_assert_str_eq(cf_yaml_type_name(cJSON_GetArrayItem(seq, 4), "a sequence"), "a sequence");
	cf_yaml_docs_free(&d);
}
