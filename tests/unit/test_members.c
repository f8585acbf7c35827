/*
 * test_members.c - the member table: the gossip merge rules of members.h
 * (newest last_seen, "left" sticky within an incarnation, a higher
 * incarnation revives, our own record never overwritten, others'
 * unhealthy opinions not adopted), joins and their id conflicts, the
 * state machine (suspect -> unhealthy on the suspicion timeout, heard ->
 * alive, failure and removal timeouts), members_random(), the size cap
 * (max_members: new members refused, never evicting, last_seen from the
 * future taken as now) and the JSON form, both ways, with the address and
 * number checks of records from the network.
 *
 * Times are plain numbers well below the real clock except where
 * members_join() compares with version_now_ms().
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
#include "log.h"
#include "members.h"
#include "version.h"

#define SUSPICION 5000
#define FAILURE 300000
#define REMOVAL 600000

static const struct members_timeouts T = { SUSPICION, FAILURE, REMOVAL };

static struct member mk(const char *id, const char *addr, int64_t inc, int64_t seen,
			enum member_status st)
{
	struct member e;

	memset(&e, 0, sizeof(e));
	snprintf(e.id, sizeof(e.id), "%s", id);
	snprintf(e.address, sizeof(e.address), "%s", addr);
	e.joined_ts = 1000;
	e.incarnation = inc;
	e.last_seen = seen;
	e.status = st;
	return e;
}

static struct members *table(void)
{
	struct member self = mk("self", "127.0.0.1:8000", 100, 0, MEMBER_ALIVE);
	struct members *m = members_new(&self, &T);

	assert_non_null(m);
	return m;
}

static struct member get(struct members *m, const char *id)
{
	struct member e;

	if (!members_get(m, id, &e)) {
		print_error("member %s not in table\n", id);
		fail();
	}
	return e;
}

static bool has(struct members *m, const char *id)
{
	struct member e;

	return members_get(m, id, &e);
}

static void merge1(struct members *m, struct member e)
{
	members_merge(m, &e, 1);
}

static int setup(void **state)
{
	(void)state;
	log_init(LOG_ERROR, LOG_FORMAT_TEXT, "test");
	return 0;
}

/* ------------------------------------------------------------- basics */

static void test_new_and_self(void **state)
{
	(void)state;
	struct member self = mk("self", "127.0.0.1:8000", 100, 0, MEMBER_UNHEALTHY);
	self.self = false;
	struct members *m = members_new(&self, &T);
	struct member e;
	int counts[4];

	assert_non_null(m);
	assert_true(members_get(m, "self", &e));
	assert_true(e.self);
	assert_int_equal(e.status, MEMBER_ALIVE);
	assert_false(members_get(m, "nobody", &e));
	assert_int_equal(members_alive_count(m), 1);
	members_counts(m, counts);
	assert_int_equal(counts[MEMBER_ALIVE], 1);
	assert_int_equal(counts[MEMBER_SUSPECT] + counts[MEMBER_UNHEALTHY] + counts[MEMBER_LEFT], 0);

	struct member *snap = NULL;
	int64_t before = version_now_ms();
	size_t n = members_snapshot(m, &snap);
	assert_int_equal(n, 1);
	assert_non_null(snap);
	assert_true(snap[0].self);
	assert_true(snap[0].last_seen >= before); /* self's last_seen is now */
	free(snap);

	members_self_left(m);
	assert_int_equal(get(m, "self").status, MEMBER_LEFT);
	assert_int_equal(members_alive_count(m), 0);
	members_free(m);
	members_free(NULL);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(member_status_name(MEMBER_ALIVE), "alive");
	assert_string_equal(member_status_name(MEMBER_SUSPECT), "alive");
	assert_string_equal(member_status_name(MEMBER_UNHEALTHY), "unhealthy");
	assert_string_equal(member_status_name(MEMBER_LEFT), "left");
}

/* -------------------------------------------------------------- merge */

