/*
 * fuzz_record.c - libFuzzer target for record.c, the binary codec of
 * stored records (see tests/fuzz/README.md).
 *
 * Both directions:
 *  - decode: record_decode() on arbitrary bytes (an exactly sized heap
 *    buffer, so ASan sees any read past it); an accepted record encodes
 *    back to exactly the input bytes, and a refusal leaves out untouched;
 *  - encode: a record built from the input (timestamp, UUID, tombstone
 *    flag, value) encodes to record_size() bytes and decodes to the same
 *    fields.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "record.h"

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz_record: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                             \
			abort();                                                       \
		}                                                                      \
	} while (0)

static void check_decode(const uint8_t *data, size_t size)
{
	struct kvs_record r, untouched;
	uint8_t *again;

	memset(&r, 0x5a, sizeof(r));
	untouched = r;
	if (record_decode(data, size, &r) != 0) {
		CHECK(memcmp(&r, &untouched, sizeof(r)) == 0);
		return;
	}
	CHECK(size >= RECORD_HEADER);
	CHECK(r.value_len == size - RECORD_HEADER);
	CHECK(!r.tombstone || r.value_len == 0);
	CHECK(r.value == (const char *)data + RECORD_HEADER);
	CHECK(record_size(&r) == size);
	again = malloc(size);
	CHECK(again);
	record_encode(&r, again);
	CHECK(memcmp(again, data, size) == 0);
	free(again);
}

static void check_encode(const uint8_t *data, size_t size)
{
	struct kvs_record r, back;
	uint8_t *buf;
	size_t n;

	if (size < 25)
		return;
	memset(&r, 0, sizeof(r));
	r.v.ts = (int64_t)record_get_be64(data);
	memcpy(r.v.id, data + 8, 16);
	r.tombstone = data[24] & 1;
	r.value = r.tombstone ? NULL : (const char *)data + 25;
	r.value_len = r.tombstone ? 0 : size - 25;
	n = record_size(&r);
	CHECK(n == RECORD_HEADER + r.value_len);
	buf = malloc(n);
	CHECK(buf);
	record_encode(&r, buf);
	CHECK(record_get_be64(buf + 2) == (uint64_t)r.v.ts);
	CHECK(record_decode(buf, n, &back) == 0);
	CHECK(back.v.ts == r.v.ts && memcmp(back.v.id, r.v.id, 16) == 0);
	CHECK(back.tombstone == r.tombstone && back.value_len == r.value_len);
	CHECK(back.value_len == 0 || memcmp(back.value, r.value, r.value_len) == 0);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decode(data, size);
	check_encode(data, size);
	return 0;
}
