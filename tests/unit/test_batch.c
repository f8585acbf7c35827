/*
 * test_batch.c - the write door's batch form, store_apply_batch().
 *
 * Conditions (match, exists, absent) against present, absent and deleted
 * paths; a failed condition writes nothing and names only the failing ops;
 * check ops write nothing; local versions come out fresh and consecutive
 * change indexes are taken; remote batches skip stale ops and write the
 * rest; one path twice or too many ops is KVS_EINVAL; a failed RocksDB
 * write leaves no trace; the batch listener gets one call per batch of
 * several writes; and many threads running batches over overlapping paths
 * in different orders finish (one lock order: no deadlock) with every
 * batch whole.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "fault_store.h"
#include "store_fixture.h"

static int batch_setup(void **state)
{
	fault_store_install(); /* every switch off: the real RocksDB */
	return setup(state);
}

static int batch_teardown(void **state)
{
	fault_store_reset();
	return teardown(state);
}

static struct store_op op_put(const char *key, const char *value)
{
	struct store_op op;

	memset(&op, 0, sizeof(op));
	op.path = key;
	op.len = strlen(key);
	op.rec = value_rec(value);
	return op;
}

static struct store_op op_del(const char *key)
{
	struct store_op op = op_put(key, "");

	op.rec.value = NULL;
	op.rec.value_len = 0;
	op.rec.tombstone = true;
	return op;
}

static struct store_op op_check(const char *key, enum store_cond cond)
{
	struct store_op op = op_put(key, "");

	op.check = true;
	op.cond = cond;
	return op;
}

static bool exists(struct store *s, const char *key)
{
	struct store_value v;
	int rc = store_get(s, key, strlen(key), &v);
	bool live = rc == 0 && !v.rec.tombstone;

	if (rc == 0)
		store_value_release(&v);
	return live;
}

/* ------------------------------------------------------------ conditions */

static void test_conditions_by_state(void **state)
{
	struct kvs_version pv, dv;
	enum store_cond conds[] = { STORE_COND_MATCH, STORE_COND_EXISTS, STORE_COND_ABSENT };
	/* holds[cond][state]: present, absent, deleted */
	bool holds[3][3] = { { true, false, false }, { true, false, false },
			     { false, true, true } };

	must(put(S, "present", "1", &pv));
	must(put(S, "deleted", "1", &dv));
	must(del(S, "deleted", &dv));
	for (int c = 0; c < 3; c++) {
		const char *keys[] = { "present", "absent", "deleted" };

		for (int k = 0; k < 3; k++) {
			struct store_op op = op_check(keys[k], conds[c]);
			op.match = keys[k][0] == 'p' ? pv : dv; /* a deleted key's uuid: no match */
			int rc = store_apply_batch(S, &op, 1, STORE_LOCAL);

			if (holds[c][k]) {
				assert_int_equal(rc, 0);
				assert_int_equal(op.rc, 0);
			} else {
				assert_int_equal(rc, KVS_EPRECOND);
				assert_int_equal(op.rc, KVS_EPRECOND);
			}
			assert_int_equal(op.had, k != 1);
		}
	}
	/* a match on another uuid fails, and reports the current version */
	struct store_op op = op_put("present", "2");
	op.cond = STORE_COND_MATCH;
	op.match = ver(1, 0x42);
	assert_int_equal(store_apply_batch(S, &op, 1, STORE_LOCAL), KVS_EPRECOND);
	assert_true(op.had);
	assert_memory_equal(op.current.v.id, pv.id, 16);
	expect_get(S, "present", "1", &pv);
}

static void test_failed_condition_writes_nothing(void **state)
{
	struct kvs_version a;
	uint64_t before;

	store_changes_enable(S, 1000);
	must(put(S, "a", "1", &a));
	before = store_index(S);
	struct store_op ops[3] = { op_put("a", "2"), op_put("b", "2"), op_put("c", "2") };
	ops[0].cond = STORE_COND_MATCH;
	ops[0].match = a;
	ops[1].cond = STORE_COND_EXISTS; /* b is absent: fails */
	ops[2].cond = STORE_COND_ABSENT;
	assert_int_equal(store_apply_batch(S, ops, 3, STORE_LOCAL), KVS_EPRECOND);
	assert_int_equal(ops[0].rc, 0);
	assert_int_equal(ops[1].rc, KVS_EPRECOND);
	assert_int_equal(ops[2].rc, 0);
	expect_get(S, "a", "1", &a);
	assert_false(exists(S, "b"));
	assert_false(exists(S, "c"));
	assert_int_equal(store_index(S), before);
	assert_int_equal(store_index_taken(S), before);
}

