/* Tests for common/cf_buf (bounded buffers, bounded file reads) and
 * common/cf_log (one JSON object per line). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf_buf.h"
#include "cf_log.h"

Test(cf_buf, appends_within_limit_and_refuses_past_it)
{
	cf_buf b;
	cf_buf_init(&b, 8);
	cr_assert_eq(cf_buf_append_str(&b, "abcd"), 0);
	cr_assert_eq(cf_buf_appendf(&b, "%d", 123), 0);
	cr_assert_str_eq(b.data, "abcd123");
	cr_assert_eq(cf_buf_append_str(&b, "xy"), -E2BIG, "9 bytes > limit 8");
	cr_assert_str_eq(b.data, "abcd123", "nothing appended on refusal");
	cr_assert_eq(cf_buf_appendf(&b, "%s", "long string"), -E2BIG);
	char *s = cf_buf_steal(&b);
	cr_assert_str_eq(s, "abcd123");
	cr_assert_null(b.data);
	free(s);
}

Test(cf_buf, steal_of_empty_buffer_is_empty_string)
{
	cf_buf b;
	cf_buf_init(&b, 0);
	char *s = cf_buf_steal(&b);
	cr_assert_str_eq(s, "");
	free(s);
}

static char *write_temp(const char *content, size_t len)
{
	char *path = strdup("/tmp/cf_common_XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

Test(cf_grow, doubles_from_the_first_capacity_and_keeps_the_items)
{
	int *a = NULL;
	size_t cap = 0;
	for (int i = 0; i < 100; i++) {
		if ((size_t)i == cap) {
			int *v = cf_grow(a, &cap, (size_t)i + 1, sizeof *v);
			cr_assert_not_null(v);
			a = v;
		}
		a[i] = i;
	}
	cr_assert_eq(cap, CF_GROW_FIRST_CAP * 8);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(a[i], i);
	/* Room already there: the same array, the same capacity. */
	cr_assert_eq(cf_grow(a, &cap, 50, sizeof *a), a);
	cr_assert_eq(cap, CF_GROW_FIRST_CAP * 8);
	free(a);
}

Test(cf_grow, refuses_sizes_that_overflow_and_leaves_the_array_alone)
{
	size_t cap = 4;
	char *a = malloc(4 * sizeof(long));
	cr_assert_not_null(a);
	cr_assert_null(cf_grow(a, &cap, SIZE_MAX, 1));
	cr_assert_eq(cap, 4);
	cr_assert_null(cf_grow(a, &cap, SIZE_MAX / 4, sizeof(long)));
	cr_assert_eq(cap, 4);
	size_t big = (size_t)1 << (sizeof(size_t) * 8 - 1);
	cap = big;
	cr_assert_null(cf_grow(a, &cap, big + 1, 1));
	cr_assert_eq(cap, big);
	free(a);
}

Test(cf_read_file, reads_a_file)
{
	char *path = write_temp("kind: Pod\n", 10);
	cf_buf b;
	char err[256];
	cr_assert_eq(cf_read_file(path, 1024, &b, err, sizeof err), 0);
	cr_assert_eq(b.len, 10);
	cr_assert_str_eq(b.data, "kind: Pod\n");
	cf_buf_free(&b);
	unlink(path);
	free(path);
}

Test(cf_read_file, refuses_oversize_file_before_reading)
{
	char *path = write_temp("0123456789", 10);
	cf_buf b;
	char err[256];
	cr_assert_eq(cf_read_file(path, 9, &b, err, sizeof err), -E2BIG);
	cr_assert(strstr(err, path) && strstr(err, "limit"), "%s", err);
	cr_assert_null(b.data);
	unlink(path);
	free(path);
}

Test(cf_read_file, missing_file_and_directory_are_clear_errors)
{
	cf_buf b;
	char err[256];
	cr_assert_eq(cf_read_file("/nonexistent/x.yaml", 100, &b, err, sizeof err), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/x.yaml"), "%s", err);
	cr_assert_eq(cf_read_file("/tmp", 100, &b, err, sizeof err), -EISDIR);
	cr_assert(strstr(err, "directory"), "%s", err);
}

Test(cf_read_file, oversize_stream_is_refused_while_reading)
{
	/* /dev/zero has no size: the limit must be enforced while reading. */
	cf_buf b;
	char err[256];
	cr_assert_eq(cf_read_file("/dev/zero", 100000, &b, err, sizeof err), -E2BIG);
}

static char *capture(void (*fn)(void))
{
	char *data = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&data, &len);
	cf_log_set_stream(f);
	fn();
	cf_log_set_stream(NULL);
	fclose(f);
	return data;
}

