/* pb_bridge.c — Packet Broker forwarders' uplinks to TS002 home networks through the relay core
 * (see pb_bridge.h). */
#include "pb_bridge.h"

#include "pb_bridge_ts002.h"
#include "pb_merge.h"

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

/* The statistics class of a frame (RP_CLASS_OTHER when it does not decode). */
static rp_class_t frame_class(const uint8_t *phy, size_t len)
{
    lw_frame_t fr;
    if (lw_frame_decode(phy, len, &fr, NULL) != RH_OK)
        return RP_CLASS_OTHER;
    return route_class_of(lw_frame_class(&fr));
}

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
    /* the gateway the home network chose (its DLMetaData token: one of the merged copies'),
     * else the first copy's */
    const route_decision_t *rd = relay_txn_decision(t);
    Roamhub__V1__BridgeToken *bt = NULL;
    const char *field;
    if (pb_bridge_ts002_dl_token(w, a->dl, c->fwd.net_id, rd->home.net_id, &bt, &field, &d) ==
            RH_OK &&
        bt->forwarder_net_id == c->fwd.net_id &&
        strcmp(bt->forwarder_tenant_id, c->fwd.tenant) == 0 &&
        strcmp(bt->forwarder_cluster_id, c->fwd.cluster) == 0) {
        x.dm.gateway_uplink_token = bt->gateway_uplink_token;
        x.dm.forwarder_uplink_token = bt->forwarder_uplink_token;
    } else {
        x.dm.gateway_uplink_token.data = c->toks;
        x.dm.gateway_uplink_token.len = c->gw_tok_len;
        x.dm.forwarder_uplink_token.data = c->toks + c->gw_tok_len;
        x.dm.forwarder_uplink_token.len = c->fwd_tok_len;
    }
    rp_class_t cls = frame_class(a->phy, a->phy_len);
    /* its own count (pb_router hooks), as every downlink handed to a forwarder */
    if (pb_bridge_route_downlink(w, &x.dm, rd->home.net_id, rd->home.tenant_id, &c->fwd, cls,
                                 false) <= 0)
        metrics_event(w->metrics, "pb_bridge_downlink_unrouted");
    if (bt)
        roamhub__v1__bridge_token__free_unpacked(bt, NULL);
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

static _Atomic uint32_t txid_seq; /* TransactionIDs of the requests this front end builds */

/* What one bridged request is. */
typedef struct pbb_req {
    bi_msg_type_t type, ans_type;
    uint32_t sender_net_id;     /* the Packet Broker party sending */
    const char *sender_tenant;
    route_kind_t kind;          /* ROUTE_UPLINK: routed by the frame; ROUTE_DOWNLINK: to receiver */
    uint32_t receiver;          /* ReceiverID NetID (0 for an uplink: the core names the home) */
    const uint8_t *phy;
    size_t phy_len;
    const bi_ulmeta_t *ul;      /* exactly one of ul / dl */
    const bi_dlmeta_t *dl;
    uint64_t recv_ns;
    size_t extra;               /* bytes of pbb_ctx_t.toks the fill callback writes */
} pbb_req_t;

/* Builds the TS002 request r through the codec and routes it as a relay transaction sent by
 * member; fill (may be NULL) completes the context before routing. *sync (may be NULL) gets an
 * answer given while routing. Returns RH_OK when the transaction took it, else an error with d. */
