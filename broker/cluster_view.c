/* cluster_view.c — statistics and capture across cluster nodes. See cluster_view.h. */
#include "cluster_view.h"

#include "rh_log.h"
#include "rh_time.h"
#include "roamhub.pb-c.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VIEW_TICK_MS 200       /* relayed captures are sent this often */
#define ANNOUNCE_MS 1000       /* presence and capture announces */
#define RELAY_LEASE_MS 3000    /* a relayed capture not announced again for this long stops */
#define WATCHDOG_MS 2000       /* stats consumer without progress while behind: recreated */
#define STATS_MARK "cluster_stats" /* rp mark: last statistics stream sequence applied */
#define PUB_QUEUE 256          /* statistics batches waiting for JetStream (about 4 minutes of
                                  flushes while NATS is away); beyond: the oldest not shared */

typedef struct pubq {
    uint8_t *buf;
    size_t len;
    char msg_id[64];
} pubq_t;

/* The NATS callback NAME around NAME_run(v, msg): counted in v->busy while it runs, so
 * cluster_view_free can wait for a callback still running after its subscription ended. */
#define NATS_CALLBACK(name)                                                                      \
    static void name(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)        \
    {                                                                                            \
        (void)nc;                                                                                \
        (void)sub;                                                                               \
        cluster_view_t *v = arg;                                                                 \
        atomic_fetch_add(&v->busy, 1);                                                           \
        name##_run(v, msg);                                                                      \
        atomic_fetch_sub(&v->busy, 1);                                                           \
    }

typedef struct sink { /* a capture of this node that other nodes feed */
    uint64_t id;
    capture_t *cap;
    int all;
    uint32_t net_id;
    unsigned max_events;
} sink_t;

typedef struct relay { /* a capture run here for another node's capture */
    unsigned node;
    uint64_t id;
    capture_t *cap;
    uint64_t until_ms;   /* monotonic: lease end */
    unsigned max_events;
} relay_t;

struct cluster_view {
    const rh_config_t *cfg;
    rp_db_t *db;
    cluster_t *cl;
    natsConnection *nc;
    jsCtx *js;
    metrics_t *metrics;
    unsigned node;
    unsigned long long boot_id;
    char stream[160], stats_subject[128], stats_filter[128], alive_subject[128],
        alive_filter[128], want_subject[128], ev_subject[128];
    pthread_t thread;
    int thread_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;                                  /* under mu */
    natsSubscription *stats_sub;               /* view thread only */
    natsSubscription *core[4];                 /* alive, want, events, metrics: core NATS */
    int stream_ok;                             /* view thread only */
    uint64_t stats_applied;                    /* under mu: last stats stream sequence applied */
    int stats_resub;                           /* under mu: a gap seen: recreate the consumer */
    int64_t last_seen_ms[CLUSTER_VIEW_NODES];  /* under mu: real ms, 0 = never heard from */
    sink_t sinks[CAPTURE_MAX_ACTIVE];          /* under mu (cap NULL = free) */
    relay_t relays[CAPTURE_MAX_ACTIVE];        /* under mu (cap NULL = free) */
    uint64_t next_id;                          /* under mu */
    int announce_now;                          /* under mu: a capture opened */
    pubq_t pq[PUB_QUEUE];                      /* under mu: ring of pq_len from pq_head */
    size_t pq_head, pq_len;
    unsigned long long pq_seq;
    atomic_int busy;                           /* NATS callbacks running (free waits for 0) */
    cluster_metrics_fn metrics_fn;             /* set once before the subscriptions */
    void *metrics_arg;
    char metrics_subject[128];
    atomic_uint_least64_t not_shared;
};

static void seen(cluster_view_t *v, unsigned node, int64_t at_ms)
{
    if (node == 0 || node >= CLUSTER_VIEW_NODES)
        return;
    pthread_mutex_lock(&v->mu);
    if (at_ms > v->last_seen_ms[node])
        v->last_seen_ms[node] = at_ms;
    pthread_mutex_unlock(&v->mu);
}

/* ---- statistics ------------------------------------------------------------------------------ */

