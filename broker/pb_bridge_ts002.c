/* pb_bridge_ts002.c — the Packet Broker side of TS002 members' relay transactions (see
 * pb_bridge_ts002.h). */
#include "pb_bridge_ts002.h"

#include "metrics.h"
#include "pb_filter.h"
#include "pb_routed.h"
#include "pb_service.h"
#include "pb_token.h"
#include "pb_xlate.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GW_TOKENS 16 /* GWInfo ULTokens a bridge token restores */

static const uint8_t DL_TOKEN_MAGIC[4] = {'R', 'H', 0, 1};

static int64_t now_s(void)
{
    return rh_real_ms() / 1000;
}

/* Refuses t with the sender's code for a malformed request, naming the field. */
static int refuse(relay_txn_t *t, const bi_msg_t *msg, const char *fmt, const char *field,
                  const char *why)
{
    char desc[240];
    snprintf(desc, sizeof desc, fmt, field, why);
    relay_txn_refuse(t, bi_result_code_malformed(bi_msg_header(msg)->version), desc,
                     RP_OUT_MALFORMED);
    return RH_OK;
}

/* A gateway of the TS002 uplink may take a downlink: DLAllowed, or a ULToken without DLAllowed. */
static bool gw_dl(const bi_gwinfo_t *g)
{
    if (g->present & BI_GW_DL_ALLOWED)
        return g->dl_allowed;
    return (g->present & BI_GW_UL_TOKEN) != 0;
}

/* ---------------------------------------------------------------- uplink -> gRPC home */

