/* pb_router.c — Packet Broker subscription groups and queues (see pb_router.h). */
#include "pb_router.h"

#include "rh_log.h"
#include "rh_time.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROUPS 4096
#define SWEEP_MS 100

typedef struct pb_item {
    struct pb_item *next;
    uint64_t enq_ms; /* monotonic */
    pb_item_meta_t meta;
    size_t len;
    uint8_t *data;
} pb_item_t;

typedef struct pb_group pb_group_t;

struct pb_stream {
    pb_stream_t *next; /* in the group's list while open */
    pb_router_t *r;
    pb_group_t *g;
    worker_t *w;
    grpc_call_t *call;
    unsigned tokens; /* messages this stream is asked to take from the group's queue */
    bool posted;     /* a wake is in w's inbox */
    bool closed;
    bool congested;  /* skipped until its client reads (checked by w's sweep) */
    unsigned refs;   /* open (1) + posted wake (1) + a running wake (1) */
};

struct pb_group {
    pb_group_t *next;
    pb_role_t role;
    pb_ids_t ids;
    char name[PB_ID_MAX + 1];
    pb_filter_set_t *filters;
    pb_item_t *head, *tail;
    size_t n, bytes;
    pb_stream_t *streams;
    pb_stream_t *rr; /* where the round-robin resumes */
    uint64_t idle_since_ms;
    size_t live; /* stream records pointing here (open or closed with a wake pending) */
    char qname[PB_QNAME_LEN]; /* the group's NATS queue name (cluster_pb.h) */
    void *xsub;               /* the cluster side's handle while streams are open here */
};

struct pb_router {
    pthread_mutex_t mu;
    pb_group_t *groups;
    size_t ngroups;
    size_t queue_max;
    unsigned hold_ms;
    pb_router_hooks_t hooks;
    uint64_t id_prefix;
    atomic_uint_fast64_t id_ctr;
    pb_router_cluster_t cl; /* cl.publish NULL: a single node */
};

/* The skip list of a routed message: queue names of the local groups of its party. */
typedef struct skip_list {
    char (*q)[PB_QNAME_LEN];
    const char **p;
    size_t n, cap;
    bool oom;
} skip_list_t;

static void skip_add(skip_list_t *sl, const char *q)
{
    if (sl->n == sl->cap) {
        size_t cap = sl->cap ? sl->cap * 2 : 8;
        char(*nq)[PB_QNAME_LEN] = realloc(sl->q, cap * sizeof *nq);
        if (!nq) {
            sl->oom = true;
            return;
        }
        sl->q = nq;
        sl->cap = cap;
    }
    memcpy(sl->q[sl->n++], q, PB_QNAME_LEN);
}

/* The group's NATS queue name: FNV-1a 64 of its key (role, NetID, tenant, cluster, name). */
static void qname_of(const pb_group_key_t *k, char out[PB_QNAME_LEN])
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint8_t head[5] = {(uint8_t)k->role, (uint8_t)(k->ids.net_id >> 24),
                       (uint8_t)(k->ids.net_id >> 16), (uint8_t)(k->ids.net_id >> 8),
                       (uint8_t)k->ids.net_id};
    for (size_t i = 0; i < sizeof head; i++)
        h = (h ^ head[i]) * 0x100000001b3ull;
    const char *parts[3] = {k->ids.tenant, k->ids.cluster, k->name};
    for (int j = 0; j < 3; j++)
        for (const char *c = parts[j];; c++) { /* the NUL separates the parts */
            h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
            if (!*c)
                break;
        }
    snprintf(out, PB_QNAME_LEN, "g%016llx", (unsigned long long)h);
}

/* A stream to wake after the lock is released. */
typedef struct wake_list {
    pb_stream_t *s[64];
    size_t n;
} wake_list_t;

static void stream_unref_locked(pb_router_t *r, pb_stream_t *s)
{
    (void)r;
    if (--s->refs == 0) {
        s->g->live--;
        free(s);
    }
}

pb_router_t *pb_router_new(size_t queue_max, unsigned hold_ms, const pb_router_hooks_t *hooks)
{
    pb_router_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    pthread_mutex_init(&r->mu, NULL);
    r->queue_max = queue_max ? queue_max : 1024;
    r->hold_ms = hold_ms ? hold_ms : 5000;
    if (hooks)
        r->hooks = *hooks;
    if (RAND_bytes((unsigned char *)&r->id_prefix, sizeof r->id_prefix) != 1)
        r->id_prefix = rh_mono_ns() ^ (uint64_t)rh_real_ms() << 20;
    atomic_init(&r->id_ctr, 0);
    return r;
}

