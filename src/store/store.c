/*
 * store.c - RocksDB storage behind one write door (see store.h).
 *
 * Invariants, all kept by the write door (store_apply_batch(), of which
 * store_apply() is the one-op form) under the paths' locks:
 *   - records[path] holds the current version of path;
 *   - by_time holds exactly one entry per path: (current ts, path);
 *   - by_bucket holds exactly one entry per path (the key alone): it is
 *     written when the path first appears and deleted with the path, so an
 *     overwrite, the common write, costs no bucket index update;
 *   - digest[bucket(path)] is the XOR of item_hash(path, version, tombstone)
 *     over the paths of the bucket;
 *   - the counters match the records (up to concurrent updates in flight).
 * The record, both index entries and the change-index entry (changes.c)
 * change in one WriteBatch, so a crash never leaves them disagreeing.  Digests and counters live in memory only
 * and are rebuilt by one scan of `records` at open.  A write that fails
 * leaves no trace: the cache entry is dropped, and digests, counters,
 * latest_ts and the listener are touched only after RocksDB took the batch.
 *
 * Locks: path_locks[hash(path) % PATH_LOCKS] serialises writers of a path
 * (two paths may share a lock; that only costs concurrency).  Readers take
 * no lock: RocksDB gives each read a consistent snapshot of one key.
 *
 * Reads go through the record cache (rcache.c) first: a memtable lookup is
 * a skiplist search with a cache miss per level, the largest part of a GET
 * and of the read inside store_apply (make bench, perf).  Every change to
 * `records` updates the cache after the RocksDB write, under the path lock;
 * rcache.c explains why a racing reader cannot put an older version back.
 *
 * The module is two files sharing store_int.h: this one, and store_walk.c
 * for the walks over the indexes (listings, time and bucket scans, purge).
 * Every RocksDB call that reads or writes data goes through the store_io
 * table (store_io.h), defined at the end of this file: the seam where tests
 * make RocksDB fail.
 */
#include "store_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "log.h"
#include "rcache.h"

/* ------------------------------------------------------------------ types */

static const char *const cf_names[CF_COUNT] = {
	"default", "records", "by_time", "by_bucket", "meta", "changes", "expiry",
};

/* --------------------------------------------------------------- hashing */

/* FNV-1a over bytes, continuing from h. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* splitmix64 finaliser: spreads FNV's weak high bits. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

uint64_t store_path_hash(const char *path, size_t len)
{
	return mix64(fnv1a(0xcbf29ce484222325ULL, path, len));
}

unsigned store_bucket_of(const char *path, size_t len)
{
	return (unsigned)(store_path_hash(path, len) % STORE_BUCKETS);
}

/* Hash of one item as the digests see it: path, version and tombstone flag. */
static uint64_t item_hash(const char *path, size_t len, const struct kvs_record *r)
{
	uint8_t tail[8 + 16 + 1];

	record_put_be64(tail, (uint64_t)r->v.ts);
	memcpy(tail + 8, r->v.id, 16);
	tail[24] = r->tombstone;
	return mix64(fnv1a(fnv1a(0xcbf29ce484222325ULL, path, len), tail, sizeof(tail)));
}

/* ------------------------------------------------------------- accounting */

/* Only the counters that change are touched: they are shared by every
 * writer thread. */
void store_account(struct store *s, uint64_t hash, const char *path, size_t len,
		   const struct kvs_record *old, const struct kvs_record *new)
{
	uint64_t x = (old ? item_hash(path, len, old) : 0) ^ (new ? item_hash(path, len, new) : 0);
	int64_t keys = 0, tombs = 0, bytes = 0;

	atomic_fetch_xor(&s->digest[hash % STORE_BUCKETS], x);
	if (old && old->tombstone) {
		tombs--;
	} else if (old) {
		keys--;
		bytes -= (int64_t)old->value_len;
	}
	if (new && new->tombstone) {
		tombs++;
	} else if (new) {
		keys++;
		bytes += (int64_t)new->value_len;
	}
	if (keys)
		atomic_fetch_add(&s->keys, keys);
	if (tombs)
		atomic_fetch_add(&s->tombstones, tombs);
	if (bytes)
		atomic_fetch_add(&s->value_bytes, bytes);
}

