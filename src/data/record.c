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

static bool has_origin(const struct kvs_record *r)
{
	return r->origin_len > 0 && r->origin_len <= RECORD_ORIGIN_MAX;
}

static bool has_expiry(const struct kvs_record *r)
{
	return !r->tombstone && r->expires > 0;
}

size_t record_size(const struct kvs_record *r)
{
	return RECORD_HEADER + (has_expiry(r) ? 8 : 0) + (has_origin(r) ? 1 + r->origin_len : 0) +
	       (r->tombstone ? 0 : r->value_len);
}

void record_encode(const struct kvs_record *r, uint8_t *buf)
{
	buf[0] = RECORD_FORMAT_V1;
	buf[1] = (r->tombstone ? RECORD_TOMBSTONE : 0) | (has_origin(r) ? RECORD_ORIGIN : 0) |
		 (has_expiry(r) ? RECORD_EXPIRES : 0);
	record_put_be64(buf + 2, (uint64_t)r->v.ts);
	memcpy(buf + 10, r->v.id, 16);
	buf += RECORD_HEADER;
	if (has_expiry(r)) {
		record_put_be64(buf, (uint64_t)r->expires);
		buf += 8;
	}
	if (has_origin(r)) {
		*buf++ = (uint8_t)r->origin_len;
		memcpy(buf, r->origin, r->origin_len);
		buf += r->origin_len;
	}
	if (!r->tombstone && r->value_len)
		memcpy(buf, r->value, r->value_len);
}

int record_decode(const uint8_t *buf, size_t len, struct kvs_record *out)
{
	struct kvs_record r = { 0 };
	size_t head = RECORD_HEADER;

	if (len < RECORD_HEADER || buf[0] != RECORD_FORMAT_V1 ||
	    (buf[1] & ~(RECORD_TOMBSTONE | RECORD_ORIGIN | RECORD_EXPIRES)))
		return KVS_EINVAL;
	if (buf[1] & RECORD_EXPIRES) {
		if (len < head + 8 || (buf[1] & RECORD_TOMBSTONE))
			return KVS_EINVAL;
		r.expires = (int64_t)record_get_be64(buf + head);
		if (r.expires <= 0)
			return KVS_EINVAL;
		head += 8;
	}
	if (buf[1] & RECORD_ORIGIN) {
		if (len < head + 1 || buf[head] == 0 || buf[head] > RECORD_ORIGIN_MAX ||
		    len < head + 1 + buf[head])
			return KVS_EINVAL;
		r.origin = (const char *)buf + head + 1;
		r.origin_len = buf[head];
		head += 1 + r.origin_len;
	}
	r.tombstone = buf[1] & RECORD_TOMBSTONE;
	if (r.tombstone && len != head)
		return KVS_EINVAL;
	r.v.ts = (int64_t)record_get_be64(buf + 2);
	memcpy(r.v.id, buf + 10, 16);
	r.value = (const char *)buf + head;
	r.value_len = len - head;
	*out = r;
	return 0;
}
