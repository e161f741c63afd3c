/*
 * na_procmem.h - reads what a process is trying to exec, from its memory.
 *
 * Purpose: a seccomp notification carries only pointers. This module copies
 * the path and argv of an execve/execveat out of the target's address space
 * (process_vm_readv), resolves the path the way the kernel will (relative
 * to the cwd, read from /proc/PID/cwd only for a relative path without a
 * dirfd; to the dirfd for execveat; the fd itself for AT_EMPTY_PATH), and only then checks that the
 * notification is still valid (ID_VALID): if the target died and its pid was reused between receive
 * and read, what was read belongs to someone else and is discarded (-ENOENT). Everything read is
 * bounded by cf_limits.h (CF_AGENT_MAX_ARGC, CF_AGENT_MAX_ARGV_BYTES, CF_AGENT_MAX_PATH_BYTES); an
 * argv past the bounds is returned truncated with `truncated` set.
 *
 * Honest limit: the copy is a snapshot. Another thread of the target can
 * rewrite the strings after the read and before the kernel reads them
 * (seccomp_unotify(2)); a deny is sound, CONTINUE is not a guarantee.
 *
 * It also tells ancestry tracking who a process and its parent are
 * (na_procmem_identify: a pidfd where the kernel allows, /proc/PID/stat
 * otherwise) and reads /proc/PID/stat for callers that need start times.
 *
 * Thread-safety: no shared state; concurrent calls on different targets
 * are fine. Ownership: na_exec_info owns its strings; na_exec_info_free.
 */
#ifndef NA_PROCMEM_H
#define NA_PROCMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "na_notify.h"

typedef struct na_exec_info {
	na_syscall_kind kind;
	pid_t pid;
	char *path;            /* the path argument as passed (may be relative, "") */
	char *cwd;             /* the target's cwd as the target sees it, read only
	                        * when it resolves a relative path (else NULL) */
	char *resolved;        /* path the kernel will open, absolute in the target's
	                        * view (lexical: `.`/`..` kept, symlinks not followed) */
	char exe_base[256];    /* basename of the executed path */
	char target_base[256]; /* basename after following symlinks inside the
	                        * target's root; "" when it cannot be resolved */
	char **argv;           /* argc strings, then NULL */
	size_t argc;
	size_t argv_bytes; /* sum of strlen(argv[i]) + 1 */
	bool truncated;    /* a bound was hit; argv is a prefix */
} na_exec_info;

/* Reads the exec described by `req` (kind from na_notify_syscall_kind).
 * notify_fd is used for the ID_VALID check after reading. 0 and *out;
 * -ENOENT: the target is gone or the notification no longer valid (skip);
 * -EFAULT: a pointer could not be read (the kernel would fail the exec with
 * EFAULT too; deny); -EPROTONOSUPPORT: not an exec of the native arch;
 * -ENOMEM. `err` says what failed. */
int na_procmem_read_exec(const na_notify_req *req, int notify_fd, na_exec_info *out, char *err,
                         size_t errlen);

/* The target's root directory as the agent sees it, for a caller that
 * knows it once per container (saves two /proc lookups per exec): `fd` an
 * O_PATH descriptor of it (e.g. open("/proc/INIT/root")), `path` what
 * readlink of /proc/PID/root shows ("/" when the target shares the agent's
 * root). fd -1 / path NULL: looked up from /proc/PID/root on every exec.
 * Only valid while no process in the tree can chroot (workers lack
 * CAP_SYS_CHROOT). */
typedef struct na_procmem_root {
	int fd;
	const char *path;
} na_procmem_root;

/* na_procmem_read_exec with a known root (NULL = look it up). */
int na_procmem_read_exec_at(const na_notify_req *req, int notify_fd, const na_procmem_root *root,
                            na_exec_info *out, char *err, size_t errlen);
void na_exec_info_free(na_exec_info *e);

/* What ancestry tracking needs from /proc/PID/stat. */
typedef struct na_proc_stat {
	pid_t ppid;
	uint64_t start;      /* start time, clock ticks since boot (pid reuse) */
	uint64_t startstack; /* stack start of the current image: changes when
	                      * an exec succeeds (new address space), so a
	                      * failed exec is told from a successful one */
} na_proc_stat;

/* 0, -ENOENT (no such process), -EINVAL (unparsable). */
int na_procmem_stat(pid_t pid, na_proc_stat *out);

/* Who a process is, for ancestry tracking. */
typedef struct na_proc_id {
	pid_t ppid;
	/* Unique to this process for as long as the machine runs, so a reused
	 * pid is told apart: the pidfs inode number of its pid (Linux 6.13+,
	 * read through a pidfd; 64-bit and never reused on 64-bit kernels),
	 * else its start time from /proc/PID/stat.
	 * Compare only values from na_procmem_identify. */
	uint64_t id;
	uint64_t startstack; /* as na_proc_stat, when has_stack */
	bool has_stack;
} na_proc_id;

/* Fills *out for pid (a process or a thread). The stack start costs a
 * /proc/PID/stat read, asked for only with want_stack: on Linux 6.13+ the
 * rest comes from a pidfd (pidfd_open + PIDFD_GET_INFO + fstat), which
 * creates no /proc entries for the process; a /proc read costs a freshly
 * forked process 10-15 us here, and as much again when it exits (its
 * /proc entries are torn down). 0, -ENOENT (no such process), -errno. */
int na_procmem_identify(pid_t pid, bool want_stack, na_proc_id *out);

/* The process' environment block (NUL-separated), read from its memory
 * (env_start..env_end from /proc/PID/stat, then process_vm_readv) rather
 * than /proc/PID/environ: that file is mode 0400 for its owner, so an agent
 * that dropped CAP_DAC_OVERRIDE cannot open it for another uid, while
 * CAP_SYS_PTRACE still allows the read. At most `max` bytes. 0 and a
 * malloc'd *out; -ENOENT (gone), -EACCES (no ptrace access), -errno. */
int na_procmem_read_environ(pid_t pid, size_t max, char **out, size_t *len);

/* For `check-command`: fills exe_base/target_base for argv[0] the way an
 * execvp of it would resolve (PATH search when it has no '/'). */
void na_procmem_resolve_local(const char *argv0, char *exe_base, size_t exe_len, char *target_base,
                              size_t target_len);

#endif
