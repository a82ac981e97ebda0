/*
 * rp_lookup.c — the data path: longest-prefix match of DevAddrs and JoinEUI/DevEUI pairs, NetIDs
 * covering a DevAddr, and the routing-policy decision.
 *
 * Longest-prefix match over keys prefix|length sorted as numbers: the largest key <= (A, L) is
 * found with MDB_SET_RANGE (+ MDB_PREV). If that block B contains A it is the longest match
 * (blocks containing A sort by length). If not, let c be the number of leading bits B and A
 * share: no block containing A can be longer than c (its key would lie between B and (A, L)),
 * so the walk continues with L = c. Each step shortens L, typically one or two steps in all.
 * Values are read with the protobuf scanner (no allocation) and copied into caller structs
 * before the snapshot ends.
 */
#include "rp_internal.h"

#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_log.h"

static int seek_le(MDB_cursor *c, const uint8_t *key, size_t klen, MDB_val *k, MDB_val *v)
{
    k->mv_data = (void *)key;
    k->mv_size = klen;
    int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
    if (rc == 0) {
        if (k->mv_size == klen && memcmp(k->mv_data, key, klen) == 0)
            return 0;
        return mdb_cursor_get(c, k, v, MDB_PREV);
    }
    if (rc == MDB_NOTFOUND)
        return mdb_cursor_get(c, k, v, MDB_LAST);
    return rc;
}

static int lookup_err(int rc, const char *what)
{
    RH_LOG(RH_LOG_ERR, "rp", "lookup failed op=%s err=\"%s\"", what,
           rc > 0 || rc < -1000 ? mdb_strerror(rc) : "corrupt record");
    return RH_EIO;
}

int rp_lookup_devaddr(rp_reader_t *r, uint32_t devaddr, rp_block_match_t *out)
{
    out->found = 0;
    if (!r || !r->active)
        return RH_EINVAL;
    if (r->snap)
        return rp__snap_devaddr(r->snap, devaddr, out);
    MDB_cursor *c = rp__reader_cursor(r, RP_DBI_BLOCK);
    if (!c)
        return lookup_err(MDB_BAD_TXN, "devaddr");
    unsigned L = 32;
    uint8_t kb[RP_KEY_BLOCK];
    for (int iter = 0; iter < 34; iter++) {
        rp__key_block(kb, devaddr & rp__mask32(L), L);
        MDB_val k, v;
        int rc = seek_le(c, kb, sizeof kb, &k, &v);
        if (rc == MDB_NOTFOUND)
            return RH_OK;
        if (rc)
            return lookup_err(rc, "devaddr");
        if (k.mv_size != RP_KEY_BLOCK || ((const uint8_t *)k.mv_data)[4] > 32)
            return lookup_err(-1, "devaddr");
        uint32_t bv = rh_get_be32(k.mv_data);
        unsigned bl = ((const uint8_t *)k.mv_data)[4];
        if (((devaddr ^ bv) & rp__mask32(bl)) == 0) {
            out->prefix = bv;
            out->length = (uint8_t)bl;
            rp_block_val_t bv_;
            if (rp__block_decode(v.mv_data, v.mv_size, &bv_))
                return lookup_err(-1, "devaddr");
            out->owner.net_id = bv_.net_id;
            rp__copy_str(out->owner.tenant_id, sizeof out->owner.tenant_id, bv_.tenant,
                         bv_.tenant_len);
            rp__copy_str(out->cluster_id, sizeof out->cluster_id, bv_.cluster, bv_.cluster_len);
            out->found = 1;
            return RH_OK;
        }
        unsigned cl = (unsigned)__builtin_clz(devaddr ^ bv);
        if (cl >= L)
            return lookup_err(-1, "devaddr");
        L = cl;
    }
    return lookup_err(-1, "devaddr");
}

/* Longest DevEUI prefix among the routes of JoinEUI group g (9 key bytes). 1 found, 0 none,
 * <0 error. */
