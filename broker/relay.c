/*
 * relay.c — the relay's actions: TS002 request intake (authenticate, decode, SenderID check,
 * rate limit), the transactions, forwarding, and sync/async answer bridging (see relay.h for
 * the stages). Where a message goes is decided by route.c (route_decide, a pure function over a
 * protocol-neutral view that this file builds from the decoded message); this file alone
 * completes, fails and answers transactions and applies the decided edits through the codec
 * (bi_msg_strip_gwinfo, bi_msg_set_hnet_id, bi_msg_drop_downlink).
 *
 * Transaction lifetime: a relay_txn_t is reference-counted because several events can refer to
 * it — the HTTP response to our forward (an async receiver's acknowledgement), the answer timer
 * and the receiver's answer posted back to the hub (possibly on another worker, handed over
 * through our inbox). The references: the forward's callback holds the initial one (forward);
 * the pending-table entry holds one, inherited by whoever takes the entry (forward, handoff_cb,
 * answer_timeout_cb, txn_finish); the answer timer holds one exactly while it is pending
 * (forward, answer_timeout_cb, txn_finish); intake and shutdown hold one across their
 * calls. `done` is set by the first completion (answer, failure, timeout); later events only
 * drop their reference.
 */
#include "relay_internal.h"

#include "capture.h"
#include "cluster_txn.h"
#include "gateways.h"
#include "lw_netid.h"
#include "peer_tls.h"
#include "rh_log.h"
#include "rh_time.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reference count and list links kept beside the public struct. */
typedef struct txn_box {
    relay_txn_t t;
    int refs;
    struct txn_box *prev, *next;
} txn_box_t;

static txn_box_t *box_of(relay_txn_t *t)
{
    return (txn_box_t *)t;
}

static const char *netid_text(uint32_t netid, char out[7])
{
    lw_netid_format(netid, out, 0);
    return out;
}

_Static_assert(ROUTE_STRIP_SIGNAL == BI_STRIP_SIGNAL && ROUTE_STRIP_LOCATION == BI_STRIP_LOCATION,
               "route.h strip flags are the codec's");

/* The dialect a peer endpoint wants (NULL endpoint: keep the message's own version, lower-case
 * hex, RP002 region names). */
static bi_dialect_t relay_dialect(const peer_endpoint_t *ep)
{
    bi_dialect_t d = {BI_VERSION_UNKNOWN, BI_HEX_LOWER, BI_REGION_NAMES_RP002, false, false};
    if (ep) {
        d.version = ep->protocol == PEER_PROTOCOL_1_1 ? BI_VERSION_1_1 : BI_VERSION_1_0;
        d.hex_case = ep->upper_case_hex ? BI_HEX_UPPER : BI_HEX_LOWER;
        d.region_names = ep->spec_region_names ? BI_REGION_NAMES_SPEC : BI_REGION_NAMES_RP002;
        d.strict_enums = ep->strict_enums;
    }
    return d;
}

static uint64_t elapsed_us(uint64_t since_ns)
{
    return (rh_mono_ns() - since_ns) / 1000u;
}

/* ---------------------------------------------------------------- transactions */

static relay_txn_t *txn_new(worker_t *w, hs_req_t *req, peer_registry_t *reg)
{
    txn_box_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->refs = 1;
    relay_txn_t *t = &b->t;
    t->w = w;
    t->req = req;
    t->reg = peer_registry_ref(reg);
    t->t_recv_ns = hs_req_received_ns(req);
    t->ans_type = BI_MT_UNKNOWN;
    t->route.cls = RP_CLASS_OTHER;
    b->next = w->relay_txns;
    if (b->next)
        b->next->prev = b;
    w->relay_txns = b;
    atomic_fetch_add_explicit(&w->in_flight, 1, memory_order_relaxed);
    return t;
}

static void txn_ref(relay_txn_t *t)
{
    box_of(t)->refs++;
}

static void txn_unref(relay_txn_t *t)
{
    txn_box_t *b = box_of(t);
    if (--b->refs > 0)
        return;
    if (b->prev)
        b->prev->next = b->next;
    else
        t->w->relay_txns = b->next;
    if (b->next)
        b->next->prev = b->prev;
    atomic_fetch_sub_explicit(&t->w->in_flight, 1, memory_order_relaxed);
    if (t->timer)
        event_free(t->timer);
    if (t->req) /* never answered (should not happen): do not leave the client hanging */
        hs_reply(t->req, 500, "text/plain", "internal error", 14);
    rh_arena_t *prev = arena_enter(t->arena);
    bi_msg_free(t->msg);
    arena_enter(prev == t->arena ? NULL : prev);
    arena_free(t->arena);
    free(t->raw);
    peer_registry_unref(t->reg);
    free(b);
}

/* Marks the transaction complete; returns false if it already was. Drops the references that
 * the completion ends: the answer timer's (if the timer is still pending, it is cancelled here
 * and its reference goes with it — see the ownership rule in forward_done) and the pending
 * entry's (if this worker still holds the entry). Callers hold a reference of their own, so t is
 * still valid on return. */
static bool txn_finish(relay_txn_t *t)
{
    if (t->done)
        return false;
    t->done = true;
    if (t->timer && evtimer_pending(t->timer, NULL)) {
        evtimer_del(t->timer);
        txn_unref(t); /* the timer's reference (callers hold another) */
    }
    if (t->pending && pending_take(t->w->pending, &t->pkey)) {
        t->pending = false;
        txn_unref(t); /* the pending entry's reference (callers hold another) */
    }
    return true;
}

/* ---------------------------------------------------------------- answering the sender */

static void async_post_done(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    char *ep_id = arg;
    (void)body;
    (void)len;
    if (status != RH_OK || http_status < 200 || http_status > 299)
        RH_LOG(RH_LOG_WARN, "relay", "async answer not delivered endpoint=%s status=%d http=%d",
               ep_id, status, http_status);
    free(ep_id);
}

/* Sends an encoded answer to the sender: in the held HTTP response (sync) or as a POST to the
 * sender's endpoint (async). */
static void deliver(worker_t *w, hs_req_t **req, const peer_endpoint_t *sender_ep,
                    bool sender_async, const char *body, size_t len)
{
    if (!sender_async) {
        if (*req) {
            hs_reply(*req, 200, "application/json", body, len);
            *req = NULL;
        }
        return;
    }
    char *id = strdup(sender_ep->id);
    int rc = peer_client_post(w->client, sender_ep, NULL, body, len, NULL, 0, async_post_done, id);
    if (rc != RH_OK) {
        RH_LOG(RH_LOG_WARN, "relay", "async answer not sent endpoint=%s err=\"%s\"", sender_ep->id,
               rh_strerror(rc));
        free(id);
        metrics_event(w->metrics, "async_answer_not_sent");
    }
}

