/*
 * api_kv.c - the data API: /kv/{path} and /kv/{prefix}/ (SPEC section 3).
 *
 *   GET|HEAD /kv/{path}      the stored JSON, byte for byte, ETag = UUID
 *   PUT /kv/{path}           store a JSON value (strict RFC 8259)
 *   DELETE /kv/{path}        write a tombstone
 *   (both take If-Match: "<uuid>" | *, and PUT If-None-Match: *, SPEC
 *   section 8: checked by the write door under the key's lock)
 *   GET|HEAD /kv/{prefix}/   sorted, paginated listing (limit, after, values)
 *
 * Writes go through store_apply_batch(STORE_LOCAL), the one write door; the
 * mode (read-only, syncing) is checked first.  Runs on civetweb worker
 * threads; all state is in node.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "buf.h"
#include "http.h"
#include "json.h"
#include "kvs.h"
#include "log.h"
#include "path.h"
#include "replicate.h"

#define LIST_DEFAULT_LIMIT 1000
#define LIST_MAX_LIMIT 10000
#define LIST_MAX_BYTES (32u << 20) /* a page stops early rather than pass this */
#define LIST_BUDGET_STEP ((int64_t)1 << 20) /* taken from the reply budget at a time */
#define JSON "application/json"

/* ------------------------------------------------------------------ reads */

/* Answers 403 unless the request's token has `need` on key; else 0. */
static int key_allowed(struct kvs_node *node, struct mg_connection *c, const char *key,
		       size_t klen, enum config_access need)
{
	if (auth_key_access(node, c, key, klen) >= need)
		return 0;
	return http_error(c, 403, NULL, "this token may not %s %.200s",
			  need == ACCESS_WRITE ? "write" : "read", key);
}

static int kv_get(struct kvs_node *node, struct mg_connection *c, const char *key, size_t klen)
{
	struct store_value v;
	char uuid[VERSION_UUID_STR], extra[160];
	int rc = key_allowed(node, c, key, klen, ACCESS_READ);

	if (rc != 0)
		return rc;
	rc = store_get(node->store, key, klen, &v);

	if (rc == KVS_ENOTFOUND || (rc == 0 && !record_live(&v.rec, version_now_ms()))) {
		if (rc == 0)
			store_value_release(&v);
		return http_error(c, 404, NULL, "key not found: %.200s", key);
	}
	if (rc != 0)
		return http_error(c, 500, NULL, "storage failure reading %.200s", key);
	version_uuid_str(&v.rec.v, uuid);
	int n = snprintf(extra, sizeof(extra), "ETag: \"%s\"\r\nX-Kvs-Timestamp: %lld\r\n", uuid,
			 (long long)v.rec.v.ts);
	if (v.rec.expires > 0)
		snprintf(extra + n, sizeof(extra) - (size_t)n, "X-Kvs-Expires: %lld\r\n",
			 (long long)v.rec.expires);
	http_send(c, 200, JSON, extra, v.rec.value, v.rec.value_len);
	store_value_release(&v);
	return 200;
}

struct list_ctx {
	struct kvs_node *node;
	struct mg_connection *c; /* whose token decides which keys are listed */
	int64_t held;       /* bytes taken from the node's reply budget */
	struct buf keys;    /* "k1","k2",... */
	struct buf items;   /* {"key":..},... when values=true */
	bool values;
	size_t count;
	const char *last;   /* last key given, borrowed from `lastbuf` */
	char lastbuf[PATH_KEY_MAX + 1];
	size_t lastlen;
	bool cut;           /* stopped early at LIST_MAX_BYTES */
};

