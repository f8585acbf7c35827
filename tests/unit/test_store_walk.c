/*
 * test_store_walk.c - the store's walks (store_walk.c), on a real database
 * in a fresh mkdtemp directory per test (removed afterwards).
 *
 * Listings (bytewise order, prefix bounds, tombstones skipped, exact "more"
 * across pages, the `after` cursor on both sides of the prefix), the time
 * index both ways with cursors, bucket scans, and tombstone purges.  Their
 * failures are in test_store_fault.c; the write door in test_store.c.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_fixture.h"

/* ------------------------------------------------------------ listing */

static int cmp_bytes(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	size_t xl = strlen(x), yl = strlen(y);
	int c = memcmp(x, y, xl < yl ? xl : yl);

	return c ? c : (xl > yl) - (xl < yl);
}

static void test_list_sorted_bytewise(void **state)
{
	const char *keys[] = {
		"b", "a0", "a/b", "a", "B", "Z", "caf\xc3\xa9", "cafe", "a/b/c", "a-", "\xe2\x82\xac",
		"_", "~", "a.b", "0", "9", "aa",
	};
	enum { N = sizeof(keys) / sizeof(keys[0]) };
	const char *sorted[N + 1];
	struct seen *c = seen_new();
	bool more = true;

	for (size_t i = 0; i < N; i++)
		must(put(S, keys[i], "1", NULL));
	memcpy(sorted, keys, sizeof(keys));
	qsort(sorted, N, sizeof(sorted[0]), cmp_bytes);
	sorted[N] = NULL;

	assert_int_equal(list(S, "", NULL, 1000, c, &more), 0);
	expect_keys(c, sorted);
	assert_false(more);
	/* and the expected order by hand for the tricky ones */
	assert_string_equal(c->keys[0], "0");
	assert_string_equal(c->keys[N - 1], "\xe2\x82\xac");
	free(c);
}

