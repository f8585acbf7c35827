/*
 * test_api_fault.c - what a client sees when the store fails: the real
 * HTTP server of an in-process node (node_fixture.h) on a free loopback
 * port, its RocksDB failing on demand through the store's seam
 * (fault_store.h), real requests sent with libcurl.
 *
 * Each storage failure must be answered 500 with a JSON body
 * {"error": "..."} (never a crash, a hang, a 200 with a cut listing, or a
 * 404 for a key that may exist), and must leave the data as it was: after
 * a failed PUT or DELETE the old value is served, and once RocksDB works
 * again the same requests succeed.  A failed listing gives its share of
 * the reply budget back.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "buf.h"
#include "fault_store.h"
#include "node_fixture.h"

/* ----------------------------------------------------------------- client */

struct reply {
	long status;
	char ctype[64];
	struct buf body; /* released by reply_release */
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	buf_add(arg, p, size * n);
	return size * n;
}

/* Sends method path (body: NULL for none) to the node and waits for the
 * whole reply. */
static void call(const char *method, const char *path, const char *body, struct reply *r)
{
	CURL *h = curl_easy_init();
	char url[512];
	char *ct = NULL;

	assert_non_null(h);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx_node.cfg.port, path);
	buf_init(&r->body, 1 << 20);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK)
		fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
	curl_easy_cleanup(h);
}

static void reply_release(struct reply *r)
{
	buf_release(&r->body);
}

/* Expects status and, for the body, exactly value (NULL: any). */
static void expect_reply(const char *method, const char *path, const char *body, long status,
			 const char *value)
{
	struct reply r;

	call(method, path, body, &r);
	if (r.status != status)
		fail_msg("%s %s: status %ld, want %ld (%s)", method, path, r.status, status,
			 r.body.len ? r.body.data : "");
	if (value) {
		assert_int_equal(r.body.len, strlen(value));
		assert_memory_equal(r.body.data, value, r.body.len);
	}
	reply_release(&r);
}

/* Expects a 500 whose body is a JSON object {"error": "<non-empty>"}
 * containing want. */
static void expect_json_500(const char *method, const char *path, const char *body,
			    const char *want)
{
	struct reply r;

	call(method, path, body, &r);
	if (r.status != 500)
		fail_msg("%s %s: status %ld, want 500", method, path, r.status);
	assert_string_equal(r.ctype, "application/json");
	assert_true(r.body.len > 0);
	cJSON *root = cJSON_ParseWithLength(r.body.data, r.body.len);
	if (!root)
		fail_msg("%s %s: the 500 body is not JSON: %s", method, path, r.body.data);
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
	assert_true(cJSON_IsObject(root));
	assert_true(cJSON_IsString(err));
	if (!strstr(err->valuestring, want))
		fail_msg("%s %s: error \"%s\" does not say \"%s\"", method, path, err->valuestring,
			 want);
	cJSON_Delete(root);
	reply_release(&r);
}

/* ----------------------------------------------------------------- tests */

/* PUT while RocksDB refuses the write: 500 JSON; the old value stays. */
static void test_put_write_fails(void **state)
{
	(void)state;
	expect_reply("PUT", "/kv/put/a", "{\"v\":1}", 200, NULL);
	atomic_store(&fault_write, true);
	expect_json_500("PUT", "/kv/put/a", "{\"v\":2}", "storage failure");
	expect_json_500("PUT", "/kv/put/new", "[]", "storage failure");
	/* reads still work while writes fail, and show the old state */
	expect_reply("GET", "/kv/put/a", NULL, 200, "{\"v\":1}");
	expect_reply("GET", "/kv/put/new", NULL, 404, NULL);
	atomic_store(&fault_write, false);
	expect_reply("GET", "/kv/put/a", NULL, 200, "{\"v\":1}");
	expect_reply("PUT", "/kv/put/a", "{\"v\":3}", 200, NULL);
	expect_reply("GET", "/kv/put/a", NULL, 200, "{\"v\":3}");
}

