/* na_procmem.c - see na_procmem.h. */
#include "na_procmem.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cf_buf.h"
#include "cf_limits.h"

/* Remote memory is fetched in aligned 4 KiB blocks: a block never crosses a
 * page boundary, so it is either wholly readable or not, and the strings of
 * an argv (usually adjacent) cost one syscall per block rather than one per
 * string. */
#define BLOCK 4096u

/* A few blocks are kept: the path, the argv array (on the stack) and the
 * strings (often next to the path) would evict each other in one. */
#define NBLOCKS 4u

struct reader {
	pid_t pid;
	unsigned next; /* round-robin victim */
	unsigned cur;  /* block that holds the last fetched address */
	uint64_t addr[NBLOCKS];
	bool valid[NBLOCKS];
	unsigned char block[NBLOCKS][BLOCK];
};

/* 0, -ENOENT (process gone), -EFAULT (unmapped), -EPERM, other -errno. */
static int fetch(struct reader *r, uint64_t addr)
{
	uint64_t base = addr & ~(uint64_t)(BLOCK - 1);
	for (unsigned i = 0; i < NBLOCKS; i++) {
		if (r->valid[i] && r->addr[i] == base) {
			r->cur = i;
			return 0;
		}
	}
	unsigned v = r->next;
	r->next = (r->next + 1) % NBLOCKS;
	struct iovec local = {.iov_base = r->block[v], .iov_len = BLOCK};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)base, .iov_len = BLOCK};
	ssize_t n = process_vm_readv(r->pid, &local, 1, &remote, 1, 0);
	if (n != (ssize_t)BLOCK) {
		r->valid[v] = false;
		if (n >= 0)
			return -EFAULT;
		return errno == ESRCH ? -ENOENT : -errno;
	}
	r->addr[v] = base;
	r->valid[v] = true;
	r->cur = v;
	return 0;
}

/* Fetches the blocks holding the path and the argv array with one
 * process_vm_readv. Best effort: a block that cannot be read here is
 * fetched (and its error reported) by fetch() later. */
static void prefetch(struct reader *r, uint64_t a1, uint64_t a2)
{
	uint64_t b1 = a1 & ~(uint64_t)(BLOCK - 1), b2 = a2 & ~(uint64_t)(BLOCK - 1);
	if (!a1 || !a2 || b1 == b2)
		return;
	struct iovec local[2] = {
	    {.iov_base = r->block[0], .iov_len = BLOCK},
	    {.iov_base = r->block[1], .iov_len = BLOCK},
	};
	struct iovec remote[2] = {
	    {.iov_base = (void *)(uintptr_t)b1, .iov_len = BLOCK},
	    {.iov_base = (void *)(uintptr_t)b2, .iov_len = BLOCK},
	};
	ssize_t n = process_vm_readv(r->pid, local, 2, remote, 2, 0);
	/* Partial transfers stop at the first unreadable remote iovec. */
	if (n >= (ssize_t)BLOCK) {
		r->addr[0] = b1;
		r->valid[0] = true;
	}
	if (n == (ssize_t)(2 * BLOCK)) {
		r->addr[1] = b2;
		r->valid[1] = true;
	}
	r->next = 2 % NBLOCKS;
}

static int read_u64(struct reader *r, uint64_t addr, uint64_t *out)
{
	unsigned char tmp[8];
	for (unsigned i = 0; i < 8; i++) {
		int rc = fetch(r, addr + i);
		if (rc < 0)
			return rc;
		tmp[i] = r->block[r->cur][(addr + i) & (BLOCK - 1)];
	}
	memcpy(out, tmp, 8);
	return 0;
}

/* Appends the NUL-terminated string at addr (terminator included) to b.
 * -E2BIG when more than `max` bytes would be needed (b then holds a
 * NUL-terminated prefix) or b's limit is hit. */
static int read_str(struct reader *r, uint64_t addr, size_t max, cf_buf *b)
{
	size_t got = 0;
	for (;;) {
		int rc = fetch(r, addr);
		if (rc < 0)
			return rc;
		size_t off = addr & (BLOCK - 1);
		size_t avail = BLOCK - off;
		const unsigned char *p = r->block[r->cur] + off;
		const unsigned char *nul = memchr(p, '\0', avail);
		size_t take = nul ? (size_t)(nul - p) + 1 : avail;
		if (got + take > max) {
			size_t fit = max > got ? max - got : 0;
			if (fit > 1 && cf_buf_append(b, p, fit - 1) < 0)
				return -E2BIG;
			cf_buf_append(b, "", 1);
			return -E2BIG;
		}
		rc = cf_buf_append(b, p, take);
		if (rc < 0)
			return rc;
		got += take;
		if (nul)
			return 0;
		addr += avail;
	}
}

