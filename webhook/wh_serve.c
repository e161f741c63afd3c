/*
 * wh_serve.c - `codeframe-webhook serve`: the admission server.
 *
 * Wires the pieces: the config (file and flags; swapped whole on SIGHUP,
 * reference-counted so requests in flight keep theirs), the certificate
 * store (polled every second, see wh_tls.h), the NetworkPolicy snapshot
 * (wh_npcache, published once from --network-policies files and again on
 * SIGHUP, or by the live watch, wh_watch.h, with API access), the
 * metrics registry and the HTTP front end (wh_http.h).
 *
 * One JSON line per decision on stdout (cf_log); start-up and reload
 * errors are JSON lines too. Never whole objects, tokens or keys.
 * Signals are blocked in every thread and taken synchronously by the main
 * loop: SIGTERM/SIGINT drain (stop accepting, let requests in flight
 * finish, at most DRAIN_TIMEOUT_MS) and exit 0; SIGHUP reloads.
 *
 * Thread-safety: request handlers run on the HTTP threads and touch only
 * the refcounted config/netpol snapshots, the metrics registry (atomic)
 * and the logger (locked). Ownership: everything lives in one `server`
 * on main's stack and is freed before exit.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cf_buf.h"
#include "cf_jarena.h"
#include "cf_kube.h"
#include "cf_limits.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "cf_yaml.h"
#include "wh_admission.h"
#include "wh_certmgr.h"
#include "wh_cli.h"
#include "wh_config.h"
#include "wh_http.h"
#include "wh_netpol.h"
#include "wh_npcache.h"
#include "wh_tls.h"
#include "wh_watch.h"

/* SIGTERM: how long requests in flight may take before we exit anyway.
 * Below Kubernetes' default terminationGracePeriodSeconds (30). */
#define DRAIN_TIMEOUT_MS 10000u
/* How often the certificate files are looked at. */
#define TLS_POLL_SECONDS 1

/* Flag values; NULL/false = not given, the config file (or default) rules. */
typedef struct flags {
	const char *config, *listen, *tls_cert, *tls_key, *profile, *mode, *probe_listen;
	const char *kubeconfig, *tls_secret, *webhook_config, *service;
	char **netpol_files;
	size_t n_netpol_files;
} flags;

typedef struct server {
	flags fl;
	pthread_mutex_t cfg_lock;
	wh_config *cfg;
	wh_npcache *npcache;
	wh_tls_store *tls;
	wh_http_server *http;
	cf_metrics *metrics;
	cf_metric *m_requests, *m_latency, *m_violations, *m_errors, *m_cert_expiry;
	cf_metric *m_reloads, *m_netpol_synced, *m_inflight;
	/* The live NetworkPolicy watch (issue 4), when it runs. */
	wh_watch *watch;
	pthread_mutex_t watch_metrics_lock; /* turns watch stats into counters */
	cf_metric *m_watch_events, *m_watch_errors, *m_watch_relists, *m_netpols;
	/* Self-managed TLS (issue 5), when configured. */
	wh_certmgr *certmgr;
	cf_metric *m_rotations, *m_tls_api_errors, *m_ca_expiry;
} server;

static void log_error(const char *msg, const char *detail)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "component", "serve");
	cJSON_AddStringToObject(o, "msg", msg);
	if (detail)
		cJSON_AddStringToObject(o, "error", detail);
	cf_log_emit(CF_LOG_ERROR, o);
}

static void usage(FILE *f)
{
	fputs("usage: codeframe-webhook serve [--config FILE] [--listen ADDR:PORT]\n"
	      "         [--tls-cert FILE --tls-key FILE] [--profile baseline|restricted|worker]\n"
	      "         [--mode enforce|warn|audit] [--network-policies FILE...]\n"
	      "         [--probe-listen ADDR:PORT] [--kubeconfig FILE]\n"
	      "         [--tls-secret NS/NAME --webhook-config NAME --service NAME]\n"
	      "Serves POST /validate (AdmissionReview admission.k8s.io/v1) and GET /healthz,\n"
	      "/readyz, /metrics over HTTPS. Flags override the config file. See docs/server.md.\n",
	      f);
}

/* --name VALUE or --name=VALUE. 1 matched, 0 not this flag, -EINVAL missing value. */
static int flag_value(int argc, char **argv, int *i, const char *name, const char **out)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*out = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		char msg[128];
		snprintf(msg, sizeof msg, "%s needs a value", name);
		log_error("bad command line", msg);
		return -EINVAL;
	}
	*out = argv[++*i];
	return 1;
}

