/*
 * metrics.c - lock-free counters and Prometheus text rendering.
 *
 * Histograms keep per-bucket counts (not cumulative) so that recording a
 * sample touches one bucket; rendering sums them into the cumulative form
 * Prometheus expects.
 */
#include "metrics.h"

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ tables */

static const char *const route_names[ROUTE_COUNT] = {
	"kv", "kv_list", "health", "metrics", "members", "peer", "watch", "txn", "admin", "ui",
	"other",
};

static const char *const method_names[METHOD_COUNT] = {
	"GET", "HEAD", "PUT", "DELETE", "POST", "other",
};

/* The status codes kvs sends; anything else lands in the last slot. */
static const int status_codes[METRICS_STATUS_SLOTS] = {
	200, 204, 400, 401, 403, 404, 405, 408, 409, 411, 413, 429, 500, 503, 0,
};

/* Upper bounds in seconds; the last is +Inf. */
static const double lat_bounds[METRICS_LAT_BUCKETS - 1] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10,
};

static const char *const sync_kind_names[SYNC_KIND_COUNT] = {
	"push", "regular", "catchup", "bootstrap", "anti_entropy", "conflict",
};

const char *metrics_sync_kind_name(enum sync_kind k)
{
	return sync_kind_names[k];
}

/* -------------------------------------------------------------- recording */

static int status_slot(int status)
{
	for (int i = 0; i < METRICS_STATUS_SLOTS - 1; i++)
		if (status_codes[i] == status)
			return i;
	return METRICS_STATUS_SLOTS - 1;
}

static int method_slot(const char *m)
{
	for (int i = 0; i < METHOD_OTHER; i++)
		if (strcmp(m, method_names[i]) == 0)
			return i;
	return METHOD_OTHER;
}

static int lat_slot(uint64_t micros)
{
	double s = (double)micros / 1e6;

	for (int i = 0; i < METRICS_LAT_BUCKETS - 1; i++)
		if (s <= lat_bounds[i])
			return i;
	return METRICS_LAT_BUCKETS - 1;
}

void metrics_request(struct metrics *m, enum metrics_route route, const char *method,
		     int status, uint64_t micros)
{
	atomic_fetch_add_explicit(&m->requests[route][method_slot(method)][status_slot(status)], 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&m->lat_bucket[route][lat_slot(micros)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->lat_sum_us[route], micros, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->lat_count[route], 1, memory_order_relaxed);
}

void metrics_repl_lag(struct metrics *m, int64_t lag_ms)
{
	uint64_t us = lag_ms > 0 ? (uint64_t)lag_ms * 1000 : 0;

	atomic_fetch_add_explicit(&m->repl_lag_bucket[lat_slot(us)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->repl_lag_sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->repl_lag_count, 1, memory_order_relaxed);
}

/* -------------------------------------------------------------- rendering */

static void render_histogram(struct buf *b, const char *name, const char *labels,
			     _Atomic uint64_t *buckets, uint64_t sum_us, uint64_t count)
{
	uint64_t cum = 0;
	const char *sep = labels[0] ? "," : "";

	for (int i = 0; i < METRICS_LAT_BUCKETS - 1; i++) {
		cum += atomic_load(&buckets[i]);
		buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, lat_bounds[i],
			   (unsigned long long)cum);
	}
	cum += atomic_load(&buckets[METRICS_LAT_BUCKETS - 1]);
	buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
		   (unsigned long long)cum);
	if (labels[0]) {
		buf_printf(b, "%s_sum{%s} %.6f\n", name, labels, (double)sum_us / 1e6);
		buf_printf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)count);
	} else {
		buf_printf(b, "%s_sum %.6f\n", name, (double)sum_us / 1e6);
		buf_printf(b, "%s_count %llu\n", name, (unsigned long long)count);
	}
}

static void render_counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		   (unsigned long long)v);
}

static void render_per_kind(struct buf *b, const char *name, const char *help,
			    _Atomic uint64_t *v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int k = 0; k < SYNC_KIND_COUNT; k++)
		buf_printf(b, "%s{kind=\"%s\"} %llu\n", name, sync_kind_names[k],
			   (unsigned long long)atomic_load(&v[k]));
}

