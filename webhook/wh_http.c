/* wh_http.c - see wh_http.h. */
#include "wh_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <linux/sockios.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cf_buf.h"
#include "cf_limits.h"

/* Responses up to this size (headers and body) leave as one TLS record:
 * see cork_reply. Well under the 16 KiB a fresh TCP socket may queue, so
 * the single send after the response never meets a full socket buffer
 * unless the client stopped reading. */
#define CORK_MAX_BYTES 8192u
/* Corked bytes sent between two checks that the socket's queue is empty,
 * and what a response's headers are counted as (libmicrohttpd's are under
 * 200 bytes): 4 KiB queued plus an 8 KiB record stay under the 16 KiB. */
#define CORK_UNCHECKED_BYTES 4096u
/* The largest request body buffer a connection keeps for its next request. */
#define SPARE_BODY_MAX_BYTES (64u * 1024u)
#define CORK_HEADER_ESTIMATE 256u
/* How long the thread waits for a client that stopped reading to make
 * room for a corked response before giving the connection up. */
#define CORK_FLUSH_TIMEOUT_MS 200
/* What one recv may read ahead for GnuTLS: a whole request record of the
 * usual size, so its 5-byte header and its body cost one system call. */
#define RECV_AHEAD_BYTES 8192u

/* Per-connection memory for libmicrohttpd (request line, headers, read and
 * write buffers; bodies go to our own buffer). 0.9.75 zeroes the whole of
 * it between two requests on a connection: at its 32 KiB default that was
 * a 32 KiB memset per admission, evicting most of L1. 16 KiB still holds
 * request headers up to about 15 KiB (the API server sends a few hundred
 * bytes; tests: 6 KiB served twice on one connection, 20 KiB gets 431). */
#define CONNECTION_POOL_BYTES (16u * 1024u)

/* TLS 1.2 and 1.3 only, AEAD ciphers only, server's preference order. */
#define TLS_PRIORITIES                                                                             \
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"        \
	"+CHACHA20-POLY1305:%SERVER_PRECEDENCE"

/* Connections are accepted here, by one thread per listener, and handed
 * to libmicrohttpd (MHD_USE_NO_LISTEN_SOCKET + MHD_add_connection) rather
 * than accepted by libmicrohttpd itself: stopping its own accepting needs
 * MHD_quiesce_daemon, which in 0.9.75 races its epoll threads for the same
 * epoll_ctl(EPOLL_CTL_DEL) and aborts the process when it loses ("Failed to
 * remove listen FD from epoll set"). Owning accept() makes draining a
 * plain join-and-close, and lets connections over the limit wait in the
 * kernel's backlog instead of being accepted and closed. */
typedef struct listener {
	struct wh_http_server *srv;
	bool probe;
	struct MHD_Daemon *daemon;
	int fd;      /* the listen socket, -1 once closed */
	int wake_fd; /* eventfd: tells the acceptor to return */
	pthread_t acceptor;
	bool accepting; /* the acceptor thread runs */
	unsigned limit; /* connections; the acceptor waits at the limit */
	unsigned live;  /* atomic: connections libmicrohttpd holds */
	unsigned port;
} listener;

struct wh_http_server {
	wh_http_handlers h;
	wh_tls_store *tls;
	size_t max_body;
	listener main, probe;
	unsigned inflight; /* atomic */
};

typedef enum { R_NONE, R_VALIDATE, R_HEALTHZ, R_READYZ, R_METRICS } route;

typedef struct request {
	route r;
	bool answered; /* a response is queued; discard anything further */
	bool too_big;  /* body over the limit: 413 at its end */
	bool discard;  /* body bytes are counted and dropped */
	size_t discarded;
	unsigned err_status; /* 404/405 decided on the header call, sent later */
	const char *err_msg, *err_allow;
	uint64_t start_ns;
	cf_buf body;
} request;

/* Per-connection state on the HTTPS listener: the credential its
 * handshake was given. Linked into the session table by session. */
