/*
 * conn.c - the connection guard (see conn.h): request-body reader,
 * slow-client reaper, connection slots, TCP_DEFER_ACCEPT.
 *
 * Connection pressure (finding M4).  civetweb serves one connection per
 * worker thread (http_threads of them) for as long as it stays open, and
 * queues accepted connections behind busy workers: a few hundred
 * connections that send nothing, or a byte a second, used to hold every
 * worker for the request timeout and make every other client wait 10-20 s.
 * Two defences:
 *  - TCP_DEFER_ACCEPT on the listening socket (conn_defer_accept()): the
 *    kernel hands a connection to civetweb only once its first bytes
 *    arrive (or after about http_request_timeout_ms), so silent
 *    connections hold no worker and no queue slot for that long.
 *  - The reaper: each worker's connection has a slot (struct conn_slot,
 *    opened from civetweb's init_connection callback, closed from
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
 *  - Once the server is stopping (conn_guard_drain()), the reaper cuts every
 *    connection waiting for headers at its next tick, pressure or not: a
 *    worker waiting on an idle keep-alive notices civetweb's stop flag only
 *    every two seconds (its poll quantum), and peers keep connections open,
 *    so each stop used to take about two seconds.
 *
 * Slow bodies.  civetweb's request timeout applies to each recv(), and
 * mg_read() loops until it has every byte asked for: a client dripping its
 * body a byte a second would hold a worker forever.  So each body read is
 * registered with a deadline (http_request_timeout_ms); the reaper shuts
 * down the socket of a read past its deadline, which ends the blocked
 * mg_read() at once, and the handler answers 408.
 *
 * Watchers (GET /watch/, conn_slot_watch()) hold their worker for as long
 * as they wait, on purpose: they have workers of their own (max_watchers
 * are added to http_threads) and do not count as held for the pressure
 * rule.  Their clients may leave without a word, so each watcher's socket
 * is found once when the watch starts, and about once a second the reaper
 * polls it (POLLRDHUP, POLLHUP, or no peer any more: the client closed or
 * reset it) and marks the slot gone; the watcher sees it at its next tick
 * and frees its worker.
 *
 * civetweb exposes no socket, so the reaper finds one by the client's
 * address among this process's descriptors (shutdown_targets()).  It does
 * so under the guard's lock, while the slot is used or the body's handler
 * is still reading: the connection cannot have been closed and its
 * descriptor reused meanwhile.
 *
 * Threads and locks: slots and body watches are opened and closed on
 * civetweb's worker threads, the reaper reads them on its own thread.
 * `lock` guards the body watches and the slots' (lock) fields; it is a
 * leaf (only syscalls while held).
 */
#include "conn.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

/* ------------------------------------------------------------------ types */

/*
 * A body being read, watched by the reaper.  Entries live in the reading
 * handler's stack frame, linked under the guard's lock.
 */
struct body_watch {
	struct body_watch *next, **pprev; /* pprev: the pointer to this entry, for O(1) removal */
	uint32_t ip;                /* client address, network order */
	uint16_t port;              /* client port, network order */
	uint64_t deadline_us;       /* monotonic */
	bool reaped;
};

/*
 * The connection one civetweb worker serves now.  One per worker, handed
 * out by conn_slot_open() and kept as the connection's user data; fields
 * marked (lock) are guarded by the guard's lock, the others belong to the
 * worker thread.
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
	bool watching;           /* (lock) a watch request holds the connection */
	bool gone;               /* (lock) the watcher's client closed its socket */
	int fd;                  /* (lock) the watcher's socket, -1 if not found */
	char header[48];         /* a header line every reply of this request carries */
	int token;               /* the request's bearer token (auth.c): index + 1, 0 none */
};

struct conn_guard {
	pthread_mutex_t lock;           /* guards watches, slots[], slots_used */
	struct body_watch *watches;     /* bodies being read now */
	struct conn_slot *slots;        /* one per worker */
	int nslots;                     /* workers + watchers */
	int workers;                    /* http_threads: the pressure rule counts these */
	int slots_used;                 /* slots with used set: workers holding a connection */
	int watching;                   /* slots with watching set */
	int port;                       /* the server's port: only its sockets are cut */
	pthread_t reaper;
	bool reaper_started;
	atomic_bool stopping;           /* tells the reaper to end */
	atomic_bool draining;           /* the server is stopping: cut every waiting connection */
	int drained;                    /* (lock) connections cut while draining */
};

