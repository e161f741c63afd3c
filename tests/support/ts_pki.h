/*
 * ts_pki.h - throwaway certificates for tests, demos and benchmarks
 * (OpenSSL, EC P-256, SHA-256). Two ways in, one implementation:
 *
 * 1. ts_ca: a CA object that issues server leaves with chosen SANs and
 *    validity (expired ones too) to PEM files, e.g. for rotation tests:
 *      ts_ca *ca = ts_ca_new("test CA", 2);
 *      ts_ca_write_cert(ca, "ca.pem");
 *      const char *sans[] = {"DNS:localhost", "IP:127.0.0.1"};
 *      ts_ca_issue(ca, "webhook", sans, 2, 1, "tls.crt", "tls.key");
 *
 * 2. ts_pki: a ready-made set in a fresh temporary directory: a CA, a
 *    server certificate for 127.0.0.1/::1/localhost, a client certificate
 *    (clientAuth, for kubeconfig client-certificate tests) and a second,
 *    unrelated CA (verification-failure tests), every PEM both in memory
 *    (kubeconfig *-data fields, libmicrohttpd's in-memory options) and as a
 *    file. Valid from an hour ago for a day.
 *
 * Every call returns 0 or -errno (-EINVAL for a malformed SAN, -EIO for an
 * OpenSSL failure or a file that cannot be written); ts_ca_new returns NULL
 * on failure. Keys are written with mode 0600.
 * Thread-safety: a ts_ca may be used from one thread at a time; a ts_pki is
 * created and destroyed from one thread and read-only in between.
 * Ownership: ts_ca_free frees the CA and its key; ts_pki_destroy frees the
 * strings and removes the directory with every file in it (tests may add
 * their own files there: kubeconfigs, tokens).
 */
#ifndef TS_PKI_H
#define TS_PKI_H

#include <stddef.h>

typedef struct ts_ca ts_ca;

/* A self-signed CA (basicConstraints CA:TRUE, keyCertSign), valid from an
 * hour ago for `valid_days`. */
ts_ca *ts_ca_new(const char *common_name, int valid_days);
void ts_ca_free(ts_ca *ca);
int ts_ca_write_cert(const ts_ca *ca, const char *path);

/* A server leaf (serverAuth) for `cn` with subjectAltNames given as
 * "DNS:name" or "IP:address" (IPv4 or IPv6), signed by `ca`, valid from an
 * hour ago for `valid_days` (a negative value makes an expired one). A
 * fresh random serial each time, so rotations are distinguishable. */
int ts_ca_issue(const ts_ca *ca, const char *cn, const char *const *sans, size_t n_sans,
                int valid_days, const char *cert_path, const char *key_path);

/* Writes `n` random bytes as a file: a "certificate" no parser accepts. */
int ts_write_garbage(const char *path, size_t n);

typedef struct ts_pki {
	char dir[256]; /* temporary directory holding the files below */
	char *ca_pem, *server_cert_pem, *server_key_pem, *client_cert_pem, *client_key_pem;
	char ca_file[320], server_cert_file[320], server_key_file[320], client_cert_file[320],
	    client_key_file[320];
	/* A second, unrelated CA: a client trusting only it must refuse. */
	char *other_ca_pem;
	char other_ca_file[320];
} ts_pki;

/* client_cn: the client certificate's common name (the user name);
 * NULL means "test-user". On failure `err` says what failed and nothing is
 * left behind. */
int ts_pki_create(ts_pki *p, const char *client_cn, char *err, size_t errlen);
void ts_pki_destroy(ts_pki *p);

/* Writes `data` to `dir`/`name` (mode 0600); the path goes to out. */
int ts_write_file(const char *dir, const char *name, const char *data, char *out, size_t outlen);

#endif
