/*
 * test_wire.c - records on the wire: wire_record_add() output parsed back
 * by wire_items_parse() (values with every escape, pairs, tombstones), the
 * strict per-item refusals (key, uuid, nil uuid, timestamp, tombstone flag
 * and value, missing or bad value, size cap), each leaving out that item
 * alone and counting it in *refused with the first reason in *why, the
 * whole-batch refusals (non-array, item count), and wire_get_i64().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "kvs.h"
#include "json.h"
#include "wire.h"

#define MAXV 1000 /* max_value used unless a test says otherwise */

static const char *const UUID1 = "0f8fad5b-d9cb-469f-a165-70867728950e";

static struct kvs_record rec_of(int64_t ts, bool tomb, const char *value)
{
	struct kvs_record r = { 0 };

	memset(&r, 0, sizeof(r));
	r.v.ts = ts;
	for (int i = 0; i < 16; i++)
		r.v.id[i] = (uint8_t)(i * 17 + ts);
	r.tombstone = tomb;
	r.value = value;
	r.value_len = value ? strlen(value) : 0;
	return r;
}

/* Parses text as JSON; the caller deletes. */
static cJSON *parse(const char *text)
{
	cJSON *j = cJSON_Parse(text);

	if (!j) {
		print_error("test JSON does not parse: %s\n", text);
		fail();
	}
	return j;
}

/* A good item, put around a bad one to show that it alone is left out. */
#define GOOD_ITEM "{\"key\":\"good\",\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\"," \
		  "\"timestamp\":7,\"tombstone\":false,\"value\":\"1\"}"

/*
 * Parses arr (the JSON text `text`) and expects it accepted with want_n
 * items kept and want_refused left out, the first named want_why (NULL:
 * not checked; none is expected when want_refused is 0).  Returns the items
 * (caller frees; their strings are borrowed from arr).
 */
static struct wire_item *expect_parsed(const cJSON *arr, const char *text, bool need_values,
				       size_t max_value, size_t want_n, size_t want_refused,
				       const char *want_why)
{
	struct wire_item *items = NULL;
	size_t n = 777, refused = 777;
	const char *why = "untouched";
	int rc = wire_items_parse(arr, max_value, need_values, &items, &n, &refused, &why);

	if (rc != 0) {
		print_error("batch refused whole (%s): %s\n", why, text);
		fail();
	}
	assert_non_null(items);
	if (n != want_n || refused != want_refused) {
		print_error("%s: kept %zu refused %zu (%s), want %zu and %zu\n", text, n, refused,
			    why ? why : "-", want_n, want_refused);
		fail();
	}
	if (!want_refused) {
		assert_null(why);
	} else {
		assert_non_null(why);
		if (want_why && strcmp(why, want_why) != 0) {
			print_error("%s: why \"%s\", want \"%s\"\n", text, why, want_why);
			fail();
		}
	}
	return items;
}

/*
 * Expects the item refused with why: alone in its batch (nothing kept,
 * refused 1), and between two good items (both kept, in order).
 */
static void expect_refused(const char *item, bool need_values, size_t max_value,
			   const char *want_why)
{
	char text[8192];
	struct wire_item *items;
	cJSON *arr;

	snprintf(text, sizeof(text), "[%s]", item);
	arr = parse(text);
	free(expect_parsed(arr, text, need_values, max_value, 0, 1, want_why));
	cJSON_Delete(arr);

	snprintf(text, sizeof(text), "[" GOOD_ITEM ",%s," GOOD_ITEM "]", item);
	arr = parse(text);
	items = expect_parsed(arr, text, need_values, max_value, 2, 1, want_why);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(items[i].klen, 4);
		assert_memory_equal(items[i].key, "good", 4);
		assert_int_equal(items[i].rec.v.ts, 7);
	}
	free(items);
	cJSON_Delete(arr);
}

static void expect_accepted(const char *item, bool need_values)
{
	char text[4096];
	cJSON *arr;

	snprintf(text, sizeof(text), "[%s]", item);
	arr = parse(text);
	free(expect_parsed(arr, text, need_values, MAXV, 1, 0, NULL));
	cJSON_Delete(arr);
}

