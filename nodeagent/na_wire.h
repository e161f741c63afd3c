/*
 * na_wire.h - the messages between the agent's fd holder and its policy
 * side (`codeframe-agent run` is split in two processes, see na_holder.h).
 *
 * Purpose: one SOCK_SEQPACKET socketpair carries fixed-layout messages
 * (both ends are the same binary: the holder execs /proc/self/exe, so the
 * layout needs no versioning). Message boundaries are kept by the socket,
 * an fd travels with ADD (SCM_RIGHTS), and every received message is
 * checked for a known type and the exact size of that type, so a confused
 * peer is detected instead of misread.
 *
 * Thread-safety: na_wire_send may be called from several threads on one
 * socket (each message is one atomic sendmsg); na_wire_recv from one
 * thread. Ownership: a received fd belongs to the caller.
 */
#ifndef NA_WIRE_H
#define NA_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "na_identity.h"
#include "na_notify.h"

typedef enum na_wire_type {
	NA_WIRE_ADD = 1,        /* holder -> policy: a container (id) + a dup of its fd */
	NA_WIRE_REMOVE = 2,     /* holder -> policy: the container is gone */
	NA_WIRE_NOTIFY = 3,     /* holder -> policy: an exec to decide (req, flags) */
	NA_WIRE_READY = 4,      /* policy -> holder: policy loaded; value = na_level */
	NA_WIRE_LEVEL = 5,      /* policy -> holder: the level changed; value = na_level */
	NA_WIRE_ANSWER = 6,     /* policy -> holder: value 0 = CONTINUE, else errno */
	NA_WIRE_DROP = 7,       /* policy -> holder: the notification is no longer valid */
	NA_WIRE_EXTEND = 8,     /* policy -> holder: waiting for an approval; value =
	                         * milliseconds from now before the default applies */
	NA_WIRE_REJECTED = 9,   /* holder -> policy: a runtime handoff was rejected
	                         * (counted in the metrics) */
	NA_WIRE_CONTROL = 10,   /* holder -> policy: the control socket's listening
	                         * fd (approvals); the holder binds it, so the
	                         * policy side needs no privilege for it */
	NA_WIRE_LISTENING = 11, /* holder -> policy: profile installed, socket
	                         * listening: label the node ready (na_node) */
	NA_WIRE_UNLABEL = 12,   /* holder -> policy: the agent stops for good
	                         * (not a handoff): remove the label and exit */
} na_wire_type;

/* NOTIFY flags. */
#define NA_WIRE_ENTRY_ANSWERED                                                                     \
	1u /* an exec on this fd was already continued:                                            \
	    * nothing from here on is the entrypoint */
/* ADD flags (plus NA_WIRE_ENTRY_ANSWERED). */
#define NA_WIRE_NEW_HANDOFF                                                                        \
	2u /* just handed over by a runtime (not re-sent                                           \
	    * after a restart or taken over in an upgrade) */

typedef struct na_wire_msg {
	uint32_t type;
	int32_t value;
	uint64_t key; /* the holder's container key */
	uint32_t flags;
	uint32_t reserved;
	union {
		na_notify_req req;        /* NOTIFY, ANSWER, DROP, EXTEND (id) */
		na_container_identity id; /* ADD */
	} u;
} na_wire_msg;

/* Bytes of a message of this type on the wire; 0 for an unknown type. */
size_t na_wire_size(uint32_t type);

/* Sends one message (with fd when fd >= 0). flags: 0 or MSG_DONTWAIT.
 * 0, -EAGAIN (would block), -EPIPE/-ECONNRESET (peer gone), other -errno. */
int na_wire_send(int sock, const na_wire_msg *m, int fd, int flags);

/* Receives one message. 1 and *m (*fd_out the fd that came with it, or -1);
 * 0 at EOF; -EAGAIN; -EPROTO for a malformed message (its fds are closed);
 * other -errno. flags: 0 or MSG_DONTWAIT. */
int na_wire_recv(int sock, na_wire_msg *m, int *fd_out, int flags);

#endif
