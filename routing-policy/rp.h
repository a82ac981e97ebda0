/*
 * rp.h — the routing table and forwarding policies of the hub, stored in one LMDB environment
 * (DESIGN.md §4; Packet Broker routing model, reference/packet-broker.md §1.5).
 *
 * What it holds: networks, tenants, DevAddr blocks, join routes, routing policies (the routing
 * records), endpoints, members and API keys (generic records for peers/ and the admin API),
 * an audit record per change and per-minute traffic statistics. Values are roamhub.v1 protobuf
 * messages; keys are fixed-width big-endian so that byte order is numeric order:
 *   network  net_id(4)                           tenant   net_id(4) tenant(36, NUL-padded)
 *   block    prefix(4) length(1)                 join     join_eui(8) len(1) dev_eui(8) len(1)
 *   policy   fwd net_id(4) fwd tenant(36) has_home(1) home net_id(4) home tenant(36)
 *   endpoint/member/api_key: id (1..128 bytes)   audit    at_ms(8) seq(8)
 * Longest-prefix match is an MDB_SET_RANGE plus a short backwards walk that skips whole
 * sub-trees (docs/ARCHITECTURE.md, "Routing table and policies" > "Lookups"); the hot path
 * decodes values with a zero-allocation protobuf field scanner instead of
 * protobuf_c_message_unpack, and a compiled in-memory index (updated by a delta per write)
 * answers when it matches the snapshot.
 *
 * Invariants kept by every write:
 *  - prefix bits beyond the length are zero (blocks and join routes);
 *  - a DevAddr block lies inside the DevAddr prefix of its owner's NetID or of one of the owner
 *    network's delegated NetIDs, unless the block sets outside_net_id (operator override);
 *  - two overlapping blocks are always nested, and the more specific one is delegated by the
 *    owner of the less specific one: same NetID, and the outer block is NetID-level (tenant "")
 *    or belongs to the same tenant;
 *  - tenant IDs are 0..36 characters of [A-Za-z0-9._-]; record IDs 1..128 printable ASCII.
 *
 * Threads and processes: one rp_db_t per process (never use it across fork(); open it after
 * daemonizing). Any number of threads each own one rp_reader_t; one writer at a time (writes
 * serialize on an internal mutex and on LMDB's writer lock, also across processes). A committed
 * write is visible to the next rp_reader_begin() in any thread or process.
 * Errors: rh_err.h codes; a lookup that finds nothing returns RH_OK with found = 0.
 */
#ifndef RP_H
#define RP_H

#include "rh_err.h"
#include "rh_id.h"
#include "roamhub.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RP_TENANT_MAX RH_TENANT_MAX /* tenant ID length limit (key width), rules: rh_id.h */
#define RP_CLUSTER_MAX 64 /* cluster ID length limit */
#define RP_ID_MAX RH_ID_MAX         /* endpoint, member, API key and Join Server IDs (rh_id.h) */
#define RP_STATS_HIST 24  /* latency histogram: bucket i counts latencies in [2^(i-1), 2^i) µs */
#define RP_RESULT_MAX 32  /* TS002 ResultCode length limit in statistics */

typedef struct rp_db rp_db_t;
typedef struct rp_reader rp_reader_t;
typedef struct rp_txn rp_txn_t;

/* ------------------------------------------------------------------------------------------ */
/* Environment                                                                                */

typedef struct rp_db_opts {
    size_t map_size;     /* initial map size in bytes; 0 = 256 MiB */
    size_t max_map_size; /* growth limit on MDB_MAP_FULL; 0 = 16 GiB; == map_size: never grow */
    unsigned max_readers; /* LMDB reader slots; 0 = 126 */
    int no_sync;         /* 1: MDB_NOSYNC (tests, fuzzing, bulk loads): a process crash keeps
                            every commit, an OS crash may lose the last ones */
    int read_only;       /* 1: MDB_RDONLY (export, lookups from tools) */
    int no_index;        /* 1: no compiled read index and no builder thread (one-shot tools);
                            lookups then always read LMDB (same results, slower) */
    int no_builder;      /* 1: keep the index but build it only in rp_db_open and
                            rp_db_refresh (deterministic tests and fuzzing) */
} rp_db_opts_t;

