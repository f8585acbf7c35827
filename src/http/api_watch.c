/*
 * api_watch.c - watches: GET /watch/{path}, /watch/{prefix}/, /watch/
 * (SPEC section 7).
 *
 * A watch registers a waiter with the store's hub (store/hub.h) for its
 * key or prefix, then reads the change index:
 *   - from its cursor to the node's current index by a scan, when it
 *     starts from an old `index`, from `since`, or after its waiter
 *     overflowed;
 *   - otherwise only the indexes the hub recorded for it (a get each), so
 *     a watch on a quiet prefix costs nothing while other keys change.
 * Long-poll (the default) answers {"index": M, "events": [...]} as soon as
 * one event matches, or after `wait` with no events; the client asks again
 * with index=M.  With "Accept: text/event-stream" the reply is a stream of
 * Server-Sent Events (id: index, data: event) that lasts until the client
 * goes, with a comment line every SSE_COMMENT_MS.
 *
 * Races closed here.  The hub is told of a change before its index is
 * visible (store.h): a waiter registered before it reads anything, and
 * first waits until every index given out so far is visible, so a change
 * is either in what it reads or recorded in its waiter afterwards.  A
 * reply's index M never passes store_index(), below which every change has
 * been written, so the next request from M misses nothing.
 *
 * Each open watch holds its civetweb worker (one of max_watchers of their
 * own, http.h) and wakes at least every WATCH_TICK_MS to see whether its
 * client went away or the node is stopping.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "auth.h"
#include "buf.h"
#include "http.h"
#include "kvs.h"
#include "path.h"

#define WATCH_DEFAULT_WAIT_MS 60000
#define WATCH_MAX_WAIT_MS 600000
#define WATCH_DEFAULT_LIMIT 1000
#define WATCH_MAX_LIMIT 10000
#define WATCH_TICK_MS 1000           /* a waiter checks on its client this often */
#define WATCH_RESERVE_MS 1000        /* waiting for indexes given out before the start */
#define WATCH_REPLY_MAX (8u << 20)   /* a reply stops early rather than pass this */
#define WATCH_BUDGET_STEP ((int64_t)1 << 20)
#define SSE_COMMENT_MS 10000         /* SPEC: a comment line at least every 15 s */
#define JSON "application/json"

/* A watch request, as parsed. */
struct watch {
	char key[PATH_KEY_MAX + 2];  /* key, or prefix ("" = everything) */
	size_t klen;
	bool prefix;
	bool has_index;              /* index= or Last-Event-ID */
	uint64_t index;
	int64_t since;               /* 0: none */
	uint64_t wait_ms;
	size_t limit;
	bool values;
	bool sse;
};

/* What one round of reading gathers. */
struct gather {
	struct kvs_node *node;
	struct mg_connection *c;     /* whose token decides which keys are seen */
	const struct watch *w;
	struct buf out;              /* events: JSON array items, or SSE frames */
	int64_t held;                /* reply budget taken for out */
	size_t count;                /* events in out */
	uint64_t last;               /* index of the last event in out */
	bool full;                   /* stopped at limit or size: more may follow */
};

/* ------------------------------------------------------------- parameters */

/* A decimal number of 1 to 19 digits into *out (at most INT64_MAX). */
static bool parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 19)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return false;
	*out = v;
	return true;
}

/* "30s", "500ms", "2m", or a bare number of seconds, into ms. */
static bool parse_wait(const char *s, uint64_t *ms)
{
	char digits[16];
	size_t n = strspn(s, "0123456789");
	uint64_t v, unit;

	if (n == 0 || n >= sizeof(digits))
		return false;
	if (strcmp(s + n, "") == 0 || strcmp(s + n, "s") == 0)
		unit = 1000;
	else if (strcmp(s + n, "ms") == 0)
		unit = 1;
	else if (strcmp(s + n, "m") == 0)
		unit = 60000;
	else
		return false;
	memcpy(digits, s, n);
	digits[n] = '\0';
	if (!parse_u64(digits, &v) || v > WATCH_MAX_WAIT_MS)
		return false;
	*ms = v * unit;
	return *ms <= WATCH_MAX_WAIT_MS;
}

/* Parses the request into w; answers 400 itself (returns its status) on a
 * bad parameter, else returns 0. */
