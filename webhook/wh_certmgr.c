/* wh_certmgr.c - see wh_certmgr.h and docs/tls.md. */
#include "wh_certmgr.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "cf_log.h"

/* Re-read rounds after 409/422 before a sync gives up (and retries later
 * with backoff): enough for a handful of replicas racing. */
#define MAX_ROUNDS 6
/* Backoff after a failed sync (the interval still caps it). */
#define RETRY_BASE_MS 500u
#define RETRY_MAX_MS  30000u
#define VWC_PATH      "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"

struct wh_certmgr {
	cf_kube *kube;
	char ns[254], name[254], vwc[254], svc[254];
	char dns[3][520];
	const char *dnsp[3];
	wh_pki_key_type kt;
	int64_t ca_s, leaf_s;
	unsigned prop_s, interval_s;
	wh_tls_store *tls;
	/* Sync thread only. */
	char *served_leaf, *served_ca;
	int64_t served_not_after;
	int64_t due; /* when the plan next needs a write (0: none known) */
	/* Shared. */
	pthread_t thread;
	bool started;
	int stop; /* atomic */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
	wh_certmgr_stats st;
};

/* What the Secret holds (decoded PEM text; NULL when absent). */
typedef struct doc {
	char *tls_crt, *tls_key, *ca_crt, *ca_key, *ca_next_key;
	long generation;
	int64_t published_at, retire_after;
} doc;

/* What the document means. */
typedef struct analysis {
	wh_pki_bundle bundle;
	int active, next; /* indices into bundle, -1 when none */
	bool ca_ok, leaf_ok;
	int64_t leaf_nb, leaf_na;
	char why[600];
} analysis;

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void log_event(cf_log_level lv, const char *msg, const char *detail, wh_certmgr *m)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "component", "certmgr");
	cJSON_AddStringToObject(o, "msg", msg);
	if (detail)
		cJSON_AddStringToObject(o, "detail", detail);
	cJSON_AddStringToObject(o, "secret", m->name);
	cf_log_emit(lv, o);
}

static void stat_add(wh_certmgr *m, unsigned long *field)
{
	pthread_mutex_lock(&m->lock);
	(*field)++;
	pthread_mutex_unlock(&m->lock);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const char *in, size_t n)
{
	size_t outlen = 4 * ((n + 2) / 3) + 1;
	char *out = malloc(outlen), *q = out;
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)in;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		*q++ = b64chars[(v >> 18) & 63];
		*q++ = b64chars[(v >> 12) & 63];
		*q++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		*q++ = i + 2 < n ? b64chars[v & 63] : '=';
	}
	*q = '\0';
	return out;
}

/* Strict standard base64 (what the API server sends for Secret data). */
static int b64_decode(const char *in, char **out)
{
	size_t n = strlen(in);
	*out = NULL;
	if (n % 4 || n / 4 * 3 > WH_PKI_MAX_PEM_BYTES)
		return -EINVAL;
	char *o = malloc(n / 4 * 3 + 1);
	if (!o)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i += 4) {
		unsigned v = 0;
		int pad = 0;
		for (int j = 0; j < 4; j++) {
			char c = in[i + j];
			const char *pos = c ? strchr(b64chars, c) : NULL;
			if (c == '=' && i + 4 == n && j >= 2) {
				pad++;
				v <<= 6;
				continue;
			}
			if (!pos || pad) {
				free(o);
				return -EINVAL;
			}
			v = (v << 6) | (unsigned)(pos - b64chars);
		}
		o[k++] = (char)(v >> 16);
		if (pad < 2)
			o[k++] = (char)(v >> 8);
		if (pad < 1)
			o[k++] = (char)v;
	}
	o[k] = '\0';
	if (memchr(o, '\0', k)) { /* PEM text never holds NUL bytes */
		explicit_bzero(o, k);
		free(o);
		return -EINVAL;
	}
	*out = o;
	return 0;
}

static void free_key(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

static void doc_free(doc *d)
{
	free(d->tls_crt);
	free_key(d->tls_key);
	free(d->ca_crt);
	free_key(d->ca_key);
	free_key(d->ca_next_key);
	memset(d, 0, sizeof *d);
}

static void analysis_free(analysis *a)
{
	wh_pki_bundle_free(&a->bundle);
}

static void replace_str(char **slot, char *fresh, bool secret)
{
	if (secret)
		free_key(*slot);
	else
		free(*slot);
	*slot = fresh;
}

static int64_t at_two_thirds(int64_t nb, int64_t na)
{
	return nb + (na - nb) * 2 / 3;
}

/* ---- reading the Secret -------------------------------------------------- */

static long ann_long(const cJSON *anns, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(anns, key);
	if (!cJSON_IsString(v))
		return 0;
	char *end;
	long long x = strtoll(v->valuestring, &end, 10);
	return *end || x < 0 || x > INT64_C(1) << 40 ? 0 : (long)x;
}

/* The Secret's data decoded. -EINVAL with `err` for a value that is not
 * base64 or a type that is not kubernetes.io/tls (-ENOTSUP: the type is
 * immutable, so this cannot be repaired by an update). Absent keys are
 * NULL, which analysis reports. */
static int doc_from_secret(const cJSON *obj, doc *d, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
	if (!cJSON_IsString(type) || strcmp(type->valuestring, "kubernetes.io/tls") != 0) {
		set_err(err, errlen,
		        "the Secret has type \"%s\", not kubernetes.io/tls (the type is immutable: "
		        "delete the Secret and it will be recreated)",
		        cJSON_IsString(type) ? type->valuestring : "");
		return -ENOTSUP;
	}
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(obj, "data");
	static const char *const keys[] = {"tls.crt", "tls.key", "ca.crt", WH_CERTMGR_KEY_CA_KEY,
	                                   WH_CERTMGR_KEY_CA_NEXT_KEY};
	char **slots[] = {&d->tls_crt, &d->tls_key, &d->ca_crt, &d->ca_key, &d->ca_next_key};
	for (size_t i = 0; i < 5; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, keys[i]);
		if (!v)
			continue;
		if (!cJSON_IsString(v) || b64_decode(v->valuestring, slots[i])) {
			set_err(err, errlen, "data[%s] is not valid base64 PEM text", keys[i]);
			doc_free(d);
			return -EINVAL;
		}
	}
	const cJSON *anns = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "annotations");
	d->generation = ann_long(anns, WH_CERTMGR_ANN_GENERATION);
	d->published_at = ann_long(anns, WH_CERTMGR_ANN_PUBLISHED);
	d->retire_after = ann_long(anns, WH_CERTMGR_ANN_RETIRE);
	return 0;
}

