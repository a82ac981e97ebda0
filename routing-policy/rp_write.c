/*
 * rp_write.c — write transactions: validated put/delete of every record kind, DevAddr block
 * containment and overlap rules, the NetID prefix index, audit records, and map growth.
 *
 * A transaction keeps a log of its operations (packed records) while the map can still grow.
 * On MDB_MAP_FULL (from a put or from the commit) it aborts, doubles the map (bounded by
 * max_map_size, with every reader of the process idle, see rp_db.c) and replays the log into a
 * fresh transaction, so callers never see a partial batch. At the limit the write fails with
 * RH_EFULL and readers keep serving the last committed snapshot.
 */
#include "rp_internal.h"

#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdio.h>
#include <stdlib.h>

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
};

static const uint8_t META_AUDIT_SEQ[] = "audit_seq";

/* ---- helpers ------------------------------------------------------------------------------- */

static MDB_cursor *txn_cursor(rp_txn_t *t, int dbi)
{
    if (!t->cur[dbi] && mdb_cursor_open(t->txn, t->db->dbi[dbi], &t->cur[dbi]))
        t->cur[dbi] = NULL;
    return t->cur[dbi];
}

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
static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    if (b)
        protobuf_c_message_pack(m, b);
    return b;
}

static int mput(rp_txn_t *t, int dbi, const void *k, size_t kl, const void *v, size_t vl,
                rh_diag_t *diag)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    int rc = mdb_put(t->txn, t->db->dbi[dbi], &key, &val, 0);
    return rc ? rp__lmdb_err(rc, diag, "mdb_put") : RH_OK;
}

static int mdel(rp_txn_t *t, int dbi, const void *k, size_t kl, rh_diag_t *diag)
{
    MDB_val key = {kl, (void *)k};
    int rc = mdb_del(t->txn, t->db->dbi[dbi], &key, NULL);
    if (rc == MDB_NOTFOUND)
        return RH_OK;
    return rc ? rp__lmdb_err(rc, diag, "mdb_del") : RH_OK;
}

/* Records a block/policy change for the compiled index (val NULL = deleted). */
static void track(rp_txn_t *t, rp_kind_t kind, const uint8_t *key, const uint8_t *val,
                  size_t vlen)
{
    if (kind != RP_KIND_BLOCK && kind != RP_KIND_POLICY)
        return;
    t->dirty = 1;
    if (t->db->no_index)
        return;
    if (!t->delta && !(t->delta = calloc(1, sizeof *t->delta)))
        return; /* no delta: the commit below queues none and the builder rebuilds */
    if (kind == RP_KIND_BLOCK)
        rp__delta_block(t->delta, key, val, vlen);
    else
        rp__delta_policy(t->delta, key, val, vlen);
}

/* ---- audit --------------------------------------------------------------------------------- */

static int audit(rp_txn_t *t, const char *action, const char *kind, const char *keytext,
                 const void *before, size_t blen, const void *after, size_t alen, rh_diag_t *diag)
{
    if (!t->seq_loaded) {
        MDB_val k = {sizeof META_AUDIT_SEQ - 1, (void *)META_AUDIT_SEQ}, v;
        int rc = mdb_get(t->txn, t->db->dbi[RP_DBI_META], &k, &v);
        t->audit_seq = (rc == 0 && v.mv_size == 8) ? rh_get_be64(v.mv_data) : 0;
        t->seq_loaded = 1;
    }
    t->audit_seq++;
    uint8_t sq[8];
    rh_put_be64(sq, t->audit_seq);
    int rc = mput(t, RP_DBI_META, META_AUDIT_SEQ, sizeof META_AUDIT_SEQ - 1, sq, 8, diag);
    if (rc)
        return rc;
    Roamhub__V1__AuditRecord a = ROAMHUB__V1__AUDIT_RECORD__INIT;
    a.at = rh_real_ms();
    a.actor = t->actor;
    a.action = (char *)action;
    a.kind = (char *)kind;
    a.key = (char *)keytext;
    a.before.data = (uint8_t *)before;
    a.before.len = before ? blen : 0;
    a.after.data = (uint8_t *)after;
    a.after.len = after ? alen : 0;
    uint8_t key[16];
    rh_put_be64(key, (uint64_t)a.at);
    rh_put_be64(key + 8, t->audit_seq);
    size_t len;
    uint8_t *buf = pack(&a.base, &len);
    if (!buf)
        return rh_diag_fail(diag, RH_ENOMEM, "audit: out of memory");
    rc = mput(t, RP_DBI_AUDIT, key, sizeof key, buf, len, diag);
    free(buf);
    return rc;
}

