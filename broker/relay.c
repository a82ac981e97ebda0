/*
 * relay.c — the relay core (relay.h): protocol-neutral transactions. It routes (route.c decides,
 * this file acts), registers pending entries, arms answer deadlines, applies the answer policy,
 * counts each terminal outcome once in the statistics and the capture tap, logs it, and alone
 * completes, fails and frees transactions. Wire formats are the front ends' business
 * (relay_ts002.c for TS002 JSON/HTTP), reached through their relay_fe_ops_t.
 *
 * References (relay.h): the creator's (consumed by relay_txn_route); the front end's while a
 * request is on the wire (taken in ops.forward); the pending-table entry's, inherited by whoever
 * takes the entry (txn_forward, relay_txn_post_claimed, answer_timeout, txn_finish); the
 * answer deadline's exactly while it is pending — on the worker's deadline list for its wait, or
 * on a timer of its own (txn_forward, answer_timeout, txn_finish). Every
 * call into the front end is made under one of these (or the creator's), never with none.
 * `done` is set by the first completion; later events only drop their reference.
 */
#include "relay.h"

#include "capture.h"
#include "lw_netid.h"
#include "rh_deadlines.h"
#include "rh_dlist.h"
#include "rh_log.h"
#include "rh_time.h"

#include <event2/event.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The protocol-neutral transaction: parties and route decision, pending key, deadlines, timing,
 * outcome, and the facts statistics and capture record. The front end's context follows it in
 * the same allocation (ctx[]). */
struct relay_txn {
    worker_t *w;
    const relay_fe_ops_t *ops;
    peer_registry_t *reg;         /* own reference for the transaction's lifetime */
    const peer_member_t *sender;  /* authenticated member */
    relay_fwd_t sender_id;        /* the sender's own identity (statistics) */
    rp_protocol_t sender_protocol; /* the protocol the sender spoke (statistics) */
    bool sender_waits;            /* sync sender: a failure's latency is counted */
    bool sender_async;            /* answered by a later request to its endpoint (hooks) */
    bool hooked;                  /* worker's relay_hooks told `started`: `ended` is owed */
    int64_t deadline_ms;          /* Unix ms: the answer deadline (hooked transactions) */
    route_decision_t route;       /* where it goes, parties, class (route.c's decision) */
    bi_msg_type_t req_type;       /* the request's MessageType (statistics, capture, log) */
    bi_msg_type_t ans_type;       /* expected answer type (BI_MT_UNKNOWN: none, notification) */
    uint32_t sender_txid;         /* the sender's TransactionID (capture, log) */
    bool has_ul_recv_time;
    int64_t ul_recv_ms;           /* uplink RecvTime, Unix ms */
    int phy_mtype;                /* the PHYPayload's MType, -1 when there is none */
    uint64_t t_recv_ns, t_fwd_ns;
    uint64_t arrival_ns, fwd_real_ns; /* CLOCK_REALTIME ns: the request's arrival (params), the
                                         forward written (only when arrival_ns is known) */
    rh_deadline_t dl;             /* the answer deadline on a worker list (relay_deadlines_t) */
    uint8_t dl_list;              /* which list, while dl.on */
    struct event *timer;          /* the answer deadline when no list takes it, or NULL */
    pending_key_t pkey;           /* pkey.txid: the hub-owned TransactionID toward the receiver */
    bi_id_t sent_receiver;        /* the receiver identity the request was forwarded to */
    uint32_t wait_ms;             /* the answer deadline armed at forward, ms after forwarding */
    bool rx_limited;              /* wait_ms was cut to the device's receive window */
    bool pending;                 /* registered in the pending table */
    bool done;
    int refs;
    struct relay_txn *prev, *next; /* the worker's list (shutdown) */
    alignas(max_align_t) unsigned char ctx[];
};

/* A worker's answer deadlines (issue #15): one FIFO on one lazily armed timer per answer wait
 * (rh_deadlines.h) — the receivers' configured timeouts are few, and transactions waiting as long
 * expire in the order they were forwarded — instead of an event_new, event_add, event_del and
 * event_free per transaction. A wait cut to the device's receive window varies from one
 * transaction to the next, and a wait beyond RELAY_DL_LISTS distinct ones finds no list: those
 * get a timer of their own (t->timer). */
