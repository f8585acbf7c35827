/*
 * gossip.c - join, gossip rounds, probes and leave (see gossip.h).
 *
 * Peer endpoints used (served by api_peer.c):
 *   POST /members/join     {"member": M}                 -> {"members": [M...]}
 *   POST /members/gossip   {"from": M, "members": [M...]} -> {"members": [M...]}
 *   POST /members/ping     {"from": M, "clock": ms}       -> {"member": M, "clock": ms,
 *                                                           "mode", "keys", "latest_ts",
 *                                                           "push_queue"}
 *                          (the clocks: each side's wall clock; and how the peer
 *                          is doing, shown in /members/: clock.h)
 *   POST /members/probe    {"from": M, "address": A}      -> {"ok": bool}
 *   POST /members/suspect  {"from": M, "id": ID}          -> {}
 *   POST /members/left     {"from": M}                    -> {}
 *
 * Threads: the two loops below, each with its own curl handle (peer.c).
 */
#include "gossip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "peer.h"
#include "version.h"
#include "wire.h"

#define MAX_ROUND 1024

/* ---------------------------------------------------------------- helpers */

int64_t gossip_suspicion_ms(const struct kvs_config *cfg)
{
	return 3000LL * cfg->probe_interval + 2000;
}

static long probe_timeout_ms(const struct kvs_config *cfg)
{
	long t = cfg->probe_interval * 1000L / 2;

	return t > 800 ? 800 : t < 200 ? 200 : t;
}

cJSON *gossip_self_json(struct kvs_node *node)
{
	struct member self;

	node_self_member(node, &self);
	return member_to_json(&self);
}

/* {"from": self} plus nothing else; caller adds fields and frees. */
static cJSON *message_new(struct kvs_node *node)
{
	cJSON *msg = cJSON_CreateObject();
	cJSON *self = gossip_self_json(node);

	if (!msg || !self) {
		cJSON_Delete(msg);
		cJSON_Delete(self);
		return NULL;
	}
	cJSON_AddItemToObject(msg, "from", self);
	return msg;
}

/* Merges a reply's "members" array (invalid entries are skipped and logged). */
static void merge_member_list(struct kvs_node *node, const cJSON *arr, const char *peer)
{
	size_t n = (size_t)cJSON_GetArraySize(arr), got = 0;
	struct member *list;
	const cJSON *it;

	if (!cJSON_IsArray(arr) || n == 0 || !(list = calloc(n, sizeof(*list))))
		return;
	cJSON_ArrayForEach(it, arr) {
		if (member_from_json(it, &list[got]) != 0)
			log_warn_limited("gossip_bad_member", "peer=%s", peer);
		else if (gossip_record_trusted(node, &list[got]))
			got++;
	}
	members_merge(node->members, list, got);
	free(list);
}

cJSON *gossip_members_json(struct kvs_node *node)
{
	struct member *list;
	size_t n = members_snapshot(node->members, &list);
	cJSON *arr;

	if (!n)
		return NULL;
	list[0].status = atomic_load(&node->left) ? MEMBER_LEFT : MEMBER_ALIVE;
	arr = member_list_to_json(list, n);
	free(list);
	return arr;
}

/* ------------------------------------------------------------------- join */

/* Tries every seed once; true when one accepted us. */
static bool join_once(struct kvs_node *node)
{
	for (int i = 0; i < node->cfg.seed_count && !node_stopping(node); i++) {
		const char *seed = node->cfg.seed_nodes[i];
		cJSON *body = cJSON_CreateObject(), *reply = NULL;
		long status = 0;

		if (!body)
			return false;
		cJSON_AddItemToObject(body, "member", gossip_self_json(node));
		int rc = peer_json(node, seed, "POST", "/members/join", body, 0, &reply, &status);
		cJSON_Delete(body);
		if (rc == 0 && reply) {
			merge_member_list(node, cJSON_GetObjectItemCaseSensitive(reply, "members"),
					  seed);
			cJSON_Delete(reply);
			log_info("cluster_joined", "seed=%s members=%d", seed,
				 members_alive_count(node->members));
			return true;
		}
		if (status == 409)
			log_error("join_refused", "seed=%s reason=\"node_id %s is held by another "
				  "live node\"", seed, node->cfg.node_id);
		else
			log_warn("join_failed", "seed=%s status=%ld", seed, status);
		cJSON_Delete(reply);
	}
	return false;
}

/* ----------------------------------------------------------------- gossip */