/* ---- DevAddr block rules ------------------------------------------------------------------- */

typedef struct blk_owner {
    uint32_t net_id;
    char tenant[RP_TENANT_MAX + 1];
} blk_owner_t;

static int decode_block_owner(const MDB_val *v, blk_owner_t *o)
{
    memset(o, 0, sizeof *o);
    rp_block_val_t b;
    if (rp__block_decode(v->mv_data, v->mv_size, &b))
        return -1;
    o->net_id = b.net_id;
    rp__copy_str(o->tenant, sizeof o->tenant, b.tenant, b.tenant_len);
    return 0;
}

/* Whether `inner` may be nested inside `outer`: delegated by the outer block's owner. */
static int nest_ok(const blk_owner_t *outer, const blk_owner_t *inner)
{
    return inner->net_id == outer->net_id &&
           (outer->tenant[0] == 0 || strcmp(outer->tenant, inner->tenant) == 0);
}

static int overlap_fail(rh_diag_t *diag, const Roamhub__V1__DevAddrBlock *m, uint32_t v,
                        unsigned l, const blk_owner_t *o, int other_is_outer)
{
    return rh_diag_fail(diag, RH_EEXIST,
                        "devaddr_block %08X/%u (owner %06X%s%s): overlaps block %08X/%u owned by "
                        "%06X%s%s; a %s block must belong to the NetID of the %s one (and to its "
                        "tenant when that block has one)",
                        m->prefix, m->length, m->net_id, m->tenant_id[0] ? "/" : "", m->tenant_id,
                        v, l, o->net_id, o->tenant[0] ? "/" : "", o->tenant,
                        other_is_outer ? "more specific" : "less specific",
                        other_is_outer ? "less specific" : "more specific");
}