static void test_batch_writes_all_with_consecutive_indexes(void **state)
{
	struct store_op ops[4] = { op_put("x/1", "1"), op_put("x/2", "2"), op_del("x/3"),
				   op_check("x/4", STORE_COND_ABSENT) };
	struct store_stats st;

	store_changes_enable(S, 1000);
	must(put(S, "x/3", "old", NULL));
	uint64_t before = store_index(S);
	must(store_apply_batch(S, ops, 4, STORE_LOCAL));
	assert_int_equal(ops[0].index, before + 1);
	assert_int_equal(ops[1].index, before + 2);
	assert_int_equal(ops[2].index, before + 3);
	assert_int_equal(ops[3].index, 0); /* a check writes nothing */
	assert_int_equal(store_index(S), before + 3);
	assert_true(ops[0].rec.v.ts > 0);
	expect_get(S, "x/1", "1", &ops[0].rec.v);
	expect_get(S, "x/2", "2", &ops[1].rec.v);
	expect_get(S, "x/3", NULL, &ops[2].rec.v);
	store_stats(S, &st);
	assert_int_equal(st.keys, 2);
	assert_int_equal(st.tombstones, 1);
}

static void test_local_delete_of_absent_is_skipped(void **state)
{
	struct store_op ops[2] = { op_put("p", "1"), op_del("gone") };

	must(store_apply_batch(S, ops, 2, STORE_LOCAL));
	assert_int_equal(ops[0].rc, 0);
	assert_int_equal(ops[1].rc, KVS_ENOTFOUND);
	assert_true(exists(S, "p"));
	assert_false(exists(S, "gone"));
}

static void test_remote_batch_skips_stale(void **state)
{
	struct store_op ops[2];

	must(remote(S, "r/1", at(2000, 2, "\"new\""), NULL));
	ops[0] = op_put("r/1", "");
	ops[0].rec = at(1000, 1, "\"older\"");
	ops[1] = op_put("r/2", "");
	ops[1].rec = at(1000, 1, "\"fresh\"");
	must(store_apply_batch(S, ops, 2, STORE_REMOTE));
	assert_int_equal(ops[0].rc, KVS_ESTALE);
	assert_int_equal(ops[1].rc, 0);
	expect_get(S, "r/1", "\"new\"", VP(2000, 2));
	expect_get(S, "r/2", "\"fresh\"", VP(1000, 1));
}

static void test_refused_shapes(void **state)
{
	struct store_op ops[STORE_BATCH_MAX + 1];
	char keys[STORE_BATCH_MAX + 1][16];

	for (int i = 0; i <= STORE_BATCH_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		ops[i] = op_put(keys[i], "1");
	}
	assert_int_equal(store_apply_batch(S, ops, 0, STORE_LOCAL), KVS_EINVAL);
	assert_int_equal(store_apply_batch(S, ops, STORE_BATCH_MAX + 1, STORE_LOCAL), KVS_EINVAL);
	ops[1] = op_put("k0", "2"); /* one path twice */
	assert_int_equal(store_apply_batch(S, ops, 3, STORE_LOCAL), KVS_EINVAL);
	assert_false(exists(S, "k0"));
	ops[1] = op_put(keys[1], "1");
	must(store_apply_batch(S, ops, STORE_BATCH_MAX, STORE_LOCAL));
	assert_true(exists(S, "k127"));
}

static void test_failed_write_leaves_no_trace(void **state)
{
	struct store_op ops[2] = { op_put("f/1", "1"), op_put("f/2", "2") };
	struct store_stats st;
	struct kvs_version given = ops[0].rec.v;

	store_changes_enable(S, 1000);
	uint64_t before = store_index(S);
	atomic_store(&fault_write, true);
	assert_int_equal(store_apply_batch(S, ops, 2, STORE_LOCAL), KVS_EIO);
	atomic_store(&fault_write, false);
	assert_false(exists(S, "f/1"));
	assert_false(exists(S, "f/2"));
	assert_memory_equal(&ops[0].rec.v, &given, sizeof(given));
	store_stats(S, &st);
	assert_int_equal(st.keys, 0);
	/* the indexes it took are finished as a gap: the index moves on */
	must(store_apply_batch(S, ops, 2, STORE_LOCAL));
	assert_true(store_index(S) >= before + 2);
}

