/*
 * test_changes.c - the change index (changes.c) and the watch hub (hub.c).
 *
 * The change index: every store_apply() that writes takes the next index and
 * writes its change (type, path, the record as stored) in the same batch; a
 * refused apply takes none; a failed write finishes its index as a gap;
 * store_index() (visible) trails the indexes given so that every change up
 * to it is readable; the numbering goes on after a reopen and never
 * repeats; the trimmer keeps the last `keep` indexes.  With the index off
 * (no store_changes_enable) nothing is numbered.
 *
 * The hub: which waiters a change to a path reaches (the key, each prefix
 * ending in '/', and ""), hits kept ascending and taken up to an index,
 * the missed range past HUB_HITS, and the waits (hub_wait, hub_kick_all,
 * store_index_wait) by their deadlines.
 *
 * Waits on the trimmer thread poll with a deadline (wait_until()), never
 * a bare sleep.  Threads other than cmocka's own never assert: they count
 * what went wrong and the main thread checks the counts.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "fault_store.h"
#include "store_fixture.h"

#define WAIT_DEADLINE_MS 5000 /* wait_until() gives up after this */
#define POLL_MS 20

/* ------------------------------------------------------------ helpers */

static int changes_setup(void **state)
{
	fault_store_install(); /* every switch off: the real RocksDB */
	return setup(state);
}

