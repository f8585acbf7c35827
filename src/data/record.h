/*
 * record.h - the binary form of a stored record (RocksDB "records" value).
 *
 *   byte 0      format (RECORD_FORMAT_V1)
 *   byte 1      flags (RECORD_TOMBSTONE)
 *   bytes 2-9   timestamp, int64 big-endian
 *   bytes 10-25 UUID, binary
 *   with RECORD_EXPIRES in the flags:
 *   8 bytes     the expiry, ms since the epoch, int64 big-endian
 *   with RECORD_ORIGIN in the flags:
 *   1 byte      n, the length of the origin node id (1..RECORD_ORIGIN_MAX)
 *   n bytes     the origin: the node_id of the node that wrote the version
 *   then        the JSON value exactly as the client sent it (empty for a
 *               tombstone)
 * Records written before origins were kept have no RECORD_ORIGIN flag and
 * decode with an empty origin; records without a TTL have no
 * RECORD_EXPIRES flag (expires 0).  A tombstone never expires.
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
#define RECORD_EXPIRES 0x04    /* an expiry follows the header */
#define RECORD_HEADER 26

struct kvs_record {
	struct kvs_version v; /* version of this value */
	bool tombstone;       /* a delete marker: value is empty */
	const char *value;    /* JSON bytes, not NUL-terminated; borrowed */
	size_t value_len;     /* bytes at value */
	const char *origin;   /* node_id that wrote this version, not
	                       * NUL-terminated; borrowed; origin_len 0: unknown */
	size_t origin_len;    /* at most RECORD_ORIGIN_MAX */
	int64_t expires;      /* ms since the epoch when the value expires; 0: never */
};

/* True if r is a value whose expiry is at or before now_ms. */
static inline bool record_expired(const struct kvs_record *r, int64_t now_ms)
{
	return !r->tombstone && r->expires > 0 && r->expires <= now_ms;
}

/* True if r is a value (not a tombstone) that has not expired at now_ms. */
static inline bool record_live(const struct kvs_record *r, int64_t now_ms)
{
	return !r->tombstone && !record_expired(r, now_ms);
}

/* Bytes record_encode() writes for r. */
size_t record_size(const struct kvs_record *r);

/* Writes r into buf, which holds at least record_size(r) bytes.  An origin
 * longer than RECORD_ORIGIN_MAX is left out. */
void record_encode(const struct kvs_record *r, uint8_t *buf);

/*
 * Parses buf[0..len) into out; out->value points into buf (borrowed for as
 * long as buf lives).  Returns 0, or KVS_EINVAL for a short buffer, unknown
 * format, unknown flags, a bad origin length, a bad expiry, or a
 * tombstone carrying a value or an expiry; out is untouched then.
 */
int record_decode(const uint8_t *buf, size_t len, struct kvs_record *out);

/* Big-endian helpers shared with the time index. */
void record_put_be64(uint8_t *p, uint64_t v);
uint64_t record_get_be64(const uint8_t *p);

#endif