static void test_merge_adds(void **state)
{
	(void)state;
	struct members *m = table();
	struct member in[3] = {
		mk("a", "10.0.0.1:8000", 10, 500, MEMBER_ALIVE),
		mk("b", "10.0.0.2:8000", 10, 500, MEMBER_UNHEALTHY),
		mk("c", "10.0.0.3:8000", 10, 500, MEMBER_LEFT),
	};

	in[0].self = true; /* a peer's "self" flag means nothing here */
	members_merge(m, in, 3);
	struct member a = get(m, "a");
	assert_false(a.self);
	assert_int_equal(a.status, MEMBER_ALIVE);
	assert_string_equal(a.address, "10.0.0.1:8000");
	assert_int_equal(a.last_seen, 500);
	assert_int_equal(a.incarnation, 10);
	/* another node's unhealthy opinion is not adopted */
	assert_int_equal(get(m, "b").status, MEMBER_ALIVE);
	/* an unknown member that has left is not added */
	assert_false(has(m, "c"));
	assert_int_equal(members_alive_count(m), 3);

	/* a long list grows the table past its first allocation */
	for (int i = 0; i < 40; i++) {
		char id[16], addr[32];
		snprintf(id, sizeof(id), "n%d", i);
		snprintf(addr, sizeof(addr), "10.1.0.%d:8000", i);
		merge1(m, mk(id, addr, 1, 1, MEMBER_ALIVE));
	}
	assert_int_equal(members_alive_count(m), 43);
	assert_true(has(m, "n0"));
	assert_true(has(m, "n39"));
	members_free(m);
}

static void test_merge_last_seen_newest(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 500, MEMBER_ALIVE));
	merge1(m, mk("a", "10.0.0.1:8000", 10, 900, MEMBER_ALIVE));
	assert_int_equal(get(m, "a").last_seen, 900);
	merge1(m, mk("a", "10.0.0.1:8000", 10, 700, MEMBER_ALIVE)); /* older: ignored */
	assert_int_equal(get(m, "a").last_seen, 900);
	/* same incarnation does not change the address */
	merge1(m, mk("a", "10.9.9.9:9999", 10, 950, MEMBER_ALIVE));
	assert_string_equal(get(m, "a").address, "10.0.0.1:8000");
	assert_int_equal(get(m, "a").last_seen, 950);
	/* an older incarnation is ignored entirely */
	merge1(m, mk("a", "10.9.9.9:9999", 9, 5000, MEMBER_LEFT));
	struct member a = get(m, "a");
	assert_int_equal(a.last_seen, 950);
	assert_int_equal(a.status, MEMBER_ALIVE);
	assert_int_equal(a.incarnation, 10);
	members_free(m);
}

static void test_merge_unhealthy_not_adopted(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 500, MEMBER_ALIVE));
	merge1(m, mk("a", "10.0.0.1:8000", 10, 600, MEMBER_UNHEALTHY));
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	assert_int_equal(get(m, "a").last_seen, 600);

	/* and an unhealthy member of ours is not made alive by an old report */
	members_tick(m, 600 + FAILURE + 1);
	assert_int_equal(get(m, "a").status, MEMBER_UNHEALTHY);
	merge1(m, mk("a", "10.0.0.1:8000", 10, 600, MEMBER_ALIVE));
	assert_int_equal(get(m, "a").status, MEMBER_UNHEALTHY);
	members_free(m);
}

static void test_merge_left_sticky(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 500, MEMBER_ALIVE));
	merge1(m, mk("a", "10.0.0.1:8000", 10, 500, MEMBER_LEFT));
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);

	/* same incarnation, alive, even with a newer last_seen: still left */
	merge1(m, mk("a", "10.0.0.1:8000", 10, 9000, MEMBER_ALIVE));
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);
	merge1(m, mk("a", "10.0.0.1:8000", 10, 9500, MEMBER_UNHEALTHY));
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);
	/* direct contact does not undo a leave either */
	members_heard(m, "a", 9600);
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);
	/* nor can it be suspected */
	assert_false(members_suspect(m, "a", 9700));
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);
	assert_int_equal(members_alive_count(m), 1);

	/* a higher incarnation revives it, address and all */
	merge1(m, mk("a", "10.0.0.7:8001", 11, 100, MEMBER_ALIVE));
	struct member a = get(m, "a");
	assert_int_equal(a.status, MEMBER_ALIVE);
	assert_int_equal(a.incarnation, 11);
	assert_string_equal(a.address, "10.0.0.7:8001");
	assert_true(a.last_seen >= 9000); /* last_seen never goes back */
	members_free(m);
}

static void test_merge_higher_incarnation(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 500, MEMBER_ALIVE));
	members_tick(m, 500 + FAILURE + 1);
	assert_int_equal(get(m, "a").status, MEMBER_UNHEALTHY);

	/* restarted: alive again, wholesale */
	struct member in = mk("a", "10.0.0.2:8000", 20, 400, MEMBER_ALIVE);
	in.joined_ts = 777;
	merge1(m, in);
	struct member a = get(m, "a");
	assert_int_equal(a.status, MEMBER_ALIVE);
	assert_int_equal(a.incarnation, 20);
	assert_int_equal(a.joined_ts, 777);
	assert_string_equal(a.address, "10.0.0.2:8000");
	assert_int_equal(a.last_seen, 500);

	/* a suspect member restarted is alive too */
	assert_true(members_suspect(m, "a", 1000));
	merge1(m, mk("a", "10.0.0.2:8000", 21, 400, MEMBER_UNHEALTHY));
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	assert_int_equal(get(m, "a").incarnation, 21);

	/* a higher incarnation that has left is left */
	merge1(m, mk("a", "10.0.0.2:8000", 22, 400, MEMBER_LEFT));
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);
	members_free(m);
}

