/*
 * restore.c - a snapshot file into a new data directory (see restore.h).
 *
 * Order: check data_dir (absent or empty), open the file and check its
 * header (a foreign file is refused before anything is created), open a
 * store in "<data_dir>.restoring", apply the records in batches of up to
 * STORE_BATCH_MAX as STORE_REMOTE versions, and once the reader has
 * verified the trailer (count, SHA-256, nothing after it), record the
 * snapshot's time as last_alive, close the store (flushed) and rename the
 * directory to data_dir.  Any failure removes the .restoring directory.
 *
 * Memory: one batch of copies, at most STORE_BATCH_MAX records or
 * RESTORE_BATCH_BYTES bytes (plus one record), whatever the file's size.
 */
#include "restore.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "kvs.h"
#include "snapshot.h"
#include "store.h"

#define RESTORE_BATCH_BYTES (4 << 20)
#define RESTORE_SUFFIX ".restoring"

/* One batch of copied records (the reader reuses its buffers). */
struct restore_batch {
	struct store_op ops[STORE_BATCH_MAX];
	char *copies[STORE_BATCH_MAX];  /* key + record bytes of each op; owned */
	size_t n;
	size_t bytes;
};

__attribute__((format(printf, 3, 4)))
static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void batch_clear(struct restore_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->copies[i]);
	b->n = 0;
	b->bytes = 0;
}

/* Writes the batch through the write door; every op must be written. */
static int batch_flush(struct store *s, struct restore_batch *b, char *err, size_t errlen)
{
	int rc = 0;

	if (b->n == 0)
		return 0;
	rc = store_apply_batch(s, b->ops, b->n, STORE_REMOTE);
	for (size_t i = 0; rc == 0 && i < b->n; i++) {
		if (b->ops[i].rc != 0) {
			rc = b->ops[i].rc == KVS_EIO ? KVS_EIO : KVS_EINVAL;
			say(err, errlen, "record \"%.*s\" was refused by the store: %s (a version "
			    "timestamp of 0 or more than a day ahead of this clock?)",
			    (int)(b->ops[i].len > 200 ? 200 : b->ops[i].len), b->ops[i].path,
			    kvs_strerror(b->ops[i].rc));
		}
	}
	if (rc != 0 && !err[0])
		say(err, errlen, "cannot write the restored records: %s", kvs_strerror(rc));
	batch_clear(b);
	return rc;
}

/* Copies one record into the batch (flushing it first when full). */
static int batch_add(struct store *s, struct restore_batch *b, const char *key, size_t klen,
		     const struct kvs_record *rec, char *err, size_t errlen)
{
	size_t rlen = record_size(rec);
	int rc;

	if ((b->n == STORE_BATCH_MAX || b->bytes + klen + rlen > RESTORE_BATCH_BYTES) &&
	    (rc = batch_flush(s, b, err, errlen)) != 0)
		return rc;
	char *copy = malloc(klen + rlen);
	if (!copy) {
		say(err, errlen, "out of memory");
		return KVS_ENOMEM;
	}
	memcpy(copy, key, klen);
	record_encode(rec, (uint8_t *)copy + klen);
	struct store_op *op = &b->ops[b->n];
	memset(op, 0, sizeof(*op));
	op->path = copy;
	op->len = klen;
	record_decode((const uint8_t *)copy + klen, rlen, &op->rec); /* its own bytes: decodes */
	b->copies[b->n++] = copy;
	b->bytes += klen + rlen;
	return 0;
}

/* Reads every record of r into s; 0 once the trailer is verified. */
static int load(struct store *s, struct snapshot_reader *r, struct restore_result *out,
		char *err, size_t errlen)
{
	struct restore_batch *b = calloc(1, sizeof(*b));
	const char *key;
	size_t klen;
	struct kvs_record rec;
	int rc;

	if (!b) {
		say(err, errlen, "out of memory");
		return KVS_ENOMEM;
	}
	while ((rc = snapshot_reader_next(r, &key, &klen, &rec)) == 1) {
		if ((rc = batch_add(s, b, key, klen, &rec, err, errlen)) != 0)
			break;
		out->records++;
		out->tombstones += rec.tombstone;
	}
	if (rc < 0 && !err[0])
		say(err, errlen, "%s", r->err);
	if (rc == 0)
		rc = batch_flush(s, b, err, errlen);
	batch_clear(b);
	free(b);
	return rc;
}

