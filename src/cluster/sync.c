/*
 * sync.c - pulling data from peers (see sync.h).
 *
 * The sync thread runs, in this order:
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
 *      anti-entropy (anti_entropy_interval): compare the 4096 bucket
 *        digests with a random peer; list only the differing buckets on
 *        both sides; fetch what is newer there and push what is newer
 *        here, so traffic grows with the difference, not the store;
 *      tombstone purge (5 s after start, then every half grace, at most
 *        hourly): drop delete markers older than tombstone_grace;
 *      heartbeat (every minute): record "last_alive" in meta, which tells
 *        a restarted node how long it was away.
 *
 * A same-timestamp, other-UUID version met anywhere goes to the conflict
 * resolver (conflict.h) rather than being fetched.
 */
#include "sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conflict.h"
#include "gossip.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "notify.h"
#include "path.h"
#include "peer.h"
#include "version.h"

#define PAGE_ITEMS 500          /* items per page of a time-index walk */
#define FETCH_CHUNK 200         /* keys per fetch request */
#define CATCHUP_MAX_PAGES 2000  /* bound on one catch-up walk */
#define AE_MAX_BUCKETS 256      /* differing buckets repaired per round */
#define HEARTBEAT_MS 10000
#define RESTART_MARGIN_MS (10 * 60 * 1000) /* clock slack when resuming from last_alive */

/* ------------------------------------------------------------------ apply */

bool sync_may_share(struct kvs_node *node, const struct kvs_record *r)
{
	return node->stale_before_ts == 0 || r->v.ts >= node->stale_before_ts;
}

int sync_apply(struct kvs_node *node, const struct wire_item *items, size_t n,
	       enum sync_kind kind, struct sync_counts *counts)
{
	struct sync_counts local = { 0 };
	int64_t now = version_now_ms();
	int rc = 0;

	atomic_fetch_add(&node->metrics.items_fetched[kind], n);
	for (size_t i = 0; i < n; i++) {
		struct kvs_record rec = items[i].rec;
		int r = store_apply(node->store, items[i].key, items[i].klen, &rec, STORE_REMOTE,
				    NULL, NULL);

		switch (r) {
		case 0:
			local.applied++;
			atomic_fetch_add(&node->metrics.items_applied[kind], 1);
			if (kind == SYNC_PUSH)
				metrics_repl_lag(&node->metrics, now - rec.v.ts);
			break;
		case KVS_ESTALE:
			local.stale++;
			break;
		case KVS_ECONFLICT:
			local.conflicts++;
			atomic_fetch_add(&node->metrics.conflicts_detected, 1);
			conflict_submit(node, items[i].key, items[i].klen);
			break;
		case KVS_EINVAL: /* a timestamp out of range: this record alone */
			local.refused++;
			node_records_refused(node, "-", 1, "timestamp out of range");
			break;
		default:
			local.failed++;
			rc = KVS_EIO;
		}
	}
	if (counts) {
		counts->applied += local.applied;
		counts->stale += local.stale;
		counts->conflicts += local.conflicts;
		counts->failed += local.failed;
		counts->refused += local.refused;
	}
	return rc;
}

/* ------------------------------------------------------------------ fetch */

/* Fetches one chunk; keys the peer deferred ("more") are fetched again. */
static int fetch_chunk(struct kvs_node *node, const char *address, const char *const *keys,
		       size_t n, enum sync_kind kind, struct sync_counts *counts)
{
	cJSON *body = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *reply = NULL;
	struct wire_item *items;
	const char *why;
	size_t got, refused;
	long status;
	int rc;

	if (!body || !arr) {
		cJSON_Delete(body);
		cJSON_Delete(arr);
		return KVS_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(keys[i]));
	cJSON_AddItemToObject(body, "keys", arr);
	rc = peer_json(node, address, "POST", "/members/fetch", body, 10000, &reply, &status);
	cJSON_Delete(body);
	if (rc != 0)
		goto out;
	if (wire_items_parse(cJSON_GetObjectItemCaseSensitive(reply, "items"),
			     (size_t)node->cfg.max_value_bytes, true, &items, &got, &refused,
			     &why) != 0) {
		log_warn_limited("sync_bad_reply", "peer=%s reason=\"%s\"", address, why);
		rc = KVS_EPEER;
		goto out;
	}
	node_records_refused(node, address, refused, why);
	rc = sync_apply(node, items, got, kind, counts);
	free(items);

	const cJSON *more = cJSON_GetObjectItemCaseSensitive(reply, "more"), *k;
	size_t nmore = 0;
	const char *rest[FETCH_CHUNK];
	cJSON_ArrayForEach(k, more) {
		if (cJSON_IsString(k) && nmore < FETCH_CHUNK && nmore < n - 1)
			rest[nmore++] = k->valuestring;
	}
	if (rc == 0 && nmore)
		rc = fetch_chunk(node, address, rest, nmore, kind, counts);
out:
	cJSON_Delete(reply);
	return rc;
}

