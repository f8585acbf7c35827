/*
 * server.c - the civetweb server: start/stop, the request entry point,
 * one-write replies (see http.h).
 *
 * The HTTP layer, file by file: server.c (this: civetweb's callbacks and
 * the reply helpers), conn.c (the connection guard: body reader, reaper,
 * connection slots, TCP_DEFER_ACCEPT), routes.c (the one route table and
 * the dispatcher over it), auth.c (access checks and TLS set-up), api_*.c
 * (the handlers).  civetweb is reached from these files only.
 *
 * Every request goes to http_dispatch() through civetweb's begin_request
 * callback, which is part of the start-up options and so is in place from
 * the very first connection (a handler set with mg_set_request_handler()
 * only after mg_start() leaves a window in which civetweb answers requests
 * itself, e.g. 405 to a PUT).  http_dispatch() first refuses ambiguous
 * framing (framing_check()), then hands the raw path to routes_serve(),
 * times it and counts the result in /metrics.  URL decoding in civetweb is
 * turned off (decode_url=no) so that path.c sees the raw path and can
 * refuse an encoded '/' inside a segment.
 *
 * Framing.  civetweb 1.15 reads the first of several Content-Length
 * headers with strtoll() ("1e3", "+1" and "1, 1" all mean 1), lets
 * Transfer-Encoding: chunked override a Content-Length silently, ignores
 * "Transfer-Encoding: identity", and keeps only the first MG_MAX_HEADERS
 * (64) headers, dropping the rest unseen.  A proxy in front of us may read
 * any of those differently (request smuggling), so every request is checked
 * before routing: one Content-Length of 1-19 digits, or one
 * "Transfer-Encoding: chunked", never both, and at most 63 headers (64 kept
 * means some may have been dropped: 431).  A refused request is answered
 * with a JSON error and the connection is closed.  Every reply that says
 * "Connection: close" closes (http_send() disables keep-alive).
 *
 * Requests civetweb drops without a reply.  For "OPTIONS *" and for an
 * absolute-form target ("GET http://host/kv/a") civetweb 1.15 sets no
 * local URI, calls neither begin_request nor http_error and just closes.
 * Its connection_close callback (conn_closed()) still sees the parsed
 * request, so the answer is written there: 200 with Allow for OPTIONS *,
 * 400 for absolute-form (kvs is not a proxy; a target is answered only in
 * origin-form, never routed by the path inside an absolute URI).
 *
 * Start and stop.  http_start() sets node->http before mg_start2() (the
 * callbacks find the server there from the first connection) and clears
 * it on every failure, so a caller never sees a server that did not
 * start; http_stop() stops civetweb first (no callback runs after
 * mg_stop() returns), then the connection guard.
 *
 * Threads: the callbacks and the reply helpers run on civetweb's worker
 * threads; http_start() and http_stop() on the main thread.
 *
 * Performance notes, measured on this kind of machine (DESIGN/issue 2):
 * tcp_nodelay off costs ~40 ms per request (Nagle + delayed ACK) and a reply
 * split over several writes runs ~3x slower, so both are avoided here.
 */
#include "http.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "buf.h"
#include "conn.h"
#include "log.h"
#include "routes.h"

/* ------------------------------------------------------------------ types */

struct http_server {
	struct mg_context *ctx;
	struct kvs_node *node;
	struct conn_guard *guard;       /* slots, body watches, the reaper */
	_Atomic int watchers;           /* watch requests open, at most max_watchers */
	_Atomic int snapshots;          /* snapshot streams running, at most HTTP_SNAPSHOTS_MAX */
	atomic_bool stopping;           /* http_stop() began: watches end */
};

#define RAW_PATH_MAX 8192
#define HEADER_MAX 1024
#define MAX_HEADERS (MG_MAX_HEADERS - 1) /* civetweb keeps MG_MAX_HEADERS; one fewer is safe */

#define REAPED_MSG "request headers not received in time while the server is busy"

/* ---------------------------------------------------------------- replies */

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Unknown";
}

