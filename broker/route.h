/*
 * route.h — the relay's routing decision: a pure function from a protocol-neutral view of a
 * message, a routing-table snapshot and the member registry to either a decision (where the
 * message goes, who the forwarder and home parties are, its policy class, what to strip) or a
 * refusal (TS002 ResultCode, statistics outcome, description). It never answers, frees, edits or
 * sends anything; relay.c acts on what it returns. No sockets, no event loop, no wire format:
 * front ends (TS002 JSON today) translate their message into a route_msg_t.
 *
 * Rules (TS002 passive roaming; reliability-security §1 for "never back to the sender"):
 *  - uplinks (PRStartReq, XmitDataReq with ULMetaData) are routed by what the frame says:
 *    data frames by the longest DevAddr-block match, join-requests by the most specific join
 *    route (JoinEUI, then DevEUI), else by the ReceiverID NetID; rejoin-requests and uplinks
 *    without a PHYPayload by ReceiverID;
 *  - downlinks (XmitDataReq with DLMetaData) go to ReceiverID; the sender is the home network;
 *  - HomeNSReq is answered by the hub from a join route to a home network (HNetID), or relayed to
 *    the Join Server a join route names, or to a member Join Server serving that JoinEUI;
 *  - everything else goes to ReceiverID (a NetID, or a JoinEUI naming a member Join Server);
 *  - never to a network the sender may itself speak for;
 *  - the forwarder's policy decides: uplink classes policy(sender -> home), downlink classes
 *    policy(receiver -> sender), other messages when policy allows anything either way;
 *    allowed uplinks carry the policy's GWInfo stripping.
 * Refusal codes: UnknownDevAddr (data, no block), UnknownDevEUI (join, no route), UnknownReceiver
 * (ReceiverID), NoRoamingAgreement (policy, naming forwarder, home and flag), FrameSizeError /
 * the view's malformed code (PHYPayload that does not decode or points the wrong way), Other
 * (routing table unavailable).
 */
#ifndef RH_ROUTE_H
#define RH_ROUTE_H

#include "bi_types.h"
#include "peer_registry.h"
#include "rp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum route_kind {
    ROUTE_UPLINK = 0,   /* forwarder -> home: PRStartReq, XmitDataReq with ULMetaData */
    ROUTE_DOWNLINK = 1, /* home -> forwarder: XmitDataReq with DLMetaData */
    ROUTE_HOME_NS = 2,  /* HomeNSReq: which home network serves a device (join) */
    ROUTE_OTHER = 3,    /* PRStop, Profile, notifications, ...: by ReceiverID */
} route_kind_t;

/* The protocol-neutral view of a request, filled by the front end. Pointers are borrowed for the
 * call. */
typedef struct route_msg {
    route_kind_t kind;
    const peer_member_t *sender; /* authenticated member (never routed back to); may be NULL */
    rp_party_t sender_party;     /* sender's NetID + tenant (NetID 0 for a Join Server) */
    bool receiver_is_eui;        /* ReceiverID is a JoinEUI (else a NetID) */
    uint64_t receiver;           /* ReceiverID value */
    const uint8_t *phy;          /* PHYPayload bytes, NULL when the message has none */
    size_t phy_len;
    uint64_t dev_eui;           /* HomeNSReq: the DevEUI asked about */
    bi_result_code_t malformed; /* the sender's protocol's code for a malformed message */
    bool any_transport;         /* the front end reaches parties without a TS002 endpoint itself
                                   (Packet Broker gRPC subscriptions): a destination without an
                                   endpoint is decided with recv_ep NULL instead of refused, and
                                   without a sender member the sender_party's own NetID is never
                                   the destination */
} route_msg_t;

/* What the relay must strip from a forwarded uplink's gateway metadata. */
#define ROUTE_STRIP_SIGNAL 1u   /* RSSI, SNR (= BI_STRIP_SIGNAL) */
#define ROUTE_STRIP_LOCATION 2u /* Lat, Lon, FineRecvTime (= BI_STRIP_LOCATION) */

typedef enum route_action {
    ROUTE_FORWARD = 0, /* send to recv_ep */
    ROUTE_ANSWER = 1,  /* the hub answers itself: HomeNSAns with HNetID = hnet_id */
    ROUTE_REFUSE = 2,  /* answer the sender with (code, description); count outcome */
} route_action_t;

typedef struct route_decision {
    route_action_t action;
    route_kind_t kind;
    rp_class_t cls;                 /* policy / statistics class */
    rp_party_t fwd, home;           /* forwarder and home network (statistics, policy) */
    const peer_endpoint_t *recv_ep; /* ROUTE_FORWARD: where to (in the registry passed in);
                                       NULL only with route_msg_t.any_transport */
    unsigned strip;                 /* ROUTE_FORWARD: ROUTE_STRIP_* */
    uint32_t hnet_id;               /* ROUTE_ANSWER: the home network's NetID */
    bi_result_code_t code;          /* ROUTE_REFUSE; ROUTE_FORWARD with recv_ep NULL: the no-route
                                       code (UnknownDevAddr / UnknownDevEUI / UnknownReceiver)
                                       for when the party's own transport cannot take it */
    rp_outcome_t outcome;           /* ROUTE_REFUSE */
    char description[256];          /* ROUTE_REFUSE: one sentence for the sender and the log */
} route_decision_t;

/* Decides where `m` goes. r: this worker's routing-table reader (one snapshot is taken and
 * released inside the call); reg: the registry the transaction holds. Always fills *d (a
 * refusal when the table is unavailable). Thread-safe for distinct readers. */
void route_decide(const route_msg_t *m, rp_reader_t *r, const peer_registry_t *reg,
                  route_decision_t *d);

/* Answer policy: an answer travelling back to the forwarder of an uplink decision `d` that
 * carries a downlink frame (phy, e.g. a join-accept in PRStartAns) is checked against
 * policy(forwarder -> home).downlink. Returns true when the downlink is refused, with the reason
 * in desc (desc_cap bytes); false when allowed, when there is no downlink frame, or when d is
 * not an uplink. */
bool route_answer_downlink_refused(const route_decision_t *d, const uint8_t *phy, size_t len,
                                   rp_reader_t *r, char *desc, size_t desc_cap);

/* Maps an lw_frame class (lw_class_t) to the routing-policy class. */
rp_class_t route_class_of(int lw_class);

/* Pending-table identity of the member that answers for endpoint ep (hash of the member ID; the
 * endpoint ID when no member owns it). Only needed when an answer will come asynchronously, so
 * the decision does not compute it: relay.c does, when it registers a pending entry. */
uint64_t route_answerer_id(const peer_registry_t *reg, const peer_endpoint_t *ep);

#endif
