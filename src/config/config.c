/*
 * config.c - loading the node's YAML configuration (SPEC section 2):
 * config_load() and config_parse(), and the rules no single key can check.
 *
 * Which keys exist, their types, defaults and ranges are config_keys[]
 * (config_table.c); this file walks the YAML and hands each value to the
 * table's checks, so nothing here names a default or a range.  The
 * default file and config_print() are config_text.c's; the node_id and
 * address validators members.c shares are config_check.c's.
 *
 * config_parse() loads the text with libyaml's document API: the whole
 * document becomes a node tree and every node keeps its start mark, so each
 * message can name a line.  The root must be a mapping (or empty, meaning
 * all defaults).  Each pair is applied to a private copy of the defaults:
 * a scalar through config_key_set(), the two sequences here (seed_nodes:
 * addresses as config_address_problem() allows them; auth_tokens:
 * "read:TOKEN" / "write:TOKEN").  A null value (empty, ~, null) is
 * refused, except for the sequences, where it means the empty list.
 * Rules that tie keys together (gossip min <= max, failure < removal, the
 * TLS files, the security rules below) and the advertise_address default
 * run once every key is known.  Only a fully valid result is copied out,
 * so a failed call leaves cfg untouched (the header promises less).
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
 * Errors are one line: "FILE:LINE: KEY: REASON", "FILE:LINE: REASON" for
 * YAML syntax and structure, "FILE: REASON" when the file cannot be read.
 * Lines are 1-based.  Control characters that came from the input are
 * replaced by '?' so the message stays on one line.
 *
 * Threads: nothing here keeps state between calls (no globals); the filled
 * struct is read-only afterwards, so any thread may read it.
 */
#include "config_table.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "hex.h"
#include "kvs.h"

/* ------------------------------------------------------------------ */
/* types                                                               */
/* ------------------------------------------------------------------ */

/* State of one config_parse() call. */
struct parse_ctx {
	struct kvs_config *cfg;    /* private copy being filled */
	const char *name;          /* file name for messages */
	yaml_document_t *doc;
	char *err;
	size_t errlen;
	int line[CONFIG_KEYS_MAX]; /* per config_keys[] row: 1-based line where set, 0 = default */
};

/* ------------------------------------------------------------------ */
/* statics                                                             */
/* ------------------------------------------------------------------ */

#define CONFIG_FILE_MAX (1024 * 1024)  /* larger config files are refused */

