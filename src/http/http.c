/*
 * http.c - civetweb server, route table, one-write replies (see http.h).
 *
 * Every request goes to http_dispatch() through civetweb's begin_request
 * callback, which is part of the start-up options and so is in place from
 * the very first connection (a handler set with mg_set_request_handler()
 * only after mg_start() leaves a window in which civetweb answers requests
 * itself, e.g. 405 to a PUT).  http_dispatch() first refuses ambiguous
 * framing (framing_check()), then looks the raw path up in `routes` (the
 * one place routes are registered), times the handler and counts the
 * result in /metrics.  URL decoding in civetweb is turned off
 * (decode_url=no) so that path.c sees the raw path and can
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
 * Its connection_close callback (conn_close()) still sees the parsed
 * request, so the answer is written there: 200 with Allow for OPTIONS *,
 * 400 for absolute-form (kvs is not a proxy; a target is answered only in
 * origin-form, never routed by the path inside an absolute URI).
 *
 * Connection pressure (finding M4).  civetweb serves one connection per
 * worker thread (http_threads of them) for as long as it stays open, and
 * queues accepted connections behind busy workers: a few hundred
 * connections that send nothing, or a byte a second, used to hold every
 * worker for the request timeout and make every other client wait 10-20 s.
 * Two defences:
 *  - TCP_DEFER_ACCEPT on the listening socket: the kernel hands a
 *    connection to civetweb only once its first bytes arrive (or after
 *    about http_request_timeout_ms), so silent connections hold no worker
 *    and no queue slot for that long.
 *  - The reaper: each worker's connection has a slot (struct conn_slot,
 *    set up by civetweb's init_connection callback, released by
 *    connection_close) saying whether a request is being handled (from
 *    begin_request to its end) or, if not, since when the connection has
 *    been waiting for request headers.  When more than half of the workers
 *    hold a connection ("pressure"), the reaper shuts down the read side of
 *    the connections that have waited for headers longer than
 *    REAP_GRACE_MS: every such connection of an address holding more than
 *    an eighth of the workers, and then others, oldest first, only until
 *    no more than half of the workers are held.  A reaped connection with
 *    part of a request gets 408; one that sent nothing is just closed.
 *    Without pressure nothing is cut before civetweb's own timeouts, so
 *    idle keep-alive connections between peers are left alone.
 *
 * Slow bodies.  The same reaper ends body reads past their deadline (see
 * "slow bodies" below).
 *
 * Threads and locks: handlers, init_connection, connection_close and
 * http_error run on civetweb's worker threads; the reaper on its own
 * thread.  reap_lock guards the body watches and the connection slots; the
 * reaper looks sockets up and shuts them down while holding it, so no
 * connection it targets can be closed (and its descriptor reused) meanwhile.
 *
 * Performance notes, measured on this kind of machine (DESIGN/issue 2):
 * tcp_nodelay off costs ~40 ms per request (Nagle + delayed ACK) and a reply
 * split over several writes runs ~3x slower, so both are avoided here.
 */
#include "http.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "api.h"
#include "buf.h"
#include "kvs.h"
#include "log.h"

/* ------------------------------------------------------------------ types */

typedef int (*handler_fn)(struct kvs_node *, struct mg_connection *,
			  const struct mg_request_info *, const char *raw_path);

/* Who may call a route when auth_tokens are configured. */
enum route_auth {
	AUTH_OPEN,    /* anyone (/health) */
	AUTH_CLIENT,  /* a bearer token: read scope for GET/HEAD, write scope otherwise */
	AUTH_PEER,    /* peers: checked by api_peer.c with the cluster secret */
};

struct route {
	const char *path;         /* exact path, or prefix when prefix is true */
	bool prefix;              /* match path as a prefix */
	enum metrics_route metric;
	enum route_auth auth;
	handler_fn fn;
};

/*
 * A body being read, watched by the reaper (see "slow bodies" below).
 * Entries live in the reading handler's stack frame, linked under
 * reap_lock.
 */
struct body_watch {
	struct body_watch *next, **pprev; /* pprev: the pointer to this entry, for O(1) removal */
	uint32_t ip;                /* client address, network order */
	uint16_t port;              /* client port, network order */
	uint64_t deadline_us;       /* monotonic */
	bool reaped;
};

