/*
 * rn_ts002.c — roamns's HTTP side on the project's HTTP server (broker/http_server.h):
 *   POST / /fns /sns /hns  TS002 messages (bi_msg codec) from the hub:
 *       PRStartReq                 home network: data uplink or join-request of our devices
 *       XmitDataReq + DLMetaData   forwarder: a downlink for a gateway of ours -> XmitDataAns
 *       XmitDataReq + ULMetaData   home network: uplink from a stateful fNS -> XmitDataAns
 *       HomeNSReq                  answered with our NetID for our OTAA devices
 *       PRStartAns / XmitDataAns   async answers to our requests (pending TransactionID)
 *     Answers are sent in the HTTP response (sync hub) or acknowledged with an empty 200 and
 *     POSTed to the hub (async hub, config hub.async). Business errors are HTTP 200 with a
 *     Result; unreadable requests that cannot be answered get 400.
 *   POST /downlink  {"dev_eui","fport","payload_hex","confirmed"} queues an application downlink
 *   GET  /stats     counters as JSON;  GET /healthz  "ok"
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

/* ------------------------------------------------------------------ helpers */

static void reply_json(hs_req_t *req, int status, const char *s)
{
    hs_reply(req, status, "application/json", s, strlen(s));
}

static void reply_error(hs_req_t *req, int status, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", text);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s) {
        reply_json(req, status, s);
        cJSON_free(s);
    } else {
        hs_reply(req, 500, NULL, NULL, 0);
    }
}

/* Replies with a TS002 message (sync). */
static void reply_msg(roamns_t *ns, hs_req_t *req, bi_msg_t *m)
{
    char *buf;
    size_t len;
    bi_dialect_t d = rn_hub_dialect(ns);
    if (bi_msg_encode(m, &d, &buf, &len) < 0) {
        hs_reply(req, 500, NULL, NULL, 0);
        return;
    }
    hs_reply(req, 200, "application/json", buf, len);
    bi_buf_free(buf);
}

/* Delivers an answer: in the response (sync) or as a POST after an empty 200 (async). */
static void answer(roamns_t *ns, hs_req_t *req, bi_msg_t *ans)
{
    if (!ans) {
        hs_reply(req, 500, NULL, NULL, 0);
        return;
    }
    if (ns->cfg.hub_async && ns->cfg.has_hub) {
        hs_reply(req, 200, NULL, NULL, 0);
        rn_hub_post_answer(ns, ans);
        return;
    }
    reply_msg(ns, req, ans);
    bi_msg_free(ans);
}

static bi_msg_t *simple_answer(const bi_msg_t *req, bi_result_code_t code, const char *desc)
{
    bi_msg_t *a = NULL;
    if (bi_answer_new(req, code, desc, &a) < 0)
        return NULL;
    return a;
}

/* bi_region_t -> region_id_t; false when the tools do not know the region. */
static bool map_region(bi_region_t r, region_id_t *out)
{
    if (r == BI_REGION_EU868) {
        *out = REGION_EU868;
        return true;
    }
    if (r == BI_REGION_US915) {
        *out = REGION_US915;
        return true;
    }
    return false;
}

