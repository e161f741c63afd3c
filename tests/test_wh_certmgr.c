/* Tests for webhook/wh_certmgr and webhook/wh_pki against the fake API
 * server: first start, adoption by a second replica, racing creates, leaf
 * renewal, CA rollover (both CAs in the bundle until the switch), API
 * outages, and every kind of broken Secret, 403 and missing configuration.
 * Validity periods are seconds here, so renewal runs in bounded time. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <gnutls/x509.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cf_kube.h"
#include "cf_log.h"
#include "support/fake_apiserver.h"
#include "support/fake_ca.h"
#include "wh_certmgr.h"
#include "wh_pki.h"
#include "wh_tls.h"

#define SECRETS "/api/v1/secrets"
#define VWCS    "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"

static char err[2048];
static fake_ca ca;
static fake_apiserver *fs;
static cf_kube_config kc;
static const char *const names[] = {"hook", "hook.guard", "hook.guard.svc"};

static void put_vwc(int hooks)
{
	char json[1024];
	int n =
	    snprintf(json, sizeof json, "{\"metadata\":{\"name\":\"guard-vwc\"},\"webhooks\":[");
	for (int i = 0; i < hooks; i++)
		n += snprintf(json + n, sizeof json - (size_t)n,
		              "%s{\"name\":\"w%d.codeframe.io\",\"clientConfig\":{\"service\":{"
		              "\"namespace\":\"guard\",\"name\":\"hook\"}}}",
		              i ? "," : "", i);
	snprintf(json + n, sizeof json - (size_t)n, "]}");
	cr_assert_gt(fake_apiserver_put(fs, VWCS, json), 0);
}

static void setup(void)
{
	cf_log_set_stream(fopen("/dev/null", "w"));
	cr_assert_eq(fake_ca_create(&ca, "alice", err, sizeof err), 0, "%s", err);
	fs = fake_apiserver_start(&ca, "tok", err, sizeof err);
	cr_assert_not_null(fs, "%s", err);
	cf_kube_config_init(&kc);
	snprintf(kc.server, sizeof kc.server, "%s", fake_apiserver_url(fs));
	kc.ca_pem = strdup(ca.ca_pem);
	kc.ca_len = strlen(ca.ca_pem);
	kc.token = strdup("tok");
	kc.timeout_ms = 5000;
	put_vwc(2);
}

static void teardown(void)
{
	cf_kube_config_free(&kc);
	fake_apiserver_stop(fs);
	fs = NULL;
	fake_ca_destroy(&ca);
}

typedef struct replica {
	wh_tls_store *store;
	wh_certmgr *m;
} replica;

static void replica_new(replica *r, int64_t ca_s, int64_t leaf_s, unsigned prop_s)
{
	r->store = wh_tls_store_new_memory();
	cr_assert_not_null(r->store);
	wh_certmgr_options o = {.kube = &kc,
	                        .secret_namespace = "guard",
	                        .secret_name = "guard-tls",
	                        .webhook_config = "guard-vwc",
	                        .service = "hook",
	                        .ca_validity_s = ca_s,
	                        .leaf_validity_s = leaf_s,
	                        .propagation_s = prop_s,
	                        .interval_s = 1,
	                        .tls = r->store};
	r->m = wh_certmgr_new(&o, err, sizeof err);
	cr_assert_not_null(r->m, "%s", err);
}

static void replica_free(replica *r)
{
	wh_certmgr_free(r->m);
	wh_tls_store_free(r->store);
}

/* A Secret data value, decoded (caller frees), or NULL. */
static char *secret_value(const char *key)
{
	char *text = fake_apiserver_get(fs, SECRETS, "guard", "guard-tls");
	if (!text)
		return NULL;
	cJSON *o = cJSON_Parse(text);
	free(text);
	const cJSON *v =
	    cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "data"), key);
	char *out = NULL;
	if (cJSON_IsString(v)) {
		unsigned char *buf = malloc(strlen(v->valuestring) + 1);
		int n = EVP_DecodeBlock(buf, (const unsigned char *)v->valuestring,
		                        (int)strlen(v->valuestring));
		if (n >= 0) {
			out = calloc(1, (size_t)n + 1);
			memcpy(out, buf, (size_t)n);
		}
		free(buf);
	}
	cJSON_Delete(o);
	return out;
}

static char *secret_type(void)
{
	char *text = fake_apiserver_get(fs, SECRETS, "guard", "guard-tls");
	if (!text)
		return NULL;
	cJSON *o = cJSON_Parse(text);
	free(text);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
	char *out = cJSON_IsString(t) ? strdup(t->valuestring) : NULL;
	cJSON_Delete(o);
	return out;
}

