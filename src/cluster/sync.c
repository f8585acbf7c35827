/*
 * sync.c - the sync thread (see sync.h).
 *
 * It runs, in this order:
 *   1. bootstrap, once: while the node joins through its seeds it is in
 *      `syncing` mode; once joined it pages through a peer's time index
 *      (items up to bootstrap_max_age_hours old, values included),
 *      throttled, then turns `normal`.  A node whose seeds are all
 *      unreachable turns `normal` at once and catches up when it joins.
 *   2. then, forever, whichever task is due:
 *      regular sync (sync_interval): compare the sync_items newest items
 *        of a random peer; anything newer there is fetched and makes this
 *        node `behind`;
 *      catch-up (catchup_interval, while behind): page back through the
 *        peer's time index until a whole page is in common, fetch what
 *        differs, pausing throttle_delay_ms between pages and
 *        fetch_delay_ms between fetches;
 *      anti-entropy (anti_entropy_interval): anti_entropy.h;
 *      tombstone purge (5 s after start, then every half grace, at most
 *        hourly): drop delete markers older than tombstone_grace;
 *      heartbeat (every HEARTBEAT_MS): record "last_alive" in meta, which
 *        tells a restarted node how long it was away.
 *
 * Catch-up and bootstrap walk the peer's time index the same way, a page
 * at a time behind a (timestamp, key) cursor (walk_pages()); they differ
 * only in the direction and in what they do with a page.  A same-timestamp,
 * other-UUID version met anywhere goes to the conflict resolver
 * (fetch_triage(), apply_items()) rather than being fetched.
 *
 * Threads: the sync thread alone runs this file, apart from
 * sync_may_share() (any thread).  No locks of its own.
 */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "anti_entropy.h"
#include "apply.h"
#include "fetch.h"
#include "gossip.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "path.h"
#include "peer.h"
#include "version.h"

#define PAGE_ITEMS 500          /* items per page of a time-index walk */
#define CATCHUP_MAX_PAGES 2000  /* bound on one catch-up walk */
#define HEARTBEAT_MS 10000
#define RESTART_MARGIN_MS (10 * 60 * 1000) /* clock slack when resuming from last_alive */

/* ---------------------------------------------------------------- types */

/* A walk through a peer's time index, one page at a time. */
struct walk {
	const struct member *peer;
	bool forward;           /* oldest first with values (/members/since), else
	                         * newest first, pairs only (/members/recent) */
	int max_pages;          /* 0: no bound */
	int64_t ts;             /* cursor: the last item walked (0 and "": the start) */
	char key[PATH_KEY_MAX + 1];
	size_t pages;           /* pages walked so far */
	int64_t started_ms;     /* when the walk began (monotonic), for the byte rate */
	uint64_t bytes;         /* keys and values received so far */
	/* takes one page (items borrow from root); returns false when done */
	bool (*page)(void *arg, const cJSON *root, const struct wire_item *items, size_t n);
	void *arg;
};

/* ----------------------------------------------------------- public API */

bool sync_may_share(struct kvs_node *node, const struct kvs_record *r)
{
	return node->stale_before_ts == 0 || r->v.ts >= node->stale_before_ts;
}

/* ------------------------------------------------------------ internals */

/* Picks one random live peer; false if there is none. */
static bool random_peer(struct kvs_node *node, struct member *out)
{
	return members_random(node->members, MEMBER_MASK_LIVE, out, 1) == 1;
}


/*
 * The pause before w's next page: long enough that the walk stays under
 * sync_bytes_per_sec (keys and values received since it began), and at
 * least throttle_delay_ms.  A page costs a pause of its own only when the
 * walk runs ahead of the rate: a join of 1M keys is no longer 2,000 fixed
 * sleeps (issue 20).
 */
static int64_t page_pause_ms(const struct kvs_node *node, const struct walk *w)
{
	int64_t rate = node->cfg.sync_bytes_per_sec, pause = node->cfg.throttle_delay_ms;

	if (rate > 0) {
		int64_t due = (int64_t)(w->bytes * 1000 / (uint64_t)rate) -
			      ((int64_t)(hub_now_us() / 1000) - w->started_ms);
		pause = due > pause ? due : pause;
	}
	return pause;
}

/*
 * Walks pages from w's cursor, pausing between pages (page_pause_ms).
 * Returns 1 when w->page ended the walk, 0 when the node stopped or
 * max_pages ran out, KVS_EPEER when a page could not be had.
 */
