/*
 * metrics.h — relay counters and latency histograms, kept per worker thread and read by the
 * /metrics endpoint and the statistics flusher.
 *
 * A cell is one (forwarder NetID or JoinEUI, home NetID, message class, outcome, ResultCode) tuple; it holds
 * a lifetime total (Prometheus counters never go down) and a delta since the last flush to the
 * routing-policy statistics buckets (rp_stats_add, per minute). Two latency histograms per
 * worker: receive -> forward (hub processing) and forward -> answer (receiver), log2 µs buckets
 * as rp_stats_hist_index. Each worker's metrics has its own mutex: the worker takes it per
 * message (uncontended), the readers briefly once per scrape/flush.
 */
#ifndef RH_METRICS_H
#define RH_METRICS_H

#include "rp.h"

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics_t;

/* NULL on allocation failure. */
metrics_t *metrics_new(void);
void metrics_free(metrics_t *m);

/* Counts one message. fwd_kind/fwd: the forwarder's identity, a NetID (24 bits) or a JoinEUI
 * (64 bits, a Join Server or a sender claiming one), never truncated. result_code: the
 * receiver's TS002 ResultCode for RP_OUT_RECEIVER_ERROR (<= 32 chars), else NULL. total_us:
 * receive -> answer sent back (or decision), µs. */
void metrics_count(metrics_t *m, rp_stats_id_kind_t fwd_kind, uint64_t fwd, uint32_t home_net_id,
                   rp_class_t cls, rp_outcome_t outcome, const char *result_code,
                   uint64_t total_us);

/* Hub processing time (receive -> forward) and receiver time (forward -> answer), µs. */
void metrics_observe_forward(metrics_t *m, uint64_t us);
void metrics_observe_answer(metrics_t *m, uint64_t us);

/* Counts an event by name (e.g. "unmatched_answer", "sender_refused", "rate_limited"). The name
 * must be a static string literal. */
void metrics_event(metrics_t *m, const char *name);

/* Appends the Prometheus text exposition of all workers' metrics (summed) to a malloc'd string;
 * extra (may be NULL) is appended verbatim (gauges the caller owns). Returns NULL on ENOMEM;
 * caller frees. */
char *metrics_render(metrics_t *const *all, size_t n, const char *extra);

/* Moves every cell's delta into items (malloc'd array, caller frees) stamped with `minute`,
 * and zeroes the deltas. *n = 0 and *items = NULL when nothing happened. Errors: RH_ENOMEM
 * (deltas kept). The items' result_code strings live until the next metrics_take_deltas. */
int metrics_take_deltas(metrics_t *m, int64_t minute, rp_stats_item_t **items, size_t *n);

/* Puts items back (after a failed rp_stats_add), so nothing counted is lost. */
void metrics_restore_deltas(metrics_t *m, const rp_stats_item_t *items, size_t n);

#endif