static int changes_teardown(void **state)
{
	fault_store_reset();
	return teardown(state);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Polls cond(s, arg) every POLL_MS until it holds or WAIT_DEADLINE_MS pass.
 * Returns whether it held. */
static bool wait_until(bool (*cond)(struct store *, uint64_t), struct store *s, uint64_t arg)
{
	uint64_t deadline = hub_now_us() + WAIT_DEADLINE_MS * 1000u;

	for (;;) {
		if (cond(s, arg))
			return true;
		if (hub_now_us() >= deadline)
			return false;
		sleep_ms(POLL_MS);
	}
}

static bool oldest_is(struct store *s, uint64_t want)
{
	return store_index_oldest(s) == want;
}

/* One change as a walk handed it out, copied. */
struct chg {
	uint64_t index;
	enum store_change_type type;
	char path[64];
	size_t plen;
	struct kvs_version v;
	bool tomb;
	char value[64];
	size_t vlen;
	char origin[RECORD_ORIGIN_MAX + 1];
	size_t olen;
};

struct chgs {
	size_t n;
	struct chg c[2100];
	int stop_at; /* return 9 from the callback at this entry (-1 never) */
};

static struct chgs *chgs_new(void)
{
	struct chgs *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->stop_at = -1;
	return c;
}

static void copy_change(struct chg *o, const struct store_change *ch)
{
	memset(o, 0, sizeof(*o));
	o->index = ch->index;
	o->type = ch->type;
	o->plen = ch->plen;
	memcpy(o->path, ch->path, ch->plen < sizeof(o->path) - 1 ? ch->plen : sizeof(o->path) - 1);
	o->v = ch->rec.v;
	o->tomb = ch->rec.tombstone;
	o->vlen = ch->rec.value_len;
	if (ch->rec.value_len) /* a tombstone's value may be NULL */
		memcpy(o->value, ch->rec.value,
		       ch->rec.value_len < sizeof(o->value) - 1 ? ch->rec.value_len
								: sizeof(o->value) - 1);
	o->olen = ch->rec.origin_len;
	if (ch->rec.origin_len && ch->rec.origin_len <= RECORD_ORIGIN_MAX)
		memcpy(o->origin, ch->rec.origin, ch->rec.origin_len);
}

static int collect_change(void *ctx, const struct store_change *ch)
{
	struct chgs *c = ctx;

	if (c->n >= sizeof(c->c) / sizeof(c->c[0]))
		return 8; /* more than any test writes */
	copy_change(&c->c[c->n], ch);
	if (c->stop_at >= 0 && (int)c->n == c->stop_at) {
		c->n++;
		return 9;
	}
	c->n++;
	return 0;
}

/* store_changes_read(after, upto] into c (emptied first). */
static int read_changes(struct store *s, uint64_t after, uint64_t upto, struct chgs *c)
{
	c->n = 0;
	return store_changes_read(s, after, upto, collect_change, c);
}

/* store_change_get(index) into *out. */
static int get_change(struct store *s, uint64_t index, struct chg *out)
{
	struct chgs *c = chgs_new();
	int rc = store_change_get(s, index, collect_change, c);

	if (rc == 0) {
		assert_int_equal(c->n, 1);
		*out = c->c[0];
	} else {
		assert_int_equal(c->n, 0);
	}
	free(c);
	return rc;
}

/* Expects change o to be: index, type, path, value (NULL: a delete, empty
 * value), version v (if given) and origin (NULL or "": none). */
static void expect_change(const struct chg *o, uint64_t index, enum store_change_type type,
			  const char *path, const char *value, const struct kvs_version *v,
			  const char *origin)
{
	if (o->index != index || o->type != type || o->plen != strlen(path) ||
	    strcmp(o->path, path) != 0) {
		print_error("change %llu type %d path %s; want %llu type %d path %s\n",
			    (unsigned long long)o->index, (int)o->type, o->path,
			    (unsigned long long)index, (int)type, path);
		fail();
	}
	if (value) {
		assert_false(o->tomb);
		assert_int_equal(o->vlen, strlen(value));
		assert_string_equal(o->value, value);
	} else {
		assert_true(o->tomb);
		assert_int_equal(o->vlen, 0);
	}
	if (v) {
		assert_int_equal(o->v.ts, v->ts);
		assert_memory_equal(o->v.id, v->id, 16);
	}
	if (origin && origin[0]) {
		assert_int_equal(o->olen, strlen(origin));
		assert_string_equal(o->origin, origin);
	} else {
		assert_int_equal(o->olen, 0);
	}
}

/* A local put / delete carrying an origin; *v gets the version written. */
static int put_from(struct store *s, const char *key, const char *value, const char *origin,
		    struct kvs_version *v)
{
	struct kvs_record r = value_rec(value);
	int rc;

	r.origin = origin;
	r.origin_len = origin ? strlen(origin) : 0;
	rc = store_apply(s, key, strlen(key), &r, STORE_LOCAL, NULL, NULL);
	if (v)
		*v = r.v;
	return rc;
}

static int del_from(struct store *s, const char *key, const char *origin, struct kvs_version *v)
{
	struct kvs_record r = { 0 };
	int rc;

	memset(&r, 0, sizeof(r));
	r.tombstone = true;
	r.origin = origin;
	r.origin_len = origin ? strlen(origin) : 0;
	rc = store_apply(s, key, strlen(key), &r, STORE_LOCAL, NULL, NULL);
	if (v)
		*v = r.v;
	return rc;
}

static struct kvs_record with_origin(struct kvs_record r, const char *origin)
{
	r.origin = origin;
	r.origin_len = strlen(origin);
	return r;
}

static void expect_index(struct store *s, uint64_t visible, uint64_t taken)
{
	assert_int_equal(store_index(s), visible);
	assert_int_equal(store_index_taken(s), taken);
}

/* ------------------------------------------------------- numbering (1) */

/* Every kind of apply that writes takes the next index, and its entry says
 * what was written; a refused apply takes none. */
static void test_each_apply_takes_next_index(void **state)
{
	struct chgs *c = chgs_new();
	struct chg o;
	struct kvs_version v1, v2, cur;
	int64_t now = version_now_ms();

	must(store_changes_enable(S, 1000));
	assert_true(store_changes_on(S));
	expect_index(S, 0, 0);
	assert_int_equal(store_index_oldest(S), 1);
	assert_int_equal(read_changes(S, 0, 100, c), 0);
	assert_int_equal(c->n, 0);

	/* 1: a local put */
	must(put_from(S, "a", "\"one\"", "n1", &v1));
	expect_index(S, 1, 1);
	must(get_change(S, 1, &o));
	expect_change(&o, 1, CHANGE_PUT, "a", "\"one\"", &v1, "n1");

	/* 2: a local delete */
	must(del_from(S, "a", "n1", &v2));
	expect_index(S, 2, 2);
	must(get_change(S, 2, &o));
	expect_change(&o, 2, CHANGE_DELETE, "a", NULL, &v2, "n1");

	/* 3: a remote record, with the origin the peer gave */
	struct kvs_record r = with_origin(at(now, 0x22, "{\"r\":1}"), "peer-2");
	must(remote(S, "b/c", r, NULL));
	expect_index(S, 3, 3);
	must(get_change(S, 3, &o));
	expect_change(&o, 3, CHANGE_PUT, "b/c", "{\"r\":1}", &r.v, "peer-2");

	/* 4: a remote tombstone; 5: a remote version that conflicts is
	 * refused; a resolution's winner takes 5 */
	struct kvs_record ra = with_origin(at(now + 5, 0xaa, "\"A\""), "na");
	struct kvs_record rb = with_origin(at(now + 5, 0xbb, "\"B\""), "nb");
	struct kvs_record rt = with_origin(at(now + 1, 0x33, NULL), "peer-3");
	must(remote(S, "b/c", rt, NULL));
	expect_index(S, 4, 4);
	must(get_change(S, 4, &o));
	expect_change(&o, 4, CHANGE_DELETE, "b/c", NULL, &rt.v, "peer-3");

	must(remote(S, "k", ra, NULL));
	expect_index(S, 5, 5);
	assert_int_equal(remote(S, "k", rb, NULL), KVS_ECONFLICT);
	expect_index(S, 5, 5);
	must(store_apply(S, "k", 1, &rb, STORE_RESOLVE, &ra.v, NULL));
	expect_index(S, 6, 6);
	must(get_change(S, 6, &o));
	expect_change(&o, 6, CHANGE_PUT, "k", "\"B\"", &rb.v, "nb");

	/* refused applies: no index taken, nothing written */
	memset(&cur, 0, sizeof(cur));
	assert_int_equal(remote(S, "k", rb, &cur), KVS_ESTALE);         /* the same version */
	assert_int_equal(remote(S, "k", at(now, 0x01, "\"old\""), NULL), KVS_ESTALE); /* older */
	assert_int_equal(store_apply(S, "k", 1, &ra, STORE_RESOLVE, &ra.v, NULL), KVS_ESTALE);
	assert_int_equal(del(S, "a", NULL), KVS_ENOTFOUND);             /* deleted already */
	assert_int_equal(del(S, "never", NULL), KVS_ENOTFOUND);         /* absent */
	expect_index(S, 6, 6);
	assert_int_equal(get_change(S, 7, &o), KVS_ENOTFOUND);

	/* 7: a local put without an origin */
	must(put(S, "a", "2", &v1));
	expect_index(S, 7, 7);

	/* the whole index, in order, with the same entries as store_change_get */
	must(read_changes(S, 0, 100, c));
	assert_int_equal(c->n, 7);
	expect_change(&c->c[0], 1, CHANGE_PUT, "a", "\"one\"", NULL, "n1");
	expect_change(&c->c[1], 2, CHANGE_DELETE, "a", NULL, &v2, "n1");
	expect_change(&c->c[2], 3, CHANGE_PUT, "b/c", "{\"r\":1}", &r.v, "peer-2");
	expect_change(&c->c[3], 4, CHANGE_DELETE, "b/c", NULL, &rt.v, "peer-3");
	expect_change(&c->c[4], 5, CHANGE_PUT, "k", "\"A\"", &ra.v, "na");
	expect_change(&c->c[5], 6, CHANGE_PUT, "k", "\"B\"", &rb.v, "nb");
	expect_change(&c->c[6], 7, CHANGE_PUT, "a", "2", &v1, NULL);

	/* (after, upto] bounds */
	must(read_changes(S, 2, 4, c));
	assert_int_equal(c->n, 2);
	assert_int_equal(c->c[0].index, 3);
	assert_int_equal(c->c[1].index, 4);
	must(read_changes(S, 6, 7, c));
	assert_int_equal(c->n, 1);
	assert_int_equal(c->c[0].index, 7);
	must(read_changes(S, 4, 4, c));
	assert_int_equal(c->n, 0);
	must(read_changes(S, 7, 3, c));
	assert_int_equal(c->n, 0);
	must(read_changes(S, 7, 100, c));
	assert_int_equal(c->n, 0);

	/* the callback's non-zero value stops the walk and comes back */
	c->stop_at = 1;
	assert_int_equal(read_changes(S, 0, 7, c), 9);
	assert_int_equal(c->n, 2);
	free(c);
}

/* store_apply tells the hub each change's index, for the waiters of its
 * path only. */
static void test_apply_notifies_hub(void **state)
{
	struct hub *h = store_hub(S);
	struct hub_waiter wk = { .key = "k", .klen = 1, .prefix = false };
	struct hub_waiter wp = { .key = "d/", .klen = 2, .prefix = true };
	uint64_t out[HUB_HITS];
	size_t n;
	bool more, scan;

	must(store_changes_enable(S, 1000));
	assert_non_null(h);
	hub_add(h, &wk);
	hub_add(h, &wp);
	must(put(S, "k", "1", NULL));   /* 1 */
	must(put(S, "d/x", "1", NULL)); /* 2 */
	must(put(S, "kk", "1", NULL));  /* 3 */
	must(del(S, "k", NULL));        /* 4 */
	assert_int_equal(del(S, "d/y", NULL), KVS_ENOTFOUND);
	must(put(S, "d/y/z", "1", NULL)); /* 5 */

	hub_take(h, &wk, store_index(S), out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 4);
	assert_false(more);
	assert_false(scan);
	hub_take(h, &wp, store_index(S), out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 5);
	hub_remove(h, &wk);
	hub_remove(h, &wp);
	assert_int_equal(hub_count(h), 0);
}

/* ---------------------------------------------------------- reopen (2) */

static void test_reopen_continues_numbering(void **state)
{
	struct fx *f = *state;
	struct chgs *c = chgs_new();
	struct chg o;
	struct kvs_version va, vb;

	must(store_changes_enable(f->s, 1000));
	must(put_from(f->s, "a", "1", "n1", &va));
	must(put(f->s, "b", "2", NULL));
	must(del_from(f->s, "b", "n1", &vb));
	expect_index(f->s, 3, 3);

	store_close(f->s);
	f->s = open_at(f->dir);
	must(store_changes_enable(f->s, 1000));
	expect_index(f->s, 3, 3);
	assert_int_equal(store_index_oldest(f->s), 1);

	/* the old entries are still there */
	must(get_change(f->s, 1, &o));
	expect_change(&o, 1, CHANGE_PUT, "a", "1", &va, "n1");
	must(get_change(f->s, 3, &o));
	expect_change(&o, 3, CHANGE_DELETE, "b", NULL, &vb, "n1");

	/* the next change goes on after them */
	must(put(f->s, "c", "3", NULL));
	expect_index(f->s, 4, 4);
	must(read_changes(f->s, 0, 100, c));
	assert_int_equal(c->n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(c->c[i].index, i + 1);
	expect_change(&c->c[3], 4, CHANGE_PUT, "c", "3", NULL, NULL);

	/* and again, after a second close */
	store_close(f->s);
	f->s = open_at(f->dir);
	must(store_changes_enable(f->s, 1000));
	must(put(f->s, "d", "4", NULL));
	expect_index(f->s, 5, 5);
	must(read_changes(f->s, 0, 100, c));
	assert_int_equal(c->n, 5);
	assert_int_equal(c->c[4].index, 5);
	free(c);
}

/*
 * An index handed out (store_index() passed it) is never given to another
 * change, even when its own write failed and it was the last one before a
 * close: a watcher whose cursor is that index would never see the new
 * change that reused it.
 */
static void test_reopen_after_failed_last_write(void **state)
{
	struct fx *f = *state;
	struct chg o;

	must(store_changes_enable(f->s, 1000));
	must(put(f->s, "a", "1", NULL)); /* 1 */
	atomic_store(&fault_write, true);
	assert_int_equal(put(f->s, "b", "2", NULL), KVS_EIO); /* 2: a gap */
	atomic_store(&fault_write, false);
	expect_index(f->s, 2, 2);
	uint64_t seen = store_index(f->s); /* what a watcher was told */

	store_close(f->s);
	f->s = open_at(f->dir);
	must(store_changes_enable(f->s, 1000));
	must(put(f->s, "c", "3", NULL));
	must(get_change(f->s, store_index(f->s), &o));
	assert_string_equal(o.path, "c");
	if (o.index <= seen || store_index(f->s) <= seen) {
		print_error("after reopen the change to c got index %llu, which a watcher told "
			    "store_index() = %llu before the close has already passed\n",
			    (unsigned long long)o.index, (unsigned long long)seen);
		fail();
	}
}

/* ------------------------------------------------------- failed write (3) */

static void test_failed_write_leaves_gap(void **state)
{
	struct chgs *c = chgs_new();
	struct chg o;
	struct kvs_version v;

	must(store_changes_enable(S, 1000));
	must(put(S, "a", "1", NULL)); /* 1 */
	expect_index(S, 1, 1);

	atomic_store(&fault_write, true);
	assert_int_equal(put(S, "b", "2", NULL), KVS_EIO); /* 2 */
	assert_int_equal(del(S, "a", NULL), KVS_EIO);      /* 3 */
	atomic_store(&fault_write, false);

	/* both indexes were taken and finished: visible passed them */
	expect_index(S, 3, 3);
	assert_int_equal(get_change(S, 2, &o), KVS_ENOTFOUND);
	assert_int_equal(get_change(S, 3, &o), KVS_ENOTFOUND);
	expect_absent(S, "b");
	expect_get(S, "a", "1", NULL);
	/* a waiter for the gap is not left hanging */
	assert_true(store_index_wait(S, 3, hub_now_us()));

	/* the next write gets a higher index and is readable */
	must(put(S, "b", "2", &v)); /* 4 */
	expect_index(S, 4, 4);
	must(get_change(S, 4, &o));
	expect_change(&o, 4, CHANGE_PUT, "b", "2", &v, NULL);

	/* a walk skips the gap */
	must(read_changes(S, 0, store_index(S), c));
	assert_int_equal(c->n, 2);
	assert_int_equal(c->c[0].index, 1);
	assert_int_equal(c->c[1].index, 4);
	must(read_changes(S, 1, 3, c));
	assert_int_equal(c->n, 0);
	free(c);
}

/* ------------------------------------------------------------- trim (4) */

static void test_trim_keeps_last(void **state)
{
	struct chgs *c = chgs_new();
	struct chg o;
	char key[16], val[16];

	must(store_changes_enable(S, 10));
	for (int i = 1; i <= 50; i++) {
		snprintf(key, sizeof(key), "t/%d", i % 7);
		snprintf(val, sizeof(val), "%d", i);
		must(put(S, key, val, NULL));
	}
	expect_index(S, 50, 50);

	if (!wait_until(oldest_is, S, store_index(S) - 10 + 1)) {
		print_error("oldest %llu after %d ms, want %llu\n",
			    (unsigned long long)store_index_oldest(S), WAIT_DEADLINE_MS,
			    (unsigned long long)(store_index(S) - 10 + 1));
		fail();
	}
	assert_int_equal(store_index_oldest(S), 41);

	/* oldest moves before the delete is written: wait for the delete */
	bool gone = false;
	uint64_t deadline = hub_now_us() + WAIT_DEADLINE_MS * 1000u;
	while (!(gone = get_change(S, 40, &o) == KVS_ENOTFOUND) && hub_now_us() < deadline)
		sleep_ms(POLL_MS);
	assert_true(gone);

	/* below oldest: nothing */
	for (uint64_t i = 1; i <= 40; i++)
		assert_int_equal(get_change(S, i, &o), KVS_ENOTFOUND);
	must(read_changes(S, 0, 40, c));
	assert_int_equal(c->n, 0);

	/* the last ten, whole */
	must(read_changes(S, 0, 50, c));
	assert_int_equal(c->n, 10);
	for (size_t i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "t/%zu", (41 + i) % 7);
		snprintf(val, sizeof(val), "%zu", 41 + i);
		expect_change(&c->c[i], 41 + i, CHANGE_PUT, key, val, NULL, NULL);
	}
	must(get_change(S, 41, &o));
	must(get_change(S, 50, &o));

	/* writes go on numbering after the trim, and the next round trims
	 * again, even by a single index */
	must(put(S, "t/x", "x", NULL));
	expect_index(S, 51, 51);
	if (!wait_until(oldest_is, S, 42)) {
		print_error("oldest %llu after %d ms, want 42\n",
			    (unsigned long long)store_index_oldest(S), WAIT_DEADLINE_MS);
		fail();
	}
	must(read_changes(S, 0, 51, c));
	assert_int_equal(c->n, 10);
	assert_int_equal(c->c[0].index, 42);
	assert_int_equal(c->c[9].index, 51);
	free(c);
}

/*
 * A trim whose delete fails leaves the entries and `oldest` as they were
 * (readers are never told an index is gone while it is still there), and
 * a later round tries again (changes.c: "a failure is logged; the next
 * round tries again").
 */
static void test_trim_retried_after_failed_write(void **state)
{
	struct fx *f = *state;
	struct chg o;

	/* twenty entries, written with trimming far away */
	must(store_changes_enable(f->s, 1000));
	for (int i = 0; i < 20; i++)
		must(put(f->s, "r", "1", NULL));
	store_close(f->s);

	/* reopened keeping 5, with RocksDB refusing writes: the rounds' delete
	 * of [1, 16) fails */
	f->s = open_at(f->dir);
	atomic_store(&fault_write, true);
	int tried = atomic_load(&fault_writes_tried);
	must(store_changes_enable(f->s, 5));
	uint64_t deadline = hub_now_us() + WAIT_DEADLINE_MS * 1000u;
	while (atomic_load(&fault_writes_tried) == tried && hub_now_us() < deadline)
		sleep_ms(POLL_MS);
	assert_true(atomic_load(&fault_writes_tried) > tried);
	/* nothing was deleted, and oldest still says so */
	assert_int_equal(store_index_oldest(f->s), 1);
	must(get_change(f->s, 1, &o));
	must(get_change(f->s, 15, &o));
	atomic_store(&fault_write, false);

	/* a later round deletes them */
	if (!wait_until(oldest_is, f->s, 16)) {
		print_error("oldest %llu, want 16\n",
			    (unsigned long long)store_index_oldest(f->s));
		fail();
	}
	bool gone = false;
	deadline = hub_now_us() + WAIT_DEADLINE_MS * 1000u;
	while (!(gone = get_change(f->s, 15, &o) == KVS_ENOTFOUND) && hub_now_us() < deadline)
		sleep_ms(POLL_MS);
	assert_true(gone);
	struct chgs *c = chgs_new();
	must(read_changes(f->s, 0, 20, c));
	assert_int_equal(c->n, 5);
	assert_int_equal(c->c[0].index, 16);
	free(c);
}

/* -------------------------------------------------------------- off (5) */

static void test_off_by_default(void **state)
{
	struct chgs *c = chgs_new();
	struct chg o;
	struct hub_waiter w = { .key = "", .klen = 0, .prefix = true };

	assert_false(store_changes_on(S));
	hub_add(store_hub(S), &w);
	must(put(S, "a", "1", NULL));
	must(put(S, "a", "2", NULL));
	must(del(S, "a", NULL));
	must(remote(S, "b", at(version_now_ms(), 0x11, "\"r\""), NULL));
	expect_get(S, "b", "\"r\"", NULL);
	expect_index(S, 0, 0);
	assert_int_equal(store_index_oldest(S), 1);
	must(read_changes(S, 0, 100, c));
	assert_int_equal(c->n, 0);
	assert_int_equal(get_change(S, 1, &o), KVS_ENOTFOUND);
	assert_false(hub_pending(store_hub(S), &w)); /* no index, no notification */
	hub_remove(store_hub(S), &w);

	/* store_changes_enable(0) leaves it off */
	must(store_changes_enable(S, 0));
	assert_false(store_changes_on(S));
	must(put(S, "a", "3", NULL));
	expect_index(S, 0, 0);
	free(c);
}

/* -------------------------------------------------------------- hub (6) */

/* Takes everything w holds up to upto (at most HUB_HITS). */
static size_t take_all(struct hub *h, struct hub_waiter *w, uint64_t upto, uint64_t *out,
		       bool *scan)
{
	size_t n;
	bool more;

	hub_take(h, w, upto, out, HUB_HITS, &n, &more, scan);
	assert_false(more);
	return n;
}

static void test_hub_matching(void **state)
{
	(void)state;
	struct hub *h = hub_new();
	struct hub_waiter key = { .key = "a/b", .klen = 3, .prefix = false };
	struct hub_waiter pre = { .key = "a/b/", .klen = 4, .prefix = true };
	struct hub_waiter all = { .key = "", .klen = 0, .prefix = true };
	struct hub_waiter other = { .key = "x/", .klen = 2, .prefix = true };
	uint64_t out[HUB_HITS];
	bool scan;
	size_t n;

	assert_non_null(h);
	hub_add(h, &key);
	hub_add(h, &pre);
	hub_add(h, &all);
	hub_add(h, &other);
	assert_int_equal(hub_count(h), 4);
	assert_false(hub_pending(h, &key));

	hub_notify(h, "a/b", 3, 1);
	hub_notify(h, "a/b/c", 5, 2);
	hub_notify(h, "a/b/c/d", 7, 3);
	hub_notify(h, "a/bc", 4, 4);
	hub_notify(h, "a", 1, 5);
	hub_notify(h, "ab/c", 4, 6);
	hub_notify(h, "z", 1, 7);

	n = take_all(h, &key, 100, out, &scan);
	assert_false(scan);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 1);

	n = take_all(h, &pre, 100, out, &scan);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 2);
	assert_int_equal(out[1], 3);

	n = take_all(h, &all, 100, out, &scan);
	assert_int_equal(n, 7);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i], i + 1);

	assert_false(hub_pending(h, &other));
	n = take_all(h, &other, 100, out, &scan);
	assert_int_equal(n, 0);
	assert_false(scan);

	/* a removed waiter hears nothing; the others still do */
	hub_remove(h, &key);
	assert_int_equal(hub_count(h), 3);
	hub_notify(h, "a/b", 3, 8);
	assert_true(hub_pending(h, &all));
	n = take_all(h, &all, 100, out, &scan);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 8);
	assert_false(hub_pending(h, &pre));

	/* two waiters on the same key both hear it */
	struct hub_waiter key2 = { .key = "a/b/c", .klen = 5, .prefix = false };
	struct hub_waiter key3 = { .key = "a/b/c", .klen = 5, .prefix = false };
	hub_add(h, &key2);
	hub_add(h, &key3);
	hub_notify(h, "a/b/c", 5, 9);
	assert_true(hub_pending(h, &key2));
	assert_true(hub_pending(h, &key3));
	hub_remove(h, &key2);
	hub_remove(h, &key3);
	hub_remove(h, &pre);
	hub_remove(h, &all);
	hub_remove(h, &other);
	assert_int_equal(hub_count(h), 0);
	hub_free(h);
}