/* Builds an array of records with wire_record_add and parses it back. */
static void check_round_trip(const char *const *keys, const struct kvs_record *recs, size_t n,
			     bool with_value)
{
	struct buf b;
	struct wire_item *items = NULL;
	size_t got = 0, refused = 9;
	const char *why = NULL;

	buf_init(&b, 1 << 20);
	buf_adds(&b, "[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_adds(&b, ",");
		wire_record_add(&b, keys[i], strlen(keys[i]), &recs[i], with_value);
	}
	buf_adds(&b, "]");
	assert_false(buf_failed(&b));

	cJSON *arr = parse(b.data);
	int rc = wire_items_parse(arr, MAXV, with_value, &items, &got, &refused, &why);
	if (rc != 0 || refused != 0) {
		print_error("refused own output (%s): %s\n", why, b.data);
		fail();
	}
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		const struct wire_item *it = &items[i];

		assert_int_equal(it->klen, strlen(keys[i]));
		assert_memory_equal(it->key, keys[i], it->klen);
		assert_int_equal(it->rec.v.ts, recs[i].v.ts);
		assert_memory_equal(it->rec.v.id, recs[i].v.id, 16);
		assert_int_equal(it->rec.tombstone, recs[i].tombstone);
		if (recs[i].tombstone) {
			assert_true(it->has_value);
			assert_int_equal(it->rec.value_len, 0);
		} else if (with_value) {
			assert_true(it->has_value);
			assert_int_equal(it->rec.value_len, recs[i].value_len);
			assert_memory_equal(it->rec.value, recs[i].value, recs[i].value_len);
		} else {
			assert_false(it->has_value);
			assert_null(it->rec.value);
		}
	}
	free(items);
	cJSON_Delete(arr);
	buf_release(&b);
}

