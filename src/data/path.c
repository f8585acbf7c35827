/*
 * path.c - decoding and validation of /kv/ paths and query parameters.
 *
 * A client names a value with a raw request path such as "/kv/users/j%C3%B6rg".
 * path_decode() turns it into the key stored on disk ("users/jörg") or, when
 * it ends in '/', into a prefix to list ("users/").  Peers send keys already
 * decoded, and path_key_valid() holds them to the same rules, so that no key
 * can reach the store through replication that a client could not have
 * written through the API.
 *
 * The rules, applied to each segment after decoding it exactly once:
 *  - segments are non-empty: "a//b" and a leading or doubled '/' are refused,
 *    otherwise "a/b" and "a//b" would be two keys a reader cannot tell apart;
 *  - "." and ".." are refused, also when spelled "%2E" or "%2e%2E": proxies
 *    and clients normalise them away, so such a key could not be read back;
 *  - no byte 0x00-0x1f or 0x7f: they break logs, headers and C strings;
 *  - no '/' from "%2F": it would make the key ambiguous with a deeper path;
 *  - '%' must be followed by two hex digits ("%G1" and a trailing '%' are
 *    refused), and the decoded result is not decoded again ("%2541" -> "%41");
 *  - the decoded bytes are valid UTF-8 (shortest form, no UTF-16
 *    surrogates, nothing above U+10FFFF), because keys are echoed in JSON;
 *  - a key, or a prefix without its trailing '/', is at most PATH_KEY_MAX
 *    bytes after decoding.
 *
 * Everything here is a pure function over caller-owned memory: any thread,
 * no locks, no allocation, no state.
 */
#include "path.h"

#include <assert.h>
#include <string.h>

#include "hex.h"
#include "kvs.h"
#include "utf8.h"

/* ---- internals -------------------------------------------------------- */

/*
 * Checks one decoded, non-empty segment s[0..n) against the rules that do
 * not depend on how it was spelled.  Returns NULL if it is acceptable, else
 * a static reason.
 */
static const char *segment_check(const unsigned char *s, size_t n)
{
	size_t i = 0;

	assert(n > 0);
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return "'.' or '..' segment";
	while (i < n) {
		size_t l;

		if (s[i] < 0x20 || s[i] == 0x7f)
			return "control character in path";
		l = utf8_seq_len(s + i, n - i);
		if (!l)
			return "invalid UTF-8 in path";
		i += l;
	}
	return NULL;
}

/*
 * Percent-decodes the raw segment raw[0..rawlen) and appends it to
 * out[*n..], never letting *n exceed PATH_KEY_MAX.  Returns NULL, or a
 * static reason.  A decoded '/' is refused here because only here is it
 * still distinguishable from a separator.
 */
static const char *segment_decode(const char *raw, size_t rawlen,
				  char *out, size_t *n)
{
	size_t i = 0, o = *n;

	while (i < rawlen) {
		unsigned char c = (unsigned char)raw[i];

		if (c == '%') {
			int h, l;

			if (rawlen - i < 3)
				return "bad percent escape";
			h = hex_value((unsigned char)raw[i + 1]);
			l = hex_value((unsigned char)raw[i + 2]);
			if (h < 0 || l < 0)
				return "bad percent escape";
			c = (unsigned char)(h << 4 | l);
			if (c == '/')
				return "encoded '/' in segment";
			i += 3;
		} else {
			i++;
		}
		if (o >= PATH_KEY_MAX)
			return "path too long";
		out[o++] = (char)c;
	}
	*n = o;
	return NULL;
}

/* ---- public API ------------------------------------------------------- */

/*
 * Splits raw after "/kv/" at each '/', decodes and checks every segment,
 * and joins them back with '/' in out.  A final '/' makes the result a
 * prefix, kept with its trailing '/' so that listing "a/" never matches
 * "ab".  Nothing reaches *len or *kind unless the whole path is good.
 */
int path_decode(const char *raw, char *out, size_t outlen, size_t *len,
		enum path_kind *kind, const char **why)
{
	return path_decode_under(raw, "/kv", out, outlen, len, kind, why);
}

int path_decode_under(const char *raw, const char *root, char *out, size_t outlen, size_t *len,
		      enum path_kind *kind, const char **why)
{
	size_t rlen = strlen(root);
	const char *seg, *reason;
	size_t n = 0;

	/* The contract: room for a full key, its trailing '/' and NUL. */
	assert(outlen >= PATH_KEY_MAX + 2);
	(void)outlen;

