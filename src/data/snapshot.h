/*
 * snapshot.h - the snapshot file format (SPEC section 11): what
 * GET /admin/snapshot writes and kvs --restore reads.  Version 1, every
 * integer big-endian:
 *
 *   header   8 bytes   magic "KVSSNAP\0"
 *            2 bytes   format version (SNAPSHOT_VERSION)
 *            1 byte    n, length of the node id (1..127)
 *            n bytes   node_id of the node that took the snapshot
 *            8 bytes   when it was taken, ms since the epoch
 *   records  per record, in strictly ascending bytewise key order:
 *            1 byte    'R'
 *            4 bytes   key length k (1..PATH_KEY_MAX)
 *            4 bytes   record length r
 *            k bytes   the key (as /kv/ shows it, decoded)
 *            r bytes   the stored record as record.h encodes it: version,
 *                      tombstone flag, expiry, origin, JSON value
 *   trailer  1 byte    'E'
 *            8 bytes   number of records
 *            32 bytes  SHA-256 of every byte before these 32
 *
 * A writer streams through a fixed buffer (SNAPSHOT_CHUNK) to a sink, so
 * its memory does not grow with the data; a reader takes the bytes from a
 * FILE, checks every field against its bound before it allocates or
 * trusts it, and reports the first problem with its byte offset.  A
 * reader's last record is only known good when snapshot_reader_next()
 * returned 0 (trailer, count and checksum verified, nothing after them).
 *
 * Threads: a writer or a reader is used by one thread at a time.
 */
#ifndef KVS_SNAPSHOT_H
#define KVS_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "path.h"
#include "record.h"

#define SNAPSHOT_MAGIC "KVSSNAP\0"
#define SNAPSHOT_MAGIC_LEN 8
#define SNAPSHOT_VERSION 1
#define SNAPSHOT_CHUNK (64 * 1024) /* bytes a writer hands its sink at a time */
#define SNAPSHOT_SHA_LEN 32
#define SNAPSHOT_ERR_MAX 256

/* Takes the next len bytes of the stream.  Returns 0, or non-zero to stop
 * the writer (passed back by the writer's calls). */
typedef int (*snapshot_sink_fn)(void *ctx, const uint8_t *data, size_t len);

struct snapshot_writer {
	snapshot_sink_fn sink;
	void *ctx;
	void *sha;          /* EVP_MD_CTX: the running SHA-256 */
	uint8_t *buf;       /* SNAPSHOT_CHUNK bytes; owned */
	size_t used;        /* bytes in buf not yet sunk */
	uint64_t count;     /* records written */
	uint64_t bytes;     /* bytes handed to the sink so far */
	int err;            /* sticky: the first failure */
};

/*
 * Starts a snapshot of node_id taken at taken_ms: buffers the header.
 * Returns 0, or KVS_ENOMEM / KVS_EINVAL (node_id empty or over 127 bytes)
 * with nothing to release.
 */
int snapshot_writer_init(struct snapshot_writer *w, const char *node_id, int64_t taken_ms,
			 snapshot_sink_fn sink, void *ctx);

/* Adds one record (keys in ascending order: the reader checks).  Returns
 * 0, the sink's value, or KVS_ENOMEM; the first error sticks. */
int snapshot_writer_add(struct snapshot_writer *w, const char *key, size_t klen,
			const struct kvs_record *rec);

/* Writes the trailer and sinks what is buffered.  Returns 0 or the first
 * error of the writer. */
int snapshot_writer_finish(struct snapshot_writer *w);

/* Frees the writer's memory (whether finished or not). */
void snapshot_writer_release(struct snapshot_writer *w);

struct snapshot_reader {
	FILE *f;                        /* borrowed */
	void *sha;                      /* EVP_MD_CTX */
	size_t max_record;              /* largest record accepted */
	unsigned version;               /* of the file */
	char node_id[RECORD_ORIGIN_MAX + 1]; /* who took it, NUL-terminated */
	int64_t taken_ms;               /* when */
	uint64_t count;                 /* records read so far */
	uint64_t offset;                /* bytes read so far */
	uint8_t *rec;                   /* the current record's bytes; owned */
	size_t rec_cap;
	char key[PATH_KEY_MAX + 1];     /* the current key */
	size_t klen;
	char prev[PATH_KEY_MAX + 1];    /* the key before it (order check) */
	size_t plen;
	char err[SNAPSHOT_ERR_MAX];     /* why the last call failed */
};

/*
 * Reads and checks the header from f.  max_record bounds one record's
 * bytes.  Returns 0, or KVS_EINVAL (not a kvs snapshot, another format
 * version, truncated) or KVS_ENOMEM with the reason in r->err; release the
 * reader either way.
 */
int snapshot_reader_init(struct snapshot_reader *r, FILE *f, size_t max_record);

/*
 * Reads the next record: returns 1 with *key (klen bytes, NUL-terminated)
 * and *rec pointing into the reader (valid until the next call); 0 at the
 * trailer, once its count and checksum match and nothing follows; or
 * KVS_EINVAL (truncated, damaged, out of order, over a bound) / KVS_ENOMEM
 * / KVS_EIO (read error) with the reason in r->err.
 */
int snapshot_reader_next(struct snapshot_reader *r, const char **key, size_t *klen,
			 struct kvs_record *rec);

void snapshot_reader_release(struct snapshot_reader *r);

#endif