static bool edits_any(const bi_header_edit_t *e)
{
    return e && (e->set_txid || e->set_sender || e->set_receiver);
}

/* Encodes `ans` with the header edits e (may be NULL) for the sender and delivers it. raw/raw_len:
 * the answer's received bytes, used unchanged — or with only the edited header values spliced
 * in — when already canonical for the sender's dialect. */
static void deliver_answer(worker_t *w, hs_req_t **req, const peer_endpoint_t *sender_ep,
                           bool sender_async, bi_msg_t *ans, const char *raw, size_t raw_len,
                           bi_version_t req_version, const bi_header_edit_t *e)
{
    bi_dialect_t d = relay_dialect(sender_ep);
    if (!sender_ep)
        d.version = req_version; /* answer in the version the sender spoke */
    char *out = NULL;
    size_t len = 0;
    if (raw && !edits_any(e) && bi_msg_is_canonical_for(ans, &d)) {
        deliver(w, req, sender_ep, sender_async, raw, raw_len);
        return;
    }
    int rc = raw && e ? bi_msg_splice_header(ans, raw, raw_len, &d, e, &out, &len) : RH_EAGAIN;
    if (rc == RH_EAGAIN && (!e || bi_msg_apply_header_edit(ans, e) == RH_OK))
        rc = bi_msg_encode(ans, &d, &out, &len);
    if (rc != RH_OK) {
        if (req && *req) {
            hs_reply(*req, 500, "text/plain", "out of memory", 13);
            *req = NULL;
        }
        return;
    }
    deliver(w, req, sender_ep, sender_async, out, len);
    bi_buf_free(out);
}

/* The forwarder identity of a request's sender: its SenderID as a NetID or a JoinEUI. */
static relay_fwd_t relay_fwd_of_sender(const bi_msg_t *msg)
{
    const bi_id_t *id = &bi_msg_header(msg)->sender_id;
    relay_fwd_t f = {id->kind == BI_ID_EUI64 ? RP_STATS_ID_JOIN_EUI : RP_STATS_ID_NETID, id->value};
    return f;
}

static relay_fwd_t txn_fwd(const relay_txn_t *t)
{
    /* the sender is the forwarder except for downlinks, whose forwarder is the receiver */
    if (t->sender_is_eui && t->route.kind != ROUTE_DOWNLINK)
        return relay_fwd_of_sender(t->msg);
    relay_fwd_t f = {RP_STATS_ID_NETID, t->route.fwd.net_id};
    return f;
}

/* Counts one terminal outcome in the worker's metrics (-> statistics) and the capture tap. A
 * forwarder named by a JoinEUI is counted as such; the capture tap, keyed by NetID, gets a value
 * no NetID can have (an EUI must never be cut down to a NetID that some member owns). */
static void count_outcome(worker_t *w, relay_fwd_t fwd, uint32_t home, const bi_msg_t *msg,
                          rp_class_t cls, rp_outcome_t outcome, const char *result_code,
                          uint64_t recv_ns, const char *sender)
{
    metrics_count(w->metrics, fwd.kind, fwd.id, home, cls, outcome, result_code,
                  recv_ns ? elapsed_us(recv_ns) : 0);
    capture_tap(w->index, fwd.kind == RP_STATS_ID_NETID ? (uint32_t)fwd.id : UINT32_MAX, home, msg,
                cls, outcome, result_code, recv_ns, sender);
}

/* Answers the sender of `req_msg` with a new answer message carrying (code, description), or,
 * for notifications/answers (no answer type), acknowledges with an empty 200. Counts the
 * outcome. Used before a transaction exists (hs_req held, sync or async sender) and by
 * relay_txn_fail. */
static void relay_reply_failure(worker_t *w, hs_req_t *req, const bi_msg_t *req_msg,
                                const peer_endpoint_t *sender_ep, bool sender_async,
                                bi_result_code_t code, const char *description,
                                rp_outcome_t outcome, rp_class_t cls, relay_fwd_t fwd,
                                uint32_t home_net_id)
{
    count_outcome(w, fwd, home_net_id, req_msg, cls, outcome,
                  outcome == RP_OUT_RECEIVER_ERROR ? bi_result_code_name(code, BI_VERSION_1_0, true)
                                                   : NULL,
                  req ? hs_req_received_ns(req) : 0, NULL);
    bi_msg_t *ans = NULL;
    if (bi_answer_new(req_msg, code, description, &ans) != RH_OK) {
        /* a notification or answer: nothing to answer, acknowledge */
        if (req)
            hs_reply(req, 200, NULL, NULL, 0);
        return;
    }
    deliver_answer(w, &req, sender_ep, sender_async, ans, NULL, 0, bi_msg_header(req_msg)->version,
                   NULL);
    bi_msg_free(ans);
    if (req) /* async sender whose request was not yet acknowledged */
        hs_reply(req, 200, NULL, NULL, 0);
}

static rp_outcome_t outcome_of(bi_result_code_t rc)
{
    return rc == BI_RC_SUCCESS ? RP_OUT_FORWARDED : RP_OUT_RECEIVER_ERROR;
}

/* Answer policy: a downlink the forwarder's policy refuses (e.g. a join-accept in PRStartAns)
 * is removed and the answer becomes NoRoamingAgreement (route.c decides, the codec edits). */
static void check_answer_downlink(relay_txn_t *t, bi_msg_t *ans)
{
    const bi_fields_t *f = bi_msg_fields(ans);
    char desc[160];
    if (!(f->present & BI_F_PHY_PAYLOAD) ||
        !route_answer_downlink_refused(&t->route, f->phy_payload, f->phy_payload_len, t->w->reader,
                                       desc, sizeof desc))
        return;
    RH_LOG(RH_LOG_INFO, "relay", "answer downlink refused reason=\"%s\" txid=%u", desc,
           bi_msg_transaction_id(ans));
    if (bi_msg_drop_downlink(ans) >= 0)
        bi_msg_set_result(ans, BI_RC_NO_ROAMING_AGREEMENT, desc);
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
           bi_msg_type_name(bi_msg_type(t->msg)), t->sender->id,
           t->route.recv_ep ? t->route.recv_ep->id : "hub", bi_msg_transaction_id(t->msg),
           t->pending || t->pkey.ans_type ? t->pkey.txid : 0, rp_class_name(t->route.cls),
           rp_outcome_name(outcome), result, (unsigned long long)elapsed_us(t->t_recv_ns));
}