static void test_merge_never_overwrites_self(void **state)
{
	(void)state;
	struct members *m = table();
	struct member before = get(m, "self");

	merge1(m, mk("self", "10.6.6.6:6666", 999, 99999, MEMBER_LEFT));
	merge1(m, mk("self", "10.6.6.6:6666", 100, 99999, MEMBER_UNHEALTHY));
	merge1(m, mk("self", "10.6.6.6:6666", 1, 1, MEMBER_ALIVE));
	struct member after = get(m, "self");
	assert_memory_equal(&before, &after, sizeof(before));
	/* heard/suspect/left/tick leave self alone too */
	members_heard(m, "self", 5);
	assert_false(members_suspect(m, "self", 5));
	members_left(m, "self", 1000);
	members_tick(m, REMOVAL * 10);
	after = get(m, "self");
	assert_memory_equal(&before, &after, sizeof(before));
	members_free(m);
}

static void test_merge_gossip_clears_suspicion(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 500, MEMBER_ALIVE));
	assert_true(members_suspect(m, "a", 1000));
	/* a report from before the suspicion began does not help */
	merge1(m, mk("a", "10.0.0.1:8000", 10, 900, MEMBER_ALIVE));
	assert_int_equal(get(m, "a").status, MEMBER_SUSPECT);
	/* someone heard from it afterwards */
	merge1(m, mk("a", "10.0.0.1:8000", 10, 1100, MEMBER_ALIVE));
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	members_free(m);
}

/* --------------------------------------------------------------- join */

static void test_join(void **state)
{
	(void)state;
	struct members *m = table();
	char err[256] = "";
	int64_t now = version_now_ms();

	struct member a = mk("a", "10.0.0.1:8000", 10, now, MEMBER_ALIVE);
	assert_int_equal(members_join(m, &a, err, sizeof(err)), 0);
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);

	/* same id, same address: a refresh */
	a.incarnation = 11;
	assert_int_equal(members_join(m, &a, err, sizeof(err)), 0);
	assert_int_equal(get(m, "a").incarnation, 11);

	/* same id, another address, while alive: refused */
	struct member imp = mk("a", "10.0.0.99:8000", 11, now, MEMBER_ALIVE);
	err[0] = '\0';
	assert_int_equal(members_join(m, &imp, err, sizeof(err)), KVS_ECONFLICT);
	assert_true(strlen(err) > 0);
	assert_non_null(strstr(err, "10.0.0.1:8000"));
	assert_string_equal(get(m, "a").address, "10.0.0.1:8000");

	/* also while suspect */
	assert_true(members_suspect(m, "a", now));
	assert_int_equal(members_join(m, &imp, err, sizeof(err)), KVS_ECONFLICT);
	assert_string_equal(get(m, "a").address, "10.0.0.1:8000");

	/* our own id from another address: refused */
	struct member me = mk("self", "10.0.0.50:8000", 100, now, MEMBER_ALIVE);
	assert_int_equal(members_join(m, &me, err, sizeof(err)), KVS_ECONFLICT);
	assert_string_equal(get(m, "self").address, "127.0.0.1:8000");

	/* once it has left, the id may come back from elsewhere */
	members_left(m, "a", 11);
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);
	imp.incarnation = 12;
	assert_int_equal(members_join(m, &imp, err, sizeof(err)), 0);
	assert_string_equal(get(m, "a").address, "10.0.0.99:8000");
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	members_free(m);
}

static void test_join_revives_unhealthy(void **state)
{
	(void)state;
	struct members *m = table();
	char err[256];

	struct member a = mk("a", "10.0.0.1:8000", 10, 500, MEMBER_ALIVE);
	assert_int_equal(members_join(m, &a, err, sizeof(err)), 0);
	members_tick(m, 500 + FAILURE + 1);
	assert_int_equal(get(m, "a").status, MEMBER_UNHEALTHY);
	/* unhealthy: another address may take the id */
	struct member b = mk("a", "10.0.0.2:8000", 11, 500 + FAILURE + 2, MEMBER_ALIVE);
	assert_int_equal(members_join(m, &b, err, sizeof(err)), 0);
	struct member e = get(m, "a");
	assert_int_equal(e.status, MEMBER_ALIVE);
	assert_string_equal(e.address, "10.0.0.2:8000");
	assert_int_equal(e.last_seen, 500 + FAILURE + 2);
	members_free(m);
}

