/*
 * na_notify.h - the only user of libseccomp's user-notification API.
 *
 * Purpose: wraps one seccomp notify fd (a "listener"): receive a
 * notification, check that its id is still valid, answer CONTINUE or an
 * errno. It also installs the exec-notify filter in the calling process
 * for `exec` mode. libseccomp 2.5.4 facts handled here: receive/respond
 * report ioctl failures as -ECANCELED (the cause is in errno); the request
 * must be zeroed before every receive; ENOENT on receive or respond means
 * the target went away (killed, or a signal interrupted its syscall), which
 * is reported as -ENOENT for the caller to skip, never as a dead fd.
 *
 * Thread-safety: one na_notify per notify fd, used by one thread at a time
 * (the buffers inside are reused per receive). Different na_notify objects
 * are independent, so a multi-container epoll loop keeps one per container.
 * na_notify_id_valid_fd may be called from any thread on any fd.
 * Ownership: na_notify_new takes ownership of the fd (closed by
 * na_notify_free) unless na_notify_release_fd took it back first (for
 * handing fds to a successor).
 */
#ifndef NA_NOTIFY_H
#define NA_NOTIFY_H

#include <stdint.h>
#include <sys/types.h>

typedef struct na_notify na_notify;

/* A notification, copied out of libseccomp's struct so that the rest of the
 * agent does not depend on it. pid is in the receiver's pid namespace. */
typedef struct na_notify_req {
	uint64_t id;
	pid_t pid;
	int nr;        /* syscall number for `arch` */
	uint32_t arch; /* AUDIT_ARCH_* */
	uint64_t instruction_pointer;
	uint64_t args[6];
} na_notify_req;

/* Which syscall a notification is about, for the native architecture only
 * (another architecture's execve is NA_SYSCALL_OTHER: answered by the
 * caller's default, never read with the wrong pointer size). */
typedef enum na_syscall_kind {
	NA_SYSCALL_OTHER = 0,
	NA_SYSCALL_EXECVE = 1,
	NA_SYSCALL_EXECVEAT = 2,
} na_syscall_kind;

na_notify *na_notify_new(int fd, char *err, size_t errlen);
void na_notify_free(na_notify *n);
int na_notify_fd(const na_notify *n);
/* Returns the fd and leaves `n` without one (free no longer closes it). */
int na_notify_release_fd(na_notify *n);

/* Asks the kernel to hand each notification to a receiver blocked in
 * na_notify_receive on the waking task's own CPU, and the answer back the
 * same way (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6): the exec and
 * its supervisor then ping-pong on one CPU instead of paying a cross-CPU
 * wake-up each way. Only useful to a thread that blocks in receive (not in
 * poll/epoll). 0, or -errno (-EINVAL before 6.6: nothing changes). */
int na_notify_set_sync_wakeup(na_notify *n);

/* Makes the calling thread - the one blocked in na_notify_receive -
 * SCHED_FIFO at the lowest real-time priority, with reset-on-fork (nothing
 * it starts inherits it), where the process may (root, CAP_SYS_NICE or
 * RLIMIT_RTPRIO): the exec it answers, woken onto the same CPU, then
 * cannot preempt it before it is back in receive. Left runnable there for
 * the whole life of the exec'd process, an ordinary thread pushed that
 * process' parent onto the other, idle CPU at every exec (measured: about
 * 45 us per exec on a 2-vCPU VM; docs/nodeagent.md). Its work per
 * notification is bounded and it sleeps in between, so it cannot starve
 * the CPU. 0, or -errno (-EPERM: not permitted, nothing changed). */
int na_notify_receiver_realtime(void);

/* Blocks until a notification arrives (use poll/epoll on the fd first for
 * a non-blocking loop). 0 and *out; -ENOENT: the target went away before
 * it could be received (skip and receive again); -EINTR; other -errno: the
 * fd is unusable. */
int na_notify_receive(na_notify *n, na_notify_req *out);
/* error == 0: SECCOMP_USER_NOTIF_FLAG_CONTINUE (the syscall runs); else the
 * syscall fails with -error (e.g. EPERM). 0; -ENOENT: target gone (skip);
 * other -errno. */
int na_notify_respond(na_notify *n, uint64_t id, int error);
/* 0 while the notification is still pending, -ENOENT when not. */
int na_notify_id_valid(const na_notify *n, uint64_t id);
int na_notify_id_valid_fd(int fd, uint64_t id);

na_syscall_kind na_notify_syscall_kind(const na_notify_req *req);

/* In the calling (single-threaded) process: sets no_new_privs and loads a
 * filter that allows everything except execve/execveat, which notify. 0
 * and *fd_out (the listener fd, close-on-exec), or -errno with `err`. */
int na_notify_install_exec_filter(int *fd_out, char *err, size_t errlen);

#endif