static void test_hub_take(void **state)
{
	(void)state;
	struct hub *h = hub_new();
	struct hub_waiter w = { .key = "", .klen = 0, .prefix = true };
	uint64_t out[HUB_HITS];
	bool more, scan;
	size_t n;

	assert_non_null(h);
	hub_add(h, &w);
	/* out of order */
	const uint64_t order[] = { 7, 3, 9, 1, 5, 8, 2 };
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		hub_notify(h, "k", 1, order[i]);

	/* only those <= upto, ascending, at most cap */
	hub_take(h, &w, 6, out, 2, &n, &more, &scan);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 2);
	assert_true(more); /* 3 and 5 are left at or below 6 */
	assert_false(scan);

	hub_take(h, &w, 6, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 3);
	assert_int_equal(out[1], 5);
	assert_false(more);
	assert_false(scan);

	/* above upto stays */
	assert_true(hub_pending(h, &w));
	hub_take(h, &w, 6, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 0);
	assert_false(more);
	hub_take(h, &w, 8, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 7);
	assert_int_equal(out[1], 8);
	hub_take(h, &w, 100, out, 1, &n, &more, &scan);
	assert_int_equal(n, 1);
	assert_int_equal(out[0], 9);
	assert_false(more);
	assert_false(hub_pending(h, &w));

	hub_remove(h, &w);
	hub_free(h);
}