static bool id_eq(bi_id_t a, bi_id_t b)
{
    return a.kind == b.kind && a.value == b.value;
}

/* The edits that map a receiver's answer back onto the sender's hop: the sender's own
 * TransactionID, SenderID = the ReceiverID the sender used (unless that was a placeholder NetID
 * 000000: then the receiver's own identity stays), ReceiverID = the sender's SenderID. Only what
 * differs is edited, so an answer already right for the sender is still forwarded byte for byte
 * (and otherwise with only those values spliced in, deliver_answer). */
static bi_header_edit_t map_back(const relay_txn_t *t, const bi_msg_t *ans)
{
    const bi_header_t *rq = bi_msg_header(t->msg);
    const bi_header_t *h = bi_msg_header(ans);
    bi_header_edit_t e = {0};
    e.set_txid = h->transaction_id != rq->transaction_id;
    e.txid = rq->transaction_id;
    bool placeholder = rq->receiver_id.kind == BI_ID_NETID && rq->receiver_id.value == 0;
    e.set_sender = !placeholder && !id_eq(h->sender_id, rq->receiver_id);
    e.sender = rq->receiver_id;
    e.set_receiver = !id_eq(h->receiver_id, rq->sender_id);
    e.receiver = rq->sender_id;
    return e;
}

/* Delivers the receiver's answer to the sender (takes ownership of ans). raw/raw_len: the
 * answer's received bytes, forwarded unchanged when already right for the sender (a policy
 * rewrite marks the message mutated, so it is then re-encoded); NULL for an answer the hub
 * built. Does not complete the transaction (callers do). */
static void relay_txn_answer(relay_txn_t *t, bi_msg_t *ans, const char *raw, size_t raw_len)
{
    check_answer_downlink(t, ans);
    bi_header_edit_t back = map_back(t, ans);
    const bi_fields_t *f = bi_msg_fields(ans);
    bi_result_code_t rc = (f->present & BI_F_RESULT) ? f->result_code : BI_RC_SUCCESS;
    count_outcome(t->w, txn_fwd(t), t->route.home.net_id, t->msg, t->route.cls, outcome_of(rc),
                  rc == BI_RC_SUCCESS ? NULL : bi_result_code_name(rc, BI_VERSION_1_0, true),
                  t->t_recv_ns, t->sender->id);
    log_relayed(t, outcome_of(rc), bi_result_code_name(rc, BI_VERSION_1_0, true));
    deliver_answer(t->w, &t->req, t->sender_ep, t->sender_async, ans, raw, raw_len,
                   bi_msg_header(t->msg)->version, &back);
    bi_msg_free(ans);
}

/* Answers the sender with a failure (code, description) and counts outcome. Does not complete
 * or free the transaction (callers do: txn_finish, txn_unref). */
static void relay_txn_fail(relay_txn_t *t, bi_result_code_t code, const char *description,
                           rp_outcome_t outcome)
{
    char fwd[7], home[7];
    RH_LOG(outcome == RP_OUT_UNAUTHORIZED ? RH_LOG_WARN : RH_LOG_INFO, "relay",
           "refused result=%s reason=\"%s\" peer=%s fwd=%s home=%s txid=%u",
           bi_result_code_name(code, BI_VERSION_1_0, true), description, t->sender->id,
           netid_text(t->route.fwd.net_id, fwd), netid_text(t->route.home.net_id, home),
           bi_msg_transaction_id(t->msg));
    log_relayed(t, outcome, bi_result_code_name(code, BI_VERSION_1_0, true));
    relay_reply_failure(t->w, t->req, t->msg, t->sender_ep, t->sender_async, code, description,
                        outcome, t->route.cls, txn_fwd(t), t->route.home.net_id);
    t->req = NULL;
}

/* ---------------------------------------------------------------- forwarding */

static bi_result_code_t failure_code(const relay_txn_t *t)
{
    return t->route.kind == ROUTE_DOWNLINK ? BI_RC_XMIT_FAILED : BI_RC_OTHER;
}

static void complete_fail(relay_txn_t *t, rp_outcome_t outcome, const char *what)
{
    if (!txn_finish(t))
        return;
    char desc[160];
    snprintf(desc, sizeof desc, "%s (%s)", what, t->route.recv_ep ? t->route.recv_ep->id : "-");
    relay_txn_fail(t, failure_code(t), desc, outcome);
}

static void complete_answer(relay_txn_t *t, bi_msg_t *ans, const char *raw, size_t raw_len)
{
    if (!txn_finish(t)) {
        bi_msg_free(ans);
        return;
    }
    metrics_observe_answer(t->w->metrics, (rh_mono_ns() - t->t_fwd_ns) / 1000u);
    relay_txn_answer(t, ans, raw, raw_len);
}

static void answer_timeout_cb(evutil_socket_t fd, short ev, void *arg)
{
    relay_txn_t *t = arg;
    (void)fd;
    (void)ev;
    arena_enter(t->arena); /* the failure answer is built in the transaction's arena */
    if (t->pending && !pending_take(t->w->pending, &t->pkey)) {
        /* an answer claimed the entry on another worker and is on its way with the entry's
         * reference: only the timer's reference goes */
        arena_enter(NULL);
        txn_unref(t);
        return;
    }
    if (t->pending) {
        t->pending = false;
        txn_unref(t); /* the entry's reference; the timer's keeps t alive */
    }
    complete_fail(t, RP_OUT_TIMEOUT,
                  t->rx_limited ? "receiver did not answer before the device's receive window"
                                : "receiver did not answer in time");
    arena_enter(NULL);
    txn_unref(t);
}

/* Checks that a receiver's answer in an HTTP response answers this transaction. The response
 * correlates it already, so only the answer type must match; a TransactionID other than the
 * hub-owned one it was sent with is a peer bug we count ("answer_txid_mismatch") but do not turn
 * into a lost answer. */
static bool answer_matches(const relay_txn_t *t, const bi_msg_t *ans)
{
    const bi_header_t *h = bi_msg_header(ans);
    if (h->type != t->ans_type)
        return false;
    if (h->transaction_id != t->pkey.txid)
        metrics_event(t->w->metrics, "answer_txid_mismatch");
    return true;
}

/* Fails the transaction because the receiver's answer is malformed (its header could be read,
 * so it is this transaction's answer): at once, with what was wrong. Logged at info: a receiver
 * can produce at most one such line per request the hub sent it. */
