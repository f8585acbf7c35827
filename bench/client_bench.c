/*
 * client_bench.c - libkvs from one thread, one keep-alive connection
 * (bench/run.sh, BENCH_ONLY=client; issue 21).
 *
 *   kvs_client_bench ENDPOINT get|put PREFIX NKEYS SECONDS SIZE
 *
 * Calls kvs_get (or kvs_put of a SIZE-byte JSON string) on PREFIX/k%08d,
 * keys drawn at random from NKEYS, back to back for SECONDS, and prints
 * the line run.sh reads, in wrk's RESULT format:
 *   RESULT <calls/s> <p50 us> <p99 us> <calls> <failed> 0
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kvs_client.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	struct kvs_client_options opt = { 0 };
	size_t cap = 1 << 20, n = 0, failed = 0;
	double *lat, t0, end;
	kvs_client *c;
	char *value;
	int nkeys, size;
	bool put;

	if (argc != 7 || (strcmp(argv[2], "get") != 0 && strcmp(argv[2], "put") != 0)) {
		fprintf(stderr, "usage: %s ENDPOINT get|put PREFIX NKEYS SECONDS SIZE\n", argv[0]);
		return 2;
	}
	put = strcmp(argv[2], "put") == 0;
	nkeys = atoi(argv[4]);
	size = atoi(argv[6]);
	if (nkeys < 1 || size < 2 || !(lat = malloc(cap * sizeof(*lat))) ||
	    !(value = malloc((size_t)size + 1)))
		return 2;
	memset(value, 'v', (size_t)size);
	value[0] = value[size - 1] = '"';
	value[size] = '\0';
	opt.endpoints = argv[1];
	if (kvs_client_new(&opt, &c) != 0)
		return 2;
	srand(42);
	end = now_s() + atof(argv[5]);
	while ((t0 = now_s()) < end) {
		char key[256];
		struct kvs_value v;
		int rc;

		snprintf(key, sizeof(key), "%s/k%08d", argv[3], rand() % nkeys);
		if (put) {
			rc = kvs_put(c, key, value, (size_t)size, NULL, NULL);
		} else if ((rc = kvs_get(c, key, &v)) == 0) {
			kvs_value_release(&v);
		}
		if (rc)
			failed++;
		if (n < cap)
			lat[n] = (now_s() - t0) * 1e6;
		n++;
	}
	qsort(lat, n < cap ? n : cap, sizeof(*lat), cmp_double);
	printf("RESULT %.0f %.0f %.0f %zu %zu 0\n", (double)n / atof(argv[5]),
	       n ? lat[(n < cap ? n : cap) / 2] : 0.0,
	       n ? lat[(size_t)((double)(n < cap ? n : cap) * 0.99)] : 0.0, n, failed);
	kvs_client_free(c);
	free(lat);
	free(value);
	return failed ? 1 : 0;
}
