/*
 * rh_deadlines.h — many deadlines of one duration on one libevent timer (issue #15).
 *
 * Items that all wait the same time (a peer pool's request timeout, the relay's answer deadline
 * for one receiver timeout) expire in the order they were added, so they form a FIFO: adding or
 * removing one is a list operation, and a single timer, armed lazily at the head's deadline,
 * serves them all. The timer firing early (its head was removed) re-arms for the new head.
 * Before: an event_add and an event_del (or an event_new and event_free) per item.
 *
 * Intrusive: the owner embeds an rh_deadline_t in each item and gets it back in `expire`. Times
 * are monotonic milliseconds (rh_mono_ms). One thread: the event base's.
 */
#ifndef RH_DEADLINES_H
#define RH_DEADLINES_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rh_deadline {
    struct rh_deadline *prev, *next;
    uint64_t at_ms; /* monotonic ms */
    bool on;        /* on a list */
} rh_deadline_t;

typedef struct rh_deadlines rh_deadlines_t;

/* Called from the timer for each item whose deadline passed, oldest first, already off the list
 * (the callback may free it, add items — they wait for the next firing — or remove others). */
typedef void (*rh_deadline_fn)(rh_deadline_t *d, void *arg);

struct rh_deadlines {
    rh_deadline_t *head, *tail;
    struct event *timer;
    bool armed, firing;
    rh_deadline_fn expire;
    void *arg;
};

/* Initialises l on base. Errors: RH_ENOMEM (the timer event). */
int rh_deadlines_init(rh_deadlines_t *l, struct event_base *base, rh_deadline_fn expire, void *arg);

/* Frees the timer; items still on the list are left as they are (their owner frees them). */
void rh_deadlines_fini(rh_deadlines_t *l);

/* Adds d (not on a list), expiring at at_ms. False (d not added) when at_ms is earlier than the
 * last item's: the FIFO would be out of order; the caller times d some other way. */
bool rh_deadlines_add(rh_deadlines_t *l, rh_deadline_t *d, uint64_t at_ms);

/* Takes d off l; a no-op when d is on no list. */
void rh_deadlines_remove(rh_deadlines_t *l, rh_deadline_t *d);

#endif
