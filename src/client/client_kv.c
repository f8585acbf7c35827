/*
 * client_kv.c - libkvs key/value calls: get, put, delete, the paging list
 * iterator and transactions (README: Data API, Conditional writes and
 * transactions, Time to live).
 *
 * Threads: as the client (one thread at a time per client).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "client_int.h"

/* ------------------------------------------------------------------ get */

int kvs_get(kvs_client *c, const char *key, struct kvs_value *out)
{
	struct kc_buf path = { 0 };
	struct kc_reply rep;
	struct kc_req req = { .method = "GET" };
	int rc;

	if (!c || !out)
		return KVS_EINVAL;
	if ((rc = kc_key_path(&path, "/kv/", key, false)) != 0) {
		kc_seterr(c, "empty key");
		return rc;
	}
	req.path = path.data;
	rc = kc_send(c, &req, &rep);
	kc_buf_release(&path);
	if (rc)
		return rc;
	if ((rc = kc_status(c, &rep)) == 0) {
		memset(out, 0, sizeof(*out));
		out->len = rep.body.len;
		out->json = rep.body.data ? rep.body.data : strdup("");
		rep.body.data = NULL; /* handed over */
		if (!out->json)
			rc = KVS_ENOMEM;
		memcpy(out->version.uuid, rep.etag, sizeof(out->version.uuid));
		out->version.timestamp = rep.timestamp;
		out->version.expires = rep.expires;
		out->index = rep.index;
	}
	kc_reply_release(&rep);
	return rc;
}

void kvs_value_release(struct kvs_value *v)
{
	if (!v)
		return;
	free(v->json);
	memset(v, 0, sizeof(*v));
}

/* Reads {"uuid","timestamp","expires"?} of a write's reply into out. */
static void parse_version(const cJSON *o, struct kvs_version *out)
{
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "uuid");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "timestamp");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "expires");

	memset(out, 0, sizeof(*out));
	if (cJSON_IsString(u))
		snprintf(out->uuid, sizeof(out->uuid), "%s", u->valuestring);
	if (cJSON_IsNumber(t))
		out->timestamp = (int64_t)t->valuedouble;
	if (cJSON_IsNumber(e))
		out->expires = (int64_t)e->valuedouble;
}

/* "If-Match: "<uuid>"" or "If-Match: *" into h. */
static int if_match_header(char *h, size_t n, const char *if_match)
{
	size_t len;

	if (strcmp(if_match, "*") == 0) {
		snprintf(h, n, "If-Match: *");
		return 0;
	}
	if (*if_match == '"')
		if_match++;
	len = strcspn(if_match, "\"");
	if (len == 0 || len > 64 || strpbrk(if_match, "\r\n"))
		return KVS_EINVAL;
	snprintf(h, n, "If-Match: \"%.*s\"", (int)len, if_match);
	return 0;
}

/* ------------------------------------------------------------ put, delete */

int kvs_put(kvs_client *c, const char *key, const char *json, size_t len,
	    const struct kvs_put_options *opt, struct kvs_version *out)
{
	struct kc_buf path = { 0 };
	struct kc_reply rep;
	struct kc_req req = { .method = "PUT", .body = json, .body_len = len };
	char cond[96];
	int rc;

	if (!c || !json)
		return KVS_EINVAL;
	if ((rc = kc_key_path(&path, "/kv/", key, false)) != 0) {
		kc_seterr(c, "empty key");
		return rc;
	}
	if (opt && opt->ttl_ms > 0)
		rc = kc_buf_printf(&path, "?ttl=%" PRId64 "ms", opt->ttl_ms);
	if (!rc && opt && opt->if_match && opt->create_only) {
		kc_seterr(c, "if_match and create_only cannot be combined");
		rc = KVS_EINVAL;
	} else if (!rc && opt && opt->if_match) {
		if ((rc = if_match_header(cond, sizeof(cond), opt->if_match)) != 0)
			kc_seterr(c, "if_match must be * or a uuid");
		req.headers[0] = cond;
	} else if (!rc && opt && opt->create_only) {
		req.headers[0] = "If-None-Match: *";
	}
	req.path = path.data;
	if (!rc)
		rc = kc_send(c, &req, &rep);
	else
		memset(&rep, 0, sizeof(rep));
	kc_buf_release(&path);
	if (rc)
		return rc;
	if ((rc = kc_status(c, &rep)) == 0 && out) {
		cJSON *o = cJSON_ParseWithLength(rep.body.data ? rep.body.data : "", rep.body.len);

		if (!cJSON_IsObject(o)) {
			kc_seterr(c, "write reply is not a JSON object");
			rc = KVS_EPROTO;
		} else {
			parse_version(o, out);
		}
		cJSON_Delete(o);
	}
	kc_reply_release(&rep);
	return rc;
}