static void item_free(pb_item_t *it)
{
    free(it->data);
    free(it);
}

static void group_free(pb_router_t *r, pb_group_t *g)
{
    if (g->xsub && r->cl.group_down)
        r->cl.group_down(r->cl.arg, g->xsub);
    for (pb_item_t *it = g->head, *n; it; it = n) {
        n = it->next;
        item_free(it);
    }
    for (pb_stream_t *s = g->streams, *n; s; s = n) {
        n = s->next;
        free(s); /* after the workers stopped: no wake or call refers to it any more */
    }
    pb_filter_set_free(g->filters);
    free(g);
}

void pb_router_free(pb_router_t *r)
{
    if (!r)
        return;
    for (pb_group_t *g = r->groups, *n; g; g = n) {
        n = g->next;
        group_free(r, g);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void pb_router_new_id(pb_router_t *r, char out[40])
{
    uint64_t c = atomic_fetch_add(&r->id_ctr, 1) + 1;
    snprintf(out, 40, "%016llx%016llx", (unsigned long long)r->id_prefix, (unsigned long long)c);
}

grpc_call_t *pb_stream_call(const pb_stream_t *s)
{
    return s->call;
}

/* ------------------------------------------------------------------ dispatch (locked) */

/* Gives one token to the next open, uncongested stream of g (round-robin); records the stream
 * in wl when it needs a wake. Returns false when the group has no such stream. */
static bool dispatch_one(pb_group_t *g, wake_list_t *wl)
{
    pb_stream_t *start = g->rr ? g->rr : g->streams;
    pb_stream_t *s = start;
    if (!s)
        return false;
    do {
        pb_stream_t *next = s->next ? s->next : g->streams;
        if (!s->closed && !s->congested) {
            s->tokens++;
            g->rr = next;
            if (!s->posted && wl->n < sizeof wl->s / sizeof wl->s[0]) {
                s->posted = true;
                s->refs++;
                wl->s[wl->n++] = s;
            }
            return true;
        }
        s = next;
    } while (s != start);
    return false;
}

/* Tokens held by open streams should cover the queue: hands out what is missing. */
static void dispatch_missing(pb_group_t *g, wake_list_t *wl)
{
    size_t have = 0;
    for (pb_stream_t *s = g->streams; s; s = s->next)
        if (!s->closed && !s->congested)
            have += s->tokens;
    while (have < g->n && dispatch_one(g, wl))
        have++;
}

static void wake_cb(worker_t *w, void *arg);

static void post_wakes(pb_router_t *r, wake_list_t *wl)
{
    for (size_t i = 0; i < wl->n; i++) {
        pb_stream_t *s = wl->s[i];
        if (worker_post(s->w, wake_cb, s) != RH_OK) {
            pthread_mutex_lock(&r->mu);
            s->posted = false; /* the sweep hands its tokens out again */
            stream_unref_locked(r, s);
            pthread_mutex_unlock(&r->mu);
        }
    }
    wl->n = 0;
}

static void push_tail(pb_group_t *g, pb_item_t *it)
{
    it->next = NULL;
    if (g->tail)
        g->tail->next = it;
    else
        g->head = it;
    g->tail = it;
    g->n++;
    g->bytes += it->len;
}

/* Puts a list of items (in order) back at the head of the queue. */
static void push_front_list(pb_group_t *g, pb_item_t *first)
{
    if (!first)
        return;
    pb_item_t *last = first;
    size_t n = 1, bytes = first->len;
    while (last->next) {
        last = last->next;
        n++;
        bytes += last->len;
    }
    last->next = g->head;
    g->head = first;
    if (!g->tail)
        g->tail = last;
    g->n += n;
    g->bytes += bytes;
}

static pb_item_t *pop_head(pb_group_t *g)
{
    pb_item_t *it = g->head;
    if (!it)
        return NULL;
    g->head = it->next;
    if (!g->head)
        g->tail = NULL;
    g->n--;
    g->bytes -= it->len;
    it->next = NULL;
    return it;
}

/* ------------------------------------------------------------------ the stream's worker */

static void wake_cb(worker_t *w, void *arg)
{
    pb_stream_t *s = arg;
    pb_router_t *r = s->r;
    pthread_mutex_lock(&r->mu);
    s->posted = false; /* the posted reference now belongs to this run */
    pb_item_t *batch = NULL, **tail = &batch;
    if (!s->closed && !s->congested) {
        while (s->tokens > 0) {
            pb_item_t *it = pop_head(s->g);
            if (!it)
                break;
            s->tokens--;
            *tail = it;
            tail = &it->next;
        }
    }
    s->tokens = 0;
    pthread_mutex_unlock(&r->mu);

    pb_item_t *it = batch;
    while (it) {
        if (s->closed || grpc_call_queued_bytes(s->call) > PB_STREAM_HIGH_WATER)
            break;
        int rc = grpc_call_send(s->call, it->data, it->len); /* may end the call (s->closed) */
        if (rc != RH_OK)
            break;
        pb_item_t *next = it->next;
        if (r->hooks.on_sent)
            r->hooks.on_sent(w, &it->meta);
        item_free(it);
        it = next;
    }
    wake_list_t wl = {.n = 0};
    pthread_mutex_lock(&r->mu);
    if (it) { /* not taken: back to the group, for another stream */
        if (!s->closed)
            s->congested = true;
        push_front_list(s->g, it);
    }
    dispatch_missing(s->g, &wl);
    stream_unref_locked(r, s);
    pthread_mutex_unlock(&r->mu);
    post_wakes(r, &wl);
}

int pb_router_subscribe(pb_router_t *r, worker_t *w, grpc_call_t *call, pb_role_t role,
                        const pb_ids_t *ids, const char *group, pb_filter_set_t *filters,
                        pb_stream_t **out)
{
    *out = NULL;
    pb_stream_t *s = calloc(1, sizeof *s);
    if (!s) {
        pb_filter_set_free(filters);
        return RH_ENOMEM;
    }
    s->r = r;
    s->w = w;
    s->call = call;
    s->refs = 1;
    wake_list_t wl = {.n = 0};
    pthread_mutex_lock(&r->mu);
    pb_group_t *g = r->groups;
    for (; g; g = g->next)
        if (g->role == role && g->ids.net_id == ids->net_id &&
            !strcmp(g->ids.tenant, ids->tenant) && !strcmp(g->ids.cluster, ids->cluster) &&
            !strcmp(g->name, group))
            break;
    if (!g) {
        g = r->ngroups < MAX_GROUPS ? calloc(1, sizeof *g) : NULL;
        if (!g) {
            int full = r->ngroups >= MAX_GROUPS;
            pthread_mutex_unlock(&r->mu);
            free(s);
            pb_filter_set_free(filters);
            return full ? RH_EFULL : RH_ENOMEM;
        }
        g->role = role;
        g->ids = *ids;
        snprintf(g->name, sizeof g->name, "%s", group);
        pb_group_key_t k = {.role = role, .ids = *ids};
        snprintf(k.name, sizeof k.name, "%s", group);
        qname_of(&k, g->qname);
        g->next = r->groups;
        r->groups = g;
        r->ngroups++;
    }
    if (role == PB_ROLE_HOME) { /* the latest Subscribe's filters apply to the group */
        pb_filter_set_free(g->filters);
        g->filters = filters;
    } else {
        pb_filter_set_free(filters);
    }
    s->g = g;
    g->live++;
    if (!g->streams && !g->xsub && r->cl.group_up) { /* the first open stream here */
        pb_group_key_t k = {.role = g->role, .ids = g->ids};
        memcpy(k.name, g->name, sizeof k.name);
        g->xsub = r->cl.group_up(r->cl.arg, &k, g->qname);
    }
    s->next = g->streams;
    g->streams = s;
    g->idle_since_ms = 0;
    dispatch_missing(g, &wl);
    pthread_mutex_unlock(&r->mu);
    post_wakes(r, &wl);
    *out = s;
    return RH_OK;
}

void pb_router_stream_closed(pb_router_t *r, pb_stream_t *s)
{
    wake_list_t wl = {.n = 0};
    pthread_mutex_lock(&r->mu);
    pb_group_t *g = s->g;
    s->closed = true;
    s->call = NULL;
    for (pb_stream_t **p = &g->streams; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    if (g->rr == s)
        g->rr = NULL;
    if (!g->streams && g->xsub) { /* the last open stream here: leave the group's queue */
        if (r->cl.group_down)
            r->cl.group_down(r->cl.arg, g->xsub);
        g->xsub = NULL;
    }
    s->next = NULL;
    s->tokens = 0;
    dispatch_missing(g, &wl); /* its share goes to the other streams */
    stream_unref_locked(r, s);
    pthread_mutex_unlock(&r->mu);
    post_wakes(r, &wl);
}

/* ------------------------------------------------------------------ routing */

/* Queues a copy for g (locked). Returns false when the queue is full (item freed by caller). */
static bool enqueue_locked(pb_router_t *r, pb_group_t *g, pb_item_t *it, wake_list_t *wl)
{
    if (g->n >= r->queue_max)
        return false;
    push_tail(g, it);
    g->idle_since_ms = 0;
    dispatch_one(g, wl);
    return true;
}

static pb_item_t *item_new(const pb_item_meta_t *meta, uint8_t *data, size_t len)
{
    pb_item_t *it = malloc(sizeof *it);
    if (!it)
        return NULL;
    it->next = NULL;
    it->enq_ms = rh_mono_ms();
    it->meta = *meta;
    it->data = data;
    it->len = len;
    return it;
}

/* Enqueues data (ownership taken) into g; reports a full queue. Returns 1 queued, 0 refused,
 * RH_ENOMEM. */
static int offer(pb_router_t *r, worker_t *w, pb_group_t *g, uint8_t *data, size_t len,
                 const pb_item_meta_t *meta, wake_list_t *wl, int *full)
{
    pb_item_t *it = data ? item_new(meta, data, len) : NULL;
    if (!it) {
        free(data);
        return RH_ENOMEM;
    }
    if (!enqueue_locked(r, g, it, wl)) {
        item_free(it);
        (*full)++;
        return 0;
    }
    (void)w;
    return 1;
}

/* Whether uplink-role group g is for home network (net_id, tenant). */
static bool home_match(const pb_group_t *g, uint32_t net_id, const char *tenant)
{
    return g->role == PB_ROLE_HOME && g->ids.net_id == net_id &&
           (!g->ids.tenant[0] || !strcmp(g->ids.tenant, tenant ? tenant : ""));
}

/* Whether forwarder-role group g is for the forwarder fwd (byte for byte). */
static bool fwd_match(const pb_group_t *g, const pb_ids_t *fwd)
{
    return g->role == PB_ROLE_FORWARDER && g->ids.net_id == fwd->net_id &&
           !strcmp(g->ids.tenant, fwd->tenant) && !strcmp(g->ids.cluster, fwd->cluster);
}

/* Hands m to the other nodes (the cluster side), with the skip list. Returns 1 when handed. */
static int publish_remote(pb_router_t *r, worker_t *w, pb_remote_msg_t *m, skip_list_t *sl)
{
    int handed = 0;
    if (!sl->oom && (sl->p = malloc((sl->n ? sl->n : 1) * sizeof *sl->p))) {
        for (size_t i = 0; i < sl->n; i++)
            sl->p[i] = sl->q[i];
        m->skip = sl->p;
        m->nskip = sl->n;
        handed = r->cl.publish(r->cl.arg, w, m) ? 1 : 0;
    }
    free(sl->p);
    free(sl->q);
    return handed;
}

int pb_router_route_uplink(pb_router_t *r, worker_t *w, uint32_t home_net_id,
                           const char *home_tenant, const pb_uplink_facts_t *facts,
                           uint8_t *(*encode)(bool with_metadata, void *arg, size_t *len),
                           void *arg, const pb_item_meta_t *meta)
{
    wake_list_t wl = {.n = 0};
    int queued = 0, full = 0, rc = RH_OK;
    uint8_t *enc[2] = {NULL, NULL};
    size_t enc_len[2] = {0, 0};
    bool remote = r->cl.publish && !meta->local_only;
    skip_list_t sl = {0};
    pthread_mutex_lock(&r->mu);
    for (pb_group_t *g = r->groups; g && rc == RH_OK; g = g->next) {
        if (!home_match(g, home_net_id, home_tenant))
            continue;
        if (remote) /* this group's copy is decided here, whatever the filters say */
            skip_add(&sl, g->qname);
        bool meta_on = true;
        if (!pb_filter_set_pass(g->filters, facts, &meta_on))
            continue;
        int k = meta_on ? 1 : 0;
        if (!enc[k] && !(enc[k] = encode(meta_on, arg, &enc_len[k]))) {
            rc = RH_ENOMEM;
            break;
        }
        uint8_t *copy = malloc(enc_len[k] ? enc_len[k] : 1);
        if (copy)
            memcpy(copy, enc[k], enc_len[k]);
        int o = offer(r, w, g, copy, enc_len[k], meta, &wl, &full);
        if (o < 0)
            rc = o;
        else
            queued += o;
    }
    pthread_mutex_unlock(&r->mu);
    post_wakes(r, &wl);
    int handed = 0;
    if (remote && rc == RH_OK) {
        for (int k = 0; k < 2 && rc == RH_OK; k++)
            if (!enc[k] && !(enc[k] = encode(k == 1, arg, &enc_len[k])))
                rc = RH_ENOMEM;
        if (rc == RH_OK) {
            pb_remote_msg_t m = {.role = PB_ROLE_HOME, .net_id = home_net_id,
                                 .tenant = home_tenant ? home_tenant : "", .cluster = "",
                                 .enc = {enc[0], enc[1]}, .enc_len = {enc_len[0], enc_len[1]},
                                 .facts = facts, .meta = meta};
            handed = publish_remote(r, w, &m, &sl);
            sl.q = NULL;
        }
    }
    free(sl.q);
    free(enc[0]);
    free(enc[1]);
    for (int i = 0; i < full && r->hooks.on_fail; i++)
        r->hooks.on_fail(w, meta, RP_OUT_UNREACHABLE, "subscription queue full");
    return rc ? rc : queued + full + handed;
}

int pb_router_route_downlink(pb_router_t *r, worker_t *w, const pb_ids_t *fwd, const uint8_t *msg,
                             size_t len, const pb_item_meta_t *meta)
{
    wake_list_t wl = {.n = 0};
    int queued = 0, full = 0, rc = RH_OK;
    bool remote = r->cl.publish && !meta->local_only;
    skip_list_t sl = {0};
    pthread_mutex_lock(&r->mu);
    for (pb_group_t *g = r->groups; g && rc == RH_OK; g = g->next) {
        if (!fwd_match(g, fwd))
            continue;
        if (remote)
            skip_add(&sl, g->qname);
        uint8_t *copy = malloc(len ? len : 1);
        if (copy)
            memcpy(copy, msg, len);
        int o = offer(r, w, g, copy, len, meta, &wl, &full);
        if (o < 0)
            rc = o;
        else
            queued += o;
    }
    pthread_mutex_unlock(&r->mu);
    post_wakes(r, &wl);
    int handed = 0;
    if (remote && rc == RH_OK) {
        pb_remote_msg_t m = {.role = PB_ROLE_FORWARDER, .net_id = fwd->net_id,
                             .tenant = fwd->tenant, .cluster = fwd->cluster,
                             .enc = {msg, msg}, .enc_len = {len, len}, .meta = meta};
        handed = publish_remote(r, w, &m, &sl);
        sl.q = NULL;
    }
    free(sl.q);
    for (int i = 0; i < full && r->hooks.on_fail; i++)
        r->hooks.on_fail(w, meta, RP_OUT_UNREACHABLE, "subscription queue full");
    return rc ? rc : queued + full + handed;
}

void pb_router_set_cluster(pb_router_t *r, const pb_router_cluster_t *c)
{
    pthread_mutex_lock(&r->mu);
    if (c) {
        r->cl = *c;
    } else {
        memset(&r->cl, 0, sizeof r->cl);
        for (pb_group_t *g = r->groups; g; g = g->next)
            g->xsub = NULL;
    }
    pthread_mutex_unlock(&r->mu);
}

int pb_router_deliver(pb_router_t *r, worker_t *w, const pb_group_key_t *k,
                      const pb_remote_msg_t *m)
{
    wake_list_t wl = {.n = 0};
    int rc = 0, full = 0;
    pthread_mutex_lock(&r->mu);
    pb_group_t *g = r->groups;
    for (; g; g = g->next)
        if (g->role == k->role && g->ids.net_id == k->ids.net_id &&
            !strcmp(g->ids.tenant, k->ids.tenant) && !strcmp(g->ids.cluster, k->ids.cluster) &&
            !strcmp(g->name, k->name))
            break;
    for (size_t i = 0; g && i < m->nskip; i++)
        if (!strcmp(m->skip[i], g->qname))
            g = NULL; /* the routing node served this group */
    bool meta_on = true;
    if (g && m->role == PB_ROLE_HOME &&
        (!home_match(g, m->net_id, m->tenant) || !m->facts ||
         !pb_filter_set_pass(g->filters, m->facts, &meta_on)))
        g = NULL;
    if (g && m->role == PB_ROLE_FORWARDER) {
        pb_ids_t fwd = {.net_id = m->net_id};
        snprintf(fwd.tenant, sizeof fwd.tenant, "%s", m->tenant);
        snprintf(fwd.cluster, sizeof fwd.cluster, "%s", m->cluster);
        if (!fwd_match(g, &fwd))
            g = NULL;
    }
    if (g) {
        int k2 = meta_on ? 1 : 0;
        uint8_t *copy = malloc(m->enc_len[k2] ? m->enc_len[k2] : 1);
        if (copy)
            memcpy(copy, m->enc[k2], m->enc_len[k2]);
        rc = offer(r, w, g, copy, m->enc_len[k2], m->meta, &wl, &full);
        if (rc == 0 && full)
            rc = 1;
    }
    pthread_mutex_unlock(&r->mu);
    post_wakes(r, &wl);
    if (full && r->hooks.on_fail)
        r->hooks.on_fail(w, m->meta, RP_OUT_UNREACHABLE, "subscription queue full");
    return rc;
}

/* ------------------------------------------------------------------ sweep */

typedef struct sweep {
    pb_router_t *r;
    worker_t *w;
    struct event *ev;
} sweep_t;

static void sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    sweep_t *sw = arg;
    worker_t *w = sw->w;
    pb_router_t *r = sw->r;
    uint64_t now = rh_mono_ms();
    pb_item_t *expired = NULL;
    wake_list_t wl = {.n = 0};
    pthread_mutex_lock(&r->mu);
    for (pb_group_t **pg = &r->groups; *pg;) {
        pb_group_t *g = *pg;
        while (g->head && g->head->enq_ms + r->hold_ms <= now) {
            pb_item_t *it = pop_head(g);
            it->next = expired;
            expired = it;
        }
        for (pb_stream_t *s = g->streams; s; s = s->next)
            if (s->w == w && s->congested && !s->closed &&
                grpc_call_queued_bytes(s->call) <= PB_STREAM_HIGH_WATER / 2)
                s->congested = false;
        dispatch_missing(g, &wl);
        if (!g->streams && !g->head && !g->live) {
            if (!g->idle_since_ms) {
                g->idle_since_ms = now;
            } else if (now - g->idle_since_ms > r->hold_ms) {
                *pg = g->next;
                r->ngroups--;
                group_free(r, g);
                continue;
            }
        }
        pg = &g->next;
    }
    pthread_mutex_unlock(&r->mu);
    post_wakes(r, &wl);
    while (expired) {
        pb_item_t *n = expired->next;
        if (r->hooks.on_fail)
            r->hooks.on_fail(w, &expired->meta, RP_OUT_TIMEOUT,
                             "no subscriber took it within the hold time");
        item_free(expired);
        expired = n;
    }
}

int pb_router_worker_start(pb_router_t *r, worker_t *w)
{
    sweep_t *sw = calloc(1, sizeof *sw);
    if (!sw)
        return RH_ENOMEM;
    sw->r = r;
    sw->w = w;
    sw->ev = event_new(w->base, -1, EV_PERSIST, sweep_cb, sw);
    if (!sw->ev) {
        free(sw);
        return RH_ENOMEM;
    }
    struct timeval tv = {0, SWEEP_MS * 1000};
    event_add(sw->ev, &tv);
    w->pb_sweep = sw;
    return RH_OK;
}

void pb_router_worker_stop(pb_router_t *r, worker_t *w)
{
    (void)r;
    sweep_t *sw = w->pb_sweep;
    if (sw) {
        event_free(sw->ev);
        free(sw);
        w->pb_sweep = NULL;
    }
}

void pb_router_stats(pb_router_t *r, pb_router_stats_t *o)
{
    memset(o, 0, sizeof *o);
    pthread_mutex_lock(&r->mu);
    for (pb_group_t *g = r->groups; g; g = g->next) {
        o->groups++;
        o->queued += g->n;
        o->queued_bytes += g->bytes;
        for (pb_stream_t *s = g->streams; s; s = s->next)
            o->streams++;
    }
    pthread_mutex_unlock(&r->mu);
}