static int list_item(void *arg, const char *key, size_t klen, const struct kvs_record *r)
{
	struct list_ctx *lc = arg;
	char uuid[VERSION_UUID_STR];

	if (lc->keys.len + lc->items.len > LIST_MAX_BYTES) {
		lc->cut = true;
		return 1;
	}
	if (auth_key_access(lc->node, lc->c, key, klen) < ACCESS_READ)
		goto seen; /* left out, and not counted: a listing never says it hid keys */
	/* the page is held twice at the end (the parts, then the reply): take
	 * that from the budget as it grows; a page that cannot grow ends here
	 * (a page always gets its first item) */
	int64_t need = 2 * (int64_t)(lc->keys.len + lc->items.len + 6 * (klen + r->value_len) + 256);
	if (need > lc->held) {
		int64_t more = need - lc->held < LIST_BUDGET_STEP ? LIST_BUDGET_STEP : need - lc->held;

		if (node_reply_take(lc->node, more))
			lc->held += more;
		else if (lc->count) {
			lc->cut = true;
			return 1;
		}
	}
	if (lc->count)
		buf_add(&lc->keys, ",", 1);
	buf_json_str(&lc->keys, key, klen);
	if (lc->values) {
		version_uuid_str(&r->v, uuid);
		if (lc->count)
			buf_add(&lc->items, ",", 1);
		buf_adds(&lc->items, "{\"key\":");
		buf_json_str(&lc->items, key, klen);
		buf_adds(&lc->items, ",\"value\":");
		buf_add(&lc->items, r->value, r->value_len);
		buf_printf(&lc->items, ",\"uuid\":\"%s\",\"timestamp\":%lld", uuid,
			   (long long)r->v.ts);
		if (r->expires > 0)
			buf_printf(&lc->items, ",\"expires\":%lld", (long long)r->expires);
		buf_add(&lc->items, "}", 1);
	}
	lc->count++;
seen:
	klen = klen > PATH_KEY_MAX ? PATH_KEY_MAX : klen;
	memcpy(lc->lastbuf, key, klen);
	lc->lastbuf[klen] = '\0';
	lc->lastlen = klen;
	lc->last = lc->lastbuf;
	return 0;
}

/* Parses ?limit=, ?after=, ?values= ; answers 400 itself on a bad one. */
static int list_params(struct mg_connection *c, const char *qs, size_t *limit, char *after,
		       size_t afterlen, bool *values)
{
	char v[32];
	bool found;

	*limit = LIST_DEFAULT_LIMIT;
	if (path_query_get(qs, "limit", v, sizeof(v), &found) != 0)
		return http_error(c, 400, NULL, "bad limit");
	if (found) {
		char *end;
		long n = strtol(v, &end, 10);
		if (!v[0] || *end || n < 1 || n > LIST_MAX_LIMIT)
			return http_error(c, 400, NULL, "limit must be an integer from 1 to %d",
					  LIST_MAX_LIMIT);
		*limit = (size_t)n;
	}
	if (path_query_get(qs, "after", after, afterlen, &found) != 0 ||
	    strlen(after) > PATH_KEY_MAX)
		return http_error(c, 400, NULL, "bad after: malformed or longer than %d bytes",
				  PATH_KEY_MAX);
	if (!found)
		after[0] = '\0';
	*values = false;
	if (path_query_get(qs, "values", v, sizeof(v), &found) != 0)
		return http_error(c, 400, NULL, "bad values");
	if (found) {
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*values = true;
		else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
			return http_error(c, 400, NULL, "values must be true or false");
	}
	return 0;
}

