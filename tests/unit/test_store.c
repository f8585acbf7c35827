/*
 * test_store.c - the RocksDB store, on a real database in a fresh mkdtemp
 * directory per test (removed afterwards).
 *
 * store_apply() for each origin (local versions above the current one,
 * remote stale/conflict/newer, resolve replacing only the expected loser,
 * remote and resolved records stamped out of range refused untouched),
 * reads of values and tombstones, the anti-entropy digests
 * (order-independent, rebuilt at open), counters, meta values, the
 * listener, long keys that take the heap path, and writers racing on one
 * path.  The walks (listings, time and bucket scans, purges) are tested in
 * test_store_walk.c, RocksDB failures in test_store_fault.c.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <unistd.h>

#include "store_fixture.h"

/* --------------------------------------------------------- open/close */

static void test_open_fails_cleanly(void **state)
{
	(void)state;
	char dir[] = "/tmp/kvs-test-store-XXXXXX";
	char file[128], err[512] = "";

	assert_non_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/not-a-dir", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
	assert_null(store_open(file, false, TEST_CACHE_BYTES, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	rm_tree(dir);
	store_close(NULL);
}

static void test_empty_store(void **state)
{
	struct store_stats st;
	uint64_t *d = malloc(STORE_BUCKETS * sizeof(*d));
	struct seen *c = seen_new();
	bool more = true;

	assert_non_null(d);
	store_stats(S, &st);
	assert_int_equal(st.keys, 0);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(st.value_bytes, 0);
	assert_int_equal(store_latest_ts(S), 0);
	store_digests(S, d);
	for (int i = 0; i < STORE_BUCKETS; i++)
		assert_int_equal(d[i], 0);
	expect_absent(S, "a");
	assert_int_equal(list(S, "", NULL, 100, c, &more), 0);
	assert_int_equal(c->n, 0);
	assert_false(more);
	c->n = 0;
	assert_int_equal(store_scan_time(S, 0, NULL, 0, false, 100, collect, c), 0);
	assert_int_equal(store_scan_time(S, 0, NULL, 0, true, 100, collect, c), 0);
	assert_int_equal(c->n, 0);
	assert_int_equal(store_purge_tombstones(S, INT64_MAX), 0);
	free(c);
	free(d);
}

/* -------------------------------------------------------------- local */

static void test_local_put_overwrite(void **state)
{
	struct kvs_version v1, v2, v3;

	must(put(S, "a", "1", &v1));
	expect_get(S, "a", "1", &v1);
	must(put(S, "a", "{\"x\":2}", &v2));
	must(put(S, "a", "[3]", &v3));
	assert_true(v2.ts > v1.ts);
	assert_true(v3.ts > v2.ts);
	assert_memory_not_equal(v1.id, v2.id, 16);
	assert_memory_not_equal(v2.id, v3.id, 16);
	expect_get(S, "a", "[3]", &v3);
	assert_int_equal(store_latest_ts(S), v3.ts);

	/* a remote version from a clock far ahead: the local overwrite beats it */
	int64_t future = version_now_ms() + 3600 * 1000;
	must(remote(S, "a", at(future, 0x11, "\"future\""), NULL));
	must(put(S, "a", "\"mine\"", &v1));
	assert_int_equal(v1.ts, future + 1);
	expect_get(S, "a", "\"mine\"", &v1);

	/* many quick overwrites keep strictly increasing */
	int64_t last = v1.ts;
	for (int i = 0; i < 50; i++) {
		must(put(S, "a", "0", &v1));
		assert_true(v1.ts > last);
		last = v1.ts;
	}
	struct store_stats st;
	store_stats(S, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.value_bytes, 1);
}

static void test_local_delete(void **state)
{
	struct kvs_version vp, vd, vp2;

	assert_int_equal(del(S, "a", NULL), KVS_ENOTFOUND);
	expect_absent(S, "a");

	must(put(S, "a", "1", &vp));
	must(del(S, "a", &vd));
	assert_true(vd.ts > vp.ts);
	expect_get(S, "a", NULL, &vd);

	/* deleting a tombstone: not found, nothing changes */
	assert_int_equal(del(S, "a", NULL), KVS_ENOTFOUND);
	expect_get(S, "a", NULL, &vd);

	/* a put over a tombstone beats it */
	must(put(S, "a", "2", &vp2));
	assert_true(vp2.ts > vd.ts);
	expect_get(S, "a", "2", &vp2);

	/* a remote tombstone from the future: a local write still wins */
	int64_t future = version_now_ms() + 3600 * 1000;
	must(remote(S, "b", at(future, 0x22, NULL), NULL));
	assert_int_equal(del(S, "b", NULL), KVS_ENOTFOUND);
	must(put(S, "b", "3", &vp));
	assert_int_equal(vp.ts, future + 1);
}

/* ------------------------------------------------------------- remote */

static void test_remote(void **state)
{
	struct kvs_version cur;

	/* absent: written */
	must(remote(S, "k", at(1000, 0xaa, "1"), NULL));
	expect_get(S, "k", "1", VP(1000, 0xaa));

	/* older: stale, current filled, nothing changed */
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(remote(S, "k", at(999, 0xbb, "2"), &cur), KVS_ESTALE);
	assert_int_equal(cur.ts, 1000);
	assert_memory_equal(cur.id, VP(1000, 0xaa)->id, 16);
	expect_get(S, "k", "1", VP(1000, 0xaa));
	assert_int_equal(remote(S, "k", at(999, 0xbb, "2"), NULL), KVS_ESTALE); /* NULL ok */

	/* the very same version: stale */
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(remote(S, "k", at(1000, 0xaa, "1"), &cur), KVS_ESTALE);
	assert_int_equal(cur.ts, 1000);

	/* same timestamp, other uuid: conflict, current filled */
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(remote(S, "k", at(1000, 0xbb, "\"other\""), &cur), KVS_ECONFLICT);
	assert_int_equal(cur.ts, 1000);
	assert_memory_equal(cur.id, VP(1000, 0xaa)->id, 16);
	expect_get(S, "k", "1", VP(1000, 0xaa));
	/* also for a tombstone at the same timestamp */
	assert_int_equal(remote(S, "k", at(1000, 0xcc, NULL), &cur), KVS_ECONFLICT);

	/* newer: written */
	must(remote(S, "k", at(1001, 0xbb, "\"new\""), NULL));
	expect_get(S, "k", "\"new\"", VP(1001, 0xbb));

	/* a newer tombstone, then an older value is stale against it */
	must(remote(S, "k", at(2000, 0xcc, NULL), NULL));
	expect_get(S, "k", NULL, VP(2000, 0xcc));
	assert_int_equal(remote(S, "k", at(1500, 0xdd, "5"), &cur), KVS_ESTALE);
	assert_int_equal(cur.ts, 2000);

	/* a remote tombstone for an absent path is stored (deletes replicate) */
	must(remote(S, "gone", at(10, 0x01, NULL), NULL));
	expect_get(S, "gone", NULL, VP(10, 0x01));

	struct store_stats st;
	store_stats(S, &st);
	assert_int_equal(st.keys, 0);
	assert_int_equal(st.tombstones, 2);
	assert_int_equal(st.value_bytes, 0);
	assert_int_equal(store_latest_ts(S), 2000);
}

static void test_resolve(void **state)
{
	struct kvs_version cur;
	struct kvs_record a = at(1000, 0xaa, "\"A\""), b = at(1000, 0xbb, "\"B\""),
			  c = at(1000, 0xcc, "\"C\"");

	must(remote(S, "k", a, NULL));
	assert_int_equal(remote(S, "k", b, NULL), KVS_ECONFLICT);

	/* the winner replaces the expected loser */
	must(store_apply(S, "k", 1, &b, STORE_RESOLVE, &a.v, NULL));
	expect_get(S, "k", "\"B\"", &b.v);

	/* a second resolution still expecting A finds B: stale */
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(store_apply(S, "k", 1, &c, STORE_RESOLVE, &a.v, &cur), KVS_ESTALE);
	assert_int_equal(cur.ts, b.v.ts);
	assert_memory_equal(cur.id, b.v.id, 16);
	expect_get(S, "k", "\"B\"", &b.v);

	/* the winner already in place: stale (nothing to do) */
	assert_int_equal(store_apply(S, "k", 1, &b, STORE_RESOLVE, &b.v, NULL), KVS_ESTALE);
	/* no expectation and not newer: stale */
	assert_int_equal(store_apply(S, "k", 1, &c, STORE_RESOLVE, NULL, NULL), KVS_ESTALE);
	expect_get(S, "k", "\"B\"", &b.v);

	/* newer than the current version: written whatever was expected */
	struct kvs_record d = at(2000, 0xdd, "\"D\"");
	must(store_apply(S, "k", 1, &d, STORE_RESOLVE, &a.v, NULL));
	expect_get(S, "k", "\"D\"", &d.v);

	/* an older winner against a newer current: stale */
	assert_int_equal(store_apply(S, "k", 1, &c, STORE_RESOLVE, &a.v, &cur), KVS_ESTALE);
	assert_int_equal(cur.ts, 2000);

	/* absent: written */
	must(store_apply(S, "new", 3, &c, STORE_RESOLVE, &a.v, NULL));
	expect_get(S, "new", "\"C\"", &c.v);

	/* a tombstone can win */
	struct kvs_record t = at(2000, 0xee, NULL);
	must(store_apply(S, "k", 1, &t, STORE_RESOLVE, &d.v, NULL));
	expect_get(S, "k", NULL, &t.v);

	struct store_stats st;
	store_stats(S, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.tombstones, 1);
	assert_int_equal(st.value_bytes, 3);
}

/* ------------------------------------------------- timestamp bounds */

/* Counts listener calls: a refused record must not reach the replicate queue. */
static void count_calls(void *ctx, const char *path, size_t len, const struct kvs_record *rec,
			enum store_origin origin)
{
	(void)path;
	(void)len;
	(void)rec;
	(void)origin;
	(*(int *)ctx)++;
}

/* What a write changes: digests, counters, the newest timestamp (the
 * cache's counters move with reads, so they are left out). */
struct snapshot {
	uint64_t digests[STORE_BUCKETS];
	int64_t keys, tombstones, value_bytes, latest;
};

static void take(struct store *s, struct snapshot *out)
{
	struct store_stats st;

	memset(out, 0, sizeof(*out));
	store_digests(s, out->digests);
	store_stats(s, &st);
	out->keys = st.keys;
	out->tombstones = st.tombstones;
	out->value_bytes = st.value_bytes;
	out->latest = store_latest_ts(s);
}

/* Expects rec refused (KVS_EINVAL) with nothing in the store changed. */
static void expect_ts_refused(struct store *s, const char *key, struct kvs_record rec,
			      enum store_origin origin, const struct kvs_version *expect)
{
	struct snapshot *before = malloc(sizeof(*before)), *after = malloc(sizeof(*after));
	int rc;

	assert_non_null(before);
	assert_non_null(after);
	take(s, before);
	rc = store_apply(s, key, strlen(key), &rec, origin, expect, NULL);
	if (rc != KVS_EINVAL) {
		print_error("%s ts %lld origin %d: rc %d (%s), want KVS_EINVAL\n", key,
			    (long long)rec.v.ts, (int)origin, rc, kvs_strerror(rc));
		fail();
	}
	take(s, after);
	assert_memory_equal(before, after, sizeof(*before));
	free(before);
	free(after);
}

static void test_remote_ts_bounds(void **state)
{
	int calls = 0;
	const int64_t hour = 3600 * 1000LL;
	int64_t now = version_now_ms();

	store_set_listener(S, count_calls, &calls);

	/* over a day ahead of this clock, far ahead, at and past the limit: refused */
	expect_ts_refused(S, "k", at(now + 25 * hour, 0x11, "1"), STORE_REMOTE, NULL);
	expect_ts_refused(S, "k", at(999999999999999LL, 0x11, "1"), STORE_REMOTE, NULL);
	expect_ts_refused(S, "k", at(VERSION_TS_LIMIT, 0x11, "1"), STORE_REMOTE, NULL);
	expect_ts_refused(S, "k", at(INT64_MAX, 0x11, "1"), STORE_REMOTE, NULL);
	expect_ts_refused(S, "k", at(0, 0x11, "1"), STORE_REMOTE, NULL);
	expect_ts_refused(S, "k", at(-5, 0x11, "1"), STORE_REMOTE, NULL);
	expect_ts_refused(S, "k", at(now + 25 * hour, 0x11, NULL), STORE_REMOTE, NULL); /* tombstone */
	expect_absent(S, "k");
	assert_int_equal(calls, 0);

	/* a stored record is not replaced by a newer one out of range either */
	must(remote(S, "k", at(1000, 0xaa, "\"old\""), NULL));
	assert_int_equal(calls, 1);
	expect_ts_refused(S, "k", at(999999999999999LL, 0xbb, "\"bad\""), STORE_REMOTE, NULL);
	expect_ts_refused(S, "k", at(now + 25 * hour, 0xbb, NULL), STORE_REMOTE, NULL);
	expect_get(S, "k", "\"old\"", VP(1000, 0xaa));
	assert_int_equal(calls, 1);

	/* within the day ahead: taken, and a local write then climbs above it */
	struct kvs_version v;
	int64_t ahead = version_now_ms() + 23 * hour;
	must(remote(S, "k", at(ahead, 0xcc, "\"ahead\""), NULL));
	expect_get(S, "k", "\"ahead\"", VP(ahead, 0xcc));
	must(put(S, "k", "\"mine\"", &v));
	assert_int_equal(v.ts, ahead + 1);
	expect_get(S, "k", "\"mine\"", &v);
	assert_int_equal(calls, 3);
	store_set_listener(S, NULL, NULL);
}

static void test_resolve_ts_bounds(void **state)
{
	int calls = 0;
	int64_t now = version_now_ms();
	struct kvs_record a = at(1000, 0xaa, "\"A\""), b = at(1000, 0xbb, "\"B\"");

	must(remote(S, "k", a, NULL));
	assert_int_equal(remote(S, "k", b, NULL), KVS_ECONFLICT);
	store_set_listener(S, count_calls, &calls);

	/* a "winner" out of range replaces nothing, even the expected loser */
	expect_ts_refused(S, "k", at(999999999999999LL, 0xbb, "\"B\""), STORE_RESOLVE, &a.v);
	expect_ts_refused(S, "k", at(now + 25 * 3600 * 1000LL, 0xbb, "\"B\""), STORE_RESOLVE,
			  &a.v);
	expect_ts_refused(S, "k", at(VERSION_TS_LIMIT, 0xbb, NULL), STORE_RESOLVE, NULL);
	expect_ts_refused(S, "absent", at(999999999999999LL, 0xbb, "1"), STORE_RESOLVE, NULL);
	expect_get(S, "k", "\"A\"", &a.v);
	expect_absent(S, "absent");
	assert_int_equal(calls, 0);

	/* the real winner still goes through */
	must(store_apply(S, "k", 1, &b, STORE_RESOLVE, &a.v, NULL));
	expect_get(S, "k", "\"B\"", &b.v);
	assert_int_equal(calls, 1);
	store_set_listener(S, NULL, NULL);
}

/*
 * STORE_LOCAL at the limit (KVS_ETOOBIG) is not tested here: a record at
 * VERSION_TS_LIMIT - 1 can only be stored by writing RocksDB directly
 * (every door checks the range) or by a clock in the year 33658.
 * version_new_local's refusal is in test_version.c (test_new_local_limit);
 * decide() passes its return code on.
 */

/* ------------------------------------------------------------ digests */

struct op {
	char key[16];
	struct kvs_record r;
};

/* A history with overwrites, deletes and conflicting-free duplicates. */
static size_t make_history(struct op *ops, size_t cap)
{
	size_t n = 0;

	for (int i = 0; i < 300 && n < cap; i++) {
		snprintf(ops[n].key, sizeof(ops[n].key), "d/%d", i);
		ops[n].r = at(1000 + i, (uint8_t)(i % 251 + 1), i % 3 ? "\"v\"" : "12345");
		n++;
		if (i % 4 == 0) { /* a newer version of the same key */
			snprintf(ops[n].key, sizeof(ops[n].key), "d/%d", i);
			ops[n].r = at(5000 + i, (uint8_t)(i % 13 + 1), "[1]");
			n++;
		}
		if (i % 5 == 0) { /* and a delete after that */
			snprintf(ops[n].key, sizeof(ops[n].key), "d/%d", i);
			ops[n].r = at(9000 + i, 0x77, NULL);
			n++;
		}
	}
	return n;
}

static void apply_all(struct store *s, const struct op *ops, const size_t *order, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct op *o = &ops[order[i]];
		int rc = remote(s, o->key, o->r, NULL);

		assert_true(rc == 0 || rc == KVS_ESTALE);
	}
}

static void test_digests_order_independent(void **state)
{
	struct op *ops = calloc(600, sizeof(*ops));
	size_t *order = calloc(600, sizeof(*order));
	uint64_t *da = malloc(STORE_BUCKETS * sizeof(*da));
	uint64_t *db = malloc(STORE_BUCKETS * sizeof(*db));
	struct fx *other = fx_new();
	struct store_stats sa, sb;

	assert_non_null(ops);
	assert_non_null(order);
	assert_non_null(da);
	assert_non_null(db);
	size_t n = make_history(ops, 600);

	/* A in order, B in reverse (so B sees many stale versions) */
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	apply_all(S, ops, order, n);
	for (size_t i = 0; i < n; i++)
		order[i] = n - 1 - i;
	apply_all(other->s, ops, order, n);

	store_digests(S, da);
	store_digests(other->s, db);
	assert_memory_equal(da, db, STORE_BUCKETS * sizeof(*da));
	store_stats(S, &sa);
	store_stats(other->s, &sb);
	assert_memory_equal(&sa, &sb, sizeof(sa));
	assert_int_equal(sa.keys + sa.tombstones, 300);
	assert_int_equal(sa.tombstones, 60);
	assert_int_equal(store_latest_ts(S), store_latest_ts(other->s));

	/* and in a shuffled order */
	struct fx *third = fx_new();
	srandom(12345);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = (size_t)random() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	apply_all(third->s, ops, order, n);
	store_digests(third->s, db);
	assert_memory_equal(da, db, STORE_BUCKETS * sizeof(*da));
	fx_free(third);

	/* one extra write: exactly its bucket differs */
	unsigned bucket = store_bucket_of("extra", 5);
	must(remote(S, "extra", at(7, 7, "7"), NULL));
	store_digests(S, da);
	store_digests(other->s, db);
	for (unsigned i = 0; i < STORE_BUCKETS; i++) {
		if (i == bucket)
			assert_int_not_equal(da[i], db[i]);
		else
			assert_int_equal(da[i], db[i]);
	}
	/* the same write on B: equal again */
	must(remote(other->s, "extra", at(7, 7, "7"), NULL));
	store_digests(other->s, db);
	assert_memory_equal(da, db, STORE_BUCKETS * sizeof(*da));

	/* the same version with another tombstone flag or uuid differs */
	must(remote(S, "x", at(8, 8, "8"), NULL));
	must(remote(other->s, "x", at(8, 9, "8"), NULL));
	store_digests(S, da);
	store_digests(other->s, db);
	assert_int_not_equal(da[store_bucket_of("x", 1)], db[store_bucket_of("x", 1)]);

	fx_free(other);
	free(ops);
	free(order);
	free(da);
	free(db);
}

static void test_reopen_rebuilds(void **state)
{
	struct fx *f = *state;
	uint64_t *d1 = malloc(STORE_BUCKETS * sizeof(*d1));
	uint64_t *d2 = malloc(STORE_BUCKETS * sizeof(*d2));
	struct store_stats s1, s2;
	struct kvs_version v;

	assert_non_null(d1);
	assert_non_null(d2);
	for (int i = 0; i < 200; i++) {
		char key[16];
		snprintf(key, sizeof(key), "r/%d", i);
		must(put(f->s, key, i % 2 ? "\"odd\"" : "0", NULL));
		if (i % 7 == 0)
			must(del(f->s, key, NULL));
	}
	must(put(f->s, "last", "\"z\"", &v));
	must(store_meta_put(f->s, "joined_timestamp", "123", 3));
	store_digests(f->s, d1);
	store_stats(f->s, &s1);
	int64_t latest = store_latest_ts(f->s);

	store_close(f->s);
	f->s = open_at(f->dir);
	store_digests(f->s, d2);
	store_stats(f->s, &s2);
	assert_memory_equal(d1, d2, STORE_BUCKETS * sizeof(*d1));
	assert_int_equal(s1.keys, s2.keys);
	assert_int_equal(s1.tombstones, s2.tombstones);
	assert_int_equal(s1.value_bytes, s2.value_bytes);
	assert_int_equal(s2.tombstones, 29);
	assert_int_equal(s2.keys, 200 - 29 + 1);
	assert_int_equal(store_latest_ts(f->s), latest);
	expect_get(f->s, "last", "\"z\"", &v);
	expect_get(f->s, "r/0", NULL, NULL);

	char buf[16];
	size_t len = 0;
	must(store_meta_get(f->s, "joined_timestamp", buf, sizeof(buf), &len));
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "123", 3);

	/* writes after reopen keep the digests in step with a fresh rebuild */
	must(put(f->s, "r/1", "1", NULL));
	must(del(f->s, "r/2", NULL));
	store_digests(f->s, d1);
	store_close(f->s);
	f->s = open_at(f->dir);
	store_digests(f->s, d2);
	assert_memory_equal(d1, d2, STORE_BUCKETS * sizeof(*d1));
	free(d1);
	free(d2);
}

