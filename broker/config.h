/*
 * config.h — roamhubd configuration: a JSON file (parsed with cJSON) over embedded defaults.
 * Every key, its unit and default is documented in docs/CONFIG.md; a missing file section keeps
 * the defaults, an unknown key is an error (typos must not pass silently), and a value of the
 * wrong type or out of range is refused with a message naming the key.
 *
 * Reload (SIGHUP): config_load() builds a complete new config; the daemon swaps it in only if
 * loading succeeded (a failed reload keeps the old configuration) and applies the reloadable
 * parts (TLS material, timeouts, limits, log level); listen addresses, worker count and the
 * database path need a restart and are reported as such.
 */
#ifndef RH_CONFIG_H
#define RH_CONFIG_H

#include "rh_err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rh_tls_config {
    char *cert_file;          /* PEM server certificate chain; NULL = plain HTTP */
    char *key_file;           /* PEM private key */
    char *client_ca_file;     /* CA bundle for client certificates; NULL = none asked */
    int require_client_cert;  /* refuse handshakes without a valid client certificate */
} rh_tls_config_t;

typedef struct rh_listener_config {
    char *address;            /* numeric IP, default "127.0.0.1" */
    uint16_t port;            /* 0 = ephemeral (printed at start) */
    rh_tls_config_t tls;
    unsigned header_timeout_ms, body_timeout_ms, idle_timeout_ms;
    size_t max_header_bytes, max_body_bytes;
    unsigned max_connections; /* whole daemon, split across workers */
} rh_listener_config_t;

typedef struct rh_config {
    char *path;               /* file it was read from, or NULL for defaults only */
    char *log_level;          /* err (error), warn (warning), info, debug: rh_log_level_from_name */
    char *log_format;         /* logfmt or json (JSON lines): rh_log_format_from_name */
    unsigned workers;         /* 0 = number of online CPUs */
    char *db_path;            /* LMDB environment directory, created if missing */
    size_t db_map_size_mb;    /* LMDB map size, MiB (grown on demand) */
    char *import_file;        /* roamdb JSON imported at start when the database is empty */

    rh_listener_config_t ts002;
    int dev_loopback;         /* TS002 listener: unauthenticated requests from loopback allowed
                                 (development only; refused unless address is loopback) */
    rh_listener_config_t admin;
    int admin_enabled;

    /* gRPC listener for Packet Broker Agents (issue 12); off unless the "grpc" section exists.
     * Uses address, port, tls (cert/key), header_timeout_ms (= handshake: accept to HTTP/2
     * preface), idle_timeout_ms, max_header_bytes, max_body_bytes (= one gRPC message),
     * max_connections of the listener record. */
    rh_listener_config_t grpc;
    int grpc_enabled;
    unsigned grpc_max_streams;    /* SETTINGS_MAX_CONCURRENT_STREAMS per connection, >= 100 */
    unsigned grpc_queue_max;      /* messages per Packet Broker subscription group (pb_router.h) */
    unsigned grpc_hold_ms;        /* a queued message fails after waiting this long */
    unsigned grpc_merge_window_ms; /* copies of one uplink merged for TS002 homes (pb_merge.h);
                                      0 = off */
    unsigned grpc_merge_max;      /* open merges per worker; beyond: sent un-merged */
    char *grpc_token_key_file;    /* 64 hex digits: the sealed bridge tokens' key (pb_token.h);
                                     NULL: random at start */

    /* relay */
    unsigned request_timeout_ms;  /* default receiver timeout when an endpoint sets none */
    unsigned drain_ms;            /* SIGTERM: time given to in-flight requests */
    unsigned stats_flush_ms;      /* per-thread counters -> statistics buckets */
    unsigned stats_retention_days;        /* hour and day roll-ups */
    unsigned stats_minute_retention_days; /* minute buckets (capped at stats_retention_days) */
    unsigned outbound_conns_per_endpoint; /* connections to one member endpoint, all workers */
    unsigned outbound_conns_total;        /* connections to every endpoint, all workers */
    unsigned pending_max;         /* pending transactions per worker */
    unsigned rate_limit_per_s;    /* default per-member request rate */
    int hub_latency;              /* plain TS002 legs read with kernel receive timestamps:
                                     roamhub_relay_latency_seconds{stage="hub_added"}; restart */
    char **endpoint_allow;        /* address ranges ("127.0.0.0/8") endpoints may use although
                                     loopback/private/link-local/... (peer_addr.h); restart */
    size_t n_endpoint_allow;

    /* admin API (JWT); see docs/CONFIG.md */
    char *jwt_alg;                /* "HS256", "ES256" or "RS256" */
    char *jwt_secret_file;        /* HS256 secret (file holding it) */
    char *jwt_public_key_file;    /* ES256/RS256 verification key (PEM) */
    char *jwt_private_key_file;   /* ES256/RS256 signing key for tokens issued by the hub */
    char *jwt_issuer, *jwt_audience;
    unsigned jwt_ttl_s;           /* lifetime of issued tokens */
    char *operator_key_file;      /* file holding the bootstrap operator API key secret */
    size_t metrics_max_peer_pairs; /* forwarder x home label pairs on /metrics (0 = none) */

    /* web console on the admin listener; see docs/console.md */
    int console_enabled;
    char *console_dir;            /* built assets; NULL = beside the executable (see docs) */
    char *console_tile_url;       /* "https://host/{z}/{x}/{y}.png" base map; NULL = none */
    char *console_tile_attribution;
    unsigned console_gateways_max; /* gateway locations kept in memory (LRU) */

    /* cluster (issue 13): the section's presence makes this node one of several sharing one
     * routing table through NATS JetStream; without it the daemon is the single node it always
     * was and never talks to NATS. Restart-only. See docs/CONFIG.md "cluster". */
    int cluster_enabled;          /* 1 when a "cluster" section is present */
    unsigned cluster_node_id;     /* 1..255, unique per node (the node bits of hub TransactionIDs) */
    char **cluster_nats_urls;     /* nats://host:port or tls://host:port, at least one */
    size_t n_cluster_nats_urls;
    char *cluster_creds_file;     /* NATS credentials file (JWT + NKey seed); NULL = none */
    char *cluster_tls_ca;         /* CA bundle verifying the NATS servers; NULL = system default */
    char *cluster_tls_cert;       /* client certificate for NATS (mutual TLS), with tls_key */
    char *cluster_tls_key;
    char *cluster_stream;         /* JetStream stream holding the routing-table changes */
    char *cluster_subject_prefix; /* subjects: PREFIX.table (writes), PREFIX.txn.N (answer hand-off) */
    unsigned cluster_replicas;    /* stream replicas (R), 1..5; 3 on a 3-server NATS cluster */
    unsigned cluster_write_timeout_ms; /* admin write: longest wait for JetStream's ack */
    unsigned cluster_nodes;       /* roamhubd nodes sharing the traffic: each member's rate
                                     limit per node is 1/cluster_nodes of it (1..255, default 1) */
    unsigned cluster_snapshot_every; /* this node writes a table snapshot to the JetStream object
                                        store after this many changes (0 = never: set it on one
                                        node); cluster_snapshot.h */
} rh_config_t;

