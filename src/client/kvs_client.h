/*
 * kvs_client.h - libkvs, the C client library of kvs.  This header is its
 * manual.
 *
 * Link with `pkg-config --cflags --libs kvs`.  The library talks HTTP/1.1 to
 * one node of a cluster at a time through libcurl, keeping the connection
 * open between calls (keep-alive).
 *
 * Endpoints and failover.  A client holds a list of endpoints ("host:port",
 * "http://host:port" or "https://host:port").  A call goes to the current
 * endpoint; if it cannot reach it (connection refused, name not resolved,
 * connect timeout, TLS handshake failure; for a GET also a connection
 * dropped or timed out before the reply) it tries the next one, in order,
 * and stays on the first that answers.  An HTTP answer, whatever its status (4xx and 5xx included), is
 * never retried elsewhere: the node answered.  When every endpoint fails the
 * call returns KVS_EUNREACHABLE.  A write that reached a node whose reply
 * was lost (timeout after sending) is NOT sent again: it returns
 * KVS_EUNREACHABLE, and may or may not have been applied.
 *
 * Errors.  Every function that can fail returns 0 (or a count) on success
 * and a negative KVS_E* code on failure; kvs_client_strerror() names a code
 * and kvs_client_errmsg() gives the detail of the last failure on a client
 * (the server's {"error": "..."} text, or curl's message).  A failed call
 * leaves its out-parameters untouched (kvs_txn's reply on KVS_EPRECOND is
 * the one documented exception).
 *
 * Threads.  A kvs_client is used by one thread at a time (it owns one curl
 * handle and its connection); use one client per thread for parallel calls.
 * The library has no global state of its own; kvs_client_new() calls
 * curl_global_init() (which libcurl documents as not thread-safe on some
 * builds: create the first client before starting threads).
 *
 * Keys are given without the /kv/ prefix ("config/app"); a leading '/' is
 * ignored.  The library percent-encodes them.  Values are JSON text, sent
 * and returned byte for byte (by kvs_get, listings and watch events alike).
 */
#ifndef KVS_CLIENT_H
#define KVS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define KVS_CLIENT_BEGIN_DECLS extern "C" {
#define KVS_CLIENT_END_DECLS }
#else
#define KVS_CLIENT_BEGIN_DECLS
#define KVS_CLIENT_END_DECLS
#endif
KVS_CLIENT_BEGIN_DECLS

#define KVS_CLIENT_VERSION "1.0.0"

/* ---------------------------------------------------------------- errors */

#define KVS_OK             0
#define KVS_ENOTFOUND     -1  /* 404: no such key (absent, deleted or expired) */
#define KVS_EPRECOND      -2  /* 412: a condition (If-Match, create-only, txn) failed */
#define KVS_EAUTH         -3  /* 401: no token, or an unknown one */
#define KVS_EFORBIDDEN    -4  /* 403: the token may not do this, or the node is read-only */
#define KVS_EBADREQ       -5  /* 400/405/411/413/414/431: refused as malformed */
#define KVS_EUNREACHABLE  -6  /* no endpoint could be reached (or a reply was lost) */
#define KVS_EUNAVAILABLE  -7  /* 503: node syncing, clock skewed, too many watchers... */
#define KVS_ESERVER       -8  /* another 5xx, or an unexpected status */
#define KVS_EPROTO        -9  /* a reply that is not what the API promises, or too large */
#define KVS_ENOMEM       -10  /* out of memory */
#define KVS_EINVAL       -11  /* a bad argument (empty key, bad endpoint list...) */
#define KVS_ECOMPACTED   -12  /* 410: watch index older than the node's history */
#define KVS_EIO          -13  /* a local file could not be written */
#define KVS_ECANCELED    -14  /* the caller's cancel flag was set */

/* A static English name for code ("key not found"...); never NULL. */
const char *kvs_client_strerror(int code);

/* --------------------------------------------------------------- clients */

typedef struct kvs_client kvs_client;

/* Options of kvs_client_new().  Zero means the default for every field. */
struct kvs_client_options {
	const char *endpoints;       /* comma-separated; required */
	const char *token;           /* sent as "Authorization: Bearer TOKEN" */
	const char *cacert;          /* CA file to verify https endpoints */
	const char *cert, *key;      /* client certificate and key (mutual TLS) */
	long connect_timeout_ms;     /* per endpoint; default 2000 */
	long timeout_ms;             /* a whole call (not a watch poll); default 10000 */
	size_t max_reply_bytes;      /* larger replies fail KVS_EPROTO; default 64 MiB */
};

