/*
 * config.c - the node's YAML configuration (SPEC section 2).
 *
 * One table, keys[], describes every key: its YAML name (always the name of
 * the struct kvs_config field, stringified by the row macros), its type,
 * the field's offset and size, and for integers the accepted range.
 * Parsing, the duplicate check and config_print() all walk that table, so
 * adding a key is one field in config.h, one row here and one entry in the
 * default text (whose test proves it parses back to the defaults).
 *
 * config_parse() loads the text with libyaml's document API: the whole
 * document becomes a node tree and every node keeps its start mark, so each
 * message can name a line.  The root must be a mapping (or empty, meaning
 * all defaults).  Each pair is applied to a private copy of the defaults;
 * rules that tie keys together (gossip min <= max, failure < removal, the
 * security rules below) and the advertise_address default run once every
 * key is known.  Only a fully valid result is copied out, so a failed call
 * leaves cfg untouched (the header promises less).
 *
 * Secure by default (as Redis's protected mode):
 *   - auth_tokens need cluster_secret or cluster_secret_file: with client
 *     tokens but no secret, the peer endpoints under /members/ (which can
 *     write any record) would stay open to anyone;
 *   - protected_mode (default true): a bind_address outside 127.0.0.0/8
 *     (0.0.0.0 and host names included) with neither a cluster secret nor
 *     auth_tokens is refused; protected_mode: false starts such a node,
 *     and config_log_warnings() then logs that it is open.
 * These messages name the line of auth_tokens and of bind_address.
 *
 * The address and node_id checks are public (config_address_problem(),
 * config_node_id_valid()): members.c applies the same rules to member
 * records that come from the network.
 *
 * Types follow the YAML 1.2 core schema, strictly:
 *   - integers are plain decimal scalars ("8080" in quotes is a string);
 *   - booleans are plain true or false (not yes/no/on/off);
 *   - strings accept any scalar style, must fit their buffer (never
 *     truncated) and must not contain NUL;
 *   - a null value (empty, ~, null) is refused, except for seed_nodes,
 *     where it means the empty list.
 *
 * Accepted values (the default config's comments say the same):
 *   node_id                 1..127 chars of [A-Za-z0-9._-]
 *   bind_address            1..63 chars: an IPv4 dotted quad or a host
 *                           name of [A-Za-z0-9-] labels (no IPv6: Debian's
 *                           civetweb has none)
 *   port                    1..65535
 *   advertise_address       "host:port", host as bind_address, port 1..65535
 *   data_dir                1..1023 bytes
 *   seed_nodes              up to 64 entries, "host:port", optionally
 *                           prefixed by http:// or https://
 *   max_members             2..4096 (a gossip message carries up to 4096)
 *   log_level               debug | info | warn | error
 *   log_format              text | json
 *   gossip_interval_min/max 1..86400 s, min <= max
 *   sync_interval           1..86400 s
 *   sync_items              1..10000
 *   catchup_interval        1..86400 s
 *   bootstrap_max_age_hours 1..876000 (100 years)
 *   throttle_delay_ms       0..60000
 *   fetch_delay_ms          0..60000
 *   failure_timeout         1..604800 s, < removal_timeout
 *   removal_timeout         1..604800 s
 *   max_value_bytes         1..67108864 (64 MiB)
 *   cache_bytes             0..1099511627776 (1 TiB; 0 = no record cache)
 *   http_threads            2..4096
 *   probe_interval          1..3600 s
 *   anti_entropy_interval   1..86400 s
 *   tombstone_grace         60..315360000 s (10 years)
 *   peer_timeout_ms         100..60000
 *   cluster_secret          empty (= none) or 16..255 bytes; the first line
 *                           of cluster_secret_file likewise 16..255 bytes
 *   auth_tokens             up to 32 "read:TOKEN"/"write:TOKEN", 16..159
 *                           printable characters; need a cluster secret
 *   protected_mode          true | false
 * The upper bounds keep every seconds value * 1000 inside an int.
 *
 * Errors are one line: "FILE:LINE: KEY: REASON", "FILE:LINE: REASON" for
 * YAML syntax and structure, "FILE: REASON" when the file cannot be read.
 * Lines are 1-based.  Control characters that came from the input are
 * replaced by '?' so the message stays on one line.
 *
 * Threads: nothing here keeps state between calls (no globals); the filled
 * struct is read-only afterwards, so any thread may read it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "kvs.h"
#include "log.h"

/* ------------------------------------------------------------------ */
/* types                                                               */
/* ------------------------------------------------------------------ */

enum key_type {
	KT_INT,       /* int, plain decimal in [min, max] */
	KT_I64,       /* int64_t, likewise */
	KT_BOOL,      /* bool, plain true or false */
	KT_ENUM,      /* enum stored as int, one of names[] */
	KT_NODE_ID,   /* char[size], non-empty, [A-Za-z0-9._-] */
	KT_HOST,      /* char[size], non-empty IP address or host name */
	KT_HOSTPORT,  /* char[size], "host:port" */
	KT_PATH,      /* char[size], non-empty */
	KT_SECRET,    /* char[size], may be empty, never printed */
	KT_SEEDS,     /* seed_nodes[][] + seed_count */
	KT_FILE,      /* char[size], optional file path: empty = unset */
	KT_TOKENS,    /* auth_tokens[] + token_count: "read:TOKEN" or "write:TOKEN" */
};

/* Index of each key in keys[]; also the order of the default text. */
enum key_id {
	K_NODE_ID,
	K_BIND_ADDRESS,
	K_PORT,
	K_ADVERTISE_ADDRESS,
	K_DATA_DIR,
	K_SEED_NODES,
	K_READ_ONLY,
	K_LOG_LEVEL,
	K_GOSSIP_INTERVAL_MIN,
	K_GOSSIP_INTERVAL_MAX,
	K_SYNC_INTERVAL,
	K_SYNC_ITEMS,
	K_CATCHUP_INTERVAL,
	K_BOOTSTRAP_MAX_AGE_HOURS,
	K_THROTTLE_DELAY_MS,
	K_FETCH_DELAY_MS,
	K_FAILURE_TIMEOUT,
	K_REMOVAL_TIMEOUT,
	K_MAX_MEMBERS,
	K_MAX_VALUE_BYTES,
	K_HTTP_THREADS,
	K_SYNC_WRITES,
	K_CACHE_BYTES,
	K_LOG_FORMAT,
	K_PROBE_INTERVAL,
	K_ANTI_ENTROPY_INTERVAL,
	K_TOMBSTONE_GRACE,
	K_PEER_TIMEOUT_MS,
	K_HTTP_REQUEST_TIMEOUT_MS,
	K_HTTP_IDLE_TIMEOUT_MS,
	K_CLUSTER_SECRET,
	K_CLUSTER_SECRET_FILE,
	K_CLUSTER_ID,
	K_AUTH_TOKENS,
	K_PROTECTED_MODE,
	K_TLS_CERT_FILE,
	K_TLS_KEY_FILE,
	K_TLS_CA_FILE,
	K_TLS_VERIFY_PEER,
	K_COUNT
};

