/* Tests for webhook/wh_netpol: the NetworkPolicy set (add/replace/remove,
 * clone, reference counting) and per-direction coverage with the API's
 * policyTypes defaulting and allow-all detection. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cf_limits.h"
#include "cf_yaml.h"
#include "wh_netpol.h"

static char err[256];

static cJSON *yaml(const char *text)
{
	cf_yaml_docs d;
	int rc = cf_yaml_parse(text, strlen(text), &d, err, sizeof err);
	cr_assert_eq(rc, 0, "yaml: %s", err);
	cJSON *doc = cJSON_DetachItemFromArray(d.docs, 0);
	cf_yaml_docs_free(&d);
	return doc;
}

static int add(wh_netpol_set *s, const char *text)
{
	cJSON *p = yaml(text);
	err[0] = '\0';
	int rc = wh_netpol_set_add(s, p, err, sizeof err);
	cJSON_Delete(p);
	return rc;
}

static wh_netpol_coverage cover(const wh_netpol_set *s, const char *ns, const char *labels)
{
	cJSON *l = labels ? yaml(labels) : NULL;
	wh_netpol_coverage c;
	wh_netpol_coverage_for(s, ns, l, &c);
	cJSON_Delete(l);
	return c;
}

#define DENY_ALL(ns, name)                                                                         \
	"kind: NetworkPolicy\nmetadata: {name: " name ", namespace: " ns "}\n"                     \
	"spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"

Test(wh_netpol, deny_all_covers_both_directions)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, DENY_ALL("ci", "deny-all")), 0, "%s", err);
	wh_netpol_coverage c = cover(s, "ci", "{app: x}");
	cr_assert(c.ingress && c.egress);
	cr_assert_not(c.ingress_allow_all || c.egress_allow_all);
	cr_assert_str_eq(c.ingress_policy, "deny-all");
	cr_assert_str_eq(c.egress_policy, "deny-all");
	wh_netpol_set_unref(s);
}

Test(wh_netpol, policy_in_another_namespace_does_not_count)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, DENY_ALL("other", "deny-all")), 0, "%s", err);
	wh_netpol_coverage c = cover(s, "ci", "{app: x}");
	cr_assert_not(c.ingress || c.egress);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, missing_namespace_means_default)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\nspec:\n  podSelector: {}\n"
	                    "  policyTypes: [Ingress, Egress]\n"),
	             0, "%s", err);
	cr_assert(cover(s, "default", NULL).ingress);
	cr_assert(cover(s, NULL, NULL).egress, "a NULL namespace is default too");
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: q, namespace: ''}\n"
	                    "spec: {podSelector: {}}\n"),
	             0, "%s", err);
	cr_assert_eq(wh_netpol_set_remove(s, "default", "q"), 0, "an empty namespace is default");
	cr_assert_not(cover(s, "ci", NULL).ingress);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, policy_types_default_to_ingress_only)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: ci}\n"
	                    "spec:\n  podSelector: {}\n  ingress: []\n"),
	             0, "%s", err);
	wh_netpol_coverage c = cover(s, "ci", NULL);
	cr_assert(c.ingress);
	cr_assert_not(c.egress, "no egress section: no Egress type");
	wh_netpol_set_unref(s);
}

Test(wh_netpol, egress_section_adds_egress_type_by_default)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: ci}\n"
	                    "spec:\n  podSelector: {}\n  egress:\n  - to: [{podSelector: {}}]\n"),
	             0, "%s", err);
	wh_netpol_coverage c = cover(s, "ci", NULL);
	cr_assert(c.ingress && c.egress);
	cr_assert_not(c.egress_allow_all);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, empty_egress_list_does_not_add_egress_type)
{
	/* API defaulting looks at len(spec.egress), not at its presence */
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: ci}\n"
	                    "spec:\n  podSelector: {}\n  egress: []\n"),
	             0, "%s", err);
	cr_assert_not(cover(s, "ci", NULL).egress);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, explicit_policy_types_are_taken_as_written)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: ci}\n"
	                    "spec:\n  podSelector: {}\n  policyTypes: [Egress]\n"
	                    "  ingress:\n  - {}\n"),
	             0, "%s", err);
	wh_netpol_coverage c = cover(s, "ci", NULL);
	cr_assert(c.egress);
	cr_assert_not(c.ingress, "ingress rules without the Ingress type do not isolate");
	cr_assert_not(c.ingress_allow_all);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, allow_all_rule_is_flagged_and_named)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, DENY_ALL("ci", "a-deny")), 0, "%s", err);
	cr_assert_eq(add(s,
	                 "kind: NetworkPolicy\nmetadata: {name: b-open, namespace: ci}\n"
	                 "spec:\n  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - {}\n"),
	             0, "%s", err);
	wh_netpol_coverage c = cover(s, "ci", NULL);
	cr_assert(c.egress && c.egress_allow_all, "policies add up: one open policy opens egress");
	cr_assert_str_eq(c.egress_policy, "b-open");
	cr_assert(c.ingress && !c.ingress_allow_all);
	cr_assert_str_eq(c.ingress_policy, "a-deny");
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rule_with_peers_or_ports_is_not_allow_all)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: ci}\n"
	                    "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"
	                    "  ingress:\n  - ports: [{port: 80}]\n"
	                    "  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8}}]\n"),
	             0, "%s", err);
	wh_netpol_coverage c = cover(s, "ci", NULL);
	cr_assert(c.ingress && c.egress);
	cr_assert_not(c.ingress_allow_all || c.egress_allow_all);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, pod_selector_is_applied)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(
	    add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: ci}\n"
	           "spec:\n  podSelector:\n    matchLabels: {role: worker}\n"
	           "    matchExpressions:\n    - {key: tier, operator: NotIn, values: [web]}\n"
	           "  policyTypes: [Ingress, Egress]\n"),
	    0, "%s", err);
	cr_assert(cover(s, "ci", "{role: worker}").ingress);
	cr_assert(cover(s, "ci", "{role: worker, tier: batch}").egress);
	cr_assert_not(cover(s, "ci", "{role: worker, tier: web}").ingress);
	cr_assert_not(cover(s, "ci", "{role: api}").ingress);
	cr_assert_not(cover(s, "ci", NULL).ingress);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, add_replaces_same_name_and_remove_works)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, DENY_ALL("ci", "p")), 0, "%s", err);
	cr_assert_eq(add(s, DENY_ALL("ci2", "p")), 0, "%s", err);
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: ci}\n"
	                    "spec:\n  podSelector: {matchLabels: {a: b}}\n"),
	             0, "%s", err);
	cr_assert_eq(wh_netpol_set_count(s), 2);
	cr_assert_not(cover(s, "ci", NULL).ingress, "replaced by the narrower policy");
	cr_assert_eq(wh_netpol_set_remove(s, "ci", "p"), 0);
	cr_assert_eq(wh_netpol_set_count(s), 1);
	cr_assert_eq(wh_netpol_set_remove(s, "ci", "p"), -ENOENT);
	cr_assert_eq(wh_netpol_set_remove(s, "nope", "p"), -ENOENT);
	cr_assert(cover(s, "ci2", NULL).ingress);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, many_policies_stay_sorted_and_findable)
{
	wh_netpol_set *s = wh_netpol_set_new();
	char buf[256];
	for (int i = 0; i < 200; i++) {
		snprintf(buf, sizeof buf,
		         "kind: NetworkPolicy\nmetadata: {name: p%03d, namespace: ns%d}\n"
		         "spec:\n  podSelector: {matchLabels: {n: \"%d\"}}\n",
		         (i * 37) % 200, i % 7, (i * 37) % 200);
		cr_assert_eq(add(s, buf), 0, "%s", err);
	}
	cr_assert_eq(wh_netpol_set_count(s), 200);
	for (int i = 0; i < 200; i++) {
		int name = (i * 37) % 200;
		char ns[16];
		snprintf(buf, sizeof buf, "{n: \"%d\"}", name);
		snprintf(ns, sizeof ns, "ns%d", i % 7);
		wh_netpol_coverage c = cover(s, ns, buf);
		cr_assert(c.ingress, "policy p%03d found", name);
	}
	wh_netpol_set_unref(s);
}

