/*
 * relay_route.c — routing and policy stage of the relay (see relay.h, relay_internal.h).
 *
 * Uplinks (PRStartReq, XmitDataReq with ULMetaData) are routed by what the frame says, not by
 * ReceiverID alone (ChirpStack puts its primary agreement NetID there): data frames by the
 * longest DevAddr-block match, join-requests by the longest JoinEUI/DevEUI join route, and
 * otherwise by ReceiverID. Downlinks (XmitDataReq with DLMetaData) and everything else go to
 * ReceiverID. The routing policy is always the forwarder's: uplink classes are checked with
 * policy(sender -> home), downlink classes with policy(receiver -> sender), and an answer
 * carrying a downlink (PRStartAns with a join-accept) with policy(forwarder -> home).downlink.
 * Every lookup runs inside one routing-table snapshot per message (rp_reader_begin/end).
 */
#include "relay_internal.h"

#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_log.h"

#include <stdio.h>
#include <string.h>

rp_class_t relay_class_of(lw_class_t c)
{
    switch (c) {
    case LW_CLASS_UP_JOIN_REQUEST:
    case LW_CLASS_UP_REJOIN_REQUEST: return RP_CLASS_JOIN_REQUEST;
    case LW_CLASS_UP_MAC_DATA: return RP_CLASS_UPLINK_MAC;
    case LW_CLASS_UP_APP_DATA: return RP_CLASS_UPLINK_APP;
    case LW_CLASS_DOWN_JOIN_ACCEPT: return RP_CLASS_JOIN_ACCEPT;
    case LW_CLASS_DOWN_MAC_DATA: return RP_CLASS_DOWNLINK_MAC;
    case LW_CLASS_DOWN_APP_DATA: return RP_CLASS_DOWNLINK_APP;
    default: return RP_CLASS_OTHER;
    }
}

uint64_t relay_answerer_id(const peer_registry_t *reg, const peer_endpoint_t *ep)
{
    const peer_member_t *m = NULL;
    peer_registry_member_by_netid(reg, ep->net_id, ep->tenant_id, &m);
    return m ? peer_hash_str(m->id) : peer_hash_str(ep->id);
}

static const char *class_text(rp_class_t c)
{
    switch (c) {
    case RP_CLASS_JOIN_REQUEST: return "uplink join_request";
    case RP_CLASS_UPLINK_MAC: return "uplink mac_data";
    case RP_CLASS_UPLINK_APP: return "uplink application_data";
    case RP_CLASS_JOIN_ACCEPT: return "downlink join_accept";
    case RP_CLASS_DOWNLINK_MAC: return "downlink mac_data";
    case RP_CLASS_DOWNLINK_APP: return "downlink application_data";
    default: return "other messages";
    }
}

static bi_result_code_t malformed(const relay_txn_t *t)
{
    return bi_result_code_malformed(bi_msg_header(t->msg)->version);
}

/* Fails t with the no-route code of its kind of message. */
static bool fail_no_route(relay_txn_t *t, bi_result_code_t code, const char *desc)
{
    relay_txn_fail(t, code, desc, RP_OUT_NO_ROUTE);
    return false;
}

/* Receiver endpoint of a party; fails t when there is none or it is the sender itself. */
static bool pick_receiver(relay_txn_t *t, const rp_party_t *to, bi_result_code_t no_route_code)
{
    char n[7], desc[160];
    if (t->sender && peer_member_may_send_as(t->sender, to->net_id, to->tenant_id[0] ? to->tenant_id : NULL)) {
        snprintf(desc, sizeof desc, "the destination %s is the sender's own network: not routed back",
                 relay_netid_text(to->net_id, n));
        return fail_no_route(t, no_route_code, desc);
    }
    const peer_endpoint_t *ep = NULL;
    peer_registry_endpoint_by_netid(t->reg, to->net_id, to->tenant_id, &ep);
    if (!ep) {
        snprintf(desc, sizeof desc, "network %s has no endpoint at this hub",
                 relay_netid_text(to->net_id, n));
        return fail_no_route(t, no_route_code, desc);
    }
    t->recv_ep = ep;
    t->recv_peer_id = relay_answerer_id(t->reg, ep);
    return true;
}

