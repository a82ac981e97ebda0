/*
 * test_relay_core.c — the relay core (broker/relay.c) driven through a test front end: no
 * sockets, no HTTP, no TS002 codec. A real routing table and member registry (route_world.h), a
 * real pending table, metrics and capture, and an event_base used only for the answer timer.
 * Each case creates a transaction as a front end would, lets the core route it, plays the
 * receiver's part (answer, silence, refusal) and checks what the TS002 front end relies on: what
 * the core asks the front end to forward and to answer, the outcome, the statistics row
 * (metrics_take_deltas: forwarder, home, their protocols, class, outcome, ResultCode, count,
 * latency) and the
 * capture event (forwarder, home, MessageType, TransactionID, class, outcome, ResultCode,
 * sender) — the same facts the TS002 path records (tests/integration/test_admin_stats.py checks
 * them end to end).
 */
#include "capture.h"
#include "metrics.h"
#include "pending.h"
#include "peer_endpoint.h"
#include "relay.h"
#include "rh_time.h"

#include <event2/event.h>

#include "route_world.h" /* last: its one-letter NetID macros */

/* ---------------------------------------------------------------- the test front end */

typedef struct fe_log {
    int forwards, answers, releases;
    relay_forward_t fwd;   /* the last forward request */
    char fwd_ep[64];
    int forward_rc;        /* what ops.forward returns */
    relay_answer_t ans;    /* the last answer (pointers valid only during the call) */
    char ans_desc[400];
    relay_txn_t *t;        /* the transaction with a forward on the wire (front end's ref) */
} fe_log_t;

static fe_log_t L;

typedef struct fe_ctx {
    int magic;
} fe_ctx_t;

static int fe_forward(relay_txn_t *t, void *ctx, const relay_forward_t *f)
{
    assert_int_equal(((fe_ctx_t *)ctx)->magic, 42);
    L.forwards++;
    L.fwd = *f;
    snprintf(L.fwd_ep, sizeof L.fwd_ep, "%s", f->ep ? f->ep->id : "(own transport)");
    if (L.forward_rc != RH_OK)
        return L.forward_rc;
    relay_txn_ref(t);
    L.t = t;
    return RH_OK;
}

static void fe_answer(relay_txn_t *t, void *ctx, const relay_answer_t *a)
{
    (void)t;
    assert_int_equal(((fe_ctx_t *)ctx)->magic, 42);
    L.answers++;
    L.ans = *a;
    snprintf(L.ans_desc, sizeof L.ans_desc, "%s", a->description ? a->description : "");
}

static void fe_release(void *ctx)
{
    assert_int_equal(((fe_ctx_t *)ctx)->magic, 42);
    L.releases++;
}

static const relay_fe_ops_t test_ops = {fe_forward, fe_answer, fe_release};

/* ---------------------------------------------------------------- fixture */

typedef struct core {
    world_t *w;
    worker_t wk;
    pending_table_t *pending;
    capture_t *cap;
} core_t;

static int setup(void **state)
{
    void *ws = NULL;
    world_setup(&ws);
    core_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->w = ws;
    c->wk.index = 3;
    c->wk.base = event_base_new();
    c->wk.metrics = metrics_new();
    c->pending = pending_new(16, 1);
    c->wk.pending = c->pending;
    c->wk.reader = c->w->f->r;
    /* the worker's registry view is the transactions' registry (as worker_registry hands it out):
     * the core then remembers answerer identities for it (not owned: never released here) */
    c->wk.view.reg = c->w->reg;
    c->wk.view.gen = 1;
    assert_non_null(c->wk.base);
    assert_non_null(c->wk.metrics);
    assert_non_null(c->pending);
    worker_set_self(&c->wk);
    assert_int_equal(capture_start(1, 0, 100, &c->cap), RH_OK);
    memset(&L, 0, sizeof L);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    core_t *c = *state;
    assert_int_equal(atomic_load(&c->wk.in_flight), 0); /* every transaction was freed */
    assert_null(c->wk.relay_txns);
    capture_stop(c->cap);
    metrics_free(c->wk.metrics);
    pending_free(c->pending);
    relay_worker_free(&c->wk);
    event_base_free(c->wk.base);
    worker_set_self(NULL);
    void *ws = c->w;
    world_teardown(&ws);
    free(c);
    return 0;
}

/* Creates a transaction from member `from` (SenderID its NetID) as a front end speaking proto
 * would for a request of type req (answer ans), sender waiting synchronously. */
static relay_txn_t *create_proto(core_t *c, const peer_member_t *from, rp_protocol_t proto,
                                 bi_msg_type_t req, bi_msg_type_t ans, uint32_t txid)
{
    relay_txn_params_t p = {0};
    p.sender_protocol = proto;
    p.sender = from;
    p.sender_id.kind = RP_STATS_ID_NETID;
    p.sender_id.id = from->net_ids[0];
    p.sender_waits = true;
    p.req_type = req;
    p.ans_type = ans;
    p.sender_txid = txid;
    p.recv_ns = rh_mono_ns() - 2000000; /* received 2 ms ago: latency is non-zero */
    relay_txn_t *t = relay_txn_create(&c->wk, c->w->reg, &p, &test_ops, sizeof(fe_ctx_t));
    assert_non_null(t);
    ((fe_ctx_t *)relay_txn_ctx(t))->magic = 42;
    return t;
}