static int send_uplink(relay_txn_t *t, worker_t *w, bi_msg_t *msg, const relay_forward_t *f)
{
    const route_decision_t *rd = relay_txn_decision(t);
    const bi_fields_t *fl = bi_msg_fields(msg);
    if (!(fl->present & BI_F_PHY_PAYLOAD))
        return refuse(t, msg, "%s: %s", "PHYPayload",
                      "missing (a Packet Broker home network takes frames, not FRMPayload)");
    pb_uplink_facts_t facts;
    rh_diag_t d = {{0}};
    if (pb_uplink_facts(fl->phy_payload, fl->phy_payload_len, &facts, &d) != RH_OK)
        return refuse(t, msg, "%s: %s", "PHYPayload", d.text);
    const bi_ulmeta_t *ul = &fl->ul;
    int best = pb_xlate_best_gw(ul);
    pb_xlate_up_t x;
    if (pb_xlate_uplink(fl->phy_payload, fl->phy_payload_len, ul, best, &x, &d) != RH_OK)
        return refuse(t, msg, "%s%s", "", d.text);
    /* the sealed token: what the downlink and the Result need, the forwarder's tokens exactly */
    Roamhub__V1__BridgeToken bt = ROAMHUB__V1__BRIDGE_TOKEN__INIT;
    bt.kind = ROAMHUB__V1__BRIDGE_TOKEN__KIND__KIND_TS002_FORWARDER;
    bt.forwarder_net_id = rd->fwd.net_id;
    bt.forwarder_tenant_id = (char *)rd->fwd.tenant_id;
    bt.forwarder_cluster_id = (char *)"";
    bt.home_net_id = rd->home.net_id;
    bt.region = (uint32_t)pb_xlate_region_to_bi(x.um.gateway_region);
    char *gwt[MAX_GW_TOKENS];
    bool downlink = false;
    for (size_t i = 0; ul->gw && i < ul->gw_count; i++) {
        if (!gw_dl(&ul->gw[i]))
            continue;
        downlink = true;
        if ((ul->gw[i].present & BI_GW_UL_TOKEN) && bt.n_gw_ul_tokens < MAX_GW_TOKENS)
            gwt[bt.n_gw_ul_tokens++] = (char *)ul->gw[i].ul_token;
    }
    bt.gw_ul_tokens = gwt;
    if (ul->present & BI_UL_FNS_UL_TOKEN) {
        bt.has_fns_ul_token = true;
        bt.fns_ul_token = (char *)ul->fns_ul_token;
    }
    bt.hub_txid = f->set_txid ? f->hub_txid : 0;
    bt.ans_type = (uint32_t)relay_txn_ans_type(t);
    bt.join = facts.is_join;
    uint8_t tok[PB_TOKEN_MAX];
    size_t tl = 0;
    char aad[160];
    pb_token_aad(aad, sizeof aad, rd->fwd.net_id, rd->fwd.tenant_id, "");
    int rc = pb_token_seal_bridge(&w->pb->token_key, &bt, aad, now_s(), tok, sizeof tok, &tl);
    if (rc == RH_ERANGE)
        return refuse(t, msg, "%s: %s", "ULMetaData.GWInfo",
                      "the gateways' tokens are too large to bridge");
    if (rc)
        return RH_ENOMEM;
    x.um.forwarder_uplink_token.data = tok;
    x.um.forwarder_uplink_token.len = tl;
    if (downlink) { /* the agent only downlinks with a gateway token */
        x.um.gateway_uplink_token.data = tok;
        x.um.gateway_uplink_token.len = tl;
    }
    char mid[40];
    pb_router_new_id(w->pb->router, mid);
    Google__Protobuf__Timestamp now;
    pb_timestamp_now(&now);
    Org__Packetbroker__V3__RouteHop hop, *hops[1] = {&hop};
    org__packetbroker__v3__route_hop__init(&hop);
    hop.received_at = &now;
    hop.sender_name = (char *)relay_txn_sender(t)->id; /* the TS002 member */
    hop.sender_address = (char *)"";
    hop.receiver_name = (char *)"roamhub";
    hop.receiver_agent = w->pb->agent;
    hop.protocol = bi_msg_header(msg)->version == BI_VERSION_1_1
                       ? ORG__PACKETBROKER__V3__PROTOCOL__TS002_V1_1
                       : ORG__PACKETBROKER__V3__PROTOCOL__TS002_V1_0;
    Org__Packetbroker__V3__RoutedUplinkMessage r;
    org__packetbroker__v3__routed_uplink_message__init(&r);
    r.time = &now;
    r.id = mid;
    r.forwarder_net_id = rd->fwd.net_id;
    r.forwarder_tenant_id = (char *)rd->fwd.tenant_id;
    r.forwarder_cluster_id = (char *)"";
    r.home_network_net_id = rd->home.net_id;
    r.home_network_tenant_id = (char *)rd->home.tenant_id;
    r.message = &x.um;
    r.n_hops = 1;
    r.hops = hops;
    pb_item_meta_t meta = {.fwd_net_id = rd->fwd.net_id, .home_net_id = rd->home.net_id,
                           .cls = rd->cls, .recv_ns = rh_mono_ns(), .bridged = true,
                           .hub_txid = bt.hub_txid, .ans_type = bt.ans_type};
    memcpy(meta.id, mid, sizeof meta.id);
    int n = pb_router_route_uplink(w->pb->router, w, rd->home.net_id, rd->home.tenant_id, &facts,
                                   pb_routed_encode_uplink, &r, &meta);
    if (n < 0)
        return RH_ENOMEM;
    if (n == 0)
        return RH_ENOTFOUND;
    metrics_event(w->metrics, "pb_bridged_uplink");
    return RH_OK;
}

/* ---------------------------------------------------------------- downlink -> gRPC forwarder */