int sync_fetch_apply(struct kvs_node *node, const char *address, const char *const *keys,
		     size_t n, enum sync_kind kind, struct sync_counts *counts)
{
	for (size_t i = 0; i < n && !node_stopping(node); i += FETCH_CHUNK) {
		int rc = fetch_chunk(node, address, keys + i, n - i < FETCH_CHUNK ? n - i : FETCH_CHUNK,
				     kind, counts);
		if (rc != 0)
			return rc;
		if (i + FETCH_CHUNK < n)
			node_sleep_ms(node, node->cfg.fetch_delay_ms);
	}
	return 0;
}

/* ------------------------------------------------------------ comparisons */

/* A growable list of keys to fetch (owned copies). */
struct keylist {
	char **keys;
	size_t n, alloc;
};

static void keylist_add(struct keylist *l, const char *k, size_t len)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 64;
		char **p = realloc(l->keys, na * sizeof(*p));
		if (!p)
			return;
		l->keys = p;
		l->alloc = na;
	}
	if ((l->keys[l->n] = strndup(k, len)))
		l->n++;
}

static void keylist_free(struct keylist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	memset(l, 0, sizeof(*l));
}

enum cmp_result { CMP_SAME, CMP_PEER_NEWER, CMP_LOCAL_NEWER, CMP_CONFLICT };

/* Compares a peer's version of key with ours. */
static enum cmp_result compare_local(struct kvs_node *node, const struct wire_item *it)
{
	struct store_value v;
	int rc = store_get(node->store, it->key, it->klen, &v);
	enum cmp_result res;

	if (rc == KVS_ENOTFOUND)
		return CMP_PEER_NEWER;
	if (rc != 0)
		return CMP_SAME; /* storage trouble: try again next round */
	if (version_equal(&v.rec.v, &it->rec.v))
		res = CMP_SAME;
	else if (version_conflicts(&v.rec.v, &it->rec.v))
		res = CMP_CONFLICT;
	else
		res = version_cmp_ts(&it->rec.v, &v.rec.v) > 0 ? CMP_PEER_NEWER : CMP_LOCAL_NEWER;
	store_value_release(&v);
	return res;
}

/*
 * Sorts a page of peer pairs into `want` (fetch) and conflicts (submitted).
 * Returns how many items differed in any way.
 */
static size_t triage(struct kvs_node *node, const struct wire_item *items, size_t n,
		     struct keylist *want)
{
	size_t differ = 0;

	for (size_t i = 0; i < n; i++) {
		switch (compare_local(node, &items[i])) {
		case CMP_SAME:
		case CMP_LOCAL_NEWER:
			break;
		case CMP_PEER_NEWER:
			differ++;
			keylist_add(want, items[i].key, items[i].klen);
			break;
		case CMP_CONFLICT:
			differ++;
			atomic_fetch_add(&node->metrics.conflicts_detected, 1);
			conflict_submit(node, items[i].key, items[i].klen);
			break;
		}
	}
	return differ;
}

