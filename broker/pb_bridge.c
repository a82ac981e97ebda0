/* pb_bridge.c — Packet Broker forwarders' uplinks to TS002 home networks through the relay core
 * (see pb_bridge.h). */
#include "pb_bridge.h"

#include "lw_frame.h"
#include "metrics.h"
#include "pb_service.h"
#include "pb_token.h"
#include "pb_xlate.h"
#include "relay.h"
#include "relay_ts002.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What this front end keeps per transaction (relay_txn_ctx). */
typedef struct pbb_ctx {
    relay_ts002_out_t out; /* first: relay_ts002_send's part */
    worker_t *w;
    bi_msg_t *msg;         /* the PRStartReq sent */
    pb_ids_t fwd;          /* the forwarder's IDs as published (byte for byte) */
    bi_region_t region;    /* the uplink's region (downlink data rates) */
    bool downlink;         /* an XmitDataReq from a Packet Broker home network */
    pb_bridge_sync_t *sync; /* while routing: where a synchronous answer goes */
    size_t gw_tok_len, fwd_tok_len;
    uint8_t toks[];        /* gateway_uplink_token then forwarder_uplink_token, exactly */
} pbb_ctx_t;

/* Packs and queues a RoutedDownlinkMessage for the forwarder of c: the downlink (phy + dl of a
 * TS002 answer) with the forwarder's own tokens. */
static void downlink_to_forwarder(relay_txn_t *t, pbb_ctx_t *c, const relay_answer_t *a)
{
    worker_t *w = c->w;
    pb_xlate_dl_t x;
    rh_diag_t d = {{0}};
    if (pb_xlate_downlink(a->phy, a->phy_len, a->dl, c->region, &x, &d) != RH_OK) {
        metrics_event(w->metrics, "pb_bridge_downlink_refused");
        RH_LOG(RH_LOG_INFO, "pb", "bridged downlink not sent reason=\"%s\"", d.text);
        return;
    }
    x.dm.gateway_uplink_token.data = c->toks;
    x.dm.gateway_uplink_token.len = c->gw_tok_len;
    x.dm.forwarder_uplink_token.data = c->toks + c->gw_tok_len;
    x.dm.forwarder_uplink_token.len = c->fwd_tok_len;
    char mid[40];
    pb_router_new_id(w->pb->router, mid);
    uint8_t dl_token[8];
    size_t tl = 0;
    rh_hex_decode(mid + 16, 16, dl_token, sizeof dl_token, &tl, "id", NULL); /* our own hex */
    x.dm.downlink_token.data = dl_token;
    x.dm.downlink_token.len = 8;
    Google__Protobuf__Timestamp now;
    pb_timestamp_now(&now);
    const route_decision_t *rd = relay_txn_decision(t);
    Org__Packetbroker__V3__RoutedDownlinkMessage r;
    org__packetbroker__v3__routed_downlink_message__init(&r);
    r.time = &now;
    r.id = mid;
    r.home_network_net_id = rd->home.net_id;
    r.home_network_tenant_id = (char *)rd->home.tenant_id;
    r.home_network_cluster_id = (char *)"";
    r.forwarder_net_id = c->fwd.net_id;
    r.forwarder_tenant_id = c->fwd.tenant;
    r.forwarder_cluster_id = c->fwd.cluster;
    r.message = &x.dm;
    size_t n = protobuf_c_message_get_packed_size(&r.base);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return;
    protobuf_c_message_pack(&r.base, buf);
    lw_frame_t fr;
    rp_class_t cls = RP_CLASS_OTHER;
    if (lw_frame_decode(a->phy, a->phy_len, &fr, NULL) == RH_OK)
        cls = route_class_of(lw_frame_class(&fr));
    pb_item_meta_t meta = {.fwd_net_id = c->fwd.net_id, .home_net_id = rd->home.net_id,
                           .cls = cls, .recv_ns = rh_mono_ns()};
    memcpy(meta.id, mid, sizeof meta.id);
    int q = pb_router_route_downlink(w->pb->router, w, &c->fwd, buf, n, &meta);
    free(buf);
    if (q <= 0) {
        metrics_event(w->metrics, "pb_bridge_downlink_unrouted");
        RH_LOG(RH_LOG_INFO, "pb", "bridged downlink not sent id=%s reason=\"%s\"", mid,
               q < 0 ? "out of memory" : "the forwarder has no downlink subscription");
    }
}