void metrics_render(struct metrics *m, struct buf *b)
{
	char labels[64];

	buf_adds(b, "# HELP kvs_http_requests_total HTTP requests served, by route, method and "
		    "status.\n# TYPE kvs_http_requests_total counter\n");
	for (int r = 0; r < ROUTE_COUNT; r++)
		for (int me = 0; me < METHOD_COUNT; me++)
			for (int s = 0; s < METRICS_STATUS_SLOTS; s++) {
				uint64_t v = atomic_load(&m->requests[r][me][s]);
				if (!v)
					continue;
				char code[8];
				if (status_codes[s])
					snprintf(code, sizeof(code), "%d", status_codes[s]);
				else
					strcpy(code, "other");
				buf_printf(b,
					   "kvs_http_requests_total{route=\"%s\",method=\"%s\","
					   "status=\"%s\"} %llu\n",
					   route_names[r], method_names[me], code,
					   (unsigned long long)v);
			}

	buf_adds(b, "# HELP kvs_http_request_duration_seconds Time to serve a request, by "
		    "route.\n# TYPE kvs_http_request_duration_seconds histogram\n");
	for (int r = 0; r < ROUTE_COUNT; r++) {
		snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
		render_histogram(b, "kvs_http_request_duration_seconds", labels, m->lat_bucket[r],
				 atomic_load(&m->lat_sum_us[r]), atomic_load(&m->lat_count[r]));
	}

	render_counter(b, "kvs_push_batches_sent_total", "Push batches a peer accepted.",
		       atomic_load(&m->pushes_sent));
	render_counter(b, "kvs_push_batches_failed_total", "Push batches that failed.",
		       atomic_load(&m->pushes_failed));
	render_counter(b, "kvs_push_items_total", "Records sent in push batches.",
		       atomic_load(&m->push_items));
	render_counter(b, "kvs_push_dropped_total",
		       "Records not pushed because the queue was full (sync repairs them).",
		       atomic_load(&m->push_dropped));
	render_counter(b, "kvs_push_compressed_total",
		       "Push batches sent zstd-compressed (to peers that take it).",
		       atomic_load(&m->push_compressed));
	render_counter(b, "kvs_push_bytes_total", "Bytes of push bodies sent, before compression.",
		       atomic_load(&m->push_bytes));
	render_counter(b, "kvs_push_wire_bytes_total", "Bytes of push bodies sent, as sent.",
		       atomic_load(&m->push_wire_bytes));
	render_counter(b, "kvs_push_encoding_refused_total",
		       "Compressed pushes a peer refused (415): sent again plain.",
		       atomic_load(&m->push_encoding_refused));
	render_counter(b, "kvs_writes_throttled_total",
		       "Writes that waited for this node's pushes to catch up (replication_lag_max_ms).",
		       atomic_load(&m->writes_throttled));
	buf_printf(b, "# HELP kvs_write_throttle_seconds_total Time writes spent waiting for pushes.\n"
		   "# TYPE kvs_write_throttle_seconds_total counter\n"
		   "kvs_write_throttle_seconds_total %.6f\n",
		   (double)atomic_load(&m->throttle_wait_us) / 1e6);
	render_per_kind(b, "kvs_sync_rounds_total", "Sync rounds run, by kind.", m->sync_rounds);
	render_per_kind(b, "kvs_sync_items_fetched_total", "Records received from peers, by kind.",
			m->items_fetched);
	render_per_kind(b, "kvs_sync_items_applied_total",
			"Received records that were newer and got stored, by kind.",
			m->items_applied);
	buf_adds(b, "# HELP kvs_replication_lag_seconds Time from a write on its origin node to "
		    "its apply here.\n# TYPE kvs_replication_lag_seconds histogram\n");
	render_histogram(b, "kvs_replication_lag_seconds", "", m->repl_lag_bucket,
			 atomic_load(&m->repl_lag_sum_us), atomic_load(&m->repl_lag_count));
	render_counter(b, "kvs_tombstones_purged_total", "Delete markers purged after the grace.",
		       atomic_load(&m->tombstones_purged));
	render_counter(b, "kvs_conflicts_detected_total",
		       "Same-timestamp, different-UUID versions met.",
		       atomic_load(&m->conflicts_detected));
	render_counter(b, "kvs_conflicts_resolved_total", "Conflicts settled by a vote.",
		       atomic_load(&m->conflicts_resolved));
	render_counter(b, "kvs_peer_requests_failed_total", "Requests to peers that failed.",
		       atomic_load(&m->peer_requests_failed));
	render_counter(b, "kvs_peer_auth_refused_total",
		       "Peer requests refused for a missing or wrong cluster secret.",
		       atomic_load(&m->peer_auth_refused));
	render_counter(b, "kvs_clock_refused_total",
		       "Peer records not applied: stamped more than max_clock_offset_ms ahead.",
		       atomic_load(&m->clock_refused));
	render_counter(b, "kvs_records_refused_total",
		       "Records from peers refused one by one (malformed, or a timestamp out of range).",
		       atomic_load(&m->records_refused));
	render_counter(b, "kvs_peer_messages_refused_total",
		       "Peer messages or replies refused whole (too deep, too many values, not JSON).",
		       atomic_load(&m->peer_messages_refused));
	render_counter(b, "kvs_listings_refused_total",
		       "Listings answered 503 because the memory budget for replies was spent.",
		       atomic_load(&m->listings_refused));
	render_counter(b, "kvs_watch_events_delivered_total",
		       "Change events sent to watchers (long-poll replies and streams).",
		       atomic_load(&m->watch_events));
	render_counter(b, "kvs_watch_compacted_total",
		       "Watches answered 410: their index was older than the history kept.",
		       atomic_load(&m->watch_compacted));
	render_counter(b, "kvs_watch_refused_total",
		       "Watches answered 503 because max_watchers were open.",
		       atomic_load(&m->watch_refused));
}