/* -------------------------------------------------------- stats, meta */

static void test_stats(void **state)
{
	struct store_stats st;

	must(put(S, "a", "123", NULL));
	must(put(S, "b", "12345", NULL));
	store_stats(S, &st);
	assert_int_equal(st.keys, 2);
	assert_int_equal(st.tombstones, 0);
	assert_int_equal(st.value_bytes, 8);

	must(put(S, "a", "1234567890", NULL));
	must(del(S, "b", NULL));
	store_stats(S, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.tombstones, 1);
	assert_int_equal(st.value_bytes, 10);

	must(remote(S, "c", at(5, 5, NULL), NULL));
	must(put(S, "b", "[]", NULL));
	store_stats(S, &st);
	assert_int_equal(st.keys, 2);
	assert_int_equal(st.tombstones, 1);
	assert_int_equal(st.value_bytes, 12);

	/* refused writes change nothing */
	assert_int_equal(remote(S, "c", at(4, 4, "\"x\""), NULL), KVS_ESTALE);
	assert_int_equal(remote(S, "c", at(5, 6, "\"x\""), NULL), KVS_ECONFLICT);
	assert_int_equal(del(S, "zz", NULL), KVS_ENOTFOUND);
	store_stats(S, &st);
	assert_int_equal(st.keys, 2);
	assert_int_equal(st.tombstones, 1);
	assert_int_equal(st.value_bytes, 12);
}