/* create_proto as the TS002 front end. */
static relay_txn_t *create(core_t *c, const peer_member_t *from, bi_msg_type_t req,
                           bi_msg_type_t ans, uint32_t txid)
{
    return create_proto(c, from, RP_PROTO_TS002, req, ans, txid);
}

/* The one statistics row counted since the last call. */
static rp_stats_item_t one_row(core_t *c)
{
    rp_stats_item_t *items = NULL;
    size_t n = 0;
    assert_int_equal(metrics_take_deltas(c->wk.metrics, 1, &items, &n), RH_OK);
    if (n != 1)
        fail_msg("%zu statistics rows, expected 1", n);
    rp_stats_item_t r = items[0];
    free(items);
    assert_int_equal(r.count, 1);
    return r;
}

/* The one capture event since the last call. */
static capture_event_t one_event(core_t *c)
{
    capture_event_t ev[4];
    size_t n = capture_take(c->cap, ev, 4);
    if (n != 1)
        fail_msg("%zu capture events, expected 1", n);
    assert_int_equal(ev[0].worker, 3);
    return ev[0];
}

static void check_row(const rp_stats_item_t *r, uint32_t fwd, uint32_t home, rp_class_t cls,
                      rp_outcome_t out, const char *result, bool latency)
{
    assert_int_equal(r->forwarder_kind, RP_STATS_ID_NETID);
    assert_int_equal(r->forwarder_net_id, fwd);
    assert_int_equal(r->home_net_id, home);
    assert_int_equal(r->cls, cls);
    assert_int_equal(r->outcome, out);
    if (result)
        assert_string_equal(r->result_code, result);
    else
        assert_null(r->result_code);
    if (latency)
        assert_true(r->latency_us_sum >= 2000);
    else
        assert_int_equal(r->latency_us_sum, 0);
}

/* The protocols of a row's forwarder and home network. */
static void check_protocols(const rp_stats_item_t *r, rp_protocol_t fwd, rp_protocol_t home)
{
    assert_string_equal(rp_protocol_name(r->forwarder_protocol), rp_protocol_name(fwd));
    assert_string_equal(rp_protocol_name(r->home_protocol), rp_protocol_name(home));
}

static void check_event(const capture_event_t *e, uint32_t fwd, uint32_t home,
                        bi_msg_type_t type, uint32_t txid, rp_class_t cls, rp_outcome_t out,
                        const char *result, const char *sender)
{
    assert_int_equal(e->fwd_net_id, fwd);
    assert_int_equal(e->home_net_id, home);
    assert_int_equal(e->msg_type, type);
    assert_int_equal(e->transaction_id, txid);
    assert_int_equal(e->cls, cls);
    assert_int_equal(e->outcome, out);
    assert_string_equal(e->result_code, result);
    assert_string_equal(e->sender, sender);
}

/* The front end's forward ends (its response callback dropping its reference). */
static void fe_forward_ends(void)
{
    assert_non_null(L.t);
    relay_txn_t *t = L.t;
    L.t = NULL;
    relay_txn_unref(t);
}

/* A confirmed uplink (MType 4) with FPort 1 from DevAddr le (little-endian hex). */
#define UP_CONF_APP(devaddr_le) "80" devaddr_le "00" "0100" "01" "aa" "01020304"

/* ---------------------------------------------------------------- create -> forward -> answer */

typedef struct answer_job {
    relay_answer_t a;
} answer_job_t;

static void deliver_answer(relay_txn_t *t, void *arg)
{
    relay_txn_complete(t, &((answer_job_t *)arg)->a);
}


/* The transaction's answer deadline ended with it: the transaction was freed (the deadline held
 * a reference), and the only event left is at most the deadline list's lazily armed timer
 * (rh_deadlines.h: it fires once, finds nothing due, and is not re-armed). */
static void no_deadline_left(core_t *c)
{
    assert_int_equal(atomic_load(&c->wk.in_flight), 0);
    assert_true(event_base_get_num_events(c->wk.base, EVENT_BASE_COUNT_ADDED) <= 1);
}

