/*
 * config_table.h - what the files of config/ share, and nothing else
 * includes: the key table (config_table.c), the scalar checks it drives,
 * and the message helpers.  Other modules use config.h.
 *
 * config_keys[] is the one description of every key: its name, type,
 * default, accepted range or values, and the comment of the default file.
 * From it come config_defaults() (config_table.c), the parsing and type
 * and range checks of config_parse() (config.c, config_key_set()), and the
 * default file and config_print() (config_text.c).
 */
#ifndef KVS_CONFIG_TABLE_H
#define KVS_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum config_type {
	CT_INT,       /* int, plain decimal in [min, max] */
	CT_I64,       /* int64_t, likewise */
	CT_BOOL,      /* bool, plain true or false */
	CT_ENUM,      /* enum stored as int, one of names[] */
	CT_NODE_ID,   /* char[size], config_node_id_valid() */
	CT_HOST,      /* char[size], config_host_valid() */
	CT_ADDRESS,   /* char[size], "host:port" (config_address_problem()) */
	CT_PATH,      /* char[size], non-empty */
	CT_SECRET,    /* char[size], empty (= none) or CONFIG_SECRET_MIN bytes or more; never printed */
	CT_FILE,      /* char[size], optional file path: empty = unset */
	CT_SEEDS,     /* seed_nodes[][] + seed_count (config.c: apply_seeds) */
	CT_TOKENS,    /* auth_tokens[] + token_count (config.c: apply_tokens) */
};

/* Where a key's default comes from. */
enum config_default {
	CD_VALUE,     /* value is the default */
	CD_COMPUTED,  /* computed from other settings (node_id: the hostname;
		       * advertise_address: bind_address:port); value is an example */
	CD_NONE,      /* none: the key stays unset (secrets, TLS files); value is an example */
};

/*
 * One key.  value is written exactly as the default file shows it: with
 * CD_VALUE a YAML scalar that config_key_set() accepts (or "[]" for the
 * sequences) and config_defaults() stores; otherwise an example, and the
 * default file shows the key commented out ("# tls_ca_file: /etc/...").
 */
struct config_key {
	const char *name;          /* YAML key == struct kvs_config field */
	enum config_type type;
	size_t off;                /* offsetof(struct kvs_config, field) */
	size_t size;               /* sizeof the field (buffer size for strings) */
	int64_t min, max;          /* CT_INT, CT_I64: inclusive range */
	const char *const *names;  /* CT_ENUM: NULL-terminated, index = value */
	enum config_default def;   /* what value is */
	const char *value;         /* the default, or an example */
	const char *comment;       /* default file comment: "{}" stands for
				    * config_key_range(), '\n' starts another
				    * comment line; "": none, the key follows the
				    * one above without a blank line */
};

#define CONFIG_KEYS_MAX 64     /* room in struct parse_ctx; config_table.c asserts it */
#define CONFIG_PREVIEW_MAX 40  /* bytes of a bad value quoted in messages */

extern const struct config_key config_keys[];
extern const int config_key_count;

/* Index in config_keys[] of the key named name[0..len), or -1. */
int config_key_find(const char *name, size_t len);

/* config_keys[config_key_find(name)]; name must be a key (asserted). */
const struct config_key *config_key(const char *name);

/*
 * Checks the scalar s (len bytes, NUL-terminated; plain: written without
 * quotes, as integers and booleans must be) against k's type and range and
 * stores it in cfg's field.  Returns 0, or KVS_EINVAL with the reason in
 * why (no file, line or key: the caller adds them) and cfg untouched.
 * Not for CT_SEEDS and CT_TOKENS, which are sequences.
 */
int config_key_set(const struct config_key *k, struct kvs_config *cfg, const char *s,
		   size_t len, bool plain, char *why, size_t whylen);

/*
 * What k accepts, as the default file's comments say it: "1..65535" for
 * integers, "debug, info, warn or error" for enums, "1..127" (bytes) for
 * strings.  Returns buf.
 */
const char *config_key_range(const struct config_key *k, char *buf, size_t size);

/* s quoted for a message, cut after CONFIG_PREVIEW_MAX bytes; returns buf. */
const char *config_preview(const char *s, char *buf, size_t size);

/* A character of node_id and cluster_id: [A-Za-z0-9._-] (config_check.c). */
bool config_id_char(int c);

/* advertise_address = bind_address:port, the default when the file has none. */
void config_fill_advertise(struct kvs_config *cfg);

/* Formats a message into err (if err and errlen), control bytes made '?'. */
void config_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