typedef struct conn_ctx {
	struct conn_ctx *next;
	gnutls_session_t session;
	wh_http_server *srv;
	wh_tls_cred *cred;
	int fd;              /* the connection's socket */
	bool corked;         /* the response being sent is held in GnuTLS's cork buffer */
	size_t unchecked;    /* bytes corked since SIOCOUTQ last said empty (cork_reply) */
	cf_buf spare_body;   /* the last request's body buffer, for the next (body_buffer) */
	bool tcp_uncorked;   /* TCP_CORK cleared once (see uncork_reply) */
	unsigned char *rbuf; /* TLS bytes read ahead (see tls_pull), RECV_AHEAD_BYTES */
	size_t rpos, rlen;
} conn_ctx;

#define SESSION_BUCKETS 1024u
static pthread_mutex_t session_lock = PTHREAD_MUTEX_INITIALIZER;
static conn_ctx *session_table[SESSION_BUCKETS];
static wh_http_server *tls_server; /* the one HTTPS server (see header) */

static size_t session_hash(gnutls_session_t s)
{
	uintptr_t p = (uintptr_t)s;
	return (size_t)((p >> 4) ^ (p >> 14)) % SESSION_BUCKETS;
}

static void session_insert(conn_ctx *c)
{
	size_t b = session_hash(c->session);
	pthread_mutex_lock(&session_lock);
	c->next = session_table[b];
	session_table[b] = c;
	pthread_mutex_unlock(&session_lock);
}

static void session_remove(conn_ctx *c)
{
	size_t b = session_hash(c->session);
	pthread_mutex_lock(&session_lock);
	for (conn_ctx **pp = &session_table[b]; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	pthread_mutex_unlock(&session_lock);
}

static conn_ctx *session_find(gnutls_session_t s)
{
	size_t b = session_hash(s);
	pthread_mutex_lock(&session_lock);
	conn_ctx *c = session_table[b];
	while (c && c->session != s)
		c = c->next;
	pthread_mutex_unlock(&session_lock);
	return c;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* gnutls_certificate_retrieve_function2: runs inside the handshake on
 * the connection's thread. The connection keeps the reference until it
 * closes, because the session keeps pointing at the chain and key. */
static int cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                         const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                         gnutls_pcert_st **pcert, unsigned int *pcert_length,
                         gnutls_privkey_t *pkey)
{
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	conn_ctx *c = session_find(session);
	if (!c)
		return -1;
	if (!c->cred)
		c->cred = wh_tls_store_acquire(c->srv->tls);
	if (!c->cred)
		return -1; /* self-managed TLS before its first certificate */
	unsigned n;
	*pcert = wh_tls_cred_pcerts(c->cred, &n);
	*pcert_length = n;
	*pkey = wh_tls_cred_key(c->cred);
	return 0;
}

/* GnuTLS reads a TLS record with two recv calls (its 5-byte header, then
 * the rest). This pull function reads up to RECV_AHEAD_BYTES at once and
 * serves both from that. It returns EAGAIN only when nothing is held here
 * either, and libmicrohttpd (edge-triggered epoll) keeps reading a
 * connection until it sees EAGAIN, so bytes held here are never
 * forgotten, e.g. a pipelined request read together with the one before. */
static ssize_t tls_pull(gnutls_transport_ptr_t ptr, void *data, size_t len)
{
	conn_ctx *c = ptr;
	if (c->rpos == c->rlen) {
		if (len >= RECV_AHEAD_BYTES || (!c->rbuf && !(c->rbuf = malloc(RECV_AHEAD_BYTES))))
			return recv(c->fd, data, len, 0);
		ssize_t n = recv(c->fd, c->rbuf, RECV_AHEAD_BYTES, 0);
		if (n <= 0)
			return n;
		c->rpos = 0;
		c->rlen = (size_t)n;
	}
	size_t n = c->rlen - c->rpos < len ? c->rlen - c->rpos : len;
	memcpy(data, c->rbuf + c->rpos, n);
	c->rpos += n;
	return (ssize_t)n;
}

/* GnuTLS asks this whether a read would find data (handshake and record
 * timeouts, TLS 1.3 ticket handling). */
static int tls_pull_timeout(gnutls_transport_ptr_t ptr, unsigned int ms)
{
	conn_ctx *c = ptr;
	if (c->rpos < c->rlen)
		return 1;
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int n = poll(&p, 1, ms == GNUTLS_INDEFINITE_TIMEOUT ? -1 : (int)ms);
	return n < 0 ? -1 : n > 0;
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
	listener *l = cls;
	__atomic_add_fetch(&l->live, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1u : -1u,
	                   __ATOMIC_RELEASE);
	if (l->probe)
		return;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		conn_ctx *c = calloc(1, sizeof *c);
		if (!c || !ci || !ci->tls_session) {
			/* The handshake will find no entry and fail cleanly. */
			free(c);
			*socket_context = NULL;
			return;
		}
		c->session = (gnutls_session_t)ci->tls_session;
		c->srv = l->srv;
		const union MHD_ConnectionInfo *fi =
		    MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = fi ? fi->connect_fd : gnutls_transport_get_int(c->session);
		/* Reads through tls_pull; writes keep GnuTLS's own send on the fd. */
		gnutls_transport_set_ptr2(c->session, c, (gnutls_transport_ptr_t)(intptr_t)c->fd);
		gnutls_transport_set_pull_function(c->session, tls_pull);
		gnutls_transport_set_pull_timeout_function(c->session, tls_pull_timeout);
		session_insert(c);
		*socket_context = c;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		conn_ctx *c = *socket_context;
		if (!c)
			return;
		session_remove(c);
		wh_tls_cred_unref(c->cred);
		free(c->rbuf);
		cf_buf_free(&c->spare_body);
		free(c);
		*socket_context = NULL;
	}
}

