/*
 * cf_metrics.h - a small Prometheus text-format registry shared by the
 * webhook and the agent: counters, gauges and histograms, each a family
 * with a fixed list of label names and any number of label-value sets.
 *
 * Naming (DESIGN.md): names start with codeframe_webhook_ or
 * codeframe_agent_, counters end in _total, durations in _seconds. The
 * registry checks the metric-name grammar and, for counters, the _total
 * suffix, so a typo fails at registration, not in a dashboard.
 *
 * Label values may come from untrusted input (a request's kind); each
 * family holds at most CF_METRICS_MAX_SERIES label sets, past which updates
 * are dropped and reported as -E2BIG, so memory stays bounded.
 *
 * Thread-safety: registration happens before threads start; updates
 * (inc/add/set/observe) and rendering may run from any thread at once.
 * Series lookup takes a read lock (a write lock only to create a new
 * series); values are atomics.
 * Ownership: the registry owns its families; cf_metrics_free frees all.
 */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cf_buf.h"

typedef struct cf_metrics cf_metrics;
typedef struct cf_metric cf_metric;

cf_metrics *cf_metrics_new(void);
void cf_metrics_free(cf_metrics *m);

/* Registration. `label_names` has `n_labels` entries (0 allowed, then it
 * may be NULL). Returns NULL with `err` set for a bad name (grammar,
 * counter without _total, duplicate family), bad buckets (histogram:
 * strictly increasing, finite, 1..CF_METRICS_MAX_BUCKETS) or no memory. */
cf_metric *cf_metrics_counter(cf_metrics *m, const char *name, const char *help,
                              const char *const *label_names, size_t n_labels, char *err,
                              size_t errlen);
cf_metric *cf_metrics_gauge(cf_metrics *m, const char *name, const char *help,
                            const char *const *label_names, size_t n_labels, char *err,
                            size_t errlen);
cf_metric *cf_metrics_histogram(cf_metrics *m, const char *name, const char *help,
                                const double *buckets, size_t n_buckets,
                                const char *const *label_names, size_t n_labels, char *err,
                                size_t errlen);

/* Updates. `label_values` has as many entries as the family's label names
 * (NULL when there are none; a NULL entry is rendered as ""). Return 0,
 * -EINVAL (wrong metric type, negative counter increment, NaN), -E2BIG
 * (series limit reached) or -ENOMEM. */
int cf_metric_inc(cf_metric *c, const char *const *label_values);
int cf_metric_add(cf_metric *c, const char *const *label_values, uint64_t n);
int cf_metric_set(cf_metric *g, const char *const *label_values, double v);
int cf_metric_observe(cf_metric *h, const char *const *label_values, double v);

/* Current value of a counter or gauge series (0 when the series does not
 * exist); for tests and for callers that report their own figures. */
double cf_metric_value(cf_metric *c, const char *const *label_values);

/* Appends the whole registry in the Prometheus text format 0.0.4, families
 * in registration order. 0, or -ENOMEM/-E2BIG from `out`. */
int cf_metrics_render(cf_metrics *m, cf_buf *out);

/* The content type to serve the rendering with. */
#define CF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
