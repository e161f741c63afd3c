/* na_holder.c - see na_holder.h. */
#include "na_holder.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_limits.h"
#include "cf_log.h"
#include "na_cmdpolicy.h"
#include "na_config.h"
#include "na_identity.h"
#include "na_listener.h"
#include "na_notify.h"
#include "na_approval.h"
#include "na_privs.h"
#include "na_profile.h"
#include "na_run.h"
#include "na_succession.h"
#include "na_wire.h"

#define COMPONENT "agent"
#define TICK_MS   50
/* How long shutdown and a handoff wait for the policy side to answer what
 * is pending before the level's default answers the rest. */
#define DRAIN_WAIT_MS          5000
#define CHILD_READY_TIMEOUT_MS 30000
#define CHILD_STOP_WAIT_MS     3000
/* At a final shutdown the policy side removes the node label first (one
 * request, bounded by na_node's 5 s timeout) before it exits. */
#define CHILD_UNLABEL_WAIT_MS 8000
#define RESTART_MIN_MS        50
#define RESTART_MAX_MS        5000
/* A policy side that lived this long before dying resets the backoff. */
#define CHILD_HEALTHY_MS 10000
/* Headroom over approvalTimeoutSeconds for an approval-extended deadline. */
#define APPROVAL_MARGIN_MS 5000
#define LEVEL_UNKNOWN      (-1)

enum tag { T_NOTIFY = 1, T_CHILD, T_SIGNAL, T_TIMER, T_HANDOFF, T_ACCEPTQ };

typedef struct hcont {
	enum tag tag; /* first: epoll data points here */
	uint64_t key;
	na_notify *n;
	na_container_identity id;
	char *json;
	size_t json_len;
	bool entry_answered;
	bool receiving;
	struct hcont *prev, *next;
} hcont;

typedef struct pend {
	hcont *c;
	na_notify_req req;
	long long deadline;
	bool sent;
	struct pend *prev, *next;
} pend;

typedef struct outmsg {
	na_wire_msg m;
	int fd; /* owned: closed after sending */
	struct outmsg *next;
} outmsg;

typedef struct incoming {
	int fd;
	char *json;
	size_t len;
	na_container_identity id;
	bool rejected; /* counts a rejected runtime handoff */
	struct incoming *next;
} incoming;

typedef struct holder {
	na_config cfg;
	int argc;
	char **argv;
	int epfd, sigfd, timerfd, handoff_fd, accq_efd, acc_stop_efd;
	enum tag sig_tag, timer_tag, handoff_tag, accq_tag, child_tag;
	na_listener *listener;
	dev_t handoff_dev;
	ino_t handoff_ino;
	/* acceptor thread */
	pthread_t acceptor;
	bool acceptor_running;
	pthread_mutex_t accq_mu;
	incoming *accq_head, *accq_tail;
	/* containers and pending notifications (main thread only) */
	hcont *containers;
	size_t n_containers;
	uint64_t next_key;
	pend *pending_head, *pending_tail;
	size_t n_pending;
	/* the policy side */
	pid_t child_pid;
	int child_sock;
	bool child_ready;
	long long child_started, restart_at;
	long restart_backoff;
	outmsg *out_head, *out_tail;
	bool want_out;
	int level;
	/* approvals: the control socket, bound here and lent to each policy
	 * side (which then needs no privilege for it) */
	int control_fd;
	gid_t approval_gid;
	char control_path[4096];
	dev_t control_dev;
	ino_t control_ino;
	bool handed_over;
	bool listening; /* setup done: the node may be labelled */
	bool freed;     /* a container was freed during this epoll batch */
} holder;

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_cont(cf_log_level level, const hcont *c, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_AddStringToObject(o, "component", COMPONENT);
	cJSON_AddStringToObject(o, "msg", msg);
	cJSON_AddStringToObject(o, "container_id", c->id.container_id);
	cJSON_AddStringToObject(o, "container", c->id.container);
	cJSON_AddNumberToObject(o, "pid", c->id.pid);
	cf_log_emit(level, o);
}

/* ---- messages to the policy side ---- */

static void child_set_out_interest(holder *h, bool want)
{
	if (h->child_sock < 0 || h->want_out == want)
		return;
	struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u),
	                         .data.ptr = &h->child_tag};
	if (epoll_ctl(h->epfd, EPOLL_CTL_MOD, h->child_sock, &ev) == 0)
		h->want_out = want;
}

static void flush_out(holder *h)
{
	while (h->out_head && h->child_sock >= 0) {
		outmsg *o = h->out_head;
		int rc = na_wire_send(h->child_sock, &o->m, o->fd, MSG_DONTWAIT);
		if (rc == -EAGAIN)
			break;
		/* Sent, or the peer is gone (the child socket's hang-up restarts
		 * it and everything is sent again from the tables). */
		h->out_head = o->next;
		if (!h->out_head)
			h->out_tail = NULL;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
		if (rc < 0)
			break;
	}
	child_set_out_interest(h, h->out_head != NULL);
}

