/* test_wh_http.c - the HTTPS front end in-process: starting, draining and
 * stopping while clients keep every epoll thread busy; request bodies read
 * whole through the TLS read-ahead. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support/ts_https.h"
#include "support/ts_pki.h"
#include "wh_http.h"

#define CLIENTS 4

static ts_pki pki;
static char err[512];

static wh_tls_store *store; /* the server certificate, for every test */
static const char healthz_get[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* clients write to connections the server closed */
	cr_assert_eq(ts_pki_create(&pki, NULL, err, sizeof err), 0, "%s", err);
	store = wh_tls_store_new(pki.server_cert_file, pki.server_key_file, err, sizeof err);
	cr_assert_not_null(store, "%s", err);
}

static void teardown(void)
{
	wh_tls_store_free(store);
	ts_pki_destroy(&pki);
}

static void reply_text(wh_http_reply *out, unsigned status, const char *text)
{
	out->status = status;
	out->body = strdup(text);
	out->len = strlen(text);
	out->content_type = "text/plain";
}

static uint32_t checksum(const char *p, size_t n)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = sum * 31u + (unsigned char)p[i];
	return sum;
}

/* Answers with the body's length and a checksum of its bytes, so a test
 * can tell that every byte arrived, in order. */
static void on_validate(void *ctx, const char *body, size_t len, uint64_t start_ns,
                        wh_http_reply *out)
{
	(void)ctx, (void)start_ns;
	char text[64];
	snprintf(text, sizeof text, "len=%zu sum=%08x;", len, checksum(body, len));
	reply_text(out, 200, text);
}

static void on_probe(void *ctx, wh_http_endpoint ep, wh_http_reply *out)
{
	(void)ctx, (void)ep;
	reply_text(out, 200, "ok\n");
}

static void on_rejected(void *ctx, unsigned status)
{
	(void)ctx, (void)status;
}

typedef struct client {
	pthread_t thread;
	unsigned port;
	volatile bool stop;
	unsigned answered;
} client;

/* Keep-alive GETs as fast as the server answers, reconnecting after a
 * close, until told to stop or the server refuses connections. */
static void *client_loop(void *arg)
{
	client *c = arg;
	char cerr[256];
	while (!c->stop) {
		ts_tls *t = ts_tls_connect(c->port, "localhost", pki.ca_file, cerr, sizeof cerr);
		if (!t)
			return NULL;
		char buf[512];
		while (!c->stop && ts_tls_write(t, healthz_get, sizeof healthz_get - 1) == 0 &&
		       ts_tls_read(t, buf, 1, 2000) == 1) {
			ts_tls_read(t, buf + 1, sizeof buf - 2, 1); /* the rest of a small reply */
			c->answered++;
		}
		ts_tls_close(t);
	}
	return NULL;
}

static pthread_mutex_t logged_lock = PTHREAD_MUTEX_INITIALIZER;
static char logged[2048];

static void on_log(void *ctx, const char *line)
{
	(void)ctx;
	pthread_mutex_lock(&logged_lock);
	size_t used = strlen(logged);
	snprintf(logged + used, sizeof logged - used, "%s\n", line);
	pthread_mutex_unlock(&logged_lock);
}

static bool logged_has(const char *text)
{
	pthread_mutex_lock(&logged_lock);
	bool has = strstr(logged, text) != NULL;
	pthread_mutex_unlock(&logged_lock);
	return has;
}

