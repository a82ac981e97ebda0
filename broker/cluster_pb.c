/* cluster_pb.c — the Packet Broker data plane across cluster nodes. See cluster_pb.h. */
#include "cluster_pb.h"

#include "cluster_txn.h"
#include "hub_txid.h"
#include "lw_netid.h"
#include "metrics.h"
#include "pb_bridge_ts002.h"
#include "pb_service.h"
#include "relay.h"
#include "rh_err.h"
#include "rh_log.h"
#include "rh_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One group subscription of this node (a NATS queue subscription). */
typedef struct xsub {
    struct xsub *next;
    natsSubscription *sub;
    pb_group_key_t key;
} xsub_t;

struct cluster_pb {
    natsConnection *nc;
    uint8_t node;
    char prefix[64];
    worker_t *workers;
    unsigned nworkers;
    atomic_uint next;
    pb_router_t *router;
    pthread_mutex_t mu;
    xsub_t *live;     /* subscribed: messages are delivered to their group */
    xsub_t *draining; /* left (drained in the background), freed once closed */
    natsSubscription *none_sub;
};

static const char *role_token(pb_role_t role)
{
    return role == PB_ROLE_HOME ? "h" : "f";
}

static worker_t *next_worker(cluster_pb_t *x)
{
    return &x->workers[atomic_fetch_add(&x->next, 1) % x->nworkers];
}

/* ------------------------------------------------------------------ group subscriptions */

/* A routed copy on its way to a worker. */
typedef struct delivered {
    cluster_pb_t *x;
    pb_group_key_t key;
    Roamhub__V1__PbRoutedHandoff *h;
} delivered_t;

static void delivered_run(worker_t *w, void *arg)
{
    delivered_t *d = arg;
    if (worker_self() == w) { /* not an inbox emptied after the worker stopped */
        Roamhub__V1__PbRoutedHandoff *h = d->h;
        pb_uplink_facts_t facts = {.is_data = h->is_data, .is_join = h->is_join,
                                   .confirmed = h->confirmed, .f_opts = h->f_opts,
                                   .dev_addr = h->dev_addr, .f_port = h->f_port,
                                   .join_eui = h->join_eui, .dev_eui = h->dev_eui};
        pb_item_meta_t meta = {.fwd_net_id = h->fwd_net_id, .home_net_id = h->home_net_id,
                               .cls = (rp_class_t)h->cls, .recv_ns = rh_mono_ns(),
                               .bridged = h->bridged, .local_only = true};
        snprintf(meta.id, sizeof meta.id, "%s", h->id ? h->id : "");
        pb_remote_msg_t m = {
            .role = h->role == PB_ROLE_HOME ? PB_ROLE_HOME : PB_ROLE_FORWARDER,
            .net_id = h->net_id,
            .tenant = h->tenant ? h->tenant : "",
            .cluster = h->cluster ? h->cluster : "",
            .skip = (const char *const *)h->skip,
            .nskip = h->n_skip,
            .enc = {h->without_metadata.data, h->with_metadata.data},
            .enc_len = {h->without_metadata.len, h->with_metadata.len},
            .facts = h->role == PB_ROLE_HOME ? &facts : NULL,
            .meta = &meta,
        };
        if (m.role == PB_ROLE_FORWARDER) {
            m.enc[0] = m.enc[1];
            m.enc_len[0] = m.enc_len[1];
        }
        int rc = pb_router_deliver(d->x->router, w, &d->key, &m);
        metrics_event(w->metrics, rc > 0 ? "pb_from_node" : "pb_from_node_not_taken");
    }
    roamhub__v1__pb_routed_handoff__free_unpacked(d->h, NULL);
    free(d);
}

/* PREFIX.pb.<h|f>.<NetID> in one group's queue (NATS thread): to a worker. */
static void on_routed(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    (void)nc;
    cluster_pb_t *x = arg;
    delivered_t *d = calloc(1, sizeof *d);
    bool found = false;
    if (d) {
        pthread_mutex_lock(&x->mu);
        for (int l = 0; l < 2 && !found; l++)
            for (xsub_t *s = l ? x->draining : x->live; s; s = s->next)
                if (s->sub == sub) {
                    d->key = s->key;
                    found = true;
                    break;
                }
        pthread_mutex_unlock(&x->mu);
    }
    if (found)
        d->h = roamhub__v1__pb_routed_handoff__unpack(NULL, (size_t)natsMsg_GetDataLength(msg),
                                                      (const uint8_t *)natsMsg_GetData(msg));
    if (d && d->h) {
        d->x = x;
        if (worker_post(next_worker(x), delivered_run, d) == RH_OK)
            d = NULL;
        else
            roamhub__v1__pb_routed_handoff__free_unpacked(d->h, NULL);
    } else if (found) {
        RH_LOG(RH_LOG_DEBUG, "cluster", "unreadable Packet Broker hand-off dropped");
    }
    free(d);
    natsMsg_Destroy(msg);
}

