/*
 * api_cluster.c - /health, /metrics, /members/ and DELETE /members/leave
 * (SPEC section 4).
 *
 * The route table (routes.c) has checked access and method before these
 * run.  Runs on civetweb worker threads; reads node state only through
 * atomics and thread-safe module calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <cjson/cJSON.h>

#include "api.h"
#include "buf.h"
#include "gossip.h"
#include "http.h"
#include "kvs.h"
#include "audit.h"
#include "clock.h"
#include "members.h"
#include "replicate.h"

int api_health(struct kvs_node *node, struct mg_connection *c, const struct mg_request_info *ri,
	       const char *raw_path)
{
	struct buf b;
	int rc;

	(void)ri;
	(void)raw_path;
	buf_init(&b, 4096);
	buf_printf(&b, "{\"status\":\"ok\",\"mode\":\"%s\",\"member_count\":%d,\"node_id\":",
		   node_mode_name(atomic_load(&node->mode)), members_alive_count(node->members));
	buf_json_str(&b, node->cfg.node_id, strlen(node->cfg.node_id));
	buf_printf(&b, ",\"clock\":\"%s\"}\n", atomic_load(&node->clock_skewed) ? "skewed" : "ok");
	rc = http_send(c, 200, "application/json", NULL, b.data, b.len);
	buf_release(&b);
	return rc;
}

/* The file system of data_dir: what the "disk nearly full" alert reads
 * (examples/monitoring/).  Left out when statvfs fails. */
static void disk_metrics(struct kvs_node *node, struct buf *b)
{
	struct statvfs fs;

	if (statvfs(node->cfg.data_dir, &fs) != 0)
		return;
	buf_printf(b, "# HELP kvs_disk_free_bytes Bytes available to kvs on data_dir's file "
		      "system.\n# TYPE kvs_disk_free_bytes gauge\nkvs_disk_free_bytes %llu\n"
		      "# HELP kvs_disk_size_bytes Size of data_dir's file system.\n"
		      "# TYPE kvs_disk_size_bytes gauge\nkvs_disk_size_bytes %llu\n",
		   (unsigned long long)fs.f_bavail * fs.f_frsize,
		   (unsigned long long)fs.f_blocks * fs.f_frsize);
}

