/*
 * push.c - writing the push message (format in push.h).
 *
 * The sender's record is printed with cJSON (member_to_json) and the
 * records with wire_record_add(), straight into the message's buf: its
 * sticky error means push_end() is the one place a failure is seen.
 * Pure, no locks: any thread.
 */
#include "push.h"

#include "kvs.h"
#include "wire.h"

void push_begin(struct push_msg *m, size_t cap, const struct member *from, enum sync_kind kind)
{
	cJSON *o = member_to_json(from);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;

	cJSON_Delete(o);
	buf_init(&m->body, cap);
	m->n = 0;
	buf_adds(&m->body, "{\"from\":");
	buf_adds(&m->body, text ? text : "null");
	if (kind == SYNC_ANTI_ENTROPY)
		buf_adds(&m->body, ",\"kind\":\"anti_entropy\"");
	buf_adds(&m->body, ",\"items\":[");
	cJSON_free(text);
}

void push_add(struct push_msg *m, const char *key, size_t klen, const struct kvs_record *r)
{
	push_add_txn(m, key, klen, r, 0);
}

void push_add_txn(struct push_msg *m, const char *key, size_t klen, const struct kvs_record *r,
		  uint64_t txn)
{
	if (m->n++)
		buf_add(&m->body, ",", 1);
	wire_record_add_txn(&m->body, key, klen, r, true, txn);
}

int push_end(struct push_msg *m)
{
	buf_adds(&m->body, "]}");
	return m->body.err;
}

void push_release(struct push_msg *m)
{
	buf_release(&m->body);
	m->n = 0;
}
