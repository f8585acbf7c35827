/*
 * args.c - option parsing, durations, shell words and exit codes of
 * kvsctl (args.h).  Pure functions; no global state (the shell parses many
 * lines with them).
 */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "kvs_client.h"

static int find_long(const struct opt_spec *spec, int n, const char *name, size_t len)
{
	for (int i = 0; i < n; i++)
		if (strlen(spec[i].name) == len && strncmp(spec[i].name, name, len) == 0)
			return i;
	return -1;
}

static int find_short(const struct opt_spec *spec, int n, char c)
{
	for (int i = 0; i < n; i++)
		if (spec[i].short_name && spec[i].short_name == c)
			return i;
	return -1;
}

int args_parse(int argc, char **argv, const struct opt_spec *spec, int n, struct args *out,
	       char *err, size_t n_err)
{
	bool options = true;

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		int k;

		if (options && strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		if (!options || a[0] != '-' || a[1] == '\0') {
			if (out->n_pos == ARGS_MAX_POS) {
				snprintf(err, n_err, "too many arguments");
				return -1;
			}
			out->pos[out->n_pos++] = a;
			continue;
		}
		if (a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			k = find_long(spec, n, a + 2, len);
			if (k < 0) {
				snprintf(err, n_err, "unknown option --%.*s", (int)len, a + 2);
				return -1;
			}
			if (eq && !spec[k].has_arg) {
				snprintf(err, n_err, "option --%s takes no value", spec[k].name);
				return -1;
			}
			val = eq ? eq + 1 : NULL;
		} else {
			k = find_short(spec, n, a[1]);
			if (k < 0) {
				snprintf(err, n_err, "unknown option -%c", a[1]);
				return -1;
			}
			if (a[2] != '\0') {
				if (!spec[k].has_arg) {
					snprintf(err, n_err, "option -%c takes no value", a[1]);
					return -1;
				}
				val = a + 2;
			}
		}
		if (spec[k].has_arg && !val) {
			if (i + 1 >= argc) {
				snprintf(err, n_err, "option --%s needs a value", spec[k].name);
				return -1;
			}
			val = argv[++i];
		}
		out->val[k] = spec[k].has_arg ? val : "";
	}
	return 0;
}

int args_uint(const char *s, uint64_t *v)
{
	uint64_t x = 0;

	if (!s || !*s || strlen(s) > 19)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*v = x;
	return 0;
}

int args_duration_ms(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
		      { "d", 86400000 }, { "", 1000 } };
	char num[24];
	size_t d = 0;
	uint64_t v;

	if (!s)
		return -1;
	while (s[d] >= '0' && s[d] <= '9')
		d++;
	if (d == 0 || d >= sizeof(num) - 1 || d > 12)
		return -1;
	memcpy(num, s, d);
	num[d] = '\0';
	if (args_uint(num, &v) != 0 || v == 0)
		return -1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(s + d, units[i].unit) == 0) {
			*ms = (int64_t)v * units[i].ms;
			return 0;
		}
	}
	return -1;
}

int args_split(char *line, char **words, int max, char *err, size_t n_err)
{
	char *r = line, *w = line;
	int n = 0;

	for (;;) {
		while (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r')
			r++;
		if (!*r)
			return n;
		if (n == max) {
			snprintf(err, n_err, "too many words (at most %d)", max);
			return -1;
		}
		words[n++] = w;
		while (*r && *r != ' ' && *r != '\t' && *r != '\n' && *r != '\r') {
			char q = *r;

			if (q == '\'' || q == '"') {
				r++;
				while (*r && *r != q) {
					if (q == '"' && *r == '\\' && (r[1] == '"' || r[1] == '\\'))
						r++;
					*w++ = *r++;
				}
				if (!*r) {
					snprintf(err, n_err, "unclosed %c quote", q);
					return -1;
				}
				r++;
			} else if (q == '\\' && r[1]) {
				r++;
				*w++ = *r++;
			} else {
				*w++ = *r++;
			}
		}
		if (*r)
			r++;
		*w++ = '\0';
	}
}

int args_exit_code(int kvs_code)
{
	switch (kvs_code) {
	case KVS_ENOTFOUND: return EXIT_NOTFOUND;
	case KVS_EBADREQ: case KVS_EINVAL: return EXIT_USAGE;
	case KVS_EPRECOND: return EXIT_PRECOND;
	case KVS_EUNREACHABLE: return EXIT_UNREACHABLE;
	case KVS_EAUTH: case KVS_EFORBIDDEN: return EXIT_REFUSED;
	default: return kvs_code >= 0 ? 0 : EXIT_OTHER;
	}
}
