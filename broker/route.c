/*
 * route.c — the routing decision (see route.h). Pure: reads the routing-table snapshot and the
 * registry, writes only the caller's route_decision_t.
 *
 * Uplinks are routed by what the frame says, not by ReceiverID alone (ChirpStack puts its
 * primary agreement NetID there). The routing policy is always the forwarder's: uplink classes
 * are checked with policy(sender -> home), downlink classes with policy(receiver -> sender), and
 * an answer carrying a downlink with policy(forwarder -> home).downlink.
 */
#include "route.h"

#include "lw_frame.h"
#include "lw_netid.h"
#include "rh_hex.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

rp_class_t route_class_of(int c)
{
    switch ((lw_class_t)c) {
    case LW_CLASS_UP_JOIN_REQUEST:
    case LW_CLASS_UP_REJOIN_REQUEST:
        return RP_CLASS_JOIN_REQUEST;
    case LW_CLASS_UP_MAC_DATA:
        return RP_CLASS_UPLINK_MAC;
    case LW_CLASS_UP_APP_DATA:
        return RP_CLASS_UPLINK_APP;
    case LW_CLASS_DOWN_JOIN_ACCEPT:
        return RP_CLASS_JOIN_ACCEPT;
    case LW_CLASS_DOWN_MAC_DATA:
        return RP_CLASS_DOWNLINK_MAC;
    case LW_CLASS_DOWN_APP_DATA:
        return RP_CLASS_DOWNLINK_APP;
    default:
        return RP_CLASS_OTHER;
    }
}

uint64_t route_answerer_id(const peer_registry_t *reg, const peer_endpoint_t *ep)
{
    const peer_member_t *m = NULL;
    peer_registry_member_by_netid(reg, ep->net_id, ep->tenant_id, &m);
    return m ? peer_hash_str(m->id) : peer_hash_str(ep->id);
}

static const char *class_text(rp_class_t c)
{
    switch (c) {
    case RP_CLASS_JOIN_REQUEST:
        return "uplink join_request";
    case RP_CLASS_UPLINK_MAC:
        return "uplink mac_data";
    case RP_CLASS_UPLINK_APP:
        return "uplink application_data";
    case RP_CLASS_JOIN_ACCEPT:
        return "downlink join_accept";
    case RP_CLASS_DOWNLINK_MAC:
        return "downlink mac_data";
    case RP_CLASS_DOWNLINK_APP:
        return "downlink application_data";
    default:
        return "other messages";
    }
}

static const char *netid_text(uint32_t netid, char out[7])
{
    lw_netid_format(netid, out, 0);
    return out;
}

/* Makes d a refusal; returns false so deciders can `return refuse(...)`. */
__attribute__((format(printf, 4, 5))) static bool refuse(route_decision_t *d, bi_result_code_t code,
                                                         rp_outcome_t outcome, const char *fmt, ...)
{
    d->action = ROUTE_REFUSE;
    d->code = code;
    d->outcome = outcome;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->description, sizeof d->description, fmt, ap);
    va_end(ap);
    return false;
}

/* The receiver endpoint of party `to`; refuses when there is none or it is the sender's own. */
static bool pick_receiver(const route_msg_t *m, const peer_registry_t *reg, route_decision_t *d,
                          const rp_party_t *to, bi_result_code_t no_route_code)
{
    char n[7];
    if (m->sender &&
        peer_member_may_send_as(m->sender, to->net_id, to->tenant_id[0] ? to->tenant_id : NULL))
        return refuse(d, no_route_code, RP_OUT_NO_ROUTE,
                      "the destination %s is the sender's own network: not routed back",
                      netid_text(to->net_id, n));
    if (!m->sender && m->any_transport && to->net_id == m->sender_party.net_id)
        return refuse(d, no_route_code, RP_OUT_NO_ROUTE,
                      "the destination %s is the sender's own network: not routed back",
                      netid_text(to->net_id, n));
    const peer_endpoint_t *ep = NULL;
    peer_registry_endpoint_by_netid(reg, to->net_id, to->tenant_id, &ep);
    if (!ep && m->any_transport) {
        d->recv_ep = NULL; /* the front end finds the party's own transport */
        d->code = no_route_code; /* what to answer if that transport has no way there */
        return true;
    }
    if (!ep)
        return refuse(d, no_route_code, RP_OUT_NO_ROUTE, "network %s has no endpoint at this hub",
                      netid_text(to->net_id, n));
    d->recv_ep = ep;
    return true;
}

