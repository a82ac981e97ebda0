/*
 * rp_rules.c — the DevAddr block rules, checked on every block put inside its transaction
 * (rp.h "Invariants"): containment in the owner's NetID prefix or a delegated NetID's (unless
 * outside_net_id), and nesting only by delegation — checked against every ancestor (the LPM
 * walk over LMDB keys) and every descendant (a range scan). Errors name the conflicting block.
 */
#include "rp_internal.h"

#include "lw_netid.h"
#include "rh_hex.h"

#include <stdio.h>

int rp__block_owner(const MDB_val *v, blk_owner_t *o)
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

int rp__block_checks(rp_txn_t *t, const Roamhub__V1__DevAddrBlock *m, rh_diag_t *diag)
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

    MDB_cursor *c = rp__txn_cursor(t, RP_DBI_BLOCK);
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
                if (rp__block_owner(&v, &o))
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
                if (rp__block_owner(&v, &o))
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
