/*
 * wire.c - record <-> JSON for node-to-node messages (see wire.h).
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "json.h"
#include "kvs.h"
#include "path.h"

void wire_record_add(struct buf *b, const char *key, size_t klen, const struct kvs_record *r,
		     bool with_value)
{
	wire_record_add_txn(b, key, klen, r, with_value, 0);
}

void wire_record_add_txn(struct buf *b, const char *key, size_t klen,
			 const struct kvs_record *r, bool with_value, uint64_t txn)
{
	char uuid[VERSION_UUID_STR];

	version_uuid_str(&r->v, uuid);
	buf_adds(b, "{\"key\":");
	buf_json_str(b, key, klen);
	buf_printf(b, ",\"uuid\":\"%s\",\"timestamp\":%lld,\"tombstone\":%s", uuid,
		   (long long)r->v.ts, r->tombstone ? "true" : "false");
	if (r->origin_len) {
		buf_adds(b, ",\"origin\":");
		buf_json_str(b, r->origin, r->origin_len);
	}
	if (txn)
		buf_printf(b, ",\"txn\":%llu", (unsigned long long)txn);
	if (r->expires > 0 && !r->tombstone)
		buf_printf(b, ",\"expires\":%lld", (long long)r->expires);
	if (with_value && !r->tombstone) {
		buf_adds(b, ",\"value\":");
		buf_json_str(b, r->value, r->value_len);
	}
	buf_add(b, "}", 1);
}

bool wire_get_i64(const cJSON *o, const char *name, int64_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	/* below 10^15: cJSON prints 15 significant digits (see members.c) */
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= 1e15 ||
	    v->valuedouble != (double)(int64_t)v->valuedouble)
		return false;
	*out = (int64_t)v->valuedouble;
	return true;
}

static int item_parse(const cJSON *o, size_t max_value, bool need_values, struct wire_item *it,
		      const char **why)
{
	const cJSON *key = cJSON_GetObjectItemCaseSensitive(o, "key");
	const cJSON *uuid = cJSON_GetObjectItemCaseSensitive(o, "uuid");
	const cJSON *tomb = cJSON_GetObjectItemCaseSensitive(o, "tombstone");
	const cJSON *val = cJSON_GetObjectItemCaseSensitive(o, "value");
	const cJSON *origin = cJSON_GetObjectItemCaseSensitive(o, "origin");

	memset(it, 0, sizeof(*it));
	if (!cJSON_IsObject(o))
		return *why = "item is not an object", KVS_EINVAL;
	if (!cJSON_IsString(key) || !path_key_valid(key->valuestring, strlen(key->valuestring)))
		return *why = "bad key", KVS_EINVAL;
	if (!cJSON_IsString(uuid) || version_uuid_parse(&it->rec.v, uuid->valuestring) != 0)
		return *why = "bad uuid", KVS_EINVAL;
	if (version_is_nil(&it->rec.v))
		return *why = "nil uuid", KVS_EINVAL;
	if (!wire_get_i64(o, "timestamp", &it->rec.v.ts) || it->rec.v.ts == 0)
		return *why = "bad timestamp", KVS_EINVAL;
	if (!cJSON_IsBool(tomb))
		return *why = "bad tombstone flag", KVS_EINVAL;
	if (cJSON_GetObjectItemCaseSensitive(o, "expires")) {
		if (!wire_get_i64(o, "expires", &it->rec.expires) || it->rec.expires == 0 ||
		    cJSON_IsTrue(tomb))
			return *why = "bad expires", KVS_EINVAL;
	}
	if (cJSON_GetObjectItemCaseSensitive(o, "txn")) {
		int64_t txn;

		if (!wire_get_i64(o, "txn", &txn) || txn == 0)
			return *why = "bad txn", KVS_EINVAL;
		it->txn = (uint64_t)txn;
	}
	if (origin) { /* absent from nodes older than the watch issue */
		if (!cJSON_IsString(origin) || !config_node_id_valid(origin->valuestring))
			return *why = "bad origin", KVS_EINVAL;
		it->rec.origin = origin->valuestring;
		it->rec.origin_len = strlen(origin->valuestring);
	}
	it->key = key->valuestring;
	it->klen = strlen(key->valuestring);
	it->rec.tombstone = cJSON_IsTrue(tomb);
	if (it->rec.tombstone) {
		if (val)
			return *why = "tombstone with a value", KVS_EINVAL;
		it->has_value = true;
		return 0;
	}
	if (!val) {
		if (need_values)
			return *why = "missing value", KVS_EINVAL;
		return 0;
	}
	if (!cJSON_IsString(val))
		return *why = "value is not a string", KVS_EINVAL;
	size_t vlen = strlen(val->valuestring);
	if (vlen > max_value)
		return *why = "value larger than max_value_bytes", KVS_EINVAL;
	if (!json_valid(val->valuestring, vlen, NULL, NULL))
		return *why = "value is not valid JSON", KVS_EINVAL;
	it->rec.value = val->valuestring;
	it->rec.value_len = vlen;
	it->has_value = true;
	return 0;
}

int wire_items_parse(const cJSON *arr, size_t max_value, bool need_values,
		     struct wire_item **items, size_t *n, size_t *refused, const char **why)
{
	struct wire_item *list;
	const cJSON *o;
	size_t count = 0;

	*refused = 0;
	*why = NULL;
	if (!cJSON_IsArray(arr))
		return *why = "items is not an array", KVS_EINVAL;
	int size = cJSON_GetArraySize(arr);
	if (size > WIRE_MAX_ITEMS)
		return *why = "too many items", KVS_EINVAL;
	if (!(list = calloc((size_t)size + 1, sizeof(*list))))
		return *why = "out of memory", KVS_ENOMEM;
	cJSON_ArrayForEach(o, arr) {
		const char *reason;

		if (item_parse(o, max_value, need_values, &list[count], &reason) == 0) {
			count++;
		} else if ((*refused)++ == 0) {
			*why = reason; /* the first one names the problem */
		}
	}
	*items = list;
	*n = count;
	return 0;
}