static int parse_flags(int argc, char **argv, flags *f)
{
	static const struct {
		const char *name;
		size_t off;
	} names[] = {
	    {"--config", offsetof(flags, config)},
	    {"--listen", offsetof(flags, listen)},
	    {"--tls-cert", offsetof(flags, tls_cert)},
	    {"--tls-key", offsetof(flags, tls_key)},
	    {"--profile", offsetof(flags, profile)},
	    {"--mode", offsetof(flags, mode)},
	    {"--probe-listen", offsetof(flags, probe_listen)},
	    {"--kubeconfig", offsetof(flags, kubeconfig)},
	    {"--tls-secret", offsetof(flags, tls_secret)},
	    {"--webhook-config", offsetof(flags, webhook_config)},
	    {"--service", offsetof(flags, service)},
	};
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 1;
		}
		if (!strcmp(argv[i], "--network-policies")) {
			int start = i + 1;
			while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
				i++;
			if (i < start) {
				log_error("bad command line",
				          "--network-policies needs at least one FILE");
				return -EINVAL;
			}
			f->netpol_files = argv + start;
			f->n_netpol_files = (size_t)(i - start + 1);
			continue;
		}
		int matched = 0;
		for (size_t k = 0; k < sizeof names / sizeof names[0] && !matched; k++) {
			const char **slot = (const char **)((char *)f + names[k].off);
			matched = flag_value(argc, argv, &i, names[k].name, slot);
		}
		if (matched < 0)
			return -EINVAL;
		if (!matched) {
			char msg[256];
			snprintf(msg, sizeof msg, "unknown argument \"%.200s\"", argv[i]);
			log_error("bad command line", msg);
			usage(stderr);
			return -EINVAL;
		}
	}
	return 0;
}

static int copy_field(char *dst, size_t n, const char *src, const char *what, char *err,
                      size_t errlen)
{
	if (strlen(src) >= n) {
		snprintf(err, errlen, "%s is too long", what);
		return -EINVAL;
	}
	snprintf(dst, n, "%s", src);
	return 0;
}

