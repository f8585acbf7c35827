/*
 * api_txn.c - POST /txn: several writes and checks, all or nothing (SPEC
 * section 8).
 *
 *   {"ops": [{"op": "put", "key": "a", "value": 1, "if_match": "<uuid>"},
 *            {"op": "delete", "key": "b", "if_match": "*"},
 *            {"op": "check", "key": "c", "absent": true}]}
 *
 * The body (at most max_value_bytes x 4) is checked as strict JSON first,
 * then walked without building a tree (json.h): a value is stored byte for
 * byte as the client sent it, as a PUT body is, and a body of many tiny
 * values costs no memory beyond its own bytes.  Every op is validated
 * before anything is applied; the ops then go to the write door as one
 * batch (store_apply_batch): every condition is checked under the keys'
 * locks, and all changes are written in one RocksDB batch, or none is.
 *
 * A put may carry "ttl" ("30s", or a number of seconds; SPEC section 9).
 *
 * Replies: 200 {"results": [{"key", "uuid", "timestamp"}...]}, one per op
 * in order (a check: the version it found; a delete of an absent key:
 * nulls, nothing written); 412 {"error", "failed": [positions],
 * "current": [{"key", "uuid", "timestamp"}...]} when a condition fails.
 *
 * Threads: civetweb workers, any number at once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "buf.h"
#include "http.h"
#include "json.h"
#include "kvs.h"
#include "path.h"
#include "replicate.h"

#define JSON_TYPE "application/json"
#define TXN_BODY_FACTOR 4 /* a body may hold this many max_value_bytes */
/* bytes of one op's result at most: its key escaped (6 bytes a byte at
 * worst), a uuid, two timestamps and the punctuation */
#define RESULT_MAX (6 * PATH_KEY_MAX + 192)

/* A transaction being read: the ops and, for the 400s, where it failed. */
struct txn {
	struct kvs_node *node;
	const char *b;   /* the body */
	size_t len;
	struct store_op ops[STORE_BATCH_MAX];
	char keys[STORE_BATCH_MAX][PATH_KEY_MAX + 1];
	size_t n;
	char why[192];   /* the 400 message */
};

