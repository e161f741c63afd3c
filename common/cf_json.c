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

int cf_json_append_quoted(cf_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int rc = cf_buf_append(b, "\"", 1);
	const char *run = s;
	for (const char *p = s; !rc && *p; p++) {
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
		rc = cf_buf_append(b, run, (size_t)(p - run));
		if (!rc)
			rc = cf_buf_append(b, esc, n);
		run = p + 1;
	}
	if (!rc)
		rc = cf_buf_append(b, run, strlen(run));
	return rc ? rc : cf_buf_append(b, "\"", 1);
}