void store_digests(struct store *s, uint64_t out[STORE_BUCKETS])
{
	for (int i = 0; i < STORE_BUCKETS; i++)
		out[i] = atomic_load(&s->digest[i]);
}

/* ------------------------------------------------------------- open/close */

/* rebuild()'s callback: one record into the digests, counters and latest_ts. */
static int rebuild_one(void *ctx, const char *key, size_t klen, const struct kvs_record *r)
{
	struct store *s = ctx;

	store_account(s, store_path_hash(key, klen), key, klen, NULL, r);
	if (r->v.ts > s->latest_ts)
		s->latest_ts = r->v.ts;
	return 0;
}

/* Rebuilds digests, counters and latest_ts with one scan at open. */
static int rebuild(struct store *s)
{
	return store_walk_records(s, s->ropts, rebuild_one, s, "rebuild");
}

struct store *store_open(const char *dir, bool sync_writes, size_t cache_bytes, char *errbuf,
			 size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	const rocksdb_options_t *cf_opts[CF_COUNT];
	char *err = NULL;

	if (!s) {
		snprintf(errbuf, errlen, "out of memory");
		return NULL;
	}
	for (int i = 0; i < PATH_LOCKS; i++)
		pthread_mutex_init(&s->path_locks[i], NULL);
	pthread_rwlockattr_t rwa;
	pthread_rwlockattr_init(&rwa);
	/* a stream of listings must not starve transactions */
	pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->batch_rw, &rwa);
	pthread_rwlockattr_destroy(&rwa);

	s->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opts, 1);
	rocksdb_options_set_create_missing_column_families(s->opts, 1);
	rocksdb_options_increase_parallelism(s->opts, 2);
	rocksdb_options_set_keep_log_file_num(s->opts, 3);
	/*
	 * RocksDB's own LOG file lives in the data dir.  Debian builds RocksDB
	 * with assertions on, and a failed write to that LOG on a full disk
	 * aborts the process (writable_file_writer.h) while it reports the very
	 * error we want to turn into a 500.  Logging only fatal messages keeps
	 * a full disk an error, not a crash; kvs logs storage errors itself.
	 */
	rocksdb_options_set_info_log_level(s->opts, 4 /* FATAL_LEVEL */);
	/*
	 * Writes: most of a PUT's cost was RocksDB's write-group hand-offs
	 * (futex waits of the 64+ HTTP threads on 2 cores), not the work.
	 * unordered_write lets each writer insert its own batch into the
	 * memtable once its WAL record is written: +50% PUT/s here (make bench).
	 * What it gives up is that a concurrent reader may see part of another
	 * writer's batch, and snapshots are not immutable.  kvs reads one
	 * kind of snapshot, store_snapshot(), taken while no multi-op batch
	 * writes, where a late one-key write only shows that key's old or new
	 * version; writers of one path are serialised by the path lock and
	 * store_apply returns only after its own batch is in the memtable; and
	 * the index walkers re-read each record, so a half-visible batch (record
	 * before its index entries, or the reverse) only shows a version a moment
	 * early or late.  The WAL still holds each batch whole, so a crash
	 * never splits one.  Spinning before sleeping (adaptive yield) only burns
	 * the other core here.
	 */
	rocksdb_options_set_unordered_write(s->opts, 1);
	rocksdb_options_set_enable_write_thread_adaptive_yield(s->opts, 0);
	rocksdb_options_set_max_total_wal_size(s->opts, 64 << 20);
	s->table_opts = rocksdb_block_based_options_create();
	s->cache = rocksdb_cache_create_lru(32 << 20);
	s->bloom = rocksdb_filterpolicy_create_bloom_full(10);
	rocksdb_block_based_options_set_block_cache(s->table_opts, s->cache);
	rocksdb_block_based_options_set_filter_policy(s->table_opts, s->bloom);
	rocksdb_options_set_block_based_table_factory(s->opts, s->table_opts);
	for (int i = 0; i < CF_COUNT; i++)
		cf_opts[i] = s->opts;
	/*
	 * The change index is written once, read soon after (from the
	 * memtable, mostly) and deleted by ranges: compressing it and
	 * compacting it early only cost CPU in the write path's way (PUT/s
	 * with the index on rose from ~0.85 to ~0.92 of off, make bench).
	 */
	s->changes_opts = rocksdb_options_create_copy(s->opts);
	rocksdb_options_set_compression(s->changes_opts, rocksdb_no_compression);
	rocksdb_options_set_level0_file_num_compaction_trigger(s->changes_opts, 16);
	cf_opts[CF_CHANGES] = s->changes_opts;

	s->db = store_io->open_column_families(s->opts, dir, CF_COUNT, cf_names, cf_opts, s->cf,
					       &err);
	if (err) {
		snprintf(errbuf, errlen, "cannot open RocksDB in %s: %s", dir, err);
		free(err);
		s->db = NULL;
		store_close(s);
		return NULL;
	}
	s->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(s->wopts, sync_writes);
	s->ropts = rocksdb_readoptions_create();
	s->rcache = rcache_new(cache_bytes);
	if (cache_bytes > 0 && !s->rcache)
		log_warn("cache_off", "reason=\"out of memory\" cache_bytes=%zu", cache_bytes);
	if (rebuild(s) != 0 || store_changes_open(s) != 0) {
		snprintf(errbuf, errlen, "cannot scan RocksDB in %s", dir);
		store_close(s);
		return NULL;
	}
	return s;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	store_expiry_stop(s);   /* the reaper and the trimmer write: */
	store_changes_close(s); /* stop them first */
	if (s->db) {
		rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
		char *err = NULL;

		rocksdb_flushoptions_set_wait(fo, 1);
		for (int i = 0; i < CF_COUNT; i++) {
			store_io->flush_cf(s->db, fo, s->cf[i], &err);
			if (err) {
				log_warn("store_error", "op=flush error=\"%s\"", err);
				free(err);
				err = NULL;
			}
		}
		rocksdb_flushoptions_destroy(fo);
		for (int i = 0; i < CF_COUNT; i++)
			rocksdb_column_family_handle_destroy(s->cf[i]);
		rocksdb_close(s->db);
	}
	if (s->wopts)
		rocksdb_writeoptions_destroy(s->wopts);
	if (s->ropts)
		rocksdb_readoptions_destroy(s->ropts);
	if (s->opts)
		rocksdb_options_destroy(s->opts);
	if (s->changes_opts)
		rocksdb_options_destroy(s->changes_opts);
	if (s->table_opts)
		rocksdb_block_based_options_destroy(s->table_opts); /* owns the bloom policy */
	if (s->cache)
		rocksdb_cache_destroy(s->cache);
	rcache_free(s->rcache);
	for (int i = 0; i < PATH_LOCKS; i++)
		pthread_mutex_destroy(&s->path_locks[i]);
	pthread_rwlock_destroy(&s->batch_rw);
	free(s);
}

