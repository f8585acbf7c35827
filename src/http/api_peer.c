/*
 * api_peer.c - the endpoints nodes use to talk to each other, all under
 * /members/ (listed in gossip.h and sync.h; routed by routes.c).
 *
 * By the time a handler runs, the route table has checked the cluster id
 * and secret and the method, and api_peer_call() has read the message
 * with a bound on its size, depth and values.  Every handler validates
 * its input as strictly as a client endpoint: a malformed message is
 * refused whole with 400 and changes nothing.  A message's "from" member
 * record counts as direct contact with its sender.  Pages and fetches run
 * within the node's reply budget (with_budget()).  Runs on civetweb
 * worker threads.
 */
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "buf.h"
#include "clock.h"
#include "conflict.h"
#include "gossip.h"
#include "http.h"
#include "json.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "path.h"
#include "peer.h"
#include "sync.h"
#include "version.h"
#include "wire.h"
#include "zstd_codec.h"

#define JSON "application/json"
#define PAGE_MAX_BYTES (8u << 20)   /* a listing page stops early past this */
#define FETCH_MAX_KEYS 1000
#define PAGE_BUDGET ((int64_t)2 * PAGE_MAX_BYTES) /* reply budget one page takes */

/* ------------------------------------------------------------------ helpers */

/*
 * Gives the memory of a large message back to the system.  glibc keeps
 * freed small blocks in per-thread arenas for good: after a few large
 * peer messages on different workers the node would hold gigabytes it no
 * longer uses.  Only worth its cost (a walk of the arenas) past 1 MiB.
 */
static void release_memory(size_t message_bytes)
{
	if (message_bytes >= (1u << 20))
		malloc_trim(0);
}

static int send_buf(struct mg_connection *c, struct buf *b)
{
	int rc;

	if (buf_failed(b))
		rc = http_error(c, 500, NULL, "reply too large or out of memory");
	else
		rc = http_send(c, 200, JSON, NULL, b->data, b->len);
	buf_release(b);
	return rc;
}

static int send_json(struct mg_connection *c, cJSON *o)
{
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	int rc;

	if (!text)
		rc = http_error(c, 500, NULL, "out of memory");
	else
		rc = http_send(c, 200, JSON, NULL, text, strlen(text));
	cJSON_free(text);
	cJSON_Delete(o);
	return rc;
}

/* Parses the message's "from" record; 0 or KVS_EINVAL.  Changes nothing. */
static int parse_from(cJSON *body, struct member *from)
{
	return member_from_json(cJSON_GetObjectItemCaseSensitive(body, "from"), from);
}

/* Takes a valid message's sender as direct contact: merges its record and
 * marks it heard.  Called only once the whole message has been validated. */
static void heard_from(struct kvs_node *node, const struct member *from)
{
	if (strcmp(from->id, node->cfg.node_id) == 0 || !gossip_record_trusted(node, from))
		return;
	members_merge(node->members, from, 1);
	if (from->status != MEMBER_LEFT)
		members_heard(node->members, from->id, version_now_ms());
}

static cJSON *reply_with_members(struct kvs_node *node)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = gossip_members_json(node);

	if (!o || !arr) {
		cJSON_Delete(o);
		cJSON_Delete(arr);
		return NULL;
	}
	cJSON_AddItemToObject(o, "members", arr);
	return o;
}

/* Reads an integer query parameter within [min, max]; default if absent. */
static int query_i64(const char *qs, const char *name, int64_t min, int64_t max, int64_t def,
		     int64_t *out)
{
	char v[32], *end;
	bool found;

	if (path_query_get(qs, name, v, sizeof(v), &found) != 0)
		return KVS_EINVAL;
	if (!found) {
		*out = def;
		return 0;
	}
	long long n = strtoll(v, &end, 10);
	if (!v[0] || *end || n < min || n > max)
		return KVS_EINVAL;
	*out = n;
	return 0;
}

/* --------------------------------------------------------------- membership */

