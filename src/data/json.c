/*
 * json.c - strict RFC 8259 validator for the values clients store.
 *
 * kvs stores a PUT body byte for byte and hands it back on GET, so the body
 * must be JSON that any parser accepts, not merely what cJSON tolerates.
 * json_valid() checks the grammar of RFC 8259 exactly:
 *  - whitespace is space, tab, LF and CR only; a UTF-8 byte order mark is
 *    refused (RFC 8259 section 8.1: senders MUST NOT add one);
 *  - numbers are -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?: no leading
 *    zeros, no '+', no bare '.', no NaN or Infinity;
 *  - strings hold no raw byte below 0x20, only the escapes \" \\ \/ \b \f
 *    \n \r \t and \uXXXX, and only well-formed UTF-8 (no overlong forms, no
 *    encoded surrogates, nothing above U+10FFFF);
 *  - \u escapes may form a surrogate pair, but a lone surrogate (a high one
 *    not followed by a low one, or a low one on its own) is refused: the
 *    grammar allows it, but it names no character, and many parsers either
 *    reject it or silently replace it, so the value would not round-trip;
 *  - literals are exactly true, false and null;
 *  - one value, then only whitespace to the end; no empty input.
 * Bytes outside strings must be ASCII grammar characters, so checking UTF-8
 * inside strings covers the whole text.
 *
 * It runs on every write, so it is one forward pass over the bytes with no
 * allocation and no recursion: nesting is tracked in a fixed stack of
 * JSON_MAX_DEPTH bytes (one per open container, '[' or '{'), which makes
 * the depth limit a plain bounds check and keeps hostile input from
 * reaching for the C stack.  buf is not NUL-terminated: every read is
 * guarded by the cursor's length.  Pure function: any thread, no locks.
 */
#include "json.h"
#include "hex.h"
#include "utf8.h"

#include <assert.h>
#include <stdint.h>
#include <string.h>

/* ---- types ------------------------------------------------------------ */

struct json_cursor {
	const unsigned char *p; /* the text, not NUL-terminated */
	size_t len;             /* bytes in p */
	size_t i;               /* next byte to read */
	const char *why;        /* reason of the first error, static */
	size_t max_depth;       /* containers open at once, at most JSON_MAX_DEPTH */
	size_t max_values;      /* values in the whole text */
	size_t values;          /* values seen so far */
};

/* What the main loop expects next. */
enum json_state {
	JS_VALUE, /* any value */
	JS_KEY,   /* a member name: a string, then ':' */
	JS_AFTER, /* a value just ended: ',' or a closing bracket, or the end */
};

/* ---- internals -------------------------------------------------------- */

/* Records the first error at the cursor; always returns false. */
static bool fail(struct json_cursor *c, const char *why)
{
	c->why = why;
	return false;
}

static void skip_ws(struct json_cursor *c)
{
	while (c->i < c->len) {
		unsigned char ch = c->p[c->i];

		if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
			break;
		c->i++;
	}
}

/*
 * Reads the four hex digits of a \u escape at c->i into *cp and moves past
 * them.  On error the cursor stays at the first bad digit.
 */
static bool read_hex4(struct json_cursor *c, unsigned *cp)
{
	unsigned v = 0;

	for (int k = 0; k < 4; k++) {
		int h;

		if (c->i >= c->len)
			return fail(c, "unterminated string");
		h = hex_value(c->p[c->i]);
		if (h < 0)
			return fail(c, "invalid \\u escape");
		v = v << 4 | (unsigned)h;
		c->i++;
	}
	*cp = v;
	return true;
}

/*
 * Checks the escape whose backslash is at c->i and moves past it.  A high
 * surrogate must be followed at once by a \u low surrogate.
 */
static bool scan_escape(struct json_cursor *c)
{
	size_t at = c->i;
	unsigned cp, lo;

	c->i++; /* the backslash */
	if (c->i >= c->len)
		return fail(c, "unterminated string");
	switch (c->p[c->i]) {
	case '"': case '\\': case '/': case 'b':
	case 'f': case 'n': case 'r': case 't':
		c->i++;
		return true;
	case 'u':
		break;
	default:
		return fail(c, "invalid escape");
	}
	c->i++;
	if (!read_hex4(c, &cp))
		return false;
	if (cp >= 0xdc00 && cp <= 0xdfff) {
		c->i = at;
		return fail(c, "lone surrogate in \\u escape");
	}
	if (cp < 0xd800 || cp > 0xdbff)
		return true;
	/* High surrogate: the low half must follow as "\uDC00".."\uDFFF". */
	if (c->len - c->i < 2 || c->p[c->i] != '\\' || c->p[c->i + 1] != 'u') {
		c->i = at;
		return fail(c, "lone surrogate in \\u escape");
	}
	c->i += 2;
	if (!read_hex4(c, &lo))
		return false;
	if (lo < 0xdc00 || lo > 0xdfff) {
		c->i = at;
		return fail(c, "lone surrogate in \\u escape");
	}
	return true;
}

