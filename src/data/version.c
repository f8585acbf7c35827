/*
 * version.c - UUID + millisecond versions (see version.h for the rules).
 *
 * New UUIDs are v4 from getrandom(2), drawn in blocks into a per-thread
 * buffer.  libuuid's uuid_generate_random() also reseeds and cranks glibc's
 * random(), which takes one process-wide lock, on every call: with 64 HTTP
 * threads writing that was a visible part of a PUT (perf, make bench).
 * libuuid still formats and parses.
 */
#include "version.h"

#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <uuid/uuid.h>

#include "kvs.h"

int64_t version_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define RANDOM_BLOCK 256  /* bytes per getrandom(): up to 256 it is never cut short */

/* A random (v4) UUID into id. */
static void uuid_v4(uint8_t id[16])
{
	static _Thread_local uint8_t pool[RANDOM_BLOCK];
	static _Thread_local size_t used = RANDOM_BLOCK;

	if (used == RANDOM_BLOCK) {
		if (getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool)) {
			uuid_generate_random(id); /* only without getrandom (Linux < 3.17) */
			return;
		}
		used = 0;
	}
	memcpy(id, pool + used, 16);
	memset(pool + used, 0, 16); /* a used UUID does not linger in the pool */
	used += 16;
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40); /* version 4 */
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80); /* RFC 4122 variant */
}

int version_new_local(struct kvs_version *out, const struct kvs_version *prev)
{
	int64_t now = version_now_ms();

	if (prev && prev->ts >= now)
		now = prev->ts + 1;
	if (now >= VERSION_TS_LIMIT)
		return KVS_ETOOBIG;
	out->ts = now;
	uuid_v4(out->id);
	return 0;
}

bool version_ts_acceptable(int64_t ts, int64_t now)
{
	return ts > 0 && ts < VERSION_TS_LIMIT && ts <= now + VERSION_FUTURE_MAX_MS;
}

bool version_is_nil(const struct kvs_version *v)
{
	static const uint8_t nil[16];

	return memcmp(v->id, nil, sizeof(nil)) == 0;
}

int version_cmp_ts(const struct kvs_version *a, const struct kvs_version *b)
{
	return (a->ts > b->ts) - (a->ts < b->ts);
}

bool version_equal(const struct kvs_version *a, const struct kvs_version *b)
{
	return a->ts == b->ts && memcmp(a->id, b->id, sizeof(a->id)) == 0;
}

bool version_conflicts(const struct kvs_version *a, const struct kvs_version *b)
{
	return a->ts == b->ts && memcmp(a->id, b->id, sizeof(a->id)) != 0;
}

void version_uuid_str(const struct kvs_version *v, char out[VERSION_UUID_STR])
{
	uuid_unparse_lower(v->id, out);
}

int version_uuid_parse(struct kvs_version *v, const char *s)
{
	uuid_t id;

	if (!s || strlen(s) != VERSION_UUID_STR - 1 || uuid_parse(s, id) != 0)
		return KVS_EINVAL;
	memcpy(v->id, id, sizeof(v->id));
	return 0;
}