int api_peer_join(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body)
{
	struct member in;
	char err[256];

	(void)ri;
	if (member_from_json(cJSON_GetObjectItemCaseSensitive(body, "member"), &in) != 0)
		return http_error(c, 400, NULL, "join needs a valid \"member\" record");
	if (strcmp(in.id, node->cfg.node_id) == 0 &&
	    strcmp(in.address, node->cfg.advertise_address) != 0) {
		log_warn_limited("join_refused", "id=%s address=%s reason=\"same node_id as this node\"",
				 in.id, in.address);
		return http_error(c, 409, NULL, "node_id %s is already held by %s", in.id,
				  node->cfg.advertise_address);
	}
	in.status = MEMBER_ALIVE;
	in.last_seen = version_now_ms();
	int rc = members_join(node->members, &in, err, sizeof(err));
	if (rc != 0) {
		log_warn_limited("join_refused", "id=%s address=%s reason=\"%s\"", in.id, in.address,
				 err);
		/* a full table is not a node_id clash: the joiner may retry later */
		return http_error(c, rc == KVS_ETOOBIG ? 503 : 409,
				  rc == KVS_ETOOBIG ? "Retry-After: 30\r\n" : NULL, "%s", err);
	}
	return send_json(c, reply_with_members(node));
}

int api_peer_gossip(struct kvs_node *node, struct mg_connection *c,
		    const struct mg_request_info *ri, cJSON *body)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "members"), *it;
	struct member from, *list;
	size_t n = 0;

	(void)ri;
	if (parse_from(body, &from) != 0 || !cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > 4096)
		return http_error(c, 400, NULL, "gossip needs \"from\" and a \"members\" array");
	list = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*list));
	if (!list)
		return http_error(c, 500, NULL, "out of memory");
	cJSON_ArrayForEach(it, arr) {
		if (member_from_json(it, &list[n]) != 0) {
			free(list);
			return http_error(c, 400, NULL, "invalid member record in gossip");
		}
		/* without a secret, only the member itself, asked at its
		 * address, says it has left (gossip_record_trusted) */
		if (!gossip_record_trusted(node, &list[n]))
			continue;
		n++;
	}
	heard_from(node, &from);
	members_merge(node->members, list, n);
	free(list);
	return send_json(c, reply_with_members(node));
}

int api_peer_ping(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body)
{
	struct member from;
	cJSON *o = cJSON_CreateObject();

	(void)ri;
	if (parse_from(body, &from) != 0) {
		cJSON_Delete(o);
		return http_error(c, 400, NULL, "ping needs a valid \"from\" record");
	}
	heard_from(node, &from);
	if (o) {
		cJSON_AddItemToObject(o, "member", gossip_self_json(node));
		struct clock_status st;

		cJSON_AddNumberToObject(o, "clock", (double)version_now_ms());
		clock_status_self(node, &st);
		clock_status_json(&st, o);
	}
	return send_json(c, o);
}

int api_peer_probe(struct kvs_node *node, struct mg_connection *c,
		   const struct mg_request_info *ri, cJSON *body)
{
	const cJSON *addr = cJSON_GetObjectItemCaseSensitive(body, "address");
	struct member from;
	char id[CONFIG_ID_MAX] = "";
	char reply[64];

	(void)ri;
	if (parse_from(body, &from) != 0 || !cJSON_IsString(addr) ||
	    strlen(addr->valuestring) >= CONFIG_ADDR_MAX)
		return http_error(c, 400, NULL, "probe needs \"from\" and an \"address\"");
	heard_from(node, &from);
	/* only probe members we know: never a relay to arbitrary addresses */
	bool known = false;
	struct member *list;
	size_t n = members_snapshot(node->members, &list);
	for (size_t i = 1; i < n; i++)
		known |= strcmp(list[i].address, addr->valuestring) == 0;
	free(list);
	if (!known)
		return http_error(c, 404, NULL, "address is not a member here");
	bool ok = gossip_ping(node, addr->valuestring, id, sizeof(id)) == 0;
	if (ok && id[0])
		members_heard(node->members, id, version_now_ms());
	int len = snprintf(reply, sizeof(reply), "{\"ok\":%s}", ok ? "true" : "false");
	return http_send(c, 200, JSON, NULL, reply, (size_t)len);
}

