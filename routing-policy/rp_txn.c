/*
 * rp_txn.c — write transactions: begin, the operation log, map growth with replay, commit
 * (generation bump, the delta for the compiled index) and abort; the public rp_txn_* / rp_put
 * / rp_delete API. What each operation does is rp_write.c.
 *
 * A transaction keeps a log of its operations (packed records) while the map can still grow.
 * On MDB_MAP_FULL (from a put or from the commit) it aborts, doubles the map (bounded by
 * max_map_size, with every reader of the process idle, see rp_db.c) and replays the log into a
 * fresh transaction, so callers never see a partial batch. At the limit the write fails with
 * RH_EFULL and readers keep serving the last committed snapshot. Without the log
 * (RP_TXN_NO_OP_LOG) the caller replays: RH_EAGAIN after the map grew.
 */
#include "rp_internal.h"

#include "rh_hex.h"
#include "rh_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void txn_end(rp_txn_t *t, int commit_done)
{
    (void)commit_done;
    for (int i = 0; i < RP_DBI_COUNT; i++)
        t->cur[i] = NULL; /* write-txn cursors are freed with their transaction */
    if (t->txn)
        mdb_txn_abort(t->txn);
    t->txn = NULL;
}

static int begin_lmdb(rp_txn_t *t, rh_diag_t *diag)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int rc = mdb_txn_begin(t->db->env, NULL, 0, &t->txn);
        if (rc == 0) {
            t->seq_loaded = 0;
            return RH_OK;
        }
        t->txn = NULL;
        if (rc != MDB_MAP_RESIZED)
            return rp__lmdb_err(rc, diag, "write transaction");
        rp__set_mapsize(t->db, 0);
    }
    return rh_diag_fail(diag, RH_EIO, "write transaction: map resized repeatedly");
}