int http_send(struct mg_connection *c, int status, const char *ctype, const char *extra,
	      const char *body, size_t len)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	bool head = ri->request_method && strcmp(ri->request_method, "HEAD") == 0;
	const char *always = conn_slot_header(mg_get_user_connection_data(c));
	char hdr[HEADER_MAX + 512];
	int n;

	/* a reply that says it closes the connection does: civetweb would
	 * otherwise keep reading requests on it */
	if (extra && strcasestr(extra, "Connection: close"))
		mg_disable_keep_alive(c);
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "%s%s\r\n",
		     status, status_text(status), ctype, status == 204 ? 0 : len,
		     always, extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(hdr))
		n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 500 Internal Server Error\r\n"
					       "Content-Length: 0\r\n\r\n");
	if (head || status == 204 || len == 0) {
		mg_write(c, hdr, (size_t)n);
		return status;
	}
	if (len <= 64 * 1024) {
		/* the common case: headers and body in one write */
		char stackbuf[8192], *out = stackbuf;
		size_t total = (size_t)n + len;

		if (total > sizeof(stackbuf) && !(out = malloc(total))) {
			mg_write(c, hdr, (size_t)n);
			mg_write(c, body, len);
			return status;
		}
		memcpy(out, hdr, (size_t)n);
		memcpy(out + n, body, len);
		mg_write(c, out, total);
		if (out != stackbuf)
			free(out);
		return status;
	}
	/* large bodies: two writes cost less than copying a megabyte */
	mg_write(c, hdr, (size_t)n);
	mg_write(c, body, len);
	return status;
}

void http_set_index(struct mg_connection *c, uint64_t index)
{
	char line[48];

	snprintf(line, sizeof(line), "X-Kvs-Index: %llu\r\n", (unsigned long long)index);
	conn_slot_set_header(mg_get_user_connection_data(c), line);
}

/* The headers of a streamed 200 (chunked or ended by the connection). */
static bool stream_headers(struct mg_connection *c, const char *ctype, const char *extra,
			   bool chunked)
{
	char hdr[HEADER_MAX + 512];
	int n;

	mg_disable_keep_alive(c); /* the stream ends with the connection */
	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 200 OK\r\n"
		     "Content-Type: %s\r\n"
		     "Cache-Control: no-cache\r\n"
		     "Connection: close\r\n"
		     "%s%s%s\r\n",
		     ctype, chunked ? "Transfer-Encoding: chunked\r\n" : "",
		     conn_slot_header(mg_get_user_connection_data(c)), extra ? extra : "");
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return false;
	return mg_write(c, hdr, (size_t)n) == n;
}

bool http_stream_start(struct mg_connection *c, const char *ctype, const char *extra)
{
	return stream_headers(c, ctype, extra, false);
}

bool http_chunked_start(struct mg_connection *c, const char *ctype, const char *extra)
{
	return stream_headers(c, ctype, extra, true);
}

bool http_chunk_write(struct mg_connection *c, const char *data, size_t len)
{
	char size[24];
	int n;

	if (len == 0)
		return true; /* an empty chunk would end the body */
	n = snprintf(size, sizeof(size), "%zx\r\n", len);
	return mg_write(c, size, (size_t)n) == n && mg_write(c, data, len) == (int)len &&
	       mg_write(c, "\r\n", 2) == 2;
}

bool http_chunk_end(struct mg_connection *c)
{
	return mg_write(c, "0\r\n\r\n", 5) == 5;
}

bool http_stream_write(struct mg_connection *c, const char *data, size_t len)
{
	return len == 0 || mg_write(c, data, len) == (int)len;
}

/* ----------------------------------------------------------------- watches */

/*
 * A long stream (a watch, a snapshot) takes one of max places counted in
 * *open, and is marked on its connection slot as not a worker held by a
 * slow client: it does not put the server under connection pressure
 * (conn.c), which would cut other clients between keep-alive requests.
 */
static bool stream_begin(struct mg_connection *c, _Atomic int *open, int max)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	if (atomic_fetch_add(open, 1) >= max) {
		atomic_fetch_sub(open, 1);
		return false;
	}
	conn_slot_watch(node->http->guard, mg_get_user_connection_data(c), true);
	return true;
}

