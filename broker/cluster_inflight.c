/* cluster_inflight.c — a dead node's in-flight transactions fail at their deadlines. See
 * cluster_inflight.h. */
#include "cluster_inflight.h"

#include "rh_dlist.h"
#include "rh_err.h"
#include "rh_log.h"
#include "rh_time.h"
#include "roamhub.pb-c.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 200      /* orphans looked at this often */
#define HEARTBEAT_MS 1000 /* an empty batch when nothing else was published */
#define DUE_BATCH 256    /* orphans taken per look */

/* ---- the table ------------------------------------------------------------------------------- */

typedef struct ent {
    cluster_inflight_rec_t r;
    struct ent *hnext;       /* hash chain */
    struct ent *prev, *next; /* the holder's entries in start order */
} ent_t;

typedef struct holder {
    uint64_t run;      /* its current run (0: none seen) */
    ent_t *head, *tail;
    size_t n;
} holder_t;

struct cluster_inflight_table {
    size_t cap;
    size_t nbuckets; /* power of two */
    ent_t **buckets;
    holder_t holders[CLUSTER_VIEW_NODES];
};

static size_t bucket_of(const cluster_inflight_table_t *t, unsigned node, uint32_t hub_txid,
                        uint32_t sender_txid)
{
    uint64_t k = ((uint64_t)hub_txid << 32 | sender_txid) ^ ((uint64_t)node << 56);
    k *= 0x9E3779B97F4A7C15ull;
    return (size_t)(k >> 32) & (t->nbuckets - 1);
}

cluster_inflight_table_t *cluster_inflight_table_new(size_t cap)
{
    cluster_inflight_table_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cap = cap ? cap : 1;
    t->nbuckets = 64;
    while (t->nbuckets < t->cap && t->nbuckets < (1u << 20))
        t->nbuckets <<= 1;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    return t;
}

