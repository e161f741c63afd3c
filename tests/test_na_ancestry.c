/* test_na_ancestry.c - ancestry records over a fake process table, plus
 * na_procmem_identify and na_procmem_stat on real processes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_limits.h"
#include "na_ancestry.h"
#include "na_procmem.h"

#define MAXP 4096

struct fake {
	bool alive[MAXP];
	na_proc_id st[MAXP];
	unsigned calls;
	unsigned stack_reads; /* calls that asked for the stack start (a /proc read) */
	bool proc_mode;       /* every answer carries the stack, as /proc/PID/stat does */
};

static int fake_stat(void *ctx, pid_t pid, bool want_stack, na_proc_id *out)
{
	struct fake *f = ctx;
	f->calls++;
	f->stack_reads += want_stack;
	if (pid <= 0 || pid >= MAXP || !f->alive[pid])
		return -ENOENT;
	*out = f->st[pid];
	out->has_stack = want_stack || f->proc_mode; /* as na_procmem_identify */
	if (!out->has_stack)
		out->startstack = 0;
	return 0;
}

static void spawn(struct fake *f, pid_t pid, pid_t ppid)
{
	f->alive[pid] = true;
	f->st[pid].ppid = ppid;
	f->st[pid].id = 1000u + (uint64_t)pid;
	f->st[pid].startstack = 0x7000u + (uint64_t)pid;
}

/* A successful exec replaces the image: new stack start. */
static void exec_ok(struct fake *f, pid_t pid)
{
	f->st[pid].startstack += 0x100000u;
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof *f);
	cr_assert_not_null(f);
	spawn(f, 1, 0);
	return f;
}

/* exec by pid: lookup, then (if admitted) record and let it succeed. */
static na_cmd_context run_exec(na_ancestry *a, struct fake *f, pid_t pid, bool name_allowed,
                               bool succeeds)
{
	na_cmd_context ctx;
	cr_assert_eq(na_ancestry_lookup(a, pid, &ctx), 0);
	na_ancestry_record(a, pid, &ctx, name_allowed);
	if (succeeds)
		exec_ok(f, pid);
	return ctx;
}

