/*
 * clock.c - peers' clock offsets and the clock guard (see clock.h).
 */
#include "clock.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "members.h"
#include "replicate.h"
#include "store.h"
#include "version.h"
#include "wire.h"

#define CLOCK_PEERS 1024         /* entries kept, at most (max_members' range) */
#define CLOCK_KEEP_BEST_MS 30000 /* a shorter round trip is kept this long */

struct clock_entry {
	char id[CONFIG_ID_MAX];
	int64_t offset_ms;
	int64_t rtt_ms;
	int64_t at_ms;  /* when the kept sample was taken */
	struct clock_status status; /* its last report; at_ms 0: none yet */
};

struct clocks {
	pthread_mutex_t lock;
	struct clock_entry e[CLOCK_PEERS];
	size_t n;
	int64_t last_warn_ms;
};

struct clocks *clocks_new(void)
{
	struct clocks *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

void clocks_free(struct clocks *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The entry of id, added if missing (NULL when the table is full).
 * Caller holds c->lock. */
static struct clock_entry *entry(struct clocks *c, const char *id, bool add)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->e[i].id, id) == 0)
			return &c->e[i];
	if (!add || c->n == CLOCK_PEERS)
		return NULL;
	struct clock_entry *e = &c->e[c->n++];
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->rtt_ms = -1;
	return e;
}

