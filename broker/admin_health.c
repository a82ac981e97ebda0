/* admin_health.c — GET /api/v1/endpoint-health[?minutes=M]: the health of each TS002 endpoint
 * the hub sends to, for the console's Networks page and roamctl.
 *
 * Two sources:
 *   - the outbound client pools (peer_client_stats), which live on the worker threads: the
 *     request is held while each worker copies its pools' figures for the listed endpoints
 *     (worker_post); the main thread polls the count of workers done every 10 ms and answers
 *     when all are, or after 1 s with what it has ("workers_reporting" says how many). The
 *     gathering state is reference-counted so a late worker never touches freed memory, and
 *     it holds no libevent object (only the main thread's timer, which the main thread owns).
 *     Circuit: the worst state across workers (open > half_open > closed); counters summed.
 *   - the statistics buckets of the last M minutes (default 15, at most 1440): messages sent to
 *     the endpoint's network (uplink classes where it is the home network, downlink classes where
 *     it is the forwarder), failures (receiver_error, timeout, unreachable) grouped by ResultCode
 *     with counts and the last minute seen ("recent failures and their reasons"), and p50/p99
 *     latency.
 * Scope: the operator sees every endpoint; a member those of its NetID (a tenant key: its tenant's
 * and the NetID-level ones). Needs RIGHT_READ_NETWORK. Never shows the Authorization value.
 */
#include "admin_internal.h"

#include "lw_netid.h"
#include "rh_log.h"
#include "rh_time.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_MAX_ENDPOINTS 4096
#define HEALTH_WAIT_MS 1000
#define HEALTH_MAX_REASONS 8

typedef struct ep_acc {
    char *id;
    uint32_t net_id;
    char tenant[RP_TENANT_MAX + 1];
    char url[300];
    int js; /* Join Server endpoint */
    int circuit;
    uint64_t backoff_ms;
    unsigned consecutive, in_flight, connections;
    uint64_t requests, responses, failures, timeouts, rejected;
    int seen; /* a pool exists on at least one worker */
} ep_acc_t;

typedef struct gather {
    atomic_int refs;
    atomic_uint done;
    pthread_mutex_t mu;
    ep_acc_t *ep;
    size_t n;
} gather_t;

typedef struct health_req {
    admin_req_t r;
    gather_t *g;
    struct event *timer;
    uint64_t deadline_ms;
    unsigned nworkers, minutes;
} health_req_t;

