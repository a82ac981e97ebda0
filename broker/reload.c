/*
 * reload.c — SIGHUP: re-read the configuration file and apply what can change while running
 * (docs/CONFIG.md marks each key "Reloadable" or "Restart to change"; config_key_reloadable is
 * the list). All or nothing: the new file must load, pass config_check and yield working TLS
 * contexts before anything is applied; a refused reload logs why and leaves the running
 * configuration whole. One line is logged per reload naming the keys that changed and the keys
 * that still need a restart. Also the member registry's (re)load from the database
 * (hub_reload_registry: at start, on SIGHUP, after an import), so this file calls nothing in
 * hub.c and hub.c calls it. Main thread only.
 */
#include "hub.h"

#include "admin.h"
#include "grpc_server.h"

#include "rh_log.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- the member registry */

typedef struct collect {
    ProtobufCMessage **items;
    size_t n, cap;
} collect_t;

static int collect_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *msg)
{
    collect_t *c = ud;
    (void)kind;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        ProtobufCMessage **ni = realloc(c->items, nc * sizeof *ni);
        if (!ni)
            return 1;
        c->items = ni;
        c->cap = nc;
    }
    /* copy: the listing's message is valid during the callback only */
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 1;
    protobuf_c_message_pack(msg, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    free(buf);
    if (!copy)
        return 1;
    c->items[c->n++] = copy;
    return 0;
}

static void collect_free(collect_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        protobuf_c_message_free_unpacked(c->items[i], NULL);
    free(c->items);
}

int hub_reload_registry(hub_t *hub, rh_diag_t *diag)
{
    collect_t members = {0}, endpoints = {0};
    char next[RP_PAGE_TOKEN_MAX];
    int rc = rp_list(hub->db, RP_KIND_MEMBER, NULL, 0, collect_cb, &members, next, sizeof next,
                     diag);
    if (rc == RH_OK)
        rc = rp_list(hub->db, RP_KIND_ENDPOINT, NULL, 0, collect_cb, &endpoints, next,
                     sizeof next, diag);
    const char **dev = NULL;
    if (rc == RH_OK && hub->cfg.dev_loopback) {
        dev = calloc(members.n + 1, sizeof *dev);
        if (!dev)
            rc = RH_ENOMEM;
        for (size_t i = 0; dev && i < members.n; i++)
            dev[i] = ((Roamhub__V1__Member *)members.items[i])->id;
    }
    peer_registry_t *reg = NULL;
    if (rc == RH_OK) {
        peer_registry_config_t pc = {
            .members = (const Roamhub__V1__Member *const *)members.items,
            .n_members = members.n,
            .endpoints = (const Roamhub__V1__Endpoint *const *)endpoints.items,
            .n_endpoints = endpoints.n,
            .dev_loopback_members = dev,
            .n_dev_loopback_members = dev ? members.n : 0,
            /* a cluster's rate limits hold for all its nodes: each node enforces its share */
            .rate_share = hub->cfg.cluster_enabled ? hub->cfg.cluster_nodes : 1,
        };
        rc = peer_registry_new(&pc, &reg, diag);
    }
    free(dev);
    if (rc == RH_OK) {
        peer_registry_slot_publish(&hub->registry, reg);
        RH_LOG(RH_LOG_INFO, "hub", "member registry loaded members=%zu endpoints=%zu", members.n,
               endpoints.n);
    }
    collect_free(&members);
    collect_free(&endpoints);
    return rc;
}

/* ---------------------------------------------------------------- the configuration */

/* Worker side: the TS002 listener's limits from the (already updated) hub configuration. The
 * post through the worker's inbox (a mutex) orders the main thread's writes before this read. */
