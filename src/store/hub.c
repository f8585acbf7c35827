/*
 * hub.c - the watch hub (see hub.h).
 *
 * The table: HUB_BUCKETS lists of waiters, by a hash of (key, prefix).  A
 * change to "a/b/c" looks up "a/b/c" as a key and "", "a/", "a/b/" as
 * prefixes.  Each waiter has its own condition variable, so a change wakes
 * only the threads that watch it.
 */
#include "hub.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HUB_BUCKETS 4096

struct hub {
	pthread_mutex_t lock;
	_Atomic size_t count; /* waiters; read without the lock by hub_notify */
	struct hub_waiter *buckets[HUB_BUCKETS];
};

uint64_t hub_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static unsigned bucket_of(const char *key, size_t len, bool prefix)
{
	uint64_t h = prefix ? 0x9e3779b97f4a7c15ULL : 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29;
	return (unsigned)(h % HUB_BUCKETS);
}

struct hub *hub_new(void)
{
	struct hub *h = calloc(1, sizeof(*h));

	if (h)
		pthread_mutex_init(&h->lock, NULL);
	return h;
}

void hub_free(struct hub *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void hub_add(struct hub *h, struct hub_waiter *w)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	w->nhits = 0;
	w->over_lo = w->over_hi = 0;
	w->kicked = false;
	w->bucket = bucket_of(w->key, w->klen, w->prefix);
	pthread_mutex_lock(&h->lock);
	w->prev = NULL;
	w->next = h->buckets[w->bucket];
	if (w->next)
		w->next->prev = w;
	h->buckets[w->bucket] = w;
	atomic_fetch_add(&h->count, 1);
	pthread_mutex_unlock(&h->lock);
}

void hub_remove(struct hub *h, struct hub_waiter *w)
{
	pthread_mutex_lock(&h->lock);
	if (w->prev)
		w->prev->next = w->next;
	else
		h->buckets[w->bucket] = w->next;
	if (w->next)
		w->next->prev = w->prev;
	atomic_fetch_sub(&h->count, 1);
	pthread_mutex_unlock(&h->lock);
	pthread_cond_destroy(&w->cond);
}

/* Records index in w (hits kept ascending; a full list turns into a
 * range) and wakes it.  Lock held. */
static void record_hit(struct hub_waiter *w, uint64_t index)
{
	if (w->nhits < HUB_HITS) {
		unsigned i = w->nhits++;

		while (i > 0 && w->hits[i - 1] > index) {
			w->hits[i] = w->hits[i - 1];
			i--;
		}
		w->hits[i] = index;
	} else {
		if (!w->over_lo || index < w->over_lo)
			w->over_lo = index;
		if (index > w->over_hi)
			w->over_hi = index;
	}
	pthread_cond_signal(&w->cond);
}

/* Wakes the waiters registered for (key, prefix).  Lock held. */
static void notify_one(struct hub *h, const char *key, size_t len, bool prefix, uint64_t index)
{
	for (struct hub_waiter *w = h->buckets[bucket_of(key, len, prefix)]; w; w = w->next)
		if (w->prefix == prefix && w->klen == len && memcmp(w->key, key, len) == 0)
			record_hit(w, index);
}

void hub_notify(struct hub *h, const char *path, size_t len, uint64_t index)
{
	if (atomic_load_explicit(&h->count, memory_order_acquire) == 0)
		return;
	pthread_mutex_lock(&h->lock);
	notify_one(h, path, len, false, index);
	notify_one(h, path, 0, true, index);
	for (size_t i = 0; i < len; i++)
		if (path[i] == '/')
			notify_one(h, path, i + 1, true, index);
	pthread_mutex_unlock(&h->lock);
}

static bool has_news(const struct hub_waiter *w)
{
	return w->nhits > 0 || w->over_lo != 0 || w->kicked;
}

void hub_wait(struct hub *h, struct hub_waiter *w, uint64_t deadline_us)
{
	struct timespec ts = { (time_t)(deadline_us / 1000000u),
			       (long)(deadline_us % 1000000u) * 1000L };

	pthread_mutex_lock(&h->lock);
	while (!has_news(w) && hub_now_us() < deadline_us)
		pthread_cond_timedwait(&w->cond, &h->lock, &ts);
	pthread_mutex_unlock(&h->lock);
}

void hub_take(struct hub *h, struct hub_waiter *w, uint64_t upto, uint64_t *out, size_t cap,
	      size_t *n, bool *more, bool *scan)
{
	unsigned taken = 0;

	pthread_mutex_lock(&h->lock);
	while (taken < w->nhits && taken < cap && w->hits[taken] <= upto) {
		out[taken] = w->hits[taken];
		taken++;
	}
	memmove(w->hits, w->hits + taken, (w->nhits - taken) * sizeof(w->hits[0]));
	w->nhits -= taken;
	*n = taken;
	*more = w->nhits > 0 && w->hits[0] <= upto;
	*scan = w->over_lo != 0 && w->over_lo <= upto;
	if (*scan) {
		/* the caller reads the index up to upto: what is left is above */
		if (w->over_hi <= upto)
			w->over_lo = w->over_hi = 0;
		else
			w->over_lo = upto + 1;
	}
	w->kicked = false;
	pthread_mutex_unlock(&h->lock);
}

bool hub_pending(struct hub *h, struct hub_waiter *w)
{
	bool pending;

	pthread_mutex_lock(&h->lock);
	pending = w->nhits > 0 || w->over_lo != 0;
	pthread_mutex_unlock(&h->lock);
	return pending;
}

void hub_kick_all(struct hub *h)
{
	pthread_mutex_lock(&h->lock);
	for (int b = 0; b < HUB_BUCKETS; b++)
		for (struct hub_waiter *w = h->buckets[b]; w; w = w->next) {
			w->kicked = true;
			pthread_cond_signal(&w->cond);
		}
	pthread_mutex_unlock(&h->lock);
}

size_t hub_count(struct hub *h)
{
	return atomic_load(&h->count);
}
