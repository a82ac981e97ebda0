/* admin_gateways.c — GET /api/v1/gateways[?net_id=XXXXXX]: the gateways whose locations the hub
 * has seen (gateways.h), for the console's map, with each forwarder's visibility
 * setting enforced here (Network.gateway_visibility / gateway_precision_m, roamhub.proto):
 *
 *   - the operator, and a member for its own NetID's gateways: every entry, exact;
 *   - a member for another network's gateways: HIDDEN (the default, also when the network has no
 *     record) -> not listed, only counted in "not_shown"; APPROXIMATE -> the location snapped to
 *     the centre of a grid cell of gateway_precision_m metres (default 10 km) and no gateway ID;
 *     EXACT -> as reported.
 *
 * Needs RIGHT_READ_TRAFFIC (the entries are traffic metadata). Answer:
 *   {"gateways": [...admin_gateways_view's objects...], "count": N, "not_shown": K,
 *    "store": {"entries", "max", "evicted"}}   (store: operator only)
 *
 * The gateways come from GWInfo and from Packet Broker Mapper updates (gateways.h); the same
 * visibility applies to both.
 */
#include "admin_internal.h"

#include "admin_gateways.h"
#include "gateways.h"
#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_time.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIS_CACHE 64

typedef struct vis_cache {
    uint32_t net[VIS_CACHE];
    gw_vis_t v[VIS_CACHE];
    size_t n;
    rp_db_t *db;
} vis_cache_t;

/* The forwarder network's visibility setting and name from the routing table (one rp_get per
 * NetID per request; at most VIS_CACHE distinct NetIDs are cached, further ones are read each
 * time). */
