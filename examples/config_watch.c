/*
 * config_watch.c - a libkvs example: prints every key under a prefix with
 * its value, then reprints the whole prefix each time something under it
 * changes.  What a service does to follow its configuration.
 *
 *   config_watch ENDPOINTS PREFIX [COUNT]
 *   e.g. config_watch 127.0.0.1:8081,127.0.0.1:8082 config/app/
 *
 * COUNT (optional) stops after that many changes (for tests); the token
 * comes from KVS_TOKEN.  Built by `make all` against the staged install's
 * pkg-config (`pkg-config --cflags --libs kvs`).
 */
#include <stdio.h>
#include <stdlib.h>

#include <kvs_client.h>

struct state {
	kvs_client *c;
	const char *prefix;
	long changes, stop_after;
};

/* Prints "key = value" for every key under the prefix, all pages. */
static int print_prefix(struct state *st)
{
	struct kvs_list_options lo = { .values = true };
	const struct kvs_item *it;
	kvs_list *l;
	int rc;

	if ((rc = kvs_list_open(st->c, st->prefix, &lo, &l)) != 0)
		return rc;
	printf("--- %s\n", st->prefix);
	while ((rc = kvs_list_next(l, &it)) == 1)
		printf("%s = %s\n", it->key, it->json ? it->json : "null");
	kvs_list_free(l);
	fflush(stdout);
	return rc;
}

static int on_change(const struct kvs_event *ev, void *arg)
{
	struct state *st = arg;
	int rc;

	printf("# %s %s\n", ev->type, ev->key);
	if ((rc = print_prefix(st)) != 0)
		return rc;
	return st->stop_after && ++st->changes >= st->stop_after ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct kvs_client_options opt = { 0 };
	struct state st = { 0 };
	int rc;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s ENDPOINTS PREFIX [COUNT]\n", argv[0]);
		return 2;
	}
	opt.endpoints = argv[1];
	opt.token = getenv("KVS_TOKEN");
	st.prefix = argv[2];
	st.stop_after = argc == 4 ? atol(argv[3]) : 0;
	if ((rc = kvs_client_new(&opt, &st.c)) != 0) {
		fprintf(stderr, "config_watch: %s\n", kvs_client_strerror(rc));
		return 2;
	}
	rc = print_prefix(&st);
	if (rc == 0) {
		struct kvs_watch_options wo = { 0 };

		rc = kvs_watch(st.c, st.prefix, &wo, on_change, &st);
	}
	if (rc < 0)
		fprintf(stderr, "config_watch: %s: %s\n", kvs_client_strerror(rc),
			kvs_client_errmsg(st.c));
	kvs_client_free(st.c);
	return rc < 0 ? 1 : 0;
}
