/*
 * log.h - leveled, thread-safe logging to stderr, one line per event.
 *
 * Every line names an event (a fixed snake_case word a user can grep for,
 * e.g. "member_join", "conflict_resolved") and carries key=value fields:
 *
 *   text: 2026-11-22T10:00:00.123Z INFO node1 member_join id=node2 address=127.0.0.1:8082
 *   json: {"time":"2026-11-22T10:00:00.123Z","level":"info","node":"node1",
 *          "event":"member_join","id":"node2","address":"127.0.0.1:8082"}
 *
 * Field values containing spaces are written by callers as key="some text";
 * the JSON form unquotes them.  log_init() is called once in main before
 * any thread starts; log_event() may be called from any thread (one write(2)
 * per line, so lines never interleave).
 */
#ifndef KVS_LOG_H
#define KVS_LOG_H

#include <stdbool.h>
#include <string.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON };

/* Sets level, format and the node name printed on each line. */
void log_init(enum log_level level, enum log_format format, const char *node_id);

/* True if a line at level would be printed (skip expensive formatting). */
bool log_enabled(enum log_level level);

/* Logs one event; fmt (printf-style) produces the key=value fields. */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Bytes a network value may take in a log line: a string from a request or
 * a peer (a path, a header, an id) goes through LOG_ESC(s) before it is
 * printed, so that it cannot end its field or add fields of its own.
 */
#define LOG_ESC_MAX 256

/*
 * Copies s[0..len) into out (LOG_ESC_MAX bytes) with '"', '\\', control bytes and
 * bytes above 0x7e written as \\xHH, cut to fit ("..." marks a cut).
 * Returns out.  Any thread.
 */
const char *log_esc(char *out, const char *s, size_t len);
#define LOG_ESC(s) log_esc((char[LOG_ESC_MAX]){ 0 }, (s), (s) ? strlen(s) : 0)
#define LOG_ESCN(s, n) log_esc((char[LOG_ESC_MAX]){ 0 }, (s), (n))

/* The state of one rate-limited log call site (zero-initialised). */
struct log_limit {
	_Atomic long long next_ms;      /* monotonic ms before which lines are dropped */
	_Atomic unsigned long dropped;  /* lines dropped since the last one printed */
};

#define LOG_LIMIT_MS 10000 /* a rate-limited call site prints at most one line per this */

/*
 * True if the call site may print now; *dropped gets how many lines it
 * dropped since it last printed.  Any thread.
 */
bool log_limit_pass(struct log_limit *l, unsigned long *dropped);

/* log_warn at most once per LOG_LIMIT_MS per call site, for events a peer
 * or a client can cause at will; the line says how many were dropped. */
#define log_warn_limited(ev, fmt, ...)                                                  \
	do {                                                                            \
		static struct log_limit lim_;                                           \
		unsigned long dropped_;                                                 \
		if (log_enabled(LOG_WARN) && log_limit_pass(&lim_, &dropped_))          \
			log_event(LOG_WARN, ev, fmt " dropped=%lu", __VA_ARGS__, dropped_); \
	} while (0)

#define log_debug(ev, ...) log_event(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)

#endif
