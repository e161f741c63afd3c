/*
 * na_approval.h - pending approvals and the control socket that answers
 * them (`codeframe-agent approvals`, `approve ID`, `deny ID`).
 *
 * Purpose: in strict mode a `require_approval` match waits for an operator.
 * The wait is keyed by (container id, pid, the process' start time, command
 * line), not by the notification: a signal cancels a pending notification
 * and the restarted execve arrives with a new id but the same key, so it
 * finds the same approval (and its answer, if one came meanwhile). The
 * start time keeps a reused pid from ever inheriting someone else's
 * approval. Entries expire (the exec is denied) after the configured
 * timeout; an entry whose process died is removed, so answering it later
 * is a clean "no such approval" error.
 *
 * The control socket (DIR/control.sock in the state directory, mode 0600,
 * or 0660 with the approvalGroup) takes one request line per connection:
 * "list", "approve ID", "deny ID"; the peer's credentials (SO_PEERCRED)
 * must be uid 0 or carry the approval group (primary or supplementary, from
 * /proc/PID/status of the peer). Answers: "list" -> one JSON object per
 * pending approval per line; "approve"/"deny" -> "ok" or "error: ...".
 *
 * Thread-safety: an na_approvals table is shared by threads (one mutex
 * inside); the control server runs on one thread. Ownership: the table
 * owns its entries; na_approvals_free.
 */
#ifndef NA_APPROVAL_H
#define NA_APPROVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cf_buf.h"

#define NA_APPROVAL_ID_LEN 12
#define NA_CONTROL_SOCKET  "control.sock"

typedef struct na_approvals na_approvals;

typedef enum na_approval_state {
	NA_APPROVAL_PENDING = 0,
	NA_APPROVAL_GRANTED = 1,
	NA_APPROVAL_DENIED = 2,
} na_approval_state;

/* What identifies and describes one approval (strings are copied). */
typedef struct na_approval_info {
	const char *container_id;
	pid_t pid;
	uint64_t start; /* the process' start time (pid reuse) */
	const char *cmdline;
	const char *namespace_, *pod, *container; /* shown by `approvals` */
} na_approval_info;

na_approvals *na_approvals_new(void);
void na_approvals_free(na_approvals *a);

/* Finds the approval for info's key, or creates one expiring timeout_ms
 * from now. 0 (created) or 1 (found) with the ID in id_out; -ENOSPC when
 * CF_AGENT_MAX_APPROVALS are pending; -ENOMEM. */
int na_approvals_request(na_approvals *a, const na_approval_info *info, long timeout_ms,
                         char id_out[NA_APPROVAL_ID_LEN + 1]);
/* The state of ID (>= 0) and the milliseconds left before it expires, or
 * -ENOENT. An expired pending approval reads as NA_APPROVAL_DENIED with
 * *expired set. */
int na_approvals_state(na_approvals *a, const char *id, long *left_ms, bool *expired);
/* The operator's answer. 0; -ENOENT (no such approval); -EALREADY. */
int na_approvals_answer(na_approvals *a, const char *id, bool grant);
void na_approvals_remove(na_approvals *a, const char *id);
/* Removes entries expired more than grace_ms ago (nobody asked again).
 * Returns how many were removed. */
size_t na_approvals_sweep(na_approvals *a, long grace_ms);
size_t na_approvals_count(na_approvals *a);
/* One JSON line per pending approval: id, namespace, pod, container,
 * container_id, pid, command, age_seconds, expires_in_seconds. */
int na_approvals_list(na_approvals *a, cf_buf *out);

/* Whether a peer may use the control socket. group (gid_t)-1: root only.
 * groups: the peer's supplementary groups. */
bool na_control_peer_allowed(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
                             gid_t group);
/* Binds DIR/control.sock-like `path` (0600, or 0660 root:group). fd
 * (non-blocking, close-on-exec) or -errno with err. */
int na_control_listen(const char *path, gid_t group, char *err, size_t errlen);
/* Serves one accepted connection (bounded by CF_CONTROL_IO_TIMEOUT_MS and
 * CF_CONTROL_MAX_REQUEST_BYTES); closes it. Returns 0, or -EPERM for a
 * refused peer, -EPROTO for a bad request (the peer got "error: ..."). */
int na_control_serve(na_approvals *a, int conn, gid_t group);

/* Client: sends `request` to the control socket at path, the answer into
 * out. 0, or -errno with err. */
int na_control_request(const char *path, const char *request, cf_buf *out, char *err,
                       size_t errlen);

#endif