int pb_bridge_ts002_dl_token(worker_t *w, const bi_dlmeta_t *dl, uint32_t fwd_net_id,
                             uint32_t home_net_id, Roamhub__V1__BridgeToken **out,
                             const char **field, rh_diag_t *d)
{
    *out = NULL;
    static const char *const gw_field[] = {"DLMetaData.GWInfo[0].ULToken",
                                           "DLMetaData.GWInfo[1].ULToken",
                                           "DLMetaData.GWInfo[2].ULToken",
                                           "DLMetaData.GWInfo[3].ULToken"};
    const char *hex = NULL;
    *field = "DLMetaData.FNSULToken";
    for (size_t i = 0; dl->gw && i < dl->gw_count && !hex; i++) {
        if ((dl->gw[i].present & BI_GW_UL_TOKEN) && dl->gw[i].ul_token) {
            hex = dl->gw[i].ul_token;
            *field = i < 4 ? gw_field[i] : "DLMetaData.GWInfo[].ULToken";
        }
    }
    if (!hex && (dl->present & BI_DL_FNS_UL_TOKEN))
        hex = dl->fns_ul_token;
    if (!hex)
        return rh_diag_fail(d, RH_ENOTFOUND, "missing (a Packet Broker forwarder's downlink "
                            "needs the token of its uplink)");
    char aad[16];
    pb_token_aad(aad, sizeof aad, fwd_net_id, NULL, NULL);
    Roamhub__V1__BridgeToken *bt = NULL;
    int rc = pb_token_open_bridge_hex(&w->pb->token_key, hex, aad, now_s(), &bt, d);
    if (rc)
        return rc;
    if (bt->kind != ROAMHUB__V1__BRIDGE_TOKEN__KIND__KIND_GRPC_FORWARDER)
        rc = rh_diag_fail(d, RH_EINVAL, "not a token of a Packet Broker forwarder's uplink");
    else if (bt->home_net_id != home_net_id) /* another member's: no downlinks with it */
        rc = rh_diag_fail(d, RH_EPERM, "sealed for another home network");
    else if (strlen(bt->forwarder_tenant_id) > PB_ID_MAX ||
             strlen(bt->forwarder_cluster_id) > PB_ID_MAX)
        rc = rh_diag_fail(d, RH_EINVAL, "forwarder identity too long");
    if (rc) {
        roamhub__v1__bridge_token__free_unpacked(bt, NULL);
        return rc;
    }
    *out = bt;
    return RH_OK;
}

static int send_downlink(relay_txn_t *t, worker_t *w, bi_msg_t *msg)
{
    const route_decision_t *rd = relay_txn_decision(t);
    const bi_fields_t *fl = bi_msg_fields(msg);
    const bi_dlmeta_t *dl = &fl->dl;
    const char *field;
    Roamhub__V1__BridgeToken *bt = NULL;
    rh_diag_t d = {{0}};
    int rc = pb_bridge_ts002_dl_token(w, dl, rd->fwd.net_id, rd->home.net_id, &bt, &field, &d);
    if (rc == RH_ENOMEM)
        return RH_ENOMEM;
    if (rc == RH_ENOTFOUND)
        return refuse(t, msg, "%s: %s", field, d.text);
    if (rc == RH_OK && !(fl->present & BI_F_PHY_PAYLOAD)) {
        roamhub__v1__bridge_token__free_unpacked(bt, NULL);
        return refuse(t, msg, "%s: %s", "PHYPayload", "missing");
    }
    if (rc) {
        metrics_event(w->metrics, "pb_bridge_token_refused");
        return refuse(t, msg, "%s: %s", field, d.text);
    }
    pb_ids_t fwd = {0};
    fwd.net_id = bt->forwarder_net_id;
    snprintf(fwd.tenant, sizeof fwd.tenant, "%s", bt->forwarder_tenant_id);
    snprintf(fwd.cluster, sizeof fwd.cluster, "%s", bt->forwarder_cluster_id);
    pb_xlate_dl_t x;
    if (pb_xlate_downlink(fl->phy_payload, fl->phy_payload_len, dl, (bi_region_t)bt->region, &x,
                          &d) != RH_OK) {
        roamhub__v1__bridge_token__free_unpacked(bt, NULL);
        return refuse(t, msg, "%s%s", "", d.text);
    }
    x.dm.gateway_uplink_token = bt->gateway_uplink_token;
    x.dm.forwarder_uplink_token = bt->forwarder_uplink_token;
    uint8_t dl_token[8];
    memcpy(dl_token, DL_TOKEN_MAGIC, 4);
    uint32_t txid = relay_txn_hub_txid(t);
    for (int i = 0; i < 4; i++)
        dl_token[4 + i] = (uint8_t)(txid >> (24 - 8 * i));
    x.dm.downlink_token.data = dl_token;
    x.dm.downlink_token.len = 8;
    int q = pb_bridge_route_downlink(w, &x.dm, rd->home.net_id, rd->home.tenant_id, &fwd,
                                     rd->cls, true);
    roamhub__v1__bridge_token__free_unpacked(bt, NULL);
    if (q < 0)
        return RH_ENOMEM;
    if (q == 0)
        return RH_ENOTFOUND;
    metrics_event(w->metrics, "pb_bridged_downlink");
    return RH_OK;
}

