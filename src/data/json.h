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

#include <cjson/cJSON.h>

#define JSON_MAX_DEPTH 256

/*
 * Bounds for a JSON message from the network (peer requests and peer
 * replies), checked before cJSON sees it.  cJSON recurses once per level
 * (civetweb workers have HTTP_WORKER_STACK_BYTES of stack) and builds one
 * node of about 64 bytes per value, so a text of tiny values would cost
 * ~30x its size: with these caps a message costs at most its own size in
 * strings plus JSON_PEER_MAX_VALUES nodes (~6.4 MB).  Every peer message
 * is at most 3 levels deep and holds at most WIRE_MAX_ITEMS records of 6
 * values each.
 */
#define JSON_PEER_MAX_DEPTH 16
#define JSON_PEER_MAX_VALUES 100000

/*
 * Returns true if buf[0..len) is one valid JSON text.  On false, *why (if
 * not NULL) is a static reason and *offset (if not NULL) the byte offset of
 * the first error.
 */
bool json_valid(const char *buf, size_t len, const char **why, size_t *offset);

/*
 * Parses buf[0..len) with cJSON after checking, in one pass with no
 * recursion and no allocation, that it is strict JSON (as json_valid), no
 * deeper than max_depth (capped at JSON_MAX_DEPTH), with at most
 * max_values values in all, and without a \u0000 escape.  Returns the tree
 * (caller frees with cJSON_Delete) or NULL with a static reason in *why
 * (if not NULL).  Any thread.
 */
cJSON *json_parse_bounded(const char *buf, size_t len, size_t max_depth, size_t max_values,
			  const char **why);

/*
 * True if the JSON text buf[0..len) contains a \u0000 escape.  cJSON turns
 * one into a real NUL, which would silently cut a C string short; peer
 * messages are refused when they carry one (values keep theirs: inside a
 * value carried as a string the escape is itself escaped, "\\u0000").
 */
bool json_has_nul_escape(const char *buf, size_t len);

/*
 * Walking a text json_valid() accepted, without a tree: where each value
 * starts and ends, so a member's value can be taken byte for byte (a
 * transaction's values are stored exactly as sent).  No recursion, no
 * allocation.  On text that is not valid JSON the results are unspecified
 * (but stay within len).
 */

/* The first index at or after i that is not whitespace (or len). */
size_t json_skip_ws(const char *b, size_t len, size_t i);

/* b[i] starts a value: the index just past its end. */
size_t json_value_end(const char *b, size_t len, size_t i);

/* One member of an object, or one element of an array: spans [start, end). */
struct json_member {
	size_t name, name_end;   /* the name with its quotes (objects only) */
	size_t value, value_end; /* the value */
};

/*
 * Steps to the next member of the object (or element of the array) whose
 * contents start at *pos (just past its '{' or '[', then past the previous
 * member).  Returns false at the closing bracket.
 */
bool json_next_member(const char *b, size_t len, size_t *pos, struct json_member *m);
bool json_next_element(const char *b, size_t len, size_t *pos, struct json_member *m);

#endif
