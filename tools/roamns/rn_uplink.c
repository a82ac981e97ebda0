/*
 * rn_uplink.c — the fate of a deduplicated uplink in roamns:
 *   join-request for a JoinEUI served here      -> embedded join server, join-accept in RX1/RX2
 *                                                  (JOIN_ACCEPT_DELAY1 5 s)
 *   data uplink for an own DevAddr / known device -> MIC, FCnt, decryption, output line, then at
 *                                                  once the downlink decision (ACK, queued data)
 *                                                  for RX1 (RECEIVE_DELAY1 1 s) or RX2
 *   anything else, in Packet Broker mode          -> ForwarderData/Publish per gateway (rn_pb.c)
 *   anything else, when a hub is configured       -> PRStartReq to the hub (stateless fNS) with
 *                                                  tokens that find the gateway and tmst again
 * Decisions are logged once, here.
 */
#include "roamns.h"

#include "bi_types.h"
#include "lw_frame.h"
#include "lw_netid.h"
#include "region.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdlib.h>
#include <string.h>

void rn_output_line(roamns_t *ns, const char *line)
{
    if (!ns->out)
        return;
    fputs(line, ns->out);
    fputc('\n', ns->out);
    fflush(ns->out);
}

/* The reception to answer through: a gateway with a downlink path, best SNR, then RSSI. */
static const rn_rx_t *best_rx(roamns_t *ns, const rn_up_t *up)
{
    const rn_rx_t *best = NULL;
    for (size_t i = 0; i < up->nrx; i++) {
        const rn_rx_t *r = &up->rx[i];
        rn_gw_t *g = rn_gw_find(ns, r->gw_eui);
        if (!g || !g->has_pull)
            continue;
        if (!best || r->snr > best->snr || (r->snr == best->snr && r->rssi > best->rssi))
            best = r;
    }
    return best;
}

int rn_send_class_a(roamns_t *ns, const rn_rx_t *rx, unsigned rx_delay_s, const uint8_t *phy,
                    size_t len, region_win_t *used)
{
    region_win_t w1, w2 = region_rx2(ns->cfg.region);
    ns_dl_offer_t o = {.rx2_ok = true, .rx2_freq_hz = w2.freq_hz, .rx2_dr = w2.dr,
                       .rx_delay1_s = rx_delay_s};
    if (region_rx1(ns->cfg.region, rx->freq_hz, rx->dr, ns->cfg.core.rx1_dr_offset, &w1) == RH_OK) {
        o.rx1_ok = true;
        o.rx1_freq_hz = w1.freq_hz;
        o.rx1_dr = w1.dr;
    }
    ns_dl_plan_t p;
    int rc = ns_dl_choose(rx->tmst, rx->rx_ms, rn_now_ms32(), &o, ns->cfg.dl_margin_ms, &p);
    if (rc < 0) {
        ns->st.downlinks_too_late++;
        return rc;
    }
    if ((rc = rn_send_txpk(ns, rx->gw_eui, p.tmst, p.freq_hz, p.dr, phy, len)) < 0)
        return rc;
    if (used)
        *used = (region_win_t){p.freq_hz, p.dr};
    return p.window;
}

static void rxinfo_local(roamns_t *ns, const rn_up_t *up, ns_rxinfo_t *out, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < up->nrx; i++) {
        ns_rxinfo_t *g = &out[(*n)++];
        memset(g, 0, sizeof *g);
        rh_eui64_format(up->rx[i].gw_eui, g->id);
        g->rssi = up->rx[i].rssi;
        g->snr = up->rx[i].snr;
        g->has_rssi = g->has_snr = true;
        rn_gw_t *gw = rn_gw_find(ns, up->rx[i].gw_eui);
        if (gw && gw->has_loc) {
            g->has_loc = true;
            g->lat = gw->lat;
            g->lon = gw->lon;
        }
    }
}

