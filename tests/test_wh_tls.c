/* Tests for webhook/wh_tls: loading certificate/key pairs, refusing broken
 * ones, noticing changes on disk (rewrite, rename, symlink swap), keeping
 * the old credential on a broken update, and credential lifetimes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "support/ts_pki.h"
#include "wh_tls.h"

static char dir[128], crt[200], key[200];
static ts_ca *ca;
static char err[1024];

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void issue(const char *cn, const char *c, const char *k, int days)
{
	const char *sans[] = {"DNS:localhost"};
	cr_assert_eq(ts_ca_issue(ca, cn, sans, 1, days, c, k), 0);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/cf-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	path_in(crt, sizeof crt, "tls.crt");
	path_in(key, sizeof key, "tls.key");
	ca = ts_ca_new("tls test CA", 2);
	cr_assert_not_null(ca);
	issue("one", crt, key, 2);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void teardown(void)
{
	ts_ca_free(ca);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(wh_tls, .init = setup, .fini = teardown);

Test(wh_tls, loads_a_valid_pair_with_expiry)
{
	wh_tls_cred *c = wh_tls_cred_load(crt, key, err, sizeof err);
	cr_assert_not_null(c, "%s", err);
	unsigned n = 0;
	cr_assert_not_null(wh_tls_cred_pcerts(c, &n));
	cr_assert_eq(n, 1);
	cr_assert_not_null(wh_tls_cred_key(c));
	int64_t now = (int64_t)time(NULL);
	cr_assert(wh_tls_cred_not_after(c) > now + 86400 &&
	          wh_tls_cred_not_after(c) < now + 3 * 86400);
	wh_tls_cred_unref(c);
}

Test(wh_tls, loads_a_chain_leaf_first)
{
	char chain[256], ca_pem[200];
	path_in(chain, sizeof chain, "chain.crt");
	path_in(ca_pem, sizeof ca_pem, "ca.pem");
	cr_assert_eq(ts_ca_write_cert(ca, ca_pem), 0);
	FILE *out = fopen(chain, "w");
	FILE *a = fopen(crt, "r"), *b = fopen(ca_pem, "r");
	int ch;
	while ((ch = fgetc(a)) != EOF)
		fputc(ch, out);
	while ((ch = fgetc(b)) != EOF)
		fputc(ch, out);
	fclose(a);
	fclose(b);
	fclose(out);
	wh_tls_cred *c = wh_tls_cred_load(chain, key, err, sizeof err);
	cr_assert_not_null(c, "%s", err);
	unsigned n = 0;
	wh_tls_cred_pcerts(c, &n);
	cr_assert_eq(n, 2);
	wh_tls_cred_unref(c);
}

Test(wh_tls, refuses_missing_files)
{
	cr_assert_null(wh_tls_cred_load("/nonexistent.crt", key, err, sizeof err));
	cr_assert(strstr(err, "certificate") && strstr(err, "nonexistent"), "%s", err);
	cr_assert_null(wh_tls_cred_load(crt, "/nonexistent.key", err, sizeof err));
	cr_assert(strstr(err, "key"), "%s", err);
}

Test(wh_tls, refuses_garbage_and_empty_files)
{
	char junk[200], empty[200];
	path_in(junk, sizeof junk, "junk");
	path_in(empty, sizeof empty, "empty");
	cr_assert_eq(ts_write_garbage(junk, 900), 0);
	fclose(fopen(empty, "w"));
	cr_assert_null(wh_tls_cred_load(junk, key, err, sizeof err));
	cr_assert(strstr(err, "no usable PEM certificate"), "%s", err);
	cr_assert_null(wh_tls_cred_load(empty, key, err, sizeof err));
	cr_assert_null(wh_tls_cred_load(crt, junk, err, sizeof err));
	cr_assert(strstr(err, "private key"), "%s", err);
	cr_assert_null(wh_tls_cred_load(crt, empty, err, sizeof err));
	/* A certificate file given as the key. */
	cr_assert_null(wh_tls_cred_load(crt, crt, err, sizeof err));
}

Test(wh_tls, refuses_a_key_that_does_not_match)
{
	char c2[200], k2[200];
	path_in(c2, sizeof c2, "two.crt");
	path_in(k2, sizeof k2, "two.key");
	issue("two", c2, k2, 2);
	cr_assert_null(wh_tls_cred_load(crt, k2, err, sizeof err));
	cr_assert(strstr(err, "does not match"), "%s", err);
}

