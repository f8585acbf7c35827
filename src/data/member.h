/*
 * member.h - one member record (who a node is, as the member table and
 * the peer protocol see it) and its JSON form.
 *
 * The member table itself (merging, timeouts, the cap) is cluster/members.h;
 * this is the record alone, so that node.h and the data layer can hold one
 * without the table.  Pure functions: any thread.
 */
#ifndef KVS_MEMBER_H
#define KVS_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "config.h"

enum member_status { MEMBER_ALIVE, MEMBER_SUSPECT, MEMBER_UNHEALTHY, MEMBER_LEFT };

struct member {
	char id[CONFIG_ID_MAX];            /* node_id */
	char address[CONFIG_ADDR_MAX];     /* advertise_address */
	int64_t joined_ts;                 /* first start of its data dir, ms */
	int64_t incarnation;               /* its process start, ms */
	int64_t last_seen;                 /* newest direct contact anyone had, ms */
	enum member_status status;
	int64_t suspect_since;             /* local: when suspicion began, ms */
	bool self;                         /* this node's own entry */
};

#define MEMBER_MASK_LIVE ((1u << MEMBER_ALIVE) | (1u << MEMBER_SUSPECT))

/* "alive", "unhealthy" or "left" as SPEC section 4 reports them. */
const char *member_status_name(enum member_status s);

/*
 * The JSON form of one member: {"id","address","last_seen",
 * "joined_timestamp","status","incarnation"[,"suspect":true]}, the
 * object gossip, pings, joins and push messages carry.  Returns a new
 * object (caller frees with cJSON_Delete), or NULL on OOM.
 */
cJSON *member_to_json(const struct member *m);

/* A JSON array of member_to_json() objects, in list order.  Caller frees
 * with cJSON_Delete; NULL on OOM. */
cJSON *member_list_to_json(const struct member *list, size_t n);

/*
 * Parses one member object (from a peer) strictly: id by the node_id rules
 * (config_node_id_valid), address by advertise_address's
 * (config_address_valid: IPv4 or host name, port 1..65535, no scheme),
 * last_seen, joined_timestamp and incarnation integers in 0..10^15-1,
 * status known.  Returns 0 (out filled) or KVS_EINVAL (out untouched).
 */
int member_from_json(const cJSON *obj, struct member *out);

#endif