#define RELAY_DL_LISTS 4
typedef struct relay_deadlines {
    rh_deadlines_t list[RELAY_DL_LISTS];
    uint32_t wait_ms[RELAY_DL_LISTS]; /* each list's answer wait */
    unsigned n;
} relay_deadlines_t;

static const char *netid_text(uint32_t netid, char out[7])
{
    lw_netid_format(netid, out, 0);
    return out;
}

static uint64_t elapsed_us(uint64_t since_ns)
{
    return (rh_mono_ns() - since_ns) / 1000u;
}

static const char *rc_name(bi_result_code_t rc)
{
    return bi_result_code_name(rc, BI_VERSION_1_0, true);
}

/* ---------------------------------------------------------------- transactions */

relay_txn_t *relay_txn_create(worker_t *w, peer_registry_t *reg, const relay_txn_params_t *p,
                              const relay_fe_ops_t *ops, size_t ctx_size)
{
    relay_txn_t *t = malloc(sizeof *t + ctx_size); /* ctx: the front end initialises it */
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->refs = 1;
    t->w = w;
    t->ops = ops;
    t->reg = peer_registry_ref(reg);
    t->sender = p->sender;
    t->sender_id = p->sender_id;
    t->sender_protocol = p->sender_protocol;
    t->sender_waits = p->sender_waits;
    t->sender_async = p->sender_async;
    t->req_type = p->req_type;
    t->ans_type = p->ans_type;
    t->sender_txid = p->sender_txid;
    t->t_recv_ns = p->recv_ns;
    t->arrival_ns = p->arrival_ns;
    t->fwd_real_ns = 0;
    t->has_ul_recv_time = p->has_ul_recv_time;
    t->ul_recv_ms = p->ul_recv_ms;
    t->phy_mtype = -1;
    t->route.cls = RP_CLASS_OTHER;
    relay_txn_t *head = w->relay_txns;
    RH_DLIST_PUSH(head, t);
    w->relay_txns = head;
    atomic_fetch_add_explicit(&w->in_flight, 1, memory_order_relaxed);
    return t;
}

void *relay_txn_ctx(relay_txn_t *t)
{
    return t->ctx;
}

void relay_txn_ref(relay_txn_t *t)
{
    t->refs++;
}

void relay_txn_unref(relay_txn_t *t)
{
    if (--t->refs > 0)
        return;
    relay_txn_t *head = t->w->relay_txns;
    RH_DLIST_UNLINK(head, t);
    t->w->relay_txns = head;
    atomic_fetch_sub_explicit(&t->w->in_flight, 1, memory_order_relaxed);
    if (t->timer)
        event_free(t->timer);
    t->ops->release(t->ctx);
    peer_registry_unref(t->reg);
    free(t);
}

bool relay_txn_done(const relay_txn_t *t)
{
    return t->done;
}

worker_t *relay_txn_worker(const relay_txn_t *t)
{
    return t->w;
}

const peer_member_t *relay_txn_sender(const relay_txn_t *t)
{
    return t->sender;
}

const route_decision_t *relay_txn_decision(const relay_txn_t *t)
{
    return &t->route;
}

bi_msg_type_t relay_txn_ans_type(const relay_txn_t *t)
{
    return t->ans_type;
}

uint32_t relay_txn_hub_txid(const relay_txn_t *t)
{
    return t->pkey.txid;
}

bi_id_t relay_txn_sent_receiver(const relay_txn_t *t)
{
    return t->sent_receiver;
}

/* The ResultCode of a failure because of the receiver (relay_txn_fail, and what another node
 * answers for a dead holder: relay_inflight_t.fail_code): XmitFailed for a downlink (TS002
 * 1.0 §11.3.2: not transmitted), Other otherwise. */
static bi_result_code_t fail_code(const relay_txn_t *t)
{
    return t->route.kind == ROUTE_DOWNLINK ? BI_RC_XMIT_FAILED : BI_RC_OTHER;
}

/* Tells the worker's observer (relay_hooks_t) that t started (v: its view, for the ReceiverID
 * the sender named) or, v NULL, ended. */
