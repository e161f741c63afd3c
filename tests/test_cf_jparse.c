/* test_cf_jparse.c - the admission path's JSON parser: the same tree as
 * cJSON for valid JSON, a clear error with its byte for invalid JSON. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_jarena.h"
#include "cf_jparse.h"

static char err[256];

/* Parses with both parsers and requires equal trees (types, keys in
 * order, values). */
static void same_as_cjson(const char *text, size_t len)
{
	size_t off = 0;
	cJSON *ours = cf_jparse(text, len, &off, err, sizeof err);
	cr_assert_not_null(ours, "%s in: %.80s", err, text);
	cJSON *theirs = cJSON_ParseWithLength(text, len);
	cr_assert_not_null(theirs, "cJSON rejects: %.80s", text);
	char *a = cJSON_PrintUnformatted(ours), *b = cJSON_PrintUnformatted(theirs);
	cr_assert_str_eq(a, b);
	/* cJSON_Compare matches members by name, so it cannot compare
	 * objects with duplicate keys; the printed forms above do. */
	if (!memmem(text, len, "\"dup\"", 5))
		cr_assert(cJSON_Compare(ours, theirs, true), "%.80s", text);
	cJSON_free(a); /* from the arena inside an arena parse */
	cJSON_free(b);
	cJSON_Delete(ours);
	cJSON_Delete(theirs);
}

static void rejected(const char *text, const char *want_msg, size_t want_off)
{
	size_t off = 12345;
	cJSON *j = cf_jparse(text, strlen(text), &off, err, sizeof err);
	cr_assert_null(j, "accepted: %s", text);
	cr_assert(strstr(err, want_msg), "%s: got \"%s\", want \"%s\"", text, err, want_msg);
	cr_assert_eq(off, want_off, "%s: error at %zu, want %zu (%s)", text, off, want_off, err);
}

static void file_same_as_cjson(const char *path)
{
	cf_buf b;
	cr_assert_eq(cf_read_file(path, 1 << 20, &b, err, sizeof err), 0, "%s", err);
	same_as_cjson(b.data, b.len);
	cf_buf_free(&b);
}

Test(cf_jparse, admission_reviews_parse_to_the_same_tree_as_cjson)
{
	file_same_as_cjson("examples/admission/worker-pod.json");
	file_same_as_cjson("examples/admission/noncompliant-pod.json");
	file_same_as_cjson("examples/admission/deployment-violating.json");
}

Test(cf_jparse, every_kind_of_value)
{
	const char *docs[] = {
	    "{}",
	    "[]",
	    " \t\r\n{ \"a\" : [ 1 , -2 , 3.5 , -0.25e2 , 1E+3 , 2e-2 , 0 ] } \n",
	    "{\"t\":true,\"f\":false,\"n\":null,\"s\":\"\",\"o\":{},\"a\":[]}",
	    "[[[[[]]]],{\"x\":{\"y\":{\"z\":[null]}}}]",
	    "\"just a string\"",
	    "42",
	    "123456789012345",
	    "1234567890123456789",
	    "-9007199254740993",
	    "1.7976931348623157e308",
	    "{\"dup\":1,\"dup\":2}",
	    "{\"esc\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\"}",
	    "{\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00 \\u0041\"}",
	    "{\"utf8\":\"caf\xc3\xa9 \xe4\xb8\xad\"}",
	};
	for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
		same_as_cjson(docs[i], strlen(docs[i]));
}

Test(cf_jparse, numbers_have_cjson_values)
{
	const char *text = "[3000000000,-3000000000,65534,-1.5,1e2]";
	cJSON *j = cf_jparse(text, strlen(text), NULL, err, sizeof err);
	cr_assert_not_null(j, "%s", err);
	cr_assert_eq(cJSON_GetArrayItem(j, 0)->valueint, INT_MAX);
	cr_assert_eq(cJSON_GetArrayItem(j, 1)->valueint, INT_MIN);
	cr_assert_eq(cJSON_GetArrayItem(j, 2)->valueint, 65534);
	cr_assert_eq(cJSON_GetArrayItem(j, 3)->valuedouble, -1.5);
	cr_assert_eq(cJSON_GetArrayItem(j, 3)->valueint, -1);
	cr_assert_eq(cJSON_GetArrayItem(j, 4)->valuedouble, 100.0);
	cJSON_Delete(j);
}