/* GETs a page of pairs from path; *root keeps the strings items borrow. */
static int get_page(struct kvs_node *node, const char *address, const char *path, bool values,
		    cJSON **root, struct wire_item **items, size_t *n)
{
	const char *why;
	size_t refused;
	long status;
	int rc = peer_json(node, address, "GET", path, NULL, 10000, root, &status);

	*items = NULL;
	*n = 0;
	if (rc != 0)
		return rc;
	if (wire_items_parse(cJSON_GetObjectItemCaseSensitive(*root, "items"),
			     (size_t)node->cfg.max_value_bytes, values, items, n, &refused,
			     &why) != 0) {
		log_warn_limited("sync_bad_reply", "peer=%s path=\"%.80s\" reason=\"%s\"", address,
				 path, why);
		cJSON_Delete(*root);
		*root = NULL;
		return KVS_EPEER;
	}
	node_records_refused(node, address, refused, why);
	return 0;
}

/* Picks one random live peer; false if there is none. */
static bool random_peer(struct kvs_node *node, struct member *out)
{
	return members_random(node->members, MEMBER_MASK_LIVE, out, 1) == 1;
}

/* ----------------------------------------------------------- regular sync */

/* Returns true if the peer had something newer (this node is behind). */
static bool regular_sync(struct kvs_node *node)
{
	struct member peer;
	struct keylist want = { 0 };
	struct wire_item *items;
	struct sync_counts cnt = { 0 };
	cJSON *root;
	size_t n;
	char path[128];

	if (!random_peer(node, &peer))
		return false;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_REGULAR], 1);
	snprintf(path, sizeof(path), "/members/recent?limit=%d", node->cfg.sync_items);
	if (get_page(node, peer.address, path, false, &root, &items, &n) != 0)
		return false;
	triage(node, items, n, &want);
	free(items);
	cJSON_Delete(root);
	if (want.n) {
		sync_fetch_apply(node, peer.address, (const char *const *)want.keys, want.n,
				 SYNC_REGULAR, &cnt);
		log_info("sync_fetched", "kind=regular peer=%s wanted=%zu applied=%zu conflicts=%zu",
			 peer.id, want.n, cnt.applied, cnt.conflicts);
	}
	bool behind = want.n > 0;
	keylist_free(&want);
	return behind;
}

/* ---------------------------------------------------------------- catch-up */

/* Pages back through a peer's history until a page is wholly in common.
 * Returns true if still behind (the walk was cut short). */
static bool catchup(struct kvs_node *node)
{
	struct member peer;
	struct keylist want = { 0 };
	struct sync_counts cnt = { 0 };
	int64_t before_ts = 0;
	char before_key[PATH_KEY_MAX + 1] = "";
	bool complete = false;
	int common_pages = 0;

	if (!random_peer(node, &peer))
		return true;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_CATCHUP], 1);
	for (int page = 0; page < CATCHUP_MAX_PAGES && !node_stopping(node); page++) {
		char path[PATH_KEY_MAX * 3 + 128];
		char *ek = peer_escape(before_key);
		struct wire_item *items;
		cJSON *root;
		size_t n;

		snprintf(path, sizeof(path), "/members/recent?limit=%d&before_ts=%lld&before_key=%s",
			 PAGE_ITEMS, (long long)before_ts, ek ? ek : "");
		free(ek);
		if (get_page(node, peer.address, path, false, &root, &items, &n) != 0)
			break;
		size_t differ = triage(node, items, n, &want);
		if (n) {
			before_ts = items[n - 1].rec.v.ts;
			snprintf(before_key, sizeof(before_key), "%s", items[n - 1].key);
		}
		free(items);
		cJSON_Delete(root);
		/* two whole pages in common: the last point in common is behind us */
		common_pages = differ ? 0 : common_pages + 1;
		if (common_pages >= 2 || n < PAGE_ITEMS) {
			complete = true;
			break;
		}
		node_sleep_ms(node, node->cfg.throttle_delay_ms);
	}
	if (want.n) {
		sync_fetch_apply(node, peer.address, (const char *const *)want.keys, want.n,
				 SYNC_CATCHUP, &cnt);
		log_info("sync_fetched", "kind=catchup peer=%s wanted=%zu applied=%zu", peer.id,
			 want.n, cnt.applied);
	}
	keylist_free(&want);
	return !complete;
}

/* --------------------------------------------------------------- bootstrap */