/* Opens (creating if needed) the environment in directory `path` (must exist; local disk only,
 * never NFS), opens every named database and clears stale reader slots (mdb_reader_check).
 * opts may be NULL for defaults. On success *out owns the environment (rp_db_close).
 * Errors: RH_EINVAL (NULL args), RH_EIO (LMDB error; diag names the call and mdb_strerror),
 * RH_ENOMEM. */
int rp_db_open(const char *path, const rp_db_opts_t *opts, rp_db_t **out, rh_diag_t *diag);

/* Brings the compiled read index up to date with the latest committed state, in the calling
 * thread (the builder thread does this by itself shortly after every commit; tests and tools use
 * this to be deterministic). Lookups are correct without it: a reader whose snapshot the index
 * does not match reads LMDB. It waits for active readers of other threads to end their message:
 * never call it from a thread that holds an active reader while another thread might do the
 * same. Errors: RH_ENOMEM, RH_EIO (the old index stays in use). */
int rp_db_refresh(rp_db_t *db);

/* Closes the environment. Every reader must have been freed and no write txn may be open.
 * NULL is a no-op. */
void rp_db_close(rp_db_t *db);

/* Current map size in bytes (grows on MDB_MAP_FULL up to max_map_size). */
size_t rp_db_map_size(rp_db_t *db);

/* ------------------------------------------------------------------------------------------ */
/* Data plane: readers and lookups                                                            */

/* A per-thread reader: holds one LMDB read transaction that is reset between messages and
 * renewed at the next (cheap: no allocation, no lock contention). Use from one thread at a time.
 * Errors: RH_ENOMEM, RH_EIO (out of reader slots: diag says so). */
int rp_reader_new(rp_db_t *db, rp_reader_t **out, rh_diag_t *diag);
/* Frees a reader (must not be active). NULL is a no-op. */
void rp_reader_free(rp_reader_t *r);

/* Starts a consistent snapshot for one message: every lookup until rp_reader_end() sees the
 * same committed state, the latest one at the time of this call. Do not start a write
 * (rp_write_begin) on the same thread while the reader is active: a map growth would wait for
 * it. Errors: RH_EINVAL (already active), RH_EIO. */
int rp_reader_begin(rp_reader_t *r);
/* Whether the active snapshot is served by the compiled index (1) or read from LMDB (0): both
 * give the same answers; exposed for tests and metrics. */
int rp_reader_uses_index(const rp_reader_t *r);
/* Disables (on = 0) or re-enables the compiled index for this reader (tests, diagnostics);
 * takes effect at the next rp_reader_begin. */
void rp_reader_use_index(rp_reader_t *r, int on);

/* Ends the snapshot (mdb_txn_reset). Results already copied out stay valid. Idempotent. */
void rp_reader_end(rp_reader_t *r);

/* An owner or party: NetID and tenant ("" = NetID level). */
typedef struct rp_party {
    uint32_t net_id;
    char tenant_id[RP_TENANT_MAX + 1];
} rp_party_t;

/* Fills a party (tenant NULL = ""). Errors: RH_EINVAL (NetID > 0xFFFFFF, tenant too long or
 * with characters outside [A-Za-z0-9._-]). */
int rp_party_set(rp_party_t *p, uint32_t net_id, const char *tenant, rh_diag_t *diag);

/* Result of a DevAddr lookup: the most specific block containing the address. */
typedef struct rp_block_match {
    int found;                  /* 0: no block contains the DevAddr (not an error) */
    uint32_t prefix;            /* block prefix value (host order) */
    uint8_t length;             /* block prefix length in bits */
    rp_party_t owner;           /* home network (NetID + tenant) */
    char cluster_id[RP_CLUSTER_MAX + 1]; /* home cluster or "" */
} rp_block_match_t;

/* Longest-prefix match of `devaddr` (host order) over the DevAddr blocks. The reader must be
 * active. Errors: RH_EINVAL (reader not active), RH_EIO (corrupt value: diag-less, logged). */
int rp_lookup_devaddr(rp_reader_t *r, uint32_t devaddr, rp_block_match_t *out);