/* A listener's configured limits, its connection cap split over `servers` servers. */
static hs_limits_t listener_limits(const rh_listener_config_t *l, unsigned servers)
{
    hs_limits_t lim = {
        .header_timeout_ms = l->header_timeout_ms,
        .body_timeout_ms = l->body_timeout_ms,
        .idle_timeout_ms = l->idle_timeout_ms,
        .max_header_bytes = l->max_header_bytes,
        .max_body_bytes = l->max_body_bytes,
        .max_connections = (l->max_connections + servers - 1) / servers,
    };
    return lim;
}

static void worker_apply_limits(worker_t *w, void *arg)
{
    (void)arg;
    const hub_t *hub = w->hub;
    hs_limits_t lim = listener_limits(&hub->cfg.ts002, hub->nworkers);
    hs_server_set_limits(w->ts002, &lim);
}

/* TLS on a listener can be renewed (new certificate, key, CA) but not switched on or off while
 * it runs: then `next` gets a copy of the running TLS keys (no change) and the switch is named
 * as needing a restart. Errors: RH_ENOMEM. */
static int keep_tls_switch(const char *sec, const rh_tls_config_t *run, rh_tls_config_t *next,
                           char *restart, size_t len)
{
    if ((run->cert_file != NULL) == (next->cert_file != NULL))
        return RH_OK;
    char **dst[] = {&next->cert_file, &next->key_file, &next->client_ca_file};
    const char *src[] = {run->cert_file, run->key_file, run->client_ca_file};
    for (int i = 0; i < 3; i++) {
        free(*dst[i]);
        *dst[i] = src[i] ? strdup(src[i]) : NULL;
        if (src[i] && !*dst[i])
            return RH_ENOMEM;
    }
    next->require_client_cert = run->require_client_cert;
    size_t used = strlen(restart);
    snprintf(restart + used, len - used, "%s%s.tls_cert (TLS on/off)", used ? "," : "", sec);
    return RH_OK;
}

/* The new context for a listener whose TLS is on, or NULL with diag when it does not load. */
static SSL_CTX *new_ctx(const char *sec, const rh_tls_config_t *t, tls_holder_t *holder,
                        rh_diag_t *d)
{
    if (!holder || !t->cert_file)
        return NULL;
    rh_diag_t td = {{0}};
    SSL_CTX *ctx = tls_server_ctx_new(t, &td);
    if (!ctx)
        rh_diag_fail(d, RH_EINVAL, "%s TLS: %s", sec, td.text);
    return ctx;
}

/* A refused reload: one line with the reason; the next configuration is released. */
static void refuse(rh_config_t *next, const char *why)
{
    RH_LOG(RH_LOG_ERR, "hub", "reload refused, keeping the running configuration err=\"%s\"", why);
    config_fini(next); /* NULL-safe; a failed config_load left nothing to release */
}