/* Pages forward through a peer's history with values; true on success. */
static bool bootstrap_from(struct kvs_node *node, const struct member *peer)
{
	int64_t ts = version_now_ms() - (int64_t)node->cfg.bootstrap_max_age_hours * 3600 * 1000;

	/* a node coming back needs only what it missed since it was last up */
	if (node->last_alive_ts && node->last_alive_ts - RESTART_MARGIN_MS > ts)
		ts = node->last_alive_ts - RESTART_MARGIN_MS;
	char key[PATH_KEY_MAX + 1] = "";
	struct sync_counts cnt = { 0 };
	size_t pages = 0;

	if (ts < 0)
		ts = 0;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_BOOTSTRAP], 1);
	while (!node_stopping(node)) {
		char path[PATH_KEY_MAX * 3 + 128];
		char *ek = peer_escape(key);
		struct wire_item *items;
		cJSON *root;
		size_t n;

		snprintf(path, sizeof(path), "/members/since?ts=%lld&key=%s&limit=%d&values=true",
			 (long long)ts, ek ? ek : "", PAGE_ITEMS);
		free(ek);
		if (get_page(node, peer->address, path, true, &root, &items, &n) != 0)
			return false;
		sync_apply(node, items, n, SYNC_BOOTSTRAP, &cnt);
		bool more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "more"));
		if (n) {
			ts = items[n - 1].rec.v.ts;
			snprintf(key, sizeof(key), "%s", items[n - 1].key);
		}
		free(items);
		cJSON_Delete(root);
		pages++;
		if (!more || n == 0)
			break;
		node_sleep_ms(node, node->cfg.throttle_delay_ms);
	}
	log_info("sync_fetched", "kind=bootstrap peer=%s pages=%zu applied=%zu stale=%zu "
		 "conflicts=%zu", peer->id, pages, cnt.applied, cnt.stale, cnt.conflicts);
	return !node_stopping(node);
}

static void set_mode(struct kvs_node *node, int mode)
{
	int old = atomic_exchange(&node->mode, mode);

	if (old != mode) {
		log_info("mode_change", "from=%s to=%s", node_mode_name(old), node_mode_name(mode));
		notify_status(node_mode_name(mode));
	}
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
		set_mode(node, normal);
		while (!node_stopping(node) && atomic_load(&node->join_state) != JOIN_DONE)
			node_sleep_ms(node, 200);
	}
	for (int attempt = 0; attempt < 5 && !node_stopping(node); attempt++) {
		if (random_peer(node, &peer) && bootstrap_from(node, &peer))
			break;
		node_sleep_ms(node, 1000);
	}
	set_mode(node, normal);
}

/* ------------------------------------------------------------ anti-entropy */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Parses the peer's digest string; false if malformed. */
static bool parse_digests(const cJSON *root, uint64_t *out)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "digests");

	if (!cJSON_IsString(d) || strlen(d->valuestring) != STORE_BUCKETS * 16)
		return false;
	for (int i = 0; i < STORE_BUCKETS; i++) {
		uint64_t v = 0;
		for (int j = 0; j < 16; j++) {
			int h = hexval(d->valuestring[i * 16 + j]);
			if (h < 0)
				return false;
			v = (v << 4) | (uint64_t)h;
		}
		out[i] = v;
	}
	return true;
}

#define AE_PUSH_BYTES (4u << 20) /* an anti-entropy push batch is sent past this */

/* Our records the peer lacks or has older, batched across buckets. */
struct ae_push {
	struct kvs_node *node;
	const struct member *peer;
	const struct wire_item *theirs;  /* the peer's pairs of the current bucket */
	size_t ntheirs;
	struct buf items;                /* records of the batch being built */
	size_t n;                        /* records in it */
	size_t sent;                     /* records sent this round */
};

/* Sends the batch as one push, marked "anti_entropy" so that the receiver
 * counts it as such (and not as replication lag). */
