/* cluster.c — NATS connection and JetStream stream set-up of a cluster node. See cluster.h. */
#include "cluster.h"

#include "cluster_snapshot.h"

#include "rh_fs.h"
#include "rh_log.h"
#include "rh_time.h"

#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLUSTER_WATCH_MS 250 /* how often the watch thread looks at the connection */
#define CLUSTER_PROBE_TURNS 4 /* every 4th turn (1 s): is the table consumer making progress */
#define JS_ATTEMPT_MS 1000   /* one JetStream request's wait; retried while time remains */
#define OUTCOMES 256         /* outcomes of this node's last applied writes, for their writers */
#define APPLY_QUEUE 8192     /* stream messages delivered and not yet applied (bounded memory) */
#define APPLY_BATCH 4096     /* at most this many changes per LMDB write transaction */
#define CLUSTER_MARK "cluster_applied" /* rp mark: last stream sequence applied (same commit) */

typedef struct queued {
    natsMsg *msg;
    uint64_t seq;
} queued_t;

typedef struct outcome {
    uint64_t seq;
    int rc, deleted;
    rh_diag_t diag;
} outcome_t;

struct cluster {
    const rh_config_t *cfg;
    rp_db_t *db;
    table_registry_fn reg;
    void *reg_arg;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub; /* ordered consumer applying the stream (watch thread creates it) */
    char subject[96];      /* PREFIX.table */
    char seq_path[1024];   /* DB_PATH/cluster-applied-seq: where versions before the LMDB mark
                              kept the last applied sequence (read once when upgrading) */
    pthread_t thread;
    int thread_running;
    pthread_mutex_t mu;
    pthread_t applier;        /* apply_main: the only thread writing the stream to LMDB */
    pthread_mutex_t apply_mu; /* held by the applier per run, and while a snapshot replaces the
                                 table (the stream trimmed past this node) */
    int applier_running;
    pthread_mutex_t qmu;      /* the queue from the consumer's callback to the applier */
    pthread_cond_t qwork, qspace;
    queued_t queue[APPLY_QUEUE]; /* under qmu: ring of qlen messages from qhead */
    size_t qhead, qlen;
    int qstop;                /* under qmu */
    uint64_t delivered;       /* under qmu: highest stream sequence the consumer delivered */
    int seq_file_gone;        /* applier only: the legacy sequence file was removed */
    int snap_checked;         /* watch thread: an empty node looked for a snapshot */
    pthread_t snap_thread;    /* snap_main: cluster.snapshot_every > 0 only */
    int snap_running;
    atomic_int resub;         /* 1: recreate the consumer (reconnected, heartbeats missed, a
                                 stored write not applied in time, or stalled) */
    pthread_cond_t cv;      /* watch thread sleeps; writers wait for their sequence */
    int stop;               /* under mu */
    int closed;             /* cluster_close ran (main thread) */
    cluster_status_t st;    /* under mu */
    uint64_t applied;       /* under mu: last stream sequence applied to the local LMDB */
    uint64_t target;        /* under mu: stream's last sequence at subscription (catch-up goal) */
    outcome_t outcomes[OUTCOMES]; /* under mu, by seq % OUTCOMES */
    unsigned long long writes;    /* under mu: admin writes taken (message IDs) */
    unsigned long long boot_id;   /* start time, ms: message IDs unique across restarts */
};

static void set_state(cluster_t *c, int connected, int stream_ready, const char *reason)
{
    pthread_mutex_lock(&c->mu);
    int was_connected = c->st.connected, was_ready = c->st.stream_ready;
    c->st.connected = connected;
    if (stream_ready)
        c->st.stream_ready = 1;
    if (c->st.stream_ready && c->sub && c->applied >= c->target)
        c->st.ready = 1;
    c->st.applied = c->applied;
    snprintf(c->st.reason, sizeof c->st.reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&c->mu);
    if (was_connected != connected && connected)
        RH_LOG(RH_LOG_INFO, "cluster", "nats connected");
    else if (was_connected != connected)
        RH_LOG(RH_LOG_WARN, "cluster", "nats disconnected reason=\"%s\"", reason ? reason : "");
    if (!was_ready && stream_ready)
        RH_LOG(RH_LOG_INFO, "cluster", "stream ready stream=%s subject=%s replicas=%u",
               c->cfg->cluster_stream, c->subject, c->cfg->cluster_replicas);
}

/* Finds the stream or creates it. A stream that exists with other subjects or replicas is an
 * operator's decision and is not changed; it is reported. */
