/* na_run.c - see na_run.h. */
#include "na_run.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "na_ancestry.h"
#include "na_cmdpolicy.h"
#include "na_config.h"
#include "na_events.h"
#include "na_identity.h"
#include "na_listener.h"
#include "na_notify.h"
#include "na_procmem.h"
#include "na_profile.h"

#define COMPONENT "agent"
/* Worker threads only decide and read memory: a small stack is plenty and
 * keeps hundreds of containers cheap. */
#define WORKER_STACK_BYTES (256u * 1024u)
/* How long shutdown waits for workers to answer what they hold. */
#define SHUTDOWN_WAIT_MS 5000
#define MAX_POLICY_DIRS  64

enum item_kind { ITEM_CONTAINER = 1, ITEM_SIGNAL, ITEM_INOTIFY };

typedef struct req_item {
	na_notify_req req;
	struct timespec received;
	struct req_item *next;
} req_item;

typedef struct run_state run_state;

typedef struct container {
	enum item_kind kind; /* first: epoll data points here */
	run_state *run;
	na_container_identity id;
	na_notify *rx; /* receiver thread only */
	na_notify *tx; /* worker thread only (a dup of the same listener) */
	na_ancestry *anc;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	req_item *head, *tail;
	bool hup;  /* receiver is done with this container */
	bool stop; /* shutdown: answer what is queued, then exit */
	bool ids_resolved;
	bool entry_answered;
	struct container *prev, *next;
} container;

typedef struct metrics_set {
	cf_metrics *reg;
	cf_metric *notifications; /* {decision} */
	cf_metric *latency;
	cf_metric *notify_fds;
	cf_metric *recv_errors; /* {errno} */
	cf_metric *dropped;
	cf_metric *handoffs; /* {result} */
	cf_metric *reloads;  /* {result} */
	uint64_t dropped_seen;
	pthread_mutex_t dropped_mu;
} metrics_set;

struct run_state {
	na_config cfg;
	int epfd;
	int sigfd;
	int inofd;
	int stop_efd; /* readable once shutdown begins */
	enum item_kind sig_tag, ino_tag;
	na_listener *listener;
	na_events *events;
	metrics_set m;
	pthread_rwlock_t policy_lock;
	na_policy *policy;
	pthread_mutex_t list_mu;
	pthread_cond_t list_cv;
	container *containers;
	size_t live_workers;
	int metrics_fd;
	pthread_t acceptor, metrics_thread;
	bool acceptor_started, metrics_started;
};

static uint64_t elapsed_us(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t us = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 +
	             (int64_t)(t1.tv_nsec - t0->tv_nsec) / 1000;
	return us < 0 ? 0 : (uint64_t)us;
}

static const char *errno_label(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "unknown";
}

/* ---- metrics ---- */

static int metrics_init(metrics_set *m, char *err, size_t errlen)
{
	static const char *const decision[] = {"decision"};
	static const char *const errl[] = {"errno"};
	static const char *const result[] = {"result"};
	/* Microsecond buckets (in seconds, the unit Prometheus expects). */
	static const double buckets[] = {10e-6,  25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,
	                                 2.5e-3, 5e-3,  10e-3, 25e-3,  100e-3, 1.0,    10.0};
	memset(m, 0, sizeof *m);
	pthread_mutex_init(&m->dropped_mu, NULL);
	m->reg = cf_metrics_new();
	if (!m->reg) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->notifications = cf_metrics_counter(
	    m->reg, "codeframe_agent_notifications_total",
	    "Exec notifications answered, by decision (allow, deny, gone: the target exited, "
	    "error: answered by the level's default).",
	    decision, 1, err, errlen);
	if (!m->notifications)
		return -EINVAL;
	m->latency = cf_metrics_histogram(
	    m->reg, "codeframe_agent_decision_latency_seconds",
	    "Time from receiving an exec notification to answering it (microsecond buckets).",
	    buckets, sizeof buckets / sizeof buckets[0], NULL, 0, err, errlen);
	if (!m->latency)
		return -EINVAL;
	m->notify_fds = cf_metrics_gauge(m->reg, "codeframe_agent_notify_fds",
	                                 "Seccomp notify fds currently held (containers and exec "
	                                 "sessions).",
	                                 NULL, 0, err, errlen);
	if (!m->notify_fds)
		return -EINVAL;
	m->recv_errors =
	    cf_metrics_counter(m->reg, "codeframe_agent_receive_errors_total",
	                       "Failed notify receives/responses, by errno.", errl, 1, err, errlen);
	if (!m->recv_errors)
		return -EINVAL;
	m->dropped = cf_metrics_counter(m->reg, "codeframe_agent_events_dropped_total",
	                                "Event lines dropped because the writer queue was full.",
	                                NULL, 0, err, errlen);
	if (!m->dropped)
		return -EINVAL;
	m->handoffs = cf_metrics_counter(m->reg, "codeframe_agent_handoffs_total",
	                                 "Runtime handoffs on the agent socket, by result.", result,
	                                 1, err, errlen);
	if (!m->handoffs)
		return -EINVAL;
	m->reloads =
	    cf_metrics_counter(m->reg, "codeframe_agent_policy_reloads_total",
	                       "Policy reloads, by result (ok, error).", result, 1, err, errlen);
	if (!m->reloads)
		return -EINVAL;
	/* Series that must exist from the start (a dashboard's rate() needs
	 * the zero). */
	cf_metric_set(m->notify_fds, NULL, 0);
	cf_metric_add(m->dropped, NULL, 0);
	static const char *const decisions[] = {"allow", "deny", "gone"};
	for (size_t i = 0; i < sizeof decisions / sizeof decisions[0]; i++)
		cf_metric_add(m->notifications, &decisions[i], 0);
	return 0;
}