/*
 * The connection one civetweb worker serves now (see "connection pressure"
 * above).  One per worker, handed out by conn_open() and kept as the
 * connection's user data; fields marked (lock) are guarded by reap_lock,
 * the others belong to the worker thread.
 */
struct conn_slot {
	bool used;               /* (lock) a worker holds a connection in this slot */
	bool busy;               /* (lock) a request is being handled */
	bool reaped;             /* (lock) shut down by the reaper while waiting for headers */
	bool answered;           /* civetweb sent an error reply (http_error callback) */
	const struct mg_connection *conn; /* (lock) civetweb's connection, while used */
	uint32_t ip;             /* (lock) client address, network order; 0 until known */
	uint16_t port;           /* (lock) client port, network order */
	uint64_t since_us;       /* (lock) monotonic: began waiting for request headers */
};

struct http_server {
	struct mg_context *ctx;
	struct kvs_node *node;
	pthread_mutex_t reap_lock;      /* guards watches, slots[], slots_used */
	struct body_watch *watches;     /* bodies being read now */
	struct conn_slot *slots;        /* one per worker (nslots = http_threads) */
	int nslots;
	int slots_used;                 /* slots with used set: workers holding a connection */
	pthread_t reaper;
	bool reaper_started;
	atomic_bool stopping;
};

/* A socket the reaper is to shut down, found by its client address. */
struct reap_target {
	uint32_t ip;            /* network order */
	uint16_t port;          /* network order */
	int how;                /* SHUT_RD */
};

#define RAW_PATH_MAX 8192
#define HEADER_MAX 1024

#define REAP_TICK_MS 50    /* the reaper looks at watches and slots this often */
#define REAP_GRACE_MS 250  /* under pressure, waiting for headers longer than this is cut */
#define MAX_HEADERS (MG_MAX_HEADERS - 1) /* civetweb keeps MG_MAX_HEADERS; one fewer is safe */

#define REAPED_MSG "request headers not received in time while the server is busy"

/* Methods some route answers: the Allow of "OPTIONS *". */
#define ALLOW_ANY "GET, HEAD, PUT, DELETE, POST"

/* ------------------------------------------------------------------ routes */

/* Looked up in order: the first match wins. */
static const struct route routes[] = {
	{ "/kv", false, ROUTE_KV_LIST, AUTH_CLIENT, api_kv },
	{ "/kv/", true, ROUTE_KV, AUTH_CLIENT, api_kv },
	{ "/health", false, ROUTE_HEALTH, AUTH_OPEN, api_health },
	{ "/metrics", false, ROUTE_METRICS, AUTH_CLIENT, api_metrics },
	{ "/members", false, ROUTE_MEMBERS, AUTH_CLIENT, api_members },
	{ "/members/", false, ROUTE_MEMBERS, AUTH_CLIENT, api_members },
	{ "/members/leave", false, ROUTE_MEMBERS, AUTH_CLIENT, api_peer },
	{ "/members/", true, ROUTE_PEER, AUTH_PEER, api_peer },
};

static const struct route *route_find(const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		if (r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0
			      : strcmp(path, r->path) == 0)
			return r;
	}
	return NULL;
}

static uint64_t now_us(void);

/* ----------------------------------------------------------------- replies */

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
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
		     "%s\r\n",
		     status, status_text(status), ctype, status == 204 ? 0 : len,
		     extra ? extra : "");
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

/* ------------------------------------------------------------ slow bodies */

/*
 * civetweb's request timeout applies to each recv(), and mg_read() loops
 * until it has every byte asked for: a client dripping its body a byte a
 * second would hold a worker forever.  So each body read is registered
 * with a deadline (http_request_timeout_ms); the reaper thread shuts down
 * the socket of a read past its deadline, which ends the blocked mg_read()
 * at once, and the handler answers 408.  civetweb exposes no socket, so the
 * reaper finds it by the client's address among this process's sockets;
 * it does so under reap_lock, while the handler cannot have returned, so
 * the descriptor cannot have been reused.
 */

/*
 * Shuts down the sockets of targets[0..n) (accepted on our HTTP port and
 * connected to that client address), each with its how.  civetweb exposes
 * no socket, so this walks this process's descriptors (/proc/self/fd, or
 * every number below the limit if /proc is missing) once for all targets.
 * Called with reap_lock held: see the design comment.
 */