static int ensure_stream(cluster_t *c, char *why, size_t cap)
{
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, c->js, c->cfg->cluster_stream, NULL, &jerr);
    if (s == NATS_OK) {
        int replicas = (int)si->Config->Replicas;
        jsStreamInfo_Destroy(si);
        if (replicas != (int)c->cfg->cluster_replicas)
            RH_LOG(RH_LOG_WARN, "cluster", "stream exists with other replicas stream=%s "
                   "replicas=%d configured=%u", c->cfg->cluster_stream, replicas,
                   c->cfg->cluster_replicas);
        return 0;
    }
    if (s != NATS_NOT_FOUND) {
        snprintf(why, cap, "stream %s: %s (JetStream error %d)", c->cfg->cluster_stream,
                 natsStatus_GetText(s), (int)jerr);
        return -1;
    }
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {c->subject};
    sc.Name = c->cfg->cluster_stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Replicas = (int64_t)c->cfg->cluster_replicas;
    s = js_AddStream(&si, c->js, &sc, NULL, &jerr);
    if (s != NATS_OK) {
        snprintf(why, cap, "creating stream %s (replicas %u): %s (JetStream error %d)",
                 c->cfg->cluster_stream, c->cfg->cluster_replicas, natsStatus_GetText(s),
                 (int)jerr);
        return -1;
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

static uint64_t seq_load(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    rh_diag_t d;
    if (rh_read_file(path, 64, &text, &len, &d) != RH_OK)
        return 0;
    uint64_t v = strtoull(text, NULL, 10);
    free(text);
    return v;
}

/* The ordered consumer's callback (one NATS thread, stream order): queues the message for the
 * applier thread, waiting while the queue is full (back-pressure on the consumer: JetStream's
 * flow control then holds the rest on the server). */
static void on_change(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg)
{
    (void)nc;
    (void)sub;
    cluster_t *c = arg;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        natsMsg_Destroy(msg);
        return; /* not a stream message (flow control is handled by the client) */
    }
    uint64_t seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    pthread_mutex_lock(&c->qmu);
    while (c->qlen == APPLY_QUEUE && !c->qstop)
        pthread_cond_wait(&c->qspace, &c->qmu);
    if (c->qstop) {
        pthread_mutex_unlock(&c->qmu);
        natsMsg_Destroy(msg);
        return;
    }
    queued_t *q = &c->queue[(c->qhead + c->qlen) % APPLY_QUEUE];
    q->msg = msg;
    q->seq = seq;
    c->qlen++;
    if (seq > c->delivered)
        c->delivered = seq;
    pthread_cond_signal(&c->qwork);
    pthread_mutex_unlock(&c->qmu);
}

/* One change of a batch: the message unpacked (or why it could not be) and its outcome. */
typedef struct pending_change {
    uint64_t seq;
    int unpacked;
    table_change_owned_t ch;
    outcome_t o;
} pending_change_t;

/* Publishes the outcomes of changes [0, n) of `b` (applied and committed) and the new applied
 * sequence; wakes the writers waiting for them; reports readiness once caught up. */
static void publish_applied(cluster_t *c, pending_change_t *b, size_t n)
{
    if (!n)
        return;
    uint64_t seq = b[n - 1].seq;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++)
        if (b[i].unpacked && b[i].ch.node_id == c->cfg->cluster_node_id)
            c->outcomes[b[i].seq % OUTCOMES] = b[i].o; /* only this node's writers wait */
    c->applied = seq;
    c->st.applied = seq;
    if (c->st.stream_ready && c->sub && c->applied >= c->target && !c->st.ready) {
        c->st.ready = 1;
        RH_LOG(RH_LOG_INFO, "cluster", "caught up seq=%llu", (unsigned long long)seq);
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (!c->seq_file_gone) { /* the sequence lives in LMDB now (older versions: this file) */
        unlink(c->seq_path);
        c->seq_file_gone = 1;
    }
}

static void log_apply_error(uint64_t seq, const outcome_t *o)
{
    if (o->rc == RH_EIO || o->rc == RH_EFULL || o->rc == RH_ENOMEM)
        RH_LOG(RH_LOG_ERR, "cluster", "change not applied seq=%llu err=\"%s\"",
               (unsigned long long)seq, o->diag.text);
}

/* Applies one change alone — a Member/Endpoint record (the registry hook runs after its own
 * commit), or every change of a batch whose transaction failed — then records its sequence in
 * a transaction of its own. A crash between the two commits applies that one change again at
 * start, which leaves the table as it was (a put, create, update or delete applied twice in a
 * row equals once; the registry is rebuilt from LMDB at start). */
static void apply_one(cluster_t *c, pending_change_t *p)
{
    if (p->unpacked) {
        p->o.rc = table_change_apply(c->db, &p->ch.ch, c->reg, c->reg_arg, &p->o.deleted,
                                     &p->o.diag);
        log_apply_error(p->seq, &p->o);
    }
    rp_txn_t *t = NULL;
    rh_diag_t d;
    int rc = rp_txn_begin(c->db, "cluster", 0, &t, &d);
    if (rc == RH_OK)
        rc = rp_txn_set_mark(t, CLUSTER_MARK, p->seq, &d);
    if (rc == RH_OK)
        rc = rp_txn_commit(t, &d);
    else if (t)
        rp_txn_abort(t);
    if (rc)
        RH_LOG(RH_LOG_ERR, "cluster", "cannot record the applied sequence seq=%llu err=\"%s\"",
               (unsigned long long)p->seq, d.text);
}

