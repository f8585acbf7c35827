/*
 * test_snapshot.c - the snapshot format (snapshot.c), the store's
 * snapshot walk (store_snapshot) and the restore (restore.c).
 *
 * Format: a round trip of values, a tombstone, an expiry, an origin and a
 * record larger than the writer's chunk (several sink calls); the sink's
 * failure sticks; the reader refuses the file cut at EVERY length short of
 * the whole, and the file with ANY one byte flipped, never reporting a
 * verified end for either.
 * Store: a snapshot of a store restores into a new directory with the same
 * records, versions and digests; a failed restore leaves no directory;
 * restore refuses a directory that is not empty.
 */
#define _XOPEN_SOURCE 700
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <unistd.h>

#include "restore.h"
#include "snapshot.h"
#include "store_fixture.h"

/* ------------------------------------------------------------ memory sink */

struct mem {
	uint8_t *data;
	size_t len;
	int calls;
	int fail_at; /* the call that fails (0: none) */
};

static int mem_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct mem *m = ctx;

	if (++m->calls == m->fail_at)
		return KVS_EIO;
	assert_true(len <= SNAPSHOT_CHUNK);
	m->data = realloc(m->data, m->len + len);
	assert_non_null(m->data);
	memcpy(m->data + m->len, data, len);
	m->len += len;
	return 0;
}

static struct kvs_record rec_of(int64_t ts, uint8_t u, const char *value, bool tomb,
				int64_t expires, const char *origin)
{
	struct kvs_record r = { 0 };

	memset(&r, 0, sizeof(r));
	r.v.ts = ts;
	memset(r.v.id, u, 16);
	r.tombstone = tomb;
	r.value = tomb ? NULL : value;
	r.value_len = tomb ? 0 : strlen(value);
	r.expires = expires;
	r.origin = origin;
	r.origin_len = origin ? strlen(origin) : 0;
	return r;
}

static char *big_value(size_t n)
{
	char *v = malloc(n + 1);

	assert_non_null(v);
	memset(v, 'x', n);
	v[0] = '"';
	v[n - 1] = '"';
	v[n] = '\0';
	return v;
}

/* Writes the sample snapshot into m. */
static void write_sample(struct mem *m, char *big)
{
	struct snapshot_writer w;
	struct kvs_record recs[4] = {
		rec_of(1000, 1, "{\"a\":1}", false, 0, "n1"),
		rec_of(1001, 2, NULL, true, 0, "n2"),
		rec_of(1002, 3, big, false, 0, NULL),
		rec_of(1003, 4, "\"ttl\"", false, 99999, "n1"),
	};
	const char *keys[4] = { "a", "a/b", "big", "t" };

	assert_int_equal(snapshot_writer_init(&w, "node-1", 1234, mem_sink, m), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(snapshot_writer_add(&w, keys[i], strlen(keys[i]), &recs[i]), 0);
	assert_int_equal(snapshot_writer_finish(&w), 0);
	assert_int_equal(w.count, 4);
	assert_int_equal(w.bytes, m->len);
	snapshot_writer_release(&w);
}

/* Reads data fully; returns the last reader result (0: verified end). */
static int read_all(const uint8_t *data, size_t len, uint64_t *count, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)data, len ? len : 1, "rb");
	struct snapshot_reader r;
	const char *key;
	size_t klen;
	struct kvs_record rec;
	int rc;

	assert_non_null(f);
	if (len == 0)
		fgetc(f); /* fmemopen wants a size of 1 at least: an empty stream */
	rc = snapshot_reader_init(&r, f, 1 << 20);
	if (rc == 0)
		while ((rc = snapshot_reader_next(&r, &key, &klen, &rec)) == 1)
			;
	if (count)
		*count = r.count;
	if (err)
		snprintf(err, errlen, "%s", r.err);
	snapshot_reader_release(&r);
	fclose(f);
	return rc;
}

/* ------------------------------------------------------------ format */

