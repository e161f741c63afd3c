/* Tests for webhook/wh_watch: the incremental event parser (byte by byte,
 * random chunks, many events per read, hostile input) and the watch
 * against the fake API server (list + watch, ADDED/MODIFIED/DELETED,
 * bookmarks, pagination, 410 relist, cut and slow streams, 401, 500). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_limits.h"
#include "support/fake_apiserver.h"
#include "support/fake_ca.h"
#include "wh_netpol.h"
#include "wh_npcache.h"
#include "wh_watch.h"

static char err[1024];

/* ---- parser ----------------------------------------------------------- */

typedef struct seen {
	char types[256][16];
	char names[256][64];
	size_t n;
	int fail_at; /* 1-based event number whose callback fails, 0: never */
} seen;

static int record(void *ud, const char *type, const cJSON *object)
{
	seen *s = ud;
	if (s->fail_at && (int)s->n + 1 == s->fail_at)
		return -ECANCELED;
	if (s->n < 256) {
		snprintf(s->types[s->n], sizeof s->types[0], "%s", type);
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(object, "metadata"), "name");
		snprintf(s->names[s->n], sizeof s->names[0], "%s",
		         cJSON_IsString(n) ? n->valuestring : "");
	}
	s->n++;
	return 0;
}

static const char *types[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK"};

/* n events, the i-th of type types[i % 4] and name "p<i>", with a bulky
 * spec so that events are long. */
static char *stream_of(size_t n)
{
	cf_buf b;
	cf_buf_init(&b, 0);
	for (size_t i = 0; i < n; i++)
		cf_buf_appendf(&b,
		               "{\"type\":\"%s\",\"object\":{\"kind\":\"NetworkPolicy\","
		               "\"metadata\":{\"name\":\"p%zu\",\"namespace\":\"ns\","
		               "\"resourceVersion\":\"%zu\"},\"spec\":{\"podSelector\":{"
		               "\"matchLabels\":{\"app\":\"a\\n\\u00e9}{\"}}}}}\n",
		               types[i % 4], i, 100 + i);
	return cf_buf_steal(&b);
}

static void check_seen(const seen *s, size_t n)
{
	cr_assert_eq(s->n, n, "%zu events, expected %zu", s->n, n);
	for (size_t i = 0; i < n && i < 256; i++) {
		char name[32];
		snprintf(name, sizeof name, "p%zu", i);
		cr_assert_str_eq(s->types[i], types[i % 4]);
		cr_assert_str_eq(s->names[i], name);
	}
}

Test(parser, byte_by_byte)
{
	char *text = stream_of(9);
	seen s = {.n = 0};
	wh_watch_parser p;
	wh_watch_parser_init(&p, CF_KUBE_MAX_WATCH_EVENT_BYTES, record, &s);
	for (size_t i = 0; text[i]; i++)
		cr_assert_eq(wh_watch_parser_feed(&p, text + i, 1, err, sizeof err), 0, "%s", err);
	check_seen(&s, 9);
	cr_assert_eq(wh_watch_parser_pending(&p), 0);
	wh_watch_parser_free(&p);
	free(text);
}

Test(parser, random_chunks)
{
	char *text = stream_of(200);
	size_t len = strlen(text);
	for (unsigned seed = 1; seed <= 20; seed++) {
		seen s = {.n = 0};
		wh_watch_parser p;
		wh_watch_parser_init(&p, CF_KUBE_MAX_WATCH_EVENT_BYTES, record, &s);
		size_t off = 0;
		while (off < len) {
			size_t n = 1 + (size_t)(rand_r(&seed) % 700);
			if (n > len - off)
				n = len - off;
			cr_assert_eq(wh_watch_parser_feed(&p, text + off, n, err, sizeof err), 0,
			             "%s", err);
			off += n;
		}
		check_seen(&s, 200);
		wh_watch_parser_free(&p);
	}
	free(text);
}

Test(parser, many_events_in_one_read_and_split_tail)
{
	char *text = stream_of(50);
	size_t len = strlen(text);
	seen s = {.n = 0};
	wh_watch_parser p;
	wh_watch_parser_init(&p, CF_KUBE_MAX_WATCH_EVENT_BYTES, record, &s);
	/* All but the last 10 bytes at once, then the rest. */
	cr_assert_eq(wh_watch_parser_feed(&p, text, len - 10, err, sizeof err), 0);
	cr_assert_eq(s.n, 49);
	cr_assert_gt(wh_watch_parser_pending(&p), 0);
	cr_assert_eq(wh_watch_parser_feed(&p, text + len - 10, 10, err, sizeof err), 0);
	check_seen(&s, 50);
	wh_watch_parser_free(&p);
	free(text);
}

Test(parser, blank_lines_and_crlf)
{
	const char *t = "\n\r\n{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"p0\"}}}\r\n"
	                "  \n{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"p1\"}}}\n";
	seen s = {.n = 0};
	wh_watch_parser p;
	wh_watch_parser_init(&p, 1024, record, &s);
	cr_assert_eq(wh_watch_parser_feed(&p, t, strlen(t), err, sizeof err), 0, "%s", err);
	check_seen(&s, 2);
	wh_watch_parser_free(&p);
}

Test(parser_bad, oversized_event_in_pieces)
{
	seen s = {.n = 0};
	wh_watch_parser p;
	wh_watch_parser_init(&p, 64, record, &s);
	char chunk[16];
	memset(chunk, 'x', sizeof chunk);
	int rc = 0;
	size_t fed = 0;
	while (rc == 0 && fed < 10000) {
		rc = wh_watch_parser_feed(&p, chunk, sizeof chunk, err, sizeof err);
		fed += sizeof chunk;
		cr_assert_leq(wh_watch_parser_pending(&p), 64, "memory stays bounded");
	}
	cr_assert_eq(rc, -E2BIG);
	cr_assert(strstr(err, "over the limit of 64 bytes"), "%s", err);
	cr_assert_eq(s.n, 0);
	wh_watch_parser_free(&p);
}

Test(parser_bad, oversized_complete_line)
{
	seen s = {.n = 0};
	wh_watch_parser p;
	wh_watch_parser_init(&p, 32, record, &s);
	const char *t = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"long\"}}}\n";
	cr_assert_eq(wh_watch_parser_feed(&p, t, strlen(t), err, sizeof err), -E2BIG);
	wh_watch_parser_free(&p);
}

static void expect_proto(const char *t, const char *needle)
{
	seen s = {.n = 0};
	wh_watch_parser p;
	wh_watch_parser_init(&p, 4096, record, &s);
	cr_assert_eq(wh_watch_parser_feed(&p, t, strlen(t), err, sizeof err), -EPROTO, "%s", t);
	cr_assert(strstr(err, needle), "\"%s\" lacks \"%s\"", err, needle);
	cr_assert_eq(s.n, 0);
	wh_watch_parser_free(&p);
}

Test(parser_bad, not_json)
{
	expect_proto("{\"type\":\"ADDED\",\"object\":{\n", "not valid JSON");
	expect_proto("garbage\n", "not valid JSON");
	expect_proto("{\"type\":\"ADDED\"}{\"x\":1}\n", "not valid JSON");
}

Test(parser_bad, wrong_shape)
{
	expect_proto("{\"type\":\"ADDED\"}\n", "lacks");
	expect_proto("{\"type\":1,\"object\":{}}\n", "lacks");
	expect_proto("{\"type\":\"ADDED\",\"object\":[]}\n", "lacks");
	expect_proto("[1,2]\n", "lacks");
	expect_proto("\"ADDED\"\n", "lacks");
}

Test(parser_bad, callback_error_stops_feed)
{
	char *text = stream_of(5);
	seen s = {.fail_at = 3};
	wh_watch_parser p;
	wh_watch_parser_init(&p, 4096, record, &s);
	cr_assert_eq(wh_watch_parser_feed(&p, text, strlen(text), err, sizeof err), -ECANCELED);
	cr_assert_eq(s.n, 2);
	wh_watch_parser_free(&p);
	free(text);
}

/* ---- the watch against the fake API server ----------------------------- */

#define NP WH_WATCH_NETPOL_PATH

static fake_ca ca;
static fake_apiserver *fs;
static wh_npcache *cache;
static wh_watch *watch;

static void setup(void)
{
	cr_assert_eq(fake_ca_create(&ca, "watcher", err, sizeof err), 0, "%s", err);
	fs = fake_apiserver_start(&ca, "tok", err, sizeof err);
	cr_assert_not_null(fs, "%s", err);
	cache = wh_npcache_new();
	cr_assert_not_null(cache);
}

static void teardown(void)
{
	wh_watch_stop(watch);
	watch = NULL;
	wh_npcache_free(cache);
	fake_apiserver_stop(fs);
	fake_ca_destroy(&ca);
}

static void start_watch(const char *token)
{
	cf_kube_config k;
	cf_kube_config_init(&k);
	snprintf(k.server, sizeof k.server, "%s", fake_apiserver_url(fs));
	k.ca_pem = strdup(ca.ca_pem);
	k.ca_len = strlen(ca.ca_pem);
	k.token = strdup(token);
	wh_watch_options o = {.kube = &k,
	                      .cache = cache,
	                      .timeout_seconds = 30,
	                      .backoff_base_ms = 20,
	                      .backoff_max_ms = 200};
	watch = wh_watch_start(&o, err, sizeof err);
	cf_kube_config_free(&k);
	cr_assert_not_null(watch, "%s", err);
}

static void put_policy(const char *ns, const char *name, const char *app, const char *types_json)
{
	char j[1024];
	snprintf(j, sizeof j,
	         "{\"kind\":\"NetworkPolicy\",\"apiVersion\":\"networking.k8s.io/v1\","
	         "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{\"podSelector\":"
	         "{\"matchLabels\":{\"app\":\"%s\"}},\"policyTypes\":%s}}",
	         name, ns, app, types_json);
	cr_assert_gt(fake_apiserver_put(fs, NP, j), 0);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls (bounded: 10 s) until the cache holds `n` policies. */
static bool wait_count(size_t n)
{
	long end = now_ms() + 10000;
	while (now_ms() < end) {
		wh_netpol_set *s = wh_npcache_acquire(cache);
		size_t c = s ? wh_netpol_set_count(s) : (size_t)-1;
		wh_netpol_set_unref(s);
		if (c == n)
			return true;
		usleep(5000);
	}
	return false;
}

static bool covered(const char *ns, const char *app)
{
	wh_netpol_set *s = wh_npcache_acquire(cache);
	if (!s)
		return false;
	cJSON *labels = cJSON_CreateObject();
	cJSON_AddStringToObject(labels, "app", app);
	wh_netpol_coverage cov;
	wh_netpol_coverage_for(s, ns, labels, &cov);
	cJSON_Delete(labels);
	wh_netpol_set_unref(s);
	return cov.ingress;
}

static bool wait_covered(const char *ns, const char *app, bool want)
{
	long end = now_ms() + 10000;
	while (now_ms() < end) {
		if (covered(ns, app) == want)
			return true;
		usleep(5000);
	}
	return false;
}

static wh_watch_stats stats(void)
{
	wh_watch_stats st;
	wh_watch_stats_get(watch, &st);
	return st;
}

static bool wait_watches(unsigned n)
{
	long end = now_ms() + 10000;
	while (now_ms() < end) {
		fake_apiserver_stats st;
		fake_apiserver_stats_get(fs, &st);
		if (st.watches >= n && st.watches_active >= 1)
			return true;
		usleep(5000);
	}
	return false;
}

Test(watch, list_then_added_modified_deleted, .init = setup, .fini = teardown)
{
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	put_policy("ns2", "b", "db", "[\"Ingress\",\"Egress\"]");
	long list_rv = fake_apiserver_resource_version(fs);
	start_watch("tok");
	cr_assert(wait_count(2));
	cr_assert(wh_npcache_synced(cache));
	cr_assert(covered("ns1", "web"));
	cr_assert_not(covered("ns1", "db"), "namespaces are separate");
	cr_assert(wait_watches(1));
	fake_apiserver_stats fst;
	fake_apiserver_stats_get(fs, &fst);
	char rv[32];
	snprintf(rv, sizeof rv, "%ld", list_rv);
	cr_assert_str_eq(fst.last_watch_rv, rv, "the watch starts at the list's resourceVersion");
	cr_assert(fst.last_watch_bookmarks);

	put_policy("ns1", "c", "api", "[\"Ingress\"]"); /* ADDED */
	cr_assert(wait_count(3));
	cr_assert(covered("ns1", "api"));
	put_policy("ns1", "c", "worker", "[\"Ingress\"]"); /* MODIFIED */
	cr_assert(wait_covered("ns1", "worker", true));
	cr_assert_not(covered("ns1", "api"), "the old selector is gone");
	cr_assert_gt(fake_apiserver_delete(fs, NP, "ns1", "c"), 0); /* DELETED */
	cr_assert(wait_count(2));
	cr_assert_not(covered("ns1", "worker"));
	wh_watch_stats st = stats();
	cr_assert_eq(st.lists, 1);
	cr_assert_eq(st.relists, 0);
	cr_assert_geq(st.events, 3);
	snprintf(rv, sizeof rv, "%ld", fake_apiserver_resource_version(fs));
	cr_assert_str_eq(st.resource_version, rv);
}

Test(watch, empty_cluster_syncs, .init = setup, .fini = teardown)
{
	cr_assert_not(wh_npcache_synced(cache));
	start_watch("tok");
	cr_assert(wait_count(0));
	cr_assert(wh_npcache_synced(cache), "an empty list is a sync too");
}

Test(watch, paginated_list, .init = setup, .fini = teardown)
{
	for (int i = 0; i < 1100; i++) {
		char ns[32], name[32];
		snprintf(ns, sizeof ns, "ns%d", i % 37);
		snprintf(name, sizeof name, "p%d", i);
		put_policy(ns, name, "x", "[\"Ingress\"]");
	}
	start_watch("tok");
	cr_assert(wait_count(1100));
	fake_apiserver_stats fst;
	fake_apiserver_stats_get(fs, &fst);
	cr_assert_geq(fst.lists, 3, "1100 items in pages of %u", CF_KUBE_LIST_PAGE_ITEMS);
	cr_assert_neq(fst.last_list_continue[0], '\0');
}

Test(watch, bookmark_advances_resource_version, .init = setup, .fini = teardown)
{
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	start_watch("tok");
	cr_assert(wait_count(1));
	cr_assert(wait_watches(1));
	/* Changes elsewhere move the version; a bookmark tells the watch. */
	cr_assert_gt(fake_apiserver_put(fs, "/api/v1/secrets",
	                                "{\"metadata\":{\"name\":\"s\",\"namespace\":\"x\"}}"),
	             0);
	fake_apiserver_bookmark(fs, NP);
	long rv = fake_apiserver_resource_version(fs);
	char want[32];
	snprintf(want, sizeof want, "%ld", rv);
	long end = now_ms() + 10000;
	while (now_ms() < end && strcmp(stats().resource_version, want))
		usleep(5000);
	cr_assert_str_eq(stats().resource_version, want);
	fake_apiserver_end_watches(fs);
	cr_assert(wait_watches(2));
	fake_apiserver_stats fst;
	fake_apiserver_stats_get(fs, &fst);
	cr_assert_str_eq(fst.last_watch_rv, want, "resumed from the bookmark");
	cr_assert_eq(stats().lists, 1, "a clean end is resumed, not relisted");
}

Test(watch, expired_error_event_relists, .init = setup, .fini = teardown)
{
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	start_watch("tok");
	cr_assert(wait_count(1));
	cr_assert(wait_watches(1));
	fake_apiserver_add_fault(fs, FAKE_FAULT_WATCH_EXPIRED);
	fake_apiserver_end_watches(fs);
	long end = now_ms() + 10000;
	while (now_ms() < end && stats().lists < 2)
		usleep(5000);
	wh_watch_stats st = stats();
	cr_assert_eq(st.lists, 2);
	cr_assert_eq(st.relists, 1);
	cr_assert(strstr(st.last_error, "410"), "%s", st.last_error);
	/* And the watch carries on afterwards. */
	put_policy("ns1", "b", "db", "[\"Ingress\"]");
	cr_assert(wait_count(2));
}

Test(watch, compacted_history_relists, .init = setup, .fini = teardown)
{
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	start_watch("tok");
	cr_assert(wait_count(1));
	cr_assert(wait_watches(1));
	/* Versions move on without the watch seeing them (another
	 * resource), then history is compacted: resuming is too old. */
	cr_assert_gt(fake_apiserver_put(fs, "/api/v1/secrets",
	                                "{\"metadata\":{\"name\":\"s\",\"namespace\":\"x\"}}"),
	             0);
	fake_apiserver_compact(fs);
	fake_apiserver_end_watches(fs);
	long end = now_ms() + 10000;
	while (now_ms() < end && stats().relists < 1)
		usleep(5000);
	cr_assert_eq(stats().relists, 1);
	cr_assert(wait_count(1));
}

Test(watch, http_410_relists, .init = setup, .fini = teardown)
{
	start_watch("tok");
	cr_assert(wait_count(0));
	cr_assert(wait_watches(1));
	fake_apiserver_add_fault(fs, FAKE_FAULT_WATCH_GONE_HTTP);
	fake_apiserver_end_watches(fs);
	long end = now_ms() + 10000;
	while (now_ms() < end && stats().lists < 2)
		usleep(5000);
	cr_assert_eq(stats().relists, 1);
}

Test(watch, cut_stream_reconnects_and_loses_nothing, .init = setup, .fini = teardown)
{
	start_watch("tok");
	cr_assert(wait_count(0));
	cr_assert(wait_watches(1));
	fake_apiserver_add_fault(fs, FAKE_FAULT_WATCH_CUT);
	fake_apiserver_end_watches(fs);
	cr_assert(wait_watches(2));
	/* The second watch is cut halfway through this event; the third
	 * resumes from the version before it and delivers it whole. */
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	cr_assert(wait_count(1));
	cr_assert(covered("ns1", "web"));
	wh_watch_stats st = stats();
	cr_assert_eq(st.lists, 1, "a cut stream is resumed, not relisted");
	cr_assert_geq(st.errors, 1);
	cr_assert_geq(st.watches, 3);
}

Test(watch, slow_stream_tiny_pieces, .init = setup, .fini = teardown)
{
	start_watch("tok");
	cr_assert(wait_count(0));
	cr_assert(wait_watches(1));
	fake_apiserver_add_fault(fs, FAKE_FAULT_WATCH_SLOW);
	fake_apiserver_end_watches(fs);
	cr_assert(wait_watches(2));
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	put_policy("ns1", "b", "db", "[\"Ingress\"]");
	cr_assert(wait_count(2));
	cr_assert(covered("ns1", "db"));
	cr_assert_eq(stats().errors, 0);
}

Test(watch_bad, unauthorized_is_a_clear_error_and_recovers, .init = setup, .fini = teardown)
{
	start_watch("wrong-token");
	long end = now_ms() + 10000;
	while (now_ms() < end && stats().errors < 2)
		usleep(5000);
	wh_watch_stats st = stats();
	cr_assert_geq(st.errors, 2, "retried with backoff");
	cr_assert(strstr(st.last_error, "HTTP 401: Unauthorized"), "%s", st.last_error);
	cr_assert(strstr(st.last_error, NP), "%s", st.last_error);
	cr_assert_not(wh_npcache_synced(cache), "never synced: admission follows the config");
	cr_assert_null(wh_npcache_acquire(cache));
	/* The server starts accepting the token (e.g. RBAC fixed). */
	fake_apiserver_set_token(fs, "wrong-token");
	cr_assert(wait_count(0));
	cr_assert(stats().synced);
}

Test(watch_bad, list_500_is_retried, .init = setup, .fini = teardown)
{
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	fake_apiserver_add_fault(fs, FAKE_FAULT_LIST_500);
	fake_apiserver_add_fault(fs, FAKE_FAULT_LIST_500);
	start_watch("tok");
	cr_assert(wait_count(1));
	wh_watch_stats st = stats();
	cr_assert_eq(st.errors, 2);
	cr_assert(strstr(st.last_error, "HTTP 500: injected fault"), "%s", st.last_error);
}

Test(watch_bad, malformed_policy_is_left_out, .init = setup, .fini = teardown)
{
	put_policy("ns1", "good", "web", "[\"Ingress\"]");
	cr_assert_gt(
	    fake_apiserver_put(fs, NP,
	                       "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"bad\","
	                       "\"namespace\":\"ns1\"},\"spec\":{\"podSelector\":{"
	                       "\"matchExpressions\":[{\"key\":\"a\",\"operator\":"
	                       "\"Bogus\"}]}}}"),
	    0);
	start_watch("tok");
	cr_assert(wait_count(1));
	cr_assert(covered("ns1", "web"));
	/* A good policy turning bad on the watch is removed, not kept stale. */
	cr_assert_gt(
	    fake_apiserver_put(fs, NP,
	                       "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"good\","
	                       "\"namespace\":\"ns1\"},\"spec\":{\"podSelector\":{"
	                       "\"matchExpressions\":[{\"key\":\"a\",\"operator\":"
	                       "\"In\"}]}}}"),
	    0);
	cr_assert(wait_count(0));
}

Test(watch_bad, unreachable_server_stops_promptly)
{
	cache = wh_npcache_new();
	cf_kube_config k;
	cf_kube_config_init(&k);
	snprintf(k.server, sizeof k.server, "https://127.0.0.1:1");
	wh_watch_options o = {
	    .kube = &k, .cache = cache, .backoff_base_ms = 10, .backoff_max_ms = 50};
	wh_watch *w = wh_watch_start(&o, err, sizeof err);
	cr_assert_not_null(w, "%s", err);
	long end = now_ms() + 10000;
	wh_watch_stats st;
	do {
		usleep(5000);
		wh_watch_stats_get(w, &st);
	} while (now_ms() < end && st.errors < 3);
	cr_assert_geq(st.errors, 3);
	cr_assert(strstr(st.last_error, "127.0.0.1:1"), "%s", st.last_error);
	wh_watch_stop(w);
	cr_assert_not(wh_npcache_synced(cache));
	wh_npcache_free(cache);
	cache = NULL;
}

Test(watch_bad, start_needs_config_and_cache)
{
	wh_watch_options o = {.kube = NULL, .cache = NULL};
	cr_assert_null(wh_watch_start(&o, err, sizeof err));
	cr_assert(strstr(err, "required"));
	cf_kube_config k;
	cf_kube_config_init(&k); /* no server */
	wh_npcache *c = wh_npcache_new();
	o.kube = &k;
	o.cache = c;
	cr_assert_null(wh_watch_start(&o, err, sizeof err));
	cr_assert(strstr(err, "no API server URL"), "%s", err);
	wh_npcache_free(c);
}

static bool wait_stat(unsigned long *(*field)(wh_watch_stats *), unsigned long want)
{
	long end = now_ms() + 10000;
	while (now_ms() < end) {
		wh_watch_stats st = stats();
		if (*field(&st) >= want)
			return true;
		usleep(5000);
	}
	return false;
}

static unsigned long *f_lists(wh_watch_stats *s)
{
	return &s->lists;
}

static unsigned long *f_errors(wh_watch_stats *s)
{
	return &s->errors;
}

Test(watch_bad, garbage_event_relists, .init = setup, .fini = teardown)
{
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	start_watch("tok");
	cr_assert(wait_count(1));
	cr_assert(wait_watches(1));
	fake_apiserver_inject_raw(fs, NP, "{\"type\":\"ADDED\",\"object\":{\"kind\":");
	cr_assert(wait_stat(f_lists, 2), "an unreadable event means a lost event: relist");
	cr_assert(strstr(stats().last_error, "not valid JSON"), "%s", stats().last_error);
	put_policy("ns1", "b", "db", "[\"Ingress\"]");
	cr_assert(wait_count(2));
}

Test(watch_bad, unknown_type_and_missing_version_relist, .init = setup, .fini = teardown)
{
	start_watch("tok");
	cr_assert(wait_count(0));
	cr_assert(wait_watches(1));
	fake_apiserver_inject_raw(fs, NP, "{\"type\":\"RENAMED\",\"object\":{}}");
	cr_assert(wait_stat(f_lists, 2));
	cr_assert(strstr(stats().last_error, "unknown watch event type \"RENAMED\""), "%s",
	          stats().last_error);
	cr_assert(wait_watches(2));
	fake_apiserver_inject_raw(fs, NP,
	                          "{\"type\":\"ADDED\",\"object\":{\"kind\":\"NetworkPolicy\","
	                          "\"metadata\":{\"name\":\"x\",\"namespace\":\"n\"},\"spec\":{"
	                          "\"podSelector\":{}}}}");
	cr_assert(wait_stat(f_lists, 3));
	cr_assert(strstr(stats().last_error, "resourceVersion"), "%s", stats().last_error);
	cr_assert(wait_count(0), "the unversioned policy was not kept");
}

Test(watch_bad, error_event_other_than_410_reconnects, .init = setup, .fini = teardown)
{
	start_watch("tok");
	cr_assert(wait_count(0));
	cr_assert(wait_watches(1));
	fake_apiserver_inject_raw(
	    fs, NP,
	    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
	    "\"v1\",\"status\":\"Failure\",\"message\":\"etcd is sad\","
	    "\"reason\":\"InternalError\",\"code\":500}}");
	cr_assert(wait_stat(f_errors, 1));
	cr_assert(strstr(stats().last_error, "code 500: etcd is sad"), "%s", stats().last_error);
	cr_assert(wait_watches(2));
	put_policy("ns1", "a", "web", "[\"Ingress\"]");
	cr_assert(wait_count(1));
	cr_assert_eq(stats().lists, 1, "resumed, not relisted");
	cr_assert_eq(stats().relists, 0);
}

Test(watch_bad, expired_continue_restarts_the_list, .init = setup, .fini = teardown)
{
	for (int i = 0; i < 700; i++) {
		char name[32];
		snprintf(name, sizeof name, "p%d", i);
		put_policy("ns1", name, "x", "[\"Ingress\"]");
	}
	fake_apiserver_add_fault(fs, FAKE_FAULT_CONTINUE_EXPIRED);
	start_watch("tok");
	cr_assert(wait_count(700), "a complete list, never half of one");
	wh_watch_stats st = stats();
	cr_assert_eq(st.errors, 1);
	cr_assert(strstr(st.last_error, "HTTP 410"), "%s", st.last_error);
	cr_assert_eq(st.lists, 1);
}