/* Applies policy(fwd -> home) to t->cls. Fails t on denial. */
static bool check_policy(relay_txn_t *t, rp_verdict_t *v)
{
    rp_reader_t *r = t->w->reader;
    int rc = rp_policy_check(r, t->cls, &t->fwd, &t->home, v);
    if (rc != RH_OK) {
        relay_txn_fail(t, BI_RC_OTHER, "hub routing table unavailable", RP_OUT_UNREACHABLE);
        return false;
    }
    if (v->allow)
        return true;
    char f[7], h[7], desc[200];
    relay_netid_text(t->fwd.net_id, f);
    relay_netid_text(t->home.net_id, h);
    if (v->reason == RP_DENY_NO_POLICY)
        snprintf(desc, sizeof desc, "no routing policy from forwarder %s%s%s to home network %s%s%s",
                 f, t->fwd.tenant_id[0] ? "/" : "", t->fwd.tenant_id, h,
                 t->home.tenant_id[0] ? "/" : "", t->home.tenant_id);
    else
        snprintf(desc, sizeof desc, "routing policy %s -> %s does not allow %s", f, h,
                 class_text(t->cls));
    relay_txn_fail(t, BI_RC_NO_ROAMING_AGREEMENT, desc, RP_OUT_POLICY_DENIED);
    return false;
}

static bool decode_phy(relay_txn_t *t, lw_frame_t *fr)
{
    size_t len;
    const uint8_t *phy = bi_msg_phy_payload(t->msg, &len);
    rh_diag_t d;
    int rc = lw_frame_decode(phy, len, fr, &d);
    if (rc == RH_OK)
        return true;
    char desc[300];
    snprintf(desc, sizeof desc, "PHYPayload: %s", d.text);
    relay_txn_fail(t, rc == RH_ESIZE ? BI_RC_FRAME_SIZE_ERROR : malformed(t), desc,
                   RP_OUT_MALFORMED);
    return false;
}