void store_set_listener(struct store *s, store_listener_fn fn, void *ctx)
{
	s->listener = fn;
	s->listener_ctx = ctx;
}

void store_set_clock_limit(struct store *s, int ms)
{
	s->clock_limit_ms = ms;
}

void store_set_batch_listener(struct store *s, store_batch_listener_fn fn, void *ctx)
{
	s->batch_listener = fn;
	s->batch_listener_ctx = ctx;
}

/* ------------------------------------------------------------------ reads */

/*
 * fill: only reads that hint at more reads fill the cache on a miss (client
 * and peer GETs); scans, purges and the read inside a write do not, so they
 * cannot flush the cache with cold records.
 */
int store_get_hashed(struct store *s, uint64_t hash, const char *path, size_t len,
		     struct store_value *out, bool fill)
{
	char *err = NULL, *v;
	size_t vlen = 0;
	uint64_t ticket;
	struct kvs_record r;

	if (!(v = rcache_get(s->rcache, hash, path, len, &vlen, &ticket))) {
		v = store_io->get_cf(s->db, s->ropts, s->cf[CF_RECORDS], path, len, &vlen, &err);
		if (err)
			return store_failed("get", err);
		if (!v)
			return KVS_ENOTFOUND;
		if (fill)
			rcache_fill(s->rcache, hash, path, len, v, vlen, ticket);
	}
	if (record_decode((const uint8_t *)v, vlen, &r) != 0) {
		log_error("store_corrupt", "key=\"%s\"", LOG_ESCN(path, len));
		free(v);
		return KVS_EIO;
	}
	out->rec = r;
	out->raw = v;
	return 0;
}