int api_peer_suspect(struct kvs_node *node, struct mg_connection *c,
		     const struct mg_request_info *ri, cJSON *body)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
	struct member from;

	(void)ri;
	if (parse_from(body, &from) != 0 || !cJSON_IsString(id))
		return http_error(c, 400, NULL, "suspect needs \"from\" and an \"id\"");
	heard_from(node, &from);
	if (strcmp(id->valuestring, node->cfg.node_id) != 0)
		members_suspect(node->members, id->valuestring, version_now_ms());
	return http_send(c, 200, JSON, NULL, "{}", 2);
}

/*
 * True if `from` may be taken as the member itself announcing its leave.
 * With a cluster secret, dispatch already checked it: a secret holder is
 * trusted.  Without one anyone can send this message (from any address:
 * on one host every process connects from 127.0.0.1), so it is believed
 * only when the member, asked at the address it is known by, says itself
 * that it has left: gossip_ping merges that answer, left included.  A
 * leaving node announces before its HTTP server stops, so it can answer.
 */
static bool leave_is_genuine(struct kvs_node *node, const struct member *from)
{
	struct member known;
	char id[CONFIG_ID_MAX] = "";

	if (node->cfg.cluster_secret[0])
		return true;
	if (!members_get(node->members, from->id, &known))
		return false; /* nobody to mark */
	gossip_ping(node, known.address, id, sizeof(id));
	return members_get(node->members, from->id, &known) && known.status == MEMBER_LEFT;
}

int api_peer_left(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body)
{
	struct member from;

	if (member_from_json(cJSON_GetObjectItemCaseSensitive(body, "from"), &from) != 0)
		return http_error(c, 400, NULL, "left needs a valid \"from\" record");
	if (!leave_is_genuine(node, &from)) {
		log_warn_limited("leave_refused", "id=%s from=%s reason=\"not sent by the member\"",
				 from.id, ri->remote_addr);
		return http_error(c, 403, NULL, "a member's leave is announced by the member itself");
	}
	members_left(node->members, from.id, from.incarnation);
	return http_send(c, 200, JSON, NULL, "{}", 2);
}

/* --------------------------------------------------------------------- data */

int api_peer_push(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, cJSON *body)
{
	struct apply_counts cnt = { 0 };
	struct member from;
	const char *why = "bad batch";
	char reply[160];

	(void)ri;
	if (parse_from(body, &from) != 0)
		return http_error(c, 400, NULL, "push needs a valid \"from\" record");
	/* anti-entropy pushes say so: they are repairs, not replication lag */
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(body, "kind");
	bool repair = cJSON_IsString(kind) && strcmp(kind->valuestring, "anti_entropy") == 0;
	int rc = apply_batch(node, from.id, cJSON_GetObjectItemCaseSensitive(body, "items"),
			     repair ? SYNC_ANTI_ENTROPY : SYNC_PUSH, &cnt, &why);
	if (rc != 0 && rc != KVS_EIO) { /* refused whole: nothing applied */
		log_warn_limited("push_refused", "peer=%s reason=\"%s\"", from.id, why);
		return http_error(c, 400, NULL, "push refused, nothing applied: %s", why);
	}
	heard_from(node, &from);
	if (rc != 0)
		return http_error(c, 500, NULL, "storage failure applying push");
	int len = snprintf(reply, sizeof(reply),
			   "{\"applied\":%zu,\"stale\":%zu,\"conflicts\":%zu,\"refused\":%zu}",
			   cnt.applied, cnt.stale, cnt.conflicts, cnt.refused);
	/* offers zstd for the next pushes (RFC 7694); a sender that never sees
	 * this header never compresses (zstd_codec.h) */
	return http_send(c, 200, JSON, node->cfg.peer_compression ? "Accept-Encoding: zstd\r\n" : NULL,
			 reply, (size_t)len);
}