static void test_meta(void **state)
{
	char buf[32];
	size_t len = 99;

	memset(buf, 0, sizeof(buf));
	assert_int_equal(store_meta_get(S, "joined_timestamp", buf, sizeof(buf), &len),
			 KVS_ENOTFOUND);
	must(store_meta_put(S, "joined_timestamp", "1700000000000", 13));
	must(store_meta_get(S, "joined_timestamp", buf, sizeof(buf), &len));
	assert_int_equal(len, 13);
	assert_memory_equal(buf, "1700000000000", 13);

	/* overwrite, binary with NULs */
	must(store_meta_put(S, "joined_timestamp", "a\0b", 3));
	must(store_meta_get(S, "joined_timestamp", buf, sizeof(buf), &len));
	assert_int_equal(len, 3);
	assert_memory_equal(buf, "a\0b", 3);

	/* cap: at most cap bytes copied */
	must(store_meta_put(S, "long", "0123456789", 10));
	memset(buf, '#', sizeof(buf));
	must(store_meta_get(S, "long", buf, 4, &len));
	assert_int_equal(len, 4);
	assert_memory_equal(buf, "0123#", 5);

	/* empty value; names are separate from data keys */
	must(store_meta_put(S, "empty", "", 0));
	must(store_meta_get(S, "empty", buf, sizeof(buf), &len));
	assert_int_equal(len, 0);
	expect_absent(S, "long");
	struct store_stats st;
	store_stats(S, &st);
	assert_int_equal(st.keys, 0);
}