/* ------------------------------------------------------ state machine */

/* members_live_peers() follows every change, without the lock. */
static void test_live_peers(void **state)
{
	(void)state;
	struct members *m = table();
	char err[128];

	assert_int_equal(members_live_peers(m), 0); /* self is not a peer */
	merge1(m, mk("a", "10.0.0.1:8000", 10, 1000, MEMBER_ALIVE));
	struct member b = mk("b", "10.0.0.2:8000", 10, 1000, MEMBER_ALIVE);
	assert_int_equal(members_join(m, &b, err, sizeof(err)), 0);
	assert_int_equal(members_live_peers(m), 2);
	assert_true(members_suspect(m, "a", 2000));
	assert_int_equal(members_live_peers(m), 2); /* suspect still gets pushes */
	members_tick(m, 2000 + SUSPICION + 1);
	assert_int_equal(members_live_peers(m), 1);
	members_heard(m, "a", 9000);
	assert_int_equal(members_live_peers(m), 2);
	members_left(m, "b", 10);
	assert_int_equal(members_live_peers(m), 1);
	members_tick(m, 9000 + REMOVAL + 1); /* a removed, b removed */
	assert_int_equal(members_live_peers(m), 0);
	members_free(m);
}

static void test_suspect_to_unhealthy(void **state)
{
	(void)state;
	struct members *m = table();
	int counts[4];

	merge1(m, mk("a", "10.0.0.1:8000", 10, 1000, MEMBER_ALIVE));
	assert_true(members_suspect(m, "a", 2000));
	assert_false(members_suspect(m, "a", 2100)); /* already suspect */
	assert_false(members_suspect(m, "nobody", 2100));
	struct member a = get(m, "a");
	assert_int_equal(a.status, MEMBER_SUSPECT);
	assert_int_equal(a.suspect_since, 2000);
	/* suspect still counts as alive */
	assert_int_equal(members_alive_count(m), 2);
	members_counts(m, counts);
	assert_int_equal(counts[MEMBER_SUSPECT], 1);

	members_tick(m, 2000 + SUSPICION); /* not past yet */
	assert_int_equal(get(m, "a").status, MEMBER_SUSPECT);
	members_tick(m, 2000 + SUSPICION + 1);
	assert_int_equal(get(m, "a").status, MEMBER_UNHEALTHY);
	assert_int_equal(members_alive_count(m), 1);
	assert_false(members_suspect(m, "a", 9000)); /* unhealthy is not re-suspected */

	/* heard from again: alive */
	members_heard(m, "a", 9000);
	a = get(m, "a");
	assert_int_equal(a.status, MEMBER_ALIVE);
	assert_int_equal(a.last_seen, 9000);
	assert_int_equal(a.suspect_since, 0);
	members_free(m);
}

static void test_heard_clears_suspect(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 1000, MEMBER_ALIVE));
	assert_true(members_suspect(m, "a", 2000));
	members_heard(m, "a", 2500);
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	assert_int_equal(get(m, "a").last_seen, 2500);
	members_tick(m, 2000 + SUSPICION + 10);
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	/* an older contact never moves last_seen back */
	members_heard(m, "a", 100);
	assert_int_equal(get(m, "a").last_seen, 2500);
	members_heard(m, "nobody", 100); /* unknown: ignored */
	members_free(m);
}

static void test_failure_and_removal(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 1000, MEMBER_ALIVE));
	merge1(m, mk("b", "10.0.0.2:8000", 10, 1000, MEMBER_ALIVE));
	merge1(m, mk("c", "10.0.0.3:8000", 10, 1000, MEMBER_ALIVE));
	members_left(m, "c", 10);

	members_tick(m, 1000 + FAILURE);
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	members_heard(m, "b", 1000 + FAILURE);
	members_tick(m, 1000 + FAILURE + 1);
	assert_int_equal(get(m, "a").status, MEMBER_UNHEALTHY);
	assert_int_equal(get(m, "b").status, MEMBER_ALIVE);
	assert_int_equal(get(m, "c").status, MEMBER_LEFT); /* left stays left */

	members_tick(m, 1000 + REMOVAL);
	assert_true(has(m, "a"));
	assert_true(has(m, "c"));
	members_tick(m, 1000 + REMOVAL + 1);
	assert_false(has(m, "a"));
	assert_false(has(m, "c")); /* left members are dropped too */
	assert_true(has(m, "b"));
	assert_true(has(m, "self"));
	members_tick(m, 1000 + FAILURE + REMOVAL + 1);
	assert_false(has(m, "b"));
	assert_true(has(m, "self")); /* never removes self */
	assert_int_equal(members_alive_count(m), 1);

	/* a removed member that gossip brings back is a fresh entry */
	merge1(m, mk("a", "10.0.0.1:8000", 10, 5000000, MEMBER_ALIVE));
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	members_free(m);
}

