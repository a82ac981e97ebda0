/*
 * rp_stats.c — per-minute traffic statistics buckets (StatsBucket values), keyed by
 *   minute(8, big-endian) | forwarder NetID(4) | home NetID(4) | class(1) | outcome(1) |
 *   result code(32, NUL-padded)
 * so that a time range is one cursor walk. The relay merges per-thread counters with
 * rp_stats_add about once a second; the admin API reads them with rp_stats_query; retention is
 * rp_stats_prune. Statistics writes are not audited and grow the map like any other write.
 */
#include "rp_internal.h"

#include "rh_hex.h"
#include "rh_log.h"

#include <stdbool.h>
#include <stdlib.h>

unsigned rp_stats_hist_index(uint64_t us)
{
    if (us == 0)
        return 0;
    unsigned i = 64 - (unsigned)__builtin_clzll(us);
    return i >= RP_STATS_HIST ? RP_STATS_HIST - 1 : i;
}

typedef int (*raw_fn)(rp_db_t *db, MDB_txn *txn, void *ud, rh_diag_t *diag);

/* Runs fn in a write transaction; on MDB_MAP_FULL grows the map and runs it again. */
static int raw_write(rp_db_t *db, raw_fn fn, void *ud, rh_diag_t *diag)
{
    if (db->read_only)
        return rh_diag_fail(diag, RH_EPERM, "the routing database is open read-only");
    pthread_mutex_lock(&db->write_mu);
    int rc;
    for (;;) {
        MDB_txn *txn;
        rc = mdb_txn_begin(db->env, NULL, 0, &txn);
        if (rc == MDB_MAP_RESIZED) {
            rp__set_mapsize(db, 0);
            continue;
        }
        if (rc) {
            rc = rp__lmdb_err(rc, diag, "stats: write transaction");
            break;
        }
        rc = fn(db, txn, ud, diag);
        if (rc == RH_OK) {
            int m = mdb_txn_commit(txn);
            rc = m ? rp__lmdb_err(m, diag, "stats: commit") : RH_OK;
        } else {
            mdb_txn_abort(txn);
        }
        if (rc != RP_EMAPFULL)
            break;
        if (db->map_size >= db->max_map_size) {
            rc = rh_diag_fail(diag, RH_EFULL,
                              "storage full: the LMDB map is %zu KiB and may not grow beyond "
                              "%zu KiB (max_map_size); statistics were not written",
                              db->map_size >> 10, db->max_map_size >> 10);
            break;
        }
        size_t ns = db->map_size * 2;
        if (ns > db->max_map_size || ns < db->map_size)
            ns = db->max_map_size;
        if ((rc = rp__set_mapsize(db, ns)))
            break;
    }
    pthread_mutex_unlock(&db->write_mu);
    if (rc == RH_OK)
        rp__index_kick(db);
    return rc;
}

/* Key of a bucket: minute · forwarder NetID · home NetID · class · outcome · result code, and for
 * a forwarder named by its JoinEUI the forwarder slot holds STATS_FWD_EUI (no NetID is wider than
 * 24 bits) and the JoinEUI follows as 8 more bytes. NetID rows keep the original layout, so
 * existing databases need no migration. Returns the key length. */
#define STATS_FWD_EUI 0xFFFFFFFFu
#define STATS_KEY_MAX (RP_KEY_STATS + 8)

static size_t stats_key(uint8_t k[STATS_KEY_MAX], const rp_stats_item_t *it)
{
    bool eui = it->forwarder_kind == RP_STATS_ID_JOIN_EUI;
    rh_put_be64(k, (uint64_t)it->minute);
    rh_put_be32(k + 8, eui ? STATS_FWD_EUI : it->forwarder_net_id);
    rh_put_be32(k + 12, it->home_net_id);
    k[16] = (uint8_t)it->cls;
    k[17] = (uint8_t)it->outcome;
    memset(k + 18, 0, RP_RESULT_MAX);
    if (it->result_code)
        memcpy(k + 18, it->result_code, strlen(it->result_code));
    if (!eui)
        return RP_KEY_STATS;
    rh_put_be64(k + RP_KEY_STATS, it->forwarder_join_eui);
    return STATS_KEY_MAX;
}

