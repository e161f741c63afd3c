/* ts_proc.c - see ts_proc.h. */
#include "ts_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static unsigned long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
}

int ts_proc_spawn(ts_proc *p, char *const argv[], const char *log_path)
{
	memset(p, 0, sizeof *p);
	snprintf(p->log, sizeof p->log, "%s", log_path);
	int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		/* Signals blocked in the test runner must not stay blocked in
		 * the server, or SIGTERM tests would hang. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(argv[0], argv);
		dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	p->pid = pid;
	return 0;
}

/* Reaps without blocking: 1 when the child has exited. */
static int reaped(ts_proc *p)
{
	if (!p->pid)
		return 1;
	pid_t r = waitpid(p->pid, &p->status, WNOHANG);
	if (r == p->pid) {
		p->pid = 0;
		return 1;
	}
	return 0;
}

int ts_proc_wait_port(ts_proc *p, const char *host, unsigned port, unsigned timeout_ms)
{
	unsigned long long deadline = now_ms() + timeout_ms;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	for (;;) {
		if (reaped(p))
			return -ECHILD;
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
		close(fd);
		if (ok)
			return 0;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(20);
	}
}

int ts_proc_signal(ts_proc *p, int sig)
{
	if (!p->pid)
		return -ESRCH;
	return kill(p->pid, sig) == 0 ? 0 : -errno;
}

int ts_proc_wait(ts_proc *p, unsigned timeout_ms)
{
	unsigned long long deadline = now_ms() + timeout_ms;
	while (!reaped(p)) {
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
	return 0;
}

void ts_proc_kill(ts_proc *p)
{
	if (!p || !p->pid)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, &p->status, 0);
	p->pid = 0;
}

static ts_proc *registered[16];
static size_t n_registered;

static void kill_registered(void)
{
	for (size_t i = 0; i < n_registered; i++)
		if (registered[i] && registered[i]->pid > 0)
			kill(registered[i]->pid, SIGKILL);
}

void ts_proc_atexit(ts_proc *p)
{
	if (n_registered == 0)
		atexit(kill_registered);
	if (n_registered < 16)
		registered[n_registered++] = p;
}

unsigned ts_free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	unsigned port = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

char *ts_read_text(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *s = malloc(cap);
	while (s) {
		size_t n = fread(s + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
		if (cap - len - 1 == 0) {
			char *t = realloc(s, cap * 2);
			if (!t) {
				free(s);
				s = NULL;
				break;
			}
			s = t;
			cap *= 2;
		}
	}
	fclose(f);
	if (s)
		s[len] = '\0';
	return s;
}

size_t ts_count_text(const char *path, const char *needle)
{
	char *s = ts_read_text(path);
	size_t n = 0;
	for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
		n++;
	free(s);
	return n;
}

int ts_wait_for_text(const char *path, const char *needle, unsigned timeout_ms)
{
	unsigned long long deadline = now_ms() + timeout_ms;
	for (;;) {
		if (ts_count_text(path, needle))
			return 0;
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(20);
	}
}