static void test_left(void **state)
{
	(void)state;
	struct members *m = table();

	merge1(m, mk("a", "10.0.0.1:8000", 10, 1000, MEMBER_ALIVE));
	members_left(m, "a", 9); /* older incarnation's leave: ignored */
	assert_int_equal(get(m, "a").status, MEMBER_ALIVE);
	members_left(m, "a", 10);
	assert_int_equal(get(m, "a").status, MEMBER_LEFT);
	members_left(m, "nobody", 10);
	members_free(m);
}

/* ------------------------------------------------------------- random */

static void test_random(void **state)
{
	(void)state;
	struct members *m = table();
	struct member out[16];

	assert_int_equal(members_random(m, MEMBER_MASK_LIVE, out, 16), 0); /* only self */

	merge1(m, mk("a", "10.0.0.1:8000", 10, 1000, MEMBER_ALIVE));
	merge1(m, mk("b", "10.0.0.2:8000", 10, 1000, MEMBER_ALIVE));
	merge1(m, mk("c", "10.0.0.3:8000", 10, 1000, MEMBER_ALIVE));
	merge1(m, mk("d", "10.0.0.4:8000", 10, 1000, MEMBER_ALIVE));
	merge1(m, mk("e", "10.0.0.5:8000", 10, 1000, MEMBER_ALIVE));
	assert_true(members_suspect(m, "b", 2000));
	members_left(m, "c", 10);
	assert_true(members_suspect(m, "d", 2000));
	members_tick(m, 2000 + SUSPICION + 1); /* d: unhealthy; b too */
	members_heard(m, "b", 2000 + SUSPICION + 2); /* b alive again */
	assert_true(members_suspect(m, "b", 2000 + SUSPICION + 3)); /* b suspect */
	/* now: a alive, b suspect, c left, d unhealthy, e alive */
	assert_int_equal(get(m, "b").status, MEMBER_SUSPECT);
	assert_int_equal(get(m, "d").status, MEMBER_UNHEALTHY);

	int hits[5] = { 0 };
	for (int round = 0; round < 300; round++) {
		size_t n = members_random(m, MEMBER_MASK_LIVE, out, 16);

		assert_int_equal(n, 3); /* a, b, e */
		for (size_t i = 0; i < n; i++) {
			assert_false(out[i].self);
			assert_string_not_equal(out[i].id, "self");
			assert_true(out[i].status == MEMBER_ALIVE || out[i].status == MEMBER_SUSPECT);
			for (size_t j = 0; j < i; j++)
				assert_string_not_equal(out[i].id, out[j].id);
			hits[out[i].id[0] - 'a']++;
		}
		/* fewer asked for than available: distinct, from the mask */
		n = members_random(m, MEMBER_MASK_LIVE, out, 2);
		assert_int_equal(n, 2);
		assert_string_not_equal(out[0].id, out[1].id);
		assert_true(strchr("abe", out[0].id[0]) && strchr("abe", out[1].id[0]));
		hits[out[0].id[0] - 'a']++;
		hits[out[1].id[0] - 'a']++;
	}
	assert_int_equal(hits[2], 0);
	assert_int_equal(hits[3], 0);
	assert_true(hits[0] > 300 && hits[1] > 300 && hits[4] > 300);

	assert_int_equal(members_random(m, 1u << MEMBER_UNHEALTHY, out, 16), 1);
	assert_string_equal(out[0].id, "d");
	assert_int_equal(members_random(m, 1u << MEMBER_LEFT, out, 16), 1);
	assert_string_equal(out[0].id, "c");
	assert_int_equal(members_random(m, 0, out, 16), 0);
	assert_int_equal(members_random(m, MEMBER_MASK_LIVE, out, 0), 0);

	/* self never comes back, even when it matches the mask */
	for (int i = 0; i < 100; i++) {
		size_t n = members_random(m, 0xf, out, 16);
		assert_int_equal(n, 5);
		for (size_t j = 0; j < n; j++)
			assert_string_not_equal(out[j].id, "self");
	}
	members_free(m);
}

/* ---------------------------------------------------------------- cap */

/* Fills list with n distinct members "c<base+i>" at 127.0.0.1 ports. */
static void many(struct member *list, size_t n, size_t base, int64_t seen)
{
	for (size_t i = 0; i < n; i++) {
		char id[32], addr[32];

		snprintf(id, sizeof(id), "c%zu", base + i);
		snprintf(addr, sizeof(addr), "127.0.0.1:%zu", 40000 + (base + i) % 20000);
		list[i] = mk(id, addr, 10, seen, MEMBER_ALIVE);
	}
}

