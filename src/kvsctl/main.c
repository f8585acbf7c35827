/*
 * main.c - kvsctl: the command line of kvs, built on libkvs (SPEC section
 * 13; README "Client library and kvsctl").
 *
 *   kvsctl [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]
 *
 * Global options may stand anywhere on the line.  The command table lives
 * with the commands (cmd_kv.c, cmd_cluster.c, cmd_watch.c); this file
 * parses, makes the client on first use, and runs one command (or the
 * shell, which comes back here for each line).
 *
 * Exit status: 0 ok, 1 not found, 2 usage, 3 precondition failed, 4 no
 * endpoint reachable, 5 refused (401/403), 6 any other failure.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "kvsctl.h"

#define DEFAULT_ENDPOINTS "127.0.0.1:8080"

enum { G_ENDPOINTS, G_TOKEN, G_CACERT, G_CERT, G_KEY, G_OUTPUT, G_TIMEOUT, G_HELP, N_GLOBAL };

static const struct opt_spec global_opts[N_GLOBAL] = {
	[G_ENDPOINTS] = { "endpoints", 0, true },
	[G_TOKEN] = { "token", 0, true },
	[G_CACERT] = { "cacert", 0, true },
	[G_CERT] = { "cert", 0, true },
	[G_KEY] = { "key", 0, true },
	[G_OUTPUT] = { "output", 'o', true },
	[G_TIMEOUT] = { "timeout", 0, true },
	[G_HELP] = { "help", 'h', false },
};

static const char global_help[] =
	"Global options (anywhere on the line):\n"
	"  --endpoints LIST   host:port[,host:port...] (or http[s]://...); env KVS_ENDPOINTS;\n"
	"                     default " DEFAULT_ENDPOINTS "; the next one is tried when one is unreachable\n"
	"  --token TOKEN      bearer token; env KVS_TOKEN\n"
	"  --cacert FILE      CA to verify https endpoints; --cert FILE --key FILE: client certificate\n"
	"  -o, --output FMT   table, json or value\n"
	"  --timeout DUR      per call (e.g. 5s, 500ms); default 10s\n"
	"  -h, --help         help (kvsctl COMMAND --help for one command)\n"
	"Exit status: 0 ok, 1 not found, 2 usage, 3 precondition failed, 4 no endpoint\n"
	"reachable, 5 refused (401/403), 6 other failure.\n";

/* ------------------------------------------------------------ the table */

const struct command *kvsctl_command_at(int i)
{
	if (i < n_kv_commands)
		return &kv_commands[i];
	i -= n_kv_commands;
	if (i == 0)
		return &watch_command;
	i--;
	if (i < n_cluster_commands)
		return &cluster_commands[i];
	i -= n_cluster_commands;
	return i == 0 ? &shell_command : NULL;
}

const struct command *kvsctl_find(const char *name)
{
	const struct command *cmd;

	for (int i = 0; (cmd = kvsctl_command_at(i)) != NULL; i++)
		if (strcmp(cmd->name, name) == 0)
			return cmd;
	return NULL;
}

static void usage(FILE *f)
{
	const struct command *cmd;

	fprintf(f, "Usage: kvsctl [OPTIONS] COMMAND [ARGS]\n\nCommands:\n");
	for (int i = 0; (cmd = kvsctl_command_at(i)) != NULL; i++)
		fprintf(f, "  %s\n", cmd->usage);
	fprintf(f, "\n%s", global_help);
}

/* --------------------------------------------------------------- errors */

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "kvsctl%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (try 'kvsctl %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
	return EXIT_USAGE;
}

int fail(struct session *s, int rc, const char *what)
{
	const char *detail = s->client ? kvs_client_errmsg(s->client) : "";

	fprintf(stderr, "kvsctl: %s: %s%s%s\n", what, kvs_client_strerror(rc), *detail ? ": " : "",
		detail);
	return args_exit_code(rc);
}

/* --------------------------------------------------------------- client */

kvs_client *session_client(struct session *s)
{
	struct kvs_client_options o = { 0 };
	int rc;

	if (s->client)
		return s->client;
	o.endpoints = s->endpoints;
	o.token = s->token;
	o.cacert = s->cacert;
	o.cert = s->cert;
	o.key = s->key;
	o.timeout_ms = s->timeout_ms;
	rc = kvs_client_new(&o, &s->client);
	if (rc == KVS_EINVAL)
		fprintf(stderr, "kvsctl: bad endpoint list '%s' (want host:port[,host:port...])\n",
			s->endpoints);
	else if (rc)
		fprintf(stderr, "kvsctl: %s\n", kvs_client_strerror(rc));
	return rc ? NULL : s->client;
}

/* Applies the global options found on a command line to s; a changed
 * connection setting drops the client so the next call makes a new one. */
