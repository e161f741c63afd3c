/* test_na_events.c - event lines: fields, level filtering, a writer that
 * cannot keep up (drops are counted, submit never blocks). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "na_events.h"

static na_decision decision(na_verdict v, cf_log_level lvl, const char *rule)
{
	na_decision d;
	memset(&d, 0, sizeof d);
	d.verdict = v;
	d.log_level = lvl;
	d.enforcement = NA_LEVEL_STRICT;
	snprintf(d.rule, sizeof d.rule, "%s", rule);
	snprintf(d.name, sizeof d.name, "rm");
	d.n_findings = 1;
	snprintf(d.findings[0].rule, sizeof d.findings[0].rule, "%s", rule);
	snprintf(d.findings[0].detail, sizeof d.findings[0].detail, "x");
	return d;
}

static char *read_all(int fd)
{
	cf_buf b;
	cf_buf_init(&b, 1u << 24);
	cr_assert_eq(cf_read_fd(fd, &b), 0);
	char *s = cf_buf_steal(&b);
	cf_buf_free(&b);
	return s;
}

Test(na_events, line_has_design_fields)
{
	int p[2];
	char err[256];
	cr_assert_eq(pipe(p), 0);
	na_events *q = na_events_new(p[1], CF_LOG_DEBUG, 16, err, sizeof err);
	cr_assert_not_null(q, "%s", err);
	na_identity who = {"ns1", "pod1", "c1", "proj", "user"};
	na_decision d = decision(NA_VERDICT_DENY, CF_LOG_WARNING, "blocked_patterns");
	na_event ev = {
	    .who = &who, .pid = 42, .command = "rm -rf /", .decision = &d, .latency_us = 17};
	cr_assert_eq(na_events_submit(q, &ev), 0);
	na_events_flush(q);
	na_events_free(q);
	close(p[1]);
	char *s = read_all(p[0]);
	close(p[0]);
	cr_assert(strncmp(s, "{\"time\":\"", 9) == 0, "%s", s);
	cJSON *j = cJSON_Parse(s);
	cr_assert_not_null(j, "%s", s);
	static const char *const fields[] = {"time",      "level",      "namespace", "pod",
	                                     "container", "pid",        "command",   "decision",
	                                     "rule",      "project_id", "user_id",   "latency_us"};
	for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
		cr_expect_not_null(cJSON_GetObjectItem(j, fields[i]), "missing %s", fields[i]);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, "warning");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "decision")->valuestring, "deny");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "namespace")->valuestring, "ns1");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "command")->valuestring, "rm -rf /");
	cr_assert_eq(cJSON_GetObjectItem(j, "pid")->valueint, 42);
	cr_assert_eq(cJSON_GetObjectItem(j, "latency_us")->valueint, 17);
	cr_assert(s[strlen(s) - 1] == '\n');
	cJSON_Delete(j);
	free(s);
}

Test(na_events, below_min_level_is_not_queued)
{
	int p[2];
	char err[256];
	cr_assert_eq(pipe(p), 0);
	na_events *q = na_events_new(p[1], CF_LOG_INFO, 16, err, sizeof err);
	na_decision d = decision(NA_VERDICT_ALLOW, CF_LOG_DEBUG, "allowed_commands");
	na_event ev = {.pid = 1, .command = "ls", .decision = &d};
	cr_assert_eq(na_events_submit(q, &ev), 1);
	na_events_free(q);
	close(p[1]);
	char *s = read_all(p[0]);
	close(p[0]);
	cr_assert_str_eq(s, "");
	free(s);
}

Test(na_events, long_command_is_truncated_and_decision_text_overrides)
{
	int p[2];
	char err[256];
	cr_assert_eq(pipe(p), 0);
	na_events *q = na_events_new(p[1], CF_LOG_DEBUG, 16, err, sizeof err);
	size_t n = CF_LOG_MAX_FIELD_BYTES * 4;
	char *cmd = malloc(n + 1);
	memset(cmd, 'a', n);
	cmd[n] = '\0';
	na_decision d = decision(NA_VERDICT_APPROVAL, CF_LOG_WARNING, "require_approval");
	na_event ev = {.pid = 1,
	               .command = cmd,
	               .decision = &d,
	               .decision_text = "deny",
	               .error = "no approver"};
	cr_assert_eq(na_events_submit(q, &ev), 0);
	free(cmd);
	na_events_free(q);
	close(p[1]);
	char *s = read_all(p[0]);
	close(p[0]);
	cJSON *j = cJSON_Parse(s);
	cr_assert_not_null(j);
	cr_assert_eq(strlen(cJSON_GetObjectItem(j, "command")->valuestring),
	             CF_LOG_MAX_FIELD_BYTES);
	cr_assert_str_eq(cJSON_GetObjectItem(j, "decision")->valuestring, "deny");
	cr_assert_str_eq(cJSON_GetObjectItem(j, "error")->valuestring, "no approver");
	cJSON_Delete(j);
	free(s);
}

Test(na_events, stuck_writer_drops_and_counts)
{
	/* A pipe nobody reads: the writer blocks after the pipe fills, the
	 * queue fills, and submit keeps returning without blocking. */
	int p[2];
	char err[256];
	cr_assert_eq(pipe(p), 0);
	na_events *q = na_events_new(p[1], CF_LOG_DEBUG, 8, err, sizeof err);
	char big[2048];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	na_decision d = decision(NA_VERDICT_ALLOW, CF_LOG_INFO, "unknown_command");
	na_event ev = {.pid = 1, .command = big, .decision = &d};
	int dropped = 0;
	for (int i = 0; i < 2000; i++)
		if (na_events_submit(q, &ev) == -EAGAIN)
			dropped++;
	cr_assert_gt(dropped, 0);
	cr_assert_eq(na_events_dropped(q), (uint64_t)dropped);
	/* Unblock the writer: drain the pipe in the background of free. */
	int fl = fcntl(p[0], F_GETFL);
	fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
	pid_t kid = fork();
	if (kid == 0) {
		char buf[65536];
		close(p[1]);
		for (;;) {
			ssize_t r = read(p[0], buf, sizeof buf);
			if (r == 0)
				_exit(0);
			if (r < 0)
				usleep(1000);
		}
	}
	close(p[0]);
	na_events_free(q);
	close(p[1]);
	int st;
	waitpid(kid, &st, 0);
}
