/*
 * runtime.h — process-wide set-up of roamhubd that no single component owns: the file descriptor
 * budget (RLIMIT_NOFILE, connection caps that fit it) and routing libevent's messages into rh_log.
 * Called once from hub_run before any listener exists. Linux/POSIX; no allocation.
 */
#ifndef RH_RUNTIME_H
#define RH_RUNTIME_H

#include <stdint.h>

/* Raises the soft RLIMIT_NOFILE to the hard limit (at most 1048576) and returns the soft limit in
 * effect afterwards (unchanged when raising fails; RLIM_INFINITY is reported as 1048576). */
uint64_t rt_raise_nofile(void);

typedef struct rt_fd_budget {
    uint64_t nofile;     /* the soft limit the budget is made for */
    unsigned reserve;    /* descriptors kept for outbound connections, LMDB, event loops, files */
    unsigned ts002_max;  /* connection caps after clamping (inputs when unchanged) */
    unsigned admin_max;
    int clamped;         /* 1 when either cap was lowered */
} rt_fd_budget_t;

/* The budget for `nofile` descriptors and `workers` threads, given the configured caps:
 *   reserve = min(nofile / 2, 64 + 8 * workers + max(nofile / 4, 32));
 *   inbound = nofile - reserve;
 *   if ts002_max + admin_max > inbound: admin gets min(admin_max, max(inbound / 8, 4)) and the
 *   TS002 listener min(ts002_max, inbound - admin share) (at least 1 each).
 * Pure; documented in docs/CONFIG.md "File descriptors". */
rt_fd_budget_t rt_fd_budget(uint64_t nofile, unsigned workers, unsigned ts002_max,
                            unsigned admin_max);

/* Routes libevent's log messages into rh_log (sub=libevent; its debug/msg/warn/err severities to
 * debug/info/warn/err), so they are formatted, filtered and rate-limited like every other line.
 * The callback calls no libevent function. Process-wide; call before creating event bases. */
void rt_route_libevent_log(void);

/* A persistent timer on `base` that calls rh_log_flush_suppressed(0) every second, so the
 * "log lines suppressed" reports appear when their window ends even if the call site stays quiet.
 * Returns the event (the caller event_free()s it) or NULL when out of memory. */
struct event_base;
struct event *rt_log_flush_timer_new(struct event_base *base);

#endif
