/* Tests for webhook/wh_selector: LabelSelector semantics exactly as the API
 * server applies them, and rejection of selectors the API would refuse. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "wh_selector.h"

static char err[256];

static wh_selector *sel(const char *json)
{
	cJSON *j = cJSON_Parse(json);
	cr_assert(j || !strcmp(json, "null"), "bad test JSON: %s", json);
	wh_selector *s = NULL;
	int rc = wh_selector_parse(j, &s, err, sizeof err);
	cJSON_Delete(j);
	cr_assert_eq(rc, 0, "parse %s: %s", json, err);
	return s;
}

static int sel_err(const char *json)
{
	cJSON *j = cJSON_Parse(json);
	cr_assert(j, "bad test JSON: %s", json);
	wh_selector *s = (wh_selector *)1;
	err[0] = '\0';
	int rc = wh_selector_parse(j, &s, err, sizeof err);
	cJSON_Delete(j);
	cr_assert_null(s, "no selector on error");
	cr_assert_neq(err[0], '\0', "an error message is given");
	return rc;
}

static bool match(wh_selector *s, const char *labels)
{
	cJSON *l = labels ? cJSON_Parse(labels) : NULL;
	bool m = wh_selector_matches(s, l);
	cJSON_Delete(l);
	return m;
}

Test(wh_selector, empty_selector_matches_everything)
{
	wh_selector *s = sel("{}");
	cr_assert(wh_selector_is_empty(s));
	cr_assert(match(s, "{\"app\":\"x\"}"));
	cr_assert(match(s, "{}"));
	cr_assert(match(s, NULL));
	wh_selector_free(s);
	wh_selector *n = NULL;
	cr_assert_eq(wh_selector_parse(NULL, &n, err, sizeof err), 0);
	cr_assert(wh_selector_is_empty(n));
	cr_assert(match(n, NULL));
	wh_selector_free(n);
}

Test(wh_selector, match_labels_all_must_hold)
{
	wh_selector *s = sel("{\"matchLabels\":{\"app\":\"worker\",\"tier\":\"run\"}}");
	cr_assert_not(wh_selector_is_empty(s));
	cr_assert(match(s, "{\"app\":\"worker\",\"tier\":\"run\",\"x\":\"y\"}"));
	cr_assert_not(match(s, "{\"app\":\"worker\"}"));
	cr_assert_not(match(s, "{\"app\":\"worker\",\"tier\":\"web\"}"));
	cr_assert_not(match(s, NULL));
	cr_assert_not(match(s, "{\"app\":\"Worker\",\"tier\":\"run\"}"),
	              "values are case-sensitive");
	wh_selector_free(s);
}

Test(wh_selector, operator_in)
{
	wh_selector *s = sel("{\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"In\","
	                     "\"values\":[\"a\",\"b\"]}]}");
	cr_assert(match(s, "{\"env\":\"a\"}"));
	cr_assert(match(s, "{\"env\":\"b\"}"));
	cr_assert_not(match(s, "{\"env\":\"c\"}"));
	cr_assert_not(match(s, "{}"), "In with the key absent does not match");
	wh_selector_free(s);
}

Test(wh_selector, operator_not_in)
{
	wh_selector *s = sel("{\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"NotIn\","
	                     "\"values\":[\"prod\"]}]}");
	cr_assert(match(s, "{\"env\":\"dev\"}"));
	cr_assert(match(s, "{}"), "NotIn matches objects without the key");
	cr_assert_not(match(s, "{\"env\":\"prod\"}"));
	wh_selector_free(s);
}

Test(wh_selector, operator_exists_and_does_not_exist)
{
	wh_selector *e = sel("{\"matchExpressions\":[{\"key\":\"w\",\"operator\":\"Exists\"}]}");
	wh_selector *d = sel(
	    "{\"matchExpressions\":[{\"key\":\"w\",\"operator\":\"DoesNotExist\",\"values\":[]}]}");
	cr_assert(match(e, "{\"w\":\"\"}"));
	cr_assert_not(match(e, "{\"v\":\"1\"}"));
	cr_assert_not(match(d, "{\"w\":\"x\"}"));
	cr_assert(match(d, "{\"v\":\"1\"}"));
	cr_assert(match(d, NULL));
	wh_selector_free(e);
	wh_selector_free(d);
}

Test(wh_selector, labels_and_expressions_are_anded)
{
	wh_selector *s = sel("{\"matchLabels\":{\"app\":\"w\"},\"matchExpressions\":["
	                     "{\"key\":\"env\",\"operator\":\"NotIn\",\"values\":[\"prod\"]},"
	                     "{\"key\":\"team\",\"operator\":\"Exists\"}]}");
	cr_assert(match(s, "{\"app\":\"w\",\"team\":\"t\"}"));
	cr_assert_not(match(s, "{\"app\":\"w\",\"team\":\"t\",\"env\":\"prod\"}"));
	cr_assert_not(match(s, "{\"app\":\"w\"}"));
	cr_assert_not(match(s, "{\"team\":\"t\"}"));
	wh_selector_free(s);
}

Test(wh_selector, clone_matches_like_the_original)
{
	wh_selector *s = sel("{\"matchLabels\":{\"app\":\"w\"},\"matchExpressions\":["
	                     "{\"key\":\"env\",\"operator\":\"In\",\"values\":[\"a\",\"b\"]}]}");
	wh_selector *c = wh_selector_clone(s);
	wh_selector_free(s);
	cr_assert_not_null(c);
	cr_assert(match(c, "{\"app\":\"w\",\"env\":\"b\"}"));
	cr_assert_not(match(c, "{\"app\":\"w\",\"env\":\"c\"}"));
	wh_selector_free(c);
	cr_assert_null(wh_selector_clone(NULL));
}

Test(wh_selector, non_string_label_value_never_equals)
{
	wh_selector *s = sel("{\"matchLabels\":{\"v\":\"1\"}}");
	wh_selector *e = sel("{\"matchExpressions\":[{\"key\":\"v\",\"operator\":\"Exists\"}]}");
	cr_assert_not(match(s, "{\"v\":1}"));
	cr_assert(match(e, "{\"v\":1}"));
	cr_assert_not(match(s, "[\"v\"]"), "labels that are not an object are no labels");
	wh_selector_free(s);
	wh_selector_free(e);
}

/* ---- negative cases ---- */

