/*
 * client.c - libkvs core: client lifecycle, error names, URL building and
 * kc_send(), the one place that performs an HTTP call (with failover over
 * the endpoint list).
 *
 * Failover rule (kvs_client.h): a call moves to the next endpoint only when
 * the current one could not be reached, i.e. curl failed before any HTTP
 * status arrived; a GET may also move after a dropped connection, a write
 * only when nothing of it was sent.  Any HTTP status is an answer.  The
 * endpoint that answered becomes the current one for the next calls.
 *
 * Threads: a client is used by one thread at a time; nothing here is
 * global beyond curl_global_init().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client_int.h"

#define KC_DEFAULT_CONNECT_MS 2000
#define KC_DEFAULT_TIMEOUT_MS 10000
#define KC_DEFAULT_MAX_REPLY ((size_t)64 << 20)

/* ---------------------------------------------------------------- errors */

const char *kvs_client_strerror(int code)
{
	switch (code) {
	case KVS_OK: return "ok";
	case KVS_ENOTFOUND: return "key not found";
	case KVS_EPRECOND: return "precondition failed";
	case KVS_EAUTH: return "unauthorized (missing or unknown token)";
	case KVS_EFORBIDDEN: return "forbidden";
	case KVS_EBADREQ: return "bad request";
	case KVS_EUNREACHABLE: return "no endpoint reachable";
	case KVS_EUNAVAILABLE: return "service unavailable";
	case KVS_ESERVER: return "server error";
	case KVS_EPROTO: return "unexpected reply";
	case KVS_ENOMEM: return "out of memory";
	case KVS_EINVAL: return "invalid argument";
	case KVS_ECOMPACTED: return "watch index compacted";
	case KVS_EIO: return "local file error";
	case KVS_ECANCELED: return "canceled";
	default: return "unknown error";
	}
}

void kc_seterr(kvs_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
}

const char *kvs_client_errmsg(const kvs_client *c)
{
	return c ? c->errmsg : "";
}

/* --------------------------------------------------------------- buffers */

int kc_buf_add(struct kc_buf *b, const char *s, size_t n)
{
	if (b->too_big || (b->limit && b->len + n > b->limit)) {
		b->too_big = true;
		return KVS_EPROTO;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (!p)
			return KVS_ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int kc_buf_printf(struct kc_buf *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return KVS_EINVAL;
	return kc_buf_add(b, tmp, (size_t)n);
}

void kc_buf_release(struct kc_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* ------------------------------------------------------------------ URLs */

int kc_buf_encode(struct kc_buf *b, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		int rc;

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~' || (keep_slash && ch == '/')) {
			rc = kc_buf_add(b, (const char *)&s[i], 1);
		} else {
			char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };

			rc = kc_buf_add(b, e, 3);
		}
		if (rc)
			return rc;
	}
	return 0;
}

int kc_key_path(struct kc_buf *b, const char *base, const char *key, bool prefix)
{
	size_t n;
	int rc;

	if (!key)
		key = "";
	while (*key == '/')
		key++;
	n = strlen(key);
	if (prefix) {
		while (n && key[n - 1] == '/')
			n--;
	} else if (n == 0) {
		return KVS_EINVAL;
	}
	if ((rc = kc_buf_add(b, base, strlen(base))) || (rc = kc_buf_encode(b, key, n, true)))
		return rc;
	if (prefix && n)
		return kc_buf_add(b, "/", 1);
	return 0;
}

