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

#include "config.h"

/* Sets level, format and the node name printed on each line. */
void log_init(enum log_level level, enum log_format format, const char *node_id);

/* True if a line at level would be printed (skip expensive formatting). */
bool log_enabled(enum log_level level);

/* Logs one event; fmt (printf-style) produces the key=value fields. */
void log_event(enum log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(ev, ...) log_event(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_event(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_event(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_event(LOG_ERROR, ev, __VA_ARGS__)

#endif