static void test_hub_overflow_range(void **state)
{
	(void)state;
	struct hub *h = hub_new();
	struct hub_waiter w = { .key = "p/", .klen = 2, .prefix = true };
	uint64_t out[HUB_HITS];
	bool more, scan;
	size_t n;
	const uint64_t total = HUB_HITS + 10;

	assert_non_null(h);
	hub_add(h, &w);
	for (uint64_t i = 1; i <= total; i++)
		hub_notify(h, "p/k", 3, i);

	/* the first HUB_HITS as hits, the rest as a range */
	uint64_t mid = HUB_HITS + 5;
	hub_take(h, &w, mid, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, HUB_HITS);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i], i + 1);
	assert_false(more);
	assert_true(scan); /* HUB_HITS + 1 .. mid were missed */

	/* the range above mid stays */
	assert_true(hub_pending(h, &w));
	hub_take(h, &w, mid, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 0);
	assert_false(scan);
	hub_take(h, &w, total - 1, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 0);
	assert_true(scan);
	assert_true(hub_pending(h, &w)); /* total itself */
	hub_take(h, &w, total, out, HUB_HITS, &n, &more, &scan);
	assert_true(scan);
	assert_false(hub_pending(h, &w));
	hub_take(h, &w, total + 100, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 0);
	assert_false(scan);

	/* newest first: the late-coming low indexes become the range */
	for (uint64_t i = total; i >= 1; i--)
		hub_notify(h, "p/k", 3, 1000 + i);
	hub_take(h, &w, 1005, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 0); /* hits are 1011 .. 1000 + total */
	assert_true(scan);      /* the range 1001..1010 starts below */
	hub_take(h, &w, 1000 + total, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, HUB_HITS);
	assert_int_equal(out[0], 1011);
	assert_int_equal(out[HUB_HITS - 1], 1000 + total);
	assert_true(scan); /* 1006..1010 were still missed */
	assert_false(hub_pending(h, &w));

	hub_remove(h, &w);
	hub_free(h);
}

