/* cf_jparse.c - see cf_jparse.h. */
#include "cf_jparse.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_jarena.h"

typedef struct parser {
	const char *p, *end;
	const char *text;
	/* A copy of text in the arena, or NULL: strings are then terminated
	 * (and unescaped) in place there instead of each being copied out. */
	char *mirror;
	const char *err_at; /* where the first error was found */
	const char *msg;
	unsigned depth;
} parser;

static cJSON *parse_value(parser *ps);

static void *fail(parser *ps, const char *at, const char *msg)
{
	if (!ps->msg) {
		ps->err_at = at;
		ps->msg = msg;
	}
	return NULL;
}

static void skip_space(parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
		ps->p++;
}

static cJSON *new_node(parser *ps, int type)
{
	cJSON *n = cf_jarena_alloc(sizeof *n);
	if (!n)
		return fail(ps, ps->p, "out of memory");
	memset(n, 0, sizeof *n);
	n->type = type;
	return n;
}

static int hex4(const char *s)
{
	int v = 0;
	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* One escape at s (just after the backslash) into out; returns the bytes
 * consumed after the backslash, 0 on error. A \u escape never produces
 * more bytes than it consumed (6 or 12 in, at most 4 out). */
static size_t unescape(parser *ps, const char *s, char *out, size_t *written)
{
	const char *simple_in = "\"\\/bfnrt", *simple_out = "\"\\/\b\f\n\r\t";
	if (s >= ps->end)
		return (fail(ps, s, "unterminated string"), 0);
	const char *k = *s ? strchr(simple_in, *s) : NULL;
	if (k) {
		*out = simple_out[k - simple_in];
		*written = 1;
		return 1;
	}
	if (*s != 'u')
		return (fail(ps, s - 1, "invalid escape in string"), 0);
	int hi = ps->end - s >= 5 ? hex4(s + 1) : -1;
	if (hi < 0)
		return (fail(ps, s - 1, "invalid \\u escape in string"), 0);
	if (hi == 0)
		return (fail(ps, s - 1, "\\u0000 in a string is not accepted"), 0);
	uint32_t cp = (uint32_t)hi;
	size_t used = 5;
	if (hi >= 0xDC00 && hi <= 0xDFFF)
		return (fail(ps, s - 1, "unpaired UTF-16 surrogate in string"), 0);
	if (hi >= 0xD800 && hi <= 0xDBFF) {
		int lo = ps->end - s >= 11 && s[5] == '\\' && s[6] == 'u' ? hex4(s + 7) : -1;
		if (lo < 0xDC00 || lo > 0xDFFF)
			return (fail(ps, s - 1, "unpaired UTF-16 surrogate in string"), 0);
		cp = 0x10000 + (((uint32_t)hi - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
		used = 11;
	}
	*written = put_utf8(out, cp);
	return used;
}

/* The bytes of x (8 bytes read little-endian) that are '"', '\\' or below
 * 0x20 - the bytes a string scan must stop at - each marked by its high
 * bit (word-at-a-time zero-byte tests). Marks above the lowest one may be
 * false; the lowest one is exact. */
static uint64_t stop_bytes(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
	uint64_t zero_q = (q - ones) & ~q, zero_b = (b - ones) & ~b;
	uint64_t below_space = (x - ones * 0x20) & ~x;
	return (zero_q | zero_b | below_space) & highs;
}

/* ps->p is at the opening quote. Returns a string to free with cJSON_free. */
static char *parse_string_raw(parser *ps)
{
	const char *start = ps->p + 1, *s = start;
	bool escaped = false;
	for (;; s++) {
		/* Skip ordinary bytes eight at a time, to the first stop byte. */
		while (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && ps->end - s >= 8) {
			uint64_t x;
			memcpy(&x, s, 8);
			uint64_t m = stop_bytes(x);
			if (m) {
				s += __builtin_ctzll(m) >> 3;
				break;
			}
			s += 8;
		}
		if (s >= ps->end)
			return fail(ps, ps->p, "unterminated string");
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(ps, s, "control character in string");
		if (c == '\\') {
			escaped = true;
			if (++s >= ps->end)
				return fail(ps, ps->p, "unterminated string");
		}
	}
	size_t raw = (size_t)(s - start);
	char *out = ps->mirror ? ps->mirror + (start - ps->text) : cf_jarena_alloc(raw + 1);
	if (!out)
		return fail(ps, ps->p, "out of memory");
	if (!escaped) {
		if (!ps->mirror)
			memcpy(out, start, raw);
		out[raw] = '\0';
		ps->p = s + 1;
		return out;
	}
	size_t n = 0;
	for (const char *q = start; q < s;) {
		if (*q != '\\') {
			out[n++] = *q++;
			continue;
		}
		size_t w = 0, used = unescape(ps, q + 1, out + n, &w);
		if (!used) {
			cJSON_free(out);
			return NULL;
		}
		q += 1 + used;
		n += w;
	}
	out[n] = '\0';
	ps->p = s + 1;
	return out;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static cJSON *parse_number(parser *ps)
{
	const char *s = ps->p, *q = s;
	bool integer = true;
	if (q < ps->end && *q == '-')
		q++;
	if (q >= ps->end || !is_digit(*q))
		return fail(ps, s, "invalid number");
	if (*q == '0' && q + 1 < ps->end && is_digit(q[1]))
		return fail(ps, s, "invalid number: leading zero");
	while (q < ps->end && is_digit(*q))
		q++;
	if (q < ps->end && *q == '.') {
		integer = false;
		if (++q >= ps->end || !is_digit(*q))
			return fail(ps, s, "invalid number: no digit after the decimal point");
		while (q < ps->end && is_digit(*q))
			q++;
	}
	if (q < ps->end && (*q == 'e' || *q == 'E')) {
		integer = false;
		if (++q < ps->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= ps->end || !is_digit(*q))
			return fail(ps, s, "invalid number: no digit in the exponent");
		while (q < ps->end && is_digit(*q))
			q++;
	}
	size_t len = (size_t)(q - s);
	if (len > 63)
		return fail(ps, s, "number longer than 63 characters");
	double v;
	size_t digits = len - (*s == '-');
	if (integer && digits <= 15) {
		/* Exact in a double; no strtod. */
		int64_t i = 0;
		for (const char *d = s + (*s == '-'); d < q; d++)
			i = i * 10 + (*d - '0');
		v = (double)(*s == '-' ? -i : i);
	} else {
		char buf[64];
		memcpy(buf, s, len);
		buf[len] = '\0';
		v = strtod(buf, NULL);
	}
	cJSON *n = new_node(ps, cJSON_Number);
	if (!n)
		return NULL;
	n->valuedouble = v;
	/* cJSON's saturation of valueint. */
	n->valueint = v >= INT_MAX ? INT_MAX : v <= (double)INT_MIN ? INT_MIN : (int)v;
	ps->p = q;
	return n;
}

static cJSON *parse_literal(parser *ps, const char *word, int type, int valueint)
{
	size_t len = strlen(word);
	if ((size_t)(ps->end - ps->p) < len || memcmp(ps->p, word, len) != 0)
		return fail(ps, ps->p, "invalid value");
	cJSON *n = new_node(ps, type);
	if (!n)
		return NULL;
	n->valueint = valueint;
	n->valuedouble = valueint;
	ps->p += len;
	return n;
}

/* Appends item the way cJSON does: head->prev is the tail. */
static void append(cJSON *parent, cJSON **tail, cJSON *item)
{
	if (!*tail) {
		parent->child = item;
	} else {
		(*tail)->next = item;
		item->prev = *tail;
	}
	*tail = item;
	parent->child->prev = item;
}

/* ps->p is at '[' or '{'. */
static cJSON *parse_container(parser *ps, bool object)
{
	const char *open = ps->p;
	if (++ps->depth > CF_JPARSE_MAX_DEPTH)
		return fail(ps, open, "nesting too deep");
	cJSON *c = new_node(ps, object ? cJSON_Object : cJSON_Array), *tail = NULL;
	if (!c)
		return NULL;
	ps->p++;
	skip_space(ps);
	char close = object ? '}' : ']';
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		ps->depth--;
		return c;
	}
	for (;;) {
		char *key = NULL;
		if (object) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, ps->p, "expected a member name");
				goto fail;
			}
			if (!(key = parse_string_raw(ps)))
				goto fail;
			skip_space(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				cJSON_free(key);
				fail(ps, ps->p, "expected ':' after a member name");
				goto fail;
			}
			ps->p++;
			skip_space(ps);
		}
		cJSON *item = parse_value(ps);
		if (!item) {
			cJSON_free(key);
			goto fail;
		}
		item->string = key;
		append(c, &tail, item);
		skip_space(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			skip_space(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == close) {
			ps->p++;
			ps->depth--;
			return c;
		}
		fail(ps, ps->p < ps->end ? ps->p : open,
		     ps->p < ps->end ? (object ? "expected ',' or '}'" : "expected ',' or ']'")
		                     : (object ? "unterminated object" : "unterminated array"));
		goto fail;
	}
fail:
	cJSON_Delete(c);
	return NULL;
}

static cJSON *parse_value(parser *ps)
{
	if (ps->p >= ps->end)
		return fail(ps, ps->p, "unexpected end of input");
	switch (*ps->p) {
	case '"': {
		const char *at = ps->p;
		char *s = parse_string_raw(ps);
		cJSON *n = s ? new_node(ps, cJSON_String) : NULL;
		if (!n) {
			cJSON_free(s);
			return s ? fail(ps, at, "out of memory") : NULL;
		}
		n->valuestring = s;
		return n;
	}
	case '{':
		return parse_container(ps, true);
	case '[':
		return parse_container(ps, false);
	case 't':
		return parse_literal(ps, "true", cJSON_True, 1);
	case 'f':
		return parse_literal(ps, "false", cJSON_False, 0);
	case 'n':
		return parse_literal(ps, "null", cJSON_NULL, 0);
	default:
		return parse_number(ps);
	}
}

cJSON *cf_jparse(const char *text, size_t len, size_t *err_offset, char *err, size_t errlen)
{
	parser ps = {.p = text, .end = text + len, .text = text};
	/* In place in an arena copy: an escaped string is never longer than
	 * its source, and the byte after a string (its closing quote) is
	 * free for the NUL. */
	ps.mirror = len < SIZE_MAX ? cf_jarena_try_alloc(len + 1) : NULL;
	if (ps.mirror)
		memcpy(ps.mirror, text, len);
	skip_space(&ps);
	cJSON *root = parse_value(&ps);
	if (root) {
		skip_space(&ps);
		if (ps.p < ps.end) {
			fail(&ps, ps.p, "trailing data after the JSON value");
			cJSON_Delete(root);
			root = NULL;
		}
	}
	if (!root) {
		if (err_offset)
			*err_offset = (size_t)(ps.err_at - text);
		snprintf(err, errlen, "%s at byte %zu", ps.msg ? ps.msg : "invalid JSON",
		         (size_t)(ps.err_at - text));
	}
	return root;
}
