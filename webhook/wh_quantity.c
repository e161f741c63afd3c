/*
 * wh_quantity.c - Kubernetes resource quantities, parsed exactly (see
 * wh_quantity.h).
 *
 * The decimal mantissa, the suffix's power of ten and its power of two are
 * combined in a small fixed-size big integer, so "0.1Ei" or "1e-7" come out
 * exactly as the API server computes them (rounded up to a whole nano-unit),
 * never through floating point. Only the final value has to fit in the
 * 128-bit result.
 * Thread-safety: pure functions. Ownership: values only.
 */
#include "wh_quantity.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cf_limits.h"

/* 32 x 32 bits: room for CF_QUANTITY_MAX_CHARS decimal digits (< 2^426)
 * times 2^60 (Ei) times 10^(CF_QUANTITY_MAX_EXPONENT + 9). */
#define QB_LIMBS 40

typedef struct qbig {
	uint32_t w[QB_LIMBS]; /* little-endian limbs */
	size_t n;             /* limbs in use: w[n..] are zero, so loops stop early */
} qbig;

/* Results beyond this many nano-units are -ERANGE: it leaves headroom in
 * __int128 and is far above the API server's own cap (2^63-1 units). */
#define WH_QUANTITY_MAX_NANOS (((__int128)1) << 125)

static int qb_mul_add(qbig *b, uint32_t mul, uint32_t add)
{
	uint64_t carry = add;
	for (size_t i = 0; i < b->n; i++) {
		uint64_t v = (uint64_t)b->w[i] * mul + carry;
		b->w[i] = (uint32_t)v;
		carry = v >> 32;
	}
	if (carry) {
		if (b->n == QB_LIMBS)
			return -ERANGE;
		b->w[b->n++] = (uint32_t)carry;
	}
	return 0;
}

/* Divides in place; returns the remainder. */
static uint32_t qb_div_small(qbig *b, uint32_t d)
{
	uint64_t rem = 0;
	for (size_t i = b->n; i-- > 0;) {
		uint64_t cur = (rem << 32) | b->w[i];
		b->w[i] = (uint32_t)(cur / d);
		rem = cur % d;
	}
	while (b->n && !b->w[b->n - 1])
		b->n--;
	return (uint32_t)rem;
}

static int qb_is_zero(const qbig *b)
{
	return b->n == 0;
}

/* Suffix -> powers of ten and two. 0, or -EINVAL for an unknown suffix,
 * -ERANGE for an exponent beyond CF_QUANTITY_MAX_EXPONENT. */
static int parse_suffix(const char *s, long *exp10, long *exp2)
{
	static const struct {
		const char *name;
		int e10, e2;
	} table[] = {
	    {"", 0, 0},    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},
	    {"k", 3, 0},   {"M", 6, 0},   {"G", 9, 0},   {"T", 12, 0},
	    {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
	    {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
	};
	*exp10 = 0;
	*exp2 = 0;
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (!strcmp(s, table[i].name)) {
			*exp10 = table[i].e10;
			*exp2 = table[i].e2;
			return 0;
		}
	}
	/* Decimal exponent: e<int> / E<int>, sign allowed ("E" alone is exa). */
	if ((s[0] != 'e' && s[0] != 'E') || !s[1])
		return -EINVAL;
	const char *p = s + 1;
	int neg = 0;
	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	if (!*p)
		return -EINVAL;
	long v = 0;
	int big = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		if (v > 100000)
			big = 1; /* keep scanning for bad characters, value is moot */
		else
			v = v * 10 + (*p - '0');
	}
	if (big)
		v = 100000;
	*exp10 = neg ? -v : v;
	return 0;
}

/* The forms manifests actually use ("500m", "2Gi", "1.5", "64Mi": at most
 * 18 digits, an optional fraction, a suffix from the table, a whole number
 * of nano-units) in plain integers, without the big-integer machinery.
 * Returns 1 with *out set, or 0 to leave the text to the general parser,
 * which also produces every error; both give the same value wherever this
 * one answers (tests/test_wh_quantity.c compares them). */
static int parse_common(const char *p, wh_quantity *out)
{
	int neg = 0;
	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	uint64_t m = 0;
	int ndigits = 0, nfrac = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (++ndigits > 18)
			return 0;
		m = m * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, nfrac++) {
			if (++ndigits > 18)
				return 0;
			m = m * 10 + (uint64_t)(*p - '0');
		}
	}
	if (ndigits == 0)
		return 0;
	int e10 = 0, e2 = 0;
	switch (*p) {
	case '\0':
		break;
	case 'n':
		e10 = -9;
		break;
	case 'u':
		e10 = -6;
		break;
	case 'm':
		e10 = -3;
		break;
	case 'k':
		e10 = 3;
		break;
	case 'K':
		if (p[1] != 'i')
			return 0;
		e2 = 10;
		p++;
		break;
	case 'M':
	case 'G':
	case 'T':
	case 'P':
	case 'E': {
		static const char order[] = "MGTPE";
		int k = (int)(strchr(order, *p) - order) + 2; /* M = 10^6 = 2^20 */
		if (p[1] == 'i') {
			e2 = 10 * k;
			p++;
		} else {
			e10 = 3 * k;
		}
		break;
	}
	default:
		return 0; /* exponents and anything else */
	}
	if (*p && p[1])
		return 0; /* trailing characters: the general parser says why */
	if (m == 0) {
		out->nanos = 0;
		return 1;
	}
	int scale = e10 - nfrac + 9;
	if (scale < 0)
		return 0; /* a fraction of a nano-unit: rounding is the general path's */
	unsigned __int128 u = (unsigned __int128)m << e2; /* < 2^60 * 2^60 */
	for (int i = 0; i < scale; i++) {
		if (u > (unsigned __int128)WH_QUANTITY_MAX_NANOS / 10)
			return 0;
		u *= 10;
	}
	if (u > (unsigned __int128)WH_QUANTITY_MAX_NANOS)
		return 0;
	out->nanos = neg ? -(__int128)u : (__int128)u;
	return 1;
}

