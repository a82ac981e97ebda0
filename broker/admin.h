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

/* Called by the admin API after it changed Member or Endpoint records: for one create/replace
 * (`upserted`, the record as stored) or delete (`deleted`, the record removed) of kind
 * RP_KIND_MEMBER or RP_KIND_ENDPOINT, exactly one of the two is set and the owner applies that
 * change to the registry (incremental, hub_registry_change); after an import both are NULL and
 * the owner rebuilds the registry from the records. Returns RH_OK, or an error with diag naming
 * the record the registry refused (the admin API then undoes its write). */
typedef int (*admin_registry_changed_fn)(void *arg, rp_kind_t kind,
                                         const ProtobufCMessage *upserted,
                                         const ProtobufCMessage *deleted, rh_diag_t *diag);

/* Starts the admin listener on hub->main_base; sets hub->admin and hub->admin_port.
 * registry_changed(arg, ...) is how the admin API tells the hub about registry changes (it never
 * calls into hub.c itself). Errors: NULL with diag (bind failure, TLS material, out of memory). */
admin_api_t *admin_new(hub_t *hub, admin_registry_changed_fn registry_changed, void *arg,
                       rh_diag_t *diag);

/* Stops and frees. NULL is a no-op. */
void admin_free(admin_api_t *a);

#endif
