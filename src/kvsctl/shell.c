/*
 * shell.c - `kvsctl shell`: an interactive prompt (libedit) that runs
 * kvsctl commands on one client, with line editing, history (kept in
 * $KVSCTL_HISTORY, default ~/.kvsctl_history, 1000 lines) and Tab
 * completion of command names.  `exit`, `quit` or Ctrl-D leave.
 */
#include <stdlib.h>
#include <string.h>

#include <editline/readline.h>

#include "kvsctl.h"

#define SHELL_MAX_WORDS 64
#define SHELL_HISTORY_LINES 1000

/* The i-th word the shell knows: each command, then its own words. */
static const char *word_at(int i)
{
	static const char *const extra[] = { "exit", "quit", "help", NULL };
	const struct command *cmd = kvsctl_command_at(i);
	int n = 0;

	if (cmd)
		return cmd->name;
	while (kvsctl_command_at(n))
		n++;
	return i - n < 3 ? extra[i - n] : NULL;
}

/* Tab completion: the words that start with what was typed. */
static char *complete_command(const char *text, int state)
{
	static int i;
	const char *w;

	if (state == 0)
		i = 0;
	while ((w = word_at(i++)) != NULL)
		if (strncmp(w, text, strlen(text)) == 0)
			return strdup(w);
	return NULL;
}

static char **complete(const char *text, int start, int end)
{
	(void)end;
	rl_attempted_completion_over = 1; /* no file names */
	return start == 0 ? rl_completion_matches(text, complete_command) : NULL;
}

static void history_path(char *buf, size_t n)
{
	const char *p = getenv("KVSCTL_HISTORY"), *home = getenv("HOME");

	if (p && *p)
		snprintf(buf, n, "%s", p);
	else if (home && *home)
		snprintf(buf, n, "%s/.kvsctl_history", home);
	else
		buf[0] = '\0';
}

static int run_shell(struct session *s, const struct args *a, enum out_fmt out)
{
	char hist[4096], err[128];
	char *line;

	(void)a;
	(void)out;
	if (s->in_shell) {
		fprintf(stderr, "kvsctl: already in the shell\n");
		return EXIT_USAGE;
	}
	s->in_shell = true;
	rl_readline_name = "kvsctl";
	rl_attempted_completion_function = complete;
	history_path(hist, sizeof(hist));
	stifle_history(SHELL_HISTORY_LINES);
	if (hist[0])
		read_history(hist);
	printf("kvsctl shell on %s: commands as on the command line, 'help', 'exit'\n",
	       s->endpoints);
	fflush(stdout);
	while ((line = readline("kvs> ")) != NULL) {
		char *words[SHELL_MAX_WORDS];
		char *copy = strdup(line);
		int n = copy ? args_split(copy, words, SHELL_MAX_WORDS, err, sizeof(err)) : -1;

		if (n > 0)
			add_history(line);
		if (n < 0)
			fprintf(stderr, "kvsctl: %s\n", copy ? err : "out of memory");
		else if (n > 0 && (strcmp(words[0], "exit") == 0 || strcmp(words[0], "quit") == 0))
			n = -2;
		else if (n > 0)
			kvsctl_dispatch(s, n, words);
		fflush(stdout);
		fflush(stderr);
		free(copy);
		free(line);
		if (n == -2)
			break;
	}
	if (hist[0])
		write_history(hist);
	s->in_shell = false;
	return 0;
}

const struct command shell_command = {
	"shell", "shell",
	"An interactive prompt: every command above, typed without 'kvsctl', on one\n"
	"connection.  History (up arrow; saved in $KVSCTL_HISTORY or ~/.kvsctl_history),\n"
	"Tab completes command names; 'exit', 'quit' or Ctrl-D leave.\n", NULL, 0, run_shell, 0, 0,
};
