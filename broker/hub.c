/*
 * hub.c — roamhubd process structure (see hub.h): start-up, worker threads, inboxes, member
 * registry rebuilds, statistics flushes, signals (SIGTERM drain, SIGHUP reload).
 * Invariants: LMDB writes (statistics, imports) happen on the main thread only; each worker
 * touches only its own objects, except the shared pending table and registry slot, which lock.
 */
#define _GNU_SOURCE /* pthread_tryjoin_np */
#include "hub.h"

#include "admin.h"
#include "pb_bridge.h"
#include "pb_service.h"
#include "relay.h"
#include "relay_ts002.h"
#include "rh_fs.h"
#include "rh_log.h"
#include "rh_time.h"
#include "rh_version.h"
#include "rp_json.h"
#include "runtime.h"
#include "service.h"

#include <errno.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- registry */

/* A registry built from one change, not yet published (hub_registry_prepare). */
struct hub_registry_next {
    peer_registry_t *reg;
    uint64_t gen; /* generation of the registry it was built from */
};

int hub_registry_prepare(hub_t *hub, rp_kind_t kind, const ProtobufCMessage *upserted,
                         const ProtobufCMessage *deleted, hub_registry_next_t **out,
                         rh_diag_t *diag)
{
    *out = NULL;
    if ((kind != RP_KIND_MEMBER && kind != RP_KIND_ENDPOINT) || !upserted == !deleted)
        return rh_diag_fail(diag, RH_EINVAL, "registry change: one member or endpoint record");
    peer_registry_change_t c = {.op = upserted ? PEER_CHANGE_UPSERT : PEER_CHANGE_DELETE,
                                .dev_loopback = hub->cfg.dev_loopback};
    if (kind == RP_KIND_MEMBER) {
        if (upserted)
            c.member = (const Roamhub__V1__Member *)upserted;
        else
            c.member_id = ((const Roamhub__V1__Member *)deleted)->id;
    } else {
        if (upserted)
            c.endpoint = (const Roamhub__V1__Endpoint *)upserted;
        else
            c.endpoint_id = ((const Roamhub__V1__Endpoint *)deleted)->id;
    }
    hub_registry_next_t *n = calloc(1, sizeof *n);
    if (!n)
        return rh_diag_fail(diag, RH_ENOMEM, "registry change: out of memory");
    peer_registry_view_t v = PEER_REGISTRY_VIEW_INIT; /* a fresh view: reg and gen read together */
    const peer_registry_t *cur = peer_registry_view_get(&hub->registry, &v);
    n->gen = v.gen;
    uint64_t t0 = rh_mono_ns();
    int rc = peer_registry_apply(cur, &c, 1, 0, &n->reg, diag);
    peer_registry_view_release(&v);
    if (rc != RH_OK) {
        free(n);
        return rc;
    }
    RH_LOG(RH_LOG_DEBUG, "hub", "member registry prepared kind=%s op=%s members=%zu endpoints=%zu "
           "apply_us=%llu", rp_kind_name(kind), upserted ? "upsert" : "delete",
           peer_registry_member_count(n->reg), peer_registry_endpoint_count(n->reg),
           (unsigned long long)((rh_mono_ns() - t0) / 1000));
    *out = n;
    return RH_OK;
}

void hub_registry_discard(hub_registry_next_t *next)
{
    if (!next)
        return;
    peer_registry_unref(next->reg);
    free(next);
}

int hub_registry_commit(hub_t *hub, hub_registry_next_t *next,
                        int (*store)(void *arg, rh_diag_t *d), void *arg, rh_diag_t *diag)
{
    if (atomic_load_explicit(&hub->registry.gen, memory_order_acquire) != next->gen) {
        hub_registry_discard(next); /* something else was published since: build it again */
        return RH_EAGAIN;
    }
    int rc = store ? store(arg, diag) : RH_OK;
    if (rc == RH_OK && !peer_registry_slot_publish_if(&hub->registry, next->reg, next->gen)) {
        /* only the main thread publishes, so this does not happen; if it ever did, the stored
         * records are the truth: rebuild from them */
        RH_LOG(RH_LOG_WARN, "hub", "member registry changed during a write: rebuilding it");
        peer_registry_unref(next->reg);
        rh_diag_t rd = {{0}};
        if (hub_reload_registry(hub, &rd) != RH_OK)
            RH_LOG(RH_LOG_ERR, "hub", "member registry rebuild failed err=\"%s\"", rd.text);
    } else if (rc != RH_OK) {
        peer_registry_unref(next->reg);
    }
    free(next);
    return rc;
}