static int kv_list(struct kvs_node *node, struct mg_connection *c,
		   const struct mg_request_info *ri, const char *prefix, size_t plen)
{
	struct list_ctx *lc;
	char after[PATH_KEY_MAX + 2] = "";
	size_t limit;
	bool values, more = false;
	struct buf out;
	int rc;

	if ((rc = list_params(c, ri->query_string, &limit, after, sizeof(after), &values)) != 0)
		return rc;
	if (!node_reply_take(node, LIST_BUDGET_STEP)) {
		atomic_fetch_add(&node->metrics.listings_refused, 1);
		return http_error(c, 503, "Retry-After: 1\r\n",
				  "too many large listings in flight: retry shortly");
	}
	if (!(lc = calloc(1, sizeof(*lc)))) {
		node_reply_give(node, LIST_BUDGET_STEP);
		return http_error(c, 500, NULL, "out of memory");
	}
	lc->node = node;
	lc->c = c;
	lc->held = LIST_BUDGET_STEP;
	buf_init(&lc->keys, LIST_MAX_BYTES * 2);
	buf_init(&lc->items, LIST_MAX_BYTES * 2);
	lc->values = values;

	rc = store_list(node->store, prefix, plen, after, strlen(after), limit, list_item, lc,
			&more);
	if (rc < 0) {
		rc = http_error(c, 500, NULL, "storage failure listing %.200s", prefix);
		goto out_free;
	}
	if (lc->cut)
		more = true;

	buf_init(&out, (size_t)LIST_MAX_BYTES * 3);
	buf_adds(&out, "{\"prefix\":");
	buf_json_str(&out, prefix, plen);
	buf_adds(&out, ",\"keys\":[");
	buf_add(&out, lc->keys.data ? lc->keys.data : "", lc->keys.len);
	buf_printf(&out, "],\"count\":%zu,\"next\":", lc->count);
	if (more && lc->last)
		buf_json_str(&out, lc->last, lc->lastlen);
	else
		buf_adds(&out, "null");
	if (values) {
		buf_adds(&out, ",\"items\":[");
		buf_add(&out, lc->items.data ? lc->items.data : "", lc->items.len);
		buf_adds(&out, "]");
	}
	buf_adds(&out, "}\n");
	if (buf_failed(&out) || buf_failed(&lc->keys) || buf_failed(&lc->items))
		rc = http_error(c, 500, NULL, "listing too large or out of memory");
	else
		rc = http_send(c, 200, JSON, NULL, out.data, out.len);
	buf_release(&out);
out_free:
	buf_release(&lc->keys);
	buf_release(&lc->items);
	node_reply_give(node, lc->held);
	free(lc);
	return rc;
}

/* ----------------------------------------------------------------- writes */

int api_writable(struct kvs_node *node, struct mg_connection *c)
{
	int mode = atomic_load(&node->mode);

	if (mode == MODE_READ_ONLY)
		return http_error(c, 403, NULL, "node is read-only: writes are refused");
	if (mode == MODE_SYNCING)
		return http_error(c, 503, "Retry-After: 5\r\n",
				  "node is syncing with the cluster: retry shortly");
	if (atomic_load(&node->clock_skewed))
		return http_error(c, 503, "Retry-After: 5\r\n",
				  "this node's clock disagrees with its peers' by more than "
				  "max_clock_offset_ms: writes are refused until it agrees");
	return 0;
}

/* Every change before the write is written too once this index is. */
void api_written_index(struct kvs_node *node, struct mg_connection *c)
{
	if (store_changes_on(node->store))
		http_set_index(c, store_index(node->store));
}

int api_read_body(struct mg_connection *c, size_t max, const char *what, char **body,
		  size_t *len)
{
	int rc = http_read_body(c, max, body, len);

	switch (rc) {
	case 0:
		return 0;
	case 411:
		return http_error(c, 411, NULL, "Content-Length required");
	case 413:
		mg_disable_keep_alive(c); /* the unread body must not be parsed as a request */
		return http_error(c, 413, "Connection: close\r\n", "%s larger than %zu bytes", what,
				  max);
	case 408:
		mg_disable_keep_alive(c);
		return http_error(c, 408, "Connection: close\r\n",
				  "request body not received within http_request_timeout_ms");
	default:
		return http_error(c, rc, NULL, "could not read the request body");
	}
}

