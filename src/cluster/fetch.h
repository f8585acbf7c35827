/*
 * fetch.h - pulling records from one peer: pages of its indexes, the
 * comparison that picks what to fetch, and the fetch itself.
 *
 * Peer endpoints used (served by api_peer.c):
 *   GET  /members/recent?...  /members/since?...  /members/bucket?b=N
 *        pages of records: "pairs" (versions only) or with values
 *   POST /members/fetch  {"keys": [...]}  -> {"items": [...], "more": [...]}
 *        full records of the keys the peer has ("more": keys it deferred
 *        because the reply grew too large; ask again)
 *
 * Every record that arrives is validated through apply_parse() and, when
 * stored, applied through apply_items() (apply.h).  Used by sync.c,
 * anti_entropy.c and the conflict resolver (conflict.c).
 *
 * Threads: any thread; each call makes blocking peer requests (peer.h).
 */
#ifndef KVS_FETCH_H
#define KVS_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "apply.h"
#include "node.h"
#include "wire.h"

#define FETCH_CHUNK 200 /* keys per fetch request */

/* A growable list of keys to fetch; keys are owned copies. */
struct fetch_list {
	char **keys;
	size_t n, alloc;
};

/* Adds a copy of key[0..len) (dropped silently when out of memory: a
 * later round meets it again). */
void fetch_list_add(struct fetch_list *l, const char *key, size_t len);

/* Frees the keys and empties the list. */
void fetch_list_release(struct fetch_list *l);

/*
 * Compares a page of the peer's pairs with this node's versions: keys the
 * peer holds newer go into want; conflicts (same timestamp, other UUID) are
 * counted and submitted to the resolver.  Returns how many items differed
 * in any way.
 */
size_t fetch_triage(struct kvs_node *node, const struct wire_item *items, size_t n,
		    struct fetch_list *want);

/*
 * GETs one page of records from the peer at address (path with its query)
 * and validates its "items" (values: they must carry values).  Returns 0
 * with *root (caller frees with cJSON_Delete; the items' strings live in
 * it) and *items (caller frees) / *n set; or KVS_EPEER (no answer, or a
 * malformed page, logged as sync_bad_reply), nothing to free.
 */
int fetch_page(struct kvs_node *node, const char *address, const char *path, bool values,
	       cJSON **root, struct wire_item **items, size_t *n);

/* A peer's answer to POST /members/fetch. */
struct fetch_reply {
	cJSON *root;              /* the reply; owns the strings below */
	struct wire_item *items;  /* its valid records, values included (malloc'd) */
	size_t n;
	const cJSON *more;        /* keys the peer deferred: array of strings, or NULL */
};

/*
 * Asks the peer at address for the full records of keys[0..n) (borrowed),
 * within timeout_ms (0: peer_timeout_ms).  Malformed records are refused
 * one by one (apply_parse()).  Returns 0 with *out filled (release with
 * fetch_reply_release()); KVS_EPEER if the peer did not answer;
 * KVS_EINVAL with the reason in *why when the reply was refused whole;
 * KVS_ENOMEM.  On failure *out holds nothing (releasing it is harmless).
 */
int fetch_records(struct kvs_node *node, const char *address, const char *const *keys,
		  size_t n, long timeout_ms, struct fetch_reply *out, const char **why);

/* Frees a reply and zeroes it. */
void fetch_reply_release(struct fetch_reply *r);

/*
 * Fetches the full records of keys[0..n) from the peer at address, in
 * chunks of FETCH_CHUNK keys with fetch_delay_ms between them, following
 * each reply's "more", and applies them (apply_items(), kind for metrics,
 * counted into *counts, which may be NULL).  Stops early when the node
 * stops.  Returns 0, or KVS_EPEER / KVS_EIO / KVS_ENOMEM from the first
 * chunk that failed.
 */
int fetch_apply(struct kvs_node *node, const char *address, const char *const *keys, size_t n,
		enum sync_kind kind, struct apply_counts *counts);

#endif