static void clear_out(holder *h)
{
	while (h->out_head) {
		outmsg *o = h->out_head;
		h->out_head = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	h->out_tail = NULL;
}

/* Queues a message for the policy side (in order); fd is owned. Dropped
 * when there is no policy side: a restart sends everything again. */
static void queue_out(holder *h, const na_wire_msg *m, int fd)
{
	if (h->child_sock < 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	outmsg *o = malloc(sizeof *o);
	if (!o) {
		/* The pending entry's deadline still answers it. */
		if (fd >= 0)
			close(fd);
		return;
	}
	o->m = *m;
	o->fd = fd;
	o->next = NULL;
	if (h->out_tail)
		h->out_tail->next = o;
	else
		h->out_head = o;
	h->out_tail = o;
	flush_out(h);
}

static void send_add(holder *h, hcont *c, bool new_handoff)
{
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_ADD;
	m.key = c->key;
	m.flags = (c->entry_answered ? NA_WIRE_ENTRY_ANSWERED : 0u) |
	          (new_handoff ? NA_WIRE_NEW_HANDOFF : 0u);
	m.u.id = c->id;
	int dupfd = fcntl(na_notify_fd(c->n), F_DUPFD_CLOEXEC, 3);
	if (dupfd < 0) {
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "dup: %s", strerror(errno));
		return;
	}
	queue_out(h, &m, dupfd);
}

static void send_control(holder *h)
{
	if (h->control_fd < 0)
		return;
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_CONTROL;
	int dupfd = fcntl(h->control_fd, F_DUPFD_CLOEXEC, 3);
	if (dupfd < 0) {
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "dup: %s", strerror(errno));
		return;
	}
	queue_out(h, &m, dupfd);
}

static void send_notify(holder *h, pend *p)
{
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = NA_WIRE_NOTIFY;
	m.key = p->c->key;
	m.flags = p->c->entry_answered ? NA_WIRE_ENTRY_ANSWERED : 0u;
	m.u.req = p->req;
	queue_out(h, &m, -1);
	p->sent = h->child_sock >= 0;
}

static void send_simple(holder *h, uint32_t type, uint64_t key)
{
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = type;
	m.key = key;
	queue_out(h, &m, -1);
}

/* ---- answering ---- */

static void pend_unlink(holder *h, pend *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		h->pending_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		h->pending_tail = p->prev;
	h->n_pending--;
	free(p);
}

static void respond(hcont *c, uint64_t id, int error)
{
	int rc = na_notify_respond(c->n, id, error);
	if (rc == 0 && error == 0)
		c->entry_answered = true;
}

static int default_errno(const holder *h)
{
	return h->level == NA_LEVEL_WARN || h->level == NA_LEVEL_DISABLED ? 0 : EPERM;
}

static void answer_default(holder *h, pend *p, const char *why)
{
	int e = default_errno(h);
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddStringToObject(o, "component", COMPONENT);
		cJSON_AddStringToObject(o, "msg", "exec answered by the level's default");
		cJSON_AddStringToObject(o, "reason", why);
		cJSON_AddStringToObject(o, "answer", e ? "EPERM" : "CONTINUE");
		cJSON_AddStringToObject(o, "container_id", p->c->id.container_id);
		cJSON_AddNumberToObject(o, "pid", p->req.pid);
		cf_log_emit(CF_LOG_WARNING, o);
	}
	respond(p->c, p->req.id, e);
	pend_unlink(h, p);
}

static pend *find_pend(holder *h, uint64_t key, uint64_t id)
{
	for (pend *p = h->pending_head; p; p = p->next)
		if (p->c->key == key && p->req.id == id)
			return p;
	return NULL;
}

static void check_deadlines(holder *h, long long now)
{
	pend *p = h->pending_head;
	while (p) {
		pend *n = p->next;
		if (p->deadline <= now)
			answer_default(h, p, h->child_sock < 0 ? "no policy side" : "timeout");
		p = n;
	}
}

/* ---- containers ---- */

static void container_free(holder *h, hcont *c)
{
	pend *p = h->pending_head;
	while (p) {
		pend *n = p->next;
		if (p->c == c)
			pend_unlink(h, p);
		p = n;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		h->containers = c->next;
	if (c->next)
		c->next->prev = c->prev;
	h->n_containers--;
	h->freed = true;
	na_notify_free(c->n);
	free(c->json);
	free(c);
}

static void stop_receiving(holder *h, hcont *c)
{
	if (c->receiving)
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, na_notify_fd(c->n), NULL);
	c->receiving = false;
}

static int start_receiving(holder *h, hcont *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, na_notify_fd(c->n), &ev) < 0)
		return -errno;
	c->receiving = true;
	return 0;
}

/* Takes ownership of fd and json (freed on error too). */
static int adopt(holder *h, int fd, char *json, size_t len, const na_container_identity *id,
                 bool entry_answered, bool new_handoff)
{
	char err[256] = "";
	hcont *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		free(json);
		return -ENOMEM;
	}
	c->tag = T_NOTIFY;
	c->n = na_notify_new(fd, err, sizeof err);
	if (!c->n) {
		close(fd);
		free(json);
		free(c);
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot keep a notify fd: %s", err);
		return -ENOMEM;
	}
	c->key = ++h->next_key;
	c->id = *id;
	c->json = json;
	c->json_len = len;
	c->entry_answered = entry_answered;
	c->next = h->containers;
	if (h->containers)
		h->containers->prev = c;
	h->containers = c;
	h->n_containers++;
	int rc = start_receiving(h, c);
	if (rc < 0) {
		/* Still held (the fd stays open, so execs do not fail with
		 * ENOSYS); they wait in the kernel, unanswered: log loudly. */
		log_cont(CF_LOG_ERROR, c, "cannot watch the notify fd");
	}
	send_add(h, c, new_handoff);
	return 0;
}

static void container_gone(holder *h, hcont *c)
{
	stop_receiving(h, c);
	send_simple(h, NA_WIRE_REMOVE, c->key);
	container_free(h, c);
}