static void test_round_trip(void **state)
{
	(void)state;
	struct mem m = { 0 };
	char *big = big_value(SNAPSHOT_CHUNK * 2 + 17);

	write_sample(&m, big);
	assert_true(m.calls >= 3); /* the big record spans chunks */
	assert_memory_equal(m.data, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_LEN);

	FILE *f = fmemopen(m.data, m.len, "rb");
	struct snapshot_reader r;
	const char *key;
	size_t klen;
	struct kvs_record rec;

	assert_int_equal(snapshot_reader_init(&r, f, 1 << 20), 0);
	assert_string_equal(r.node_id, "node-1");
	assert_int_equal(r.taken_ms, 1234);
	assert_int_equal(r.version, SNAPSHOT_VERSION);

	assert_int_equal(snapshot_reader_next(&r, &key, &klen, &rec), 1);
	assert_string_equal(key, "a");
	assert_int_equal(rec.v.ts, 1000);
	assert_int_equal(rec.value_len, 7);
	assert_memory_equal(rec.value, "{\"a\":1}", 7);
	assert_int_equal(rec.origin_len, 2);

	assert_int_equal(snapshot_reader_next(&r, &key, &klen, &rec), 1);
	assert_string_equal(key, "a/b");
	assert_true(rec.tombstone);
	assert_int_equal(rec.v.id[0], 2);

	assert_int_equal(snapshot_reader_next(&r, &key, &klen, &rec), 1);
	assert_string_equal(key, "big");
	assert_int_equal(rec.value_len, strlen(big));
	assert_memory_equal(rec.value, big, rec.value_len);
	assert_int_equal(rec.origin_len, 0);

	assert_int_equal(snapshot_reader_next(&r, &key, &klen, &rec), 1);
	assert_string_equal(key, "t");
	assert_int_equal(rec.expires, 99999);

	assert_int_equal(snapshot_reader_next(&r, &key, &klen, &rec), 0);
	assert_int_equal(r.count, 4);
	snapshot_reader_release(&r);
	fclose(f);
	free(m.data);
	free(big);
}

static void test_sink_failure_sticks(void **state)
{
	(void)state;
	struct mem m = { .fail_at = 2 };
	struct snapshot_writer w;
	struct kvs_record r = rec_of(5, 5, "1", false, 0, NULL);
	char *big = big_value(SNAPSHOT_CHUNK + 1);
	struct kvs_record b = rec_of(6, 6, big, false, 0, NULL);

	assert_int_equal(snapshot_writer_init(&w, "n", 1, mem_sink, &m), 0);
	assert_int_equal(snapshot_writer_add(&w, "a", 1, &b), 0);      /* call 1 ok */
	assert_int_equal(snapshot_writer_add(&w, "b", 1, &b), KVS_EIO); /* call 2 fails */
	assert_int_equal(snapshot_writer_add(&w, "c", 1, &r), KVS_EIO);
	assert_int_equal(snapshot_writer_finish(&w), KVS_EIO);
	assert_int_equal(w.count, 1);
	snapshot_writer_release(&w);
	assert_int_equal(snapshot_writer_init(&w, "", 1, mem_sink, &m), KVS_EINVAL);
	free(m.data);
	free(big);
}

static void test_every_truncation_is_refused(void **state)
{
	(void)state;
	struct mem m = { 0 };
	char *big = big_value(3000);
	char err[SNAPSHOT_ERR_MAX];

	write_sample(&m, big);
	assert_int_equal(read_all(m.data, m.len, NULL, NULL, 0), 0);
	for (size_t len = 0; len < m.len; len++) {
		int rc = read_all(m.data, len, NULL, err, sizeof(err));

		if (rc != KVS_EINVAL || !strstr(err, "truncated")) {
			print_error("cut at %zu: rc %d, \"%s\"\n", len, rc, err);
			fail();
		}
	}
	free(m.data);
	free(big);
}

