/*
 * main.c - start-up and shut-down order, signals.
 *
 * Start: parse the command line; load (or create) the config, which is
 * validated before anything touches the data directory; open the store;
 * read or write joined_timestamp; start the HTTP server.
 * Stop (SIGTERM/SIGINT): stop HTTP first (no new requests), then the
 * background threads, then flush and close the store; exit 0.
 *
 * Signals: SIGTERM and SIGINT are blocked in every thread (the mask is set
 * before any thread starts) and taken synchronously by the main thread with
 * sigtimedwait(), so no handler runs asynchronously and no global flag is
 * needed.  SIGPIPE is ignored: a peer that hangs up is an error return.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "kvs.h"
#include "log.h"
#include "node.h"
#include "store.h"

#define EXIT_CONFIG 2

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kvs [CONFIG]            start a node (CONFIG defaults to ./config.yaml;\n"
		"                               a missing file is created with the defaults)\n"
		"       kvs --check-config F    validate F, print the effective settings\n"
		"       kvs --version | --help\n");
}

/* mkdir -p: creates dir and its missing parents. */
static int mkdir_p(const char *dir)
{
	char tmp[CONFIG_PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
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

/* Asks every thread to stop and wakes those waiting on stop_cond. */
static void node_request_stop(struct kvs_node *node)
{
	pthread_mutex_lock(&node->stop_lock);
	atomic_store(&node->stopping, true);
	pthread_cond_broadcast(&node->stop_cond);
	pthread_mutex_unlock(&node->stop_lock);
}

/* Waits for SIGTERM or SIGINT; returns the signal. */
static int wait_for_signal(const sigset_t *set)
{
	for (;;) {
		struct timespec tick = { 1, 0 };
		int sig = sigtimedwait(set, NULL, &tick);

		if (sig > 0)
			return sig;
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

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((rc = mkdir_p(node.cfg.data_dir)) != 0) {
		log_error("start_failed", "data_dir=\"%s\" error=\"%s\"", node.cfg.data_dir,
			  strerror(-rc));
		return 1;
	}
	node.store = store_open(node.cfg.data_dir, node.cfg.sync_writes, err, sizeof(err));
	if (!node.store) {
		log_error("start_failed", "error=\"%s\"", err);
		return 1;
	}
	if (load_joined_ts(&node) != 0) {
		log_error("start_failed", "error=\"cannot read or write node metadata\"");
		store_close(node.store);
		return 1;
	}
	atomic_store(&node.mode, node.cfg.read_only ? MODE_READ_ONLY : MODE_NORMAL);

	node.http = http_start(&node, err, sizeof(err));
	if (!node.http) {
		log_error("start_failed", "error=\"%s\"", err);
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

	int sig = wait_for_signal(&set);
	log_info("node_stopping", "signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	node_request_stop(&node);
	http_stop(node.http);
	store_close(node.store);
	log_info("node_stopped", "exit=0");
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
	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		usage(stderr);
		return EXIT_CONFIG;
	}
	return run_node(argc == 2 ? argv[1] : "config.yaml");
}