static void log_with_fields(void)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "decision", "deny");
	cJSON_AddStringToObject(o, "note", "line\nbreak");
	cf_log_emit(CF_LOG_WARNING, o);
}

Test(cf_log, one_compact_line_with_time_and_level_first)
{
	char *out = capture(log_with_fields);
	cr_assert(!strncmp(out, "{\"time\":\"", 9), "%s", out);
	cr_assert(strstr(out, "\"level\":\"warning\",\"decision\":\"deny\""), "%s", out);
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "exactly one newline: %s", out);
	cJSON *parsed = cJSON_Parse(out);
	cr_assert_not_null(parsed, "line is valid JSON");
	cJSON_Delete(parsed);
	free(out);
}

static void log_below_minimum(void)
{
	cf_log_msg(CF_LOG_DEBUG, "test", "hidden %d", 1);
}

Test(cf_log, drops_lines_below_the_minimum_level)
{
	char *out = capture(log_below_minimum);
	cr_assert_str_eq(out, "");
	free(out);
}

Test(cf_log, parses_level_names)
{
	cf_log_level l;
	cr_assert_eq(cf_log_parse_level("WARNING", &l), 0);
	cr_assert_eq(l, CF_LOG_WARNING);
	cr_assert_eq(cf_log_parse_level("verbose", &l), -EINVAL);
	cr_assert_eq(cf_log_parse_level("", &l), -EINVAL);
}

Test(cf_log, nonblocking_stdout_only_for_a_pipe)
{
	int saved = dup(STDOUT_FILENO);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(dup2(p[1], STDOUT_FILENO), STDOUT_FILENO);
	FILE *f = cf_log_open_nonblocking_stdout();
	cr_assert_not_null(f);
	cr_assert(fcntl(fileno(f), F_GETFL) & O_NONBLOCK, "its own open is non-blocking");
	cr_assert_eq(fcntl(STDOUT_FILENO, F_GETFL) & O_NONBLOCK, 0, "stdout itself is not");
	/* A full pipe: the write fails at once instead of waiting. */
	char junk[4096];
	memset(junk, 'x', sizeof junk);
	while (write(fileno(f), junk, sizeof junk) > 0)
		;
	cr_assert_eq(errno, EAGAIN);
	fclose(f);
	/* Not a pipe: nothing to do. */
	char path[] = "/tmp/cf_log_test.XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	cr_assert_null(cf_log_open_nonblocking_stdout());
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(fd);
	unlink(path);
	close(p[0]);
	close(p[1]);
}

/* cf_log_line must print exactly what cf_log_format prints for the same
 * fields (the decision log switched to it): compare everything after the
 * timestamp, which may differ by a millisecond. */
static void same_after_time(const char *a, const char *b)
{
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	const char *la = strstr(a, ",\"level\":"), *lb = strstr(b, ",\"level\":");
	cr_assert(la && lb);
	cr_assert_eq(la - a, lb - b, "timestamps of different length: %s / %s", a, b);
	cr_assert_str_eq(la, lb);
}

Test(cf_log, line_builder_prints_like_cjson)
{
	char ctl[40];
	size_t n = 0;
	for (int c = 1; c < 0x20; c++)
		ctl[n++] = (char)c;
	ctl[n] = '\0';
	const char *strings[] = {"admission", "",          ctl,           "q\"uo\\te/slash",
	                         "\x7f del",  "ünïcødé ✓", "tab\tnl\nend"};
	const unsigned long long nums[] = {0,
	                                   81,
	                                   2147483647ull,
	                                   2147483648ull,
	                                   3000000000ull,
	                                   1000000000000001ull,
	                                   9007199254740993ull,
	                                   18446744073709551615ull};
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "component", "admission");
			cJSON_AddStringToObject(o, "uid", strings[i]);
			cJSON_AddStringToObject(o, strings[i], "key escaped too");
			cJSON *arr = cJSON_CreateArray();
			cJSON_AddItemToArray(arr, cJSON_CreateString("runAsNonRoot"));
			cJSON_AddItemToArray(arr, cJSON_CreateString(strings[i]));
			cJSON_AddItemToObject(o, "violations", arr);
			cJSON_AddItemToObject(o, "empty", cJSON_CreateArray());
			cJSON_AddBoolToObject(o, "dryRun", true);
			cJSON_AddNumberToObject(o, "latency_us", (double)nums[k]);
			char *want = cf_log_format(CF_LOG_WARNING, o);

			cf_log_line l;
			cr_assert(cf_log_begin(&l, CF_LOG_WARNING));
			cf_log_add_str(&l, "component", "admission");
			cf_log_add_str(&l, "uid", strings[i]);
			cf_log_add_str(&l, strings[i], "key escaped too");
			cJSON *ids = cJSON_CreateArray();
			cJSON_AddItemToArray(ids, cJSON_CreateString("runAsNonRoot"));
			cJSON_AddItemToArray(ids, cJSON_CreateString(strings[i]));
			char *text = cJSON_PrintUnformatted(ids);
			cf_log_add_raw(&l, "violations", text);
			cJSON_free(text);
			cJSON_Delete(ids);
			cf_log_add_raw(&l, "empty", "[]");
			cf_log_add_true(&l, "dryRun");
			cf_log_add_uint(&l, "latency_us", nums[k]);
			char *got = cf_log_finish(&l);
			same_after_time(want, got);
			cr_assert_eq(got[strlen(got) - 1], '\n');
			free(want);
			free(got);
		}
	}
}

