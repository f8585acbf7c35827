/*
 * buf.h - a growable byte buffer with a hard size cap (after curl's dynbuf).
 *
 * Used to build HTTP replies and peer messages in one piece, so each reply
 * goes out in a single write.  Errors are sticky: once an append fails
 * (allocation, or the cap would be passed) every later append is a no-op
 * and buf_failed() is true, so callers check once at the end.
 * A buf is owned by one thread at a time.
 */
#ifndef KVS_BUF_H
#define KVS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;   /* NUL-terminated when len > 0; owned */
	size_t len;   /* bytes used */
	size_t alloc; /* bytes allocated */
	size_t max;   /* cap on len */
	int err;      /* 0, KVS_ENOMEM or KVS_ETOOBIG: sticky */
};

/* Starts an empty buffer that never grows past max bytes. */
void buf_init(struct buf *b, size_t max);

/* Frees the memory; b may be reused after buf_init(). */
void buf_release(struct buf *b);

/* Empties b, keeping its memory and clearing the error. */
void buf_reset(struct buf *b);

/* Hands the data over to the caller (who frees it); b becomes empty. */
char *buf_detach(struct buf *b, size_t *len);

void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Writes s[0..n) as the inside of a JSON string (no quotes: '"' and '\\'
 * escaped, control bytes as \\u00XX, the rest as is) into dst, at most cap
 * bytes and never half an escape.  Returns the bytes written.  Pure.
 */
size_t buf_json_escape(char *dst, size_t cap, const char *s, size_t n);

/* Appends s[0..n) as a quoted JSON string (input must be valid UTF-8). */
void buf_json_str(struct buf *b, const char *s, size_t n);

/* Makes room for n more bytes and returns where they go (NULL on error);
 * the caller then calls buf_commit(b, n). */
char *buf_reserve(struct buf *b, size_t n);
void buf_commit(struct buf *b, size_t n);

static inline bool buf_failed(const struct buf *b)
{
	return b->err != 0;
}

#endif