int hub_registry_change(hub_t *hub, rp_kind_t kind, const ProtobufCMessage *upserted,
                        const ProtobufCMessage *deleted, rh_diag_t *diag)
{
    for (;;) {
        hub_registry_next_t *n;
        int rc = hub_registry_prepare(hub, kind, upserted, deleted, &n, diag);
        if (rc != RH_OK)
            return rc;
        rc = hub_registry_commit(hub, n, NULL, NULL, diag);
        if (rc != RH_EAGAIN)
            return rc;
    }
}

/* ---------------------------------------------------------------- workers */

static void worker_stop_cb(evutil_socket_t fd, short ev, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)ev;
    event_base_loopexit(w->base, NULL);
}

static void worker_loopexit(worker_t *w, void *arg)
{
    (void)arg;
    event_base_loopexit(w->base, NULL);
}

static void worker_drained(void *arg)
{
    worker_t *w = arg;
    relay_worker_fini(w);
    /* let the failure answers and async posts go out, then stop */
    struct timeval tv = {0, 200000};
    event_add(w->stop_ev, &tv);
}

static void worker_drain(worker_t *w, void *arg)
{
    (void)arg;
    if (w->grpc)
        grpc_server_shutdown(w->grpc); /* open calls end with UNAVAILABLE, GOAWAY */
    if (w->pb)
        pb_bridge_worker_drain(w); /* merges waiting for more copies: sent now */
    hs_server_drain(w->ts002, ((hub_t *)w->hub)->cfg.drain_ms, worker_drained, w);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    worker_set_self(w);
    event_base_dispatch(w->base);
    return NULL;
}