static void on_notify(holder *h, hcont *c, uint32_t events)
{
	if (events & EPOLLIN) {
		na_notify_req req;
		int rc = na_notify_receive(c->n, &req);
		if (rc == -ENOENT || rc == -EINTR || rc == -ECANCELED)
			return; /* the target went away between poll and receive */
		if (rc < 0) {
			log_cont(CF_LOG_ERROR, c, "notify fd unusable; releasing it");
			container_gone(h, c);
			return;
		}
		if (h->n_pending >= CF_AGENT_MAX_PENDING) {
			respond(c, req.id, default_errno(h));
			return;
		}
		pend *p = calloc(1, sizeof *p);
		if (!p) {
			respond(c, req.id, default_errno(h));
			return;
		}
		p->c = c;
		p->req = req;
		p->deadline = now_ms() + CF_AGENT_ANSWER_TIMEOUT_MS;
		p->prev = h->pending_tail;
		if (h->pending_tail)
			h->pending_tail->next = p;
		else
			h->pending_head = p;
		h->pending_tail = p;
		h->n_pending++;
		send_notify(h, p);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR))
		container_gone(h, c); /* every process of the filter is gone */
}

/* ---- the policy side ---- */

static int spawn_child(holder *h, char *err, size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -errno;
	}
	char fdarg[16];
	snprintf(fdarg, sizeof fdarg, "%d", sv[1]);
	char **args = calloc((size_t)h->argc + 4, sizeof *args);
	if (!args) {
		close(sv[0]);
		close(sv[1]);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	args[0] = (char *)"codeframe-agent";
	args[1] = (char *)NA_RUN_POLICY_SIDE;
	args[2] = fdarg;
	for (int i = 0; i < h->argc; i++)
		args[3 + i] = h->argv[i];
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		free(args);
		close(sv[0]);
		close(sv[1]);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		/* The policy side must not outlive the holder. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fl = fcntl(sv[1], F_GETFD);
		fcntl(sv[1], F_SETFD, fl & ~FD_CLOEXEC);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	free(args);
	close(sv[1]);
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	h->child_pid = pid;
	h->child_sock = sv[0];
	h->child_ready = false;
	h->want_out = false;
	h->child_started = now_ms();
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &h->child_tag};
	epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->child_sock, &ev);
	/* Everything it must know, in order: containers, then what waits. */
	send_control(h);
	if (h->listening)
		send_simple(h, NA_WIRE_LISTENING, 0);
	for (hcont *c = h->containers; c; c = c->next)
		send_add(h, c, false);
	for (pend *p = h->pending_head; p; p = p->next)
		send_notify(h, p);
	return 0;
}

static void reap(holder *h)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (pid != h->child_pid)
			continue;
		h->child_pid = 0;
		if (WIFSIGNALED(st))
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "policy side killed by signal %d",
			           WTERMSIG(st));
		else
			cf_log_msg(CF_LOG_WARNING, COMPONENT, "policy side exited with status %d",
			           WEXITSTATUS(st));
	}
}

static void child_lost(holder *h)
{
	if (h->child_sock < 0)
		return;
	epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->child_sock, NULL);
	close(h->child_sock);
	h->child_sock = -1;
	h->child_ready = false;
	clear_out(h);
	for (pend *p = h->pending_head; p; p = p->next)
		p->sent = false;
	long long now = now_ms();
	if (now - h->child_started >= CHILD_HEALTHY_MS)
		h->restart_backoff = RESTART_MIN_MS;
	h->restart_at = now + h->restart_backoff;
	cf_log_msg(CF_LOG_ERROR, COMPONENT,
	           "policy side lost; restarting it in %ld ms (%zu notification(s) pending)",
	           h->restart_backoff, h->n_pending);
	h->restart_backoff *= 2;
	if (h->restart_backoff > RESTART_MAX_MS)
		h->restart_backoff = RESTART_MAX_MS;
}

static void maybe_restart(holder *h, long long now)
{
	char err[256] = "";
	if (h->child_sock >= 0 || !h->restart_at || now < h->restart_at)
		return;
	if (h->child_pid > 0)
		kill(h->child_pid, SIGKILL); /* half-dead: socket closed, still running */
	h->restart_at = 0;
	if (spawn_child(h, err, sizeof err) < 0) {
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot restart the policy side: %s", err);
		h->restart_at = now + h->restart_backoff;
	} else {
		cf_log_msg(CF_LOG_INFO, COMPONENT,
		           "policy side restarted (pid %d); re-sent %zu container(s), %zu "
		           "pending notification(s)",
		           (int)h->child_pid, h->n_containers, h->n_pending);
	}
}

static void on_child_msg(holder *h, const na_wire_msg *m)
{
	pend *p;
	switch (m->type) {
	case NA_WIRE_READY:
	case NA_WIRE_LEVEL:
		if (m->value >= NA_LEVEL_DISABLED && m->value <= NA_LEVEL_STRICT)
			h->level = m->value;
		if (m->type == NA_WIRE_READY)
			h->child_ready = true;
		break;
	case NA_WIRE_ANSWER:
		p = find_pend(h, m->key, m->u.req.id);
		if (p) {
			respond(p->c, p->req.id, m->value);
			pend_unlink(h, p);
		}
		break;
	case NA_WIRE_DROP:
		p = find_pend(h, m->key, m->u.req.id);
		if (p) {
			/* The policy side saw it invalid; should it still be
			 * pending (it cannot be), the default answers it. */
			if (na_notify_id_valid(p->c->n, p->req.id) == 0)
				answer_default(h, p, "dropped while valid");
			else
				pend_unlink(h, p);
		}
		break;
	case NA_WIRE_EXTEND:
		p = find_pend(h, m->key, m->u.req.id);
		if (p) {
			long long max = h->cfg.approval_timeout_s * 1000LL + APPROVAL_MARGIN_MS;
			long long ms = m->value < 0 ? 0 : m->value;
			p->deadline = now_ms() + (ms < max ? ms : max);
		}
		break;
	default:
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "unexpected message %u from the policy side",
		           m->type);
		break;
	}
}