static void test_forward_then_async_answer(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    relay_txn_t *t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 77);
    /* ReceiverID a placeholder 000000: the core names the receiver it decided (B) */
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, 0, false, UP_APP("0100000a"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 1);
    assert_int_equal(L.answers, 0);
    assert_string_equal(L.fwd_ep, "epB");
    assert_true(L.fwd.set_txid);
    assert_int_equal(L.fwd.hub_txid, relay_txn_hub_txid(t));
    assert_int_equal(L.fwd.receiver.kind, BI_ID_NETID);
    assert_int_equal(L.fwd.receiver.value, B);
    assert_int_equal(relay_txn_sent_receiver(t).value, B);
    assert_int_equal(L.fwd.strip, 0); /* A -> B allows signal quality and localization */
    assert_true(L.fwd.wait_ms > 0);
    assert_int_equal(pending_count(c->pending), 1);
    assert_int_equal(relay_txn_decision(t)->cls, RP_CLASS_UPLINK_APP);

    /* an answer from a member that is not the receiver matches nothing */
    assert_null(relay_txn_claim(&c->wk, c->w->c, L.fwd.hub_txid, BI_MT_PR_START_ANS));
    /* nor one of the wrong type */
    assert_null(relay_txn_claim(&c->wk, c->w->b, L.fwd.hub_txid, BI_MT_XMIT_DATA_ANS));
    /* B answers asynchronously with its own message (opaque to the core) */
    relay_txn_t *claimed = relay_txn_claim(&c->wk, c->w->b, L.fwd.hub_txid, BI_MT_PR_START_ANS);
    assert_ptr_equal(claimed, t);
    assert_int_equal(pending_count(c->pending), 0);
    static int receiver_msg;
    answer_job_t job = {{.code = BI_RC_SUCCESS, .fe_msg = &receiver_msg}};
    assert_int_equal(relay_txn_post_claimed(claimed, deliver_answer, &job), RH_OK);
    assert_int_equal(L.answers, 1);
    assert_ptr_equal(L.ans.fe_msg, &receiver_msg); /* TS002 -> TS002 forwards its bytes */
    assert_int_equal(L.ans.code, BI_RC_SUCCESS);
    assert_false(L.ans.downlink_refused);
    assert_true(relay_txn_done(t));
    /* a late second answer or failure changes nothing */
    relay_txn_fail(t, RP_OUT_UNREACHABLE, "late");
    relay_txn_complete(t, &job.a);
    assert_int_equal(L.answers, 1);

    rp_stats_item_t r = one_row(c);
    check_row(&r, A, B, RP_CLASS_UPLINK_APP, RP_OUT_FORWARDED, NULL, true);
    check_protocols(&r, RP_PROTO_TS002, RP_PROTO_TS002);
    capture_event_t e = one_event(c);
    check_event(&e, A, B, BI_MT_PR_START_REQ, 77, RP_CLASS_UPLINK_APP, RP_OUT_FORWARDED, "",
                "A");
    assert_true(e.latency_us >= 2000);

    assert_int_equal(L.releases, 0); /* the front end's forward still holds it */
    fe_forward_ends();
    assert_int_equal(L.releases, 1);
    no_deadline_left(c);
}

/* The receiver answers with an error ResultCode; then a downlink the policy refuses. */
static void test_answer_result_and_refused_downlink(void **state)
{
    core_t *c = *state;
    uint8_t buf[64], dl[64];
    relay_txn_t *t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 5);
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, B, false, UP_APP("0100000a"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 1);
    relay_answer_t a = {.code = BI_RC_MIC_FAILED, .description = "MIC failed"};
    relay_txn_complete(t, &a);
    assert_int_equal(L.ans.code, BI_RC_MIC_FAILED);
    assert_string_equal(L.ans_desc, "MIC failed");
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, B, RP_CLASS_UPLINK_APP, RP_OUT_RECEIVER_ERROR, "MICFailed", true);
    capture_event_t e = one_event(c);
    check_event(&e, A, B, BI_MT_PR_START_REQ, 5, RP_CLASS_UPLINK_APP, RP_OUT_RECEIVER_ERROR,
                "MICFailed", "A");
    fe_forward_ends();

    /* A -> C allows application uplinks but no downlink class: the answer's downlink goes */
    t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 6);
    v = msg(c->w->a, ROUTE_UPLINK, C, false, UP_APP("0100000e"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 2);
    assert_string_equal(L.fwd_ep, "epC");
    assert_int_equal(L.fwd.strip, ROUTE_STRIP_SIGNAL | ROUTE_STRIP_LOCATION);
    a = (relay_answer_t){.code = BI_RC_SUCCESS};
    a.phy = dl;
    a.phy_len = unhex(DOWN_APP, dl);
    relay_txn_complete(t, &a);
    assert_true(L.ans.downlink_refused);
    assert_int_equal(L.ans.code, BI_RC_NO_ROAMING_AGREEMENT);
    assert_string_equal(L.ans_desc,
                        "routing policy 000202 -> 000707 does not allow downlink application_data");
    r = one_row(c);
    check_row(&r, A, C, RP_CLASS_UPLINK_APP, RP_OUT_RECEIVER_ERROR, "NoRoamingAgreement", true);
    e = one_event(c);
    check_event(&e, A, C, BI_MT_PR_START_REQ, 6, RP_CLASS_UPLINK_APP, RP_OUT_RECEIVER_ERROR,
                "NoRoamingAgreement", "A");
    fe_forward_ends();
    assert_int_equal(L.releases, 2);
}

/* ---------------------------------------------------------------- answer deadlines on a list */

/* The world's endpoints wait 60 ms for answers (the registry reads the default when it is made). */
static int setup_short_wait(void **state)
{
    peer_endpoint_set_default_timeout_ms(60);
    return setup(state);
}

static int teardown_short_wait(void **state)
{
    peer_endpoint_set_default_timeout_ms(0);
    return teardown(state);
}

