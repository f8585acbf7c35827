/*
 * http.h - the civetweb server: start/stop, the route table, and reply
 * helpers that send each response in a single write.
 *
 * One table in http.c maps URI prefixes to handlers; every handler gets the
 * node, the connection and the request, sends exactly one response through
 * the helpers below and returns its status, which http.c counts in
 * /metrics with the request's latency.  civetweb lives behind this module
 * and the api_* handlers only.
 *
 * Threads: handlers run on civetweb's worker threads (http_threads of
 * them), many at once.
 */
#ifndef KVS_HTTP_H
#define KVS_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <civetweb.h>

#include "node.h"

/* Starts the server on cfg.bind_address:cfg.port and sets node->http.
 * Returns NULL with a message in err when the port cannot be bound or
 * civetweb fails. */
struct http_server *http_start(struct kvs_node *node, char *err, size_t errlen);

/* Stops accepting, waits for running handlers, frees; hs may be NULL. */
void http_stop(struct http_server *hs);

/*
 * Sends one complete response in one write: status line, Content-Type,
 * Content-Length, the extra header lines (each ending "\r\n"; may be NULL)
 * and, unless the request is HEAD, body.  Returns status.
 */
int http_send(struct mg_connection *c, int status, const char *ctype, const char *extra,
	      const char *body, size_t len);

/* Sends {"error": msg} with status; extra headers as above.  Returns status. */
int http_error(struct mg_connection *c, int status, const char *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sends 405 with an Allow header listing allow. */
int http_method_not_allowed(struct mg_connection *c, const char *allow);

/*
 * Reads the whole request body, at most max bytes, into a malloc'd buffer
 * (NUL-terminated; caller frees).  Returns 0, or the HTTP status to answer:
 * 411 (no length), 413 (over max: checked from Content-Length before
 * reading), 408 (the body took longer than http_request_timeout_ms),
 * 400 (short body or read error).
 */
int http_read_body(struct mg_connection *c, size_t max, char **body, size_t *len);

/* The raw (undecoded) request path, without the query string, copied into
 * out.  Returns false if it does not fit. */
bool http_raw_path(struct mg_connection *c, char *out, size_t outlen);

/* Constant-time string equality, for secrets and tokens: the time taken
 * does not depend on where a guess goes wrong. */
bool http_equal_ct(const char *a, const char *b);

#endif
