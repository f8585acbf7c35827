/*
 * record.h - the binary form of a stored record (RocksDB "records" value).
 *
 *   byte 0      format (RECORD_FORMAT_V1)
 *   byte 1      flags (RECORD_TOMBSTONE)
 *   bytes 2-9   timestamp, int64 big-endian
 *   bytes 10-25 UUID, binary
 *   bytes 26-   the JSON value exactly as the client sent it (empty for a
 *               tombstone)
 *
 * Pure functions: any thread.
 */
#ifndef KVS_RECORD_H
#define KVS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "version.h"

#define RECORD_FORMAT_V1 1
#define RECORD_TOMBSTONE 0x01
#define RECORD_HEADER 26

struct kvs_record {
	struct kvs_version v; /* version of this value */
	bool tombstone;       /* a delete marker: value is empty */
	const char *value;    /* JSON bytes, not NUL-terminated; borrowed */
	size_t value_len;     /* bytes at value */
};

/* Bytes record_encode() writes for r. */
size_t record_size(const struct kvs_record *r);

/* Writes r into buf, which holds at least record_size(r) bytes. */
void record_encode(const struct kvs_record *r, uint8_t *buf);

/*
 * Parses buf[0..len) into out; out->value points into buf (borrowed for as
 * long as buf lives).  Returns 0, or KVS_EINVAL for a short buffer, unknown
 * format, unknown flags or a tombstone carrying a value; out is untouched
 * then.
 */
int record_decode(const uint8_t *buf, size_t len, struct kvs_record *out);

/* Big-endian helpers shared with the time index. */
void record_put_be64(uint8_t *p, uint64_t v);
uint64_t record_get_be64(const uint8_t *p);

#endif
