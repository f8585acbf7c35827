/*
 * hub.h - the watch hub: who waits for changes to which keys, and waking
 * exactly them (SPEC section 7, DESIGN.md "Watches").
 *
 * A watcher registers a waiter for one key ("a/b"), a prefix ("a/b/") or
 * everything (""); store_apply() calls hub_notify() with each change's
 * path and index, which finds the waiters of that path (the key itself,
 * each of its prefixes ending in '/', and "") in a hash table, records the
 * index in each waiter and wakes it.  A write costs one hash lookup per
 * level of its path while someone watches, and an atomic load when nobody
 * does: a thousand watchers on keys that rarely change wake no thread on
 * the writes they do not watch.
 *
 * A waiter keeps up to HUB_HITS indexes; past that it remembers only the
 * range it missed (the watcher then reads the change index over it).
 *
 * Threads: any.  One mutex (the hub lock of node.h's lock order) guards the
 * table and every waiter's hits; hub_notify() takes it inside
 * store_apply() under a path lock, and calls nothing but
 * pthread_cond_signal while holding it.
 */
#ifndef KVS_STORE_HUB_H
#define KVS_STORE_HUB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HUB_HITS 64 /* indexes a waiter keeps before it falls back to a range */

struct hub;

/* One watcher.  The caller sets key, klen and prefix before hub_add() and
 * keeps the memory (and key) until hub_remove(); the rest is the hub's. */
struct hub_waiter {
	const char *key;          /* a key, or a prefix ending in '/', or "" */
	size_t klen;
	bool prefix;              /* key is a prefix (or "": everything) */

	/* the hub's, under its lock */
	pthread_cond_t cond;
	uint64_t hits[HUB_HITS];  /* indexes of matching changes, ascending */
	unsigned nhits;
	uint64_t over_lo, over_hi; /* matching changes not in hits (0: none) */
	bool kicked;              /* hub_kick(): wake up and look around */
	unsigned bucket;
	struct hub_waiter *next, *prev;
};

/* A new, empty hub, or NULL when out of memory. */
struct hub *hub_new(void);
/* Frees h; no waiter may be registered. */
void hub_free(struct hub *h);

void hub_add(struct hub *h, struct hub_waiter *w);
void hub_remove(struct hub *h, struct hub_waiter *w);

/* The change with this index touched path: records it in, and wakes, the
 * waiters that watch path.  Indexes may arrive out of order. */
void hub_notify(struct hub *h, const char *path, size_t len, uint64_t index);

/*
 * Waits until w has a hit or a missed range recorded, is kicked, or the
 * monotonic clock (hub_now_us()) passes deadline_us.  Returns at once if
 * something is recorded already.
 */
void hub_wait(struct hub *h, struct hub_waiter *w, uint64_t deadline_us);

/*
 * Takes what w has recorded at or below upto: its hits (ascending, at most
 * cap of them, into out; *n their count), whether more hits at or below
 * upto are left past cap (*more), and whether a missed range starts at or
 * below upto (*scan: the caller must read the change index over (its
 * cursor, upto] instead).  Hits and the range above upto stay.  Clears the
 * kick.
 */
void hub_take(struct hub *h, struct hub_waiter *w, uint64_t upto, uint64_t *out, size_t cap,
	      size_t *n, bool *more, bool *scan);

/* Whether w has hits or a missed range at all (any index). */
bool hub_pending(struct hub *h, struct hub_waiter *w);

/* Wakes every waiter (node stopping). */
void hub_kick_all(struct hub *h);

/* Waiters registered now. */
size_t hub_count(struct hub *h);

/* The monotonic clock in microseconds. */
uint64_t hub_now_us(void);

#endif