int kc_endpoint_norm(const char *in, size_t len, bool tls, char *out, size_t n)
{
	const char *scheme = tls ? "https" : "http";
	size_t i;

	while (len && (*in == ' ' || *in == '\t')) {
		in++;
		len--;
	}
	if (len >= 7 && strncasecmp(in, "http://", 7) == 0) {
		scheme = "http";
		in += 7;
		len -= 7;
	} else if (len >= 8 && strncasecmp(in, "https://", 8) == 0) {
		scheme = "https";
		in += 8;
		len -= 8;
	}
	while (len && (in[len - 1] == ' ' || in[len - 1] == '\t' || in[len - 1] == '/'))
		len--;
	if (len == 0 || len > 255)
		return KVS_EINVAL;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		/* host (name, IPv4, [IPv6]) and port: nothing else, no path */
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '-' || ch == ':' || ch == '[' || ch == ']' || ch == '_'))
			return KVS_EINVAL;
	}
	if (in[0] == ':')
		return KVS_EINVAL;
	if ((size_t)snprintf(out, n, "%s://%.*s", scheme, (int)len, in) >= n)
		return KVS_EINVAL;
	return 0;
}

void kc_parse_etag(const char *v, char *uuid)
{
	size_t n = 0;

	while (*v == ' ')
		v++;
	if (*v == '"')
		v++;
	while (v[n] && v[n] != '"' && v[n] != '\r' && v[n] != '\n' && n < 36)
		n++;
	memcpy(uuid, v, n);
	uuid[n] = '\0';
}

/* ------------------------------------------------------------- lifecycle */

static int setup_handle(kvs_client *c);

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int kvs_client_new(const struct kvs_client_options *opt, kvs_client **out)
{
	kvs_client *c;
	const char *p;
	bool tls;
	int rc = KVS_EINVAL;

	if (!opt || !opt->endpoints || !out)
		return KVS_EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return KVS_ENOMEM;
	tls = (opt->cacert && *opt->cacert) || (opt->cert && *opt->cert);
	for (p = opt->endpoints; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char norm[300];

		if (c->n_endpoints == KC_MAX_ENDPOINTS ||
		    kc_endpoint_norm(p, len, tls, norm, sizeof(norm)) != 0)
			goto out_free;
		if (!(c->endpoints[c->n_endpoints++] = strdup(norm))) {
			rc = KVS_ENOMEM;
			goto out_free;
		}
		p = end ? end + 1 : p + len;
	}
	if (c->n_endpoints == 0)
		goto out_free;
	rc = KVS_ENOMEM;
	if (opt->token && *opt->token) {
		size_t n = strlen(opt->token) + 32;

		if (strpbrk(opt->token, "\r\n")) {
			rc = KVS_EINVAL;
			goto out_free;
		}
		if (!(c->auth_header = malloc(n)))
			goto out_free;
		snprintf(c->auth_header, n, "Authorization: Bearer %s", opt->token);
	}
	c->cacert = dup_or_null(opt->cacert);
	c->cert = dup_or_null(opt->cert);
	c->key = dup_or_null(opt->key);
	c->connect_timeout_ms = opt->connect_timeout_ms > 0 ? opt->connect_timeout_ms
							    : KC_DEFAULT_CONNECT_MS;
	c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : KC_DEFAULT_TIMEOUT_MS;
	c->max_reply = opt->max_reply_bytes ? opt->max_reply_bytes : KC_DEFAULT_MAX_REPLY;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(c->curl = curl_easy_init()) ||
	    setup_handle(c) != 0)
		goto out_free;
	*out = c;
	return 0;

out_free:
	kvs_client_free(c);
	return rc;
}

void kvs_client_free(kvs_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->hdr_get);
	curl_slist_free_all(c->hdr_body);
	for (size_t i = 0; i < c->n_endpoints; i++)
		free(c->endpoints[i]);
	free(c->auth_header);
	free(c->cacert);
	free(c->cert);
	free(c->key);
	free(c);
}

const char *kvs_client_endpoint(const kvs_client *c)
{
	return c->endpoints[c->current];
}

size_t kvs_client_endpoint_count(const kvs_client *c)
{
	return c->n_endpoints;
}

const char *kvs_client_endpoint_at(const kvs_client *c, size_t i)
{
	return i < c->n_endpoints ? c->endpoints[i] : NULL;
}

/* ------------------------------------------------------------ transfers */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct kc_reply *rep = arg;

	return kc_buf_add(&rep->body, data, size * n) == 0 ? size * n : 0;
}

