/*
 * wh_selector.c - Kubernetes LabelSelector (see wh_selector.h).
 *
 * matchLabels entries become `In` requirements with one value, so matching
 * is one loop over requirements, all ANDed, as the API server evaluates
 * them. Values are validated as the API does (In/NotIn need values,
 * Exists/DoesNotExist must not have any): a selector the API would refuse
 * is an error here, never a silently different match.
 * Thread-safety: a parsed selector is immutable. Ownership: see header.
 */
#include "wh_selector.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_json.h"

typedef enum sel_op { OP_IN, OP_NOT_IN, OP_EXISTS, OP_DOES_NOT_EXIST } sel_op;

typedef struct sel_req {
	char *key;
	sel_op op;
	char **values;
	size_t n_values;
} sel_req;

struct wh_selector {
	sel_req *reqs;
	size_t n_reqs;
};

static void req_free(sel_req *r)
{
	free(r->key);
	for (size_t i = 0; i < r->n_values; i++)
		free(r->values[i]);
	free(r->values);
}

void wh_selector_free(wh_selector *sel)
{
	if (!sel)
		return;
	for (size_t i = 0; i < sel->n_reqs; i++)
		req_free(&sel->reqs[i]);
	free(sel->reqs);
	free(sel);
}

static int add_req(wh_selector *sel, const char *key, sel_op op)
{
	sel_req *n = realloc(sel->reqs, (sel->n_reqs + 1) * sizeof *n);
	if (!n)
		return -ENOMEM;
	sel->reqs = n;
	sel_req *r = &sel->reqs[sel->n_reqs];
	memset(r, 0, sizeof *r);
	r->op = op;
	r->key = strdup(key);
	if (!r->key)
		return -ENOMEM;
	sel->n_reqs++;
	return 0;
}

static int add_value(sel_req *r, const char *v)
{
	char **n = realloc(r->values, (r->n_values + 1) * sizeof *n);
	if (!n)
		return -ENOMEM;
	r->values = n;
	r->values[r->n_values] = strdup(v);
	if (!r->values[r->n_values])
		return -ENOMEM;
	r->n_values++;
	return 0;
}

