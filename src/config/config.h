/*
 * config.h - the node's YAML configuration (SPEC section 2).
 *
 * config_load() parses a YAML mapping with libyaml into struct kvs_config,
 * starting from the defaults, and validates every key: unknown keys, wrong
 * types, out-of-range values and broken rules between keys are refused with
 * a message of the form "FILE:LINE: KEY: REASON".  Secure by default: a
 * cluster_secret has at least 16 bytes, auth_tokens need a cluster secret,
 * and (protected_mode) a non-loopback bind_address needs a cluster secret
 * or auth_tokens.  The struct is filled once at start-up and is read-only
 * afterwards, so any thread may read it without a lock.
 *
 * Every key's type, default, range and comment is one row of the table in
 * config_table.c; the defaults, the checks, the default file and
 * config_print() all come from it.  The module's files: config.c (loading,
 * rules between keys), config_table.c (the table, defaults, type and range
 * checks), config_text.c (default file, config_print()), config_check.c
 * (node_id and address validators shared with members.c, protected mode).
 */
#ifndef KVS_CONFIG_H
#define KVS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

#define CONFIG_MAX_SEEDS 64
#define CONFIG_ADDR_MAX 256   /* "host:port" or "https://host:port" */
#define CONFIG_ID_MAX 128     /* node_id */
#define CONFIG_PATH_MAX 1024  /* data_dir and file paths */
#define CONFIG_MAX_TOKENS 256
#define CONFIG_TOKEN_MAX 160   /* bytes of one bearer token, NUL included */
#define CONFIG_TOKEN_NAME_MAX 64 /* a scoped token's name, NUL included */
#define CONFIG_MAX_RULES 1024  /* prefix rules of all tokens together */
#define CONFIG_RULE_PREFIX_MAX 256 /* bytes of one rule's key prefix, NUL included */

/* What a token may do with a key (the longest matching rule decides). */
enum config_access { ACCESS_NONE, ACCESS_READ, ACCESS_WRITE };
#define CONFIG_SECRET_MIN 16   /* bytes of cluster_secret, at least */
#define CONFIG_MAX_MEMBERS 4096 /* max_members, at most: a gossip message carries up to 4096 */

/*
 * The settings, one field per key of the default file (same name).  What
 * each accepts and defaults to is in the key table (config_table.c) and
 * the default file it generates, config/kvs.yaml; not repeated here.
 */
struct kvs_config {
	/* identity and network */
	char node_id[CONFIG_ID_MAX];               /* this node's name; default: hostname */
	char bind_address[64];                     /* HTTP server's address */
	int port;                                  /* HTTP port */
	char advertise_address[CONFIG_ADDR_MAX];   /* "host:port" peers use; default bind_address:port */
	char seed_nodes[CONFIG_MAX_SEEDS][CONFIG_ADDR_MAX];
	int seed_count;                            /* entries used in seed_nodes */
	int max_members;                           /* member table cap, self included */

	/* storage */
	char data_dir[CONFIG_PATH_MAX];            /* RocksDB directory */
	bool sync_writes;                          /* fsync each write */
	int64_t cache_bytes;                       /* record cache, 0 = off */
	bool read_only;                            /* refuse client writes */
	int64_t max_value_bytes;                   /* largest accepted value */
	int64_t tombstone_grace;                   /* seconds a tombstone is kept */

	/* HTTP server */
	int http_threads;                          /* worker threads */
	int http_request_timeout_ms;               /* to receive one whole request */
	int http_idle_timeout_ms;                  /* idle keep-alive connection closed */
	int max_watchers;                          /* watch requests open at once */

	/* watches */
	int64_t watch_history;                     /* changes kept; 0 = no change index */

	/* time */
	int64_t max_ttl;                           /* seconds a TTL may last */
	int max_clock_offset_ms;                   /* a peer's record may be this far ahead */

	/* logging */
	enum log_level log_level;
	enum log_format log_format;

	/* cluster timing (seconds unless _ms) */
	int gossip_interval_min;
	int gossip_interval_max;
	int sync_interval;
	int sync_items;                            /* items a regular sync compares */
	int catchup_interval;
	int bootstrap_max_age_hours;
	int throttle_delay_ms;
	int64_t sync_bytes_per_sec;               /* a sync's fetch rate; 0 = none */
	int fetch_delay_ms;
	int failure_timeout;
	int removal_timeout;
	int probe_interval;
	int anti_entropy_interval;
	int peer_timeout_ms;                       /* total timeout of one peer request */
	int replication_lag_max_ms;                /* writes wait while pushes lag more */
	bool peer_compression;                     /* zstd push bodies, negotiated */

