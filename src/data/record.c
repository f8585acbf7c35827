/*
 * record.c - binary record codec (layout in record.h).
 */
#include "record.h"

#include <string.h>

#include "kvs.h"

void record_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

uint64_t record_get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

size_t record_size(const struct kvs_record *r)
{
	return RECORD_HEADER + (r->tombstone ? 0 : r->value_len);
}

void record_encode(const struct kvs_record *r, uint8_t *buf)
{
	buf[0] = RECORD_FORMAT_V1;
	buf[1] = r->tombstone ? RECORD_TOMBSTONE : 0;
	record_put_be64(buf + 2, (uint64_t)r->v.ts);
	memcpy(buf + 10, r->v.id, 16);
	if (!r->tombstone && r->value_len)
		memcpy(buf + RECORD_HEADER, r->value, r->value_len);
}

int record_decode(const uint8_t *buf, size_t len, struct kvs_record *out)
{
	struct kvs_record r;

	if (len < RECORD_HEADER || buf[0] != RECORD_FORMAT_V1 || (buf[1] & ~RECORD_TOMBSTONE))
		return KVS_EINVAL;
	r.tombstone = buf[1] & RECORD_TOMBSTONE;
	if (r.tombstone && len != RECORD_HEADER)
		return KVS_EINVAL;
	r.v.ts = (int64_t)record_get_be64(buf + 2);
	memcpy(r.v.id, buf + 10, 16);
	r.value = (const char *)buf + RECORD_HEADER;
	r.value_len = len - RECORD_HEADER;
	*out = r;
	return 0;
}
