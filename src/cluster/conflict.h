/*
 * conflict.h - conflict resolution by majority vote (SPEC section 5).
 *
 * When a node meets a version of a path with the same timestamp as its own
 * but another UUID, it submits the path here.  The resolver thread asks
 * every healthy member which version it holds (POST /members/fetch, which
 * also reports tombstones), counts votes per UUID, its own included, and
 * picks the winner (vote.h): most votes; on a tie, the version held by the
 * member with the earliest joined_timestamp; on a further tie, the
 * smallest node_id.  A member holding a newer timestamp simply wins by
 * timestamp.  If the winner is not what this node stores, it takes the
 * winner from a holder's answer and stores it with apply_winner()
 * (store_apply(STORE_RESOLVE)), replacing the loser only if the loser is
 * still what is stored.
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

/* Creates the resolver's queue (empty) for node; NULL on OOM.  Main
 * thread, before the node's threads start; node->conflict holds it. */
struct conflict *conflict_new(struct kvs_node *node);

/* Starts the resolver thread (node->conflict must be set).  Returns 0 or
 * KVS_ENOMEM. */
int conflict_start(struct kvs_node *node);

/* Frees the queue and the paths still in it; c may be NULL.  Call after
 * node_join_threads(). */
void conflict_free(struct conflict *c);

/* Queues a copy of path[0..len) for a vote (deduplicated; dropped when
 * the queue is full or memory is short: a later sync meets the conflict
 * again).  Nothing when node->conflict is NULL.  Any thread; never blocks
 * long. */
void conflict_submit(struct kvs_node *node, const char *path, size_t len);

/* Wakes the resolver (used at stop). */
void conflict_wake(struct conflict *c);

#endif