struct page {
	struct kvs_node *node;
	struct buf *b;
	size_t count;                  /* records in the page */
	size_t seen;                   /* records walked, those not shared included */
	bool values;
	bool cut;                      /* stopped at PAGE_MAX_BYTES */
	int64_t last_ts;
	char last_key[PATH_KEY_MAX + 1];
};

static int page_item(void *arg, const char *key, size_t klen, const struct kvs_record *r)
{
	struct page *p = arg;

	if (p->b->len > PAGE_MAX_BYTES) {
		p->cut = true;
		return 1;
	}
	/* the cursor moves over records not shared too, so that a page of
	 * them neither ends the walk nor sends the asker back to the start */
	p->seen++;
	p->last_ts = r->v.ts;
	memcpy(p->last_key, key, klen > PATH_KEY_MAX ? PATH_KEY_MAX : klen);
	p->last_key[klen > PATH_KEY_MAX ? PATH_KEY_MAX : klen] = '\0';
	if (!sync_may_share(p->node, r))
		return 0;
	if (p->count++)
		buf_add(p->b, ",", 1);
	wire_record_add(p->b, key, klen, r, p->values);
	return 0;
}

/* GET /members/recent and /members/since: pages of the time index. */
static int peer_time_page(struct kvs_node *node, struct mg_connection *c,
			  const struct mg_request_info *ri, bool descending)
{
	const char *qs = ri->query_string;
	char key[PATH_KEY_MAX + 2] = "", vals[8] = "";
	int64_t ts, limit;
	bool found;
	struct buf b;
	struct page p = { .node = node, .b = &b };

	if (query_i64(qs, descending ? "before_ts" : "ts", 0, INT64_MAX / 2, 0, &ts) != 0 ||
	    query_i64(qs, "limit", 1, WIRE_MAX_ITEMS, 100, &limit) != 0 ||
	    path_query_get(qs, descending ? "before_key" : "key", key, sizeof(key), &found) != 0 ||
	    path_query_get(qs, "values", vals, sizeof(vals), &found) != 0)
		return http_error(c, 400, NULL, "bad query parameters");
	p.values = strcmp(vals, "true") == 0;
	buf_init(&b, PAGE_MAX_BYTES + 2 * (size_t)node->cfg.max_value_bytes * 6 + 4096);
	buf_adds(&b, "{\"items\":[");
	int rc = store_scan_time(node->store, ts, key, strlen(key), descending, (size_t)limit,
				 page_item, &p);
	if (rc < 0) {
		buf_release(&b);
		return http_error(c, 500, NULL, "storage failure");
	}
	buf_printf(&b, "],\"count\":%zu,\"more\":%s,\"next_ts\":%lld,\"next_key\":", p.count,
		   p.cut || p.seen == (size_t)limit ? "true" : "false", (long long)p.last_ts);
	buf_json_str(&b, p.last_key, strlen(p.last_key));
	buf_adds(&b, "}");
	return send_buf(c, &b);
}

int api_peer_recent(struct kvs_node *node, struct mg_connection *c,
		    const struct mg_request_info *ri, cJSON *body)
{
	(void)body;
	return peer_time_page(node, c, ri, true);
}

int api_peer_since(struct kvs_node *node, struct mg_connection *c,
		   const struct mg_request_info *ri, cJSON *body)
{
	(void)body;
	return peer_time_page(node, c, ri, false);
}