static wh_http_server *start_on(const char *listen, unsigned threads)
{
	wh_http_options opt = {.listen = listen, .tls = store, .threads = threads};
	wh_http_handlers h = {
	    .validate = on_validate, .probe = on_probe, .rejected = on_rejected, .log = on_log};
	wh_http_server *s = wh_http_start(&opt, &h, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	return s;
}

static wh_http_server *start_server(unsigned threads)
{
	return start_on("127.0.0.1:0", threads);
}

/* GET /healthz on t is answered 200. */
static void assert_healthz(ts_tls *t)
{
	cr_assert_eq(ts_tls_write(t, healthz_get, sizeof healthz_get - 1), 0);
	char buf[512] = "";
	cr_assert_gt(ts_tls_read(t, buf, sizeof buf - 1, 3000), 0);
	cr_assert(strstr(buf, "HTTP/1.1 200"), "%s", buf);
}

/* Draining while every epoll thread is serving keep-alive clients, forty
 * times over: no abort, no hang, and the clients really were being served.
 * (With libmicrohttpd's own accepting, MHD_quiesce_daemon could abort the
 * process here when an epoll thread dropped the listen socket from its
 * epoll set first; CI saw it once. That timing is too narrow to reproduce
 * on demand, so this guards the behaviour rather than the exact race.) */
Test(http, drain_while_every_thread_is_busy_never_aborts, .init = setup, .fini = teardown)
{
	for (int round = 0; round < 40; round++) {
		wh_http_server *s = start_server(4);
		client clients[CLIENTS] = {0};
		for (int i = 0; i < CLIENTS; i++) {
			clients[i].port = wh_http_port(s);
			cr_assert_eq(
			    pthread_create(&clients[i].thread, NULL, client_loop, &clients[i]), 0);
		}
		unsigned answered = 0;
		for (int spin = 0; spin < 2000 && answered < 20; spin++) {
			struct timespec ts = {0, 1000 * 1000};
			nanosleep(&ts, NULL);
			answered = 0;
			for (int i = 0; i < CLIENTS; i++)
				answered += clients[i].answered;
		}
		cr_assert_geq(answered, 20, "round %d: clients were answered before the drain",
		              round);
		wh_http_drain(s, 50);
		for (int i = 0; i < CLIENTS; i++)
			clients[i].stop = true;
		wh_http_stop(s);
		for (int i = 0; i < CLIENTS; i++)
			pthread_join(clients[i].thread, NULL);
	}
}

Test(http, drain_refuses_new_connections_and_stop_frees_the_port, .init = setup, .fini = teardown)
{
	wh_http_server *s = start_server(2);
	unsigned port = wh_http_port(s);
	ts_tls *t = ts_tls_connect(port, "localhost", pki.ca_file, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	cr_assert_eq(wh_http_drain(s, 100), 0);
	int fd = ts_tcp_connect(port);
	cr_assert_lt(fd, 0, "a drained server refuses new connections");
	assert_healthz(t); /* a connection made before the drain is still served */
	ts_tls_close(t);
	wh_http_stop(s);
	/* The same port can be served again at once. */
	char listen[64];
	snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
	wh_http_stop(start_on(listen, 2));
}

/* Bodies of every size around the read-ahead buffer and TLS record sizes,
 * several pipelined in one write: each arrives whole and in order, and no
 * request waits on bytes the server already read. */
Test(http, pipelined_bodies_of_every_size_arrive_whole, .init = setup, .fini = teardown)
{
	wh_http_server *s = start_server(2);
	ts_tls *t = ts_tls_connect(wh_http_port(s), "localhost", pki.ca_file, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	const size_t sizes[] = {1, 5, 4000, 8187, 8192, 8200, 16379, 16384, 40000, 100000};
	const size_t n = sizeof sizes / sizeof *sizes;
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += sizes[i] + 128;
	char *wire = malloc(total), *body = malloc(100000);
	cr_assert(wire && body);
	for (size_t i = 0; i < 100000; i++)
		body[i] = (char)('a' + (i * 7) % 26);
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		used += (size_t)snprintf(wire + used, total - used,
		                         "POST /validate HTTP/1.1\r\nHost: localhost\r\n"
		                         "Content-Length: %zu\r\n\r\n",
		                         sizes[i]);
		memcpy(wire + used, body, sizes[i]);
		used += sizes[i];
	}
	cr_assert_eq(ts_tls_write(t, wire, used), 0);
	char reply[16384] = "";
	size_t got = 0, answers = 0;
	while (answers < n) {
		long r = ts_tls_read(t, reply + got, sizeof reply - 1 - got, 3000);
		cr_assert_gt(r, 0, "answer %zu of %zu never came: %s", answers + 1, n, reply);
		got += (size_t)r;
		reply[got] = '\0';
		answers = 0;
		for (const char *p = reply; (p = strstr(p, "len=")); p++)
			answers++;
	}
	const char *p = reply;
	for (size_t i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof want, "len=%zu sum=%08x;", sizes[i],
		         checksum(body, sizes[i]));
		const char *at = strstr(p, want);
		cr_assert_not_null(at, "request %zu (%zu bytes): %s", i, sizes[i], reply);
		p = at + strlen(want);
	}
	ts_tls_close(t);
	free(wire);
	free(body);
	wh_http_stop(s);
}

/* Sends a POST /validate carrying `pad` bytes of one extra header on t;
 * returns what comes back (NUL-terminated in buf). */
static long post_with_header_bytes(ts_tls *t, size_t pad, char *buf, size_t len)
{
	size_t size = pad + 256;
	char *req = malloc(size);
	cr_assert_not_null(req);
	int n = snprintf(req, size, "POST /validate HTTP/1.1\r\nHost: localhost\r\nX-Pad: ");
	memset(req + n, 'p', pad);
	n += (int)pad;
	n += snprintf(req + n, size - (size_t)n, "\r\nContent-Length: 2\r\n\r\n{}");
	ts_tls_write(t, req, (size_t)n); /* an oversize one may be cut off: read anyway */
	free(req);
	long r = ts_tls_read(t, buf, len - 1, 3000);
	buf[r > 0 ? r : 0] = '\0';
	return r;
}

/* The connection's memory holds request headers of several KiB, twice on
 * one keep-alive connection (the pool is reset between requests); past
 * what it holds the client gets 431 and the connection is closed. */
Test(http, large_request_headers_fit_and_oversize_ones_get_431, .init = setup, .fini = teardown)
{
	wh_http_server *s = start_server(1);
	ts_tls *t = ts_tls_connect(wh_http_port(s), "localhost", pki.ca_file, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	char buf[1024];
	for (int i = 0; i < 2; i++) {
		cr_assert_gt(post_with_header_bytes(t, 6 * 1024, buf, sizeof buf), 0);
		cr_assert(strstr(buf, "HTTP/1.1 200") && strstr(buf, "len=2 "), "%s", buf);
	}
	signal(SIGPIPE, SIG_IGN); /* the server may close before reading it all */
	cr_assert_gt(post_with_header_bytes(t, 20 * 1024, buf, sizeof buf), 0);
	cr_assert(strstr(buf, "HTTP/1.1 431"), "%s", buf);
	cr_assert(ts_tls_peer_closed(t, 3000));
	ts_tls_close(t);
	wh_http_stop(s);
}

/* Out of file descriptors, the acceptor says so, leaves the client in the
 * backlog and retries; once descriptors are free again the same client is
 * served. (Each Criterion test runs in its own process, so the lowered
 * limit stays in this test.) */
Test(http, running_out_of_file_descriptors_is_survived, .init = setup, .fini = teardown)
{
	wh_http_server *s = start_server(1);
	/* The client's socket exists before the limit drops; connect() needs
	 * no new descriptor, the server's accept does. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	int highest = fd;
	for (int probe = fd + 1; probe < fd + 64; probe++)
		if (fcntl(probe, F_GETFD) >= 0)
			highest = probe;
	struct rlimit old, low;
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)highest + 1;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	/* Any lower descriptor number still free is taken too. */
	int fillers[64], n_fillers = 0;
	while (n_fillers < 64 && (fillers[n_fillers] = dup(fd)) >= 0)
		n_fillers++;
	cr_assert_lt(n_fillers, 64);
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)wh_http_port(s))};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	for (int i = 0; i < 300 && !logged_has("Too many open files"); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	cr_assert(logged_has("accept: Too many open files; retrying in 100 ms"), "log: %s", logged);
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	for (int i = 0; i < n_fillers; i++)
		close(fillers[i]);
	/* The waiting client is accepted now: a TLS handshake on it works. */
	ts_tls *t = ts_tls_adopt(fd, "localhost", pki.ca_file, err, sizeof err);
	cr_assert_not_null(t, "%s", err);
	assert_healthz(t);
	ts_tls_close(t);
	wh_http_stop(s);
}
