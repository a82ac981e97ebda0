/*
 * admin.h — the operator listener of roamhubd (its own address/port, see docs/CONFIG.md):
 *   GET /healthz   200 "ok" (503 while draining)
 *   GET /metrics   Prometheus text: messages by (forwarder, home, class, outcome, ResultCode),
 *                  relay latency histograms, events, pending transactions, members, endpoints.
 * Runs on the main thread's event loop; never blocks the workers (metrics are read under each
 * worker's short metrics lock).
 */
#ifndef RH_ADMIN_H
#define RH_ADMIN_H

#include "rh_err.h"

typedef struct hub hub_t;
typedef struct admin_api admin_api_t;

/* Starts the admin listener on hub->main_base; sets hub->admin and hub->admin_port.
 * Errors: NULL with diag (bind failure, TLS material, out of memory). */
admin_api_t *admin_new(hub_t *hub, rh_diag_t *diag);

/* Stops and frees. NULL is a no-op. */
void admin_free(admin_api_t *a);

#endif