/* Result of a join lookup. */
typedef struct rp_join_match {
    int found;
    uint64_t join_eui_prefix;
    uint8_t join_eui_length;
    uint64_t dev_eui_prefix;
    uint8_t dev_eui_length;
    int via_join_server;        /* 1: ask join_server_id with HomeNSReq; home is unset */
    rp_party_t home;
    char join_server_id[RP_ID_MAX + 1];
} rp_join_match_t;

/* Join route of a (JoinEUI, DevEUI) pair (host-order integers): the most specific JoinEUI
 * prefix that has a route whose DevEUI prefix contains dev_eui; among the routes of that
 * JoinEUI prefix the most specific DevEUI prefix wins (DevEUI length 0 = any device).
 * Errors: as rp_lookup_devaddr. */
int rp_lookup_join(rp_reader_t *r, uint64_t join_eui, uint64_t dev_eui, rp_join_match_t *out);

/* NetIDs of known networks (a network's own NetID and its delegated NetIDs) whose DevAddr
 * prefix contains `devaddr`. Writes up to `cap` entries to netids[] and owners[] (the network
 * record holding the NetID; owners may be NULL) and the total count to *n (may exceed cap).
 * Errors: as rp_lookup_devaddr. */
int rp_lookup_netids(rp_reader_t *r, uint32_t devaddr, uint32_t *netids, uint32_t *owners,
                     size_t cap, size_t *n);

/* Policy flags of one routing policy (1 = allowed). */
typedef struct rp_flags {
    uint8_t up_join_request, up_mac_data, up_application_data, up_signal_quality,
        up_localization;
    uint8_t down_join_accept, down_mac_data, down_application_data;
} rp_flags_t;

/* Where the effective policy came from (the order in which records are tried). */
typedef enum rp_policy_source {
    RP_SRC_NONE = 0,             /* no policy: nothing flows */
    RP_SRC_TENANT_HOME_TENANT,   /* (fwd NetID+tenant) -> (home NetID+tenant) */
    RP_SRC_TENANT_HOME_NETID,    /* (fwd NetID+tenant) -> (home NetID, tenant "") */
    RP_SRC_TENANT_DEFAULT,       /* (fwd NetID+tenant) -> default */
    RP_SRC_NETID_HOME_TENANT,    /* (fwd NetID, "") -> (home NetID+tenant) */
    RP_SRC_NETID_HOME_NETID,     /* (fwd NetID, "") -> (home NetID, "") */
    RP_SRC_NETID_DEFAULT,        /* (fwd NetID, "") -> default */
} rp_policy_source_t;

typedef struct rp_policy_eff {
    rp_policy_source_t source;   /* RP_SRC_NONE: flags all zero */
    rp_flags_t flags;
} rp_policy_eff_t;

/* Effective policy for (forwarder, home). Tries, first existing record wins:
 *   1 (fN,fT)->(hN,hT)  2 (fN,fT)->(hN,"")  3 (fN,fT)->default
 *   4 (fN,"")->(hN,hT)  5 (fN,"")->(hN,"")  6 (fN,"")->default
 * Steps that would repeat an earlier key (fT or hT empty) are skipped. A tenant's own record
 * wins over its NetID's; per-home wins over default; an existing record with every flag off
 * stops the search (explicit "route nothing"), unlike no record. Errors: as rp_lookup_devaddr. */
int rp_policy_effective(rp_reader_t *r, const rp_party_t *fwd, const rp_party_t *home,
                        rp_policy_eff_t *out);

/* Message classes (also StatsBucket.message_class; values are stored, never renumber). */
typedef enum rp_class {
    RP_CLASS_JOIN_REQUEST = 0,  /* uplink join-request (PRStartReq with a join-request) */
    RP_CLASS_UPLINK_MAC = 1,    /* uplink data with FPort 0, or FOpts only (no FPort) */
    RP_CLASS_UPLINK_APP = 2,    /* uplink data with FPort 1..255 */
    RP_CLASS_JOIN_ACCEPT = 3,   /* downlink join-accept */
    RP_CLASS_DOWNLINK_MAC = 4,  /* downlink data FPort 0 / FOpts only */
    RP_CLASS_DOWNLINK_APP = 5,  /* downlink data FPort 1..255 */
    RP_CLASS_OTHER = 6,         /* PRStop, ProfileReq, HomeNSReq, notifications, answers */
    RP_CLASS_COUNT
} rp_class_t;

