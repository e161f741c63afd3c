/*
 * na_exec_helper.c - execs in the awkward ways the agent must handle, for
 * tests/test_agent_exec.sh (compiled there; not part of any library).
 *
 *   threads N PROG ARGS...   N busy threads, then the main thread execs PROG
 *   thread-exec PROG ARGS... a second thread execs while main keeps running
 *   exit-race                a thread execs /bin/true while main exits
 *   fail-then PROG ARGS...   execve("/nonexistent/dir/npm") fails, then
 *                            fork + exec PROG in a child; exits with its status
 *   execveat DIR NAME ARGS.. execveat(open(DIR), NAME, ...)
 *   fexecve PATH ARGS...     execveat(open(PATH), "", ..., AT_EMPTY_PATH)
 * On an exec failure it prints "helper: exec: <strerror>" and exits 126.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char **exec_argv;
static volatile int stop;

static void fail_exec(void)
{
	fprintf(stderr, "helper: exec: %s\n", strerror(errno));
	exit(126);
}

static void *spin(void *arg)
{
	(void)arg;
	while (!stop)
		;
	return NULL;
}

static void *exec_thread(void *arg)
{
	(void)arg;
	execve(exec_argv[0], exec_argv, environ);
	fail_exec();
	return NULL;
}

static void *true_thread(void *arg)
{
	(void)arg;
	char *argv[] = {"/bin/true", NULL};
	execve(argv[0], argv, environ);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	const char *mode = argv[1];
	if (strcmp(mode, "threads") == 0 && argc >= 4) {
		int n = (int)strtol(argv[2], NULL, 10);
		pthread_t t;
		for (int i = 0; i < n && i < 64; i++)
			pthread_create(&t, NULL, spin, NULL);
		execve(argv[3], argv + 3, environ);
		fail_exec();
	}
	if (strcmp(mode, "thread-exec") == 0 && argc >= 3) {
		pthread_t t;
		exec_argv = argv + 2;
		pthread_create(&t, NULL, exec_thread, NULL);
		for (;;)
			pause();
	}
	if (strcmp(mode, "exit-race") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, true_thread, NULL);
		/* Give the exec time to reach the agent, then vanish. */
		usleep(200);
		_exit(0);
	}
	if (strcmp(mode, "fail-then") == 0 && argc >= 3) {
		char *bad[] = {"npm", NULL};
		execve("/nonexistent/dir/npm", bad, environ);
		pid_t pid = fork();
		if (pid == 0) {
			execve(argv[2], argv + 2, environ);
			fail_exec();
		}
		int st = 0;
		waitpid(pid, &st, 0);
		return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
	}
	if (strcmp(mode, "execveat") == 0 && argc >= 4) {
		int dfd = open(argv[2], O_PATH | O_DIRECTORY);
		if (dfd < 0)
			return 2;
		syscall(SYS_execveat, dfd, argv[3], argv + 3, environ, 0);
		fail_exec();
	}
	if (strcmp(mode, "fexecve") == 0 && argc >= 3) {
		int fd = open(argv[2], O_PATH);
		if (fd < 0)
			return 2;
		syscall(SYS_execveat, fd, "", argv + 2, environ, AT_EMPTY_PATH);
		fail_exec();
	}
	return 2;
}