static bool route_uplink(relay_txn_t *t)
{
    const bi_fields_t *f = bi_msg_fields(t->msg);
    t->dir = RELAY_UPLINK;
    if (!(f->present & BI_F_PHY_PAYLOAD)) {
        /* FRMPayload (handover roaming): no frame to route by */
        t->cls = RP_CLASS_OTHER;
        goto by_receiver;
    }
    lw_frame_t fr;
    if (!decode_phy(t, &fr))
        return false;
    if (!lw_mtype_is_uplink(fr.mtype)) {
        char desc[128];
        snprintf(desc, sizeof desc, "PHYPayload: %s is not an uplink frame", lw_mtype_name(fr.mtype));
        relay_txn_fail(t, malformed(t), desc, RP_OUT_MALFORMED);
        return false;
    }
    t->cls = relay_class_of(lw_frame_class(&fr));
    rp_reader_t *r = t->w->reader;
    if (lw_mtype_is_data(fr.mtype)) {
        rp_block_match_t m;
        if (rp_lookup_devaddr(r, fr.u.data.devaddr, &m) != RH_OK || !m.found) {
            char desc[96], da[9];
            lw_devaddr_format(fr.u.data.devaddr, da, 0);
            snprintf(desc, sizeof desc, "DevAddr %s is in no DevAddr block at this hub", da);
            t->home.net_id = 0;
            return fail_no_route(t, BI_RC_UNKNOWN_DEV_ADDR, desc);
        }
        t->home = m.owner;
        if (!pick_receiver(t, &t->home, BI_RC_UNKNOWN_DEV_ADDR))
            return false;
    } else if (fr.mtype == LW_MTYPE_JOIN_REQUEST) {
        rp_join_match_t m;
        if (rp_lookup_join(r, fr.u.join_request.join_eui, fr.u.join_request.dev_eui, &m) == RH_OK &&
            m.found && !m.via_join_server) {
            t->home = m.home;
            if (!pick_receiver(t, &t->home, BI_RC_UNKNOWN_DEV_EUI))
                return false;
        } else {
            /* the forwarder resolved the home network itself (HomeNSReq): ReceiverID */
            const bi_header_t *h = bi_msg_header(t->msg);
            if (h->receiver_id.kind != BI_ID_NETID) {
                char desc[128], je[17], de[17];
                rh_eui64_format(fr.u.join_request.join_eui, je);
                rh_eui64_format(fr.u.join_request.dev_eui, de);
                snprintf(desc, sizeof desc, "no join route for JoinEUI %s DevEUI %s", je, de);
                return fail_no_route(t, BI_RC_UNKNOWN_DEV_EUI, desc);
            }
            rp_party_set(&t->home, (uint32_t)h->receiver_id.value, NULL, NULL);
            if (!pick_receiver(t, &t->home, BI_RC_UNKNOWN_DEV_EUI))
                return false;
        }
    } else {
        goto by_receiver; /* rejoin-request: ReceiverID */
    }
    rp_verdict_t v;
    if (!check_policy(t, &v))
        return false;
    unsigned strip = (v.strip_signal_quality ? BI_STRIP_SIGNAL : 0) |
                     (v.strip_localization ? BI_STRIP_LOCATION : 0);
    if (strip)
        bi_msg_strip_gwinfo(t->msg, strip);
    return true;

by_receiver : {
    const bi_header_t *h = bi_msg_header(t->msg);
    if (h->receiver_id.kind != BI_ID_NETID)
        return fail_no_route(t, BI_RC_UNKNOWN_RECEIVER, "ReceiverID is not a NetID");
    rp_party_set(&t->home, (uint32_t)h->receiver_id.value, NULL, NULL);
    if (!pick_receiver(t, &t->home, BI_RC_UNKNOWN_RECEIVER))
        return false;
    rp_verdict_t rv;
    if (!check_policy(t, &rv))
        return false;
    if (rv.strip_signal_quality || rv.strip_localization)
        bi_msg_strip_gwinfo(t->msg, (rv.strip_signal_quality ? BI_STRIP_SIGNAL : 0) |
                                        (rv.strip_localization ? BI_STRIP_LOCATION : 0));
    return true;
}
}

/* Downlink from the home network (sender) to a forwarder (ReceiverID). */
static bool route_downlink(relay_txn_t *t)
{
    const bi_header_t *h = bi_msg_header(t->msg);
    const bi_fields_t *f = bi_msg_fields(t->msg);
    t->dir = RELAY_DOWNLINK;
    t->home = t->fwd; /* the sender is the home network */
    memset(&t->fwd, 0, sizeof t->fwd);
    if (h->receiver_id.kind != BI_ID_NETID)
        return fail_no_route(t, BI_RC_UNKNOWN_RECEIVER, "ReceiverID is not a NetID");
    rp_party_set(&t->fwd, (uint32_t)h->receiver_id.value, NULL, NULL);
    t->cls = RP_CLASS_OTHER;
    if (f->present & BI_F_PHY_PAYLOAD) {
        lw_frame_t fr;
        if (!decode_phy(t, &fr))
            return false;
        if (lw_mtype_is_uplink(fr.mtype) || fr.mtype == LW_MTYPE_PROPRIETARY) {
            char desc[128];
            snprintf(desc, sizeof desc, "PHYPayload: %s is not a downlink frame",
                     lw_mtype_name(fr.mtype));
            relay_txn_fail(t, malformed(t), desc, RP_OUT_MALFORMED);
            return false;
        }
        t->cls = relay_class_of(lw_frame_class(&fr));
    }
    if (!pick_receiver(t, &t->fwd, BI_RC_UNKNOWN_RECEIVER))
        return false;
    rp_verdict_t v;
    return check_policy(t, &v);
}