static bool table_unavailable(route_decision_t *d)
{
    return refuse(d, BI_RC_OTHER, RP_OUT_UNREACHABLE, "hub routing table unavailable");
}

/* policy(d->fwd -> d->home) for d->cls; refuses on denial. v receives the verdict. */
static bool check_policy(rp_reader_t *r, route_decision_t *d, rp_verdict_t *v)
{
    if (rp_policy_check(r, d->cls, &d->fwd, &d->home, v) != RH_OK)
        return table_unavailable(d);
    if (v->allow)
        return true;
    char f[7], h[7];
    netid_text(d->fwd.net_id, f);
    netid_text(d->home.net_id, h);
    if (v->reason == RP_DENY_NO_POLICY)
        return refuse(d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED,
                      "no routing policy from forwarder %s%s%s to home network %s%s%s", f,
                      d->fwd.tenant_id[0] ? "/" : "", d->fwd.tenant_id, h,
                      d->home.tenant_id[0] ? "/" : "", d->home.tenant_id);
    return refuse(d, BI_RC_NO_ROAMING_AGREEMENT, RP_OUT_POLICY_DENIED,
                  "routing policy %s -> %s does not allow %s", f, h, class_text(d->cls));
}

static bool decode_phy(const route_msg_t *m, route_decision_t *d, lw_frame_t *fr)
{
    rh_diag_t dg;
    int rc = lw_frame_decode(m->phy, m->phy_len, fr, &dg);
    if (rc == RH_OK)
        return true;
    return refuse(d, rc == RH_ESIZE ? BI_RC_FRAME_SIZE_ERROR : m->malformed, RP_OUT_MALFORMED,
                  "PHYPayload: %s", dg.text);
}

/* By ReceiverID (a NetID), then the forwarder's policy with its stripping. */
static bool uplink_by_receiver(const route_msg_t *m, const peer_registry_t *reg,
                               route_decision_t *d, bi_result_code_t no_route_code)
{
    if (m->receiver_is_eui)
        return refuse(d, no_route_code, RP_OUT_NO_ROUTE, "ReceiverID is not a NetID");
    rp_party_set(&d->home, (uint32_t)m->receiver, NULL, NULL);
    return pick_receiver(m, reg, d, &d->home, no_route_code);
}

static bool route_uplink(const route_msg_t *m, rp_reader_t *r, const peer_registry_t *reg,
                         route_decision_t *d)
{
    bool ok;
    if (!m->phy) {
        /* FRMPayload (handover roaming): no frame to route by */
        d->cls = RP_CLASS_OTHER;
        ok = uplink_by_receiver(m, reg, d, BI_RC_UNKNOWN_RECEIVER);
    } else {
        lw_frame_t fr;
        if (!decode_phy(m, d, &fr))
            return false;
        if (!lw_mtype_is_uplink(fr.mtype))
            return refuse(d, m->malformed, RP_OUT_MALFORMED,
                          "PHYPayload: %s is not an uplink frame", lw_mtype_name(fr.mtype));
        d->cls = route_class_of(lw_frame_class(&fr));
        if (lw_mtype_is_data(fr.mtype)) {
            rp_block_match_t bm;
            if (rp_lookup_devaddr(r, fr.u.data.devaddr, &bm) != RH_OK || !bm.found) {
                char da[9];
                lw_devaddr_format(fr.u.data.devaddr, da, 0);
                return refuse(d, BI_RC_UNKNOWN_DEV_ADDR, RP_OUT_NO_ROUTE,
                              "DevAddr %s is in no DevAddr block at this hub", da);
            }
            d->home = bm.owner;
            ok = pick_receiver(m, reg, d, &d->home, BI_RC_UNKNOWN_DEV_ADDR);
        } else if (fr.mtype == LW_MTYPE_JOIN_REQUEST) {
            rp_join_match_t jm;
            if (rp_lookup_join(r, fr.u.join_request.join_eui, fr.u.join_request.dev_eui, &jm) ==
                    RH_OK &&
                jm.found && !jm.via_join_server) {
                d->home = jm.home;
                ok = pick_receiver(m, reg, d, &d->home, BI_RC_UNKNOWN_DEV_EUI);
            } else if (m->receiver_is_eui) {
                /* no join route and no home NetID named: the forwarder must ask (HomeNSReq) */
                char je[17], de[17];
                rh_eui64_format(fr.u.join_request.join_eui, je);
                rh_eui64_format(fr.u.join_request.dev_eui, de);
                return refuse(d, BI_RC_UNKNOWN_DEV_EUI, RP_OUT_NO_ROUTE,
                              "no join route for JoinEUI %s DevEUI %s", je, de);
            } else {
                /* the forwarder resolved the home network itself (HomeNSReq): ReceiverID */
                ok = uplink_by_receiver(m, reg, d, BI_RC_UNKNOWN_DEV_EUI);
            }
        } else {
            ok = uplink_by_receiver(m, reg, d, BI_RC_UNKNOWN_RECEIVER); /* rejoin-request */
        }
    }
    if (!ok)
        return false;
    rp_verdict_t v;
    if (!check_policy(r, d, &v))
        return false;
    d->strip = (v.strip_signal_quality ? ROUTE_STRIP_SIGNAL : 0) |
               (v.strip_localization ? ROUTE_STRIP_LOCATION : 0);
    return true;
}

