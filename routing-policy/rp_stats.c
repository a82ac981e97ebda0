/*
 * rp_stats.c — traffic statistics buckets (StatsBucket values) at three resolutions, keyed by
 *   time(8, big-endian: resolution << 56 | period start in Unix minutes) | forwarder NetID(4) |
 *   home NetID(4) | class(1) | outcome(1) | result code(32, NUL-padded) [| forwarder JoinEUI(8)]
 *   [| forwarder protocol(1) | home protocol(1)]
 * (a forwarder named by its JoinEUI has FFFFFFFF in the NetID slot and the EUI appended; a row
 * where either side spoke another protocol than TS002 has the two protocols appended, so rows
 * of TS002 traffic keep the original layout and rows written before the protocol was a
 * dimension read as TS002 on both sides: the key's length tells the layout, 50/52/58/60 bytes);
 * resolution 0 = minute (the original layout: existing databases read unchanged), 1 = hour,
 * 2 = day. Every rp_stats_add merges each item into its minute, hour and day bucket in the same
 * transaction, so the roll-ups are exact and a 30-day view reads 720 (hourly) or 30 (daily)
 * buckets per series instead of 43,200; minute buckets can then be pruned much earlier
 * (rp_stats_prune_res). META "stats_rollup_from" records the first minute whose data is in the
 * roll-ups (buckets written before this version are minute-only; queries read minutes for the
 * periods before it). The relay merges per-thread counters about once a second; the admin API
 * reads them page by page with rp_stats_query_page. Statistics writes are not audited.
 */
#include "rp_internal.h"

#include "rh_hex.h"
#include "rh_log.h"

#include "rh_time.h"

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

/* Key of a bucket: time · forwarder NetID · home NetID · class · outcome · result code, and for
 * a forwarder named by its JoinEUI the forwarder slot holds STATS_FWD_EUI (no NetID is wider than
 * 24 bits) and the JoinEUI follows as 8 more bytes; then, unless both sides spoke TS002, the
 * forwarder's and the home's protocol (1 byte each). NetID rows of TS002 traffic keep the
 * original layout, so existing databases need no migration. `time` is resolution << 56 | period
 * start minute. Returns the key length. */
#define STATS_FWD_EUI 0xFFFFFFFFu
#define STATS_KEY_EUI (RP_KEY_STATS + 8)
#define STATS_PROTOS 2
#define STATS_KEY_MAX (STATS_KEY_EUI + STATS_PROTOS)

static size_t stats_key(uint8_t k[STATS_KEY_MAX], uint64_t time, const rp_stats_item_t *it)
{
    bool eui = it->forwarder_kind == RP_STATS_ID_JOIN_EUI;
    rh_put_be64(k, time);
    rh_put_be32(k + 8, eui ? STATS_FWD_EUI : it->forwarder_net_id);
    rh_put_be32(k + 12, it->home_net_id);
    k[16] = (uint8_t)it->cls;
    k[17] = (uint8_t)it->outcome;
    memset(k + 18, 0, RP_RESULT_MAX);
    if (it->result_code)
        memcpy(k + 18, it->result_code, strlen(it->result_code));
    size_t len = RP_KEY_STATS;
    if (eui) {
        rh_put_be64(k + len, it->forwarder_join_eui);
        len += 8;
    }
    if (it->forwarder_protocol != RP_PROTO_TS002 || it->home_protocol != RP_PROTO_TS002) {
        k[len++] = (uint8_t)it->forwarder_protocol;
        k[len++] = (uint8_t)it->home_protocol;
    }
    return len;
}

/* Reads the identity and protocols of a key of length klen (one of the four layouts) into *it;
 * false for a length no layout has. */
static bool stats_key_parse(const uint8_t *k, size_t klen, rp_stats_item_t *it)
{
    bool eui = klen == STATS_KEY_EUI || klen == STATS_KEY_EUI + STATS_PROTOS;
    bool protos = klen == RP_KEY_STATS + STATS_PROTOS || klen == STATS_KEY_MAX;
    if (!eui && !protos && klen != RP_KEY_STATS)
        return false;
    if (eui) {
        it->forwarder_kind = RP_STATS_ID_JOIN_EUI;
        it->forwarder_join_eui = rh_get_be64(k + RP_KEY_STATS);
    } else {
        it->forwarder_kind = RP_STATS_ID_NETID;
        it->forwarder_net_id = rh_get_be32(k + 8);
    }
    it->home_net_id = rh_get_be32(k + 12);
    it->cls = (rp_class_t)k[16];
    it->outcome = (rp_outcome_t)k[17];
    it->forwarder_protocol = protos ? (rp_protocol_t)k[klen - 2] : RP_PROTO_TS002;
    it->home_protocol = protos ? (rp_protocol_t)k[klen - 1] : RP_PROTO_TS002;
    return true;
}

