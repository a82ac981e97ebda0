/*
 * pb_router.h — Packet Broker subscriptions: shared subscription groups, their bounded queues
 * and the hand-over of routed messages to the gRPC server streams of the groups (issue 12;
 * shared/reference/packet-broker-api.md section 3).
 *
 * A group is (role, NetID, tenant ID, cluster ID, group name) — the agent opens 4 Subscribe
 * streams per role in one group (`group` = its cluster ID, or "default"). Every routed message
 * is put once into the queue of each group it is for and handed to ONE of the group's open
 * streams, chosen round-robin among those that are not congested: one copy per group, balanced
 * over its streams. Streams live on the workers that accepted them; a queued message is sent by
 * the stream's own worker (worker_post), so a grpc_call_t is only touched on its thread.
 *
 * Bounds (docs/CONFIG.md, grpc.queue_max / grpc.hold_ms): a group holds at most queue_max
 * messages; a message that finds the queue full, or that waits longer than hold_ms (no open
 * stream, or every stream congested: more than PB_STREAM_HIGH_WATER bytes not taken by the
 * client), fails: it is counted through the `on_fail` callback. A stream whose client does not
 * read therefore costs at most the gRPC server's per-call output cap, and a group at most
 * queue_max messages, for at most hold_ms. A group without streams and messages is removed
 * after hold_ms.
 *
 * Cluster (issue 13, cluster_pb.h): with pb_router_set_cluster, a group's open streams on this
 * node are announced to the cluster (group_up when its first stream opens, group_down when its
 * last closes: the node joins / leaves the group's NATS queue), and a message routed here is
 * also handed to `publish` for the groups of the other nodes, with the queue names of the
 * groups this node served itself (every local group of the party, with or without open
 * streams: such a group keeps its copy here, held as above) — one copy per group cluster-wide.
 * A copy another node published is put into the named local group by pb_router_deliver.
 *
 * Threads: every function may be called from any worker thread (one mutex per router); the
 * stream functions belong to the stream's worker. pb_router_free after the workers stopped.
 */
#ifndef RH_PB_ROUTER_H
#define RH_PB_ROUTER_H

#include "grpc_server.h"
#include "pb_filter.h"
#include "rp.h"
#include "worker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_ID_MAX 64                       /* tenant / cluster / group bytes, without NUL */
#define PB_STREAM_HIGH_WATER (256u * 1024) /* bytes queued on a stream before it is skipped */

typedef enum pb_role {
    PB_ROLE_FORWARDER = 0, /* ForwarderData/Subscribe: RoutedDownlinkMessage */
    PB_ROLE_HOME = 1,      /* HomeNetworkData/Subscribe: RoutedUplinkMessage */
} pb_role_t;

/* A Packet Broker party as the requests name it. */
typedef struct pb_ids {
    uint32_t net_id;
    char tenant[PB_ID_MAX + 1];
    char cluster[PB_ID_MAX + 1];
} pb_ids_t;

/* What a queued message carries besides its bytes, for the statistics of its outcome. */
typedef struct pb_item_meta {
    uint32_t fwd_net_id, home_net_id;
    rp_class_t cls;
    uint64_t recv_ns; /* rh_mono_ns() when the Publish arrived */
    char id[40];      /* router-assigned message ID */
    bool bridged;     /* part of a relay transaction, which counts its own outcome: the hooks
                         record events only */
    bool local_only;  /* not handed to the other cluster nodes (a home network with a TS002
                         endpoint: bridged when no group here takes it) */
    uint32_t hub_txid; /* bridged: the relay transaction's hub TransactionID (0: none) and its */
    uint32_t ans_type; /* answer type, refused at once when no cluster node subscribes */
    bool home_ts002;  /* the home network is a TS002 party (a downlink of its answer bridged to
                         a Packet Broker forwarder): counted with home protocol TS002 */
} pb_item_meta_t;

typedef struct pb_router pb_router_t;
typedef struct pb_stream pb_stream_t;

/* Statistics hooks, called on the thread that decided the outcome (w: that worker): `on_sent`
 * when a message was handed to a stream, `on_fail` when it failed (queue full: RP_OUT_UNREACHABLE;
 * held too long: RP_OUT_TIMEOUT). */
typedef struct pb_router_hooks {
    void (*on_sent)(worker_t *w, const pb_item_meta_t *m);
    void (*on_fail)(worker_t *w, const pb_item_meta_t *m, rp_outcome_t outcome, const char *why);
} pb_router_hooks_t;

/* queue_max 1..1000000 messages per group, hold_ms 100..600000. NULL on allocation failure. */
pb_router_t *pb_router_new(size_t queue_max, unsigned hold_ms, const pb_router_hooks_t *hooks);

/* Frees groups, queued messages and stream records (their calls are gone: after the workers
 * stopped). NULL is a no-op. */
void pb_router_free(pb_router_t *r);

/* Starts worker w's sweep timer (expiry, congested streams: every 100 ms) on w->base (kept in
 * w->pb_sweep). Call before the worker runs; pb_router_worker_stop frees it (on w's thread or
 * after it stopped, before the base is freed). Errors: RH_ENOMEM. */
