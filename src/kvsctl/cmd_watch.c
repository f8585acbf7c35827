/*
 * cmd_watch.c - `kvsctl watch [KEY|PREFIX/]`: prints each change as it
 * comes until Ctrl-C (then exit 0), through libkvs's kvs_watch, which
 * resumes on the next endpoint when its node is lost.
 *
 * Ctrl-C sets a flag that kvs_watch polls (within about a second); a
 * second Ctrl-C ends the process at once.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "kvsctl.h"

static volatile int interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	if (interrupted)
		_exit(130);
	interrupted = 1;
}

static int print_event(const struct kvs_event *ev, void *arg)
{
	enum out_fmt out = *(const enum out_fmt *)arg;

	if (out == OUT_JSON)
		printf("%s\n", ev->raw);
	else if (out == OUT_VALUE)
		printf("%s\n", ev->json ? ev->json : "null");
	else
		printf("%llu  %s  %s  %s\n", (unsigned long long)ev->index, ev->type, ev->key,
		       ev->json ? ev->json : "");
	fflush(stdout);
	return 0;
}

enum { W_INDEX, W_SINCE, W_NO_VALUES, W_WAIT };
static const struct opt_spec watch_opts[] = {
	[W_INDEX] = { "index", 0, true }, [W_SINCE] = { "since", 0, true },
	[W_NO_VALUES] = { "no-values", 0, false }, [W_WAIT] = { "wait", 0, true },
};

static int run_watch(struct session *s, const struct args *a, enum out_fmt out)
{
	struct kvs_watch_options wo = { 0 };
	struct sigaction sa, old;
	kvs_client *c;
	uint64_t v;
	int64_t ms;
	int rc;

	if (a->val[W_INDEX]) {
		if (args_uint(a->val[W_INDEX], &v) != 0)
			return usage_error("watch", "bad --index '%s'", a->val[W_INDEX]);
		wo.index = v;
	}
	if (a->val[W_SINCE]) {
		if (args_uint(a->val[W_SINCE], &v) != 0 || v == 0)
			return usage_error("watch", "bad --since '%s' (ms since the epoch)",
					   a->val[W_SINCE]);
		wo.since = (int64_t)v;
	}
	if (a->val[W_WAIT]) {
		if (args_duration_ms(a->val[W_WAIT], &ms) != 0 || ms < 1000 || ms > 600000)
			return usage_error("watch", "bad --wait '%s' (1s..600s)", a->val[W_WAIT]);
		wo.wait_s = (int)(ms / 1000);
	}
	wo.no_values = a->val[W_NO_VALUES] != NULL;
	wo.cancel = &interrupted;
	if (!(c = session_client(s)))
		return EXIT_USAGE;
	if (out == OUT_DEFAULT)
		out = OUT_TABLE;
	interrupted = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	rc = kvs_watch(c, a->n_pos ? a->pos[0] : "", &wo, print_event, &out);
	sigaction(SIGINT, &old, NULL);
	if (rc == KVS_ECANCELED)
		return 0;
	return fail(s, rc, "watch");
}

const struct command watch_command = {
	"watch", "watch [KEY|PREFIX/] [--index N] [--since MS] [--no-values] [--wait DUR]",
	"Prints each change of KEY (or under PREFIX/, or everything) as it comes, until Ctrl-C.\n"
	"Lines: INDEX TYPE KEY VALUE (-o json: each event as JSON; -o value: values only).\n"
	"When the node is lost the watch resumes on the next endpoint without losing or\n"
	"repeating an event.\n"
	"  --index N        start after the endpoint's index N (default: from now)\n"
	"  --since MS       start with the changes stamped at or after MS (ms since the epoch)\n"
	"  --wait DUR       long-poll length (default 30s)\n", watch_opts, 4, run_watch, 0, 1,
};
