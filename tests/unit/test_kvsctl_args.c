/*
 * test_kvsctl_args.c - kvsctl's parsing (src/kvsctl/args.c): options,
 * durations, shell words, exit codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "args.h"
#include "kvs_client.h"

static const struct opt_spec spec[] = {
	{ "ttl", 0, true }, { "create", 0, false }, { "output", 'o', true }, { "recursive", 'r', false },
};

static void test_options(void **state)
{
	char *argv[] = { "k", "--ttl", "30s", "-o", "json", "-", "--create", "-r", "--", "--x" };
	struct args a;
	char err[128];

	(void)state;
	assert_int_equal(args_parse(10, argv, spec, 4, &a, err, sizeof(err)), 0);
	assert_string_equal(a.val[0], "30s");
	assert_string_equal(a.val[1], "");
	assert_string_equal(a.val[2], "json");
	assert_string_equal(a.val[3], "");
	assert_int_equal(a.n_pos, 3);
	assert_string_equal(a.pos[0], "k");
	assert_string_equal(a.pos[1], "-");
	assert_string_equal(a.pos[2], "--x");
}

static void test_option_forms(void **state)
{
	char *argv[] = { "--ttl=5m", "-ojson" };
	struct args a;
	char err[128];

	(void)state;
	assert_int_equal(args_parse(2, argv, spec, 4, &a, err, sizeof(err)), 0);
	assert_string_equal(a.val[0], "5m");
	assert_string_equal(a.val[2], "json");
}

static void test_option_errors(void **state)
{
	char *unknown[] = { "--nope" }, *missing[] = { "--ttl" }, *flagval[] = { "--create=1" };
	char *shortu[] = { "-z" };
	struct args a;
	char err[128];

	(void)state;
	assert_int_equal(args_parse(1, unknown, spec, 4, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown option --nope");
	assert_int_equal(args_parse(1, missing, spec, 4, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "option --ttl needs a value");
	assert_int_equal(args_parse(1, flagval, spec, 4, &a, err, sizeof(err)), -1);
	assert_int_equal(args_parse(1, shortu, spec, 4, &a, err, sizeof(err)), -1);
	assert_string_equal(err, "unknown option -z");
}

static void test_durations(void **state)
{
	int64_t ms;

	(void)state;
	assert_int_equal(args_duration_ms("30s", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(args_duration_ms("30", &ms), 0);
	assert_int_equal(ms, 30000);
	assert_int_equal(args_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(args_duration_ms("2h", &ms), 0);
	assert_int_equal(ms, 7200000);
	assert_int_equal(args_duration_ms("7d", &ms), 0);
	assert_int_equal(ms, 7 * 86400000LL);
	assert_int_equal(args_duration_ms("0", &ms), -1);
	assert_int_equal(args_duration_ms("-5s", &ms), -1);
	assert_int_equal(args_duration_ms("1.5s", &ms), -1);
	assert_int_equal(args_duration_ms("5x", &ms), -1);
	assert_int_equal(args_duration_ms("s", &ms), -1);
	assert_int_equal(args_duration_ms("", &ms), -1);
	assert_int_equal(args_duration_ms("99999999999999999s", &ms), -1);
}

static void test_split(void **state)
{
	char line[] = "put 'a b' \"x\\\"y\" c\\ d  {\"k\":1}";
	char bad[] = "put 'open";
	char *w[8];
	char err[64];

	(void)state;
	assert_int_equal(args_split(line, w, 8, err, sizeof(err)), 5);
	assert_string_equal(w[0], "put");
	assert_string_equal(w[1], "a b");
	assert_string_equal(w[2], "x\"y");
	assert_string_equal(w[3], "c d");
	assert_string_equal(w[4], "{k:1}");
	assert_int_equal(args_split(bad, w, 8, err, sizeof(err)), -1);
	assert_string_equal(err, "unclosed ' quote");
}

static void test_split_limits(void **state)
{
	char line[] = "a b c d", empty[] = "   ";
	char *w[3];
	char err[64];

	(void)state;
	assert_int_equal(args_split(line, w, 3, err, sizeof(err)), -1);
	assert_int_equal(args_split(empty, w, 3, err, sizeof(err)), 0);
}

static void test_exit_codes(void **state)
{
	(void)state;
	assert_int_equal(args_exit_code(0), 0);
	assert_int_equal(args_exit_code(3), 0);
	assert_int_equal(args_exit_code(KVS_ENOTFOUND), 1);
	assert_int_equal(args_exit_code(KVS_EBADREQ), 2);
	assert_int_equal(args_exit_code(KVS_EINVAL), 2);
	assert_int_equal(args_exit_code(KVS_EPRECOND), 3);
	assert_int_equal(args_exit_code(KVS_EUNREACHABLE), 4);
	assert_int_equal(args_exit_code(KVS_EAUTH), 5);
	assert_int_equal(args_exit_code(KVS_EFORBIDDEN), 5);
	assert_int_equal(args_exit_code(KVS_ESERVER), 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_options),    cmocka_unit_test(test_option_forms),
		cmocka_unit_test(test_option_errors), cmocka_unit_test(test_durations),
		cmocka_unit_test(test_split),      cmocka_unit_test(test_split_limits),
		cmocka_unit_test(test_exit_codes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
