/*
 * wh_admission.h - AdmissionReview admission.k8s.io/v1 in and out, and the
 * decision between them: which requests are evaluated, with which config,
 * and how violations become a response in each mode.
 *
 * Evaluated (DESIGN.md "Webhook"): Pods on CREATE; Pods on UPDATE only when
 * containers, initContainers or ephemeralContainers changed; the
 * pods/ephemeralcontainers and pods/resize subresources; the pod
 * controllers (wh_policy_is_workload_kind) through their template on
 * CREATE, and on UPDATE only when the template changed, so an old
 * ReplicaSet can still be scaled down. DELETE, CONNECT, other subresources
 * and other kinds are admitted without evaluation. Worker selection and
 * exemptions come from wh_config_selects / wh_config_user_exempt, with the
 * namespace taken from request.namespace. dryRun is evaluated the same.
 *
 * Responses: enforce denies (allowed=false, status.code 403, a message
 * listing every violation); warn admits with warnings (each at most
 * CF_MAX_WARNING_CHARS, all at most CF_MAX_WARNINGS_TOTAL_BYTES); audit
 * admits with auditAnnotations. Never patch/patchType.
 * Audit annotation keys are bare names ("violations", "checks"): the API
 * server prefixes each with the webhook's name and "/", and rejects a key
 * that already carries a prefix (two slashes are not a qualified name), so
 * they appear in the audit log as e.g. "pods.codeframe.io/violations".
 *
 * Pure: no I/O, no globals, so every rule is unit-tested directly.
 * Thread-safety: reentrant; configs and NetworkPolicy sets are read-only.
 * Ownership: a wh_admission_request owns its parsed JSON; the string
 * pointers in it point into that JSON (or are static ""). A decision owns
 * its result; free both with their _free functions.
 */
#ifndef WH_ADMISSION_H
#define WH_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "wh_config.h"
#include "wh_netpol.h"
#include "wh_policy.h"

#define WH_ADMISSION_API_VERSION "admission.k8s.io/v1"

typedef struct wh_admission_request {
	cJSON *root;             /* the whole review (owned) */
	const char *uid;         /* non-empty, bounded by CF_MAX_ADMISSION_UID_BYTES */
	const char *kind;        /* request.kind.kind, e.g. "Pod" */
	const char *resource;    /* request.resource.resource, "" if absent */
	const char *subresource; /* request.subResource, "" if absent */
	const char *operation;   /* CREATE, UPDATE, DELETE, CONNECT */
	const char *namespace_;  /* request.namespace, "" for cluster scope */
	const char *name;        /* request.name, else metadata.name/generateName */
	const char *username;    /* request.userInfo.username, "" if absent */
	bool dry_run;
	const cJSON *object;     /* request.object, NULL if absent/null */
	const cJSON *old_object; /* request.oldObject, NULL if absent/null */
	bool in_arena;           /* root was parsed into the cf_jarena arena */
	bool arena_whole;        /* ... entirely: freeing it is only a release */
} wh_admission_request;

/* Parses and validates a review body. -EINVAL with a message (for a 400)
 * when it is not JSON, not an object, apiVersion is not
 * admission.k8s.io/v1, kind is not AdmissionReview, request is missing, or
 * request.uid / request.operation / request.kind.kind is missing, not a
 * string or too long; -ENOMEM. On success the caller frees with
 * wh_admission_request_free, on the same thread (the tree may live in that
 * thread's cf_jarena arena when cf_jarena_install() was called); the tree
 * is read-only: nothing may be attached to it. */
int wh_admission_parse(const char *body, size_t len, wh_admission_request *out, char *err,
                       size_t errlen);
void wh_admission_request_free(wh_admission_request *req);

typedef enum wh_decision {
	WH_DECISION_SKIP = 0,  /* admitted without evaluation */
	WH_DECISION_ALLOW = 1, /* evaluated, no violation */
	WH_DECISION_DENY = 2,  /* enforce mode, violations */
	WH_DECISION_WARN = 3,  /* warn mode, violations: admitted with warnings */
	WH_DECISION_AUDIT = 4, /* audit mode, violations: admitted, annotated */
} wh_decision;

const char *wh_decision_name(wh_decision d);

typedef struct wh_admission_decision {
	wh_decision decision;
	wh_mode mode;
	wh_profile profile;
	const char *skip_reason; /* static text for SKIP, else NULL */
	wh_result result;        /* violations and warnings when evaluated */
} wh_admission_decision;

/* Decides one request with `cfg` (its profile, mode, policy, selection)
 * and `netpols` (NULL: NetworkPolicy state not synced). An object the
 * policy engine cannot evaluate (a spec that is not an object, a kind
 * without its template) becomes one violation with check id "invalid", so
 * enforce denies it and warn/audit report it. Returns 0 or -ENOMEM. */
int wh_admission_decide(const wh_config *cfg, const wh_admission_request *req,
                        const wh_netpol_set *netpols, wh_admission_decision *out);
void wh_admission_decision_free(wh_admission_decision *d);

/* The response review as a compact JSON string (malloc'd) with its length
 * in *len. NULL on allocation failure. */
char *wh_admission_response(const wh_admission_request *req, const wh_admission_decision *d,
                            size_t *len);

/* The JSON array of distinct violated check ids, in first-seen order (for
 * logs and metrics). NULL on allocation failure. */
cJSON *wh_admission_check_ids(const wh_admission_decision *d);

#endif