static void test_every_flipped_byte_is_refused(void **state)
{
	(void)state;
	struct mem m = { 0 };
	char *big = big_value(3000);

	write_sample(&m, big);
	for (size_t i = 0; i < m.len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			m.data[i] ^= (uint8_t)(1u << bit);
			int rc = read_all(m.data, m.len, NULL, NULL, 0);
			m.data[i] ^= (uint8_t)(1u << bit);
			if (rc >= 0) {
				print_error("byte %zu bit %d flipped: rc %d\n", i, bit, rc);
				fail();
			}
		}
	}
	free(m.data);
	free(big);
}

/* ------------------------------------------------------------ store */

/* store_snapshot's callback: into a writer. */
static int to_writer(void *ctx, const char *key, size_t klen, const struct kvs_record *rec)
{
	return snapshot_writer_add(ctx, key, klen, rec);
}

/* Snapshot of s into a file under dir; returns its path (static). */
static const char *snapshot_file(struct store *s, const char *dir)
{
	static char path[128];
	struct mem m = { 0 };
	struct snapshot_writer w;

	assert_int_equal(snapshot_writer_init(&w, "src", 777, mem_sink, &m), 0);
	assert_int_equal(store_snapshot(s, to_writer, &w), 0);
	assert_int_equal(snapshot_writer_finish(&w), 0);
	snapshot_writer_release(&w);
	snprintf(path, sizeof(path), "%s.snap", dir);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(m.data, 1, m.len, f), m.len);
	fclose(f);
	free(m.data);
	return path;
}

static void test_store_snapshot_restores(void **state)
{
	struct kvs_version va, vb, vt;
	char target[128], err[1024];
	struct restore_result res;
	uint64_t d1[STORE_BUCKETS], d2[STORE_BUCKETS];

	must(put(S, "a", "1", &va));
	must(put(S, "b", "2", &vb));
	must(del(S, "b", &vb));
	struct kvs_record t = at(version_now_ms() + 5, 9, "\"t\"");
	t.expires = version_now_ms() + 3600 * 1000;
	must(remote(S, "t", t, NULL));
	vt = t.v;
	const char *file = snapshot_file(S, ((struct fx *)*state)->dir);

	snprintf(target, sizeof(target), "%s.restored", ((struct fx *)*state)->dir);
	assert_int_equal(store_restore(file, target, 1 << 20, &res, err, sizeof(err)), 0);
	assert_int_equal(res.records, 3);
	assert_int_equal(res.tombstones, 1);
	assert_string_equal(res.node_id, "src");
	assert_int_equal(res.taken_ms, 777);

	struct store *r = open_at(target);
	expect_get(r, "a", "1", &va);
	expect_get(r, "b", NULL, &vb);
	expect_get(r, "t", "\"t\"", &vt);
	store_digests(S, d1);
	store_digests(r, d2);
	assert_memory_equal(d1, d2, sizeof(d1));
	uint8_t alive[8];
	size_t alen = 0;
	assert_int_equal(store_meta_get(r, "last_alive", alive, sizeof(alive), &alen), 0);
	assert_int_equal(record_get_be64(alive), 777);
	store_close(r);

	/* a second restore into the now full dir is refused, the dir kept */
	assert_int_equal(store_restore(file, target, 1 << 20, &res, err, sizeof(err)), KVS_EINVAL);
	assert_non_null(strstr(err, "not empty"));
	rm_tree(target);

	/* a damaged file leaves neither target nor target.restoring */
	FILE *f = fopen(file, "r+b");
	assert_non_null(f);
	fseek(f, -1, SEEK_END);
	fputc('!', f);
	fclose(f);
	assert_int_equal(store_restore(file, target, 1 << 20, &res, err, sizeof(err)), KVS_EINVAL);
	assert_non_null(strstr(err, "checksum"));
	struct stat st;
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.restoring", target);
	assert_int_not_equal(stat(target, &st), 0);
	assert_int_not_equal(stat(tmp, &st), 0);
	unlink(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_sink_failure_sticks),
		cmocka_unit_test(test_every_truncation_is_refused),
		cmocka_unit_test(test_every_flipped_byte_is_refused),
		cmocka_unit_test_setup_teardown(test_store_snapshot_restores, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
