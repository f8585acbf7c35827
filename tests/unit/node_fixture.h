/*
 * node_fixture.h - an in-process node for unit tests that need more than
 * one module: set up the way main.c sets one up (config_defaults, the
 * store in a fresh mkdtemp directory, the member table, peer_global_init)
 * and, when asked, the real HTTP server on a free loopback port.  No
 * background thread is started here; a test starts the ones it drives.
 *
 * Included by test_api_fault.c and test_peer.c after <cmocka.h> (with
 * _XOPEN_SOURCE 700 first, for store_fixture.h); links with $(NODE).
 * One node per test binary: fx_node.  Install any seam (store_io.h,
 * peer_io.h) before node_fixture_start(), which starts threads.
 */
#ifndef KVS_TEST_NODE_FIXTURE_H
#define KVS_TEST_NODE_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gossip.h"
#include "http.h"
#include "members.h"
#include "node.h"
#include "peer.h"
#include "store_fixture.h"
#include "version.h"

static struct kvs_node fx_node; /* large (metrics): not on a stack */
static char fx_dir[64];

/* A loopback port nobody listens on right now (the kernel's pick). */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Sets fx_node up (see above); with_http starts the HTTP server too. */
static void node_fixture_start(bool with_http)
{
	struct kvs_node *n = &fx_node;
	struct members_timeouts t = { .suspicion_ms = 5000, .failure_ms = 300000,
				      .removal_ms = 600000 };
	char err[512] = "";

	log_init(LOG_ERROR, LOG_FORMAT_TEXT, "test");
	memset(n, 0, sizeof(*n));
	pthread_mutex_init(&n->stop_lock, NULL);
	pthread_cond_init(&n->stop_cond, NULL);
	config_defaults(&n->cfg);
	snprintf(fx_dir, sizeof(fx_dir), "/tmp/kvs-test-node-XXXXXX");
	assert_non_null(mkdtemp(fx_dir));
	snprintf(n->cfg.data_dir, sizeof(n->cfg.data_dir), "%s", fx_dir);
	snprintf(n->cfg.node_id, sizeof(n->cfg.node_id), "test-node");
	snprintf(n->cfg.bind_address, sizeof(n->cfg.bind_address), "127.0.0.1");
	n->cfg.port = free_port();
	snprintf(n->cfg.advertise_address, sizeof(n->cfg.advertise_address), "127.0.0.1:%d",
		 n->cfg.port);
	n->cfg.http_threads = 8;
	n->started_ms = version_now_ms();
	n->joined_ts = n->started_ms;

	n->store = store_open(fx_dir, false, TEST_CACHE_BYTES, err, sizeof(err));
	if (!n->store)
		fail_msg("store_open: %s", err);
	atomic_store(&n->mode, MODE_NORMAL);
	atomic_store(&n->join_state, JOIN_DONE);
	snprintf(n->self.id, sizeof(n->self.id), "test-node");
	snprintf(n->self.address, sizeof(n->self.address), "127.0.0.1:%d", n->cfg.port);
	n->self.joined_ts = n->joined_ts;
	n->self.incarnation = n->started_ms;
	n->self.last_seen = n->started_ms;
	n->self.status = MEMBER_ALIVE;
	n->self.self = true;
	assert_non_null(n->members = members_new(&n->self, &t));
	peer_global_init();
	if (with_http && !http_start(n, err, sizeof(err)))
		fail_msg("http_start: %s", err);
}

/* Stops what node_fixture_start started and removes the data dir. */
static void node_fixture_stop(void)
{
	struct kvs_node *n = &fx_node;

	node_request_stop(n);
	http_stop(n->http);
	node_join_threads(n);
	members_free(n->members);
	store_close(n->store);
	peer_global_cleanup();
	rm_tree(fx_dir);
	pthread_mutex_destroy(&n->stop_lock);
	pthread_cond_destroy(&n->stop_cond);
}

#endif