struct waiting {
	struct hub *h;
	struct hub_waiter *w;
	uint64_t deadline;
	atomic_bool started, returned;
	uint64_t took_us;
};

static void *wait_thread(void *arg)
{
	struct waiting *wt = arg;
	uint64_t t0 = hub_now_us();

	atomic_store(&wt->started, true);
	hub_wait(wt->h, wt->w, wt->deadline);
	wt->took_us = hub_now_us() - t0;
	atomic_store(&wt->returned, true);
	return NULL;
}

static void test_hub_wait_and_kick(void **state)
{
	(void)state;
	struct hub *h = hub_new();
	struct hub_waiter w = { .key = "k", .klen = 1, .prefix = false };
	uint64_t out[HUB_HITS], t0, took;
	bool more, scan;
	size_t n;

	assert_non_null(h);
	hub_add(h, &w);

	/* a hit pending: at once */
	hub_notify(h, "k", 1, 1);
	t0 = hub_now_us();
	hub_wait(h, &w, t0 + 5 * 1000000u);
	assert_true(hub_now_us() - t0 < 500000u);
	hub_take(h, &w, 10, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 1);

	/* nothing: by the deadline, not before */
	t0 = hub_now_us();
	hub_wait(h, &w, t0 + 150000u);
	took = hub_now_us() - t0;
	assert_true(took >= 150000u);
	assert_true(took < 2000000u);
	/* a deadline already past: at once */
	t0 = hub_now_us();
	hub_wait(h, &w, t0 > 1000u ? t0 - 1000u : 0);
	assert_true(hub_now_us() - t0 < 500000u);

	/* a thread waiting far into the future: kicked awake */
	struct waiting wt = { .h = h, .w = &w, .deadline = hub_now_us() + 30 * 1000000u };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &wt), 0);
	while (!atomic_load(&wt.started))
		sleep_ms(1);
	sleep_ms(100); /* well inside hub_wait by now */
	assert_false(atomic_load(&wt.returned));
	hub_kick_all(h);
	uint64_t deadline = hub_now_us() + WAIT_DEADLINE_MS * 1000u;
	while (!atomic_load(&wt.returned) && hub_now_us() < deadline)
		sleep_ms(POLL_MS);
	bool woke = atomic_load(&wt.returned);
	if (!woke)
		hub_notify(h, "k", 1, 2); /* let it go, so the join ends */
	pthread_join(th, NULL);
	assert_true(woke);
	assert_true(wt.took_us < (uint64_t)WAIT_DEADLINE_MS * 1000u + 200000u);

	/* a kick is cleared by hub_take: the next wait runs to its deadline */
	hub_take(h, &w, 10, out, HUB_HITS, &n, &more, &scan);
	assert_int_equal(n, 0);
	assert_false(scan);
	t0 = hub_now_us();
	hub_wait(h, &w, t0 + 100000u);
	assert_true(hub_now_us() - t0 >= 100000u);

	/* a notification from another thread wakes it too */
	wt = (struct waiting){ .h = h, .w = &w, .deadline = hub_now_us() + 30 * 1000000u };
	assert_int_equal(pthread_create(&th, NULL, wait_thread, &wt), 0);
	while (!atomic_load(&wt.started))
		sleep_ms(1);
	sleep_ms(50);
	hub_notify(h, "k", 1, 3);
	pthread_join(th, NULL);
	assert_true(wt.took_us < 5 * 1000000u);

	hub_remove(h, &w);
	hub_free(h);
}