/* Downlink from the home network (sender) to a forwarder (ReceiverID). */
static bool route_downlink(const route_msg_t *m, rp_reader_t *r, const peer_registry_t *reg,
                           route_decision_t *d)
{
    d->home = m->sender_party; /* the sender is the home network */
    memset(&d->fwd, 0, sizeof d->fwd);
    if (m->receiver_is_eui)
        return refuse(d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE, "ReceiverID is not a NetID");
    rp_party_set(&d->fwd, (uint32_t)m->receiver, NULL, NULL);
    d->cls = RP_CLASS_OTHER;
    if (m->phy) {
        lw_frame_t fr;
        if (!decode_phy(m, d, &fr))
            return false;
        if (lw_mtype_is_uplink(fr.mtype) || fr.mtype == LW_MTYPE_PROPRIETARY)
            return refuse(d, m->malformed, RP_OUT_MALFORMED,
                          "PHYPayload: %s is not a downlink frame", lw_mtype_name(fr.mtype));
        d->cls = route_class_of(lw_frame_class(&fr));
    }
    if (!pick_receiver(m, reg, d, &d->fwd, BI_RC_UNKNOWN_RECEIVER))
        return false;
    rp_verdict_t v;
    return check_policy(r, d, &v);
}

/* PRStop, Profile, notifications, JoinReq and the like: by ReceiverID. Allowed when the
 * forwarder's policy in either direction lets anything flow between the two networks. */
static bool route_other(const route_msg_t *m, rp_reader_t *r, const peer_registry_t *reg,
                        route_decision_t *d)
{
    d->cls = RP_CLASS_OTHER;
    if (m->receiver_is_eui) {
        const peer_endpoint_t *ep = NULL;
        peer_registry_endpoint_by_join_eui(reg, m->receiver, &ep);
        if (!ep) {
            char je[17];
            rh_eui64_format(m->receiver, je);
            return refuse(d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE,
                          "no Join Server %s at this hub", je);
        }
        d->recv_ep = ep;
        d->home.net_id = ep->net_id;
        return true;
    }
    rp_party_set(&d->home, (uint32_t)m->receiver, NULL, NULL);
    if (!pick_receiver(m, reg, d, &d->home, BI_RC_UNKNOWN_RECEIVER))
        return false;
    rp_verdict_t v;
    if (rp_policy_check(r, RP_CLASS_OTHER, &d->fwd, &d->home, &v) == RH_OK && v.allow)
        return true;
    if (rp_policy_check(r, RP_CLASS_OTHER, &d->home, &d->fwd, &v) == RH_OK && v.allow)
        return true;
    return check_policy(r, d, &v); /* refuses with the forward-direction reason */
}