static int watch_params(struct mg_connection *c, const struct mg_request_info *ri,
			const char *raw_path, struct watch *w)
{
	const char *qs = ri->query_string, *why = "bad path", *h;
	enum path_kind kind;
	char v[64];
	bool found;
	uint64_t n;

	if (path_decode_under(raw_path, "/watch", w->key, sizeof(w->key), &w->klen, &kind, &why))
		return http_error(c, 400, NULL, "%s", why);
	w->prefix = kind == PATH_PREFIX;

	if (path_query_get(qs, "index", v, sizeof(v), &found) != 0 ||
	    (found && !parse_u64(v, &w->index)))
		return http_error(c, 400, NULL, "index must be a non-negative integer");
	w->has_index = found;
	if ((h = mg_get_header(c, "Last-Event-ID")) != NULL) {
		/* a reconnecting EventSource: newer than the index in its URL */
		if (!parse_u64(h, &w->index))
			return http_error(c, 400, NULL, "Last-Event-ID must be a non-negative integer");
		w->has_index = true;
	}

	if (path_query_get(qs, "since", v, sizeof(v), &found) != 0 ||
	    (found && (!parse_u64(v, &n) || n >= (uint64_t)VERSION_TS_LIMIT)))
		return http_error(c, 400, NULL, "since must be a timestamp in milliseconds");
	w->since = found ? (int64_t)n : 0;

	w->wait_ms = WATCH_DEFAULT_WAIT_MS;
	if (path_query_get(qs, "wait", v, sizeof(v), &found) != 0 ||
	    (found && !parse_wait(v, &w->wait_ms)))
		return http_error(c, 400, NULL, "wait must be like 30s, 500ms or 2m, at most 600s");

	w->limit = WATCH_DEFAULT_LIMIT;
	if (path_query_get(qs, "limit", v, sizeof(v), &found) != 0 ||
	    (found && (!parse_u64(v, &n) || n < 1 || n > WATCH_MAX_LIMIT)))
		return http_error(c, 400, NULL, "limit must be an integer from 1 to %d",
				  WATCH_MAX_LIMIT);
	if (found)
		w->limit = (size_t)n;

	w->values = true;
	if (path_query_get(qs, "values", v, sizeof(v), &found) != 0)
		return http_error(c, 400, NULL, "values must be true or false");
	if (found) {
		if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
			w->values = false;
		else if (strcmp(v, "true") != 0 && strcmp(v, "1") != 0)
			return http_error(c, 400, NULL, "values must be true or false");
	}
	h = mg_get_header(c, "Accept");
	w->sse = h && strcasestr(h, "text/event-stream") != NULL;
	return 0;
}

const char *api_watch_bad_path(const char *raw_path)
{
	char key[PATH_KEY_MAX + 2];
	const char *why = "bad path";
	enum path_kind kind;
	size_t klen;

	return path_decode_under(raw_path, "/watch", key, sizeof(key), &klen, &kind, &why) ? why
											   : NULL;
}

/* ----------------------------------------------------------------- events */

/* The most a reply's events may take: WATCH_REPLY_MAX, plus the event that
 * passes it (the largest value, every byte of its key escaped). */
static size_t reply_cap(const struct kvs_node *node)
{
	return WATCH_REPLY_MAX + (size_t)node->cfg.max_value_bytes + 6 * PATH_KEY_MAX + 1024;
}

static bool matches(const struct watch *w, const struct store_change *ch)
{
	if (w->since && ch->rec.v.ts < w->since)
		return false;
	if (w->prefix)
		return ch->plen >= w->klen && memcmp(ch->path, w->key, w->klen) == 0;
	return ch->plen == w->klen && memcmp(ch->path, w->key, w->klen) == 0;
}

static const char *type_name(enum store_change_type t)
{
	return t == CHANGE_DELETE ? "delete" : t == CHANGE_EXPIRE ? "expire" : "put";
}