/* Packs msg into a malloc'd buffer. */
static int apply_op(rp_txn_t *t, const rp_op_t *op, rh_diag_t *diag)
{
    switch (op->type) {
    case OP_PUT:
    case OP_DELETE: {
        ProtobufCMessage *m =
            protobuf_c_message_unpack(rp_kind_descriptor(op->kind), NULL, op->len, op->data);
        if (!m)
            return rh_diag_fail(diag, RH_EIO, "replay: cannot unpack a logged record");
        int rc = op->type == OP_PUT ? rp__apply_put(t, op->kind, m, op->mode, diag)
                                    : rp__apply_delete(t, op->kind, m, NULL, diag);
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    case OP_CLEAR: return rp__apply_clear(t, op->kind, diag);
    case OP_CLEAR_NET: return rp__apply_clear_net(t, op->net_id, diag);
    }
    return RH_EIO;
}

static int fail_full(rp_txn_t *t, rh_diag_t *diag)
{
    t->failed = RH_EFULL;
    RH_LOG(RH_LOG_WARN, "rp", "LMDB map full map_mib=%zu limit_mib=%zu", t->db->map_size >> 20,
           t->db->max_map_size >> 20);
    return rh_diag_fail(diag, RH_EFULL,
                        "storage full: the LMDB map is %zu KiB and may not grow beyond %zu KiB "
                        "(max_map_size); the write was not applied",
                        t->db->map_size >> 10, t->db->max_map_size >> 10);
}

/* Map full: abort, grow, replay the log. */
static int regrow(rp_txn_t *t, rh_diag_t *diag)
{
    for (;;) {
        txn_end(t, 0);
        if (t->db->map_size >= t->db->max_map_size)
            return fail_full(t, diag);
        if (!t->log_ops && !(t->flags & RP_TXN_NO_OP_LOG))
            return fail_full(t, diag);
        size_t ns = t->db->map_size * 2;
        if (ns > t->db->max_map_size || ns < t->db->map_size)
            ns = t->db->max_map_size;
        int rc = rp__set_mapsize(t->db, ns);
        if (rc) {
            t->failed = RH_EIO;
            return rh_diag_fail(diag, RH_EIO, "cannot grow the LMDB map to %zu bytes", ns);
        }
        RH_LOG(RH_LOG_INFO, "rp", "grew LMDB map map_mib=%zu", ns >> 20);
        if (!t->log_ops) { /* nothing to replay: the caller runs the transaction again */
            t->failed = RH_EAGAIN;
            return rh_diag_fail(diag, RH_EAGAIN,
                                "the LMDB map grew to %zu MiB: run the transaction again",
                                ns >> 20);
        }
        rc = begin_lmdb(t, diag);
        if (rc == RP_EMAPFULL)
            continue;
        if (rc) {
            t->failed = rc;
            return rc;
        }
        t->n_put = t->n_del = t->n_clear = 0;
        t->dirty = 0;
        rp__delta_reset(t->delta);
        for (size_t i = 0; i < t->n_ops && rc == RH_OK; i++)
            rc = apply_op(t, t->ops[i], diag);
        if (rc == RP_EMAPFULL)
            continue;
        if (rc) {
            t->failed = RH_EIO;
            return rh_diag_fail(diag, RH_EIO, "replay after map growth failed");
        }
        return RH_OK;
    }
}

static int log_op(rp_txn_t *t, int type, rp_kind_t kind, rp_put_mode_t mode, uint32_t net_id,
                  const ProtobufCMessage *m, rh_diag_t *diag)
{
    if (!t->log_ops)
        return RH_OK;
    size_t len = m ? protobuf_c_message_get_packed_size(m) : 0;
    rp_op_t *op = malloc(sizeof *op + len);
    if (!op)
        return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
    op->type = (uint8_t)type;
    op->kind = (uint8_t)kind;
    op->mode = (uint8_t)mode;
    op->net_id = net_id;
    op->len = len;
    if (m)
        protobuf_c_message_pack(m, op->data);
    if (t->n_ops == t->cap_ops) {
        size_t nc = t->cap_ops ? t->cap_ops * 2 : 16;
        void *no = realloc(t->ops, nc * sizeof *t->ops);
        if (!no) {
            free(op);
            return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
        }
        t->ops = no;
        t->cap_ops = nc;
    }
    t->ops[t->n_ops++] = op;
    return RH_OK;
}

static int run(rp_txn_t *t, int type, rp_kind_t kind, rp_put_mode_t mode, uint32_t net_id,
               const ProtobufCMessage *m, int *deleted, rh_diag_t *diag)
{
    if (!t)
        return rh_diag_fail(diag, RH_EINVAL, "no transaction");
    if (t->failed)
        return rh_diag_fail(diag, t->failed, "the transaction failed earlier; abort it");
    if (type != OP_CLEAR_NET && (unsigned)kind >= RP_KIND_COUNT)
        return rh_diag_fail(diag, RH_EINVAL, "record: unknown kind %d", (int)kind);
    for (;;) {
        int rc;
        switch (type) {
        case OP_PUT: rc = rp__apply_put(t, kind, m, mode, diag); break;
        case OP_DELETE: rc = rp__apply_delete(t, kind, m, deleted, diag); break;
        case OP_CLEAR: rc = rp__apply_clear(t, kind, diag); break;
        default: rc = rp__apply_clear_net(t, net_id, diag); break;
        }
        if (rc == RP_EMAPFULL) {
            rc = regrow(t, diag);
            if (rc)
                return rc;
            continue;
        }
        if (rc == RH_OK)
            return log_op(t, type, kind, mode, net_id, m, diag);
        if (rc != RH_EINVAL && rc != RH_EEXIST && rc != RH_ENOTFOUND)
            t->failed = rc;
        return rc;
    }
}

/* ---- public -------------------------------------------------------------------------------- */

int rp_txn_begin(rp_db_t *db, const char *actor, unsigned flags, rp_txn_t **out, rh_diag_t *diag)
{
    if (!db || !out)
        return rh_diag_fail(diag, RH_EINVAL, "rp_txn_begin: db and out are required");
    *out = NULL;
    if (db->read_only)
        return rh_diag_fail(diag, RH_EPERM, "the routing database is open read-only");
    rp_txn_t *t = calloc(1, sizeof *t);
    if (!t)
        return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
    t->db = db;
    t->flags = flags;
    snprintf(t->actor, sizeof t->actor, "%s", actor && actor[0] ? actor : "unknown");
    pthread_mutex_lock(&db->write_mu);
    t->log_ops = db->map_size < db->max_map_size && !(flags & RP_TXN_NO_OP_LOG);
    int rc = begin_lmdb(t, diag);
    if (rc == RP_EMAPFULL)
        rc = regrow(t, diag);
    if (rc) {
        txn_end(t, 0);
        pthread_mutex_unlock(&db->write_mu);
        free(t);
        return rc;
    }
    *out = t;
    return RH_OK;
}

int rp_txn_put(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *msg, rp_put_mode_t mode,
               rh_diag_t *diag)
{
    if (!msg)
        return rh_diag_fail(diag, RH_EINVAL, "record: missing");
    return run(t, OP_PUT, kind, mode, 0, msg, NULL, diag);
}

int rp_txn_delete(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *key, int *deleted,
                  rh_diag_t *diag)
{
    if (deleted)
        *deleted = 0;
    if (!key)
        return rh_diag_fail(diag, RH_EINVAL, "record key: missing");
    return run(t, OP_DELETE, kind, 0, 0, key, deleted, diag);
}

int rp_txn_clear(rp_txn_t *t, rp_kind_t kind, rh_diag_t *diag)
{
    return run(t, OP_CLEAR, kind, 0, 0, NULL, NULL, diag);
}

int rp_txn_clear_net_id(rp_txn_t *t, uint32_t net_id, rh_diag_t *diag)
{
    if (net_id > 0xFFFFFF)
        return rh_diag_fail(diag, RH_EINVAL, "NetID 0x%X is wider than 24 bits", net_id);
    return run(t, OP_CLEAR_NET, 0, 0, net_id, NULL, NULL, diag);
}

int rp_txn_get(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *keymsg, ProtobufCMessage **out,
               rh_diag_t *diag)
{
    *out = NULL;
    if (!t || t->failed)
        return rh_diag_fail(diag, RH_EINVAL, "no usable transaction");
    uint8_t key[RP_KEY_MAX];
    size_t klen;
    int rc = rp__key_of(kind, keymsg, key, &klen, diag);
    if (rc)
        return rc;
    MDB_val k = {klen, key}, v;
    rc = mdb_get(t->txn, t->db->dbi[kind], &k, &v);
    if (rc == MDB_NOTFOUND)
        return RH_OK;
    if (rc)
        return rp__lmdb_err(rc, diag, "mdb_get");
    *out = protobuf_c_message_unpack(rp_kind_descriptor(kind), NULL, v.mv_size, v.mv_data);
    return *out ? RH_OK : rh_diag_fail(diag, RH_EIO, "%s: stored record does not unpack",
                                       rp_kind_name(kind));
}

static void txn_free(rp_txn_t *t)
{
    txn_end(t, 0);
    rp__delta_free(t->delta);
    for (size_t i = 0; i < t->n_ops; i++)
        free(t->ops[i]);
    free(t->ops);
    pthread_mutex_unlock(&t->db->write_mu);
    free(t);
}

int rp_txn_commit(rp_txn_t *t, rh_diag_t *diag)
{
    if (!t)
        return rh_diag_fail(diag, RH_EINVAL, "no transaction");
    if (t->failed) {
        int f = t->failed;
        txn_free(t);
        return rh_diag_fail(diag, f, "the transaction failed earlier and was aborted");
    }
    for (;;) {
        int rc = RH_OK;
        if ((t->flags & RP_TXN_AUDIT_SUMMARY) && (t->n_put || t->n_del || t->n_clear)) {
            char txt[128];
            snprintf(txt, sizeof txt, "puts=%llu deletes=%llu clears=%llu",
                     (unsigned long long)t->n_put, (unsigned long long)t->n_del,
                     (unsigned long long)t->n_clear);
            rc = rp__audit(t, "import", "batch", txt, NULL, 0, NULL, 0, diag);
        }
        if (rc == RH_OK && t->mark_name[0])
            rc = rp__put_mark(t->db, t->txn, t->mark_name, t->mark_val, diag);
        if (rc == RH_OK && t->dirty) {
            if (t->delta) {
                t->delta->gen_before = rp__read_gen(t->txn, t->db->dbi[RP_DBI_META]);
                t->delta->txnid = mdb_txn_id(t->txn); /* the ID this commit will have */
            }
            int m = rp__bump_gen(t->txn, t->db->dbi[RP_DBI_META]);
            rc = m ? rp__lmdb_err(m, diag, "generation") : RH_OK;
        }
        int queue = rc == RH_OK && t->dirty && t->delta;
        if (queue) /* the builder must not rebuild between this commit and the queuing */
            atomic_fetch_add(&t->db->pending, 1);
        if (rc == RH_OK) {
            int m = mdb_txn_commit(t->txn);
            t->txn = NULL;
            for (int i = 0; i < RP_DBI_COUNT; i++)
                t->cur[i] = NULL;
            rc = m ? rp__lmdb_err(m, diag, "commit") : RH_OK;
        }
        if (queue) {
            if (rc == RH_OK) { /* still under write_mu: the queue is in commit order */
                rp__index_push(t->db, t->delta);
                t->delta = NULL;
            }
            atomic_fetch_sub(&t->db->pending, 1);
        }
        if (rc == RP_EMAPFULL) {
            rc = regrow(t, diag);
            if (rc == RH_OK)
                continue;
        }
        rp_db_t *db = t->db;
        txn_free(t);
        if (rc == RH_OK)
            rp__index_kick(db);
        return rc;
    }
}

int rp__put_mark(rp_db_t *db, MDB_txn *txn, const char *name, uint64_t value, rh_diag_t *diag)
{
    char key[8 + RP_MARK_NAME_MAX];
    int kl = snprintf(key, sizeof key, "mark:%s", name);
    uint8_t b[8];
    rh_put_be64(b, value);
    MDB_val k = {(size_t)kl, key}, v = {8, b};
    int m = mdb_put(txn, db->dbi[RP_DBI_META], &k, &v, 0);
    return m == MDB_MAP_FULL ? RP_EMAPFULL : m ? rp__lmdb_err(m, diag, "mark") : RH_OK;
}

int rp__mark_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > RP_MARK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
              name[i] == '_' || name[i] == '-'))
            return 0;
    return 1;
}

