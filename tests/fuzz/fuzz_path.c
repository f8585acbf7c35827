/*
 * fuzz_path.c - libFuzzer target for path.c: path_decode, path_key_valid
 * and path_query_get (see tests/fuzz/README.md).
 *
 * Besides "no crash, no sanitizer report", it checks the properties the
 * module promises, so a wrong answer stops the fuzzer like a crash does:
 *  - path_decode: on success the result is a C string of *len bytes, at
 *    most PATH_KEY_MAX (+1 for a prefix's '/'), a key passes
 *    path_key_valid() and a non-empty prefix does without its final '/'
 *    (what a client may write, a peer may send, and back);
 *  - path_key_valid: a valid key, percent-encoded byte by byte, decodes
 *    through path_decode to exactly the same bytes;
 *  - path_query_get: the output fits outlen (an exactly sized heap buffer,
 *    so ASan sees any overflow), and on refusal neither out nor *found
 *    is touched.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "path.h"

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz_path: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                            \
			abort();                                                      \
		}                                                                     \
	} while (0)

#define OUTLEN (PATH_KEY_MAX + 2)

/* Decodes the NUL-terminated raw path and checks what it promises. */
static void check_decode(const char *raw)
{
	char *out = malloc(OUTLEN);
	const char *why = NULL;
	enum path_kind kind;
	size_t len = (size_t)-1;

	CHECK(out);
	if (path_decode(raw, out, OUTLEN, &len, &kind, &why) != 0) {
		CHECK(why && *why);
		free(out);
		return;
	}
	CHECK(len < OUTLEN);
	CHECK(strlen(out) == len);
	if (kind == PATH_KEY) {
		CHECK(len > 0 && len <= PATH_KEY_MAX);
		CHECK(path_key_valid(out, len));
	} else {
		CHECK(kind == PATH_PREFIX);
		CHECK(len <= PATH_KEY_MAX + 1);
		if (len > 0) {
			CHECK(out[len - 1] == '/');
			CHECK(path_key_valid(out, len - 1));
		}
	}
	free(out);
}

/* A key path_key_valid() accepts must round-trip through percent-encoding. */
static void check_key_roundtrip(const uint8_t *key, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *raw, *out;
	const char *why = NULL;
	enum path_kind kind;
	size_t olen = 0, o = 0;
	int rc;

	if (!path_key_valid((const char *)key, len))
		return;
	CHECK(len > 0 && len <= PATH_KEY_MAX);
	CHECK(memchr(key, '\0', len) == NULL);
	raw = malloc(4 + 3 * len + 1);
	out = malloc(OUTLEN);
	CHECK(raw && out);
	memcpy(raw, "/kv/", 4);
	o = 4;
	for (size_t i = 0; i < len; i++) {
		if (key[i] == '/') {
			raw[o++] = '/';
		} else {
			raw[o++] = '%';
			raw[o++] = hex[key[i] >> 4];
			raw[o++] = hex[key[i] & 15];
		}
	}
	raw[o] = '\0';
	rc = path_decode(raw, out, OUTLEN, &olen, &kind, &why);
	if (rc != 0)
		fprintf(stderr, "fuzz_path: valid key refused by path_decode: %s\n", why);
	CHECK(rc == 0);
	CHECK(kind == PATH_KEY);
	CHECK(olen == len && memcmp(out, key, len) == 0);
	free(raw);
	free(out);
}

/* path_query_get into an exactly sized buffer; refusals touch nothing. */
static void check_query(const char *qs, const char *name, size_t outlen)
{
	char *out = malloc(outlen);
	bool found = true;
	int rc;

	CHECK(out);
	memset(out, 'x', outlen);
	rc = path_query_get(qs, name, out, outlen, &found);
	if (rc != 0) {
		CHECK(rc == KVS_EINVAL);
		CHECK(found == true);
		for (size_t i = 0; i < outlen; i++)
			CHECK(out[i] == 'x');
	} else if (found) {
		CHECK(strnlen(out, outlen) < outlen);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The input as a C string (cut at the first NUL, as civetweb would). */
	char *s = malloc(size + 1);
	char *prefixed = malloc(size + 5);

	if (!s || !prefixed)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	memcpy(prefixed, "/kv/", 4);
	memcpy(prefixed + 4, data, size);
	prefixed[size + 4] = '\0';

	check_decode(s);
	check_decode(prefixed);

	/* Decoded keys as peers send them: length-counted, NULs included. */
	check_key_roundtrip(data, size);

	/* Query strings: kvs's names and a few buffer sizes. */
	size_t outlen = size ? (size_t)data[0] % 40 + 1 : 1;
	check_query(s, "limit", outlen);
	check_query(s, "after", PATH_KEY_MAX + 2);
	check_query(s, "values", 8);
	check_query(s, "b", 32);

	free(s);
	free(prefixed);
	return 0;
}
