/*
 * test_replicate.c - the push queue of replicate.h, without sending: the
 * replicator thread is never started, so what is queued stays queued.
 *
 * The byte cap (REPLICATE_QUEUE_BYTES) must hold under concurrent writers:
 * WRITERS threads enqueue records of one size at once, far more than fit,
 * and exactly as many as fit are queued, every other one dropped and
 * counted (before the fix, each writer checked the cap, dropped the lock,
 * copied its record and added it, so writers that all saw room passed the
 * cap together).  The store listener queues local writes only, and only
 * while a peer is live.  Backpressure (replicate_throttle) holds a write
 * while the oldest unsent record is older than replication_lag_max_ms, and
 * never with the setting at 0.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "members.h"
#include "replicate.h"

#include "store_fixture.h"

#define WRITERS 8
#define PER_WRITER 40
#define VALUE_BYTES (1u << 20)   /* large, so a copy takes a while */

static struct kvs_node node; /* large (metrics): not on a stack */
static char *big;            /* VALUE_BYTES of JSON: one long string */

static int node_setup(void **state)
{
	setup(state);
	memset(&node, 0, sizeof(node));
	node.store = S;
	node.replicate = replicate_new(&node);
	assert_non_null(node.replicate);
	return 0;
}

static int node_teardown(void **state)
{
	replicate_free(node.replicate);
	members_free(node.members);
	node.members = NULL;
	return teardown(state);
}

/* ------------------------------------------------------ concurrent cap */

struct writer {
	pthread_barrier_t *start;
	int id;
	size_t queued, dropped;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct kvs_record r = at(1000, 1, NULL);

	r.tombstone = false;
	r.value = big;
	r.value_len = VALUE_BYTES;
	pthread_barrier_wait(w->start);
	for (int i = 0; i < PER_WRITER; i++) {
		char key[32];
		int len = snprintf(key, sizeof(key), "w%02d/%04d", w->id, i); /* all 8 bytes */

		if (replicate_enqueue(node.replicate, key, (size_t)len, &r) == 0)
			w->queued++;
		else
			w->dropped++;
	}
	return NULL;
}

static void test_cap_holds_concurrently(void **state)
{
	pthread_barrier_t start;
	pthread_t t[WRITERS];
	struct writer w[WRITERS];
	size_t queued = 0, dropped = 0, entry = 8 + VALUE_BYTES;

	(void)state;
	big = malloc(VALUE_BYTES);
	assert_non_null(big);
	memset(big, 'x', VALUE_BYTES);
	big[0] = big[VALUE_BYTES - 1] = '"';
	pthread_barrier_init(&start, NULL, WRITERS);
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){ .start = &start, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(t[i], NULL);
		queued += w[i].queued;
		dropped += w[i].dropped;
	}
	pthread_barrier_destroy(&start);

	/* exactly as many as fit: none past the cap, none refused with room left */
	assert_true(WRITERS * PER_WRITER * entry > 2 * REPLICATE_QUEUE_BYTES);
	if (queued * entry > REPLICATE_QUEUE_BYTES)
		fail_msg("queue passed its cap: %zu bytes queued, cap %u", queued * entry,
			 REPLICATE_QUEUE_BYTES);
	assert_int_equal(queued, REPLICATE_QUEUE_BYTES / entry);
	assert_int_equal(queued + dropped, WRITERS * PER_WRITER);
	assert_int_equal(replicate_pending(node.replicate), queued);
	assert_int_equal(atomic_load(&node.metrics.push_dropped), dropped);
	free(big);
}

/* --------------------------------------------------------- the listener */

static void add_member(const char *id, enum member_status status)
{
	struct member m;

	memset(&m, 0, sizeof(m));
	snprintf(m.id, sizeof(m.id), "%s", id);
	snprintf(m.address, sizeof(m.address), "127.0.0.1:1");
	m.joined_ts = m.incarnation = m.last_seen = version_now_ms();
	m.status = status;
	if (!node.members) {
		struct members_timeouts t = { 5000, 300000, 600000 };
		node.members = members_new(&m, &t);
		assert_non_null(node.members);
	} else {
		members_merge(node.members, &m, 1);
	}
}

/* Local writes are queued while a peer is live; peer records never are. */
static void test_listener(void **state)
{
	add_member("self", MEMBER_ALIVE);
	must(put(S, "alone", "1", NULL));
	assert_int_equal(replicate_pending(node.replicate), 0); /* nobody to push to */

	add_member("peer", MEMBER_ALIVE);
	assert_int_equal(members_live_peers(node.members), 1);
	must(put(S, "a", "1", NULL));
	must(del(S, "a", NULL));
	assert_int_equal(replicate_pending(node.replicate), 2);

	must(remote(S, "b", at(5, 1, "2"), NULL));
	assert_int_equal(replicate_pending(node.replicate), 2); /* the peer pushes it itself */

	atomic_store(&node.left, true);
	must(put(S, "c", "3", NULL));
	assert_int_equal(replicate_pending(node.replicate), 2); /* left: no more pushes */
	assert_int_equal(atomic_load(&node.metrics.push_dropped), 0);
}

/* ------------------------------------------------------- backpressure */

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Queues one small record; returns once the oldest queued one is older
 * than ms (the replicator is not running: nothing drains the queue). */
static void queue_and_age(const char *key, int64_t ms, int64_t since)
{
	struct kvs_record r = at(1000, 1, "1");

	assert_int_equal(replicate_enqueue(node.replicate, key, strlen(key), &r), 0);
	while (mono_ms() - since <= ms) {
		struct timespec t = { 0, 1000000 };
		nanosleep(&t, NULL);
	}
}

static void test_throttle(void **state)
{
	int64_t t0 = mono_ms();

	(void)state;
	node.cfg.replication_lag_max_ms = 20;
	assert_int_equal(replicate_throttle(node.replicate), 0); /* nothing queued */
	queue_and_age("a", 30, t0);
	/* the flag is set when a record is queued: the next write sees the backlog */
	assert_int_equal(replicate_enqueue(node.replicate, "b", 1, &(struct kvs_record){ 0 }), 0);
	t0 = mono_ms();
	assert_int_equal(replicate_throttle(node.replicate), 1);
	/* nothing drains it: the write waited its most, then went on */
	assert_true(mono_ms() - t0 >= REPLICATE_THROTTLE_MAX_MS - 5);
	assert_int_equal(atomic_load(&node.metrics.writes_throttled), 1);
	assert_true(atomic_load(&node.metrics.throttle_wait_us) >= (REPLICATE_THROTTLE_MAX_MS - 5) * 1000u);

	/* a node that has left, or the setting at 0, never waits */
	atomic_store(&node.left, true);
	assert_int_equal(replicate_throttle(node.replicate), 0);
	atomic_store(&node.left, false);
	node.cfg.replication_lag_max_ms = 0;
	assert_int_equal(replicate_enqueue(node.replicate, "c", 1, &(struct kvs_record){ 0 }), 0);
	assert_int_equal(replicate_throttle(node.replicate), 0);
	assert_int_equal(atomic_load(&node.metrics.writes_throttled), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cap_holds_concurrently, node_setup,
						node_teardown),
		cmocka_unit_test_setup_teardown(test_listener, node_setup, node_teardown),
		cmocka_unit_test_setup_teardown(test_throttle, node_setup, node_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
