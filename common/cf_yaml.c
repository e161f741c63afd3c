/* cf_yaml.c - see cf_yaml.h. libyaml's event API drives an explicit stack,
 * so hostile nesting is bounded by CF_YAML_MAX_DEPTH, never by C recursion
 * (except cJSON_Duplicate on an alias, whose depth is already bounded). */
#include "cf_yaml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cf_buf.h"
#include "cf_limits.h"

typedef struct line_entry {
	const cJSON *node;
	unsigned line;
} line_entry;

struct cf_yaml_line_map {
	line_entry *v;
	size_t n, cap;
};

typedef struct frame {
	cJSON *node;
	bool is_map;
	char *key; /* pending mapping key, owned */
	unsigned key_line;
	size_t anchor; /* index into anchors, or SIZE_MAX */
	size_t nodes_at_start;
} frame;

typedef struct anchor {
	char *name;
	cJSON *node;
	size_t subtree_nodes; /* 0 while still open */
} anchor;

typedef struct builder {
	frame stack[CF_YAML_MAX_DEPTH + 1];
	size_t depth;
	cJSON *root;
	anchor *anchors;
	size_t n_anchors;
	size_t nodes;
	cf_yaml_line_map *lines;
	char *err;
	size_t errlen;
} builder;

__attribute__((format(printf, 4, 5))) static int fail(builder *b, int rc, unsigned line,
                                                      const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(b->err, b->errlen, "line %u: %s", line, msg);
	return rc;
}

static int record_line(cf_yaml_line_map *m, const cJSON *node, unsigned line)
{
	if (m->n == m->cap) {
		line_entry *v = cf_grow(m->v, &m->cap, m->n + 1, sizeof *v);
		if (!v)
			return -ENOMEM;
		m->v = v;
	}
	m->v[m->n].node = node;
	m->v[m->n].line = line;
	m->n++;
	return 0;
}

static void clear_anchors(builder *b)
{
	for (size_t i = 0; i < b->n_anchors; i++)
		free(b->anchors[i].name);
	free(b->anchors);
	b->anchors = NULL;
	b->n_anchors = 0;
}

static void clear_stack(builder *b)
{
	for (size_t i = 0; i < b->depth; i++)
		free(b->stack[i].key);
	b->depth = 0;
	cJSON_Delete(b->root);
	b->root = NULL;
}

static int count_node(builder *b, size_t n, unsigned line)
{
	if (n > CF_YAML_MAX_NODES || b->nodes > CF_YAML_MAX_NODES - n)
		return fail(b, -E2BIG, line, "document has more than %u nodes (alias bomb?)",
		            CF_YAML_MAX_NODES);
	b->nodes += n;
	return 0;
}

static int add_anchor(builder *b, const unsigned char *name, cJSON *node, size_t subtree,
                      size_t *index, unsigned line)
{
	if (b->n_anchors >= CF_YAML_MAX_ANCHORS)
		return fail(b, -E2BIG, line, "more than %u anchors", CF_YAML_MAX_ANCHORS);
	anchor *a = realloc(b->anchors, (b->n_anchors + 1) * sizeof *a);
	if (!a)
		return -ENOMEM;
	b->anchors = a;
	/* A later anchor of the same name shadows the earlier one (YAML 1.2). */
	a[b->n_anchors] = (anchor){strdup((const char *)name), node, subtree};
	if (!a[b->n_anchors].name)
		return -ENOMEM;
	if (index)
		*index = b->n_anchors;
	b->n_anchors++;
	return 0;
}

static const anchor *find_anchor(const builder *b, const char *name)
{
	for (size_t i = b->n_anchors; i-- > 0;)
		if (strcmp(b->anchors[i].name, name) == 0)
			return &b->anchors[i];
	return NULL;
}

/* Places a finished (or just opened) node under its parent. */
static int attach(builder *b, cJSON *node, unsigned line)
{
	if (b->depth == 0) {
		b->root = node;
		return record_line(b->lines, node, line);
	}
	frame *parent = &b->stack[b->depth - 1];
	if (parent->is_map) {
		cJSON_AddItemToObject(parent->node, parent->key, node);
		int rc = record_line(b->lines, node, parent->key_line);
		free(parent->key);
		parent->key = NULL;
		return rc;
	}
	cJSON_AddItemToArray(parent->node, node);
	return record_line(b->lines, node, line);
}

static bool awaiting_key(const builder *b)
{
	return b->depth > 0 && b->stack[b->depth - 1].is_map && !b->stack[b->depth - 1].key;
}