/* ops.forward: the PRStartReq to the TS002 home network. */
static int pbb_forward(relay_txn_t *t, void *ctx, const relay_forward_t *f)
{
    pbb_ctx_t *c = ctx;
    if (!f->ep)
        return RH_EIO; /* not a TS002 receiver: pb_forwarder.c routes gRPC homes itself */
    return relay_ts002_send(t, c->msg, NULL, 0, f);
}

/* ops.answer: the home network's answer (or the core's failure) for the gRPC forwarder. */
static void pbb_answer(relay_txn_t *t, void *ctx, const relay_answer_t *a)
{
    pbb_ctx_t *c = ctx;
    if (c->sync) {
        c->sync->answered = true;
        c->sync->code = a->code;
        snprintf(c->sync->description, sizeof c->sync->description, "%s",
                 a->description ? a->description : "");
    }
    if (!c->downlink && a->phy && a->phy_len && a->dl && !a->downlink_refused)
        downlink_to_forwarder(t, c, a);
    /* Packet Broker has no uplink delivery state for a forwarder: the Result is the
     * transaction's counted outcome, and a debug line */
    RH_LOG(RH_LOG_DEBUG, "pb", "bridged uplink answered result=%s description=\"%s\"",
           bi_result_code_name(a->code, BI_VERSION_1_0, true),
           a->description ? a->description : "");
}

static void pbb_release(void *ctx)
{
    pbb_ctx_t *c = ctx;
    rh_arena_t *prev = arena_enter(c->out.arena);
    bi_msg_free(c->msg);
    arena_enter(prev == c->out.arena ? NULL : prev);
    arena_free(c->out.arena);
}

static const relay_fe_ops_t pbb_ops = {pbb_forward, pbb_answer, pbb_release};

static _Atomic uint32_t txid_seq; /* TransactionIDs of the PRStartReqs this front end builds */

