/*
 * rp_internal.h — private structures of routing-policy/ shared by its .c files: the environment
 * and reader registry (map growth excludes every reader), key encodings and the zero-allocation
 * protobuf field scanner used on the data path. Not installed, not for other directories.
 */
#ifndef RP_INTERNAL_H
#define RP_INTERNAL_H

#include "rp.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

/* Internal code: an LMDB call returned MDB_MAP_FULL; the caller grows the map and replays. */
#define RP_EMAPFULL (-1000)

enum rp_dbi {
    RP_DBI_NETWORK = RP_KIND_NETWORK,
    RP_DBI_TENANT = RP_KIND_TENANT,
    RP_DBI_BLOCK = RP_KIND_BLOCK,
    RP_DBI_JOIN = RP_KIND_JOIN_ROUTE,
    RP_DBI_POLICY = RP_KIND_POLICY,
    RP_DBI_ENDPOINT = RP_KIND_ENDPOINT,
    RP_DBI_MEMBER = RP_KIND_MEMBER,
    RP_DBI_API_KEY = RP_KIND_API_KEY,
    RP_DBI_AUDIT,
    RP_DBI_STATS,
    RP_DBI_NETIDX, /* prefix(4) len(1) netid(4) owner network netid(4) -> "" */
    RP_DBI_META,
    RP_DBI_COUNT
};

typedef struct rp_snap rp_snap_t;

struct rp_reader {
    rp_db_t *db;
    MDB_txn *txn;
    MDB_cursor *cur[RP_DBI_COUNT]; /* lazily opened/renewed */
    unsigned cur_fresh;            /* bit i: cur[i] renewed for the current snapshot */
    int active;
    rp_snap_t *snap;               /* compiled index valid for this snapshot, or NULL */
    int no_index;                  /* rp_reader_use_index(r, 0) */
    _Atomic(void *) owner;         /* thread marker of the thread holding mu (rp__thread_marker) */
    pthread_mutex_t mu;            /* held while active; map growth takes every reader's mu */
    struct rp_reader *prev, *next;
};

struct rp_db {
    MDB_env *env;
    MDB_dbi dbi[RP_DBI_COUNT];
    size_t map_size, max_map_size;
    int read_only;
    pthread_mutex_t write_mu; /* one writer; held from rp_txn_begin to commit/abort */
    pthread_mutex_t reg_mu;   /* reader registry */
    struct rp_reader *readers;
    /* compiled read index (rp_index.c) */
    _Atomic(rp_snap_t *) snap;
    rp_snap_t *retired;        /* replaced indexes not yet proven unused (under reg_mu) */
    int no_index, no_builder;
    pthread_mutex_t build_mu;  /* one build at a time */
    pthread_mutex_t kick_mu;
    pthread_cond_t kick_cv;
    pthread_t builder;
    int builder_started, stopping, kicked;
    pthread_mutex_t q_mu;      /* committed deltas waiting for the builder (commit order) */
    struct rp_delta *q_head, *q_tail;
    _Atomic int pending;       /* writers between their commit and queuing its delta */
    uint64_t n_deltas, n_rebuilds; /* index versions published each way (under build_mu) */
};

/* Key sizes. */
#define RP_KEY_BLOCK 5
#define RP_KEY_JOIN 18
#define RP_KEY_TENANT (4 + RP_TENANT_MAX)
#define RP_KEY_POLICY (4 + RP_TENANT_MAX + 1 + 4 + RP_TENANT_MAX)
#define RP_KEY_STATS (8 + 4 + 4 + 1 + 1 + RP_RESULT_MAX)
#define RP_KEY_MAX 511

/* Environment internals (rp_db.c). */
int rp__lmdb_err(int mdb_rc, rh_diag_t *diag, const char *what);
/* Grows (new_size > current) or adopts (new_size 0) the map size. Caller holds write_mu and has
 * no transaction open; waits for every reader to be idle. */
int rp__set_mapsize(rp_db_t *db, size_t new_size);
/* A temporary reader for cold-path reads (rp_get, rp_list ...), already begun. */
int rp__temp_reader(rp_db_t *db, rp_reader_t **out, rh_diag_t *diag);
void rp__temp_reader_done(rp_reader_t *r);
MDB_cursor *rp__reader_cursor(rp_reader_t *r, int dbi);
MDB_txn *rp__reader_txn(rp_reader_t *r);
/* rp_reader.c: with r->mu held and r->txn begun, attach the compiled index if it holds exactly
 * the reader's snapshot (else r->snap = NULL: lookups read LMDB). */