/* Passes the body through to the sink file only for a 200 answer. */
struct sink_ctx {
	struct kc_reply *rep;
	FILE *f;
	CURL *curl;
};

static size_t on_sink(char *data, size_t size, size_t n, void *arg)
{
	struct sink_ctx *s = arg;
	long status = 0;

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return on_body(data, size, n, s->rep);
	if (fwrite(data, size, n, s->f) != n)
		return 0;
	s->rep->sink_bytes += (int64_t)(size * n);
	return size * n;
}

static int64_t header_num(const char *v)
{
	return strtoll(v, NULL, 10);
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct kc_reply *rep = arg;
	size_t len = size * n;
	char line[256];
	char *v;

	if (len >= sizeof(line))
		return len; /* no header we read is that long */
	memcpy(line, data, len);
	line[len] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) { /* a new response (after 1xx): forget the last */
		rep->etag[0] = '\0';
		rep->timestamp = rep->expires = 0;
		rep->index = 0;
		return len;
	}
	v = strchr(line, ':');
	if (!v)
		return len;
	*v++ = '\0';
	if (strcasecmp(line, "ETag") == 0)
		kc_parse_etag(v, rep->etag);
	else if (strcasecmp(line, "X-Kvs-Timestamp") == 0)
		rep->timestamp = header_num(v);
	else if (strcasecmp(line, "X-Kvs-Expires") == 0)
		rep->expires = header_num(v);
	else if (strcasecmp(line, "X-Kvs-Index") == 0)
		rep->index = (uint64_t)strtoull(v, NULL, 10);
	return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const volatile int *cancel = arg;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return cancel && *cancel ? 1 : 0;
}

/* Did curl fail before the node could have acted on the request? */
static bool unreached(CURL *curl, CURLcode res, bool idempotent)
{
	long sent = 0;

	switch (res) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
		return true;
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		if (idempotent)
			return true;
		curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &sent);
		return sent == 0;
	default:
		return false;
	}
}

/* Options every request of a client shares, set once on its handle (a
 * reset per request would cost a third of a small GET's client time). */
static int setup_handle(kvs_client *c)
{
	CURL *h = c->curl;

	c->hdr_get = curl_slist_append(NULL, "Expect:"); /* no 100-continue round trip */
	c->hdr_body = curl_slist_append(NULL, "Expect:");
	if (c->hdr_body)
		c->hdr_body = curl_slist_append(c->hdr_body, "Content-Type: application/json");
	if (c->auth_header && c->hdr_get && c->hdr_body) {
		c->hdr_get = curl_slist_append(c->hdr_get, c->auth_header);
		c->hdr_body = curl_slist_append(c->hdr_body, c->auth_header);
	}
	if (!c->hdr_get || !c->hdr_body)
		return KVS_ENOMEM;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_err);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* a key's "." and ".." go to the node as they are (which refuses them
	 * with 400), never folded by curl into another path: "a/../../members/
	 * leave" must not become DELETE /members/leave */
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	if (c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (c->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	return 0;
}

/* One attempt at one endpoint.  Returns the curl result. */
static CURLcode attempt(kvs_client *c, const struct kc_req *req, const char *base,
			struct kc_reply *rep)
{
	struct curl_slist *extra = NULL, *hs = req->body ? c->hdr_body : c->hdr_get;
	struct sink_ctx sink = { rep, req->sink, c->curl };
	char url[KC_URL_MAX];
	CURL *h = c->curl;
	CURLcode res;

	if ((size_t)snprintf(url, sizeof(url), "%s%s", base, req->path) >= sizeof(url))
		return CURLE_URL_MALFORMAT;
	kc_buf_release(&rep->body);
	rep->body.limit = c->max_reply;
	rep->status = 0;
	rep->sink_bytes = 0;
	if (req->sink) { /* a stream tried again elsewhere starts the file again */
		if (fflush(req->sink) != 0 || ftruncate(fileno(req->sink), 0) != 0)
			return CURLE_WRITE_ERROR;
		rewind(req->sink);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (req->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L); /* forgets the last request's body */
	}
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, strcmp(req->method, "GET") ? req->method : NULL);
	if (req->headers[0]) { /* a copy of the shared list with this request's own lines */
		for (struct curl_slist *l = hs; l; l = l->next)
			extra = curl_slist_append(extra, l->data);
		for (int i = 0; i < 4 && req->headers[i]; i++)
			extra = curl_slist_append(extra, req->headers[i]);
		if (!extra)
			return CURLE_OUT_OF_MEMORY;
		hs = extra;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, req->timeout_ms ? req->timeout_ms : c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, rep);
	if (req->sink) {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_sink);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	} else {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, rep);
	}
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, req->cancel ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)req->cancel);
	c->curl_err[0] = '\0';
	res = curl_easy_perform(h);
	if (res == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rep->status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(extra);
	return res;
}