static void txn_hook(relay_txn_t *t, const route_msg_t *v)
{
    const relay_hooks_t *h = t->w->relay_hooks;
    relay_inflight_t i = {
        .sender = t->sender->id, .sender_id = t->sender_id,
        .receiver_is_eui = v && v->receiver_is_eui, .receiver = v ? v->receiver : 0,
        .sender_txid = t->sender_txid, .hub_txid = t->pkey.txid, .req_type = t->req_type,
        .ans_type = t->ans_type,
        .fail_code = fail_code(t), .deadline_ms = t->deadline_ms};
    (v ? h->started : h->ended)(h->arg, &i);
}

/* Marks the transaction complete; returns false if it already was. Drops the references that
 * the completion ends: the answer timer's (if the timer is still pending, it is cancelled here
 * and its reference goes with it — see the ownership rule in txn_forward) and the pending
 * entry's (if this worker still holds the entry). Callers hold a reference of their own, so t is
 * still valid on return. */
static bool txn_finish(relay_txn_t *t)
{
    if (t->done)
        return false;
    t->done = true;
    if (t->hooked && t->w->relay_hooks)
        txn_hook(t, NULL);
    if (t->dl.on) {
        relay_deadlines_t *d = t->w->relay_deadlines;
        rh_deadlines_remove(&d->list[t->dl_list], &t->dl);
        relay_txn_unref(t); /* the deadline's reference (callers hold another) */
    } else if (t->timer && evtimer_pending(t->timer, NULL)) {
        evtimer_del(t->timer);
        relay_txn_unref(t); /* the timer's reference (callers hold another) */
    }
    if (t->pending && pending_take(t->w->pending, &t->pkey)) {
        t->pending = false;
        relay_txn_unref(t); /* the pending entry's reference (callers hold another) */
    }
    return true;
}

/* ---------------------------------------------------------------- outcomes */

void relay_count(worker_t *w, relay_fwd_t fwd, uint32_t home_net_id, rp_protocol_t fwd_proto,
                 rp_protocol_t home_proto, bi_msg_type_t req_type, uint32_t txid, rp_class_t cls,
                 rp_outcome_t outcome, const char *result_code, uint64_t recv_ns,
                 const char *sender)
{
    /* A forwarder named by a JoinEUI is counted as such; the capture tap, keyed by NetID, gets a
     * value no NetID can have (an EUI must never be cut down to a NetID some member owns). */
    metrics_count(w->metrics, fwd.kind, fwd.id, home_net_id, fwd_proto, home_proto, cls, outcome,
                  result_code, recv_ns ? elapsed_us(recv_ns) : 0);
    capture_tap(w->index, fwd.kind == RP_STATS_ID_NETID ? (uint32_t)fwd.id : UINT32_MAX,
                home_net_id, req_type, txid, cls, outcome, result_code, recv_ns, sender);
}

/* The statistics forwarder of t: the sender, except for downlinks, whose forwarder is the
 * receiver; a sender speaking with its JoinEUI (a Join Server) is counted by that JoinEUI. */
static relay_fwd_t txn_fwd(const relay_txn_t *t)
{
    if (t->sender_id.kind == RP_STATS_ID_JOIN_EUI && t->route.kind != ROUTE_DOWNLINK)
        return t->sender_id;
    relay_fwd_t f = {RP_STATS_ID_NETID, t->route.fwd.net_id};
    return f;
}

/* The protocols of t's forwarder and home network (rp_protocol_t): the sender's is the one it
 * spoke; the receiver's is the one the route decision chose (a TS002 endpoint, or the party's
 * own transport: Packet Broker), or the sender's when the hub did not forward (a refusal, an
 * answer of the hub's own). A downlink's sender is the home network. */
static void txn_protocols(const relay_txn_t *t, rp_protocol_t *fwd, rp_protocol_t *home)
{
    rp_protocol_t recv = t->route.action != ROUTE_FORWARD ? t->sender_protocol
                         : t->route.recv_ep                ? RP_PROTO_TS002
                                                           : RP_PROTO_PACKET_BROKER;
    bool down = t->route.kind == ROUTE_DOWNLINK;
    *fwd = down ? recv : t->sender_protocol;
    *home = down ? t->sender_protocol : recv;
}

/* relay_count for t's terminal outcome. */
static void txn_count(const relay_txn_t *t, rp_outcome_t outcome, const char *result_code,
                      uint64_t recv_ns, const char *sender)
{
    rp_protocol_t fp, hp;
    txn_protocols(t, &fp, &hp);
    relay_count(t->w, txn_fwd(t), t->route.home.net_id, fp, hp, t->req_type, t->sender_txid,
                t->route.cls, outcome, result_code, recv_ns, sender);
}