static void fail_malformed_answer(relay_txn_t *t, const char *why)
{
    char what[360];
    snprintf(what, sizeof what, "receiver's answer is malformed: %s", why);
    RH_LOG(RH_LOG_INFO, "relay", "malformed answer receiver=%s hub_txid=%u reason=\"%s\"",
           t->route.recv_ep ? t->route.recv_ep->id : "-", t->pkey.txid, why);
    metrics_event(t->w->metrics, "malformed_answer");
    complete_fail(t, RP_OUT_RECEIVER_ERROR, what);
}

/* A 2xx response whose body is not a TS002 answer (empty, "{}", Helium's "Downlink Accepted")
 * acknowledges the request: the answer, if any, follows as a POST to the hub, within the
 * deadline armed at forward. A sync forwarder that accepts a downlink this way sends no
 * XmitDataAns at all (Helium on sync routes): the downlink was queued, so the home network gets
 * Success, not XmitFailed. */
static void acknowledged(relay_txn_t *t, int http_status)
{
    if (t->route.kind != ROUTE_DOWNLINK || t->route.recv_ep->async_answers ||
        t->ans_type != BI_MT_XMIT_DATA_ANS)
        return;
    char desc[96];
    snprintf(desc, sizeof desc, "forwarder accepted the downlink (HTTP %d) without an XmitDataAns",
             http_status);
    bi_msg_t *ans = NULL;
    if (bi_answer_new(t->msg, BI_RC_SUCCESS, desc, &ans) == RH_OK)
        complete_answer(t, ans, NULL, 0);
}

static void forward_done(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    relay_txn_t *t = arg;
    if (t->done) {
        txn_unref(t);
        return;
    }
    arena_enter(t->arena); /* the answer's JSON tree lives as long as the transaction */
    if (status == RH_ETIMEDOUT) {
        complete_fail(t, RP_OUT_TIMEOUT, "receiver timed out");
    } else if (status != RH_OK) {
        complete_fail(t, RP_OUT_UNREACHABLE, "receiver unreachable");
    } else if (http_status < 200 || http_status > 299) {
        char what[64];
        snprintf(what, sizeof what, "receiver answered HTTP %d", http_status);
        complete_fail(t, RP_OUT_UNREACHABLE, what);
    } else if (t->ans_type == BI_MT_UNKNOWN) {
        /* notification: delivered, nothing to wait for */
        if (txn_finish(t)) {
            count_outcome(t->w, txn_fwd(t), t->route.home.net_id, t->msg, t->route.cls,
                          RP_OUT_FORWARDED, NULL, t->t_recv_ns, t->sender->id);
            log_relayed(t, RP_OUT_FORWARDED, "-");
        }
    } else {
        bi_msg_t *ans = NULL;
        bi_error_t err;
        memset(&err.hdr, 0, sizeof err.hdr);
        if (len > 0 && bi_msg_decode((const char *)body, len, &ans, &err) == RH_OK) {
            if (answer_matches(t, ans)) {
                complete_answer(t, ans, (const char *)body, len);
            } else {
                char what[128];
                snprintf(what, sizeof what, "MessageType %s, expected %s",
                         bi_msg_type_name(bi_msg_type(ans)) ? bi_msg_type_name(bi_msg_type(ans))
                                                            : "?",
                         bi_msg_type_name(t->ans_type));
                bi_msg_free(ans);
                fail_malformed_answer(t, what);
            }
        } else if (len > 0 && (err.hdr.present & BI_H_MESSAGE_TYPE)) {
            fail_malformed_answer(t, err.description);
        } else {
            acknowledged(t, http_status);
        }
    }
    arena_enter(NULL);
    txn_unref(t);
}

/* The ReceiverID the forwarded request names (issue #11 item 10): when the hub decided the
 * receiver (uplinks by DevAddr block or join route, HomeNSReq by join route) and the sender's
 * ReceiverID is not an identity of that receiver (a placeholder 000000, another network), the
 * receiver's own NetID — or, for a Join Server endpoint, its JoinEUI. */
static bi_id_t sent_receiver_of(const relay_txn_t *t)
{
    bi_id_t id = bi_msg_header(t->msg)->receiver_id;
    const peer_endpoint_t *ep = t->route.recv_ep;
    if (t->route.kind != ROUTE_UPLINK && t->route.kind != ROUTE_HOME_NS)
        return id;
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
    uint32_t wait = t->route.recv_ep->timeout_ms;
    t->rx_limited = false;
    if (t->route.kind != ROUTE_UPLINK)
        return wait;
    const bi_fields_t *f = bi_msg_fields(t->msg);
    if (!(f->present & BI_F_UL_META) || !(f->ul.present & BI_UL_RECV_TIME) ||
        !(f->present & BI_F_PHY_PAYLOAD) || f->phy_payload_len < 1)
        return wait;
    unsigned mtype = f->phy_payload[0] >> 5;
    int64_t rx2;
    if (mtype == 0)
        rx2 = RX2_JOIN_MS;
    else if (mtype == 4)
        rx2 = RX2_DATA_MS;
    else
        return wait;
    int64_t recv_ms = f->ul.recv_time.sec * 1000 + f->ul.recv_time.nsec / 1000000;
    int64_t now = rh_real_ms();
    if (recv_ms > now + RECV_TIME_SANE_MS || recv_ms < now - RECV_TIME_SANE_MS)
        return wait;
    int64_t left = recv_ms + rx2 - RX_MARGIN_MS - now;
    if (left >= (int64_t)wait)
        return wait;
    t->rx_limited = true;
    return left > 0 ? (uint32_t)left : 0;
}

/* Sends the (possibly stripped) request to t->route.recv_ep under a hub-owned TransactionID
 * (hub_txid.h) and the ReceiverID of sent_receiver_of, and arms the answer deadline. The
 * request's own header is restored after encoding: answers to the sender are built from it. */
