/* admin_gateways.c — GET /api/v1/gateways[?net_id=XXXXXX]: the gateways whose locations the hub
 * has seen in GWInfo (gateways.h), for the console's map, with each forwarder's visibility
 * setting enforced here (Network.gateway_visibility / gateway_precision_m, roamhub.proto):
 *
 *   - the operator, and a member for its own NetID's gateways: every entry, exact;
 *   - a member for another network's gateways: HIDDEN (the default, also when the network has no
 *     record) -> not listed, only counted in "not_shown"; APPROXIMATE -> the location snapped to
 *     the centre of a grid cell of gateway_precision_m metres (default 10 km) and no gateway ID;
 *     EXACT -> as reported.
 *
 * Needs RIGHT_READ_TRAFFIC (the entries are traffic metadata). Answer:
 *   {"gateways": [{"id", "net_id", "network", "lat", "lon", "precision_m", "first_seen",
 *                  "last_seen", "uplinks", "own"}], "count": N, "not_shown": K,
 *    "store": {"entries", "max", "evicted"}}   (store: operator only)
 */
#include "admin_internal.h"

#include "gateways.h"
#include "lw_netid.h"
#include "rh_hex.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PRECISION_M 10000u
#define VIS_CACHE 64

typedef struct vis {
    uint32_t net_id;
    int visibility; /* Roamhub__V1__GatewayVisibility, -1 = no network record */
    unsigned precision_m;
    char name[257];
} vis_t;

typedef struct vis_cache {
    vis_t v[VIS_CACHE];
    size_t n;
    rp_db_t *db;
} vis_cache_t;

/* The forwarder network's visibility setting and name (one rp_get per NetID per request; at
 * most VIS_CACHE distinct NetIDs are cached, further ones are read each time). */
static vis_t vis_of(vis_cache_t *c, uint32_t net_id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->v[i].net_id == net_id)
            return c->v[i];
    vis_t v = {.net_id = net_id, .visibility = -1};
    Roamhub__V1__Network key = ROAMHUB__V1__NETWORK__INIT;
    key.net_id = net_id;
    ProtobufCMessage *m = NULL;
    if (rp_get(c->db, RP_KIND_NETWORK, &key.base, &m, NULL) == RH_OK && m) {
        const Roamhub__V1__Network *n = (const void *)m;
        v.visibility = (int)n->gateway_visibility;
        v.precision_m = n->gateway_precision_m ? n->gateway_precision_m : DEFAULT_PRECISION_M;
        snprintf(v.name, sizeof v.name, "%s", n->name ? n->name : "");
        protobuf_c_message_free_unpacked(m, NULL);
    }
    if (c->n < VIS_CACHE)
        c->v[c->n++] = v;
    return v;
}

/* Centre of the grid cell (size p metres) holding (lat, lon). */
static void snap(double *lat, double *lon, unsigned p)
{
    const double m_per_deg = 111320.0;
    double dlat = (double)p / m_per_deg;
    double la = (floor(*lat / dlat) + 0.5) * dlat;
    if (la > 90.0)
        la = 90.0;
    if (la < -90.0)
        la = -90.0;
    double c = cos(la * M_PI / 180.0);
    double dlon = c > 0.01 ? (double)p / (m_per_deg * c) : 360.0;
    if (dlon > 360.0)
        dlon = 360.0;
    double lo = (floor((*lon + 180.0) / dlon) + 0.5) * dlon - 180.0;
    if (lo > 180.0)
        lo = 180.0;
    *lat = la;
    *lon = lo;
}

void admin_gateways_handle(admin_req_t *r)
{
    if (strcmp(r->method, "GET") || r->nseg != 1) {
        admin_reply_error(r, 405, "gateways: GET /api/v1/gateways");
        return;
    }
    if (!admin_has_right(&r->p, ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC)) {
        admin_reply_error(r, 403, "gateways: your key lacks RIGHT_READ_TRAFFIC");
        return;
    }
    uint32_t only;
    if (admin_query_netid(r, "net_id", &only))
        return;
    gw_store_t *s = atomic_load(&gateways_global);
    if (!s) {
        admin_reply_error(r, 404, "gateways: the console is disabled (console.enabled)");
        return;
    }
    gw_entry_t *all = NULL;
    size_t n = gw_store_snapshot(s, &all);
    vis_cache_t *cache = calloc(1, sizeof *cache);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "gateways");
    if (!cache || !o || !arr) {
        free(all);
        free(cache);
        cJSON_Delete(o);
        admin_reply_error(r, 503, "gateways: out of memory");
        return;
    }
    cache->db = r->a->db;
    size_t shown = 0, not_shown = 0;
    for (size_t i = 0; i < n; i++) {
        gw_entry_t e = all[i];
        if ((only != RP_ANY && e.net_id != only) || !(e.flags & GW_F_LOCATION))
            continue; /* a Mapper update without a location has nothing to draw */
        int own = !r->p.is_operator && r->p.net_id == e.net_id;
        vis_t v = vis_of(cache, e.net_id);
        unsigned precision = 0;
        if (!r->p.is_operator && !own) {
            if (v.visibility == ROAMHUB__V1__GATEWAY_VISIBILITY__GATEWAY_VISIBILITY_EXACT) {
                precision = 0;
            } else if (v.visibility ==
                       ROAMHUB__V1__GATEWAY_VISIBILITY__GATEWAY_VISIBILITY_APPROXIMATE) {
                precision = v.precision_m;
                snap(&e.lat, &e.lon, precision);
            } else {
                not_shown++;
                continue;
            }
        }
        cJSON *g = cJSON_CreateObject();
        char id[17], net[7], t1[ADMIN_TIME_TEXT], t2[ADMIN_TIME_TEXT];
        if (!precision) {
            if (e.id_len == 4) /* lower-case hex like rh_eui64_format */
                snprintf(id, sizeof id, "%08llx", (unsigned long long)(e.id & 0xffffffffu));
            else
                rh_eui64_format(e.id, id);
            cJSON_AddStringToObject(g, "id", id);
        }
        lw_netid_format(e.net_id, net, 0);
        cJSON_AddStringToObject(g, "net_id", net);
        cJSON_AddStringToObject(g, "network", v.name);
        cJSON_AddNumberToObject(g, "lat", round(e.lat * 1e6) / 1e6);
        cJSON_AddNumberToObject(g, "lon", round(e.lon * 1e6) / 1e6);
        cJSON_AddNumberToObject(g, "precision_m", precision);
        admin_time_text(e.first_seen_ms, t1);
        admin_time_text(e.last_seen_ms, t2);
        cJSON_AddStringToObject(g, "first_seen", t1);
        cJSON_AddStringToObject(g, "last_seen", t2);
        cJSON_AddNumberToObject(g, "uplinks", (double)e.uplinks);
        cJSON_AddBoolToObject(g, "own", own || r->p.is_operator);
        cJSON_AddItemToArray(arr, g);
        shown++;
    }
    cJSON_AddNumberToObject(o, "count", (double)shown);
    cJSON_AddNumberToObject(o, "not_shown", (double)not_shown);
    if (r->p.is_operator) {
        cJSON *st = cJSON_AddObjectToObject(o, "store");
        cJSON_AddNumberToObject(st, "entries", (double)gw_store_count(s));
        cJSON_AddNumberToObject(st, "max", r->a->hub->cfg.console_gateways_max);
        cJSON_AddNumberToObject(st, "evicted", (double)gw_store_evicted(s));
    }
    free(all);
    free(cache);
    admin_reply_json(r, 200, o);
}
