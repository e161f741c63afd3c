/*
 * cf_json.h - cJSON lookups for the request path.
 *
 * cf_json_get is cJSON_GetObjectItemCaseSensitive with the same result in
 * every case (the first member with that exact name; NULL for a NULL
 * object or name, a non-object, or an array), but it compares the first
 * byte before calling strcmp. The policy checks do about a thousand
 * lookups per AdmissionReview, mostly of names that are absent, so
 * cJSON's strcmp per member was a quarter of the admission work.
 *
 * cf_json_append_quoted writes a JSON string the way cJSON prints one, for
 * answers built without a tree.
 *
 * Thread-safety: reads only. Ownership: returns a pointer into `object`.
 */
#ifndef CF_JSON_H
#define CF_JSON_H

#include <cjson/cJSON.h>

#include "cf_buf.h"

cJSON *cf_json_get(const cJSON *object, const char *name);
/* The member `name` when it has the expected type, else NULL (absent,
 * null, or another type): the policy checks treat all three alike. */
const cJSON *cf_json_object(const cJSON *object, const char *name);
const cJSON *cf_json_array(const cJSON *object, const char *name);
const char *cf_json_string(const cJSON *object, const char *name);

/* Writes s as a quoted JSON string, escaped byte for byte as
 * cJSON_PrintUnformatted escapes it (", \\ and the short control escapes,
 * other bytes below 0x20 as \u00xx, everything else as is), in pieces
 * through put. */
void cf_json_quote(const char *s, void (*put)(void *ctx, const char *bytes, size_t n), void *ctx);
/* cf_json_quote into a cf_buf. 0 or the first cf_buf_append error. */
int cf_json_append_quoted(cf_buf *b, const char *s);

#endif