static void count(cf_metric *c, const char *label)
{
	const char *v[] = {label};
	cf_metric_inc(c, label ? v : NULL);
}

static void sync_dropped(run_state *r)
{
	pthread_mutex_lock(&r->m.dropped_mu);
	uint64_t now = na_events_dropped(r->events);
	if (now > r->m.dropped_seen) {
		cf_metric_add(r->m.dropped, NULL, now - r->m.dropped_seen);
		r->m.dropped_seen = now;
	}
	pthread_mutex_unlock(&r->m.dropped_mu);
}

/* ---- policy ---- */

static na_policy *load_policies(const na_config *cfg, char *err, size_t errlen)
{
	na_policy *p = na_policy_new();
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < cfg->n_policies; i++) {
		if (na_policy_load_file(p, cfg->policies[i], err, errlen) < 0) {
			na_policy_free(p);
			return NULL;
		}
	}
	return p;
}

static void reload_policy(run_state *r, const char *why)
{
	char err[1024] = "";
	na_policy *p = load_policies(&r->cfg, err, sizeof err);
	if (!p) {
		count(r->m.reloads, "error");
		cf_log_msg(CF_LOG_ERROR, COMPONENT,
		           "policy reload (%s) failed, keeping the previous policy: %s", why, err);
		return;
	}
	pthread_rwlock_wrlock(&r->policy_lock);
	na_policy *old = r->policy;
	r->policy = p;
	pthread_rwlock_unlock(&r->policy_lock);
	na_policy_free(old);
	count(r->m.reloads, "ok");
	cf_log_msg(CF_LOG_INFO, COMPONENT, "policy reloaded (%s): level %s", why,
	           na_level_name(p->level));
}

static na_level current_level(run_state *r)
{
	pthread_rwlock_rdlock(&r->policy_lock);
	na_level l = r->policy->level;
	pthread_rwlock_unlock(&r->policy_lock);
	return l;
}

/* ---- one exec ---- */

/* CODEFRAME_PROJECT_ID/CODEFRAME_USER_ID from the init process' environment.
 * Before the entrypoint has been answered, /proc/PID/environ is still the
 * runtime's own, so the init tree waits for its second notification. */
static void resolve_ids(container *c)
{
	char path[64], err[256];
	cf_buf b;
	if (c->ids_resolved)
		return;
	if (c->id.project_id[0] && c->id.user_id[0]) {
		c->ids_resolved = true; /* both from pod annotations */
		return;
	}
	if (!c->id.is_exec && !c->entry_answered)
		return; /* still the runtime's environment */
	snprintf(path, sizeof path, "/proc/%d/environ", (int)c->id.init_pid);
	if (cf_read_file(path, CF_PROC_ENVIRON_MAX_BYTES, &b, err, sizeof err) == 0) {
		na_identity_apply_environ(&c->id, b.data, b.len);
		cf_buf_free(&b);
	}
	/* Read once: the environment of a running process does not change
	 * in /proc, and a failed read (init gone) will not succeed later. */
	c->ids_resolved = true;
}

static void emit_event(container *c, pid_t pid, const char *command, const na_decision *d,
                       const char *decision_text, const char *error, uint64_t latency)
{
	na_identity who = {.namespace_ = c->id.namespace_,
	                   .pod = c->id.pod,
	                   .container = c->id.container,
	                   .project_id = c->id.project_id,
	                   .user_id = c->id.user_id};
	na_event ev = {.who = &who,
	               .pid = pid,
	               .command = command,
	               .decision = d,
	               .decision_text = decision_text,
	               .error = error,
	               .latency_us = latency};
	na_events_submit(c->run->events, &ev);
}