/* A socket the reaper is to shut down, found by its client address. */
struct reap_target {
	uint32_t ip;            /* network order */
	uint16_t port;          /* network order */
	int how;                /* SHUT_RD, or FIND_FD: note the descriptor in slot->fd */
	struct conn_slot *slot; /* for FIND_FD */
};

#define FIND_FD (-1)

/* A waiting connection the reaper may cut, and how crowded its address is. */
struct reap_cand {
	struct conn_slot *slot;
	int addr_conns;          /* slots held by the same client address */
};

#define REAP_TICK_MS 50    /* the reaper looks at watches and slots this often */
#define REAP_GRACE_MS 250  /* under pressure, waiting for headers longer than this is cut */
#define PROBE_EVERY_TICKS 20 /* watchers' sockets are polled this often (1 s) */

/* ------------------------------------------------------------- public API */

uint64_t conn_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

struct conn_guard *conn_guard_new(int workers, int watchers, int port)
{
	struct conn_guard *g = calloc(1, sizeof(*g));
	int nslots = workers + watchers;

	if (!g)
		return NULL;
	if (!(g->slots = calloc((size_t)nslots, sizeof(*g->slots)))) {
		free(g);
		return NULL;
	}
	g->nslots = nslots;
	g->workers = workers;
	g->port = port;
	pthread_mutex_init(&g->lock, NULL);
	return g;
}

static void *reaper_thread(void *arg);
static void shutdown_targets(int local_port, const struct reap_target *targets, size_t n);
static bool slot_addr(struct conn_slot *slot);

void conn_guard_start(struct conn_guard *g)
{
	g->reaper_started = pthread_create(&g->reaper, NULL, reaper_thread, g) == 0;
	if (g->reaper_started)
		pthread_setname_np(g->reaper, "kvs-conn-reaper");
	if (!g->reaper_started)
		log_error("http_reaper", "reason=\"cannot start the reaper thread: slow and idle "
			  "connections are cut only by civetweb's timeouts\"");
}

void conn_guard_drain(struct conn_guard *g)
{
	if (g)
		atomic_store(&g->draining, true);
}

void conn_guard_free(struct conn_guard *g)
{
	if (!g)
		return;
	atomic_store(&g->stopping, true);
	if (g->reaper_started)
		pthread_join(g->reaper, NULL);
	if (atomic_load(&g->draining))
		log_info("http_drained", "idle_connections_cut=%d", g->drained);
	pthread_mutex_destroy(&g->lock);
	free(g->slots);
	free(g);
}

