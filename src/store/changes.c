/*
 * changes.c - the change index (store.h, SPEC section 7).
 *
 * Each change store_apply() makes takes the next index and writes
 *   changes[index as 8 bytes big-endian] = type (1 byte) | path length
 *   (2 bytes big-endian) | path | the record as stored (record.h)
 * in the same WriteBatch as the record itself, so after a crash the index
 * and the data agree.  At open the numbering goes on after the last entry.
 *
 * Indexes are given out by an atomic add under the path lock and finished
 * in whatever order the writes end; `visible` (store_int.h) trails them so
 * that readers never pass a change still being written.  An index whose
 * write failed is finished too and leaves a gap: indexes only grow, they
 * need not be dense.  So that a gap at the end is not given out again
 * after a restart, the trimmer saves `visible` in meta about once a second
 * and at close; the numbering goes on after the larger of it and the last
 * entry (a crash within that second after failed writes is the one case
 * where an index told to a client as current may be given out again).
 *
 * The trimmer thread keeps the last `keep` indexes: about once a second it
 * deletes the range below them (one DeleteRange), never in a write.
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvs.h"
#include "log.h"

#define CHANGE_HEAD 3          /* type + path length */
#define TRIM_EVERY_MS 1000
#define CHANGE_MARK "change_index_mark" /* meta: the index numbering goes on after */

static void index_key(char out[8], uint64_t index)
{
	record_put_be64((uint8_t *)out, index);
}

/* Decodes one entry into ch.  Returns 0 or KVS_EINVAL. */
static int change_decode(uint64_t index, const char *v, size_t vlen, struct store_change *ch)
{
	const uint8_t *b = (const uint8_t *)v;
	size_t plen;

	if (vlen < CHANGE_HEAD || b[0] < CHANGE_PUT || b[0] > CHANGE_EXPIRE)
		return KVS_EINVAL;
	plen = ((size_t)b[1] << 8) | b[2];
	if (plen == 0 || vlen < CHANGE_HEAD + plen)
		return KVS_EINVAL;
	if (record_decode(b + CHANGE_HEAD + plen, vlen - CHANGE_HEAD - plen, &ch->rec) != 0)
		return KVS_EINVAL;
	ch->index = index;
	ch->type = (enum store_change_type)b[0];
	ch->path = v + CHANGE_HEAD;
	ch->plen = plen;
	return 0;
}

/* --------------------------------------------------------- open and close */

/* The last key of the changes column family, 0 if none (or on an error,
 * logged, which store_walk_end reports). */
static int last_stored(struct store *s, uint64_t *first, uint64_t *last)
{
	const struct store_io *io = store_io;
	rocksdb_iterator_t *it = io->create_iterator_cf(s->db, s->ropts, s->cf[CF_CHANGES]);
	size_t klen;

	*first = *last = 0;
	io->iter_seek_to_first(it);
	if (io->iter_valid(it)) {
		const char *k = io->iter_key(it, &klen);
		if (klen == 8)
			*first = record_get_be64((const uint8_t *)k);
		io->iter_seek_to_last(it);
		if (io->iter_valid(it)) {
			k = io->iter_key(it, &klen);
			if (klen == 8)
				*last = record_get_be64((const uint8_t *)k);
		}
	}
	return store_walk_end(it, "changes_last");
}

/* Saves the high-water mark: the index the numbering goes on after at the
 * next open, even if every index since the last stored entry was a failed
 * write (a gap a client may have been told of). */
static void save_mark(struct store *s)
{
	struct change_seq *cs = &s->changes;
	uint64_t visible = atomic_load(&cs->visible);
	uint8_t v[8];

	if (visible == cs->saved_mark)
		return;
	char *err = NULL;

	record_put_be64(v, visible);
	/* not synced (no fsync a second in every writer's way): it survives a
	 * crash of the process like any write, which is what it is for */
	store_io->put_cf(s->db, s->wopts, s->cf[CF_META], CHANGE_MARK, strlen(CHANGE_MARK),
			 (const char *)v, sizeof(v), &err);
	if (err)
		store_failed("change_mark", err);
	else
		cs->saved_mark = visible;
}

