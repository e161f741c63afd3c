/*
 * ts_proc.h - start a binary under test, wait until it listens, signal
 * it, and make sure it is gone afterwards.
 *
 * The child's stdout and stderr go to a log file the test can read (for
 * the JSON lines a server prints). A test that fails half-way must still
 * not leave a server behind: call ts_proc_kill in every exit path (it is a
 * no-op once the child was reaped), or register it with ts_proc_atexit.
 *
 * All functions return 0 or -errno. Thread-safety: one thread per
 * ts_proc. Ownership: the caller owns the ts_proc struct.
 */
#ifndef TS_PROC_H
#define TS_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct ts_proc {
	pid_t pid;     /* 0 when not running (reaped) */
	int status;    /* wait status once reaped */
	char log[512]; /* path of the stdout+stderr file */
} ts_proc;

/* Starts argv[0] (a path) with argv, stdout+stderr appended to log_path. */
int ts_proc_spawn(ts_proc *p, char *const argv[], const char *log_path);
/* Polls connect() to host:port every 20 ms until it succeeds (0), the
 * child exits (-ECHILD, p->status set) or timeout_ms passes (-ETIMEDOUT). */
int ts_proc_wait_port(ts_proc *p, const char *host, unsigned port, unsigned timeout_ms);
int ts_proc_signal(ts_proc *p, int sig);
/* Waits for exit up to timeout_ms: 0 and p->status, or -ETIMEDOUT. */
int ts_proc_wait(ts_proc *p, unsigned timeout_ms);
/* SIGKILL and reap, if still running. */
void ts_proc_kill(ts_proc *p);
/* Kills (SIGKILL) every still-running registered child at process exit,
 * so a crashed assertion does not leave servers behind. Up to 16. */
void ts_proc_atexit(ts_proc *p);

/* A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0,
 * read it, close). Callers retry on a bind race. 0 on failure. */
unsigned ts_free_port(void);

/* Reads the whole file into a malloc'd NUL-terminated string (NULL when
 * unreadable). */
char *ts_read_text(const char *path);
/* Polls `path` until it contains `needle` (0) or timeout_ms (-ETIMEDOUT). */
int ts_wait_for_text(const char *path, const char *needle, unsigned timeout_ms);
/* Counts the occurrences of `needle` in the file (0 when unreadable). */
size_t ts_count_text(const char *path, const char *needle);

#endif