static void vis_from_db(void *arg, uint32_t net_id, gw_vis_t *out)
{
    vis_cache_t *c = arg;
    for (size_t i = 0; i < c->n; i++)
        if (c->net[i] == net_id) {
            *out = c->v[i];
            return;
        }
    gw_vis_t v = {.visibility = -1};
    Roamhub__V1__Network key = ROAMHUB__V1__NETWORK__INIT;
    key.net_id = net_id;
    ProtobufCMessage *m = NULL;
    if (rp_get(c->db, RP_KIND_NETWORK, &key.base, &m, NULL) == RH_OK && m) {
        const Roamhub__V1__Network *n = (const void *)m;
        v.visibility = (int)n->gateway_visibility;
        v.precision_m = n->gateway_precision_m;
        snprintf(v.name, sizeof v.name, "%s", n->name ? n->name : "");
        protobuf_c_message_free_unpacked(m, NULL);
    }
    if (c->n < VIS_CACHE) {
        c->net[c->n] = net_id;
        c->v[c->n++] = v;
    }
    *out = v;
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

static const char *source_name(unsigned s)
{
    return s == GW_SOURCE_MAPPER ? "mapper" : "gwinfo";
}

/* One gateway as JSON; `exact` = 0: approximate (no identifying fields). NULL: out of memory. */
static cJSON *gateway_json(const gw_entry_t *e, const gw_vis_t *v, unsigned precision, int own,
                           int64_t now_ms)
{
    cJSON *g = cJSON_CreateObject();
    if (!g)
        return NULL;
    char id[17], net[7], t1[ADMIN_TIME_TEXT], t2[ADMIN_TIME_TEXT];
    if (!precision) {
        if (e->id_len == 4) /* lower-case hex like rh_eui64_format */
            snprintf(id, sizeof id, "%08llx", (unsigned long long)(e->id & 0xffffffffu));
        else
            rh_eui64_format(e->id, id);
        cJSON_AddStringToObject(g, "id", id);
        if (e->pb_id[0])
            cJSON_AddStringToObject(g, "pb_id", e->pb_id);
        if (e->tenant_id[0])
            cJSON_AddStringToObject(g, "tenant_id", e->tenant_id);
    }
    lw_netid_format(e->net_id, net, 0);
    cJSON_AddStringToObject(g, "net_id", net);
    cJSON_AddStringToObject(g, "network", v->name);
    cJSON_AddNumberToObject(g, "lat", round(e->lat * 1e6) / 1e6);
    cJSON_AddNumberToObject(g, "lon", round(e->lon * 1e6) / 1e6);
    if (!precision && (e->flags & GW_F_ALT))
        cJSON_AddNumberToObject(g, "altitude", round(e->alt * 10) / 10);
    cJSON_AddNumberToObject(g, "precision_m", precision);
    admin_time_text(e->first_seen_ms, t1);
    admin_time_text(e->last_seen_ms, t2);
    cJSON_AddStringToObject(g, "first_seen", t1);
    cJSON_AddStringToObject(g, "last_seen", t2);
    cJSON_AddNumberToObject(g, "uplinks", (double)e->uplinks);
    cJSON_AddBoolToObject(g, "own", own);
    int on = gw_entry_online(e, now_ms);
    if (on < 0)
        cJSON_AddNullToObject(g, "online");
    else
        cJSON_AddBoolToObject(g, "online", on);
    cJSON *src = cJSON_AddArrayToObject(g, "sources");
    if (src) {
        if (e->sources & GW_SOURCE_GWINFO)
            cJSON_AddItemToArray(src, cJSON_CreateString("gwinfo"));
        if (e->sources & GW_SOURCE_MAPPER)
            cJSON_AddItemToArray(src, cJSON_CreateString("mapper"));
    }
    cJSON_AddStringToObject(g, "last_source", source_name(e->last_source));
    if (e->flags & GW_F_RX_RATE)
        cJSON_AddNumberToObject(g, "rx_rate", round(e->rx_rate * 10) / 10);
    if (e->flags & GW_F_TX_RATE)
        cJSON_AddNumberToObject(g, "tx_rate", round(e->tx_rate * 10) / 10);
    return g;
}

int admin_gateways_view(cJSON *arr, const gw_entry_t *all, size_t n, uint32_t only,
                        const gw_viewer_t *who, gw_vis_lookup_fn lookup, void *arg,
                        int64_t now_ms, size_t *shown, size_t *not_shown)
{
    for (size_t i = 0; i < n; i++) {
        gw_entry_t e = all[i];
        if ((only != RP_ANY && e.net_id != only) || !(e.flags & GW_F_LOCATION))
            continue; /* a Mapper update without a location has nothing to draw */
        int own = !who->is_operator && who->net_id == e.net_id;
        gw_vis_t v;
        lookup(arg, e.net_id, &v);
        unsigned precision = 0;
        if (!who->is_operator && !own) {
            if (v.visibility == ROAMHUB__V1__GATEWAY_VISIBILITY__GATEWAY_VISIBILITY_EXACT) {
                precision = 0;
            } else if (v.visibility ==
                       ROAMHUB__V1__GATEWAY_VISIBILITY__GATEWAY_VISIBILITY_APPROXIMATE) {
                precision = v.precision_m ? v.precision_m : GW_VIEW_DEFAULT_PRECISION_M;
                snap(&e.lat, &e.lon, precision);
            } else {
                (*not_shown)++;
                continue;
            }
        }
        cJSON *g = gateway_json(&e, &v, precision, own || who->is_operator, now_ms);
        if (!g)
            return RH_ENOMEM;
        cJSON_AddItemToArray(arr, g);
        (*shown)++;
    }
    return RH_OK;
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
    size_t shown = 0, not_shown = 0;
    gw_viewer_t who = {.is_operator = r->p.is_operator, .net_id = r->p.net_id};
    if (cache)
        cache->db = r->a->db;
    if (!cache || !o || !arr ||
        admin_gateways_view(arr, all, n, only, &who, vis_from_db, cache, rh_real_ms(), &shown,
                            &not_shown) != RH_OK) {
        free(all);
        free(cache);
        cJSON_Delete(o);
        admin_reply_error(r, 503, "gateways: out of memory");
        return;
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