void cluster_view_publish_stats(cluster_view_t *v, const rp_stats_item_t *items, size_t n)
{
    if (!v || !n)
        return;
    Roamhub__V1__ClusterStatsRow *rows = calloc(n, sizeof *rows);
    Roamhub__V1__ClusterStatsRow **rp = calloc(n, sizeof *rp);
    Roamhub__V1__StatsBucket *b = calloc(n, sizeof *b);
    uint8_t *buf = NULL;
    if (!rows || !rp || !b)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const rp_stats_item_t *it = &items[i];
        roamhub__v1__stats_bucket__init(&b[i]);
        b[i].minute = it->minute;
        b[i].forwarder_net_id = it->forwarder_net_id;
        b[i].home_net_id = it->home_net_id;
        b[i].message_class = (uint32_t)it->cls;
        b[i].outcome = (uint32_t)it->outcome;
        b[i].result_code = (char *)(it->result_code ? it->result_code : "");
        b[i].count = it->count;
        b[i].latency_us_sum = it->latency_us_sum;
        b[i].n_latency_hist = RP_STATS_HIST;
        b[i].latency_hist = (uint64_t *)it->latency_hist;
        roamhub__v1__cluster_stats_row__init(&rows[i]);
        rows[i].bucket = &b[i];
        rows[i].forwarder_kind = (uint32_t)it->forwarder_kind;
        rows[i].forwarder_join_eui = it->forwarder_join_eui;
        rows[i].forwarder_protocol = (uint32_t)it->forwarder_protocol;
        rows[i].home_protocol = (uint32_t)it->home_protocol;
        rp[i] = &rows[i];
    }
    Roamhub__V1__ClusterStats m = ROAMHUB__V1__CLUSTER_STATS__INIT;
    m.node_id = v->node;
    m.boot_id = v->boot_id;
    m.n_rows = n;
    m.rows = rp;
    size_t len = roamhub__v1__cluster_stats__get_packed_size(&m);
    buf = malloc(len ? len : 1);
    if (!buf)
        goto fail;
    roamhub__v1__cluster_stats__pack(&m, buf);
    pthread_mutex_lock(&v->mu);
    if (v->pq_len == PUB_QUEUE) { /* NATS away for long: the oldest batch is not shared */
        free(v->pq[v->pq_head].buf);
        v->pq_head = (v->pq_head + 1) % PUB_QUEUE;
        v->pq_len--;
        atomic_fetch_add(&v->not_shared, 1);
        if (v->metrics)
            metrics_event(v->metrics, "cluster_stats_not_shared");
    }
    pubq_t *q = &v->pq[(v->pq_head + v->pq_len) % PUB_QUEUE];
    q->buf = buf;
    q->len = len;
    snprintf(q->msg_id, sizeof q->msg_id, "s%u-%llu-%llu", v->node, v->boot_id, ++v->pq_seq);
    v->pq_len++;
    pthread_mutex_unlock(&v->mu);
    free(b);
    free(rp);
    free(rows);
    return;
fail:
    free(buf);
    free(b);
    free(rp);
    free(rows);
    atomic_fetch_add(&v->not_shared, 1);
    if (v->metrics)
        metrics_event(v->metrics, "cluster_stats_not_shared");
}

/* View thread: publishes the queued statistics batches in order, each with its message ID
 * (a retry after a lost acknowledgement is deduplicated by JetStream); stops at the first that
 * JetStream did not take, to try again at the next tick. */
static void publish_queued(cluster_view_t *v)
{
    for (;;) {
        pthread_mutex_lock(&v->mu);
        if (!v->pq_len) {
            pthread_mutex_unlock(&v->mu);
            return;
        }
        pubq_t q = v->pq[v->pq_head];
        pthread_mutex_unlock(&v->mu);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 1000;
        po.MsgId = q.msg_id;
        jsErrCode jerr = 0;
        natsStatus s = js_Publish(NULL, v->js, v->stats_subject, q.buf, (int)q.len, &po, &jerr);
        if (s != NATS_OK)
            return;
        pthread_mutex_lock(&v->mu);
        if (v->pq_len && v->pq[v->pq_head].buf == q.buf) { /* not dropped meanwhile */
            free(q.buf);
            v->pq_head = (v->pq_head + 1) % PUB_QUEUE;
            v->pq_len--;
        }
        pthread_mutex_unlock(&v->mu);
    }
}

/* A statistics batch of some node, in stream order (consumer thread): added to this node's
 * buckets with its sequence in the same transaction, unless it is this run's own. */
