/* admin.c — operator listener: health and Prometheus metrics (see admin.h). */
#include "admin.h"

#include "hub.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct admin_api {
    hub_t *hub;
    hs_server_t *srv;
};

static void serve_metrics(admin_api_t *a, hs_req_t *req)
{
    hub_t *hub = a->hub;
    metrics_t **all = calloc(hub->nworkers, sizeof *all);
    if (!all) {
        hs_reply(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    for (unsigned i = 0; i < hub->nworkers; i++)
        all[i] = hub->workers[i].metrics;
    char extra[512];
    peer_registry_view_t v = PEER_REGISTRY_VIEW_INIT;
    const peer_registry_t *reg = peer_registry_view_get(&hub->registry, &v);
    snprintf(extra, sizeof extra,
             "# TYPE roamhub_pending_transactions gauge\nroamhub_pending_transactions %zu\n"
             "# TYPE roamhub_members gauge\nroamhub_members %zu\n"
             "# TYPE roamhub_endpoints gauge\nroamhub_endpoints %zu\n"
             "# TYPE roamhub_uptime_seconds gauge\nroamhub_uptime_seconds %llu\n",
             pending_count(hub->pending), reg ? peer_registry_member_count(reg) : 0,
             reg ? peer_registry_endpoint_count(reg) : 0,
             (unsigned long long)((rh_mono_ms() - hub->started_mono_ms) / 1000));
    peer_registry_view_release(&v);
    char *text = metrics_render(all, hub->nworkers, extra);
    free(all);
    if (!text) {
        hs_reply(req, 503, "text/plain", "out of memory\n", 14);
        return;
    }
    hs_reply(req, 200, "text/plain; version=0.0.4", text, strlen(text));
    free(text);
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
    } else if (get && !strcmp(path, "/metrics")) {
        serve_metrics(a, req);
    } else {
        hs_reply(req, 404, "text/plain", "not found\n", 10);
    }
}

admin_api_t *admin_new(hub_t *hub, rh_diag_t *diag)
{
    admin_api_t *a = calloc(1, sizeof *a);
    if (!a) {
        rh_diag_fail(diag, RH_ENOMEM, "admin API");
        return NULL;
    }
    a->hub = hub;
    const rh_listener_config_t *l = &hub->cfg.admin;
    hs_opts_t o = {
        .bind_addr = l->address,
        .port = l->port,
        .listen_fd = -1,
        .header_timeout_ms = l->header_timeout_ms,
        .body_timeout_ms = l->body_timeout_ms,
        .idle_timeout_ms = l->idle_timeout_ms,
        .max_header_bytes = l->max_header_bytes,
        .max_body_bytes = l->max_body_bytes,
        .max_connections = l->max_connections,
        .handler = handle,
        .handler_arg = a,
    };
    a->srv = hs_server_new(hub->main_base, &o);
    if (!a->srv) {
        rh_diag_fail(diag, RH_EIO, "admin listener %s port %u", l->address, l->port);
        free(a);
        return NULL;
    }
    hub->admin = a->srv;
    hub->admin_port = hs_server_port(a->srv);
    return a;
}

void admin_free(admin_api_t *a)
{
    if (!a)
        return;
    hs_server_free(a->srv);
    a->hub->admin = NULL;
    free(a);
}