int kvs_delete(kvs_client *c, const char *key, const char *if_match)
{
	struct kc_buf path = { 0 };
	struct kc_reply rep;
	struct kc_req req = { .method = "DELETE" };
	char cond[96];
	int rc;

	if (!c)
		return KVS_EINVAL;
	if ((rc = kc_key_path(&path, "/kv/", key, false)) != 0) {
		kc_seterr(c, "empty key");
		return rc;
	}
	if (if_match) {
		if ((rc = if_match_header(cond, sizeof(cond), if_match)) != 0) {
			kc_seterr(c, "if_match must be * or a uuid");
			kc_buf_release(&path);
			return rc;
		}
		req.headers[0] = cond;
	}
	req.path = path.data;
	rc = kc_send(c, &req, &rep);
	kc_buf_release(&path);
	if (rc)
		return rc;
	rc = kc_status(c, &rep);
	kc_reply_release(&rep);
	return rc;
}

/* ----------------------------------------------------------------- lists */

struct kvs_list {
	kvs_client *c;
	char *prefix;                /* as given, normalised by kc_key_path */
	struct kvs_list_options opt;
	cJSON *page;                 /* the current page's reply */
	char *raw;                   /* its text */
	struct kc_span *spans;       /* where each item's value sits in raw; NULL: not found */
	const cJSON *keys, *items;   /* its arrays */
	int pos, count;
	char *after;                 /* `after` of the next page; NULL: no more */
	bool started;
	struct kvs_item item;
	char *value_text;            /* item.json, printed from the page */
};

/* Fetches the page after l->after (or the first). */
static int list_fetch(kvs_list *l)
{
	struct kc_buf path = { 0 };
	struct kc_reply rep;
	struct kc_req req = { .method = "GET" };
	const cJSON *next;
	int rc;

	rc = kc_key_path(&path, "/kv/", l->prefix, true);
	if (!rc)
		rc = kc_buf_printf(&path, "?limit=%d%s", l->opt.page_size,
				   l->opt.values ? "&values=true" : "");
	if (!rc && l->after && !(rc = kc_buf_add(&path, "&after=", 7)))
		rc = kc_buf_encode(&path, l->after, strlen(l->after), true);
	if (rc) {
		kc_buf_release(&path);
		return rc;
	}
	req.path = path.data;
	rc = kc_send(l->c, &req, &rep);
	kc_buf_release(&path);
	if (rc)
		return rc;
	if ((rc = kc_status(l->c, &rep)) != 0)
		goto out;
	cJSON_Delete(l->page);
	l->page = cJSON_ParseWithLength(rep.body.data ? rep.body.data : "", rep.body.len);
	l->keys = cJSON_GetObjectItemCaseSensitive(l->page, "keys");
	l->items = cJSON_GetObjectItemCaseSensitive(l->page, "items");
	next = cJSON_GetObjectItemCaseSensitive(l->page, "next");
	if (!cJSON_IsArray(l->keys) || (l->opt.values && !cJSON_IsArray(l->items))) {
		kc_seterr(l->c, "listing reply without keys");
		rc = KVS_EPROTO;
		goto out;
	}
	free(l->raw);
	free(l->spans);
	l->raw = rep.body.data; /* handed over: the values are read from it */
	rep.body.data = NULL;
	l->spans = NULL;
	if (l->opt.values && l->raw) {
		size_t n = (size_t)cJSON_GetArraySize(l->items);

		if (n && (l->spans = calloc(n, sizeof(*l->spans))) &&
		    kc_scan_array(l->raw, rep.body.len, "items", l->spans, n) != (int)n) {
			free(l->spans); /* then values are printed from the parse */
			l->spans = NULL;
		}
	}
	free(l->after);
	l->after = NULL;
	if (cJSON_IsString(next) && !(l->after = strdup(next->valuestring)))
		rc = KVS_ENOMEM;
	l->pos = 0;
	l->count = cJSON_GetArraySize(l->keys);
	l->started = true;
out:
	kc_reply_release(&rep);
	return rc;
}