static void on_stats_run(cluster_view_t *v, natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        natsMsg_Destroy(msg);
        return;
    }
    uint64_t seq = meta->Sequence.Stream;
    int64_t at_ms = meta->Timestamp / 1000000;
    jsMsgMetaData_Destroy(meta);
    pthread_mutex_lock(&v->mu);
    /* strictly in order: applied already (an old and a new consumer both delivering), or past
     * a batch that could not be added (storage full, I/O) — then the watchdog recreates the
     * consumer from the first batch missing, so none is ever skipped */
    int old = seq != v->stats_applied + 1;
    if (seq > v->stats_applied + 1)
        v->stats_resub = 1;
    pthread_mutex_unlock(&v->mu);
    if (old) {
        natsMsg_Destroy(msg);
        return;
    }
    Roamhub__V1__ClusterStats *m = roamhub__v1__cluster_stats__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    natsMsg_Destroy(msg);
    rp_stats_item_t *items = NULL;
    size_t n = 0;
    if (m && !(m->node_id == v->node && m->boot_id == v->boot_id) && m->n_rows) {
        items = calloc(m->n_rows, sizeof *items);
        for (size_t i = 0; items && i < m->n_rows; i++) {
            const Roamhub__V1__ClusterStatsRow *r = m->rows[i];
            if (!r->bucket)
                continue;
            rp_stats_item_t *it = &items[n++];
            it->minute = r->bucket->minute;
            it->forwarder_net_id = r->bucket->forwarder_net_id;
            it->home_net_id = r->bucket->home_net_id;
            it->cls = (rp_class_t)r->bucket->message_class;     /* checked by rp_stats_add */
            it->outcome = (rp_outcome_t)r->bucket->outcome;
            it->result_code = r->bucket->result_code && r->bucket->result_code[0]
                                  ? r->bucket->result_code : NULL;
            it->count = r->bucket->count;
            it->latency_us_sum = r->bucket->latency_us_sum;
            for (size_t k = 0; k < r->bucket->n_latency_hist && k < RP_STATS_HIST; k++)
                it->latency_hist[k] = r->bucket->latency_hist[k];
            it->forwarder_kind = (rp_stats_id_kind_t)r->forwarder_kind;
            it->forwarder_join_eui = r->forwarder_join_eui;
            it->forwarder_protocol = (rp_protocol_t)r->forwarder_protocol; /* checked by */
            it->home_protocol = (rp_protocol_t)r->home_protocol;           /* rp_stats_add */
        }
    }
    if (m)
        seen(v, m->node_id, at_ms);
    rh_diag_t d;
    int rc = rp_stats_add_marked(v->db, items, items ? n : 0, STATS_MARK, seq, &d);
    if (rc && rc != RH_EINVAL)
        RH_LOG(RH_LOG_WARN, "cluster", "statistics batch not added seq=%llu err=\"%s\"",
               (unsigned long long)seq, d.text);
    else if (!m)
        RH_LOG(RH_LOG_WARN, "cluster", "unreadable statistics batch skipped seq=%llu",
               (unsigned long long)seq);
    free(items);
    if (m)
        roamhub__v1__cluster_stats__free_unpacked(m, NULL);
    if (rc == RH_OK || rc == RH_EINVAL || !m) { /* else: retried, the next one is a gap */
        pthread_mutex_lock(&v->mu);
        if (seq > v->stats_applied)
            v->stats_applied = seq;
        pthread_mutex_unlock(&v->mu);
    }
}

static int ensure_stats_stream(cluster_view_t *v)
{
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, v->js, v->stream, NULL, &jerr);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND)
        return -1;
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {v->stats_filter};
    sc.Name = v->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = (int64_t)v->cfg->cluster_replicas;
    sc.MaxAge = (int64_t)v->cfg->stats_retention_days * 86400LL * 1000000000LL;
    s = js_AddStream(&si, v->js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        RH_LOG(RH_LOG_WARN, "cluster", "statistics stream not created stream=%s err=\"%s\" "
               "jserr=%d", v->stream, natsStatus_GetText(s), (int)jerr);
        return -1;
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

static void on_stats(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg);

static int stats_subscribe(cluster_view_t *v)
{
    if (v->stats_sub) {
        natsSubscription_Unsubscribe(v->stats_sub);
        natsSubscription_Destroy(v->stats_sub);
        v->stats_sub = NULL;
    }
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, v->js, v->stream, NULL, &jerr) != NATS_OK)
        return -1;
    uint64_t first = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    pthread_mutex_lock(&v->mu);
    if (first > v->stats_applied + 1) /* older batches expired (max age): nothing to wait for */
        v->stats_applied = first - 1;
    uint64_t from = v->stats_applied + 1;
    pthread_mutex_unlock(&v->mu);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = v->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    so.Config.Heartbeat = 1000LL * 1000000LL;
    natsStatus s = js_Subscribe(&v->stats_sub, v->js, v->stats_filter, on_stats, v, NULL, &so,
                                &jerr);
    if (s != NATS_OK) {
        v->stats_sub = NULL;
        return -1;
    }
    return 0;
}

