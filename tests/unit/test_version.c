/*
 * test_version.c - versions: local timestamps, UUID text, comparisons.
 *
 * version_new_local() must beat what it replaces even when the replaced
 * timestamp lies in the future (a node whose clock is behind), its UUID
 * must be a v4 in canonical lower-case text, the text form must round-trip
 * and refuse anything that is not 36 characters of canonical UUID, and
 * cmp_ts / equal / conflicts must follow the rules in version.h.  The
 * timestamp bounds: version_ts_acceptable() takes 1 .. min(VERSION_TS_LIMIT
 * - 1, now + VERSION_FUTURE_MAX_MS), version_new_local() refuses
 * (KVS_ETOOBIG, out untouched) to reach VERSION_TS_LIMIT, and
 * version_is_nil() spots the all-zero UUID.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "version.h"

/* True if s is a canonical lower-case UUID v4 (RFC 4122 variant). */
static bool is_v4_lower(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return false;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_now_is_sane(void **state)
{
	(void)state;
	int64_t a = version_now_ms();
	int64_t b = version_now_ms();

	assert_true(a > 1600000000000LL); /* after 2020 */
	assert_true(b >= a);
}

static void test_new_local_no_prev(void **state)
{
	(void)state;
	struct kvs_version v;
	int64_t before = version_now_ms();

	version_new_local(&v, NULL);
	int64_t after = version_now_ms();
	assert_true(v.ts >= before);
	assert_true(v.ts <= after);
}

static void test_new_local_beats_past_prev(void **state)
{
	(void)state;
	struct kvs_version prev = { .ts = 1000 }, v;

	version_new_local(&v, &prev);
	assert_true(v.ts > prev.ts);
	assert_true(v.ts >= version_now_ms() - 1000);
}

static void test_new_local_beats_future_prev(void **state)
{
	(void)state;
	struct kvs_version prev, v;

	/* prev an hour in the future: our clock is behind */
	prev.ts = version_now_ms() + 3600 * 1000;
	memset(prev.id, 0xab, sizeof(prev.id));
	version_new_local(&v, &prev);
	assert_int_equal(v.ts, prev.ts + 1);
	assert_false(version_equal(&v, &prev));

	/* prev == now (or just now): still strictly greater */
	prev.ts = version_now_ms();
	version_new_local(&v, &prev);
	assert_true(v.ts > prev.ts);

	/* a chain of overwrites keeps increasing */
	struct kvs_version cur = { .ts = version_now_ms() + 50000 };
	for (int i = 0; i < 100; i++) {
		struct kvs_version next;
		version_new_local(&next, &cur);
		assert_true(next.ts > cur.ts);
		cur = next;
	}
}

static void test_uuid_v4_lower(void **state)
{
	(void)state;
	char s[VERSION_UUID_STR];
	char seen[64][VERSION_UUID_STR];

	for (int i = 0; i < 64; i++) {
		struct kvs_version v;

		memset(s, 'X', sizeof(s));
		version_new_local(&v, NULL);
		version_uuid_str(&v, s);
		assert_int_equal(s[36], '\0');
		if (!is_v4_lower(s)) {
			print_error("not a lower-case v4 UUID: %s\n", s);
			fail();
		}
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen[j], s);
		memcpy(seen[i], s, sizeof(s));
	}
}

/* Each thread draws from its own pool of random bytes: no two threads, and
 * no two refills of one pool, may hand out the same UUID. */
#define UUID_THREADS 4
#define UUID_PER_THREAD 5000

static void *draw_uuids(void *arg)
{
	struct kvs_version *out = arg;

	for (int i = 0; i < UUID_PER_THREAD; i++)
		version_new_local(&out[i], NULL);
	return NULL;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(((const struct kvs_version *)a)->id, ((const struct kvs_version *)b)->id, 16);
}

static void test_uuid_unique_across_threads(void **state)
{
	(void)state;
	static struct kvs_version all[UUID_THREADS * UUID_PER_THREAD];
	pthread_t t[UUID_THREADS];

	for (int i = 0; i < UUID_THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, draw_uuids, &all[i * UUID_PER_THREAD]), 0);
	for (int i = 0; i < UUID_THREADS; i++)
		pthread_join(t[i], NULL);
	qsort(all, UUID_THREADS * UUID_PER_THREAD, sizeof(all[0]), cmp_id);
	for (int i = 1; i < UUID_THREADS * UUID_PER_THREAD; i++)
		assert_int_not_equal(cmp_id(&all[i - 1], &all[i]), 0);
}

