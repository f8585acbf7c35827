/*
 * fetch.c - pulling records from one peer (see fetch.h).
 *
 * A sync round lists versions first ("pairs", cheap), compares them with
 * ours (fetch_triage) and only then fetches the values it lacks
 * (fetch_apply), so traffic grows with the difference, not the store.
 * A fetch reply stops early past the peer's page size; the keys it could
 * not fit come back in "more" and are asked for again.
 *
 * Threads: any; no shared state here (each thread has its own curl
 * handle in peer.c).
 */
#include "fetch.h"

#include <stdlib.h>
#include <string.h>

#include "conflict.h"
#include "kvs.h"
#include "log.h"
#include "peer.h"
#include "version.h"

#define PEER_WAIT_MS 10000 /* timeout of a page or fetch request of a sync round */

/* ----------------------------------------------------------------- key list */

void fetch_list_add(struct fetch_list *l, const char *key, size_t len)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 64;
		char **p = realloc(l->keys, na * sizeof(*p));
		if (!p)
			return;
		l->keys = p;
		l->alloc = na;
	}
	if ((l->keys[l->n] = strndup(key, len)))
		l->n++;
}

void fetch_list_release(struct fetch_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->keys[i]);
	free(l->keys);
	memset(l, 0, sizeof(*l));
}

/* --------------------------------------------------------------- comparison */

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

size_t fetch_triage(struct kvs_node *node, const struct wire_item *items, size_t n,
		    struct fetch_list *want)
{
	size_t differ = 0;

	for (size_t i = 0; i < n; i++) {
		switch (compare_local(node, &items[i])) {
		case CMP_SAME:
		case CMP_LOCAL_NEWER:
			break;
		case CMP_PEER_NEWER:
			differ++;
			fetch_list_add(want, items[i].key, items[i].klen);
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

/* -------------------------------------------------------------------- pages */

int fetch_page(struct kvs_node *node, const char *address, const char *path, bool values,
	       cJSON **root, struct wire_item **items, size_t *n)
{
	const char *why;
	long status;
	int rc = peer_json(node, address, "GET", path, NULL, PEER_WAIT_MS, root, &status);

	*items = NULL;
	*n = 0;
	if (rc != 0)
		return rc;
	if (apply_parse(node, address, cJSON_GetObjectItemCaseSensitive(*root, "items"), values,
			items, n, NULL, &why) != 0) {
		log_warn_limited("sync_bad_reply", "peer=%s path=\"%.80s\" reason=\"%s\"", address,
				 path, why);
		cJSON_Delete(*root);
		*root = NULL;
		return KVS_EPEER;
	}
	return 0;
}

/* -------------------------------------------------------------------- fetch */

int fetch_records(struct kvs_node *node, const char *address, const char *const *keys,
		  size_t n, long timeout_ms, struct fetch_reply *out, const char **why)
{
	cJSON *body = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	long status;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!body || !arr) {
		cJSON_Delete(body);
		cJSON_Delete(arr);
		return KVS_ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(keys[i]));
	cJSON_AddItemToObject(body, "keys", arr);
	rc = peer_json(node, address, "POST", "/members/fetch", body, timeout_ms, &out->root,
		       &status);
	cJSON_Delete(body);
	if (rc != 0) {
		fetch_reply_release(out);
		return rc;
	}
	if (apply_parse(node, address, cJSON_GetObjectItemCaseSensitive(out->root, "items"), true,
			&out->items, &out->n, NULL, why) != 0) {
		fetch_reply_release(out);
		return KVS_EINVAL;
	}
	out->more = cJSON_GetObjectItemCaseSensitive(out->root, "more");
	return 0;
}

void fetch_reply_release(struct fetch_reply *r)
{
	free(r->items);
	cJSON_Delete(r->root);
	memset(r, 0, sizeof(*r));
}

/* Fetches and applies one chunk; keys the peer deferred ("more") are
 * fetched again, at most one fewer each time, so the recursion ends. */
static int fetch_chunk(struct kvs_node *node, const char *address, const char *const *keys,
		       size_t n, enum sync_kind kind, struct apply_counts *counts)
{
	struct fetch_reply reply;
	const char *why;
	int rc = fetch_records(node, address, keys, n, PEER_WAIT_MS, &reply, &why);

	if (rc == KVS_EINVAL) {
		log_warn_limited("sync_bad_reply", "peer=%s reason=\"%s\"", address, why);
		return KVS_EPEER;
	}
	if (rc != 0)
		return rc;
	rc = apply_items(node, reply.items, reply.n, kind, counts);

	const cJSON *k;
	size_t nmore = 0;
	const char *rest[FETCH_CHUNK];
	cJSON_ArrayForEach(k, reply.more) {
		if (cJSON_IsString(k) && nmore < FETCH_CHUNK && nmore < n - 1)
			rest[nmore++] = k->valuestring;
	}
	if (rc == 0 && nmore)
		rc = fetch_chunk(node, address, rest, nmore, kind, counts);
	fetch_reply_release(&reply);
	return rc;
}

int fetch_apply(struct kvs_node *node, const char *address, const char *const *keys, size_t n,
		enum sync_kind kind, struct apply_counts *counts)
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
