/*
 * api.h - the HTTP handlers, one per resource (routes.c maps paths to them).
 *
 * Each handler sends exactly one response through the http.h helpers and
 * returns the status it sent.  The route table has already checked the
 * caller's access and the method (only the methods its route lists reach
 * a handler), so handlers check neither.  They run on civetweb worker
 * threads, many at once; all shared state is reached through node.
 */
#ifndef KVS_API_H
#define KVS_API_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <civetweb.h>

#include "node.h"

/* A client handler: gets the raw (undecoded) request path. */
typedef int (*api_fn)(struct kvs_node *node, struct mg_connection *c,
		      const struct mg_request_info *ri, const char *raw_path);

/* A peer handler: gets the peer's message, a JSON object (NULL for a
 * route without a body), borrowed for the call. */
typedef int (*api_msg_fn)(struct kvs_node *node, struct mg_connection *c,
			  const struct mg_request_info *ri, cJSON *body);

/* GET|HEAD|PUT|DELETE /kv/{path}, GET|HEAD /kv and /kv/{prefix}/ (api_kv.c) */
int api_kv(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	   const char *raw_path);

/* Why raw_path is no valid /kv path (static text), or NULL if it is one:
 * what api_kv answers 400 with.  Any thread. */
const char *api_kv_bad_path(const char *raw_path);

/* POST /txn: a transaction of up to STORE_BATCH_MAX ops (api_txn.c, SPEC
 * section 8) */
int api_txn(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	    const char *raw_path);

/* Shared by the write handlers (api_kv.c). */

/* Answers 403/503 when the node's mode refuses client writes; else 0. */
int api_writable(struct kvs_node *node, struct mg_connection *c);

/* Reads a request body of at most max bytes into *body (caller frees):
 * returns 0, or the status of the error it answered (411, 413, 408, 400)
 * with nothing to free.  what names the limit in the 413 message. */
int api_read_body(struct mg_connection *c, size_t max, const char *what, char **body,
		  size_t *len);

/* Parses a TTL ("30s", "500ms", "2h", "7d", a bare number: seconds) of 1 s
 * to max_s seconds into *ms.  Returns 0, or KVS_EINVAL / KVS_ETOOBIG with
 * a static reason in *why. */
int api_parse_ttl(const char *s, int64_t max_s, int64_t *ms, const char **why);

/* After a write: X-Kvs-Index as it is now. */
void api_written_index(struct kvs_node *node, struct mg_connection *c);

/* Parses an If-Match value ("*" or a quoted uuid) into op's condition.
 * Returns false if it is neither. */
struct store_op;
bool api_parse_if_match(const char *s, struct store_op *op);

/* The 412 reply of a failed condition on one key: the current version, or
 * null when the key is absent or deleted. */
int api_precondition_failed(struct mg_connection *c, const struct store_op *op);

/* GET /watch, /watch/, /watch/{prefix}/ and /watch/{path}: long-poll
 * and Server-Sent Events watches (api_watch.c, SPEC section 7) */
int api_watch(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	      const char *raw_path);
const char *api_watch_bad_path(const char *raw_path);

/* GET|HEAD /ui and /ui/{file}: the web console's files, 404 with
 * "ui: false" (api_ui.c, SPEC section 14) */
int api_ui(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	   const char *raw_path);
/* GET|HEAD /health, /metrics, /members and /members/; DELETE
 * /members/leave, a client asking this node to leave (api_cluster.c) */
int api_health(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	       const char *raw_path);
int api_metrics(struct kvs_node *node, struct mg_connection *c,
		const struct mg_request_info *ri, const char *raw_path);
int api_members(struct kvs_node *node, struct mg_connection *c,
		const struct mg_request_info *ri, const char *raw_path);
int api_members_leave(struct kvs_node *node, struct mg_connection *c,
		      const struct mg_request_info *ri, const char *raw_path);

/* GET /admin/snapshot: the node's records as a snapshot stream
 * (api_admin.c, SPEC section 11) */
int api_admin_snapshot(struct kvs_node *node, struct mg_connection *c,
		       const struct mg_request_info *ri, const char *raw_path);

/*
 * The node-to-node endpoints under /members/ (api_peer.c), each named for
 * its path: POST join, gossip, ping, probe, suspect, left, push, fetch
 * (with a message); GET recent, since, digests, bucket (body NULL).
 */
int api_peer_join(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body);
int api_peer_gossip(struct kvs_node *node, struct mg_connection *c,
		    const struct mg_request_info *ri, cJSON *body);
int api_peer_ping(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body);
int api_peer_probe(struct kvs_node *node, struct mg_connection *c,
		   const struct mg_request_info *ri, cJSON *body);
int api_peer_suspect(struct kvs_node *node, struct mg_connection *c,
		     const struct mg_request_info *ri, cJSON *body);
int api_peer_left(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body);
int api_peer_push(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body);
int api_peer_recent(struct kvs_node *node, struct mg_connection *c,
		    const struct mg_request_info *ri, cJSON *body);
int api_peer_since(struct kvs_node *node, struct mg_connection *c,
		   const struct mg_request_info *ri, cJSON *body);
int api_peer_fetch(struct kvs_node *node, struct mg_connection *c,
		   const struct mg_request_info *ri, cJSON *body);
int api_peer_digests(struct kvs_node *node, struct mg_connection *c,
		     const struct mg_request_info *ri, cJSON *body);
int api_peer_bucket(struct kvs_node *node, struct mg_connection *c,
		    const struct mg_request_info *ri, cJSON *body);

/*
 * Runs the peer handler fn for the request on c: with has_body, first
 * reads the message (capped in size) and parses it with a bound on depth
 * and values (a bad one is answered 400, 408 or 413 here and fn is not
 * called); with paged, holds a page's share of the node's reply budget
 * while fn runs (503 with Retry-After when it is spent).  Returns the
 * status sent.
 */
int api_peer_call(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
		  api_msg_fn fn, bool has_body, bool paged);

#endif
