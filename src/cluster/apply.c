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
 * Consecutive records with one "txn" id (a transaction from its origin)
 * are applied in one store_apply_batch(STORE_REMOTE), the same outcomes
 * counted per record, so a reader here never sees half of a transaction;
 * other records go in batches of up to APPLY_CHUNK on distinct keys.
 *
 * Threads: any; no lock here (see apply.h).
 */
#include "apply.h"

#include <stdlib.h>
#include <string.h>

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

/* Counts the outcome r of applying item it (rec: as applied); returns
 * KVS_EIO for a storage failure, else 0. */
static int outcome(struct kvs_node *node, const struct wire_item *it, const struct kvs_record *rec,
		   int r, enum sync_kind kind, int64_t now, struct apply_counts *local)
{
	switch (r) {
	case 0:
		local->applied++;
		atomic_fetch_add(&node->metrics.items_applied[kind], 1);
		if (kind == SYNC_PUSH)
			metrics_repl_lag(&node->metrics, now - rec->v.ts);
		return 0;
	case KVS_ESTALE:
		local->stale++;
		return 0;
	case KVS_ECONFLICT:
		local->conflicts++;
		atomic_fetch_add(&node->metrics.conflicts_detected, 1);
		conflict_submit(node, it->key, it->klen);
		return 0;
	case KVS_EAHEAD: /* stamped too far ahead of our clock: a later sync */
		local->refused++;
		atomic_fetch_add(&node->metrics.clock_refused, 1);
		log_warn_limited("clock_refused", "key=\"%s\" timestamp=%lld ahead_ms=%lld "
				 "note=\"applied by a later sync once clocks agree\"",
				 LOG_ESCN(it->key, it->klen), (long long)rec->v.ts,
				 (long long)(rec->v.ts - now));
		return 0;
	case KVS_EINVAL: /* a timestamp out of range: this record alone */
		local->refused++;
		apply_refused(node, "-", 1, "timestamp out of range");
		return 0;
	default:
		local->failed++;
		return KVS_EIO;
	}
}

#define APPLY_CHUNK 64 /* records of no transaction applied in one batch, at most */

/*
 * The run of items from i applied as one batch: a transaction's records
 * (one txn id), or up to APPLY_CHUNK records of no transaction on distinct
 * keys (one WriteBatch instead of one each: fewer WAL writes and write
 * group hand-offs; each record still decided alone).
 */
static size_t run_at(const struct wire_item *items, size_t n, size_t i)
{
	size_t j = i + 1;

	if (items[i].txn) {
		while (j < n && items[j].txn == items[i].txn)
			j++;
		return j - i;
	}
	for (; j < n && !items[j].txn && j - i < APPLY_CHUNK; j++)
		for (size_t k = i; k < j; k++)
			if (items[k].klen == items[j].klen &&
			    memcmp(items[k].key, items[j].key, items[j].klen) == 0)
				return j - i; /* a key twice: the second starts the next run */
	return j - i;
}

/*
 * Applies a transaction's records in one batch, so that no reader here
 * sees part of it.  Returns KVS_EINVAL, with nothing applied, for a run the
 * batch refuses (too long, a key twice: not from a kvs node), which the
 * caller then applies record by record.
 */
static int apply_txn(struct kvs_node *node, const struct wire_item *items, size_t run,
		     enum sync_kind kind, int64_t now, struct apply_counts *local)
{
	struct store_op *ops;
	int rc = 0, r;

	if (run > STORE_BATCH_MAX || !(ops = calloc(run, sizeof(*ops))))
		return KVS_EINVAL;
	for (size_t k = 0; k < run; k++) {
		ops[k].path = items[k].key;
		ops[k].len = items[k].klen;
		ops[k].rec = items[k].rec;
	}
	r = store_apply_batch(node->store, ops, run, STORE_REMOTE);
	if (r == KVS_EINVAL) {
		free(ops);
		return KVS_EINVAL;
	}
	for (size_t k = 0; k < run; k++)
		if (outcome(node, &items[k], &ops[k].rec, r != 0 ? r : ops[k].rc, kind, now,
			    local) != 0)
			rc = KVS_EIO;
	free(ops);
	return rc;
}

int apply_items(struct kvs_node *node, const struct wire_item *items, size_t n,
		enum sync_kind kind, struct apply_counts *counts)
{
	struct apply_counts local = { 0 };
	int64_t now = version_now_ms();
	int rc = 0;

	atomic_fetch_add(&node->metrics.items_fetched[kind], n);
	for (size_t i = 0; i < n;) {
		size_t run = run_at(items, n, i);
		int r = run > 1 ? apply_txn(node, items + i, run, kind, now, &local) : KVS_EINVAL;

		if (r != KVS_EINVAL) { /* the run went as one batch */
			rc = r ? r : rc;
			i += run;
			continue;
		}
		for (size_t end = i + run; i < end; i++) {
			struct kvs_record rec = items[i].rec;

			r = store_apply(node->store, items[i].key, items[i].klen, &rec, STORE_REMOTE,
					NULL, NULL);
			if (outcome(node, &items[i], &rec, r, kind, now, &local) != 0)
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
