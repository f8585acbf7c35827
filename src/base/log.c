/*
 * log.c - one line per event on stderr, as text or JSON (see log.h).
 *
 * Threads: the settings are written once by log_init() before threads
 * start; each line is formatted in a stack buffer and written with a single
 * write(2), which POSIX keeps whole for pipes up to PIPE_BUF and which in
 * practice never interleaves for regular files opened O_APPEND.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"

#define LOG_LINE_MAX 4096

static struct {
	enum log_level level;
	enum log_format format;
	char node[128];                 /* node_id (config.h: CONFIG_ID_MAX) */
} log_settings = { LOG_INFO, LOG_FORMAT_TEXT, "kvs" };

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char *const level_upper[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void log_init(enum log_level level, enum log_format format, const char *node_id)
{
	log_settings.level = level;
	log_settings.format = format;
	snprintf(log_settings.node, sizeof(log_settings.node), "%s", node_id);
}

bool log_enabled(enum log_level level)
{
	return level >= log_settings.level;
}

/* Appends s as JSON string content (no quotes) to out; returns new position. */
static size_t json_escape(char *out, size_t pos, size_t cap, const char *s, size_t n)
{
	return pos + buf_json_escape(out + pos, cap > pos + 7 ? cap - pos - 7 : 0, s, n);
}

/*
 * Turns "k1=v1 k2=\"v 2\"" into ,"k1":"v1","k2":"v 2".  Text without '='
 * becomes a "msg" field.
 */
static size_t json_fields(char *out, size_t pos, size_t cap, const char *f)
{
	while (*f && pos + 16 < cap) {
		while (*f == ' ')
			f++;
		if (!*f)
			break;
		const char *eq = strchr(f, '=');
		const char *sp = strchr(f, ' ');
		if (!eq || (sp && sp < eq)) {
			pos += (size_t)snprintf(out + pos, cap - pos, ",\"msg\":\"");
			pos = json_escape(out, pos, cap, f, strlen(f));
			pos += (size_t)snprintf(out + pos, cap - pos, "\"");
			break;
		}
		pos += (size_t)snprintf(out + pos, cap - pos, ",\"");
		pos = json_escape(out, pos, cap, f, (size_t)(eq - f));
		pos += (size_t)snprintf(out + pos, cap - pos, "\":\"");
		const char *v = eq + 1, *end;
		if (*v == '"') {
			v++;
			end = strchr(v, '"');
			if (!end)
				end = v + strlen(v);
			pos = json_escape(out, pos, cap, v, (size_t)(end - v));
			f = *end ? end + 1 : end;
		} else {
			end = strchr(v, ' ');
			if (!end)
				end = v + strlen(v);
			pos = json_escape(out, pos, cap, v, (size_t)(end - v));
			f = end;
		}
		if (pos + 2 < cap)
			out[pos++] = '"';
	}
	return pos;
}

const char *log_esc(char *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t pos = 0;

	for (size_t i = 0; s && i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';

		if (pos + (plain ? 1 : 4) > LOG_ESC_MAX - 4) {
			memcpy(out + pos, "...", 3);
			pos += 3;
			break;
		}
		if (plain) {
			out[pos++] = (char)c;
		} else {
			out[pos++] = '\\';
			out[pos++] = 'x';
			out[pos++] = hex[c >> 4];
			out[pos++] = hex[c & 15];
		}
	}
	out[pos] = '\0';
	return out;
}

bool log_limit_pass(struct log_limit *l, unsigned long *dropped)
{
	struct timespec ts;
	long long now, next;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	next = atomic_load(&l->next_ms);
	if (now < next || !atomic_compare_exchange_strong(&l->next_ms, &next, now + LOG_LIMIT_MS)) {
		atomic_fetch_add(&l->dropped, 1);
		return false;
	}
	*dropped = atomic_exchange(&l->dropped, 0);
	return true;
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	char fields[LOG_LINE_MAX / 2], line[LOG_LINE_MAX], when[96];
	struct timespec ts;
	struct tm tm;
	size_t pos;
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(fields, sizeof(fields), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);

	if (log_settings.format == LOG_FORMAT_JSON) {
		pos = (size_t)snprintf(line, sizeof(line),
				       "{\"time\":\"%s\",\"level\":\"%s\",\"node\":\"", when,
				       level_names[level]);
		pos = json_escape(line, pos, sizeof(line), log_settings.node,
				  strlen(log_settings.node));
		pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\",\"event\":\"%s\"", event);
		pos = json_fields(line, pos, sizeof(line) - 3, fields);
		line[pos++] = '}';
	} else {
		pos = (size_t)snprintf(line, sizeof(line), "%s %-5s %s %s %s", when,
				       level_upper[level], log_settings.node, event, fields);
		if (pos >= sizeof(line) - 1)
			pos = sizeof(line) - 2;
	}
	line[pos++] = '\n';
	ssize_t rc = write(STDERR_FILENO, line, pos);
	(void)rc; /* nowhere to report a failed log write */
}
