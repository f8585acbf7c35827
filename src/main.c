/*
 * main.c - start-up and shut-down order, signals.
 *
 * Start: parse the command line; load (or create) the config, which is
 * validated before anything touches the data directory; open the store;
 * read or write joined_timestamp; start the HTTP server.
 * Stop (SIGTERM/SIGINT): tell every peer we leave (so they show us `left`
 * at once rather than after civetweb's wait for idle keep-alive connections),
 * stop HTTP (no new requests), then the background threads, then flush and
 * close the store; exit 0.  systemd hears STOPPING=1 first.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread (the mask is set
 * before any thread starts) and taken synchronously by the main thread with
 * sigtimedwait(), so no handler runs asynchronously and no global flag is
 * needed.  SIGPIPE is ignored: a peer that hangs up is an error return.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "clock.h"
#include "config.h"
#include "conflict.h"
#include "fsutil.h"
#include "gossip.h"
#include "http.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "node.h"
#include "notify.h"
#include "peer.h"
#include "replicate.h"
#include "restore.h"
#include "store.h"
#include "sync.h"

#define EXIT_CONFIG 2

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvs [CONFIG]            start a node (CONFIG defaults to ./config.yaml;\n"
		"                               a missing file is created with the defaults)\n"
		"       kvs --check-config F    validate F, print the effective settings\n"
		"       kvs --restore FILE [CONFIG]  load a snapshot (GET /admin/snapshot)\n"
		"                               into CONFIG's empty or absent data_dir\n"
		"       kvs --version | --help\n");
}

/* Loads path, creating it with the defaults when it does not exist. */
static int load_config(struct kvs_config *cfg, const char *path)
{
	char err[512];

	if (access(path, F_OK) != 0 && errno == ENOENT) {
		if (config_write_default(path, err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return EXIT_CONFIG;
		}
		fprintf(stderr, "kvs: wrote default config to %s\n", path);
	}
	if (config_load(cfg, path, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	return 0;
}

/* joined_timestamp: written once at the data dir's first start. */
static int load_joined_ts(struct kvs_node *node)
{
	uint8_t buf[8];
	size_t len = 0;
	int rc = store_meta_get(node->store, "joined_timestamp", buf, sizeof(buf), &len);

	if (rc == 0 && len == 8) {
		node->joined_ts = (int64_t)record_get_be64(buf);
		return 0;
	}
	if (rc != 0 && rc != KVS_ENOTFOUND)
		return rc;
	node->joined_ts = node->started_ms;
	record_put_be64(buf, (uint64_t)node->joined_ts);
	return store_meta_put(node->store, "joined_timestamp", buf, sizeof(buf));
}

static void node_init(struct kvs_node *node, const char *config_path)
{
	memset(node, 0, sizeof(*node));
	node->config_path = config_path;
	node->started_ms = version_now_ms();
	pthread_mutex_init(&node->stop_lock, NULL);
	pthread_cond_init(&node->stop_cond, NULL);
}

/*
 * Reads the previous run's last heartbeat.  After an absence longer than
 * tombstone_grace, peers may have purged delete markers this node never
 * saw: it then refuses to hand peers records older than the grace, so it
 * cannot bring deleted values back (the README says to wipe such a node).
 */
static void check_absence(struct kvs_node *node)
{
	uint8_t buf[8];
	size_t len = 0;
	int64_t grace_ms = node->cfg.tombstone_grace * 1000;

	if (store_meta_get(node->store, "last_alive", buf, sizeof(buf), &len) != 0 || len != 8)
		return;
	node->last_alive_ts = (int64_t)record_get_be64(buf);
	if (node->started_ms - node->last_alive_ts > grace_ms) {
		node->stale_before_ts = node->started_ms - grace_ms;
		log_warn("stale_node", "away_s=%lld tombstone_grace_s=%lld note=\"records older than "
			 "the grace are not shared with peers; wipe data_dir to rejoin cleanly\"",
			 (long long)((node->started_ms - node->last_alive_ts) / 1000),
			 (long long)node->cfg.tombstone_grace);
	}
}

/* The member record peers see for this node. */
static void self_init(struct kvs_node *node)
{
	struct member *me = &node->self;

	snprintf(me->id, sizeof(me->id), "%s", node->cfg.node_id);
	snprintf(me->address, sizeof(me->address), "%s", node->cfg.advertise_address);
	me->joined_ts = node->joined_ts;
	/* above the previous run's, even when this clock is now behind the one
	 * that run had (a clock fixed backwards): peers keep the newer one */
	me->incarnation = node->started_ms > node->last_alive_ts ? node->started_ms
								  : node->last_alive_ts + 1;
	me->last_seen = node->started_ms;
	me->status = MEMBER_ALIVE;
	me->self = true;
}

/* Creates the member table and the replication and conflict queues: all
 * that HTTP handlers may touch, so it exists before the first request. */
static int cluster_init(struct kvs_node *node)
{
	struct members_timeouts t = {
		.suspicion_ms = gossip_suspicion_ms(&node->cfg),
		.failure_ms = 1000LL * node->cfg.failure_timeout,
		.removal_ms = 1000LL * node->cfg.removal_timeout,
	};

	self_init(node);
	if (!(node->members = members_new(&node->self, &t)) ||
	    !(node->replicate = replicate_new(node)) || !(node->conflict = conflict_new(node)) ||
	    !(node->clocks = clocks_new()))
		return KVS_ENOMEM;
	store_set_clock_limit(node->store, node->cfg.max_clock_offset_ms);
	members_set_max(node->members, (size_t)node->cfg.max_members);
	return 0;
}

/* Starts the cluster threads (once HTTP serves): replication, conflicts,
 * gossip, sync. */
static int cluster_start(struct kvs_node *node)
{
	if (replicate_start(node) != 0 || conflict_start(node) != 0 || gossip_start(node) != 0 ||
	    sync_start(node) != 0)
		return KVS_ENOMEM;
	return 0;
}

/*
 * Waits for SIGTERM or SIGINT; returns the signal.  The main thread wakes
 * every tick (1 s, or half the systemd watchdog interval when shorter) and
 * pings the watchdog at each tick when one is set.
 */
static int wait_for_signal(const sigset_t *set, uint64_t watchdog_usec)
{
	uint64_t tick_usec = 1000000;

	if (watchdog_usec > 0 && watchdog_usec / 2 < tick_usec)
		tick_usec = watchdog_usec / 2 > 1000 ? watchdog_usec / 2 : 1000;
	for (;;) {
		struct timespec tick = { (time_t)(tick_usec / 1000000),
					 (long)(tick_usec % 1000000) * 1000 };
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig > 0)
			return sig;
		if (watchdog_usec > 0)
			notify_watchdog();
	}
}

static int run_node(const char *config_path)
{
	static struct kvs_node node; /* large (metrics); lives for the process */
	char err[512];
	sigset_t set;
	int rc;

	node_init(&node, config_path);
	if ((rc = load_config(&node.cfg, config_path)) != 0)
		return rc;
	log_init(node.cfg.log_level, node.cfg.log_format, node.cfg.node_id);
	config_log_warnings(&node.cfg);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = fs_mkdir_p(node.cfg.data_dir)) != 0) {
		log_error("start_failed", "data_dir=\"%s\" error=\"%s\"", node.cfg.data_dir,
			  strerror(-rc));
		return 1;
	}
	node.store = store_open(node.cfg.data_dir, node.cfg.sync_writes,
				(size_t)node.cfg.cache_bytes, err, sizeof(err));
	if (!node.store) {
		log_error("start_failed", "error=\"%s\"", err);
		return 1;
	}
	if (store_changes_enable(node.store, (uint64_t)node.cfg.watch_history) != 0 ||
	    store_expiry_start(node.store) != 0) {
		log_error("start_failed", "error=\"cannot start the change index trimmer or the "
			  "expiry reaper\"");
		store_close(node.store);
		return 1;
	}
	if (load_joined_ts(&node) != 0) {
		log_error("start_failed", "error=\"cannot read or write node metadata\"");
		store_close(node.store);
		return 1;
	}
	check_absence(&node);
	/* with seeds, client writes wait (503) until the bootstrap has run */
	atomic_store(&node.mode, node.cfg.seed_count > 0 ? MODE_SYNCING
				 : node.cfg.read_only ? MODE_READ_ONLY : MODE_NORMAL);
	atomic_store(&node.join_state, node.cfg.seed_count > 0 ? JOIN_PENDING : JOIN_DONE);
	peer_global_init();

	if (cluster_init(&node) != 0) {
		log_error("start_failed", "error=\"out of memory\"");
		store_close(node.store);
		return 1;
	}
	if (node.cfg.audit_log[0] && !(node.audit = audit_open(node.cfg.audit_log, err,
							       sizeof(err)))) {
		log_error("start_failed", "error=\"%s\"", err);
		store_close(node.store);
		return 1;
	}
	/* a server that failed to start is already gone: only one that
	 * started is stopped here */
	struct http_server *hs = http_start(&node, err, sizeof(err));
	if (!hs || cluster_start(&node) != 0) {
		log_error("start_failed", "error=\"%s\"", hs ? "out of memory" : err);
		node_request_stop(&node);
		http_stop(hs);
		node_join_threads(&node);
		store_close(node.store);
		return 1;
	}
	struct store_stats st;
	store_stats(node.store, &st);
	log_info("node_started",
		 "version=%s address=%s data_dir=\"%s\" keys=%lld mode=%s startup_ms=%lld",
		 KVS_VERSION, node.cfg.advertise_address, node.cfg.data_dir, (long long)st.keys,
		 node_mode_name(atomic_load(&node.mode)),
		 (long long)(version_now_ms() - node.started_ms));

	notify_ready(node_mode_name(atomic_load(&node.mode)));
	uint64_t watchdog_usec = 0;
	if (notify_watchdog_usec(&watchdog_usec))
		log_info("watchdog_enabled", "interval_ms=%llu",
			 (unsigned long long)(watchdog_usec / 1000));

	int sig;
	while ((sig = wait_for_signal(&set, watchdog_usec)) == SIGHUP) {
		audit_reopen(node.audit); /* logrotate moved the file away: lines */
		log_info("audit_reopen", "file=\"%s\"", node.cfg.audit_log); /* from now go to the new one */
	}
	notify_stopping();
	log_info("node_stopping", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	gossip_leave(&node);            /* peers show us left at once */
	http_stop(node.http);           /* no new requests; waits for idle keep-alives */
	node_request_stop(&node);
	replicate_wake(node.replicate);
	conflict_wake(node.conflict);
	node_join_threads(&node);
	replicate_free(node.replicate);
	conflict_free(node.conflict);
	clocks_free(node.clocks);
	audit_close(node.audit);
	members_free(node.members);
	store_close(node.store);        /* flushes */
	peer_global_cleanup();
	log_info("node_stopped", "exit=0");
	return 0;
}

/*
 * kvs --restore FILE [CONFIG]: loads a snapshot into the config's data_dir
 * (restore.h).  Exit 0; 2 for a bad config, a refused file or a data_dir
 * that is not empty; 1 when the disk or memory fails.
 */
static int run_restore(const char *file, const char *config_path)
{
	struct kvs_config cfg;
	struct restore_result res;
	char err[1024];
	int64_t started = version_now_ms();

	if (config_load(&cfg, config_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_CONFIG;
	}
	log_init(cfg.log_level, cfg.log_format, cfg.node_id);
	size_t max_record = (size_t)cfg.max_value_bytes + RECORD_HEADER + 8 + 1 + RECORD_ORIGIN_MAX;
	int rc = store_restore(file, cfg.data_dir, max_record, &res, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "kvs: restore refused: %s\n", err);
		fprintf(stderr, "kvs: nothing was written to %s\n", cfg.data_dir);
		return rc == KVS_EINVAL ? EXIT_CONFIG : 1;
	}
	printf("kvs: restored %llu records (%llu tombstones) from %s into %s; snapshot of node %s "
	       "taken at %lld ms; %lld ms\n",
	       (unsigned long long)res.records, (unsigned long long)res.tombstones, file,
	       cfg.data_dir, res.node_id, (long long)res.taken_ms,
	       (long long)(version_now_ms() - started));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		printf("kvs %s\n", KVS_VERSION);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--check-config") == 0) {
		struct kvs_config cfg;
		char err[512];

		if (argc != 3) {
			usage(stderr);
			return EXIT_CONFIG;
		}
		if (config_load(&cfg, argv[2], err, sizeof(err)) != 0) {
			fprintf(stderr, "%s\n", err);
			return EXIT_CONFIG;
		}
		config_print(&cfg, stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--restore") == 0) {
		if (argc < 3 || argc > 4) {
			usage(stderr);
			return EXIT_CONFIG;
		}
		return run_restore(argv[2], argc == 4 ? argv[3] : "config.yaml");
	}
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	/* Blocks of 1 MiB and more (request bodies, replies, listing pages)
	 * are mapped on their own and unmapped when freed, instead of staying
	 * in one of glibc's per-thread arenas for good (a fixed threshold:
	 * glibc's sliding one would climb after the first large free). */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	return run_node(argc == 2 ? argv[1] : "config.yaml");
}