/* Transactions waiting as long share the worker's deadline list (rh_deadlines.h): one answered
 * is off it, the others time out in order, on the list's one timer. */
static void test_answer_deadlines_on_one_timer(void **state)
{
    core_t *c = *state;
    uint8_t buf[3][64];
    relay_txn_t *t[3];
    uint32_t txid[3];
    for (int i = 0; i < 3; i++) {
        t[i] = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 200 + (uint32_t)i);
        route_msg_t v = msg(c->w->a, ROUTE_UPLINK, B, false, UP_APP("0100000a"), buf[i]);
        relay_txn_route(t[i], &v);
        assert_int_equal(L.fwd.wait_ms, 60);
        txid[i] = L.fwd.hub_txid;
        fe_forward_ends();
    }
    assert_int_equal(L.forwards, 3);
    assert_int_equal(pending_count(c->pending), 3);
    /* one timer for the three deadlines */
    assert_int_equal(event_base_get_num_events(c->wk.base, EVENT_BASE_COUNT_ADDED), 1);
    /* the second is answered: its deadline ends with it */
    relay_txn_t *claimed = relay_txn_claim(&c->wk, c->w->b, txid[1], BI_MT_PR_START_ANS);
    assert_ptr_equal(claimed, t[1]);
    static int receiver_msg;
    answer_job_t job = {{.code = BI_RC_SUCCESS, .fe_msg = &receiver_msg}};
    assert_int_equal(relay_txn_post_claimed(claimed, deliver_answer, &job), RH_OK);
    assert_int_equal(L.answers, 1);
    assert_int_equal(L.ans.code, BI_RC_SUCCESS);
    uint64_t t0 = rh_mono_ns();
    event_base_dispatch(c->wk.base); /* returns once no deadline is left */
    assert_true(rh_mono_ns() - t0 >= 40 * 1000000ull);
    assert_int_equal(L.answers, 3);
    assert_int_equal(L.ans.code, BI_RC_OTHER);
    assert_string_equal(L.ans_desc, "receiver did not answer in time (epB)");
    assert_int_equal(pending_count(c->pending), 0);
    assert_int_equal(atomic_load(&c->wk.in_flight), 0);
    /* late answers find nothing */
    assert_null(relay_txn_claim(&c->wk, c->w->b, txid[0], BI_MT_PR_START_ANS));
    assert_null(relay_txn_claim(&c->wk, c->w->b, txid[2], BI_MT_PR_START_ANS));
}

/* ---------------------------------------------------------------- create -> forward -> timeout */

static void test_timeout_in_receive_window(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    /* a front end that gives up before routing: released, nothing counted */
    relay_txn_t *t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 8);
    relay_txn_unref(t);
    assert_int_equal(L.releases, 1);
    assert_int_equal(L.answers, 0);
    /* a confirmed uplink received 1.62 s ago: RX2 (2 s) minus the 300 ms margin leaves ~80 ms */
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, B, false, UP_CONF_APP("0100000a"), buf);
    relay_txn_params_t p = {0};
    p.sender = c->w->a;
    p.sender_id.id = A;
    p.sender_waits = true;
    p.req_type = BI_MT_PR_START_REQ;
    p.ans_type = BI_MT_PR_START_ANS;
    p.sender_txid = 9;
    p.recv_ns = rh_mono_ns() - 2000000;
    p.has_ul_recv_time = true;
    p.ul_recv_ms = rh_real_ms() - 1620;
    t = relay_txn_create(&c->wk, c->w->reg, &p, &test_ops, sizeof(fe_ctx_t));
    assert_non_null(t);
    ((fe_ctx_t *)relay_txn_ctx(t))->magic = 42;
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 1);
    assert_true(L.fwd.wait_ms > 0 && L.fwd.wait_ms <= 80);
    assert_int_equal(L.answers, 0);
    event_base_dispatch(c->wk.base); /* the answer timer fires; nothing else is pending */
    assert_int_equal(L.answers, 1);
    assert_int_equal(L.ans.code, BI_RC_OTHER);
    assert_null(L.ans.fe_msg);
    assert_string_equal(L.ans_desc,
                        "receiver did not answer before the device's receive window (epB)");
    assert_int_equal(pending_count(c->pending), 0);
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, B, RP_CLASS_UPLINK_APP, RP_OUT_TIMEOUT, NULL, true);
    capture_event_t e = one_event(c);
    check_event(&e, A, B, BI_MT_PR_START_REQ, 9, RP_CLASS_UPLINK_APP, RP_OUT_TIMEOUT, "", "");
    /* the receiver's late answer finds nothing */
    assert_null(relay_txn_claim(&c->wk, c->w->b, L.fwd.hub_txid, BI_MT_PR_START_ANS));
    fe_forward_ends();
    assert_int_equal(L.releases, 2);

    /* received 2 s ago: the window has passed, nothing is forwarded */
    p.ul_recv_ms = rh_real_ms() - 2000;
    t = relay_txn_create(&c->wk, c->w->reg, &p, &test_ops, sizeof(fe_ctx_t));
    ((fe_ctx_t *)relay_txn_ctx(t))->magic = 42;
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 1);
    assert_int_equal(L.answers, 2);
    assert_string_equal(
        L.ans_desc, "too late: the answer can no longer reach the device's receive window (epB)");
    r = one_row(c);
    check_row(&r, A, B, RP_CLASS_UPLINK_APP, RP_OUT_TIMEOUT, NULL, true);
    one_event(c);
    assert_int_equal(L.releases, 3);
}

