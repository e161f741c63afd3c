/*
 * wh_http.h - the HTTP(S) front end, the only user of libmicrohttpd.
 *
 * One HTTPS listener (TLS 1.2/1.3 only, certificate from a wh_tls_store
 * through MHD_OPTION_HTTPS_CERT_CALLBACK so it can rotate; `threads` epoll
 * threads sharing the listening socket; keep-alive; a connection limit and an idle timeout) serves
 * POST /validate and GET /healthz, /readyz, /metrics. An optional
 * plain-HTTP listener serves only the three GET endpoints, for kubelet
 * probes and scrapers that do not speak TLS.
 *
 * Request rules, decided here so the handlers only see well-formed calls:
 * unknown path 404; wrong method 405 with Allow; a /validate body over the
 * limit 413 - from Content-Length on the header-only call, before any body
 * byte is read (so an `Expect: 100-continue` client gets the 413 instead
 * of a 100), and from the accumulated size for chunked bodies (the excess
 * is discarded, then 413; past CF_MAX_HTTP_DISCARD_BYTES the connection
 * is closed).
 *
 * TLS credential lifetime: every connection holds a reference to the
 * credential its handshake was given, dropped when the connection closes.
 * GnuTLS's certificate callback has no closure argument, so the mapping
 * from session to connection is process-wide: at most one HTTPS server
 * per process.
 *
 * Thread-safety: handlers run on the epoll threads concurrently and
 * must be thread-safe. start/drain/stop are called from one thread.
 * Ownership: the server does not own the wh_tls_store (it must outlive
 * the server); handler replies hand their body to the server.
 */
#ifndef WH_HTTP_H
#define WH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "wh_tls.h"

typedef enum wh_http_endpoint {
	WH_HTTP_HEALTHZ = 0,
	WH_HTTP_READYZ = 1,
	WH_HTTP_METRICS = 2,
} wh_http_endpoint;

typedef struct wh_http_reply {
	unsigned status; /* HTTP status code */
	char *body;      /* malloc'd, taken over by the server (may be NULL) */
	size_t len;
	const char *content_type; /* static string */
} wh_http_reply;

typedef struct wh_http_handlers {
	void *ctx;
	/* POST /validate with the whole body (NUL-terminated at len).
	 * start_ns: CLOCK_MONOTONIC when the request's headers arrived. */
	void (*validate)(void *ctx, const char *body, size_t len, uint64_t start_ns,
	                 wh_http_reply *out);
	/* GET /healthz, /readyz, /metrics. */
	void (*probe)(void *ctx, wh_http_endpoint ep, wh_http_reply *out);
	/* A request the server answered itself with an error status
	 * (404, 405, 413) or lost (client gone mid-request: status 0). */
	void (*rejected)(void *ctx, unsigned status);
	/* A libmicrohttpd diagnostic, one line. May be NULL. */
	void (*log)(void *ctx, const char *line);
} wh_http_handlers;

typedef struct wh_http_options {
	const char *listen;       /* "ADDR:PORT", "[V6]:PORT", ":PORT"; port 0 = any */
	const char *probe_listen; /* NULL or "" = no plain-HTTP listener */
	wh_tls_store *tls;        /* required */
	unsigned threads;         /* epoll threads, >= 1 */
	unsigned connection_limit;
	unsigned connection_timeout; /* seconds, idle and handshake */
	size_t max_body;             /* bytes accepted on /validate */
} wh_http_options;

typedef struct wh_http_server wh_http_server;

/* Binds and starts. NULL with `err` (bad address, port in use, TLS setup
 * failure, a second HTTPS server in this process). */
wh_http_server *wh_http_start(const wh_http_options *opt, const wh_http_handlers *h, char *err,
                              size_t errlen);
/* The bound ports (useful with port 0); 0 when there is no such listener. */
unsigned wh_http_port(const wh_http_server *s);
unsigned wh_http_probe_port(const wh_http_server *s);
/* Requests started and not yet completed. */
unsigned wh_http_inflight(const wh_http_server *s);
/* Stops accepting new connections (listen sockets closed), then waits up
 * to timeout_ms for in-flight requests to finish; requests on kept-alive
 * connections are still served meanwhile. Returns how many were still in
 * flight at the deadline. */
unsigned wh_http_drain(wh_http_server *s, unsigned timeout_ms);
/* Closes every connection, joins the threads, frees. */
void wh_http_stop(wh_http_server *s);

#endif
