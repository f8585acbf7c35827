/*
 * buf.c - capped growable buffer (see buf.h).
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->alloc = 0;
	b->max = max;
	b->err = 0;
}

void buf_release(struct buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *p = b->data;

	if (len)
		*len = b->len;
	buf_init(b, b->max);
	return p;
}

char *buf_reserve(struct buf *b, size_t n)
{
	if (b->err)
		return NULL;
	if (n > b->max - b->len) {
		b->err = KVS_ETOOBIG;
		return NULL;
	}
	if (b->len + n + 1 > b->alloc) {
		size_t want = b->alloc ? b->alloc : 256;
		while (want < b->len + n + 1)
			want *= 2;
		char *p = realloc(b->data, want);
		if (!p) {
			b->err = KVS_ENOMEM;
			return NULL;
		}
		b->data = p;
		b->alloc = want;
	}
	return b->data + b->len;
}

void buf_commit(struct buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	char *dst;

	if (n == 0) /* p may be NULL then, and memcpy must not see it */
		return;
	dst = buf_reserve(b, n);
	if (!dst)
		return;
	memcpy(dst, p, n);
	buf_commit(b, n);
}

void buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		buf_add(b, small, (size_t)n);
		return;
	}
	char *dst = buf_reserve(b, (size_t)n);
	if (!dst)
		return;
	va_start(ap, fmt);
	vsnprintf(dst, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf_commit(b, (size_t)n);
}

size_t buf_json_escape(char *dst, size_t cap, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c == '"' || c == '\\' ? 2 : c < 0x20 ? 6 : 1;

		if (o + len > cap)
			break;
		if (len == 2) {
			dst[o++] = '\\';
			dst[o++] = (char)c;
		} else if (len == 6) {
			memcpy(dst + o, "\\u00", 4);
			dst[o + 4] = hex[c >> 4];
			dst[o + 5] = hex[c & 15];
			o += 6;
		} else {
			dst[o++] = (char)c;
		}
	}
	return o;
}

void buf_json_str(struct buf *b, const char *s, size_t n)
{
	size_t need = n + 2;
	char *dst;

	/* measure first: reserving the worst case (6 bytes a byte) would trip
	 * the cap for text that fits */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		need += c == '"' || c == '\\' ? 1 : c < 0x20 ? 5 : 0;
	}
	if (!(dst = buf_reserve(b, need)))
		return;
	dst[0] = '"';
	buf_json_escape(dst + 1, need - 2, s, n);
	dst[need - 1] = '"';
	buf_commit(b, need);
}
