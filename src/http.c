/*
 * http.c - civetweb server, route table, one-write replies (see http.h).
 *
 * Every request goes to http_dispatch() through civetweb's begin_request
 * callback, which is part of the start-up options and so is in place from
 * the very first connection (a handler set with mg_set_request_handler()
 * only after mg_start() leaves a window in which civetweb answers requests
 * itself, e.g. 405 to a PUT).  http_dispatch() looks the raw path up in
 * `routes` (the one place routes are registered), times the handler and
 * counts the result in /metrics.  URL decoding in civetweb is turned off
 * (decode_url=no) so that path.c sees the raw path and can
 * refuse an encoded '/' inside a segment.
 *
 * Performance notes, measured on this kind of machine (DESIGN/issue 2):
 * tcp_nodelay off costs ~40 ms per request (Nagle + delayed ACK) and a reply
 * split over several writes runs ~3x slower, so both are avoided here.
 */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
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

struct http_server {
	struct mg_context *ctx;
	struct kvs_node *node;
	pthread_mutex_t reap_lock;      /* guards watches */
	struct body_watch *watches;     /* bodies being read now */
	pthread_t reaper;
	bool reaper_started;
	atomic_bool stopping;
};

#define RAW_PATH_MAX 8192
#define HEADER_MAX 1024

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
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
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

/* Shuts down the socket connected to ip:port on our HTTP port, if any. */
static void shutdown_peer(int local_port, uint32_t ip, uint16_t port)
{
	int max = (int)sysconf(_SC_OPEN_MAX);

	for (int fd = 3; fd < max && fd < 65536; fd++) {
		struct sockaddr_in peer, local;
		socklen_t pl = sizeof(peer), ll = sizeof(local);

		if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 || peer.sin_family != AF_INET ||
		    peer.sin_addr.s_addr != ip || peer.sin_port != port)
			continue;
		if (getsockname(fd, (struct sockaddr *)&local, &ll) != 0 ||
		    ntohs(local.sin_port) != local_port)
			continue;
		shutdown(fd, SHUT_RD); /* ends the read; the 408 can still be written */
		return;
	}
}

static void *reaper_thread(void *arg)
{
	struct http_server *hs = arg;

	while (!atomic_load(&hs->stopping)) {
		struct timespec tick = { 0, 200 * 1000000 };
		nanosleep(&tick, NULL);
		uint64_t now = now_us();
		pthread_mutex_lock(&hs->reap_lock);
		for (struct body_watch *w = hs->watches; w; w = w->next) {
			if (w->reaped || now < w->deadline_us)
				continue;
			w->reaped = true;
			shutdown_peer(hs->node->cfg.port, w->ip, w->port);
		}
		pthread_mutex_unlock(&hs->reap_lock);
	}
	return NULL;
}

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

static int http_dispatch(struct mg_connection *c)
{
	struct kvs_node *node = mg_get_user_data(mg_get_context(c));
	struct http_server *hs = node->http;
	const struct mg_request_info *ri = mg_get_request_info(c);
	uint64_t start = now_us();
	char path[RAW_PATH_MAX];
	enum metrics_route metric = ROUTE_OTHER;
	int status;

	if (!http_raw_path(c, path, sizeof(path))) {
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
 * request line, headers too large...): keep those JSON too.  Returns 0:
 * handled here.
 */
static int civetweb_error(struct mg_connection *c, int status, const char *msg)
{
	mg_disable_keep_alive(c); /* the request was not understood: start afresh */
	http_error(c, status, "Connection: close\r\n", "%s", msg && msg[0] ? msg : "bad request");
	return 0;
}

static int log_civetweb(const struct mg_connection *c, const char *msg)
{
	(void)c;
	log_warn("http_error", "msg=\"%s\"", msg);
	return 1;
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
	hs->node->http = NULL;
		free(hs);
		mg_exit_library();
		return NULL;
	}
	if (tls && !mg_check_feature(MG_FEATURES_TLS)) {
		snprintf(err, errlen, "this civetweb has no TLS support");
		http_stop(hs);
		return NULL;
	}
	hs->reaper_started = pthread_create(&hs->reaper, NULL, reaper_thread, hs) == 0;
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
	free(hs);
}