static int pbb_start(worker_t *w, const peer_member_t *member, const pbb_req_t *r,
                     void (*fill)(pbb_ctx_t *c, const void *arg), const void *arg,
                     pb_bridge_sync_t *sync, rh_diag_t *d)
{
    rh_arena_t *arena = arena_new();
    rh_arena_t *prev = arena_enter(arena);
    bi_msg_t *msg = NULL;
    bi_id_t sender = {BI_ID_NETID, r->sender_net_id}, receiver = {BI_ID_NETID, r->receiver};
    uint32_t txid = atomic_fetch_add_explicit(&txid_seq, 1, memory_order_relaxed) + 1;
    bi_error_t err;
    err.description[0] = '\0';
    int rc = bi_msg_new(r->type, BI_VERSION_1_0, sender, receiver, txid, &msg);
    if (!rc)
        rc = r->ul ? bi_msg_set_uplink(msg, r->phy, r->phy_len, r->ul, &err)
                   : bi_msg_set_downlink(msg, r->phy, r->phy_len, r->dl, &err);
    relay_txn_params_t p = {0};
    p.sender = member;
    p.sender_id.kind = RP_STATS_ID_NETID;
    p.sender_id.id = r->sender_net_id;
    p.sender_protocol = RP_PROTO_PACKET_BROKER;
    p.sender_waits = false; /* the gRPC call was answered on acceptance */
    p.req_type = r->type;
    p.ans_type = r->ans_type;
    p.sender_txid = txid;
    p.recv_ns = r->recv_ns;
    if (r->ul && (r->ul->present & BI_UL_RECV_TIME)) {
        p.has_ul_recv_time = true;
        p.ul_recv_ms = r->ul->recv_time.sec * 1000 + r->ul->recv_time.nsec / 1000000;
    }
    relay_txn_t *t = rc ? NULL
                        : relay_txn_create(w, worker_registry(w), &p, &pbb_ops,
                                           sizeof(pbb_ctx_t) + r->extra);
    if (!t) {
        bi_msg_free(msg);
        arena_enter(prev);
        arena_free(arena);
        return rh_diag_fail(d, rc == RH_EINVAL || rc == RH_ESIZE ? RH_EINVAL : RH_ENOMEM,
                            "message: %s",
                            rc == RH_ESIZE ? "phy_payload: empty or longer than 255 bytes"
                            : rc && rc != RH_ENOMEM ? err.description
                                                    : "out of memory");
    }
    pbb_ctx_t *c = relay_txn_ctx(t);
    memset(c, 0, sizeof *c);
    c->out.arena = arena;
    c->w = w;
    c->msg = msg;
    c->downlink = r->kind == ROUTE_DOWNLINK;
    c->sync = sync;
    if (fill)
        fill(c, arg);
    rp_party_t party;
    rp_party_set(&party, r->sender_net_id, r->sender_tenant, NULL);
    size_t pl;
    const uint8_t *pp = bi_msg_phy_payload(msg, &pl);
    route_msg_t v = {
        .kind = r->kind,
        .sender = member,
        .sender_party = party,
        .receiver_is_eui = r->kind == ROUTE_UPLINK, /* an uplink: the frame decides */
        .receiver = r->receiver,
        .phy = pp,
        .phy_len = pl,
        .malformed = BI_RC_MALFORMED_REQUEST,
        .any_transport = false, /* only TS002 receivers here */
    };
    relay_txn_ref(t); /* to clear c->sync after routing */
    relay_txn_route(t, &v); /* consumes the creator's reference; counts the outcome */
    c->sync = NULL;
    relay_txn_unref(t);
    arena_enter(prev);
    return RH_OK;
}

/* What a bridged uplink's transaction keeps of its (first) copy: the region and the
 * forwarder's two tokens (toks: gateway_uplink_token then forwarder_uplink_token), the fallback
 * of a join-accept whose DLMetaData names no gateway. Also what pb_merge keeps of a first copy. */
typedef struct up_first {
    bi_region_t region;
    uint32_t home_net_id; /* routing's decision for the first copy (statistics) */
    uint64_t recv_ns;
    size_t gw_tok_len, fwd_tok_len;
    uint8_t toks[];
} up_first_t;

typedef struct up_fill {
    const pb_ids_t *fwd;
    const up_first_t *first;
} up_fill_t;

static void fill_uplink(pbb_ctx_t *c, const void *arg)
{
    const up_fill_t *f = arg;
    c->fwd = *f->fwd;
    c->region = f->first->region;
    c->gw_tok_len = f->first->gw_tok_len;
    c->fwd_tok_len = f->first->fwd_tok_len;
    if (c->gw_tok_len + c->fwd_tok_len)
        memcpy(c->toks, f->first->toks, c->gw_tok_len + c->fwd_tok_len);
}