	if (strncmp(raw, root, rlen) != 0 || (raw[rlen] != '\0' && raw[rlen] != '/')) {
		reason = "path not under the resource";
		goto fail;
	}
	if (raw[rlen] == '\0' || raw[rlen + 1] == '\0') {
		/* "/kv" and "/kv/" both name the whole keyspace. */
		out[0] = '\0';
		*len = 0;
		*kind = PATH_PREFIX;
		return 0;
	}

	seg = raw + rlen + 1;
	for (;;) {
		const char *end = strchrnul(seg, '/');
		size_t start;

		if (end == seg) {
			reason = "empty path segment";
			goto fail;
		}
		if (n > 0) {
			if (n >= PATH_KEY_MAX) {
				reason = "path too long";
				goto fail;
			}
			out[n++] = '/';
		}
		start = n;
		reason = segment_decode(seg, (size_t)(end - seg), out, &n);
		if (reason)
			goto fail;
		reason = segment_check((const unsigned char *)out + start,
				       n - start);
		if (reason)
			goto fail;

		if (*end == '\0') {
			out[n] = '\0';
			*len = n;
			*kind = PATH_KEY;
			return 0;
		}
		if (end[1] == '\0') {
			/* n <= PATH_KEY_MAX, so '/' and NUL fit by contract. */
			out[n++] = '/';
			out[n] = '\0';
			*len = n;
			*kind = PATH_PREFIX;
			return 0;
		}
		seg = end + 1;
	}

fail:
	if (why)
		*why = reason;
	return KVS_EINVAL;
}

/*
 * Same walk as path_decode over bytes that are already decoded: '%' is an
 * ordinary character here, and '/' only ever separates segments.  An
 * embedded NUL fails as a control character, which is what keeps a
 * length-counted key from turning into a shorter C string downstream.
 */
bool path_key_valid(const char *key, size_t len)
{
	const unsigned char *s = (const unsigned char *)key;
	size_t i = 0;

	if (len == 0 || len > PATH_KEY_MAX)
		return false;
	/* A trailing '/' is the prefix form, an empty last segment. */
	if (s[len - 1] == '/')
		return false;
	while (i < len) {
		const unsigned char *slash = memchr(s + i, '/', len - i);
		size_t seglen = slash ? (size_t)(slash - (s + i)) : len - i;

		if (seglen == 0 || segment_check(s + i, seglen))
			return false;
		i += seglen + 1;
	}
	return true;
}

/*
 * Scans the raw query string for the first "name=value" pair (a bare
 * "name" counts as an empty value) and decodes the value, '+' standing for
 * a space as HTML forms send it.  Parameter names are compared as sent,
 * undecoded: kvs's own names ("limit", "after", "values") are plain ASCII.
 * The value is checked in a first pass and written in a second, so that a
 * refused value leaves out and *found untouched.  A decoded NUL is refused:
 * out is a C string and would silently end early.
 */
int path_query_get(const char *query, const char *name, char *out,
		   size_t outlen, bool *found)
{
	size_t namelen = strlen(name);
	const char *p = query;

	while (p && *p) {
		const char *end = strchrnul(p, '&');
		const char *val = NULL, *vend = end;
		size_t need = 0;

		if ((size_t)(end - p) >= namelen && !memcmp(p, name, namelen) &&
		    (p[namelen] == '=' || p + namelen == end))
			val = p + namelen + (p + namelen == end ? 0 : 1);
		if (!val) {
			p = *end ? end + 1 : end;
			continue;
		}

		/* Pass 1: validate and measure. */
		for (const char *v = val; v < vend; need++) {
			if (*v == '%') {
				int h, l;

				if (vend - v < 3)
					return KVS_EINVAL;
				h = hex_value((unsigned char)v[1]);
				l = hex_value((unsigned char)v[2]);
				if (h < 0 || l < 0 || (h | l) == 0)
					return KVS_EINVAL;
				v += 3;
			} else {
				v++;
			}
		}
		if (need >= outlen)
			return KVS_EINVAL;

		/* Pass 2: write. */
		need = 0;
		for (const char *v = val; v < vend;) {
			if (*v == '%') {
				out[need++] = (char)(hex_value((unsigned char)v[1]) << 4 |
						     hex_value((unsigned char)v[2]));
				v += 3;
			} else {
				out[need++] = *v == '+' ? ' ' : *v;
				v++;
			}
		}
		out[need] = '\0';
		*found = true;
		return 0;
	}
	*found = false;
	return 0;
}
