/*
 * test_apply.c - apply.h, the one way in for peer data, on a real store
 * (store_fixture.h) with the conflict resolver replaced by a stub that
 * records what is submitted to it (the seam: conflict_submit()).
 *
 * A batch mixing every outcome (newer, new, tombstone, same-timestamp
 * conflict, stale, malformed, stamped too far ahead) is applied and each
 * outcome is counted where it belongs: the caller's apply_counts, the
 * metrics of its sync kind, refused records, the resolver's queue, and the
 * store itself.  A batch that is not an array is refused whole with
 * nothing counted; pages of pairs validate without values; a vote's winner
 * replaces only the expected loser.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "buf.h"
#include "conflict.h"
#include "version.h"
#include "wire.h"

#include "store_fixture.h"

static struct kvs_node node; /* large (metrics): not on a stack */

/* ------------------------------------------------- conflict resolver stub */

static char submitted[8][64];
static size_t nsubmitted;

void conflict_submit(struct kvs_node *n, const char *path, size_t len)
{
	assert_ptr_equal(n, &node);
	assert_true(nsubmitted < 8 && len < 64);
	memcpy(submitted[nsubmitted], path, len);
	submitted[nsubmitted++][len] = '\0';
}

/* ------------------------------------------------------------- fixture */

static int node_setup(void **state)
{
	setup(state);
	memset(&node, 0, sizeof(node));
	node.store = S;
	node.cfg.max_value_bytes = 1000;
	nsubmitted = 0;
	return 0;
}

static int node_teardown(void **state)
{
	return teardown(state);
}

/* Parses "[" items "]" built from records (and raw extra text). */
static cJSON *batch_of(const char *const *keys, const struct kvs_record *recs, size_t n,
		       const char *extra)
{
	struct buf b;
	cJSON *arr;

	buf_init(&b, 1 << 20);
	buf_adds(&b, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_adds(&b, ",");
		wire_record_add(&b, keys[i], strlen(keys[i]), &recs[i], true);
	}
	if (extra) {
		buf_adds(&b, n ? "," : "");
		buf_adds(&b, extra);
	}
	buf_adds(&b, "]");
	assert_false(buf_failed(&b));
	arr = cJSON_Parse(b.data);
	assert_non_null(arr);
	buf_release(&b);
	return arr;
}

#define METRIC(field) atomic_load(&node.metrics.field)

/* ---------------------------------------------------------------- tests */

/* One batch, every outcome, each counted once where it belongs. */
static void test_batch_outcomes(void **state)
{
	int64_t ahead = version_now_ms() + VERSION_FUTURE_MAX_MS + 3600 * 1000;
	const char *keys[] = { "a", "b", "e", "c", "d", "f" };
	struct kvs_record recs[] = {
		at(200, 1, "\"newer\""),   /* a: stored at 100 -> applied */
		at(150, 1, "[1]"),         /* b: absent -> applied */
		at(160, 1, NULL),          /* e: a tombstone -> applied */
		at(100, 3, "\"other\""),   /* c: same ts, other UUID -> conflict */
		at(200, 1, "\"older\""),   /* d: stored at 300 -> stale */
		at(ahead, 1, "1"),         /* f: too far ahead -> refused alone */
	};
	struct apply_counts cnt = { 0 };
	const char *why = NULL;

	must(remote(S, "a", at(100, 1, "\"old\""), NULL));
	must(remote(S, "c", at(100, 2, "\"mine\""), NULL));
	must(remote(S, "d", at(300, 1, "\"kept\""), NULL));
	cJSON *arr = batch_of(keys, recs, 6, "{\"key\":\"g\",\"uuid\":\"nope\",\"timestamp\":5,"
			      "\"tombstone\":false,\"value\":\"1\"}");

	assert_int_equal(apply_batch(&node, "peer1", arr, SYNC_PUSH, &cnt, &why), 0);
	assert_int_equal(cnt.applied, 3);
	assert_int_equal(cnt.stale, 1);
	assert_int_equal(cnt.conflicts, 1);
	assert_int_equal(cnt.refused, 2); /* the malformed one and the one ahead */
	assert_int_equal(cnt.failed, 0);

	assert_int_equal(METRIC(items_fetched[SYNC_PUSH]), 6); /* the valid records */
	assert_int_equal(METRIC(items_applied[SYNC_PUSH]), 3);
	assert_int_equal(METRIC(repl_lag_count), 3);           /* pushes measure lag */
	assert_int_equal(METRIC(conflicts_detected), 1);
	assert_int_equal(METRIC(records_refused), 2);
	assert_int_equal(nsubmitted, 1);
	assert_string_equal(submitted[0], "c");

	expect_get(S, "a", "\"newer\"", VP(200, 1));
	expect_get(S, "b", "[1]", VP(150, 1));
	expect_get(S, "e", NULL, VP(160, 1));
	expect_get(S, "c", "\"mine\"", VP(100, 2)); /* left to the vote */
	expect_get(S, "d", "\"kept\"", VP(300, 1));
	expect_absent(S, "f");
	expect_absent(S, "g");
	cJSON_Delete(arr);
}