/* Loads the config file (or the defaults) and applies the flags. */
static wh_config *build_config(const flags *f, char *err, size_t errlen)
{
	wh_config *cfg =
	    f->config ? wh_config_load(f->config, err, errlen) : wh_config_new_default();
	if (!cfg) {
		if (!f->config)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	wh_server_config *s = &cfg->server;
	if (f->profile && wh_profile_parse(f->profile, &cfg->profile)) {
		snprintf(err, errlen, "--profile \"%s\": expected baseline, restricted or worker",
		         f->profile);
		goto fail;
	}
	if (f->mode && wh_mode_parse(f->mode, &cfg->mode)) {
		snprintf(err, errlen, "--mode \"%s\": expected enforce, warn or audit", f->mode);
		goto fail;
	}
	if ((f->listen &&
	     copy_field(s->listen, sizeof s->listen, f->listen, "--listen", err, errlen)) ||
	    (f->tls_cert &&
	     copy_field(s->tls_cert, sizeof s->tls_cert, f->tls_cert, "--tls-cert", err, errlen)) ||
	    (f->tls_key &&
	     copy_field(s->tls_key, sizeof s->tls_key, f->tls_key, "--tls-key", err, errlen)) ||
	    (f->probe_listen && copy_field(s->probe_listen, sizeof s->probe_listen, f->probe_listen,
	                                   "--probe-listen", err, errlen)) ||
	    (f->kubeconfig && copy_field(s->kubeconfig, sizeof s->kubeconfig, f->kubeconfig,
	                                 "--kubeconfig", err, errlen)) ||
	    (f->tls_secret && copy_field(s->tls_secret, sizeof s->tls_secret, f->tls_secret,
	                                 "--tls-secret", err, errlen)) ||
	    (f->webhook_config && copy_field(s->webhook_config, sizeof s->webhook_config,
	                                     f->webhook_config, "--webhook-config", err, errlen)) ||
	    (f->service &&
	     copy_field(s->service, sizeof s->service, f->service, "--service", err, errlen)))
		goto fail;
	return cfg;
fail:
	wh_config_unref(cfg);
	return NULL;
}

static char *const *netpol_files(const server *sv, const wh_config *cfg, size_t *n)
{
	if (sv->fl.n_netpol_files) {
		*n = sv->fl.n_netpol_files;
		return sv->fl.netpol_files;
	}
	*n = cfg->server.n_network_policy_files;
	return cfg->server.network_policy_files;
}

/* Every NetworkPolicy in the files (also inside List kinds) into a new
 * set. Other kinds are skipped: the files may be whole manifests. */
static int add_netpols(wh_netpol_set *set, const cJSON *obj, const char *file, unsigned depth,
                       char *err, size_t errlen)
{
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(obj, "kind");
	if (!cJSON_IsString(kind))
		return 0;
	if (depth < 4 && (strcmp(kind->valuestring, "List") == 0 ||
	                  strcmp(kind->valuestring, "NetworkPolicyList") == 0)) {
		const cJSON *it;
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(obj, "items"))
		{
			int rc = add_netpols(set, it, file, depth + 1, err, errlen);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (strcmp(kind->valuestring, "NetworkPolicy") != 0)
		return 0;
	char e[512] = "";
	int rc = wh_netpol_set_add(set, obj, e, sizeof e);
	if (rc)
		snprintf(err, errlen, "%s: %s", file, e[0] ? e : "malformed NetworkPolicy");
	return rc;
}

static wh_netpol_set *load_netpols(char *const *files, size_t n, char *err, size_t errlen)
{
	wh_netpol_set *set = wh_netpol_set_new();
	if (!set) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		cf_buf b;
		cf_yaml_docs docs = {0};
		char e[512];
		int rc = cf_read_file(files[i], CF_MAX_INPUT_FILE_BYTES, &b, e, sizeof e);
		if (rc) {
			snprintf(err, errlen, "%s", e);
			goto fail;
		}
		rc = cf_yaml_parse(b.data ? b.data : "", b.len, &docs, e, sizeof e);
		cf_buf_free(&b);
		if (rc) {
			snprintf(err, errlen, "%s: %s", files[i], e);
			goto fail;
		}
		const cJSON *doc;
		cJSON_ArrayForEach(doc, docs.docs)
		{
			rc = add_netpols(set, doc, files[i], 0, err, errlen);
			if (rc)
				break;
		}
		cf_yaml_docs_free(&docs);
		if (rc)
			goto fail;
	}
	return set;
fail:
	wh_netpol_set_unref(set);
	return NULL;
}

static wh_config *acquire_config(server *sv)
{
	pthread_mutex_lock(&sv->cfg_lock);
	wh_config *c = wh_config_ref(sv->cfg);
	pthread_mutex_unlock(&sv->cfg_lock);
	return c;
}

static bool netpol_check_active(const wh_config *cfg)
{
	return cfg->profile == WH_PROFILE_WORKER && cfg->policy.network_policy;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Kinds and operations become metric labels: bounded to known values so a
 * client cannot grow the registry with made-up kinds. */
static const char *kind_label(const char *kind)
{
	static const char *const known[] = {"Pod",        "PodTemplate", "ReplicationController",
	                                    "Deployment", "ReplicaSet",  "StatefulSet",
	                                    "DaemonSet",  "Job",         "CronJob"};
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		if (strcmp(known[i], kind) == 0)
			return known[i];
	return "other";
}

static const char *op_label(const char *op)
{
	static const char *const known[] = {"CREATE", "UPDATE", "DELETE", "CONNECT"};
	for (size_t i = 0; i < 4; i++)
		if (strcmp(known[i], op) == 0)
			return known[i];
	return "other";
}

static void count_error(server *sv, const char *reason)
{
	const char *lv[] = {reason};
	cf_metric_inc(sv->m_errors, lv);
}

static void reply_text(wh_http_reply *out, unsigned status, const char *text)
{
	out->status = status;
	out->content_type = "text/plain; charset=utf-8";
	size_t n = strlen(text);
	out->body = malloc(n + 1);
	if (out->body) {
		memcpy(out->body, text, n + 1);
		out->len = n;
	}
}

/* One line per decision, built directly (cf_log_line): the same text
 * cf_log_emit would print for the equivalent cJSON object, without the
 * tree, the re-parenting and the extra copy on every request. */
static void log_decision(const wh_admission_request *req, const wh_admission_decision *d,
                         uint64_t latency_us)
{
	cf_log_line l;
	if (!cf_log_begin(&l, CF_LOG_INFO))
		return;
	cf_log_add_str(&l, "component", "admission");
	cf_log_add_str(&l, "uid", req->uid);
	cf_log_add_str(&l, "kind", req->kind);
	cf_log_add_str(&l, "namespace", req->namespace_);
	cf_log_add_str(&l, "name", req->name);
	cf_log_add_str(&l, "operation", req->operation);
	if (req->subresource[0])
		cf_log_add_str(&l, "subresource", req->subresource);
	cf_log_add_str(&l, "user", req->username);
	cf_log_add_str(&l, "decision", wh_decision_name(d->decision));
	cf_log_add_str(&l, "mode", wh_mode_name(d->mode));
	if (d->decision == WH_DECISION_SKIP)
		cf_log_add_str(&l, "reason", d->skip_reason);
	if (d->result.n_violations) {
		cJSON *ids = wh_admission_check_ids(d);
		char *text = ids && ids->child ? cJSON_PrintUnformatted(ids) : NULL;
		cf_log_add_raw(&l, "violations", text ? text : "[]");
		cJSON_free(text);
		cJSON_Delete(ids);
	} else {
		cf_log_add_raw(&l, "violations", "[]");
	}
	if (req->dry_run)
		cf_log_add_true(&l, "dryRun");
	cf_log_add_uint(&l, "latency_us", (unsigned long long)latency_us);
	cf_log_end(&l);
}

static void on_validate(void *ctx, const char *body, size_t len, uint64_t start_ns,
                        wh_http_reply *out)
{
	server *sv = ctx;
	wh_admission_request req;
	wh_admission_decision d;
	char err[512] = "";
	if (wh_admission_parse(body, len, &req, err, sizeof err)) {
		count_error(sv, "bad_request");
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "component", "admission");
		cJSON_AddStringToObject(o, "msg", "invalid AdmissionReview");
		cJSON_AddStringToObject(o, "error", err);
		cJSON_AddNumberToObject(o, "status", 400);
		cf_log_emit(CF_LOG_WARNING, o);
		reply_text(out, 400, err);
		return;
	}
	wh_config *cfg = acquire_config(sv);
	wh_netpol_set *np = wh_npcache_acquire(sv->npcache);
	int rc = wh_admission_decide(cfg, &req, np, &d);
	char *text = NULL;
	size_t tlen = 0;
	if (rc == 0)
		text = wh_admission_response(&req, &d, &tlen);
	wh_netpol_set_unref(np);
	wh_config_unref(cfg);
	if (!text) {
		count_error(sv, "internal");
		log_error("cannot build the admission response", "out of memory");
		reply_text(out, 500, "internal error");
		if (rc == 0)
			wh_admission_decision_free(&d);
		wh_admission_request_free(&req);
		return;
	}
	out->status = 200;
	out->content_type = "application/json";
	out->body = text;
	out->len = tlen;

	uint64_t lat_ns = now_ns() - start_ns;
	const char *labels[] = {wh_decision_name(d.decision), kind_label(req.kind),
	                        op_label(req.operation)};
	cf_metric_inc(sv->m_requests, labels);
	cf_metric_observe(sv->m_latency, NULL, (double)lat_ns / 1e9);
	for (size_t i = 0; i < d.result.n_violations; i++) {
		const char *lv[] = {d.result.violations[i].check ? d.result.violations[i].check
		                                                 : "unknown"};
		cf_metric_inc(sv->m_violations, lv);
	}
	log_decision(&req, &d, lat_ns / 1000u);
	wh_admission_decision_free(&d);
	wh_admission_request_free(&req);
}

/* Counters follow the watch's own tallies: add what is new since the
 * last rendering (under a lock, so two scrapes cannot both add it). */
static void counter_follow(cf_metric *c, unsigned long now)
{
	double have = cf_metric_value(c, NULL);
	if ((double)now > have)
		cf_metric_add(c, NULL, (uint64_t)((double)now - have));
}

static void watch_metrics(server *sv)
{
	if (!sv->watch)
		return;
	wh_watch_stats st;
	wh_watch_stats_get(sv->watch, &st);
	pthread_mutex_lock(&sv->watch_metrics_lock);
	counter_follow(sv->m_watch_events, st.events);
	counter_follow(sv->m_watch_errors, st.errors);
	counter_follow(sv->m_watch_relists, st.relists);
	cf_metric_set(sv->m_netpols, NULL, (double)st.policies);
	pthread_mutex_unlock(&sv->watch_metrics_lock);
}

static void certmgr_metrics(server *sv)
{
	if (!sv->certmgr)
		return;
	wh_certmgr_stats st;
	wh_certmgr_stats_get(sv->certmgr, &st);
	pthread_mutex_lock(&sv->watch_metrics_lock);
	counter_follow(sv->m_rotations, st.rotations);
	counter_follow(sv->m_tls_api_errors, st.api_errors);
	cf_metric_set(sv->m_ca_expiry, NULL, (double)st.ca_not_after);
	pthread_mutex_unlock(&sv->watch_metrics_lock);
}

static void on_probe(void *ctx, wh_http_endpoint ep, wh_http_reply *out)
{
	server *sv = ctx;
	if (ep == WH_HTTP_HEALTHZ) {
		reply_text(out, 200, "ok\n");
		return;
	}
	if (ep == WH_HTTP_READYZ) {
		wh_config *cfg = acquire_config(sv);
		bool need_np = netpol_check_active(cfg);
		wh_config_unref(cfg);
		bool synced = wh_npcache_synced(sv->npcache);
		/* Self-managed: ready only once a certificate whose CA is in
		 * the caBundle is served. */
		bool cert = !sv->certmgr || wh_certmgr_ready(sv->certmgr);
		char text[256];
		snprintf(text, sizeof text, "config loaded\n%s%s",
		         cert ? "certificate loaded\n" : "certificate not served yet\n",
		         !need_np ? ""
		         : synced ? "netpol cache synced\n"
		                  : "netpol cache not synced\n");
		reply_text(out, (need_np && !synced) || !cert ? 503 : 200, text);
		return;
	}
	cf_metric_set(sv->m_cert_expiry, NULL, (double)wh_tls_store_not_after(sv->tls));
	cf_metric_set(sv->m_netpol_synced, NULL, wh_npcache_synced(sv->npcache) ? 1.0 : 0.0);
	cf_metric_set(sv->m_inflight, NULL, (double)wh_http_inflight(sv->http));
	watch_metrics(sv);
	certmgr_metrics(sv);
	cf_buf b;
	cf_buf_init(&b, 0);
	if (cf_metrics_render(sv->metrics, &b)) {
		cf_buf_free(&b);
		reply_text(out, 500, "internal error");
		return;
	}
	out->status = 200;
	out->content_type = CF_METRICS_CONTENT_TYPE;
	out->len = b.len;
	out->body = cf_buf_steal(&b);
	if (!out->body)
		out->len = 0;
}

static void on_rejected(void *ctx, unsigned status)
{
	server *sv = ctx;
	const char *reason = status == 404   ? "not_found"
	                     : status == 405 ? "method_not_allowed"
	                     : status == 413 ? "too_large"
	                     : status == 0   ? "client_aborted"
	                                     : "other";
	count_error(sv, reason);
	if (status == 413) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "component", "http");
		cJSON_AddStringToObject(o, "msg", "request body too large");
		cJSON_AddNumberToObject(o, "status", 413);
		cJSON_AddNumberToObject(o, "limit", CF_MAX_ADMISSION_BODY_BYTES);
		cf_log_emit(CF_LOG_WARNING, o);
	}
}