static void forward(relay_txn_t *t)
{
    worker_t *w = t->w;
    const peer_endpoint_t *ep = t->route.recv_ep;
    bi_dialect_t d = relay_dialect(ep);
    const bi_header_t *h = bi_msg_header(t->msg);
    uint32_t orig_txid = h->transaction_id;
    bi_id_t orig_receiver = h->receiver_id;
    t->sent_receiver = sent_receiver_of(t);
    t->wait_ms = answer_wait_ms(t);
    if (t->wait_ms == 0) {
        complete_fail(t, RP_OUT_TIMEOUT,
                      "too late: the answer can no longer reach the device's receive window");
        txn_unref(t);
        return;
    }
    if (t->ans_type != BI_MT_UNKNOWN) {
        t->pkey.peer = route_answerer_id(t->reg, ep);
        t->pkey.ans_type = (uint32_t)t->ans_type;
        int rc = pending_put_fresh(w->pending, &t->pkey, t);
        if (rc != RH_OK) {
            complete_fail(t, RP_OUT_UNREACHABLE, "hub overloaded: too many pending transactions");
            txn_unref(t);
            return;
        }
        t->pending = true;
        txn_ref(t); /* the pending entry's reference, inherited by whoever takes the entry */
        t->timer = evtimer_new(w->base, answer_timeout_cb, t);
        if (t->timer) {
            /* The deadline of the answer, sync or async (a sync receiver may acknowledge and
             * answer later). A sync receiver's own HTTP deadline ends first unless the receive
             * window cut it. Ownership rule of the answer timer: it holds one reference exactly
             * while it is pending, released by whoever makes it non-pending: its own callback
             * (answer_timeout_cb) or txn_finish, which cancels it. No other code deletes it. */
            uint32_t ms = t->wait_ms + (ep->async_answers || t->rx_limited ? 0 : 50);
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            txn_ref(t);
            evtimer_add(t->timer, &tv);
        }
    }
    bi_header_edit_t e = {0};
    e.set_txid = t->ans_type != BI_MT_UNKNOWN;
    e.txid = t->pkey.txid;
    e.set_receiver = !id_eq(t->sent_receiver, orig_receiver);
    e.receiver = t->sent_receiver;
    const char *body = NULL;
    size_t len = 0;
    char *enc = NULL;
    int rc = RH_EAGAIN;
    if (!edits_any(&e) && bi_msg_is_canonical_for(t->msg, &d)) {
        body = t->raw; /* forwarded byte for byte */
        len = t->raw_len;
        rc = RH_OK;
    } else {
        /* canonical received bytes: only the edited header values are spliced in */
        rc = bi_msg_splice_header(t->msg, t->raw, t->raw_len, &d, &e, &enc, &len);
        if (rc == RH_EAGAIN) {
            rc = bi_msg_apply_header_edit(t->msg, &e);
            if (rc == RH_OK)
                rc = bi_msg_encode(t->msg, &d, &enc, &len);
            /* the sender's own header again, for every answer built from the request */
            bi_header_edit_t back = {e.set_txid, orig_txid, false, {BI_ID_NONE, 0},
                                     e.set_receiver, orig_receiver};
            bi_msg_apply_header_edit(t->msg, &back);
        }
        body = enc;
    }
    if (rc != RH_OK)
        body = NULL;
    if (!body) {
        complete_fail(t, RP_OUT_UNREACHABLE, "hub out of memory");
        txn_unref(t);
        return;
    }
    t->t_fwd_ns = rh_mono_ns();
    metrics_observe_forward(w->metrics, (t->t_fwd_ns - t->t_recv_ns) / 1000u);
    rc = peer_client_post(w->client, ep, NULL, body, len, NULL, 0, forward_done, t);
    bi_buf_free(enc);
    if (rc != RH_OK) {
        complete_fail(t, RP_OUT_UNREACHABLE,
                      rc == RH_EAGAIN
                          ? "receiver unavailable (backing off or at its in-flight limit)"
                          : "receiver unreachable");
        txn_unref(t);
        return;
    }
    /* the post's callback owns the initial reference from here */
}

/* ---------------------------------------------------------------- async answers */

typedef struct handoff {
    relay_txn_t *t;
    bi_msg_t *ans;     /* NULL when the answer failed (fail says why) */
    rh_arena_t *arena; /* the answer's cJSON memory (the answering request's arena) */
    char fail[400];    /* non-empty: fail the transaction with this, the answer is unusable */
    size_t raw_len;
    char raw[]; /* the answer's received bytes */
} handoff_t;

static void handoff_cb(worker_t *w, void *arg)
{
    handoff_t *h = arg;
    (void)w;
    relay_txn_t *t = h->t;
    t->pending = false; /* the entry (and its reference) was taken by the answering worker */
    arena_enter(h->arena);
    if (h->fail[0]) {
        bi_msg_free(h->ans);
        fail_malformed_answer(t, h->fail);
    } else {
        complete_answer(t, h->ans, h->raw, h->raw_len); /* frees the answer */
    }
    arena_enter(NULL);
    arena_free(h->arena); /* the timer (and its reference) went in complete_answer's txn_finish */
    free(h);
    txn_unref(t); /* the entry's reference */
}

static const char *tenant_of(const peer_member_t *m);

/* The SenderID check for answers (issue #11 item 1), made after the answer matched a
 * transaction of the member that sent it: the SenderID may be what the hub sent the request to
 * (ChirpStack answers with SenderID = the request's ReceiverID, e.g. a secondary NetID), a NetID
 * the member may speak for, or the JoinEUI of a Join Server endpoint the member owns.
 * t->sent_receiver is written before the pending entry is published, so reading it here, on the
 * answering worker, is safe. */
static bool answer_sender_ok(const relay_txn_t *t, const bi_header_t *h,
                             const peer_member_t *from, peer_registry_t *reg, const char *remote)
{
    if (id_eq(h->sender_id, t->sent_receiver))
        return true;
    if (h->sender_id.kind == BI_ID_NETID)
        return peer_member_check_sender(from, (uint32_t)h->sender_id.value, tenant_of(from),
                                        remote) == RH_OK;
    const peer_endpoint_t *ep = NULL;
    peer_registry_endpoint_by_join_eui(reg, h->sender_id.value, &ep);
    return ep && peer_member_may_send_as(from, ep->net_id, NULL);
}

/* An answer posted to the hub by the authenticated member `from`: ans decoded (why NULL), or
 * only its header h could be read (ans NULL, why = what is wrong: the transaction fails at once
 * with that, item 11). Matched first, by the member expected to answer and the hub-owned
 * TransactionID (and answer type): pending entries are keyed by member, not NetID, since a home
 * network may answer with another of its NetIDs than the one the request was routed by. In a
 * cluster, an answer whose hub-owned TransactionID names another node is handed to that node
 * (cluster_txn.h), which matches it with this same function. An answer matching nothing is
 * counted and dropped. remote: the member's address (log lines). Returns true when a
 * transaction of this node took the answer. */