/* DLMetaData for a class A downlink answering the uplink described by ul (home side). */
static cJSON *dlmeta_for(const bi_ulmeta_t *ul, uint64_t dev_eui, unsigned rx_delay1,
                         size_t *max_payload)
{
    cJSON *dl = cJSON_CreateObject();
    char e[17];
    if (!dl)
        return NULL;
    region_id_t r;
    bool known = (ul->present & BI_UL_RF_REGION) && map_region(ul->rf_region, &r);
    if (!(ul->present & BI_UL_RF_REGION))
        known = map_region(BI_REGION_EU868, &r); /* RFRegion absent: assume EU868 */
    rh_eui64_format(dev_eui, e);
    cJSON_AddStringToObject(dl, "DevEUI", e);
    *max_payload = 51;
    region_win_t w1 = {0, 0};
    bool has1 = false;
    if ((ul->present & BI_UL_UL_FREQ) && (ul->present & BI_UL_DATA_RATE)) {
        uint32_t f = gwmp_mhz_to_hz(ul->ul_freq);
        if (known)
            has1 = region_rx1(r, f, (uint8_t)ul->data_rate, 0, &w1) == RH_OK;
        else {
            w1 = (region_win_t){f, (uint8_t)ul->data_rate}; /* RX1 = uplink channel and DR */
            has1 = true;
        }
    }
    if (has1) {
        cJSON_AddNumberToObject(dl, "DLFreq1", gwmp_hz_to_mhz(w1.freq_hz));
        cJSON_AddNumberToObject(dl, "DataRate1", w1.dr);
        if (known)
            *max_payload = ns_max_payload(r, w1.dr);
    }
    if (known) {
        region_win_t w2 = region_rx2(r);
        cJSON_AddNumberToObject(dl, "DLFreq2", gwmp_hz_to_mhz(w2.freq_hz));
        cJSON_AddNumberToObject(dl, "DataRate2", w2.dr);
        size_t m2 = ns_max_payload(r, w2.dr);
        if (!has1 || m2 < *max_payload)
            *max_payload = m2;
    }
    cJSON_AddNumberToObject(dl, "RXDelay1", rx_delay1);
    cJSON_AddStringToObject(dl, "ClassMode", "A");
    if (ul->present & BI_UL_FNS_UL_TOKEN)
        cJSON_AddStringToObject(dl, "FNSULToken", ul->fns_ul_token);
    cJSON *gws = cJSON_AddArrayToObject(dl, "GWInfo");
    for (size_t i = 0; gws && i < ul->gw_count; i++) {
        if (!(ul->gw[i].present & BI_GW_UL_TOKEN))
            continue;
        cJSON *g = cJSON_CreateObject();
        if (!g || !cJSON_AddItemToArray(gws, g)) {
            cJSON_Delete(g);
            break;
        }
        cJSON_AddStringToObject(g, "ULToken", ul->gw[i].ul_token);
    }
    if (!has1 && !known) {
        cJSON_Delete(dl);
        return NULL;
    }
    return dl;
}

static void fmt_netid_id(bi_id_t id, char *out)
{
    rh_hex_format_be(id.value, id.kind == BI_ID_EUI64 ? 8 : 3, out, 0);
}

/* ------------------------------------------------------------------ home network */

