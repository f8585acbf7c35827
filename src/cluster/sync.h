/*
 * sync.h - pulling data from peers: regular sync of recent items, catch-up
 * while behind, bootstrap of a new node, and (anti_entropy.h) repair over
 * the whole key space; plus the purge of old tombstones and the heartbeat.
 *
 * One sync thread runs every periodic task (sync_start()).  Records pulled
 * from peers are fetched through fetch.h and applied through apply.h, the
 * one way in for peer data; pushes arrive through api_peer.c and apply.h.
 *
 * Peer endpoints used (served by api_peer.c):
 *   GET  /members/recent?limit=N[&before_ts=T&before_key=K]  newest first, pairs
 *   GET  /members/since?ts=T&key=K&limit=N[&values=true]     oldest first
 *   POST /members/fetch  {"keys": [...]}                     full records
 *   GET  /members/digests                                    4096 bucket digests
 *   GET  /members/bucket?b=N                                 pairs of one bucket
 *   POST /members/push   {"from": M, "items": [...]}         records to apply
 */
#ifndef KVS_SYNC_H
#define KVS_SYNC_H

#include <stdbool.h>

/* Peer data comes in through apply.h, pushes included: api_peer.c, which
 * serves the endpoints above, reaches it through this header. */
#include "apply.h"
#include "node.h"
#include "record.h"

/* Starts the sync thread.  Returns 0 or KVS_ENOMEM.  Main thread. */
int sync_start(struct kvs_node *node);

/*
 * True if the record may be handed to peers: not older than
 * node->stale_before_ts (a node back from an absence longer than
 * tombstone_grace never hands out what peers may have purged).  Any thread.
 */
bool sync_may_share(struct kvs_node *node, const struct kvs_record *r);

#endif
