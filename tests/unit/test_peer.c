/*
 * test_peer.c - peer requests when the peer fails, through the seam of
 * peer_io.h: every transfer of an in-process node (node_fixture.h) goes to
 * a fake that answers like a dead, broken or healthy peer, no network.
 *
 * peer_request(): no answer (connection refused, timeout) and any non-2xx
 * status give KVS_EPEER, the status seen (0 without an answer), the body
 * of an error reply, and one count in peer_requests_failed; a 2xx gives 0
 * and counts nothing.  The request carries the URL, method and body asked
 * for.  peer_json(): a 2xx whose body is not JSON is KVS_EPEER as well,
 * counted as a refused message, with no half-parsed reply handed out.
 *
 * Callers: the replicator (replicate.c) meets a dead peer, counts the
 * failed push, drops the batch (sync repairs it) and goes on pushing once
 * the peer is back; the join (gossip.c) retries a seed that failed until
 * it answers, standalone meanwhile.  Neither crashes nor stalls.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "node_fixture.h"
#include "peer_io.h"
#include "replicate.h"

/* ------------------------------------------------------------- fake peer */

enum fake_answer {
	ANSWER_OK,        /* 200 with fake_body */
	ANSWER_REFUSED,   /* no answer: connection refused */
	ANSWER_TIMEOUT,   /* no answer: timed out */
	ANSWER_STATUS,    /* fake_status with fake_body */
};

static _Atomic int fake_answer = ANSWER_OK;
static _Atomic int fake_fail_first;   /* the first N calls are refused */
static _Atomic long fake_status = 200;
static _Atomic(const char *) fake_body = "{}";
static _Atomic int fake_calls;

/* What the last call asked for (under seen_lock: the replicator sends). */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char seen_url[512], seen_method[16], seen_body[4096];

static CURLcode fake_perform(CURL *h, const struct peer_call *call, struct buf *reply,
			     long *status)
{
	(void)h;
	pthread_mutex_lock(&seen_lock);
	snprintf(seen_url, sizeof(seen_url), "%s", call->url);
	snprintf(seen_method, sizeof(seen_method), "%s", call->method);
	snprintf(seen_body, sizeof(seen_body), "%.*s", (int)call->len,
		 call->body ? call->body : "");
	pthread_mutex_unlock(&seen_lock);
	if (atomic_fetch_add(&fake_calls, 1) < atomic_load(&fake_fail_first))
		return CURLE_COULDNT_CONNECT;
	switch (atomic_load(&fake_answer)) {
	case ANSWER_REFUSED:
		return CURLE_COULDNT_CONNECT;
	case ANSWER_TIMEOUT:
		return CURLE_OPERATION_TIMEDOUT;
	case ANSWER_STATUS:
		*status = atomic_load(&fake_status);
		break;
	default:
		*status = 200;
	}
	buf_adds(reply, atomic_load(&fake_body));
	return buf_failed(reply) ? CURLE_WRITE_ERROR : CURLE_OK;
}

static struct peer_io fake_io;

static void expect_seen(const char *method, const char *url, const char *in_body)
{
	pthread_mutex_lock(&seen_lock);
	assert_string_equal(seen_method, method);
	assert_string_equal(seen_url, url);
	if (in_body && !strstr(seen_body, in_body))
		fail_msg("request body %s does not hold %s", seen_body, in_body);
	pthread_mutex_unlock(&seen_lock);
}

/* Waits up to 5 s for *counter to reach at least want. */
static void wait_count(_Atomic uint64_t *counter, uint64_t want)
{
	for (int ms = 0; atomic_load(counter) < want && ms < 5000; ms += 5)
		usleep(5000);
	assert_true(atomic_load(counter) >= want);
}

/* ------------------------------------------------------- peer_request */