bool api_parse_if_match(const char *s, struct store_op *op)
{
	char uuid[VERSION_UUID_STR];
	size_t n = strlen(s);

	if (strcmp(s, "*") == 0) {
		op->cond = STORE_COND_EXISTS;
		return true;
	}
	if (n != VERSION_UUID_STR + 1 || s[0] != '"' || s[n - 1] != '"')
		return false;
	memcpy(uuid, s + 1, n - 2);
	uuid[n - 2] = '\0';
	if (version_uuid_parse(&op->match, uuid) != 0)
		return false;
	op->cond = STORE_COND_MATCH;
	return true;
}

int api_parse_ttl(const char *s, int64_t max_s, int64_t *ms, const char **why)
{
	static const struct { const char *unit; int64_t ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
		{ "", 1000 }, /* a bare number: seconds */
	};
	size_t digits = strspn(s, "0123456789");
	int64_t n = 0;

	*why = "ttl must be a whole number with a unit ms, s, m, h or d (e.g. 30s)";
	if (digits == 0 || digits > 12)
		return KVS_EINVAL;
	for (size_t i = 0; i < digits; i++)
		n = n * 10 + (s[i] - '0');
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(s + digits, units[u].unit) != 0)
			continue;
		if (n > INT64_MAX / units[u].ms || n * units[u].ms > max_s * 1000 ||
		    n * units[u].ms < 1000) {
			*why = "ttl out of range: from 1 s to max_ttl";
			return KVS_ETOOBIG;
		}
		*ms = n * units[u].ms;
		return 0;
	}
	return KVS_EINVAL;
}

/* Reads If-Match / If-None-Match into op (SPEC section 8).  Returns 0, or
 * the 400 it answered for a malformed or unsupported condition. */
static int read_condition(struct mg_connection *c, bool is_put, struct store_op *op)
{
	const char *im = mg_get_header(c, "If-Match"), *inm = mg_get_header(c, "If-None-Match");

	if (im && inm)
		return http_error(c, 400, NULL, "If-Match and If-None-Match cannot be combined");
	if (im && !api_parse_if_match(im, op))
		return http_error(c, 400, NULL,
				  "If-Match must be * or one quoted uuid (the ETag of a GET)");
	if (inm && (!is_put || strcmp(inm, "*") != 0))
		return http_error(c, 400, NULL, is_put ? "If-None-Match must be *" :
				  "If-None-Match is for PUT (create only), not DELETE");
	if (inm)
		op->cond = STORE_COND_ABSENT;
	return 0;
}

/* Appends {"key":..,"uuid":..,"timestamp":..} of op's current version
 * (nulls when absent or deleted) to b. */
static void current_json(struct buf *b, const struct store_op *op)
{
	char uuid[VERSION_UUID_STR];

	if (!op->had || !record_live(&op->current, version_now_ms())) {
		buf_adds(b, "\"uuid\":null,\"timestamp\":null");
		return;
	}
	version_uuid_str(&op->current.v, uuid);
	buf_printf(b, "\"uuid\":\"%s\",\"timestamp\":%lld", uuid, (long long)op->current.v.ts);
}

int api_precondition_failed(struct mg_connection *c, const struct store_op *op)
{
	struct buf b;
	int rc;

	buf_init(&b, 256);
	buf_adds(&b, "{\"error\":\"precondition failed\",");
	current_json(&b, op);
	buf_adds(&b, "}\n");
	rc = buf_failed(&b) ? http_error(c, 500, NULL, "out of memory")
			    : http_send(c, 412, JSON, NULL, b.data, b.len);
	buf_release(&b);
	return rc;
}

/* Applies the one-op batch op (a PUT or DELETE with its condition) and
 * answers its failure, or returns 0 when it was written. */
static int apply_one(struct kvs_node *node, struct mg_connection *c, struct store_op *op)
{
	int rc = store_apply_batch(node->store, op, 1, STORE_LOCAL);

	if (rc == 0)
		rc = op->rc;
	switch (rc) {
	case 0:
		replicate_throttle(node->replicate); /* backpressure (replicate.h) */
		return 0;
	case KVS_EPRECOND:
		return api_precondition_failed(c, op);
	case KVS_ENOTFOUND:
		return http_error(c, 404, NULL, "key not found: %.*s", (int)op->len, op->path);
	default:
		return http_error(c, 500, NULL, "storage failure: %s", kvs_strerror(rc));
	}
}