Test(na_ancestry, entrypoint_is_first_and_confers_nothing)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	na_cmd_context c = run_exec(a, f, 10, false, true);
	cr_assert(c.first_exec);
	cr_assert(!c.allowed_ancestor);
	spawn(f, 11, 10);
	c = run_exec(a, f, 11, false, true);
	cr_assert(!c.first_exec);
	cr_assert(!c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, allowed_parent_vouches_for_descendants)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true); /* sh (entrypoint) */
	spawn(f, 11, 10);
	run_exec(a, f, 11, true, true); /* npm: allowed */
	spawn(f, 12, 11);               /* npm forks a shell that never execs */
	spawn(f, 13, 12);               /* ... which forks node */
	na_cmd_context c = run_exec(a, f, 13, false, true);
	cr_assert(c.allowed_ancestor);
	spawn(f, 14, 13); /* node runs rm: still under npm */
	c = run_exec(a, f, 14, false, true);
	cr_assert(c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, sibling_of_allowed_is_not_vouched_for)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true);
	spawn(f, 11, 10);
	run_exec(a, f, 11, true, true);
	spawn(f, 12, 10); /* sibling of npm, child of the entrypoint */
	na_cmd_context c = run_exec(a, f, 12, false, true);
	cr_assert(!c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, failed_exec_of_allowed_name_confers_nothing)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true);
	spawn(f, 11, 10);
	run_exec(a, f, 11, true, false); /* execve("/nonexistent/npm") fails */
	spawn(f, 12, 11);
	na_cmd_context c = run_exec(a, f, 12, false, true);
	cr_assert(!c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, in_place_exec_keeps_inherited_not_self)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true); /* sh */
	spawn(f, 11, 10);
	run_exec(a, f, 11, true, true); /* npm (allowed) */
	/* npm execs rm in place: its own earlier image is not an ancestor */
	na_cmd_context c = run_exec(a, f, 11, false, true);
	cr_assert(!c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, reused_pid_does_not_inherit)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true);
	spawn(f, 11, 10);
	run_exec(a, f, 11, true, true); /* allowed npm at pid 11 */
	/* npm exits; pid 11 is reused by an unrelated process (new start). */
	spawn(f, 11, 10);
	f->st[11].id += 5;
	spawn(f, 12, 11);
	na_cmd_context c = run_exec(a, f, 12, false, true);
	cr_assert(!c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, reparented_orphan_loses_ancestry)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true);
	spawn(f, 11, 10);
	run_exec(a, f, 11, true, true);
	spawn(f, 12, 11);
	f->alive[11] = false;
	f->st[12].ppid = 1; /* reparented to init */
	na_cmd_context c = run_exec(a, f, 12, false, true);
	cr_assert(!c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, vanished_pid)
{
	struct fake *f = fake_new();
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	na_cmd_context c;
	cr_assert_eq(na_ancestry_lookup(a, 99, &c), -ENOENT);
	cr_assert(!c.allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, walk_is_bounded)
{
	struct fake *f = fake_new();
	/* A chain deeper than the bound: 10 <- 11 <- ... ; only 10 allowed. */
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(0, fake_stat, f);
	run_exec(a, f, 10, true, true);
	pid_t last = 10;
	for (pid_t p = 11; p < 11 + (pid_t)CF_AGENT_MAX_ANCESTRY_DEPTH + 10; p++) {
		spawn(f, p, last);
		last = p;
	}
	f->calls = 0;
	na_cmd_context c;
	cr_assert_eq(na_ancestry_lookup(a, last, &c), 0);
	cr_assert(!c.allowed_ancestor); /* beyond the bound: fails closed */
	cr_assert_leq(f->calls, CF_AGENT_MAX_ANCESTRY_DEPTH + 2);
	na_ancestry_free(a);
	free(f);
}

Test(na_ancestry, table_grows_and_sweeps)
{
	struct fake *f = fake_new();
	spawn(f, 2, 1);
	na_ancestry *a = na_ancestry_new(2, fake_stat, f);
	run_exec(a, f, 2, false, true);
	for (pid_t p = 3; p < 2000; p++) {
		spawn(f, p, 2);
		run_exec(a, f, p, false, true);
		f->alive[p] = false; /* exits right away */
	}
	cr_assert_gt(na_ancestry_size(a), 0);
	cr_assert_leq(na_ancestry_size(a), 2000);
	na_ancestry_free(a);
	free(f);
}

Test(na_procmem, identify_self_child_and_thread)
{
	na_proc_id me, again, kid;
	na_proc_stat st;
	cr_assert_eq(na_procmem_identify(getpid(), false, &me), 0);
	cr_assert_eq(me.ppid, getppid());
	cr_assert_neq(me.id, 0);
	cr_assert(!me.has_stack || me.startstack != 0);
	cr_assert_eq(na_procmem_identify(getpid(), true, &again), 0);
	cr_assert_eq(again.id, me.id);
	cr_assert(again.has_stack);
	cr_assert_eq(na_procmem_stat(getpid(), &st), 0);
	cr_assert_eq(again.startstack, st.startstack);
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	cr_assert_eq(na_procmem_identify(pid, false, &kid), 0);
	cr_assert_eq(kid.ppid, getpid());
	cr_assert_neq(kid.id, me.id);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_eq(na_procmem_identify(pid, false, &kid), -ENOENT);
	cr_assert_eq(na_procmem_identify(pid, true, &kid), -ENOENT);
	cr_assert_eq(na_procmem_identify(0, false, &kid), -ENOENT);
}

static void *identify_from_thread(void *arg)
{
	na_proc_id *out = arg;
	return (void *)(intptr_t)na_procmem_identify((pid_t)syscall(SYS_gettid), true, out);
}

/* An exec can come from any thread: its tid is what the notification names. */
Test(na_procmem, identify_a_thread)
{
	na_proc_id th, me;
	pthread_t t;
	void *rc;
	cr_assert_eq(pthread_create(&t, NULL, identify_from_thread, &th), 0);
	pthread_join(t, &rc);
	cr_assert_eq((intptr_t)rc, 0);
	cr_assert_eq(na_procmem_identify(getpid(), false, &me), 0);
	cr_assert_eq(th.ppid, getppid());
	cr_assert(th.has_stack);
}

Test(na_procmem, stat_of_self_and_child)
{
	na_proc_stat me, kid;
	cr_assert_eq(na_procmem_stat(getpid(), &me), 0);
	cr_assert_eq(me.ppid, getppid());
	cr_assert_gt(me.start, 0);
	pid_t pid = fork();
	if (pid == 0) {
		pause();
		_exit(0);
	}
	cr_assert_eq(na_procmem_stat(pid, &kid), 0);
	cr_assert_eq(kid.ppid, getpid());
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_eq(na_procmem_stat(pid, &kid), -ENOENT);
	cr_assert_eq(na_procmem_stat(0, &kid), -ENOENT);
}

Test(na_procmem, resolve_local)
{
	char exe[256], target[256];
	na_procmem_resolve_local("sh", exe, sizeof exe, target, sizeof target);
	cr_assert_str_eq(exe, "sh");
	cr_assert_neq(target[0], '\0'); /* dash on Debian, or sh */
	na_procmem_resolve_local("/nonexistent/tool", exe, sizeof exe, target, sizeof target);
	cr_assert_str_eq(exe, "tool");
	cr_assert_str_eq(target, "");
	na_procmem_resolve_local("no-such-command-here", exe, sizeof exe, target, sizeof target);
	cr_assert_str_eq(exe, "no-such-command-here");
	cr_assert_str_eq(target, "");
}

Test(na_ancestry, root_children_skip_the_roots_stat_once_confirmed)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true); /* entrypoint */
	run_exec(a, f, 10, true, false); /* root tries an allowed name: fails */
	spawn(f, 11, 10);
	na_cmd_context c = run_exec(a, f, 11, false, true);
	cr_assert(!c.allowed_ancestor); /* the failed exec vouches for nothing */
	run_exec(a, f, 10, true, true); /* now it succeeds */
	spawn(f, 12, 10);
	c = run_exec(a, f, 12, false, true);
	cr_assert(c.allowed_ancestor);
	spawn(f, 13, 10);
	f->calls = 0;
	cr_assert_eq(na_ancestry_lookup(a, 13, &c), 0);
	cr_assert(c.allowed_ancestor);
	cr_assert_eq(f->calls, 1); /* only the child's own stat */
	na_ancestry_free(a);
	free(f);
}