static void test_round_trip_values(void **state)
{
	(void)state;
	const char *keys[] = { "a", "users/42", "caf\xc3\xa9/\xe2\x82\xac", "q\"uo\\te", "x/y/z" };
	struct kvs_record recs[] = {
		rec_of(1, false, "1"),
		rec_of(1700000000000LL, false, "{\"name\":\"A \\\"q\\\" \\\\ \\n\\u0001\",\"n\":[1,2.5e3,null,true]}"),
		rec_of(1700000000001LL, false, "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""),
		rec_of(999999999999999LL, false, "  [ ]  "), /* whitespace kept byte for byte */
		rec_of(42, true, NULL),
	};

	check_round_trip(keys, recs, 5, true);
}

static void test_round_trip_pairs(void **state)
{
	(void)state;
	const char *keys[] = { "a", "b/c", "d" };
	struct kvs_record recs[] = {
		rec_of(10, false, "{\"big\":true}"),
		rec_of(11, true, NULL),
		rec_of(12, false, "[]"),
	};

	check_round_trip(keys, recs, 3, false);

	/* the pair text carries no "value" */
	struct buf b;
	buf_init(&b, 4096);
	wire_record_add(&b, "a", 1, &recs[0], false);
	assert_null(strstr(b.data, "\"value\""));
	assert_non_null(strstr(b.data, "\"tombstone\":false"));
	buf_reset(&b);
	wire_record_add(&b, "b/c", 3, &recs[1], true); /* tombstone: never a value */
	assert_null(strstr(b.data, "\"value\""));
	assert_non_null(strstr(b.data, "\"tombstone\":true"));
	buf_release(&b);
}

static void test_round_trip_exact_text(void **state)
{
	(void)state;
	struct kvs_record r = rec_of(1700000000000LL, false, "{\"a\":1}");
	struct buf b;
	char want[256];

	memcpy(r.v.id, "\x0f\x8f\xad\x5b\xd9\xcb\x46\x9f\xa1\x65\x70\x86\x77\x28\x95\x0e", 16);
	buf_init(&b, 4096);
	wire_record_add(&b, "k", 1, &r, true);
	snprintf(want, sizeof(want),
		 "{\"key\":\"k\",\"uuid\":\"%s\",\"timestamp\":1700000000000,"
		 "\"tombstone\":false,\"value\":\"{\\\"a\\\":1}\"}", UUID1);
	assert_string_equal(b.data, want);
	buf_release(&b);
}

static void test_round_trip_many(void **state)
{
	(void)state;
	enum { N = 500 };
	const char *keys[N];
	char keybuf[N][16];
	struct kvs_record recs[N] = { 0 };

	for (int i = 0; i < N; i++) {
		snprintf(keybuf[i], sizeof(keybuf[i]), "k/%d", i);
		keys[i] = keybuf[i];
		recs[i] = rec_of(1000 + i, i % 7 == 0, i % 7 == 0 ? NULL : "[1,2,3]");
	}
	check_round_trip(keys, recs, N, true);
	check_round_trip(keys, recs, N, false);
}

static void test_empty_array(void **state)
{
	(void)state;
	cJSON *arr = parse("[]");
	struct wire_item *items = NULL;
	size_t n = 5, refused = 5;
	const char *why = "untouched";

	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
	assert_int_equal(n, 0);
	assert_int_equal(refused, 0);
	assert_null(why);
	free(items);
	cJSON_Delete(arr);
}

#define ITEM(key, uuid, ts, tomb, value) \
	"{\"key\":" key ",\"uuid\":" uuid ",\"timestamp\":" ts ",\"tombstone\":" tomb value "}"
#define U "\"0f8fad5b-d9cb-469f-a165-70867728950e\""

static void test_accepts(void **state)
{
	(void)state;
	expect_accepted(ITEM("\"a\"", U, "1", "false", ",\"value\":\"1\""), true);
	expect_accepted(ITEM("\"a\"", U, "999999999999999", "false", ",\"value\":\"1\""), true);
	expect_accepted(ITEM("\"a\"", U, "1", "true", ""), true);
	expect_accepted(ITEM("\"a\"", U, "1", "false", ""), false); /* a pair */
	expect_accepted(ITEM("\"a\"", U, "1e3", "false", ",\"value\":\"1\""), true);
	/* upper-case hex UUID text is still a UUID */
	expect_accepted(ITEM("\"a\"", "\"0F8FAD5B-D9CB-469F-A165-70867728950E\"", "1", "false",
			     ",\"value\":\"1\""), true);
}

static void test_bad_key(void **state)
{
	(void)state;
	const char *why = "bad key";

	expect_refused(ITEM("\"\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a//b\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"/a\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a/\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a/../b\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a/./b\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a\\nb\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a\\u007fb\"", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("1", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("null", U, "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused("{\"uuid\":" U ",\"timestamp\":1,\"tombstone\":false,\"value\":\"1\"}",
		       true, MAXV, why);

	/* over PATH_KEY_MAX (1024) */
	char item[3000], key[1100];
	memset(key, 'k', 1025);
	key[1025] = '\0';
	snprintf(item, sizeof(item),
		 "{\"key\":\"%s\",\"uuid\":" U ",\"timestamp\":1,\"tombstone\":false,"
		 "\"value\":\"1\"}", key);
	expect_refused(item, true, MAXV, why);
	key[1024] = '\0';
	snprintf(item, sizeof(item),
		 "{\"key\":\"%s\",\"uuid\":" U ",\"timestamp\":1,\"tombstone\":false,"
		 "\"value\":\"1\"}", key);
	expect_accepted(item, true);
}

/* A key with an embedded NUL must not be cut at the NUL and accepted. */
/*
 * cJSON turns \u0000 into a real NUL, which would cut a key or value short.
 * Peer bodies are screened with json_has_nul_escape() before cJSON sees them
 * (api_peer.c, peer.c); these check the screen on the item texts.
 */
static void test_key_with_nul(void **state)
{
	const char *t = ITEM("\"a\\u0000b\"", U, "1", "false", ",\"value\":\"1\"");

	(void)state;
	assert_true(json_has_nul_escape(t, strlen(t)));
}

/* A value with an embedded NUL is refused; a value whose own text holds an
 * escaped \u0000 (a JSON string containing one) is carried intact. */
static void test_value_with_nul(void **state)
{
	const char *bad = ITEM("\"a\"", U, "1", "false", ",\"value\":\"1\\u0000junk\"");
	const char *good = ITEM("\"a\"", U, "1", "false", ",\"value\":\"\\\"x\\\\u0000\\\"\"");

	(void)state;
	assert_true(json_has_nul_escape(bad, strlen(bad)));
	assert_false(json_has_nul_escape(good, strlen(good)));
}

static void test_bad_uuid(void **state)
{
	(void)state;
	const char *why = "bad uuid";

	expect_refused(ITEM("\"a\"", "\"\"", "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a\"", "\"0f8fad5b-d9cb-469f-a165-70867728950\"", "1", "false",
			    ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a\"", "\"0f8fad5b-d9cb-469f-a165-70867728950e0\"", "1", "false",
			    ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a\"", "\"0f8fad5b-d9cb-469f-a165-70867728950g\"", "1", "false",
			    ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a\"", "\"0f8fad5bd9cb469fa16570867728950e\"", "1", "false",
			    ",\"value\":\"1\""), true, MAXV, why);
	expect_refused(ITEM("\"a\"", "12", "1", "false", ",\"value\":\"1\""), true, MAXV, why);
	expect_refused("{\"key\":\"a\",\"timestamp\":1,\"tombstone\":false,\"value\":\"1\"}", true,
		       MAXV, why);
}

static void test_bad_timestamp(void **state)
{
	(void)state;
	const char *why = "bad timestamp";
	static const char *const ts[] = {
		"0", "-1", "-1700000000000", "1.5", "0.5", "1700000000000.1",
		"\"1700000000000\"", "null", "true", "18014398509481984" /* 2^54 */,
		"1e300", "-0",
	};
	char item[512];

	for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
		snprintf(item, sizeof(item),
			 "{\"key\":\"a\",\"uuid\":" U ",\"timestamp\":%s,\"tombstone\":false,"
			 "\"value\":\"1\"}", ts[i]);
		expect_refused(item, true, MAXV, why);
	}
	expect_refused("{\"key\":\"a\",\"uuid\":" U ",\"tombstone\":false,\"value\":\"1\"}", true,
		       MAXV, why);
}

static void test_bad_tombstone(void **state)
{
	(void)state;
	expect_refused(ITEM("\"a\"", U, "1", "true", ",\"value\":\"1\""), true, MAXV,
		       "tombstone with a value");
	expect_refused(ITEM("\"a\"", U, "1", "true", ",\"value\":\"1\""), false, MAXV,
		       "tombstone with a value");
	expect_refused(ITEM("\"a\"", U, "1", "true", ",\"value\":null"), true, MAXV,
		       "tombstone with a value");
	expect_refused(ITEM("\"a\"", U, "1", "1", ",\"value\":\"1\""), true, MAXV,
		       "bad tombstone flag");
	expect_refused(ITEM("\"a\"", U, "1", "\"false\"", ",\"value\":\"1\""), true, MAXV,
		       "bad tombstone flag");
	expect_refused("{\"key\":\"a\",\"uuid\":" U ",\"timestamp\":1,\"value\":\"1\"}", true, MAXV,
		       "bad tombstone flag");
}

static void test_bad_value(void **state)
{
	(void)state;
	expect_refused(ITEM("\"a\"", U, "1", "false", ""), true, MAXV, "missing value");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"value\":1"), true, MAXV,
		       "value is not a string");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"value\":null"), false, MAXV,
		       "value is not a string");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"value\":{}"), true, MAXV,
		       "value is not a string");
	static const char *const bad_json[] = {
		"", " ", "{", "[1,]", "{'a':1}", "tru", "01", "1 2", "\\\"unterminated",
		"NaN", "\\\"\\u0001\\\"", /* raw control char inside a string */
		"{\\\"a\\\":1}}",
	};
	char item[512];
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		snprintf(item, sizeof(item),
			 "{\"key\":\"a\",\"uuid\":" U ",\"timestamp\":1,\"tombstone\":false,"
			 "\"value\":\"%s\"}", bad_json[i]);
		expect_refused(item, true, MAXV, "value is not valid JSON");
		expect_refused(item, false, MAXV, "value is not valid JSON");
	}
}

