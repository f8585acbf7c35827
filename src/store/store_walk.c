/*
 * store_walk.c - the walks over the store's column families (see store.h):
 * client listings over `records`, the time index both ways, one digest
 * bucket of the bucket index, and the tombstone purge that walks the time
 * index.  The other half of the module, store.c, holds the write door and
 * the reads; both share struct store through store_int.h.
 *
 * Threads and locks: a walk takes no lock.  Each one has its own RocksDB
 * iterator, a consistent view of the column family it walks.  The index
 * walks (time, bucket) re-read each path's record through the record cache
 * rather than trust the index entry, so a write racing with the walk shows
 * a version a moment early or late, never an index entry without its
 * record (store.c, unordered_write).  The purge takes each path's lock only
 * for the one path it removes.
 *
 * Errors: RocksDB reports a failed walk by ending it (iter_valid false)
 * and leaving the error in the iterator; every walk checks it at the end
 * (store_walk_end) and returns KVS_EIO, even if the callback has already
 * seen some items.  Every RocksDB call goes through store_io (store_io.h),
 * so tests can end a walk early with an error.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "log.h"

/* ---------------------------------------------------------------- statics */

/* memcmp order for byte strings of different lengths (RocksDB's default). */
static int bytes_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/* Reads the record of a path found through an index and hands it to fn. */
static int visit_indexed(struct store *s, const char *path, size_t len, store_item_fn fn,
			 void *ctx)
{
	struct store_value v;
	int rc = store_get_hashed(s, store_path_hash(path, len), path, len, &v, false);

	if (rc == KVS_ENOTFOUND)
		return 0; /* changed under us: the index entry is being replaced */
	if (rc != 0)
		return rc;
	rc = fn(ctx, path, len, &v.rec);
	store_value_release(&v);
	return rc;
}

/* ------------------------------------------------------------- public API */

int store_list(struct store *s, const char *prefix, size_t plen, const char *after,
	       size_t alen, size_t limit, store_item_fn fn, void *ctx, bool *more)
{
	const struct store_io *io = store_io;
	rocksdb_iterator_t *it;
	int64_t now = version_now_ms();
	size_t given = 0;
	int rc = 0, end;

	/* no transaction writes while a listing walks: it sees each whole
	 * (store.c, "Batches and unordered_write") */
	pthread_rwlock_rdlock(&s->batch_rw);
	it = io->create_iterator_cf(s->db, s->ropts, s->cf[CF_RECORDS]);
	*more = false;
	/* start at the larger of prefix and after, bytewise */
	if (after && alen && bytes_cmp(after, alen, prefix, plen) > 0)
		io->iter_seek(it, after, alen);
	else
		io->iter_seek(it, prefix, plen);

	for (; io->iter_valid(it); io->iter_next(it)) {
		size_t klen, vlen;
		const char *k = io->iter_key(it, &klen);
		const char *v;
		struct kvs_record r;

		if (klen < plen || memcmp(k, prefix, plen) != 0)
			break;
		if (after && klen == alen && memcmp(k, after, alen) == 0)
			continue;
		v = io->iter_value(it, &vlen);
		if (record_decode((const uint8_t *)v, vlen, &r) != 0 || !record_live(&r, now))
			continue;
		if (given == limit) {
			*more = true;
			break;
		}
		given++;
		if ((rc = fn(ctx, k, klen, &r)) != 0)
			break;
	}
	end = store_walk_end(it, "list");
	pthread_rwlock_unlock(&s->batch_rw);
	return end ? end : rc;
}

int store_scan_time(struct store *s, int64_t from_ts, const char *from_key, size_t fklen,
		    bool descending, size_t limit, store_item_fn fn, void *ctx)
{
	const struct store_io *io = store_io;
	char small[512], *seek = small;
	size_t given = 0;
	int rc = 0, end;

	if (fklen + 8 > sizeof(small) && !(seek = malloc(fklen + 8)))
		return KVS_ENOMEM;
	rocksdb_iterator_t *it = io->create_iterator_cf(s->db, s->ropts, s->cf[CF_BY_TIME]);
	size_t slen = store_time_key(seek, from_ts, from_key ? from_key : "",
				     from_key ? fklen : 0);
	if (descending && from_ts <= 0)
		io->iter_seek_to_last(it);
	else if (descending)
		io->iter_seek_for_prev(it, seek, slen);
	else
		io->iter_seek(it, seek, slen);

	for (; io->iter_valid(it) && given < limit;
	     descending ? io->iter_prev(it) : io->iter_next(it)) {
		size_t klen;
		const char *k = io->iter_key(it, &klen);

		if (klen < 8)
			continue;
		/* skip the exact starting point: the walk is exclusive */
		if (from_ts > 0 && klen == slen && memcmp(k, seek, slen) == 0)
			continue;
		given++;
		if ((rc = visit_indexed(s, k + 8, klen - 8, fn, ctx)) != 0)
			break;
	}
	end = store_walk_end(it, "scan_time");
	if (seek != small)
		free(seek);
	return end ? end : rc;
}