static size_t count_all(struct members *m)
{
	int counts[4];

	members_counts(m, counts);
	return (size_t)(counts[0] + counts[1] + counts[2] + counts[3]);
}

static void test_cap_default_merge(void **state)
{
	(void)state;
	struct members *m = table(); /* no members_set_max: MEMBERS_MAX_DEFAULT */
	struct member *list = calloc(2000, sizeof(*list));

	assert_int_equal(MEMBERS_MAX_DEFAULT, 1024);
	assert_non_null(list);
	many(list, 2000, 0, 500);
	/* 1023 fit beside self; the other 977 are refused */
	assert_int_equal(members_merge(m, list, 2000), 2000 - 1023);
	assert_int_equal(count_all(m), 1024);
	assert_int_equal(members_refused_total(m), 977);
	assert_true(has(m, "self") && has(m, "c0") && has(m, "c1022"));
	assert_false(has(m, "c1023"));
	assert_false(has(m, "c1999"));
	assert_int_equal(members_live_peers(m), 1023);

	/* again: nothing new gets in, nothing is evicted, members in the table
	 * are still updated */
	many(list, 2000, 0, 900);
	assert_int_equal(members_merge(m, list, 2000), 977);
	assert_int_equal(count_all(m), 1024);
	assert_int_equal(get(m, "c5").last_seen, 900);
	assert_int_equal(members_refused_total(m), 2 * 977);

	/* a member that leaves stays counted (left is sticky); one removed
	 * (removal_timeout) makes room for one more */
	members_left(m, "c0", 10);
	assert_int_equal(members_merge(m, &list[1500], 1), 1);
	members_heard(m, "c1", 10 * REMOVAL);
	for (int i = 2; i < 1023; i++) {
		char id[32];
		snprintf(id, sizeof(id), "c%d", i);
		members_heard(m, id, 10 * REMOVAL);
	}
	members_tick(m, 900 + REMOVAL + 1); /* only c0 (last_seen 900) is unheard that long */
	assert_false(has(m, "c0"));
	assert_int_equal(count_all(m), 1023);
	assert_int_equal(members_merge(m, &list[1500], 2), 1);
	assert_true(has(m, "c1500"));
	assert_false(has(m, "c1501"));
	assert_int_equal(count_all(m), 1024);
	free(list);
	members_free(m);
}

static void test_cap_set_max(void **state)
{
	(void)state;
	struct members *m = table();
	struct member list[10];
	char err[128];

	members_set_max(m, 4);
	many(list, 10, 0, 500);
	assert_int_equal(members_merge(m, list, 10), 7);
	assert_int_equal(count_all(m), 4);
	assert_int_equal(members_alive_count(m), 4);

	/* a join of a new member is refused with its own code... */
	struct member j = mk("joiner", "127.0.0.1:9", 10, 500, MEMBER_ALIVE);
	err[0] = '\0';
	assert_int_equal(members_join(m, &j, err, sizeof(err)), KVS_ETOOBIG);
	assert_string_equal(err, "member table full (max_members 4)");
	assert_false(has(m, "joiner"));
	assert_int_equal(members_refused_total(m), 8);
	/* ...a member already in the table may rejoin (a restart) */
	struct member again = mk("c1", "127.0.0.1:40001", 20, 600, MEMBER_ALIVE);
	assert_int_equal(members_join(m, &again, err, sizeof(err)), 0);
	assert_int_equal(get(m, "c1").incarnation, 20);
	assert_int_equal(count_all(m), 4);

	/* lowering the cap never evicts; raising it lets new members in */
	members_set_max(m, 2);
	assert_int_equal(count_all(m), 4);
	assert_int_equal(members_merge(m, &list[5], 1), 1);
	members_set_max(m, 5);
	assert_int_equal(members_merge(m, &list[5], 2), 1);
	assert_true(has(m, "c5"));
	assert_int_equal(count_all(m), 5);
	assert_int_equal(members_join(m, &j, err, sizeof(err)), KVS_ETOOBIG);
	members_free(m);
}

