/*
 * relay_ts002.h — the TS002 front end of the relay: LoRaWAN Backend Interfaces 1.0/1.1 JSON over
 * HTTP (passive roaming and Join Server messages), one of the relay core's front ends (relay.h).
 *
 * Every request on the TS002 listener goes through these stages, each deciding or refusing
 * once (and logging once, where the decision is made):
 *   1. authenticate the caller (TLS client certificate, Bearer API key, or the development
 *      loopback identity) — HTTP 401 when nobody is recognised;
 *   2. decode and validate the body with the TS002 codec — a TS002 answer with the codec's
 *      ResultCode and Description (HTTP 400 only when the answer cannot be addressed);
 *   3. answers (any *Ans) are matched first, by the answering member and the hub-owned
 *      TransactionID (relay_txn_claim, hub_txid.h), then their SenderID must be one of the
 *      member's NetIDs or the ReceiverID the hub sent the request to; answers matching nothing
 *      are counted and dropped (on a cluster node, an answer whose TransactionID names another
 *      node is first handed to that node: cluster_txn.h, relay_ts002_answer_from_node). For requests, SenderID must be one of the member's NetIDs —
 *      UnknownSender, nothing forwarded; then the member's rate limit;
 *   4. a relay transaction is created and routed by the core (relay_txn_route: route.c decides —
 *      uplinks by DevAddr prefix / join route / ReceiverID, downlinks and everything else by
 *      ReceiverID, never back to the sender, the forwarder's policy for the message class,
 *      stripping of signal quality / localization);
 *   5. this front end forwards what the core decided (ops.forward): the request re-encoded in the
 *      receiver endpoint's dialect — or its received bytes unchanged when already canonical —
 *      under the hub-owned TransactionID and the ReceiverID the core chose; and it bridges
 *      sync/async answers back to the sender (ops.answer) in the mode the sender's endpoint asks
 *      for its role (answer_mode / js_answer_mode), mapped back to the sender's TransactionID
 *      and IDs. Any 2xx that is not a TS002 answer acknowledges; a malformed answer whose header
 *      can be read fails the transaction at once. With a gRPC listener, a receiver without a
 *      TS002 endpoint that is a Packet Broker party is reached through pb_bridge_ts002.h.
 * TS002 POSTs are accepted on any path (docs/PEERING.md).
 * Failures always produce a TS002 answer for the sender: no route -> UnknownDevAddr /
 * UnknownDevEUI / UnknownReceiver; policy -> NoRoamingAgreement naming the flag; receiver
 * timeout or unreachable -> Other (XmitFailed for downlinks).
 */
#ifndef RH_RELAY_TS002_H
#define RH_RELAY_TS002_H

#include "arena.h"
#include "bi_msg.h"
#include "http_server.h"
#include "relay.h"
#include "worker.h"

#include <stdbool.h>
#include <stddef.h>

/* hs_handler_fn for the TS002 listener; arg is the worker_t (worker.h) whose thread runs the
 * listener. Always answers req (hs_reply), now or, for a sync sender, when its transaction
 * completes. */
void relay_ts002_handle_request(hs_req_t *req, void *arg);

/* An answer a member posted to another cluster node for a transaction this node holds
 * (cluster_txn.h; a cluster_txn_match_fn), matched on worker w's thread as if posted here:
 * member_id the member that posted it (looked up in w's registry), remote its address (log
 * lines), body/len the answer as received (bytes, not NUL-terminated; copied if kept). Returns
 * true when a pending transaction took it; false when it matches nothing (counted
 * "unmatched_answer"), its member is unknown here, or it is not an answer. */
bool relay_ts002_answer_from_node(worker_t *w, const char *member_id, const char *remote,
                                  const char *body, size_t len);

/* Answers the async sender of another node's transaction that node can no longer answer
 * (cluster_inflight.h; a cluster_inflight_answer_fn), on worker w's thread: the TS002 answer of
 * type i->ans_type to i's request (SenderID = the ReceiverID the sender named, ReceiverID = its
 * SenderID, its TransactionID, Result i->fail_code with description) POSTed to the sender's
 * endpoint (its NetID's endpoint of the member's tenant, or its Join Server endpoint) in that
 * endpoint's dialect — the path of every async answer (relay_ts002.c deliver). Returns RH_OK
 * when on its way; RH_ENOTFOUND when the member or its endpoint is not in w's registry;
 * RH_ENOMEM. */
int relay_ts002_answer_orphan(worker_t *w, const relay_inflight_t *i, const char *description);

/* The TS002 receiver side, for any front end whose transactions reach TS002 receivers (this one,
 * and the Packet Broker bridge, pb_bridge.c): the front end's context (relay_txn_ctx) must begin
 * with a relay_ts002_out_t, whose arena (may be NULL) holds the receiver's answer while it is
 * decoded and completed. */
typedef struct relay_ts002_out {
    rh_arena_t *arena;
} relay_ts002_out_t;

/* Sends msg to f->ep as ops.forward must (relay.h): the policy's stripping, the hub-owned
 * TransactionID and the ReceiverID the core chose (msg's own header restored after encoding), in
 * the receiver endpoint's dialect — raw (raw_len bytes, the received body; NULL for a message the
 * front end built) unchanged or with only the header values spliced in when it is canonical.
 * The receiver's response completes t (relay_txn_complete with relay_answer_t.fe_msg a TS002
 * answer only this file reads; other front ends use its code, phy and dl), fails it, or
 * acknowledges it; an async answer arrives through the TS002 listener. Returns as ops.forward
 * (RH_OK with the reference taken; RH_EAGAIN, RH_ENOMEM, RH_EIO). */
int relay_ts002_send(relay_txn_t *t, bi_msg_t *msg, const char *raw, size_t raw_len,
                     const relay_forward_t *f);

#endif
