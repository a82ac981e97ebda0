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
 * load balancer (it keeps relaying on its table). Admin writes go through cluster_write (the
 * stream) and every node applies the stream to its LMDB (cluster_table.h) in batches — many
 * changes per LMDB transaction, the last applied sequence written by the same commit (rp mark
 * "cluster_applied"), so a crash never applies a change twice or loses one and a restarted node
 * applies only the rest. A node with an empty database first loads the latest table snapshot
 * (cluster_snapshot.h); the node with cluster.snapshot_every > 0 writes them.
 *
 * Threads: the NATS client's own threads plus the threads of this module: connection watch and
 * stream set-up, the applier (the consumer's callback only queues, at most 8,192 messages), and
 * with snapshot_every the snapshot writer; cluster_status() may be called from any thread.
 */
#ifndef RH_CLUSTER_H
#define RH_CLUSTER_H

#include "cluster_table.h"
#include "config.h"
#include "rh_err.h"
#include "rp.h"

#include <nats/nats.h>
#include <stdint.h>

typedef struct cluster cluster_t;

/* The table consumer's progress check, run by the watch thread about once a second (cluster.c):
 * state kept between checks. */
typedef struct cluster_progress {
    uint64_t seen;    /* the highest sequence delivered or applied at the previous check */
    uint64_t pending; /* the stream's last sequence found past `seen`, 0 if none */
} cluster_progress_t;

/* One check. have: the highest stream sequence this node delivered or applied; ask_last: reads
 * the stream's last sequence into *last and returns 0, or non-zero when the stream cannot be asked
 * now (the check then waits for the next one). A change stored past what the node has and still
 * not delivered one check later, with nothing delivered meanwhile, is a stalled consumer: returns
 * 1 (recreate the consumer from the applied sequence), else 0. ask_last is called only when
 * nothing was delivered since the previous check and no stall is pending. */
int cluster_progress_check(cluster_progress_t *p, uint64_t have,
                           int (*ask_last)(void *arg, uint64_t *last), void *arg);

/* Starts connecting to cfg->cluster_nats_urls with the cluster section's credentials and TLS
 * (cfg must outlive the cluster). Does not wait for a connection: an unreachable NATS is
 * retried for ever and shows in cluster_status(). Errors: RH_ENOMEM; RH_EINVAL when the NATS
 * client refuses an option (unreadable credentials file, bad certificate), with the
 * configuration key named in diag. *out is the caller's, released with cluster_free(). */
int cluster_start(const rh_config_t *cfg, rp_db_t *db, table_registry_fn reg, void *reg_arg,
                  cluster_t **out, rh_diag_t *diag);

/* Stops this module's threads, flushes what was published (up to 1 s) and closes the NATS
 * connection: afterwards no thread of the NATS client uses a subscription or JetStream context
 * any more, so the other cluster modules may destroy theirs (cluster_view_free). Call after
 * the modules that still publish or drain on the connection stopped (cluster_inflight_free,
 * cluster_view_stop, cluster_txn_free). Idempotent; NULL is a no-op. */
void cluster_close(cluster_t *c);

/* cluster_close, then frees the subscription, context and connection and the NATS library's
 * threads. NULL is a no-op. */
void cluster_free(cluster_t *c);

typedef struct cluster_status {
    int connected;     /* the NATS connection is up now */
    int stream_ready;  /* the stream was found or created at least once since start */
    int ready;         /* stream reached and caught up to its last sequence at subscription:
                          the node may take traffic (stays 1 when NATS goes) */
    unsigned long long applied; /* last stream sequence applied to the local LMDB */
    char reason[192];  /* when !connected or !stream_ready: why, for /readyz and logs */
} cluster_status_t;

/* Fills *out with the current state. Thread-safe, never blocks on the network. */
void cluster_status(cluster_t *c, cluster_status_t *out);

/* An admin write in a cluster: publishes `ch` to the table stream with an expected-last-sequence
 * check (the last sequence applied here; refused when another node wrote first, then retried
 * once this node has applied that), and once JetStream stored it, waits until this node's
 * applier has applied it and returns that outcome — the one every node reached, since all apply
 * the same changes in the same order with table_change_apply. Blocks the calling thread (the
 * admin listener's) up to cluster.write_timeout_ms plus 1 s; the relay never calls it.
 * *deleted (may be NULL) as table_change_apply. Errors: RH_EAGAIN (not connected to NATS, not
 * caught up, JetStream did not store it: the write did not happen; diag says why — the admin
 * API answers 503), RH_ETIMEDOUT (stored but not applied here in time: it will be), and every
 * error of table_change_apply (the write was refused on every node). */
int cluster_write(cluster_t *c, const table_change_t *ch, int *deleted, rh_diag_t *diag);

/* The node's NATS connection (owned by c, valid until cluster_free; it reconnects by itself),
 * for the other cluster modules' core NATS subjects (cluster_txn.h). */
natsConnection *cluster_nats(cluster_t *c);

#endif
