/*
 * json.h - strict RFC 8259 validation of client JSON values.
 *
 * cJSON alone accepts leading zeros, raw control characters in strings,
 * invalid UTF-8 and trailing garbage; json_valid() refuses all of them, so
 * that what kvs stores byte for byte is JSON every other parser accepts.
 * Any JSON value is allowed at top level (object, array, string, number,
 * true, false, null), surrounded by optional whitespace.  Nesting deeper
 * than JSON_MAX_DEPTH is refused (stack safety).  Pure: any thread.
 */
#ifndef KVS_JSON_H
#define KVS_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 256

/*
 * Returns true if buf[0..len) is one valid JSON text.  On false, *why (if
 * not NULL) is a static reason and *offset (if not NULL) the byte offset of
 * the first error.
 */
bool json_valid(const char *buf, size_t len, const char **why, size_t *offset);

/*
 * True if the JSON text buf[0..len) contains a \u0000 escape.  cJSON turns
 * one into a real NUL, which would silently cut a C string short; peer
 * messages are refused when they carry one (values keep theirs: inside a
 * value carried as a string the escape is itself escaped, "\\u0000").
 */
bool json_has_nul_escape(const char *buf, size_t len);

#endif