/* Outcomes counted in statistics (StatsBucket.outcome; stored, never renumber). */
typedef enum rp_outcome {
    RP_OUT_FORWARDED = 0,       /* delivered and answered with Success (or acknowledged) */
    RP_OUT_POLICY_DENIED = 1,   /* routing policy refused the class */
    RP_OUT_NO_ROUTE = 2,        /* no DevAddr block / join route / endpoint */
    RP_OUT_RECEIVER_ERROR = 3,  /* receiver answered a non-Success ResultCode (result_code) */
    RP_OUT_TIMEOUT = 4,         /* no answer in time */
    RP_OUT_MALFORMED = 5,       /* unreadable request */
    RP_OUT_UNAUTHORIZED = 6,    /* sender not allowed to speak for SenderID */
    RP_OUT_UNREACHABLE = 7,     /* connection or HTTP failure towards the receiver */
    RP_OUT_RATE_LIMITED = 8,    /* the sending member was over its rate limit (ResultCode Other) */
    RP_OUT_COUNT
} rp_outcome_t;

/* Why a class was denied. */
typedef enum rp_deny {
    RP_DENY_NONE = 0,           /* allowed */
    RP_DENY_NO_POLICY = 1,      /* no effective policy: nothing flows */
    RP_DENY_CLASS = 2,          /* the effective policy does not allow this class */
} rp_deny_t;

typedef struct rp_verdict {
    int allow;
    rp_deny_t reason;
    rp_policy_source_t source;
    uint8_t strip_signal_quality; /* uplinks: remove GWInfo RSSI/SNR before forwarding */
    uint8_t strip_localization;   /* uplinks: remove GWInfo Lat/Lon/FineRecvTime */
} rp_verdict_t;

/* Pure evaluation of a class against an effective policy. Uplink classes use the uplink flags
 * and set the strip flags; downlink classes use the downlink flags (never strip).
 * RP_CLASS_OTHER is allowed when any uplink or downlink class is. */
void rp_policy_eval(rp_class_t cls, const rp_policy_eff_t *eff, rp_verdict_t *out);

/* rp_policy_effective + rp_policy_eval. The policy is always the FORWARDER's: for uplinks
 * `fwd` is the network that heard the frame and `home` the device's home network; a downlink
 * from home H to forwarder F is checked with fwd = F, home = H (policy(F->H).downlink).
 * Errors: RH_EINVAL (class out of range, reader not active), RH_EIO. */
int rp_policy_check(rp_reader_t *r, rp_class_t cls, const rp_party_t *fwd,
                    const rp_party_t *home, rp_verdict_t *out);

const char *rp_class_name(rp_class_t c);     /* "join_request", ...; "?" out of range */
int rp_class_parse(const char *s, rp_class_t *out); /* RH_EINVAL on unknown names */
const char *rp_outcome_name(rp_outcome_t o); /* "forwarded", ... */
/* Parses an outcome name ("forwarded", ...). Errors: RH_EINVAL on unknown names. */
int rp_outcome_parse(const char *s, rp_outcome_t *out);
const char *rp_deny_name(rp_deny_t d);       /* "allowed", "no_policy", "class_denied" */
const char *rp_source_name(rp_policy_source_t s);

/* ------------------------------------------------------------------------------------------ */
/* Writes (one writer at a time; the admin API and tools)                                      */

typedef enum rp_kind {
    RP_KIND_NETWORK = 0,   /* Roamhub__V1__Network */
    RP_KIND_TENANT,        /* Roamhub__V1__Tenant */
    RP_KIND_BLOCK,         /* Roamhub__V1__DevAddrBlock */
    RP_KIND_JOIN_ROUTE,    /* Roamhub__V1__JoinRoute */
    RP_KIND_POLICY,        /* Roamhub__V1__RoutingPolicy */
    RP_KIND_ENDPOINT,      /* Roamhub__V1__Endpoint */
    RP_KIND_MEMBER,        /* Roamhub__V1__Member */
    RP_KIND_API_KEY,       /* Roamhub__V1__ApiKey */
    RP_KIND_COUNT
} rp_kind_t;

/* "network", "tenant", "devaddr_block", "join_route", "policy", "endpoint", "member",
 * "api_key" (the AuditRecord.kind and JSON section names use these). */