static void test_list_prefix_bounds(void **state)
{
	const char *keys[] = { "user", "user/1", "users", "users/1", "users/2", "users/2/x",
			       "usersx", "users0", "users.", "usert", "v" };
	struct seen *c = seen_new();
	bool more = true;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		must(put(S, keys[i], "true", NULL));

	assert_int_equal(list(S, "users/", NULL, 100, c, &more), 0);
	expect_keys(c, (const char *const[]){ "users/1", "users/2", "users/2/x", NULL });
	assert_false(more);

	assert_int_equal(list(S, "users", NULL, 100, c, &more), 0);
	expect_keys(c, (const char *const[]){ "users", "users.", "users/1", "users/2", "users/2/x",
					      "users0", "usersx", NULL });

	assert_int_equal(list(S, "nothing/", NULL, 100, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_false(more);

	/* the last key of the store as a prefix */
	assert_int_equal(list(S, "v", NULL, 100, c, &more), 0);
	expect_keys(c, (const char *const[]){ "v", NULL });

	/* tombstones are skipped, also in "more" */
	must(del(S, "users/1", NULL));
	must(del(S, "users/2/x", NULL));
	assert_int_equal(list(S, "users/", NULL, 100, c, &more), 0);
	expect_keys(c, (const char *const[]){ "users/2", NULL });
	assert_false(more);
	assert_int_equal(list(S, "users/", NULL, 1, c, &more), 0);
	expect_keys(c, (const char *const[]){ "users/2", NULL });
	assert_false(more); /* only a tombstone follows */

	/* all deleted: nothing, no more */
	must(del(S, "users/2", NULL));
	assert_int_equal(list(S, "users/", NULL, 100, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_false(more);
	free(c);
}

static void test_list_pages(void **state)
{
	struct seen *c = seen_new();
	char key[32];
	bool more;

	for (int i = 0; i < 250; i++) {
		snprintf(key, sizeof(key), "p/%03d", i);
		must(put(S, key, "1", NULL));
	}
	must(put(S, "o", "1", NULL)); /* neighbours outside the prefix */
	must(put(S, "q", "1", NULL));

	/* 250 keys, pages of 100 */
	char after[32] = "";
	size_t total = 0;
	int pages = 0;
	do {
		assert_int_equal(list(S, "p/", after[0] ? after : NULL, 100, c, &more), 0);
		for (size_t i = 0; i < c->n; i++) {
			snprintf(key, sizeof(key), "p/%03zu", total + i);
			assert_string_equal(c->keys[i], key);
		}
		total += c->n;
		pages++;
		if (pages == 1 || pages == 2) {
			assert_int_equal(c->n, 100);
			assert_true(more);
		} else {
			assert_int_equal(c->n, 50);
			assert_false(more);
		}
		if (c->n)
			snprintf(after, sizeof(after), "%s", c->keys[c->n - 1]);
	} while (more);
	assert_int_equal(total, 250);
	assert_int_equal(pages, 3);

	/* exactly two full pages of 125: the second says no more */
	assert_int_equal(list(S, "p/", NULL, 125, c, &more), 0);
	assert_true(more);
	assert_int_equal(list(S, "p/", "p/124", 125, c, &more), 0);
	assert_int_equal(c->n, 125);
	assert_string_equal(c->keys[0], "p/125");
	assert_string_equal(c->keys[124], "p/249");
	assert_false(more);

	/* tombstones right after a full page do not make "more" */
	for (int i = 200; i < 250; i++) {
		snprintf(key, sizeof(key), "p/%03d", i);
		must(del(S, key, NULL));
	}
	assert_int_equal(list(S, "p/", "p/099", 100, c, &more), 0);
	assert_int_equal(c->n, 100);
	assert_string_equal(c->keys[99], "p/199");
	assert_false(more);
	/* ... but a live key after them does */
	must(put(S, "p/zzz", "1", NULL));
	assert_int_equal(list(S, "p/", "p/099", 100, c, &more), 0);
	assert_int_equal(c->n, 100);
	assert_true(more);
	assert_int_equal(list(S, "p/", "p/199", 100, c, &more), 0);
	expect_keys(c, (const char *const[]){ "p/zzz", NULL });
	assert_false(more);

	/* limit 0: nothing given, more tells whether anything is there */
	assert_int_equal(list(S, "p/", NULL, 0, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_true(more);
	assert_int_equal(list(S, "nothing/", NULL, 0, c, &more), 0);
	assert_false(more);
	free(c);
}

static void test_list_after(void **state)
{
	struct seen *c = seen_new();
	bool more;

	must(put(S, "a", "1", NULL));
	must(put(S, "m/1", "1", NULL));
	must(put(S, "m/3", "1", NULL));
	must(put(S, "m/5", "1", NULL));
	must(put(S, "z", "1", NULL));

	/* after below the prefix: from the start of the prefix */
	assert_int_equal(list(S, "m/", "a", 10, c, &more), 0);
	expect_keys(c, (const char *const[]){ "m/1", "m/3", "m/5", NULL });
	assert_int_equal(list(S, "m/", "m", 10, c, &more), 0);
	expect_keys(c, (const char *const[]){ "m/1", "m/3", "m/5", NULL });
	/* after equal to the prefix */
	assert_int_equal(list(S, "m/", "m/", 10, c, &more), 0);
	expect_keys(c, (const char *const[]){ "m/1", "m/3", "m/5", NULL });
	/* after an absent key inside the prefix */
	assert_int_equal(list(S, "m/", "m/2", 10, c, &more), 0);
	expect_keys(c, (const char *const[]){ "m/3", "m/5", NULL });
	/* after a present key: exclusive */
	assert_int_equal(list(S, "m/", "m/3", 10, c, &more), 0);
	expect_keys(c, (const char *const[]){ "m/5", NULL });
	/* after a key that extends a present one */
	assert_int_equal(list(S, "m/", "m/1x", 10, c, &more), 0);
	expect_keys(c, (const char *const[]){ "m/3", "m/5", NULL });
	/* after the last key, and beyond the prefix */
	assert_int_equal(list(S, "m/", "m/5", 10, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_false(more);
	assert_int_equal(list(S, "m/", "m/zzzz", 10, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_false(more);
	assert_int_equal(list(S, "m/", "n", 10, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_false(more);
	assert_int_equal(list(S, "m/", "zzz", 10, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_false(more);
	/* empty after is "from the start" */
	assert_int_equal(store_list(S, "m/", 2, "", 0, 10, collect, (c->n = 0, c), &more), 0);
	assert_int_equal(c->n, 3);

	/* the callback's non-zero stops the walk and comes back */
	c->stop_at = 1;
	assert_int_equal(list(S, "", NULL, 10, c, &more), 7);
	assert_int_equal(c->n, 2);
	free(c);
}

/* --------------------------------------------------------- time index */

static void test_scan_time(void **state)
{
	struct seen *c = seen_new();

	must(remote(S, "k1", at(1000, 1, "1"), NULL));
	must(remote(S, "k3", at(2000, 3, "3"), NULL));
	must(remote(S, "k2", at(2000, 2, "2"), NULL));
	must(remote(S, "k4", at(3000, 4, NULL), NULL)); /* a tombstone */
	must(remote(S, "k5", at(4000, 5, "5"), NULL));
	assert_int_equal(store_latest_ts(S), 4000);

	/* ascending from the start: (ts, key) order, tombstones included */
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "k1", "k2", "k3", "k4", "k5", NULL });
	assert_int_equal(c->ts[1], 2000);
	assert_true(c->tomb[3]);
	assert_false(c->tomb[4]);

	/* descending from the newest */
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, true, 100, collect, c));
	expect_keys(c, (const char *const[]){ "k5", "k4", "k3", "k2", "k1", NULL });

	/* ascending pages of 2 with cursors */
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, false, 2, collect, c));
	expect_keys(c, (const char *const[]){ "k1", "k2", NULL });
	c->n = 0;
	must(store_scan_time(S, 2000, "k2", 2, false, 2, collect, c));
	expect_keys(c, (const char *const[]){ "k3", "k4", NULL });
	c->n = 0;
	must(store_scan_time(S, 3000, "k4", 2, false, 2, collect, c));
	expect_keys(c, (const char *const[]){ "k5", NULL });
	c->n = 0;
	must(store_scan_time(S, 4000, "k5", 2, false, 2, collect, c));
	assert_int_equal(c->n, 0);

	/* descending pages of 2 with cursors */
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, true, 2, collect, c));
	expect_keys(c, (const char *const[]){ "k5", "k4", NULL });
	c->n = 0;
	must(store_scan_time(S, 3000, "k4", 2, true, 2, collect, c));
	expect_keys(c, (const char *const[]){ "k3", "k2", NULL });
	c->n = 0;
	must(store_scan_time(S, 2000, "k2", 2, true, 2, collect, c));
	expect_keys(c, (const char *const[]){ "k1", NULL });
	c->n = 0;
	must(store_scan_time(S, 1000, "k1", 2, true, 2, collect, c));
	assert_int_equal(c->n, 0);

	/* cursors that are not entries: a timestamp alone, a key between */
	c->n = 0;
	must(store_scan_time(S, 2000, NULL, 0, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "k2", "k3", "k4", "k5", NULL });
	c->n = 0;
	must(store_scan_time(S, 2000, "k2x", 3, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "k3", "k4", "k5", NULL });
	c->n = 0;
	must(store_scan_time(S, 3000, NULL, 0, true, 100, collect, c));
	expect_keys(c, (const char *const[]){ "k3", "k2", "k1", NULL });
	c->n = 0;
	must(store_scan_time(S, 2500, NULL, 0, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "k4", "k5", NULL });
	c->n = 0;
	must(store_scan_time(S, 99999, NULL, 0, true, 100, collect, c));
	assert_int_equal(c->n, 5);

	/* an overwrite moves the path: one entry, at its new time */
	must(remote(S, "k1", at(5000, 6, "6"), NULL));
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "k2", "k3", "k4", "k5", "k1", NULL });
	assert_int_equal(c->ts[4], 5000);
	assert_int_equal(store_latest_ts(S), 5000);

	/* the callback's non-zero stops the walk and comes back */
	c->n = 0;
	c->stop_at = 0;
	assert_int_equal(store_scan_time(S, 0, NULL, 0, true, 100, collect, c), 7);
	assert_int_equal(c->n, 1);
	free(c);
}

static void test_scan_bucket(void **state)
{
	enum { N = 3000 };
	static unsigned bucket_of[N];
	unsigned count[STORE_BUCKETS] = { 0 };
	struct seen *c = seen_new();
	char key[32];

	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "b/%d", i);
		must(remote(S, key, at(100 + i, 1, i % 3 ? "1" : NULL), NULL));
		bucket_of[i] = store_bucket_of(key, strlen(key));
		assert_true(bucket_of[i] < STORE_BUCKETS);
		count[bucket_of[i]]++;
	}
	/* the same path always falls in the same bucket */
	assert_int_equal(store_bucket_of("b/7", 3), bucket_of[7]);

	/* the fullest bucket, an empty one, and a few others */
	unsigned full = 0, empty = STORE_BUCKETS;
	for (unsigned b = 0; b < STORE_BUCKETS; b++) {
		if (count[b] > count[full])
			full = b;
		if (count[b] == 0 && empty == STORE_BUCKETS)
			empty = b;
	}
	assert_true(count[full] >= 3);
	assert_true(empty < STORE_BUCKETS);

	unsigned buckets[] = { full, empty, bucket_of[0], bucket_of[1], bucket_of[N - 1],
			       0, STORE_BUCKETS - 1 };
	for (size_t k = 0; k < sizeof(buckets) / sizeof(buckets[0]); k++) {
		unsigned b = buckets[k];
		const char *want[64];
		char wbuf[64][32];
		size_t n = 0;

		for (int i = 0; i < N; i++) {
			if (bucket_of[i] != b)
				continue;
			assert_true(n < 63);
			snprintf(wbuf[n], sizeof(wbuf[n]), "b/%d", i);
			want[n] = wbuf[n];
			n++;
		}
		qsort(want, n, sizeof(want[0]), cmp_bytes);
		want[n] = NULL;
		c->n = 0;
		must(store_scan_bucket(S, b, collect, c));
		expect_keys(c, want);
		/* tombstones included, with their records */
		for (size_t i = 0; i < c->n; i++) {
			int idx = atoi(c->keys[i] + 2);
			assert_int_equal(c->ts[i], 100 + idx);
			assert_int_equal(c->tomb[i], idx % 3 == 0);
		}
	}

	/* an overwrite leaves one entry in the bucket */
	must(remote(S, "b/0", at(99999, 2, "2"), NULL));
	c->n = 0;
	must(store_scan_bucket(S, bucket_of[0], collect, c));
	size_t hits = 0;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->keys[i], "b/0") == 0) {
			hits++;
			assert_int_equal(c->ts[i], 99999); /* the new version, read from records */
		}
	assert_int_equal(hits, 1);
	free(c);
}