static bool handle_answer(worker_t *w, bi_msg_t *ans, const bi_header_t *h, const char *why,
                          const char *raw, size_t raw_len, const peer_member_t *from,
                          peer_registry_t *reg, const char *remote, rh_arena_t **arena)
{
    pending_key_t key = {
        .peer = peer_hash_str(from->id), .txid = h->transaction_id, .ans_type = (uint32_t)h->type};
    relay_txn_t *t = pending_take(w->pending, &key);
    if (!t && cluster_txn_handoff(w->xnode, h->transaction_id, from->id, remote, raw,
                                  raw_len) == RH_OK) {
        /* cluster: another node holds the transaction (its ID says which): handed to it */
        metrics_event(w->metrics, "answer_handed_to_node");
        bi_msg_free(ans);
        return false;
    }
    if (!t) {
        metrics_event(w->metrics, "unmatched_answer");
        RH_LOG(RH_LOG_DEBUG, "relay",
               "answer matches no pending transaction, dropped peer=%s type=%s txid=%u", from->id,
               bi_msg_type_name(h->type), h->transaction_id);
        bi_msg_free(ans);
        return false;
    }
    handoff_t *ho = malloc(sizeof *ho + raw_len + 1);
    if (!ho) {
        bi_msg_free(ans);
        return true; /* the owner's timer will fail the transaction */
    }
    ho->fail[0] = '\0';
    if (why) {
        snprintf(ho->fail, sizeof ho->fail, "%s", why);
    } else if (!answer_sender_ok(t, h, from, reg, remote)) {
        char sid[20], sent[20];
        snprintf(sid, sizeof sid, h->sender_id.kind == BI_ID_NETID ? "%06llx" : "%016llx",
                 (unsigned long long)h->sender_id.value);
        snprintf(sent, sizeof sent, t->sent_receiver.kind == BI_ID_NETID ? "%06llx" : "%016llx",
                 (unsigned long long)t->sent_receiver.value);
        snprintf(ho->fail, sizeof ho->fail,
                 "SenderID %s is neither a NetID of member %s nor the ReceiverID %s the request "
                 "was sent to", sid, from->id, sent);
        metrics_event(w->metrics, "sender_refused");
    }
    ho->t = t;
    ho->ans = ans;
    ho->arena = *arena; /* the hand-off owns the answer's arena from here */
    *arena = NULL;
    ho->raw_len = raw_len;
    memcpy(ho->raw, raw, raw_len);
    ho->raw[raw_len] = '\0';
    if (t->w == w) {
        handoff_cb(w, ho);
    } else if (worker_post(t->w, handoff_cb, ho) != RH_OK) {
        bi_msg_free(ans);
        *arena = ho->arena; /* the caller frees it */
        free(ho);
    }
    return true;
}

/* ---------------------------------------------------------------- intake */

/* Per-connection authentication cache: the TLS identity is extracted once per connection; the
 * member a Bearer credential maps to is remembered for the registry generation it was looked up
 * in (a rebuilt registry invalidates it), so keep-alive requests skip the SHA-256. */
typedef struct conn_auth {
    bool tls_done;
    peer_tls_identity_t id;
    uint64_t bearer_gen; /* registry generation of bearer_member, 0 = none */
    const peer_member_t *bearer_member;
    char bearer[160]; /* the Authorization value it was computed for */
} conn_auth_t;

/* Authenticates by TLS client certificate or Bearer key. Returns 0 and *m (may stay NULL when
 * no credentials were presented), or an HTTP status to refuse with. */
static void conn_auth_free(void *p)
{
    OPENSSL_cleanse(p, sizeof(conn_auth_t)); /* the cached credential is a secret */
    free(p);
}

static int authenticate(worker_t *w, hs_req_t *req, peer_registry_t *reg, const peer_member_t **m)
{
    *m = NULL;
    conn_auth_t *ca = hs_req_conn_data(req);
    if (!ca) {
        ca = calloc(1, sizeof *ca);
        if (!ca)
            return 500;
        hs_req_set_conn_data(req, ca, conn_auth_free);
    }
    SSL *ssl = hs_req_ssl(req);
    if (ssl) {
        if (!ca->tls_done) {
            if (peer_tls_identity_from_ssl(ssl, &ca->id) != RH_OK)
                ca->id.present = false;
            ca->tls_done = true;
        }
        if (ca->id.present && SSL_get_verify_result(ssl) == X509_V_OK) {
            peer_registry_auth_tls(reg, &ca->id, m);
            if (*m)
                return 0;
        }
    }
    const char *authz = hs_req_header(req, "authorization");
    if (authz) {
        uint64_t gen = w->view.gen;
        if (ca->bearer_gen == gen && gen != 0 && strcmp(ca->bearer, authz) == 0) {
            *m = ca->bearer_member;
            return 0;
        }
        if (peer_registry_auth_bearer(reg, authz, m) != RH_OK || !*m)
            return 401;
        if (strlen(authz) < sizeof ca->bearer) {
            snprintf(ca->bearer, sizeof ca->bearer, "%s", authz);
            ca->bearer_member = *m;
            ca->bearer_gen = gen;
        }
    }
    return 0;
}

static const char *tenant_of(const peer_member_t *m)
{
    return m->n_tenant_ids == 1 ? m->tenant_ids[0] : NULL;
}

static void handle_request(worker_t *w, hs_req_t *req, rh_arena_t **arena);

/* The development loopback identity (relay.dev_loopback_unauthenticated): the member owning the
 * header's SenderID NetID, for an unauthenticated request from 127.0.0.1; else NULL. */
static const peer_member_t *dev_member(hs_req_t *req, peer_registry_t *reg, const bi_header_t *h)
{
    const peer_member_t *m = NULL;
    if (!(h->present & BI_H_SENDER_ID) || h->sender_id.kind != BI_ID_NETID ||
        !hs_req_peer_is_loopback(req))
        return NULL;
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&lo,
                                    (uint32_t)h->sender_id.value, &m);
    return m;
}

/* Requests a network server sends in its Join Server client role. */
static bool is_js_request(bi_msg_type_t t)
{
    return t == BI_MT_HOME_NS_REQ || t == BI_MT_JOIN_REQ || t == BI_MT_REJOIN_REQ ||
           t == BI_MT_APP_SKEY_REQ;
}