static void gather_unref(gather_t *g)
{
    if (atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    for (size_t i = 0; i < g->n; i++)
        free(g->ep[i].id);
    free(g->ep);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

static int circuit_rank(enum peer_circuit c)
{
    return c == PEER_CIRCUIT_OPEN ? 2 : c == PEER_CIRCUIT_HALF_OPEN ? 1 : 0;
}

/* Runs on a worker thread. */
static void worker_collect(worker_t *w, void *arg)
{
    gather_t *g = arg;
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < g->n; i++) {
        peer_endpoint_stats_t st;
        bool found = false;
        if (peer_client_stats(w->client, g->ep[i].id, &st, &found) != RH_OK || !found)
            continue;
        ep_acc_t *e = &g->ep[i];
        e->seen = 1;
        if (circuit_rank(st.circuit) > e->circuit)
            e->circuit = circuit_rank(st.circuit);
        if (st.backoff_remaining_ms > e->backoff_ms)
            e->backoff_ms = st.backoff_remaining_ms;
        if (st.consecutive_failures > e->consecutive)
            e->consecutive = st.consecutive_failures;
        e->in_flight += st.in_flight;
        e->connections += st.connections;
        e->requests += st.requests;
        e->responses += st.responses;
        e->failures += st.failures;
        e->timeouts += st.timeouts;
        e->rejected += st.rejected_backoff + st.rejected_inflight;
    }
    pthread_mutex_unlock(&g->mu);
    atomic_fetch_add(&g->done, 1);
    gather_unref(g);
}

/* --- statistics part --- */

typedef struct reason {
    char code[RP_RESULT_MAX + 16];
    uint64_t count;
    int64_t last_minute;
} reason_t;

typedef struct traffic {
    uint64_t sent, failed;
    rp_stats_item_t lat; /* merged histogram */
    reason_t reasons[HEALTH_MAX_REASONS];
    size_t nreasons;
} traffic_t;

typedef struct stats_ud {
    const ep_acc_t *ep;
    traffic_t *t;
    size_t n;
} stats_ud_t;

static int is_downlink(rp_class_t c)
{
    return c == RP_CLASS_JOIN_ACCEPT || c == RP_CLASS_DOWNLINK_MAC || c == RP_CLASS_DOWNLINK_APP;
}

static int stats_cb(void *ud, const rp_stats_item_t *it)
{
    stats_ud_t *u = ud;
    int failed = it->outcome == RP_OUT_RECEIVER_ERROR || it->outcome == RP_OUT_TIMEOUT ||
                 it->outcome == RP_OUT_UNREACHABLE;
    if (it->outcome != RP_OUT_FORWARDED && !failed)
        return 0; /* refused before anything was sent to an endpoint */
    uint32_t receiver = is_downlink(it->cls) ? it->forwarder_net_id : it->home_net_id;
    if ((is_downlink(it->cls) ? it->forwarder_protocol : it->home_protocol) != RP_PROTO_TS002)
        return 0; /* sent to the receiver's Packet Broker subscription, not to an endpoint */
    for (size_t i = 0; i < u->n; i++) {
        if (u->ep[i].js || u->ep[i].net_id != receiver)
            continue;
        traffic_t *t = &u->t[i];
        t->sent += it->count;
        for (unsigned k = 0; k < RP_STATS_HIST; k++)
            t->lat.latency_hist[k] += it->latency_hist[k];
        if (!failed)
            continue;
        t->failed += it->count;
        char code[sizeof t->reasons[0].code];
        snprintf(code, sizeof code, "%s",
                 it->result_code && it->result_code[0] ? it->result_code
                                                       : rp_outcome_name(it->outcome));
        size_t k;
        for (k = 0; k < t->nreasons && strcmp(t->reasons[k].code, code); k++)
            ;
        if (k == t->nreasons && t->nreasons < HEALTH_MAX_REASONS)
            snprintf(t->reasons[t->nreasons++].code, sizeof code, "%s", code);
        if (k < t->nreasons) {
            t->reasons[k].count += it->count;
            if (it->minute > t->reasons[k].last_minute)
                t->reasons[k].last_minute = it->minute;
        }
    }
    return 0;
}

static const char *circuit_name(int rank)
{
    return rank == 2 ? "open" : rank == 1 ? "half_open" : "closed";
}

static void answer(health_req_t *h)
{
    gather_t *g = h->g;
    admin_req_t *r = &h->r;
    unsigned reporting = atomic_load(&g->done);
    traffic_t *t = calloc(g->n ? g->n : 1, sizeof *t);
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "endpoints");
    if (!t || !o || !arr) {
        free(t);
        cJSON_Delete(o);
        admin_reply_error(r, 503, "endpoint-health: out of memory");
        return;
    }
    int64_t now_min = rh_real_ms() / 60000;
    rp_stats_filter_t f = {RP_ANY, RP_ANY, RP_ANY, RP_ANY, false, 0, 0, 0, 0};
    pthread_mutex_lock(&g->mu); /* late workers may still be merging */
    stats_ud_t u = {g->ep, t, g->n};
    rp_stats_query(r->a->db, now_min - h->minutes + 1, now_min + 1, &f, RP_AGG_MINUTE, stats_cb, &u,
                   NULL);
    for (size_t i = 0; i < g->n; i++) {
        const ep_acc_t *e = &g->ep[i];
        cJSON *x = cJSON_CreateObject();
        char net[7];
        cJSON_AddStringToObject(x, "id", e->id);
        if (!e->js) {
            lw_netid_format(e->net_id, net, 0);
            cJSON_AddStringToObject(x, "net_id", net);
        }
        if (e->tenant[0])
            cJSON_AddStringToObject(x, "tenant_id", e->tenant);
        cJSON_AddStringToObject(x, "url", e->url);
        cJSON_AddStringToObject(x, "circuit", circuit_name(e->circuit));
        cJSON_AddBoolToObject(x, "used", e->seen);
        cJSON_AddNumberToObject(x, "backoff_remaining_ms", (double)e->backoff_ms);
        cJSON_AddNumberToObject(x, "consecutive_failures", e->consecutive);
        cJSON_AddNumberToObject(x, "in_flight", e->in_flight);
        cJSON_AddNumberToObject(x, "connections", e->connections);
        cJSON *cnt = cJSON_AddObjectToObject(x, "since_start");
        cJSON_AddNumberToObject(cnt, "requests", (double)e->requests);
        cJSON_AddNumberToObject(cnt, "responses", (double)e->responses);
        cJSON_AddNumberToObject(cnt, "failures", (double)e->failures);
        cJSON_AddNumberToObject(cnt, "timeouts", (double)e->timeouts);
        cJSON_AddNumberToObject(cnt, "rejected", (double)e->rejected);
        cJSON *rc = cJSON_AddObjectToObject(x, "recent");
        cJSON_AddNumberToObject(rc, "minutes", h->minutes);
        cJSON_AddNumberToObject(rc, "messages", (double)t[i].sent);
        cJSON_AddNumberToObject(rc, "failed", (double)t[i].failed);
        cJSON_AddNumberToObject(rc, "latency_p50_ms",
                                t[i].sent ? admin_stats_pct_ms(&t[i].lat, 0.5) : 0);
        cJSON_AddNumberToObject(rc, "latency_p99_ms",
                                t[i].sent ? admin_stats_pct_ms(&t[i].lat, 0.99) : 0);
        cJSON *rs = cJSON_AddArrayToObject(rc, "failure_reasons");
        for (size_t k = 0; k < t[i].nreasons; k++) {
            cJSON *y = cJSON_CreateObject();
            char when[ADMIN_TIME_TEXT];
            admin_time_text(t[i].reasons[k].last_minute * 60000, when);
            cJSON_AddStringToObject(y, "reason", t[i].reasons[k].code);
            cJSON_AddNumberToObject(y, "count", (double)t[i].reasons[k].count);
            cJSON_AddStringToObject(y, "last_minute", when);
            cJSON_AddItemToArray(rs, y);
        }
        cJSON_AddItemToArray(arr, x);
    }
    pthread_mutex_unlock(&g->mu);
    cJSON_AddNumberToObject(o, "workers", h->nworkers);
    cJSON_AddNumberToObject(o, "workers_reporting", reporting);
    free(t);
    admin_reply_json(r, 200, o);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    health_req_t *h = arg;
    (void)fd;
    (void)what;
    if (atomic_load(&h->g->done) < h->nworkers && rh_mono_ms() < h->deadline_ms &&
        !atomic_load(&h->r.a->hub->draining))
        return;
    event_free(h->timer);
    answer(h);
    gather_unref(h->g);
    free(h);
}

