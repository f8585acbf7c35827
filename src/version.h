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

/* Milliseconds since the epoch from CLOCK_REALTIME. */
int64_t version_now_ms(void);

/*
 * Fills out with a fresh UUID v4 and ts = max(now_ms, prev->ts + 1);
 * prev may be NULL (no previous version).
 */
void version_new_local(struct kvs_version *out, const struct kvs_version *prev);

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