typedef struct add_ctx {
    const rp_stats_item_t *items;
    size_t n;
    const bool *ok; /* ok[i]: row i passed validation */
    const char *mark; /* rp_stats_add_marked: also this mark, in the same transaction */
    uint64_t mark_val;
} add_ctx_t;

#define RES_SHIFT 56
#define RES_MINUTE_MASK ((1ull << RES_SHIFT) - 1)
static const uint8_t META_ROLLUP_FROM[] = "stats_rollup_from";

/* Resolution tag of an aggregation (0 minute, 1 hour, 2 day). */
static unsigned res_of(rp_agg_t agg)
{
    return agg == RP_AGG_DAY ? 2 : agg == RP_AGG_HOUR ? 1 : 0;
}

/* Adds `it` into the bucket at `key` (read-modify-write). */
static int merge_bucket(rp_db_t *db, MDB_txn *txn, const uint8_t *key, size_t klen,
                        int64_t period, const rp_stats_item_t *it, rh_diag_t *diag)
{
    uint64_t hist[RP_STATS_HIST];
    memcpy(hist, it->latency_hist, sizeof hist);
    uint64_t count = it->count, sum = it->latency_us_sum;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_get(txn, db->dbi[RP_DBI_STATS], &k, &v);
    if (rc == 0) {
        Roamhub__V1__StatsBucket *o = roamhub__v1__stats_bucket__unpack(NULL, v.mv_size, v.mv_data);
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
    b.minute = period;
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
    return rc ? rp__lmdb_err(rc, diag, "stats: mdb_put") : RH_OK;
}

/* First write of this version into a database: remember from which minute on the roll-ups are
 * complete (after the newest minute bucket already stored; 0 for an empty database). */
static int rollup_mark(rp_db_t *db, MDB_txn *txn, rh_diag_t *diag)
{
    MDB_val k = {sizeof META_ROLLUP_FROM - 1, (void *)META_ROLLUP_FROM}, v;
    int rc = mdb_get(txn, db->dbi[RP_DBI_META], &k, &v);
    if (rc == 0)
        return RH_OK;
    if (rc != MDB_NOTFOUND)
        return rp__lmdb_err(rc, diag, "stats: meta");
    uint64_t from = 0;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, db->dbi[RP_DBI_STATS], &c)))
        return rp__lmdb_err(rc, diag, "stats: cursor");
    uint8_t hi[8];
    rh_put_be64(hi, 1ull << RES_SHIFT); /* first key after every minute bucket */
    MDB_val ck = {8, hi}, cv;
    rc = mdb_cursor_get(c, &ck, &cv, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(c, &ck, &cv, MDB_PREV) : mdb_cursor_get(c, &ck, &cv, MDB_LAST);
    if (rc == 0 && ck.mv_size >= 8 && (rh_get_be64(ck.mv_data) >> RES_SHIFT) == 0)
        from = rh_get_be64(ck.mv_data) + 1;
    mdb_cursor_close(c);
    uint8_t val[8];
    rh_put_be64(val, from);
    MDB_val vv = {8, val};
    rc = mdb_put(txn, db->dbi[RP_DBI_META], &k, &vv, 0);
    return rc ? rp__lmdb_err(rc, diag, "stats: meta") : RH_OK;
}

