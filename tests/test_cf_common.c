/* Tests for common/cf_buf (bounded buffers, bounded file reads) and
 * common/cf_log (one JSON object per line). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