/* A peer that does not answer: KVS_EPEER, status 0, one failure counted. */
static void test_no_answer(void **state)
{
	struct buf reply;
	long status = 99;

	(void)state;
	buf_init(&reply, 1 << 16);
	atomic_store(&fake_answer, ANSWER_REFUSED);
	assert_int_equal(peer_request(&fx_node, "127.0.0.1:9", "GET", "/members/digests", NULL,
				      0, 0, &reply, &status), KVS_EPEER);
	assert_int_equal(status, 0);
	assert_int_equal(reply.len, 0);
	expect_seen("GET", "http://127.0.0.1:9/members/digests", NULL);
	assert_int_equal(atomic_load(&fx_node.metrics.peer_requests_failed), 1);

	atomic_store(&fake_answer, ANSWER_TIMEOUT);
	assert_int_equal(peer_request(&fx_node, "http://127.0.0.1:9", "POST", "/members/push",
				      "{\"x\":1}", 7, 0, &reply, &status), KVS_EPEER);
	assert_int_equal(status, 0);
	expect_seen("POST", "http://127.0.0.1:9/members/push", "{\"x\":1}");
	assert_int_equal(atomic_load(&fx_node.metrics.peer_requests_failed), 2);
	buf_release(&reply);
}

/* A peer that answers an error status: KVS_EPEER with the status and the
 * body it sent; 2xx is success and counts nothing. */
static void test_error_status(void **state)
{
	static const long failing[] = { 500, 503, 404, 401, 302 };
	struct buf reply;
	long status;

	(void)state;
	buf_init(&reply, 1 << 16);
	atomic_store(&fake_answer, ANSWER_STATUS);
	atomic_store(&fake_body, "{\"error\":\"storage failure\"}");
	for (size_t i = 0; i < sizeof(failing) / sizeof(failing[0]); i++) {
		buf_reset(&reply);
		atomic_store(&fake_status, failing[i]);
		assert_int_equal(peer_request(&fx_node, "127.0.0.1:9", "GET", "/members/recent",
					      NULL, 0, 0, &reply, &status), KVS_EPEER);
		assert_int_equal(status, failing[i]);
		assert_string_equal(reply.data, atomic_load(&fake_body));
		assert_int_equal(atomic_load(&fx_node.metrics.peer_requests_failed), i + 1);
	}
	buf_reset(&reply);
	atomic_store(&fake_status, 204);
	atomic_store(&fake_body, "");
	assert_int_equal(peer_request(&fx_node, "127.0.0.1:9", "DELETE", "/members/x", NULL, 0,
				      0, &reply, &status), 0);
	assert_int_equal(status, 204);
	assert_int_equal(atomic_load(&fx_node.metrics.peer_requests_failed), 5);
	buf_release(&reply);
}

/* peer_json: a 200 that is not JSON is refused whole; a good one parses. */
static void test_json_reply(void **state)
{
	cJSON *out = (cJSON *)&out; /* garbage that must be overwritten */
	long status;

	(void)state;
	atomic_store(&fake_answer, ANSWER_OK);
	atomic_store(&fake_body, "{\"members\": [1, 2");
	assert_int_equal(peer_json(&fx_node, "127.0.0.1:9", "GET", "/members/digests", NULL, 0,
				   &out, &status), KVS_EPEER);
	assert_null(out);
	assert_int_equal(status, 200);
	assert_int_equal(atomic_load(&fx_node.metrics.peer_messages_refused), 1);
	assert_int_equal(atomic_load(&fx_node.metrics.peer_requests_failed), 0);

	atomic_store(&fake_answer, ANSWER_STATUS);
	atomic_store(&fake_status, 500);
	atomic_store(&fake_body, "{\"error\":\"x\"}");
	assert_int_equal(peer_json(&fx_node, "127.0.0.1:9", "GET", "/members/digests", NULL, 0,
				   &out, &status), KVS_EPEER);
	assert_null(out);
	assert_int_equal(status, 500);

	atomic_store(&fake_answer, ANSWER_OK);
	atomic_store(&fake_body, "{\"n\":7}");
	assert_int_equal(peer_json(&fx_node, "127.0.0.1:9", "GET", "/members/digests", NULL, 0,
				   &out, &status), 0);
	assert_non_null(out);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(out, "n")->valueint, 7);
	cJSON_Delete(out);
}

/* ---------------------------------------------------------------- callers */

/* The replicator and a dead peer: the push fails and is counted, the batch
 * is dropped (sync repairs it), and the next write reaches the peer once
 * it answers again. */
