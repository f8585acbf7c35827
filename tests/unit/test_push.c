/*
 * test_push.c - the push message of push.h: what push_begin/add/end write
 * is read back the way the receiver reads it (member_from_json() for
 * "from", wire_items_parse() for "items"), the exact text of each kind
 * (replication has no "kind"; anti-entropy says so), an empty message,
 * the cap, and member_to_json(), the one writer of a member object.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "member.h"
#include "push.h"
#include "wire.h"

static struct member sender(enum member_status status)
{
	struct member m;

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "node1");
	snprintf(m.address, sizeof(m.address), "127.0.0.1:8081");
	m.joined_ts = 1700000000000LL;
	m.incarnation = 1700000000500LL;
	m.last_seen = 1700000001000LL;
	m.status = status;
	return m;
}

static struct kvs_record rec_of(int64_t ts, const char *value)
{
	struct kvs_record r = { 0 };

	memset(&r, 0, sizeof(r));
	r.v.ts = ts;
	memset(r.v.id, 0x42, sizeof(r.v.id));
	r.tombstone = value == NULL;
	r.value = value;
	r.value_len = value ? strlen(value) : 0;
	return r;
}

/* Builds a message of kind holding keys/recs; returns its text (caller frees). */
static char *build(enum sync_kind kind, const char *const *keys, const struct kvs_record *recs,
		   size_t n)
{
	struct member from = sender(MEMBER_ALIVE);
	struct push_msg m;
	char *text;

	push_begin(&m, 1 << 20, &from, kind);
	for (size_t i = 0; i < n; i++)
		push_add(&m, keys[i], strlen(keys[i]), &recs[i]);
	assert_int_equal(m.n, n);
	assert_int_equal(push_end(&m), 0);
	text = strndup(m.body.data, m.body.len);
	assert_non_null(text);
	push_release(&m);
	return text;
}

/* What a receiver reads back: the sender and every record, values included. */
static void test_read_back(void **state)
{
	const char *keys[] = { "a", "users/\"q\"", "gone" };
	struct kvs_record recs[] = { rec_of(10, "{\"x\":[1,2]}"), rec_of(11, "\"caf\xc3\xa9\""),
				     rec_of(12, NULL) };
	char *text = build(SYNC_PUSH, keys, recs, 3);
	cJSON *msg = cJSON_Parse(text);
	struct member from, want = sender(MEMBER_ALIVE);
	struct wire_item *items;
	size_t n, refused;
	const char *why;

	(void)state;
	assert_non_null(msg);
	assert_int_equal(member_from_json(cJSON_GetObjectItemCaseSensitive(msg, "from"), &from), 0);
	assert_string_equal(from.id, want.id);
	assert_string_equal(from.address, want.address);
	assert_int_equal(from.joined_ts, want.joined_ts);
	assert_int_equal(from.incarnation, want.incarnation);
	assert_int_equal(from.last_seen, want.last_seen);
	assert_int_equal(from.status, MEMBER_ALIVE);
	assert_null(cJSON_GetObjectItemCaseSensitive(msg, "kind"));
	assert_int_equal(wire_items_parse(cJSON_GetObjectItemCaseSensitive(msg, "items"), 1000,
					  true, &items, &n, &refused, &why), 0);
	assert_int_equal(n, 3);
	assert_int_equal(refused, 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(items[i].klen, strlen(keys[i]));
		assert_memory_equal(items[i].key, keys[i], items[i].klen);
		assert_int_equal(items[i].rec.v.ts, recs[i].v.ts);
		assert_int_equal(items[i].rec.tombstone, recs[i].tombstone);
		assert_int_equal(items[i].rec.value_len, recs[i].value_len);
		if (recs[i].value_len)
			assert_memory_equal(items[i].rec.value, recs[i].value, recs[i].value_len);
	}
	free(items);
	cJSON_Delete(msg);
	free(text);
}

/* The exact text: "from" first, "kind" only for anti-entropy, then "items". */
static void test_exact_text(void **state)
{
	const char *keys[] = { "k" };
	struct kvs_record recs[] = { rec_of(5, "1") };
	const char *from = "{\"from\":{\"id\":\"node1\",\"address\":\"127.0.0.1:8081\","
			   "\"last_seen\":1700000001000,\"joined_timestamp\":1700000000000,"
			   "\"status\":\"alive\",\"incarnation\":1700000000500}";
	const char *item = "{\"key\":\"k\",\"uuid\":\"42424242-4242-4242-4242-424242424242\","
			   "\"timestamp\":5,\"tombstone\":false,\"value\":\"1\"}";
	char want[1024];
	char *text;

	(void)state;
	text = build(SYNC_PUSH, keys, recs, 1);
	snprintf(want, sizeof(want), "%s,\"items\":[%s]}", from, item);
	assert_string_equal(text, want);
	free(text);

	text = build(SYNC_ANTI_ENTROPY, keys, recs, 1);
	snprintf(want, sizeof(want), "%s,\"kind\":\"anti_entropy\",\"items\":[%s]}", from, item);
	assert_string_equal(text, want);
	free(text);

	text = build(SYNC_PUSH, keys, recs, 0);
	snprintf(want, sizeof(want), "%s,\"items\":[]}", from);
	assert_string_equal(text, want);
	free(text);
}

/* Past the cap, push_end() reports it and nothing is sent. */
static void test_cap(void **state)
{
	struct member from = sender(MEMBER_ALIVE);
	struct kvs_record r = rec_of(5, "[1,2,3,4,5,6,7,8,9]");
	struct push_msg m;

	(void)state;
	push_begin(&m, 300, &from, SYNC_PUSH);
	for (int i = 0; i < 5; i++)
		push_add(&m, "key", 3, &r);
	assert_int_equal(push_end(&m), KVS_ETOOBIG);
	push_release(&m);

	/* the buffer can be started again after a release */
	push_begin(&m, 4096, &from, SYNC_PUSH);
	push_add(&m, "key", 3, &r);
	assert_int_equal(push_end(&m), 0);
	push_release(&m);
}

/* A suspect member is shown alive with "suspect": true; a left one as left. */
static void test_member_to_json(void **state)
{
	struct member m = sender(MEMBER_SUSPECT), back;
	cJSON *o = member_to_json(&m);

	(void)state;
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "status")->valuestring, "alive");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "suspect")));
	assert_int_equal(member_from_json(o, &back), 0);
	assert_int_equal(back.status, MEMBER_ALIVE);
	cJSON_Delete(o);

	m.status = MEMBER_LEFT;
	o = member_to_json(&m);
	assert_non_null(o);
	assert_null(cJSON_GetObjectItemCaseSensitive(o, "suspect"));
	assert_int_equal(member_from_json(o, &back), 0);
	assert_int_equal(back.status, MEMBER_LEFT);
	cJSON_Delete(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_back),
		cmocka_unit_test(test_exact_text),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_member_to_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