int api_peer_fetch(struct kvs_node *node, struct mg_connection *c,
		   const struct mg_request_info *ri, cJSON *body)
{
	const cJSON *keys = cJSON_GetObjectItemCaseSensitive(body, "keys"), *k;
	struct buf b, more;
	size_t count = 0, nmore = 0;

	(void)ri;
	if (!cJSON_IsArray(keys) || cJSON_GetArraySize(keys) > FETCH_MAX_KEYS)
		return http_error(c, 400, NULL, "fetch needs a \"keys\" array of at most %d",
				  FETCH_MAX_KEYS);
	cJSON_ArrayForEach(k, keys) {
		if (!cJSON_IsString(k) || !path_key_valid(k->valuestring, strlen(k->valuestring)))
			return http_error(c, 400, NULL, "fetch: invalid key");
	}
	buf_init(&b, PAGE_MAX_BYTES + 2 * (size_t)node->cfg.max_value_bytes * 6 + 4096);
	buf_init(&more, PAGE_MAX_BYTES);
	buf_adds(&b, "{\"items\":[");
	cJSON_ArrayForEach(k, keys) {
		struct store_value v;
		size_t klen = strlen(k->valuestring);

		if (b.len > PAGE_MAX_BYTES) {
			/* the rest goes in "more": the caller asks again */
			if (nmore++)
				buf_add(&more, ",", 1);
			buf_json_str(&more, k->valuestring, klen);
			continue;
		}
		int rc = store_get(node->store, k->valuestring, klen, &v);
		if (rc == KVS_ENOTFOUND)
			continue;
		if (rc != 0) {
			buf_release(&b);
			buf_release(&more);
			return http_error(c, 500, NULL, "storage failure");
		}
		if (sync_may_share(node, &v.rec)) {
			if (count++)
				buf_add(&b, ",", 1);
			wire_record_add(&b, k->valuestring, klen, &v.rec, true);
		}
		store_value_release(&v);
	}
	buf_adds(&b, "],\"more\":[");
	buf_add(&b, more.data ? more.data : "", more.len);
	buf_adds(&b, "]}");
	buf_release(&more);
	return send_buf(c, &b);
}

int api_peer_digests(struct kvs_node *node, struct mg_connection *c,
		     const struct mg_request_info *ri, cJSON *body)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t *d = malloc(STORE_BUCKETS * sizeof(*d));
	struct buf b;

	(void)ri;
	(void)body;
	if (!d)
		return http_error(c, 500, NULL, "out of memory");
	store_digests(node->store, d);
	buf_init(&b, STORE_BUCKETS * 16 + 256);
	buf_printf(&b, "{\"buckets\":%d,\"digests\":\"", STORE_BUCKETS);
	char *out = buf_reserve(&b, STORE_BUCKETS * 16);
	if (out) {
		for (int i = 0; i < STORE_BUCKETS; i++)
			for (int j = 0; j < 16; j++)
				out[i * 16 + j] = hex[(d[i] >> (60 - 4 * j)) & 15];
		buf_commit(&b, STORE_BUCKETS * 16);
	}
	buf_adds(&b, "\"}");
	free(d);
	return send_buf(c, &b);
}

int api_peer_bucket(struct kvs_node *node, struct mg_connection *c,
		    const struct mg_request_info *ri, cJSON *body)
{
	int64_t bucket;
	struct buf b;
	struct page p = { .node = node, .b = &b };

	(void)body;
	if (query_i64(ri->query_string, "b", 0, STORE_BUCKETS - 1, -1, &bucket) != 0 || bucket < 0)
		return http_error(c, 400, NULL, "bucket needs b from 0 to %d", STORE_BUCKETS - 1);
	buf_init(&b, 4 * PAGE_MAX_BYTES);
	buf_adds(&b, "{\"items\":[");
	if (store_scan_bucket(node->store, (unsigned)bucket, page_item, &p) < 0) {
		buf_release(&b);
		return http_error(c, 500, NULL, "storage failure");
	}
	buf_printf(&b, "],\"count\":%zu,\"complete\":%s}", p.count, p.cut ? "false" : "true");
	return send_buf(c, &b);
}

/*
 * The pages and fetches above build replies of up to PAGE_MAX_BYTES (and
 * one record) in memory: each takes PAGE_BUDGET from the node's reply
 * budget while it runs, or is answered 503 (the peer retries later).
 */
