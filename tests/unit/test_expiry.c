/*
 * test_expiry.c - expiry in the store (expiry.c and the write door) and the
 * clock guard.
 *
 * An expired value is absent for listings, conditions and local deletes,
 * though store_get still returns it (the API answers 404); the reaper turns
 * it into the tombstone store_expire_version() derives, as an expire change,
 * and leaves a value written again before its expiry alone; a remote copy
 * of that tombstone is the same version (stale, no conflict); the expiry
 * index survives a reopen; and a peer's record stamped over the clock
 * limit ahead is refused with KVS_EAHEAD while one within it is applied.
 *
 * Waits on the reaper poll with a deadline, never a bare sleep.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "store_fixture.h"

#define DEADLINE_MS 5000

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static int put_expiring(struct store *s, const char *key, const char *value, int64_t expires,
			struct kvs_version *v)
{
	struct kvs_record r = value_rec(value);
	int rc;

	r.expires = expires;
	rc = store_apply(s, key, strlen(key), &r, STORE_LOCAL, NULL, NULL);
	if (v)
		*v = r.v;
	return rc;
}

static bool is_tombstone(struct store *s, const char *key, struct kvs_version *v)
{
	struct store_value sv;
	bool t = false;

	if (store_get(s, key, strlen(key), &sv) == 0) {
		t = sv.rec.tombstone;
		if (v)
			*v = sv.rec.v;
		store_value_release(&sv);
	}
	return t;
}

static bool wait_tombstone(struct store *s, const char *key)
{
	for (int waited = 0; waited < DEADLINE_MS; waited += 20) {
		if (is_tombstone(s, key, NULL))
			return true;
		sleep_ms(20);
	}
	return false;
}

static int count_item(void *ctx, const char *key, size_t klen, const struct kvs_record *rec)
{
	(void)key, (void)klen, (void)rec;
	(*(int *)ctx)++;
	return 0;
}

static void test_expired_is_absent(void **state)
{
	int64_t now = version_now_ms();
	struct kvs_version v;
	bool more;
	int n = 0;

	must(put_expiring(S, "e/past", "1", now - 1, &v));
	must(put_expiring(S, "e/later", "2", now + 3600000, NULL));
	must(store_list(S, "e/", 2, NULL, 0, 100, count_item, &n, &more));
	assert_int_equal(n, 1);
	/* store_get still hands it out: the API layer answers 404 */
	expect_get(S, "e/past", "1", &v);
	/* a local delete finds nothing; If-None-Match holds */
	assert_int_equal(del(S, "e/past", NULL), KVS_ENOTFOUND);
	struct kvs_record r = value_rec("3");
	struct store_op op = { .path = "e/past", .len = 6, .rec = r, .cond = STORE_COND_ABSENT };
	must(store_apply_batch(S, &op, 1, STORE_LOCAL));
	assert_int_equal(op.rc, 0);
}

static void test_reaper_writes_the_derived_tombstone(void **state)
{
	struct kvs_version v, t, want;
	struct kvs_record expired;
	int64_t now = version_now_ms();

	store_changes_enable(S, 1000);
	must(put_expiring(S, "r/a", "1", now + 300, &v));
	must(put_expiring(S, "r/b", "2", now + 300, NULL));
	must(put(S, "r/b", "permanent", NULL)); /* written again before its expiry */
	uint64_t before = store_index(S);
	must(store_expiry_start(S));
	assert_true(wait_tombstone(S, "r/a"));
	assert_true(is_tombstone(S, "r/a", &t));
	memset(&expired, 0, sizeof(expired));
	expired.v = v;
	expired.expires = now + 300;
	store_expire_version(&expired, &want);
	assert_int_equal(t.ts, now + 300);
	assert_memory_equal(t.id, want.id, 16);
	assert_memory_not_equal(t.id, v.id, 16);
	assert_int_equal(store_expiry_reaped(S), 1);
	expect_get(S, "r/b", "permanent", NULL);
	/* one change, an expire */
	struct store_value sv;
	must(store_get(S, "r/a", 3, &sv));
	store_value_release(&sv);
	assert_int_equal(store_index(S), before + 1);
	/* a peer's identical tombstone is stale: no conflict */
	struct kvs_record peer = { 0 };
	peer.tombstone = true;
	peer.v = want;
	assert_int_equal(remote(S, "r/a", peer, NULL), KVS_ESTALE);
}

static void test_index_survives_reopen(void **state)
{
	struct fx *f = *state;
	int64_t now = version_now_ms();

	must(put_expiring(f->s, "o/k", "1", now + 200, NULL));
	store_close(f->s);
	f->s = open_at(f->dir);
	must(store_expiry_start(f->s));
	assert_true(wait_tombstone(f->s, "o/k"));
}

static void test_clock_limit(void **state)
{
	int64_t now = version_now_ms();

	store_set_clock_limit(S, 500);
	assert_int_equal(remote(S, "c/ahead", at(now + 60000, 1, "1"), NULL), KVS_EAHEAD);
	assert_false(is_tombstone(S, "c/ahead", NULL));
	must(remote(S, "c/near", at(now + 100, 2, "1"), NULL));
	/* once the clock has passed it, the same record applies */
	store_set_clock_limit(S, 120000);
	must(remote(S, "c/ahead", at(now + 60000, 1, "1"), NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expired_is_absent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reaper_writes_the_derived_tombstone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_index_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_limit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, NULL);
}
