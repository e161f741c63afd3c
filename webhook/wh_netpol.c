/*
 * wh_netpol.c - NetworkPolicy set and coverage (see wh_netpol.h).
 *
 * The set keeps only what coverage needs (namespace, name, parsed
 * podSelector, effective policyTypes, allow-all flags), in one array sorted
 * by (namespace, name): a namespace's policies are a contiguous run found by
 * binary search, and iteration order (hence the policy named in messages)
 * is deterministic.
 * Effective policyTypes follow the API server's defaulting exactly: the
 * list as written when non-empty; otherwise Ingress, plus Egress when the
 * `egress` list is non-empty.
 * Thread-safety: see header; the reference count is a C11 atomic.
 * Ownership: the set owns copies of every string and selector.
 */
#include "wh_netpol.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "wh_selector.h"

typedef struct np_policy {
	char *ns;
	char *name;
	wh_selector *sel;
	bool ingress, egress;         /* effective policyTypes */
	bool ingress_all, egress_all; /* a rule allows all traffic that way */
} np_policy;

struct wh_netpol_set {
	atomic_int refs;
	np_policy *items;
	size_t n, cap;
};

wh_netpol_set *wh_netpol_set_new(void)
{
	wh_netpol_set *s = calloc(1, sizeof *s);
	if (s)
		atomic_init(&s->refs, 1);
	return s;
}

static void policy_free(np_policy *p)
{
	free(p->ns);
	free(p->name);
	wh_selector_free(p->sel);
}

static void set_free(wh_netpol_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		policy_free(&s->items[i]);
	free(s->items);
	free(s);
}

wh_netpol_set *wh_netpol_set_ref(wh_netpol_set *set)
{
	if (set)
		atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
	return set;
}

void wh_netpol_set_unref(wh_netpol_set *set)
{
	if (!set)
		return;
	/* acq_rel: the last owner must see every write made before others let go. */
	if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1)
		set_free(set);
}

size_t wh_netpol_set_count(const wh_netpol_set *set)
{
	return set ? set->n : 0;
}

static int key_cmp(const char *ns_a, const char *name_a, const char *ns_b, const char *name_b)
{
	int c = strcmp(ns_a, ns_b);
	return c ? c : strcmp(name_a, name_b);
}

