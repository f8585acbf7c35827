/*
 * test_record.c - the binary record codec and its big-endian helpers.
 *
 * Round trips of a value, an empty value and a tombstone (checking the
 * documented byte layout), and every refusal of record_decode(): short
 * buffers of each length below the header, unknown format, unknown flag
 * bits and a tombstone carrying bytes; a refused decode leaves out
 * untouched.  Encoded records are decoded from heap buffers of exactly
 * their size so that ASan catches reads past the end.
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
#include "record.h"

static struct kvs_record make(int64_t ts, bool tomb, const char *value)
{
	struct kvs_record r = { 0 };

	memset(&r, 0, sizeof(r));
	r.v.ts = ts;
	for (int i = 0; i < 16; i++)
		r.v.id[i] = (uint8_t)(0xf0 + i);
	r.tombstone = tomb;
	r.value = value;
	r.value_len = value ? strlen(value) : 0;
	return r;
}

/* Encodes r into an exact-size heap buffer; caller frees. */
static uint8_t *encode(const struct kvs_record *r, size_t *len)
{
	*len = record_size(r);
	uint8_t *buf = malloc(*len);

	assert_non_null(buf);
	record_encode(r, buf);
	return buf;
}

static void check_round_trip(const struct kvs_record *r)
{
	size_t len;
	uint8_t *buf = encode(r, &len);
	struct kvs_record out;

	assert_int_equal(len, RECORD_HEADER + (r->tombstone ? 0 : r->value_len));
	assert_int_equal(buf[0], RECORD_FORMAT_V1);
	assert_int_equal(buf[1], r->tombstone ? RECORD_TOMBSTONE : 0);
	assert_int_equal(record_get_be64(buf + 2), (uint64_t)r->v.ts);
	assert_memory_equal(buf + 10, r->v.id, 16);

	memset(&out, 0x77, sizeof(out));
	assert_int_equal(record_decode(buf, len, &out), 0);
	assert_int_equal(out.v.ts, r->v.ts);
	assert_memory_equal(out.v.id, r->v.id, 16);
	assert_int_equal(out.tombstone, r->tombstone);
	if (r->tombstone) {
		assert_int_equal(out.value_len, 0);
	} else {
		assert_int_equal(out.value_len, r->value_len);
		/* borrowed from buf, not copied */
		assert_ptr_equal(out.value, (const char *)buf + RECORD_HEADER);
		if (r->value_len)
			assert_memory_equal(out.value, r->value, r->value_len);
	}
	free(buf);
}

static void test_round_trip_value(void **state)
{
	(void)state;
	struct kvs_record r = make(1700000000123LL, false, "{\"a\":[1,2,3],\"b\":\"x\"}");

	check_round_trip(&r);
	r = make(1, false, "0");
	check_round_trip(&r);
	r = make(INT64_MAX, false, "\"big ts\"");
	check_round_trip(&r);
}

static void test_round_trip_empty_value(void **state)
{
	(void)state;
	struct kvs_record r = make(5, false, "");

	check_round_trip(&r);
	r.value = NULL; /* no bytes at all */
	r.value_len = 0;
	check_round_trip(&r);
}

static void test_round_trip_tombstone(void **state)
{
	(void)state;
	struct kvs_record r = make(1700000000000LL, true, NULL);

	check_round_trip(&r);

	/* a tombstone's value is not encoded even if the struct has one */
	r = make(77, true, "ignored");
	assert_int_equal(record_size(&r), RECORD_HEADER);
	check_round_trip(&r);
}

static void test_round_trip_large(void **state)
{
	(void)state;
	size_t n = 1 << 20;
	char *big = malloc(n + 1);

	assert_non_null(big);
	memset(big, '7', n);
	big[n] = '\0';
	struct kvs_record r = make(123, false, big);
	check_round_trip(&r);
	free(big);
}

