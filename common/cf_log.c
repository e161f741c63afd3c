/* cf_log.c - see cf_log.h. */
#include "cf_log.h"

#include <errno.h>
#include <fcntl.h>
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
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
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
	fputs(line, f);
	fflush(f);
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
