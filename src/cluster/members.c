/*
 * members.c - the member table (states and merge rules in members.h).
 *
 * A small array under one mutex: clusters here have tens of members, so a
 * linear search is cheaper than anything cleverer.  Status changes are
 * logged with their own event names (member_join, member_suspect,
 * member_unhealthy, member_alive, member_left, member_removed).
 *
 * Records come from the network (gossip, joins, pings), so the table is
 * bounded: it never holds more than max members, self included.  A new
 * member past the cap is refused (counted, and logged as member_refused
 * at most every REFUSED_LOG_MS); members already in the table are never
 * evicted for it and keep being updated.  A last_seen from the future is
 * taken as now, so a forged record cannot outlive removal_timeout.
 * Record validation (member_from_json) uses config.c's checks for node
 * ids and "host:port", the same rules as node_id and advertise_address.
 */
#include "members.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "log.h"
#include "version.h"

#define REFUSED_LOG_MS 10000  /* at most one member_refused line per 10 s */

struct members {
	pthread_mutex_t lock;           /* guards everything below */
	struct member *list;            /* list[0] is self */
	size_t count, alloc;            /* count <= max */
	size_t max;                     /* cap on count, self included */
	struct members_timeouts t;
	uint64_t refused;               /* new members refused at the cap, ever */
	uint64_t refused_unlogged;      /* of which not logged yet */
	int64_t refused_logged_ms;      /* when member_refused was last logged */
	atomic_size_t live_peers;       /* others alive or suspect; read without the lock */
};

/* ------------------------------------------------------------- lifecycle */

struct members *members_new(const struct member *self, const struct members_timeouts *t)
{
	struct members *m = calloc(1, sizeof(*m));