static int add_fn(rp_db_t *db, MDB_txn *txn, void *ud, rh_diag_t *diag)
{
    add_ctx_t *a = ud;
    int rc = rollup_mark(db, txn, diag);
    if (rc == RH_OK && a->mark)
        rc = rp__put_mark(db, txn, a->mark, a->mark_val, diag);
    if (rc)
        return rc;
    static const rp_agg_t res[3] = {RP_AGG_MINUTE, RP_AGG_HOUR, RP_AGG_DAY};
    for (size_t i = 0; i < a->n; i++) {
        const rp_stats_item_t *it = &a->items[i];
        if (!a->ok[i])
            continue; /* invalid row: skipped (rp_stats_add counted it) */
        for (unsigned r = 0; r < 3; r++) {
            int64_t p = it->minute - it->minute % (int64_t)res[r];
            uint8_t key[STATS_KEY_MAX];
            size_t klen = stats_key(key, (uint64_t)p | (uint64_t)r << RES_SHIFT, it);
            if ((rc = merge_bucket(db, txn, key, klen, p, it, diag)))
                return rc;
        }
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
    if ((unsigned)it->forwarder_protocol >= RP_PROTO_COUNT)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].forwarder_protocol: %d out of range", i,
                            (int)it->forwarder_protocol);
    if ((unsigned)it->home_protocol >= RP_PROTO_COUNT)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].home_protocol: %d out of range", i,
                            (int)it->home_protocol);
    if ((it->forwarder_kind == RP_STATS_ID_NETID && it->forwarder_net_id > 0xFFFFFF) ||
        it->home_net_id > 0xFFFFFF)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu]: NetID wider than 24 bits", i);
    if (it->minute < 0 || (uint64_t)it->minute > RES_MINUTE_MASK)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].minute: negative or too large", i);
    if (it->result_code && strlen(it->result_code) > RP_RESULT_MAX)
        return rh_diag_fail(diag, RH_EINVAL, "stats[%zu].result_code: %zu characters, at most %d",
                            i, strlen(it->result_code), RP_RESULT_MAX);
    return RH_OK;
}

int rp_stats_add_marked(rp_db_t *db, const rp_stats_item_t *items, size_t n, const char *mark,
                        uint64_t mark_val, rh_diag_t *diag)
{
    if (!db || (n && !items))
        return rh_diag_fail(diag, RH_EINVAL, "rp_stats_add: db and items are required");
    if (mark && !rp__mark_name_ok(mark))
        return rh_diag_fail(diag, RH_EINVAL, "mark name: 1..%d characters [a-z0-9_-]",
                            RP_MARK_NAME_MAX);
    if (n == 0 && !mark)
        return RH_OK;
    /* Validate every row first; bad rows are skipped and counted, never allowed to hold back the
     * rest of the batch (a refused batch used to be re-queued and refused again forever). */
    bool *ok = malloc((n ? n : 1) * sizeof *ok);
    if (!ok)
        return rh_diag_fail(diag, RH_ENOMEM, "stats: out of memory");
    size_t bad = 0;
    rh_diag_t first = {""};
    for (size_t i = 0; i < n; i++) {
        ok[i] = check_row(&items[i], i, bad ? NULL : &first) == RH_OK;
        bad += !ok[i];
    }
    int rc = RH_OK;
    if (bad < n || mark) {
        add_ctx_t a = {items, n, ok, mark, mark_val};
        rc = raw_write(db, add_fn, &a, diag);
    }
    free(ok);
    if (rc == RH_OK && bad)
        rc = rh_diag_fail(diag, RH_EINVAL, "%zu of %zu statistics rows skipped: %s", bad, n,
                          first.text);
    return rc;
}

int rp_stats_add(rp_db_t *db, const rp_stats_item_t *items, size_t n, rh_diag_t *diag)
{
    return rp_stats_add_marked(db, items, n, NULL, 0, diag);
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
    if (x->forwarder_protocol != y->forwarder_protocol)
        return x->forwarder_protocol < y->forwarder_protocol ? -1 : 1;
    if (x->home_protocol != y->home_protocol)
        return x->home_protocol < y->home_protocol ? -1 : 1;
    if (x->cls != y->cls)
        return x->cls < y->cls ? -1 : 1;
    if (x->outcome != y->outcome)
        return x->outcome < y->outcome ? -1 : 1;
    return strcmp(((const row_t *)a)->rc, ((const row_t *)b)->rc);
}

static int match(uint32_t f, uint32_t v)
{
    return f == RP_ANY || f == v;
}

/* A protocol set of rp_stats_filter_t (0 = any) holds p. */
static int match_set(unsigned set, rp_protocol_t p)
{
    return set == 0 || (set >> p & 1u);
}

/* Rows of one period kept in memory before they are sorted and merged in place. */
#define COMPACT_AT 65536
/* Distinct (forwarder, home, protocols, class, outcome, ResultCode) series one period may hold:
 * bounds a query's memory (~290 bytes per series). */
#define PERIOD_SERIES_MAX 131072