/* A decision for an exec that could not be read or decided: the level's
 * default (strict: deny; warn/disabled: let it run). */
static void default_decision(na_level level, const char *rule, na_decision *d)
{
	memset(d, 0, sizeof *d);
	d->enforcement = level;
	d->verdict = level == NA_LEVEL_STRICT ? NA_VERDICT_DENY : NA_VERDICT_ALLOW;
	d->log_level = level == NA_LEVEL_STRICT ? CF_LOG_ERROR : CF_LOG_WARNING;
	snprintf(d->rule, sizeof d->rule, "%s", rule);
}

static void handle(container *c, req_item *it)
{
	run_state *r = c->run;
	na_notify_req *req = &it->req;
	na_exec_info info;
	na_decision d;
	na_cmd_context ctx = {0};
	char err[512] = "";
	char *cmdline = NULL;
	const char *decision_text = NULL, *error = NULL;
	int answer;
	bool have_info = false;

	memset(&info, 0, sizeof info);
	if (current_level(r) == NA_LEVEL_DISABLED) {
		/* disabled: nothing is read, every exec continues. */
		int drc = na_notify_respond(c->tx, req->id, 0);
		count(r->m.notifications, drc == 0 ? "allow" : "gone");
		if (drc == 0) {
			cf_metric_observe(r->m.latency, NULL,
			                  (double)elapsed_us(&it->received) / 1e6);
			c->entry_answered = true;
		}
		return;
	}
	resolve_ids(c);
	int rc = na_procmem_read_exec(req, na_notify_fd(c->tx), &info, err, sizeof err);
	if (rc == -ENOENT) {
		count(r->m.notifications, "gone");
		return; /* target exited or the syscall was interrupted: nobody waits */
	}
	if (rc == -EFAULT) {
		/* The kernel would fail this exec with EFAULT as well. */
		default_decision(NA_LEVEL_STRICT, "unreadable", &d);
		answer = EFAULT;
		error = err;
	} else if (rc < 0) {
		default_decision(current_level(r), "unreadable", &d);
		answer = d.verdict == NA_VERDICT_DENY ? EPERM : 0;
		error = err;
	} else {
		have_info = true;
		if (na_ancestry_lookup(c->anc, req->pid, &ctx) == -ENOENT) {
			count(r->m.notifications, "gone");
			na_exec_info_free(&info);
			return;
		}
		/* A `runc exec` session's command is what an operator or tool
		 * asked to run in the container: it is decided, not trusted
		 * like the container's entrypoint. */
		if (c->id.is_exec)
			ctx.first_exec = false;
		/* The entrypoint stays the entrypoint until it has been answered:
		 * runc init is a Go program whose runtime signals its threads
		 * (SIGURG preemption), which cancels the pending notification
		 * and restarts the execve with a new id; ancestry alone would
		 * see that retry as a second exec. */
		else if (!c->entry_answered && req->pid == c->id.init_pid)
			ctx.first_exec = true;
		na_cmd cmd = {.exe_base = info.exe_base,
		              .target_base = info.target_base,
		              .argv = info.argv,
		              .argc = info.argc,
		              .truncated = info.truncated};
		pthread_rwlock_rdlock(&r->policy_lock);
		rc = na_cmdpolicy_decide(r->policy, &cmd, &ctx, &d);
		na_level level = r->policy->level;
		pthread_rwlock_unlock(&r->policy_lock);
		if (rc < 0)
			default_decision(level, "error", &d);
		if (d.verdict == NA_VERDICT_APPROVAL) {
			/* Approvals are answered through the control socket
			 * (issue 8); without one the exec is denied. */
			decision_text = "deny";
			answer = EPERM;
		} else {
			answer = d.verdict == NA_VERDICT_DENY ? EPERM : 0;
		}
		size_t len = 0;
		cmdline = na_cmdpolicy_cmdline(info.argv, info.argc, &len);
	}
	rc = na_notify_respond(c->tx, req->id, answer);
	uint64_t latency = elapsed_us(&it->received);
	if (rc == -ENOENT) {
		count(r->m.notifications, "gone");
		error = "the process exited before the answer";
	} else if (rc < 0) {
		count(r->m.recv_errors, errno_label(-rc));
		error = "cannot answer the notification";
	} else {
		count(r->m.notifications, answer == 0 ? "allow" : "deny");
		cf_metric_observe(r->m.latency, NULL, (double)latency / 1e6);
		if (have_info && answer == 0)
			na_ancestry_record(c->anc, req->pid, &ctx, d.name_allowed);
	}
	if (!c->entry_answered && !c->id.is_exec && rc == 0 && answer == 0)
		c->entry_answered = true;
	emit_event(c, req->pid, cmdline ? cmdline : (have_info && info.path ? info.path : ""), &d,
	           decision_text, error, latency);
	free(cmdline);
	if (have_info)
		na_exec_info_free(&info);
}

