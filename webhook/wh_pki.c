/* wh_pki.c - see wh_pki.h. */
#include "wh_pki.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static const char *const key_type_names[] = {"ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096"};

int wh_pki_key_type_parse(const char *name, wh_pki_key_type *out)
{
	for (size_t i = 0; i < sizeof key_type_names / sizeof key_type_names[0]; i++)
		if (strcmp(name, key_type_names[i]) == 0) {
			*out = (wh_pki_key_type)i;
			return 0;
		}
	return -EINVAL;
}

const char *wh_pki_key_type_name(wh_pki_key_type t)
{
	return (unsigned)t < sizeof key_type_names / sizeof key_type_names[0] ? key_type_names[t]
	                                                                      : "unknown";
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void wh_pki_pair_free(wh_pki_pair *p)
{
	if (!p)
		return;
	free(p->cert_pem);
	free_secret(p->key_pem);
	p->cert_pem = p->key_pem = NULL;
}

/* The last OpenSSL error as text, after `what`. */
static void ossl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static EVP_PKEY *gen_key(wh_pki_key_type kt)
{
	switch (kt) {
	case WH_PKI_EC_P256:
		return EVP_EC_gen("P-256");
	case WH_PKI_RSA_2048:
		return EVP_RSA_gen(2048);
	case WH_PKI_RSA_3072:
		return EVP_RSA_gen(3072);
	case WH_PKI_RSA_4096:
		return EVP_RSA_gen(4096);
	}
	return NULL;
}

static char *bio_text(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static char *cert_to_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s = NULL;
	if (b && PEM_write_bio_X509(b, x))
		s = bio_text(b);
	BIO_free(b);
	return s;
}

static char *key_to_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *s = NULL;
	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))
		s = bio_text(b);
	BIO_free(b);
	return s;
}

static X509 *cert_from_pem(const char *pem, size_t len)
{
	if (len > WH_PKI_MAX_PEM_BYTES)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	ERR_clear_error();
	return x;
}

static EVP_PKEY *key_from_pem(const char *pem)
{
	size_t len = strlen(pem);
	if (len > WH_PKI_MAX_PEM_BYTES)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	/* No password callback: an encrypted key is refused, not prompted for. */
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)"") : NULL;
	BIO_free(b);
	ERR_clear_error();
	return k;
}

static int set_serial(X509 *x)
{
	unsigned char buf[16];
	if (RAND_bytes(buf, sizeof buf) != 1)
		return -EIO;
	buf[0] &= 0x7f; /* positive, and 128-bit random as the CA/B rules ask */
	buf[0] |= 0x01;
	BIGNUM *bn = BN_bin2bn(buf, sizeof buf, NULL);
	int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -EIO;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -EINVAL;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -EIO;
}

static int64_t asn1_time_unix(const ASN1_TIME *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return (int64_t)timegm(&tm);
}

/* Version 3, random serial, validity, subject CN, public key. */
static X509 *skeleton(const char *cn, int64_t now, int64_t validity_s, int64_t not_after_cap,
                      EVP_PKEY *key)
{
	int64_t back = validity_s / 10;
	if (back > WH_PKI_MAX_BACKDATE_SECONDS)
		back = WH_PKI_MAX_BACKDATE_SECONDS;
	int64_t end = now + validity_s;
	if (not_after_cap && end > not_after_cap)
		end = not_after_cap;
	X509 *x = X509_new();
	if (!x)
		return NULL;
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || set_serial(x) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - back)) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)end) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                -1, 0)) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int check_validity_arg(int64_t validity_s, char *err, size_t errlen)
{
	/* Below a second OpenSSL cannot express it; past ~100 years time_t
	 * arithmetic and UTCTime/GeneralizedTime switching get silly. */
	if (validity_s < 1 || validity_s > 100LL * 366 * 86400) {
		snprintf(err, errlen, "validity %lld s is out of range (1 s .. 100 years)",
		         (long long)validity_s);
		return -EINVAL;
	}
	return 0;
}