/* Applies b[0..n) (changes without registry hook, one actor) in one LMDB write transaction
 * together with the last one's sequence: a crash keeps all of them and the sequence, or none.
 * When the transaction fails (storage full, I/O), each change is applied alone instead, so the
 * outcome of every change is decided as it would have been one at a time. */
static void apply_group(cluster_t *c, pending_change_t *b, size_t n)
{
    if (!n)
        return;
    rp_txn_t *t = NULL;
    rh_diag_t d;
    int rc = rp_txn_begin(c->db, b[0].ch.ch.actor, 0, &t, &d);
    for (size_t i = 0; i < n && rc == RH_OK; i++) {
        b[i].o.rc = table_change_apply_txn(t, &b[i].ch.ch, &b[i].o.deleted, &b[i].o.diag);
        if (b[i].o.rc != RH_OK && b[i].o.rc != RH_EINVAL && b[i].o.rc != RH_EEXIST &&
            b[i].o.rc != RH_ENOTFOUND)
            rc = b[i].o.rc;
    }
    if (rc == RH_OK)
        rc = rp_txn_set_mark(t, CLUSTER_MARK, b[n - 1].seq, &d);
    if (rc == RH_OK) {
        rc = rp_txn_commit(t, &d);
        t = NULL;
    }
    if (t)
        rp_txn_abort(t);
    if (rc == RH_OK)
        return;
    RH_LOG(RH_LOG_WARN, "cluster", "batch of %zu changes not applied, one at a time instead "
           "err=\"%s\"", n, d.text);
    for (size_t i = 0; i < n; i++) {
        memset(&b[i].o, 0, sizeof b[i].o);
        b[i].o.seq = b[i].seq;
        apply_one(c, &b[i]);
    }
}

/* Applies a run of queued messages in stream order: consecutive changes without registry hook
 * and of the same actor share one LMDB transaction (catch-up applies thousands per commit);
 * a Member/Endpoint change is applied alone. Only sequences past the applied one are applied:
 * an old and a recreated consumer delivering at once cannot repeat or reorder changes. */
static void apply_run(cluster_t *c, queued_t *q, size_t n, pending_change_t *b)
{
    size_t nb = 0, group = 0; /* b[group..nb) waits for apply_group */
    pthread_mutex_lock(&c->mu);
    uint64_t applied = c->applied;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        natsMsg *msg = q[i].msg;
        uint64_t seq = q[i].seq;
        if (seq <= applied) {
            natsMsg_Destroy(msg);
            continue;
        }
        if (seq != applied + 1)
            RH_LOG(RH_LOG_WARN, "cluster", "stream sequence gap (messages removed from the "
                   "stream?) applied=%llu next=%llu", (unsigned long long)applied,
                   (unsigned long long)seq);
        applied = seq;
        pending_change_t *p = &b[nb];
        memset(p, 0, sizeof *p);
        p->seq = p->o.seq = seq;
        int rc = table_change_unpack((const uint8_t *)natsMsg_GetData(msg),
                                     (size_t)natsMsg_GetDataLength(msg), &p->ch, &p->o.diag);
        natsMsg_Destroy(msg);
        p->unpacked = rc == RH_OK;
        if (!p->unpacked) {
            p->o.rc = rc;
            RH_LOG(RH_LOG_WARN, "cluster", "unreadable change skipped seq=%llu err=\"%s\"",
                   (unsigned long long)seq, p->o.diag.text);
        }
        int alone = p->unpacked && table_change_needs_registry(&p->ch.ch);
        int other_actor = p->unpacked && nb > group && b[group].unpacked &&
                          strcmp(b[group].ch.ch.actor, p->ch.ch.actor);
        if (nb > group && (alone || other_actor || !p->unpacked)) {
            apply_group(c, b + group, nb - group);
            publish_applied(c, b + group, nb - group);
            group = nb;
        }
        nb++;
        if (alone || !p->unpacked) {
            apply_one(c, p);
            publish_applied(c, p, 1);
            group = nb;
        }
    }
    if (nb > group) {
        apply_group(c, b + group, nb - group);
        publish_applied(c, b + group, nb - group);
    }
    for (size_t i = 0; i < nb; i++)
        if (b[i].unpacked)
            table_change_release(&b[i].ch);
}