/* -------------------------------------------------- store_index_wait (7) */

struct late_put {
	struct store *s;
	long delay_ms;
	int rc;
};

static void *late_put_thread(void *arg)
{
	struct late_put *lp = arg;

	sleep_ms(lp->delay_ms);
	lp->rc = put(lp->s, "late", "1", NULL);
	return NULL;
}

static void test_index_wait(void **state)
{
	uint64_t t0, took;

	must(store_changes_enable(S, 1000));
	must(put(S, "a", "1", NULL)); /* 1 */

	/* visible already: at once, even with a deadline in the past */
	t0 = hub_now_us();
	assert_true(store_index_wait(S, 1, t0 + 5 * 1000000u));
	assert_true(store_index_wait(S, 0, 0));
	assert_true(store_index_wait(S, 1, 0));
	assert_true(hub_now_us() - t0 < 500000u);

	/* never reached: false, by the deadline */
	t0 = hub_now_us();
	assert_false(store_index_wait(S, 2, t0 + 200000u));
	took = hub_now_us() - t0;
	assert_true(took >= 200000u);
	assert_true(took < 2000000u);
	assert_false(store_index_wait(S, 2, hub_now_us()));

	/* reached by another thread's write while waiting */
	struct late_put lp = { .s = S, .delay_ms = 100, .rc = -100 };
	pthread_t th;
	t0 = hub_now_us();
	assert_int_equal(pthread_create(&th, NULL, late_put_thread, &lp), 0);
	bool reached = store_index_wait(S, 2, t0 + 5 * 1000000u);
	took = hub_now_us() - t0;
	pthread_join(th, NULL);
	must(lp.rc);
	assert_true(reached);
	assert_true(took < 4 * 1000000u);
	assert_int_equal(store_index(S), 2);
}

