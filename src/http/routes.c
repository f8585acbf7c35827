/*
 * routes.c - the one route table and the dispatcher over it (see routes.h).
 *
 * Each row is a route: a path (exact; a prefix; or a prefix whose request
 * path ends in '/', a listing), the methods it serves, the access they
 * need (auth.h), its metrics label and its handler.  A client handler
 * (.fn) gets the raw path; a peer handler (.msg) gets the peer's message,
 * read and parsed with a bound (BODY) and, for routes that build pages,
 * run within the node's reply budget (PAGED), both by api_peer_call().
 * Several rows with the same path and match are one resource serving
 * different methods with different access (GET on a key reads, PUT
 * writes); they sit next to each other.
 *
 * Dispatch, in this order, for the first row whose path matches:
 *  1. access: of the row serving the request's method; for a method the
 *     resource does not serve, a client resource asks what the method
 *     would (read for GET and HEAD, write otherwise), an open or peer
 *     resource its own.  So with a cluster secret nothing under /members/
 *     but the client routes answers anything but 401 without the secret:
 *     not even whether a path or method exists.
 *  2. a resource without a handler (the rest of /members/): 404.
 *  3. a method the resource does not serve: 400 if the path itself is
 *     bad (.bad_path, as the handler would say), else 405 with Allow
 *     listing the methods it serves.
 *  4. the handler, which checks no credentials and no method.
 * Exact rows come first; among prefixes the first match wins.
 *
 * tests/integration/test_routes.py reads this table (the rows between
 * "routes[] = {" and "};") and checks every row's access against a node.
 *
 * Threads: worker threads, any number at once; the table is constant.
 */
#include "routes.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "http.h"

/* ------------------------------------------------------------------ types */

enum route_match {
	EXACT,       /* the path itself */
	PREFIX,      /* any path starting with it */
	PREFIX_DIR,  /* any path starting with it and ending in '/' (a listing) */
};

/* Methods as bits; method_names[] spells them in Allow order. */
enum route_method {
	M_GET = 1 << 0,
	M_HEAD = 1 << 1,
	M_PUT = 1 << 2,
	M_DELETE = 1 << 3,
	M_POST = 1 << 4,
};

enum route_flags {
	BODY = 1 << 0,   /* a peer message: POST with a JSON object body */
	PAGED = 1 << 1,  /* builds a page of records: holds reply budget while it runs */
	INDEX = 1 << 2,  /* replies carry X-Kvs-Index (SPEC section 7) */
};

struct route {
	const char *path;
	enum route_match match;
	unsigned methods;             /* enum route_method bits; 0: none (404) */
	enum auth_access access;      /* what those methods need */
	enum metrics_route metric;    /* the label in /metrics */
	api_fn fn;                    /* a client handler, or */
	api_msg_fn msg;               /* a peer handler (api_peer_call) */
	unsigned flags;               /* enum route_flags (BODY and PAGED: for msg) */
	const char *(*bad_path)(const char *raw_path); /* why the path is bad, or NULL */
};

/* -------------------------------------------------------------- the table */

#define M_READ (M_GET | M_HEAD) /* the methods that only read */