static void shutdown_targets(int local_port, const struct reap_target *targets, size_t n)
{
	DIR *d = opendir("/proc/self/fd");
	int max = (int)sysconf(_SC_OPEN_MAX);
	size_t done = 0;

	for (int i = 3; done < n; i++) {
		struct sockaddr_in peer, local;
		socklen_t pl = sizeof(peer), ll = sizeof(local);
		int fd = i;

		if (d) {
			struct dirent *e = readdir(d);
			if (!e)
				break;
			if (e->d_name[0] < '0' || e->d_name[0] > '9' || (fd = atoi(e->d_name)) == dirfd(d))
				continue;
		} else if (i >= max || i >= 65536) {
			break;
		}
		if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || peer.sin_family != AF_INET)
			continue;
		for (size_t t = 0; t < n; t++) {
			if (peer.sin_addr.s_addr != targets[t].ip || peer.sin_port != targets[t].port)
				continue;
			if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0 &&
			    ntohs(local.sin_port) == local_port) {
				/* SHUT_RD ends a blocked read at once; a reply can still be written */
				shutdown(fd, targets[t].how);
				done++;
			}
			break;
		}
	}
	if (d)
		closedir(d);
}

/* ------------------------------------------------------ connection pressure */

/*
 * civetweb's init_connection callback, on the worker about to serve a new
 * connection: gives it a slot, waiting for headers from now.  The client
 * address is not readable yet (civetweb answers mg_get_request_info() only
 * once it reads a request): slot_addr() fills it in later.  Returns 0
 * (keep the connection).
 */
static int conn_open(const struct mg_connection *c, void **conn_data)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct http_server *hs = node->http;
	struct conn_slot *slot = NULL;

	*conn_data = NULL;
	if (!hs || !hs->slots)
		return 0;
	pthread_mutex_lock(&hs->reap_lock);
	for (int i = 0; i < hs->nslots && !slot; i++)
		if (!hs->slots[i].used)
			slot = &hs->slots[i];
	if (slot) {
		*slot = (struct conn_slot){ .used = true, .conn = c, .since_us = now_us() };
		hs->slots_used++;
	}
	pthread_mutex_unlock(&hs->reap_lock);
	*conn_data = slot; /* NULL only if civetweb ran more workers than http_threads */
	return 0;
}

/*
 * Fills in slot's client address once civetweb lets it be read, which is
 * from the moment the worker starts reading the first request (right after
 * conn_open()).  remote_addr and remote_port are set before
 * init_connection and not changed while the connection lasts, and the slot
 * is used (so the connection open) while reap_lock is held;
 * mg_get_request_info() itself only tests the connection's type, a flag
 * the worker sets as it starts reading each request (a benign race: until
 * it is set, NULL and another try next tick).  Returns whether the address
 * is known.  Called with reap_lock held, on the reaper.
 */
static bool slot_addr(struct conn_slot *slot)
{
	const struct mg_request_info *ri;

	if (slot->ip)
		return true;
	if (!(ri = mg_get_request_info(slot->conn)) ||
	    inet_pton(AF_INET, ri->remote_addr, &slot->ip) != 1) {
		slot->ip = 0;
		return false;
	}
	slot->port = htons((uint16_t)ri->remote_port);
	return true;
}

/*
 * Marks the connection's request as being handled (busy) or, once done, the
 * connection as waiting for the next request's headers from now.  Returns
 * whether the reaper has cut the connection (its headers completed just as
 * it was shut down): the caller then answers 408.
 */
static bool conn_busy(struct http_server *hs, struct conn_slot *slot, bool busy)
{
	bool reaped;

	if (!slot)
		return false;
	pthread_mutex_lock(&hs->reap_lock);
	slot->busy = busy;
	slot->since_us = now_us();
	reaped = slot->reaped;
	pthread_mutex_unlock(&hs->reap_lock);
	return reaped;
}

static bool conn_reaped(struct http_server *hs, struct conn_slot *slot)
{
	bool r = false;

	if (slot) {
		pthread_mutex_lock(&hs->reap_lock);
		r = slot->reaped;
		pthread_mutex_unlock(&hs->reap_lock);
	}
	return r;
}

