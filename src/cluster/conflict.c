/*
 * conflict.c - the resolver queue and thread (rules in conflict.h; the
 * tally itself is vote.c).
 *
 * Queue: a small FIFO of paths under `lock`, deduplicated by a linear scan
 * (conflicts are rare; CONFLICT_QUEUE_MAX bounds the scan).  A path voted
 * on less than CONFLICT_MIN_INTERVAL_MS ago waits for its turn, so a storm
 * of pushes carrying the same conflict costs one vote per interval.
 *
 * Resolver thread: takes a path, asks every live member for its record
 * (fetch_records(), one POST /members/fetch each), tallies (vote_tally())
 * and stores the winner through apply_winner().  `lock` is a leaf: nothing
 * is called while it is held.  apply.c and fetch.c submit paths here while
 * the resolver uses them in turn: they call each other only through
 * functions, never under a lock.
 */
#include "conflict.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "buf.h"
#include "fetch.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "version.h"
#include "vote.h"
#include "wire.h"

#define RECENT_SLOTS 1024 /* remembered recent votes, by path hash */

struct pending {
	char *path;
	size_t len;
};

struct conflict {
	struct kvs_node *node;
	pthread_mutex_t lock;          /* guards queue and recent */
	pthread_cond_t wake;
	struct pending queue[CONFLICT_QUEUE_MAX];
	size_t head, count;
	struct {
		uint64_t hash;
		int64_t at_ms;
	} recent[RECENT_SLOTS];        /* when a path was last voted on */
};

/* ------------------------------------------------------------------ queue */

static uint64_t hash_path(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= (uint8_t)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

struct conflict *conflict_new(struct kvs_node *node)
{
	struct conflict *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->node = node;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	return c;
}

void conflict_free(struct conflict *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->count; i++)
		free(c->queue[(c->head + i) % CONFLICT_QUEUE_MAX].path);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->wake);
	free(c);
}

void conflict_wake(struct conflict *c)
{
	pthread_mutex_lock(&c->lock);
	pthread_cond_broadcast(&c->wake);
	pthread_mutex_unlock(&c->lock);
}

void conflict_submit(struct kvs_node *node, const char *path, size_t len)
{
	struct conflict *c = node->conflict;
	char *copy;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->count; i++) {
		struct pending *p = &c->queue[(c->head + i) % CONFLICT_QUEUE_MAX];
		if (p->len == len && memcmp(p->path, path, len) == 0)
			goto out_unlock; /* already queued */
	}
	if (c->count == CONFLICT_QUEUE_MAX || !(copy = strndup(path, len)))
		goto out_unlock; /* anti-entropy will meet it again */
	c->queue[(c->head + c->count) % CONFLICT_QUEUE_MAX] = (struct pending){ copy, len };
	c->count++;
	pthread_cond_signal(&c->wake);
out_unlock:
	pthread_mutex_unlock(&c->lock);
}

/* Takes the next path (waiting up to 1 s); NULL if none. */
static char *take(struct conflict *c, size_t *len)
{
	char *p = NULL;

	pthread_mutex_lock(&c->lock);
	if (!c->count && !node_stopping(c->node)) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&c->wake, &c->lock, &until);
	}
	if (c->count) {
		p = c->queue[c->head].path;
		*len = c->queue[c->head].len;
		c->head = (c->head + 1) % CONFLICT_QUEUE_MAX;
		c->count--;
	}
	pthread_mutex_unlock(&c->lock);
	return p;
}

/* Milliseconds to wait before path may be voted on again (0: now), and
 * records the vote time when it may. */
static int64_t rate_wait(struct conflict *c, const char *path, size_t len)
{
	uint64_t h = hash_path(path, len);
	int64_t now = version_now_ms(), wait = 0;

	pthread_mutex_lock(&c->lock);
	size_t slot = h % RECENT_SLOTS;
	if (c->recent[slot].hash == h && now - c->recent[slot].at_ms < CONFLICT_MIN_INTERVAL_MS)
		wait = CONFLICT_MIN_INTERVAL_MS - (now - c->recent[slot].at_ms);
	else
		c->recent[slot].hash = h, c->recent[slot].at_ms = now;
	pthread_mutex_unlock(&c->lock);
	return wait;
}

/* --------------------------------------------------------------- resolver */

/* One member's answer: its record of path (value included), if any. */
struct answer {
	struct vote vote;
	char address[CONFIG_ADDR_MAX];
	struct fetch_reply reply;  /* keeps item's strings alive */
	struct wire_item item;
};

/* Asks address for its record of path.  Returns 0 (answer filled, has may
 * be false) or KVS_EPEER / KVS_ENOMEM, with a->reply holding nothing. */
