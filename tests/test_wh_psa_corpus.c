/* Conformance with Pod Security Admission: every fixture of the upstream
 * corpus in $SHARED/corpus/psa (default ../shared) is evaluated at its level
 * with wh_policy_evaluate. Pass files must produce no violation; fail files
 * at least one, and the check named by the file's prefix
 * (runasnonroot0.yaml -> runAsNonRoot, compared case-insensitively) must be
 * among the violated checks. All 148 fixtures must be found and agree. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_buf.h"
#include "cf_limits.h"
#include "cf_yaml.h"
#include "wh_policy.h"

#define CORPUS_TOTAL 148

static const char *shared_dir(void)
{
	const char *s = getenv("SHARED");
	return s && s[0] ? s : "../shared";
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Evaluates every *.yaml of one folder; returns how many agreed, counts
 * files in *seen. */
static int run_dir(const char *level, const char *expect, int *seen)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/corpus/psa/%s/%s", shared_dir(), level, expect);
	DIR *d = opendir(dir);
	cr_assert_not_null(d, "cannot open %s (set SHARED)", dir);
	char *names[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256) {
		size_t l = strlen(e->d_name);
		if (l > 5 && !strcmp(e->d_name + l - 5, ".yaml"))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof names[0], cmp_names);

	wh_profile prof;
	cr_assert_eq(wh_profile_parse(level, &prof), 0);
	bool want_fail = !strcmp(expect, "fail");
	int agreed = 0;
	for (size_t i = 0; i < n; i++) {
		char path[1400], err[512];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		cf_buf buf;
		int rc = cf_read_file(path, CF_MAX_INPUT_FILE_BYTES, &buf, err, sizeof err);
		cr_assert_eq(rc, 0, "%s", err);
		cf_yaml_docs docs;
		rc = cf_yaml_parse(buf.data, buf.len, &docs, err, sizeof err);
		cr_assert_eq(rc, 0, "%s: %s", path, err);
		wh_result res;
		wh_result_init(&res);
		rc = wh_policy_evaluate(NULL, prof, cJSON_GetArrayItem(docs.docs, 0), NULL, NULL,
		                        &res, err, sizeof err);
		bool ok;
		if (rc) {
			ok = false;
			cr_log_error("%s/%s/%s: evaluate failed: %s", level, expect, names[i], err);
		} else if (!want_fail) {
			ok = res.n_violations == 0;
			if (!ok)
				cr_log_error("%s/%s/%s: unexpected violation: %s", level, expect,
				             names[i], res.violations[0].message);
		} else {
			/* file prefix: the name up to its trailing digits */
			char prefix[128];
			snprintf(prefix, sizeof prefix, "%s", names[i]);
			prefix[strlen(prefix) - 5] = '\0';
			size_t pl = strlen(prefix);
			while (pl && isdigit((unsigned char)prefix[pl - 1]))
				prefix[--pl] = '\0';
			ok = false;
			for (size_t v = 0; v < res.n_violations; v++)
				if (!strcasecmp(res.violations[v].check, prefix))
					ok = true;
			if (!ok)
				cr_log_error("%s/%s/%s: %zu violations, none is [%s]%s%s", level,
				             expect, names[i], res.n_violations, prefix,
				             res.n_violations ? "; first: " : "",
				             res.n_violations ? res.violations[0].message : "");
		}
		agreed += ok;
		wh_result_free(&res);
		cf_yaml_docs_free(&docs);
		cf_buf_free(&buf);
		free(names[i]);
	}
	*seen += (int)n;
	return agreed;
}

static int total_seen, total_agreed;

static void check_dir(const char *level, const char *expect)
{
	int seen = 0;
	int agreed = run_dir(level, expect, &seen);
	total_seen += seen;
	total_agreed += agreed;
	cr_assert_gt(seen, 0, "no fixtures in %s/%s", level, expect);
	cr_assert_eq(agreed, seen, "%s/%s: %d/%d agree", level, expect, agreed, seen);
}

Test(wh_psa_corpus, baseline_pass_files_have_no_violation)
{
	check_dir("baseline", "pass");
}

Test(wh_psa_corpus, baseline_fail_files_violate_their_check)
{
	check_dir("baseline", "fail");
}

Test(wh_psa_corpus, restricted_pass_files_have_no_violation)
{
	check_dir("restricted", "pass");
}

Test(wh_psa_corpus, restricted_fail_files_violate_their_check)
{
	check_dir("restricted", "fail");
}

Test(wh_psa_corpus, all_148_fixtures_agree)
{
	total_seen = total_agreed = 0;
	int seen = 0, agreed = 0;
	static const char *const dirs[4][2] = {{"baseline", "pass"},
	                                       {"baseline", "fail"},
	                                       {"restricted", "pass"},
	                                       {"restricted", "fail"}};
	for (int i = 0; i < 4; i++)
		agreed += run_dir(dirs[i][0], dirs[i][1], &seen);
	cr_log_info("%d/%d agree", agreed, seen);
	cr_assert_eq(seen, CORPUS_TOTAL, "expected %d fixtures, found %d", CORPUS_TOTAL, seen);
	cr_assert_eq(agreed, CORPUS_TOTAL, "%d/%d agree", agreed, CORPUS_TOTAL);
}
