/*
 * service.h — roamhubd's side of the systemd service protocol (sd_notify(3), libsystemd):
 * READY=1 once the listeners are bound and the routing table is open, RELOADING=1 ... READY=1
 * around a SIGHUP reload, STOPPING=1 when the drain starts, WATCHDOG=1 pings from the main
 * thread's event loop at half of WatchdogSec= (systemd restarts a hub whose main loop stalls).
 * Without $NOTIFY_SOCKET (not started by systemd, or Type=simple) every call is a no-op.
 * All functions are for the main thread only.
 */
#ifndef RH_SERVICE_H
#define RH_SERVICE_H

#include <event2/event.h>

/* READY=1 with STATUS= the one-line `status` (e.g. listening ports). */
void service_ready(const char *status);

/* RELOADING=1 with MONOTONIC_USEC= (systemd.service(5) Type=notify-reload protocol); follow it
 * with service_ready() when the reload is done, whether it was applied or refused. */
void service_reloading(void);

/* STOPPING=1: the drain has started. */
void service_stopping(void);

/* When systemd asked for a watchdog (WatchdogSec=, sd_watchdog_enabled(3)), adds a persistent
 * timer to `base` that sends WATCHDOG=1 at half the interval. Returns the timer (free it with
 * event_free before the base), or NULL when no watchdog is wanted or on ENOMEM. */
struct event *service_watchdog_start(struct event_base *base);

#endif
