/*
 * test_rcache.c - the record cache: hits and misses, replace and drop,
 * fills refused after or during a write, the byte budget with second-chance
 * eviction (kept even when every entry is in use), records too big to
 * cache, the NULL (disabled) cache, and readers racing a writer never
 * seeing a version older than the last one stored.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcache.h"

/* Any hash works for the cache; shard = top 6 bits, so same_shard() pins one. */
static uint64_t hash_of(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *key; key++)
		h = (h ^ (uint8_t)*key) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

#define SHARD_BITS (0x3fULL << 58)

/* key's hash, moved to shard 0 */
static uint64_t same_shard(const char *key)
{
	return hash_of(key) & ~SHARD_BITS;
}

/* key's hash, moved to the shard of hash h */
static uint64_t shard_of_hash(const char *key, uint64_t h)
{
	return same_shard(key) | (h & SHARD_BITS);
}

/* Looks key up; returns the value as a string (caller frees) or NULL. */
static char *get_str(struct rcache *c, uint64_t h, const char *key, uint64_t *ticket)
{
	size_t len = 0;
	uint64_t t;
	char *v = rcache_get(c, h, key, strlen(key), &len, ticket ? ticket : &t);
	char *s;

	if (!v)
		return NULL;
	s = malloc(len + 1);
	memcpy(s, v, len);
	s[len] = '\0';
	free(v);
	return s;
}

/* A whole write as store_apply makes it: begin, (RocksDB), put. */
static void put_str(struct rcache *c, uint64_t h, const char *key, const char *val)
{
	rcache_write_begin(c, h, key, strlen(key));
	rcache_put(c, h, key, strlen(key), val, strlen(val));
}

static void drop_str(struct rcache *c, uint64_t h, const char *key)
{
	rcache_write_begin(c, h, key, strlen(key));
	rcache_drop(c, h, key, strlen(key));
}

static void test_disabled(void **state)
{
	(void)state;
	struct rcache_stats st;
	uint64_t t = 99;

	assert_null(rcache_new(0));
	put_str(NULL, 1, "a", "x");
	rcache_fill(NULL, 1, "a", 1, "x", 1, 0);
	drop_str(NULL, 1, "a");
	assert_null(get_str(NULL, 1, "a", &t));
	rcache_stats(NULL, &st);
	assert_int_equal(st.hits + st.misses + st.entries + st.bytes, 0);
	rcache_free(NULL);
}

static void test_put_get_replace_drop(void **state)
{
	(void)state;
	struct rcache *c = rcache_new(1 << 20);
	struct rcache_stats st;
	char *v;

	assert_non_null(c);
	assert_null(get_str(c, hash_of("a/b"), "a/b", NULL));
	put_str(c, hash_of("a/b"), "a/b", "one");
	v = get_str(c, hash_of("a/b"), "a/b", NULL);
	assert_string_equal(v, "one");
	free(v);
	put_str(c, hash_of("a/b"), "a/b", "two, longer");
	v = get_str(c, hash_of("a/b"), "a/b", NULL);
	assert_string_equal(v, "two, longer");
	free(v);
	/* same hash, other key: a different entry */
	assert_null(get_str(c, hash_of("a/b"), "a/c", NULL));
	drop_str(c, hash_of("a/b"), "a/b");
	assert_null(get_str(c, hash_of("a/b"), "a/b", NULL));
	rcache_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	rcache_free(c);
}

static void test_fill_ticket(void **state)
{
	(void)state;
	struct rcache *c = rcache_new(1 << 20);
	uint64_t h = hash_of("k"), t;
	char *v;

	/* a plain miss then fill is kept */
	assert_null(get_str(c, h, "k", &t));
	rcache_fill(c, h, "k", 1, "db", 2, t);
	v = get_str(c, h, "k", NULL);
	assert_string_equal(v, "db");
	free(v);

	/* reader misses, a writer deletes, the reader's stale fill is refused */
	drop_str(c, h, "k");
	assert_null(get_str(c, h, "k", &t));
	drop_str(c, h, "k");
	rcache_fill(c, h, "k", 1, "old", 3, t);
	assert_null(get_str(c, h, "k", NULL));

	/* a miss while a write is under way: its fill is refused, even with a
	 * fresh ticket, until the write has ended */
	rcache_write_begin(c, h, "k", 1);
	assert_null(get_str(c, h, "k", &t));
	rcache_fill(c, h, "k", 1, "old", 3, t);
	assert_null(get_str(c, h, "k", NULL));
	rcache_put(c, h, "k", 1, "new", 3);
	v = get_str(c, h, "k", NULL);
	assert_string_equal(v, "new");
	free(v);
	drop_str(c, h, "k");

	/* a write to another key of the same shard also voids the ticket */
	assert_null(get_str(c, h, "k", &t));
	put_str(c, shard_of_hash("other", h), "other", "w");
	rcache_fill(c, h, "k", 1, "old", 3, t);
	assert_null(get_str(c, h, "k", NULL));

	/* a fill never replaces what a writer put */
	assert_null(get_str(c, h, "k", &t));
	put_str(c, h, "k", "new");
	rcache_fill(c, h, "k", 1, "old", 3, t);
	v = get_str(c, h, "k", NULL);
	assert_string_equal(v, "new");
	free(v);
	rcache_free(c);
}