static void ae_flush(struct ae_push *a)
{
	struct kvs_node *node = a->node;
	cJSON *self = gossip_self_json(node);
	char *self_text = self ? cJSON_PrintUnformatted(self) : NULL;
	struct buf body, reply;
	long status;

	cJSON_Delete(self);
	if (a->n && !buf_failed(&a->items)) {
		buf_init(&body, a->items.len + 4096);
		buf_adds(&body, "{\"from\":");
		buf_adds(&body, self_text ? self_text : "null");
		buf_adds(&body, ",\"kind\":\"anti_entropy\",\"items\":[");
		buf_add(&body, a->items.data, a->items.len);
		buf_adds(&body, "]}");
		buf_init(&reply, 1 << 16);
		if (!buf_failed(&body) &&
		    peer_request(node, a->peer->address, "POST", "/members/push", body.data, body.len,
				 10000, &reply, &status) == 0)
			a->sent += a->n;
		buf_release(&reply);
		buf_release(&body);
	}
	cJSON_free(self_text);
	buf_reset(&a->items);
	a->n = 0;
}

static int ae_local_item(void *arg, const char *key, size_t klen, const struct kvs_record *r)
{
	struct ae_push *a = arg;

	if (!sync_may_share(a->node, r))
		return 0;
	for (size_t i = 0; i < a->ntheirs; i++) {
		const struct wire_item *t = &a->theirs[i];
		if (t->klen == klen && memcmp(t->key, key, klen) == 0) {
			if (version_cmp_ts(&r->v, &t->rec.v) <= 0)
				return 0; /* theirs is as new or newer (or a conflict) */
			break;
		}
	}
	if (a->n++)
		buf_add(&a->items, ",", 1);
	wire_record_add(&a->items, key, klen, r, true);
	if (a->items.len > AE_PUSH_BYTES)
		ae_flush(a);
	return 0;
}

static void anti_entropy(struct kvs_node *node)
{
	uint64_t *ours = malloc(STORE_BUCKETS * sizeof(uint64_t));
	uint64_t *theirs = malloc(STORE_BUCKETS * sizeof(uint64_t));
	struct keylist want = { 0 };
	struct sync_counts cnt = { 0 };
	struct member peer;
	struct ae_push push = { .node = node, .peer = &peer };
	cJSON *root = NULL;
	long status;
	int differ = 0;

	buf_init(&push.items, AE_PUSH_BYTES + 8 * (size_t)node->cfg.max_value_bytes + 65536);
	if (!ours || !theirs || !random_peer(node, &peer))
		goto out;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_ANTI_ENTROPY], 1);
	if (peer_json(node, peer.address, "GET", "/members/digests", NULL, 10000, &root,
		      &status) != 0 || !parse_digests(root, theirs))
		goto out;
	store_digests(node->store, ours);

	/* start at a random bucket so a large difference is repaired evenly */
	int start = (int)(random() % STORE_BUCKETS);
	for (int k = 0; k < STORE_BUCKETS && differ < AE_MAX_BUCKETS && !node_stopping(node); k++) {
		int b = (start + k) % STORE_BUCKETS;
		char path[64];
		struct wire_item *items;
		cJSON *page;
		size_t n;

		if (ours[b] == theirs[b])
			continue;
		differ++;
		snprintf(path, sizeof(path), "/members/bucket?b=%d", b);
		if (get_page(node, peer.address, path, false, &page, &items, &n) != 0)
			break;
		triage(node, items, n, &want);
		push.theirs = items;
		push.ntheirs = n;
		store_scan_bucket(node->store, (unsigned)b, ae_local_item, &push);
		push.theirs = NULL;
		push.ntheirs = 0;
		free(items);
		cJSON_Delete(page);
	}
	ae_flush(&push);
	if (want.n)
		sync_fetch_apply(node, peer.address, (const char *const *)want.keys, want.n,
				 SYNC_ANTI_ENTROPY, &cnt);
	if (differ)
		log_info("sync_fetched", "kind=anti_entropy peer=%s buckets=%d wanted=%zu applied=%zu "
			 "conflicts=%zu pushed=%zu", peer.id, differ, want.n, cnt.applied,
			 cnt.conflicts, push.sent);
out:
	buf_release(&push.items);
	keylist_free(&want);
	cJSON_Delete(root);
	free(ours);
	free(theirs);
}

/* ------------------------------------------------------------------ thread */

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
			anti_entropy(node);
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
	return node_spawn(node, sync_thread);
}
