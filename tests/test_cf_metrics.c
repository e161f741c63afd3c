/* Tests for common/cf_metrics: registration rules, the text format, label
 * escaping, the series bound, and concurrent updates. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cf_limits.h"
#include "cf_metrics.h"

static char err[256];

static char *render(cf_metrics *m)
{
	cf_buf b;
	cf_buf_init(&b, 0);
	cr_assert_eq(cf_metrics_render(m, &b), 0);
	return cf_buf_steal(&b);
}

Test(cf_metrics, counter_with_labels_renders_in_text_format)
{
	cf_metrics *m = cf_metrics_new();
	const char *names[] = {"decision", "kind"};
	cf_metric *c = cf_metrics_counter(m, "codeframe_webhook_requests_total", "Requests.", names,
	                                  2, err, sizeof err);
	cr_assert_not_null(c, "%s", err);
	const char *v1[] = {"deny", "Pod"}, *v2[] = {"allow", "Job"};
	cr_assert_eq(cf_metric_inc(c, v1), 0);
	cr_assert_eq(cf_metric_add(c, v1, 4), 0);
	cr_assert_eq(cf_metric_inc(c, v2), 0);
	cr_assert_eq(cf_metric_value(c, v1), 5.0);
	char *text = render(m);
	cr_assert(strstr(text, "# HELP codeframe_webhook_requests_total Requests.\n"));
	cr_assert(strstr(text, "# TYPE codeframe_webhook_requests_total counter\n"));
	cr_assert(
	    strstr(text, "codeframe_webhook_requests_total{decision=\"deny\",kind=\"Pod\"} 5\n"),
	    "%s", text);
	cr_assert(
	    strstr(text, "codeframe_webhook_requests_total{decision=\"allow\",kind=\"Job\"} 1\n"));
	free(text);
	cf_metrics_free(m);
}

Test(cf_metrics, histogram_buckets_are_cumulative_with_sum_and_count)
{
	cf_metrics *m = cf_metrics_new();
	const double b[] = {0.0001, 0.001, 0.01};
	cf_metric *h = cf_metrics_histogram(m, "codeframe_agent_latency_seconds", "L.", b, 3, NULL,
	                                    0, err, sizeof err);
	cr_assert_not_null(h, "%s", err);
	cr_assert_eq(cf_metric_observe(h, NULL, 0.00005), 0);
	cr_assert_eq(cf_metric_observe(h, NULL, 0.0005), 0);
	cr_assert_eq(cf_metric_observe(h, NULL, 0.5), 0);
	char *text = render(m);
	cr_assert(strstr(text, "codeframe_agent_latency_seconds_bucket{le=\"0.0001\"} 1\n"), "%s",
	          text);
	cr_assert(strstr(text, "codeframe_agent_latency_seconds_bucket{le=\"0.001\"} 2\n"));
	cr_assert(strstr(text, "codeframe_agent_latency_seconds_bucket{le=\"0.01\"} 2\n"));
	cr_assert(strstr(text, "codeframe_agent_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
	cr_assert(strstr(text, "codeframe_agent_latency_seconds_count 3\n"));
	cr_assert(strstr(text, "codeframe_agent_latency_seconds_sum 0.50055"), "%s", text);
	free(text);
	cf_metrics_free(m);
}

Test(cf_metrics, gauge_set_and_value)
{
	cf_metrics *m = cf_metrics_new();
	cf_metric *g = cf_metrics_gauge(m, "codeframe_webhook_certificate_expiry_timestamp_seconds",
	                                "E.", NULL, 0, err, sizeof err);
	cr_assert_not_null(g);
	cr_assert_eq(cf_metric_set(g, NULL, 1796198320.0), 0);
	cr_assert_eq(cf_metric_value(g, NULL), 1796198320.0);
	char *text = render(m);
	cr_assert(
	    strstr(text, "codeframe_webhook_certificate_expiry_timestamp_seconds 1796198320\n"),
	    "%s", text);
	free(text);
	cf_metrics_free(m);
}

Test(cf_metrics, label_values_are_escaped)
{
	cf_metrics *m = cf_metrics_new();
	const char *names[] = {"check"};
	cf_metric *c = cf_metrics_counter(m, "x_total", "help with \\ and\nnewline", names, 1, err,
	                                  sizeof err);
	const char *v[] = {"a\"b\\c\nd"};
	cr_assert_eq(cf_metric_inc(c, v), 0);
	char *text = render(m);
	cr_assert(strstr(text, "x_total{check=\"a\\\"b\\\\c\\nd\"} 1\n"), "%s", text);
	cr_assert(strstr(text, "# HELP x_total help with \\\\ and\\nnewline\n"), "%s", text);
	free(text);
	cf_metrics_free(m);
}

Test(cf_metrics, rejects_bad_names)
{
	cf_metrics *m = cf_metrics_new();
	cr_assert_null(cf_metrics_counter(m, "requests", "", NULL, 0, err, sizeof err));
	cr_assert(strstr(err, "_total"), "%s", err);
	cr_assert_null(cf_metrics_gauge(m, "9bad", "", NULL, 0, err, sizeof err));
	cr_assert_null(cf_metrics_gauge(m, "has-dash", "", NULL, 0, err, sizeof err));
	cr_assert_null(cf_metrics_gauge(m, "", "", NULL, 0, err, sizeof err));
	const char *bad_label[] = {"__reserved"};
	cr_assert_null(cf_metrics_gauge(m, "g", "", bad_label, 1, err, sizeof err));
	const char *le[] = {"le"};
	const double b[] = {1};
	cr_assert_null(cf_metrics_histogram(m, "h_seconds", "", b, 1, le, 1, err, sizeof err));
	cf_metrics_free(m);
}

Test(cf_metrics, rejects_duplicates_and_bad_buckets)
{
	cf_metrics *m = cf_metrics_new();
	cr_assert_not_null(cf_metrics_gauge(m, "g", "", NULL, 0, err, sizeof err));
	cr_assert_null(cf_metrics_gauge(m, "g", "", NULL, 0, err, sizeof err));
	cr_assert(strstr(err, "twice"), "%s", err);
	const double dec[] = {1, 0.5};
	cr_assert_null(cf_metrics_histogram(m, "h1", "", dec, 2, NULL, 0, err, sizeof err));
	cr_assert_null(cf_metrics_histogram(m, "h2", "", dec, 0, NULL, 0, err, sizeof err));
	cf_metrics_free(m);
}

Test(cf_metrics, rejects_wrong_type_updates_and_nan)
{
	cf_metrics *m = cf_metrics_new();
	cf_metric *c = cf_metrics_counter(m, "c_total", "", NULL, 0, err, sizeof err);
	cf_metric *g = cf_metrics_gauge(m, "g", "", NULL, 0, err, sizeof err);
	cr_assert_eq(cf_metric_set(c, NULL, 1), -EINVAL);
	cr_assert_eq(cf_metric_observe(g, NULL, 1), -EINVAL);
	cr_assert_eq(cf_metric_inc(g, NULL), -EINVAL);
	cr_assert_eq(cf_metric_set(g, NULL, 0.0 / 0.0), -EINVAL);
	cr_assert_eq(cf_metric_inc(NULL, NULL), -EINVAL);
	cf_metrics_free(m);
}

Test(cf_metrics, series_count_is_bounded)
{
	cf_metrics *m = cf_metrics_new();
	const char *names[] = {"kind"};
	cf_metric *c = cf_metrics_counter(m, "k_total", "", names, 1, err, sizeof err);
	char v[32];
	const char *lv[] = {v};
	for (unsigned i = 0; i < CF_METRICS_MAX_SERIES; i++) {
		snprintf(v, sizeof v, "k%u", i);
		cr_assert_eq(cf_metric_inc(c, lv), 0);
	}
	snprintf(v, sizeof v, "one-too-many");
	cr_assert_eq(cf_metric_inc(c, lv), -E2BIG);
	snprintf(v, sizeof v, "k0");
	cr_assert_eq(cf_metric_inc(c, lv), 0, "existing series still update");
	cf_metrics_free(m);
}

static cf_metric *shared;

static void *hammer(void *arg)
{
	(void)arg;
	const char *lv[] = {"x"};
	for (int i = 0; i < 20000; i++)
		cf_metric_inc(shared, lv);
	return NULL;
}

Test(cf_metrics, concurrent_increments_are_not_lost)
{
	cf_metrics *m = cf_metrics_new();
	const char *names[] = {"l"};
	shared = cf_metrics_counter(m, "con_total", "", names, 1, err, sizeof err);
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	const char *lv[] = {"x"};
	cr_assert_eq(cf_metric_value(shared, lv), 80000.0);
	cf_metrics_free(m);
}
