/* Tests for na_privs (dropping to CAP_SYS_PTRACE + no_new_privs) and for
 * what the agent still must do afterwards: read another uid's environment
 * (na_procmem_read_environ) where /proc/PID/environ cannot be opened. Each
 * case runs in a forked child so the test process keeps its privileges. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_buf.h"
#include "na_privs.h"
#include "na_procmem.h"

static int in_child(int (*fn)(void))
{
	pid_t p = fork();
	cr_assert(p >= 0);
	if (p == 0)
		_exit(fn());
	int st;
	cr_assert_eq(waitpid(p, &st, 0), p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static bool status_has(const char *line)
{
	cf_buf b;
	char err[128];
	if (cf_read_file("/proc/self/status", 1u << 20, &b, err, sizeof err) < 0)
		return false;
	bool found = strstr(b.data, line) != NULL;
	cf_buf_free(&b);
	return found;
}

static int drop_and_check(void)
{
	char err[256];
	if (na_privs_drop(err, sizeof err) < 0)
		return 1;
	if (!status_has("CapEff:\t0000000000080000\n") ||
	    !status_has("CapPrm:\t0000000000080000\n") ||
	    !status_has("CapBnd:\t0000000000080000\n") ||
	    !status_has("CapInh:\t0000000000000000\n") || !status_has("NoNewPrivs:\t1\n"))
		return 2;
	/* Idempotent: a restarted policy side calls it again. */
	if (na_privs_drop(err, sizeof err) < 0)
		return 3;
	/* What was dropped stays dropped: giving a file away needs CAP_CHOWN. */
	char tmp[] = "/tmp/na_privs.XXXXXX";
	int fd = mkstemp(tmp);
	if (fd < 0)
		return 6;
	int rc = fchown(fd, 4242, 4242);
	int e = errno;
	close(fd);
	unlink(tmp);
	if (rc == 0 || e != EPERM)
		return 4;
	if (prctl(PR_CAPBSET_READ, 21 /* CAP_SYS_ADMIN */, 0, 0, 0) != 0)
		return 5;
	return 0;
}

Test(na_privs, drops_to_cap_sys_ptrace)
{
	cr_assert_eq(in_child(drop_and_check), 0);
}

static int exec_cannot_regain(void)
{
	char err[256];
	if (na_privs_drop(err, sizeof err) < 0)
		return 1;
	/* A root shell exec'd afterwards has no more than before. */
	int p[2];
	if (pipe(p) < 0)
		return 2;
	pid_t c = fork();
	if (c == 0) {
		dup2(p[1], 1);
		execl("/bin/sh", "sh", "-c", "grep CapEff /proc/self/status", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char buf[128] = "";
	ssize_t n = read(p[0], buf, sizeof buf - 1);
	waitpid(c, NULL, 0);
	if (n <= 0)
		return 3;
	return strstr(buf, "0000000000080000") ? 0 : 4;
}

Test(na_privs, exec_cannot_regain)
{
	cr_assert_eq(in_child(exec_cannot_regain), 0);
}

static pid_t other_uid_child(void)
{
	int ready[2];
	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
	pid_t p = fork();
	cr_assert(p >= 0);
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (setgid(4242) < 0 || setuid(4242) < 0)
			_exit(1);
		char *env[] = {(char *)"CODEFRAME_PROJECT_ID=proj-x", (char *)"A=b", NULL};
		char *argv[] = {(char *)"sleep", (char *)"30", NULL};
		close(ready[0]);
		execve("/bin/sleep", argv, env);
		_exit(127);
	}
	close(ready[1]);
	char c;
	cr_assert_eq(read(ready[0], &c, 1), 0); /* closed by the exec */
	close(ready[0]);
	usleep(100000);
	return p;
}

static pid_t target;

static int read_env_after_drop(void)
{
	char err[256];
	if (na_privs_drop(err, sizeof err) < 0)
		return 1;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/environ", (int)target);
	if (open(path, O_RDONLY) >= 0 || errno != EACCES)
		return 2; /* the file really is out of reach */
	char *env = NULL;
	size_t len = 0;
	if (na_procmem_read_environ(target, 1u << 20, &env, &len) < 0)
		return 3;
	bool ok = len > 0 && memmem(env, len, "CODEFRAME_PROJECT_ID=proj-x", 27) != NULL;
	free(env);
	return ok ? 0 : 4;
}

Test(na_privs, environment_of_another_uid_readable_after_drop)
{
	target = other_uid_child();
	int rc = in_child(read_env_after_drop);
	kill(target, SIGKILL);
	waitpid(target, NULL, 0);
	cr_assert_eq(rc, 0);
}

Test(na_privs, environment_bounded_and_gone)
{
	target = other_uid_child();
	char *env = NULL;
	size_t len = 0;
	cr_assert_eq(na_procmem_read_environ(target, 5, &env, &len), 0);
	cr_assert_eq(len, 5, "the bound is kept");
	free(env);
	kill(target, SIGKILL);
	waitpid(target, NULL, 0);
	cr_assert_eq(na_procmem_read_environ(target, 100, &env, &len), -ENOENT);
	cr_assert_null(env);
	cr_assert_eq(na_procmem_read_environ(0x3fffffff, 100, &env, &len), -ENOENT);
}
