/*
 * notify.h - tell systemd (or any sd_notify listener) how the node is doing.
 *
 * A thin wrapper around libsystemd's sd_notify(3) protocol, used by a unit
 * with Type=notify and WatchdogSec= (config/kvs.service):
 *
 *   start:  notify_ready()        once the HTTP server answers requests
 *   run:    notify_status()       when the mode changes (syncing -> normal)
 *           notify_watchdog()     at least every half watchdog interval
 *   stop:   notify_stopping()     as soon as SIGTERM/SIGINT is taken
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset (the node was not
 * started by systemd), so callers never test for systemd themselves.  The
 * environment is left in place (sd_notify's unset_environment is 0), so the
 * calls may be repeated for the whole life of the process.
 *
 * A message that cannot be sent is logged as a warning ("notify_failed")
 * and otherwise ignored: losing contact with the service manager is no
 * reason to stop serving.  These functions return nothing for that reason.
 *
 * Threads: any thread may call any function (each call opens, sends on and
 * closes its own datagram socket); in kvs only the main thread does.
 * NotifyAccess=main in the unit makes systemd accept messages from the main
 * PID only, which is the node process itself.
 */
#ifndef KVS_NOTIFY_H
#define KVS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Sends "READY=1" and "STATUS=serving, mode <mode>".  mode: the node's mode
 * name ("normal", "read-only", "syncing"), borrowed for the call only. */
void notify_ready(const char *mode);

/* Sends "STATUS=serving, mode <mode>" (what `systemctl status` shows). */
void notify_status(const char *mode);

/* Sends "STOPPING=1" and "STATUS=stopping": systemd then waits for the exit
 * (up to TimeoutStopSec) instead of treating it as a crash. */
void notify_stopping(void);

/*
 * True if the service manager expects watchdog pings, with the interval in
 * *usec (microseconds; ping at least every *usec / 2).  False, *usec
 * untouched, when WATCHDOG_USEC is unset, or WATCHDOG_PID names another
 * process, or the variables are malformed (logged).  Wraps
 * sd_watchdog_enabled(0, usec); call it once at start-up.
 */
bool notify_watchdog_usec(uint64_t *usec);

/* Sends "WATCHDOG=1": the node is alive; resets systemd's watchdog timer. */
void notify_watchdog(void);

#endif