int store_get(struct store *s, const char *path, size_t len, struct store_value *out)
{
	uint64_t hash = store_path_hash(path, len);
	unsigned l = (unsigned)(hash % PATH_LOCKS);
	uint32_t seq = atomic_load(&s->batch_seq[l]);
	int rc;

	if (!(seq & 1)) {
		rc = store_get_hashed(s, hash, path, len, out, true);
		if (atomic_load(&s->batch_seq[l]) == seq)
			return rc;
		if (rc == 0)
			store_value_release(out);
	}
	/* a batch of several writes was writing under this lock: its other
	 * paths may not be visible yet, so wait for it to end and read again */
	pthread_mutex_lock(&s->path_locks[l]);
	rc = store_get_hashed(s, hash, path, len, out, false);
	pthread_mutex_unlock(&s->path_locks[l]);
	return rc;
}

void store_value_release(struct store_value *v)
{
	free(v->raw); /* from rcache_get or rocksdb_get_cf: both malloc() */
	v->raw = NULL;
}

/* ------------------------------------------------------------------ write */

size_t store_time_key(char *out, int64_t ts, const char *path, size_t len)
{
	record_put_be64((uint8_t *)out, (uint64_t)ts);
	memcpy(out + 8, path, len);
	return len + 8;
}

size_t store_expiry_key(char *out, int64_t expires, const char *path, size_t len)
{
	return store_time_key(out, expires, path, len); /* the same shape */
}

void store_expire_version(const struct kvs_record *expired, struct kvs_version *out)
{
	static const uint8_t mix[16] = { 0x5a, 0xc3, 0x96, 0x3c, 0xa5, 0x69, 0x0f, 0xf0,
					 0x33, 0xcc, 0x55, 0xaa, 0x66, 0x99, 0x12, 0x21 };

	out->ts = expired->expires;
	for (int i = 0; i < 16; i++)
		out->id[i] = expired->v.id[i] ^ mix[i];
	out->id[6] = (uint8_t)((out->id[6] & 0x0f) | 0x40); /* still a UUID v4 */
	out->id[8] = (uint8_t)((out->id[8] & 0x3f) | 0x80);
}

/* True if rec is the tombstone every node derives for cur's expiry. */
static bool is_expiry_of(const struct kvs_record *rec, const struct kvs_record *cur)
{
	struct kvs_version v;

	if (!rec->tombstone || cur->tombstone || cur->expires <= 0)
		return false;
	store_expire_version(cur, &v);
	return version_equal(&v, &rec->v);
}

size_t store_bucket_key(char *out, const char *path, size_t len)
{
	unsigned b = store_bucket_of(path, len);

	out[0] = (char)(b >> 8);
	out[1] = (char)(b & 0xff);
	memcpy(out + 2, path, len);
	return len + 2;
}

/* A peer's record stamped more than limit_ms ahead of this clock (SPEC
 * section 10): not applied now; a later sync brings it once clocks agree. */
static bool too_far_ahead(const struct kvs_record *rec, int limit_ms)
{
	return limit_ms > 0 && rec->v.ts > version_now_ms() + limit_ms;
}