Test(wh_netpol, clone_is_independent_and_refcount_keeps_alive)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, DENY_ALL("ci", "p")), 0, "%s", err);
	wh_netpol_set *c = wh_netpol_set_clone(s);
	cr_assert_not_null(c);
	cr_assert_eq(wh_netpol_set_remove(s, "ci", "p"), 0);
	cr_assert(cover(c, "ci", NULL).ingress, "the clone keeps its copy");
	cr_assert_not(cover(s, "ci", NULL).ingress);
	wh_netpol_set *r = wh_netpol_set_ref(c);
	cr_assert_eq(r, c);
	wh_netpol_set_unref(c);
	cr_assert(cover(r, "ci", NULL).egress, "still alive through the second reference");
	wh_netpol_set_unref(r);
	wh_netpol_set_unref(s);
	wh_netpol_set *e = wh_netpol_set_clone(NULL);
	cr_assert_eq(wh_netpol_set_count(e), 0);
	wh_netpol_set_unref(e);
	wh_netpol_set_unref(NULL);
	cr_assert_null(wh_netpol_set_ref(NULL));
}

Test(wh_netpol, null_set_covers_nothing)
{
	wh_netpol_coverage c = cover(NULL, "ci", NULL);
	cr_assert_not(c.ingress || c.egress);
	cr_assert_eq(wh_netpol_set_count(NULL), 0);
}

