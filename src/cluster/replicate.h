/*
 * replicate.h - push on write: every local write, once durable, is queued
 * while at least one peer is live, and a replicator thread sends batches of
 * fresh records to every live peer (POST /members/push).  Best effort: a lost push is not retried,
 * the sync layers (sync.h) repair it.
 *
 * The queue is bounded (REPLICATE_QUEUE_BYTES of keys and values, checked
 * and charged under one lock, so concurrent writers never pass it); when
 * full, new records are dropped and counted (kvs_push_dropped_total) rather
 * than blocking writes.  Backpressure instead holds writes at the door
 * while the pushes to a peer that answers fall behind (replicate_throttle).
 *
 * Threads: the store listener (any writing thread, inside store_apply) and
 * replicate_enqueue() add to the queue; the replicator thread alone takes
 * from it and sends.
 */
#ifndef KVS_REPLICATE_H
#define KVS_REPLICATE_H

#include "node.h"

#define REPLICATE_QUEUE_BYTES (64u << 20)
#define REPLICATE_BATCH_BYTES (4u << 20)
#define REPLICATE_BATCH_ITEMS 1000
#define REPLICATE_THROTTLE_MAX_MS 1000 /* the longest one write waits for pushes */

/* Creates the queue and registers it as the store's listener (node->store
 * must be open).  NULL on OOM.  Main thread, before writes start. */
struct replicate *replicate_new(struct kvs_node *node);

/* Starts the replicator thread.  Returns 0 or KVS_ENOMEM. */
int replicate_start(struct kvs_node *node);

/* Frees the queue; call after node_join_threads(). */
void replicate_free(struct replicate *r);

/* Wakes the replicator (used at stop). */
void replicate_wake(struct replicate *r);

/* Records waiting in the queue.  Any thread. */
size_t replicate_pending(struct replicate *r);

/*
 * Queues a copy of one local record (path and rec borrowed for the call)
 * for the next push; the store listener calls it for every local write
 * while a peer is live.  Returns 0, or KVS_ETOOBIG (the queue is full) /
 * KVS_ENOMEM, the record dropped and counted in push_dropped.  Any thread;
 * takes the queue lock twice, never blocks long.
 */
int replicate_enqueue(struct replicate *r, const char *path, size_t len,
		      const struct kvs_record *rec);

/*
 * Backpressure for a client write that has just been applied: waits while
 * the pushes to a peer that answers are more than replication_lag_max_ms
 * behind (the oldest record not yet answered by it), up to
 * REPLICATE_THROTTLE_MAX_MS, so a node cannot take writes faster than it
 * can replicate them: on a shared CPU the waiting writers leave the
 * replicator its share.  A peer that does not answer, or whose push in
 * flight is overdue, is never waited for.  Returns 1 if it waited (counted
 * in kvs_writes_throttled_total), 0 at once in the common case (one atomic
 * load).  Call with no lock held; r may be NULL.
 */
int replicate_throttle(struct replicate *r);

#endif