/* Sets the 400 message; returns false. */
static bool bad(struct txn *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool bad(struct txn *t, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(t->why, sizeof(t->why), "ops[%zu]: ", t->n);

	va_start(ap, fmt);
	vsnprintf(t->why + n, sizeof(t->why) - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

/* True if the member's name (with its quotes) is exactly name. */
static bool named(const struct txn *t, const struct json_member *m, const char *name)
{
	size_t n = strlen(name);

	return m->name_end - m->name == n + 2 && memcmp(t->b + m->name + 1, name, n) == 0;
}

/* Decodes the JSON string at [m->value, m->value_end) into out (cap bytes
 * with the NUL).  Returns false if it is no string, holds \u0000 or does
 * not fit. */
static bool string_value(const struct txn *t, const struct json_member *m, char *out,
			 size_t cap, size_t *outlen)
{
	const char *v = t->b + m->value;
	size_t n = m->value_end - m->value;
	cJSON *s;

	if (n < 2 || v[0] != '"' || json_has_nul_escape(v, n))
		return false;
	if (!(s = cJSON_ParseWithLength(v, n)))
		return false;
	size_t len = strlen(s->valuestring);
	bool ok = len < cap;
	if (ok) {
		memcpy(out, s->valuestring, len + 1);
		*outlen = len;
	}
	cJSON_Delete(s);
	return ok;
}

static bool literal(const struct txn *t, const struct json_member *m, const char *word)
{
	size_t n = strlen(word);

	return m->value_end - m->value == n && memcmp(t->b + m->value, word, n) == 0;
}

enum op_kind { OP_NONE, OP_PUT, OP_DELETE, OP_CHECK };

/* The members an op object may have, by kind. */
struct op_fields {
	enum op_kind kind;
	bool key, value, if_match, if_none_match, uuid, absent, ttl;
	struct json_member m_key, m_value, m_if_match, m_if_none_match, m_uuid, m_absent, m_ttl;
};

/* Reads the members of the op object at [m->value, m->value_end). */
static bool op_members(struct txn *t, const struct json_member *obj, struct op_fields *f)
{
	struct json_member m;
	size_t pos = obj->value + 1;

	memset(f, 0, sizeof(*f));
	if (t->b[obj->value] != '{')
		return bad(t, "an op must be an object");
	while (json_next_member(t->b, obj->value_end, &pos, &m)) {
		bool *seen;
		struct json_member *slot;

		if (named(t, &m, "op")) {
			if (f->kind != OP_NONE)
				return bad(t, "\"op\" given twice");
			if (literal(t, &m, "\"put\""))
				f->kind = OP_PUT;
			else if (literal(t, &m, "\"delete\""))
				f->kind = OP_DELETE;
			else if (literal(t, &m, "\"check\""))
				f->kind = OP_CHECK;
			else
				return bad(t, "unknown op: must be \"put\", \"delete\" or \"check\"");
			continue;
		}
		if (named(t, &m, "key"))
			seen = &f->key, slot = &f->m_key;
		else if (named(t, &m, "value"))
			seen = &f->value, slot = &f->m_value;
		else if (named(t, &m, "if_match"))
			seen = &f->if_match, slot = &f->m_if_match;
		else if (named(t, &m, "if_none_match"))
			seen = &f->if_none_match, slot = &f->m_if_none_match;
		else if (named(t, &m, "uuid"))
			seen = &f->uuid, slot = &f->m_uuid;
		else if (named(t, &m, "absent"))
			seen = &f->absent, slot = &f->m_absent;
		else if (named(t, &m, "ttl"))
			seen = &f->ttl, slot = &f->m_ttl;
		else
			return bad(t, "unknown member %.*s", (int)(m.name_end - m.name > 40 ? 40 :
								   m.name_end - m.name), t->b + m.name);
		if (*seen)
			return bad(t, "member %.*s given twice", (int)(m.name_end - m.name),
				   t->b + m.name);
		*seen = true;
		*slot = m;
	}
	if (f->kind == OP_NONE)
		return bad(t, "\"op\" is missing");
	if (!f->key)
		return bad(t, "\"key\" is missing");
	return true;
}

/* Fills t->ops[t->n] from the op object obj. */
static bool parse_op(struct txn *t, const struct json_member *obj)
{
	struct store_op *op = &t->ops[t->n];
	char *key = t->keys[t->n];
	struct op_fields f;
	size_t klen, vlen;

	memset(op, 0, sizeof(*op));
	if (!op_members(t, obj, &f))
		return false;
	if (!string_value(t, &f.m_key, key, PATH_KEY_MAX + 1, &klen) || !path_key_valid(key, klen))
		return bad(t, "bad key: a string naming a path, as in /kv/{path}");
	op->path = key;
	op->len = klen;
	if (f.kind != OP_PUT && (f.value || f.if_none_match || f.ttl))
		return bad(t, "value, if_none_match and ttl belong to put ops");
	if (f.ttl) {
		char s[32];
		const char *why;
		size_t n = f.m_ttl.value_end - f.m_ttl.value;
		int64_t ms;

		/* "30s", or a number of seconds */
		if (t->b[f.m_ttl.value] == '"' ? !string_value(t, &f.m_ttl, s, sizeof(s), &n)
					       : n >= sizeof(s))
			return bad(t, "ttl must be a string like \"30s\" or a number of seconds");
		if (t->b[f.m_ttl.value] != '"') {
			memcpy(s, t->b + f.m_ttl.value, n);
			s[n] = '\0';
		}
		if (api_parse_ttl(s, t->node->cfg.max_ttl, &ms, &why) != 0)
			return bad(t, "%s", why);
		op->rec.expires = version_now_ms() + ms;
	}
	if (f.kind != OP_CHECK && (f.uuid || f.absent))
		return bad(t, "uuid and absent belong to check ops");
	if (f.if_match && f.if_none_match)
		return bad(t, "if_match and if_none_match cannot be combined");
	if (f.if_match) {
		char s[VERSION_UUID_STR + 3];
		size_t n;

		if (!string_value(t, &f.m_if_match, s, sizeof(s), &n) || !api_parse_if_match(s, op))
			return bad(t, "if_match must be \"*\" or a quoted uuid (\"\\\"<uuid>\\\"\")");
	}
	if (f.if_none_match) {
		if (!literal(t, &f.m_if_none_match, "\"*\"") && !literal(t, &f.m_if_none_match, "true"))
			return bad(t, "if_none_match must be \"*\" or true");
		op->cond = STORE_COND_ABSENT;
	}
	switch (f.kind) {
	case OP_PUT:
		vlen = f.m_value.value_end - f.m_value.value;
		if (!f.value)
			return bad(t, "a put needs a value");
		if (vlen > (size_t)t->node->cfg.max_value_bytes)
			return bad(t, "value larger than max_value_bytes (%lld)",
				   (long long)t->node->cfg.max_value_bytes);
		op->rec.value = t->b + f.m_value.value;
		op->rec.value_len = vlen;
		break;
	case OP_DELETE:
		op->rec.tombstone = true;
		break;
	case OP_CHECK:
		op->check = true;
		if (f.uuid == f.absent)
			return bad(t, "a check takes either uuid or absent");
		if (f.absent) {
			if (!literal(t, &f.m_absent, "true"))
				return bad(t, "absent must be true");
			op->cond = STORE_COND_ABSENT;
		} else {
			char s[VERSION_UUID_STR + 1];
			size_t n;

			if (!string_value(t, &f.m_uuid, s, sizeof(s), &n) ||
			    version_uuid_parse(&op->match, s) != 0)
				return bad(t, "uuid must be a uuid string");
			op->cond = STORE_COND_MATCH;
		}
		break;
	default:
		break;
	}
	op->rec.origin = t->node->cfg.node_id;
	op->rec.origin_len = strlen(t->node->cfg.node_id);
	for (size_t i = 0; i < t->n; i++)
		if (t->ops[i].len == klen && memcmp(t->ops[i].path, key, klen) == 0)
			return bad(t, "key %s is already used by ops[%zu]: keys must be distinct",
				   key, i);
	return true;
}

/* Reads the body {"ops": [...]} into t.  Returns false with t->why. */
static bool parse_txn(struct txn *t)
{
	struct json_member m, el;
	size_t pos = json_skip_ws(t->b, t->len, 0), ops_at = 0;
	bool have_ops = false;

	if (pos >= t->len || t->b[pos] != '{') {
		snprintf(t->why, sizeof(t->why), "the body must be an object {\"ops\": [...]}");
		return false;
	}
	pos++;
	while (json_next_member(t->b, t->len, &pos, &m)) {
		if (!named(t, &m, "ops") || have_ops) {
			snprintf(t->why, sizeof(t->why), "the body takes one member, \"ops\"");
			return false;
		}
		have_ops = true;
		ops_at = m.value;
		if (t->b[ops_at] != '[') {
			snprintf(t->why, sizeof(t->why), "ops must be an array");
			return false;
		}
		size_t p = ops_at + 1;
		while (json_next_element(t->b, m.value_end, &p, &el)) {
			if (t->n == STORE_BATCH_MAX) {
				snprintf(t->why, sizeof(t->why), "a transaction holds at most %d ops",
					 STORE_BATCH_MAX);
				return false;
			}
			if (!parse_op(t, &el))
				return false;
			t->n++;
		}
	}
	if (!have_ops || t->n == 0) {
		snprintf(t->why, sizeof(t->why), "ops must hold 1 to %d ops", STORE_BATCH_MAX);
		return false;
	}
	return true;
}

static int answer_results(struct mg_connection *c, const struct txn *t)
{
	struct buf b;
	char uuid[VERSION_UUID_STR];
	int rc;

	buf_init(&b, RESULT_MAX * t->n + 64);
	buf_adds(&b, "{\"results\":[");
	for (size_t i = 0; i < t->n; i++) {
		const struct store_op *op = &t->ops[i];
		const struct kvs_version *v = op->check ? &op->current.v : &op->rec.v;
		bool none = op->check ? !op->had || !record_live(&op->current, version_now_ms())
				      : op->rc != 0;

		buf_adds(&b, i ? ",{\"key\":" : "{\"key\":");
		buf_json_str(&b, op->path, op->len);
		if (none) {
			buf_adds(&b, ",\"uuid\":null,\"timestamp\":null}");
			continue;
		}
		version_uuid_str(v, uuid);
		buf_printf(&b, ",\"uuid\":\"%s\",\"timestamp\":%lld", uuid, (long long)v->ts);
		if (!op->check && op->rec.expires > 0)
			buf_printf(&b, ",\"expires\":%lld", (long long)op->rec.expires);
		buf_add(&b, "}", 1);
	}
	buf_adds(&b, "]}\n");
	rc = buf_failed(&b) ? http_error(c, 500, NULL, "out of memory")
			    : http_send(c, 200, JSON_TYPE, NULL, b.data, b.len);
	buf_release(&b);
	return rc;
}

static int answer_failed(struct mg_connection *c, const struct txn *t)
{
	struct buf b, cur;
	char uuid[VERSION_UUID_STR];
	size_t k = 0;
	int rc;

	buf_init(&b, RESULT_MAX * t->n + 64);
	buf_init(&cur, RESULT_MAX * t->n + 64);
	buf_adds(&b, "{\"error\":\"precondition failed\",\"failed\":[");
	for (size_t i = 0; i < t->n; i++) {
		const struct store_op *op = &t->ops[i];

		if (op->rc != KVS_EPRECOND)
			continue;
		buf_printf(&b, k ? ",%zu" : "%zu", i);
		buf_adds(&cur, k++ ? ",{\"key\":" : "{\"key\":");
		buf_json_str(&cur, op->path, op->len);
		if (!op->had || !record_live(&op->current, version_now_ms())) {
			buf_adds(&cur, ",\"uuid\":null,\"timestamp\":null}");
			continue;
		}
		version_uuid_str(&op->current.v, uuid);
		buf_printf(&cur, ",\"uuid\":\"%s\",\"timestamp\":%lld}", uuid,
			   (long long)op->current.v.ts);
	}
	buf_adds(&b, "],\"current\":[");
	buf_add(&b, cur.data, cur.len);
	buf_adds(&b, "]}\n");
	rc = buf_failed(&b) || buf_failed(&cur) ? http_error(c, 500, NULL, "out of memory")
						: http_send(c, 412, JSON_TYPE, NULL, b.data, b.len);
	buf_release(&cur);
	buf_release(&b);
	return rc;
}

int api_txn(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	    const char *raw_path)
{
	struct txn *t;
	const char *why = NULL;
	size_t off = 0, len;
	char *body;
	int rc;

	(void)ri;
	(void)raw_path;
	if ((rc = api_writable(node, c)) != 0)
		return rc;
	rc = api_read_body(c, TXN_BODY_FACTOR * (size_t)node->cfg.max_value_bytes,
			   "a transaction (max_value_bytes x 4)", &body, &len);
	if (rc != 0)
		return rc;
	if (!json_valid(body, len, &why, &off)) {
		rc = http_error(c, 400, NULL, "invalid JSON at byte %zu: %s", off, why);
		goto out_body;
	}
	if (!(t = calloc(1, sizeof(*t)))) {
		rc = http_error(c, 500, NULL, "out of memory");
		goto out_body;
	}
	t->node = node;
	t->b = body;
	t->len = len;
	if (!parse_txn(t)) {
		rc = http_error(c, 400, NULL, "%s", t->why);
		goto out;
	}
	/* every op's key, or nothing at all */
	for (size_t i = 0; i < t->n; i++) {
		enum config_access need = t->ops[i].check ? ACCESS_READ : ACCESS_WRITE;

		if (auth_key_access(node, c, t->ops[i].path, t->ops[i].len) < need) {
			rc = http_error(c, 403, NULL, "ops[%zu]: this token may not %s %.200s", i,
					need == ACCESS_WRITE ? "write" : "read", t->ops[i].path);
			goto out;
		}
	}
	rc = store_apply_batch(node->store, t->ops, t->n, STORE_LOCAL);
	if (rc == KVS_EPRECOND) {
		rc = answer_failed(c, t);
		goto out;
	}
	if (rc != 0) {
		rc = http_error(c, 500, NULL, "storage failure: %s", kvs_strerror(rc));
		goto out;
	}
	replicate_throttle(node->replicate); /* backpressure (replicate.h) */
	api_written_index(node, c);
	rc = answer_results(c, t);
out:
	free(t);
out_body:
	free(body);
	return rc;
}
