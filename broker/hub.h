/*
 * hub.h — roamhubd's process structure: the shared hub (configuration, LMDB routing table,
 * member registry, pending transactions, TLS contexts) and its worker threads.
 *
 * Threads: N workers, each with its own event_base, TS002 listener (all bound to one port with
 * SO_REUSEPORT), outbound client pool, routing-table reader, registry view and metrics; the main
 * thread runs the admin listener, signals, the statistics flusher, registry rebuilds and every
 * registry publication (the admin API's registry and statistics threads prepare work off it,
 * admin_registry.c, admin_stats.c). Nothing
 * on a worker blocks: LMDB reads are memory-mapped snapshot lookups; writes happen on the main
 * thread. Work for another worker (an async answer that arrived elsewhere) goes through that
 * worker's inbox (worker_post).
 */
#ifndef RH_HUB_H
#define RH_HUB_H

#include "cluster.h"
#include "cluster_inflight.h"
#include "cluster_pb.h"
#include "cluster_txn.h"
#include "cluster_view.h"
#include "config.h"
#include "http_server.h"
#include "metrics.h"
#include "peer_client.h"
#include "peer_registry.h"
#include "pending.h"
#include "rp.h"
#include "tls_server.h"
#include "worker.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct hub hub_t;

struct hub {
    rh_config_t cfg;
    rp_db_t *db;
    peer_registry_slot_t registry;
    pending_table_t *pending;
    tls_holder_t *ts002_tls, *admin_tls, *grpc_tls;
    worker_t *workers;
    unsigned nworkers;
    struct event_base *main_base;
    hs_server_t *admin;
    void *admin_api; /* admin_api_t (admin API state), NULL when disabled */
    struct pb_service *pb; /* Packet Broker data plane (pb_service.h), NULL when gRPC is off */
    uint16_t ts002_port, admin_port, grpc_port; /* grpc_port 0 when the gRPC listener is off */
    peer_addr_policy_t *addr_policy; /* where the relay may connect (peer_addr.h): the configured
                                        relay.endpoint_allow_ranges and our own listeners;
                                        complete before the workers start, read-only after */
    cluster_t *cluster; /* NATS JetStream link (cluster.h); NULL without a `cluster` section */
    cluster_txn_t *xnode; /* answers for other nodes' transactions (cluster_txn.h); or NULL */
    cluster_pb_t *xpb;    /* Packet Broker groups and answers across nodes (cluster_pb.h); or NULL */
    cluster_view_t *cview; /* statistics and capture across nodes (cluster_view.h); or NULL */
    cluster_inflight_t *inflight; /* a dead node's async transactions answered at their
                                     deadlines (cluster_inflight.h); or NULL */
    atomic_int draining;
    uint64_t started_mono_ms;
};

/* Rebuilds the member registry from the Member and Endpoint records in LMDB and publishes it.
 * Called at start, on SIGHUP and after imports (single writes use hub_registry_change). A
 * failed rebuild keeps the old one.
 * Errors: RH_EIO/RH_EINVAL/RH_EEXIST with diag naming the record. */
int hub_reload_registry(hub_t *hub, rh_diag_t *diag);

/* Applies one member or endpoint write to the current registry and publishes the result, on the
 * calling (main) thread: hub_registry_prepare + hub_registry_commit with no store. kind
 * RP_KIND_MEMBER or RP_KIND_ENDPOINT; exactly one of `upserted` (the record as stored) or
 * `deleted` (the record removed). Used through the admin API's synchronous registry_changed
 * hook (after the LMDB write, which the caller undoes when this refuses). Errors: as
 * peer_registry_apply (RH_EINVAL, RH_EEXIST with diag naming the record; the registry is
 * unchanged). */
int hub_registry_change(hub_t *hub, rp_kind_t kind, const ProtobufCMessage *upserted,
                        const ProtobufCMessage *deleted, rh_diag_t *diag);

/* Member/endpoint writes off the main loop (issue 18): the admin API builds the next registry
 * on its registry thread with hub_registry_prepare, then on the main loop hub_registry_commit
 * stores the record and publishes that registry, so the loop that serves /healthz spends no
 * time on the registry. */
typedef struct hub_registry_next hub_registry_next_t;

/* Builds, from the registry published now, the registry that results from one change (same
 * arguments and errors as hub_registry_change; peer_registry_apply: only the changed record is
 * parsed and validated, unchanged members and endpoints are shared). Nothing is published.
 * Any thread; the records are only read during the call. *out: owned by the caller until it is
 * passed to hub_registry_commit or hub_registry_discard. */
int hub_registry_prepare(hub_t *hub, rp_kind_t kind, const ProtobufCMessage *upserted,
                         const ProtobufCMessage *deleted, hub_registry_next_t **out,
                         rh_diag_t *diag);

/* Main thread. If a registry was published since `next` was prepared: RH_EAGAIN and nothing
 * stored (prepare again). Otherwise calls store(arg, diag) (the LMDB write of the change; NULL:
 * none) and, when it returns RH_OK, publishes `next`; returns store's result. `next` is
 * consumed in every case. */
int hub_registry_commit(hub_t *hub, hub_registry_next_t *next,
                        int (*store)(void *arg, rh_diag_t *d), void *arg, rh_diag_t *diag);

/* Drops a prepared registry that will not be committed. NULL is a no-op. Any thread. */
void hub_registry_discard(hub_registry_next_t *next);

/* SIGHUP (broker/reload.c): re-reads hub->cfg.path and applies the reloadable keys (config.h
 * config_key_reloadable: log level, TLS material, listener limits, relay timeouts and rates,
 * the metrics pair cap) to the running listeners, then rebuilds the member registry. A file
 * that does not load, fails config_check or whose TLS material does not load is refused as a
 * whole and the running configuration kept. Logs one line naming what changed and what needs a
 * restart. Ignored (logged) once the drain has started. Main thread only. */
void hub_reload(hub_t *hub);

/* Starts everything from a loaded configuration and runs until SIGTERM/SIGINT.
 * Returns the process exit code. The hub works on a copy of *cfg; SIGHUP reloads replace its
 * strings, so on return *cfg holds the configuration as last reloaded (release it with
 * config_fini as before, never an earlier copy). */
int hub_run(rh_config_t *cfg);

#endif
