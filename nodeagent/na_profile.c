/* na_profile.c - see na_profile.h. */
#include "na_profile.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <seccomp.h>

/*
 * The runtime default profile's unconditional allow list (moby
 * profiles/seccomp/default.json, the same list containerd generates), for all
 * architectures at once. Entries the default only grants with a capability
 * (CAP_SYS_ADMIN: mount, unshare, setns, bpf, ...; CAP_SYS_PTRACE: ptrace,
 * process_vm_*, kcmp, pidfd_getfd; CAP_SYS_TIME, CAP_SYS_MODULE, ...) are not
 * here: workers drop all capabilities. io_uring_* are not here either (moby
 * dropped them too: their submissions bypass seccomp). execve/execveat,
 * clone, clone3, socket and personality have their own rules below.
 */
static const char *const allow_names[] = {
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
};

struct arch_extra {
	uint32_t arch;
	const char *name;
};

/* Architecture-specific allows of the runtime default (its "arches"
 * includes), resolved here so the profile carries no includes. */
static const struct arch_extra arch_extras[] = {
    {SCMP_ARCH_X86_64, "arch_prctl"},          {SCMP_ARCH_X86_64, "modify_ldt"},
    {SCMP_ARCH_PPC64LE, "sync_file_range2"},   {SCMP_ARCH_PPC64LE, "swapcontext"},
    {SCMP_ARCH_AARCH64, "sync_file_range2"},   {SCMP_ARCH_S390X, "s390_pci_mmio_read"},
    {SCMP_ARCH_S390X, "s390_pci_mmio_write"},  {SCMP_ARCH_S390X, "s390_runtime_instr"},
    {SCMP_ARCH_RISCV64, "riscv_flush_icache"},
};

/* Never allowed, whatever a later edit of the allow list does (checked by
 * na_profile_build). They are left to the default action (EPERM) rather than
 * listed with it: libseccomp refuses a rule whose action equals the default
 * (EACCES), and runtimes differ in whether they skip such rules. */
static const char *const deny_names[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd",
    "kcmp",   "io_uring_setup",   "io_uring_enter",    "io_uring_register",
};

static const char *const notify_names[] = {"execve", "execveat"};

/* personality(2) values the default allows: PER_LINUX, UNAME26, PER_LINUX32,
 * UNAME26|PER_LINUX32, and the query value 0xffffffff. */