static void test_uuid_round_trip(void **state)
{
	(void)state;
	struct kvs_version v, w;
	char s[VERSION_UUID_STR], t[VERSION_UUID_STR];

	for (int i = 0; i < 32; i++) {
		version_new_local(&v, NULL);
		version_uuid_str(&v, s);
		memset(&w, 0, sizeof(w));
		assert_int_equal(version_uuid_parse(&w, s), 0);
		assert_memory_equal(w.id, v.id, 16);
		version_uuid_str(&w, t);
		assert_string_equal(s, t);
	}

	/* fixed value: bytes map to text in order */
	const char *fixed = "00112233-4455-6677-8899-aabbccddeeff";
	static const uint8_t want[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
					  0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
	assert_int_equal(version_uuid_parse(&w, fixed), 0);
	assert_memory_equal(w.id, want, 16);
	version_uuid_str(&w, t);
	assert_string_equal(t, fixed);
}

static void test_uuid_parse_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"00112233-4455-6677-8899-aabbccddeef",    /* 35 chars */
		"00112233-4455-6677-8899-aabbccddeeff0",  /* 37 chars */
		"00112233-4455-6677-8899-aabbccddeefg",   /* non-hex */
		"0011223z-4455-6677-8899-aabbccddeeff",   /* non-hex */
		"00112233+4455-6677-8899-aabbccddeeff",   /* wrong separator */
		"001122334-455-6677-8899-aabbccddeeff",   /* dash misplaced */
		"00112233445566778899aabbccddeeff",       /* no dashes */
		"{00112233-4455-6677-8899-aabbccddeeff}", /* braces */
		" 00112233-4455-6677-8899-aabbccddeef",   /* leading space */
		"00112233-4455-6677-8899-aabbccddeef ",   /* trailing space */
		"not a uuid at all",
	};
	struct kvs_version v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(v.id, 0x5a, sizeof(v.id));
		v.ts = 42;
		if (version_uuid_parse(&v, bad[i]) != KVS_EINVAL) {
			print_error("accepted \"%s\"\n", bad[i]);
			fail();
		}
		/* a failed parse leaves v untouched */
		for (int j = 0; j < 16; j++)
			assert_int_equal(v.id[j], 0x5a);
		assert_int_equal(v.ts, 42);
	}
	assert_int_equal(version_uuid_parse(&v, NULL), KVS_EINVAL);
}

static void test_cmp_equal_conflicts(void **state)
{
	(void)state;
	struct kvs_version a = { .ts = 100 }, b = { .ts = 100 }, c = { .ts = 200 };

	memset(a.id, 1, 16);
	memset(b.id, 2, 16);
	memcpy(c.id, a.id, 16);

	/* cmp_ts: only timestamps */
	assert_int_equal(version_cmp_ts(&a, &b), 0);
	assert_true(version_cmp_ts(&a, &c) < 0);
	assert_true(version_cmp_ts(&c, &a) > 0);
	assert_int_equal(version_cmp_ts(&a, &a), 0);

	/* equal: timestamp and UUID */
	assert_true(version_equal(&a, &a));
	assert_false(version_equal(&a, &b)); /* same ts, other uuid */
	assert_false(version_equal(&a, &c)); /* same uuid, other ts */
	struct kvs_version a2 = a;
	assert_true(version_equal(&a, &a2));

	/* conflicts: same ts, other uuid; never with itself or another ts */
	assert_true(version_conflicts(&a, &b));
	assert_true(version_conflicts(&b, &a));
	assert_false(version_conflicts(&a, &a2));
	assert_false(version_conflicts(&a, &c));
	struct kvs_version d = { .ts = 300 };
	memset(d.id, 9, 16);
	assert_false(version_conflicts(&a, &d));

	/* UUIDs differing in one last byte still conflict */
	a2.id[15] ^= 1;
	assert_true(version_conflicts(&a, &a2));
	assert_false(version_equal(&a, &a2));

	/* extremes do not overflow the comparison */
	struct kvs_version lo = { .ts = INT64_MIN }, hi = { .ts = INT64_MAX };
	assert_true(version_cmp_ts(&lo, &hi) < 0);
	assert_true(version_cmp_ts(&hi, &lo) > 0);
}

