/*
 * pb_home.c — org.packetbroker.routing.v1.HomeNetworkData (issue 12): a home network's
 * Subscribe to uplinks (with routing filters), its Publish of downlinks, and its uplink delivery
 * reports. See pb_service.h for authentication, routing and statistics; pb_router.h for
 * subscriptions; pb_filter.h for the filters.
 *
 * A downlink for a TS002 forwarder (and a report on its uplink) is bridged: its sealed token
 * (pb_bridge_ts002.h) says which request it answers; a token that does not open is
 * INVALID_ARGUMENT naming the field.
 *
 * Publish routes the downlink through route_decide (ROUTE_DOWNLINK: the forwarder named by
 * forwarder_net_id, the forwarder's routing policy for the downlink class) and hands a
 * RoutedDownlinkMessage to the forwarder-role groups whose forwarder_net_id / tenant_id /
 * cluster_id equal the request's byte for byte (the agent authenticates its gateway token with
 * them); the DownlinkMessage, gateway_uplink_token included, is passed on as sent. Unlike an
 * uplink, a downlink that cannot be routed is refused, so the home network knows at once:
 * NOT_FOUND (no route, or no subscription of that forwarder), FAILED_PRECONDITION (routing
 * policy), INVALID_ARGUMENT (frame). On a cluster node the downlink is also handed to the
 * forwarder's groups on the other nodes (cluster_pb.h), so it is accepted even without a group
 * here; when no node has one, it is counted no_route there (NATS no responders).
 */
#include "pb_service.h"

#include "cluster_pb.h"
#include "lw_netid.h"
#include "metrics.h"
#include "pb_bridge.h"
#include "pb_bridge_ts002.h"
#include "pb_filter.h"
#include "pb_routed.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"
#include "route.h"

#include "google/protobuf/empty.pb-c.h"
#include "packetbroker/routing_v1.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pb_home_subscribe(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    worker_t *w = arg;
    pb_identity_t id;
    char sub[129];
    Org__Packetbroker__Routing__V1__SubscribeHomeNetworkRequest *req = (void *)pb_call_begin(
        call, w, &org__packetbroker__routing__v1__subscribe_home_network_request__descriptor, msg,
        len, &id, sub);
    if (!req)
        return;
    pb_ids_t home;
    pb_filter_set_t *fs = NULL;
    rh_diag_t d = {{0}};
    if (!pb_call_identity(call, w, &id, sub, "home_network", req->home_network_net_id,
                          req->home_network_tenant_id, req->home_network_cluster_id,
                          PB_RIGHT_READ_TRAFFIC, &home))
        goto out;
    int rc = pb_filter_set_new(req->filters, req->n_filters, &fs, &d);
    if (rc != RH_OK)
        grpc_call_finish(call, rc == RH_ENOMEM ? GRPC_RESOURCE_EXHAUSTED : GRPC_INVALID_ARGUMENT,
                         rc == RH_ENOMEM ? "out of memory" : d.text);
    else
        pb_subscribe(call, w, PB_ROLE_HOME, &home, req->group, fs);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* The gRPC status for a downlink route refusal. */
static grpc_status_t refusal_status(rp_outcome_t o)
{
    switch (o) {
    case RP_OUT_POLICY_DENIED:
        return GRPC_FAILED_PRECONDITION;
    case RP_OUT_MALFORMED:
        return GRPC_INVALID_ARGUMENT;
    case RP_OUT_UNREACHABLE:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_NOT_FOUND;
    }
}

/* The gRPC status for a TS002 Result a bridged downlink was refused with. */
static grpc_status_t result_status(bi_result_code_t rc)
{
    switch (rc) {
    case BI_RC_NO_ROAMING_AGREEMENT:
        return GRPC_FAILED_PRECONDITION;
    case BI_RC_MALFORMED_REQUEST:
    case BI_RC_MALFORMED_MESSAGE:
    case BI_RC_FRAME_SIZE_ERROR:
        return GRPC_INVALID_ARGUMENT;
    case BI_RC_UNKNOWN_RECEIVER:
    case BI_RC_UNKNOWN_DEV_ADDR:
    case BI_RC_UNKNOWN_DEV_EUI:
        return GRPC_NOT_FOUND;
    default:
        return GRPC_UNAVAILABLE;
    }
}

