/*
 * na_ancestry.h - per process tree memory of which processes were admitted
 * as allowed commands, so that their descendants are allowed-by-ancestry.
 *
 * Approach: seccomp only tells us about execs, not forks. So each exec that
 * is answered CONTINUE leaves a record keyed by (pid, start time) saying
 * whether that image was admitted as an allowed command (`self`) and
 * whether the process already had an allowed ancestor (`inherited`). When a
 * pid execs, its ancestry is: its own record's `inherited` if it has one
 * (it exec'd before, e.g. `sh -c` exec'ing its last command in place);
 * otherwise the first ancestor with a record, found by walking ppid links
 * (na_procmem_identify; up to CF_AGENT_MAX_ANCESTRY_DEPTH, stopping at the
 * tree's root): allowed when that ancestor's `self || inherited`. `self`
 * counts only once the exec really happened: the record keeps the image's
 * stack start from before the exec, and an ancestor whose stack start is
 * unchanged never replaced its image (the exec failed, e.g. a PATH search
 * miss), so a failed exec of an allowed name confers nothing. That stack
 * start is read (from /proc, the one costly read: see na_procmem_identify)
 * only for a record whose worth can depend on it - an exec with no allowed
 * ancestor, which may be admitted as an allowed command; below an allowed
 * command nothing but the pidfd identity is read. Process ids (na_proc_id)
 * are compared on every hit so a reused pid never inherits a dead
 * process's record. A process reparented to init (its parent exited) loses its
 * ancestry: that fails closed. Records of exited processes are swept when
 * the table fills (CF_AGENT_MAX_TRACKED_PIDS); if it is still full, new
 * records are not kept (again failing closed).
 *
 * The first exec seen by a tree (the container's entrypoint, or `exec`
 * mode's CMD) is reported as first_exec: trusted by the policy, but it
 * does not make its descendants allowed-by-ancestry unless its name is
 * itself an allowed command.
 *
 * Thread-safety: one na_ancestry per tree (per notify fd), used by one
 * thread at a time. Ownership: na_ancestry_new/na_ancestry_free.
 */
#ifndef NA_ANCESTRY_H
#define NA_ANCESTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "na_cmdpolicy.h"
#include "na_procmem.h"

typedef struct na_ancestry na_ancestry;

/* How a process is identified: na_procmem_identify by default; tests
 * inject a fake process table. Returns 0 or -errno like it. */
typedef int (*na_stat_fn)(void *ctx, pid_t pid, bool want_stack, na_proc_id *out);

/* root: the tree's top pid (walks stop there; 0 = walk to pid 1). NULL on
 * allocation failure. stat_fn NULL -> /proc. */
na_ancestry *na_ancestry_new(pid_t root, na_stat_fn stat_fn, void *stat_ctx);
void na_ancestry_free(na_ancestry *a);

/* Before deciding an exec by `pid`: fills *ctx, and keeps what
 * na_ancestry_record needs from before the exec (it may be called after
 * the exec was answered). 0, or -ENOENT when the pid has vanished (ctx
 * then says no ancestry). */
int na_ancestry_lookup(na_ancestry *a, pid_t pid, na_cmd_context *ctx);
/* After an exec by `pid` was answered CONTINUE: remembers the new image.
 * name_allowed is na_decision.name_allowed; ctx is what lookup returned. */
void na_ancestry_record(na_ancestry *a, pid_t pid, const na_cmd_context *ctx, bool name_allowed);
/* Records currently kept (for tests and metrics). */
size_t na_ancestry_size(const na_ancestry *a);

#endif