/* Below an allowed command nothing depends on whether an exec succeeds,
 * so no stack start is read: a build's compilers and linkers under `make`
 * cost a pidfd lookup each, not a /proc read. */
Test(na_ancestry, below_an_allowed_command_no_stack_is_read)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, true, true); /* make, the entrypoint */
	spawn(f, 11, 10);
	run_exec(a, f, 11, false, true); /* confirms make's exec: one read */
	for (pid_t pid = 12; pid < 20; pid++) {
		spawn(f, pid, 11);
		f->stack_reads = 0;
		na_cmd_context c = run_exec(a, f, pid, pid % 2 == 0, pid % 3 != 0);
		cr_assert(c.allowed_ancestor);
		cr_assert_eq(f->stack_reads, 0, "exec by %d read a stack start", (int)pid);
	}
	/* A failed exec of an allowed name under an allowed ancestor still
	 * leaves its descendants allowed: they were before it. */
	spawn(f, 20, 12);
	cr_assert(run_exec(a, f, 20, false, true).allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

/* Where the stack start matters it is read before the exec is answered:
 * record() after the answer sees the image from before it. */
Test(na_ancestry, stack_start_is_taken_before_the_answer)
{
	struct fake *f = fake_new();
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true); /* entrypoint, not an allowed name */
	spawn(f, 11, 10);
	na_cmd_context c;
	f->stack_reads = 0;
	cr_assert_eq(na_ancestry_lookup(a, 11, &c), 0);
	cr_assert_eq(f->stack_reads, 1);
	exec_ok(f, 11); /* the exec completes before the record is made */
	na_ancestry_record(a, 11, &c, true);
	spawn(f, 12, 11);
	cr_assert(run_exec(a, f, 12, false, true).allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}

/* Where every read brings the stack start (kernels before 6.13 read
 * /proc/PID/stat), a lookup that needs it does not read twice. */
Test(na_ancestry, a_read_that_brought_the_stack_is_not_repeated)
{
	struct fake *f = fake_new();
	f->proc_mode = true;
	spawn(f, 10, 1);
	na_ancestry *a = na_ancestry_new(10, fake_stat, f);
	run_exec(a, f, 10, false, true); /* entrypoint: no allowed ancestor */
	spawn(f, 11, 10);
	f->calls = 0;
	na_cmd_context c;
	cr_assert_eq(na_ancestry_lookup(a, 11, &c), 0);
	cr_assert(!c.allowed_ancestor);
	cr_assert_eq(f->calls, 1, "one read for the exec'ing process, %u made", f->calls);
	na_ancestry_record(a, 11, &c, true);
	cr_assert_eq(f->calls, 1, "the record uses the lookup's read");
	exec_ok(f, 11);
	spawn(f, 12, 11);
	cr_assert(run_exec(a, f, 12, false, true).allowed_ancestor);
	na_ancestry_free(a);
	free(f);
}
