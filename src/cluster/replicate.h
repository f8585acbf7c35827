/*
 * replicate.h - push on write: every local write, once durable, is queued
 * while at least one peer is live, and a replicator thread sends batches of
 * fresh records to every live peer (POST /members/push).  Best effort: a lost push is not retried,
 * the sync layers (sync.h) repair it.
 *
 * The queue is bounded (REPLICATE_QUEUE_BYTES); when full, new records are
 * dropped and counted (kvs_push_dropped_total) rather than blocking writes.
 */
#ifndef KVS_REPLICATE_H
#define KVS_REPLICATE_H

#include "node.h"

#define REPLICATE_QUEUE_BYTES (64u << 20)
#define REPLICATE_BATCH_BYTES (4u << 20)
#define REPLICATE_BATCH_ITEMS 1000

/* Creates the queue and registers it as the store's listener.  NULL on OOM. */
struct replicate *replicate_new(struct kvs_node *node);

/* Starts the replicator thread.  Returns 0 or KVS_ENOMEM. */
int replicate_start(struct kvs_node *node);

/* Frees the queue; call after node_join_threads(). */
void replicate_free(struct replicate *r);

/* Wakes the replicator (used at stop). */
void replicate_wake(struct replicate *r);

/* Records waiting in the queue. */
size_t replicate_pending(struct replicate *r);

#endif
