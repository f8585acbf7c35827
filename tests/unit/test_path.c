/*
 * test_path.c - path_decode(), path_key_valid() and path_query_get().
 *
 * Tables of raw paths with the key or prefix they decode to, or the reason
 * they are refused (one or more cases per refusal class), length limits at
 * and over PATH_KEY_MAX for keys and prefixes, agreement between
 * path_decode and path_key_valid, and query-parameter parsing.  Outputs are
 * heap buffers of exactly the documented size so that ASan catches any
 * write past them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvs.h"
#include "path.h"

#define OUTLEN (PATH_KEY_MAX + 2) /* the capacity path_decode asks for */

struct decode_case {
	const char *raw;
	enum path_kind kind;
	const char *out;  /* decoded key or prefix; NULL: refused */
	const char *why;  /* reason when refused */
};

#define KEY(raw, out)    { raw, PATH_KEY, out, NULL }
#define PFX(raw, out)    { raw, PATH_PREFIX, out, NULL }
#define REFUSE(raw, why) { raw, PATH_KEY, NULL, why }

static const char *const NOT_KV = "path not under the resource";
static const char *const EMPTY = "empty path segment";
static const char *const DOT = "'.' or '..' segment";
static const char *const CTRL = "control character in path";
static const char *const SLASH = "encoded '/' in segment";
static const char *const ESC = "bad percent escape";
static const char *const UTF8 = "invalid UTF-8 in path";
static const char *const LONG = "path too long";

/*
 * Decodes raw into a fresh OUTLEN buffer and checks the outcome.  On
 * refusal, *len and *kind must keep the sentinels they came in with.
 */
static void expect_decode(const char *raw, enum path_kind want_kind,
			  const char *want_out, size_t want_len,
			  const char *want_why)
{
	char *out = malloc(OUTLEN);
	size_t len = 77777;
	enum path_kind kind = (enum path_kind)42;
	const char *why = NULL;
	int rc;

	assert_non_null(out);
	rc = path_decode(raw, out, OUTLEN, &len, &kind, &why);
	if (want_out) {
		if (rc != 0) {
			print_error("\"%.80s\": refused (%s)\n", raw, why);
			fail();
		}
		assert_int_equal(kind, want_kind);
		assert_int_equal(len, want_len);
		assert_memory_equal(out, want_out, want_len);
		assert_int_equal(out[len], '\0');
	} else {
		if (rc != KVS_EINVAL) {
			print_error("\"%.80s\": rc %d, want refusal (%s)\n",
				    raw, rc, want_why);
			fail();
		}
		assert_non_null(why);
		if (strcmp(why, want_why) != 0) {
			print_error("\"%.80s\": why \"%s\", want \"%s\"\n",
				    raw, why, want_why);
			fail();
		}
		assert_int_equal(len, 77777);
		assert_int_equal(kind, 42);
	}
	free(out);
}

static void run_table(const struct decode_case *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect_decode(t[i].raw, t[i].kind, t[i].out,
			      t[i].out ? strlen(t[i].out) : 0, t[i].why);
}

/* ---- path_decode ------------------------------------------------------- */