Test(cf_log, line_builder_omits_null_values_like_cjson)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "component", "admission");
	cJSON_AddStringToObject(o, "reason", NULL); /* not added by cJSON */
	cJSON_AddStringToObject(o, "mode", "enforce");
	char *want = cf_log_format(CF_LOG_INFO, o);
	cf_log_line l;
	cr_assert(cf_log_begin(&l, CF_LOG_INFO));
	cf_log_add_str(&l, "component", "admission");
	cf_log_add_str(&l, "reason", NULL);
	cf_log_add_raw(&l, "violations", NULL);
	cf_log_add_str(&l, "mode", "enforce");
	char *got = cf_log_finish(&l);
	same_after_time(want, got);
	cr_assert_null(strstr(got, "reason"));
	cr_assert_null(strstr(got, "violations"));
	free(want);
	free(got);
}

/* A line starts in the builder's own buffer and moves to the heap when it
 * outgrows it, several times over: the text is unchanged either way. */
Test(cf_log, line_builder_outgrows_its_inline_buffer)
{
	for (size_t size = 100; size <= 20000; size = size * 3 + 1) {
		char *value = malloc(size + 1);
		cr_assert_not_null(value);
		for (size_t i = 0; i < size; i++)
			value[i] = (char)(i % 97 == 0 ? '"' : 'a' + i % 26);
		value[size] = '\0';
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "component", "admission");
		cJSON_AddStringToObject(o, "value", value);
		cJSON_AddStringToObject(o, "after", "tail");
		char *want = cf_log_format(CF_LOG_INFO, o);
		cf_log_line l;
		cr_assert(cf_log_begin(&l, CF_LOG_INFO));
		cf_log_add_str(&l, "component", "admission");
		cf_log_add_str(&l, "value", value);
		cf_log_add_str(&l, "after", "tail");
		char *got = cf_log_finish(&l);
		same_after_time(want, got);
		free(want);
		free(got);
		free(value);
	}
}

Test(cf_log, line_builder_respects_the_minimum_level)
{
	cf_log_set_min_level(CF_LOG_WARNING);
	cf_log_line l;
	cr_assert_not(cf_log_begin(&l, CF_LOG_INFO), "below the minimum: no line");
	cr_assert_eq(l.len, 0);
	cr_assert(cf_log_begin(&l, CF_LOG_ERROR));
	char *got = cf_log_finish(&l);
	cr_assert_not_null(strstr(got, "\"level\":\"error\"}"));
	free(got);
	cf_log_set_min_level(CF_LOG_INFO);
}

/* Points the log at a new temporary file (path: a mkstemp template, filled
 * in); the caller resets the stream, closes and unlinks. */
static FILE *log_to_temp_file(char *path)
{
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	FILE *f = fdopen(fd, "w+");
	cr_assert_not_null(f);
	cf_log_set_stream(f);
	return f;
}

Test(cf_log, line_builder_end_writes_one_line)
{
	char path[] = "/tmp/cf_log_line.XXXXXX";
	FILE *f = log_to_temp_file(path);
	cf_log_line l;
	cr_assert(cf_log_begin(&l, CF_LOG_INFO));
	cf_log_add_str(&l, "msg", "a\nb");
	cf_log_end(&l);
	cf_log_set_stream(NULL);
	rewind(f);
	char buf[256];
	cr_assert_not_null(fgets(buf, sizeof buf, f));
	cr_assert_not_null(strstr(buf, "\"msg\":\"a\\nb\"}\n"));
	cr_assert_null(fgets(buf, sizeof buf, f), "exactly one line");
	fclose(f);
	unlink(path);
}