/* -------------------------------------------------------------- purge */

static void test_purge_tombstones(void **state)
{
	struct seen *c = seen_new();
	struct store_stats st;
	uint64_t *da = malloc(STORE_BUCKETS * sizeof(*da));
	uint64_t *db = malloc(STORE_BUCKETS * sizeof(*db));

	assert_non_null(da);
	assert_non_null(db);
	must(remote(S, "t1", at(1000, 1, NULL), NULL));
	must(remote(S, "t2", at(2000, 2, NULL), NULL));
	must(remote(S, "v1", at(1500, 3, "\"keep\""), NULL));
	must(remote(S, "t3", at(3000, 4, NULL), NULL));
	must(remote(S, "v2", at(500, 5, "1"), NULL));
	must(put(S, "v3", "2", NULL));
	must(del(S, "v3", NULL)); /* a fresh tombstone, at now */
	store_stats(S, &st);
	assert_int_equal(st.tombstones, 4);
	assert_int_equal(st.keys, 2);

	/* nothing older than 1000 */
	assert_int_equal(store_purge_tombstones(S, 1000), 0);
	/* before 2500: t1 and t2, not the values, not t3 */
	assert_int_equal(store_purge_tombstones(S, 2500), 2);
	expect_absent(S, "t1");
	expect_absent(S, "t2");
	expect_get(S, "t3", NULL, NULL);
	expect_get(S, "v1", "\"keep\"", NULL);
	expect_get(S, "v2", "1", NULL);
	expect_get(S, "v3", NULL, NULL);
	store_stats(S, &st);
	assert_int_equal(st.tombstones, 2);
	assert_int_equal(st.keys, 2);
	assert_int_equal(st.value_bytes, 7);
	assert_int_equal(store_purge_tombstones(S, 2500), 0);

	/* gone from the time index and the buckets too */
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "v2", "v1", "t3", "v3", NULL });
	c->n = 0;
	must(store_scan_bucket(S, store_bucket_of("t1", 2), collect, c));
	for (size_t i = 0; i < c->n; i++)
		assert_string_not_equal(c->keys[i], "t1");

	/* the digests match a store that never had them */
	struct fx *other = fx_new();
	struct store_value sv;
	const char *keys[] = { "v1", "v2", "t3", "v3" };
	for (size_t i = 0; i < 4; i++) {
		must(store_get(S, keys[i], 2, &sv));
		must(remote(other->s, keys[i], sv.rec, NULL));
		store_value_release(&sv);
	}
	store_digests(S, da);
	store_digests(other->s, db);
	assert_memory_equal(da, db, STORE_BUCKETS * sizeof(*da));
	fx_free(other);

	/* everything older than the far future: t3 and v3, values stay */
	assert_int_equal(store_purge_tombstones(S, INT64_MAX), 2);
	store_stats(S, &st);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(st.keys, 2);
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "v2", "v1", NULL });

	/* a purged path is absent: a local delete is not found, a put works */
	assert_int_equal(del(S, "t1", NULL), KVS_ENOTFOUND);
	must(put(S, "t1", "3", NULL));
	/* ... and it is back in its bucket, once */
	c->n = 0;
	must(store_scan_bucket(S, store_bucket_of("t1", 2), collect, c));
	size_t t1_seen = 0;
	for (size_t i = 0; i < c->n; i++)
		t1_seen += strcmp(c->keys[i], "t1") == 0;
	assert_int_equal(t1_seen, 1);
	free(c);
	free(da);
	free(db);
}


int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_list_sorted_bytewise),
		T(test_list_prefix_bounds),
		T(test_list_pages),
		T(test_list_after),
		T(test_scan_time),
		T(test_scan_bucket),
		T(test_purge_tombstones),
	};
#undef T

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