/*
 * Creates a client.  Endpoints without a scheme use https when cacert or
 * cert is given, else http.  No connection is made yet.
 * Returns 0 and *out (free with kvs_client_free), KVS_EINVAL (opt NULL, or
 * an empty or malformed endpoint list), or KVS_ENOMEM.  Strings are copied.
 */
int kvs_client_new(const struct kvs_client_options *opt, kvs_client **out);

/* Closes the connection and frees the client; NULL is fine. */
void kvs_client_free(kvs_client *c);

/* The detail of the client's last failure, "" after a success.  Borrowed:
 * valid until the next call on c. */
const char *kvs_client_errmsg(const kvs_client *c);

/* The endpoint ("http://host:port") the last call was answered by, or the
 * current one.  Borrowed: valid until kvs_client_free. */
const char *kvs_client_endpoint(const kvs_client *c);

/* Number of endpoints, and the i-th one (borrowed), for tools that ask
 * every node in turn. */
size_t kvs_client_endpoint_count(const kvs_client *c);
const char *kvs_client_endpoint_at(const kvs_client *c, size_t i);

/* ------------------------------------------------------------ key/value */

/* A version: what a write returns and what a read finds. */
struct kvs_version {
	char uuid[37];               /* "" when there is none */
	int64_t timestamp;           /* ms since the epoch; 0 when none */
	int64_t expires;             /* ms since the epoch; 0: no TTL */
};

/* A value read by kvs_get().  Free its contents with kvs_value_release. */
struct kvs_value {
	char *json;                  /* the stored JSON, NUL-terminated; owned */
	size_t len;                  /* bytes of json, without the NUL */
	struct kvs_version version;
	uint64_t index;              /* the node's change index (X-Kvs-Index); 0 if absent */
};

/*
 * Reads key.  Returns 0 and fills *out, or KVS_ENOTFOUND and the other
 * codes.  The caller frees out->json with kvs_value_release().
 */
int kvs_get(kvs_client *c, const char *key, struct kvs_value *out);

/* Frees what kvs_get put in v and zeroes it; safe to call twice. */
void kvs_value_release(struct kvs_value *v);

/* Conditions and time to live of a write.  Zero: an unconditional write
 * of a permanent value. */
struct kvs_put_options {
	const char *if_match;        /* "*" (exists) or a uuid (with or without quotes) */
	bool create_only;            /* If-None-Match: * (fails if the key exists) */
	int64_t ttl_ms;              /* > 0: expire after this long (the node allows 1 s..max_ttl) */
};

/*
 * Writes json (len bytes, any JSON value; the node checks it) to key.
 * opt may be NULL.  Returns 0 and, if out is not NULL, the new version;
 * KVS_EPRECOND when a condition fails (nothing written); KVS_EBADREQ for
 * invalid JSON, a bad key or TTL, a value over the node's limit.
 */
int kvs_put(kvs_client *c, const char *key, const char *json, size_t len,
	    const struct kvs_put_options *opt, struct kvs_version *out);

/*
 * Deletes key; if_match (NULL: none) is "*" or a uuid.  Returns 0,
 * KVS_ENOTFOUND, KVS_EPRECOND...
 */
int kvs_delete(kvs_client *c, const char *key, const char *if_match);

/* ---------------------------------------------------------------- lists */

/* One key of a listing.  Borrowed from the iterator: valid until the next
 * kvs_list_next or kvs_list_free. */
struct kvs_item {
	const char *key;
	const char *json;            /* the value with values=true (as stored), else NULL */
	size_t len;
	struct kvs_version version;  /* filled with values=true */
};

struct kvs_list_options {
	const char *after;           /* start after this key (exclusive); NULL: from the start */
	int page_size;               /* keys per request, 1..10000; default 1000 */
	bool values;                 /* fetch values and versions too */
	bool one_page;               /* stop after the first page */
};

typedef struct kvs_list kvs_list;

/*
 * Starts listing every key under prefix ("" or NULL: all keys; "users" and
 * "users/" both mean the keys under users/).  Fetches the first page.
 * Returns 0 and *out (free with kvs_list_free) or an error.
 */
int kvs_list_open(kvs_client *c, const char *prefix, const struct kvs_list_options *opt,
		  kvs_list **out);

/*
 * The next key: returns 1 and *item, 0 at the end, or an error (a later
 * page failed; the iterator can be freed).  Fetches pages as needed,
 * through the client given to kvs_list_open (which must outlive it).
 */
int kvs_list_next(kvs_list *l, const struct kvs_item **item);

/* After the end of a one_page listing: the key to pass as `after` for the
 * following page, or NULL when there is none.  Borrowed. */
