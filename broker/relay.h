/*
 * relay.h — the relay core: protocol-neutral transactions, shared by every front end.
 *
 * A front end (relay_ts002.c: TS002 JSON over HTTP; pb_bridge.c: Packet Broker's gRPC data plane
 * toward TS002 members, issue 12) authenticates the caller, decodes its wire format and
 * answers what it refuses before a transaction exists. For each request it accepts it creates a
 * transaction here, hands the core a protocol-neutral view of the message (route_msg_t), and from
 * then on the core decides and acts:
 *   - route.c decides (a pure function): forward, answer (HomeNSAns) or refuse;
 *   - this core registers the pending entry under a hub-owned TransactionID (hub_txid.h), arms
 *     the answer deadline (the receiver's timeout, cut to the device's receive window), counts
 *     exactly one terminal outcome per transaction in the statistics (metrics_count) and the
 *     capture tap, logs it once, applies the answer policy (a downlink the forwarder's policy
 *     refuses becomes NoRoamingAgreement), and completes, fails and frees transactions;
 *   - the front end only translates and delivers, through its ops table (relay_fe_ops_t):
 *     "forward this to that receiver" and "answer the sender with this neutral answer".
 * The wire-format parts of a transaction (a held HTTP request, the decoded message, its received
 * bytes, the sender's dialect, the answering mode) live in the front end's context, allocated with
 * the transaction (relay_txn_create's ctx_size) and reached by relay_txn_ctx(). So a gRPC or
 * inter-node front end creates, completes and fails transactions through these same functions
 * and shares the same statistics, capture and policy semantics.
 *
 * Lifetime and references. A transaction lives from relay_txn_create until its sender was
 * answered (or acknowledged) and every event that may still refer to it has dropped its
 * reference. It is reference-counted: the creator's reference is consumed by relay_txn_route;
 * a front end that has a request on the wire holds its own (relay_txn_ref in ops.forward,
 * relay_txn_unref when it has reported the receiver's response); the pending entry and the
 * answer timer hold theirs inside the core. The first completion (answer, failure, timeout,
 * delivery) wins; later reports are ignored (relay_txn_done tells). The transaction is owned by
 * the worker that created it and only that worker's thread touches it — except relay_txn_claim
 * and relay_txn_sent_receiver, safe from any worker (an async answer may arrive anywhere; it is
 * then handed to the owner with relay_txn_post_claimed). The transaction holds its own
 * reference to the member registry, so member and endpoint pointers stay valid for its life.
 *
 * Refusal codes and outcomes are TS002's (bi_result_code_t, rp_outcome_t): a front end of another
 * protocol maps them onto its own (route.h lists which decision yields which).
 */
#ifndef RH_RELAY_H
#define RH_RELAY_H

#include "bi_msg.h"
#include "route.h"
#include "worker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct relay_txn relay_txn_t;

/* A statistics forwarder identity: a NetID or a JoinEUI, never one cut down to the other. */
typedef struct relay_fwd {
    rp_stats_id_kind_t kind;
    uint64_t id;
} relay_fwd_t;

/* What a front end tells the core about a request when creating its transaction. Pointers are
 * borrowed from the transaction's registry (sender) and must stay valid for its life. */
typedef struct relay_txn_params {
    const peer_member_t *sender; /* authenticated member (required) */
    relay_fwd_t sender_id;       /* the sender's own identity (SenderID): NetID or JoinEUI */
    rp_protocol_t sender_protocol; /* the protocol the sender spoke (statistics; 0: TS002) */
    bool sender_waits;           /* the sender waits for the answer on its own request (TS002
                                    sync HTTP): only then is a failure's latency counted */
    bool sender_async;           /* the answer reaches the sender as a later request of the hub
                                    to the sender's own endpoint (TS002 async answers), which
                                    another node could send too: relay_hooks_t observes it */
    bi_msg_type_t req_type;      /* statistics, capture and log: the request's MessageType */
    bi_msg_type_t ans_type;      /* expected answer (BI_MT_UNKNOWN: a notification, none) */
    uint32_t sender_txid;        /* the sender's TransactionID (capture, log) */
    uint64_t recv_ns;            /* rh_mono_ns() when the request was complete */
    uint64_t arrival_ns;         /* when the kernel received the request's last bytes
                                    (CLOCK_REALTIME ns, as rh_real_ns; hs_req_arrival_ns), 0:
                                    unknown — then no hub_added latency is counted */
    bool has_ul_recv_time;       /* uplink: the gateway RecvTime is known */
    int64_t ul_recv_ms;          /* ... as Unix ms (answer deadline, receive windows) */
} relay_txn_params_t;