struct key_spec {
	const char *name;          /* YAML key == struct field name */
	enum key_type type;
	size_t off;                /* offsetof(struct kvs_config, field) */
	size_t size;               /* sizeof the field (buffer size for strings) */
	int64_t min, max;          /* KT_INT, KT_I64: inclusive range */
	const char *const *names;  /* KT_ENUM: NULL-terminated, index = value */
};

/* State of one config_parse() call. */
struct parse_ctx {
	struct kvs_config *cfg;    /* private copy being filled */
	const char *name;          /* file name for messages */
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	int line[K_COUNT];         /* 1-based line where each key was set, 0 = default */
};

/* ------------------------------------------------------------------ */
/* statics                                                             */
/* ------------------------------------------------------------------ */

#define CONFIG_FILE_MAX (1024 * 1024)  /* larger config files are refused */
#define PREVIEW_MAX 40                 /* bytes of a bad value quoted in messages */
#define MAX_VALUE_CAP (64 * 1024 * 1024)

_Static_assert(sizeof(enum log_level) == sizeof(int), "enum log_level is stored as int");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum log_format is stored as int");

static const char *const log_level_names[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_format_names[] = { "text", "json", NULL };

#define FIELD_SIZE(f) sizeof(((struct kvs_config *)0)->f)
#define ROW(id, f, t, lo, hi, nm) \
	[id] = { #f, t, offsetof(struct kvs_config, f), FIELD_SIZE(f), lo, hi, nm }
#define INT_KEY(id, f, lo, hi) ROW(id, f, KT_INT, lo, hi, NULL)
#define I64_KEY(id, f, lo, hi) ROW(id, f, KT_I64, lo, hi, NULL)
#define STR_KEY(id, f, t)      ROW(id, f, t, 0, 0, NULL)
#define ENUM_KEY(id, f, nm)    ROW(id, f, KT_ENUM, 0, 0, nm)

static const struct key_spec keys[K_COUNT] = {
	STR_KEY(K_NODE_ID, node_id, KT_NODE_ID),
	STR_KEY(K_BIND_ADDRESS, bind_address, KT_HOST),
	INT_KEY(K_PORT, port, 1, 65535),
	STR_KEY(K_ADVERTISE_ADDRESS, advertise_address, KT_HOSTPORT),
	STR_KEY(K_DATA_DIR, data_dir, KT_PATH),
	STR_KEY(K_SEED_NODES, seed_nodes, KT_SEEDS),
	ROW(K_READ_ONLY, read_only, KT_BOOL, 0, 0, NULL),
	ENUM_KEY(K_LOG_LEVEL, log_level, log_level_names),
	INT_KEY(K_GOSSIP_INTERVAL_MIN, gossip_interval_min, 1, 86400),
	INT_KEY(K_GOSSIP_INTERVAL_MAX, gossip_interval_max, 1, 86400),
	INT_KEY(K_SYNC_INTERVAL, sync_interval, 1, 86400),
	INT_KEY(K_SYNC_ITEMS, sync_items, 1, 10000),
	INT_KEY(K_CATCHUP_INTERVAL, catchup_interval, 1, 86400),
	INT_KEY(K_BOOTSTRAP_MAX_AGE_HOURS, bootstrap_max_age_hours, 1, 876000),
	INT_KEY(K_THROTTLE_DELAY_MS, throttle_delay_ms, 0, 60000),
	INT_KEY(K_FETCH_DELAY_MS, fetch_delay_ms, 0, 60000),
	INT_KEY(K_FAILURE_TIMEOUT, failure_timeout, 1, 604800),
	INT_KEY(K_REMOVAL_TIMEOUT, removal_timeout, 1, 604800),
	INT_KEY(K_MAX_MEMBERS, max_members, 2, CONFIG_MAX_MEMBERS),
	I64_KEY(K_MAX_VALUE_BYTES, max_value_bytes, 1, MAX_VALUE_CAP),
	INT_KEY(K_HTTP_THREADS, http_threads, 2, 4096),
	ROW(K_SYNC_WRITES, sync_writes, KT_BOOL, 0, 0, NULL),
	I64_KEY(K_CACHE_BYTES, cache_bytes, 0, 1LL << 40),
	ENUM_KEY(K_LOG_FORMAT, log_format, log_format_names),
	INT_KEY(K_PROBE_INTERVAL, probe_interval, 1, 3600),
	INT_KEY(K_ANTI_ENTROPY_INTERVAL, anti_entropy_interval, 1, 86400),
	I64_KEY(K_TOMBSTONE_GRACE, tombstone_grace, 60, 315360000),
	INT_KEY(K_PEER_TIMEOUT_MS, peer_timeout_ms, 100, 60000),
	INT_KEY(K_HTTP_REQUEST_TIMEOUT_MS, http_request_timeout_ms, 100, 600000),
	INT_KEY(K_HTTP_IDLE_TIMEOUT_MS, http_idle_timeout_ms, 100, 600000),
	STR_KEY(K_CLUSTER_SECRET, cluster_secret, KT_SECRET),
	STR_KEY(K_CLUSTER_SECRET_FILE, cluster_secret_file, KT_FILE),
	STR_KEY(K_CLUSTER_ID, cluster_id, KT_NODE_ID),
	STR_KEY(K_AUTH_TOKENS, auth_tokens, KT_TOKENS),
	ROW(K_PROTECTED_MODE, protected_mode, KT_BOOL, 0, 0, NULL),
	STR_KEY(K_TLS_CERT_FILE, tls_cert_file, KT_FILE),
	STR_KEY(K_TLS_KEY_FILE, tls_key_file, KT_FILE),
	STR_KEY(K_TLS_CA_FILE, tls_ca_file, KT_FILE),
	ROW(K_TLS_VERIFY_PEER, tls_verify_peer, KT_BOOL, 0, 0, NULL),
};

/*
 * The commented default config.  Every key appears with its default and one
 * comment line; keys whose default is computed (node_id, advertise_address)
 * or absent (cluster_secret) are commented out.  test_config checks that it
 * parses to config_defaults() and that config/kvs.yaml is this text.
 */
static const char default_text[] =
	"# kvs configuration (YAML).\n"
	"#\n"
	"# Every key is optional: the values below are the defaults.  An unknown key,\n"
	"# a wrong type or an out-of-range value stops the node with exit status 2\n"
	"# and one line naming file, line and key.  Check a file with\n"
	"# `kvs --check-config FILE`.  Durations are in seconds unless named _ms.\n"
	"\n"
	"# Unique name of this node in the cluster, 1..127 of [A-Za-z0-9._-]; defaults to the hostname.\n"
	"# node_id: myhost\n"
	"\n"
	"# Address the HTTP server binds (0.0.0.0 = all interfaces); outside 127.0.0.0/8 it needs cluster_secret.\n"
	"bind_address: 127.0.0.1\n"
	"\n"
	"# HTTP port, for clients and peers alike, 1..65535.\n"
	"port: 8080\n"
	"\n"
	"# \"host:port\" peers use to reach this node; defaults to bind_address:port (set it when binding 0.0.0.0).\n"
	"# advertise_address: 127.0.0.1:8080\n"
	"\n"
	"# RocksDB directory, created if missing.\n"
	"data_dir: ./data\n"
	"\n"
	"# Nodes to join through, \"host:port\" or \"http(s)://host:port\", e.g. [\"10.0.0.2:8080\"]; empty = standalone.\n"
	"seed_nodes: []\n"
	"\n"
	"# true: reject client writes with 403, still accept replication from peers.\n"
	"read_only: false\n"
	"\n"
	"# Log verbosity: debug, info, warn or error.\n"
	"log_level: info\n"
	"\n"
	"# Shortest pause between gossip rounds (drawn at random up to gossip_interval_max), 1..86400.\n"
	"gossip_interval_min: 60\n"
	"\n"
	"# Longest pause between gossip rounds, 1..86400, not below gossip_interval_min.\n"
	"gossip_interval_max: 120\n"
	"\n"
	"# Seconds between regular syncs of recent items with a random peer, 1..86400.\n"
	"sync_interval: 300\n"
	"\n"
	"# How many most recent items a regular sync compares, 1..10000.\n"
	"sync_items: 15\n"
	"\n"
	"# Seconds between catch-up syncs while this node is behind, 1..86400.\n"
	"catchup_interval: 120\n"
	"\n"
	"# How far back (hours) a joining node fetches history, 1..876000.\n"
	"bootstrap_max_age_hours: 720\n"
	"\n"
	"# Pause between sync requests to one peer, in milliseconds, 0..60000.\n"
	"throttle_delay_ms: 100\n"
	"\n"
	"# Pause between item fetches, in milliseconds, 0..60000.\n"
	"fetch_delay_ms: 50\n"
	"\n"
	"# Seconds unheard before a member is reported unhealthy, 1..604800, below removal_timeout.\n"
	"failure_timeout: 300\n"
	"\n"
	"# Seconds unheard before a member is dropped, 1..604800.\n"
	"removal_timeout: 600\n"
	"\n"
	"# Most members the member table holds, this node included (new ones past it are refused), 2..4096.\n"
	"max_members: 1024\n"
	"\n"
	"# Largest accepted value in bytes (larger bodies get 413), 1..67108864.\n"
	"max_value_bytes: 1048576\n"
	"\n"
	"# HTTP worker threads = cap on concurrent keep-alive connections, 2..4096.\n"
	"http_threads: 128\n"
	"\n"
	"# true: fsync each write, so it survives power loss and not only a crash.\n"
	"sync_writes: false\n"
	"\n"
	"# Bytes of recently read or written records kept in memory in front of RocksDB\n"
	"# (0 turns the cache off), 0..1099511627776.\n"
	"cache_bytes: 67108864\n"
	"\n"
	"# Log format: text, or json (one object per line).\n"
	"log_format: text\n"
	"\n"
	"# Seconds between failure-detection probes, 1..3600.\n"
	"probe_interval: 1\n"
	"\n"
	"# Seconds between full-keyspace digest comparisons with a random peer, 1..86400.\n"
	"anti_entropy_interval: 30\n"
	"\n"
	"# Seconds a delete marker is kept before it is purged, 60..315360000.\n"
	"tombstone_grace: 604800\n"
	"\n"
	"# Total timeout of one request to a peer, in milliseconds, 100..60000.\n"
	"peer_timeout_ms: 2000\n"
	"\n"
	"# A client must send a whole request (headers and body) within this, in ms, 100..600000.\n"
	"http_request_timeout_ms: 10000\n"
	"\n"
	"# An idle keep-alive connection is closed after this, in ms, 100..600000 (frees its worker).\n"
	"http_idle_timeout_ms: 5000\n"
	"\n"
	"# Shared secret every peer must present, 16..255 bytes (openssl rand -hex 32); needed by auth_tokens.\n"
	"# cluster_secret: change-me-to-a-long-random-string\n"
	"\n"
	"# File holding the cluster secret instead (keeps it out of this file); not with cluster_secret.\n"
	"# cluster_secret_file: /etc/kvs/cluster.secret\n"
	"\n"
	"# Name of the cluster: a peer of another cluster_id is refused, so two clusters never merge.\n"
	"cluster_id: kvs\n"
	"\n"
	"# Client bearer tokens, \"read:TOKEN\" or \"write:TOKEN\" (write includes read); none = open API.\n"
	"auth_tokens: []\n"
	"\n"
	"# true: refuse to start on a non-loopback bind_address without cluster_secret or auth_tokens.\n"
	"protected_mode: true\n"
	"\n"
	"# HTTPS: PEM certificate (chain) and private key; set both to serve TLS to clients and peers.\n"
	"# tls_cert_file: /etc/kvs/node.crt\n"
	"# tls_key_file: /etc/kvs/node.key\n"
	"\n"
	"# CA certificate that signs the peers' certificates (checked on every peer connection).\n"
	"# tls_ca_file: /etc/kvs/ca.crt\n"
	"\n"
	"# true: require a client certificate signed by tls_ca_file (mutual TLS); clients need one too.\n"
	"tls_verify_peer: false\n";

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int key_err(struct parse_ctx *ctx, int line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int yaml_err(struct parse_ctx *ctx, const yaml_parser_t *p, const char *text,
		    size_t len);
static void default_node_id(char *buf, size_t size);
static void fill_advertise(struct kvs_config *cfg);
static int apply_root(struct parse_ctx *ctx, yaml_node_t *root);
static int apply_pair(struct parse_ctx *ctx, yaml_node_t *kn, yaml_node_t *vn);
static int apply_seeds(struct parse_ctx *ctx, const struct key_spec *ks, yaml_node_t *vn,
		       int line);
static int apply_tokens(struct parse_ctx *ctx, const struct key_spec *ks, yaml_node_t *vn,
			int line);
static int check_cross(struct parse_ctx *ctx);
static void print_quoted(FILE *f, const char *s);
static bool is_id_char(int c);
static bool parse_ipv4(const char *s, size_t len, unsigned char out[4]);
static const char *host_problem(const char *h, size_t len);

/* ------------------------------------------------------------------ */
/* public API                                                          */
/* ------------------------------------------------------------------ */

/* Fills cfg with every default (SPEC section 2); node_id is the hostname. */
void config_defaults(struct kvs_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	default_node_id(cfg->node_id, sizeof(cfg->node_id));
	strcpy(cfg->bind_address, "127.0.0.1");
	cfg->port = 8080;
	strcpy(cfg->data_dir, "./data");
	cfg->seed_count = 0;
	cfg->read_only = false;
	cfg->log_level = LOG_INFO;
	cfg->log_format = LOG_FORMAT_TEXT;
	cfg->gossip_interval_min = 60;
	cfg->gossip_interval_max = 120;
	cfg->sync_interval = 300;
	cfg->sync_items = 15;
	cfg->catchup_interval = 120;
	cfg->bootstrap_max_age_hours = 720;
	cfg->throttle_delay_ms = 100;
	cfg->fetch_delay_ms = 50;
	cfg->failure_timeout = 300;
	cfg->removal_timeout = 600;
	cfg->max_members = 1024;
	cfg->max_value_bytes = 1048576;
	cfg->http_threads = 128;
	cfg->sync_writes = false;
	cfg->cache_bytes = 64 << 20;
	cfg->probe_interval = 1;
	cfg->anti_entropy_interval = 30;
	cfg->tombstone_grace = 604800;
	cfg->peer_timeout_ms = 2000;
	cfg->http_request_timeout_ms = 10000;
	cfg->http_idle_timeout_ms = 5000;
	strcpy(cfg->cluster_id, "kvs");
	cfg->protected_mode = true;
	fill_advertise(cfg);
}

/*
 * Reads cluster_secret_file into cluster_secret: the first line, without
 * trailing whitespace; it must hold CONFIG_SECRET_MIN bytes and fit.
 */
static int read_secret_file(struct kvs_config *cfg, const char *path, char *err, size_t errlen)
{
	char buf[sizeof(cfg->cluster_secret) + 2];
	FILE *f = fopen(cfg->cluster_secret_file, "re");
	size_t n;

	if (!f) {
		set_err(err, errlen, "%s: cluster_secret_file: cannot read %s: %s", path,
			cfg->cluster_secret_file, strerror(errno));
		return KVS_EINVAL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	n = strlen(buf);
	while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	if (n < CONFIG_SECRET_MIN || n >= sizeof(cfg->cluster_secret)) {
		set_err(err, errlen, "%s: cluster_secret_file: %s must hold %d to %zu bytes on its "
			"first line", path, cfg->cluster_secret_file, CONFIG_SECRET_MIN,
			sizeof(cfg->cluster_secret) - 1);
		return KVS_EINVAL;
	}
	memcpy(cfg->cluster_secret, buf, n + 1);
	return 0;
}

/*
 * Reads the file at path (at most CONFIG_FILE_MAX bytes) and hands it to
 * config_parse().  KVS_EIO when it cannot be read, KVS_EINVAL when too big.
 */
int config_load(struct kvs_config *cfg, const char *path, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 4096;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return KVS_EIO;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "%s: cannot read: %s", path, strerror(EISDIR));
		rc = KVS_EIO;
		goto out_close;
	}
	buf = malloc(cap);
	if (!buf)
		goto out_nomem;
	for (;;) {
		if (len == cap) {
			if (cap > CONFIG_FILE_MAX) {
				set_err(err, errlen, "%s: larger than %d bytes", path,
					CONFIG_FILE_MAX);
				rc = KVS_EINVAL;
				goto out_free;
			}
			nbuf = realloc(buf, cap * 2);
			if (!nbuf)
				goto out_nomem;
			buf = nbuf;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			rc = KVS_EIO;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONFIG_FILE_MAX) {
		set_err(err, errlen, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
		rc = KVS_EINVAL;
		goto out_free;
	}
	rc = config_parse(cfg, path, buf, len, err, errlen);
	if (rc == 0 && cfg->cluster_secret_file[0])
		rc = read_secret_file(cfg, path, err, errlen);
	goto out_free;

out_nomem:
	set_err(err, errlen, "%s: out of memory", path);
	rc = KVS_ENOMEM;
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

/*
 * Parses text (len bytes, need not be NUL-terminated) into cfg.  cfg is
 * written only on success.  Returns 0, KVS_EINVAL with a one-line message,
 * or KVS_ENOMEM if libyaml runs out of memory.
 */
int config_parse(struct kvs_config *cfg, const char *name, const char *text, size_t len,
		 char *err, size_t errlen)
{
	struct kvs_config tmp;
	struct parse_ctx ctx;
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	yaml_node_t *root, *next;
	int rc;

	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = &tmp;
	ctx.name = name ? name : "<config>";
	ctx.doc = &doc;
	ctx.err = err;
	ctx.errlen = errlen;
	config_defaults(&tmp);

	if (!yaml_parser_initialize(&parser)) {
		set_err(err, errlen, "%s: out of memory", ctx.name);
		return KVS_ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = yaml_err(&ctx, &parser, text, len);
		goto out_parser;
	}
	root = yaml_document_get_root_node(&doc);
	if (root) {
		/* A second document would be silently ignored: refuse it. */
		if (!yaml_parser_load(&parser, &extra)) {
			rc = yaml_err(&ctx, &parser, text, len);
			goto out_doc;
		}
		next = yaml_document_get_root_node(&extra);
		if (next) {
			set_err(err, errlen, "%s:%zu: more than one YAML document", ctx.name,
				next->start_mark.line + 1);
			yaml_document_delete(&extra);
			rc = KVS_EINVAL;
			goto out_doc;
		}
		yaml_document_delete(&extra);
	}

	rc = apply_root(&ctx, root);
	if (rc)
		goto out_doc;
	rc = check_cross(&ctx);
	if (rc)
		goto out_doc;
	if (!ctx.line[K_ADVERTISE_ADDRESS])
		fill_advertise(&tmp);
	memcpy(cfg, &tmp, sizeof(tmp));

out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	return rc;
}

/*
 * Creates path (O_EXCL, mode 0644 less the umask) holding the default text.
 * An existing file is never touched; a half-written file is removed.
 */
int config_write_default(const char *path, char *err, size_t errlen)
{
	const char *p = default_text;
	size_t left = sizeof(default_text) - 1;
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		set_err(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		return KVS_EIO;
	}
	while (left > 0) {
		n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out_unlink;
		p += n;
		left -= (size_t)n;
	}
	if (fsync(fd) != 0)
		goto out_unlink;
	if (close(fd) != 0) {
		fd = -1;
		goto out_unlink;
	}
	return 0;

out_unlink:
	set_err(err, errlen, "%s: cannot write: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(path);
	return KVS_EIO;
}

const char *config_default_text(void)
{
	return default_text;
}

/*
 * Prints every key in table order as YAML that config_parse() reads back to
 * the same settings, except cluster_secret, which is shown only as a
 * comment saying whether it is set, and auth_tokens, shown only as a count.
 * A config that needs its secret (protected mode on a non-loopback
 * bind_address) therefore reads back only once the secret is added again.
 */
void config_print(const struct kvs_config *cfg, FILE *f)
{
	const char *base = (const char *)cfg;
	const struct key_spec *ks;
	int i, j, v;

	fprintf(f, "# kvs effective configuration\n");
	for (i = 0; i < K_COUNT; i++) {
		ks = &keys[i];
		switch (ks->type) {
		case KT_INT:
			fprintf(f, "%s: %d\n", ks->name, *(const int *)(base + ks->off));
			break;
		case KT_I64:
			fprintf(f, "%s: %" PRId64 "\n", ks->name,
				*(const int64_t *)(base + ks->off));
			break;
		case KT_BOOL:
			fprintf(f, "%s: %s\n", ks->name,
				*(const bool *)(base + ks->off) ? "true" : "false");
			break;
		case KT_ENUM:
			j = *(const int *)(base + ks->off);
			for (v = 0; ks->names[v] && v != j; v++)
				;
			fprintf(f, "%s: %s\n", ks->name, ks->names[v] ? ks->names[v] : "?");
			break;
		case KT_NODE_ID:
		case KT_HOST:
		case KT_HOSTPORT:
		case KT_PATH:
			fprintf(f, "%s: ", ks->name);
			print_quoted(f, base + ks->off);
			fputc('\n', f);
			break;
		case KT_SECRET:
			fprintf(f, "# %s: %s\n", ks->name,
				(base + ks->off)[0] ? "(set, not shown)" : "(none)");
			break;
		case KT_FILE:
			if (!(base + ks->off)[0]) {
				fprintf(f, "# %s: (none)\n", ks->name);
				break;
			}
			fprintf(f, "%s: ", ks->name);
			print_quoted(f, base + ks->off);
			fputc('\n', f);
			break;
		case KT_TOKENS:
			fprintf(f, "# %s: %d token(s), not shown\n", ks->name, cfg->token_count);
			break;
		case KT_SEEDS:
			if (cfg->seed_count == 0) {
				fprintf(f, "%s: []\n", ks->name);
				break;
			}
			fprintf(f, "%s:\n", ks->name);
			for (j = 0; j < cfg->seed_count; j++) {
				fputs("  - ", f);
				print_quoted(f, cfg->seed_nodes[j]);
				fputc('\n', f);
			}
			break;
		}
	}
}

/*
 * Protected mode's test: a non-loopback bind_address, no cluster secret
 * (inline or from a file) and no client tokens.
 */
bool config_is_open(const struct kvs_config *cfg)
{
	return !config_host_is_loopback(cfg->bind_address) && !cfg->cluster_secret[0] &&
	       !cfg->cluster_secret_file[0] && cfg->token_count == 0;
}

/* The one warning a valid config can earn; logged once at start. */
void config_log_warnings(const struct kvs_config *cfg)
{
	if (!cfg->protected_mode && config_is_open(cfg))
		log_warn("protected_mode_off",
			 "bind_address=%s note=\"protected_mode is false: the data API and the peer "
			 "endpoints are open to anyone who can reach this address; set "
			 "cluster_secret and auth_tokens\"", cfg->bind_address);
}

bool config_node_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CONFIG_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_id_char((unsigned char)s[i]))
			return false;
	return true;
}

bool config_host_valid(const char *host)
{
	return host_problem(host, strlen(host)) == NULL;
}

bool config_host_is_loopback(const char *host)
{
	unsigned char ip[4];

	return parse_ipv4(host, strlen(host), ip) && ip[0] == 127;
}

/*
 * "host:port", or with allow_scheme also "http(s)://host:port" (scheme in
 * any case, as curl takes it).  Messages are fixed strings: callers quote
 * the value themselves.
 */
const char *config_address_problem(const char *s, bool allow_scheme)
{
	const char *colon, *p, *why;
	long port = 0;

	if (strlen(s) >= CONFIG_ADDR_MAX)
		return "address longer than 255 bytes";
	if (allow_scheme) {
		if (!strncasecmp(s, "http://", 7))
			s += 7;
		else if (!strncasecmp(s, "https://", 8))
			s += 8;
	}
	if (strstr(s, "://"))
		return allow_scheme ? "scheme must be http:// or https://"
				    : "expected \"host:port\" without a scheme";
	if (*s == '[')
		return "IPv6 addresses are not supported (Debian's civetweb has no IPv6)";
	colon = strrchr(s, ':');
	if (!colon)
		return "expected \"host:port\"";
	if (colon == s)
		return "missing host in \"host:port\"";
	why = host_problem(s, (size_t)(colon - s));
	if (why)
		return why;
	p = colon + 1;
	if (!*p)
		return "missing port in \"host:port\"";
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return "port must be a number 1..65535";
		port = port * 10 + (*p - '0');
		if (port > 65535)
			return "port must be a number 1..65535";
	}
	if (port < 1)
		return "port must be a number 1..65535";
	return NULL;
}

bool config_address_valid(const char *s)
{
	return config_address_problem(s, false) == NULL;
}

/* ------------------------------------------------------------------ */
/* internals                                                           */
/* ------------------------------------------------------------------ */

/* Formats a message into err, keeping it on one line. */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
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

/* "FILE:LINE: KEY: REASON" (or "FILE: KEY: REASON" for line 0); returns KVS_EINVAL. */
static int key_err(struct parse_ctx *ctx, int line, const char *key, const char *fmt, ...)
{
	char reason[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0)
		set_err(ctx->err, ctx->errlen, "%s:%d: %.64s: %s", ctx->name, line, key, reason);
	else
		set_err(ctx->err, ctx->errlen, "%s: %.64s: %s", ctx->name, key, reason);
	return KVS_EINVAL;
}

/* Reports a libyaml reader, scanner or parser error as "FILE:LINE: REASON". */
static int yaml_err(struct parse_ctx *ctx, const yaml_parser_t *p, const char *text,
		    size_t len)
{
	const char *problem = p->problem ? p->problem : "syntax error";
	size_t line = 1, i;

	if (p->error == YAML_MEMORY_ERROR) {
		set_err(ctx->err, ctx->errlen, "%s: out of memory", ctx->name);
		return KVS_ENOMEM;
	}
	if (p->error == YAML_READER_ERROR) {
		/* Reader errors (bad encoding) carry a byte offset, not a mark. */
		for (i = 0; i < p->problem_offset && i < len; i++)
			if (text[i] == '\n')
				line++;
	} else {
		line = p->problem_mark.line + 1;
	}
	if (p->context)
		set_err(ctx->err, ctx->errlen, "%s:%zu: invalid YAML: %s %s", ctx->name, line,
			problem, p->context);
	else
		set_err(ctx->err, ctx->errlen, "%s:%zu: invalid YAML: %s", ctx->name, line,
			problem);
	return KVS_EINVAL;
}

/* ASCII only, whatever the locale says isalnum() is. */
static bool is_ascii_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_id_char(int c)
{
	return is_ascii_alnum(c) || c == '.' || c == '_' || c == '-';
}

/*
 * Parses exactly len bytes as an IPv4 dotted quad: four decimal numbers
 * 0..255 without leading zeros (inet_aton would read "010" as octal).
 * Fills out (if not NULL) and returns true, or returns false.
 */
static bool parse_ipv4(const char *s, size_t len, unsigned char out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
			if (digits == 1 && v == 0)
				return false; /* leading zero */
			v = v * 10 + (unsigned)(s[i] - '0');
			if (v > 255)
				return false;
		}
		if (digits == 0)
			return false;
		if (out)
			out[part] = (unsigned char)v;
	}
	return i == len;
}

/* NULL, or what is wrong with the host h[0..len) (rules at config_host_valid). */
static const char *host_problem(const char *h, size_t len)
{
	size_t label = 0;
	bool digits_only = true;

	if (len == 0)
		return "missing host";
	if (len > 253)
		return "host name longer than 253 characters";
	for (size_t i = 0; i <= len; i++) {
		int c = i < len ? (unsigned char)h[i] : '.';

		if (c == '.') {
			if (label == 0)
				return "empty label in host name";
			if (h[i - 1] == '-')
				return "host name labels must not start or end with '-'";
			if (i == len && digits_only)
				return parse_ipv4(h, len, NULL) ? NULL
				       : "invalid IPv4 address (four numbers 0..255)";
			label = 0;
			digits_only = true;
			continue;
		}
		if (c == ':')
			return "IPv6 addresses are not supported (Debian's civetweb has no IPv6)";
		if (!is_ascii_alnum(c) && c != '-')
			return "invalid character in host";
		if (label == 0 && c == '-')
			return "host name labels must not start or end with '-'";
		if (c < '0' || c > '9')
			digits_only = false;
		if (++label > 63)
			return "host name label longer than 63 characters";
	}
	return NULL;
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
		buf[i] = is_id_char((unsigned char)host[i]) ? host[i] : '-';
	buf[i] = '\0';
	if (i == 0)
		snprintf(buf, size, "kvs");
}

/* advertise_address = bind_address:port (bind_address is never IPv6). */
static void fill_advertise(struct kvs_config *cfg)
{
	char *a = cfg->advertise_address;
	size_t n = sizeof(cfg->advertise_address);

	memset(a, 0, n);
	snprintf(a, n, "%s:%d", cfg->bind_address, cfg->port);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static bool is_null(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = scalar(n);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

static const char *node_kind(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a sequence";
	default:
		return "a scalar";
	}
}

/* A short, quoted copy of a scalar for messages. */
static const char *preview(const yaml_node_t *n, char *buf, size_t size)
{
	const char *s = scalar(n);

	if (strlen(s) > PREVIEW_MAX)
		snprintf(buf, size, "\"%.*s...\"", PREVIEW_MAX, s);
	else
		snprintf(buf, size, "\"%s\"", s);
	return buf;
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

/* Applies every pair of the top-level mapping; an empty document is all defaults. */
static int apply_root(struct parse_ctx *ctx, yaml_node_t *root)
{
	yaml_node_pair_t *pair;
	yaml_node_t *kn, *vn;
	int rc;

	if (!root || is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE) {
		set_err(ctx->err, ctx->errlen, "%s:%zu: top level must be a mapping of keys, got %s",
			ctx->name, root->start_mark.line + 1, node_kind(root));
		return KVS_EINVAL;
	}
	for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		kn = yaml_document_get_node(ctx->doc, pair->key);
		vn = yaml_document_get_node(ctx->doc, pair->value);
		rc = apply_pair(ctx, kn, vn);
		if (rc)
			return rc;
	}
	return 0;
}

/* Checks one "key: value" pair against keys[] and stores the value. */
static int apply_pair(struct parse_ctx *ctx, yaml_node_t *kn, yaml_node_t *vn)
{
	char *base = (char *)ctx->cfg;
	const struct key_spec *ks = NULL;
	const char *key, *s, *why;
	char pv[PREVIEW_MAX + 8], choices[128];
	int kline = (int)kn->start_mark.line + 1, vline, i;
	long long n;
	size_t len;

	if (kn->type != YAML_SCALAR_NODE) {
		set_err(ctx->err, ctx->errlen, "%s:%d: keys must be scalars, got %s", ctx->name,
			kline, node_kind(kn));
		return KVS_EINVAL;
	}
	key = scalar(kn);
	for (i = 0; i < K_COUNT; i++) {
		if (strlen(key) == kn->data.scalar.length && !strcmp(key, keys[i].name)) {
			ks = &keys[i];
			break;
		}
	}
	if (!ks)
		return key_err(ctx, kline, key, "unknown key");
	if (ctx->line[i])
		return key_err(ctx, kline, key, "duplicate key (first set on line %d)",
			       ctx->line[i]);
	ctx->line[i] = kline;

	if (ks->type == KT_SEEDS)
		return apply_seeds(ctx, ks, vn, kline);
	if (ks->type == KT_TOKENS)
		return apply_tokens(ctx, ks, vn, kline);
	if (is_null(vn))
		return key_err(ctx, kline, key, "missing value");
	if (vn->type != YAML_SCALAR_NODE)
		return key_err(ctx, kline, key, "expected a scalar, got %s", node_kind(vn));

	vline = (int)vn->start_mark.line + 1;
	s = scalar(vn);
	len = vn->data.scalar.length;
	if (strlen(s) != len)
		return key_err(ctx, vline, key, "contains a NUL byte");

	switch (ks->type) {
	case KT_INT:
	case KT_I64:
		if (vn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !is_decimal(s))
			return key_err(ctx, vline, key, "expected an integer, got %s",
				       preview(vn, pv, sizeof(pv)));
		errno = 0;
		n = strtoll(s, NULL, 10);
		if (errno == ERANGE || n < ks->min || n > ks->max)
			return key_err(ctx, vline, key,
				       "must be between %" PRId64 " and %" PRId64 ", got %s",
				       ks->min, ks->max, preview(vn, pv, sizeof(pv)));
		if (ks->type == KT_INT)
			*(int *)(base + ks->off) = (int)n;
		else
			*(int64_t *)(base + ks->off) = (int64_t)n;
		return 0;
	case KT_BOOL:
		if (vn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
		    (strcmp(s, "true") && strcmp(s, "false")))
			return key_err(ctx, vline, key, "expected true or false, got %s",
				       preview(vn, pv, sizeof(pv)));
		*(bool *)(base + ks->off) = !strcmp(s, "true");
		return 0;
	case KT_ENUM:
		for (i = 0; ks->names[i]; i++) {
			if (!strcmp(s, ks->names[i])) {
				*(int *)(base + ks->off) = i;
				return 0;
			}
		}
		return key_err(ctx, vline, key, "expected %s, got %s",
			       enum_choices(ks->names, choices, sizeof(choices)),
			       preview(vn, pv, sizeof(pv)));
	default:
		break;
	}

	/* Strings. */
	if (len >= ks->size)
		return key_err(ctx, vline, key, "longer than %zu bytes", ks->size - 1);
	if (len == 0 && ks->type != KT_SECRET)
		return key_err(ctx, vline, key, "must not be empty");
	switch (ks->type) {
	case KT_NODE_ID:
		if (!config_node_id_valid(s))
			return key_err(ctx, vline, key,
				       "may only contain A-Z a-z 0-9 . _ -, got %s",
				       preview(vn, pv, sizeof(pv)));
		break;
	case KT_HOST:
		/* IPv4 or a host name: Debian's civetweb is built without IPv6 */
		if (!config_host_valid(s))
			return key_err(ctx, vline, key,
				       "expected an IPv4 address or host name, got %s",
				       preview(vn, pv, sizeof(pv)));
		break;
	case KT_HOSTPORT:
		why = config_address_problem(s, false);
		if (why)
			return key_err(ctx, vline, key, "%s, got %s", why,
				       preview(vn, pv, sizeof(pv)));
		break;
	case KT_SECRET:
		/* never quoted back: it is a secret */
		if (len > 0 && len < CONFIG_SECRET_MIN)
			return key_err(ctx, vline, key,
				       "must be at least %d bytes, got %zu (e.g. openssl rand -hex 32)",
				       CONFIG_SECRET_MIN, len);
		break;
	default:
		break;
	}
	memset(base + ks->off, 0, ks->size);
	memcpy(base + ks->off, s, len);
	return 0;
}

/* seed_nodes: a sequence of addresses; null or [] means none. */
static int apply_seeds(struct parse_ctx *ctx, const struct key_spec *ks, yaml_node_t *vn,
		       int line)
{
	struct kvs_config *cfg = ctx->cfg;
	yaml_node_item_t *item;
	yaml_node_t *en;
	const char *why;
	char pv[PREVIEW_MAX + 8];
	size_t len;
	int eline;

	if (is_null(vn))
		return 0;
	if (vn->type != YAML_SEQUENCE_NODE)
		return key_err(ctx, line, ks->name,
			       "expected a sequence of \"host:port\" strings, got %s",
			       node_kind(vn));
	for (item = vn->data.sequence.items.start; item < vn->data.sequence.items.top; item++) {
		en = yaml_document_get_node(ctx->doc, *item);
		eline = (int)en->start_mark.line + 1;
		if (en->type != YAML_SCALAR_NODE || is_null(en))
			return key_err(ctx, eline, ks->name,
				       "entries must be \"host:port\" strings");
		if (cfg->seed_count == CONFIG_MAX_SEEDS)
			return key_err(ctx, eline, ks->name, "more than %d entries",
				       CONFIG_MAX_SEEDS);
		len = en->data.scalar.length;
		if (strlen(scalar(en)) != len)
			return key_err(ctx, eline, ks->name, "contains a NUL byte");
		if (len >= CONFIG_ADDR_MAX)
			return key_err(ctx, eline, ks->name, "entry longer than %d bytes",
				       CONFIG_ADDR_MAX - 1);
		why = config_address_problem(scalar(en), true);
		if (why)
			return key_err(ctx, eline, ks->name, "%s, got %s", why,
				       preview(en, pv, sizeof(pv)));
		memset(cfg->seed_nodes[cfg->seed_count], 0, CONFIG_ADDR_MAX);
		memcpy(cfg->seed_nodes[cfg->seed_count], scalar(en), len);
		cfg->seed_count++;
	}
	return 0;
}

/* Of two keys, the one set later in the file: the one to blame. */
static enum key_id later(const struct parse_ctx *ctx, enum key_id a, enum key_id b)
{
	return ctx->line[b] >= ctx->line[a] ? b : a;
}

/* Rules between keys, checked once every key is known. */
static int check_cross(struct parse_ctx *ctx)
{
	const struct kvs_config *cfg = ctx->cfg;
	enum key_id k;

	if (cfg->gossip_interval_min > cfg->gossip_interval_max) {
		k = later(ctx, K_GOSSIP_INTERVAL_MIN, K_GOSSIP_INTERVAL_MAX);
		return key_err(ctx, ctx->line[k], keys[k].name,
			       "gossip_interval_min (%d) exceeds gossip_interval_max (%d)",
			       cfg->gossip_interval_min, cfg->gossip_interval_max);
	}
	if (cfg->failure_timeout >= cfg->removal_timeout) {
		k = later(ctx, K_FAILURE_TIMEOUT, K_REMOVAL_TIMEOUT);
		return key_err(ctx, ctx->line[k], keys[k].name,
			       "failure_timeout (%d) must be below removal_timeout (%d)",
			       cfg->failure_timeout, cfg->removal_timeout);
	}
	if (cfg->cluster_secret[0] && cfg->cluster_secret_file[0])
		return key_err(ctx, ctx->line[later(ctx, K_CLUSTER_SECRET, K_CLUSTER_SECRET_FILE)],
			       keys[later(ctx, K_CLUSTER_SECRET, K_CLUSTER_SECRET_FILE)].name,
			       "set cluster_secret or cluster_secret_file, not both");
	if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0]) {
		k = cfg->tls_cert_file[0] ? K_TLS_CERT_FILE : K_TLS_KEY_FILE;
		return key_err(ctx, ctx->line[k], keys[k].name,
			       "tls_cert_file and tls_key_file go together");
	}
	if ((cfg->tls_ca_file[0] || cfg->tls_verify_peer) && !cfg->tls_cert_file[0]) {
		k = cfg->tls_ca_file[0] ? K_TLS_CA_FILE : K_TLS_VERIFY_PEER;
		return key_err(ctx, ctx->line[k], keys[k].name, "needs tls_cert_file and tls_key_file");
	}
	if (cfg->tls_verify_peer && !cfg->tls_ca_file[0])
		return key_err(ctx, ctx->line[K_TLS_VERIFY_PEER], keys[K_TLS_VERIFY_PEER].name,
			       "needs tls_ca_file to check client certificates against");
	if (cfg->token_count > 0 && !cfg->cluster_secret[0] && !cfg->cluster_secret_file[0])
		return key_err(ctx, ctx->line[K_AUTH_TOKENS], keys[K_AUTH_TOKENS].name,
			       "auth_tokens need cluster_secret (or cluster_secret_file): without it "
			       "the peer endpoints under /members/ are open to anyone");
	if (cfg->protected_mode && config_is_open(cfg))
		return key_err(ctx, ctx->line[K_BIND_ADDRESS], keys[K_BIND_ADDRESS].name,
			       "%s is not a loopback address and neither cluster_secret nor "
			       "auth_tokens is set (protected mode): set cluster_secret or "
			       "cluster_secret_file (and auth_tokens for clients), or "
			       "protected_mode: false to serve it open to the network",
			       cfg->bind_address);
	return 0;
}

