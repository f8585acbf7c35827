/*
 * store.h - the RocksDB store and its one write door, store_apply().
 *
 * Column families (DESIGN.md, "Storage layout"):
 *   records    path -> record (record.h): version, tombstone flag, JSON bytes
 *   by_time    ts (8 bytes BE) + path -> UUID (16 bytes): time order of the
 *              current version of every path, tombstones included
 *   by_bucket  bucket (2 bytes BE) + path -> empty: the paths of one
 *              anti-entropy bucket, listed without a full scan (the versions
 *              are read from records; data dirs written before this kept
 *              ts + UUID here, which is ignored)
 *   meta       node facts that survive restarts (joined_timestamp, ...)
 *   changes    index (8 bytes BE) -> change (type, path, record): the change
 *              index of SPEC section 7, the node's last watch_history
 *              changes, written in the same batch as the change itself
 *   expiry     expires (8 bytes BE) + path -> empty: the values with a TTL
 *              in expiry order, for the reaper (expiry.c)
 *
 * Every change to the data goes through store_apply(): it takes a per-path
 * lock, reads the current version, decides, and writes the record, its
 * index entries and its change-index entry in one WriteBatch, then updates
 * the digests and counters, calls the listener (the replicate queue) and
 * tells the watch hub, while still holding the path lock, so listeners see
 * the writes to one path in order.
 *
 * Threads: every function may be called from any thread once store_open()
 * has returned; store_close() must run after all other calls have ended.
 * RocksDB lives behind this module only.
 *
 * For tests: every RocksDB call that reads, writes or walks data goes
 * through the function table of store_io.h (the real functions by
 * default), which a test overrides to make a write, a read or a walk fail
 * and check that the store reports KVS_EIO and leaves no trace.
 */
#ifndef KVS_STORE_H
#define KVS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub.h"
#include "rcache.h"
#include "record.h"

#define STORE_BUCKETS 4096 /* anti-entropy digest buckets */

struct store;

enum store_origin {
	STORE_LOCAL,   /* a client write: gets a new version above the current one */
	STORE_REMOTE,  /* a peer's version: applied only if newer */
	STORE_RESOLVE, /* a conflict's winner: replaces only the expected loser */
};

/*
 * Called after each successful apply, with the path lock held: must be
 * quick and must not call store_apply() for the same path.  rec is borrowed
 * for the call only.
 */
typedef void (*store_listener_fn)(void *ctx, const char *path, size_t len,
				  const struct kvs_record *rec, enum store_origin origin);

/* Counters kept by the store (approximate under concurrent writes). */
struct store_stats {
	int64_t keys;        /* live values */
	int64_t tombstones;  /* delete markers not yet purged */
	int64_t value_bytes; /* bytes of live JSON values */
	struct rcache_stats cache; /* the record cache (cache_bytes) */
};

/*
 * Opens (creating if missing) the store in dir.  sync_writes makes every
 * write fsync the WAL.  cache_bytes bounds the record cache in front of
 * RocksDB (0 turns it off).  Scans the records once to rebuild the digests
 * and counters.  Returns NULL with a message in err on failure.
 */
struct store *store_open(const char *dir, bool sync_writes, size_t cache_bytes, char *err,
			 size_t errlen);

/* Flushes and closes; s may be NULL. */
void store_close(struct store *s);

/* Records from peers (STORE_REMOTE, STORE_RESOLVE) stamped more than ms
 * ahead of this node's clock are refused with KVS_EAHEAD (0: only the
 * one-day sanity limit of version_ts_acceptable).  Call before writes. */
void store_set_clock_limit(struct store *s, int ms);

/* Sets the one listener (NULL to clear).  Call before writes start. */
void store_set_listener(struct store *s, store_listener_fn fn, void *ctx);

/*
 * The one write door (a batch of one op, see store_apply_batch()).
 *   STORE_LOCAL:   rec->v is overwritten with a fresh version whose
 *                  timestamp is above the current one.  A local delete
 *                  (rec->tombstone) of an absent or deleted path returns
 *                  KVS_ENOTFOUND.
 *   STORE_REMOTE:  written only if rec->v is newer than the current
 *                  version (or the path is absent); the very same or an
 *                  older version returns KVS_ESTALE; same timestamp with
 *                  another UUID returns KVS_ECONFLICT.
 *   STORE_RESOLVE: written only if the current version equals *expect
 *                  (or rec->v is newer than it); else KVS_ESTALE.
 * A local write whose timestamp would reach VERSION_TS_LIMIT returns
 * KVS_ETOOBIG; a remote or resolved record whose timestamp fails
 * version_ts_acceptable() (zero, at the limit, or over a day ahead of this
 * node's clock) returns KVS_EINVAL: nothing is written either way.
 * On KVS_ESTALE and KVS_ECONFLICT, *current (if not NULL) receives the
 * stored version.  Returns 0 when written, KVS_EIO on a storage failure
 * (nothing written).  On any error rec->v is left as the caller gave it,
 * the record cache holds nothing new, and digests, counters, the latest
 * timestamp and the listener are untouched: a failed apply leaves no trace.
 */