/* A protocol-neutral answer for the sender: what a receiver answered, what the hub answers
 * itself (HomeNSAns) or a failure. The core may rewrite code/description and set
 * downlink_refused (answer policy) before ops.answer sees it. */
typedef struct relay_answer {
    bi_result_code_t code;       /* TS002 ResultCode */
    const char *description;     /* Result.Description, NULL: none */
    const uint8_t *phy;          /* downlink PHYPayload (e.g. join-accept), NULL: none */
    size_t phy_len;
    const bi_dlmeta_t *dl;       /* the downlink's DLMetaData fields, NULL: none */
    bool has_hnet_id;            /* HomeNSAns: the home network's NetID */
    uint32_t hnet_id;
    bool downlink_refused;       /* set by the core: deliver without phy/dl (policy) */
    void *fe_msg;                /* opaque: the receiver's own message when the receiving front
                                    end is the sender's (TS002 -> TS002 forwards its bytes
                                    unchanged); NULL for a failure or a hub-built answer */
    uint64_t arrival_ns;         /* relay_txn_complete: when the kernel received the answer's
                                    last bytes (CLOCK_REALTIME ns,
                                    peer_client_response_arrival_ns), 0: unknown */
} relay_answer_t;

/* What ops.forward must send, decided by the core. */
typedef struct relay_forward {
    const peer_endpoint_t *ep; /* the receiver's endpoint (route decision); NULL: a receiver
                                  without a TS002 endpoint, reached over its own transport
                                  (Packet Broker gRPC, route_msg_t.any_transport) — its answer is
                                  claimed with relay_txn_claim_party */
    unsigned strip;            /* ROUTE_STRIP_*: gateway metadata to remove first */
    bool set_txid;             /* an answer is expected: send under hub_txid */
    uint32_t hub_txid;         /* the hub-owned TransactionID toward the receiver */
    bi_id_t receiver;          /* the ReceiverID to name (the receiver's own identity when the
                                  hub decided it; else the sender's ReceiverID unchanged) */
    uint32_t wait_ms;          /* the answer deadline armed by the core, ms */
} relay_forward_t;

/* A front end's operations. Called on the owning worker's thread; ctx is relay_txn_ctx(t). */
typedef struct relay_fe_ops {
    /* Sends the request to f->ep. Returns RH_OK when it is on its way: the front end then holds
     * a reference (relay_txn_ref) until it has reported the receiver's response with
     * relay_txn_complete / relay_txn_fail / relay_txn_fail_malformed_answer /
     * relay_txn_delivered (any may be skipped if relay_txn_done) and drops it (relay_txn_unref).
     * Errors (the core fails the transaction toward the sender): RH_EAGAIN (receiver backing off
     * or at its in-flight limit), RH_ENOMEM (hub out of memory), RH_ENOTFOUND (f->ep NULL and the
     * receiver's own transport has no way to it: refused with the route's no-route code, outcome
     * no_route), other (receiver unreachable). */
    int (*forward)(relay_txn_t *t, void *ctx, const relay_forward_t *f);
    /* Delivers a to the sender (called at most once per transaction, after the outcome was
     * counted). For a request without an answer type it acknowledges instead. a->fe_msg is
     * non-NULL only when this front end passed it to relay_txn_complete. */
    void (*answer)(relay_txn_t *t, void *ctx, const relay_answer_t *a);
    /* Frees what ctx owns (not ctx itself) when the transaction is freed. */
    void (*release)(void *ctx);
} relay_fe_ops_t;

/* Creates a transaction owned by worker w (call on w's thread), holding a reference to reg and
 * ctx_size bytes of front-end context (relay_txn_ctx), uninitialised: the front end initialises
 * every byte ops.release reads before anything can release the transaction (a received body
 * copied into the context is then not zeroed first for nothing). The caller holds the one
 * reference, consumed by relay_txn_route (or dropped with relay_txn_unref if the caller gives up
 * before routing: then ops.release runs and nothing is counted). ops must outlive the
 * transaction. Returns NULL on allocation failure (nothing to undo). */
relay_txn_t *relay_txn_create(worker_t *w, peer_registry_t *reg, const relay_txn_params_t *p,
                              const relay_fe_ops_t *ops, size_t ctx_size);

/* The front-end context of t (ctx_size bytes, max_align_t aligned, as the front end left them). */
void *relay_txn_ctx(relay_txn_t *t);

