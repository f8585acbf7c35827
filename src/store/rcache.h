/*
 * rcache.h - a bounded, sharded cache of encoded records, in front of RocksDB.
 *
 * store.c keeps the current record of recently read or written paths here,
 * so that a GET (and the read-before-write inside store_apply) costs a hash
 * lookup instead of a memtable skiplist search.  The cache never decides
 * anything: it holds copies of what RocksDB holds, and store.c keeps it
 * coherent (see "coherence" in rcache.c).
 *
 * Threads: every function may be called from any thread.  A NULL cache
 * (cache_bytes: 0) is valid everywhere: every lookup misses, every update
 * does nothing.
 */
#ifndef KVS_RCACHE_H
#define KVS_RCACHE_H

#include <stddef.h>
#include <stdint.h>

struct rcache;

struct rcache_stats {
	uint64_t hits, misses;  /* lookups since start */
	uint64_t entries;       /* records held now */
	uint64_t bytes;         /* their size, keys and entry overhead included */
};

/* A cache of at most max_bytes of entries (keys, records and entry headers;
 * records over max_bytes/512 are never cached); NULL when max_bytes is 0 or
 * out of memory.  max_bytes must stay below 2^40 (config caps cache_bytes). */
struct rcache *rcache_new(size_t max_bytes);

/* Frees c and every cached record; c may be NULL.  No call may be running. */
void rcache_free(struct rcache *c);

/*
 * Looks up key (hash: the caller's 64-bit hash of it).  On a hit returns a
 * malloc()ed copy of the encoded record (caller frees) and its length in
 * *len.  On a miss returns NULL, leaves *len alone and sets *ticket, which
 * the caller hands to rcache_fill() with what it then read from RocksDB.
 */
char *rcache_get(struct rcache *c, uint64_t hash, const char *key, size_t klen, size_t *len,
		 uint64_t *ticket);

/*
 * After a miss: offers the record read from RocksDB.  It is kept only if no
 * write to the key's shard began or ended since the ticket was taken and
 * none is under way, so a slow reader can never put back a version older
 * than one a writer has stored (see "coherence" in rcache.c).
 */
void rcache_fill(struct rcache *c, uint64_t hash, const char *key, size_t klen, const char *val,
		 size_t len, uint64_t ticket);

/*
 * A writer is about to change key (of this hash) in RocksDB: forgets the
 * cached copy, and refuses fills in the key's shard until the write ends.
 * Call under the writer's path lock, before the RocksDB write, and end it
 * with exactly one rcache_put() or rcache_drop() for the same key, still
 * under the lock.
 */
void rcache_write_begin(struct rcache *c, uint64_t hash, const char *key, size_t klen);

/* Ends a write that stored val for key: replaces (or adds) the cached copy. */
void rcache_put(struct rcache *c, uint64_t hash, const char *key, size_t klen, const char *val,
		size_t len);

/* Ends a write that deleted key, or that failed: forgets the cached copy. */
void rcache_drop(struct rcache *c, uint64_t hash, const char *key, size_t klen);

/* Counters for /metrics; zeros for a NULL cache. */
void rcache_stats(struct rcache *c, struct rcache_stats *out);

#endif