int kvs_list_open(kvs_client *c, const char *prefix, const struct kvs_list_options *opt,
		  kvs_list **out)
{
	kvs_list *l;
	int rc;

	if (!c || !out)
		return KVS_EINVAL;
	if (!(l = calloc(1, sizeof(*l))))
		return KVS_ENOMEM;
	l->c = c;
	if (opt)
		l->opt = *opt;
	if (l->opt.page_size <= 0)
		l->opt.page_size = 1000;
	if (l->opt.page_size > 10000) {
		kc_seterr(c, "page size over 10000");
		free(l);
		return KVS_EINVAL;
	}
	l->opt.after = NULL;
	l->prefix = strdup(prefix ? prefix : "");
	if (opt && opt->after)
		l->after = strdup(opt->after);
	if (!l->prefix || (opt && opt->after && !l->after)) {
		kvs_list_free(l);
		return KVS_ENOMEM;
	}
	if ((rc = list_fetch(l)) != 0) {
		kvs_list_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int kvs_list_next(kvs_list *l, const struct kvs_item **item)
{
	const cJSON *k, *it;
	int rc;

	/* a page may come back empty with next set (keys the token may not read) */
	while (l->pos >= l->count) {
		if (!l->after || l->opt.one_page)
			return 0;
		if ((rc = list_fetch(l)) != 0)
			return rc;
	}
	k = cJSON_GetArrayItem(l->keys, l->pos);
	free(l->value_text);
	l->value_text = NULL;
	memset(&l->item, 0, sizeof(l->item));
	if (!cJSON_IsString(k))
		return KVS_EPROTO;
	l->item.key = k->valuestring;
	if (l->opt.values && (it = cJSON_GetArrayItem(l->items, l->pos)) != NULL) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "value");

		const struct kc_span *sp = l->spans ? &l->spans[l->pos] : NULL;

		parse_version(it, &l->item.version);
		if (sp && sp->val_len)
			l->value_text = strndup(l->raw + sp->val_off, sp->val_len);
		else if (v)
			l->value_text = cJSON_PrintUnformatted(v);
		if (v && !l->value_text)
			return KVS_ENOMEM;
		l->item.json = l->value_text;
		l->item.len = l->value_text ? strlen(l->value_text) : 0;
	}
	l->pos++;
	*item = &l->item;
	return 1;
}

const char *kvs_list_more(const kvs_list *l)
{
	return l->after;
}

void kvs_list_free(kvs_list *l)
{
	if (!l)
		return;
	cJSON_Delete(l->page);
	free(l->raw);
	free(l->spans);
	free(l->prefix);
	free(l->after);
	free(l->value_text);
	free(l);
}

/* ---------------------------------------------------------- transactions */

int kvs_txn(kvs_client *c, const char *body, size_t len, char **reply)
{
	struct kc_reply rep;
	struct kc_req req = { .method = "POST", .path = "/txn", .body = body, .body_len = len };
	int rc;

	if (!c || !body || !reply)
		return KVS_EINVAL;
	if ((rc = kc_send(c, &req, &rep)) != 0)
		return rc;
	rc = kc_status(c, &rep);
	if (rc == 0 || rc == KVS_EPRECOND) {
		*reply = rep.body.data ? rep.body.data : strdup("");
		rep.body.data = NULL;
		if (!*reply)
			rc = KVS_ENOMEM;
	}
	kc_reply_release(&rep);
	return rc;
}