int rp_txn_set_mark(rp_txn_t *t, const char *name, uint64_t value, rh_diag_t *diag)
{
    if (!t)
        return rh_diag_fail(diag, RH_EINVAL, "no transaction");
    if (!rp__mark_name_ok(name))
        return rh_diag_fail(diag, RH_EINVAL, "mark name: 1..%d characters [a-z0-9_-]",
                            RP_MARK_NAME_MAX);
    snprintf(t->mark_name, sizeof t->mark_name, "%s", name);
    t->mark_val = value;
    return RH_OK;
}

int rp__read_mark(rp_db_t *db, MDB_txn *txn, const char *name, uint64_t *value, int *found,
                  rh_diag_t *diag)
{
    *value = 0;
    if (found)
        *found = 0;
    char key[8 + RP_MARK_NAME_MAX];
    int kl = snprintf(key, sizeof key, "mark:%s", name);
    MDB_val k = {(size_t)kl, key}, v;
    int m = mdb_get(txn, db->dbi[RP_DBI_META], &k, &v);
    if (m == MDB_NOTFOUND)
        return RH_OK;
    if (m || v.mv_size != 8)
        return rp__lmdb_err(m ? m : MDB_CORRUPTED, diag, "mark");
    *value = rh_get_be64(v.mv_data);
    if (found)
        *found = 1;
    return RH_OK;
}

