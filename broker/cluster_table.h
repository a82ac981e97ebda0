/*
 * cluster_table.h — the one seam between an admin write and the routing table (issue 13).
 *
 * An admin write (network, tenant, DevAddr block, join route, policy, endpoint, member, API key)
 * is a table change: put (create / update / upsert) or delete of one record by an actor.
 * table_change_apply() applies it to a local LMDB — on a single node directly from the admin
 * API, in a cluster from the JetStream stream on every node (the writer included) in stream
 * order — so the overlap, ownership and registry rules decide the same outcome everywhere,
 * against the state at the change's place in the order.
 * table_change_pack()/unpack() are the change's wire form: proto/roamhub.proto TableChange.
 */
#ifndef RH_CLUSTER_TABLE_H
#define RH_CLUSTER_TABLE_H

#include "rh_err.h"
#include "rp.h"

#include <stddef.h>
#include <stdint.h>

typedef enum table_op { TABLE_OP_PUT = 1, TABLE_OP_DELETE = 2 } table_op_t;

/* The name of an API key local to its node: the bootstrap operator key (admin_auth.c) is stored
 * directly, never through the stream, so table snapshots (cluster_snapshot.h) leave such keys
 * out and a node loading one keeps its own. */
#define TABLE_LOCAL_KEY_NAME "bootstrap operator key"

typedef struct table_change {
    table_op_t op;
    rp_kind_t kind;
    rp_put_mode_t mode;          /* TABLE_OP_PUT only */
    const char *actor;           /* audit actor (API key ID); not retained */
    const ProtobufCMessage *msg; /* the kind's record (delete: its key fields); not retained */
} table_change_t;

/* Tells whatever depends on Member/Endpoint records (the hub's member registry) about one change
 * of kind RP_KIND_MEMBER or RP_KIND_ENDPOINT: `upserted` (the record as stored) or `deleted` (the
 * record removed), exactly one set — the shape of admin_registry_changed_fn (admin.h). RH_OK, or
 * an error with diag naming the record refused (the registry is then unchanged). NULL hook:
 * nothing depends on them. */
typedef int (*table_registry_fn)(void *arg, rp_kind_t kind, const ProtobufCMessage *upserted,
                                 const ProtobufCMessage *deleted, rh_diag_t *diag);

/* Applies `ch` to `db`: rp_put / rp_delete, then for Member and Endpoint records the registry
 * hook; when the hook refuses, the change is undone (previous record restored / deleted record
 * put back) and RH_EINVAL is returned with the hook's reason. *deleted (may be NULL) = 1 when a
 * delete removed a record. Errors: those of rp_put / rp_delete (RH_EINVAL field invalid,
 * RH_EEXIST duplicate key or DevAddr overlap, RH_ENOTFOUND update of a missing record, RH_EFULL,
 * RH_EIO), RH_EINVAL registry refusal; diag says which. */
int table_change_apply(rp_db_t *db, const table_change_t *ch, table_registry_fn reg,
                       void *reg_arg, int *deleted, rh_diag_t *diag);

/* Whether applying `ch` calls the registry hook (Member and Endpoint records): such a change
 * is applied alone with table_change_apply, never inside a batch. */
int table_change_needs_registry(const table_change_t *ch);

/* Applies `ch` (of a kind without registry hook, table_change_needs_registry() == 0) inside the
 * caller's write transaction `t` — a cluster node applying many changes of the stream in one
 * LMDB commit. The transaction's audit actor is the caller's (rp_txn_begin). *deleted as
 * table_change_apply. Errors: those of rp_txn_put / rp_txn_delete — RH_EINVAL, RH_EEXIST,
 * RH_ENOTFOUND leave `t` usable (the change is refused, nothing of it is in `t`); after any
 * other error (RH_EFULL, RH_EIO) `t` can only be aborted. RH_EINVAL also for a registry kind. */
int table_change_apply_txn(rp_txn_t *t, const table_change_t *ch, int *deleted, rh_diag_t *diag);

/* Packs `ch` as a TableChange (node_id of the writer) into a malloc'd buffer *out of *len bytes
 * (the caller frees). Errors: RH_EINVAL (kind out of range / message of another kind), RH_ENOMEM. */
int table_change_pack(const table_change_t *ch, unsigned node_id, uint8_t **out, size_t *len,
                      rh_diag_t *diag);

/* A TableChange unpacked: ch points into it; release with table_change_release(). */
typedef struct table_change_owned {
    table_change_t ch;
    unsigned node_id;
    void *wire;            /* Roamhub__V1__TableChange */
    ProtobufCMessage *rec; /* the unpacked record */
} table_change_owned_t;

/* Unpacks `len` bytes (from the stream: untrusted, bounded by NATS's max payload) into *out.
 * Errors: RH_EINVAL (not a TableChange, unknown op or kind, record not of the kind) with diag,
 * RH_ENOMEM. Nothing to release on error. */
int table_change_unpack(const uint8_t *data, size_t len, table_change_owned_t *out,
                        rh_diag_t *diag);
void table_change_release(table_change_owned_t *o);

#endif
