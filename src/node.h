/*
 * node.h - struct kvs_node, the one holder of a node's shared state.
 *
 * main.c creates one kvs_node and hands it to every module: to HTTP
 * handlers through civetweb's user data, to background threads as their
 * argument.  There is no other global mutable state but the signal flag in
 * main.c.  Fields are grouped by subsystem; each lock sits beside what it
 * guards.
 *
 * Modes (SPEC section 5): normal <-> syncing (bootstrap, then normal);
 * read-only is fixed by the config for the node's lifetime.
 *
 * Lock order.  Every lock of the node, outermost first; a thread holding
 * one may take only locks further down this list, never one above it:
 *   1. a store path lock (store.c path_locks[], held by store_apply for
 *      one path; a future batch form must take several in index order)
 *   2. a record-cache shard lock (rcache.c), taken inside store_apply
 *   3. the push queue lock (replicate.c), taken by the store listener
 *      inside store_apply; the watch hub lock (store/hub.c) and the change
 *      index lock (store/changes.c), also taken inside store_apply: all
 *      three are leaves (the hub signals condition variables, nothing more)
 *   4. the conflict queue lock (conflict.c), taken by conflict_submit
 *      (called after store_apply returns, never under a path lock today)
 *   5. the member table lock (members.c): leaf, calls nothing while held
 *   6. the connection guard lock (http/conn.c): leaf, only syscalls held
 *   7. stop_lock (node.c): leaf, only waits on stop_cond
 * Leaf locks call no function that could take another lock.  Atomics
 * (metrics, mode, reply_bytes, left, stopping) need no lock.
 */
#ifndef KVS_NODE_H
#define KVS_NODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "member.h"
#include "metrics.h"
#include "store.h"

enum node_mode { MODE_NORMAL, MODE_SYNCING, MODE_READ_ONLY };

struct http_server;
struct members;

struct kvs_node {
	/* configuration: written before threads start, read-only afterwards */
	struct kvs_config cfg;
	const char *config_path;        /* the file cfg came from */

	/* identity */
	int64_t joined_ts;              /* first start of this data dir, ms; from meta */
	int64_t started_ms;             /* this process's start */

	/* data */
	struct store *store;            /* thread-safe on its own */
	struct metrics metrics;         /* atomics */
	_Atomic int mode;               /* enum node_mode */
	_Atomic int64_t reply_bytes;    /* bytes held by listing replies being built,
	                                 * at most NODE_REPLY_BUDGET (node_reply_take) */

	/* lifecycle: stop_lock guards the wait on stop_cond; stopping is read
	 * without it by loops that poll */
	atomic_bool stopping;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;

	/* cluster */
	struct member self;             /* this node's own member record */
	struct members *members;        /* thread-safe on its own */
	atomic_bool left;               /* left the cluster: no gossip, no pushes */
	_Atomic int join_state;         /* enum join_state (gossip.h) */
	int64_t last_alive_ts;          /* previous run's last heartbeat (meta), 0 if none */
	int64_t stale_before_ts;        /* after an absence longer than tombstone_grace:
	                                 * never hand peers records older than this
	                                 * (0 = no restriction) */

	/* services */
	struct http_server *http;
	struct replicate *replicate;    /* push queue, see replicate.h */
	struct conflict *conflict;      /* resolver queue, see conflict.h */
	struct clocks *clocks;          /* peers' clock offsets, see clock.h */
	struct audit *audit;            /* the audit log (audit.h); NULL: none */
	atomic_bool clock_skewed;       /* this clock disagrees with the peers' */
	pthread_t threads[8];           /* background threads, joined at stop */
	int thread_count;
};

/*
 * Sleeps up to ms, waking early when the node stops.  Returns false if the
 * node is stopping.  Any thread.
 */
bool node_sleep_ms(struct kvs_node *node, int64_t ms);

/* Asks every thread to stop and wakes those in node_sleep_ms(). */
void node_request_stop(struct kvs_node *node);

/* Starts fn(node) as a background thread joined by node_join_threads(),
 * named name (at most 15 characters: what `top -H` and perf show). */
int node_spawn(struct kvs_node *node, void *(*fn)(void *), const char *name);

/* Joins every thread started with node_spawn(). */
void node_join_threads(struct kvs_node *node);

/*
 * Memory that listing replies (client listings, peer pages and fetches)
 * may hold at once, over every request: past it a new listing is answered
 * 503 with Retry-After, so parallel listings cannot exhaust the node.
 */
#define NODE_REPLY_BUDGET ((int64_t)256 << 20)

/*
 * Takes bytes from the reply budget.  Returns true if they fit (the caller
 * gives them back with node_reply_give when the reply is sent), false
 * (nothing taken) if the budget is spent.  Any thread.
 */
bool node_reply_take(struct kvs_node *node, int64_t bytes);
void node_reply_give(struct kvs_node *node, int64_t bytes);

/*
 * Switches the node to mode (enum node_mode); on a change, logs
 * mode_change and tells systemd the new status.  Any thread.
 */
void node_set_mode(struct kvs_node *node, int mode);

/*
 * Fills *out with this node's own member record as peers are shown it:
 * node->self with last_seen = now and status left once the node has left,
 * else alive.  Any thread.
 */
void node_self_member(struct kvs_node *node, struct member *out);

static inline bool node_stopping(struct kvs_node *node)
{
	return atomic_load(&node->stopping);
}

/* "normal", "syncing" or "read-only". */
static inline const char *node_mode_name(int mode)
{
	return mode == MODE_SYNCING ? "syncing" : mode == MODE_READ_ONLY ? "read-only" : "normal";
}

#endif
