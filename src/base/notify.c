/*
 * notify.c - sd_notify(3) messages to systemd (see notify.h).
 *
 * libsystemd lives behind this module only.  No state is kept: each call
 * hands one message to sd_notify(), which reads NOTIFY_SOCKET, sends one
 * datagram and returns 0 (no socket: not under systemd), > 0 (sent) or a
 * negative errno (send failed, logged here).
 */
#include "notify.h"

#include <string.h>

#include <systemd/sd-daemon.h>

#include "log.h"

/* Logs a failed send; what names the message for the log line. */
static void notify_check(int rc, const char *what)
{
	if (rc < 0)
		log_warn("notify_failed", "message=%s error=\"%s\"", what, strerror(-rc));
}

void notify_ready(const char *mode)
{
	notify_check(sd_notifyf(0, "READY=1\nSTATUS=serving, mode %s", mode), "READY");
}

void notify_status(const char *mode)
{
	notify_check(sd_notifyf(0, "STATUS=serving, mode %s", mode), "STATUS");
}

void notify_stopping(void)
{
	notify_check(sd_notify(0, "STOPPING=1\nSTATUS=stopping"), "STOPPING");
}

bool notify_watchdog_usec(uint64_t *usec)
{
	uint64_t us = 0;
	int rc = sd_watchdog_enabled(0, &us);

	if (rc < 0) {
		log_warn("notify_failed", "message=WATCHDOG_USEC error=\"%s\"", strerror(-rc));
		return false;
	}
	if (rc == 0 || us == 0)
		return false;
	*usec = us;
	return true;
}

void notify_watchdog(void)
{
	notify_check(sd_notify(0, "WATCHDOG=1"), "WATCHDOG");
}