/* ---- containers ---- */

static void container_free(container *c)
{
	req_item *it = c->head;
	while (it) {
		req_item *n = it->next;
		free(it);
		it = n;
	}
	na_notify_free(c->rx);
	na_notify_free(c->tx);
	na_ancestry_free(c->anc);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

static void log_container(cf_log_level level, const container *c, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return;
	cJSON_AddStringToObject(o, "component", COMPONENT);
	cJSON_AddStringToObject(o, "msg", msg);
	cJSON_AddStringToObject(o, "node", c->run->cfg.node_name);
	cJSON_AddStringToObject(o, "namespace", c->id.namespace_);
	cJSON_AddStringToObject(o, "pod", c->id.pod);
	cJSON_AddStringToObject(o, "container", c->id.container);
	cJSON_AddStringToObject(o, "container_id", c->id.container_id);
	cJSON_AddStringToObject(o, "runtime", na_runtime_kind_name(c->id.runtime));
	cJSON_AddNumberToObject(o, "pid", c->id.pid);
	cJSON_AddBoolToObject(o, "exec_session", c->id.is_exec);
	cf_log_emit(level, o);
}

static void *worker_main(void *arg)
{
	container *c = arg;
	run_state *r = c->run;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->head && !c->hup && !c->stop)
			pthread_cond_wait(&c->cv, &c->mu);
		req_item *it = c->head;
		if (it) {
			c->head = it->next;
			if (!c->head)
				c->tail = NULL;
		}
		bool done = !it && (c->hup || c->stop);
		pthread_mutex_unlock(&c->mu);
		if (done)
			break;
		handle(c, it);
		free(it);
	}
	log_container(CF_LOG_INFO, c, "container released");
	pthread_mutex_lock(&r->list_mu);
	if (c->prev)
		c->prev->next = c->next;
	else
		r->containers = c->next;
	if (c->next)
		c->next->prev = c->prev;
	r->live_workers--;
	cf_metric_set(r->m.notify_fds, NULL, (double)r->live_workers);
	pthread_cond_broadcast(&r->list_cv);
	pthread_mutex_unlock(&r->list_mu);
	container_free(c);
	return NULL;
}

/* Receiver side, main thread: this container gets no more notifications. */
static void container_hangup(run_state *r, container *c)
{
	epoll_ctl(r->epfd, EPOLL_CTL_DEL, na_notify_fd(c->rx), NULL);
	pthread_mutex_lock(&c->mu);
	c->hup = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	/* From here the worker may free c at any time. */
}

static void container_readable(run_state *r, container *c, uint32_t events)
{
	if (events & EPOLLIN) {
		req_item *it = calloc(1, sizeof *it);
		if (!it) {
			/* Leave it pending; epoll reports it again. */
			count(r->m.recv_errors, "ENOMEM");
			return;
		}
		int rc = na_notify_receive(c->rx, &it->req);
		clock_gettime(CLOCK_MONOTONIC, &it->received);
		if (rc == 0) {
			pthread_mutex_lock(&c->mu);
			if (c->tail)
				c->tail->next = it;
			else
				c->head = it;
			c->tail = it;
			pthread_cond_signal(&c->cv);
			pthread_mutex_unlock(&c->mu);
			return;
		}
		free(it);
		if (rc == -ENOENT || rc == -EINTR || rc == -ECANCELED) {
			/* The target went away between poll and receive. */
			count(r->m.recv_errors, errno_label(-rc));
			return;
		}
		count(r->m.recv_errors, errno_label(-rc));
		log_container(CF_LOG_ERROR, c, "notify fd unusable; releasing it");
		container_hangup(r, c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR))
		container_hangup(r, c); /* every process of the filter is gone */
}

static void read_environ_for_exec(container *c)
{
	/* A `runc exec` session joins a running container: its init's
	 * environment is already the container's. */
	if (c->id.is_exec)
		resolve_ids(c);
}

