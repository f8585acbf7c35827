/*
 * peer.c - libcurl client for node-to-node requests (see peer.h).
 *
 * Threads: one CURL easy handle per thread, in a pthread key whose
 * destructor cleans it up when the thread exits; no locks.  curl's own
 * connection cache inside the handle keeps connections to peers alive.
 *
 * Every transfer goes through peer_io->perform (peer_io.h), the seam where
 * tests make a peer unreachable or answer an error; everything around it
 * (URL, headers, TLS, the failure count and log) is the real code.
 */
#include "peer.h"
#include "peer_io.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "json.h"
#include "kvs.h"
#include "log.h"
#include "version.h"

static pthread_key_t curl_key;
static pthread_once_t curl_key_once = PTHREAD_ONCE_INIT;

static void curl_handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void curl_key_make(void)
{
	pthread_key_create(&curl_key, curl_handle_free);
}

void peer_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_once(&curl_key_once, curl_key_make);
}

void peer_global_cleanup(void)
{
	curl_global_cleanup();
}

/* The calling thread's handle, reset for a new request; NULL on OOM. */
static CURL *thread_handle(void)
{
	CURL *h;

	pthread_once(&curl_key_once, curl_key_make);
	h = pthread_getspecific(curl_key);
	if (h) {
		curl_easy_reset(h); /* keeps live connections and caches */
		return h;
	}
	h = curl_easy_init();
	if (h)
		pthread_setspecific(curl_key, h);
	return h;
}

/* peer_io_real.perform: the transfer, then the status of the answer. */
static CURLcode real_perform(CURL *h, const struct peer_call *call, struct buf *reply,
			     long *status)
{
	CURLcode cc = curl_easy_perform(h);

	(void)call;  /* already set up on h */
	(void)reply; /* filled by on_data, h's write callback */
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	return cc;
}

const struct peer_io peer_io_real = { .perform = real_perform };
const struct peer_io *peer_io = &peer_io_real;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;

	buf_add(b, p, size * n);
	return buf_failed(b) ? 0 : size * n; /* 0 aborts the transfer */
}

/* CURLOPT_HEADERFUNCTION of a push: notes "Accept-Encoding: ...zstd..."
 * in the answer (the peer takes compressed pushes, RFC 7694). */
static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	static const char name[] = "accept-encoding:";
	bool *zstd_ok = arg;
	size_t len = size * n;

	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0 &&
	    memmem(p + sizeof(name) - 1, len - (sizeof(name) - 1), "zstd", 4))
		*zstd_ok = true;
	return len;
}

/* peer_request, and for a push: the body's Content-Encoding (NULL: none)
 * and where to note that the answer offers zstd (NULL: not looked at). */
static int request(struct kvs_node *node, const char *address, const char *method,
		   const char *path, const char *body, size_t len, long timeout_ms,
		   struct buf *reply, long *status, const char *encoding, bool *zstd_ok)
{
	CURL *h = thread_handle();
	struct curl_slist *hdrs = NULL;
	char url[CONFIG_ADDR_MAX + 2048], hdr[400];
	CURLcode cc;

