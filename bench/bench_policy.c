/*
 * bench_policy.c - what a policy decision costs, relative to the JSON work
 * every admission request pays anyway.
 *
 * Measures, in one run on the same input (a typical 3-container worker pod:
 * one initContainer, two containers, with the NetworkPolicy set it is
 * checked against):
 *   eval      wh_policy_evaluate on the parsed pod (profile worker), ns/op
 *   baseline  cJSON_Parse + cJSON_PrintUnformatted + cJSON_Delete of the
 *             same JSON text, ns/op
 * and prints eval/baseline. `--only eval|baseline --iterations N` runs one
 * loop with nothing else timed, for bench_policy.sh to count instructions
 * under callgrind. `--only review` and `--only review-arena` run what the
 * server does per /validate request short of HTTP, TLS and the log line:
 * wh_admission_parse of an AdmissionReview wrapping the same pod,
 * wh_admission_decide (default config, profile worker),
 * wh_admission_response and the frees; review-arena with the cJSON arena
 * the server installs (cf_jarena.h), review without it.
 * Thread-safety: single-threaded. Ownership: everything freed at exit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cf_jarena.h"
#include "wh_admission.h"
#include "wh_netpol.h"
#include "wh_policy.h"

static const char POD_JSON[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"codeframe-worker-7f3a9\","
    "\"namespace\":\"codeframe-workers\",\"labels\":{\"app.kubernetes.io/name\":"
    "\"codeframe-worker\",\"codeframe.io/role\":\"worker\"},\"annotations\":{"
    "\"codeframe.io/project-id\":\"proj-1234\",\"codeframe.io/user-id\":\"user-42\"}},"
    "\"spec\":{\"automountServiceAccountToken\":false,\"restartPolicy\":\"Never\","
    "\"securityContext\":{\"runAsNonRoot\":true,\"runAsUser\":10001,\"runAsGroup\":10001,"
    "\"fsGroup\":10001,\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},"
    "\"initContainers\":[{\"name\":\"fetch-sources\",\"image\":\"docker.io/alpine/git:2.45.2\","
    "\"args\":[\"clone\",\"--depth=1\",\"https://git.example.com/acme/shop.git\","
    "\"/workspace/src\"],\"resources\":{\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"},"
    "\"limits\":{\"cpu\":\"500m\",\"memory\":\"256Mi\"}},\"securityContext\":{"
    "\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,\"capabilities\":{"
    "\"drop\":[\"ALL\"]}},\"volumeMounts\":[{\"name\":\"workspace\",\"mountPath\":"
    "\"/workspace\"}]}],"
    "\"containers\":[{\"name\":\"runner\",\"image\":\"ghcr.io/codeframe/worker:1.4.2\","
    "\"command\":[\"/usr/local/bin/codeframe-worker\"],\"args\":[\"--task-id\",\"t-8812\"],"
    "\"env\":[{\"name\":\"CODEFRAME_PROJECT_ID\",\"value\":\"proj-1234\"},{\"name\":"
    "\"CODEFRAME_USER_ID\",\"value\":\"user-42\"},{\"name\":\"HOME\",\"value\":\"/tmp\"}],"
    "\"resources\":{\"requests\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"},\"limits\":{"
    "\"cpu\":\"2\",\"memory\":\"2Gi\",\"ephemeral-storage\":\"1Gi\"}},\"securityContext\":{"
    "\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,\"capabilities\":{"
    "\"drop\":[\"ALL\"]}},\"volumeMounts\":[{\"name\":\"workspace\",\"mountPath\":"
    "\"/workspace\"},{\"name\":\"tmp\",\"mountPath\":\"/tmp\"}]},"
    "{\"name\":\"log-shipper\",\"image\":\"docker.io/fluent/fluent-bit:3.1.4\","
    "\"args\":[\"-i\",\"tail\",\"-o\",\"stdout\"],\"resources\":{\"requests\":{\"cpu\":"
    "\"50m\",\"memory\":\"32Mi\"},\"limits\":{\"cpu\":\"200m\",\"memory\":\"128Mi\"}},"
    "\"securityContext\":{\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,"
    "\"capabilities\":{\"drop\":[\"ALL\"]}},\"volumeMounts\":[{\"name\":\"workspace\","
    "\"mountPath\":\"/workspace\",\"readOnly\":true}]}],"
    "\"volumes\":[{\"name\":\"workspace\",\"emptyDir\":{\"sizeLimit\":\"2Gi\"}},{\"name\":"
    "\"tmp\",\"emptyDir\":{\"medium\":\"Memory\",\"sizeLimit\":\"256Mi\"}}]}}";

/* The pod's own two policies, plus policies of other namespaces that a
 * cluster-wide set also holds. */
