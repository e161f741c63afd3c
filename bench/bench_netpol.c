/*
 * bench_netpol.c - what the live NetworkPolicy cache costs at scale:
 * 10,000 NetworkPolicies across 1,000 namespaces (10 each, label selectors
 * with matchLabels and matchExpressions), against a baseline of an empty
 * set, measured in the same run.
 *
 *   coverage   wh_netpol_coverage_for for a pod in one namespace, ns/op
 *   evaluate   wh_policy_evaluate (profile worker) of a worker pod, the
 *              whole decision an admission thread makes, ns/op
 *   acquire    wh_npcache_acquire + unref, what a reader pays for the
 *              snapshot, ns/op
 *   event      one watch event applied copy-on-write (clone the set, add
 *              one policy, publish), ms/op
 * (evaluation and coverage are also compared with a set holding only the
 * pod's own namespace, which isolates the cost of the other 9,990)
 *   memory     bytes the set holds (counted by glibc's allocator:
 *              mallinfo2 in-use bytes before and after building it), and
 *              the resident-set growth
 *
 * Prints each figure for the big set and the empty baseline and their
 * ratio. Thread-safety: single-threaded. Ownership: all freed at exit.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "wh_netpol.h"
#include "wh_npcache.h"
#include "wh_policy.h"

#define NAMESPACES    1000
#define PER_NAMESPACE 10

static const char POD_SPEC[] =
    "{\"automountServiceAccountToken\":false,\"securityContext\":{\"runAsNonRoot\":true,"
    "\"runAsUser\":10001,\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},"
    "\"containers\":[{\"name\":\"runner\",\"image\":\"ghcr.io/codeframe/worker:1.4.2\","
    "\"resources\":{\"limits\":{\"cpu\":\"2\",\"memory\":\"2Gi\"}},\"securityContext\":{"
    "\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,\"capabilities\":{"
    "\"drop\":[\"ALL\"]}}},{\"name\":\"sidecar\",\"image\":\"busybox\",\"resources\":{"
    "\"limits\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}},\"securityContext\":{"
    "\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,\"capabilities\":{"
    "\"drop\":[\"ALL\"]}}}]}";

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long size = 0, res = 0;
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Policy i of namespace n: a mix of what clusters hold - default deny
 * (empty selector), per-app matchLabels, and matchExpressions. */
static cJSON *policy(int n, int i)
{
	char buf[1024];
	const char *sel;
	char selbuf[512];
	switch (i % 4) {
	case 0:
		sel = "{}";
		break;
	case 1:
		snprintf(selbuf, sizeof selbuf,
		         "{\"matchLabels\":{\"app\":\"svc-%d\",\"tier\":\"%s\"}}", i,
		         i % 2 ? "web" : "db");
		sel = selbuf;
		break;
	case 2:
		snprintf(selbuf, sizeof selbuf,
		         "{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":"
		         "[\"svc-%d\",\"svc-%d\"]},{\"key\":\"canary\",\"operator\":"
		         "\"DoesNotExist\"}]}",
		         i, i + 1);
		sel = selbuf;
		break;
	default:
		snprintf(selbuf, sizeof selbuf,
		         "{\"matchLabels\":{\"codeframe.io/role\":\"job-%d\"}}", i);
		sel = selbuf;
		break;
	}
	snprintf(
	    buf, sizeof buf,
	    "{\"kind\":\"NetworkPolicy\",\"apiVersion\":\"networking.k8s.io/v1\","
	    "\"metadata\":{\"name\":\"np-%d\",\"namespace\":\"ns-%d\"},\"spec\":{"
	    "\"podSelector\":%s,\"policyTypes\":[\"Ingress\",\"Egress\"],\"ingress\":[{\"from\":"
	    "[{\"podSelector\":{\"matchLabels\":{\"app\":\"gateway\"}}}],\"ports\":[{\"port\":"
	    "8080}]}],\"egress\":[{\"to\":[{\"namespaceSelector\":{}}],\"ports\":[{\"port\":53,"
	    "\"protocol\":\"UDP\"}]}]}}",
	    i, n, sel);
	return cJSON_Parse(buf);
}

static wh_netpol_set *build(int first_ns, int namespaces, int per_ns)
{
	wh_netpol_set *set = wh_netpol_set_new();
	char err[256];
	for (int n = first_ns; set && n < first_ns + namespaces; n++)
		for (int i = 0; i < per_ns; i++) {
			cJSON *p = policy(n, i);
			if (!p || wh_netpol_set_add(set, p, err, sizeof err)) {
				fprintf(stderr, "bench_netpol: add failed: %s\n", err);
				exit(1);
			}
			cJSON_Delete(p);
		}
	return set;
}

static volatile int sink;

static double coverage_ns(const wh_netpol_set *set, const cJSON *labels, long iters)
{
	double best = 1e30;
	for (int r = 0; r < 5; r++) {
		double t0 = now_ns();
		for (long i = 0; i < iters; i++) {
			wh_netpol_coverage cov;
			wh_netpol_coverage_for(set, "ns-500", labels, &cov);
			sink += cov.ingress;
		}
		double d = (now_ns() - t0) / (double)iters;
		best = d < best ? d : best;
	}
	return best;
}

static double evaluate_ns(const wh_policy_config *cfg, const cJSON *pod, const wh_netpol_set *set,
                          long iters, size_t *violations)
{
	double best = 1e30;
	char err[256];
	for (int r = 0; r < 5; r++) {
		double t0 = now_ns();
		for (long i = 0; i < iters; i++) {
			wh_result res;
			wh_result_init(&res);
			if (wh_policy_evaluate(cfg, WH_PROFILE_WORKER, pod, NULL, set, &res, err,
			                       sizeof err)) {
				fprintf(stderr, "bench_netpol: evaluate failed: %s\n", err);
				exit(1);
			}
			*violations = res.n_violations;
			wh_result_free(&res);
		}
		double d = (now_ns() - t0) / (double)iters;
		best = d < best ? d : best;
	}
	return best;
}