void clock_sample(struct kvs_node *node, const char *id, int64_t t0, int64_t t1,
		  int64_t peer_ms)
{
	struct clocks *c = node->clocks;
	int64_t rtt = t1 - t0;

	if (!c || rtt < 0 || peer_ms <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	struct clock_entry *e = entry(c, id, true);
	if (e && (e->rtt_ms < 0 || rtt <= e->rtt_ms || t1 - e->at_ms > CLOCK_KEEP_BEST_MS)) {
		e->offset_ms = peer_ms - (t0 + t1) / 2;
		e->rtt_ms = rtt;
		e->at_ms = t1;
	}
	pthread_mutex_unlock(&c->lock);
}

void clock_status_set(struct kvs_node *node, const char *id, const struct clock_status *st)
{
	struct clocks *c = node->clocks;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	struct clock_entry *e = entry(c, id, true);
	if (e)
		e->status = *st;
	pthread_mutex_unlock(&c->lock);
}

bool clock_status_get(struct kvs_node *node, const char *id, struct clock_status *st)
{
	struct clocks *c = node->clocks;
	bool found = false;

	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	struct clock_entry *e = entry(c, id, false);
	if (e && e->status.at_ms > 0) {
		*st = e->status;
		found = true;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

void clock_status_self(struct kvs_node *node, struct clock_status *st)
{
	struct store_stats ss;

	store_stats(node->store, &ss);
	st->mode = atomic_load(&node->mode);
	st->keys = ss.keys;
	st->latest_ts = store_latest_ts(node->store);
	st->push_queue = node->replicate ? (int64_t)replicate_pending(node->replicate) : 0;
	st->at_ms = version_now_ms();
}

void clock_status_json(const struct clock_status *st, cJSON *o)
{
	cJSON_AddStringToObject(o, "mode", node_mode_name(st->mode));
	cJSON_AddNumberToObject(o, "keys", (double)st->keys);
	cJSON_AddNumberToObject(o, "latest_ts", (double)st->latest_ts);
	cJSON_AddNumberToObject(o, "push_queue", (double)st->push_queue);
}

bool clock_status_parse(const cJSON *o, struct clock_status *st)
{
	const cJSON *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
	struct clock_status s = { .mode = -1 };

	if (!cJSON_IsString(mode))
		return false;
	for (int m = MODE_NORMAL; m <= MODE_READ_ONLY; m++)
		if (strcmp(mode->valuestring, node_mode_name(m)) == 0)
			s.mode = m;
	if (s.mode < 0 || !wire_get_i64(o, "keys", &s.keys) ||
	    !wire_get_i64(o, "latest_ts", &s.latest_ts) ||
	    !wire_get_i64(o, "push_queue", &s.push_queue))
		return false;
	s.at_ms = version_now_ms();
	*st = s;
	return true;
}

bool clock_offset(struct kvs_node *node, const char *id, int64_t *offset_ms)
{
	struct clocks *c = node->clocks;
	bool found = false;

	if (!c)
		return false;
	pthread_mutex_lock(&c->lock);
	struct clock_entry *e = entry(c, id, false);
	if (e && e->rtt_ms >= 0) {
		*offset_ms = e->offset_ms;
		found = true;
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void clock_check(struct kvs_node *node)
{
	struct member *list;
	size_t n = members_snapshot(node->members, &list), k = 0;
	int64_t *abs_off = calloc(n ? n : 1, sizeof(*abs_off)), mark, worst = 0;
	const char *worst_id = "";

	if (!abs_off) {
		free(list);
		return;
	}
	mark = (int64_t)node->cfg.max_clock_offset_ms * 8 / 10;
	for (size_t i = 1; i < n; i++) {
		int64_t off;

		if (list[i].status != MEMBER_ALIVE || !clock_offset(node, list[i].id, &off))
			continue;
		abs_off[k++] = off < 0 ? -off : off;
		if (abs_off[k - 1] > worst) {
			worst = abs_off[k - 1];
			worst_id = list[i].id;
		}
	}
	bool was = atomic_load(&node->clock_skewed), skewed = false;
	if (k >= 2) {
		qsort(abs_off, k, sizeof(*abs_off), cmp_i64);
		skewed = abs_off[(k - 1) / 2] > mark; /* the lower median */
		if (skewed != was) {
			atomic_store(&node->clock_skewed, skewed);
			if (skewed)
				log_error("clock_skew", "median_offset_ms=%lld peers=%zu limit_ms=%d "
					  "note=\"client writes refused until this clock agrees\"",
					  (long long)abs_off[(k - 1) / 2], k,
					  node->cfg.max_clock_offset_ms);
			else
				log_info("clock_ok", "median_offset_ms=%lld peers=%zu",
					 (long long)abs_off[(k - 1) / 2], k);
		}
	} else {
		if (was) {
			atomic_store(&node->clock_skewed, false);
			log_info("clock_ok", "peers=%zu note=\"too few peers to tell\"", k);
		}
		int64_t now = version_now_ms();
		if (worst > mark && node->clocks && now - node->clocks->last_warn_ms > 60000) {
			node->clocks->last_warn_ms = now;
			log_warn("clock_offset_warning", "peer=%s offset_ms=%lld limit_ms=%d "
				 "note=\"too few peers to tell which clock is wrong\"", worst_id,
				 (long long)worst, node->cfg.max_clock_offset_ms);
		}
	}
	free(abs_off);
	free(list);
}

void clock_metrics(struct kvs_node *node, struct buf *b)
{
	struct member *list;
	size_t n = members_snapshot(node->members, &list);

	buf_adds(b, "# HELP kvs_clock_offset_seconds Each peer's clock minus this node's, from "
		    "probes.\n# TYPE kvs_clock_offset_seconds gauge\n");
	for (size_t i = 1; i < n; i++) {
		int64_t off;

		if (list[i].status == MEMBER_LEFT || !clock_offset(node, list[i].id, &off))
			continue;
		buf_printf(b, "kvs_clock_offset_seconds{peer=\"%s\"} %.3f\n", list[i].id,
			   (double)off / 1000.0);
	}
	buf_printf(b, "# HELP kvs_clock_skewed 1 while this node's clock disagrees with its "
		      "peers' (client writes refused).\n# TYPE kvs_clock_skewed gauge\n"
		      "kvs_clock_skewed %d\n", atomic_load(&node->clock_skewed) ? 1 : 0);
	free(list);
}