static void on_child(holder *h, uint32_t events)
{
	if (events & EPOLLOUT)
		flush_out(h);
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (int i = 0; i < 256; i++) {
		na_wire_msg m;
		int fd;
		int rc = na_wire_recv(h->child_sock, &m, &fd, MSG_DONTWAIT);
		if (fd >= 0)
			close(fd);
		if (rc == -EAGAIN)
			return;
		if (rc == -EPROTO) {
			cf_log_msg(CF_LOG_ERROR, COMPONENT,
			           "malformed message from the policy side");
			continue;
		}
		if (rc <= 0) {
			child_lost(h);
			return;
		}
		on_child_msg(h, &m);
	}
}

/* Waits for the first policy side's READY: a policy that does not load
 * fails startup (the policy side printed why). */
static int wait_ready(holder *h, char *err, size_t errlen)
{
	long long deadline = now_ms() + CHILD_READY_TIMEOUT_MS;
	while (!h->child_ready) {
		long long left = deadline - now_ms();
		if (left <= 0) {
			snprintf(err, errlen, "the policy side did not start in time");
			return -ETIMEDOUT;
		}
		struct pollfd p = {.fd = h->child_sock, .events = POLLIN};
		if (poll(&p, 1, (int)(left < TICK_MS ? left : TICK_MS)) < 0 && errno != EINTR)
			return -errno;
		if (p.revents)
			on_child(h, p.revents);
		if (h->child_sock < 0) {
			int st = 0;
			if (h->child_pid > 0 && waitpid(h->child_pid, &st, 0) == h->child_pid)
				h->child_pid = 0;
			snprintf(err, errlen, "the policy side failed to start");
			return -EINVAL;
		}
	}
	return 0;
}

/* unlabel: a final shutdown (the policy side removes the node label and
 * exits by itself); otherwise (handoff, startup failure) it is stopped. */
static void stop_child(holder *h, bool unlabel)
{
	long wait_ms = CHILD_STOP_WAIT_MS;
	if (unlabel && h->child_sock >= 0 && h->child_pid > 0) {
		na_wire_msg m;
		memset(&m, 0, sizeof m);
		m.type = NA_WIRE_UNLABEL;
		clear_out(h);
		fcntl(h->child_sock, F_SETFL, fcntl(h->child_sock, F_GETFL) & ~O_NONBLOCK);
		if (na_wire_send(h->child_sock, &m, -1, 0) == 0) {
			long long deadline = now_ms() + CHILD_UNLABEL_WAIT_MS;
			while (now_ms() < deadline) {
				int st;
				if (waitpid(h->child_pid, &st, WNOHANG) == h->child_pid) {
					h->child_pid = 0;
					break;
				}
				usleep(10000);
			}
		}
	}
	if (h->child_sock >= 0) {
		epoll_ctl(h->epfd, EPOLL_CTL_DEL, h->child_sock, NULL);
		close(h->child_sock); /* the policy side exits at EOF */
		h->child_sock = -1;
	}
	clear_out(h);
	if (h->child_pid <= 0)
		return;
	kill(h->child_pid, SIGTERM);
	long long deadline = now_ms() + wait_ms;
	while (now_ms() < deadline) {
		int st;
		if (waitpid(h->child_pid, &st, WNOHANG) == h->child_pid) {
			h->child_pid = 0;
			return;
		}
		usleep(10000);
	}
	kill(h->child_pid, SIGKILL);
	waitpid(h->child_pid, NULL, 0);
	h->child_pid = 0;
}

/* ---- acceptor thread ---- */

static void push_incoming(holder *h, incoming *in)
{
	pthread_mutex_lock(&h->accq_mu);
	if (h->accq_tail)
		h->accq_tail->next = in;
	else
		h->accq_head = in;
	h->accq_tail = in;
	pthread_mutex_unlock(&h->accq_mu);
	uint64_t one = 1;
	if (write(h->accq_efd, &one, sizeof one) < 0)
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot wake the main loop");
}

