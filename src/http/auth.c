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

#include <openssl/sha.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "http.h"
#include "log.h"
#include "peer.h"

/* ------------------------------------------------------------- internals */

/*
 * The configured token the request's "Authorization: Bearer T" names, or
 * -1.  Every token is tried, in constant time each (hashed ones against
 * T's SHA-256), so the time taken says nothing of how close a guess came.
 */
static int find_token(const struct kvs_config *cfg, const char *h)
{
	unsigned char digest[SHA256_DIGEST_LENGTH];
	bool digested = false;
	int found = -1;

	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return -1;
	h += 7;
	for (int i = 0; i < cfg->token_count; i++) {
		const struct config_token *t = &cfg->auth_tokens[i];

		if (t->hashed) {
			unsigned char diff = 0;

			if (!digested) {
				SHA256((const unsigned char *)h, strlen(h), digest);
				digested = true;
			}
			for (int j = 0; j < SHA256_DIGEST_LENGTH; j++)
				diff |= digest[j] ^ t->sha256[j];
			if (diff == 0)
				found = i;
		} else if (auth_equal_ct(h, t->token)) {
			found = i;
		}
	}
	return found;
}

/*
 * With auth_tokens configured, a client needs a valid bearer token (else
 * 401 and WWW-Authenticate), which the request's connection slot then
 * remembers (auth_key_access).  write: a token that may write somewhere
 * (a read-only "read:" token gets 403; a scoped token's keys are checked
 * by the handler).  admin: a "write:" token, or a scoped one with admin.
 * Returns 0 when the request may go on, else the status sent.
 */
static int check_token(struct kvs_node *node, struct mg_connection *c, enum auth_access access)
{
	const struct kvs_config *cfg = &node->cfg;
	int found;

	if (cfg->token_count == 0)
		return 0;
	found = find_token(cfg, mg_get_header(c, "Authorization"));
	if (found < 0)
		return http_error(c, 401, "WWW-Authenticate: Bearer realm=\"kvs\"\r\n",
				  "missing or invalid bearer token");
	conn_slot_set_token(mg_get_user_connection_data(c), found);
	const struct config_token *t = &cfg->auth_tokens[found];
	if (access == AUTH_WRITE && !t->scoped && !t->write)
		return http_error(c, 403, NULL, "this token may only read");
	if (access == AUTH_ADMIN && !(t->scoped ? t->admin : t->write))
		return http_error(c, 403, NULL, "this token has no admin scope");
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
	case AUTH_WRITE:
	case AUTH_ADMIN:
		return check_token(node, c, access);
	case AUTH_PEER:
		return check_peer(node, c, ri, raw_path);
	}
	return http_error(c, 500, NULL, "route without an access rule");
}

const struct config_token *auth_token(struct kvs_node *node, struct mg_connection *c)
{
	int i = conn_slot_token(mg_get_user_connection_data(c));

	return i >= 0 && i < node->cfg.token_count ? &node->cfg.auth_tokens[i] : NULL;
}

enum config_access auth_key_access(struct kvs_node *node, struct mg_connection *c,
				   const char *key, size_t klen)
{
	const struct config_token *t;
	const struct config_rule *best = NULL;
	size_t best_len = 0;

	if (node->cfg.token_count == 0)
		return ACCESS_WRITE; /* an open API */
	if (!(t = auth_token(node, c)))
		return ACCESS_NONE;
	if (!t->scoped)
		return t->write ? ACCESS_WRITE : ACCESS_READ;
	for (int i = t->rule_first; i < t->rule_first + t->rule_count; i++) {
		const struct config_rule *r = &node->cfg.rules[i];
		size_t plen = strlen(r->prefix);

		if (plen <= klen && memcmp(key, r->prefix, plen) == 0 && (!best || plen >= best_len)) {
			best = r;
			best_len = plen;
		}
	}
	return best ? (enum config_access)best->access : ACCESS_NONE;
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