static void test_future_last_seen_is_now(void **state)
{
	(void)state;
	struct members *m = table();
	int64_t before = version_now_ms();
	char err[128];

	/* a record claiming contact in the year 30000 would never be removed */
	merge1(m, mk("future", "127.0.0.1:1", 10, 900000000000000LL, MEMBER_ALIVE));
	int64_t seen = get(m, "future").last_seen;
	assert_true(seen >= before && seen <= version_now_ms());
	merge1(m, mk("future", "127.0.0.1:1", 10, 900000000000000LL, MEMBER_ALIVE));
	assert_true(get(m, "future").last_seen <= version_now_ms());
	merge1(m, mk("future", "127.0.0.1:1", 11, 900000000000000LL, MEMBER_ALIVE));
	assert_true(get(m, "future").last_seen <= version_now_ms());
	struct member j = mk("joiner", "127.0.0.1:2", 10, 900000000000000LL, MEMBER_ALIVE);
	assert_int_equal(members_join(m, &j, err, sizeof(err)), 0);
	assert_true(get(m, "joiner").last_seen <= version_now_ms());
	j.incarnation = 11;
	assert_int_equal(members_join(m, &j, err, sizeof(err)), 0);
	assert_true(get(m, "joiner").last_seen <= version_now_ms());
	/* so removal_timeout applies to it */
	members_tick(m, version_now_ms() + REMOVAL + 1000);
	assert_false(has(m, "future"));
	assert_false(has(m, "joiner"));
	members_free(m);
}

/* --------------------------------------------------------------- JSON */

static void test_json_round_trip(void **state)
{
	(void)state;
	struct member list[4] = {
		mk("self", "127.0.0.1:8000", 1700000000000LL, 1700000000500LL, MEMBER_ALIVE),
		mk("node-2.b_c", "host.example:443", 1700000001000LL, 1700000002000LL,
		   MEMBER_UNHEALTHY),
		mk("n3", "10.0.0.3:9000", 5, 999999999999999LL, MEMBER_LEFT), /* 15 digits: cJSON prints %.15g */
		mk("n4", "10.0.0.4:1", 0, 0, MEMBER_SUSPECT),
	};
	list[0].self = true;
	list[1].joined_ts = 1699999999999LL;

	cJSON *arr = member_list_to_json(list, 4);
	assert_non_null(arr);
	assert_int_equal(cJSON_GetArraySize(arr), 4);

	/* field names and the suspect flag */
	cJSON *o3 = cJSON_GetArrayItem(arr, 3);
	assert_string_equal(cJSON_GetObjectItem(o3, "status")->valuestring, "alive");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o3, "suspect")));
	cJSON *o1 = cJSON_GetArrayItem(arr, 1);
	assert_null(cJSON_GetObjectItem(o1, "suspect"));
	assert_string_equal(cJSON_GetObjectItem(o1, "status")->valuestring, "unhealthy");
	assert_non_null(cJSON_GetObjectItem(o1, "joined_timestamp"));
	assert_non_null(cJSON_GetObjectItem(o1, "last_seen"));
	assert_non_null(cJSON_GetObjectItem(o1, "incarnation"));

	/* through text, as it travels */
	char *text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	arr = cJSON_Parse(text);
	free(text);
	assert_non_null(arr);

	for (int i = 0; i < 4; i++) {
		struct member out;

		memset(&out, 0x33, sizeof(out));
		assert_int_equal(member_from_json(cJSON_GetArrayItem(arr, i), &out), 0);
		assert_string_equal(out.id, list[i].id);
		assert_string_equal(out.address, list[i].address);
		assert_int_equal(out.joined_ts, list[i].joined_ts);
		assert_int_equal(out.incarnation, list[i].incarnation);
		assert_int_equal(out.last_seen, list[i].last_seen);
		/* suspect is our local opinion: it travels as alive */
		assert_int_equal(out.status,
				 list[i].status == MEMBER_SUSPECT ? MEMBER_ALIVE : list[i].status);
		assert_false(out.self);
		assert_int_equal(out.suspect_since, 0);
	}
	cJSON_Delete(arr);

	arr = member_list_to_json(list, 0);
	assert_non_null(arr);
	assert_int_equal(cJSON_GetArraySize(arr), 0);
	cJSON_Delete(arr);
}

static void expect_from_json_refused(const char *text)
{
	cJSON *o = cJSON_Parse(text);
	struct member out, before;

	if (!o) {
		print_error("test JSON does not parse: %s\n", text);
		fail();
	}
	memset(&out, 0x44, sizeof(out));
	before = out;
	if (member_from_json(o, &out) != KVS_EINVAL) {
		print_error("accepted %s\n", text);
		fail();
	}
	assert_memory_equal(&out, &before, sizeof(out));
	cJSON_Delete(o);
}

#define MEMBER_JSON(id, addr, seen, joined, status, inc)                                    \
	"{\"id\":" id ",\"address\":" addr ",\"last_seen\":" seen ",\"joined_timestamp\":" \
	joined ",\"status\":" status ",\"incarnation\":" inc "}"