static void on_http_log(void *ctx, const char *line)
{
	(void)ctx;
	cf_log_msg(CF_LOG_DEBUG, "http", "%s", line);
}

static int setup_metrics(server *sv, char *err, size_t errlen)
{
	static const double buckets[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
	                                 0.005,   0.01,   0.025,   0.05,   0.1,   0.5};
	static const char *const req_labels[] = {"decision", "kind", "operation"};
	static const char *const check_label[] = {"check"};
	static const char *const reason_label[] = {"reason"};
	static const char *const reload_labels[] = {"what", "result"};
	cf_metrics *m = sv->metrics = cf_metrics_new();
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sv->m_requests =
	    cf_metrics_counter(m, "codeframe_webhook_requests_total",
	                       "Admission requests answered, by decision, kind and operation.",
	                       req_labels, 3, err, errlen);
	if (!sv->m_requests)
		return -EINVAL;
	sv->m_latency =
	    cf_metrics_histogram(m, "codeframe_webhook_request_duration_seconds",
	                         "Time from request headers to the admission response being ready.",
	                         buckets, sizeof buckets / sizeof buckets[0], NULL, 0, err, errlen);
	if (!sv->m_latency)
		return -EINVAL;
	sv->m_violations =
	    cf_metrics_counter(m, "codeframe_webhook_violations_total",
	                       "Violations found, by check id.", check_label, 1, err, errlen);
	if (!sv->m_violations)
		return -EINVAL;
	sv->m_errors = cf_metrics_counter(
	    m, "codeframe_webhook_errors_total",
	    "Requests not answered with a decision (bad_request, too_large, not_found, "
	    "method_not_allowed, client_aborted, internal).",
	    reason_label, 1, err, errlen);
	if (!sv->m_errors)
		return -EINVAL;
	sv->m_reloads = cf_metrics_counter(m, "codeframe_webhook_reloads_total",
	                                   "Certificate and config reloads, by result.",
	                                   reload_labels, 2, err, errlen);
	if (!sv->m_reloads)
		return -EINVAL;
	sv->m_cert_expiry = cf_metrics_gauge(
	    m, "codeframe_webhook_certificate_expiry_timestamp_seconds",
	    "notAfter of the serving certificate, Unix time.", NULL, 0, err, errlen);
	if (!sv->m_cert_expiry)
		return -EINVAL;
	sv->m_netpol_synced =
	    cf_metrics_gauge(m, "codeframe_webhook_netpol_cache_synced",
	                     "1 when NetworkPolicy state is known (files loaded or watch synced).",
	                     NULL, 0, err, errlen);
	if (!sv->m_netpol_synced)
		return -EINVAL;
	sv->m_inflight = cf_metrics_gauge(m, "codeframe_webhook_inflight_requests",
	                                  "Requests being served.", NULL, 0, err, errlen);
	if (!sv->m_inflight)
		return -EINVAL;
	sv->m_watch_events = cf_metrics_counter(
	    m, "codeframe_webhook_netpol_watch_events_total",
	    "NetworkPolicy watch events applied (bookmarks included).", NULL, 0, err, errlen);
	sv->m_watch_errors = cf_metrics_counter(
	    m, "codeframe_webhook_netpol_watch_errors_total",
	    "Failed NetworkPolicy lists and watches (each retried with backoff).", NULL, 0, err,
	    errlen);
	sv->m_watch_relists =
	    cf_metrics_counter(m, "codeframe_webhook_netpol_watch_relists_total",
	                       "NetworkPolicy relists after 410 Gone (resourceVersion too old).",
	                       NULL, 0, err, errlen);
	sv->m_netpols = cf_metrics_gauge(m, "codeframe_webhook_netpol_policies",
	                                 "NetworkPolicies in the watch's current snapshot.", NULL,
	                                 0, err, errlen);
	if (!sv->m_watch_events || !sv->m_watch_errors || !sv->m_watch_relists || !sv->m_netpols)
		return -EINVAL;
	sv->m_rotations = cf_metrics_counter(
	    m, "codeframe_webhook_certificate_rotations_total",
	    "Self-managed TLS: times this replica started serving a renewed certificate.", NULL, 0,
	    err, errlen);
	sv->m_tls_api_errors = cf_metrics_counter(
	    m, "codeframe_webhook_certificate_api_errors_total",
	    "Self-managed TLS: failed API requests on the Secret and the webhook configuration "
	    "(409/422 races included).",
	    NULL, 0, err, errlen);
	sv->m_ca_expiry = cf_metrics_gauge(
	    m, "codeframe_webhook_ca_expiry_timestamp_seconds",
	    "Self-managed TLS: notAfter of the CA that signed the served certificate, Unix time.",
	    NULL, 0, err, errlen);
	if (!sv->m_rotations || !sv->m_tls_api_errors || !sv->m_ca_expiry)
		return -EINVAL;
	return 0;
}