/* Checks a runtime handoff and takes its notify fd. 0 or -errno with err. */
static int take_handoff(na_handoff *ho, incoming *in, char *err, size_t errlen)
{
	char perr[256] = "";
	int rc = na_identity_parse(ho->json, ho->len, &in->id, perr, sizeof perr);
	if (rc < 0) {
		/* Keep policing the container even when its state cannot be read:
		 * releasing the fd would make every exec in it fail (ENOSYS). */
		cf_log_msg(CF_LOG_ERROR, COMPONENT,
		           "handoff state unreadable (%s); container identity unknown", perr);
		memset(&in->id, 0, sizeof in->id);
		snprintf(in->id.container, sizeof in->id.container, "unknown");
		in->id.pid = in->id.init_pid = ho->peer_pid;
		in->id.seccomp_fd_index = -1;
	}
	int index = in->id.seccomp_fd_index;
	if (index < 0) {
		if (ho->n_fds != 1) {
			snprintf(err, errlen, "handoff carries %zu fds and names no seccompFd",
			         ho->n_fds);
			return -EPROTO;
		}
		index = 0;
	}
	if ((size_t)index >= ho->n_fds) {
		snprintf(err, errlen, "seccompFd index %d but only %zu fds received", index,
		         ho->n_fds);
		return -EPROTO;
	}
	if (na_fd_is_seccomp_notify(ho->fds[index]) != 1) {
		snprintf(err, errlen, "the handed-over fd is not a seccomp notify fd");
		return -EPROTO;
	}
	if (in->id.metadata[0] && strcmp(in->id.metadata, NA_PROFILE_METADATA) != 0)
		cf_log_msg(CF_LOG_WARNING, COMPONENT,
		           "container %s uses listenerMetadata \"%s\", not this agent's profile",
		           in->id.container_id, in->id.metadata);
	in->json = malloc(ho->len + 1);
	if (!in->json) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(in->json, ho->json, ho->len);
	in->json[ho->len] = '\0';
	in->len = ho->len;
	in->fd = na_handoff_take_fd(ho, (size_t)index);
	return 0;
}

static void *acceptor_main(void *arg)
{
	holder *h = arg;
	struct pollfd p[2] = {{.fd = na_listener_fd(h->listener), .events = POLLIN},
	                      {.fd = h->acc_stop_efd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "acceptor poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		na_handoff ho;
		char err[512] = "";
		int rc = na_listener_accept(h->listener, &ho, err, sizeof err);
		if (rc == -EAGAIN || rc == -EINTR || rc == -ECONNABORTED)
			continue;
		incoming *in = calloc(1, sizeof *in);
		if (!in) {
			if (rc == 0)
				na_handoff_free(&ho);
			continue;
		}
		in->fd = -1;
		if (rc == 0) {
			rc = take_handoff(&ho, in, err, sizeof err);
			na_handoff_free(&ho);
		}
		if (rc < 0) {
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "handoff rejected: %s", err);
			free(in->json);
			in->json = NULL;
			in->rejected = true;
		}
		push_incoming(h, in);
	}
	return NULL;
}

static void drain_accq(holder *h)
{
	uint64_t v;
	if (read(h->accq_efd, &v, sizeof v) < 0 && errno != EAGAIN)
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "accept queue: %s", strerror(errno));
	pthread_mutex_lock(&h->accq_mu);
	incoming *in = h->accq_head;
	h->accq_head = h->accq_tail = NULL;
	pthread_mutex_unlock(&h->accq_mu);
	while (in) {
		incoming *n = in->next;
		if (in->rejected)
			send_simple(h, NA_WIRE_REJECTED, 0);
		else
			adopt(h, in->fd, in->json, in->len, &in->id, false, true);
		free(in);
		in = n;
	}
}

static int start_acceptor(holder *h, char *err, size_t errlen)
{
	h->acc_stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->acc_stop_efd < 0 || pthread_create(&h->acceptor, NULL, acceptor_main, h) != 0) {
		snprintf(err, errlen, "cannot start the acceptor thread");
		if (h->acc_stop_efd >= 0)
			close(h->acc_stop_efd);
		h->acc_stop_efd = -1;
		return -EAGAIN;
	}
	h->acceptor_running = true;
	return 0;
}

static void stop_acceptor(holder *h)
{
	if (!h->acceptor_running)
		return;
	uint64_t one = 1;
	if (write(h->acc_stop_efd, &one, sizeof one) < 0)
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot stop the acceptor");
	pthread_join(h->acceptor, NULL);
	close(h->acc_stop_efd);
	h->acc_stop_efd = -1;
	h->acceptor_running = false;
	drain_accq(h); /* handoffs it finished reading are ours to keep */
}

/* ---- draining (shutdown and handoff) ---- */

/* With receiving stopped: lets the policy side answer what is pending
 * until `wait_ms` passes, then answers the rest with the default. */
static void drain_pending(holder *h, long wait_ms)
{
	long long deadline = now_ms() + wait_ms;
	for (pend *p = h->pending_head; p; p = p->next)
		if (p->deadline > deadline)
			p->deadline = deadline;
	while (h->pending_head && h->child_sock >= 0) {
		long long now = now_ms();
		check_deadlines(h, now);
		if (!h->pending_head)
			break;
		struct pollfd p = {.fd = h->child_sock,
		                   .events = (short)(POLLIN | (h->out_head ? POLLOUT : 0))};
		if (poll(&p, 1, TICK_MS) < 0 && errno != EINTR)
			break;
		if (p.revents)
			on_child(h, (uint32_t)((p.revents & POLLIN ? EPOLLIN : 0) |
			                       (p.revents & POLLOUT ? EPOLLOUT : 0) |
			                       (p.revents & POLLHUP ? EPOLLHUP : 0) |
			                       (p.revents & POLLERR ? EPOLLERR : 0)));
	}
	while (h->pending_head)
		answer_default(h, h->pending_head, "shutting down");
}

static void free_containers(holder *h)
{
	while (h->containers)
		container_free(h, h->containers);
}

/* ---- upgrade handoff: old agent side ---- */

static bool peer_is_root(int conn)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	return getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.uid == 0;
}

