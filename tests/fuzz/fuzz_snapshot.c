/*
 * fuzz_snapshot.c - libFuzzer target for snapshot.c, the snapshot file
 * reader that `kvs --restore` runs on a file from anywhere (see
 * tests/fuzz/README.md).
 *
 * The first input byte picks the mode, the rest is the file:
 *  - even: the bytes as they are.  Almost every mutation breaks the
 *    SHA-256, but the reader parses every record before it reaches the
 *    trailer, so all of its bounds are exercised;
 *  - odd: the bytes with their correct SHA-256 appended, so the fuzzer can
 *    reach the accepting path.
 * Checked: the reader never reads past its bounds (ASan), every refusal
 * has a reason, and a file the reader accepts is exactly what the writer
 * makes of the records it read (same header, records, count, checksum).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "kvs.h"
#include "snapshot.h"

#define MAX_RECORD (64 * 1024)

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_snapshot: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                               \
			abort();                                                         \
		}                                                                        \
	} while (0)

struct mem {
	uint8_t *data;
	size_t len;
};

static int mem_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct mem *m = ctx;
	uint8_t *p = realloc(m->data, m->len + len);

	CHECK(p);
	memcpy(p + m->len, data, len);
	m->data = p;
	m->len += len;
	return 0;
}

/* Reads file[0..len) fully, re-writing what it reads; checks the result. */
static void check_file(const uint8_t *file, size_t len)
{
	FILE *f = fmemopen((void *)file, len, "rb");
	struct snapshot_reader r;
	struct snapshot_writer w;
	struct mem out = { 0 };
	bool writing = false;
	const char *key;
	size_t klen;
	struct kvs_record rec;
	int rc;

	CHECK(f);
	rc = snapshot_reader_init(&r, f, MAX_RECORD);
	if (rc == 0) {
		writing = snapshot_writer_init(&w, r.node_id, r.taken_ms, mem_sink, &out) == 0;
		CHECK(writing);
		while ((rc = snapshot_reader_next(&r, &key, &klen, &rec)) == 1) {
			CHECK(klen > 0 && klen <= PATH_KEY_MAX && key[klen] == '\0');
			CHECK(snapshot_writer_add(&w, key, klen, &rec) == 0);
		}
	}
	if (rc == 0) {
		CHECK(snapshot_writer_finish(&w) == 0);
		CHECK(out.len == len && memcmp(out.data, file, len) == 0);
	} else {
		CHECK(rc < 0 && r.err[0] != '\0');
	}
	if (writing)
		snapshot_writer_release(&w);
	snapshot_reader_release(&r);
	fclose(f);
	free(out.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0; /* fmemopen wants at least one byte */
	if (!(data[0] & 1)) {
		check_file(data + 1, size - 1);
		return 0;
	}
	uint8_t *file = malloc(size - 1 + SNAPSHOT_SHA_LEN);
	unsigned n = 0;

	CHECK(file);
	memcpy(file, data + 1, size - 1);
	CHECK(EVP_Digest(file, size - 1, file + size - 1, &n, EVP_sha256(), NULL) == 1);
	check_file(file, size - 1 + SNAPSHOT_SHA_LEN);
	free(file);
	return 0;
}
