/*
 * peer.h - the HTTP client every node-to-node request goes through.
 *
 * libcurl lives behind this module only.  Each calling thread gets its own
 * reused easy handle (created on first use, freed at thread exit), so
 * keep-alive connections to peers are reused without locks.  Every request
 * has a connect timeout and a total timeout, CURLOPT_NOSIGNAL, a cap on the
 * reply size, and sends the cluster secret header when one is configured.
 * A failure is logged once (event peer_request_failed) and counted.
 *
 * For tests: the transfer itself goes through the function table of
 * peer_io.h (libcurl's by default), which a test overrides to make a peer
 * unreachable, answer an error status or a given body, without a network.
 *
 * Addresses are "host:port", "http://host:port" or "https://host:port".
 */
#ifndef KVS_PEER_H
#define KVS_PEER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "node.h"

#define PEER_REPLY_MAX (64u << 20)  /* bytes of one reply */
#define PEER_SECRET_HEADER "X-Kvs-Cluster-Secret"
#define PEER_CLUSTER_HEADER "X-Kvs-Cluster-Id"

/* Once per process, before any thread uses peer_*. */
void peer_global_init(void);
void peer_global_cleanup(void);

/*
 * Sends method path (with query) to address with an optional body.
 * timeout_ms 0 means the configured peer_timeout_ms.  On return *status is
 * the HTTP status (0 if no answer) and reply holds the body (caller
 * initialised it; capped at PEER_REPLY_MAX).  Returns 0 for any 2xx,
 * KVS_EPEER otherwise (no answer, non-2xx, or reply over the cap).
 */
int peer_request(struct kvs_node *node, const char *address, const char *method,
		 const char *path, const char *body, size_t len, long timeout_ms,
		 struct buf *reply, long *status);

/* A push body, and its zstd frame when it was worth one (zbody NULL: none). */
struct peer_body {
	const char *body;
	size_t len;
	const char *zbody;
	size_t zlen;
};

/*
 * POST /members/push: the zstd frame (Content-Encoding: zstd) when there is
 * one, *zstd_ok (the peer offered it before) and peer_compression allow,
 * else the plain body; a 415 to the frame gets the plain body sent at once.
 * On return *zstd_ok is what the peer's answer said (Accept-Encoding: zstd),
 * kept as it was if there was no answer.  Counts the bytes sent
 * (kvs_push_bytes_total, kvs_push_wire_bytes_total).  Otherwise as
 * peer_request.
 */
int peer_push(struct kvs_node *node, const char *address, const struct peer_body *b,
	      bool *zstd_ok, struct buf *reply, long *status);

/*
 * Percent-encodes s for a query string into a malloc'd string (caller
 * frees with free()); NULL on OOM.  Any thread.
 */
char *peer_escape(const char *s);

/*
 * Like peer_request with a JSON body (NULL for none) and a JSON reply:
 * *out receives the parsed reply (caller frees with cJSON_Delete), or NULL
 * if the reply was empty.  Returns 0, or KVS_EPEER (also for a reply that
 * is not JSON).
 */
int peer_json(struct kvs_node *node, const char *address, const char *method, const char *path,
	      const cJSON *body, long timeout_ms, cJSON **out, long *status);

#endif