/* A downlink whose receiver cannot be reached: XmitFailed; the forwarder is the receiver. */
static void test_receiver_unreachable_downlink(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    relay_txn_t *t = create(c, c->w->b, BI_MT_XMIT_DATA_REQ, BI_MT_XMIT_DATA_ANS, 11);
    route_msg_t v = msg(c->w->b, ROUTE_DOWNLINK, A, false, DOWN_APP, buf);
    /* the answer deadline is armed before the front end is asked to send */
    L.forward_rc = RH_EAGAIN;
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 1);
    assert_string_equal(L.fwd_ep, "epA");
    assert_int_equal(L.answers, 1);
    assert_int_equal(L.ans.code, BI_RC_XMIT_FAILED);
    assert_string_equal(L.ans_desc,
                        "receiver unavailable (backing off or at its in-flight limit) (epA)");
    assert_int_equal(pending_count(c->pending), 0);
    no_deadline_left(c);
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, B, RP_CLASS_DOWNLINK_APP, RP_OUT_UNREACHABLE, NULL, true);
    capture_event_t e = one_event(c);
    check_event(&e, A, B, BI_MT_XMIT_DATA_REQ, 11, RP_CLASS_DOWNLINK_APP, RP_OUT_UNREACHABLE, "",
                "");
    assert_int_equal(L.releases, 1);
}

/* ---------------------------------------------------------------- hooks (cluster_inflight.h) */

typedef struct hook_log {
    int started, ended;
    relay_inflight_t last; /* sender valid only during the call */
    char sender[32];
} hook_log_t;

static void hook_started(void *arg, const relay_inflight_t *i)
{
    hook_log_t *h = arg;
    h->started++;
    h->last = *i;
    snprintf(h->sender, sizeof h->sender, "%s", i->sender);
}

static void hook_ended(void *arg, const relay_inflight_t *i)
{
    hook_log_t *h = arg;
    h->ended++;
    assert_int_equal(i->hub_txid, h->last.hub_txid); /* the same transaction's IDs */
    assert_int_equal(i->sender_txid, h->last.sender_txid);
}

/* Only async senders waiting for an answer are observed: started once forwarded with the
 * deadline and the failure the holder would answer, ended once when done (however it ends). */
