/*
 * wh_tls.h - the serving certificate: loading a PEM chain and key into
 * GnuTLS credentials, noticing when the files change, and keeping every
 * credential alive while a TLS session may still use it.
 *
 * Change detection: each poll stats the certificate and key paths, both
 * the link itself (lstat) and what it resolves to (stat, realpath), so an
 * in-place rewrite, a rename over the file, and a Kubernetes Secret
 * volume's `..data` symlink swap are all seen. A changed pair is loaded
 * completely (chain parsed, key parsed, key matches the leaf) before it
 * replaces the current one; a broken pair keeps the current credential,
 * and the same broken state is reported once, not on every poll.
 *
 * Lifetime (DESIGN.md "Facts"): GnuTLS does not copy what a certificate
 * callback returns, and a session keeps pointing at it until it is
 * deinitialised. A credential is therefore reference-counted: the store
 * holds one reference for the current credential, and the server takes
 * one per connection that was handed it (wh_http drops it when the
 * connection closes).
 *
 * Two sources: PEM files (above), or PEM text in memory handed over by the
 * self-managed certificate manager (wh_certmgr.h), which reads it from a
 * Secret through the API. Both share the credential and its refcounting.
 *
 * Thread-safety: wh_tls_store_poll runs on one thread (the main loop);
 * acquire and the cred accessors may run on any thread; ref/unref are
 * atomic. Ownership: the store owns its current reference; acquire
 * returns a new reference the caller drops with wh_tls_cred_unref.
 */
#ifndef WH_TLS_H
#define WH_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

typedef struct wh_tls_cred wh_tls_cred;
typedef struct wh_tls_store wh_tls_store;

/* Loads a PEM certificate chain (leaf first, at most
 * CF_MAX_TLS_CHAIN_CERTS) and its PEM private key. NULL with `err` set
 * naming the file and problem (unreadable, no certificate, bad key, key
 * does not match the certificate). */
wh_tls_cred *wh_tls_cred_load(const char *cert_path, const char *key_path, char *err,
                              size_t errlen);
/* The same from PEM text in memory (self-managed TLS reads it from a
 * Secret); messages say "certificate"/"key" instead of file names. */
wh_tls_cred *wh_tls_cred_from_pem(const char *cert_pem, size_t cert_len, const char *key_pem,
                                  size_t key_len, char *err, size_t errlen);
wh_tls_cred *wh_tls_cred_ref(wh_tls_cred *c);
void wh_tls_cred_unref(wh_tls_cred *c);
/* The chain and key as GnuTLS wants them from a certificate callback. */
gnutls_pcert_st *wh_tls_cred_pcerts(wh_tls_cred *c, unsigned *n);
gnutls_privkey_t wh_tls_cred_key(wh_tls_cred *c);
/* The leaf's notAfter as Unix seconds. */
int64_t wh_tls_cred_not_after(const wh_tls_cred *c);

/* A store with the pair loaded; NULL with `err` when the first load
 * fails (a server must not start without a certificate). */
wh_tls_store *wh_tls_store_new(const char *cert_path, const char *key_path, char *err,
                               size_t errlen);
/* The memory source: a store with no credential yet (acquire returns
 * NULL and handshakes fail until the first wh_tls_store_set_pem), whose
 * credential is replaced by set_pem instead of by polling files (poll
 * returns 0). NULL on allocation failure. */
wh_tls_store *wh_tls_store_new_memory(void);
/* Loads the pair completely, then makes it current (the previous one lives
 * on while connections hold it). -EINVAL with `err` for a broken pair, the
 * current credential unchanged. Any thread. */
int wh_tls_store_set_pem(wh_tls_store *s, const char *cert_pem, size_t cert_len,
                         const char *key_pem, size_t key_len, char *err, size_t errlen);
bool wh_tls_store_has_cred(wh_tls_store *s);
void wh_tls_store_free(wh_tls_store *s);
/* Checks the files: 0 unchanged, 1 reloaded (the new credential is
 * current), -EAGAIN a change was seen but the new pair is broken (the old
 * credential stays; `err` says why; returned once per broken state, later
 * polls of the same state return 0). */
int wh_tls_store_poll(wh_tls_store *s, char *err, size_t errlen);
/* A reference to the current credential (never NULL for a file store;
 * NULL for a memory store that was not set yet). */
wh_tls_cred *wh_tls_store_acquire(wh_tls_store *s);
int64_t wh_tls_store_not_after(wh_tls_store *s);
/* Successful reloads since creation (for tests and metrics). */
unsigned wh_tls_store_generation(wh_tls_store *s);

#endif