/* Decides whether rec replaces cur (NULL = absent) for origin. */
static int decide(struct kvs_record *rec, const struct kvs_record *cur, enum store_origin origin,
		  const struct kvs_version *expect, int limit_ms)
{
	int rc;

	switch (origin) {
	case STORE_LOCAL:
		if (rec->tombstone && (!cur || !record_live(cur, version_now_ms())))
			return KVS_ENOTFOUND;
		return version_new_local(&rec->v, cur ? &cur->v : NULL);
	case STORE_REMOTE:
		if (!version_ts_acceptable(rec->v.ts, version_now_ms()))
			return KVS_EINVAL;
		if (cur && version_conflicts(&rec->v, &cur->v))
			return KVS_ECONFLICT;
		rc = !cur || version_cmp_ts(&rec->v, &cur->v) > 0 ? 0 : KVS_ESTALE;
		return rc == 0 && too_far_ahead(rec, limit_ms) ? KVS_EAHEAD : rc;
	case STORE_RESOLVE:
		if (!version_ts_acceptable(rec->v.ts, version_now_ms()))
			return KVS_EINVAL;
		if ((!cur || version_cmp_ts(&rec->v, &cur->v) > 0) ||
		    (expect && version_equal(&cur->v, expect) && !version_equal(&cur->v, &rec->v)))
			return too_far_ahead(rec, limit_ms) ? KVS_EAHEAD : 0;
		return KVS_ESTALE;
	}
	return KVS_EINVAL;
}

/* Whether op's condition holds of the current record (have: 0 or
 * KVS_ENOTFOUND).  A tombstone or an expired value counts as absent. */
static bool cond_holds(const struct store_op *op, const struct store_value *cur, int have)
{
	bool live = have == 0 && record_live(&cur->rec, version_now_ms());

	switch (op->cond) {
	case STORE_COND_NONE:
		return true;
	case STORE_COND_MATCH:
		return live && memcmp(cur->rec.v.id, op->match.id, sizeof(op->match.id)) == 0;
	case STORE_COND_EXISTS:
		return live;
	case STORE_COND_ABSENT:
		return !live;
	case STORE_COND_IS:
		return have == 0 && version_equal(&cur->rec.v, &op->match);
	}
	return false;
}

/* What the batch keeps per op besides the caller's struct store_op. */
struct op_state {
	uint64_t hash;
	struct store_value cur; /* the current record (have == 0) */
	int have;               /* 0 or KVS_ENOTFOUND */
	struct kvs_version given; /* put back if the op writes nothing */
	char *enc;              /* the encoded record to write; NULL: none */
	size_t enc_len;
	bool enc_heap;          /* enc was malloc'd */
};

static int cmp_lock(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return (x > y) - (x < y);
}

static bool written(const struct store_op *op)
{
	return op->rc == 0 && !op->check;
}

/* Appends op's record, its index entries and its change to wb. */
static int batch_add(struct store *s, rocksdb_writebatch_t *wb, struct store_op *op,
		     const struct op_state *st, char *kbuf)
{
	const char *path = op->path;
	size_t len = op->len;

	rocksdb_writebatch_put_cf(wb, s->cf[CF_RECORDS], path, len, st->enc, st->enc_len);
	if (st->have == 0)
		rocksdb_writebatch_delete_cf(wb, s->cf[CF_BY_TIME], kbuf,
					     store_time_key(kbuf, st->cur.rec.v.ts, path, len));
	rocksdb_writebatch_put_cf(wb, s->cf[CF_BY_TIME], kbuf,
				  store_time_key(kbuf, op->rec.v.ts, path, len),
				  (const char *)op->rec.v.id, 16);
	if (st->have != 0)
		rocksdb_writebatch_put_cf(wb, s->cf[CF_BY_BUCKET], kbuf,
					  store_bucket_key(kbuf, path, len), "", 0);
	/* the replaced version's expiry entry stays: the reaper drops it when
	 * its time comes and the record has moved on (expiry.c), which keeps
	 * an overwrite to one index write */
	if (!op->rec.tombstone && op->rec.expires > 0)
		rocksdb_writebatch_put_cf(wb, s->cf[CF_EXPIRY], kbuf,
					  store_expiry_key(kbuf, op->rec.expires, path, len), "", 0);
	enum store_change_type type = CHANGE_PUT;
	if (op->rec.tombstone)
		type = st->have == 0 && is_expiry_of(&op->rec, &st->cur.rec) ? CHANGE_EXPIRE
									      : CHANGE_DELETE;
	return store_change_put(s, wb, op->index, path, len, type, st->enc, st->enc_len);
}

/* After RocksDB took the batch: cache, digests, counters, latest_ts,
 * listeners and watchers, still under the path locks. */