static void test_decode_kinds(void **state)
{
	static const struct decode_case t[] = {
		PFX("/kv", ""),
		PFX("/kv/", ""),
		KEY("/kv/a", "a"),
		KEY("/kv/a/b", "a/b"),
		PFX("/kv/a/", "a/"),
		PFX("/kv/a/b/", "a/b/"),
		KEY("/kv/users/john/profile", "users/john/profile"),
		PFX("/kv/users/", "users/"),
		KEY("/kv/kv", "kv"),
		KEY("/kv/kv/kv", "kv/kv"),
		KEY("/kv/0", "0"),
		KEY("/kv/a/b/c/d/e/f/g/h", "a/b/c/d/e/f/g/h"),

		REFUSE("/kvx", NOT_KV),
		REFUSE("/kvx/a", NOT_KV),
		REFUSE("/kv2", NOT_KV),
		REFUSE("/kva/", NOT_KV),
		REFUSE("/k", NOT_KV),
		REFUSE("/", NOT_KV),
		REFUSE("", NOT_KV),
		REFUSE("kv/a", NOT_KV),
		REFUSE("/KV/a", NOT_KV),
		REFUSE("/Kv", NOT_KV),
		REFUSE("//kv/a", NOT_KV),
		REFUSE("/api/kv/a", NOT_KV),
		REFUSE("/%6Bv/a", NOT_KV),
		REFUSE("/kv%2Fa", NOT_KV),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_decode_percent(void **state)
{
	static const struct decode_case t[] = {
		KEY("/kv/%41", "A"),
		KEY("/kv/%61%62%63", "abc"),
		KEY("/kv/%7E", "~"),
		KEY("/kv/%7e", "~"),
		KEY("/kv/a%20b", "a b"),
		KEY("/kv/a+b", "a+b"),          /* '+' is literal in a path */
		KEY("/kv/a%2Bb", "a+b"),
		KEY("/kv/a%25", "a%"),
		KEY("/kv/%25", "%"),
		/* Decoded exactly once. */
		KEY("/kv/%2541", "%41"),
		KEY("/kv/%252F", "%2F"),
		KEY("/kv/%252f/x", "%2f/x"),
		KEY("/kv/%25%32%46", "%2F"),
		KEY("/kv/%252E%252E", "%2E%2E"),
		KEY("/kv/a%3Fb", "a?b"),
		KEY("/kv/a%23b", "a#b"),
		KEY("/kv/a%26b%3Dc", "a&b=c"),
		KEY("/kv/%5C", "\\"),
		KEY("/kv/~!$&'()*+,;=:@", "~!$&'()*+,;=:@"),
		KEY("/kv/%22quoted%22", "\"quoted\""),
		/* Dots that are not whole "." or ".." segments. */
		KEY("/kv/...", "..."),
		KEY("/kv/.a", ".a"),
		KEY("/kv/a.", "a."),
		KEY("/kv/..a/b..", "..a/b.."),
		KEY("/kv/.hidden/.x", ".hidden/.x"),
		KEY("/kv/a%2Eb", "a.b"),
		KEY("/kv/%2E%2E%2E", "..."),
		KEY("/kv/a.json", "a.json"),
		PFX("/kv/.../", ".../"),
		/* Unicode, raw or percent-encoded, upper or lower hex. */
		KEY("/kv/j%C3%B6rg", "j\xc3\xb6rg"),
		KEY("/kv/j%c3%b6rg", "j\xc3\xb6rg"),
		KEY("/kv/j\xc3\xb6rg", "j\xc3\xb6rg"),
		KEY("/kv/j%C3\xb6rg", "j\xc3\xb6rg"),
		KEY("/kv/%E2%82%AC", "\xe2\x82\xac"),
		KEY("/kv/%F0%9F%98%80/x", "\xf0\x9f\x98\x80/x"),
		KEY("/kv/\xe6\x97\xa5\xe6\x9c\xac/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87",
		    "\xe6\x97\xa5\xe6\x9c\xac/\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87"),
		KEY("/kv/%C2%80", "\xc2\x80"),
		KEY("/kv/%ED%9F%BF", "\xed\x9f\xbf"),
		KEY("/kv/%EE%80%80", "\xee\x80\x80"),
		KEY("/kv/%EF%BF%BF", "\xef\xbf\xbf"),
		KEY("/kv/%F4%8F%BF%BF", "\xf4\x8f\xbf\xbf"),
		PFX("/kv/caf%C3%A9/", "caf\xc3\xa9/"),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_decode_refusals(void **state)
{
	static const struct decode_case t[] = {
		/* Empty segments. */
		REFUSE("/kv//", EMPTY),
		REFUSE("/kv//a", EMPTY),
		REFUSE("/kv/a//b", EMPTY),
		REFUSE("/kv/a//", EMPTY),
		REFUSE("/kv/a/b//", EMPTY),
		REFUSE("/kv///", EMPTY),
		/* "." and "..", however spelled. */
		REFUSE("/kv/.", DOT),
		REFUSE("/kv/..", DOT),
		REFUSE("/kv/./", DOT),
		REFUSE("/kv/../", DOT),
		REFUSE("/kv/a/.", DOT),
		REFUSE("/kv/a/..", DOT),
		REFUSE("/kv/a/./b", DOT),
		REFUSE("/kv/a/../b", DOT),
		REFUSE("/kv/../etc/passwd", DOT),
		REFUSE("/kv/a/../", DOT),
		REFUSE("/kv/%2E", DOT),
		REFUSE("/kv/%2e", DOT),
		REFUSE("/kv/%2E%2E", DOT),
		REFUSE("/kv/.%2e/x", DOT),
		REFUSE("/kv/a/%2e./", DOT),
		/* Control characters, decoded or raw. */
		REFUSE("/kv/a%00b", CTRL),
		REFUSE("/kv/%00", CTRL),
		REFUSE("/kv/%01", CTRL),
		REFUSE("/kv/%09", CTRL),
		REFUSE("/kv/%0A", CTRL),
		REFUSE("/kv/a%0D%0Ab", CTRL),
		REFUSE("/kv/%1F", CTRL),
		REFUSE("/kv/%1f/x", CTRL),
		REFUSE("/kv/%7F", CTRL),
		REFUSE("/kv/x/%7f/", CTRL),
		REFUSE("/kv/a\x01" "b", CTRL),
		REFUSE("/kv/a\tb", CTRL),
		REFUSE("/kv/\x7f", CTRL),
		REFUSE("/kv/a/\x1b[31m", CTRL),
		/* A '/' that came from decoding. */
		REFUSE("/kv/a%2Fb", SLASH),
		REFUSE("/kv/a%2fb", SLASH),
		REFUSE("/kv/%2F", SLASH),
		REFUSE("/kv/%2F%2F", SLASH),
		REFUSE("/kv/a/%2F/", SLASH),
		REFUSE("/kv/%2F..", SLASH),
		/* Malformed escapes. */
		REFUSE("/kv/%", ESC),
		REFUSE("/kv/a%", ESC),
		REFUSE("/kv/a%4", ESC),
		REFUSE("/kv/%4/x", ESC),
		REFUSE("/kv/a%/b", ESC),
		REFUSE("/kv/%G1", ESC),
		REFUSE("/kv/%1G", ESC),
		REFUSE("/kv/%gg", ESC),
		REFUSE("/kv/%%41", ESC),
		REFUSE("/kv/%-1", ESC),
		REFUSE("/kv/%+1", ESC),
		REFUSE("/kv/% 1", ESC),
		REFUSE("/kv/%u0041", ESC),
		REFUSE("/kv/%\xc3\xa9", ESC),
		REFUSE("/kv/ok/%x", ESC),
		/* Invalid UTF-8, decoded or raw. */
		REFUSE("/kv/%C0%AF", UTF8),
		REFUSE("/kv/%C0%80", UTF8),
		REFUSE("/kv/%C1%BF", UTF8),
		REFUSE("/kv/%E0%80%AF", UTF8),
		REFUSE("/kv/%E0%9F%BF", UTF8),
		REFUSE("/kv/%F0%80%80%AF", UTF8),
		REFUSE("/kv/%F0%8F%BF%BF", UTF8),
		REFUSE("/kv/%ED%A0%80", UTF8),
		REFUSE("/kv/%ED%BF%BF", UTF8),
		REFUSE("/kv/%ED%A0%BD%ED%B8%80", UTF8),
		REFUSE("/kv/%F4%90%80%80", UTF8),
		REFUSE("/kv/%F5%80%80%80", UTF8),
		REFUSE("/kv/%F8%88%80%80%80", UTF8),
		REFUSE("/kv/%FE", UTF8),
		REFUSE("/kv/%FF", UTF8),
		REFUSE("/kv/%80", UTF8),
		REFUSE("/kv/a%BF", UTF8),
		REFUSE("/kv/%C3", UTF8),
		REFUSE("/kv/%C3%28", UTF8),
		REFUSE("/kv/%E2%82", UTF8),
		REFUSE("/kv/%F0%9F%98", UTF8),
		REFUSE("/kv/%C3/%A9", UTF8),    /* no sequence spans a '/' */
		REFUSE("/kv/%E2%82/x", UTF8),
		REFUSE("/kv/%C3%A9%A9", UTF8),
		REFUSE("/kv/\xc3", UTF8),
		REFUSE("/kv/\xc0\xaf", UTF8),
		REFUSE("/kv/\xed\xa0\x80", UTF8),
		REFUSE("/kv/\xf4\x90\x80\x80", UTF8),
		REFUSE("/kv/\xff/", UTF8),
	};

	(void)state;
	run_table(t, sizeof(t) / sizeof(t[0]));
}

/* "/kv/" followed by pattern repeated n times, then tail.  Caller frees. */
static char *make_raw(const char *pattern, size_t n, const char *tail)
{
	size_t lp = strlen(pattern), lt = strlen(tail);
	char *s = malloc(4 + n * lp + lt + 1), *p;

	assert_non_null(s);
	memcpy(s, "/kv/", 4);
	p = s + 4;
	for (size_t i = 0; i < n; i++, p += lp)
		memcpy(p, pattern, lp);
	memcpy(p, tail, lt + 1);
	return s;
}

/* Checks raw against the expected result, built as pattern^n + tail. */
static void expect_long(const char *pattern, size_t n, const char *tail,
			enum path_kind kind, const char *outpat,
			const char *outtail, bool ok)
{
	char *raw = make_raw(pattern, n, tail);

	if (ok) {
		char *want = make_raw(outpat, n, outtail);

		expect_decode(raw, kind, want + 4, strlen(want + 4), NULL);
		free(want);
	} else {
		expect_decode(raw, kind, NULL, 0, LONG);
	}
	free(raw);
}

static void test_decode_length(void **state)
{
	const size_t max = PATH_KEY_MAX;

	(void)state;
	/* One segment, raw and percent-encoded. */
	expect_long("a", max, "", PATH_KEY, "a", "", true);
	expect_long("a", max + 1, "", PATH_KEY, NULL, NULL, false);
	expect_long("%41", max, "", PATH_KEY, "A", "", true);
	expect_long("%41", max + 1, "", PATH_KEY, NULL, NULL, false);
	expect_long("\xc3\xa9", max / 2, "", PATH_KEY, "\xc3\xa9", "", true);
	expect_long("\xc3\xa9", max / 2, "x", PATH_KEY, NULL, NULL, false);
	/* Many segments: separators count. */
	expect_long("a/", max / 2 - 1, "bc", PATH_KEY, "a/", "bc", true);
	expect_long("a/", max / 2, "b", PATH_KEY, NULL, NULL, false);
	expect_long("a", max, "/b", PATH_KEY, NULL, NULL, false);
	expect_long("a/", max, "", PATH_KEY, NULL, NULL, false);
	/* Prefixes: up to PATH_KEY_MAX bytes before the trailing '/'. */
	expect_long("a", max, "/", PATH_PREFIX, "a", "/", true);
	expect_long("a", max + 1, "/", PATH_KEY, NULL, NULL, false);
	expect_long("a/", max / 2 - 1, "bc/", PATH_PREFIX, "a/", "bc/", true);
	/* Far over, in one or many segments: refused, nothing overflows. */
	expect_long("a", 100000, "", PATH_KEY, NULL, NULL, false);
	expect_long("%41", 100000, "/", PATH_KEY, NULL, NULL, false);
	expect_long("ab/", 100000, "", PATH_KEY, NULL, NULL, false);
	/* Other errors found before the length is exhausted still win. */
	{
		char *raw = make_raw("a", max - 2, "/./");

		expect_decode(raw, PATH_KEY, NULL, 0, DOT);
		free(raw);
	}
}

/* path_decode(why = NULL) is allowed. */
static void test_decode_null_why(void **state)
{
	char out[OUTLEN];
	size_t len;
	enum path_kind kind;

	(void)state;
	assert_int_equal(path_decode("/kv/a//b", out, sizeof(out), &len, &kind,
				     NULL), KVS_EINVAL);
	assert_int_equal(path_decode("/kv/a", out, sizeof(out), &len, &kind,
				     NULL), 0);
	assert_int_equal(len, 1);
}

/* ---- path_key_valid ---------------------------------------------------- */

struct key_case {
	const char *key;
	size_t len;
	bool valid;
};

#define KV(lit, v) { lit, sizeof(lit) - 1, v }

static void test_key_valid(void **state)
{
	static const struct key_case t[] = {
		KV("a", true), KV("a/b", true), KV("users/john/profile", true),
		KV("%41", true),          /* no decoding: '%' is a character */
		KV("%2F", true), KV("%", true), KV("%G", true),
		KV("a b", true), KV("a+b", true), KV("...", true),
		KV(".a", true), KV("a./.b", true), KV("~!$&'()*,;=:@?#", true),
		KV("j\xc3\xb6rg", true), KV("\xf0\x9f\x98\x80/x", true),
		KV("\xf4\x8f\xbf\xbf", true), KV("\xef\xbf\xbf", true),

		KV("", false), KV("/", false), KV("a/", false),
		KV("a/b/", false), KV("/a", false), KV("a//b", false),
		KV("//", false), KV(".", false), KV("..", false),
		KV("a/.", false), KV("./a", false), KV("a/../b", false),
		KV("a\0b", false), KV("\0", false), KV("a\0", false),
		KV("a\x01", false), KV("\x1f", false), KV("\x7f", false),
		KV("a\nb", false), KV("a\tb", false),
		KV("\xc0\xaf", false), KV("\xc1\xbf", false),
		KV("\xe0\x80\xaf", false), KV("\xed\xa0\x80", false),
		KV("\xf4\x90\x80\x80", false), KV("\xf5\x80\x80\x80", false),
		KV("\xff", false), KV("\x80", false), KV("\xc3", false),
		KV("a/\xc3/\xa9", false), KV("\xe2\x82", false),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *copy = malloc(t[i].len ? t[i].len : 1);

		assert_non_null(copy);
		memcpy(copy, t[i].key, t[i].len);
		if (path_key_valid(copy, t[i].len) != t[i].valid) {
			print_error("case %zu \"%.*s\" (len %zu): want %s\n", i,
				    (int)t[i].len, t[i].key, t[i].len,
				    t[i].valid ? "valid" : "invalid");
			fail();
		}
		free(copy);
	}
}

static void test_key_valid_length(void **state)
{
	char *key = malloc(PATH_KEY_MAX + 1);

	(void)state;
	assert_non_null(key);
	memset(key, 'k', PATH_KEY_MAX + 1);
	assert_true(path_key_valid(key, PATH_KEY_MAX));
	assert_false(path_key_valid(key, PATH_KEY_MAX + 1));
	key[1] = '/';
	assert_true(path_key_valid(key, PATH_KEY_MAX));
	/* Only len bytes count: what follows is not part of the key. */
	assert_true(path_key_valid("ab/", 2));
	assert_true(path_key_valid("a\x01", 1));
	assert_false(path_key_valid("ab/", 3));
	free(key);
}

/* Whatever path_decode accepts as a key, path_key_valid accepts too. */
static void test_key_valid_agrees(void **state)
{
	static const char *const raws[] = {
		"/kv/a", "/kv/a/b", "/kv/%2541", "/kv/j%C3%B6rg", "/kv/a+b",
		"/kv/%F0%9F%98%80/x", "/kv/.a/..b", "/kv/a%20b/c",
	};
	static const char *const prefixes[] = {
		"/kv/a/", "/kv/a/b/", "/kv/", "/kv",
	};
	char out[OUTLEN];
	size_t len;
	enum path_kind kind;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(raws) / sizeof(raws[0]); i++) {
		assert_int_equal(path_decode(raws[i], out, sizeof(out), &len,
					     &kind, &why), 0);
		assert_int_equal(kind, PATH_KEY);
		assert_true(path_key_valid(out, len));
	}
	/* A prefix (or the empty root) is not a key. */
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		assert_int_equal(path_decode(prefixes[i], out, sizeof(out),
					     &len, &kind, &why), 0);
		assert_int_equal(kind, PATH_PREFIX);
		assert_false(path_key_valid(out, len));
	}
}

/* ---- path_query_get ---------------------------------------------------- */

struct query_case {
	const char *query;
	const char *name;
	int rc;
	bool found;
	const char *value;
};

static void test_query(void **state)
{
	static const struct query_case t[] = {
		{ NULL, "limit", 0, false, NULL },
		{ "", "limit", 0, false, NULL },
		{ "limit=10", "limit", 0, true, "10" },
		{ "a=1&limit=20&b=2", "limit", 0, true, "20" },
		{ "limit=1&limit=2", "limit", 0, true, "1" },
		{ "limits=5&limit=3", "limit", 0, true, "3" },
		{ "xlimit=5", "limit", 0, false, NULL },
		{ "lim=5", "limit", 0, false, NULL },
		{ "limit", "limit", 0, true, "" },
		{ "limit=", "limit", 0, true, "" },
		{ "values&x=1", "values", 0, true, "" },
		{ "x=1&values", "values", 0, true, "" },
		{ "values=true", "values", 0, true, "true" },
		{ "&&limit=7&", "limit", 0, true, "7" },
		{ "=5&limit=6", "limit", 0, true, "6" },
		{ "a=b=c", "a", 0, true, "b=c" },
		{ "LIMIT=5", "limit", 0, false, NULL },
		{ "%6Cimit=5", "limit", 0, false, NULL }, /* names undecoded */
		{ "after=users%2Fjohn", "after", 0, true, "users/john" },
		{ "after=users%2fjohn", "after", 0, true, "users/john" },
		{ "after=a+b", "after", 0, true, "a b" },
		{ "after=a%20b", "after", 0, true, "a b" },
		{ "after=%2B", "after", 0, true, "+" },
		{ "after=%25", "after", 0, true, "%" },
		{ "after=%2541", "after", 0, true, "%41" },
		{ "after=%26%3D", "after", 0, true, "&=" },
		{ "after=caf%C3%A9", "after", 0, true, "caf\xc3\xa9" },
		{ "after=a#b", "after", 0, true, "a#b" },
		/* Only the wanted value is decoded. */
		{ "x=%&limit=5", "limit", 0, true, "5" },
		{ "limit=5&x=%G1", "limit", 0, true, "5" },
		/* Bad escapes and NUL in the wanted value. */
		{ "after=%", "after", KVS_EINVAL, false, NULL },
		{ "after=a%", "after", KVS_EINVAL, false, NULL },
		{ "after=%4", "after", KVS_EINVAL, false, NULL },
		{ "after=%4&b=1", "after", KVS_EINVAL, false, NULL },
		{ "after=%G1", "after", KVS_EINVAL, false, NULL },
		{ "after=%1G", "after", KVS_EINVAL, false, NULL },
		{ "after=%%41", "after", KVS_EINVAL, false, NULL },
		{ "after=%00", "after", KVS_EINVAL, false, NULL },
		{ "after=a%00b", "after", KVS_EINVAL, false, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char out[64];
		bool found = !t[i].found;
		int rc;

		strcpy(out, "untouched");
		rc = path_query_get(t[i].query, t[i].name, out, sizeof(out),
				    &found);
		if (rc != t[i].rc) {
			print_error("case %zu \"%s\": rc %d want %d\n", i,
				    t[i].query ? t[i].query : "(null)", rc,
				    t[i].rc);
			fail();
		}
		if (rc == 0) {
			assert_int_equal(found, t[i].found);
			assert_string_equal(out, t[i].found ? t[i].value :
					    "untouched");
		} else {
			/* A failed call leaves no trace. */
			assert_string_equal(out, "untouched");
			assert_int_equal(found, !t[i].found);
		}
	}
}

static void test_query_capacity(void **state)
{
	char *out = malloc(4); /* exact size: ASan sees any overrun */
	bool found = false;

	(void)state;
	assert_non_null(out);
	assert_int_equal(path_query_get("v=abc", "v", out, 4, &found), 0);
	assert_true(found);
	assert_string_equal(out, "abc");
	assert_int_equal(path_query_get("v=%41%42+", "v", out, 4, &found), 0);
	assert_string_equal(out, "AB ");

	found = false;
	memcpy(out, "zzz", 4);
	assert_int_equal(path_query_get("v=abcd", "v", out, 4, &found),
			 KVS_EINVAL);
	assert_false(found);
	assert_string_equal(out, "zzz");
	assert_int_equal(path_query_get("v=%41%42%43%44", "v", out, 4, &found),
			 KVS_EINVAL);
	assert_string_equal(out, "zzz");
	/* No room even for the terminator. */
	assert_int_equal(path_query_get("v=", "v", out, 0, &found), KVS_EINVAL);
	/* Absent: nothing written, whatever the capacity. */
	assert_int_equal(path_query_get("w=abcdefgh", "v", out, 4, &found), 0);
	assert_false(found);
	assert_string_equal(out, "zzz");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_kinds),
		cmocka_unit_test(test_decode_percent),
		cmocka_unit_test(test_decode_refusals),
		cmocka_unit_test(test_decode_length),
		cmocka_unit_test(test_decode_null_why),
		cmocka_unit_test(test_key_valid),
		cmocka_unit_test(test_key_valid_length),
		cmocka_unit_test(test_key_valid_agrees),
		cmocka_unit_test(test_query),
		cmocka_unit_test(test_query_capacity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