static void gossip_round(struct kvs_node *node)
{
	struct member peers[3];
	size_t n = members_random(node->members, MEMBER_MASK_LIVE | (1u << MEMBER_UNHEALTHY),
				  peers, 1 + (size_t)random() % 3);

	for (size_t i = 0; i < n && !node_stopping(node); i++) {
		cJSON *msg = message_new(node), *reply = NULL;
		cJSON *list = gossip_members_json(node);
		long status;

		if (!msg || !list) {
			cJSON_Delete(msg);
			cJSON_Delete(list);
			return;
		}
		cJSON_AddItemToObject(msg, "members", list);
		if (peer_json(node, peers[i].address, "POST", "/members/gossip", msg, 0, &reply,
			      &status) == 0 && reply) {
			members_heard(node->members, peers[i].id, version_now_ms());
			merge_member_list(node, cJSON_GetObjectItemCaseSensitive(reply, "members"),
					  peers[i].address);
		}
		cJSON_Delete(reply);
		cJSON_Delete(msg);
	}
}

static void *gossip_thread(void *arg)
{
	struct kvs_node *node = arg;
	int64_t backoff = 1000;

	if (node->cfg.seed_count > 0) {
		while (!node_stopping(node) && !join_once(node)) {
			if (atomic_load(&node->join_state) == JOIN_PENDING) {
				atomic_store(&node->join_state, JOIN_STANDALONE);
				log_warn("cluster_standalone",
					 "reason=\"no seed answered\" retry_ms=%lld",
					 (long long)backoff);
			}
			node_sleep_ms(node, backoff);
			backoff = backoff * 2 > 30000 ? 30000 : backoff * 2;
		}
	}
	atomic_store(&node->join_state, JOIN_DONE);

	for (;;) {
		int span = node->cfg.gossip_interval_max - node->cfg.gossip_interval_min;
		int64_t wait = 1000LL * node->cfg.gossip_interval_min +
			       (span > 0 ? random() % (1000LL * span) : 0);

		if (!node_sleep_ms(node, wait))
			break;
		if (!atomic_load(&node->left))
			gossip_round(node);
	}
	return NULL;
}

/* ------------------------------------------------------------------ probes */

bool gossip_record_trusted(struct kvs_node *node, const struct member *m)
{
	return node->cfg.cluster_secret[0] || m->status != MEMBER_LEFT;
}

int gossip_ping(struct kvs_node *node, const char *address, char *id_out, size_t idlen)
{
	cJSON *msg = message_new(node), *reply = NULL;
	long status;
	int rc;

	if (!msg)
		return KVS_ENOMEM;
	int64_t t0 = version_now_ms(), peer_clock;
	cJSON_AddNumberToObject(msg, "clock", (double)t0);
	rc = peer_json(node, address, "POST", "/members/ping", msg, probe_timeout_ms(&node->cfg),
		       &reply, &status);
	if (rc == 0) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(reply, "member");
		int64_t t1 = version_now_ms();
		struct member e;

		if (member_from_json(m, &e) == 0) {
			struct member known;

			struct clock_status st;

			if (wire_get_i64(reply, "clock", &peer_clock))
				clock_sample(node, e.id, t0, t1, peer_clock);
			if (clock_status_parse(reply, &st))
				clock_status_set(node, e.id, &st);
			/* the member's own word, from the address it is known by,
			 * is the one source of "left" without a secret */
			if (gossip_record_trusted(node, &e) ||
			    (members_get(node->members, e.id, &known) &&
			     strcmp(known.address, address) == 0))
				members_merge(node->members, &e, 1);
			if (id_out)
				snprintf(id_out, idlen, "%s", e.id);
		} else {
			rc = KVS_EPEER;
		}
	}
	cJSON_Delete(reply);
	cJSON_Delete(msg);
	return rc;
}

/* Asks up to 3 live members to ping target; true if one reached it. */
static bool indirect_probe(struct kvs_node *node, const struct member *target)
{
	struct member helpers[4];
	size_t n = members_random(node->members, 1u << MEMBER_ALIVE, helpers, 4);
	size_t asked = 0;

	for (size_t i = 0; i < n && asked < 3; i++) {
		if (strcmp(helpers[i].id, target->id) == 0)
			continue;
		asked++;
		cJSON *msg = message_new(node), *reply = NULL;
		long status;
		if (!msg)
			return false;
		cJSON_AddStringToObject(msg, "address", target->address);
		int rc = peer_json(node, helpers[i].address, "POST", "/members/probe", msg,
				   2 * probe_timeout_ms(&node->cfg) + 200, &reply, &status);
		bool ok = rc == 0 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "ok"));
		cJSON_Delete(reply);
		cJSON_Delete(msg);
		if (ok)
			return true;
	}
	return false;
}

