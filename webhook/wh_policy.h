/*
 * wh_policy.h - the pod policy engine: pure functions from a Kubernetes
 * object (and, for the worker profile, a NetworkPolicy set) to a list of
 * violations. No I/O, no globals, no logging.
 *
 * Profiles: `baseline` and `restricted` are the Pod Security Standards at
 * the latest version (PSA policy v1.35) with Pod Security Admission's
 * semantics; `worker` is `restricted` plus the checks in DESIGN.md
 * ("Webhook"). Check ids are PSA's own for its checks (hostNamespaces,
 * privileged, capabilities_baseline, hostPathVolumes, hostPorts,
 * appArmorProfile, seLinuxOptions, procMount, seccompProfile_baseline,
 * sysctls, windowsHostProcess, hostProbesAndHostLifecycle, restrictedVolumes,
 * allowPrivilegeEscalation, runAsNonRoot, runAsUser,
 * seccompProfile_restricted, capabilities_restricted, procMount_restricted)
 * and readOnlyRootFilesystem, resourceLimits, networkPolicy, secrets,
 * serviceAccountToken, seccompLocalhost, runtimeClass, hostUsers,
 * emptyDirSizeLimit for the worker checks. docs/policy.md describes each.
 * One violation per offending field, in a deterministic order; at
 * restricted, a field that breaks a baseline check is reported under the
 * baseline id and its restricted counterpart both.
 *
 * Thread-safety: every function is reentrant; inputs are read-only and may
 * be shared between threads. Ownership: a wh_result owns its strings; free
 * it with wh_result_free.
 */
#ifndef WH_POLICY_H
#define WH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "wh_netpol.h"
#include "wh_quantity.h"

typedef enum wh_profile {
	WH_PROFILE_BASELINE = 0,
	WH_PROFILE_RESTRICTED = 1,
	WH_PROFILE_WORKER = 2,
} wh_profile;

/* "baseline"/"restricted"/"worker" -> 0 and *out; -EINVAL otherwise. */
int wh_profile_parse(const char *name, wh_profile *out);
const char *wh_profile_name(wh_profile p);

/* The policy part of the config file (wh_config.h holds the rest). */
typedef struct wh_policy_config {
	/* Worker checks; PSA checks of the chosen level are always on. */
	bool read_only_root_filesystem;      /* default true */
	bool resource_limits;                /* default true */
	bool network_policy;                 /* default true */
	bool secrets;                        /* default true */
	bool service_account_token;          /* default true */
	bool seccomp_localhost;              /* default false */
	char seccomp_localhost_profile[256]; /* default "codeframe/worker.json" */
	/* Resource limits: which must be set, and optional maxima. */
	bool require_cpu_limit;               /* default true */
	bool require_memory_limit;            /* default true */
	bool require_ephemeral_storage_limit; /* default false */
	bool has_max_cpu, has_max_memory, has_max_ephemeral_storage;
	wh_quantity max_cpu, max_memory, max_ephemeral_storage;
	/* Capabilities a container may add beyond restricted's NET_BIND_SERVICE
	 * (worker profile only; baseline/restricted keep PSA's lists). */
	char **allowed_capabilities;
	size_t n_allowed_capabilities;
	/* Optional checks, off by default. */
	char **allowed_runtime_classes; /* runtimeClass: non-empty list enables */
	size_t n_allowed_runtime_classes;
	bool require_host_users_false;    /* hostUsers */
	bool require_emptydir_size_limit; /* emptyDirSizeLimit */
	/* NetworkPolicy state not available yet (cache not synced): a
	 * violation (false, default) or only a warning (true). */
	bool netpol_unsynced_warn;
} wh_policy_config;

/* Fills the defaults above (the config a user gets with no file). */
void wh_policy_config_defaults(wh_policy_config *cfg);
void wh_policy_config_free(wh_policy_config *cfg);

typedef struct wh_violation {
	char *check; /* check id, e.g. "readOnlyRootFilesystem" */
	char *path; /* field path, e.g. spec.containers[0].securityContext.readOnlyRootFilesystem */
	char *container; /* container name, or NULL for a pod-level field */
	char *message;   /* one line, ending with " [check-id]" */
} wh_violation;

typedef struct wh_result {
	wh_violation *violations;
	size_t n_violations, cap_violations;
	char **warnings; /* non-fatal findings, one line each */
	size_t n_warnings, cap_warnings;
} wh_result;

void wh_result_init(wh_result *r);
void wh_result_free(wh_result *r);

/* The pod template inside a workload object: Pod -> spec;
 * PodTemplate -> template.spec; ReplicationController, ReplicaSet,
 * Deployment, StatefulSet, DaemonSet, Job -> spec.template.spec;
 * CronJob -> spec.jobTemplate.spec.template.spec.
 * Sets *metadata to the pod (template) metadata (may be NULL) and *path to
 * the field path prefix of the pod spec ("spec", "spec.template.spec", ...).
 * Returns NULL for kinds that carry no pod template (or lack the fields). */
const cJSON *wh_policy_find_pod_spec(const cJSON *object, const cJSON **metadata,
                                     const char **path);
/* true when `kind` is one of the kinds above. */
bool wh_policy_is_workload_kind(const char *kind);

/* Evaluates one workload object. `netpols` is the NetworkPolicy set for the
 * worker profile's networkPolicy check (only the object's own namespace
 * counts; an object without a namespace is in `default_namespace`, or
 * "default" when that is NULL); NULL means "not synced yet".
 * Returns 0 and appends to `out` (which may already hold findings);
 * -EINVAL with `err` when the object is not a workload or is malformed
 * beyond evaluation (e.g. spec is not an object); -ENOMEM. */
int wh_policy_evaluate(const wh_policy_config *cfg, wh_profile profile, const cJSON *object,
                       const char *default_namespace, const wh_netpol_set *netpols, wh_result *out,
                       char *err, size_t errlen);

#endif
