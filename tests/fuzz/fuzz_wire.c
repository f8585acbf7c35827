/*
 * fuzz_wire.c - libFuzzer target for the peer message parsers:
 * json_parse_bounded() (json.c), then wire_items_parse() (wire.c) and
 * member_from_json() (members.c), the functions every /members/ request
 * body and every peer reply goes through (see tests/fuzz/README.md).
 *
 * The input is a peer request body or reply.  It is handled on a thread
 * whose stack is a civetweb worker's (HTTP_WORKER_STACK_BYTES), parsed with
 * the bounds the node uses (JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES), and
 * walked the way api_peer.c, sync.c and gossip.c do:
 *  - an object as a message: "from" and "member" as member records,
 *    "members" as an array of them (gossip), "items" as a record batch
 *    (push, sync and fetch replies), with and without need_values;
 *  - an array as a bare batch and as a bare member list.
 * Checked besides "no crash, no sanitizer report" (a stack overflow on the
 * worker-sized stack is a crash, as it would be in the node):
 *  - json_parse_bounded() refuses with a reason; what it refuses that
 *    json_valid() accepts is over a bound (depth, values) or holds a
 *    \u0000 escape; what it accepts is valid JSON without \u0000;
 *  - a batch refused whole names a reason, hands out nothing, and is not an
 *    array or holds over WIRE_MAX_ITEMS items;
 *  - an accepted batch keeps exactly the items that are accepted alone, in
 *    order, and counts the others in *refused with the first one's reason
 *    in *why: one bad record never changes what happens to the others;
 *  - kept items have valid keys, a non-nil UUID, a timestamp in
 *    1..VERSION_TS_LIMIT-1, values that pass json_valid() and fit
 *    max_value, and no value on a tombstone;
 *  - round trip: kept items written back with wire_record_add() (what a
 *    node sends) parse again, none refused, to the same keys, versions and
 *    value bytes; accepted member records written with member_list_to_json()
 *    parse back to the same records;
 *  - the member table survives whatever the parsed records say: they are
 *    joined, merged, ticked and listed as the node would.
 * FUZZ_SKIP_KNOWN=1 in the environment turns off the check of member
 * integers above 2^51 (cJSON prints 15 significant digits; member_from_json
 * now refuses 10^15 and more, so it no longer fires).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "http.h" /* HTTP_WORKER_STACK_BYTES: a civetweb worker's stack */
#include "json.h"
#include "kvs.h"
#include "log.h"
#include "members.h"
#include "path.h"
#include "version.h"
#include "wire.h"

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz_wire: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                           \
			abort();                                                     \
		}                                                                    \
	} while (0)

#define MAX_VALUE 4096 /* a small max_value_bytes, so the cap is reachable */
#define NOW_MS 1700000000000LL

static bool skip_known;

/* ---- the bounded parse --------------------------------------------------- */

/* Parses the input as the node's entries do, checking the parser's contract. */
static cJSON *parse_message(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *why = NULL;
	cJSON *doc = json_parse_bounded(text, size, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES,
					&why);
	bool valid = json_valid(text, size, NULL, NULL), nul = json_has_nul_escape(text, size);

	if (doc) {
		CHECK(valid && !nul);
		return doc;
	}
	CHECK(why && *why);
	if (valid && !nul && strcmp(why, "nesting too deep") != 0 &&
	    strcmp(why, "too many values") != 0 && strcmp(why, "out of memory") != 0) {
		fprintf(stderr, "fuzz_wire: valid JSON refused: %s\n", why);
		CHECK(!"valid JSON within the bounds refused");
	}
	if (nul)
		CHECK(!strcmp(why, "\\u0000 escape"));
	return NULL;
}

/* ---- records ------------------------------------------------------------ */

