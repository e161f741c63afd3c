/* Tests for nodeagent/na_unixsock: sockets appear at their path only with
 * their final mode, and bad paths are clear errors. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "na_unixsock.h"

Test(na_unixsock, listens_at_path_with_mode_0600)
{
	char dir[] = "/tmp/na_unixsock.XXXXXX", path[256], err[256];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/s.sock", dir);
	struct stat st, at;
	int fd = na_unix_listen(path, (gid_t)-1, 4, "test socket", &st, err, sizeof err);
	cr_assert_geq(fd, 0, "%s", err);
	cr_assert_eq(stat(path, &at), 0);
	cr_assert(S_ISSOCK(at.st_mode));
	cr_assert_eq(at.st_mode & 0777, 0600);
	cr_assert_eq(at.st_ino, st.st_ino, "reported identity is the socket at path");
	close(fd);
	unlink(path);
	rmdir(dir);
}

Test(na_unixsock, path_too_long_is_refused)
{
	char path[200], err[256];
	memset(path, 'a', sizeof path - 1);
	path[0] = '/';
	path[sizeof path - 1] = '\0';
	cr_assert_eq(na_unix_listen(path, (gid_t)-1, 4, "test socket", NULL, err, sizeof err),
	             -ENAMETOOLONG);
	cr_assert(strstr(err, "too long") && strstr(err, "test socket"), "%s", err);
	struct sockaddr_un sun;
	cr_assert_eq(na_unix_addr(&sun, path), -ENAMETOOLONG);
}

Test(na_unixsock, missing_directory_names_the_step)
{
	char err[256];
	int rc = na_unix_listen("/nonexistent-dir/x.sock", (gid_t)-1, 4, "test socket", NULL, err,
	                        sizeof err);
	cr_assert_eq(rc, -ENOENT);
	cr_assert(strstr(err, "cannot bind test socket"), "%s", err);
}
