/*
 * anti_entropy.h - repair over the whole key space, one peer per round.
 *
 * A round compares this node's STORE_BUCKETS bucket digests with a random
 * live peer's (GET /members/digests), lists only the buckets that differ on
 * both sides (GET /members/bucket?b=N, at most AE_MAX_BUCKETS per round,
 * from a random start so a large difference is repaired evenly), then
 * fetches what is newer there (fetch.h) and pushes what is newer here
 * (a push message marked "anti_entropy", push.h).  Traffic grows with the
 * difference, not with the store.
 *
 * Threads: run by the sync thread (sync.c) every anti_entropy_interval.
 */
#ifndef KVS_ANTI_ENTROPY_H
#define KVS_ANTI_ENTROPY_H

#include "node.h"

#define AE_MAX_BUCKETS 256          /* differing buckets repaired per round */
#define AE_PUSH_BYTES (4u << 20)    /* a repair push is sent once it passes this */

/* Runs one round with a random live peer; nothing when there is none or
 * when the node stops.  Failures are logged and left to the next round. */
void anti_entropy_round(struct kvs_node *node);

#endif