/* Decides where the request goes (route_decide over view, this worker's routing-table reader and
 * the transaction's registry) and acts: forwards (ops.forward), answers from the hub
 * (HomeNSAns with HNetID, through ops.answer) or refuses (the decision's ResultCode and
 * description through ops.answer, outcome counted). Consumes the caller's reference: t must not
 * be used after the call unless the caller took another. view is borrowed for the call. */
void relay_txn_route(relay_txn_t *t, const route_msg_t *view);

/* Completes t with the receiver's answer a (may be rewritten by the answer policy, see
 * relay_answer_t): counts the outcome (forwarded for Success, receiver_error with the ResultCode
 * otherwise), observes the receiver's latency, logs, calls ops.answer; then, when the sender
 * waits and both the request's and a's kernel arrival times are known, observes the hub_added
 * latency (metrics.h METRICS_HUB_ADDED: ops.answer has written the answer). No-op when t is
 * already done. The caller keeps ownership of a and of a->fe_msg. */
void relay_txn_complete(relay_txn_t *t, relay_answer_t *a);

/* Fails t because of its receiver (unreachable, timed out, refused at the HTTP level, answered
 * wrongly): answers the sender with XmitFailed for a downlink, Other otherwise, description
 * "what (endpoint)", and counts outcome. No-op when t is already done. */
void relay_txn_fail(relay_txn_t *t, rp_outcome_t outcome, const char *what);

/* Refuses t at once with (code, description) and counts outcome: for a front end whose
 * ops.forward finds the request cannot be translated for its receiver (e.g. a sealed token that
 * does not open: MalformedRequest naming the field). ops.forward may call it and return RH_OK
 * without taking a reference. No-op when t is already done. */
void relay_txn_refuse(relay_txn_t *t, bi_result_code_t code, const char *description,
                      rp_outcome_t outcome);

/* Fails t at once because the receiver's answer is malformed (why: the decoder's sentence):
 * counted receiver_error, logged at info (at most one line per request the hub sent), metrics
 * event "malformed_answer". No-op when t is already done. */
void relay_txn_fail_malformed_answer(relay_txn_t *t, const char *why);

/* A notification (no answer type) reached its receiver: counted forwarded. No-op when done. */
void relay_txn_delivered(relay_txn_t *t);

/* Whether t has completed (answered, failed, timed out or delivered). */
bool relay_txn_done(const relay_txn_t *t);

/* The owning worker, the routing decision (valid after relay_txn_route) and the expected answer
 * type of t. */
worker_t *relay_txn_worker(const relay_txn_t *t);
/* The authenticated member that sent t (borrowed from t's registry: valid for t's life). */
const peer_member_t *relay_txn_sender(const relay_txn_t *t);
const route_decision_t *relay_txn_decision(const relay_txn_t *t);
bi_msg_type_t relay_txn_ans_type(const relay_txn_t *t);

/* The hub-owned TransactionID t was forwarded under (hub_txid.h; meaningful only after
 * forwarding a request that expects an answer). */
uint32_t relay_txn_hub_txid(const relay_txn_t *t);

/* The receiver identity t was forwarded to (relay_forward_t.receiver). Written before the pending
 * entry is published, so safe to read on any worker after relay_txn_claim. */
bi_id_t relay_txn_sent_receiver(const relay_txn_t *t);

/* Takes the pending entry of the transaction that member `from` answers with hub_txid and
 * answer type ans_type (entries are keyed by the member expected to answer, not by NetID: a
 * home network may answer with another of its NetIDs). Returns NULL when nothing matches
 * (never sent, already answered or timed out: the caller counts and drops the answer). On
 * success the caller holds the entry's reference and must pass t to relay_txn_post_claimed.
 * Thread-safe (any worker). */
relay_txn_t *relay_txn_claim(worker_t *w, const peer_member_t *from, uint32_t hub_txid,
                             bi_msg_type_t ans_type);

/* The deadline of the answer of a receiver without a TS002 endpoint (relay_forward_t.ep NULL, a
 * Packet Broker gRPC party), before the cut to the device's receive window: a join-request's
 * join-accept can come up to JOIN_ACCEPT_DELAY2 (6 s) minus the forwarder's scheduling margin
 * after the uplink; anything else is answered by the party's delivery report, which a Packet
 * Broker agent sends within its own 3 s publish deadline. */
#define RELAY_GRPC_WAIT_JOIN_MS 5700
#define RELAY_GRPC_WAIT_MS 3000

