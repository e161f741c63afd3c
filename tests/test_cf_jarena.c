/* test_cf_jarena.c - the per-thread cJSON arena: trees parse the same,
 * stay intact while alive, are rewound only when none is alive, spill to
 * malloc past the arena, and each thread has its own. Under ASan a free()
 * of an arena block or a use of rewound memory would be reported. */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cf_jarena.h"
#include "wh_admission.h"

static const char DOC[] = "{\"a\":[1,2,{\"b\":\"text\"}],\"c\":{\"d\":true,\"e\":null}}";

static bool last_whole;

static cJSON *parse_in_arena(const char *text, bool *counted)
{
	cf_jarena_begin();
	cJSON *j = cJSON_Parse(text);
	bool whole;
	*counted = cf_jarena_end(j != NULL, &whole);
	if (*counted)
		last_whole = whole;
	return j;
}

static char *print(const cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	cr_assert_not_null(s);
	return s;
}

/* Before install: nothing is counted, cJSON works as usual. Runs first in
 * its own process (Criterion forks per test). */
Test(cf_jarena, inert_without_install)
{
	cr_assert_not(cf_jarena_installed());
	bool counted = true;
	cJSON *j = parse_in_arena(DOC, &counted);
	cr_assert_not_null(j);
	cr_assert_not(counted);
	cf_jarena_release(); /* harmless with nothing alive */
	cJSON_Delete(j);
}

Test(cf_jarena, parses_identically_and_rewinds)
{
	cr_assert_eq(cf_jarena_install(), 0);
	cr_assert_eq(cf_jarena_install(), 0); /* idempotent */
	bool counted;
	cJSON *j = parse_in_arena(DOC, &counted);
	cr_assert(counted);
	cr_assert(last_whole, "a small document fits the arena");
	char *s = print(j);
	cr_assert_str_eq(s, DOC);
	free(s);
	uintptr_t first = (uintptr_t)j;
	cJSON_Delete(j);
	cf_jarena_release();
	/* Nothing alive: the next parse starts at the same place. */
	cJSON *k = parse_in_arena(DOC, &counted);
	cr_assert_eq((uintptr_t)k, first);
	cJSON_Delete(k);
	cf_jarena_release();
}

Test(cf_jarena, live_tree_is_not_overwritten)
{
	cr_assert_eq(cf_jarena_install(), 0);
	bool ca, cb;
	cJSON *a = parse_in_arena(DOC, &ca);
	cJSON *b = parse_in_arena("{\"x\":\"yyyyyyyyyyyyyyyyyyyyyyyy\",\"z\":[3,4,5]}", &cb);
	cr_assert(ca && cb);
	cr_assert_neq(a, b);
	char *s = print(a);
	cr_assert_str_eq(s, DOC);
	free(s);
	cJSON_Delete(b);
	cf_jarena_release();
	/* a is still alive: no rewind, a new tree goes elsewhere. */
	cJSON *c = parse_in_arena("[1]", &cb);
	cr_assert_neq((uintptr_t)c, (uintptr_t)a);
	s = print(a);
	cr_assert_str_eq(s, DOC);
	free(s);
	cJSON_Delete(c);
	cf_jarena_release();
	cJSON_Delete(a);
	cf_jarena_release();
}

Test(cf_jarena, bigger_than_the_arena_spills_to_malloc)
{
	cr_assert_eq(cf_jarena_install(), 0);
	/* An array of many strings: several times CF_JARENA_BYTES of nodes. */
	size_t n = 4 * CF_JARENA_BYTES / 16, len = 0;
	char *text = malloc(n * 8 + 8);
	cr_assert_not_null(text);
	text[len++] = '[';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, 16, "%s\"s%03zu\"", i ? "," : "", i % 1000);
	text[len++] = ']';
	text[len] = '\0';
	bool counted;
	cJSON *j = parse_in_arena(text, &counted);
	cr_assert_not_null(j);
	cr_assert(counted);
	cr_assert_not(last_whole, "spilled to malloc: must be deleted");
	cr_assert_eq((size_t)cJSON_GetArraySize(j), n);
	char want[16];
	snprintf(want, sizeof want, "s%03zu", (n - 1) % 1000);
	cr_assert_str_eq(cJSON_GetArrayItem(j, (int)n - 1)->valuestring, want);
	cr_assert_str_eq(cJSON_GetArrayItem(j, 0)->valuestring, "s000");
	cJSON_Delete(j); /* arena and malloc'd nodes mixed: each freed its way */
	cf_jarena_release();
	free(text);
}

Test(cf_jarena, failed_parse_is_not_counted)
{
	cr_assert_eq(cf_jarena_install(), 0);
	bool counted = true;
	cJSON *j = parse_in_arena("{\"a\":[1,2", &counted);
	cr_assert_null(j);
	cr_assert_not(counted);
	j = parse_in_arena("", &counted);
	cr_assert_null(j);
	cr_assert_not(counted);
}