void hub_reload(hub_t *hub)
{
    rh_diag_t d = {{0}};
    if (atomic_load(&hub->draining)) {
        /* the workers may already have left their loops: nothing may be posted to them */
        RH_LOG(RH_LOG_WARN, "hub", "reload ignored: the hub is draining");
        return;
    }
    if (!hub->cfg.path) {
        if (hub_reload_registry(hub, &d) != RH_OK)
            RH_LOG(RH_LOG_ERR, "hub", "registry reload failed, keeping the old one err=\"%s\"",
                   d.text);
        return;
    }
    rh_config_t nc;
    if (config_load(hub->cfg.path, &nc, &d) != RH_OK) {
        refuse(NULL, d.text);
        return;
    }
    if (config_check(&nc, &d) != RH_OK) {
        refuse(&nc, d.text);
        return;
    }
    char tls_restart[96] = "";
    if (keep_tls_switch("ts002", &hub->cfg.ts002.tls, &nc.ts002.tls, tls_restart,
                        sizeof tls_restart) != RH_OK ||
        keep_tls_switch("admin", &hub->cfg.admin.tls, &nc.admin.tls, tls_restart,
                        sizeof tls_restart) != RH_OK) {
        refuse(&nc, rh_strerror(RH_ENOMEM));
        return;
    }
    SSL_CTX *ts_ctx = new_ctx("ts002", &nc.ts002.tls, hub->ts002_tls, &d);
    SSL_CTX *ad_ctx = d.text[0] ? NULL : new_ctx("admin", &nc.admin.tls, hub->admin_tls, &d);
    /* the gRPC listener's certificates (its own section, outside the generic key table): the
     * context needs the h2 ALPN callback, so it comes through grpc_server_tls_prepare() */
    SSL_CTX *gr_ctx = NULL;
    if (!d.text[0] && nc.grpc_enabled && hub->cfg.grpc_enabled) {
        SSL_CTX *raw = new_ctx("grpc", &nc.grpc.tls, hub->grpc_tls, &d);
        gr_ctx = raw ? grpc_server_tls_prepare(raw) : NULL;
        if (raw && !gr_ctx)
            rh_diag_fail(&d, RH_EINVAL, "grpc TLS: the h2 ALPN callback could not be installed");
    }
    /* the console's files, CSP and gateway store for the new console.* keys (admin.h) */
    admin_reload_t *console = NULL;
    if (!d.text[0] && hub->admin_api &&
        admin_reload_prepare(hub->admin_api, &nc, &console, &d) != RH_OK && !d.text[0])
        rh_diag_fail(&d, RH_EIO, "console: the new configuration could not be applied");
    if (d.text[0]) {
        SSL_CTX_free(ts_ctx);
        SSL_CTX_free(ad_ctx);
        SSL_CTX_free(gr_ctx);
        admin_reload_abort(console);
        refuse(&nc, d.text);
        return;
    }
    /* accepted: from here on nothing fails */
    char changed[512], restart[512];
    config_diff(&hub->cfg, &nc, changed, sizeof changed, restart, sizeof restart);
    if (tls_restart[0]) {
        size_t used = strlen(restart);
        snprintf(restart + used, sizeof restart - used, "%s%s", used ? "," : "", tls_restart);
    }
    if (ts_ctx)
        tls_holder_swap(hub->ts002_tls, ts_ctx);
    if (ad_ctx)
        tls_holder_swap(hub->admin_tls, ad_ctx);
    if (gr_ctx)
        tls_holder_swap(hub->grpc_tls, gr_ctx); /* new connections; open ones keep theirs */
    config_adopt_reloadable(&hub->cfg, &nc);
    config_fini(&nc);
    admin_reload_commit(hub->admin_api, console); /* NULL (no admin listener): no-op */

    rh_log_set_level_name(hub->cfg.log_level);
    rh_log_set_format(rh_log_format_from_name(hub->cfg.log_format)); /* checked by config_load */
    peer_endpoint_set_default_timeout_ms(hub->cfg.request_timeout_ms);
    metrics_set_max_peer_pairs(hub->cfg.metrics_max_peer_pairs);
    for (unsigned i = 0; i < hub->nworkers; i++)
        worker_post(&hub->workers[i], worker_apply_limits, NULL);
    if (hub->admin) {
        hs_limits_t lim = listener_limits(&hub->cfg.admin, 1);
        hs_server_set_limits(hub->admin, &lim);
    }
    char renewed[32] = "";
    if (ts_ctx)
        strcat(renewed, "ts002");
    if (ad_ctx)
        strcat(renewed, renewed[0] ? ",admin" : "admin");
    if (gr_ctx)
        strcat(renewed, renewed[0] ? ",grpc" : "grpc");
    if (!renewed[0])
        strcpy(renewed, "none");
    RH_LOG(RH_LOG_INFO, "hub",
           "configuration reloaded changed=\"%s\" tls_renewed=%s restart_needed=\"%s\"",
           changed[0] ? changed : "none", renewed, restart[0] ? restart : "none");
    if (hub_reload_registry(hub, &d) != RH_OK)
        RH_LOG(RH_LOG_ERR, "hub", "registry reload failed, keeping the old one err=\"%s\"", d.text);
}