static bi_msg_t *home_join(roamns_t *ns, bi_msg_t *req, const bi_fields_t *f)
{
    ns_join_result_t jr;
    rh_diag_t d;
    char e[17], a[9];
    lw_frame_t fr;
    if (lw_frame_decode(f->phy_payload, f->phy_payload_len, &fr, NULL) == RH_OK &&
        !ns_serves_join_eui(ns->reg, fr.u.join_request.join_eui)) {
        ns->st.roaming_home_refused++;
        return simple_answer(req, BI_RC_UNKNOWN_DEV_EUI, "JoinEUI not served by this network");
    }
    int rc = ns_join(ns->reg, f->phy_payload, f->phy_payload_len, &jr, &d);
    rh_eui64_format(jr.dev_eui, e);
    if (rc < 0) {
        ns->st.roaming_home_refused++;
        ns->st.joins_refused++;
        if (rc == RH_EEXIST)
            ns->st.dev_nonce_replays++;
        RH_LOG(RH_LOG_WARN, "home", "roaming join-request refused deveui=%s txid=%u err=\"%s\"", e,
               f->hdr.transaction_id, d.text);
        bi_result_code_t code = rc == RH_ENOTFOUND ? BI_RC_UNKNOWN_DEV_EUI
                                : rc == RH_EMIC    ? BI_RC_MIC_FAILED
                                                   : BI_RC_JOIN_REQ_FAILED;
        return simple_answer(req, code, d.text);
    }
    bi_msg_t *ans = simple_answer(req, BI_RC_SUCCESS, NULL);
    if (!ans)
        return NULL;
    size_t maxp;
    cJSON *dl = dlmeta_for(&f->ul, jr.dev_eui, REGION_JOIN_ACCEPT_DELAY1_S, &maxp);
    cJSON *root = bi_msg_json_mut(ans);
    char hex[2 * LW_JOIN_ACCEPT_CFLIST_LEN + 1];
    rh_hex_encode(jr.accept, jr.accept_len, hex, 0);
    cJSON_AddStringToObject(root, "PHYPayload", hex);
    cJSON_AddStringToObject(root, "DevEUI", e);
    lw_devaddr_format(jr.devaddr, a, 0);
    cJSON_AddStringToObject(root, "DevAddr", a);
    cJSON_AddNumberToObject(root, "Lifetime", 0);
    if (dl)
        cJSON_AddItemToObject(root, "DLMetaData", dl);
    bi_error_t err;
    if (bi_msg_refresh(ans, &err) < 0) {
        RH_LOG(RH_LOG_ERR, "home", "PRStartAns does not validate err=\"%s\"", err.description);
        bi_msg_free(ans);
        return simple_answer(req, BI_RC_OTHER, "internal error");
    }
    ns->st.roaming_home_joins++;
    ns->st.joins_accepted++;
    char snd[17];
    fmt_netid_id(f->hdr.sender_id, snd);
    RH_LOG(RH_LOG_INFO, "home", "roaming join accepted deveui=%s devaddr=%s forwarder=%s txid=%u",
           e, a, snd, f->hdr.transaction_id);
    return ans;
}

/* Sends the class A downlink for a roaming uplink as XmitDataReq to the hub. */
static void home_downlink(roamns_t *ns, const bi_fields_t *f, ns_up_t *u)
{
    char e[17];
    rh_eui64_format(u->dev->cfg.dev_eui, e);
    if (!ns->cfg.has_hub) {
        RH_LOG(RH_LOG_WARN, "home", "downlink for a roaming device but no hub configured deveui=%s", e);
        return;
    }
    size_t maxp;
    cJSON *dl = dlmeta_for(&f->ul, u->dev->cfg.dev_eui, REGION_RECEIVE_DELAY1_S, &maxp);
    if (!dl) {
        RH_LOG(RH_LOG_WARN, "home", "no downlink window for the roaming uplink's region deveui=%s", e);
        return;
    }
    ns_dl_frame_t fr;
    bool built;
    size_t dropped;
    int rc = ns_build_downlink(u->dev, u->confirmed, maxp, &fr, &built, &dropped);
    if (rc < 0 || !built) {
        cJSON_Delete(dl);
        return;
    }
    bi_msg_t *m;
    bi_id_t receiver = f->hdr.sender_id; /* the forwarder's NetID */
    if (rn_hub_new_req(ns, BI_MT_XMIT_DATA_REQ, receiver, &m) < 0) {
        cJSON_Delete(dl);
        return;
    }
    cJSON *root = bi_msg_json_mut(m);
    char hex[2 * LW_PHY_MAX + 1];
    rh_hex_encode(fr.phy, fr.len, hex, 0);
    cJSON_AddStringToObject(root, "PHYPayload", hex);
    cJSON_AddItemToObject(root, "DLMetaData", dl);
    bi_error_t err;
    if (bi_msg_refresh(m, &err) < 0) {
        RH_LOG(RH_LOG_ERR, "home", "XmitDataReq does not validate err=\"%s\"", err.description);
        bi_msg_free(m);
        return;
    }
    uint32_t txid = bi_msg_transaction_id(m);
    if (rn_hub_post(ns, m) < 0)
        return;
    ns->st.xmit_req_sent++;
    if (fr.ack)
        ns->st.acks_sent++;
    if (fr.has_fport)
        ns->st.app_downlinks_sent++;
    RH_LOG(RH_LOG_INFO, "home", "downlink via hub deveui=%s fcnt=%u ack=%d fport=%d txid=%u", e,
           (unsigned)fr.fcnt, fr.ack, fr.has_fport ? fr.fport : -1, txid);
}