static int worker_init(hub_t *hub, worker_t *w, unsigned index, rh_diag_t *diag)
{
    w->hub = hub;
    w->index = index;
    w->pending = hub->pending;
    w->registry = &hub->registry;
    w->draining = &hub->draining;
    w->dev_loopback = hub->cfg.dev_loopback;
    /* No lock in the worker's base (libevent takes it around every event operation otherwise,
     * ~20 lock operations per relayed message): only this thread touches it, other threads go
     * through worker_post's eventfd (issue #15). */
    struct event_config *ecfg = event_config_new();
    if (ecfg && event_config_set_flag(ecfg, EVENT_BASE_FLAG_NOLOCK) == 0)
        w->base = event_base_new_with_config(ecfg);
    if (ecfg)
        event_config_free(ecfg);
    if (!w->base)
        return rh_diag_fail(diag, RH_ENOMEM, "event base");
    int irc = worker_inbox_init(w);
    w->stop_ev = evtimer_new(w->base, worker_stop_cb, w);
    w->metrics = metrics_new();
    /* The outbound connection bounds are for the hub: each worker's client gets its share. */
    unsigned nw = hub->nworkers;
    peer_client_opts_t po = {
        .inflight_divisor = nw,
        .addr_policy = hub->addr_policy,
        .max_conns_per_endpoint = (hub->cfg.outbound_conns_per_endpoint + nw - 1) / nw,
        .max_conns_total = (hub->cfg.outbound_conns_total + nw - 1) / nw,
        .rx_stamps = hub->cfg.hub_latency,
    };
    if (irc != RH_OK || !w->stop_ev || !w->metrics ||
        peer_client_new(w->base, &po, &w->client) != RH_OK)
        return rh_diag_fail(diag, RH_ENOMEM, "worker %u", index);
    int rc = rp_reader_new(hub->db, &w->reader, diag);
    if (rc)
        return rc;
    const rh_listener_config_t *l = &hub->cfg.ts002;
    hs_opts_t o = {
        .bind_addr = l->address,
        .port = index == 0 ? l->port : hub->ts002_port,
        .reuse_port = 1,
        .listen_fd = -1,
        .tls_ctx = hub->ts002_tls ? tls_holder_get : NULL,
        .tls_ctx_arg = hub->ts002_tls,
        .header_timeout_ms = l->header_timeout_ms,
        .body_timeout_ms = l->body_timeout_ms,
        .idle_timeout_ms = l->idle_timeout_ms,
        .max_header_bytes = l->max_header_bytes,
        .max_body_bytes = l->max_body_bytes,
        .max_connections = (l->max_connections + hub->nworkers - 1) / hub->nworkers,
        .handler = relay_ts002_handle_request,
        .handler_arg = w,
        .rx_stamps = hub->cfg.hub_latency,
    };
    w->ts002 = hs_server_new(w->base, &o);
    if (!w->ts002)
        return rh_diag_fail(diag, RH_EIO, "ts002 listener %s port %u", l->address, o.port);
    if (index == 0)
        hub->ts002_port = hs_server_port(w->ts002);
    if (hub->cfg.grpc_enabled) {
        const rh_listener_config_t *g = &hub->cfg.grpc;
        grpc_opts_t go = {
            .bind_addr = g->address,
            .port = index == 0 ? g->port : hub->grpc_port,
            .reuse_port = 1,
            .tls_ctx = hub->grpc_tls ? tls_holder_get : NULL,
            .tls_ctx_arg = hub->grpc_tls,
            .handshake_timeout_ms = g->header_timeout_ms,
            .idle_timeout_ms = g->idle_timeout_ms,
            .max_streams = hub->cfg.grpc_max_streams,
            .max_header_bytes = g->max_header_bytes,
            .max_msg_bytes = g->max_body_bytes,
            .max_connections = (g->max_connections + hub->nworkers - 1) / hub->nworkers,
            .methods = pb_methods, /* the Packet Broker data plane (pb_service.h) */
            .n_methods = pb_n_methods,
            .arg = w,
        };
        w->pb = hub->pb;
        if (pb_router_worker_start(hub->pb->router, w) != RH_OK)
            return rh_diag_fail(diag, RH_ENOMEM, "worker %u: Packet Broker sweep", index);
        if (pb_bridge_worker_start(w) != RH_OK)
            return rh_diag_fail(diag, RH_ENOMEM, "worker %u: Packet Broker merge table", index);
        w->grpc = grpc_server_new(w->base, &go, diag);
        if (!w->grpc)
            return RH_EIO;
        if (index == 0)
            hub->grpc_port = grpc_server_port(w->grpc);
    }
    return RH_OK;
}

/* Raises the descriptor limit and lowers the connection caps to what it allows (runtime.h), once
 * at start, before any listener exists. */
static void fit_fd_limit(hub_t *hub)
{
    rh_config_t *c = &hub->cfg;
    rt_fd_budget_t b = rt_fd_budget(rt_raise_nofile(), hub->nworkers, c->ts002.max_connections,
                                    c->admin_enabled ? c->admin.max_connections : 0);
    if (!b.clamped)
        return;
    RH_LOG(RH_LOG_WARN, "hub", "max_connections lowered to fit the file descriptor limit "
           "nofile=%llu reserve=%u ts002=%u admin=%u configured_ts002=%u configured_admin=%u",
           (unsigned long long)b.nofile, b.reserve, b.ts002_max, b.admin_max,
           c->ts002.max_connections, c->admin.max_connections);
    c->ts002.max_connections = b.ts002_max;
    if (c->admin_enabled)
        c->admin.max_connections = b.admin_max;
}

static void worker_fini(worker_t *w)
{
    if (!w->base)
        return;
    hs_server_free(w->ts002);
    grpc_server_free(w->grpc);
    peer_client_free(w->client);
    rp_reader_free(w->reader);
    peer_registry_view_release(&w->view);
    worker_inbox_fini(w);
    if (w->pb) {
        pb_bridge_worker_stop(w);
        pb_router_worker_stop(w->pb->router, w);
    }
    if (w->stop_ev)
        event_free(w->stop_ev);
    relay_worker_free(w);
    metrics_free(w->metrics);
    event_base_free(w->base);
}

/* ---------------------------------------------------------------- statistics */