int pb_bridge_route_downlink(worker_t *w, Org__Packetbroker__V3__DownlinkMessage *dm,
                             uint32_t home_net_id, const char *home_tenant, const pb_ids_t *fwd,
                             rp_class_t cls, bool bridged)
{
    char mid[40];
    pb_router_new_id(w->pb->router, mid);
    uint8_t dl_token[8];
    if (dm->downlink_token.len == 0) { /* the router's, as pb_home.c mints them */
        size_t tl = 0;
        rh_hex_decode(mid + 16, 16, dl_token, sizeof dl_token, &tl, "id", NULL); /* our hex */
        dm->downlink_token.data = dl_token;
        dm->downlink_token.len = 8;
    }
    Google__Protobuf__Timestamp now;
    pb_timestamp_now(&now);
    Org__Packetbroker__V3__RoutedDownlinkMessage r;
    org__packetbroker__v3__routed_downlink_message__init(&r);
    r.time = &now;
    r.id = mid;
    r.home_network_net_id = home_net_id;
    r.home_network_tenant_id = (char *)home_tenant;
    r.home_network_cluster_id = (char *)"";
    r.forwarder_net_id = fwd->net_id;
    r.forwarder_tenant_id = (char *)fwd->tenant;
    r.forwarder_cluster_id = (char *)fwd->cluster;
    r.message = dm;
    size_t n = protobuf_c_message_get_packed_size(&r.base);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return RH_ENOMEM;
    protobuf_c_message_pack(&r.base, buf);
    pb_item_meta_t meta = {.fwd_net_id = fwd->net_id, .home_net_id = home_net_id, .cls = cls,
                           .recv_ns = rh_mono_ns(), .bridged = bridged,
                           .home_ts002 = true}; /* always a TS002 party's downlink */
    if (bridged && pb_bridge_ts002_dl_token_txid(dm->downlink_token.data, dm->downlink_token.len,
                                                 &meta.hub_txid))
        meta.ans_type = BI_MT_XMIT_DATA_ANS; /* a TS002 home network's XmitDataReq */
    memcpy(meta.id, mid, sizeof meta.id);
    int q = pb_router_route_downlink(w->pb->router, w, fwd, buf, n, &meta);
    free(buf);
    if (q == 0)
        RH_LOG(RH_LOG_INFO, "pb", "bridged downlink not sent id=%s reason=\"the forwarder has no "
               "downlink subscription\"", mid);
    return q;
}

int pb_bridge_ts002_send(relay_txn_t *t, bi_msg_t *msg, const relay_forward_t *f)
{
    worker_t *w = relay_txn_worker(t);
    if (!w->pb)
        return RH_ENOTFOUND;
    if (f->strip)
        bi_msg_strip_gwinfo(msg, f->strip);
    switch (relay_txn_decision(t)->kind) {
    case ROUTE_UPLINK:
        return send_uplink(t, w, msg, f);
    case ROUTE_DOWNLINK:
        return send_downlink(t, w, msg);
    default:
        return RH_ENOTFOUND; /* Packet Broker carries no other message */
    }
}

