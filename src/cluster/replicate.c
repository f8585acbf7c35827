/*
 * replicate.c - push on write (see replicate.h).
 *
 * The store's listener copies every local write into a FIFO (under
 * `lock`); the replicator thread takes up to a batch at a time, encodes it
 * once (push.h) and hands it to the sender of every live peer: one thread
 * per peer with a queue of its own (SENDER_QUEUE_BYTES), which POSTs the
 * batches in order.  A slow or dead peer (a request can take
 * peer_timeout_ms) holds back its own queue only: a batch it does not
 * answer is tried again while it is live, and when its queue is full its
 * new batches are dropped and counted (sync repairs them), never the
 * others'.  While a batch is sent, new writes pile up and form the next
 * one, so batches grow with the write rate and the per-request cost is
 * shared by many records.
 * A transaction's records (the store's batch listener) are queued
 * together under one txn id and always sent whole in one push, so a peer
 * applies them in one batch (apply.c).
 *
 * Locks: `lock` guards the queue (head, tail, count, bytes) and the
 * senders' queues (each sender waits on its own condition).  It is taken
 * inside store_apply (the listener runs under the store's path lock), so
 * nothing is called while it is held but malloc-free bookkeeping.  The
 * byte cap is checked and the entry added in one critical section, so
 * concurrent writers never overshoot REPLICATE_QUEUE_BYTES; the copy is
 * made outside the lock, between a first check and that one.
 */
#include "replicate.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kvs.h"
#include "log.h"
#include "members.h"
#include "peer.h"
#include "push.h"
#include "store.h"
#include "version.h"
#include "zstd_codec.h"

struct entry {
	struct entry *next;
	size_t klen, vlen;
	uint64_t txn;           /* a transaction's entries: one id, never split */
	int64_t queued_ms;      /* monotonic ms it was queued (backpressure) */
	struct kvs_record rec;  /* rec.value points into data + klen */
	char data[];            /* key bytes, value bytes, origin bytes */
};

/* One encoded push, shared by the senders' queues; freed by the last. */
struct batch {
	_Atomic int refs;
	size_t n;               /* records */
	int64_t born_ms;        /* its first record's queued_ms */
	struct buf body;        /* the push message */
	struct buf zbody;       /* its zstd frame (len 0: none, too small or off) */
};

struct queued {
	struct batch *b;
	struct queued *next;
};

/* One peer's sender: a thread and a queue of batches (under r->lock). */
struct sender {
	struct sender *next;
	struct replicate *r;
	char id[CONFIG_ID_MAX];
	char address[CONFIG_ADDR_MAX];  /* (lock) the peer's current address */
	pthread_t thread;
	pthread_cond_t wake;
	struct queued *head, *tail;     /* (lock) */
	size_t bytes;                   /* (lock) body bytes queued */
	size_t depth;                   /* (lock) batches queued, the one in flight included */
	bool failing;                   /* (lock) its last try got no answer */
	int64_t sending_since;          /* (lock) monotonic ms the push in flight began; 0: none */
	int64_t usual_ms;               /* (lock) moving average of its answered pushes, ms */
	bool stop;                      /* (lock) */
};

#define SENDER_QUEUE_BYTES (64u << 20) /* one peer's pushes waiting, at most */
#define PUSH_TRIES 8       /* tries of one batch a peer does not answer: ~10-25 s */
/* a push in flight for longer than SENDER_SLOW_TIMES its peer's usual (at
 * least SENDER_SLOW_MIN_MS) is not waited for (wait_for_senders) */
#define SENDER_SLOW_TIMES 4
#define SENDER_SLOW_MIN_MS 20
/* past LINGER_PEERS live peers, a batch waits for more records up to
 * peers / 2 ms (LINGER_MAX_MS at most): fewer, fuller pushes (linger) */
#define LINGER_PEERS 8
#define LINGER_MAX_MS 20
#define BEHIND_CHECK_MS 5  /* how often a write works out the push backlog */