/* The protocol-neutral view of a decoded TS002 request for route_decide. */
static void view_of(const relay_txn_t *t, const bi_header_t *h, route_msg_t *v)
{
    const bi_fields_t *f = bi_msg_fields(t->msg);
    switch (h->type) {
    case BI_MT_PR_START_REQ:
        v->kind = ROUTE_UPLINK;
        break;
    case BI_MT_XMIT_DATA_REQ:
        v->kind = (f->present & BI_F_UL_META) ? ROUTE_UPLINK : ROUTE_DOWNLINK;
        break;
    case BI_MT_HOME_NS_REQ:
        v->kind = ROUTE_HOME_NS;
        break;
    default:
        v->kind = ROUTE_OTHER;
        break;
    }
    v->sender = t->sender;
    v->sender_party = t->route.fwd;
    v->receiver_is_eui = h->receiver_id.kind != BI_ID_NETID;
    v->receiver = h->receiver_id.value;
    bool phy = f->present & BI_F_PHY_PAYLOAD;
    v->phy = phy ? f->phy_payload : NULL;
    v->phy_len = phy ? f->phy_payload_len : 0;
    v->dev_eui = f->dev_eui;
    v->malformed = bi_result_code_malformed(h->version);
}

/* HomeNSReq answered by the hub from its join routes: HomeNSAns with HNetID. */
static void answer_home_ns(relay_txn_t *t)
{
    bi_msg_t *ans = NULL;
    if (bi_answer_new(t->msg, BI_RC_SUCCESS, NULL, &ans) != RH_OK) {
        relay_txn_fail(t, BI_RC_OTHER, "hub out of memory", RP_OUT_UNREACHABLE);
        return;
    }
    if (bi_msg_set_hnet_id(ans, t->route.hnet_id) != RH_OK) {
        bi_msg_free(ans);
        relay_txn_fail(t, BI_RC_OTHER, "hub could not build HomeNSAns", RP_OUT_UNREACHABLE);
        return;
    }
    relay_txn_answer(t, ans, NULL, 0);
}

void relay_handle_request(hs_req_t *req, void *arg)
{
    worker_t *w = arg;
    rh_arena_t *arena = arena_new(); /* NULL: cJSON falls back to malloc */
    arena_enter(arena);
    handle_request(w, req, &arena); /* takes the arena when a transaction or hand-off keeps it */
    arena_enter(NULL);
    arena_free(arena);
}

