/* wh_tls.c - see wh_tls.h. */
#include "wh_tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gnutls/x509.h>

#include "cf_buf.h"
#include "cf_limits.h"

struct wh_tls_cred {
	int refs; /* atomic */
	gnutls_pcert_st pcerts[CF_MAX_TLS_CHAIN_CERTS];
	unsigned n_pcerts;
	gnutls_privkey_t key;
	int64_t not_after;
};

/* What a poll compares: the path itself and whatever it resolves to. */
typedef struct file_stamp {
	int link_ok, target_ok;
	dev_t ldev, tdev;
	ino_t lino, tino;
	struct timespec lmtime, tmtime, tctime;
	off_t tsize;
	char real[PATH_MAX];
} file_stamp;

struct wh_tls_store {
	char *cert_path, *key_path;
	pthread_mutex_t lock; /* guards current */
	wh_tls_cred *current;
	file_stamp cert_stamp, key_stamp; /* of the state last looked at */
	unsigned generation;
	int64_t not_after;
};

static void cred_free(wh_tls_cred *c)
{
	for (unsigned i = 0; i < c->n_pcerts; i++)
		gnutls_pcert_deinit(&c->pcerts[i]);
	if (c->key)
		gnutls_privkey_deinit(c->key);
	free(c);
}

wh_tls_cred *wh_tls_cred_ref(wh_tls_cred *c)
{
	if (c)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void wh_tls_cred_unref(wh_tls_cred *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		cred_free(c);
}

gnutls_pcert_st *wh_tls_cred_pcerts(wh_tls_cred *c, unsigned *n)
{
	*n = c->n_pcerts;
	return c->pcerts;
}

gnutls_privkey_t wh_tls_cred_key(wh_tls_cred *c)
{
	return c->key;
}

int64_t wh_tls_cred_not_after(const wh_tls_cred *c)
{
	return c->not_after;
}

/* DER of a public key, for comparing the key file with the leaf. */
static int pubkey_der(gnutls_pubkey_t pk, gnutls_datum_t *out)
{
	return gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, out);
}

static bool key_matches(gnutls_pcert_st *leaf, gnutls_privkey_t key)
{
	gnutls_pubkey_t from_key = NULL;
	gnutls_datum_t a = {NULL, 0}, b = {NULL, 0};
	bool same = false;
	if (gnutls_pubkey_init(&from_key) < 0)
		return false;
	if (gnutls_pubkey_import_privkey(from_key, key, 0, 0) < 0)
		goto out;
	if (pubkey_der(from_key, &a) < 0 || pubkey_der(leaf->pubkey, &b) < 0)
		goto out;
	same = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
out:
	gnutls_free(a.data);
	gnutls_free(b.data);
	gnutls_pubkey_deinit(from_key);
	return same;
}

/* The parsing shared by the file and the memory source; `cert_name` and
 * `key_name` only label messages. */
static wh_tls_cred *cred_from_pem(const char *cert, size_t cert_len, const char *key,
                                  size_t key_len, const char *cert_name, const char *key_name,
                                  char *err, size_t errlen)
{
	wh_tls_cred *c = NULL;
	gnutls_x509_crt_t crt = NULL;
	if (cert_len > CF_MAX_TLS_FILE_BYTES || key_len > CF_MAX_TLS_FILE_BYTES) {
		snprintf(err, errlen, "%s: larger than %u bytes",
		         cert_len > CF_MAX_TLS_FILE_BYTES ? cert_name : key_name,
		         CF_MAX_TLS_FILE_BYTES);
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	c->refs = 1;
	gnutls_datum_t d = {(unsigned char *)cert, (unsigned)cert_len};
	unsigned n = CF_MAX_TLS_CHAIN_CERTS;
	int rc = cert_len
	             ? gnutls_pcert_list_import_x509_raw(c->pcerts, &n, &d, GNUTLS_X509_FMT_PEM, 0)
	             : GNUTLS_E_NO_CERTIFICATE_FOUND;
	if (rc < 0) {
		snprintf(err, errlen, "%s: no usable PEM certificate chain: %s", cert_name,
		         rc == GNUTLS_E_SHORT_MEMORY_BUFFER ? "too many certificates"
		                                            : gnutls_strerror(rc));
		goto fail;
	}
	c->n_pcerts = n;
	if (n == 0) {
		snprintf(err, errlen, "%s: no certificate found", cert_name);
		goto fail;
	}
	if (gnutls_privkey_init(&c->key) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	gnutls_datum_t kd = {(unsigned char *)key, (unsigned)key_len};
	rc = key_len ? gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)
	             : GNUTLS_E_BASE64_DECODING_ERROR;
	if (rc < 0) {
		snprintf(err, errlen, "%s: no usable PEM private key: %s", key_name,
		         gnutls_strerror(rc));
		goto fail;
	}
	if (!key_matches(&c->pcerts[0], c->key)) {
		snprintf(err, errlen, "%s does not match the certificate in %s", key_name,
		         cert_name);
		goto fail;
	}
	if (gnutls_x509_crt_init(&crt) < 0 ||
	    gnutls_x509_crt_import(crt, &c->pcerts[0].cert, GNUTLS_X509_FMT_DER) < 0) {
		snprintf(err, errlen, "%s: cannot read the leaf certificate", cert_name);
		goto fail;
	}
	c->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	return c;
fail:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (c)
		cred_free(c);
	return NULL;
}

wh_tls_cred *wh_tls_cred_from_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
                                  size_t key_len, char *err, size_t errlen)
{
	return cred_from_pem(cert_pem, cert_len, key_pem, key_len, "certificate", "key", err,
	                     errlen);
}

