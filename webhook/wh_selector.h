/*
 * wh_selector.h - Kubernetes LabelSelector (matchLabels + matchExpressions
 * with In, NotIn, Exists, DoesNotExist), with the API's exact semantics:
 * all requirements ANDed; an empty selector ({}) matches everything; NotIn
 * and DoesNotExist match objects without the key; In with an absent key
 * does not match.
 * Used by NetworkPolicy podSelector and by the worker selector in config.
 * Thread-safety: a parsed selector is immutable and may be shared between
 * threads. Ownership: wh_selector_parse allocates; wh_selector_free frees.
 */
#ifndef WH_SELECTOR_H
#define WH_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct wh_selector wh_selector;

/* `json` is a LabelSelector object, or NULL/JSON null for "match
 * everything". -EINVAL with a message naming the bad field for an unknown
 * operator, a non-string value, In/NotIn without values, Exists with values. */
int wh_selector_parse(const cJSON *json, wh_selector **out, char *err, size_t errlen);
/* `labels` is a JSON object of string values, or NULL (no labels). */
bool wh_selector_matches(const wh_selector *sel, const cJSON *labels);
bool wh_selector_is_empty(const wh_selector *sel);
/* A deep copy (for wh_netpol_set_clone); NULL on allocation failure or
 * when `sel` is NULL. */
wh_selector *wh_selector_clone(const wh_selector *sel);
void wh_selector_free(wh_selector *sel);

#endif