/* Frees the draining subscriptions NATS has closed (x->mu held). */
static void reap_locked(cluster_pb_t *x)
{
    for (xsub_t **p = &x->draining; *p;) {
        xsub_t *s = *p;
        if (!natsSubscription_IsValid(s->sub)) {
            *p = s->next;
            natsSubscription_Destroy(s->sub);
            free(s);
        } else {
            p = &s->next;
        }
    }
}

static void *group_up(void *arg, const pb_group_key_t *k, const char *qname)
{
    cluster_pb_t *x = arg;
    xsub_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->key = *k;
    char subj[96];
    snprintf(subj, sizeof subj, "%s.pb.%s.%06X", x->prefix, role_token(k->role),
             k->ids.net_id & 0xFFFFFFu);
    pthread_mutex_lock(&x->mu); /* before a message can arrive for it */
    reap_locked(x);
    natsStatus st = natsConnection_QueueSubscribe(&s->sub, x->nc, subj, qname, on_routed, x);
    if (st == NATS_OK)
        natsSubscription_SetPendingLimits(s->sub, PB_NATS_PENDING_MSGS, PB_NATS_PENDING_BYTES);
    if (st == NATS_OK) {
        s->next = x->live;
        x->live = s;
    }
    pthread_mutex_unlock(&x->mu);
    if (st != NATS_OK) {
        RH_LOG(RH_LOG_WARN, "cluster", "cannot join a Packet Broker group's queue subject=%s "
               "err=\"%s\"", subj, natsStatus_GetText(st));
        free(s);
        return NULL;
    }
    RH_LOG(RH_LOG_DEBUG, "cluster", "joined Packet Broker group queue subject=%s queue=%s", subj,
           qname);
    return s;
}