static const struct route routes[] = {
	{ "/health", EXACT, M_READ, AUTH_OPEN, ROUTE_HEALTH, .fn = api_health },
	{ "/metrics", EXACT, M_READ, AUTH_READ, ROUTE_METRICS, .fn = api_metrics },
	{ "/members", EXACT, M_READ, AUTH_READ, ROUTE_MEMBERS, .fn = api_members },
	{ "/members/", EXACT, M_READ, AUTH_READ, ROUTE_MEMBERS, .fn = api_members },
	{ "/members/leave", EXACT, M_DELETE, AUTH_ADMIN, ROUTE_MEMBERS, .fn = api_members_leave },
	{ "/members/join", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_join, .flags = BODY },
	{ "/members/gossip", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_gossip,
	  .flags = BODY },
	{ "/members/ping", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_ping, .flags = BODY },
	{ "/members/probe", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_probe,
	  .flags = BODY },
	{ "/members/suspect", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_suspect,
	  .flags = BODY },
	{ "/members/left", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_left, .flags = BODY },
	{ "/members/push", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_push, .flags = BODY },
	{ "/members/recent", EXACT, M_GET, AUTH_PEER, ROUTE_PEER, .msg = api_peer_recent,
	  .flags = PAGED },
	{ "/members/since", EXACT, M_GET, AUTH_PEER, ROUTE_PEER, .msg = api_peer_since,
	  .flags = PAGED },
	{ "/members/fetch", EXACT, M_POST, AUTH_PEER, ROUTE_PEER, .msg = api_peer_fetch,
	  .flags = BODY | PAGED },
	{ "/members/digests", EXACT, M_GET, AUTH_PEER, ROUTE_PEER, .msg = api_peer_digests },
	{ "/members/bucket", EXACT, M_GET, AUTH_PEER, ROUTE_PEER, .msg = api_peer_bucket,
	  .flags = PAGED },
	{ "/kv", EXACT, M_READ, AUTH_READ, ROUTE_KV_LIST, .fn = api_kv, .flags = INDEX,
	  .bad_path = api_kv_bad_path },
	{ "/kv/", PREFIX_DIR, M_READ, AUTH_READ, ROUTE_KV_LIST, .fn = api_kv, .flags = INDEX,
	  .bad_path = api_kv_bad_path },
	{ "/kv/", PREFIX, M_READ, AUTH_READ, ROUTE_KV, .fn = api_kv, .flags = INDEX,
	  .bad_path = api_kv_bad_path },
	{ "/kv/", PREFIX, M_PUT | M_DELETE, AUTH_WRITE, ROUTE_KV, .fn = api_kv, .flags = INDEX,
	  .bad_path = api_kv_bad_path },
	{ "/txn", EXACT, M_POST, AUTH_WRITE, ROUTE_TXN, .fn = api_txn, .flags = INDEX },
	{ "/watch", EXACT, M_GET, AUTH_READ, ROUTE_WATCH, .fn = api_watch, .flags = INDEX,
	  .bad_path = api_watch_bad_path },
	{ "/watch/", PREFIX, M_GET, AUTH_READ, ROUTE_WATCH, .fn = api_watch, .flags = INDEX,
	  .bad_path = api_watch_bad_path },
	{ "/admin/snapshot", EXACT, M_GET, AUTH_ADMIN, ROUTE_ADMIN, .fn = api_admin_snapshot },
	{ "/ui", EXACT, M_READ, AUTH_OPEN, ROUTE_UI, .fn = api_ui },
	{ "/ui/", PREFIX, M_READ, AUTH_OPEN, ROUTE_UI, .fn = api_ui },
	/* the peer namespace: any other path under /members/ is 404, but only
	 * to a peer (with a secret, 401 to anyone else) */
	{ "/members/", PREFIX, 0, AUTH_PEER, ROUTE_PEER, .fn = NULL },
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static const char *const method_names[] = { "GET", "HEAD", "PUT", "DELETE", "POST" };

/* -------------------------------------------------------------- internals */

static bool path_matches(const struct route *r, const char *path)
{
	size_t n = strlen(r->path), len = strlen(path);

	switch (r->match) {
	case EXACT:
		return strcmp(path, r->path) == 0;
	case PREFIX:
		return strncmp(path, r->path, n) == 0;
	case PREFIX_DIR:
		return strncmp(path, r->path, n) == 0 && len > 0 && path[len - 1] == '/';
	}
	return false;
}

static bool same_resource(const struct route *a, const struct route *b)
{
	return a->match == b->match && strcmp(a->path, b->path) == 0;
}

/* The method's bit; 0 for a method no route serves. */
static unsigned method_bit(const char *m)
{
	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (strcmp(m, method_names[i]) == 0)
			return 1u << i;
	return 0;
}

/*
 * The first row whose path matches, the resource (NULL if none); *row is
 * set to the row of that resource serving method, or NULL, and *methods
 * to every method the resource serves.
 */
static const struct route *route_find(const char *path, unsigned method, const struct route **row,
				      unsigned *methods)
{
	const struct route *res = NULL;

	*row = NULL;
	*methods = 0;
	for (size_t i = 0; i < NROUTES; i++) {
		const struct route *r = &routes[i];

		if (res ? !same_resource(res, r) : !path_matches(r, path))
			continue;
		res = res ? res : r;
		*methods |= r->methods;
		if (!*row && (r->methods & method))
			*row = r;
	}
	return res;
}

/* The access a method the resource does not serve needs (see step 1 of
 * the design comment). */
static enum auth_access unserved_access(const struct route *res, unsigned method)
{
	if (res->access == AUTH_OPEN || res->access == AUTH_PEER)
		return res->access;
	return method & M_READ ? AUTH_READ : AUTH_WRITE;
}

/* 405 with an Allow header listing methods, in method_names[] order. */
static int not_allowed(struct mg_connection *c, unsigned methods)
{
	char allow[64] = "";
	size_t n = 0;

	for (size_t i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (methods & (1u << i))
			n += (size_t)snprintf(allow + n, sizeof(allow) - n, "%s%s", n ? ", " : "",
					      method_names[i]);
	return http_method_not_allowed(c, allow);
}

/* ------------------------------------------------------------- public API */

static int serve(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
		 const char *raw_path, enum metrics_route *metric, enum auth_access *access);

/*
 * The audit log (audit.h): every request to a write or admin route, and
 * every refused one (401, 403), whatever its route, client or peer.
 */
int routes_serve(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
		 const char *raw_path, enum metrics_route *metric)
{
	enum auth_access access = AUTH_OPEN;
	int status = serve(node, c, ri, raw_path, metric, &access);

	if (node->audit && (access == AUTH_WRITE || access == AUTH_ADMIN || status == 401 ||
			    status == 403)) {
		const struct config_token *t = auth_token(node, c);

		audit_log(node->audit, t ? t->name : NULL, ri->remote_addr, ri->request_method,
			  raw_path, status);
	}
	return status;
}

static int serve(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
		 const char *raw_path, enum metrics_route *metric, enum auth_access *access)
{
	unsigned method = method_bit(ri->request_method), methods;
	const struct route *row, *res = route_find(raw_path, method, &row, &methods);
	const char *why;
	int status;

	if (!res) {
		*metric = ROUTE_OTHER;
		return http_error(c, 404, NULL, "no such resource: %.200s", raw_path);
	}
	*metric = (row ? row : res)->metric;
	*access = row ? row->access : unserved_access(res, method);
	status = auth_check(node, c, ri, raw_path, *access);
	if (status != 0)
		return status;
	/* read before the handler reads any data: a client that watches from
	 * this index sees every change its reply may have missed */
	if ((res->flags & INDEX) && store_changes_on(node->store))
		http_set_index(c, store_index(node->store));
	if (!methods)
		return http_error(c, 404, NULL, "no such resource: %.200s", raw_path);
	if (!row) {
		if (res->bad_path && (why = res->bad_path(raw_path)))
			return http_error(c, 400, NULL, "%s", why);
		return not_allowed(c, methods);
	}
	assert(!row->fn != !row->msg);
	if (row->msg)
		return api_peer_call(node, c, ri, row->msg, row->flags & BODY, row->flags & PAGED);
	return row->fn(node, c, ri, raw_path);
}
