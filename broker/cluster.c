/* cluster.c — NATS connection and JetStream stream set-up of a cluster node. See cluster.h. */
#include "cluster.h"

#include "rh_log.h"

#include <errno.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLUSTER_WATCH_MS 250 /* how often the watch thread looks at the connection */

struct cluster {
    const rh_config_t *cfg;
    natsConnection *nc;
    jsCtx *js;
    char subject[96]; /* PREFIX.table */
    pthread_t thread;
    int thread_running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;           /* under mu */
    cluster_status_t st; /* under mu */
};

static void set_state(cluster_t *c, int connected, int stream_ready, const char *reason)
{
    pthread_mutex_lock(&c->mu);
    int was_connected = c->st.connected, was_ready = c->st.stream_ready;
    c->st.connected = connected;
    if (stream_ready)
        c->st.stream_ready = c->st.ready = 1;
    snprintf(c->st.reason, sizeof c->st.reason, "%s", reason ? reason : "");
    pthread_mutex_unlock(&c->mu);
    if (was_connected != connected)
        RH_LOG(connected ? RH_LOG_INFO : RH_LOG_WARN, "cluster", "nats %s%s%s",
               connected ? "connected" : "disconnected", reason && *reason ? " reason=" : "",
               reason ? reason : "");
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
            if (ensure_stream(c, why, sizeof why) == 0)
                set_state(c, 1, 1, NULL);
            else
                set_state(c, 1, 0, why);
        } else {
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

/* NATS option calls, each failure naming the configuration key it came from. */
static int options_new(const rh_config_t *cfg, natsOptions **out, rh_diag_t *d)
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

int cluster_start(const rh_config_t *cfg, cluster_t **out, rh_diag_t *d)
{
    *out = NULL;
    cluster_t *c = calloc(1, sizeof *c);
    if (!c)
        return RH_ENOMEM;
    c->cfg = cfg;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    snprintf(c->subject, sizeof c->subject, "%s.table", cfg->cluster_subject_prefix);
    snprintf(c->st.reason, sizeof c->st.reason, "connecting to NATS");
    natsOptions *o = NULL;
    int rc = options_new(cfg, &o, d);
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
    jo.Wait = (int64_t)cfg->cluster_write_timeout_ms;
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
    jsCtx_Destroy(c->js);
    if (c->nc) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    nats_CloseAndWait(2000); /* the client library's threads and memory (LSan clean) */
}

void cluster_status(cluster_t *c, cluster_status_t *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    pthread_mutex_unlock(&c->mu);
}