/* Page token: hex of period(8) f(4) h(4) class(1) outcome(1) result(32) flag(1) query hash(4)
 * version(1) forwarder kind(1) forwarder JoinEUI(8) forwarder protocol(1) home protocol(1).
 * flag 0: resume after that row of the period; 1: resume at the period's start. Version 1
 * tokens (65 bytes, written before the protocols were a dimension) are still accepted: their
 * row's protocols are TS002, as every row stored then reads (rows in the original key layout). */
#define TOK_BYTES_V1 65
#define TOK_BYTES 67

typedef struct qstate {
    rp_stats_cb cb;
    void *ud;
    rp_stats_page_t *pg;
    const rp_stats_filter_t *f;
    int64_t len;                 /* period length, minutes */
    uint32_t qhash;
    row_t *rows;
    size_t n, cap;
    int64_t period;              /* period being accumulated, -1 none */
    int has_after;               /* resume after `after` in period after_period */
    int64_t after_period;
    row_t after;
    row_t last;                  /* last row delivered */
    int done;
    int err;
    rh_diag_t *diag;
} qstate_t;

static uint32_t fnv1a(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 16777619u;
    return h;
}

static void token_make(qstate_t *q, int64_t period, const row_t *after)
{
    uint8_t t[TOK_BYTES] = {0};
    rh_put_be64(t, (uint64_t)period);
    if (after) {
        rh_put_be32(t + 8, after->it.forwarder_net_id);
        rh_put_be32(t + 12, after->it.home_net_id);
        t[16] = (uint8_t)after->it.cls;
        t[17] = (uint8_t)after->it.outcome;
        memcpy(t + 18, after->rc, strlen(after->rc));
        t[56] = (uint8_t)after->it.forwarder_kind;
        rh_put_be64(t + 57, after->it.forwarder_join_eui);
        t[65] = (uint8_t)after->it.forwarder_protocol;
        t[66] = (uint8_t)after->it.home_protocol;
    }
    t[50] = after ? 0 : 1;
    rh_put_be32(t + 51, q->qhash);
    t[55] = 2;
    rh_hex_encode(t, TOK_BYTES, q->pg->next, 0);
    q->done = 1;
}

static int token_parse(qstate_t *q, const char *tok, int64_t from_p, int64_t to_p,
                       int64_t *start)
{
    uint8_t t[TOK_BYTES] = {0};
    size_t n = 0, hl = strlen(tok);
    if ((hl != 2 * TOK_BYTES && hl != 2 * TOK_BYTES_V1) ||
        rh_hex_decode(tok, hl, t, sizeof t, &n, "page_token", NULL) != RH_OK ||
        n != hl / 2 || t[55] != (n == TOK_BYTES ? 2 : 1) || t[50] > 1 ||
        t[56] > RP_STATS_ID_JOIN_EUI || t[65] >= RP_PROTO_COUNT || t[66] >= RP_PROTO_COUNT)
        return rh_diag_fail(q->diag, RH_EINVAL, "page_token: malformed");
    if (rh_get_be32(t + 51) != q->qhash)
        return rh_diag_fail(q->diag, RH_EINVAL,
                            "page_token: belongs to another query (from, to, by and filters "
                            "must stay the same while paging)");
    int64_t p = (int64_t)rh_get_be64(t);
    if (p < from_p || p >= to_p || p % q->len)
        return rh_diag_fail(q->diag, RH_EINVAL, "page_token: outside the query's range");
    *start = p;
    if (t[50] == 0) {
        q->has_after = 1;
        q->after_period = p;
        memset(&q->after, 0, sizeof q->after);
        q->after.it.forwarder_net_id = rh_get_be32(t + 8);
        q->after.it.home_net_id = rh_get_be32(t + 12);
        q->after.it.cls = (rp_class_t)t[16];
        q->after.it.outcome = (rp_outcome_t)t[17];
        memcpy(q->after.rc, t + 18, RP_RESULT_MAX);
        q->after.rc[RP_RESULT_MAX] = '\0';
        q->after.it.forwarder_kind = (rp_stats_id_kind_t)t[56];
        q->after.it.forwarder_join_eui = rh_get_be64(t + 57);
        q->after.it.forwarder_protocol = (rp_protocol_t)t[65];
        q->after.it.home_protocol = (rp_protocol_t)t[66];
    }
    return RH_OK;
}

