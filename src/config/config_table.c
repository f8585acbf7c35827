/*
 * config_table.c - the one table of configuration keys, and what it drives.
 *
 * config_keys[] names every key of struct kvs_config once, in the order of
 * the default file and of config_print(): its YAML name (the field's name,
 * stringified by KEY()), type, range or allowed values, default, and the
 * comment the default file gives it.  Adding a key is one field in
 * config.h and one row here, then config/kvs.yaml is regenerated:
 * test_config's test_default_file_matches fails while that file differs
 * from config_default_text(), and writes the generated text to
 * /tmp/kvs.yaml.generated to copy over it.
 *
 * Driven by the table, here:
 *   - config_defaults(): every CD_VALUE default parsed with
 *     config_key_set(), so a default is written once, as the default file
 *     shows it, and is in its own range (asserted);
 *   - config_key_set(): the type and range checks of one scalar, with the
 *     messages config_parse() reports ("must be between 1 and 65535, got
 *     \"0\"").  Keys with rules of their own call the dedicated validators
 *     of config_check.c (node_id and cluster_id, bind_address,
 *     advertise_address) or check them here (cluster_secret's length);
 *     sequences (seed_nodes, auth_tokens) and the rules between keys are
 *     config.c's.
 *
 * Types follow the YAML 1.2 core schema, strictly: integers are plain
 * decimal scalars ("8080" in quotes is a string), booleans plain true or
 * false (not yes/no/on/off), strings any scalar style that fits its buffer
 * (never truncated) without NUL.  The integer upper bounds keep every
 * seconds value * 1000 inside an int.
 *
 * Threads: the table is constant; nothing here keeps state.
 */
#include "config_table.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvs.h"

/* ------------------------------------------------------------------ */
/* the table                                                           */
/* ------------------------------------------------------------------ */

_Static_assert(sizeof(enum log_level) == sizeof(int), "enum log_level is stored as int");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum log_format is stored as int");