int wh_quantity_parse(const char *text, wh_quantity *out)
{
	if (!text || !out)
		return -EINVAL;
	if (parse_common(text, out))
		return 0;
	return wh_quantity_parse_exact(text, out);
}

int wh_quantity_parse_exact(const char *text, wh_quantity *out)
{
	if (!text || !out)
		return -EINVAL;
	size_t len = strlen(text);
	if (len == 0 || len > CF_QUANTITY_MAX_CHARS)
		return -EINVAL;

	const char *p = text;
	int neg = 0;
	if (*p == '+' || *p == '-') {
		neg = *p == '-';
		p++;
	}
	qbig b;
	memset(&b, 0, sizeof b);
	size_t ndigits = 0, nfrac = 0;
	for (; *p >= '0' && *p <= '9'; p++, ndigits++)
		(void)qb_mul_add(&b, 10, (uint32_t)(*p - '0')); /* cannot overflow: <= 128 digits */
	if (*p == '.') {
		p++;
		for (; *p >= '0' && *p <= '9'; p++, ndigits++, nfrac++)
			(void)qb_mul_add(&b, 10, (uint32_t)(*p - '0'));
	}
	if (ndigits == 0)
		return -EINVAL;

	long e10, e2;
	int rc = parse_suffix(p, &e10, &e2);
	if (rc)
		return rc;

	if (qb_is_zero(&b)) {
		out->nanos = 0;
		return 0;
	}
	if (e10 > CF_QUANTITY_MAX_EXPONENT)
		return -ERANGE;

	/* value = mantissa * 10^(e10 - nfrac) * 2^e2, in nano-units: +9. */
	long scale = e10 - (long)nfrac + 9;
	for (long i = 0; i < e2; i++)
		if (qb_mul_add(&b, 2, 0))
			return -ERANGE;
	int sticky = 0;
	if (scale > 0) {
		for (long i = 0; i < scale; i++)
			if (qb_mul_add(&b, 10, 0))
				return -ERANGE;
	} else {
		/* A fraction of a nano-unit rounds up, as the API server does. */
		for (long i = 0; i < -scale && !qb_is_zero(&b); i++)
			if (qb_div_small(&b, 10))
				sticky = 1;
	}
	if (b.n > 4)
		return -ERANGE;
	unsigned __int128 u = ((unsigned __int128)b.w[3] << 96) |
	                      ((unsigned __int128)b.w[2] << 64) |
	                      ((unsigned __int128)b.w[1] << 32) | b.w[0];
	if (sticky)
		u++;
	if (u > (unsigned __int128)WH_QUANTITY_MAX_NANOS)
		return -ERANGE;
	out->nanos = neg ? -(__int128)u : (__int128)u;
	return 0;
}

int wh_quantity_from_json(const cJSON *item, wh_quantity *out)
{
	if (!item || !out)
		return -EINVAL;
	if (cJSON_IsString(item))
		return wh_quantity_parse(item->valuestring, out);
	if (!cJSON_IsNumber(item))
		return -EINVAL;
	/* cf_yaml keeps a number's source text: "0.5" stays exact. */
	if (item->valuestring && item->valuestring[0])
		return wh_quantity_parse(item->valuestring, out);
	char buf[64];
	snprintf(buf, sizeof buf, "%.15g", item->valuedouble);
	if (strchr(buf, 'n') || strchr(buf, 'N')) /* inf / nan */
		return -EINVAL;
	return wh_quantity_parse(buf, out);
}

int wh_quantity_cmp(const wh_quantity *a, const wh_quantity *b)
{
	return (a->nanos > b->nanos) - (a->nanos < b->nanos);
}

bool wh_quantity_is_zero(const wh_quantity *q)
{
	return q->nanos == 0;
}

/* Decimal digits of u into buf (NUL-terminated); returns the length. */
static size_t u128_to_dec(unsigned __int128 u, char *buf, size_t buflen)
{
	char tmp[48];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u && n < sizeof tmp);
	size_t k = 0;
	while (n && k + 1 < buflen)
		buf[k++] = tmp[--n];
	if (buflen)
		buf[k] = '\0';
	return k;
}

void wh_quantity_format(const wh_quantity *q, char *out, size_t outlen)
{
	if (!out || !outlen)
		return;
	unsigned __int128 u =
	    q->nanos < 0 ? (unsigned __int128)(-q->nanos) : (unsigned __int128)q->nanos;
	const char *sign = q->nanos < 0 ? "-" : "";
	const unsigned __int128 giga = 1000000000u;
	char whole[48], frac[16];
	u128_to_dec(u / giga, whole, sizeof whole);
	unsigned __int128 rem = u % giga;
	if (!rem) {
		snprintf(out, outlen, "%s%s", sign, whole);
		return;
	}
	if (rem % 1000000u == 0 && u / giga == 0) {
		snprintf(out, outlen, "%s%um", sign, (unsigned)(rem / 1000000u));
		return;
	}
	snprintf(frac, sizeof frac, "%09u", (unsigned)rem);
	size_t fl = strlen(frac);
	while (fl > 1 && frac[fl - 1] == '0')
		frac[--fl] = '\0';
	snprintf(out, outlen, "%s%s.%s", sign, whole, frac);
}