bi_msg_t *rn_home_uplink(roamns_t *ns, bi_msg_t *req)
{
    const bi_fields_t *f = bi_msg_fields(req);
    lw_frame_t fr;
    rh_diag_t d;
    if (!(f->present & BI_F_PHY_PAYLOAD) ||
        lw_frame_decode(f->phy_payload, f->phy_payload_len, &fr, &d) < 0) {
        ns->st.roaming_home_refused++;
        return simple_answer(req, bi_result_code_malformed(f->hdr.version),
                             "PHYPayload: missing or not a LoRaWAN frame");
    }
    if (fr.mtype == LW_MTYPE_JOIN_REQUEST && bi_msg_type(req) == BI_MT_PR_START_REQ)
        return home_join(ns, req, f);
    if (fr.mtype != LW_MTYPE_UNCONFIRMED_UP && fr.mtype != LW_MTYPE_CONFIRMED_UP) {
        ns->st.roaming_home_refused++;
        return simple_answer(req, bi_result_code_malformed(f->hdr.version),
                             "PHYPayload: not an uplink this network server handles");
    }
    ns_up_t u;
    ns_rxinfo_t gw[RN_MAX_GW_PER_UPLINK];
    size_t n = 0;
    for (size_t i = 0; i < f->ul.gw_count && n < RN_MAX_GW_PER_UPLINK; i++) {
        const bi_gwinfo_t *g = &f->ul.gw[i];
        ns_rxinfo_t *o = &gw[n++];
        memset(o, 0, sizeof *o);
        if (g->present & BI_GW_ID)
            rh_hex_format_be(g->id, g->id_len == 8 ? 8 : 4, o->id, 0);
        o->rssi = g->rssi;
        o->snr = g->snr;
        o->has_rssi = (g->present & BI_GW_RSSI) != 0;
        o->has_snr = (g->present & BI_GW_SNR) != 0;
        if ((g->present & BI_GW_LAT) && (g->present & BI_GW_LON)) {
            o->has_loc = true;
            o->lat = g->lat;
            o->lon = g->lon;
        }
    }
    char a[9], snd[17], fwd[7];
    lw_devaddr_format(fr.u.data.devaddr, a, 0);
    fmt_netid_id(f->hdr.sender_id, snd);
    lw_netid_format((uint32_t)f->hdr.sender_id.value & 0xFFFFFF, fwd, 0);
    int rc = rn_home_data(ns, f->phy_payload, f->phy_payload_len, gw, n,
                          f->hdr.sender_id.kind == BI_ID_NETID ? fwd : snd, &u, &d);
    if (rc < 0) {
        bi_result_code_t code = BI_RC_OTHER;
        if (rc == RH_ENOTFOUND)
            code = BI_RC_UNKNOWN_DEV_ADDR;
        else if (rc == RH_EMIC)
            code = BI_RC_MIC_FAILED;
        else if (rc == RH_EEXIST)
            code = f->hdr.version == BI_VERSION_1_1 ? BI_RC_FRAME_REPLAYED : BI_RC_MIC_FAILED;
        RH_LOG(RH_LOG_WARN, "home", "roaming uplink refused devaddr=%s forwarder=%s txid=%u err=\"%s\"",
               a, snd, f->hdr.transaction_id, d.text);
        return simple_answer(req, code, d.text);
    }
    char e[17];
    rh_eui64_format(u.dev->cfg.dev_eui, e);
    RH_LOG(RH_LOG_INFO, "home", "roaming uplink deveui=%s devaddr=%s fcnt=%u fport=%d confirmed=%d forwarder=%s txid=%u",
           e, a, (unsigned)u.fcnt, u.has_fport ? u.fport : -1, u.confirmed, snd,
           f->hdr.transaction_id);
    bi_msg_t *ans = simple_answer(req, BI_RC_SUCCESS, NULL);
    if (ans && bi_msg_type(ans) == BI_MT_PR_START_ANS) {
        cJSON *root = bi_msg_json_mut(ans);
        cJSON_AddStringToObject(root, "DevEUI", e);
        cJSON_AddNumberToObject(root, "FCntUp", u.fcnt);
        bi_error_t err;
        if (bi_msg_refresh(ans, &err) < 0) {
            bi_msg_free(ans);
            ans = simple_answer(req, BI_RC_OTHER, "internal error");
        }
    }
    /* The downlink decision at once: RX1 opens 1 s after the uplink at the gateway. */
    if (u.confirmed || u.dev->dlq)
        home_downlink(ns, f, &u);
    return ans;
}