/* ----------------------------------------------------------- listener */

struct calls {
	int n;
	char path[16][32];
	enum store_origin origin[16];
	struct kvs_version v[16];
	bool tomb[16];
	void *ctx;
};

static void listener(void *ctx, const char *path, size_t len, const struct kvs_record *rec,
		     enum store_origin origin)
{
	struct calls *c = ctx;

	assert_true(c->n < 16);
	assert_true(len < 32);
	memcpy(c->path[c->n], path, len);
	c->path[c->n][len] = '\0';
	c->origin[c->n] = origin;
	c->v[c->n] = rec->v;
	c->tomb[c->n] = rec->tombstone;
	c->n++;
}

static void test_listener(void **state)
{
	struct calls *c = calloc(1, sizeof(*c));
	struct kvs_version v;

	assert_non_null(c);
	store_set_listener(S, listener, c);

	must(put(S, "a", "1", &v));
	assert_int_equal(c->n, 1);
	assert_string_equal(c->path[0], "a");
	assert_int_equal(c->origin[0], STORE_LOCAL);
	assert_true(version_equal(&c->v[0], &v)); /* the new version, not the caller's */

	must(del(S, "a", &v));
	assert_int_equal(c->n, 2);
	assert_true(c->tomb[1]);
	assert_true(version_equal(&c->v[1], &v));

	/* refusals are not announced */
	assert_int_equal(del(S, "a", NULL), KVS_ENOTFOUND);
	assert_int_equal(del(S, "nope", NULL), KVS_ENOTFOUND);
	assert_int_equal(remote(S, "a", at(1, 1, "1"), NULL), KVS_ESTALE);
	assert_int_equal(remote(S, "a", at(v.ts, 0x99, "1"), NULL), KVS_ECONFLICT);
	assert_int_equal(c->n, 2);

	struct kvs_record r = at(v.ts + 10, 2, "\"r\"");
	must(remote(S, "b/c", r, NULL));
	assert_int_equal(c->n, 3);
	assert_string_equal(c->path[2], "b/c");
	assert_int_equal(c->origin[2], STORE_REMOTE);
	assert_true(version_equal(&c->v[2], &r.v));

	struct kvs_record w = at(v.ts + 10, 3, "\"w\"");
	must(store_apply(S, "b/c", 3, &w, STORE_RESOLVE, &r.v, NULL));
	assert_int_equal(c->n, 4);
	assert_int_equal(c->origin[3], STORE_RESOLVE);
	assert_true(version_equal(&c->v[3], &w.v));
	assert_int_equal(store_apply(S, "b/c", 3, &w, STORE_RESOLVE, &r.v, NULL), KVS_ESTALE);
	assert_int_equal(c->n, 4);

	/* purges are not writes of data: not announced */
	must(remote(S, "old", at(5, 5, NULL), NULL));
	assert_int_equal(c->n, 5);
	assert_int_equal(store_purge_tombstones(S, 6), 1);
	assert_int_equal(c->n, 5);

	/* cleared: no more calls */
	store_set_listener(S, NULL, NULL);
	must(put(S, "a", "2", NULL));
	assert_int_equal(c->n, 5);
	free(c);
}

