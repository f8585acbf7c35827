/*
 * sync.h - pulling data from peers: regular sync of recent items, catch-up
 * while behind, bootstrap of a new node, anti-entropy over the whole key
 * space, and the purge of old tombstones.
 *
 * One sync thread runs every periodic task (sync_start()).  sync_apply()
 * is the entry for every record that arrives from a peer, by push or by
 * pull: it goes through store_apply(STORE_REMOTE), and a same-timestamp,
 * other-UUID version is handed to the conflict resolver.
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

#include "node.h"
#include "wire.h"

struct sync_counts {
	size_t applied;    /* newer: stored */
	size_t stale;      /* same or older: ignored */
	size_t conflicts;  /* same timestamp, other UUID: sent to the resolver */
	size_t failed;     /* storage failures */
	size_t refused;    /* malformed or timestamp out of range: left out alone */
};

/* Starts the sync thread.  Returns 0 or KVS_ENOMEM. */
int sync_start(struct kvs_node *node);

/*
 * Applies records received from a peer (items must carry values, or be
 * tombstones).  Counts into *counts (may be NULL) and /metrics under kind.
 * Returns 0, or KVS_EIO if some record could not be stored.  Any thread.
 */
int sync_apply(struct kvs_node *node, const struct wire_item *items, size_t n,
	       enum sync_kind kind, struct sync_counts *counts);

/*
 * Fetches the full records of keys from the peer at address and applies
 * them (kind for metrics).  Returns 0 or KVS_EPEER/KVS_EIO.
 */
int sync_fetch_apply(struct kvs_node *node, const char *address, const char *const *keys,
		     size_t n, enum sync_kind kind, struct sync_counts *counts);

/* True if the record may be handed to peers (not older than stale_before_ts). */
bool sync_may_share(struct kvs_node *node, const struct kvs_record *r);

#endif
