/*
 * bench_exec.c - what `codeframe-agent exec` adds to each exec.
 * * fork + exec /bin/true + wait, timed one by one, directly and under the
 * agent (strict policy, every exec decided and logged to /dev/null), in
 * interleaved rounds so that machine noise hits both alike. Reports the
 * median per exec of each, the microseconds added (the median over rounds
 * of the per-round difference of medians, so that load drifting between
 * rounds cancels), and the ratio. A third
 * series runs under the agent with `enforcement_level: disabled` (answered
 * without reading anything): the cost of the notification round trip
 * itself, so the report separates mechanism from decision. A fourth runs
 * the strict policy under an agent that may not make its notify thread
 * real-time (no CAP_SYS_NICE, RLIMIT_RTPRIO 0: an unprivileged user's
 * agent), so both figures are on record.
 *
 * Usage: bench_exec [ROUNDS [EXECS_PER_ROUND]]   (defaults 12, 200)
 * Internal: bench_exec --inner N  (the loop; prints one time per line)
 * Environment: BUILD or CF_BUILD_DIR (where codeframe-agent is).
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "na_notify.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int one_exec(void)
{
	char *argv[] = {"/bin/true", NULL};
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) < 0)
		return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

/* Times n execs into out[]. */
static int loop(size_t n, double *out)
{
	for (size_t i = 0; i < n; i++) {
		double t0 = now_us();
		if (one_exec() < 0)
			return -1;
		out[i] = now_us() - t0;
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* What series `a` adds to series `b`: per round, the difference of their
 * medians (the two ran back to back, on the same machine state), then the
 * median of those differences and their range. The shared host's load
 * drifts between rounds; a pooled median lets that drift leak into the
 * difference, the paired one cancels it. */
typedef struct added {
	double median, lo, hi;
} added;

static added paired_added(double *a, double *b, size_t rounds, size_t per)
{
	double *d = calloc(rounds, sizeof *d);
	added r = {0, 0, 0};
	if (!d)
		return r;
	for (size_t i = 0; i < rounds; i++)
		d[i] = median(a + i * per, per) - median(b + i * per, per);
	r.median = median(d, rounds);
	r.lo = d[0];
	r.hi = d[rounds - 1];
	free(d);
	return r;
}

static int inner(size_t n)
{
	double *t = calloc(n, sizeof *t);
	if (!t || loop(n, t) < 0) {
		fprintf(stderr, "bench_exec: exec loop failed\n");
		free(t);
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		printf("%.3f\n", t[i]);
	free(t);
	return 0;
}

/* The agent as an unprivileged user would run it: not allowed to make its
 * notify thread real-time (no CAP_SYS_NICE even as root, RLIMIT_RTPRIO 0).
 * Returns whether that could be arranged. */
static bool forbid_realtime(void)
{
	struct rlimit none = {0, 0};
	/* Without CAP_SETPCAP the bounding set cannot shrink, but then exec
	 * grants no CAP_SYS_NICE either. */
	return setrlimit(RLIMIT_RTPRIO, &none) == 0 &&
	       (prctl(PR_CAPBSET_DROP, CAP_SYS_NICE, 0, 0, 0) == 0 || errno == EPERM);
}

/* Whether an agent started from here gets its real-time notify thread. */
static bool realtime_granted(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(na_notify_receiver_realtime() == 0 ? 0 : 1);
	int st;
	return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* Runs the loop under the agent; appends its times to out. */
static int supervised(const char *agent, const char *self, const char *policy, bool no_rt, size_t n,
                      double *out, size_t *got)
{
	char cmd[4096], count[32];
	snprintf(count, sizeof count, "%zu", n);
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		if (no_rt && !forbid_realtime())
			_exit(126);
		execl(agent, agent, "exec", "--policy", policy, "--log", "/dev/null", "--", self,
		      "--inner", count, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	size_t k = 0;
	while (f && k < n && fgets(cmd, sizeof cmd, f))
		out[(*got) + k++] = strtod(cmd, NULL);
	if (f)
		fclose(f);
	int st;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || k != n)
		return -1;
	*got += k;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--inner") == 0)
		return inner((size_t)strtoul(argv[2], NULL, 10));
	size_t rounds = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 12;
	size_t per = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 200;
	if (!rounds || !per || rounds > 1000 || per > 100000) {
		fprintf(stderr, "usage: bench_exec [ROUNDS [EXECS_PER_ROUND]]\n");
		return 2;
	}
	const char *dir = getenv("CF_BUILD_DIR");
	if (!dir || !dir[0])
		dir = getenv("BUILD");
	if (!dir || !dir[0])
		dir = "build";
	char agent[4096], self[4096], policy[] = "/tmp/bench_exec_policy.XXXXXX";
	char offpolicy[] = "/tmp/bench_exec_off.XXXXXX";
	snprintf(agent, sizeof agent, "%s/codeframe-agent", dir);
	ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
	if (sl <= 0 || access(agent, X_OK) != 0) {
		fprintf(stderr, "bench_exec: %s not found (set BUILD)\n", agent);
		return 1;
	}
	self[sl] = '\0';
	int pfd = mkstemp(policy);
	if (pfd < 0)
		return 1;
	/* Realistic: strict, an allowlist, patterns and globs to check. */
	const char *text = "enforcement_level: strict\n"
	                   "allowed_commands: [bench_exec, \"true\", make, npm, node]\n"
	                   "blocked_patterns: [\"rm -rf\", \"curl \", \"wget \", \"/etc/shadow\"]\n"
	                   "require_approval: [\"git push*\", \"npm publish*\"]\n";
	if (write(pfd, text, strlen(text)) != (ssize_t)strlen(text)) {
		close(pfd);
		unlink(policy);
		return 1;
	}
	close(pfd);
	pfd = mkstemp(offpolicy);
	const char *off = "enforcement_level: disabled\n";
	if (pfd < 0 || write(pfd, off, strlen(off)) != (ssize_t)strlen(off)) {
		if (pfd >= 0)
			close(pfd);
		unlink(policy);
		unlink(offpolicy);
		return 1;
	}
	close(pfd);

	double *direct = calloc(rounds * per, sizeof *direct);
	double *under = calloc(rounds * per, sizeof *under);
	double *bare = calloc(rounds * per, sizeof *bare);
	double *plain = calloc(rounds * per, sizeof *plain);
	size_t nd = 0, nu = 0, nb = 0, np = 0;
	int rc = 1;
	if (!direct || !under || !bare || !plain)
		goto out;
	for (size_t r = 0; r < rounds; r++) {
		if (loop(per, direct + nd) < 0) {
			fprintf(stderr, "bench_exec: direct loop failed\n");
			goto out;
		}
		nd += per;
		if (supervised(agent, self, policy, false, per, under, &nu) < 0 ||
		    supervised(agent, self, offpolicy, false, per, bare, &nb) < 0 ||
		    supervised(agent, self, policy, true, per, plain, &np) < 0) {
			fprintf(stderr, "bench_exec: supervised loop failed\n");
			goto out;
		}
	}
	added strict = paired_added(under, direct, rounds, per);
	added mech = paired_added(bare, direct, rounds, per);
	added no_rt = paired_added(plain, direct, rounds, per);
	double md = median(direct, nd), mu = median(under, nu), mb = median(bare, nb);
	double mp = median(plain, np);
	printf("fork+exec /bin/true, %zu interleaved rounds x %zu execs each way\n", rounds, per);
	printf("  direct:               median %8.1f us per exec\n", md);
	printf("  under agent (off):    median %8.1f us per exec (notify round trip only)\n", mb);
	printf("  under agent (strict): median %8.1f us per exec\n", mu);
	printf("  added by the agent:   %8.1f us per exec (target <= 50): median of the %zu\n"
	       "                        per-round differences, range %.1f to %.1f\n",
	       strict.median, rounds, strict.lo, strict.hi);
	printf("  ratio:                %8.2fx\n", (md + strict.median) / md);
	printf("  of which mechanism:   %8.1f us, reading + deciding: %.1f us\n", mech.median,
	       strict.median - mech.median);
	printf("  notify thread real-time: %s\n",
	       realtime_granted() ? "yes (SCHED_FIFO, as root here)" : "no (not permitted here)");
	printf("  strict, not permitted real-time: median %.1f us per exec, %.1f us added\n", mp,
	       no_rt.median);
	rc = 0;
out:
	unlink(policy);
	unlink(offpolicy);
	free(direct);
	free(under);
	free(bare);
	free(plain);
	return rc;
}
