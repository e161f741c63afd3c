/* na_events.c - see na_events.h. */
#include "na_events.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_limits.h"

/* How long a queued event may wait for the writer when the queue is not
 * filling up: well below what a person reading `kubectl logs` notices. */
#define WRITER_PERIOD_MS 20L

/* A queued event: everything copied, so the submitter's buffers can be
 * reused as soon as submit returns. */
struct item {
	struct timespec time;
	cf_log_level level;
	pid_t pid;
	uint64_t latency_us;
	na_decision decision;
	char *decision_text;
	char *error;
	char *command;
	char *ns, *pod, *container, *project_id, *user_id;
};

struct na_events {
	int fd;
	cf_log_level min;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* writer: work or stop */
	pthread_cond_t idle; /* flush: queue drained */
	struct item **ring;
	size_t cap, head, count;
	bool stop;
	bool busy; /* writer is writing an item it popped */
	uint64_t dropped, dropped_reported, written;
	pthread_t thread;
};

static char *dup_trunc(const char *s, size_t max)
{
	if (!s)
		s = "";
	size_t n = strnlen(s, max);
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->decision_text);
	free(it->error);
	free(it->command);
	free(it->ns);
	free(it->pod);
	free(it->container);
	free(it->project_id);
	free(it->user_id);
	free(it);
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	cJSON_AddStringToObject(o, k, v ? v : "");
}

/* The DESIGN.md fields in their order, then name/findings/error. */
static cJSON *build(const char *ns, const char *pod, const char *container, pid_t pid,
                    const char *command, const na_decision *d, const char *decision_text,
                    const char *project_id, const char *user_id, uint64_t latency_us,
                    const char *error)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	add_str(o, "namespace", ns);
	add_str(o, "pod", pod);
	add_str(o, "container", container);
	cJSON_AddNumberToObject(o, "pid", (double)pid);
	add_str(o, "command", command);
	add_str(o, "decision",
	        decision_text ? decision_text : (d ? na_verdict_name(d->verdict) : "allow"));
	add_str(o, "rule", d ? d->rule : "");
	add_str(o, "project_id", project_id);
	add_str(o, "user_id", user_id);
	cJSON_AddNumberToObject(o, "latency_us", (double)latency_us);
	if (d) {
		add_str(o, "name", d->name);
		add_str(o, "enforcement", na_level_name(d->enforcement));
		cJSON *fa = cJSON_AddArrayToObject(o, "findings");
		for (size_t i = 0; fa && i < d->n_findings; i++) {
			cJSON *f = cJSON_CreateObject();
			if (!f)
				break;
			add_str(f, "rule", d->findings[i].rule);
			add_str(f, "detail", d->findings[i].detail);
			cJSON_AddItemToArray(fa, f);
		}
	}
	if (error)
		add_str(o, "error", error);
	return o;
}

cJSON *na_event_to_json(const na_event *ev)
{
	const na_identity *w = ev->who;
	return build(w ? w->namespace_ : NULL, w ? w->pod : NULL, w ? w->container : NULL, ev->pid,
	             ev->command, ev->decision, ev->decision_text, w ? w->project_id : NULL,
	             w ? w->user_id : NULL, ev->latency_us, ev->error);
}

static void write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return; /* nowhere to report a broken log stream */
		}
		s += w;
		n -= (size_t)w;
	}
}

static void write_item(na_events *q, const struct item *it)
{
	char stamp[96];
	struct tm tm;
	gmtime_r(&it->time.tv_sec, &tm);
	snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (long)(it->time.tv_nsec / 1000000) % 1000);
	cJSON *line = cJSON_CreateObject();
	cJSON *o = build(it->ns, it->pod, it->container, it->pid, it->command, &it->decision,
	                 it->decision_text, it->project_id, it->user_id, it->latency_us, it->error);
	char *text = NULL;
	if (!line || !o)
		goto out;
	/* time and level first, like every cf_log line. */
	cJSON_AddStringToObject(line, "time", stamp);
	cJSON_AddStringToObject(line, "level", cf_log_level_name(it->level));
	while (o->child) {
		cJSON *f = cJSON_DetachItemViaPointer(o, o->child);
		cJSON_AddItemToObject(line, f->string, f);
	}
	text = cJSON_PrintUnformatted(line);
	if (text) {
		size_t n = strlen(text);
		text[n] = '\n'; /* replaces the terminator; length passed below */
		write_all(q->fd, text, n + 1);
	}
out:
	free(text);
	cJSON_Delete(line);
	cJSON_Delete(o);
}

static void write_drop_notice(na_events *q, uint64_t n)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_AddStringToObject(o, "component", "events");
	cJSON_AddStringToObject(o, "msg", "event queue full: events dropped");
	cJSON_AddNumberToObject(o, "dropped", (double)n);
	char *line = cf_log_format(CF_LOG_WARNING, o);
	if (line) {
		write_all(q->fd, line, strlen(line));
		free(line);
	}
}