/* Sends one bridged uplink (a single copy, or the copies pb_merge gathered: ul carries their
 * GWInfo) as a PRStartReq transaction. */
static int send_uplink(worker_t *w, const peer_member_t *member, const pb_ids_t *fwd,
                       const uint8_t *phy, size_t phy_len, const bi_ulmeta_t *ul,
                       const up_first_t *first, rh_diag_t *d)
{
    pbb_req_t r = {.type = BI_MT_PR_START_REQ, .ans_type = BI_MT_PR_START_ANS,
                   .sender_net_id = fwd->net_id, .sender_tenant = fwd->tenant,
                   .kind = ROUTE_UPLINK, .receiver = 0, .phy = phy, .phy_len = phy_len,
                   .ul = ul, .recv_ns = first->recv_ns,
                   .extra = first->gw_tok_len + first->fwd_tok_len};
    up_fill_t f = {fwd, first};
    int rc = pbb_start(w, member, &r, fill_uplink, &f, NULL, d);
    if (rc == RH_OK)
        metrics_event(w->metrics, "pb_bridged_uplink");
    return rc;
}

/* pb_merge's flush: the gathered copies of one uplink, as one PRStartReq. The member record is
 * looked up again (the registry may have been rebuilt during the window); when the uplink
 * cannot be bridged now it is counted no_route for the pair, as pb_fwd_publish counts a copy it
 * could not bridge. */
static void flush_merged(void *arg, const pb_merged_t *m)
{
    worker_t *w = arg;
    const up_first_t *first = m->first;
    const peer_member_t *member = pb_member_of(w, m->fwd->net_id, m->fwd->tenant);
    rh_diag_t d = {{0}};
    int rc = member ? send_uplink(w, member, m->fwd, m->phy, m->phy_len, m->ul, first, &d)
                    : rh_diag_fail(&d, RH_EPERM, "forwarder_net_id: no member record for this "
                                   "NetID (bridging needs one)");
    if (rc == RH_OK)
        return;
    metrics_event(w->metrics, "pb_bridge_unavailable");
    RH_LOG(RH_LOG_INFO, "pb", "merged uplink not bridged copies=%zu reason=\"%s\"", m->copies,
           d.text);
    pb_count(w, m->fwd->net_id, first->home_net_id, RP_PROTO_PACKET_BROKER, /* refused */
             frame_class(m->phy, m->phy_len), RP_OUT_NO_ROUTE, NULL, first->recv_ns,
             member ? member->id : NULL);
}

int pb_bridge_worker_start(worker_t *w)
{
    if (!w->pb || w->pb->merge_window_ms == 0)
        return RH_OK; /* merging off: every copy is its own PRStartReq */
    w->pb_merge = pb_merge_new(w->base, w->pb->merge_window_ms, w->pb->merge_max, flush_merged,
                               w);
    return w->pb_merge ? RH_OK : RH_ENOMEM;
}

void pb_bridge_worker_drain(worker_t *w)
{
    size_t n = pb_merge_flush_all(w->pb_merge);
    if (n)
        RH_LOG(RH_LOG_INFO, "pb", "draining: merged uplinks sent before their window ended "
               "merges=%zu", n);
}

void pb_bridge_worker_stop(worker_t *w)
{
    size_t dropped = pb_merge_free(w->pb_merge);
    w->pb_merge = NULL;
    if (dropped)
        RH_LOG(RH_LOG_INFO, "pb", "stopping: uplink copies still in their merge window dropped "
               "copies=%zu", dropped);
}