const char *kvs_list_more(const kvs_list *l);

void kvs_list_free(kvs_list *l);

/* ---------------------------------------------------------- transactions */

/*
 * POSTs body (len bytes: {"ops": [...]}, the format of POST /txn in the
 * README) to /txn.  Returns 0 or KVS_EPRECOND (nothing applied) with
 * *reply set to the node's JSON reply (results, or failed positions), or
 * another error with *reply untouched.  The caller frees *reply with free().
 */
int kvs_txn(kvs_client *c, const char *body, size_t len, char **reply);

/* --------------------------------------------------------------- watches */

/* One change.  Borrowed: valid during the callback only. */
struct kvs_event {
	uint64_t index;              /* the index on the node that sent it */
	const char *key;
	const char *type;            /* "put", "delete" or "expire" */
	const char *json;            /* a put's value as stored (NULL otherwise or with no_values) */
	size_t len;
	struct kvs_version version;
	const char *origin;          /* node that wrote it, or NULL */
	const char *endpoint;        /* the endpoint it came through */
	const char *raw;             /* the whole event as the node sent it (JSON) */
};

/* Return 0 to go on watching, anything else to stop (kvs_watch returns it). */
typedef int (*kvs_watch_fn)(const struct kvs_event *ev, void *arg);

struct kvs_watch_options {
	uint64_t index;              /* events after this index of the first endpoint; 0: from now */
	int64_t since;               /* or: events with timestamp >= since (ms); 0: none */
	int wait_s;                  /* long-poll length, 1..600; default 30 */
	int64_t margin_ms;           /* resuming elsewhere: since = last timestamp - margin; default 5000 */
	bool no_values;              /* events without values */
	const volatile int *cancel;  /* if set and nonzero, kvs_watch returns KVS_ECANCELED (within 1 s) */
	int retry_rounds;            /* full passes over every endpoint before KVS_EUNREACHABLE; default 3 */
};

/*
 * Watches key (or, ending in '/', every key under the prefix; "" for all)
 * and calls fn for each event in order, until fn returns nonzero (which
 * kvs_watch returns), the cancel flag is set, or no endpoint can be reached.
 *
 * Long-polls the current endpoint by index.  When that endpoint fails (or
 * its history no longer holds the index: 410), the watch moves to the next
 * endpoint and resumes with since = (timestamp of the last event seen, or
 * the start of the watch) - margin_ms, then by that node's index; events
 * seen before (same key and uuid) are dropped, so fn sees each change once.
 * Blocks the calling thread; uses c for the whole time.
 */
int kvs_watch(kvs_client *c, const char *key, const struct kvs_watch_options *opt,
	      kvs_watch_fn fn, void *arg);

/* --------------------------------------------------------------- cluster */

/* One member as a node sees it (GET /members/). */
struct kvs_member {
	char *id;
	char *address;               /* host:port */
	char *status;                /* alive, unhealthy, left */
	int64_t last_seen;           /* ms since the epoch */
	bool has_clock_offset;
	int64_t clock_offset_ms;     /* offset of its clock to the answering node's */
};

/*
 * The member list of the current endpoint.  Returns the number of members
 * (>= 0) and *out, an array the caller frees with kvs_members_free(*out,
 * n); with raw not NULL also the reply's JSON text (caller frees with free()).
 */
int kvs_members(kvs_client *c, struct kvs_member **out, char **raw);
void kvs_members_free(struct kvs_member *m, int n);

/* GET /health of one node. */
struct kvs_health {
	char status[16];             /* "ok" */
	char mode[16];               /* normal, syncing, read-only */
	char clock[16];              /* ok, skewed ("" if not reported) */
	char node_id[128];
	int member_count;
};

/*
 * /health of the current endpoint, or (address not NULL) of that node
 * ("host:port" or a URL) without failover.  raw: as for kvs_members.
 */
int kvs_health(kvs_client *c, const char *address, struct kvs_health *out, char **raw);

/*
 * The value of one sample of address's /metrics (its first line named
 * exactly name, without labels), e.g. "kvs_keys".  Returns 0 and *value,
 * KVS_ENOTFOUND if there is no such sample, or an error.
 */
int kvs_metric(kvs_client *c, const char *address, const char *name, double *value);

/*
 * Streams GET /admin/snapshot (admin token) into the file path, written as
 * path + ".part" and renamed when complete.  Returns the bytes written or
 * an error (KVS_EIO for the local file; nothing is left behind).
 */
int64_t kvs_snapshot_save(kvs_client *c, const char *path);

KVS_CLIENT_END_DECLS

#endif /* KVS_CLIENT_H */