/* ------------------------------------------------------------ listeners */

struct heard {
	int single, batches;
	size_t batch_writes;
};

static void on_one(void *ctx, const char *path, size_t len, const struct kvs_record *rec,
		   enum store_origin origin)
{
	(void)path, (void)len, (void)rec, (void)origin;
	((struct heard *)ctx)->single++;
}

static void on_batch(void *ctx, const struct store_op *ops, size_t n, enum store_origin origin)
{
	struct heard *h = ctx;

	(void)origin;
	h->batches++;
	for (size_t i = 0; i < n; i++)
		h->batch_writes += ops[i].rc == 0 && !ops[i].check;
}

static void test_batch_listener(void **state)
{
	struct heard h = { 0 };
	struct store_op ops[3] = { op_put("l/1", "1"), op_put("l/2", "2"),
				   op_check("l/3", STORE_COND_ABSENT) };

	store_set_listener(S, on_one, &h);
	store_set_batch_listener(S, on_batch, &h);
	must(store_apply_batch(S, ops, 3, STORE_LOCAL));
	assert_int_equal(h.batches, 1);
	assert_int_equal(h.batch_writes, 2);
	assert_int_equal(h.single, 0);
	must(put(S, "l/4", "4", NULL)); /* one write: the plain listener */
	assert_int_equal(h.single, 1);
	store_set_listener(S, NULL, NULL);
	store_set_batch_listener(S, NULL, NULL);
}

/* ------------------------------------------------------------ concurrency */

#define T_THREADS 6
#define T_KEYS 10
#define T_ROUNDS 200

struct runner {
	struct store *s;
	int id;
	int failures;
};

static void *run_batches(void *arg)
{
	struct runner *r = arg;
	char keys[T_KEYS][16], value[48];
	struct store_op ops[T_KEYS];
	unsigned seed = (unsigned)r->id * 7919u + 1;

	for (int round = 0; round < T_ROUNDS; round++) {
		int order[T_KEYS];

		for (int i = 0; i < T_KEYS; i++)
			order[i] = i;
		for (int i = T_KEYS - 1; i > 0; i--) { /* shuffle: every order occurs */
			int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		snprintf(value, sizeof(value), "\"%d-%d\"", r->id, round);
		for (int i = 0; i < T_KEYS; i++) {
			snprintf(keys[i], sizeof(keys[i]), "c/%d", order[i]);
			ops[i] = op_put(keys[i], value);
		}
		if (store_apply_batch(r->s, ops, T_KEYS, STORE_LOCAL) != 0)
			r->failures++;
	}
	return NULL;
}

static void test_concurrent_batches_stay_whole(void **state)
{
	pthread_t t[T_THREADS];
	struct runner r[T_THREADS];
	struct store_value first, v;
	char key[16];

	for (int i = 0; i < T_THREADS; i++) {
		r[i] = (struct runner){ .s = S, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, run_batches, &r[i]), 0);
	}
	for (int i = 0; i < T_THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(r[i].failures, 0);
	}
	must(store_get(S, "c/0", 3, &first));
	for (int k = 1; k < T_KEYS; k++) {
		snprintf(key, sizeof(key), "c/%d", k);
		must(store_get(S, key, strlen(key), &v));
		assert_int_equal(v.rec.value_len, first.rec.value_len);
		assert_memory_equal(v.rec.value, first.rec.value, v.rec.value_len);
		store_value_release(&v);
	}
	store_value_release(&first);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_conditions_by_state, batch_setup, batch_teardown),
		cmocka_unit_test_setup_teardown(test_failed_condition_writes_nothing, batch_setup,
						batch_teardown),
		cmocka_unit_test_setup_teardown(test_batch_writes_all_with_consecutive_indexes,
						batch_setup, batch_teardown),
		cmocka_unit_test_setup_teardown(test_local_delete_of_absent_is_skipped, batch_setup,
						batch_teardown),
		cmocka_unit_test_setup_teardown(test_remote_batch_skips_stale, batch_setup,
						batch_teardown),
		cmocka_unit_test_setup_teardown(test_refused_shapes, batch_setup, batch_teardown),
		cmocka_unit_test_setup_teardown(test_failed_write_leaves_no_trace, batch_setup,
						batch_teardown),
		cmocka_unit_test_setup_teardown(test_batch_listener, batch_setup, batch_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_batches_stay_whole, batch_setup,
						batch_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