static void check_item(const struct wire_item *it, bool need_values)
{
	CHECK(it->key && strlen(it->key) == it->klen);
	CHECK(path_key_valid(it->key, it->klen));
	CHECK(it->rec.v.ts > 0 && it->rec.v.ts < VERSION_TS_LIMIT);
	CHECK(!version_is_nil(&it->rec.v));
	if (it->rec.tombstone) {
		CHECK(it->has_value && it->rec.value_len == 0);
		return;
	}
	CHECK(it->has_value || !need_values);
	if (it->has_value) {
		CHECK(it->rec.value && it->rec.value_len <= MAX_VALUE);
		CHECK(strlen(it->rec.value) == it->rec.value_len);
		CHECK(json_valid(it->rec.value, it->rec.value_len, NULL, NULL));
	}
}

static bool same_item(const struct wire_item *a, const struct wire_item *z)
{
	return a->klen == z->klen && memcmp(a->key, z->key, a->klen) == 0 &&
	       a->rec.v.ts == z->rec.v.ts && memcmp(a->rec.v.id, z->rec.v.id, 16) == 0 &&
	       a->rec.tombstone == z->rec.tombstone && a->has_value == z->has_value &&
	       a->rec.value_len == z->rec.value_len &&
	       (!a->rec.value_len || memcmp(a->rec.value, z->rec.value, a->rec.value_len) == 0);
}

/* Writes items as a node sends them and parses the text again. */
static void check_items_roundtrip(const struct wire_item *items, size_t n, bool need_values)
{
	struct wire_item *back = NULL;
	const char *why = NULL;
	struct buf b;
	size_t m = 0, refused = 0;
	cJSON *arr;

	buf_init(&b, 64u << 20);
	buf_add(&b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_add(&b, ",", 1);
		wire_record_add(&b, items[i].key, items[i].klen, &items[i].rec,
				items[i].has_value);
	}
	buf_add(&b, "]", 1);
	CHECK(!buf_failed(&b));
	/* what a node sends must be JSON any parser reads */
	CHECK(json_valid(b.data, b.len, NULL, NULL));
	arr = cJSON_ParseWithLength(b.data, b.len);
	CHECK(arr);
	if (wire_items_parse(arr, MAX_VALUE, need_values, &back, &m, &refused, &why) != 0 ||
	    refused)
		fprintf(stderr, "fuzz_wire: re-encoded batch refused: %s\n%.*s\n", why,
			(int)(b.len > 2000 ? 2000 : b.len), b.data);
	CHECK(back != NULL);
	CHECK(refused == 0 && why == NULL);
	CHECK(m == n);
	for (size_t i = 0; i < n; i++)
		CHECK(same_item(&items[i], &back[i]));
	free(back);
	cJSON_Delete(arr);
	buf_release(&b);
}

/*
 * Each element of arr parsed alone, as a batch of one: the batch must have
 * kept exactly those accepted alone, in order, and counted the others with
 * the first one's reason.
 */
static void check_items_independent(const cJSON *arr, bool need_values,
				    const struct wire_item *items, size_t n, size_t refused,
				    const char *why)
{
	const char *first = NULL;
	size_t kept = 0, left = 0;
	const cJSON *o;

	cJSON_ArrayForEach(o, arr) {
		cJSON *one = cJSON_CreateArray(), *copy = cJSON_Duplicate(o, true);
		struct wire_item *alone = NULL;
		const char *reason = NULL;
		size_t m = 0, r = 0;

		CHECK(one && copy);
		cJSON_AddItemToArray(one, copy);
		CHECK(wire_items_parse(one, MAX_VALUE, need_values, &alone, &m, &r, &reason) == 0);
		CHECK(m + r == 1);
		if (m) {
			CHECK(reason == NULL);
			CHECK(kept < n && same_item(&items[kept], &alone[0]));
			kept++;
		} else {
			CHECK(reason && *reason);
			if (!left++)
				first = reason;
		}
		free(alone);
		cJSON_Delete(one);
	}
	CHECK(kept == n && left == refused);
	CHECK(left ? why && !strcmp(why, first) : why == NULL);
}