/* The applier thread: takes everything queued (up to APPLY_BATCH) and applies it. */
static void *apply_main(void *arg)
{
    cluster_t *c = arg;
    queued_t *q = malloc(APPLY_BATCH * sizeof *q);
    pending_change_t *b = malloc(APPLY_BATCH * sizeof *b);
    if (!q || !b) {
        RH_LOG(RH_LOG_ERR, "cluster", "applier: out of memory");
        free(q);
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&c->qmu);
    for (;;) {
        while (!c->qlen && !c->qstop)
            pthread_cond_wait(&c->qwork, &c->qmu);
        if (c->qstop)
            break;
        size_t n = 0;
        while (c->qlen && n < APPLY_BATCH) {
            q[n++] = c->queue[c->qhead];
            c->qhead = (c->qhead + 1) % APPLY_QUEUE;
            c->qlen--;
        }
        pthread_cond_broadcast(&c->qspace);
        pthread_mutex_unlock(&c->qmu);
        pthread_mutex_lock(&c->apply_mu);
        apply_run(c, q, n, b);
        pthread_mutex_unlock(&c->apply_mu);
        pthread_mutex_lock(&c->qmu);
    }
    pthread_mutex_unlock(&c->qmu);
    free(q);
    free(b);
    return NULL;
}

/* The stream's last sequence now (the catch-up goal) and an ordered consumer from the first
 * change not applied here. */
static int subscribe(cluster_t *c, char *why, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    natsSubscription *old = c->sub;
    c->sub = NULL;
    pthread_mutex_unlock(&c->mu);
    if (old) { /* its consumer may be gone with a NATS server: a new one from what is applied */
        natsSubscription_Unsubscribe(old);
        natsSubscription_Destroy(old);
    }
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, c->js, c->cfg->cluster_stream, NULL, &jerr);
    if (s != NATS_OK) {
        snprintf(why, cap, "stream %s: %s", c->cfg->cluster_stream, natsStatus_GetText(s));
        return -1;
    }
    uint64_t last = si->State.LastSeq, first = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    pthread_mutex_lock(&c->mu);
    uint64_t from = c->applied + 1;
    c->target = last;
    pthread_mutex_unlock(&c->mu);
    if (first > 1 && from < first) {
        /* the changes this node misses were trimmed (the writer of snapshots keeps only
         * snapshot_every before its latest): the table becomes the snapshot's */
        uint64_t seq = 0;
        rh_diag_t d;
        pthread_mutex_lock(&c->apply_mu);
        int rc = cluster_snapshot_load(c->nc, c->js, c->cfg, c->db, CLUSTER_MARK, 1, c->reg,
                                       c->reg_arg, &seq, &d);
        if (rc == RH_OK && seq + 1 >= first) {
            pthread_mutex_lock(&c->mu);
            c->applied = seq;
            c->st.applied = seq;
            from = seq + 1;
            pthread_mutex_unlock(&c->mu);
        }
        pthread_mutex_unlock(&c->apply_mu);
        if (rc) {
            snprintf(why, cap, "the stream starts at %llu, past this node's %llu: snapshot: "
                     "%.100s", (unsigned long long)first, (unsigned long long)(from - 1), d.text);
            return -1;
        }
        if (seq + 1 < first) {
            snprintf(why, cap, "the stream starts at %llu, past this node's %llu, and no "
                     "snapshot covers the gap (latest: %llu)", (unsigned long long)first,
                     (unsigned long long)(from - 1), (unsigned long long)seq);
            return -1;
        }
        RH_LOG(RH_LOG_INFO, "cluster", "table replaced by the snapshot (stream trimmed) seq=%llu "
               "first=%llu", (unsigned long long)seq, (unsigned long long)first);
    }
    if (from > last + 1)
        RH_LOG(RH_LOG_WARN, "cluster", "applied sequence past the stream's end (stream "
               "recreated?) applied=%llu last=%llu", (unsigned long long)(from - 1),
               (unsigned long long)last);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = c->cfg->cluster_stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from;
    /* heartbeats let the client notice a consumer lost with its NATS server and recreate it
     * from the last sequence it delivered (ordered consumer): 1 s bounds that stall */
    so.Config.Heartbeat = 1000LL * 1000000LL;
    natsSubscription *sub = NULL;
    s = js_Subscribe(&sub, c->js, c->subject, on_change, c, NULL, &so, &jerr);
    if (s != NATS_OK) {
        snprintf(why, cap, "subscribing to %s: %s (JetStream error %d)", c->subject,
                 natsStatus_GetText(s), (int)jerr);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    c->sub = sub;
    pthread_mutex_unlock(&c->mu);
    RH_LOG(RH_LOG_INFO, "cluster", "applying the stream from seq=%llu last=%llu",
           (unsigned long long)from, (unsigned long long)last);
    return 0;
}

/* A node with nothing applied (empty database) loads the latest table snapshot, if any, and
 * then applies only the stream past it. -1 (retry) when the snapshot cannot be read now; a
 * snapshot that is not valid is skipped (the whole stream is applied instead). */