static void flush_stats(hub_t *hub)
{
    int64_t minute = rh_real_ms() / 60000;
    for (unsigned i = 0; i < hub->nworkers; i++) {
        rp_stats_item_t *items;
        size_t n;
        if (metrics_take_deltas(hub->workers[i].metrics, minute, &items, &n) != RH_OK || n == 0)
            continue;
        rh_diag_t d;
        int rc = rp_stats_add(hub->db, items, n, &d);
        if (rc == RH_OK || rc == RH_EINVAL) /* to the other nodes (cluster_view.h) */
            cluster_view_publish_stats(hub->cview, items, n);
        if (rc == RH_EINVAL) /* invalid rows skipped, the others written: never retried */
            RH_LOG(RH_LOG_WARN, "stats", "rows skipped err=\"%s\"", d.text);
        else if (rc != RH_OK) {
            RH_LOG(RH_LOG_WARN, "stats", "flush failed, kept for the next try err=\"%s\"", d.text);
            metrics_restore_deltas(hub->workers[i].metrics, items, n);
        }
        free(items);
    }
}

/* Retention, a bounded slice per tick so the main loop never stalls on a large delete: minute
 * buckets after relay.stats_minute_retention_days, the hour and day roll-ups after
 * relay.stats_retention_days. */
static void prune_stats(hub_t *hub)
{
    int64_t now_min = rh_real_ms() / 60000;
    unsigned keep_min = hub->cfg.stats_minute_retention_days < hub->cfg.stats_retention_days
                            ? hub->cfg.stats_minute_retention_days
                            : hub->cfg.stats_retention_days;
    const struct {
        rp_agg_t res;
        unsigned days;
    } r[3] = {{RP_AGG_MINUTE, keep_min},
              {RP_AGG_HOUR, hub->cfg.stats_retention_days},
              {RP_AGG_DAY, hub->cfg.stats_retention_days}};
    for (unsigned i = 0; i < 3; i++)
        rp_stats_prune_res(hub->db, r[i].res, now_min - (int64_t)r[i].days * 1440, 2000, NULL,
                           NULL);
}

static void stats_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    hub_t *hub = arg;
    (void)fd;
    (void)ev;
    flush_stats(hub);
    prune_stats(hub);
}

/* ---------------------------------------------------------------- signals */

static void all_workers_stopped(hub_t *hub)
{
    event_base_loopexit(hub->main_base, NULL);
}

static void sigterm_cb(evutil_socket_t sig, short ev, void *arg)
{
    hub_t *hub = arg;
    (void)ev;
    if (atomic_exchange(&hub->draining, 1))
        return;
    RH_LOG(RH_LOG_INFO, "hub", "draining signal=%d drain_ms=%u", (int)sig, hub->cfg.drain_ms);
    service_stopping();
    for (unsigned i = 0; i < hub->nworkers; i++)
        worker_post(&hub->workers[i], worker_drain, NULL);
    if (hub->admin)
        hs_server_drain(hub->admin, hub->cfg.drain_ms, NULL, NULL);
    /* the main loop ends once every worker thread has exited (checked in a timer) */
}

static void sighup_cb(evutil_socket_t sig, short ev, void *arg)
{
    (void)sig;
    (void)ev;
    service_reloading();
    hub_reload(arg);
    service_ready("reloaded");
}

static void join_check_cb(evutil_socket_t fd, short ev, void *arg)
{
    hub_t *hub = arg;
    (void)fd;
    (void)ev;
    if (!atomic_load(&hub->draining))
        return;
    for (unsigned i = 0; i < hub->nworkers; i++) {
        worker_t *w = &hub->workers[i];
        if (w->running && pthread_tryjoin_np(w->thread, NULL) != 0)
            return; /* still running */
        w->running = false;
    }
    all_workers_stopped(hub);
}

/* ---------------------------------------------------------------- start-up */

/* jemalloc's control interface, when roamhubd links jemalloc (weak: NULL otherwise). */
extern int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen)
    __attribute__((weak));

/* Imports a roamdb JSON file (rp_json.h format) in one transaction, streamed (memory bounded
 * by the largest record, whatever the file's size). */