static char *read_link(const char *path)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof buf - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

/* A path read from /proc/PID/{cwd,fd/N} is in the agent's view; with the
 * target in another root, drop that root's prefix. */
static char *in_target_view(char *p, const char *root)
{
	if (!p || !root || strcmp(root, "/") == 0)
		return p;
	size_t rl = strlen(root);
	if (strncmp(p, root, rl) == 0 && (p[rl] == '/' || p[rl] == '\0')) {
		memmove(p, p + rl, strlen(p + rl) + 1);
		if (!p[0]) {
			p[0] = '/';
			p[1] = '\0';
		}
	}
	return p;
}

static char *join_path(const char *dir, const char *rel)
{
	size_t dl = strlen(dir), rl = strlen(rel);
	char *s = malloc(dl + rl + 2);
	if (!s)
		return NULL;
	memcpy(s, dir, dl);
	size_t o = dl;
	if (!dl || dir[dl - 1] != '/')
		s[o++] = '/';
	memcpy(s + o, rel, rl + 1);
	return s;
}

static void set_base(char *out, size_t outlen, const char *path)
{
	const char *s = path ? strrchr(path, '/') : NULL;
	snprintf(out, outlen, "%s", s ? s + 1 : (path ? path : ""));
}

/* "/proc/self/..." and "/proc/thread-self/..." name the target's own
 * links (busybox's shell runs applets as execve("/proc/self/exe"); fexecve
 * falls back to /proc/self/fd/N), but resolved by the agent they would name
 * the agent. Reads the target's link instead and returns it in the target's
 * view, or NULL when `path` is not such a link. */
static char *proc_self_link(pid_t pid, const char *path, const char *root)
{
	static const char *const prefixes[] = {"/proc/self/", "/proc/thread-self/"};
	for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
		size_t n = strlen(prefixes[i]);
		if (strncmp(path, prefixes[i], n) != 0)
			continue;
		char link[PATH_MAX];
		snprintf(link, sizeof link, "/proc/%d/%s", (int)pid, path + n);
		char *target = read_link(link);
		return target ? in_target_view(target, root) : NULL;
	}
	return NULL;
}

/* Follows symlinks of `resolved` inside the target's root (RESOLVE_IN_ROOT
 * keeps absolute links inside it) and stores the final basename. When the
 * target shares the agent's root, one readlink answers the common case:
 * a final component that is not a symlink keeps its own name (symlinked
 * directories above it do not change the basename). */
static void resolve_target(pid_t pid, int known_root, bool same_root, const char *resolved,
                           char *out, size_t outlen)
{
	char p[64], self[64];
	out[0] = '\0';
	if (same_root) {
		char link[8];
		if (readlink(resolved, link, sizeof link) < 0) {
			if (errno == EINVAL)
				set_base(out, outlen, resolved);
			return; /* missing or unreadable: as openat2 failing */
		}
	}
	int rootfd = known_root;
	if (rootfd < 0) {
		snprintf(p, sizeof p, "/proc/%d/root", (int)pid);
		rootfd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (rootfd < 0)
			return;
	}
	struct open_how how = {
	    .flags = O_PATH | O_CLOEXEC,
	    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};
	long fd = syscall(SYS_openat2, rootfd, resolved, &how, sizeof how);
	if (rootfd != known_root)
		close(rootfd);
	if (fd < 0)
		return;
	snprintf(self, sizeof self, "/proc/self/fd/%ld", fd);
	char *real = read_link(self);
	close((int)fd);
	if (real)
		set_base(out, outlen, real);
	free(real);
}

void na_exec_info_free(na_exec_info *e)
{
	if (!e)
		return;
	free(e->path);
	free(e->cwd);
	free(e->resolved);
	if (e->argv)
		for (size_t i = 0; i < e->argc; i++)
			free(e->argv[i]);
	free(e->argv);
	memset(e, 0, sizeof *e);
}

