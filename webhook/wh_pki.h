/*
 * wh_pki.h - the certificates of self-managed TLS (issue 5), with OpenSSL:
 * a self-signed CA, a server leaf it signs for a Service's DNS names, and
 * the checks the certificate manager runs on what it reads back from the
 * API (a PEM bundle split into certificates, a key that matches a
 * certificate, a leaf that chains to a CA and covers the names).
 *
 * Keys are EC P-256 (the default: small, fast handshakes, accepted by every
 * Kubernetes version) or RSA 2048/3072/4096. Signatures are SHA-256. Every
 * PEM string is NUL-terminated and malloc'd; private keys are wiped before
 * they are freed (wh_pki_pair_free).
 *
 * Times are Unix seconds passed in by the caller, so tests control them.
 * A certificate's notBefore is backdated by min(WH_PKI_MAX_BACKDATE_SECONDS,
 * validity/10): a replica or API server whose clock runs slightly behind
 * must not see a brand-new certificate as "not yet valid".
 *
 * Thread-safety: every function is reentrant (OpenSSL 3 is thread-safe).
 * Ownership: the caller frees pairs and bundles it was handed.
 */
#ifndef WH_PKI_H
#define WH_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_limits.h"

#define WH_PKI_MAX_BACKDATE_SECONDS 300
/* Bounds on what is read back from a Secret (untrusted: anyone with update
 * rights on it could have written it). */
#define WH_PKI_MAX_BUNDLE_CERTS 8u
#define WH_PKI_MAX_PEM_BYTES    (64u * 1024u)

typedef enum wh_pki_key_type {
	WH_PKI_EC_P256 = 0,
	WH_PKI_RSA_2048,
	WH_PKI_RSA_3072,
	WH_PKI_RSA_4096,
} wh_pki_key_type;

/* "ecdsa-p256", "rsa-2048", "rsa-3072", "rsa-4096"; -EINVAL otherwise. */
int wh_pki_key_type_parse(const char *name, wh_pki_key_type *out);
const char *wh_pki_key_type_name(wh_pki_key_type t);

typedef struct wh_pki_pair {
	char *cert_pem;
	char *key_pem;
} wh_pki_pair;

void wh_pki_pair_free(wh_pki_pair *p);

/* A self-signed CA (CA:TRUE, pathlen 0, keyCertSign) named `cn`, valid
 * from about `now` for `validity_s` seconds. */
int wh_pki_make_ca(const char *cn, wh_pki_key_type kt, int64_t now, int64_t validity_s,
                   wh_pki_pair *out, char *err, size_t errlen);
/* A serverAuth leaf for `dns[0]` with all of `dns` as DNS SANs, signed by
 * `ca` (its cert and key PEM); notAfter never past the CA's own. */
int wh_pki_issue_leaf(const wh_pki_pair *ca, const char *const *dns, size_t n_dns,
                      wh_pki_key_type kt, int64_t now, int64_t validity_s, wh_pki_pair *out,
                      char *err, size_t errlen);

typedef struct wh_pki_cert {
	char *pem; /* this one certificate */
	int64_t not_before, not_after;
	bool is_ca;
	unsigned char sha256[32]; /* of the DER: identity for comparisons */
} wh_pki_cert;

typedef struct wh_pki_bundle {
	wh_pki_cert certs[WH_PKI_MAX_BUNDLE_CERTS];
	size_t n;
} wh_pki_bundle;

/* Splits PEM text into certificates (at least one, at most
 * WH_PKI_MAX_BUNDLE_CERTS, nothing but certificates and whitespace).
 * -EINVAL with `err` for garbage, an empty input, too many, or text over
 * WH_PKI_MAX_PEM_BYTES. */
int wh_pki_bundle_parse(const char *pem, size_t len, wh_pki_bundle *out, char *err, size_t errlen);
void wh_pki_bundle_free(wh_pki_bundle *b);
/* The bundle as PEM text (certificates in order); NULL on allocation
 * failure. */
char *wh_pki_bundle_pem(const wh_pki_bundle *b);
/* Index of the certificate with that fingerprint, or -1. */
int wh_pki_bundle_find(const wh_pki_bundle *b, const unsigned char sha256[32]);

/* 0 when `key_pem` is a private key (EC P-256 or RSA >= 2048) whose public
 * half is the certificate's; -EINVAL with `err` otherwise. */
int wh_pki_key_matches(const char *cert_pem, const char *key_pem, char *err, size_t errlen);
/* 0 when `leaf_pem` is signed by `ca_pem`, is a serverAuth leaf covering
 * every name in `dns`, and is valid at `now`. -EINVAL (or -EKEYEXPIRED
 * for a leaf outside its validity) with `err` otherwise. */
int wh_pki_verify_leaf(const char *leaf_pem, const char *ca_pem, const char *const *dns,
                       size_t n_dns, int64_t now, char *err, size_t errlen);

#endif