struct replicate {
	struct kvs_node *node;
	pthread_mutex_t lock;   /* guards the queue below and the senders' */
	pthread_cond_t wake;
	struct entry *head, *tail;
	size_t count, bytes;
	struct sender *senders; /* (lock) one per peer pushed to so far */
	pthread_cond_t sent;    /* a sender took a batch off its queue */
	pthread_cond_t drained; /* the same, or the replicator took a batch: broadcast */
	atomic_bool behind;     /* pushes lag more than replication_lag_max_ms */
	int64_t behind_checked_ms; /* (lock) when `behind` was last worked out */
	_Atomic int64_t last_warn_ms; /* rate limit for push_failed warnings */
	_Atomic uint64_t txn_seq; /* the last transaction id given */
};

static void senders_stop(struct replicate *r);
static int64_t backlog_ms(const struct replicate *r, int64_t now);

static int64_t now_ms(void)
{
	return (int64_t)(hub_now_us() / 1000);
}

/* Sets until to now + ms on CLOCK_REALTIME (the conditions' clock). */
static void deadline_in(struct timespec *until, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, until);
	until->tv_sec += ms / 1000;
	until->tv_nsec += (ms % 1000) * 1000000L;
	if (until->tv_nsec >= 1000000000L) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000L;
	}
}


/* True if len bytes more fit in the queue.  Caller holds r->lock. */
static bool fits(const struct replicate *r, size_t len)
{
	return r->bytes + len <= REPLICATE_QUEUE_BYTES;
}

/* A copy of one record for the queue (the store's is borrowed), or NULL. */
static struct entry *entry_new(const char *path, size_t len, const struct kvs_record *rec,
			       uint64_t txn)
{
	size_t vlen = rec->tombstone ? 0 : rec->value_len;
	size_t olen = rec->origin_len; /* borrowed from the caller: copied too */
	struct entry *e = malloc(sizeof(*e) + len + vlen + olen);

	if (!e)
		return NULL;
	e->next = NULL;
	e->klen = len;
	e->vlen = vlen;
	e->txn = txn;
	e->queued_ms = now_ms();
	e->rec = *rec;
	memcpy(e->data, path, len);
	if (vlen)
		memcpy(e->data + len, rec->value, vlen);
	e->rec.value = e->data + len;
	e->rec.value_len = vlen;
	if (olen)
		memcpy(e->data + len + vlen, rec->origin, olen);
	e->rec.origin = olen ? e->data + len + vlen : NULL;
	return e;
}

/*
 * Adds the chain first..(count entries, bytes of keys and values) to the
 * queue, or frees it all when it does not fit: the cap is checked and the
 * chain added in one critical section, so writers that all saw room
 * earlier cannot pass it together.  Returns 0 or KVS_ETOOBIG.
 */