static void answer_dropped(struct mg_connection *c, const struct mg_request_info *ri);

/*
 * civetweb's connection_close callback, called on the worker before the
 * socket is closed: answers a request civetweb parsed but dropped without
 * a reply (see the design comment), then frees the slot.
 */
static void conn_close(const struct mg_connection *cc)
{
	/* civetweb passes its own (mutable) connection; the callback type only
	 * says const.  Writing the reply needs the non-const pointer. */
	struct mg_connection *c = (struct mg_connection *)cc;
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct http_server *hs = node->http;
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct conn_slot *slot = mg_get_user_connection_data(c);

	/* request_uri is reset before each request is read, and local_uri is
	 * set for every request civetweb routes to begin_request: a parsed
	 * request without local_uri was dropped, unless http_error answered */
	if (slot && ri && !slot->answered && ri->request_method && ri->request_uri &&
	    ri->http_version && !ri->local_uri) {
		conn_busy(hs, slot, true);
		answer_dropped(c, ri);
	}
	if (!hs || !slot)
		return;
	pthread_mutex_lock(&hs->reap_lock);
	slot->used = false;
	hs->slots_used--;
	pthread_mutex_unlock(&hs->reap_lock);
}

struct reap_cand {
	struct conn_slot *slot;
	int addr_conns;          /* slots held by the same client address */
};

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Most connections per address first, then the longest waiting. */
static int cmp_cand(const void *a, const void *b)
{
	const struct reap_cand *x = a, *y = b;

	if (x->addr_conns != y->addr_conns)
		return x->addr_conns > y->addr_conns ? -1 : 1;
	return x->slot->since_us < y->slot->since_us ? -1 : x->slot->since_us > y->slot->since_us;
}