/* caBundle of webhook i, decoded (caller frees), or NULL. */
static char *vwc_bundle(int i)
{
	char *text = fake_apiserver_get(fs, VWCS, "", "guard-vwc");
	cJSON *o = cJSON_Parse(text);
	free(text);
	const cJSON *cab = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(
	        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "webhooks"), i),
	        "clientConfig"),
	    "caBundle");
	char *out = NULL;
	if (cJSON_IsString(cab)) {
		size_t l = strlen(cab->valuestring);
		unsigned char *buf = malloc(l + 1);
		int n = EVP_DecodeBlock(buf, (const unsigned char *)cab->valuestring, (int)l);
		if (n >= 0) {
			out = calloc(1, (size_t)n + 1);
			memcpy(out, buf, (size_t)n);
		}
		free(buf);
	}
	cJSON_Delete(o);
	return out;
}

static size_t count_certs(const char *pem)
{
	size_t n = 0;
	for (const char *p = pem; p && (p = strstr(p, "BEGIN CERTIFICATE")); p++)
		n++;
	return n;
}

/* The served leaf as PEM (caller frees), or NULL when nothing is served. */
static char *served_pem(wh_tls_store *s)
{
	wh_tls_cred *c = wh_tls_store_acquire(s);
	if (!c)
		return NULL;
	unsigned n;
	gnutls_pcert_st *pc = wh_tls_cred_pcerts(c, &n);
	gnutls_x509_crt_t crt;
	gnutls_datum_t out = {NULL, 0};
	gnutls_x509_crt_init(&crt);
	gnutls_x509_crt_import(crt, &pc[0].cert, GNUTLS_X509_FMT_DER);
	gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &out);
	gnutls_x509_crt_deinit(crt);
	wh_tls_cred_unref(c);
	char *s2 = calloc(1, out.size + 1);
	memcpy(s2, out.data, out.size);
	gnutls_free(out.data);
	return s2;
}

/* The invariant: what the replica serves chains to a CA in the caBundle
 * of every webhook. */
static bool served_in_bundle(wh_tls_store *s)
{
	char *leaf = served_pem(s);
	if (!leaf)
		return true; /* serving nothing is allowed */
	bool ok = true;
	for (int i = 0; i < 2 && ok; i++) {
		char *b = vwc_bundle(i);
		wh_pki_bundle bb;
		bool found = false;
		if (b && wh_pki_bundle_parse(b, strlen(b), &bb, err, sizeof err) == 0) {
			for (size_t k = 0; k < bb.n && !found; k++)
				found =
				    wh_pki_verify_leaf(leaf, bb.certs[k].pem, names, 3,
				                       (int64_t)time(NULL), err, sizeof err) == 0;
			wh_pki_bundle_free(&bb);
		}
		free(b);
		ok = found;
	}
	free(leaf);
	return ok;
}

/* ---- positive ------------------------------------------------------------ */

Test(certmgr, first_start_creates_everything, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_not(wh_certmgr_ready(r.m));
	cr_assert_not(wh_tls_store_has_cred(r.store));
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	cr_assert(wh_certmgr_ready(r.m));
	char *type = secret_type();
	cr_assert_str_eq(type, "kubernetes.io/tls");
	free(type);
	char *crt = secret_value("tls.crt"), *key = secret_value("tls.key");
	char *cab = secret_value("ca.crt"), *cak = secret_value("ca.key");
	cr_assert(crt && key && cab && cak);
	cr_assert_eq(count_certs(cab), 1);
	cr_assert_eq(wh_pki_verify_leaf(crt, cab, names, 3, (int64_t)time(NULL), err, sizeof err),
	             0, "%s", err);
	cr_assert_eq(wh_pki_key_matches(crt, key, err, sizeof err), 0, "%s", err);
	for (int i = 0; i < 2; i++) {
		char *b = vwc_bundle(i);
		cr_assert_str_eq(b, cab, "webhook %d", i);
		free(b);
	}
	char *served = served_pem(r.store);
	cr_assert_str_eq(served, crt);
	/* Defaults: leaf about 90 days, CA about 5 years. */
	wh_certmgr_stats st;
	wh_certmgr_stats_get(r.m, &st);
	int64_t now = (int64_t)time(NULL);
	cr_assert(st.leaf_not_after > now + 89 * 86400 && st.leaf_not_after <= now + 90 * 86400);
	cr_assert(st.ca_not_after > now + 4 * 365 * 86400);
	cr_assert_eq(st.secret_writes, 1);
	cr_assert_eq(st.vwc_patches, 1);
	/* A second pass changes nothing. */
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	wh_certmgr_stats_get(r.m, &st);
	cr_assert_eq(st.secret_writes, 1);
	cr_assert_eq(st.vwc_patches, 1);
	cr_assert_eq(st.rotations, 0);
	free(served);
	free(crt);
	free(key);
	free(cab);
	free(cak);
	replica_free(&r);
}