/* PRStop, Profile, notifications, JoinReq and the like: by ReceiverID. Allowed when the
 * forwarder's policy in either direction lets anything flow between the two networks. */
static bool route_by_receiver(relay_txn_t *t)
{
    const bi_header_t *h = bi_msg_header(t->msg);
    t->dir = RELAY_OTHER;
    t->cls = RP_CLASS_OTHER;
    if (h->receiver_id.kind == BI_ID_EUI64) {
        const peer_endpoint_t *ep = NULL;
        peer_registry_endpoint_by_join_eui(t->reg, h->receiver_id.value, &ep);
        if (!ep) {
            char desc[80], je[17];
            rh_eui64_format(h->receiver_id.value, je);
            snprintf(desc, sizeof desc, "no Join Server %s at this hub", je);
            return fail_no_route(t, BI_RC_UNKNOWN_RECEIVER, desc);
        }
        t->recv_ep = ep;
        t->recv_peer_id = relay_answerer_id(t->reg, ep);
        t->home.net_id = ep->net_id;
        return true;
    }
    rp_party_set(&t->home, (uint32_t)h->receiver_id.value, NULL, NULL);
    if (!pick_receiver(t, &t->home, BI_RC_UNKNOWN_RECEIVER))
        return false;
    rp_verdict_t v;
    rp_reader_t *r = t->w->reader;
    if (rp_policy_check(r, RP_CLASS_OTHER, &t->fwd, &t->home, &v) == RH_OK && v.allow)
        return true;
    if (rp_policy_check(r, RP_CLASS_OTHER, &t->home, &t->fwd, &v) == RH_OK && v.allow)
        return true;
    return check_policy(t, &v); /* fails with the forward-direction reason */
}

bool relay_route(relay_txn_t *t)
{
    rp_reader_t *r = t->w->reader;
    if (rp_reader_begin(r) != RH_OK) {
        relay_txn_fail(t, BI_RC_OTHER, "hub routing table unavailable", RP_OUT_UNREACHABLE);
        return false;
    }
    const bi_fields_t *f = bi_msg_fields(t->msg);
    bool go;
    switch (f->hdr.type) {
    case BI_MT_PR_START_REQ:
        go = route_uplink(t);
        break;
    case BI_MT_XMIT_DATA_REQ:
        go = (f->present & BI_F_UL_META) ? route_uplink(t) : route_downlink(t);
        break;
    default:
        go = route_by_receiver(t);
        break;
    }
    rp_reader_end(r);
    return go;
}

