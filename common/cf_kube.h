/*
 * cf_kube.h - a small Kubernetes API client: where the API server is and how
 * to authenticate (in-cluster service account or a kubeconfig file), plain
 * JSON requests (GET/POST/PUT/PATCH/DELETE) and a streaming GET for watches.
 *
 * Purpose: the webhook watches NetworkPolicies and (later) manages its TLS
 * Secret and webhook configuration; the agent labels its node. All of them
 * go through this wrapper, the only user of libcurl.
 *
 * Security: TLS verification is always on (a kubeconfig that asks for
 * `insecure-skip-tls-verify` or an http:// server is refused); the CA is the
 * service account's ca.crt, the kubeconfig's CA, or the system store when a
 * kubeconfig names none. Bound service account tokens rotate, so a token
 * file is re-read every CF_KUBE_TOKEN_REREAD_SECONDS, and before the next
 * request after a 401.
 *
 * Errors: every failing call fills `err` with what failed - method, path,
 * HTTP status and the API's Status message, or the transport error - and
 * returns a -errno derived from the status (cf_kube_status_errno) or from
 * the transport failure (-ETIMEDOUT, -ECONNREFUSED, -EPROTO for TLS,
 * -ECANCELED when the abort callback asked to stop, -EIO otherwise).
 *
 * Thread-safety: a cf_kube client is used by one thread at a time (it owns
 * one curl handle, which keeps the connection alive between requests); use
 * one client per thread. The abort callback is called from the thread using
 * the client and may read state other threads write (use atomics).
 * cf_kube_global_init is idempotent and thread-safe; cf_kube_new calls it.
 * Ownership: a cf_kube_config owns its strings (cf_kube_config_free);
 * cf_kube_new copies the config. A cf_kube_response owns its body.
 */
#ifndef CF_KUBE_H
#define CF_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_buf.h"

/* The service account directory a pod sees. */
#define CF_KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
/* client-go re-reads token files at most once a minute; kubelet refreshes
 * a projected token when 80% of its lifetime (at least 10 minutes) passed. */
#define CF_KUBE_TOKEN_REREAD_SECONDS       60
#define CF_KUBE_DEFAULT_TIMEOUT_MS         30000u
#define CF_KUBE_DEFAULT_CONNECT_TIMEOUT_MS 10000u

typedef struct cf_kube_config {
	char server[2048]; /* "https://host:port", no trailing slash */
	char *ca_pem;      /* CA bundle (PEM); NULL: the system store */
	size_t ca_len;
	char *cert_pem; /* client certificate and key (PEM), or NULL */
	size_t cert_len;
	char *key_pem;
	size_t key_len;
	char *token;                 /* bearer token, or NULL */
	char token_file[4096];       /* re-read periodically; "" when none */
	char namespace_name[254];    /* in-cluster pod namespace or context namespace; may be "" */
	char source[4200];           /* for messages: "in-cluster", "kubeconfig F (context C)" */
	unsigned timeout_ms;         /* a plain request, whole; default 30 s */
	unsigned connect_timeout_ms; /* default 10 s */
	unsigned token_reread_seconds; /* default CF_KUBE_TOKEN_REREAD_SECONDS */
} cf_kube_config;

void cf_kube_config_init(cf_kube_config *c);
void cf_kube_config_free(cf_kube_config *c);

/* true when this process runs in a pod with API access: the environment
 * has KUBERNETES_SERVICE_HOST and the token file exists in `sa_dir`
 * (NULL: CF_KUBE_SA_DIR). */
bool cf_kube_in_cluster_detect(const char *sa_dir);
/* In-cluster configuration from KUBERNETES_SERVICE_HOST/PORT (an IPv6
 * address is bracketed) and `sa_dir`'s token, ca.crt and namespace files.
 * -ENOENT when not in a cluster, -EINVAL for a malformed environment, file
 * errors as cf_read_file; `err` says which. */
