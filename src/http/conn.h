/*
 * conn.h - the connection guard: keeps slow and idle clients from holding
 * civetweb's workers (conn.c explains the policy).
 *
 * One guard per server, made by server.c before civetweb starts and freed
 * after it stops.  It owns the reaper thread, one slot per worker
 * (the connection that worker serves now) and the list of request bodies
 * being read.  server.c feeds it from civetweb's callbacks: a slot is
 * opened when a worker takes a connection (init_connection), marked busy
 * while a request is handled (begin_request), closed with the connection
 * (connection_close).
 *
 * Threads: every conn_slot_* and conn_read_body call runs on the worker
 * that owns the slot or reads the body; the reaper runs on its own thread.
 * One lock (the guard's, "the HTTP reaper lock" of node.h) guards the
 * slots and the body list; it is a leaf.
 */
#ifndef KVS_HTTP_CONN_H
#define KVS_HTTP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <civetweb.h>

struct conn_guard;
struct conn_slot;

/*
 * A guard for the workers + watchers worker threads of the server
 * listening on port (the reaper shuts down only sockets accepted there):
 * the pressure rule counts `workers` (watch requests hold the others).
 * Nothing runs until conn_guard_start().  Returns NULL when out of memory;
 * free with conn_guard_free().
 */
struct conn_guard *conn_guard_new(int workers, int watchers, int port);

/* Starts the reaper thread.  If it cannot start, logs it and carries on:
 * civetweb's own timeouts still close idle connections. */
void conn_guard_start(struct conn_guard *g);

/*
 * The server is stopping: from the reaper's next tick on, every connection
 * waiting for request headers (idle keep-alives, peers' included) is cut at
 * once, so that none holds a worker, and so mg_stop(), for civetweb's
 * two-second poll quantum.  Requests being handled finish.  g may be NULL.
 */
void conn_guard_drain(struct conn_guard *g);

/* Stops and joins the reaper (if started) and frees g; g may be NULL.
 * Call only once civetweb has stopped: no slot or body may be in use. */
void conn_guard_free(struct conn_guard *g);

/*
 * Sets TCP_DEFER_ACCEPT (timeout_ms, rounded up to seconds) on the
 * listening socket of port, found among this process's descriptors: a
 * connection reaches a worker only once it has sent something.  Logs and
 * carries on if no such socket is found.
 */
void conn_defer_accept(int port, int timeout_ms);

/*
 * Gives the connection c, just taken by a worker, a slot: waiting for
 * request headers from now.  Returns the slot (kept as civetweb's
 * connection data until conn_slot_close()), or NULL if every slot is
 * held (civetweb ran more workers than nslots): such a connection is not
 * guarded, and every conn_slot_* call accepts NULL and does nothing.
 */
struct conn_slot *conn_slot_open(struct conn_guard *g, const struct mg_connection *c);

/* Frees slot, as its connection closes. */
void conn_slot_close(struct conn_guard *g, struct conn_slot *slot);

/*
 * Marks slot's request as being handled (busy true) or, once answered,
 * the connection as waiting for the next request's headers from now.
 * Returns whether the reaper has cut the connection (its headers arrived
 * as it was shut down): the caller then answers 408.
 */
bool conn_slot_busy(struct conn_guard *g, struct conn_slot *slot, bool busy);

/*
 * Marks slot's request as a watch (on) or not: a watch does not count as
 * a held worker for the pressure rule, and the reaper polls its socket
 * about once a second to notice a client that went away.
 */
void conn_slot_watch(struct conn_guard *g, struct conn_slot *slot, bool on);
/* Whether a watching slot's client closed or reset its connection. */
bool conn_slot_gone(struct conn_guard *g, struct conn_slot *slot);

/* Sets the header line (ending "\r\n"; NULL or too long: none) every reply
 * to slot's current request carries, and reads it ("" without a slot).
 * Worker thread only. */
void conn_slot_set_header(struct conn_slot *slot, const char *line);
const char *conn_slot_header(const struct conn_slot *slot);

/* The configured token (index) the current request proved, -1 for none:
 * set by auth_check, reset with the header after each request.  Worker
 * thread only. */
void conn_slot_set_token(struct conn_slot *slot, int token);
int conn_slot_token(const struct conn_slot *slot);

/* Whether the reaper has cut slot's connection while it waited for headers. */
bool conn_slot_reaped(struct conn_guard *g, struct conn_slot *slot);

/* Records, and tells, that civetweb itself answered the connection's
 * request (its http_error callback): no second reply is to be written.
 * Worker thread only; no lock. */
void conn_slot_set_answered(struct conn_slot *slot);
bool conn_slot_answered(const struct conn_slot *slot);

/*
 * Reads the whole request body of c, at most max bytes, into a malloc'd
 * NUL-terminated buffer (caller frees), watched by the reaper so that it
 * cannot take longer than timeout_ms.  g may be NULL (no watch).  Returns
 * 0, or the HTTP status to answer: 411 (no length), 413 (over max),
 * 408 (too slow), 400 (short body), 500 (out of memory).
 */
int conn_read_body(struct conn_guard *g, struct mg_connection *c, int timeout_ms, size_t max,
		   char **body, size_t *len);

/* The monotonic clock in microseconds.  Any thread. */
uint64_t conn_now_us(void);

#endif