/* Reads ?ttl= and ?refresh= ; answers 400 itself on a bad one. */
static int put_params(struct kvs_node *node, struct mg_connection *c, const char *qs,
		      int64_t *ttl_ms, bool *refresh)
{
	char v[32];
	const char *why;
	bool found;

	*ttl_ms = 0;
	*refresh = false;
	if (path_query_get(qs, "ttl", v, sizeof(v), &found) != 0)
		return http_error(c, 400, NULL, "bad ttl");
	if (found && api_parse_ttl(v, node->cfg.max_ttl, ttl_ms, &why) != 0)
		return http_error(c, 400, NULL, "%s (max_ttl is %llds)", why,
				  (long long)node->cfg.max_ttl);
	if (path_query_get(qs, "refresh", v, sizeof(v), &found) != 0)
		return http_error(c, 400, NULL, "bad refresh");
	if (found) {
		if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
			*refresh = true;
		else if (strcmp(v, "false") != 0 && strcmp(v, "0") != 0)
			return http_error(c, 400, NULL, "refresh must be true or false");
	}
	if (*refresh && !*ttl_ms)
		return http_error(c, 400, NULL, "refresh=true needs a ttl");
	return 0;
}

/* The reply to a written PUT: its version, and its expiry if any. */
static int put_reply(struct kvs_node *node, struct mg_connection *c, const struct store_op *op)
{
	char uuid[VERSION_UUID_STR], reply[160];
	int n;

	api_written_index(node, c);
	version_uuid_str(&op->rec.v, uuid);
	n = snprintf(reply, sizeof(reply), "{\"uuid\":\"%s\",\"timestamp\":%lld", uuid,
		     (long long)op->rec.v.ts);
	if (op->rec.expires > 0)
		n += snprintf(reply + n, sizeof(reply) - (size_t)n, ",\"expires\":%lld",
			      (long long)op->rec.expires);
	n += snprintf(reply + n, sizeof(reply) - (size_t)n, "}\n");
	return http_send(c, 200, JSON, NULL, reply, (size_t)n);
}

/*
 * PUT ?ttl=..&refresh=true without a body: the current value again, with a
 * new expiry (a new version).  Without a condition from the client, the
 * version read is the condition, retried if another write came between.
 */
static int kv_refresh(struct kvs_node *node, struct mg_connection *c, struct store_op *op,
		      int64_t ttl_ms)
{
	bool own_cond = op->cond == STORE_COND_NONE;
	int rc = KVS_EPRECOND;

	if (mg_get_header(c, "Content-Length") && strcmp(mg_get_header(c, "Content-Length"), "0"))
		return http_error(c, 400, NULL, "refresh=true takes no body");
	for (int attempt = 0; attempt < 16 && rc == KVS_EPRECOND; attempt++) {
		struct store_value cur;

		rc = store_get(node->store, op->path, op->len, &cur);
		if (rc == 0 && !record_live(&cur.rec, version_now_ms())) {
			store_value_release(&cur);
			rc = KVS_ENOTFOUND;
		}
		if (rc == KVS_ENOTFOUND)
			return http_error(c, 404, NULL, "key not found: %.*s", (int)op->len, op->path);
		if (rc != 0)
			return http_error(c, 500, NULL, "storage failure: %s", kvs_strerror(rc));
		if (own_cond) {
			op->cond = STORE_COND_MATCH;
			op->match = cur.rec.v;
		}
		op->rec.value = cur.rec.value;
		op->rec.value_len = cur.rec.value_len;
		op->rec.expires = version_now_ms() + ttl_ms;
		rc = store_apply_batch(node->store, op, 1, STORE_LOCAL);
		if (rc == 0)
			rc = op->rc;
		if (rc == KVS_EPRECOND && !own_cond) {
			rc = api_precondition_failed(c, op);
			store_value_release(&cur);
			return rc;
		}
		store_value_release(&cur);
	}
	if (rc == KVS_EPRECOND)
		return http_error(c, 503, "Retry-After: 1\r\n", "the key kept changing: retry");
	if (rc != 0)
		return http_error(c, rc == KVS_ENOTFOUND ? 404 : 500, NULL, "%s", kvs_strerror(rc));
	replicate_throttle(node->replicate);
	return put_reply(node, c, op);
}

