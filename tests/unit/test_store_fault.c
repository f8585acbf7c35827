/*
 * test_store_fault.c - the store when RocksDB fails (SQLite's *fault.test),
 * through the seam of store_io.h: a real database whose write, read, put,
 * open or iterator calls fail on demand (fault_store.h).
 *
 * What each failure must give: the call returns KVS_EIO and leaves no
 * trace.  A failed write keeps the old version readable (so the record
 * cache does not hold the new one), leaves digests, counters, the latest
 * timestamp, the time and bucket indexes and the listener untouched, and
 * gives the caller's record back as it was; the next write, once RocksDB
 * works again, goes through as if the failure never happened.  A walk that
 * ends on an iterator error returns KVS_EIO even after handing out some
 * items; a purge whose write fails keeps the tombstone; a failed open
 * returns NULL with the reason.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fault_store.h"
#include "store_fixture.h"

/* Everything a failed call must leave as it was. */
struct snapshot {
	uint64_t digests[STORE_BUCKETS];
	struct store_stats stats;
	int64_t latest;
};

static void snap(struct store *s, struct snapshot *out)
{
	store_digests(s, out->digests);
	store_stats(s, &out->stats);
	out->latest = store_latest_ts(s);
}

static void expect_unchanged(struct store *s, const struct snapshot *before)
{
	struct snapshot *now = calloc(1, sizeof(*now));

	assert_non_null(now);
	snap(s, now);
	assert_memory_equal(now->digests, before->digests, sizeof(now->digests));
	assert_int_equal(now->stats.keys, before->stats.keys);
	assert_int_equal(now->stats.tombstones, before->stats.tombstones);
	assert_int_equal(now->stats.value_bytes, before->stats.value_bytes);
	assert_int_equal(now->latest, before->latest);
	free(now);
}

static int listened;

static void count_listener(void *ctx, const char *path, size_t len,
			   const struct kvs_record *rec, enum store_origin origin)
{
	(void)ctx, (void)path, (void)len, (void)rec, (void)origin;
	listened++;
}

static int fault_setup(void **state)
{
	fault_store_install();
	listened = 0;
	return setup(state);
}

static int fault_teardown(void **state)
{
	fault_store_reset();
	return teardown(state);
}

/* ------------------------------------------------------------------ writes */

/* An overwrite that RocksDB refuses: KVS_EIO, and the old version stays. */
static void test_write_fails_leaves_no_trace(void **state)
{
	struct snapshot *before = calloc(1, sizeof(*before));
	struct kvs_version v1;
	struct seen *c = seen_new();
	bool more;

	assert_non_null(before);
	must(put(S, "a", "\"one\"", &v1));
	must(put(S, "b", "\"bee\"", NULL));
	expect_get(S, "a", "\"one\"", &v1); /* now in the record cache */
	store_set_listener(S, count_listener, NULL);
	snap(S, before);

	atomic_store(&fault_write, true);
	struct kvs_record r = value_rec("\"two, longer\"");
	r.v.ts = 12345; /* the caller's, overwritten by a local write: must come back */
	int tried = atomic_load(&fault_writes_tried);
	assert_int_equal(store_apply(S, "a", 1, &r, STORE_LOCAL, NULL, NULL), KVS_EIO);
	assert_int_equal(atomic_load(&fault_writes_tried), tried + 1);
	assert_int_equal(r.v.ts, 12345);

	/* while RocksDB still fails, reads answer the old version (cache or not) */
	expect_get(S, "a", "\"one\"", &v1);
	expect_unchanged(S, before);
	assert_int_equal(listened, 0);

	/* a remote write of a new path fails as well: nothing of it anywhere */
	struct kvs_record rr = at(v1.ts + 5, 0x77, "\"new\"");
	assert_int_equal(store_apply(S, "fresh", 5, &rr, STORE_REMOTE, NULL, NULL), KVS_EIO);
	expect_absent(S, "fresh");
	assert_int_equal(store_scan_bucket(S, store_bucket_of("fresh", 5), collect, c), 0);
	for (size_t i = 0; i < c->n; i++)
		assert_string_not_equal(c->keys[i], "fresh");

	atomic_store(&fault_write, false);
	/* the indexes never saw the failed writes */
	assert_int_equal(list(S, "", NULL, 10, c, &more), 0);
	assert_int_equal(c->n, 2);
	c->n = 0;
	assert_int_equal(store_scan_time(S, 0, NULL, 0, true, 10, collect, c), 0);
	assert_int_equal(c->n, 2);
	assert_true(c->ts[0] == v1.ts || c->ts[1] == v1.ts);
	expect_unchanged(S, before);

	/* RocksDB back: the next write goes through and is above v1 */
	struct kvs_version v2;
	must(put(S, "a", "\"two\"", &v2));
	assert_true(v2.ts > v1.ts);
	expect_get(S, "a", "\"two\"", &v2);
	assert_int_equal(listened, 1);
	store_set_listener(S, NULL, NULL);
	free(c);
	free(before);
}

