/*
 * cluster.h — the node's link to the other roamhubd nodes through NATS JetStream (issue 13).
 * Present only when the configuration has a `cluster` section (config.h, docs/CONFIG.md
 * "cluster"); without it hub.c never creates one and the daemon never talks to NATS.
 *
 * What it does today: connects to the configured NATS servers (credentials file, TLS CA,
 * client certificate), reconnects for ever in the background, and makes sure the JetStream
 * stream that carries the routing-table changes exists with the configured replicas (subject
 * PREFIX.table, file storage). Its state answers the readiness endpoint (/readyz, admin.h): a
 * node is ready once the stream was reached; afterwards losing NATS does not take it out of the
 * load balancer (it keeps relaying on its table). Replicating admin writes through the stream is
 * NOT done yet (docs/SCALING.md "State"): writes stay local to the node that took them.
 *
 * Threads: the NATS client's own threads plus one thread of this module (connection watch and
 * stream set-up); cluster_status() may be called from any thread.
 */
#ifndef RH_CLUSTER_H
#define RH_CLUSTER_H

#include "config.h"
#include "rh_err.h"

#include <stdint.h>

typedef struct cluster cluster_t;

/* Starts connecting to cfg->cluster_nats_urls with the cluster section's credentials and TLS
 * (cfg must outlive the cluster). Does not wait for a connection: an unreachable NATS is
 * retried for ever and shows in cluster_status(). Errors: RH_ENOMEM; RH_EINVAL when the NATS
 * client refuses an option (unreadable credentials file, bad certificate), with the
 * configuration key named in diag. *out is the caller's, released with cluster_free(). */
int cluster_start(const rh_config_t *cfg, cluster_t **out, rh_diag_t *diag);

/* Stops the thread, closes the NATS connection, frees. NULL is a no-op. */
void cluster_free(cluster_t *c);

typedef struct cluster_status {
    int connected;     /* the NATS connection is up now */
    int stream_ready;  /* the stream was found or created at least once since start */
    int ready;         /* stream_ready: the node may take traffic (stays 1 when NATS goes) */
    char reason[192];  /* when !connected or !stream_ready: why, for /readyz and logs */
} cluster_status_t;

/* Fills *out with the current state. Thread-safe, never blocks on the network. */
void cluster_status(cluster_t *c, cluster_status_t *out);

#endif