static void batch_done(struct store *s, struct store_op *ops, struct op_state *st, size_t n,
		       size_t nwrite, enum store_origin origin)
{
	for (size_t i = 0; i < n; i++) {
		if (!written(&ops[i]))
			continue;
		rcache_put(s->rcache, st[i].hash, ops[i].path, ops[i].len, st[i].enc, st[i].enc_len);
		store_account(s, st[i].hash, ops[i].path, ops[i].len,
			      st[i].have == 0 ? &st[i].cur.rec : NULL, &ops[i].rec);
		int64_t latest = atomic_load(&s->latest_ts);
		while (ops[i].rec.v.ts > latest &&
		       !atomic_compare_exchange_weak(&s->latest_ts, &latest, ops[i].rec.v.ts))
			;
	}
	if (nwrite > 1 && s->batch_listener) {
		s->batch_listener(s->batch_listener_ctx, ops, n, origin);
	} else if (s->listener) {
		for (size_t i = 0; i < n; i++)
			if (written(&ops[i]))
				s->listener(s->listener_ctx, ops[i].path, ops[i].len, &ops[i].rec,
					    origin);
	}
	for (size_t i = 0; i < n; i++)
		if (written(&ops[i]) && ops[i].index)
			hub_notify(s->hub, ops[i].path, ops[i].len, ops[i].index); /* hub.h */
}

/* Reads, checks, decides and encodes every op.  Returns 0 with *nwrite
 * ops to write, KVS_EPRECOND, or KVS_EIO / KVS_ENOMEM. */
static int batch_prepare(struct store *s, struct store_op *ops, struct op_state *st, size_t n,
			 enum store_origin origin, char *enc_small, size_t enc_small_len,
			 size_t *nwrite)
{
	bool failed = false;

	for (size_t i = 0; i < n; i++) {
		st[i].have = store_get_hashed(s, st[i].hash, ops[i].path, ops[i].len, &st[i].cur,
					      false);
		if (st[i].have != 0 && st[i].have != KVS_ENOTFOUND)
			return st[i].have;
		if ((ops[i].had = st[i].have == 0)) {
			ops[i].current = st[i].cur.rec;
			ops[i].current.value = NULL; /* raw is released before the caller looks */
			ops[i].current.value_len = 0;
			ops[i].current.origin = NULL;
			ops[i].current.origin_len = 0;
		}
		if (!cond_holds(&ops[i], &st[i].cur, st[i].have)) {
			ops[i].rc = KVS_EPRECOND;
			failed = true;
		}
	}
	if (failed)
		return KVS_EPRECOND;
	*nwrite = 0;
	for (size_t i = 0; i < n; i++) {
		if (ops[i].check)
			continue;
		ops[i].rc = decide(&ops[i].rec, st[i].have == 0 ? &st[i].cur.rec : NULL, origin,
				   ops[i].expect, s->clock_limit_ms);
		if (ops[i].rc != 0)
			continue;
		st[i].enc_len = record_size(&ops[i].rec);
		if (*nwrite == 0 && st[i].enc_len <= enc_small_len) {
			st[i].enc = enc_small;
		} else {
			if (!(st[i].enc = malloc(st[i].enc_len)))
				return KVS_ENOMEM;
			st[i].enc_heap = true;
		}
		record_encode(&ops[i].rec, (uint8_t *)st[i].enc);
		(*nwrite)++;
	}
	return 0;
}

/* The ops' distinct path locks, ascending: the one order every batch takes
 * them in.  Returns how many. */
static size_t batch_locks(const struct op_state *st, size_t n, unsigned *locks)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		locks[i] = (unsigned)(st[i].hash % PATH_LOCKS);
	qsort(locks, n, sizeof(*locks), cmp_lock);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || locks[k - 1] != locks[i])
			locks[k++] = locks[i];
	return k;
}

/*
 * Batches and unordered_write.  RocksDB applies a WriteBatch at once only
 * for readers of a snapshot; with unordered_write (store_open) a reader
 * may see part of a batch still being inserted.  A batch of one write
 * never shows, but a transaction must not be seen half done, so a batch
 * of several writes marks itself while it writes:
 *   - batch_seq[lock] odd for each of its path locks: store_get() reads
 *     without a lock, and reads again under the path lock (after the
 *     batch) if the seq was odd or moved meanwhile;
 *   - batch_rw held exclusively: a listing walks holding it shared
 *     (store_list), so it sees every transaction whole or not at all.
 * Plain one-key writes touch neither.
 */
