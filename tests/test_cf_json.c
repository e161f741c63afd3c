/* test_cf_json.c - cf_json_get answers exactly what
 * cJSON_GetObjectItemCaseSensitive answers, in every case. */
#include <criterion/criterion.h>

#include <cjson/cJSON.h>

#include "cf_json.h"

static void same(const cJSON *obj, const char *name)
{
	cr_assert_eq(cf_json_get(obj, name), cJSON_GetObjectItemCaseSensitive(obj, name),
	             "lookup of \"%s\" differs", name ? name : "(null)");
}

Test(cf_json, finds_members_like_cjson)
{
	cJSON *o = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{\"a\":1},"
	                       "\"\":\"empty\",\"x\":0}");
	cr_assert_not_null(o);
	cr_assert_str_eq(cf_json_get(o, "kind")->valuestring, "Pod");
	cr_assert_eq(cf_json_get(o, "spec"), cJSON_GetObjectItemCaseSensitive(o, "spec"));
	cr_assert_str_eq(cf_json_get(o, "")->valuestring, "empty");
	const char *names[] = {"apiVersion", "kind", "spec", "", "x"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		same(o, names[i]);
	cJSON_Delete(o);
}

Test(cf_json, first_of_duplicate_names)
{
	cJSON *o = cJSON_Parse("{\"a\":1,\"ab\":2,\"a\":3}");
	cr_assert_not_null(o);
	cr_assert_eq(cf_json_get(o, "a")->valueint, 1);
	same(o, "a");
	same(o, "ab");
	cJSON_Delete(o);
}

Test(cf_json, absent_names_are_null)
{
	cJSON *o = cJSON_Parse("{\"kind\":\"Pod\",\"k\":1}");
	cr_assert_not_null(o);
	const char *names[] = {"Kind", "kin", "kinds", "kind ", "K", "z", "spec"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		cr_assert_null(cf_json_get(o, names[i]), "\"%s\"", names[i]);
		same(o, names[i]);
	}
	cJSON_Delete(o);
}

Test(cf_json, null_object_name_and_non_objects)
{
	cJSON *o = cJSON_Parse("{\"a\":1}");
	cJSON *arr = cJSON_Parse("[{\"a\":1},2]");
	cJSON *str = cJSON_CreateString("a");
	cJSON *empty = cJSON_CreateObject();
	cr_assert(o && arr && str && empty);
	cr_assert_null(cf_json_get(NULL, "a"));
	cr_assert_null(cf_json_get(o, NULL));
	cr_assert_null(cf_json_get(arr, "a")); /* array elements have no name */
	cr_assert_null(cf_json_get(str, "a"));
	cr_assert_null(cf_json_get(empty, "a"));
	same(NULL, "a");
	same(o, NULL);
	same(arr, "a");
	same(str, "a");
	same(empty, "a");
	cJSON_Delete(o);
	cJSON_Delete(arr);
	cJSON_Delete(str);
	cJSON_Delete(empty);
}

Test(cf_json, stops_at_an_unnamed_member_like_cjson)
{
	/* A built tree can mix: an unnamed child ends cJSON's search. */
	cJSON *o = cJSON_CreateObject();
	cr_assert_not_null(o);
	cJSON_AddNumberToObject(o, "a", 1);
	cJSON_AddItemToArray(o, cJSON_CreateNumber(2)); /* no name */
	cJSON_AddNumberToObject(o, "b", 3);
	same(o, "a");
	same(o, "b");
	cr_assert_null(cf_json_get(o, "b"));
	cJSON_Delete(o);
}

Test(cf_json, typed_getters_return_only_the_expected_type)
{
	cJSON *o = cJSON_Parse("{\"m\":{\"k\":1},\"l\":[1],\"s\":\"x\",\"n\":null,\"b\":true}");
	cr_assert_not_null(o);
	cr_assert_not_null(cf_json_object(o, "m"));
	cr_assert_not_null(cf_json_array(o, "l"));
	cr_assert_str_eq(cf_json_string(o, "s"), "x");
	/* Wrong type, null and absent all read as "not set". */
	cr_assert_null(cf_json_object(o, "l"));
	cr_assert_null(cf_json_object(o, "s"));
	cr_assert_null(cf_json_array(o, "m"));
	cr_assert_null(cf_json_array(o, "n"));
	cr_assert_null(cf_json_string(o, "b"));
	cr_assert_null(cf_json_string(o, "n"));
	cr_assert_null(cf_json_string(o, "absent"));
	cr_assert_null(cf_json_object(NULL, "m"));
	cJSON_Delete(o);
}

/* What cJSON prints for the string s (quoted, escaped); caller frees. */
static char *cjson_quoted(const char *s)
{
	cJSON *v = cJSON_CreateString(s);
	cr_assert_not_null(v);
	char *t = cJSON_PrintUnformatted(v);
	cJSON_Delete(v);
	return t;
}

static void same_quoting(const char *s)
{
	cf_buf b;
	cf_buf_init(&b, 0);
	cr_assert_eq(cf_json_append_quoted(&b, s), 0);
	cr_assert_eq(cf_buf_append(&b, "", 1), 0);
	char *want = cjson_quoted(s);
	cr_assert_str_eq(b.data, want, "for a string with byte 0x%02x first", (unsigned char)s[0]);
	cJSON_free(want);
	cf_buf_free(&b);
}

Test(cf_json, append_quoted_escapes_as_cjson_prints)
{
	for (int c = 1; c < 256; c++) {
		char s[8] = {(char)c, 'a', (char)c, (char)c, 'z', (char)c, 0};
		same_quoting(s);
	}
	same_quoting("");
	same_quoting("plain");
	same_quoting("3f1c2a9e-0d2b-4b8e-9a41-5c6d7e8f9a01");
	same_quoting("q\"uo\\te/slash\ttab\nnl\x01\x1f\x7f h\xc3\xa9");
}

Test(cf_json, append_quoted_reports_a_full_buffer)
{
	cf_buf b;
	cf_buf_init(&b, 4);
	cr_assert_neq(cf_json_append_quoted(&b, "longer than four"), 0);
	cf_buf_free(&b);
}