bool relay_home_ns(relay_txn_t *t)
{
    const bi_header_t *h = bi_msg_header(t->msg);
    const bi_fields_t *f = bi_msg_fields(t->msg);
    rp_reader_t *r = t->w->reader;
    t->dir = RELAY_OTHER;
    t->cls = RP_CLASS_JOIN_REQUEST;
    if (h->receiver_id.kind != BI_ID_EUI64) {
        relay_txn_fail(t, BI_RC_UNKNOWN_RECEIVER, "HomeNSReq: ReceiverID must be a JoinEUI",
                       RP_OUT_NO_ROUTE);
        return true;
    }
    if (rp_reader_begin(r) != RH_OK) {
        relay_txn_fail(t, BI_RC_OTHER, "hub routing table unavailable", RP_OUT_UNREACHABLE);
        return true;
    }
    rp_join_match_t m;
    int rc = rp_lookup_join(r, h->receiver_id.value, f->dev_eui, &m);
    if (rc == RH_OK && m.found && m.via_join_server) {
        rp_reader_end(r);
        const peer_endpoint_t *ep = NULL;
        peer_registry_endpoint_by_id(t->reg, m.join_server_id, &ep);
        if (!ep) {
            relay_txn_fail(t, BI_RC_UNKNOWN_DEV_EUI, "the join route's Join Server has no endpoint",
                           RP_OUT_NO_ROUTE);
            return true;
        }
        t->recv_ep = ep;
        t->recv_peer_id = relay_answerer_id(t->reg, ep);
        return false;
    }
    if (rc != RH_OK || !m.found) {
        rp_reader_end(r);
        const peer_endpoint_t *ep = NULL;
        peer_registry_endpoint_by_join_eui(t->reg, h->receiver_id.value, &ep);
        if (ep) { /* a Join Server that is a member: ask it */
            t->recv_ep = ep;
            t->recv_peer_id = relay_answerer_id(t->reg, ep);
            return false;
        }
        char desc[96], je[17], de[17];
        rh_eui64_format(h->receiver_id.value, je);
        rh_eui64_format(f->dev_eui, de);
        snprintf(desc, sizeof desc, "no join route for JoinEUI %s DevEUI %s", je, de);
        relay_txn_fail(t, BI_RC_UNKNOWN_DEV_EUI, desc, RP_OUT_NO_ROUTE);
        return true;
    }
    t->home = m.home;
    rp_verdict_t v;
    bool ok = check_policy(t, &v);
    rp_reader_end(r);
    if (!ok)
        return true;
    bi_msg_t *ans = NULL;
    if (bi_answer_new(t->msg, BI_RC_SUCCESS, NULL, &ans) != RH_OK) {
        relay_txn_fail(t, BI_RC_OTHER, "hub out of memory", RP_OUT_UNREACHABLE);
        return true;
    }
    char hn[7];
    cJSON *root = bi_msg_json_mut(ans);
    cJSON_AddStringToObject(root, "HNetID", relay_netid_text(m.home.net_id, hn));
    if (bi_msg_refresh(ans, NULL) != RH_OK) {
        bi_msg_free(ans);
        relay_txn_fail(t, BI_RC_OTHER, "hub could not build HomeNSAns", RP_OUT_UNREACHABLE);
        return true;
    }
    relay_txn_answer(t, ans, NULL, 0);
    return true;
}

bool relay_check_answer_downlink(relay_txn_t *t, bi_msg_t *ans)
{
    if (t->dir != RELAY_UPLINK)
        return false;
    const bi_fields_t *f = bi_msg_fields(ans);
    if (!(f->present & BI_F_PHY_PAYLOAD))
        return false;
    lw_frame_t fr;
    if (lw_frame_decode(f->phy_payload, f->phy_payload_len, &fr, NULL) != RH_OK ||
        lw_mtype_is_uplink(fr.mtype))
        return false;
    rp_class_t cls = relay_class_of(lw_frame_class(&fr));
    rp_reader_t *r = t->w->reader;
    if (rp_reader_begin(r) != RH_OK)
        return false;
    rp_verdict_t v;
    int rc = rp_policy_check(r, cls, &t->fwd, &t->home, &v);
    rp_reader_end(r);
    if (rc != RH_OK || v.allow)
        return false;
    char fn[7], hn[7], desc[160];
    snprintf(desc, sizeof desc, "routing policy %s -> %s does not allow %s",
             relay_netid_text(t->fwd.net_id, fn), relay_netid_text(t->home.net_id, hn),
             class_text(cls));
    RH_LOG(RH_LOG_INFO, "relay", "answer downlink refused reason=\"%s\" txid=%u", desc,
           bi_msg_transaction_id(ans));
    cJSON *root = bi_msg_json_mut(ans);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "PHYPayload");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "DLMetaData");
    if (bi_msg_refresh(ans, NULL) == RH_OK)
        bi_msg_set_result(ans, BI_RC_NO_ROAMING_AGREEMENT, desc);
    return true;
}