static int parse_op(const char *s, sel_op *op)
{
	static const struct {
		const char *name;
		sel_op op;
	} ops[] = {{"In", OP_IN},
	           {"NotIn", OP_NOT_IN},
	           {"Exists", OP_EXISTS},
	           {"DoesNotExist", OP_DOES_NOT_EXIST}};
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (!strcmp(s, ops[i].name)) {
			*op = ops[i].op;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_expression(wh_selector *sel, const cJSON *e, int idx, char *err, size_t errlen)
{
	if (!cJSON_IsObject(e)) {
		snprintf(err, errlen, "matchExpressions[%d]: must be an object", idx);
		return -EINVAL;
	}
	const cJSON *key = cf_json_get(e, "key");
	const cJSON *op = cf_json_get(e, "operator");
	const cJSON *values = cf_json_get(e, "values");
	if (!cJSON_IsString(key) || !key->valuestring[0]) {
		snprintf(err, errlen, "matchExpressions[%d].key: must be a non-empty string", idx);
		return -EINVAL;
	}
	sel_op o;
	if (!cJSON_IsString(op) || parse_op(op->valuestring, &o)) {
		snprintf(err, errlen,
		         "matchExpressions[%d].operator: must be In, NotIn, Exists or DoesNotExist",
		         idx);
		return -EINVAL;
	}
	if (values && !cJSON_IsNull(values) && !cJSON_IsArray(values)) {
		snprintf(err, errlen, "matchExpressions[%d].values: must be a list of strings",
		         idx);
		return -EINVAL;
	}
	int nvalues = cJSON_IsArray(values) ? cJSON_GetArraySize(values) : 0;
	if ((o == OP_IN || o == OP_NOT_IN) && nvalues == 0) {
		snprintf(err, errlen, "matchExpressions[%d].values: must be non-empty for %s", idx,
		         op->valuestring);
		return -EINVAL;
	}
	if ((o == OP_EXISTS || o == OP_DOES_NOT_EXIST) && nvalues != 0) {
		snprintf(err, errlen, "matchExpressions[%d].values: must be empty for %s", idx,
		         op->valuestring);
		return -EINVAL;
	}
	int rc = add_req(sel, key->valuestring, o);
	if (rc)
		return rc;
	sel_req *r = &sel->reqs[sel->n_reqs - 1];
	int j = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, values)
	{
		if (!cJSON_IsString(v)) {
			snprintf(err, errlen, "matchExpressions[%d].values[%d]: must be a string",
			         idx, j);
			return -EINVAL;
		}
		rc = add_value(r, v->valuestring);
		if (rc)
			return rc;
		j++;
	}
	return 0;
}

int wh_selector_parse(const cJSON *json, wh_selector **out, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof dummy;
	}
	err[0] = '\0';
	if (!out)
		return -EINVAL;
	*out = NULL;
	wh_selector *sel = calloc(1, sizeof *sel);
	if (!sel)
		return -ENOMEM;
	int rc = 0;
	if (!json || cJSON_IsNull(json))
		goto done;
	if (!cJSON_IsObject(json)) {
		snprintf(err, errlen, "selector: must be an object");
		rc = -EINVAL;
		goto fail;
	}
	const cJSON *ml = cf_json_get(json, "matchLabels");
	const cJSON *me = cf_json_get(json, "matchExpressions");
	if (ml && !cJSON_IsNull(ml)) {
		if (!cJSON_IsObject(ml)) {
			snprintf(err, errlen, "matchLabels: must be a map of strings");
			rc = -EINVAL;
			goto fail;
		}
		const cJSON *kv;
		cJSON_ArrayForEach(kv, ml)
		{
			if (!kv->string || !kv->string[0]) {
				snprintf(err, errlen, "matchLabels: keys must be non-empty");
				rc = -EINVAL;
				goto fail;
			}
			if (!cJSON_IsString(kv)) {
				snprintf(err, errlen, "matchLabels.%s: must be a string",
				         kv->string);
				rc = -EINVAL;
				goto fail;
			}
			rc = add_req(sel, kv->string, OP_IN);
			if (!rc)
				rc = add_value(&sel->reqs[sel->n_reqs - 1], kv->valuestring);
			if (rc)
				goto fail;
		}
	}
	if (me && !cJSON_IsNull(me)) {
		if (!cJSON_IsArray(me)) {
			snprintf(err, errlen, "matchExpressions: must be a list");
			rc = -EINVAL;
			goto fail;
		}
		int i = 0;
		const cJSON *e;
		cJSON_ArrayForEach(e, me)
		{
			rc = parse_expression(sel, e, i++, err, errlen);
			if (rc)
				goto fail;
		}
	}
done:
	*out = sel;
	return 0;
fail:
	if (rc == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	wh_selector_free(sel);
	return rc;
}

wh_selector *wh_selector_clone(const wh_selector *sel)
{
	if (!sel)
		return NULL;
	wh_selector *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	for (size_t i = 0; i < sel->n_reqs; i++) {
		const sel_req *r = &sel->reqs[i];
		if (add_req(c, r->key, r->op))
			goto fail;
		for (size_t j = 0; j < r->n_values; j++)
			if (add_value(&c->reqs[c->n_reqs - 1], r->values[j]))
				goto fail;
	}
	return c;
fail:
	wh_selector_free(c);
	return NULL;
}

static bool has_value(const sel_req *r, const char *v)
{
	for (size_t i = 0; i < r->n_values; i++)
		if (!strcmp(r->values[i], v))
			return true;
	return false;
}

bool wh_selector_matches(const wh_selector *sel, const cJSON *labels)
{
	if (!sel)
		return true;
	for (size_t i = 0; i < sel->n_reqs; i++) {
		const sel_req *r = &sel->reqs[i];
		const cJSON *l = cJSON_IsObject(labels) ? cf_json_get(labels, r->key) : NULL;
		bool present = l && !cJSON_IsNull(l);
		/* A label value that is not a string (invalid in the API) equals
		 * no value: it can satisfy Exists but never In. */
		const char *val = present && cJSON_IsString(l) ? l->valuestring : NULL;
		switch (r->op) {
		case OP_IN:
			if (!val || !has_value(r, val))
				return false;
			break;
		case OP_NOT_IN:
			if (val && has_value(r, val))
				return false;
			break;
		case OP_EXISTS:
			if (!present)
				return false;
			break;
		case OP_DOES_NOT_EXIST:
			if (present)
				return false;
			break;
		}
	}
	return true;
}

bool wh_selector_is_empty(const wh_selector *sel)
{
	return !sel || sel->n_reqs == 0;
}