static int import_file(rp_db_t *db, const char *path, rh_diag_t *d)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rh_diag_fail(d, RH_EIO, "import %s: %s", path, strerror(errno));
    size_t count = 0;
    rh_diag_t d2;
    rh_diag_clear(&d2);
    int rc = rp_json_import_file(db, "import", f, 0, &count, &d2);
    fclose(f);
    if (rc)
        return rh_diag_fail(d, rc, "import %s: %s", path, d2.text);
    return RH_OK;
}

/* The admin API's hooks (admin.h): one member/endpoint record is applied incrementally (built
 * on the admin API's registry thread, committed on the main loop), an import (no record)
 * rebuilds the registry. */
static int registry_changed(void *arg, rp_kind_t kind, const ProtobufCMessage *upserted,
                            const ProtobufCMessage *deleted, rh_diag_t *d)
{
    if (upserted || deleted)
        return hub_registry_change(arg, kind, upserted, deleted, d);
    return hub_reload_registry(arg, d);
}

static int registry_prepare(void *arg, rp_kind_t kind, const ProtobufCMessage *upserted,
                            const ProtobufCMessage *deleted, void **next, rh_diag_t *d)
{
    return hub_registry_prepare(arg, kind, upserted, deleted, (hub_registry_next_t **)next, d);
}

static int registry_commit(void *arg, void *next, int (*store)(void *, rh_diag_t *),
                           void *store_arg, rh_diag_t *d)
{
    return hub_registry_commit(arg, next, store, store_arg, d);
}

static void registry_discard(void *arg, void *next)
{
    (void)arg;
    hub_registry_discard(next);
}

static int open_db(hub_t *hub, rh_diag_t *d)
{
    if (rh_mkdir_p(hub->cfg.db_path, 0750) != RH_OK)
        return rh_diag_fail(d, RH_EIO, "database.path %s: %s", hub->cfg.db_path, strerror(errno));
    rp_db_opts_t o = {.map_size = hub->cfg.db_map_size_mb << 20};
    int rc = rp_db_open(hub->cfg.db_path, &o, &hub->db, d);
    if (rc)
        return rc;
    size_t n = 0;
    rp_count(hub->db, RP_KIND_NETWORK, &n);
    if (hub->cfg.import_file && n == 0) {
        rc = import_file(hub->db, hub->cfg.import_file, d);
        if (rc)
            return rc;
        RH_LOG(RH_LOG_INFO, "hub", "imported file=%s", hub->cfg.import_file);
        /* LMDB keeps the pages a write transaction dirtied on a free list of its environment
         * until it closes (about the database's size after a large import): reopen. */
        rp_db_close(hub->db);
        hub->db = NULL;
        rc = rp_db_open(hub->cfg.db_path, &o, &hub->db, d);
        if (rc)
            return rc;
        /* jemalloc (when linked, see CMakeLists.txt) returns freed pages lazily, on later
         * allocations in the same arena: hand back what the import freed now. 4096 is
         * MALLCTL_ARENAS_ALL. */
        if (mallctl)
            mallctl("arena.4096.purge", NULL, NULL, NULL, 0);
    }
    return RH_OK;
}

const char *hub_ports_file; /* set by main: where to write {"ts002":P,"admin":P,"grpc":P} */

static void write_ports(hub_t *hub)
{
    if (!hub_ports_file)
        return;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", hub_ports_file);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f, "{\"ts002\": %u, \"admin\": %u, \"grpc\": %u, \"pid\": %ld}\n", hub->ts002_port,
            hub->admin_port, hub->grpc_port, (long)getpid());
    fclose(f);
    rename(tmp, hub_ports_file);
}