static rp_outcome_t outcome_of(bi_result_code_t rc)
{
    return rc == BI_RC_SUCCESS ? RP_OUT_FORWARDED : RP_OUT_RECEIVER_ERROR;
}

/* One debug line per relayed message (issue #11 item 12): who sent it, who received it, the
 * TransactionIDs on both hops (the sender's, the hub's), class, outcome, result, latency. */
static void log_relayed(const relay_txn_t *t, rp_outcome_t outcome, const char *result)
{
    if (RH_LOG_DEBUG > rh_log_level)
        return;
    RH_LOG(RH_LOG_DEBUG, "relay",
           "relayed type=%s sender=%s receiver=%s txid=%u hub_txid=%u class=%s outcome=%s "
           "result=%s latency_us=%llu",
           bi_msg_type_name(t->req_type), t->sender->id,
           t->route.recv_ep ? t->route.recv_ep->id : "hub", t->sender_txid,
           t->pending || t->pkey.ans_type ? t->pkey.txid : 0, rp_class_name(t->route.cls),
           rp_outcome_name(outcome), result, (unsigned long long)elapsed_us(t->t_recv_ns));
}

/* Calls the front end's answer operation. Every caller holds a reference (the creator's, the
 * front end's forward, the claimed entry's, the timer's or shutdown's), so t outlives the call. */
static void fe_answer(relay_txn_t *t, const relay_answer_t *a)
{
    t->ops->answer(t, t->ctx, a);
}

/* Answer policy: a downlink the forwarder's policy refuses (e.g. a join-accept in PRStartAns)
 * is removed and the answer becomes NoRoamingAgreement (route.c decides, the front end edits). */
static void check_answer_downlink(relay_txn_t *t, relay_answer_t *a, char *desc, size_t cap)
{
    if (!a->phy ||
        !route_answer_downlink_refused(&t->route, a->phy, a->phy_len, t->w->reader, desc, cap))
        return;
    RH_LOG(RH_LOG_INFO, "relay", "answer downlink refused reason=\"%s\" txid=%u", desc,
           t->pkey.txid);
    a->downlink_refused = true;
    a->code = BI_RC_NO_ROAMING_AGREEMENT;
    a->description = desc;
}

/* Counts, logs and delivers an answer (the receiver's or the hub's). Does not complete the
 * transaction (callers do). */
static void txn_answer(relay_txn_t *t, relay_answer_t *a)
{
    char desc[160];
    check_answer_downlink(t, a, desc, sizeof desc);
    txn_count(t, outcome_of(a->code), a->code == BI_RC_SUCCESS ? NULL : rc_name(a->code),
              t->t_recv_ns, t->sender->id);
    log_relayed(t, outcome_of(a->code), rc_name(a->code));
    fe_answer(t, a);
}

/* Answers the sender with a failure (code, description) and counts outcome. Does not complete
 * or free the transaction (callers do: txn_finish, relay_txn_unref). */
static void txn_refuse(relay_txn_t *t, bi_result_code_t code, const char *description,
                       rp_outcome_t outcome)
{
    char fwd[7], home[7];
    RH_LOG(outcome == RP_OUT_UNAUTHORIZED ? RH_LOG_WARN : RH_LOG_INFO, "relay",
           "refused result=%s reason=\"%s\" peer=%s fwd=%s home=%s txid=%u", rc_name(code),
           description, t->sender->id, netid_text(t->route.fwd.net_id, fwd),
           netid_text(t->route.home.net_id, home), t->sender_txid);
    log_relayed(t, outcome, rc_name(code));
    txn_count(t, outcome, outcome == RP_OUT_RECEIVER_ERROR ? rc_name(code) : NULL,
              t->sender_waits ? t->t_recv_ns : 0, NULL);
    relay_answer_t a = {.code = code, .description = description};
    fe_answer(t, &a);
}

void relay_txn_fail(relay_txn_t *t, rp_outcome_t outcome, const char *what)
{
    if (!txn_finish(t))
        return;
    char desc[160];
    snprintf(desc, sizeof desc, "%s (%s)", what, t->route.recv_ep ? t->route.recv_ep->id : "-");
    txn_refuse(t, fail_code(t), desc, outcome);
}

