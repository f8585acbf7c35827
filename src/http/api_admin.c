/*
 * api_admin.c - GET /admin/snapshot (SPEC section 11; admin scope, checked
 * by the route table): a consistent point-in-time copy of every record of
 * this node, streamed as the snapshot format of snapshot.h.
 *
 * The store walks its records through one RocksDB snapshot
 * (store_snapshot()), and each record goes into the snapshot writer, which
 * hands the connection SNAPSHOT_CHUNK bytes at a time: memory stays the
 * same whatever the data size, and writes go on while the stream runs
 * (they are not in it).  The 200 and its headers go out before the first
 * record, so a failure part-way (storage error, client gone) can only end
 * the stream early: the file then has no valid trailer, which
 * `kvs --restore` refuses.  The failure is logged.  At most
 * HTTP_SNAPSHOTS_MAX streams run at once (503 with Retry-After beyond).
 *
 * Threads: a civetweb worker, for as long as the stream runs.
 */
#include <stdio.h>

#include "api.h"
#include "http.h"
#include "kvs.h"
#include "log.h"
#include "snapshot.h"
#include "store.h"

/* The writer's sink: the connection. */
static int sink_conn(void *ctx, const uint8_t *data, size_t len)
{
	return http_chunk_write(ctx, (const char *)data, len) ? 0 : KVS_EIO;
}

/* store_snapshot's callback: one record into the writer. */
static int add_record(void *ctx, const char *key, size_t klen, const struct kvs_record *rec)
{
	return snapshot_writer_add(ctx, key, klen, rec);
}

int api_admin_snapshot(struct kvs_node *node, struct mg_connection *c,
		       const struct mg_request_info *ri, const char *raw_path)
{
	struct snapshot_writer w;
	int64_t now = version_now_ms(), started = hub_now_us();
	char extra[256 + CONFIG_ID_MAX];
	int rc;

	(void)ri;
	(void)raw_path;
	if (!http_snapshot_begin(c))
		return http_error(c, 503, "Retry-After: 5\r\n",
				  "%d snapshots are running already: retry when one is done",
				  HTTP_SNAPSHOTS_MAX);
	if (snapshot_writer_init(&w, node->cfg.node_id, now, sink_conn, c) != 0) {
		http_snapshot_end(c);
		return http_error(c, 500, NULL, "out of memory");
	}
	snprintf(extra, sizeof(extra),
		 "Content-Disposition: attachment; filename=\"kvs-%s-%lld.snap\"\r\n"
		 "X-Kvs-Snapshot-Version: %d\r\n",
		 node->cfg.node_id, (long long)now, SNAPSHOT_VERSION);
	if (!http_chunked_start(c, "application/octet-stream", extra)) {
		snapshot_writer_release(&w);
		http_snapshot_end(c);
		return 200;
	}
	rc = store_snapshot(node->store, add_record, &w);
	if (rc == 0)
		rc = snapshot_writer_finish(&w);
	if (rc == 0 && !http_chunk_end(c)) /* only a whole stream gets its end */
		rc = KVS_EIO;
	if (rc == 0)
		log_info("snapshot_sent", "records=%llu bytes=%llu ms=%lld",
			 (unsigned long long)w.count, (unsigned long long)w.bytes,
			 (long long)((hub_now_us() - started) / 1000));
	else
		log_warn("snapshot_failed", "records=%llu bytes=%llu error=\"%s\"",
			 (unsigned long long)w.count, (unsigned long long)w.bytes,
			 rc == KVS_EIO && w.err ? "client gone" : kvs_strerror(rc));
	snapshot_writer_release(&w);
	http_snapshot_end(c);
	return 200;
}
