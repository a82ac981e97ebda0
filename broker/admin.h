/*
 * admin.h — the operator listener of roamhubd (its own address/port, see docs/CONFIG.md):
 *   GET /healthz   200 "ok" (503 while draining): the process is alive
 *   GET /readyz    200 "ready" when a load balancer should send traffic here; 503 "not ready:
 *                  REASON" while draining or, in a cluster (cluster.h), before the node first
 *                  reached its JetStream stream; a cluster node that lost NATS later stays
 *                  ready and names the loss in the body
 *   GET /metrics   Prometheus text: messages by (forwarder, home, class, outcome, ResultCode),
 *                  relay latency histograms, events, pending transactions, members, endpoints.
 * Runs on the main thread's event loop; never blocks the workers (metrics are read under each
 * worker's short metrics lock).
 */
#ifndef RH_ADMIN_H
#define RH_ADMIN_H

#include "rh_err.h"
#include "rp.h"

typedef struct hub hub_t;
typedef struct admin_api admin_api_t;
typedef struct rh_config rh_config_t;

/* Called by the admin API after it changed Member or Endpoint records: for one create/replace
 * (`upserted`, the record as stored) or delete (`deleted`, the record removed) of kind
 * RP_KIND_MEMBER or RP_KIND_ENDPOINT, exactly one of the two is set and the owner applies that
 * change to the registry (incremental, hub_registry_change); after an import both are NULL and
 * the owner rebuilds the registry from the records. Returns RH_OK, or an error with diag naming
 * the record the registry refused (the admin API then undoes its write). */
typedef int (*admin_registry_changed_fn)(void *arg, rp_kind_t kind,
                                         const ProtobufCMessage *upserted,
                                         const ProtobufCMessage *deleted, rh_diag_t *diag);

/* How the admin API changes the member registry without blocking its loop (issue 18): for a
 * single Member/Endpoint write, `prepare` builds the next registry on the admin API's registry
 * thread (hub_registry_prepare: the record is only read during the call; *next is the prepared
 * registry), then, on the main loop, `commit` calls store(store_arg) — the LMDB write — and
 * publishes *next if it succeeded, or returns RH_EAGAIN without storing when the registry changed
 * since `prepare` (prepare again); `discard` drops a prepared registry never committed. Errors of
 * prepare: the registry refused the record (RH_EINVAL, RH_EEXIST with diag naming it). NULL
 * prepare: single writes use `changed` on the main loop. */
typedef struct admin_registry_hooks {
    admin_registry_changed_fn changed; /* imports (rebuild); single writes without prepare */
    int (*prepare)(void *arg, rp_kind_t kind, const ProtobufCMessage *upserted,
                   const ProtobufCMessage *deleted, void **next, rh_diag_t *diag);
    int (*commit)(void *arg, void *next, int (*store)(void *store_arg, rh_diag_t *d),
                  void *store_arg, rh_diag_t *diag);
    void (*discard)(void *arg, void *next);
    void *arg;
} admin_registry_hooks_t;

/* Starts the admin listener on hub->main_base; sets hub->admin and hub->admin_port.
 * `hooks` (copied) are how the admin API tells the hub about registry changes (it never calls
 * into hub.c itself). Errors: NULL with diag (bind failure, TLS material, out of memory). */
admin_api_t *admin_new(hub_t *hub, const admin_registry_hooks_t *hooks, rh_diag_t *diag);

/* Stops and frees. NULL is a no-op. */
void admin_free(admin_api_t *a);

/* SIGHUP (reload.c, main thread): the console's keys (console.enabled, dir, tile_url,
 * tile_attribution, gateways_max) in two steps, so that a reload stays all or nothing.
 * admin_reload_prepare builds what configuration `next` needs — the static files and CSP
 * re-read from the (new) console directory, a gateway store or the arrays of a resized one —
 * into *state; errors (RH_EIO with diag: console.dir not a directory; RH_ENOMEM) refuse the
 * reload. admin_reload_commit (after the hub adopted `next`; cannot fail) swaps it in:
 * later console requests get the new files and CSP, the store keeps its most recent entries
 * (gw_store_take), and a disabled console stops recording gateways (gateways_global NULL)
 * and answers 404. admin_reload_abort releases an unused state (NULL is a no-op). */
typedef struct admin_reload admin_reload_t;
int admin_reload_prepare(admin_api_t *a, const rh_config_t *next, admin_reload_t **state,
                         rh_diag_t *diag);
void admin_reload_commit(admin_api_t *a, admin_reload_t *state);
void admin_reload_abort(admin_reload_t *state);

/* The admin API's JWT verifier and signer (admin_jwt.h; immutable, usable from any thread): the
 * Packet Broker data plane verifies its tokens with it (pb_auth.h). Valid until admin_free. */
const struct admin_jwt *admin_jwt_of(const admin_api_t *a);

/* A cluster node's metrics text for the other nodes' GET /metrics/cluster
 * (cluster_view_set_metrics): hub.c calls it once hub->cview exists. */
void admin_cluster_metrics_source(hub_t *hub);

#endif