static int ask(struct kvs_node *node, const char *address, const char *path, struct answer *a)
{
	const char *why;
	int rc = fetch_records(node, address, &path, 1, 5000, &a->reply, &why);

	if (rc == KVS_EINVAL) {
		log_warn_limited("conflict_bad_reply", "peer=%s reason=\"%s\"", address, why);
		return KVS_EPEER;
	}
	if (rc != 0)
		return rc;
	if (a->reply.n == 1 && strcmp(a->reply.items[0].key, path) == 0) {
		a->item = a->reply.items[0];
		a->vote.has = true;
		a->vote.v = a->item.rec.v;
	}
	return 0;
}

static void describe(const struct answer *a, size_t n, struct buf *b)
{
	for (size_t i = 0; i < n; i++) {
		char uuid[VERSION_UUID_STR] = "none";
		if (a[i].vote.has)
			version_uuid_str(&a[i].vote.v, uuid);
		buf_printf(b, "%s%s:%.8s%s", i ? "," : "", a[i].vote.id, uuid,
			   a[i].vote.has && a[i].item.rec.tombstone ? "(deleted)" : "");
	}
}

static void resolve(struct conflict *c, const char *path, size_t len)
{
	struct kvs_node *node = c->node;
	struct member *list;
	size_t n = members_snapshot(node->members, &list), got = 0;
	struct answer *ans = calloc(n ? n : 1, sizeof(*ans));
	struct store_value mine;
	bool have_mine = false;

	if (!ans || !n)
		goto out;
	/* our own vote first */
	if (store_get(node->store, path, len, &mine) == 0) {
		have_mine = true;
		ans[0].vote.has = true;
		ans[0].vote.v = mine.rec.v;
		ans[0].item = (struct wire_item){ .key = path, .klen = len, .rec = mine.rec, .has_value = true };
	}
	snprintf(ans[0].vote.id, sizeof(ans[0].vote.id), "%s", node->cfg.node_id);
	ans[0].vote.joined_ts = node->joined_ts;
	got = 1;
	for (size_t i = 1; i < n && !node_stopping(node); i++) {
		if (!(MEMBER_MASK_LIVE & (1u << list[i].status)))
			continue;
		struct answer *a = &ans[got];
		snprintf(a->vote.id, sizeof(a->vote.id), "%s", list[i].id);
		snprintf(a->address, sizeof(a->address), "%s", list[i].address);
		a->vote.joined_ts = list[i].joined_ts;
		if (ask(node, list[i].address, path, a) == 0)
			got++;
	}

	struct vote *votes = calloc(got, sizeof(*votes));
	if (!votes)
		goto out;
	for (size_t i = 0; i < got; i++)
		votes[i] = ans[i].vote;
	int w = vote_tally(votes, got);
	free(votes);
	if (w < 0)
		goto out;

	struct buf desc;
	char wuuid[VERSION_UUID_STR], muuid[VERSION_UUID_STR] = "none";
	buf_init(&desc, 8192);
	describe(ans, got, &desc);
	version_uuid_str(&ans[w].vote.v, wuuid);
	if (have_mine)
		version_uuid_str(&mine.rec.v, muuid);

	if (have_mine && version_equal(&mine.rec.v, &ans[w].vote.v)) {
		log_info("conflict_resolved", "path=\"%s\" votes=\"%s\" winner=%s action=kept",
			 LOG_ESCN(path, len), desc.data ? desc.data : "", wuuid);
		atomic_fetch_add(&node->metrics.conflicts_resolved, 1);
	} else {
		int rc = apply_winner(node, path, len, &ans[w].item.rec,
				      have_mine ? &mine.rec.v : NULL);
		log_info("conflict_resolved",
			 "path=\"%s\" votes=\"%s\" winner=%s replaced=%s action=%s",
			 LOG_ESCN(path, len), desc.data ? desc.data : "", wuuid, muuid,
			 rc == 0 ? "stored_winner" : rc == KVS_ESTALE ? "superseded" : "failed");
	}
	buf_release(&desc);
out:
	if (have_mine)
		store_value_release(&mine);
	for (size_t i = 0; ans && i < got; i++)
		fetch_reply_release(&ans[i].reply);
	free(ans);
	free(list);
}

static void *conflict_thread(void *arg)
{
	struct kvs_node *node = arg;
	struct conflict *c = node->conflict;

	while (!node_stopping(node)) {
		size_t len;
		char *path = take(c, &len);

		if (!path)
			continue;
		int64_t wait = rate_wait(c, path, len);
		if (wait > 0) {
			node_sleep_ms(node, wait);
			conflict_submit(node, path, len); /* its turn comes round again */
		} else if (!atomic_load(&node->left)) {
			resolve(c, path, len);
		}
		free(path);
	}
	return NULL;
}

int conflict_start(struct kvs_node *node)
{
	return node_spawn(node, conflict_thread, "kvs-conflict");
}
