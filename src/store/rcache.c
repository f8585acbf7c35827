/*
 * rcache.c - bounded cache of encoded records (see rcache.h).
 *
 * Layout: RCACHE_SHARDS shards picked by the top bits of the key's hash,
 * each a chained hash table plus a FIFO list under one mutex, with an equal
 * share of the byte budget.  Eviction is "second chance" (CLOCK): a hit only
 * marks its entry, and an insert evicts from the tail until the shard fits
 * its share, moving marked entries back to the head (unmarked) instead, at
 * most one rotation of the shard per insert, after which marks are ignored.
 * That approximates LRU while a hit writes to no other entry's memory.
 * Records larger than an eighth of a shard's share are never cached, so one
 * big value cannot empty a shard.  The byte count covers entries (keys,
 * records, entry headers), not the hash tables or malloc's own overhead.
 *
 * Coherence: once any reader has got a version, no later reader may get an
 * older one (as with RocksDB alone).  A writer (store_apply, purge, under
 * the path lock) calls rcache_write_begin() before its RocksDB write, which
 * forgets the cached copy, and rcache_put() or rcache_drop() after it.
 * While the write is under way, readers of the key miss and read RocksDB,
 * which answers the old version until the new one lands and the new one
 * after.  Readers take no path lock: on a miss they read RocksDB and offer
 * the result with rcache_fill().  The danger is a fill of a record read
 * before a write landed, arriving after it: the cache would then serve an
 * older version than RocksDB (and than a reader that went to RocksDB
 * meanwhile).  Each shard therefore counts write events (`seq`, bumped at
 * begin and at end) and writes in flight (`writing`); a miss hands out the
 * count as a ticket, and a fill is kept only if the count has not moved and
 * no write is in flight in the shard: a record read while no write to the
 * shard was under way, which is the latest, landing before the next begin.
 */
#include "rcache.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ types */

#define RCACHE_SHARDS 64
#define RCACHE_SHARD_BITS 6
#define RCACHE_MIN_BUCKETS 256
#define RCACHE_MAX_START_BUCKETS (1u << 16)  /* presized tables stop here, then grow */
#define RCACHE_EXPECTED_ENTRY 256            /* bytes, to presize the tables */

struct entry {
	struct entry *hnext;        /* hash chain */
	struct entry *prev, *next;  /* FIFO list, newest first */
	uint64_t hash;
	uint32_t klen, len;         /* key bytes, then record bytes, in data */
	bool used;                  /* hit since it last reached the tail */
	char data[];
};

struct shard {
	pthread_mutex_t lock;       /* guards everything below */
	struct entry **table;       /* nbuckets chains */
	size_t nbuckets;            /* a power of two */
	size_t entries, bytes;
	struct entry lru;           /* sentinel: lru.next is the newest, lru.prev the oldest */
	uint64_t seq;               /* write begins and ends seen, for fill tickets */
	unsigned writing;           /* writes begun and not yet ended */
	uint64_t hits, misses;
} __attribute__((aligned(64)));

struct rcache {
	size_t shard_bytes;         /* budget of each shard */
	size_t max_entry;           /* larger records are not cached */
	struct shard shards[RCACHE_SHARDS];
};

/* --------------------------------------------------------------- internals */

static struct shard *shard_of(struct rcache *c, uint64_t hash)
{
	return &c->shards[hash >> (64 - RCACHE_SHARD_BITS)];
}

static size_t entry_size(const struct entry *e)
{
	return sizeof(*e) + e->klen + e->len;
}

static struct entry **find_slot(struct shard *sh, uint64_t hash, const char *key, size_t klen)
{
	struct entry **pp = &sh->table[hash & (sh->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		const struct entry *e = *pp;
		if (e->hash == hash && e->klen == klen && memcmp(e->data, key, klen) == 0)
			break;
	}
	return pp;
}

static void lru_unlink(struct entry *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push(struct shard *sh, struct entry *e)
{
	e->next = sh->lru.next;
	e->prev = &sh->lru;
	sh->lru.next->prev = e;
	sh->lru.next = e;
}

/* Unlinks *pp (from its chain and the FIFO list) and frees it. */
static void remove_at(struct shard *sh, struct entry **pp)
{
	struct entry *e = *pp;

	*pp = e->hnext;
	lru_unlink(e);
	sh->entries--;
	sh->bytes -= entry_size(e);
	free(e);
}

/* Doubles the table when chains grow past one entry on average; a failed
 * allocation only leaves the chains longer. */
static void maybe_grow(struct shard *sh)
{
	size_t n = sh->nbuckets * 2;
	struct entry **t;

	if (sh->entries <= sh->nbuckets || !(t = calloc(n, sizeof(*t))))
		return;
	for (size_t i = 0; i < sh->nbuckets; i++)
		for (struct entry *e = sh->table[i], *next; e; e = next) {
			next = e->hnext;
			e->hnext = t[e->hash & (n - 1)];
			t[e->hash & (n - 1)] = e;
		}
	free(sh->table);
	sh->table = t;
	sh->nbuckets = n;
}

/* Removes key's entry if cached; the caller holds sh->lock. */
static void forget_locked(struct shard *sh, uint64_t hash, const char *key, size_t klen)
{
	struct entry **pp = find_slot(sh, hash, key, klen);

	if (*pp)
		remove_at(sh, pp);
}

/* Ends a write begun by rcache_write_begin(); the caller holds sh->lock. */
static void end_write_locked(struct shard *sh)
{
	assert(sh->writing > 0); /* rcache_write_begin() came first */
	sh->seq++;
	sh->writing--;
}

/* Inserts or replaces key's record; the caller holds sh->lock. */
static void insert_locked(struct rcache *c, struct shard *sh, uint64_t hash, const char *key,
			  size_t klen, const char *val, size_t len)
{
	size_t need = sizeof(struct entry) + klen + len, chances;
	struct entry *e;

	forget_locked(sh, hash, key, klen);
	/* max_entry < 4 GiB (cache_bytes is capped at 1 TiB), so the lengths fit 32 bits */
	if (need > c->max_entry)
		return;
	/* make room first; second chances for one rotation at most, so it ends */
	chances = sh->entries;
	while (sh->bytes + need > c->shard_bytes && sh->entries > 0) {
		struct entry *old = sh->lru.prev;

		if (old->used && chances > 0) {
			chances--;
			old->used = false;
			lru_unlink(old);
			lru_push(sh, old);
			continue;
		}
		remove_at(sh, find_slot(sh, old->hash, old->data, old->klen));
	}
	if (!(e = malloc(need)))
		return;
	e->hash = hash;
	e->klen = (uint32_t)klen;
	e->len = (uint32_t)len;
	e->used = false;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, len);
	e->hnext = sh->table[hash & (sh->nbuckets - 1)];
	sh->table[hash & (sh->nbuckets - 1)] = e;
	lru_push(sh, e);
	sh->entries++;
	sh->bytes += need;
	maybe_grow(sh);
}

/* ------------------------------------------------------------------ API */

struct rcache *rcache_new(size_t max_bytes)
{
	struct rcache *c;

