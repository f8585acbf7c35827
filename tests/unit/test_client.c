/*
 * test_client.c - libkvs's URL building and reply parsing
 * (src/client/client.c): key paths and percent-encoding, endpoint lists,
 * ETags, status codes to errors, capped buffers, and an endpoint list
 * where nothing listens (every endpoint tried, KVS_EUNREACHABLE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_int.h"

static void check_path(const char *base, const char *key, bool prefix, const char *want)
{
	struct kc_buf b = { 0 };

	assert_int_equal(kc_key_path(&b, base, key, prefix), 0);
	assert_string_equal(b.data, want);
	kc_buf_release(&b);
}

static void test_key_paths(void **state)
{
	struct kc_buf b = { 0 };

	(void)state;
	check_path("/kv/", "config/app", false, "/kv/config/app");
	check_path("/kv/", "/config/app", false, "/kv/config/app");
	check_path("/kv/", "a b/ü?&#%", false, "/kv/a%20b/%C3%BC%3F%26%23%25");
	check_path("/kv/", "users", true, "/kv/users/");
	check_path("/kv/", "users/", true, "/kv/users/");
	check_path("/kv/", "", true, "/kv/");
	check_path("/kv/", NULL, true, "/kv/");
	check_path("/watch/", "cfg/", true, "/watch/cfg/");
	assert_int_equal(kc_key_path(&b, "/kv/", "", false), KVS_EINVAL);
	assert_int_equal(kc_key_path(&b, "/kv/", "///", false), KVS_EINVAL);
	kc_buf_release(&b);
}

static void test_encode_query(void **state)
{
	struct kc_buf b = { 0 };

	(void)state;
	assert_int_equal(kc_buf_encode(&b, "a/b=c&d", 7, false), 0);
	assert_string_equal(b.data, "a%2Fb%3Dc%26d");
	kc_buf_release(&b);
}

static void check_ep(const char *in, bool tls, const char *want)
{
	char out[300];

	assert_int_equal(kc_endpoint_norm(in, strlen(in), tls, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_endpoints(void **state)
{
	char out[300];

	(void)state;
	check_ep("127.0.0.1:8081", false, "http://127.0.0.1:8081");
	check_ep(" 127.0.0.1:8081/ ", false, "http://127.0.0.1:8081");
	check_ep("node1:8081", true, "https://node1:8081");
	check_ep("HTTPS://node1:8081", false, "https://node1:8081");
	check_ep("http://[::1]:8080", true, "http://[::1]:8080");
	assert_int_equal(kc_endpoint_norm("", 0, false, out, sizeof(out)), KVS_EINVAL);
	assert_int_equal(kc_endpoint_norm("http://", 7, false, out, sizeof(out)), KVS_EINVAL);
	assert_int_equal(kc_endpoint_norm("h:1/path", 8, false, out, sizeof(out)), KVS_EINVAL);
	assert_int_equal(kc_endpoint_norm("h 1", 3, false, out, sizeof(out)), KVS_EINVAL);
	assert_int_equal(kc_endpoint_norm("ftp://h:1", 9, false, out, sizeof(out)), KVS_EINVAL);
}

static void test_client_new(void **state)
{
	struct kvs_client_options o = { .endpoints = "127.0.0.1:1, 127.0.0.1:2" };
	kvs_client *c = NULL;

	(void)state;
	assert_int_equal(kvs_client_new(&o, &c), 0);
	assert_int_equal(kvs_client_endpoint_count(c), 2);
	assert_string_equal(kvs_client_endpoint_at(c, 1), "http://127.0.0.1:2");
	assert_string_equal(kvs_client_endpoint(c), "http://127.0.0.1:1");
	assert_null(kvs_client_endpoint_at(c, 2));
	kvs_client_free(c);
	c = NULL;
	o.endpoints = "";
	assert_int_equal(kvs_client_new(&o, &c), KVS_EINVAL);
	o.endpoints = "a:1,,b:2";
	assert_int_equal(kvs_client_new(&o, &c), KVS_EINVAL);
	o.endpoints = "a:1";
	o.token = "abc\r\nX-Evil: 1";
	assert_int_equal(kvs_client_new(&o, &c), KVS_EINVAL);
	assert_null(c);
	assert_int_equal(kvs_client_new(NULL, &c), KVS_EINVAL);
}

static void test_etag(void **state)
{
	char uuid[37];

	(void)state;
	kc_parse_etag(" \"0d6f1c2e-1111-4222-8333-444455556666\"\r\n", uuid);
	assert_string_equal(uuid, "0d6f1c2e-1111-4222-8333-444455556666");
	kc_parse_etag("\"0123456789012345678901234567890123456789\"", uuid);
	assert_int_equal(strlen(uuid), 36);
}

static void test_status_map(void **state)
{
	struct kvs_client_options o = { .endpoints = "127.0.0.1:1" };
	static const struct {
		long status;
		int rc;
	} cases[] = { { 200, 0 }, { 204, 0 }, { 404, KVS_ENOTFOUND }, { 412, KVS_EPRECOND },
		      { 401, KVS_EAUTH }, { 403, KVS_EFORBIDDEN }, { 400, KVS_EBADREQ },
		      { 413, KVS_EBADREQ }, { 410, KVS_ECOMPACTED }, { 503, KVS_EUNAVAILABLE },
		      { 500, KVS_ESERVER }, { 302, KVS_ESERVER } };
	struct kc_reply rep = { 0 };
	kvs_client *c;

	(void)state;
	assert_int_equal(kvs_client_new(&o, &c), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rep.status = cases[i].status;
		assert_int_equal(kc_status(c, &rep), cases[i].rc);
	}
	kc_buf_add(&rep.body, "{\"error\":\"precondition failed\",\"uuid\":null}", 42);
	rep.status = 412;
	assert_int_equal(kc_status(c, &rep), KVS_EPRECOND);
	assert_string_equal(kvs_client_errmsg(c), "HTTP 412: precondition failed");
	kc_buf_release(&rep.body);
	kvs_client_free(c);
}

static void test_buf_cap(void **state)
{
	struct kc_buf b = { .limit = 10 };

	(void)state;
	assert_int_equal(kc_buf_add(&b, "0123456789", 10), 0);
	assert_int_equal(kc_buf_add(&b, "x", 1), KVS_EPROTO);
	assert_true(b.too_big);
	assert_int_equal(b.len, 10);
	kc_buf_release(&b);
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(kvs_client_strerror(KVS_ENOTFOUND), "key not found");
	assert_string_equal(kvs_client_strerror(KVS_EUNREACHABLE), "no endpoint reachable");
	assert_string_equal(kvs_client_strerror(-999), "unknown error");
	for (int i = 0; i >= KVS_ECANCELED; i--)
		assert_string_not_equal(kvs_client_strerror(i), "unknown error");
}

/* Ports 1 and 2 of loopback: nothing listens (root-only ports, never a kvs). */
static void test_unreachable(void **state)
{
	struct kvs_client_options o = { .endpoints = "127.0.0.1:1,127.0.0.1:2" };
	struct kvs_value v;
	kvs_client *c;

	(void)state;
	assert_int_equal(kvs_client_new(&o, &c), 0);
	assert_int_equal(kvs_get(c, "a", &v), KVS_EUNREACHABLE);
	assert_non_null(strstr(kvs_client_errmsg(c), "127.0.0.1:2")); /* tried the second too */
	assert_int_equal(kvs_put(c, "a", "1", 1, NULL, NULL), KVS_EUNREACHABLE);
	assert_int_equal(kvs_get(c, "", &v), KVS_EINVAL);
	kvs_client_free(c);
}