static conn_ctx *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* libmicrohttpd writes a response's headers and body with two
 * gnutls_record_send calls (it cannot gather them under TLS), which costs
 * two TLS records, two sendmsg calls and two TCP segments per response.
 * Corking the session before the response is queued makes GnuTLS collect
 * both into one record; uncork_reply sends it with one sendmsg once
 * libmicrohttpd has written (into the cork buffer) the whole response. */
static void cork_reply(struct MHD_Connection *conn, size_t body_len)
{
	conn_ctx *c = conn_of(conn);
	if (!c || c->corked || body_len > CORK_MAX_BYTES - 1024u) /* 1 KiB for headers */
		return;
	/* Only when the socket has room for the whole record, so that the
	 * single send cannot block. Asking the kernel (SIOCOUTQ: is
	 * everything sent before gone?) costs a system call, so it is asked
	 * once the responses corked since it last said "empty" add up to
	 * CORK_UNCHECKED_BYTES: until then at most that much can be queued,
	 * and it plus one record fits a fresh TCP socket's buffer. A
	 * pipelining client that is not reading its answers keeps
	 * libmicrohttpd's own flow control. */
	size_t estimate = body_len + CORK_HEADER_ESTIMATE;
	if (c->unchecked + estimate > CORK_UNCHECKED_BYTES) {
		int fd = c->fd, queued = 0;
		if (fd < 0 || ioctl(fd, SIOCOUTQ, &queued) != 0 || queued != 0)
			return;
		c->unchecked = 0;
	}
	c->unchecked += estimate;
	gnutls_record_cork(c->session);
	c->corked = true;
}

/* Called when libmicrohttpd has handed over the last byte of the response,
 * on the connection's thread, before it reads the next request or closes.
 * A small response into a socket the client keeps draining goes out at
 * once; a client that stopped reading gets CORK_FLUSH_TIMEOUT_MS to make
 * room (it is blocking this thread meanwhile), then the connection is shut
 * down: the corked bytes could not be sent later. */