/* The stream's last sequence, or 0 when it cannot be read now. */
static uint64_t stats_last(cluster_view_t *v)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, v->js, v->stream, NULL, &jerr) != NATS_OK)
        return 0;
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return last;
}

NATS_CALLBACK(on_stats)

/* ---- nodes ----------------------------------------------------------------------------------- */

static void on_alive_run(cluster_view_t *v, natsMsg *msg)
{
    const char *subj = natsMsg_GetSubject(msg), *dot = strrchr(subj, '.');
    unsigned long node = dot ? strtoul(dot + 1, NULL, 10) : 0;
    natsMsg_Destroy(msg);
    seen(v, (unsigned)node, rh_real_ms());
}

NATS_CALLBACK(on_alive)

void cluster_view_nodes(cluster_view_t *v, cluster_nodes_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t now = rh_real_ms();
    pthread_mutex_lock(&v->mu);
    for (unsigned n = 1; n < CLUSTER_VIEW_NODES; n++) {
        if (n == v->node)
            out->reporting[out->n_reporting++] = n;
        else if (v->last_seen_ms[n] && now - v->last_seen_ms[n] > CLUSTER_VIEW_MISSING_MS)
            out->missing[out->n_missing++] = n;
        else if (v->last_seen_ms[n])
            out->reporting[out->n_reporting++] = n;
    }
    pthread_mutex_unlock(&v->mu);
}

/* ---- metrics --------------------------------------------------------------------------------- */

static void on_metrics(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg);

void cluster_view_set_metrics(cluster_view_t *v, cluster_metrics_fn fn, void *arg)
{
    if (!v)
        return;
    v->metrics_arg = arg;
    v->metrics_fn = fn;
    if (!v->core[3] && natsConnection_Subscribe(&v->core[3], v->nc, v->metrics_subject,
                                                 on_metrics, v) != NATS_OK)
        v->core[3] = NULL; /* this node's metrics stay out of the others' views */
}

/* Another node asks for this node's metrics text: "NODE\n" + the text. */
static void on_metrics_run(cluster_view_t *v, natsMsg *msg)
{
    const char *reply = natsMsg_GetReply(msg);
    char *text = reply && v->metrics_fn ? v->metrics_fn(v->metrics_arg) : NULL;
    if (text) {
        size_t tl = strlen(text);
        int64_t max = natsConnection_GetMaxPayload(v->nc);
        if ((int64_t)tl + 16 > max) /* larger than NATS carries: its samples stay out */
            tl = 0;
        char *buf = malloc(tl + 16);
        if (buf) {
            int hl = snprintf(buf, 16, "%u\n", v->node);
            memcpy(buf + hl, text, tl);
            natsConnection_Publish(v->nc, reply, buf, hl + (int)tl);
            free(buf);
        }
        free(text);
    }
    natsMsg_Destroy(msg);
}

NATS_CALLBACK(on_metrics)