static int join_group(MDB_cursor *c, const uint8_t g[9], uint64_t dev, MDB_val *k, MDB_val *v)
{
    unsigned L = 64;
    uint8_t key[RP_KEY_JOIN];
    memcpy(key, g, 9);
    for (int iter = 0; iter < 66; iter++) {
        rh_put_be64(key + 9, dev & rp__mask64(L));
        key[17] = (uint8_t)L;
        int rc = seek_le(c, key, sizeof key, k, v);
        if (rc == MDB_NOTFOUND)
            return 0;
        if (rc)
            return -rc;
        if (k->mv_size != RP_KEY_JOIN)
            return -1;
        const uint8_t *kk = k->mv_data;
        if (memcmp(kk, g, 9) != 0)
            return 0;
        uint64_t dv = rh_get_be64(kk + 9);
        unsigned dl = kk[17];
        if (dl > 64)
            return -1;
        if (((dev ^ dv) & rp__mask64(dl)) == 0)
            return 1;
        unsigned cl = (unsigned)__builtin_clzll(dev ^ dv);
        if (cl >= L)
            return -1;
        L = cl;
    }
    return -1;
}

int rp_lookup_join(rp_reader_t *r, uint64_t join_eui, uint64_t dev_eui, rp_join_match_t *out)
{
    memset(out, 0, sizeof *out);
    if (!r || !r->active)
        return RH_EINVAL;
    MDB_cursor *c = rp__reader_cursor(r, RP_DBI_JOIN);
    if (!c)
        return lookup_err(MDB_BAD_TXN, "join");
    unsigned L = 64;
    uint8_t key[RP_KEY_JOIN];
    for (int iter = 0; iter < 140; iter++) {
        rh_put_be64(key, join_eui & rp__mask64(L));
        key[8] = (uint8_t)L;
        memset(key + 9, 0xFF, 9);
        MDB_val k, v;
        int rc = seek_le(c, key, sizeof key, &k, &v);
        if (rc == MDB_NOTFOUND)
            return RH_OK;
        if (rc)
            return lookup_err(rc, "join");
        if (k.mv_size != RP_KEY_JOIN || ((const uint8_t *)k.mv_data)[8] > 64)
            return lookup_err(-1, "join");
        uint8_t g[9];
        memcpy(g, k.mv_data, 9);
        uint64_t jv = rh_get_be64(g);
        unsigned jl = g[8];
        if (((join_eui ^ jv) & rp__mask64(jl)) == 0) {
            int f = join_group(c, g, dev_eui, &k, &v);
            if (f < 0)
                return lookup_err(-f, "join");
            if (f == 1) {
                const uint8_t *kk = k.mv_data;
                out->join_eui_prefix = jv;
                out->join_eui_length = (uint8_t)jl;
                out->dev_eui_prefix = rh_get_be64(kk + 9);
                out->dev_eui_length = kk[17];
                rp_join_val_t jv_;
                if (rp__join_decode(v.mv_data, v.mv_size, &jv_))
                    return lookup_err(-1, "join");
                out->home.net_id = jv_.home_net_id;
                rp__copy_str(out->home.tenant_id, sizeof out->home.tenant_id, jv_.home_tenant,
                             jv_.home_tenant_len);
                rp__copy_str(out->join_server_id, sizeof out->join_server_id, jv_.join_server,
                             jv_.join_server_len);
                out->via_join_server = out->join_server_id[0] != 0;
                if (out->via_join_server) {
                    out->home.net_id = 0;
                    out->home.tenant_id[0] = 0;
                }
                out->found = 1;
                return RH_OK;
            }
            if (jl == 0)
                return RH_OK;
            L = jl - 1;
            continue;
        }
        unsigned cl = (unsigned)__builtin_clzll(join_eui ^ jv);
        if (cl >= L)
            return lookup_err(-1, "join");
        L = cl;
    }
    return lookup_err(-1, "join");
}

int rp_lookup_netids(rp_reader_t *r, uint32_t devaddr, uint32_t *netids, uint32_t *owners,
                     size_t cap, size_t *n)
{
    *n = 0;
    if (!r || !r->active)
        return RH_EINVAL;
    int type = lw_devaddr_type(devaddr);
    if (type < 0)
        return RH_OK;
    unsigned len = (unsigned)type + 1 + lw_nwkid_bits((unsigned)type);
    uint8_t key[13];
    rp__key_block(key, devaddr & rp__mask32(len), len);
    memset(key + 5, 0, 8);
    MDB_cursor *c = rp__reader_cursor(r, RP_DBI_NETIDX);
    if (!c)
        return lookup_err(MDB_BAD_TXN, "netids");
    MDB_val k = {sizeof key, key}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 13 && memcmp(k.mv_data, key, 5) == 0) {
        if (*n < cap) {
            netids[*n] = rh_get_be32((const uint8_t *)k.mv_data + 5);
            if (owners)
                owners[*n] = rh_get_be32((const uint8_t *)k.mv_data + 9);
        }
        (*n)++;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc && rc != MDB_NOTFOUND)
        return lookup_err(rc, "netids");
    return RH_OK;
}