size_t rn_dl_max_payload(const roamns_t *ns, uint32_t ul_freq_hz, uint8_t ul_dr)
{
    region_win_t w1, w2 = region_rx2(ns->cfg.region);
    size_t maxp = ns_max_payload(ns->cfg.region, w2.dr);
    if (region_rx1(ns->cfg.region, ul_freq_hz, ul_dr, ns->cfg.core.rx1_dr_offset, &w1) == RH_OK &&
        ns_max_payload(ns->cfg.region, w1.dr) < maxp)
        maxp = ns_max_payload(ns->cfg.region, w1.dr);
    return maxp;
}

int rn_home_data(roamns_t *ns, const uint8_t *phy, size_t len, const ns_rxinfo_t *gw, size_t ngw,
                 const char *fwd, ns_up_t *u, rh_diag_t *d)
{
    int rc = ns_data_up(ns->reg, phy, len, u, d);
    if (rc < 0) {
        ns->st.roaming_home_refused++;
        if (rc == RH_ENOTFOUND)
            ns->st.unknown_devaddr++;
        else if (rc == RH_EMIC)
            ns->st.mic_failures++;
        else if (rc == RH_EEXIST)
            ns->st.replays++;
        return rc;
    }
    ns->st.data_up++;
    ns->st.roaming_home_uplinks++;
    if (u->has_fport && u->fport > 0) {
        char *line = ns_uplink_json(u, gw, ngw, true, fwd, rh_real_ms());
        if (line) {
            rn_output_line(ns, line);
            cJSON_free(line);
        }
    }
    return RH_OK;
}

static void local_join(roamns_t *ns, rn_up_t *up)
{
    ns_join_result_t jr;
    rh_diag_t d;
    char e[17], a[9];
    int rc = ns_join(ns->reg, up->phy, up->len, &jr, &d);
    rh_eui64_format(jr.dev_eui, e);
    if (rc < 0) {
        ns->st.joins_refused++;
        if (rc == RH_EEXIST)
            ns->st.dev_nonce_replays++;
        RH_LOG(RH_LOG_WARN, "join", "join-request refused deveui=%s err=\"%s\"", e, d.text);
        return;
    }
    lw_devaddr_format(jr.devaddr, a, 0);
    const rn_rx_t *rx = best_rx(ns, up);
    if (!rx) {
        RH_LOG(RH_LOG_WARN, "join", "join accepted but no gateway has a downlink path deveui=%s", e);
        return;
    }
    region_win_t used;
    rc = rn_send_class_a(ns, rx, REGION_JOIN_ACCEPT_DELAY1_S, jr.accept, jr.accept_len, &used);
    if (rc < 0) {
        RH_LOG(RH_LOG_WARN, "join", "join-accept not sent deveui=%s err=%s", e, rh_strerror(rc));
        return;
    }
    ns->st.joins_accepted++;
    RH_LOG(RH_LOG_INFO, "join", "join accepted deveui=%s devaddr=%s rx=%d dev_nonce=%u", e, a, rc,
           (unsigned)jr.dev_nonce);
}