static int queue_append(struct replicate *r, struct entry *first, size_t count, size_t bytes)
{
	struct entry *last = first;

	while (last->next)
		last = last->next;
	pthread_mutex_lock(&r->lock);
	if (!fits(r, bytes)) {
		pthread_mutex_unlock(&r->lock);
		while (first) {
			struct entry *e = first;
			first = e->next;
			free(e);
		}
		atomic_fetch_add(&r->node->metrics.push_dropped, count);
		return KVS_ETOOBIG;
	}
	if (r->tail)
		r->tail->next = first;
	else
		r->head = first;
	r->tail = last;
	r->count += count;
	r->bytes += bytes;
	/* the backlog walks every sender: at most every BEHIND_CHECK_MS, not
	 * on every write (replicate_throttle looks again before it waits) */
	int64_t now = now_ms();
	if (r->node->cfg.replication_lag_max_ms > 0 && now - r->behind_checked_ms >= BEHIND_CHECK_MS) {
		r->behind_checked_ms = now;
		atomic_store_explicit(&r->behind, backlog_ms(r, now) >
				      r->node->cfg.replication_lag_max_ms, memory_order_relaxed);
	}
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

int replicate_enqueue(struct replicate *r, const char *path, size_t len,
		      const struct kvs_record *rec)
{
	size_t bytes = len + (rec->tombstone ? 0 : rec->value_len);
	struct entry *e;
	bool room;

	/* a full queue drops the record before copying it ... */
	pthread_mutex_lock(&r->lock);
	room = fits(r, bytes);
	pthread_mutex_unlock(&r->lock);
	if (!room || !(e = entry_new(path, len, rec, 0))) {
		atomic_fetch_add(&r->node->metrics.push_dropped, 1);
		return room ? KVS_ENOMEM : KVS_ETOOBIG;
	}
	/* ... and queue_append checks again where the entry is added */
	return queue_append(r, e, 1, bytes);
}

/* Queues the written ops of one batch as one transaction: whole, or (no
 * room, no memory) not at all, when sync repairs them later. */
static int enqueue_txn(struct replicate *r, const struct store_op *ops, size_t n)
{
	struct entry *first = NULL, **tail = &first;
	size_t count = 0, bytes = 0;
	uint64_t txn = atomic_fetch_add(&r->txn_seq, 1) + 1;

	for (size_t i = 0; i < n; i++) {
		if (ops[i].rc != 0 || ops[i].check)
			continue;
		if (!(*tail = entry_new(ops[i].path, ops[i].len, &ops[i].rec, txn))) {
			while (first) {
				struct entry *e = first;
				first = e->next;
				free(e);
			}
			atomic_fetch_add(&r->node->metrics.push_dropped, n);
			return KVS_ENOMEM;
		}
		bytes += (*tail)->klen + (*tail)->vlen;
		tail = &(*tail)->next;
		count++;
	}
	return first ? queue_append(r, first, count, bytes) : 0;
}

/* Store listener: runs inside store_apply, so it only copies and signals. */
static void on_write(void *ctx, const char *path, size_t len, const struct kvs_record *rec,
		     enum store_origin origin)
{
	struct replicate *r = ctx;

	/* remote records came from a peer that pushes them itself; with no live
	 * peer nobody would get the push (one that comes back catches up by sync),
	 * and queueing it would wake this thread on every write for nothing */
	if (origin == STORE_REMOTE || atomic_load(&r->node->left) ||
	    members_live_peers(r->node->members) == 0)
		return;
	replicate_enqueue(r, path, len, rec);
}

/* Store batch listener: a transaction's records, queued as one. */
static void on_batch(void *ctx, const struct store_op *ops, size_t n, enum store_origin origin)
{
	struct replicate *r = ctx;

	if (origin == STORE_REMOTE || atomic_load(&r->node->left) ||
	    members_live_peers(r->node->members) == 0)
		return;
	enqueue_txn(r, ops, n);
}

struct replicate *replicate_new(struct kvs_node *node)
{
	struct replicate *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->node = node;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	pthread_cond_init(&r->sent, NULL);
	pthread_cond_init(&r->drained, NULL);
	store_set_listener(node->store, on_write, r);
	store_set_batch_listener(node->store, on_batch, r);
	return r;
}

void replicate_free(struct replicate *r)
{
	if (!r)
		return;
	store_set_listener(r->node->store, NULL, NULL);
	store_set_batch_listener(r->node->store, NULL, NULL);
	senders_stop(r);
	while (r->head) {
		struct entry *e = r->head;
		r->head = e->next;
		free(e);
	}
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->wake);
	pthread_cond_destroy(&r->sent);
	pthread_cond_destroy(&r->drained);
	free(r);
}

void replicate_wake(struct replicate *r)
{
	pthread_mutex_lock(&r->lock);
	pthread_cond_broadcast(&r->wake);
	pthread_mutex_unlock(&r->lock);
}

size_t replicate_pending(struct replicate *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->count;
	pthread_mutex_unlock(&r->lock);
	return n;
}

/* Takes up to one batch off the queue (waiting up to 1 s for the first). */
static struct entry *take_batch(struct replicate *r, size_t *n)
{
	struct entry *first, *last;
	size_t bytes = 0;