static void uncork_reply(struct MHD_Connection *conn)
{
	conn_ctx *c = conn_of(conn);
	if (!c || !c->corked)
		return;
	c->corked = false;
	uint64_t deadline = 0;
	for (;;) {
		int rc = gnutls_record_uncork(c->session, 0);
		int fd = c->fd;
		if (rc >= 0 && !c->tcp_uncorked && fd >= 0) {
			/* libmicrohttpd sets TCP_CORK for the headers and, on Linux,
			 * pushes with TCP_NODELAY while leaving the cork on, so it
			 * pushed before our record existed and the kernel would hold
			 * the record for up to 200 ms. Clearing the cork pushes it
			 * now; libmicrohttpd believes the socket is still corked and
			 * does not set it again, so this is once per connection. */
			int off = 0;
			setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
			c->tcp_uncorked = true;
		}
		if (rc >= 0 || (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_INTERRUPTED))
			return; /* sent, or the connection is broken and MHD will see it */
		uint64_t now = now_ns();
		if (!deadline)
			deadline = now + (uint64_t)CORK_FLUSH_TIMEOUT_MS * 1000000u;
		if (fd < 0 || now >= deadline) {
			if (fd >= 0)
				shutdown(fd, SHUT_RDWR);
			return;
		}
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		poll(&pfd, 1, (int)((deadline - now) / 1000000u) + 1);
	}
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	listener *l = cls;
	if (!l->probe)
		uncork_reply(connection);
	request *r = *con_cls;
	if (!r)
		return;
	if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->answered && l->srv->h.rejected)
		l->srv->h.rejected(l->srv->h.ctx, 0);
	cf_buf_free(&r->body);
	free(r);
	*con_cls = NULL;
	__atomic_sub_fetch(&l->srv->inflight, 1, __ATOMIC_RELEASE);
}

static enum MHD_Result send_reply(listener *l, struct MHD_Connection *conn, request *r,
                                  wh_http_reply *rep, const char *allow, bool close)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    rep->len, rep->body ? rep->body : (void *)"",
	    rep->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(rep->body);
		return MHD_NO;
	}
	rep->body = NULL;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        rep->content_type ? rep->content_type
	                                          : "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (!l->probe && !close)
		cork_reply(conn, rep->len);
	enum MHD_Result ok = MHD_queue_response(conn, rep->status, resp);
	MHD_destroy_response(resp);
	if (ok == MHD_YES)
		r->answered = true;
	return ok;
}

static enum MHD_Result send_error(listener *l, struct MHD_Connection *conn, request *r,
                                  unsigned status, const char *msg, const char *allow, bool close)
{
	wh_http_reply rep = {.status = status, .content_type = "text/plain; charset=utf-8"};
	size_t n = strlen(msg);
	rep.body = malloc(n + 1);
	if (rep.body) {
		memcpy(rep.body, msg, n);
		rep.body[n] = '\n';
		rep.len = n + 1;
	}
	if (l->srv->h.rejected)
		l->srv->h.rejected(l->srv->h.ctx, status);
	return send_reply(l, conn, r, &rep, allow, close);
}

static route route_of(const char *url, bool probe)
{
	if (strcmp(url, "/healthz") == 0)
		return R_HEALTHZ;
	if (strcmp(url, "/readyz") == 0)
		return R_READYZ;
	if (strcmp(url, "/metrics") == 0)
		return R_METRICS;
	if (!probe && strcmp(url, "/validate") == 0)
		return R_VALIDATE;
	return R_NONE;
}

/* Content-Length as sent; -1 when absent or unparsable (MHD itself
 * rejects a malformed one before we are called). */
static long long content_length(struct MHD_Connection *conn)
{
	const char *v =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!v)
		return -1;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || end == v || *end)
		return -1;
	return n > (unsigned long long)INT64_MAX ? INT64_MAX : (long long)n;
}

/* A request's body buffer comes from its connection when the one before
 * left it there: a keep-alive client's bodies then reuse one allocation
 * instead of a malloc and free of a few KiB per request (which also made
 * glibc consolidate its free lists every time). Buffers past
 * SPARE_BODY_MAX_BYTES are not kept. Both run on the connection's thread. */
static void body_buffer(struct MHD_Connection *conn, cf_buf *out, size_t limit)
{
	conn_ctx *c = conn_of(conn);
	if (c && c->spare_body.data) {
		*out = c->spare_body;
		cf_buf_init(&c->spare_body, 0);
		cf_buf_reset(out);
		out->limit = limit;
		return;
	}
	cf_buf_init(out, limit);
}