/* Appends event E (SPEC section 7) for ch to b. */
static void event_json(struct buf *b, const struct store_change *ch, bool values)
{
	char uuid[VERSION_UUID_STR];

	version_uuid_str(&ch->rec.v, uuid);
	buf_printf(b, "{\"index\":%" PRIu64 ",\"key\":", ch->index);
	buf_json_str(b, ch->path, ch->plen);
	buf_printf(b, ",\"type\":\"%s\",\"uuid\":\"%s\",\"timestamp\":%lld", type_name(ch->type),
		   uuid, (long long)ch->rec.v.ts);
	if (values && !ch->rec.tombstone) {
		buf_adds(b, ",\"value\":");
		buf_add(b, ch->rec.value, ch->rec.value_len);
	}
	if (!ch->rec.tombstone && ch->rec.expires > 0)
		buf_printf(b, ",\"expires\":%lld", (long long)ch->rec.expires);
	if (ch->rec.origin_len) {
		buf_adds(b, ",\"origin\":");
		buf_json_str(b, ch->rec.origin, ch->rec.origin_len);
	}
	buf_add(b, "}", 1);
}

/* store_change_fn: adds ch to the gather if it matches.  Returns 1 (stop)
 * once the gather is full. */
static int gather_one(void *arg, const struct store_change *ch)
{
	struct gather *g = arg;
	int64_t need;

	if (!matches(g->w, ch) || auth_key_access(g->node, g->c, ch->path, ch->plen) < ACCESS_READ)
		return 0;
	if (g->count >= g->w->limit || (g->count && g->out.len > WATCH_REPLY_MAX)) {
		g->full = true;
		return 1;
	}
	/* the reply is held twice at the end (events, then the reply): the
	 * first event always fits, later ones only within the node's budget */
	need = 2 * (int64_t)(g->out.len + ch->plen * 6 + ch->rec.value_len + 512);
	if (need > g->held) {
		int64_t more = need - g->held < WATCH_BUDGET_STEP ? WATCH_BUDGET_STEP
								   : need - g->held;
		if (node_reply_take(g->node, more)) {
			g->held += more;
		} else if (g->count) {
			g->full = true;
			return 1;
		}
	}
	if (g->w->sse) {
		size_t from;

		buf_printf(&g->out, "id: %" PRIu64 "\ndata: ", ch->index);
		from = g->out.len;
		event_json(&g->out, ch, g->w->values);
		/* an SSE line ends at CR or LF: JSON has them only as whitespace
		 * between tokens (never inside a string), so a space does */
		for (size_t i = from; i < g->out.len && !buf_failed(&g->out); i++)
			if (g->out.data[i] == '\n' || g->out.data[i] == '\r')
				g->out.data[i] = ' ';
		buf_adds(&g->out, "\n\n");
	} else {
		if (g->count)
			buf_add(&g->out, ",", 1);
		event_json(&g->out, ch, g->w->values);
	}
	g->count++;
	g->last = ch->index;
	return 0;
}

static void gather_reset(struct gather *g)
{
	buf_release(&g->out);
	buf_init(&g->out, reply_cap(g->node));
	if (g->held)
		node_reply_give(g->node, g->held);
	g->held = 0;
	g->count = 0;
	g->full = false;
}

/* ------------------------------------------------------------------ watch */

/* The state of one open watch. */
struct watcher {
	struct kvs_node *node;
	struct mg_connection *c;
	struct watch *w;
	struct hub_waiter hw;
	uint64_t cursor;             /* every matching change <= cursor has been handled */
	bool scan;                   /* read the index from cursor, not just the hits */
	struct gather g;
};

enum round_result { ROUND_OK, ROUND_COMPACTED, ROUND_FAILED };

/*
 * One round: gathers the matching changes after the cursor, up to the
 * node's current index, and moves the cursor over what it read (to the
 * last event when the gather is full).
 */
static enum round_result round_read(struct watcher *wt)
{
	struct store *s = wt->node->store;
	uint64_t visible = store_index(s), hits[HUB_HITS];
	size_t nhits, room = wt->w->limit - wt->g.count;
	bool overflow, more;
	int rc;