void conn_defer_accept(int port, int timeout_ms)
{
	DIR *d = opendir("/proc/self/fd");
	int secs = (timeout_ms + 999) / 1000, found = 0;
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
		    local.sin_family != AF_INET || ntohs(local.sin_port) != port ||
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

/* The client address is not readable yet (civetweb answers
 * mg_get_request_info() only once it reads a request): slot_addr() fills
 * it in later. */
struct conn_slot *conn_slot_open(struct conn_guard *g, const struct mg_connection *c)
{
	struct conn_slot *slot = NULL;

	if (!g)
		return NULL;
	pthread_mutex_lock(&g->lock);
	for (int i = 0; i < g->nslots && !slot; i++)
		if (!g->slots[i].used)
			slot = &g->slots[i];
	if (slot) {
		*slot = (struct conn_slot){ .used = true, .conn = c, .since_us = conn_now_us() };
		g->slots_used++;
	}
	pthread_mutex_unlock(&g->lock);
	return slot;
}

void conn_slot_close(struct conn_guard *g, struct conn_slot *slot)
{
	if (!g || !slot)
		return;
	pthread_mutex_lock(&g->lock);
	if (slot->watching)
		g->watching--;
	slot->used = false;
	g->slots_used--;
	pthread_mutex_unlock(&g->lock);
}

void conn_slot_watch(struct conn_guard *g, struct conn_slot *slot, bool on)
{
	if (!g || !slot)
		return;
	pthread_mutex_lock(&g->lock);
	if (slot->watching != on)
		g->watching += on ? 1 : -1;
	slot->watching = on;
	slot->gone = false;
	slot->fd = -1;
	if (on && slot_addr(slot)) {
		/* found once, while the client is surely connected (it just sent
		 * its request); the reaper then polls it, with no search */
		struct reap_target t = { slot->ip, slot->port, FIND_FD, slot };
		shutdown_targets(g->port, &t, 1);
	}
	pthread_mutex_unlock(&g->lock);
}

bool conn_slot_gone(struct conn_guard *g, struct conn_slot *slot)
{
	bool gone = false;

	if (g && slot) {
		pthread_mutex_lock(&g->lock);
		gone = slot->gone;
		pthread_mutex_unlock(&g->lock);
	}
	return gone;
}

void conn_slot_set_header(struct conn_slot *slot, const char *line)
{
	if (!slot)
		return;
	if (!line || strlen(line) >= sizeof(slot->header))
		slot->header[0] = '\0';
	else
		strcpy(slot->header, line);
}

const char *conn_slot_header(const struct conn_slot *slot)
{
	return slot ? slot->header : "";
}

void conn_slot_set_token(struct conn_slot *slot, int token)
{
	if (slot)
		slot->token = token + 1;
}

int conn_slot_token(const struct conn_slot *slot)
{
	return slot ? slot->token - 1 : -1;
}

bool conn_slot_busy(struct conn_guard *g, struct conn_slot *slot, bool busy)
{
	bool reaped;

	if (!g || !slot)
		return false;
	pthread_mutex_lock(&g->lock);
	slot->busy = busy;
	slot->since_us = conn_now_us();
	reaped = slot->reaped;
	pthread_mutex_unlock(&g->lock);
	return reaped;
}

bool conn_slot_reaped(struct conn_guard *g, struct conn_slot *slot)
{
	bool r = false;

	if (g && slot) {
		pthread_mutex_lock(&g->lock);
		r = slot->reaped;
		pthread_mutex_unlock(&g->lock);
	}
	return r;
}

void conn_slot_set_answered(struct conn_slot *slot)
{
	if (slot)
		slot->answered = true;
}

bool conn_slot_answered(const struct conn_slot *slot)
{
	return slot && slot->answered;
}

static void watch_add(struct conn_guard *g, struct body_watch *w)
{
	pthread_mutex_lock(&g->lock);
	w->next = g->watches;
	w->pprev = &g->watches;
	if (w->next)
		w->next->pprev = &w->next;
	g->watches = w;
	pthread_mutex_unlock(&g->lock);
}

static void watch_remove(struct conn_guard *g, struct body_watch *w)
{
	pthread_mutex_lock(&g->lock);
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	pthread_mutex_unlock(&g->lock);
}

int conn_read_body(struct conn_guard *g, struct mg_connection *c, int timeout_ms, size_t max,
		   char **body, size_t *len)
{
	const struct mg_request_info *ri = mg_get_request_info(c);
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
	w.deadline_us = conn_now_us() + (uint64_t)timeout_ms * 1000;
	w.port = htons((uint16_t)ri->remote_port);
	bool watched = g && want > 0 && inet_pton(AF_INET, ri->remote_addr, &w.ip) == 1;
	if (watched)
		watch_add(g, &w);
	while (got < want) {
		int n = mg_read(c, p + got, want - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (watched)
		watch_remove(g, &w);
	if (w.reaped || (got < want && !chunked && conn_now_us() > w.deadline_us)) {
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

/* -------------------------------------------------------------- internals */

/* Marks slot gone if the client closed or reset its socket.  Lock held
 * (the watch, and so the socket, is still open). */
static void probe_hangup(struct conn_slot *slot)
{
	struct pollfd p = { .fd = slot->fd, .events = POLLRDHUP };
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);

	if (slot->fd < 0 ||
	    (poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) ||
	    getpeername(slot->fd, (struct sockaddr *)&peer, &pl) != 0)
		slot->gone = true;
}

/*
 * Shuts down (or, for FIND_FD, notes) the sockets of targets[0..n) (accepted on our HTTP port and
 * connected to that client address), each with its how.  Walks this
 * process's descriptors (/proc/self/fd, or every number below the limit if
 * /proc is missing) once for all targets.  Called with the lock held: see
 * the design comment.
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
				if (targets[t].how == FIND_FD)
					targets[t].slot->fd = fd;
				else /* SHUT_RD ends a blocked read at once; a reply can still be written */
					shutdown(fd, targets[t].how);
				done++;
			}
			break;
		}
	}
	if (d)
		closedir(d);
}

/*
 * Fills in slot's client address once civetweb lets it be read, which is
 * from the moment the worker starts reading the first request (right after
 * conn_slot_open()).  remote_addr and remote_port are set before
 * init_connection and not changed while the connection lasts, and the slot
 * is used (so the connection open) while the lock is held;
 * mg_get_request_info() itself only tests the connection's type, a flag
 * the worker sets as it starts reading each request (a benign race: until
 * it is set, NULL and another try next tick).  Returns whether the address
 * is known.  Called with the lock held, on the reaper.
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
 * Under pressure (more than half of the workers hold a connection), or
 * while draining (every one, at once), picks the connections to cut
 * (policy in the design comment), marks them reaped and appends them to
 * targets.  Returns how many were appended.  Called with the lock held;
 * scratch holds nslots entries of each kind.
 */
