/* admin.c — operator listener: health, Prometheus metrics, and the /api/v1/ admin API (set-up
 * of its JWT keys, bootstrap operator key and TLS; the API itself is in admin_api.c and the
 * files it routes to). See admin.h. */
#include "admin.h"

#include "admin_internal.h"
#include "gateways.h"
#include "hub.h"
#include "pb_service.h"
#include "rh_fs.h"
#include "rh_log.h"
#include "rh_time.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *admin_metrics_text(hub_t *hub)
{
    metrics_t **all = calloc(hub->nworkers, sizeof *all);
    if (!all)
        return NULL;
    for (unsigned i = 0; i < hub->nworkers; i++)
        all[i] = hub->workers[i].metrics;
    unsigned long txns = 0; /* live relay transactions: a leak shows as a gauge that never falls */
    for (unsigned i = 0; i < hub->nworkers; i++)
        txns += atomic_load_explicit(&hub->workers[i].in_flight, memory_order_relaxed);
    peer_registry_view_t v = PEER_REGISTRY_VIEW_INIT;
    const peer_registry_t *reg = peer_registry_view_get(&hub->registry, &v);
    metrics_hub_gauges_t g = {
        .pending = pending_count(hub->pending),
        .members = reg ? peer_registry_member_count(reg) : 0,
        .endpoints = reg ? peer_registry_endpoint_count(reg) : 0,
        .uptime_s = (rh_mono_ms() - hub->started_mono_ms) / 1000,
        .relay_transactions = txns,
    };
    if (hub->pb) {
        pb_router_stats_t ps;
        pb_router_stats(hub->pb->router, &ps);
        g.pb = true;
        g.pb_groups = ps.groups;
        g.pb_streams = ps.streams;
        g.pb_queued = ps.queued;
        g.pb_queued_bytes = ps.queued_bytes;
    }
    peer_registry_view_release(&v);
    char *text = metrics_render(all, hub->nworkers, &g);
    free(all);
    return text;
}

static char *metrics_text_cb(void *hub) { return admin_metrics_text(hub); }

void admin_cluster_metrics_source(hub_t *hub)
{
    cluster_view_set_metrics(hub->cview, metrics_text_cb, hub);
}