static int kv_put(struct kvs_node *node, struct mg_connection *c,
		  const struct mg_request_info *ri, const char *key, size_t klen)
{
	struct store_op op = { .path = key, .len = klen };
	const char *why = NULL;
	size_t len, off = 0;
	int64_t ttl_ms;
	bool refresh;
	char *body;
	int rc;

	if ((rc = key_allowed(node, c, key, klen, ACCESS_WRITE)) != 0 ||
	    (rc = api_writable(node, c)) != 0 || (rc = read_condition(c, true, &op)) != 0 ||
	    (rc = put_params(node, c, ri->query_string, &ttl_ms, &refresh)) != 0)
		return rc;
	op.rec.origin = node->cfg.node_id;
	op.rec.origin_len = strlen(node->cfg.node_id);
	if (refresh)
		return kv_refresh(node, c, &op, ttl_ms);
	if ((rc = api_read_body(c, (size_t)node->cfg.max_value_bytes, "value", &body, &len)) != 0)
		return rc;
	if (!json_valid(body, len, &why, &off)) {
		rc = http_error(c, 400, NULL, "invalid JSON at byte %zu: %s", off, why);
		goto out_free;
	}
	op.rec.value = body;
	op.rec.value_len = len;
	op.rec.expires = ttl_ms ? version_now_ms() + ttl_ms : 0;
	if ((rc = apply_one(node, c, &op)) != 0)
		goto out_free;
	rc = put_reply(node, c, &op);
out_free:
	free(body);
	return rc;
}

static int kv_delete(struct kvs_node *node, struct mg_connection *c, const char *key,
		     size_t klen)
{
	struct store_op op = { .path = key, .len = klen,
			       .rec = { .tombstone = true, .origin = node->cfg.node_id,
					.origin_len = strlen(node->cfg.node_id) } };
	int rc;

	if ((rc = key_allowed(node, c, key, klen, ACCESS_WRITE)) != 0 ||
	    (rc = api_writable(node, c)) != 0 || (rc = read_condition(c, false, &op)) != 0)
		return rc;
	if ((rc = apply_one(node, c, &op)) != 0)
		return rc;
	api_written_index(node, c);
	return http_send(c, 204, JSON, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- handler */

const char *api_kv_bad_path(const char *raw_path)
{
	char key[PATH_KEY_MAX + 2];
	const char *why = "bad path";
	enum path_kind kind;
	size_t klen;

	return path_decode(raw_path, key, sizeof(key), &klen, &kind, &why) != 0 ? why : NULL;
}

/* The route table sends only GET and HEAD to a listing (a path ending in
 * '/', or "/kv"), and GET, HEAD, PUT and DELETE to a key. */
int api_kv(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	   const char *raw_path)
{
	char key[PATH_KEY_MAX + 2];
	const char *m = ri->request_method, *why = "bad path";
	enum path_kind kind;
	size_t klen;

	if (path_decode(raw_path, key, sizeof(key), &klen, &kind, &why) != 0)
		return http_error(c, 400, NULL, "%s", why);
	if (kind == PATH_PREFIX)
		return kv_list(node, c, ri, key, klen);
	if (strcmp(m, "PUT") == 0)
		return kv_put(node, c, ri, key, klen);
	if (strcmp(m, "DELETE") == 0)
		return kv_delete(node, c, key, klen);
	return kv_get(node, c, key, klen);
}