static void keep_body_buffer(struct MHD_Connection *conn, cf_buf *body)
{
	conn_ctx *c = conn_of(conn);
	if (c && !c->spare_body.data && body->cap <= SPARE_BODY_MAX_BYTES) {
		c->spare_body = *body;
		cf_buf_init(body, 0);
		return;
	}
	cf_buf_free(body);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	listener *l = cls;
	wh_http_server *srv = l->srv;
	request *r = *con_cls;
	(void)version;
	if (!r) {
		/* The header-only call. Answers are queued on a later call:
		 * libmicrohttpd closes the connection after a response queued on
		 * this one (it cannot know the request is complete), which would
		 * defeat keep-alive. Only a 413 that must beat the body is sent
		 * now. */
		r = calloc(1, sizeof *r);
		if (!r)
			return MHD_NO;
		__atomic_add_fetch(&srv->inflight, 1, __ATOMIC_ACQUIRE);
		*con_cls = r;
		r->start_ns = now_ns();
		r->r = route_of(url, l->probe);
		bool is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		              strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
		if (r->r == R_NONE) {
			r->err_status = MHD_HTTP_NOT_FOUND;
			r->err_msg = "not found";
		} else if (r->r == R_VALIDATE && strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
			r->err_status = MHD_HTTP_METHOD_NOT_ALLOWED;
			r->err_msg = "method not allowed: use POST";
			r->err_allow = "POST";
		} else if (r->r != R_VALIDATE && !is_get) {
			r->err_status = MHD_HTTP_METHOD_NOT_ALLOWED;
			r->err_msg = "method not allowed: use GET";
			r->err_allow = "GET, HEAD";
		}
		if (r->err_status || r->r != R_VALIDATE) {
			r->discard = true; /* any body is read and dropped */
			return MHD_YES;
		}
		long long cl = content_length(conn);
		body_buffer(conn, &r->body, srv->max_body);
		if (cl >= 0 && (unsigned long long)cl > srv->max_body) {
			/* Decided now. A client waiting for "100 Continue" (or one
			 * announcing more than we would ever drain) gets the 413
			 * before sending its body. Any other client is already
			 * sending: its body is drained and discarded first, so the
			 * 413 is not lost to a reset from closing a socket with
			 * unread data. */
			const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
			                                                 MHD_HTTP_HEADER_EXPECT);
			if (expect || (unsigned long long)cl > CF_MAX_HTTP_DISCARD_BYTES)
				return send_error(l, conn, r, MHD_HTTP_CONTENT_TOO_LARGE,
				                  "request body too large", NULL, true);
			r->too_big = r->discard = true;
		}
		return MHD_YES;
	}
	if (r->answered) {
		/* Data after an early 413: ignore it. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (!r->discard) {
			int rc = cf_buf_append(&r->body, upload_data, n);
			if (rc == -E2BIG) {
				r->too_big = r->discard = true;
				cf_buf_free(&r->body);
			} else if (rc) {
				return MHD_NO;
			}
		}
		if (r->discard) {
			r->discarded += n;
			if (r->discarded > CF_MAX_HTTP_DISCARD_BYTES) {
				if (srv->h.rejected)
					srv->h.rejected(srv->h.ctx,
					                r->err_status ? r->err_status
					                              : MHD_HTTP_CONTENT_TOO_LARGE);
				r->answered = true;
				return MHD_NO;
			}
		}
		return MHD_YES;
	}
	if (r->err_status)
		return send_error(l, conn, r, r->err_status, r->err_msg, r->err_allow, false);
	if (r->too_big)
		return send_error(l, conn, r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large",
		                  NULL, true);
	wh_http_reply rep = {.status = 500};
	if (r->r != R_VALIDATE) {
		srv->h.probe(srv->h.ctx,
		             r->r == R_HEALTHZ  ? WH_HTTP_HEALTHZ
		             : r->r == R_READYZ ? WH_HTTP_READYZ
		                                : WH_HTTP_METRICS,
		             &rep);
		return send_reply(l, conn, r, &rep, NULL, false);
	}
	srv->h.validate(srv->h.ctx, r->body.data ? r->body.data : "", r->body.len, r->start_ns,
	                &rep);
	keep_body_buffer(conn, &r->body);
	return send_reply(l, conn, r, &rep, NULL, false);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	listener *l = cls;
	if (!l->srv->h.log)
		return;
	char line[512];
	vsnprintf(line, sizeof line, fmt, ap);
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	l->srv->h.log(l->srv->h.ctx, line);
}

/* Binds "ADDR:PORT" / "[V6]:PORT" / ":PORT" itself, so address errors are
 * ours to word and port 0 works. */
static int bind_listen(const char *addr, int *fd_out, unsigned *port_out, char *err, size_t errlen)
{
	char host[256], port[16];
	const char *colon = strrchr(addr, ':');
	if (!colon || !colon[1] || strlen(colon + 1) >= sizeof port) {
		snprintf(err, errlen, "listen address \"%s\": expected ADDR:PORT", addr);
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - addr);
	const char *h = addr;
	if (hl >= 2 && addr[0] == '[' && addr[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof host) {
		snprintf(err, errlen, "listen address \"%s\": host too long", addr);
		return -EINVAL;
	}
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, sizeof port, "%s", colon + 1);
	for (const char *p = port; *p; p++) {
		if (*p < '0' || *p > '9') {
			snprintf(err, errlen, "listen address \"%s\": bad port", addr);
			return -EINVAL;
		}
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
	                         .ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int g = getaddrinfo(hl ? host : NULL, port, &hints, &res);
	if (g) {
		snprintf(err, errlen, "listen address \"%s\": %s", addr, gai_strerror(g));
		return -EINVAL;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, rc = 0;
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 512) < 0) {
		rc = -errno;
		goto fail;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
		rc = -errno;
		goto fail;
	}
	*port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                           : ((struct sockaddr_in *)&ss)->sin_port);
	*fd_out = fd;
	freeaddrinfo(res);
	return 0;
fail:
	snprintf(err, errlen, "listen on %s: %s", addr, strerror(-rc));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return rc;
}