static int walk_pages(struct kvs_node *node, struct walk *w)
{
	w->started_ms = (int64_t)(hub_now_us() / 1000);
	w->bytes = 0;
	while ((!w->max_pages || w->pages < (size_t)w->max_pages) && !node_stopping(node)) {
		char path[PATH_KEY_MAX * 3 + 128];
		char *ek = peer_escape(w->key);
		struct wire_item *items;
		cJSON *root;
		size_t n;

		if (w->forward)
			snprintf(path, sizeof(path), "/members/since?ts=%lld&key=%s&limit=%d&values=true",
				 (long long)w->ts, ek ? ek : "", PAGE_ITEMS);
		else
			snprintf(path, sizeof(path),
				 "/members/recent?limit=%d&before_ts=%lld&before_key=%s", PAGE_ITEMS,
				 (long long)w->ts, ek ? ek : "");
		free(ek);
		if (fetch_page(node, w->peer->address, path, w->forward, &root, &items, &n) != 0)
			return KVS_EPEER;
		bool more = w->page(w->arg, root, items, n);
		for (size_t i = 0; i < n; i++)
			w->bytes += items[i].klen + items[i].rec.value_len + 64;
		/* the peer's cursor moves over records it did not share too
		 * (next_ts/next_key); the last item is the fallback */
		const cJSON *nts = cJSON_GetObjectItemCaseSensitive(root, "next_ts");
		const cJSON *nkey = cJSON_GetObjectItemCaseSensitive(root, "next_key");
		int64_t old_ts = w->ts;
		char old_key[sizeof(w->key)];

		snprintf(old_key, sizeof(old_key), "%s", w->key);
		if (wire_get_i64(root, "next_ts", &w->ts) && w->ts > 0 && cJSON_IsString(nkey) &&
		    nts && path_key_valid(nkey->valuestring, strlen(nkey->valuestring))) {
			snprintf(w->key, sizeof(w->key), "%s", nkey->valuestring);
		} else if (n) {
			w->ts = items[n - 1].rec.v.ts;
			snprintf(w->key, sizeof(w->key), "%s", items[n - 1].key);
		} else {
			w->ts = old_ts;
		}
		if (w->ts == old_ts && strcmp(w->key, old_key) == 0)
			more = false; /* no progress: never ask for the same page again */
		free(items);
		cJSON_Delete(root);
		w->pages++;
		if (!more)
			return 1;
		int64_t pause = page_pause_ms(node, w);
		if (pause > 0)
			node_sleep_ms(node, pause);
	}
	return 0;
}

/* Fetches and applies want from peer, and logs the outcome under kind. */
static void fetch_wanted(struct kvs_node *node, const struct member *peer,
			 struct fetch_list *want, enum sync_kind kind)
{
	struct apply_counts cnt = { 0 };

	if (!want->n)
		return;
	fetch_apply(node, peer->address, (const char *const *)want->keys, want->n, kind, &cnt);
	log_info("sync_fetched", "kind=%s peer=%s wanted=%zu applied=%zu conflicts=%zu",
		 metrics_sync_kind_name(kind), peer->id, want->n, cnt.applied, cnt.conflicts);
}

/* --------------------------------------------------------- regular sync */

/* Returns true if the peer had something newer (this node is behind). */
static bool regular_sync(struct kvs_node *node)
{
	struct member peer;
	struct fetch_list want = { 0 };
	struct wire_item *items;
	cJSON *root;
	size_t n;
	char path[128];

	if (!random_peer(node, &peer))
		return false;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_REGULAR], 1);
	snprintf(path, sizeof(path), "/members/recent?limit=%d", node->cfg.sync_items);
	if (fetch_page(node, peer.address, path, false, &root, &items, &n) != 0)
		return false;
	fetch_triage(node, items, n, &want);
	free(items);
	cJSON_Delete(root);
	fetch_wanted(node, &peer, &want, SYNC_REGULAR);
	bool behind = want.n > 0;
	fetch_list_release(&want);
	return behind;
}

/* -------------------------------------------------------------- catch-up */

struct catchup {
	struct kvs_node *node;
	struct fetch_list want;  /* keys newer at the peer */
	int common_pages;        /* pages in a row with nothing different */
};

static bool catchup_page(void *arg, const cJSON *root, const struct wire_item *items, size_t n)
{
	struct catchup *c = arg;
	size_t differ = fetch_triage(c->node, items, n, &c->want);

	(void)root;
	/* two whole pages in common: the last point in common is behind us */
	c->common_pages = differ ? 0 : c->common_pages + 1;
	return c->common_pages < 2 && n >= PAGE_ITEMS;
}

/* Pages back through a peer's history until a page is wholly in common.
 * Returns true if still behind (the walk was cut short). */
static bool catchup(struct kvs_node *node)
{
	struct member peer;
	struct catchup c = { .node = node };
	struct walk w = { .peer = &peer, .forward = false, .max_pages = CATCHUP_MAX_PAGES,
			  .page = catchup_page, .arg = &c };

	if (!random_peer(node, &peer))
		return true;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_CATCHUP], 1);
	bool complete = walk_pages(node, &w) == 1;
	fetch_wanted(node, &peer, &c.want, SYNC_CATCHUP);
	fetch_list_release(&c.want);
	return !complete;
}

/* ------------------------------------------------------------- bootstrap */

struct bootstrap {
	struct kvs_node *node;
	struct apply_counts cnt;
};

static bool bootstrap_page(void *arg, const cJSON *root, const struct wire_item *items,
			   size_t n)
{
	struct bootstrap *b = arg;

	apply_items(b->node, items, n, SYNC_BOOTSTRAP, &b->cnt);
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "more"));
}

