/* ts_https.c - see ts_https.h. */
#include "ts_https.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cf_buf.h"

void ts_https_global_init(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}

/* curl write callback into a cf_buf (no limit: tests read what they get). */
static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud)
{
	size_t n = size * nmemb;
	return cf_buf_append(ud, ptr, n) == 0 ? n : 0;
}

typedef struct upload {
	const char *data;
	size_t len, off;
} upload;

static size_t feed(char *ptr, size_t size, size_t nmemb, void *ud)
{
	upload *u = ud;
	size_t n = size * nmemb, left = u->len - u->off;
	if (n > left)
		n = left;
	memcpy(ptr, u->data + u->off, n);
	u->off += n;
	return n;
}

static void cert_field(CURL *c, const char *name, char *out, size_t outlen)
{
	struct curl_certinfo *ci = NULL;
	out[0] = '\0';
	if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
		return;
	size_t nl = strlen(name);
	for (struct curl_slist *s = ci->certinfo[0]; s; s = s->next) {
		if (strncmp(s->data, name, nl) == 0 && s->data[nl] == ':') {
			snprintf(out, outlen, "%s", s->data + nl + 1);
			return;
		}
	}
}

int ts_https_do(const ts_http_req *req, ts_http_resp *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(err, errlen, "curl_easy_init failed");
		return -ENOMEM;
	}
	const char *host = req->host ? req->host : "127.0.0.1";
	char url[1024], resolve[512];
	snprintf(url, sizeof url, "%s://%s:%u%s", req->ca_file ? "https" : "http", host, req->port,
	         req->path ? req->path : "/");
	snprintf(resolve, sizeof resolve, "%s:%u:127.0.0.1", host, req->port);
	struct curl_slist *res = curl_slist_append(NULL, resolve);
	struct curl_slist *hdrs = NULL;
	for (size_t i = 0; i < req->n_headers; i++)
		hdrs = curl_slist_append(hdrs, req->headers[i]);
	if (req->chunked)
		hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
	hdrs = curl_slist_append(hdrs, req->expect_100 ? "Expect: 100-continue" : "Expect:");
	cf_buf body, head;
	cf_buf_init(&body, 0);
	cf_buf_init(&head, 0);
	upload up = {req->body, req->body_len, 0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_RESOLVE, res);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &head);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (req->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, req->ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
		if (req->tls_max && strcmp(req->tls_max, "1.1") == 0)
			curl_easy_setopt(
			    c, CURLOPT_SSLVERSION,
			    (long)(CURL_SSLVERSION_TLSv1 | CURL_SSLVERSION_MAX_TLSv1_1));
		else if (req->tls_max && strcmp(req->tls_max, "1.2") == 0)
			curl_easy_setopt(
			    c, CURLOPT_SSLVERSION,
			    (long)(CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2));
	}
	const char *method = req->method ? req->method : (req->body ? "POST" : "GET");
	if (req->body) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, feed);
		curl_easy_setopt(c, CURLOPT_READDATA, &up);
		if (!req->chunked)
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->body_len);
	}
	if (strcmp(method, "GET") != 0 || req->body)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
	curl_off_t sent = 0;
	curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &sent);
	out->upload_bytes = (double)sent;
	if (req->ca_file) {
		cert_field(c, "Subject", out->subject, sizeof out->subject);
		cert_field(c, "Serial Number", out->serial, sizeof out->serial);
	}
	out->len = body.len;
	out->body = cf_buf_steal(&body);
	out->headers = cf_buf_steal(&head);
	curl_slist_free_all(res);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
		return -EIO;
	}
	return 0;
}

void ts_http_resp_free(ts_http_resp *r)
{
	free(r->body);
	free(r->headers);
	memset(r, 0, sizeof *r);
}

struct ts_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
};

int ts_tcp_connect(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static long ms_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

bool ts_tcp_peer_closed(int fd, unsigned timeout_ms)
{
	/* Whatever the server sends first (a TLS alert) is read and dropped;
	 * only EOF or a reset counts as closed. */
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long el = ms_since(&start);
		if (el >= (long)timeout_ms)
			return false;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(timeout_ms - (unsigned long)el)) <= 0)
			return false;
		char buf[512];
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return true;
	}
}

ts_tls *ts_tls_adopt(int fd, const char *host, const char *ca_file, char *err, size_t errlen)
{
	ts_tls *t = calloc(1, sizeof *t);
	if (!t) {
		close(fd);
		return NULL;
	}
	t->fd = fd;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx || SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL) != 1) {
		snprintf(err, errlen, "cannot load CA %s", ca_file);
		goto fail;
	}
	SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl)
		goto fail;
	SSL_set_fd(t->ssl, t->fd);
	SSL_set_tlsext_host_name(t->ssl, host);
	SSL_set1_host(t->ssl, host);
	if (SSL_connect(t->ssl) != 1) {
		snprintf(err, errlen, "TLS handshake failed: %s",
		         ERR_reason_error_string(ERR_get_error()));
		goto fail;
	}
	return t;
fail:
	ts_tls_close(t);
	return NULL;
}

ts_tls *ts_tls_connect(unsigned port, const char *host, const char *ca_file, char *err,
                       size_t errlen)
{
	int fd = ts_tcp_connect(port);
	if (fd < 0) {
		snprintf(err, errlen, "connect: %s", strerror(-fd));
		return NULL;
	}
	return ts_tls_adopt(fd, host, ca_file, err, errlen);
}

int ts_tls_write(ts_tls *t, const void *data, size_t n)
{
	while (n) {
		int w = SSL_write(t->ssl, data, n > 65536 ? 65536 : (int)n);
		if (w <= 0)
			return -EIO;
		data = (const char *)data + w;
		n -= (size_t)w;
	}
	return 0;
}

long ts_tls_read(ts_tls *t, char *buf, size_t n, unsigned timeout_ms)
{
	size_t got = 0;
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (got < n) {
		if (SSL_pending(t->ssl) == 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			long el = (now.tv_sec - start.tv_sec) * 1000 +
			          (now.tv_nsec - start.tv_nsec) / 1000000;
			if (el >= (long)timeout_ms)
				break;
			struct pollfd p = {.fd = t->fd, .events = POLLIN};
			if (poll(&p, 1, (int)(timeout_ms - (unsigned long)el)) <= 0)
				break;
		}
		int r = SSL_read(t->ssl, buf + got, (int)(n - got));
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return (long)got;
}

bool ts_tls_peer_closed(ts_tls *t, unsigned timeout_ms)
{
	char buf[256];
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		long el = ms_since(&start);
		if (el >= (long)timeout_ms)
			return false;
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		if (SSL_pending(t->ssl) == 0 &&
		    poll(&p, 1, (int)(timeout_ms - (unsigned long)el)) <= 0)
			return false;
		int r = SSL_read(t->ssl, buf, sizeof buf);
		if (r <= 0)
			return true;
	}
}

void ts_tls_close(ts_tls *t)
{
	if (!t)
		return;
	if (t->ssl)
		SSL_free(t->ssl);
	if (t->fd >= 0)
		close(t->fd);
	if (t->ctx)
		SSL_CTX_free(t->ctx);
	free(t);
}