static const double personality_values[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

/* clone(2) flags that create namespaces (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|
 * NEWUSER|NEWPID|NEWNET): clone is allowed only when none is set. */
#define CLONE_NS_MASK  2114060288.0 /* 0x7E020000 */
#define AF_VSOCK_VALUE 40.0
#define ENOSYS_VALUE   38.0
#define EPERM_VALUE    1.0

struct arch_name {
	uint32_t arch;
	const char *name;
};

static const struct arch_name arch_names[] = {
    {SCMP_ARCH_X86_64, "SCMP_ARCH_X86_64"},   {SCMP_ARCH_AARCH64, "SCMP_ARCH_AARCH64"},
    {SCMP_ARCH_PPC64LE, "SCMP_ARCH_PPC64LE"}, {SCMP_ARCH_S390X, "SCMP_ARCH_S390X"},
    {SCMP_ARCH_RISCV64, "SCMP_ARCH_RISCV64"},
};

const char *const *na_profile_allow_names(size_t *count)
{
	*count = sizeof(allow_names) / sizeof(allow_names[0]);
	return allow_names;
}

const char *na_profile_arch_name(uint32_t arch)
{
	for (size_t i = 0; i < sizeof(arch_names) / sizeof(arch_names[0]); i++)
		if (arch_names[i].arch == arch)
			return arch_names[i].name;
	return NULL;
}

/* 1 when the arch has the syscall, 0 when it does not (libseccomp knows the
 * name but only as a pseudo-number there), -EINVAL for an unknown name. */
static int arch_has(uint32_t arch, const char *name, char *err, size_t errlen)
{
	int nr = seccomp_syscall_resolve_name_arch(arch, name);
	if (nr == __NR_SCMP_ERROR) {
		snprintf(err, errlen, "syscall \"%s\" is unknown to libseccomp", name);
		return -EINVAL;
	}
	return nr >= 0;
}

static int add_name(cJSON *names, uint32_t arch, const char *name, char *err, size_t errlen)
{
	int has = arch_has(arch, name, err, errlen);
	if (has <= 0)
		return has;
	cJSON *s = cJSON_CreateString(name);
	if (!s || !cJSON_AddItemToArray(names, s)) {
		cJSON_Delete(s);
		return -ENOMEM;
	}
	return 0;
}

/* Appends {"names":[...],"action":action[,"errnoRet":n][,"args":args]} when
 * `names` is not empty; takes ownership of names and args. */
static int add_rule(cJSON *syscalls, cJSON *names, const char *action, double errno_ret,
                    cJSON *args)
{
	if (cJSON_GetArraySize(names) == 0) {
		cJSON_Delete(names);
		cJSON_Delete(args);
		return 0;
	}
	cJSON *rule = cJSON_CreateObject();
	if (!rule)
		goto fail;
	cJSON_AddItemToObject(rule, "names", names);
	names = NULL;
	if (!cJSON_AddStringToObject(rule, "action", action))
		goto fail;
	if (errno_ret > 0 && !cJSON_AddNumberToObject(rule, "errnoRet", errno_ret))
		goto fail;
	if (args) {
		cJSON_AddItemToObject(rule, "args", args);
		args = NULL;
	}
	if (!cJSON_AddItemToArray(syscalls, rule))
		goto fail;
	return 0;
fail:
	cJSON_Delete(rule);
	cJSON_Delete(names);
	cJSON_Delete(args);
	return -ENOMEM;
}

static cJSON *make_arg(unsigned index, double value, double value_two, const char *op)
{
	cJSON *args = cJSON_CreateArray();
	if (!args)
		return NULL;
	cJSON *a = cJSON_CreateObject();
	if (!a || !cJSON_AddItemToArray(args, a)) {
		cJSON_Delete(a);
		goto fail;
	}
	/* From here `a` belongs to `args`. */
	if (!cJSON_AddNumberToObject(a, "index", index) ||
	    !cJSON_AddNumberToObject(a, "value", value) ||
	    !cJSON_AddNumberToObject(a, "valueTwo", value_two) ||
	    !cJSON_AddStringToObject(a, "op", op))
		goto fail;
	return args;
fail:
	cJSON_Delete(args);
	return NULL;
}

/* One rule for a single syscall name with one argument condition. */
static int add_arg_rule(cJSON *syscalls, uint32_t arch, const char *name, unsigned index,
                        double value, double value_two, const char *op, char *err, size_t errlen)
{
	cJSON *names = cJSON_CreateArray();
	if (!names)
		return -ENOMEM;
	int rc = add_name(names, arch, name, err, errlen);
	if (rc < 0) {
		cJSON_Delete(names);
		return rc;
	}
	cJSON *args = make_arg(index, value, value_two, op);
	if (!args) {
		cJSON_Delete(names);
		return -ENOMEM;
	}
	return add_rule(syscalls, names, "SCMP_ACT_ALLOW", 0, args);
}

static int add_list_rule(cJSON *syscalls, uint32_t arch, const char *const *list, size_t n,
                         const char *action, double errno_ret, char *err, size_t errlen)
{
	cJSON *names = cJSON_CreateArray();
	if (!names)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int rc = add_name(names, arch, list[i], err, errlen);
		if (rc < 0) {
			cJSON_Delete(names);
			return rc;
		}
	}
	return add_rule(syscalls, names, action, errno_ret, NULL);
}

static int check_listener(const char *listener, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	if (!listener || listener[0] != '/') {
		snprintf(err, errlen, "listener path must be absolute: \"%s\"",
		         listener ? listener : "");
		return -EINVAL;
	}
	if (strlen(listener) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "listener path longer than %zu bytes",
		         sizeof(sun.sun_path) - 1);
		return -EINVAL;
	}
	return 0;
}

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

