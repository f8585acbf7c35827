/*
 * client_watch.c - kvs_watch(): long-polls GET /watch/ by index and moves
 * to the next endpoint when its node is lost (README: Watches, "Resuming
 * on another node").
 *
 * States of a watch:
 *   by-index  the node's index M of the last reply; asks ?index=M
 *   by-since  after a failover, a 410, or before the first reply of a
 *             node: asks ?since=T, T = last event's timestamp (or the
 *             watch's start) - margin; the reply's index returns it to
 *             by-index
 * Events that may come twice after a resume by since carry the same key
 * and uuid: `seen` remembers a hash of both for every event whose
 * timestamp is within the margin of the newest one, and drops repeats.
 *
 * Threads: the caller's, for the whole watch; uses the client's handle.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "client_int.h"

#define WATCH_DEFAULT_WAIT_S 30
#define WATCH_DEFAULT_MARGIN_MS 5000
#define WATCH_DEFAULT_ROUNDS 3
#define WATCH_GRACE_MS 15000         /* beyond the long-poll's wait before a reply counts as lost */

struct watch_state {
	kvs_client *c;
	struct kvs_watch_options opt;
	struct kc_seen seen;
	size_t ep;                   /* endpoint in use */
	bool by_index;
	uint64_t index;
	int64_t since;
	int64_t start_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t kc_event_hash(const char *key, const char *uuid)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (const char *p = key; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = uuid; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

bool kc_seen_has(const struct kc_seen *s, uint64_t h)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].h == h)
			return true;
	return false;
}

int kc_seen_add(struct kc_seen *s, uint64_t h, int64_t ts, int64_t margin)
{
	if (ts > s->newest)
		s->newest = ts;
	if (s->n == s->cap) {
		size_t j = 0;

		for (size_t i = 0; i < s->n; i++)
			if (s->v[i].ts >= s->newest - 2 * margin)
				s->v[j++] = s->v[i];
		s->n = j;
		if (s->n * 2 >= s->cap) {
			size_t cap = s->cap ? s->cap * 2 : 256;
			struct kc_seen_entry *v = realloc(s->v, cap * sizeof(*v));

			if (!v)
				return KVS_ENOMEM;
			s->v = v;
			s->cap = cap;
		}
	}
	s->v[s->n].h = h;
	s->v[s->n].ts = ts;
	s->n++;
	return 0;
}

