/*
 * cluster_view.h — statistics and capture across the nodes of a cluster (issue 13), so that
 * GET /api/v1/stats (JSON, CSV, the console) and GET /api/v1/capture (held or live) asked of
 * any node cover every node. Only with a `cluster` configuration section (hub.c creates it next
 * to cluster.h's link and shares its NATS connection); the data plane is untouched: the relay
 * still counts into its per-worker metrics and taps captures exactly as on a single node.
 *
 * Statistics: after each flush of its own rows to its LMDB (hub.c, about once a second while
 * there is traffic) a node publishes them, asynchronously, to a JetStream stream of their own
 * (`cluster.stream` + "_STATS", subjects PREFIX.stats.NODE, the table stream's replicas, kept
 * relay.stats_retention_days). Every node applies the other nodes' rows to its own statistics
 * buckets (rp_stats_add_marked: the stream sequence in the same LMDB transaction, so a crash
 * never adds a batch twice), in stream order. A query is then a local query, with its paging,
 * formats and member scoping unchanged. A node's own rows of its current run are skipped (they
 * are local already); a node started with an empty database adds every node's rows the stream
 * still holds, its own earlier runs' included.
 *
 * Which nodes a query covers: each node announces itself every second on PREFIX.alive.NODE
 * (core NATS); a node heard from (announce or statistics) and silent for more than
 * CLUSTER_VIEW_MISSING_MS is *missing*: its rows since it fell silent are not in the answer
 * (those it published before are). cluster_view_nodes() lists both sets for the answer.
 *
 * Capture: a capture started on a node (capture.h) announces itself every second on
 * PREFIX.capture.want (core NATS: node, capture ID, filter, ring size); every other node runs a
 * capture of its own with the same filter for it (at most CAPTURE_MAX_ACTIVE in all, dropped
 * 3 s after the last announce) and sends what it caught every 200 ms to
 * PREFIX.capture.ev.NODE; the asking node adds them to its capture (capture_inject), tagged with
 * the relaying node. Nothing is persisted; events of a node that is missing are missing.
 *
 * Threads: one thread of this module (stream set-up, announces, relayed captures), NATS
 * callbacks (stream rows, announces, events); the functions below from any thread.
 */
#ifndef RH_CLUSTER_VIEW_H
#define RH_CLUSTER_VIEW_H

#include "capture.h"
#include "cluster.h"
#include "config.h"
#include "metrics.h"
#include "rh_err.h"
#include "rp.h"

#include <stddef.h>
#include <stdint.h>

#define CLUSTER_VIEW_MISSING_MS 3000 /* silent this long: the node is missing from answers */
#define CLUSTER_VIEW_NODES 256       /* node IDs 1..255 (hub_txid.h node bits) */

typedef struct cluster_view cluster_view_t;

/* Starts the view on the cluster link's NATS connection (c, cfg, db and metrics — where its
 * events are counted, thread-safe metrics_event — must outlive it).
 * Errors: RH_ENOMEM. *out is the caller's, released with cluster_view_free(). */
int cluster_view_start(cluster_t *c, const rh_config_t *cfg, rp_db_t *db, metrics_t *metrics,
                       cluster_view_t **out, rh_diag_t *diag);

/* Stops its thread and publishes the last statistics flush (when connected): call while the
 * connection is open, before cluster_close. Idempotent; NULL is a no-op. */
void cluster_view_stop(cluster_view_t *v);

/* cluster_view_stop, then ends its subscriptions (every relayed capture stopped), destroys its
 * JetStream context and frees. Call after cluster_close (a JetStream subscription destroyed
 * while the client may still reset its ordered consumer, on a reconnection, is not safe) and
 * before cluster_free. NULL is a no-op. */
void cluster_view_free(cluster_view_t *v);

/* Publishes this node's statistics rows just added to its LMDB (hub.c's flush, main loop):
 * never blocks: the batch is packed and queued, and the view's thread publishes it (JetStream,
 * one message ID per batch, retried until stored); when NATS is away so long that PUB_QUEUE
 * batches wait, the oldest is not shared and counted in
 * roamhub_events_total{event="cluster_stats_not_shared"}. */
void cluster_view_publish_stats(cluster_view_t *v, const rp_stats_item_t *items, size_t n);

typedef struct cluster_nodes {
    unsigned reporting[CLUSTER_VIEW_NODES]; /* node IDs heard from lately, this one included */
    size_t n_reporting;
    unsigned missing[CLUSTER_VIEW_NODES];   /* heard from once, silent > CLUSTER_VIEW_MISSING_MS */
    size_t n_missing;
} cluster_nodes_t;

/* Which nodes a statistics or capture answer covers now (ascending node IDs). */
void cluster_view_nodes(cluster_view_t *v, cluster_nodes_t *out);

/* A capture started on this node (capture_start) gets the other nodes' events until
 * cluster_view_capture_close; call that before capture_stop. Errors: RH_EAGAIN (too many). */
int cluster_view_capture_open(cluster_view_t *v, capture_t *cap);
void cluster_view_capture_close(cluster_view_t *v, capture_t *cap);

/* The cluster view of /metrics: fn(arg) renders this node's metrics text (malloc'd, NULL on
 * ENOMEM; called from a NATS thread when another node asks, so it must be thread-safe). Set it
 * once, before any node can ask (hub.c, right after cluster_view_start). */
typedef char *(*cluster_metrics_fn)(void *arg);
void cluster_view_set_metrics(cluster_view_t *v, cluster_metrics_fn fn, void *arg);

/* Asks every node for its metrics text (core NATS request to PREFIX.metrics, answers gathered
 * until every node reporting now answered or timeout_ms passed) and merges them with this
 * node's (metrics_text_merge: label node="N"), followed by roamhub_cluster_node_up{node} — 1
 * for the nodes in the text, 0 for those missing or not answering in time. Blocks up to
 * timeout_ms: call it off the event loops (admin_cluster_metrics.c uses the offload thread).
 * *out malloc'd (caller frees). Errors: RH_ENOMEM. A NATS failure is no error: the answer then
 * holds this node alone and says the others are down. */
int cluster_view_metrics(cluster_view_t *v, unsigned timeout_ms, char **out, rh_diag_t *diag);

#endif
