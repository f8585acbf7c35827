/*
 * wire.h - the JSON form of records exchanged between nodes.
 *
 * A record on the wire:
 *   {"key": "a/b", "uuid": "<uuid>", "timestamp": 1700000000000,
 *    "tombstone": false, "origin": "node1",
 *    "value": "<the stored JSON text, as a string>"}
 * "expires": ms since the epoch, present on a value with a TTL (SPEC
 * section 9); never on a tombstone.
 * "txn": a number, present on the records of one transaction in a push:
 * consecutive items with the same txn are applied in one batch.
 * "origin" (the node_id that wrote the version) is absent when unknown:
 * records written before origins were kept, or sent by an older node.
 * "value" is absent for tombstones and for version-only listings
 * ("pairs").  Sending the value as a JSON string keeps its bytes exact:
 * the receiver stores what the origin stored, byte for byte.
 *
 * Parsing is strict, one record at a time: wire_items_parse() leaves out
 * each malformed item (bad key, nil or bad UUID, timestamp, a value that
 * is not RFC 8259 JSON or over max_value_bytes) and counts it, so one bad
 * record never blocks the others of its batch or page.  Only a batch that
 * is not an array, or holds over WIRE_MAX_ITEMS items, is refused whole.
 * Pure functions: any thread.
 */
#ifndef KVS_WIRE_H
#define KVS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "record.h"

#define WIRE_MAX_ITEMS 10000 /* items in one batch or listing */

/* One parsed item; key and value borrowed from the cJSON tree. */
struct wire_item {
	const char *key;
	size_t klen;
	struct kvs_record rec;
	bool has_value;  /* the item carried a value (or is a tombstone) */
	uint64_t txn;    /* a transaction's records share one non-zero id */
};

/* Appends one record object to b; with_value false writes a pair. */
void wire_record_add(struct buf *b, const char *key, size_t klen, const struct kvs_record *r,
		     bool with_value);

/* The same, for a record of a transaction (txn != 0 adds "txn": txn). */
void wire_record_add_txn(struct buf *b, const char *key, size_t klen,
			 const struct kvs_record *r, bool with_value, uint64_t txn);

/*
 * Parses the array `arr` (e.g. a batch's "items") into a malloc'd array
 * of its valid items (*items, *n; caller frees; strings borrowed from
 * arr).  need_values: every live record must carry a value.  Malformed
 * items are left out: *refused counts them and *why names the first
 * (static; NULL when none).  Returns 0, or KVS_EINVAL (not an array, too
 * many items) / KVS_ENOMEM with a reason in *why and nothing allocated.
 */
int wire_items_parse(const cJSON *arr, size_t max_value, bool need_values,
		     struct wire_item **items, size_t *n, size_t *refused, const char **why);

/* Reads a non-negative integer member exactly (no fraction, < 10^15). */
bool wire_get_i64(const cJSON *o, const char *name, int64_t *out);

#endif
