/*
 * push.h - the push message, the one body of POST /members/push:
 *
 *   {"from": M, "kind": "anti_entropy", "items": [R, ...]}
 *
 * M is the sender's member record (member_to_json), each R a record with
 * its value (wire_record_add).  "kind" is present only on anti-entropy
 * repairs, which the receiver counts as such and not as replication lag;
 * replication (replicate.c) leaves it out.  Both senders build the message
 * here; the receiver is api_peer.c (peer_push), which applies the items
 * through apply.h.
 *
 * The message is built in one buf, records appended as they come, so a
 * batch is encoded once whatever the number of peers it goes to.
 * Pure functions; a push_msg belongs to one thread at a time.
 */
#ifndef KVS_PUSH_H
#define KVS_PUSH_H

#include <stddef.h>

#include "buf.h"
#include "member.h"
#include "metrics.h"
#include "record.h"

/* A push message being built. */
struct push_msg {
	struct buf body;  /* the message text; whole after push_end() */
	size_t n;         /* records added so far */
};

/*
 * Starts a message from `from` (borrowed for the call) in m->body, which
 * never grows past cap bytes.  kind SYNC_ANTI_ENTROPY writes "kind":
 * "anti_entropy"; any other kind writes none.  Release m with
 * push_release() whatever happens next.
 */
void push_begin(struct push_msg *m, size_t cap, const struct member *from, enum sync_kind kind);

/* Appends one record, value included (r and key borrowed for the call). */
void push_add(struct push_msg *m, const char *key, size_t klen, const struct kvs_record *r);

/* The same for a record of a transaction: the records of one transaction
 * go in one message, one after the other, with the same txn (non-zero). */
void push_add_txn(struct push_msg *m, const char *key, size_t klen, const struct kvs_record *r,
		  uint64_t txn);

/*
 * Closes the message.  Returns 0 with m->body.data / m->body.len ready
 * to send, or KVS_ENOMEM / KVS_ETOOBIG when an append failed (out of
 * memory, or the cap passed): nothing usable then.
 */
int push_end(struct push_msg *m);

/* Frees the message's memory; m may be started again with push_begin(). */
void push_release(struct push_msg *m);

#endif
