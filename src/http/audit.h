/*
 * audit.h - the audit log (SPEC section 12): one JSON line per write,
 * delete, transaction, admin request and refused request.
 *
 *   {"time":"2026-12-03T06:30:00.123Z","token":"app1","remote":"10.0.0.7",
 *    "method":"PUT","path":"/kv/app1/x","status":200}
 *
 * "token" is the token's name (never the token; null on an open API or
 * when no valid token was given).  Lines are queued (bounded) and written
 * by a thread of their own, so a slow disk never holds a request; a line
 * that finds the queue full is dropped and counted.  The file is opened
 * for appending and reopened on audit_reopen() (SIGHUP), so logrotate can
 * move it away; "stderr" writes to standard error.
 *
 * Threads: audit_log from any thread; the others from the main thread.
 */
#ifndef KVS_HTTP_AUDIT_H
#define KVS_HTTP_AUDIT_H

#include <stddef.h>
#include <stdint.h>

struct audit;

/* Opens target (a path or "stderr") and starts the writer.  Returns NULL
 * with a message in err when the file cannot be opened. */
struct audit *audit_open(const char *target, char *err, size_t errlen);

/* Writes what is queued, stops the writer, closes; a may be NULL. */
void audit_close(struct audit *a);

/* Asks the writer to reopen the file before its next line (SIGHUP). */
void audit_reopen(struct audit *a);

/* Queues one line; a may be NULL (no audit log). */
void audit_log(struct audit *a, const char *token_name, const char *remote, const char *method,
	       const char *path, int status);

/* Lines dropped because the queue was full. */
uint64_t audit_dropped(const struct audit *a);

#endif
