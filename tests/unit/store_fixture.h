/*
 * store_fixture.h - what the store's unit tests share: a fresh store in a
 * mkdtemp directory per test (removed afterwards), writes by origin, reads
 * that expect a value, a tombstone or nothing, and a callback that collects
 * what a walk hands out.  Included by test_store.c, test_store_walk.c,
 * test_store_fault.c and node_fixture.h, after <cmocka.h>, with
 * _XOPEN_SOURCE 700 defined first (nftw).
 *
 * The helpers are static (one copy per test binary) and not every test file
 * uses every one: -Wunused-function is off for this header only.
 */
#ifndef KVS_TEST_STORE_FIXTURE_H
#define KVS_TEST_STORE_FIXTURE_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "log.h"
#include "store.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"

/* Small, so that the store tests also run through record cache evictions. */
#define TEST_CACHE_BYTES (256 * 1024)

/* ------------------------------------------------------------ fixture */

struct fx {
	char dir[64];
	struct store *s;
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct store *open_at(const char *dir)
{
	char err[512] = "";
	struct store *s = store_open(dir, false, TEST_CACHE_BYTES, err, sizeof(err));

	if (!s) {
		print_error("store_open(%s): %s\n", dir, err);
		fail();
	}
	return s;
}

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/kvs-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->s = open_at(f->dir);
	return f;
}

static void fx_free(struct fx *f)
{
	if (!f)
		return;
	store_close(f->s);
	rm_tree(f->dir);
	free(f);
}

static int setup(void **state)
{
	*state = fx_new();
	return 0;
}

static int teardown(void **state)
{
	fx_free(*state);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	log_init(LOG_ERROR, LOG_FORMAT_TEXT, "test");
	return 0;
}

#define S (((struct fx *)*state)->s)

/* ------------------------------------------------------------ helpers */

static struct kvs_record value_rec(const char *value)
{
	struct kvs_record r = { 0 };

	memset(&r, 0, sizeof(r));
	r.value = value;
	r.value_len = strlen(value);
	return r;
}

/* A record with an explicit version: ts and a UUID made of byte u. */
static struct kvs_record at(int64_t ts, uint8_t u, const char *value)
{
	struct kvs_record r = { 0 };

	memset(&r, 0, sizeof(r));
	r.v.ts = ts;
	memset(r.v.id, u, 16);
	r.tombstone = value == NULL;
	r.value = value;
	r.value_len = value ? strlen(value) : 0;
	return r;
}

/* The version at() gives: for comparisons. */
static struct kvs_version ver(int64_t ts, uint8_t u)
{
	struct kvs_version v;

	v.ts = ts;
	memset(v.id, u, 16);
	return v;
}

#define VP(ts, u) (&(struct kvs_version[1]){ ver(ts, u) }[0])

static int put(struct store *s, const char *key, const char *value, struct kvs_version *v)
{
	struct kvs_record r = value_rec(value);
	int rc = store_apply(s, key, strlen(key), &r, STORE_LOCAL, NULL, NULL);

	if (v)
		*v = r.v;
	return rc;
}

static int del(struct store *s, const char *key, struct kvs_version *v)
{
	struct kvs_record r = { 0 };
	int rc;

	memset(&r, 0, sizeof(r));
	r.tombstone = true;
	rc = store_apply(s, key, strlen(key), &r, STORE_LOCAL, NULL, NULL);
	if (v)
		*v = r.v;
	return rc;
}

static int remote(struct store *s, const char *key, struct kvs_record r,
		  struct kvs_version *current)
{
	return store_apply(s, key, strlen(key), &r, STORE_REMOTE, NULL, current);
}

static void must(int rc)
{
	if (rc != 0) {
		print_error("rc %d (%s)\n", rc, kvs_strerror(rc));
		fail();
	}
}

/* Expects key to hold value (NULL: a tombstone) at version v (if given). */
static void expect_get(struct store *s, const char *key, const char *value,
		       const struct kvs_version *v)
{
	struct store_value sv;
	int rc = store_get(s, key, strlen(key), &sv);

	if (rc != 0) {
		print_error("get %s: rc %d\n", key, rc);
		fail();
	}
	if (value) {
		assert_false(sv.rec.tombstone);
		assert_int_equal(sv.rec.value_len, strlen(value));
		assert_memory_equal(sv.rec.value, value, sv.rec.value_len);
	} else {
		assert_true(sv.rec.tombstone);
		assert_int_equal(sv.rec.value_len, 0);
	}
	if (v) {
		assert_int_equal(sv.rec.v.ts, v->ts);
		assert_memory_equal(sv.rec.v.id, v->id, 16);
	}
	store_value_release(&sv);
}

static void expect_absent(struct store *s, const char *key)
{
	struct store_value sv = { .raw = NULL };

	assert_int_equal(store_get(s, key, strlen(key), &sv), KVS_ENOTFOUND);
	assert_null(sv.raw);
}

/* Collects what a walk hands out. */
struct seen {
	size_t n;
	char keys[4096][48]; /* truncated to 47 bytes */
	size_t klen[4096];
	int64_t ts[4096];
	bool tomb[4096];
	int stop_at; /* return 7 from the callback at this index (-1 never) */
};

static int collect(void *ctx, const char *key, size_t klen, const struct kvs_record *rec)
{
	struct seen *c = ctx;

	assert_true(c->n < 4096);
	size_t keep = klen < sizeof(c->keys[0]) ? klen : sizeof(c->keys[0]) - 1;

	memcpy(c->keys[c->n], key, keep);
	c->keys[c->n][keep] = '\0';
	c->klen[c->n] = klen;
	c->ts[c->n] = rec->v.ts;
	c->tomb[c->n] = rec->tombstone;
	if (!rec->tombstone) {
		/* the value is readable for the length given */
		volatile char sink = 0;
		for (size_t i = 0; i < rec->value_len; i++)
			sink ^= rec->value[i];
		(void)sink;
	}
	if (c->stop_at >= 0 && (int)c->n == c->stop_at) {
		c->n++;
		return 7;
	}
	c->n++;
	return 0;
}

static struct seen *seen_new(void)
{
	struct seen *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->stop_at = -1;
	return c;
}

static int list(struct store *s, const char *prefix, const char *after, size_t limit,
		struct seen *c, bool *more)
{
	c->n = 0;
	return store_list(s, prefix, strlen(prefix), after, after ? strlen(after) : 0, limit,
			  collect, c, more);
}

/* Expects the walk to have seen exactly the keys in want (NULL-terminated). */
static void expect_keys(const struct seen *c, const char *const *want)
{
	size_t n = 0;

	while (want[n])
		n++;
	if (c->n != n) {
		print_error("saw %zu keys, want %zu:\n", c->n, n);
		for (size_t i = 0; i < c->n; i++)
			print_error("  %s\n", c->keys[i]);
		fail();
	}
	for (size_t i = 0; i < n; i++)
		assert_string_equal(c->keys[i], want[i]);
}

#pragma GCC diagnostic pop

#endif
