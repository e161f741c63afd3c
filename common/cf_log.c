/* cf_log.c - see cf_log.h. */
#include "cf_log.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

void cf_log_write_line(const char *line)
{
	pthread_mutex_lock(&log_lock);
	FILE *f = log_stream ? log_stream : stdout;
	/* One write(2) of the whole line, as fputs+fflush would do, without
	 * copying it through stdio's buffer first (after flushing whatever
	 * else was printed there, to keep the order). Streams without a file
	 * descriptor (memory streams) go through stdio. */
	int fd = fflush(f) == 0 ? fileno(f) : -1;
	if (fd < 0) {
		fputs(line, f);
		fflush(f);
	} else {
		size_t n = strlen(line);
		while (n) {
			ssize_t w = write(fd, line, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				break; /* nowhere to log to: the line is lost, as with fputs */
			line += w;
			n -= (size_t)w;
		}
	}
	pthread_mutex_unlock(&log_lock);
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
		size_t cap = l->cap ? l->cap : 256;
		while (n + 1 > cap - l->len)
			cap *= 2;
		char *d = realloc(l->data, cap);
		if (!d) {
			l->failed = 1;
			return;
		}
		l->data = d;
		l->cap = cap;
	}
	memcpy(l->data + l->len, s, n);
	l->len += n;
	l->data[l->len] = '\0';
}

/* A JSON string exactly as cJSON prints it: ", \\ and the short control
 * escapes, other bytes below 0x20 as \u00xx, everything else raw. */
static void line_put_string(cf_log_line *l, const char *s)
{
	line_put(l, "\"", 1);
	const char *run = s;
	for (const unsigned char *p = (const unsigned char *)s;; p++) {
		unsigned char c = *p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		line_put(l, run, (size_t)((const char *)p - run));
		if (!c)
			break;
		char esc[8];
		switch (c) {
		case '"':
			line_put(l, "\\\"", 2);
			break;
		case '\\':
			line_put(l, "\\\\", 2);
			break;
		case '\b':
			line_put(l, "\\b", 2);
			break;
		case '\f':
			line_put(l, "\\f", 2);
			break;
		case '\n':
			line_put(l, "\\n", 2);
			break;
		case '\r':
			line_put(l, "\\r", 2);
			break;
		case '\t':
			line_put(l, "\\t", 2);
			break;
		default:
			snprintf(esc, sizeof esc, "\\u%04x", c);
			line_put(l, esc, 6);
		}
		run = (const char *)p + 1;
	}
	line_put(l, "\"", 1);
}

static void line_key(cf_log_line *l, const char *key)
{
	line_put(l, ",", 1);
	line_put_string(l, key);
	line_put(l, ":", 1);
}

int cf_log_begin(cf_log_line *l, cf_log_level level)
{
	memset(l, 0, sizeof *l);
	if (level < log_min)
		return 0;
	char stamp[40];
	cf_log_timestamp(stamp, sizeof stamp);
	line_put(l, "{\"time\":", 8);
	line_put_string(l, stamp);
	line_key(l, "level");
	line_put_string(l, cf_log_level_name(level));
	if (l->failed) {
		free(l->data);
		memset(l, 0, sizeof *l);
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
	char *text = l->failed ? NULL : l->data;
	if (!text)
		free(l->data);
	memset(l, 0, sizeof *l);
	return text;
}

void cf_log_end(cf_log_line *l)
{
	char *text = cf_log_finish(l);
	if (text)
		cf_log_write_line(text);
	free(text);
}