/* ---- members ------------------------------------------------------------ */

static bool same_member(const struct member *a, const struct member *b)
{
	enum member_status sa = a->status == MEMBER_SUSPECT ? MEMBER_ALIVE : a->status;

	return !strcmp(a->id, b->id) && !strcmp(a->address, b->address) &&
	       a->joined_ts == b->joined_ts && a->incarnation == b->incarnation &&
	       a->last_seen == b->last_seen && sa == b->status;
}

static void check_member(const cJSON *o, struct member *list, size_t *n, size_t cap)
{
	struct member e, untouched;

	memset(&e, 0x5a, sizeof(e));
	untouched = e;
	if (member_from_json(o, &e) != 0) {
		CHECK(memcmp(&e, &untouched, sizeof(e)) == 0);
		return;
	}
	CHECK(memchr(e.id, '\0', sizeof(e.id)) && e.id[0]);
	CHECK(memchr(e.address, '\0', sizeof(e.address)) && e.address[0]);
	CHECK(e.joined_ts >= 0 && e.incarnation >= 0 && e.last_seen >= 0);
	CHECK(e.status == MEMBER_ALIVE || e.status == MEMBER_UNHEALTHY ||
	      e.status == MEMBER_LEFT);
	e.self = false;
	e.suspect_since = 0;
	if (*n < cap)
		list[(*n)++] = e;
}

/* member_list_to_json() output must read back to the same records. */
static void check_members_roundtrip(const struct member *list, size_t n)
{
	const int64_t exact = 1ll << 51;

	for (size_t i = 0; skip_known && i < n; i++)
		if (list[i].last_seen > exact || list[i].joined_ts > exact ||
		    list[i].incarnation > exact)
			return;
	cJSON *arr = member_list_to_json(list, n), *o;
	char *text;
	size_t i = 0;

	CHECK(arr);
	text = cJSON_PrintUnformatted(arr);
	CHECK(text);
	cJSON_Delete(arr);
	arr = cJSON_Parse(text);
	CHECK(arr);
	cJSON_ArrayForEach(o, arr) {
		struct member e;

		CHECK(i < n);
		CHECK(member_from_json(o, &e) == 0);
		CHECK(same_member(&list[i], &e));
		i++;
	}
	CHECK(i == n);
	cJSON_Delete(arr);
	cJSON_free(text);
}

/* Feeds parsed records to a member table the way the node does. */
static void exercise_table(const struct member *list, size_t n)
{
	static const struct members_timeouts t = { 5000, 300000, 600000 };
	struct member self, *snap = NULL, pick[4];
	struct members *m;
	char err[256];
	int counts[4];

	memset(&self, 0, sizeof(self));
	snprintf(self.id, sizeof(self.id), "self");
	snprintf(self.address, sizeof(self.address), "127.0.0.1:1");
	self.incarnation = self.joined_ts = self.last_seen = NOW_MS;
	m = members_new(&self, &t);
	CHECK(m);
	for (size_t i = 0; i < n; i++)
		(void)members_join(m, &list[i], err, sizeof(err));
	(void)members_merge(m, list, n);
	for (size_t i = 0; i < n; i++) {
		members_heard(m, list[i].id, list[i].last_seen);
		members_suspect(m, list[i].id, NOW_MS);
		if (i % 3 == 0)
			members_left(m, list[i].id, list[i].incarnation);
	}
	members_tick(m, NOW_MS + 10000);
	(void)members_merge(m, list, n);
	members_random(m, MEMBER_MASK_LIVE, pick, 4);
	members_counts(m, counts);
	CHECK(members_alive_count(m) == counts[MEMBER_ALIVE] + counts[MEMBER_SUSPECT]);
	size_t k = members_snapshot(m, &snap);
	CHECK(k >= 1 && snap && snap[0].self);
	cJSON_Delete(member_list_to_json(snap, k));
	free(snap);
	members_tick(m, INT64_MAX / 2);
	members_free(m);
}

