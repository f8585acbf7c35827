/*
 * test_zstd_codec.c - one-frame zstd compression of push bodies: a round
 * trip, and every way a hostile frame is refused (a bomb past the cap,
 * damage, truncation, bytes after the frame, an empty body) without
 * holding more than the cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "zstd_codec.h"

#define BIG (4u << 20)

static char *text_of(size_t n)
{
	char *t = malloc(n);

	assert_non_null(t);
	for (size_t i = 0; i < n; i++)
		t[i] = "{\"k\":\"value-0123\"}, "[i % 20];
	return t;
}

static void pack(const void *in, size_t len, struct buf *out)
{
	buf_init(out, len + len / 8 + 1024);
	assert_int_equal(zstd_pack(in, len, out), 0);
}

static void test_round_trip(void **state)
{
	char *t = text_of(BIG), *back;
	size_t back_len;
	struct buf z;

	(void)state;
	pack(t, BIG, &z);
	assert_true(z.len < BIG / 10); /* repetitive JSON compresses well */
	assert_int_equal(zstd_unpack(z.data, z.len, BIG, &back, &back_len), 0);
	assert_int_equal(back_len, BIG);
	assert_memory_equal(back, t, BIG);
	assert_int_equal(back[back_len], '\0');
	free(back);
	buf_release(&z);
	free(t);
}

/* A small frame that claims far more than the cap: refused at cap + 1. */
static void test_bomb_refused(void **state)
{
	char *zeros = calloc(1, BIG), *out = (char *)1;
	size_t out_len = 7;
	struct buf z;

	(void)state;
	assert_non_null(zeros);
	pack(zeros, BIG, &z);
	assert_true(z.len < 1024);
	assert_int_equal(zstd_unpack(z.data, z.len, BIG - 1, &out, &out_len), KVS_ETOOBIG);
	assert_null(out);
	assert_int_equal(out_len, 0);
	/* exactly the cap is fine */
	assert_int_equal(zstd_unpack(z.data, z.len, BIG, &out, &out_len), 0);
	assert_int_equal(out_len, BIG);
	free(out);
	buf_release(&z);
	free(zeros);
}

static void test_damage_refused(void **state)
{
	char *t = text_of(100000), *out;
	size_t out_len;
	struct buf z;

	(void)state;
	pack(t, 100000, &z);
	/* truncated: every proper prefix */
	for (size_t cut = 0; cut < z.len; cut += 1 + z.len / 50)
		assert_int_equal(zstd_unpack(z.data, cut, 1 << 20, &out, &out_len), KVS_EINVAL);
	/* bytes after the frame */
	char *more = malloc(z.len + 3);
	assert_non_null(more);
	memcpy(more, z.data, z.len);
	memcpy(more + z.len, "xyz", 3);
	assert_int_equal(zstd_unpack(more, z.len + 3, 1 << 20, &out, &out_len), KVS_EINVAL);
	/* not zstd at all, and a damaged checksum-less body */
	assert_int_equal(zstd_unpack("{\"from\":1}", 10, 1 << 20, &out, &out_len), KVS_EINVAL);
	more[0] ^= 0x55; /* the magic number */
	assert_int_equal(zstd_unpack(more, z.len, 1 << 20, &out, &out_len), KVS_EINVAL);
	assert_null(out);
	free(more);
	buf_release(&z);
	free(t);
}

/* pack honours its buffer's cap */
static void test_pack_cap(void **state)
{
	char *t = text_of(100000);
	struct buf z;

	(void)state;
	buf_init(&z, 100);
	assert_int_equal(zstd_pack(t, 100000, &z), KVS_ETOOBIG);
	buf_release(&z);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bomb_refused),
		cmocka_unit_test(test_damage_refused),
		cmocka_unit_test(test_pack_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