/* Namespace and Service names may be 63 characters each: the CA's name
 * must still fit a certificate's 64-character CommonName. */
Test(certmgr, long_namespace_and_service_names_fit_the_ca_name, .init = setup, .fini = teardown)
{
	static const char ns[] = "a-namespace-name-that-is-sixty-three-characters-long-0123456789";
	static const char svc[] = "a-service-name-that-is-also-sixty-three-characters-long-0123456";
	cr_assert_eq(strlen(ns), 63);
	cr_assert_eq(strlen(svc), 63);
	wh_tls_store *store = wh_tls_store_new_memory();
	wh_certmgr_options o = {.kube = &kc,
	                        .secret_namespace = ns,
	                        .secret_name = "guard-tls",
	                        .webhook_config = "guard-vwc",
	                        .service = svc,
	                        .interval_s = 1,
	                        .tls = store};
	wh_certmgr *m = wh_certmgr_new(&o, err, sizeof err);
	cr_assert_not_null(m, "%s", err);
	cr_assert_eq(wh_certmgr_sync(m, err, sizeof err), 0, "%s", err);
	cr_assert(wh_certmgr_ready(m));
	cr_assert(wh_tls_store_has_cred(store));
	wh_certmgr_free(m);
	wh_tls_store_free(store);
}

Test(certmgr, second_replica_adopts_the_secret, .init = setup, .fini = teardown)
{
	replica a, b;
	replica_new(&a, 0, 0, 0);
	replica_new(&b, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(a.m, err, sizeof err), 0, "%s", err);
	long rv = fake_apiserver_resource_version(fs);
	cr_assert_eq(wh_certmgr_sync(b.m, err, sizeof err), 0, "%s", err);
	cr_assert_eq(fake_apiserver_resource_version(fs), rv, "the second replica wrote");
	wh_certmgr_stats st;
	wh_certmgr_stats_get(b.m, &st);
	cr_assert_eq(st.secret_writes, 0);
	cr_assert_eq(st.vwc_patches, 0);
	char *pa = served_pem(a.store), *pb = served_pem(b.store);
	cr_assert_str_eq(pa, pb);
	free(pa);
	free(pb);
	replica_free(&a);
	replica_free(&b);
}

static pthread_barrier_t race_barrier;

static void *race_sync(void *arg)
{
	replica *r = arg;
	char e[1024];
	pthread_barrier_wait(&race_barrier);
	return (void *)(intptr_t)wh_certmgr_sync(r->m, e, sizeof e);
}

Test(certmgr, racing_replicas_create_exactly_one_ca, .init = setup, .fini = teardown)
{
	enum { N = 4 };
	replica r[N];
	pthread_t t[N];
	for (int i = 0; i < N; i++)
		replica_new(&r[i], 0, 0, 0);
	pthread_barrier_init(&race_barrier, NULL, N);
	for (int i = 0; i < N; i++)
		pthread_create(&t[i], NULL, race_sync, &r[i]);
	for (int i = 0; i < N; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		cr_assert_eq((intptr_t)rc, 0, "replica %d", i);
	}
	pthread_barrier_destroy(&race_barrier);
	char *cab = secret_value("ca.crt"), *crt = secret_value("tls.crt");
	cr_assert_eq(count_certs(cab), 1);
	unsigned long writes = 0;
	for (int i = 0; i < N; i++) {
		char *p = served_pem(r[i].store);
		cr_assert_str_eq(p, crt, "replica %d serves another leaf", i);
		free(p);
		wh_certmgr_stats st;
		wh_certmgr_stats_get(r[i].m, &st);
		writes += st.secret_writes;
		cr_assert(served_in_bundle(r[i].store));
	}
	cr_assert_eq(writes, 1, "exactly one create succeeded");
	free(cab);
	free(crt);
	for (int i = 0; i < N; i++)
		replica_free(&r[i]);
}

Test(certmgr, expiring_leaf_is_renewed, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 600, 3, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	char *first = served_pem(r.store), *ca1 = secret_value("ca.crt");
	sleep(3); /* past 2/3 of 3 s */
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	char *second = served_pem(r.store), *ca2 = secret_value("ca.crt");
	cr_assert_str_neq(first, second);
	cr_assert_str_eq(ca1, ca2, "a leaf renewal must not touch the CA");
	wh_certmgr_stats st;
	wh_certmgr_stats_get(r.m, &st);
	cr_assert_eq(st.rotations, 1);
	cr_assert(served_in_bundle(r.store));
	free(first);
	free(second);
	free(ca1);
	free(ca2);
	replica_free(&r);
}