static int find_key_owner(const wh_pki_bundle *b, const char *key, int skip)
{
	char e[256];
	for (size_t i = 0; i < b->n; i++)
		if ((int)i != skip && wh_pki_key_matches(b->certs[i].pem, key, e, sizeof e) == 0)
			return (int)i;
	return -1;
}

static void analyze(wh_certmgr *m, doc *d, int64_t now, analysis *a)
{
	memset(a, 0, sizeof *a);
	a->active = a->next = -1;
	char e[400];
	if (!d->ca_crt) {
		snprintf(a->why, sizeof a->why, "ca.crt is missing");
		return;
	}
	if (wh_pki_bundle_parse(d->ca_crt, strlen(d->ca_crt), &a->bundle, e, sizeof e)) {
		snprintf(a->why, sizeof a->why, "ca.crt: %s", e);
		return;
	}
	for (size_t i = 0; i < a->bundle.n; i++)
		if (!a->bundle.certs[i].is_ca) {
			snprintf(a->why, sizeof a->why, "ca.crt: certificate %zu is not a CA",
			         i + 1);
			return;
		}
	if (!d->ca_key) {
		snprintf(a->why, sizeof a->why, "%s is missing", WH_CERTMGR_KEY_CA_KEY);
		return;
	}
	a->active = find_key_owner(&a->bundle, d->ca_key, -1);
	if (a->active < 0) {
		snprintf(a->why, sizeof a->why,
		         "%s matches no CA in ca.crt (or is not a usable key)",
		         WH_CERTMGR_KEY_CA_KEY);
		return;
	}
	if (now >= a->bundle.certs[a->active].not_after) {
		snprintf(a->why, sizeof a->why, "the CA expired");
		return;
	}
	a->ca_ok = true;
	if (d->ca_next_key) {
		a->next = find_key_owner(&a->bundle, d->ca_next_key, a->active);
		if (a->next < 0 || now >= a->bundle.certs[a->next].not_after) {
			/* A broken rollover is dropped and started again. */
			log_event(CF_LOG_WARNING,
			          "ca-next.key matches no usable CA; rollover restarts", NULL, m);
			replace_str(&d->ca_next_key, NULL, true);
			d->published_at = 0;
			a->next = -1;
		}
	}
	if (!d->tls_crt || !d->tls_key) {
		snprintf(a->why, sizeof a->why, "%s is missing",
		         d->tls_crt ? "tls.key" : "tls.crt");
		return;
	}
	wh_pki_bundle lb;
	if (wh_pki_bundle_parse(d->tls_crt, strlen(d->tls_crt), &lb, e, sizeof e)) {
		snprintf(a->why, sizeof a->why, "tls.crt: %s", e);
		return;
	}
	a->leaf_nb = lb.certs[0].not_before;
	a->leaf_na = lb.certs[0].not_after;
	int rc = wh_pki_verify_leaf(lb.certs[0].pem, a->bundle.certs[a->active].pem, m->dnsp, 3,
	                            now, e, sizeof e);
	if (!rc)
		rc = wh_pki_key_matches(lb.certs[0].pem, d->tls_key, e, sizeof e);
	wh_pki_bundle_free(&lb);
	if (rc) {
		snprintf(a->why, sizeof a->why, "tls.crt/tls.key: %s", e);
		return;
	}
	a->leaf_ok = true;
}

/* ---- planning ------------------------------------------------------------ */

static int issue_leaf(wh_certmgr *m, const char *ca_crt, const char *ca_key, int64_t now, doc *d,
                      char *err, size_t errlen)
{
	wh_pki_pair ca = {(char *)ca_crt, (char *)ca_key}, leaf;
	int rc = wh_pki_issue_leaf(&ca, m->dnsp, 3, m->kt, now, m->leaf_s, &leaf, err, errlen);
	if (rc)
		return rc;
	replace_str(&d->tls_crt, leaf.cert_pem, false);
	replace_str(&d->tls_key, leaf.key_pem, true);
	return 0;
}