int wh_pki_make_ca(const char *cn, wh_pki_key_type kt, int64_t now, int64_t validity_s,
                   wh_pki_pair *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = check_validity_arg(validity_s, err, errlen);
	if (rc)
		return rc;
	rc = -EIO;
	X509 *x = NULL;
	EVP_PKEY *key = gen_key(kt);
	if (!key) {
		ossl_err(err, errlen, "CA key generation failed");
		goto fail;
	}
	x = skeleton(cn, now, validity_s, 0, key);
	if (!x || !X509_set_issuer_name(x, X509_get_subject_name(x)) ||
	    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(x, x, NID_subject_key_identifier, "hash") || !X509_sign(x, key, EVP_sha256())) {
		ossl_err(err, errlen, "CA certificate creation failed");
		goto fail;
	}
	out->cert_pem = cert_to_pem(x);
	out->key_pem = key_to_pem(key);
	if (!out->cert_pem || !out->key_pem) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	X509_free(x);
	EVP_PKEY_free(key);
	return 0;
fail:
	wh_pki_pair_free(out);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int wh_pki_issue_leaf(const wh_pki_pair *ca, const char *const *dns, size_t n_dns,
                      wh_pki_key_type kt, int64_t now, int64_t validity_s, wh_pki_pair *out,
                      char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	int rc = check_validity_arg(validity_s, err, errlen);
	if (rc)
		return rc;
	if (n_dns == 0 || !dns[0][0]) {
		snprintf(err, errlen, "a leaf needs at least one DNS name");
		return -EINVAL;
	}
	rc = -EIO;
	X509 *x = NULL, *cax = NULL;
	EVP_PKEY *key = NULL, *cakey = NULL;
	size_t total = 1;
	for (size_t i = 0; i < n_dns; i++) {
		/* Names come from config (validated as DNS labels); a comma
		 * would still split the extension string, so refuse it. */
		if (!dns[i][0] || strpbrk(dns[i], ", \t\n")) {
			snprintf(err, errlen, "invalid DNS name \"%s\"", dns[i]);
			return -EINVAL;
		}
		total += strlen(dns[i]) + 5;
	}
	char *san = calloc(1, total);
	if (!san) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	size_t off = 0;
	for (size_t i = 0; i < n_dns; i++)
		off += (size_t)snprintf(san + off, total - off, "%sDNS:%s", i ? "," : "", dns[i]);
	cax = cert_from_pem(ca->cert_pem, strlen(ca->cert_pem));
	cakey = key_from_pem(ca->key_pem);
	if (!cax || !cakey) {
		snprintf(err, errlen, "the CA certificate or key cannot be read");
		rc = -EINVAL;
		goto fail;
	}
	key = gen_key(kt);
	if (!key) {
		ossl_err(err, errlen, "leaf key generation failed");
		goto fail;
	}
	x = skeleton(dns[0], now, validity_s, asn1_time_unix(X509_get0_notAfter(cax)), key);
	if (!x || !X509_set_issuer_name(x, X509_get_subject_name(cax)) ||
	    add_ext(x, cax, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, cax, NID_key_usage,
	            kt == WH_PKI_EC_P256 ? "critical,digitalSignature"
	                                 : "critical,digitalSignature,keyEncipherment") ||
	    add_ext(x, cax, NID_ext_key_usage, "serverAuth") ||
	    add_ext(x, cax, NID_authority_key_identifier, "keyid:always") ||
	    add_ext(x, cax, NID_subject_alt_name, san) || !X509_sign(x, cakey, EVP_sha256())) {
		ossl_err(err, errlen, "leaf certificate creation failed");
		goto fail;
	}
	out->cert_pem = cert_to_pem(x);
	out->key_pem = key_to_pem(key);
	if (!out->cert_pem || !out->key_pem) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	rc = 0;
	goto done;
fail:
	wh_pki_pair_free(out);
done:
	free(san);
	X509_free(x);
	X509_free(cax);
	EVP_PKEY_free(key);
	EVP_PKEY_free(cakey);
	return rc;
}

static int cert_fill(X509 *x, wh_pki_cert *c)
{
	memset(c, 0, sizeof *c);
	c->pem = cert_to_pem(x);
	if (!c->pem)
		return -ENOMEM;
	c->not_before = asn1_time_unix(X509_get0_notBefore(x));
	c->not_after = asn1_time_unix(X509_get0_notAfter(x));
	c->is_ca = X509_check_ca(x) != 0;
	unsigned n = sizeof c->sha256;
	if (!X509_digest(x, EVP_sha256(), c->sha256, &n))
		return -EIO;
	return 0;
}

int wh_pki_bundle_parse(const char *pem, size_t len, wh_pki_bundle *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (len > WH_PKI_MAX_PEM_BYTES) {
		snprintf(err, errlen, "PEM text of %zu bytes exceeds the limit of %u", len,
		         WH_PKI_MAX_PEM_BYTES);
		return -EINVAL;
	}
	const char *p = pem, *end = pem + len;
	for (;;) {
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
			p++;
		if (p == end)
			break;
		static const char begin[] = "-----BEGIN CERTIFICATE-----";
		if ((size_t)(end - p) < sizeof begin - 1 || memcmp(p, begin, sizeof begin - 1)) {
			snprintf(err, errlen, "certificate %zu: not a PEM CERTIFICATE block",
			         out->n + 1);
			goto fail;
		}
		if (out->n == WH_PKI_MAX_BUNDLE_CERTS) {
			snprintf(err, errlen, "more than %u certificates", WH_PKI_MAX_BUNDLE_CERTS);
			goto fail;
		}
		BIO *b = BIO_new_mem_buf(p, (int)(end - p));
		X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		if (!x) {
			BIO_free(b);
			ERR_clear_error();
			snprintf(err, errlen, "certificate %zu: cannot be decoded", out->n + 1);
			goto fail;
		}
		/* The BIO's position is just past the END line. */
		const char *rest;
		long left = BIO_get_mem_data(b, (char **)&rest);
		int rc = cert_fill(x, &out->certs[out->n]);
		out->n++;
		X509_free(x);
		BIO_free(b);
		if (rc) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		p = end - left;
	}
	if (!out->n) {
		snprintf(err, errlen, "no certificate");
		goto fail;
	}
	return 0;
fail:
	wh_pki_bundle_free(out);
	return -EINVAL;
}

void wh_pki_bundle_free(wh_pki_bundle *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->certs[i].pem);
	memset(b, 0, sizeof *b);
}