static void stream_end(struct mg_connection *c, _Atomic int *open)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	conn_slot_watch(node->http->guard, mg_get_user_connection_data(c), false);
	atomic_fetch_sub(open, 1);
}

bool http_watch_begin(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	return stream_begin(c, &node->http->watchers, node->cfg.max_watchers);
}

void http_watch_end(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	stream_end(c, &node->http->watchers);
}

bool http_watch_over(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct http_server *hs = node->http;

	return atomic_load(&hs->stopping) ||
	       conn_slot_gone(hs->guard, mg_get_user_connection_data(c));
}

int http_watchers(struct kvs_node *node)
{
	return node->http ? atomic_load(&node->http->watchers) : 0;
}

/* --------------------------------------------------------------- snapshots */

bool http_snapshot_begin(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	return stream_begin(c, &node->http->snapshots, HTTP_SNAPSHOTS_MAX);
}

void http_snapshot_end(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	stream_end(c, &node->http->snapshots);
}

int http_error(struct mg_connection *c, int status, const char *extra, const char *fmt, ...)
{
	char msg[512];
	struct buf b;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_init(&b, 4096);
	buf_adds(&b, "{\"error\":");
	buf_json_str(&b, msg, strlen(msg));
	buf_adds(&b, "}\n");
	if (buf_failed(&b))
		http_send(c, status, "application/json", extra, "{\"error\":\"error\"}\n", 18);
	else
		http_send(c, status, "application/json", extra, b.data, b.len);
	buf_release(&b);
	return status;
}

int http_method_not_allowed(struct mg_connection *c, const char *allow)
{
	char extra[128];
	const char *m = mg_get_request_info(c)->request_method;

	if (!m)
		m = "?";

	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	return http_error(c, 405, extra, "method %.16s not allowed here; allowed: %s", m, allow);
}

/* --------------------------------------------------------------- requests */

int http_read_body(struct mg_connection *c, size_t max, char **body, size_t *len)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	return conn_read_body(node->http ? node->http->guard : NULL, c,
			      node->cfg.http_request_timeout_ms, max, body, len);
}

bool http_raw_path(struct mg_connection *c, char *out, size_t outlen)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	const char *u = ri->local_uri_raw ? ri->local_uri_raw : ri->request_uri;
	size_t n;

	if (!u)
		return false;
	n = strcspn(u, "?");
	if (n >= outlen)
		return false;
	memcpy(out, u, n);
	out[n] = '\0';
	return true;
}

/* A Content-Length value: 1 to 19 ASCII digits, then optional blanks (RFC
 * 9110 field values may end in whitespace; civetweb strips leading ones). */
static bool length_valid(const char *v)
{
	size_t digits = strspn(v, "0123456789");

	return digits >= 1 && digits <= 19 && v[digits + strspn(v + digits, " \t")] == '\0';
}

/*
 * Refuses request framing that another HTTP parser could read differently
 * (see "Framing" in the design comment).  Returns 0, or the status to
 * answer (400, 431 or 501) with *why set to the reason.
 */
/*
 * True if civetweb read the whole header block.  Its parser stops, without
 * an error, at a line that starts with a space, a tab, ':' or a byte above
 * 0x7e (obsolete line folding and the like) and drops every header after
 * it, a Content-Length included, so that the rest of the block would be
 * read as a body or as the next request.  The parser ends each line it
 * takes with NULs where "\r\n" was (and the request's last "\n" too):
 * the block is whole unless what follows the last line taken is a byte
 * that made the parser stop.
 */
static bool headers_whole(const struct mg_request_info *ri)
{
	const char *last = ri->num_headers > 0 ? ri->http_headers[ri->num_headers - 1].value
					       : ri->http_version;
	const char *p;
	unsigned char c;

	if (!last)
		return true; /* nothing to check against: civetweb parsed no line */
	p = last + strlen(last);
	for (int nul = 0; nul < 2 && *p == '\0'; nul++)
		p++;
	c = (unsigned char)*p;
	/* what stops civetweb's parser besides the empty line: a byte that
	 * cannot start a header name.  (A body sent after bare-LF line ends
	 * and starting with such a byte is refused too: it cannot be told
	 * apart.) */
	return c == '\r' || c == '\n' || c == '\0' || (c > ' ' && c < 0x7f && c != ':');
}

