/*
 * na_privs.h - least privilege for `codeframe-agent run`.
 *
 * Purpose: once its sockets are bound and the profile is installed, the
 * agent needs exactly one privilege: CAP_SYS_PTRACE, to read the memory,
 * cwd and environment of container processes running as other users
 * (process_vm_readv and /proc/PID/{cwd,root,environ} are ptrace-mode
 * checks). Everything else is dropped from the bounding, permitted,
 * effective, inheritable and ambient sets, and no_new_privs is set, so
 * neither this process nor anything it execs (the policy side, restarted
 * from /proc/self/exe) can regain a capability. The agent stays uid 0 so
 * it still owns its root-owned socket, state and profile directories.
 * No libcap: prctl(PR_CAPBSET_DROP) and the raw capset syscall.
 *
 * Thread-safety: capabilities are per thread; call before starting any
 * thread. Ownership: n/a.
 */
#ifndef NA_PRIVS_H
#define NA_PRIVS_H

#include <stddef.h>

/* 0, or -errno with err (nothing may have changed: e.g. not root). */
int na_privs_drop(char *err, size_t errlen);

#endif