/* Returns true when everything was handed over (the caller exits 0). */
static bool serve_handoff(holder *h)
{
	char err[512] = "";
	int conn = accept4(h->handoff_fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0)
		return false;
	if (!peer_is_root(conn)) {
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "handoff request from a non-root peer refused");
		close(conn);
		return false;
	}
	if (na_succession_read_request(conn, err, sizeof err) < 0) {
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "handoff request refused: %s", err);
		close(conn);
		return false;
	}
	cf_log_msg(CF_LOG_INFO, COMPONENT,
	           "a successor asks for the handoff: stopping, answering %zu pending "
	           "notification(s)",
	           h->n_pending);
	stop_acceptor(h);
	for (hcont *c = h->containers; c; c = c->next)
		stop_receiving(h, c);
	drain_pending(h, DRAIN_WAIT_MS);
	na_succession_entry *e = calloc(h->n_containers ? h->n_containers : 1, sizeof *e);
	size_t n = 0;
	int rc = -ENOMEM;
	if (e) {
		for (hcont *c = h->containers; c; c = c->next, n++) {
			e[n].fd = na_notify_fd(c->n);
			e[n].json = c->json;
			e[n].json_len = c->json_len;
			e[n].flags = c->entry_answered ? NA_SUCCESSION_ENTRY_ANSWERED : 0u;
		}
		rc = na_succession_send(conn, na_listener_fd(h->listener), e, n, err, sizeof err);
		if (rc == 0)
			rc = na_succession_wait_ack(conn, err, sizeof err);
		free(e);
	}
	if (rc < 0) {
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "handoff failed (%s); resuming service", err);
		close(conn);
		for (hcont *c = h->containers; c; c = c->next)
			if (start_receiving(h, c) < 0)
				log_cont(CF_LOG_ERROR, c, "cannot watch the notify fd");
		if (start_acceptor(h, err, sizeof err) < 0)
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "%s", err);
		return false;
	}
	cf_log_msg(CF_LOG_INFO, COMPONENT, "handed %zu container(s) to the successor; exiting", n);
	stop_child(h, false); /* the node stays labelled: the successor serves */
	free_containers(h);
	close(na_listener_release(h->listener));
	h->listener = NULL;
	close(h->handoff_fd); /* the successor binds its own over the path */
	h->handoff_fd = -1;
	close(conn); /* last: the successor waits for this */
	return true;
}

/* ---- upgrade handoff: successor side ---- */

/* 1 when a running agent handed everything over, 0 when there is none,
 * -errno when one runs but the handoff failed (it keeps serving). */
static int take_over(holder *h, const char *path, char *err, size_t errlen)
{
	int conn;
	na_succession_set s;
	int rc = na_succession_connect(path, &conn, err, errlen);
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	cf_log_msg(CF_LOG_INFO, COMPONENT, "a running agent answers on %s: taking over", path);
	rc = na_succession_receive(conn, &s, err, errlen);
	if (rc < 0) {
		close(conn);
		return rc;
	}
	if (s.listen_fd < 0) {
		snprintf(err, errlen, "the running agent sent no listening socket");
		rc = -EPROTO;
		goto fail;
	}
	h->listener = na_listener_adopt(s.listen_fd, h->cfg.socket, err, errlen);
	if (!h->listener) {
		rc = -EINVAL;
		goto fail;
	}
	s.listen_fd = -1;
	for (size_t i = 0; i < s.n; i++) {
		na_container_identity id;
		char perr[256];
		na_succession_entry *e = &s.entries[i];
		if (na_identity_parse(e->json, e->json_len, &id, perr, sizeof perr) < 0) {
			memset(&id, 0, sizeof id);
			snprintf(id.container, sizeof id.container, "unknown");
		}
		if (na_fd_is_seccomp_notify(e->fd) != 1) {
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "handed-over fd %zu is not a notify fd",
			           i);
			continue;
		}
		adopt(h, e->fd, e->json, e->json_len, &id,
		      (e->flags & NA_SUCCESSION_ENTRY_ANSWERED) != 0, false);
		e->fd = -1;
		e->json = NULL;
	}
	size_t n = s.n;
	na_succession_set_free(&s);
	/* From the acknowledgement on, the old agent lets go. */
	if (na_succession_ack(conn, err, errlen) < 0)
		cf_log_msg(CF_LOG_WARNING, COMPONENT, "%s", err);
	close(conn);
	cf_log_msg(CF_LOG_INFO, COMPONENT, "took over %zu container(s) and the runtime socket", n);
	return 1;
fail:
	na_succession_set_free(&s);
	close(conn);
	return rc;
}

/* ---- main ---- */

static void close_handoff_socket(holder *h, const char *path)
{
	struct stat st;
	if (h->handoff_fd < 0)
		return;
	if (lstat(path, &st) == 0 && st.st_dev == h->handoff_dev && st.st_ino == h->handoff_ino)
		unlink(path);
	close(h->handoff_fd);
	h->handoff_fd = -1;
}

/* ---- a pod that already handed over ---- */