/* RFC 5280 caps a CommonName at 64 characters (OpenSSL refuses more). The
 * time comes first so successive CAs always differ; the namespace/service
 * names, there only for people reading the bundle, are cut to fit. */
#define CA_COMMON_NAME_MAX 64

static int new_ca(wh_certmgr *m, int64_t now, wh_pki_pair *out, char *err, size_t errlen)
{
	char full[600], cn[CA_COMMON_NAME_MAX + 1];
	snprintf(full, sizeof full, "codeframe-guard CA %" PRId64 " %s/%s", now, m->ns, m->svc);
	snprintf(cn, sizeof cn, "%.*s", CA_COMMON_NAME_MAX, full);
	return wh_pki_make_ca(cn, m->kt, now, m->ca_s, out, err, errlen);
}

/* A new CA and leaf. The CA this replica serves stays in the bundle until
 * its leaf expires, so replicas still serving it keep working. */
static int plan_fresh(wh_certmgr *m, doc *d, int64_t now, char *err, size_t errlen)
{
	wh_pki_pair ca;
	int rc = new_ca(m, now, &ca, err, errlen);
	if (rc)
		return rc;
	rc = issue_leaf(m, ca.cert_pem, ca.key_pem, now, d, err, errlen);
	if (rc) {
		wh_pki_pair_free(&ca);
		return rc;
	}
	size_t extra = m->served_ca && m->served_not_after > now ? strlen(m->served_ca) : 0;
	char *bundle = malloc(strlen(ca.cert_pem) + extra + 1);
	if (!bundle) {
		wh_pki_pair_free(&ca);
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(bundle, ca.cert_pem, strlen(ca.cert_pem) + 1);
	if (extra)
		memcpy(bundle + strlen(ca.cert_pem), m->served_ca, extra + 1);
	replace_str(&d->ca_crt, bundle, false);
	replace_str(&d->ca_key, ca.key_pem, true);
	ca.key_pem = NULL;
	wh_pki_pair_free(&ca);
	replace_str(&d->ca_next_key, NULL, true);
	d->generation++;
	d->published_at = 0;
	d->retire_after = extra ? m->served_not_after : 0;
	return 0;
}

static void due_min(int64_t *due, int64_t t)
{
	if (t > 0 && (!*due || t < *due))
		*due = t;
}

/* Decides what to write. *changed says whether the document differs from
 * what was read; m->due is set to the next time something falls due. */
static int plan(wh_certmgr *m, doc *d, analysis *a, int64_t now, bool *changed, char *err,
                size_t errlen)
{
	*changed = false;
	m->due = 0;
	int rc;
	if (!a->ca_ok) {
		log_event(CF_LOG_WARNING, "the TLS Secret is unusable; issuing a new CA and leaf",
		          a->why, m);
		*changed = true;
		rc = plan_fresh(m, d, now, err, errlen);
		m->due = now + 1;
		return rc;
	}
	wh_pki_cert *act = &a->bundle.certs[a->active];
	bool leaf_done = false;
	/* Retire: old CAs leave the bundle once no served leaf can need them. */
	if (d->retire_after && now >= d->retire_after) {
		wh_pki_bundle keep = {.n = 0};
		keep.certs[keep.n++] = *act;
		if (a->next >= 0)
			keep.certs[keep.n++] = a->bundle.certs[a->next];
		char *pem = wh_pki_bundle_pem(&keep);
		if (!pem) {
			set_err(err, errlen, "out of memory");
			return -ENOMEM;
		}
		replace_str(&d->ca_crt, pem, false);
		d->retire_after = 0;
		d->generation++;
		*changed = true;
		log_event(CF_LOG_INFO, "old CA removed from the bundle", NULL, m);
	}
	due_min(&m->due, d->retire_after);
	if (a->next >= 0) {
		int64_t switch_at = d->published_at + m->prop_s;
		if (now >= switch_at) {
			/* Switch: leaves from the new CA, which has been in the
			 * bundle for the propagation period. The old CA stays
			 * until the old leaf expires. */
			int64_t old_na = a->leaf_ok ? a->leaf_na : now;
			rc = issue_leaf(m, a->bundle.certs[a->next].pem, d->ca_next_key, now, d,
			                err, errlen);
			if (rc)
				return rc;
			replace_str(&d->ca_key, d->ca_next_key, true);
			d->ca_next_key = NULL;
			d->published_at = 0;
			d->retire_after = old_na > now ? old_na : now + 1;
			due_min(&m->due, d->retire_after);
			leaf_done = true;
			*changed = true;
			log_event(CF_LOG_INFO, "CA rollover: leaves now come from the new CA", NULL,
			          m);
		} else {
			due_min(&m->due, switch_at);
		}
	} else {
		int64_t renew_at = at_two_thirds(act->not_before, act->not_after);
		if (now >= renew_at) {
			/* Publish: the new CA joins the bundle first. */
			wh_pki_pair ca;
			rc = new_ca(m, now, &ca, err, errlen);
			if (rc)
				return rc;
			size_t have = strlen(d->ca_crt);
			if (a->bundle.n >= WH_PKI_MAX_BUNDLE_CERTS) {
				wh_pki_pair_free(&ca);
				set_err(err, errlen, "the CA bundle is full (%u certificates)",
				        WH_PKI_MAX_BUNDLE_CERTS);
				return -ENOSPC;
			}
			char *pem = malloc(have + strlen(ca.cert_pem) + 2);
			if (!pem) {
				wh_pki_pair_free(&ca);
				set_err(err, errlen, "out of memory");
				return -ENOMEM;
			}
			memcpy(pem, d->ca_crt, have);
			size_t off = have;
			if (have && d->ca_crt[have - 1] != '\n')
				pem[off++] = '\n';
			memcpy(pem + off, ca.cert_pem, strlen(ca.cert_pem) + 1);
			replace_str(&d->ca_crt, pem, false);
			replace_str(&d->ca_next_key, ca.key_pem, true);
			ca.key_pem = NULL;
			wh_pki_pair_free(&ca);
			d->published_at = now;
			d->generation++;
			due_min(&m->due, now + m->prop_s);
			*changed = true;
			log_event(CF_LOG_INFO, "CA rollover: new CA published in the bundle", NULL,
			          m);
		} else {
			due_min(&m->due, renew_at);
		}
	}
	if (!leaf_done) {
		int64_t leaf_renew = a->leaf_ok ? at_two_thirds(a->leaf_nb, a->leaf_na) : now;
		if (now >= leaf_renew) {
			if (!a->leaf_ok)
				log_event(CF_LOG_WARNING,
				          "the leaf in the TLS Secret is unusable; "
				          "issuing a new one",
				          a->why, m);
			rc = issue_leaf(m, act->pem, d->ca_key, now, d, err, errlen);
			if (rc)
				return rc;
			*changed = true;
		} else {
			due_min(&m->due, leaf_renew);
		}
	}
	return 0;
}

/* ---- writing the Secret -------------------------------------------------- */

static int put_b64(cJSON *data, const char *key, const char *pem)
{
	if (!pem)
		return 0;
	char *b = b64_encode(pem, strlen(pem));
	if (!b)
		return -ENOMEM;
	cJSON *s = cJSON_CreateString(b);
	explicit_bzero(b, strlen(b));
	free(b);
	if (!s)
		return -ENOMEM;
	cJSON_AddItemToObject(data, key, s);
	return 0;
}

static void set_ann(cJSON *anns, const char *key, long long v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(anns, key);
	if (v) {
		char num[32];
		snprintf(num, sizeof num, "%lld", v);
		cJSON_AddStringToObject(anns, key, num);
	}
}

/* The Secret to send: `base` (what was read, or NULL to create) with our
 * data and annotations; other metadata (labels, owners) is kept. */
static char *secret_json(wh_certmgr *m, const cJSON *base, const doc *d)
{
	cJSON *o = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
	char *text = NULL;
	if (!o)
		return NULL;
	if (!base) {
		cJSON_AddStringToObject(o, "apiVersion", "v1");
		cJSON_AddStringToObject(o, "kind", "Secret");
		cJSON *md = cJSON_AddObjectToObject(o, "metadata");
		cJSON_AddStringToObject(md, "name", m->name);
		cJSON_AddStringToObject(md, "namespace", m->ns);
		cJSON *labels = cJSON_AddObjectToObject(md, "labels");
		cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "codeframe-guard");
	}
	cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
	if (!cJSON_IsObject(md))
		goto out;
	cJSON_DeleteItemFromObjectCaseSensitive(md, "managedFields");
	cJSON *anns = cJSON_GetObjectItemCaseSensitive(md, "annotations");
	if (!cJSON_IsObject(anns)) {
		cJSON_DeleteItemFromObjectCaseSensitive(md, "annotations");
		anns = cJSON_AddObjectToObject(md, "annotations");
	}
	set_ann(anns, WH_CERTMGR_ANN_GENERATION, d->generation);
	set_ann(anns, WH_CERTMGR_ANN_PUBLISHED, (long long)d->published_at);
	set_ann(anns, WH_CERTMGR_ANN_RETIRE, (long long)d->retire_after);
	cJSON_DeleteItemFromObjectCaseSensitive(o, "type");
	cJSON_AddStringToObject(o, "type", "kubernetes.io/tls");
	cJSON_DeleteItemFromObjectCaseSensitive(o, "data");
	cJSON_DeleteItemFromObjectCaseSensitive(o, "stringData");
	cJSON *data = cJSON_AddObjectToObject(o, "data");
	if (!data || put_b64(data, "tls.crt", d->tls_crt) || put_b64(data, "tls.key", d->tls_key) ||
	    put_b64(data, "ca.crt", d->ca_crt) || put_b64(data, WH_CERTMGR_KEY_CA_KEY, d->ca_key) ||
	    put_b64(data, WH_CERTMGR_KEY_CA_NEXT_KEY, d->ca_next_key))
		goto out;
	text = cJSON_PrintUnformatted(o);
out:
	cJSON_Delete(o);
	return text;
}