/* Reads argv into out->argv; bounded by CF_AGENT_MAX_ARGC/_ARGV_BYTES. */
static int read_argv(struct reader *r, uint64_t argv_addr, na_exec_info *out)
{
	size_t cap = 0;
	cf_buf b;
	int rc = 0;
	cf_buf_init(&b, 0);
	out->argv = calloc(1, sizeof *out->argv);
	if (!out->argv)
		return -ENOMEM;
	if (!argv_addr)
		return 0; /* execve(path, NULL, ...) */
	for (size_t i = 0;; i++) {
		uint64_t sp;
		if (i >= CF_AGENT_MAX_ARGC) {
			/* Only a truncation if there is an argument beyond. */
			if (read_u64(r, argv_addr + i * 8, &sp) < 0 || sp != 0)
				out->truncated = true;
			break;
		}
		rc = read_u64(r, argv_addr + i * 8, &sp);
		if (rc < 0)
			goto fail;
		if (!sp)
			break;
		size_t left = CF_AGENT_MAX_ARGV_BYTES - out->argv_bytes;
		if (left == 0) {
			out->truncated = true;
			break;
		}
		cf_buf_reset(&b);
		rc = read_str(r, sp, left, &b);
		if (rc == -E2BIG) {
			out->truncated = true;
			rc = 0;
		} else if (rc < 0) {
			goto fail;
		}
		if (out->argc + 2 > cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **na = realloc(out->argv, ncap * sizeof *na);
			if (!na) {
				rc = -ENOMEM;
				goto fail;
			}
			out->argv = na;
			cap = ncap;
		}
		char *s = cf_buf_steal(&b);
		if (!s) {
			rc = -ENOMEM;
			goto fail;
		}
		out->argv_bytes += strlen(s) + 1;
		out->argv[out->argc++] = s;
		out->argv[out->argc] = NULL;
		if (out->truncated)
			break;
	}
	cf_buf_free(&b);
	return 0;
fail:
	cf_buf_free(&b);
	return rc;
}

int na_procmem_read_exec(const na_notify_req *req, int notify_fd, na_exec_info *out, char *err,
                         size_t errlen)
{
	return na_procmem_read_exec_at(req, notify_fd, NULL, out, err, errlen);
}

int na_procmem_read_exec_at(const na_notify_req *req, int notify_fd, const na_procmem_root *known,
                            na_exec_info *out, char *err, size_t errlen)
{
	struct reader *r = NULL;
	char *root = NULL;
	cf_buf pb;
	char p[64];
	int rc;

	memset(out, 0, sizeof *out);
	cf_buf_init(&pb, 0);
	out->kind = na_notify_syscall_kind(req);
	out->pid = req->pid;
	if (out->kind == NA_SYSCALL_OTHER) {
		snprintf(err, errlen, "syscall %d (arch 0x%x) is not an exec of this architecture",
		         req->nr, req->arch);
		return -EPROTONOSUPPORT;
	}
	r = malloc(sizeof *r);
	if (!r) {
		rc = -ENOMEM;
		goto fail;
	}
	r->pid = req->pid;
	r->next = 0;
	r->cur = 0;
	for (unsigned i = 0; i < NBLOCKS; i++)
		r->valid[i] = false;

	bool at = out->kind == NA_SYSCALL_EXECVEAT;
	uint64_t path_addr = at ? req->args[1] : req->args[0];
	uint64_t argv_addr = at ? req->args[2] : req->args[1];
	int dirfd = at ? (int)req->args[0] : AT_FDCWD;
	int flags = at ? (int)req->args[4] : 0;
	prefetch(r, path_addr, argv_addr);
	rc = read_str(r, path_addr, CF_AGENT_MAX_PATH_BYTES, &pb);
	if (rc == -E2BIG)
		rc = -ENAMETOOLONG;
	if (rc < 0) {
		snprintf(err, errlen, "reading the exec path: %s", strerror(-rc));
		goto fail;
	}
	out->path = cf_buf_steal(&pb);
	if (!out->path) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = read_argv(r, argv_addr, out);
	if (rc < 0) {
		snprintf(err, errlen, "reading argv: %s", strerror(-rc));
		goto fail;
	}
	if (known && known->path) {
		root = strdup(known->path);
	} else {
		snprintf(p, sizeof p, "/proc/%d/root", (int)req->pid);
		root = read_link(p);
	}
	/* The cwd decides only a relative path without a dirfd; reading it
	 * for every exec would cost a /proc lookup on the notify path. */
	if (out->path[0] != '/' && dirfd == AT_FDCWD) {
		snprintf(p, sizeof p, "/proc/%d/cwd", (int)req->pid);
		out->cwd = in_target_view(read_link(p), root);
		if (!out->cwd) {
			rc = errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
			snprintf(err, errlen, "reading cwd: %s", strerror(-rc));
			goto fail;
		}
	}

	if (at && !out->path[0] && (flags & AT_EMPTY_PATH)) {
		snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)req->pid, dirfd);
		out->resolved = in_target_view(read_link(p), root);
	} else if (out->path[0] == '/') {
		out->resolved = proc_self_link(req->pid, out->path, root);
		if (!out->resolved)
			out->resolved = strdup(out->path);
	} else {
		char *dir = NULL;
		if (dirfd == AT_FDCWD) {
			dir = strdup(out->cwd);
		} else {
			snprintf(p, sizeof p, "/proc/%d/fd/%d", (int)req->pid, dirfd);
			dir = in_target_view(read_link(p), root);
		}
		out->resolved = dir ? join_path(dir, out->path) : NULL;
		free(dir);
	}
	if (!out->resolved) {
		/* A bad dirfd: the kernel fails the exec (EBADF); name what was
		 * passed so the decision still has something to show. */
		out->resolved = strdup(out->path);
		if (!out->resolved) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	set_base(out->exe_base, sizeof out->exe_base, out->resolved);
	resolve_target(req->pid, known ? known->fd : -1, root && strcmp(root, "/") == 0,
	               out->resolved, out->target_base, sizeof out->target_base);

	/* Only now is what we read known to belong to the notifying task. */
	if (na_notify_id_valid_fd(notify_fd, req->id) < 0) {
		rc = -ENOENT;
		snprintf(err, errlen, "notification %llu no longer valid",
		         (unsigned long long)req->id);
		goto fail;
	}
	free(root);
	free(r);
	return 0;
fail:
	if ((rc == -EFAULT || rc == -ESRCH || rc == -EPERM) &&
	    na_notify_id_valid_fd(notify_fd, req->id) < 0)
		rc = -ENOENT;
	cf_buf_free(&pb);
	free(root);
	free(r);
	na_exec_info_free(out);
	return rc;
}

