/*
 * kvsctl.h - what kvsctl's command files share: the session (one libkvs
 * client and the output format), the command table, output helpers.
 * kvsctl reaches nodes only through libkvs's public header.
 */
#ifndef KVSCTL_H
#define KVSCTL_H

#include <stdio.h>

#include "args.h"
#include "kvs_client.h"

enum out_fmt { OUT_DEFAULT, OUT_TABLE, OUT_JSON, OUT_VALUE };

/* The global options, and the client made from them on first use. */
struct session {
	const char *endpoints, *token, *cacert, *cert, *key;
	char *owned[5];              /* copies of the above set by options (a shell line is freed) */
	long timeout_ms;
	enum out_fmt out;            /* -o of the command line (a command may override) */
	kvs_client *client;          /* NULL until a command needs it */
	bool in_shell;
};

/* One command: name, one-line usage, its options, and its function, which
 * returns an exit status (args.h). */
struct command {
	const char *name;
	const char *usage;           /* "get KEY" ... */
	const char *help;            /* what it does, and its options */
	const struct opt_spec *opts;
	int n_opts;
	int (*run)(struct session *s, const struct args *a, enum out_fmt out);
	int min_pos, max_pos;
};

extern const struct command kv_commands[];      /* cmd_kv.c */
extern const int n_kv_commands;
extern const struct command cluster_commands[]; /* cmd_cluster.c */
extern const int n_cluster_commands;

/* Runs argv (argv[0] is the command) in s; returns the exit status.
 * main.c. */
int kvsctl_dispatch(struct session *s, int argc, char **argv);

/* The command called name, or NULL; and the i-th of all (NULL past the end). */
const struct command *kvsctl_find(const char *name);
const struct command *kvsctl_command_at(int i);

/* The client of s, created on first use; NULL after printing why. */
kvs_client *session_client(struct session *s);

/* Prints "kvsctl: <what>: <libkvs error and detail>" to stderr and returns
 * the exit status for rc. */
int fail(struct session *s, int rc, const char *what);

/* Prints a usage error and returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Table output: rows of cells, columns padded to their widest cell. */
struct table {
	int cols, rows;
	char **cells;                /* rows * cols, owned */
};
void table_init(struct table *t, int cols, const char *const *header);
void table_row(struct table *t, const char *const *cells);
void table_print(struct table *t, FILE *f);

/* The interactive shell (shell.c). */
extern const struct command shell_command;

/* Watch (cmd_watch.c). */
extern const struct command watch_command;

#endif /* KVSCTL_H */