	hub_take(store_hub(s), &wt->hw, visible, hits, room < HUB_HITS ? room : HUB_HITS, &nhits,
		 &more, &overflow);
	if (overflow)
		wt->scan = true;
	if (wt->scan) {
		if (wt->cursor + 1 < store_index_oldest(s))
			return ROUND_COMPACTED;
		rc = store_changes_read(s, wt->cursor, visible, gather_one, &wt->g);
		if (rc != 0 && rc != 1)
			return ROUND_FAILED;
		if (wt->cursor + 1 < store_index_oldest(s))
			return ROUND_COMPACTED; /* trimmed while it read */
		wt->scan = wt->g.full;
		wt->cursor = wt->g.full ? wt->g.last : visible;
		return ROUND_OK;
	}
	for (size_t i = 0; i < nhits; i++) {
		if (hits[i] <= wt->cursor)
			continue;
		rc = store_change_get(s, hits[i], gather_one, &wt->g);
		if (rc == KVS_ENOTFOUND)
			return ROUND_COMPACTED; /* a hit is never a gap: it was trimmed */
		if (rc != 0 && rc != 1)
			return ROUND_FAILED;
		if (wt->g.full) {
			/* this hit did not fit: read from here on next round */
			wt->cursor = wt->g.last;
			wt->scan = true;
			return ROUND_OK;
		}
	}
	/* hits left in the hub past the room come after the last one taken */
	wt->cursor = more ? hits[nhits - 1] : visible;
	return ROUND_OK;
}

/* Waits for news for the watcher until deadline_us at most. */
static void round_wait(struct watcher *wt, uint64_t deadline_us)
{
	struct store *s = wt->node->store;

	if (wt->scan)
		return;
	if (hub_pending(store_hub(s), &wt->hw))
		/* recorded, not yet visible: a write is finishing */
		store_index_wait(s, store_index(s) + 1, deadline_us);
	else
		hub_wait(store_hub(s), &wt->hw, deadline_us);
}

/* 410 {"error": "index compacted", "oldest_index"}; in a stream already
 * started, the same as an "error" event (the stream then ends). */
static int answer_compacted(struct watcher *wt, bool streaming)
{
	uint64_t oldest = store_index_oldest(wt->node->store);
	char body[128];
	int n;

	atomic_fetch_add(&wt->node->metrics.watch_compacted, 1);
	if (streaming) {
		n = snprintf(body, sizeof(body),
			     "event: error\ndata: {\"error\":\"index compacted\",\"oldest_index\":%"
			     PRIu64 "}\n\n", oldest);
		http_stream_write(wt->c, body, (size_t)n);
		return 200;
	}
	n = snprintf(body, sizeof(body), "{\"error\":\"index compacted\",\"oldest_index\":%" PRIu64
		     "}\n", oldest);
	return http_send(wt->c, 410, JSON, NULL, body, (size_t)n);
}

/* Long-poll: one reply, as soon as an event matches or at the deadline. */
static int long_poll(struct watcher *wt, uint64_t deadline_us)
{
	struct buf reply;
	enum round_result r;
	int rc;

	for (;;) {
		if ((r = round_read(wt)) != ROUND_OK)
			break;
		if (wt->g.count || hub_now_us() >= deadline_us || http_watch_over(wt->c))
			break;
		uint64_t tick = hub_now_us() + WATCH_TICK_MS * 1000u;
		round_wait(wt, tick < deadline_us ? tick : deadline_us);
	}
	if (r == ROUND_COMPACTED)
		return answer_compacted(wt, false);
	if (r == ROUND_FAILED)
		return http_error(wt->c, 500, NULL, "storage failure reading the change index");
	http_set_index(wt->c, store_index(wt->node->store));
	buf_init(&reply, reply_cap(wt->node) + 64);
	buf_printf(&reply, "{\"index\":%" PRIu64 ",\"events\":[", wt->cursor);
	buf_add(&reply, wt->g.out.data, wt->g.out.len);
	buf_adds(&reply, "]}\n");
	if (buf_failed(&reply))
		rc = http_error(wt->c, 500, NULL, "out of memory");
	else
		rc = http_send(wt->c, 200, JSON, NULL, reply.data, reply.len);
	atomic_fetch_add(&wt->node->metrics.watch_events, wt->g.count);
	buf_release(&reply);
	return rc;
}

