/* Tests for webhook/wh_quantity: the Kubernetes quantity grammar, exact
 * values (no floating point), rounding of sub-nano fractions, comparison,
 * and every kind of malformed text. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cf_limits.h"
#include "wh_quantity.h"

#define NANO ((__int128)1000000000)

static __int128 q(const char *s)
{
	wh_quantity v;
	int rc = wh_quantity_parse(s, &v);
	cr_assert_eq(rc, 0, "parse(\"%s\") = %d", s, rc);
	return v.nanos;
}

static int qerr(const char *s)
{
	wh_quantity v;
	return wh_quantity_parse(s, &v);
}

Test(wh_quantity, plain_and_decimal_numbers)
{
	cr_assert(q("1") == NANO);
	cr_assert(q("0") == 0);
	cr_assert(q("0.5") == NANO / 2);
	cr_assert(q("2.25") == 2 * NANO + NANO / 4);
	cr_assert(q(".5") == NANO / 2);
	cr_assert(q("5.") == 5 * NANO);
	cr_assert(q("+3") == 3 * NANO);
	cr_assert(q("-3") == -3 * NANO);
	cr_assert(q("007") == 7 * NANO);
}

Test(wh_quantity, decimal_si_suffixes)
{
	cr_assert(q("500m") == NANO / 2);
	cr_assert(q("1n") == 1);
	cr_assert(q("1u") == 1000);
	cr_assert(q("1k") == 1000 * NANO);
	cr_assert(q("1M") == 1000000 * NANO);
	cr_assert(q("1G") == (__int128)1000000000 * NANO);
	cr_assert(q("1T") == (__int128)1000000000000 * NANO);
	cr_assert(q("1P") == (__int128)1000000000000000 * NANO);
	cr_assert(q("1E") == (__int128)1000000000000000000 * NANO);
	cr_assert(q("1.5k") == 1500 * NANO);
}

Test(wh_quantity, binary_suffixes)
{
	cr_assert(q("1Ki") == 1024 * NANO);
	cr_assert(q("1Mi") == 1048576 * NANO);
	cr_assert(q("2Gi") == (__int128)2147483648 * NANO);
	cr_assert(q("1Ti") == ((__int128)1 << 40) * NANO);
	cr_assert(q("1Pi") == ((__int128)1 << 50) * NANO);
	cr_assert(q("1Ei") == ((__int128)1 << 60) * NANO);
	cr_assert(q("1.5Gi") == (__int128)1610612736 * NANO);
	cr_assert(q("0.5Ki") == 512 * NANO);
}

Test(wh_quantity, exponents)
{
	cr_assert(q("1e3") == 1000 * NANO);
	cr_assert(q("1E3") == 1000 * NANO);
	cr_assert(q("1e+3") == 1000 * NANO);
	cr_assert(q("1e-3") == NANO / 1000);
	cr_assert(q("2.5e2") == 250 * NANO);
	cr_assert(q("0e999999") == 0, "zero with any exponent is zero");
}

Test(wh_quantity, sub_nano_fractions_round_up)
{
	cr_assert(q("0.1n") == 1);
	cr_assert(q("1e-10") == 1);
	cr_assert(q("1.0000000001") == NANO + 1);
	cr_assert(q("1e-99999") == 1, "tiny but non-zero is one nano-unit");
	cr_assert(q("-0.1n") == -1, "magnitude rounds up");
	/* binary x tiny decimal is computed exactly, not via doubles */
	cr_assert(q("0.0000000001Ei") == (__int128)115292150460684698LL, "2^60/10^10 in nanos");
}

Test(wh_quantity, trailing_zeros_do_not_change_value)
{
	cr_assert(q("1.000000000000000000000000000000000000000000000000000000000") == NANO);
	cr_assert(q("0.00000000000000000000000000000000000000000000000000000001") == 1);
}

Test(wh_quantity, comparison_is_exact)
{
	wh_quantity a, b;
	cr_assert_eq(wh_quantity_parse("1Gi", &a), 0);
	cr_assert_eq(wh_quantity_parse("1073741824", &b), 0);
	cr_assert_eq(wh_quantity_cmp(&a, &b), 0);
	cr_assert_eq(wh_quantity_parse("1G", &b), 0);
	cr_assert_gt(wh_quantity_cmp(&a, &b), 0);
	cr_assert_lt(wh_quantity_cmp(&b, &a), 0);
	cr_assert_eq(wh_quantity_parse("1000m", &a), 0);
	cr_assert_eq(wh_quantity_parse("1", &b), 0);
	cr_assert_eq(wh_quantity_cmp(&a, &b), 0);
	cr_assert_eq(wh_quantity_parse("0.1", &a), 0);
	cr_assert_eq(wh_quantity_parse("100m", &b), 0);
	cr_assert_eq(wh_quantity_cmp(&a, &b), 0, "0.1 is exactly 100m");
	cr_assert(!wh_quantity_is_zero(&a));
	cr_assert_eq(wh_quantity_parse("0m", &a), 0);
	cr_assert(wh_quantity_is_zero(&a));
}

