/*
 * test_buf.c - the capped buffer: growth, the hard cap with its sticky
 * error, reset/detach, printf of strings past the stack buffer, and
 * buf_json_str escaping (quote, backslash, every control byte, UTF-8
 * passed through).
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

static void test_add_and_grow(void **state)
{
	(void)state;
	struct buf b;

	buf_init(&b, 1 << 20);
	assert_int_equal(b.len, 0);
	assert_false(buf_failed(&b));
	buf_adds(&b, "hello");
	buf_add(&b, ", ", 2);
	buf_adds(&b, "world");
	assert_int_equal(b.len, 12);
	assert_string_equal(b.data, "hello, world");

	/* grow well past the first allocation */
	for (int i = 0; i < 10000; i++)
		buf_add(&b, "0123456789", 10);
	assert_false(buf_failed(&b));
	assert_int_equal(b.len, 12 + 100000);
	assert_int_equal(b.data[b.len], '\0');
	assert_true(b.alloc > b.len);
	assert_memory_equal(b.data + 12 + 99990, "0123456789", 10);

	/* binary bytes, embedded NUL */
	buf_reset(&b);
	buf_add(&b, "a\0b", 3);
	assert_int_equal(b.len, 3);
	assert_memory_equal(b.data, "a\0b", 3);
	buf_release(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
}

static void test_cap_sticky(void **state)
{
	(void)state;
	struct buf b;

	buf_init(&b, 10);
	buf_adds(&b, "12345");
	buf_adds(&b, "67890"); /* exactly at the cap: fine */
	assert_false(buf_failed(&b));
	assert_int_equal(b.len, 10);
	assert_string_equal(b.data, "1234567890");

	buf_adds(&b, "x"); /* one past */
	assert_true(buf_failed(&b));
	assert_int_equal(b.err, KVS_ETOOBIG);
	assert_int_equal(b.len, 10);

	/* buffer stays intact, later small appends are no-ops */
	buf_reset(&b);
	buf_adds(&b, "abc");
	assert_false(buf_failed(&b));
	buf_adds(&b, "defghijklmnop");
	assert_true(buf_failed(&b));
	buf_adds(&b, "d"); /* would fit, but the error is sticky */
	buf_printf(&b, "%d", 1);
	buf_json_str(&b, "", 0);
	assert_null(buf_reserve(&b, 1));
	assert_int_equal(b.len, 3);
	assert_string_equal(b.data, "abc");
	assert_int_equal(b.err, KVS_ETOOBIG);

	/* reset clears the error and keeps memory */
	char *mem = b.data;
	buf_reset(&b);
	assert_false(buf_failed(&b));
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, mem);
	buf_adds(&b, "ok");
	assert_string_equal(b.data, "ok");
	buf_release(&b);

	/* cap 0: nothing fits */
	buf_init(&b, 0);
	buf_add(&b, "", 0);
	assert_false(buf_failed(&b));
	buf_adds(&b, "a");
	assert_true(buf_failed(&b));
	buf_release(&b);

	/* one large append over the cap */
	buf_init(&b, 1000);
	char big[1001];
	memset(big, 'z', sizeof(big));
	buf_add(&b, big, 1001);
	assert_true(buf_failed(&b));
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void test_reserve_commit_detach(void **state)
{
	(void)state;
	struct buf b;
	size_t len = 99;

	buf_init(&b, 100);
	char *p = buf_reserve(&b, 4);
	assert_non_null(p);
	memcpy(p, "wxyz", 4);
	buf_commit(&b, 4);
	assert_string_equal(b.data, "wxyz");
	assert_null(buf_reserve(&b, 97)); /* 4 + 97 > 100 */
	assert_true(buf_failed(&b));

	buf_reset(&b);
	buf_adds(&b, "keep");
	char *d = buf_detach(&b, &len);
	assert_int_equal(len, 4);
	assert_string_equal(d, "keep");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.max, 100); /* cap survives detach */
	free(d);

	/* reusable after detach */
	buf_adds(&b, "again");
	assert_string_equal(b.data, "again");
	d = buf_detach(&b, NULL);
	free(d);
	buf_release(&b);
}

