/*
 * clock.h - peers' clock offsets and the clock guard (SPEC section 10).
 *
 * Each ping this node sends carries its wall clock, and each answer the
 * peer's (gossip.c).  From one round trip (sent at t0, answered at t1,
 * peer clock p) the peer's offset is p - (t0 + t1) / 2: positive when the
 * peer's clock is ahead of this node's.  The newest sample per peer is
 * kept, unless a sample with a shorter round trip is less than 30 s old
 * (a slow answer says less about the offset).
 *
 * clock_check(), run after each probe round, decides whether this node is
 * the odd one out: with at least two alive peers whose offsets are known,
 * if the lower median of their absolute offsets passes 80% of
 * max_clock_offset_ms, the node is "skewed" (logged clock_skew once; client
 * writes answered 503; /health says "clock": "skewed") until it agrees
 * again (logged clock_ok).  With fewer peers nobody can tell who is wrong:
 * an offset past the mark is only logged (clock_offset_warning).
 *
 * Each ping answer also says how the peer is doing (struct clock_status:
 * its mode, live keys, newest version and push queue), kept beside its
 * offset for /members/ and the web console (SPEC section 14).
 *
 * The offsets live in node->clocks, guarded by its own mutex; any thread.
 */
#ifndef KVS_CLOCK_H
#define KVS_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "node.h"

struct clocks;

struct clocks *clocks_new(void);
void clocks_free(struct clocks *c);

/* Records one round trip to peer id: sent at t0, answered at t1 (this
 * node's wall clock, ms), the peer's clock read as peer_ms. */
void clock_sample(struct kvs_node *node, const char *id, int64_t t0, int64_t t1,
		  int64_t peer_ms);

/* The known offset of peer id in ms (peer minus this node), or false. */
bool clock_offset(struct kvs_node *node, const char *id, int64_t *offset_ms);

/* A peer's own report in its last ping answer. */
struct clock_status {
	int mode;            /* enum node_mode */
	int64_t keys;        /* live keys it stores */
	int64_t latest_ts;   /* newest version timestamp it stores, ms */
	int64_t push_queue;  /* its local writes not yet pushed */
	int64_t at_ms;       /* when the answer came (this node's clock) */
};

/* Keeps st as peer id's latest status (dropped when the table is full). */
void clock_status_set(struct kvs_node *node, const char *id, const struct clock_status *st);

/* Peer id's latest status into *st, or false if none came yet. */
bool clock_status_get(struct kvs_node *node, const char *id, struct clock_status *st);

/* This node's own status now (at_ms: now). */
void clock_status_self(struct kvs_node *node, struct clock_status *st);

/* Adds st's fields to object o: "mode", "keys", "latest_ts", "push_queue"
 * (what a ping answer carries, and /members/ shows). */
void clock_status_json(const struct clock_status *st, cJSON *o);

/* Reads those fields from a peer's ping answer o, strictly (a known mode,
 * integers in 0..10^15-1), at_ms set to now.  false if any is missing or
 * bad (*st then untouched): a peer of an older version sends none. */
bool clock_status_parse(const cJSON *o, struct clock_status *st);

/* Re-decides node->clock_skewed from the alive peers' offsets. */
void clock_check(struct kvs_node *node);

/* Appends kvs_clock_offset_seconds{peer} for every alive peer with a known
 * offset, and kvs_clock_skewed, to b (Prometheus text). */
void clock_metrics(struct kvs_node *node, struct buf *b);

#endif
