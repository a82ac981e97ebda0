/* pb_filter.c — Packet Broker subscription filters and metadata stripping (see pb_filter.h). */
#include "pb_filter.h"

#include "lw_frame.h"
#include "route.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FILTERS 64
#define MAX_ITEMS 256

typedef struct pb_range {
    uint32_t low, high;
} pb_range_t;

typedef struct pb_euip {
    uint64_t join_eui, dev_eui;
    uint32_t join_len, dev_len;
} pb_euip_t;

typedef enum { F_ANY = 0, F_MAC, F_JOIN } fkind_t;

typedef struct pb_filter {
    fkind_t kind;
    int metadata;  /* -1 unset, 0 false, 1 true */
    int confirmed; /* mac: -1 unset, 0/1 */
    int f_opts;    /* mac: -1 unset, 0/1 */
    size_t n_prefix, n_range, n_eui;
    struct {
        uint32_t value, length;
    } prefix[MAX_ITEMS];
    pb_range_t range[MAX_ITEMS];
    pb_euip_t eui[MAX_ITEMS];
} pb_filter_t;

struct pb_filter_set {
    size_t n;
    pb_filter_t f[];
};

int pb_uplink_facts(const uint8_t *phy, size_t len, pb_uplink_facts_t *o, rh_diag_t *d)
{
    memset(o, 0, sizeof *o);
    lw_frame_t fr;
    int rc = lw_frame_decode(phy, len, &fr, d);
    if (rc)
        return rc;
    if (fr.mtype == LW_MTYPE_JOIN_REQUEST) {
        o->is_join = true;
        o->join_eui = fr.u.join_request.join_eui;
        o->dev_eui = fr.u.join_request.dev_eui;
    } else if (fr.mtype == LW_MTYPE_UNCONFIRMED_UP || fr.mtype == LW_MTYPE_CONFIRMED_UP) {
        o->is_data = true;
        o->confirmed = fr.mtype == LW_MTYPE_CONFIRMED_UP;
        o->dev_addr = fr.u.data.devaddr;
        o->f_opts = fr.u.data.fopts_len > 0;
        o->f_port = fr.u.data.has_fport ? fr.u.data.fport : 0;
    } else if (!lw_mtype_is_uplink(fr.mtype)) {
        return rh_diag_fail(d, RH_EINVAL, "PHYPayload: %s is not an uplink frame",
                            lw_mtype_name(fr.mtype));
    }
    return RH_OK;
}

bool pb_devaddr_prefix_match(uint32_t dev_addr, uint32_t value, uint32_t length)
{
    if (length == 0)
        return true;
    if (length >= 32)
        return dev_addr == value;
    uint32_t mask = ~0u << (32 - length);
    return (dev_addr & mask) == (value & mask);
}

static bool eui_match(uint64_t eui, uint64_t value, uint32_t length)
{
    if (length == 0)
        return true;
    if (length >= 64)
        return eui == value;
    uint64_t mask = ~0ull << (64 - length);
    return (eui & mask) == (value & mask);
}

static int boolv(const Google__Protobuf__BoolValue *b)
{
    return b ? (b->value ? 1 : 0) : -1;
}

int pb_filter_set_new(Org__Packetbroker__V3__RoutingFilter *const *fs, size_t n,
                      pb_filter_set_t **out, rh_diag_t *d)
{
    *out = NULL;
    if (n > MAX_FILTERS)
        return rh_diag_fail(d, RH_EINVAL, "filters: more than %d", MAX_FILTERS);
    pb_filter_set_t *s = calloc(1, sizeof *s + n * sizeof(pb_filter_t));
    if (!s)
        return RH_ENOMEM;
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        const Org__Packetbroker__V3__RoutingFilter *in = fs[i];
        pb_filter_t *f = &s->f[i];
        f->metadata = boolv(in->gateway_metadata);
        f->confirmed = f->f_opts = -1;
        if (in->message_case == ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_MAC && in->mac) {
            const Org__Packetbroker__V3__RoutingFilter__MACPayload *m = in->mac;
            f->kind = F_MAC;
            f->confirmed = boolv(m->confirmed);
            f->f_opts = boolv(m->f_opts);
            if (m->n_dev_addr_prefixes > MAX_ITEMS || m->n_f_port_ranges > MAX_ITEMS) {
                pb_filter_set_free(s);
                return rh_diag_fail(d, RH_EINVAL, "filters[%zu].mac: more than %d prefixes or "
                                    "FPort ranges", i, MAX_ITEMS);
            }
            for (size_t k = 0; k < m->n_dev_addr_prefixes; k++) {
                const Org__Packetbroker__V3__DevAddrPrefix *p = m->dev_addr_prefixes[k];
                if (p->length > 32) {
                    pb_filter_set_free(s);
                    return rh_diag_fail(d, RH_EINVAL, "filters[%zu].mac.dev_addr_prefixes[%zu]."
                                        "length: %u, at most 32", i, k, p->length);
                }
                f->prefix[k].value = p->value;
                f->prefix[k].length = p->length;
            }
            f->n_prefix = m->n_dev_addr_prefixes;
            for (size_t k = 0; k < m->n_f_port_ranges; k++) {
                const Org__Packetbroker__V3__RoutingFilter__MACPayload__FPortRange *r =
                    m->f_port_ranges[k];
                if (r->low > r->high || r->high > 255) {
                    pb_filter_set_free(s);
                    return rh_diag_fail(d, RH_EINVAL, "filters[%zu].mac.f_port_ranges[%zu]: "
                                        "%u..%u is not a range within 0..255", i, k, r->low,
                                        r->high);
                }
                f->range[k].low = r->low;
                f->range[k].high = r->high;
            }
            f->n_range = m->n_f_port_ranges;
        } else if (in->message_case == ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_JOIN_REQUEST &&
                   in->join_request) {
            const Org__Packetbroker__V3__RoutingFilter__JoinRequest *j = in->join_request;
            f->kind = F_JOIN;
            if (j->n_eui_prefixes > MAX_ITEMS) {
                pb_filter_set_free(s);
                return rh_diag_fail(d, RH_EINVAL, "filters[%zu].join_request: more than %d EUI "
                                    "prefixes", i, MAX_ITEMS);
            }
            for (size_t k = 0; k < j->n_eui_prefixes; k++) {
                const Org__Packetbroker__V3__RoutingFilter__JoinRequest__EUIPrefixes *e =
                    j->eui_prefixes[k];
                if (e->join_eui_length > 64 || e->dev_eui_length > 64) {
                    pb_filter_set_free(s);
                    return rh_diag_fail(d, RH_EINVAL, "filters[%zu].join_request.eui_prefixes"
                                        "[%zu]: a length above 64 bits", i, k);
                }
                f->eui[k] = (pb_euip_t){e->join_eui, e->dev_eui, e->join_eui_length,
                                        e->dev_eui_length};
            }
            f->n_eui = j->n_eui_prefixes;
        }
    }
    *out = s;
    return RH_OK;
}

