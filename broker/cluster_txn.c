/* cluster_txn.c — answers handed to the node that holds their transaction. See cluster_txn.h. */
#include "cluster_txn.h"

#include "hub_txid.h"
#include "rh_err.h"
#include "rh_log.h"
#include "roamhub.pb-c.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLY_MATCHED "matched"
#define REPLY_UNMATCHED "unmatched"

struct cluster_txn {
    natsConnection *nc; /* the cluster's (cluster_nats) */
    uint8_t node;
    char prefix[64];     /* cluster.subject_prefix */
    char reply_subj[96]; /* PREFIX.txn.reply.NODE: the holders' replies to this node */
    natsSubscription *sub, *reply_sub;
    worker_t *workers;
    unsigned nworkers;
    cluster_txn_match_fn match;
    cluster_txn_match_pb_fn match_pb; /* Packet Broker answers (cluster_pb.h); NULL: unmatched */
    atomic_uint next; /* round robin over the workers */
};

/* One handed answer on its way to a worker: the strings and the body follow the struct. */
typedef struct handed {
    cluster_txn_t *x;
    const char *member_id, *remote, *reply;
    bool pb; /* body is a PbAnswerHandoff */
    size_t len;
    char *body;
    char mem[];
} handed_t;

static void handed_run(worker_t *w, void *arg)
{
    handed_t *h = arg;
    /* run by the worker's loop; an inbox emptied after the worker stopped (worker_inbox_fini,
     * main thread) drops it: the transactions are failed by then, x may be gone */
    if (worker_self() == w) {
        cluster_txn_t *x = h->x;
        metrics_event(w->metrics, "answer_from_node");
        bool matched = h->pb ? x->match_pb && x->match_pb(w, (const uint8_t *)h->body, h->len)
                             : x->match(w, h->member_id, h->remote, h->body, h->len);
        if (h->reply[0])
            natsConnection_PublishString(x->nc, h->reply, matched ? REPLY_MATCHED
                                                                  : REPLY_UNMATCHED);
    }
    free(h);
}

static char *put_str(char **at, const char *s, size_t n)
{
    char *p = *at;
    memcpy(p, s, n);
    p[n] = '\0';
    *at += n + 1;
    return p;
}

/* PREFIX.txn.NODE: an answer for one of this node's transactions (NATS thread): to a worker. */
static void on_handed(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    (void)nc;
    (void)sub;
    cluster_txn_t *x = arg;
    Roamhub__V1__AnswerHandoff *a = roamhub__v1__answer_handoff__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    if (!a || !a->member_id || !a->remote) {
        RH_LOG(RH_LOG_DEBUG, "cluster", "unreadable answer hand-off dropped");
        if (a)
            roamhub__v1__answer_handoff__free_unpacked(a, NULL);
        natsMsg_Destroy(msg);
        return;
    }
    const char *reply = natsMsg_GetReply(msg) ? natsMsg_GetReply(msg) : "";
    size_t lm = strlen(a->member_id), lr = strlen(a->remote), lp = strlen(reply);
    handed_t *h = malloc(sizeof *h + lm + lr + lp + a->body.len + 4);
    if (h) {
        char *at = h->mem;
        h->x = x;
        h->pb = a->packet_broker;
        h->member_id = put_str(&at, a->member_id, lm);
        h->remote = put_str(&at, a->remote, lr);
        h->reply = put_str(&at, reply, lp);
        h->len = a->body.len;
        h->body = put_str(&at, (const char *)a->body.data, a->body.len);
        worker_t *w = &x->workers[atomic_fetch_add(&x->next, 1) % x->nworkers];
        if (worker_post(w, handed_run, h) != RH_OK)
            free(h);
    }
    roamhub__v1__answer_handoff__free_unpacked(a, NULL);
    natsMsg_Destroy(msg);
}

