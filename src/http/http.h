/*
 * http.h - the HTTP layer's face to the rest of kvs: start/stop of the
 * civetweb server, and the helpers handlers answer with (replies sent in
 * a single write, the request body, the raw path).
 *
 * Inside the layer: server.c (civetweb's callbacks, these helpers),
 * conn.h (the connection guard), routes.h (the one route table: every
 * path, its methods, handler and access), auth.h (access checks, TLS),
 * api.h (the handlers).  Every handler gets the node, the connection and
 * the request, sends exactly one response through the helpers below and
 * returns its status, which is counted in /metrics with the request's
 * latency.  civetweb lives behind this layer only.
 *
 * Threads: handlers run on civetweb's worker threads (http_threads of
 * them), many at once, each on a stack of HTTP_WORKER_STACK_BYTES.
 *
 * What every request goes through before its handler (server.c explains why):
 *  - framing: at most one Content-Length, of 1 to 19 digits; at most one
 *    Transfer-Encoding, exactly "chunked"; never both; at most 63 headers
 *    (civetweb keeps 64 and silently drops the rest, so 64 is refused with
 *    431).  Refused with 400, 431 or 501 and a JSON error, and the
 *    connection closed.
 *  - the target: origin-form only.  "OPTIONS *" gets 200 with Allow; an
 *    absolute-form target ("GET http://host/kv/a") gets 400.  Both close.
 *  - the route (routes.c): 404 without one; the caller's access (bearer
 *    token, or cluster id and secret) checked before anything else about
 *    the route is revealed; 405 with Allow for a method it does not serve.
 *  - a reply carrying "Connection: close" in its extra headers closes the
 *    connection (http_send() disables keep-alive).
 *
 * Connection pressure (conn.c): the listening socket has TCP_DEFER_ACCEPT
 * (a connection that sends nothing reaches no worker for about
 * http_request_timeout_ms), and while more than half of the workers hold
 * a connection, connections that have waited for request headers (or,
 * between keep-alive requests, for the next request) longer than 250 ms
 * are shut down: all those of an address holding more than an eighth of
 * the workers, then others, oldest first, until at most half of the
 * workers are held.  One with part of a request gets 408.  Without
 * pressure only civetweb's timeouts (http_request_timeout_ms,
 * http_idle_timeout_ms) close idle connections.
 */
#ifndef KVS_HTTP_H
#define KVS_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>

#include "node.h"

/*
 * The stack size of civetweb's worker threads, where every handler runs:
 * 100 KiB.  Debian's libcivetweb1 1.15 is built with CMake, whose
 * CIVETWEB_THREAD_STACK_SIZE defaults to 102400 and becomes USE_STACK_SIZE:
 * mg_start_thread_with_id() calls pthread_attr_setstacksize(&attr, 102400)
 * (objdump of the shipped .so: mov $0x19000,%esi before both calls), so it
 * is fixed when civetweb is built and pthread_setattr_default_np() cannot
 * change it; pthread_getattr_np() in a handler reports 102400.  glibc
 * keeps the thread descriptor and static TLS inside that size, so a little
 * less is usable.  Handlers and everything they call must fit (fuzz
 * targets run on a thread of this size).
 */
#define HTTP_WORKER_STACK_BYTES (100 * 1024)

/*
 * Starts the server on cfg.bind_address:cfg.port (TLS when tls_cert_file
 * is set) and sets node->http to it.  Returns the server, or NULL with a
 * message in err (out of memory, a civetweb without TLS, the port cannot
 * be bound, the certificate or key cannot be loaded): then nothing is
 * left running and node->http is NULL, so there is nothing to stop.
 * Main thread.
 */
struct http_server *http_start(struct kvs_node *node, char *err, size_t errlen);

/* Stops accepting, waits for running handlers, frees hs and sets
 * node->http to NULL; hs may be NULL.  Main thread. */
void http_stop(struct http_server *hs);

/*
 * Sends one complete response in one write: status line, Content-Type,
 * Content-Length, the extra header lines (each ending "\r\n"; may be NULL)
 * and, unless the request is HEAD, body.  If extra contains
 * "Connection: close", civetweb closes the connection after this reply
 * instead of reading another request on it.  Returns status.
 */
int http_send(struct mg_connection *c, int status, const char *ctype, const char *extra,
	      const char *body, size_t len);

/*
 * Makes every reply to c's current request carry "X-Kvs-Index: index"
 * (the routes that serve data set it before their handler; writers set it
 * again after the write).  Worker thread.
 */
void http_set_index(struct mg_connection *c, uint64_t index);

/*
 * A streamed reply (Server-Sent Events): http_stream_start() sends 200 with
 * Content-Type ctype, no length, "Connection: close" and the extra header
 * lines; http_stream_write() sends more of the body.  Both return false
 * once the client is gone.  The connection closes after the handler.
 */
bool http_stream_start(struct mg_connection *c, const char *ctype, const char *extra);
bool http_stream_write(struct mg_connection *c, const char *data, size_t len);

/*
 * A streamed reply whose end the client can tell from a cut: the same
 * headers with "Transfer-Encoding: chunked"; http_chunk_write() sends one
 * chunk (nothing for len 0), http_chunk_end() the last, empty one — only
 * when the body is whole, so a stream that stops early is an error to
 * any HTTP client, not a short file.  False once the client is gone.
 */
bool http_chunked_start(struct mg_connection *c, const char *ctype, const char *extra);
bool http_chunk_write(struct mg_connection *c, const char *data, size_t len);
bool http_chunk_end(struct mg_connection *c);

/*
 * Watch requests (api_watch.c).  http_watch_begin() takes one of the
 * node's max_watchers places for c's request (false: all are taken);
 * http_watch_end() gives it back.  Between the two, http_watch_over() says
 * whether to stop waiting: the client went away (noticed within about a
 * second) or the server is stopping.  http_watchers(): places taken now.
 */
bool http_watch_begin(struct mg_connection *c);
void http_watch_end(struct mg_connection *c);
bool http_watch_over(struct mg_connection *c);
int http_watchers(struct kvs_node *node);

/*
 * Snapshot streams (api_admin.c): each holds a worker and a RocksDB
 * snapshot for as long as its client reads, so at most HTTP_SNAPSHOTS_MAX
 * run at once.  http_snapshot_begin() takes a place for c's request (false:
 * all are taken); http_snapshot_end() gives it back.
 */
#define HTTP_SNAPSHOTS_MAX 2
bool http_snapshot_begin(struct mg_connection *c);
void http_snapshot_end(struct mg_connection *c);

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

#endif