int api_metrics(struct kvs_node *node, struct mg_connection *c,
		const struct mg_request_info *ri, const char *raw_path)
{
	struct store_stats st;
	struct buf b;
	int rc, mode = atomic_load(&node->mode);

	(void)ri;
	(void)raw_path;
	buf_init(&b, 4 << 20);
	metrics_render(&node->metrics, &b);
	store_stats(node->store, &st);
	buf_printf(&b, "# HELP kvs_keys Live keys stored.\n# TYPE kvs_keys gauge\nkvs_keys %lld\n",
		   (long long)st.keys);
	buf_printf(&b, "# HELP kvs_tombstones Delete markers stored.\n# TYPE kvs_tombstones gauge\n"
		       "kvs_tombstones %lld\n", (long long)st.tombstones);
	buf_printf(&b, "# HELP kvs_value_bytes Bytes of live JSON values stored.\n"
		       "# TYPE kvs_value_bytes gauge\nkvs_value_bytes %lld\n",
		   (long long)st.value_bytes);
	buf_printf(&b, "# HELP kvs_cache_lookups_total Record cache lookups, by result.\n"
		       "# TYPE kvs_cache_lookups_total counter\n"
		       "kvs_cache_lookups_total{result=\"hit\"} %llu\n"
		       "kvs_cache_lookups_total{result=\"miss\"} %llu\n",
		   (unsigned long long)st.cache.hits, (unsigned long long)st.cache.misses);
	buf_printf(&b, "# HELP kvs_cache_bytes Bytes held by the record cache (cache_bytes).\n"
		       "# TYPE kvs_cache_bytes gauge\nkvs_cache_bytes %llu\n",
		   (unsigned long long)st.cache.bytes);
	buf_adds(&b, "# HELP kvs_mode Current mode (1 for the active one).\n# TYPE kvs_mode gauge\n");
	for (int m = MODE_NORMAL; m <= MODE_READ_ONLY; m++)
		buf_printf(&b, "kvs_mode{mode=\"%s\"} %d\n", node_mode_name(m), m == mode);
	int counts[4];
	members_counts(node->members, counts);
	buf_adds(&b, "# HELP kvs_members Members of the cluster by status, as this node sees "
		     "them.\n# TYPE kvs_members gauge\n");
	buf_printf(&b, "kvs_members{status=\"alive\"} %d\nkvs_members{status=\"suspect\"} %d\n"
		       "kvs_members{status=\"unhealthy\"} %d\nkvs_members{status=\"left\"} %d\n",
		   counts[MEMBER_ALIVE], counts[MEMBER_SUSPECT], counts[MEMBER_UNHEALTHY],
		   counts[MEMBER_LEFT]);
	buf_printf(&b, "# HELP kvs_members_refused_total New members refused: the table held "
		       "max_members.\n# TYPE kvs_members_refused_total counter\n"
		       "kvs_members_refused_total %llu\n",
		   (unsigned long long)members_refused_total(node->members));
	buf_printf(&b, "# HELP kvs_push_queue_records Local writes waiting to be pushed to "
		       "peers.\n# TYPE kvs_push_queue_records gauge\nkvs_push_queue_records %zu\n",
		   node->replicate ? replicate_pending(node->replicate) : (size_t)0);
	buf_printf(&b, "# HELP kvs_watchers_open Watch requests open now (at most max_watchers).\n"
		       "# TYPE kvs_watchers_open gauge\nkvs_watchers_open %d\n", http_watchers(node));
	if (store_changes_on(node->store))
		buf_printf(&b, "# HELP kvs_change_index This node's current change index.\n"
			       "# TYPE kvs_change_index gauge\nkvs_change_index %llu\n"
			       "# HELP kvs_change_index_oldest The oldest change index kept.\n"
			       "# TYPE kvs_change_index_oldest gauge\nkvs_change_index_oldest %llu\n",
			   (unsigned long long)store_index(node->store),
			   (unsigned long long)store_index_oldest(node->store));
	clock_metrics(node, &b);
	buf_printf(&b, "# HELP kvs_audit_dropped_total Audit lines dropped: the writer's queue "
		       "was full.\n# TYPE kvs_audit_dropped_total counter\nkvs_audit_dropped_total %llu\n",
		   (unsigned long long)audit_dropped(node->audit));
	buf_printf(&b, "# HELP kvs_expired_total Values this node's reaper turned into "
		       "tombstones at their expiry.\n# TYPE kvs_expired_total counter\n"
		       "kvs_expired_total %llu\n",
		   (unsigned long long)store_expiry_reaped(node->store));
	buf_printf(&b, "# HELP kvs_uptime_seconds Seconds since this process started.\n"
		       "# TYPE kvs_uptime_seconds gauge\nkvs_uptime_seconds %lld\n",
		   (long long)((version_now_ms() - node->started_ms) / 1000));
	disk_metrics(node, &b);
	if (buf_failed(&b))
		rc = http_error(c, 500, NULL, "metrics page too large");
	else
		rc = http_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data,
			       b.len);
	buf_release(&b);
	return rc;
}

int api_members(struct kvs_node *node, struct mg_connection *c,
		const struct mg_request_info *ri, const char *raw_path)
{
	cJSON *arr;
	char *text;
	int rc;

	(void)ri;
	(void)raw_path;
	arr = gossip_members_json(node);
	cJSON *m;
	/* each peer's clock offset and its own report of mode, keys, newest
	 * version and push queue (its last ping answer; "status_age_ms" old),
	 * as far as known; this node's own, now */
	cJSON_ArrayForEach(m, arr) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
		bool self = cJSON_IsString(id) && strcmp(id->valuestring, node->cfg.node_id) == 0;
		struct clock_status st;
		int64_t off = 0;

		if (self || (cJSON_IsString(id) && clock_offset(node, id->valuestring, &off)))
			cJSON_AddNumberToObject(m, "clock_offset_ms", (double)off);
		else
			cJSON_AddNullToObject(m, "clock_offset_ms");
		if (self)
			clock_status_self(node, &st);
		if (self || (cJSON_IsString(id) && clock_status_get(node, id->valuestring, &st))) {
			clock_status_json(&st, m);
			cJSON_AddNumberToObject(m, "status_age_ms", (double)(version_now_ms() - st.at_ms));
		}
	}
	text = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!text)
		return http_error(c, 500, NULL, "out of memory");
	rc = http_send(c, 200, "application/json", NULL, text, strlen(text));
	cJSON_free(text);
	return rc;
}

int api_members_leave(struct kvs_node *node, struct mg_connection *c,
		      const struct mg_request_info *ri, const char *raw_path)
{
	struct buf b;
	int rc;

	(void)ri;
	(void)raw_path;
	gossip_leave(node);
	buf_init(&b, 1024);
	buf_adds(&b, "{\"status\":\"left\",\"node_id\":");
	buf_json_str(&b, node->cfg.node_id, strlen(node->cfg.node_id));
	buf_adds(&b, "}\n");
	if (buf_failed(&b))
		rc = http_error(c, 500, NULL, "reply too large or out of memory");
	else
		rc = http_send(c, 200, "application/json", NULL, b.data, b.len);
	buf_release(&b);
	return rc;
}