/* First index whose (ns, name) is >= the key. */
static size_t lower_bound(const wh_netpol_set *s, const char *ns, const char *name)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key_cmp(s->items[mid].ns, s->items[mid].name, ns, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A rule with no peers and no ports matches every peer on every port. */
static bool rule_allows_all(const cJSON *rule, const char *peers_key)
{
	const cJSON *peers = cJSON_GetObjectItemCaseSensitive(rule, peers_key);
	const cJSON *ports = cJSON_GetObjectItemCaseSensitive(rule, "ports");
	bool no_peers = !peers || cJSON_IsNull(peers) || cJSON_GetArraySize(peers) == 0;
	bool no_ports = !ports || cJSON_IsNull(ports) || cJSON_GetArraySize(ports) == 0;
	return no_peers && no_ports;
}

/* Validates a rule list; *n gets its length, *all whether a rule allows all. */
static int read_rules(const cJSON *spec, const char *key, const char *peers_key, int *n, bool *all,
                      char *err, size_t errlen)
{
	const cJSON *rules = cJSON_GetObjectItemCaseSensitive(spec, key);
	*n = 0;
	*all = false;
	if (!rules || cJSON_IsNull(rules))
		return 0;
	if (!cJSON_IsArray(rules)) {
		snprintf(err, errlen, "spec.%s: must be a list", key);
		return -EINVAL;
	}
	int i = 0;
	const cJSON *r;
	cJSON_ArrayForEach(r, rules)
	{
		if (!cJSON_IsObject(r)) {
			snprintf(err, errlen, "spec.%s[%d]: must be an object", key, i);
			return -EINVAL;
		}
		const cJSON *peers = cJSON_GetObjectItemCaseSensitive(r, peers_key);
		const cJSON *ports = cJSON_GetObjectItemCaseSensitive(r, "ports");
		if (peers && !cJSON_IsNull(peers) && !cJSON_IsArray(peers)) {
			snprintf(err, errlen, "spec.%s[%d].%s: must be a list", key, i, peers_key);
			return -EINVAL;
		}
		if (ports && !cJSON_IsNull(ports) && !cJSON_IsArray(ports)) {
			snprintf(err, errlen, "spec.%s[%d].ports: must be a list", key, i);
			return -EINVAL;
		}
		if (rule_allows_all(r, peers_key))
			*all = true;
		i++;
	}
	*n = i;
	return 0;
}

/* Which directions the policy isolates: policyTypes as written, else the
 * API's defaulting (Ingress, plus Egress when there are egress rules,
 * `n_egress`). Rules of a direction not isolated are ignored by the API
 * server, so they cannot "allow all" either. */
static int read_policy_types(const cJSON *spec, int n_egress, np_policy *p, char *err,
                             size_t errlen)
{
	const cJSON *types = cJSON_GetObjectItemCaseSensitive(spec, "policyTypes");
	if (types && !cJSON_IsNull(types) && !cJSON_IsArray(types)) {
		snprintf(err, errlen, "spec.policyTypes: must be a list");
		return -EINVAL;
	}
	if (cJSON_GetArraySize(types) > 0) {
		int i = 0;
		const cJSON *t;
		cJSON_ArrayForEach(t, types)
		{
			if (cJSON_IsString(t) && !strcmp(t->valuestring, "Ingress")) {
				p->ingress = true;
			} else if (cJSON_IsString(t) && !strcmp(t->valuestring, "Egress")) {
				p->egress = true;
			} else {
				snprintf(err, errlen,
				         "spec.policyTypes[%d]: must be \"Ingress\" or \"Egress\"",
				         i);
				return -EINVAL;
			}
			i++;
		}
	} else {
		/* API defaulting (networking/v1 SetDefaults_NetworkPolicySpec). */
		p->ingress = true;
		p->egress = n_egress > 0;
	}
	if (!p->ingress)
		p->ingress_all = false;
	if (!p->egress)
		p->egress_all = false;
	return 0;
}

static int policy_from_json(const cJSON *policy, np_policy *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	if (!cJSON_IsObject(policy)) {
		snprintf(err, errlen, "NetworkPolicy: must be an object");
		return -EINVAL;
	}
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(policy, "kind");
	if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "NetworkPolicy") != 0) {
		snprintf(err, errlen, "not a NetworkPolicy (kind)");
		return -EINVAL;
	}
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(policy, "metadata");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
	if (!cJSON_IsObject(md) || !cJSON_IsString(name) || !name->valuestring[0] ||
	    strlen(name->valuestring) > CF_K8S_MAX_NAME_CHARS) {
		snprintf(err, errlen,
		         "NetworkPolicy: metadata.name must be a non-empty string of at most %u "
		         "characters",
		         CF_K8S_MAX_NAME_CHARS);
		return -EINVAL;
	}
	if (ns && !cJSON_IsNull(ns) &&
	    (!cJSON_IsString(ns) || strlen(ns->valuestring) > CF_K8S_MAX_NAME_CHARS)) {
		snprintf(err, errlen,
		         "NetworkPolicy %s: metadata.namespace must be a string of at most %u "
		         "characters",
		         name->valuestring, CF_K8S_MAX_NAME_CHARS);
		return -EINVAL;
	}
	/* "" is no namespace, like a missing one (as for the pods checked) */
	const char *nsname = cJSON_IsString(ns) && ns->valuestring[0] ? ns->valuestring : "default";
	const cJSON *spec = cJSON_GetObjectItemCaseSensitive(policy, "spec");
	char sub[200];
	sub[0] = '\0';
	int rc;
	if (!cJSON_IsObject(spec)) {
		snprintf(sub, sizeof sub, "spec: must be an object");
		rc = -EINVAL;
		goto fail;
	}
	/* "spec.podSelector." is prefixed to the selector's own message. */
	static const char sel_prefix[] = "spec.podSelector.";
	memcpy(sub, sel_prefix, sizeof sel_prefix);
	rc = wh_selector_parse(cJSON_GetObjectItemCaseSensitive(spec, "podSelector"), &p->sel,
	                       sub + sizeof sel_prefix - 1, sizeof sub - (sizeof sel_prefix - 1));
	if (rc)
		goto fail;
	sub[0] = '\0';
	int n_in, n_eg;
	rc = read_rules(spec, "ingress", "from", &n_in, &p->ingress_all, sub, sizeof sub);
	if (!rc)
		rc = read_rules(spec, "egress", "to", &n_eg, &p->egress_all, sub, sizeof sub);
	if (rc)
		goto fail;
	rc = read_policy_types(spec, n_eg, p, sub, sizeof sub);
	if (rc)
		goto fail;
	p->ns = strdup(nsname);
	p->name = strdup(name->valuestring);
	if (!p->ns || !p->name) {
		rc = -ENOMEM;
		snprintf(sub, sizeof sub, "out of memory");
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "NetworkPolicy %s/%s: %s", nsname, name->valuestring, sub);
	policy_free(p);
	memset(p, 0, sizeof *p);
	return rc;
}