	if (!m || !(m->list = calloc(8, sizeof(*m->list)))) {
		free(m);
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->alloc = 8;
	m->count = 1;
	m->max = MEMBERS_MAX_DEFAULT;
	m->list[0] = *self;
	m->list[0].self = true;
	m->list[0].status = MEMBER_ALIVE;
	m->t = *t;
	return m;
}

void members_set_max(struct members *m, size_t max)
{
	pthread_mutex_lock(&m->lock);
	m->max = max < 1 ? 1 : max;
	pthread_mutex_unlock(&m->lock);
}

uint64_t members_refused_total(struct members *m)
{
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	n = m->refused;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void members_free(struct members *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->list);
	free(m);
}

/* -------------------------------------------------------------- internals */

static struct member *find(struct members *m, const char *id)
{
	for (size_t i = 0; i < m->count; i++)
		if (strcmp(m->list[i].id, id) == 0)
			return &m->list[i];
	return NULL;
}

/* A time from a peer, never later than now (see the file comment). */
static int64_t not_after(int64_t t, int64_t now)
{
	return t > now ? now : t;
}

/* Counts a new member refused at the cap; logs at most every REFUSED_LOG_MS. */
static void refuse(struct members *m, const struct member *in, int64_t now)
{
	m->refused++;
	m->refused_unlogged++;
	if (m->refused_logged_ms && now - m->refused_logged_ms < REFUSED_LOG_MS)
		return;
	log_warn("member_refused", "id=%s address=%s reason=table_full max_members=%zu "
		 "refused=%llu refused_total=%llu", in->id, in->address, m->max,
		 (unsigned long long)m->refused_unlogged, (unsigned long long)m->refused);
	m->refused_unlogged = 0;
	m->refused_logged_ms = now;
}

/* Appends in (the caller checked the cap); NULL on OOM. */
static struct member *add(struct members *m, const struct member *in, int64_t now)
{
	assert(m->count < m->max);
	if (m->count == m->alloc) {
		struct member *p = realloc(m->list, m->alloc * 2 * sizeof(*p));
		if (!p)
			return NULL;
		m->list = p;
		m->alloc *= 2;
	}
	struct member *e = &m->list[m->count++];
	*e = *in;
	e->self = false;
	e->suspect_since = 0;
	e->last_seen = not_after(in->last_seen, now);
	if (e->status == MEMBER_SUSPECT || e->status == MEMBER_UNHEALTHY)
		e->status = MEMBER_ALIVE; /* judged by our own probes from here on */
	log_info("member_join", "id=%s address=%s status=%s", e->id, e->address,
		 member_status_name(e->status));
	return e;
}

static void set_alive(struct member *e, const char *why)
{
	if (e->status == MEMBER_UNHEALTHY)
		log_info("member_alive", "id=%s address=%s reason=%s", e->id, e->address, why);
	else if (e->status == MEMBER_SUSPECT)
		log_info("member_unsuspect", "id=%s address=%s reason=%s", e->id, e->address, why);
	e->status = MEMBER_ALIVE;
	e->suspect_since = 0;
}

/* Recounts live_peers after a change and releases the lock. */
static void unlock_recount(struct members *m)
{
	size_t n = 0;

	for (size_t i = 1; i < m->count; i++)
		n += (MEMBER_MASK_LIVE & (1u << m->list[i].status)) != 0;
	atomic_store(&m->live_peers, n);
	pthread_mutex_unlock(&m->lock);
}

/* --------------------------------------------------------------- updates */

int members_join(struct members *m, const struct member *in, char *err, size_t errlen)
{
	int64_t now = version_now_ms();
	struct member *e;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	e = find(m, in->id);
	if (e && e->self) {
		/* our own record is never taken from a peer */
		if (strcmp(e->address, in->address) != 0) {
			snprintf(err, errlen, "node_id %s is this node's, at %s", in->id, e->address);
			rc = KVS_ECONFLICT;
		}
	} else if (e && strcmp(e->address, in->address) != 0 &&
	    (e->status == MEMBER_ALIVE || e->status == MEMBER_SUSPECT) &&
	    !(in->incarnation > e->incarnation && !e->self &&
	      now - e->last_seen > m->t.suspicion_ms)) {
		snprintf(err, errlen, "node_id %s is already held by %s", in->id, e->address);
		rc = KVS_ECONFLICT;
	} else if (e) {
		if (in->incarnation >= e->incarnation) {
			bool was_left = e->status == MEMBER_LEFT;
			snprintf(e->address, sizeof(e->address), "%s", in->address);
			e->incarnation = in->incarnation;
			e->joined_ts = in->joined_ts;
			if (not_after(in->last_seen, now) > e->last_seen)
				e->last_seen = not_after(in->last_seen, now);
			if (was_left)
				log_info("member_join", "id=%s address=%s status=alive", e->id,
					 e->address);
			set_alive(e, "joined");
		}
	} else if (m->count >= m->max) {
		refuse(m, in, now);
		snprintf(err, errlen, "member table full (max_members %zu)", m->max);
		rc = KVS_ETOOBIG;
	} else if (!add(m, in, now)) {
		snprintf(err, errlen, "out of memory");
		rc = KVS_ENOMEM;
	}
	unlock_recount(m);
	return rc;
}

size_t members_merge(struct members *m, const struct member *in, size_t n)
{
	int64_t now = version_now_ms();
	size_t refused = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < n; i++) {
		struct member *e = find(m, in[i].id);
		int64_t seen = not_after(in[i].last_seen, now);

		if (!e) {
			if (in[i].status == MEMBER_LEFT)
				continue;
			if (m->count >= m->max) {
				refuse(m, &in[i], now);
				refused++;
				continue;
			}
			add(m, &in[i], now);
			continue;
		}
		if (e->self)
			continue; /* our own record is authoritative */
		if (in[i].incarnation > e->incarnation) {
			bool was_left = e->status == MEMBER_LEFT;
			snprintf(e->address, sizeof(e->address), "%s", in[i].address);
			e->incarnation = in[i].incarnation;
			e->joined_ts = in[i].joined_ts;
			e->last_seen = seen > e->last_seen ? seen : e->last_seen;
			if (in[i].status == MEMBER_LEFT) {
				if (!was_left)
					log_info("member_left", "id=%s address=%s", e->id, e->address);
				e->status = MEMBER_LEFT;
			} else {
				if (was_left)
					log_info("member_join", "id=%s address=%s status=alive",
						 e->id, e->address);
				set_alive(e, "restarted");
			}
			continue;
		}
		if (in[i].incarnation < e->incarnation)
			continue;
		if (in[i].status == MEMBER_LEFT && e->status != MEMBER_LEFT) {
			e->status = MEMBER_LEFT;
			log_info("member_left", "id=%s address=%s", e->id, e->address);
			continue;
		}
		if (seen > e->last_seen) {
			e->last_seen = seen;
			/* someone heard from it after we began to doubt it */
			if (e->status == MEMBER_SUSPECT && e->last_seen > e->suspect_since)
				set_alive(e, "gossip");
		}
	}
	unlock_recount(m);
	return refused;
}