/* -------------------------------------------------------- concurrency (8) */

#define WRITERS 4
#define PER_WRITER 500
#define TOTAL (WRITERS * PER_WRITER)

struct writer {
	struct store *s;
	int id;
	int failed;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	char key[32], val[16];

	for (int i = 0; i < PER_WRITER; i++) {
		snprintf(key, sizeof(key), "w%d/k%d", w->id, i % 50);
		snprintf(val, sizeof(val), "%d", i);
		if (put(w->s, key, val, NULL) != 0)
			w->failed++;
	}
	return NULL;
}

/* Reads behind the writers: every index up to store_index() must be
 * readable the moment it is visible (no write failed, so no gaps). */
struct reader {
	struct store *s;
	atomic_bool stop;
	long rounds;
	long bad;           /* a visible index without its entry, or out of order */
	uint64_t bad_index;
	uint64_t last_visible;
	long went_back;     /* store_index() decreased */
};

static int count_dense(void *ctx, const struct store_change *ch)
{
	uint64_t *next = ctx;

	if (ch->index != *next)
		return 1;
	(*next)++;
	return 0;
}

static void *reader_thread(void *arg)
{
	struct reader *r = arg;
	uint64_t cursor = 0;

	while (!atomic_load(&r->stop)) {
		uint64_t visible = store_index(r->s), next = cursor + 1;

		if (visible < r->last_visible)
			r->went_back++;
		r->last_visible = visible;
		int rc = store_changes_read(r->s, cursor, visible, count_dense, &next);
		if (rc != 0 || next != visible + 1) {
			if (!r->bad)
				r->bad_index = next;
			r->bad++;
		} else {
			cursor = visible;
		}
		r->rounds++;
	}
	return NULL;
}

