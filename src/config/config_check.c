/*
 * config_check.c - the dedicated validators of the keys with rules of
 * their own, and protected mode's test.
 *
 * node_id and cluster_id (config_node_id_valid()), bind_address
 * (config_host_valid()), advertise_address and seed_nodes
 * (config_address_problem()): the table's string checks
 * (config_table.c) and config.c's seed_nodes call them, and members.c
 * applies the same functions to member records that come from the
 * network, so a node and its peers agree on what a valid id or address is.
 * Messages are fixed strings: callers quote the value themselves.
 *
 * Everything is ASCII whatever the locale says, and IPv4 only: Debian's
 * civetweb is built without IPv6.
 *
 * Threads: pure functions of their arguments, plus config_log_warnings(),
 * which logs.
 */
#include "config_table.h"

#include <string.h>
#include <strings.h>

#include "log.h"

/* ------------------------------------------------------------------ */
/* statics                                                             */
/* ------------------------------------------------------------------ */

static bool is_ascii_alnum(int c);
static bool parse_ipv4(const char *s, size_t len, unsigned char out[4]);
static const char *host_problem(const char *h, size_t len);

/* ------------------------------------------------------------------ */
/* public API                                                          */
/* ------------------------------------------------------------------ */

bool config_node_id_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= CONFIG_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!config_id_char((unsigned char)s[i]))
			return false;
	return true;
}

bool config_host_valid(const char *host)
{
	return host_problem(host, strlen(host)) == NULL;
}

bool config_host_is_loopback(const char *host)
{
	unsigned char ip[4];

	return parse_ipv4(host, strlen(host), ip) && ip[0] == 127;
}

/*
 * "host:port", or with allow_scheme also "http(s)://host:port" (scheme in
 * any case, as curl takes it).
 */
const char *config_address_problem(const char *s, bool allow_scheme)
{
	const char *colon, *p, *why;
	long port = 0;

	if (strlen(s) >= CONFIG_ADDR_MAX)
		return "address longer than 255 bytes";
	if (allow_scheme) {
		if (!strncasecmp(s, "http://", 7))
			s += 7;
		else if (!strncasecmp(s, "https://", 8))
			s += 8;
	}
	if (strstr(s, "://"))
		return allow_scheme ? "scheme must be http:// or https://"
				    : "expected \"host:port\" without a scheme";
	if (*s == '[')
		return "IPv6 addresses are not supported (Debian's civetweb has no IPv6)";
	colon = strrchr(s, ':');
	if (!colon)
		return "expected \"host:port\"";
	if (colon == s)
		return "missing host in \"host:port\"";
	why = host_problem(s, (size_t)(colon - s));
	if (why)
		return why;
	p = colon + 1;
	if (!*p)
		return "missing port in \"host:port\"";
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return "port must be a number 1..65535";
		port = port * 10 + (*p - '0');
		if (port > 65535)
			return "port must be a number 1..65535";
	}
	if (port < 1)
		return "port must be a number 1..65535";
	return NULL;
}

bool config_address_valid(const char *s)
{
	return config_address_problem(s, false) == NULL;
}

/*
 * Protected mode's test: a non-loopback bind_address, no cluster secret
 * (inline or from a file) and no client tokens.
 */
bool config_is_open(const struct kvs_config *cfg)
{
	return !config_host_is_loopback(cfg->bind_address) && !cfg->cluster_secret[0] &&
	       !cfg->cluster_secret_file[0] && cfg->token_count == 0;
}

/* The one warning a valid config can earn; logged once at start. */
void config_log_warnings(const struct kvs_config *cfg)
{
	if (!cfg->protected_mode && config_is_open(cfg))
		log_warn("protected_mode_off",
			 "bind_address=%s note=\"protected_mode is false: the data API and the peer "
			 "endpoints are open to anyone who can reach this address; set "
			 "cluster_secret and auth_tokens\"", cfg->bind_address);
}

/* ------------------------------------------------------------------ */
/* shared with config_table.c (config_table.h)                         */
/* ------------------------------------------------------------------ */

bool config_id_char(int c)
{
	return is_ascii_alnum(c) || c == '.' || c == '_' || c == '-';
}

/* ------------------------------------------------------------------ */
/* internals                                                           */
/* ------------------------------------------------------------------ */

/* ASCII only, whatever the locale says isalnum() is. */
static bool is_ascii_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/*
 * Parses exactly len bytes as an IPv4 dotted quad: four decimal numbers
 * 0..255 without leading zeros (inet_aton would read "010" as octal).
 * Fills out (if not NULL) and returns true, or returns false.
 */
static bool parse_ipv4(const char *s, size_t len, unsigned char out[4])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t digits = 0;

		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
			if (digits == 1 && v == 0)
				return false; /* leading zero */
			v = v * 10 + (unsigned)(s[i] - '0');
			if (v > 255)
				return false;
		}
		if (digits == 0)
			return false;
		if (out)
			out[part] = (unsigned char)v;
	}
	return i == len;
}

/* NULL, or what is wrong with the host h[0..len) (rules at config_host_valid). */
static const char *host_problem(const char *h, size_t len)
{
	size_t label = 0;
	bool digits_only = true;

	if (len == 0)
		return "missing host";
	if (len > 253)
		return "host name longer than 253 characters";
	for (size_t i = 0; i <= len; i++) {
		int c = i < len ? (unsigned char)h[i] : '.';

		if (c == '.') {
			if (label == 0)
				return "empty label in host name";
			if (h[i - 1] == '-')
				return "host name labels must not start or end with '-'";
			if (i == len && digits_only)
				return parse_ipv4(h, len, NULL) ? NULL
				       : "invalid IPv4 address (four numbers 0..255)";
			label = 0;
			digits_only = true;
			continue;
		}
		if (c == ':')
			return "IPv6 addresses are not supported (Debian's civetweb has no IPv6)";
		if (!is_ascii_alnum(c) && c != '-')
			return "invalid character in host";
		if (label == 0 && c == '-')
			return "host name labels must not start or end with '-'";
		if (c < '0' || c > '9')
			digits_only = false;
		if (++label > 63)
			return "host name label longer than 63 characters";
	}
	return NULL;
}