Test(wh_tls, refuses_an_oversized_file)
{
	char big[200];
	path_in(big, sizeof big, "big.crt");
	cr_assert_eq(ts_write_garbage(big, 2u * 1024u * 1024u), 0);
	cr_assert_null(wh_tls_cred_load(big, key, err, sizeof err));
}

Test(wh_tls, store_needs_a_valid_first_pair)
{
	cr_assert_null(wh_tls_store_new("/nonexistent.crt", key, err, sizeof err));
	wh_tls_store *s = wh_tls_store_new(crt, key, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), 0, "no change, no reload");
	cr_assert_eq(wh_tls_store_generation(s), 0);
	wh_tls_store_free(s);
}

Test(wh_tls, poll_sees_a_rename_and_keeps_old_creds_alive)
{
	wh_tls_store *s = wh_tls_store_new(crt, key, err, sizeof err);
	wh_tls_cred *held = wh_tls_store_acquire(s);
	int64_t first = wh_tls_cred_not_after(held);
	char c2[200], k2[200];
	path_in(c2, sizeof c2, "n.crt");
	path_in(k2, sizeof k2, "n.key");
	issue("two", c2, k2, 1);
	cr_assert_eq(rename(k2, key), 0);
	cr_assert_eq(rename(c2, crt), 0);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), 1, "%s", err);
	cr_assert_eq(wh_tls_store_generation(s), 1);
	cr_assert_lt(wh_tls_store_not_after(s), first, "the new (shorter) certificate is current");
	/* The old credential is still usable by whoever holds it. */
	unsigned n = 0;
	cr_assert_not_null(wh_tls_cred_pcerts(held, &n));
	cr_assert_eq(wh_tls_cred_not_after(held), first);
	wh_tls_cred_unref(held);
	wh_tls_store_free(s);
}

Test(wh_tls, broken_update_keeps_the_old_credential_and_reports_once)
{
	wh_tls_store *s = wh_tls_store_new(crt, key, err, sizeof err);
	int64_t first = wh_tls_store_not_after(s);
	char junk[200];
	path_in(junk, sizeof junk, "junk");
	cr_assert_eq(ts_write_garbage(junk, 500), 0);
	cr_assert_eq(rename(junk, crt), 0);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), -EAGAIN);
	cr_assert(err[0]);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), 0, "the same broken state once");
	cr_assert_eq(wh_tls_store_not_after(s), first);
	wh_tls_cred *c = wh_tls_store_acquire(s);
	cr_assert_not_null(c);
	wh_tls_cred_unref(c);
	/* Fixed on disk: picked up. */
	char c2[200], k2[200];
	path_in(c2, sizeof c2, "f.crt");
	path_in(k2, sizeof k2, "f.key");
	issue("fixed", c2, k2, 1);
	cr_assert_eq(rename(k2, key), 0);
	cr_assert_eq(rename(c2, crt), 0);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), 1, "%s", err);
	wh_tls_store_free(s);
}

Test(wh_tls, poll_sees_a_data_symlink_swap)
{
	char v1[200], v2[200], data[200], tmp[200], p[256], q[256], lc[200], lk[200];
	path_in(v1, sizeof v1, "..v1");
	path_in(v2, sizeof v2, "..v2");
	path_in(data, sizeof data, "..data");
	path_in(tmp, sizeof tmp, "..data_tmp");
	path_in(lc, sizeof lc, "link.crt");
	path_in(lk, sizeof lk, "link.key");
	cr_assert_eq(mkdir(v1, 0755), 0);
	cr_assert_eq(mkdir(v2, 0755), 0);
	snprintf(p, sizeof p, "%s/tls.crt", v1);
	snprintf(q, sizeof q, "%s/tls.key", v1);
	issue("v1", p, q, 2);
	snprintf(p, sizeof p, "%s/tls.crt", v2);
	snprintf(q, sizeof q, "%s/tls.key", v2);
	issue("v2", p, q, 1);
	cr_assert_eq(symlink("..v1", data), 0);
	cr_assert_eq(symlink("..data/tls.crt", lc), 0);
	cr_assert_eq(symlink("..data/tls.key", lk), 0);
	wh_tls_store *s = wh_tls_store_new(lc, lk, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), 0);
	cr_assert_eq(symlink("..v2", tmp), 0);
	cr_assert_eq(rename(tmp, data), 0);
	cr_assert_eq(wh_tls_store_poll(s, err, sizeof err), 1, "%s", err);
	wh_tls_store_free(s);
}