static void *writer(void *arg)
{
	na_events *q = arg;
	pthread_mutex_lock(&q->lock);
	for (;;) {
		/* Submitters do not wake the writer per event (a futex wake and
		 * a context switch on every exec); it wakes every
		 * WRITER_PERIOD_MS, when the queue is half full, or on
		 * flush/stop. */
		while (!q->count && !q->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += WRITER_PERIOD_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&q->cond, &q->lock, &ts);
		}
		if (!q->count && q->stop)
			break;
		struct item *it = q->ring[q->head];
		q->ring[q->head] = NULL;
		q->head = (q->head + 1) % q->cap;
		q->count--;
		uint64_t new_drops = q->dropped - q->dropped_reported;
		q->dropped_reported = q->dropped;
		q->busy = true;
		pthread_mutex_unlock(&q->lock);

		if (new_drops)
			write_drop_notice(q, new_drops);
		write_item(q, it);
		item_free(it);

		pthread_mutex_lock(&q->lock);
		q->busy = false;
		q->written++;
		if (!q->count)
			pthread_cond_broadcast(&q->idle);
	}
	pthread_cond_broadcast(&q->idle);
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

na_events *na_events_new(int fd, cf_log_level min_level, size_t capacity, char *err, size_t errlen)
{
	na_events *q = calloc(1, sizeof *q);
	if (!q)
		goto nomem;
	q->fd = fd;
	q->min = min_level;
	q->cap = capacity ? capacity : CF_AGENT_EVENT_QUEUE_LEN;
	q->ring = calloc(q->cap, sizeof *q->ring);
	if (!q->ring)
		goto nomem;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	pthread_cond_init(&q->idle, NULL);
	int rc = pthread_create(&q->thread, NULL, writer, q);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the event writer: %s", strerror(rc));
		pthread_mutex_destroy(&q->lock);
		pthread_cond_destroy(&q->cond);
		pthread_cond_destroy(&q->idle);
		free(q->ring);
		free(q);
		return NULL;
	}
	return q;
nomem:
	snprintf(err, errlen, "out of memory");
	if (q)
		free(q->ring);
	free(q);
	return NULL;
}

int na_events_submit(na_events *q, const na_event *ev)
{
	cf_log_level level = ev->decision ? ev->decision->log_level : CF_LOG_INFO;
	if (level < q->min)
		return 1;
	struct item *it = calloc(1, sizeof *it);
	if (!it)
		goto nomem;
	clock_gettime(CLOCK_REALTIME, &it->time);
	it->level = level;
	it->pid = ev->pid;
	it->latency_us = ev->latency_us;
	if (ev->decision)
		it->decision = *ev->decision;
	const na_identity *w = ev->who;
	it->command = dup_trunc(ev->command, CF_LOG_MAX_FIELD_BYTES);
	it->ns = dup_trunc(w ? w->namespace_ : NULL, CF_LOG_MAX_FIELD_BYTES);
	it->pod = dup_trunc(w ? w->pod : NULL, CF_LOG_MAX_FIELD_BYTES);
	it->container = dup_trunc(w ? w->container : NULL, CF_LOG_MAX_FIELD_BYTES);
	it->project_id = dup_trunc(w ? w->project_id : NULL, CF_LOG_MAX_FIELD_BYTES);
	it->user_id = dup_trunc(w ? w->user_id : NULL, CF_LOG_MAX_FIELD_BYTES);
	if (ev->decision_text)
		it->decision_text = dup_trunc(ev->decision_text, 64);
	if (ev->error)
		it->error = dup_trunc(ev->error, CF_LOG_MAX_FIELD_BYTES);
	if (!it->command || !it->ns || !it->pod || !it->container || !it->project_id ||
	    !it->user_id || (ev->decision_text && !it->decision_text) || (ev->error && !it->error))
		goto nomem;

	pthread_mutex_lock(&q->lock);
	if (q->count == q->cap) {
		q->dropped++;
		pthread_mutex_unlock(&q->lock);
		item_free(it);
		return -EAGAIN;
	}
	q->ring[(q->head + q->count) % q->cap] = it;
	q->count++;
	if (q->count == (q->cap + 1) / 2)
		pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return 0;
nomem:
	item_free(it);
	pthread_mutex_lock(&q->lock);
	q->dropped++;
	pthread_mutex_unlock(&q->lock);
	return -ENOMEM;
}

uint64_t na_events_dropped(na_events *q)
{
	pthread_mutex_lock(&q->lock);
	uint64_t n = q->dropped;
	pthread_mutex_unlock(&q->lock);
	return n;
}

uint64_t na_events_written(na_events *q)
{
	pthread_mutex_lock(&q->lock);
	uint64_t n = q->written;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void na_events_flush(na_events *q)
{
	pthread_mutex_lock(&q->lock);
	pthread_cond_signal(&q->cond);
	while ((q->count || q->busy) && !q->stop)
		pthread_cond_wait(&q->idle, &q->lock);
	pthread_mutex_unlock(&q->lock);
}

void na_events_free(na_events *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	/* The writer drains before it stops; anything left is freed here. */
	for (size_t i = 0; i < q->cap; i++)
		item_free(q->ring[i]);
	uint64_t late = q->dropped - q->dropped_reported;
	if (late)
		write_drop_notice(q, late);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cond);
	pthread_cond_destroy(&q->idle);
	free(q->ring);
	free(q);
}