static int load_snapshot(cluster_t *c, char *why, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    int skip = c->snap_checked || c->applied > 0;
    pthread_mutex_unlock(&c->mu);
    if (skip)
        return 0;
    uint64_t seq = 0;
    rh_diag_t d;
    int rc = cluster_snapshot_load(c->nc, c->js, c->cfg, c->db, CLUSTER_MARK, 0, c->reg,
                                   c->reg_arg, &seq, &d);
    if (rc == RH_EAGAIN) {
        snprintf(why, cap, "loading the table snapshot: %.150s", d.text);
        return -1;
    }
    if (rc)
        RH_LOG(RH_LOG_WARN, "cluster", "table snapshot not loaded, applying the whole stream "
               "err=\"%s\"", d.text);
    pthread_mutex_lock(&c->mu);
    if (rc == RH_OK && seq > c->applied) {
        c->applied = seq;
        c->st.applied = seq;
    }
    c->snap_checked = 1;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* After a snapshot at `seq`: the stream keeps the snapshot_every changes before it and what
 * follows (a node that far behind still catches up from the stream; one further behind loads
 * the snapshot over its table, see subscribe). */
static void trim_stream(cluster_t *c, uint64_t seq)
{
    uint64_t every = c->cfg->cluster_snapshot_every;
    if (seq + 1 <= every)
        return;
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Sequence = seq + 1 - every; /* up to, not including */
    jsErrCode jerr = 0;
    natsStatus s = js_PurgeStream(c->js, c->cfg->cluster_stream, &o, &jerr);
    if (s != NATS_OK)
        RH_LOG(RH_LOG_WARN, "cluster", "table stream not trimmed err=\"%s\" jserr=%d",
               natsStatus_GetText(s), (int)jerr);
    else
        RH_LOG(RH_LOG_INFO, "cluster", "table stream trimmed below seq=%llu",
               (unsigned long long)(seq + 1 - every));
}

/* cluster.snapshot_every > 0: writes a table snapshot each time this node has applied that many
 * changes past the latest one (read from the object store first). Runs beside the applier: the
 * dump reads one LMDB snapshot and its sequence, whatever the applier does meanwhile. */
static void *snap_main(void *arg)
{
    cluster_t *c = arg;
    uint64_t last = 0, every = c->cfg->cluster_snapshot_every;
    int known = 0;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int go = c->st.connected && c->st.ready;
        uint64_t applied = c->applied;
        pthread_mutex_unlock(&c->mu);
        rh_diag_t d;
        if (go && !known)
            known = cluster_snapshot_seq(c->js, c->cfg, &last, &d) == RH_OK;
        if (go && known && applied >= last + every) {
            uint64_t seq = 0;
            if (cluster_snapshot_write(c->js, c->cfg, c->db, CLUSTER_MARK, &seq, &d) == RH_OK) {
                last = seq;
                trim_stream(c, seq);
            } else
                RH_LOG(RH_LOG_WARN, "cluster", "table snapshot not written err=\"%s\"", d.text);
        }
        pthread_mutex_lock(&c->mu);
        if (c->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int cluster_progress_check(cluster_progress_t *p, uint64_t have,
                           int (*ask_last)(void *arg, uint64_t *last), void *arg)
{
    if (have != p->seen) { /* progress: the consumer works (or catches up) */
        p->seen = have;
        p->pending = 0;
        return 0;
    }
    if (p->pending > have) {
        p->pending = 0;
        return 1;
    }
    uint64_t last = 0;
    if (ask_last(arg, &last) != 0)
        return 0; /* the stream cannot be asked now: the next check will */
    p->pending = last > have ? last : 0;
    return 0;
}

static int stream_last(void *arg, uint64_t *last)
{
    cluster_t *c = arg;
    jsErrCode jerr = 0;
    jsStreamInfo *si = NULL;
    if (js_GetStreamInfo(&si, c->js, c->cfg->cluster_stream, NULL, &jerr) != NATS_OK)
        return -1;
    *last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return 0;
}

/* The watch thread's progress check of the table consumer (cluster_progress_check): a stall
 * (seen on a loaded 2-core machine: one change left undelivered for 10 s while the client reset
 * its ordered consumer) lasts 1-2 s, then the consumer is recreated from the applied sequence.
 * One JetStream request per check while idle, none while changes arrive. */
static int consumer_stalled(cluster_t *c, cluster_progress_t *p)
{
    pthread_mutex_lock(&c->qmu);
    uint64_t have = c->delivered;
    pthread_mutex_unlock(&c->qmu);
    pthread_mutex_lock(&c->mu);
    if (c->applied > have)
        have = c->applied;
    pthread_mutex_unlock(&c->mu);
    uint64_t pending = p->pending;
    if (!cluster_progress_check(p, have, stream_last, c))
        return 0;
    RH_LOG(RH_LOG_WARN, "cluster", "table consumer stalled, recreating it applied=%llu "
           "stream_last=%llu", (unsigned long long)have, (unsigned long long)pending);
    return 1;
}

static void *watch_main(void *arg)
{
    cluster_t *c = arg;
    char why[192];
    unsigned turn = 0;
    cluster_progress_t progress = {0, 0};
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        int ready = c->st.stream_ready;
        pthread_mutex_unlock(&c->mu);
        int connected = natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED;
        if (!connected) {
            const char *last = NULL;
            natsConnection_GetLastError(c->nc, &last);
            snprintf(why, sizeof why, "not connected to any NATS server in cluster.nats_urls%s%s",
                     last && *last ? " (last error: " : "", last && *last ? last : "");
            if (last && *last)
                strncat(why, ")", sizeof why - strlen(why) - 1);
            set_state(c, 0, 0, why);
        } else if (!ready) {
            why[0] = '\0';
            if (ensure_stream(c, why, sizeof why) == 0 && load_snapshot(c, why, sizeof why) == 0 &&
                subscribe(c, why, sizeof why) == 0)
                set_state(c, 1, 1, NULL);
            else
                set_state(c, 1, 0, why);
        } else {
            pthread_mutex_lock(&c->mu);
            int have_sub = c->sub != NULL;
            pthread_mutex_unlock(&c->mu);
            if (have_sub && ++turn % CLUSTER_PROBE_TURNS == 0 && consumer_stalled(c, &progress))
                atomic_store(&c->resub, 1);
            if (!have_sub || atomic_exchange(&c->resub, 0)) {
                why[0] = '\0';
                if (subscribe(c, why, sizeof why) != 0) {
                    atomic_store(&c->resub, 1);
                    RH_LOG(RH_LOG_DEBUG, "cluster", "consumer not recreated yet err=\"%s\"",
                           why);
                }
            }
            set_state(c, 1, 0, NULL);
        }
        pthread_mutex_lock(&c->mu);
        if (c->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)CLUSTER_WATCH_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void connected_cb(natsConnection *nc, void *closure)
{
    (void)nc;
    (void)closure; /* the watch thread reads the status; this only makes Connect not block */
}

static void reconnected_cb(natsConnection *nc, void *closure)
{
    (void)nc;
    cluster_t *c = closure;
    atomic_store(&c->resub, 1);
}

/* Asynchronous errors: missed heartbeats of the table consumer mean it is gone (its NATS server
 * was lost); the watch thread recreates it. Nothing here is logged per message. */
static void error_cb(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    cluster_t *c = closure;
    if (err == NATS_MISSED_HEARTBEAT || err == NATS_SLOW_CONSUMER)
        atomic_store(&c->resub, 1);
}

/* NATS option calls, each failure naming the configuration key it came from. */
static int options_new(cluster_t *c, const rh_config_t *cfg, natsOptions **out, rh_diag_t *d)
{
    natsOptions *o = NULL;
    char name[32];
    snprintf(name, sizeof name, "roamhubd-node-%u", cfg->cluster_node_id);
    const char *key = "cluster";
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, (const char **)cfg->cluster_nats_urls,
                                   (int)cfg->n_cluster_nats_urls);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* for ever: the node keeps relaying meanwhile */
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK) /* a node's own core messages never come back to it: every module deals
                         with its own node locally (cluster_view, cluster_inflight) */
        s = natsOptions_SetNoEcho(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, connected_cb, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, reconnected_cb, c);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, error_cb, c);
    if (s == NATS_OK && cfg->cluster_creds_file) {
        /* the client reads the file only when it connects (in the background): an unreadable
         * one would show as a node that never connects, so it is checked here */
        FILE *f = fopen(cfg->cluster_creds_file, "r");
        if (!f) {
            int e = errno;
            natsOptions_Destroy(o);
            return rh_diag_fail(d, RH_EINVAL, "cluster.credentials_file %s: %s",
                                cfg->cluster_creds_file, strerror(e));
        }
        fclose(f);
        key = "cluster.credentials_file";
        s = natsOptions_SetUserCredentialsFromFiles(o, cfg->cluster_creds_file, NULL);
    }
    int secure = cfg->cluster_tls_ca || cfg->cluster_tls_cert;
    for (size_t i = 0; i < cfg->n_cluster_nats_urls; i++)
        secure |= !strncmp(cfg->cluster_nats_urls[i], "tls://", 6);
    if (s == NATS_OK && secure)
        s = natsOptions_SetSecure(o, true);
    if (s == NATS_OK && cfg->cluster_tls_ca) {
        key = "cluster.tls_ca";
        s = natsOptions_LoadCATrustedCertificates(o, cfg->cluster_tls_ca);
    }
    if (s == NATS_OK && cfg->cluster_tls_cert) {
        key = "cluster.tls_cert";
        s = natsOptions_LoadCertificatesChain(o, cfg->cluster_tls_cert, cfg->cluster_tls_key);
    }
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        if (s == NATS_NO_MEMORY)
            return RH_ENOMEM;
        return rh_diag_fail(d, RH_EINVAL, "%s: %s (%s)", key, natsStatus_GetText(s),
                            nats_GetLastError(NULL));
    }
    *out = o;
    return RH_OK;
}

