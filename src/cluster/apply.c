/*
 * apply.c - the one way in for data from peers (see apply.h).
 *
 * Outcomes of store_apply(STORE_REMOTE) and what each one counts:
 *   0              applied: items_applied[kind], and the replication lag
 *                  (origin timestamp to now) for pushes
 *   KVS_ESTALE     stale: ours is the same or newer, nothing to do
 *   KVS_ECONFLICT  conflicts_detected, and the path goes to the resolver
 *                  (conflict.h), which calls back apply_winner()
 *   KVS_EINVAL     a timestamp out of range: refused, this record alone
 *   anything else  a storage failure: the batch reports KVS_EIO
 * Every record handed to apply_items() counts in items_fetched[kind].
 *
 * Threads: any; no lock here (see apply.h).
 */
#include "apply.h"

#include <stdlib.h>

#include "conflict.h"
#include "kvs.h"
#include "log.h"
#include "version.h"

int apply_parse(struct kvs_node *node, const char *peer, const cJSON *arr, bool need_values,
		struct wire_item **items, size_t *n, struct apply_counts *counts,
		const char **why)
{
	size_t refused;
	int rc = wire_items_parse(arr, (size_t)node->cfg.max_value_bytes, need_values, items, n,
				  &refused, why);

	if (rc != 0)
		return rc;
	apply_refused(node, peer, refused, *why);
	if (counts)
		counts->refused += refused;
	return 0;
}

int apply_items(struct kvs_node *node, const struct wire_item *items, size_t n,
		enum sync_kind kind, struct apply_counts *counts)
{
	struct apply_counts local = { 0 };
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
			apply_refused(node, "-", 1, "timestamp out of range");
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

int apply_batch(struct kvs_node *node, const char *peer, const cJSON *arr,
		enum sync_kind kind, struct apply_counts *counts, const char **why)
{
	struct wire_item *items;
	size_t n;
	int rc = apply_parse(node, peer, arr, true, &items, &n, counts, why);

	if (rc != 0)
		return rc;
	rc = apply_items(node, items, n, kind, counts);
	free(items);
	return rc;
}

int apply_winner(struct kvs_node *node, const char *path, size_t len,
		 const struct kvs_record *rec, const struct kvs_version *loser)
{
	struct kvs_record r = *rec;
	int rc = store_apply(node->store, path, len, &r, STORE_RESOLVE, loser, NULL);

	if (rc == 0) {
		atomic_fetch_add(&node->metrics.conflicts_resolved, 1);
		atomic_fetch_add(&node->metrics.items_applied[SYNC_CONFLICT], 1);
	}
	return rc;
}

void apply_refused(struct kvs_node *node, const char *peer, size_t n, const char *why)
{
	if (!n)
		return;
	atomic_fetch_add(&node->metrics.records_refused, n);
	log_warn_limited("records_refused", "peer=\"%s\" count=%zu reason=\"%s\"", LOG_ESC(peer),
			 n, why ? why : "malformed");
}