static void free_text(char *t)
{
	if (t) {
		explicit_bzero(t, strlen(t));
		cJSON_free(t);
	}
}

static void secret_path(wh_certmgr *m, cf_buf *p, bool with_name)
{
	cf_buf_append_str(p, "/api/v1/namespaces/");
	cf_kube_append_escaped(p, m->ns);
	cf_buf_append_str(p, "/secrets");
	if (with_name) {
		cf_buf_append_str(p, "/");
		cf_kube_append_escaped(p, m->name);
	}
}

/* A 409 (or a failed JSON-patch test, 422) that means "someone else wrote
 * first": re-read and adopt. */
static bool is_race(const cf_kube_response *r)
{
	return r->status == 409 || r->status == 422;
}

/* ---- the webhook configuration ------------------------------------------- */

/* "<uid>:<generation>" of the bundle the configuration carries. */
static void vwc_stamp(const char *uid, long gen, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s:%ld", uid, gen);
}

/* 0 when every webhook's caBundle is `b64`; -ESTALE when the configuration
 * carries a newer bundle of this Secret (our read was stale). */
static int ensure_vwc(wh_certmgr *m, const char *b64, const char *uid, long gen, char *err,
                      size_t errlen)
{
	char stamp[300];
	vwc_stamp(uid, gen, stamp, sizeof stamp);
	cf_buf path;
	cf_buf_init(&path, CF_KUBE_MAX_URL_BYTES);
	cf_buf_append_str(&path, VWC_PATH);
	cf_kube_append_escaped(&path, m->vwc);
	int rc = -EAGAIN;
	for (int round = 0; round < MAX_ROUNDS; round++) {
		cf_kube_response r;
		cf_kube_response_init(&r);
		char e[1024];
		cJSON *o = NULL;
		char *patch = NULL;
		rc = cf_kube_get(m->kube, path.data, &r, e, sizeof e);
		if (rc) {
			stat_add(m, &m->st.api_errors);
			if (r.status == 404)
				set_err(err, errlen,
				        "ValidatingWebhookConfiguration \"%s\" not found: %s",
				        m->vwc, e);
			else
				set_err(err, errlen, "reading the webhook configuration: %s", e);
			cf_kube_response_free(&r);
			goto out;
		}
		o = cJSON_ParseWithLength(r.body.data, r.body.len);
		cf_kube_response_free(&r);
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(o, "metadata");
		const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
		const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(o, "webhooks");
		if (!cJSON_IsString(rv) || !cJSON_IsArray(hooks)) {
			set_err(err, errlen, "the webhook configuration \"%s\" has no %s", m->vwc,
			        cJSON_IsString(rv) ? "webhooks" : "resourceVersion");
			cJSON_Delete(o);
			rc = -EINVAL;
			goto out;
		}
		int n = cJSON_GetArraySize(hooks);
		if (n == 0) {
			set_err(err, errlen, "the webhook configuration \"%s\" has no webhooks",
			        m->vwc);
			cJSON_Delete(o);
			rc = -EINVAL;
			goto out;
		}
		const cJSON *anns = cJSON_GetObjectItemCaseSensitive(md, "annotations");
		const cJSON *have = cJSON_GetObjectItemCaseSensitive(anns, WH_CERTMGR_ANN_VWC);
		if (cJSON_IsString(have)) {
			const char *colon = strrchr(have->valuestring, ':');
			size_t ul = strlen(uid);
			if (colon && (size_t)(colon - have->valuestring) == ul &&
			    !strncmp(have->valuestring, uid, ul) &&
			    strtol(colon + 1, NULL, 10) > gen) {
				cJSON_Delete(o);
				rc = -ESTALE;
				goto out;
			}
		}
		bool need = !cJSON_IsString(have) || strcmp(have->valuestring, stamp) != 0;
		cJSON *ops = cJSON_CreateArray();
		cJSON *t = cJSON_CreateObject();
		cJSON_AddStringToObject(t, "op", "test");
		cJSON_AddStringToObject(t, "path", "/metadata/resourceVersion");
		cJSON_AddStringToObject(t, "value", rv->valuestring);
		cJSON_AddItemToArray(ops, t);
		for (int i = 0; i < n; i++) {
			const cJSON *h = cJSON_GetArrayItem(hooks, i);
			const cJSON *cc = cJSON_GetObjectItemCaseSensitive(h, "clientConfig");
			const cJSON *cab = cJSON_GetObjectItemCaseSensitive(cc, "caBundle");
			if (!cJSON_IsObject(cc)) {
				set_err(err, errlen, "webhook %d of \"%s\" has no clientConfig", i,
				        m->vwc);
				cJSON_Delete(ops);
				cJSON_Delete(o);
				rc = -EINVAL;
				goto out;
			}
			if (cJSON_IsString(cab) && !strcmp(cab->valuestring, b64))
				continue;
			need = true;
			char p[96];
			snprintf(p, sizeof p, "/webhooks/%d/clientConfig/caBundle", i);
			cJSON *a = cJSON_CreateObject();
			cJSON_AddStringToObject(a, "op", "add");
			cJSON_AddStringToObject(a, "path", p);
			cJSON_AddStringToObject(a, "value", b64);
			cJSON_AddItemToArray(ops, a);
		}
		if (!need) {
			cJSON_Delete(ops);
			cJSON_Delete(o);
			rc = 0;
			goto out;
		}
		cJSON *a = cJSON_CreateObject();
		cJSON_AddStringToObject(a, "op", "add");
		if (cJSON_IsObject(anns)) {
			cJSON_AddStringToObject(a, "path",
			                        "/metadata/annotations/codeframe.io~1ca-bundle");
			cJSON_AddStringToObject(a, "value", stamp);
		} else {
			cJSON_AddStringToObject(a, "path", "/metadata/annotations");
			cJSON *v = cJSON_AddObjectToObject(a, "value");
			cJSON_AddStringToObject(v, WH_CERTMGR_ANN_VWC, stamp);
		}
		cJSON_AddItemToArray(ops, a);
		patch = cJSON_PrintUnformatted(ops);
		cJSON_Delete(ops);
		cJSON_Delete(o);
		if (!patch) {
			set_err(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto out;
		}
		cf_kube_response_init(&r);
		rc = cf_kube_request(m->kube, "PATCH", path.data, "application/json-patch+json",
		                     patch, strlen(patch), &r, e, sizeof e);
		cJSON_free(patch);
		bool race = rc && is_race(&r);
		cf_kube_response_free(&r);
		if (!rc) {
			stat_add(m, &m->st.vwc_patches);
			log_event(CF_LOG_INFO, "caBundle written to the webhook configuration",
			          m->vwc, m);
			goto out;
		}
		stat_add(m, &m->st.api_errors);
		if (!race) {
			set_err(err, errlen, "patching the webhook configuration: %s", e);
			goto out;
		}
		stat_add(m, &m->st.conflicts);
		rc = -EAGAIN;
		set_err(err, errlen, "the webhook configuration kept changing: %s", e);
	}
out:
	cf_buf_free(&path);
	return rc;
}

/* ---- one sync ------------------------------------------------------------ */

static int serve_leaf(wh_certmgr *m, const doc *d, int64_t now, char *err, size_t errlen)
{
	wh_pki_bundle bundle, leaf;
	char e[400];
	if (wh_pki_bundle_parse(d->ca_crt, strlen(d->ca_crt), &bundle, e, sizeof e)) {
		set_err(err, errlen, "ca.crt: %s", e);
		return -EINVAL;
	}
	if (wh_pki_bundle_parse(d->tls_crt, strlen(d->tls_crt), &leaf, e, sizeof e)) {
		wh_pki_bundle_free(&bundle);
		set_err(err, errlen, "tls.crt: %s", e);
		return -EINVAL;
	}
	/* The invariant: the leaf we serve chains to a CA of the bundle that
	 * the configuration was just seen to carry. */
	int signer = -1;
	for (size_t i = 0; i < bundle.n && signer < 0; i++)
		if (!wh_pki_verify_leaf(leaf.certs[0].pem, bundle.certs[i].pem, m->dnsp, 3, now, e,
		                        sizeof e))
			signer = (int)i;
	int rc = 0;
	if (signer < 0) {
		set_err(err, errlen, "the leaf chains to no CA of the bundle: %s", e);
		rc = -EINVAL;
		goto out;
	}
	if (!m->served_leaf || strcmp(m->served_leaf, d->tls_crt) != 0) {
		rc = wh_tls_store_set_pem(m->tls, d->tls_crt, strlen(d->tls_crt), d->tls_key,
		                          strlen(d->tls_key), e, sizeof e);
		if (rc) {
			set_err(err, errlen, "loading the leaf: %s", e);
			goto out;
		}
		char *leaf_copy = strdup(d->tls_crt);
		char *ca_copy = strdup(bundle.certs[signer].pem);
		bool rotated = m->served_leaf != NULL;
		free(m->served_leaf);
		free(m->served_ca);
		m->served_leaf = leaf_copy;
		m->served_ca = ca_copy;
		m->served_not_after = leaf.certs[0].not_after;
		pthread_mutex_lock(&m->lock);
		if (rotated)
			m->st.rotations++;
		m->st.leaf_not_after = leaf.certs[0].not_after;
		m->st.ca_not_after = bundle.certs[signer].not_after;
		pthread_mutex_unlock(&m->lock);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "component", "certmgr");
		cJSON_AddStringToObject(o, "msg",
		                        rotated ? "serving a renewed certificate"
		                                : "serving the certificate");
		cJSON_AddNumberToObject(o, "not_after", (double)leaf.certs[0].not_after);
		cJSON_AddNumberToObject(o, "ca_not_after", (double)bundle.certs[signer].not_after);
		cJSON_AddNumberToObject(o, "bundle_cas", (double)bundle.n);
		cf_log_emit(CF_LOG_INFO, o);
	}
	pthread_mutex_lock(&m->lock);
	m->ready = true;
	m->st.bundle_certs = (unsigned)bundle.n;
	pthread_mutex_unlock(&m->lock);
out:
	wh_pki_bundle_free(&bundle);
	wh_pki_bundle_free(&leaf);
	return rc;
}