int pb_bridge_uplink(worker_t *w, const Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *req,
                     const pb_ids_t *fwd, const peer_member_t *member, uint64_t recv_ns,
                     rh_diag_t *d)
{
    if (!member)
        return rh_diag_fail(d, RH_EPERM, "forwarder_net_id: no member record for this NetID "
                            "(bridging needs one)");
    const Org__Packetbroker__V3__UplinkMessage *um = req->message;
    peer_registry_t *reg = worker_registry(w);
    /* the sealed token: forwarder IDs and tokens, exactly */
    Roamhub__V1__BridgeToken bt = ROAMHUB__V1__BRIDGE_TOKEN__INIT;
    bt.kind = ROAMHUB__V1__BRIDGE_TOKEN__KIND__KIND_GRPC_FORWARDER;
    bt.forwarder_net_id = fwd->net_id;
    bt.forwarder_tenant_id = (char *)fwd->tenant;
    bt.forwarder_cluster_id = (char *)fwd->cluster;
    bt.gateway_uplink_token = um->gateway_uplink_token;
    bt.forwarder_uplink_token = um->forwarder_uplink_token;
    bt.region = (uint32_t)pb_xlate_region_to_bi(um->gateway_region);
    uint8_t tok[PB_TOKEN_MAX];
    size_t tl = 0;
    char aad[16];
    pb_token_aad(aad, sizeof aad, fwd->net_id, NULL, NULL);
    int rc = pb_token_seal_bridge(&w->pb->token_key, &bt, aad, rh_real_ms() / 1000, tok,
                                  sizeof tok, &tl);
    if (rc)
        return rh_diag_fail(d, rc, "message.gateway_uplink_token: %s",
                            rc == RH_ERANGE ? "too large to bridge" : "cannot be sealed");
    char hex[2 * PB_TOKEN_MAX + 1];
    rh_hex_encode(tok, tl, hex, 0);
    bi_ulmeta_t ul;
    bi_gwinfo_t gw;
    /* a gateway may take a downlink only when the forwarder gave a token for it */
    rc = pb_xlate_ulmeta(um, hex, &ul, &gw, d);
    if (rc)
        return rc;
    if (um->gateway_uplink_token.len == 0)
        gw.dl_allowed = false;
    rh_arena_t *arena = arena_new();
    rh_arena_t *prev = arena_enter(arena);
    bi_msg_t *msg = NULL;
    bi_id_t sender = {BI_ID_NETID, fwd->net_id}, receiver = {BI_ID_NETID, 0};
    uint32_t txid = atomic_fetch_add_explicit(&txid_seq, 1, memory_order_relaxed) + 1;
    bi_error_t err;
    rc = bi_msg_new(BI_MT_PR_START_REQ, BI_VERSION_1_0, sender, receiver, txid, &msg);
    if (!rc)
        rc = bi_msg_set_uplink(msg, um->phy_payload->plain.data, um->phy_payload->plain.len, &ul,
                               &err);
    if (rc) {
        bi_msg_free(msg);
        arena_enter(prev);
        arena_free(arena);
        return rh_diag_fail(d, rc == RH_ENOMEM ? RH_ENOMEM : RH_EINVAL, "message: %s",
                            rc == RH_ENOMEM ? "out of memory" : err.description);
    }
    relay_txn_params_t p = {0};
    p.sender = member;
    p.sender_id.kind = RP_STATS_ID_NETID;
    p.sender_id.id = fwd->net_id;
    p.sender_waits = false; /* the Publish was answered on acceptance */
    p.req_type = BI_MT_PR_START_REQ;
    p.ans_type = BI_MT_PR_START_ANS;
    p.sender_txid = txid;
    p.recv_ns = recv_ns;
    if (ul.present & BI_UL_RECV_TIME) {
        p.has_ul_recv_time = true;
        p.ul_recv_ms = ul.recv_time.sec * 1000 + ul.recv_time.nsec / 1000000;
    }
    size_t toks = um->gateway_uplink_token.len + um->forwarder_uplink_token.len;
    relay_txn_t *t = relay_txn_create(w, reg, &p, &pbb_ops, sizeof(pbb_ctx_t) + toks);
    if (!t) {
        bi_msg_free(msg);
        arena_enter(prev);
        arena_free(arena);
        return rh_diag_fail(d, RH_ENOMEM, "out of memory");
    }
    pbb_ctx_t *c = relay_txn_ctx(t);
    c->out.arena = arena;
    c->w = w;
    c->msg = msg;
    c->fwd = *fwd;
    c->region = (bi_region_t)bt.region;
    c->downlink = false;
    c->sync = NULL;
    c->gw_tok_len = um->gateway_uplink_token.len;
    c->fwd_tok_len = um->forwarder_uplink_token.len;
    if (c->gw_tok_len)
        memcpy(c->toks, um->gateway_uplink_token.data, c->gw_tok_len);
    if (c->fwd_tok_len)
        memcpy(c->toks + c->gw_tok_len, um->forwarder_uplink_token.data, c->fwd_tok_len);
    rp_party_t party;
    rp_party_set(&party, fwd->net_id, fwd->tenant, NULL);
    size_t phy_len;
    const uint8_t *phy = bi_msg_phy_payload(msg, &phy_len);
    route_msg_t v = {
        .kind = ROUTE_UPLINK,
        .sender = member,
        .sender_party = party,
        .receiver_is_eui = true, /* no ReceiverID: the frame decides */
        .receiver = 0,
        .phy = phy,
        .phy_len = phy_len,
        .malformed = BI_RC_MALFORMED_REQUEST,
        .any_transport = false, /* only TS002 receivers here */
    };
    metrics_event(w->metrics, "pb_bridged_uplink");
    relay_txn_route(t, &v); /* consumes the reference; counts the outcome */
    arena_enter(prev);
    return RH_OK;
}

