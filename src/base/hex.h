/*
 * hex.h - the value of one hexadecimal digit, shared by every parser that
 * reads hex text: JSON \u escapes (json.c), percent escapes in paths and
 * query strings (path.c), and anti-entropy digests (anti_entropy.c).
 * Pure, header only: any thread.
 */
#ifndef KVS_HEX_H
#define KVS_HEX_H

/* The value (0..15) of the hex digit c, either case, or -1 if c is none. */
static inline int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