const char *rp_kind_name(rp_kind_t k);
/* The protobuf-c descriptor of a kind's message, or NULL out of range. */
const ProtobufCMessageDescriptor *rp_kind_descriptor(rp_kind_t k);

typedef enum rp_put_mode {
    RP_PUT_UPSERT = 0,  /* create or replace */
    RP_PUT_CREATE = 1,  /* RH_EEXIST if a record with the same key exists */
    RP_PUT_UPDATE = 2,  /* RH_ENOTFOUND if no record with the same key exists */
} rp_put_mode_t;

#define RP_TXN_AUDIT_SUMMARY 1u /* one audit record for the whole transaction (imports) */
/* No operation log (bulk imports: memory independent of the transaction's size). Map growth
 * then cannot be replayed: when the map must grow, the transaction is aborted, the map grown
 * (up to max_map_size), and put/delete/commit return RH_EAGAIN: abort and run the whole
 * transaction again. */
#define RP_TXN_NO_OP_LOG 2u

/* Begins a write transaction for `actor` (audit "who", e.g. an API key ID; copied). Blocks while
 * another write is open. The transaction must end with rp_txn_commit or rp_txn_abort.
 * Errors: RH_EINVAL, RH_EIO, RH_EPERM (read-only environment), RH_ENOMEM. */
int rp_txn_begin(rp_db_t *db, const char *actor, unsigned flags, rp_txn_t **out, rh_diag_t *diag);

/* Validates and stores `msg` (its descriptor must be the kind's) in the transaction, and adds an
 * audit record (create/update with before/after). The message is not retained.
 * Errors: RH_EINVAL (a field is invalid; diag names it), RH_EEXIST (CREATE on an existing key,
 * or a DevAddr block overlap: diag names the conflicting block), RH_ENOTFOUND (UPDATE of a
 * missing record), RH_EFULL (map full at max_map_size: the transaction is aborted, every later
 * call returns RH_EFULL), RH_EIO. After any error other than RH_EINVAL/RH_EEXIST/RH_ENOTFOUND
 * the transaction can only be aborted. */
int rp_txn_put(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *msg, rp_put_mode_t mode,
               rh_diag_t *diag);

/* Deletes the record whose key fields are those of `key` (other fields ignored); *deleted = 1 if
 * it existed (deleted may be NULL). Audit record "delete" with the previous value.
 * Errors: RH_EINVAL, RH_EFULL, RH_EIO. */
int rp_txn_delete(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *key, int *deleted,
                  rh_diag_t *diag);

/* Reads a record inside the write transaction (sees its own writes). *out = NULL if missing;
 * else the caller frees with protobuf_c_message_free_unpacked(*out, NULL).
 * Errors: RH_EINVAL, RH_EIO, RH_ENOMEM. */
int rp_txn_get(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *key, ProtobufCMessage **out,
               rh_diag_t *diag);

/* Deletes every record of a kind (audited once, "clear"). Errors: RH_EFULL, RH_EIO. */
int rp_txn_clear(rp_txn_t *t, rp_kind_t kind, rh_diag_t *diag);

/* Deletes what a member's NetID owns: its tenants, DevAddr blocks, join routes with that home
 * NetID, policies with that forwarder NetID (the network record and endpoints stay).
 * Used before importing one member's configuration. Errors: RH_EFULL, RH_EIO. */
int rp_txn_clear_net_id(rp_txn_t *t, uint32_t net_id, rh_diag_t *diag);

/* Commits (durable on return unless no_sync) and frees the transaction. Map growth is handled
 * inside: on MDB_MAP_FULL the write is replayed in a grown map. Errors: RH_EFULL (diag: map size
 * and limit), RH_EIO; the transaction is freed in every case. */
int rp_txn_commit(rp_txn_t *t, rh_diag_t *diag);
/* Aborts and frees. NULL is a no-op. */
void rp_txn_abort(rp_txn_t *t);

#define RP_MARK_NAME_MAX 31
/* A named 64-bit mark kept in the environment's meta database and written by the commit of `t`
 * — atomically with the transaction's records (a cluster node's last applied stream sequence:
 * a crash keeps both or neither). `name`: 1..RP_MARK_NAME_MAX characters [a-z0-9_-], the
 * stored key is "mark:" + name. Calling it again in the same transaction replaces the value.
 * Errors: RH_EINVAL (no transaction, bad name). */