int cluster_view_metrics(cluster_view_t *v, unsigned timeout_ms, char **out, rh_diag_t *d)
{
    *out = NULL;
    cluster_nodes_t cn;
    cluster_view_nodes(v, &cn);
    size_t cap = CLUSTER_VIEW_NODES;
    char **texts = calloc(cap, sizeof *texts);
    unsigned *nodes = calloc(cap, sizeof *nodes);
    natsMsg **msgs = calloc(cap, sizeof *msgs);
    size_t n = 0;
    if (!texts || !nodes || !msgs)
        goto oom;
    texts[0] = v->metrics_fn ? v->metrics_fn(v->metrics_arg) : strdup("");
    if (!texts[0])
        goto oom;
    nodes[n++] = v->node;
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    if (natsInbox_Create(&inbox) == NATS_OK &&
        natsConnection_SubscribeSync(&sub, v->nc, inbox) == NATS_OK &&
        natsConnection_PublishRequest(v->nc, v->metrics_subject, inbox, "", 0) == NATS_OK) {
        uint64_t deadline = rh_mono_ms() + timeout_ms;
        while (n < cn.n_reporting && n < cap) {
            uint64_t now = rh_mono_ms();
            if (now >= deadline)
                break;
            natsMsg *m = NULL;
            if (natsSubscription_NextMsg(&m, sub, (int64_t)(deadline - now)) != NATS_OK)
                break;
            const char *data = natsMsg_GetData(m), *nl = memchr(data, '\n',
                                                                 (size_t)natsMsg_GetDataLength(m));
            unsigned node = nl ? (unsigned)strtoul(data, NULL, 10) : 0;
            int dup = 0;
            for (size_t i = 0; i < n; i++)
                dup |= nodes[i] == node;
            if (!nl || node == 0 || dup) {
                natsMsg_Destroy(m);
                continue;
            }
            msgs[n] = m;
            texts[n] = (char *)nl + 1; /* NATS messages end with a NUL the client adds */
            nodes[n++] = node;
        }
    }
    if (sub) {
        natsSubscription_Unsubscribe(sub);
        natsSubscription_Destroy(sub);
    }
    natsInbox_Destroy(inbox);
    char *merged = metrics_text_merge((const char *const *)texts, nodes, n);
    free(texts[0]);
    for (size_t i = 1; i < n; i++)
        natsMsg_Destroy(msgs[i]);
    if (!merged)
        goto oom_freed;
    /* every node known: up when its text is in, down (missing or late) otherwise */
    size_t ml = strlen(merged), room = ml + 256 + 40 * (cn.n_reporting + cn.n_missing + n);
    char *all = realloc(merged, room);
    if (!all) {
        free(merged);
        goto oom_freed;
    }
    size_t len = ml;
    len += (size_t)snprintf(all + len, room - len,
                            "# HELP roamhub_cluster_node_up Whether the cluster node answered "
                            "this view's request in time (1) or not (0).\n"
                            "# TYPE roamhub_cluster_node_up gauge\n");
    for (unsigned id = 1; id < CLUSTER_VIEW_NODES; id++) {
        int in = 0, known = 0;
        for (size_t i = 0; i < n; i++)
            in |= nodes[i] == id;
        for (size_t i = 0; i < cn.n_reporting; i++)
            known |= cn.reporting[i] == id;
        for (size_t i = 0; i < cn.n_missing; i++)
            known |= cn.missing[i] == id;
        if (in || known)
            len += (size_t)snprintf(all + len, room - len, "roamhub_cluster_node_up{node=\"%u\"} %d\n",
                                    id, in);
    }
    free(texts);
    free(nodes);
    free(msgs);
    *out = all;
    return RH_OK;
oom:
    if (texts)
        free(texts[0]);
oom_freed:
    free(texts);
    free(nodes);
    free(msgs);
    return rh_diag_fail(d, RH_ENOMEM, "cluster metrics: out of memory");
}

/* ---- capture --------------------------------------------------------------------------------- */

int cluster_view_capture_open(cluster_view_t *v, capture_t *cap)
{
    if (!v)
        return RH_OK;
    int rc = RH_EAGAIN;
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++) {
        if (!v->sinks[i].cap) {
            sink_t *s = &v->sinks[i];
            s->cap = cap;
            s->id = ++v->next_id;
            capture_filter(cap, &s->all, &s->net_id);
            s->max_events = capture_capacity(cap);
            rc = RH_OK;
            break;
        }
    }
    v->announce_now = 1;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    return rc;
}

void cluster_view_capture_close(cluster_view_t *v, capture_t *cap)
{
    if (!v)
        return;
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++)
        if (v->sinks[i].cap == cap)
            memset(&v->sinks[i], 0, sizeof v->sinks[i]);
    pthread_mutex_unlock(&v->mu);
}

/* Another node's capture announce: start or renew the capture relayed for it. */
static void on_want_run(cluster_view_t *v, natsMsg *msg)
{
    Roamhub__V1__ClusterCaptureWant *w = roamhub__v1__cluster_capture_want__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    natsMsg_Destroy(msg);
    if (!w)
        return;
    unsigned node = w->node_id, max = w->max_events;
    if (node == v->node || node == 0 || node >= CLUSTER_VIEW_NODES || max == 0 ||
        max > CAPTURE_MAX_EVENTS) {
        roamhub__v1__cluster_capture_want__free_unpacked(w, NULL);
        return;
    }
    seen(v, node, rh_real_ms());
    uint64_t until = rh_mono_ms() + RELAY_LEASE_MS;
    pthread_mutex_lock(&v->mu);
    relay_t *free_slot = NULL, *found = NULL;
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++) {
        relay_t *r = &v->relays[i];
        if (r->cap && r->node == node && r->id == w->capture_id)
            found = r;
        else if (!r->cap && !free_slot)
            free_slot = r;
    }
    if (found) {
        found->until_ms = until;
    } else if (free_slot) {
        capture_t *cap = NULL;
        if (capture_start(w->all, w->net_id, max, &cap) == RH_OK) {
            free_slot->cap = cap;
            free_slot->node = node;
            free_slot->id = w->capture_id;
            free_slot->until_ms = until;
            free_slot->max_events = max;
        }
    }
    pthread_mutex_unlock(&v->mu);
    roamhub__v1__cluster_capture_want__free_unpacked(w, NULL);
}