/* Expects a refusal and out untouched. */
static void expect_refused(const uint8_t *bytes, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	struct kvs_record out, before;

	assert_non_null(copy);
	if (len)
		memcpy(copy, bytes, len);
	memset(&out, 0x5c, sizeof(out));
	before = out;
	if (record_decode(copy, len, &out) != KVS_EINVAL) {
		print_error("accepted %zu bytes (format %d flags %d)\n", len,
			    len > 0 ? copy[0] : -1, len > 1 ? copy[1] : -1);
		fail();
	}
	assert_memory_equal(&out, &before, sizeof(out));
	free(copy);
}

static void test_decode_short(void **state)
{
	(void)state;
	struct kvs_record r = make(99, false, "1");
	size_t len;
	uint8_t *buf = encode(&r, &len);

	for (size_t n = 0; n < RECORD_HEADER; n++)
		expect_refused(buf, n);
	free(buf);

	/* a short tombstone too */
	r = make(99, true, NULL);
	buf = encode(&r, &len);
	for (size_t n = 0; n < RECORD_HEADER; n++)
		expect_refused(buf, n);
	free(buf);
}

static void test_decode_bad_format(void **state)
{
	(void)state;
	struct kvs_record r = make(99, false, "true");
	size_t len;
	uint8_t *buf = encode(&r, &len);
	static const uint8_t formats[] = { 0, 2, 3, 0x7f, 0x80, 0xff };

	for (size_t i = 0; i < sizeof(formats); i++) {
		buf[0] = formats[i];
		expect_refused(buf, len);
	}
	free(buf);
}

static void test_decode_bad_flags(void **state)
{
	(void)state;
	struct kvs_record r = make(99, false, "null");
	size_t len;
	uint8_t *buf = encode(&r, &len);

	for (int bit = 1; bit < 8; bit++) {
		buf[1] = (uint8_t)(1u << bit);
		expect_refused(buf, len);
		buf[1] = (uint8_t)((1u << bit) | RECORD_TOMBSTONE);
		expect_refused(buf, RECORD_HEADER);
	}
	buf[1] = 0xff;
	expect_refused(buf, len);
	free(buf);
}

static void test_decode_tombstone_with_bytes(void **state)
{
	(void)state;
	struct kvs_record r = make(99, false, "\"x\"");
	size_t len;
	uint8_t *buf = encode(&r, &len);

	buf[1] = RECORD_TOMBSTONE;
	expect_refused(buf, len);
	expect_refused(buf, RECORD_HEADER + 1);
	/* exactly the header is a valid tombstone */
	struct kvs_record out;
	assert_int_equal(record_decode(buf, RECORD_HEADER, &out), 0);
	assert_true(out.tombstone);
	assert_int_equal(out.v.ts, 99);
	free(buf);
}

static void test_be64(void **state)
{
	(void)state;
	uint8_t b[10];
	static const uint8_t want[8] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };

	memset(b, 0xee, sizeof(b));
	record_put_be64(b + 1, 0x0123456789abcdefULL);
	assert_memory_equal(b + 1, want, 8);
	assert_int_equal(b[0], 0xee); /* nothing written outside the 8 bytes */
	assert_int_equal(b[9], 0xee);
	assert_true(record_get_be64(b + 1) == 0x0123456789abcdefULL);

	static const uint64_t vals[] = { 0, 1, 0xff, 0x100, 0x7fffffffffffffffULL,
					 0x8000000000000000ULL, UINT64_MAX,
					 1700000000000ULL };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		record_put_be64(b, vals[i]);
		assert_true(record_get_be64(b) == vals[i]);
	}

	/* byte order matches numeric order (what the time index relies on) */
	uint8_t x[8], y[8];
	record_put_be64(x, 1699999999999ULL);
	record_put_be64(y, 1700000000000ULL);
	assert_true(memcmp(x, y, 8) < 0);
	record_put_be64(x, 255);
	record_put_be64(y, 256);
	assert_true(memcmp(x, y, 8) < 0);
}

/* An origin travels in the record (RECORD_ORIGIN); a bad origin length
 * is refused; a record without one decodes with origin_len 0. */