int rp_txn_set_mark(rp_txn_t *t, const char *name, uint64_t value, rh_diag_t *diag);
/* Reads a mark written by rp_txn_set_mark: *value = 0 and *found = 0 when none was ever written
 * (found may be NULL). Errors: RH_EINVAL (bad name), RH_EIO. */
int rp_get_mark(rp_db_t *db, const char *name, uint64_t *value, int *found, rh_diag_t *diag);

/* Every record of every kind (networks ... API keys; not audit, statistics or indexes), packed
 * as stored, from one read snapshot, in kind then key order — with the mark `mark` of the same
 * snapshot in *mark_val (0 when never written): a cluster node's table snapshot at the stream
 * sequence it had applied. cb gets each packed record (valid during the call); a non-zero
 * return stops the dump (RH_EIO). Memory: none beyond the callback's. Any thread.
 * Errors: RH_EINVAL (bad mark name, no callback), RH_EIO. */
typedef int (*rp_dump_cb)(void *ud, rp_kind_t kind, const void *packed, size_t len);
int rp_dump(rp_db_t *db, const char *mark, uint64_t *mark_val, rp_dump_cb cb, void *ud,
            rh_diag_t *diag);

/* One-shot write: begin + put + commit. Errors: as rp_txn_begin/put/commit. */
int rp_put(rp_db_t *db, const char *actor, rp_kind_t kind, const ProtobufCMessage *msg,
           rp_put_mode_t mode, rh_diag_t *diag);
/* One-shot delete. */
int rp_delete(rp_db_t *db, const char *actor, rp_kind_t kind, const ProtobufCMessage *key,
              int *deleted, rh_diag_t *diag);
/* One-shot read (its own short read transaction). *out as rp_txn_get. */
int rp_get(rp_db_t *db, rp_kind_t kind, const ProtobufCMessage *key, ProtobufCMessage **out,
           rh_diag_t *diag);

/* Human-readable key of a record ("000013", "000013/acme", "26000000/15",
 * "70b3d57ed0000000/40,0000000000000000/0", "000013/->000505/", "000013/->*", an ID).
 * Returns RH_OK or RH_ERANGE if `cap` is too small. */
int rp_key_text(rp_kind_t kind, const ProtobufCMessage *msg, char *out, size_t cap);

/* Listing in key order, `limit` records per page (0 = unlimited). `page_token` is NULL or ""
 * for the first page, else the token a previous call returned. The callback receives each
 * unpacked record (valid during the call only); returning non-zero stops early (that record
 * counts as the last one returned). next_token (cap >= 2*511+1 = RP_PAGE_TOKEN_MAX) receives
 * the token of the next page or "" when there is none. Errors: RH_EINVAL (bad token), RH_EIO. */
#define RP_PAGE_TOKEN_MAX 1024
typedef int (*rp_list_cb)(void *ud, rp_kind_t kind, const ProtobufCMessage *msg);
int rp_list(rp_db_t *db, rp_kind_t kind, const char *page_token, size_t limit, rp_list_cb cb,
            void *ud, char *next_token, size_t next_cap, rh_diag_t *diag);

/* Audit records newer than or equal to `since_ms`, oldest first, at most `limit` (0 = all).
 * The callback gets each unpacked record. Errors: RH_EIO. */
typedef int (*rp_audit_cb)(void *ud, const Roamhub__V1__AuditRecord *rec);
int rp_audit_list(rp_db_t *db, int64_t since_ms, size_t limit, rp_audit_cb cb, void *ud,
                  rh_diag_t *diag);

/* Record count of a kind. Errors: RH_EIO. */
int rp_count(rp_db_t *db, rp_kind_t kind, size_t *n);

/* ------------------------------------------------------------------------------------------ */
/* Statistics buckets (per minute, forwarder, home, their protocols, class, outcome)            */

/* Identity kind of a statistics row's forwarder (the party that sent the request): a NetID, or
 * a Join Server (or a sender claiming to be one) named by its JoinEUI, as TS002's SenderID is
 * either. */
typedef enum rp_stats_id_kind {
    RP_STATS_ID_NETID = 0,    /* forwarder_net_id (24 bits) */
    RP_STATS_ID_JOIN_EUI = 1, /* forwarder_join_eui (64 bits); forwarder_net_id is ignored */
} rp_stats_id_kind_t;

