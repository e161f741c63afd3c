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
#include "na_approval.h"
#include "na_cmdpolicy.h"
#include "na_config.h"
#include "na_events.h"
#include "na_identity.h"
#include "na_listener.h"
#include "na_notify.h"
#include "na_procmem.h"
#include "na_node.h"
#include "na_privs.h"
#include "na_profile.h"
#include "na_wire.h"

#define COMPONENT "agent"
/* Worker threads only decide and read memory: a small stack is plenty and
 * keeps hundreds of containers cheap. */
#define WORKER_STACK_BYTES (256u * 1024u)
/* How long shutdown waits for workers to answer what they hold. */
#define SHUTDOWN_WAIT_MS 5000
#define MAX_POLICY_DIRS  64

enum item_kind { ITEM_HOLDER = 1, ITEM_SIGNAL, ITEM_INOTIFY };

typedef struct req_item {
	na_notify_req req;
	uint32_t flags; /* NA_WIRE_ENTRY_ANSWERED */
	/* Not a notification: an approved exec's ancestry record, handed back
	 * to the container's worker (the only user of its ancestry table). */
	bool record;
	bool name_allowed;
	na_cmd_context ctx;
	struct timespec received;
	struct req_item *next;
} req_item;

typedef struct run_state run_state;

/* An exec waiting for an operator's approval (answered by the approval
 * thread, so the container's other execs go on meanwhile). */
typedef struct parked {
	uint64_t key; /* the container's */
	na_notify_req req;
	int fd; /* a duplicate of the notify fd: ID_VALID checks */
	char id[NA_APPROVAL_ID_LEN + 1];
	uint64_t start; /* the process' start time */
	char namespace_[CF_IDENTITY_MAX_FIELD], pod[CF_IDENTITY_MAX_FIELD],
	    container[CF_IDENTITY_MAX_FIELD], project_id[CF_IDENTITY_MAX_FIELD],
	    user_id[CF_IDENTITY_MAX_FIELD];
	char *cmdline;
	na_decision d;
	na_cmd_context ctx;
	struct timespec received;
	struct parked *next;
} parked;

typedef struct container {
	run_state *run;
	uint64_t key; /* the holder's */
	na_container_identity id;
	/* A duplicate of the holder's notify fd, used only for the ID_VALID
	 * check after reading the target's memory (worker thread only); the
	 * holder alone receives and responds. */
	na_notify *tx;
	na_ancestry *anc;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	req_item *head, *tail;
	bool hup;  /* receiver is done with this container */
	bool stop; /* shutdown: answer what is queued, then exit */
	bool ids_resolved;
	bool entry_answered;
	/* The init process as it was when this policy side continued its
	 * entrypoint (worker thread only): a later exec by init whose image
	 * is still that one is the same entrypoint, retried by the kernel. */
	bool entry_known;
	uint64_t entry_start, entry_stack;
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
	int hsock;    /* to the holder (na_wire) */
	pthread_mutex_t send_mu;
	enum item_kind sig_tag, ino_tag, holder_tag;
	na_events *events;
	metrics_set m;
	pthread_rwlock_t policy_lock;
	na_policy *policy;
	pthread_mutex_t list_mu;
	pthread_cond_t list_cv;
	container *containers;
	size_t live_workers;
	int metrics_fd;
	pthread_t metrics_thread;
	bool metrics_started;
	/* approvals */
	na_approvals *approvals;
	gid_t approval_gid; /* (gid_t)-1: root only */
	int control_fd;
	pthread_t control_thread, approval_thread;
	bool control_started, approval_started;
	pthread_mutex_t park_mu;
	pthread_cond_t park_cv;
	parked *parked_head;
	bool stopping;
	na_node *node; /* NULL: the node label is not managed */
	bool unlabel;  /* the holder stops for good: remove the label */
};

