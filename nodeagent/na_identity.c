/* na_container_identity.c - see na_container_identity.h. */
#include "na_identity.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#define ANN_PROJECT              "codeframe.io/project-id"
#define ANN_USER                 "codeframe.io/user-id"
#define ANN_CRIO_POD_ANNOTATIONS "io.kubernetes.cri-o.Annotations"

struct ann_map {
	const char *namespace_, *pod, *container, *pod_uid, *type;
};

static const struct ann_map containerd_keys = {
    "io.kubernetes.cri.sandbox-namespace", "io.kubernetes.cri.sandbox-name",
    "io.kubernetes.cri.container-name", "io.kubernetes.cri.sandbox-uid",
    "io.kubernetes.cri.container-type"};
static const struct ann_map crio_keys = {"io.kubernetes.pod.namespace", "io.kubernetes.pod.name",
                                         "io.kubernetes.container.name", "io.kubernetes.pod.uid",
                                         "io.kubernetes.cri-o.ContainerType"};

const char *na_runtime_kind_name(na_runtime_kind kind)
{
	switch (kind) {
	case NA_RUNTIME_CONTAINERD:
		return "containerd";
	case NA_RUNTIME_CRIO:
		return "cri-o";
	case NA_RUNTIME_NONE:
		break;
	}
	return "none";
}

/* Copies a string field; -E2BIG names the field when it does not fit. */
static int set_field(char *dst, size_t cap, const char *src, const char *what, char *err,
                     size_t errlen)
{
	size_t n = strlen(src);
	if (n >= cap) {
		snprintf(err, errlen, "%s is longer than %zu bytes", what, cap - 1);
		return -E2BIG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

/* Optional string member: absent/null is "", any other type is -EINVAL. */
static int opt_string(const cJSON *obj, const char *key, char *dst, size_t cap, char *err,
                      size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v)) {
		snprintf(err, errlen, "\"%s\" must be a string", key);
		return -EINVAL;
	}
	return set_field(dst, cap, v->valuestring, key, err, errlen);
}

/* A pid member: a whole number in 1..INT_MAX. */
static int get_pid(const cJSON *obj, const char *key, const char *where, pid_t *out, char *err,
                   size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!v) {
		snprintf(err, errlen, "%s\"%s\" is missing", where, key);
		return -ENOENT;
	}
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1.0) || v->valuedouble > (double)INT_MAX ||
	    floor(v->valuedouble) != v->valuedouble) {
		snprintf(err, errlen, "%s\"%s\" must be a process id", where, key);
		return -EINVAL;
	}
	*out = (pid_t)v->valuedouble;
	return 0;
}

static int apply_map(const cJSON *ann, const struct ann_map *m, na_container_identity *id,
                     char *err, size_t errlen)
{
	int rc;
	if ((rc = opt_string(ann, m->namespace_, id->namespace_, sizeof id->namespace_, err,
	                     errlen)) < 0 ||
	    (rc = opt_string(ann, m->pod, id->pod, sizeof id->pod, err, errlen)) < 0 ||
	    (rc = opt_string(ann, m->pod_uid, id->pod_uid, sizeof id->pod_uid, err, errlen)) < 0 ||
	    (rc = opt_string(ann, m->type, id->container_type, sizeof id->container_type, err,
	                     errlen)) < 0)
		return rc;
	/* A runtime-named container keeps state.id when the name is absent. */
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(ann, m->container);
	if (c && !cJSON_IsNull(c)) {
		id->container[0] = '\0';
		rc =
		    opt_string(ann, m->container, id->container, sizeof id->container, err, errlen);
	}
	return rc;
}

/* project/user ids from a flat annotation object. */
static int apply_project(const cJSON *ann, na_container_identity *id, char *err, size_t errlen)
{
	int rc;
	if (!id->project_id[0] && (rc = opt_string(ann, ANN_PROJECT, id->project_id,
	                                           sizeof id->project_id, err, errlen)) < 0)
		return rc;
	if (!id->user_id[0] &&
	    (rc = opt_string(ann, ANN_USER, id->user_id, sizeof id->user_id, err, errlen)) < 0)
		return rc;
	return 0;
}

static int parse_annotations(const cJSON *ann, na_container_identity *id, char *err, size_t errlen)
{
	int rc;
	const cJSON *item;
	if (!ann || cJSON_IsNull(ann))
		return 0;
	if (!cJSON_IsObject(ann)) {
		snprintf(err, errlen, "\"state.annotations\" must be an object");
		return -EINVAL;
	}
	cJSON_ArrayForEach(item, ann)
	{
		if (!cJSON_IsString(item)) {
			snprintf(err, errlen, "annotation \"%s\" must be a string",
			         item->string ? item->string : "");
			return -EINVAL;
		}
	}
	if (cJSON_GetObjectItemCaseSensitive(ann, containerd_keys.namespace_) ||
	    cJSON_GetObjectItemCaseSensitive(ann, containerd_keys.container)) {
		id->runtime = NA_RUNTIME_CONTAINERD;
		rc = apply_map(ann, &containerd_keys, id, err, errlen);
	} else if (cJSON_GetObjectItemCaseSensitive(ann, crio_keys.namespace_) ||
	           cJSON_GetObjectItemCaseSensitive(ann, crio_keys.container)) {
		id->runtime = NA_RUNTIME_CRIO;
		rc = apply_map(ann, &crio_keys, id, err, errlen);
	} else {
		rc = 0;
	}
	if (rc < 0)
		return rc;
	rc = apply_project(ann, id, err, errlen);
	if (rc < 0)
		return rc;
	/* CRI-O carries the pod's annotations as one JSON-encoded annotation. */
	const cJSON *pod_ann = cJSON_GetObjectItemCaseSensitive(ann, ANN_CRIO_POD_ANNOTATIONS);
	if (pod_ann && (!id->project_id[0] || !id->user_id[0])) {
		cJSON *inner = cJSON_Parse(pod_ann->valuestring);
		if (!inner || !cJSON_IsObject(inner)) {
			cJSON_Delete(inner);
			snprintf(err, errlen, "annotation \"%s\" is not a JSON object",
			         ANN_CRIO_POD_ANNOTATIONS);
			return -EINVAL;
		}
		rc = apply_project(inner, id, err, errlen);
		cJSON_Delete(inner);
		if (rc < 0)
			return rc;
	}
	id->project_from_annotations = id->project_id[0] || id->user_id[0];
	return 0;
}