static void test_hooks_observe_async_senders_only(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    hook_log_t hl = {0};
    relay_hooks_t hooks = {hook_started, hook_ended, &hl};
    c->wk.relay_hooks = &hooks;
    /* a sync sender: not observed */
    relay_txn_t *t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 5);
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, 0, false, UP_APP("0100000a"), buf);
    relay_txn_route(t, &v);
    relay_txn_fail(L.t, RP_OUT_UNREACHABLE, "gone");
    fe_forward_ends();
    assert_int_equal(hl.started, 0);
    assert_int_equal(hl.ended, 0);
    /* an async sender's uplink: started with its facts, ended by the receiver's answer */
    relay_txn_params_t p = {0};
    p.sender = c->w->a;
    p.sender_id.kind = RP_STATS_ID_NETID;
    p.sender_id.id = A;
    p.sender_async = true;
    p.req_type = BI_MT_PR_START_REQ;
    p.ans_type = BI_MT_PR_START_ANS;
    p.sender_txid = 66;
    p.recv_ns = rh_mono_ns();
    t = relay_txn_create(&c->wk, c->w->reg, &p, &test_ops, sizeof(fe_ctx_t));
    ((fe_ctx_t *)relay_txn_ctx(t))->magic = 42;
    int64_t before = rh_real_ms();
    v = msg(c->w->a, ROUTE_UPLINK, 0x000777, false, UP_APP("0100000a"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(hl.started, 1);
    assert_int_equal(hl.ended, 0);
    assert_string_equal(hl.sender, "A");
    assert_int_equal(hl.last.sender_id.id, A);
    assert_false(hl.last.receiver_is_eui);
    assert_int_equal(hl.last.receiver, 0x000777); /* the ReceiverID the sender named */
    assert_int_equal(hl.last.sender_txid, 66);
    assert_int_equal(hl.last.hub_txid, L.fwd.hub_txid);
    assert_int_equal(hl.last.ans_type, BI_MT_PR_START_ANS);
    assert_int_equal(hl.last.fail_code, BI_RC_OTHER);
    assert_true(hl.last.deadline_ms >= before + L.fwd.wait_ms);
    assert_true(hl.last.deadline_ms <= rh_real_ms() + L.fwd.wait_ms + 100);
    relay_answer_t a = {.code = BI_RC_SUCCESS};
    relay_txn_complete(t, &a);
    relay_txn_complete(t, &a); /* a second completion: no second end */
    assert_int_equal(hl.ended, 1);
    fe_forward_ends();
    /* an async sender's downlink: XmitFailed is what the holder answers at the deadline */
    p.sender = c->w->b;
    p.sender_id.id = B;
    p.req_type = BI_MT_XMIT_DATA_REQ;
    p.ans_type = BI_MT_XMIT_DATA_ANS;
    t = relay_txn_create(&c->wk, c->w->reg, &p, &test_ops, sizeof(fe_ctx_t));
    ((fe_ctx_t *)relay_txn_ctx(t))->magic = 42;
    v = msg(c->w->b, ROUTE_DOWNLINK, A, false, DOWN_APP, buf);
    relay_txn_route(t, &v);
    assert_int_equal(hl.started, 2);
    assert_int_equal(hl.last.fail_code, BI_RC_XMIT_FAILED);
    relay_txn_fail(t, RP_OUT_TIMEOUT, "timed out");
    assert_int_equal(hl.ended, 2);
    fe_forward_ends();
    /* a forward that fails at once never started: no end either */
    L.forward_rc = RH_EAGAIN;
    t = relay_txn_create(&c->wk, c->w->reg, &p, &test_ops, sizeof(fe_ctx_t));
    ((fe_ctx_t *)relay_txn_ctx(t))->magic = 42;
    relay_txn_route(t, &v);
    assert_int_equal(hl.started, 2);
    assert_int_equal(hl.ended, 2);
    c->wk.relay_hooks = NULL;
}

/* ---------------------------------------------------------------- refusal, hub answer, notice */

static void test_refusals_and_hub_answers(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    /* no DevAddr block: UnknownDevAddr, nothing forwarded, released at once */
    relay_txn_t *t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 21);
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, B, false, UP_APP("01000016"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 0);
    assert_int_equal(L.answers, 1);
    assert_int_equal(L.ans.code, BI_RC_UNKNOWN_DEV_ADDR);
    assert_string_equal(L.ans_desc, "DevAddr 16000001 is in no DevAddr block at this hub");
    assert_int_equal(L.releases, 1);
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, 0, RP_CLASS_UPLINK_APP, RP_OUT_NO_ROUTE, NULL, true);
    check_protocols(&r, RP_PROTO_TS002, RP_PROTO_TS002);
    capture_event_t e = one_event(c);
    check_event(&e, A, 0, BI_MT_PR_START_REQ, 21, RP_CLASS_UPLINK_APP, RP_OUT_NO_ROUTE, "", "");

    /* D has no policy towards B: NoRoamingAgreement, policy_denied */
    t = create(c, c->w->d, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 22);
    v = msg(c->w->d, ROUTE_UPLINK, B, false, UP_APP("0100000a"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 0);
    assert_int_equal(L.ans.code, BI_RC_NO_ROAMING_AGREEMENT);
    r = one_row(c);
    check_row(&r, D, B, RP_CLASS_UPLINK_APP, RP_OUT_POLICY_DENIED, NULL, true);
    e = one_event(c);
    check_event(&e, D, B, BI_MT_PR_START_REQ, 22, RP_CLASS_UPLINK_APP, RP_OUT_POLICY_DENIED, "",
                "");

    /* HomeNSReq answered by the hub from the join route: HomeNSAns with HNetID C */
    t = create(c, c->w->a, BI_MT_HOME_NS_REQ, BI_MT_HOME_NS_ANS, 23);
    v = msg(c->w->a, ROUTE_HOME_NS, EUI_C, true, NULL, buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 0);
    assert_int_equal(L.ans.code, BI_RC_SUCCESS);
    assert_true(L.ans.has_hnet_id);
    assert_int_equal(L.ans.hnet_id, C);
    assert_null(L.ans.fe_msg);
    r = one_row(c);
    check_row(&r, A, C, RP_CLASS_JOIN_REQUEST, RP_OUT_FORWARDED, NULL, true);
    e = one_event(c);
    check_event(&e, A, C, BI_MT_HOME_NS_REQ, 23, RP_CLASS_JOIN_REQUEST, RP_OUT_FORWARDED, "",
                "A");

    /* a notification (no answer type) is delivered without a pending entry */
    t = create(c, c->w->a, BI_MT_PR_STOP_REQ, BI_MT_UNKNOWN, 24);
    v = msg(c->w->a, ROUTE_OTHER, B, false, NULL, buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 1);
    assert_false(L.fwd.set_txid);
    assert_int_equal(pending_count(c->pending), 0);
    relay_txn_delivered(L.t);
    r = one_row(c);
    check_row(&r, A, B, RP_CLASS_OTHER, RP_OUT_FORWARDED, NULL, true);
    e = one_event(c);
    check_event(&e, A, B, BI_MT_PR_STOP_REQ, 24, RP_CLASS_OTHER, RP_OUT_FORWARDED, "", "A");
    fe_forward_ends();
    assert_int_equal(L.answers, 3); /* delivered notifications are not answered */
    assert_int_equal(L.releases, 4);
}

