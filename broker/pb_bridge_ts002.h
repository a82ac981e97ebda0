/*
 * pb_bridge_ts002.h — the Packet Broker side of relay transactions whose sender is a TS002
 * member (issue 12, "Bridging"; docs/PEERING.md): the core routed a TS002 request to a party
 * without a TS002 endpoint (route_msg_t.any_transport, relay_forward_t.ep NULL) that has Packet
 * Broker subscriptions at this hub, and the TS002 front end's ops.forward hands it here.
 *
 *   uplink (PRStartReq / XmitDataReq with ULMetaData) -> a RoutedUplinkMessage on the home
 *     network's groups: the frame and the best gateway's metadata (pb_xlate_uplink), the
 *     forwarder's NetID as forwarder_net_id, and a sealed BridgeToken (KIND_TS002_FORWARDER: the
 *     hub TransactionID the forwarder waits on, FNSULToken, the ULTokens of gateways that allow
 *     downlinks; AAD "NNNNNN:tenant:" of the forwarder IDs the routed message names) as
 *     forwarder_uplink_token and — when a gateway may take a downlink — gateway_uplink_token.
 *     The home network answers with its delivery report (pb_bridge_ts002_report: the Result)
 *     or, for a join-request, its Publish of the join-accept (pb_bridge_ts002_answer: PRStartAns
 *     with PHYPayload + DLMetaData), within the core's deadline (RELAY_GRPC_WAIT_*_MS, cut to the
 *     receive window).
 *   downlink (XmitDataReq with DLMetaData) from a TS002 home network to a Packet Broker
 *     forwarder -> a RoutedDownlinkMessage on the forwarder's groups, its IDs and tokens restored
 *     from the sealed token in FNSULToken (or GWInfo[0].ULToken) the forwarder's uplink carried;
 *     the forwarder's downlink delivery report becomes the XmitDataAns
 *     (pb_bridge_ts002_dl_report). A token that does not open is MalformedRequest naming the
 *     field.
 *
 * Threads: the transaction's worker (send); any worker for the claims (relay_txn_claim_party,
 * handed to the owner).
 */
#ifndef RH_PB_BRIDGE_TS002_H
#define RH_PB_BRIDGE_TS002_H

#include "bi_msg.h"
#include "pb_router.h"
#include "relay.h"
#include "worker.h"

#include "packetbroker/v3.pb-c.h"
#include "roamhub.pb-c.h"

#include <stdbool.h>

/* ops.forward for f->ep NULL (relay.h): translates msg (the TS002 request, stripped here per
 * f->strip) for its Packet Broker receiver and queues it. Returns RH_OK (queued: the answer
 * comes through the claims below; or refused with relay_txn_refuse), RH_ENOTFOUND (the receiver
 * has no subscription group here: the core refuses with the route's no-route code), RH_ENOMEM. */
int pb_bridge_ts002_send(relay_txn_t *t, bi_msg_t *msg, const relay_forward_t *f);

/* Packs a RoutedDownlinkMessage — the router's id and time, home network (home_net_id,
 * home_tenant, cluster ""), the forwarder IDs fwd (byte for byte), dm (its downlink_token, when
 * empty, set to the router's: the last 8 bytes of the id) — and queues it for fwd's groups
 * (pb_router_route_downlink; meta.bridged = bridged: the transaction counts the outcome; else the
 * router's hooks count it with the home network's protocol TS002: meta.home_ts002).
 * Returns the number of groups (0: the forwarder has no subscription, logged), RH_ENOMEM. */
int pb_bridge_route_downlink(worker_t *w, Org__Packetbroker__V3__DownlinkMessage *dm,
                             uint32_t home_net_id, const char *home_tenant, const pb_ids_t *fwd,
                             rp_class_t cls, bool bridged);

/* The sealed token a TS002 home network's downlink for a Packet Broker forwarder names its
 * gateway with: the first DLMetaData.GWInfo element carrying a ULToken (the home network's
 * choice among the merged copies' gateways, pb_merge.h), else DLMetaData.FNSULToken. Opened for
 * forwarder NetID fwd_net_id; it must be a gRPC forwarder's uplink token sealed for home_net_id,
 * with a forwarder identity of at most PB_ID_MAX bytes. *field names the element used (static
 * text). Returns RH_OK with *out (free with roamhub__v1__bridge_token__free_unpacked);
 * RH_ENOTFOUND (no token at all), RH_EINVAL / RH_EPERM / RH_ETIMEDOUT (d says why), RH_ENOMEM. */
