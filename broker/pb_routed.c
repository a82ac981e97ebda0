/* pb_routed.c — routed Packet Broker messages from published requests (see pb_routed.h). */
#include "pb_routed.h"

#include <stdlib.h>
#include <string.h>

void pb_routed_uplink(Org__Packetbroker__V3__RoutedUplinkMessage *out,
                      const Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *req,
                      uint32_t home_net_id, const char *home_tenant, const pb_route_stamp_t *st)
{
    org__packetbroker__v3__routed_uplink_message__init(out);
    out->time = st->time;
    out->id = st->id;
    out->forwarder_net_id = req->forwarder_net_id;
    out->forwarder_tenant_id = req->forwarder_tenant_id;
    out->forwarder_cluster_id = req->forwarder_cluster_id;
    out->home_network_net_id = home_net_id;
    out->home_network_tenant_id = (char *)(home_tenant ? home_tenant : "");
    out->message = req->message;
    out->n_hops = st->n_hops;
    out->hops = st->hops;
}

void pb_routed_downlink(Org__Packetbroker__V3__RoutedDownlinkMessage *out,
                        const Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest *req,
                        Org__Packetbroker__V3__DownlinkMessage *msg,
                        const uint8_t downlink_token[8], const pb_route_stamp_t *st)
{
    org__packetbroker__v3__routed_downlink_message__init(out);
    out->time = st->time;
    out->id = st->id;
    out->home_network_net_id = req->home_network_net_id;
    out->home_network_cluster_id = req->home_network_cluster_id;
    out->home_network_tenant_id = req->home_network_tenant_id;
    out->forwarder_net_id = req->forwarder_net_id;
    out->forwarder_cluster_id = req->forwarder_cluster_id;
    out->forwarder_tenant_id = req->forwarder_tenant_id;
    msg->downlink_token.data = (uint8_t *)downlink_token;
    msg->downlink_token.len = 8;
    out->message = msg;
    out->n_hops = st->n_hops;
    out->hops = st->hops;
}

uint8_t *pb_routed_encode_uplink(bool with_metadata, void *arg, size_t *len)
{
    Org__Packetbroker__V3__RoutedUplinkMessage *routed = arg;
    Org__Packetbroker__V3__UplinkMessage *um = routed->message;
    Org__Packetbroker__V3__UplinkMessage__GatewayMetadata *keep = um->gateway_metadata;
    if (!with_metadata)
        um->gateway_metadata = NULL;
    *len = protobuf_c_message_get_packed_size(&routed->base);
    uint8_t *buf = malloc(*len ? *len : 1);
    if (buf)
        protobuf_c_message_pack(&routed->base, buf);
    um->gateway_metadata = keep;
    return buf;
}
