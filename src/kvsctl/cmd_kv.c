/*
 * cmd_kv.c - kvsctl's key/value commands: get, put, rm, ls, txn.  Each
 * reads its arguments, makes one libkvs call (ls: an iterator), and prints
 * in the format asked for (table, json, value).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kvsctl.h"

#define MAX_INPUT_BYTES ((size_t)64 << 20) /* a value or a txn file, read locally */

/* ---------------------------------------------------------------- helpers */

/* Reads all of f (at most MAX_INPUT_BYTES).  Returns a NUL-terminated
 * buffer the caller frees, or NULL after printing why. */
static char *read_all(FILE *f, const char *name, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);

	while (buf) {
		size_t got;

		if (n + 1 >= cap) {
			char *p = cap >= MAX_INPUT_BYTES ? NULL : realloc(buf, cap * 2);

			if (!p) {
				fprintf(stderr, "kvsctl: %s: larger than %zu bytes\n", name, MAX_INPUT_BYTES);
				free(buf);
				return NULL;
			}
			buf = p;
			cap *= 2;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				fprintf(stderr, "kvsctl: %s: read error: %s\n", name, strerror(errno));
				free(buf);
				return NULL;
			}
			buf[n] = '\0';
			*len = n;
			return buf;
		}
	}
	fprintf(stderr, "kvsctl: out of memory\n");
	return NULL;
}

/* Reads the file path ("-": stdin).  NULL after printing why. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f;
	char *buf;

	if (strcmp(path, "-") == 0)
		return read_all(stdin, "stdin", len);
	if (!(f = fopen(path, "rb"))) {
		fprintf(stderr, "kvsctl: cannot read %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = read_all(f, path, len);
	fclose(f);
	return buf;
}

static void fmt_ts(char *buf, size_t n, int64_t ms)
{
	if (ms)
		snprintf(buf, n, "%" PRId64, ms);
	else
		snprintf(buf, n, "-");
}

/* Adds uuid/timestamp/expires of v to the JSON object o. */
static void json_version(cJSON *o, const struct kvs_version *v)
{
	cJSON_AddStringToObject(o, "uuid", v->uuid);
	cJSON_AddNumberToObject(o, "timestamp", (double)v->timestamp);
	if (v->expires)
		cJSON_AddNumberToObject(o, "expires", (double)v->expires);
	else
		cJSON_AddNullToObject(o, "expires");
}

/* Prints o as one line and frees it. */
static void print_json(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	if (s)
		printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
}

/* -------------------------------------------------------------------- get */

static int run_get(struct session *s, const struct args *a, enum out_fmt out)
{
	kvs_client *c = session_client(s);
	struct kvs_value v;
	int rc;

	if (!c)
		return EXIT_USAGE;
	if ((rc = kvs_get(c, a->pos[0], &v)) != 0)
		return fail(s, rc, a->pos[0]);
	if (out == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "key", a->pos[0]);
		cJSON_AddItemToObject(o, "value", cJSON_CreateRaw(v.json));
		json_version(o, &v.version);
		print_json(o);
	} else if (out == OUT_TABLE) {
		struct table t;
		char ts[32], ex[32];
		const char *head[] = { "KEY", "UUID", "TIMESTAMP", "EXPIRES", "VALUE" };

		fmt_ts(ts, sizeof(ts), v.version.timestamp);
		fmt_ts(ex, sizeof(ex), v.version.expires);
		table_init(&t, 5, head);
		table_row(&t, (const char *[]){ a->pos[0], v.version.uuid, ts, ex, v.json });
		table_print(&t, stdout);
	} else {
		printf("%s\n", v.json);
	}
	kvs_value_release(&v);
	return 0;
}

/* -------------------------------------------------------------------- put */

enum { P_FILE, P_TTL, P_IF_MATCH, P_CREATE, P_STRING };
static const struct opt_spec put_opts[] = {
	[P_FILE] = { "file", 'f', true }, [P_TTL] = { "ttl", 0, true },
	[P_IF_MATCH] = { "if-match", 0, true }, [P_CREATE] = { "create", 0, false },
	[P_STRING] = { "string", 0, false },
};