static int register_container(run_state *r, na_handoff *h, char *err, size_t errlen)
{
	na_container_identity id;
	char perr[256] = "";
	int rc = na_identity_parse(h->json, h->len, &id, perr, sizeof perr);
	if (rc < 0) {
		/* Keep policing the container even when its state cannot be read:
		 * releasing the fd would make every exec in it fail (ENOSYS). */
		cf_log_msg(CF_LOG_ERROR, COMPONENT,
		           "handoff state unreadable (%s); container identity unknown", perr);
		memset(&id, 0, sizeof id);
		snprintf(id.container, sizeof id.container, "unknown");
		id.pid = id.init_pid = h->peer_pid;
		id.seccomp_fd_index = -1;
	}
	int index = id.seccomp_fd_index;
	if (index < 0) {
		if (h->n_fds != 1) {
			snprintf(err, errlen, "handoff carries %zu fds and names no seccompFd",
			         h->n_fds);
			return -EPROTO;
		}
		index = 0;
	}
	if ((size_t)index >= h->n_fds) {
		snprintf(err, errlen, "seccompFd index %d but only %zu fds received", index,
		         h->n_fds);
		return -EPROTO;
	}
	if (na_fd_is_seccomp_notify(h->fds[index]) != 1) {
		snprintf(err, errlen, "the handed-over fd is not a seccomp notify fd");
		return -EPROTO;
	}
	if (id.metadata[0] && strcmp(id.metadata, NA_PROFILE_METADATA) != 0)
		cf_log_msg(CF_LOG_WARNING, COMPONENT,
		           "container %s uses listenerMetadata \"%s\", not this agent's profile",
		           id.container_id, id.metadata);
	container *c = calloc(1, sizeof *c);
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->kind = ITEM_CONTAINER;
	c->run = r;
	c->id = id;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	int fd = na_handoff_take_fd(h, (size_t)index);
	c->rx = na_notify_new(fd, err, errlen);
	if (!c->rx) {
		close(fd);
		goto fail;
	}
	int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dupfd < 0) {
		snprintf(err, errlen, "dup: %s", strerror(errno));
		goto fail;
	}
	c->tx = na_notify_new(dupfd, err, errlen);
	if (!c->tx) {
		close(dupfd);
		goto fail;
	}
	c->anc = na_ancestry_new(id.pid, NULL, NULL);
	if (!c->anc) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	read_environ_for_exec(c);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&r->list_mu);
	pthread_t t;
	rc = pthread_create(&t, &attr, worker_main, c);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		pthread_mutex_unlock(&r->list_mu);
		snprintf(err, errlen, "cannot start a worker thread: %s", strerror(rc));
		goto fail;
	}
	c->next = r->containers;
	if (r->containers)
		r->containers->prev = c;
	r->containers = c;
	r->live_workers++;
	cf_metric_set(r->m.notify_fds, NULL, (double)r->live_workers);
	/* Registered before epoll can report it; the worker only frees c
	 * after hup/stop, which only the main thread sets after this. */
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, na_notify_fd(c->rx), &ev) < 0) {
		int e = errno;
		pthread_mutex_unlock(&r->list_mu);
		pthread_mutex_lock(&c->mu);
		c->hup = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		snprintf(err, errlen, "epoll_ctl: %s", strerror(e));
		return -e;
	}
	pthread_mutex_unlock(&r->list_mu);
	log_container(CF_LOG_INFO, c,
	              c->id.is_exec ? "exec session registered" : "container registered");
	return 0;
fail:
	container_free(c);
	return -EINVAL;
}

/* ---- acceptor thread ---- */

static void *acceptor_main(void *arg)
{
	run_state *r = arg;
	struct pollfd p[2] = {{.fd = na_listener_fd(r->listener), .events = POLLIN},
	                      {.fd = r->stop_efd, .events = POLLIN}};
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
		na_handoff h;
		char err[512] = "";
		int rc = na_listener_accept(r->listener, &h, err, sizeof err);
		if (rc == -EAGAIN || rc == -EINTR || rc == -ECONNABORTED)
			continue;
		if (rc < 0) {
			count(r->m.handoffs, "rejected");
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "handoff rejected: %s", err);
			continue;
		}
		rc = register_container(r, &h, err, sizeof err);
		na_handoff_free(&h);
		count(r->m.handoffs, rc == 0 ? "accepted" : "rejected");
		if (rc < 0)
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "handoff rejected: %s", err);
	}
	return NULL;
}

/* ---- metrics thread: a minimal HTTP/1.0-style server ---- */

