/* na_ancestry.c - see na_ancestry.h. */
#include "na_ancestry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_limits.h"
#include "na_procmem.h"

struct record {
	pid_t pid; /* 0 = empty slot */
	uint64_t start;
	uint64_t pre_stack; /* stack start before the admitted exec */
	bool confirmed;     /* that exec was seen to have replaced the image */
	bool self;          /* latest image admitted as an allowed command */
	bool inherited;     /* had an allowed ancestor when first seen */
};

struct na_ancestry {
	pid_t root;
	na_stat_fn stat_fn;
	void *stat_ctx;
	bool seen_first;
	/* Open addressing with linear probing; capacity is a power of two
	 * and at most half full. */
	struct record *slots;
	size_t cap;
	size_t used;
	/* The last lookup's pid and stat, reused by record(). */
	pid_t last_pid;
	na_proc_stat last;
	bool last_valid;
};

static int proc_stat(void *ctx, pid_t pid, na_proc_stat *out)
{
	(void)ctx;
	return na_procmem_stat(pid, out);
}

na_ancestry *na_ancestry_new(pid_t root, na_stat_fn stat_fn, void *stat_ctx)
{
	na_ancestry *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->root = root;
	a->stat_fn = stat_fn ? stat_fn : proc_stat;
	a->stat_ctx = stat_ctx;
	a->cap = 256;
	a->slots = calloc(a->cap, sizeof *a->slots);
	if (!a->slots) {
		free(a);
		return NULL;
	}
	return a;
}

void na_ancestry_free(na_ancestry *a)
{
	if (!a)
		return;
	free(a->slots);
	free(a);
}

size_t na_ancestry_size(const na_ancestry *a)
{
	return a->used;
}

static size_t hash(pid_t pid, size_t cap)
{
	return ((size_t)(unsigned)pid * 2654435761u) & (cap - 1);
}

static struct record *find(na_ancestry *a, pid_t pid)
{
	for (size_t i = hash(pid, a->cap), n = 0; n < a->cap; i = (i + 1) & (a->cap - 1), n++) {
		if (a->slots[i].pid == pid)
			return &a->slots[i];
		if (a->slots[i].pid == 0)
			return NULL;
	}
	return NULL;
}

static void insert_raw(struct record *slots, size_t cap, const struct record *r)
{
	size_t i = hash(r->pid, cap);
	while (slots[i].pid != 0 && slots[i].pid != r->pid)
		i = (i + 1) & (cap - 1);
	slots[i] = *r;
}

/* Rebuilds the table into `cap` slots, keeping only live records (same
 * start time as the running process with that pid). */
static int rebuild(na_ancestry *a, size_t cap, bool sweep)
{
	struct record *ns = calloc(cap, sizeof *ns);
	if (!ns)
		return -ENOMEM;
	size_t used = 0;
	for (size_t i = 0; i < a->cap; i++) {
		const struct record *r = &a->slots[i];
		if (!r->pid)
			continue;
		if (sweep) {
			na_proc_stat st;
			if (a->stat_fn(a->stat_ctx, r->pid, &st) < 0 || st.start != r->start)
				continue;
		}
		insert_raw(ns, cap, r);
		used++;
	}
	free(a->slots);
	a->slots = ns;
	a->cap = cap;
	a->used = used;
	return 0;
}

/* A record for pid whose start time matches, or NULL (a stale one is left
 * in place: it is overwritten when that pid execs). */
static const struct record *live(na_ancestry *a, pid_t pid, uint64_t start)
{
	const struct record *r = find(a, pid);
	return r && r->start == start ? r : NULL;
}

int na_ancestry_lookup(na_ancestry *a, pid_t pid, na_cmd_context *ctx)
{
	na_proc_stat me;
	ctx->first_exec = false;
	ctx->allowed_ancestor = false;
	a->last_valid = false;

	if (!a->seen_first && (a->root == 0 || pid == a->root)) {
		a->seen_first = true;
		ctx->first_exec = true;
	}
	int rc = a->stat_fn(a->stat_ctx, pid, &me);
	if (rc < 0)
		return rc;
	a->last_pid = pid;
	a->last = me;
	a->last_valid = true;

	const struct record *self = live(a, pid, me.start);
	if (self) {
		ctx->allowed_ancestor = self->inherited;
		return 0;
	}
	if (pid == a->root)
		return 0; /* Walk up to the first ancestor that left a record. */
	pid_t cur = me.ppid;
	for (unsigned depth = 0; depth < CF_AGENT_MAX_ANCESTRY_DEPTH && cur > 1; depth++) {
		na_proc_stat st;
		struct record *r;
		/* The root's pid cannot be reused while the tree lives (in
		 * exec mode it is our unreaped child, in a container the pid
		 * namespace's init), so its record needs no /proc read once
		 * nothing is left to confirm: saves the parent's stat for
		 * every direct child of the root. */
		if (cur == a->root && (r = find(a, cur)) && (!r->self || r->confirmed)) {
			ctx->allowed_ancestor = r->self || r->inherited;
			break;
		}
		if (a->stat_fn(a->stat_ctx, cur, &st) < 0)
			break;
		r = find(a, cur);
		if (r && r->start != st.start)
			r = NULL;
		if (r) {
			/* An unchanged stack start: the admitted exec never
			 * replaced the image (it failed), so it vouches for
			 * nothing. */
			bool self_ok = r->self && st.startstack != r->pre_stack;
			if (self_ok)
				r->confirmed = true;
			ctx->allowed_ancestor = self_ok || r->inherited;
			break;
		}
		if (cur == a->root)
			break;
		cur = st.ppid;
	}
	return 0;
}

void na_ancestry_record(na_ancestry *a, pid_t pid, const na_cmd_context *ctx, bool name_allowed)
{
	na_proc_stat me;
	if (a->last_valid && a->last_pid == pid)
		me = a->last;
	else if (a->stat_fn(a->stat_ctx, pid, &me) < 0)
		return;
	struct record *r = find(a, pid);
	if (r) {
		if (r->start != me.start)
			r->inherited = ctx->allowed_ancestor;
		r->start = me.start;
		r->pre_stack = me.startstack;
		r->self = name_allowed;
		r->confirmed = false;
		return;
	}
	if ((a->used + 1) * 2 > a->cap) {
		size_t cap = a->cap;
		bool sweep = false;
		if (cap < (size_t)CF_AGENT_MAX_TRACKED_PIDS * 2)
			cap *= 2;
		else
			sweep = true;
		if (rebuild(a, cap, sweep) < 0 || (a->used + 1) * 2 > a->cap)
			return; /* full even after a sweep: fail closed */
	}
	struct record nr = {
	    .pid = pid,
	    .start = me.start,
	    .pre_stack = me.startstack,
	    .self = name_allowed,
	    .inherited = ctx->allowed_ancestor,
	};
	insert_raw(a->slots, a->cap, &nr);
	a->used++;
}