static void unlink_ent(cluster_inflight_table_t *t, ent_t *e)
{
    holder_t *h = &t->holders[e->r.node];
    ent_t **pp = &t->buckets[bucket_of(t, e->r.node, e->r.i.hub_txid, e->r.i.sender_txid)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = e->hnext;
    RH_QUEUE_UNLINK(h->head, h->tail, e, prev, next);
    h->n--;
}

void cluster_inflight_table_free(cluster_inflight_table_t *t)
{
    if (!t)
        return;
    for (size_t n = 0; n < CLUSTER_VIEW_NODES; n++)
        for (ent_t *e = t->holders[n].head, *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(t->buckets);
    free(t);
}

bool cluster_inflight_table_run(cluster_inflight_table_t *t, unsigned node, uint64_t run)
{
    if (node == 0 || node >= CLUSTER_VIEW_NODES || t->holders[node].run == run)
        return false;
    bool restarted = t->holders[node].run != 0;
    t->holders[node].run = run;
    return restarted;
}

int cluster_inflight_table_put(cluster_inflight_table_t *t, const cluster_inflight_rec_t *r)
{
    if (r->node == 0 || r->node >= CLUSTER_VIEW_NODES)
        return RH_EINVAL;
    holder_t *h = &t->holders[r->node];
    int dropped = 0;
    ent_t *e;
    if (h->n >= t->cap) { /* the oldest goes: its memory is reused */
        e = h->head;
        unlink_ent(t, e);
        dropped = 1;
    } else if (!(e = malloc(sizeof *e))) {
        return RH_ENOMEM;
    }
    e->r = *r;
    e->r.i.sender = e->r.sender;
    size_t b = bucket_of(t, r->node, r->i.hub_txid, r->i.sender_txid);
    e->hnext = t->buckets[b];
    t->buckets[b] = e;
    RH_QUEUE_APPEND(h->head, h->tail, e, prev, next);
    h->n++;
    return dropped;
}

bool cluster_inflight_table_end(cluster_inflight_table_t *t, unsigned node, uint32_t hub_txid,
                                uint32_t sender_txid)
{
    if (node == 0 || node >= CLUSTER_VIEW_NODES)
        return false;
    for (ent_t *e = t->buckets[bucket_of(t, node, hub_txid, sender_txid)]; e; e = e->hnext)
        if (e->r.node == node && e->r.i.hub_txid == hub_txid && e->r.i.sender_txid == sender_txid) {
            unlink_ent(t, e);
            free(e);
            return true;
        }
    return false;
}

size_t cluster_inflight_table_due(cluster_inflight_table_t *t, int64_t now_ms,
                                  const cluster_inflight_who_t *who, cluster_inflight_rec_t *out,
                                  size_t max, uint64_t *forgotten)
{
    size_t n = 0;
    for (unsigned node = 1; node < CLUSTER_VIEW_NODES; node++) {
        holder_t *h = &t->holders[node];
        if (!h->n)
            continue;
        /* entries in start order: deadlines roughly so (they differ by the receivers'
         * timeouts), so the scan of a live holder stops at the first entry not yet forgotten */
        for (ent_t *e = h->head, *next; e; e = next) {
            next = e->next;
            bool orphan = who->missing[node] || e->r.run != h->run;
            if (orphan && who->mine[node] && e->r.i.deadline_ms <= now_ms && n < max) {
                out[n] = e->r;
                out[n].i.sender = out[n].sender;
                n++;
                unlink_ent(t, e);
                free(e);
            } else if (e->r.i.deadline_ms + CLUSTER_INFLIGHT_GRACE_MS < now_ms) {
                unlink_ent(t, e);
                free(e);
                if (forgotten)
                    (*forgotten)++;
            } else if (!orphan && !who->missing[node]) {
                break;
            }
        }
    }
    return n;
}

size_t cluster_inflight_table_count(const cluster_inflight_table_t *t, unsigned node)
{
    if (node >= CLUSTER_VIEW_NODES)
        return 0;
    if (node)
        return t->holders[node].n;
    size_t n = 0;
    for (unsigned i = 1; i < CLUSTER_VIEW_NODES; i++)
        n += t->holders[i].n;
    return n;
}

/* ---- the cluster module ---------------------------------------------------------------------- */

/* A record waiting for the publisher: a start (with its strings) or an end. */
typedef struct queued {
    bool ended;
    bool cancelled; /* a start whose end came before it was published: neither is */
    relay_inflight_t i; /* i.sender unused: sender[] */
    char sender[RH_ID_MAX + 1];
} queued_t;

struct cluster_inflight {
    natsConnection *nc;
    cluster_view_t *view;
    worker_t *workers;
    unsigned nworkers;
    cluster_inflight_answer_fn answer;
    unsigned node;
    uint64_t run;
    char subject[128], filter[128];
    relay_hooks_t hooks;
    natsSubscription *sub;
    pthread_t thread;
    bool thread_running;
    pthread_mutex_t mu; /* q, stop */
    pthread_cond_t cv;
    queued_t *q, *q2;   /* the queue and the publisher's spare (swapped) */
    size_t qn;
    bool stop;
    pthread_mutex_t tmu; /* table */
    cluster_inflight_table_t *table;
    atomic_uint next;    /* round robin over the workers */
    atomic_int busy;     /* subscription callbacks running */
};

/* How far back an end looks for its own start still queued (a transaction that ended within the
 * same batch window is not published at all). */
#define CANCEL_SCAN 64

static void enqueue(cluster_inflight_t *x, const relay_inflight_t *i, bool ended)
{
    size_t len = ended ? 0 : strlen(i->sender);
    if (len > RH_ID_MAX)
        len = RH_ID_MAX; /* member IDs are at most RH_ID_MAX bytes (rh_id.h) */
    pthread_mutex_lock(&x->mu);
    if (ended) {
        for (size_t k = x->qn, n = 0; k > 0 && n < CANCEL_SCAN; k--, n++) {
            queued_t *q = &x->q[k - 1];
            if (!q->ended && !q->cancelled && q->i.hub_txid == i->hub_txid &&
                q->i.sender_txid == i->sender_txid) {
                q->cancelled = true;
                pthread_mutex_unlock(&x->mu);
                return;
            }
        }
    }
    if (x->qn >= CLUSTER_INFLIGHT_QUEUE) {
        pthread_mutex_unlock(&x->mu);
        metrics_event(x->workers[0].metrics, "inflight_not_published");
        return;
    }
    queued_t *e = &x->q[x->qn++];
    e->ended = ended;
    e->cancelled = false;
    e->i = *i;
    memcpy(e->sender, i->sender, len);
    e->sender[len] = '\0';
    if (x->qn == 1)
        pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
}

static void hook_started(void *arg, const relay_inflight_t *i)
{
    enqueue(arg, i, false);
}

static void hook_ended(void *arg, const relay_inflight_t *i)
{
    enqueue(arg, i, true);
}

const relay_hooks_t *cluster_inflight_hooks(cluster_inflight_t *x)
{
    return x ? &x->hooks : NULL;
}

/* Publisher thread: q[0..n) as one InflightBatch, without the cancelled starts; n == 0: an
 * empty one (a heartbeat). Returns false when there was nothing to publish (every record
 * cancelled). */
static bool publish(cluster_inflight_t *x, const queued_t *q, size_t n)
{
    Roamhub__V1__InflightTxn *m = n ? malloc(n * sizeof *m) : NULL;
    Roamhub__V1__InflightTxn **pm = n ? malloc(n * sizeof *pm) : NULL;
    if (n && (!m || !pm)) {
        free(m);
        free(pm);
        metrics_event(x->workers[0].metrics, "inflight_not_published");
        return true;
    }
    size_t out = 0;
    for (size_t k = 0; k < n; k++) {
        if (q[k].cancelled)
            continue;
        const relay_inflight_t *i = &q[k].i;
        Roamhub__V1__InflightTxn *o = &m[out];
        roamhub__v1__inflight_txn__init(o);
        o->hub_txid = i->hub_txid;
        o->sender_txid = i->sender_txid;
        if (q[k].ended) {
            o->ended = true;
        } else {
            o->sender = (char *)q[k].sender;
            o->sender_id_kind = (uint32_t)i->sender_id.kind;
            o->sender_id = i->sender_id.id;
            o->receiver_is_eui = i->receiver_is_eui;
            o->receiver = i->receiver;
            o->req_type = (uint32_t)i->req_type;
            o->ans_type = (uint32_t)i->ans_type;
            o->fail_code = (uint32_t)i->fail_code;
            o->deadline_ms = i->deadline_ms;
        }
        pm[out++] = o;
    }
    if (n && !out) {
        free(m);
        free(pm);
        return false;
    }
    Roamhub__V1__InflightBatch b = ROAMHUB__V1__INFLIGHT_BATCH__INIT;
    b.node_id = x->node;
    b.run_id = x->run;
    b.n_txns = out;
    b.txns = pm;
    size_t len = roamhub__v1__inflight_batch__get_packed_size(&b);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf) {
        roamhub__v1__inflight_batch__pack(&b, buf);
        if (natsConnection_Publish(x->nc, x->subject, buf, (int)len) != NATS_OK && out)
            metrics_event(x->workers[0].metrics, "inflight_not_published");
    }
    free(buf);
    free(m);
    free(pm);
    return true;
}

/* PREFIX.inflight.NODE of another node (NATS thread): its records into the table. */
static void on_batch(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    (void)nc;
    (void)sub;
    cluster_inflight_t *x = arg;
    atomic_fetch_add(&x->busy, 1);
    Roamhub__V1__InflightBatch *b = roamhub__v1__inflight_batch__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    natsMsg_Destroy(msg);
    if (b && b->node_id != x->node && b->node_id > 0 && b->node_id < CLUSTER_VIEW_NODES) {
        unsigned node = b->node_id, dropped = 0;
        pthread_mutex_lock(&x->tmu);
        size_t orphans = 0;
        if (cluster_inflight_table_run(x->table, node, b->run_id))
            orphans = cluster_inflight_table_count(x->table, node);
        for (size_t k = 0; k < b->n_txns; k++) {
            const Roamhub__V1__InflightTxn *m = b->txns[k];
            if (m->ended) {
                cluster_inflight_table_end(x->table, node, m->hub_txid, m->sender_txid);
                continue;
            }
            cluster_inflight_rec_t r;
            memset(&r.i, 0, sizeof r.i);
            r.node = node;
            r.run = b->run_id;
            snprintf(r.sender, sizeof r.sender, "%s", m->sender ? m->sender : "");
            r.i.sender_id.kind = m->sender_id_kind ? RP_STATS_ID_JOIN_EUI : RP_STATS_ID_NETID;
            r.i.sender_id.id = m->sender_id;
            r.i.receiver_is_eui = m->receiver_is_eui;
            r.i.receiver = m->receiver;
            r.i.sender_txid = m->sender_txid;
            r.i.hub_txid = m->hub_txid;
            r.i.req_type = (bi_msg_type_t)m->req_type;
            r.i.ans_type = (bi_msg_type_t)m->ans_type;
            r.i.fail_code = (bi_result_code_t)m->fail_code;
            r.i.deadline_ms = m->deadline_ms;
            if (cluster_inflight_table_put(x->table, &r) == 1)
                dropped++;
        }
        pthread_mutex_unlock(&x->tmu);
        for (unsigned k = 0; k < dropped; k++)
            metrics_event(x->workers[0].metrics, "inflight_dropped");
        if (orphans)
            RH_LOG(RH_LOG_INFO, "cluster",
                   "node %u restarted: its %zu earlier in-flight async transactions are failed at "
                   "their deadlines", node, orphans);
    }
    if (b)
        roamhub__v1__inflight_batch__free_unpacked(b, NULL);
    atomic_fetch_sub(&x->busy, 1);
}

/* One orphan on its way to a worker. */
typedef struct job {
    cluster_inflight_t *x;
    cluster_inflight_rec_t r;
} job_t;

static void job_run(worker_t *w, void *arg)
{
    job_t *j = arg;
    if (worker_self() == w) { /* not when the inbox is emptied after the worker stopped */
        char desc[160];
        snprintf(desc, sizeof desc,
                 "hub node %u holding this transaction stopped: no answer before the deadline",
                 j->r.node);
        int rc = j->x->answer(w, &j->r.i, desc);
        metrics_event(w->metrics, rc == RH_OK ? "inflight_failed_for_node"
                                              : "inflight_sender_unknown");
        RH_LOG(RH_LOG_DEBUG, "cluster",
               "in-flight transaction of node %u answered result=%d sender=%s txid=%u rc=%d",
               j->r.node, (int)j->r.i.fail_code, j->r.sender, j->r.i.sender_txid, rc);
    }
    free(j);
}

/* Module thread: which holders' orphans are this node's (cluster_view presence), then the due
 * ones to the workers. */
static void orphans_tick(cluster_inflight_t *x, cluster_inflight_rec_t *due)
{
    cluster_nodes_t cn;
    cluster_view_nodes(x->view, &cn);
    cluster_inflight_who_t who;
    memset(&who, 0, sizeof who);
    for (size_t k = 0; k < cn.n_missing; k++)
        who.missing[cn.missing[k]] = true;
    /* the lowest reporting node other than the holder answers (reporting: ascending) */
    unsigned low = cn.n_reporting ? cn.reporting[0] : 0, second = cn.n_reporting > 1
                                                                      ? cn.reporting[1]
                                                                      : 0;
    for (unsigned n = 1; n < CLUSTER_VIEW_NODES; n++)
        who.mine[n] = (n == low ? second : low) == x->node;
    uint64_t forgotten = 0;
    for (;;) {
        pthread_mutex_lock(&x->tmu);
        size_t n = cluster_inflight_table_due(x->table, rh_real_ms(), &who, due, DUE_BATCH,
                                              &forgotten);
        pthread_mutex_unlock(&x->tmu);
        for (size_t k = 0; k < n; k++) {
            job_t *j = malloc(sizeof *j);
            if (!j)
                continue;
            j->x = x;
            j->r = due[k];
            j->r.i.sender = j->r.sender;
            worker_t *w = &x->workers[atomic_fetch_add(&x->next, 1) % x->nworkers];
            if (worker_post(w, job_run, j) != RH_OK)
                free(j);
        }
        if (n < DUE_BATCH)
            break;
    }
    if (forgotten)
        RH_LOG(RH_LOG_DEBUG, "cluster", "forgot %llu in-flight entries past their deadlines",
               (unsigned long long)forgotten);
}

static void *inflight_main(void *arg)
{
    cluster_inflight_t *x = arg;
    cluster_inflight_rec_t *due = malloc(DUE_BATCH * sizeof *due);
    uint64_t next_tick = 0, next_beat = 0;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        uint64_t now = rh_mono_ms();
        if (x->qn || now >= next_beat || x->stop) {
            if (x->qn && !x->stop) { /* let the batch fill for a moment */
                pthread_mutex_unlock(&x->mu);
                usleep(CLUSTER_INFLIGHT_FLUSH_MS * 1000);
                pthread_mutex_lock(&x->mu);
            }
            queued_t *q = x->q;
            size_t n = x->qn;
            x->q = x->q2;
            x->q2 = q;
            x->qn = 0;
            bool stop = x->stop;
            pthread_mutex_unlock(&x->mu);
            if (natsConnection_Status(x->nc) != NATS_CONN_STATUS_CONNECTED) {
                if (n)
                    metrics_event(x->workers[0].metrics, "inflight_not_published");
                next_beat = rh_mono_ms() + HEARTBEAT_MS;
            } else if (publish(x, q, n)) {
                next_beat = rh_mono_ms() + HEARTBEAT_MS;
            }
            pthread_mutex_lock(&x->mu);
            if (stop)
                break;
            continue;
        }
        if (now >= next_tick) {
            pthread_mutex_unlock(&x->mu);
            if (due)
                orphans_tick(x, due);
            next_tick = rh_mono_ms() + TICK_MS;
            pthread_mutex_lock(&x->mu);
            continue;
        }
        uint64_t until = next_tick < next_beat ? next_tick : next_beat;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t wait = until - now;
        ts.tv_sec += (time_t)(wait / 1000);
        ts.tv_nsec += (long)(wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!x->qn && !x->stop)
            pthread_cond_timedwait(&x->cv, &x->mu, &ts);
    }
    pthread_mutex_unlock(&x->mu);
    free(due);
    return NULL;
}

