/*
 * test_clock.c - what a ping answer reports of a peer (clock.h): the
 * status fields are read strictly, since they come from the network, and
 * kept per peer beside its clock offset for /members/.
 *
 * clock_status_parse() takes "mode" (one of normal, syncing, read-only),
 * "keys", "latest_ts" and "push_queue" (integers 0..10^15-1, no fraction);
 * anything else, or any field missing, refuses the whole status and leaves
 * the output untouched.  clock_status_json() writes what parse reads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"

static struct kvs_node node; /* only node.clocks is used */

static bool parse_text(const char *text, struct clock_status *st)
{
	cJSON *o = cJSON_Parse(text);
	bool ok;

	assert_non_null(o);
	ok = clock_status_parse(o, st);
	cJSON_Delete(o);
	return ok;
}

static void test_parse_valid(void **state)
{
	struct clock_status st;

	(void)state;
	assert_true(parse_text("{\"mode\":\"read-only\",\"keys\":12,\"latest_ts\":1700000000000,"
			       "\"push_queue\":3,\"clock\":1,\"member\":{}}", &st));
	assert_int_equal(st.mode, MODE_READ_ONLY);
	assert_int_equal(st.keys, 12);
	assert_int_equal(st.latest_ts, 1700000000000LL);
	assert_int_equal(st.push_queue, 3);
	assert_true(st.at_ms > 0);
}

static void test_parse_refuses_bad_fields(void **state)
{
	static const char *const bad[] = {
		"{\"keys\":1,\"latest_ts\":1,\"push_queue\":0}",                    /* no mode */
		"{\"mode\":\"normal\",\"latest_ts\":1,\"push_queue\":0}",           /* no keys */
		"{\"mode\":\"normal\",\"keys\":1,\"push_queue\":0}",                /* no latest_ts */
		"{\"mode\":\"normal\",\"keys\":1,\"latest_ts\":1}",                 /* no push_queue */
		"{\"mode\":\"broken\",\"keys\":1,\"latest_ts\":1,\"push_queue\":0}",
		"{\"mode\":7,\"keys\":1,\"latest_ts\":1,\"push_queue\":0}",
		"{\"mode\":\"normal\",\"keys\":-1,\"latest_ts\":1,\"push_queue\":0}",
		"{\"mode\":\"normal\",\"keys\":1.5,\"latest_ts\":1,\"push_queue\":0}",
		"{\"mode\":\"normal\",\"keys\":\"1\",\"latest_ts\":1,\"push_queue\":0}",
		"{\"mode\":\"normal\",\"keys\":1,\"latest_ts\":1e300,\"push_queue\":0}",
		"{\"mode\":\"normal\",\"keys\":1,\"latest_ts\":1000000000000000,\"push_queue\":0}",
		"{\"mode\":\"normal\",\"keys\":1,\"latest_ts\":1,\"push_queue\":null}",
	};
	struct clock_status st = { .mode = 99, .keys = 42 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(parse_text(bad[i], &st));
		assert_int_equal(st.mode, 99); /* untouched */
		assert_int_equal(st.keys, 42);
	}
}

static void test_json_round_trip(void **state)
{
	struct clock_status in = { .mode = MODE_SYNCING, .keys = 5, .latest_ts = 77,
				   .push_queue = 9, .at_ms = 1 }, out;
	cJSON *o = cJSON_CreateObject();

	(void)state;
	clock_status_json(&in, o);
	assert_true(clock_status_parse(o, &out));
	assert_int_equal(out.mode, in.mode);
	assert_int_equal(out.keys, in.keys);
	assert_int_equal(out.latest_ts, in.latest_ts);
	assert_int_equal(out.push_queue, in.push_queue);
	cJSON_Delete(o);
}

static void test_set_and_get_per_peer(void **state)
{
	struct clock_status a = { .mode = MODE_NORMAL, .keys = 1, .at_ms = 10 };
	struct clock_status b = { .mode = MODE_SYNCING, .keys = 2, .at_ms = 20 };
	struct clock_status got;
	int64_t off;

	(void)state;
	node.clocks = clocks_new();
	assert_non_null(node.clocks);
	assert_false(clock_status_get(&node, "n2", &got));
	clock_status_set(&node, "n2", &a);
	clock_status_set(&node, "n3", &b);
	assert_true(clock_status_get(&node, "n2", &got));
	assert_int_equal(got.keys, 1);
	assert_true(clock_status_get(&node, "n3", &got));
	assert_int_equal(got.mode, MODE_SYNCING);
	/* a status alone is no clock sample: the offset stays unknown */
	assert_false(clock_offset(&node, "n2", &off));
	clock_status_set(&node, "n2", &b);
	assert_true(clock_status_get(&node, "n2", &got));
	assert_int_equal(got.keys, 2);
	clocks_free(node.clocks);
	node.clocks = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_refuses_bad_fields),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_set_and_get_per_peer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