void relay_txn_refuse(relay_txn_t *t, bi_result_code_t code, const char *description,
                      rp_outcome_t outcome)
{
    if (txn_finish(t))
        txn_refuse(t, code, description, outcome);
}

void relay_txn_complete(relay_txn_t *t, relay_answer_t *a)
{
    if (!txn_finish(t))
        return;
    metrics_observe(t->w->metrics, METRICS_ANSWER, (rh_mono_ns() - t->t_fwd_ns) / 1000u);
    txn_answer(t, a);
    if (t->arrival_ns && t->fwd_real_ns && a->arrival_ns && t->sender_waits) {
        /* hub_added: the answer has been written to the sender; the receiver's share is from
         * the forward written to the answer's arrival. Realtime clock steps give a negative
         * figure: counted as 0. */
        int64_t hub = (rh_real_ns() - (int64_t)t->arrival_ns) -
                      ((int64_t)a->arrival_ns - (int64_t)t->fwd_real_ns);
        metrics_observe(t->w->metrics, METRICS_HUB_ADDED, hub > 0 ? (uint64_t)hub / 1000u : 0);
    }
}

void relay_txn_fail_malformed_answer(relay_txn_t *t, const char *why)
{
    if (t->done)
        return;
    char what[360];
    snprintf(what, sizeof what, "receiver's answer is malformed: %s", why);
    RH_LOG(RH_LOG_INFO, "relay", "malformed answer receiver=%s hub_txid=%u reason=\"%s\"",
           t->route.recv_ep ? t->route.recv_ep->id : "-", t->pkey.txid, why);
    metrics_event(t->w->metrics, "malformed_answer");
    relay_txn_fail(t, RP_OUT_RECEIVER_ERROR, what);
}

void relay_txn_delivered(relay_txn_t *t)
{
    if (!txn_finish(t))
        return;
    txn_count(t, RP_OUT_FORWARDED, NULL, t->t_recv_ns, t->sender->id);
    log_relayed(t, RP_OUT_FORWARDED, "-");
}

/* ---------------------------------------------------------------- forwarding */

/* The answer deadline passed (its list's or its own timer): holds the deadline's reference. */
static void answer_timeout(relay_txn_t *t)
{
    if (t->pending && !pending_take(t->w->pending, &t->pkey)) {
        /* an answer claimed the entry on another worker and is on its way with the entry's
         * reference: only the timer's reference goes */
        relay_txn_unref(t);
        return;
    }
    if (t->pending) {
        t->pending = false;
        relay_txn_unref(t); /* the entry's reference; the timer's keeps t alive */
    }
    relay_txn_fail(t, RP_OUT_TIMEOUT,
                   t->rx_limited ? "receiver did not answer before the device's receive window"
                                 : "receiver did not answer in time");
    relay_txn_unref(t);
}

static void answer_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    answer_timeout(arg);
}

static void answer_deadline_cb(rh_deadline_t *d, void *arg)
{
    (void)arg;
    answer_timeout((relay_txn_t *)(void *)((char *)d - offsetof(relay_txn_t, dl)));
}

/* Puts t on w's list for answer waits of ms (made on first use). False when no list takes it:
 * a wait cut to the receive window, every list taken by other waits, or out of memory. */
static bool deadline_add(worker_t *w, relay_txn_t *t, uint32_t ms)
{
    if (t->rx_limited)
        return false;
    relay_deadlines_t *d = w->relay_deadlines;
    if (!d && !(d = w->relay_deadlines = calloc(1, sizeof *d)))
        return false;
    unsigned i = 0;
    while (i < d->n && d->wait_ms[i] != ms)
        i++;
    if (i == d->n) {
        if (d->n == RELAY_DL_LISTS ||
            rh_deadlines_init(&d->list[i], w->base, answer_deadline_cb, w) != RH_OK)
            return false;
        d->wait_ms[i] = ms;
        d->n++;
    }
    t->dl_list = (uint8_t)i;
    return rh_deadlines_add(&d->list[i], &t->dl, rh_mono_ms() + ms);
}