char *wh_pki_bundle_pem(const wh_pki_bundle *b)
{
	size_t total = 1;
	for (size_t i = 0; i < b->n; i++)
		total += strlen(b->certs[i].pem);
	char *s = malloc(total), *q = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < b->n; i++) {
		size_t l = strlen(b->certs[i].pem);
		memcpy(q, b->certs[i].pem, l);
		q += l;
	}
	*q = '\0';
	return s;
}

int wh_pki_bundle_find(const wh_pki_bundle *b, const unsigned char sha256[32])
{
	for (size_t i = 0; i < b->n; i++)
		if (memcmp(b->certs[i].sha256, sha256, 32) == 0)
			return (int)i;
	return -1;
}

/* EC on P-256 or P-384, RSA of 2048 bits or more. */
static int key_strong_enough(EVP_PKEY *k, char *err, size_t errlen)
{
	int id = EVP_PKEY_get_base_id(k);
	if (id == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bits(k) < 2048) {
			snprintf(err, errlen, "RSA key of %d bits (2048 at least)",
			         EVP_PKEY_get_bits(k));
			return -EINVAL;
		}
		return 0;
	}
	if (id == EVP_PKEY_EC) {
		char group[64] = "";
		size_t gl = 0;
		if (EVP_PKEY_get_group_name(k, group, sizeof group, &gl) != 1 ||
		    (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)) {
			snprintf(err, errlen, "EC key on curve \"%s\" (P-256 or P-384 only)",
			         group);
			return -EINVAL;
		}
		return 0;
	}
	snprintf(err, errlen, "unsupported key type (EC P-256 or RSA 2048+ only)");
	return -EINVAL;
}

int wh_pki_key_matches(const char *cert_pem, const char *key_pem, char *err, size_t errlen)
{
	int rc = -EINVAL;
	X509 *x = cert_from_pem(cert_pem, strlen(cert_pem));
	EVP_PKEY *k = key_from_pem(key_pem);
	if (!x) {
		snprintf(err, errlen, "the certificate cannot be decoded");
		goto out;
	}
	if (!k) {
		snprintf(err, errlen, "the private key cannot be decoded");
		goto out;
	}
	if (key_strong_enough(k, err, errlen))
		goto out;
	if (X509_check_private_key(x, k) != 1) {
		snprintf(err, errlen, "the private key does not match the certificate");
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return rc;
}

int wh_pki_verify_leaf(const char *leaf_pem, const char *ca_pem, const char *const *dns,
                       size_t n_dns, int64_t now, char *err, size_t errlen)
{
	int rc = -EINVAL;
	X509 *leaf = cert_from_pem(leaf_pem, strlen(leaf_pem));
	X509 *ca = cert_from_pem(ca_pem, strlen(ca_pem));
	EVP_PKEY *capub = ca ? X509_get0_pubkey(ca) : NULL;
	if (!leaf || !ca || !capub) {
		snprintf(err, errlen, "%s cannot be decoded", !leaf ? "the leaf" : "the CA");
		goto out;
	}
	if (X509_check_ca(leaf)) {
		snprintf(err, errlen, "the leaf is a CA certificate");
		goto out;
	}
	if (X509_check_issued(ca, leaf) != X509_V_OK || X509_verify(leaf, capub) != 1) {
		snprintf(err, errlen, "the leaf is not signed by the CA");
		goto out;
	}
	if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
	    !(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER)) {
		snprintf(err, errlen, "the leaf is not a serverAuth certificate");
		goto out;
	}
	for (size_t i = 0; i < n_dns; i++)
		if (X509_check_host(leaf, dns[i], 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1) {
			snprintf(err, errlen, "the leaf does not cover \"%s\"", dns[i]);
			goto out;
		}
	int64_t nb = asn1_time_unix(X509_get0_notBefore(leaf));
	int64_t na = asn1_time_unix(X509_get0_notAfter(leaf));
	if (now < nb || now >= na) {
		snprintf(err, errlen, "the leaf is not valid now (valid %lld..%lld, now %lld)",
		         (long long)nb, (long long)na, (long long)now);
		rc = -EKEYEXPIRED;
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_free(leaf);
	X509_free(ca);
	return rc;
}
