/*
 * expiry.c - the reaper: expired values become tombstones (SPEC section 9).
 *
 * A value written with a TTL carries its absolute expiry (record.h), and
 * the write door keeps an index of them in the `expiry` column family:
 * expires (8 bytes BE) + path -> empty, written and removed in the same
 * batch as the record.  Readers never wait for the reaper: a value whose
 * expiry has passed already answers 404 and leaves listings (record_live).
 *
 * About every REAP_TICK_MS the reaper walks the index from its start up to
 * now, at most REAP_BATCH entries at a time, and turns each expired value
 * into the tombstone every node derives the same way
 * (store_expire_version: timestamp = the expiry, uuid from the value's
 * uuid), through the write door with the condition that the value is still
 * the one that expired (a key rewritten meanwhile is not touched).  It
 * writes as STORE_REMOTE: nothing is pushed (every node reaps on its own,
 * and two nodes' tombstones are the same version: no conflict, no vote),
 * and the change is an `expire` event.  An entry whose record moved on (a
 * key written again, with another expiry or none, or deleted: the write
 * door leaves the old entry, which keeps an overwrite to one index write)
 * is dropped when its time comes.
 *
 * Threads: one reaper thread per store, started by store_expiry_start and
 * stopped by store_close.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvs.h"
#include "log.h"
#include "store_int.h"

#define REAP_TICK_MS 100
#define REAP_BATCH 1000

struct reaper {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;       /* (lock) */
	_Atomic uint64_t reaped;
};

/* One entry of the index, copied out of the iterator. */
struct due {
	int64_t expires;
	size_t len;
	char path[];
};

/* Reaps path if its current value is the one that expired at `expires`. */
static void reap_one(struct store *s, const struct due *d)
{
	struct store_value cur;
	struct store_op op;
	int rc = store_get(s, d->path, d->len, &cur);

	if (rc != 0)
		return;
	if (cur.rec.tombstone || cur.rec.expires != d->expires) {
		/* the record moved on without its entry: drop the entry */
		char small[512], *k = d->len + 8 <= sizeof(small) ? small : malloc(d->len + 8);
		char *err = NULL;

		if (k) {
			rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
			rocksdb_writebatch_delete_cf(wb, s->cf[CF_EXPIRY], k,
						     store_expiry_key(k, d->expires, d->path, d->len));
			store_io->write(s->db, s->wopts, wb, &err);
			rocksdb_writebatch_destroy(wb);
			free(err);
			if (k != small)
				free(k);
		}
		store_value_release(&cur);
		return;
	}
	memset(&op, 0, sizeof(op));
	op.path = d->path;
	op.len = d->len;
	op.rec.tombstone = true;
	op.rec.origin = cur.rec.origin; /* the expired version's writer */
	op.rec.origin_len = cur.rec.origin_len;
	store_expire_version(&cur.rec, &op.rec.v);
	op.cond = STORE_COND_IS; /* still the version that expired */
	op.match = cur.rec.v;
	rc = store_apply_batch(s, &op, 1, STORE_REMOTE);
	if (rc == 0 && op.rc == 0)
		atomic_fetch_add(&s->reaper->reaped, 1);
	store_value_release(&cur);
}

/* Collects up to REAP_BATCH entries due at now_ms; returns how many. */
static size_t collect(struct store *s, int64_t now_ms, struct due **out)
{
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	char bound[8];
	size_t n = 0;

	/* stop at now: every overwrite of a value with a TTL leaves a deleted
	 * entry later in the index, which a walk without a bound would step
	 * over on every tick (that cost most of a PUT with ttl, make bench) */
	record_put_be64((uint8_t *)bound, (uint64_t)now_ms + 1);
	rocksdb_readoptions_set_iterate_upper_bound(ro, bound, sizeof(bound));
	rocksdb_iterator_t *it = store_io->create_iterator_cf(s->db, ro, s->cf[CF_EXPIRY]);

	for (store_io->iter_seek_to_first(it); store_io->iter_valid(it) && n < REAP_BATCH;
	     store_io->iter_next(it)) {
		size_t klen;
		const char *k = store_io->iter_key(it, &klen);

		if (klen <= 8)
			continue;
		int64_t exp = (int64_t)record_get_be64((const uint8_t *)k);
		if (exp > now_ms)
			break;
		struct due *d = malloc(sizeof(*d) + klen - 8);
		if (!d)
			break;
		d->expires = exp;
		d->len = klen - 8;
		memcpy(d->path, k + 8, d->len);
		out[n++] = d;
	}
	store_walk_end(it, "expiry_scan");
	rocksdb_readoptions_destroy(ro);
	return n;
}

static void *reaper_thread(void *arg)
{
	struct store *s = arg;
	struct reaper *r = s->reaper;
	struct due **due = calloc(REAP_BATCH, sizeof(*due));

	pthread_mutex_lock(&r->lock);
	while (!r->stopping && due) {
		struct timespec ts;

		pthread_mutex_unlock(&r->lock);
		size_t n = collect(s, version_now_ms(), due);
		for (size_t i = 0; i < n; i++) {
			reap_one(s, due[i]);
			free(due[i]);
		}
		pthread_mutex_lock(&r->lock);
		if (n == REAP_BATCH)
			continue; /* more are due: no pause */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += REAP_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!r->stopping)
			pthread_cond_timedwait(&r->wake, &r->lock, &ts);
	}
	pthread_mutex_unlock(&r->lock);
	free(due);
	return NULL;
}

int store_expiry_start(struct store *s)
{
	struct reaper *r = calloc(1, sizeof(*r));

	if (!r)
		return KVS_ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	s->reaper = r;
	if (pthread_create(&r->thread, NULL, reaper_thread, s) != 0) {
		s->reaper = NULL;
		pthread_mutex_destroy(&r->lock);
		pthread_cond_destroy(&r->wake);
		free(r);
		return KVS_ENOMEM;
	}
	pthread_setname_np(r->thread, "kvs-expiry");
	return 0;
}

void store_expiry_stop(struct store *s)
{
	struct reaper *r = s->reaper;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	s->reaper = NULL;
	free(r);
}

uint64_t store_expiry_reaped(struct store *s)
{
	return s->reaper ? atomic_load(&s->reaper->reaped) : 0;
}