	*status = 0;
	if (!h)
		return KVS_ENOMEM;
	/* a node that serves TLS talks TLS to every peer: the cluster is all-TLS */
	bool tls = node->cfg.tls_cert_file[0] != '\0';
	bool has_scheme = strncmp(address, "http://", 7) == 0 || strncmp(address, "https://", 8) == 0;
	if ((size_t)snprintf(url, sizeof(url), "%s%s%s",
			     has_scheme ? "" : tls ? "https://" : "http://", address,
			     path) >= sizeof(url))
		return KVS_EINVAL;
	if (!timeout_ms)
		timeout_ms = node->cfg.peer_timeout_ms;

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 1000 ? timeout_ms : 1000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, 32L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, zstd_ok ? on_header : NULL);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, zstd_ok); /* NULL: headers go nowhere */
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
	if (node->cfg.cluster_secret[0]) {
		snprintf(hdr, sizeof(hdr), "%s: %s", PEER_SECRET_HEADER, node->cfg.cluster_secret);
		hdrs = curl_slist_append(hdrs, hdr);
	}
	snprintf(hdr, sizeof(hdr), "%s: %s", PEER_CLUSTER_HEADER, node->cfg.cluster_id);
	hdrs = curl_slist_append(hdrs, hdr);
	if (encoding) {
		snprintf(hdr, sizeof(hdr), "Content-Encoding: %s", encoding);
		hdrs = curl_slist_append(hdrs, hdr);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (tls) {
		/* our certificate doubles as the client certificate for mutual TLS */
		curl_easy_setopt(h, CURLOPT_SSLCERT, node->cfg.tls_cert_file);
		curl_easy_setopt(h, CURLOPT_SSLKEY, node->cfg.tls_key_file);
		if (node->cfg.tls_ca_file[0])
			curl_easy_setopt(h, CURLOPT_CAINFO, node->cfg.tls_ca_file);
	}
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}

	const struct peer_call call = { url, method, body, body ? len : 0 };
	cc = peer_io->perform(h, &call, reply, status);
	curl_slist_free_all(hdrs);
	if (cc != CURLE_OK || *status < 200 || *status > 299) {
		/* one line per failure; at warn level at most every 10 s per
		 * thread, so a dead peer probed every second does not flood */
		static _Thread_local int64_t last_warn;
		int64_t now = version_now_ms();
		enum log_level lvl = now - last_warn > 10000 ? LOG_WARN : LOG_DEBUG;

		if (lvl == LOG_WARN)
			last_warn = now;
		atomic_fetch_add(&node->metrics.peer_requests_failed, 1);
		log_event(lvl, "peer_request_failed",
			  "peer=%s method=%s path=\"%.120s\" status=%ld error=\"%s\"", address, method,
			  path, *status, cc != CURLE_OK ? curl_easy_strerror(cc) : "HTTP error");
		return KVS_EPEER;
	}
	return 0;
}

int peer_request(struct kvs_node *node, const char *address, const char *method,
		 const char *path, const char *body, size_t len, long timeout_ms,
		 struct buf *reply, long *status)
{
	return request(node, address, method, path, body, len, timeout_ms, reply, status, NULL,
		       NULL);
}

int peer_push(struct kvs_node *node, const char *address, const struct peer_body *b,
	      bool *zstd_ok, struct buf *reply, long *status)
{
	bool packed = *zstd_ok && b->zbody && node->cfg.peer_compression, offered = false;
	int rc = request(node, address, "POST", "/members/push", packed ? b->zbody : b->body,
			 packed ? b->zlen : b->len, 0, reply, status, packed ? "zstd" : NULL,
			 &offered);

	if (rc != 0 && packed && (*status == 415 || *status == 400)) {
		/* it no longer takes zstd (restarted with peer_compression off: 415;
		 * or as a kvs that reads any body as JSON: 400): the plain body at
		 * once, and plain from now on */
		atomic_fetch_add(&node->metrics.push_encoding_refused, 1);
		packed = false;
		buf_reset(reply);
		offered = false;
		rc = request(node, address, "POST", "/members/push", b->body, b->len, 0, reply,
			     status, NULL, &offered);
	}
	if (*status > 0)
		*zstd_ok = offered; /* what its latest answer said */
	if (rc == 0) {
		atomic_fetch_add(&node->metrics.push_bytes, b->len);
		atomic_fetch_add(&node->metrics.push_wire_bytes, packed ? b->zlen : b->len);
		if (packed)
			atomic_fetch_add(&node->metrics.push_compressed, 1);
	}
	return rc;
}

int peer_json(struct kvs_node *node, const char *address, const char *method, const char *path,
	      const cJSON *body, long timeout_ms, cJSON **out, long *status)
{
	struct buf reply;
	char *text = NULL;
	int rc;

	*out = NULL;
	if (body && !(text = cJSON_PrintUnformatted(body)))
		return KVS_ENOMEM;
	buf_init(&reply, PEER_REPLY_MAX);
	rc = peer_request(node, address, method, path, text, text ? strlen(text) : 0, timeout_ms,
			  &reply, status);
	cJSON_free(text);
	if (rc == 0 && reply.len) {
		const char *why = "empty";

		/* bounded like a request body: a peer's reply is as hostile */
		*out = json_parse_bounded(reply.data, reply.len, JSON_PEER_MAX_DEPTH,
					  JSON_PEER_MAX_VALUES, &why);
		if (!*out) {
			atomic_fetch_add(&node->metrics.peer_messages_refused, 1);
			log_warn_limited("peer_bad_reply", "peer=%s path=\"%.120s\" reason=\"%s\"",
					 address, path, why);
			rc = KVS_EPEER;
		}
	}
	buf_release(&reply);
	return rc;
}

char *peer_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *out = e ? strdup(e) : NULL;

	curl_free(e);
	return out;
}