static uint64_t elapsed_us(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t us = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 +
	             (int64_t)(t1.tv_nsec - t0->tv_nsec) / 1000;
	return us < 0 ? 0 : (uint64_t)us;
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

/* ---- to the holder ---- */

static void send_msg(run_state *r, uint32_t type, uint64_t key, uint64_t id, int value)
{
	na_wire_msg m;
	memset(&m, 0, sizeof m);
	m.type = type;
	m.key = key;
	m.value = value;
	m.u.req.id = id;
	pthread_mutex_lock(&r->send_mu);
	/* Blocking: the holder always reads. A failure means it is gone, and
	 * the main loop sees the hang-up and exits. */
	int rc = na_wire_send(r->hsock, &m, -1, 0);
	pthread_mutex_unlock(&r->send_mu);
	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot answer the holder: %s", strerror(-rc));
}

static void send_level(run_state *r, uint32_t type, na_level level)
{
	send_msg(r, type, 0, 0, (int)level);
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
	send_level(r, NA_WIRE_LEVEL, p->level);
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
	char *env = NULL;
	size_t env_len = 0;
	if (cf_read_file(path, CF_PROC_ENVIRON_MAX_BYTES, &b, err, sizeof err) == 0) {
		na_identity_apply_environ(&c->id, b.data, b.len);
		cf_buf_free(&b);
	} else if (na_procmem_read_environ(c->id.init_pid, CF_PROC_ENVIRON_MAX_BYTES, &env,
	                                   &env_len) == 0) {
		/* Without CAP_DAC_OVERRIDE the 0400 file of another uid cannot
		 * be opened; its memory can still be read. */
		na_identity_apply_environ(&c->id, env, env_len);
		free(env);
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

static container *find_container(run_state *r, uint64_t key);
static void log_container(cf_log_level level, const container *c, const char *msg);

/* ---- approvals ---- */

/* Parks an exec that needs an operator's answer. 0, or -errno (the caller
 * denies it). */
static int park_for_approval(container *c, const req_item *it, const na_decision *d,
                             const na_cmd_context *ctx, const char *cmdline)
{
	run_state *r = c->run;
	na_proc_stat st;
	if (na_procmem_stat(it->req.pid, &st) < 0)
		return -ESRCH;
	parked *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->cmdline = strdup(cmdline);
	p->fd = fcntl(na_notify_fd(c->tx), F_DUPFD_CLOEXEC, 3);
	if (!p->cmdline || p->fd < 0) {
		free(p->cmdline);
		if (p->fd >= 0)
			close(p->fd);
		free(p);
		return -ENOMEM;
	}
	na_approval_info info = {.container_id = c->id.container_id,
	                         .pid = it->req.pid,
	                         .start = st.start,
	                         .cmdline = cmdline,
	                         .namespace_ = c->id.namespace_,
	                         .pod = c->id.pod,
	                         .container = c->id.container};
	long timeout_ms = r->cfg.approval_timeout_s * 1000L;
	int rc = na_approvals_request(r->approvals, &info, timeout_ms, p->id);
	if (rc < 0) {
		free(p->cmdline);
		close(p->fd);
		free(p);
		return rc;
	}
	p->key = c->key;
	p->req = it->req;
	p->start = st.start;
	p->d = *d;
	p->ctx = *ctx;
	p->received = it->received;
	memcpy(p->namespace_, c->id.namespace_, sizeof p->namespace_);
	memcpy(p->pod, c->id.pod, sizeof p->pod);
	memcpy(p->container, c->id.container, sizeof p->container);
	memcpy(p->project_id, c->id.project_id, sizeof p->project_id);
	memcpy(p->user_id, c->id.user_id, sizeof p->user_id);
	long left = 0;
	bool expired = false;
	na_approvals_state(r->approvals, p->id, &left, &expired);
	/* The holder waits this long before its default applies. */
	send_msg(r, NA_WIRE_EXTEND, c->key, it->req.id, (int)(left + 2000));
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddStringToObject(o, "component", COMPONENT);
		cJSON_AddStringToObject(o, "msg",
		                        rc == 0 ? "exec waits for approval"
		                                : "exec waits for approval (again)");
		cJSON_AddStringToObject(o, "approval_id", p->id);
		cJSON_AddStringToObject(o, "namespace", c->id.namespace_);
		cJSON_AddStringToObject(o, "pod", c->id.pod);
		cJSON_AddStringToObject(o, "container", c->id.container);
		cJSON_AddNumberToObject(o, "pid", it->req.pid);
		cJSON_AddStringToObject(o, "command", cmdline);
		cJSON_AddNumberToObject(o, "expires_in_seconds", (double)(left / 1000));
		cf_log_emit(CF_LOG_WARNING, o);
	}
	pthread_mutex_lock(&r->park_mu);
	p->next = r->parked_head;
	r->parked_head = p;
	pthread_cond_signal(&r->park_cv);
	pthread_mutex_unlock(&r->park_mu);
	return 0;
}

static void parked_free(parked *p)
{
	free(p->cmdline);
	if (p->fd >= 0)
		close(p->fd);
	free(p);
}

/* Hands an approved exec's ancestry record to its container's worker. */
static void queue_record(run_state *r, const parked *p)
{
	req_item *it = calloc(1, sizeof *it);
	if (!it)
		return; /* fails closed: descendants get no ancestry */
	it->record = true;
	it->req = p->req;
	it->ctx = p->ctx;
	it->name_allowed = p->d.name_allowed;
	pthread_mutex_lock(&r->list_mu);
	container *c = find_container(r, p->key);
	if (c) {
		pthread_mutex_lock(&c->mu);
		if (c->tail)
			c->tail->next = it;
		else
			c->head = it;
		c->tail = it;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
		it = NULL;
	}
	pthread_mutex_unlock(&r->list_mu);
	free(it);
}

/* true when p is done (answered or gone). */
static bool check_parked(run_state *r, parked *p)
{
	long left = 0;
	bool expired = false;
	int st = na_approvals_state(r->approvals, p->id, &left, &expired);
	if (st == NA_APPROVAL_PENDING) {
		if (na_notify_id_valid_fd(p->fd, p->req.id) == 0)
			return false;
		/* The notification is gone: a signal interrupted the execve
		 * (it comes back with a new id and finds this approval), or
		 * the process exited (nothing may ever use this approval). */
		na_proc_stat now;
		if (na_procmem_stat(p->req.pid, &now) < 0 || now.start != p->start) {
			na_approvals_remove(r->approvals, p->id);
			cf_log_msg(CF_LOG_INFO, COMPONENT,
			           "approval %s withdrawn: process %d exited while waiting", p->id,
			           (int)p->req.pid);
		}
		send_msg(r, NA_WIRE_DROP, p->key, p->req.id, 0);
		return true;
	}
	bool grant = st == NA_APPROVAL_GRANTED;
	const char *error = NULL;
	if (st == -ENOENT)
		error = "the approval was withdrawn";
	else if (expired)
		error = "the approval timed out";
	send_msg(r, NA_WIRE_ANSWER, p->key, p->req.id, grant ? 0 : EPERM);
	na_approvals_remove(r->approvals, p->id);
	if (grant)
		queue_record(r, p);
	uint64_t latency = elapsed_us(&p->received);
	count(r->m.notifications, grant ? "allow" : "deny");
	cf_metric_observe(r->m.latency, NULL, (double)latency / 1e6);
	na_identity who = {.namespace_ = p->namespace_,
	                   .pod = p->pod,
	                   .container = p->container,
	                   .project_id = p->project_id,
	                   .user_id = p->user_id};
	na_event ev = {.who = &who,
	               .pid = p->req.pid,
	               .command = p->cmdline,
	               .decision = &p->d,
	               .decision_text = grant ? "allow" : "deny",
	               .error = error,
	               .latency_us = latency};
	na_events_submit(r->events, &ev);
	return true;
}

/* Checks parked execs every APPROVAL_POLL_MS (an operator's answer, a
 * timeout, a withdrawn notification). */
#define APPROVAL_POLL_MS 100
/* Expired approvals nobody asked for again are forgotten after this. */
#define APPROVAL_SWEEP_GRACE_MS 5000

static void *approval_main(void *arg)
{
	run_state *r = arg;
	pthread_mutex_lock(&r->park_mu);
	while (!r->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += APPROVAL_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&r->park_cv, &r->park_mu, &ts);
		parked *list = r->parked_head;
		r->parked_head = NULL;
		pthread_mutex_unlock(&r->park_mu);
		parked *keep = NULL;
		while (list) {
			parked *n = list->next;
			if (check_parked(r, list)) {
				parked_free(list);
			} else {
				list->next = keep;
				keep = list;
			}
			list = n;
		}
		na_approvals_sweep(r->approvals, APPROVAL_SWEEP_GRACE_MS);
		pthread_mutex_lock(&r->park_mu);
		while (keep) {
			parked *n = keep->next;
			keep->next = r->parked_head;
			r->parked_head = keep;
			keep = n;
		}
	}
	pthread_mutex_unlock(&r->park_mu);
	return NULL;
}

static void *control_main(void *arg)
{
	run_state *r = arg;
	struct pollfd p[2] = {{.fd = r->control_fd, .events = POLLIN},
	                      {.fd = r->stop_efd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		int conn = accept4(r->control_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0)
			continue;
		if (na_control_serve(r->approvals, conn, r->approval_gid) == -EPERM)
			cf_log_msg(CF_LOG_WARNING, COMPONENT,
			           "control socket: a peer without permission was refused");
	}
	return NULL;
}

/* true when this exec is the container's entrypoint: the first exec by its
 * init process that replaces the runtime's own image. *st gets init's stat
 * (*have_st says whether it could be read), taken before the answer lets
 * the exec replace the image.
 *
 * A CONTINUE the holder delivered (entry_answered) does not prove the exec
 * happened: when a signal interrupts the kernel's wait for the answer (runc
 * init is a Go program: SIGURG preemption) and the answer lands after the
 * wait returned but before the task re-checks the notification, the ioctl
 * succeeds and the kernel still discards the answer and restarts the
 * execve with a new notification; an execve can also fail after a CONTINUE
 * (-ERESTARTNOINTR when its credential lock is contended under a pending
 * signal). The retry comes from an init whose image, start time and stack
 * start included, is unchanged: still the runtime's, so still trusted. A
 * policy side that did not continue the entrypoint itself (restarted since)
 * cannot tell and fails closed. */
static bool is_entrypoint(container *c, pid_t pid, na_proc_stat *st, bool *have_st)
{
	*have_st = false;
	if (c->id.is_exec || pid != c->id.init_pid)
		return false;
	*have_st = na_procmem_stat(pid, st) == 0;
	if (!c->entry_answered)
		return true;
	if (!c->entry_known || !*have_st || st->start != c->entry_start ||
	    st->startstack != c->entry_stack)
		return false;
	log_container(CF_LOG_INFO, c,
	              "entrypoint exec retried after it was continued (init still runs the "
	              "runtime's image): still the entrypoint");
	return true;
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
	/* The holder knows (it responded) whether an exec on this fd was
	 * already continued; a restarted policy side learns it here. */
	if (it->flags & NA_WIRE_ENTRY_ANSWERED)
		c->entry_answered = true;
	if (current_level(r) == NA_LEVEL_DISABLED) {
		/* disabled: nothing is read, every exec continues. */
		send_msg(r, NA_WIRE_ANSWER, c->key, req->id, 0);
		count(r->m.notifications, "allow");
		cf_metric_observe(r->m.latency, NULL, (double)elapsed_us(&it->received) / 1e6);
		return;
	}
	na_proc_stat init_st;
	bool have_init_st = false;
	bool entrypoint = is_entrypoint(c, req->pid, &init_st, &have_init_st);
	/* While init still runs the runtime's image, its environment is the
	 * runtime's, not the container's. */
	if (!entrypoint)
		resolve_ids(c);
	int rc = na_procmem_read_exec(req, na_notify_fd(c->tx), &info, err, sizeof err);
	if (rc == -ENOENT) {
		count(r->m.notifications, "gone");
		/* target exited or the syscall was interrupted: nobody waits */
		send_msg(r, NA_WIRE_DROP, c->key, req->id, 0);
		return;
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
			send_msg(r, NA_WIRE_DROP, c->key, req->id, 0);
			return;
		}
		/* A `runc exec` session's command is what an operator or tool
		 * asked to run in the container: it is decided, not trusted
		 * like the container's entrypoint. */
		if (c->id.is_exec)
			ctx.first_exec = false;
		/* The entrypoint stays the entrypoint until it has replaced
		 * init's image: runc init is a Go program whose runtime signals
		 * its threads (SIGURG preemption), which cancels the pending
		 * notification (or discards its answer) and restarts the execve
		 * with a new id; ancestry alone would see that retry as a second
		 * exec. Once init runs the container's image, nothing is the
		 * entrypoint again, whatever a (restarted, empty) ancestry table
		 * thinks (is_entrypoint). */
		else
			ctx.first_exec = entrypoint;
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
		size_t len = 0;
		cmdline = na_cmdpolicy_cmdline(info.argv, info.argc, &len);
		if (d.verdict == NA_VERDICT_APPROVAL) {
			if (cmdline && park_for_approval(c, it, &d, &ctx, cmdline) == 0) {
				/* The approval thread answers and logs the outcome. */
				na_exec_info_free(&info);
				return;
			}
			decision_text = "deny";
			answer = EPERM;
			error = "the approval could not be asked (too many waiting)";
		} else {
			answer = d.verdict == NA_VERDICT_DENY ? EPERM : 0;
		}
	}
	if (answer == 0 && ctx.first_exec && have_init_st) {
		c->entry_known = true;
		c->entry_start = init_st.start;
		c->entry_stack = init_st.startstack;
	}
	send_msg(r, NA_WIRE_ANSWER, c->key, req->id, answer);
	uint64_t latency = elapsed_us(&it->received);
	count(r->m.notifications, answer == 0 ? "allow" : "deny");
	cf_metric_observe(r->m.latency, NULL, (double)latency / 1e6);
	/* Recorded now: a record for an exec that then failed (the target
	 * went away) confers nothing (na_ancestry checks the image changed). */
	if (have_info && answer == 0)
		na_ancestry_record(c->anc, req->pid, &ctx, d.name_allowed);
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
		if (it->record)
			na_ancestry_record(c->anc, it->req.pid, &it->ctx, it->name_allowed);
		else
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

static void read_environ_for_exec(container *c)
{
	/* A `runc exec` session joins a running container: its init's
	 * environment is already the container's. */
	if (c->id.is_exec)
		resolve_ids(c);
}

/* This container gets no more notifications (REMOVE, or shutdown). */
static void container_hangup(container *c)
{
	pthread_mutex_lock(&c->mu);
	c->hup = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	/* From here the worker may free c at any time. */
}

/* Caller holds list_mu. */
static container *find_container(run_state *r, uint64_t key)
{
	for (container *c = r->containers; c; c = c->next)
		if (c->key == key && !c->hup)
			return c;
	return NULL;
}

static void queue_notification(run_state *r, const na_wire_msg *m)
{
	req_item *it = calloc(1, sizeof *it);
	if (!it) {
		/* The holder's deadline answers it with the level's default. */
		count(r->m.recv_errors, "ENOMEM");
		return;
	}
	it->req = m->u.req;
	it->flags = m->flags;
	clock_gettime(CLOCK_MONOTONIC, &it->received);
	pthread_mutex_lock(&r->list_mu);
	container *c = find_container(r, m->key);
	if (!c) {
		pthread_mutex_unlock(&r->list_mu);
		free(it);
		send_msg(r, NA_WIRE_DROP, m->key, m->u.req.id, 0);
		return;
	}
	pthread_mutex_lock(&c->mu);
	if (c->tail)
		c->tail->next = it;
	else
		c->head = it;
	c->tail = it;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_mutex_unlock(&r->list_mu);
}

static void remove_container(run_state *r, uint64_t key)
{
	pthread_mutex_lock(&r->list_mu);
	container *c = find_container(r, key);
	if (c)
		container_hangup(c);
	pthread_mutex_unlock(&r->list_mu);
}

/* ADD from the holder: the identity it parsed and a duplicate of the fd
 * (taken: closed on error too). */
static int add_container(run_state *r, const na_wire_msg *m, int fd, char *err, size_t errlen)
{
	if (fd < 0) {
		snprintf(err, errlen, "container without an fd");
		return -EPROTO;
	}
	container *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	c->run = r;
	c->key = m->key;
	c->id = m->u.id;
	/* Strings come from a peer: make sure each is terminated. */
	c->id.container_id[sizeof c->id.container_id - 1] = '\0';
	c->id.namespace_[sizeof c->id.namespace_ - 1] = '\0';
	c->id.pod[sizeof c->id.pod - 1] = '\0';
	c->id.container[sizeof c->id.container - 1] = '\0';
	c->id.pod_uid[sizeof c->id.pod_uid - 1] = '\0';
	c->id.container_type[sizeof c->id.container_type - 1] = '\0';
	c->id.project_id[sizeof c->id.project_id - 1] = '\0';
	c->id.user_id[sizeof c->id.user_id - 1] = '\0';
	c->id.metadata[sizeof c->id.metadata - 1] = '\0';
	c->id.status[sizeof c->id.status - 1] = '\0';
	c->entry_answered = (m->flags & NA_WIRE_ENTRY_ANSWERED) != 0;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->tx = na_notify_new(fd, err, errlen);
	if (!c->tx) {
		close(fd);
		goto fail;
	}
	c->anc = na_ancestry_new(c->id.pid, NULL, NULL);
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
	int rc = pthread_create(&t, &attr, worker_main, c);
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
	pthread_mutex_unlock(&r->list_mu);
	if (m->flags & NA_WIRE_NEW_HANDOFF) {
		count(r->m.handoffs, "accepted");
		log_container(CF_LOG_INFO, c,
		              c->id.is_exec ? "exec session registered" : "container registered");
	} else {
		log_container(CF_LOG_DEBUG, c, "container adopted from the holder");
	}
	return 0;
fail:
	container_free(c);
	return -EINVAL;
}

/* Reads what the holder sent. false when it is gone (the process exits:
 * the holder restarts a policy side when it needs one). */
static bool on_holder(run_state *r)
{
	for (int i = 0; i < 256; i++) {
		na_wire_msg m;
		int fd;
		char err[256] = "";
		int rc = na_wire_recv(r->hsock, &m, &fd, MSG_DONTWAIT);
		if (rc == -EAGAIN)
			return true;
		if (rc == -EPROTO) {
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "malformed message from the holder");
			continue;
		}
		if (rc <= 0)
			return false;
		switch (m.type) {
		case NA_WIRE_ADD:
			if (add_container(r, &m, fd, err, sizeof err) < 0)
				cf_log_msg(CF_LOG_ERROR, COMPONENT, "cannot police a container: %s",
				           err);
			fd = -1;
			break;
		case NA_WIRE_REMOVE:
			remove_container(r, m.key);
			break;
		case NA_WIRE_NOTIFY:
			queue_notification(r, &m);
			break;
		case NA_WIRE_REJECTED:
			count(r->m.handoffs, "rejected");
			break;
		case NA_WIRE_LISTENING:
			if (r->node && na_node_start(r->node) < 0)
				cf_log_msg(CF_LOG_ERROR, COMPONENT,
				           "cannot start the node label thread");
			break;
		case NA_WIRE_UNLABEL:
			r->unlabel = true;
			return false;
		case NA_WIRE_CONTROL:
			if (fd >= 0 && r->control_fd < 0) {
				r->control_fd = fd;
				fd = -1;
				if (pthread_create(&r->control_thread, NULL, control_main, r) == 0)
					r->control_started = true;
				else
					cf_log_msg(CF_LOG_ERROR, COMPONENT,
					           "cannot start the control thread: approvals "
					           "time out");
			}
			break;
		default:
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "unexpected message %u from the holder",
			           m.type);
			break;
		}
		if (fd >= 0)
			close(fd);
	}
	return true;
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
	/* SO_REUSEPORT: during an upgrade handoff the successor's policy side
	 * binds the same port while the old one still answers scrapes. */
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
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
	           "         [--node-name NAME] [--kubeconfig FILE]\n");
}

