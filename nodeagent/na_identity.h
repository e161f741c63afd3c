/*
 * na_identity.h - who a seccomp notify fd belongs to, from the runtime's
 * handoff JSON.
 *
 * Purpose: the container runtime (runc, crun) connects to the agent's socket
 * and sends the OCI "container process state":
 *   {"ociVersion":..,"fds":["seccompFd"],"pid":P,"metadata":"..",
 *    "state":{"ociVersion":..,"id":..,"status":..,"pid":INIT,"bundle":..,
 *             "annotations":{..}}}
 * This module turns that into the identity every event carries: pod
 * namespace, pod name, container name, pod uid (containerd's
 * io.kubernetes.cri.* annotations or CRI-O's io.kubernetes.pod.* /
 * io.kubernetes.container.name), project and user id (pod annotations
 * codeframe.io/project-id and codeframe.io/user-id when the runtime passes
 * them, directly or inside CRI-O's io.kubernetes.cri-o.Annotations; else the
 * container's CODEFRAME_PROJECT_ID / CODEFRAME_USER_ID environment, which the
 * caller reads from /proc/PID/environ and hands to
 * na_identity_apply_environ), and whether the fd belongs to the container's
 * init process or to a `runc exec` session (top-level pid != state pid).
 *
 * Pure: no I/O. Thread-safety: no shared state. Ownership: na_container_identity is a
 * plain value owned by the caller.
 */
#ifndef NA_IDENTITY_H
#define NA_IDENTITY_H

#include <stddef.h>
#include <sys/types.h>

#include "cf_limits.h"

typedef enum na_runtime_kind {
	NA_RUNTIME_NONE = 0,   /* no Kubernetes annotations (plain runc/crun) */
	NA_RUNTIME_CONTAINERD, /* io.kubernetes.cri.* */
	NA_RUNTIME_CRIO,       /* io.kubernetes.pod.* */
} na_runtime_kind;

typedef struct na_container_identity {
	char container_id[CF_IDENTITY_MAX_FIELD]; /* state.id (runtime's id) */
	char namespace_[CF_IDENTITY_MAX_FIELD];
	char pod[CF_IDENTITY_MAX_FIELD];
	char container[CF_IDENTITY_MAX_FIELD]; /* Kubernetes name, else state.id */
	char pod_uid[CF_IDENTITY_MAX_FIELD];
	char container_type[CF_IDENTITY_MAX_FIELD]; /* "container", "sandbox", "" */
	char project_id[CF_IDENTITY_MAX_FIELD];
	char user_id[CF_IDENTITY_MAX_FIELD];
	char metadata[CF_IDENTITY_MAX_FIELD]; /* the profile's listenerMetadata */
	char status[32];                      /* state.status: creating, running, .. */
	na_runtime_kind runtime;
	pid_t pid;                    /* the process whose filter the fd belongs to */
	pid_t init_pid;               /* the container's init (state.pid) */
	int is_exec;                  /* 1: a `runc exec` session, 0: the init process */
	int seccomp_fd_index;         /* index of "seccompFd" in the SCM_RIGHTS fds */
	int project_from_annotations; /* 1 when project_id/user_id came from
	                               * annotations (environment not needed) */
} na_container_identity;

/* Parses the handoff JSON (len bytes, need not be NUL-terminated). 0 on
 * success. -EINVAL for malformed input (not JSON, missing/ill-typed state,
 * id or pid, no "seccompFd" in fds), -E2BIG for a field over
 * CF_IDENTITY_MAX_FIELD or input over CF_HANDOFF_MAX_BYTES, -ENOMEM; `err`
 * says which field. On error `out` is zeroed. */
int na_identity_parse(const char *json, size_t len, na_container_identity *out, char *err,
                      size_t errlen);

/* Fills project_id/user_id that are still empty from a NUL-separated
 * environment block (the bytes of /proc/PID/environ): CODEFRAME_PROJECT_ID,
 * CODEFRAME_USER_ID. Values over the field limit are ignored (left empty),
 * never truncated into a different id. */
void na_identity_apply_environ(na_container_identity *id, const char *env, size_t len);

const char *na_runtime_kind_name(na_runtime_kind kind);

#endif
