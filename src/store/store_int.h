/*
 * store_int.h - what store.c and store_walk.c share, and nobody else may
 * use (SQLite's sqliteInt.h): struct store itself and the helpers both
 * halves of the module need.  Users of the store include store.h only.
 *
 * store.c   open/close, reads, the write door store_apply(), digests and
 *           counters, meta values, and the RocksDB seam (store_io.h)
 * store_walk.c  the walks over the column families: listings, the time
 *           and bucket indexes, and the tombstone purge
 * changes.c the change index: numbering, visibility, reads, trimming
 */
#ifndef KVS_STORE_INT_H
#define KVS_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hub.h"
#include "rcache.h"
#include "store.h"
#include "store_io.h"

#define PATH_LOCKS 1024

/* Indexes given out and not yet finished, at most: more than the threads
 * that can be inside the write door at once times the most a batch takes
 * (STORE_BATCH_MAX). */
#define CHANGE_RING 65536

enum cf_index { CF_DEFAULT, CF_RECORDS, CF_BY_TIME, CF_BY_BUCKET, CF_META, CF_CHANGES,
		CF_EXPIRY, CF_COUNT };

/*
 * The change index's numbering (changes.c).  A write takes the next index
 * (an atomic add), writes its change in the same batch as the record, and
 * then marks the index finished, whether the write succeeded or failed.
 * `visible` is the highest index with every index up to it finished: what
 * readers may read up to, so a watcher never answers an index above a
 * change still being written (and then misses it).
 */
struct change_seq {
	uint64_t keep;                   /* watch_history; 0: no change index */
	_Atomic uint64_t next;           /* the next index to give */
	_Atomic uint64_t visible;        /* every index <= this one is finished */
	_Atomic uint64_t oldest;         /* first index still kept */
	pthread_mutex_t lock;            /* finished[], and the waits below */
	pthread_cond_t moved;            /* visible moved, or stopping */
	uint64_t finished[CHANGE_RING];  /* (lock) finished[i % RING] == i: i is finished */
	int visible_waiters;             /* (lock) threads in store_index_wait */
	bool stopping;                   /* (lock) the trimmer is to end */
	pthread_t trimmer;
	bool trimmer_started;
	bool opened;                     /* lock and cond initialised */
	uint64_t saved_mark;             /* (trimmer, close) visible as last saved in meta */
};

struct store {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_options_t *changes_opts;         /* the changes column family's */
	rocksdb_block_based_table_options_t *table_opts;
	rocksdb_cache_t *cache;
	rocksdb_filterpolicy_t *bloom;
	rocksdb_column_family_handle_t *cf[CF_COUNT];
	rocksdb_writeoptions_t *wopts;           /* sync per config */
	rocksdb_readoptions_t *ropts;
	struct rcache *rcache;                   /* copies of records; NULL = off */
	pthread_mutex_t path_locks[PATH_LOCKS];  /* writers of one path */
	/* Batches of several writes and their readers (store.c, "Batches and
	 * unordered_write"): batch_seq[lock] is odd while such a batch writes
	 * a path of that lock; batch_rw is held exclusively by such a batch
	 * while it writes and shared by a listing while it walks. */
	_Atomic uint32_t batch_seq[PATH_LOCKS];
	pthread_rwlock_t batch_rw;
	_Atomic uint64_t digest[STORE_BUCKETS];  /* XOR of item hashes per bucket */
	_Atomic int64_t keys, tombstones, value_bytes;
	_Atomic int64_t latest_ts;               /* newest ts in by_time */
	store_listener_fn listener;              /* set before writes start */
	void *listener_ctx;
	store_batch_listener_fn batch_listener;  /* batches of several ops */
	void *batch_listener_ctx;
	struct change_seq changes;               /* the change index */
	struct hub *hub;                         /* watchers to wake */
	struct reaper *reaper;                   /* expiry.c; NULL until started */
	int clock_limit_ms;                      /* max_clock_offset_ms; 0: none */
};

/* expiry key: expires (8 bytes BE) + path, into out (len + 8 bytes).
 * Returns its length. */
size_t store_expiry_key(char *out, int64_t expires, const char *path, size_t len);

/* expiry.c: stops the reaper (store_close). */
void store_expiry_stop(struct store *s);

/* The hash that picks a path's lock, cache shard and digest bucket. */
uint64_t store_path_hash(const char *path, size_t len);

/*
 * store_get for a path whose store_path_hash() the caller has computed.
 * fill: on a cache miss, offer the record to the cache (see store.c).
 * Returns 0, KVS_ENOTFOUND or KVS_EIO.
 */
int store_get_hashed(struct store *s, uint64_t hash, const char *path, size_t len,
		     struct store_value *out, bool fill);

/* Moves path's share of the digests and counters from record old to record
 * new (either NULL: absent).  Called under the path lock, after the write. */
void store_account(struct store *s, uint64_t hash, const char *path, size_t len,
		   const struct kvs_record *old, const struct kvs_record *new);

/* by_time key: ts (8 bytes BE) + path, into out (len + 8 bytes).  Returns
 * its length. */
size_t store_time_key(char *out, int64_t ts, const char *path, size_t len);

/* by_bucket key: bucket (2 bytes BE) + path, into out (len + 2 bytes).
 * Returns its length. */
size_t store_bucket_key(char *out, const char *path, size_t len);

/*
 * A RocksDB call failed with err (from an errptr; freed here): logs it as
 * operation op and returns KVS_EIO.
 */
int store_failed(const char *op, char *err);

/*
 * Ends a walk: reads the iterator's error status, destroys it, and returns
 * KVS_EIO (logged as op) if the walk ended on an error, else 0.
 */
int store_walk_end(rocksdb_iterator_t *it, const char *op);

/*
 * Walks every record of `records` with read options ro (a snapshot, or
 * s->ropts), in key order, tombstones and expired values included; a
 * record that does not decode is logged (as op) and skipped.  Returns 0,
 * fn's non-zero value, or KVS_EIO.
 */
int store_walk_records(struct store *s, const rocksdb_readoptions_t *ro, store_item_fn fn,
		       void *ctx, const char *op);

/* changes.c: set up from the `changes` column family at open (after the
 * column families are open), and stop the trimmer at close. */
int store_changes_open(struct store *s);
void store_changes_close(struct store *s);

/*
 * The change index seen from the write door.  A batch that writes count
 * changes takes count consecutive indexes at once (store_change_take: the
 * first, or 0 when the change index is off), appends each change's entry
 * (type, path, the encoded record rec_bytes) to its WriteBatch
 * (store_change_put; nothing for index 0; KVS_ENOMEM), and, written or
 * failed, marks them finished (store_change_done), which moves the visible
 * index and wakes whoever waits for it.  Called under the path locks.
 */
uint64_t store_change_take(struct store *s, size_t count);
int store_change_put(struct store *s, rocksdb_writebatch_t *wb, uint64_t index, const char *path,
		     size_t len, enum store_change_type type, const char *rec_bytes, size_t rec_len);
void store_change_done(struct store *s, uint64_t first, size_t count);

#endif