NATS_CALLBACK(on_want)

/* Events another node relayed for one of this node's captures. */
static void on_events_run(cluster_view_t *v, natsMsg *msg)
{
    Roamhub__V1__ClusterCaptureEvents *m = roamhub__v1__cluster_capture_events__unpack(
        NULL, (size_t)natsMsg_GetDataLength(msg), (const uint8_t *)natsMsg_GetData(msg));
    natsMsg_Destroy(msg);
    if (!m)
        return;
    size_t n = m->n_events < CAPTURE_MAX_EVENTS ? m->n_events : CAPTURE_MAX_EVENTS;
    capture_event_t *ev = n ? calloc(n, sizeof *ev) : NULL;
    for (size_t i = 0; ev && i < n; i++) {
        const Roamhub__V1__ClusterCaptureEvent *e = m->events[i];
        ev[i].time_ms = e->time_ms;
        ev[i].worker = e->worker;
        ev[i].fwd_net_id = e->forwarder_net_id;
        ev[i].home_net_id = e->home_net_id;
        ev[i].msg_type = e->message_type < BI_MT_COUNT ? (bi_msg_type_t)e->message_type
                                                         : BI_MT_UNKNOWN;
        ev[i].transaction_id = e->transaction_id;
        ev[i].cls = e->message_class < RP_CLASS_COUNT ? (rp_class_t)e->message_class : RP_CLASS_OTHER;
        ev[i].outcome = e->outcome < RP_OUT_COUNT ? (rp_outcome_t)e->outcome : RP_OUT_COUNT - 1;
        snprintf(ev[i].result_code, sizeof ev[i].result_code, "%s",
                 e->result_code ? e->result_code : "");
        ev[i].latency_us = e->latency_us;
        snprintf(ev[i].sender, sizeof ev[i].sender, "%s", e->sender ? e->sender : "");
        ev[i].node = m->node_id;
    }
    pthread_mutex_lock(&v->mu); /* the sink cannot be closed (and its capture stopped) meanwhile */
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++)
        if (v->sinks[i].cap && v->sinks[i].id == m->capture_id)
            capture_inject(v->sinks[i].cap, ev, ev ? n : 0, m->dropped);
    pthread_mutex_unlock(&v->mu);
    seen(v, m->node_id, rh_real_ms());
    free(ev);
    roamhub__v1__cluster_capture_events__free_unpacked(m, NULL);
}

NATS_CALLBACK(on_events)

/* View thread: sends what each relayed capture caught; stops those whose lease ended. */
static void relay_tick(cluster_view_t *v, capture_event_t *buf, size_t cap,
                       Roamhub__V1__ClusterCaptureEvent *pe, Roamhub__V1__ClusterCaptureEvent **pp)
{
    uint64_t now = rh_mono_ms();
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++) {
        pthread_mutex_lock(&v->mu);
        relay_t r = v->relays[i];
        int expired = r.cap && now > r.until_ms;
        if (expired)
            memset(&v->relays[i], 0, sizeof v->relays[i]);
        pthread_mutex_unlock(&v->mu);
        if (!r.cap)
            continue;
        if (expired) { /* only this thread takes from or stops relayed captures */
            capture_stop(r.cap);
            continue;
        }
        size_t n = capture_take(r.cap, buf, cap);
        uint64_t dropped = capture_dropped(r.cap);
        if (!n)
            continue;
        for (size_t k = 0; k < n; k++) {
            roamhub__v1__cluster_capture_event__init(&pe[k]);
            pe[k].time_ms = buf[k].time_ms;
            pe[k].worker = buf[k].worker;
            pe[k].forwarder_net_id = buf[k].fwd_net_id;
            pe[k].home_net_id = buf[k].home_net_id;
            pe[k].message_type = (uint32_t)buf[k].msg_type;
            pe[k].transaction_id = buf[k].transaction_id;
            pe[k].message_class = (uint32_t)buf[k].cls;
            pe[k].outcome = (uint32_t)buf[k].outcome;
            pe[k].result_code = buf[k].result_code;
            pe[k].latency_us = buf[k].latency_us;
            pe[k].sender = buf[k].sender;
            pp[k] = &pe[k];
        }
        Roamhub__V1__ClusterCaptureEvents m = ROAMHUB__V1__CLUSTER_CAPTURE_EVENTS__INIT;
        m.node_id = v->node;
        m.capture_id = r.id;
        m.n_events = n;
        m.events = pp;
        m.dropped = dropped;
        size_t len = roamhub__v1__cluster_capture_events__get_packed_size(&m);
        uint8_t *out = malloc(len ? len : 1);
        if (!out)
            continue;
        roamhub__v1__cluster_capture_events__pack(&m, out);
        char subj[160];
        snprintf(subj, sizeof subj, "%s.%u", v->ev_subject, r.node);
        natsConnection_Publish(v->nc, subj, out, (int)len); /* lost when NATS is: a capture */
        free(out);
    }
}