int rp_policy_effective(rp_reader_t *r, const rp_party_t *fwd, const rp_party_t *home,
                        rp_policy_eff_t *out)
{
    memset(out, 0, sizeof *out);
    if (!r || !r->active || !fwd || !home)
        return RH_EINVAL;
    MDB_txn *txn = rp__reader_txn(r);
    MDB_dbi dbi = r->db->dbi[RP_DBI_POLICY];
    int ft = fwd->tenant_id[0] != 0, ht = home->tenant_id[0] != 0;
    static const struct {
        uint8_t fwd_tenant, has_home, home_tenant;
        rp_policy_source_t src;
    } order[6] = {
        {1, 1, 1, RP_SRC_TENANT_HOME_TENANT}, {1, 1, 0, RP_SRC_TENANT_HOME_NETID},
        {1, 0, 0, RP_SRC_TENANT_DEFAULT},     {0, 1, 1, RP_SRC_NETID_HOME_TENANT},
        {0, 1, 0, RP_SRC_NETID_HOME_NETID},   {0, 0, 0, RP_SRC_NETID_DEFAULT},
    };
    uint8_t key[RP_KEY_POLICY];
    for (int i = 0; i < 6; i++) {
        if ((order[i].fwd_tenant && !ft) || (order[i].home_tenant && !ht))
            continue;
        rp__key_policy(key, fwd->net_id, order[i].fwd_tenant ? fwd->tenant_id : NULL,
                       order[i].has_home, home->net_id,
                       order[i].home_tenant ? home->tenant_id : NULL);
        if (r->snap) {
            const rp_flags_t *fl = rp__snap_policy(r->snap, key);
            if (!fl)
                continue;
            out->flags = *fl;
            out->source = order[i].src;
            return RH_OK;
        }
        MDB_val k = {sizeof key, key}, v;
        int rc = mdb_get(txn, dbi, &k, &v);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            return lookup_err(rc, "policy");
        if (rp__policy_flags(v.mv_data, v.mv_size, &out->flags))
            return lookup_err(-1, "policy");
        out->source = order[i].src;
        return RH_OK;
    }
    return RH_OK;
}

void rp_policy_eval(rp_class_t cls, const rp_policy_eff_t *eff, rp_verdict_t *out)
{
    memset(out, 0, sizeof *out);
    out->source = eff->source;
    if (eff->source == RP_SRC_NONE) {
        out->reason = RP_DENY_NO_POLICY;
        return;
    }
    const rp_flags_t *f = &eff->flags;
    int allow = 0, uplink = 0;
    switch (cls) {
    case RP_CLASS_JOIN_REQUEST: allow = f->up_join_request; uplink = 1; break;
    case RP_CLASS_UPLINK_MAC: allow = f->up_mac_data; uplink = 1; break;
    case RP_CLASS_UPLINK_APP: allow = f->up_application_data; uplink = 1; break;
    case RP_CLASS_JOIN_ACCEPT: allow = f->down_join_accept; break;
    case RP_CLASS_DOWNLINK_MAC: allow = f->down_mac_data; break;
    case RP_CLASS_DOWNLINK_APP: allow = f->down_application_data; break;
    case RP_CLASS_OTHER:
        allow = f->up_join_request || f->up_mac_data || f->up_application_data ||
                f->down_join_accept || f->down_mac_data || f->down_application_data;
        break;
    default: allow = 0;
    }
    out->allow = allow != 0;
    out->reason = allow ? RP_DENY_NONE : RP_DENY_CLASS;
    if (allow && uplink) {
        out->strip_signal_quality = !f->up_signal_quality;
        out->strip_localization = !f->up_localization;
    }
}

int rp_policy_check(rp_reader_t *r, rp_class_t cls, const rp_party_t *fwd,
                    const rp_party_t *home, rp_verdict_t *out)
{
    memset(out, 0, sizeof *out);
    out->reason = RP_DENY_NO_POLICY;
    if ((unsigned)cls >= RP_CLASS_COUNT)
        return RH_EINVAL;
    rp_policy_eff_t eff;
    int rc = rp_policy_effective(r, fwd, home, &eff);
    if (rc)
        return rc;
    rp_policy_eval(cls, &eff, out);
    return RH_OK;
}