/* Delegated NetIDs of network `net_id` from its stored record (packed or unpacked field 5). */
static int delegated_net_ids(rp_txn_t *t, uint32_t net_id, uint32_t *out, size_t cap, size_t *n)
{
    *n = 0;
    uint8_t key[4];
    rh_put_be32(key, net_id);
    MDB_val k = {4, key}, v;
    int rc = mdb_get(t->txn, t->db->dbi[RP_DBI_NETWORK], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    *n = rp__network_delegated(v.mv_data, v.mv_size, out, cap);
    return 0;
}

static int block_checks(rp_txn_t *t, const Roamhub__V1__DevAddrBlock *m, rh_diag_t *diag)
{
    lw_devaddr_prefix_t me = {m->prefix, (uint8_t)m->length};
    if (!m->outside_net_id) {
        uint32_t ids[257];
        size_t n = 0;
        int rc = delegated_net_ids(t, m->net_id, ids + 1, 256, &n);
        if (rc)
            return rp__lmdb_err(rc, diag, "network lookup");
        ids[0] = m->net_id;
        int inside = 0;
        for (size_t i = 0; i <= n && !inside; i++) {
            lw_devaddr_prefix_t np;
            if (lw_netid_devaddr_prefix(ids[i], &np, NULL) == RH_OK && lw_prefix_covers(np, me))
                inside = 1;
        }
        if (!inside) {
            lw_devaddr_prefix_t np;
            char txt[16] = "?";
            if (lw_netid_devaddr_prefix(m->net_id, &np, NULL) == RH_OK)
                lw_devaddr_prefix_format(np, txt);
            return rh_diag_fail(diag, RH_EINVAL,
                                "devaddr_block %08X/%u: not inside DevAddr prefix %s of NetID "
                                "%06X%s (set outside_net_id to override)",
                                m->prefix, m->length, txt, m->net_id,
                                n ? " nor of its delegated NetIDs" : "");
        }
    }
    blk_owner_t mine;
    memset(&mine, 0, sizeof mine);
    mine.net_id = m->net_id;
    memcpy(mine.tenant, m->tenant_id, strlen(m->tenant_id));

    MDB_cursor *c = txn_cursor(t, RP_DBI_BLOCK);
    if (!c)
        return rh_diag_fail(diag, RH_EIO, "devaddr_block: cursor");
    /* Ancestors: every block containing this one, longest first. */
    if (m->length > 0) {
        unsigned L = m->length - 1;
        uint32_t A = m->prefix;
        for (int iter = 0; iter < 80; iter++) {
            uint8_t kb[RP_KEY_BLOCK];
            rp__key_block(kb, A & rp__mask32(L), L);
            MDB_val k = {sizeof kb, kb}, v;
            int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
            if (rc == 0 && !(k.mv_size == sizeof kb && memcmp(k.mv_data, kb, sizeof kb) == 0))
                rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
            else if (rc == MDB_NOTFOUND)
                rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
            if (rc == MDB_NOTFOUND)
                break;
            if (rc)
                return rp__lmdb_err(rc, diag, "devaddr_block: ancestors");
            if (k.mv_size != RP_KEY_BLOCK)
                return rh_diag_fail(diag, RH_EIO, "devaddr_block: corrupt key");
            uint32_t bv = rh_get_be32(k.mv_data);
            unsigned bl = ((const uint8_t *)k.mv_data)[4];
            if (bl <= L && ((A ^ bv) & rp__mask32(bl)) == 0) {
                blk_owner_t o;
                if (decode_block_owner(&v, &o))
                    return rh_diag_fail(diag, RH_EIO, "devaddr_block: corrupt record");
                if (!nest_ok(&o, &mine))
                    return overlap_fail(diag, m, bv, bl, &o, 1);
                if (bl == 0)
                    break;
                L = bl - 1;
                continue;
            }
            uint32_t x = (A ^ bv) & rp__mask32(L > 0 ? L : 0);
            if (x == 0 || L == 0)
                break;
            unsigned cl = (unsigned)__builtin_clz(A ^ bv);
            if (cl >= L)
                break;
            L = cl;
        }
    }
    /* Descendants: blocks inside this one (keys in [prefix/len+1, end/32]). */
    if (m->length < 32) {
        uint32_t end = m->prefix | ~rp__mask32(m->length);
        uint8_t kb[RP_KEY_BLOCK];
        rp__key_block(kb, m->prefix, m->length + 1);
        MDB_val k = {sizeof kb, kb}, v;
        int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (rc == 0) {
            if (k.mv_size != RP_KEY_BLOCK)
                return rh_diag_fail(diag, RH_EIO, "devaddr_block: corrupt key");
            uint32_t bv = rh_get_be32(k.mv_data);
            unsigned bl = ((const uint8_t *)k.mv_data)[4];
            if (bv > end)
                break;
            if (bl > m->length) {
                blk_owner_t o;
                if (decode_block_owner(&v, &o))
                    return rh_diag_fail(diag, RH_EIO, "devaddr_block: corrupt record");
                if (!nest_ok(&mine, &o))
                    return overlap_fail(diag, m, bv, bl, &o, 0);
            }
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        if (rc && rc != MDB_NOTFOUND)
            return rp__lmdb_err(rc, diag, "devaddr_block: descendants");
    }
    return RH_OK;
}

/* ---- NetID prefix index -------------------------------------------------------------------- */

static int netidx_apply(rp_txn_t *t, const Roamhub__V1__Network *n, int add, rh_diag_t *diag)
{
    for (size_t i = 0; i <= n->n_delegated_net_ids; i++) {
        uint32_t id = i == 0 ? n->net_id : n->delegated_net_ids[i - 1];
        lw_devaddr_prefix_t p;
        if (lw_netid_devaddr_prefix(id, &p, NULL) != RH_OK)
            continue;
        uint8_t key[13];
        rp__key_block(key, p.value, p.len);
        rh_put_be32(key + 5, id);
        rh_put_be32(key + 9, n->net_id);
        int rc = add ? mput(t, RP_DBI_NETIDX, key, sizeof key, "", 0, diag)
                     : mdel(t, RP_DBI_NETIDX, key, sizeof key, diag);
        if (rc)
            return rc;
    }
    return RH_OK;
}

static int netidx_update(rp_txn_t *t, const MDB_val *old, const Roamhub__V1__Network *new_,
                         rh_diag_t *diag)
{
    if (old) {
        Roamhub__V1__Network *o =
            roamhub__v1__network__unpack(NULL, old->mv_size, old->mv_data);
        if (o) {
            int rc = netidx_apply(t, o, 0, diag);
            roamhub__v1__network__free_unpacked(o, NULL);
            if (rc)
                return rc;
        }
    }
    return new_ ? netidx_apply(t, new_, 1, diag) : RH_OK;
}

/* ---- operations ---------------------------------------------------------------------------- */

static int apply_put(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *msg, rp_put_mode_t mode,
                     rh_diag_t *diag)
{
    int rc = rp__validate(kind, msg, diag);
    if (rc)
        return rc;
    uint8_t key[RP_KEY_MAX];
    size_t klen;
    rc = rp__key_of(kind, msg, key, &klen, diag);
    if (rc)
        return rc;
    char ktxt[300];
    rp_key_text(kind, msg, ktxt, sizeof ktxt);

    MDB_val k = {klen, key}, old;
    int g = mdb_get(t->txn, t->db->dbi[kind], &k, &old);
    if (g && g != MDB_NOTFOUND)
        return rp__lmdb_err(g, diag, "mdb_get");
    int exists = g == 0;
    if (mode == RP_PUT_CREATE && exists)
        return rh_diag_fail(diag, RH_EEXIST, "%s %s already exists", rp_kind_name(kind), ktxt);
    if (mode == RP_PUT_UPDATE && !exists)
        return rh_diag_fail(diag, RH_ENOTFOUND, "%s %s does not exist", rp_kind_name(kind), ktxt);

    Roamhub__V1__RoutingPolicy pol;
    if (kind == RP_KIND_BLOCK) {
        rc = block_checks(t, (const Roamhub__V1__DevAddrBlock *)(const void *)msg, diag);
        if (rc)
            return rc;
    } else if (kind == RP_KIND_POLICY) {
        pol = *(const Roamhub__V1__RoutingPolicy *)(const void *)msg;
        if (pol.updated_at == 0)
            pol.updated_at = rh_real_ms();
        msg = &pol.base;
    }

    /* Copy the old value out: later puts in this transaction may move it. */
    uint8_t *before = NULL;
    size_t blen = 0;
    if (exists) {
        blen = old.mv_size;
        before = malloc(blen ? blen : 1);
        if (!before)
            return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
        memcpy(before, old.mv_data, blen);
    }
    size_t vlen;
    uint8_t *val = pack(msg, &vlen);
    if (!val) {
        free(before);
        return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
    }
    rc = mput(t, kind, key, klen, val, vlen, diag);
    if (rc == RH_OK)
        track(t, kind, key, val, vlen);
    if (rc == RH_OK && kind == RP_KIND_NETWORK) {
        MDB_val b = {blen, before};
        rc = netidx_update(t, exists ? &b : NULL, (const Roamhub__V1__Network *)(const void *)msg,
                           diag);
    }
    if (rc == RH_OK) {
        if (t->flags & RP_TXN_AUDIT_SUMMARY)
            t->n_put++;
        else
            rc = audit(t, exists ? "update" : "create", rp_kind_name(kind), ktxt, before, blen,
                       val, vlen, diag);
    }
    free(before);
    free(val);
    return rc;
}

/* Deletes key in dbi (kind), with audit; *deleted = 1 if it existed. */
static int delete_raw(rp_txn_t *t, rp_kind_t kind, const uint8_t *key, size_t klen, int *deleted,
                      rh_diag_t *diag)
{
    MDB_val k = {klen, (void *)key}, old;
    int g = mdb_get(t->txn, t->db->dbi[kind], &k, &old);
    if (deleted)
        *deleted = 0;
    if (g == MDB_NOTFOUND)
        return RH_OK;
    if (g)
        return rp__lmdb_err(g, diag, "mdb_get");
    size_t blen = old.mv_size;
    uint8_t *before = malloc(blen ? blen : 1);
    if (!before)
        return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
    memcpy(before, old.mv_data, blen);
    int rc = RH_OK;
    ProtobufCMessage *m = protobuf_c_message_unpack(rp_kind_descriptor(kind), NULL, blen, before);
    char ktxt[300] = "?";
    if (m)
        rp_key_text(kind, m, ktxt, sizeof ktxt);
    if (kind == RP_KIND_NETWORK) {
        MDB_val b = {blen, before};
        rc = netidx_update(t, &b, NULL, diag);
    }
    if (rc == RH_OK)
        rc = mdel(t, kind, key, klen, diag);
    if (rc == RH_OK)
        track(t, kind, key, NULL, 0);
    if (rc == RH_OK) {
        if (t->flags & RP_TXN_AUDIT_SUMMARY)
            t->n_del++;
        else
            rc = audit(t, "delete", rp_kind_name(kind), ktxt, before, blen, NULL, 0, diag);
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    free(before);
    if (rc == RH_OK && deleted)
        *deleted = 1;
    return rc;
}

static int apply_delete(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *keymsg, int *deleted,
                        rh_diag_t *diag)
{
    uint8_t key[RP_KEY_MAX];
    size_t klen;
    int rc = rp__key_of(kind, keymsg, key, &klen, diag);
    if (rc)
        return rc;
    return delete_raw(t, kind, key, klen, deleted, diag);
}

static int apply_clear(rp_txn_t *t, rp_kind_t kind, rh_diag_t *diag)
{
    int rc = mdb_drop(t->txn, t->db->dbi[kind], 0);
    if (rc == 0 && (kind == RP_KIND_BLOCK || kind == RP_KIND_POLICY)) {
        t->dirty = 1; /* the index rebuilds (a delta of the whole kind would be the table) */
        if (!t->db->no_index && (t->delta || (t->delta = calloc(1, sizeof *t->delta))))
            rp__delta_clear(t->delta);
    }
    if (rc == 0 && kind == RP_KIND_NETWORK)
        rc = mdb_drop(t->txn, t->db->dbi[RP_DBI_NETIDX], 0);
    if (rc)
        return rp__lmdb_err(rc, diag, "mdb_drop");
    if (t->flags & RP_TXN_AUDIT_SUMMARY) {
        t->n_clear++;
        return RH_OK;
    }
    return audit(t, "clear", rp_kind_name(kind), "*", NULL, 0, NULL, 0, diag);
}

/* Collects keys of `kind` matching a predicate on the stored record, then deletes them. */
typedef int (*match_fn)(const MDB_val *k, const MDB_val *v, uint32_t net_id);

static int m_tenant(const MDB_val *k, const MDB_val *v, uint32_t id)
{
    (void)v;
    return k->mv_size >= 4 && rh_get_be32(k->mv_data) == id;
}
static int m_block(const MDB_val *k, const MDB_val *v, uint32_t id)
{
    (void)k;
    blk_owner_t o;
    return decode_block_owner(v, &o) == 0 && o.net_id == id;
}
static int m_join(const MDB_val *k, const MDB_val *v, uint32_t id)
{
    (void)k;
    rp_join_val_t j;
    return rp__join_decode(v->mv_data, v->mv_size, &j) == 0 && j.join_server_len == 0 &&
           j.home_net_id == id;
}

static int delete_matching(rp_txn_t *t, rp_kind_t kind, match_fn fn, uint32_t id, rh_diag_t *diag)
{
    MDB_cursor *c = txn_cursor(t, kind);
    if (!c)
        return rh_diag_fail(diag, RH_EIO, "cursor");
    size_t n = 0, cap = 0;
    uint8_t (*keys)[RP_KEY_MAX + 2] = NULL;
    MDB_val k, v;
    int rc;
    if (kind == RP_KIND_TENANT || kind == RP_KIND_POLICY) {
        uint8_t start[4];
        rh_put_be32(start, id);
        k.mv_size = 4;
        k.mv_data = start;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    }
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if ((kind == RP_KIND_TENANT || kind == RP_KIND_POLICY) &&
            (k.mv_size < 4 || rh_get_be32(k.mv_data) != id))
            break;
        if (!fn(&k, &v, id) || k.mv_size > RP_KEY_MAX)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            void *nk = realloc(keys, cap * sizeof *keys);
            if (!nk) {
                free(keys);
                return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
            }
            keys = nk;
        }
        keys[n][0] = (uint8_t)(k.mv_size >> 8);
        keys[n][1] = (uint8_t)k.mv_size;
        memcpy(keys[n] + 2, k.mv_data, k.mv_size);
        n++;
    }
    if (rc && rc != MDB_NOTFOUND) {
        free(keys);
        return rp__lmdb_err(rc, diag, "cursor");
    }
    rc = RH_OK;
    for (size_t i = 0; i < n && rc == RH_OK; i++)
        rc = delete_raw(t, kind, keys[i] + 2, ((size_t)keys[i][0] << 8) | keys[i][1], NULL, diag);
    free(keys);
    return rc;
}

static int apply_clear_net(rp_txn_t *t, uint32_t id, rh_diag_t *diag)
{
    int rc;
    if ((rc = delete_matching(t, RP_KIND_TENANT, m_tenant, id, diag)) ||
        (rc = delete_matching(t, RP_KIND_BLOCK, m_block, id, diag)) ||
        (rc = delete_matching(t, RP_KIND_JOIN_ROUTE, m_join, id, diag)) ||
        (rc = delete_matching(t, RP_KIND_POLICY, m_tenant, id, diag)))
        return rc;
    return RH_OK;
}

static int apply_op(rp_txn_t *t, const rp_op_t *op, rh_diag_t *diag)
{
    switch (op->type) {
    case OP_PUT:
    case OP_DELETE: {
        ProtobufCMessage *m =
            protobuf_c_message_unpack(rp_kind_descriptor(op->kind), NULL, op->len, op->data);
        if (!m)
            return rh_diag_fail(diag, RH_EIO, "replay: cannot unpack a logged record");
        int rc = op->type == OP_PUT ? apply_put(t, op->kind, m, op->mode, diag)
                                    : apply_delete(t, op->kind, m, NULL, diag);
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    case OP_CLEAR: return apply_clear(t, op->kind, diag);
    case OP_CLEAR_NET: return apply_clear_net(t, op->net_id, diag);
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
        case OP_PUT: rc = apply_put(t, kind, m, mode, diag); break;
        case OP_DELETE: rc = apply_delete(t, kind, m, deleted, diag); break;
        case OP_CLEAR: rc = apply_clear(t, kind, diag); break;
        default: rc = apply_clear_net(t, net_id, diag); break;
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
            rc = audit(t, "import", "batch", txt, NULL, 0, NULL, 0, diag);
        }
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

/* ---- cold-path reads ----------------------------------------------------------------------- */

int rp_get(rp_db_t *db, rp_kind_t kind, const ProtobufCMessage *keymsg, ProtobufCMessage **out,
           rh_diag_t *diag)
{
    *out = NULL;
    uint8_t key[RP_KEY_MAX];
    size_t klen;
    int rc = rp__key_of(kind, keymsg, key, &klen, diag);
    if (rc)
        return rc;
    rp_reader_t *r;
    if ((rc = rp__temp_reader(db, &r, diag)))
        return rc;
    MDB_val k = {klen, key}, v;
    rc = mdb_get(rp__reader_txn(r), db->dbi[kind], &k, &v);
    if (rc == 0) {
        *out = protobuf_c_message_unpack(rp_kind_descriptor(kind), NULL, v.mv_size, v.mv_data);
        rc = *out ? RH_OK
                  : rh_diag_fail(diag, RH_EIO, "%s: stored record does not unpack",
                                 rp_kind_name(kind));
    } else if (rc == MDB_NOTFOUND) {
        rc = RH_OK;
    } else {
        rc = rp__lmdb_err(rc, diag, "mdb_get");
    }
    rp__temp_reader_done(r);
    return rc;
}

int rp_list(rp_db_t *db, rp_kind_t kind, const char *page_token, size_t limit, rp_list_cb cb,
            void *ud, char *next_token, size_t next_cap, rh_diag_t *diag)
{
    if (next_token && next_cap)
        next_token[0] = 0;
    if ((unsigned)kind >= RP_KIND_COUNT || !cb)
        return rh_diag_fail(diag, RH_EINVAL, "rp_list: bad kind or callback");
    uint8_t start[RP_KEY_MAX];
    size_t slen = 0;
    if (page_token && page_token[0]) {
        int rc = rh_hex_decode(page_token, strlen(page_token), start, sizeof start, &slen,
                               "page_token", diag);
        if (rc)
            return rc;
        if (slen == 0)
            return rh_diag_fail(diag, RH_EINVAL, "page_token: empty");
    }
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, diag);
    if (rc)
        return rc;
    MDB_cursor *c = rp__reader_cursor(r, kind);
    if (!c) {
        rp__temp_reader_done(r);
        return rh_diag_fail(diag, RH_EIO, "rp_list: cursor");
    }
    MDB_val k, v;
    if (slen) {
        k.mv_size = slen;
        k.mv_data = start;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == slen && memcmp(k.mv_data, start, slen) == 0)
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    } else {
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    }
    size_t n = 0;
    int stopped = 0;
    uint8_t last[RP_KEY_MAX];
    size_t llen = 0;
    while (rc == 0) {
        if (limit && n == limit)
            break;
        ProtobufCMessage *m =
            protobuf_c_message_unpack(rp_kind_descriptor(kind), NULL, v.mv_size, v.mv_data);
        if (!m) {
            rp__temp_reader_done(r);
            return rh_diag_fail(diag, RH_EIO, "%s: stored record does not unpack",
                                rp_kind_name(kind));
        }
        llen = k.mv_size < sizeof last ? k.mv_size : sizeof last;
        memcpy(last, k.mv_data, llen);
        int stop = cb(ud, kind, m);
        protobuf_c_message_free_unpacked(m, NULL);
        n++;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        if (stop) {
            stopped = 1;
            break;
        }
    }
    int more = rc == 0;
    if (rc && rc != MDB_NOTFOUND) {
        rp__temp_reader_done(r);
        return rp__lmdb_err(rc, diag, "rp_list: cursor");
    }
    (void)stopped;
    if (more && n > 0 && next_token && next_cap >= 2 * llen + 1)
        rh_hex_encode(last, llen, next_token, 0);
    rp__temp_reader_done(r);
    return RH_OK;
}

int rp_count(rp_db_t *db, rp_kind_t kind, size_t *n)
{
    *n = 0;
    if ((unsigned)kind >= RP_KIND_COUNT)
        return RH_EINVAL;
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, NULL);
    if (rc)
        return rc;
    MDB_stat st;
    rc = mdb_stat(rp__reader_txn(r), db->dbi[kind], &st);
    if (rc == 0)
        *n = st.ms_entries;
    rp__temp_reader_done(r);
    return rc ? RH_EIO : RH_OK;
}

int rp_audit_list(rp_db_t *db, int64_t since_ms, size_t limit, rp_audit_cb cb, void *ud,
                  rh_diag_t *diag)
{
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, diag);
    if (rc)
        return rc;
    MDB_cursor *c = rp__reader_cursor(r, RP_DBI_AUDIT);
    uint8_t key[16] = {0};
    rh_put_be64(key, (uint64_t)(since_ms < 0 ? 0 : since_ms));
    MDB_val k = {sizeof key, key}, v;
    rc = c ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : MDB_BAD_TXN;
    size_t n = 0;
    while (rc == 0 && (!limit || n < limit)) {
        Roamhub__V1__AuditRecord *a =
            roamhub__v1__audit_record__unpack(NULL, v.mv_size, v.mv_data);
        if (a) {
            int stop = cb(ud, a);
            roamhub__v1__audit_record__free_unpacked(a, NULL);
            n++;
            if (stop)
                break;
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    rp__temp_reader_done(r);
    if (rc && rc != MDB_NOTFOUND)
        return rp__lmdb_err(rc, diag, "audit list");
    return RH_OK;
}