/* data_dir must be absent or an empty directory. */
static int check_target(const char *data_dir, char *err, size_t errlen)
{
	int e = fs_dir_empty(data_dir);

	if (e == 1 || e == -ENOENT)
		return 0;
	if (e == 0)
		say(err, errlen, "data_dir %s is not empty: restore only into an empty or absent "
		    "directory (stop the node and move its data away first)", data_dir);
	else
		say(err, errlen, "data_dir %s: %s", data_dir, strerror(-e));
	return KVS_EINVAL;
}

int store_restore(const char *file, const char *data_dir, size_t max_record,
		  struct restore_result *out, char *err, size_t errlen)
{
	struct snapshot_reader r;
	struct store *s = NULL;
	char dir[4096], tmp[4096 + sizeof(RESTORE_SUFFIX)], serr[512];
	FILE *f = NULL;
	size_t dlen;
	int rc;

	err[0] = '\0';
	memset(out, 0, sizeof(*out));
	if ((dlen = strlen(data_dir)) == 0 || dlen >= sizeof(dir)) {
		say(err, errlen, "data_dir is empty or too long");
		return KVS_EINVAL;
	}
	/* "data/" names the same dir as "data": the work dir goes beside it */
	memcpy(dir, data_dir, dlen + 1);
	while (dlen > 1 && dir[dlen - 1] == '/')
		dir[--dlen] = '\0';
	data_dir = dir;
	snprintf(tmp, sizeof(tmp), "%s%s", dir, RESTORE_SUFFIX);
	if ((rc = check_target(data_dir, err, errlen)) != 0)
		return rc;
	if (!(f = fopen(file, "rb"))) {
		say(err, errlen, "cannot open %s: %s", file, strerror(errno));
		return KVS_EINVAL;
	}
	if ((rc = snapshot_reader_init(&r, f, max_record)) != 0) {
		say(err, errlen, "%s: %s", file, r.err);
		goto out_reader;
	}
	/* a leftover of an interrupted restore is ours to remove */
	if ((rc = fs_rmtree(tmp)) != 0 || (rc = fs_mkdir_p(tmp)) != 0) {
		say(err, errlen, "cannot prepare %s: %s", tmp, strerror(-rc));
		rc = KVS_EIO;
		goto out_reader;
	}
	if (!(s = store_open(tmp, false, 0, serr, sizeof(serr)))) {
		say(err, errlen, "%s", serr);
		rc = KVS_EIO;
		goto out_remove;
	}
	if ((rc = load(s, &r, out, err, errlen)) != 0) {
		char why[SNAPSHOT_ERR_MAX + 64];

		snprintf(why, sizeof(why), "%s", err);
		say(err, errlen, "%s: %s", file, why);
		goto out_remove;
	}
	uint8_t alive[8];
	record_put_be64(alive, (uint64_t)r.taken_ms);
	if ((rc = store_meta_put(s, "last_alive", alive, sizeof(alive))) != 0) {
		say(err, errlen, "cannot write to %s", tmp);
		goto out_remove;
	}
	store_close(s);
	s = NULL;
	/* data_dir is absent or empty (checked above): rename replaces it */
	if (rename(tmp, data_dir) != 0) {
		say(err, errlen, "cannot rename %s to %s: %s", tmp, data_dir, strerror(errno));
		rc = KVS_EIO;
		goto out_remove;
	}
	snprintf(out->node_id, sizeof(out->node_id), "%s", r.node_id);
	out->taken_ms = r.taken_ms;
	goto out_reader;
out_remove:
	store_close(s);
	fs_rmtree(tmp);
out_reader:
	snapshot_reader_release(&r);
	fclose(f);
	return rc;
}