int kc_send(kvs_client *c, const struct kc_req *req, struct kc_reply *rep)
{
	bool idempotent = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
	size_t tries = req->address ? 1 : c->n_endpoints;
	char one[300];

	memset(rep, 0, sizeof(*rep));
	c->errmsg[0] = '\0';
	if (req->address && kc_endpoint_norm(req->address, strlen(req->address),
					     c->cacert || c->cert, one, sizeof(one)) != 0) {
		kc_seterr(c, "bad address: %s", req->address);
		return KVS_EINVAL;
	}
	for (size_t t = 0; t < tries; t++) {
		size_t i = (c->current + t) % c->n_endpoints;
		const char *base = req->address ? one : c->endpoints[i];
		CURLcode res = attempt(c, req, base, rep);

		if (res == CURLE_OK) {
			if (!req->address) {
				c->current = i;
				rep->endpoint = c->endpoints[i];
			}
			return 0;
		}
		if (res == CURLE_ABORTED_BY_CALLBACK) {
			kc_seterr(c, "canceled");
			return KVS_ECANCELED;
		}
		if (rep->body.too_big) {
			kc_seterr(c, "%s: reply larger than %zu bytes", base, c->max_reply);
			return KVS_EPROTO;
		}
		if (res == CURLE_WRITE_ERROR && req->sink) {
			kc_seterr(c, "writing the output file failed");
			return KVS_EIO;
		}
		kc_seterr(c, "%s: %s", base, c->curl_err[0] ? c->curl_err : curl_easy_strerror(res));
		if (!unreached(c->curl, res, idempotent))
			return KVS_EUNREACHABLE; /* may have reached the node: never sent twice */
	}
	return KVS_EUNREACHABLE;
}

void kc_reply_release(struct kc_reply *rep)
{
	kc_buf_release(&rep->body);
}

/* The "error" member of a JSON error body, copied without parsing the rest. */
static void server_message(kvs_client *c, const struct kc_reply *rep)
{
	const char *p = rep->body.data ? strstr(rep->body.data, "\"error\"") : NULL;
	size_t n = 0;

	if (!p || !(p = strchr(p + 7, '"'))) {
		kc_seterr(c, "%s: HTTP %ld", rep->endpoint ? rep->endpoint : "", rep->status);
		return;
	}
	p++;
	while (p[n] && p[n] != '"' && n < 300)
		n += p[n] == '\\' && p[n + 1] ? 2 : 1;
	kc_seterr(c, "HTTP %ld: %.*s", rep->status, (int)n, p);
}

int kc_status(kvs_client *c, const struct kc_reply *rep)
{
	long s = rep->status;

	if (s >= 200 && s < 300)
		return 0;
	server_message(c, rep);
	switch (s) {
	case 404: return KVS_ENOTFOUND;
	case 412: return KVS_EPRECOND;
	case 401: return KVS_EAUTH;
	case 403: return KVS_EFORBIDDEN;
	case 410: return KVS_ECOMPACTED;
	case 503: return KVS_EUNAVAILABLE;
	case 400: case 405: case 411: case 413: case 414: case 431: return KVS_EBADREQ;
	default: return KVS_ESERVER;
	}
}