static const char *const NETPOLS[] = {
    "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"deny-ingress\",\"namespace\":"
    "\"codeframe-workers\"},\"spec\":{\"podSelector\":{\"matchLabels\":{"
    "\"codeframe.io/role\":\"worker\"}},\"policyTypes\":[\"Ingress\"]}}",
    "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"egress-dns\",\"namespace\":"
    "\"codeframe-workers\"},\"spec\":{\"podSelector\":{\"matchExpressions\":[{\"key\":"
    "\"codeframe.io/role\",\"operator\":\"In\",\"values\":[\"worker\"]}]},\"policyTypes\":["
    "\"Egress\"],\"egress\":[{\"to\":[{\"namespaceSelector\":{\"matchLabels\":{"
    "\"kubernetes.io/metadata.name\":\"kube-system\"}}}],\"ports\":[{\"protocol\":\"UDP\","
    "\"port\":53}]}]}}",
};
#define OTHER_NAMESPACES 8

enum { RUN_BOTH, RUN_EVAL, RUN_BASELINE, RUN_REVIEW, RUN_REVIEW_ARENA };

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile size_t sink;

static int eval_loop(const wh_policy_config *cfg, const cJSON *pod, const wh_netpol_set *set,
                     long n)
{
	char err[256];
	for (long i = 0; i < n; i++) {
		wh_result r;
		wh_result_init(&r);
		if (wh_policy_evaluate(cfg, WH_PROFILE_WORKER, pod, NULL, set, &r, err,
		                       sizeof err) != 0) {
			fprintf(stderr, "bench_policy: evaluate failed: %s\n", err);
			return -EINVAL;
		}
		sink += r.n_violations + r.n_warnings;
		wh_result_free(&r);
	}
	return 0;
}

static int baseline_loop(long n)
{
	for (long i = 0; i < n; i++) {
		cJSON *j = cJSON_Parse(POD_JSON);
		char *s = j ? cJSON_PrintUnformatted(j) : NULL;
		if (!s) {
			cJSON_Delete(j);
			return -ENOMEM;
		}
		sink += strlen(s);
		free(s);
		cJSON_Delete(j);
	}
	return 0;
}

/* One /validate request's admission work on `review`. */
static int review_loop(const wh_config *cfg, const char *review, const wh_netpol_set *set, long n)
{
	char err[256];
	size_t len = strlen(review);
	for (long i = 0; i < n; i++) {
		wh_admission_request req;
		wh_admission_decision d;
		if (wh_admission_parse(review, len, &req, err, sizeof err)) {
			fprintf(stderr, "bench_policy: review rejected: %s\n", err);
			return -EINVAL;
		}
		int rc = wh_admission_decide(cfg, &req, set, &d);
		size_t tlen = 0;
		char *text = rc == 0 ? wh_admission_response(&req, &d, &tlen) : NULL;
		if (rc == 0) {
			sink += d.result.n_violations;
			wh_admission_decision_free(&d);
		}
		wh_admission_request_free(&req);
		if (!text) {
			fprintf(stderr, "bench_policy: decide/response failed\n");
			return -EINVAL;
		}
		sink += tlen;
		free(text);
	}
	return 0;
}

