/*
 * relay_ts002.c — the relay's TS002 front end (relay_ts002.h): request intake (authenticate,
 * decode, SenderID check, rate limit), the wire side of forwarding (dialect encoding, the
 * byte-for-byte fast path, the outbound POST and its response) and sync/async answer bridging.
 * It translates and delivers; the relay core (relay.c) decides, counts and completes.
 *
 * The decode step of a request or an answer is one place each: handle_request (the body of a
 * request or of an answer posted to the hub) and forward_done (an answer in the HTTP response),
 * both with bi_msg_decode_fast (bi_fast.h: one pass; the cJSON tree only when an edit or a
 * re-encoding needs it; refusals keep bi_msg_decode's exact ResultCode and Description).
 *
 * Per transaction this front end keeps a ts002_ctx_t in the core's transaction (relay_txn_ctx):
 * the held HTTP request of a sync sender, the decoded request and its received bytes, the
 * sender's endpoint (dialect, async answers) and the cJSON arena of them all.
 */
#include "relay_ts002.h"

#include "arena.h"
#include "bi_fast.h"
#include "bi_msg.h"
#include "cluster_txn.h"
#include "gateways.h"
#include "pb_bridge_ts002.h"
#include "peer_tls.h"
#include "relay.h"
#include "rh_log.h"
#include "rh_time.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What this front end keeps per transaction (the core's relay_txn_ctx). */
typedef struct ts002_ctx {
    relay_ts002_out_t out;            /* first: the receiver side's part (relay_ts002_send) */
    worker_t *w;                      /* the owning worker */
    hs_req_t *req;                    /* held HTTP request of a sync sender, else NULL */
    const peer_endpoint_t *sender_ep; /* sender's endpoint (async answers, dialect), may be NULL */
    bool sender_async;                /* answer by POSTing to sender_ep */
    bi_msg_t *msg;                    /* the request as received (possibly stripped) */
    size_t raw_len;
    char raw[]; /* received body (forwarded as-is when canonical), NUL-terminated */
} ts002_ctx_t;

/* A receiver's answer as relay_answer_t.fe_msg: the decoded message and its received bytes. */
typedef struct ts002_answer {
    bi_msg_t *ans;
    const char *raw;
    size_t raw_len;
} ts002_answer_t;

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

