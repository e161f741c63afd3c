/*
 * na_run.h - the policy side of `codeframe-agent run` (the fd holder,
 * na_holder.h, starts it as `codeframe-agent __policy-side FD run ARGS...`
 * and restarts it when it dies).
 *
 * Purpose: decides every exec the holder passes over (na_wire) with the
 * same decision `exec` mode makes (na_procmem -> na_ancestry ->
 * na_cmdpolicy) and answers the holder, logging one event per exec
 * (na_events) and exporting Prometheus metrics (cf_metrics). It never
 * receives from or responds to a notify fd: it holds a duplicate of each
 * only for the ID_VALID check after reading the target's memory, so its
 * death closes nothing the containers depend on.
 *
 * Threads (why): one slow decision must never block another container. A
 * decision can be slow for reasons the target controls (its argv may sit in
 * memory whose page fault blocks the agent's read: userfaultfd, FUSE), so:
 * - the main thread reads the holder's messages (containers, notifications)
 *   and queues each notification on its container; it also handles signals
 *   (signalfd) and policy file changes (inotify);
 * - each notify fd (a container's init tree, or one `runc exec` session)
 *   has its own worker thread that reads, decides and answers its queue in
 *   order. A stuck read stalls only that container's later execs (and the
 *   holder's deadline answers them with the level's default);
 * - a metrics thread serves GET /metrics (plain HTTP, bounded by
 *   CF_METRICS_MAX_REQUEST_BYTES and CF_METRICS_IO_TIMEOUT_MS);
 * - na_events' writer thread writes event lines, so a slow stdout never
 *   delays an answer (events are dropped and counted instead).
 *
 * Policy reload (SIGHUP, passed on by the holder, or a change in a policy
 * file's directory, which also catches ConfigMap symlink swaps) builds the
 * new policy aside and swaps it in; a broken file keeps the old policy and
 * logs an error. The new level is reported to the holder (its default
 * answer follows it). When the holder's socket closes, the policy side
 * exits.
 *
 * Thread-safety: called once from main. Ownership: n/a.
 */
#ifndef NA_RUN_H
#define NA_RUN_H

#include <stddef.h>

#include "na_config.h"

/* The hidden subcommand the holder execs. */
#define NA_RUN_POLICY_SIDE "__policy-side"

/* argv: [NA_RUN_POLICY_SIDE, FD, "run", options...]. Exit status 0 when
 * the holder closed its socket or on SIGTERM, 1 on a startup error. */
int na_run_policy_main(int argc, char **argv);

/* `run` options (argv[0] is "run") into cfg: 0; 1 error (err set); 2 usage
 * error (printed); 3 --help (printed). Shared by the holder and the policy
 * side so both read one configuration. */
int na_run_parse_args(int argc, char **argv, na_config *cfg, char *err, size_t errlen);

#endif