/* ------------------------------------------------------------------ forwarder */

int rn_fwd_downlink(roamns_t *ns, const bi_msg_t *msg, double *freq_mhz, int *window,
                    rh_diag_t *diag)
{
    const bi_fields_t *f = bi_msg_fields(msg);
    const bi_dlmeta_t *dl = &f->dl;
    if (!(f->present & BI_F_PHY_PAYLOAD))
        return rh_diag_fail(diag, RH_EINVAL, "PHYPayload: missing");
    if (!(f->present & BI_F_DL_META))
        return rh_diag_fail(diag, RH_EINVAL, "DLMetaData: missing");
    if ((dl->present & BI_DL_CLASS_MODE) && dl->class_mode != 'A')
        return rh_diag_fail(diag, RH_EINVAL, "DLMetaData.ClassMode: only class A is supported");
    /* The uplink context: FNSULToken, else the first usable GWInfo ULToken. */
    ns_token_t t;
    bool have = false;
    rh_diag_t d1;
    if ((dl->present & BI_DL_FNS_UL_TOKEN) &&
        ns_token_decode(dl->fns_ul_token, &t, "DLMetaData.FNSULToken", &d1) == RH_OK) {
        rn_gw_t *g = rn_gw_find(ns, t.gw_eui);
        have = g && g->has_pull;
    }
    for (size_t i = 0; !have && i < dl->gw_count; i++) {
        if (!(dl->gw[i].present & BI_GW_UL_TOKEN) ||
            ns_token_decode(dl->gw[i].ul_token, &t, "DLMetaData.GWInfo.ULToken", &d1) < 0)
            continue;
        rn_gw_t *g = rn_gw_find(ns, t.gw_eui);
        have = g && g->has_pull;
    }
    if (!have)
        return rh_diag_fail(diag, RH_ENOTFOUND,
                            "DLMetaData: no FNSULToken/ULToken of this network server with a connected gateway");
    lw_frame_t fr;
    bool join = lw_frame_decode(f->phy_payload, f->phy_payload_len, &fr, NULL) == RH_OK &&
                fr.mtype == LW_MTYPE_JOIN_ACCEPT;
    ns_dl_offer_t o = {0};
    o.rx1_ok = (dl->present & BI_DL_DL_FREQ1) && (dl->present & BI_DL_DATA_RATE1);
    o.rx2_ok = (dl->present & BI_DL_DL_FREQ2) && (dl->present & BI_DL_DATA_RATE2);
    o.rx1_freq_hz = gwmp_mhz_to_hz(dl->dl_freq1);
    o.rx2_freq_hz = gwmp_mhz_to_hz(dl->dl_freq2);
    o.rx1_dr = (uint8_t)dl->data_rate1;
    o.rx2_dr = (uint8_t)dl->data_rate2;
    o.rx_delay1_s = (dl->present & BI_DL_RX_DELAY1) && dl->rx_delay1
                        ? dl->rx_delay1
                        : (join ? REGION_JOIN_ACCEPT_DELAY1_S : REGION_RECEIVE_DELAY1_S);
    if (!o.rx1_ok && !o.rx2_ok)
        return rh_diag_fail(diag, RH_EINVAL, "DLMetaData: neither DLFreq1+DataRate1 nor DLFreq2+DataRate2");
    ns_dl_plan_t p;
    int rc = ns_dl_choose(t.tmst, t.rx_ms, rn_now_ms32(), &o, ns->cfg.dl_margin_ms, &p);
    if (rc < 0) {
        ns->st.downlinks_too_late++;
        return rh_diag_fail(diag, RH_ETIMEDOUT, "DLMetaData: too late for RX1 and RX2 of the uplink");
    }
    rc = rn_send_txpk(ns, t.gw_eui, p.tmst, p.freq_hz, p.dr, f->phy_payload, f->phy_payload_len);
    if (rc < 0)
        return rh_diag_fail(diag, rc, "gateway: PULL_RESP could not be sent (%s)", rh_strerror(rc));
    *freq_mhz = gwmp_hz_to_mhz(p.freq_hz);
    *window = p.window;
    char e[17];
    rh_eui64_format(t.gw_eui, e);
    RH_LOG(RH_LOG_INFO, "forwarder", "downlink from hub sent kind=%s gw=%s rx=%d txid=%u",
           join ? "join-accept" : "data", e, p.window, f->hdr.transaction_id);
    return RH_OK;
}