static void test_from_json_rejects(void **state)
{
	(void)state;
	/* the good one, to be sure the template is right */
	cJSON *o = cJSON_Parse(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"alive\"", "3"));
	struct member out;
	assert_int_equal(member_from_json(o, &out), 0);
	cJSON_Delete(o);
	/* the largest values that travel unchanged, and zero */
	o = cJSON_Parse(MEMBER_JSON("\"a\"", "\"kvs-1.example:65535\"", "999999999999999",
				    "999999999999999", "\"left\"", "0"));
	assert_int_equal(member_from_json(o, &out), 0);
	assert_int_equal(out.last_seen, 999999999999999LL);
	assert_int_equal(out.joined_ts, 999999999999999LL);
	assert_int_equal(out.incarnation, 0);
	assert_string_equal(out.address, "kvs-1.example:65535");
	cJSON_Delete(o);

	/* ids */
	expect_from_json_refused(MEMBER_JSON("\"\"", "\"h:1\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a b\"", "\"h:1\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a/b\"", "\"h:1\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\\\"b\"", "\"h:1\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\\nb\"", "\"h:1\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"caf\xc3\xa9\"", "\"h:1\"", "1", "2", "\"alive\"",
					     "3"));
	expect_from_json_refused(MEMBER_JSON("1", "\"h:1\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused("{\"address\":\"h:1\",\"last_seen\":1,\"joined_timestamp\":2,"
				 "\"status\":\"alive\",\"incarnation\":3}");
	char big[400], text[600];
	memset(big, 'x', CONFIG_ID_MAX);
	big[CONFIG_ID_MAX] = '\0';
	snprintf(text, sizeof(text),
		 "{\"id\":\"%s\",\"address\":\"h:1\",\"last_seen\":1,\"joined_timestamp\":2,"
		 "\"status\":\"alive\",\"incarnation\":3}", big);
	expect_from_json_refused(text);

	/* addresses */
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"host\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\":80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:0\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:65536\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:80x\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h h:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h\\\"x:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h\\u0001:80\"", "1", "2", "\"alive\"",
					     "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "80", "1", "2", "\"alive\"", "3"));
	/* the rules of advertise_address (config_address_valid), no more and no less */
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"http://h:80\"", "1", "2", "\"alive\"",
					     "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"https://h:443\"", "1", "2",
					     "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"[::1]:80\"", "1", "2", "\"alive\"",
					     "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"::1:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h_x:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h/x:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:80/x\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"u@h:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"-h:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h..x:80\"", "1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"256.1.1.1:80\"", "1", "2",
					     "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"1.2.3:80\"", "1", "2", "\"alive\"",
					     "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"caf\u00e9:80\"", "1", "2",
					     "\"alive\"", "3"));

	/* numbers */
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "-1", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "-2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"alive\"", "-3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1.5", "2", "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"alive\"", "\"3\""));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"alive\"",
					     "1e300"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "null", "2", "\"alive\"", "3"));
	/* absurd values: 10^15 and beyond, in each field (cJSON prints 15 digits) */
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1000000000000000", "2",
					     "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "1000000000000000",
					     "\"alive\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"alive\"",
					     "1000000000000000"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"alive\"",
					     "9223372036854775807"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1e16", "2", "\"alive\"",
					     "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "1e400", "\"alive\"",
					     "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"alive\"",
					     "-1e400"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "-0.5", "2", "\"alive\"",
					     "3"));
	expect_from_json_refused("{\"id\":\"a\",\"address\":\"h:1\",\"joined_timestamp\":2,"
				 "\"status\":\"alive\",\"incarnation\":3}");

	/* statuses */
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"suspect\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"ALIVE\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "\"\"", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "1", "3"));
	expect_from_json_refused(MEMBER_JSON("\"a\"", "\"h:1\"", "1", "2", "null", "3"));

	/* not an object */
	expect_from_json_refused("[]");
	expect_from_json_refused("\"a\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_and_self),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_merge_adds),
		cmocka_unit_test(test_merge_last_seen_newest),
		cmocka_unit_test(test_merge_unhealthy_not_adopted),
		cmocka_unit_test(test_merge_left_sticky),
		cmocka_unit_test(test_merge_higher_incarnation),
		cmocka_unit_test(test_merge_never_overwrites_self),
		cmocka_unit_test(test_merge_gossip_clears_suspicion),
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_join_revives_unhealthy),
		cmocka_unit_test(test_live_peers),
		cmocka_unit_test(test_suspect_to_unhealthy),
		cmocka_unit_test(test_heard_clears_suspect),
		cmocka_unit_test(test_failure_and_removal),
		cmocka_unit_test(test_left),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_cap_default_merge),
		cmocka_unit_test(test_cap_set_max),
		cmocka_unit_test(test_future_last_seen_is_now),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_from_json_rejects),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