/* Pages forward through a peer's history with values; true on success. */
static bool bootstrap_from(struct kvs_node *node, const struct member *peer)
{
	int64_t ts = version_now_ms() - (int64_t)node->cfg.bootstrap_max_age_hours * 3600 * 1000;
	struct bootstrap b = { .node = node };
	struct walk w = { .peer = peer, .forward = true, .page = bootstrap_page, .arg = &b };

	/* a node coming back needs only what it missed since it was last up */
	if (node->last_alive_ts && node->last_alive_ts - RESTART_MARGIN_MS > ts)
		ts = node->last_alive_ts - RESTART_MARGIN_MS;
	w.ts = ts < 0 ? 0 : ts;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_BOOTSTRAP], 1);
	if (walk_pages(node, &w) < 0)
		return false;
	log_info("sync_fetched", "kind=bootstrap peer=%s pages=%zu applied=%zu stale=%zu "
		 "conflicts=%zu", peer->id, w.pages, b.cnt.applied, b.cnt.stale, b.cnt.conflicts);
	return !node_stopping(node);
}

/* Waits for the join, bootstraps, and leaves syncing mode. */
static void bootstrap(struct kvs_node *node)
{
	int normal = node->cfg.read_only ? MODE_READ_ONLY : MODE_NORMAL;
	struct member peer;

	if (node->cfg.seed_count == 0)
		return; /* the first node of a cluster has nobody to learn from */

	while (!node_stopping(node) && atomic_load(&node->join_state) == JOIN_PENDING)
		node_sleep_ms(node, 50);
	if (atomic_load(&node->join_state) == JOIN_STANDALONE) {
		node_set_mode(node, normal);
		while (!node_stopping(node) && atomic_load(&node->join_state) != JOIN_DONE)
			node_sleep_ms(node, 200);
	}
	for (int attempt = 0; attempt < 5 && !node_stopping(node); attempt++) {
		if (random_peer(node, &peer) && bootstrap_from(node, &peer))
			break;
		node_sleep_ms(node, 1000);
	}
	node_set_mode(node, normal);
}

/* ---------------------------------------------------------------- thread */

static void heartbeat(struct kvs_node *node)
{
	uint8_t buf[8];

	record_put_be64(buf, (uint64_t)version_now_ms());
	store_meta_put(node->store, "last_alive", buf, sizeof(buf));
}

static void purge(struct kvs_node *node)
{
	int64_t before = version_now_ms() - node->cfg.tombstone_grace * 1000;
	int64_t n = store_purge_tombstones(node->store, before);

	if (n > 0) {
		atomic_fetch_add(&node->metrics.tombstones_purged, (uint64_t)n);
		log_info("tombstones_purged", "count=%lld", (long long)n);
	}
}

/* Jitters a period by +-10% so nodes do not sync in lockstep. */
static int64_t jitter(int64_t ms)
{
	return ms - ms / 10 + (ms >= 5 ? random() % (ms / 5 + 1) : 0);
}

static void *sync_thread(void *arg)
{
	struct kvs_node *node = arg;
	int64_t now = version_now_ms();
	int64_t next_regular = now + jitter(1000LL * node->cfg.sync_interval);
	int64_t next_catchup = 0;
	int64_t next_ae = now + jitter(1000LL * node->cfg.anti_entropy_interval);
	/* first purge soon after start (a node back from a long absence has
	 * the most to purge), then every half grace, at most hourly */
	int64_t purge_every = 1000LL * (node->cfg.tombstone_grace / 2 < 3600
					? node->cfg.tombstone_grace / 2 : 3600);
	int64_t next_purge = now + 5000, next_beat = now;
	bool behind = false;

	bootstrap(node);
	while (!node_stopping(node)) {
		now = version_now_ms();
		if (now >= next_beat) {
			heartbeat(node);
			next_beat = now + HEARTBEAT_MS;
		}
		if (atomic_load(&node->left)) {
			node_sleep_ms(node, 1000);
			continue;
		}
		if (now >= next_regular) {
			if (regular_sync(node) && !behind) {
				behind = true;
				next_catchup = version_now_ms();
			}
			next_regular = version_now_ms() + jitter(1000LL * node->cfg.sync_interval);
		}
		if (behind && now >= next_catchup) {
			behind = catchup(node);
			next_catchup = version_now_ms() + jitter(1000LL * node->cfg.catchup_interval);
		}
		if (now >= next_ae) {
			anti_entropy_round(node);
			next_ae = version_now_ms() + jitter(1000LL * node->cfg.anti_entropy_interval);
		}
		if (now >= next_purge) {
			purge(node);
			next_purge = version_now_ms() + purge_every;
		}
		int64_t next = next_regular < next_ae ? next_regular : next_ae;
		if (behind && next_catchup < next)
			next = next_catchup;
		if (next_beat < next)
			next = next_beat;
		int64_t wait = next - version_now_ms();
		node_sleep_ms(node, wait < 10 ? 10 : wait > 1000 ? 1000 : wait);
	}
	return NULL;
}

int sync_start(struct kvs_node *node)
{
	return node_spawn(node, sync_thread, "kvs-sync");
}