/* A front end's refusal before any transaction (relay_count) records the same facts. */
static void test_count_without_transaction(void **state)
{
    core_t *c = *state;
    relay_fwd_t who = {RP_STATS_ID_NETID, A};
    relay_count(&c->wk, who, 0, RP_PROTO_PACKET_BROKER, RP_PROTO_TS002, BI_MT_PR_START_REQ, 31,
                RP_CLASS_OTHER, RP_OUT_UNAUTHORIZED, NULL, rh_mono_ns() - 2000000, NULL);
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, 0, RP_CLASS_OTHER, RP_OUT_UNAUTHORIZED, NULL, true);
    check_protocols(&r, RP_PROTO_PACKET_BROKER, RP_PROTO_TS002);
    capture_event_t e = one_event(c);
    check_event(&e, A, 0, BI_MT_PR_START_REQ, 31, RP_CLASS_OTHER, RP_OUT_UNAUTHORIZED, "", "");
    /* a Join Server forwarder is counted by its JoinEUI, never cut down to a NetID */
    relay_fwd_t js = {RP_STATS_ID_JOIN_EUI, EUI_JS};
    relay_count(&c->wk, js, B, RP_PROTO_TS002, RP_PROTO_TS002, BI_MT_HOME_NS_REQ, 32,
                RP_CLASS_OTHER, RP_OUT_FORWARDED, NULL, 0, "J");
    rp_stats_item_t *items = NULL;
    size_t n = 0;
    assert_int_equal(metrics_take_deltas(c->wk.metrics, 1, &items, &n), RH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].forwarder_kind, RP_STATS_ID_JOIN_EUI);
    assert_int_equal(items[0].forwarder_join_eui, EUI_JS);
    free(items);
    e = one_event(c);
    assert_int_equal(e.fwd_net_id, UINT32_MAX);
}

/* A Packet Broker front end's transactions (pb_bridge.c: sender_protocol Packet Broker) toward
 * TS002 endpoints: the protocols of each side of the row follow the message's direction; a
 * refusal before any receiver was chosen counts the receiving side as the sender's protocol. */
static void test_protocols_of_bridged_rows(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    /* a Packet Broker forwarder's uplink to B's TS002 endpoint */
    relay_txn_t *t = create_proto(c, c->w->a, RP_PROTO_PACKET_BROKER, BI_MT_PR_START_REQ,
                                  BI_MT_PR_START_ANS, 61);
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, 0, false, UP_APP("0100000a"), buf);
    relay_txn_route(t, &v);
    assert_string_equal(L.fwd_ep, "epB");
    relay_answer_t a = {.code = BI_RC_SUCCESS};
    relay_txn_complete(t, &a);
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, B, RP_CLASS_UPLINK_APP, RP_OUT_FORWARDED, NULL, true);
    check_protocols(&r, RP_PROTO_PACKET_BROKER, RP_PROTO_TS002);
    one_event(c);
    fe_forward_ends();
    /* a Packet Broker home network's downlink to forwarder A's TS002 endpoint: the forwarder
     * side is the receiver */
    t = create_proto(c, c->w->b, RP_PROTO_PACKET_BROKER, BI_MT_XMIT_DATA_REQ, BI_MT_XMIT_DATA_ANS,
                     62);
    v = msg(c->w->b, ROUTE_DOWNLINK, A, false, DOWN_APP, buf);
    relay_txn_route(t, &v);
    assert_string_equal(L.fwd_ep, "epA");
    relay_txn_complete(t, &a);
    r = one_row(c);
    check_row(&r, A, B, RP_CLASS_DOWNLINK_APP, RP_OUT_FORWARDED, NULL, true);
    check_protocols(&r, RP_PROTO_TS002, RP_PROTO_PACKET_BROKER);
    one_event(c);
    fe_forward_ends();
    /* refused before a receiver was chosen (no DevAddr block): Packet Broker on both sides */
    t = create_proto(c, c->w->a, RP_PROTO_PACKET_BROKER, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS,
                     63);
    v = msg(c->w->a, ROUTE_UPLINK, B, false, UP_APP("01000016"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 2);
    r = one_row(c);
    check_row(&r, A, 0, RP_CLASS_UPLINK_APP, RP_OUT_NO_ROUTE, NULL, true);
    check_protocols(&r, RP_PROTO_PACKET_BROKER, RP_PROTO_PACKET_BROKER);
    one_event(c);
    assert_int_equal(L.releases, 3);
}

/* Shutdown fails what is still pending and frees it once the front end lets go. */
static void test_worker_fini(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    relay_txn_t *t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 41);
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, B, false, UP_APP("0100000a"), buf);
    relay_txn_route(t, &v);
    assert_int_equal(atomic_load(&c->wk.in_flight), 1);
    relay_worker_fini(&c->wk);
    assert_int_equal(L.answers, 1);
    assert_string_equal(L.ans_desc, "hub shutting down (epB)");
    assert_int_equal(pending_count(c->pending), 0);
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, B, RP_CLASS_UPLINK_APP, RP_OUT_UNREACHABLE, NULL, true);
    one_event(c);
    fe_forward_ends();
    assert_int_equal(L.releases, 1);
}

