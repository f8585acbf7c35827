/*
 * client_int.h - what the files of libkvs share and the unit tests reach:
 * the client struct, one HTTP call with failover, URL building.  Not
 * installed.
 */
#ifndef KVS_CLIENT_INT_H
#define KVS_CLIENT_INT_H

#include <stdio.h>

#include <curl/curl.h>

#include "kvs_client.h"

#define KC_MAX_ENDPOINTS 64
#define KC_URL_MAX 8192

/* A growable byte buffer with a hard cap. */
struct kc_buf {
	char *data;                  /* NUL-terminated when not NULL */
	size_t len, cap;
	size_t limit;                /* appending past this fails */
	bool too_big;
};

struct kvs_client {
	char *endpoints[KC_MAX_ENDPOINTS]; /* "http://host:port", no trailing '/' */
	size_t n_endpoints;
	size_t current;              /* index of the endpoint calls go to first */
	char *auth_header;           /* "Authorization: Bearer ..." or NULL */
	char *cacert, *cert, *key;
	long connect_timeout_ms, timeout_ms;
	size_t max_reply;
	CURL *curl;                  /* reused: keeps the connection open */
	struct curl_slist *hdr_get;  /* headers of every request without a body */
	struct curl_slist *hdr_body; /* ... and with one (Content-Type too) */
	char errmsg[512];
	char curl_err[CURL_ERROR_SIZE];
};

/* One request.  path is already encoded ("/kv/a%20b?ttl=5s"). */
struct kc_req {
	const char *method;
	const char *path;
	const char *body;            /* NULL: none */
	size_t body_len;
	const char *headers[4];      /* extra header lines, NULL-terminated */
	const char *address;         /* NULL: the endpoint list with failover; else only this */
	long timeout_ms;             /* 0: the client's */
	FILE *sink;                  /* not NULL: body goes there instead of into reply */
	const volatile int *cancel;  /* aborts the transfer when set */
};

/* What came back. */
struct kc_reply {
	long status;
	struct kc_buf body;
	char etag[40];               /* the uuid inside ETag's quotes */
	int64_t timestamp, expires;
	uint64_t index;
	const char *endpoint;        /* that answered; borrowed from the client */
	int64_t sink_bytes;
};

/* Sends req, with failover; returns 0 with rep filled (any HTTP status), or
 * KVS_EUNREACHABLE / KVS_EPROTO / KVS_ENOMEM / KVS_ECANCELED.  The caller
 * releases rep with kc_reply_release. */
int kc_send(kvs_client *c, const struct kc_req *req, struct kc_reply *rep);
void kc_reply_release(struct kc_reply *rep);

/* Maps a reply's status to 0 or a KVS_E* code and records the server's
 * {"error"} text as the client's errmsg. */
int kc_status(kvs_client *c, const struct kc_reply *rep);

/* Sets the client's errmsg (printf-style). */
void kc_seterr(kvs_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Percent-encodes s (n bytes) into b: unreserved bytes kept, and '/'
 * when keep_slash.  Returns 0 or KVS_ENOMEM / KVS_EPROTO (over the cap). */
int kc_buf_encode(struct kc_buf *b, const char *s, size_t n, bool keep_slash);

/* Builds "/kv/<key>" (or with prefix: "/kv/<prefix>/", root "/kv/") from a
 * user key: leading '/' dropped.  base is "/kv/" or "/watch/".  Returns 0,
 * KVS_EINVAL (empty key), or KVS_ENOMEM. */
int kc_key_path(struct kc_buf *b, const char *base, const char *key, bool prefix);

/* Normalises one endpoint ("host:port", "http://h:p/", "https://h:p") into
 * "scheme://host:port" in out (size n).  tls chooses the default scheme.
 * Returns 0 or KVS_EINVAL. */
int kc_endpoint_norm(const char *in, size_t len, bool tls, char *out, size_t n);

/* Parses a "W/..." free ETag header value into uuid (37 bytes). */
void kc_parse_etag(const char *v, char *uuid);

/* Events a watch handed to its callback recently, by a hash of key and
 * uuid (client_watch.c): what a resume by `since` may bring again. */
struct kc_seen {
	struct kc_seen_entry {
		uint64_t h;
		int64_t ts;
	} *v;
	size_t n, cap;
	int64_t newest;              /* largest timestamp added */
};

uint64_t kc_event_hash(const char *key, const char *uuid);
bool kc_seen_has(const struct kc_seen *s, uint64_t h);
/* Adds h (an event stamped ts); when full, first forgets the entries older
 * than newest - 2 x margin, which no resume can bring again.  0 or KVS_ENOMEM. */
int kc_seen_add(struct kc_seen *s, uint64_t h, int64_t ts, int64_t margin);

/* Where one element of a reply's array sits in the text, and its "value". */
struct kc_span {
	size_t off, len;             /* the element */
	size_t val_off, val_len;     /* its "value" member; val_len 0: none */
};

/* Finds the elements of the array member `array` of the JSON object text
 * (already known to be valid JSON) and the "value" member of each
 * (json_scan.c).  Returns how many (at most max), or -1. */
int kc_scan_array(const char *text, size_t len, const char *array, struct kc_span *spans,
		  size_t max);

int kc_buf_add(struct kc_buf *b, const char *s, size_t n);
int kc_buf_printf(struct kc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kc_buf_release(struct kc_buf *b);

#endif /* KVS_CLIENT_INT_H */