int cluster_start(const rh_config_t *cfg, rp_db_t *db, table_registry_fn reg, void *reg_arg,
                  cluster_t **out, rh_diag_t *d)
{
    *out = NULL;
    cluster_t *c = calloc(1, sizeof *c);
    if (!c)
        return RH_ENOMEM;
    c->cfg = cfg;
    c->db = db;
    c->reg = reg;
    c->reg_arg = reg_arg;
    snprintf(c->seq_path, sizeof c->seq_path, "%s/cluster-applied-seq", cfg->db_path);
    int found = 0;
    rh_diag_t md;
    if (rp_get_mark(db, CLUSTER_MARK, &c->applied, &found, &md) != RH_OK) {
        free(c);
        return rh_diag_fail(d, RH_EIO, "database.path: cannot read the applied stream sequence: "
                            "%s", md.text);
    }
    if (!found) /* upgraded from a version keeping it in a file (or a new database: 0) */
        c->applied = seq_load(c->seq_path);
    c->boot_id = (unsigned long long)rh_real_ms();
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->qmu, NULL);
    pthread_mutex_init(&c->apply_mu, NULL);
    pthread_cond_init(&c->qwork, NULL);
    pthread_cond_init(&c->qspace, NULL);
    pthread_cond_init(&c->cv, NULL);
    snprintf(c->subject, sizeof c->subject, "%s.table", cfg->cluster_subject_prefix);
    snprintf(c->st.reason, sizeof c->st.reason, "connecting to NATS");
    natsOptions *o = NULL;
    int rc = options_new(c, cfg, &o, d);
    if (rc) {
        cluster_free(c);
        return rc;
    }
    natsStatus s = natsConnection_Connect(&c->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
        cluster_free(c);
        return rh_diag_fail(d, RH_EINVAL, "cluster.nats_urls: %s (%s)", natsStatus_GetText(s),
                            nats_GetLastError(NULL));
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = JS_ATTEMPT_MS; /* stream look-up, consumer creation: the watch thread retries */
    if (natsConnection_JetStream(&c->js, c->nc, &jo) != NATS_OK) {
        cluster_free(c);
        return RH_ENOMEM;
    }
    if (pthread_create(&c->applier, NULL, apply_main, c) != 0) {
        cluster_free(c);
        return RH_ENOMEM;
    }
    c->applier_running = 1;
    if (pthread_create(&c->thread, NULL, watch_main, c) != 0) {
        cluster_free(c);
        return RH_ENOMEM;
    }
    c->thread_running = 1;
    if (cfg->cluster_snapshot_every) {
        if (pthread_create(&c->snap_thread, NULL, snap_main, c) != 0) {
            cluster_free(c);
            return RH_ENOMEM;
        }
        c->snap_running = 1;
    }
    RH_LOG(RH_LOG_INFO, "cluster", "starting node_id=%u servers=%zu stream=%s subject=%s",
           cfg->cluster_node_id, cfg->n_cluster_nats_urls, cfg->cluster_stream, c->subject);
    *out = c;
    return RH_OK;
}