static void local_data(roamns_t *ns, rn_up_t *up)
{
    ns_up_t u;
    rh_diag_t d;
    char a[9];
    int rc = ns_data_up(ns->reg, up->phy, up->len, &u, &d);
    lw_devaddr_format(u.devaddr, a, 0);
    if (rc < 0) {
        if (rc == RH_EEXIST)
            ns->st.replays++;
        else if (rc == RH_EMIC)
            ns->st.mic_failures++;
        else if (rc == RH_ENOTFOUND)
            ns->st.unknown_devaddr++;
        RH_LOG(RH_LOG_WARN, "uplink", "uplink refused devaddr=%s err=\"%s\"", a, d.text);
        return;
    }
    ns->st.data_up++;
    char e[17];
    rh_eui64_format(u.dev->cfg.dev_eui, e);
    if (u.has_fport && u.fport > 0) {
        ns_rxinfo_t gw[RN_MAX_GW_PER_UPLINK];
        size_t n;
        rxinfo_local(ns, up, gw, &n);
        char *line = ns_uplink_json(&u, gw, n, false, NULL, rh_real_ms());
        if (line) {
            rn_output_line(ns, line);
            cJSON_free(line);
        }
    }
    RH_LOG(RH_LOG_INFO, "uplink", "uplink deveui=%s devaddr=%s fcnt=%u fport=%d len=%zu confirmed=%d gws=%zu",
           e, a, (unsigned)u.fcnt, u.has_fport ? u.fport : -1, u.payload_len, u.confirmed, up->nrx);
    /* The downlink decision, at once: RX1 opens RECEIVE_DELAY1 after the uplink. */
    if (!u.confirmed && !u.dev->dlq)
        return;
    const rn_rx_t *rx = best_rx(ns, up);
    if (!rx) {
        RH_LOG(RH_LOG_WARN, "downlink", "no gateway with a downlink path deveui=%s", e);
        return;
    }
    size_t maxp = rn_dl_max_payload(ns, rx->freq_hz, rx->dr);
    ns_dl_frame_t f;
    bool built;
    size_t dropped;
    rc = ns_build_downlink(u.dev, u.confirmed, maxp, &f, &built, &dropped);
    if (dropped)
        RH_LOG(RH_LOG_WARN, "downlink", "queued downlinks dropped (too large) deveui=%s n=%zu", e,
               dropped);
    if (rc < 0 || !built)
        return;
    rc = rn_send_class_a(ns, rx, REGION_RECEIVE_DELAY1_S, f.phy, f.len, NULL);
    if (rc < 0) {
        RH_LOG(RH_LOG_WARN, "downlink", "downlink not sent deveui=%s err=%s", e, rh_strerror(rc));
        return;
    }
    if (f.ack)
        ns->st.acks_sent++;
    if (f.has_fport)
        ns->st.app_downlinks_sent++;
    RH_LOG(RH_LOG_INFO, "downlink", "downlink deveui=%s fcnt=%u ack=%d fport=%d len=%zu rx=%d", e,
           (unsigned)f.fcnt, f.ack, f.has_fport ? f.fport : -1, f.app_len, rc);
}