Test(cf_jarena, outside_begin_end_is_plain_malloc)
{
	cr_assert_eq(cf_jarena_install(), 0);
	cJSON *o = cJSON_CreateObject(); /* not in a parse: malloc */
	cr_assert_not_null(o);
	cJSON_AddStringToObject(o, "k", "v");
	bool counted;
	cJSON *j = parse_in_arena(DOC, &counted);
	/* An arena subtree attached to a malloc'd tree, deleted together. */
	cJSON_AddItemToObject(o, "doc", cJSON_DetachItemFromObject(j, "c"));
	char *s = print(o);
	cr_assert_str_eq(s, "{\"k\":\"v\",\"doc\":{\"d\":true,\"e\":null}}");
	free(s);
	cJSON_Delete(o);
	cJSON_Delete(j);
	cf_jarena_release();
}

static void *other_thread(void *arg)
{
	uintptr_t *out = arg;
	bool counted;
	cJSON *j = parse_in_arena(DOC, &counted);
	out[0] = (uintptr_t)j;
	out[1] = counted;
	char *s = cJSON_PrintUnformatted(j);
	out[2] = s && strcmp(s, DOC) == 0;
	free(s);
	cJSON_Delete(j);
	cf_jarena_release();
	return NULL; /* the thread's block is freed at exit (LSan checks) */
}

Test(cf_jarena, each_thread_has_its_own)
{
	cr_assert_eq(cf_jarena_install(), 0);
	bool counted;
	cJSON *mine = parse_in_arena(DOC, &counted);
	uintptr_t res[3] = {0};
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, other_thread, res), 0);
	pthread_join(t, NULL);
	cr_assert(res[1]);
	cr_assert(res[2]);
	uintptr_t d =
	    res[0] > (uintptr_t)mine ? res[0] - (uintptr_t)mine : (uintptr_t)mine - res[0];
	cr_assert_geq(d, CF_JARENA_BYTES); /* not inside this thread's arena */
	char *s = print(mine);
	cr_assert_str_eq(s, DOC);
	free(s);
	cJSON_Delete(mine);
	cf_jarena_release();
}

/* The server's use: wh_admission_parse into the arena, then
 * wh_admission_request_free; a review too big for the arena is deleted
 * the ordinary way (ASan/LSan would see a bad free or a leak). */
static char *review_with_annotation(size_t pad)
{
	static const char head[] =
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
	    "\"uid\":\"u-1\",\"operation\":\"CREATE\",\"kind\":{\"kind\":\"Pod\"},\"object\":{"
	    "\"metadata\":{\"name\":\"p\",\"annotations\":{";
	static const char tail[] = "}},\"spec\":{\"containers\":[]}}}}";
	size_t cap = sizeof head + sizeof tail + pad * 24 + 64, len = 0;
	char *r = malloc(cap);
	cr_assert_not_null(r);
	len += (size_t)snprintf(r + len, cap - len, "%s", head);
	for (size_t i = 0; i < pad; i++)
		len +=
		    (size_t)snprintf(r + len, cap - len, "%s\"k%zu\":\"v%zu\"", i ? "," : "", i, i);
	snprintf(r + len, cap - len, "%s", tail);
	return r;
}

Test(cf_jarena, admission_requests_in_and_beyond_the_arena)
{
	cr_assert_eq(cf_jarena_install(), 0);
	char err[256];
	size_t pads[] = {0, 10, 20000};
	for (size_t i = 0; i < sizeof pads / sizeof pads[0]; i++) {
		char *text = review_with_annotation(pads[i]);
		wh_admission_request req;
		cr_assert_eq(wh_admission_parse(text, strlen(text), &req, err, sizeof err), 0, "%s",
		             err);
		cr_assert(req.in_arena);
		cr_assert_eq(req.arena_whole, pads[i] < 20000, "pad %zu", pads[i]);
		cr_assert_str_eq(req.uid, "u-1");
		cr_assert_str_eq(req.name, "p");
		wh_admission_request_free(&req);
		free(text);
	}
	/* A rejected review releases what it took. */
	wh_admission_request req;
	cr_assert_eq(wh_admission_parse("{\"apiVersion\":\"v1\"}", 19, &req, err, sizeof err),
	             -EINVAL);
	cr_assert_eq(wh_admission_parse("{\"a\":", 5, &req, err, sizeof err), -EINVAL);
	bool counted;
	cJSON *j = parse_in_arena(DOC, &counted);
	cr_assert(counted && last_whole);
	cJSON_Delete(j);
	cf_jarena_release();
}
