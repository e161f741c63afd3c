/*
 * wh_psa.h - internal to the policy engine (wh_policy.c): the pod view the
 * checks share, the violation emitter, and the Pod Security Standards
 * checks (baseline and restricted at the latest policy version, v1.35, with
 * Pod Security Admission's semantics).
 *
 * A wh_psa_pod is built once per evaluation from a pod spec: every field
 * any check reads is type-checked first (wh_psa_pod_init returns -EINVAL
 * naming the field), so the checks themselves never meet a string where an
 * object belongs. Containers are listed in PSA's visiting order:
 * initContainers (sidecars included), containers, ephemeralContainers.
 *
 * Thread-safety: no globals; a wh_psa_pod belongs to one evaluation.
 * Ownership: the pod view borrows the cJSON it was built from and owns only
 * its container array; violations are appended to the caller's wh_result.
 */
#ifndef WH_PSA_H
#define WH_PSA_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "wh_policy.h"

typedef enum wh_psa_kind {
	WH_PSA_INIT = 0,
	WH_PSA_REGULAR = 1,
	WH_PSA_EPHEMERAL = 2,
} wh_psa_kind;

typedef struct wh_psa_container {
	const cJSON *obj;    /* the container object */
	const cJSON *sc;     /* its securityContext (object) or NULL */
	const cJSON *limits; /* its resources.limits (object) or NULL */
	const char *name;    /* "" when the container has no name */
	char path[96];       /* e.g. "spec.template.spec.initContainers[0]" */
	wh_psa_kind kind;
} wh_psa_container;

typedef struct wh_psa_pod {
	const cJSON *spec;     /* the pod spec (object) */
	const cJSON *meta;     /* pod (template) metadata, or NULL */
	const cJSON *psc;      /* spec.securityContext (object) or NULL */
	char spec_path[64];    /* "spec", "spec.template.spec", ... */
	char meta_path[64];    /* "metadata", "spec.template.metadata", ... */
	bool windows;          /* spec.os.name == "windows" */
	bool host_users_false; /* spec.hostUsers explicitly false */
	wh_psa_container *ctrs;
	size_t n_ctrs;
	wh_result *out;
	int rc; /* the first -ENOMEM while appending; later appends are no-ops */
} wh_psa_pod;

/* Type-checks the spec and metadata fields the engine reads and builds the
 * view. -EINVAL with `err` naming the field ("spec.containers: must be a
 * list, not a string"); -ENOMEM. On success free with wh_psa_pod_free. */
int wh_psa_pod_init(wh_psa_pod *pod, const cJSON *spec, const char *spec_path, const cJSON *meta,
                    wh_result *out, char *err, size_t errlen);
void wh_psa_pod_free(wh_psa_pod *pod);

/* Appends a violation whose message is "<path> <what>[ (container "x")]
 * [<check>]"; `c` is NULL for a pod-level field. */
void wh_psa_violation(wh_psa_pod *pod, const char *check, const wh_psa_container *c,
                      const char *path, const char *what_fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Appends a warning line (already complete, check id included). */
void wh_psa_warning(wh_psa_pod *pod, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Capabilities beyond the standard lists that a container may add (worker
 * profile's allowedCapabilities; NULL/0 for baseline and restricted). */
typedef struct wh_psa_caps {
	char *const *names;
	size_t n;
} wh_psa_caps;

/* The baseline checks; then the restricted-only checks. At restricted both
 * run: a field that breaks a baseline check and its restricted counterpart
 * is reported under both ids (see docs/policy.md). */
void wh_psa_baseline(wh_psa_pod *pod, const wh_psa_caps *extra);
void wh_psa_restricted(wh_psa_pod *pod, const wh_psa_caps *extra);

/* Effective seccomp profile of a container (its own, else the pod's):
 * the profile object, or NULL when neither level sets one. */
const cJSON *wh_psa_effective_seccomp(const wh_psa_pod *pod, const wh_psa_container *c);

#endif