Test(wh_quantity, from_json_string_and_number)
{
	cJSON *s = cJSON_CreateString("250m");
	cJSON *n = cJSON_CreateNumber(0.1);
	cJSON *i = cJSON_CreateNumber(2);
	wh_quantity v;
	cr_assert_eq(wh_quantity_from_json(s, &v), 0);
	cr_assert(v.nanos == NANO / 4);
	cr_assert_eq(wh_quantity_from_json(n, &v), 0);
	cr_assert(v.nanos == NANO / 10, "a double 0.1 means 100m, not 100000001n");
	cr_assert_eq(wh_quantity_from_json(i, &v), 0);
	cr_assert(v.nanos == 2 * NANO);
	/* cf_yaml keeps a number's source text in valuestring */
	n->valuestring = strdup("1e3");
	cr_assert_eq(wh_quantity_from_json(n, &v), 0);
	cr_assert(v.nanos == 1000 * NANO);
	cJSON_Delete(s);
	cJSON_Delete(n);
	cJSON_Delete(i);
}

Test(wh_quantity, format_for_messages)
{
	char buf[64];
	wh_quantity v;
	wh_quantity_parse("500m", &v);
	wh_quantity_format(&v, buf, sizeof buf);
	cr_assert_str_eq(buf, "500m");
	wh_quantity_parse("2Gi", &v);
	wh_quantity_format(&v, buf, sizeof buf);
	cr_assert_str_eq(buf, "2147483648");
	wh_quantity_parse("1.5", &v);
	wh_quantity_format(&v, buf, sizeof buf);
	cr_assert_str_eq(buf, "1.5");
	wh_quantity_parse("-250m", &v);
	wh_quantity_format(&v, buf, sizeof buf);
	cr_assert_str_eq(buf, "-250m");
	wh_quantity_parse("1n", &v);
	wh_quantity_format(&v, buf, sizeof buf);
	cr_assert_str_eq(buf, "0.000000001");
}

/* ---- negative cases: one test per rejected text ---- */

#define REJECTS(id, text, code)                                                                    \
	Test(wh_quantity_bad, id)                                                                  \
	{                                                                                          \
		cr_assert_eq(qerr(text), code, "parse(\"%s\")", text);                             \
	}

REJECTS(empty, "", -EINVAL)
REJECTS(plus_only, "+", -EINVAL)
REJECTS(minus_only, "-", -EINVAL)
REJECTS(dot_only, ".", -EINVAL)
REJECTS(text_Ki, "Ki", -EINVAL)
REJECTS(text_m, "m", -EINVAL)
REJECTS(text_1K, "1K", -EINVAL)
REJECTS(text_1ki, "1ki", -EINVAL)
REJECTS(text_1KiB, "1KiB", -EINVAL)
REJECTS(text_1Gb, "1Gb", -EINVAL)
REJECTS(text_1mi, "1mi", -EINVAL)
REJECTS(text_1Zi, "1Zi", -EINVAL)
REJECTS(text_1x, "1x", -EINVAL)
REJECTS(text_1_2_3, "1.2.3", -EINVAL)
REJECTS(text_1, "--1", -EINVAL)
REJECTS(text_1_2, " 1", -EINVAL)
REJECTS(text_1_3, "1 ", -EINVAL)
REJECTS(text_1_5, "1,5", -EINVAL)
REJECTS(text_0x10, "0x10", -EINVAL)
REJECTS(text_1Ki2, "1Ki2", -EINVAL)
REJECTS(text_inf, "inf", -EINVAL)
REJECTS(text_NaN, "NaN", -EINVAL)
REJECTS(text_1e, "1e", -EINVAL)
REJECTS(text_1e_2, "1e+", -EINVAL)
REJECTS(text_1e3m, "1e3m", -EINVAL)
REJECTS(text_1e1_5, "1e1.5", -EINVAL)
REJECTS(text_1ee3, "1ee3", -EINVAL)
REJECTS(range_text_1e65, "1e65", -ERANGE)
REJECTS(range_text_1e999999999999, "1e999999999999", -ERANGE)
REJECTS(range_text_99999999999999999999999999999999999999E,
        "99999999999999999999999999999999999999E", -ERANGE)
REJECTS(range_text_99999999999999999999Ei, "99999999999999999999Ei", -ERANGE)