/* Tells every live member (but target) that target is suspect. */
static void broadcast_suspect(struct kvs_node *node, const struct member *target)
{
	struct member *list;
	size_t n = members_snapshot(node->members, &list);

	for (size_t i = 1; i < n && !node_stopping(node); i++) {
		if (strcmp(list[i].id, target->id) == 0 ||
		    !(MEMBER_MASK_LIVE & (1u << list[i].status)))
			continue;
		cJSON *msg = message_new(node), *reply = NULL;
		long status;
		if (!msg)
			break;
		cJSON_AddStringToObject(msg, "id", target->id);
		peer_json(node, list[i].address, "POST", "/members/suspect", msg,
			  probe_timeout_ms(&node->cfg), &reply, &status);
		cJSON_Delete(reply);
		cJSON_Delete(msg);
	}
	free(list);
}

static void probe_member(struct kvs_node *node, const struct member *target)
{
	if (gossip_ping(node, target->address, NULL, 0) == 0) {
		members_heard(node->members, target->id, version_now_ms());
		return;
	}
	if (target->status != MEMBER_ALIVE)
		return; /* suspects time out; unhealthy ones are only watched for a return */
	if (indirect_probe(node, target)) {
		members_heard(node->members, target->id, version_now_ms());
		return;
	}
	if (members_suspect(node->members, target->id, version_now_ms()))
		broadcast_suspect(node, target);
}

static void *probe_thread(void *arg)
{
	struct kvs_node *node = arg;
	char round[MAX_ROUND][CONFIG_ID_MAX];
	size_t round_len = 0, round_pos = 0;

	while (node_sleep_ms(node, 1000LL * node->cfg.probe_interval)) {
		struct member *list, target;
		size_t n;

		members_tick(node->members, version_now_ms());
		if (atomic_load(&node->left))
			continue;
		n = members_snapshot(node->members, &list);
		/* every suspect, every tick */
		for (size_t i = 1; i < n && !node_stopping(node); i++)
			if (list[i].status == MEMBER_SUSPECT)
				probe_member(node, &list[i]);
		/* then the next member of a shuffled round */
		if (round_pos >= round_len) {
			round_len = round_pos = 0;
			for (size_t i = 1; i < n && round_len < MAX_ROUND; i++)
				if (list[i].status != MEMBER_LEFT)
					snprintf(round[round_len++], CONFIG_ID_MAX, "%s", list[i].id);
			for (size_t i = round_len; i > 1; i--) {
				size_t j = (size_t)random() % i;
				char t[CONFIG_ID_MAX];
				memcpy(t, round[i - 1], CONFIG_ID_MAX);
				memcpy(round[i - 1], round[j], CONFIG_ID_MAX);
				memcpy(round[j], t, CONFIG_ID_MAX);
			}
		}
		free(list);
		while (round_pos < round_len && !node_stopping(node)) {
			if (members_get(node->members, round[round_pos++], &target) &&
			    target.status != MEMBER_LEFT && target.status != MEMBER_SUSPECT) {
				probe_member(node, &target);
				break;
			}
		}
		clock_check(node);
	}
	return NULL;
}

/* ------------------------------------------------------------------ leave */

void gossip_leave(struct kvs_node *node)
{
	struct member *list;
	size_t n;

	if (atomic_exchange(&node->left, true))
		return;
	members_self_left(node->members);
	n = members_snapshot(node->members, &list);
	log_info("cluster_leave", "members_told=%zu", n ? n - 1 : 0);
	for (size_t i = 1; i < n; i++) {
		if (!(MEMBER_MASK_LIVE & (1u << list[i].status)))
			continue;
		cJSON *msg = message_new(node), *reply = NULL;
		long status;
		if (!msg)
			break;
		peer_json(node, list[i].address, "POST", "/members/left", msg, 1000, &reply,
			  &status);
		cJSON_Delete(reply);
		cJSON_Delete(msg);
	}
	free(list);
}

int gossip_start(struct kvs_node *node)
{
	if (node_spawn(node, gossip_thread, "kvs-gossip") != 0 ||
	    node_spawn(node, probe_thread, "kvs-probe") != 0)
		return KVS_ENOMEM;
	return 0;
}