/* ---------------------------------------------------------- long keys */

static void test_long_keys(void **state)
{
	struct seen *c = seen_new();
	char key[1025];
	struct kvs_version v1, v, vs, vz;

	/* over the 512-byte stack buffers in store.c */
	memset(key, 'k', 1024);
	key[1024] = '\0';
	must(put(S, key, "1", &v1));
	expect_get(S, key, "1", &v1);
	must(put(S, key, "22", &v));
	expect_get(S, key, "22", &v);
	assert_true(v.ts > v1.ts);
	/* explicit, later versions for the others, for a known time order */
	vs = ver(v.ts + 100, 1);
	vz = ver(v.ts + 200, 2);
	must(remote(S, "short", at(vs.ts, 1, "1"), NULL));
	must(remote(S, "zz", at(vz.ts, 2, "1"), NULL));

	/* the time index holds it once, at its new time */
	c->n = 0;
	must(store_scan_time(S, 0, NULL, 0, false, 100, collect, c));
	assert_int_equal(c->n, 3);
	assert_int_equal(c->klen[0], 1024);
	assert_int_equal(c->ts[0], v.ts);
	assert_string_equal(c->keys[1], "short");

	/* a long key as a cursor, both ways */
	c->n = 0;
	must(store_scan_time(S, v.ts, key, 1024, false, 100, collect, c));
	expect_keys(c, (const char *const[]){ "short", "zz", NULL });
	c->n = 0;
	must(store_scan_time(S, vs.ts, "short", 5, true, 100, collect, c));
	assert_int_equal(c->n, 1);
	assert_int_equal(c->klen[0], 1024);

	/* listed with a long prefix and a long after */
	bool more;
	assert_int_equal(store_list(S, key, 1000, NULL, 0, 10, collect, (c->n = 0, c), &more), 0);
	assert_int_equal(c->n, 1);
	assert_int_equal(store_list(S, key, 1000, key, 1024, 10, collect, (c->n = 0, c), &more), 0);
	assert_int_equal(c->n, 0);

	/* its bucket scan finds it */
	c->n = 0;
	must(store_scan_bucket(S, store_bucket_of(key, 1024), collect, c));
	size_t found = 0;
	for (size_t i = 0; i < c->n; i++)
		found += c->klen[i] == 1024;
	assert_int_equal(found, 1);

	/* delete and purge through the heap path too */
	must(del(S, key, NULL));
	assert_int_equal(store_purge_tombstones(S, INT64_MAX), 1);
	expect_absent(S, key);
	struct store_stats st;
	store_stats(S, &st);
	assert_int_equal(st.keys, 2);
	assert_int_equal(st.tombstones, 0);
	free(c);
}

