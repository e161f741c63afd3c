/*
 * uffd_exec.c - test helper for tests/test_agent_runc.sh, built statically
 * into the test container's rootfs (it is not part of the agent).
 *
 * It makes the agent's read of an exec's argv slow in a way a hostile
 * worker really could: the argv pointer array sits in a page registered
 * with userfaultfd and not yet populated, so the agent's process_vm_readv
 * of it blocks in the page fault until this process serves the page.
 *
 * usage: uffd_exec DELAY_SECONDS PATH ARG...
 * A second thread calls execve(PATH, argv-in-missing-page); the main thread
 * prints "HOLDING" and serves the page DELAY_SECONDS after the first fault.
 * If execve returns, it prints "EXEC_FAILED <strerror>" and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static char *page;
static char **exec_argv_src;
static int exec_argc;
static const char *exec_path;

static void *exec_thread(void *arg)
{
	(void)arg;
	/* argv lives in the missing page: the first reader faults. */
	execve(exec_path, (char **)(void *)page, NULL);
	printf("EXEC_FAILED %s\n", strerror(errno));
	fflush(stdout);
	_exit(1);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: uffd_exec DELAY PATH ARG...\n");
		return 2;
	}
	int delay = (int)strtol(argv[1], NULL, 10);
	exec_path = argv[2];
	exec_argv_src = argv + 2;
	exec_argc = argc - 2;
	long psz = sysconf(_SC_PAGESIZE);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
	if (uffd < 0) {
		printf("NO_UFFD %s\n", strerror(errno));
		return 3;
	}
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(uffd, UFFDIO_API, &api) < 0) {
		printf("NO_UFFD_API %s\n", strerror(errno));
		return 3;
	}
	page = mmap(NULL, (size_t)psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct uffdio_register reg = {
	    .range = {.start = (unsigned long)page, .len = (unsigned long)psz},
	    .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (page == MAP_FAILED || ioctl(uffd, UFFDIO_REGISTER, &reg) < 0) {
		printf("NO_REGISTER %s\n", strerror(errno));
		return 3;
	}
	/* The page's future contents: the argv pointer array. The strings
	 * themselves stay in ordinary memory (this process' own argv). */
	char *content = aligned_alloc((size_t)psz, (size_t)psz);
	memset(content, 0, (size_t)psz);
	char **vec = (char **)(void *)content;
	for (int i = 0; i < exec_argc && (size_t)(i + 1) * sizeof(char *) < (size_t)psz; i++)
		vec[i] = exec_argv_src[i];
	pthread_t t;
	pthread_create(&t, NULL, exec_thread, NULL);
	printf("HOLDING\n");
	fflush(stdout);
	for (;;) {
		struct pollfd p = {.fd = uffd, .events = POLLIN};
		if (poll(&p, 1, -1) < 0)
			continue;
		struct uffd_msg msg;
		if (read(uffd, &msg, sizeof msg) != (ssize_t)sizeof msg)
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		printf("FAULT\n");
		fflush(stdout);
		sleep((unsigned)delay);
		struct uffdio_copy copy = {.dst = (unsigned long)page,
		                           .src = (unsigned long)content,
		                           .len = (unsigned long)psz};
		ioctl(uffd, UFFDIO_COPY, &copy);
		printf("SERVED\n");
		fflush(stdout);
	}
}