/* Sorts the period's rows and merges equal series in place. */
static void compact(qstate_t *q)
{
    if (q->n < 2)
        return;
    qsort(q->rows, q->n, sizeof *q->rows, row_cmp);
    size_t k = 0;
    for (size_t i = 1; i < q->n; i++) {
        row_t *acc = &q->rows[k], *r = &q->rows[i];
        if (row_cmp(acc, r) == 0) {
            acc->it.count += r->it.count;
            acc->it.latency_us_sum += r->it.latency_us_sum;
            for (int h = 0; h < RP_STATS_HIST; h++)
                acc->it.latency_hist[h] += r->it.latency_hist[h];
        } else if (++k != i) {
            q->rows[k] = *r;
        }
    }
    q->n = k + 1;
}

/* Delivers the merged rows of the current period (after the resume point), within max_rows. */
static void flush_period(qstate_t *q)
{
    compact(q);
    for (size_t i = 0; i < q->n && !q->done; i++) {
        row_t *r = &q->rows[i];
        if (q->has_after && q->period == q->after_period && row_cmp(r, &q->after) <= 0)
            continue;
        if (q->pg->max_rows && q->pg->rows >= q->pg->max_rows) {
            token_make(q, q->period, &q->last);
            break;
        }
        r->it.result_code = r->rc[0] ? r->rc : NULL;
        q->pg->rows++;
        q->last = *r;
        if (q->cb(q->ud, &r->it)) {
            q->done = 1; /* the caller stopped: no continuation */
            q->pg->next[0] = '\0';
        }
    }
    q->n = 0;
}

static int over_budget(const qstate_t *q)
{
    const rp_stats_page_t *pg = q->pg;
    if (pg->max_rows && pg->rows >= pg->max_rows)
        return 1;
    if (pg->max_scan && pg->scanned >= pg->max_scan)
        return 1;
    return pg->deadline_ns && rh_mono_ns() >= pg->deadline_ns;
}

static int add_row(qstate_t *q, int64_t p, const uint8_t *kk, size_t klen, const MDB_val *v)
{
    if (q->n == q->cap) {
        if (q->cap >= COMPACT_AT) {
            compact(q);
            if (q->n > PERIOD_SERIES_MAX)
                return rh_diag_fail(q->diag, RH_ERANGE,
                                    "stats: more than %d series in one period; filter by "
                                    "forwarder or home", PERIOD_SERIES_MAX);
        }
        if (q->n == q->cap) {
            size_t nc = q->cap ? q->cap * 2 : 64;
            row_t *nr = realloc(q->rows, nc * sizeof *nr);
            if (!nr)
                return rh_diag_fail(q->diag, RH_ENOMEM, "stats query: out of memory");
            q->rows = nr;
            q->cap = nc;
        }
    }
    Roamhub__V1__StatsBucket *b = roamhub__v1__stats_bucket__unpack(NULL, v->mv_size, v->mv_data);
    if (!b)
        return rh_diag_fail(q->diag, RH_EIO, "stats: stored bucket does not unpack");
    row_t *w = &q->rows[q->n++];
    memset(w, 0, sizeof *w);
    w->it.minute = p;
    stats_key_parse(kk, klen, &w->it); /* walk() passed only keys of a known layout */
    memcpy(w->rc, kk + 18, RP_RESULT_MAX);
    w->it.count = b->count;
    w->it.latency_us_sum = b->latency_us_sum;
    for (size_t j = 0; j < b->n_latency_hist && j < RP_STATS_HIST; j++)
        w->it.latency_hist[j] = b->latency_hist[j];
    roamhub__v1__stats_bucket__free_unpacked(b, NULL);
    return RH_OK;
}

/* Walks the buckets of resolution `res` with period start in [start, end), grouping them into
 * periods of q->len minutes. */
