/*
 * na_run.h - `codeframe-agent run`: the node agent in the cluster.
 *
 * Purpose: accepts the notify fds container runtimes hand over (na_listener),
 * identifies each container (na_identity), and answers every exec in every
 * worker container with the same decision `exec` mode makes (na_procmem ->
 * na_ancestry -> na_cmdpolicy -> na_notify), logging one event per exec
 * (na_events) and exporting Prometheus metrics (cf_metrics).
 *
 * Threads (why): one slow decision must never block another container. A
 * decision can be slow for reasons the target controls (its argv may sit in
 * memory whose page fault blocks the agent's read: userfaultfd, FUSE), so:
 * - the main thread waits with epoll on every notify fd, receives each
 *   notification (receiving never blocks: the fd was readable) and queues it
 *   on its container; it also handles signals (signalfd) and policy file
 *   changes (inotify);
 * - each notify fd (a container's init tree, or one `runc exec` session)
 *   has its own worker thread that reads, decides and answers its queue in
 *   order. A stuck read stalls only that container's later execs;
 * - an acceptor thread takes handoffs (each bounded by
 *   CF_HANDOFF_TIMEOUT_MS) and registers containers with the epoll set;
 * - a metrics thread serves GET /metrics (plain HTTP, bounded by
 *   CF_METRICS_MAX_REQUEST_BYTES and CF_METRICS_IO_TIMEOUT_MS);
 * - na_events' writer thread writes event lines, so a slow stdout never
 *   delays an answer (events are dropped and counted instead).
 * The worker answers with its own duplicate of the notify fd so receive and
 * respond never share na_notify buffers.
 *
 * Per container: ENOENT (target gone) and ECANCELED are skipped; a hang-up
 * (every process of the filter exited) or a broken fd ends that container's
 * worker only. Policy reload (SIGHUP, or a change in a policy file's
 * directory, which also catches ConfigMap symlink swaps) builds the new
 * policy aside and swaps it in; a broken file keeps the old policy and logs
 * an error. No notify fd is touched by a reload.
 *
 * Thread-safety: na_run_main is called once from main. Ownership: n/a.
 */
#ifndef NA_RUN_H
#define NA_RUN_H

/* argv[0] is "run". Returns the process exit status: 0 after SIGTERM/SIGINT,
 * 1 on a startup error, 2 on a usage error. */
int na_run_main(int argc, char **argv);

#endif
