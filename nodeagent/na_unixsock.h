/*
 * na_unixsock.h - the agent's Unix sockets: addresses and listening sockets
 * that appear at their path only once they are fully set up.
 *
 * Purpose: the runtime socket (na_listener), the control socket
 * (na_approval) and the handoff socket (na_succession) are all created the
 * same careful way: bound under a temporary name, given their permissions,
 * listening, then renamed into place, so nobody can ever connect to a
 * socket with the wrong mode or one that does not accept yet.
 * Thread-safety: no shared state. Ownership: returned fds belong to the
 * caller.
 */
#ifndef NA_UNIXSOCK_H
#define NA_UNIXSOCK_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

/* 0, or -ENAMETOOLONG when `path` does not fit sun_path. */
int na_unix_addr(struct sockaddr_un *sun, const char *path);

/* A non-blocking, close-on-exec listening stream socket at `path`
 * (replacing whatever is there: callers check first when that matters).
 * Mode 0600, or 0660 with group ownership `group` when it is not
 * (gid_t)-1. `st` (may be NULL) receives the socket inode's identity.
 * Returns the fd, or -errno with a message naming `what` and the path. */
int na_unix_listen(const char *path, gid_t group, int backlog, const char *what, struct stat *st,
                   char *err, size_t errlen);

#endif