static void test_ts_acceptable(void **state)
{
	(void)state;
	const int64_t now = 1700000000000LL, day = 24LL * 3600 * 1000;

	assert_int_equal(VERSION_TS_LIMIT, 1000000000000000LL);
	assert_int_equal(VERSION_FUTURE_MAX_MS, day);

	/* the lower end: positive only */
	assert_false(version_ts_acceptable(0, now));
	assert_false(version_ts_acceptable(-1, now));
	assert_false(version_ts_acceptable(INT64_MIN, now));
	assert_true(version_ts_acceptable(1, now));
	assert_true(version_ts_acceptable(now - 1, now));
	assert_true(version_ts_acceptable(now, now));

	/* ahead of the clock: up to a day exactly */
	assert_true(version_ts_acceptable(now + 1, now));
	assert_true(version_ts_acceptable(now + day, now));
	assert_false(version_ts_acceptable(now + day + 1, now));
	assert_false(version_ts_acceptable(now + 25 * 3600 * 1000LL, now));

	/* the limit holds whatever the clock says */
	const int64_t late = VERSION_TS_LIMIT; /* a clock at the limit itself */
	assert_true(version_ts_acceptable(VERSION_TS_LIMIT - 1, late));
	assert_false(version_ts_acceptable(VERSION_TS_LIMIT, late));
	assert_false(version_ts_acceptable(VERSION_TS_LIMIT + 1, late));
	assert_false(version_ts_acceptable(999999999999999LL, now)); /* below the limit, too far ahead */
	assert_false(version_ts_acceptable(INT64_MAX, now));
	assert_false(version_ts_acceptable(INT64_MAX, INT64_MAX - day)); /* no overflow */

	/* with the real clock */
	int64_t real = version_now_ms();
	assert_true(version_ts_acceptable(real, version_now_ms()));
	assert_true(version_ts_acceptable(real + day - 60000, version_now_ms()));
	assert_false(version_ts_acceptable(real + day + 3600000, version_now_ms()));
}

static void test_is_nil(void **state)
{
	(void)state;
	struct kvs_version v = { .ts = 5 };

	memset(v.id, 0, sizeof(v.id));
	assert_true(version_is_nil(&v));
	for (int i = 0; i < 16; i++) {
		memset(v.id, 0, sizeof(v.id));
		v.id[i] = 1;
		assert_false(version_is_nil(&v));
		v.id[i] = 0x80;
		assert_false(version_is_nil(&v));
	}
	/* the text form parses to nil; a fresh local version never is */
	assert_int_equal(version_uuid_parse(&v, "00000000-0000-0000-0000-000000000000"), 0);
	assert_true(version_is_nil(&v));
	for (int i = 0; i < 64; i++) {
		assert_int_equal(version_new_local(&v, NULL), 0);
		assert_false(version_is_nil(&v));
	}
}

static void test_new_local_limit(void **state)
{
	(void)state;
	struct kvs_version prev, v, untouched;

	/* one below the limit: no room left for a newer one */
	prev.ts = VERSION_TS_LIMIT - 1;
	memset(prev.id, 0xcd, sizeof(prev.id));
	memset(&v, 0x5a, sizeof(v));
	untouched = v;
	assert_int_equal(version_new_local(&v, &prev), KVS_ETOOBIG);
	assert_memory_equal(&v, &untouched, sizeof(v));

	prev.ts = VERSION_TS_LIMIT; /* or past it */
	assert_int_equal(version_new_local(&v, &prev), KVS_ETOOBIG);
	assert_memory_equal(&v, &untouched, sizeof(v));

	/* two below: the last one that fits */
	prev.ts = VERSION_TS_LIMIT - 2;
	assert_int_equal(version_new_local(&v, &prev), 0);
	assert_int_equal(v.ts, VERSION_TS_LIMIT - 1);

	/* and the normal cases return 0 */
	assert_int_equal(version_new_local(&v, NULL), 0);
	prev.ts = 1000;
	assert_int_equal(version_new_local(&v, &prev), 0);
	assert_true(v.ts > prev.ts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_now_is_sane),
		cmocka_unit_test(test_new_local_no_prev),
		cmocka_unit_test(test_new_local_beats_past_prev),
		cmocka_unit_test(test_new_local_beats_future_prev),
		cmocka_unit_test(test_uuid_v4_lower),
		cmocka_unit_test(test_uuid_unique_across_threads),
		cmocka_unit_test(test_uuid_round_trip),
		cmocka_unit_test(test_uuid_parse_rejects),
		cmocka_unit_test(test_cmp_equal_conflicts),
		cmocka_unit_test(test_ts_acceptable),
		cmocka_unit_test(test_is_nil),
		cmocka_unit_test(test_new_local_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
