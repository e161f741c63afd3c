/*
 * ts_https.h - HTTPS clients for integration tests.
 *
 * ts_https_do: one request with libcurl (OpenSSL): custom CA, SNI and
 * certificate name through CURLOPT_RESOLVE (so "webhook.ns.svc" can be
 * asked for on 127.0.0.1), a raw body, extra headers, optional chunked
 * upload, and the server certificate's subject/serial for rotation tests.
 * A NULL ca_file means plain HTTP.
 *
 * ts_tls_*: a raw TLS connection (OpenSSL) for what libcurl cannot do on
 * purpose: send half a body and hang up, stall mid-request, keep one
 * connection open across a server event.
 *
 * Functions return 0 or -errno (-EIO with `err` filled for a curl or TLS
 * failure). Thread-safety: each call/connection is independent; call
 * ts_https_global_init once before threads. Ownership: responses and
 * connections are freed with their _free/_close functions.
 */
#ifndef TS_HTTPS_H
#define TS_HTTPS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ts_http_req {
	const char *method; /* "GET", "POST", ...; default GET, POST when body */
	const char *host;   /* name used for SNI and verification; default 127.0.0.1 */
	unsigned port;
	const char *path; /* "/validate?timeout=10s" */
	const char *body;
	size_t body_len;
	const char *const *headers; /* "Name: value" */
	size_t n_headers;
	const char *ca_file; /* NULL: plain HTTP */
	bool chunked;        /* send the body with Transfer-Encoding: chunked */
	bool expect_100;     /* send Expect: 100-continue (curl waits for 100) */
	long timeout_ms;     /* whole transfer; default 10000 */
	const char *tls_max; /* "1.1", "1.2", NULL: no cap (for refusal tests) */
} ts_http_req;

typedef struct ts_http_resp {
	long status; /* 0 when no response */
	char *body;  /* NUL-terminated */
	size_t len;
	char *headers;       /* raw response header block(s) */
	char subject[512];   /* server certificate subject ("" for HTTP) */
	char serial[128];    /* server certificate serial ("" for HTTP) */
	double upload_bytes; /* body bytes curl sent */
} ts_http_resp;

void ts_https_global_init(void);
int ts_https_do(const ts_http_req *req, ts_http_resp *out, char *err, size_t errlen);
void ts_http_resp_free(ts_http_resp *r);

typedef struct ts_tls ts_tls;
/* Connects to 127.0.0.1:port with SNI `host`, verifying against ca_file. */
ts_tls *ts_tls_connect(unsigned port, const char *host, const char *ca_file, char *err,
                       size_t errlen);
/* The same on a socket already connected (taken over, closed with t). */
ts_tls *ts_tls_adopt(int fd, const char *host, const char *ca_file, char *err, size_t errlen);
int ts_tls_write(ts_tls *t, const void *data, size_t n);
/* Reads until the peer closes, `n` bytes arrive, or timeout_ms passes;
 * returns bytes read (>= 0) or -errno. */
long ts_tls_read(ts_tls *t, char *buf, size_t n, unsigned timeout_ms);
/* Whether the peer closed the connection within timeout_ms. */
bool ts_tls_peer_closed(ts_tls *t, unsigned timeout_ms);
/* Closes abruptly (no close_notify): a client hanging up. */
void ts_tls_close(ts_tls *t);

/* A plain TCP connection to 127.0.0.1:port that never speaks (a silent
 * client); returns the fd or -errno. */
int ts_tcp_connect(unsigned port);
/* Whether the peer closed fd within timeout_ms. */
bool ts_tcp_peer_closed(int fd, unsigned timeout_ms);

#endif