/* The protocol one side of a statistics row spoke with the hub (issue 12): TS002 JSON over HTTP
 * or Packet Broker's gRPC data plane. Stored in bucket keys and cluster rows: never renumber.
 * TS002 is 0, so zero-initialised rows and every row written before the protocol was a dimension
 * read as TS002 (Packet Broker traffic counted then included: it was not recorded). Each side of a row has one: the forwarder's is the protocol of the forwarder
 * network (the uplink's sender, a downlink's receiver), the home's that of the home network.
 * The sending side's is the protocol it sent with; the receiving side's the one the hub forwarded
 * with (a TS002 endpoint, or a Packet Broker subscription); when the hub refused the message
 * before choosing a receiver (no route, policy, malformed, unauthorized, rate limit) the
 * receiving side counts as the sender's protocol, so refused traffic is never shown as bridged. */
typedef enum rp_protocol {
    RP_PROTO_TS002 = 0,          /* "ts002": LoRaWAN Backend Interfaces JSON over HTTP */
    RP_PROTO_PACKET_BROKER = 1,  /* "packet_broker": Packet Broker's routing v1 gRPC API */
    RP_PROTO_COUNT
} rp_protocol_t;

const char *rp_protocol_name(rp_protocol_t p); /* "ts002", "packet_broker"; "?" out of range */
/* Parses "ts002" / "packet_broker". Errors: RH_EINVAL on anything else. */
int rp_protocol_parse(const char *s, rp_protocol_t *out);

typedef struct rp_stats_item {
    int64_t minute;              /* Unix minutes */
    uint32_t forwarder_net_id;   /* forwarder_kind RP_STATS_ID_NETID */
    uint32_t home_net_id;
    rp_class_t cls;
    rp_outcome_t outcome;
    const char *result_code;     /* receiver errors: TS002 ResultCode (<= 32 chars), else NULL */
    uint64_t count;
    uint64_t latency_us_sum;
    uint64_t latency_hist[RP_STATS_HIST]; /* log2 µs buckets (rp_stats_hist_index) */
    rp_stats_id_kind_t forwarder_kind;    /* 0 (NetID) when zero-initialised */
    uint64_t forwarder_join_eui;          /* forwarder_kind RP_STATS_ID_JOIN_EUI */
    rp_protocol_t forwarder_protocol;     /* 0 (TS002) when zero-initialised */
    rp_protocol_t home_protocol;          /* 0 (TS002) when zero-initialised */
} rp_stats_item_t;

/* Histogram bucket of a latency in µs: 0 for 0, else 1 + floor(log2(us)), capped. */
unsigned rp_stats_hist_index(uint64_t latency_us);

/* Merges a batch into the minute buckets and their hour and day roll-ups in one write
 * transaction (counts, sums and histograms add).
 * Not audited. A row that is invalid (class/outcome/identity kind/protocol out of range, NetID >
 * 0xFFFFFF, negative or too large minute, result_code too long) is skipped and counted, and the
 * others are still written: one bad row never blocks a batch. Returns RH_OK when every row was
 * written; RH_EINVAL when rows were skipped — the valid ones ARE written, and diag says how many
 * were skipped and names the first one's field and reason (callers must not retry the batch).
 * RH_EFULL, RH_EIO: nothing was written (the batch may be retried). */
int rp_stats_add(rp_db_t *db, const rp_stats_item_t *items, size_t n, rh_diag_t *diag);
/* rp_stats_add that also writes the mark `mark` = mark_val (rp_txn_set_mark, rp_get_mark) in
 * the same transaction (n may be 0: the mark alone) — a cluster node adding the rows of another
 * node's stream message together with that message's sequence. Errors: as rp_stats_add, and
 * RH_EINVAL for a bad mark name (nothing written). */
int rp_stats_add_marked(rp_db_t *db, const rp_stats_item_t *items, size_t n, const char *mark,
                        uint64_t mark_val, rh_diag_t *diag);

typedef enum rp_agg { RP_AGG_MINUTE = 1, RP_AGG_HOUR = 60, RP_AGG_DAY = 1440 } rp_agg_t;