static void test_printf(void **state)
{
	(void)state;
	struct buf b;

	buf_init(&b, 1 << 20);
	buf_printf(&b, "%s=%d;", "n", 42);
	buf_printf(&b, "%lld", (long long)INT64_MIN);
	assert_string_equal(b.data, "n=42;-9223372036854775808");

	/* strings past the 256-byte stack buffer, at and around its size */
	size_t sizes[] = { 254, 255, 256, 257, 1000, 100000 };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		char *s = malloc(n + 1);

		assert_non_null(s);
		for (size_t j = 0; j < n; j++)
			s[j] = (char)('a' + j % 26);
		s[n] = '\0';
		buf_reset(&b);
		buf_adds(&b, "<");
		buf_printf(&b, "[%s]", s);
		buf_adds(&b, ">");
		assert_false(buf_failed(&b));
		assert_int_equal(b.len, n + 4);
		assert_int_equal(b.data[0], '<');
		assert_int_equal(b.data[1], '[');
		assert_memory_equal(b.data + 2, s, n);
		assert_int_equal(b.data[n + 2], ']');
		assert_int_equal(b.data[n + 3], '>');
		assert_int_equal(b.data[n + 4], '\0');
		free(s);
	}
	buf_release(&b);

	/* a large printf over the cap fails whole */
	buf_init(&b, 300);
	buf_adds(&b, "x");
	char s[400];
	memset(s, 'q', 399);
	s[399] = '\0';
	buf_printf(&b, "%s", s);
	assert_true(buf_failed(&b));
	assert_int_equal(b.len, 1);
	assert_string_equal(b.data, "x");
	buf_release(&b);

	/* a small printf over the cap fails too */
	buf_init(&b, 3);
	buf_printf(&b, "%d", 1234);
	assert_true(buf_failed(&b));
	assert_int_equal(b.len, 0);
	buf_release(&b);
}

static void expect_json_str(const char *in, size_t n, const char *want)
{
	struct buf b;

	buf_init(&b, 1 << 16);
	buf_json_str(&b, in, n);
	assert_false(buf_failed(&b));
	assert_int_equal(b.len, strlen(want));
	assert_string_equal(b.data, want);
	buf_release(&b);
}

static void test_json_str(void **state)
{
	(void)state;
	expect_json_str("", 0, "\"\"");
	expect_json_str("plain", 5, "\"plain\"");
	expect_json_str("a\"b", 3, "\"a\\\"b\"");
	expect_json_str("a\\b", 3, "\"a\\\\b\"");
	expect_json_str("\"\\\"", 3, "\"\\\"\\\\\\\"\"");
	expect_json_str("\n\r\t", 3, "\"\\u000a\\u000d\\u0009\"");
	expect_json_str("a\0b", 3, "\"a\\u0000b\"");
	expect_json_str("\x1f\x7f", 2, "\"\\u001f\x7f\""); /* DEL is legal in JSON */
	expect_json_str("/", 1, "\"/\"");
	/* UTF-8 passes through untouched */
	expect_json_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
			"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* only n bytes are read */
	expect_json_str("abcdef", 3, "\"abc\"");

	/* every control byte becomes \u00XX */
	for (int c = 0; c < 0x20; c++) {
		char in = (char)c, want[16];

		snprintf(want, sizeof(want), "\"\\u%04x\"", c);
		expect_json_str(&in, 1, want);
	}

	/* appends after existing content */
	struct buf b;
	buf_init(&b, 100);
	buf_adds(&b, "{\"k\":");
	buf_json_str(&b, "v", 1);
	buf_adds(&b, "}");
	assert_string_equal(b.data, "{\"k\":\"v\"}");
	buf_release(&b);
}

/*
 * buf_json_str reserves the worst case (6 bytes per input byte + 2 quotes)
 * before writing, so it needs that much headroom under the cap even when
 * the escaped text is shorter; callers size their caps for it.  Checks the
 * boundary of that headroom, and that a failure leaves b as it was.
 */
static void test_json_str_near_cap(void **state)
{
	(void)state;
	struct buf b;
	char s[40];

	memset(s, 'a', sizeof(s));
	buf_init(&b, sizeof(s) * 6 + 2);
	buf_json_str(&b, s, sizeof(s));
	assert_false(buf_failed(&b));
	assert_int_equal(b.len, 42);
	buf_release(&b);

	buf_init(&b, 1 + sizeof(s) * 6 + 2);
	buf_adds(&b, "x");
	memset(s, '\x01', sizeof(s)); /* the true worst case: 240 bytes escaped */
	buf_json_str(&b, s, sizeof(s));
	assert_false(buf_failed(&b));
	assert_int_equal(b.len, 1 + 242);
	assert_int_equal(b.data[b.len], '\0');
	buf_release(&b);

	/* one byte short of the headroom: refused whole, b unchanged */
	buf_init(&b, 1 + sizeof(s) * 6 + 1);
	buf_adds(&b, "x");
	buf_json_str(&b, s, sizeof(s));
	assert_true(buf_failed(&b));
	assert_int_equal(b.err, KVS_ETOOBIG);
	assert_int_equal(b.len, 1);
	assert_string_equal(b.data, "x");
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_and_grow),
		cmocka_unit_test(test_cap_sticky),
		cmocka_unit_test(test_reserve_commit_detach),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_json_str),
		cmocka_unit_test(test_json_str_near_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