/* A party without a TS002 endpoint (route_msg_t.any_transport; a Packet Broker subscriber): the
 * core forwards with ep NULL, waits RELAY_GRPC_WAIT_MS, and takes the answer from
 * relay_txn_claim_party by the party's NetID; a front end that finds no way there gets the
 * route's no-route code; relay_txn_refuse ends a forwarded transaction at once. */
static void test_party_without_endpoint(void **state)
{
    core_t *c = *state;
    uint8_t buf[64];
    assert_int_equal(fx_policy(c->w->f, A, NULL, 1, 0x000909, NULL, 0xff), RH_OK);
    relay_txn_t *t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 91);
    route_msg_t v = msg(c->w->a, ROUTE_UPLINK, 0, false, UP_APP("01000012"), buf);
    v.any_transport = true;
    relay_txn_route(t, &v);
    assert_int_equal(L.forwards, 1);
    assert_null(L.fwd.ep);
    assert_int_equal(L.fwd.wait_ms, RELAY_GRPC_WAIT_MS);
    assert_int_equal(L.fwd.receiver.kind, BI_ID_NETID);
    assert_int_equal(L.fwd.receiver.value, 0x000909);
    assert_int_equal(pending_count(c->pending), 1);
    /* a member's claim does not match; the party's by NetID does (and only with its type) */
    assert_null(relay_txn_claim(&c->wk, c->w->b, L.fwd.hub_txid, BI_MT_PR_START_ANS));
    assert_null(relay_txn_claim_party(&c->wk, 0x000505, L.fwd.hub_txid, BI_MT_PR_START_ANS));
    assert_null(relay_txn_claim_party(&c->wk, 0x000909, L.fwd.hub_txid, BI_MT_XMIT_DATA_ANS));
    relay_txn_t *claimed = relay_txn_claim_party(&c->wk, 0x000909, L.fwd.hub_txid,
                                                 BI_MT_PR_START_ANS);
    assert_ptr_equal(claimed, t);
    answer_job_t job = {{.code = BI_RC_UNKNOWN_DEV_ADDR, .description = "home network reported NOT_FOUND"}};
    assert_int_equal(relay_txn_post_claimed(claimed, deliver_answer, &job), RH_OK);
    assert_int_equal(L.answers, 1);
    assert_int_equal(L.ans.code, BI_RC_UNKNOWN_DEV_ADDR);
    rp_stats_item_t r = one_row(c);
    check_row(&r, A, 0x000909, RP_CLASS_UPLINK_APP, RP_OUT_RECEIVER_ERROR, "UnknownDevAddr", true);
    check_protocols(&r, RP_PROTO_TS002, RP_PROTO_PACKET_BROKER); /* bridged to its own transport */
    one_event(c);
    fe_forward_ends();

    /* the front end finds no way to the party: refused with the route's no-route code */
    memset(&L, 0, sizeof L);
    L.forward_rc = RH_ENOTFOUND;
    t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 92);
    v = msg(c->w->a, ROUTE_UPLINK, 0, false, UP_APP("01000012"), buf);
    v.any_transport = true;
    relay_txn_route(t, &v);
    assert_int_equal(L.answers, 1);
    assert_int_equal(L.ans.code, BI_RC_UNKNOWN_DEV_ADDR);
    assert_string_equal(L.ans_desc, "network 000909 has no endpoint or subscription at this hub");
    assert_int_equal(pending_count(c->pending), 0);
    r = one_row(c);
    check_row(&r, A, 0x000909, RP_CLASS_UPLINK_APP, RP_OUT_NO_ROUTE, NULL, true);
    one_event(c);

    /* relay_txn_refuse ends a forwarded transaction: answered once, the entry gone */
    memset(&L, 0, sizeof L);
    t = create(c, c->w->a, BI_MT_PR_START_REQ, BI_MT_PR_START_ANS, 93);
    v = msg(c->w->a, ROUTE_UPLINK, 0, false, UP_APP("01000012"), buf);
    v.any_transport = true;
    relay_txn_route(t, &v);
    uint32_t txid = L.fwd.hub_txid;
    relay_txn_refuse(t, BI_RC_MALFORMED_REQUEST, "DLMetaData.FNSULToken: bad", RP_OUT_MALFORMED);
    assert_int_equal(L.answers, 1);
    assert_int_equal(L.ans.code, BI_RC_MALFORMED_REQUEST);
    assert_string_equal(L.ans_desc, "DLMetaData.FNSULToken: bad");
    relay_txn_refuse(t, BI_RC_OTHER, "again", RP_OUT_MALFORMED);
    assert_int_equal(L.answers, 1);
    assert_null(relay_txn_claim_party(&c->wk, 0x000909, txid, BI_MT_PR_START_ANS));
    r = one_row(c);
    check_row(&r, A, 0x000909, RP_CLASS_UPLINK_APP, RP_OUT_MALFORMED, NULL, true);
    one_event(c);
    fe_forward_ends();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forward_then_async_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_result_and_refused_downlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_in_receive_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_deadlines_on_one_timer, setup_short_wait,
                                        teardown_short_wait),
        cmocka_unit_test_setup_teardown(test_receiver_unreachable_downlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_and_hub_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_without_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_fini, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocols_of_bridged_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_party_without_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks_observe_async_senders_only, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