/* View thread: presence and this node's capture announces. */
static void announce(cluster_view_t *v)
{
    natsConnection_Publish(v->nc, v->alive_subject, "", 0);
    sink_t s[CAPTURE_MAX_ACTIVE];
    pthread_mutex_lock(&v->mu);
    memcpy(s, v->sinks, sizeof s);
    pthread_mutex_unlock(&v->mu);
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++) {
        if (!s[i].cap)
            continue;
        Roamhub__V1__ClusterCaptureWant w = ROAMHUB__V1__CLUSTER_CAPTURE_WANT__INIT;
        w.node_id = v->node;
        w.capture_id = s[i].id;
        w.all = s[i].all != 0;
        w.net_id = s[i].net_id;
        w.max_events = s[i].max_events;
        uint8_t buf[64];
        size_t len = roamhub__v1__cluster_capture_want__pack(&w, buf);
        natsConnection_Publish(v->nc, v->want_subject, buf, (int)len);
    }
}

static void *view_main(void *arg)
{
    cluster_view_t *v = arg;
    /* the largest batch a relayed capture sends: its ring */
    capture_event_t *buf = malloc(CAPTURE_MAX_EVENTS * sizeof *buf);
    Roamhub__V1__ClusterCaptureEvent *pe = malloc(CAPTURE_MAX_EVENTS * sizeof *pe);
    Roamhub__V1__ClusterCaptureEvent **pp = malloc(CAPTURE_MAX_EVENTS * sizeof *pp);
    uint64_t next_announce = 0, next_watch = 0, watch_applied = 0;
    int was_connected = 0;
    pthread_mutex_lock(&v->mu);
    while (!v->stop) {
        pthread_mutex_unlock(&v->mu);
        uint64_t now = rh_mono_ms();
        int connected = natsConnection_Status(v->nc) == NATS_CONN_STATUS_CONNECTED;
        if (connected && (!v->stream_ok || !was_connected)) {
            v->stream_ok = ensure_stats_stream(v) == 0 && stats_subscribe(v) == 0;
            next_watch = now + WATCHDOG_MS;
        }
        was_connected = connected && v->stream_ok;
        if (connected && now >= next_announce) {
            announce(v);
            next_announce = now + ANNOUNCE_MS;
        }
        if (connected && v->stream_ok && now >= next_watch) {
            /* behind the stream and no progress since the last look: the consumer went with
             * a NATS server (ordered consumers are not replicated), a new one from here */
            pthread_mutex_lock(&v->mu);
            uint64_t applied = v->stats_applied;
            int stalled = v->stats_resub;
            v->stats_resub = 0;
            pthread_mutex_unlock(&v->mu);
            uint64_t last = stats_last(v);
            if (stalled || (last > applied && applied == watch_applied))
                v->stream_ok = stats_subscribe(v) == 0;
            watch_applied = applied;
            next_watch = now + WATCHDOG_MS;
        }
        if (buf && pe && pp)
            relay_tick(v, buf, CAPTURE_MAX_EVENTS, pe, pp);
        if (connected && v->stream_ok)
            publish_queued(v);
        pthread_mutex_lock(&v->mu);
        if (v->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)VIEW_TICK_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (!v->announce_now)
            pthread_cond_timedwait(&v->cv, &v->mu, &ts);
        if (v->announce_now) /* a capture opened: announce it at once */
            next_announce = 0;
        v->announce_now = 0;
    }
    pthread_mutex_unlock(&v->mu);
    free(buf);
    free(pe);
    free(pp);
    return NULL;
}