/* ----------------------------------------------------------- threads */

struct race {
	struct store *s;
	int id;
};

struct order {
	pthread_mutex_t lock;
	int64_t last;
	bool in_order;
	int calls;
};

static void order_listener(void *ctx, const char *path, size_t len, const struct kvs_record *rec,
			   enum store_origin origin)
{
	struct order *o = ctx;

	(void)path;
	(void)len;
	(void)origin;
	pthread_mutex_lock(&o->lock);
	if (rec->v.ts <= o->last)
		o->in_order = false;
	o->last = rec->v.ts;
	o->calls++;
	pthread_mutex_unlock(&o->lock);
}

static void *racer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < 200; i++) {
		struct kvs_record rec = value_rec(r->id % 2 ? "\"odd\"" : "\"even!\"");
		if (store_apply(r->s, "hot", 3, &rec, STORE_LOCAL, NULL, NULL) != 0)
			return (void *)1;
	}
	return NULL;
}

static void test_racing_writers(void **state)
{
	struct order o = { .in_order = true };
	pthread_t t[4];
	struct race r[4];
	uint64_t *d1 = malloc(STORE_BUCKETS * sizeof(*d1));
	uint64_t *d2 = malloc(STORE_BUCKETS * sizeof(*d2));

	assert_non_null(d1);
	assert_non_null(d2);
	pthread_mutex_init(&o.lock, NULL);
	store_set_listener(S, order_listener, &o);
	for (int i = 0; i < 4; i++) {
		r[i].s = S;
		r[i].id = i;
		assert_int_equal(pthread_create(&t[i], NULL, racer, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	store_set_listener(S, NULL, NULL);
	assert_int_equal(o.calls, 800);
	assert_true(o.in_order); /* one path: the listener sees increasing versions */

	struct store_stats st;
	store_stats(S, &st);
	assert_int_equal(st.keys, 1);
	struct store_value sv;
	must(store_get(S, "hot", 3, &sv));
	assert_int_equal(st.value_bytes, (int64_t)sv.rec.value_len);
	assert_int_equal(sv.rec.v.ts, o.last);
	store_value_release(&sv);

	/* counters and digests agree with a rebuild */
	struct fx *f = *state;
	store_digests(f->s, d1);
	store_close(f->s);
	f->s = open_at(f->dir);
	store_digests(f->s, d2);
	assert_memory_equal(d1, d2, STORE_BUCKETS * sizeof(*d1));
	pthread_mutex_destroy(&o.lock);
	free(d1);
	free(d2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_fails_cleanly),
		T(test_empty_store),
		T(test_local_put_overwrite),
		T(test_local_delete),
		T(test_remote),
		T(test_resolve),
		T(test_remote_ts_bounds),
		T(test_resolve_ts_bounds),
		T(test_digests_order_independent),
		T(test_reopen_rebuilds),
		T(test_stats),
		T(test_meta),
		T(test_listener),
		T(test_long_keys),
		T(test_racing_writers),
	};
#undef T

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