/* ---- the walk ------------------------------------------------------------ */

#define MEMBERS_CAP 64

struct walk {
	struct member list[MEMBERS_CAP]; /* member records accepted so far */
	size_t n;
};

static void walk_batch(const cJSON *arr)
{
	for (int need = 0; need < 2; need++) {
		struct wire_item *items = (struct wire_item *)0x1;
		const char *why = "untouched";
		size_t n = 777, refused = 777;
		int rc = wire_items_parse(arr, MAX_VALUE, need, &items, &n, &refused, &why);

		if (rc != 0) {
			/* refused whole: only a non-array or an oversized batch */
			CHECK(why && *why && strcmp(why, "untouched") != 0);
			CHECK(items == (struct wire_item *)0x1 && n == 777);
			CHECK(refused == 0);
			CHECK(!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > WIRE_MAX_ITEMS ||
			      rc == KVS_ENOMEM);
			continue;
		}
		CHECK(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) <= WIRE_MAX_ITEMS);
		CHECK(items != NULL && items != (struct wire_item *)0x1);
		CHECK(n + refused == (size_t)cJSON_GetArraySize(arr));
		CHECK(refused ? why && *why : why == NULL);
		for (size_t i = 0; i < n; i++)
			check_item(&items[i], need);
		check_items_independent(arr, need, items, n, refused, why);
		check_items_roundtrip(items, n, need);
		free(items);
	}
}

static void walk_member(struct walk *w, const cJSON *o)
{
	check_member(o, w->list, &w->n, MEMBERS_CAP);
}

/* Walks a message the way the node's handlers and clients do. */
static void walk(struct walk *w, const cJSON *doc)
{
	const cJSON *it;

	if (cJSON_IsArray(doc)) {
		walk_batch(doc);
		cJSON_ArrayForEach(it, doc)
			walk_member(w, it);
	} else if (cJSON_IsObject(doc)) {
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(doc, "items");
		const cJSON *members = cJSON_GetObjectItemCaseSensitive(doc, "members");

		walk_member(w, cJSON_GetObjectItemCaseSensitive(doc, "from"));
		walk_member(w, cJSON_GetObjectItemCaseSensitive(doc, "member"));
		walk_member(w, doc);
		if (items)
			walk_batch(items);
		cJSON_ArrayForEach(it, members)
			walk_member(w, it);
	} else {
		walk_batch(doc); /* refused: not an array */
		walk_member(w, doc);
	}
}

/* ---- entry --------------------------------------------------------------- */

struct job {
	const uint8_t *data;
	size_t size;
};

/* One input, start to end, as a civetweb worker handles one peer message. */
static void *handle(void *arg)
{
	const struct job *job = arg;
	cJSON *doc = parse_message(job->data, job->size);
	struct walk *w;

	if (!doc)
		return NULL;
	w = calloc(1, sizeof(*w));
	CHECK(w);
	walk(w, doc);
	if (w->n) {
		check_members_roundtrip(w->list, w->n);
		exercise_table(w->list, w->n);
	}
	cJSON_Delete(doc);
	free(w);
	return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *e = getenv("FUZZ_SKIP_KNOWN");

	(void)argc;
	(void)argv;
	skip_known = e && *e == '1';
	/* member_join etc. at info level would flood the fuzzer's output */
	log_init(LOG_ERROR, LOG_FORMAT_TEXT, "fuzz");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct job job = { data, size };
	pthread_attr_t attr;
	pthread_t t;

	CHECK(pthread_attr_init(&attr) == 0);
	CHECK(pthread_attr_setstacksize(&attr, HTTP_WORKER_STACK_BYTES) == 0);
	CHECK(pthread_create(&t, &attr, handle, &job) == 0);
	CHECK(pthread_join(t, NULL) == 0);
	pthread_attr_destroy(&attr);
	return 0;
}