int cluster_view_start(cluster_t *c, const rh_config_t *cfg, rp_db_t *db, metrics_t *metrics,
                       cluster_view_t **out, rh_diag_t *d)
{
    *out = NULL;
    cluster_view_t *v = calloc(1, sizeof *v);
    if (!v)
        return RH_ENOMEM;
    v->cfg = cfg;
    v->db = db;
    v->cl = c;
    v->nc = cluster_nats(c);
    v->metrics = metrics;
    v->node = cfg->cluster_node_id;
    v->boot_id = (unsigned long long)rh_real_ms();
    const char *p = cfg->cluster_subject_prefix;
    snprintf(v->stream, sizeof v->stream, "%s_STATS", cfg->cluster_stream);
    snprintf(v->stats_subject, sizeof v->stats_subject, "%s.stats.%u", p, v->node);
    snprintf(v->stats_filter, sizeof v->stats_filter, "%s.stats.*", p);
    snprintf(v->alive_subject, sizeof v->alive_subject, "%s.alive.%u", p, v->node);
    snprintf(v->alive_filter, sizeof v->alive_filter, "%s.alive.*", p);
    snprintf(v->want_subject, sizeof v->want_subject, "%s.capture.want", p);
    snprintf(v->ev_subject, sizeof v->ev_subject, "%s.capture.ev", p);
    snprintf(v->metrics_subject, sizeof v->metrics_subject, "%s.metrics", p);
    rh_diag_t md;
    if (rp_get_mark(db, STATS_MARK, &v->stats_applied, NULL, &md) != RH_OK) {
        free(v);
        return rh_diag_fail(d, RH_EIO, "cluster statistics: %s", md.text);
    }
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 1000;
    if (natsConnection_JetStream(&v->js, v->nc, &jo) != NATS_OK) {
        cluster_view_free(v);
        return RH_ENOMEM;
    }
    char mine[160];
    snprintf(mine, sizeof mine, "%s.%u", v->ev_subject, v->node);
    /* core subscriptions are re-established by the client after a reconnection */
    if (natsConnection_Subscribe(&v->core[0], v->nc, v->alive_filter, on_alive, v) != NATS_OK ||
        natsConnection_Subscribe(&v->core[1], v->nc, v->want_subject, on_want, v) != NATS_OK ||
        natsConnection_Subscribe(&v->core[2], v->nc, mine, on_events, v) != NATS_OK) {
        cluster_view_free(v);
        return rh_diag_fail(d, RH_ENOMEM, "cluster view: cannot subscribe");
    }
    if (pthread_create(&v->thread, NULL, view_main, v) != 0) {
        cluster_view_free(v);
        return RH_ENOMEM;
    }
    v->thread_running = 1;
    *out = v;
    return RH_OK;
}

void cluster_view_stop(cluster_view_t *v)
{
    if (!v || !v->thread_running)
        return;
    pthread_mutex_lock(&v->mu);
    v->stop = 1;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    pthread_join(v->thread, NULL);
    v->thread_running = 0;
    if (v->stream_ok && natsConnection_Status(v->nc) == NATS_CONN_STATUS_CONNECTED)
        publish_queued(v); /* the last flush (stops at the first failure) */
}

void cluster_view_free(cluster_view_t *v)
{
    if (!v)
        return;
    cluster_view_stop(v);
    for (size_t i = 0; i < 4; i++)
        if (v->core[i]) {
            natsSubscription_Unsubscribe(v->core[i]);
            natsSubscription_Destroy(v->core[i]);
        }
    if (v->stats_sub) {
        natsSubscription_Unsubscribe(v->stats_sub);
        natsSubscription_Destroy(v->stats_sub);
    }
    for (int i = 0; i < 2000 && atomic_load(&v->busy); i++) /* a callback still running */
        usleep(1000);
    for (size_t i = 0; i < CAPTURE_MAX_ACTIVE; i++)
        capture_stop(v->relays[i].cap);
    for (; v->pq_len; v->pq_len--, v->pq_head = (v->pq_head + 1) % PUB_QUEUE)
        free(v->pq[v->pq_head].buf);
    jsCtx_Destroy(v->js);
    pthread_cond_destroy(&v->cv);
    pthread_mutex_destroy(&v->mu);
    free(v);
}