int hub_run(rh_config_t *cfg)
{
    hub_t hub_s;
    hub_t *hub = &hub_s;
    memset(hub, 0, sizeof *hub);
    hub->cfg = *cfg;
    peer_endpoint_set_default_timeout_ms(cfg->request_timeout_ms); /* before any registry */
    hub->started_mono_ms = rh_mono_ms();
    rh_log_set_level_name(cfg->log_level);
    rh_log_set_format(rh_log_format_from_name(cfg->log_format)); /* checked by config_load */
    rt_route_libevent_log();
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    rh_diag_t d = {{0}};
    /* Every failure from here on leaves through `out`, which releases whatever was built
     * (each release below accepts what was never created). */
    int exit_code = 1;
    unsigned nw = cfg->workers ? cfg->workers : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    if (nw == 0)
        nw = 1;
    if (nw > 256)
        nw = 256;
    int rc = open_db(hub, &d);
    if (rc) {
        RH_LOG(RH_LOG_ERR, "hub", "cannot open the routing table err=\"%s\"", d.text);
        goto out;
    }
    if (peer_registry_slot_init(&hub->registry, NULL) != RH_OK ||
        hub_reload_registry(hub, &d) != RH_OK) {
        RH_LOG(RH_LOG_ERR, "hub", "cannot load members and endpoints err=\"%s\"", d.text);
        goto out;
    }
    hub->nworkers = nw;
    fit_fd_limit(hub);
    if (cfg->cluster_enabled &&
        cluster_start(&hub->cfg, hub->db, registry_changed, hub, &hub->cluster, &d) != RH_OK) {
        RH_LOG(RH_LOG_ERR, "hub", "cannot start the cluster link err=\"%s\"", d.text);
        goto out;
    }
    if (peer_addr_policy_new((const char *const *)cfg->endpoint_allow, cfg->n_endpoint_allow,
                             "relay.endpoint_allow_ranges", &hub->addr_policy, &d) != RH_OK) {
        RH_LOG(RH_LOG_ERR, "hub", "cannot build the endpoint address policy err=\"%s\"", d.text);
        goto out;
    }
    hub->pending = pending_new((size_t)cfg->pending_max, nw); /* a lane per worker */
    if (hub->pending && cfg->cluster_enabled) /* TransactionIDs name their node (hub_txid.h) */
        pending_set_node(hub->pending, (uint8_t)cfg->cluster_node_id);
    if (cfg->ts002.tls.cert_file) {
        SSL_CTX *ctx = tls_server_ctx_new(&cfg->ts002.tls, &d);
        if (!ctx) {
            RH_LOG(RH_LOG_ERR, "hub", "TS002 TLS err=\"%s\"", d.text);
            goto out;
        }
        hub->ts002_tls = tls_holder_new(ctx);
    }
    if (cfg->grpc_enabled && cfg->grpc.tls.cert_file) {
        SSL_CTX *ctx = grpc_server_tls_prepare(tls_server_ctx_new(&cfg->grpc.tls, &d));
        if (!ctx) {
            RH_LOG(RH_LOG_ERR, "hub", "gRPC TLS err=\"%s\"", d.text);
            return 1;
        }
        hub->grpc_tls = tls_holder_new(ctx);
    }
    if (cfg->grpc_enabled) {
        hub->pb = calloc(1, sizeof *hub->pb);
        if (hub->pb) {
            hub->pb->router = pb_router_new(cfg->grpc_queue_max, cfg->grpc_hold_ms,
                                            &pb_router_hooks);
            snprintf(hub->pb->agent, sizeof hub->pb->agent, "roamhub/%s", rh_version());
            hub->pb->merge_window_ms = cfg->grpc_merge_window_ms;
            hub->pb->merge_max = cfg->grpc_merge_max;
            /* the sealed bridge tokens' key (pb_token.h): never logged */
            if (pb_token_key_init(&hub->pb->token_key, cfg->grpc_token_key_file, &d) != RH_OK) {
                RH_LOG(RH_LOG_ERR, "hub", "grpc token key err=\"%s\"", d.text);
                goto out;
            }
            if (!cfg->grpc_token_key_file)
                RH_LOG(RH_LOG_INFO, "hub", "no grpc.token_key_file: bridge tokens are sealed "
                       "with a random key and die with this process");
        }
        if (!hub->pb || !hub->pb->router) {
            RH_LOG(RH_LOG_ERR, "hub", "out of memory at start");
            goto out;
        }
    }
    hub->workers = calloc(nw, sizeof(worker_t));
    hub->main_base = event_base_new();
    if (!hub->pending || !hub->workers || !hub->main_base) {
        RH_LOG(RH_LOG_ERR, "hub", "out of memory at start");
        goto out;
    }
    exit_code = 0;
    for (unsigned i = 0; i < nw; i++) {
        if (worker_init(hub, &hub->workers[i], i, &d) != RH_OK) {
            RH_LOG(RH_LOG_ERR, "hub", "cannot start worker err=\"%s\"", d.text);
            exit_code = 1;
            goto out;
        }
    }
    if (hub->cluster) {
        if (cluster_txn_start(hub->cluster, &hub->cfg, hub->workers, nw, relay_ts002_answer_from_node,
                              &hub->xnode, &d) != RH_OK) {
            RH_LOG(RH_LOG_ERR, "hub", "cannot start the cluster's transaction hand-off err=\"%s\"",
                   d.text);
            exit_code = 1;
            goto out;
        }
        for (unsigned i = 0; i < nw; i++)
            hub->workers[i].xnode = hub->xnode;
        if (hub->pb) { /* Packet Broker across the nodes (cluster_pb.h) */
            cluster_txn_set_pb(hub->xnode, cluster_pb_answer_from_node);
            if (cluster_pb_start(hub->cluster, &hub->cfg, hub->workers, nw, hub->pb->router,
                                 &hub->xpb, &d) != RH_OK) {
                RH_LOG(RH_LOG_ERR, "hub", "cannot start the cluster's Packet Broker routing "
                       "err=\"%s\"", d.text);
                exit_code = 1;
                goto out;
            }
        }
        if (cluster_view_start(hub->cluster, &hub->cfg, hub->db, hub->workers[0].metrics,
                               &hub->cview, &d) != RH_OK) {
            RH_LOG(RH_LOG_ERR, "hub", "cannot start the cluster's statistics and capture view "
                   "err=\"%s\"", d.text);
            exit_code = 1;
            goto out;
        }
        if (cluster_inflight_start(hub->cluster, &hub->cfg, hub->cview, hub->workers, nw,
                                   relay_ts002_answer_orphan, &hub->inflight, &d) != RH_OK) {
            RH_LOG(RH_LOG_ERR, "hub", "cannot start the cluster's in-flight transactions "
                   "err=\"%s\"", d.text);
            exit_code = 1;
            goto out;
        }
        for (unsigned i = 0; i < nw; i++) /* the workers' threads start below */
            hub->workers[i].relay_hooks = cluster_inflight_hooks(hub->inflight);
        admin_cluster_metrics_source(hub);
    }
    if (cfg->admin_enabled) {
        admin_registry_hooks_t hooks = {registry_changed, registry_prepare, registry_commit,
                                        registry_discard, hub};
        hub->admin_api = admin_new(hub, &hooks, &d);
        if (!hub->admin_api) {
            RH_LOG(RH_LOG_ERR, "hub", "cannot start the admin API err=\"%s\"", d.text);
            exit_code = 1;
            goto out;
        }
    }
    if (hub->pb) /* workers start below: they read it without a lock */
        hub->pb->jwt = admin_jwt_of(hub->admin_api);
    /* the relay never connects to our own listeners (now that their ports are known) */
    if (peer_addr_policy_add_self(hub->addr_policy, cfg->ts002.address, hub->ts002_port) ||
        (hub->admin_api &&
         peer_addr_policy_add_self(hub->addr_policy, cfg->admin.address, hub->admin_port)) ||
        (cfg->grpc_enabled &&
         peer_addr_policy_add_self(hub->addr_policy, cfg->grpc.address, hub->grpc_port))) {
        RH_LOG(RH_LOG_ERR, "hub", "cannot record the listeners in the endpoint address policy");
        exit_code = 1;
        goto out;
    }
    RH_LOG(RH_LOG_INFO, "hub", "listening ts002=%s:%u admin=%s:%u workers=%u tls=%s dev_loopback=%s",
           cfg->ts002.address, hub->ts002_port, cfg->admin.address, hub->admin_port, nw,
           hub->ts002_tls ? "on" : "off", cfg->dev_loopback ? "on" : "off");
    if (cfg->grpc_enabled)
        RH_LOG(RH_LOG_INFO, "hub", "listening grpc=%s:%u tls=%s", cfg->grpc.address,
               hub->grpc_port, hub->grpc_tls ? "h2" : "h2c");
    for (unsigned i = 0; i < nw; i++)
        hub->workers[i].running =
            pthread_create(&hub->workers[i].thread, NULL, worker_main, &hub->workers[i]) == 0;

    struct event *sterm = evsignal_new(hub->main_base, SIGTERM, sigterm_cb, hub);
    struct event *sint = evsignal_new(hub->main_base, SIGINT, sigterm_cb, hub);
    struct event *shup = evsignal_new(hub->main_base, SIGHUP, sighup_cb, hub);
    struct event *stats = event_new(hub->main_base, -1, EV_PERSIST, stats_timer_cb, hub);
    struct event *joiner = event_new(hub->main_base, -1, EV_PERSIST, join_check_cb, hub);
    struct event *logflush = rt_log_flush_timer_new(hub->main_base);
    evsignal_add(sterm, NULL);
    evsignal_add(sint, NULL);
    evsignal_add(shup, NULL);
    /* only now: a script that signals as soon as the ports file appears must find the handlers
     * installed (before, SIGTERM/SIGHUP took their default action and killed the process) */
    write_ports(hub);
    struct timeval stv = {cfg->stats_flush_ms / 1000, (cfg->stats_flush_ms % 1000) * 1000};
    event_add(stats, &stv);
    struct timeval jtv = {0, 50000};
    event_add(joiner, &jtv);
    /* listeners bound, table open, workers running, signals handled: tell systemd (Type=notify) */
    char status[160];
    snprintf(status, sizeof status, "listening ts002=%u admin=%u", hub->ts002_port,
             hub->admin_port);
    service_ready(status);
    struct event *watchdog = service_watchdog_start(hub->main_base);
    event_base_dispatch(hub->main_base);
    if (watchdog)
        event_free(watchdog);
    event_free(sterm);
    event_free(sint);
    event_free(shup);
    event_free(stats);
    event_free(joiner);
    if (logflush)
        event_free(logflush);
    flush_stats(hub);
    rh_log_flush_suppressed(1);
    RH_LOG(RH_LOG_INFO, "hub", "stopped");
out:
    for (unsigned i = 0; hub->workers && i < nw; i++) { /* normally joined by join_check_cb */
        if (hub->workers[i].running) {
            /* (through its inbox: the worker's base has no lock for another thread's calls) */
            while (worker_post(&hub->workers[i], worker_loopexit, NULL) != RH_OK)
                usleep(1000);
            pthread_join(hub->workers[i].thread, NULL);
            hub->workers[i].running = false;
        }
    }
    for (unsigned i = 0; hub->workers && i < nw; i++) /* what worker_fini fails stays open */
        hub->workers[i].relay_hooks = NULL;
    admin_free(hub->admin_api);
    /* the cluster modules publish and drain what they still have while the connection is open;
     * then it is closed, and only then are subscriptions and JetStream contexts destroyed */
    cluster_inflight_free(hub->inflight); /* before the view: it asks the view for presence */
    cluster_view_stop(hub->cview); /* publishes the last statistics flush when it can */
    cluster_pb_free(hub->xpb);
    cluster_txn_free(hub->xnode);
    cluster_close(hub->cluster);
    cluster_view_free(hub->cview);
    cluster_free(hub->cluster);
    for (unsigned i = 0; hub->workers && i < nw; i++)
        worker_fini(&hub->workers[i]);
    free(hub->workers);
    if (hub->pb) { /* after the workers: their inboxes may still have held stream wakes */
        pb_router_free(hub->pb->router);
        free(hub->pb);
        hub->pb = NULL;
    }
    if (hub->main_base)
        event_base_free(hub->main_base);
    pending_free(hub->pending);
    peer_addr_policy_free(hub->addr_policy);
    tls_holder_free(hub->ts002_tls);
    tls_holder_free(hub->grpc_tls);
    peer_registry_slot_fini(&hub->registry);
    rp_db_close(hub->db);
    if (hub_ports_file)
        unlink(hub_ports_file);
    *cfg = hub->cfg; /* reloads swapped strings in: the caller releases the current ones */
    return exit_code;
}
