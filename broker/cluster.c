/* cluster.c — NATS connection and JetStream stream set-up of a cluster node. See cluster.h. */
#include "cluster.h"

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
#define JS_ATTEMPT_MS 1000   /* one JetStream request's wait; retried while time remains */
#define OUTCOMES 64          /* outcomes of the last applied changes kept for their writers */

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
    char seq_path[1024];   /* DB_PATH/cluster-applied-seq: last applied stream sequence */
    pthread_t thread;
    int thread_running;
    pthread_mutex_t mu;
    pthread_mutex_t apply_mu; /* one change applied at a time, whichever subscription it came by */
    atomic_int resub;         /* 1: recreate the consumer (reconnected, heartbeats missed, or a
                                 stored write not applied in time) */
    pthread_cond_t cv;      /* watch thread sleeps; writers wait for their sequence */
    int stop;               /* under mu */
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

/* Records the last applied sequence next to the LMDB (write, fsync, rename): after a process
 * crash between the LMDB commit and this, one change is applied again at start, which leaves
 * the table as it was (applying a put, create, update or delete twice in a row is the same as
 * once). */
static void seq_store(cluster_t *c, uint64_t seq)
{
    char tmp[1040], text[32];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->seq_path);
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)seq);
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(text, 1, (size_t)n, f) != (size_t)n || fflush(f) || fsync(fileno(f))) {
        RH_LOG(RH_LOG_ERR, "cluster", "cannot record the applied sequence file=%s err=\"%s\"",
               tmp, strerror(errno));
        if (f)
            fclose(f);
        return;
    }
    fclose(f);
    if (rename(tmp, c->seq_path))
        RH_LOG(RH_LOG_ERR, "cluster", "cannot record the applied sequence file=%s err=\"%s\"",
               c->seq_path, strerror(errno));
}

/* The ordered consumer's callback (one NATS thread, stream order): applies each change to the
 * local LMDB with table_change_apply — the writer's outcome is decided here, against the state
 * at the change's sequence — and wakes the writer waiting for it. */
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
    /* a recreated consumer may deliver what the old one is still delivering: one at a time,
     * and only what is past the applied sequence, keeps the stream order */
    pthread_mutex_lock(&c->apply_mu);
    pthread_mutex_lock(&c->mu);
    uint64_t applied = c->applied;
    pthread_mutex_unlock(&c->mu);
    if (seq <= applied) {
        pthread_mutex_unlock(&c->apply_mu);
        natsMsg_Destroy(msg);
        return;
    }
    if (seq != applied + 1)
        RH_LOG(RH_LOG_WARN, "cluster", "stream sequence gap (messages removed from the stream?) "
               "applied=%llu next=%llu", (unsigned long long)applied, (unsigned long long)seq);
    outcome_t o = {.seq = seq};
    table_change_owned_t ch;
    o.rc = table_change_unpack((const uint8_t *)natsMsg_GetData(msg),
                               (size_t)natsMsg_GetDataLength(msg), &ch, &o.diag);
    if (o.rc == RH_OK) {
        o.rc = table_change_apply(c->db, &ch.ch, c->reg, c->reg_arg, &o.deleted, &o.diag);
        if (o.rc == RH_EIO || o.rc == RH_EFULL || o.rc == RH_ENOMEM)
            RH_LOG(RH_LOG_ERR, "cluster", "change not applied seq=%llu err=\"%s\"",
                   (unsigned long long)seq, o.diag.text);
        table_change_release(&ch);
    } else {
        RH_LOG(RH_LOG_WARN, "cluster", "unreadable change skipped seq=%llu err=\"%s\"",
               (unsigned long long)seq, o.diag.text);
    }
    natsMsg_Destroy(msg);
    seq_store(c, seq);
    pthread_mutex_lock(&c->mu);
    c->applied = seq;
    c->outcomes[seq % OUTCOMES] = o;
    if (c->st.stream_ready && c->sub && c->applied >= c->target && !c->st.ready) {
        c->st.ready = 1;
        RH_LOG(RH_LOG_INFO, "cluster", "caught up seq=%llu", (unsigned long long)seq);
    }
    c->st.applied = seq;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->apply_mu);
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
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    pthread_mutex_lock(&c->mu);
    uint64_t from = c->applied + 1;
    c->target = last;
    pthread_mutex_unlock(&c->mu);
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

static void *watch_main(void *arg)
{
    cluster_t *c = arg;
    char why[192];
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
            if (ensure_stream(c, why, sizeof why) == 0 && subscribe(c, why, sizeof why) == 0)
                set_state(c, 1, 1, NULL);
            else
                set_state(c, 1, 0, why);
        } else {
            pthread_mutex_lock(&c->mu);
            int have_sub = c->sub != NULL;
            pthread_mutex_unlock(&c->mu);
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
    c->applied = seq_load(c->seq_path);
    c->boot_id = (unsigned long long)rh_real_ms();
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->apply_mu, NULL);
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
    if (pthread_create(&c->thread, NULL, watch_main, c) != 0) {
        cluster_free(c);
        return RH_ENOMEM;
    }
    c->thread_running = 1;
    RH_LOG(RH_LOG_INFO, "cluster", "starting node_id=%u servers=%zu stream=%s subject=%s",
           cfg->cluster_node_id, cfg->n_cluster_nats_urls, cfg->cluster_stream, c->subject);
    *out = c;
    return RH_OK;
}

void cluster_free(cluster_t *c)
{
    if (!c)
        return;
    if (c->thread_running) {
        pthread_mutex_lock(&c->mu);
        c->stop = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
        pthread_join(c->thread, NULL);
    }
    if (c->sub) {
        natsSubscription_Unsubscribe(c->sub);
        natsSubscription_Destroy(c->sub);
    }
    jsCtx_Destroy(c->js);
    if (c->nc) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    pthread_cond_destroy(&c->cv);
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