static void test_value_cap(void **state)
{
	(void)state;
	char item[512];
	char v[200];

	/* "[1,1,...]" of exactly 101 bytes */
	v[0] = '[';
	size_t n = 1;
	while (n < 98) {
		v[n++] = '1';
		v[n++] = ',';
	}
	v[n++] = '1';
	v[n++] = ']';
	v[n] = '\0';
	assert_int_equal(n, 101);
	snprintf(item, sizeof(item),
		 "{\"key\":\"a\",\"uuid\":" U ",\"timestamp\":1,\"tombstone\":false,"
		 "\"value\":\"%s\"}", v);
	expect_refused(item, true, 100, "value larger than max_value_bytes");

	cJSON *arr;
	char text[600];
	struct wire_item *items = NULL;
	size_t got = 0, refused = 9;
	const char *why = NULL;
	snprintf(text, sizeof(text), "[%s]", item);
	arr = parse(text);
	/* at the cap */
	assert_int_equal(wire_items_parse(arr, 101, true, &items, &got, &refused, &why), 0);
	assert_int_equal(got, 1);
	assert_int_equal(refused, 0);
	assert_int_equal(items[0].rec.value_len, 101);
	free(items);
	cJSON_Delete(arr);
}

/* Parses arr expecting the whole batch refused with why; nothing handed out. */
static void expect_batch_refused(const cJSON *arr, const char *want_why)
{
	struct wire_item *items = (struct wire_item *)0x1;
	size_t n = 777, refused = 777;
	const char *why = NULL;

	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), KVS_EINVAL);
	assert_string_equal(why, want_why);
	assert_ptr_equal(items, (struct wire_item *)0x1);
	assert_int_equal(n, 777);
	assert_int_equal(refused, 0); /* no item was looked at */
}