int pb_bridge_ts002_dl_token(worker_t *w, const bi_dlmeta_t *dl, uint32_t fwd_net_id,
                             uint32_t home_net_id, Roamhub__V1__BridgeToken **out,
                             const char **field, rh_diag_t *d);

/* Opens the sealed BridgeToken of a TS002 forwarder's uplink that a Packet Broker home network
 * returns (tok/n: gateway_uplink_token or forwarder_uplink_token), for the forwarder IDs the
 * request names (the AAD) and the home network home_net_id (the token's own). *out: free with
 * roamhub__v1__bridge_token__free_unpacked. Errors with d naming why (callers prefix the field):
 * as pb_token_open_bridge, RH_EPERM "sealed for another home network", RH_EINVAL "not a TS002
 * forwarder's token". */
int pb_bridge_ts002_open(worker_t *w, const uint8_t *tok, size_t n, uint32_t fwd_net_id,
                         const char *fwd_tenant, const char *fwd_cluster, uint32_t home_net_id,
                         Roamhub__V1__BridgeToken **out, rh_diag_t *d);

/* The DLMetaData for the TS002 forwarder of bt from a Packet Broker DownlinkMessage: windows,
 * data rates, delay, class, priority (pb_xlate_dlmeta in bt's region) and the forwarder's own
 * FNSULToken and GWInfo ULTokens restored exactly (pointers into bt; gw: at least
 * bt->n_gw_ul_tokens elements, ≤ 16 used). Errors: RH_EINVAL with d naming the field. */
int pb_bridge_ts002_dlmeta(const Roamhub__V1__BridgeToken *bt,
                           const Org__Packetbroker__V3__DownlinkMessage *dm, bi_dlmeta_t *dl,
                           bi_gwinfo_t *gw, size_t gw_cap, rh_diag_t *d);

/* A home network's downlink for a TS002 forwarder still waiting on its request (bt->hub_txid):
 * claims the transaction (relay_txn_claim_party: home_net_id, the hub TransactionID, the answer
 * type) and completes it on its worker with Success + the downlink (PHYPayload + DLMetaData:
 * the PRStartAns a join-request waits for). Copies what it needs. Returns true when a waiting
 * transaction took it; false when none waits any more (answered, timed out) or out of memory. */
bool pb_bridge_ts002_answer(worker_t *w, uint32_t home_net_id,
                            const Roamhub__V1__BridgeToken *bt, const uint8_t *phy,
                            size_t phy_len, const bi_dlmeta_t *dl);

/* A home network's uplink delivery report for a TS002 forwarder's uplink: completes the waiting
 * transaction with the mapped Result (pb_xlate_report_result; description the error's name) —
 * except a successful report of a join-request, which waits for the join-accept. Returns true
 * when a transaction took it. */
bool pb_bridge_ts002_report(worker_t *w, uint32_t home_net_id,
                            const Roamhub__V1__BridgeToken *bt, bool has_error, int error,
                            const char *error_name);

/* The hub TransactionID (its node bits name the holder, hub_txid.h) of a downlink_token this
 * side minted (8 bytes: "RH", 0, 1, TransactionID big-endian) into *txid; false for any other
 * token. */
bool pb_bridge_ts002_dl_token_txid(const uint8_t *dl_token, size_t len, uint32_t *txid);

/* A Packet Broker forwarder's downlink delivery report whose downlink_token is one this side
 * minted (8 bytes: "RH", 0, 1, hub TransactionID): completes the TS002 home network's
 * XmitDataReq with Success or XmitFailed (description the error's name). fwd_net_id: the
 * authenticated forwarder. Returns true when a transaction took it. */
bool pb_bridge_ts002_dl_report(worker_t *w, uint32_t fwd_net_id, const uint8_t *dl_token,
                               size_t len, bool has_error, const char *error_name);

#endif