int na_profile_build(uint32_t arch, const char *listener, cJSON **out, char *err, size_t errlen)
{
	cJSON *p = NULL;
	int rc = -ENOMEM;
	*out = NULL;
	if (arch == SCMP_ARCH_NATIVE)
		arch = seccomp_arch_native();
	const char *arch_name = na_profile_arch_name(arch);
	if (!arch_name) {
		snprintf(err, errlen, "architecture 0x%x is not supported by the worker profile",
		         arch);
		return -ENOTSUP;
	}
	rc = check_listener(listener, err, errlen);
	if (rc < 0)
		return rc;
	rc = -ENOMEM;
	p = cJSON_CreateObject();
	cJSON *arches = cJSON_CreateArray();
	if (!p || !arches) {
		cJSON_Delete(arches);
		goto fail;
	}
	cJSON_AddItemToObject(p, "architectures", arches);
	if (!cJSON_AddStringToObject(p, "defaultAction", "SCMP_ACT_ERRNO") ||
	    !cJSON_AddNumberToObject(p, "defaultErrnoRet", EPERM_VALUE) ||
	    !cJSON_AddItemToArray(arches, cJSON_CreateString(arch_name)) ||
	    !cJSON_AddStringToObject(p, "listenerPath", listener) ||
	    !cJSON_AddStringToObject(p, "listenerMetadata", NA_PROFILE_METADATA))
		goto fail;
	cJSON *syscalls = cJSON_AddArrayToObject(p, "syscalls");
	if (!syscalls)
		goto fail;

	rc = add_list_rule(syscalls, arch, allow_names, N_OF(allow_names), "SCMP_ACT_ALLOW", 0, err,
	                   errlen);
	if (rc < 0)
		goto fail;
	cJSON *extras = cJSON_CreateArray();
	if (!extras) {
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < N_OF(arch_extras); i++) {
		if (arch_extras[i].arch != arch)
			continue;
		rc = add_name(extras, arch, arch_extras[i].name, err, errlen);
		if (rc < 0) {
			cJSON_Delete(extras);
			goto fail;
		}
	}
	rc = add_rule(syscalls, extras, "SCMP_ACT_ALLOW", 0, NULL);
	if (rc < 0)
		goto fail;
	/* socket: everything but AF_VSOCK, which reaches the host directly. */
	rc = add_arg_rule(syscalls, arch, "socket", 0, AF_VSOCK_VALUE, 0, "SCMP_CMP_NE", err,
	                  errlen);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < N_OF(personality_values); i++) {
		rc = add_arg_rule(syscalls, arch, "personality", 0, personality_values[i], 0,
		                  "SCMP_CMP_EQ", err, errlen);
		if (rc < 0)
			goto fail;
	}
	/* s390x passes clone's flags in the second argument. */
	rc = add_arg_rule(syscalls, arch, "clone", arch == SCMP_ARCH_S390X ? 1 : 0, CLONE_NS_MASK,
	                  0, "SCMP_CMP_MASKED_EQ", err, errlen);
	if (rc < 0)
		goto fail;
	const char *clone3[] = {"clone3"};
	rc = add_list_rule(syscalls, arch, clone3, 1, "SCMP_ACT_ERRNO", ENOSYS_VALUE, err, errlen);
	if (rc < 0)
		goto fail;
	for (size_t i = 0; i < N_OF(deny_names); i++) {
		for (size_t j = 0; j < N_OF(allow_names); j++) {
			if (strcmp(deny_names[i], allow_names[j]) == 0) {
				snprintf(err, errlen, "%s must never be allowed", deny_names[i]);
				rc = -EINVAL;
				goto fail;
			}
		}
	}
	rc = add_list_rule(syscalls, arch, notify_names, N_OF(notify_names), "SCMP_ACT_NOTIFY", 0,
	                   err, errlen);
	if (rc < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory building the seccomp profile");
	cJSON_Delete(p);
	return rc;
}

int na_profile_render(uint32_t arch, const char *listener, char **out, char *err, size_t errlen)
{
	cJSON *p = NULL;
	*out = NULL;
	int rc = na_profile_build(arch, listener, &p, err, errlen);
	if (rc < 0)
		return rc;
	char *text = cJSON_Print(p);
	cJSON_Delete(p);
	if (!text)
		goto oom;
	size_t n = strlen(text);
	char *line = malloc(n + 2);
	if (!line) {
		cJSON_free(text);
		goto oom;
	}
	memcpy(line, text, n);
	line[n] = '\n';
	line[n + 1] = '\0';
	cJSON_free(text);
	*out = line;
	return 0;
oom:
	snprintf(err, errlen, "out of memory rendering the seccomp profile");
	return -ENOMEM;
}

/* mkdir that accepts an existing directory; anything else existing is an
 * error with a message naming the path. */
