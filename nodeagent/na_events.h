/*
 * na_events.h - exec decisions as JSON lines, written off the notify path.
 *
 * Purpose: every exec the agent answers becomes one JSON object per line:
 * time, level, namespace, pod, container, pid, command, decision, rule,
 * project_id, user_id, latency_us (DESIGN.md), plus name, enforcement,
 * findings and (when the exec could not be read or answered) error.
 * The thread answering notifications must never wait for a slow stdout
 * (a full pipe to `kubectl logs`), so na_events_submit copies the event into
 * a bounded queue (CF_AGENT_EVENT_QUEUE_LEN) and returns; a writer thread
 * formats and writes, waking every 20 ms or when the queue is half full
 * (not per event: that would cost the notify thread a futex wake and a
 * context switch per exec). A full queue drops the event and counts it; the
 * writer reports drops in a line of its own once there is room again.
 *
 * Thread-safety: na_events_submit may be called from any number of threads.
 * Ownership: submit copies everything it is given; na_events_free drains
 * what is queued (bounded by the queue length), stops the writer and closes
 * nothing it did not open (the fd stays the caller's).
 */
#ifndef NA_EVENTS_H
#define NA_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cf_log.h"
#include "na_cmdpolicy.h"

typedef struct na_events na_events;

/* Who ran the exec. All strings may be NULL (written as ""). In `exec` mode
 * namespace/pod/container are empty; project_id/user_id come from the
 * environment (CODEFRAME_PROJECT_ID / CODEFRAME_USER_ID). */
typedef struct na_identity {
	const char *namespace_;
	const char *pod;
	const char *container;
	const char *project_id;
	const char *user_id;
} na_identity;

typedef struct na_event {
	const na_identity *who;
	pid_t pid;
	const char *command; /* argv joined by spaces (truncated to CF_LOG_MAX_FIELD_BYTES) */
	const na_decision *decision;
	const char *decision_text; /* overrides na_verdict_name() when set
	                            * (e.g. "deny" for an approval that could
	                            * not be asked) */
	const char *error;         /* optional: why the exec could not be read */
	uint64_t latency_us;       /* receive -> respond */
} na_event;

/* Writes lines to fd (not closed by na_events_free); events below
 * min_level are not queued. capacity 0 -> CF_AGENT_EVENT_QUEUE_LEN. NULL
 * with `err` when the writer thread cannot start. */
na_events *na_events_new(int fd, cf_log_level min_level, size_t capacity, char *err, size_t errlen);
/* 0 (queued), 1 (below min level, not queued), -EAGAIN (queue full:
 * dropped and counted), -ENOMEM (dropped and counted). Never blocks on I/O. */
int na_events_submit(na_events *q, const na_event *ev);
uint64_t na_events_dropped(na_events *q);
uint64_t na_events_written(na_events *q);
/* Waits until everything queued so far is written (used before exit). */
void na_events_flush(na_events *q);
void na_events_free(na_events *q);

/* The event as a JSON object (what the writer prints, minus time/level).
 * Exposed for tests and for `check-command`. NULL on allocation failure. */
cJSON *na_event_to_json(const na_event *ev);

#endif