static int visible(const admin_principal_t *p, const peer_endpoint_t *ep)
{
    if (p->is_operator)
        return 1;
    if (ep->net_id != p->net_id || ep->join_eui)
        return 0;
    return !p->tenant_id[0] || !ep->tenant_id[0] || !strcmp(p->tenant_id, ep->tenant_id);
}

void admin_health_handle(admin_req_t *r)
{
    if (strcmp(r->method, "GET") || r->nseg != 1) {
        admin_reply_error(r, 405, "endpoint-health: GET /api/v1/endpoint-health");
        return;
    }
    if (!admin_has_right(&r->p, ROAMHUB__V1__RIGHT__RIGHT_READ_NETWORK)) {
        admin_reply_error(r, 403, "endpoint-health: your key lacks RIGHT_READ_NETWORK");
        return;
    }
    unsigned minutes = 15;
    if (admin_query_uint(r, "minutes", 1, 1440, &minutes))
        return;
    hub_t *hub = r->a->hub;
    gather_t *g = calloc(1, sizeof *g);
    health_req_t *h = calloc(1, sizeof *h);
    if (!g || !h) {
        free(g);
        free(h);
        admin_reply_error(r, 503, "endpoint-health: out of memory");
        return;
    }
    pthread_mutex_init(&g->mu, NULL);
    atomic_init(&g->refs, 1);
    peer_registry_view_t v = PEER_REGISTRY_VIEW_INIT;
    const peer_registry_t *reg = peer_registry_view_get(&hub->registry, &v);
    size_t total = reg ? peer_registry_endpoint_count(reg) : 0;
    if (total > HEALTH_MAX_ENDPOINTS)
        total = HEALTH_MAX_ENDPOINTS;
    g->ep = calloc(total ? total : 1, sizeof *g->ep);
    int oom = !g->ep;
    for (size_t i = 0; !oom && i < total; i++) {
        const peer_endpoint_t *ep = peer_registry_endpoint_at(reg, i);
        if (!ep || !visible(&r->p, ep))
            continue;
        ep_acc_t *e = &g->ep[g->n];
        e->id = strdup(ep->id);
        oom = !e->id;
        e->net_id = ep->net_id;
        e->js = ep->join_eui != 0;
        snprintf(e->tenant, sizeof e->tenant, "%s", ep->tenant_id);
        int v6 = strchr(ep->host, ':') != NULL;
        snprintf(e->url, sizeof e->url, "%s://%s%s%s:%u%s", ep->tls ? "https" : "http",
                 v6 ? "[" : "", ep->host, v6 ? "]" : "", ep->port, ep->path);
        if (!oom)
            g->n++;
    }
    peer_registry_view_release(&v);
    if (oom) {
        gather_unref(g);
        free(h);
        admin_reply_error(r, 503, "endpoint-health: out of memory");
        return;
    }
    h->g = g;
    h->r = *r;
    h->minutes = minutes;
    h->nworkers = hub->nworkers;
    h->deadline_ms = rh_mono_ms() + HEALTH_WAIT_MS;
    for (unsigned i = 0; i < hub->nworkers; i++) {
        atomic_fetch_add(&g->refs, 1);
        if (worker_post(&hub->workers[i], worker_collect, g) != RH_OK)
            gather_unref(g);
    }
    h->timer = event_new(hub->main_base, -1, EV_PERSIST, poll_cb, h);
    struct timeval tv = {0, 10000};
    evtimer_add(h->timer, &tv);
    r->req = NULL; /* held by h until answered */
}