Test(certmgr, ca_rollover_keeps_both_cas_until_the_switch, .init = setup, .fini = teardown)
{
	/* CA 8 s (renewed at ~5.3 s), leaf 4 s, propagation 2 s; two replicas
	 * syncing in turn, the invariant checked after every step. */
	replica a, b;
	replica_new(&a, 8, 4, 2);
	replica_new(&b, 8, 4, 2);
	cr_assert_eq(wh_certmgr_sync(a.m, err, sizeof err), 0, "%s", err);
	char *ca_orig = secret_value("ca.key");
	bool saw_two = false, switched = false, retired = false, switched_with_two = false;
	for (int step = 0; step < 60 && !retired; step++) {
		replica *r = step % 2 ? &b : &a;
		cr_assert_eq(wh_certmgr_sync(r->m, err, sizeof err), 0, "step %d: %s", step, err);
		cr_assert(served_in_bundle(a.store), "step %d: replica a", step);
		cr_assert(served_in_bundle(b.store), "step %d: replica b", step);
		char *cab = secret_value("ca.crt"), *cak = secret_value("ca.key");
		size_t n = count_certs(cab);
		if (n == 2)
			saw_two = true;
		if (!switched && strcmp(cak, ca_orig) != 0) {
			switched = true;
			switched_with_two = n == 2;
		}
		if (switched && n == 1)
			retired = true;
		free(cab);
		free(cak);
		usleep(250 * 1000);
	}
	cr_assert(saw_two, "the new CA never joined the bundle");
	cr_assert(switched, "leaves never switched to the new CA");
	cr_assert(switched_with_two, "the switch happened without both CAs in the bundle");
	cr_assert(retired, "the old CA was never retired");
	free(ca_orig);
	replica_free(&a);
	replica_free(&b);
}

Test(certmgr, api_outage_keeps_serving, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	char *before = served_pem(r.store);
	fake_apiserver_set_down(fs, 503, NULL);
	cr_assert_neq(wh_certmgr_sync(r.m, err, sizeof err), 0);
	cr_assert(strstr(err, "503"), "%s", err);
	cr_assert(wh_certmgr_ready(r.m), "an outage must not make a serving replica unready");
	char *during = served_pem(r.store);
	cr_assert_str_eq(before, during);
	wh_certmgr_stats st;
	wh_certmgr_stats_get(r.m, &st);
	cr_assert_geq(st.api_errors, 1);
	cr_assert_str_neq(st.last_error, "");
	fake_apiserver_set_down(fs, 0, NULL);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	free(before);
	free(during);
	replica_free(&r);
}

Test(certmgr, update_conflict_is_adopted, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 600, 3, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	sleep(3);
	fake_apiserver_add_fault(fs, FAKE_FAULT_UPDATE_CONFLICT);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	wh_certmgr_stats st;
	wh_certmgr_stats_get(r.m, &st);
	cr_assert_geq(st.conflicts, 1);
	cr_assert_eq(st.rotations, 1);
	replica_free(&r);
}

Test(certmgr, webhook_configuration_conflict_is_retried, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	/* The POST of the Secret does not consume it; the caBundle PATCH does. */
	fake_apiserver_add_fault(fs, FAKE_FAULT_UPDATE_CONFLICT);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	wh_certmgr_stats st;
	wh_certmgr_stats_get(r.m, &st);
	cr_assert_eq(st.conflicts, 1);
	cr_assert_eq(st.vwc_patches, 1);
	cr_assert(served_in_bundle(r.store));
	replica_free(&r);
}

Test(certmgr, reset_cabundle_is_written_again, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	/* An upgrade that templates the configuration without caBundle. */
	char *text = fake_apiserver_get(fs, VWCS, "", "guard-vwc");
	cJSON *o = cJSON_Parse(text);
	free(text);
	cJSON *hooks = cJSON_GetObjectItemCaseSensitive(o, "webhooks");
	cJSON *cc = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(hooks, 1), "clientConfig");
	cJSON_DeleteItemFromObjectCaseSensitive(cc, "caBundle");
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cr_assert_gt(fake_apiserver_put(fs, VWCS, json), 0);
	free(json);
	char *gone = vwc_bundle(1);
	cr_assert_null(gone);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	char *back = vwc_bundle(1), *cab = secret_value("ca.crt");
	cr_assert_str_eq(back, cab);
	wh_certmgr_stats st;
	wh_certmgr_stats_get(r.m, &st);
	cr_assert_eq(st.vwc_patches, 2);
	cr_assert_eq(st.secret_writes, 1);
	free(back);
	free(cab);
	replica_free(&r);
}

Test(certmgr, thread_serves_and_stops, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_start(r.m, err, sizeof err), 0, "%s", err);
	for (int i = 0; i < 100 && !wh_certmgr_ready(r.m); i++)
		usleep(50 * 1000);
	cr_assert(wh_certmgr_ready(r.m));
	replica_free(&r); /* joins the thread */
}

/* ---- negative ------------------------------------------------------------ */