static int with_budget(struct kvs_node *node, struct mg_connection *c,
		       const struct mg_request_info *ri, cJSON *body, api_msg_fn fn)
{
	int rc;

	if (!node_reply_take(node, PAGE_BUDGET)) {
		atomic_fetch_add(&node->metrics.listings_refused, 1);
		return http_error(c, 503, "Retry-After: 1\r\n", "too many pages in flight: retry shortly");
	}
	rc = fn(node, c, ri, body);
	node_reply_give(node, PAGE_BUDGET);
	return rc;
}

/* ---------------------------------------------------------------- entries */

/*
 * Reads and parses a peer message body: capped in size, then checked for
 * depth and value count before cJSON builds it (json_parse_bounded), so
 * neither the worker's stack nor the heap grows past a small multiple of
 * the body.  A push (zstd_allowed) may come as one zstd frame
 * (Content-Encoding: zstd, while peer_compression is on), decompressed
 * within the same cap; any other Content-Encoding gets 415.  Answers the
 * error itself and returns its status, else 0 with *out set (caller frees
 * with cJSON_Delete).
 */
static int read_message(struct kvs_node *node, struct mg_connection *c, bool zstd_allowed,
			cJSON **out, size_t *out_len)
{
	size_t max = 8 * (size_t)node->cfg.max_value_bytes + (8u << 20), len;
	const char *why = "not a JSON object";
	char *text;
	const char *enc = mg_get_header(c, "Content-Encoding");
	int rc;

	/* a push may come as one zstd frame (zstd_codec.h); nothing else does */
	if (enc && strcasecmp(enc, "identity") != 0 &&
	    !(strcasecmp(enc, "zstd") == 0 && node->cfg.peer_compression && zstd_allowed)) {
		mg_disable_keep_alive(c); /* its body is left unread */
		atomic_fetch_add(&node->metrics.peer_messages_refused, 1);
		return http_error(c, 415, "Connection: close\r\n",
				  "Content-Encoding %.32s not accepted here", enc);
	}
	rc = http_read_body(c, max, &text, &len);
	if (rc != 0) {
		bool close = rc == 413 || rc == 408;

		if (close)
			mg_disable_keep_alive(c);
		return http_error(c, rc, close ? "Connection: close\r\n" : NULL, "bad request body");
	}
	if (enc && strcasecmp(enc, "zstd") == 0) {
		char *plain;
		size_t plain_len;

		rc = zstd_unpack(text, len, max, &plain, &plain_len);
		free(text);
		release_memory(len);
		if (rc != 0) {
			atomic_fetch_add(&node->metrics.peer_messages_refused, 1);
			return http_error(c, rc == KVS_ETOOBIG ? 413 : rc == KVS_ENOMEM ? 503 : 400,
					  NULL, "zstd body: %s",
					  rc == KVS_ETOOBIG ? "larger than the body cap when decompressed"
					  : rc == KVS_ENOMEM ? "out of memory"
					  : "not one whole zstd frame");
		}
		text = plain;
		len = plain_len;
	}
	*out = json_parse_bounded(text, len, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES, &why);
	free(text);
	*out_len = len;
	if (!cJSON_IsObject(*out)) {
		cJSON_Delete(*out);
		*out = NULL;
		release_memory(len);
		atomic_fetch_add(&node->metrics.peer_messages_refused, 1);
		return http_error(c, 400, NULL, "body must be a JSON object (%s)", why);
	}
	return 0;
}

int api_peer_call(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
		  api_msg_fn fn, bool has_body, bool paged)
{
	cJSON *body = NULL;
	size_t body_len = 0; /* what was read: chunked bodies have no Content-Length */
	int rc;

	if (has_body && (rc = read_message(node, c, fn == api_peer_push, &body, &body_len)) != 0)
		return rc;
	if (paged)
		rc = with_budget(node, c, ri, body, fn);
	else
		rc = fn(node, c, ri, body);
	cJSON_Delete(body);
	release_memory(body_len);
	return rc;
}
