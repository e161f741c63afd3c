/*
 * wh_netpol.h - a set of NetworkPolicies indexed by namespace, and the
 * coverage question the `networkPolicy` check asks of it.
 *
 * Coverage (DESIGN.md): a pod is covered for a direction when at least one
 * policy in its own namespace selects it (podSelector against the pod's or
 * template's labels) and has that direction in its effective policyTypes:
 * as written if present; otherwise Ingress, plus Egress when the policy has
 * an `egress` section. A covering policy that allows all traffic in that
 * direction (`ingress: [{}]` / `egress: [{}]`, a rule with no peers and no
 * ports) still counts, but is flagged so the check can warn. Policies add
 * up, so one allow-all policy opens the direction whatever the others say:
 * the flag is set when SOME covering policy allows all, and the policy
 * named is then that one. Effective policyTypes are the API server's
 * defaulting exactly: an empty `egress: []` does not add Egress.
 *
 * A set is built once (new, add..., then shared read-only): admission
 * threads read it without locks. The live cache of issue 4 publishes a new
 * set per change and reference-counts it (wh_netpol_set_ref/unref), so a
 * reader holds a snapshot for the length of one evaluation.
 * Thread-safety: add only before the set is shared; everything else is
 * read-only and safe from any thread. ref/unref are atomic.
 * Ownership: the set copies what it needs from the cJSON it is given.
 */
#ifndef WH_NETPOL_H
#define WH_NETPOL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct wh_netpol_set wh_netpol_set;

typedef struct wh_netpol_coverage {
	bool ingress;             /* some policy selects the pod with Ingress */
	bool egress;              /* ... with Egress */
	bool ingress_allow_all;   /* some Ingress-covering policy allows all */
	bool egress_allow_all;    /* some Egress-covering policy allows all */
	char ingress_policy[254]; /* a covering policy's name, for messages */
	char egress_policy[254];
} wh_netpol_coverage;

/* A new empty set with one reference. NULL on allocation failure. */
wh_netpol_set *wh_netpol_set_new(void);
/* Adds a NetworkPolicy object (kind NetworkPolicy). A missing namespace
 * means "default". Replaces an existing policy of the same namespace/name.
 * -EINVAL with a message for a malformed policy (bad selector, bad
 * policyTypes). */
int wh_netpol_set_add(wh_netpol_set *set, const cJSON *policy, char *err, size_t errlen);
/* Removes namespace/name; -ENOENT if absent. */
int wh_netpol_set_remove(wh_netpol_set *set, const char *ns, const char *name);
size_t wh_netpol_set_count(const wh_netpol_set *set);
/* A deep copy (one reference), for copy-on-write updates. */
wh_netpol_set *wh_netpol_set_clone(const wh_netpol_set *set);
void wh_netpol_coverage_for(const wh_netpol_set *set, const char *ns, const cJSON *labels,
                            wh_netpol_coverage *out);
wh_netpol_set *wh_netpol_set_ref(wh_netpol_set *set);
void wh_netpol_set_unref(wh_netpol_set *set);

#endif