/* ---- negative cases ---- */

Test(wh_netpol, rejects_wrong_kind_and_non_objects_1)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: Pod\nmetadata: {name: p}\nspec: {}\n"), -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_wrong_kind_and_non_objects_2)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "[1, 2]"), -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_wrong_kind_and_non_objects_3)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "just text"), -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_wrong_kind_and_non_objects_4)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(wh_netpol_set_add(s, NULL, err, sizeof err), -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_missing_or_bad_metadata_1)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nspec: {podSelector: {}}\n"), -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_missing_or_bad_metadata_2)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: 5}\nspec: {podSelector: {}}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_missing_or_bad_metadata_3)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p, namespace: [a]}\n"
	                    "spec: {podSelector: {}}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_names_past_the_kubernetes_limit)
{
	wh_netpol_set *s = wh_netpol_set_new();
	char text[1024], name[CF_K8S_MAX_NAME_CHARS + 2];
	memset(name, 'a', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	snprintf(
	    text, sizeof text,
	    "kind: NetworkPolicy\nmetadata: {name: %s, namespace: ci}\nspec: {podSelector: {}}\n",
	    name);
	cr_assert_eq(add(s, text), -EINVAL);
	cr_assert(strstr(err, "at most 253 characters"), "%s", err);
	snprintf(
	    text, sizeof text,
	    "kind: NetworkPolicy\nmetadata: {name: p, namespace: %s}\nspec: {podSelector: {}}\n",
	    name);
	cr_assert_eq(add(s, text), -EINVAL);
	cr_assert(strstr(err, "namespace must be a string of at most 253"), "%s", err);
	name[CF_K8S_MAX_NAME_CHARS] = '\0';
	snprintf(
	    text, sizeof text,
	    "kind: NetworkPolicy\nmetadata: {name: %s, namespace: ci}\nspec: {podSelector: {}}\n",
	    name);
	cr_assert_eq(add(s, text), 0, "%s", err);
	cr_assert_eq(wh_netpol_set_count(s), 1);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_spec_1)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\nspec: x\n"), -EINVAL);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_spec_2)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"), -EINVAL);
	cr_assert(strstr(err, "default/p"), "names the policy: %s", err);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_policy_types_1)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                    "spec: {podSelector: {}, policyTypes: [ingress]}\n"),
	             -EINVAL);
	cr_assert(strstr(err, "policyTypes[0]"), "%s", err);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_policy_types_2)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                    "spec: {podSelector: {}, policyTypes: Ingress}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_policy_types_3)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                    "spec: {podSelector: {}, policyTypes: [Ingress, 3]}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_selector_and_rules_1)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s,
	                 "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                 "spec: {podSelector: {matchExpressions: [{key: a, operator: Maybe}]}}\n"),
	             -EINVAL);
	cr_assert(strstr(err, "podSelector"), "%s", err);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_selector_and_rules_2)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                    "spec: {podSelector: {}, ingress: {from: []}}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_selector_and_rules_3)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                    "spec: {podSelector: {}, egress: [x]}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_selector_and_rules_4)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                    "spec: {podSelector: {}, egress: [{to: x}]}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_selector_and_rules_5)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, "kind: NetworkPolicy\nmetadata: {name: p}\n"
	                    "spec: {podSelector: {}, ingress: [{ports: 80}]}\n"),
	             -EINVAL);
	cr_assert_eq(wh_netpol_set_count(s), 0);
	wh_netpol_set_unref(s);
}

Test(wh_netpol, rejects_bad_remove_arguments)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(wh_netpol_set_remove(s, "ci", NULL), -EINVAL);
	cr_assert_eq(wh_netpol_set_remove(NULL, "ci", "p"), -EINVAL);
	cr_assert_eq(wh_netpol_set_remove(s, NULL, "p"), -ENOENT);
	wh_netpol_set_unref(s);
}

/* Readers on several threads take and drop references while the owner
 * drops its own: the set is freed exactly once, after the last reader. */

static void *ref_churn(void *arg)
{
	wh_netpol_set *s = arg;
	for (int i = 0; i < 10000; i++) {
		wh_netpol_set *r = wh_netpol_set_ref(s);
		wh_netpol_coverage c;
		wh_netpol_coverage_for(r, "ci", NULL, &c);
		cr_assert(c.ingress);
		wh_netpol_set_unref(r);
	}
	wh_netpol_set_unref(s); /* the reference the creator handed this thread */
	return NULL;
}

Test(wh_netpol, references_are_thread_safe)
{
	wh_netpol_set *s = wh_netpol_set_new();
	cr_assert_eq(add(s, DENY_ALL("ci", "p")), 0, "%s", err);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, ref_churn, wh_netpol_set_ref(s)), 0);
	wh_netpol_set_unref(s);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
}