int na_procmem_stat(pid_t pid, na_proc_stat *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	int saved = errno;
	close(fd);
	if (n <= 0)
		return n == 0 || saved == ESRCH ? -ENOENT : -saved;
	buf[n] = '\0';
	/* comm may contain ") "; the fields start after the last ')'. */
	char *s = strrchr(buf, ')');
	if (!s)
		return -EINVAL;
	s++;
	while (*s == ' ')
		s++;
	if (!*s)
		return -EINVAL;
	s++; /* field 3, the state letter */
	/* Fields 4..28: v[0] is ppid (4), v[18] starttime (22), v[24]
	 * startstack (28). Some fields can be negative (priority, nice). */
	unsigned long long v[25];
	for (unsigned k = 0; k < 25; k++) {
		char *end;
		errno = 0;
		v[k] = strtoull(s, &end, 10);
		if (end == s || errno)
			return -EINVAL;
		s = end;
	}
	out->ppid = (pid_t)v[0];
	out->start = (uint64_t)v[18];
	out->startstack = (uint64_t)v[24];
	return 0;
}

/* PIDFD_GET_INFO (Linux 6.13) and PIDFD_THREAD (6.9), absent from older
 * kernel headers; the first published layout of struct pidfd_info, which
 * later kernels still accept. */
struct pidfd_info_v0 {
	uint64_t mask, cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid, spare0;
};
#define PIDFD_GET_INFO_V0  _IOWR(0xFF, 11, struct pidfd_info_v0)
#define PIDFD_INFO_PID_BIT 1u
#define PIDFD_THREAD_FLAG  O_EXCL

/* Reads pid's parent and pidfs inode number through fd. */
static int pidfd_identity(int fd, na_proc_id *out)
{
	struct pidfd_info_v0 info = {.mask = PIDFD_INFO_PID_BIT};
	struct stat sb;
	if (ioctl(fd, PIDFD_GET_INFO_V0, &info) != 0 || fstat(fd, &sb) != 0)
		return errno == ESRCH ? -ENOENT : -errno;
	out->ppid = (pid_t)info.ppid;
	out->id = (uint64_t)sb.st_ino;
	return 0;
}

static bool pidfd_ids;
static pthread_once_t pidfd_probe_once = PTHREAD_ONCE_INIT;