int cluster_inflight_start(cluster_t *c, const rh_config_t *cfg, cluster_view_t *view,
                           worker_t *workers, unsigned n, cluster_inflight_answer_fn answer,
                           cluster_inflight_t **out, rh_diag_t *d)
{
    *out = NULL;
    cluster_inflight_t *x = calloc(1, sizeof *x);
    if (!x)
        return RH_ENOMEM;
    x->nc = cluster_nats(c);
    x->view = view;
    x->workers = workers;
    x->nworkers = n;
    x->answer = answer;
    x->node = cfg->cluster_node_id;
    if (RAND_bytes((unsigned char *)&x->run, sizeof x->run) != 1 || x->run == 0)
        x->run = (uint64_t)rh_real_ms() ^ ((uint64_t)getpid() << 40);
    x->hooks = (relay_hooks_t){hook_started, hook_ended, x};
    snprintf(x->subject, sizeof x->subject, "%s.inflight.%u", cfg->cluster_subject_prefix,
             x->node);
    snprintf(x->filter, sizeof x->filter, "%s.inflight.*", cfg->cluster_subject_prefix);
    pthread_mutex_init(&x->mu, NULL);
    pthread_mutex_init(&x->tmu, NULL);
    pthread_cond_init(&x->cv, NULL);
    x->q = malloc(CLUSTER_INFLIGHT_QUEUE * sizeof *x->q);
    x->q2 = malloc(CLUSTER_INFLIGHT_QUEUE * sizeof *x->q2);
    x->table = cluster_inflight_table_new(CLUSTER_INFLIGHT_MAX);
    if (!x->q || !x->q2 || !x->table) {
        cluster_inflight_free(x);
        return RH_ENOMEM;
    }
    natsStatus s = natsConnection_Subscribe(&x->sub, x->nc, x->filter, on_batch, x);
    if (s != NATS_OK) {
        cluster_inflight_free(x);
        return s == NATS_NO_MEMORY ? RH_ENOMEM
                                   : rh_diag_fail(d, RH_EIO, "cluster: subscribing to %s: %s",
                                                  x->filter, natsStatus_GetText(s));
    }
    if (pthread_create(&x->thread, NULL, inflight_main, x) != 0) {
        cluster_inflight_free(x);
        return RH_ENOMEM;
    }
    x->thread_running = true;
    *out = x;
    return RH_OK;
}

void cluster_inflight_free(cluster_inflight_t *x)
{
    if (!x)
        return;
    if (x->thread_running) { /* its last round publishes what is queued */
        pthread_mutex_lock(&x->mu);
        x->stop = true;
        pthread_cond_broadcast(&x->cv);
        pthread_mutex_unlock(&x->mu);
        pthread_join(x->thread, NULL);
    }
    if (x->sub) {
        natsSubscription_Unsubscribe(x->sub);
        natsSubscription_Destroy(x->sub);
    }
    for (int i = 0; i < 2000 && atomic_load(&x->busy); i++) /* a callback still running */
        usleep(1000);
    cluster_inflight_table_free(x->table);
    free(x->q);
    free(x->q2);
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->tmu);
    pthread_mutex_destroy(&x->mu);
    free(x);
}