void rn_handle_answer(roamns_t *ns, bi_msg_t *msg)
{
    const bi_fields_t *f = bi_msg_fields(msg);
    ns->st.roaming_answers++;
    const char *rc_text = f->result_code_text ? f->result_code_text : "?";
    if (bi_msg_type(msg) == BI_MT_XMIT_DATA_ANS) {
        if (f->result_code != BI_RC_SUCCESS)
            ns->st.xmit_failed++;
        RH_LOG(f->result_code == BI_RC_SUCCESS ? RH_LOG_INFO : RH_LOG_WARN, "home",
               "XmitDataAns result=%s txid=%u", rc_text, f->hdr.transaction_id);
        return;
    }
    if (bi_msg_type(msg) != BI_MT_PR_START_ANS) {
        RH_LOG(RH_LOG_INFO, "roaming", "answer ignored type=%s txid=%u",
               bi_msg_type_name(bi_msg_type(msg)), f->hdr.transaction_id);
        return;
    }
    if (f->result_code != BI_RC_SUCCESS) {
        RH_LOG(RH_LOG_INFO, "forwarder", "PRStartAns result=%s txid=%u desc=\"%s\"", rc_text,
               f->hdr.transaction_id, f->result_description ? f->result_description : "");
        return;
    }
    if (!(f->present & BI_F_PHY_PAYLOAD)) {
        RH_LOG(RH_LOG_INFO, "forwarder", "PRStartAns Success txid=%u", f->hdr.transaction_id);
        return;
    }
    double freq;
    int window;
    rh_diag_t d;
    if (rn_fwd_downlink(ns, msg, &freq, &window, &d) < 0)
        RH_LOG(RH_LOG_WARN, "forwarder", "join-accept from PRStartAns not sent txid=%u err=\"%s\"",
               f->hdr.transaction_id, d.text);
}

/* ------------------------------------------------------------------ TS002 dispatch */