void cluster_close(cluster_t *c)
{
    if (!c || c->closed)
        return;
    c->closed = 1;
    if (c->thread_running) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
        c->thread_running = 0;
    }
    if (c->snap_running) { /* stop is set: it ends after a snapshot in progress */
        pthread_join(c->snap_thread, NULL);
        c->snap_running = 0;
    }
    pthread_mutex_lock(&c->qmu); /* the applier ends; a blocked or later callback drops */
    c->qstop = 1;
    pthread_cond_broadcast(&c->qwork);
    pthread_cond_broadcast(&c->qspace);
    pthread_mutex_unlock(&c->qmu);
    if (c->applier_running) {
        pthread_join(c->applier, NULL);
        c->applier_running = 0;
    }
    if (c->nc) { /* what was published leaves; then no client thread (reader, reconnect, an
                    ordered consumer's reset) touches a subscription or context again */
        if (natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED)
            natsConnection_FlushTimeout(c->nc, 1000);
        natsConnection_Close(c->nc);
    }
}

void cluster_free(cluster_t *c)
{
    if (!c)
        return;
    cluster_close(c);
    if (c->sub) {
        natsSubscription_Unsubscribe(c->sub);
        natsSubscription_Destroy(c->sub);
    }
    jsCtx_Destroy(c->js);
    if (c->nc)
        natsConnection_Destroy(c->nc);
    for (; c->qlen; c->qlen--, c->qhead = (c->qhead + 1) % APPLY_QUEUE)
        natsMsg_Destroy(c->queue[c->qhead].msg); /* delivered, never applied: not recorded */
    pthread_cond_destroy(&c->cv);
    pthread_cond_destroy(&c->qspace);
    pthread_cond_destroy(&c->qwork);
    pthread_mutex_destroy(&c->qmu);
    pthread_mutex_destroy(&c->apply_mu);
    pthread_mutex_destroy(&c->mu);
    free(c);
    nats_CloseAndWait(2000); /* the client library's threads and memory (LSan clean) */
}