/* DELETE while RocksDB refuses the write: 500 JSON; the value stays. */
static void test_delete_write_fails(void **state)
{
	(void)state;
	expect_reply("PUT", "/kv/del/a", "\"here\"", 200, NULL);
	atomic_store(&fault_write, true);
	expect_json_500("DELETE", "/kv/del/a", NULL, "storage failure");
	atomic_store(&fault_write, false);
	expect_reply("GET", "/kv/del/a", NULL, 200, "\"here\"");
	expect_reply("DELETE", "/kv/del/a", NULL, 204, NULL);
	expect_reply("GET", "/kv/del/a", NULL, 404, NULL);
}

/* A read that fails is a 500, not a 404: the key may well exist. */
static void test_get_read_fails(void **state)
{
	(void)state;
	atomic_store(&fault_get, true);
	expect_json_500("GET", "/kv/get/uncached", NULL, "storage failure");
	atomic_store(&fault_get, false);
	expect_reply("GET", "/kv/get/uncached", NULL, 404, NULL);
}

/* A listing whose walk fails part-way: 500 JSON, never a short page
 * presented as whole; the reply budget it took is given back. */
static void test_listing_walk_fails(void **state)
{
	char path[64];

	(void)state;
	for (int i = 0; i < 6; i++) {
		snprintf(path, sizeof(path), "/kv/list/k%d", i);
		expect_reply("PUT", path, "true", 200, NULL);
	}
	atomic_store(&fault_walk_after, 3);
	expect_json_500("GET", "/kv/list/", NULL, "storage failure listing");
	/* the error where the walk looks past the page for "next" */
	atomic_store(&fault_walk_after, 2);
	expect_json_500("GET", "/kv/list/?values=true&limit=2", NULL, "storage failure");
	atomic_store(&fault_walk_after, 0);
	expect_json_500("GET", "/kv/list/", NULL, "storage failure");
	atomic_store(&fault_walk_after, -1);
	/* the worker gives the budget back just after sending the reply */
	for (int waited = 0; atomic_load(&fx_node.reply_bytes) != 0 && waited < 2000; waited++)
		usleep(1000);
	assert_int_equal(atomic_load(&fx_node.reply_bytes), 0);

	struct reply r;
	call("GET", "/kv/list/", NULL, &r);
	assert_int_equal(r.status, 200);
	cJSON *root = cJSON_ParseWithLength(r.body.data, r.body.len);
	assert_non_null(root);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "keys")), 6);
	cJSON_Delete(root);
	reply_release(&r);
}

/* The peer pages of the time index (store_scan_time) fail the same way. */
static void test_peer_pages_walk_fail(void **state)
{
	(void)state;
	expect_reply("PUT", "/kv/peer/a", "1", 200, NULL);
	atomic_store(&fault_walk_after, 0);
	expect_json_500("GET", "/members/recent?limit=10", NULL, "storage failure");
	expect_json_500("GET", "/members/since?ts=1&limit=10", NULL, "storage failure");
	atomic_store(&fault_walk_after, -1);
	expect_reply("GET", "/members/recent?limit=10", NULL, 200, NULL);
}

static int reset_faults(void **state)
{
	(void)state;
	fault_store_reset();
	return 0;
}

static int start_node(void **state)
{
	(void)state;
	fault_store_install(); /* before the HTTP threads start (store_io.h) */
	node_fixture_start(true);
	return 0;
}

static int stop_node(void **state)
{
	(void)state;
	node_fixture_stop();
	return 0;
}

int main(void)
{
#define T(fn) cmocka_unit_test_teardown(fn, reset_faults)
	const struct CMUnitTest tests[] = {
		T(test_put_write_fails),
		T(test_delete_write_fails),
		T(test_get_read_fails),
		T(test_listing_walk_fails),
		T(test_peer_pages_walk_fail),
	};
#undef T
	return cmocka_run_group_tests(tests, start_node, stop_node);
}