static void test_origin(void **state)
{
	struct kvs_record r = make(1700000000000LL, false, "{\"a\":1}"), out;
	uint8_t buf[256];
	size_t n;

	(void)state;
	r.origin = "node1";
	r.origin_len = 5;
	n = record_size(&r);
	assert_int_equal(n, RECORD_HEADER + 1 + 5 + 7);
	record_encode(&r, buf);
	assert_int_equal(record_decode(buf, n, &out), 0);
	assert_int_equal(out.origin_len, 5);
	assert_memory_equal(out.origin, "node1", 5);
	assert_int_equal(out.value_len, 7);
	assert_memory_equal(out.value, "{\"a\":1}", 7);

	buf[RECORD_HEADER] = 0; /* an empty origin */
	assert_int_equal(record_decode(buf, n, &out), KVS_EINVAL);
	buf[RECORD_HEADER] = 200; /* past the end, and over RECORD_ORIGIN_MAX */
	assert_int_equal(record_decode(buf, n, &out), KVS_EINVAL);

	/* a tombstone with an origin and nothing after it */
	r = make(5, true, NULL);
	r.origin = "n";
	r.origin_len = 1;
	n = record_size(&r);
	record_encode(&r, buf);
	assert_int_equal(record_decode(buf, n, &out), 0);
	assert_true(out.tombstone);
	assert_int_equal(out.origin_len, 1);

	r.origin = NULL; /* none: the v1 layout, origin_len 0 */
	r.origin_len = 0;
	n = record_size(&r);
	record_encode(&r, buf);
	assert_int_equal(record_decode(buf, n, &out), 0);
	assert_int_equal(out.origin_len, 0);
}

/* An expiry: RECORD_EXPIRES and 8 bytes after the header, kept through a
 * round trip with an origin; never on a tombstone; zero is refused. */
static void test_expires(void **state)
{
	struct kvs_record r = make(1700000000000LL, false, "{\"a\":1}"), out;
	size_t len;
	uint8_t *buf;

	(void)state;
	r.expires = 1700000030000LL;
	r.origin = "n1";
	r.origin_len = 2;
	buf = encode(&r, &len);
	assert_int_equal(len, RECORD_HEADER + 8 + 1 + 2 + r.value_len);
	assert_int_equal(buf[1], RECORD_EXPIRES | RECORD_ORIGIN);
	assert_int_equal(record_decode(buf, len, &out), 0);
	assert_int_equal(out.expires, r.expires);
	assert_int_equal(out.origin_len, 2);
	assert_int_equal(out.value_len, r.value_len);
	assert_memory_equal(out.value, r.value, r.value_len);
	assert_false(record_expired(&out, r.expires - 1));
	assert_true(record_expired(&out, r.expires));
	assert_true(record_live(&out, r.expires - 1));
	/* a zero expiry on the disk is refused */
	memset(buf + RECORD_HEADER, 0, 8);
	expect_refused(buf, len);
	/* short: the flag without its 8 bytes */
	expect_refused(buf, RECORD_HEADER + 4);
	free(buf);

	/* a tombstone never carries one: encode leaves it out, decode refuses it */
	struct kvs_record t = make(5, true, NULL);
	t.expires = 99;
	buf = encode(&t, &len);
	assert_int_equal(len, RECORD_HEADER);
	assert_int_equal(buf[1], RECORD_TOMBSTONE);
	free(buf);
	uint8_t bad[RECORD_HEADER + 8] = { RECORD_FORMAT_V1, RECORD_TOMBSTONE | RECORD_EXPIRES };
	record_put_be64(bad + RECORD_HEADER, 99);
	expect_refused(bad, sizeof(bad));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_value),
		cmocka_unit_test(test_round_trip_empty_value),
		cmocka_unit_test(test_round_trip_tombstone),
		cmocka_unit_test(test_round_trip_large),
		cmocka_unit_test(test_decode_short),
		cmocka_unit_test(test_decode_bad_format),
		cmocka_unit_test(test_decode_bad_flags),
		cmocka_unit_test(test_decode_tombstone_with_bytes),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_expires),
		cmocka_unit_test(test_be64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