/* $POD_UID (downward API metadata.uid) when it looks like a pod UID. */
static const char *pod_uid(void)
{
	const char *u = getenv("POD_UID");
	if (!u || !u[0] || strlen(u) > 64)
		return NULL;
	for (const char *p = u; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return NULL;
	return u;
}

static void retired_path(const holder *h, const char *uid, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/retired.%s", h->cfg.state_dir, uid);
}

/* After a handoff: a DaemonSet pod's container is restarted by the kubelet
 * when it exits (restartPolicy Always) until the controller deletes the
 * pod. The restarted old agent must not take the fds back from its
 * successor (it would then drop them when the pod is deleted), so the pod
 * is marked as retired. */
static void mark_retired(const holder *h)
{
	const char *uid = pod_uid();
	char path[4200];
	if (!uid)
		return;
	retired_path(h, uid, path, sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot mark pod %s retired: %s", uid,
		           strerror(errno));
	else
		close(fd);
}

/* true when this pod already handed over: the process then waits for
 * SIGTERM/SIGINT touching nothing (no fds, no sockets, no node label). */
static bool idle_if_retired(const holder *h, const sigset_t *set)
{
	const char *uid = pod_uid();
	char path[4200];
	struct stat st;
	if (!uid)
		return false;
	retired_path(h, uid, path, sizeof path);
	if (lstat(path, &st) < 0)
		return false;
	cf_log_msg(CF_LOG_INFO, COMPONENT,
	           "pod %s already handed over to a successor: idle until it is deleted", uid);
	for (;;) {
		int sig = 0;
		if (sigwait(set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGCHLD)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
	}
	unlink(path);
	return true;
}

static int run_loop(holder *h)
{
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(h->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "epoll_wait: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			enum tag *t = evs[i].data.ptr;
			switch (*t) {
			case T_NOTIFY:
				on_notify(h, (hcont *)(void *)t, evs[i].events);
				break;
			case T_CHILD:
				on_child(h, evs[i].events);
				break;
			case T_ACCEPTQ:
				drain_accq(h);
				break;
			case T_TIMER: {
				uint64_t v;
				if (read(h->timerfd, &v, sizeof v) < 0 && errno != EAGAIN)
					cf_log_msg(CF_LOG_ERROR, COMPONENT, "timer: %s",
					           strerror(errno));
				long long now = now_ms();
				check_deadlines(h, now);
				maybe_restart(h, now);
				break;
			}
			case T_HANDOFF:
				if (serve_handoff(h)) {
					h->handed_over = true;
					mark_retired(h);
					return 0;
				}
				break;
			case T_SIGNAL: {
				struct signalfd_siginfo si;
				while (read(h->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
					if (si.ssi_signo == SIGHUP) {
						if (h->child_pid > 0)
							kill(h->child_pid, SIGHUP);
					} else if (si.ssi_signo == SIGCHLD) {
						reap(h);
					} else {
						cf_log_msg(CF_LOG_INFO, COMPONENT,
						           "signal %u: answering what is in flight "
						           "and exiting",
						           si.ssi_signo);
						stop_acceptor(h);
						for (hcont *c = h->containers; c; c = c->next)
							stop_receiving(h, c);
						drain_pending(h, DRAIN_WAIT_MS);
						return 0;
					}
				}
				break;
			}
			}
			/* A container freed while handling this event may be
			 * what the rest of this batch points at: wait again
			 * (level-triggered, nothing is lost). */
			if (h->freed) {
				h->freed = false;
				break;
			}
		}
	}
}

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
	return -errno;
}

int na_holder_main(int argc, char **argv)
{
	holder h;
	char err[1024] = "";
	char hpath[4096];
	int status = 1;
	memset(&h, 0, sizeof h);
	h.epfd = h.sigfd = h.timerfd = h.handoff_fd = h.accq_efd = h.acc_stop_efd = -1;
	h.control_fd = -1;
	h.approval_gid = (gid_t)-1;
	h.child_sock = -1;
	h.level = LEVEL_UNKNOWN;
	h.restart_backoff = RESTART_MIN_MS;
	h.argc = argc;
	h.argv = argv;
	h.sig_tag = T_SIGNAL;
	h.timer_tag = T_TIMER;
	h.handoff_tag = T_HANDOFF;
	h.accq_tag = T_ACCEPTQ;
	h.child_tag = T_CHILD;
	pthread_mutex_init(&h.accq_mu, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (na_config_init(&h.cfg) < 0) {
		fprintf(stderr, "codeframe-agent run: out of memory\n");
		return 1;
	}
	int prc = na_run_parse_args(argc, argv, &h.cfg, err, sizeof err);
	if (prc == 3) {
		na_config_free(&h.cfg);
		return 0;
	}
	if (prc) {
		if (err[0])
			fprintf(stderr, "codeframe-agent run: %s\n", err);
		na_config_free(&h.cfg);
		return prc;
	}
	cf_log_set_min_level(h.cfg.log_level);
	/* The holder must never block, not even on its own log lines. */
	FILE *log_stream = cf_log_open_nonblocking_stdout();
	if (log_stream)
		cf_log_set_stream(log_stream);
	if ((size_t)snprintf(hpath, sizeof hpath, "%s/%s", h.cfg.state_dir, NA_SUCCESSION_SOCKET) >=
	    sizeof hpath) {
		snprintf(err, sizeof err, "state directory path too long");
		goto fail;
	}
	if (make_state_dir(h.cfg.state_dir, err, sizeof err) < 0)
		goto fail;
	if (idle_if_retired(&h, &set)) {
		na_config_free(&h.cfg);
		pthread_mutex_destroy(&h.accq_mu);
		if (log_stream) {
			cf_log_set_stream(stdout);
			fclose(log_stream);
		}
		return 0;
	}
	if ((size_t)snprintf(h.control_path, sizeof h.control_path, "%s/%s", h.cfg.state_dir,
	                     NA_CONTROL_SOCKET) >= sizeof h.control_path) {
		snprintf(err, sizeof err, "state directory path too long");
		goto fail;
	}
	if (h.cfg.approval_group[0]) {
		struct group *g = getgrnam(h.cfg.approval_group);
		if (!g) {
			snprintf(err, sizeof err, "approvalGroup \"%s\" does not exist",
			         h.cfg.approval_group);
			goto fail;
		}
		h.approval_gid = g->gr_gid;
		/* Group members must reach control.sock: the state directory
		 * becomes traversable (not readable) for the group only. */
		if (chown(h.cfg.state_dir, 0, h.approval_gid) < 0 ||
		    chmod(h.cfg.state_dir, 0710) < 0) {
			snprintf(err, sizeof err, "cannot open %s to group %s: %s", h.cfg.state_dir,
			         h.cfg.approval_group, strerror(errno));
			goto fail;
		}
	}
	h.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	h.timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	h.accq_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h.sigfd < 0 || h.timerfd < 0 || h.accq_efd < 0 || h.epfd < 0) {
		snprintf(err, sizeof err, "cannot set up event sources: %s", strerror(errno));
		goto fail;
	}
	/* The policy first: a successor whose policy does not load must not
	 * take anything from a working agent. */
	if (spawn_child(&h, err, sizeof err) < 0 || wait_ready(&h, err, sizeof err) < 0)
		goto fail;
	if (h.cfg.profile_dir[0] &&
	    na_profile_install(h.cfg.profile_dir, h.cfg.socket, err, sizeof err) < 0)
		goto fail;
	int rc = take_over(&h, hpath, err, sizeof err);
	if (rc < 0)
		goto fail;
	if (rc == 0) {
		h.listener = na_listener_open(h.cfg.socket, (gid_t)-1, err, sizeof err);
		if (!h.listener)
			goto fail;
	}
	h.handoff_fd = na_succession_listen(hpath, err, sizeof err);
	if (h.handoff_fd < 0)
		goto fail;
	struct stat st;
	if (lstat(hpath, &st) == 0) {
		h.handoff_dev = st.st_dev;
		h.handoff_ino = st.st_ino;
	}
	/* Bound only now: a successor that failed earlier must not have
	 * taken the path from the agent that keeps serving. */
	h.control_fd = na_control_listen(h.control_path, h.approval_gid, err, sizeof err);
	if (h.control_fd < 0)
		goto fail;
	if (lstat(h.control_path, &st) == 0) {
		h.control_dev = st.st_dev;
		h.control_ino = st.st_ino;
	}
	send_control(&h);
	/* Setup is done: from here on only CAP_SYS_PTRACE (which the policy
	 * side, exec'd from here, needs for reading memory). Before any
	 * thread: capabilities are per thread. */
	char perr[256] = "";
	if (na_privs_drop(perr, sizeof perr) < 0)
		cf_log_msg(CF_LOG_WARNING, COMPONENT,
		           "keeping full privileges (%s); run as root to drop them", perr);
	struct itimerspec its = {.it_interval = {0, TICK_MS * 1000000L},
	                         .it_value = {0, TICK_MS * 1000000L}};
	timerfd_settime(h.timerfd, 0, &its, NULL);
	struct epoll_event ev = {.events = EPOLLIN};
	ev.data.ptr = &h.sig_tag;
	epoll_ctl(h.epfd, EPOLL_CTL_ADD, h.sigfd, &ev);
	ev.data.ptr = &h.timer_tag;
	epoll_ctl(h.epfd, EPOLL_CTL_ADD, h.timerfd, &ev);
	ev.data.ptr = &h.accq_tag;
	epoll_ctl(h.epfd, EPOLL_CTL_ADD, h.accq_efd, &ev);
	ev.data.ptr = &h.handoff_tag;
	epoll_ctl(h.epfd, EPOLL_CTL_ADD, h.handoff_fd, &ev);
	if (start_acceptor(&h, err, sizeof err) < 0)
		goto fail;
	h.listening = true;
	send_simple(&h, NA_WIRE_LISTENING, 0);
	cf_log_msg(CF_LOG_INFO, COMPONENT,
	           "listening on %s (policy level %s, %zu policy file(s), metrics %s, node %s, "
	           "%zu container(s) held)",
	           h.cfg.socket, h.level >= 0 ? na_level_name((na_level)h.level) : "unknown",
	           h.cfg.n_policies, h.cfg.metrics_listen[0] ? h.cfg.metrics_listen : "off",
	           h.cfg.node_name[0] ? h.cfg.node_name : "-", h.n_containers);
	status = run_loop(&h);
	goto out;
fail:
	cf_log_msg(CF_LOG_ERROR, COMPONENT, "%s", err);
	fprintf(stderr, "codeframe-agent run: %s\n", err);
	status = 1;
out:
	stop_acceptor(&h);
	stop_child(&h, status == 0 && !h.handed_over);
	free_containers(&h);
	while (h.pending_head)
		pend_unlink(&h, h.pending_head);
	if (h.listener)
		na_listener_close(h.listener);
	close_handoff_socket(&h, hpath);
	if (h.control_fd >= 0) {
		/* Removed only while it is ours (after a handoff the successor
		 * has bound its own at the path). */
		if (status != 0 || !h.handed_over) {
			struct stat cst;
			if (lstat(h.control_path, &cst) == 0 && cst.st_dev == h.control_dev &&
			    cst.st_ino == h.control_ino)
				unlink(h.control_path);
		}
		close(h.control_fd);
	}
	if (h.epfd >= 0)
		close(h.epfd);
	if (h.sigfd >= 0)
		close(h.sigfd);
	if (h.timerfd >= 0)
		close(h.timerfd);
	if (h.accq_efd >= 0)
		close(h.accq_efd);
	pthread_mutex_destroy(&h.accq_mu);
	na_config_free(&h.cfg);
	if (log_stream) {
		cf_log_set_stream(stdout);
		fclose(log_stream);
	}
	return status;
}