static size_t pick_waiting(struct conn_guard *g, uint64_t now, bool drain,
			   struct reap_cand *cand, uint32_t *ips, struct reap_target *targets)
{
	int half = g->workers / 2, heavy = g->workers / 8, nips = 0, ncand = 0;
	int held = g->slots_used - g->watching;
	uint64_t grace_us = drain ? 0 : (uint64_t)REAP_GRACE_MS * 1000;
	size_t n = 0;

	if (held <= half && !drain)
		return 0;
	for (int i = 0; i < g->nslots; i++)
		if (g->slots[i].used && slot_addr(&g->slots[i]))
			ips[nips++] = g->slots[i].ip;
	qsort(ips, (size_t)nips, sizeof(*ips), cmp_u32);
	for (int i = 0; i < g->nslots; i++) {
		struct conn_slot *s = &g->slots[i];

		if (!s->used || s->busy || s->reaped || s->watching || s->ip == 0 ||
		    now - s->since_us < grace_us)
			continue;
		cand[ncand].slot = s;
		cand[ncand].addr_conns = count_ip(ips, nips, s->ip);
		ncand++;
	}
	qsort(cand, (size_t)ncand, sizeof(*cand), cmp_cand);
	for (int i = 0; i < ncand; i++) {
		if (!drain && cand[i].addr_conns <= heavy && held <= half)
			break;
		cand[i].slot->reaped = true;
		targets[n++] = (struct reap_target){ cand[i].slot->ip, cand[i].slot->port, SHUT_RD, NULL };
		held--;
	}
	return n;
}

/* Polls each watcher's socket: a client that closed or reset it is gone.
 * Lock held. */
static void probe_watchers(struct conn_guard *g)
{
	for (int i = 0; i < g->nslots; i++) {
		struct conn_slot *s = &g->slots[i];

		if (s->used && s->watching && !s->gone)
			probe_hangup(s);
	}
}

/* Every REAP_TICK_MS until the guard stops: cuts bodies past their
 * deadline and, under pressure, connections waiting for headers. */
static void *reaper_thread(void *arg)
{
	struct conn_guard *g = arg;
	size_t cap = (size_t)g->nslots * 3; /* per slot: a cut, a probe; per body watch */
	struct reap_target *targets = calloc(cap, sizeof(*targets));
	struct reap_cand *cand = calloc((size_t)g->nslots, sizeof(*cand));
	uint32_t *ips = calloc((size_t)g->nslots, sizeof(*ips));
	unsigned long reaped = 0, ticks = 0;
	uint64_t last_log = 0;

	if (!targets || !cand || !ips) {
		log_error("http_reaper", "reason=\"out of memory\"");
		goto out_free;
	}
	while (!atomic_load(&g->stopping)) {
		struct timespec tick = { 0, REAP_TICK_MS * 1000000L };
		size_t n = 0, picked;
		int held;

		nanosleep(&tick, NULL);
		uint64_t now = conn_now_us();
		pthread_mutex_lock(&g->lock);
		for (struct body_watch *w = g->watches; w && n < cap / 2; w = w->next) {
			if (w->reaped || now < w->deadline_us)
				continue;
			w->reaped = true;
			targets[n++] = (struct reap_target){ w->ip, w->port, SHUT_RD, NULL };
		}
		held = g->slots_used - g->watching;
		bool drain = atomic_load(&g->draining);
		picked = pick_waiting(g, now, drain, cand, ips, targets + n);
		n += picked;
		if (drain) {
			g->drained += (int)picked;
			picked = 0; /* a stop, not pressure: nothing to warn about */
		}
		if (++ticks % PROBE_EVERY_TICKS == 0 && g->watching > 0)
			probe_watchers(g);
		if (n)
			shutdown_targets(g->port, targets, n);
		pthread_mutex_unlock(&g->lock);
		reaped += picked;
		if (reaped && now - last_log > 10 * 1000000ULL) {
			log_warn("http_pressure", "reaped=%lu workers_held=%d http_threads=%d "
				 "reason=\"connections waiting for request headers cut while more than "
				 "half of the workers were held\"", reaped, held, g->workers);
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
