/*
 * cluster_txn.h — relay transactions across cluster nodes (issue 13): an answer a member posts
 * to one node for a transaction another node holds is handed to that node over NATS.
 *
 * Which node holds a transaction is written in the hub-owned TransactionID the request was
 * forwarded with (hub_txid.h: the top 8 bits are the holder's cluster.node_id, set with
 * pending_set_node). The relay asks cluster_txn_handoff when an answer matches no local pending
 * transaction; when the ID names another node, the answer (its received bytes, the member that
 * posted it and its address) is published as a NATS core request (proto AnswerHandoff) on
 * PREFIX.txn.NODE, no persistence. The holder's subscription passes it to one of its workers,
 * which matches it with the match function as if the member had posted it there (same pending
 * key, same SenderID check); the holder's answer deadline is unchanged — an answer handed too
 * late, or to a node that is gone, matches nothing, and the transaction fails at its deadline
 * as on a single node. The holder replies "matched" or "unmatched"; NATS answers "no
 * responders" for a node that is gone. The node that received the answer counts those in its
 * /metrics events: answer_handed_to_node (relay_ts002.c), answer_from_node (the holder),
 * answer_unmatched_at_holder, answer_holder_unreachable.
 *
 * Threads: cluster_txn_handoff from any worker; the subscriptions' callbacks run on NATS
 * client threads and only post to workers (worker_post) or count.
 */
#ifndef RH_CLUSTER_TXN_H
#define RH_CLUSTER_TXN_H

#include "cluster.h"
#include "worker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cluster_txn cluster_txn_t;

/* Matches an answer handed over from another node on worker w (its thread): body/len the
 * answer as the member posted it, member_id the member that posted it (authenticated there),
 * remote its address (log lines). Returns true when a pending transaction of this node took it.
 * The relay's relay_ts002_answer_from_node. */
typedef bool (*cluster_txn_match_fn)(worker_t *w, const char *member_id, const char *remote,
                                     const char *body, size_t len);

/* Subscribes PREFIX.txn.NODE (answers for this node's transactions) and PREFIX.txn.reply.NODE
 * (the holders' replies) on the cluster's NATS connection (cfg: cluster section). workers[0..n)
 * take the handed answers (round robin) and count the replies; they must outlive the object.
 * Call before the workers' threads start (a handed answer waits in a worker's inbox until its
 * loop runs). Errors: RH_ENOMEM; RH_EIO when NATS refuses the subscriptions (diag says why).
 * *out is the caller's, released with cluster_txn_free. */
int cluster_txn_start(cluster_t *c, const rh_config_t *cfg, worker_t *workers, unsigned n,
                      cluster_txn_match_fn match, cluster_txn_t **out, rh_diag_t *diag);

/* Hands an answer to the node that holds its transaction. txid: the answer's TransactionID (a
 * hub-owned one when it answers a forwarded request); member_id, remote, body/len as in
 * cluster_txn_match_fn (copied). Returns RH_OK when published (not yet matched: the holder
 * decides); RH_ENOTFOUND when txid names no other node (this node, node 0 = a single-node ID,
 * or x NULL): the answer matches nothing; RH_EAGAIN when NATS did not take it; RH_ENOMEM. */
int cluster_txn_handoff(cluster_txn_t *x, uint32_t txid, const char *member_id,
                        const char *remote, const char *body, size_t len);

/* Matches a Packet Broker member's answer handed over from another node on worker w (its
 * thread): msg/len a packed PbAnswerHandoff (roamhub.proto). Returns true when a waiting
 * transaction of this node took it. cluster_pb.c's cluster_pb_answer_from_node. */
typedef bool (*cluster_txn_match_pb_fn)(worker_t *w, const uint8_t *msg, size_t len);

/* Sets the matcher of Packet Broker answers (before the workers' threads start; without one
 * they are answered "unmatched"). */
void cluster_txn_set_pb(cluster_txn_t *x, cluster_txn_match_pb_fn match);

/* Hands a Packet Broker member's answer (msg/len: a packed PbAnswerHandoff, copied) to the node
 * holding transaction txid, through the same subject, reply and counters as
 * cluster_txn_handoff (AnswerHandoff.packet_broker set; member_id the answering member, for the
 * holder's log lines). Same returns. */
int cluster_txn_handoff_pb(cluster_txn_t *x, uint32_t txid, const char *member_id,
                           const uint8_t *msg, size_t len);

/* Stops the subscriptions (waits for a callback running) and frees. Call after the workers'
 * threads stopped (a handed answer left in an inbox is then dropped unmatched) and before the
 * workers are finalized and cluster_free. NULL is a no-op. */
void cluster_txn_free(cluster_txn_t *x);

#endif
