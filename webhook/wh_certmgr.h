/*
 * wh_certmgr.h - self-managed serving certificate (issue 5; docs/tls.md).
 *
 * The manager keeps a CA and a leaf for <svc>, <svc>.<ns>, <svc>.<ns>.svc
 * in ONE `kubernetes.io/tls` Secret, read and written through the API (never
 * a mounted volume), writes the Secret's CA bundle into the caBundle of
 * every webhook of one ValidatingWebhookConfiguration, and hands the leaf
 * to a memory wh_tls_store - only after the configuration's caBundle was
 * seen to hold the leaf's CA, so no replica ever serves a certificate that
 * the API server does not trust.
 *
 * Secret layout (data keys): tls.crt, tls.key (the leaf), ca.crt (the trust
 * bundle: every CA the API server should trust now), ca.key (the key of the
 * CA that signs leaves), ca-next.key (during a CA rollover: the key of the
 * new CA, already in the bundle). Annotations (codeframe.io/...):
 * ca-bundle-generation (bumped whenever the bundle changes),
 * ca-next-published-at and ca-retire-after (Unix seconds, rollover phases).
 *
 * Replicas agree through the Secret: every write carries the
 * resourceVersion it read (409 -> re-read and adopt what the other replica
 * wrote; a racing create gets 409 AlreadyExists -> adopt). The webhook
 * configuration is changed with a JSON patch whose first operation tests
 * metadata.resourceVersion (422/409 -> re-read), and carries the annotation
 * codeframe.io/ca-bundle = "<secret uid>:<generation>" so a replica that
 * read an older Secret never puts an older bundle back.
 *
 * Thread-safety: wh_certmgr_sync is called by one thread at a time (the
 * manager's own thread after wh_certmgr_start, or a test); ready and stats
 * may be read from any thread. Ownership: the manager copies its options
 * (the tls store is borrowed and must outlive it); wh_certmgr_free stops
 * the thread and frees everything.
 */
#ifndef WH_CERTMGR_H
#define WH_CERTMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_kube.h"
#include "wh_pki.h"
#include "wh_tls.h"

/* Defaults (docs/tls.md says why). */
#define WH_CERTMGR_DEFAULT_CA_VALIDITY_S   (5LL * 365 * 86400)
#define WH_CERTMGR_DEFAULT_LEAF_VALIDITY_S (90LL * 86400)
#define WH_CERTMGR_DEFAULT_PROPAGATION_S   300u
#define WH_CERTMGR_DEFAULT_INTERVAL_S      60u

/* Secret data keys and annotations. */
#define WH_CERTMGR_KEY_CA_KEY      "ca.key"
#define WH_CERTMGR_KEY_CA_NEXT_KEY "ca-next.key"
#define WH_CERTMGR_ANN_GENERATION  "codeframe.io/ca-bundle-generation"
#define WH_CERTMGR_ANN_PUBLISHED   "codeframe.io/ca-next-published-at"
#define WH_CERTMGR_ANN_RETIRE      "codeframe.io/ca-retire-after"
#define WH_CERTMGR_ANN_VWC         "codeframe.io/ca-bundle"

typedef struct wh_certmgr_options {
	const cf_kube_config *kube; /* copied */
	const char *secret_namespace, *secret_name;
	const char *webhook_config; /* ValidatingWebhookConfiguration name */
	const char *service;        /* Service name; its namespace is secret_namespace */
	wh_pki_key_type key_type;
	int64_t ca_validity_s;   /* 0: default; at least 2x the leaf's */
	int64_t leaf_validity_s; /* 0: default */
	unsigned propagation_s;  /* new CA in the bundle this long before leaves switch */
	unsigned interval_s;     /* re-read period; 0: default */
	wh_tls_store *tls;       /* a memory store (wh_tls_store_new_memory) */
} wh_certmgr_options;

typedef struct wh_certmgr_stats {
	unsigned long syncs, sync_failures;
	unsigned long api_errors;    /* failed API requests (409/422 races included) */
	unsigned long rotations;     /* served leaf replaced by another */
	unsigned long secret_writes; /* creates and updates this replica made */
	unsigned long conflicts;     /* 409/422 answers adopted */
	unsigned long vwc_patches;   /* caBundle patches this replica made */
	int64_t leaf_not_after;      /* served leaf; 0 before the first */
	int64_t ca_not_after;        /* its CA */
	unsigned bundle_certs;       /* CAs in the bundle last published */
	char last_error[512];
} wh_certmgr_stats;

typedef struct wh_certmgr wh_certmgr;

/* Validates the options and creates the API client; no request yet. */
wh_certmgr *wh_certmgr_new(const wh_certmgr_options *o, char *err, size_t errlen);
/* One pass: read (or create) the Secret, renew/roll over/repair as due,
 * make sure the configuration's caBundle holds the bundle, then serve the
 * leaf. 0, or -errno with `err` (the current certificate stays). */
int wh_certmgr_sync(wh_certmgr *m, char *err, size_t errlen);
/* Runs sync in a thread: again at the next due time or interval, sooner
 * (with backoff) after a failure. */
int wh_certmgr_start(wh_certmgr *m, char *err, size_t errlen);
void wh_certmgr_free(wh_certmgr *m);
/* true once a leaf whose CA is in the caBundle is being served. */
bool wh_certmgr_ready(wh_certmgr *m);
void wh_certmgr_stats_get(wh_certmgr *m, wh_certmgr_stats *out);

#endif