static void count_reload(server *sv, const char *what, const char *result)
{
	const char *lv[] = {what, result};
	cf_metric_inc(sv->m_reloads, lv);
}

static void poll_tls(server *sv)
{
	char err[1024] = "";
	int rc = wh_tls_store_poll(sv->tls, err, sizeof err);
	if (rc == 1) {
		count_reload(sv, "certificate", "success");
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "component", "tls");
		cJSON_AddStringToObject(o, "msg", "certificate reloaded");
		cJSON_AddNumberToObject(o, "not_after", (double)wh_tls_store_not_after(sv->tls));
		cf_log_emit(CF_LOG_INFO, o);
		cf_metric_set(sv->m_cert_expiry, NULL, (double)wh_tls_store_not_after(sv->tls));
	} else if (rc < 0) {
		count_reload(sv, "certificate", "failure");
		log_error("certificate reload failed; still serving the previous certificate", err);
	}
}

static void reload(server *sv)
{
	char err[1024] = "";
	wh_config *fresh = build_config(&sv->fl, err, sizeof err);
	if (!fresh) {
		count_reload(sv, "config", "failure");
		log_error("config reload failed; keeping the previous config", err);
		return;
	}
	size_t n;
	char *const *files = netpol_files(sv, fresh, &n);
	wh_netpol_set *set = NULL;
	if (n && sv->watch) {
		/* One source at a time: the watch would overwrite the files'
		 * snapshot at its next event. */
		cf_log_msg(CF_LOG_WARNING, "serve",
		           "NetworkPolicy files are ignored while the API watch runs; restart "
		           "to change the source");
		n = 0;
	}
	if (n) {
		set = load_netpols(files, n, err, sizeof err);
		if (!set) {
			count_reload(sv, "config", "failure");
			log_error("NetworkPolicy files failed to load; keeping the previous config "
			          "and policies",
			          err);
			wh_config_unref(fresh);
			return;
		}
	}
	pthread_mutex_lock(&sv->cfg_lock);
	wh_config *old = sv->cfg;
	if (strcmp(old->server.listen, fresh->server.listen) != 0 ||
	    strcmp(old->server.probe_listen, fresh->server.probe_listen) != 0 ||
	    strcmp(old->server.tls_cert, fresh->server.tls_cert) != 0 ||
	    strcmp(old->server.tls_key, fresh->server.tls_key) != 0 ||
	    old->server.threads != fresh->server.threads ||
	    old->server.connection_limit != fresh->server.connection_limit ||
	    old->server.connection_timeout != fresh->server.connection_timeout)
		cf_log_msg(CF_LOG_WARNING, "serve",
		           "server settings (listen, TLS files, threads, limits) change only on "
		           "restart; the policy settings were reloaded");
	sv->cfg = fresh;
	pthread_mutex_unlock(&sv->cfg_lock);
	wh_config_unref(old);
	if (set)
		wh_npcache_publish(sv->npcache, set);
	count_reload(sv, "config", "success");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "component", "serve");
	cJSON_AddStringToObject(o, "msg", "config reloaded");
	cJSON_AddStringToObject(o, "profile", wh_profile_name(fresh->profile));
	cJSON_AddStringToObject(o, "mode", wh_mode_name(fresh->mode));
	if (set)
		cJSON_AddNumberToObject(o, "network_policies", (double)n);
	cf_log_emit(CF_LOG_INFO, o);
}