/* The receiver identity to name in the forwarded request (issue #11 item 10): when the hub
 * decided the receiver (uplinks by DevAddr block or join route, HomeNSReq by join route) and the
 * sender's ReceiverID is not an identity of that receiver (a placeholder 000000, another
 * network), the receiver's own NetID — or, for a Join Server endpoint, its JoinEUI. */
static bi_id_t sent_receiver_of(const relay_txn_t *t, const route_msg_t *v)
{
    bi_id_t id = {v->receiver_is_eui ? BI_ID_EUI64 : BI_ID_NETID, v->receiver};
    const peer_endpoint_t *ep = t->route.recv_ep;
    if (t->route.kind != ROUTE_UPLINK && t->route.kind != ROUTE_HOME_NS)
        return id;
    if (!ep) { /* a party reached over its own transport: its NetID */
        id.kind = BI_ID_NETID;
        id.value = t->route.home.net_id;
        return id;
    }
    if (id.kind == BI_ID_EUI64 && ep->join_eui)
        return id; /* a Join Server addressed by the device's JoinEUI */
    if (ep->net_id == 0) {
        if (id.kind != BI_ID_EUI64 && ep->join_eui) {
            id.kind = BI_ID_EUI64;
            id.value = ep->join_eui;
        }
        return id;
    }
    if (id.kind == BI_ID_NETID) {
        if (id.value == ep->net_id)
            return id;
        const peer_member_t *m = NULL;
        peer_registry_member_by_netid(t->reg, ep->net_id, ep->tenant_id, &m);
        for (size_t i = 0; m && i < m->n_net_ids; i++)
            if (m->net_ids[i] == id.value)
                return id;
    }
    id.kind = BI_ID_NETID;
    id.value = ep->net_id;
    return id;
}

/* Class A receive delays (LoRaWAN 1.0.x §3.3, RP002 defaults): the latest window of a
 * join-accept opens JOIN_ACCEPT_DELAY2 = 6 s after the join-request, of a data downlink
 * RECEIVE_DELAY2 = 2 s after the uplink. */
#define RX2_JOIN_MS 6000
#define RX2_DATA_MS 2000
#define RX_MARGIN_MS 300    /* what the forwarder needs to schedule the frame */
#define RECV_TIME_SANE_MS 30000 /* a RecvTime further away than this is a clock we do not trust */

/* How long the hub waits for the answer: the receiver's timeout, cut to the device's receive
 * window for a join-request or a confirmed uplink whose RecvTime is known and plausible (within
 * RECV_TIME_SANE_MS of the hub's clock). 0: the window has already passed. */
static uint32_t answer_wait_ms(relay_txn_t *t)
{
    uint32_t wait = t->route.recv_ep   ? t->route.recv_ep->timeout_ms
                    : t->phy_mtype == 0 ? RELAY_GRPC_WAIT_JOIN_MS
                                        : RELAY_GRPC_WAIT_MS;
    t->rx_limited = false;
    if (t->route.kind != ROUTE_UPLINK || !t->has_ul_recv_time)
        return wait;
    int64_t rx2;
    if (t->phy_mtype == 0)
        rx2 = RX2_JOIN_MS;
    else if (t->phy_mtype == 4)
        rx2 = RX2_DATA_MS;
    else
        return wait;
    int64_t now = rh_real_ms();
    if (t->ul_recv_ms > now + RECV_TIME_SANE_MS || t->ul_recv_ms < now - RECV_TIME_SANE_MS)
        return wait;
    int64_t left = t->ul_recv_ms + rx2 - RX_MARGIN_MS - now;
    if (left >= (int64_t)wait)
        return wait;
    t->rx_limited = true;
    return left > 0 ? (uint32_t)left : 0;
}

/* The pending-table identity of the member that answers for endpoint ep (route_answerer_id: a
 * registry search and a string hash), remembered per worker for the registry the worker's view
 * holds (w->view.gen: registries are immutable and every publication has a new generation). A
 * transaction on another registry (none today: transactions are created on the view's) computes
 * it each time. A small direct-mapped table by endpoint address. */