/* Index = value of enum log_level and enum log_format (log.h). */
static const char *const log_level_names[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_format_names[] = { "text", "json", NULL };

#define FIELD_SIZE(f) sizeof(((struct kvs_config *)0)->f)

/*
 * KEY(field, type, min, max, enum names, default kind, value,
 *     comment): see struct config_key.  In a comment "{}" is the range or
 * the allowed values.  Every row is two lines, whatever its type: the key,
 * then its comment whole, as the default file shows it (clearer than a
 * comment cut to a line width the file does not have).
 */
#define KEY(f, t, lo, hi, nm, def, val, c) \
	{ #f, t, offsetof(struct kvs_config, f), FIELD_SIZE(f), lo, hi, nm, def, val, c }

const struct config_key config_keys[] = {
	KEY(node_id, CT_NODE_ID, 0, 0, NULL, CD_COMPUTED, "myhost",
	    "Unique name of this node in the cluster, {} of [A-Za-z0-9._-]; defaults to the hostname."),
	KEY(bind_address, CT_HOST, 0, 0, NULL, CD_VALUE, "127.0.0.1",
	    "Address the HTTP server binds (0.0.0.0 = all interfaces); outside 127.0.0.0/8 it needs cluster_secret."),
	KEY(port, CT_INT, 1, 65535, NULL, CD_VALUE, "8080",
	    "HTTP port, for clients and peers alike, {}."),
	KEY(advertise_address, CT_ADDRESS, 0, 0, NULL, CD_COMPUTED, "127.0.0.1:8080",
	    "\"host:port\" peers use to reach this node; defaults to bind_address:port (set it when binding 0.0.0.0)."),
	KEY(data_dir, CT_PATH, 0, 0, NULL, CD_VALUE, "./data",
	    "RocksDB directory, created if missing."),
	KEY(seed_nodes, CT_SEEDS, 0, 0, NULL, CD_VALUE, "[]",
	    "Nodes to join through, \"host:port\" or \"http(s)://host:port\", e.g. [\"10.0.0.2:8080\"]; empty = standalone."),
	KEY(read_only, CT_BOOL, 0, 0, NULL, CD_VALUE, "false",
	    "true: reject client writes with 403, still accept replication from peers."),
	KEY(log_level, CT_ENUM, 0, 0, log_level_names, CD_VALUE, "info",
	    "Log verbosity: {}."),
	KEY(gossip_interval_min, CT_INT, 1, 86400, NULL, CD_VALUE, "60",
	    "Shortest pause between gossip rounds (drawn at random up to gossip_interval_max), {}."),
	KEY(gossip_interval_max, CT_INT, 1, 86400, NULL, CD_VALUE, "120",
	    "Longest pause between gossip rounds, {}, not below gossip_interval_min."),
	KEY(sync_interval, CT_INT, 1, 86400, NULL, CD_VALUE, "300",
	    "Seconds between regular syncs of recent items with a random peer, {}."),
	KEY(sync_items, CT_INT, 1, 10000, NULL, CD_VALUE, "15",
	    "How many most recent items a regular sync compares, {}."),
	KEY(catchup_interval, CT_INT, 1, 86400, NULL, CD_VALUE, "120",
	    "Seconds between catch-up syncs while this node is behind, {}."),
	KEY(bootstrap_max_age_hours, CT_INT, 1, 876000, NULL, CD_VALUE, "720",
	    "How far back (hours) a joining node fetches history, {}."),
	KEY(throttle_delay_ms, CT_INT, 0, 60000, NULL, CD_VALUE, "0",
	    "Least pause between the pages of one sync, in milliseconds, {}."),
	KEY(sync_bytes_per_sec, CT_I64, 0, 1099511627776, NULL, CD_VALUE, "25165824",
	    "Most bytes of keys and values one sync fetches per second, {} (24 MiB; 0 = no\nlimit): a joining node streams at this rate, not page by page."),
	KEY(fetch_delay_ms, CT_INT, 0, 60000, NULL, CD_VALUE, "50",
	    "Pause between item fetches, in milliseconds, {}."),
	KEY(failure_timeout, CT_INT, 1, 604800, NULL, CD_VALUE, "300",
	    "Seconds unheard before a member is reported unhealthy, {}, below removal_timeout."),
	KEY(removal_timeout, CT_INT, 1, 604800, NULL, CD_VALUE, "600",
	    "Seconds unheard before a member is dropped, {}."),
	KEY(max_members, CT_INT, 2, CONFIG_MAX_MEMBERS, NULL, CD_VALUE, "1024",
	    "Most members the member table holds, this node included (new ones past it are refused), {}."),
	KEY(max_value_bytes, CT_I64, 1, 67108864, NULL, CD_VALUE, "1048576",
	    "Largest accepted value in bytes (larger bodies get 413), {}."),
	KEY(http_threads, CT_INT, 2, 4096, NULL, CD_VALUE, "128",
	    "HTTP worker threads = cap on concurrent keep-alive connections, {}."),
	KEY(max_watchers, CT_INT, 0, 10000, NULL, CD_VALUE, "1000",
	    "Watch requests open at once, {}; each holds a worker thread of its own (added to\nhttp_threads), past it 503."),
	KEY(watch_history, CT_I64, 0, 100000000, NULL, CD_VALUE, "100000",
	    "Changes the change index keeps for watches, {} (0 turns the index and /watch/ off)."),
	KEY(max_ttl, CT_I64, 1, 3153600000, NULL, CD_VALUE, "2592000",
	    "Longest TTL a write may ask for, in seconds, {} (the default is 30 days)."),
	KEY(max_clock_offset_ms, CT_INT, 1, 3600000, NULL, CD_VALUE, "500",
	    "How far ahead of this node's clock a peer's record may be stamped, in\nmilliseconds, {}; later ones wait for a sync once clocks agree."),
	KEY(sync_writes, CT_BOOL, 0, 0, NULL, CD_VALUE, "false",
	    "true: fsync each write, so it survives power loss and not only a crash."),
	KEY(cache_bytes, CT_I64, 0, 1099511627776, NULL, CD_VALUE, "67108864",
	    "Bytes of recently read or written records kept in memory in front of RocksDB\n(0 turns the cache off), {}."),
	KEY(log_format, CT_ENUM, 0, 0, log_format_names, CD_VALUE, "text",
	    "Log format: {} (json: one object per line)."),
	KEY(probe_interval, CT_INT, 1, 3600, NULL, CD_VALUE, "1",
	    "Seconds between failure-detection probes, {}."),
	KEY(anti_entropy_interval, CT_INT, 1, 86400, NULL, CD_VALUE, "30",
	    "Seconds between full-keyspace digest comparisons with a random peer, {}."),
	KEY(tombstone_grace, CT_I64, 60, 315360000, NULL, CD_VALUE, "604800",
	    "Seconds a delete marker is kept before it is purged, {}."),
	KEY(peer_timeout_ms, CT_INT, 100, 60000, NULL, CD_VALUE, "2000",
	    "Total timeout of one request to a peer, in milliseconds, {}."),
	KEY(peer_compression, CT_BOOL, 0, 0, NULL, CD_VALUE, "true",
	    "true: take zstd-compressed pushes from peers and send them to peers that take\nthem (pushes of 16 KiB or more); false: plain JSON both ways."),
	KEY(replication_lag_max_ms, CT_INT, 0, 60000, NULL, CD_VALUE, "250",
	    "Backpressure: a write waits (up to 1 s) while this node's pushes to a peer that\nanswers are further behind than this, in milliseconds, {} (0 = never wait)."),
	KEY(http_request_timeout_ms, CT_INT, 100, 600000, NULL, CD_VALUE, "10000",
	    "A client must send a whole request (headers and body) within this, in ms, {}."),
	KEY(http_idle_timeout_ms, CT_INT, 100, 600000, NULL, CD_VALUE, "5000",
	    "An idle keep-alive connection is closed after this, in ms, {} (frees its worker)."),
	KEY(cluster_secret, CT_SECRET, 0, 0, NULL, CD_NONE, "change-me-to-a-long-random-string",
	    "Shared secret every peer must present, {} bytes (openssl rand -hex 32); needed by auth_tokens."),
	KEY(cluster_secret_file, CT_FILE, 0, 0, NULL, CD_NONE, "/etc/kvs/cluster.secret",
	    "File holding the cluster secret instead (keeps it out of this file); not with cluster_secret."),
	KEY(cluster_id, CT_NODE_ID, 0, 0, NULL, CD_VALUE, "kvs",
	    "Name of the cluster: a peer of another cluster_id is refused, so two clusters never merge."),
	KEY(auth_tokens, CT_TOKENS, 0, 0, NULL, CD_VALUE, "[]",
	    "Client bearer tokens, \"read:TOKEN\" or \"write:TOKEN\" (write includes read), or scoped\n"
	    "mappings {name, token, rules: [{prefix, access}], admin} (see the README); none = open API."),
	KEY(auth_tokens_file, CT_FILE, 0, 0, NULL, CD_NONE, "/etc/kvs/tokens.yaml",
	    "A YAML file with more auth_tokens entries, so secrets need not sit in this file."),
	KEY(audit_log, CT_FILE, 0, 0, NULL, CD_NONE, "/var/log/kvs/audit.log",
	    "One JSON line per write, admin request and refused request: a file (reopened on\nSIGHUP) or stderr."),
	KEY(protected_mode, CT_BOOL, 0, 0, NULL, CD_VALUE, "true",
	    "true: refuse to start on a non-loopback bind_address without cluster_secret or auth_tokens."),
	KEY(tls_cert_file, CT_FILE, 0, 0, NULL, CD_NONE, "/etc/kvs/node.crt",
	    "HTTPS: PEM certificate (chain) and private key; set both to serve TLS to clients and peers."),
	KEY(tls_key_file, CT_FILE, 0, 0, NULL, CD_NONE, "/etc/kvs/node.key",
	    ""),
	KEY(tls_ca_file, CT_FILE, 0, 0, NULL, CD_NONE, "/etc/kvs/ca.crt",
	    "CA certificate that signs the peers' certificates (checked on every peer connection)."),
	KEY(tls_verify_peer, CT_BOOL, 0, 0, NULL, CD_VALUE, "false",
	    "true: require a client certificate signed by tls_ca_file (mutual TLS); clients need one too."),
	KEY(ui, CT_BOOL, 0, 0, NULL, CD_VALUE, "true",
	    "true: serve the web console at /ui/ (static pages that use the public API); false: 404."),
};

const int config_key_count = (int)(sizeof(config_keys) / sizeof(config_keys[0]));

_Static_assert(sizeof(config_keys) / sizeof(config_keys[0]) <= CONFIG_KEYS_MAX,
	       "struct parse_ctx has room for CONFIG_KEYS_MAX keys");

/* ------------------------------------------------------------------ */
/* statics                                                             */
/* ------------------------------------------------------------------ */

static int reason(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void default_node_id(char *buf, size_t size);
static bool is_decimal(const char *s);
static const char *enum_choices(const char *const *names, char *buf, size_t size);
static int set_string(const struct config_key *k, char *field, const char *s, size_t len,
		      char *why, size_t whylen);

/* ------------------------------------------------------------------ */
/* public API                                                          */
/* ------------------------------------------------------------------ */

/*
 * Fills cfg with every default: each CD_VALUE row's value, then the
 * CD_COMPUTED ones
 * (node_id = the hostname, advertise_address = bind_address:port).
 */
void config_defaults(struct kvs_config *cfg)
{
	char why[160];
	int i, rc;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < config_key_count; i++) {
		const struct config_key *k = &config_keys[i];

		if (k->type == CT_SEEDS || k->type == CT_TOKENS) {
			/* empty, as the memset left it */
			assert(k->def == CD_VALUE && !strcmp(k->value, "[]"));
			continue;
		}
		if (k->def != CD_VALUE)
			continue;
		rc = config_key_set(k, cfg, k->value, strlen(k->value), true, why, sizeof(why));
		assert(rc == 0 && "a default is valid");
		(void)rc;
	}
	default_node_id(cfg->node_id, sizeof(cfg->node_id));
	config_fill_advertise(cfg);
}

/* ------------------------------------------------------------------ */
/* shared with config.c and config_text.c (config_table.h)             */
/* ------------------------------------------------------------------ */

int config_key_find(const char *name, size_t len)
{
	if (strlen(name) != len)
		return -1;
	for (int i = 0; i < config_key_count; i++)
		if (!strcmp(name, config_keys[i].name))
			return i;
	return -1;
}

const struct config_key *config_key(const char *name)
{
	int i = config_key_find(name, strlen(name));

	assert(i >= 0 && "a key of config_keys[]");
	return &config_keys[i];
}

/* Integers, booleans and enums here; strings in set_string(). */
int config_key_set(const struct config_key *k, struct kvs_config *cfg, const char *s,
		   size_t len, bool plain, char *why, size_t whylen)
{
	char *field = (char *)cfg + k->off;
	char pv[CONFIG_PREVIEW_MAX + 8], choices[128];
	long long n;
	int i;

	assert(k->type != CT_SEEDS && k->type != CT_TOKENS);
	if (strlen(s) != len)
		return reason(why, whylen, "contains a NUL byte");
	switch (k->type) {
	case CT_INT:
	case CT_I64:
		if (!plain || !is_decimal(s))
			return reason(why, whylen, "expected an integer, got %s",
				      config_preview(s, pv, sizeof(pv)));
		errno = 0;
		n = strtoll(s, NULL, 10);
		if (errno == ERANGE || n < k->min || n > k->max)
			return reason(why, whylen,
				      "must be between %" PRId64 " and %" PRId64 ", got %s",
				      k->min, k->max, config_preview(s, pv, sizeof(pv)));
		if (k->type == CT_INT)
			*(int *)field = (int)n;
		else
			*(int64_t *)field = (int64_t)n;
		return 0;
	case CT_BOOL:
		if (!plain || (strcmp(s, "true") && strcmp(s, "false")))
			return reason(why, whylen, "expected true or false, got %s",
				      config_preview(s, pv, sizeof(pv)));
		*(bool *)field = !strcmp(s, "true");
		return 0;
	case CT_ENUM:
		for (i = 0; k->names[i]; i++) {
			if (!strcmp(s, k->names[i])) {
				*(int *)field = i;
				return 0;
			}
		}
		return reason(why, whylen, "expected %s, got %s",
			      enum_choices(k->names, choices, sizeof(choices)),
			      config_preview(s, pv, sizeof(pv)));
	default:
		return set_string(k, field, s, len, why, whylen);
	}
}

const char *config_key_range(const struct config_key *k, char *buf, size_t size)
{
	switch (k->type) {
	case CT_INT:
	case CT_I64:
		snprintf(buf, size, "%" PRId64 "..%" PRId64, k->min, k->max);
		return buf;
	case CT_ENUM:
		return enum_choices(k->names, buf, size);
	case CT_SECRET:
		snprintf(buf, size, "%d..%zu", CONFIG_SECRET_MIN, k->size - 1);
		return buf;
	default:
		snprintf(buf, size, "1..%zu", k->size - 1);
		return buf;
	}
}

const char *config_preview(const char *s, char *buf, size_t size)
{
	if (strlen(s) > CONFIG_PREVIEW_MAX)
		snprintf(buf, size, "\"%.*s...\"", CONFIG_PREVIEW_MAX, s);
	else
		snprintf(buf, size, "\"%s\"", s);
	return buf;
}

/* advertise_address = bind_address:port (bind_address is never IPv6). */
void config_fill_advertise(struct kvs_config *cfg)
{
	char *a = cfg->advertise_address;
	size_t n = sizeof(cfg->advertise_address);

	memset(a, 0, n);
	snprintf(a, n, "%s:%d", cfg->bind_address, cfg->port);
}

void config_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	char *p;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

/* ------------------------------------------------------------------ */
/* internals                                                           */
/* ------------------------------------------------------------------ */

/* Formats a reason for config_key_set()'s caller; returns KVS_EINVAL. */
static int reason(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return KVS_EINVAL;
}

/* The hostname, with characters outside [A-Za-z0-9._-] turned into '-'. */
static void default_node_id(char *buf, size_t size)
{
	char host[256];
	size_t i;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] && i + 1 < size; i++)
		buf[i] = config_id_char((unsigned char)host[i]) ? host[i] : '-';
	buf[i] = '\0';
	if (i == 0)
		snprintf(buf, size, "kvs");
}

