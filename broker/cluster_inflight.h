/*
 * cluster_inflight.h — a dead node's in-flight transactions fail at their deadlines (issue 13,
 * docs/SCALING.md "Faults"): another node answers their senders with the failure the holder
 * would have answered, never silence.
 *
 * Which transactions: those whose sender is answered asynchronously (TS002 async answers: the
 * answer is a later POST of the hub to the sender's own endpoint, which any node can send) and
 * that wait for an answer (relay_hooks_t). A sync sender needs nothing: its HTTP connection to
 * the dead node broke, it sees the loss at once and may re-send to another node. A Packet Broker
 * party's Publish was answered on acceptance and Packet Broker owes a forwarder no uplink
 * delivery state; its gRPC streams to the dead node reset and its agent reconnects (to another
 * node through the load balancer) — nothing is published for those.
 *
 * The holder: the relay tells the hooks (cluster_inflight_hooks) when such a transaction is on
 * its way (sender member, SenderID, the ReceiverID it named, its TransactionID, the request and
 * answer types, the failure ResultCode, the deadline as Unix ms: no payload, no keys) and when
 * it ended. The records are queued (at most CLUSTER_INFLIGHT_QUEUE; beyond, counted
 * `inflight_not_published`, as is a batch NATS did not take) and this module's thread publishes
 * them in batches (proto InflightBatch, core NATS, PREFIX.inflight.NODE) at most
 * CLUSTER_INFLIGHT_FLUSH_MS after the first one, and an empty batch every second as a
 * heartbeat: each batch carries the holder's run ID (random at start). A transaction that ends while its start is still queued (a receiver
 * answering within the batch window) is not published at all.
 *
 * The other nodes keep the records of each holder in a table (cluster_inflight_table_t: at most
 * CLUSTER_INFLIGHT_MAX per holder node, the oldest dropped beyond, counted `inflight_dropped`;
 * an entry whose end never came is forgotten CLUSTER_INFLIGHT_GRACE_MS after its deadline).
 * Entries are *orphans* when their holder is missing (cluster_view.h presence: silent for
 * CLUSTER_VIEW_MISSING_MS) or announced another run (restarted). The lowest-numbered node
 * reporting, other than the holder, answers each orphan at its deadline (at once when the
 * deadline passed before the holder was seen missing): it posts the job to one of its workers,
 * which sends the sender the failure answer through its own async-answer path
 * (cluster_inflight_answer_fn: the sender's configured endpoint, its TLS and credentials) and
 * counts `inflight_failed_for_node` (or `inflight_sender_unknown` when the member or its
 * endpoint is gone from the table).
 *
 * Limits (docs/SCALING.md): a transaction started less than CLUSTER_INFLIGHT_FLUSH_MS before the
 * holder died may not have been published (its sender gets nothing); a holder cut off from NATS
 * (not dead) for more than CLUSTER_VIEW_MISSING_MS still answers its senders itself, so a sender
 * may then get two answers for one TransactionID (the second is unmatched at the sender); the
 * deadline is compared across the nodes' clocks (NTP).
 *
 * Threads: the hooks run on the workers' threads (a short mutex-protected copy); one thread of
 * this module (batches, heartbeats, orphans); the NATS subscription's callback (the table, under
 * its mutex); the answers on the workers.
 */
#ifndef RH_CLUSTER_INFLIGHT_H
#define RH_CLUSTER_INFLIGHT_H

#include "cluster.h"
#include "cluster_view.h"
#include "relay.h"
#include "rh_id.h"
#include "worker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_INFLIGHT_MAX 65536      /* entries kept per holder node (~250 bytes each: 16 MB) */
#define CLUSTER_INFLIGHT_QUEUE 8192     /* records waiting for the publisher (holder side) */
#define CLUSTER_INFLIGHT_FLUSH_MS 10    /* a batch leaves at most this long after its first */
#define CLUSTER_INFLIGHT_GRACE_MS 30000 /* an entry without its end: forgotten this long after
                                           its deadline */

/* One in-flight transaction as another node keeps it (relay_inflight_t with its strings). */
typedef struct cluster_inflight_rec {
    unsigned node;        /* the holder's cluster.node_id */
    uint64_t run;         /* the holder's run */
    relay_inflight_t i;   /* i.sender points at sender[] */
    char sender[RH_ID_MAX + 1];
} cluster_inflight_rec_t;