static int framing_check(const struct mg_request_info *ri, const char **why)
{
	const char *cl = NULL, *te = NULL;
	int ncl = 0, nte = 0;

	if (ri->num_headers > MAX_HEADERS) {
		*why = "too many headers: a request may carry at most 63";
		return 431;
	}
	if (!headers_whole(ri)) {
		*why = "malformed header line (folded, or not a header): headers after it would be lost";
		return 400;
	}
	for (int i = 0; i < ri->num_headers; i++) {
		const struct mg_header *h = &ri->http_headers[i];

		if (!h->name || !h->value)
			continue;
		if (strcasecmp(h->name, "Content-Length") == 0) {
			ncl++;
			cl = h->value;
		} else if (strcasecmp(h->name, "Transfer-Encoding") == 0) {
			nte++;
			te = h->value;
		}
	}
	if (ncl > 1) {
		*why = "more than one Content-Length header";
		return 400;
	}
	if (nte > 1) {
		*why = "more than one Transfer-Encoding header";
		return 400;
	}
	if (cl && te) {
		*why = "Content-Length together with Transfer-Encoding";
		return 400;
	}
	if (cl && !length_valid(cl)) {
		*why = "malformed Content-Length: 1 to 19 digits expected";
		return 400;
	}
	if (te && strcasecmp(te, "chunked") != 0) {
		*why = "unsupported Transfer-Encoding: only chunked is accepted";
		return 501;
	}
	return 0;
}

/* An origin-form target starts with '/'; anything else that reaches us
 * (absolute-form, or "*" outside OPTIONS) is not routed. */
static bool origin_form(const struct mg_request_info *ri)
{
	return ri->request_uri && ri->request_uri[0] == '/';
}

/*
 * Answers a request civetweb dropped without calling begin_request (see the
 * design comment): OPTIONS * gets 200 and the methods some route allows,
 * an absolute-form target 400; the connection closes after either.
 */
static void answer_dropped(struct mg_connection *c, const struct mg_request_info *ri)
{
	static const char allow_json[] =
		"{\"allow\":[\"GET\",\"HEAD\",\"PUT\",\"DELETE\",\"POST\"]}\n";

	if (strcmp(ri->request_uri, "*") == 0 && strcmp(ri->request_method, "OPTIONS") == 0)
		http_send(c, 200, "application/json",
			  "Allow: " ROUTES_ALLOW_ANY "\r\nConnection: close\r\n",
			  allow_json, sizeof(allow_json) - 1);
	else if (strcmp(ri->request_uri, "*") == 0)
		http_error(c, 400, "Connection: close\r\n", "request target * is only for OPTIONS");
	else
		http_error(c, 400, "Connection: close\r\n",
			   "absolute-form request target not supported (kvs is not a proxy): "
			   "send the path only");
}

/* ------------------------------------------------------ civetweb callbacks */

/* begin_request: every request civetweb parsed, on its worker.  Returns
 * the status sent (non-zero: civetweb does nothing more with it). */
static int http_dispatch(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct http_server *hs = node->http;
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct conn_slot *slot = mg_get_user_connection_data(c);
	uint64_t start = conn_now_us();
	char path[RAW_PATH_MAX];
	enum metrics_route metric = ROUTE_OTHER;
	const char *why = NULL;
	int status;

	if (conn_slot_busy(hs->guard, slot, true)) {
		status = http_error(c, 408, "Connection: close\r\n", REAPED_MSG);
	} else if ((status = framing_check(ri, &why)) != 0) {
		status = http_error(c, status, "Connection: close\r\n", "%s", why);
	} else if (!origin_form(ri)) {
		/* civetweb routes an absolute-form target naming our own port and
		 * domain by its path; kvs answers every absolute-form alike */
		answer_dropped(c, ri);
		status = 400;
	} else if (!http_raw_path(c, path, sizeof(path))) {
		status = http_error(c, 400, "Connection: close\r\n", "request path too long");
	} else {
		status = routes_serve(node, c, ri, path, &metric);
	}
	metrics_request(&node->metrics, metric, ri->request_method, status,
			conn_now_us() - start);
	conn_slot_set_header(slot, NULL);
	conn_slot_set_token(slot, -1);
	conn_slot_busy(hs->guard, slot, false);
	return status;
}