int store_changes_open(struct store *s)
{
	struct change_seq *cs = &s->changes;
	uint64_t first, last, mark = 0;
	uint8_t v[8];
	size_t len = 0;

	pthread_mutex_init(&cs->lock, NULL);
	pthread_cond_init(&cs->moved, NULL);
	cs->opened = true;
	if (!(s->hub = hub_new()))
		return KVS_ENOMEM;
	if (last_stored(s, &first, &last) != 0)
		return KVS_EIO;
	int rc = store_meta_get(s, CHANGE_MARK, v, sizeof(v), &len);
	if (rc == 0 && len == sizeof(v))
		mark = record_get_be64(v);
	else if (rc != 0 && rc != KVS_ENOTFOUND)
		return KVS_EIO;
	if (mark > last)
		last = mark;
	cs->saved_mark = mark;
	atomic_store(&cs->next, last + 1);
	atomic_store(&cs->visible, last);
	atomic_store(&cs->oldest, first ? first : last + 1);
	return 0;
}

void store_changes_close(struct store *s)
{
	struct change_seq *cs = &s->changes;

	if (!cs->opened)
		return;
	if (cs->trimmer_started) {
		pthread_mutex_lock(&cs->lock);
		cs->stopping = true;
		pthread_cond_broadcast(&cs->moved);
		pthread_mutex_unlock(&cs->lock);
		pthread_join(cs->trimmer, NULL);
		cs->trimmer_started = false;
	}
	if (cs->keep && s->db)
		save_mark(s);
	hub_free(s->hub);
	s->hub = NULL;
	pthread_cond_destroy(&cs->moved);
	pthread_mutex_destroy(&cs->lock);
}

/* ------------------------------------------------------------------ trim */

/* Deletes the entries below the last `keep` indexes, never the newest
 * stored entry.  Returns the number of indexes dropped (gaps included), or
 * KVS_EIO. */
static int64_t trim_once(struct store *s)
{
	struct change_seq *cs = &s->changes;
	uint64_t visible = atomic_load(&cs->visible), oldest = atomic_load(&cs->oldest);
	uint64_t first, last, new_oldest;
	char from[8], to[8], *err = NULL;
	rocksdb_writebatch_t *wb;

	if (visible < cs->keep || visible - cs->keep + 1 <= oldest)
		return 0;
	if (last_stored(s, &first, &last) != 0)
		return KVS_EIO;
	new_oldest = visible - cs->keep + 1;
	if (last && new_oldest > last)
		new_oldest = last; /* the tail was failed writes: keep one entry */
	if (new_oldest <= oldest)
		return 0;

	index_key(from, oldest);
	index_key(to, new_oldest);
	wb = rocksdb_writebatch_create();
	rocksdb_writebatch_delete_range_cf(wb, s->cf[CF_CHANGES], from, 8, to, 8);
	/* readers check `oldest` after they read (a RocksDB iterator sees the
	 * data as it was when made): move it before the entries go */
	atomic_store(&cs->oldest, new_oldest);
	store_io->write(s->db, s->wopts, wb, &err);
	rocksdb_writebatch_destroy(wb);
	if (err) {
		atomic_store(&cs->oldest, oldest); /* still there: the next round tries again */
		return store_failed("changes_trim", err);
	}
	return (int64_t)(new_oldest - oldest);
}

static void *trimmer_thread(void *arg)
{
	struct store *s = arg;
	struct change_seq *cs = &s->changes;

	pthread_mutex_lock(&cs->lock);
	while (!cs->stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += TRIM_EVERY_MS / 1000;
		pthread_cond_timedwait(&cs->moved, &cs->lock, &ts);
		if (cs->stopping)
			break;
		pthread_mutex_unlock(&cs->lock);
		trim_once(s); /* a failure is logged; the next round tries again */
		save_mark(s);
		pthread_mutex_lock(&cs->lock);
	}
	pthread_mutex_unlock(&cs->lock);
	return NULL;
}

int store_changes_enable(struct store *s, uint64_t keep)
{
	struct change_seq *cs = &s->changes;

	if (keep == 0)
		return 0;
	cs->keep = keep;
	if (pthread_create(&cs->trimmer, NULL, trimmer_thread, s) != 0) {
		cs->keep = 0;
		return KVS_ENOMEM;
	}
	pthread_setname_np(cs->trimmer, "kvs-trim");
	cs->trimmer_started = true;
	return 0;
}

bool store_changes_on(struct store *s)
{
	return s->changes.keep > 0;
}

/* ------------------------------------------------------------- numbering */

uint64_t store_change_take(struct store *s, size_t count)
{
	if (s->changes.keep == 0 || count == 0)
		return 0;
	return atomic_fetch_add(&s->changes.next, count);
}