void rp__snap_attach(rp_reader_t *r);
/* rp_reader.c: an address unique to the calling thread (reader ownership). */
void *rp__thread_marker(void);

/* Compiled index (rp_index.c: versions, lookups, deltas; rp_builder.c: keeping it current). */
struct rp_base;
/* A changed block or policy key: the new value, or a tombstone (del). */
typedef struct rp_ovb {
    uint64_t key; /* prefix << 8 | length */
    uint32_t net_id;
    uint8_t del;
    char tenant[RP_TENANT_MAX + 1];
    char cluster[RP_CLUSTER_MAX + 1];
} rp_ovb_t;
typedef struct rp_ovp {
    uint8_t key[RP_KEY_POLICY];
    uint8_t del;
    rp_flags_t flags;
} rp_ovp_t;
/* The routing changes of one write transaction, in order (a later change of a key wins),
 * recorded by rp_write.c and applied to the index by the builder. overflow: too many changes
 * or a whole-kind clear: the builder rebuilds instead. */
typedef struct rp_delta {
    uint64_t txnid;      /* the committing transaction's ID */
    uint64_t gen_before; /* routing generation it started from */
    int overflow;
    size_t nb, capb, np, capp;
    rp_ovb_t *b;
    rp_ovp_t *p;
    struct rp_delta *next;
} rp_delta_t;
/* key: the 5-byte block key / the policy key; val NULL = deleted, else the packed record. */
void rp__delta_block(rp_delta_t *d, const uint8_t *key, const uint8_t *val, size_t vlen);
void rp__delta_policy(rp_delta_t *d, const uint8_t *key, const uint8_t *val, size_t vlen);
void rp__delta_clear(rp_delta_t *d);  /* a whole kind was cleared: mark overflow */
void rp__delta_reset(rp_delta_t *d);  /* forget the changes (replay after map growth) */
void rp__delta_free(rp_delta_t *d);   /* NULL is a no-op */
/* One version of the index: a base built from LMDB (shared, rp_index.c) plus the overlay of
 * keys changed since. Immutable once published. */
struct rp_slot {
    uint32_t tag; /* high 32 bits of the key hash: most misses never touch an entry */
    uint32_t idx; /* entry index + 1, 0 = empty */
};

struct rp_snap {
    uint64_t built_txnid, gen;
    _Atomic uint64_t valid_upto;
    struct rp_base *base;
    size_t nob, nobdel; /* overlay blocks (sorted by key, unique) and how many are tombstones */
    rp_ovb_t *ob;
    size_t nop, omask;  /* overlay policies and their hash (omask + 1 slots) */
    rp_ovp_t *op;
    struct rp_slot *oslots;
    struct rp_snap *next_retired;
};

/* Builds a version from the snapshot txn. Errors: RH_ENOMEM, RH_EIO. */
int rp__snap_build(rp_db_t *db, MDB_txn *txn, rp_snap_t **out);
/* Whether delta d starts from exactly v's state (and fits the overlay). */
int rp__snap_applicable(const rp_snap_t *v, const rp_delta_t *d);
/* New version = cur + d, sharing cur's base. O(overlay + change). Errors: RH_ENOMEM. */
int rp__snap_apply(const rp_snap_t *cur, const rp_delta_t *d, rp_snap_t **out);
/* The overlay has grown enough that a rebuild (the merge) is due. */
int rp__snap_needs_merge(const rp_snap_t *s);
void rp__snap_sizes(const rp_snap_t *s, size_t *blocks, size_t *policies);
/* Test support: a version freshly built from the latest committed state (caller frees it with
 * rp__snap_free under no concurrent refresh), and the publication counters. */
int rp__index_fresh(rp_db_t *db, rp_snap_t **out);
void rp__index_counts(rp_db_t *db, uint64_t *deltas, uint64_t *rebuilds);
/* Queues a committed delta for the builder (takes ownership; frees it without an index). */
void rp__index_push(rp_db_t *db, rp_delta_t *d);
int rp__index_start(rp_db_t *db);
void rp__index_stop(rp_db_t *db);
void rp__index_kick(rp_db_t *db);
void rp__snap_free(rp_snap_t *s);
int rp__snap_devaddr(const rp_snap_t *s, uint32_t devaddr, rp_block_match_t *out);
const rp_flags_t *rp__snap_policy(const rp_snap_t *s, const uint8_t *key);
uint64_t rp__read_gen(MDB_txn *txn, MDB_dbi meta);
int rp__bump_gen(MDB_txn *txn, MDB_dbi meta);