Test(wh_selector, rejects_non_object_selector_1)
{
	cr_assert_eq(sel_err("\"app=x\""), -EINVAL);
}

Test(wh_selector, rejects_non_object_selector_2)
{
	cr_assert_eq(sel_err("[]"), -EINVAL);
}

Test(wh_selector, rejects_non_object_selector_3)
{
	cr_assert_eq(sel_err("3"), -EINVAL);
}

Test(wh_selector, rejects_bad_match_labels_1)
{
	cr_assert_eq(sel_err("{\"matchLabels\":[\"a\"]}"), -EINVAL);
}

Test(wh_selector, rejects_bad_match_labels_2)
{
	cr_assert_eq(sel_err("{\"matchLabels\":{\"a\":1}}"), -EINVAL);
	cr_assert(strstr(err, "matchLabels.a"), "names the field: %s", err);
}

Test(wh_selector, rejects_bad_match_labels_3)
{
	cr_assert_eq(sel_err("{\"matchLabels\":{\"a\":{}}}"), -EINVAL);
}

Test(wh_selector, rejects_bad_match_labels_4)
{
	cr_assert_eq(sel_err("{\"matchLabels\":{\"\":\"x\"}}"), -EINVAL);
}

Test(wh_selector, rejects_unknown_operator_1)
{
	cr_assert_eq(
	    sel_err(
	        "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"in\",\"values\":[\"x\"]}]}"),
	    -EINVAL);
	cr_assert(strstr(err, "matchExpressions[0].operator"), "%s", err);
}

Test(wh_selector, rejects_unknown_operator_2)
{
	cr_assert_eq(
	    sel_err(
	        "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Gt\",\"values\":[\"1\"]}]}"),
	    -EINVAL);
}

Test(wh_selector, rejects_unknown_operator_3)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":[{\"key\":\"a\"}]}"), -EINVAL);
}

Test(wh_selector, rejects_in_without_values_1)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\"}]}"),
	             -EINVAL);
}

Test(wh_selector, rejects_in_without_values_2)
{
	cr_assert_eq(
	    sel_err(
	        "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"NotIn\",\"values\":[]}]}"),
	    -EINVAL);
}

Test(wh_selector, rejects_exists_with_values_1)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\","
	                     "\"values\":[\"x\"]}]}"),
	             -EINVAL);
}

Test(wh_selector, rejects_exists_with_values_2)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"DoesNotExist\","
	                     "\"values\":[\"x\"]}]}"),
	             -EINVAL);
}

Test(wh_selector, rejects_bad_expression_shapes_1)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":{\"key\":\"a\"}}"), -EINVAL);
}

Test(wh_selector, rejects_bad_expression_shapes_2)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":[\"a=b\"]}"), -EINVAL);
}

Test(wh_selector, rejects_bad_expression_shapes_3)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":[{\"key\":\"\",\"operator\":\"Exists\"}]}"),
	             -EINVAL);
}

Test(wh_selector, rejects_bad_expression_shapes_4)
{
	cr_assert_eq(sel_err("{\"matchExpressions\":[{\"key\":5,\"operator\":\"Exists\"}]}"),
	             -EINVAL);
}

Test(wh_selector, rejects_bad_expression_shapes_5)
{
	cr_assert_eq(
	    sel_err(
	        "{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":\"x\"}]}"),
	    -EINVAL);
}

Test(wh_selector, rejects_bad_expression_shapes_6)
{
	cr_assert_eq(
	    sel_err("{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[1]}]}"),
	    -EINVAL);
	cr_assert(strstr(err, "values[0]"), "%s", err);
}

Test(wh_selector, rejects_null_out_pointer)
{
	cJSON *j = cJSON_CreateObject();
	cr_assert_eq(wh_selector_parse(j, NULL, err, sizeof err), -EINVAL);
	cJSON_Delete(j);
}