/* ---- the table (pure: no threads, no NATS; unit-tested) ------------------------------------- */

typedef struct cluster_inflight_table cluster_inflight_table_t;

/* A table keeping at most cap entries per holder node (cap >= 1). NULL on ENOMEM. */
cluster_inflight_table_t *cluster_inflight_table_new(size_t cap);
void cluster_inflight_table_free(cluster_inflight_table_t *t);

/* Holder `node` (1..255) announced run `run`: the entries of its other runs become orphans.
 * Returns true when the run changed (a restart seen). */
bool cluster_inflight_table_run(cluster_inflight_table_t *t, unsigned node, uint64_t run);

/* Adds r (copied; r->node, r->run set) in start order. Returns 1 when the holder's oldest entry
 * was dropped to make room (the cap), 0 otherwise; RH_ENOMEM (< 0). */
int cluster_inflight_table_put(cluster_inflight_table_t *t, const cluster_inflight_rec_t *r);

/* The transaction (hub_txid, sender_txid) of holder `node` ended: its entry goes. Returns true
 * when it was there. */
bool cluster_inflight_table_end(cluster_inflight_table_t *t, unsigned node, uint32_t hub_txid,
                                uint32_t sender_txid);

/* Whether holder `node`'s orphans are this node's to answer (lowest reporting node other than
 * the holder) and whether it is missing: the caller's view of the cluster. */
typedef struct cluster_inflight_who {
    bool missing[CLUSTER_VIEW_NODES]; /* holder silent (cluster_view_nodes) */
    bool mine[CLUSTER_VIEW_NODES];    /* this node answers that holder's orphans */
} cluster_inflight_who_t;

/* Takes the orphans due at now_ms (Unix ms; deadline <= now) that are this node's to answer into
 * out[0..max) and returns how many; forgets entries CLUSTER_INFLIGHT_GRACE_MS past their
 * deadline (*forgotten += how many, may be NULL). */
size_t cluster_inflight_table_due(cluster_inflight_table_t *t, int64_t now_ms,
                                  const cluster_inflight_who_t *who, cluster_inflight_rec_t *out,
                                  size_t max, uint64_t *forgotten);

/* Entries held for `node` (0: all nodes). */
size_t cluster_inflight_table_count(const cluster_inflight_table_t *t, unsigned node);

/* ---- the cluster module ---------------------------------------------------------------------- */

typedef struct cluster_inflight cluster_inflight_t;

/* Answers the sender of orphan i with i->fail_code and description, on worker w (its thread),
 * through the relay's async-answer path (relay_ts002_answer_orphan). Returns RH_OK when the
 * answer is on its way, RH_ENOTFOUND when the member or its endpoint is gone, RH_ENOMEM. */
typedef int (*cluster_inflight_answer_fn)(worker_t *w, const relay_inflight_t *i,
                                          const char *description);

/* Subscribes PREFIX.inflight.* on the cluster's NATS connection and starts this module's thread.
 * view gives presence; workers[0..n) take the answers (round robin) and count the events; all
 * must outlive the object. Set every worker's relay_hooks to cluster_inflight_hooks() before
 * their threads start. Errors: RH_ENOMEM; RH_EIO (NATS refused the subscription, diag says
 * why). *out is the caller's, released with cluster_inflight_free. */
int cluster_inflight_start(cluster_t *c, const rh_config_t *cfg, cluster_view_t *view,
                           worker_t *workers, unsigned n, cluster_inflight_answer_fn answer,
                           cluster_inflight_t **out, rh_diag_t *diag);

/* The relay hooks publishing this node's async transactions (valid until cluster_inflight_free). */
const relay_hooks_t *cluster_inflight_hooks(cluster_inflight_t *x);

/* Publishes what is queued (when connected), stops the thread and the subscription, frees. Call
 * after the workers' threads stopped and their relay_hooks were cleared (the transactions failed
 * at shutdown are not published as ended: the other nodes answer them at their deadlines), and
 * before cluster_view_free and cluster_free. NULL is a no-op. */
void cluster_inflight_free(cluster_inflight_t *x);

#endif