Test(cf_jparse, lists_link_like_cjson_so_cjson_can_append)
{
	cJSON *j = cf_jparse("[1,2,3]", 7, NULL, err, sizeof err);
	cr_assert_not_null(j, "%s", err);
	cr_assert_eq(j->child->prev->valueint, 3, "head->prev is the tail");
	cJSON_AddItemToArray(j, cJSON_CreateNumber(4));
	cr_assert_eq(cJSON_GetArraySize(j), 4);
	cr_assert_eq(cJSON_GetArrayItem(j, 3)->valueint, 4);
	cJSON_DeleteItemFromArray(j, 0);
	cr_assert_eq(cJSON_GetArrayItem(j, 0)->valueint, 2);
	cJSON_Delete(j);
}

Test(cf_jparse, invalid_json_names_the_error_and_its_byte)
{
	rejected("", "unexpected end of input", 0);
	rejected("   ", "unexpected end of input", 3);
	rejected("{", "expected a member name", 1);
	rejected("{\"a\"", "expected ':'", 4);
	rejected("{\"a\":", "unexpected end of input", 5);
	rejected("{\"a\":1", "unterminated object", 0);
	rejected("{\"a\":1 \"b\":2}", "expected ',' or '}'", 7);
	rejected("[1,2", "unterminated array", 0);
	rejected("[1 2]", "expected ',' or ']'", 3);
	rejected("[1,]", "invalid number", 3);
	rejected("{\"a\":1,}", "expected a member name", 7);
	rejected("{a:1}", "expected a member name", 1);
	rejected("\"abc", "unterminated string", 0);
	rejected("\"a\\", "unterminated string", 0);
	rejected("\"tab\there\"", "control character", 4);
	rejected("\"\\x\"", "invalid escape", 1);
	rejected("\"\\u12\"", "invalid \\u escape", 1);
	rejected("\"a\\u0000b\"", "\\u0000", 2);
	rejected("\"\\udc00\"", "unpaired UTF-16 surrogate", 1);
	rejected("\"\\ud83d x\"", "unpaired UTF-16 surrogate", 1);
	rejected("01", "leading zero", 0);
	rejected("-", "invalid number", 0);
	rejected("-a", "invalid number", 0);
	rejected("1.", "no digit after the decimal point", 0);
	rejected("1.e5", "no digit after the decimal point", 0);
	rejected("1e", "no digit in the exponent", 0);
	rejected("1e+", "no digit in the exponent", 0);
	rejected("tru", "invalid value", 0);
	rejected("nul", "invalid value", 0);
	rejected("True", "invalid number", 0);
	rejected("{} x", "trailing data", 3);
	rejected("[] []", "trailing data", 3);
	rejected("1111111111111111111111111111111111111111111111111111111111111111",
	         "longer than 63", 0);
}

Test(cf_jparse, nesting_past_the_limit_is_refused_without_crashing)
{
	size_t n = CF_JPARSE_MAX_DEPTH + 1;
	char *deep = malloc(2 * n + 1);
	cr_assert_not_null(deep);
	memset(deep, '[', n);
	memset(deep + n, ']', n);
	deep[2 * n] = '\0';
	size_t off = 0;
	cr_assert_null(cf_jparse(deep, 2 * n, &off, err, sizeof err));
	cr_assert(strstr(err, "nesting too deep"), "%s", err);
	cr_assert_eq(off, CF_JPARSE_MAX_DEPTH);
	/* At the limit itself it parses. */
	cJSON *j = cf_jparse(deep + 1, 2 * n - 2, NULL, err, sizeof err);
	cr_assert_not_null(j, "%s", err);
	cJSON_Delete(j);
	free(deep);
}

/* Every prefix and every single-byte corruption of a real review: never a
 * crash, and whatever is accepted is also valid JSON to cJSON, with the
 * same tree. in_arena: parsed as the server parses, strings in place. */
static void truncate_and_corrupt_a_review(bool in_arena)
{
	if (in_arena)
		cr_assert_eq(cf_jarena_install(), 0);
	cf_buf b;
	cr_assert_eq(
	    cf_read_file("examples/admission/worker-pod.json", 1 << 20, &b, err, sizeof err), 0,
	    "%s", err);
	size_t accepted = 0;
	for (size_t cut = 0; cut < b.len; cut += 7) {
		cf_jarena_begin();
		cJSON *j = cf_jparse(b.data, cut, NULL, err, sizeof err);
		cf_jarena_end(false, NULL);
		accepted += j != NULL;
		cJSON_Delete(j);
	}
	/* Only the whole object (plus its trailing newline) is one value. */
	cr_assert_eq(accepted, 0);
	char *copy = malloc(b.len);
	cr_assert_not_null(copy);
	const char repl[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '0', '-', 'e', ' ', '\x01'};
	srand(7);
	for (int round = 0; round < 3000; round++) {
		memcpy(copy, b.data, b.len);
		size_t at = (size_t)rand() % b.len;
		copy[at] = repl[(size_t)rand() % sizeof repl];
		cf_jarena_begin();
		cJSON *ours = cf_jparse(copy, b.len, NULL, err, sizeof err);
		cf_jarena_end(false, NULL);
		if (!ours)
			continue;
		cJSON *theirs = cJSON_ParseWithLength(copy, b.len);
		cr_assert_not_null(theirs, "accepted what cJSON rejects (byte %zu)", at);
		cr_assert(cJSON_Compare(ours, theirs, true), "different trees (byte %zu)", at);
		cJSON_Delete(ours);
		cJSON_Delete(theirs);
	}
	free(copy);
	cf_buf_free(&b);
}

