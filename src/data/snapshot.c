/*
 * snapshot.c - the snapshot file format: a streaming writer and a checking
 * reader (layout and rules in snapshot.h).  The SHA-256 comes from
 * OpenSSL's EVP interface, which kvs links already (TLS).
 */
#include "snapshot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "config.h"
#include "kvs.h"

#define FRAME_RECORD 'R'
#define FRAME_END 'E'
#define FRAME_HEAD 9 /* tag + key length + record length */

/* ------------------------------------------------------------------ writer */

/* Hands the buffered bytes to the sink (they are hashed already). */
static int writer_flush(struct snapshot_writer *w)
{
	if (w->err || w->used == 0)
		return w->err;
	w->err = w->sink(w->ctx, w->buf, w->used);
	w->bytes += w->used;
	w->used = 0;
	return w->err;
}

/* Appends len bytes to the stream: hashed now, sunk when the buffer fills. */
static int writer_put(struct snapshot_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;

	if (w->err)
		return w->err;
	EVP_DigestUpdate(w->sha, p, len);
	while (len > 0) {
		size_t n = SNAPSHOT_CHUNK - w->used;

		if (n > len)
			n = len;
		memcpy(w->buf + w->used, p, n);
		w->used += n;
		p += n;
		len -= n;
		if (w->used == SNAPSHOT_CHUNK && writer_flush(w) != 0)
			return w->err;
	}
	return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int snapshot_writer_init(struct snapshot_writer *w, const char *node_id, int64_t taken_ms,
			 snapshot_sink_fn sink, void *ctx)
{
	size_t n = strlen(node_id);
	uint8_t head[SNAPSHOT_MAGIC_LEN + 3 + RECORD_ORIGIN_MAX + 8];

	if (n == 0 || n > RECORD_ORIGIN_MAX)
		return KVS_EINVAL;
	memset(w, 0, sizeof(*w));
	w->sink = sink;
	w->ctx = ctx;
	w->buf = malloc(SNAPSHOT_CHUNK);
	w->sha = EVP_MD_CTX_new();
	if (!w->buf || !w->sha || EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL) != 1) {
		snapshot_writer_release(w);
		return KVS_ENOMEM;
	}
	memcpy(head, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_LEN);
	head[8] = (uint8_t)(SNAPSHOT_VERSION >> 8);
	head[9] = (uint8_t)(SNAPSHOT_VERSION & 0xff);
	head[10] = (uint8_t)n;
	memcpy(head + 11, node_id, n);
	record_put_be64(head + 11 + n, (uint64_t)taken_ms);
	return writer_put(w, head, 11 + n + 8);
}

int snapshot_writer_add(struct snapshot_writer *w, const char *key, size_t klen,
			const struct kvs_record *rec)
{
	size_t rlen = record_size(rec);
	uint8_t head[FRAME_HEAD], small[1024], *enc = small;

	if (w->err)
		return w->err;
	if (rlen > sizeof(small) && !(enc = malloc(rlen)))
		return w->err = KVS_ENOMEM;
	record_encode(rec, enc);
	head[0] = FRAME_RECORD;
	put_be32(head + 1, (uint32_t)klen);
	put_be32(head + 5, (uint32_t)rlen);
	if (writer_put(w, head, sizeof(head)) == 0 && writer_put(w, key, klen) == 0 &&
	    writer_put(w, enc, rlen) == 0)
		w->count++;
	if (enc != small)
		free(enc);
	return w->err;
}

int snapshot_writer_finish(struct snapshot_writer *w)
{
	uint8_t tail[9], sha[EVP_MAX_MD_SIZE];
	unsigned shalen = 0;

	tail[0] = FRAME_END;
	record_put_be64(tail + 1, w->count);
	if (writer_put(w, tail, sizeof(tail)) != 0)
		return w->err;
	EVP_DigestFinal_ex(w->sha, sha, &shalen);
	/* the checksum is not part of what it sums: appended unhashed */
	if (w->used + SNAPSHOT_SHA_LEN > SNAPSHOT_CHUNK && writer_flush(w) != 0)
		return w->err;
	memcpy(w->buf + w->used, sha, SNAPSHOT_SHA_LEN);
	w->used += SNAPSHOT_SHA_LEN;
	return writer_flush(w);
}

void snapshot_writer_release(struct snapshot_writer *w)
{
	EVP_MD_CTX_free(w->sha);
	free(w->buf);
	w->sha = NULL;
	w->buf = NULL;
}

/* ------------------------------------------------------------------ reader */

__attribute__((format(printf, 2, 3)))
static int fail(struct snapshot_reader *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	return KVS_EINVAL;
}

/* Reads exactly len bytes (what names them in an error), hashing them
 * when hash is set. */
static int take(struct snapshot_reader *r, void *out, size_t len, bool hash, const char *what)
{
	size_t got = fread(out, 1, len, r->f);

	if (got != len) {
		if (ferror(r->f)) {
			snprintf(r->err, sizeof(r->err), "read error at byte %llu: %s",
				 (unsigned long long)(r->offset + got), strerror(errno));
			return KVS_EIO;
		}
		return fail(r, "truncated: the file ends at byte %llu, inside %s",
			    (unsigned long long)(r->offset + got), what);
	}
	if (hash)
		EVP_DigestUpdate(r->sha, out, len);
	r->offset += len;
	return 0;
}