static const char *str_member(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t num_member(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* Hands one event of a reply to fn unless it was seen.  Returns 0 to go on,
 * fn's nonzero answer, or an error. */
static int deliver(struct watch_state *w, const cJSON *e, const char *text,
		   const struct kc_span *sp, kvs_watch_fn fn, void *arg)
{
	struct kvs_event ev = { 0 };
	const char *uuid = str_member(e, "uuid");
	const cJSON *val = cJSON_GetObjectItemCaseSensitive(e, "value");
	char *value_text = NULL, *raw = NULL;
	uint64_t h;
	int rc;

	ev.key = str_member(e, "key");
	ev.type = str_member(e, "type");
	if (!ev.key || !ev.type || !uuid)
		return KVS_EPROTO;
	h = kc_event_hash(ev.key, uuid);
	ev.version.timestamp = num_member(e, "timestamp");
	if (kc_seen_has(&w->seen, h))
		return 0;
	if ((rc = kc_seen_add(&w->seen, h, ev.version.timestamp, w->opt.margin_ms)) != 0)
		return rc;
	snprintf(ev.version.uuid, sizeof(ev.version.uuid), "%s", uuid);
	ev.version.expires = num_member(e, "expires");
	ev.index = (uint64_t)num_member(e, "index");
	ev.origin = str_member(e, "origin");
	ev.endpoint = w->c->endpoints[w->ep];
	/* the value and the event as the node sent them, else printed from the parse */
	if (sp && sp->val_len)
		value_text = strndup(text + sp->val_off, sp->val_len);
	else if (val)
		value_text = cJSON_PrintUnformatted(val);
	if (val && !value_text)
		return KVS_ENOMEM;
	raw = sp ? strndup(text + sp->off, sp->len) : cJSON_PrintUnformatted(e);
	if (!raw) {
		free(value_text);
		return KVS_ENOMEM;
	}
	ev.json = value_text;
	ev.len = value_text ? strlen(value_text) : 0;
	ev.raw = raw;
	rc = fn(&ev, arg);
	free(value_text);
	free(raw);
	return rc;
}

/* One long-poll on the current endpoint.  Returns 0, fn's nonzero answer,
 * or an error (KVS_EUNREACHABLE, KVS_ECOMPACTED: the caller resumes). */
static int poll_once(struct watch_state *w, const char *key, kvs_watch_fn fn, void *arg)
{
	struct kc_buf path = { 0 };
	struct kc_req req = { .method = "GET", .cancel = w->opt.cancel };
	struct kc_reply rep;
	const cJSON *events, *e, *idx;
	struct kc_span *spans = NULL;
	cJSON *o = NULL;
	size_t klen = strlen(key), n, i = 0;
	int rc;

	rc = kc_key_path(&path, "/watch/", key, klen == 0 || key[klen - 1] == '/');
	if (!rc)
		rc = kc_buf_printf(&path, "?wait=%ds%s", w->opt.wait_s,
				   w->opt.no_values ? "&values=false" : "");
	if (!rc && w->by_index)
		rc = kc_buf_printf(&path, "&index=%" PRIu64, w->index);
	else if (!rc && w->since > 0)
		rc = kc_buf_printf(&path, "&since=%" PRId64, w->since);
	if (rc) {
		kc_buf_release(&path);
		return rc;
	}
	req.path = path.data;
	req.address = w->c->endpoints[w->ep];
	req.timeout_ms = (long)w->opt.wait_s * 1000 + WATCH_GRACE_MS;
	rc = kc_send(w->c, &req, &rep);
	kc_buf_release(&path);
	if (rc)
		return rc;
	if ((rc = kc_status(w->c, &rep)) != 0)
		goto out;
	o = cJSON_ParseWithLength(rep.body.data ? rep.body.data : "", rep.body.len);
	events = cJSON_GetObjectItemCaseSensitive(o, "events");
	idx = cJSON_GetObjectItemCaseSensitive(o, "index");
	if (!cJSON_IsArray(events) || !cJSON_IsNumber(idx)) {
		kc_seterr(w->c, "watch reply without index or events");
		rc = KVS_EPROTO;
		goto out;
	}
	w->c->current = w->ep;
	n = (size_t)cJSON_GetArraySize(events);
	if (n && (spans = calloc(n, sizeof(*spans))) &&
	    kc_scan_array(rep.body.data, rep.body.len, "events", spans, n) != (int)n) {
		free(spans);
		spans = NULL;
	}
	cJSON_ArrayForEach(e, events) {
		if ((rc = deliver(w, e, rep.body.data, spans ? &spans[i] : NULL, fn, arg)) != 0)
			goto out;
		i++;
	}
	w->by_index = true;
	w->index = (uint64_t)idx->valuedouble;
out:
	free(spans);
	cJSON_Delete(o);
	kc_reply_release(&rep);
	return rc;
}

int kvs_watch(kvs_client *c, const char *key, const struct kvs_watch_options *opt,
	      kvs_watch_fn fn, void *arg)
{
	struct watch_state w = { .c = c };
	size_t fails = 0;
	int rc;

	if (!c || !fn)
		return KVS_EINVAL;
	if (opt)
		w.opt = *opt;
	if (w.opt.wait_s <= 0)
		w.opt.wait_s = WATCH_DEFAULT_WAIT_S;
	if (w.opt.wait_s > 600)
		w.opt.wait_s = 600;
	if (w.opt.margin_ms <= 0)
		w.opt.margin_ms = WATCH_DEFAULT_MARGIN_MS;
	if (w.opt.retry_rounds <= 0)
		w.opt.retry_rounds = WATCH_DEFAULT_ROUNDS;
	w.start_ms = now_ms();
	w.ep = c->current;
	w.by_index = w.opt.index > 0;
	w.index = w.opt.index;
	w.since = w.opt.since;
	for (;;) {
		if (w.opt.cancel && *w.opt.cancel) {
			rc = KVS_ECANCELED;
			break;
		}
		rc = poll_once(&w, key ? key : "", fn, arg);
		if (rc == 0) {
			fails = 0;
			continue;
		}
		if (rc != KVS_EUNREACHABLE && rc != KVS_ECOMPACTED)
			break;
		/* resume by time: on the next endpoint, or here after a 410 */
		w.by_index = false;
		w.since = (w.seen.newest ? w.seen.newest : w.start_ms) - w.opt.margin_ms;
		if (rc == KVS_EUNREACHABLE) {
			if (++fails >= c->n_endpoints * (size_t)w.opt.retry_rounds)
				break;
			w.ep = (w.ep + 1) % c->n_endpoints;
			if (fails % c->n_endpoints == 0) { /* a whole round failed: pause */
				struct timespec pause = { 1, 0 };

				nanosleep(&pause, NULL);
			}
		}
	}
	free(w.seen.v);
	return rc;
}
