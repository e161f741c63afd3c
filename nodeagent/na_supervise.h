/*
 * na_supervise.h - `codeframe-agent exec`: run a command tree under the
 * command policy without Kubernetes.
 *
 * Purpose: the child sets no_new_privs, installs a seccomp filter whose
 * execve/execveat notify, passes the listener fd to the parent over a
 * socketpair (SCM_RIGHTS) and execs CMD. The parent answers every exec in
 * the tree: read (na_procmem) -> decide (na_cmdpolicy, with na_ancestry)
 * -> respond CONTINUE or EPERM (na_notify) -> event (na_events). Signals
 * the parent receives (INT, TERM, HUP, QUIT, USR1, USR2, WINCH, CONT) are
 * forwarded to CMD; the parent returns CMD's exit status (128+N when it
 * was killed by signal N). When CMD exits, background descendants keep
 * running but lose the supervisor: their later execs fail (ENOSYS).
 * In `exec` mode nobody can answer an approval, so a require_approval match
 * under strict is denied (rule require_approval, decision "deny").
 *
 * Notifications are received by a thread of its own that blocks in the
 * receive ioctl with SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, so an exec and its
 * answer change CPU as little as possible; the calling thread forwards
 * signals and reaps CMD.
 *
 * Thread-safety: call from a single-threaded process (it forks); it starts
 * and stops its own notify and writer threads (the notify thread is woken
 * for shutdown with SIGRTMIN, for which it installs a handler). Ownership:
 * options are borrowed.
 */
#ifndef NA_SUPERVISE_H
#define NA_SUPERVISE_H

#include "cf_log.h"
#include "na_cmdpolicy.h"

typedef struct na_supervise_opts {
	const na_policy *policy;
	char *const *argv; /* CMD ARGS..., NULL-terminated; argv[0] searched in PATH */
	int log_fd;        /* events go here (stderr or --log FILE) */
	cf_log_level log_level;
	const char *project_id; /* NULL -> "" */
	const char *user_id;
} na_supervise_opts;

/* Returns CMD's exit status (0..255), or -errno when the tree could not be
 * started (with `err`): 127 is returned (like a shell) when CMD itself
 * cannot be executed. */
int na_supervise_run(const na_supervise_opts *o, char *err, size_t errlen);

#endif