/*
 * http_error: civetweb answers some requests itself, before any handler (a
 * malformed request line, headers too large, a Transfer-Encoding it does
 * not know, a Content-Length strtoll() cannot read...): keep those JSON
 * too, with the status and reason framing_check() gives when it applies,
 * and 408 for a connection the reaper cut while it waited for headers.
 * Returns 0: handled here.
 */
static int civetweb_error(struct mg_connection *c, int status, const char *msg)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct conn_slot *slot = mg_get_user_connection_data(c);
	const char *why = NULL;
	int st;

	conn_slot_set_answered(slot); /* conn_closed() must not answer again */
	mg_disable_keep_alive(c); /* the request was not understood: start afresh */
	if (node->http && conn_slot_reaped(node->http->guard, slot)) {
		http_error(c, 408, "Connection: close\r\n", REAPED_MSG);
		return 0;
	}
	/* headers parsed (num_headers may be -1 after a parse error) */
	if (ri && ri->request_method && ri->num_headers > 0 &&
	    (st = framing_check(ri, &why)) != 0) {
		http_error(c, st, "Connection: close\r\n", "%s", why);
		return 0;
	}
	http_error(c, status, "Connection: close\r\n", "%s", msg && msg[0] ? msg : "bad request");
	return 0;
}

static int log_civetweb(const struct mg_connection *c, const char *msg)
{
	(void)c;
	/* civetweb's messages quote the request line: network bytes */
	log_warn_limited("http_error", "msg=\"%s\"", LOG_ESC(msg));
	return 1;
}

/* init_connection, on the worker about to serve a new connection: gives
 * it a slot of the guard.  Returns 0 (keep the connection). */
static int conn_opened(const struct mg_connection *c, void **conn_data)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));

	*conn_data = node->http ? conn_slot_open(node->http->guard, c) : NULL;
	return 0;
}

/*
 * connection_close, on the worker before the socket is closed: answers a
 * request civetweb parsed but dropped without a reply (see the design
 * comment), then frees the slot.
 */
static void conn_closed(const struct mg_connection *cc)
{
	/* civetweb passes its own (mutable) connection; the callback type only
	 * says const.  Writing the reply needs the non-const pointer. */
	struct mg_connection *c = (struct mg_connection *)cc;
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct conn_guard *guard = node->http ? node->http->guard : NULL;
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct conn_slot *slot = mg_get_user_connection_data(c);

	/* request_uri is reset before each request is read, and local_uri is
	 * set for every request civetweb routes to begin_request: a parsed
	 * request without local_uri was dropped, unless http_error answered */
	if (slot && ri && !conn_slot_answered(slot) && ri->request_method && ri->request_uri &&
	    ri->http_version && !ri->local_uri) {
		conn_slot_busy(guard, slot, true);
		answer_dropped(c, ri);
	}
	conn_slot_close(guard, slot);
}

/* ------------------------------------------------------------- start/stop */

struct http_server *http_start(struct kvs_node *node, char *err, size_t errlen)
{
	struct http_server *hs = calloc(1, sizeof(*hs));
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data errd;
	char ports[128], threads[16], errtext[256] = "", req_to[16], idle_to[16];
	bool tls = node->cfg.tls_cert_file[0] != '\0';

