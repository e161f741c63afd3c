/*
 * na_succession.h - the upgrade handoff between an old and a new agent
 * (`run --state-dir DIR`; the socket is DIR/handoff.sock).
 *
 * Purpose: a new agent started while an old one runs connects to the old
 * one's handoff socket and asks for everything the old one holds. The old
 * one (after it stopped accepting and receiving and answered what it held)
 * sends, on one SOCK_STREAM connection:
 *   1. a header with the count of containers and, attached (SCM_RIGHTS),
 *      the runtime socket's listening fd: the new agent accepts on the very
 *      same socket, so no runtime ever finds nobody listening;
 *   2. batches of at most CF_SUCCESSION_BATCH_FDS containers: a fixed-size
 *      batch header (each entry's JSON length and flags) carrying that many
 *      notify fds, then the entries' JSON (the runtime's original OCI state,
 *      so any later agent version can parse the identity again);
 * and waits for the new agent's acknowledgement. Only after it does the old
 * agent let go (exit 0); without it (the new agent died or timed out) the
 * old agent resumes serving, so a failed upgrade never drops a container.
 * Every read is bounded (CF_SUCCESSION_TIMEOUT_MS overall,
 * CF_SUCCESSION_MAX_CONTAINERS, CF_HANDOFF_MAX_BYTES per entry).
 *
 * Thread-safety: plain functions on the caller's connection.
 * Ownership: na_succession_set owns its fds and strings
 * (na_succession_set_free closes fds still >= 0).
 */
#ifndef NA_SUCCESSION_H
#define NA_SUCCESSION_H

#include <stdbool.h>
#include <stddef.h>

#define NA_SUCCESSION_SOCKET "handoff.sock"

/* Entry flags. */
#define NA_SUCCESSION_ENTRY_ANSWERED 1u /* the entrypoint was already continued */

typedef struct na_succession_entry {
	int fd;
	char *json;
	size_t json_len;
	unsigned flags;
} na_succession_entry;

typedef struct na_succession_set {
	int listen_fd; /* -1 when none came */
	na_succession_entry *entries;
	size_t n;
} na_succession_set;

void na_succession_set_free(na_succession_set *s);

/* Successor side. Connects to `path`: 0 and *conn_out when an agent
 * answers; -ENOENT when there is no socket or nobody listens on it (a
 * stale socket is removed); other -errno with err. */
int na_succession_connect(const char *path, int *conn_out, char *err, size_t errlen);
/* Asks for the handoff and receives everything. 0 and *out, or -errno with
 * err (nothing received is kept). */
int na_succession_receive(int conn, na_succession_set *out, char *err, size_t errlen);
/* Tells the old agent the fds are adopted and waits (bounded) until it has
 * closed the connection, i.e. stopped. 0 or -errno. */
int na_succession_ack(int conn, char *err, size_t errlen);

/* Old agent side. Reads the request from an accepted connection (the
 * caller checked the peer's credentials). 0 or -EPROTO/-ETIMEDOUT/... */
int na_succession_read_request(int conn, char *err, size_t errlen);
/* Sends the listening fd and the entries (fds are duplicated into the
 * peer; the caller keeps its own). 0 or -errno. */
int na_succession_send(int conn, int listen_fd, const na_succession_entry *entries, size_t n,
                       char *err, size_t errlen);
/* 0 when the successor acknowledged in time, else -errno. */
int na_succession_wait_ack(int conn, char *err, size_t errlen);

/* Binds and listens at `path` (mode 0600, atomically renamed into place).
 * The fd is non-blocking, close-on-exec. fd or -errno with err. */
int na_succession_listen(const char *path, char *err, size_t errlen);

#endif
