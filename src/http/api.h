/*
 * api.h - the HTTP handlers, one per resource (routes in http.c).
 *
 * Each handler switches on the method, sends exactly one response through
 * the http.h helpers and returns the status it sent.  They run on civetweb
 * worker threads, many at once; all shared state is reached through node.
 */
#ifndef KVS_API_H
#define KVS_API_H

#include <civetweb.h>

#include "node.h"

/* /kv, /kv/{path}, /kv/{prefix}/ (api_kv.c) */
int api_kv(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	   const char *raw_path);

/* /health, /metrics, /members/ and the peer endpoints (api_cluster.c) */
int api_health(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	       const char *raw_path);
int api_metrics(struct kvs_node *node, struct mg_connection *c,
		const struct mg_request_info *ri, const char *raw_path);
int api_members(struct kvs_node *node, struct mg_connection *c,
		const struct mg_request_info *ri, const char *raw_path);

/* the node-to-node endpoints under /members/ (api_peer.c) */
int api_peer(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	     const char *raw_path);

#endif