static int set_key(builder *b, const char *key, unsigned line)
{
	frame *parent = &b->stack[b->depth - 1];
	if (cJSON_GetObjectItemCaseSensitive(parent->node, key))
		return fail(b, -EINVAL, line, "duplicate key \"%s\"", key);
	parent->key = strdup(key);
	if (!parent->key)
		return -ENOMEM;
	parent->key_line = line;
	return 0;
}

static bool all_chars(const char *s, const char *allowed)
{
	return *s && strspn(s, allowed) == strlen(s);
}

static cJSON *number_node(double v, const char *text)
{
	cJSON *n = cJSON_CreateNumber(v);
	/* Keep the source text: quantities such as 1e3 or 0.5 must be read
	 * exactly as written, not through a double. cJSON frees it. */
	if (n)
		n->valuestring = strdup(text);
	return n;
}

/* YAML 1.2 core schema resolution for an untagged plain scalar. */
static cJSON *resolve_plain(const char *s)
{
	if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	    !strcmp(s, "NULL"))
		return cJSON_CreateNull();
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return cJSON_CreateTrue();
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return cJSON_CreateFalse();
	const char *body = (*s == '-' || *s == '+') ? s + 1 : s;
	if ((!strncmp(s, "0x", 2) && all_chars(s + 2, "0123456789abcdefABCDEF")) ||
	    (!strncmp(s, "0o", 2) && all_chars(s + 2, "01234567")))
		return number_node((double)strtoull(s + 2, NULL, s[1] == 'x' ? 16 : 8), s);
	if (all_chars(body, "0123456789.eE+-") &&
	    ((*body >= '0' && *body <= '9') || *body == '.')) {
		char *end;
		double v = strtod(s, &end);
		if (*end == '\0' && end != s)
			return number_node(v, s);
	}
	return cJSON_CreateString(s);
}

static int on_scalar(builder *b, yaml_event_t *ev, unsigned line)
{
	const char *text = (const char *)ev->data.scalar.value;
	if (ev->data.scalar.length > CF_YAML_MAX_SCALAR_BYTES)
		return fail(b, -E2BIG, line, "scalar is longer than %u bytes",
		            CF_YAML_MAX_SCALAR_BYTES);
	if (strlen(text) != ev->data.scalar.length)
		return fail(b, -EINVAL, line, "scalar contains a NUL byte");
	int rc = count_node(b, 1, line);
	if (rc)
		return rc;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool str_tag = tag && !strcmp(tag, YAML_STR_TAG);
	if (awaiting_key(b)) {
		if (plain && !str_tag && !strcmp(text, "<<"))
			return fail(b, -EINVAL, line, "merge keys (<<) are not supported");
		return set_key(b, text, line);
	}
	cJSON *node = (plain && !str_tag) ? resolve_plain(text) : cJSON_CreateString(text);
	if (!node)
		return -ENOMEM;
	if ((rc = attach(b, node, line)))
		return rc;
	if (ev->data.scalar.anchor)
		return add_anchor(b, ev->data.scalar.anchor, node, 1, NULL, line);
	return 0;
}

static int on_alias(builder *b, yaml_event_t *ev, unsigned line)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const anchor *a = find_anchor(b, name);
	if (!a)
		return fail(b, -EINVAL, line, "unknown alias \"*%s\"", name);
	if (a->subtree_nodes == 0)
		return fail(b, -EINVAL, line, "alias \"*%s\" refers to its own ancestor", name);
	int rc = count_node(b, a->subtree_nodes, line);
	if (rc)
		return rc;
	if (awaiting_key(b)) {
		if (!cJSON_IsString(a->node))
			return fail(b, -EINVAL, line, "alias \"*%s\" used as a key is not a string",
			            name);
		return set_key(b, a->node->valuestring, line);
	}
	cJSON *copy = cJSON_Duplicate(a->node, 1);
	if (!copy)
		return -ENOMEM;
	return attach(b, copy, line);
}

static int on_collection_start(builder *b, yaml_event_t *ev, bool is_map, unsigned line)
{
	if (awaiting_key(b))
		return fail(b, -EINVAL, line, "mapping keys must be scalars");
	if (b->depth >= CF_YAML_MAX_DEPTH)
		return fail(b, -E2BIG, line, "nesting is deeper than %d levels", CF_YAML_MAX_DEPTH);
	int rc = count_node(b, 1, line);
	if (rc)
		return rc;
	cJSON *node = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
	if (!node)
		return -ENOMEM;
	if ((rc = attach(b, node, line)))
		return rc;
	frame *f = &b->stack[b->depth++];
	*f = (frame){
	    .node = node, .is_map = is_map, .anchor = SIZE_MAX, .nodes_at_start = b->nodes - 1};
	const yaml_char_t *name =
	    is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	if (name)
		return add_anchor(b, name, node, 0, &f->anchor, line);
	return 0;
}