static void test_concurrent_writers(void **state)
{
	struct hub *h = store_hub(S);
	struct hub_waiter w = { .key = "", .klen = 0, .prefix = true };
	struct writer wr[WRITERS];
	struct reader rd = { .s = S };
	pthread_t th[WRITERS], rt;
	struct chgs *c = chgs_new();

	must(store_changes_enable(S, 100000));
	hub_add(h, &w);
	assert_int_equal(pthread_create(&rt, NULL, reader_thread, &rd), 0);
	for (int i = 0; i < WRITERS; i++) {
		wr[i] = (struct writer){ .s = S, .id = i };
		assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &wr[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(wr[i].failed, 0);
	}
	atomic_store(&rd.stop, true);
	pthread_join(rt, NULL);
	if (rd.bad) {
		print_error("reader: %ld of %ld rounds found a visible index unreadable "
			    "(first at %llu)\n", rd.bad, rd.rounds,
			    (unsigned long long)rd.bad_index);
		fail();
	}
	assert_int_equal(rd.went_back, 0);

	expect_index(S, TOTAL, TOTAL);

	/* each index once, ascending, each write's entry */
	must(read_changes(S, 0, TOTAL, c));
	assert_int_equal(c->n, TOTAL);
	int per[WRITERS] = { 0 };
	for (size_t i = 0; i < c->n; i++) {
		int id, k;

		assert_int_equal(c->c[i].index, i + 1);
		assert_int_equal(c->c[i].type, CHANGE_PUT);
		assert_int_equal(sscanf(c->c[i].path, "w%d/k%d", &id, &k), 2);
		assert_true(id >= 0 && id < WRITERS);
		/* one writer's changes come in its own order */
		assert_int_equal(atoi(c->c[i].value), per[id]);
		assert_int_equal(k, per[id] % 50);
		per[id]++;
	}
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(per[i], PER_WRITER);

	/* the hub heard of every one: a hit or inside the missed range */
	uint64_t lo = w.over_lo, hi = w.over_hi; /* no writer left: safe to read */
	uint64_t hits[HUB_HITS];
	size_t n, covered = 0;
	bool more, scan;
	hub_take(h, &w, TOTAL, hits, HUB_HITS, &n, &more, &scan);
	assert_false(more);
	assert_int_equal(n, HUB_HITS);
	assert_true(scan);
	for (size_t i = 1; i < n; i++)
		assert_true(hits[i] > hits[i - 1]);
	for (uint64_t i = 1; i <= TOTAL; i++) {
		bool hit = false;

		for (size_t j = 0; j < n && !hit; j++)
			hit = hits[j] == i;
		if (hit || (lo && i >= lo && i <= hi))
			covered++;
		else
			print_error("index %llu neither a hit nor in the range [%llu, %llu]\n",
				    (unsigned long long)i, (unsigned long long)lo,
				    (unsigned long long)hi);
	}
	assert_int_equal(covered, TOTAL);
	assert_true(hi <= TOTAL);
	assert_false(hub_pending(h, &w));
	hub_remove(h, &w);
	free(c);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, changes_setup, changes_teardown)
	const struct CMUnitTest tests[] = {
		T(test_each_apply_takes_next_index),
		T(test_apply_notifies_hub),
		T(test_reopen_continues_numbering),
		T(test_reopen_after_failed_last_write),
		T(test_failed_write_leaves_gap),
		T(test_trim_keeps_last),
		T(test_trim_retried_after_failed_write),
		T(test_off_by_default),
		cmocka_unit_test(test_hub_matching),
		cmocka_unit_test(test_hub_take),
		cmocka_unit_test(test_hub_overflow_range),
		cmocka_unit_test(test_hub_wait_and_kick),
		T(test_index_wait),
		T(test_concurrent_writers),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