static void test_not_array(void **state)
{
	(void)state;
	static const char *const texts[] = { "{}", "{\"items\":[]}", "1", "\"[]\"", "null",
					     "{\"0\":" GOOD_ITEM "}" };

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		cJSON *j = parse(texts[i]);

		expect_batch_refused(j, "items is not an array");
		cJSON_Delete(j);
	}
	expect_batch_refused(NULL, "items is not an array");

	/* non-object items: refused one by one */
	expect_refused("1", true, MAXV, "item is not an object");
	expect_refused("[]", true, MAXV, "item is not an object");
	expect_refused("\"a\"", true, MAXV, "item is not an object");
	expect_refused("null", true, MAXV, "item is not an object");
	expect_refused("[" GOOD_ITEM "]", true, MAXV, "item is not an object");
}

/* Builds an array of n copies of one good item. */
static cJSON *array_of(size_t n)
{
	cJSON *arr = cJSON_CreateArray();

	assert_non_null(arr);
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();
		char key[32];

		snprintf(key, sizeof(key), "k%zu", i);
		cJSON_AddStringToObject(o, "key", key);
		cJSON_AddStringToObject(o, "uuid", UUID1);
		cJSON_AddNumberToObject(o, "timestamp", (double)(i + 1));
		cJSON_AddBoolToObject(o, "tombstone", 0);
		cJSON_AddStringToObject(o, "value", "true");
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

static void test_too_many(void **state)
{
	(void)state;
	struct wire_item *items = NULL;
	size_t n = 0, refused = 9;
	const char *why = NULL;
	cJSON *arr = array_of(WIRE_MAX_ITEMS);

	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
	assert_int_equal(n, WIRE_MAX_ITEMS);
	assert_int_equal(refused, 0);
	assert_int_equal(items[WIRE_MAX_ITEMS - 1].rec.v.ts, WIRE_MAX_ITEMS);
	free(items);

	/* one over: refused whole, even though every item is good */
	cJSON *o = cJSON_Duplicate(cJSON_GetArrayItem(arr, 0), 1);
	cJSON_AddItemToArray(arr, o);
	expect_batch_refused(arr, "too many items");

	/* one over with a bad item: still refused whole, not counted per item */
	cJSON_ReplaceItemInObjectCaseSensitive(o, "timestamp", cJSON_CreateNumber(-5));
	expect_batch_refused(arr, "too many items");
	cJSON_Delete(arr);
}

/* One bad item among good ones: the good ones are kept, in order. */
static void test_bad_item_left_out(void **state)
{
	(void)state;
	/* the bad item first, in the middle, last */
	for (int pos = 0; pos < 3; pos++) {
		cJSON *arr = array_of(50);
		int at = pos == 0 ? 0 : pos == 1 ? 25 : 49;
		cJSON *bad = cJSON_GetArrayItem(arr, at);
		struct wire_item *items = NULL;
		size_t n = 777, refused = 777;
		const char *why = NULL;

		cJSON_ReplaceItemInObjectCaseSensitive(bad, "timestamp", cJSON_CreateNumber(-5));
		assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
		assert_int_equal(n, 49);
		assert_int_equal(refused, 1);
		assert_string_equal(why, "bad timestamp");
		for (int i = 0, j = 0; i < 50; i++) {
			char key[32];

			if (i == at)
				continue;
			snprintf(key, sizeof(key), "k%d", i);
			assert_int_equal(items[j].klen, strlen(key));
			assert_memory_equal(items[j].key, key, items[j].klen);
			assert_int_equal(items[j].rec.v.ts, i + 1);
			j++;
		}
		free(items);
		cJSON_Delete(arr);
	}
}

/* Several bad items of different kinds: each counted, the first named. */
static void test_bad_items_counted(void **state)
{
	(void)state;
	cJSON *arr = array_of(10);
	struct wire_item *items = NULL;
	size_t n = 0, refused = 0;
	const char *why = NULL;

	cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(arr, 2), "uuid",
					       cJSON_CreateString("not-a-uuid"));
	cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(arr, 5), "key",
					       cJSON_CreateString("a//b"));
	cJSON_ReplaceItemInObjectCaseSensitive(cJSON_GetArrayItem(arr, 7), "uuid",
					       cJSON_CreateString("00000000-0000-0000-0000-000000000000"));
	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
	assert_int_equal(n, 7);
	assert_int_equal(refused, 3);
	assert_string_equal(why, "bad uuid"); /* item 2, the first bad one */
	static const int kept[] = { 0, 1, 3, 4, 6, 8, 9 };
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(items[i].rec.v.ts, kept[i] + 1);
	free(items);

	/* every item bad: an empty batch, not a refused one */
	cJSON_Delete(arr);
	arr = parse("[1,2,3," GOOD_ITEM "]");
	cJSON_DeleteItemFromArray(arr, 3);
	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
	assert_non_null(items);
	assert_int_equal(n, 0);
	assert_int_equal(refused, 3);
	assert_string_equal(why, "item is not an object");
	free(items);
	cJSON_Delete(arr);
}