static void ts002(roamns_t *ns, hs_req_t *req)
{
    if (ns->cfg.ts002_authorization) {
        const char *h = hs_req_header(req, "Authorization");
        if (!h || strcmp(h, ns->cfg.ts002_authorization) != 0) {
            reply_error(req, 401, "Authorization: missing or not accepted");
            return;
        }
    }
    size_t len;
    const char *body = hs_req_body(req, &len);
    bi_msg_t *m = NULL;
    bi_error_t err;
    if (bi_msg_decode(body, len, &m, &err) < 0) {
        bi_msg_t *a = NULL;
        RH_LOG(RH_LOG_WARN, "ts002", "request refused err=\"%s\"", err.description);
        if (bi_msg_type_is_request(err.hdr.type) && bi_answer_from_error(&err, &a) == RH_OK) {
            reply_msg(ns, req, a);
            bi_msg_free(a);
        } else {
            reply_error(req, 400, err.description);
        }
        return;
    }
    const bi_fields_t *f = bi_msg_fields(m);
    bi_msg_type_t t = bi_msg_type(m);
    switch (t) {
    case BI_MT_PR_START_REQ:
        answer(ns, req, rn_home_uplink(ns, m));
        break;
    case BI_MT_XMIT_DATA_REQ:
        ns->st.xmit_req_received++;
        if (f->present & BI_F_UL_META) {
            answer(ns, req, rn_home_uplink(ns, m));
        } else {
            double freq = 0;
            int window = 0;
            rh_diag_t d;
            int rc = rn_fwd_downlink(ns, m, &freq, &window, &d);
            bi_msg_t *a;
            if (rc < 0) {
                ns->st.xmit_failed++;
                RH_LOG(RH_LOG_WARN, "forwarder", "XmitDataReq failed txid=%u err=\"%s\"",
                       f->hdr.transaction_id, d.text);
                a = simple_answer(m, BI_RC_XMIT_FAILED, d.text);
            } else {
                a = simple_answer(m, BI_RC_SUCCESS, NULL);
                if (a) {
                    cJSON_AddNumberToObject(bi_msg_json_mut(a), window == 1 ? "DLFreq1" : "DLFreq2",
                                            freq);
                    bi_error_t e2;
                    if (bi_msg_refresh(a, &e2) < 0) {
                        bi_msg_free(a);
                        a = simple_answer(m, BI_RC_SUCCESS, NULL);
                    }
                }
            }
            if (ns->cfg.hub_dialect == NS_DIALECT_HELIUM && !ns->cfg.hub_async && rc >= 0) {
                /* Helium's downlink service on a sync route: 202 "Downlink Accepted", no
                 * XmitDataAns */
                bi_msg_free(a);
                hs_reply(req, 202, "text/plain", "Downlink Accepted", 17);
                break;
            }
            answer(ns, req, a);
        }
        break;
    case BI_MT_HOME_NS_REQ: {
        ns_device_t *dev = ns_find_eui(ns->reg, f->dev_eui);
        bi_msg_t *a;
        if (dev && dev->cfg.otaa) {
            a = simple_answer(m, BI_RC_SUCCESS, NULL);
            if (a) {
                char n[7];
                lw_netid_format(ns->cfg.net_id, n, 0);
                cJSON_AddStringToObject(bi_msg_json_mut(a), "HNetID", n);
                bi_error_t e2;
                if (bi_msg_refresh(a, &e2) < 0) {
                    bi_msg_free(a);
                    a = simple_answer(m, BI_RC_OTHER, "internal error");
                }
            }
        } else {
            a = simple_answer(m, BI_RC_UNKNOWN_DEV_EUI, "not a device of this network");
        }
        answer(ns, req, a);
        break;
    }
    case BI_MT_PR_STOP_REQ:
        /* Stateless: no passive-roaming sessions are kept, so there is nothing to stop. */
        answer(ns, req, simple_answer(m, BI_RC_SUCCESS, NULL));
        break;
    case BI_MT_PR_START_ANS:
    case BI_MT_XMIT_DATA_ANS:
        hs_reply(req, 200, NULL, NULL, 0);
        if (rn_hub_pending(ns, f->hdr.transaction_id, true))
            rn_handle_answer(ns, m);
        else
            RH_LOG(RH_LOG_WARN, "ts002", "answer without a pending request discarded type=%s txid=%u",
                   bi_msg_type_name(t), f->hdr.transaction_id);
        break;
    default:
        if (bi_msg_type_is_request(t)) {
            answer(ns, req, simple_answer(m, BI_RC_OTHER, "message type not supported by roamns"));
        } else {
            hs_reply(req, 200, NULL, NULL, 0);
            RH_LOG(RH_LOG_INFO, "ts002", "message acknowledged and ignored type=%s txid=%u",
                   bi_msg_type_name(t), f->hdr.transaction_id);
        }
    }
    bi_msg_free(m);
}

