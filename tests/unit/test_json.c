/*
 * test_json.c - json_valid(): tables of valid and invalid texts with the
 * reason and offset expected, nesting at and over JSON_MAX_DEPTH, every
 * truncation of a document, and UTF-8 inside strings checked
 * exhaustively (all 1-3 byte sequences, 4-byte leads with sampled tails)
 * against an independent reference decoder; json_parse_bounded(): a peer
 * message parses, and depth, value count, \u0000 and invalid text are
 * refused with their reason before cJSON sees them.
 *
 * Each case is copied into a heap buffer of exactly its length, so a run
 * under -fsanitize=address catches any read past len.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"

#define NOOFF ((size_t)-1) /* offset not checked */

struct json_case {
	const char *text;
	size_t len;
	const char *why;   /* NULL: valid */
	size_t off;        /* expected error offset, or NOOFF */
};

/* sizeof keeps embedded NULs in the length. */
#define OK(lit)                { lit, sizeof(lit) - 1, NULL, NOOFF }
#define BAD(lit, why)          { lit, sizeof(lit) - 1, why, NOOFF }
#define BADAT(lit, why, off)   { lit, sizeof(lit) - 1, why, off }

/* Runs json_valid on an exact-size copy of text[0..len). */
static bool check(const char *text, size_t len, const char **why, size_t *off)
{
	char *copy = malloc(len ? len : 1);
	bool ok;

	assert_non_null(copy);
	memcpy(copy, text, len);
	ok = json_valid(copy, len, why, off);
	free(copy);
	return ok;
}

static void run_table(const struct json_case *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *why = NULL;
		size_t off = NOOFF;
		bool ok = check(t[i].text, t[i].len, &why, &off);

		if (ok != (t[i].why == NULL) ||
		    (!ok && strcmp(why, t[i].why) != 0) ||
		    (!ok && t[i].off != NOOFF && off != t[i].off)) {
			print_error("case %zu \"%.*s\" (len %zu): got %s (%s @%zu), "
				    "want %s (%s @%zu)\n", i, (int)t[i].len,
				    t[i].text, t[i].len, ok ? "valid" : "invalid",
				    ok ? "-" : why, ok ? 0 : off,
				    t[i].why ? "invalid" : "valid",
				    t[i].why ? t[i].why : "-", t[i].off);
			fail();
		}
	}
}

/* ---- tables ------------------------------------------------------------ */