static int key_err(struct parse_ctx *ctx, int line, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int yaml_err(struct parse_ctx *ctx, const yaml_parser_t *p, const char *text,
		    size_t len);
static int key_line(const struct parse_ctx *ctx, const char *key);
static int apply_root(struct parse_ctx *ctx, yaml_node_t *root);
static int apply_pair(struct parse_ctx *ctx, yaml_node_t *kn, yaml_node_t *vn);
static int apply_seeds(struct parse_ctx *ctx, const char *key, yaml_node_t *vn, int line);
static int apply_tokens(struct parse_ctx *ctx, const char *key, yaml_node_t *vn, int line);
static int apply_tokens_file(struct parse_ctx *ctx);
static int check_cross(struct parse_ctx *ctx);
static int rule_err(struct parse_ctx *ctx, const char *a, const char *b, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ------------------------------------------------------------------ */
/* public API                                                          */
/* ------------------------------------------------------------------ */

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
		config_set_err(err, errlen, "%s: cluster_secret_file: cannot read %s: %s", path,
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
		config_set_err(err, errlen,
			       "%s: cluster_secret_file: %s must hold %d to %zu bytes on its first line",
			       path, cfg->cluster_secret_file, CONFIG_SECRET_MIN,
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
		config_set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return KVS_EIO;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		config_set_err(err, errlen, "%s: cannot read: %s", path, strerror(EISDIR));
		rc = KVS_EIO;
		goto out_close;
	}
	buf = malloc(cap);
	if (!buf)
		goto out_nomem;
	for (;;) {
		if (len == cap) {
			if (cap > CONFIG_FILE_MAX) {
				config_set_err(err, errlen, "%s: larger than %d bytes", path,
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
			config_set_err(err, errlen, "%s: cannot read: %s", path, strerror(errno));
			rc = KVS_EIO;
			goto out_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > CONFIG_FILE_MAX) {
		config_set_err(err, errlen, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
		rc = KVS_EINVAL;
		goto out_free;
	}
	rc = config_parse(cfg, path, buf, len, err, errlen);
	if (rc == 0 && cfg->cluster_secret_file[0])
		rc = read_secret_file(cfg, path, err, errlen);
	goto out_free;

out_nomem:
	config_set_err(err, errlen, "%s: out of memory", path);
	rc = KVS_ENOMEM;
out_free:
	free(buf);
out_close:
	close(fd);
	return rc;
}

/*
 * auth_tokens_file: a YAML file whose document is a sequence of more
 * auth_tokens entries (so secrets need not sit in the main file); its
 * errors name that file and its lines.
 */
static int apply_tokens_file(struct parse_ctx *ctx)
{
	const char *file = ctx->cfg->auth_tokens_file, *saved_name = ctx->name;
	yaml_document_t *saved_doc = ctx->doc, doc;
	yaml_parser_t parser;
	char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(file, "re");
	int rc;

	if (f) {
		text = malloc(CONFIG_FILE_MAX + 1);
		if (text)
			len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
		fclose(f);
	}
	if (!f || !text || len > CONFIG_FILE_MAX) {
		free(text);
		return key_err(ctx, key_line(ctx, "auth_tokens_file"), "auth_tokens_file",
			       "cannot read %s (or larger than %d bytes)", file, CONFIG_FILE_MAX);
	}
	if (!yaml_parser_initialize(&parser)) {
		free(text);
		return KVS_ENOMEM;
	}
	ctx->name = file;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = yaml_err(ctx, &parser, text, len);
	} else {
		yaml_node_t *root = yaml_document_get_root_node(&doc);

		ctx->doc = &doc;
		rc = root ? apply_tokens(ctx, "auth_tokens", root, 1) : 0;
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	ctx->doc = saved_doc;
	ctx->name = saved_name;
	free(text);
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
		config_set_err(err, errlen, "%s: out of memory", ctx.name);
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
			config_set_err(err, errlen, "%s:%zu: more than one YAML document", ctx.name,
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
	if (tmp.auth_tokens_file[0] && (rc = apply_tokens_file(&ctx)) != 0)
		goto out_doc;
	rc = check_cross(&ctx);
	if (rc)
		goto out_doc;
	if (!key_line(&ctx, "advertise_address"))
		config_fill_advertise(&tmp);
	memcpy(cfg, &tmp, sizeof(tmp));

out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	return rc;
}

/* ------------------------------------------------------------------ */
/* internals                                                           */
/* ------------------------------------------------------------------ */

/* "FILE:LINE: KEY: REASON" (or "FILE: KEY: REASON" for line 0); returns KVS_EINVAL. */
static int key_err(struct parse_ctx *ctx, int line, const char *key, const char *fmt, ...)
{
	char reason[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0)
		config_set_err(ctx->err, ctx->errlen, "%s:%d: %.64s: %s", ctx->name, line, key,
			       reason);
	else
		config_set_err(ctx->err, ctx->errlen, "%s: %.64s: %s", ctx->name, key, reason);
	return KVS_EINVAL;
}

/* Reports a libyaml reader, scanner or parser error as "FILE:LINE: REASON". */
static int yaml_err(struct parse_ctx *ctx, const yaml_parser_t *p, const char *text,
		    size_t len)
{
	const char *problem = p->problem ? p->problem : "syntax error";
	size_t line = 1, i;

	if (p->error == YAML_MEMORY_ERROR) {
		config_set_err(ctx->err, ctx->errlen, "%s: out of memory", ctx->name);
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
		config_set_err(ctx->err, ctx->errlen, "%s:%zu: invalid YAML: %s %s", ctx->name, line,
			       problem, p->context);
	else
		config_set_err(ctx->err, ctx->errlen, "%s:%zu: invalid YAML: %s", ctx->name, line,
			       problem);
	return KVS_EINVAL;
}

/* The line where key was set, 0 when it has its default. */
static int key_line(const struct parse_ctx *ctx, const char *key)
{
	return ctx->line[config_key(key) - config_keys];
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

/* Applies every pair of the top-level mapping; an empty document is all defaults. */
static int apply_root(struct parse_ctx *ctx, yaml_node_t *root)
{
	yaml_node_pair_t *pair;
	yaml_node_t *kn, *vn;
	int rc;

	if (!root || is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE) {
		config_set_err(ctx->err, ctx->errlen,
			       "%s:%zu: top level must be a mapping of keys, got %s", ctx->name,
			       root->start_mark.line + 1, node_kind(root));
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

/*
 * Checks one "key: value" pair: the key against config_keys[], the value
 * with config_key_set() (or apply_seeds/apply_tokens), and stores it.
 */
static int apply_pair(struct parse_ctx *ctx, yaml_node_t *kn, yaml_node_t *vn)
{
	const char *key;
	char why[384];
	int kline = (int)kn->start_mark.line + 1, vline, i;

	if (kn->type != YAML_SCALAR_NODE) {
		config_set_err(ctx->err, ctx->errlen, "%s:%d: keys must be scalars, got %s",
			       ctx->name, kline, node_kind(kn));
		return KVS_EINVAL;
	}
	key = scalar(kn);
	i = config_key_find(key, kn->data.scalar.length);
	if (i < 0)
		return key_err(ctx, kline, key, "unknown key");
	if (ctx->line[i])
		return key_err(ctx, kline, key, "duplicate key (first set on line %d)",
			       ctx->line[i]);
	ctx->line[i] = kline;

	if (config_keys[i].type == CT_SEEDS)
		return apply_seeds(ctx, key, vn, kline);
	if (config_keys[i].type == CT_TOKENS)
		return apply_tokens(ctx, key, vn, kline);
	if (is_null(vn))
		return key_err(ctx, kline, key, "missing value");
	if (vn->type != YAML_SCALAR_NODE)
		return key_err(ctx, kline, key, "expected a scalar, got %s", node_kind(vn));
	vline = (int)vn->start_mark.line + 1;
	if (config_key_set(&config_keys[i], ctx->cfg, scalar(vn), vn->data.scalar.length,
			   vn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, why, sizeof(why)))
		return key_err(ctx, vline, key, "%s", why);
	return 0;
}

/* seed_nodes: a sequence of addresses; null or [] means none. */
static int apply_seeds(struct parse_ctx *ctx, const char *key, yaml_node_t *vn, int line)
{
	struct kvs_config *cfg = ctx->cfg;
	yaml_node_item_t *item;
	yaml_node_t *en;
	const char *why;
	char pv[CONFIG_PREVIEW_MAX + 8];
	size_t len;
	int eline;

	if (is_null(vn))
		return 0;
	if (vn->type != YAML_SEQUENCE_NODE)
		return key_err(ctx, line, key,
			       "expected a sequence of \"host:port\" strings, got %s",
			       node_kind(vn));
	for (item = vn->data.sequence.items.start; item < vn->data.sequence.items.top; item++) {
		en = yaml_document_get_node(ctx->doc, *item);
		eline = (int)en->start_mark.line + 1;
		if (en->type != YAML_SCALAR_NODE || is_null(en))
			return key_err(ctx, eline, key, "entries must be \"host:port\" strings");
		if (cfg->seed_count == CONFIG_MAX_SEEDS)
			return key_err(ctx, eline, key, "more than %d entries", CONFIG_MAX_SEEDS);
		len = en->data.scalar.length;
		if (strlen(scalar(en)) != len)
			return key_err(ctx, eline, key, "contains a NUL byte");
		if (len >= CONFIG_ADDR_MAX)
			return key_err(ctx, eline, key, "entry longer than %d bytes",
				       CONFIG_ADDR_MAX - 1);
		why = config_address_problem(scalar(en), true);
		if (why)
			return key_err(ctx, eline, key, "%s, got %s", why,
				       config_preview(scalar(en), pv, sizeof(pv)));
		memset(cfg->seed_nodes[cfg->seed_count], 0, CONFIG_ADDR_MAX);
		memcpy(cfg->seed_nodes[cfg->seed_count], scalar(en), len);
		cfg->seed_count++;
	}
	return 0;
}

/*
 * A rule between keys a and b is broken: the message names the one set
 * later in the file (b when neither is set or both on one line).
 */
static int rule_err(struct parse_ctx *ctx, const char *a, const char *b, const char *fmt, ...)
{
	const char *key = key_line(ctx, b) >= key_line(ctx, a) ? b : a;
	char reason[384];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	return key_err(ctx, key_line(ctx, key), key, "%s", reason);
}

/* Rules between keys, checked once every key is known. */
static int check_cross(struct parse_ctx *ctx)
{
	const struct kvs_config *cfg = ctx->cfg;
	const char *k;

	if (cfg->gossip_interval_min > cfg->gossip_interval_max)
		return rule_err(ctx, "gossip_interval_min", "gossip_interval_max",
				"gossip_interval_min (%d) exceeds gossip_interval_max (%d)",
				cfg->gossip_interval_min, cfg->gossip_interval_max);
	if (cfg->failure_timeout >= cfg->removal_timeout)
		return rule_err(ctx, "failure_timeout", "removal_timeout",
				"failure_timeout (%d) must be below removal_timeout (%d)",
				cfg->failure_timeout, cfg->removal_timeout);
	if (cfg->cluster_secret[0] && cfg->cluster_secret_file[0])
		return rule_err(ctx, "cluster_secret", "cluster_secret_file",
				"set cluster_secret or cluster_secret_file, not both");
	if (!cfg->tls_cert_file[0] != !cfg->tls_key_file[0]) {
		k = cfg->tls_cert_file[0] ? "tls_cert_file" : "tls_key_file";
		return key_err(ctx, key_line(ctx, k), k,
			       "tls_cert_file and tls_key_file go together");
	}
	if ((cfg->tls_ca_file[0] || cfg->tls_verify_peer) && !cfg->tls_cert_file[0]) {
		k = cfg->tls_ca_file[0] ? "tls_ca_file" : "tls_verify_peer";
		return key_err(ctx, key_line(ctx, k), k, "needs tls_cert_file and tls_key_file");
	}
	if (cfg->tls_verify_peer && !cfg->tls_ca_file[0])
		return key_err(ctx, key_line(ctx, "tls_verify_peer"), "tls_verify_peer",
			       "needs tls_ca_file to check client certificates against");
	if (cfg->token_count > 0 && !cfg->cluster_secret[0] && !cfg->cluster_secret_file[0])
		return key_err(ctx, key_line(ctx, "auth_tokens"), "auth_tokens",
			       "auth_tokens need cluster_secret (or cluster_secret_file): without it "
			       "the peer endpoints under /members/ are open to anyone");
	if (cfg->protected_mode && config_is_open(cfg))
		return key_err(ctx, key_line(ctx, "bind_address"), "bind_address",
			       "%s is not a loopback address and neither cluster_secret nor "
			       "auth_tokens is set (protected mode): set cluster_secret or "
			       "cluster_secret_file (and auth_tokens for clients), or "
			       "protected_mode: false to serve it open to the network",
			       cfg->bind_address);
	return 0;
}

/* A bearer token as a token may be: 16 to CONFIG_TOKEN_MAX - 1 printable
 * ASCII characters without spaces (it fits an Authorization header).
 * Returns NULL or why not. */
static const char *token_problem(const char *tok)
{
	size_t len = strlen(tok);

	if (len < 16 || len >= CONFIG_TOKEN_MAX)
		return "tokens must be 16 to 159 characters";
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
			return "tokens are printable ASCII without spaces";
	return NULL;
}

/* The next free token slot, or NULL with the error reported. */
static struct config_token *token_slot(struct parse_ctx *ctx, const char *key, int line)
{
	struct kvs_config *cfg = ctx->cfg;
	struct config_token *t;

	if (cfg->token_count == CONFIG_MAX_TOKENS) {
		key_err(ctx, line, key, "more than %d tokens", CONFIG_MAX_TOKENS);
		return NULL;
	}
	t = &cfg->auth_tokens[cfg->token_count];
	memset(t, 0, sizeof(*t));
	return t;
}

/* "read:TOKEN" / "write:TOKEN": a token on every key. */
static int apply_token_string(struct parse_ctx *ctx, const char *key, yaml_node_t *en)
{
	int line = (int)en->start_mark.line + 1;
	struct config_token *t;
	const char *s = scalar(en), *tok, *why;
	bool write;

	if (strlen(s) != en->data.scalar.length)
		return key_err(ctx, line, key, "contains a NUL byte");
	if (!strncmp(s, "read:", 5))
		tok = s + 5, write = false;
	else if (!strncmp(s, "write:", 6))
		tok = s + 6, write = true;
	else
		return key_err(ctx, line, key, "entries must start with \"read:\" or \"write:\", "
			       "or be a mapping with a name");
	if ((why = token_problem(tok)))
		return key_err(ctx, line, key, "%s", why);
	if (!(t = token_slot(ctx, key, line)))
		return KVS_EINVAL;
	memcpy(t->token, tok, strlen(tok) + 1);
	t->write = write;
	snprintf(t->name, sizeof(t->name), "%s-%d", write ? "write" : "read",
		 ctx->cfg->token_count + 1);
	ctx->cfg->token_count++;
	return 0;
}

/* Reads the first line of file (a token) into out; NULL or why not. */
static const char *token_from_file(const char *file, char *out, size_t cap)
{
	FILE *f = fopen(file, "re");
	char line[CONFIG_TOKEN_MAX + 2];
	size_t n;

	if (!f)
		return "token_file cannot be read";
	if (!fgets(line, sizeof(line), f)) {
		fclose(f);
		return "token_file is empty";
	}
	fclose(f);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	if (n >= cap)
		return "token_file: the token is too long";
	memcpy(out, line, n + 1);
	return NULL;
}

/* One rule {"prefix": P, "access": read|write|deny} of token t. */
static int apply_rule(struct parse_ctx *ctx, const char *key, struct config_token *t,
		      yaml_node_t *rn)
{
	struct kvs_config *cfg = ctx->cfg;
	int line = (int)rn->start_mark.line + 1;
	const char *prefix = NULL, *access = NULL;
	yaml_node_pair_t *pair;

	if (rn->type != YAML_MAPPING_NODE)
		return key_err(ctx, line, key, "a rule is a mapping {prefix, access}");
	for (pair = rn->data.mapping.pairs.start; pair < rn->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);

		if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
			return key_err(ctx, line, key, "a rule holds scalars only");
		if (!strcmp(scalar(k), "prefix") && !prefix)
			prefix = scalar(v);
		else if (!strcmp(scalar(k), "access") && !access)
			access = scalar(v);
		else
			return key_err(ctx, (int)k->start_mark.line + 1, key,
				       "unknown or repeated rule member \"%s\"", scalar(k));
	}
	if (!prefix || !access)
		return key_err(ctx, line, key, "a rule needs prefix and access");
	if (strlen(prefix) >= CONFIG_RULE_PREFIX_MAX)
		return key_err(ctx, line, key, "prefix longer than %d bytes",
			       CONFIG_RULE_PREFIX_MAX - 1);
	for (const char *c = prefix; *c; c++)
		if ((unsigned char)*c < 0x20)
			return key_err(ctx, line, key, "prefix holds a control character");
	if (cfg->rule_count == CONFIG_MAX_RULES)
		return key_err(ctx, line, key, "more than %d rules in all", CONFIG_MAX_RULES);
	for (int i = t->rule_first; i < t->rule_first + t->rule_count; i++)
		if (!strcmp(cfg->rules[i].prefix, prefix))
			return key_err(ctx, line, key, "prefix \"%s\" given twice for token %s",
				       prefix, t->name);
	struct config_rule *r = &cfg->rules[cfg->rule_count];
	if (!strcmp(access, "read"))
		r->access = ACCESS_READ;
	else if (!strcmp(access, "write"))
		r->access = ACCESS_WRITE;
	else if (!strcmp(access, "deny"))
		r->access = ACCESS_NONE;
	else
		return key_err(ctx, line, key, "access must be read, write or deny, not \"%s\"",
			       access);
	snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
	cfg->rule_count++;
	t->rule_count++;
	return 0;
}

/* Reads 64 hex digits into out[32]; false if they are not that. */
static bool parse_sha256(const char *hex, unsigned char out[32])
{
	if (strlen(hex) != 64)
		return false;
	for (int i = 0; i < 32; i++) {
		int hi = hex_value((unsigned char)hex[2 * i]), lo = hex_value((unsigned char)hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return true;
}

/*
 * A scoped token: {name, token | token_sha256 | token_env | token_file,
 * rules: [{prefix, access}], admin}.
 */
static int apply_token_object(struct parse_ctx *ctx, const char *key, yaml_node_t *en)
{
	struct kvs_config *cfg = ctx->cfg;
	int line = (int)en->start_mark.line + 1, sources = 0;
	struct config_token *t = token_slot(ctx, key, line);
	yaml_node_t *rules = NULL;
	yaml_node_pair_t *pair;
	const char *why;

	if (!t)
		return KVS_EINVAL;
	t->scoped = true;
	t->rule_first = cfg->rule_count;
	for (pair = en->data.mapping.pairs.start; pair < en->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(ctx->doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(ctx->doc, pair->value);
		int kl = (int)k->start_mark.line + 1;
		const char *name = k->type == YAML_SCALAR_NODE ? scalar(k) : "";

		if (!strcmp(name, "rules")) {
			if (v->type != YAML_SEQUENCE_NODE)
				return key_err(ctx, kl, key, "rules must be a sequence");
			rules = v;
			continue;
		}
		if (v->type != YAML_SCALAR_NODE)
			return key_err(ctx, kl, key, "%s must be a scalar", name);
		const char *val = scalar(v);
		if (!strcmp(name, "name")) {
			if (!config_node_id_valid(val) || strlen(val) >= CONFIG_TOKEN_NAME_MAX)
				return key_err(ctx, kl, key, "name must be 1 to %d of [A-Za-z0-9._-]",
					       CONFIG_TOKEN_NAME_MAX - 1);
			snprintf(t->name, sizeof(t->name), "%s", val);
		} else if (!strcmp(name, "token")) {
			if ((why = token_problem(val)))
				return key_err(ctx, kl, key, "%s", why);
			snprintf(t->token, sizeof(t->token), "%s", val);
			sources++;
		} else if (!strcmp(name, "token_sha256")) {
			if (!parse_sha256(val, t->sha256))
				return key_err(ctx, kl, key, "token_sha256 must be 64 hex digits");
			t->hashed = true;
			sources++;
		} else if (!strcmp(name, "token_env")) {
			const char *env = getenv(val);

			if (!env || (why = token_problem(env)))
				return key_err(ctx, kl, key, "token_env %s: %s", val,
					       env ? why : "not set");
			snprintf(t->token, sizeof(t->token), "%s", env);
			sources++;
		} else if (!strcmp(name, "token_file")) {
			if ((why = token_from_file(val, t->token, sizeof(t->token))) ||
			    (why = token_problem(t->token)))
				return key_err(ctx, kl, key, "%s (%s)", why, val);
			sources++;
		} else if (!strcmp(name, "admin")) {
			if (strcmp(val, "true") && strcmp(val, "false"))
				return key_err(ctx, kl, key, "admin must be true or false");
			t->admin = !strcmp(val, "true");
		} else {
			return key_err(ctx, kl, key, "unknown token member \"%s\"", name);
		}
	}
	if (!t->name[0])
		return key_err(ctx, line, key, "a scoped token needs a name");
	if (sources != 1)
		return key_err(ctx, line, key, "token %s needs exactly one of token, token_sha256, "
			       "token_env, token_file", t->name);
	for (int i = 0; i < cfg->token_count; i++)
		if (!strcmp(cfg->auth_tokens[i].name, t->name))
			return key_err(ctx, line, key, "token name %s used twice", t->name);
	if (rules)
		for (yaml_node_item_t *it = rules->data.sequence.items.start;
		     it < rules->data.sequence.items.top; it++)
			if (apply_rule(ctx, key, t, yaml_document_get_node(ctx->doc, *it)) != 0)
				return KVS_EINVAL;
	cfg->token_count++;
	return 0;
}

/*
 * auth_tokens: a sequence of "read:TOKEN" / "write:TOKEN" strings (a token
 * on every key) and scoped token mappings; null or [] means none (the API
 * stays open).
 */
static int apply_tokens(struct parse_ctx *ctx, const char *key, yaml_node_t *vn, int line)
{
	yaml_node_item_t *item;

	if (is_null(vn))
		return 0;
	if (vn->type != YAML_SEQUENCE_NODE)
		return key_err(ctx, line, key, "expected a sequence of \"read:TOKEN\" or "
			       "\"write:TOKEN\" strings and scoped token mappings");
	for (item = vn->data.sequence.items.start; item < vn->data.sequence.items.top; item++) {
		yaml_node_t *en = yaml_document_get_node(ctx->doc, *item);
		int rc;

		if (en->type == YAML_MAPPING_NODE)
			rc = apply_token_object(ctx, key, en);
		else if (en->type == YAML_SCALAR_NODE && !is_null(en))
			rc = apply_token_string(ctx, key, en);
		else
			rc = key_err(ctx, (int)en->start_mark.line + 1, key,
				     "entries must be strings or mappings");
		if (rc != 0)
			return rc;
	}
	return 0;
}