int store_apply(struct store *s, const char *path, size_t len, struct kvs_record *rec,
		enum store_origin origin, const struct kvs_version *expect,
		struct kvs_version *current);

/* ------------------------------------------------------------ batches */

/* What must hold of a path's current version for a batch to be written
 * (SPEC section 8).  A tombstone, or a value past its expiry, counts as absent. */
enum store_cond {
	STORE_COND_NONE,
	STORE_COND_MATCH,  /* present, and its uuid is match.id */
	STORE_COND_EXISTS, /* present (If-Match: *) */
	STORE_COND_ABSENT, /* absent or deleted (If-None-Match: *) */
	STORE_COND_IS,     /* the current version is match (ts and uuid), even
	                    * expired: the reaper's condition */
};

/* Most ops in one batch (a transaction's limit, SPEC section 8). */
#define STORE_BATCH_MAX 128

/* One op of store_apply_batch(). */
struct store_op {
	/* in */
	const char *path;
	size_t len;
	struct kvs_record rec;        /* the record to write (tombstone: delete) */
	bool check;                   /* a check only: writes nothing */
	enum store_cond cond;
	struct kvs_version match;     /* STORE_COND_MATCH: the uuid (id) wanted */
	const struct kvs_version *expect; /* STORE_RESOLVE: the loser */
	/* out */
	int rc;                       /* 0: written (or a check that held);
	                               * KVS_EPRECOND: its condition failed;
	                               * else why this op wrote nothing (as
	                               * store_apply returns) */
	bool had;                     /* a current record was found ... */
	struct kvs_record current;    /* ... with this version and tombstone flag
	                               * (value and origin not kept) */
	uint64_t index;               /* its change index (0: none) */
};

/*
 * Called once per written batch of more than one op, instead of the
 * listener, with the path locks held: ops[i] with rc == 0 and !check were
 * written.  Same rules as store_listener_fn.
 */
typedef void (*store_batch_listener_fn)(void *ctx, const struct store_op *ops, size_t n,
					enum store_origin origin);

/* Sets the batch listener (NULL: batches go to the listener op by op). */
void store_set_batch_listener(struct store *s, store_batch_listener_fn fn, void *ctx);

/*
 * The write door's batch form: up to STORE_BATCH_MAX ops on distinct paths
 * (KVS_EINVAL otherwise).  Takes the ops' path locks in one fixed order (so
 * two batches never deadlock), reads every current version, checks every
 * condition, and then:
 *   - if a condition fails: writes nothing, marks the failed ops
 *     KVS_EPRECOND (the others 0) and returns KVS_EPRECOND;
 *   - else decides each write op as store_apply() does for origin (an op
 *     that is refused, e.g. stale, or a local delete of an absent path,
 *     keeps its rc and is left out) and writes the others, their index
 *     entries and their changes (consecutive indexes) in one WriteBatch:
 *     all or nothing.  Returns 0, or KVS_EIO / KVS_ENOMEM with nothing
 *     written.
 * Local ops get fresh versions in ops[i].rec.v.  Readers never see part of
 * a batch: RocksDB applies a WriteBatch at once, and the record cache
 * forgets every path of the batch before it is written.
 */
int store_apply_batch(struct store *s, struct store_op *ops, size_t n, enum store_origin origin);

/* A record read from the store: rec points into raw, which the caller
 * releases with store_value_release(). */
struct store_value {
	struct kvs_record rec;
	char *raw;
};

/*
 * Reads the current record of path, tombstones included (check
 * out->rec.tombstone).  Returns 0, KVS_ENOTFOUND, or KVS_EIO.
 */
int store_get(struct store *s, const char *path, size_t len, struct store_value *out);
void store_value_release(struct store_value *v);

/* Called once per listed item; key and rec are borrowed for the call.
 * Returning non-zero stops the walk and is passed back. */
typedef int (*store_item_fn)(void *ctx, const char *key, size_t klen,
			     const struct kvs_record *rec);

/*
 * Walks live values (no tombstones, nothing expired) whose key starts with prefix, in
 * bytewise key order, starting after the key `after` (exclusive; NULL or
 * empty for the first), at most limit of them.  *more is set to true if
 * another live key under the prefix follows the last one given.
 * Returns 0, the callback's non-zero value, or KVS_EIO: a walk that fails
 * part-way may have called fn for some items first, so the caller drops
 * what it gathered (the same holds for the scans below).
 */
int store_list(struct store *s, const char *prefix, size_t plen, const char *after,
	       size_t alen, size_t limit, store_item_fn fn, void *ctx, bool *more);

/*
 * Walks the time index: current versions of all paths (tombstones
 * included) with (ts, path) > (from_ts, from_key), ascending; or, when
 * descending, those with (ts, path) < (from_ts, from_key), newest first
 * (from_ts <= 0: from the newest of all).  At most limit items.  The
 * callback gets the full record.  Returns 0, the callback's non-zero
 * value, KVS_ENOMEM or KVS_EIO.
 */
