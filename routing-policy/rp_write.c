/*
 * rp_write.c — what each write does inside a transaction: validated put / delete / clear of
 * every record kind with its audit record (or the import summary), the NetID prefix index kept
 * with the networks, the NetID cascade (rp_txn_clear_net_id), and the record of routing
 * changes handed to the compiled index. The transaction around them (begin, op log, map
 * growth and replay, commit) is rp_txn.c; the DevAddr block rules are rp_rules.c.
 */
#include "rp_internal.h"

#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdio.h>
#include <stdlib.h>

static const uint8_t META_AUDIT_SEQ[] = "audit_seq";

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    if (b)
        protobuf_c_message_pack(m, b);
    return b;
}

int rp__mput(rp_txn_t *t, int dbi, const void *k, size_t kl, const void *v, size_t vl,
                rh_diag_t *diag)
{
    MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
    int rc = mdb_put(t->txn, t->db->dbi[dbi], &key, &val, 0);
    return rc ? rp__lmdb_err(rc, diag, "mdb_put") : RH_OK;
}

int rp__mdel(rp_txn_t *t, int dbi, const void *k, size_t kl, rh_diag_t *diag)
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

int rp__audit(rp_txn_t *t, const char *action, const char *kind, const char *keytext,
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
    int rc = rp__mput(t, RP_DBI_META, META_AUDIT_SEQ, sizeof META_AUDIT_SEQ - 1, sq, 8, diag);
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
    rc = rp__mput(t, RP_DBI_AUDIT, key, sizeof key, buf, len, diag);
    free(buf);
    return rc;
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
        int rc = add ? rp__mput(t, RP_DBI_NETIDX, key, sizeof key, "", 0, diag)
                     : rp__mdel(t, RP_DBI_NETIDX, key, sizeof key, diag);
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

int rp__apply_put(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *msg, rp_put_mode_t mode,
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
        rc = rp__block_checks(t, (const Roamhub__V1__DevAddrBlock *)(const void *)msg, diag);
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
    rc = rp__mput(t, kind, key, klen, val, vlen, diag);
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
            rc = rp__audit(t, exists ? "update" : "create", rp_kind_name(kind), ktxt, before, blen,
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
        rc = rp__mdel(t, kind, key, klen, diag);
    if (rc == RH_OK)
        track(t, kind, key, NULL, 0);
    if (rc == RH_OK) {
        if (t->flags & RP_TXN_AUDIT_SUMMARY)
            t->n_del++;
        else
            rc = rp__audit(t, "delete", rp_kind_name(kind), ktxt, before, blen, NULL, 0, diag);
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    free(before);
    if (rc == RH_OK && deleted)
        *deleted = 1;
    return rc;
}

int rp__apply_delete(rp_txn_t *t, rp_kind_t kind, const ProtobufCMessage *keymsg, int *deleted,
                        rh_diag_t *diag)
{
    uint8_t key[RP_KEY_MAX];
    size_t klen;
    int rc = rp__key_of(kind, keymsg, key, &klen, diag);
    if (rc)
        return rc;
    return delete_raw(t, kind, key, klen, deleted, diag);
}

int rp__apply_clear(rp_txn_t *t, rp_kind_t kind, rh_diag_t *diag)
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
    return rp__audit(t, "clear", rp_kind_name(kind), "*", NULL, 0, NULL, 0, diag);
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
    return rp__block_owner(v, &o) == 0 && o.net_id == id;
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
    MDB_cursor *c = rp__txn_cursor(t, kind);
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

int rp__apply_clear_net(rp_txn_t *t, uint32_t id, rh_diag_t *diag)
{
    int rc;
    if ((rc = delete_matching(t, RP_KIND_TENANT, m_tenant, id, diag)) ||
        (rc = delete_matching(t, RP_KIND_BLOCK, m_block, id, diag)) ||
        (rc = delete_matching(t, RP_KIND_JOIN_ROUTE, m_join, id, diag)) ||
        (rc = delete_matching(t, RP_KIND_POLICY, m_tenant, id, diag)))
        return rc;
    return RH_OK;
}
