/*
 * cf_log.h - decisions and diagnostics as one compact JSON object per line.
 *
 * Purpose: every line either binary prints for operators (`kubectl logs`)
 * goes through here, so the format (time, level first; compact; newline;
 * flushed per line) is decided once.
 * Thread-safety: cf_log_emit and cf_log_msg may be called from any thread;
 * a mutex (or the batch writer, see cf_log_batch_start) keeps lines whole
 * and in order. Set the stream and level before threads start; start and
 * stop batching from one thread.
 * A caller on a path that must never block (the agent's notify loop) should
 * use cf_log_format and hand the line to its own writer thread.
 * Ownership: cf_log_emit takes ownership of the cJSON object it is given.
 */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stdio.h>

#include <cjson/cJSON.h>

typedef enum cf_log_level {
	CF_LOG_DEBUG = 0,
	CF_LOG_INFO = 1,
	CF_LOG_WARNING = 2,
	CF_LOG_ERROR = 3,
} cf_log_level;

/* Default: stdout, INFO. */
void cf_log_set_stream(FILE *f);
/* For a process that must never block on its own log lines (the node
 * agent): when stdout is a pipe (a container's log), returns a stream on a
 * separate, non-blocking open of that pipe (lines are lost, not waited for,
 * while the reader stalls; other users of stdout keep blocking writes).
 * NULL when stdout is not a pipe (files and terminals do not stall that
 * way, and a second open of a file would write at its own offset) or it
 * cannot be opened. The caller sets it with cf_log_set_stream and fcloses
 * it after setting another stream. */
FILE *cf_log_open_nonblocking_stdout(void);
void cf_log_set_min_level(cf_log_level level);
cf_log_level cf_log_min_level(void);
const char *cf_log_level_name(cf_log_level level);
/* "debug"/"info"/"warning"/"error" (any case) -> 0, else -EINVAL. */
int cf_log_parse_level(const char *name, cf_log_level *out);

/* Writes "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC) into out (>= 32 bytes). */
void cf_log_timestamp(char *out, size_t outlen);

/* Returns a malloc'd line "{"time":..,"level":..,<fields of obj>}\n" and
 * frees obj. NULL on allocation failure. Fields already named time/level in
 * obj are kept as given. */
char *cf_log_format(cf_log_level level, cJSON *obj);
/* Writes a complete line: at once under the lock, or, while batching,
 * into the batch (waiting for room if the writer is behind: no line is
 * dropped). */
void cf_log_write_line(const char *line);

/* Batching, for a process that logs a line per request (the webhook): a
 * writer thread writes the queued lines with one write(2) every
 * CF_LOG_BATCH_MS, or as soon as half of CF_LOG_BATCH_BYTES is queued,
 * instead of one write(2) per line under a lock that every request thread
 * contends for. Lines keep their order and are never dropped; what is
 * lost is at most CF_LOG_BATCH_MS of lines if the process dies abruptly
 * (SIGKILL, a crash). stop writes out everything queued, joins the writer
 * and returns to direct writes. 0 or -errno. */
#define CF_LOG_BATCH_MS    2u
#define CF_LOG_BATCH_BYTES (256u * 1024u)
int cf_log_batch_start(void);
void cf_log_batch_stop(void);
/* Formats and writes obj when level >= the minimum; always frees obj. */
void cf_log_emit(cf_log_level level, cJSON *obj);
/* A line built field by field, for hot paths: no cJSON tree, one buffer.
 * The text is byte-for-byte what cf_log_format prints for the same fields
 * in the same order (cJSON's escaping; integers as cJSON prints numbers; a
 * NULL string value omits the field, as cJSON_AddStringToObject does).
 * Usage: if (cf_log_begin(&l, level)) { cf_log_add_*(&l, ...); ...;
 * cf_log_end(&l); }. begin is false when level is below the minimum or
 * memory ran out; then nothing else is to be called. */
typedef struct cf_log_line {
	char *data; /* `small`, until a line outgrows it (then malloc'd) */
	size_t len, cap;
	int failed;      /* an append ran out of memory: the line is dropped */
	char small[512]; /* a decision line fits: no allocation per request */
} cf_log_line;
int cf_log_begin(cf_log_line *l, cf_log_level level);
void cf_log_add_str(cf_log_line *l, const char *key, const char *value);
void cf_log_add_uint(cf_log_line *l, const char *key, unsigned long long value);
void cf_log_add_true(cf_log_line *l, const char *key);
/* value: JSON text printed by cJSON_PrintUnformatted, inserted as is. */
void cf_log_add_raw(cf_log_line *l, const char *key, const char *value);
/* Closes the line and returns it (malloc'd, "...}\n"), or NULL. */
char *cf_log_finish(cf_log_line *l);
/* Closes, writes (one write, flushed) and frees the line. A cf_log_line
 * is used where it was declared (it may point into itself). */
void cf_log_end(cf_log_line *l);

/* {"time","level","component","msg"} from a printf-style message. */
void cf_log_msg(cf_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
