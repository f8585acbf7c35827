/*
 * audit.c - the audit log (see audit.h).
 *
 * A request formats its line into a ring of AUDIT_QUEUE slots under `lock`
 * and signals; the writer thread takes every queued line, writes them with
 * one fwrite each and flushes once per batch.  A full ring drops the new
 * line (counted): the write path never waits for the disk.
 */
#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "log.h"

#define AUDIT_QUEUE 8192
#define AUDIT_LINE 1024  /* a line, at most (a long path is cut) */

struct audit {
	char target[1024];
	FILE *f;                 /* (writer) */
	bool is_stderr;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	char (*ring)[AUDIT_LINE]; /* (lock) AUDIT_QUEUE lines */
	size_t head, count;       /* (lock) */
	bool stopping, reopen;    /* (lock) */
	_Atomic uint64_t dropped;
};

static FILE *open_target(struct audit *a)
{
	return a->is_stderr ? stderr : fopen(a->target, "ae");
}

static void *writer(void *arg)
{
	struct audit *a = arg;
	char (*batch)[AUDIT_LINE] = malloc(sizeof(*batch) * 256);

	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (!a->count && !a->stopping && !a->reopen)
			pthread_cond_wait(&a->wake, &a->lock);
		if (a->reopen) {
			a->reopen = false;
			pthread_mutex_unlock(&a->lock);
			if (!a->is_stderr) {
				FILE *f = open_target(a);
				if (f) {
					fclose(a->f);
					a->f = f;
				} else {
					log_error("audit_reopen_failed", "file=\"%s\" error=\"%s\"",
						  a->target, strerror(errno));
				}
			}
			pthread_mutex_lock(&a->lock);
			continue;
		}
		if (!a->count && a->stopping)
			break;
		size_t n = 0;
		while (a->count && n < 256 && batch) {
			memcpy(batch[n++], a->ring[a->head], AUDIT_LINE);
			a->head = (a->head + 1) % AUDIT_QUEUE;
			a->count--;
		}
		pthread_mutex_unlock(&a->lock);
		for (size_t i = 0; i < n; i++)
			fputs(batch[i], a->f);
		fflush(a->f);
		pthread_mutex_lock(&a->lock);
		if (!batch)
			break;
	}
	pthread_mutex_unlock(&a->lock);
	free(batch);
	return NULL;
}

struct audit *audit_open(const char *target, char *err, size_t errlen)
{
	struct audit *a = calloc(1, sizeof(*a));

	if (!a || !(a->ring = calloc(AUDIT_QUEUE, sizeof(*a->ring)))) {
		snprintf(err, errlen, "audit_log: out of memory");
		free(a);
		return NULL;
	}
	snprintf(a->target, sizeof(a->target), "%s", target);
	a->is_stderr = strcmp(target, "stderr") == 0;
	if (!(a->f = open_target(a))) {
		snprintf(err, errlen, "audit_log: cannot open %s: %s", target, strerror(errno));
		free(a->ring);
		free(a);
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	if (pthread_create(&a->thread, NULL, writer, a) != 0) {
		snprintf(err, errlen, "audit_log: cannot start its writer thread");
		if (!a->is_stderr)
			fclose(a->f);
		free(a->ring);
		free(a);
		return NULL;
	}
	pthread_setname_np(a->thread, "kvs-audit");
	return a;
}

void audit_close(struct audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	if (!a->is_stderr)
		fclose(a->f);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->wake);
	free(a->ring);
	free(a);
}

void audit_reopen(struct audit *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->reopen = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

void audit_log(struct audit *a, const char *token_name, const char *remote, const char *method,
	       const char *path, int status)
{
	char line[AUDIT_LINE], when[40];
	struct timespec ts;
	struct tm tm;
	struct buf b;

	if (!a)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	buf_init(&b, AUDIT_LINE - 2);
	buf_printf(&b, "{\"time\":\"%s.%03ldZ\",\"token\":", when, ts.tv_nsec / 1000000);
	if (token_name)
		buf_json_str(&b, token_name, strlen(token_name));
	else
		buf_adds(&b, "null");
	buf_adds(&b, ",\"remote\":");
	buf_json_str(&b, remote, strlen(remote));
	buf_adds(&b, ",\"method\":");
	buf_json_str(&b, method, strlen(method));
	buf_printf(&b, ",\"status\":%d,\"path\":", status);
	size_t plen = strlen(path);
	buf_json_str(&b, path, plen > 512 ? 512 : plen); /* last: a long path is what is cut */
	buf_adds(&b, "}\n");
	if (buf_failed(&b) || b.len >= sizeof(line)) {
		buf_release(&b);
		atomic_fetch_add(&a->dropped, 1);
		return;
	}
	memcpy(line, b.data, b.len + 1);
	buf_release(&b);
	pthread_mutex_lock(&a->lock);
	if (a->count == AUDIT_QUEUE) {
		pthread_mutex_unlock(&a->lock);
		atomic_fetch_add(&a->dropped, 1);
		return;
	}
	memcpy(a->ring[(a->head + a->count) % AUDIT_QUEUE], line, strlen(line) + 1);
	a->count++;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
}

uint64_t audit_dropped(const struct audit *a)
{
	return a ? atomic_load(&a->dropped) : 0;
}
