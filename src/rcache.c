/*
 * rcache.c - bounded cache of encoded records (see rcache.h).
 *
 * Layout: RCACHE_SHARDS shards picked by the top bits of the key's hash,
 * each a chained hash table plus a FIFO list under one mutex, with an equal
 * share of the byte budget.  Eviction is "second chance" (CLOCK): a hit only
 * marks its entry, and an insert evicts from the tail until the shard fits
 * its share, moving marked entries back to the head (unmarked) instead.
 * That approximates LRU while a hit writes to no other entry's memory.
 * Records larger than an eighth of a shard's share are never cached, so one
 * big value cannot empty a shard.
 *
 * Coherence.  Writers (store_apply, purge) change RocksDB first and then
 * call rcache_put/rcache_drop, under the path lock.  Readers take no path
 * lock: on a miss they read RocksDB and offer the result with rcache_fill.
 * The danger is a reader that read the old record, then a writer that
 * stored and cached the new one, then the reader's fill putting the old
 * record back.  Each shard therefore counts writes (`seq`); a miss hands out
 * the count as a ticket, and a fill is dropped when the count has moved.
 * A writer's update lands either after the reader's fill (and replaces it)
 * or before it (and the fill is refused), so the cache never holds a
 * version older than the newest one written.
 */
#include "rcache.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ types */

#define RCACHE_SHARDS 64
#define RCACHE_SHARD_BITS 6
#define RCACHE_MIN_BUCKETS 256

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
	uint64_t seq;               /* writes seen, for fill tickets */
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

/* Unlinks *pp (from its chain and the LRU list) and frees it. */
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

/* Inserts or replaces key's record; the caller holds sh->lock. */
static void store_locked(struct rcache *c, struct shard *sh, uint64_t hash, const char *key,
			 size_t klen, const char *val, size_t len)
{
	struct entry **pp = find_slot(sh, hash, key, klen);
	struct entry *e;

	if (*pp)
		remove_at(sh, pp);
	if (sizeof(*e) + klen + len > c->max_entry || !(e = malloc(sizeof(*e) + klen + len)))
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
	sh->bytes += entry_size(e);
	while (sh->bytes > c->shard_bytes && sh->lru.prev != e) {
		struct entry *old = sh->lru.prev;

		if (old->used) { /* second chance; terminates: each pass clears one mark */
			old->used = false;
			lru_unlink(old);
			lru_push(sh, old);
			continue;
		}
		remove_at(sh, find_slot(sh, old->hash, old->data, old->klen));
	}
	maybe_grow(sh);
}

/* ------------------------------------------------------------------ API */

struct rcache *rcache_new(size_t max_bytes)
{
	struct rcache *c;

	if (max_bytes == 0 || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->shard_bytes = max_bytes / RCACHE_SHARDS;
	c->max_entry = c->shard_bytes / 8;
	for (int i = 0; i < RCACHE_SHARDS; i++) {
		struct shard *sh = &c->shards[i];

		pthread_mutex_init(&sh->lock, NULL);
		sh->lru.next = sh->lru.prev = &sh->lru;
		sh->nbuckets = RCACHE_MIN_BUCKETS;
		if (!(sh->table = calloc(sh->nbuckets, sizeof(*sh->table)))) {
			rcache_free(c);
			return NULL;
		}
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
	if (sh->seq == ticket && !*find_slot(sh, hash, key, klen))
		store_locked(c, sh, hash, key, klen, val, len);
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
	sh->seq++;
	store_locked(c, sh, hash, key, klen, val, len);
	pthread_mutex_unlock(&sh->lock);
}

void rcache_drop(struct rcache *c, uint64_t hash, const char *key, size_t klen)
{
	struct shard *sh;
	struct entry **pp;

	if (!c)
		return;
	sh = shard_of(c, hash);
	pthread_mutex_lock(&sh->lock);
	sh->seq++;
	if (*(pp = find_slot(sh, hash, key, klen)))
		remove_at(sh, pp);
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
