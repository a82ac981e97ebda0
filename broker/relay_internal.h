/*
 * relay_internal.h — the relay's per-message transaction. Internal to broker/relay.c (the only
 * file that creates, completes, fails, answers and frees transactions; the routing decision it
 * acts on comes from route.c, which never touches a transaction).
 *
 * A relay_txn_t lives from the moment a request is accepted for forwarding until its answer has
 * been delivered to the sender (or the sender was answered with a failure) AND every event that
 * may still refer to it (the forward's HTTP callback, the answer timer, the pending-table entry)
 * has dropped its reference: it is reference-counted inside relay.c, and every reference is
 * documented where it is taken. It is owned by the worker that received the request; only that
 * worker touches it (async answers arriving on another worker are handed over through the
 * owner's inbox). It holds its own reference to the member registry, so the sender's and
 * receiver's member/endpoint pointers stay valid even if a rebuild is published meanwhile.
 *
 * What a transaction keeps about routing (parties, class, receiver, pending key, deadlines,
 * timing) is protocol-neutral (route_decision_t, pending_key_t, times); the wire-format parts are
 * the request as decoded (msg) and its received bytes (raw), used to forward and to answer.
 */
#ifndef RH_RELAY_INTERNAL_H
#define RH_RELAY_INTERNAL_H

#include "arena.h"
#include "bi_msg.h"
#include "relay.h"
#include "route.h"
#include "worker.h"

#include <stdbool.h>

typedef struct relay_txn {
    worker_t *w;
    hs_req_t *req;                    /* held HTTP request of a sync sender, else NULL */
    peer_registry_t *reg;             /* own reference for the transaction's lifetime */
    const peer_member_t *sender;      /* authenticated member */
    const peer_endpoint_t *sender_ep; /* sender's endpoint (async answers, dialect), may be NULL */
    bool sender_async;                /* answer by POSTing to sender_ep */
    bool sender_is_eui;               /* SenderID is a JoinEUI (a Join Server): statistics */
    route_decision_t route;           /* where it goes, parties, class (route.c's decision) */
    rh_arena_t *arena;                /* cJSON memory of msg and of its answers (may be NULL) */
    bi_msg_t *msg;                    /* the request as received (possibly stripped) */
    char *raw;                        /* received body (forwarded as-is when canonical) */
    size_t raw_len;
    bi_msg_type_t ans_type; /* expected answer type (BI_MT_UNKNOWN: none, notification) */
    uint64_t t_recv_ns, t_fwd_ns;
    struct event *timer; /* async receiver: answer deadline */
    pending_key_t pkey;   /* pkey.txid: the hub-owned TransactionID toward the receiver */
    bi_id_t sent_receiver; /* ReceiverID the hub sent the request with (item 10 of #11) */
    uint32_t wait_ms;      /* the answer deadline armed at forward, ms after forwarding */
    bool rx_limited;       /* wait_ms was cut to the device's receive window */
    bool pending; /* registered in the pending table */
    bool done;
} relay_txn_t;

/* A statistics forwarder identity: a NetID or a JoinEUI, never one cut down to the other. */
typedef struct relay_fwd {
    rp_stats_id_kind_t kind;
    uint64_t id;
} relay_fwd_t;

#endif