static void server_free(server *sv)
{
	wh_http_stop(sv->http);
	/* After the HTTP threads (no reader left), before the cache it fills. */
	wh_watch_stop(sv->watch);
	sv->watch = NULL;
	/* After the HTTP threads, before the store it fills. */
	wh_certmgr_free(sv->certmgr);
	sv->certmgr = NULL;
	wh_tls_store_free(sv->tls);
	wh_npcache_free(sv->npcache);
	cf_metrics_free(sv->metrics);
	wh_config_unref(sv->cfg);
	pthread_mutex_destroy(&sv->cfg_lock);
	pthread_mutex_destroy(&sv->watch_metrics_lock);
}

/* NetworkPolicies from the API: with --kubeconfig, or in a pod with a
 * service account, when the networkPolicy check is on and no files were
 * given. Without either the cache stays unsynced and the check follows
 * networkPolicyNotSynced. */
static int start_watch(server *sv, char *err, size_t errlen)
{
	const wh_server_config *s = &sv->cfg->server;
	bool in_cluster = !s->kubeconfig[0] && cf_kube_in_cluster_detect(NULL);
	if (!s->kubeconfig[0] && !in_cluster)
		return 0;
	if (!netpol_check_active(sv->cfg)) {
		cf_log_msg(CF_LOG_INFO, "serve",
		           "the networkPolicy check is off: NetworkPolicies are not watched");
		return 0;
	}
	cf_kube_config kc;
	char e[1024] = "";
	int rc = s->kubeconfig[0] ? cf_kube_config_kubeconfig(s->kubeconfig, NULL, &kc, e, sizeof e)
	                          : cf_kube_config_in_cluster(NULL, &kc, e, sizeof e);
	if (rc) {
		snprintf(err, errlen, "Kubernetes API access: %.900s", e);
		return rc;
	}
	wh_watch_options o = {.kube = &kc, .cache = sv->npcache};
	sv->watch = wh_watch_start(&o, e, sizeof e);
	if (!sv->watch) {
		snprintf(err, errlen, "NetworkPolicy watch: %.900s", e);
		cf_kube_config_free(&kc);
		return -EIO;
	}
	cJSON *obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "component", "serve");
	cJSON_AddStringToObject(obj, "msg", "watching NetworkPolicies");
	cJSON_AddStringToObject(obj, "api", kc.source);
	cf_log_emit(CF_LOG_INFO, obj);
	cf_kube_config_free(&kc);
	return 0;
}

