/* ts_pki.c - see ts_pki.h. */
#include "ts_pki.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct ts_ca {
	EVP_PKEY *key;
	X509 *cert;
};

static EVP_PKEY *new_p256(void)
{
	return EVP_EC_gen("P-256");
}

static int set_serial(X509 *x)
{
	unsigned char buf[16];
	if (RAND_bytes(buf, sizeof buf) != 1)
		return -EIO;
	buf[0] &= 0x7f; /* positive */
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

/* A certificate skeleton: version 3, serial, validity, subject CN. */
static X509 *skeleton(const char *cn, int valid_days, EVP_PKEY *key)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	long from = -3600, to = (long)valid_days * 86400L;
	if (valid_days < 0) {
		from = (long)valid_days * 86400L - 3600;
		to = -60;
	}
	X509_NAME *name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || set_serial(x) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), from) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), to) || !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                -1, 0)) {
		X509_free(x);
		return NULL;
	}
	return x;
}

ts_ca *ts_ca_new(const char *common_name, int valid_days)
{
	ts_ca *ca = calloc(1, sizeof *ca);
	if (!ca)
		return NULL;
	ca->key = new_p256();
	if (!ca->key)
		goto fail;
	ca->cert = skeleton(common_name, valid_days, ca->key);
	if (!ca->cert || !X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert)) ||
	    add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE") ||
	    add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash") ||
	    !X509_sign(ca->cert, ca->key, EVP_sha256()))
		goto fail;
	return ca;
fail:
	ts_ca_free(ca);
	return NULL;
}

void ts_ca_free(ts_ca *ca)
{
	if (!ca)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	free(ca);
}

static FILE *open_mode(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return NULL;
	FILE *f = fdopen(fd, "w");
	if (!f)
		close(fd);
	return f;
}

static int write_cert(X509 *x, const char *path)
{
	FILE *f = open_mode(path, 0644);
	if (!f)
		return -errno;
	int ok = PEM_write_X509(f, x);
	return fclose(f) == 0 && ok ? 0 : -EIO;
}

int ts_ca_write_cert(const ts_ca *ca, const char *path)
{
	return write_cert(ca->cert, path);
}

int ts_ca_issue(const ts_ca *ca, const char *cn, const char *const *sans, size_t n_sans,
                int valid_days, const char *cert_path, const char *key_path)
{
	int rc = -EIO;
	X509 *x = NULL;
	char *san = NULL;
	EVP_PKEY *key = new_p256();
	if (!key)
		goto out;
	x = skeleton(cn, valid_days, key);
	if (!x || !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)))
		goto out;
	size_t total = 1;
	for (size_t i = 0; i < n_sans; i++) {
		if (strncmp(sans[i], "DNS:", 4) != 0 && strncmp(sans[i], "IP:", 3) != 0) {
			rc = -EINVAL;
			goto out;
		}
		total += strlen(sans[i]) + 1;
	}
	san = calloc(1, total);
	if (!san)
		goto out;
	for (size_t i = 0; i < n_sans; i++) {
		if (i)
			strncat(san, ",", total - strlen(san) - 1);
		strncat(san, sans[i], total - strlen(san) - 1);
	}
	if (add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth") ||
	    (n_sans && add_ext(x, ca->cert, NID_subject_alt_name, san))) {
		rc = -EINVAL;
		goto out;
	}
	if (!X509_sign(x, ca->key, EVP_sha256()))
		goto out;
	rc = write_cert(x, cert_path);
	if (rc)
		goto out;
	FILE *f = open_mode(key_path, 0600);
	if (!f) {
		rc = -errno;
		goto out;
	}
	int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	rc = fclose(f) == 0 && ok ? 0 : -EIO;
out:
	free(san);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int ts_write_garbage(const char *path, size_t n)
{
	unsigned char buf[256];
	FILE *f = open_mode(path, 0644);
	if (!f)
		return -errno;
	while (n) {
		size_t k = n < sizeof buf ? n : sizeof buf;
		RAND_bytes(buf, (int)k);
		fwrite(buf, 1, k, f);
		n -= k;
	}
	return fclose(f) == 0 ? 0 : -EIO;
}