	pthread_mutex_lock(&r->lock);
	if (!r->head && !node_stopping(r->node)) {
		struct timespec until;
		deadline_in(&until, 1000);
		pthread_cond_timedwait(&r->wake, &r->lock, &until);
	}
	first = last = r->head;
	*n = 0;
	/* whole units (one entry, or every entry of one transaction) while
	 * they fit; the first unit goes whatever its size, so a batch is at
	 * most the batch caps or one transaction (4 x max_value_bytes of
	 * values), which a peer's body cap allows */
	while (r->head) {
		struct entry *end = r->head, *e = r->head;
		size_t ubytes = 0, ucount = 0;

		do {
			end = e;
			ubytes += e->klen + e->vlen;
			ucount++;
			e = e->next;
		} while (e && end->txn && e->txn == end->txn);
		if (*n && (*n + ucount > REPLICATE_BATCH_ITEMS ||
			   bytes + ubytes > REPLICATE_BATCH_BYTES))
			break;
		last = end;
		r->head = e;
		bytes += ubytes;
		*n += ucount;
	}
	if (*n) {
		last->next = NULL;
		if (!r->head)
			r->tail = NULL;
		r->count -= *n;
		r->bytes -= bytes;
		pthread_cond_broadcast(&r->drained);
	} else {
		first = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	return first;
}

static void batch_put(struct batch *b)
{
	if (atomic_fetch_sub(&b->refs, 1) == 1) {
		buf_release(&b->body);
		buf_release(&b->zbody);
		free(b);
	}
}

static void warn_failed(struct replicate *r, const char *id, size_t n, long status,
			const char *what)
{
	int64_t now = version_now_ms(), last = atomic_load(&r->last_warn_ms);

	if (now - last > 10000 && atomic_compare_exchange_strong(&r->last_warn_ms, &last, now))
		log_warn("push_failed", "peer=%s items=%zu status=%ld reason=\"%s\" "
			 "note=\"sync will repair\"", id, n, status, what);
}

/* Takes q, the head of s's queue, off it.  Caller holds r->lock. */
static void sender_pop(struct sender *s, struct queued *q)
{
	s->head = q->next;
	if (!s->head)
		s->tail = NULL;
	s->bytes -= q->b->body.len;
	s->depth--;
	batch_put(q->b);
	free(q);
	pthread_cond_signal(&s->r->sent);
	pthread_cond_broadcast(&s->r->drained);
}

/*
 * A sender's thread: POSTs its queue's batches in order until stopped.  A
 * batch the peer did not answer (a timeout, a refused connection, a 5xx)
 * is tried again, after 100 ms and then 1 s between tries, up to
 * PUSH_TRIES times while the peer is live: so a peer stopped for a while
 * gets everything once it runs again, without waiting for a sync.  A peer
 * no longer live, one that refuses a batch with a 4xx, or one that never
 * answered it gets it dropped (counted in push_dropped; sync repairs it).
 */
static void *sender_thread(void *arg)
{
	struct sender *s = arg;
	struct replicate *r = s->r;
	struct kvs_node *node = r->node;
	char address[CONFIG_ADDR_MAX];
	struct buf reply;
	int tries = 0;
	bool zstd_ok = false; /* the peer offered zstd in its last answer */

	buf_init(&reply, 1 << 16);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!s->head && !s->stop)
			pthread_cond_wait(&s->wake, &r->lock);
		if (s->stop)
			break;
		struct queued *q = s->head; /* only this thread takes it off */
		struct batch *b = q->b;
		memcpy(address, s->address, sizeof(address));
		s->sending_since = now_ms();
		pthread_mutex_unlock(&r->lock);

