/*
 * cmd_cluster.c - kvsctl's cluster commands: members, health, status (one
 * row per member, each member asked directly) and snapshot save.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvsctl.h"

static void print_raw(const char *raw)
{
	size_t n = strlen(raw);

	printf("%s%s", raw, n && raw[n - 1] == '\n' ? "" : "\n");
}

/* ---------------------------------------------------------------- members */

static int run_members(struct session *s, const struct args *a, enum out_fmt out)
{
	kvs_client *c = session_client(s);
	struct kvs_member *m;
	char *raw;
	int n;

	(void)a;
	if (!c)
		return EXIT_USAGE;
	if ((n = kvs_members(c, &m, &raw)) < 0)
		return fail(s, n, "members");
	if (out == OUT_JSON) {
		print_raw(raw);
	} else if (out == OUT_VALUE) {
		for (int i = 0; i < n; i++)
			printf("%s\n", m[i].id);
	} else {
		const char *head[] = { "ID", "ADDRESS", "STATUS", "LAST_SEEN", "CLOCK_OFFSET_MS" };
		struct table t;

		table_init(&t, 5, head);
		for (int i = 0; i < n; i++) {
			char ls[32], off[32];

			snprintf(ls, sizeof(ls), "%" PRId64, m[i].last_seen);
			if (m[i].has_clock_offset)
				snprintf(off, sizeof(off), "%" PRId64, m[i].clock_offset_ms);
			else
				snprintf(off, sizeof(off), "-");
			table_row(&t, (const char *[]){ m[i].id, m[i].address, m[i].status, ls, off });
		}
		table_print(&t, stdout);
	}
	free(raw);
	kvs_members_free(m, n);
	return 0;
}

/* ----------------------------------------------------------------- health */

static int run_health(struct session *s, const struct args *a, enum out_fmt out)
{
	kvs_client *c = session_client(s);
	struct kvs_health h;
	char *raw;
	int rc;

	(void)a;
	if (!c)
		return EXIT_USAGE;
	if ((rc = kvs_health(c, NULL, &h, &raw)) != 0)
		return fail(s, rc, "health");
	if (out == OUT_JSON) {
		print_raw(raw);
	} else if (out == OUT_VALUE) {
		printf("%s\n", h.status);
	} else {
		const char *head[] = { "NODE", "ENDPOINT", "STATUS", "MODE", "MEMBERS", "CLOCK" };
		struct table t;
		char mc[16];

		snprintf(mc, sizeof(mc), "%d", h.member_count);
		table_init(&t, 6, head);
		table_row(&t, (const char *[]){ h.node_id, kvs_client_endpoint(c), h.status, h.mode,
						mc, h.clock[0] ? h.clock : "-" });
		table_print(&t, stdout);
	}
	free(raw);
	return 0;
}

/* ----------------------------------------------------------------- status */

/*
 * One row per member of the first reachable endpoint's list: its own
 * /health and kvs_keys, asked of the member itself; the clock offset as
 * the answering node measures it.  A member that does not answer is shown
 * "unreachable"; exit 0 still (the table is the answer).
 */
static int run_status(struct session *s, const struct args *a, enum out_fmt out)
{
	const char *head[] = { "ID", "ADDRESS", "STATUS", "MODE", "KEYS", "CLOCK_OFFSET_MS" };
	kvs_client *c = session_client(s);
	struct kvs_member *m;
	cJSON *arr = NULL;
	struct table t;
	int n;

	(void)a;
	if (!c)
		return EXIT_USAGE;
	if ((n = kvs_members(c, &m, NULL)) < 0)
		return fail(s, n, "status");
	if (out == OUT_JSON)
		arr = cJSON_CreateArray();
	else if (out != OUT_VALUE)
		table_init(&t, 6, head);
	for (int i = 0; i < n; i++) {
		struct kvs_health h = { 0 };
		char keys[32] = "-", off[32] = "-";
		double k = 0;
		bool up = kvs_health(c, m[i].address, &h, NULL) == 0;
		bool has_keys = up && kvs_metric(c, m[i].address, "kvs_keys", &k) == 0;

		if (has_keys)
			snprintf(keys, sizeof(keys), "%.0f", k);
		if (m[i].has_clock_offset)
			snprintf(off, sizeof(off), "%" PRId64, m[i].clock_offset_ms);
		if (out == OUT_JSON) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "id", m[i].id);
			cJSON_AddStringToObject(o, "address", m[i].address);
			cJSON_AddStringToObject(o, "status", m[i].status);
			cJSON_AddStringToObject(o, "mode", up ? h.mode : "unreachable");
			if (has_keys)
				cJSON_AddNumberToObject(o, "keys", k);
			else
				cJSON_AddNullToObject(o, "keys");
			if (m[i].has_clock_offset)
				cJSON_AddNumberToObject(o, "clock_offset_ms", (double)m[i].clock_offset_ms);
			else
				cJSON_AddNullToObject(o, "clock_offset_ms");
			cJSON_AddItemToArray(arr, o);
		} else if (out == OUT_VALUE) {
			printf("%s %s\n", m[i].id, up ? h.mode : "unreachable");
		} else {
			table_row(&t, (const char *[]){ m[i].id, m[i].address, m[i].status,
							up ? h.mode : "unreachable", keys, off });
		}
	}
	if (out == OUT_JSON) {
		char *txt = cJSON_PrintUnformatted(arr);

		if (txt)
			printf("%s\n", txt);
		free(txt);
		cJSON_Delete(arr);
	} else if (out != OUT_VALUE) {
		table_print(&t, stdout);
	}
	kvs_members_free(m, n);
	return 0;
}

/* --------------------------------------------------------------- snapshot */

static int run_snapshot(struct session *s, const struct args *a, enum out_fmt out)
{
	kvs_client *c;
	int64_t n;

	if (strcmp(a->pos[0], "save") != 0)
		return usage_error("snapshot", "unknown subcommand '%s' (snapshot save FILE)",
				   a->pos[0]);
	if (a->n_pos != 2)
		return usage_error("snapshot", "missing FILE: snapshot save FILE");
	if (!(c = session_client(s)))
		return EXIT_USAGE;
	if ((n = kvs_snapshot_save(c, a->pos[1])) < 0)
		return fail(s, (int)n, "snapshot");
	if (out == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();
		char *txt;

		cJSON_AddStringToObject(o, "file", a->pos[1]);
		cJSON_AddNumberToObject(o, "bytes", (double)n);
		if ((txt = cJSON_PrintUnformatted(o)) != NULL)
			printf("%s\n", txt);
		free(txt);
		cJSON_Delete(o);
	} else {
		printf("saved %" PRId64 " bytes to %s\n", n, a->pos[1]);
	}
	return 0;
}

const struct command cluster_commands[] = {
	{ "members", "members", "The member list, as the endpoint sees it.\n", NULL, 0,
	  run_members, 0, 0 },
	{ "health", "health", "/health of the endpoint: status, mode, members, clock.\n", NULL, 0,
	  run_health, 0, 0 },
	{ "status", "status",
	  "One row per member: id, address, status, mode, keys, clock offset; each member is\n"
	  "asked directly (mode 'unreachable' when it does not answer).\n", NULL, 0, run_status,
	  0, 0 },
	{ "snapshot", "snapshot save FILE",
	  "Streams GET /admin/snapshot (needs an admin token when tokens are on) into FILE\n"
	  "(written as FILE.part, renamed when complete).\n", NULL, 0, run_snapshot, 2, 2 },
};
const int n_cluster_commands = sizeof(cluster_commands) / sizeof(cluster_commands[0]);