/* HomeNSReq: answered from a join route to a home network, or relayed to a Join Server. */
static bool route_home_ns(const route_msg_t *m, rp_reader_t *r, const peer_registry_t *reg,
                          route_decision_t *d)
{
    d->cls = RP_CLASS_JOIN_REQUEST;
    if (!m->receiver_is_eui)
        return refuse(d, BI_RC_UNKNOWN_RECEIVER, RP_OUT_NO_ROUTE,
                      "HomeNSReq: ReceiverID must be a JoinEUI");
    rp_join_match_t jm;
    int rc = rp_lookup_join(r, m->receiver, m->dev_eui, &jm);
    if (rc == RH_OK && jm.found && jm.via_join_server) {
        const peer_endpoint_t *ep = NULL;
        peer_registry_endpoint_by_id(reg, jm.join_server_id, &ep);
        if (!ep)
            return refuse(d, BI_RC_UNKNOWN_DEV_EUI, RP_OUT_NO_ROUTE,
                          "the join route's Join Server has no endpoint");
        d->recv_ep = ep;
        return true;
    }
    if (rc != RH_OK || !jm.found) {
        const peer_endpoint_t *ep = NULL;
        peer_registry_endpoint_by_join_eui(reg, m->receiver, &ep);
        if (ep) { /* a Join Server that is a member: ask it */
            d->recv_ep = ep;
            return true;
        }
        char je[17], de[17];
        rh_eui64_format(m->receiver, je);
        rh_eui64_format(m->dev_eui, de);
        return refuse(d, BI_RC_UNKNOWN_DEV_EUI, RP_OUT_NO_ROUTE,
                      "no join route for JoinEUI %s DevEUI %s", je, de);
    }
    d->home = jm.home;
    rp_verdict_t v;
    if (!check_policy(r, d, &v))
        return false;
    d->action = ROUTE_ANSWER;
    d->hnet_id = jm.home.net_id;
    return true;
}

void route_decide(const route_msg_t *m, rp_reader_t *r, const peer_registry_t *reg,
                  route_decision_t *d)
{
    /* every field set explicitly: no memset of the description on the hot path */
    d->action = ROUTE_FORWARD;
    d->kind = m->kind;
    d->cls = RP_CLASS_OTHER;
    d->fwd = m->sender_party;
    d->home.net_id = 0;
    d->home.tenant_id[0] = '\0';
    d->recv_ep = NULL;
    d->strip = 0;
    d->hnet_id = 0;
    d->code = BI_RC_SUCCESS;
    d->outcome = RP_OUT_FORWARDED;
    d->description[0] = '\0';
    if (rp_reader_begin(r) != RH_OK) {
        table_unavailable(d);
        return;
    }
    switch (m->kind) {
    case ROUTE_UPLINK:
        route_uplink(m, r, reg, d);
        break;
    case ROUTE_DOWNLINK:
        route_downlink(m, r, reg, d);
        break;
    case ROUTE_HOME_NS:
        route_home_ns(m, r, reg, d);
        break;
    default:
        route_other(m, r, reg, d);
        break;
    }
    rp_reader_end(r);
    if (d->action == ROUTE_REFUSE) {
        d->recv_ep = NULL;
        d->strip = 0;
    }
}

bool route_answer_downlink_refused(const route_decision_t *d, const uint8_t *phy, size_t len,
                                   rp_reader_t *r, char *desc, size_t desc_cap)
{
    if (d->kind != ROUTE_UPLINK || !phy)
        return false;
    lw_frame_t fr;
    if (lw_frame_decode(phy, len, &fr, NULL) != RH_OK || lw_mtype_is_uplink(fr.mtype))
        return false;
    rp_class_t cls = route_class_of(lw_frame_class(&fr));
    if (rp_reader_begin(r) != RH_OK)
        return false;
    rp_verdict_t v;
    int rc = rp_policy_check(r, cls, &d->fwd, &d->home, &v);
    rp_reader_end(r);
    if (rc != RH_OK || v.allow)
        return false;
    char fn[7], hn[7];
    snprintf(desc, desc_cap, "routing policy %s -> %s does not allow %s",
             netid_text(d->fwd.net_id, fn), netid_text(d->home.net_id, hn), class_text(cls));
    return true;
}
