/*
 * pb_mapper.c — org.packetbroker.mapping.v2.Mapper/UpdateGateway (issue 12): The Things Stack's
 * Gateway Server reports each connected gateway (then every 10 min +-20 %) on the agent's
 * mapper address; roamhub stores what it says about location and online state in the hub's
 * gateway store (gateways.h: the console map and /gateways, with the forwarder's visibility
 * setting applied there) and answers Empty.
 *
 * The request's forwarder identity must be covered by the token (pb_service.h); the store checks
 * and keys the rest (gw_store_put: the gateway's EUI, else SHA-256 of its plain ID, the GWInfo.ID
 * rule of the TS002 bridge): a field it refuses is INVALID_ARGUMENT naming it (a location out of
 * range, online true without online_ttl, ...). Satellite locations are stored like terrestrial
 * ones.
 */
#include "pb_service.h"

#include "gateways.h"
#include "metrics.h"
#include "rh_time.h"

#include "google/protobuf/empty.pb-c.h"
#include "packetbroker/mapping_v2.pb-c.h"

#include <string.h>

void pb_mapper_update_gateway(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    worker_t *w = arg;
    pb_identity_t id;
    char sub[129];
    Org__Packetbroker__Mapping__V2__UpdateGatewayRequest *req = (void *)pb_call_begin(
        call, w, &org__packetbroker__mapping__v2__update_gateway_request__descriptor, msg, len,
        &id, sub);
    if (!req)
        return;
    pb_ids_t fwd;
    if (!pb_call_identity(call, w, &id, sub, "forwarder", req->forwarder_net_id,
                          req->forwarder_tenant_id, req->forwarder_cluster_id,
                          PB_RIGHT_WRITE_TRAFFIC, &fwd))
        goto out;
    /* the store checks every field and names it (gw_store_put); NULL store (console off):
     * checked, nothing stored */
    gw_put_t u = {.net_id = fwd.net_id, .tenant_id = fwd.tenant, .online = -1,
                  .source = GW_SOURCE_MAPPER, .now_ms = -1};
    const Org__Packetbroker__V3__GatewayIdentifier *gid = req->forwarder_gateway_id;
    if (gid) {
        u.has_eui = gid->eui != NULL;
        u.eui = gid->eui ? gid->eui->value : 0;
        if (gid->id_case == ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_PLAIN)
            u.plain = gid->plain;
        else if (gid->id_case == ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_HASH) {
            u.hash = gid->hash.data;
            u.hash_len = gid->hash.len;
        }
    }
    const Org__Packetbroker__V3__GatewayLocation *gl =
        req->gateway_location ? req->gateway_location->location : NULL;
    const Org__Packetbroker__V3__Location *loc = NULL;
    if (gl && gl->value_case == ORG__PACKETBROKER__V3__GATEWAY_LOCATION__VALUE_TERRESTRIAL &&
        gl->terrestrial)
        loc = gl->terrestrial->location;
    else if (gl && gl->value_case == ORG__PACKETBROKER__V3__GATEWAY_LOCATION__VALUE_SATELLITE &&
             gl->satellite)
        loc = gl->satellite->location;
    if (loc) {
        u.has_location = 1;
        u.lat = loc->latitude;
        u.lon = loc->longitude;
        u.has_alt = loc->altitude != 0.0; /* proto3 double: 0 = not sent */
        u.alt = loc->altitude;
    }
    if (req->online)
        u.online = req->online->value ? 1 : 0;
    if (req->online_ttl)
        u.online_ttl_ms = req->online_ttl->seconds * 1000 + req->online_ttl->nanos / 1000000;
    rh_diag_t d = {{0}};
    int rc = gw_store_put(atomic_load_explicit(&gateways_global, memory_order_acquire), &u, &d);
    if (rc == RH_EINVAL) {
        grpc_call_finish(call, GRPC_INVALID_ARGUMENT, d.text);
        goto out;
    }
    if (rc != RH_OK) {
        grpc_call_finish(call, GRPC_INTERNAL, "gateway store: cannot compute the gateway ID");
        goto out;
    }
    metrics_event(w->metrics, "pb_gateway_update");
    Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
    pb_call_reply(call, &e.base);
out:
    protobuf_c_message_free_unpacked(&req->base, NULL);
}
