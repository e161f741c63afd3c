/* cf_metrics.c - see cf_metrics.h. Series are kept in a per-family linked
 * list found by a joined label key: families hold a handful of series, so a
 * linear search under a read lock costs less than a hash table would. */
#include "cf_metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_limits.h"

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } metric_type;

typedef struct series {
	struct series *next;
	char *key;         /* label values joined by '\x1f', for lookup */
	char **values;     /* n_labels label values */
	uint64_t value;    /* counter: count; gauge: double bits */
	uint64_t *buckets; /* histogram: per-bucket (non-cumulative) counts */
	uint64_t sum;      /* histogram: double bits */
} series;

struct cf_metric {
	struct cf_metric *next;
	metric_type type;
	char *name, *help;
	char **label_names;
	size_t n_labels;
	double *bounds;
	size_t n_bounds;
	pthread_rwlock_t lock;
	series *head;
	size_t n_series;
};

struct cf_metrics {
	pthread_mutex_t lock; /* registration only */
	cf_metric *head, *tail;
};

cf_metrics *cf_metrics_new(void)
{
	cf_metrics *m = calloc(1, sizeof *m);
	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void series_free(series *s, size_t n_labels)
{
	for (size_t i = 0; i < n_labels; i++)
		free(s->values[i]);
	free(s->values);
	free(s->key);
	free(s->buckets);
	free(s);
}

static void metric_free(cf_metric *f)
{
	series *s = f->head;
	while (s) {
		series *next = s->next;
		series_free(s, f->n_labels);
		s = next;
	}
	for (size_t i = 0; i < f->n_labels; i++)
		free(f->label_names[i]);
	free(f->label_names);
	free(f->bounds);
	free(f->name);
	free(f->help);
	pthread_rwlock_destroy(&f->lock);
	free(f);
}

void cf_metrics_free(cf_metrics *m)
{
	if (!m)
		return;
	cf_metric *f = m->head;
	while (f) {
		cf_metric *next = f->next;
		metric_free(f);
		f = next;
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]* for metric names; labels the same
 * without ':' and not starting with "__" (reserved). */
static bool valid_name(const char *s, bool label)
{
	if (!s || !*s)
		return false;
	if (label && s[0] == '_' && s[1] == '_')
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		          (!label && c == ':') || (p != s && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static cf_metric *reg(cf_metrics *m, metric_type type, const char *name, const char *help,
                      const double *bounds, size_t n_bounds, const char *const *label_names,
                      size_t n_labels, char *err, size_t errlen)
{
	cf_metric *f = NULL;
	if (!valid_name(name, false)) {
		snprintf(err, errlen, "invalid metric name \"%s\"", name ? name : "");
		return NULL;
	}
	if (type == M_COUNTER && !ends_with(name, "_total")) {
		snprintf(err, errlen, "counter \"%s\" must end in _total", name);
		return NULL;
	}
	for (size_t i = 0; i < n_labels; i++) {
		if (!valid_name(label_names[i], true) ||
		    (type == M_HISTOGRAM && strcmp(label_names[i], "le") == 0)) {
			snprintf(err, errlen, "metric \"%s\": invalid label name \"%s\"", name,
			         label_names[i] ? label_names[i] : "");
			return NULL;
		}
	}
	if (type == M_HISTOGRAM) {
		if (n_bounds == 0 || n_bounds > CF_METRICS_MAX_BUCKETS) {
			snprintf(err, errlen, "histogram \"%s\": 1..%u buckets", name,
			         CF_METRICS_MAX_BUCKETS);
			return NULL;
		}
		for (size_t i = 0; i < n_bounds; i++) {
			if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
				snprintf(err, errlen,
				         "histogram \"%s\": buckets must be finite and increasing",
				         name);
				return NULL;
			}
		}
	}
	pthread_mutex_lock(&m->lock);
	for (cf_metric *g = m->head; g; g = g->next) {
		if (strcmp(g->name, name) == 0) {
			pthread_mutex_unlock(&m->lock);
			snprintf(err, errlen, "metric \"%s\" registered twice", name);
			return NULL;
		}
	}
	f = calloc(1, sizeof *f);
	if (!f)
		goto fail;
	pthread_rwlock_init(&f->lock, NULL);
	f->type = type;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	if (!f->name || !f->help)
		goto fail;
	if (n_labels) {
		f->label_names = calloc(n_labels, sizeof *f->label_names);
		if (!f->label_names)
			goto fail;
		for (size_t i = 0; i < n_labels; i++) {
			f->label_names[i] = strdup(label_names[i]);
			if (!f->label_names[i])
				goto fail;
			f->n_labels = i + 1;
		}
	}
	if (type == M_HISTOGRAM) {
		f->bounds = malloc(n_bounds * sizeof *f->bounds);
		if (!f->bounds)
			goto fail;
		memcpy(f->bounds, bounds, n_bounds * sizeof *f->bounds);
		f->n_bounds = n_bounds;
	}
	if (m->tail)
		m->tail->next = f;
	else
		m->head = f;
	m->tail = f;
	pthread_mutex_unlock(&m->lock);
	return f;
fail:
	pthread_mutex_unlock(&m->lock);
	if (f)
		metric_free(f);
	snprintf(err, errlen, "metric \"%s\": out of memory", name);
	return NULL;
}

cf_metric *cf_metrics_counter(cf_metrics *m, const char *name, const char *help,
                              const char *const *label_names, size_t n_labels, char *err,
                              size_t errlen)
{
	return reg(m, M_COUNTER, name, help, NULL, 0, label_names, n_labels, err, errlen);
}

cf_metric *cf_metrics_gauge(cf_metrics *m, const char *name, const char *help,
                            const char *const *label_names, size_t n_labels, char *err,
                            size_t errlen)
{
	return reg(m, M_GAUGE, name, help, NULL, 0, label_names, n_labels, err, errlen);
}

cf_metric *cf_metrics_histogram(cf_metrics *m, const char *name, const char *help,
                                const double *buckets, size_t n_buckets,
                                const char *const *label_names, size_t n_labels, char *err,
                                size_t errlen)
{
	return reg(m, M_HISTOGRAM, name, help, buckets, n_buckets, label_names, n_labels, err,
	           errlen);
}

/* The lookup key: values (cut to the label limit) joined by 0x1f. */
static char *make_key(const cf_metric *f, const char *const *values)
{
	cf_buf b;
	cf_buf_init(&b, 0);
	for (size_t i = 0; i < f->n_labels; i++) {
		const char *v = values && values[i] ? values[i] : "";
		size_t n = strnlen(v, CF_METRICS_MAX_LABEL_VALUE_BYTES);
		if ((i && cf_buf_append(&b, "\x1f", 1)) || cf_buf_append(&b, v, n)) {
			cf_buf_free(&b);
			return NULL;
		}
	}
	return cf_buf_steal(&b);
}

static series *find_locked(cf_metric *f, const char *key)
{
	for (series *s = f->head; s; s = s->next)
		if (strcmp(s->key, key) == 0)
			return s;
	return NULL;
}

/* Finds or creates the series; returns it with the read lock held. */
static int get_series(cf_metric *f, const char *const *values, series **out)
{
	char *key = make_key(f, values);
	if (!key)
		return -ENOMEM;
	pthread_rwlock_rdlock(&f->lock);
	series *s = find_locked(f, key);
	if (s) {
		free(key);
		*out = s;
		return 0;
	}
	pthread_rwlock_unlock(&f->lock);
	pthread_rwlock_wrlock(&f->lock);
	s = find_locked(f, key);
	int rc = 0;
	if (!s) {
		if (f->n_series >= CF_METRICS_MAX_SERIES) {
			rc = -E2BIG;
			goto out;
		}
		s = calloc(1, sizeof *s);
		if (!s) {
			rc = -ENOMEM;
			goto out;
		}
		s->key = key;
		key = NULL;
		if (f->n_labels) {
			s->values = calloc(f->n_labels, sizeof *s->values);
			if (!s->values)
				goto nomem;
			for (size_t i = 0; i < f->n_labels; i++) {
				const char *v = values && values[i] ? values[i] : "";
				s->values[i] = strndup(v, CF_METRICS_MAX_LABEL_VALUE_BYTES);
				if (!s->values[i])
					goto nomem;
			}
		}
		if (f->type == M_HISTOGRAM) {
			s->buckets = calloc(f->n_bounds + 1, sizeof *s->buckets);
			if (!s->buckets)
				goto nomem;
		}
		if (f->type == M_GAUGE) {
			double zero = 0.0;
			memcpy(&s->value, &zero, sizeof zero);
		}
		s->next = f->head;
		f->head = s;
		f->n_series++;
	}
out:
	free(key);
	pthread_rwlock_unlock(&f->lock);
	if (rc)
		return rc;
	/* Series are never removed, so the pointer stays valid without the
	 * write lock; take the read lock the caller expects. */
	pthread_rwlock_rdlock(&f->lock);
	*out = s;
	return 0;
nomem:
	series_free(s, f->n_labels);
	pthread_rwlock_unlock(&f->lock);
	return -ENOMEM;
}

static void atomic_add_double(uint64_t *bits, double v)
{
	uint64_t old = __atomic_load_n(bits, __ATOMIC_RELAXED), upd;
	do {
		double d;
		memcpy(&d, &old, sizeof d);
		d += v;
		memcpy(&upd, &d, sizeof upd);
	} while (!__atomic_compare_exchange_n(bits, &old, upd, true, __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
}

int cf_metric_add(cf_metric *c, const char *const *label_values, uint64_t n)
{
	if (!c || c->type != M_COUNTER)
		return -EINVAL;
	series *s;
	int rc = get_series(c, label_values, &s);
	if (rc)
		return rc;
	__atomic_add_fetch(&s->value, n, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&c->lock);
	return 0;
}

int cf_metric_inc(cf_metric *c, const char *const *label_values)
{
	return cf_metric_add(c, label_values, 1);
}

int cf_metric_set(cf_metric *g, const char *const *label_values, double v)
{
	if (!g || g->type != M_GAUGE || isnan(v))
		return -EINVAL;
	series *s;
	int rc = get_series(g, label_values, &s);
	if (rc)
		return rc;
	uint64_t bits;
	memcpy(&bits, &v, sizeof bits);
	__atomic_store_n(&s->value, bits, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&g->lock);
	return 0;
}

int cf_metric_observe(cf_metric *h, const char *const *label_values, double v)
{
	if (!h || h->type != M_HISTOGRAM || isnan(v))
		return -EINVAL;
	series *s;
	int rc = get_series(h, label_values, &s);
	if (rc)
		return rc;
	size_t i = 0;
	while (i < h->n_bounds && v > h->bounds[i])
		i++;
	__atomic_add_fetch(&s->buckets[i], 1, __ATOMIC_RELAXED);
	atomic_add_double(&s->sum, v);
	pthread_rwlock_unlock(&h->lock);
	return 0;
}

double cf_metric_value(cf_metric *c, const char *const *label_values)
{
	if (!c || c->type == M_HISTOGRAM)
		return 0;
	char *key = make_key(c, label_values);
	if (!key)
		return 0;
	double v = 0;
	pthread_rwlock_rdlock(&c->lock);
	series *s = find_locked(c, key);
	if (s) {
		uint64_t bits = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
		if (c->type == M_COUNTER)
			v = (double)bits;
		else
			memcpy(&v, &bits, sizeof v);
	}
	pthread_rwlock_unlock(&c->lock);
	free(key);
	return v;
}

/* Label values escape backslash, double quote and newline; help text
 * escapes backslash and newline (text format 0.0.4). */
static int append_escaped(cf_buf *out, const char *s, bool quotes)
{
	for (const char *p = s; *p; p++) {
		int rc;
		if (*p == '\\')
			rc = cf_buf_append(out, "\\\\", 2);
		else if (*p == '\n')
			rc = cf_buf_append(out, "\\n", 2);
		else if (quotes && *p == '"')
			rc = cf_buf_append(out, "\\\"", 2);
		else
			rc = cf_buf_append(out, p, 1);
		if (rc)
			return rc;
	}
	return 0;
}

static int append_double(cf_buf *out, double v)
{
	if (isinf(v))
		return cf_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
	if (v == floor(v) && fabs(v) < 1e15)
		return cf_buf_appendf(out, "%.0f", v);
	return cf_buf_appendf(out, "%.17g", v);
}

/* `{a="x",b="y"` plus an optional extra label, then `}`; nothing when
 * there are no labels at all. */
static int append_labels(cf_buf *out, const cf_metric *f, const series *s, const char *extra_name,
                         const char *extra_value)
{
	if (!f->n_labels && !extra_name)
		return 0;
	int rc = cf_buf_append(out, "{", 1);
	for (size_t i = 0; !rc && i < f->n_labels; i++) {
		rc = cf_buf_appendf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
		if (!rc)
			rc = append_escaped(out, s->values[i], true);
		if (!rc)
			rc = cf_buf_append(out, "\"", 1);
	}
	if (!rc && extra_name)
		rc = cf_buf_appendf(out, "%s%s=\"%s\"", f->n_labels ? "," : "", extra_name,
		                    extra_value);
	if (!rc)
		rc = cf_buf_append(out, "}", 1);
	return rc;
}

static int render_family(cf_metric *f, cf_buf *out)
{
	static const char *const type_names[] = {"counter", "gauge", "histogram"};
	int rc = cf_buf_appendf(out, "# HELP %s ", f->name);
	if (!rc)
		rc = append_escaped(out, f->help, false);
	if (!rc)
		rc = cf_buf_appendf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
	pthread_rwlock_rdlock(&f->lock);
	for (series *s = f->head; !rc && s; s = s->next) {
		if (f->type != M_HISTOGRAM) {
			uint64_t bits = __atomic_load_n(&s->value, __ATOMIC_RELAXED);
			rc = cf_buf_append_str(out, f->name);
			if (!rc)
				rc = append_labels(out, f, s, NULL, NULL);
			if (!rc && f->type == M_COUNTER)
				rc = cf_buf_appendf(out, " %llu\n", (unsigned long long)bits);
			else if (!rc) {
				double d;
				memcpy(&d, &bits, sizeof d);
				rc = cf_buf_append(out, " ", 1);
				if (!rc)
					rc = append_double(out, d);
				if (!rc)
					rc = cf_buf_append(out, "\n", 1);
			}
			continue;
		}
		uint64_t cum = 0;
		for (size_t i = 0; !rc && i <= f->n_bounds; i++) {
			char le[64];
			cum += __atomic_load_n(&s->buckets[i], __ATOMIC_RELAXED);
			if (i == f->n_bounds)
				snprintf(le, sizeof le, "+Inf");
			else
				snprintf(le, sizeof le, "%g", f->bounds[i]);
			rc = cf_buf_appendf(out, "%s_bucket", f->name);
			if (!rc)
				rc = append_labels(out, f, s, "le", le);
			if (!rc)
				rc = cf_buf_appendf(out, " %llu\n", (unsigned long long)cum);
		}
		uint64_t sum_bits = __atomic_load_n(&s->sum, __ATOMIC_RELAXED);
		double sum;
		memcpy(&sum, &sum_bits, sizeof sum);
		if (!rc)
			rc = cf_buf_appendf(out, "%s_sum", f->name);
		if (!rc)
			rc = append_labels(out, f, s, NULL, NULL);
		if (!rc)
			rc = cf_buf_append(out, " ", 1);
		if (!rc)
			rc = append_double(out, sum);
		if (!rc)
			rc = cf_buf_appendf(out, "\n%s_count", f->name);
		if (!rc)
			rc = append_labels(out, f, s, NULL, NULL);
		/* _count equals the +Inf bucket: use the same cumulative sum so
		 * a scrape racing an observation stays self-consistent. */
		if (!rc)
			rc = cf_buf_appendf(out, " %llu\n", (unsigned long long)cum);
	}
	pthread_rwlock_unlock(&f->lock);
	return rc;
}

int cf_metrics_render(cf_metrics *m, cf_buf *out)
{
	pthread_mutex_lock(&m->lock);
	cf_metric *head = m->head;
	pthread_mutex_unlock(&m->lock);
	for (cf_metric *f = head; f; f = f->next) {
		int rc = render_family(f, out);
		if (rc)
			return rc;
	}
	return 0;
}
