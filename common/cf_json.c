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