static int sync_once(wh_certmgr *m, char *err, size_t errlen)
{
	cf_buf coll, item;
	cf_buf_init(&coll, CF_KUBE_MAX_URL_BYTES);
	cf_buf_init(&item, CF_KUBE_MAX_URL_BYTES);
	secret_path(m, &coll, false);
	secret_path(m, &item, true);
	doc d;
	memset(&d, 0, sizeof d);
	char uid[200] = "";
	int rc = -EAGAIN;
	bool settled = false;
	for (int round = 0; round < MAX_ROUNDS && !settled; round++) {
		int64_t now = now_s();
		doc_free(&d);
		cf_kube_response r;
		cf_kube_response_init(&r);
		char e[1024];
		cJSON *obj = NULL;
		char *body = NULL;
		bool create = false;
		rc = cf_kube_get(m->kube, item.data, &r, e, sizeof e);
		if (rc && r.status != 404) {
			stat_add(m, &m->st.api_errors);
			set_err(err, errlen, "reading the Secret %s/%s: %s", m->ns, m->name, e);
			cf_kube_response_free(&r);
			goto out;
		}
		bool changed = true;
		if (rc) { /* 404: first start */
			create = true;
			rc = plan_fresh(m, &d, now, err, errlen);
			m->due = now + 1;
		} else {
			obj = cJSON_ParseWithLength(r.body.data, r.body.len);
			if (!cJSON_IsObject(obj)) {
				set_err(err, errlen, "the Secret is not a JSON object");
				rc = -EINVAL;
			} else {
				rc = doc_from_secret(obj, &d, e, sizeof e);
				if (rc == -EINVAL) {
					/* Undecodable data: treated like a broken CA. */
					log_event(CF_LOG_WARNING, "the TLS Secret is unusable", e,
					          m);
					memset(&d, 0, sizeof d);
					const cJSON *anns = cJSON_GetObjectItemCaseSensitive(
					    cJSON_GetObjectItemCaseSensitive(obj, "metadata"),
					    "annotations");
					d.generation = ann_long(anns, WH_CERTMGR_ANN_GENERATION);
					rc = 0;
				} else if (rc) {
					set_err(err, errlen, "%s", e);
				}
				if (!rc) {
					analysis a;
					analyze(m, &d, now, &a);
					rc = plan(m, &d, &a, now, &changed, err, errlen);
					analysis_free(&a);
				}
			}
		}
		if (r.body.data && r.body.len)
			explicit_bzero(r.body.data, r.body.len);
		cf_kube_response_free(&r);
		if (rc) {
			cJSON_Delete(obj);
			goto out;
		}
		const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(md, "uid");
		snprintf(uid, sizeof uid, "%s", cJSON_IsString(u) ? u->valuestring : "");
		if (!changed) {
			cJSON_Delete(obj);
			settled = true;
			break;
		}
		body = secret_json(m, obj, &d);
		cJSON_Delete(obj);
		if (!body) {
			set_err(err, errlen, "out of memory");
			rc = -ENOMEM;
			goto out;
		}
		cf_kube_response_init(&r);
		rc = cf_kube_request(m->kube, create ? "POST" : "PUT",
		                     create ? coll.data : item.data, NULL, body, strlen(body), &r,
		                     e, sizeof e);
		free_text(body);
		if (!rc) {
			cJSON *w = cJSON_ParseWithLength(r.body.data, r.body.len);
			const cJSON *wu = cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetObjectItemCaseSensitive(w, "metadata"), "uid");
			snprintf(uid, sizeof uid, "%s", cJSON_IsString(wu) ? wu->valuestring : "");
			cJSON_Delete(w);
			if (r.body.data && r.body.len)
				explicit_bzero(r.body.data, r.body.len);
			cf_kube_response_free(&r);
			stat_add(m, &m->st.secret_writes);
			log_event(CF_LOG_INFO, create ? "TLS Secret created" : "TLS Secret updated",
			          NULL, m);
			settled = true;
			break;
		}
		stat_add(m, &m->st.api_errors);
		bool race = r.status == 409;
		cf_kube_response_free(&r);
		if (!race) {
			set_err(err, errlen, "%s the Secret %s/%s: %s",
			        create ? "creating" : "updating", m->ns, m->name, e);
			goto out;
		}
		/* Another replica wrote first: adopt what it wrote. */
		stat_add(m, &m->st.conflicts);
		log_event(CF_LOG_INFO, "another replica wrote the TLS Secret first; adopting it", e,
		          m);
		rc = -EAGAIN;
		set_err(err, errlen, "the Secret kept changing: %s", e);
	}
	if (!settled)
		goto out;
	char *b64 = b64_encode(d.ca_crt, strlen(d.ca_crt));
	if (!b64) {
		set_err(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	rc = ensure_vwc(m, b64, uid, d.generation, err, errlen);
	free(b64);
	if (rc == -ESTALE) {
		set_err(err, errlen,
		        "the webhook configuration carries a newer bundle; re-reading");
		rc = -EAGAIN;
		m->due = now_s();
		goto out;
	}
	if (rc)
		goto out;
	rc = serve_leaf(m, &d, now_s(), err, errlen);
out:
	doc_free(&d);
	cf_buf_free(&coll);
	cf_buf_free(&item);
	return rc;
}

int wh_certmgr_sync(wh_certmgr *m, char *err, size_t errlen)
{
	char e[1024] = "";
	int rc = sync_once(m, e, sizeof e);
	pthread_mutex_lock(&m->lock);
	m->st.syncs++;
	if (rc) {
		m->st.sync_failures++;
		snprintf(m->st.last_error, sizeof m->st.last_error, "%.500s", e);
	} else {
		m->st.last_error[0] = '\0';
	}
	pthread_mutex_unlock(&m->lock);
	if (err && errlen)
		snprintf(err, errlen, "%s", e);
	return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int aborted(void *ud)
{
	wh_certmgr *m = ud;
	return __atomic_load_n(&m->stop, __ATOMIC_ACQUIRE);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return s[0] != '-' && s[0] != '.' && s[n - 1] != '-' && s[n - 1] != '.';
}

wh_certmgr *wh_certmgr_new(const wh_certmgr_options *o, char *err, size_t errlen)
{
	if (!o->kube || !o->tls || !o->secret_namespace || !o->secret_name || !o->webhook_config ||
	    !o->service) {
		set_err(err, errlen,
		        "self-managed TLS needs API access, a Secret, a webhook "
		        "configuration and a Service");
		return NULL;
	}
	const char *names[] = {o->secret_namespace, o->secret_name, o->webhook_config, o->service};
	const char *what[] = {"Secret namespace", "Secret name", "webhook configuration name",
	                      "Service name"};
	for (size_t i = 0; i < 4; i++)
		if (!valid_name(names[i]) || (i != 1 && i != 2 && strchr(names[i], '.')) ||
		    (i != 1 && i != 2 && strlen(names[i]) > 63)) {
			set_err(err, errlen, "invalid %s \"%s\"", what[i], names[i]);
			return NULL;
		}
	int64_t ca_s = o->ca_validity_s ? o->ca_validity_s : WH_CERTMGR_DEFAULT_CA_VALIDITY_S;
	int64_t leaf_s =
	    o->leaf_validity_s ? o->leaf_validity_s : WH_CERTMGR_DEFAULT_LEAF_VALIDITY_S;
	if (leaf_s < 3 || ca_s < 2 * leaf_s) {
		set_err(err, errlen,
		        "CA validity (%lld s) must be at least twice the leaf validity (%lld s), "
		        "and the leaf's at least 3 s",
		        (long long)ca_s, (long long)leaf_s);
		return NULL;
	}
	wh_certmgr *m = calloc(1, sizeof *m);
	if (!m) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	snprintf(m->ns, sizeof m->ns, "%s", o->secret_namespace);
	snprintf(m->name, sizeof m->name, "%s", o->secret_name);
	snprintf(m->vwc, sizeof m->vwc, "%s", o->webhook_config);
	snprintf(m->svc, sizeof m->svc, "%s", o->service);
	snprintf(m->dns[0], sizeof m->dns[0], "%s", o->service);
	snprintf(m->dns[1], sizeof m->dns[1], "%s.%s", o->service, o->secret_namespace);
	snprintf(m->dns[2], sizeof m->dns[2], "%s.%s.svc", o->service, o->secret_namespace);
	for (int i = 0; i < 3; i++)
		m->dnsp[i] = m->dns[i];
	m->kt = o->key_type;
	m->ca_s = ca_s;
	m->leaf_s = leaf_s;
	m->prop_s = o->propagation_s;
	m->interval_s = o->interval_s ? o->interval_s : WH_CERTMGR_DEFAULT_INTERVAL_S;
	m->tls = o->tls;
	m->kube = cf_kube_new(o->kube, err, errlen);
	if (!m->kube) {
		wh_certmgr_free(m);
		return NULL;
	}
	cf_kube_set_abort(m->kube, aborted, m);
	return m;
}

static void *run(void *arg)
{
	wh_certmgr *m = arg;
	uint64_t rng = (uint64_t)(uintptr_t)m ^ (uint64_t)now_s();
	unsigned failures = 0;
	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		char err[1024];
		int rc = wh_certmgr_sync(m, err, sizeof err);
		uint64_t wait_ms;
		if (rc) {
			if (rc != -ECANCELED)
				log_event(CF_LOG_ERROR,
				          wh_certmgr_ready(m)
				              ? "TLS sync failed; still serving the current "
				                "certificate"
				              : "TLS sync failed; no certificate is served yet",
				          err, m);
			wait_ms = cf_kube_backoff_ms(failures++, RETRY_BASE_MS, RETRY_MAX_MS, &rng);
		} else {
			failures = 0;
			wait_ms = (uint64_t)m->interval_s * 1000u;
		}
		if (m->due) {
			int64_t until = m->due - now_s();
			uint64_t due_ms = until > 0 ? (uint64_t)until * 1000u : 200u;
			if (due_ms < wait_ms)
				wait_ms = due_ms;
		}
		if (wait_ms > (uint64_t)m->interval_s * 1000u)
			wait_ms = (uint64_t)m->interval_s * 1000u;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(wait_ms / 1000u);
		ts.tv_nsec += (long)(wait_ms % 1000u) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&m->lock);
		while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE) &&
		       pthread_cond_timedwait(&m->cond, &m->lock, &ts) == 0)
			;
		pthread_mutex_unlock(&m->lock);
	}
	return NULL;
}

int wh_certmgr_start(wh_certmgr *m, char *err, size_t errlen)
{
	int rc = pthread_create(&m->thread, NULL, run, m);
	if (rc) {
		set_err(err, errlen, "cannot start the certificate thread: %s", strerror(rc));
		return -rc;
	}
	m->started = true;
	return 0;
}

void wh_certmgr_free(wh_certmgr *m)
{
	if (!m)
		return;
	if (m->started) {
		pthread_mutex_lock(&m->lock);
		__atomic_store_n(&m->stop, 1, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
	}
	cf_kube_free(m->kube);
	free(m->served_leaf);
	free(m->served_ca);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

bool wh_certmgr_ready(wh_certmgr *m)
{
	pthread_mutex_lock(&m->lock);
	bool r = m->ready;
	pthread_mutex_unlock(&m->lock);
	return r;
}

void wh_certmgr_stats_get(wh_certmgr *m, wh_certmgr_stats *out)
{
	pthread_mutex_lock(&m->lock);
	*out = m->st;
	pthread_mutex_unlock(&m->lock);
}