int pb_router_worker_start(pb_router_t *r, worker_t *w);
void pb_router_worker_stop(pb_router_t *r, worker_t *w);

/* A new router-assigned message ID (32 hex characters: a random per-process prefix and a
 * counter) into out. */
void pb_router_new_id(pb_router_t *r, char out[40]);

/* Opens a stream in group (role, ids, group) for `call` on worker w (the caller's thread).
 * `filters` (home role; may be NULL) replaces the group's filters; ownership passes to the
 * router. Errors: RH_ENOMEM, RH_EFULL (more than 4096 groups). */
int pb_router_subscribe(pb_router_t *r, worker_t *w, grpc_call_t *call, pb_role_t role,
                        const pb_ids_t *ids, const char *group, pb_filter_set_t *filters,
                        pb_stream_t **out);

/* The stream's call ended (its on_cancel ran; the call must not be used any more). Queued
 * messages stay with the group. Stream's worker thread. */
void pb_router_stream_closed(pb_router_t *r, pb_stream_t *s);

/* The call of stream s (for its cancel callback's matching). */
grpc_call_t *pb_stream_call(const pb_stream_t *s);

/*
 * Uplink to home network `home` (NetID; tenant "" = the whole NetID): offered to every home-role
 * group of that NetID whose tenant is the home's (or whose tenant is "": the whole NetID) and
 * whose filters pass `facts`. encode(with_metadata, arg) produces the bytes for one group
 * (malloc'd; called at most twice, then freed here). Returns the number of groups the message
 * was for (queued, or refused by a full queue: that outcome is reported through on_fail), plus 1
 * when it was handed to the other cluster nodes (pb_router_set_cluster; not with
 * meta->local_only); 0 = no group of that home network here, every local group's filter refused
 * it, and no cluster. Errors: negative RH_ENOMEM.
 */
int pb_router_route_uplink(pb_router_t *r, worker_t *w, uint32_t home_net_id,
                           const char *home_tenant, const pb_uplink_facts_t *facts,
                           uint8_t *(*encode)(bool with_metadata, void *arg, size_t *len),
                           void *arg, const pb_item_meta_t *meta);

/* Downlink to the forwarder-role groups whose (NetID, tenant, cluster) equal `fwd` byte for
 * byte. Same returns as pb_router_route_uplink (msg is copied). */
int pb_router_route_downlink(pb_router_t *r, worker_t *w, const pb_ids_t *fwd, const uint8_t *msg,
                             size_t len, const pb_item_meta_t *meta);

/* ------------------------------------------------------------------ cluster (cluster_pb.h) */

/* A subscription group's identity (what pb_router_subscribe groups streams by). */
typedef struct pb_group_key {
    pb_role_t role;
    pb_ids_t ids;
    char name[PB_ID_MAX + 1];
} pb_group_key_t;

#define PB_QNAME_LEN 18 /* "g" + 16 hex digits + NUL: a group's NATS queue name */

/* A routed message for the groups of other nodes (pointers valid during the call only). */
typedef struct pb_remote_msg {
    pb_role_t role;
    uint32_t net_id;        /* the party the message is for */
    const char *tenant;     /* home: its tenant in the routing table; forwarder: exact */
    const char *cluster;    /* forwarder: exact ("" for a home) */
    const char *const *skip; /* queue names of the groups served by the routing node */
    size_t nskip;
    const uint8_t *enc[2];  /* [1] with gateway metadata (a downlink: the message), [0] without */
    size_t enc_len[2];
    const pb_uplink_facts_t *facts; /* home: the filters' facts; NULL for a downlink */
    const pb_item_meta_t *meta;
} pb_remote_msg_t;

/* The cluster's side (cluster_pb.c). group_up/group_down run under the router's lock (they
 * must not call back into the router); publish runs on the routing worker w, unlocked, and
 * returns true when the message was handed to the cluster. */
typedef struct pb_router_cluster {
    void *arg;
    void *(*group_up)(void *arg, const pb_group_key_t *k, const char *qname); /* handle or NULL */
    void (*group_down)(void *arg, void *handle);
    bool (*publish)(void *arg, worker_t *w, const pb_remote_msg_t *m);
} pb_router_cluster_t;

/* Sets (c copied) or clears (NULL) the cluster side. Set it before the workers run; clear it
 * before the cluster side is freed (the groups then forget their handles: cluster_pb_free
 * releases them). */
void pb_router_set_cluster(pb_router_t *r, const pb_router_cluster_t *c);

/* A message another node routed, for local group k (m as published; meta.recv_ns is this
 * node's receive time): checked against the group's tenant and filters as a local route would,
 * then queued (a full queue is reported through on_fail). Returns 1 queued or refused by a full
 * queue, 0 not for this group (gone, another tenant, filtered out, or skipped), RH_ENOMEM. */
int pb_router_deliver(pb_router_t *r, worker_t *w, const pb_group_key_t *k,
                      const pb_remote_msg_t *m);

/* Counters for /metrics and tests: groups, open streams, queued messages and bytes. */
typedef struct pb_router_stats {
    size_t groups, streams, queued, queued_bytes;
} pb_router_stats_t;
void pb_router_stats(pb_router_t *r, pb_router_stats_t *out);

#endif
