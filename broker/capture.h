/*
 * capture.h — the relay's live-capture tap: bounded captures of TS002 traffic metadata for the
 * admin API (GET /api/v1/capture).
 *
 * The relay calls capture_tap() next to each metrics_count() (every terminal outcome of a
 * message). With no capture active that is one relaxed atomic load. With captures active the
 * event is copied into the ring of every capture whose filter matches (operator: everything; a
 * member: events whose forwarder or home NetID is its own), each ring protected by its own
 * mutex and bounded: when full the event is dropped and counted, never blocking a worker.
 *
 * What an event holds: time, worker, forwarder/home NetID, message type, TransactionID, class,
 * outcome, ResultCode, latency and the sender member ID. Never tokens, keys, Authorization values
 * or PHYPayload bytes — the tap does not even receive them.
 *
 * Threads: capture_tap from any worker; capture_start/stop/take from any thread, each capture
 * used by one owner (the main thread, or cluster_view.c's thread for the captures it relays). There is one
 * capture set per process (roamhubd runs one hub).
 */
#ifndef RH_CAPTURE_H
#define RH_CAPTURE_H

#include "bi_types.h"
#include "rp.h"

#include <stdatomic.h>
#include <stdint.h>

#define CAPTURE_MAX_ACTIVE 16      /* concurrent captures in the process */
#define CAPTURE_MAX_EVENTS 100000  /* ring size limit per capture */

typedef struct capture_event {
    int64_t time_ms;               /* real time, Unix ms */
    unsigned worker;
    uint32_t fwd_net_id, home_net_id;
    bi_msg_type_t msg_type;
    uint32_t transaction_id;
    rp_class_t cls;
    rp_outcome_t outcome;
    char result_code[RP_RESULT_MAX + 1]; /* "" when none */
    uint64_t latency_us;           /* receive -> outcome; 0 when unknown */
    char sender[RP_ID_MAX + 1];    /* sender member ID, "" when unknown */
    unsigned node;                 /* cluster: cluster.node_id of the node that relayed it
                                      (capture_inject); 0 = this process */
} capture_event_t;

typedef struct capture capture_t;

extern atomic_int capture_nactive;

/* Slow path of capture_tap (only when a capture is active). */
void capture_emit(unsigned worker, uint32_t fwd, uint32_t home, bi_msg_type_t msg_type,
                  uint32_t txid, rp_class_t cls, rp_outcome_t outcome, const char *result_code,
                  uint64_t recv_ns, const char *sender);

/* Records one terminal outcome. msg_type/txid: the request's MessageType (BI_MT_UNKNOWN when
 * unknown) and the sender's TransactionID (0 when unknown); result_code: the ResultCode name or NULL; recv_ns: rh_mono_ns() when the request was
 * complete (0 = unknown); sender: member ID or NULL. Cheap when no capture is active. */
static inline void capture_tap(unsigned worker, uint32_t fwd, uint32_t home,
                               bi_msg_type_t msg_type, uint32_t txid, rp_class_t cls,
                               rp_outcome_t outcome, const char *result_code, uint64_t recv_ns,
                               const char *sender)
{
    if (atomic_load_explicit(&capture_nactive, memory_order_relaxed) > 0)
        capture_emit(worker, fwd, home, msg_type, txid, cls, outcome, result_code, recv_ns,
                     sender);
}

/* Starts a capture. all = 1: every event (operator); else only events whose forwarder or home
 * NetID is net_id. max_events: ring size (1..CAPTURE_MAX_EVENTS). Errors: RH_EAGAIN (too many
 * active captures), RH_EINVAL, RH_ENOMEM. Main thread. */
int capture_start(int all, uint32_t net_id, unsigned max_events, capture_t **out);

/* Moves up to `cap` buffered events into out[] (oldest first); returns how many. Main thread. */
size_t capture_take(capture_t *c, capture_event_t *out, size_t cap);

/* Adds events another cluster node relayed (cluster_view.h) to the capture, as if tapped here:
 * only those its filter admits (operator: all; member: forwarder or home NetID its own — the
 * sending node filtered already, this holds it); when the ring is full the rest are dropped and
 * counted, plus `dropped_elsewhere` (events the other node dropped). Any thread. */
void capture_inject(capture_t *c, const capture_event_t *ev, size_t n, uint64_t dropped_elsewhere);

/* The capture's filter and ring size (what capture_start was given). */
void capture_filter(const capture_t *c, int *all, uint32_t *net_id);
unsigned capture_capacity(const capture_t *c);

/* Events dropped because the ring was full. */
uint64_t capture_dropped(const capture_t *c);

/* Stops and frees the capture (no event is added after this returns). NULL is a no-op. */
void capture_stop(capture_t *c);

#endif