static void put_secret(const char *type, const char *data_json)
{
	char json[8192];
	snprintf(json, sizeof json,
	         "{\"metadata\":{\"name\":\"guard-tls\",\"namespace\":\"guard\"},\"type\":\"%s\","
	         "\"data\":%s}",
	         type, data_json);
	cr_assert_gt(fake_apiserver_put(fs, SECRETS, json), 0);
}

/* A broken Secret is replaced by a fresh CA and leaf, and served. */
static void expect_repaired(void)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	cr_assert(wh_certmgr_ready(r.m));
	char *cab = secret_value("ca.crt"), *crt = secret_value("tls.crt");
	cr_assert_not_null(cab);
	cr_assert_eq(wh_pki_verify_leaf(crt, cab, names, 3, (int64_t)time(NULL), err, sizeof err),
	             0, "%s", err);
	cr_assert(served_in_bundle(r.store));
	free(cab);
	free(crt);
	replica_free(&r);
}

Test(certmgr_bad, undecodable_secret_data_is_repaired, .init = setup, .fini = teardown)
{
	put_secret("kubernetes.io/tls", "{\"tls.crt\":\"!!!not base64\",\"tls.key\":\"\"}");
	expect_repaired();
}

Test(certmgr_bad, missing_keys_are_repaired, .init = setup, .fini = teardown)
{
	put_secret("kubernetes.io/tls", "{\"tls.crt\":\"\",\"tls.key\":\"\"}");
	expect_repaired();
}

Test(certmgr_bad, garbage_pem_is_repaired, .init = setup, .fini = teardown)
{
	/* "garbage" and "-----BEGIN CERTIFICATE-----\nAAAA\n" in base64 */
	put_secret("kubernetes.io/tls",
	           "{\"tls.crt\":\"Z2FyYmFnZQ==\",\"tls.key\":\"Z2FyYmFnZQ==\","
	           "\"ca.crt\":\"LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkFBQUEK\","
	           "\"ca.key\":\"Z2FyYmFnZQ==\"}");
	expect_repaired();
}

Test(certmgr_bad, ca_key_matching_no_ca_is_repaired, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	replica_free(&r);
	/* Swap ca.key for an unrelated key. */
	wh_pki_pair other;
	cr_assert_eq(wh_pki_make_ca("other", WH_PKI_EC_P256, (int64_t)time(NULL), 3600, &other, err,
	                            sizeof err),
	             0);
	char *text = fake_apiserver_get(fs, SECRETS, "guard", "guard-tls");
	cJSON *o = cJSON_Parse(text);
	free(text);
	cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
	unsigned char enc[8192];
	EVP_EncodeBlock(enc, (const unsigned char *)other.key_pem, (int)strlen(other.key_pem));
	cJSON_ReplaceItemInObjectCaseSensitive(data, "ca.key", cJSON_CreateString((char *)enc));
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cr_assert_gt(fake_apiserver_put(fs, SECRETS, json), 0);
	free(json);
	char *old_ca = secret_value("ca.crt");
	expect_repaired();
	char *new_ca = secret_value("ca.crt");
	cr_assert_str_neq(old_ca, new_ca);
	free(old_ca);
	free(new_ca);
	wh_pki_pair_free(&other);
}

Test(certmgr_bad, leaf_from_a_foreign_ca_is_reissued, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	replica_free(&r);
	wh_pki_pair other, leaf;
	int64_t now = (int64_t)time(NULL);
	cr_assert_eq(wh_pki_make_ca("other", WH_PKI_EC_P256, now, 3600, &other, err, sizeof err),
	             0);
	cr_assert_eq(
	    wh_pki_issue_leaf(&other, names, 3, WH_PKI_EC_P256, now, 600, &leaf, err, sizeof err),
	    0);
	char *text = fake_apiserver_get(fs, SECRETS, "guard", "guard-tls");
	cJSON *o = cJSON_Parse(text);
	free(text);
	cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
	unsigned char enc[8192];
	EVP_EncodeBlock(enc, (const unsigned char *)leaf.cert_pem, (int)strlen(leaf.cert_pem));
	cJSON_ReplaceItemInObjectCaseSensitive(data, "tls.crt", cJSON_CreateString((char *)enc));
	EVP_EncodeBlock(enc, (const unsigned char *)leaf.key_pem, (int)strlen(leaf.key_pem));
	cJSON_ReplaceItemInObjectCaseSensitive(data, "tls.key", cJSON_CreateString((char *)enc));
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cr_assert_gt(fake_apiserver_put(fs, SECRETS, json), 0);
	free(json);
	char *ca_before = secret_value("ca.crt");
	expect_repaired();
	char *ca_after = secret_value("ca.crt"), *crt = secret_value("tls.crt");
	cr_assert_str_eq(ca_before, ca_after, "only the leaf should be reissued");
	cr_assert_str_neq(crt, leaf.cert_pem);
	free(ca_before);
	free(ca_after);
	free(crt);
	wh_pki_pair_free(&other);
	wh_pki_pair_free(&leaf);
}