/* Server-Sent Events: events as they come, until the client goes. */
static int stream(struct watcher *wt)
{
	uint64_t next_comment = hub_now_us() + SSE_COMMENT_MS * 1000u;
	char first[64];
	int n;

	if (!http_stream_start(wt->c, "text/event-stream", NULL))
		return 200;
	/* a comment first, so a client sees the stream is open */
	n = snprintf(first, sizeof(first), ": index %" PRIu64 "\n\n", wt->cursor);
	if (!http_stream_write(wt->c, first, (size_t)n))
		return 200;
	for (;;) {
		enum round_result r = round_read(wt);

		if (r == ROUND_COMPACTED) {
			answer_compacted(wt, true);
			break;
		}
		if (r == ROUND_FAILED) {
			http_stream_write(wt->c, "event: error\ndata: {\"error\":\"storage failure\"}\n\n",
					  48);
			break;
		}
		if (wt->g.count) {
			if (buf_failed(&wt->g.out) ||
			    !http_stream_write(wt->c, wt->g.out.data, wt->g.out.len))
				break;
			atomic_fetch_add(&wt->node->metrics.watch_events, wt->g.count);
			gather_reset(&wt->g);
			next_comment = hub_now_us() + SSE_COMMENT_MS * 1000u;
		}
		if (http_watch_over(wt->c))
			break;
		if (hub_now_us() >= next_comment) {
			if (!http_stream_write(wt->c, ": keep-alive\n\n", 14))
				break;
			next_comment = hub_now_us() + SSE_COMMENT_MS * 1000u;
		}
		uint64_t tick = hub_now_us() + WATCH_TICK_MS * 1000u;
		round_wait(wt, tick < next_comment ? tick : next_comment);
	}
	return 200;
}

/* Registers the watcher and places its cursor (see the design comment).
 * Returns 0, or the status of the reply it sent (410, or 200 for an index
 * from the future, answered at once). */
static int watch_start(struct watcher *wt)
{
	struct store *s = wt->node->store;
	const struct watch *w = wt->w;
	uint64_t visible;

	hub_add(store_hub(s), &wt->hw);
	store_index_wait(s, store_index_taken(s), hub_now_us() + WATCH_RESERVE_MS * 1000u);
	visible = store_index(s);
	if (w->has_index) {
		if (w->index > visible && !w->sse) {
			char body[64];
			int n = snprintf(body, sizeof(body), "{\"index\":%" PRIu64 ",\"events\":[]}\n",
					 visible);
			http_set_index(wt->c, visible);
			return http_send(wt->c, 200, JSON, NULL, body, (size_t)n);
		}
		wt->cursor = w->index > visible ? visible : w->index;
		/* a stream too answers 410 here, before it starts: a browser's
		 * EventSource stops on it, where it would reconnect after an
		 * error event and loop on the same Last-Event-ID */
		if (wt->cursor + 1 < store_index_oldest(s))
			return answer_compacted(wt, false);
		wt->scan = wt->cursor < visible;
	} else if (w->since) {
		wt->cursor = store_index_oldest(s) - 1; /* the whole history, filtered by time */
		wt->scan = true;
	} else {
		wt->cursor = visible;
	}
	return 0;
}

int api_watch(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	      const char *raw_path)
{
	struct watch *w;
	struct watcher *wt;
	int rc;

	if (!store_changes_on(node->store))
		return http_error(c, 501, NULL,
				  "watches are off on this node (watch_history is 0)");
	if (!(w = calloc(1, sizeof(*w))) || !(wt = calloc(1, sizeof(*wt)))) {
		free(w);
		return http_error(c, 500, NULL, "out of memory");
	}
	if ((rc = watch_params(c, ri, raw_path, w)) != 0)
		goto out_free;
	if (!w->prefix && auth_key_access(node, c, w->key, w->klen) < ACCESS_READ) {
		rc = http_error(c, 403, NULL, "this token may not read %.200s", w->key);
		goto out_free;
	}
	if (!http_watch_begin(c)) {
		atomic_fetch_add(&node->metrics.watch_refused, 1);
		rc = http_error(c, 503, "Retry-After: 1\r\n",
				"too many open watches (max_watchers %d): retry shortly",
				node->cfg.max_watchers);
		goto out_free;
	}
	wt->node = node;
	wt->c = c;
	wt->w = w;
	wt->hw.key = w->key;
	wt->hw.klen = w->klen;
	wt->hw.prefix = w->prefix;
	wt->g.node = node;
	wt->g.c = c;
	wt->g.w = w;
	buf_init(&wt->g.out, reply_cap(node));
	if ((rc = watch_start(wt)) == 0)
		rc = w->sse ? stream(wt) : long_poll(wt, hub_now_us() + w->wait_ms * 1000u);
	hub_remove(store_hub(node->store), &wt->hw);
	http_watch_end(c);
	buf_release(&wt->g.out);
	if (wt->g.held)
		node_reply_give(node, wt->g.held);
out_free:
	free(wt);
	free(w);
	return rc;
}
