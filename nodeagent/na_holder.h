/*
 * na_holder.h - `codeframe-agent run`: the process that holds every notify
 * fd, so that neither a crash of the policy code nor an upgrade ever closes
 * one (a closed notify fd makes every later exec in that container fail with
 * ENOSYS for the rest of its life).
 *
 * Split (why): the holder is the part that must not crash, so it does as
 * little as possible and never touches target memory or policy files:
 * - it owns the runtime socket (na_listener, accepted on a thread because a
 *   runtime handoff read is bounded but may take seconds), the notify fds,
 *   and DIR/handoff.sock (na_succession) in the state directory;
 * - its main thread waits with epoll on every notify fd, receives each
 *   notification, keeps it in a pending table with a deadline
 *   (CF_AGENT_ANSWER_TIMEOUT_MS) and passes it over a SOCK_SEQPACKET
 *   socketpair (na_wire) to the policy side: a fork+exec of the same binary
 *   (`codeframe-agent __policy-side FD run ARGS...`, na_run.h) that reads
 *   the target's memory, decides, logs events, serves metrics and
 *   approvals. Each container's identity and a duplicate of its fd (for the
 *   ID_VALID check after reading memory) go to the policy side once (ADD);
 * - the policy side's answer comes back; the holder responds to the kernel.
 *   A notification never waits forever: past its deadline (or when the
 *   table is full) the holder answers the level's default (strict: EPERM,
 *   warn/disabled: CONTINUE; EPERM while no policy side has ever reported a
 *   level). An approval wait extends the deadline on the policy side's
 *   request (EXTEND), bounded by approvalTimeoutSeconds.
 * - if the policy side dies, the holder restarts it (backoff 50 ms doubling
 *   to 5 s while it keeps dying young) and sends it every container and
 *   every pending notification again.
 * - whether an exec on a container's init fd was already continued is
 *   tracked here ("entry answered") and sent with every notification, so a
 *   restarted policy side never mistakes a later exec for the trusted
 *   entrypoint.
 * Upgrade: see na_succession.h. The old agent stops accepting and
 * receiving, answers what it holds, sends the listening socket and every fd
 * with its identity, and exits 0 after the successor acknowledged; without
 * an acknowledgement it resumes serving.
 * Shutdown (SIGTERM/SIGINT): stops accepting and receiving, answers what is
 * in flight (bounded), stops the policy side, removes its sockets, exits 0.
 * SIGHUP is passed to the policy side (policy reload).
 *
 * Thread-safety: na_holder_main is called once from main. Ownership: n/a.
 */
#ifndef NA_HOLDER_H
#define NA_HOLDER_H

/* argv[0] is "run". Exit status: 0 after SIGTERM/SIGINT or a completed
 * handoff to a successor, 1 on a startup error, 2 on a usage error. */
int na_holder_main(int argc, char **argv);

#endif
