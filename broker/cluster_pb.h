/*
 * cluster_pb.h — the Packet Broker data plane across cluster nodes (issue 13, "PB-API
 * subscriptions span the cluster"; issue 12's subscriptions and bridging): routed messages reach
 * the subscription groups of every node, and a Packet Broker member's answer to a bridged TS002
 * transaction reaches the node that holds it.
 *
 * Routed messages (pb_router.h, pb_router_set_cluster): NATS queue groups are the subscription
 * groups. A node with open streams of group G subscribes PREFIX.pb.<h|f>.<NetID> (h: home
 * networks' uplinks, f: forwarders' downlinks; NetID 6 hex digits) with the NATS queue name of
 * G (pb_router.c: "g" + FNV-1a 64 of role, NetID, tenant, cluster ID, group name); it leaves the
 * queue (drained) when its last stream of G closes. A message routed on any node goes to that
 * node's own groups of the party first (no NATS on the path: every such group is listed as
 * served), then — unless pb_item_meta_t.local_only — once onto the subject (PbRoutedHandoff,
 * roamhub.proto: both encodings, the filters' facts, the statistics' meta, the served groups).
 * NATS gives each queue group one copy, on one of its nodes (balanced by NATS), where
 * pb_router_deliver checks tenant and filters and queues it in the group's bounded queue: one
 * copy per group cluster-wide.
 *
 * Outcomes are counted where they are decided — the node that hands a copy to a stream, or
 * fails it (queue full, hold time): statistics cover every node (cluster_view.h), so nothing
 * flows back. A message for which no node subscribes the subject at all comes back as NATS "no
 * responders" on PREFIX.pb.none.NODE.<h|f>.<fwd>.<home>.<class>.<bridged>.<hub TransactionID>.
 * <answer type>.<served here>: the routing node counts the event pb_no_subscriber_in_cluster
 * and, for a message not part of a relay transaction, the pair's no_route outcome; a bridged
 * TS002 transaction (it waits on the routing node) is refused at once with the route's no-route
 * code, as a single node refuses it (pb_refused_no_subscriber) — unless a group of the routing
 * node holds a copy (then, as a copy that reaches no stream, it fails at its answer deadline).
 * Either way a TS002 sender gets its failure answer in time.
 * Bounds: each group subscription's NATS pending limits (PB_NATS_PENDING_MSGS messages,
 * PB_NATS_PENDING_BYTES bytes: beyond that the NATS client drops, a slow consumer), then the
 * group's queue_max / hold_ms. A group whose record still exists here without open streams
 * (closed less than hold_ms ago) keeps the copies routed by this node (held, then failed).
 *
 * Answers (issue 12 bridging, cluster_txn.h): the sealed BridgeToken's hub_txid and the 8-byte
 * downlink_token carry the hub TransactionID, whose node bits name the holder (hub_txid.h). The
 * receiving node hands a join-accept Publish, an uplink delivery report or a forwarder's
 * downlink delivery report for another node's transaction as a PbAnswerHandoff through
 * cluster_txn_handoff_pb (the same subject, reply and counters as TS002 answers); the holder's
 * cluster_pb_answer_from_node completes it as the receiving node would have.
 *
 * Threads: the router calls back on worker threads (group_up/down under its lock: nothing here
 * calls into the router then); NATS callbacks only post to workers.
 */
#ifndef RH_CLUSTER_PB_H
#define RH_CLUSTER_PB_H

#include "cluster.h"
#include "pb_router.h"
#include "worker.h"

#include "packetbroker/v3.pb-c.h"
#include "roamhub.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_NATS_PENDING_MSGS 4096
#define PB_NATS_PENDING_BYTES (16 * 1024 * 1024)

typedef struct cluster_pb cluster_pb_t;

/* Subscribes PREFIX.pb.none.NODE (cfg: the cluster section) and sets the router's cluster side.
 * workers[0..n) take the delivered copies (round robin); router and workers must outlive the
 * object. Call before the workers' threads start. Errors: RH_ENOMEM; RH_EIO when NATS refuses
 * the subscription (diag says why). *out: release with cluster_pb_free. */
int cluster_pb_start(cluster_t *c, const rh_config_t *cfg, worker_t *workers, unsigned n,
                     pb_router_t *router, cluster_pb_t **out, rh_diag_t *diag);

/* Clears the router's cluster side, drains every group subscription (waits for a callback
 * running) and frees. After the workers stopped, before cluster_free. NULL is a no-op. */
void cluster_pb_free(cluster_pb_t *x);

/* The holder's side of a handed answer (cluster_txn_match_pb_fn): msg/len a packed
 * PbAnswerHandoff. Returns true when a waiting transaction took it. Worker w's thread. */
bool cluster_pb_answer_from_node(worker_t *w, const uint8_t *msg, size_t len);

/* The receiving node's side: each hands the answer to the node its TransactionID names and
 * returns true, or returns false when that is this node (or no cluster, or NATS did not take it:
 * then the caller's local claim finds nothing and the transaction fails at its deadline).
 *
 * A home network's join-accept (dm) for the TS002 forwarder of bt, whose sealed token tok/tok_len
 * was opened for the forwarder IDs fwd and the home network home_net_id: */
bool cluster_pb_hand_join_accept(worker_t *w, uint32_t home_net_id,
                                 const Roamhub__V1__BridgeToken *bt, const uint8_t *tok,
                                 size_t tok_len, const pb_ids_t *fwd,
                                 const Org__Packetbroker__V3__DownlinkMessage *dm);

/* A home network's uplink delivery report (error: number and name when has_error): */
bool cluster_pb_hand_uplink_report(worker_t *w, uint32_t home_net_id,
                                   const Roamhub__V1__BridgeToken *bt, bool has_error, int error,
                                   const char *error_name);

/* A forwarder's downlink delivery report on a downlink whose 8-byte downlink_token the hub minted
 * for a TS002 home network's XmitDataReq (pb_bridge_ts002_dl_token_txid): */
bool cluster_pb_hand_downlink_report(worker_t *w, uint32_t fwd_net_id, const uint8_t *dl_token,
                                     size_t len, bool has_error, const char *error_name);

#endif