		long status = 0;
		struct member m;
		bool done = true;
		if (!members_get(node->members, s->id, &m) ||
		    !(MEMBER_MASK_LIVE & (1u << m.status))) {
			atomic_fetch_add(&node->metrics.push_dropped, b->n);
		} else {
			buf_reset(&reply);
			struct peer_body pb = { b->body.data, b->body.len,
						b->zbody.len ? b->zbody.data : NULL, b->zbody.len };

			if (peer_push(node, address, &pb, &zstd_ok, &reply, &status) == 0) {
				atomic_fetch_add(&node->metrics.pushes_sent, 1);
				atomic_fetch_add(&node->metrics.push_items, b->n);
			} else {
				atomic_fetch_add(&node->metrics.pushes_failed, 1);
				warn_failed(r, s->id, b->n, status, "request failed");
				done = status >= 400 && status < 500; /* refused: no retry */
				if (done)
					atomic_fetch_add(&node->metrics.push_dropped, b->n);
			}
		}
		pthread_mutex_lock(&r->lock);
		if (status >= 200 && status < 300) /* answered: the peer's usual pace */
			s->usual_ms = (7 * s->usual_ms + (now_ms() - s->sending_since)) / 8;
		s->sending_since = 0;
		if (!done && tries + 1 >= PUSH_TRIES) { /* given up: sync repairs it */
			atomic_fetch_add(&node->metrics.push_dropped, b->n);
			sender_pop(s, q);
			tries = 0;
			continue;
		}
		if (done) {
			s->failing = false; /* answered, or refused */
			sender_pop(s, q);
			tries = 0;
			continue;
		}
		s->failing = true;
		pthread_cond_signal(&r->sent); /* the replicator need not wait for it */
		/* not answered: wait a little (or for the stop), then again */
		struct timespec until;
		deadline_in(&until, tries++ ? 1000 : 100);
		if (!s->stop)
			pthread_cond_timedwait(&s->wake, &r->lock, &until);
	}
	/* stopping: whatever is left is dropped (sync repairs it) */
	while (s->head)
		sender_pop(s, s->head);
	pthread_mutex_unlock(&r->lock);
	buf_release(&reply);
	return NULL;
}

/* The sender of peer m, started if new.  Caller holds r->lock.  NULL when
 * no thread can be started (the batch is then dropped for that peer). */
static struct sender *sender_for(struct replicate *r, const struct member *m)
{
	struct sender *s;

	for (s = r->senders; s; s = s->next)
		if (strcmp(s->id, m->id) == 0) {
			memcpy(s->address, m->address, sizeof(s->address));
			return s;
		}
	if (!(s = calloc(1, sizeof(*s))))
		return NULL;
	s->r = r;
	memcpy(s->id, m->id, sizeof(s->id));
	memcpy(s->address, m->address, sizeof(s->address));
	pthread_cond_init(&s->wake, NULL);
	if (pthread_create(&s->thread, NULL, sender_thread, s) != 0) {
		pthread_cond_destroy(&s->wake);
		free(s);
		return NULL;
	}
	char name[16]; /* "kvs-push:" and the peer's id, cut to the 15 a name holds */
	snprintf(name, sizeof(name), "kvs-push:%.6s", s->id);
	pthread_setname_np(s->thread, name);
	s->next = r->senders;
	r->senders = s;
	return s;
}

/* Stops and joins every sender (at replicate_free). */
static void senders_stop(struct replicate *r)
{
	struct sender *s;

	pthread_mutex_lock(&r->lock);
	for (s = r->senders; s; s = s->next) {
		s->stop = true;
		pthread_cond_signal(&s->wake);
	}
	s = r->senders;
	r->senders = NULL;
	pthread_mutex_unlock(&r->lock);
	while (s) {
		struct sender *next = s->next;

		pthread_join(s->thread, NULL);
		pthread_cond_destroy(&s->wake);
		free(s);
		s = next;
	}
}