static void test_scalars_valid(void **state)
{
	static const struct json_case t[] = {
		OK("0"), OK("-0"), OK("1"), OK("-1"), OK("9"), OK("10"),
		OK("123"), OK("-123"), OK("1.5"), OK("-1.5"), OK("0.0"),
		OK("0.000"), OK("-0.0"), OK("1e5"), OK("1E5"), OK("1e+5"),
		OK("1e-5"), OK("1E+05"), OK("0e0"), OK("-0.0e-0"),
		OK("1.5e10"), OK("12.34E-56"), OK("1e99999"),
		OK("123456789012345678901234567890"),
		OK("0.12345678901234567890123456789"),
		OK("true"), OK("false"), OK("null"),
		OK("\"\""), OK("\"abc\""), OK("\" \""),
		OK("\"\x7f\""),          /* DEL need not be escaped */
		OK("\"caf\xc3\xa9\""),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_whitespace(void **state)
{
	static const struct json_case t[] = {
		OK(" 1"), OK("1 "), OK(" \t\n\r1 \t\n\r"), OK("\n\n\nnull\n"),
		OK("[ ]"), OK("{ }"), OK("[ 1 , 2 ]"), OK("\t[\t1\t]\t"),
		OK("{ \"a\" : 1 , \"b\" : [ ] }"),
		OK("{\r\n\t\"a\"\r\n:\r\n1\r\n}"),
		BADAT("", "empty input", 0),
		BADAT(" ", "empty input", 1),
		BADAT(" \t\n\r", "empty input", 4),
		BADAT("\f1", "expected a value", 0),  /* not JSON whitespace */
		BADAT("\v1", "expected a value", 0),
		BADAT("1\f", "trailing characters after value", 1),
		BADAT("\xc2\xa0" "1", "expected a value", 0), /* NBSP */
		BADAT("[1,\f2]", "expected a value", 3),
		BADAT("\xef\xbb\xbf" "{}", "byte order mark not allowed", 0),
		BADAT("\xef\xbb\xbf", "byte order mark not allowed", 0),
		BADAT("1\0", "trailing characters after value", 1),
		BADAT("\0", "expected a value", 0),
		BADAT(" \0 1", "expected a value", 1),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_numbers_invalid(void **state)
{
	static const struct json_case t[] = {
		BADAT("01", "leading zero in number", 1),
		BADAT("00", "leading zero in number", 1),
		BADAT("-01", "leading zero in number", 2),
		BADAT("-00.5", "leading zero in number", 2),
		BADAT("[01]", "leading zero in number", 2),
		BADAT("+1", "expected a value", 0),
		BADAT(".5", "expected a value", 0),
		BADAT("-", "expected digit", 1),
		BADAT("--1", "expected digit", 1),
		BADAT("-a", "expected digit", 1),
		BADAT("- 1", "expected digit", 1),
		BADAT("-.5", "expected digit", 1),
		BADAT("[-]", "expected digit", 2),
		BADAT("1.", "expected digit after '.'", 2),
		BADAT("1.e5", "expected digit after '.'", 2),
		BADAT("1..5", "expected digit after '.'", 2),
		BADAT("0.", "expected digit after '.'", 2),
		BADAT("[1.]", "expected digit after '.'", 3),
		BADAT("1e", "expected digit in exponent", 2),
		BADAT("1E", "expected digit in exponent", 2),
		BADAT("1e+", "expected digit in exponent", 3),
		BADAT("1e-", "expected digit in exponent", 3),
		BADAT("1e+-1", "expected digit in exponent", 3),
		BADAT("1.5e", "expected digit in exponent", 4),
		BADAT("1ee5", "expected digit in exponent", 2),
		BADAT("1e5.5", "trailing characters after value", 3),
		BADAT("1.5.5", "trailing characters after value", 3),
		BADAT("1e5e5", "trailing characters after value", 3),
		BADAT("0x10", "trailing characters after value", 1),
		BADAT("0b1", "trailing characters after value", 1),
		BADAT("1 2", "trailing characters after value", 2),
		BADAT("1,", "trailing characters after value", 1),
		BADAT("1a", "trailing characters after value", 1),
		BADAT("NaN", "expected a value", 0),
		BADAT("Infinity", "expected a value", 0),
		BADAT("-Infinity", "expected digit", 1),
		BADAT("\xef\xbc\x91", "expected a value", 0), /* fullwidth 1 */
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_literals(void **state)
{
	static const struct json_case t[] = {
		OK("[true,false,null]"), OK(" true "),
		BADAT("t", "invalid literal", 1),
		BADAT("tru", "invalid literal", 3),
		BADAT("True", "expected a value", 0),
		BADAT("TRUE", "expected a value", 0),
		BADAT("nul", "invalid literal", 3),
		BADAT("nulL", "invalid literal", 3),
		BADAT("fals", "invalid literal", 4),
		BADAT("falsE", "invalid literal", 4),
		BADAT("trux", "invalid literal", 3),
		BADAT("[tru]", "invalid literal", 4),
		BADAT("falsey", "trailing characters after value", 5),
		BADAT("nullnull", "trailing characters after value", 4),
		BADAT("true false", "trailing characters after value", 5),
		BADAT("undefined", "expected a value", 0),
		BADAT("None", "expected a value", 0),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_string_escapes(void **state)
{
	static const struct json_case t[] = {
		OK("\"\\\"\""), OK("\"\\\\\""), OK("\"\\/\""), OK("\"\\b\""),
		OK("\"\\f\""), OK("\"\\n\""), OK("\"\\r\""), OK("\"\\t\""),
		OK("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\""),
		OK("\"\\u0000\""),         /* grammatically fine, kept as sent */
		OK("\"\\u001f\""), OK("\"\\u0041\""), OK("\"\\u00e9\""),
		OK("\"\\u00E9\""), OK("\"\\uabcd\""), OK("\"\\uABCD\""),
		OK("\"\\uFFFF\""), OK("\"\\uFFFE\""), OK("\"\\uD7FF\""),
		OK("\"\\uE000\""),
		/* Surrogate pairs, both cases, at the range ends. */
		OK("\"\\uD83D\\uDE00\""), OK("\"\\ud83d\\ude00\""),
		OK("\"\\uD800\\uDC00\""), OK("\"\\uDBFF\\uDFFF\""),
		OK("\"x\\uD834\\uDD1Ey\""),
		OK("\"\\uD800\\uDC00\\uD800\\uDC00\""),

		BADAT("\"\\x41\"", "invalid escape", 2),
		BADAT("\"\\a\"", "invalid escape", 2),
		BADAT("\"\\'\"", "invalid escape", 2),
		BADAT("\"\\0\"", "invalid escape", 2),
		BADAT("\"\\U0041\"", "invalid escape", 2),
		BADAT("\"\\ \"", "invalid escape", 2),
		BADAT("\"\\\xc3\xa9\"", "invalid escape", 2),
		BADAT("\"\\u00G0\"", "invalid \\u escape", 5),
		BADAT("\"\\u12\"", "invalid \\u escape", 5),
		BADAT("\"\\u\"", "invalid \\u escape", 3),
		BADAT("\"\\u-123\"", "invalid \\u escape", 3),
		BADAT("\"\\u 123\"", "invalid \\u escape", 3),
		BADAT("\"\\", "unterminated string", 2),
		BADAT("\"\\u", "unterminated string", 3),
		BADAT("\"\\u12", "unterminated string", 5),
		BADAT("\"\\u1234", "unterminated string", 7),

		/* Lone surrogates: reported at the backslash of the escape. */
		BADAT("\"\\uD800\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uDBFF\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uDC00\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uDFFF\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\udfff\"", "lone surrogate in \\u escape", 1),
		BADAT("\"ab\\uDE00\\uD83D\"", "lone surrogate in \\u escape", 3),
		BADAT("\"\\uD800\\u0041\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800\\uD800\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800\\uE000\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800x\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800\\n\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800\\\"", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800\\", "lone surrogate in \\u escape", 1),
		BADAT("\"\\uD800\\uDC0\"", "invalid \\u escape", 12),
		BADAT("\"\\uD800\\uDC0", "unterminated string", 12),
		BADAT("\"\\uD800\\uDC00\\uDC00\"", "lone surrogate in \\u escape", 13),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_string_raw(void **state)
{
	static const struct json_case t[] = {
		BADAT("\"", "unterminated string", 1),
		BADAT("\"abc", "unterminated string", 4),
		BADAT("[\"abc]", "unterminated string", 6),
		BADAT("\"abc\"\"", "trailing characters after value", 5),
		BADAT("\"\0\"", "control character in string", 1),
		BADAT("\"a\x01" "b\"", "control character in string", 2),
		BADAT("\"\x1f\"", "control character in string", 1),
		BADAT("\"\t\"", "control character in string", 1),
		BADAT("\"\n\"", "control character in string", 1),
		BADAT("\"\r\"", "control character in string", 1),
		BADAT("{\"a\nb\":1}", "control character in string", 3),
		BADAT("'a'", "expected a value", 0),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_string_utf8(void **state)
{
	static const struct json_case t[] = {
		/* The boundaries of each well-formed range (table 3-7). */
		OK("\"\xc2\x80\""),             /* U+0080 */
		OK("\"\xdf\xbf\""),             /* U+07FF */
		OK("\"\xe0\xa0\x80\""),         /* U+0800 */
		OK("\"\xe1\x80\x80\""),
		OK("\"\xec\xbf\xbf\""),
		OK("\"\xed\x80\x80\""),         /* U+D000 */
		OK("\"\xed\x9f\xbf\""),         /* U+D7FF */
		OK("\"\xee\x80\x80\""),         /* U+E000 */
		OK("\"\xef\xbf\xbf\""),         /* U+FFFF */
		OK("\"\xef\xbb\xbf\""),         /* a BOM inside a string is text */
		OK("\"\xf0\x90\x80\x80\""),     /* U+10000 */
		OK("\"\xf0\x9f\x98\x80\""),     /* U+1F600 */
		OK("\"\xf3\xbf\xbf\xbf\""),
		OK("\"\xf4\x80\x80\x80\""),
		OK("\"\xf4\x8f\xbf\xbf\""),     /* U+10FFFF */
		OK("{\"k\xc3\xa9y\":\"v\xe2\x82\xac\"}"),

		/* Overlong forms. */
		BADAT("\"\xc0\xaf\"", "invalid UTF-8", 1),
		BADAT("\"\xc0\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xc1\xbf\"", "invalid UTF-8", 1),
		BADAT("\"\xe0\x80\xaf\"", "invalid UTF-8", 1),
		BADAT("\"\xe0\x9f\xbf\"", "invalid UTF-8", 1),
		BADAT("\"\xf0\x80\x80\xaf\"", "invalid UTF-8", 1),
		BADAT("\"\xf0\x8f\xbf\xbf\"", "invalid UTF-8", 1),
		/* Encoded surrogates. */
		BADAT("\"\xed\xa0\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xed\xaf\xbf\"", "invalid UTF-8", 1),
		BADAT("\"\xed\xb0\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xed\xbf\xbf\"", "invalid UTF-8", 1),
		BADAT("\"\xed\xa0\xbd\xed\xb8\x80\"", "invalid UTF-8", 1),
		/* Beyond U+10FFFF and bytes that never occur. */
		BADAT("\"\xf4\x90\x80\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xf4\xbf\xbf\xbf\"", "invalid UTF-8", 1),
		BADAT("\"\xf5\x80\x80\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xf7\xbf\xbf\xbf\"", "invalid UTF-8", 1),
		BADAT("\"\xf8\x88\x80\x80\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xfc\x84\x80\x80\x80\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xfe\"", "invalid UTF-8", 1),
		BADAT("\"\xff\"", "invalid UTF-8", 1),
		/* Stray continuation bytes. */
		BADAT("\"\x80\"", "invalid UTF-8", 1),
		BADAT("\"\xbf\"", "invalid UTF-8", 1),
		BADAT("\"a\xc3\xa9\xa9\"", "invalid UTF-8", 4),
		BADAT("\"\xe2\x82\xac\xac\"", "invalid UTF-8", 4),
		/* Truncated sequences, inside the string and at end of input. */
		BADAT("\"\xc3\"", "invalid UTF-8", 1),
		BADAT("\"\xc3", "invalid UTF-8", 1),
		BADAT("\"\xc3" "a\"", "invalid UTF-8", 1),
		BADAT("\"\xe2\x82\"", "invalid UTF-8", 1),
		BADAT("\"\xe2\x82", "invalid UTF-8", 1),
		BADAT("\"\xe2", "invalid UTF-8", 1),
		BADAT("\"\xf0\x9f\x98\"", "invalid UTF-8", 1),
		BADAT("\"\xf0\x9f\x98", "invalid UTF-8", 1),
		BADAT("\"\xf0\x9f", "invalid UTF-8", 1),
		BADAT("\"\xf0\x9f\x98" "a\"", "invalid UTF-8", 1),
		BADAT("\"\xe2\xe2\x82\xac\"", "invalid UTF-8", 1),
		/* Non-ASCII outside strings is never grammar. */
		BADAT("\xc3\xa9", "expected a value", 0),
		BADAT("[1]\xc3\xa9", "trailing characters after value", 3),
		BADAT("{\xc3\xa9:1}", "expected string key", 1),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_containers(void **state)
{
	static const struct json_case t[] = {
		OK("[]"), OK("{}"), OK("[[]]"), OK("[{}]"), OK("{\"a\":{}}"),
		OK("[1,2,3]"), OK("[\"\",{},[],0,true,null]"),
		OK("{\"a\":1}"), OK("{\"\":0}"), OK("{\"a\":1,\"a\":2}"),
		OK("{\"a\":{\"b\":[true,false,null,{\"c\":-1.5e3}]}}"),
		OK("[[[[[[]]]]]]"), OK("[[],[[]],[[],[]]]"),

		BADAT("[", "unexpected end of input", 1),
		BADAT("[ ", "unexpected end of input", 2),
		BADAT("[1", "unexpected end of input", 2),
		BADAT("[1,", "unexpected end of input", 3),
		BADAT("[1, ", "unexpected end of input", 4),
		BADAT("{", "unexpected end of input", 1),
		BADAT("{\"a\"", "unexpected end of input", 4),
		BADAT("{\"a\" ", "unexpected end of input", 5),
		BADAT("{\"a\":", "unexpected end of input", 5),
		BADAT("{\"a\":1", "unexpected end of input", 6),
		BADAT("{\"a\":1,", "unexpected end of input", 7),
		BADAT("[1,]", "expected a value", 3),
		BADAT("[,1]", "expected a value", 1),
		BADAT("[,]", "expected a value", 1),
		BADAT("[1,,2]", "expected a value", 3),
		BADAT("[1 2]", "expected ',' or ']'", 3),
		BADAT("[1}", "expected ',' or ']'", 2),
		BADAT("[1:2]", "expected ',' or ']'", 2),
		BADAT("[}", "expected a value", 1),
		BADAT("]", "expected a value", 0),
		BADAT("}", "expected a value", 0),
		BADAT(":", "expected a value", 0),
		BADAT(",", "expected a value", 0),
		BADAT("{]", "expected string key", 1),
		BADAT("{,}", "expected string key", 1),
		BADAT("{\"a\":1,}", "expected string key", 7),
		BADAT("{a:1}", "expected string key", 1),
		BADAT("{1:2}", "expected string key", 1),
		BADAT("{'a':1}", "expected string key", 1),
		BADAT("{null:1}", "expected string key", 1),
		BADAT("{\"a\" 1}", "expected ':'", 5),
		BADAT("{\"a\"=1}", "expected ':'", 4),
		BADAT("{\"a\",1}", "expected ':'", 4),
		BADAT("{\"a\"::1}", "expected a value", 5),
		BADAT("{\"a\":}", "expected a value", 5),
		BADAT("{\"a\":1 \"b\":2}", "expected ',' or '}'", 7),
		BADAT("{\"a\":1]", "expected ',' or '}'", 6),
		BADAT("{\"a\":1:2}", "expected ',' or '}'", 6),
		BADAT("[]]", "trailing characters after value", 2),
		BADAT("{}}", "trailing characters after value", 2),
		BADAT("[] []", "trailing characters after value", 3),
		BADAT("{}{}", "trailing characters after value", 2),
		BADAT("[1][", "trailing characters after value", 3),
		BADAT("[1]x", "trailing characters after value", 3),
		BADAT("[1] ,", "trailing characters after value", 4),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

/* ---- generated inputs -------------------------------------------------- */

/*
 * Builds opener^n inner closer^n into a fresh buffer; *len gets its length.
 * Caller frees.
 */
static char *nest(const char *opener, const char *inner, const char *closer,
		  size_t n, size_t *len)
{
	size_t lo = strlen(opener), li = strlen(inner), lc = strlen(closer);
	char *buf = malloc(n * (lo + lc) + li + 1), *p;

	assert_non_null(buf);
	p = buf;
	for (size_t i = 0; i < n; i++, p += lo)
		memcpy(p, opener, lo);
	memcpy(p, inner, li);
	p += li;
	for (size_t i = 0; i < n; i++, p += lc)
		memcpy(p, closer, lc);
	*len = (size_t)(p - buf);
	return buf;
}

static void expect_nest(const char *o, const char *in, const char *c,
			size_t n, const char *want_why, size_t want_off)
{
	size_t len, off = 0;
	const char *why = NULL;
	char *buf = nest(o, in, c, n, &len);
	bool ok = json_valid(buf, len, &why, &off);

	if (!want_why) {
		if (!ok)
			print_error("depth %zu %s: %s @%zu\n", n, o, why, off);
		assert_true(ok);
	} else {
		assert_false(ok);
		assert_string_equal(why, want_why);
		if (want_off != NOOFF)
			assert_int_equal(off, want_off);
	}
	free(buf);
}

static void test_depth(void **state)
{
	const size_t max = JSON_MAX_DEPTH;
	const char *deep = "nesting too deep";

	(void)state;
	/* At the limit: accepted, whatever sits innermost. */
	expect_nest("[", "1", "]", max, NULL, 0);
	expect_nest("[", "", "]", max, NULL, 0);
	expect_nest("[ ", " ", " ]", max, NULL, 0);
	expect_nest("{\"a\":", "1", "}", max, NULL, 0);
	expect_nest("{\"a\":", "{}", "}", max - 1, NULL, 0);
	expect_nest("[{\"a\":", "1", "}]", max / 2, NULL, 0);
	expect_nest("[1,", "2", "]", max, NULL, 0);

	/* One over: refused at the opening bracket that goes too deep. */
	expect_nest("[", "1", "]", max + 1, deep, max);
	expect_nest("[", "", "]", max + 1, deep, max);
	expect_nest("[", "[]", "]", max, deep, max);
	expect_nest("{\"a\":", "1", "}", max + 1, deep, 5 * max);
	expect_nest("{\"a\":", "{}", "}", max, deep, 5 * max);
	expect_nest("[{\"a\":", "[]", "}]", max / 2, deep, 6 * (max / 2));

	/* Far over: refused without exhausting anything. */
	expect_nest("[", "", "]", 1000000, deep, max);
	expect_nest("{\"a\":", "", "}", 100000, deep, 5 * max);

	/* Unclosed at the limit is a truncation, not a depth error. */
	{
		size_t len;
		char *buf = nest("[", "1", "", max, &len);
		const char *why;
		size_t off;

		assert_false(json_valid(buf, len, &why, &off));
		assert_string_equal(why, "unexpected end of input");
		assert_int_equal(off, len);
		free(buf);
	}

	/* Depth is released on close: siblings each reach the limit. */
	{
		size_t l1, len;
		char *inner = nest("[", "0", "]", max - 1, &l1);
		char *buf = malloc(2 * l1 + 4);

		assert_non_null(buf);
		len = 0;
		buf[len++] = '[';
		memcpy(buf + len, inner, l1);
		len += l1;
		buf[len++] = ',';
		memcpy(buf + len, inner, l1);
		len += l1;
		buf[len++] = ']';
		assert_true(json_valid(buf, len, NULL, NULL));
		free(buf);
		free(inner);
	}
}

/*
 * Cutting a document anywhere before its closing brace leaves invalid
 * text (unclosed, or a sequence or escape cut short); the whole is valid.
 */
static void test_prefixes(void **state)
{
	static const char doc[] =
		" {\"a\" : [1, -2.5e+3, 0, true, false, null, \"x\\u00e9\\n\","
		" \"\\uD83D\\uDE00\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
		" {\"\" : {}}, []], \"b\":\"\"} ";
	const size_t len = sizeof(doc) - 1;

	(void)state;
	assert_true(check(doc, len, NULL, NULL));
	for (size_t n = 0; n + 1 < len; n++) {
		const char *why = NULL;
		size_t off = NOOFF;

		if (check(doc, n, &why, &off)) {
			print_error("prefix of %zu bytes accepted\n", n);
			fail();
		}
		assert_true(off <= n);
	}
}

/* json_valid reads buf[0..len) only: bytes beyond must not matter. */
static void test_len_respected(void **state)
{
	const char *why;
	size_t off;

	(void)state;
	assert_true(json_valid("[1]garbage", 3, NULL, NULL));
	assert_true(json_valid("12", 1, NULL, NULL));
	assert_true(json_valid("true", 4, NULL, NULL));
	assert_false(json_valid("true", 3, &why, &off));
	assert_string_equal(why, "invalid literal");
	assert_int_equal(off, 3);
	assert_false(json_valid("\"abc\"", 4, &why, &off));
	assert_string_equal(why, "unterminated string");
	assert_false(json_valid("1.5", 2, &why, &off));
	assert_string_equal(why, "expected digit after '.'");
	assert_false(json_valid("\xef\xbb\xbf", 2, &why, &off));
	assert_string_equal(why, "expected a value");
	assert_false(json_valid(NULL, 0, &why, &off));
	assert_string_equal(why, "empty input");
	/* why and offset are optional. */
	assert_false(json_valid("[", 1, NULL, NULL));
	assert_true(json_valid("[]", 2, NULL, NULL));
}

/* ---- json_parse_bounded ------------------------------------------------ */

/*
 * json_parse_bounded on an exact-size heap copy of text[0..len): returns
 * the tree (caller deletes) or NULL with the reason in *why.
 */
static cJSON *bounded(const char *text, size_t len, size_t max_depth, size_t max_values,
		      const char **why)
{
	char *copy = malloc(len ? len : 1);
	cJSON *root;

	assert_non_null(copy);
	memcpy(copy, text, len);
	root = json_parse_bounded(copy, len, max_depth, max_values, why);
	free(copy);
	return root;
}

/* Expects text refused by the peer bounds with want_why. */
static void expect_bounded_refused(const char *text, size_t len, size_t max_depth,
				   size_t max_values, const char *want_why)
{
	const char *why = NULL;
	cJSON *root = bounded(text, len, max_depth, max_values, &why);

	if (root || !why || strcmp(why, want_why) != 0) {
		print_error("\"%.60s\" (len %zu): got %s (%s), want refused (%s)\n", text, len,
			    root ? "a tree" : "NULL", why ? why : "-", want_why);
		fail();
	}
}

static void test_bounded_peer_message(void **state)
{
	static const char msg[] =
		"{\"from\":{\"id\":\"n1\",\"address\":\"127.0.0.1:8081\",\"status\":\"alive\","
		"\"joined_timestamp\":1700000000000,\"incarnation\":3,\"last_seen\":1700000000001},"
		"\"kind\":\"replication\",\"items\":[{\"key\":\"users/42\","
		"\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"timestamp\":1700000000000,"
		"\"tombstone\":false,\"value\":\"{\\\"name\\\":\\\"A\\\",\\\"n\\\":[1,2]}\"},"
		"{\"key\":\"gone\",\"uuid\":\"0f8fad5b-d9cb-469f-a165-70867728950f\","
		"\"timestamp\":1700000000002,\"tombstone\":true}]}";
	const char *why = "untouched";
	cJSON *root;

	(void)state;
	root = bounded(msg, sizeof(msg) - 1, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES, &why);
	assert_non_null(root);
	assert_string_equal(why, "untouched"); /* set only on failure */
	assert_true(cJSON_IsObject(root));
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
	assert_int_equal(cJSON_GetArraySize(items), 2);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 0), "value");
	assert_string_equal(v->valuestring, "{\"name\":\"A\",\"n\":[1,2]}");
	cJSON_Delete(root);

	/* why is optional; any JSON text comes back, not only objects */
	root = bounded("[1,\"a\",null]", 12, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES, NULL);
	assert_true(cJSON_IsArray(root));
	cJSON_Delete(root);
	/* an escaped backslash before "u0000" is not a \u0000 escape */
	root = bounded("\"\\\\u0000\"", 9, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES, NULL);
	assert_true(cJSON_IsString(root));
	assert_string_equal(root->valuestring, "\\u0000");
	cJSON_Delete(root);
}

/* {"x": + [^(n-1) + ]^(n-1) + }: a message n levels deep. */
static char *deep_message(size_t n, size_t *len)
{
	size_t l;
	char *inner = nest("[", "", "]", n - 1, &l);
	char *buf = malloc(l + 6);

	assert_non_null(buf);
	memcpy(buf, "{\"x\":", 5);
	memcpy(buf + 5, inner, l);
	buf[l + 5] = '}';
	*len = l + 6;
	free(inner);
	return buf;
}

static void test_bounded_depth(void **state)
{
	static const size_t too_deep[] = { JSON_PEER_MAX_DEPTH + 1, 712, 1000, 100000 };
	size_t len;
	char *buf;
	cJSON *root;

	(void)state;
	assert_int_equal(JSON_PEER_MAX_DEPTH, 16);
	/* at the bound: parsed */
	buf = deep_message(JSON_PEER_MAX_DEPTH, &len);
	root = bounded(buf, len, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES, NULL);
	assert_true(cJSON_IsObject(root));
	cJSON_Delete(root);
	free(buf);
	for (size_t i = 0; i < sizeof(too_deep) / sizeof(too_deep[0]); i++) {
		buf = deep_message(too_deep[i], &len);
		expect_bounded_refused(buf, len, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES,
				       "nesting too deep");
		free(buf);
	}
	/* objects count as levels too */
	buf = nest("{\"a\":", "1", "}", JSON_PEER_MAX_DEPTH + 1, &len);
	expect_bounded_refused(buf, len, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES,
			       "nesting too deep");
	free(buf);
	/* a max_depth above JSON_MAX_DEPTH is capped there */
	buf = nest("[", "", "]", JSON_MAX_DEPTH + 1, &len);
	expect_bounded_refused(buf, len, 100000, SIZE_MAX, "nesting too deep");
	free(buf);
	buf = nest("[", "", "]", JSON_MAX_DEPTH, &len);
	root = bounded(buf, len, 100000, SIZE_MAX, NULL);
	assert_true(cJSON_IsArray(root));
	cJSON_Delete(root);
	free(buf);
}

/* "[0,0,...,0]" with n zeros: n + 1 values (the array counts). */
static char *zeros(size_t n, size_t *len)
{
	char *buf = malloc(2 * n + 2);

	assert_non_null(buf);
	buf[0] = '[';
	for (size_t i = 0; i < n; i++) {
		buf[1 + 2 * i] = '0';
		buf[2 + 2 * i] = ',';
	}
	buf[n ? 2 * n : 1] = ']';
	*len = n ? 2 * n + 1 : 2;
	return buf;
}

static void test_bounded_values(void **state)
{
	size_t len;
	char *buf;
	cJSON *root;

	(void)state;
	/* small bounds: every value counts, containers included, keys not */
	root = bounded("[1,2]", 5, 16, 3, NULL);
	assert_non_null(root);
	cJSON_Delete(root);
	expect_bounded_refused("[1,2,3]", 7, 16, 3, "too many values");
	root = bounded("{\"a\":1,\"b\":[]}", 14, 16, 3, NULL);
	assert_non_null(root);
	cJSON_Delete(root);
	expect_bounded_refused("{\"a\":1,\"b\":[{}]}", 16, 16, 3, "too many values");
	expect_bounded_refused("1", 1, 16, 0, "too many values");

	/* the peer bound: JSON_PEER_MAX_VALUES in all is fine, one more is not */
	buf = zeros(JSON_PEER_MAX_VALUES - 1, &len);
	root = bounded(buf, len, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES, NULL);
	assert_true(cJSON_IsArray(root));
	assert_int_equal(cJSON_GetArraySize(root), JSON_PEER_MAX_VALUES - 1);
	cJSON_Delete(root);
	free(buf);
	buf = zeros(JSON_PEER_MAX_VALUES, &len);
	expect_bounded_refused(buf, len, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES,
			       "too many values");
	free(buf);
	/* the tiny-values body: a million zeros, refused without building a tree */
	buf = zeros(1000000, &len);
	expect_bounded_refused(buf, len, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES,
			       "too many values");
	free(buf);
}

static void test_bounded_refusals(void **state)
{
	static const struct json_case bad[] = {
		BAD("", "empty input"),
		BAD("{", "unexpected end of input"),
		BAD("[1,]", "expected a value"),
		BAD("{'a':1}", "expected string key"),
		BAD("{\"a\":1}x", "trailing characters after value"),
		BAD("{\"a\":01}", "leading zero in number"),
		BAD("{\"a\":NaN}", "expected a value"),
		BAD("{\"a\":\"\xc0\xaf\"}", "invalid UTF-8"),
		BAD("{\"a\":\"\\uD800\"}", "lone surrogate in \\u escape"),
		BAD("\xef\xbb\xbf{}", "byte order mark not allowed"),
		/* cJSON would cut these strings at a NUL */
		BAD("{\"key\":\"a\\u0000b\"}", "\\u0000 escape"),
		BAD("{\"a\\u0000\":1}", "\\u0000 escape"),
		BAD("\"\\u0000\"", "\\u0000 escape"),
		BAD("{\"a\":\"\\\\\\u0000\"}", "\\u0000 escape"), /* \\ then \u0000 */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bounded_refused(bad[i].text, bad[i].len, JSON_PEER_MAX_DEPTH,
				       JSON_PEER_MAX_VALUES, bad[i].why);
	assert_null(json_parse_bounded(NULL, 0, JSON_PEER_MAX_DEPTH, JSON_PEER_MAX_VALUES, NULL));
}

/*
 * Reference: a generic decoder (collect the payload bits, then check the
 * shortest form and the ranges), deliberately unlike json.c's byte-range
 * table, so that both would have to be wrong the same way.
 */
static bool ref_utf8(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		uint32_t cp, min;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

/* Wraps bytes in quotes and compares json_valid against the reference. */
static void utf8_one(const unsigned char *b, size_t n)
{
	char buf[8];
	bool want = ref_utf8(b, n), got;

	for (size_t i = 0; i < n; i++) {
		if (b[i] == '"' || b[i] == '\\')
			return; /* would end the string or start an escape */
		if (b[i] < 0x20)
			want = false;
	}
	buf[0] = '"';
	memcpy(buf + 1, b, n);
	buf[n + 1] = '"';
	got = json_valid(buf, n + 2, NULL, NULL);
	if (got != want) {
		print_error("bytes %02x %02x %02x %02x (n=%zu): got %d want %d\n",
			    b[0], n > 1 ? b[1] : 0, n > 2 ? b[2] : 0,
			    n > 3 ? b[3] : 0, n, got, want);
		fail();
	}
}

static void test_utf8_exhaustive(void **state)
{
	static const unsigned char tails[] = { 0x00, 0x41, 0x7f, 0x80, 0x8f,
					       0x90, 0x9f, 0xa0, 0xbf, 0xc0,
					       0xff };
	unsigned char b[4];

	(void)state;
	for (unsigned a = 0; a < 256; a++) {
		b[0] = (unsigned char)a;
		utf8_one(b, 1);
		for (unsigned c = 0; c < 256; c++) {
			b[1] = (unsigned char)c;
			utf8_one(b, 2);
			if (a < 0xe0)
				continue;
			for (unsigned d = 0; d < 256; d++) {
				b[2] = (unsigned char)d;
				utf8_one(b, 3);
				if (a < 0xf0)
					continue;
				for (size_t t = 0; t < sizeof(tails); t++) {
					b[3] = tails[t];
					utf8_one(b, 4);
				}
			}
		}
	}
	/* Every scalar value, encoded, is accepted (code point by code point). */
	for (uint32_t cp = 0x80; cp <= 0x10ffff; cp++) {
		unsigned char e[4];
		size_t n;

		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		if (cp < 0x800) {
			e[0] = (unsigned char)(0xc0 | cp >> 6);
			e[1] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 2;
		} else if (cp < 0x10000) {
			e[0] = (unsigned char)(0xe0 | cp >> 12);
			e[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
			e[2] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 3;
		} else {
			e[0] = (unsigned char)(0xf0 | cp >> 18);
			e[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
			e[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
			e[3] = (unsigned char)(0x80 | (cp & 0x3f));
			n = 4;
		}
		utf8_one(e, n);
		assert_true(ref_utf8(e, n));
	}
}

/* ---- walking a valid text (json_value_end, json_next_member) ---- */

static void test_value_end(void **state)
{
	const char *cases[][2] = {
		{ "123,", "123" },
		{ "-1.5e3]", "-1.5e3" },
		{ "true}", "true" },
		{ "\"a\\\"b}\" ,", "\"a\\\"b}\"" },
		{ "{\"k\":[1,{\"x\":\"]}\"}]} ,", "{\"k\":[1,{\"x\":\"]}\"}]}" },
		{ "[[],[[]]]x", "[[],[[]]]" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t end = json_value_end(cases[i][0], strlen(cases[i][0]), 0);
		assert_int_equal(end, strlen(cases[i][1]));
	}
	/* a text cut short never reads past its end */
	assert_int_equal(json_value_end("{\"a\":[1,2", 9, 0), 9);
	assert_int_equal(json_value_end("\"abc", 4, 0), 4);
}

static void test_next_member(void **state)
{
	const char *t = "{ \"a\" : 1 , \"b\":{\"c\":[1,2]},\"d\":\"x,y\" }";
	size_t len = strlen(t), pos = 1;
	struct json_member m;
	const char *names[] = { "\"a\"", "\"b\"", "\"d\"" };
	const char *values[] = { "1", "{\"c\":[1,2]}", "\"x,y\"" };

	(void)state;
	for (int i = 0; i < 3; i++) {
		assert_true(json_next_member(t, len, &pos, &m));
		assert_int_equal(m.name_end - m.name, strlen(names[i]));
		assert_memory_equal(t + m.name, names[i], strlen(names[i]));
		assert_int_equal(m.value_end - m.value, strlen(values[i]));
		assert_memory_equal(t + m.value, values[i], strlen(values[i]));
	}
	assert_false(json_next_member(t, len, &pos, &m));
	assert_int_equal(pos, len);

	const char *arr = "[1, [2], {\"a\":3}]";
	size_t p = 1;
	int count = 0;
	while (json_next_element(arr, strlen(arr), &p, &m))
		count++;
	assert_int_equal(count, 3);
	p = 1;
	assert_false(json_next_element("[ ]", 3, &p, &m));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars_valid),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_numbers_invalid),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_string_escapes),
		cmocka_unit_test(test_string_raw),
		cmocka_unit_test(test_string_utf8),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_len_respected),
		cmocka_unit_test(test_utf8_exhaustive),
		cmocka_unit_test(test_bounded_peer_message),
		cmocka_unit_test(test_bounded_depth),
		cmocka_unit_test(test_bounded_values),
		cmocka_unit_test(test_bounded_refusals),
		cmocka_unit_test(test_value_end),
		cmocka_unit_test(test_next_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