static void handle_request(worker_t *w, hs_req_t *req, rh_arena_t **arena)
{
    const char *path = hs_req_path(req);
    if (!strcmp(hs_req_method(req), "GET") && !strcmp(path, "/healthz")) {
        hs_reply(req, atomic_load(w->draining) ? 503 : 200, "text/plain", "ok\n", 3);
        return;
    }
    /* TS002 POSTs are accepted on any path (issue #11 item 5): ChirpStack posts to SERVER/sns or
     * /fns (//sns with a trailing slash in its URL), Helium to its route's configured path, and
     * ChirpStack's own server accepts any path. The body says what the message is. */
    if (strcmp(hs_req_method(req), "POST") != 0) {
        hs_reply(req, 405, "text/plain", "TS002 messages are POSTed\n", 26);
        return;
    }
    peer_registry_t *reg = worker_registry(w);
    if (!reg) {
        hs_reply(req, 503, "text/plain", "no member registry\n", 19);
        return;
    }
    const peer_member_t *member = NULL;
    int st = authenticate(w, req, reg, &member);
    if (st) {
        metrics_event(w->metrics, "unauthenticated");
        hs_reply(req, st, "text/plain", "authentication required\n", 24);
        return;
    }
    bool dev = w->dev_loopback && !hs_req_ssl(req);
    if (!member && !dev) {
        metrics_event(w->metrics, "unauthenticated");
        hs_reply_ex(req, 401, "text/plain", "WWW-Authenticate: Bearer\r\n",
                    "authentication required\n", 24);
        return;
    }

    /* decode */
    size_t blen;
    const char *body = hs_req_body(req, &blen);
    bi_msg_t *msg = NULL;
    bi_error_t err;
    if (bi_msg_decode(body, blen, &msg, &err) != RH_OK) {
        metrics_event(w->metrics, "malformed");
        const bi_header_t *eh = &err.hdr;
        if (!member && dev)
            member = dev_member(req, reg, eh);
        if (member && (eh->present & BI_H_MESSAGE_TYPE) && (eh->present & BI_H_TRANSACTION_ID) &&
            bi_msg_type_is_answer(eh->type)) {
            /* a malformed answer whose header can be read fails its transaction at once; the
             * answering peer gets the reason (an answer is not answered in TS002). Nothing may
             * allocate after handle_answer: the hand-off owns this request's arena. */
            if (peer_member_rate_allow(member, rh_mono_ns()))
                handle_answer(w, NULL, eh, err.description, body, blen, member, reg,
                              hs_req_peer_addr(req), arena);
            char text[300];
            int n = snprintf(text, sizeof text, "%s\n", err.description);
            hs_reply(req, 400, "text/plain", text, (size_t)n);
            return;
        }
        bi_msg_t *ans = NULL;
        if (bi_answer_from_error(&err, &ans) != RH_OK) {
            char text[300];
            int n = snprintf(text, sizeof text, "%s\n", err.description);
            hs_reply(req, 400, "text/plain", text, (size_t)n);
            return;
        }
        char *out;
        size_t olen;
        bi_dialect_t d = relay_dialect(NULL);
        d.version = err.hdr.version == BI_VERSION_UNKNOWN ? BI_VERSION_1_0 : err.hdr.version;
        if (bi_msg_encode(ans, &d, &out, &olen) == RH_OK) {
            hs_reply(req, 200, "application/json", out, olen);
            bi_buf_free(out);
        } else {
            hs_reply(req, 500, "text/plain", "out of memory\n", 14);
        }
        bi_msg_free(ans);
        return;
    }
    const bi_header_t *h = bi_msg_header(msg);

    /* who is speaking: member's NetIDs must include SenderID */
    uint64_t sender_id = h->sender_id.value;
    if (!member && dev)
        member = dev_member(req, reg, h);
    if (!member) {
        metrics_event(w->metrics, "unauthenticated");
        bi_msg_free(msg);
        hs_reply_ex(req, 401, "text/plain", "WWW-Authenticate: Bearer\r\n",
                    "authentication required\n", 24);
        return;
    }

    /* answers are matched to their transaction first (by the answering member and the hub-owned
     * TransactionID), then their SenderID is checked against what the request was sent to; the
     * HTTP response only acknowledges */
    if (bi_msg_type_is_answer(h->type)) {
        if (!peer_member_rate_allow(member, rh_mono_ns())) {
            metrics_event(w->metrics, "rate_limited");
            bi_msg_free(msg);
            hs_reply(req, 429, "text/plain", "rate limit exceeded: retry later\n", 33);
            return;
        }
        handle_answer(w, msg, h, NULL, body, blen, member, reg, hs_req_peer_addr(req), arena);
        hs_reply(req, 200, NULL, NULL, 0);
        return;
    }
    const char *tenant = tenant_of(member);
    const peer_endpoint_t *sender_ep = NULL;
    bool sender_ok;
    if (h->sender_id.kind == BI_ID_NETID) {
        sender_ok = peer_member_check_sender(member, (uint32_t)sender_id, tenant,
                                             hs_req_peer_addr(req)) == RH_OK;
        if (sender_ok)
            peer_registry_endpoint_by_netid(reg, (uint32_t)sender_id, tenant, &sender_ep);
    } else {
        /* a Join Server speaks with its JoinEUI: its endpoint must belong to the member */
        peer_registry_endpoint_by_join_eui(reg, sender_id, &sender_ep);
        sender_ok = sender_ep && peer_member_may_send_as(member, sender_ep->net_id, NULL);
        if (!sender_ok)
            RH_LOG(RH_LOG_WARN, "security", "sender refused peer=%s joineui=%016llx remote=%s",
                   member->id, (unsigned long long)sender_id, hs_req_peer_addr(req));
    }
    /* the mode the sender expects its answer in, per role (item 4 of #11) */
    bool sender_async =
        sender_ep && (is_js_request(h->type) ? sender_ep->answer_async_js : sender_ep->answer_async);
    if (!sender_ok) {
        metrics_event(w->metrics, "sender_refused");
        char desc[128];
        snprintf(desc, sizeof desc, "SenderID is not a NetID of the authenticated member %s",
                 member->id);
        /* answer in the HTTP response: we cannot trust the claimed sender's endpoint. Counted
         * under who really sent it — the authenticated member's NetID — not the claimed
         * SenderID: a member could otherwise create a statistics row (and a metrics cell) per
         * made-up SenderID without bound. The claim itself is in the security log line. */
        relay_fwd_t who = {RP_STATS_ID_NETID, member->net_ids[0]};
        relay_reply_failure(w, req, msg, NULL, false, BI_RC_UNKNOWN_SENDER, desc,
                            RP_OUT_UNAUTHORIZED, RP_CLASS_OTHER, who, 0);
        bi_msg_free(msg);
        return;
    }
    if (!peer_member_rate_allow(member, rh_mono_ns())) {
        metrics_event(w->metrics, "rate_limited");
        relay_reply_failure(w, req, msg, NULL, false, BI_RC_OTHER,
                            "rate limit exceeded: retry later", RP_OUT_RATE_LIMITED, RP_CLASS_OTHER,
                            relay_fwd_of_sender(msg), 0);
        bi_msg_free(msg);
        return;
    }

    relay_txn_t *t = txn_new(w, req, reg);
    if (!t) {
        bi_msg_free(msg);
        hs_reply(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    t->msg = msg;
    t->arena = *arena; /* the transaction owns the request's arena from here */
    *arena = NULL;
    t->raw = malloc(blen + 1);
    if (!t->raw) {
        hs_reply(req, 503, "text/plain", "out of memory\n", 14);
        t->req = NULL;
        txn_unref(t);
        return;
    }
    memcpy(t->raw, body, blen);
    t->raw[blen] = '\0';
    t->raw_len = blen;
    t->sender = member;
    t->sender_ep = sender_ep;
    t->sender_async = sender_async;
    t->sender_is_eui = h->sender_id.kind == BI_ID_EUI64;
    t->ans_type = bi_msg_type_is_request(h->type) ? bi_msg_type_answer_for(h->type) : BI_MT_UNKNOWN;
    rp_party_set(&t->route.fwd, h->sender_id.kind == BI_ID_NETID ? (uint32_t)sender_id : 0, tenant,
                 NULL);

    /* async senders and notifications are acknowledged now; answers follow as POSTs */
    if (sender_async || t->ans_type == BI_MT_UNKNOWN) {
        hs_reply(t->req, 200, NULL, NULL, 0);
        t->req = NULL;
        if (t->ans_type == BI_MT_UNKNOWN)
            t->sender_async = false; /* nothing will be sent back */
    }

    route_msg_t view;
    view_of(t, h, &view);
    gateways_seen(t->route.fwd.net_id, bi_msg_fields(t->msg)); /* console map (gateways.h) */
    route_decide(&view, w->reader, t->reg, &t->route);
    switch (t->route.action) {
    case ROUTE_FORWARD:
        if (t->route.strip)
            bi_msg_strip_gwinfo(t->msg, t->route.strip);
        forward(t);
        return;
    case ROUTE_ANSWER:
        answer_home_ns(t);
        break;
    case ROUTE_REFUSE:
        relay_txn_fail(t, t->route.code, t->route.description, t->route.outcome);
        break;
    }
    txn_finish(t);
    txn_unref(t);
}

bool relay_answer_from_node(worker_t *w, const char *member_id, const char *remote,
                            const char *body, size_t len)
{
    peer_registry_t *reg = worker_registry(w);
    const peer_member_t *member = NULL;
    if (!reg || peer_registry_member_by_id(reg, member_id, &member) != RH_OK || !member)
        return false;
    rh_arena_t *arena = arena_new(); /* taken by the transaction's hand-off when it matches */
    arena_enter(arena);
    bool matched = false;
    bi_msg_t *msg = NULL;
    bi_error_t err;
    if (bi_msg_decode(body, len, &msg, &err) == RH_OK) {
        const bi_header_t *h = bi_msg_header(msg);
        if (bi_msg_type_is_answer(h->type))
            matched = handle_answer(w, msg, h, NULL, body, len, member, reg, remote, &arena);
        else
            bi_msg_free(msg);
    } else if ((err.hdr.present & BI_H_MESSAGE_TYPE) && (err.hdr.present & BI_H_TRANSACTION_ID) &&
               bi_msg_type_is_answer(err.hdr.type)) {
        matched = handle_answer(w, NULL, &err.hdr, err.description, body, len, member, reg,
                                remote, &arena);
    }
    arena_enter(NULL);
    arena_free(arena);
    return matched;
}

void relay_worker_fini(worker_t *w)
{
    txn_box_t *b = w->relay_txns;
    while (b) {
        txn_box_t *next = b->next;
        relay_txn_t *t = &b->t;
        if (!t->done) {
            txn_ref(t);
            arena_enter(t->arena);
            complete_fail(t, RP_OUT_UNREACHABLE, "hub shutting down");
            arena_enter(NULL);
            txn_unref(t);
        }
        b = next;
    }
}