int snapshot_reader_init(struct snapshot_reader *r, FILE *f, size_t max_record)
{
	uint8_t head[SNAPSHOT_MAGIC_LEN + 3], when[8];
	int rc;

	memset(r, 0, sizeof(*r));
	r->f = f;
	r->max_record = max_record;
	r->sha = EVP_MD_CTX_new();
	if (!r->sha || EVP_DigestInit_ex(r->sha, EVP_sha256(), NULL) != 1) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return KVS_ENOMEM;
	}
	if ((rc = take(r, head, sizeof(head), true, "the header")) != 0)
		return rc;
	if (memcmp(head, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_LEN) != 0)
		return fail(r, "not a kvs snapshot (the file does not start with KVSSNAP)");
	r->version = (unsigned)head[8] << 8 | head[9];
	if (r->version != SNAPSHOT_VERSION)
		return fail(r, "snapshot format version %u is not supported (this kvs reads "
			    "version %d)", r->version, SNAPSHOT_VERSION);
	size_t n = head[10];
	if (n == 0 || n > RECORD_ORIGIN_MAX)
		return fail(r, "damaged header: node id length %zu", n);
	if ((rc = take(r, r->node_id, n, true, "the header")) != 0 ||
	    (rc = take(r, when, sizeof(when), true, "the header")) != 0)
		return rc;
	r->node_id[n] = '\0';
	if (strlen(r->node_id) != n || !config_node_id_valid(r->node_id))
		return fail(r, "damaged header: the node id is not a valid node_id");
	r->taken_ms = (int64_t)record_get_be64(when);
	return 0;
}

/* memcmp order for byte strings of different lengths (RocksDB's). */
static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

/* The trailer, after its tag: count, checksum, end of file. */
static int read_trailer(struct snapshot_reader *r)
{
	uint8_t cnt[8], sha[SNAPSHOT_SHA_LEN], want[EVP_MAX_MD_SIZE];
	unsigned wlen = 0;
	int rc;

	if ((rc = take(r, cnt, sizeof(cnt), true, "the trailer")) != 0 ||
	    (rc = take(r, sha, sizeof(sha), false, "the trailer's checksum")) != 0)
		return rc;
	if (record_get_be64(cnt) != r->count)
		return fail(r, "damaged: the trailer counts %llu records, the file holds %llu",
			    (unsigned long long)record_get_be64(cnt), (unsigned long long)r->count);
	EVP_DigestFinal_ex(r->sha, want, &wlen);
	if (memcmp(sha, want, SNAPSHOT_SHA_LEN) != 0)
		return fail(r, "damaged: the SHA-256 checksum does not match the contents");
	if (fgetc(r->f) != EOF)
		return fail(r, "damaged: bytes follow the trailer at byte %llu",
			    (unsigned long long)r->offset);
	return 0;
}

int snapshot_reader_next(struct snapshot_reader *r, const char **key, size_t *klen,
			 struct kvs_record *rec)
{
	uint8_t head[FRAME_HEAD];
	uint64_t at = r->offset;
	int rc;

	if ((rc = take(r, head, 1, true, "a record's frame")) != 0)
		return rc;
	if (head[0] == FRAME_END)
		return read_trailer(r);
	if (head[0] != FRAME_RECORD)
		return fail(r, "damaged: unknown frame tag 0x%02x at byte %llu", head[0],
			    (unsigned long long)at);
	if ((rc = take(r, head + 1, FRAME_HEAD - 1, true, "a record's frame")) != 0)
		return rc;
	size_t kl = get_be32(head + 1), rl = get_be32(head + 5);
	if (kl == 0 || kl > PATH_KEY_MAX)
		return fail(r, "damaged: record %llu at byte %llu has a key of %zu bytes (1 to %d)",
			    (unsigned long long)r->count + 1, (unsigned long long)at, kl,
			    PATH_KEY_MAX);
	if (rl < RECORD_HEADER || rl > r->max_record)
		return fail(r, "record %llu at byte %llu has %zu bytes: more than this node's limit "
			    "of %zu (max_value_bytes) or less than a record",
			    (unsigned long long)r->count + 1, (unsigned long long)at, rl,
			    r->max_record);
	if (rl > r->rec_cap) {
		uint8_t *p = realloc(r->rec, rl);

		if (!p) {
			snprintf(r->err, sizeof(r->err), "out of memory");
			return KVS_ENOMEM;
		}
		r->rec = p;
		r->rec_cap = rl;
	}
	memcpy(r->prev, r->key, r->klen);
	r->plen = r->klen;
	if ((rc = take(r, r->key, kl, true, "a record's key")) != 0 ||
	    (rc = take(r, r->rec, rl, true, "a record")) != 0)
		return rc;
	r->key[kl] = '\0';
	r->klen = kl;
	if (!path_key_valid(r->key, kl))
		return fail(r, "damaged: record %llu at byte %llu has an invalid key",
			    (unsigned long long)r->count + 1, (unsigned long long)at);
	if (r->count > 0 && key_cmp(r->prev, r->plen, r->key, kl) >= 0)
		return fail(r, "damaged: record %llu at byte %llu is out of key order",
			    (unsigned long long)r->count + 1, (unsigned long long)at);
	if (record_decode(r->rec, rl, rec) != 0)
		return fail(r, "damaged: record %llu (key \"%.100s\") at byte %llu does not decode",
			    (unsigned long long)r->count + 1, r->key, (unsigned long long)at);
	r->count++;
	*key = r->key;
	*klen = kl;
	return 1;
}

void snapshot_reader_release(struct snapshot_reader *r)
{
	EVP_MD_CTX_free(r->sha);
	free(r->rec);
	r->sha = NULL;
	r->rec = NULL;
}