/* The nil UUID (all zero bits) is never a real version: refused per item. */
static void test_nil_uuid(void **state)
{
	(void)state;
	expect_refused(ITEM("\"a\"", "\"00000000-0000-0000-0000-000000000000\"", "1", "false",
			    ",\"value\":\"1\""), true, MAXV, "nil uuid");
	expect_refused(ITEM("\"a\"", "\"00000000-0000-0000-0000-000000000000\"", "1", "true", ""),
		       true, MAXV, "nil uuid");
	expect_refused(ITEM("\"a\"", "\"00000000-0000-0000-0000-000000000000\"", "1", "false", ""),
		       false, MAXV, "nil uuid");
	/* one bit set is a UUID like any other */
	expect_accepted(ITEM("\"a\"", "\"00000000-0000-0000-0000-000000000001\"", "1", "false",
			     ",\"value\":\"1\""), true);
	expect_accepted(ITEM("\"a\"", "\"80000000-0000-0000-0000-000000000000\"", "1", "false",
			     ",\"value\":\"1\""), true);
}

/* "origin" (the writer's node_id) is optional; one that is no node_id
 * refuses its record alone; it travels through a round trip. */
static void test_origin(void **state)
{
	struct kvs_record r = rec_of(1700000000000LL, false, "1");
	struct wire_item *items = NULL;
	size_t n = 0, refused = 0;
	const char *why = NULL;
	struct buf b;
	cJSON *arr;

	(void)state;
	expect_accepted(ITEM("\"a\"", U, "1", "false", ",\"origin\":\"node-1.x\",\"value\":\"1\""),
			true);
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"origin\":\"no spaces\",\"value\":\"1\""),
		       true, MAXV, "bad origin");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"origin\":7,\"value\":\"1\""), true, MAXV,
		       "bad origin");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"origin\":\"\",\"value\":\"1\""), true,
		       MAXV, "bad origin");

	r.origin = "node7";
	r.origin_len = 5;
	buf_init(&b, 1 << 16);
	buf_add(&b, "[", 1);
	wire_record_add(&b, "k", 1, &r, true);
	buf_add(&b, "]", 1);
	arr = parse(b.data);
	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(items[0].rec.origin_len, 5);
	assert_memory_equal(items[0].rec.origin, "node7", 5);
	free(items);
	cJSON_Delete(arr);
	buf_release(&b);
}

/* A transaction's records carry "txn": a positive integer, kept on parse;
 * anything else refuses the record alone. */
