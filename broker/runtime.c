/* runtime.c — process-wide set-up: file descriptor budget, libevent log routing (see runtime.h). */
#include "runtime.h"

#include "rh_log.h"

#include <event2/event.h>
#include <sys/resource.h>

#define NOFILE_CAP 1048576u

uint64_t rt_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > NOFILE_CAP ? NOFILE_CAP
                                                                           : rl.rlim_max;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > NOFILE_CAP ? NOFILE_CAP : rl.rlim_cur;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return old;
    return want;
}

rt_fd_budget_t rt_fd_budget(uint64_t nofile, unsigned workers, unsigned ts002_max,
                            unsigned admin_max)
{
    rt_fd_budget_t b = {.nofile = nofile, .ts002_max = ts002_max, .admin_max = admin_max};
    uint64_t quarter = nofile / 4 > 32 ? nofile / 4 : 32;
    uint64_t want = 64 + 8 * (uint64_t)workers + quarter;
    uint64_t reserve = want < nofile / 2 ? want : nofile / 2;
    b.reserve = (unsigned)reserve;
    uint64_t inbound = nofile - reserve;
    if ((uint64_t)ts002_max + admin_max <= inbound)
        return b;
    uint64_t admin = inbound / 8 > 4 ? inbound / 8 : 4;
    if (admin > admin_max)
        admin = admin_max;
    uint64_t ts = inbound > admin ? inbound - admin : 1;
    if (ts > ts002_max)
        ts = ts002_max;
    b.admin_max = admin ? (unsigned)admin : 1;
    b.ts002_max = ts ? (unsigned)ts : 1;
    b.clamped = 1;
    return b;
}

static void libevent_log_cb(int severity, const char *msg)
{
    int level = severity >= EVENT_LOG_ERR    ? RH_LOG_ERR
                : severity == EVENT_LOG_WARN ? RH_LOG_WARN
                : severity == EVENT_LOG_MSG  ? RH_LOG_INFO
                                             : RH_LOG_DEBUG;
    RH_LOG(level, "libevent", "libevent message text=%s", msg ? msg : "");
}

void rt_route_libevent_log(void) { event_set_log_callback(libevent_log_cb); }

static void log_flush_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    (void)arg;
    rh_log_flush_suppressed(0);
}

struct event *rt_log_flush_timer_new(struct event_base *base)
{
    struct event *e = event_new(base, -1, EV_PERSIST, log_flush_cb, NULL);
    struct timeval tv = {1, 0};
    if (e)
        event_add(e, &tv);
    return e;
}