Test(wh_quantity, rejects_overlong_text)
{
	char buf[CF_QUANTITY_MAX_CHARS + 2];
	memset(buf, '1', sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	cr_assert_eq(qerr(buf), -EINVAL);
}

Test(wh_quantity, rejects_null_and_non_quantity_json)
{
	wh_quantity v;
	cr_assert_eq(wh_quantity_parse(NULL, &v), -EINVAL);
	cr_assert_eq(wh_quantity_from_json(NULL, &v), -EINVAL);
	cJSON *t = cJSON_CreateTrue();
	cJSON *o = cJSON_CreateObject();
	cJSON *a = cJSON_CreateArray();
	cJSON *nul = cJSON_CreateNull();
	cJSON *bad = cJSON_CreateString("lots");
	cr_assert_eq(wh_quantity_from_json(t, &v), -EINVAL);
	cr_assert_eq(wh_quantity_from_json(o, &v), -EINVAL);
	cr_assert_eq(wh_quantity_from_json(a, &v), -EINVAL);
	cr_assert_eq(wh_quantity_from_json(nul, &v), -EINVAL);
	cr_assert_eq(wh_quantity_from_json(bad, &v), -EINVAL);
	cJSON_Delete(t);
	cJSON_Delete(o);
	cJSON_Delete(a);
	cJSON_Delete(nul);
	cJSON_Delete(bad);
}

/* wh_quantity_parse takes a shortcut for common forms; it must agree with
 * the general parser on every input, in result code and value. */
Test(quantity, shortcut_agrees_with_general_parser)
{
	static const char *const signs[] = {"", "+", "-"};
	static const char *const ints[] = {"",
	                                   "0",
	                                   "1",
	                                   "5",
	                                   "12",
	                                   "00012",
	                                   "999999999999999999",
	                                   "1000000000000000000",
	                                   "9223372036854775807",
	                                   "170141183460469231731"};
	static const char *const fracs[] = {
	    "",    ".",   ".5", ".000000001", ".0000000001", ".25", ".123456789012345678",
	    "..5", ".5.5"};
	static const char *const suffixes[] = {"",    "n",  "u",   "m",   "k",  "M",   "G",   "T",
	                                       "P",   "E",  "Ki",  "Mi",  "Gi", "Ti",  "Pi",  "Ei",
	                                       "e3",  "E3", "e-3", "E+2", "e",  "K",   "ki",  "i",
	                                       "Eix", "m ", "mm",  "Mii", " ",  "e64", "e65", "x"};
	char text[128];
	size_t checked = 0, shortcut_forms = 0;
	for (size_t a = 0; a < sizeof signs / sizeof signs[0]; a++)
		for (size_t b = 0; b < sizeof ints / sizeof ints[0]; b++)
			for (size_t c = 0; c < sizeof fracs / sizeof fracs[0]; c++)
				for (size_t d = 0; d < sizeof suffixes / sizeof suffixes[0]; d++) {
					snprintf(text, sizeof text, "%s%s%s%s", signs[a], ints[b],
					         fracs[c], suffixes[d]);
					wh_quantity q1 = {.nanos = 7}, q2 = {.nanos = 7};
					int r1 = wh_quantity_parse(text, &q1);
					int r2 = wh_quantity_parse_exact(text, &q2);
					cr_assert_eq(r1, r2, "\"%s\": rc %d vs %d", text, r1, r2);
					if (r1 == 0) {
						cr_assert(q1.nanos == q2.nanos,
						          "\"%s\": values differ", text);
						shortcut_forms++;
					}
					checked++;
				}
	cr_assert_gt(shortcut_forms, 1000, "the grid exercises valid forms");
	cr_assert_gt(checked, shortcut_forms, "and invalid ones");
}

Test(quantity, shortcut_common_values)
{
	static const struct {
		const char *text;
		long long nanos;
	} cases[] = {
	    {"500m", 500000000LL},
	    {"2", 2000000000LL},
	    {"1.5", 1500000000LL},
	    {"64Mi", 67108864000000000LL},
	    {"1k", 1000000000000LL},
	    {"-250m", -250000000LL},
	    {"1n", 1LL},
	    {"0.5n", 1LL} /* rounds up */,
	    {"100u", 100000LL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		wh_quantity q;
		cr_assert_eq(wh_quantity_parse(cases[i].text, &q), 0, "%s", cases[i].text);
		cr_assert(q.nanos == (__int128)cases[i].nanos, "%s", cases[i].text);
	}
	static const char *const bad[] = {"", "m", "1K", "1 ", " 1", "1.2.3", "1mm", "--1", "1Ki "};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		wh_quantity q;
		cr_assert_eq(wh_quantity_parse(bad[i], &q), -EINVAL, "\"%s\"", bad[i]);
	}
}