int na_run_parse_args(int argc, char **argv, na_config *cfg, char *err, size_t errlen)
{
	enum {
		O_CONFIG = 1,
		O_SOCKET,
		O_POLICY,
		O_STATE,
		O_METRICS,
		O_PROFILE,
		O_NODE,
		O_KUBECONFIG,
		O_HELP
	};
	static const struct option opts[] = {{"config", required_argument, NULL, O_CONFIG},
	                                     {"socket", required_argument, NULL, O_SOCKET},
	                                     {"policy", required_argument, NULL, O_POLICY},
	                                     {"state-dir", required_argument, NULL, O_STATE},
	                                     {"metrics-listen", required_argument, NULL, O_METRICS},
	                                     {"profile-dir", required_argument, NULL, O_PROFILE},
	                                     {"node-name", required_argument, NULL, O_NODE},
	                                     {"kubeconfig", required_argument, NULL, O_KUBECONFIG},
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
		case O_KUBECONFIG:
			rc = na_config_set(&cfg->kubeconfig, optarg);
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
	struct epoll_event evs[16];
	for (;;) {
		int n = epoll_wait(r->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			cf_log_msg(CF_LOG_ERROR, COMPONENT, "epoll_wait: %s", strerror(errno));
			return 1;
		}
		bool reload = false;
		for (int i = 0; i < n; i++) {
			enum item_kind *k = evs[i].data.ptr;
			if (*k == ITEM_HOLDER) {
				if (!on_holder(r))
					return 0; /* the holder stopped (or handed over) */
			} else if (*k == ITEM_INOTIFY) {
				reload |= drain_inotify(r);
			} else if (*k == ITEM_SIGNAL) {
				struct signalfd_siginfo si;
				while (read(r->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
					if (si.ssi_signo == SIGHUP)
						reload_policy(r, "SIGHUP");
					else
						return 0;
				}
			}
		}
		if (reload)
			reload_policy(r, "file change");
	}
}

/* argv: [NA_RUN_POLICY_SIDE, FD, "run", run options...]. */
int na_run_policy_main(int argc, char **argv)
{
	run_state r;
	char err[1024] = "";
	int status = 1;
	memset(&r, 0, sizeof r);
	r.epfd = r.sigfd = r.inofd = r.stop_efd = r.metrics_fd = -1;
	r.hsock = r.control_fd = -1;
	pthread_mutex_init(&r.park_mu, NULL);
	pthread_cond_init(&r.park_cv, NULL);
	pthread_rwlock_init(&r.policy_lock, NULL);
	pthread_mutex_init(&r.list_mu, NULL);
	pthread_mutex_init(&r.send_mu, NULL);
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
	if (argc < 3) {
		fprintf(stderr, "codeframe-agent %s is started by `codeframe-agent run`\n",
		        NA_RUN_POLICY_SIDE);
		return 2;
	}
	char *end = NULL;
	errno = 0;
	long fd = strtol(argv[1], &end, 10);
	if (errno || !end || *end || fd < 3 || fd > 65535) {
		fprintf(stderr, "codeframe-agent %s: bad fd \"%s\"\n", NA_RUN_POLICY_SIDE, argv[1]);
		return 2;
	}
	int type = 0;
	socklen_t tlen = sizeof type;
	if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr, "codeframe-agent %s: fd %ld is not the holder's socket\n",
		        NA_RUN_POLICY_SIDE, fd);
		return 2;
	}
	r.hsock = (int)fd;
	fcntl(r.hsock, F_SETFD, FD_CLOEXEC);
	/* Before any thread (capabilities are per thread): from here on only
	 * CAP_SYS_PTRACE, for reading the targets' memory. */
	char perr[256] = "";
	if (na_privs_drop(perr, sizeof perr) < 0)
		cf_log_msg(CF_LOG_WARNING, COMPONENT, "policy side keeps its privileges: %s", perr);
	if (na_config_init(&r.cfg) < 0) {
		fprintf(stderr, "codeframe-agent run: out of memory\n");
		return 1;
	}
	int prc = na_run_parse_args(argc - 2, argv + 2, &r.cfg, err, sizeof err);
	if (prc) {
		if (err[0])
			fprintf(stderr, "codeframe-agent run: %s\n", err);
		na_config_free(&r.cfg);
		close(r.hsock);
		return prc == 3 ? 0 : prc;
	}
	cf_log_set_min_level(r.cfg.log_level);
	/* Diagnostics never stall the main thread on a stalled log reader (the
	 * exec events have their own writer thread and drop when it stalls). */
	FILE *log_stream = cf_log_open_nonblocking_stdout();
	if (log_stream)
		cf_log_set_stream(log_stream);
	if (metrics_init(&r.m, err, sizeof err) < 0)
		goto fail;
	r.policy = load_policies(&r.cfg, err, sizeof err);
	if (!r.policy)
		goto fail;
	r.approval_gid = (gid_t)-1;
	if (r.cfg.approval_group[0]) {
		struct group *g = getgrnam(r.cfg.approval_group);
		if (!g) {
			snprintf(err, sizeof err, "approvalGroup \"%s\" does not exist",
			         r.cfg.approval_group);
			goto fail;
		}
		r.approval_gid = g->gr_gid;
	}
	r.approvals = na_approvals_new();
	if (!r.approvals) {
		snprintf(err, sizeof err, "out of memory");
		goto fail;
	}
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
	r.holder_tag = ITEM_HOLDER;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &r.sig_tag};
	epoll_ctl(r.epfd, EPOLL_CTL_ADD, r.sigfd, &ev);
	ev.data.ptr = &r.ino_tag;
	epoll_ctl(r.epfd, EPOLL_CTL_ADD, r.inofd, &ev);
	ev.data.ptr = &r.holder_tag;
	epoll_ctl(r.epfd, EPOLL_CTL_ADD, r.hsock, &ev);
	fcntl(r.hsock, F_SETFL, fcntl(r.hsock, F_GETFL) | O_NONBLOCK);
	watch_policies(&r);
	if (pthread_create(&r.approval_thread, NULL, approval_main, &r) != 0) {
		snprintf(err, sizeof err, "cannot start the approval thread");
		goto fail;
	}
	r.approval_started = true;
	if (r.metrics_fd >= 0) {
		if (pthread_create(&r.metrics_thread, NULL, metrics_main, &r) != 0) {
			snprintf(err, sizeof err, "cannot start the metrics thread");
			goto fail;
		}
		r.metrics_started = true;
	}
	char why[1200] = "";
	r.node = na_node_new(r.cfg.kubeconfig, NULL, r.cfg.node_name, why, sizeof why);
	if (!r.node)
		cf_log_msg(CF_LOG_INFO, COMPONENT, "%s", why);
	send_level(&r, NA_WIRE_READY, r.policy->level);
	cf_log_msg(CF_LOG_DEBUG, COMPONENT, "policy side ready (pid %d, level %s)", (int)getpid(),
	           na_level_name(r.policy->level));
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
	if (r.metrics_started)
		pthread_join(r.metrics_thread, NULL);
	if (r.control_started)
		pthread_join(r.control_thread, NULL);
	if (r.approval_started) {
		pthread_mutex_lock(&r.park_mu);
		r.stopping = true;
		pthread_cond_signal(&r.park_cv);
		pthread_mutex_unlock(&r.park_mu);
		pthread_join(r.approval_thread, NULL);
	}
	/* Parked execs: the holder answers them (its default) once this
	 * process is gone, or re-sends them to the next policy side. */
	while (r.parked_head) {
		parked *pk = r.parked_head;
		r.parked_head = pk->next;
		parked_free(pk);
	}
	if (r.control_fd >= 0)
		close(r.control_fd); /* the holder owns the path */
	pthread_mutex_lock(&r.list_mu);
	for (container *c = r.containers; c; c = c->next)
		container_hangup(c);
	pthread_mutex_unlock(&r.list_mu);
	shutdown_workers(&r);
	bool workers_left = r.live_workers > 0;
	/* Last: the workers have answered; now the node stops being ready. */
	na_node_stop(r.node, r.unlabel);
	na_node_free(r.node);
	if (r.events) {
		sync_dropped(&r);
		na_events_flush(r.events);
		if (!workers_left)
			na_events_free(r.events);
	}
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
		if (r.hsock >= 0)
			close(r.hsock);
		na_policy_free(r.policy);
		cf_metrics_free(r.m.reg);
		na_approvals_free(r.approvals);
		na_config_free(&r.cfg);
		if (log_stream) {
			cf_log_set_stream(stdout);
			fclose(log_stream);
		}
	}
	return status;
}