/*
 * auth_tokens: a sequence of "read:TOKEN" or "write:TOKEN"; null or [] means
 * none (the API stays open).  Tokens are 16 to CONFIG_TOKEN_MAX - 1 printable
 * ASCII characters without spaces, so they fit an Authorization header.
 */
static int apply_tokens(struct parse_ctx *ctx, const struct key_spec *ks, yaml_node_t *vn,
			int line)
{
	struct kvs_config *cfg = ctx->cfg;
	yaml_node_item_t *item;

	if (is_null(vn))
		return 0;
	if (vn->type != YAML_SEQUENCE_NODE)
		return key_err(ctx, line, ks->name,
			       "expected a sequence of \"read:TOKEN\" or \"write:TOKEN\" strings");
	for (item = vn->data.sequence.items.start; item < vn->data.sequence.items.top; item++) {
		yaml_node_t *en = yaml_document_get_node(ctx->doc, *item);
		int eline = (int)en->start_mark.line + 1;
		const char *s, *tok;
		size_t len;
		bool write;

		if (en->type != YAML_SCALAR_NODE || is_null(en))
			return key_err(ctx, eline, ks->name, "entries must be strings");
		if (cfg->token_count == CONFIG_MAX_TOKENS)
			return key_err(ctx, eline, ks->name, "more than %d entries",
				       CONFIG_MAX_TOKENS);
		s = scalar(en);
		if (strlen(s) != en->data.scalar.length)
			return key_err(ctx, eline, ks->name, "contains a NUL byte");
		if (!strncmp(s, "read:", 5))
			tok = s + 5, write = false;
		else if (!strncmp(s, "write:", 6))
			tok = s + 6, write = true;
		else
			return key_err(ctx, eline, ks->name,
				       "entries must start with \"read:\" or \"write:\"");
		len = strlen(tok);
		if (len < 16 || len >= CONFIG_TOKEN_MAX)
			return key_err(ctx, eline, ks->name, "tokens must be 16 to %d characters",
				       CONFIG_TOKEN_MAX - 1);
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
				return key_err(ctx, eline, ks->name,
					       "tokens are printable ASCII without spaces");
		memcpy(cfg->auth_tokens[cfg->token_count].token, tok, len + 1);
		cfg->auth_tokens[cfg->token_count].write = write;
		cfg->token_count++;
	}
	return 0;
}

/*
 * A double-quoted YAML scalar; escapes quotes, backslashes, control bytes,
 * and the characters YAML would refuse or fold inside quotes if written raw:
 * C1 controls (U+0080..U+009F, NEL among them) and U+2028/U+2029.
 */
static void print_quoted(FILE *f, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	fputc('"', f);
	for (; *u; u++) {
		if (*u == '"' || *u == '\\')
			fprintf(f, "\\%c", *u);
		else if (*u < 0x20 || *u == 0x7f)
			fprintf(f, "\\x%02x", *u);
		else if (u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f)
			fprintf(f, "\\u%04x", u[1]), u++;
		else if (u[0] == 0xe2 && u[1] == 0x80 && (u[2] == 0xa8 || u[2] == 0xa9))
			fprintf(f, "\\u%04x", 0x2000 + (u[2] - 0x80)), u += 2;
		else
			fputc(*u, f);
	}
	fputc('"', f);
}
