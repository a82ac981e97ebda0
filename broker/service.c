/* service.c — sd_notify(3) readiness, reload, stop and watchdog messages (see service.h). */
#include "service.h"

#include "rh_log.h"
#include "rh_time.h"

#include <stdint.h>
#include <systemd/sd-daemon.h>

void service_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status ? status : "running");
}

void service_reloading(void)
{
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)rh_mono_ns() / 1000ull);
}

void service_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
}

static void watchdog_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    (void)arg;
    sd_notify(0, "WATCHDOG=1");
}

struct event *service_watchdog_start(struct event_base *base)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return NULL;
    struct event *ev = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
    if (!ev)
        return NULL;
    uint64_t half = usec / 2;
    struct timeval tv = {(time_t)(half / 1000000u), (suseconds_t)(half % 1000000u)};
    event_add(ev, &tv);
    sd_notify(0, "WATCHDOG=1");
    RH_LOG(RH_LOG_INFO, "hub", "systemd watchdog interval_ms=%llu",
           (unsigned long long)(usec / 1000u));
    return ev;
}