int pb_bridge_uplink(worker_t *w, const Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *req,
                     const pb_ids_t *fwd, const peer_member_t *member, uint32_t home_net_id,
                     uint64_t recv_ns, rh_diag_t *d)
{
    if (!member)
        return rh_diag_fail(d, RH_EPERM, "forwarder_net_id: no member record for this NetID "
                            "(bridging needs one)");
    const Org__Packetbroker__V3__UplinkMessage *um = req->message;
    /* the sealed token: forwarder IDs and tokens, exactly */
    Roamhub__V1__BridgeToken bt = ROAMHUB__V1__BRIDGE_TOKEN__INIT;
    bt.kind = ROAMHUB__V1__BRIDGE_TOKEN__KIND__KIND_GRPC_FORWARDER;
    bt.forwarder_net_id = fwd->net_id;
    bt.forwarder_tenant_id = (char *)fwd->tenant;
    bt.forwarder_cluster_id = (char *)fwd->cluster;
    bt.gateway_uplink_token = um->gateway_uplink_token;
    bt.forwarder_uplink_token = um->forwarder_uplink_token;
    bt.region = (uint32_t)pb_xlate_region_to_bi(um->gateway_region);
    bt.home_net_id = home_net_id;
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
    rc = pb_xlate_ulmeta(um, hex, &ul, &gw, d);
    if (rc)
        return rc;
    if (um->gateway_uplink_token.len == 0)
        gw.dl_allowed = false; /* a gateway takes a downlink only with the forwarder's token */
    size_t tl2 = um->gateway_uplink_token.len + um->forwarder_uplink_token.len;
    _Alignas(up_first_t) uint8_t fbuf[sizeof(up_first_t) + 2 * PB_TOKEN_MAX];
    up_first_t *first = (up_first_t *)fbuf;
    if (tl2 > 2 * PB_TOKEN_MAX) /* the sealed token holds both: it would have refused */
        return rh_diag_fail(d, RH_EINVAL, "message.gateway_uplink_token: too large to bridge");
    first->region = (bi_region_t)bt.region;
    first->recv_ns = recv_ns;
    first->home_net_id = home_net_id;
    first->gw_tok_len = um->gateway_uplink_token.len;
    first->fwd_tok_len = um->forwarder_uplink_token.len;
    if (first->gw_tok_len)
        memcpy(first->toks, um->gateway_uplink_token.data, first->gw_tok_len);
    if (first->fwd_tok_len)
        memcpy(first->toks + first->gw_tok_len, um->forwarder_uplink_token.data,
               first->fwd_tok_len);
    const uint8_t *phy = um->phy_payload->plain.data;
    size_t phy_len = um->phy_payload->plain.len;
    if (w->pb_merge) {
        /* copies of one uplink from several gateways: one PRStartReq (pb_merge.h) */
        switch (pb_merge_add(w->pb_merge, fwd, phy, phy_len, &ul, first,
                             sizeof *first + tl2)) {
        case PB_MERGE_OPENED:
            return RH_OK;
        case PB_MERGE_JOINED:
        case PB_MERGE_SENT:
            metrics_event(w->metrics, "pb_bridge_merged");
            return RH_OK;
        case PB_MERGE_FULL:
            metrics_event(w->metrics, "pb_bridge_merge_full");
            break; /* sent alone, rather than holding more */
        case PB_MERGE_NOMEM:
        case PB_MERGE_INVALID:
            break; /* sent alone: pbb_start names what is wrong with it */
        }
    }
    return send_uplink(w, member, fwd, phy, phy_len, &ul, first, d);
}

int pb_bridge_downlink(worker_t *w, const pb_ids_t *home, const peer_member_t *member,
                       uint32_t fwd_net_id, const uint8_t *phy, size_t phy_len,
                       const bi_dlmeta_t *dl, uint64_t recv_ns, pb_bridge_sync_t *sync,
                       rh_diag_t *d)
{
    if (!member)
        return rh_diag_fail(d, RH_EPERM, "home_network_net_id: no member record for this NetID "
                            "(bridging needs one)");
    pbb_req_t r = {.type = BI_MT_XMIT_DATA_REQ, .ans_type = BI_MT_XMIT_DATA_ANS,
                   .sender_net_id = home->net_id, .sender_tenant = home->tenant,
                   .kind = ROUTE_DOWNLINK, .receiver = fwd_net_id, .phy = phy,
                   .phy_len = phy_len, .dl = dl, .recv_ns = recv_ns};
    int rc = pbb_start(w, member, &r, NULL, NULL, sync, d);
    if (rc == RH_OK)
        metrics_event(w->metrics, "pb_bridged_downlink");
    return rc;
}
