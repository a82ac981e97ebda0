/*
 * relay_internal.h — what the relay stages share: the per-message transaction and the helpers
 * that answer the sender. Internal to broker/relay*.c.
 *
 * A relay_txn_t lives from the moment a request is accepted for forwarding until its answer
 * has been delivered to the sender (or the sender was answered with a failure). It is owned by
 * the worker that received the request; only that worker touches it (async answers arriving on
 * another worker are handed over through the owner's inbox). It holds its own reference to the
 * member registry, so the sender's and receiver's member/endpoint pointers stay valid even if a
 * rebuild is published meanwhile.
 */
#ifndef RH_RELAY_INTERNAL_H
#define RH_RELAY_INTERNAL_H

#include "arena.h"
#include "bi_msg.h"
#include "worker.h"
#include "lw_frame.h"
#include "relay.h"

#include <stdbool.h>

typedef enum relay_dir {
    RELAY_UPLINK = 0,   /* forwarder -> home (PRStartReq, XmitDataReq+ULMetaData, ProfileReq...) */
    RELAY_DOWNLINK = 1, /* home -> forwarder (XmitDataReq+DLMetaData, PRStopReq from sNS) */
    RELAY_OTHER = 2,
} relay_dir_t;

typedef struct relay_txn {
    worker_t *w;
    hs_req_t *req;                    /* held HTTP request of a sync sender, else NULL */
    peer_registry_t *reg;             /* own reference for the transaction's lifetime */
    const peer_member_t *sender;      /* authenticated member */
    const peer_endpoint_t *sender_ep; /* sender's endpoint (async answers, dialect), may be NULL */
    bool sender_async;                /* answer by POSTing to sender_ep */
    const peer_endpoint_t *recv_ep;   /* receiver's endpoint */
    rh_arena_t *arena;                /* cJSON memory of msg and of its answers (may be NULL) */
    bi_msg_t *msg;                    /* the request as received (possibly stripped) */
    char *raw;                        /* received body (forwarded as-is when canonical) */
    size_t raw_len;
    bi_msg_type_t ans_type;           /* expected answer type (BI_MSG_UNKNOWN: none, notification) */
    relay_dir_t dir;
    rp_class_t cls;
    rp_party_t fwd, home;             /* policy parties (forwarder, home network) */
    uint64_t recv_peer_id;            /* identity of the member that must answer (pending key) */
    uint64_t t_recv_ns, t_fwd_ns;
    struct event *timer;              /* async receiver: answer deadline */
    pending_key_t pkey;
    bool pending;                     /* registered in the pending table */
    bool done;
} relay_txn_t;

/* A statistics forwarder identity: a NetID or a JoinEUI, never one cut down to the other. */
typedef struct relay_fwd {
    rp_stats_id_kind_t kind;
    uint64_t id;
} relay_fwd_t;

/* The forwarder identity of a request's sender: its SenderID as a NetID or a JoinEUI. */
relay_fwd_t relay_fwd_of_sender(const bi_msg_t *msg);

/* The dialect a peer endpoint wants (NULL endpoint: keep the message's own version, lower-case
 * hex, RP002 region names). */
bi_dialect_t relay_dialect(const peer_endpoint_t *ep);

/* Answers the sender of `req_msg` with a new answer message carrying (code, description), or,
 * for notifications/answers (no answer type), acknowledges with an empty 200. Counts the
 * outcome. Used before a transaction exists (hs_req held, sync or async sender). */
void relay_reply_failure(worker_t *w, hs_req_t *req, const bi_msg_t *req_msg,
                         const peer_endpoint_t *sender_ep, bool sender_async,
                         bi_result_code_t code, const char *description, rp_outcome_t outcome,
                         rp_class_t cls, relay_fwd_t fwd, uint32_t home_net_id);

/* Completes a transaction with a failure answer (code, description) and frees it. */
void relay_txn_fail(relay_txn_t *t, bi_result_code_t code, const char *description,
                    rp_outcome_t outcome);

/* Delivers the receiver's answer to the sender (takes ownership of ans). raw/raw_len: the
 * answer's received bytes, forwarded unchanged when already right for the sender; NULL for an
 * answer the hub built. */
void relay_txn_answer(relay_txn_t *t, bi_msg_t *ans, const char *raw, size_t raw_len);

/* Routing stage (relay_route.c). Decides receiver, class, parties and applies policy and
 * stripping. Returns true when the message must be forwarded to t->recv_ep; false when it has
 * already been answered (failure) — then t is freed. */
bool relay_route(relay_txn_t *t);

/* Answer policy (relay_route.c): for an answer travelling back to a forwarder that carries a
 * downlink (PRStartAns with a join-accept or data downlink in PHYPayload), checks the
 * forwarder's downlink policy; on denial rewrites the answer into NoRoamingAgreement without the
 * downlink. Returns true if the answer was changed. */
bool relay_check_answer_downlink(relay_txn_t *t, bi_msg_t *ans);

/* HomeNSReq answered by the hub from its join routes (relay_route.c). Returns true when it
 * answered (t freed); false when the request must be relayed to a Join Server (t->recv_ep set). */
bool relay_home_ns(relay_txn_t *t);

/* Maps an lw_frame class to the routing-policy class (direction from the MType). */
rp_class_t relay_class_of(lw_class_t c);

/* Pending-table identity of the member that answers for endpoint ep (hash of the member ID; the
 * endpoint ID when no member owns it). */
uint64_t relay_answerer_id(const peer_registry_t *reg, const peer_endpoint_t *ep);

/* Text of a NetID ("000505") into out[7]. */
const char *relay_netid_text(uint32_t netid, char out[7]);

#endif