static void log_line(listener *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(listener *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	mhd_logger(l, fmt, ap);
	va_end(ap);
}

/* Waits up to timeout_ms (-1: forever) for the listen socket to become
 * readable (it is not watched when `full`) or for the wake-up. False when
 * the acceptor must return. */
static bool wait_to_accept(listener *l, bool full, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = l->wake_fd, .events = POLLIN},
	                      {.fd = l->fd, .events = POLLIN}};
	int n = poll(p, full ? 1 : 2, timeout_ms);
	return !(n > 0 && p[0].revents);
}

/* Accepts until the backlog is empty or the limit is reached. A connection
 * counts in `live` only once its epoll thread has taken it up, so the ones
 * handed over in this burst are counted here too. */
static void accept_ready(listener *l)
{
	for (unsigned handed = 0; __atomic_load_n(&l->live, __ATOMIC_ACQUIRE) + handed < l->limit;
	     handed++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int c = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				log_line(l, "accept: %s; retrying in 100 ms", strerror(errno));
				wait_to_accept(l, true, 100);
			}
			return; /* EAGAIN, or a connection that went away (ECONNABORTED) */
		}
		/* libmicrohttpd closes the socket itself when it refuses it. */
		if (MHD_add_connection(l->daemon, c, (struct sockaddr *)&ss, sl) != MHD_YES)
			log_line(l, "connection refused: %s", strerror(errno));
	}
}

static void *accept_loop(void *arg)
{
	listener *l = arg;
	for (;;) {
		bool full = __atomic_load_n(&l->live, __ATOMIC_ACQUIRE) >= l->limit;
		/* At the limit, new clients wait in the backlog; re-check often. */
		if (!wait_to_accept(l, full, full ? 10 : -1))
			return NULL;
		if (!full)
			accept_ready(l);
	}
}

static struct MHD_Daemon *start_daemon(listener *l, unsigned threads, unsigned timeout)
{
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
	                 MHD_USE_NO_LISTEN_SOCKET;
	if (!l->probe)
		flags |= MHD_USE_TLS;
	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)TLS_PRIORITIES},
	    {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)cert_callback},
	    {MHD_OPTION_END, 0, NULL},
	};
	/* libmicrohttpd's own limit is a backstop: the acceptor holds new
	 * connections back at l->limit already. */
	return MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, l, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, l,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, l, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, l, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_POOL_BYTES,
	    MHD_OPTION_CONNECTION_LIMIT, l->limit + threads, MHD_OPTION_CONNECTION_TIMEOUT, timeout,
	    MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_ARRAY,
	    l->probe ? &tls_opts[2] : tls_opts, MHD_OPTION_END);
}