int store_scan_time(struct store *s, int64_t from_ts, const char *from_key, size_t fklen,
		    bool descending, size_t limit, store_item_fn fn, void *ctx);

/*
 * Walks every record as of one moment (a RocksDB snapshot), tombstones and
 * expired values included, versions as stored, in bytewise key order: the
 * source of GET /admin/snapshot.  Writes go on meanwhile and are not seen.
 * No multi-op batch is half-seen: the snapshot is taken while none writes
 * (store.c, "Batches and unordered_write").  Memory does not grow with the
 * data: one iterator, one record at a time; blocks read are kept out of the
 * block cache.  A record that does not decode is logged and skipped.
 * Returns 0, fn's non-zero value, or KVS_EIO.
 */
int store_snapshot(struct store *s, store_item_fn fn, void *ctx);

/* Copies the STORE_BUCKETS digests (XOR of item hashes) into out. */
void store_digests(struct store *s, uint64_t out[STORE_BUCKETS]);

/* The digest bucket a path falls in. */
unsigned store_bucket_of(const char *path, size_t len);

/* Walks every path in one digest bucket (tombstones included), in key
 * order; the callback gets the full record.  Returns 0, the callback's
 * non-zero value, or KVS_EIO. */
int store_scan_bucket(struct store *s, unsigned bucket, store_item_fn fn, void *ctx);

/*
 * Deletes tombstones whose timestamp is older than before_ts (through the
 * time index).  Returns the number purged, or KVS_EIO.
 */
int64_t store_purge_tombstones(struct store *s, int64_t before_ts);

void store_stats(struct store *s, struct store_stats *out);

/* Newest timestamp in the time index, 0 if empty. */
int64_t store_latest_ts(struct store *s);

/* meta column family: small named values.  store_meta_get copies at most
 * cap bytes into out and sets *len; returns 0, KVS_ENOTFOUND or KVS_EIO. */
int store_meta_get(struct store *s, const char *name, void *out, size_t cap, size_t *len);
int store_meta_put(struct store *s, const char *name, const void *val, size_t len);

/* ---------------------------------------------------------- change index */

/* Kinds of change (SPEC section 7, event "type"). */
enum store_change_type { CHANGE_PUT = 1, CHANGE_DELETE = 2, CHANGE_EXPIRE = 3 };

/* One entry of the change index; path and rec borrowed for the callback. */
struct store_change {
	uint64_t index;
	enum store_change_type type;
	const char *path;
	size_t plen;
	struct kvs_record rec; /* the version the change wrote (origin, value) */
};

/* Called once per change; returning non-zero stops the walk and is passed
 * back. */
typedef int (*store_change_fn)(void *ctx, const struct store_change *ch);

/*
 * Turns the change index on, keeping the last `keep` changes (0: off, the
 * default after store_open; /watch/ is then unavailable).  Starts the
 * trimmer thread, which deletes older entries about once a second, never
 * in the write path.  Call once, before writes start.  Returns 0 or
 * KVS_ENOMEM (no thread: the index is left off).
 */
int store_changes_enable(struct store *s, uint64_t keep);

/* Whether the change index is on. */
bool store_changes_on(struct store *s);

/* The node's current index: every change up to it is readable. */
uint64_t store_index(struct store *s);

/* The last index given to a change, finished or not (>= store_index()). */
uint64_t store_index_taken(struct store *s);

/* The first index still kept (store_index() + 1 when none is). */
uint64_t store_index_oldest(struct store *s);

/* Waits until store_index() >= index or the monotonic clock (hub_now_us())
 * passes deadline_us.  Returns whether the index was reached. */
bool store_index_wait(struct store *s, uint64_t index, uint64_t deadline_us);

/*
 * Walks the changes with after < index <= upto, ascending, calling fn for
 * each.  Returns 0, fn's non-zero value, or KVS_EIO.  An entry that does
 * not decode is logged and skipped.
 */
int store_changes_read(struct store *s, uint64_t after, uint64_t upto, store_change_fn fn,
		       void *ctx);

/* Calls fn for the change with this index.  Returns fn's value, KVS_ENOTFOUND
 * (trimmed, or an index whose write failed), or KVS_EIO. */
int store_change_get(struct store *s, uint64_t index, store_change_fn fn, void *ctx);

/* ---------------------------------------------------------------- expiry */

/*
 * The version of the tombstone that replaces the expired value `expired`:
 * timestamp = its expiry, uuid derived from its uuid.  Every node derives
 * the same one, so expiry never makes a conflict (expiry.c).
 */
void store_expire_version(const struct kvs_record *expired, struct kvs_version *out);

/* Starts the reaper thread, which turns expired values into those
 * tombstones about every 100 ms (store_close stops it).  Returns 0 or
 * KVS_ENOMEM. */
int store_expiry_start(struct store *s);

/* Values the reaper has turned into tombstones since the start. */
uint64_t store_expiry_reaped(struct store *s);

/* The hub store_apply() notifies of each change (hub.h). */
struct hub *store_hub(struct store *s);

#endif