/* Fills `cfg` with the embedded defaults (no file). Never fails except RH_ENOMEM. */
int config_defaults(rh_config_t *cfg);

/* Loads `path` over the defaults (read with rh_read_file, at most 1 MiB). Errors: RH_EIO
 * (unreadable), RH_ERANGE (larger than 1 MiB), RH_ENOMEM, RH_EINVAL (empty, JSON syntax error
 * named with its line and column, not a JSON object, unknown key,
 * wrong type, out of range, inconsistent: e.g. dev_loopback on a non-loopback address, a cluster section
 * without node_id or nats_urls) with
 * the key named in diag. On error cfg is left freed (nothing to release). */
int config_load(const char *path, rh_config_t *cfg, rh_diag_t *diag);

/* What the start would refuse beyond config_load's checks, without binding or opening
 * anything: listen addresses that are not numeric IPv4/IPv6, TLS material that does not load
 * (certificate, key, client CA: built with tls_server_ctx_new and discarded), JWT key files and
 * the import file that cannot be read, an operator key file readable by group or others, a
 * database.path that exists but is not a directory. For `roamhubd --check` and SIGHUP (a reload that fails it
 * keeps the running configuration). Errors: RH_EINVAL / RH_EIO with diag naming the key and
 * the file. */
int config_check(const rh_config_t *cfg, rh_diag_t *diag);

/* Whether the key ("log_level", "ts002.max_body_bytes", ...) takes effect on SIGHUP; the others
 * need a restart (docs/CONFIG.md marks each). */
int config_key_reloadable(const char *key);

/* The keys whose values differ between `running` and `next`, as comma-separated names:
 * reloadable ones into `changed`, restart-only ones into `restart` (each "" when none; names
 * that do not fit are replaced by ",..."). */
void config_diff(const rh_config_t *running, const rh_config_t *next, char *changed,
                 size_t changed_len, char *restart, size_t restart_len);

/* Moves the value of every reloadable key from `next` into `running` (strings change owner:
 * `running`'s old value goes to `next`, released by config_fini(next)). Restart-only keys of
 * `running` stay as they are. */
void config_adopt_reloadable(rh_config_t *running, rh_config_t *next);

/* Releases everything config_defaults/config_load allocated. NULL is a no-op. */
void config_fini(rh_config_t *cfg);

#endif