int cf_kube_config_in_cluster(const char *sa_dir, cf_kube_config *out, char *err, size_t errlen);
/* A kubeconfig file: `context` or, when NULL, current-context; its cluster
 * (server, certificate-authority[-data]) and user (client-certificate[-data]
 * + client-key[-data], or token / tokenFile). Relative file names are
 * relative to the kubeconfig's directory. -EINVAL with a message naming the
 * field for malformed or unsupported content (exec plugins, auth providers,
 * basic auth, insecure-skip-tls-verify, non-https servers). */
int cf_kube_config_kubeconfig(const char *path, const char *context, cf_kube_config *out, char *err,
                              size_t errlen);
/* The same from text; `base_dir` resolves relative names (NULL: cwd). */
int cf_kube_config_kubeconfig_text(const char *text, size_t len, const char *name,
                                   const char *base_dir, const char *context, cf_kube_config *out,
                                   char *err, size_t errlen);

typedef struct cf_kube cf_kube;

/* A client for `cfg` (copied). NULL with `err` on failure. */
cf_kube *cf_kube_new(const cf_kube_config *cfg, char *err, size_t errlen);
void cf_kube_free(cf_kube *k);
const cf_kube_config *cf_kube_get_config(const cf_kube *k);
/* Called (from the client's thread) during transfers at least about once a
 * second, also while a watch is idle; a non-zero return aborts the request
 * with -ECANCELED. NULL clears it. */
void cf_kube_set_abort(cf_kube *k, int (*aborted)(void *ud), void *ud);
int cf_kube_global_init(void);

typedef struct cf_kube_response {
	long status;     /* HTTP status, 0 when no response arrived */
	cf_buf body;     /* response body (bounded by CF_KUBE_MAX_RESPONSE_BYTES) */
	char reason[64]; /* Status.reason of an error response ("Conflict", ...) or "" */
} cf_kube_response;

void cf_kube_response_init(cf_kube_response *r);
void cf_kube_response_free(cf_kube_response *r);

/* One request. `path` starts with '/' and may carry a query string; `body`
 * (may be NULL) is sent with `content_type` (NULL: application/json).
 * Returns 0 for a 2xx status; otherwise -errno with `resp` filled as far as
 * it got (status, body, reason) and `err` describing the failure. */
int cf_kube_request(cf_kube *k, const char *method, const char *path, const char *content_type,
                    const char *body, size_t body_len, cf_kube_response *resp, char *err,
                    size_t errlen);
int cf_kube_get(cf_kube *k, const char *path, cf_kube_response *resp, char *err, size_t errlen);

/* Receives the body of a stream as it arrives, in pieces of any size.
 * Return 0 to continue; anything else stops the stream, and
 * cf_kube_stream returns that value. */
typedef int (*cf_kube_stream_fn)(void *ud, const char *data, size_t len);
/* A streaming GET (watches). The transfer may last `max_seconds` (0: no
 * limit beyond the abort callback). Returns 0 when the server ended the
 * stream; the callback's value when it stopped it; -errno with `err` for a
 * non-2xx status (*status set; the body is not passed to `fn`) or a
 * transport failure (including a stream cut mid-chunk). */
int cf_kube_stream(cf_kube *k, const char *path, unsigned max_seconds, cf_kube_stream_fn fn,
                   void *ud, long *status, char *err, size_t errlen);

/* -errno for an HTTP status: 2xx 0; 400/422 -EINVAL; 401 -EACCES; 403 -EPERM;
 * 404 -ENOENT; 409 -EEXIST (AlreadyExists or Conflict: see reason); 410
 * -ESTALE; 429/503/504 -EAGAIN; other -EIO. */
int cf_kube_status_errno(long status);

/* Exponential backoff with jitter: the cap is min(max_ms, base_ms *
 * 2^attempt) and the result is uniform in [cap/2, cap] ("equal jitter":
 * never a zero wait, never past max_ms). `rng` is caller-owned state
 * (any seed; 0 is replaced). */
uint64_t cf_kube_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint64_t *rng);

/* Appends `s` percent-encoded for a URL query value or path segment. */
int cf_kube_append_escaped(cf_buf *b, const char *s);

#endif