/* Checks the string whose opening quote is at c->i and moves past it. */
static bool scan_string(struct json_cursor *c)
{
	c->i++; /* the opening quote */
	while (c->i < c->len) {
		unsigned char ch = c->p[c->i];

		if (ch == '"') {
			c->i++;
			return true;
		}
		if (ch == '\\') {
			if (!scan_escape(c))
				return false;
		} else if (ch < 0x20) {
			return fail(c, "control character in string");
		} else if (ch < 0x80) {
			c->i++;
		} else {
			size_t l = utf8_seq_len(c->p + c->i, c->len - c->i);

			if (!l)
				return fail(c, "invalid UTF-8");
			c->i += l;
		}
	}
	return fail(c, "unterminated string");
}

/* Moves past a run of one or more digits; false if there is none. */
static bool scan_digits(struct json_cursor *c, const char *why)
{
	size_t start = c->i;

	while (c->i < c->len && c->p[c->i] >= '0' && c->p[c->i] <= '9')
		c->i++;
	return c->i > start ? true : fail(c, why);
}

/* Checks the number starting at c->i ('-' or a digit) and moves past it. */
static bool scan_number(struct json_cursor *c)
{
	if (c->p[c->i] == '-')
		c->i++;
	if (c->i < c->len && c->p[c->i] == '0') {
		c->i++;
		if (c->i < c->len && c->p[c->i] >= '0' && c->p[c->i] <= '9')
			return fail(c, "leading zero in number");
	} else if (!scan_digits(c, "expected digit")) {
		return false;
	}
	if (c->i < c->len && c->p[c->i] == '.') {
		c->i++;
		if (!scan_digits(c, "expected digit after '.'"))
			return false;
	}
	if (c->i < c->len && (c->p[c->i] == 'e' || c->p[c->i] == 'E')) {
		c->i++;
		if (c->i < c->len && (c->p[c->i] == '+' || c->p[c->i] == '-'))
			c->i++;
		if (!scan_digits(c, "expected digit in exponent"))
			return false;
	}
	return true;
}

/* Matches the literal word at c->i and moves past it. */
static bool scan_literal(struct json_cursor *c, const char *word)
{
	size_t n = strlen(word);

	for (size_t k = 0; k < n; k++, c->i++)
		if (c->i >= c->len || c->p[c->i] != (unsigned char)word[k])
			return fail(c, "invalid literal");
	return true;
}

/*
 * Checks one scalar value, or opens a container, at c->i (not whitespace).
 * Containers are pushed on stack; an empty one is closed at once.  *next
 * gets the state that follows.
 */
static bool scan_value(struct json_cursor *c, unsigned char *stack,
		       size_t *depth, enum json_state *next)
{
	unsigned char ch = c->p[c->i];

	*next = JS_AFTER;
	if (++c->values > c->max_values)
		return fail(c, "too many values");
	switch (ch) {
	case '{':
	case '[':
		/* Checked before looking inside, so "[]" at depth 257 fails too. */
		if (*depth == c->max_depth)
			return fail(c, "nesting too deep");
		stack[(*depth)++] = ch;
		c->i++;
		skip_ws(c);
		if (c->i < c->len && c->p[c->i] == (ch == '{' ? '}' : ']')) {
			c->i++;
			(*depth)--;
			return true;
		}
		*next = ch == '{' ? JS_KEY : JS_VALUE;
		return true;
	case '"':
		return scan_string(c);
	case 't':
		return scan_literal(c, "true");
	case 'f':
		return scan_literal(c, "false");
	case 'n':
		return scan_literal(c, "null");
	case '-':
		return scan_number(c);
	default:
		if (ch >= '0' && ch <= '9')
			return scan_number(c);
		return fail(c, "expected a value");
	}
}

/*
 * The main loop is a three-state machine over JS_VALUE, JS_KEY and JS_AFTER;
 * stack[depth - 1] says which bracket closes the innermost container, and
 * depth 0 in JS_AFTER means the top-level value is complete.
 */