/* A downlink for a TS002 forwarder: its sealed token says which uplink (and request) it answers;
 * the join-accept a forwarder still waits for completes its PRStartReq, anything else becomes an
 * XmitDataReq. */
static void bridge_downlink(grpc_call_t *call, worker_t *w,
                            const Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest *req,
                            const pb_ids_t *home, const pb_ids_t *fwd, const peer_member_t *member,
                            uint64_t recv_ns)
{
    const Org__Packetbroker__V3__DownlinkMessage *dm = req->message;
    const char *field = "message.gateway_uplink_token";
    ProtobufCBinaryData tok = dm->gateway_uplink_token;
    if (tok.len == 0) {
        field = "message.forwarder_uplink_token";
        tok = dm->forwarder_uplink_token;
    }
    if (tok.len == 0) {
        pb_call_invalid(call, "message.gateway_uplink_token",
                        "missing (a downlink for a TS002 forwarder needs its uplink's token)");
        return;
    }
    Roamhub__V1__BridgeToken *bt = NULL;
    rh_diag_t d = {{0}};
    if (pb_bridge_ts002_open(w, tok.data, tok.len, req->forwarder_net_id,
                             req->forwarder_tenant_id, req->forwarder_cluster_id, home->net_id,
                             &bt, &d) != RH_OK) {
        metrics_event(w->metrics, "pb_bridge_token_refused");
        pb_call_invalid(call, field, d.text);
        return;
    }
    bi_dlmeta_t dl;
    bi_gwinfo_t gw[16];
    if (pb_bridge_ts002_dlmeta(bt, dm, &dl, gw, 16, &d) != RH_OK) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, d.text);
        roamhub__v1__bridge_token__free_unpacked(bt, NULL);
        return;
    }
    char mid[40];
    pb_router_new_id(w->pb->router, mid);
    Org__Packetbroker__Routing__V1__PublishDownlinkMessageResponse resp =
        ORG__PACKETBROKER__ROUTING__V1__PUBLISH_DOWNLINK_MESSAGE_RESPONSE__INIT;
    resp.id = mid;
    pb_ids_t tok_fwd = {.net_id = req->forwarder_net_id};
    snprintf(tok_fwd.tenant, sizeof tok_fwd.tenant, "%s", req->forwarder_tenant_id);
    snprintf(tok_fwd.cluster, sizeof tok_fwd.cluster, "%s", req->forwarder_cluster_id);
    if (bt->join && (cluster_pb_hand_join_accept(w, home->net_id, bt, tok.data, tok.len, &tok_fwd,
                                                 dm) || /* another node holds it */
                     pb_bridge_ts002_answer(w, home->net_id, bt, dm->phy_payload.data,
                                            dm->phy_payload.len, &dl))) {
        /* the forwarder's PRStartReq is answered with it (counted there) */
        metrics_event(w->metrics, "pb_bridged_answer");
        roamhub__v1__bridge_token__free_unpacked(bt, NULL);
        pb_call_reply(call, &resp.base);
        return;
    }
    pb_bridge_sync_t sync = {0};
    int rc = pb_bridge_downlink(w, home, member, bt->forwarder_net_id, dm->phy_payload.data,
                                dm->phy_payload.len, &dl, recv_ns, &sync, &d);
    roamhub__v1__bridge_token__free_unpacked(bt, NULL);
    (void)fwd;
    if (rc != RH_OK)
        grpc_call_finish(call, rc == RH_ENOMEM ? GRPC_RESOURCE_EXHAUSTED
                               : rc == RH_EPERM ? GRPC_FAILED_PRECONDITION
                                                : GRPC_INVALID_ARGUMENT, d.text);
    else if (sync.answered && sync.code != BI_RC_SUCCESS)
        grpc_call_finish(call, result_status(sync.code), sync.description);
    else
        pb_call_reply(call, &resp.base);
}