static int run_put(struct session *s, const struct args *a, enum out_fmt out)
{
	struct kvs_put_options po = { 0 };
	struct kvs_version ver;
	const char *value = a->n_pos > 1 ? a->pos[1] : NULL;
	char *buf = NULL, *str = NULL;
	size_t len = 0;
	kvs_client *c;
	int rc;

	if (!!value + !!a->val[P_FILE] != 1)
		return usage_error("put", "give the value as an argument, '-' for stdin, or --file");
	if (a->val[P_TTL] && args_duration_ms(a->val[P_TTL], &po.ttl_ms) != 0)
		return usage_error("put", "bad --ttl '%s' (a whole number with ms, s, m, h or d)",
				   a->val[P_TTL]);
	if (a->val[P_IF_MATCH] && a->val[P_CREATE])
		return usage_error("put", "--if-match and --create cannot be combined");
	po.if_match = a->val[P_IF_MATCH];
	po.create_only = a->val[P_CREATE] != NULL;
	if (a->val[P_FILE] || strcmp(value, "-") == 0) {
		if (!(buf = read_file(a->val[P_FILE] ? a->val[P_FILE] : "-", &len)))
			return EXIT_USAGE;
		value = buf;
	} else {
		len = strlen(value);
	}
	if (a->val[P_STRING]) {
		cJSON *j = cJSON_CreateString(value);

		str = j ? cJSON_PrintUnformatted(j) : NULL;
		cJSON_Delete(j);
		if (!str) {
			free(buf);
			return usage_error("put", "--string: value is not text");
		}
		value = str;
		len = strlen(str);
	}
	if (!(c = session_client(s))) {
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = kvs_put(c, a->pos[0], value, len, &po, &ver)) != 0) {
		rc = fail(s, rc, a->pos[0]);
		goto out;
	}
	if (out == OUT_JSON) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "key", a->pos[0]);
		json_version(o, &ver);
		print_json(o);
	} else if (out == OUT_VALUE) {
		printf("%s\n", ver.uuid);
	} else {
		struct table t;
		char ts[32], ex[32];
		const char *head[] = { "KEY", "UUID", "TIMESTAMP", "EXPIRES" };

		fmt_ts(ts, sizeof(ts), ver.timestamp);
		fmt_ts(ex, sizeof(ex), ver.expires);
		table_init(&t, 4, head);
		table_row(&t, (const char *[]){ a->pos[0], ver.uuid, ts, ex });
		table_print(&t, stdout);
	}
out:
	free(buf);
	free(str);
	return rc;
}

/* --------------------------------------------------------------------- rm */

static const struct opt_spec rm_opts[] = { { "if-match", 0, true } };

static int run_rm(struct session *s, const struct args *a, enum out_fmt out)
{
	kvs_client *c = session_client(s);
	int rc;

	(void)out;
	if (!c)
		return EXIT_USAGE;
	if ((rc = kvs_delete(c, a->pos[0], a->val[0])) != 0)
		return fail(s, rc, a->pos[0]);
	return 0;
}

/* --------------------------------------------------------------------- ls */

enum { L_VALUES, L_LIMIT, L_ALL, L_AFTER };
static const struct opt_spec ls_opts[] = {
	[L_VALUES] = { "values", 0, false }, [L_LIMIT] = { "limit", 'l', true },
	[L_ALL] = { "recursive", 'r', false }, [L_AFTER] = { "after", 0, true },
};

static int run_ls(struct session *s, const struct args *a, enum out_fmt out)
{
	struct kvs_list_options lo = { 0 };
	const struct kvs_item *it;
	kvs_client *c;
	kvs_list *l;
	cJSON *arr = NULL;
	struct table t;
	uint64_t limit = 1000;
	int rc;

	if (a->val[L_LIMIT] && (args_uint(a->val[L_LIMIT], &limit) != 0 || limit < 1 ||
				limit > 10000))
		return usage_error("ls", "bad --limit '%s' (1..10000)", a->val[L_LIMIT]);
	if (!(c = session_client(s)))
		return EXIT_USAGE;
	lo.values = a->val[L_VALUES] != NULL;
	lo.page_size = (int)limit;
	lo.one_page = a->val[L_ALL] == NULL;
	lo.after = a->val[L_AFTER];
	if ((rc = kvs_list_open(c, a->n_pos ? a->pos[0] : "", &lo, &l)) != 0)
		return fail(s, rc, a->n_pos ? a->pos[0] : "/");
	if (out == OUT_JSON) {
		arr = cJSON_CreateArray();
	} else if (out != OUT_VALUE) {
		const char *head[] = { "KEY", "VALUE", "UUID", "TIMESTAMP", "EXPIRES" };

		table_init(&t, lo.values ? 5 : 1, head);
	}
	while ((rc = kvs_list_next(l, &it)) == 1) {
		if (out == OUT_JSON && lo.values) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "key", it->key);
			cJSON_AddItemToObject(o, "value", cJSON_CreateRaw(it->json ? it->json : "null"));
			json_version(o, &it->version);
			cJSON_AddItemToArray(arr, o);
		} else if (out == OUT_JSON) {
			cJSON_AddItemToArray(arr, cJSON_CreateString(it->key));
		} else if (out == OUT_VALUE) {
			printf("%s\n", lo.values && it->json ? it->json : it->key);
		} else {
			char ts[32], ex[32];

			fmt_ts(ts, sizeof(ts), it->version.timestamp);
			fmt_ts(ex, sizeof(ex), it->version.expires);
			table_row(&t, (const char *[]){ it->key, it->json, it->version.uuid, ts, ex });
		}
	}
	if (out == OUT_JSON)
		print_json(arr);
	else if (out != OUT_VALUE)
		table_print(&t, stdout);
	if (rc == 0 && kvs_list_more(l))
		fprintf(stderr, "kvsctl: more keys follow: -r for all, or --after '%s'\n",
			kvs_list_more(l));
	if (rc < 0)
		rc = fail(s, rc, "listing");
	kvs_list_free(l);
	return rc;
}

