/*
 * member.c - a member record's JSON form (see member.h).
 *
 * Pure functions, no locks: any thread.  member_to_json() is the one writer
 * of a member object; lists, gossip, pings and push messages all use it.
 */
#include "member.h"

#include <stdio.h>
#include <string.h>

#include "kvs.h"
#include "wire.h"

const char *member_status_name(enum member_status s)
{
	switch (s) {
	case MEMBER_ALIVE:
	case MEMBER_SUSPECT:
		return "alive";
	case MEMBER_UNHEALTHY:
		return "unhealthy";
	case MEMBER_LEFT:
		return "left";
	}
	return "unknown";
}

cJSON *member_to_json(const struct member *e)
{
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "id", e->id);
	cJSON_AddStringToObject(o, "address", e->address);
	cJSON_AddNumberToObject(o, "last_seen", (double)e->last_seen);
	cJSON_AddNumberToObject(o, "joined_timestamp", (double)e->joined_ts);
	cJSON_AddStringToObject(o, "status", member_status_name(e->status));
	cJSON_AddNumberToObject(o, "incarnation", (double)e->incarnation);
	if (e->status == MEMBER_SUSPECT)
		cJSON_AddBoolToObject(o, "suspect", 1);
	return o;
}

cJSON *member_list_to_json(const struct member *list, size_t n)
{
	cJSON *arr = cJSON_CreateArray();

	for (size_t i = 0; arr && i < n; i++) {
		cJSON *o = member_to_json(&list[i]);

		if (!o) {
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddItemToArray(arr, o);
	}
	return arr;
}

int member_from_json(const cJSON *o, struct member *out)
{
	struct member e;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
	const cJSON *addr = cJSON_GetObjectItemCaseSensitive(o, "address");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");

	memset(&e, 0, sizeof(e));
	if (!cJSON_IsObject(o) || !cJSON_IsString(id) || !cJSON_IsString(addr) ||
	    !config_node_id_valid(id->valuestring) || !config_address_valid(addr->valuestring))
		return KVS_EINVAL;
	snprintf(e.id, sizeof(e.id), "%s", id->valuestring);
	snprintf(e.address, sizeof(e.address), "%s", addr->valuestring);
	if (!wire_get_i64(o, "last_seen", &e.last_seen) || !wire_get_i64(o, "joined_timestamp", &e.joined_ts) ||
	    !wire_get_i64(o, "incarnation", &e.incarnation))
		return KVS_EINVAL;
	if (!st)
		e.status = MEMBER_ALIVE;
	else if (!cJSON_IsString(st))
		return KVS_EINVAL;
	else if (strcmp(st->valuestring, "alive") == 0)
		e.status = MEMBER_ALIVE;
	else if (strcmp(st->valuestring, "unhealthy") == 0)
		e.status = MEMBER_UNHEALTHY;
	else if (strcmp(st->valuestring, "left") == 0)
		e.status = MEMBER_LEFT;
	else
		return KVS_EINVAL;
	*out = e;
	return 0;
}
