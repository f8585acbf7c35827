/*
 * args.h - kvsctl's parsing of what a person types: options of a command
 * (reentrant, so the shell can parse line after line), durations, shell
 * lines split into words, and the exit status of a libkvs code.  No I/O
 * beyond the error message given back; unit-tested (tests/unit/test_kvsctl_args.c).
 */
#ifndef KVSCTL_ARGS_H
#define KVSCTL_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARGS_MAX_OPTS 24
#define ARGS_MAX_POS 16

/* Exit status of kvsctl (SPEC section 13; 6 is ours: any other failure). */
#define EXIT_NOTFOUND 1
#define EXIT_USAGE 2
#define EXIT_PRECOND 3
#define EXIT_UNREACHABLE 4
#define EXIT_REFUSED 5
#define EXIT_OTHER 6

/* One option a command accepts. */
struct opt_spec {
	const char *name;            /* long name without "--" */
	char short_name;             /* 0: none */
	bool has_arg;
};

/* The result of parsing one command line. */
struct args {
	const char *val[ARGS_MAX_OPTS]; /* by position in the spec: the value, or "" for a flag */
	const char *pos[ARGS_MAX_POS];  /* positional arguments */
	int n_pos;
};

/*
 * Parses argv[0..argc) (the words after the command name) against spec
 * (n entries).  "--" ends options; "-" alone is a positional (stdin).
 * Returns 0, or -1 with a one-line message in err (size n_err).
 */
int args_parse(int argc, char **argv, const struct opt_spec *spec, int n, struct args *out,
	       char *err, size_t n_err);

/* A duration: a whole number with ms, s, m, h or d (bare: seconds), > 0.
 * Returns 0 and *ms, or -1. */
int args_duration_ms(const char *s, int64_t *ms);

/* A non-negative decimal integer without sign or junk.  Returns 0 or -1. */
int args_uint(const char *s, uint64_t *v);

/*
 * Splits line into words in place: blanks separate, '...' quotes
 * literally, "..." quotes with \" and \\ escapes, \ escapes outside quotes.
 * Returns the word count (<= max), or -1 for an unclosed quote or too many
 * words (message in err).
 */
int args_split(char *line, char **words, int max, char *err, size_t n_err);

/* The exit status for a libkvs return code (0 for >= 0). */
int args_exit_code(int kvs_code);

#endif /* KVSCTL_ARGS_H */