	/* security */
	char cluster_secret[256];                  /* empty = none */
	char cluster_secret_file[CONFIG_PATH_MAX]; /* read into cluster_secret by config_load */
	char cluster_id[CONFIG_ID_MAX];            /* peers of another id are refused */
	/*
	 * Client bearer tokens (none = open API).  A "read:T" or "write:T"
	 * string is a token on every key (write: and admin); an object is a
	 * named token whose prefix rules decide (SPEC section 12).  The token
	 * is kept as given, or only its SHA-256 (token_sha256).
	 */
	struct config_token {
		char name[CONFIG_TOKEN_NAME_MAX];  /* "read-1", "write-2" for strings */
		char token[CONFIG_TOKEN_MAX];      /* empty when hashed */
		unsigned char sha256[32];          /* when hashed */
		bool hashed;
		bool scoped;                       /* rules[rule_first..+rule_count) decide */
		bool write;                        /* unscoped: read-write and admin; else read */
		bool admin;                        /* scoped: /admin/ and leaving */
		int rule_first, rule_count;
	} auth_tokens[CONFIG_MAX_TOKENS];
	int token_count;
	struct config_rule {
		char prefix[CONFIG_RULE_PREFIX_MAX];
		int access;                        /* enum config_access */
	} rules[CONFIG_MAX_RULES];                 /* every scoped token's, in order */
	int rule_count;
	char auth_tokens_file[CONFIG_PATH_MAX];    /* a YAML sequence of more auth_tokens */
	char audit_log[CONFIG_PATH_MAX];           /* file path or "stderr"; empty = none */
	bool protected_mode;                       /* refuse to start open on a non-loopback
						    * bind_address */
	char tls_cert_file[CONFIG_PATH_MAX];       /* PEM certificate (chain): enables HTTPS */
	char tls_key_file[CONFIG_PATH_MAX];        /* PEM private key */
	char tls_ca_file[CONFIG_PATH_MAX];         /* CA that signs peers' certificates */
	bool tls_verify_peer;                      /* require client certificates (mutual TLS) */
	bool ui;                                   /* serve the web console at /ui/ */
};

/* Fills cfg with every default of the key table (node_id = hostname). */
void config_defaults(struct kvs_config *cfg);

/*
 * Reads and validates the YAML file at path into cfg (which it first resets
 * to the defaults), then reads cluster_secret_file if one is named.
 * Returns 0, or KVS_EINVAL/KVS_EIO with a one-line "FILE:LINE: KEY:
 * REASON" (or "FILE: REASON") written into err.
 * On failure cfg holds unspecified values.
 */
int config_load(struct kvs_config *cfg, const char *path, char *err, size_t errlen);

/* Same, from an in-memory buffer; name is used in messages. */
int config_parse(struct kvs_config *cfg, const char *name, const char *text, size_t len,
		 char *err, size_t errlen);

/*
 * Writes the commented default config (config_default_text()) to path,
 * refusing to overwrite an existing file.  Returns 0, or KVS_EIO (or
 * KVS_ENOMEM) with a message in err.
 */
int config_write_default(const char *path, char *err, size_t errlen);

/*
 * The commented default config, generated from the key table: a header,
 * then every key with its comment and default (commented out where the
 * default is computed or absent).  config/kvs.yaml is this text.  Returns
 * a NUL-terminated string the caller frees with free(), or NULL when out
 * of memory.
 */
char *config_default_text(void);

/*
 * Prints the effective settings as YAML to f (used by --check-config).
 * cluster_secret and auth_tokens are never printed (only whether they are
 * set), so a config that needs its secret (auth_tokens, or protected mode
 * on a non-loopback bind_address) reads back only once the secret is added.
 */
void config_print(const struct kvs_config *cfg, FILE *f);

/*
 * Logs, at WARN, what a valid config still leaves open: protected_mode
 * false on a non-loopback bind_address without cluster_secret or
 * auth_tokens (event "protected_mode_off").  Call once after log_init().
 */
void config_log_warnings(const struct kvs_config *cfg);

/*
 * True when cfg serves a non-loopback bind_address with neither a cluster
 * secret (cluster_secret or cluster_secret_file) nor auth_tokens: what
 * protected mode refuses.
 */
bool config_is_open(const struct kvs_config *cfg);

/* ---- validators shared with members.c (records from the network) ---- */

/* A node_id (or cluster_id): 1..CONFIG_ID_MAX-1 characters of [A-Za-z0-9._-]. */
bool config_node_id_valid(const char *s);

/*
 * A host: an IPv4 dotted quad (four decimal numbers 0..255, no leading
 * zeros) or a DNS name of dot-separated labels, each 1..63 characters of
 * [A-Za-z0-9-] not starting or ending with '-', whose last label is not all
 * digits; 1..253 characters in all.  No IPv6: Debian's civetweb has none.
 */
bool config_host_valid(const char *host);

/* True for an IPv4 dotted quad in 127.0.0.0/8 (a name, even "localhost", is not). */
bool config_host_is_loopback(const char *host);

/*
 * Checks "host:port" (host as config_host_valid, port 1..65535, shorter
 * than CONFIG_ADDR_MAX); with allow_scheme also "http://host:port" and
 * "https://host:port" (seed_nodes).  Returns NULL when valid, else a static
 * string saying what is wrong.
 */
const char *config_address_problem(const char *s, bool allow_scheme);

/* config_address_problem(s, false) == NULL: a member's advertise address. */
bool config_address_valid(const char *s);

#endif
