/*
 * na_profile.h - the worker seccomp profile (OCI JSON) and its atomic install.
 *
 * Purpose: worker containers run under a Localhost seccomp profile that
 * allows what the container runtimes' default profile (moby/containerd)
 * allows an unprivileged container (no added capabilities), flattened for one
 * architecture (no archMap/includes/excludes: those are Docker-only keys that
 * kubelet's Localhost loader passes to the OCI runtime unresolved), plus:
 * - execve/execveat as SCMP_ACT_NOTIFY, so the runtime hands the notify fd to
 *   the agent at `listenerPath`;
 * - clone3 answered ENOSYS so glibc falls back to clone, whose flags the
 *   profile can inspect (the runtimes' defaults do the same);
 * - ptrace, process_vm_readv/writev, pidfd_getfd, kcmp and io_uring_* denied
 *   (EPERM): they would let one worker process change another's memory or
 *   issue syscalls the filter never sees, after the agent checked an exec.
 * Only the native architecture is listed, so 32-bit entry points (int 0x80,
 * x32) cannot reach execve around the notify rule.
 *
 * Thread-safety: no shared state. Ownership: returned cJSON/strings belong
 * to the caller.
 */
#ifndef NA_PROFILE_H
#define NA_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define NA_PROFILE_DEFAULT_DIR      "/var/lib/kubelet/seccomp"
#define NA_PROFILE_RELPATH          "codeframe/worker.json"
#define NA_PROFILE_DEFAULT_LISTENER "/run/codeframe-guard/agent.sock"
/* Passed back by the runtime in the handoff's "metadata": tells the agent the
 * notify fd comes from its own profile (and which revision of it). */
#define NA_PROFILE_METADATA "codeframe-guard/worker/v1"

/* Builds the profile for `arch` (an SCMP_ARCH_* token; 0 = native). Names the
 * architecture does not have are left out; a name libseccomp does not know
 * at all is a bug and fails with -EINVAL. listener must be an absolute path
 * that fits in sockaddr_un (-EINVAL otherwise). */
int na_profile_build(uint32_t arch, const char *listener, cJSON **out, char *err, size_t errlen);
/* The profile as pretty-printed JSON text with a trailing newline. */
int na_profile_render(uint32_t arch, const char *listener, char **out, char *err, size_t errlen);

/* Writes DIR/codeframe/worker.json (mode 0644) atomically: temporary file in
 * the same directory, fsync, rename, fsync of the directory. DIR is created
 * (one level, 0755) when missing, DIR/codeframe too. */
int na_profile_install(const char *dir, const char *listener, char *err, size_t errlen);

/* The architecture-independent allow list (the runtime default's names, all
 * architectures), for tests: every entry must be known to libseccomp. */
const char *const *na_profile_allow_names(size_t *count);
/* "SCMP_ARCH_X86_64" etc. for a token; NULL if the profile does not support
 * that architecture. */
const char *na_profile_arch_name(uint32_t arch);

/* CLI: `profile [--listener PATH]` and `install-profile [--dir DIR]
 * [--listener PATH]`. argv[0] is the subcommand. Exit status 0, 1 (error),
 * 2 (usage). */
int na_profile_cmd_profile(int argc, char **argv);
int na_profile_cmd_install(int argc, char **argv);

#endif