static int walk(qstate_t *q, MDB_cursor *c, unsigned res, int64_t start, int64_t end)
{
    uint8_t sk[8];
    rh_put_be64(sk, (uint64_t)start | (uint64_t)res << RES_SHIFT);
    MDB_val k = {8, sk}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    const rp_stats_filter_t *f = q->f;
    for (; rc == 0 && !q->done; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        rp_stats_item_t ki;
        if (!stats_key_parse(k.mv_data, k.mv_size, &ki))
            continue;
        const uint8_t *kk = k.mv_data;
        uint64_t t = rh_get_be64(kk);
        if ((t >> RES_SHIFT) != res || (int64_t)(t & RES_MINUTE_MASK) >= end)
            break;
        int64_t minute = (int64_t)(t & RES_MINUTE_MASK);
        int64_t p = minute - minute % q->len;
        q->pg->scanned++;
        if (p != q->period) {
            if (q->period >= 0)
                flush_period(q);
            if (q->done)
                break;
            if (q->period >= 0 && over_budget(q)) {
                token_make(q, p, NULL);
                break;
            }
            q->period = p;
        }
        uint32_t fw = rh_get_be32(kk + 8), hm = rh_get_be32(kk + 12);
        if (!match(f->forwarder_net_id, fw) || !match(f->home_net_id, hm) ||
            !match(f->cls, kk[16]) || !match(f->outcome, kk[17]) ||
            (f->has_party && f->party_net_id != fw && f->party_net_id != hm) ||
            !match_set(f->forwarder_protocols, ki.forwarder_protocol) ||
            !match_set(f->home_protocols, ki.home_protocol) ||
            (f->either_protocols && !match_set(f->either_protocols, ki.forwarder_protocol) &&
             !match_set(f->either_protocols, ki.home_protocol)))
            continue;
        if ((rc = add_row(q, p, kk, k.mv_size, &v)) != RH_OK)
            return rc;
    }
    if (rc && rc != MDB_NOTFOUND && !q->done)
        return rp__lmdb_err(rc, q->diag, "stats query");
    return RH_OK;
}

static int64_t read_rollup_from(rp_reader_t *r)
{
    MDB_txn *txn = rp__reader_txn(r);
    MDB_val k = {sizeof META_ROLLUP_FROM - 1, (void *)META_ROLLUP_FROM}, v;
    if (!txn || mdb_get(txn, r->db->dbi[RP_DBI_META], &k, &v) || v.mv_size != 8)
        return INT64_MAX; /* nothing written by this version yet: minutes only */
    return (int64_t)rh_get_be64(v.mv_data);
}

int rp_stats_query_page(rp_db_t *db, int64_t from_minute, int64_t to_minute,
                        const rp_stats_filter_t *filter, rp_agg_t agg, rp_stats_page_t *page,
                        rp_stats_cb cb, void *ud, rh_diag_t *diag)
{
    if (!db || !cb || !page)
        return rh_diag_fail(diag, RH_EINVAL, "rp_stats_query: db, page and callback are required");
    if (agg != RP_AGG_MINUTE && agg != RP_AGG_HOUR && agg != RP_AGG_DAY)
        return rh_diag_fail(diag, RH_EINVAL, "aggregation: must be minute, hour or day");
    page->scanned = page->rows = 0;
    page->next[0] = '\0';
    rp_stats_filter_t any = {RP_ANY, RP_ANY, RP_ANY, RP_ANY, false, 0, 0, 0, 0};
    if (!filter)
        filter = &any;
    int64_t len = (int64_t)agg;
    if (from_minute < 0)
        from_minute = 0;
    if ((uint64_t)to_minute > RES_MINUTE_MASK - (uint64_t)len)
        to_minute = (int64_t)(RES_MINUTE_MASK - (uint64_t)len);
    int64_t from_p = from_minute - from_minute % len;
    int64_t to_p = (to_minute + len - 1) / len * len;
    qstate_t q = {.cb = cb, .ud = ud, .pg = page, .f = filter, .len = len, .period = -1,
                  .diag = diag};
    uint32_t h = 2166136261u;
    int64_t qv[3] = {from_p, to_p, len};
    h = fnv1a(h, qv, sizeof qv);
    uint32_t fv[6] = {filter->forwarder_net_id, filter->home_net_id, filter->cls,
                      filter->outcome, filter->has_party, filter->party_net_id};
    h = fnv1a(h, fv, sizeof fv);
    /* the protocol sets only when set: a query without them hashes as before they existed, so
     * its tokens handed out by an older version still continue it */
    uint32_t pv[3] = {filter->forwarder_protocols, filter->home_protocols,
                      filter->either_protocols};
    if (pv[0] || pv[1] || pv[2])
        h = fnv1a(h, pv, sizeof pv);
    q.qhash = h;
    if (to_p <= from_p)
        return RH_OK;
    int64_t start = from_p;
    int rc;
    if (page->page_token && page->page_token[0] &&
        (rc = token_parse(&q, page->page_token, from_p, to_p, &start)) != RH_OK)
        return rc;
    rp_reader_t *r;
    if ((rc = rp__temp_reader(db, &r, diag)))
        return rc;
    MDB_cursor *c = rp__reader_cursor(r, RP_DBI_STATS);
    if (!c) {
        rp__temp_reader_done(r);
        return rh_diag_fail(diag, RH_EIO, "stats query: no cursor");
    }
    /* Periods that started before the roll-ups did are summed from minute buckets. */
    int64_t rollup = len == 1 ? INT64_MAX : read_rollup_from(r);
    int64_t first_rolled = rollup == INT64_MAX ? INT64_MAX : (rollup + len - 1) / len * len;
    if (start < first_rolled)
        rc = walk(&q, c, 0, start, to_p < first_rolled ? to_p : first_rolled);
    if (rc == RH_OK && !q.done && first_rolled < to_p) {
        int64_t s2 = start > first_rolled ? start : first_rolled;
        rc = walk(&q, c, res_of(agg), s2, to_p);
    }
    if (rc == RH_OK && !q.done && q.period >= 0)
        flush_period(&q);
    free(q.rows);
    rp__temp_reader_done(r);
    if (rc)
        page->next[0] = '\0';
    return rc;
}