/* Self-managed TLS: the certificate comes from the Secret through the
 * API (wh_certmgr); the store starts empty and /readyz says 503 until the
 * manager serves a certificate whose CA is in the caBundle. */
static int start_certmgr(server *sv, char *err, size_t errlen)
{
	const wh_server_config *s = &sv->cfg->server;
	char ns[254], name[254];
	const char *slash = strchr(s->tls_secret, '/');
	if (!slash || slash == s->tls_secret || !slash[1] || strchr(slash + 1, '/') ||
	    (size_t)(slash - s->tls_secret) >= sizeof ns || strlen(slash + 1) >= sizeof name) {
		snprintf(err, errlen, "--tls-secret \"%s\" is not NAMESPACE/NAME", s->tls_secret);
		return -EINVAL;
	}
	snprintf(ns, sizeof ns, "%.*s", (int)(slash - s->tls_secret), s->tls_secret);
	snprintf(name, sizeof name, "%s", slash + 1);
	wh_pki_key_type kt;
	if (wh_pki_key_type_parse(s->tls_key_type, &kt)) {
		snprintf(err, errlen, "unknown TLS key type \"%s\"", s->tls_key_type);
		return -EINVAL;
	}
	bool in_cluster = !s->kubeconfig[0] && cf_kube_in_cluster_detect(NULL);
	if (!s->kubeconfig[0] && !in_cluster) {
		snprintf(err, errlen,
		         "self-managed TLS needs API access: run in a pod with a "
		         "service account, or give --kubeconfig");
		return -EINVAL;
	}
	cf_kube_config kc;
	char e[1024] = "";
	int rc = s->kubeconfig[0] ? cf_kube_config_kubeconfig(s->kubeconfig, NULL, &kc, e, sizeof e)
	                          : cf_kube_config_in_cluster(NULL, &kc, e, sizeof e);
	if (rc) {
		snprintf(err, errlen, "Kubernetes API access: %.900s", e);
		return rc;
	}
	sv->tls = wh_tls_store_new_memory();
	if (!sv->tls) {
		cf_kube_config_free(&kc);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	wh_certmgr_options o = {.kube = &kc,
	                        .secret_namespace = ns,
	                        .secret_name = name,
	                        .webhook_config = s->webhook_config,
	                        .service = s->service,
	                        .key_type = kt,
	                        .ca_validity_s = s->tls_ca_validity,
	                        .leaf_validity_s = s->tls_leaf_validity,
	                        .propagation_s = s->tls_propagation,
	                        .interval_s = s->tls_sync_interval,
	                        .tls = sv->tls};
	sv->certmgr = wh_certmgr_new(&o, e, sizeof e);
	if (!sv->certmgr || wh_certmgr_start(sv->certmgr, e, sizeof e)) {
		snprintf(err, errlen, "self-managed TLS: %.900s", e);
		cf_kube_config_free(&kc);
		return -EINVAL;
	}
	cJSON *obj = cJSON_CreateObject();
	cJSON_AddStringToObject(obj, "component", "serve");
	cJSON_AddStringToObject(obj, "msg", "self-managed TLS");
	cJSON_AddStringToObject(obj, "secret", s->tls_secret);
	cJSON_AddStringToObject(obj, "webhook_configuration", s->webhook_config);
	cJSON_AddStringToObject(obj, "service", s->service);
	cJSON_AddStringToObject(obj, "api", kc.source);
	cf_log_emit(CF_LOG_INFO, obj);
	cf_kube_config_free(&kc);
	return 0;
}

static int start(server *sv, char *err, size_t errlen)
{
	/* Before any other thread uses cJSON: reviews parse into a
	 * per-thread arena (cf_jarena.h). */
	if (cf_jarena_install()) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sv->cfg = build_config(&sv->fl, err, errlen);
	if (!sv->cfg)
		return -EINVAL;
	const wh_server_config *s = &sv->cfg->server;
	bool self_managed = s->tls_secret[0] || s->webhook_config[0] || s->service[0];
	if (self_managed && (!s->tls_secret[0] || !s->webhook_config[0] || !s->service[0])) {
		snprintf(err, errlen,
		         "self-managed TLS needs all of --tls-secret NS/NAME, "
		         "--webhook-config NAME and --service NAME (missing %s)",
		         !s->tls_secret[0]       ? "--tls-secret"
		         : !s->webhook_config[0] ? "--webhook-config"
		                                 : "--service");
		return -EINVAL;
	}
	if (self_managed && (s->tls_cert[0] || s->tls_key[0])) {
		snprintf(err, errlen,
		         "--tls-cert/--tls-key and self-managed TLS (--tls-secret) "
		         "exclude each other");
		return -EINVAL;
	}
	if (!self_managed && (!s->tls_cert[0] || !s->tls_key[0])) {
		snprintf(err, errlen,
		         "a certificate is required: --tls-cert FILE --tls-key FILE "
		         "(or server.tlsCert/tlsKey in the config)");
		return -EINVAL;
	}
	if (setup_metrics(sv, err, errlen))
		return -EINVAL;
	sv->npcache = wh_npcache_new();
	if (!sv->npcache) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	size_t n;
	char *const *files = netpol_files(sv, sv->cfg, &n);
	if (n) {
		wh_netpol_set *set = load_netpols(files, n, err, errlen);
		if (!set)
			return -EINVAL;
		wh_npcache_publish(sv->npcache, set);
	} else if (start_watch(sv, err, errlen)) {
		return -EINVAL;
	}
	if (self_managed) {
		if (start_certmgr(sv, err, errlen))
			return -EINVAL;
	} else {
		sv->tls = wh_tls_store_new(s->tls_cert, s->tls_key, err, errlen);
		if (!sv->tls)
			return -EINVAL;
	}
	cf_metric_set(sv->m_cert_expiry, NULL, (double)wh_tls_store_not_after(sv->tls));
	wh_http_options opt = {.listen = s->listen,
	                       .probe_listen = s->probe_listen,
	                       .tls = sv->tls,
	                       .threads = s->threads,
	                       .connection_limit = s->connection_limit,
	                       .connection_timeout = s->connection_timeout,
	                       .max_body = CF_MAX_ADMISSION_BODY_BYTES};
	wh_http_handlers h = {.ctx = sv,
	                      .validate = on_validate,
	                      .probe = on_probe,
	                      .rejected = on_rejected,
	                      .log = on_http_log};
	sv->http = wh_http_start(&opt, &h, err, errlen);
	if (!sv->http)
		return -EIO;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "component", "serve");
	cJSON_AddStringToObject(o, "msg", "listening");
	cJSON_AddStringToObject(o, "listen", s->listen);
	cJSON_AddNumberToObject(o, "port", wh_http_port(sv->http));
	if (wh_http_probe_port(sv->http))
		cJSON_AddNumberToObject(o, "probe_port", wh_http_probe_port(sv->http));
	cJSON_AddStringToObject(o, "profile", wh_profile_name(sv->cfg->profile));
	cJSON_AddStringToObject(o, "mode", wh_mode_name(sv->cfg->mode));
	cJSON_AddNumberToObject(o, "network_policies", (double)n);
	cJSON_AddNumberToObject(o, "certificate_not_after",
	                        (double)wh_tls_store_not_after(sv->tls));
	cf_log_emit(CF_LOG_INFO, o);
	return 0;
}