/* The pending-table identity of the party with NetID net_id when it answers over its own
 * transport (relay_forward_t.ep NULL): the uplink's home network, a downlink's forwarder. */
uint64_t relay_party_answerer(uint32_t net_id);

/* relay_txn_claim for a party without a TS002 endpoint that answers with NetID net_id (already
 * authenticated for it by the caller). Same returns and obligations as relay_txn_claim. */
relay_txn_t *relay_txn_claim_party(worker_t *w, uint32_t net_id, uint32_t hub_txid,
                                   bi_msg_type_t ans_type);

/* Runs fn(t, arg) on t's owning worker (at once when that is the calling thread, worker_self),
 * after marking the claimed entry taken; the entry's reference is dropped after fn returns.
 * Errors: RH_ENOMEM (fn not called, the caller still owns arg; the entry was put back
 * (relay_txn_unclaim), so the transaction ends with its timer's failure). */
int relay_txn_post_claimed(relay_txn_t *t, void (*fn)(relay_txn_t *t, void *arg), void *arg);

/* Puts a claimed entry back into the pending table (the caller could not hand the answer over,
 * e.g. out of memory): the owner's answer timer then finds it and fails the transaction. Any
 * worker. */
void relay_txn_unclaim(relay_txn_t *t);

/* Reference counting (owning worker's thread only). relay_txn_unref frees t (ops.release, the
 * registry reference) when the last reference goes. */
void relay_txn_ref(relay_txn_t *t);
void relay_txn_unref(relay_txn_t *t);

/* Counts one terminal outcome in w's statistics (metrics_count) and the capture tap: what every
 * transaction records, for a front end's refusals made before a transaction exists (sender not
 * one of the member's NetIDs, rate limit). fwd_proto/home_proto: the protocol the forwarder and
 * the home network spoke (rp_protocol_t says which for a message the hub refused);
 * req_type/txid: the request's MessageType and TransactionID (capture); result_code: the
 * ResultCode name or NULL; recv_ns: 0 when unknown; sender: member ID or NULL. */
void relay_count(worker_t *w, relay_fwd_t fwd, uint32_t home_net_id, rp_protocol_t fwd_proto,
                 rp_protocol_t home_proto, bi_msg_type_t req_type, uint32_t txid, rp_class_t cls,
                 rp_outcome_t outcome, const char *result_code, uint64_t recv_ns,
                 const char *sender);

/* What an observer of async transactions (relay_hooks_t) is told: enough for another party
 * (another cluster node, cluster_inflight.h) to answer the sender with the failure the holder
 * would answer at the deadline, and nothing more (no payload, no keys). Borrowed for the call. */
typedef struct relay_inflight {
    const char *sender;         /* the sending member's ID */
    relay_fwd_t sender_id;      /* its SenderID: a NetID or a JoinEUI */
    bool receiver_is_eui;       /* the ReceiverID the sender named (route_msg_t.receiver) */
    uint64_t receiver;
    uint32_t sender_txid;       /* the sender's own TransactionID */
    uint32_t hub_txid;          /* the hub-owned TransactionID toward the receiver (hub_txid.h) */
    bi_msg_type_t req_type;     /* the request's MessageType */
    bi_msg_type_t ans_type;     /* the answer the sender waits for */
    bi_result_code_t fail_code; /* the holder's failure at the deadline (relay_txn_fail):
                                   XmitFailed for a downlink, Other otherwise */
    int64_t deadline_ms;        /* Unix ms at which the holder's answer deadline ends */
} relay_inflight_t;

/* An observer of the transactions whose sender is answered asynchronously
 * (relay_txn_params_t.sender_async) and that wait for an answer: `started` once the request
 * is on its way and its deadline armed, `ended` when the transaction completes (answered,
 * failed, timed out; not called at shutdown when worker_t.relay_hooks was cleared first).
 * Called on the owning worker's thread; they must not block. worker_t.relay_hooks (NULL: none)
 * is set before the worker threads start. */
typedef struct relay_hooks {
    void (*started)(void *arg, const relay_inflight_t *i);
    void (*ended)(void *arg, const relay_inflight_t *i);
    void *arg;
} relay_hooks_t;

/* Fails every transaction owned by worker w that is not done ("hub shutting down"). */
void relay_worker_fini(worker_t *w);

/* Frees what relay.c keeps per worker (its answer-deadline lists and their timers): after
 * relay_worker_fini, before w->base is freed. A no-op when there is nothing. */
void relay_worker_free(worker_t *w);

#endif
