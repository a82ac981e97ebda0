/*
 * rp_read.c — cold-path reads, each in its own short read transaction: one record (rp_get),
 * pages of a kind in key order (rp_list), counts, and the audit log. The data path's lookups
 * are in rp_lookup.c.
 */
#include "rp_internal.h"

#include "rh_hex.h"

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

int rp_dump(rp_db_t *db, const char *mark, uint64_t *mark_val, rp_dump_cb cb, void *ud,
            rh_diag_t *diag)
{
    *mark_val = 0;
    if (!rp__mark_name_ok(mark) || !cb)
        return rh_diag_fail(diag, RH_EINVAL, "rp_dump: bad mark name or callback");
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, diag);
    if (rc)
        return rc;
    rc = rp__read_mark(db, rp__reader_txn(r), mark, mark_val, NULL, diag);
    MDB_val k, v;
    int m;
    for (int kind = 0; kind < RP_KIND_COUNT && rc == RH_OK; kind++) {
        MDB_cursor *c = rp__reader_cursor(r, kind);
        if (!c) {
            rc = rh_diag_fail(diag, RH_EIO, "rp_dump: cursor");
            break;
        }
        m = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        for (; m == 0 && rc == RH_OK; m = mdb_cursor_get(c, &k, &v, MDB_NEXT))
            if (cb(ud, (rp_kind_t)kind, v.mv_data, v.mv_size))
                rc = rh_diag_fail(diag, RH_EIO, "rp_dump: stopped by the callback");
        if (rc == RH_OK && m != MDB_NOTFOUND)
            rc = rp__lmdb_err(m, diag, "rp_dump");
    }
    rp__temp_reader_done(r);
    return rc;
}