natsConnection *cluster_nats(cluster_t *c) { return c->nc; }

void cluster_status(cluster_t *c, cluster_status_t *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}

int cluster_write(cluster_t *c, const table_change_t *ch, int *deleted, rh_diag_t *d)
{
    if (deleted)
        *deleted = 0;
    cluster_status_t st;
    cluster_status(c, &st);
    if (!st.connected || !st.ready)
        return rh_diag_fail(d, RH_EAGAIN, "cluster: %s; admin writes are refused until this "
                            "node is back on NATS and caught up",
                            st.connected ? "catching up with the table stream" : st.reason);
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = table_change_pack(ch, c->cfg->cluster_node_id, &buf, &len, d);
    if (rc)
        return rc;
    uint64_t deadline = rh_mono_ms() + c->cfg->cluster_write_timeout_ms, seq = 0;
    /* one message ID for every attempt: a retry of a publish whose answer was lost is a
     * duplicate JetStream recognizes (and answers with the first one's sequence) */
    char msg_id[64];
    pthread_mutex_lock(&c->mu);
    unsigned long long nth = ++c->writes;
    pthread_mutex_unlock(&c->mu);
    snprintf(msg_id, sizeof msg_id, "n%u-%llu-%llu", c->cfg->cluster_node_id, c->boot_id, nth);
    natsStatus s = NATS_OK;
    jsErrCode jerr = 0;
    while (!seq) {
        pthread_mutex_lock(&c->mu);
        uint64_t expect = c->applied;
        pthread_mutex_unlock(&c->mu);
        uint64_t now = rh_mono_ms();
        if (now >= deadline)
            break;
        jsPubOptions po;
        jsPubOptions_Init(&po);
        /* short attempts: a request to a stream leader that just died is never answered */
        po.MaxWait = (int64_t)(deadline - now < JS_ATTEMPT_MS ? deadline - now : JS_ATTEMPT_MS);
        po.MsgId = msg_id;
        po.ExpectLastSeq = expect; /* 0 = no check (the empty stream) */
        jsPubAck *pa = NULL;
        jerr = 0;
        s = js_Publish(&pa, c->js, c->subject, buf, (int)len, &po, &jerr);
        if (s == NATS_OK) {
            seq = pa->Sequence;
            jsPubAck_Destroy(pa);
            break;
        }
        /* another node wrote first (wait until its change is applied here), or the stream has
         * no leader for a moment (a NATS server lost: JetStream elects another), or the answer
         * was lost: again, until the deadline */
        int again = jerr == JSStreamWrongLastSequenceErr || s == NATS_NO_RESPONDERS ||
                    s == NATS_TIMEOUT || jerr == JSClusterNotAvailErr ||
                    jerr == JSStreamNotFoundErr;
        if (!again)
            break;
        pthread_mutex_lock(&c->mu);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (jerr == JSStreamWrongLastSequenceErr ? 20L : 100L) * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
    if (!seq) {
        free(buf);
        return rh_diag_fail(d, RH_EAGAIN, "cluster: the table stream did not store the write: "
                            "%s (JetStream error %d)", natsStatus_GetText(s), (int)jerr);
    }
    free(buf);
    /* stored: the outcome is what applying it here decides (every node decides the same) */
    uint64_t stored_at = rh_mono_ms(), apply_deadline = stored_at + c->cfg->cluster_write_timeout_ms;
    int asked = 0;
    pthread_mutex_lock(&c->mu);
    while (c->applied < seq && rh_mono_ms() < apply_deadline) {
        if (!asked && rh_mono_ms() > stored_at + 1000) {
            /* stored but not delivered here within 1 s: the consumer went with a NATS server */
            atomic_store(&c->resub, 1);
            pthread_cond_broadcast(&c->cv);
            asked = 1;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20L * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    }
    if (c->applied < seq) {
        pthread_mutex_unlock(&c->mu);
        return rh_diag_fail(d, RH_ETIMEDOUT, "cluster: the write is stored (seq %llu) but not "
                            "applied on this node yet", (unsigned long long)seq);
    }
    outcome_t o = c->outcomes[seq % OUTCOMES];
    pthread_mutex_unlock(&c->mu);
    if (o.seq != seq)
        return rh_diag_fail(d, RH_ETIMEDOUT, "cluster: the write is stored and applied (seq "
                            "%llu); its outcome is no longer known here", (unsigned long long)seq);
    if (deleted)
        *deleted = o.deleted;
    if (o.rc)
        *d = o.diag;
    return o.rc;
}