/* One record / one member_net_ids entry of an import document (rp_json.c; shared by the
 * in-memory and the streaming import). path names the element in diagnostics. */
struct cJSON;
int rp__import_record(rp_txn_t *t, rp_kind_t kind, const struct cJSON *v, const char *path,
                      rh_diag_t *diag);
int rp__import_member_net_id(rp_txn_t *t, const struct cJSON *v, const char *path,
                             rh_diag_t *diag);

/* ---- write transactions (rp_txn.c, operations in rp_write.c, block rules in rp_rules.c) --- */

enum { OP_PUT = 1, OP_DELETE, OP_CLEAR, OP_CLEAR_NET };

typedef struct rp_op {
    uint8_t type, kind, mode;
    uint32_t net_id;
    size_t len;
    uint8_t data[];
} rp_op_t;

struct rp_txn {
    rp_db_t *db;
    MDB_txn *txn;
    MDB_cursor *cur[RP_DBI_COUNT];
    char actor[RP_ID_MAX + 1];
    unsigned flags;
    int failed;     /* a fatal error happened: only abort is possible */
    int log_ops;    /* keep the op log (the map may still grow) */
    rp_op_t **ops;
    size_t n_ops, cap_ops;
    uint64_t n_put, n_del, n_clear; /* summary audit */
    uint64_t audit_seq;
    int seq_loaded;
    int dirty; /* routing content (blocks/policies) changed: bump the generation */
    rp_delta_t *delta; /* the routing changes, for the compiled index (NULL without index) */
    char mark_name[RP_MARK_NAME_MAX + 1]; /* rp_txn_set_mark: written at commit ("" = none) */
    uint64_t mark_val;
};

/* rp_txn_set_mark / rp_stats_add_marked: stores mark `name` (already checked by
 * rp__mark_name_ok) = value in txn's meta database. RP_EMAPFULL, RH_EIO. */
int rp__put_mark(rp_db_t *db, MDB_txn *txn, const char *name, uint64_t value, rh_diag_t *diag);
int rp__mark_name_ok(const char *name);
/* Reads mark `name` (checked) in txn: *value 0 and *found 0 (found may be NULL) when absent.
 * RH_EIO. */
int rp__read_mark(rp_db_t *db, MDB_txn *txn, const char *name, uint64_t *value, int *found,
                  rh_diag_t *diag);

/* The transaction's cursor on a database (opened on first use, freed with the transaction). */
static inline MDB_cursor *rp__txn_cursor(rp_txn_t *t, int dbi)
{
    if (!t->cur[dbi] && mdb_cursor_open(t->txn, t->db->dbi[dbi], &t->cur[dbi]))
        t->cur[dbi] = NULL;
    return t->cur[dbi];
}
/* Operations (rp_write.c): errors as rp_txn_put/delete/clear; RP_EMAPFULL when the map is full
 * (the caller grows it and replays). */
int rp__apply_put(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *msg, rp_put_mode_t mode,
                  rh_diag_t *diag);
int rp__apply_delete(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *keymsg, int *deleted,
                     rh_diag_t *diag);
int rp__apply_clear(rp_txn_t *t, rp_kind_t kind, rh_diag_t *diag);
int rp__apply_clear_net(rp_txn_t *t, uint32_t net_id, rh_diag_t *diag);
/* An audit record (action "create", "update", "delete", "clear", "import"). */
int rp__audit(rp_txn_t *t, const char *action, const char *kind, const char *keytext,
              const void *before, size_t blen, const void *after, size_t alen, rh_diag_t *diag);
int rp__mput(rp_txn_t *t, int dbi, const void *k, size_t kl, const void *v, size_t vl,
             rh_diag_t *diag);
int rp__mdel(rp_txn_t *t, int dbi, const void *k, size_t kl, rh_diag_t *diag);
/* Block rules (rp_rules.c): RH_EINVAL (outside the NetID prefixes), RH_EEXIST (overlap; diag
 * names the conflicting block), RH_EIO. */
