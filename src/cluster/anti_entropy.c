/*
 * anti_entropy.c - one anti-entropy round (see anti_entropy.h).
 *
 * For each differing bucket: the peer's pairs are triaged against ours
 * (fetch_triage(): newer there -> fetched at the end of the round,
 * conflicts -> resolver), then our own records of the bucket are walked
 * (store_scan_bucket()) and those the peer lacks or holds older are added
 * to a repair push, sent whenever it passes AE_PUSH_BYTES and at the end.
 * Records older than stale_before_ts are never pushed (sync_may_share()).
 *
 * Threads: the sync thread only; no locks of its own.
 */
#include "anti_entropy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "fetch.h"
#include "hex.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "peer.h"
#include "push.h"
#include "sync.h"
#include "version.h"

#define PEER_WAIT_MS 10000 /* timeout of the digests and push requests */

/* Our records the peer lacks or has older, batched across buckets. */
struct ae_push {
	struct kvs_node *node;
	const struct member *peer;
	const struct wire_item *theirs;  /* the peer's pairs of the current bucket */
	size_t ntheirs;
	size_t cap;                      /* cap on a push message */
	struct push_msg msg;             /* the batch being built */
	bool started;                    /* msg holds a begun message */
	size_t sent;                     /* records sent this round */
};

/* Parses the peer's digest string; false if malformed. */
static bool parse_digests(const cJSON *root, uint64_t *out)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "digests");

	if (!cJSON_IsString(d) || strlen(d->valuestring) != STORE_BUCKETS * 16)
		return false;
	for (int i = 0; i < STORE_BUCKETS; i++) {
		uint64_t v = 0;
		for (int j = 0; j < 16; j++) {
			int h = hex_value((unsigned char)d->valuestring[i * 16 + j]);
			if (h < 0)
				return false;
			v = (v << 4) | (uint64_t)h;
		}
		out[i] = v;
	}
	return true;
}

/* Sends the batch as one push marked "anti_entropy" (the receiver counts
 * it as a repair, not as replication lag), then empties it. */
static void ae_flush(struct ae_push *a)
{
	struct buf reply;
	long status;

	if (!a->started)
		return;
	if (a->msg.n && push_end(&a->msg) == 0) {
		buf_init(&reply, 1 << 16);
		if (peer_request(a->node, a->peer->address, "POST", "/members/push",
				 a->msg.body.data, a->msg.body.len, PEER_WAIT_MS, &reply,
				 &status) == 0)
			a->sent += a->msg.n;
		buf_release(&reply);
	}
	push_release(&a->msg);
	a->started = false;
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
	if (!a->started) {
		struct member self;

		node_self_member(a->node, &self);
		push_begin(&a->msg, a->cap, &self, SYNC_ANTI_ENTROPY);
		a->started = true;
	}
	push_add(&a->msg, key, klen, r);
	if (a->msg.body.len > AE_PUSH_BYTES)
		ae_flush(a);
	return 0;
}

void anti_entropy_round(struct kvs_node *node)
{
	uint64_t *ours = malloc(STORE_BUCKETS * sizeof(uint64_t));
	uint64_t *theirs = malloc(STORE_BUCKETS * sizeof(uint64_t));
	struct fetch_list want = { 0 };
	struct apply_counts cnt = { 0 };
	struct member peer;
	struct ae_push push = {
		.node = node, .peer = &peer,
		.cap = AE_PUSH_BYTES + 8 * (size_t)node->cfg.max_value_bytes + 65536 + 4096,
	};
	cJSON *root = NULL;
	long status;
	int differ = 0;

	if (!ours || !theirs || members_random(node->members, MEMBER_MASK_LIVE, &peer, 1) != 1)
		goto out;
	atomic_fetch_add(&node->metrics.sync_rounds[SYNC_ANTI_ENTROPY], 1);
	if (peer_json(node, peer.address, "GET", "/members/digests", NULL, PEER_WAIT_MS, &root,
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
		if (fetch_page(node, peer.address, path, false, &page, &items, &n) != 0)
			break;
		fetch_triage(node, items, n, &want);
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
		fetch_apply(node, peer.address, (const char *const *)want.keys, want.n,
			    SYNC_ANTI_ENTROPY, &cnt);
	if (differ)
		log_info("sync_fetched", "kind=anti_entropy peer=%s buckets=%d wanted=%zu applied=%zu "
			 "conflicts=%zu pushed=%zu", peer.id, differ, want.n, cnt.applied,
			 cnt.conflicts, push.sent);
out:
	if (push.started)
		push_release(&push.msg);
	fetch_list_release(&want);
	cJSON_Delete(root);
	free(ours);
	free(theirs);
}
