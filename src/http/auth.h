/*
 * auth.h - who may call a route, checked once per request by the route
 * dispatcher (routes.c) before the handler runs; and the TLS set-up.
 *
 * Clients prove themselves with "Authorization: Bearer TOKEN" when
 * auth_tokens are configured: a "read:"/"write:" token on every key, or a
 * scoped token whose prefix rules decide key by key (auth_key_access(),
 * which the handlers call for the keys they touch);
 * peers with the cluster id and the cluster secret headers (peer.h).  No
 * tokens configured: every client route is open.  No secret configured:
 * a peer route needs only a matching cluster id, when one is sent.
 *
 * Threads: every function runs on civetweb's worker threads, many at
 * once; they only read the configuration.
 */
#ifndef KVS_HTTP_AUTH_H
#define KVS_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include <civetweb.h>

#include "node.h"

/* The access a route (or one of its methods) requires. */
enum auth_access {
	AUTH_OPEN,   /* anyone: /health */
	AUTH_READ,   /* a client with a read or a write token */
	AUTH_WRITE,  /* a client with a write token */
	AUTH_ADMIN,  /* node administration: a "write:" token or a scoped admin one */
	AUTH_PEER,   /* another node: our cluster id (when sent) and cluster secret */
};

/*
 * Checks that the request on c may have access, and answers it if not:
 * 401 with WWW-Authenticate (no or unknown bearer token), 403 (a read
 * token asking for write or admin), 401 (peer: another cluster id, or a
 * missing or wrong cluster secret; counted in peer_auth_refused and
 * logged, rate-limited, with raw_path).  Returns 0 when the request may
 * go on, else the status sent.
 */
int auth_check(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	       const char *raw_path, enum auth_access access);

/* The token the current request proved (NULL: none, or no tokens are
 * configured).  Worker thread, after auth_check. */
const struct config_token *auth_token(struct kvs_node *node, struct mg_connection *c);

/*
 * What the current request's token may do with key (SPEC section 12): an
 * open API (no tokens) and a "write:" token write everywhere, a "read:"
 * token reads everywhere, a scoped token has its longest matching rule's
 * access (none when no rule matches, or for a deny rule).
 */
enum config_access auth_key_access(struct kvs_node *node, struct mg_connection *c,
				   const char *key, size_t klen);

/* Constant-time string equality, for secrets and tokens: the time taken
 * does not depend on where a guess goes wrong. */
bool auth_equal_ct(const char *a, const char *b);

/*
 * civetweb's init_ssl callback (user_data is the node): loads the node's
 * certificate chain and key (two files, where civetweb's own option wants
 * one combined PEM), TLS 1.2 at least, and for mutual TLS requires client
 * certificates signed by tls_ca_file.  Returns 1 (set up here) or -1
 * (logged; civetweb fails the start).  Runs once, inside mg_start2().
 */
int auth_tls_init(void *ssl_ctx, void *user_data);

#endif
