/*
 * config_text.c - configuration written out: the default file and the
 * effective settings, both generated from config_keys[] (config_table.c).
 *
 * The default file (config_default_text(); config_write_default() creates
 * it when `kvs` starts without one, and config/kvs.yaml is a copy that
 * test_config compares with it) is a fixed header, then per key in table
 * order: a blank line and its comment ("{}" replaced by the key's range or
 * allowed values), then "key: default".  A key whose default is computed
 * or absent is written commented out, "# key: example"; a key without a
 * comment of its own (tls_key_file) follows the one above without a blank
 * line.  test_config proves the text parses back to config_defaults().
 *
 * config_print() (`kvs --check-config`) writes the effective value of
 * every key as YAML that config_parse() reads back to the same settings,
 * except that cluster_secret and auth_tokens are never printed.
 *
 * Threads: no state; the caller owns the FILE and the returned text.
 */
#include "config_table.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvs.h"

/* ------------------------------------------------------------------ */
/* statics                                                             */
/* ------------------------------------------------------------------ */

static const char default_head[] =
	"# kvs configuration (YAML).\n"
	"#\n"
	"# Every key is optional: the values below are the defaults.  An unknown key,\n"
	"# a wrong type or an out-of-range value stops the node with exit status 2\n"
	"# and one line naming file, line and key.  Check a file with\n"
	"# `kvs --check-config FILE`.  Durations are in seconds unless named _ms.\n";

static void put_comment(FILE *f, const struct config_key *k);
static void print_string(FILE *f, const char *name, const char *value);
static void print_quoted(FILE *f, const char *s);

/* ------------------------------------------------------------------ */
/* public API                                                          */
/* ------------------------------------------------------------------ */

/* Generated into a memory stream: the header, then each key of the table. */
char *config_default_text(void)
{
	const struct config_key *k;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	bool failed;

	if (!f)
		return NULL;
	fputs(default_head, f);
	for (k = config_keys; k < config_keys + config_key_count; k++) {
		if (k->comment[0]) {
			fputc('\n', f);
			put_comment(f, k);
		}
		fprintf(f, "%s%s: %s\n", k->def == CD_VALUE ? "" : "# ", k->name, k->value);
	}
	failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed) {
		free(text);
		return NULL;
	}
	return text;
}

/*
 * Creates path (O_EXCL, mode 0644 less the umask) holding the default text.
 * An existing file is never touched; a half-written file is removed.
 */
int config_write_default(const char *path, char *err, size_t errlen)
{
	char *text = config_default_text();
	const char *p = text;
	size_t left;
	ssize_t n;
	int fd;

	if (!text) {
		config_set_err(err, errlen, "%s: out of memory", path);
		return KVS_ENOMEM;
	}
	left = strlen(text);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		config_set_err(err, errlen, "%s: cannot create: %s", path, strerror(errno));
		free(text);
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
	free(text);
	return 0;

out_unlink:
	config_set_err(err, errlen, "%s: cannot write: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(text);
	return KVS_EIO;
}

/* auth_tokens as comments: names, scopes and rules, never the tokens. */
static void print_tokens(FILE *f, const struct kvs_config *cfg)
{
	static const char *const access[] = { "deny", "read", "write" };

	fprintf(f, "# auth_tokens: %d token(s), secrets not shown\n", cfg->token_count);
	for (int i = 0; i < cfg->token_count; i++) {
		const struct config_token *t = &cfg->auth_tokens[i];

		if (!t->scoped) {
			fprintf(f, "#   - %s: every key, %s\n", t->name,
				t->write ? "read-write, admin" : "read");
			continue;
		}
		fprintf(f, "#   - %s:%s%s", t->name, t->admin ? " admin," : "",
			t->hashed ? " (sha256)" : "");
		for (int r = t->rule_first; r < t->rule_first + t->rule_count; r++)
			fprintf(f, " \"%s\"=%s", cfg->rules[r].prefix, access[cfg->rules[r].access]);
		fprintf(f, "%s\n", t->rule_count ? "" : " no rules (no access)");
	}
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
	const struct config_key *k;
	int j, v;

	fprintf(f, "# kvs effective configuration\n");
	for (k = config_keys; k < config_keys + config_key_count; k++) {
		switch (k->type) {
		case CT_INT:
			fprintf(f, "%s: %d\n", k->name, *(const int *)(base + k->off));
			break;
		case CT_I64:
			fprintf(f, "%s: %" PRId64 "\n", k->name,
				*(const int64_t *)(base + k->off));
			break;
		case CT_BOOL:
			fprintf(f, "%s: %s\n", k->name,
				*(const bool *)(base + k->off) ? "true" : "false");
			break;
		case CT_ENUM:
			j = *(const int *)(base + k->off);
			for (v = 0; k->names[v] && v != j; v++)
				;
			fprintf(f, "%s: %s\n", k->name, k->names[v] ? k->names[v] : "?");
			break;
		case CT_SECRET:
			fprintf(f, "# %s: %s\n", k->name,
				(base + k->off)[0] ? "(set, not shown)" : "(none)");
			break;
		case CT_FILE:
			if ((base + k->off)[0])
				print_string(f, k->name, base + k->off);
			else
				fprintf(f, "# %s: (none)\n", k->name);
			break;
		case CT_NODE_ID:
		case CT_HOST:
		case CT_ADDRESS:
		case CT_PATH:
			print_string(f, k->name, base + k->off);
			break;
		case CT_TOKENS:
			print_tokens(f, cfg);
			break;
		case CT_SEEDS:
			if (cfg->seed_count == 0) {
				fprintf(f, "%s: []\n", k->name);
				break;
			}
			fprintf(f, "%s:\n", k->name);
			for (j = 0; j < cfg->seed_count; j++) {
				fputs("  - ", f);
				print_quoted(f, cfg->seed_nodes[j]);
				fputc('\n', f);
			}
			break;
		}
	}
}

/* ------------------------------------------------------------------ */
/* internals                                                           */
/* ------------------------------------------------------------------ */

/* "# " + k's comment, "{}" replaced by its range, '\n' starting a new "# " line. */
static void put_comment(FILE *f, const struct config_key *k)
{
	char range[128];

	fputs("# ", f);
	for (const char *c = k->comment; *c; c++) {
		if (c[0] == '{' && c[1] == '}') {
			fputs(config_key_range(k, range, sizeof(range)), f);
			c++;
		} else if (*c == '\n') {
			fputs("\n# ", f);
		} else {
			fputc(*c, f);
		}
	}
	fputc('\n', f);
}

/* "name: \"value\"" on a line of its own. */
static void print_string(FILE *f, const char *name, const char *value)
{
	fprintf(f, "%s: ", name);
	print_quoted(f, value);
	fputc('\n', f);
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