Test(certmgr_bad, wrong_secret_type_is_refused, .init = setup, .fini = teardown)
{
	put_secret("Opaque", "{\"foo\":\"YmFy\"}");
	long rv = fake_apiserver_resource_version(fs);
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), -ENOTSUP, "%s", err);
	cr_assert(strstr(err, "Opaque") && strstr(err, "immutable"), "%s", err);
	cr_assert_not(wh_certmgr_ready(r.m));
	cr_assert_not(wh_tls_store_has_cred(r.store));
	cr_assert_eq(fake_apiserver_resource_version(fs), rv, "the Secret was touched");
	replica_free(&r);
}

Test(certmgr_bad, forbidden_secret_access, .init = setup, .fini = teardown)
{
	fake_apiserver_set_down(fs, 403, "/secrets");
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), -EPERM, "%s", err);
	cr_assert(strstr(err, "403"), "%s", err);
	cr_assert_not(wh_certmgr_ready(r.m));
	cr_assert_not(wh_tls_store_has_cred(r.store));
	wh_certmgr_stats st;
	wh_certmgr_stats_get(r.m, &st);
	cr_assert_eq(st.api_errors, 1);
	replica_free(&r);
}

Test(certmgr_bad, forbidden_webhook_configuration_patch, .init = setup, .fini = teardown)
{
	fake_apiserver_set_down(fs, 403, "validatingwebhookconfigurations");
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), -EPERM, "%s", err);
	cr_assert_not(wh_certmgr_ready(r.m), "served although the caBundle is not known");
	cr_assert_not(wh_tls_store_has_cred(r.store));
	replica_free(&r);
}

Test(certmgr_bad, absent_webhook_configuration, .init = setup, .fini = teardown)
{
	cr_assert_gt(fake_apiserver_delete(fs, VWCS, "", "guard-vwc"), 0);
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), -ENOENT, "%s", err);
	cr_assert(strstr(err, "guard-vwc") && strstr(err, "not found"), "%s", err);
	cr_assert_not(wh_certmgr_ready(r.m));
	cr_assert_not(wh_tls_store_has_cred(r.store));
	replica_free(&r);
}

Test(certmgr_bad, webhook_configuration_without_webhooks, .init = setup, .fini = teardown)
{
	put_vwc(0);
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), -EINVAL, "%s", err);
	cr_assert(strstr(err, "no webhooks"), "%s", err);
	cr_assert_not(wh_certmgr_ready(r.m));
	replica_free(&r);
}

Test(certmgr_bad, newer_bundle_in_configuration_is_not_overwritten, .init = setup, .fini = teardown)
{
	replica r;
	replica_new(&r, 0, 0, 0);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), 0, "%s", err);
	/* Pretend another replica published generation 99 of this Secret. */
	char *text = fake_apiserver_get(fs, VWCS, "", "guard-vwc");
	cJSON *o = cJSON_Parse(text);
	free(text);
	cJSON *anns = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(o, "metadata"), "annotations");
	const cJSON *stamp = cJSON_GetObjectItemCaseSensitive(anns, WH_CERTMGR_ANN_VWC);
	char fresh[300];
	snprintf(fresh, sizeof fresh, "%.*s:99",
	         (int)(strrchr(stamp->valuestring, ':') - stamp->valuestring), stamp->valuestring);
	cJSON_ReplaceItemInObjectCaseSensitive(anns, WH_CERTMGR_ANN_VWC, cJSON_CreateString(fresh));
	cJSON *hooks = cJSON_GetObjectItemCaseSensitive(o, "webhooks");
	cJSON *cc = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(hooks, 0), "clientConfig");
	cJSON_ReplaceItemInObjectCaseSensitive(cc, "caBundle", cJSON_CreateString("bmV3ZXI="));
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cr_assert_gt(fake_apiserver_put(fs, VWCS, json), 0);
	free(json);
	cr_assert_eq(wh_certmgr_sync(r.m, err, sizeof err), -EAGAIN, "%s", err);
	char *b = vwc_bundle(0);
	cr_assert_str_eq(b, "newer", "an older bundle was written over a newer one");
	free(b);
	replica_free(&r);
}

