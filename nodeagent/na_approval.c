/* na_approval.c - see na_approval.h. */
#include "na_approval.h"
#include "na_unixsock.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cf_limits.h"

/* /proc/PID/status Groups: is bounded by NGROUPS_MAX (65536). */
#define MAX_PEER_GROUPS 65536u
#define STATUS_MAX      (1024u * 1024u)

typedef struct entry {
	char id[NA_APPROVAL_ID_LEN + 1];
	char *container_id, *cmdline, *namespace_, *pod, *container;
	pid_t pid;
	uint64_t start;
	long long created, expires; /* CLOCK_MONOTONIC ms */
	na_approval_state state;
	struct entry *next;
} entry;

struct na_approvals {
	pthread_mutex_t mu;
	entry *head;
	size_t n;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void entry_free(entry *e)
{
	free(e->container_id);
	free(e->cmdline);
	free(e->namespace_);
	free(e->pod);
	free(e->container);
	free(e);
}

na_approvals *na_approvals_new(void)
{
	na_approvals *a = calloc(1, sizeof *a);
	if (a)
		pthread_mutex_init(&a->mu, NULL);
	return a;
}

void na_approvals_free(na_approvals *a)
{
	if (!a)
		return;
	while (a->head) {
		entry *e = a->head;
		a->head = e->next;
		entry_free(e);
	}
	pthread_mutex_destroy(&a->mu);
	free(a);
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static entry *find_key(na_approvals *a, const na_approval_info *in)
{
	for (entry *e = a->head; e; e = e->next)
		if (e->pid == in->pid && e->start == in->start &&
		    strcmp(e->container_id, in->container_id ? in->container_id : "") == 0 &&
		    strcmp(e->cmdline, in->cmdline ? in->cmdline : "") == 0)
			return e;
	return NULL;
}

static entry *find_id(na_approvals *a, const char *id)
{
	for (entry *e = a->head; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void new_id(na_approvals *a, char out[NA_APPROVAL_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (;;) {
		unsigned char r[NA_APPROVAL_ID_LEN / 2];
		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
			/* Unique is what matters; the socket's credentials
			 * check is the access control. */
			static unsigned long long counter;
			unsigned long long v = ++counter ^ (unsigned long long)now_ms();
			for (size_t i = 0; i < sizeof r; i++)
				r[i] = (unsigned char)(v >> (8 * i));
		}
		for (size_t i = 0; i < sizeof r; i++) {
			out[2 * i] = hex[r[i] >> 4];
			out[2 * i + 1] = hex[r[i] & 15];
		}
		out[NA_APPROVAL_ID_LEN] = '\0';
		if (!find_id(a, out))
			return;
	}
}

int na_approvals_request(na_approvals *a, const na_approval_info *info, long timeout_ms,
                         char id_out[NA_APPROVAL_ID_LEN + 1])
{
	int rc;
	pthread_mutex_lock(&a->mu);
	entry *e = find_key(a, info);
	if (e) {
		memcpy(id_out, e->id, sizeof e->id);
		rc = 1;
		goto out;
	}
	if (a->n >= CF_AGENT_MAX_APPROVALS) {
		rc = -ENOSPC;
		goto out;
	}
	e = calloc(1, sizeof *e);
	if (!e) {
		rc = -ENOMEM;
		goto out;
	}
	e->container_id = dup_or_empty(info->container_id);
	e->cmdline = dup_or_empty(info->cmdline);
	e->namespace_ = dup_or_empty(info->namespace_);
	e->pod = dup_or_empty(info->pod);
	e->container = dup_or_empty(info->container);
	if (!e->container_id || !e->cmdline || !e->namespace_ || !e->pod || !e->container) {
		entry_free(e);
		rc = -ENOMEM;
		goto out;
	}
	e->pid = info->pid;
	e->start = info->start;
	e->created = now_ms();
	e->expires = e->created + (timeout_ms > 0 ? timeout_ms : 0);
	e->state = NA_APPROVAL_PENDING;
	new_id(a, e->id);
	e->next = a->head;
	a->head = e;
	a->n++;
	memcpy(id_out, e->id, sizeof e->id);
	rc = 0;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int na_approvals_state(na_approvals *a, const char *id, long *left_ms, bool *expired)
{
	int rc;
	pthread_mutex_lock(&a->mu);
	entry *e = find_id(a, id);
	if (!e) {
		rc = -ENOENT;
	} else {
		long long left = e->expires - now_ms();
		*left_ms = left > 0 ? (long)left : 0;
		*expired = e->state == NA_APPROVAL_PENDING && left <= 0;
		rc = *expired ? NA_APPROVAL_DENIED : (int)e->state;
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int na_approvals_answer(na_approvals *a, const char *id, bool grant)
{
	int rc = 0;
	pthread_mutex_lock(&a->mu);
	entry *e = find_id(a, id);
	if (!e || (e->state == NA_APPROVAL_PENDING && e->expires <= now_ms()))
		rc = -ENOENT;
	else if (e->state != NA_APPROVAL_PENDING)
		rc = -EALREADY;
	else
		e->state = grant ? NA_APPROVAL_GRANTED : NA_APPROVAL_DENIED;
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void na_approvals_remove(na_approvals *a, const char *id)
{
	pthread_mutex_lock(&a->mu);
	for (entry **pp = &a->head; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			entry *e = *pp;
			*pp = e->next;
			entry_free(e);
			a->n--;
			break;
		}
	}
	pthread_mutex_unlock(&a->mu);
}

size_t na_approvals_sweep(na_approvals *a, long grace_ms)
{
	size_t removed = 0;
	long long now = now_ms();
	pthread_mutex_lock(&a->mu);
	for (entry **pp = &a->head; *pp;) {
		entry *e = *pp;
		if (e->expires + grace_ms <= now) {
			*pp = e->next;
			entry_free(e);
			a->n--;
			removed++;
		} else {
			pp = &e->next;
		}
	}
	pthread_mutex_unlock(&a->mu);
	return removed;
}

size_t na_approvals_count(na_approvals *a)
{
	pthread_mutex_lock(&a->mu);
	size_t n = a->n;
	pthread_mutex_unlock(&a->mu);
	return n;
}

int na_approvals_list(na_approvals *a, cf_buf *out)
{
	int rc = 0;
	long long now = now_ms();
	pthread_mutex_lock(&a->mu);
	for (entry *e = a->head; e && rc == 0; e = e->next) {
		if (e->state != NA_APPROVAL_PENDING || e->expires <= now)
			continue;
		cJSON *o = cJSON_CreateObject();
		if (!o) {
			rc = -ENOMEM;
			break;
		}
		cJSON_AddStringToObject(o, "id", e->id);
		cJSON_AddStringToObject(o, "namespace", e->namespace_);
		cJSON_AddStringToObject(o, "pod", e->pod);
		cJSON_AddStringToObject(o, "container", e->container);
		cJSON_AddStringToObject(o, "container_id", e->container_id);
		cJSON_AddNumberToObject(o, "pid", e->pid);
		cJSON_AddStringToObject(o, "command", e->cmdline);
		cJSON_AddNumberToObject(o, "age_seconds", (double)((now - e->created) / 1000));
		cJSON_AddNumberToObject(o, "expires_in_seconds",
		                        (double)((e->expires - now) / 1000));
		char *s = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (!s || cf_buf_appendf(out, "%s\n", s) < 0)
			rc = -ENOMEM;
		free(s);
	}
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* ---- control socket ---- */

bool na_control_peer_allowed(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
                             gid_t group)
{
	if (uid == 0)
		return true;
	if (group == (gid_t)-1)
		return false;
	if (gid == group)
		return true;
	for (size_t i = 0; i < n_groups; i++)
		if (groups[i] == group)
			return true;
	return false;
}

/* The peer's supplementary groups from /proc/PID/status ("Groups:"). */
static size_t peer_groups(pid_t pid, gid_t *out, size_t max)
{
	char path[64], err[128];
	cf_buf b;
	size_t n = 0;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if (cf_read_file(path, STATUS_MAX, &b, err, sizeof err) < 0)
		return 0;
	const char *g = strstr(b.data, "\nGroups:");
	if (g) {
		char *p = (char *)g + 8;
		while (n < max) {
			char *end;
			errno = 0;
			unsigned long v = strtoul(p, &end, 10);
			if (end == p || errno)
				break;
			out[n++] = (gid_t)v;
			p = end;
			if (*p == '\n')
				break;
		}
	}
	cf_buf_free(&b);
	return n;
}

int na_control_listen(const char *path, gid_t group, char *err, size_t errlen)
{
	return na_unix_listen(path, group, 16, "control socket", NULL, err, errlen);
}

static void reply(int conn, const char *data, size_t len)
{
	size_t off = 0;
	while (off < len) {
		struct pollfd p = {.fd = conn, .events = POLLOUT};
		if (poll(&p, 1, CF_CONTROL_IO_TIMEOUT_MS) <= 0)
			return;
		ssize_t n = send(conn, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return;
		}
		off += (size_t)n;
	}
}

static void reply_str(int conn, const char *s)
{
	reply(conn, s, strlen(s));
}

/* Closes after the answer; unread request bytes would turn the close into
 * a reset that can destroy the answer before the peer reads it. */
static void finish(int conn)
{
	char junk[4096];
	shutdown(conn, SHUT_WR);
	for (int i = 0; i < 16; i++)
		if (recv(conn, junk, sizeof junk, MSG_DONTWAIT) <= 0)
			break;
	close(conn);
}

static bool valid_id(const char *s)
{
	if (strlen(s) != NA_APPROVAL_ID_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

int na_control_serve(na_approvals *a, int conn, gid_t group)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	int rc = 0;
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		close(conn);
		return -EPERM;
	}
	gid_t *groups = NULL;
	size_t ng = 0;
	if (cr.uid != 0 && group != (gid_t)-1) {
		groups = calloc(MAX_PEER_GROUPS, sizeof *groups);
		if (groups)
			ng = peer_groups(cr.pid, groups, MAX_PEER_GROUPS);
	}
	bool allowed = na_control_peer_allowed(cr.uid, cr.gid, groups, ng, group);
	free(groups);
	if (!allowed) {
		reply_str(conn, "error: permission denied (root or the approval group only)\n");
		finish(conn);
		return -EPERM;
	}
	char req[CF_CONTROL_MAX_REQUEST_BYTES + 1] = "";
	size_t n = 0;
	long long deadline = now_ms() + CF_CONTROL_IO_TIMEOUT_MS;
	while (n < CF_CONTROL_MAX_REQUEST_BYTES && !memchr(req, '\n', n)) {
		long long left = deadline - now_ms();
		struct pollfd p = {.fd = conn, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t k = recv(conn, req + n, CF_CONTROL_MAX_REQUEST_BYTES - n, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	req[n] = '\0';
	char *nl = memchr(req, '\n', n);
	if (!nl) {
		reply_str(conn, "error: expected one request line\n");
		finish(conn);
		return -EPROTO;
	}
	*nl = '\0';
	cf_buf out;
	cf_buf_init(&out, 0);
	if (strcmp(req, "list") == 0) {
		if (na_approvals_list(a, &out) < 0)
			cf_buf_append_str(&out, "error: out of memory\n");
	} else if (strncmp(req, "approve ", 8) == 0 || strncmp(req, "deny ", 5) == 0) {
		bool grant = req[0] == 'a';
		const char *id = req + (grant ? 8 : 5);
		if (!valid_id(id)) {
			cf_buf_appendf(&out, "error: \"%.*s\" is not an approval id\n", 64, id);
			rc = -EPROTO;
		} else {
			int arc = na_approvals_answer(a, id, grant);
			if (arc == 0)
				cf_buf_appendf(&out, "ok: %s %s\n", grant ? "approved" : "denied",
				               id);
			else if (arc == -EALREADY)
				cf_buf_appendf(&out, "error: %s was already answered\n", id);
			else
				cf_buf_appendf(
				    &out,
				    "error: no pending approval %s (answered, timed out, or "
				    "its process exited)\n",
				    id);
		}
	} else {
		cf_buf_append_str(&out, "error: unknown request (list, approve ID, deny ID)\n");
		rc = -EPROTO;
	}
	reply(conn, out.data ? out.data : "", out.len);
	cf_buf_free(&out);
	finish(conn);
	return rc;
}

int na_control_request(const char *path, const char *request, cf_buf *out, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	if (na_unix_addr(&sun, path) < 0) {
		snprintf(err, errlen, "control socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot reach the agent at %s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	size_t len = strlen(request);
	int send_err = 0;
	if (send(fd, request, len, MSG_NOSIGNAL) != (ssize_t)len ||
	    send(fd, "\n", 1, MSG_NOSIGNAL) != 1)
		send_err = errno;
	/* Read even when sending failed: a refusing agent answers (why) and
	 * closes before reading the request. */
	int rc = cf_read_fd(fd, out);
	close(fd);
	if (out->len > 0)
		return 0;
	if (send_err) {
		snprintf(err, errlen, "cannot send to the agent: %s", strerror(send_err));
		return -send_err;
	}
	if (rc < 0) {
		snprintf(err, errlen, "cannot read the agent's answer: %s", strerror(-rc));
		return rc;
	}
	return 0; /* an empty list */
}