static void batch_begin(struct store *s, const unsigned *locks, size_t nlocks)
{
	pthread_rwlock_wrlock(&s->batch_rw);
	for (size_t i = 0; i < nlocks; i++)
		atomic_fetch_add(&s->batch_seq[locks[i]], 1); /* odd: writing */
}

static void batch_end(struct store *s, const unsigned *locks, size_t nlocks)
{
	for (size_t i = 0; i < nlocks; i++)
		atomic_fetch_add(&s->batch_seq[locks[i]], 1);
	pthread_rwlock_unlock(&s->batch_rw);
}

int store_apply_batch(struct store *s, struct store_op *ops, size_t n, enum store_origin origin)
{
	struct op_state one_st, *st = &one_st;
	unsigned one_lock, *locks = &one_lock;
	char kstack[512], *kbuf = kstack, enc_small[1024];
	size_t kmax = 0, nlocks, nwrite = 0;
	uint64_t first = 0;
	char *err = NULL;
	int rc;

	if (n == 0 || n > STORE_BATCH_MAX)
		return KVS_EINVAL;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < i; j++)
			if (ops[i].len == ops[j].len && memcmp(ops[i].path, ops[j].path, ops[i].len) == 0)
				return KVS_EINVAL; /* one path twice: the second read is stale */
		kmax = ops[i].len > kmax ? ops[i].len : kmax;
	}
	if (n > 1) {
		st = calloc(n, sizeof(*st));
		locks = malloc(n * sizeof(*locks));
	} else {
		memset(st, 0, sizeof(*st));
	}
	if (kmax + 8 > sizeof(kstack))
		kbuf = malloc(kmax + 8);
	if (!st || !locks || !kbuf) {
		rc = KVS_ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		st[i].hash = store_path_hash(ops[i].path, ops[i].len);
		st[i].given = ops[i].rec.v;
		ops[i].rc = 0;
		ops[i].had = false;
		ops[i].index = 0;
	}
	nlocks = batch_locks(st, n, locks);
	for (size_t i = 0; i < nlocks; i++)
		pthread_mutex_lock(&s->path_locks[locks[i]]);

	rc = batch_prepare(s, ops, st, n, origin, enc_small, sizeof(enc_small), &nwrite);
	if (rc != 0 || nwrite == 0)
		goto out_unlock;
	first = store_change_take(s, nwrite);

	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	size_t k = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!written(&ops[i]))
			continue;
		ops[i].index = first ? first + k++ : 0;
		rc = batch_add(s, wb, &ops[i], &st[i], kbuf);
	}
	if (rc != 0) {
		rocksdb_writebatch_destroy(wb);
		goto out_unlock;
	}
	for (size_t i = 0; i < n; i++)
		if (written(&ops[i]))
			rcache_write_begin(s->rcache, st[i].hash, ops[i].path, ops[i].len);
	if (nwrite > 1)
		batch_begin(s, locks, nlocks);
	store_io->write(s->db, s->wopts, wb, &err);
	rocksdb_writebatch_destroy(wb);
	if (err) {
		/* the cache forgets the paths, so the next read asks RocksDB;
		 * digests, counters, latest_ts and the listener stay untouched */
		for (size_t i = 0; i < n; i++)
			if (written(&ops[i]))
				rcache_drop(s->rcache, st[i].hash, ops[i].path, ops[i].len);
		log_error("store_error", "op=write key=\"%s\" ops=%zu error=\"%s\"",
			  LOG_ESCN(ops[0].path, ops[0].len), nwrite, err);
		free(err);
		rc = KVS_EIO;
		goto out_ended;
	}
	batch_done(s, ops, st, n, nwrite, origin);
out_ended:
	if (nwrite > 1)
		batch_end(s, locks, nlocks);
