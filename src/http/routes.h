/*
 * routes.h - the route table: every path kvs answers, its methods, its
 * handler and the access it needs (routes.c holds the one table).
 *
 * Threads: routes_serve() runs on civetweb's worker threads, many at
 * once; the table is constant.
 */
#ifndef KVS_HTTP_ROUTES_H
#define KVS_HTTP_ROUTES_H

#include <civetweb.h>

#include "metrics.h"
#include "node.h"

/* Every method some route answers, as an Allow header lists them (the
 * answer to "OPTIONS *"). */
#define ROUTES_ALLOW_ANY "GET, HEAD, PUT, DELETE, POST"

/*
 * Serves one request whose raw path (no query string) is raw_path: finds
 * its route, checks the route's access (auth.h), then answers 404 (no
 * route), 400 or 405 with Allow (a method the route does not serve), or
 * runs the handler, peer messages read and parsed first.  Sets *metric to
 * the route's metrics label (ROUTE_OTHER without a route).  Returns the
 * status sent; exactly one response is sent.
 */
int routes_serve(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
		 const char *raw_path, enum metrics_route *metric);

#endif
