/* rh_deadlines.c — see rh_deadlines.h. */
#include "rh_deadlines.h"

#include "rh_dlist.h"
#include "rh_err.h"
#include "rh_time.h"

#include <stddef.h>
#include <sys/time.h>

static void arm(rh_deadlines_t *l, uint64_t at_ms)
{
    uint64_t now = rh_mono_ms(), d = at_ms > now ? at_ms - now : 0;
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
    evtimer_add(l->timer, &tv);
    l->armed = true;
}

static void fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rh_deadlines_t *l = arg;
    l->armed = false;
    l->firing = true;
    uint64_t now = rh_mono_ms();
    while (l->head && l->head->at_ms <= now) {
        rh_deadline_t *d = l->head;
        rh_deadlines_remove(l, d);
        l->expire(d, l->arg);
    }
    l->firing = false; /* (nothing armed the timer meanwhile: rh_deadlines_add waits for this) */
    if (l->head)
        arm(l, l->head->at_ms);
}

int rh_deadlines_init(rh_deadlines_t *l, struct event_base *base, rh_deadline_fn expire, void *arg)
{
    *l = (rh_deadlines_t){.expire = expire, .arg = arg};
    l->timer = evtimer_new(base, fire, l);
    return l->timer ? RH_OK : RH_ENOMEM;
}

void rh_deadlines_fini(rh_deadlines_t *l)
{
    if (l->timer)
        event_free(l->timer);
    l->timer = NULL;
    l->head = l->tail = NULL;
}

bool rh_deadlines_add(rh_deadlines_t *l, rh_deadline_t *d, uint64_t at_ms)
{
    if (l->tail && at_ms < l->tail->at_ms)
        return false;
    d->at_ms = at_ms;
    RH_QUEUE_APPEND(l->head, l->tail, d, prev, next);
    d->on = true;
    if (!l->armed && !l->firing) /* (firing: re-armed for the head once the expired are done) */
        arm(l, at_ms);
    return true;
}

void rh_deadlines_remove(rh_deadlines_t *l, rh_deadline_t *d)
{
    if (!d->on)
        return;
    RH_QUEUE_UNLINK(l->head, l->tail, d, prev, next);
    d->on = false;
}