/* A delete RocksDB refuses: the value is still there. */
static void test_delete_fails(void **state)
{
	struct snapshot *before = calloc(1, sizeof(*before));
	struct kvs_version v1;

	assert_non_null(before);
	must(put(S, "k", "[1,2,3]", &v1));
	snap(S, before);
	atomic_store(&fault_write, true);
	assert_int_equal(del(S, "k", NULL), KVS_EIO);
	atomic_store(&fault_write, false);
	expect_get(S, "k", "[1,2,3]", &v1);
	expect_unchanged(S, before);
	free(before);
}

/* A read that fails: store_get and the read inside store_apply say
 * KVS_EIO, and no write is even tried. */
static void test_get_fails(void **state)
{
	struct store_value sv = { .raw = NULL };
	struct kvs_version v1;

	must(put(S, "cold", "1", &v1));
	/* another store on the same data: its record cache is empty, so the
	 * read reaches RocksDB */
	store_close(S);
	S = open_at(((struct fx *)*state)->dir);
	atomic_store(&fault_get, true);
	assert_int_equal(store_get(S, "cold", 4, &sv), KVS_EIO);
	assert_null(sv.raw);
	int tried = atomic_load(&fault_writes_tried);
	assert_int_equal(put(S, "cold", "2", NULL), KVS_EIO);
	assert_int_equal(atomic_load(&fault_writes_tried), tried);
	atomic_store(&fault_get, false);
	expect_get(S, "cold", "1", &v1);
}

/* A purge whose write fails keeps the tombstone and its count. */
static void test_purge_write_fails(void **state)
{
	struct snapshot *before = calloc(1, sizeof(*before));
	struct kvs_version t;

	assert_non_null(before);
	must(put(S, "gone", "1", NULL));
	must(del(S, "gone", &t));
	snap(S, before);
	atomic_store(&fault_write, true);
	assert_int_equal(store_purge_tombstones(S, t.ts + 1), 0);
	atomic_store(&fault_write, false);
	expect_get(S, "gone", NULL, &t);
	expect_unchanged(S, before);
	assert_int_equal(store_purge_tombstones(S, t.ts + 1), 1);
	expect_absent(S, "gone");
	free(before);
}

/* meta values: a failed put or get is KVS_EIO, out-params untouched. */
static void test_meta_fails(void **state)
{
	char out[8] = "xxxxxxx";
	size_t len = 99;

	must(store_meta_put(S, "m", "1234", 4));
	atomic_store(&fault_put, true);
	assert_int_equal(store_meta_put(S, "m", "5678", 4), KVS_EIO);
	atomic_store(&fault_put, false);
	atomic_store(&fault_get, true);
	assert_int_equal(store_meta_get(S, "m", out, sizeof(out), &len), KVS_EIO);
	assert_string_equal(out, "xxxxxxx");
	assert_int_equal(len, 99);
	atomic_store(&fault_get, false);
	must(store_meta_get(S, "m", out, sizeof(out), &len));
	assert_int_equal(len, 4);
	assert_memory_equal(out, "1234", 4);
}

