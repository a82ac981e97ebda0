/*
 * metrics.h — relay counters and latency histograms, kept per worker thread and read by the
 * /metrics endpoint and the statistics flusher.
 *
 * A cell is one (forwarder NetID or JoinEUI, home NetID, the protocol each of them spoke, message
 * class, outcome, ResultCode) tuple; it holds
 * a lifetime total (Prometheus counters never go down) and a delta since the last flush to the
 * routing-policy statistics buckets (rp_stats_add, per minute). Two latency histograms per
 * worker: receive -> forward (hub processing) and forward -> answer (receiver), log2 µs buckets
 * as rp_stats_hist_index. Each worker's metrics has its own mutex: the worker takes it per
 * message (uncontended), the readers briefly once per scrape/flush.
 */
#ifndef RH_METRICS_H
#define RH_METRICS_H

#include "rp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics_t;

/* NULL on allocation failure. */
metrics_t *metrics_new(void);
void metrics_free(metrics_t *m);

/* Counts one message. fwd_kind/fwd: the forwarder's identity, a NetID (24 bits) or a JoinEUI
 * (64 bits, a Join Server or a sender claiming one), never truncated. fwd_proto/home_proto: the
 * protocol each side spoke (rp_protocol_t, rp.h says which side is which). result_code: the
 * receiver's TS002 ResultCode for RP_OUT_RECEIVER_ERROR (<= 32 chars), else NULL. total_us:
 * receive -> answer sent back (or decision), µs. */
void metrics_count(metrics_t *m, rp_stats_id_kind_t fwd_kind, uint64_t fwd, uint32_t home_net_id,
                   rp_protocol_t fwd_proto, rp_protocol_t home_proto, rp_class_t cls,
                   rp_outcome_t outcome, const char *result_code, uint64_t total_us);

/* The stages of roamhub_relay_latency_seconds{stage}. */
typedef enum metrics_stage {
    METRICS_FORWARD,   /* receive_to_forward: request parsed -> forwarded (monotonic clock) */
    METRICS_ANSWER,    /* forward_to_answer: forwarded -> receiver's answer parsed */
    METRICS_HUB_ADDED, /* hub_added (relay.hub_latency): request's arrival in the kernel ->
                          answer written, less forwarded -> answer's arrival in the kernel */
    METRICS_STAGES
} metrics_stage_t;

/* Counts one latency of `us` microseconds in `stage`'s histogram. */
void metrics_observe(metrics_t *m, metrics_stage_t stage, uint64_t us);

/* Counts an event by name (e.g. "unmatched_answer", "sender_refused", "rate_limited"). The name
 * must be a static string literal. */
void metrics_event(metrics_t *m, const char *name);

/* Hub-wide values /metrics shows beside the relay counters (the caller gathers them). */
typedef struct metrics_hub_gauges {
    size_t pending;            /* pending transactions (all workers) */
    size_t members, endpoints; /* in the current member registry */
    uint64_t uptime_s;         /* since the hub started */
    unsigned long relay_transactions; /* live relay transactions (all workers) */
    bool pb;                   /* the Packet Broker data plane runs (gRPC listener on): */
    size_t pb_groups, pb_streams, pb_queued, pb_queued_bytes; /* pb_router_stats */
} metrics_hub_gauges_t;

/* The Content-Type of metrics_render's text (Prometheus text format 0.0.4, UTF-8). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The Prometheus text exposition (format 0.0.4, checked by `promtool check metrics`) of all
 * workers' metrics (summed), the hub gauges `g` (may be NULL), roamhub_build_info{version} and
 * the process_* family (metrics_process.h). Every family has HELP and TYPE; label values are
 * never empty: `result` appears only for outcome receiver_error, `forwarder`/`home` only when the
 * hub identified that network (not for malformed, unauthorized or no_route);
 * roamhub_messages_total always has `forwarder_protocol` and `home_protocol` (ts002 or
 * packet_broker: at most 4 series per pair, class, outcome and result). Known series (every
 * event name, every class x outcome of roamhub_relay_outcomes_total) are present from the start,
 * at 0. Histogram bounds are the exact integer-µs bounds of rp_stats_hist_index, in seconds.
 * Returns a malloc'd string (caller frees) or NULL on ENOMEM. Any thread (the admin listener's;
 * on a cluster node also a NATS thread for /metrics/cluster): each worker's metrics are read under
 * its lock. */
char *metrics_render(metrics_t *const *all, size_t n, const metrics_hub_gauges_t *g);

/* The cluster view (GET /metrics/cluster): n texts in the format metrics_render writes (one per
 * cluster node, nodes[i] its cluster.node_id) as one valid text: each family's HELP and TYPE
 * once (the first text's), then every text's samples of it with the label node="N" added.
 * Comments other than HELP/TYPE are dropped. Returns a malloc'd string (caller frees) or NULL
 * on ENOMEM. Any thread. */
char *metrics_text_merge(const char *const *texts, const unsigned *nodes, size_t n);

/* Caps the forwarder x home label pairs of roamhub_messages_total (the family grows with the
 * square of the members): the first `max_pairs` pairs a scrape sees keep their labels for the
 * life of the process (so counters stay monotonic); later pairs are summed into
 * forwarder="other",home="other", and roamhub_metrics_pairs_folded reports how many pairs were
 * folded. 0 = no forwarder/home labels at all. Default 10000 (admin.metrics_max_peer_pairs,
 * docs/CONFIG.md). Safe from any thread; applies from the next scrape. */
void metrics_set_max_peer_pairs(size_t max_pairs);

/* Moves every cell's delta into items (malloc'd array, caller frees) stamped with `minute`,
 * and zeroes the deltas. *n = 0 and *items = NULL when nothing happened. Errors: RH_ENOMEM
 * (deltas kept). The items' result_code strings live until the next metrics_take_deltas. */
int metrics_take_deltas(metrics_t *m, int64_t minute, rp_stats_item_t **items, size_t *n);

/* Puts items back (after a failed rp_stats_add), so nothing counted is lost. */
void metrics_restore_deltas(metrics_t *m, const rp_stats_item_t *items, size_t n);

#endif