static void test_txn(void **state)
{
	struct kvs_record r = rec_of(1700000000000LL, false, "1");
	struct wire_item *items = NULL;
	size_t n = 0, refused = 0;
	const char *why = NULL;
	struct buf b;
	cJSON *arr;

	(void)state;
	expect_accepted(ITEM("\"a\"", U, "1", "false", ",\"txn\":12,\"value\":\"1\""), true);
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"txn\":0,\"value\":\"1\""), true, MAXV,
		       "bad txn");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"txn\":-3,\"value\":\"1\""), true,
		       MAXV, "bad txn");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"txn\":\"7\",\"value\":\"1\""), true,
		       MAXV, "bad txn");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"txn\":1.5,\"value\":\"1\""), true,
		       MAXV, "bad txn");

	buf_init(&b, 1 << 16);
	buf_add(&b, "[", 1);
	wire_record_add_txn(&b, "k", 1, &r, true, 77);
	buf_add(&b, ",", 1);
	wire_record_add(&b, "j", 1, &r, true);
	buf_add(&b, "]", 1);
	arr = parse(b.data);
	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
	assert_int_equal(n, 2);
	assert_int_equal(items[0].txn, 77);
	assert_int_equal(items[1].txn, 0);
	free(items);
	cJSON_Delete(arr);
	buf_release(&b);
}

/* "expires" on a value: kept on parse and written back; on a tombstone, 0,
 * negative or not a number: the record alone is refused. */
static void test_expires(void **state)
{
	struct kvs_record r = rec_of(1700000000000LL, false, "1");
	struct wire_item *items = NULL;
	size_t n = 0, refused = 0;
	const char *why = NULL;
	struct buf b;
	cJSON *arr;

	(void)state;
	expect_accepted(ITEM("\"a\"", U, "1", "false", ",\"expires\":1700000030000,\"value\":\"1\""),
			true);
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"expires\":0,\"value\":\"1\""), true,
		       MAXV, "bad expires");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"expires\":-5,\"value\":\"1\""), true,
		       MAXV, "bad expires");
	expect_refused(ITEM("\"a\"", U, "1", "false", ",\"expires\":\"soon\",\"value\":\"1\""),
		       true, MAXV, "bad expires");
	expect_refused(ITEM("\"a\"", U, "1", "true", ",\"expires\":1700000030000"), true, MAXV,
		       "bad expires");

	r.expires = 1700000030000LL;
	buf_init(&b, 1 << 16);
	buf_add(&b, "[", 1);
	wire_record_add(&b, "k", 1, &r, true);
	buf_add(&b, "]", 1);
	arr = parse(b.data);
	assert_int_equal(wire_items_parse(arr, MAXV, true, &items, &n, &refused, &why), 0);
	assert_int_equal(n, 1);
	assert_int_equal(items[0].rec.expires, 1700000030000LL);
	free(items);
	cJSON_Delete(arr);
	buf_release(&b);
}

static void test_get_i64(void **state)
{
	(void)state;
	cJSON *o = parse("{\"a\":0,\"b\":1700000000000,\"c\":-1,\"d\":1.25,\"e\":\"5\","
			 "\"f\":999999999999999,\"g\":1000000000000000,\"h\":null}");
	int64_t v = 99;

	assert_true(wire_get_i64(o, "a", &v));
	assert_int_equal(v, 0);
	assert_true(wire_get_i64(o, "b", &v));
	assert_int_equal(v, 1700000000000LL);
	assert_true(wire_get_i64(o, "f", &v));
	assert_int_equal(v, 999999999999999LL); /* the largest: 15 digits travel exactly */
	v = 99;
	assert_false(wire_get_i64(o, "c", &v));
	assert_false(wire_get_i64(o, "d", &v));
	assert_false(wire_get_i64(o, "e", &v));
	assert_false(wire_get_i64(o, "g", &v));
	assert_false(wire_get_i64(o, "h", &v));
	assert_false(wire_get_i64(o, "missing", &v));
	assert_int_equal(v, 99); /* untouched on failure */
	cJSON_Delete(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_values),
		cmocka_unit_test(test_round_trip_pairs),
		cmocka_unit_test(test_round_trip_exact_text),
		cmocka_unit_test(test_round_trip_many),
		cmocka_unit_test(test_empty_array),
		cmocka_unit_test(test_accepts),
		cmocka_unit_test(test_bad_key),
		cmocka_unit_test(test_key_with_nul),
		cmocka_unit_test(test_value_with_nul),
		cmocka_unit_test(test_bad_uuid),
		cmocka_unit_test(test_bad_timestamp),
		cmocka_unit_test(test_bad_tombstone),
		cmocka_unit_test(test_bad_value),
		cmocka_unit_test(test_value_cap),
		cmocka_unit_test(test_not_array),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_bad_item_left_out),
		cmocka_unit_test(test_bad_items_counted),
		cmocka_unit_test(test_nil_uuid),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_txn),
		cmocka_unit_test(test_expires),
		cmocka_unit_test(test_get_i64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