#define RP_ANY UINT32_MAX /* filter wildcard */
typedef struct rp_stats_filter {
    uint32_t forwarder_net_id;   /* RP_ANY = all */
    uint32_t home_net_id;        /* RP_ANY = all */
    uint32_t cls;                /* rp_class_t or RP_ANY */
    uint32_t outcome;            /* rp_outcome_t or RP_ANY */
    bool has_party;              /* only rows whose forwarder or home is party_net_id (a member's
                                    view); false (zero) = no such condition */
    uint32_t party_net_id;
    /* Protocols, as sets: bit (1u << rp_protocol_t) set = kept; 0 (zero-initialised) = any. */
    unsigned forwarder_protocols; /* the forwarder side spoke one of these */
    unsigned home_protocols;      /* the home side spoke one of these */
    unsigned either_protocols;    /* either side spoke one of these (e.g. all Packet Broker
                                     traffic, bridged or not) */
} rp_stats_filter_t;

/* One page of a statistics query: what the caller bounds, and what the query reports. */
#define RP_STATS_TOKEN_MAX 160
typedef struct rp_stats_page {
    const char *page_token; /* in: NULL or "" = from the start, else a previous `next` */
    size_t max_rows;        /* in: rows delivered per page; 0 = no limit */
    size_t max_scan;        /* in: buckets read before the page stops at the next period
                               boundary; 0 = no limit */
    uint64_t deadline_ns;   /* in: rh_mono_ns() after which the page stops at the next period
                               boundary; 0 = none */
    size_t scanned;         /* out: buckets read */
    size_t rows;            /* out: rows delivered */
    char next[RP_STATS_TOKEN_MAX]; /* out: "" when the query is complete, else the token that
                                      continues it (may lead to an empty last page) */
} rp_stats_page_t;

/* Statistics of the periods of length `agg` that overlap [from_minute, to_minute): `from` rounds
 * down and `to` up to whole periods (an hourly query from 10:30 includes 10:00-10:59). Rows are
 * summed per period (item.minute = period start) and per (forwarder, home, forwarder protocol,
 * home protocol, class, outcome, result code), delivered in that order (period first). Hourly and
 * daily queries read the hour/day roll-ups (one bucket per series and period), or the minute
 * buckets for periods older than the roll-ups (databases written by an older version).
 * Paging: the page stops after page->max_rows rows, or at the first period boundary after
 * max_scan buckets or the deadline, and page->next continues it; a token is bound to the query
 * (same from, to, agg and filter) and resumes exactly after the last row delivered, so following
 * the tokens delivers every row exactly once. Memory: one period's distinct series at a time
 * (at most 131,072, else RH_ERANGE). The item passed to the callback is valid during the call;
 * a non-zero return stops (no continuation). Errors: RH_EINVAL (aggregation, page token
 * malformed or of another query), RH_ERANGE, RH_ENOMEM, RH_EIO. */
typedef int (*rp_stats_cb)(void *ud, const rp_stats_item_t *item);
int rp_stats_query_page(rp_db_t *db, int64_t from_minute, int64_t to_minute,
                        const rp_stats_filter_t *filter, rp_agg_t agg, rp_stats_page_t *page,
                        rp_stats_cb cb, void *ud, rh_diag_t *diag);
/* rp_stats_query_page without limits (every row, one call): tools and tests. */
int rp_stats_query(rp_db_t *db, int64_t from_minute, int64_t to_minute,
                   const rp_stats_filter_t *filter, rp_agg_t agg, rp_stats_cb cb, void *ud,
                   rh_diag_t *diag);

/* Deletes the buckets of resolution `res` (minute, hour or day) whose period starts before
 * older_than_minute, at most max_remove (0 = all) in one write transaction, oldest first;
 * *removed (may be NULL) gets the count (== max_remove: call again). Errors: RH_EINVAL, RH_EFULL,
 * RH_EIO. */
int rp_stats_prune_res(rp_db_t *db, rp_agg_t res, int64_t older_than_minute, size_t max_remove,
                       size_t *removed, rh_diag_t *diag);
/* rp_stats_prune_res for all three resolutions, unbounded. */
int rp_stats_prune(rp_db_t *db, int64_t older_than_minute, size_t *removed, rh_diag_t *diag);

#endif
