/*
 * auth.c - access checks (bearer tokens, cluster id, cluster secret),
 * constant-time comparison, TLS set-up (see auth.h).
 *
 * The route table (routes.c) names each route's access; the dispatcher
 * calls auth_check() once, before the handler, so no handler checks
 * credentials itself.  What each access means:
 *  - open: nothing is checked.
 *  - read / write / admin: with auth_tokens configured, "Authorization:
 *    Bearer TOKEN" must name one of them (else 401 and WWW-Authenticate);
 *    write and admin need a write token (else 403).  Without tokens,
 *    anyone.
 *  - peer: a cluster id header, when sent, must be ours, and with a
 *    cluster secret configured the secret header must match it (else 401).
 *    Refusals are counted (kvs_peer_auth_refused_total) and logged with a
 *    rate limit, the header's value escaped.
 * Tokens and the secret are compared in constant time (auth_equal_ct()),
 * every configured token tried, so the time taken tells nothing of how
 * close a guess came.
 *
 * Threads: worker threads, any number at once; only the read-only
 * configuration is read.  auth_tls_init() runs once, during mg_start2().
 */
#include "auth.h"

#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "http.h"
#include "log.h"
#include "peer.h"

/* ------------------------------------------------------------- internals */

/*
 * With auth_tokens configured, a client needs "Authorization: Bearer
 * TOKEN": any token for read, a write token for write.  Answers 401/403
 * itself and returns that status; 0 when the request may proceed.
 */
static int check_token(struct kvs_node *node, struct mg_connection *c, bool write)
{
	const struct kvs_config *cfg = &node->cfg;
	const char *h = mg_get_header(c, "Authorization");
	int found = -1;

	if (cfg->token_count == 0)
		return 0;
	if (h && strncasecmp(h, "Bearer ", 7) == 0)
		for (int i = 0; i < cfg->token_count; i++)
			if (auth_equal_ct(h + 7, cfg->auth_tokens[i].token))
				found = i;
	if (found < 0)
		return http_error(c, 401, "WWW-Authenticate: Bearer realm=\"kvs\"\r\n",
				  "missing or invalid bearer token");
	if (write && !cfg->auth_tokens[found].write)
		return http_error(c, 403, NULL, "this token may only read");
	return 0;
}

/* Refuses (401) a peer request without our cluster id and secret; 0 if it may go on. */
static int check_peer(struct kvs_node *node, struct mg_connection *c,
		      const struct mg_request_info *ri, const char *raw_path)
{
	const char *cid = mg_get_header(c, PEER_CLUSTER_HEADER);
	const char *secret = mg_get_header(c, PEER_SECRET_HEADER);

	if (cid && strcmp(cid, node->cfg.cluster_id) != 0) {
		atomic_fetch_add(&node->metrics.peer_auth_refused, 1);
		log_warn_limited("peer_refused",
				 "from=%s path=\"%s\" reason=\"cluster_id %s is not ours\"",
				 ri->remote_addr, LOG_ESC(raw_path), LOG_ESC(cid));
		return http_error(c, 401, NULL, "cluster_id mismatch: this node is in cluster %s",
				  node->cfg.cluster_id);
	}
	if (node->cfg.cluster_secret[0] &&
	    !auth_equal_ct(secret ? secret : "", node->cfg.cluster_secret)) {
		atomic_fetch_add(&node->metrics.peer_auth_refused, 1);
		log_warn_limited("peer_refused",
				 "from=%s path=\"%s\" reason=\"missing or wrong cluster secret\"",
				 ri->remote_addr, LOG_ESC(raw_path));
		return http_error(c, 401, NULL, "missing or wrong cluster secret");
	}
	return 0;
}

/* ------------------------------------------------------------- public API */

int auth_check(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	       const char *raw_path, enum auth_access access)
{
	switch (access) {
	case AUTH_OPEN:
		return 0;
	case AUTH_READ:
		return check_token(node, c, false);
	case AUTH_WRITE:
	case AUTH_ADMIN:
		return check_token(node, c, true);
	case AUTH_PEER:
		return check_peer(node, c, ri, raw_path);
	}
	return http_error(c, 500, NULL, "route without an access rule");
}

bool auth_equal_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < lb ? b[i] : 0);
	return diff == 0;
}

int auth_tls_init(void *ssl_ctx, void *user_data)
{
	struct kvs_node *node = user_data;
	const struct kvs_config *cfg = &node->cfg;
	SSL_CTX *ctx = ssl_ctx;

	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
		log_error("tls_error", "file=\"%s\" reason=\"cannot load certificate\"",
			  cfg->tls_cert_file);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		log_error("tls_error", "file=\"%s\" reason=\"cannot load key or it does not match "
			  "the certificate\"", cfg->tls_key_file);
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (cfg->tls_ca_file[0]) {
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_file, NULL) != 1) {
			log_error("tls_error", "file=\"%s\" reason=\"cannot load CA\"",
				  cfg->tls_ca_file);
			return -1;
		}
		if (cfg->tls_verify_peer)
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
					   NULL);
	}
	return 1;
}