/* PIDFD_GET_INFO works here (then pidfds are pidfs files whose inode
 * numbers are never reused); decided once, so every id compared came from
 * the same source. */
static void probe_pidfd_ids(void)
{
	int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	if (fd < 0)
		return;
	na_proc_id id;
	pidfd_ids = pidfd_identity(fd, &id) == 0 && id.ppid == getppid();
	close(fd);
}

int na_procmem_identify(pid_t pid, bool want_stack, na_proc_id *out)
{
	na_proc_stat st;
	int rc;
	memset(out, 0, sizeof *out);
	pthread_once(&pidfd_probe_once, probe_pidfd_ids);
	if (!pidfd_ids) {
		if ((rc = na_procmem_stat(pid, &st)) < 0)
			return rc;
		*out = (na_proc_id){.ppid = st.ppid,
		                    .id = st.start,
		                    .startstack = st.startstack,
		                    .has_stack = true};
		return 0;
	}
	if (pid <= 0)
		return -ENOENT;
	int fd = (int)syscall(SYS_pidfd_open, pid, PIDFD_THREAD_FLAG);
	if (fd < 0)
		return errno == ESRCH ? -ENOENT : -errno;
	/* The pidfd is asked last: if it still answers, the process was alive
	 * across the /proc read, so its pid was not reused in between. */
	rc = want_stack ? na_procmem_stat(pid, &st) : 0;
	if (rc == 0)
		rc = pidfd_identity(fd, out);
	close(fd);
	if (rc == 0 && want_stack) {
		out->startstack = st.startstack;
		out->has_stack = true;
	}
	return rc;
}

int na_procmem_read_environ(pid_t pid, size_t max, char **out, size_t *len)
{
	char path[64], buf[4096];
	*out = NULL;
	*len = 0;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -ENOENT : -errno;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -ENOENT;
	buf[n] = '\0';
	char *s = strrchr(buf, ')');
	if (!s)
		return -EINVAL;
	s += 2; /* ") " then field 3 */
	/* Fields 3..51; env_start is 50, env_end 51 (both 0 when the kernel
	 * hides them: no ptrace access). */
	unsigned long long start = 0, end = 0;
	for (unsigned field = 3; field <= 51; field++) {
		while (*s == ' ')
			s++;
		char *e = s;
		while (*e && *e != ' ' && *e != '\n')
			e++;
		if (e == s)
			return -EINVAL;
		if (field == 50 || field == 51) {
			errno = 0;
			unsigned long long v = strtoull(s, NULL, 10);
			if (errno)
				return -EINVAL;
			if (field == 50)
				start = v;
			else
				end = v;
		}
		s = e;
	}
	if (start == 0 || end <= start)
		return -EACCES;
	size_t want = (size_t)(end - start);
	if (want > max)
		want = max;
	char *data = malloc(want + 1);
	if (!data)
		return -ENOMEM;
	struct iovec local = {.iov_base = data, .iov_len = want};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)start, .iov_len = want};
	ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (got < 0) {
		int e = errno;
		free(data);
		return e == ESRCH ? -ENOENT : -e;
	}
	data[got] = '\0';
	*out = data;
	*len = (size_t)got;
	return 0;
}

void na_procmem_resolve_local(const char *argv0, char *exe_base, size_t exe_len, char *target_base,
                              size_t target_len)
{
	char found[PATH_MAX];
	const char *path = argv0;
	target_base[0] = '\0';
	set_base(exe_base, exe_len, argv0);
	if (!argv0 || !argv0[0])
		return;
	if (!strchr(argv0, '/')) {
		const char *env = getenv("PATH");
		const char *dirs = env && env[0] ? env : "/usr/local/bin:/usr/bin:/bin";
		path = NULL;
		while (*dirs) {
			const char *colon = strchr(dirs, ':');
			size_t dl = colon ? (size_t)(colon - dirs) : strlen(dirs);
			int n = snprintf(found, sizeof found, "%.*s/%s", (int)dl, dl ? dirs : ".",
			                 argv0);
			if (n > 0 && (size_t)n < sizeof found && access(found, X_OK) == 0) {
				path = found;
				break;
			}
			dirs += dl + (colon ? 1 : 0);
		}
		if (!path)
			return;
	}
	char *real = realpath(path, NULL);
	if (real)
		set_base(target_base, target_len, real);
	free(real);
}