static void on_collection_end(builder *b)
{
	frame *f = &b->stack[--b->depth];
	if (f->anchor != SIZE_MAX)
		b->anchors[f->anchor].subtree_nodes = b->nodes - f->nodes_at_start;
	free(f->key);
	f->key = NULL;
}

static int end_document(builder *b, cJSON *docs, unsigned line)
{
	clear_anchors(b);
	b->nodes = 0;
	if (!b->root || cJSON_IsNull(b->root)) {
		/* Forget the dropped root's line entry (it was recorded last) so a
		 * later node at the same address cannot inherit it. */
		cf_yaml_line_map *m = b->lines;
		if (b->root && m->n && m->v[m->n - 1].node == b->root)
			m->n--;
		cJSON_Delete(b->root);
		b->root = NULL;
		return 0;
	}
	if (cJSON_GetArraySize(docs) >= (int)CF_YAML_MAX_DOCUMENTS)
		return fail(b, -E2BIG, line, "more than %u documents", CF_YAML_MAX_DOCUMENTS);
	cJSON_AddItemToArray(docs, b->root);
	b->root = NULL;
	return 0;
}

static int handle_event(builder *b, yaml_event_t *ev, cJSON *docs)
{
	unsigned line = (unsigned)ev->start_mark.line + 1;
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev, line);
	case YAML_ALIAS_EVENT:
		return on_alias(b, ev, line);
	case YAML_MAPPING_START_EVENT:
		return on_collection_start(b, ev, true, line);
	case YAML_SEQUENCE_START_EVENT:
		return on_collection_start(b, ev, false, line);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		on_collection_end(b);
		return 0;
	case YAML_DOCUMENT_END_EVENT:
		return end_document(b, docs, line);
	default:
		return 0;
	}
}

static int compare_entries(const void *a, const void *b)
{
	const line_entry *x = a, *y = b;
	return (x->node > y->node) - (x->node < y->node);
}

int cf_yaml_parse(const char *data, size_t len, cf_yaml_docs *out, char *err, size_t errlen)
{
	yaml_parser_t parser;
	builder *b = calloc(1, sizeof *b);
	int rc = -ENOMEM;
	out->docs = cJSON_CreateArray();
	out->lines = calloc(1, sizeof *out->lines);
	if (!b || !out->docs || !out->lines || !yaml_parser_initialize(&parser)) {
		snprintf(err, errlen, "out of memory");
		free(b);
		cf_yaml_docs_free(out);
		return -ENOMEM;
	}
	b->lines = out->lines;
	b->err = err;
	b->errlen = errlen;
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	for (;;) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&parser, &ev)) {
			snprintf(err, errlen, "line %zu: %s%s%s",
			         (size_t)parser.problem_mark.line + 1,
			         parser.problem ? parser.problem : "invalid YAML",
			         parser.context ? " " : "", parser.context ? parser.context : "");
			rc = -EINVAL;
			goto fail;
		}
		bool done = ev.type == YAML_STREAM_END_EVENT;
		rc = handle_event(b, &ev, out->docs);
		yaml_event_delete(&ev);
		if (rc) {
			if (rc == -ENOMEM)
				snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (done)
			break;
	}
	yaml_parser_delete(&parser);
	clear_stack(b);
	clear_anchors(b);
	free(b);
	if (out->lines->n)
		qsort(out->lines->v, out->lines->n, sizeof *out->lines->v, compare_entries);
	return 0;
fail:
	yaml_parser_delete(&parser);
	clear_stack(b);
	clear_anchors(b);
	free(b);
	cf_yaml_docs_free(out);
	return rc;
}

void cf_yaml_docs_free(cf_yaml_docs *d)
{
	cJSON_Delete(d->docs);
	d->docs = NULL;
	if (d->lines) {
		free(d->lines->v);
		free(d->lines);
	}
	d->lines = NULL;
}

unsigned cf_yaml_line(const cf_yaml_docs *d, const cJSON *node)
{
	if (!d || !d->lines || !d->lines->n || !node)
		return 0;
	line_entry key = {node, 0};
	const line_entry *e = bsearch(&key, d->lines->v, d->lines->n, sizeof key, compare_entries);
	return e ? e->line : 0;
}

const char *cf_yaml_type_name(const cJSON *node, const char *sequence_word)
{
	if (cJSON_IsNull(node))
		return "null";
	if (cJSON_IsBool(node))
		return "a boolean";
	if (cJSON_IsNumber(node))
		return "a number";
	if (cJSON_IsString(node))
		return "a string";
	if (cJSON_IsArray(node))
		return sequence_word;
	return "a mapping";
}