/* Forwarder: PRStartReq to the hub. */
static void forward(roamns_t *ns, rn_up_t *up, const lw_frame_t *f)
{
    bool join = f->mtype == LW_MTYPE_JOIN_REQUEST;
    uint32_t receiver = ns->cfg.hub_receiver_id;
    if (!join && !ns->cfg.hub_receiver_set) {
        /* Types 0..2: the NetID is type | NwkID (NetIDs that set the bits between type and
         * ID, like 000505, are not recoverable from a DevAddr: set hub.receiver_id then). */
        uint32_t nwkid;
        int t = lw_devaddr_type(f->u.data.devaddr);
        if (t >= 0 && t <= 2 && lw_devaddr_nwkid(f->u.data.devaddr, &nwkid) == RH_OK)
            receiver = ((uint32_t)t << 21) | nwkid;
    }
    bi_msg_t *m = NULL;
    if (rn_hub_new_req(ns, BI_MT_PR_START_REQ, (bi_id_t){BI_ID_NETID, receiver}, &m) < 0) {
        ns->st.roaming_forward_errors++;
        return;
    }
    cJSON *root = bi_msg_json_mut(m);
    char hex[2 * 255 + 1], tok[NS_TOKEN_HEX + 1], ts[BI_TIME_MAX];
    rh_hex_encode(up->phy, up->len, hex, 0);
    cJSON_AddStringToObject(root, "PHYPayload", hex);
    cJSON *ul = cJSON_AddObjectToObject(root, "ULMetaData");
    if (join) {
        rh_eui64_format(f->u.join_request.dev_eui, hex);
        cJSON_AddStringToObject(ul, "DevEUI", hex);
    } else {
        lw_devaddr_format(f->u.data.devaddr, hex, 0);
        cJSON_AddStringToObject(ul, "DevAddr", hex);
    }
    const rn_rx_t *best = best_rx(ns, up);
    if (!best)
        best = &up->rx[0];
    cJSON_AddNumberToObject(ul, "DataRate", best->dr);
    cJSON_AddNumberToObject(ul, "ULFreq", gwmp_hz_to_mhz(best->freq_hz));
    int64_t now = rh_real_ms();
    bi_time_format((bi_time_t){now / 1000, (uint32_t)(now % 1000) * 1000000u}, ts);
    cJSON_AddStringToObject(ul, "RecvTime", ts);
    cJSON_AddStringToObject(ul, "RFRegion", region_name(ns->cfg.region));
    cJSON_AddNumberToObject(ul, "GWCnt", (double)up->nrx);
    cJSON *gws = cJSON_AddArrayToObject(ul, "GWInfo");
    for (size_t i = 0; gws && i < up->nrx; i++) {
        const rn_rx_t *r = &up->rx[i];
        cJSON *g = cJSON_CreateObject();
        if (!g || !cJSON_AddItemToArray(gws, g)) {
            cJSON_Delete(g);
            break;
        }
        char id[9];
        rh_hex_format_be(r->gw_eui & 0xFFFFFFFFu, 4, id, 0);
        cJSON_AddStringToObject(g, "ID", id);
        cJSON_AddStringToObject(g, "RFRegion", region_name(ns->cfg.region));
        cJSON_AddNumberToObject(g, "RSSI", r->rssi);
        cJSON_AddNumberToObject(g, "SNR", r->snr);
        rn_gw_t *gw = rn_gw_find(ns, r->gw_eui);
        if (gw && gw->has_loc) {
            cJSON_AddNumberToObject(g, "Lat", gw->lat);
            cJSON_AddNumberToObject(g, "Lon", gw->lon);
        }
        ns_token_t t = {(uint8_t)ns->cfg.region, r->gw_eui, r->tmst, r->freq_hz, r->dr, r->rx_ms};
        ns_token_encode(&t, tok);
        cJSON_AddStringToObject(g, "ULToken", tok);
        cJSON_AddBoolToObject(g, "DLAllowed", gw && gw->has_pull);
    }
    ns_token_t t = {(uint8_t)ns->cfg.region, best->gw_eui, best->tmst, best->freq_hz, best->dr,
                    best->rx_ms};
    ns_token_encode(&t, tok);
    cJSON_AddStringToObject(ul, "FNSULToken", tok);
    bi_error_t err;
    if (bi_msg_refresh(m, &err) < 0) {
        RH_LOG(RH_LOG_ERR, "roaming", "PRStartReq does not validate err=\"%s\"", err.description);
        bi_msg_free(m);
        ns->st.roaming_forward_errors++;
        return;
    }
    uint32_t txid = bi_msg_transaction_id(m);
    char rid[7];
    lw_netid_format(receiver, rid, 0);
    if (rn_hub_post(ns, m) < 0) {
        ns->st.roaming_forward_errors++;
        return;
    }
    ns->st.roaming_forwarded++;
    RH_LOG(RH_LOG_INFO, "roaming", "forwarded to hub kind=%s receiver=%s txid=%u gws=%zu",
           join ? "join-request" : "data", rid, txid, up->nrx);
}

