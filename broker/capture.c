/* capture.c — bounded live-capture rings fed by the relay (see capture.h).
 * Invariants: `slots` is read by workers under the read lock and changed under the write lock
 * (main thread only); each capture's ring is changed under its own mutex; capture_nactive equals
 * the number of occupied slots. */
#include "capture.h"

#include "rh_time.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct capture {
    int all;
    uint32_t net_id;
    pthread_mutex_t mu;
    capture_event_t *ring;
    size_t cap, head, n;
    uint64_t dropped;
};

atomic_int capture_nactive;
static pthread_rwlock_t slots_lock = PTHREAD_RWLOCK_INITIALIZER;
static capture_t *slots[CAPTURE_MAX_ACTIVE];

void capture_emit(unsigned worker, uint32_t fwd, uint32_t home, bi_msg_type_t msg_type,
                  uint32_t txid, rp_class_t cls, rp_outcome_t outcome, const char *result_code,
                  uint64_t recv_ns, const char *sender)
{
    capture_event_t ev;
    int have = 0;
    pthread_rwlock_rdlock(&slots_lock);
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++) {
        capture_t *c = slots[i];
        if (!c || !(c->all || c->net_id == fwd || c->net_id == home))
            continue;
        if (!have) {
            memset(&ev, 0, sizeof ev);
            ev.time_ms = rh_real_ms();
            ev.worker = worker;
            ev.fwd_net_id = fwd;
            ev.home_net_id = home;
            ev.msg_type = msg_type;
            ev.transaction_id = txid;
            ev.cls = cls;
            ev.outcome = outcome;
            snprintf(ev.result_code, sizeof ev.result_code, "%s", result_code ? result_code : "");
            ev.latency_us = recv_ns ? (rh_mono_ns() - recv_ns) / 1000u : 0;
            snprintf(ev.sender, sizeof ev.sender, "%s", sender ? sender : "");
            have = 1;
        }
        pthread_mutex_lock(&c->mu);
        if (c->n == c->cap) {
            c->dropped++;
        } else {
            c->ring[(c->head + c->n) % c->cap] = ev;
            c->n++;
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_rwlock_unlock(&slots_lock);
}

int capture_start(int all, uint32_t net_id, unsigned max_events, capture_t **out)
{
    *out = NULL;
    if (max_events == 0 || max_events > CAPTURE_MAX_EVENTS)
        return RH_EINVAL;
    capture_t *c = calloc(1, sizeof *c);
    if (!c)
        return RH_ENOMEM;
    c->ring = calloc(max_events, sizeof *c->ring);
    if (!c->ring) {
        free(c);
        return RH_ENOMEM;
    }
    c->cap = max_events;
    c->all = all;
    c->net_id = net_id;
    pthread_mutex_init(&c->mu, NULL);
    int rc = RH_EAGAIN;
    pthread_rwlock_wrlock(&slots_lock);
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++) {
        if (!slots[i]) {
            slots[i] = c;
            atomic_fetch_add(&capture_nactive, 1);
            rc = RH_OK;
            break;
        }
    }
    pthread_rwlock_unlock(&slots_lock);
    if (rc) {
        pthread_mutex_destroy(&c->mu);
        free(c->ring);
        free(c);
        return rc;
    }
    *out = c;
    return RH_OK;
}

size_t capture_take(capture_t *c, capture_event_t *out, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    size_t k = c->n < cap ? c->n : cap;
    for (size_t i = 0; i < k; i++)
        out[i] = c->ring[(c->head + i) % c->cap];
    c->head = (c->head + k) % c->cap;
    c->n -= k;
    pthread_mutex_unlock(&c->mu);
    return k;
}

void capture_inject(capture_t *c, const capture_event_t *ev, size_t n, uint64_t dropped_elsewhere)
{
    pthread_mutex_lock(&c->mu);
    c->dropped += dropped_elsewhere;
    for (size_t i = 0; i < n; i++) {
        if (!(c->all || c->net_id == ev[i].fwd_net_id || c->net_id == ev[i].home_net_id))
            continue;
        if (c->n == c->cap) {
            c->dropped++;
            continue;
        }
        c->ring[(c->head + c->n) % c->cap] = ev[i];
        c->n++;
    }
    pthread_mutex_unlock(&c->mu);
}

void capture_filter(const capture_t *c, int *all, uint32_t *net_id)
{
    *all = c->all;
    *net_id = c->net_id;
}

unsigned capture_capacity(const capture_t *c) { return (unsigned)c->cap; }

uint64_t capture_dropped(const capture_t *c)
{
    pthread_mutex_lock((pthread_mutex_t *)&c->mu);
    uint64_t d = c->dropped;
    pthread_mutex_unlock((pthread_mutex_t *)&c->mu);
    return d;
}

void capture_stop(capture_t *c)
{
    if (!c)
        return;
    pthread_rwlock_wrlock(&slots_lock);
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++) {
        if (slots[i] == c) {
            slots[i] = NULL;
            atomic_fetch_sub(&capture_nactive, 1);
        }
    }
    pthread_rwlock_unlock(&slots_lock);
    pthread_mutex_destroy(&c->mu);
    free(c->ring);
    free(c);
}
