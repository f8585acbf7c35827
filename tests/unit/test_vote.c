/*
 * test_vote.c - vote_tally(), the pure vote of vote.h.
 *
 * Rules (SPEC section 5, vote.h): the newest timestamp wins whatever
 * the votes; among versions of that timestamp the one held by most voters
 * wins; on a tie, the version held by the member with the earliest
 * joined_ts; on a further tie, the one held by the smallest id.  Voters that
 * hold nothing do not count; if nobody holds anything the result is -1.
 * A tombstone is a version like any other: the vote struct carries only
 * the version, so a delete gets and casts votes exactly as a value does.
 *
 * Every case is a small table; the tally is checked on every permutation of
 * the table, so the winner never depends on the order answers came in.
 * UUIDs and ids are chosen so that a wrong rule (smallest UUID, first vote,
 * smallest id before joined_ts) picks another version.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vote.h"
#include "version.h"

#define MAX_VOTERS 6

/* One voter of a case: id, joined_ts and the version it holds ('\0' none). */
struct voter {
	const char *id;
	int64_t joined;
	char holds;      /* 'A'..'E', or 0 for a member holding nothing */
};

/* The versions a case may use.  A, B, C share one timestamp; D is newer;
 * E is older.  The UUID bytes put B before A, so "smallest UUID" loses. */
static struct kvs_version version_of(char name)
{
	struct kvs_version v;

	memset(&v, 0, sizeof(v));
	switch (name) {
	case 'A': v.ts = 1000; memset(v.id, 0xaa, sizeof(v.id)); break;
	case 'B': v.ts = 1000; memset(v.id, 0x11, sizeof(v.id)); break;
	case 'C': v.ts = 1000; memset(v.id, 0xcc, sizeof(v.id)); break;
	case 'D': v.ts = 1001; memset(v.id, 0xdd, sizeof(v.id)); break;
	case 'E': v.ts = 999;  memset(v.id, 0x00, sizeof(v.id)); break;
	default: fail_msg("unknown version %c", name);
	}
	return v;
}

/* Builds the vote array for voters[order[i]]. */
static void build(const struct voter *voters, const size_t *order, size_t n,
		  struct vote *out)
{
	memset(out, 0, n * sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		const struct voter *w = &voters[order[i]];

		snprintf(out[i].id, sizeof(out[i].id), "%s", w->id);
		out[i].joined_ts = w->joined;
		out[i].has = w->holds != 0;
		if (w->holds)
			out[i].v = version_of(w->holds);
		else
			out[i].v.ts = 999999; /* garbage an abstainer must not vote with */
	}
}

/* The version name of votes[w], or 0 for -1. */
static char winner_name(const struct vote *votes, int w)
{
	static const char names[] = "ABCDE";

	if (w < 0)
		return 0;
	assert_true(votes[w].has);
	for (const char *p = names; *p; p++) {
		struct kvs_version v = version_of(*p);
		if (version_equal(&v, &votes[w].v))
			return *p;
	}
	fail_msg("winner holds an unknown version");
	return 0;
}

/* Next permutation of order[0..n) in lexicographic order; false at the end. */
static bool next_perm(size_t *order, size_t n)
{
	size_t i, j, t;

	if (n < 2)
		return false;
	for (i = n - 1; i > 0 && order[i - 1] >= order[i]; i--)
		;
	if (i == 0)
		return false;
	for (j = n - 1; order[j] <= order[i - 1]; j--)
		;
	t = order[i - 1], order[i - 1] = order[j], order[j] = t;
	for (j = n - 1; i < j; i++, j--)
		t = order[i], order[i] = order[j], order[j] = t;
	return true;
}

/* Tallies voters in every order; the winner must always be `want` (0: -1). */
static void expect_winner(const struct voter *voters, size_t n, char want)
{
	struct vote votes[MAX_VOTERS];
	size_t order[MAX_VOTERS];

	assert_true(n <= MAX_VOTERS);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	do {
		build(voters, order, n, votes);
		int w = vote_tally(votes, n);
		if (w >= (int)n)
			fail_msg("index %d out of range for %zu votes", w, n);
		char got = winner_name(votes, w);
		if (got != want)
			fail_msg("winner %c, want %c (first voter %s)", got ? got : '-',
				 want ? want : '-', voters[order[0]].id);
	} while (next_perm(order, n));
}

#define WINNER(want, ...)                                                      \
	do {                                                                   \
		const struct voter v_[] = { __VA_ARGS__ };                     \
		expect_winner(v_, sizeof(v_) / sizeof(v_[0]), want);           \
	} while (0)

/* ------------------------------------------------------------------ tests */

/* Most votes wins, even against the oldest member with the smallest id. */
static void test_majority(void **state)
{
	(void)state;
	WINNER('A', { "n1", 100, 'B' }, { "n2", 200, 'A' }, { "n3", 300, 'A' });
	WINNER('A', { "a", 1, 'B' }, { "b", 2, 'C' }, { "c", 3, 'A' }, { "d", 4, 'A' });
	WINNER('C', { "n1", 100, 'A' }, { "n2", 100, 'B' }, { "n3", 300, 'C' },
	       { "n4", 400, 'C' }, { "n5", 500, 'C' }, { "n6", 50, 'A' });
	/* a single voter decides alone */
	WINNER('B', { "solo", 7, 'B' });
}