typedef struct add_ctx {
    const rp_stats_item_t *items;
    size_t n;
    const bool *ok; /* ok[i]: row i passed validation */
} add_ctx_t;

static int add_fn(rp_db_t *db, MDB_txn *txn, void *ud, rh_diag_t *diag)
{
    add_ctx_t *a = ud;
    for (size_t i = 0; i < a->n; i++) {
        const rp_stats_item_t *it = &a->items[i];
        if (!a->ok[i])
            continue; /* invalid row: skipped (rp_stats_add counted it) */
        uint8_t key[STATS_KEY_MAX];
        size_t klen = stats_key(key, it);
        uint64_t hist[RP_STATS_HIST];
        memcpy(hist, it->latency_hist, sizeof hist);
        uint64_t count = it->count, sum = it->latency_us_sum;
        MDB_val k = {klen, key}, v;
        int rc = mdb_get(txn, db->dbi[RP_DBI_STATS], &k, &v);
        if (rc == 0) {
            Roamhub__V1__StatsBucket *o =
                roamhub__v1__stats_bucket__unpack(NULL, v.mv_size, v.mv_data);
            if (!o)
                return rh_diag_fail(diag, RH_EIO, "stats: stored bucket does not unpack");
            count += o->count;
            sum += o->latency_us_sum;
            for (size_t j = 0; j < o->n_latency_hist && j < RP_STATS_HIST; j++)
                hist[j] += o->latency_hist[j];
            roamhub__v1__stats_bucket__free_unpacked(o, NULL);
        } else if (rc != MDB_NOTFOUND) {
            return rp__lmdb_err(rc, diag, "stats: mdb_get");
        }
        Roamhub__V1__StatsBucket b = ROAMHUB__V1__STATS_BUCKET__INIT;
        b.minute = it->minute;
        b.forwarder_net_id = it->forwarder_net_id;
        b.home_net_id = it->home_net_id;
        b.message_class = it->cls;
        b.outcome = it->outcome;
        char rcs[RP_RESULT_MAX + 1] = "";
        if (it->result_code)
            memcpy(rcs, it->result_code, strlen(it->result_code));
        b.result_code = rcs;
        b.count = count;
        b.latency_us_sum = sum;
        size_t nh = RP_STATS_HIST;
        while (nh > 0 && hist[nh - 1] == 0)
            nh--;
        b.n_latency_hist = nh;
        b.latency_hist = hist;
        uint8_t buf[512];
        size_t len = roamhub__v1__stats_bucket__pack(&b, buf); /* < 8+4+4+2+2+34+20+250 */
        MDB_val val = {len, buf};
        rc = mdb_put(txn, db->dbi[RP_DBI_STATS], &k, &val, 0);
        if (rc)
            return rp__lmdb_err(rc, diag, "stats: mdb_put");
    }
    return RH_OK;
}

/* Why row i cannot be stored, into diag; RH_OK when it can. */
static int check_row(const rp_stats_item_t *it, size_t i, rh_diag_t *diag)
{
    if ((unsigned)it->cls >= RP_CLASS_COUNT)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].class: %d out of range", i, (int)it->cls);
    if ((unsigned)it->outcome >= RP_OUT_COUNT)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].outcome: %d out of range", i,
                            (int)it->outcome);
    if ((unsigned)it->forwarder_kind > RP_STATS_ID_JOIN_EUI)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].forwarder_kind: %d out of range", i,
                            (int)it->forwarder_kind);
    if ((it->forwarder_kind == RP_STATS_ID_NETID && it->forwarder_net_id > 0xFFFFFF) ||
        it->home_net_id > 0xFFFFFF)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu]: NetID wider than 24 bits", i);
    if (it->minute < 0)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].minute: negative", i);
    if (it->result_code && strlen(it->result_code) > RP_RESULT_MAX)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].result_code: %zu characters, at most %d",
                            i, strlen(it->result_code), RP_RESULT_MAX);
    return RH_OK;
}