/* ------------------------------------------------------------------ walks */

/* Every walk that meets an iterator error part-way returns KVS_EIO, after
 * handing out no more than the items before the error. */
static void test_walks_fail_midway(void **state)
{
	struct seen *c = seen_new();
	char key[16];
	bool more = true;

	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "k%02d", i);
		must(put(S, key, "true", NULL));
	}
	must(del(S, "k05", NULL));

	atomic_store(&fault_walk_after, 4);
	assert_int_equal(list(S, "k", NULL, 100, c, &more), KVS_EIO);
	assert_true(c->n <= 4);
	assert_true(c->n > 0);
	c->n = 0;
	assert_int_equal(store_scan_time(S, 0, NULL, 0, true, 100, collect, c), KVS_EIO);
	assert_true(c->n <= 4);
	c->n = 0;
	assert_int_equal(store_scan_time(S, 1, "", 0, false, 100, collect, c), KVS_EIO);
	assert_true(c->n <= 4);
	/* k05, deleted last, is the newest entry of the time index */
	assert_int_equal(store_purge_tombstones(S, INT64_MAX / 2), KVS_EIO);
	expect_get(S, "k05", NULL, NULL); /* the purge stopped before it */

	/* an error at once: nothing handed out (a bucket holds a path or two) */
	atomic_store(&fault_walk_after, 0);
	c->n = 0;
	assert_int_equal(list(S, "", NULL, 100, c, &more), KVS_EIO);
	assert_int_equal(c->n, 0);
	assert_int_equal(store_scan_bucket(S, store_bucket_of("k00", 3), collect, c), KVS_EIO);
	assert_int_equal(c->n, 0);

	/* and the same walks without the fault */
	atomic_store(&fault_walk_after, -1);
	assert_int_equal(list(S, "k", NULL, 100, c, &more), 0);
	assert_int_equal(c->n, 19);
	assert_false(more);
	free(c);
}

/* A walk whose index entry's record cannot be read fails too. */
static void test_scan_time_read_fails(void **state)
{
	struct seen *c = seen_new();

	must(put(S, "x", "1", NULL));
	store_close(S); /* a cold cache: the record read reaches RocksDB */
	S = open_at(((struct fx *)*state)->dir);
	atomic_store(&fault_get, true);
	assert_int_equal(store_scan_time(S, 0, NULL, 0, true, 10, collect, c), KVS_EIO);
	assert_int_equal(c->n, 0);
	atomic_store(&fault_get, false);
	free(c);
}

/* ------------------------------------------------------------------- open */

/* Opening fails cleanly when RocksDB cannot open, or the rebuild scan at
 * open meets an error: NULL and the reason. */
static void test_open_faults(void **state)
{
	const char *dir = ((struct fx *)*state)->dir;
	char err[512] = "";

	must(put(S, "a", "1", NULL));
	store_close(S);
	S = NULL;

	atomic_store(&fault_open, true);
	assert_null(store_open(dir, false, TEST_CACHE_BYTES, err, sizeof(err)));
	assert_non_null(strstr(err, "injected open failure"));
	atomic_store(&fault_open, false);

	err[0] = '\0';
	atomic_store(&fault_walk_after, 0);
	assert_null(store_open(dir, false, TEST_CACHE_BYTES, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot scan"));
	atomic_store(&fault_walk_after, -1);

	/* nothing was left locked or half open: the data is all there */
	S = open_at(dir);
	expect_get(S, "a", "1", NULL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fault_setup, fault_teardown)
	const struct CMUnitTest tests[] = {
		T(test_write_fails_leaves_no_trace),
		T(test_delete_fails),
		T(test_get_fails),
		T(test_purge_write_fails),
		T(test_meta_fails),
		T(test_walks_fail_midway),
		T(test_scan_time_read_fails),
		T(test_open_faults),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