static int apply_globals(struct session *s, const struct args *a, const char *cmd)
{
	const char **dst[] = { [G_ENDPOINTS] = &s->endpoints, [G_TOKEN] = &s->token,
			       [G_CACERT] = &s->cacert, [G_CERT] = &s->cert, [G_KEY] = &s->key };
	bool changed = false;

	for (int i = G_ENDPOINTS; i <= G_KEY; i++) {
		if (a->val[i]) {
			free(s->owned[i]);
			if (!(s->owned[i] = strdup(a->val[i]))) {
				fprintf(stderr, "kvsctl: out of memory\n");
				return EXIT_OTHER;
			}
			*dst[i] = s->owned[i];
			changed = true;
		}
	}
	if (a->val[G_TIMEOUT]) {
		int64_t ms;

		if (args_duration_ms(a->val[G_TIMEOUT], &ms) != 0)
			return usage_error(cmd, "bad --timeout '%s' (e.g. 5s, 500ms)", a->val[G_TIMEOUT]);
		s->timeout_ms = (long)ms;
		changed = true;
	}
	if (changed && s->client) {
		kvs_client_free(s->client);
		s->client = NULL;
	}
	return 0;
}

static int parse_output(const char *v, enum out_fmt *out)
{
	if (strcmp(v, "table") == 0)
		*out = OUT_TABLE;
	else if (strcmp(v, "json") == 0)
		*out = OUT_JSON;
	else if (strcmp(v, "value") == 0)
		*out = OUT_VALUE;
	else
		return -1;
	return 0;
}

/* ------------------------------------------------------------- dispatch */

int kvsctl_dispatch(struct session *s, int argc, char **argv)
{
	struct opt_spec spec[ARGS_MAX_OPTS];
	const struct command *cmd;
	enum out_fmt out = s->out;
	struct args a, cmd_args;
	char err[256];
	int rc;

	if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	if (!(cmd = kvsctl_find(argv[0])))
		return usage_error(NULL, "unknown command '%s'", argv[0]);
	memcpy(spec, global_opts, sizeof(global_opts));
	if (cmd->n_opts)
		memcpy(spec + N_GLOBAL, cmd->opts, sizeof(*spec) * (size_t)cmd->n_opts);
	if (args_parse(argc - 1, argv + 1, spec, N_GLOBAL + cmd->n_opts, &a, err, sizeof(err)))
		return usage_error(cmd->name, "%s", err);
	if (a.val[G_HELP]) {
		printf("Usage: kvsctl %s\n\n%s\n%s", cmd->usage, cmd->help, global_help);
		return 0;
	}
	if (a.val[G_OUTPUT] && parse_output(a.val[G_OUTPUT], &out) != 0)
		return usage_error(cmd->name, "bad output format '%s' (table, json or value)",
				   a.val[G_OUTPUT]);
	if ((rc = apply_globals(s, &a, cmd->name)) != 0)
		return rc;
	if (a.n_pos < cmd->min_pos)
		return usage_error(cmd->name, "missing argument: usage: kvsctl %s", cmd->usage);
	if (a.n_pos > cmd->max_pos)
		return usage_error(cmd->name, "too many arguments: usage: kvsctl %s", cmd->usage);
	/* the command sees its own options from index 0 */
	memset(&cmd_args, 0, sizeof(cmd_args));
	memcpy(cmd_args.val, a.val + N_GLOBAL, sizeof(*a.val) * (size_t)cmd->n_opts);
	memcpy(cmd_args.pos, a.pos, sizeof(a.pos));
	cmd_args.n_pos = a.n_pos;
	return cmd->run(s, &cmd_args, out);
}

int main(int argc, char **argv)
{
	struct session s = { 0 };
	char **args;
	int i = 1, n = 0, rc;

	s.endpoints = getenv("KVS_ENDPOINTS");
	if (!s.endpoints || !*s.endpoints)
		s.endpoints = DEFAULT_ENDPOINTS;
	s.token = getenv("KVS_TOKEN");
	/* global options before the command: skip them to find it */
	while (i < argc && argv[i][0] == '-' && argv[i][1] != '\0') {
		const char *name = argv[i] + (argv[i][1] == '-' ? 2 : 1);
		bool has_arg = false;

		if (strcmp(argv[i], "--version") == 0) {
			printf("kvsctl %s\n", KVS_CLIENT_VERSION);
			return 0;
		}
		for (int k = 0; k < N_GLOBAL; k++) {
			if ((argv[i][1] == '-' && strncmp(name, global_opts[k].name, strlen(global_opts[k].name)) == 0 &&
			     (name[strlen(global_opts[k].name)] == '\0')) ||
			    (argv[i][1] != '-' && name[0] == global_opts[k].short_name && name[1] == '\0'))
				has_arg = global_opts[k].has_arg;
		}
		i += has_arg ? 2 : 1;
	}
	if (i >= argc) {
		bool help = false;

		for (int k = 1; k < argc; k++)
			help = help || strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0;
		usage(help ? stdout : stderr);
		return help ? 0 : EXIT_USAGE;
	}
	/* the command first, then every other word: globals parse anywhere */
	if (!(args = calloc((size_t)argc + 1, sizeof(*args))))
		return EXIT_OTHER;
	args[n++] = argv[i];
	for (int k = 1; k < argc; k++)
		if (k != i)
			args[n++] = argv[k];
	rc = kvsctl_dispatch(&s, n, args);
	free(args);
	kvs_client_free(s.client);
	for (int k = G_ENDPOINTS; k <= G_KEY; k++)
		free(s.owned[k]);
	return rc;
}