static void group_down(void *arg, void *handle)
{
    cluster_pb_t *x = arg;
    xsub_t *s = handle;
    pthread_mutex_lock(&x->mu);
    for (xsub_t **p = &x->live; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
    /* copies NATS already gave this node still reach the group (held there); no new ones */
    if (natsSubscription_Drain(s->sub) != NATS_OK)
        natsSubscription_Unsubscribe(s->sub);
    s->next = x->draining;
    x->draining = s;
    reap_locked(x);
    pthread_mutex_unlock(&x->mu);
}

static bool publish(void *arg, worker_t *w, const pb_remote_msg_t *m)
{
    cluster_pb_t *x = arg;
    const pb_item_meta_t *mt = m->meta;
    Roamhub__V1__PbRoutedHandoff h = ROAMHUB__V1__PB_ROUTED_HANDOFF__INIT;
    h.role = (uint32_t)m->role;
    h.net_id = m->net_id;
    h.tenant = (char *)m->tenant;
    h.cluster = (char *)m->cluster;
    h.skip = (char **)m->skip;
    h.n_skip = m->nskip;
    h.with_metadata.data = (uint8_t *)m->enc[1];
    h.with_metadata.len = m->enc_len[1];
    if (m->role == PB_ROLE_HOME) {
        h.without_metadata.data = (uint8_t *)m->enc[0];
        h.without_metadata.len = m->enc_len[0];
    }
    h.fwd_net_id = mt->fwd_net_id;
    h.home_net_id = mt->home_net_id;
    h.cls = (uint32_t)mt->cls;
    h.id = (char *)mt->id;
    h.bridged = mt->bridged;
    h.from_node = x->node;
    if (m->facts) {
        h.is_data = m->facts->is_data;
        h.is_join = m->facts->is_join;
        h.confirmed = m->facts->confirmed;
        h.f_opts = m->facts->f_opts;
        h.dev_addr = m->facts->dev_addr;
        h.f_port = m->facts->f_port;
        h.join_eui = m->facts->join_eui;
        h.dev_eui = m->facts->dev_eui;
    }
    size_t n = roamhub__v1__pb_routed_handoff__get_packed_size(&h);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return false;
    roamhub__v1__pb_routed_handoff__pack(&h, buf);
    char subj[96], reply[160];
    snprintf(subj, sizeof subj, "%s.pb.%s.%06X", x->prefix, role_token(m->role),
             m->net_id & 0xFFFFFFu);
    /* where NATS says "no responders": what the routing node counts, and the transaction it
     * refuses when no group here took a copy either */
    snprintf(reply, sizeof reply, "%s.pb.none.%u.%s.%06X.%06X.%u.%u.%u.%u.%u", x->prefix, x->node,
             role_token(m->role), mt->fwd_net_id & 0xFFFFFFu, mt->home_net_id & 0xFFFFFFu,
             (unsigned)mt->cls, mt->bridged ? 1u : 0u, (unsigned)mt->hub_txid,
             (unsigned)mt->ans_type, m->nskip ? 1u : 0u);
    natsStatus st = natsConnection_PublishRequest(x->nc, subj, reply, buf, (int)n);
    free(buf);
    if (st != NATS_OK) {
        metrics_event(w->metrics, "pb_to_nodes_failed");
        return false;
    }
    metrics_event(w->metrics, "pb_to_nodes");
    return true;
}

/* ------------------------------------------------------------------ no responders */

typedef struct none {
    bool home;     /* role: an uplink for a home network (else a downlink for a forwarder) */
    uint32_t fwd, home_net;
    unsigned cls;
    bool bridged;
    uint32_t txid, ans_type;
    bool served_here; /* a group of this node took a copy (held there) */
} none_t;

/* The bridged transaction's refusal on its worker: nobody subscribes anywhere. */
static void refuse_run(relay_txn_t *t, void *arg)
{
    (void)arg;
    const route_decision_t *rd = relay_txn_decision(t);
    char n[7], desc[160];
    lw_netid_format(rd->kind == ROUTE_DOWNLINK ? rd->fwd.net_id : rd->home.net_id, n, 0);
    snprintf(desc, sizeof desc, "network %s has no endpoint or subscription at this hub", n);
    relay_txn_refuse(t, rd->code, desc, RP_OUT_NO_ROUTE);
}

static void none_run(worker_t *w, void *arg)
{
    none_t *n = arg;
    if (worker_self() == w) {
        metrics_event(w->metrics, "pb_no_subscriber_in_cluster");
        if (!n->bridged) {
            pb_count(w, n->fwd, n->home_net, RP_PROTO_PACKET_BROKER, (rp_class_t)n->cls,
                     RP_OUT_NO_ROUTE, NULL, rh_mono_ns(), NULL);
        } else if (n->txid && !n->served_here) {
            /* the transaction waits on this node (it routed the message): refused now, as a
             * single node refuses a party without a subscription, not at its deadline */
            relay_txn_t *t = relay_txn_claim_party(w, n->home ? n->home_net : n->fwd, n->txid,
                                                   (bi_msg_type_t)n->ans_type);
            if (t && relay_txn_post_claimed(t, refuse_run, NULL) == RH_OK)
                metrics_event(w->metrics, "pb_refused_no_subscriber");
        }
    }
    free(n);
}

/* PREFIX.pb.none.NODE.<fwd>.<home>.<class>.<bridged> (NATS thread). */
static void on_none(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    (void)nc;
    (void)sub;
    cluster_pb_t *x = arg;
    const char *subj = natsMsg_GetSubject(msg);
    size_t pl = strlen(x->prefix);
    unsigned node, fwd, home, cls, bridged, txid, ans, served;
    char role[2];
    none_t *n = NULL;
    if (natsMsg_IsNoResponders(msg) && subj && strlen(subj) > pl &&
        sscanf(subj + pl, ".pb.none.%u.%1[hf].%x.%x.%u.%u.%u.%u.%u", &node, role, &fwd, &home,
               &cls, &bridged, &txid, &ans, &served) == 9 &&
        (n = malloc(sizeof *n))) {
        *n = (none_t){.home = role[0] == 'h', .fwd = fwd, .home_net = home, .cls = cls,
                      .bridged = bridged != 0, .txid = txid, .ans_type = ans,
                      .served_here = served != 0};
        if (worker_post(next_worker(x), none_run, n) != RH_OK)
            free(n);
    }
    natsMsg_Destroy(msg);
}

/* ------------------------------------------------------------------ start / free */

int cluster_pb_start(cluster_t *c, const rh_config_t *cfg, worker_t *workers, unsigned n,
                     pb_router_t *router, cluster_pb_t **out, rh_diag_t *d)
{
    *out = NULL;
    cluster_pb_t *x = calloc(1, sizeof *x);
    if (!x)
        return RH_ENOMEM;
    pthread_mutex_init(&x->mu, NULL);
    x->nc = cluster_nats(c);
    x->node = (uint8_t)cfg->cluster_node_id;
    x->workers = workers;
    x->nworkers = n;
    x->router = router;
    atomic_init(&x->next, 0);
    snprintf(x->prefix, sizeof x->prefix, "%s", cfg->cluster_subject_prefix);
    char subj[112];
    snprintf(subj, sizeof subj, "%s.pb.none.%u.>", x->prefix, x->node);
    natsStatus s = natsConnection_Subscribe(&x->none_sub, x->nc, subj, on_none, x);
    if (s != NATS_OK) {
        cluster_pb_free(x);
        return s == NATS_NO_MEMORY ? RH_ENOMEM
                                   : rh_diag_fail(d, RH_EIO, "cluster: subscribing to %s: %s",
                                                  subj, natsStatus_GetText(s));
    }
    pb_router_cluster_t ops = {.arg = x, .group_up = group_up, .group_down = group_down,
                               .publish = publish};
    pb_router_set_cluster(router, &ops);
    *out = x;
    return RH_OK;
}

/* Drains sub and waits until no callback runs any more, then destroys it. */
static void sub_stop(natsSubscription *sub)
{
    if (!sub)
        return;
    if (natsSubscription_IsValid(sub) &&
        (natsSubscription_Drain(sub) != NATS_OK ||
         natsSubscription_WaitForDrainCompletion(sub, 2000) != NATS_OK))
        natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

void cluster_pb_free(cluster_pb_t *x)
{
    if (!x)
        return;
    if (x->router)
        pb_router_set_cluster(x->router, NULL);
    sub_stop(x->none_sub);
    /* no group_up/down any more: the lists are ours */
    for (int l = 0; l < 2; l++) {
        xsub_t *s = l ? x->draining : x->live;
        while (s) {
            xsub_t *nx = s->next;
            if (l == 1 && natsSubscription_IsValid(s->sub))
                natsSubscription_WaitForDrainCompletion(s->sub, 2000);
            sub_stop(s->sub);
            free(s);
            s = nx;
        }
    }
    pthread_mutex_destroy(&x->mu);
    free(x);
}

/* ------------------------------------------------------------------ answers across nodes */

static bool hand(worker_t *w, uint32_t txid, uint32_t party, Roamhub__V1__PbAnswerHandoff *a)
{
    if (!w->xnode || !txid)
        return false;
    a->party_net_id = party;
    size_t n = roamhub__v1__pb_answer_handoff__get_packed_size(a);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return false;
    roamhub__v1__pb_answer_handoff__pack(a, buf);
    char who[16];
    snprintf(who, sizeof who, "pb:%06X", party & 0xFFFFFFu);
    int rc = cluster_txn_handoff_pb(w->xnode, txid, who, buf, n);
    free(buf);
    if (rc == RH_OK)
        metrics_event(w->metrics, "answer_handed_to_node");
    return rc == RH_OK;
}

bool cluster_pb_hand_join_accept(worker_t *w, uint32_t home_net_id,
                                 const Roamhub__V1__BridgeToken *bt, const uint8_t *tok,
                                 size_t tok_len, const pb_ids_t *fwd,
                                 const Org__Packetbroker__V3__DownlinkMessage *dm)
{
    if (!w->xnode || !bt->hub_txid)
        return false;
    Roamhub__V1__PbAnswerHandoff a = ROAMHUB__V1__PB_ANSWER_HANDOFF__INIT;
    a.kind = ROAMHUB__V1__PB_ANSWER_HANDOFF__KIND__KIND_JOIN_ACCEPT;
    a.token.data = (uint8_t *)tok;
    a.token.len = tok_len;
    a.fwd_net_id = fwd->net_id;
    a.fwd_tenant = (char *)fwd->tenant;
    a.fwd_cluster = (char *)fwd->cluster;
    size_t n = protobuf_c_message_get_packed_size(&dm->base);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return false;
    protobuf_c_message_pack(&dm->base, buf);
    a.downlink.data = buf;
    a.downlink.len = n;
    bool ok = hand(w, bt->hub_txid, home_net_id, &a);
    free(buf);
    return ok;
}

bool cluster_pb_hand_uplink_report(worker_t *w, uint32_t home_net_id,
                                   const Roamhub__V1__BridgeToken *bt, bool has_error, int error,
                                   const char *error_name)
{
    Roamhub__V1__PbAnswerHandoff a = ROAMHUB__V1__PB_ANSWER_HANDOFF__INIT;
    a.kind = ROAMHUB__V1__PB_ANSWER_HANDOFF__KIND__KIND_UPLINK_REPORT;
    a.hub_txid = bt->hub_txid;
    a.ans_type = bt->ans_type;
    a.join = bt->join;
    a.has_error = has_error;
    a.error = error;
    a.error_name = (char *)(error_name ? error_name : "");
    return hand(w, bt->hub_txid, home_net_id, &a);
}

bool cluster_pb_hand_downlink_report(worker_t *w, uint32_t fwd_net_id, const uint8_t *dl_token,
                                     size_t len, bool has_error, const char *error_name)
{
    uint32_t txid = 0;
    if (!pb_bridge_ts002_dl_token_txid(dl_token, len, &txid))
        return false;
    Roamhub__V1__PbAnswerHandoff a = ROAMHUB__V1__PB_ANSWER_HANDOFF__INIT;
    a.kind = ROAMHUB__V1__PB_ANSWER_HANDOFF__KIND__KIND_DOWNLINK_REPORT;
    a.token.data = (uint8_t *)dl_token;
    a.token.len = len;
    a.has_error = has_error;
    a.error_name = (char *)(error_name ? error_name : "");
    return hand(w, txid, fwd_net_id, &a);
}

/* The join-accept on the holder: the token reopened (the cluster shares grpc.token_key_file),
 * the DLMetaData rebuilt from it, the waiting PRStartReq completed. */
static bool join_accept_here(worker_t *w, const Roamhub__V1__PbAnswerHandoff *a)
{
    Roamhub__V1__BridgeToken *bt = NULL;
    rh_diag_t d = {{0}};
    if (pb_bridge_ts002_open(w, a->token.data, a->token.len, a->fwd_net_id,
                             a->fwd_tenant ? a->fwd_tenant : "",
                             a->fwd_cluster ? a->fwd_cluster : "", a->party_net_id, &bt,
                             &d) != RH_OK) {
        RH_LOG(RH_LOG_INFO, "cluster", "handed join-accept refused reason=\"%s\"", d.text);
        return false;
    }
    bool ok = false;
    Org__Packetbroker__V3__DownlinkMessage *dm =
        org__packetbroker__v3__downlink_message__unpack(NULL, a->downlink.len, a->downlink.data);
    bi_dlmeta_t dl;
    bi_gwinfo_t gw[16];
    if (dm && pb_bridge_ts002_dlmeta(bt, dm, &dl, gw, 16, &d) == RH_OK)
        ok = pb_bridge_ts002_answer(w, a->party_net_id, bt, dm->phy_payload.data,
                                    dm->phy_payload.len, &dl);
    if (dm)
        org__packetbroker__v3__downlink_message__free_unpacked(dm, NULL);
    roamhub__v1__bridge_token__free_unpacked(bt, NULL);
    return ok;
}

bool cluster_pb_answer_from_node(worker_t *w, const uint8_t *msg, size_t len)
{
    Roamhub__V1__PbAnswerHandoff *a = roamhub__v1__pb_answer_handoff__unpack(NULL, len, msg);
    if (!a)
        return false;
    bool ok = false;
    const char *name = a->error_name && a->error_name[0] ? a->error_name : NULL;
    switch (a->kind) {
    case ROAMHUB__V1__PB_ANSWER_HANDOFF__KIND__KIND_JOIN_ACCEPT:
        ok = join_accept_here(w, a);
        break;
    case ROAMHUB__V1__PB_ANSWER_HANDOFF__KIND__KIND_UPLINK_REPORT: {
        Roamhub__V1__BridgeToken bt = ROAMHUB__V1__BRIDGE_TOKEN__INIT;
        bt.hub_txid = a->hub_txid;
        bt.ans_type = a->ans_type;
        bt.join = a->join;
        ok = pb_bridge_ts002_report(w, a->party_net_id, &bt, a->has_error, a->error, name);
        break;
    }
    case ROAMHUB__V1__PB_ANSWER_HANDOFF__KIND__KIND_DOWNLINK_REPORT:
        ok = pb_bridge_ts002_dl_report(w, a->party_net_id, a->token.data, a->token.len,
                                       a->has_error, name);
        break;
    default:
        break;
    }
    if (ok)
        metrics_event(w->metrics, "pb_bridged_answer_from_node");
    roamhub__v1__pb_answer_handoff__free_unpacked(a, NULL);
    return ok;
}