void members_heard(struct members *m, const char *id, int64_t now)
{
	pthread_mutex_lock(&m->lock);
	struct member *e = find(m, id);
	if (e && !e->self) {
		if (now > e->last_seen)
			e->last_seen = now;
		if (e->status == MEMBER_SUSPECT || e->status == MEMBER_UNHEALTHY)
			set_alive(e, "answered");
	}
	unlock_recount(m);
}

bool members_suspect(struct members *m, const char *id, int64_t now)
{
	bool changed = false;

	pthread_mutex_lock(&m->lock);
	struct member *e = find(m, id);
	if (e && !e->self && e->status == MEMBER_ALIVE) {
		e->status = MEMBER_SUSPECT;
		e->suspect_since = now;
		changed = true;
		log_info("member_suspect", "id=%s address=%s", e->id, e->address);
	}
	unlock_recount(m);
	return changed;
}

void members_left(struct members *m, const char *id, int64_t incarnation)
{
	pthread_mutex_lock(&m->lock);
	struct member *e = find(m, id);
	if (e && !e->self && e->incarnation <= incarnation && e->status != MEMBER_LEFT) {
		e->status = MEMBER_LEFT;
		log_info("member_left", "id=%s address=%s", e->id, e->address);
	}
	unlock_recount(m);
}

void members_self_left(struct members *m)
{
	pthread_mutex_lock(&m->lock);
	m->list[0].status = MEMBER_LEFT;
	unlock_recount(m);
}

void members_tick(struct members *m, int64_t now)
{
	pthread_mutex_lock(&m->lock);
	for (size_t i = 1; i < m->count;) {
		struct member *e = &m->list[i];
		int64_t unheard = now - e->last_seen;

		if (unheard > m->t.removal_ms) {
			log_info("member_removed", "id=%s address=%s unheard_s=%lld", e->id,
				 e->address, (long long)(unheard / 1000));
			m->list[i] = m->list[--m->count];
			continue;
		}
		if ((e->status == MEMBER_ALIVE || e->status == MEMBER_SUSPECT) &&
		    unheard > m->t.failure_ms) {
			e->status = MEMBER_UNHEALTHY;
			log_warn("member_unhealthy", "id=%s address=%s reason=failure_timeout", e->id,
				 e->address);
		} else if (e->status == MEMBER_SUSPECT && now - e->suspect_since > m->t.suspicion_ms) {
			e->status = MEMBER_UNHEALTHY;
			log_warn("member_unhealthy", "id=%s address=%s reason=probes_failed", e->id,
				 e->address);
		}
		i++;
	}
	unlock_recount(m);
}

/* ---------------------------------------------------------------- queries */

size_t members_snapshot(struct members *m, struct member **out)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->count;
	*out = malloc(n * sizeof(**out));
	if (*out) {
		memcpy(*out, m->list, n * sizeof(**out));
		(*out)[0].last_seen = version_now_ms();
	}
	pthread_mutex_unlock(&m->lock);
	return *out ? n : 0;
}

size_t members_random(struct members *m, unsigned mask, struct member *out, size_t n)
{
	size_t got = 0, cand = 0;
	size_t idx[1024];

	pthread_mutex_lock(&m->lock);
	for (size_t i = 1; i < m->count && cand < 1024; i++)
		if (mask & (1u << m->list[i].status))
			idx[cand++] = i;
	/* partial Fisher-Yates: the first n of a shuffle */
	for (size_t i = 0; i < cand && got < n; i++) {
		size_t j = i + (size_t)random() % (cand - i);
		size_t t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
		out[got++] = m->list[idx[i]];
	}
	pthread_mutex_unlock(&m->lock);
	return got;
}

bool members_get(struct members *m, const char *id, struct member *out)
{
	pthread_mutex_lock(&m->lock);
	struct member *e = find(m, id);
	if (e)
		*out = *e;
	pthread_mutex_unlock(&m->lock);
	return e != NULL;
}

size_t members_live_peers(struct members *m)
{
	return atomic_load(&m->live_peers);
}

int members_alive_count(struct members *m)
{
	int n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->count; i++)
		n += m->list[i].status == MEMBER_ALIVE || m->list[i].status == MEMBER_SUSPECT;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void members_counts(struct members *m, int counts[4])
{
	memset(counts, 0, 4 * sizeof(int));
	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->count; i++)
		counts[m->list[i].status]++;
	pthread_mutex_unlock(&m->lock);
}

/* ------------------------------------------------------------------- JSON */