static char *build_review(void)
{
	static const char head[] =
	    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{"
	    "\"uid\":\"3f1c2a9e-0d2b-4b8e-9a41-5c6d7e8f9a01\",\"kind\":{\"group\":\"\","
	    "\"version\":\"v1\",\"kind\":\"Pod\"},\"resource\":{\"group\":\"\",\"version\":"
	    "\"v1\",\"resource\":\"pods\"},\"namespace\":\"codeframe-workers\",\"operation\":"
	    "\"CREATE\",\"userInfo\":{\"username\":\"system:serviceaccount:codeframe:"
	    "orchestrator\",\"groups\":[\"system:serviceaccounts\"]},\"object\":";
	static const char tail[] =
	    ",\"oldObject\":null,\"dryRun\":false,\"options\":{"
	    "\"apiVersion\":\"meta.k8s.io/v1\",\"kind\":\"CreateOptions\"}}}";
	size_t n = sizeof head - 1 + strlen(POD_JSON) + sizeof tail;
	char *r = malloc(n);
	if (r)
		snprintf(r, n, "%s%s%s", head, POD_JSON, tail);
	return r;
}

static wh_netpol_set *build_set(void)
{
	wh_netpol_set *set = wh_netpol_set_new();
	char err[256], text[512];
	for (size_t i = 0; set && i < sizeof NETPOLS / sizeof NETPOLS[0]; i++) {
		cJSON *j = cJSON_Parse(NETPOLS[i]);
		int rc = j ? wh_netpol_set_add(set, j, err, sizeof err) : -ENOMEM;
		cJSON_Delete(j);
		if (rc)
			goto fail;
	}
	for (int i = 0; set && i < OTHER_NAMESPACES; i++) {
		snprintf(text, sizeof text,
		         "{\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"default-deny\","
		         "\"namespace\":\"team-%d\"},\"spec\":{\"podSelector\":{},"
		         "\"policyTypes\":[\"Ingress\",\"Egress\"]}}",
		         i);
		cJSON *j = cJSON_Parse(text);
		int rc = j ? wh_netpol_set_add(set, j, err, sizeof err) : -ENOMEM;
		cJSON_Delete(j);
		if (rc)
			goto fail;
	}
	return set;
fail:
	fprintf(stderr, "bench_policy: cannot build the NetworkPolicy set\n");
	wh_netpol_set_unref(set);
	return NULL;
}

/* Best of `rounds` timings (the machine is shared; the minimum is the
 * least disturbed), in ns per operation. */
static double best_ns(int which, const wh_policy_config *cfg, const cJSON *pod,
                      const wh_netpol_set *set, long n, int rounds)
{
	double best = -1;
	for (int r = 0; r < rounds; r++) {
		double t0 = now_ns();
		int rc = which == RUN_EVAL ? eval_loop(cfg, pod, set, n) : baseline_loop(n);
		double dt = (now_ns() - t0) / (double)n;
		if (rc)
			return -1;
		if (best < 0 || dt < best)
			best = dt;
	}
	return best;
}

int main(int argc, char **argv)
{
	int only = RUN_BOTH;
	long iterations = 20000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			const char *m = argv[++i];
			only = !strcmp(m, "eval")           ? RUN_EVAL
			       : !strcmp(m, "baseline")     ? RUN_BASELINE
			       : !strcmp(m, "review")       ? RUN_REVIEW
			       : !strcmp(m, "review-arena") ? RUN_REVIEW_ARENA
			                                    : -1;
		} else if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
			char *end;
			iterations = strtol(argv[++i], &end, 10);
			if (*end || iterations < 0)
				only = -1;
		} else {
			only = -1;
		}
		if (only < 0) {
			fprintf(stderr,
			        "usage: bench_policy [--only eval|baseline|review|review-arena] "
			        "[--iterations N]\n");
			return 2;
		}
	}
	int status = 1;
	wh_policy_config cfg;
	wh_policy_config_defaults(&cfg);
	cJSON *pod = cJSON_Parse(POD_JSON);
	wh_netpol_set *set = build_set();
	if (!pod || !set)
		goto fail;
	/* Warm-up, and a check that the sample really is a passing worker:
	 * timing an early error path would measure nothing. */
	if (eval_loop(&cfg, pod, set, 1))
		goto fail;
	if (sink != 0) {
		fprintf(stderr, "bench_policy: the sample pod has findings; fix the sample\n");
		goto fail;
	}
	if (only == RUN_EVAL) {
		status = eval_loop(&cfg, pod, set, iterations) ? 1 : 0;
		goto fail;
	}
	if (only == RUN_BASELINE) {
		status = baseline_loop(iterations) ? 1 : 0;
		goto fail;
	}
	if (only == RUN_REVIEW || only == RUN_REVIEW_ARENA) {
		if (only == RUN_REVIEW_ARENA && cf_jarena_install())
			goto fail;
		wh_config *wcfg = wh_config_new_default();
		char *review = build_review();
		/* The sample is a compliant worker: allowed, nothing found. */
		status = wcfg && review && review_loop(wcfg, review, set, 1) == 0 && sink > 0 &&
		                 review_loop(wcfg, review, set, iterations) == 0
		             ? 0
		             : 1;
		free(review);
		wh_config_unref(wcfg);
		goto fail;
	}
	double eval = best_ns(RUN_EVAL, &cfg, pod, set, iterations, 5);
	double base = best_ns(RUN_BASELINE, &cfg, pod, set, iterations, 5);
	if (eval < 0 || base < 0)
		goto fail;
	printf("pod: 3 containers, %zu bytes of JSON; %zu NetworkPolicies in the set\n",
	       strlen(POD_JSON), wh_netpol_set_count(set));
	printf("evaluate (profile worker):        %10.0f ns/op\n", eval);
	printf("baseline cJSON parse+print+free:  %10.0f ns/op\n", base);
	printf("ratio evaluate/baseline:          %10.2f  (best of 5 x %ld iterations)\n",
	       eval / base, iterations);
	status = 0;
fail:
	wh_netpol_set_unref(set);
	cJSON_Delete(pod);
	wh_policy_config_free(&cfg);
	return status;
}
