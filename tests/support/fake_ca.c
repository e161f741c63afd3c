/* fake_ca.c - see fake_ca.h. OpenSSL 3 builds the keys and certificates. */
#include "fake_ca.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* The BIO's bytes are not NUL-terminated: copy them by length. */
static char *copy_mem(const char *p, long n)
{
	char *out = malloc((size_t)n + 1);
	if (out) {
		memcpy(out, p, (size_t)n);
		out[n] = '\0';
	}
	return out;
}

static char *pem_of_cert(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && PEM_write_bio_X509(b, x)) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		out = copy_mem(p, n);
	}
	BIO_free(b);
	return out;
}

static char *pem_of_key(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		out = copy_mem(p, n);
	}
	BIO_free(b);
	return out;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* A certificate for `key`, signed by issuer/issuer_key (self-signed when
 * issuer is NULL). kind: 0 CA, 1 server, 2 client. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int kind,
                       long serial)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509 *iss = issuer ? issuer : x;
	int rc = 0;
	if (kind == 0) {
		rc |= add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
		rc |= add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
		rc |= add_ext(x, iss, NID_subject_key_identifier, "hash");
	} else {
		rc |= add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
		rc |= add_ext(x, iss, NID_key_usage, "critical,digitalSignature");
		rc |= add_ext(x, iss, NID_ext_key_usage, kind == 1 ? "serverAuth" : "clientAuth");
		rc |= add_ext(x, iss, NID_authority_key_identifier, "keyid");
		if (kind == 1)
			rc |= add_ext(x, iss, NID_subject_alt_name,
			              "IP:127.0.0.1,IP:::1,DNS:localhost");
	}
	if (rc || !X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

int fake_ca_write_file(const char *dir, const char *name, const char *data, char *out,
                       size_t outlen)
{
	snprintf(out, outlen, "%s/%s", dir, name);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
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
	close(fd);
	return 0;
}

int fake_ca_create(fake_ca *ca, const char *client_cn, char *err, size_t errlen)
{
	memset(ca, 0, sizeof *ca);
	EVP_PKEY *cak = NULL, *sk = NULL, *ck = NULL, *ok = NULL;
	X509 *cac = NULL, *sc = NULL, *cc = NULL, *oc = NULL;
	int rc = -EIO;
	snprintf(ca->dir, sizeof ca->dir, "/tmp/cf-fakeca-XXXXXX");
	if (!mkdtemp(ca->dir)) {
		rc = -errno;
		snprintf(err, errlen, "mkdtemp: %s", strerror(errno));
		ca->dir[0] = '\0';
		goto fail;
	}
	cak = EVP_EC_gen("P-256");
	sk = EVP_EC_gen("P-256");
	ck = EVP_EC_gen("P-256");
	ok = EVP_EC_gen("P-256");
	if (!cak || !sk || !ck || !ok) {
		snprintf(err, errlen, "key generation failed");
		goto fail;
	}
	cac = make_cert(cak, "codeframe test CA", NULL, NULL, 0, 1);
	oc = make_cert(ok, "unrelated test CA", NULL, NULL, 0, 2);
	sc = cac ? make_cert(sk, "fake-apiserver", cac, cak, 1, 3) : NULL;
	cc = cac ? make_cert(ck, client_cn ? client_cn : "test-user", cac, cak, 2, 4) : NULL;
	if (!cac || !oc || !sc || !cc) {
		snprintf(err, errlen, "certificate generation failed");
		goto fail;
	}
	ca->ca_pem = pem_of_cert(cac);
	ca->other_ca_pem = pem_of_cert(oc);
	ca->server_cert_pem = pem_of_cert(sc);
	ca->server_key_pem = pem_of_key(sk);
	ca->client_cert_pem = pem_of_cert(cc);
	ca->client_key_pem = pem_of_key(ck);
	if (!ca->ca_pem || !ca->other_ca_pem || !ca->server_cert_pem || !ca->server_key_pem ||
	    !ca->client_cert_pem || !ca->client_key_pem) {
		snprintf(err, errlen, "PEM encoding failed");
		goto fail;
	}
	if ((rc = fake_ca_write_file(ca->dir, "ca.crt", ca->ca_pem, ca->ca_file,
	                             sizeof ca->ca_file)) ||
	    (rc = fake_ca_write_file(ca->dir, "other-ca.crt", ca->other_ca_pem, ca->other_ca_file,
	                             sizeof ca->other_ca_file)) ||
	    (rc = fake_ca_write_file(ca->dir, "server.crt", ca->server_cert_pem,
	                             ca->server_cert_file, sizeof ca->server_cert_file)) ||
	    (rc = fake_ca_write_file(ca->dir, "server.key", ca->server_key_pem, ca->server_key_file,
	                             sizeof ca->server_key_file)) ||
	    (rc = fake_ca_write_file(ca->dir, "client.crt", ca->client_cert_pem,
	                             ca->client_cert_file, sizeof ca->client_cert_file)) ||
	    (rc = fake_ca_write_file(ca->dir, "client.key", ca->client_key_pem, ca->client_key_file,
	                             sizeof ca->client_key_file))) {
		snprintf(err, errlen, "writing certificate files: %s", strerror(-rc));
		goto fail;
	}
	rc = 0;
	goto out;
fail:
	fake_ca_destroy(ca);
	if (!rc)
		rc = -EIO;
out:
	EVP_PKEY_free(cak);
	EVP_PKEY_free(sk);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(ok);
	X509_free(cac);
	X509_free(sc);
	X509_free(cc);
	X509_free(oc);
	return rc;
}

void fake_ca_destroy(fake_ca *ca)
{
	const char *files[] = {ca->ca_file,         ca->other_ca_file,    ca->server_cert_file,
	                       ca->server_key_file, ca->client_cert_file, ca->client_key_file};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		if (files[i][0])
			unlink(files[i]);
	/* Tests put kubeconfigs and tokens next to the certificates. */
	DIR *d = ca->dir[0] ? opendir(ca->dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[600];
		snprintf(p, sizeof p, "%s/%s", ca->dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	if (ca->dir[0])
		rmdir(ca->dir);
	free(ca->ca_pem);
	free(ca->other_ca_pem);
	free(ca->server_cert_pem);
	free(ca->server_key_pem);
	free(ca->client_cert_pem);
	free(ca->client_key_pem);
	memset(ca, 0, sizeof *ca);
}