/* PREFIX.txn.reply.NODE: what a holder did with an answer this node handed it (NATS thread). */
static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    (void)nc;
    (void)sub;
    cluster_txn_t *x = arg;
    metrics_t *m = x->workers[0].metrics;
    if (natsMsg_IsNoResponders(msg))
        metrics_event(m, "answer_holder_unreachable");
    else if (natsMsg_GetDataLength(msg) == (int)strlen(REPLY_UNMATCHED) &&
             !memcmp(natsMsg_GetData(msg), REPLY_UNMATCHED, strlen(REPLY_UNMATCHED)))
        metrics_event(m, "answer_unmatched_at_holder");
    natsMsg_Destroy(msg);
}

int cluster_txn_start(cluster_t *c, const rh_config_t *cfg, worker_t *workers, unsigned n,
                      cluster_txn_match_fn match, cluster_txn_t **out, rh_diag_t *d)
{
    *out = NULL;
    cluster_txn_t *x = calloc(1, sizeof *x);
    if (!x)
        return RH_ENOMEM;
    x->nc = cluster_nats(c);
    x->node = (uint8_t)cfg->cluster_node_id;
    x->workers = workers;
    x->nworkers = n;
    x->match = match;
    snprintf(x->prefix, sizeof x->prefix, "%s", cfg->cluster_subject_prefix);
    snprintf(x->reply_subj, sizeof x->reply_subj, "%s.txn.reply.%u", x->prefix, x->node);
    char subj[96];
    snprintf(subj, sizeof subj, "%s.txn.%u", x->prefix, x->node);
    natsStatus s = natsConnection_Subscribe(&x->sub, x->nc, subj, on_handed, x);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&x->reply_sub, x->nc, x->reply_subj, on_reply, x);
    if (s != NATS_OK) {
        cluster_txn_free(x);
        return s == NATS_NO_MEMORY ? RH_ENOMEM
                                   : rh_diag_fail(d, RH_EIO, "cluster: subscribing to %s: %s",
                                                  subj, natsStatus_GetText(s));
    }
    *out = x;
    return RH_OK;
}

void cluster_txn_set_pb(cluster_txn_t *x, cluster_txn_match_pb_fn match)
{
    x->match_pb = match;
}

static int handoff(cluster_txn_t *x, uint32_t txid, const char *member_id, const char *remote,
                   const char *body, size_t len, bool pb)
{
    uint8_t node = hub_txid_node(txid);
    if (!x || node == 0 || node == x->node)
        return RH_ENOTFOUND;
    Roamhub__V1__AnswerHandoff a = ROAMHUB__V1__ANSWER_HANDOFF__INIT;
    a.member_id = (char *)member_id;
    a.remote = (char *)(remote ? remote : "");
    a.body.data = (uint8_t *)body;
    a.body.len = len;
    a.from_node = x->node;
    a.packet_broker = pb;
    size_t n = roamhub__v1__answer_handoff__get_packed_size(&a);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return RH_ENOMEM;
    roamhub__v1__answer_handoff__pack(&a, buf);
    char subj[96];
    snprintf(subj, sizeof subj, "%s.txn.%u", x->prefix, node);
    natsStatus s = natsConnection_PublishRequest(x->nc, subj, x->reply_subj, buf, (int)n);
    free(buf);
    return s == NATS_OK ? RH_OK : RH_EAGAIN;
}

int cluster_txn_handoff(cluster_txn_t *x, uint32_t txid, const char *member_id,
                        const char *remote, const char *body, size_t len)
{
    return handoff(x, txid, member_id, remote, body, len, false);
}

int cluster_txn_handoff_pb(cluster_txn_t *x, uint32_t txid, const char *member_id,
                           const uint8_t *msg, size_t len)
{
    return handoff(x, txid, member_id, "", (const char *)msg, len, true);
}

/* Stops a subscription and waits until its callback is no longer running (drained), so x can
 * be freed; without a connection to drain on, unsubscribes. */
static void sub_stop(natsSubscription *sub)
{
    if (!sub)
        return;
    if (natsSubscription_Drain(sub) != NATS_OK ||
        natsSubscription_WaitForDrainCompletion(sub, 2000) != NATS_OK)
        natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

void cluster_txn_free(cluster_txn_t *x)
{
    if (!x)
        return;
    sub_stop(x->sub);
    sub_stop(x->reply_sub);
    free(x);
}