/* Encodes one batch once and queues it for every live peer's sender. */
static void send_batch(struct replicate *r, struct entry *first, size_t n)
{
	struct kvs_node *node = r->node;
	struct member *list, self;
	size_t members = members_snapshot(node->members, &list), live = 0;
	struct push_msg msg;
	struct batch *b;

	for (size_t m = 1; m < members; m++)
		live += (MEMBER_MASK_LIVE & (1u << list[m].status)) != 0;
	if (live == 0 || !(b = calloc(1, sizeof(*b)))) { /* alone: nobody to encode it for */
		free(list);
		return;
	}
	node_self_member(node, &self);
	/* values travel as JSON strings: escaping at most doubles them */
	push_begin(&msg, 2 * REPLICATE_BATCH_BYTES + 10 * (size_t)node->cfg.max_value_bytes +
		   STORE_BATCH_MAX * 4096 + 65536, &self, SYNC_PUSH);
	for (struct entry *e = first; e; e = e->next)
		push_add_txn(&msg, e->data, e->klen, &e->rec, e->txn);
	if (push_end(&msg) != 0) {
		atomic_fetch_add(&node->metrics.pushes_failed, 1);
		push_release(&msg);
		free(b);
		free(list);
		return;
	}
	b->body = msg.body; /* the batch owns the text now */
	/* compressed once for every peer that takes it (peer_push decides) */
	buf_init(&b->zbody, b->body.len + (b->body.len >> 3) + 1024);
	if (node->cfg.peer_compression && b->body.len >= ZSTD_CODEC_MIN_BYTES &&
	    (zstd_pack(b->body.data, b->body.len, &b->zbody) != 0 || b->zbody.len >= b->body.len))
		buf_release(&b->zbody); /* no frame, or no smaller: sent plain */
	b->n = n;
	b->born_ms = first->queued_ms;
	atomic_store(&b->refs, 1); /* this function's, dropped at the end */
	pthread_mutex_lock(&r->lock);
	for (size_t m = 1; m < members; m++) {
		struct sender *s;
		struct queued *q;

		if (!(MEMBER_MASK_LIVE & (1u << list[m].status)))
			continue;
		if (!(s = sender_for(r, &list[m])) || s->bytes + b->body.len > SENDER_QUEUE_BYTES ||
		    !(q = malloc(sizeof(*q)))) {
			atomic_fetch_add(&node->metrics.push_dropped, n);
			warn_failed(r, list[m].id, n, 0, "its push queue is full");
			continue;
		}
		atomic_fetch_add(&b->refs, 1);
		q->b = b;
		q->next = NULL;
		if (s->tail)
			s->tail->next = q;
		else
			s->head = q;
		s->tail = q;
		s->bytes += b->body.len;
		s->depth++;
		pthread_cond_signal(&s->wake);
	}
	pthread_mutex_unlock(&r->lock);
	batch_put(b);
	free(list);
}

/*
 * Waits (up to 1 s) while a peer that answers, and has not been sending its
 * current batch for SENDER_SLOW_TIMES its usual time already, has a batch
 * queued besides the one it is sending: meanwhile writes pile up into the
 * next batch, so
 * batches grow with the load as when one thread sent them all, instead of
 * queueing many small pushes.  A peer that does not answer is not waited
 * for: its queue fills and drops alone.
 */
/* True if s answers and its push in flight (if any) is not overdue: a
 * peer worth waiting for.  Caller holds r->lock. */
static bool sender_responsive(const struct sender *s, int64_t now)
{
	int64_t slow = SENDER_SLOW_TIMES * s->usual_ms;

	slow = slow > SENDER_SLOW_MIN_MS ? slow : SENDER_SLOW_MIN_MS;
	return !s->failing && (!s->sending_since || now - s->sending_since < slow);
}

static void wait_for_senders(struct replicate *r)
{
	int64_t start = now_ms();

	pthread_mutex_lock(&r->lock);
	for (;;) {
		int64_t now = now_ms();
		bool busy = false;
		struct timespec until;

		for (struct sender *s = r->senders; s; s = s->next)
			busy |= s->depth >= 2 && sender_responsive(s, now);
		if (!busy || node_stopping(r->node) || now - start >= 1000)
			break;
		/* wake on a sent batch, or after 50 ms to see a push turn slow */
		deadline_in(&until, 50);
		pthread_cond_timedwait(&r->sent, &r->lock, &until);
	}
	pthread_mutex_unlock(&r->lock);
}