int rp_stats_add(rp_db_t *db, const rp_stats_item_t *items, size_t n, rh_diag_t *diag)
{
    if (!db || (n && !items))
        return rh_diag_fail(diag, RH_EINVAL, "rp_stats_add: db and items are required");
    if (n == 0)
        return RH_OK;
    /* Validate every row first; bad rows are skipped and counted, never allowed to hold back the
     * rest of the batch (a refused batch used to be re-queued and refused again forever). */
    bool *ok = malloc(n * sizeof *ok);
    if (!ok)
        return rh_diag_fail(diag, RH_ENOMEM, "stats: out of memory");
    size_t bad = 0;
    rh_diag_t first = {""};
    for (size_t i = 0; i < n; i++) {
        ok[i] = check_row(&items[i], i, bad ? NULL : &first) == RH_OK;
        bad += !ok[i];
    }
    int rc = RH_OK;
    if (bad < n) {
        add_ctx_t a = {items, n, ok};
        rc = raw_write(db, add_fn, &a, diag);
    }
    free(ok);
    if (rc == RH_OK && bad)
        rc = rh_diag_fail(diag, RH_EINVAL, "%zu of %zu statistics rows skipped: %s", bad, n,
                          first.text);
    return rc;
}

/* ---- query --------------------------------------------------------------------------------- */

typedef struct row {
    rp_stats_item_t it;
    char rc[RP_RESULT_MAX + 1];
} row_t;

static int row_cmp(const void *a, const void *b)
{
    const rp_stats_item_t *x = &((const row_t *)a)->it, *y = &((const row_t *)b)->it;
    if (x->forwarder_kind != y->forwarder_kind)
        return x->forwarder_kind < y->forwarder_kind ? -1 : 1;
    if (x->forwarder_join_eui != y->forwarder_join_eui)
        return x->forwarder_join_eui < y->forwarder_join_eui ? -1 : 1;
    if (x->forwarder_net_id != y->forwarder_net_id)
        return x->forwarder_net_id < y->forwarder_net_id ? -1 : 1;
    if (x->home_net_id != y->home_net_id)
        return x->home_net_id < y->home_net_id ? -1 : 1;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    if (x->outcome != y->outcome)
        return x->outcome < y->outcome ? -1 : 1;
    return strcmp(((const row_t *)a)->rc, ((const row_t *)b)->rc);
}

/* Sorts, merges and emits the rows of one period; returns non-zero if the callback stopped. */
static int flush(row_t *rows, size_t n, rp_stats_cb cb, void *ud)
{
    if (n == 0)
        return 0;
    qsort(rows, n, sizeof *rows, row_cmp);
    size_t i = 0;
    while (i < n) {
        row_t acc = rows[i];
        size_t j = i + 1;
        for (; j < n && row_cmp(&rows[j], &acc) == 0; j++) {
            acc.it.count += rows[j].it.count;
            acc.it.latency_us_sum += rows[j].it.latency_us_sum;
            for (int h = 0; h < RP_STATS_HIST; h++)
                acc.it.latency_hist[h] += rows[j].it.latency_hist[h];
        }
        acc.it.result_code = acc.rc[0] ? acc.rc : NULL;
        if (cb(ud, &acc.it))
            return 1;
        i = j;
    }
    return 0;
}

static int match(uint32_t f, uint32_t v)
{
    return f == RP_ANY || f == v;
}

