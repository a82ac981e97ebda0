/*
 * pb_bridge.h — the relay core's Packet Broker front end for bridged traffic (issue 12,
 * "Bridging"; docs/PEERING.md): a gRPC forwarder's uplink whose home network is a TS002 member
 * becomes a relay transaction (relay.h) — the same routing, policy, statistics, capture, rate
 * limits and answer deadline as TS002 traffic — sent with the TS002 receiver side
 * (relay_ts002_send) as a PRStartReq:
 *
 *   PublishUplinkMessageRequest            -> PRStartReq (SenderID = forwarder_net_id,
 *                                             ReceiverID = the home network's NetID)
 *   message.phy_payload.plain              -> PHYPayload
 *   message.* and gateway metadata         -> ULMetaData / GWInfo (pb_xlate_ulmeta: units)
 *   forwarder ids + both forwarder tokens  -> a sealed BridgeToken (pb_token.h, KIND_GRPC_FORWARDER,
 *                                             AAD "NNNNNN::" of the forwarder's NetID) in
 *                                             ULMetaData.FNSULToken and GWInfo.ULToken (hex)
 *
 * The answer comes back to the forwarder's Subscribe stream: a downlink in PRStartAns (a
 * join-accept) as a RoutedDownlinkMessage with the forwarder's forwarder_net_id/tenant_id/
 * cluster_id byte for byte as published and its gateway_uplink_token / forwarder_uplink_token
 * exactly; the Result has no place to go (Packet Broker's v1 API gives a forwarder no uplink
 * delivery state): it is counted as the transaction's outcome and logged.
 *
 * Copies of one uplink (the agent publishes one per gateway) from the same forwarder identity
 * with the same PHYPayload, published within grpc.merge_window_ms on one worker, become ONE
 * PRStartReq whose ULMetaData carries a GWInfo per copy, each with its own sealed ULToken
 * (pb_merge.h). Each copy's Publish is answered at once with its own ID; the merged uplink is
 * counted once (the relay core's outcome); each copy that joined another is the /metrics event
 * pb_bridge_merged. A TS002 downlink then names its gateway: the first DLMetaData.GWInfo ULToken,
 * else FNSULToken (pb_bridge_ts002_dl_token).
 *
 * Threads: the worker of the Publish call; transactions and merges stay on it (relay.h).
 */
#ifndef RH_PB_BRIDGE_H
#define RH_PB_BRIDGE_H

#include "bi_msg.h"
#include "pb_router.h"
#include "peer_registry.h"
#include "worker.h"

#include "packetbroker/routing_v1.pb-c.h"

/* Bridges req (already authenticated, its forwarder identity checked into fwd, its frame
 * decoded) to the TS002 home network routing decides (relay_txn_route: the decision, the
 * outcome and its count are the core's). member: the forwarder's member record (required: a
 * transaction has a sender); home_net_id: the home network the caller's decision found (sealed
 * into the token: only that network's downlinks may use it). Returns RH_OK when a transaction
 * took the uplink or it joined (or opened) a merge of its copies, whose flush then counts it (as
 * no_route when it cannot be sent then); RH_EPERM (no member record), RH_EINVAL (d names the
 * field: data rate, frequency), RH_ENOMEM, RH_ECRYPTO — then nothing was counted. */
int pb_bridge_uplink(worker_t *w, const Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *req,
                     const pb_ids_t *fwd, const peer_member_t *member, uint32_t home_net_id,
                     uint64_t recv_ns, rh_diag_t *d);

/* Worker w's merge table for copies of one uplink (pb_merge.h) with w->pb's merge_window_ms and
 * merge_max; none when the window is 0 (or w has no Packet Broker service). Call before w runs.
 * Errors: RH_ENOMEM. */
int pb_bridge_worker_start(worker_t *w);

/* SIGTERM's drain on w (before the relay's drain): every open merge is sent now, so its copies
 * are a transaction the drain answers or fails and counts, not dropped. On w's thread. */
void pb_bridge_worker_drain(worker_t *w);

/* Frees w's merge table (copies still in their window are dropped, logged with their count).
 * On w's thread or after it stopped. */
void pb_bridge_worker_stop(worker_t *w);

/* What a synchronous answer of a downlink transaction said (pb_bridge_downlink): filled when the
 * transaction was refused or answered while it was being routed. */
typedef struct pb_bridge_sync {
    bool answered;
    bi_result_code_t code;
    char description[200];
} pb_bridge_sync_t;

/* A Packet Broker home network's Publish of a downlink for a TS002 forwarder that no longer
 * waits on its request (a class A data downlink, or a join-accept after the wait): an XmitDataReq
 * (SenderID = the home network, ReceiverID = bt's forwarder NetID, PHYPayload = phy, DLMetaData
 * dl with the forwarder's tokens restored: pb_bridge_ts002_dlmeta) through the relay core and
 * relay_ts002_send. The XmitDataAns is the transaction's counted outcome (Packet Broker's v1 API
 * has no downlink state for a home network). member: the home network's member record
 * (required). *sync tells an answer given during routing (a refusal). Returns RH_OK when a
 * transaction took it; RH_EPERM (no member record), RH_ENOMEM, RH_EINVAL (d naming the field). */
int pb_bridge_downlink(worker_t *w, const pb_ids_t *home, const peer_member_t *member,
                       uint32_t fwd_net_id, const uint8_t *phy, size_t phy_len,
                       const bi_dlmeta_t *dl, uint64_t recv_ns, pb_bridge_sync_t *sync,
                       rh_diag_t *d);

#endif