Test(certmgr_bad, invalid_options_are_refused, .init = setup, .fini = teardown)
{
	wh_tls_store *s = wh_tls_store_new_memory();
	wh_certmgr_options o = {.kube = &kc,
	                        .secret_namespace = "guard",
	                        .secret_name = "guard-tls",
	                        .webhook_config = "guard-vwc",
	                        .service = "hook",
	                        .ca_validity_s = 100,
	                        .leaf_validity_s = 60,
	                        .tls = s};
	cr_assert_null(wh_certmgr_new(&o, err, sizeof err));
	cr_assert(strstr(err, "twice"), "%s", err);
	o.ca_validity_s = 0;
	o.leaf_validity_s = 0;
	o.service = "Bad_Name";
	cr_assert_null(wh_certmgr_new(&o, err, sizeof err));
	cr_assert(strstr(err, "Service"), "%s", err);
	o.service = "hook";
	o.secret_namespace = "a.b";
	cr_assert_null(wh_certmgr_new(&o, err, sizeof err));
	o.secret_namespace = "guard";
	o.tls = NULL;
	cr_assert_null(wh_certmgr_new(&o, err, sizeof err));
	wh_tls_store_free(s);
}

/* ---- wh_pki -------------------------------------------------------------- */

Test(pki, key_types_parse)
{
	wh_pki_key_type t;
	cr_assert_eq(wh_pki_key_type_parse("ecdsa-p256", &t), 0);
	cr_assert_eq(t, WH_PKI_EC_P256);
	cr_assert_eq(wh_pki_key_type_parse("rsa-3072", &t), 0);
	cr_assert_str_eq(wh_pki_key_type_name(t), "rsa-3072");
	cr_assert_eq(wh_pki_key_type_parse("rsa-1024", &t), -EINVAL);
	cr_assert_eq(wh_pki_key_type_parse("", &t), -EINVAL);
}

Test(pki, rsa_ca_and_leaf)
{
	wh_pki_pair cap, leaf;
	int64_t now = (int64_t)time(NULL);
	cr_assert_eq(wh_pki_make_ca("rsa", WH_PKI_RSA_2048, now, 7200, &cap, err, sizeof err), 0,
	             "%s", err);
	cr_assert_eq(
	    wh_pki_issue_leaf(&cap, names, 3, WH_PKI_RSA_2048, now, 600, &leaf, err, sizeof err), 0,
	    "%s", err);
	cr_assert_eq(
	    wh_pki_verify_leaf(leaf.cert_pem, cap.cert_pem, names, 3, now, err, sizeof err), 0,
	    "%s", err);
	cr_assert_eq(wh_pki_key_matches(leaf.cert_pem, leaf.key_pem, err, sizeof err), 0);
	/* The store accepts it too. */
	wh_tls_store *s = wh_tls_store_new_memory();
	cr_assert_eq(wh_tls_store_set_pem(s, leaf.cert_pem, strlen(leaf.cert_pem), leaf.key_pem,
	                                  strlen(leaf.key_pem), err, sizeof err),
	             0, "%s", err);
	cr_assert(wh_tls_store_has_cred(s));
	wh_tls_store_free(s);
	wh_pki_pair_free(&cap);
	wh_pki_pair_free(&leaf);
}

Test(pki, leaf_never_outlives_its_ca)
{
	wh_pki_pair cap, leaf;
	int64_t now = (int64_t)time(NULL);
	cr_assert_eq(wh_pki_make_ca("c", WH_PKI_EC_P256, now, 100, &cap, err, sizeof err), 0);
	cr_assert_eq(
	    wh_pki_issue_leaf(&cap, names, 1, WH_PKI_EC_P256, now, 1000, &leaf, err, sizeof err),
	    0);
	wh_pki_bundle b;
	cr_assert_eq(wh_pki_bundle_parse(leaf.cert_pem, strlen(leaf.cert_pem), &b, err, sizeof err),
	             0);
	cr_assert_leq(b.certs[0].not_after, now + 100);
	cr_assert_not(b.certs[0].is_ca);
	wh_pki_bundle_free(&b);
	wh_pki_pair_free(&cap);
	wh_pki_pair_free(&leaf);
}

Test(pki_bad, bundle_garbage_empty_and_too_many)
{
	wh_pki_bundle b;
	cr_assert_eq(wh_pki_bundle_parse("", 0, &b, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "no certificate"), "%s", err);
	cr_assert_eq(wh_pki_bundle_parse("garbage", 7, &b, err, sizeof err), -EINVAL);
	const char *half = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	cr_assert_eq(wh_pki_bundle_parse(half, strlen(half), &b, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "cannot be decoded"), "%s", err);
	wh_pki_pair c;
	cr_assert_eq(
	    wh_pki_make_ca("c", WH_PKI_EC_P256, (int64_t)time(NULL), 100, &c, err, sizeof err), 0);
	size_t l = strlen(c.cert_pem);
	char *many = calloc(1, l * 9 + 1);
	for (int i = 0; i < 9; i++)
		memcpy(many + (size_t)i * l, c.cert_pem, l);
	cr_assert_eq(wh_pki_bundle_parse(many, strlen(many), &b, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "more than"), "%s", err);
	/* A certificate followed by trailing junk. */
	memcpy(many + l, "junk", 5);
	cr_assert_eq(wh_pki_bundle_parse(many, strlen(many), &b, err, sizeof err), -EINVAL);
	free(many);
	wh_pki_pair_free(&c);
}