static uint64_t answerer_id(worker_t *w, const peer_registry_t *reg, const peer_endpoint_t *ep)
{
    if (reg != w->view.reg || w->view.gen == 0)
        return route_answerer_id(reg, ep);
    if (w->relay_answerers.gen != w->view.gen) {
        memset(&w->relay_answerers, 0, sizeof w->relay_answerers);
        w->relay_answerers.gen = w->view.gen;
    }
    size_t i = ((uintptr_t)ep / sizeof(void *)) % 16;
    if (w->relay_answerers.ep[i] != ep) {
        w->relay_answerers.ep[i] = ep;
        w->relay_answerers.id[i] = route_answerer_id(reg, ep);
    }
    return w->relay_answerers.id[i];
}

/* Registers the pending entry under a hub-owned TransactionID (hub_txid.h), arms the answer
 * deadline and has the front end send the request to t->route.recv_ep. Consumes the caller's
 * reference. */
static void txn_forward(relay_txn_t *t, const route_msg_t *v)
{
    worker_t *w = t->w;
    const peer_endpoint_t *ep = t->route.recv_ep;
    t->sent_receiver = sent_receiver_of(t, v);
    t->phy_mtype = v->phy && v->phy_len > 0 ? v->phy[0] >> 5 : -1;
    t->wait_ms = answer_wait_ms(t);
    if (t->wait_ms == 0) {
        relay_txn_fail(t, RP_OUT_TIMEOUT,
                       "too late: the answer can no longer reach the device's receive window");
        relay_txn_unref(t);
        return;
    }
    if (t->ans_type != BI_MT_UNKNOWN) {
        t->pkey.peer = ep ? answerer_id(w, t->reg, ep)
                          : relay_party_answerer(t->route.kind == ROUTE_DOWNLINK
                                                     ? t->route.fwd.net_id
                                                     : t->route.home.net_id);
        t->pkey.ans_type = (uint32_t)t->ans_type;
        int rc = pending_put_fresh(w->pending, w->index, &t->pkey, t);
        if (rc != RH_OK) {
            relay_txn_fail(t, RP_OUT_UNREACHABLE, "hub overloaded: too many pending transactions");
            relay_txn_unref(t);
            return;
        }
        t->pending = true;
        relay_txn_ref(t); /* the pending entry's reference, inherited by whoever takes it */
        /* The deadline of the answer, sync or async (a sync receiver may acknowledge and
         * answer later). A sync receiver's own HTTP deadline ends first unless the receive
         * window cut it. Ownership rule of the answer deadline (on a list, or t->timer): it
         * holds one reference exactly while it is pending, released by whoever ends it: its
         * expiry (answer_timeout) or txn_finish, which cancels it. No other code removes it. */
        uint32_t ms = t->wait_ms + (!ep || ep->async_answers || t->rx_limited ? 0 : 50);
        bool armed = deadline_add(w, t, ms);
        if (!armed && (t->timer = evtimer_new(w->base, answer_timeout_cb, t))) {
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            evtimer_add(t->timer, &tv);
            armed = true;
        }
        if (armed) {
            relay_txn_ref(t);
            if (t->sender_async)
                t->deadline_ms = rh_real_ms() + ms; /* for the hooks */
        }
    }
    relay_forward_t f = {ep, t->route.strip, t->ans_type != BI_MT_UNKNOWN, t->pkey.txid,
                         t->sent_receiver, t->wait_ms};
    t->t_fwd_ns = rh_mono_ns(); /* before: a forward may complete at once */
    int rc = t->ops->forward(t, t->ctx, &f); /* under the caller's reference */
    if (rc == RH_ENOTFOUND) {
        char n[7], desc[160];
        uint32_t to = t->route.kind == ROUTE_DOWNLINK ? t->route.fwd.net_id : t->route.home.net_id;
        snprintf(desc, sizeof desc, "network %s has no endpoint or subscription at this hub",
                 netid_text(to, n));
        if (txn_finish(t))
            txn_refuse(t, t->route.code, desc, RP_OUT_NO_ROUTE);
    } else if (rc != RH_OK) {
        relay_txn_fail(t, RP_OUT_UNREACHABLE,
                       rc == RH_ENOMEM   ? "hub out of memory"
                       : rc == RH_EAGAIN ? "receiver unavailable (backing off or at its in-flight "
                                           "limit)"
                                         : "receiver unreachable");
    } else {
        if (t->arrival_ns)
            t->fwd_real_ns = (uint64_t)rh_real_ns(); /* written to the receiver's socket */
        metrics_observe(w->metrics, METRICS_FORWARD, (t->t_fwd_ns - t->t_recv_ns) / 1000u);
        if (t->sender_async && t->deadline_ms && !t->done && w->relay_hooks) {
            t->hooked = true; /* another node can answer the sender if this one dies */
            txn_hook(t, v);
        }
    }
    relay_txn_unref(t);
}