	size_t start = RCACHE_MIN_BUCKETS;

	if (max_bytes == 0 || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->shard_bytes = max_bytes / RCACHE_SHARDS;
	c->max_entry = c->shard_bytes / 8;
	/* sized for the budget full of typical entries, so tables rarely rehash */
	while (start < RCACHE_MAX_START_BUCKETS && start * RCACHE_EXPECTED_ENTRY < c->shard_bytes)
		start *= 2;
	for (int i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *sh = &c->shards[i];

		pthread_mutex_init(&sh->lock, NULL);
		sh->lru.next = sh->lru.prev = &sh->lru;
		sh->nbuckets = start;
	}
	for (int i = 0; i < RCACHE_SHARDS; i++)
		if (!(c->shards[i].table = calloc(start, sizeof(*c->shards[i].table)))) {
			rcache_free(c);
			return NULL;
		}
	return c;
}

void rcache_free(struct rcache *c)
{
	if (!c)
		return;
	for (int i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *sh = &c->shards[i];

		if (sh->table)
			for (struct entry *e = sh->lru.next, *next; e != &sh->lru; e = next) {
				next = e->next;
				free(e);
			}
		free(sh->table);
		pthread_mutex_destroy(&sh->lock);
	}
	free(c);
}

char *rcache_get(struct rcache *c, uint64_t hash, const char *key, size_t klen, size_t *len,
		 uint64_t *ticket)
{
	struct shard *sh;
	struct entry *e;
	char *copy = NULL;

	*ticket = 0;
	if (!c)
		return NULL;
	sh = shard_of(c, hash);
	pthread_mutex_lock(&sh->lock);
	e = *find_slot(sh, hash, key, klen);
	if (e && (copy = malloc(e->len ? e->len : 1))) {
		memcpy(copy, e->data + e->klen, e->len);
		*len = e->len;
		e->used = true;
		sh->hits++;
	} else {
		*ticket = sh->seq;
		sh->misses++;
	}
	pthread_mutex_unlock(&sh->lock);
	return copy;
}

void rcache_fill(struct rcache *c, uint64_t hash, const char *key, size_t klen, const char *val,
		 size_t len, uint64_t ticket)
{
	struct shard *sh;

	if (!c)
		return;
	sh = shard_of(c, hash);
	pthread_mutex_lock(&sh->lock);
	if (sh->seq == ticket && sh->writing == 0 && !*find_slot(sh, hash, key, klen))
		insert_locked(c, sh, hash, key, klen, val, len);
	pthread_mutex_unlock(&sh->lock);
}

void rcache_write_begin(struct rcache *c, uint64_t hash, const char *key, size_t klen)
{
	struct shard *sh;

	if (!c)
		return;
	sh = shard_of(c, hash);
	pthread_mutex_lock(&sh->lock);
	sh->seq++;
	sh->writing++;
	forget_locked(sh, hash, key, klen);
	pthread_mutex_unlock(&sh->lock);
}

void rcache_put(struct rcache *c, uint64_t hash, const char *key, size_t klen, const char *val,
		size_t len)
{
	struct shard *sh;

	if (!c)
		return;
	sh = shard_of(c, hash);
	pthread_mutex_lock(&sh->lock);
	end_write_locked(sh);
	insert_locked(c, sh, hash, key, klen, val, len);
	pthread_mutex_unlock(&sh->lock);
}

void rcache_drop(struct rcache *c, uint64_t hash, const char *key, size_t klen)
{
	struct shard *sh;

	if (!c)
		return;
	sh = shard_of(c, hash);
	pthread_mutex_lock(&sh->lock);
	end_write_locked(sh);
	forget_locked(sh, hash, key, klen);
	pthread_mutex_unlock(&sh->lock);
}

void rcache_stats(struct rcache *c, struct rcache_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	for (int i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *sh = &c->shards[i];

		pthread_mutex_lock(&sh->lock);
		out->hits += sh->hits;
		out->misses += sh->misses;
		out->entries += sh->entries;
		out->bytes += sh->bytes;
		pthread_mutex_unlock(&sh->lock);
	}
}