static double acquire_ns(wh_npcache *c, long iters)
{
	double best = 1e30;
	for (int r = 0; r < 5; r++) {
		double t0 = now_ns();
		for (long i = 0; i < iters; i++)
			wh_netpol_set_unref(wh_npcache_acquire(c));
		double d = (now_ns() - t0) / (double)iters;
		best = d < best ? d : best;
	}
	return best;
}

/* One watch event: clone, add, publish (the old snapshot is dropped). */
static double event_ms(wh_npcache *c, wh_netpol_set **current, int rounds)
{
	cJSON *p = policy(500, 99);
	char err[256];
	double t0 = now_ns();
	for (int r = 0; r < rounds; r++) {
		wh_netpol_set *next = wh_netpol_set_clone(*current);
		if (!next || wh_netpol_set_add(next, p, err, sizeof err))
			exit(1);
		wh_npcache_publish(c, wh_netpol_set_ref(next));
		wh_netpol_set_unref(*current);
		*current = next;
	}
	cJSON_Delete(p);
	return (now_ns() - t0) / rounds / 1e6;
}

int main(void)
{
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	char podtext[4096];
	snprintf(podtext, sizeof podtext,
	         "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"w\","
	         "\"namespace\":\"ns-500\",\"labels\":{\"app\":\"svc-1\",\"tier\":\"web\"}},"
	         "\"spec\":%s}",
	         POD_SPEC);
	cJSON *pod = cJSON_Parse(podtext);
	cJSON *labels = cJSON_GetObjectItem(cJSON_GetObjectItem(pod, "metadata"), "labels");

	struct mallinfo2 m0 = mallinfo2();
	long rss0 = rss_kib();
	wh_netpol_set *big = build(0, NAMESPACES, PER_NAMESPACE);
	struct mallinfo2 m1 = mallinfo2();
	long rss1 = rss_kib();
	wh_netpol_set *empty = wh_netpol_set_new();
	struct mallinfo2 m2 = mallinfo2();

	size_t big_bytes = m1.uordblks - m0.uordblks;
	size_t empty_bytes = m2.uordblks - m1.uordblks;
	printf("NetworkPolicies: %zu across %d namespaces (baseline: empty set)\n",
	       wh_netpol_set_count(big), NAMESPACES);
	printf("memory: %zu bytes in use (%.0f bytes/policy), RSS +%ld KiB; empty set %zu bytes\n",
	       big_bytes, (double)big_bytes / (double)wh_netpol_set_count(big), rss1 - rss0,
	       empty_bytes);

	long iters = 200000;
	double cov_big = coverage_ns(big, labels, iters);
	double cov_empty = coverage_ns(empty, labels, iters);
	printf("coverage lookup:   %8.0f ns/op  (empty %6.0f ns/op)  ratio %6.2f\n", cov_big,
	       cov_empty, cov_big / cov_empty);

	size_t v_big = 0, v_empty = 0;
	double ev_big = evaluate_ns(&cfg, pod, big, 20000, &v_big);
	double ev_empty = evaluate_ns(&cfg, pod, empty, 20000, &v_empty);
	if (v_big != 0 || v_empty == 0) {
		fprintf(stderr,
		        "bench_netpol: expected the pod covered by the big set only (%zu/%zu)\n",
		        v_big, v_empty);
		return 1;
	}
	printf("worker evaluation: %8.0f ns/op  (empty %6.0f ns/op)  ratio %6.2f\n", ev_big,
	       ev_empty, ev_big / ev_empty);
	/* The empty set denies (and formats messages); the fairer baseline for
	 * the cost of scale is the pod's own namespace alone. */
	wh_netpol_set *own = build(500, 1, PER_NAMESPACE);
	size_t v_own = 0;
	double ev_own = evaluate_ns(&cfg, pod, own, 20000, &v_own);
	double cov_own = coverage_ns(own, labels, iters);
	printf("  vs only the pod's namespace (%d policies): evaluation %6.0f ns/op ratio %5.2f, "
	       "coverage %5.0f ns/op ratio %5.2f\n",
	       PER_NAMESPACE, ev_own, ev_big / ev_own, cov_own, cov_big / cov_own);
	wh_netpol_set_unref(own);

	wh_npcache *cache = wh_npcache_new();
	wh_npcache_publish(cache, wh_netpol_set_ref(big));
	double acq_big = acquire_ns(cache, 1000000);
	wh_npcache *cache0 = wh_npcache_new();
	wh_npcache_publish(cache0, wh_netpol_set_ref(empty));
	double acq_empty = acquire_ns(cache0, 1000000);
	printf("snapshot acquire:  %8.1f ns/op  (empty %6.1f ns/op)  ratio %6.2f\n", acq_big,
	       acq_empty, acq_big / acq_empty);

	wh_netpol_set *cur_big = wh_netpol_set_ref(big);
	wh_netpol_set *cur_empty = wh_netpol_set_ref(empty);
	double e_big = event_ms(cache, &cur_big, 20);
	double e_empty = event_ms(cache0, &cur_empty, 20);
	printf("watch event (clone+add+publish): %.3f ms/op  (empty %.4f ms/op)\n", e_big, e_empty);

	wh_netpol_set_unref(cur_big);
	wh_netpol_set_unref(cur_empty);
	wh_npcache_free(cache);
	wh_npcache_free(cache0);
	wh_netpol_set_unref(big);
	wh_netpol_set_unref(empty);
	cJSON_Delete(pod);
	wh_policy_config_free(&cfg);
	return 0;
}
