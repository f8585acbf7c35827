/*
 * gossip.h - membership threads: join through seeds, gossip rounds,
 * failure detection by probes, and leave announcements.
 *
 * Threads started by gossip_start():
 *   gossip  joins through seed_nodes (retrying with backoff while none
 *           answers, the node serving standalone meanwhile), then every
 *           random interval in [gossip_interval_min, gossip_interval_max]
 *           exchanges member lists with 1 to 3 random live peers;
 *   probe   every probe_interval pings the next member in a shuffled
 *           round, and every suspect; a failed ping asks up to 3 others to
 *           probe (indirect probe); failing both makes the member suspect,
 *           which is broadcast so every node watches it; a suspect that
 *           stays silent for the suspicion timeout becomes unhealthy.
 */
#ifndef KVS_GOSSIP_H
#define KVS_GOSSIP_H

#include <cjson/cJSON.h>

#include "node.h"

enum join_state { JOIN_PENDING, JOIN_DONE, JOIN_STANDALONE };

/* Starts the gossip and probe threads (and the join).  Returns 0 or KVS_ENOMEM. */
int gossip_start(struct kvs_node *node);

/* Marks this node left and tells every live member.  Any thread; idempotent. */
void gossip_leave(struct kvs_node *node);

/* This node's member record as JSON: member_to_json() of
 * node_self_member().  Caller frees with cJSON_Delete; NULL on OOM. */
cJSON *gossip_self_json(struct kvs_node *node);

/* The member table as JSON (GET /members/, gossip, join replies), this
 * node first and shown left once it has left; caller frees.  NULL on OOM. */
cJSON *gossip_members_json(struct kvs_node *node);

/* Suspicion timeout in ms for the node's probe_interval. */
int64_t gossip_suspicion_ms(const struct kvs_config *cfg);

/* Pings address directly; returns 0 if it answered within the probe timeout. */
int gossip_ping(struct kvs_node *node, const char *address, char *id_out, size_t idlen);

/*
 * True if a member record that arrived from the network may be merged.
 * Without a cluster secret anyone can send one, and naming any member as
 * "left" would cut it off for good (left is sticky): such records are not
 * taken.  A leave then counts only when the member itself says so, asked
 * at the address it is known by (gossip_ping, POST /members/left).
 */
bool gossip_record_trusted(struct kvs_node *node, const struct member *m);

#endif
