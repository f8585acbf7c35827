/*
 * metrics.h - counters and histograms for /metrics (Prometheus text).
 *
 * All fields are atomics updated without locks from any thread; rendering
 * reads them one by one, so a page is not a consistent snapshot (as with
 * any Prometheus exporter).  Gauges that belong to other modules (keys,
 * members, mode) are added to the page by api_cluster.c.
 */
#ifndef KVS_METRICS_H
#define KVS_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"

enum metrics_route {
	ROUTE_KV,        /* /kv/{path} */
	ROUTE_KV_LIST,   /* /kv/{prefix}/ */
	ROUTE_HEALTH,    /* /health */
	ROUTE_METRICS,   /* /metrics */
	ROUTE_MEMBERS,   /* /members/ client endpoints */
	ROUTE_PEER,      /* /members/... peer endpoints */
	ROUTE_WATCH,     /* /watch/... */
	ROUTE_TXN,       /* /txn */
	ROUTE_ADMIN,     /* /admin/... */
	ROUTE_UI,        /* /ui/ (the web console's static files) */
	ROUTE_OTHER,     /* anything else (404) */
	ROUTE_COUNT
};

enum metrics_method { METHOD_GET, METHOD_HEAD, METHOD_PUT, METHOD_DELETE, METHOD_POST,
		      METHOD_OTHER, METHOD_COUNT };

#define METRICS_STATUS_SLOTS 15   /* distinct status codes counted, see metrics.c */
#define METRICS_LAT_BUCKETS 14    /* latency histogram buckets, +Inf included */

/* Kinds of sync, for the per-kind counters. */
enum sync_kind { SYNC_PUSH, SYNC_REGULAR, SYNC_CATCHUP, SYNC_BOOTSTRAP, SYNC_ANTI_ENTROPY,
		 SYNC_CONFLICT, SYNC_KIND_COUNT };

struct metrics {
	_Atomic uint64_t requests[ROUTE_COUNT][METHOD_COUNT][METRICS_STATUS_SLOTS];
	_Atomic uint64_t lat_bucket[ROUTE_COUNT][METRICS_LAT_BUCKETS]; /* not cumulative */
	_Atomic uint64_t lat_sum_us[ROUTE_COUNT];
	_Atomic uint64_t lat_count[ROUTE_COUNT];

	/* replication */
	_Atomic uint64_t pushes_sent;        /* push batches accepted by a peer */
	_Atomic uint64_t pushes_failed;      /* push batches that failed */
	_Atomic uint64_t push_items;         /* records sent in pushes */
	_Atomic uint64_t push_dropped;       /* records dropped: queue full */
	_Atomic uint64_t push_compressed;    /* push batches sent as zstd */
	_Atomic uint64_t push_bytes;         /* push bodies sent, as JSON */
	_Atomic uint64_t push_wire_bytes;    /* the same as sent (compressed or not) */
	_Atomic uint64_t push_encoding_refused; /* 415 from a peer: resent plain */
	_Atomic uint64_t writes_throttled;   /* local writes that waited for pushes */
	_Atomic uint64_t throttle_wait_us;   /* and how long, in all */
	_Atomic uint64_t sync_rounds[SYNC_KIND_COUNT];
	_Atomic uint64_t items_fetched[SYNC_KIND_COUNT];
	_Atomic uint64_t items_applied[SYNC_KIND_COUNT]; /* newer records applied */
	_Atomic uint64_t repl_lag_bucket[METRICS_LAT_BUCKETS]; /* origin ts -> applied here */
	_Atomic uint64_t repl_lag_sum_us;
	_Atomic uint64_t repl_lag_count;
	_Atomic uint64_t tombstones_purged;

	/* conflicts */
	_Atomic uint64_t conflicts_detected;
	_Atomic uint64_t conflicts_resolved;

	/* peers */
	_Atomic uint64_t peer_requests_failed;
	_Atomic uint64_t peer_auth_refused;
	_Atomic uint64_t records_refused;    /* peer records refused one by one (malformed, bad timestamp) */
	_Atomic uint64_t clock_refused;      /* peer records stamped too far ahead of this clock */
	_Atomic uint64_t peer_messages_refused; /* peer bodies or replies over a parse bound */

	/* memory */
	_Atomic uint64_t listings_refused;   /* listings answered 503: reply budget spent */

	/* watches */
	_Atomic uint64_t watch_events;       /* events sent to watchers */
	_Atomic uint64_t watch_compacted;    /* watches answered 410: index older than the history */
	_Atomic uint64_t watch_refused;      /* watches answered 503: max_watchers open */
};

/* Counts one finished request. */
void metrics_request(struct metrics *m, enum metrics_route route, const char *method,
		     int status, uint64_t micros);

/* Records a replication lag sample (milliseconds; negative counts as 0). */
void metrics_repl_lag(struct metrics *m, int64_t lag_ms);

/* Appends every counter and histogram above to b in Prometheus text. */
void metrics_render(struct metrics *m, struct buf *b);

/* Name of a sync kind ("push", "regular", ...). */
const char *metrics_sync_kind_name(enum sync_kind k);

#endif