int wh_serve_main(int argc, char **argv)
{
	server sv;
	memset(&sv, 0, sizeof sv);
	pthread_mutex_init(&sv.cfg_lock, NULL);
	pthread_mutex_init(&sv.watch_metrics_lock, NULL);
	int rc = parse_flags(argc, argv, &sv.fl);
	if (rc) {
		pthread_mutex_destroy(&sv.cfg_lock);
		pthread_mutex_destroy(&sv.watch_metrics_lock);
		return rc > 0 ? 0 : 2;
	}
	/* Blocked before any thread exists, so every thread inherits the mask
	 * and only the main loop below ever takes these signals. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char err[1024] = "";
	if (start(&sv, err, sizeof err)) {
		log_error("cannot start", err);
		server_free(&sv);
		return 1;
	}
	/* A decision line per request: written in batches from here on. */
	int brc = cf_log_batch_start();
	if (brc < 0)
		log_error("log batching unavailable; writing each line directly", strerror(-brc));
	for (;;) {
		struct timespec tick = {TLS_POLL_SECONDS, 0};
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &tick);
		if (sig == SIGHUP) {
			reload(&sv);
		} else if (sig == SIGTERM || sig == SIGINT) {
			break;
		} else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
			log_error("sigtimedwait failed", strerror(errno));
			break;
		}
		poll_tls(&sv);
	}
	cf_log_msg(CF_LOG_INFO, "serve", "draining: not accepting new connections");
	unsigned left = wh_http_drain(sv.http, DRAIN_TIMEOUT_MS);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "component", "serve");
	cJSON_AddStringToObject(o, "msg", "stopped");
	cJSON_AddNumberToObject(o, "abandoned_requests", left);
	server_free(&sv);
	cf_log_batch_stop(); /* every queued line is out before the last one */
	cf_log_emit(left ? CF_LOG_WARNING : CF_LOG_INFO, o);
	return 0;
}
