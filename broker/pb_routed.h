/*
 * pb_routed.h — the routed copies the hub hands to Packet Broker subscribers, built from the
 * published requests (issue 12; packetbroker/api v3 routing.proto RoutedUplinkMessage /
 * RoutedDownlinkMessage, shared/reference/packet-broker-api.md sections 3-4 and 6):
 *
 *   PublishUplinkMessageRequest  -> RoutedUplinkMessage: the forwarder's net_id/tenant/cluster as
 *     published, the home network's NetID and tenant from the routing decision (cluster unknown:
 *     ""), the UplinkMessage as published (after the caller's stripping), the router's id, time
 *     and hops;
 *   PublishDownlinkMessageRequest -> RoutedDownlinkMessage: both parties' IDs byte for byte as the
 *     home network sent them (the agent authenticates its gateway token with the forwarder's),
 *     the DownlinkMessage as sent (gateway_uplink_token and forwarder_uplink_token unchanged)
 *     with the router's downlink_token (the agent echoes it in its delivery report; it sets none
 *     itself), the router's id, time and hops.
 *
 * Pure field mapping: the outputs borrow every pointer (request strings and sub-messages, the
 * stamp's), so they live as long as those; nothing is allocated or freed.
 */
#ifndef RH_PB_ROUTED_H
#define RH_PB_ROUTED_H

#include "packetbroker/routing_v1.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the router adds to a routed message. */
typedef struct pb_route_stamp {
    char *id;                          /* router-assigned message ID */
    Google__Protobuf__Timestamp *time; /* when the hub routed it */
    Org__Packetbroker__V3__RouteHop **hops; /* the message's hops, this hub's included */
    size_t n_hops;
} pb_route_stamp_t;

/* Fills *out (initialised here) from `req` for home network (home_net_id, home_tenant). */
void pb_routed_uplink(Org__Packetbroker__V3__RoutedUplinkMessage *out,
                      const Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *req,
                      uint32_t home_net_id, const char *home_tenant, const pb_route_stamp_t *st);

/* Fills *out (initialised here) from `req`. `msg` is the DownlinkMessage to carry: a shallow copy
 * of req->message the caller owns, whose downlink_token is set to `downlink_token` (8 bytes,
 * borrowed) here — the request itself is not changed. */
void pb_routed_downlink(Org__Packetbroker__V3__RoutedDownlinkMessage *out,
                        const Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest *req,
                        Org__Packetbroker__V3__DownlinkMessage *msg,
                        const uint8_t downlink_token[8], const pb_route_stamp_t *st);

/* pb_router_route_uplink's encoder for a RoutedUplinkMessage (arg): its packed bytes (malloc'd,
 * *len; NULL when out of memory), without the uplink's gateway_metadata when with_metadata is
 * false (the subscriber's filter asks for none). The message is left as it was. */
uint8_t *pb_routed_encode_uplink(bool with_metadata, void *arg, size_t *len);

#endif
