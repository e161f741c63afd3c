/*
 * cf_yaml.h - YAML (and JSON, a subset) to cJSON, with line numbers.
 *
 * Purpose: manifests, config files and command policies are YAML written by
 * people; every error must name a line. This module turns a multi-document
 * stream into one cJSON value per document and remembers the source line of
 * every node so later validation ("unknown key at line 12") can report it.
 *
 * Semantics, chosen for a security tool:
 * - YAML 1.2 core schema for plain scalars: null/~/empty -> null,
 *   true/false (any of true, True, TRUE) -> bool, decimal/0x/0o integers and
 *   floats (.inf/.nan excluded) -> number, anything else -> string. Quoted
 *   scalars and `!!str` are always strings. (YAML 1.1's yes/no/on/off stay
 *   strings; Kubernetes fields that take booleans reject those anyway.)
 * - Duplicate mapping keys are an error: Kubernetes' decoder keeps the last
 *   one, a naive reader the first, and a checker must never see a different
 *   object from the API server.
 * - Anchors and aliases are expanded; the expanded size counts against
 *   CF_YAML_MAX_NODES so an alias bomb fails fast. Merge keys (`<<`) are not
 *   interpreted (they are an error, since Kubernetes does not apply them
 *   either for JSON-converted objects and silent misreads are worse).
 * - Depth, node count, scalar size and document count are bounded
 *   (cf_limits.h).
 * - Empty documents (a bare `---`, comments only) are skipped.
 *
 * Thread-safety: no shared state; a cf_yaml_docs is owned by one thread.
 * Ownership: cf_yaml_parse fills `out`; cf_yaml_docs_free releases it. The
 * cJSON documents belong to `out->docs` (a cJSON array) unless detached.
 */
#ifndef CF_YAML_H
#define CF_YAML_H

#include <stddef.h>

#include <cjson/cJSON.h>

typedef struct cf_yaml_line_map cf_yaml_line_map;

typedef struct cf_yaml_docs {
	cJSON *docs; /* array: one item per non-empty document, in order */
	cf_yaml_line_map *lines;
} cf_yaml_docs;

/* 0 on success. On failure -EINVAL (syntax, duplicate key, merge key,
 * non-scalar key), -E2BIG (a limit), -ENOMEM, with `err` like
 * "line 7: duplicate key \"name\"" (the caller prefixes the file name). */
int cf_yaml_parse(const char *data, size_t len, cf_yaml_docs *out, char *err, size_t errlen);
void cf_yaml_docs_free(cf_yaml_docs *d);

/* 1-based source line of a node: for a mapping member, the line of its
 * key; for a sequence item or document root, where the node starts. 0 when
 * unknown (e.g. a node created after parsing). */
unsigned cf_yaml_line(const cf_yaml_docs *d, const cJSON *node);

/* What a parsed node is, for messages like "must be a string, not a
 * number": "null", "a boolean", "a number", "a string", `sequence_word`
 * for a sequence (callers keep the word their users and tests know: "a
 * list" or "a sequence"), otherwise "a mapping". A static string. */
const char *cf_yaml_type_name(const cJSON *node, const char *sequence_word);

#endif