int wh_netpol_set_add(wh_netpol_set *set, const cJSON *policy, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	if (!set)
		return -EINVAL;
	np_policy p;
	int rc = policy_from_json(policy, &p, err, errlen);
	if (rc)
		return rc;
	size_t at = lower_bound(set, p.ns, p.name);
	if (at < set->n && !key_cmp(set->items[at].ns, set->items[at].name, p.ns, p.name)) {
		policy_free(&set->items[at]);
		set->items[at] = p;
		return 0;
	}
	if (set->n == set->cap) {
		np_policy *n = cf_grow(set->items, &set->cap, set->n + 1, sizeof *n);
		if (!n) {
			policy_free(&p);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		set->items = n;
	}
	memmove(&set->items[at + 1], &set->items[at], (set->n - at) * sizeof *set->items);
	set->items[at] = p;
	set->n++;
	return 0;
}

int wh_netpol_set_remove(wh_netpol_set *set, const char *ns, const char *name)
{
	if (!set || !name)
		return -EINVAL;
	if (!ns)
		ns = "default";
	size_t at = lower_bound(set, ns, name);
	if (at >= set->n || key_cmp(set->items[at].ns, set->items[at].name, ns, name))
		return -ENOENT;
	policy_free(&set->items[at]);
	memmove(&set->items[at], &set->items[at + 1], (set->n - at - 1) * sizeof *set->items);
	set->n--;
	return 0;
}

wh_netpol_set *wh_netpol_set_clone(const wh_netpol_set *set)
{
	wh_netpol_set *c = wh_netpol_set_new();
	if (!c || !set || !set->n)
		return c;
	c->items = calloc(set->n, sizeof *c->items);
	if (!c->items)
		goto fail;
	c->cap = set->n;
	for (size_t i = 0; i < set->n; i++) {
		const np_policy *s = &set->items[i];
		np_policy *d = &c->items[i];
		*d = *s;
		d->ns = strdup(s->ns);
		d->name = strdup(s->name);
		d->sel = wh_selector_clone(s->sel);
		c->n = i + 1; /* d is now owned by c, even half-built */
		if (!d->ns || !d->name || (s->sel && !d->sel))
			goto fail;
	}
	return c;
fail:
	wh_netpol_set_unref(c);
	return NULL;
}

void wh_netpol_coverage_for(const wh_netpol_set *set, const char *ns, const cJSON *labels,
                            wh_netpol_coverage *out)
{
	memset(out, 0, sizeof *out);
	if (!set)
		return;
	if (!ns || !ns[0])
		ns = "default";
	for (size_t i = lower_bound(set, ns, ""); i < set->n && !strcmp(set->items[i].ns, ns);
	     i++) {
		const np_policy *p = &set->items[i];
		if (!wh_selector_matches(p->sel, labels))
			continue;
		/* Policies add up: one that allows all makes the direction open
		 * whatever the others say, so it is the one to name. */
		if (p->ingress) {
			if (!out->ingress || (p->ingress_all && !out->ingress_allow_all))
				cf_str_copy(out->ingress_policy, sizeof out->ingress_policy,
				            p->name);
			out->ingress = true;
			out->ingress_allow_all |= p->ingress_all;
		}
		if (p->egress) {
			if (!out->egress || (p->egress_all && !out->egress_allow_all))
				cf_str_copy(out->egress_policy, sizeof out->egress_policy, p->name);
			out->egress = true;
			out->egress_allow_all |= p->egress_all;
		}
	}
}
