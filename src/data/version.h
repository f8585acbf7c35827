/*
 * version.h - versions of stored values: a UUID v4 plus a millisecond
 * timestamp (SPEC section 3, "Versions").
 *
 * A larger timestamp wins.  The same timestamp with another UUID is a
 * conflict, settled by the cluster's vote (conflict.c), never here.
 * A local write's timestamp is max(now_ms, replaced.ts + 1), so an
 * overwrite beats what it replaced even on a node whose clock is behind.
 * libuuid lives behind this module only.  Pure apart from the clock: any
 * thread.
 */
#ifndef KVS_VERSION_H
#define KVS_VERSION_H

#include <stdbool.h>
#include <stdint.h>

#define VERSION_UUID_STR 37 /* 36 characters and NUL */

struct kvs_version {
	int64_t ts;     /* milliseconds since the Unix epoch */
	uint8_t id[16]; /* UUID v4, binary */
};

/*
 * Timestamps kvs stores, produces and accepts are below VERSION_TS_LIMIT
 * (10^15 ms, the year 33658): the largest that every node's JSON carries
 * exactly.  A record from a peer stamped more than VERSION_FUTURE_MAX_MS
 * ahead of this node's clock is refused: taking it would make every later
 * write of that key climb from a time no clock has reached.
 */
#define VERSION_TS_LIMIT 1000000000000000LL
#define VERSION_FUTURE_MAX_MS (24LL * 3600 * 1000)

/* True if a record stamped ts may be taken from a peer when the clock reads now. */
bool version_ts_acceptable(int64_t ts, int64_t now);

/* True if v's UUID is the nil UUID (all zero bits), never a real version. */
bool version_is_nil(const struct kvs_version *v);

/* Milliseconds since the epoch from CLOCK_REALTIME. */
int64_t version_now_ms(void);

/*
 * Fills out with a fresh UUID v4 and ts = max(now_ms, prev->ts + 1);
 * prev may be NULL (no previous version).  Returns 0, or KVS_ETOOBIG
 * (out untouched) when that ts would reach VERSION_TS_LIMIT.
 */
int version_new_local(struct kvs_version *out, const struct kvs_version *prev);

/* <0, 0, >0 as a's timestamp is older, equal, newer than b's. */
int version_cmp_ts(const struct kvs_version *a, const struct kvs_version *b);

/* True if a and b are the very same version (timestamp and UUID). */
bool version_equal(const struct kvs_version *a, const struct kvs_version *b);

/* True if a and b conflict: same timestamp, different UUID. */
bool version_conflicts(const struct kvs_version *a, const struct kvs_version *b);

/* Writes the lower-case canonical UUID text (36 chars + NUL) into out. */
void version_uuid_str(const struct kvs_version *v, char out[VERSION_UUID_STR]);

/* Parses a canonical UUID text into v->id; returns 0 or KVS_EINVAL. */
int version_uuid_parse(struct kvs_version *v, const char *s);

#endif
