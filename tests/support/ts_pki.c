/* ts_pki.c - see ts_pki.h. Every certificate, file-based or in a ts_pki
 * set, comes from the same two builders (ts_ca_new, issue_pem). */
#include "ts_pki.h"

#include <dirent.h>
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

/* PEM text of a certificate (x) or a private key (k), NUL-terminated. */
static char *pem_of(X509 *x, EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && (x ? PEM_write_bio_X509(b, x)
	            : PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL))) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		/* The BIO's bytes are not NUL-terminated: copy them by length. */
		out = n >= 0 ? malloc((size_t)n + 1) : NULL;
		if (out) {
			memcpy(out, p, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

static int write_text(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	size_t n = strlen(data), off = 0;
	while (off < n) {
		ssize_t w = write(fd, data + off, n - off);
		if (w < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		off += (size_t)w;
	}
	return close(fd) == 0 ? 0 : -errno;
}

int ts_ca_write_cert(const ts_ca *ca, const char *path)
{
	char *pem = pem_of(ca->cert, NULL);
	int rc = pem ? write_text(path, pem, 0644) : -EIO;
	free(pem);
	return rc;
}

/* A leaf for `cn` signed by `ca`, for `usage` ("serverAuth" or
 * "clientAuth"), with the SANs (if any), as PEM in *cert_pem / *key_pem. */
static int issue_pem(const ts_ca *ca, const char *cn, const char *usage, const char *const *sans,
                     size_t n_sans, int valid_days, char **cert_pem, char **key_pem)
{
	int rc = -EIO;
	X509 *x = NULL;
	char *san = NULL;
	*cert_pem = *key_pem = NULL;
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
	size_t off = 0;
	for (size_t i = 0; i < n_sans; i++)
		off += (size_t)snprintf(san + off, total - off, "%s%s", i ? "," : "", sans[i]);
	if (add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, ca->cert, NID_ext_key_usage, usage) ||
	    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid") ||
	    (n_sans && add_ext(x, ca->cert, NID_subject_alt_name, san))) {
		rc = -EINVAL;
		goto out;
	}
	if (!X509_sign(x, ca->key, EVP_sha256()))
		goto out;
	*cert_pem = pem_of(x, NULL);
	*key_pem = pem_of(NULL, key);
	if (*cert_pem && *key_pem) {
		rc = 0;
	} else {
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
	}
out:
	free(san);
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

int ts_ca_issue(const ts_ca *ca, const char *cn, const char *const *sans, size_t n_sans,
                int valid_days, const char *cert_path, const char *key_path)
{
	char *cert, *key;
	int rc = issue_pem(ca, cn, "serverAuth", sans, n_sans, valid_days, &cert, &key);
	if (!rc)
		rc = write_text(cert_path, cert, 0644);
	if (!rc)
		rc = write_text(key_path, key, 0600);
	free(cert);
	free(key);
	return rc;
}

int ts_write_garbage(const char *path, size_t n)
{
	unsigned char buf[256];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -EIO;
	}
	while (n) {
		size_t k = n < sizeof buf ? n : sizeof buf;
		RAND_bytes(buf, (int)k);
		fwrite(buf, 1, k, f);
		n -= k;
	}
	return fclose(f) == 0 ? 0 : -EIO;
}

int ts_write_file(const char *dir, const char *name, const char *data, char *out, size_t outlen)
{
	if ((size_t)snprintf(out, outlen, "%s/%s", dir, name) >= outlen)
		return -ENAMETOOLONG;
	return write_text(out, data, 0600);
}

int ts_pki_create(ts_pki *p, const char *client_cn, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	ts_ca *ca = NULL, *other = NULL;
	int rc = -EIO;
	snprintf(p->dir, sizeof p->dir, "/tmp/cf-testpki-XXXXXX");
	if (!mkdtemp(p->dir)) {
		rc = -errno;
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		p->dir[0] = '\0';
		goto fail;
	}
	ca = ts_ca_new("codeframe test CA", 1);
	other = ts_ca_new("unrelated test CA", 1);
	const char *server_sans[] = {"IP:127.0.0.1", "IP:::1", "DNS:localhost"};
	if (!ca || !other ||
	    (rc = issue_pem(ca, "fake-apiserver", "serverAuth", server_sans, 3, 1,
	                    &p->server_cert_pem, &p->server_key_pem)) ||
	    (rc = issue_pem(ca, client_cn ? client_cn : "test-user", "clientAuth", NULL, 0, 1,
	                    &p->client_cert_pem, &p->client_key_pem))) {
		rc = -EIO;
		snprintf(err, errlen, "certificate generation failed");
		goto fail;
	}
	p->ca_pem = pem_of(ca->cert, NULL);
	p->other_ca_pem = pem_of(other->cert, NULL);
	if (!p->ca_pem || !p->other_ca_pem) {
		rc = -ENOMEM;
		snprintf(err, errlen, "PEM encoding failed");
		goto fail;
	}
	if ((rc = ts_write_file(p->dir, "ca.crt", p->ca_pem, p->ca_file, sizeof p->ca_file)) ||
	    (rc = ts_write_file(p->dir, "other-ca.crt", p->other_ca_pem, p->other_ca_file,
	                        sizeof p->other_ca_file)) ||
	    (rc = ts_write_file(p->dir, "server.crt", p->server_cert_pem, p->server_cert_file,
	                        sizeof p->server_cert_file)) ||
	    (rc = ts_write_file(p->dir, "server.key", p->server_key_pem, p->server_key_file,
	                        sizeof p->server_key_file)) ||
	    (rc = ts_write_file(p->dir, "client.crt", p->client_cert_pem, p->client_cert_file,
	                        sizeof p->client_cert_file)) ||
	    (rc = ts_write_file(p->dir, "client.key", p->client_key_pem, p->client_key_file,
	                        sizeof p->client_key_file))) {
		snprintf(err, errlen, "writing certificate files: %s", strerror(-rc));
		goto fail;
	}
	ts_ca_free(ca);
	ts_ca_free(other);
	return 0;
fail:
	ts_ca_free(ca);
	ts_ca_free(other);
	ts_pki_destroy(p);
	return rc;
}

void ts_pki_destroy(ts_pki *p)
{
	/* Every file in the directory: tests put kubeconfigs and tokens next
	 * to the certificates. */
	DIR *d = p->dir[0] ? opendir(p->dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[600];
		snprintf(path, sizeof path, "%s/%s", p->dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	if (p->dir[0])
		rmdir(p->dir);
	free(p->ca_pem);
	free(p->other_ca_pem);
	free(p->server_cert_pem);
	free(p->server_key_pem);
	free(p->client_cert_pem);
	free(p->client_key_pem);
	memset(p, 0, sizeof *p);
}