/* Counts add up over calls; other kinds are counted as themselves. */
static void test_kind_and_sums(void **state)
{
	const char *keys[] = { "k1", "k2" };
	struct kvs_record recs[] = { at(10, 1, "1"), at(11, 1, "2") };
	struct apply_counts cnt = { .applied = 5 };
	const char *why;
	cJSON *arr = batch_of(keys, recs, 2, NULL);

	(void)state;
	assert_int_equal(apply_batch(&node, "p", arr, SYNC_ANTI_ENTROPY, &cnt, &why), 0);
	assert_int_equal(cnt.applied, 7);
	assert_int_equal(apply_batch(&node, "p", arr, SYNC_ANTI_ENTROPY, NULL, &why), 0);
	assert_int_equal(METRIC(items_fetched[SYNC_ANTI_ENTROPY]), 4);
	assert_int_equal(METRIC(items_applied[SYNC_ANTI_ENTROPY]), 2);
	assert_int_equal(METRIC(items_applied[SYNC_PUSH]), 0);
	assert_int_equal(METRIC(repl_lag_count), 0); /* repairs are not replication lag */
	cJSON_Delete(arr);
}

/* A batch that is not an array is refused whole: nothing counted. */
static void test_refused_whole(void **state)
{
	struct apply_counts cnt = { 0 };
	const char *why = NULL;
	cJSON *obj = cJSON_Parse("{\"items\":[]}");

	(void)state;
	assert_int_equal(apply_batch(&node, "p", obj, SYNC_PUSH, &cnt, &why), KVS_EINVAL);
	assert_string_equal(why, "items is not an array");
	assert_int_equal(apply_batch(&node, "p", NULL, SYNC_PUSH, &cnt, &why), KVS_EINVAL);
	assert_memory_equal(&cnt, &(struct apply_counts){ 0 }, sizeof(cnt));
	assert_int_equal(METRIC(items_fetched[SYNC_PUSH]), 0);
	assert_int_equal(METRIC(records_refused), 0);
	cJSON_Delete(obj);
}

/* Pages of pairs validate without values; a push needs them. */
static void test_parse_pairs(void **state)
{
	cJSON *arr = cJSON_Parse("[{\"key\":\"a\",\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\","
				 "\"timestamp\":7,\"tombstone\":false}]");
	struct apply_counts cnt = { 0 };
	struct wire_item *items;
	const char *why;
	size_t n;

	(void)state;
	assert_int_equal(apply_parse(&node, "p", arr, false, &items, &n, &cnt, &why), 0);
	assert_int_equal(n, 1);
	assert_false(items[0].has_value);
	assert_int_equal(cnt.refused, 0);
	free(items);
	assert_int_equal(apply_parse(&node, "p", arr, true, &items, &n, &cnt, &why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(cnt.refused, 1);
	assert_string_equal(why, "missing value");
	assert_int_equal(METRIC(records_refused), 1);
	free(items);
	cJSON_Delete(arr);
}

/* A vote's winner replaces the loser it was voted against, nothing newer. */
static void test_winner(void **state)
{
	struct kvs_record win = at(100, 2, "\"winner\""), late = at(100, 3, "\"late\"");

	must(remote(S, "w", at(100, 1, "\"loser\""), NULL));
	assert_int_equal(apply_winner(&node, "w", 1, &win, VP(100, 1)), 0);
	expect_get(S, "w", "\"winner\"", VP(100, 2));
	assert_int_equal(METRIC(conflicts_resolved), 1);
	assert_int_equal(METRIC(items_applied[SYNC_CONFLICT]), 1);

	/* voted against a version that is no longer there: superseded */
	assert_int_equal(apply_winner(&node, "w", 1, &late, VP(100, 1)), KVS_ESTALE);
	expect_get(S, "w", "\"winner\"", VP(100, 2));
	assert_int_equal(METRIC(conflicts_resolved), 1);

	/* nothing held here: the winner is stored */
	assert_int_equal(apply_winner(&node, "n", 1, &win, NULL), 0);
	expect_get(S, "n", "\"winner\"", VP(100, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_outcomes, node_setup, node_teardown),
		cmocka_unit_test_setup_teardown(test_kind_and_sums, node_setup, node_teardown),
		cmocka_unit_test_setup_teardown(test_refused_whole, node_setup, node_teardown),
		cmocka_unit_test_setup_teardown(test_parse_pairs, node_setup, node_teardown),
		cmocka_unit_test_setup_teardown(test_winner, node_setup, node_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
