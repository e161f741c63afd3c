/*
 * cf_jparse.h - a strict JSON (RFC 8259) parser that builds a cJSON tree,
 * for the admission request path.
 *
 * Purpose: every admission request is a ~4 KB AdmissionReview parsed on
 * the request thread. cJSON's own parser compares every value against
 * "null", "false" and "true" with strncmp before looking at its first
 * byte, scans each string twice and converts every number with strtod;
 * under load that was a fifth of the server's CPU. This parser looks at
 * each byte once, and integers up to 15 digits are converted exactly
 * without strtod. Inside a cf_jarena parse with room in the arena, the
 * text is copied there once and every string is terminated (unescaped, if
 * need be) in place in that copy; otherwise each string is copied out.
 *
 * The tree is an ordinary cJSON tree (nodes and strings from
 * cf_jarena_alloc, what cJSON_malloc does, called directly, or pointing
 * into the arena's copy of the text, which cJSON_free leaves alone; free
 * with cJSON_Delete), linked exactly as cJSON links its own: members in document order, `prev` of
 * the first child pointing at the last. Duplicate keys are kept in order (lookups find the first),
 * as cJSON does.
 *
 * Stricter than cJSON where RFC 8259 is: raw control characters in
 * strings, leading zeros, a lone '-', "1." and "1e" are errors. Also an
 * error: "\u0000" inside a string (a C string would silently end there, so
 * the policy would judge a value other than the one the API server
 * stores), unpaired UTF-16 surrogates, numbers longer than 63 characters,
 * nesting deeper than CF_JPARSE_MAX_DEPTH, and anything but whitespace
 * after the value.
 *
 * Thread-safety: reentrant; no shared state. Ownership: the caller owns
 * the returned tree.
 */
#ifndef CF_JPARSE_H
#define CF_JPARSE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define CF_JPARSE_MAX_DEPTH 1000 /* cJSON's CJSON_NESTING_LIMIT */

/* Parses text[0..len) as exactly one JSON value (whitespace around it
 * allowed). NULL on error (or allocation failure) with `err` naming what
 * and *err_offset the byte where it was found. */
cJSON *cf_jparse(const char *text, size_t len, size_t *err_offset, char *err, size_t errlen);

#endif
