/*
 * ts_pki.h - throwaway certificates for tests, demos and benchmarks: a CA
 * and leaf certificates it signs (OpenSSL, EC P-256, SHA-256), written as
 * PEM files.
 *
 * Typical use:
 *   ts_ca *ca = ts_ca_new("test CA");
 *   ts_ca_write_cert(ca, "ca.pem");
 *   const char *sans[] = {"DNS:localhost", "IP:127.0.0.1"};
 *   ts_ca_issue(ca, "webhook", sans, 2, 1, "tls.crt", "tls.key");
 *
 * Every call returns 0 or -errno (-EINVAL for a malformed SAN, -EIO for an
 * OpenSSL failure or a file that cannot be written); constructors return
 * NULL on failure. Keys are written with mode 0600.
 * Thread-safety: a ts_ca may be used from one thread at a time.
 * Ownership: ts_ca_free frees the CA and its key.
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

#endif