int pb_bridge_downlink(worker_t *w, const pb_ids_t *home, const peer_member_t *member,
                       uint32_t fwd_net_id, const uint8_t *phy, size_t phy_len,
                       const bi_dlmeta_t *dl, uint64_t recv_ns, pb_bridge_sync_t *sync,
                       rh_diag_t *d)
{
    if (!member)
        return rh_diag_fail(d, RH_EPERM, "home_network_net_id: no member record for this NetID "
                            "(bridging needs one)");
    rh_arena_t *arena = arena_new();
    rh_arena_t *prev = arena_enter(arena);
    bi_msg_t *msg = NULL;
    bi_id_t sender = {BI_ID_NETID, home->net_id}, receiver = {BI_ID_NETID, fwd_net_id};
    uint32_t txid = atomic_fetch_add_explicit(&txid_seq, 1, memory_order_relaxed) + 1;
    bi_error_t err;
    int rc = bi_msg_new(BI_MT_XMIT_DATA_REQ, BI_VERSION_1_0, sender, receiver, txid, &msg);
    if (!rc)
        rc = bi_msg_set_downlink(msg, phy, phy_len, dl, &err);
    if (rc) {
        bi_msg_free(msg);
        arena_enter(prev);
        arena_free(arena);
        return rh_diag_fail(d, rc == RH_ENOMEM ? RH_ENOMEM : RH_EINVAL, "message: %s",
                            rc == RH_ENOMEM ? "out of memory"
                            : rc == RH_ESIZE ? "phy_payload: empty or longer than 255 bytes"
                                             : err.description);
    }
    relay_txn_params_t p = {0};
    p.sender = member;
    p.sender_id.kind = RP_STATS_ID_NETID;
    p.sender_id.id = home->net_id;
    p.req_type = BI_MT_XMIT_DATA_REQ;
    p.ans_type = BI_MT_XMIT_DATA_ANS;
    p.sender_txid = txid;
    p.recv_ns = recv_ns;
    relay_txn_t *t = relay_txn_create(w, worker_registry(w), &p, &pbb_ops, sizeof(pbb_ctx_t));
    if (!t) {
        bi_msg_free(msg);
        arena_enter(prev);
        arena_free(arena);
        return rh_diag_fail(d, RH_ENOMEM, "out of memory");
    }
    pbb_ctx_t *c = relay_txn_ctx(t);
    memset(c, 0, sizeof *c);
    c->out.arena = arena;
    c->w = w;
    c->msg = msg;
    c->downlink = true;
    c->sync = sync;
    rp_party_t party;
    rp_party_set(&party, home->net_id, home->tenant, NULL);
    size_t pl;
    const uint8_t *pp = bi_msg_phy_payload(msg, &pl);
    route_msg_t v = {
        .kind = ROUTE_DOWNLINK,
        .sender = member,
        .sender_party = party,
        .receiver_is_eui = false,
        .receiver = fwd_net_id,
        .phy = pp,
        .phy_len = pl,
        .malformed = BI_RC_MALFORMED_REQUEST,
        .any_transport = false,
    };
    metrics_event(w->metrics, "pb_bridged_downlink");
    relay_txn_ref(t); /* to clear c->sync after routing */
    relay_txn_route(t, &v);
    c->sync = NULL;
    relay_txn_unref(t);
    arena_enter(prev);
    return RH_OK;
}