wh_tls_cred *wh_tls_cred_load(const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	cf_buf cert, key;
	char rerr[512];
	wh_tls_cred *c = NULL;
	cf_buf_init(&cert, CF_MAX_TLS_FILE_BYTES);
	cf_buf_init(&key, CF_MAX_TLS_FILE_BYTES);
	if (cf_read_file(cert_path, CF_MAX_TLS_FILE_BYTES, &cert, rerr, sizeof rerr)) {
		snprintf(err, errlen, "certificate: %s", rerr);
		goto out;
	}
	if (cf_read_file(key_path, CF_MAX_TLS_FILE_BYTES, &key, rerr, sizeof rerr)) {
		snprintf(err, errlen, "key: %s", rerr);
		goto out;
	}
	c = cred_from_pem(cert.data, cert.len, key.data, key.len, cert_path, key_path, err, errlen);
out:
	/* Key material should not linger in freed heap memory. */
	if (key.data)
		explicit_bzero(key.data, key.len);
	cf_buf_free(&cert);
	cf_buf_free(&key);
	return c;
}

static void stamp_of(const char *path, file_stamp *st)
{
	struct stat sb;
	memset(st, 0, sizeof *st);
	if (lstat(path, &sb) == 0) {
		st->link_ok = 1;
		st->ldev = sb.st_dev;
		st->lino = sb.st_ino;
		st->lmtime = sb.st_mtim;
	}
	if (stat(path, &sb) == 0) {
		st->target_ok = 1;
		st->tdev = sb.st_dev;
		st->tino = sb.st_ino;
		st->tmtime = sb.st_mtim;
		st->tctime = sb.st_ctim;
		st->tsize = sb.st_size;
	}
	if (!realpath(path, st->real))
		st->real[0] = '\0';
}

static bool ts_eq(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool stamp_eq(const file_stamp *a, const file_stamp *b)
{
	return a->link_ok == b->link_ok && a->target_ok == b->target_ok && a->ldev == b->ldev &&
	       a->lino == b->lino && ts_eq(a->lmtime, b->lmtime) && a->tdev == b->tdev &&
	       a->tino == b->tino && ts_eq(a->tmtime, b->tmtime) && ts_eq(a->tctime, b->tctime) &&
	       a->tsize == b->tsize && strcmp(a->real, b->real) == 0;
}

wh_tls_store *wh_tls_store_new_memory(void)
{
	wh_tls_store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

int wh_tls_store_set_pem(wh_tls_store *s, const char *cert_pem, size_t cert_len,
                         const char *key_pem, size_t key_len, char *err, size_t errlen)
{
	wh_tls_cred *fresh =
	    wh_tls_cred_from_pem(cert_pem, cert_len, key_pem, key_len, err, errlen);
	if (!fresh)
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	wh_tls_cred *old = s->current;
	s->current = fresh;
	s->not_after = fresh->not_after;
	if (old)
		s->generation++;
	pthread_mutex_unlock(&s->lock);
	wh_tls_cred_unref(old);
	return 0;
}

bool wh_tls_store_has_cred(wh_tls_store *s)
{
	pthread_mutex_lock(&s->lock);
	bool have = s->current != NULL;
	pthread_mutex_unlock(&s->lock);
	return have;
}

wh_tls_store *wh_tls_store_new(const char *cert_path, const char *key_path, char *err,
                               size_t errlen)
{
	wh_tls_store *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	s->cert_path = strdup(cert_path);
	s->key_path = strdup(key_path);
	if (!s->cert_path || !s->key_path) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	/* Stamp before loading: a change racing the load is seen next poll. */
	stamp_of(cert_path, &s->cert_stamp);
	stamp_of(key_path, &s->key_stamp);
	s->current = wh_tls_cred_load(cert_path, key_path, err, errlen);
	if (!s->current)
		goto fail;
	s->not_after = s->current->not_after;
	return s;
fail:
	wh_tls_store_free(s);
	return NULL;
}

void wh_tls_store_free(wh_tls_store *s)
{
	if (!s)
		return;
	wh_tls_cred_unref(s->current);
	pthread_mutex_destroy(&s->lock);
	free(s->cert_path);
	free(s->key_path);
	free(s);
}

int wh_tls_store_poll(wh_tls_store *s, char *err, size_t errlen)
{
	if (!s->cert_path)
		return 0; /* the memory source is set, not polled */
	file_stamp c, k;
	stamp_of(s->cert_path, &c);
	stamp_of(s->key_path, &k);
	if (stamp_eq(&c, &s->cert_stamp) && stamp_eq(&k, &s->key_stamp))
		return 0;
	/* Remember this state whatever the outcome, so a broken pair is
	 * reported once and retried only when the files change again. */
	s->cert_stamp = c;
	s->key_stamp = k;
	wh_tls_cred *fresh = wh_tls_cred_load(s->cert_path, s->key_path, err, errlen);
	if (!fresh)
		return -EAGAIN;
	pthread_mutex_lock(&s->lock);
	wh_tls_cred *old = s->current;
	s->current = fresh;
	s->not_after = fresh->not_after;
	s->generation++;
	pthread_mutex_unlock(&s->lock);
	wh_tls_cred_unref(old);
	return 1;
}

wh_tls_cred *wh_tls_store_acquire(wh_tls_store *s)
{
	pthread_mutex_lock(&s->lock);
	wh_tls_cred *c = wh_tls_cred_ref(s->current);
	pthread_mutex_unlock(&s->lock);
	return c;
}

int64_t wh_tls_store_not_after(wh_tls_store *s)
{
	pthread_mutex_lock(&s->lock);
	int64_t t = s->not_after;
	pthread_mutex_unlock(&s->lock);
	return t;
}

unsigned wh_tls_store_generation(wh_tls_store *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned g = s->generation;
	pthread_mutex_unlock(&s->lock);
	return g;
}