int rp_stats_query(rp_db_t *db, int64_t from_minute, int64_t to_minute,
                   const rp_stats_filter_t *filter, rp_agg_t agg, rp_stats_cb cb, void *ud,
                   rh_diag_t *diag)
{
    rp_stats_page_t pg = {0};
    return rp_stats_query_page(db, from_minute, to_minute, filter, agg, &pg, cb, ud, diag);
}

/* ---- retention ----------------------------------------------------------------------------- */

typedef struct prune_ctx {
    unsigned res;
    int64_t older;
    size_t max, removed;
} prune_ctx_t;

static int prune_fn(rp_db_t *db, MDB_txn *txn, void *ud, rh_diag_t *diag)
{
    prune_ctx_t *p = ud;
    p->removed = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db->dbi[RP_DBI_STATS], &c);
    if (rc)
        return rp__lmdb_err(rc, diag, "stats prune");
    uint8_t sk[8];
    rh_put_be64(sk, (uint64_t)p->res << RES_SHIFT);
    uint64_t stop = (uint64_t)p->res << RES_SHIFT | (uint64_t)p->older;
    MDB_val k = {8, sk}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && (!p->max || p->removed < p->max)) {
        if (k.mv_size >= 8 && rh_get_be64(k.mv_data) >= stop)
            break;
        if ((rc = mdb_cursor_del(c, 0)))
            break;
        p->removed++;
        k.mv_size = 8; /* deleting from the front of the range: seek again */
        k.mv_data = sk;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return rp__lmdb_err(rc, diag, "stats prune");
    return RH_OK;
}

int rp_stats_prune_res(rp_db_t *db, rp_agg_t res, int64_t older_than_minute, size_t max_remove,
                       size_t *removed, rh_diag_t *diag)
{
    if (removed)
        *removed = 0;
    if (!db || (res != RP_AGG_MINUTE && res != RP_AGG_HOUR && res != RP_AGG_DAY))
        return rh_diag_fail(diag, RH_EINVAL, "stats prune: db and a resolution are required");
    if (older_than_minute <= 0)
        return RH_OK;
    if ((uint64_t)older_than_minute > RES_MINUTE_MASK)
        older_than_minute = (int64_t)RES_MINUTE_MASK;
    prune_ctx_t p = {res_of(res), older_than_minute, max_remove, 0};
    int rc = raw_write(db, prune_fn, &p, diag);
    if (removed)
        *removed = rc == RH_OK ? p.removed : 0;
    return rc;
}

int rp_stats_prune(rp_db_t *db, int64_t older_than_minute, size_t *removed, rh_diag_t *diag)
{
    static const rp_agg_t res[3] = {RP_AGG_MINUTE, RP_AGG_HOUR, RP_AGG_DAY};
    size_t total = 0;
    for (unsigned i = 0; i < 3; i++) {
        size_t n = 0;
        int rc = rp_stats_prune_res(db, res[i], older_than_minute, 0, &n, diag);
        if (rc) {
            if (removed)
                *removed = total;
            return rc;
        }
        total += n;
    }
    if (removed)
        *removed = total;
    return RH_OK;
}