static void serve_metrics(admin_api_t *a, hs_req_t *req)
{
    char *text = admin_metrics_text(a->hub);
    if (!text) {
        hs_reply(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    hs_reply(req, 200, METRICS_CONTENT_TYPE, text, strlen(text));
    free(text);
}

/* Readiness for load balancers: 200 "ready" when the node should take traffic; 503 with the
 * reason while draining or (cluster) before the node first reached its JetStream stream. A
 * cluster node that lost NATS afterwards stays ready (it relays on its last table) and says so. */
static void serve_readyz(admin_api_t *a, hs_req_t *req)
{
    char body[256];
    int status = 200;
    if (atomic_load(&a->hub->draining)) {
        status = 503;
        snprintf(body, sizeof body, "not ready: draining\n");
    } else if (a->hub->cluster) {
        cluster_status_t st;
        cluster_status(a->hub->cluster, &st);
        if (!st.ready) {
            status = 503;
            snprintf(body, sizeof body, "not ready: cluster: %s\n", st.reason);
        } else if (!st.connected) {
            snprintf(body, sizeof body, "ready (cluster: %s; relaying on the last table)\n",
                     st.reason);
        } else {
            snprintf(body, sizeof body, "ready\n");
        }
    } else {
        snprintf(body, sizeof body, "ready\n");
    }
    hs_reply(req, status, "text/plain", body, strlen(body));
}

static void handle(hs_req_t *req, void *arg)
{
    admin_api_t *a = arg;
    const char *path = hs_req_path(req);
    int get = strcmp(hs_req_method(req), "GET") == 0;
    if (get && !strcmp(path, "/healthz")) {
        int draining = atomic_load(&a->hub->draining);
        hs_reply(req, draining ? 503 : 200, "text/plain", draining ? "draining\n" : "ok\n",
                 draining ? 9 : 3);
    } else if (get && !strcmp(path, "/readyz")) {
        serve_readyz(a, req);
    } else if (get && !strcmp(path, "/metrics")) {
        serve_metrics(a, req);
    } else if (get && !strcmp(path, "/metrics/cluster")) {
        admin_cluster_metrics_serve(a, req);
    } else if (!strncmp(path, "/api/v1/", 8)) {
        admin_api_handle(a, req);
    } else if (!strcmp(path, "/healthz") || !strcmp(path, "/metrics")) {
        static const char body[] = "{\"error\":{\"code\":405,\"message\":\"use GET\"}}";
        hs_reply_ex(req, 405, "application/json", "Allow: GET\r\n", body, sizeof body - 1);
    } else if (admin_console_handle(a, req)) {
        /* the web console's files (admin_console.c) */
    } else {
        hs_reply(req, 404, "text/plain", "not found\n", 10);
    }
}

/* Reads a whole small file (keys, secrets; at most 64 KiB, not empty) into a NUL-terminated
 * buffer; the diagnostic names the configuration key. */
static int read_file(const char *path, const char *key, char **out, size_t *len, rh_diag_t *d)
{
    rh_diag_t rd;
    int rc = rh_read_file(path, 64u << 10, out, len, &rd);
    if (rc)
        return rh_diag_fail(d, rc, "%s %s", key, rd.text);
    if (*len == 0) {
        free(*out);
        *out = NULL;
        return rh_diag_fail(d, RH_EINVAL, "%s %s: empty file", key, path);
    }
    return RH_OK;
}

static int jwt_setup(admin_api_t *a, rh_diag_t *d)
{
    const rh_config_t *c = &a->hub->cfg;
    admin_jwt_opts_t o = {.alg = c->jwt_alg, .issuer = c->jwt_issuer, .audience = c->jwt_audience,
                          .ttl_s = c->jwt_ttl_s};
    char *secret = NULL, *pub = NULL, *priv = NULL;
    size_t sl = 0, pl = 0, kl = 0;
    uint8_t rnd[32];
    int rc = RH_OK;
    if (!strcmp(c->jwt_alg, "HS256")) {
        if (c->jwt_secret_file) {
            rc = read_file(c->jwt_secret_file, "admin.jwt_secret_file", &secret, &sl, d);
            while (rc == RH_OK && sl > 0 && (secret[sl - 1] == '\n' || secret[sl - 1] == '\r'))
                secret[--sl] = '\0';
            o.secret = (const uint8_t *)secret;
            o.secret_len = sl;
        } else {
            if (RAND_bytes(rnd, sizeof rnd) != 1)
                return rh_diag_fail(d, RH_ECRYPTO, "admin: no randomness for the JWT secret");
            o.secret = rnd;
            o.secret_len = sizeof rnd;
            RH_LOG(RH_LOG_INFO, "admin", "no admin.jwt_secret_file: tokens are signed with a "
                   "random secret and end with this process");
        }
    } else {
        if (!c->jwt_public_key_file)
            return rh_diag_fail(d, RH_EINVAL, "admin.jwt_public_key_file: required for %s",
                                c->jwt_alg);
        rc = read_file(c->jwt_public_key_file, "admin.jwt_public_key_file", &pub, &pl, d);
        if (rc == RH_OK && c->jwt_private_key_file)
            rc = read_file(c->jwt_private_key_file, "admin.jwt_private_key_file", &priv, &kl, d);
        o.public_key_pem = pub;
        o.private_key_pem = priv;
    }
    if (rc == RH_OK)
        rc = admin_jwt_new(&o, &a->jwt, d);
    if (secret)
        OPENSSL_cleanse(secret, sl);
    if (priv)
        OPENSSL_cleanse(priv, kl);
    OPENSSL_cleanse(rnd, sizeof rnd);
    free(secret);
    free(pub);
    free(priv);
    return rc;
}

admin_api_t *admin_new(hub_t *hub, const admin_registry_hooks_t *hooks, rh_diag_t *diag)
{
    admin_api_t *a = calloc(1, sizeof *a);
    if (!a) {
        rh_diag_fail(diag, RH_ENOMEM, "admin API");
        return NULL;
    }
    a->hub = hub;
    a->db = hub->db;
    a->reg_hooks = *hooks;
    const rh_listener_config_t *l = &hub->cfg.admin;
    if (jwt_setup(a, diag) != RH_OK || rp_reader_new(hub->db, &a->reader, diag) != RH_OK)
        goto fail;
    if (hub->cfg.operator_key_file &&
        admin_operator_key_bootstrap(hub->db, hub->cfg.operator_key_file, diag) != RH_OK)
        goto fail;
    if (hub->cfg.console_enabled) {
        if (admin_console_new(&hub->cfg, &a->console, diag) != RH_OK ||
            gw_store_new(hub->cfg.console_gateways_max, &a->gws) != RH_OK)
            goto fail;
        atomic_store(&gateways_global, a->gws); /* workers start after admin_new */
    }
    if (l->tls.cert_file) {
        SSL_CTX *ctx = tls_server_ctx_new(&l->tls, diag);
        if (!ctx)
            goto fail;
        hub->admin_tls = tls_holder_new(ctx);
        if (!hub->admin_tls) {
            SSL_CTX_free(ctx);
            rh_diag_fail(diag, RH_ENOMEM, "admin TLS");
            goto fail;
        }
    }
    hs_opts_t o = {
        .bind_addr = l->address,
        .port = l->port,
        .listen_fd = -1,
        .tls_ctx = hub->admin_tls ? tls_holder_get : NULL,
        .tls_ctx_arg = hub->admin_tls,
        .header_timeout_ms = l->header_timeout_ms,
        .body_timeout_ms = l->body_timeout_ms,
        .idle_timeout_ms = l->idle_timeout_ms,
        .max_header_bytes = l->max_header_bytes,
        .max_body_bytes = l->max_body_bytes,
        .max_connections = l->max_connections,
        .handler = handle,
        .handler_arg = a,
        .json_errors = 1,
    };
    a->srv = hs_server_new(hub->main_base, &o);
    if (!a->srv) {
        rh_diag_fail(diag, RH_EIO, "admin listener %s port %u", l->address, l->port);
        goto fail;
    }
    hub->admin = a->srv;
    hub->admin_port = hs_server_port(a->srv);
    RH_LOG(RH_LOG_INFO, "admin", "admin API ready jwt_alg=%s tls=%s issue_tokens=%s",
           admin_jwt_alg(a->jwt), hub->admin_tls ? "on" : "off",
           admin_jwt_can_issue(a->jwt) ? "yes" : "no");
    return a;
fail:
    admin_console_free(a->console);
    atomic_store(&gateways_global, NULL);
    gw_store_free(a->gws);
    admin_jwt_free(a->jwt);
    rp_reader_free(a->reader);
    tls_holder_free(hub->admin_tls);
    hub->admin_tls = NULL;
    free(a);
    return NULL;
}

const struct admin_jwt *admin_jwt_of(const admin_api_t *a)
{
    return a ? a->jwt : NULL;
}

void admin_free(admin_api_t *a)
{
    if (!a)
        return;
    admin_capture_fini(a);
    admin_capture_follow_fini(a);
    admin_stats_fini(a);
    admin_cluster_metrics_fini(a);
    admin_registry_fini(a);
    hs_server_free(a->srv);
    admin_console_free(a->console);
    /* the workers have stopped (hub_run joins them before admin_free) */
    atomic_store(&gateways_global, NULL);
    gw_store_free(a->gws);
    a->hub->admin = NULL;
    admin_jwt_free(a->jwt);
    rp_reader_free(a->reader);
    tls_holder_free(a->hub->admin_tls);
    a->hub->admin_tls = NULL;
    free(a);
}