Test(pki_bad, key_mismatch_and_weak_keys)
{
	wh_pki_pair a, b;
	int64_t now = (int64_t)time(NULL);
	cr_assert_eq(wh_pki_make_ca("a", WH_PKI_EC_P256, now, 100, &a, err, sizeof err), 0);
	cr_assert_eq(wh_pki_make_ca("b", WH_PKI_EC_P256, now, 100, &b, err, sizeof err), 0);
	cr_assert_eq(wh_pki_key_matches(a.cert_pem, b.key_pem, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "does not match"), "%s", err);
	cr_assert_eq(wh_pki_key_matches(a.cert_pem, "garbage", err, sizeof err), -EINVAL);
	EVP_PKEY *weak = EVP_RSA_gen(1024);
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_PrivateKey(bio, weak, NULL, NULL, 0, NULL, NULL);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *pem = calloc(1, (size_t)n + 1);
	memcpy(pem, data, (size_t)n);
	cr_assert_eq(wh_pki_key_matches(a.cert_pem, pem, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "1024"), "%s", err);
	free(pem);
	BIO_free(bio);
	EVP_PKEY_free(weak);
	wh_pki_pair_free(&a);
	wh_pki_pair_free(&b);
}

Test(pki_bad, leaf_checks_fail)
{
	wh_pki_pair a, b, leaf;
	int64_t now = (int64_t)time(NULL);
	cr_assert_eq(wh_pki_make_ca("a", WH_PKI_EC_P256, now, 1000, &a, err, sizeof err), 0);
	cr_assert_eq(wh_pki_make_ca("b", WH_PKI_EC_P256, now, 1000, &b, err, sizeof err), 0);
	cr_assert_eq(
	    wh_pki_issue_leaf(&a, names, 2, WH_PKI_EC_P256, now, 100, &leaf, err, sizeof err), 0);
	cr_assert_eq(wh_pki_verify_leaf(leaf.cert_pem, b.cert_pem, names, 2, now, err, sizeof err),
	             -EINVAL);
	cr_assert(strstr(err, "not signed"), "%s", err);
	cr_assert_eq(wh_pki_verify_leaf(leaf.cert_pem, a.cert_pem, names, 3, now, err, sizeof err),
	             -EINVAL, "a leaf without the .svc name passed");
	cr_assert(strstr(err, "hook.guard.svc"), "%s", err);
	cr_assert_eq(
	    wh_pki_verify_leaf(leaf.cert_pem, a.cert_pem, names, 2, now + 200, err, sizeof err),
	    -EKEYEXPIRED);
	cr_assert_eq(wh_pki_verify_leaf(a.cert_pem, a.cert_pem, names, 1, now, err, sizeof err),
	             -EINVAL, "a CA passed as a leaf");
	const char *bad[] = {"a,b"};
	wh_pki_pair unused;
	cr_assert_eq(
	    wh_pki_issue_leaf(&a, bad, 1, WH_PKI_EC_P256, now, 100, &unused, err, sizeof err),
	    -EINVAL);
	cr_assert_eq(wh_pki_make_ca("x", WH_PKI_EC_P256, now, 0, &unused, err, sizeof err),
	             -EINVAL);
	wh_pki_pair_free(&a);
	wh_pki_pair_free(&b);
	wh_pki_pair_free(&leaf);
}

Test(pki_bad, memory_store_refuses_broken_pairs)
{
	wh_tls_store *s = wh_tls_store_new_memory();
	cr_assert_null(wh_tls_store_acquire(s));
	cr_assert_eq(wh_tls_store_set_pem(s, "garbage", 7, "garbage", 7, err, sizeof err), -EINVAL);
	cr_assert_not(wh_tls_store_has_cred(s));
	wh_pki_pair a, b;
	int64_t now = (int64_t)time(NULL);
	cr_assert_eq(wh_pki_make_ca("a", WH_PKI_EC_P256, now, 100, &a, err, sizeof err), 0);
	cr_assert_eq(wh_pki_make_ca("b", WH_PKI_EC_P256, now, 100, &b, err, sizeof err), 0);
	cr_assert_eq(wh_tls_store_set_pem(s, a.cert_pem, strlen(a.cert_pem), b.key_pem,
	                                  strlen(b.key_pem), err, sizeof err),
	             -EINVAL);
	cr_assert(strstr(err, "does not match"), "%s", err);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), 0);
	wh_pki_pair_free(&a);
	wh_pki_pair_free(&b);
	wh_tls_store_free(s);
}