static bool id_eq(bi_id_t a, bi_id_t b)
{
    return a.kind == b.kind && a.value == b.value;
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
 * in and hex digits respelled (bi_msg_splice_header) — when already canonical for the sender's
 * dialect or differing from it only in hex case. */
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
    bi_header_edit_t none = {0};
    int rc = raw ? bi_msg_splice_header(ans, raw, raw_len, &d, e ? e : &none, &out, &len)
                 : RH_EAGAIN;
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

/* The edits that map a receiver's answer back onto the sender's hop: the sender's own
 * TransactionID, SenderID = the ReceiverID the sender used (unless that was a placeholder NetID
 * 000000: then the receiver's own identity stays), ReceiverID = the sender's SenderID. Only what
 * differs is edited, so an answer already right for the sender is still forwarded byte for byte
 * (and otherwise with only those values spliced in, deliver_answer). */
static bi_header_edit_t map_back(const bi_msg_t *req, const bi_msg_t *ans)
{
    const bi_header_t *rq = bi_msg_header(req);
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

/* ops.answer: delivers the core's neutral answer to the sender. A receiver's own TS002 answer
 * (fe_msg) is mapped back onto the sender's hop and forwarded byte for byte when it can be;
 * otherwise the answer is built from the request (failures, HomeNSAns, a downlink accepted
 * without XmitDataAns). A request without an answer type is acknowledged with an empty 200.
 * The answers are built in the transaction's arena. */
static void ts002_answer(relay_txn_t *t, void *ctx, const relay_answer_t *a)
{
    ts002_ctx_t *c = ctx;
    worker_t *w = c->w;
    bi_version_t version = bi_msg_header(c->msg)->version;
    rh_arena_t *prev = arena_enter(c->out.arena);
    const ts002_answer_t *ra = a->fe_msg;
    if (ra) {
        if (a->downlink_refused && bi_msg_drop_downlink(ra->ans) >= 0)
            bi_msg_set_result(ra->ans, a->code, a->description);
        bi_header_edit_t back = map_back(c->msg, ra->ans);
        deliver_answer(w, &c->req, c->sender_ep, c->sender_async, ra->ans, ra->raw, ra->raw_len,
                       version, &back);
    } else {
        /* a downlink from a receiver of another protocol (a Packet Broker home network's
         * join-accept, pb_bridge_ts002.h) goes into the answer through the codec */
        bi_msg_t *ans = NULL;
        bool dl_bad = false;
        if (bi_answer_new(c->msg, a->code, a->description, &ans) == RH_OK && a->phy && a->dl &&
            !a->downlink_refused) {
            bi_error_t derr;
            derr.description[0] = '\0';
            if (bi_msg_set_downlink(ans, a->phy, a->phy_len, a->dl, &derr) != RH_OK) {
                RH_LOG(RH_LOG_INFO, "relay", "bridged downlink not answered reason=\"%s\"",
                       derr.description);
                bi_msg_free(ans);
                ans = NULL;
                dl_bad = bi_answer_new(c->msg, BI_RC_OTHER,
                                       "the home network's downlink could not be translated",
                                       &ans) != RH_OK;
            }
        }
        if (!ans || dl_bad) {
            /* a notification or answer: nothing to answer, acknowledge */
            if (c->req)
                hs_reply(c->req, 200, NULL, NULL, 0);
            c->req = NULL;
        } else if (a->has_hnet_id && bi_msg_set_hnet_id(ans, a->hnet_id) != RH_OK) {
            RH_LOG(RH_LOG_WARN, "relay", "HomeNSAns could not be built txid=%u",
                   bi_msg_transaction_id(c->msg));
            if (c->req)
                hs_reply(c->req, 500, "text/plain", "out of memory", 13);
            c->req = NULL;
        } else {
            deliver_answer(w, &c->req, c->sender_ep, c->sender_async, ans, NULL, 0, version, NULL);
        }
        bi_msg_free(ans);
    }
    if (c->req) /* async sender whose request was not yet acknowledged */
        hs_reply(c->req, 200, NULL, NULL, 0);
    c->req = NULL;
    arena_enter(prev);
}

/* ops.release: frees the request, its arena; a sync sender never answered (should not happen)
 * is not left hanging. */
static void ts002_release(void *ctx)
{
    ts002_ctx_t *c = ctx;
    if (c->req)
        hs_reply(c->req, 500, "text/plain", "internal error", 14);
    rh_arena_t *prev = arena_enter(c->out.arena);
    bi_msg_free(c->msg);
    arena_enter(prev == c->out.arena ? NULL : prev);
    arena_free(c->out.arena);
}

/* Answers a request refused before a transaction exists (sender refused, rate limit) in its HTTP
 * response, with a new answer carrying (code, description), or acknowledges a notification or
 * answer with an empty 200. Counts the outcome (relay_count, as a transaction would). */
static void reply_refusal(worker_t *w, hs_req_t *req, const bi_msg_t *msg, bi_result_code_t code,
                          const char *description, rp_outcome_t outcome, relay_fwd_t fwd)
{
    relay_count(w, fwd, 0, RP_PROTO_TS002, RP_PROTO_TS002, bi_msg_type(msg),
                bi_msg_transaction_id(msg), RP_CLASS_OTHER, outcome,
                outcome == RP_OUT_RECEIVER_ERROR ? bi_result_code_name(code, BI_VERSION_1_0, true)
                                                 : NULL,
                hs_req_received_ns(req), NULL);
    bi_msg_t *ans = NULL;
    if (bi_answer_new(msg, code, description, &ans) != RH_OK) {
        hs_reply(req, 200, NULL, NULL, 0);
        return;
    }
    deliver_answer(w, &req, NULL, false, ans, NULL, 0, bi_msg_header(msg)->version, NULL);
    bi_msg_free(ans);
}

/* ---------------------------------------------------------------- receivers' answers */

/* Completes t with a receiver's decoded answer (ans, raw: its received bytes; arrival_ns:
 * relay_answer_t.arrival_ns); frees ans. */
static void complete_with(relay_txn_t *t, bi_msg_t *ans, const char *raw, size_t raw_len,
                          uint64_t arrival_ns)
{
    const bi_fields_t *f = bi_msg_fields(ans);
    ts002_answer_t ra = {ans, raw, raw_len};
    relay_answer_t a = {
        .code = (f->present & BI_F_RESULT) ? f->result_code : BI_RC_SUCCESS,
        .description = f->result_description,
        .phy = (f->present & BI_F_PHY_PAYLOAD) ? f->phy_payload : NULL,
        .phy_len = (f->present & BI_F_PHY_PAYLOAD) ? f->phy_payload_len : 0,
        .dl = (f->present & BI_F_DL_META) ? &f->dl : NULL,
        .fe_msg = &ra,
        .arrival_ns = arrival_ns,
    };
    relay_txn_complete(t, &a);
    bi_msg_free(ans);
}

/* Checks that a receiver's answer in an HTTP response answers this transaction. The response
 * correlates it already, so only the answer type must match; a TransactionID other than the
 * hub-owned one it was sent with is a peer bug we count ("answer_txid_mismatch") but do not turn
 * into a lost answer. */
static bool answer_matches(const relay_txn_t *t, const bi_msg_t *ans)
{
    const bi_header_t *h = bi_msg_header(ans);
    if (h->type != relay_txn_ans_type(t))
        return false;
    if (h->transaction_id != relay_txn_hub_txid(t))
        metrics_event(relay_txn_worker(t)->metrics, "answer_txid_mismatch");
    return true;
}

/* A 2xx response whose body is not a TS002 answer (empty, "{}", Helium's "Downlink Accepted")
 * acknowledges the request: the answer, if any, follows as a POST to the hub, within the
 * deadline armed at forward. A sync forwarder that accepts a downlink this way sends no
 * XmitDataAns at all (Helium on sync routes): the downlink was queued, so the home network gets
 * Success, not XmitFailed. */
static void acknowledged(relay_txn_t *t, int http_status)
{
    const route_decision_t *d = relay_txn_decision(t);
    if (d->kind != ROUTE_DOWNLINK || d->recv_ep->async_answers ||
        relay_txn_ans_type(t) != BI_MT_XMIT_DATA_ANS)
        return;
    char desc[96];
    snprintf(desc, sizeof desc, "forwarder accepted the downlink (HTTP %d) without an XmitDataAns",
             http_status);
    relay_answer_t a = {.code = BI_RC_SUCCESS, .description = desc};
    relay_txn_complete(t, &a);
}

/* The response to a forwarded request (peer_client_post callback; holds the forward's
 * reference). */
static void forward_done(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    relay_txn_t *t = arg;
    if (relay_txn_done(t)) {
        relay_txn_unref(t);
        return;
    }
    relay_ts002_out_t *c = relay_txn_ctx(t); /* the context starts with it (relay_ts002.h) */
    arena_enter(c->arena); /* the answer's JSON tree lives as long as the transaction */
    if (status == RH_ETIMEDOUT) {
        relay_txn_fail(t, RP_OUT_TIMEOUT, "receiver timed out");
    } else if (status != RH_OK) {
        relay_txn_fail(t, RP_OUT_UNREACHABLE, "receiver unreachable");
    } else if (http_status < 200 || http_status > 299) {
        char what[64];
        snprintf(what, sizeof what, "receiver answered HTTP %d", http_status);
        relay_txn_fail(t, RP_OUT_UNREACHABLE, what);
    } else if (relay_txn_ans_type(t) == BI_MT_UNKNOWN) {
        relay_txn_delivered(t); /* notification: delivered, nothing to wait for */
    } else {
        bi_msg_t *ans = NULL;
        bi_error_t err;
        memset(&err.hdr, 0, sizeof err.hdr);
        if (len > 0 && bi_msg_decode_fast((const char *)body, len, &ans, &err) == RH_OK) {
            if (answer_matches(t, ans)) {
                complete_with(t, ans, (const char *)body, len,
                              peer_client_response_arrival_ns(relay_txn_worker(t)->client));
            } else {
                char what[128];
                snprintf(what, sizeof what, "MessageType %s, expected %s",
                         bi_msg_type_name(bi_msg_type(ans)) ? bi_msg_type_name(bi_msg_type(ans))
                                                            : "?",
                         bi_msg_type_name(relay_txn_ans_type(t)));
                bi_msg_free(ans);
                relay_txn_fail_malformed_answer(t, what);
            }
        } else if (len > 0 && (err.hdr.present & BI_H_MESSAGE_TYPE)) {
            relay_txn_fail_malformed_answer(t, err.description);
        } else {
            acknowledged(t, http_status);
        }
    }
    arena_enter(NULL);
    relay_txn_unref(t);
}

int relay_ts002_send(relay_txn_t *t, bi_msg_t *msg, const char *raw, size_t raw_len,
                     const relay_forward_t *f)
{
    if (f->strip)
        bi_msg_strip_gwinfo(msg, f->strip);
    bi_dialect_t d = relay_dialect(f->ep);
    const bi_header_t *h = bi_msg_header(msg);
    uint32_t orig_txid = h->transaction_id;
    bi_id_t orig_receiver = h->receiver_id;
    bi_header_edit_t e = {0};
    e.set_txid = f->set_txid;
    e.txid = f->hub_txid;
    e.set_receiver = !id_eq(f->receiver, orig_receiver);
    e.receiver = f->receiver;
    const char *body = NULL;
    size_t len = 0;
    char *enc = NULL;
    int rc = RH_EAGAIN;
    if (raw && !edits_any(&e) && bi_msg_is_canonical_for(msg, &d)) {
        body = raw; /* forwarded byte for byte */
        len = raw_len;
        rc = RH_OK;
    } else {
        /* canonical received bytes: only the edited header values are spliced in */
        if (raw)
            rc = bi_msg_splice_header(msg, raw, raw_len, &d, &e, &enc, &len);
        if (rc == RH_EAGAIN) {
            rc = bi_msg_apply_header_edit(msg, &e);
            if (rc == RH_OK)
                rc = bi_msg_encode(msg, &d, &enc, &len);
            /* the sender's own header again, for every answer built from the request */
            bi_header_edit_t back = {e.set_txid, orig_txid, false, {BI_ID_NONE, 0},
                                     e.set_receiver, orig_receiver};
            bi_msg_apply_header_edit(msg, &back);
        }
        body = enc;
    }
    if (rc != RH_OK || !body) {
        bi_buf_free(enc);
        return RH_ENOMEM;
    }
    worker_t *w = relay_txn_worker(t);
    rc = peer_client_post(w->client, f->ep, NULL, body, len, NULL, 0, forward_done, t);
    bi_buf_free(enc);
    if (rc != RH_OK)
        return rc == RH_EAGAIN ? RH_EAGAIN : RH_EIO;
    relay_txn_ref(t); /* forward_done's (peer_client never calls back inside the post) */
    return RH_OK;
}

/* ops.forward: sends the (stripped) request to f->ep under the hub-owned TransactionID and the
 * ReceiverID the core chose; its received bytes unchanged when they can be. */
static int ts002_forward(relay_txn_t *t, void *ctx, const relay_forward_t *f)
{
    ts002_ctx_t *c = ctx;
    if (!f->ep) /* a Packet Broker party (route_msg_t.any_transport): pb_bridge_ts002.h */
        return pb_bridge_ts002_send(t, c->msg, f);
    return relay_ts002_send(t, c->msg, c->raw, c->raw_len, f);
}

static const relay_fe_ops_t ts002_ops = {ts002_forward, ts002_answer, ts002_release};

/* ---------------------------------------------------------------- async answers */

typedef struct handoff {
    bi_msg_t *ans;     /* NULL when the answer failed (fail says why) */
    rh_arena_t *arena; /* the answer's cJSON memory (the answering request's arena) */
    char fail[400];    /* non-empty: fail the transaction with this, the answer is unusable */
    size_t raw_len;
    char raw[]; /* the answer's received bytes */
} handoff_t;

/* On the transaction's owning worker (relay_txn_post_claimed). */
static void handoff_run(relay_txn_t *t, void *arg)
{
    handoff_t *h = arg;
    arena_enter(h->arena);
    if (h->fail[0]) {
        bi_msg_free(h->ans);
        relay_txn_fail_malformed_answer(t, h->fail);
    } else {
        complete_with(t, h->ans, h->raw, h->raw_len, 0); /* frees the answer */
    }
    arena_enter(NULL);
    arena_free(h->arena);
    free(h);
}

static const char *tenant_of(const peer_member_t *m)
{
    return m->n_tenant_ids == 1 ? m->tenant_ids[0] : NULL;
}

/* The SenderID check for answers (issue #11 item 1), made after the answer matched a
 * transaction of the member that sent it: the SenderID may be what the hub sent the request to
 * (ChirpStack answers with SenderID = the request's ReceiverID, e.g. a secondary NetID), a NetID
 * the member may speak for, or the JoinEUI of a Join Server endpoint the member owns. */
static bool answer_sender_ok(const relay_txn_t *t, const bi_header_t *h,
                             const peer_member_t *from, peer_registry_t *reg, const char *remote)
{
    if (id_eq(h->sender_id, relay_txn_sent_receiver(t)))
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
 * with that, item 11). Matched first (relay_txn_claim: the member expected to answer, the
 * hub-owned TransactionID, the answer type). On a cluster node, an answer whose hub-owned
 * TransactionID names another node is handed to that node (cluster_txn.h), which matches it with
 * this same function (relay_ts002_answer_from_node). An answer matching nothing is counted and
 * dropped. remote: the member's address (SenderID check, log lines). Takes ans and, when it is
 * handed over, the request's arena (*arena = NULL). Returns true when a transaction of this node
 * took the answer. */
static bool handle_answer(worker_t *w, bi_msg_t *ans, const bi_header_t *h, const char *why,
                          const char *raw, size_t raw_len, const peer_member_t *from,
                          peer_registry_t *reg, const char *remote, rh_arena_t **arena)
{
    relay_txn_t *t = relay_txn_claim(w, from, h->transaction_id, h->type);
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
    if (ho) {
        ho->fail[0] = '\0';
        if (why) {
            snprintf(ho->fail, sizeof ho->fail, "%s", why);
        } else if (!answer_sender_ok(t, h, from, reg, remote)) {
            bi_id_t sr = relay_txn_sent_receiver(t);
            char sid[20], sent[20];
            snprintf(sid, sizeof sid, h->sender_id.kind == BI_ID_NETID ? "%06llx" : "%016llx",
                     (unsigned long long)h->sender_id.value);
            snprintf(sent, sizeof sent, sr.kind == BI_ID_NETID ? "%06llx" : "%016llx",
                     (unsigned long long)sr.value);
            snprintf(ho->fail, sizeof ho->fail,
                     "SenderID %s is neither a NetID of member %s nor the ReceiverID %s the "
                     "request was sent to", sid, from->id, sent);
            metrics_event(w->metrics, "sender_refused");
        }
        ho->ans = ans;
        ho->arena = *arena; /* the hand-off owns the answer's arena from here */
        *arena = NULL;
        ho->raw_len = raw_len;
        memcpy(ho->raw, raw, raw_len);
        ho->raw[raw_len] = '\0';
    }
    if (!ho) {
        relay_txn_unclaim(t); /* the owner's timer fails the transaction */
        bi_msg_free(ans);
    } else if (relay_txn_post_claimed(t, handoff_run, ho) != RH_OK) {
        bi_msg_free(ans); /* the entry went back: the owner's timer fails the transaction */
        *arena = ho->arena; /* the caller frees it */
        free(ho);
    }
    return true;
}

bool relay_ts002_answer_from_node(worker_t *w, const char *member_id, const char *remote,
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
    memset(&err.hdr, 0, sizeof err.hdr);
    if (bi_msg_decode_fast(body, len, &msg, &err) == RH_OK) {
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

int relay_ts002_answer_orphan(worker_t *w, const relay_inflight_t *i, const char *description)
{
    peer_registry_t *reg = worker_registry(w);
    const peer_member_t *member = NULL;
    if (!reg || peer_registry_member_by_id(reg, i->sender, &member) != RH_OK || !member)
        return RH_ENOTFOUND;
    const peer_endpoint_t *ep = NULL;
    if (i->sender_id.kind == RP_STATS_ID_NETID) {
        peer_registry_endpoint_by_netid(reg, (uint32_t)i->sender_id.id, tenant_of(member), &ep);
    } else {
        peer_registry_endpoint_by_join_eui(reg, i->sender_id.id, &ep);
        if (ep && !peer_member_may_send_as(member, ep->net_id, NULL))
            ep = NULL;
    }
    if (!ep)
        return RH_ENOTFOUND;
    bi_dialect_t d = relay_dialect(ep);
    bi_id_t sender = {i->sender_id.kind == RP_STATS_ID_JOIN_EUI ? BI_ID_EUI64 : BI_ID_NETID,
                      i->sender_id.id};
    bi_id_t receiver = {i->receiver_is_eui ? BI_ID_EUI64 : BI_ID_NETID, i->receiver};
    rh_arena_t *arena = arena_new(); /* NULL: cJSON falls back to malloc */
    rh_arena_t *prev = arena_enter(arena);
    bi_msg_t *req = NULL, *ans = NULL;
    int rc = bi_msg_new(i->req_type, d.version, sender, receiver, i->sender_txid, &req);
    if (rc == RH_OK)
        rc = bi_answer_new(req, i->fail_code, description, &ans);
    if (rc == RH_OK) /* async: no held request; deliver counts a POST it could not send */
        deliver_answer(w, NULL, ep, true, ans, NULL, 0, d.version, NULL);
    bi_msg_free(ans);
    bi_msg_free(req);
    arena_enter(prev);
    arena_free(arena);
    return rc == RH_OK ? RH_OK : RH_ENOMEM;
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

static void conn_auth_free(void *p)
{
    OPENSSL_cleanse(p, sizeof(conn_auth_t)); /* the cached credential is a secret */
    free(p);
}

/* Authenticates by TLS client certificate or Bearer key. Returns 0 and *m (may stay NULL when
 * no credentials were presented), or an HTTP status to refuse with. */
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

/* The protocol-neutral view of a decoded TS002 request for the core (route_decide). */
static void view_of(const bi_msg_t *msg, const peer_member_t *sender, const rp_party_t *party,
                    route_msg_t *v)
{
    const bi_fields_t *f = bi_msg_fields(msg);
    const bi_header_t *h = &f->hdr;
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
    v->sender = sender;
    v->sender_party = *party;
    v->receiver_is_eui = h->receiver_id.kind != BI_ID_NETID;
    v->receiver = h->receiver_id.value;
    bool phy = f->present & BI_F_PHY_PAYLOAD;
    v->phy = phy ? f->phy_payload : NULL;
    v->phy_len = phy ? f->phy_payload_len : 0;
    v->dev_eui = f->dev_eui;
    v->malformed = bi_result_code_malformed(h->version);
    v->any_transport = false; /* TS002 receivers need an endpoint */
}

/* What the core is told about a decoded request. */
static relay_txn_params_t params_of(const bi_msg_t *msg, const peer_member_t *member,
                                    bool sender_async, uint64_t recv_ns)
{
    const bi_fields_t *f = bi_msg_fields(msg);
    const bi_header_t *h = &f->hdr;
    relay_txn_params_t p = {0};
    p.sender = member;
    p.sender_id.kind = h->sender_id.kind == BI_ID_EUI64 ? RP_STATS_ID_JOIN_EUI : RP_STATS_ID_NETID;
    p.sender_id.id = h->sender_id.value;
    p.req_type = h->type;
    p.ans_type = bi_msg_type_is_request(h->type) ? bi_msg_type_answer_for(h->type) : BI_MT_UNKNOWN;
    p.sender_waits = !sender_async && p.ans_type != BI_MT_UNKNOWN;
    p.sender_async = sender_async && p.ans_type != BI_MT_UNKNOWN;
    p.sender_txid = h->transaction_id;
    p.recv_ns = recv_ns;
    if ((f->present & BI_F_UL_META) && (f->ul.present & BI_UL_RECV_TIME)) {
        p.has_ul_recv_time = true;
        p.ul_recv_ms = f->ul.recv_time.sec * 1000 + f->ul.recv_time.nsec / 1000000;
    }
    return p;
}

static void handle_request(worker_t *w, hs_req_t *req, rh_arena_t **arena);

void relay_ts002_handle_request(hs_req_t *req, void *arg)
{
    worker_t *w = arg;
    rh_arena_t *arena = arena_new(); /* NULL: cJSON falls back to malloc */
    arena_enter(arena);
    handle_request(w, req, &arena); /* takes the arena when a transaction or hand-off keeps it */
    arena_enter(NULL);
    arena_free(arena);
}

/* Answers a body the codec refused (err): a TS002 answer with the codec's ResultCode and
 * Description, or HTTP 400 when it cannot be addressed. */
static void reply_malformed(hs_req_t *req, const bi_error_t *err)
{
    bi_msg_t *ans = NULL;
    if (bi_answer_from_error(err, &ans) != RH_OK) {
        char text[300];
        int n = snprintf(text, sizeof text, "%s\n", err->description);
        hs_reply(req, 400, "text/plain", text, (size_t)n);
        return;
    }
    char *out;
    size_t olen;
    bi_dialect_t d = relay_dialect(NULL);
    d.version = err->hdr.version == BI_VERSION_UNKNOWN ? BI_VERSION_1_0 : err->hdr.version;
    if (bi_msg_encode(ans, &d, &out, &olen) == RH_OK) {
        hs_reply(req, 200, "application/json", out, olen);
        bi_buf_free(out);
    } else {
        hs_reply(req, 500, "text/plain", "out of memory\n", 14);
    }
    bi_msg_free(ans);
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

    /* decode: the one place a request body becomes a message */
    size_t blen;
    const char *body = hs_req_body(req, &blen);
    bi_msg_t *msg = NULL;
    bi_error_t err;
    if (bi_msg_decode_fast(body, blen, &msg, &err) != RH_OK) { /* bi_fast.h: one pass */
        metrics_event(w->metrics, "malformed");
        const bi_header_t *eh = &err.hdr;
        if (!member && dev)
            member = dev_member(req, reg, eh);
        if (member && (eh->present & BI_H_MESSAGE_TYPE) && (eh->present & BI_H_TRANSACTION_ID) &&
            bi_msg_type_is_answer(eh->type)) {
            /* a malformed answer whose header can be read fails its transaction at once; the
             * answering peer gets the reason (an answer is not answered in TS002). Nothing may
             * allocate after handle_answer: the hand-off owns this request's arena. */
            if (peer_member_rate_allow(member, hs_req_received_ns(req)))
                handle_answer(w, NULL, eh, err.description, body, blen, member, reg,
                              hs_req_peer_addr(req), arena);
            char text[300];
            int n = snprintf(text, sizeof text, "%s\n", err.description);
            hs_reply(req, 400, "text/plain", text, (size_t)n);
            return;
        }
        reply_malformed(req, &err);
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
        if (!peer_member_rate_allow(member, hs_req_received_ns(req))) {
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
        reply_refusal(w, req, msg, BI_RC_UNKNOWN_SENDER, desc, RP_OUT_UNAUTHORIZED, who);
        bi_msg_free(msg);
        return;
    }
    if (!peer_member_rate_allow(member, hs_req_received_ns(req))) {
        metrics_event(w->metrics, "rate_limited");
        relay_fwd_t who = {h->sender_id.kind == BI_ID_EUI64 ? RP_STATS_ID_JOIN_EUI
                                                            : RP_STATS_ID_NETID,
                           h->sender_id.value};
        reply_refusal(w, req, msg, BI_RC_OTHER, "rate limit exceeded: retry later",
                      RP_OUT_RATE_LIMITED, who);
        bi_msg_free(msg);
        return;
    }

    relay_txn_params_t p = params_of(msg, member, sender_async, hs_req_received_ns(req));
    p.arrival_ns = hs_req_arrival_ns(req);
    relay_txn_t *t = relay_txn_create(w, reg, &p, &ts002_ops, sizeof(ts002_ctx_t) + blen + 1);
    if (!t) {
        bi_msg_free(msg);
        hs_reply(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    ts002_ctx_t *c = relay_txn_ctx(t);
    c->w = w;
    c->req = req;
    c->msg = msg;
    c->out.arena = *arena; /* the transaction owns the request's arena from here */
    *arena = NULL;
    memcpy(c->raw, body, blen);
    c->raw[blen] = '\0';
    c->raw_len = blen;
    c->sender_ep = sender_ep;
    c->sender_async = sender_async; /* every field set: the context is not zeroed */
    rp_party_t party;
    rp_party_set(&party, h->sender_id.kind == BI_ID_NETID ? (uint32_t)sender_id : 0, tenant, NULL);

    /* async senders and notifications are acknowledged now; answers follow as POSTs */
    if (sender_async || p.ans_type == BI_MT_UNKNOWN) {
        hs_reply(c->req, 200, NULL, NULL, 0);
        c->req = NULL;
        if (p.ans_type == BI_MT_UNKNOWN)
            c->sender_async = false; /* nothing will be sent back */
    }

    route_msg_t view;
    view_of(msg, member, &party, &view);
    view.any_transport = w->pb != NULL; /* Packet Broker parties too (pb_bridge_ts002.h) */
    gateways_seen(party.net_id, bi_msg_fields(msg)); /* console map (gateways.h) */
    relay_txn_route(t, &view); /* consumes our reference */
}