Test(cf_log, timestamp_is_utc_with_milliseconds)
{
	char a[40], b[40];
	for (int i = 0; i < 3; i++) { /* cached second and recomputed */
		time_t before = time(NULL);
		cf_log_timestamp(a, sizeof a);
		time_t after = time(NULL);
		cr_assert_eq(strlen(a), 24, "%s", a);
		cr_assert_eq(a[4], '-');
		cr_assert_eq(a[10], 'T');
		cr_assert_eq(a[19], '.');
		cr_assert_eq(a[23], 'Z');
		for (int k = 20; k < 23; k++)
			cr_assert(a[k] >= '0' && a[k] <= '9', "%s", a);
		int ok = 0;
		for (time_t t = before; t <= after; t++) {
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
			ok |= strncmp(a, b, 19) == 0;
		}
		cr_assert(ok, "%s is not the current UTC time", a);
	}
	/* A short buffer is cut like snprintf, never overrun. */
	char small[12];
	memset(small, 'x', sizeof small);
	cf_log_timestamp(small, 10);
	cr_assert_eq(strlen(small), 9);
	cr_assert_eq(small[11], 'x');
}

#define BATCH_THREADS 4
#define BATCH_LINES   20000

static void *log_lines(void *arg)
{
	long t = (long)(intptr_t)arg;
	for (long i = 0; i < BATCH_LINES; i++) {
		char line[96];
		snprintf(line, sizeof line, "{\"thread\":%ld,\"seq\":%ld}\n", t, i);
		cf_log_write_line(line);
	}
	return NULL;
}

/* Lines from several threads while batching: every one arrives, whole, in
 * each thread's order; stop writes out what is queued. */
Test(cf_log, batched_lines_are_whole_in_order_and_all_written)
{
	char path[] = "/tmp/cf-log-batch-XXXXXX";
	FILE *f = log_to_temp_file(path);
	cr_assert_eq(cf_log_batch_start(), 0);
	pthread_t th[BATCH_THREADS];
	for (long t = 0; t < BATCH_THREADS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, log_lines, (void *)(intptr_t)t), 0);
	for (int t = 0; t < BATCH_THREADS; t++)
		pthread_join(th[t], NULL);
	/* Longer than half the batch: written after everything before it. */
	size_t big = CF_LOG_BATCH_BYTES + 100;
	char *huge = malloc(big + 2);
	cr_assert_not_null(huge);
	memset(huge, 'x', big);
	huge[big] = '\n';
	huge[big + 1] = '\0';
	cf_log_write_line("{\"before\":\"huge\"}\n");
	cf_log_write_line(huge);
	cf_log_batch_stop();
	cf_log_write_line("{\"after\":\"stop\"}\n");
	cf_log_set_stream(NULL);
	fclose(f);

	cf_buf b;
	char err[256];
	cr_assert_eq(cf_read_file(path, 64u << 20, &b, err, sizeof err), 0, "%s", err);
	unlink(path);
	long next[BATCH_THREADS] = {0};
	size_t lines = 0;
	char *p = b.data, *end = b.data + b.len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		cr_assert_not_null(nl, "the last line is whole");
		long t, i;
		if (sscanf(p, "{\"thread\":%ld,\"seq\":%ld}", &t, &i) == 2) {
			cr_assert(t >= 0 && t < BATCH_THREADS);
			cr_assert_eq(i, next[t], "thread %ld: line %ld after %ld", t, i,
			             next[t] - 1);
			next[t]++;
		} else if (lines == (size_t)BATCH_THREADS * BATCH_LINES + 1) {
			cr_assert_eq((size_t)(nl - p), big,
			             "the huge line, whole, after its predecessor");
		} else if (lines == (size_t)BATCH_THREADS * BATCH_LINES) {
			cr_assert(strncmp(p, "{\"before\":\"huge\"}", 17) == 0);
		} else {
			cr_assert(strncmp(p, "{\"after\":\"stop\"}", 16) == 0, "line %zu: %.40s",
			          lines, p);
			cr_assert_eq(lines, (size_t)BATCH_THREADS * BATCH_LINES + 2);
		}
		lines++;
		p = nl + 1;
	}
	cr_assert_eq(lines, (size_t)BATCH_THREADS * BATCH_LINES + 3);
	for (int t = 0; t < BATCH_THREADS; t++)
		cr_assert_eq(next[t], BATCH_LINES);
	cf_buf_free(&b);
	free(huge);
}