	node->http = NULL;
	if (!hs || !(hs->guard = conn_guard_new(node->cfg.http_threads, node->cfg.max_watchers,
						   node->cfg.port))) {
		snprintf(err, errlen, "out of memory");
		goto out_free;
	}
	/* a civetweb without TLS would only fail later; say so before starting */
	if (tls && !mg_check_feature(MG_FEATURES_TLS)) {
		snprintf(err, errlen, "this civetweb has no TLS support");
		goto out_free;
	}
	hs->node = node;
	snprintf(ports, sizeof(ports), "%s:%d%s", node->cfg.bind_address, node->cfg.port,
		 tls ? "s" : "");
	/* watch requests hold a worker each: they get max_watchers of their own */
	snprintf(threads, sizeof(threads), "%d", node->cfg.http_threads + node->cfg.max_watchers);
	snprintf(req_to, sizeof(req_to), "%d", node->cfg.http_request_timeout_ms);
	snprintf(idle_to, sizeof(idle_to), "%d", node->cfg.http_idle_timeout_ms);
	const char *options[] = {
		"listening_ports", ports,
		"num_threads", threads,
		"enable_keep_alive", "yes",
		"tcp_nodelay", "1",
		"decode_url", "no",
		/* a worker serves one connection at a time: idle and slow clients
		 * are cut after these so they cannot hold every worker for long */
		"keep_alive_timeout_ms", idle_to,
		"request_timeout_ms", req_to,
		"max_request_size", "16384",
		"listen_backlog", "1024",
		"connection_queue", "1024",
		/* civetweb loads its TLS library only when this is set; the
		 * certificate and key themselves are loaded by auth_tls_init() */
		tls ? "ssl_certificate" : NULL, node->cfg.tls_cert_file,
		NULL, NULL,
	};

	memset(&cb, 0, sizeof(cb));
	cb.begin_request = http_dispatch;
	cb.log_message = log_civetweb;
	cb.http_error = civetweb_error;
	cb.init_connection = conn_opened;
	cb.connection_close = conn_closed;
	if (tls)
		cb.init_ssl = auth_tls_init;
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.user_data = node;
	init.configuration_options = options;
	memset(&errd, 0, sizeof(errd));
	errd.text = errtext;
	errd.text_buffer_size = sizeof(errtext);

	mg_init_library(tls ? MG_FEATURES_TLS : 0);
	node->http = hs; /* before the first request can need it (http_read_body) */
	hs->ctx = mg_start2(&init, &errd);
	if (!hs->ctx) {
		snprintf(err, errlen, "cannot start HTTP server on %s: %s", ports,
			 errtext[0] ? errtext : "unknown error");
		goto out_exit_library;
	}
	conn_defer_accept(node->cfg.port, node->cfg.http_request_timeout_ms);
	conn_guard_start(hs->guard);
	return hs;

out_exit_library:
	node->http = NULL;
	mg_exit_library();
out_free:
	if (hs)
		conn_guard_free(hs->guard);
	free(hs);
	return NULL;
}

/*
 * civetweb's master thread notices the stop flag only when its poll() on the
 * listening socket returns, which takes up to two seconds when idle.  While
 * mg_stop() waits for it, this thread knocks on our own port every 20 ms so
 * that poll() returns at once: shutdown takes milliseconds instead.
 */
struct knocker {
	int port;
	char host[64];
	atomic_bool done;
};

static void *knock(void *arg)
{
	struct knocker *k = arg;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)k->port) };

	if (inet_pton(AF_INET, k->host, &sa.sin_addr) != 1 || sa.sin_addr.s_addr == INADDR_ANY)
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	while (!atomic_load(&k->done)) {
		struct timespec pause = { 0, 20 * 1000000 };
		nanosleep(&pause, NULL);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0) {
			connect(fd, (struct sockaddr *)&sa, sizeof(sa));
			close(fd);
		}
	}
	return NULL;
}

void http_stop(struct http_server *hs)
{
	struct knocker k = { .port = 0 };
	pthread_t t;
	bool knocking;

	if (!hs)
		return;
	k.port = hs->node->cfg.port;
	snprintf(k.host, sizeof(k.host), "%s", hs->node->cfg.bind_address);
	/* open watches end now, rather than hold mg_stop() for their wait */
	atomic_store(&hs->stopping, true);
	hub_kick_all(store_hub(hs->node->store));
	conn_guard_drain(hs->guard); /* idle keep-alives must not hold mg_stop() */
	knocking = pthread_create(&t, NULL, knock, &k) == 0;
	mg_stop(hs->ctx);
	atomic_store(&k.done, true);
	if (knocking)
		pthread_join(t, NULL);
	hs->node->http = NULL; /* no callback runs any more */
	conn_guard_free(hs->guard);
	mg_exit_library();
	free(hs);
}
