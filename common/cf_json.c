/* cf_json.c - see cf_json.h. */
#include "cf_json.h"

#include <string.h>

cJSON *cf_json_get(const cJSON *object, const char *name)
{
	if (!object || !name)
		return NULL;
	/* cJSON stops at the first child without a name (array elements). */
	for (cJSON *c = object->child; c && c->string; c = c->next)
		if (c->string[0] == name[0] && strcmp(c->string, name) == 0)
			return c;
	return NULL;
}

const cJSON *cf_json_object(const cJSON *object, const char *name)
{
	const cJSON *v = cf_json_get(object, name);
	return cJSON_IsObject(v) ? v : NULL;
}

const cJSON *cf_json_array(const cJSON *object, const char *name)
{
	const cJSON *v = cf_json_get(object, name);
	return cJSON_IsArray(v) ? v : NULL;
}

const char *cf_json_string(const cJSON *object, const char *name)
{
	const cJSON *v = cf_json_get(object, name);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

void cf_json_quote(const char *s, void (*put)(void *ctx, const char *bytes, size_t n), void *ctx)
{
	static const char hex[] = "0123456789abcdef";
	put(ctx, "\"", 1);
	const char *run = s;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		char esc[6] = {'\\', 0};
		size_t n = 2;
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		put(ctx, run, (size_t)(p - run));
		put(ctx, esc, n);
		run = p + 1;
	}
	put(ctx, run, strlen(run));
	put(ctx, "\"", 1);
}

typedef struct buf_sink {
	cf_buf *b;
	int rc;
} buf_sink;

static void put_buf(void *ctx, const char *bytes, size_t n)
{
	buf_sink *k = ctx;
	if (!k->rc)
		k->rc = cf_buf_append(k->b, bytes, n);
}

int cf_json_append_quoted(cf_buf *b, const char *s)
{
	buf_sink k = {b, 0};
	cf_json_quote(s, put_buf, &k);
	return k.rc;
}