int rp_stats_query(rp_db_t *db, int64_t from_minute, int64_t to_minute,
                   const rp_stats_filter_t *filter, rp_agg_t agg, rp_stats_cb cb, void *ud,
                   rh_diag_t *diag)
{
    if (!db || !cb)
        return rh_diag_fail(diag, RH_EINVAL, "rp_stats_query: db and callback are required");
    if (agg != RP_AGG_MINUTE && agg != RP_AGG_HOUR && agg != RP_AGG_DAY)
        return rh_diag_fail(diag, RH_EINVAL, "aggregation: must be minute, hour or day");
    if (from_minute < 0)
        from_minute = 0;
    rp_stats_filter_t any = {RP_ANY, RP_ANY, RP_ANY, RP_ANY};
    if (!filter)
        filter = &any;
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, diag);
    if (rc)
        return rc;
    MDB_cursor *c = rp__reader_cursor(r, RP_DBI_STATS);
    uint8_t start[8];
    rh_put_be64(start, (uint64_t)from_minute);
    MDB_val k = {8, start}, v;
    rc = c ? mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) : MDB_BAD_TXN;
    row_t *rows = NULL;
    size_t n = 0, cap = 0;
    int64_t period = -1;
    int stopped = 0, err = RH_OK;
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != RP_KEY_STATS && k.mv_size != STATS_KEY_MAX)
            continue;
        const uint8_t *kk = k.mv_data;
        int64_t minute = (int64_t)rh_get_be64(kk);
        if (minute >= to_minute)
            break;
        uint32_t f = rh_get_be32(kk + 8), h = rh_get_be32(kk + 12);
        if (!match(filter->forwarder_net_id, f) || !match(filter->home_net_id, h) ||
            !match(filter->cls, kk[16]) || !match(filter->outcome, kk[17]))
            continue;
        int64_t p = minute - minute % (int64_t)agg;
        if (p != period) {
            if ((stopped = flush(rows, n, cb, ud)))
                break;
            n = 0;
            period = p;
        }
        Roamhub__V1__StatsBucket *b = roamhub__v1__stats_bucket__unpack(NULL, v.mv_size, v.mv_data);
        if (!b) {
            err = rh_diag_fail(diag, RH_EIO, "stats: stored bucket does not unpack");
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            row_t *nr = realloc(rows, nc * sizeof *rows);
            if (!nr) {
                roamhub__v1__stats_bucket__free_unpacked(b, NULL);
                err = rh_diag_fail(diag, RH_ENOMEM, "stats query: out of memory");
                break;
            }
            rows = nr;
            cap = nc;
        }
        row_t *w = &rows[n++];
        memset(w, 0, sizeof *w);
        w->it.minute = p;
        if (k.mv_size == STATS_KEY_MAX) {
            w->it.forwarder_kind = RP_STATS_ID_JOIN_EUI;
            w->it.forwarder_join_eui = rh_get_be64(kk + RP_KEY_STATS);
        } else {
            w->it.forwarder_net_id = f;
        }
        w->it.home_net_id = h;
        w->it.cls = (rp_class_t)kk[16];
        w->it.outcome = (rp_outcome_t)kk[17];
        memcpy(w->rc, kk + 18, RP_RESULT_MAX);
        w->it.count = b->count;
        w->it.latency_us_sum = b->latency_us_sum;
        for (size_t j = 0; j < b->n_latency_hist && j < RP_STATS_HIST; j++)
            w->it.latency_hist[j] = b->latency_hist[j];
        roamhub__v1__stats_bucket__free_unpacked(b, NULL);
    }
    if (!err && rc && rc != MDB_NOTFOUND && !stopped)
        err = rp__lmdb_err(rc, diag, "stats query");
    if (!err && !stopped)
        flush(rows, n, cb, ud);
    free(rows);
    rp__temp_reader_done(r);
    return err;
}

typedef struct prune_ctx {
    int64_t older;
    size_t removed;
} prune_ctx_t;

static int prune_fn(rp_db_t *db, MDB_txn *txn, void *ud, rh_diag_t *diag)
{
    prune_ctx_t *p = ud;
    p->removed = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db->dbi[RP_DBI_STATS], &c);
    if (rc)
        return rp__lmdb_err(rc, diag, "stats prune");
    MDB_val k, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size >= 8 && (int64_t)rh_get_be64(k.mv_data) >= p->older)
            break;
        rc = mdb_cursor_del(c, 0);
        if (rc)
            break;
        p->removed++;
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); /* deleting from the front */
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return rp__lmdb_err(rc, diag, "stats prune");
    return RH_OK;
}

int rp_stats_prune(rp_db_t *db, int64_t older_than_minute, size_t *removed, rh_diag_t *diag)
{
    prune_ctx_t p = {older_than_minute, 0};
    int rc = raw_write(db, prune_fn, &p, diag);
    if (removed)
        *removed = rc == RH_OK ? p.removed : 0;
    return rc;
}
