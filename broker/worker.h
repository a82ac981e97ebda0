/*
 * worker.h — one roamhubd worker thread and its plumbing: the event_base it runs, the per-thread
 * objects (TS002 listener, outbound client pool, routing-table reader, registry view, metrics),
 * and the inbox through which other threads hand it work (worker_post).
 *
 * The relay sees a worker only through this header: what it needs of the process (the shared
 * pending table, the registry slot, the drain flag, the development-loopback switch) is reached
 * through the worker's own pointers, so relay code does not depend on hub.c (hub.c creates the
 * workers and sets those pointers before a worker thread starts; they never change afterwards).
 *
 * Threads: every field belongs to the worker's thread, except the inbox (mutex), in_flight
 * (atomic, read by /metrics) and the shared objects pointed to (which lock or are atomic).
 */
#ifndef RH_WORKER_H
#define RH_WORKER_H

#include "grpc_server.h"
#include "http_server.h"
#include "metrics.h"
#include "peer_client.h"
#include "peer_registry.h"
#include "pending.h"
#include "rp.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

typedef struct worker worker_t;
typedef struct inbox_item inbox_item_t;

struct worker {
    void *hub; /* the owning hub_t (hub.c's business; the relay does not use it) */
    unsigned index;
    pthread_t thread;
    bool running; /* thread started and not yet joined */
    struct event_base *base;
    hs_server_t *ts002;
    grpc_server_t *grpc; /* Packet Broker gRPC listener (grpc_server.h); NULL when off */
    struct pb_service *pb;    /* Packet Broker data plane (pb_service.h, shared); NULL when off */
    void *pb_sweep;           /* this worker's pb_router sweep (pb_router.c) */
    struct pb_merge *pb_merge; /* this worker's copies of uplinks being merged for the TS002
                                  bridge (pb_merge.h, pb_bridge.c); NULL when merging is off */
    peer_client_t *client;
    rp_reader_t *reader;
    peer_registry_view_t view;
    metrics_t *metrics;
    /* shared with the process (set by hub.c before the thread starts) */
    pending_table_t *pending;       /* transactions awaiting an async answer, all workers */
    peer_registry_slot_t *registry; /* the published member registry */
    const atomic_int *draining;     /* non-zero once SIGTERM began the drain */
    bool dev_loopback;              /* configuration: development loopback identity allowed */
    struct cluster_txn *xnode;      /* cluster: hands answers to the node holding their
                                       transaction (cluster_txn.h); NULL on a single node */
    const struct relay_hooks *relay_hooks; /* observer of async transactions (relay.h,
                                              cluster_inflight.h); NULL: none */
    /* inbox: other threads append under inbox_mu and, when it was empty, write inbox_fd (an
     * eventfd) — the only thing they do to the worker's event_base, which has no lock of its own
     * (EVENT_BASE_FLAG_NOLOCK, hub.c; issue #15) */
    pthread_mutex_t inbox_mu;
    inbox_item_t *inbox_head, *inbox_tail;
    int inbox_fd;
    struct event *inbox_ev; /* inbox_fd readable (persistent) */
    struct event *stop_ev;
    atomic_uint in_flight; /* relay transactions owned by this worker (alive, not yet freed);
                              written by the worker, read by /metrics */
    void *relay_txns;      /* relay.c's list of those transactions (for shutdown) */
    void *relay_deadlines; /* relay.c's answer-deadline lists (relay_worker_free), or NULL */
    struct {                   /* relay.c's answerer identities for the registry of view.gen */
        uint64_t gen;          /* 0: empty */
        const void *ep[16];    /* endpoint (direct-mapped by address) */
        uint64_t id[16];       /* its pending-table answerer identity */
    } relay_answerers;
};

/* Creates the inbox (mutex, eventfd and its persistent read event on w->base). Errors: RH_ENOMEM
 * (or RH_EIO: no eventfd). */
int worker_inbox_init(worker_t *w);

/* Runs what is left in the inbox (so hand-offs free their payloads), then frees the inbox.
 * Call on the worker's thread or after it stopped. */
void worker_inbox_fini(worker_t *w);

/* Marks the calling thread as worker w's thread (worker_self). */
void worker_set_self(worker_t *w);

/* Runs `fn(w, arg)` on worker w's thread, soon. Safe from any thread: the one way another thread
 * may act on a worker (its event_base has no lock). Errors: RH_ENOMEM (fn is not called; the
 * caller still owns arg). */
int worker_post(worker_t *w, void (*fn)(worker_t *w, void *arg), void *arg);

/* The calling thread's worker, or NULL on the main thread. */
worker_t *worker_self(void);

/* The current member registry as seen by worker w (refreshed once per call when a rebuild was
 * published). Valid until w's next worker_registry() call; take peer_registry_ref to keep. */
peer_registry_t *worker_registry(worker_t *w);

#endif
