/*
 * pb_forwarder.c — org.packetbroker.routing.v1.ForwarderData (issue 12): a forwarder's
 * Publish of a gateway uplink, its Subscribe to downlinks, and its downlink delivery reports.
 * See pb_service.h for authentication, routing and statistics; pb_router.h for subscriptions.
 *
 * Publish answers on acceptance (the agent's 3 s deadline; no retries), as Packet Broker does:
 * an uplink the routing table or the routing policy does not route is still answered with its
 * router-assigned ID and only counted (no_route / policy_denied), because a forwarder publishes
 * everything it hears. A frame that does not decode is INVALID_ARGUMENT. The routed copy is a
 * RoutedUplinkMessage with the forwarder's IDs as sent, the home network's NetID and tenant
 * from the routing table, the uplink with the policy's stripping applied, and one RouteHop
 * (protocol GRPC) for this hub.
 */
#include "pb_service.h"

#include "cluster_pb.h"
#include "lw_netid.h"
#include "metrics.h"
#include "pb_bridge.h"
#include "pb_bridge_ts002.h"
#include "pb_filter.h"
#include "pb_routed.h"
#include "rh_log.h"
#include "rh_time.h"
#include "route.h"

#include "google/protobuf/empty.pb-c.h"
#include "packetbroker/routing_v1.pb-c.h"

#include <stdlib.h>
#include <string.h>