static int parse_fds(const cJSON *root, na_container_identity *id, char *err, size_t errlen)
{
	const cJSON *fds = cJSON_GetObjectItemCaseSensitive(root, "fds"), *f;
	int i = 0;
	id->seccomp_fd_index = -1;
	if (!fds)
		return 0; /* caller falls back to a single received fd */
	if (!cJSON_IsArray(fds)) {
		snprintf(err, errlen, "\"fds\" must be an array");
		return -EINVAL;
	}
	cJSON_ArrayForEach(f, fds)
	{
		if (!cJSON_IsString(f)) {
			snprintf(err, errlen, "\"fds\" entries must be strings");
			return -EINVAL;
		}
		if (strcmp(f->valuestring, "seccompFd") == 0 && id->seccomp_fd_index < 0)
			id->seccomp_fd_index = i;
		i++;
	}
	if (id->seccomp_fd_index < 0) {
		snprintf(err, errlen, "\"fds\" does not name a seccompFd");
		return -EINVAL;
	}
	return 0;
}

int na_identity_parse(const char *json, size_t len, na_container_identity *out, char *err,
                      size_t errlen)
{
	cJSON *root = NULL;
	int rc = -EINVAL;
	memset(out, 0, sizeof *out);
	if (len > CF_HANDOFF_MAX_BYTES) {
		snprintf(err, errlen, "handoff of %zu bytes exceeds %u", len, CF_HANDOFF_MAX_BYTES);
		return -E2BIG;
	}
	if (len == 0 || !json) {
		snprintf(err, errlen, "empty handoff");
		return -EINVAL;
	}
	const char *end = NULL;
	root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	if (!root || !cJSON_IsObject(root)) {
		snprintf(err, errlen, "handoff is not a JSON object");
		goto fail;
	}
	/* One object and nothing else but whitespace: a second document or
	 * garbage after it means the sender is not a runtime we understand. */
	for (; end && end < json + len; end++) {
		if (*end != ' ' && *end != '\n' && *end != '\r' && *end != '\t') {
			snprintf(err, errlen, "trailing data after the handoff JSON");
			goto fail;
		}
	}
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "state");
	if (!cJSON_IsObject(state)) {
		snprintf(err, errlen, "\"state\" must be an object");
		goto fail;
	}
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(state, "id");
	if (!cJSON_IsString(cid) || !cid->valuestring[0]) {
		snprintf(err, errlen, "\"state.id\" must be a non-empty string");
		goto fail;
	}
	if ((rc = set_field(out->container_id, sizeof out->container_id, cid->valuestring,
	                    "state.id", err, errlen)) < 0)
		goto fail;
	memcpy(out->container, out->container_id, sizeof out->container);
	if ((rc = get_pid(state, "pid", "state.", &out->init_pid, err, errlen)) < 0) {
		rc = -EINVAL;
		goto fail;
	}
	rc = get_pid(root, "pid", "", &out->pid, err, errlen);
	if (rc == -ENOENT) {
		out->pid = out->init_pid;
	} else if (rc < 0) {
		goto fail;
	}
	out->is_exec = out->pid != out->init_pid;
	if ((rc = opt_string(state, "status", out->status, sizeof out->status, err, errlen)) < 0 ||
	    (rc = opt_string(root, "metadata", out->metadata, sizeof out->metadata, err, errlen)) <
	        0 ||
	    (rc = parse_fds(root, out, err, errlen)) < 0 ||
	    (rc = parse_annotations(cJSON_GetObjectItemCaseSensitive(state, "annotations"), out,
	                            err, errlen)) < 0)
		goto fail;
	cJSON_Delete(root);
	return 0;
fail:
	cJSON_Delete(root);
	memset(out, 0, sizeof *out);
	return rc;
}

/* Value of NAME=value in a NUL-separated block, or NULL; *vlen its length. */
static const char *env_lookup(const char *env, size_t len, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name), i = 0;
	while (i < len) {
		const char *entry = env + i;
		const char *nul = memchr(entry, '\0', len - i);
		size_t elen = nul ? (size_t)(nul - entry) : len - i;
		if (elen > nlen && memcmp(entry, name, nlen) == 0 && entry[nlen] == '=') {
			*vlen = elen - nlen - 1;
			return entry + nlen + 1;
		}
		i += elen + 1;
	}
	return NULL;
}

static void env_field(char *dst, size_t cap, const char *env, size_t len, const char *name)
{
	size_t vlen = 0;
	const char *v;
	if (dst[0])
		return;
	v = env_lookup(env, len, name, &vlen);
	if (!v || vlen >= cap)
		return;
	memcpy(dst, v, vlen);
	dst[vlen] = '\0';
}

void na_identity_apply_environ(na_container_identity *id, const char *env, size_t len)
{
	if (!env)
		return;
	env_field(id->project_id, sizeof id->project_id, env, len, "CODEFRAME_PROJECT_ID");
	env_field(id->user_id, sizeof id->user_id, env, len, "CODEFRAME_USER_ID");
}