void relay_txn_route(relay_txn_t *t, const route_msg_t *view)
{
    route_decide(view, t->w->reader, t->reg, &t->route);
    switch (t->route.action) {
    case ROUTE_FORWARD:
        txn_forward(t, view);
        return;
    case ROUTE_ANSWER: {
        /* HomeNSReq answered by the hub from its join routes: HomeNSAns with HNetID */
        relay_answer_t a = {.code = BI_RC_SUCCESS, .has_hnet_id = true,
                            .hnet_id = t->route.hnet_id};
        txn_finish(t);
        txn_answer(t, &a);
        break;
    }
    case ROUTE_REFUSE:
        txn_finish(t);
        txn_refuse(t, t->route.code, t->route.description, t->route.outcome);
        break;
    }
    relay_txn_unref(t);
}

/* ---------------------------------------------------------------- async answers */

relay_txn_t *relay_txn_claim(worker_t *w, const peer_member_t *from, uint32_t hub_txid,
                             bi_msg_type_t ans_type)
{
    pending_key_t key = {
        .peer = peer_hash_str(from->id), .txid = hub_txid, .ans_type = (uint32_t)ans_type};
    return pending_take(w->pending, &key);
}

uint64_t relay_party_answerer(uint32_t net_id)
{
    return 0x5042000000000000ull | net_id; /* "PB" + NetID: no member-ID hash is this sparse */
}

relay_txn_t *relay_txn_claim_party(worker_t *w, uint32_t net_id, uint32_t hub_txid,
                                   bi_msg_type_t ans_type)
{
    pending_key_t key = {
        .peer = relay_party_answerer(net_id), .txid = hub_txid, .ans_type = (uint32_t)ans_type};
    return pending_take(w->pending, &key);
}

typedef struct claimed {
    relay_txn_t *t;
    void (*fn)(relay_txn_t *t, void *arg);
    void *arg;
} claimed_t;

static void run_claimed(relay_txn_t *t, void (*fn)(relay_txn_t *, void *), void *arg)
{
    t->pending = false; /* the entry (and its reference) was taken by the answering worker */
    fn(t, arg);
    relay_txn_unref(t); /* the entry's reference */
}

static void claimed_cb(worker_t *w, void *arg)
{
    claimed_t c = *(claimed_t *)arg;
    (void)w;
    free(arg);
    run_claimed(c.t, c.fn, c.arg);
}

int relay_txn_post_claimed(relay_txn_t *t, void (*fn)(relay_txn_t *t, void *arg), void *arg)
{
    if (t->w == worker_self()) {
        run_claimed(t, fn, arg);
        return RH_OK;
    }
    claimed_t *c = malloc(sizeof *c);
    if (c) {
        *c = (claimed_t){t, fn, arg};
        if (worker_post(t->w, claimed_cb, c) == RH_OK)
            return RH_OK;
        free(c);
    }
    relay_txn_unclaim(t);
    return RH_ENOMEM;
}

void relay_txn_unclaim(relay_txn_t *t)
{
    /* the key is constant once published; the entry keeps its reference */
    if (pending_put(t->w->pending, &t->pkey, t) != RH_OK)
        RH_LOG(RH_LOG_WARN, "relay", "claimed transaction lost hub_txid=%u", t->pkey.txid);
}

/* ---------------------------------------------------------------- shutdown */

void relay_worker_free(worker_t *w)
{
    relay_deadlines_t *d = w->relay_deadlines;
    if (!d)
        return;
    for (unsigned i = 0; i < d->n; i++)
        rh_deadlines_fini(&d->list[i]);
    free(d);
    w->relay_deadlines = NULL;
}

void relay_worker_fini(worker_t *w)
{
    relay_txn_t *t = w->relay_txns;
    while (t) {
        relay_txn_t *next = t->next;
        if (!t->done) {
            relay_txn_ref(t);
            relay_txn_fail(t, RP_OUT_UNREACHABLE, "hub shutting down");
            relay_txn_unref(t);
        }
        t = next;
    }
}