void pb_fwd_publish(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    worker_t *w = arg;
    uint64_t recv_ns = rh_mono_ns();
    pb_identity_t id;
    char sub[129];
    Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *req = (void *)pb_call_begin(
        call, w, &org__packetbroker__routing__v1__publish_uplink_message_request__descriptor, msg,
        len, &id, sub);
    if (!req)
        return;
    pb_ids_t fwd;
    rp_party_t fwd_party;
    if (!pb_call_identity(call, w, &id, sub, "forwarder", req->forwarder_net_id,
                          req->forwarder_tenant_id, req->forwarder_cluster_id,
                          PB_RIGHT_WRITE_TRAFFIC, &fwd))
        goto out;
    if (rp_party_set(&fwd_party, fwd.net_id, fwd.tenant, NULL) != RH_OK) {
        pb_call_invalid(call, "forwarder_tenant_id", "not a tenant ID ([A-Za-z0-9._-])");
        goto out;
    }
    Org__Packetbroker__V3__UplinkMessage *um = req->message;
    if (!um || !um->phy_payload ||
        um->phy_payload->value_case !=
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN ||
        um->phy_payload->plain.len == 0) {
        pb_call_invalid(call, "message.phy_payload.plain",
                        "missing (only plain PHYPayloads are routed)");
        goto out;
    }
    const uint8_t *phy = um->phy_payload->plain.data;
    size_t phy_len = um->phy_payload->plain.len;
    pb_uplink_facts_t facts;
    rh_diag_t dg = {{0}};
    if (pb_uplink_facts(phy, phy_len, &facts, &dg) != RH_OK) {
        pb_count(w, fwd.net_id, 0, RP_PROTO_PACKET_BROKER, RP_CLASS_OTHER, RP_OUT_MALFORMED, NULL,
                 recv_ns, NULL);
        pb_call_invalid(call, "message.phy_payload.plain", dg.text);
        goto out;
    }
    const peer_member_t *member = pb_member_of(w, fwd.net_id, fwd.tenant);
    if (!pb_call_rate(call, w, member))
        goto out;
    route_msg_t v = {
        .kind = ROUTE_UPLINK,
        .sender = member,
        .sender_party = fwd_party,
        .receiver_is_eui = true, /* Packet Broker has no ReceiverID: the frame decides */
        .receiver = 0,
        .phy = phy,
        .phy_len = phy_len,
        .malformed = BI_RC_MALFORMED_REQUEST,
        .any_transport = true,
    };
    route_decision_t d;
    route_decide(&v, w->reader, worker_registry(w), &d);
    const char *sender = member ? member->id : sub;
    Org__Packetbroker__Routing__V1__PublishUplinkMessageResponse resp =
        ORG__PACKETBROKER__ROUTING__V1__PUBLISH_UPLINK_MESSAGE_RESPONSE__INIT;
    char mid[40];
    pb_router_new_id(w->pb->router, mid);
    resp.id = mid;
    if (d.action != ROUTE_FORWARD) {
        pb_count(w, fwd.net_id, d.home.net_id, RP_PROTO_PACKET_BROKER, d.cls, d.outcome, NULL,
                 recv_ns, sender);
        if (d.outcome == RP_OUT_MALFORMED) {
            pb_call_invalid(call, "message.phy_payload.plain", d.description);
            goto out;
        }
        RH_LOG(RH_LOG_DEBUG, "pb", "uplink not routed id=%s reason=\"%s\"", mid, d.description);
        pb_call_reply(call, &resp.base);
        goto out;
    }
    pb_uplink_strip(um, d.strip, false); /* the forwarder's routing policy */
    Google__Protobuf__Timestamp now, hop_ts;
    pb_timestamp_now(&now);
    hop_ts = now;
    Org__Packetbroker__V3__RouteHop hop, *hops[1] = {&hop};
    pb_hop_fill(&hop, &hop_ts, w->pb, call, sender);
    Org__Packetbroker__V3__RoutedUplinkMessage routed;
    pb_route_stamp_t stamp = {.id = mid, .time = &now, .hops = hops, .n_hops = 1};
    pb_routed_uplink(&routed, req, d.home.net_id, d.home.tenant_id, &stamp);

    pb_item_meta_t meta = {.fwd_net_id = fwd.net_id, .home_net_id = d.home.net_id,
                           .cls = d.cls, .recv_ns = recv_ns,
                           /* a TS002 home network is bridged unless a group here takes it */
                           .local_only = d.recv_ep != NULL};
    memcpy(meta.id, mid, sizeof meta.id);
    int n = pb_router_route_uplink(w->pb->router, w, d.home.net_id, d.home.tenant_id, &facts,
                                   pb_routed_encode_uplink, &routed,
                                   &meta);
    if (n < 0) {
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    if (n == 0 && d.recv_ep) {
        /* a TS002 home network: bridged through the relay core (pb_bridge.h), which counts */
        rh_diag_t bd = {{0}};
        int rc = pb_bridge_uplink(w, req, &fwd, member, d.home.net_id, recv_ns, &bd);
        if (rc == RH_OK) {
            pb_call_reply(call, &resp.base);
            goto out;
        }
        metrics_event(w->metrics, "pb_bridge_unavailable");
        RH_LOG(RH_LOG_INFO, "pb", "uplink not bridged id=%s reason=\"%s\"", mid, bd.text);
    }
    if (n == 0) {
        char h[7];
        lw_netid_format(d.home.net_id, h, 0);
        RH_LOG(RH_LOG_DEBUG, "pb", "uplink not routed id=%s home=%s reason=\"%s\"", mid, h,
               d.recv_ep ? "not bridged to the TS002 home network" : "no subscription");
        pb_count(w, fwd.net_id, d.home.net_id, d.recv_ep ? RP_PROTO_TS002 : RP_PROTO_PACKET_BROKER,
                 d.cls, RP_OUT_NO_ROUTE, NULL, recv_ns, sender);
    }
    pb_call_reply(call, &resp.base);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void pb_fwd_subscribe(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    worker_t *w = arg;
    pb_identity_t id;
    char sub[129];
    Org__Packetbroker__Routing__V1__SubscribeForwarderRequest *req = (void *)pb_call_begin(
        call, w, &org__packetbroker__routing__v1__subscribe_forwarder_request__descriptor, msg,
        len, &id, sub);
    if (!req)
        return;
    pb_ids_t fwd;
    if (pb_call_identity(call, w, &id, sub, "forwarder", req->forwarder_net_id,
                         req->forwarder_tenant_id, req->forwarder_cluster_id,
                         PB_RIGHT_READ_TRAFFIC, &fwd))
        pb_subscribe(call, w, PB_ROLE_FORWARDER, &fwd, req->group, NULL);
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

void pb_fwd_report(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    worker_t *w = arg;
    pb_identity_t id;
    char sub[129];
    Org__Packetbroker__Routing__V1__DownlinkMessageDeliveryStateChangeRequest *req =
        (void *)pb_call_begin(
            call, w,
            &org__packetbroker__routing__v1__downlink_message_delivery_state_change_request__descriptor,
            msg, len, &id, sub);
    if (!req)
        return;
    const Org__Packetbroker__V3__DownlinkMessageDeliveryStateChange *sc = req->state_change;
    pb_ids_t fwd;
    if (!sc) {
        pb_call_invalid(call, "state_change", "missing");
    } else if (pb_call_identity(call, w, &id, sub, "forwarder", sc->forwarder_net_id,
                                sc->forwarder_tenant_id, sc->forwarder_cluster_id,
                                PB_RIGHT_WRITE_TRAFFIC, &fwd)) {
        /* the downlink's outcome as the forwarder's gateway saw it (the error is a oneof
         * member: DOWNLINK_UNKNOWN_ERROR = 0 is a real error); the v1 API gives the home
         * network no stream for it, so it ends here */
        bool err = sc->result_case ==
                   ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_DELIVERY_STATE_CHANGE__RESULT_ERROR;
        const ProtobufCEnumValue *ev =
            err ? protobuf_c_enum_descriptor_get_value(
                      &org__packetbroker__v3__downlink_message_processing_error__descriptor,
                      sc->error)
                : NULL;
        /* a downlink a TS002 home network sent: its XmitDataAns (pb_bridge_ts002.h) */
        const char *en = err ? (ev ? ev->name : "unknown") : NULL;
        if (cluster_pb_hand_downlink_report(w, fwd.net_id, sc->downlink_token.data,
                                            sc->downlink_token.len, err, en) ||
            pb_bridge_ts002_dl_report(w, fwd.net_id, sc->downlink_token.data,
                                      sc->downlink_token.len, err, en))
            metrics_event(w->metrics, "pb_bridged_report");
        pb_report_done(call, w, "downlink", sc->id, err ? (ev ? ev->name : "unknown") : NULL);
    }
    protobuf_c_message_free_unpacked(&req->base, NULL);
}