void rn_uplink(roamns_t *ns, rn_up_t *up)
{
    lw_frame_t f;
    rh_diag_t d;
    if (lw_frame_decode(up->phy, up->len, &f, &d) < 0) {
        RH_LOG(RH_LOG_INFO, "uplink", "undecodable frame dropped err=\"%s\"", d.text);
        return;
    }
    switch (f.mtype) {
    case LW_MTYPE_JOIN_REQUEST:
        if (ns_serves_join_eui(ns->reg, f.u.join_request.join_eui)) {
            local_join(ns, up);
            return;
        }
        break;
    case LW_MTYPE_UNCONFIRMED_UP:
    case LW_MTYPE_CONFIRMED_UP:
        if (ns_owns_devaddr(ns->reg, f.u.data.devaddr) || ns_find_addr(ns->reg, f.u.data.devaddr)) {
            local_data(ns, up);
            return;
        }
        break;
    default:
        RH_LOG(RH_LOG_DEBUG, "uplink", "frame dropped mtype=%s", lw_mtype_name(f.mtype));
        return;
    }
    if (rn_pb_forwards(ns)) {
        rn_pb_publish_uplink(ns, up, &f);
        return;
    }
    if (ns->cfg.has_hub) {
        forward(ns, up, &f);
        return;
    }
    if (f.mtype == LW_MTYPE_JOIN_REQUEST) {
        char e[17];
        rh_eui64_format(f.u.join_request.join_eui, e);
        ns->st.joins_refused++;
        RH_LOG(RH_LOG_INFO, "join", "join-request for a JoinEUI not served here, no hub joineui=%s", e);
    } else {
        char a[9];
        lw_devaddr_format(f.u.data.devaddr, a, 0);
        ns->st.unknown_devaddr++;
        RH_LOG(RH_LOG_INFO, "uplink", "foreign DevAddr and no hub, dropped devaddr=%s", a);
    }
}

int rn_queue_downlink_json(roamns_t *ns, const cJSON *o, rh_diag_t *diag)
{
    static const char *const keys[] = {"dev_eui", "fport", "payload_hex", "confirmed", NULL};
    const char *w = "downlink";
    uint64_t eui, fport = 0;
    bool found, confirmed = false;
    const char *hex = "";
    uint8_t buf[NS_MAX_APP_PAYLOAD + 1];
    size_t n = 0;
    if (!cJSON_IsObject(o))
        return rh_diag_fail(diag, RH_EINVAL, "downlink: expected a JSON object");
    int rc = tl_check_keys(o, keys, w, diag);
    if (rc < 0 || (rc = tl_get_be(o, "dev_eui", w, 8, &eui, &found, diag)) < 0 ||
        (rc = tl_get_uint(o, "fport", w, 223, &fport, diag)) < 0 ||
        (rc = tl_get_bool(o, "confirmed", w, &confirmed, diag)) < 0 ||
        (rc = tl_get_str(o, "payload_hex", w, &hex, diag)) < 0)
        return rc;
    if (!found)
        return rh_diag_fail(diag, RH_EINVAL, "downlink.dev_eui: missing");
    if (fport == 0)
        return rh_diag_fail(diag, RH_EINVAL, "downlink.fport: expected 1..223");
    if (rh_hex_decode(hex, strlen(hex), buf, sizeof buf, &n, "payload_hex", NULL) < 0 ||
        n > NS_MAX_APP_PAYLOAD)
        return rh_diag_fail(diag, RH_EINVAL, "downlink.payload_hex: expected hex of at most %u bytes",
                            NS_MAX_APP_PAYLOAD);
    ns_device_t *dev = ns_find_eui(ns->reg, eui);
    if (!dev)
        return rh_diag_fail(diag, RH_ENOTFOUND, "downlink.dev_eui: unknown device");
    rc = ns_enqueue(dev, (uint8_t)fport, buf, n, confirmed);
    if (rc == RH_EFULL)
        return rh_diag_fail(diag, rc, "downlink: queue of the device is full (%u)", NS_MAX_QUEUE);
    if (rc < 0)
        return rh_diag_fail(diag, rc, "downlink: %s", rh_strerror(rc));
    char e[17];
    rh_eui64_format(eui, e);
    RH_LOG(RH_LOG_INFO, "downlink", "queued deveui=%s fport=%u len=%zu confirmed=%d queued=%zu", e,
           (unsigned)fport, n, confirmed, dev->dlq_len);
    return RH_OK;
}