static void test_budget_and_eviction(void **state)
{
	(void)state;
	/* 64 KiB over 64 shards: 1 KiB a shard, entries up to 128 bytes */
	struct rcache *c = rcache_new(64 * 1024);
	struct rcache_stats st;
	char key[32], val[64];
	char *v;

	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	put_str(c, same_shard("hot"), "hot", "H");
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%03d", i);
		put_str(c, same_shard(key), key, val);
		v = get_str(c, same_shard("hot"), "hot", NULL); /* keeps "hot" recent */
		assert_non_null(v);
		free(v);
	}
	rcache_stats(c, &st);
	assert_true(st.bytes <= 1024);
	assert_true(st.entries >= 5 && st.entries < 20);
	v = get_str(c, same_shard("k099"), "k099", NULL);
	assert_string_equal(v, val);
	free(v);
	assert_null(get_str(c, same_shard("k000"), "k000", NULL));

	/* every entry read again before each insert: the budget still holds */
	for (int i = 100; i < 200; i++) {
		for (int j = i - 20; j < i; j++) {
			snprintf(key, sizeof(key), "k%03d", j);
			free(get_str(c, same_shard(key), key, NULL));
		}
		snprintf(key, sizeof(key), "k%03d", i);
		put_str(c, same_shard(key), key, val);
		rcache_stats(c, &st);
		assert_true(st.bytes <= 1024);
	}

	/* too big for a shard's eighth: not cached, and the old copy goes */
	char big[200];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put_str(c, same_shard("hot"), "hot", big);
	assert_null(get_str(c, same_shard("hot"), "hot", NULL));
	rcache_free(c);
}

/*
 * Readers follow store.c's protocol (get; on a miss read "RocksDB", then
 * fill) against a writer that stores increasing versions between
 * rcache_write_begin and rcache_put, as store_apply does.  A reader must
 * never get a version older than one whose store had returned, or than one
 * another reader had already got, before its lookup began.
 */
struct race {
	struct rcache *c;
	_Atomic uint64_t db;      /* the stored version */
	_Atomic uint64_t acked;   /* the newest version whose store has returned */
	_Atomic uint64_t seen;    /* the newest version a reader has got */
	atomic_bool done;
	atomic_int stale;         /* lookups that went back in time */
};

#define RACE_WRITES 20000

static void *race_writer(void *arg)
{
	struct race *r = arg;

	for (uint64_t ver = 1; ver <= RACE_WRITES; ver++) {
		rcache_write_begin(r->c, hash_of("race"), "race", 4);
		atomic_store(&r->db, ver);
		sched_yield(); /* readers may go to "RocksDB" while the write is under way */
		rcache_put(r->c, hash_of("race"), "race", 4, (const char *)&ver, sizeof(ver));
		atomic_store(&r->acked, ver);
		if (ver % 2)  /* every other write is forgotten at once: readers fill a lot */
			drop_str(r->c, hash_of("race"), "race");
	}
	atomic_store(&r->done, true);
	return NULL;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->done)) {
		uint64_t acked = atomic_load(&r->acked), seen = atomic_load(&r->seen);
		uint64_t before = acked > seen ? acked : seen, got, ticket;
		size_t len;
		char *v = rcache_get(r->c, hash_of("race"), "race", 4, &len, &ticket);

		if (v) {
			memcpy(&got, v, sizeof(got));
			free(v);
		} else {
			got = atomic_load(&r->db);
			sched_yield(); /* a slow RocksDB read: let the writer run */
			rcache_fill(r->c, hash_of("race"), "race", 4, (const char *)&got, sizeof(got),
				    ticket);
		}
		if (got < before)
			atomic_fetch_add(&r->stale, 1);
		for (uint64_t s = atomic_load(&r->seen); got > s;)
			if (atomic_compare_exchange_weak(&r->seen, &s, got))
				break;
	}
	return NULL;
}

static void test_readers_race_writer(void **state)
{
	(void)state;
	struct race r = { .c = rcache_new(1 << 20) };
	pthread_t w, rd[3];
	uint64_t last;
	size_t len;
	uint64_t t;
	char *v;

	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&rd[i], NULL, race_reader, &r), 0);
	assert_int_equal(pthread_create(&w, NULL, race_writer, &r), 0);
	pthread_join(w, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(rd[i], NULL);
	assert_int_equal(atomic_load(&r.stale), 0);
	v = rcache_get(r.c, hash_of("race"), "race", 4, &len, &t);
	assert_non_null(v);
	memcpy(&last, v, sizeof(last));
	free(v);
	assert_int_equal(last, RACE_WRITES);
	rcache_free(r.c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_put_get_replace_drop),
		cmocka_unit_test(test_fill_ticket),
		cmocka_unit_test(test_budget_and_eviction),
		cmocka_unit_test(test_readers_race_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
