/*
 * utf8.h - the one UTF-8 check, shared by json.c (values) and path.c (keys).
 *
 * utf8_seq_len() returns the length (1 to 4) of the well-formed UTF-8
 * sequence at p[0..n), or 0 if it is ill-formed or truncated.  The ranges
 * are those of Unicode table 3-7: the narrowed second byte after E0, ED, F0
 * and F4 is what refuses overlong forms, surrogates and code points above
 * U+10FFFF.  Header-only: it is small and sits on the hot path of both.
 */
#ifndef KVS_UTF8_H
#define KVS_UTF8_H

#include <stddef.h>

static inline size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t need;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0; /* continuation byte, or overlong C0/C1 lead */
	if (c < 0xe0) {
		need = 2;
	} else if (c < 0xf0) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < need; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return need;
}

#endif