/* ---------------------------------------------------------------- answers (claims) */

int pb_bridge_ts002_open(worker_t *w, const uint8_t *tok, size_t n, uint32_t fwd_net_id,
                         const char *fwd_tenant, const char *fwd_cluster, uint32_t home_net_id,
                         Roamhub__V1__BridgeToken **out, rh_diag_t *d)
{
    char aad[160];
    pb_token_aad(aad, sizeof aad, fwd_net_id, fwd_tenant, fwd_cluster);
    int rc = pb_token_open_bridge(&w->pb->token_key, tok, n, aad, now_s(), out, d);
    if (rc)
        return rc;
    if ((*out)->kind != ROAMHUB__V1__BRIDGE_TOKEN__KIND__KIND_TS002_FORWARDER)
        rc = rh_diag_fail(d, RH_EINVAL, "not a token of a TS002 forwarder's uplink");
    else if ((*out)->home_net_id != home_net_id)
        rc = rh_diag_fail(d, RH_EPERM, "sealed for another home network");
    if (rc) {
        roamhub__v1__bridge_token__free_unpacked(*out, NULL);
        *out = NULL;
    }
    return rc;
}

int pb_bridge_ts002_dlmeta(const Roamhub__V1__BridgeToken *bt,
                           const Org__Packetbroker__V3__DownlinkMessage *dm, bi_dlmeta_t *dl,
                           bi_gwinfo_t *gw, size_t gw_cap, rh_diag_t *d)
{
    int rc = pb_xlate_dlmeta(dm, (bi_region_t)bt->region, dl, d);
    if (rc)
        return rc;
    if (bt->has_fns_ul_token) {
        dl->present |= BI_DL_FNS_UL_TOKEN;
        dl->fns_ul_token = bt->fns_ul_token;
    }
    size_t n = bt->n_gw_ul_tokens < gw_cap ? bt->n_gw_ul_tokens : gw_cap;
    for (size_t i = 0; i < n; i++) {
        memset(&gw[i], 0, sizeof gw[i]);
        gw[i].present = BI_GW_UL_TOKEN;
        gw[i].ul_token = bt->gw_ul_tokens[i];
    }
    if (n) {
        dl->present |= BI_DL_GW_INFO;
        dl->gw = gw;
        dl->gw_count = n;
    }
    return RH_OK;
}

/* An answer handed to the transaction's worker: everything copied. */
typedef struct handoff {
    bi_result_code_t code;
    const char *description; /* static (enum names) or desc */
    char desc[96];
    bool has_dl;
    size_t phy_len;
    uint8_t phy[BI_MAX_PHY];
    bi_dlmeta_t dl;
    bi_gwinfo_t gw[MAX_GW_TOKENS];
    char *strings; /* the tokens' copies */
} handoff_t;

static void handoff_run(relay_txn_t *t, void *arg)
{
    handoff_t *h = arg;
    relay_answer_t a = {.code = h->code, .description = h->description};
    if (h->has_dl) {
        a.phy = h->phy;
        a.phy_len = h->phy_len;
        a.dl = &h->dl;
    }
    relay_txn_complete(t, &a);
    free(h->strings);
    free(h);
}

static bool hand_over(relay_txn_t *t, handoff_t *h)
{
    if (!t) {
        free(h->strings);
        free(h);
        return false;
    }
    if (relay_txn_post_claimed(t, handoff_run, h) != RH_OK) {
        free(h->strings);
        free(h);
        return false; /* put back: the owner's timer fails it */
    }
    return true;
}