static void test_replicate_peer_down(void **state)
{
	struct member peer = { .id = "peer-1", .address = "127.0.0.1:9", .status = MEMBER_ALIVE };
	char err[256];

	(void)state;
	peer.incarnation = peer.joined_ts = peer.last_seen = version_now_ms();
	assert_int_equal(members_join(fx_node.members, &peer, err, sizeof(err)), 0);
	assert_non_null(fx_node.replicate = replicate_new(&fx_node));
	assert_int_equal(replicate_start(&fx_node), 0);

	atomic_store(&fake_answer, ANSWER_REFUSED);
	struct kvs_record r = value_rec("\"first\"");
	must(store_apply(fx_node.store, "rep/1", 5, &r, STORE_LOCAL, NULL, NULL));
	wait_count(&fx_node.metrics.pushes_failed, 1);
	assert_true(atomic_load(&fx_node.metrics.peer_requests_failed) >= 1);
	assert_int_equal(atomic_load(&fx_node.metrics.pushes_sent), 0);
	expect_seen("POST", "http://127.0.0.1:9/members/push", "rep/1");
	assert_int_equal(replicate_pending(fx_node.replicate), 0);

	atomic_store(&fake_answer, ANSWER_OK);
	atomic_store(&fake_body, "{}");
	r = value_rec("\"second\"");
	must(store_apply(fx_node.store, "rep/2", 5, &r, STORE_LOCAL, NULL, NULL));
	wait_count(&fx_node.metrics.pushes_sent, 1);
	expect_seen("POST", "http://127.0.0.1:9/members/push", "rep/2");
	expect_get(fx_node.store, "rep/1", "\"first\"", NULL); /* the write itself stood */

	node_request_stop(&fx_node);
	replicate_wake(fx_node.replicate);
	node_join_threads(&fx_node);
	replicate_free(fx_node.replicate);
	fx_node.replicate = NULL;
}

/* The join retries a seed that does not answer, standalone meanwhile, and
 * is done once the seed answers. */
static void test_join_retries(void **state)
{
	(void)state;
	snprintf(fx_node.cfg.seed_nodes[0], sizeof(fx_node.cfg.seed_nodes[0]), "127.0.0.1:9");
	fx_node.cfg.seed_count = 1;
	atomic_store(&fx_node.join_state, JOIN_PENDING);
	atomic_store(&fake_answer, ANSWER_OK);
	atomic_store(&fake_fail_first, 1);
	atomic_store(&fake_body, "{\"members\":[]}");

	assert_int_equal(gossip_start(&fx_node), 0);
	bool standalone = false;
	for (int ms = 0; atomic_load(&fx_node.join_state) != JOIN_DONE && ms < 5000; ms += 5) {
		int js = atomic_load(&fx_node.join_state);
		assert_true(js == JOIN_PENDING || js == JOIN_STANDALONE);
		standalone |= js == JOIN_STANDALONE;
		usleep(5000);
	}
	assert_int_equal(atomic_load(&fx_node.join_state), JOIN_DONE);
	assert_true(standalone);
	assert_true(atomic_load(&fake_calls) >= 2);
	assert_true(atomic_load(&fx_node.metrics.peer_requests_failed) >= 1);
	node_request_stop(&fx_node);
	node_join_threads(&fx_node);
}

/* ---------------------------------------------------------------- fixture */

static int node_setup(void **state)
{
	(void)state;
	atomic_store(&fake_answer, ANSWER_OK);
	atomic_store(&fake_fail_first, 0);
	atomic_store(&fake_calls, 0);
	atomic_store(&fake_body, "{}");
	fake_io = peer_io_real;
	fake_io.perform = fake_perform;
	peer_io = &fake_io; /* before any thread of the node starts */
	node_fixture_start(false);
	return 0;
}

static int node_teardown(void **state)
{
	(void)state;
	node_fixture_stop();
	peer_io = &peer_io_real;
	return 0;
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, node_setup, node_teardown)
	const struct CMUnitTest tests[] = {
		T(test_no_answer),
		T(test_error_status),
		T(test_json_reply),
		T(test_replicate_peer_down),
		T(test_join_retries),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