void pb_filter_set_free(pb_filter_set_t *s)
{
    free(s);
}

static bool filter_pass(const pb_filter_t *f, const pb_uplink_facts_t *u)
{
    switch (f->kind) {
    case F_MAC: {
        if (!u->is_data)
            return false;
        if (f->confirmed >= 0 && (bool)f->confirmed != u->confirmed)
            return false;
        if (f->f_opts >= 0 && (bool)f->f_opts != u->f_opts)
            return false;
        bool ok = f->n_prefix == 0;
        for (size_t k = 0; !ok && k < f->n_prefix; k++)
            ok = pb_devaddr_prefix_match(u->dev_addr, f->prefix[k].value, f->prefix[k].length);
        if (!ok)
            return false;
        ok = f->n_range == 0;
        for (size_t k = 0; !ok && k < f->n_range; k++)
            ok = u->f_port >= f->range[k].low && u->f_port <= f->range[k].high;
        return ok;
    }
    case F_JOIN: {
        if (!u->is_join)
            return false;
        bool ok = f->n_eui == 0;
        for (size_t k = 0; !ok && k < f->n_eui; k++)
            ok = eui_match(u->join_eui, f->eui[k].join_eui, f->eui[k].join_len) &&
                 eui_match(u->dev_eui, f->eui[k].dev_eui, f->eui[k].dev_len);
        return ok;
    }
    default:
        return true;
    }
}

bool pb_filter_set_pass(const pb_filter_set_t *s, const pb_uplink_facts_t *u, bool *with_metadata)
{
    if (with_metadata)
        *with_metadata = true;
    if (!s || s->n == 0)
        return true;
    bool pass = false, meta = false;
    for (size_t i = 0; i < s->n; i++) {
        if (!filter_pass(&s->f[i], u))
            continue;
        pass = true;
        meta |= s->f[i].metadata != 0;
    }
    if (with_metadata)
        *with_metadata = pass && meta;
    return pass;
}

static void free_msg(void *m, ProtobufCAllocator *a)
{
    if (m)
        protobuf_c_message_free_unpacked(m, a);
}

void pb_uplink_strip(Org__Packetbroker__V3__UplinkMessage *m, unsigned strip, bool all)
{
    Org__Packetbroker__V3__UplinkMessage__GatewayMetadata *g = m->gateway_metadata;
    if (!g)
        return;
    if (all) {
        free_msg(g, NULL);
        m->gateway_metadata = NULL;
        return;
    }
    if (strip & ROUTE_STRIP_SIGNAL) {
        if (g->signal_quality_case ==
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY_PLAIN_SIGNAL_QUALITY)
            free_msg(g->plain_signal_quality, NULL);
        else if (g->signal_quality_case !=
                 ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY__NOT_SET)
            free_msg(g->encrypted_signal_quality, NULL);
        g->signal_quality_case =
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY__NOT_SET;
        g->plain_signal_quality = NULL;
    }
    if (strip & ROUTE_STRIP_LOCATION) {
        if (g->localization_case ==
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION_PLAIN_LOCALIZATION)
            free_msg(g->plain_localization, NULL);
        else if (g->localization_case !=
                 ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION__NOT_SET)
            free_msg(g->encrypted_localization, NULL);
        g->localization_case =
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION__NOT_SET;
        g->plain_localization = NULL;
    }
}
