/*
 * record.h - the binary form of a stored record (RocksDB "records" value).
 *
 *   byte 0      format (RECORD_FORMAT_V1)
 *   byte 1      flags (RECORD_TOMBSTONE)
 *   bytes 2-9   timestamp, int64 big-endian
 *   bytes 10-25 UUID, binary
 *   with RECORD_ORIGIN in the flags:
 *   byte 26     n, the length of the origin node id (1..RECORD_ORIGIN_MAX)
 *   bytes 27-   the origin: the node_id of the node that wrote the version
 *   then        the JSON value exactly as the client sent it (empty for a
 *               tombstone)
 * Records written before origins were kept have no RECORD_ORIGIN flag and
 * decode with an empty origin.
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
#define RECORD_ORIGIN 0x02     /* an origin node id follows the header */
#define RECORD_ORIGIN_MAX 127  /* bytes of an origin: a node_id (CONFIG_ID_MAX - 1) */
#define RECORD_HEADER 26

struct kvs_record {
	struct kvs_version v; /* version of this value */
	bool tombstone;       /* a delete marker: value is empty */
	const char *value;    /* JSON bytes, not NUL-terminated; borrowed */
	size_t value_len;     /* bytes at value */
	const char *origin;   /* node_id that wrote this version, not
	                       * NUL-terminated; borrowed; origin_len 0: unknown */
	size_t origin_len;    /* at most RECORD_ORIGIN_MAX */
};

/* Bytes record_encode() writes for r. */
size_t record_size(const struct kvs_record *r);

/* Writes r into buf, which holds at least record_size(r) bytes.  An origin
 * longer than RECORD_ORIGIN_MAX is left out. */
void record_encode(const struct kvs_record *r, uint8_t *buf);

/*
 * Parses buf[0..len) into out; out->value points into buf (borrowed for as
 * long as buf lives).  Returns 0, or KVS_EINVAL for a short buffer, unknown
 * format, unknown flags, a bad origin length or a tombstone carrying a
 * value; out is untouched then.
 */
int record_decode(const uint8_t *buf, size_t len, struct kvs_record *out);

/* Big-endian helpers shared with the time index. */
void record_put_be64(uint8_t *p, uint64_t v);
uint64_t record_get_be64(const uint8_t *p);

#endif
