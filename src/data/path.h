/*
 * path.h - decoding and validation of /kv/ paths (SPEC section 3).
 *
 * A key is one or more segments joined by '/'.  Each segment of the raw
 * request path is percent-decoded exactly once.  Refused: empty segments,
 * "." and "..", NUL and other control characters (0x00-0x1f, 0x7f), a '/'
 * produced by decoding %2F (it would make the key ambiguous), malformed
 * percent escapes, invalid UTF-8, and keys longer than PATH_KEY_MAX bytes.
 * Pure functions: any thread.
 */
#ifndef KVS_PATH_H
#define KVS_PATH_H

#include <stdbool.h>
#include <stddef.h>

#define PATH_KEY_MAX 1024 /* bytes of a decoded key */

enum path_kind {
	PATH_KEY,    /* "/kv/a/b"  -> key "a/b" */
	PATH_PREFIX, /* "/kv/a/b/" -> list under prefix "a/b/"; "/kv" and "/kv/" -> prefix "" */
};

/*
 * Decodes the raw request path (starting with "/kv", without query string).
 * On success returns 0 and writes the NUL-terminated key or prefix into out
 * (capacity outlen, at least PATH_KEY_MAX + 2), its length into *len and its
 * kind into *kind.  Returns KVS_EINVAL with a static reason in *why
 * otherwise; out is then unspecified.
 */
int path_decode(const char *raw, char *out, size_t outlen, size_t *len,
		enum path_kind *kind, const char **why);

/* The same for a path under another root ("/watch": "/watch/a/b" -> key
 * "a/b", "/watch/a/" -> prefix "a/", "/watch" and "/watch/" -> prefix ""). */
int path_decode_under(const char *raw, const char *root, char *out, size_t outlen, size_t *len,
		      enum path_kind *kind, const char **why);

/*
 * Validates an already-decoded key (as peers send them): same rules as
 * path_decode without percent-decoding.  Returns true if valid.
 */
bool path_key_valid(const char *key, size_t len);

/*
 * Percent-decodes one query parameter value in place-style into out
 * (NUL-terminated); returns 0 or KVS_EINVAL (bad escape, too long).
 */
int path_query_get(const char *query, const char *name, char *out, size_t outlen, bool *found);

#endif