int rp_get_mark(rp_db_t *db, const char *name, uint64_t *value, int *found, rh_diag_t *diag)
{
    *value = 0;
    if (found)
        *found = 0;
    if (!rp__mark_name_ok(name))
        return rh_diag_fail(diag, RH_EINVAL, "mark name: 1..%d characters [a-z0-9_-]",
                            RP_MARK_NAME_MAX);
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, diag);
    if (rc)
        return rc;
    rc = rp__read_mark(db, rp__reader_txn(r), name, value, found, diag);
    rp__temp_reader_done(r);
    return rc;
}

void rp_txn_abort(rp_txn_t *t)
{
    if (t)
        txn_free(t);
}

int rp_put(rp_db_t *db, const char *actor, rp_kind_t kind, const ProtobufCMessage *msg,
           rp_put_mode_t mode, rh_diag_t *diag)
{
    rp_txn_t *t;
    int rc = rp_txn_begin(db, actor, 0, &t, diag);
    if (rc)
        return rc;
    rc = rp_txn_put(t, kind, msg, mode, diag);
    if (rc) {
        rp_txn_abort(t);
        return rc;
    }
    return rp_txn_commit(t, diag);
}

int rp_delete(rp_db_t *db, const char *actor, rp_kind_t kind, const ProtobufCMessage *key,
              int *deleted, rh_diag_t *diag)
{
    rp_txn_t *t;
    int rc = rp_txn_begin(db, actor, 0, &t, diag);
    if (rc)
        return rc;
    rc = rp_txn_delete(t, kind, key, deleted, diag);
    if (rc) {
        rp_txn_abort(t);
        return rc;
    }
    return rp_txn_commit(t, diag);
}