/* How many of the sorted ips[0..n) equal ip. */
static int count_ip(const uint32_t *ips, int n, uint32_t ip)
{
	int lo = 0, hi = n, first;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (ips[mid] < ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	hi = n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (ips[mid] <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - first;
}

/*
 * Under pressure (more than half of the workers hold a connection), picks
 * the connections to cut (policy in the design comment), marks them reaped
 * and appends them to targets.  Returns how many were appended.  Called
 * with reap_lock held; scratch holds nslots entries of each kind.
 */
static size_t pick_waiting(struct http_server *hs, uint64_t now, struct reap_cand *cand,
			   uint32_t *ips, struct reap_target *targets)
{
	int half = hs->nslots / 2, heavy = hs->nslots / 8, nips = 0, ncand = 0;
	int held = hs->slots_used;
	size_t n = 0;

	if (held <= half)
		return 0;
	for (int i = 0; i < hs->nslots; i++)
		if (hs->slots[i].used && slot_addr(&hs->slots[i]))
			ips[nips++] = hs->slots[i].ip;
	qsort(ips, (size_t)nips, sizeof(*ips), cmp_u32);
	for (int i = 0; i < hs->nslots; i++) {
		struct conn_slot *s = &hs->slots[i];

		if (!s->used || s->busy || s->reaped || s->ip == 0 ||
		    now - s->since_us < (uint64_t)REAP_GRACE_MS * 1000)
			continue;
		cand[ncand].slot = s;
		cand[ncand].addr_conns = count_ip(ips, nips, s->ip);
		ncand++;
	}
	qsort(cand, (size_t)ncand, sizeof(*cand), cmp_cand);
	for (int i = 0; i < ncand; i++) {
		if (cand[i].addr_conns <= heavy && held <= half)
			break;
		cand[i].slot->reaped = true;
		targets[n++] = (struct reap_target){ cand[i].slot->ip, cand[i].slot->port, SHUT_RD };
		held--;
	}
	return n;
}

static void *reaper_thread(void *arg)
{
	struct http_server *hs = arg;
	size_t cap = (size_t)hs->nslots * 2; /* one target per worker and per watch */
	struct reap_target *targets = calloc(cap, sizeof(*targets));
	struct reap_cand *cand = calloc((size_t)hs->nslots, sizeof(*cand));
	uint32_t *ips = calloc((size_t)hs->nslots, sizeof(*ips));
	unsigned long reaped = 0;
	uint64_t last_log = 0;

	if (!targets || !cand || !ips) {
		log_error("http_reaper", "reason=\"out of memory\"");
		goto out_free;
	}
	while (!atomic_load(&hs->stopping)) {
		struct timespec tick = { 0, REAP_TICK_MS * 1000000L };
		size_t n = 0, picked;
		int held;

		nanosleep(&tick, NULL);
		uint64_t now = now_us();
		pthread_mutex_lock(&hs->reap_lock);
		for (struct body_watch *w = hs->watches; w && n < cap / 2; w = w->next) {
			if (w->reaped || now < w->deadline_us)
				continue;
			w->reaped = true;
			targets[n++] = (struct reap_target){ w->ip, w->port, SHUT_RD };
		}
		held = hs->slots_used;
		picked = pick_waiting(hs, now, cand, ips, targets + n);
		n += picked;
		if (n)
			shutdown_targets(hs->node->cfg.port, targets, n);
		pthread_mutex_unlock(&hs->reap_lock);
		reaped += picked;
		if (reaped && now - last_log > 10 * 1000000ULL) {
			log_warn("http_pressure", "reaped=%lu workers_held=%d http_threads=%d "
				 "reason=\"connections waiting for request headers cut while more than "
				 "half of the workers were held\"", reaped, held, hs->nslots);
			reaped = 0;
			last_log = now;
		}
	}
out_free:
	free(targets);
	free(cand);
	free(ips);
	return NULL;
}

/* -------------------------------------------------------------- body reads */

static void watch_add(struct http_server *hs, struct body_watch *w)
{
	pthread_mutex_lock(&hs->reap_lock);
	w->next = hs->watches;
	w->pprev = &hs->watches;
	if (w->next)
		w->next->pprev = &w->next;
	hs->watches = w;
	pthread_mutex_unlock(&hs->reap_lock);
}

static void watch_remove(struct http_server *hs, struct body_watch *w)
{
	pthread_mutex_lock(&hs->reap_lock);
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	pthread_mutex_unlock(&hs->reap_lock);
}

int http_read_body(struct mg_connection *c, size_t max, char **body, size_t *len)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct http_server *hs = node->http;
	long long cl = ri->content_length;
	const char *te = mg_get_header(c, "Transfer-Encoding");
	bool chunked = te && strcasecmp(te, "chunked") == 0;
	struct body_watch w = { 0 };
	size_t want, got = 0;
	char *p;

	if (cl < 0 && !chunked)
		return 411;
	if (cl > (long long)max)
		return 413;
	want = chunked ? max + 1 : (size_t)cl; /* chunked: read until EOF or past max */
	if (!(p = malloc(want + 1)))
		return 500;
	/* curl sends "Expect: 100-continue" for bodies over 1 MiB and waits a
	 * second for this before sending; civetweb does not answer it for us */
	const char *expect = mg_get_header(c, "Expect");
	if (expect && strcasecmp(expect, "100-continue") == 0 && want > 0)
		mg_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	w.deadline_us = now_us() + (uint64_t)node->cfg.http_request_timeout_ms * 1000;
	w.port = htons((uint16_t)ri->remote_port);
	bool watched = hs && want > 0 && inet_pton(AF_INET, ri->remote_addr, &w.ip) == 1;
	if (watched)
		watch_add(hs, &w);
	while (got < want) {
		int n = mg_read(c, p + got, want - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (watched)
		watch_remove(hs, &w);
	if (w.reaped || (got < want && !chunked && now_us() > w.deadline_us)) {
		free(p);
		return 408;
	}
	if (chunked && got > max) {
		free(p);
		return 413;
	}
	if (!chunked && got != want) {
		free(p);
		return 400;
	}
	p[got] = '\0';
	*body = p;
	*len = got;
	return 0;
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

/* --------------------------------------------------------------- dispatch */

bool http_equal_ct(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)(i < lb ? b[i] : 0);
	return diff == 0;
}

/*
 * With auth_tokens configured, a client route needs "Authorization: Bearer
 * TOKEN": any token for GET/HEAD, a write token for anything else.  Answers
 * 401/403 itself and returns that status; 0 when the request may proceed.
 */
static int check_token(struct kvs_node *node, struct mg_connection *c,
		       const struct mg_request_info *ri)
{
	const struct kvs_config *cfg = &node->cfg;
	const char *h = mg_get_header(c, "Authorization");
	bool read_only = strcmp(ri->request_method, "GET") == 0 ||
			 strcmp(ri->request_method, "HEAD") == 0;
	int found = -1;

	if (cfg->token_count == 0)
		return 0;
	if (h && strncasecmp(h, "Bearer ", 7) == 0)
		for (int i = 0; i < cfg->token_count; i++)
			if (http_equal_ct(h + 7, cfg->auth_tokens[i].token))
				found = i;
	if (found < 0)
		return http_error(c, 401, "WWW-Authenticate: Bearer realm=\"kvs\"\r\n",
				  "missing or invalid bearer token");
	if (!read_only && !cfg->auth_tokens[found].write)
		return http_error(c, 403, NULL, "this token may only read");
	return 0;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
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
static int framing_check(const struct mg_request_info *ri, const char **why)
{
	const char *cl = NULL, *te = NULL;
	int ncl = 0, nte = 0;

	if (ri->num_headers > MAX_HEADERS) {
		*why = "too many headers: a request may carry at most 63";
		return 431;
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
		http_send(c, 200, "application/json", "Allow: " ALLOW_ANY "\r\nConnection: close\r\n",
			  allow_json, sizeof(allow_json) - 1);
	else if (strcmp(ri->request_uri, "*") == 0)
		http_error(c, 400, "Connection: close\r\n", "request target * is only for OPTIONS");
	else
		http_error(c, 400, "Connection: close\r\n",
			   "absolute-form request target not supported (kvs is not a proxy): "
			   "send the path only");
}

static int http_dispatch(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct http_server *hs = node->http;
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct conn_slot *slot = mg_get_user_connection_data(c);
	uint64_t start = now_us();
	char path[RAW_PATH_MAX];
	enum metrics_route metric = ROUTE_OTHER;
	const char *why = NULL;
	int status;

	if (conn_busy(hs, slot, true)) {
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
		const struct route *r = route_find(path);

		if (r) {
			metric = r->metric;
			if (r->fn == api_kv)
				metric = path[strlen(path) - 1] == '/' || strcmp(path, "/kv") == 0
						 ? ROUTE_KV_LIST
						 : ROUTE_KV;
			status = r->auth == AUTH_CLIENT ? check_token(hs->node, c, ri) : 0;
			if (status == 0)
				status = r->fn(hs->node, c, ri, path);
		} else {
			status = http_error(c, 404, NULL, "no such resource: %.200s", path);
		}
	}
	metrics_request(&hs->node->metrics, metric, ri->request_method, status,
			now_us() - start);
	conn_busy(hs, slot, false);
	return status;
}

/*
 * civetweb's init_ssl callback: loads our certificate chain and key (two
 * files, where civetweb's own option wants one combined PEM), and for
 * mutual TLS requires client certificates signed by tls_ca_file.
 * Returns 1 (set up here) or -1 (fail the start).
 */
static int init_tls(void *ssl_ctx, void *user_data)
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

/*
 * civetweb answers some requests itself, before any handler (a malformed
 * request line, headers too large, a Transfer-Encoding it does not know, a
 * Content-Length strtoll() cannot read...): keep those JSON too, with the
 * status and reason framing_check() gives when it applies, and 408 for a
 * connection the reaper cut while it waited for headers.  Returns 0:
 * handled here.
 */
static int civetweb_error(struct mg_connection *c, int status, const char *msg)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	const struct mg_request_info *ri = mg_get_request_info(c);
	struct conn_slot *slot = mg_get_user_connection_data(c);
	const char *why = NULL;
	int st;

	if (slot)
		slot->answered = true; /* conn_close() must not answer again */
	mg_disable_keep_alive(c); /* the request was not understood: start afresh */
	if (node->http && conn_reaped(node->http, slot)) {
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
	log_warn("http_error", "msg=\"%s\"", msg);
	return 1;
}

/*
 * Sets TCP_DEFER_ACCEPT on civetweb's listening socket (found, like client
 * sockets, among our descriptors: a listening socket on our port), so that
 * a connection reaches accept() and a worker only once it has sent
 * something, or after about http_request_timeout_ms.  Logs and carries on
 * if the socket is not found: the reaper still applies.
 */
static void defer_accept(struct http_server *hs)
{
	DIR *d = opendir("/proc/self/fd");
	int secs = (hs->node->cfg.http_request_timeout_ms + 999) / 1000, found = 0;
	struct dirent *e;

	if (!d) {
		log_warn("http_defer_accept", "reason=\"cannot list /proc/self/fd\"");
		return;
	}
	while ((e = readdir(d))) {
		struct sockaddr_in local;
		socklen_t ll = sizeof(local);
		int fd, listening = 0;
		socklen_t optlen = sizeof(listening);

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || (fd = atoi(e->d_name)) == dirfd(d))
			continue;
		if (getsockname(fd, (struct sockaddr *)&local, &ll) != 0 ||
		    local.sin_family != AF_INET || ntohs(local.sin_port) != hs->node->cfg.port ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening)
			continue;
		if (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)) == 0)
			found++;
	}
	closedir(d);
	if (!found)
		log_warn("http_defer_accept", "reason=\"listening socket not found; silent "
			 "connections take a worker each until the reaper cuts them\"");
}

/* ------------------------------------------------------------- start/stop */

struct http_server *http_start(struct kvs_node *node, char *err, size_t errlen)
{
	struct http_server *hs = calloc(1, sizeof(*hs));
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data errd;
	char ports[128], threads[16], errtext[256] = "", req_to[16], idle_to[16];

	if (!hs) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	hs->node = node;
	hs->nslots = node->cfg.http_threads;
	if (!(hs->slots = calloc((size_t)hs->nslots, sizeof(*hs->slots)))) {
		snprintf(err, errlen, "out of memory");
		free(hs);
		return NULL;
	}
	pthread_mutex_init(&hs->reap_lock, NULL);
	node->http = hs; /* before the first request can need it (http_read_body) */
	bool tls = node->cfg.tls_cert_file[0] != '\0';
	snprintf(ports, sizeof(ports), "%s:%d%s", node->cfg.bind_address, node->cfg.port,
		 tls ? "s" : "");
	snprintf(threads, sizeof(threads), "%d", node->cfg.http_threads);
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
		 * certificate and key themselves are loaded by init_tls() */
		tls ? "ssl_certificate" : NULL, node->cfg.tls_cert_file,
		NULL, NULL,
	};

	memset(&cb, 0, sizeof(cb));
	cb.begin_request = http_dispatch;
	cb.log_message = log_civetweb;
	cb.http_error = civetweb_error;
	cb.init_connection = conn_open;
	cb.connection_close = conn_close;
	if (tls)
		cb.init_ssl = init_tls;
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.user_data = node;
	init.configuration_options = options;
	memset(&errd, 0, sizeof(errd));
	errd.text = errtext;
	errd.text_buffer_size = sizeof(errtext);

	mg_init_library(tls ? MG_FEATURES_TLS : 0);
	hs->ctx = mg_start2(&init, &errd);
	if (!hs->ctx) {
		snprintf(err, errlen, "cannot start HTTP server on %s: %s", ports,
			 errtext[0] ? errtext : "unknown error");
		node->http = NULL;
		pthread_mutex_destroy(&hs->reap_lock);
		free(hs->slots);
		free(hs);
		mg_exit_library();
		return NULL;
	}
	if (tls && !mg_check_feature(MG_FEATURES_TLS)) {
		snprintf(err, errlen, "this civetweb has no TLS support");
		http_stop(hs);
		return NULL;
	}
	defer_accept(hs);
	hs->reaper_started = pthread_create(&hs->reaper, NULL, reaper_thread, hs) == 0;
	if (!hs->reaper_started)
		log_error("http_reaper", "reason=\"cannot start the reaper thread: slow and idle "
			  "connections are cut only by civetweb's timeouts\"");
	return hs;
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
	knocking = pthread_create(&t, NULL, knock, &k) == 0;
	mg_stop(hs->ctx);
	atomic_store(&k.done, true);
	if (knocking)
		pthread_join(t, NULL);
	atomic_store(&hs->stopping, true);
	if (hs->reaper_started)
		pthread_join(hs->reaper, NULL);
	pthread_mutex_destroy(&hs->reap_lock);
	mg_exit_library();
	free(hs->slots);
	free(hs);
}
