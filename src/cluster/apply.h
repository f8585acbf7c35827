/*
 * apply.h - the one way in for data from peers.
 *
 * Every record another node hands this one comes through here, whatever
 * carried it: a push (replication, or an anti-entropy repair), a sync page,
 * a fetch reply, or the winner of a conflict vote.  Here it is
 *   validated  strictly, record by record (wire_items_parse): a malformed
 *              record is left out alone, counted and logged as refused;
 *   applied    through store_apply(), the store's one write door:
 *              STORE_REMOTE for peer records (stored only if newer; same
 *              timestamp and another UUID goes to the conflict resolver),
 *              STORE_RESOLVE for a vote's winner;
 *   counted    in /metrics under its sync kind (fetched, applied,
 *              replication lag for pushes, conflicts, refused records).
 *
 * Threads: any (civetweb workers for pushes, the sync thread, the
 * resolver).  No lock of its own: store_apply() takes the path lock,
 * counters are atomics, and conflict_submit() takes the resolver's queue
 * lock after store_apply() has returned.
 */
#ifndef KVS_APPLY_H
#define KVS_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "node.h"
#include "wire.h"

/* What became of records from a peer; callers add up several calls. */
struct apply_counts {
	size_t applied;    /* newer: stored */
	size_t stale;      /* same or older: ignored */
	size_t conflicts;  /* same timestamp, other UUID: sent to the resolver */
	size_t failed;     /* storage failures */
	size_t refused;    /* malformed or timestamp out of range: left out alone */
};

/*
 * Validates a peer's array of records (a message's or reply's "items";
 * may be NULL) with the node's max_value_bytes.  need_values: every live
 * record must carry its value (false for version-only pages).  Malformed
 * records are left out, counted (kvs_records_refused_total, and
 * counts->refused when counts is not NULL) and logged under peer.
 * Returns 0 with *items (malloc'd, caller frees; strings borrowed from arr)
 * and *n set, or KVS_EINVAL / KVS_ENOMEM with the reason in *why (static)
 * when the whole array is refused: nothing counted, nothing allocated.
 */
int apply_parse(struct kvs_node *node, const char *peer, const cJSON *arr, bool need_values,
		struct wire_item **items, size_t *n, struct apply_counts *counts,
		const char **why);

/*
 * Applies validated records that carry values (or are tombstones), one
 * store_apply(STORE_REMOTE) each.  A conflict is submitted to the
 * resolver; a timestamp out of range is refused for that record alone.
 * Counts into *counts (may be NULL) and into /metrics under kind.
 * Returns 0, or KVS_EIO if some record could not be stored (the others
 * were applied all the same).
 */
int apply_items(struct kvs_node *node, const struct wire_item *items, size_t n,
		enum sync_kind kind, struct apply_counts *counts);

/*
 * apply_parse() then apply_items(): a batch of records from peer (a
 * push).  Returns 0; KVS_EINVAL / KVS_ENOMEM with *why when the batch is
 * refused whole (nothing applied or counted); KVS_EIO on a storage failure
 * (the rest applied).
 */
int apply_batch(struct kvs_node *node, const char *peer, const cJSON *arr,
		enum sync_kind kind, struct apply_counts *counts, const char **why);

/*
 * Stores rec, the winner of a conflict vote on path, in place of loser
 * (the version this node held, NULL if none): store_apply(STORE_RESOLVE),
 * so a newer write that came meanwhile is never replaced.  Counts the
 * conflict resolved when stored.  Returns store_apply()'s code: 0,
 * KVS_ESTALE (superseded), KVS_EINVAL or KVS_EIO.
 */
int apply_winner(struct kvs_node *node, const char *path, size_t len,
		 const struct kvs_record *rec, const struct kvs_version *loser);

/*
 * Counts n records from peer refused one by one (kvs_records_refused_total)
 * and logs it, rate-limited, with reason why (static text; NULL reads
 * "malformed").  Nothing when n is 0.
 */
void apply_refused(struct kvs_node *node, const char *peer, size_t n, const char *why);

#endif
