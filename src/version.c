/*
 * version.c - UUID + millisecond versions (see version.h for the rules).
 */
#include "version.h"

#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "kvs.h"

int64_t version_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void version_new_local(struct kvs_version *out, const struct kvs_version *prev)
{
	int64_t now = version_now_ms();

	if (prev && prev->ts >= now)
		now = prev->ts + 1;
	out->ts = now;
	uuid_generate_random(out->id);
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