/*
 * How far behind the pushes are, in ms: the age of the oldest record not
 * yet in a batch, or of the oldest batch a responsive peer has not yet
 * answered.  A peer that does not answer, or is overdue, is left out: it
 * must not hold writes back (its queue fills and drops alone, and sync
 * repairs it).  Caller holds r->lock.
 */
static int64_t backlog_ms(const struct replicate *r, int64_t now)
{
	int64_t oldest = r->head ? r->head->queued_ms : now;

	for (const struct sender *s = r->senders; s; s = s->next)
		if (s->head && s->head->b->born_ms < oldest && sender_responsive(s, now))
			oldest = s->head->b->born_ms;
	return now - oldest;
}

int replicate_throttle(struct replicate *r)
{
	int64_t budget, start, now;
	int waited = 0;

	if (!r || (budget = r->node->cfg.replication_lag_max_ms) <= 0 ||
	    !atomic_load_explicit(&r->behind, memory_order_relaxed))
		return 0;
	start = now = now_ms();
	pthread_mutex_lock(&r->lock);
	while (now - start < REPLICATE_THROTTLE_MAX_MS && !node_stopping(r->node) &&
	       !atomic_load(&r->node->left) && backlog_ms(r, now) > budget) {
		struct timespec until;

		waited = 1;
		/* woken by a batch sent or taken; at least every 10 ms, to see a
		 * push turn overdue */
		deadline_in(&until, 10);
		pthread_cond_timedwait(&r->drained, &r->lock, &until);
		now = now_ms();
	}
	atomic_store_explicit(&r->behind, backlog_ms(r, now) > budget, memory_order_relaxed);
	pthread_mutex_unlock(&r->lock);
	if (waited) {
		atomic_fetch_add(&r->node->metrics.writes_throttled, 1);
		atomic_fetch_add(&r->node->metrics.throttle_wait_us, (uint64_t)(now - start) * 1000);
	}
	return waited;
}

/*
 * In a large cluster, waits until the oldest queued record is a few ms old
 * (or a batch is full) before a batch is taken.  Every batch costs one
 * request per peer, whatever it holds: at 500 writes/s to 39 peers, a push
 * per write is 19,500 requests/s across the cluster, and 20 ms of linger
 * cuts that about tenfold for 20 ms of lag.  Clusters of up to
 * LINGER_PEERS peers never wait.
 */
static void linger(struct replicate *r)
{
	size_t peers = members_live_peers(r->node->members);
	int64_t ms = peers <= LINGER_PEERS ? 0 : (int64_t)peers / 2;
	struct timespec until;

	if (ms == 0)
		return;
	ms = ms < LINGER_MAX_MS ? ms : LINGER_MAX_MS;
	pthread_mutex_lock(&r->lock);
	if (!r->head && !node_stopping(r->node)) { /* the first record, as take_batch */
		deadline_in(&until, 1000);
		pthread_cond_timedwait(&r->wake, &r->lock, &until);
	}
	while (r->head && r->count < REPLICATE_BATCH_ITEMS && !node_stopping(r->node)) {
		int64_t age = now_ms() - r->head->queued_ms;

		if (age >= ms)
			break;
		deadline_in(&until, ms - age);
		pthread_cond_timedwait(&r->wake, &r->lock, &until);
	}
	pthread_mutex_unlock(&r->lock);
}

static void *replicate_thread(void *arg)
{
	struct kvs_node *node = arg;
	struct replicate *r = node->replicate;

	while (!node_stopping(node)) {
		size_t n;
		struct entry *batch;

		wait_for_senders(r);
		linger(r);
		batch = take_batch(r, &n);

		if (batch && !atomic_load(&node->left))
			send_batch(r, batch, n);
		while (batch) {
			struct entry *e = batch;
			batch = e->next;
			free(e);
		}
	}
	return NULL;
}

int replicate_start(struct kvs_node *node)
{
	return node_spawn(node, replicate_thread, "kvs-replicate");
}