/* -------------------------------------------------------------------- txn */

static int run_txn(struct session *s, const struct args *a, enum out_fmt out)
{
	kvs_client *c;
	char *body, *reply = NULL;
	size_t len;
	int rc;

	if (!(body = read_file(a->pos[0], &len)))
		return EXIT_USAGE;
	if (!(c = session_client(s))) {
		free(body);
		return EXIT_USAGE;
	}
	rc = kvs_txn(c, body, len, &reply);
	free(body);
	if (rc != 0 && rc != KVS_EPRECOND)
		return fail(s, rc, "txn");
	if (out == OUT_JSON || out == OUT_VALUE || rc) {
		size_t rl = strlen(reply);

		printf("%s%s", reply, rl && reply[rl - 1] == '\n' ? "" : "\n");
	} else {
		cJSON *o = cJSON_Parse(reply), *e;
		const char *head[] = { "KEY", "UUID", "TIMESTAMP" };
		struct table t;

		table_init(&t, 3, head);
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "results")) {
			const cJSON *k = cJSON_GetObjectItemCaseSensitive(e, "key");
			const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "uuid");
			const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
			char tb[32];

			fmt_ts(tb, sizeof(tb), cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0);
			table_row(&t, (const char *[]){ cJSON_IsString(k) ? k->valuestring : "",
							cJSON_IsString(u) ? u->valuestring : "-", tb });
		}
		table_print(&t, stdout);
		cJSON_Delete(o);
	}
	free(reply);
	if (rc)
		return fail(s, rc, "txn");
	return 0;
}

/* ------------------------------------------------------------------ table */

const struct command kv_commands[] = {
	{ "get", "get KEY",
	  "Prints the value of KEY (-o value, the default), or with its version (-o json, table).\n"
	  "Exit 1 when the key does not exist.\n", NULL, 0, run_get, 1, 1 },
	{ "put", "put KEY VALUE|- [--file F] [--ttl DUR] [--if-match UUID|*] [--create] [--string]",
	  "Writes a JSON value: as the argument, '-' for stdin, or --file F.\n"
	  "  --ttl DUR        expire after DUR (30s, 5m, 1h, 7d; a bare number is seconds)\n"
	  "  --if-match U     only if the current version has uuid U (* : only if it exists)\n"
	  "  --create         only if the key does not exist\n"
	  "  --string         store the text as a JSON string (no JSON quoting needed)\n"
	  "Exit 3 when a condition fails.\n", put_opts, 5, run_put, 1, 2 },
	{ "rm", "rm KEY [--if-match UUID|*]",
	  "Deletes KEY.  Exit 1 when it does not exist, 3 when --if-match fails.\n",
	  rm_opts, 1, run_rm, 1, 1 },
	{ "ls", "ls [PREFIX] [--values] [--limit N] [-r] [--after KEY]",
	  "Lists the keys under PREFIX (all keys without one), sorted.\n"
	  "  --values         values and versions too\n"
	  "  --limit N        keys per page, 1..10000 (default 1000)\n"
	  "  -r, --recursive  every page (without it: the first page, and a note when more follow)\n"
	  "  --after KEY      start after KEY\n", ls_opts, 4, run_ls, 0, 1 },
	{ "txn", "txn FILE|-",
	  "Applies the transaction in FILE ({\"ops\": [...]}, see README) all or nothing.\n"
	  "Exit 3 (and the failed positions) when a condition fails.\n", NULL, 0, run_txn, 1, 1 },
};
const int n_kv_commands = sizeof(kv_commands) / sizeof(kv_commands[0]);
