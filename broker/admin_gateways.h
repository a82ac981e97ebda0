/*
 * admin_gateways.h — the gateway list of GET /api/v1/gateways as a pure function of the store's
 * entries, the viewer and each forwarder's visibility setting (admin_gateways.c), so the
 * visibility rules can be tested without a running hub (tests/unit/broker/test_admin_gateways.c).
 */
#ifndef RH_ADMIN_GATEWAYS_H
#define RH_ADMIN_GATEWAYS_H

#include "gateways.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define GW_VIEW_DEFAULT_PRECISION_M 10000u

/* A forwarder network's setting: Network.gateway_visibility (Roamhub__V1__GatewayVisibility:
 * 0 hidden, 1 approximate, 2 exact; -1 = no network record, treated as hidden), precision in
 * metres (0 = GW_VIEW_DEFAULT_PRECISION_M) and display name ("" when none). */
typedef struct gw_vis {
    int visibility;
    unsigned precision_m;
    char name[257];
} gw_vis_t;

/* Looks the setting of NetID `net_id` up into *out (always filled). */
typedef void (*gw_vis_lookup_fn)(void *arg, uint32_t net_id, gw_vis_t *out);

typedef struct gw_viewer {
    int is_operator;  /* sees every gateway exactly */
    uint32_t net_id;  /* a member: its NetID (its own gateways are exact) */
} gw_viewer_t;

/* Appends to `arr` one JSON object per entry of all[0..n) that `who` may see and that has a
 * location (GW_F_LOCATION), restricted to forwarder `only` (RP_ANY = all):
 *   {"id", "pb_id", "tenant_id", "net_id", "network", "lat", "lon", "altitude", "precision_m",
 *    "first_seen", "last_seen", "uplinks", "own", "online", "sources", "last_source",
 *    "rx_rate", "tx_rate"}
 * A member sees another network's gateway only with APPROXIMATE (location snapped to the centre
 * of a precision_m grid cell; no id, pb_id, tenant_id, altitude) or EXACT visibility; "online"
 * is true/false, or null when no Mapper update said; "sources" lists "gwinfo"/"mapper";
 * pb_id/tenant_id/altitude/rx_rate/tx_rate appear only when known. `now_ms` (Unix ms) decides
 * whether an online state expired. *shown and *not_shown (entries hidden by visibility) are
 * incremented. Returns 0, or RH_ENOMEM (arr then holds what was added). */
int admin_gateways_view(cJSON *arr, const gw_entry_t *all, size_t n, uint32_t only,
                        const gw_viewer_t *who, gw_vis_lookup_fn lookup, void *arg,
                        int64_t now_ms, size_t *shown, size_t *not_shown);

#endif