static bool scan_text(const char *buf, size_t len, size_t max_depth, size_t max_values,
		      const char **why, size_t *offset)
{
	unsigned char stack[JSON_MAX_DEPTH];
	struct json_cursor c = { (const unsigned char *)buf, len, 0, NULL,
				 max_depth < JSON_MAX_DEPTH ? max_depth : JSON_MAX_DEPTH,
				 max_values, 0 };
	enum json_state st = JS_VALUE;
	size_t depth = 0;
	bool ok = false;

	if (len >= 3 && c.p[0] == 0xef && c.p[1] == 0xbb && c.p[2] == 0xbf) {
		fail(&c, "byte order mark not allowed");
		goto out;
	}
	skip_ws(&c);
	if (c.i == len) {
		fail(&c, "empty input");
		goto out;
	}

	for (;;) {
		skip_ws(&c);
		if (st != JS_AFTER && c.i == len) {
			fail(&c, "unexpected end of input");
			goto out;
		}
		switch (st) {
		case JS_VALUE:
			if (!scan_value(&c, stack, &depth, &st))
				goto out;
			break;
		case JS_KEY:
			if (c.p[c.i] != '"') {
				fail(&c, "expected string key");
				goto out;
			}
			if (!scan_string(&c))
				goto out;
			skip_ws(&c);
			if (c.i == len) {
				fail(&c, "unexpected end of input");
				goto out;
			}
			if (c.p[c.i] != ':') {
				fail(&c, "expected ':'");
				goto out;
			}
			c.i++;
			st = JS_VALUE;
			break;
		case JS_AFTER:
			if (depth == 0) {
				if (c.i == len) {
					ok = true;
					goto out;
				}
				fail(&c, "trailing characters after value");
				goto out;
			}
			if (c.i == len) {
				fail(&c, "unexpected end of input");
				goto out;
			}
			if (c.p[c.i] == ',') {
				c.i++;
				st = stack[depth - 1] == '{' ? JS_KEY : JS_VALUE;
			} else if (c.p[c.i] == (stack[depth - 1] == '{' ? '}' : ']')) {
				c.i++;
				depth--;
			} else {
				fail(&c, stack[depth - 1] == '{' ?
					 "expected ',' or '}'" : "expected ',' or ']'");
				goto out;
			}
			break;
		}
	}

out:
	if (!ok) {
		assert(c.why);
		if (why)
			*why = c.why;
		if (offset)
			*offset = c.i;
	}
	return ok;
}

/* ---- public API ------------------------------------------------------- */

bool json_valid(const char *buf, size_t len, const char **why, size_t *offset)
{
	return scan_text(buf, len, JSON_MAX_DEPTH, SIZE_MAX, why, offset);
}

cJSON *json_parse_bounded(const char *buf, size_t len, size_t max_depth, size_t max_values,
			  const char **why)
{
	const char *reason = NULL;
	cJSON *root;

	if (json_has_nul_escape(buf, len)) {
		reason = "\\u0000 escape";
	} else if (scan_text(buf, len, max_depth, max_values, &reason, NULL)) {
		if ((root = cJSON_ParseWithLength(buf, len)))
			return root;
		reason = "out of memory";
	}
	if (why)
		*why = reason;
	return NULL;
}

bool json_has_nul_escape(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] != '\\')
			continue;
		if (buf[i + 1] == 'u' && i + 5 < len && memcmp(buf + i + 2, "0000", 4) == 0)
			return true;
		i++; /* skip the escaped character, a backslash included */
	}
	return false;
}

/* ---- walking a valid text --------------------------------------------- */

size_t json_skip_ws(const char *b, size_t len, size_t i)
{
	while (i < len && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
		i++;
	return i;
}

/* b[i] is a '"': the index just past the closing one. */
static size_t string_end(const char *b, size_t len, size_t i)
{
	for (i++; i < len; i++) {
		if (b[i] == '\\')
			i++;
		else if (b[i] == '"')
			return i + 1;
	}
	return len;
}

size_t json_value_end(const char *b, size_t len, size_t i)
{
	size_t depth = 0;

	if (i >= len)
		return len;
	if (b[i] == '"')
		return string_end(b, len, i);
	if (b[i] != '{' && b[i] != '[') { /* a number or a literal */
		while (i < len && !strchr(",]} \t\n\r", b[i]))
			i++;
		return i;
	}
	for (; i < len; i++) { /* a container: count brackets, skip strings */
		if (b[i] == '"') {
			i = string_end(b, len, i) - 1;
		} else if (b[i] == '{' || b[i] == '[') {
			depth++;
		} else if ((b[i] == '}' || b[i] == ']') && --depth == 0) {
			return i + 1;
		}
	}
	return len;
}

static bool next_item(const char *b, size_t len, size_t *pos, struct json_member *m, bool named)
{
	size_t i = json_skip_ws(b, len, *pos);

	if (i < len && b[i] == ',')
		i = json_skip_ws(b, len, i + 1);
	if (i >= len || b[i] == '}' || b[i] == ']') {
		*pos = i < len ? i + 1 : len;
		return false;
	}
	m->name = m->name_end = i;
	if (named) {
		m->name_end = string_end(b, len, i);
		i = json_skip_ws(b, len, m->name_end);
		i = json_skip_ws(b, len, i + 1); /* past the ':' */
	}
	m->value = i;
	m->value_end = json_value_end(b, len, i);
	*pos = m->value_end;
	return true;
}

bool json_next_member(const char *b, size_t len, size_t *pos, struct json_member *m)
{
	return next_item(b, len, pos, m, true);
}

bool json_next_element(const char *b, size_t len, size_t *pos, struct json_member *m)
{
	return next_item(b, len, pos, m, false);
}
