/*
 * conflict.h - conflict resolution by majority vote (SPEC section 5).
 *
 * When a node meets a version of a path with the same timestamp as its own
 * but another UUID, it submits the path here.  The resolver thread asks
 * every healthy member which version it holds (POST /members/fetch, which
 * also reports tombstones), counts votes per UUID, its own included, and
 * picks the winner: most votes; on a tie, the version held by the member
 * with the earliest joined_timestamp; on a further tie, the smallest
 * node_id.  A member holding a newer timestamp simply wins by timestamp.
 * If the winner is not what this node stores, it fetches the winner from a
 * holder and stores it with store_apply(STORE_RESOLVE), replacing the
 * loser only if the loser is still what is stored.
 *
 * Votes for one path are rate-limited (CONFLICT_MIN_INTERVAL_MS); every
 * node applies the same rule to the same answers, so there is no
 * ping-pong between versions.
 */
#ifndef KVS_CONFLICT_H
#define KVS_CONFLICT_H

#include <stddef.h>
#include <stdint.h>

#include "node.h"

#define CONFLICT_QUEUE_MAX 10000
#define CONFLICT_MIN_INTERVAL_MS 1000

/* A member's answer about one path, as the vote counts it. */
struct conflict_vote {
	char id[CONFIG_ID_MAX];   /* voter */
	int64_t joined_ts;        /* voter's joined_timestamp */
	bool has;                 /* holds some version */
	struct kvs_version v;     /* that version */
};

/*
 * The pure vote: among votes[0..n), returns the index of a vote holding the
 * winning version, or -1 if nobody holds one.  Newest timestamp first; among
 * versions with that timestamp: most voters, then earliest joined_ts of a
 * holder, then smallest holder id.  Used by the resolver and unit-tested.
 */
int conflict_tally(const struct conflict_vote *votes, size_t n);

struct conflict *conflict_new(struct kvs_node *node);
int conflict_start(struct kvs_node *node);
void conflict_free(struct conflict *c);

/* Queues path for a vote (deduplicated).  Any thread; never blocks long. */
void conflict_submit(struct kvs_node *node, const char *path, size_t len);

/* Wakes the resolver (used at stop). */
void conflict_wake(struct conflict *c);

#endif