out_unlock:
	store_change_done(s, first, nwrite); /* written or failed, finished */
	for (size_t i = nlocks; i-- > 0;)
		pthread_mutex_unlock(&s->path_locks[locks[i]]);
	for (size_t i = 0; i < n; i++) {
		if (rc != 0 || ops[i].rc != 0) {
			ops[i].rec.v = st[i].given; /* a failed op leaves no trace */
			ops[i].index = 0;
		}
		store_value_release(&st[i].cur);
		if (st[i].enc_heap)
			free(st[i].enc);
	}
out_free:
	if (kbuf != kstack)
		free(kbuf);
	if (st != &one_st)
		free(st);
	if (locks != &one_lock)
		free(locks);
	return rc;
}

int store_apply(struct store *s, const char *path, size_t len, struct kvs_record *rec,
		enum store_origin origin, const struct kvs_version *expect,
		struct kvs_version *current)
{
	struct store_op op = { .path = path, .len = len, .rec = *rec, .expect = expect };
	int rc = store_apply_batch(s, &op, 1, origin);

	if (rc == 0)
		rc = op.rc;
	if (rc == 0)
		rec->v = op.rec.v;
	else if (current && op.had && (rc == KVS_ESTALE || rc == KVS_ECONFLICT))
		*current = op.current.v;
	return rc;
}

/* ------------------------------------------------------------ stats, meta */

void store_stats(struct store *s, struct store_stats *out)
{
	out->keys = atomic_load(&s->keys);
	out->tombstones = atomic_load(&s->tombstones);
	out->value_bytes = atomic_load(&s->value_bytes);
	rcache_stats(s->rcache, &out->cache);
}

int64_t store_latest_ts(struct store *s)
{
	return atomic_load(&s->latest_ts);
}

int store_meta_get(struct store *s, const char *name, void *out, size_t cap, size_t *len)
{
	char *err = NULL;
	size_t vlen = 0;
	char *v = store_io->get_cf(s->db, s->ropts, s->cf[CF_META], name, strlen(name), &vlen, &err);

	if (err)
		return store_failed("meta_get", err);
	if (!v)
		return KVS_ENOTFOUND;
	memcpy(out, v, vlen < cap ? vlen : cap);
	*len = vlen < cap ? vlen : cap;
	rocksdb_free(v);
	return 0;
}

int store_meta_put(struct store *s, const char *name, const void *val, size_t len)
{
	char *err = NULL;
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();

	rocksdb_writeoptions_set_sync(wo, 1); /* rare and must survive */
	store_io->put_cf(s->db, wo, s->cf[CF_META], name, strlen(name), val, len, &err);
	rocksdb_writeoptions_destroy(wo);
	return err ? store_failed("meta_put", err) : 0;
}

/* ------------------------------------------------------------ the seam */

int store_failed(const char *op, char *err)
{
	log_error("store_error", "op=%s error=\"%s\"", op, err);
	free(err);
	return KVS_EIO;
}

int store_walk_end(rocksdb_iterator_t *it, const char *op)
{
	char *err = NULL;

	store_io->iter_get_error(it, &err);
	store_io->iter_destroy(it);
	return err ? store_failed(op, err) : 0;
}

const struct store_io store_io_real = {
	.open_column_families = rocksdb_open_column_families,
	.write = rocksdb_write,
	.get_cf = rocksdb_get_cf,
	.put_cf = rocksdb_put_cf,
	.flush_cf = rocksdb_flush_cf,
	.create_iterator_cf = rocksdb_create_iterator_cf,
	.iter_seek = rocksdb_iter_seek,
	.iter_seek_for_prev = rocksdb_iter_seek_for_prev,
	.iter_seek_to_first = rocksdb_iter_seek_to_first,
	.iter_seek_to_last = rocksdb_iter_seek_to_last,
	.iter_valid = rocksdb_iter_valid,
	.iter_next = rocksdb_iter_next,
	.iter_prev = rocksdb_iter_prev,
	.iter_key = rocksdb_iter_key,
	.iter_value = rocksdb_iter_value,
	.iter_get_error = rocksdb_iter_get_error,
	.iter_destroy = rocksdb_iter_destroy,
};

const struct store_io *store_io = &store_io_real;