int rp__block_checks(rp_txn_t *t, const Roamhub__V1__DevAddrBlock *m, rh_diag_t *diag);
/* Owner of a stored block value (net_id, tenant as a C string). 0, or -1 if malformed. */
typedef struct blk_owner {
    uint32_t net_id;
    char tenant[RP_TENANT_MAX + 1];
} blk_owner_t;
int rp__block_owner(const MDB_val *v, blk_owner_t *o);

/* Key encodings (rp_keys.c). tenant must be valid (<= 36 chars). */
void rp__key_tenant(uint8_t out[RP_KEY_TENANT], uint32_t net_id, const char *tenant);
void rp__key_policy(uint8_t out[RP_KEY_POLICY], uint32_t fnet, const char *ften, int has_home,
                    uint32_t hnet, const char *hten);
void rp__key_block(uint8_t out[RP_KEY_BLOCK], uint32_t prefix, unsigned len);
void rp__key_join(uint8_t out[RP_KEY_JOIN], uint64_t jp, unsigned jl, uint64_t dp, unsigned dl);
/* Validates the key fields of `msg` and encodes its key. Errors: RH_EINVAL (diag). */
int rp__key_of(rp_kind_t kind, const ProtobufCMessage *msg, uint8_t *key, size_t *klen,
               rh_diag_t *diag);
/* Full validation of a record (key fields and the rest). Errors: RH_EINVAL (diag). */
int rp__validate(rp_kind_t kind, const ProtobufCMessage *msg, rh_diag_t *diag);
int rp__tenant_valid(const char *t, const char *field, rh_diag_t *diag);
int rp__id_valid(const char *id, const char *field, rh_diag_t *diag);
void rp__tenant_copy(char out[RP_TENANT_MAX + 1], const uint8_t *key36);

static inline uint32_t rp__mask32(unsigned len) { return len == 0 ? 0 : ~0u << (32 - len); }
static inline uint64_t rp__mask64(unsigned len) { return len == 0 ? 0 : ~0ull << (64 - len); }

/* Zero-allocation protobuf wire scanner (varint and length-delimited fields only need be
 * understood; fixed32/64 are skipped). Returns 1 with a field, 0 at the end, -1 on a malformed
 * buffer. */
typedef struct rp_pbs {
    const uint8_t *p, *end;
} rp_pbs_t;
int rp__pbs_next(rp_pbs_t *s, uint32_t *field, uint64_t *varint, const uint8_t **bytes,
                 size_t *len);

/* Record values read without unpacking (rp_keys.c; field numbers: proto/roamhub_fields.h).
 * Each returns 0, or -1 on a malformed buffer. Pointers point into the packed value. */
/* Flags of a packed RoutingPolicy (uplink/downlink sub-messages). */
int rp__policy_flags(const uint8_t *p, size_t len, rp_flags_t *f);
/* Owner and cluster of a packed DevAddrBlock; tenant/cluster clipped to their key widths. */
typedef struct rp_block_val {
    uint32_t net_id;
    const uint8_t *tenant, *cluster;
    size_t tenant_len, cluster_len;
} rp_block_val_t;
int rp__block_decode(const uint8_t *p, size_t len, rp_block_val_t *out);
/* Home and Join Server of a packed JoinRoute. */
typedef struct rp_join_val {
    uint32_t home_net_id;
    const uint8_t *home_tenant, *join_server;
    size_t home_tenant_len, join_server_len;
} rp_join_val_t;
int rp__join_decode(const uint8_t *p, size_t len, rp_join_val_t *out);
/* Delegated NetIDs of a packed Network (packed or unpacked encoding): up to cap into out,
 * returns how many were written. */
size_t rp__network_delegated(const uint8_t *p, size_t len, uint32_t *out, size_t cap);
/* Copies n bytes (clipped to cap - 1) and a terminating NUL. */
void rp__copy_str(char *dst, size_t cap, const uint8_t *s, size_t n);

/* EUI prefix text "70b3d57ed0000000/40" (rp_keys.c). Errors: RH_EINVAL (diag names field). */
int rp__eui_prefix_parse(const char *s, uint64_t *v, unsigned *len, const char *field,
                         rh_diag_t *diag);
void rp__eui_prefix_format(uint64_t v, unsigned len, char out[24]);

#endif
