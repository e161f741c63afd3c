/*
 * na_listener.h - the Unix socket container runtimes hand notify fds to.
 *
 * Purpose: a Localhost seccomp profile with `listenerPath` makes the OCI
 * runtime (runc >= 1.1, crun) connect to this socket after loading the
 * container's filter, send the OCI container process state JSON together
 * with the notify fd (SCM_RIGHTS) and close the connection. This module owns
 * that socket and the receiving side of the protocol:
 * - the socket is bound under a temporary name, given its mode (0600, or
 *   0660 with a group) and owner, then renamed over the final path, so it is
 *   never reachable with looser permissions; an existing path is replaced
 *   only when it is a socket nobody answers on (a stale one from a crashed
 *   agent), never when another agent is live or the path is not a socket;
 * - each connection's peer credentials (SO_PEERCRED) must be uid 0: only a
 *   root runtime can give the agent a container to police (anything else
 *   could feed it fds and fake identities);
 * - the handoff is read until EOF or until one complete JSON object and
 *   its fds have arrived (runc 1.1 keeps its end open while the container
 *   runs), within CF_HANDOFF_TIMEOUT_MS, at most
 *   CF_HANDOFF_MAX_BYTES of JSON and CF_HANDOFF_MAX_FDS fds; anything past a
 *   bound, or a truncated control message, rejects the handoff and closes
 *   every fd it carried.
 *
 * Thread-safety: a na_listener is used by one thread (the acceptor);
 * na_handoff values are owned by whoever holds them. Ownership:
 * na_listener_close unlinks the socket path only if it is still the socket
 * this listener bound (a successor may have replaced it). na_handoff_free
 * closes the fds not taken with na_handoff_take_fd.
 */
#ifndef NA_LISTENER_H
#define NA_LISTENER_H

#include <stddef.h>
#include <sys/types.h>

#include "cf_limits.h"

typedef struct na_listener na_listener;

typedef struct na_handoff {
	char *json; /* NUL-terminated; len bytes */
	size_t len;
	int fds[CF_HANDOFF_MAX_FDS]; /* -1 once taken */
	size_t n_fds;
	pid_t peer_pid;
	uid_t peer_uid;
} na_handoff;

/* Binds and listens at `path`. group: (gid_t)-1 for mode 0600 root-only,
 * else mode 0660 with that group. The parent directory is created (0755)
 * when missing. NULL with `err` on failure (-EADDRINUSE-like cases: "another
 * agent is listening on PATH"). */
na_listener *na_listener_open(const char *path, gid_t group, char *err, size_t errlen);
int na_listener_fd(const na_listener *l);
const char *na_listener_path(const na_listener *l);
void na_listener_close(na_listener *l);

/* Accepts one pending connection (the listening fd is non-blocking: -EAGAIN
 * when none) and reads its handoff. 0 and *out; -EPERM (peer not root),
 * -E2BIG, -EPROTO (no fd, truncated control data), -ETIMEDOUT, other -errno,
 * with `err`. On error nothing is left open. */
int na_listener_accept(na_listener *l, na_handoff *out, char *err, size_t errlen);

/* Reads a handoff from a connected stream socket (used by accept; exposed
 * for tests). required_uid: the peer uid to accept, (uid_t)-1 for any. */
int na_handoff_recv(int conn, uid_t required_uid, int timeout_ms, na_handoff *out, char *err,
                    size_t errlen);
/* Takes fd number `index` out of the handoff (-1 when absent/taken). */
int na_handoff_take_fd(na_handoff *h, size_t index);
void na_handoff_free(na_handoff *h);

/* 1 when fd is a seccomp user-notification fd ("anon_inode:seccomp notify"),
 * 0 when it is something else, -errno when it cannot be inspected. */
int na_fd_is_seccomp_notify(int fd);

#endif