int store_scan_bucket(struct store *s, unsigned bucket, store_item_fn fn, void *ctx)
{
	const struct store_io *io = store_io;
	rocksdb_iterator_t *it = io->create_iterator_cf(s->db, s->ropts, s->cf[CF_BY_BUCKET]);
	char start[2] = { (char)(bucket >> 8), (char)(bucket & 0xff) };
	int rc = 0, end;

	for (io->iter_seek(it, start, 2); io->iter_valid(it); io->iter_next(it)) {
		size_t klen;
		const char *k = io->iter_key(it, &klen);

		if (klen < 2 || memcmp(k, start, 2) != 0)
			break;
		if ((rc = visit_indexed(s, k + 2, klen - 2, fn, ctx)) != 0)
			break;
	}
	end = store_walk_end(it, "scan_bucket");
	return end ? end : rc;
}

/* ------------------------------------------------------------------ purge */

/* Removes path's tombstone if it is still the current version v. */
static int purge_one(struct store *s, const char *path, size_t len, const struct kvs_version *v)
{
	uint64_t hash = store_path_hash(path, len);
	pthread_mutex_t *lock = &s->path_locks[hash % PATH_LOCKS];
	struct store_value cur;
	char small[512], *kbuf = small;
	char *err = NULL;
	int rc;

	if (len + 8 > sizeof(small) && !(kbuf = malloc(len + 8)))
		return KVS_ENOMEM;
	pthread_mutex_lock(lock);
	rc = store_get_hashed(s, hash, path, len, &cur, false);
	if (rc != 0)
		goto out_unlock;
	if (!cur.rec.tombstone || !version_equal(&cur.rec.v, v)) {
		rc = KVS_ESTALE;
		goto out_release;
	}
	rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_cf(wb, s->cf[CF_RECORDS], path, len);
	rocksdb_writebatch_delete_cf(wb, s->cf[CF_BY_TIME], kbuf,
				     store_time_key(kbuf, v->ts, path, len));
	rocksdb_writebatch_delete_cf(wb, s->cf[CF_BY_BUCKET], kbuf,
				     store_bucket_key(kbuf, path, len));
	rcache_write_begin(s->rcache, hash, path, len);
	store_io->write(s->db, s->wopts, wb, &err);
	rocksdb_writebatch_destroy(wb);
	rcache_drop(s->rcache, hash, path, len); /* gone, or unknown after a failure */
	if (err) {
		rc = store_failed("purge", err);
		goto out_release;
	}
	store_account(s, hash, path, len, &cur.rec, NULL);
out_release:
	store_value_release(&cur);
out_unlock:
	pthread_mutex_unlock(lock);
	if (kbuf != small)
		free(kbuf);
	return rc;
}

int64_t store_purge_tombstones(struct store *s, int64_t before_ts)
{
	const struct store_io *io = store_io;
	rocksdb_iterator_t *it = io->create_iterator_cf(s->db, s->ropts, s->cf[CF_BY_TIME]);
	int64_t purged = 0;
	int end;

	for (io->iter_seek_to_first(it); io->iter_valid(it); io->iter_next(it)) {
		size_t klen, vlen;
		const char *k = io->iter_key(it, &klen);
		const char *v = io->iter_value(it, &vlen);
		struct kvs_version ver;

		if (klen < 8 || vlen != 16)
			continue;
		ver.ts = (int64_t)record_get_be64((const uint8_t *)k);
		if (ver.ts >= before_ts)
			break;
		memcpy(ver.id, v, 16);
		if (purge_one(s, k + 8, klen - 8, &ver) == 0)
			purged++;
	}
	end = store_walk_end(it, "purge_scan");
	return end ? end : purged;
}

/* ------------------------------------------------------- every record */

int store_walk_records(struct store *s, const rocksdb_readoptions_t *ro, store_item_fn fn,
		       void *ctx, const char *op)
{
	const struct store_io *io = store_io;
	rocksdb_iterator_t *it = io->create_iterator_cf(s->db, ro, s->cf[CF_RECORDS]);
	int rc = 0, end;

	for (io->iter_seek_to_first(it); io->iter_valid(it); io->iter_next(it)) {
		size_t klen, vlen;
		const char *k = io->iter_key(it, &klen);
		const char *v = io->iter_value(it, &vlen);
		struct kvs_record r;

		if (record_decode((const uint8_t *)v, vlen, &r) != 0) {
			log_error("store_corrupt", "key=\"%s\" reason=\"undecodable record\" op=%s",
				  LOG_ESCN(k, klen), op);
			continue;
		}
		if ((rc = fn(ctx, k, klen, &r)) != 0)
			break;
	}
	end = store_walk_end(it, op);
	return end ? end : rc;
}

int store_snapshot(struct store *s, store_item_fn fn, void *ctx)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();

	/* taken while no multi-op batch writes: with unordered_write, a batch
	 * whose sequence numbers precede the snapshot could otherwise still be
	 * entering the memtable and show only part of itself */
	pthread_rwlock_rdlock(&s->batch_rw);
	const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(s->db);
	pthread_rwlock_unlock(&s->batch_rw);
	rocksdb_readoptions_set_snapshot(ro, snap);
	rocksdb_readoptions_set_fill_cache(ro, 0); /* a full scan would evict the hot set */
	int rc = store_walk_records(s, ro, fn, ctx, "snapshot");
	rocksdb_readoptions_destroy(ro);
	rocksdb_release_snapshot(s->db, snap);
	return rc;
}