static int ensure_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (mkdir(path, 0755) == 0)
		return 0;
	int e = errno;
	if (e == EEXIST) {
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		snprintf(err, errlen, "%s exists and is not a directory", path);
		return -ENOTDIR;
	}
	snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(e));
	return -e;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int na_profile_install(const char *dir, const char *listener, char *err, size_t errlen)
{
	char *text = NULL, sub[4096], tmp[4096], final[4096];
	int fd = -1, dfd = -1, rc;
	int tmp_made = 0;
	if (!dir || !dir[0]) {
		snprintf(err, errlen, "profile directory must not be empty");
		return -EINVAL;
	}
	if ((size_t)snprintf(sub, sizeof sub, "%s/codeframe", dir) >= sizeof sub ||
	    (size_t)snprintf(final, sizeof final, "%s/" NA_PROFILE_RELPATH, dir) >= sizeof final ||
	    (size_t)snprintf(tmp, sizeof tmp, "%s/.worker.json.XXXXXX", sub) >= sizeof tmp) {
		snprintf(err, errlen, "profile directory path too long");
		return -ENAMETOOLONG;
	}
	rc = na_profile_render(SCMP_ARCH_NATIVE, listener, &text, err, errlen);
	if (rc < 0)
		return rc;
	rc = ensure_dir(dir, err, errlen);
	if (rc < 0)
		goto fail;
	rc = ensure_dir(sub, err, errlen);
	if (rc < 0)
		goto fail;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot create a temporary file in %s: %s", sub,
		         strerror(-rc));
		goto fail;
	}
	tmp_made = 1;
	/* mkostemp creates 0600; kubelet only reads the file, but operators and
	 * other node tools expect a world-readable profile like kubelet's own. */
	if (fchmod(fd, 0644) < 0 || (rc = write_all(fd, text, strlen(text))) < 0 || fsync(fd) < 0) {
		rc = rc < 0 ? rc : -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, final) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, final, strerror(-rc));
		goto fail;
	}
	tmp_made = 0;
	/* The rename is durable only once the directory entry is on disk. */
	dfd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot sync directory %s: %s", sub, strerror(-rc));
		goto fail;
	}
	close(dfd);
	free(text);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp_made)
		unlink(tmp);
	free(text);
	return rc;
}

static void usage_profile(FILE *f)
{
	fprintf(f, "usage: codeframe-agent profile [--listener PATH]\n"
	           "       codeframe-agent install-profile [--dir DIR] [--listener PATH]\n");
}

/* Shared option parsing; dir is NULL for `profile`. Returns 0, or 2 after
 * printing usage. */
static int parse_profile_opts(int argc, char **argv, const char **listener, const char **dir)
{
	enum { OPT_LISTENER = 1, OPT_DIR, OPT_HELP };
	static const struct option with_dir[] = {
	    {"listener", required_argument, NULL, OPT_LISTENER},
	    {"dir", required_argument, NULL, OPT_DIR},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0}};
	static const struct option without_dir[] = {
	    {"listener", required_argument, NULL, OPT_LISTENER},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0}};
	optind = 1;
	opterr = 1;
	for (;;) {
		int c = getopt_long(argc, argv, "+", dir ? with_dir : without_dir, NULL);
		if (c == -1)
			break;
		switch (c) {
		case OPT_LISTENER:
			*listener = optarg;
			break;
		case OPT_DIR:
			*dir = optarg;
			break;
		case OPT_HELP:
			usage_profile(stdout);
			return 1;
		default:
			usage_profile(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "codeframe-agent %s: unexpected argument \"%s\"\n", argv[0],
		        argv[optind]);
		usage_profile(stderr);
		return 2;
	}
	return 0;
}

int na_profile_cmd_profile(int argc, char **argv)
{
	const char *listener = NA_PROFILE_DEFAULT_LISTENER;
	char err[512] = "", *text = NULL;
	int rc = parse_profile_opts(argc, argv, &listener, NULL);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (na_profile_render(SCMP_ARCH_NATIVE, listener, &text, err, sizeof err) < 0) {
		fprintf(stderr, "codeframe-agent profile: %s\n", err);
		return 1;
	}
	int ok = fputs(text, stdout) >= 0 && fflush(stdout) == 0;
	free(text);
	if (!ok) {
		fprintf(stderr, "codeframe-agent profile: cannot write to stdout\n");
		return 1;
	}
	return 0;
}

int na_profile_cmd_install(int argc, char **argv)
{
	const char *listener = NA_PROFILE_DEFAULT_LISTENER, *dir = NA_PROFILE_DEFAULT_DIR;
	char err[1024] = "";
	int rc = parse_profile_opts(argc, argv, &listener, &dir);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (na_profile_install(dir, listener, err, sizeof err) < 0) {
		fprintf(stderr, "codeframe-agent install-profile: %s\n", err);
		return 1;
	}
	fprintf(stderr, "codeframe-agent install-profile: wrote %s/%s\n", dir, NA_PROFILE_RELPATH);
	return 0;
}
