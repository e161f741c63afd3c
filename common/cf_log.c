/* cf_log.c - see cf_log.h. */
#include "cf_log.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf_json.h"
#include "cf_limits.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_stream;
static cf_log_level log_min = CF_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void cf_log_set_stream(FILE *f)
{
	log_stream = f;
}

void cf_log_set_min_level(cf_log_level level)
{
	log_min = level;
}

cf_log_level cf_log_min_level(void)
{
	return log_min;
}

const char *cf_log_level_name(cf_log_level level)
{
	if ((unsigned)level > CF_LOG_ERROR)
		return "info";
	return level_names[level];
}

int cf_log_parse_level(const char *name, cf_log_level *out)
{
	for (unsigned i = 0; i < 4; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (cf_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

void cf_log_timestamp(char *out, size_t outlen)
{
	/* Every decision line asks for the time: the calendar part is only
	 * recomputed when the second changes (gmtime_r takes glibc's time
	 * zone lock, shared by all threads). */
	static _Thread_local time_t cached_sec = (time_t)-1;
	static _Thread_local char cached[64]; /* "YYYY-MM-DDTHH:MM:SS" */
	static _Thread_local size_t cached_len;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		int n = snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d",
		                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		                 tm.tm_min, tm.tm_sec);
		cached_len = n > 0 && (size_t)n < sizeof cached ? (size_t)n : 0;
		cached_sec = cached_len ? ts.tv_sec : (time_t)-1;
	}
	char full[72];
	size_t n = cached_len;
	int ms = (int)(ts.tv_nsec / 1000000);
	memcpy(full, cached, n);
	full[n] = '.';
	full[n + 1] = (char)('0' + ms / 100);
	full[n + 2] = (char)('0' + ms / 10 % 10);
	full[n + 3] = (char)('0' + ms % 10);
	full[n + 4] = 'Z';
	n += 5;
	if (!outlen)
		return;
	if (n > outlen - 1)
		n = outlen - 1; /* cut like snprintf */
	memcpy(out, full, n);
	out[n] = '\0';
}

char *cf_log_format(cf_log_level level, cJSON *obj)
{
	cJSON *line = cJSON_CreateObject();
	char *text = NULL;
	char stamp[40];
	if (!line)
		goto fail;
	cf_log_timestamp(stamp, sizeof stamp);
	if (obj && !cJSON_GetObjectItemCaseSensitive(obj, "time"))
		cJSON_AddStringToObject(line, "time", stamp);
	if (obj && !cJSON_GetObjectItemCaseSensitive(obj, "level"))
		cJSON_AddStringToObject(line, "level", cf_log_level_name(level));
	while (obj && obj->child) {
		cJSON *item = cJSON_DetachItemViaPointer(obj, obj->child);
		cJSON_AddItemToObject(line, item->string, item);
	}
	char *body = cJSON_PrintUnformatted(line);
	if (!body)
		goto fail;
	size_t n = strlen(body);
	text = malloc(n + 2);
	if (text) {
		memcpy(text, body, n);
		text[n] = '\n';
		text[n + 1] = '\0';
	}
	cJSON_free(body);
fail:
	cJSON_Delete(line);
	cJSON_Delete(obj);
	return text;
}

FILE *cf_log_open_nonblocking_stdout(void)
{
	struct stat st;
	if (fstat(STDOUT_FILENO, &st) < 0 || !S_ISFIFO(st.st_mode))
		return NULL;
	int fd = open("/proc/self/fd/1", O_WRONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

/* One write(2) of the whole text, as fputs+fflush would do, without
 * copying it through stdio's buffer first (after flushing whatever else
 * was printed there, to keep the order). Streams without a file
 * descriptor (memory streams) go through stdio. Called under log_lock or
 * from the batch writer (the only writer while batching). */
static void write_out(const char *text, size_t n)
{
	FILE *f = log_stream ? log_stream : stdout;
	int fd = fflush(f) == 0 ? fileno(f) : -1;
	if (fd < 0) {
		fwrite(text, 1, n, f);
		fflush(f);
		return;
	}
	while (n) {
		ssize_t w = write(fd, text, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break; /* nowhere to log to: the text is lost, as with fputs */
		text += w;
		n -= (size_t)w;
	}
}

/* ---- batching -------------------------------------------------------- */

/* Lines go into the active half of a double buffer; the writer thread
 * swaps halves and writes the full one with one write(2). */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t work;  /* writer: half full, or stop */
	pthread_cond_t space; /* producers: a half was written out */
	char *buf[2];
	size_t len[2];
	int active;
	bool writer_alive; /* lines may be queued (under lock) */
	bool stopping;
	pthread_t thread;
} batch = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
    .space = PTHREAD_COND_INITIALIZER,
};

static void deadline_in_ms(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += (long)ms * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *batch_writer(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&batch.lock);
	for (;;) {
		int a = batch.active;
		if (!batch.stopping && batch.len[a] < CF_LOG_BATCH_BYTES / 2) {
			struct timespec ts;
			deadline_in_ms(&ts, CF_LOG_BATCH_MS);
			pthread_cond_timedwait(&batch.work, &batch.lock, &ts);
			a = batch.active;
		}
		if (!batch.len[a]) {
			if (batch.stopping)
				break;
			continue;
		}
		batch.active = !a;
		pthread_mutex_unlock(&batch.lock);
		write_out(batch.buf[a], batch.len[a]);
		pthread_mutex_lock(&batch.lock);
		batch.len[a] = 0;
		pthread_cond_broadcast(&batch.space);
	}
	__atomic_store_n(&batch.writer_alive, false, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&batch.space);
	pthread_mutex_unlock(&batch.lock);
	return NULL;
}

int cf_log_batch_start(void)
{
	pthread_mutex_lock(&batch.lock);
	int rc = 0;
	if (batch.writer_alive)
		goto out;
	for (int i = 0; i < 2; i++) {
		if (!batch.buf[i] && !(batch.buf[i] = malloc(CF_LOG_BATCH_BYTES))) {
			rc = -ENOMEM;
			goto out;
		}
		batch.len[i] = 0;
	}
	batch.stopping = false;
	rc = -pthread_create(&batch.thread, NULL, batch_writer, NULL);
	__atomic_store_n(&batch.writer_alive, rc == 0, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&batch.lock);
	return rc;
}

void cf_log_batch_stop(void)
{
	pthread_mutex_lock(&batch.lock);
	bool alive = batch.writer_alive;
	batch.stopping = true;
	pthread_cond_signal(&batch.work);
	pthread_mutex_unlock(&batch.lock);
	if (alive)
		pthread_join(batch.thread, NULL);
	for (int i = 0; i < 2; i++) {
		free(batch.buf[i]);
		batch.buf[i] = NULL;
	}
}

/* Queues the line while the writer runs; false when it does not (the
 * caller writes it itself). A line too long for a half waits until
 * everything before it is out and is then written here, in order. */
static bool batch_put(const char *line, size_t n)
{
	pthread_mutex_lock(&batch.lock);
	bool queued = false;
	while (batch.writer_alive && batch.len[batch.active] + n > CF_LOG_BATCH_BYTES &&
	       (n <= CF_LOG_BATCH_BYTES || batch.len[0] || batch.len[1])) {
		pthread_cond_signal(&batch.work);
		pthread_cond_wait(&batch.space, &batch.lock);
	}
	if (batch.writer_alive) {
		if (n > CF_LOG_BATCH_BYTES) {
			write_out(line, n); /* both halves are empty: still in order */
		} else {
			int a = batch.active;
			memcpy(batch.buf[a] + batch.len[a], line, n);
			batch.len[a] += n;
			if (batch.len[a] >= CF_LOG_BATCH_BYTES / 2)
				pthread_cond_signal(&batch.work);
		}
		queued = true;
	}
	pthread_mutex_unlock(&batch.lock);
	return queued;
}

static void write_line(const char *line, size_t n)
{
	if (__atomic_load_n(&batch.writer_alive, __ATOMIC_ACQUIRE) && batch_put(line, n))
		return;
	pthread_mutex_lock(&log_lock);
	write_out(line, n);
	pthread_mutex_unlock(&log_lock);
}

void cf_log_write_line(const char *line)
{
	write_line(line, strlen(line));
}

void cf_log_emit(cf_log_level level, cJSON *obj)
{
	if (level < log_min) {
		cJSON_Delete(obj);
		return;
	}
	char *line = cf_log_format(level, obj);
	if (line)
		cf_log_write_line(line);
	free(line);
}

void cf_log_msg(cf_log_level level, const char *component, const char *fmt, ...)
{
	if (level < log_min)
		return;
	char msg[CF_LOG_MAX_FIELD_BYTES];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cJSON *obj = cJSON_CreateObject();
	if (!obj)
		return;
	cJSON_AddStringToObject(obj, "component", component);
	cJSON_AddStringToObject(obj, "msg", msg);
	cf_log_emit(level, obj);
}

/* ---- cf_log_line ---------------------------------------------------- */

static void line_put(cf_log_line *l, const char *s, size_t n)
{
	if (l->failed)
		return;
	if (n + 1 > l->cap - l->len) {
		size_t cap = l->cap * 2;
		while (n + 1 > cap - l->len)
			cap *= 2;
		char *d = l->data == l->small ? malloc(cap) : realloc(l->data, cap);
		if (!d) {
			l->failed = 1;
			return;
		}
		if (l->data == l->small)
			memcpy(d, l->small, l->len);
		l->data = d;
		l->cap = cap;
	}
	memcpy(l->data + l->len, s, n);
	l->len += n;
	l->data[l->len] = '\0';
}

static void put_line(void *ctx, const char *bytes, size_t n)
{
	line_put(ctx, bytes, n);
}

/* A JSON string exactly as cJSON prints it. */
static void line_put_string(cf_log_line *l, const char *s)
{
	cf_json_quote(s, put_line, l);
}

static void line_key(cf_log_line *l, const char *key)
{
	line_put(l, ",", 1);
	line_put_string(l, key);
	line_put(l, ":", 1);
}

static void line_init(cf_log_line *l)
{
	l->data = l->small;
	l->len = 0;
	l->cap = sizeof l->small;
	l->failed = 0;
	l->small[0] = '\0';
}

static void line_release(cf_log_line *l)
{
	if (l->data != l->small)
		free(l->data);
	line_init(l);
}

int cf_log_begin(cf_log_line *l, cf_log_level level)
{
	line_init(l);
	if (level < log_min)
		return 0;
	char stamp[40];
	cf_log_timestamp(stamp, sizeof stamp);
	line_put(l, "{\"time\":", 8);
	line_put_string(l, stamp);
	line_key(l, "level");
	line_put_string(l, cf_log_level_name(level));
	if (l->failed) {
		line_release(l);
		return 0;
	}
	return 1;
}

void cf_log_add_str(cf_log_line *l, const char *key, const char *value)
{
	if (!value)
		return;
	line_key(l, key);
	line_put_string(l, value);
}

void cf_log_add_uint(cf_log_line *l, const char *key, unsigned long long value)
{
	char num[32];
	if (value <= (unsigned long long)INT_MAX) {
		snprintf(num, sizeof num, "%llu", value);
	} else {
		/* What cJSON prints for a double beyond int range (with its
		 * tolerant round-trip test). */
		double d = (double)value, back = 0;
		snprintf(num, sizeof num, "%1.15g", d);
		if (sscanf(num, "%lg", &back) != 1 ||
		    fabs(back - d) > fmax(fabs(back), fabs(d)) * DBL_EPSILON)
			snprintf(num, sizeof num, "%1.17g", d);
	}
	line_key(l, key);
	line_put(l, num, strlen(num));
}

void cf_log_add_true(cf_log_line *l, const char *key)
{
	line_key(l, key);
	line_put(l, "true", 4);
}

void cf_log_add_raw(cf_log_line *l, const char *key, const char *value)
{
	if (!value)
		return;
	line_key(l, key);
	line_put(l, value, strlen(value));
}

char *cf_log_finish(cf_log_line *l)
{
	line_put(l, "}\n", 2);
	char *text = l->failed ? NULL : l->data == l->small ? strdup(l->small) : l->data;
	if (text == l->data)
		line_init(l); /* handed over */
	line_release(l);
	return text;
}

void cf_log_end(cf_log_line *l)
{
	line_put(l, "}\n", 2);
	if (!l->failed)
		write_line(l->data, l->len);
	line_release(l);
}
