/*
 * wh_quantity.h - Kubernetes resource quantities, parsed exactly.
 *
 * Purpose: limits such as "500m", "2Gi", "1e3", "0.5" are compared exactly,
 * never through floating point. A quantity is held as an integer count of
 * nano-units (value x 10^9) in 128 bits, which covers every quantity the API
 * server accepts (it caps at 2^63-1 in the base unit); sub-nano fractions
 * round up, as Kubernetes does when it canonicalises.
 * Grammar (k8s.io/apimachinery resource.Quantity): sign? digits ("." digits)?
 * suffix?, suffix one of the binary Ki Mi Gi Ti Pi Ei, the decimal n u m ""
 * k M G T P E, or an exponent e<int>/E<int>.
 * Thread-safety: pure functions. Ownership: values only.
 */
#ifndef WH_QUANTITY_H
#define WH_QUANTITY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct wh_quantity {
	__int128 nanos;
} wh_quantity;

/* 0, or -EINVAL (not a quantity) / -ERANGE (beyond the representable). */
int wh_quantity_parse(const char *text, wh_quantity *out);
/* The same, always through the general big-integer parser (wh_quantity_parse
 * takes a shortcut for common forms): for tests comparing the two. */
int wh_quantity_parse_exact(const char *text, wh_quantity *out);
/* Accepts a JSON string, or a JSON number (its source text when the YAML
 * reader kept it in valuestring, else the double). */
int wh_quantity_from_json(const cJSON *item, wh_quantity *out);
/* <0, 0, >0 like strcmp. */
int wh_quantity_cmp(const wh_quantity *a, const wh_quantity *b);
bool wh_quantity_is_zero(const wh_quantity *q);
/* Canonical-ish text for messages, e.g. "500m", "2Gi" is printed "2147483648". */
void wh_quantity_format(const wh_quantity *q, char *out, size_t outlen);

#endif