Test(cf_jparse, truncated_and_corrupted_reviews_are_handled)
{
	truncate_and_corrupt_a_review(false);
}

Test(cf_jparse, truncated_and_corrupted_reviews_are_handled_in_the_arena)
{
	truncate_and_corrupt_a_review(true);
}

/* Strings are scanned eight bytes at a time: a quote, an escape or a
 * control character at every offset of a long string is still seen. */
Test(cf_jparse, special_bytes_at_every_offset_of_a_long_string)
{
	for (size_t len = 1; len < 40; len++) {
		for (size_t at = 0; at < len; at++) {
			char doc[128], body[48];
			/* An escape at `at`: a...a\na...a */
			snprintf(doc, sizeof doc, "[\"%.*s\\n%.*s\"]", (int)at,
			         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", (int)(len - at - 1),
			         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
			same_as_cjson(doc, strlen(doc));
			body[len] = '\0';
			memset(body, 'a', len);
			body[at] = '\x1f';
			snprintf(doc, sizeof doc, "\"%s\"", body);
			size_t off = 0;
			cr_assert_null(cf_jparse(doc, strlen(doc), &off, err, sizeof err));
			cr_assert_eq(off, at + 1, "control byte at %zu of %zu: %s", at, len, err);
			body[at] = '"';
			snprintf(doc, sizeof doc, "\"%s\"", body);
			cr_assert_null(cf_jparse(doc, strlen(doc), &off, err, sizeof err));
			cr_assert(strstr(err, "trailing data"), "quote at %zu of %zu: %s", at, len,
			          err);
		}
	}
}

/* Inside an arena parse (as the server runs it) strings are terminated and
 * unescaped in place in an arena copy of the text: the same trees, the
 * caller's text untouched, and every string intact after later ones were
 * terminated next to it. */
Test(cf_jparse, in_place_strings_in_the_arena_match_cjson)
{
	cr_assert_eq(cf_jarena_install(), 0);
	static const char *const docs[] = {
	    "{\"a\":\"x\",\"b\":\"\",\"\":\"y\",\"c\":[\"p\",\"q\",\"\"]}",
	    "{\"k\\n\\\"ey\":\"v\\\\al\\/ue\\t\",\"next\":\"\\u00e9\\ud83d\\ude00\\u20ac\"}",
	    "[\"\\\"\",\"\\\\\",\"\\b\\f\\n\\r\\t\",\"plain\",\"a\\u0041b\"]",
	    "\"lone\"",
	    " { \"spaced\" : \"out\" , \"n\" : 1 } ",
	};
	for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
		size_t len = strlen(docs[i]);
		char *text = malloc(len), *before = malloc(len);
		cr_assert(text && before);
		memcpy(text, docs[i], len); /* no NUL after it, as a request body */
		memcpy(before, text, len);
		cf_jarena_begin();
		same_as_cjson(text, len);
		cf_jarena_end(false, NULL);
		cr_assert_eq(memcmp(text, before, len), 0, "the input was written to: %s", docs[i]);
		free(text);
		free(before);
	}
	const char *const files[] = {"examples/admission/worker-pod.json",
	                             "examples/admission/deployment-violating.json"};
	for (size_t i = 0; i < 2; i++) {
		cf_jarena_begin();
		file_same_as_cjson(files[i]);
		cf_jarena_end(false, NULL);
	}
}

/* A text too big for the arena is parsed with copied strings, the same. */
Test(cf_jparse, text_larger_than_the_arena_still_parses)
{
	cr_assert_eq(cf_jarena_install(), 0);
	size_t n = CF_JARENA_BYTES / 4, len = 0;
	size_t size = n * 10 + 16;
	char *text = malloc(size);
	cr_assert_not_null(text);
	text[len++] = '[';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, size - len, "%s\"a\\nb\"", i ? "," : "");
	text[len++] = ']';
	cr_assert_gt(len, CF_JARENA_BYTES);
	cf_jarena_begin();
	same_as_cjson(text, len);
	cf_jarena_end(false, NULL);
	free(text);
}