/* ------------------------------------------------------------------ other endpoints */

static void stats(roamns_t *ns, hs_req_t *req)
{
    cJSON *o = cJSON_CreateObject();
    const rn_stats_t *s = &ns->st;
#define S(name) cJSON_AddNumberToObject(o, #name, (double)s->name)
    S(push_data); S(pull_data); S(tx_ack); S(tx_ack_errors); S(gwmp_bad);
    S(uplinks_received); S(duplicates);
    S(joins_accepted); S(joins_refused); S(dev_nonce_replays);
    S(data_up); S(replays); S(mic_failures); S(unknown_devaddr);
    S(downlinks_sent); S(downlinks_too_late); S(acks_sent); S(app_downlinks_sent);
    S(roaming_forwarded); S(roaming_forward_errors); S(roaming_answers);
    S(roaming_home_uplinks); S(roaming_home_joins); S(roaming_home_refused);
    S(xmit_req_sent); S(xmit_req_received); S(xmit_failed);
    S(pb_tokens); S(pb_token_errors); S(pb_connects); S(pb_subscribe_ends); S(pb_call_errors);
    S(pb_published); S(pb_downlinks_received); S(pb_downlink_failures);
    S(pb_uplinks_received); S(pb_downlinks_published); S(pb_reports_sent); S(pb_gateway_updates);
#undef S
    cJSON_AddNumberToObject(o, "gateways", (double)ns->ngws);
    cJSON_AddNumberToObject(o, "devices", (double)ns_registry_count(ns->reg));
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) {
        hs_reply(req, 500, NULL, NULL, 0);
        return;
    }
    reply_json(req, 200, txt);
    cJSON_free(txt);
}

static void downlink(roamns_t *ns, hs_req_t *req)
{
    size_t len;
    const char *body = hs_req_body(req, &len);
    cJSON *o = cJSON_ParseWithLength(body, len);
    rh_diag_t d;
    int rc = rn_queue_downlink_json(ns, o, &d);
    cJSON_Delete(o);
    if (rc < 0) {
        reply_error(req, rc == RH_ENOTFOUND ? 404 : rc == RH_EFULL ? 429 : 400, d.text);
        return;
    }
    reply_json(req, 200, "{\"queued\":true}");
}

static void handler(hs_req_t *req, void *arg)
{
    roamns_t *ns = arg;
    const char *m = hs_req_method(req), *p = hs_req_path(req);
    bool post = strcmp(m, "POST") == 0, get = strcmp(m, "GET") == 0;
    if (strcmp(p, "/") == 0 || strcmp(p, "/fns") == 0 || strcmp(p, "/sns") == 0 ||
        strcmp(p, "/hns") == 0) {
        if (!post) {
            reply_error(req, 405, "TS002 messages are POSTed");
            return;
        }
        ts002(ns, req);
    } else if (strcmp(p, "/downlink") == 0 && post) {
        downlink(ns, req);
    } else if (strcmp(p, "/stats") == 0 && get) {
        stats(ns, req);
    } else if (strcmp(p, "/healthz") == 0 && get) {
        hs_reply(req, 200, "text/plain", "ok\n", 3);
    } else {
        reply_error(req, 404, "not found");
    }
}

int rn_http_start(roamns_t *ns)
{
    hs_opts_t o = {0};
    o.bind_addr = ns->cfg.ts002_address;
    o.port = ns->cfg.ts002_port;
    o.listen_fd = -1;
    o.handler = handler;
    o.handler_arg = ns;
    o.max_body_bytes = BI_MAX_BODY;
    ns->http = hs_server_new(ns->base, &o);
    return ns->http ? RH_OK : RH_EIO;
}

void rn_http_stop(roamns_t *ns)
{
    hs_server_free(ns->http);
    ns->http = NULL;
}