/* [+-]?[0-9]+ and nothing else (YAML 1.2 core schema, decimal only). */
static bool is_decimal(const char *s)
{
	if (*s == '+' || *s == '-')
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s))
		s++;
	return *s == '\0';
}

/* "a, b or c" from a NULL-terminated list of names. */
static const char *enum_choices(const char *const *names, char *buf, size_t size)
{
	size_t used = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; names[i] && used < size; i++) {
		used += (size_t)snprintf(buf + used, size - used, "%s%s",
					 i == 0 ? "" : names[i + 1] ? ", " : " or ", names[i]);
	}
	return buf;
}

/*
 * A string key: it must fit its buffer (never truncated) and, but for
 * cluster_secret, not be empty; node_id, cluster_id, bind_address and
 * advertise_address go through config_check.c's validators, the ones
 * members.c applies to records from the network.
 */
static int set_string(const struct config_key *k, char *field, const char *s, size_t len,
		      char *why, size_t whylen)
{
	char pv[CONFIG_PREVIEW_MAX + 8];
	const char *problem;

	if (len >= k->size)
		return reason(why, whylen, "longer than %zu bytes", k->size - 1);
	if (len == 0 && k->type != CT_SECRET)
		return reason(why, whylen, "must not be empty");
	switch (k->type) {
	case CT_NODE_ID:
		if (!config_node_id_valid(s))
			return reason(why, whylen, "may only contain A-Z a-z 0-9 . _ -, got %s",
				      config_preview(s, pv, sizeof(pv)));
		break;
	case CT_HOST:
		/* IPv4 or a host name: Debian's civetweb is built without IPv6 */
		if (!config_host_valid(s))
			return reason(why, whylen, "expected an IPv4 address or host name, got %s",
				      config_preview(s, pv, sizeof(pv)));
		break;
	case CT_ADDRESS:
		problem = config_address_problem(s, false);
		if (problem)
			return reason(why, whylen, "%s, got %s", problem,
				      config_preview(s, pv, sizeof(pv)));
		break;
	case CT_SECRET:
		/* never quoted back: it is a secret */
		if (len > 0 && len < CONFIG_SECRET_MIN)
			return reason(why, whylen,
				      "must be at least %d bytes, got %zu (e.g. openssl rand -hex 32)",
				      CONFIG_SECRET_MIN, len);
		break;
	default:
		break;
	}
	memset(field, 0, k->size);
	memcpy(field, s, len);
	return 0;
}