void pb_home_publish(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    worker_t *w = arg;
    uint64_t recv_ns = rh_mono_ns();
    pb_identity_t id;
    char sub[129];
    Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest *req = (void *)pb_call_begin(
        call, w, &org__packetbroker__routing__v1__publish_downlink_message_request__descriptor,
        msg, len, &id, sub);
    if (!req)
        return;
    pb_ids_t home, fwd;
    rp_party_t home_party;
    if (!pb_call_ids(call, "forwarder", req->forwarder_net_id, req->forwarder_tenant_id,
                     req->forwarder_cluster_id, &fwd) ||
        !pb_call_identity(call, w, &id, sub, "home_network", req->home_network_net_id,
                          req->home_network_tenant_id, req->home_network_cluster_id,
                          PB_RIGHT_WRITE_TRAFFIC, &home))
        goto out;
    if (rp_party_set(&home_party, home.net_id, home.tenant, NULL) != RH_OK) {
        pb_call_invalid(call, "home_network_tenant_id", "not a tenant ID ([A-Za-z0-9._-])");
        goto out;
    }
    if (!req->message || req->message->phy_payload.len == 0) {
        pb_call_invalid(call, "message.phy_payload", "missing");
        goto out;
    }
    const peer_member_t *member = pb_member_of(w, home.net_id, home.tenant);
    if (!pb_call_rate(call, w, member))
        goto out;
    route_msg_t v = {
        .kind = ROUTE_DOWNLINK,
        .sender = member,
        .sender_party = home_party,
        .receiver_is_eui = false,
        .receiver = fwd.net_id,
        .phy = req->message->phy_payload.data,
        .phy_len = req->message->phy_payload.len,
        .malformed = BI_RC_MALFORMED_REQUEST,
        .any_transport = true,
    };
    route_decision_t d;
    route_decide(&v, w->reader, worker_registry(w), &d);
    const char *sender = member ? member->id : sub;
    if (d.action != ROUTE_FORWARD) {
        pb_count(w, fwd.net_id, home.net_id, RP_PROTO_PACKET_BROKER, d.cls, d.outcome, NULL,
                 recv_ns, sender);
        grpc_call_finish(call, refusal_status(d.outcome), d.description);
        goto out;
    }
    if (d.recv_ep) { /* a TS002 forwarder: bridged (pb_bridge_ts002.h, pb_bridge.h) */
        bridge_downlink(call, w, req, &home, &fwd, member, recv_ns);
        goto out;
    }
    char mid[40];
    pb_router_new_id(w->pb->router, mid);
    Google__Protobuf__Timestamp now, hop_ts;
    pb_timestamp_now(&now);
    hop_ts = now;
    Org__Packetbroker__V3__RouteHop hop, *hops[1] = {&hop};
    pb_hop_fill(&hop, &hop_ts, w->pb, call, sender);
    /* the forwarder's IDs byte for byte as the home network copied them from the uplink; a
     * hub-minted downlink_token (the last 8 bytes of the ID) the agent echoes in its report */
    Org__Packetbroker__V3__RoutedDownlinkMessage routed;
    Org__Packetbroker__V3__DownlinkMessage dl = *req->message;
    uint8_t dl_token[8];
    size_t tl = 0;
    rh_hex_decode(mid + 16, 16, dl_token, sizeof dl_token, &tl, "id", NULL); /* our own hex */
    pb_route_stamp_t stamp = {.id = mid, .time = &now, .hops = hops, .n_hops = 1};
    pb_routed_downlink(&routed, req, &dl, dl_token, &stamp);
    size_t n = protobuf_c_message_get_packed_size(&routed.base);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    protobuf_c_message_pack(&routed.base, buf);
    pb_item_meta_t meta = {.fwd_net_id = fwd.net_id, .home_net_id = home.net_id, .cls = d.cls,
                           .recv_ns = recv_ns};
    memcpy(meta.id, mid, sizeof meta.id);
    int q = pb_router_route_downlink(w->pb->router, w, &fwd, buf, n, &meta);
    free(buf);
    if (q < 0) {
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    if (q == 0) {
        if (d.recv_ep)
            metrics_event(w->metrics, "pb_bridge_unavailable");
        char f[7], m[320];
        lw_netid_format(fwd.net_id, f, 0);
        snprintf(m, sizeof m, "forwarder %s tenant \"%s\" cluster \"%s\" has no downlink "
                 "subscription at this hub", f, fwd.tenant, fwd.cluster);
        pb_count(w, fwd.net_id, home.net_id, RP_PROTO_PACKET_BROKER, d.cls, RP_OUT_NO_ROUTE, NULL,
                 recv_ns, sender);
        grpc_call_finish(call, GRPC_NOT_FOUND, m);
        goto out;
    }
    Org__Packetbroker__Routing__V1__PublishDownlinkMessageResponse resp =
        ORG__PACKETBROKER__ROUTING__V1__PUBLISH_DOWNLINK_MESSAGE_RESPONSE__INIT;
    resp.id = mid;
    pb_call_reply(call, &resp.base);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}

/* A report carrying a forwarder_uplink_token: when it is the hub's sealed token of a TS002
 * forwarder's uplink, the report becomes that forwarder's Result. Returns false when the call was
 * finished (a token of a TS002 forwarder that does not open: INVALID_ARGUMENT naming it). */
static bool bridge_report(grpc_call_t *call, worker_t *w,
                          const Org__Packetbroker__V3__UplinkMessageDeliveryStateChange *sc,
                          const pb_ids_t *home, const char *error_name)
{
    Roamhub__V1__BridgeToken *bt = NULL;
    rh_diag_t d = {{0}};
    if (pb_bridge_ts002_open(w, sc->forwarder_uplink_token.data, sc->forwarder_uplink_token.len,
                             sc->forwarder_net_id, sc->forwarder_tenant_id,
                             sc->forwarder_cluster_id, home->net_id, &bt, &d) != RH_OK) {
        /* another forwarder's own token (gRPC to gRPC) passes; a TS002 forwarder's is ours */
        const peer_endpoint_t *ep = NULL;
        peer_registry_endpoint_by_netid(worker_registry(w), sc->forwarder_net_id & 0xFFFFFFu,
                                        NULL, &ep);
        if (!ep)
            return true;
        metrics_event(w->metrics, "pb_bridge_token_refused");
        pb_call_invalid(call, "state_change.forwarder_uplink_token", d.text);
        return false;
    }
    bool err = sc->error != NULL;
    int ev = sc->error ? (int)sc->error->value : 0;
    if ((!(bt->join && !err) && /* a join-request waits for its join-accept */
         cluster_pb_hand_uplink_report(w, home->net_id, bt, err, ev, error_name)) ||
        pb_bridge_ts002_report(w, home->net_id, bt, err, ev, error_name))
        metrics_event(w->metrics, "pb_bridged_report");
    roamhub__v1__bridge_token__free_unpacked(bt, NULL);
    return true;
}

void pb_home_report(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    worker_t *w = arg;
    pb_identity_t id;
    char sub[129];
    Org__Packetbroker__Routing__V1__UplinkMessageDeliveryStateChangeRequest *req =
        (void *)pb_call_begin(
            call, w,
            &org__packetbroker__routing__v1__uplink_message_delivery_state_change_request__descriptor,
            msg, len, &id, sub);
    if (!req)
        return;
    const Org__Packetbroker__V3__UplinkMessageDeliveryStateChange *sc = req->state_change;
    pb_ids_t home;
    if (!sc) {
        pb_call_invalid(call, "state_change", "missing");
    } else if (pb_call_identity(call, w, &id, sub, "home_network", sc->home_network_net_id,
                                sc->home_network_tenant_id, sc->home_network_cluster_id,
                                PB_RIGHT_WRITE_TRAFFIC, &home)) {
        /* the home network's verdict on an uplink (error is a wrapper: UPLINK_UNKNOWN_ERROR = 0
         * is a real error); the v1 API gives a Packet Broker forwarder no stream for it, so it
         * ends here — a TS002 forwarder's uplink gets it as its Result (bridge_report) */
        const ProtobufCEnumValue *ev =
            sc->error ? protobuf_c_enum_descriptor_get_value(
                            &org__packetbroker__v3__uplink_message_processing_error__descriptor,
                            sc->error->value)
                      : NULL;
        if (sc->forwarder_uplink_token.len > 0 &&
            !bridge_report(call, w, sc, &home, ev ? ev->name : "unknown"))
            goto done;
        pb_report_done(call, w, "uplink", sc->id,
                       sc->error ? (ev ? ev->name : "unknown") : NULL);
    }
done:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}