static int start_listener(wh_http_server *srv, listener *l, const char *addr,
                          const wh_http_options *opt, char *err, size_t errlen)
{
	l->srv = srv;
	int rc = bind_listen(addr, &l->fd, &l->port, err, errlen);
	if (rc)
		return rc;
	unsigned threads = l->probe ? 1 : (opt->threads ? opt->threads : 1);
	l->limit = l->probe ? 64 : (opt->connection_limit ? opt->connection_limit : 1024u);
	l->daemon =
	    start_daemon(l, threads, opt->connection_timeout ? opt->connection_timeout : 10u);
	if (!l->daemon) {
		snprintf(err, errlen, "cannot start the %s listener on %s",
		         l->probe ? "probe" : "HTTPS", addr);
		return -EIO;
	}
	l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wake_fd < 0 || (rc = pthread_create(&l->acceptor, NULL, accept_loop, l)) != 0) {
		rc = l->wake_fd < 0 ? -errno : -rc;
		snprintf(err, errlen, "cannot start the %s listener on %s: %s",
		         l->probe ? "probe" : "HTTPS", addr, strerror(-rc));
		return rc;
	}
	l->accepting = true;
	return 0;
}

wh_http_server *wh_http_start(const wh_http_options *opt, const wh_http_handlers *h, char *err,
                              size_t errlen)
{
	if (!opt->tls || !h->validate || !h->probe) {
		snprintf(err, errlen, "HTTP server: TLS store and handlers are required");
		return NULL;
	}
	wh_http_server *srv = calloc(1, sizeof *srv);
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	srv->h = *h;
	srv->tls = opt->tls;
	srv->max_body = opt->max_body ? opt->max_body : CF_MAX_ADMISSION_BODY_BYTES;
	srv->main.fd = srv->probe.fd = -1;
	srv->main.wake_fd = srv->probe.wake_fd = -1;
	pthread_mutex_lock(&session_lock);
	bool taken = tls_server != NULL;
	if (!taken)
		tls_server = srv;
	pthread_mutex_unlock(&session_lock);
	if (taken) {
		snprintf(err, errlen, "an HTTPS server is already running in this process");
		free(srv);
		return NULL;
	}
	if (start_listener(srv, &srv->main, opt->listen, opt, err, errlen))
		goto fail;
	if (opt->probe_listen && opt->probe_listen[0]) {
		srv->probe.probe = true;
		if (start_listener(srv, &srv->probe, opt->probe_listen, opt, err, errlen))
			goto fail;
	}
	return srv;
fail:
	wh_http_stop(srv);
	return NULL;
}

unsigned wh_http_port(const wh_http_server *s)
{
	return s->main.daemon ? s->main.port : 0;
}

unsigned wh_http_probe_port(const wh_http_server *s)
{
	return s->probe.daemon ? s->probe.port : 0;
}

unsigned wh_http_inflight(const wh_http_server *s)
{
	return __atomic_load_n(&s->inflight, __ATOMIC_ACQUIRE);
}

/* Stops accepting: the acceptor returns and the listen socket is closed,
 * so new connections are refused at once; connections already handed to
 * libmicrohttpd go on being served. */
static void stop_accepting(listener *l)
{
	if (l->accepting) {
		uint64_t one = 1;
		ssize_t w = write(l->wake_fd, &one, sizeof one);
		(void)w; /* adding 1 to a fresh eventfd cannot fail */
		pthread_join(l->acceptor, NULL);
		l->accepting = false;
	}
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
}

static void stop_listener(listener *l)
{
	stop_accepting(l);
	if (l->daemon)
		MHD_stop_daemon(l->daemon);
	l->daemon = NULL;
	if (l->wake_fd >= 0)
		close(l->wake_fd);
	l->wake_fd = -1;
}

unsigned wh_http_drain(wh_http_server *s, unsigned timeout_ms)
{
	stop_accepting(&s->main);
	stop_accepting(&s->probe);
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000u;
	while (wh_http_inflight(s) && now_ns() < deadline) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return wh_http_inflight(s);
}

void wh_http_stop(wh_http_server *s)
{
	if (!s)
		return;
	stop_listener(&s->probe);
	stop_listener(&s->main);
	pthread_mutex_lock(&session_lock);
	if (tls_server == s)
		tls_server = NULL;
	pthread_mutex_unlock(&session_lock);
	free(s);
}