bool pb_bridge_ts002_answer(worker_t *w, uint32_t home_net_id,
                            const Roamhub__V1__BridgeToken *bt, const uint8_t *phy,
                            size_t phy_len, const bi_dlmeta_t *dl)
{
    if (!bt->hub_txid || phy_len == 0 || phy_len > BI_MAX_PHY)
        return false;
    handoff_t *h = calloc(1, sizeof *h);
    if (!h)
        return false;
    h->code = BI_RC_SUCCESS;
    h->has_dl = true;
    h->phy_len = phy_len;
    memcpy(h->phy, phy, phy_len);
    h->dl = *dl;
    /* the tokens point into bt, which the caller frees: copy them into one block */
    size_t need = 1 + (dl->fns_ul_token ? strlen(dl->fns_ul_token) + 1 : 0);
    size_t ng = dl->gw_count < MAX_GW_TOKENS ? dl->gw_count : MAX_GW_TOKENS;
    for (size_t i = 0; i < ng; i++)
        need += dl->gw[i].ul_token ? strlen(dl->gw[i].ul_token) + 1 : 0;
    h->strings = malloc(need);
    if (!h->strings) {
        free(h);
        return false;
    }
    char *p = h->strings;
    if (dl->fns_ul_token) {
        strcpy(p, dl->fns_ul_token);
        h->dl.fns_ul_token = p;
        p += strlen(p) + 1;
    }
    for (size_t i = 0; i < ng; i++) {
        h->gw[i] = dl->gw[i];
        if (dl->gw[i].ul_token) {
            strcpy(p, dl->gw[i].ul_token);
            h->gw[i].ul_token = p;
            p += strlen(p) + 1;
        }
    }
    h->dl.gw = ng ? h->gw : NULL;
    h->dl.gw_count = ng;
    relay_txn_t *t = relay_txn_claim_party(w, home_net_id, bt->hub_txid,
                                           (bi_msg_type_t)bt->ans_type);
    return hand_over(t, h);
}

bool pb_bridge_ts002_report(worker_t *w, uint32_t home_net_id,
                            const Roamhub__V1__BridgeToken *bt, bool has_error, int error,
                            const char *error_name)
{
    if (!bt->hub_txid || (bt->join && !has_error))
        return false; /* a join-request waits for its join-accept */
    handoff_t *h = calloc(1, sizeof *h);
    if (!h)
        return false;
    h->code = pb_xlate_report_result(has_error, error, bt->join);
    if (has_error) {
        snprintf(h->desc, sizeof h->desc, "home network reported %s",
                 error_name ? error_name : "an error");
        h->description = h->desc;
    }
    relay_txn_t *t = relay_txn_claim_party(w, home_net_id, bt->hub_txid,
                                           (bi_msg_type_t)bt->ans_type);
    return hand_over(t, h);
}

bool pb_bridge_ts002_dl_token_txid(const uint8_t *dl_token, size_t len, uint32_t *txid)
{
    if (len != 8 || memcmp(dl_token, DL_TOKEN_MAGIC, 4) != 0)
        return false;
    *txid = (uint32_t)dl_token[4] << 24 | (uint32_t)dl_token[5] << 16 |
            (uint32_t)dl_token[6] << 8 | dl_token[7];
    return true;
}

bool pb_bridge_ts002_dl_report(worker_t *w, uint32_t fwd_net_id, const uint8_t *dl_token,
                               size_t len, bool has_error, const char *error_name)
{
    uint32_t txid;
    if (!pb_bridge_ts002_dl_token_txid(dl_token, len, &txid))
        return false;
    handoff_t *h = calloc(1, sizeof *h);
    if (!h)
        return false;
    h->code = has_error ? BI_RC_XMIT_FAILED : BI_RC_SUCCESS;
    if (has_error) {
        snprintf(h->desc, sizeof h->desc, "forwarder reported %s",
                 error_name ? error_name : "an error");
        h->description = h->desc;
    }
    relay_txn_t *t = relay_txn_claim_party(w, fwd_net_id, txid, BI_MT_XMIT_DATA_ANS);
    return hand_over(t, h);
}
