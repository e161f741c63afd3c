/* na_ancestry.c - see na_ancestry.h. */
#include "na_ancestry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cf_limits.h"
#include "na_procmem.h"

struct record {
	pid_t pid;          /* 0 = empty slot */
	uint64_t id;        /* na_proc_id.id */
	uint64_t pre_stack; /* stack start before the admitted exec, when
	                     * self && !inherited (only then can it matter) */
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
	/* The last lookup's pid and id, reused by record(). */
	pid_t last_pid;
	na_proc_id last;
	bool last_valid;
};

static int proc_identify(void *ctx, pid_t pid, bool want_stack, na_proc_id *out)
{
	(void)ctx;
	return na_procmem_identify(pid, want_stack, out);
}

na_ancestry *na_ancestry_new(pid_t root, na_stat_fn stat_fn, void *stat_ctx)
{
	na_ancestry *a = calloc(1, sizeof *a);
	if (!a)
		return NULL;
	a->root = root;
	a->stat_fn = stat_fn ? stat_fn : proc_identify;
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
 * id as the running process with that pid). */
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
			na_proc_id st;
			if (a->stat_fn(a->stat_ctx, r->pid, false, &st) < 0 || st.id != r->id)
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

/* A record for pid whose id matches, or NULL (a stale one is left in
 * place: it is overwritten when that pid execs). */
static const struct record *live(na_ancestry *a, pid_t pid, uint64_t id)
{
	const struct record *r = find(a, pid);
	return r && r->id == id ? r : NULL;
}

/* Whether the allowed exec recorded in r replaced pid's image: its stack
 * start moved. Once seen, for good (a later exec makes a new record). */
static bool image_replaced(na_ancestry *a, pid_t pid, struct record *r)
{
	na_proc_id now;
	if (!r->confirmed && a->stat_fn(a->stat_ctx, pid, true, &now) == 0 && now.id == r->id &&
	    now.has_stack && now.startstack != r->pre_stack)
		r->confirmed = true;
	return r->confirmed;
}

/* Whether the first ancestor with a record, walking up from cur, vouches
 * for its descendants. */
static bool ancestor_allowed(na_ancestry *a, pid_t cur)
{
	for (unsigned depth = 0; depth < CF_AGENT_MAX_ANCESTRY_DEPTH && cur > 1; depth++) {
		na_proc_id st;
		struct record *r;
		/* The root's pid cannot be reused while the tree lives (in
		 * exec mode it is our unreaped child, in a container the pid
		 * namespace's init), so its record needs no read once nothing
		 * is left to confirm: saves the parent's lookup for every
		 * direct child of the root. */
		if (cur == a->root && (r = find(a, cur)) && (!r->self || r->confirmed))
			return r->self || r->inherited;
		if (a->stat_fn(a->stat_ctx, cur, false, &st) < 0)
			return false;
		r = find(a, cur);
		if (r && r->id == st.id)
			return r->inherited || (r->self && image_replaced(a, cur, r));
		if (cur == a->root)
			return false;
		cur = st.ppid;
	}
	return false;
}

int na_ancestry_lookup(na_ancestry *a, pid_t pid, na_cmd_context *ctx)
{
	na_proc_id me;
	ctx->first_exec = false;
	ctx->allowed_ancestor = false;
	a->last_valid = false;

	if (!a->seen_first && (a->root == 0 || pid == a->root)) {
		a->seen_first = true;
		ctx->first_exec = true;
	}
	int rc = a->stat_fn(a->stat_ctx, pid, false, &me);
	if (rc < 0)
		return rc;
	const struct record *self = live(a, pid, me.id);
	if (self)
		ctx->allowed_ancestor = self->inherited;
	else if (pid != a->root)
		ctx->allowed_ancestor = ancestor_allowed(a, me.ppid);
	/* Without an allowed ancestor, this exec's record (if it is admitted
	 * as an allowed command) will need the stack start from before the
	 * exec: read now, while the exec still waits for its answer (unless
	 * the first read brought it, as /proc does). */
	if (!ctx->allowed_ancestor && !me.has_stack) {
		uint64_t id = me.id;
		if ((rc = a->stat_fn(a->stat_ctx, pid, true, &me)) < 0)
			return rc;
		if (me.id != id)
			return -ENOENT; /* another process has the pid now */
	}
	a->last_pid = pid;
	a->last = me;
	a->last_valid = true;
	return 0;
}

void na_ancestry_record(na_ancestry *a, pid_t pid, const na_cmd_context *ctx, bool name_allowed)
{
	bool need_stack = name_allowed && !ctx->allowed_ancestor;
	na_proc_id me;
	if (a->last_valid && a->last_pid == pid && (a->last.has_stack || !need_stack))
		me = a->last;
	else if (a->stat_fn(a->stat_ctx, pid, need_stack, &me) < 0)
		return;
	struct record *r = find(a, pid);
	if (r) {
		if (r->id != me.id)
			r->inherited = ctx->allowed_ancestor;
		r->id = me.id;
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
	    .id = me.id,
	    .pre_stack = me.startstack,
	    .self = name_allowed,
	    .inherited = ctx->allowed_ancestor,
	};
	insert_raw(a->slots, a->cap, &nr);
	a->used++;
}