/* The watch's memory of delivered events: repeats are found, distinct
 * events are not confused, old entries are forgotten only past the margin. */
static void test_seen(void **state)
{
	struct kc_seen s = { 0 };
	uint64_t a = kc_event_hash("k", "u1"), b = kc_event_hash("k", "u2");

	(void)state;
	assert_true(a != b);
	assert_true(kc_event_hash("ab", "c") != kc_event_hash("a", "bc"));
	assert_false(kc_seen_has(&s, a));
	assert_int_equal(kc_seen_add(&s, a, 1000, 5000), 0);
	assert_true(kc_seen_has(&s, a));
	assert_false(kc_seen_has(&s, b));
	/* thousands of later events: a (ts 1000) is pruned once newest passes 11000,
	 * while events within 2 x margin of the newest stay */
	for (int i = 0; i < 3000; i++) {
		char uuid[16];

		snprintf(uuid, sizeof(uuid), "x%d", i);
		assert_int_equal(kc_seen_add(&s, kc_event_hash("k", uuid), 20000 + i, 5000), 0);
	}
	assert_false(kc_seen_has(&s, a));
	assert_true(kc_seen_has(&s, kc_event_hash("k", "x2999")));
	assert_true(kc_seen_has(&s, kc_event_hash("k", "x0")));   /* 20000 >= 22999 - 10000 */
	assert_int_equal(s.newest, 22999);
	free(s.v);
}

/* Values found in a reply's text exactly as the node sent them. */
static void test_scan_array(void **state)
{
	static const char text[] =
		"{\"prefix\":\"a/\",\"next\":null,\"items\": [ {\"key\":\"a/1\",\"value\":{ \"x\" : 1.50,"
		" \"s\":\"}]\\\"\"},\"uuid\":\"u\"} , {\"key\":\"a/2\",\"uuid\":\"v\"},"
		"{\"value\":[1 ,2],\"key\":\"a/3\"} ]}";
	static const char empty[] = "{\"events\":[],\"index\":4}";
	struct kc_span sp[4];

	(void)state;
	assert_int_equal(kc_scan_array(text, strlen(text), "items", sp, 4), 3);
	assert_int_equal(sp[0].val_len, strlen("{ \"x\" : 1.50, \"s\":\"}]\\\"\"}"));
	assert_memory_equal(text + sp[0].val_off, "{ \"x\" : 1.50, \"s\":\"}]\\\"\"}", sp[0].val_len);
	assert_int_equal(sp[1].val_len, 0);                       /* no value member */
	assert_memory_equal(text + sp[1].off, "{\"key\":\"a/2\",\"uuid\":\"v\"}", sp[1].len);
	assert_memory_equal(text + sp[2].val_off, "[1 ,2]", sp[2].val_len);
	assert_int_equal(kc_scan_array(text, strlen(text), "items", sp, 2), -1);   /* over max */
	assert_int_equal(kc_scan_array(text, strlen(text), "keys", sp, 4), -1);    /* absent */
	assert_int_equal(kc_scan_array(text, strlen(text), "prefix", sp, 4), -1);  /* no array */
	assert_int_equal(kc_scan_array(empty, strlen(empty), "events", sp, 4), 0);
	assert_int_equal(kc_scan_array("[1]", 3, "items", sp, 4), -1);
	assert_int_equal(kc_scan_array(text, 40, "items", sp, 4), -1);             /* cut short */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_paths),  cmocka_unit_test(test_encode_query),
		cmocka_unit_test(test_endpoints),  cmocka_unit_test(test_client_new),
		cmocka_unit_test(test_etag),       cmocka_unit_test(test_status_map),
		cmocka_unit_test(test_buf_cap),    cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_unreachable), cmocka_unit_test(test_seen),
		cmocka_unit_test(test_scan_array),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