/* A tie goes to the version held by the earliest joined_ts. */
static void test_tie_oldest_member(void **state)
{
	(void)state;
	/* the older member has the larger id: joined_ts comes first */
	WINNER('A', { "zeta", 100, 'A' }, { "alpha", 200, 'B' });
	WINNER('B', { "zeta", 300, 'A' }, { "alpha", 200, 'B' });
	/* 2-2: the oldest holder of either side decides, whoever else votes */
	WINNER('B', { "n1", 500, 'A' }, { "n2", 600, 'A' }, { "n3", 900, 'B' },
	       { "n4", 400, 'B' });
	/* a three-way 1-1-1 tie */
	WINNER('C', { "x", 30, 'A' }, { "y", 20, 'B' }, { "z", 10, 'C' });
}

/* Same joined_ts too: the smallest id decides. */
static void test_tie_smallest_id(void **state)
{
	(void)state;
	WINNER('A', { "node1", 100, 'A' }, { "node2", 100, 'B' });
	WINNER('B', { "node2", 100, 'A' }, { "node1", 100, 'B' });
	/* the earliest joined of one side beats a smaller id joined later */
	WINNER('A', { "b", 100, 'A' }, { "a", 100, 'B' }, { "c", 50, 'A' }, { "d", 200, 'B' });
	/* ids compare bytewise: "node10" < "node9" */
	WINNER('B', { "node9", 100, 'A' }, { "node10", 100, 'B' });
}

/* A newer timestamp wins whatever the votes; an older one never does. */
static void test_newer_timestamp(void **state)
{
	(void)state;
	WINNER('D', { "n1", 100, 'A' }, { "n2", 200, 'A' }, { "n3", 300, 'A' },
	       { "n4", 400, 'D' });
	WINNER('D', { "n1", 100, 'E' }, { "n2", 200, 'E' }, { "n3", 300, 'D' });
	/* the older E never wins, even with most votes and the oldest member */
	WINNER('A', { "a", 1, 'E' }, { "b", 2, 'E' }, { "c", 3, 'E' }, { "d", 4, 'A' },
	       { "e", 5, 'B' });
	WINNER('B', { "a", 1, 'E' }, { "b", 2, 'E' }, { "c", 3, 'E' }, { "d", 4, 'A' },
	       { "e", 5, 'B' }, { "f", 6, 'B' });
}

/* Nobody holds a version: -1; abstainers never count. */
static void test_nobody_holds(void **state)
{
	(void)state;
	assert_int_equal(vote_tally(NULL, 0), -1);
	WINNER(0, { "n1", 100, 0 });
	WINNER(0, { "n1", 100, 0 }, { "n2", 50, 0 }, { "n3", 10, 0 });
	/* three oldest abstain: the one holder wins */
	WINNER('B', { "n1", 1, 0 }, { "n2", 2, 0 }, { "n3", 3, 0 }, { "n4", 400, 'B' });
	/* abstainers neither tip a tie nor lend their joined_ts */
	WINNER('A', { "n1", 1, 0 }, { "n2", 200, 'A' }, { "n3", 300, 'B' });
}

/*
 * Tombstones: a delete is a version with a UUID and a timestamp, and the
 * tally sees only versions, so its holders count like any other.  Here T
 * (a delete) is played by A and the value by B in both orders of age and
 * numbers: the delete wins when it has the votes or the oldest holder, and
 * loses otherwise, like any version.
 */
static void test_tombstone_votes(void **state)
{
	(void)state;
	/* delete on two of three: the delete wins */
	WINNER('A', { "n1", 100, 'B' }, { "n2", 200, 'A' }, { "n3", 300, 'A' });
	/* a 1-1 delete against a value: the older member's side wins */
	WINNER('A', { "node1", 100, 'A' }, { "node2", 200, 'B' });
	WINNER('B', { "node1", 100, 'B' }, { "node2", 200, 'A' });
	/* a member that purged or never had the path abstains */
	WINNER('A', { "n1", 50, 0 }, { "n2", 100, 'A' }, { "n3", 200, 'B' });
}

/* The index returned always names a voter holding the winner. */
static void test_index_in_range(void **state)
{
	struct vote votes[3];
	size_t order[3] = { 0, 1, 2 };
	const struct voter v[] = { { "n1", 100, 0 }, { "n2", 200, 'A' }, { "n3", 300, 'A' } };

	(void)state;
	build(v, order, 3, votes);
	int w = vote_tally(votes, 3);
	assert_true(w == 1 || w == 2);
	assert_true(votes[w].has);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_majority),
		cmocka_unit_test(test_tie_oldest_member),
		cmocka_unit_test(test_tie_smallest_id),
		cmocka_unit_test(test_newer_timestamp),
		cmocka_unit_test(test_nobody_holds),
		cmocka_unit_test(test_tombstone_votes),
		cmocka_unit_test(test_index_in_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