int store_change_put(struct store *s, rocksdb_writebatch_t *wb, uint64_t index, const char *path,
		     size_t len, enum store_change_type type, const char *rec_bytes, size_t rec_len)
{
	char key[8], small[1024], *v = small;
	size_t vlen = CHANGE_HEAD + len + rec_len;

	if (index == 0)
		return 0;
	if (vlen > sizeof(small) && !(v = malloc(vlen)))
		return KVS_ENOMEM;
	v[0] = (char)type;
	v[1] = (char)(len >> 8);
	v[2] = (char)(len & 0xff);
	memcpy(v + CHANGE_HEAD, path, len);
	memcpy(v + CHANGE_HEAD + len, rec_bytes, rec_len);
	index_key(key, index);
	rocksdb_writebatch_put_cf(wb, s->cf[CF_CHANGES], key, 8, v, vlen);
	if (v != small)
		free(v);
	return 0;
}

void store_change_done(struct store *s, uint64_t first, size_t count)
{
	struct change_seq *cs = &s->changes;
	uint64_t v;

	if (first == 0 || count == 0)
		return;
	pthread_mutex_lock(&cs->lock);
	for (uint64_t i = first; i < first + count; i++)
		cs->finished[i % CHANGE_RING] = i;
	v = atomic_load(&cs->visible);
	while (cs->finished[(v + 1) % CHANGE_RING] == v + 1)
		v++;
	atomic_store(&cs->visible, v);
	if (cs->visible_waiters)
		pthread_cond_broadcast(&cs->moved);
	pthread_mutex_unlock(&cs->lock);
}

uint64_t store_index(struct store *s)
{
	return atomic_load(&s->changes.visible);
}

uint64_t store_index_taken(struct store *s)
{
	return atomic_load(&s->changes.next) - 1;
}

uint64_t store_index_oldest(struct store *s)
{
	return atomic_load(&s->changes.oldest);
}

bool store_index_wait(struct store *s, uint64_t index, uint64_t deadline_us)
{
	struct change_seq *cs = &s->changes;
	bool reached;

	if (atomic_load(&cs->visible) >= index)
		return true;
	pthread_mutex_lock(&cs->lock);
	cs->visible_waiters++;
	while (atomic_load(&cs->visible) < index && !cs->stopping) {
		uint64_t now = hub_now_us();
		if (now >= deadline_us)
			break;
		/* `moved` runs on CLOCK_REALTIME (the trimmer's); waits are short
		 * (a write in flight), so a relative slice is enough */
		uint64_t slice = deadline_us - now < 10000 ? deadline_us - now : 10000;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)slice * 1000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&cs->moved, &cs->lock, &ts);
	}
	cs->visible_waiters--;
	reached = atomic_load(&cs->visible) >= index;
	pthread_mutex_unlock(&cs->lock);
	return reached;
}

/* ----------------------------------------------------------------- reads */

int store_changes_read(struct store *s, uint64_t after, uint64_t upto, store_change_fn fn,
		       void *ctx)
{
	const struct store_io *io = store_io;
	rocksdb_iterator_t *it;
	char key[8];
	int rc = 0;

	if (upto <= after)
		return 0;
	it = io->create_iterator_cf(s->db, s->ropts, s->cf[CF_CHANGES]);
	index_key(key, after + 1);
	for (io->iter_seek(it, key, 8); io->iter_valid(it); io->iter_next(it)) {
		size_t klen, vlen;
		const char *k = io->iter_key(it, &klen);
		const char *v = io->iter_value(it, &vlen);
		struct store_change ch;
		uint64_t index;

		if (klen != 8)
			continue;
		index = record_get_be64((const uint8_t *)k);
		if (index > upto)
			break;
		if (change_decode(index, v, vlen, &ch) != 0) {
			log_error("store_corrupt", "change=%llu reason=\"undecodable change\"",
				  (unsigned long long)index);
			continue;
		}
		if ((rc = fn(ctx, &ch)) != 0)
			break;
	}
	int end = store_walk_end(it, "changes_read");
	return rc ? rc : end;
}

int store_change_get(struct store *s, uint64_t index, store_change_fn fn, void *ctx)
{
	char key[8], *err = NULL, *v;
	size_t vlen = 0;
	struct store_change ch;
	int rc;

	index_key(key, index);
	v = store_io->get_cf(s->db, s->ropts, s->cf[CF_CHANGES], key, 8, &vlen, &err);
	if (err)
		return store_failed("change_get", err);
	if (!v)
		return KVS_ENOTFOUND;
	if (change_decode(index, v, vlen, &ch) != 0) {
		log_error("store_corrupt", "change=%llu reason=\"undecodable change\"",
			  (unsigned long long)index);
		free(v);
		return KVS_ENOTFOUND;
	}
	rc = fn(ctx, &ch);
	free(v);
	return rc;
}

struct hub *store_hub(struct store *s)
{
	return s->hub;
}