static void serve_metrics_conn(run_state *r, int fd)
{
	char req[CF_METRICS_MAX_REQUEST_BYTES + 1];
	size_t n = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n < CF_METRICS_MAX_REQUEST_BYTES) {
		long left = CF_METRICS_IO_TIMEOUT_MS - (long)(elapsed_us(&t0) / 1000);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return;
		ssize_t k = read(fd, req + n, CF_METRICS_MAX_REQUEST_BYTES - n);
		if (k <= 0)
			return;
		n += (size_t)k;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[n] = '\0';
	cf_buf body, out;
	cf_buf_init(&body, 0);
	cf_buf_init(&out, 0);
	const char *status = "200 OK", *ctype = CF_METRICS_CONTENT_TYPE;
	if (strncmp(req, "GET /metrics ", 13) == 0 || strncmp(req, "GET /metrics?", 13) == 0) {
		sync_dropped(r);
		if (cf_metrics_render(r->m.reg, &body) < 0)
			status = "500 Internal Server Error";
	} else if (strncmp(req, "GET /healthz ", 13) == 0) {
		ctype = "text/plain";
		cf_buf_append_str(&body, "ok\n");
	} else if (strncmp(req, "GET ", 4) == 0) {
		status = "404 Not Found";
		ctype = "text/plain";
		cf_buf_append_str(&body, "not found\n");
	} else {
		status = n >= CF_METRICS_MAX_REQUEST_BYTES ? "431 Request Header Fields Too Large"
		                                           : "405 Method Not Allowed";
		ctype = "text/plain";
	}
	cf_buf_appendf(&out,
	               "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	               "Connection: close\r\n\r\n",
	               status, ctype, body.len);
	cf_buf_append(&out, body.data ? body.data : "", body.len);
	size_t off = 0;
	while (off < out.len) {
		long left = CF_METRICS_IO_TIMEOUT_MS - (long)(elapsed_us(&t0) / 1000);
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t k = send(fd, out.data + off, out.len - off, MSG_NOSIGNAL);
		if (k <= 0)
			break;
		off += (size_t)k;
	}
	cf_buf_free(&body);
	cf_buf_free(&out);
}

static void *metrics_main(void *arg)
{
	run_state *r = arg;
	struct pollfd p[2] = {{.fd = r->metrics_fd, .events = POLLIN},
	                      {.fd = r->stop_efd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int fd = accept4(r->metrics_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			continue;
		serve_metrics_conn(r, fd);
		close(fd);
	}
	return NULL;
}

static int open_metrics(run_state *r, char *err, size_t errlen)
{
	uint32_t addr;
	uint16_t port;
	r->metrics_fd = -1;
	if (!r->cfg.metrics_listen[0])
		return 0;
	if (na_config_parse_listen(r->cfg.metrics_listen, &addr, &port, err, errlen) < 0)
		return -EINVAL;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	sin.sin_addr.s_addr = addr;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 16) < 0) {
		snprintf(err, errlen, "metrics listener %s: %s", r->cfg.metrics_listen,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EADDRINUSE;
	}
	r->metrics_fd = fd;
	return 0;
}

/* ---- inotify on the policy files' directories ---- */

static void watch_policies(run_state *r)
{
	for (size_t i = 0; i < r->cfg.n_policies; i++) {
		char *copy = strdup(r->cfg.policies[i]);
		if (!copy)
			continue;
		/* The directory, not the file: editors and ConfigMap updates
		 * replace files (rename, symlink swap) rather than write them. */
		const char *dir = dirname(copy);
		if (inotify_add_watch(r->inofd, dir,
		                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0)
			cf_log_msg(CF_LOG_WARNING, COMPONENT,
			           "cannot watch %s for policy changes (%s); SIGHUP still reloads",
			           dir, strerror(errno));
		free(copy);
	}
}

/* True when an event names one of the policy files or a ConfigMap's
 * "..data" symlink (kubelet swaps it to update every file at once); other
 * files in the same directories do not trigger a reload. */
static bool drain_inotify(run_state *r)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	for (;;) {
		ssize_t n = read(r->inofd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *e = (struct inotify_event *)(void *)p;
			p += sizeof *e + e->len;
			if (e->mask & IN_Q_OVERFLOW) {
				relevant = true;
				continue;
			}
			if (!e->len)
				continue;
			if (strcmp(e->name, "..data") == 0) {
				relevant = true;
				continue;
			}
			for (size_t i = 0; i < r->cfg.n_policies; i++) {
				const char *base = strrchr(r->cfg.policies[i], '/');
				base = base ? base + 1 : r->cfg.policies[i];
				if (strcmp(base, e->name) == 0)
					relevant = true;
			}
		}
	}
	return relevant;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f, "usage: codeframe-agent run [--config FILE] [--socket PATH] [--policy FILE]...\n"
	           "         [--state-dir DIR] [--metrics-listen ADDR:PORT] [--profile-dir DIR]\n"
	           "         [--node-name NAME]\n");
}

