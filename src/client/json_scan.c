/*
 * json_scan.c - finds where each element of a reply's array, and its
 * "value" member, sit in the reply's text, so that libkvs hands out values
 * of listings and watch events byte for byte as the node stored them (a
 * parse and print through cJSON would change 1.50 into 1.5).
 *
 * Only a scanner: the reply was already parsed by cJSON (so it is valid
 * JSON) and this walks the same text once more, skipping values by their
 * brackets and strings.  Nesting is bounded by the text's length; nothing
 * is allocated.
 */
#include <string.h>

#include "client_int.h"

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* After the string that starts at p (a '"'), or NULL. */
static const char *skip_string(const char *p, const char *end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return NULL;
}

/* After the value that starts at p, or NULL. */
static const char *skip_value(const char *p, const char *end)
{
	size_t depth = 0;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') {
		while (p < end && !strchr(",]} \t\r\n", *p))
			p++;
		return p;
	}
	while (p < end) {
		if (*p == '"') {
			if (!(p = skip_string(p, end)))
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return NULL;
}

/* Is the string token at p exactly "name"? */
static bool key_is(const char *p, const char *end, const char *name)
{
	size_t n = strlen(name);

	return end - p >= (long)n + 2 && p[0] == '"' && memcmp(p + 1, name, n) == 0 && p[n + 1] == '"';
}

/* Walks the object at p: for each member calls back with key and value
 * bounds.  Returns the end of the object or NULL. */
static const char *walk_object(const char *p, const char *end, const char *want,
			       const char **vs, const char **ve)
{
	p = ws(p, end);
	if (p >= end || *p != '{')
		return NULL;
	p = ws(p + 1, end);
	if (p < end && *p == '}')
		return p + 1;
	while (p < end) {
		const char *k = p, *v;

		if (*p != '"' || !(p = skip_string(p, end)))
			return NULL;
		p = ws(p, end);
		if (p >= end || *p != ':')
			return NULL;
		v = ws(p + 1, end);
		if (!(p = skip_value(v, end)))
			return NULL;
		if (want && key_is(k, end, want)) {
			*vs = v;
			*ve = p;
		}
		p = ws(p, end);
		if (p < end && *p == '}')
			return p + 1;
		if (p >= end || *p != ',')
			return NULL;
		p = ws(p + 1, end);
	}
	return NULL;
}

int kc_scan_array(const char *text, size_t len, const char *array, struct kc_span *spans,
		  size_t max)
{
	const char *end, *as = NULL, *ae = NULL, *p;
	size_t n = 0;

	if (!text)
		return -1;
	end = text + len;
	if (!walk_object(text, end, array, &as, &ae) || !as || *as != '[')
		return -1;
	p = ws(as + 1, end);
	if (p < ae && *p == ']')
		return 0;
	while (p < ae) {
		const char *vs = NULL, *ve = NULL, *e;

		if (!(e = walk_object(p, ae, "value", &vs, &ve)) || n == max)
			return -1;
		spans[n].off = (size_t)(p - text);
		spans[n].len = (size_t)(e - p);
		spans[n].val_off = vs ? (size_t)(vs - text) : 0;
		spans[n].val_len = vs ? (size_t)(ve - vs) : 0;
		n++;
		p = ws(e, ae);
		if (p < ae && *p == ']')
			return (int)n;
		if (p >= ae || *p != ',')
			return -1;
		p = ws(p + 1, ae);
	}
	return -1;
}
