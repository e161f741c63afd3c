/* na_unixsock.c - see na_unixsock.h. */
#include "na_unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int na_unix_addr(struct sockaddr_un *sun, const char *path)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	size_t n = strlen(path);
	if (n >= sizeof sun->sun_path)
		return -ENAMETOOLONG;
	memcpy(sun->sun_path, path, n + 1);
	return 0;
}

int na_unix_listen(const char *path, gid_t group, int backlog, const char *what, struct stat *st,
                   char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char tmp[sizeof sun.sun_path];
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= sizeof tmp ||
	    na_unix_addr(&sun, tmp) < 0) {
		snprintf(err, errlen, "%s path too long (at most %zu bytes with a suffix): %s",
		         what, sizeof sun.sun_path - 16, path);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: socket: %s", what, strerror(e));
		return -e;
	}
	unlink(tmp); /* our own leftover from a previous run with the same pid */
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot bind %s %s: %s", what, tmp, strerror(e));
		close(fd);
		return -e;
	}
	/* Permissions are set before the socket becomes reachable at `path`. */
	mode_t mode = group == (gid_t)-1 ? 0600 : 0660;
	const char *step = "set permissions on";
	if (chmod(tmp, mode) < 0 || (group != (gid_t)-1 && chown(tmp, 0, group) < 0))
		goto fail;
	step = "listen on";
	if (listen(fd, backlog) < 0)
		goto fail;
	step = "inspect";
	if (st && stat(tmp, st) < 0)
		goto fail;
	step = "move into place";
	if (rename(tmp, path) < 0)
		goto fail;
	return fd;
fail:;
	int e = errno;
	snprintf(err, errlen, "cannot %s %s %s: %s", step, what, path, strerror(e));
	unlink(tmp);
	close(fd);
	return -e;
}