static int parse_args(int argc, char **argv, na_config *cfg, char *err, size_t errlen)
{
	enum { O_CONFIG = 1, O_SOCKET, O_POLICY, O_STATE, O_METRICS, O_PROFILE, O_NODE, O_HELP };
	static const struct option opts[] = {{"config", required_argument, NULL, O_CONFIG},
	                                     {"socket", required_argument, NULL, O_SOCKET},
	                                     {"policy", required_argument, NULL, O_POLICY},
	                                     {"state-dir", required_argument, NULL, O_STATE},
	                                     {"metrics-listen", required_argument, NULL, O_METRICS},
	                                     {"profile-dir", required_argument, NULL, O_PROFILE},
	                                     {"node-name", required_argument, NULL, O_NODE},
	                                     {"help", no_argument, NULL, O_HELP},
	                                     {NULL, 0, NULL, 0}};
	/* The config file first, so flags override it whatever their order. */
	optind = 1;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == O_CONFIG && na_config_load_file(cfg, optarg, err, errlen) < 0)
			return 1;
	}
	char **policies = calloc((size_t)argc, sizeof *policies);
	size_t n_pol = 0;
	int rc = 0;
	if (!policies)
		return 1;
	optind = 1;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case O_CONFIG:
			break;
		case O_SOCKET:
			rc = na_config_set(&cfg->socket, optarg);
			break;
		case O_POLICY:
			policies[n_pol++] = optarg;
			break;
		case O_STATE:
			rc = na_config_set(&cfg->state_dir, optarg);
			break;
		case O_METRICS:
			rc = na_config_set(&cfg->metrics_listen, optarg);
			break;
		case O_PROFILE:
			rc = na_config_set(&cfg->profile_dir, optarg);
			break;
		case O_NODE:
			rc = na_config_set(&cfg->node_name, optarg);
			break;
		case O_HELP:
			usage(stdout);
			free(policies);
			return 3;
		default:
			usage(stderr);
			free(policies);
			return 2;
		}
		if (rc < 0)
			break;
	}
	if (rc == 0 && optind < argc) {
		fprintf(stderr, "codeframe-agent run: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		free(policies);
		return 2;
	}
	if (rc == 0 && n_pol > 0)
		rc = na_config_set_policies(cfg, policies, n_pol);
	free(policies);
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	uint32_t a;
	uint16_t p;
	if (cfg->metrics_listen[0] &&
	    na_config_parse_listen(cfg->metrics_listen, &a, &p, err, errlen) < 0)
		return 2;
	return 0;
}

static int make_state_dir(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) == 0 || errno == EEXIST)
		return 0;
	snprintf(err, errlen, "cannot create state directory %s: %s", dir, strerror(errno));
	return -errno;
}

static void shutdown_workers(run_state *r)
{
	pthread_mutex_lock(&r->list_mu);
	for (container *c = r->containers; c; c = c->next) {
		pthread_mutex_lock(&c->mu);
		c->stop = true;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += SHUTDOWN_WAIT_MS / 1000;
	while (r->live_workers > 0) {
		if (pthread_cond_timedwait(&r->list_cv, &r->list_mu, &deadline) == ETIMEDOUT)
			break;
	}
	size_t left = r->live_workers;
	pthread_mutex_unlock(&r->list_mu);
	if (left)
		cf_log_msg(CF_LOG_WARNING, COMPONENT,
		           "%zu container worker(s) still busy at exit (a read is blocked)", left);
}

static int run_loop(run_state *r)
{
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(r->epfd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "epoll_wait: %s", strerror(errno));
			return 1;
		}
		bool reload = false;
		for (int i = 0; i < n; i++) {
			enum item_kind *k = evs[i].data.ptr;
			if (*k == ITEM_CONTAINER) {
				container_readable(r, (container *)(void *)k, evs[i].events);
			} else if (*k == ITEM_INOTIFY) {
				reload |= drain_inotify(r);
			} else if (*k == ITEM_SIGNAL) {
				struct signalfd_siginfo si;
				while (read(r->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
					if (si.ssi_signo == SIGHUP) {
						reload_policy(r, "SIGHUP");
					} else {
						cf_log_msg(CF_LOG_INFO, COMPONENT,
						           "signal %u: answering what is in flight "
						           "and exiting",
						           si.ssi_signo);
						return 0;
					}
				}
			}
		}
		if (reload)
			reload_policy(r, "file change");
	}
}

int na_run_main(int argc, char **argv)
{
	run_state r;
	char err[1024] = "";
	int status = 1;
	memset(&r, 0, sizeof r);
	r.epfd = r.sigfd = r.inofd = r.stop_efd = r.metrics_fd = -1;
	pthread_rwlock_init(&r.policy_lock, NULL);
	pthread_mutex_init(&r.list_mu, NULL);
	pthread_cond_init(&r.list_cv, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before any thread starts (the event writer is one), so every
	 * thread inherits the mask and only the signalfd sees these signals. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (na_config_init(&r.cfg) < 0) {
		fprintf(stderr, "codeframe-agent run: out of memory\n");
		return 1;
	}
	int prc = parse_args(argc, argv, &r.cfg, err, sizeof err);
	if (prc == 3) {
		na_config_free(&r.cfg);
		return 0;
	}
	if (prc) {
		if (err[0])
			fprintf(stderr, "codeframe-agent run: %s\n", err);
		na_config_free(&r.cfg);
		return prc;
	}
	cf_log_set_min_level(r.cfg.log_level);
	if (metrics_init(&r.m, err, sizeof err) < 0)
		goto fail;
	r.policy = load_policies(&r.cfg, err, sizeof err);
	if (!r.policy)
		goto fail;
	if (make_state_dir(r.cfg.state_dir, err, sizeof err) < 0)
		goto fail;
	if (r.cfg.profile_dir[0] &&
	    na_profile_install(r.cfg.profile_dir, r.cfg.socket, err, sizeof err) < 0)
		goto fail;
	gid_t group = (gid_t)-1;
	if (r.cfg.approval_group[0]) {
		struct group *g = getgrnam(r.cfg.approval_group);
		if (!g) {
			snprintf(err, sizeof err, "approvalGroup \"%s\" does not exist",
			         r.cfg.approval_group);
			goto fail;
		}
		group = g->gr_gid;
	}
	(void)group; /* the group governs the control socket (approvals), not
	              * the runtime socket: runtimes connect as root */
	r.listener = na_listener_open(r.cfg.socket, (gid_t)-1, err, sizeof err);
	if (!r.listener)
		goto fail;
	if (open_metrics(&r, err, sizeof err) < 0)
		goto fail;
	/* Every exec is one event line (DESIGN.md), routine ones at level
	 * debug, so the default logLevel (info) still writes them all;
	 * logLevel warning or error trims events to findings. */
	cf_log_level ev_level = r.cfg.log_level >= CF_LOG_WARNING ? r.cfg.log_level : CF_LOG_DEBUG;
	r.events = na_events_new(STDOUT_FILENO, ev_level, 0, err, sizeof err);
	if (!r.events)
		goto fail;
	r.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	r.inofd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	r.stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r.sigfd < 0 || r.inofd < 0 || r.stop_efd < 0 || r.epfd < 0) {
		snprintf(err, sizeof err, "cannot set up event sources: %s", strerror(errno));
		goto fail;
	}
	r.sig_tag = ITEM_SIGNAL;
	r.ino_tag = ITEM_INOTIFY;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &r.sig_tag};
	epoll_ctl(r.epfd, EPOLL_CTL_ADD, r.sigfd, &ev);
	ev.data.ptr = &r.ino_tag;
	epoll_ctl(r.epfd, EPOLL_CTL_ADD, r.inofd, &ev);
	watch_policies(&r);
	if (pthread_create(&r.acceptor, NULL, acceptor_main, &r) != 0) {
		snprintf(err, sizeof err, "cannot start the acceptor thread");
		goto fail;
	}
	r.acceptor_started = true;
	if (r.metrics_fd >= 0) {
		if (pthread_create(&r.metrics_thread, NULL, metrics_main, &r) != 0) {
			snprintf(err, sizeof err, "cannot start the metrics thread");
			goto fail;
		}
		r.metrics_started = true;
	}
	cf_log_msg(CF_LOG_INFO, COMPONENT,
	           "listening on %s (policy level %s, %zu policy file(s), metrics %s, node %s)",
	           r.cfg.socket, na_level_name(r.policy->level), r.cfg.n_policies,
	           r.cfg.metrics_listen[0] ? r.cfg.metrics_listen : "off",
	           r.cfg.node_name[0] ? r.cfg.node_name : "-");
	status = run_loop(&r);
	goto out;
fail:
	cf_log_msg(CF_LOG_ERROR, COMPONENT, "%s", err);
	fprintf(stderr, "codeframe-agent run: %s\n", err);
	status = 1;
out:
	if (r.stop_efd >= 0) {
		uint64_t one = 1;
		if (write(r.stop_efd, &one, sizeof one) < 0)
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot signal shutdown");
	}
	if (r.acceptor_started)
		pthread_join(r.acceptor, NULL);
	if (r.metrics_started)
		pthread_join(r.metrics_thread, NULL);
	shutdown_workers(&r);
	bool workers_left = r.live_workers > 0;
	if (r.events) {
		sync_dropped(&r);
		na_events_flush(r.events);
		if (!workers_left)
			na_events_free(r.events);
	}
	na_listener_close(r.listener);
	if (r.metrics_fd >= 0)
		close(r.metrics_fd);
	if (r.epfd >= 0)
		close(r.epfd);
	if (r.sigfd >= 0)
		close(r.sigfd);
	if (r.inofd >= 0)
		close(r.inofd);
	if (!workers_left) {
		/* Stuck workers still use these; the process exit reclaims them. */
		if (r.stop_efd >= 0)
			close(r.stop_efd);
		na_policy_free(r.policy);
		cf_metrics_free(r.m.reg);
		na_config_free(&r.cfg);
	}
	return status;
}
