/*
 * test_rp_stats.c — statistics roll-ups and paged queries (issue 18 item 3):
 *   - minute -> hour -> day: the hour and day roll-ups written by rp_stats_add hold exactly the
 *     sums of their minute buckets (counts, latency sums, histograms), so queries at every
 *     resolution give the same totals, also after the minute buckets were pruned;
 *   - paging: following page tokens (by rows, by scan budget, mixed) delivers exactly the rows of
 *     the unpaged query, in the same order, each once; no silent cap; tokens of another query or
 *     malformed tokens are refused;
 *   - a database written by the version before roll-ups (minute buckets only, no META mark):
 *     periods before the roll-ups started are summed from minutes, later ones from roll-ups, and
 *     the totals are exact across the boundary;
 *   - the member ("party") filter and bounded pruning;
 *   - the protocols as a dimension (issue 12): rows differing only in the forwarder's or the home
 *     network's protocol stay separate at every resolution and page like the others, the
 *     protocol filters, rows and page tokens written before the protocols existed (the original
 *     key layout, version-1 tokens) read as TS002.
 */
#include "rp_fixture.h"

#include "rh_err.h"
#include "rh_hex.h"
#include "rp_internal.h" /* writes minute buckets the way the version before roll-ups did */

typedef struct rows {
    rp_stats_item_t *v;
    char (*rc)[RP_RESULT_MAX + 1];
    size_t n, cap;
    size_t stop_after; /* callback returns 1 after this many rows (0 = never) */
} rows_t;

static int collect(void *ud, const rp_stats_item_t *it)
{
    rows_t *r = ud;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        r->rc = realloc(r->rc, r->cap * sizeof *r->rc);
        assert_non_null(r->v);
        assert_non_null(r->rc);
    }
    r->v[r->n] = *it;
    snprintf(r->rc[r->n], sizeof r->rc[r->n], "%s", it->result_code ? it->result_code : "");
    r->v[r->n].result_code = NULL;
    r->n++;
    return r->stop_after && r->n >= r->stop_after;
}

static void rows_free(rows_t *r)
{
    free(r->v);
    free(r->rc);
    memset(r, 0, sizeof *r);
}

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char *const codes[] = {NULL, "UnknownDevAddr", "MICFailed"};
#define T0 (29000000 - 29000000 % 1440) /* a day boundary (Unix minutes, 2025) */

/* Random traffic over `days` days: a few series per minute, in batches like the relay's flush. */
static void fill(rp_db_t *db, int days, int pairs, size_t *n_items)
{
    rh_diag_t d;
    rp_stats_item_t batch[64];
    size_t nb = 0, total = 0;
    for (int m = 0; m < days * 1440; m += 1 + (int)(rnd() % 7)) {
        int k = 1 + (int)(rnd() % 3);
        for (int j = 0; j < k; j++) {
            rp_stats_item_t *it = &batch[nb++];
            memset(it, 0, sizeof *it);
            it->minute = T0 + m;
            it->forwarder_net_id = 0x10 + (uint32_t)(rnd() % (unsigned)pairs);
            it->home_net_id = 0x500 + (uint32_t)(rnd() % 2);
            it->cls = (rp_class_t)(rnd() % 3);
            it->outcome = rnd() % 4 ? RP_OUT_FORWARDED : RP_OUT_RECEIVER_ERROR;
            it->result_code = it->outcome == RP_OUT_RECEIVER_ERROR ? codes[1 + rnd() % 2] : NULL;
            it->count = 1 + rnd() % 50;
            unsigned pr = (unsigned)(rnd() % 8); /* mostly TS002 on both sides, some bridged */
            it->forwarder_protocol = pr == 1 || pr == 3 ? RP_PROTO_PACKET_BROKER : RP_PROTO_TS002;
            it->home_protocol = pr == 2 || pr == 3 ? RP_PROTO_PACKET_BROKER : RP_PROTO_TS002;
            for (uint64_t c = 0; c < it->count; c++) {
                uint64_t us = 100 + rnd() % 100000;
                it->latency_us_sum += us;
                it->latency_hist[rp_stats_hist_index(us)]++;
            }
            if (nb == 64) {
                assert_int_equal(rp_stats_add(db, batch, nb, &d), RH_OK);
                total += nb;
                nb = 0;
            }
        }
    }
    if (nb)
        assert_int_equal(rp_stats_add(db, batch, nb, &d), RH_OK);
    *n_items = total + nb;
}

static int same_series(const rows_t *a, size_t i, const rows_t *b, size_t j)
{
    const rp_stats_item_t *x = &a->v[i], *y = &b->v[j];
    return x->forwarder_net_id == y->forwarder_net_id && x->home_net_id == y->home_net_id &&
           x->forwarder_protocol == y->forwarder_protocol &&
           x->home_protocol == y->home_protocol && x->cls == y->cls && x->outcome == y->outcome &&
           !strcmp(a->rc[i], b->rc[j]);
}

/* Sums the rows of `fine` into periods of `len` and compares with `coarse` row by row. */
static void assert_rollup_equal(const rows_t *fine, const rows_t *coarse, int64_t len)
{
    size_t matched = 0;
    for (size_t j = 0; j < coarse->n; j++) {
        const rp_stats_item_t *c = &coarse->v[j];
        assert_int_equal(c->minute % len, 0);
        uint64_t count = 0, sum = 0, hist[RP_STATS_HIST] = {0};
        for (size_t i = 0; i < fine->n; i++) {
            const rp_stats_item_t *f = &fine->v[i];
            if (f->minute - f->minute % len != c->minute || !same_series(fine, i, coarse, j))
                continue;
            count += f->count;
            sum += f->latency_us_sum;
            for (int h = 0; h < RP_STATS_HIST; h++)
                hist[h] += f->latency_hist[h];
            matched++;
        }
        assert_true(count > 0);
        assert_int_equal(c->count, count);
        assert_int_equal(c->latency_us_sum, sum);
        assert_memory_equal(c->latency_hist, hist, sizeof hist);
    }
    assert_int_equal(matched, fine->n); /* every fine row belongs to one coarse row */
}

static uint64_t total_count(const rows_t *r)
{
    uint64_t t = 0;
    for (size_t i = 0; i < r->n; i++)
        t += r->v[i].count;
    return t;
}

static void test_rollups_match_minutes(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    size_t n;
    fill(f->db, 3, 4, &n);
    rows_t mi = {0}, ho = {0}, da = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 3 * 1440, NULL, RP_AGG_MINUTE, collect, &mi, &d), RH_OK);
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 3 * 1440, NULL, RP_AGG_HOUR, collect, &ho, &d), RH_OK);
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 3 * 1440, NULL, RP_AGG_DAY, collect, &da, &d), RH_OK);
    assert_true(mi.n > 1000);
    assert_true(ho.n < mi.n && da.n < ho.n);
    assert_rollup_equal(&mi, &ho, 60);
    assert_rollup_equal(&mi, &da, 1440);
    assert_rollup_equal(&ho, &da, 1440);
    uint64_t total = total_count(&mi);
    assert_int_equal(total_count(&ho), total);
    assert_int_equal(total_count(&da), total);

    /* A range that does not start on a period boundary covers the whole periods it touches. */
    rows_t part = {0};
    assert_int_equal(rp_stats_query(f->db, T0 + 30, T0 + 90, NULL, RP_AGG_HOUR, collect, &part, &d), RH_OK);
    for (size_t i = 0; i < part.n; i++)
        assert_true(part.v[i].minute == T0 || part.v[i].minute == T0 + 60);

    /* The minute buckets age out; hour and day views keep the same totals. */
    size_t removed = 0, step;
    do {
        assert_int_equal(rp_stats_prune_res(f->db, RP_AGG_MINUTE, T0 + 3 * 1440, 500, &step, &d), RH_OK);
        assert_true(step <= 500);
        removed += step;
    } while (step == 500);
    assert_int_equal(removed, mi.n);
    rows_t mi2 = {0}, ho2 = {0}, da2 = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 3 * 1440, NULL, RP_AGG_MINUTE, collect, &mi2, &d), RH_OK);
    assert_int_equal(mi2.n, 0);
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 3 * 1440, NULL, RP_AGG_HOUR, collect, &ho2, &d), RH_OK);
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 3 * 1440, NULL, RP_AGG_DAY, collect, &da2, &d), RH_OK);
    assert_int_equal(ho2.n, ho.n);
    assert_int_equal(total_count(&ho2), total);
    assert_rollup_equal(&ho2, &da2, 1440);
    rows_free(&mi);
    rows_free(&ho);
    rows_free(&da);
    rows_free(&part);
    rows_free(&mi2);
    rows_free(&ho2);
    rows_free(&da2);
}

/* Follows page tokens to the end; returns the concatenated rows and the number of pages. */
static size_t follow(rp_db_t *db, rp_agg_t agg, const rp_stats_filter_t *flt, size_t max_rows,
                     size_t max_scan, rows_t *out)
{
    rh_diag_t d;
    char tok[RP_STATS_TOKEN_MAX] = "";
    size_t pages = 0;
    do {
        rp_stats_page_t pg = {.page_token = tok, .max_rows = max_rows, .max_scan = max_scan};
        size_t before = out->n;
        assert_int_equal(rp_stats_query_page(db, T0, T0 + 2 * 1440, flt, agg, &pg, collect, out, &d),
                         RH_OK);
        assert_int_equal(out->n - before, pg.rows);
        if (max_rows)
            assert_true(pg.rows <= max_rows);
        if (max_scan && pg.next[0])
            assert_true(pg.scanned > 0);
        snprintf(tok, sizeof tok, "%s", pg.next);
        pages++;
        assert_true(pages < 100000);
    } while (tok[0]);
    return pages;
}

static void assert_rows_equal(const rows_t *a, const rows_t *b)
{
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(a->v[i].minute, b->v[i].minute);
        assert_true(same_series(a, i, b, i));
        assert_int_equal(a->v[i].count, b->v[i].count);
        assert_int_equal(a->v[i].latency_us_sum, b->v[i].latency_us_sum);
    }
}

static void test_pages_cover_everything_once(void **state)
{
    fx_t *f = *state;
    size_t n;
    fill(f->db, 2, 6, &n);
    static const rp_agg_t aggs[3] = {RP_AGG_MINUTE, RP_AGG_HOUR, RP_AGG_DAY};
    static const size_t sizes[][2] = {{1, 0}, {7, 0}, {1000, 0}, {0, 1}, {0, 50}, {5, 20}, {3, 1}};
    for (unsigned a = 0; a < 3; a++) {
        rows_t all = {0};
        rh_diag_t d;
        assert_int_equal(rp_stats_query(f->db, T0, T0 + 2 * 1440, NULL, aggs[a], collect, &all, &d),
                         RH_OK);
        assert_true(all.n > 0);
        for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            if (aggs[a] == RP_AGG_MINUTE && sizes[s][0] == 1)
                continue; /* thousands of pages: covered by the other sizes */
            rows_t got = {0};
            size_t pages = follow(f->db, aggs[a], NULL, sizes[s][0], sizes[s][1], &got);
            assert_rows_equal(&all, &got);
            if (sizes[s][0] && all.n > sizes[s][0])
                assert_true(pages >= (all.n + sizes[s][0] - 1) / sizes[s][0]);
            rows_free(&got);
        }
        rows_free(&all);
    }
}

static void test_page_tokens_refused(void **state)
{
    fx_t *f = *state;
    size_t n;
    fill(f->db, 1, 3, &n);
    rh_diag_t d;
    rows_t got = {0};
    rp_stats_page_t pg = {.max_rows = 2};
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 2 * 1440, NULL, RP_AGG_HOUR, &pg, collect,
                                         &got, &d), RH_OK);
    assert_int_equal(got.n, 2);
    assert_true(pg.next[0] != '\0');
    char tok[RP_STATS_TOKEN_MAX];
    snprintf(tok, sizeof tok, "%s", pg.next);
    /* another aggregation, another range, another filter: refused, naming the token */
    rp_stats_page_t p2 = {.page_token = tok};
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 2 * 1440, NULL, RP_AGG_DAY, &p2, collect,
                                         &got, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "page_token"));
    assert_int_equal(rp_stats_query_page(f->db, T0 + 60, T0 + 2 * 1440, NULL, RP_AGG_HOUR, &p2,
                                         collect, &got, &d), RH_EINVAL);
    rp_stats_filter_t flt = {RP_ANY, 0x500, RP_ANY, RP_ANY, false, 0, 0, 0, 0};
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 2 * 1440, &flt, RP_AGG_HOUR, &p2, collect,
                                         &got, &d), RH_EINVAL);
    p2.page_token = "zz";
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 2 * 1440, NULL, RP_AGG_HOUR, &p2, collect,
                                         &got, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "page_token: malformed"));
    tok[0] = tok[0] == '0' ? '1' : '0'; /* another period: outside range or hash differs */
    p2.page_token = tok;
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 2 * 1440, NULL, RP_AGG_HOUR, &p2, collect,
                                         &got, &d), RH_EINVAL);
    /* a callback that stops gets no continuation */
    rows_t stop = {.stop_after = 3};
    rp_stats_page_t p3 = {0};
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 2 * 1440, NULL, RP_AGG_MINUTE, &p3, collect,
                                         &stop, &d), RH_OK);
    assert_int_equal(stop.n, 3);
    assert_string_equal(p3.next, "");
    rows_free(&got);
    rows_free(&stop);
}

static void test_party_filter(void **state)
{
    fx_t *f = *state;
    size_t n;
    fill(f->db, 1, 5, &n);
    rh_diag_t d;
    rows_t all = {0}, mine = {0}, paged = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 1440, NULL, RP_AGG_HOUR, collect, &all, &d), RH_OK);
    rp_stats_filter_t flt = {RP_ANY, RP_ANY, RP_ANY, RP_ANY, true, 0x11, 0, 0, 0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 1440, &flt, RP_AGG_HOUR, collect, &mine, &d), RH_OK);
    size_t expect = 0;
    for (size_t i = 0; i < all.n; i++)
        expect += all.v[i].forwarder_net_id == 0x11 || all.v[i].home_net_id == 0x11;
    assert_true(expect > 0 && expect < all.n);
    assert_int_equal(mine.n, expect);
    for (size_t i = 0; i < mine.n; i++)
        assert_int_equal(mine.v[i].forwarder_net_id, 0x11);
    flt.party_net_id = 0x500; /* a home NetID */
    follow(f->db, RP_AGG_HOUR, &flt, 4, 0, &paged);
    for (size_t i = 0; i < paged.n; i++)
        assert_int_equal(paged.v[i].home_net_id, 0x500);
    assert_true(paged.n > 0);
    rows_free(&all);
    rows_free(&mine);
    rows_free(&paged);
}

/* One minute bucket in the original (pre-roll-up) layout, written straight into LMDB. */
static void legacy_put(rp_db_t *db, int64_t minute, uint32_t f, uint32_t h, uint64_t count)
{
    uint8_t k[RP_KEY_STATS] = {0};
    rh_put_be64(k, (uint64_t)minute);
    rh_put_be32(k + 8, f);
    rh_put_be32(k + 12, h);
    k[16] = RP_CLASS_UPLINK_APP;
    k[17] = RP_OUT_FORWARDED;
    uint64_t hist[RP_STATS_HIST] = {0};
    hist[rp_stats_hist_index(1000)] = count;
    Roamhub__V1__StatsBucket b = ROAMHUB__V1__STATS_BUCKET__INIT;
    b.minute = minute;
    b.forwarder_net_id = f;
    b.home_net_id = h;
    b.message_class = RP_CLASS_UPLINK_APP;
    b.outcome = RP_OUT_FORWARDED;
    b.result_code = "";
    b.count = count;
    b.latency_us_sum = count * 1000;
    b.n_latency_hist = RP_STATS_HIST;
    b.latency_hist = hist;
    uint8_t buf[512];
    size_t len = roamhub__v1__stats_bucket__pack(&b, buf);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(db->env, NULL, 0, &txn), 0);
    MDB_val kv = {sizeof k, k}, vv = {len, buf};
    assert_int_equal(mdb_put(txn, db->dbi[RP_DBI_STATS], &kv, &vv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void test_upgraded_database(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    uint64_t total = 0;
    for (int m = 0; m < 90; m++) { /* legacy: T0 .. T0+89 */
        legacy_put(f->db, T0 + m, 0x13, 0x505, 1 + (uint64_t)m);
        total += 1 + (uint64_t)m;
    }
    rows_t before = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 240, NULL, RP_AGG_HOUR, collect, &before, &d), RH_OK);
    assert_int_equal(before.n, 2); /* no roll-ups yet: hours summed from the minutes */
    assert_int_equal(total_count(&before), total);
    /* this version writes T0+90 .. T0+199 (minutes and roll-ups) */
    for (int m = 90; m < 200; m++) {
        rp_stats_item_t it = {.minute = T0 + m, .forwarder_net_id = 0x13, .home_net_id = 0x505,
                              .cls = RP_CLASS_UPLINK_APP, .outcome = RP_OUT_FORWARDED,
                              .count = 2, .latency_us_sum = 2000};
        it.latency_hist[rp_stats_hist_index(1000)] = 2;
        assert_int_equal(rp_stats_add(f->db, &it, 1, &d), RH_OK);
        total += 2;
    }
    rows_t mi = {0}, ho = {0}, da = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 240, NULL, RP_AGG_MINUTE, collect, &mi, &d), RH_OK);
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 240, NULL, RP_AGG_HOUR, collect, &ho, &d), RH_OK);
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 240, NULL, RP_AGG_DAY, collect, &da, &d), RH_OK);
    assert_int_equal(mi.n, 200);
    assert_int_equal(total_count(&mi), total);
    assert_int_equal(ho.n, 4); /* T0, T0+60 (both from minutes), T0+120, T0+180 (roll-ups) */
    assert_int_equal(total_count(&ho), total);
    assert_rollup_equal(&mi, &ho, 60);
    assert_int_equal(da.n, 1);
    assert_int_equal(total_count(&da), total);
    /* pages across the boundary between minute-summed and rolled-up periods */
    rows_t paged = {0};
    char tok[RP_STATS_TOKEN_MAX] = "";
    do {
        rp_stats_page_t pg = {.page_token = tok, .max_rows = 1};
        assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 240, NULL, RP_AGG_HOUR, &pg, collect,
                                             &paged, &d), RH_OK);
        snprintf(tok, sizeof tok, "%s", pg.next);
    } while (tok[0]);
    assert_rows_equal(&ho, &paged);
    /* once the minutes age out, the periods after the upgrade keep their totals */
    assert_int_equal(rp_stats_prune_res(f->db, RP_AGG_MINUTE, T0 + 240, 0, NULL, &d), RH_OK);
    rows_t late = {0};
    assert_int_equal(rp_stats_query(f->db, T0 + 120, T0 + 240, NULL, RP_AGG_HOUR, collect, &late, &d), RH_OK);
    assert_int_equal(late.n, 2);
    assert_int_equal(total_count(&late), 80 * 2);
    rows_free(&before);
    rows_free(&mi);
    rows_free(&ho);
    rows_free(&da);
    rows_free(&paged);
    rows_free(&late);
}

/* Rows of JoinEUI forwarders (keys 8 bytes longer) page like the others: the token carries the
 * forwarder's identity kind and EUI, so a page can end and resume between two EUI rows. */
static void test_pages_with_join_eui_forwarders(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    rp_stats_item_t b[6];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 6; i++) {
        b[i].minute = T0 + (i % 2);
        b[i].home_net_id = 0x505;
        b[i].cls = RP_CLASS_JOIN_REQUEST;
        b[i].outcome = RP_OUT_FORWARDED;
        b[i].count = 1 + (uint64_t)i;
        if (i < 4) {
            b[i].forwarder_kind = RP_STATS_ID_JOIN_EUI;
            b[i].forwarder_join_eui = 0x70B3D57ED0000000ull + (uint64_t)(i / 2);
        } else {
            b[i].forwarder_net_id = 0x13;
        }
    }
    assert_int_equal(rp_stats_add(f->db, b, 6, &d), RH_OK);
    for (unsigned a = 0; a < 2; a++) {
        rp_agg_t agg = a ? RP_AGG_HOUR : RP_AGG_MINUTE;
        rows_t all = {0}, paged = {0};
        assert_int_equal(rp_stats_query(f->db, T0, T0 + 60, NULL, agg, collect, &all, &d), RH_OK);
        char tok[RP_STATS_TOKEN_MAX] = "";
        size_t pages = 0;
        do {
            rp_stats_page_t pg = {.page_token = tok, .max_rows = 1};
            assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 60, NULL, agg, &pg, collect,
                                                 &paged, &d), RH_OK);
            snprintf(tok, sizeof tok, "%s", pg.next);
            pages++;
        } while (tok[0]);
        assert_int_equal(paged.n, all.n);
        assert_true(pages >= all.n);
        uint64_t eui_rows = 0;
        for (size_t i = 0; i < all.n; i++) {
            assert_int_equal(paged.v[i].forwarder_kind, all.v[i].forwarder_kind);
            assert_true(paged.v[i].forwarder_join_eui == all.v[i].forwarder_join_eui);
            assert_int_equal(paged.v[i].count, all.v[i].count);
            eui_rows += all.v[i].forwarder_kind == RP_STATS_ID_JOIN_EUI;
        }
        assert_int_equal(all.n, a ? 3 : 6);
        assert_int_equal(eui_rows, a ? 2 : 4);
        assert_int_equal(total_count(&all), 21);
        rows_free(&all);
        rows_free(&paged);
    }
}

/* ---- the protocols as a dimension (issue 12) ------------------------------------------------ */

static rp_stats_item_t proto_row(int64_t minute, rp_protocol_t fp, rp_protocol_t hp,
                                 uint64_t count)
{
    rp_stats_item_t it = {.minute = minute, .forwarder_net_id = 0x13, .home_net_id = 0x707,
                          .cls = RP_CLASS_UPLINK_APP, .outcome = RP_OUT_FORWARDED,
                          .count = count, .latency_us_sum = count * 1000,
                          .forwarder_protocol = fp, .home_protocol = hp};
    it.latency_hist[rp_stats_hist_index(1000)] = count;
    return it;
}

/* Count of the row with protocols (fp, hp) in r (asserting there is at most one). */
static uint64_t proto_count(const rows_t *r, rp_protocol_t fp, rp_protocol_t hp)
{
    uint64_t c = 0;
    int seen = 0;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].forwarder_protocol == fp && r->v[i].home_protocol == hp) {
            c += r->v[i].count;
            seen++;
        }
    assert_true(seen <= 1);
    return c;
}

#define TS RP_PROTO_TS002
#define PB RP_PROTO_PACKET_BROKER

static void test_rows_differing_only_in_protocol(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    /* one pair, class, outcome and minute: four protocol combinations, twice each */
    rp_stats_item_t b[8] = {proto_row(T0 + 5, TS, TS, 1), proto_row(T0 + 5, PB, TS, 2),
                            proto_row(T0 + 5, TS, PB, 4), proto_row(T0 + 5, PB, PB, 8),
                            proto_row(T0 + 65, TS, TS, 16), proto_row(T0 + 65, PB, TS, 32),
                            proto_row(T0 + 65, TS, PB, 64), proto_row(T0 + 65, PB, PB, 128)};
    assert_int_equal(rp_stats_add(f->db, b, 8, &d), RH_OK);
    static const rp_agg_t aggs[3] = {RP_AGG_MINUTE, RP_AGG_HOUR, RP_AGG_DAY};
    for (unsigned a = 0; a < 3; a++) {
        rows_t r = {0};
        assert_int_equal(rp_stats_query(f->db, T0, T0 + 1440, NULL, aggs[a], collect, &r, &d),
                         RH_OK);
        assert_int_equal(r.n, aggs[a] == RP_AGG_DAY ? 4 : 8);
        if (aggs[a] == RP_AGG_DAY) { /* the day sums both minutes */
            assert_int_equal(proto_count(&r, TS, TS), 17);
            assert_int_equal(proto_count(&r, PB, TS), 34);
            assert_int_equal(proto_count(&r, TS, PB), 68);
            assert_int_equal(proto_count(&r, PB, PB), 136);
        }
        /* delivered in (period, forwarder, home, forwarder protocol, home protocol) order */
        for (size_t i = 1; i < r.n; i++)
            if (r.v[i].minute == r.v[i - 1].minute)
                assert_true(r.v[i].forwarder_protocol * 2 + r.v[i].home_protocol >
                            r.v[i - 1].forwarder_protocol * 2 + r.v[i - 1].home_protocol);
        /* one row per page: the token carries the protocols, every row comes once */
        rows_t paged = {0};
        char tok[RP_STATS_TOKEN_MAX] = "";
        do {
            rp_stats_page_t pg = {.page_token = tok, .max_rows = 1};
            assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 1440, NULL, aggs[a], &pg,
                                                 collect, &paged, &d), RH_OK);
            snprintf(tok, sizeof tok, "%s", pg.next);
        } while (tok[0]);
        assert_rows_equal(&r, &paged);
        rows_free(&r);
        rows_free(&paged);
    }
    /* filters: the forwarder's, the home's, either side's protocol */
    struct {
        unsigned fwd, home, either;
        uint64_t want; /* sum of the counts of the kept combinations, over both minutes */
        size_t rows;   /* hourly rows */
    } cases[] = {
        {1u << PB, 0, 0, 34 + 136, 4},
        {0, 1u << PB, 0, 68 + 136, 4},
        {1u << TS, 1u << TS, 0, 17, 2},
        {0, 0, 1u << PB, 34 + 68 + 136, 6},
        {0, 0, 1u << TS, 17 + 34 + 68, 6},
        {1u << TS, 1u << PB, 0, 68, 2},
        {(1u << TS) | (1u << PB), 0, 0, 255, 8},
    };
    for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rp_stats_filter_t flt = {RP_ANY, RP_ANY, RP_ANY, RP_ANY, false, 0, cases[c].fwd,
                                 cases[c].home, cases[c].either};
        rows_t r = {0};
        assert_int_equal(rp_stats_query(f->db, T0, T0 + 1440, &flt, RP_AGG_HOUR, collect, &r, &d),
                         RH_OK);
        assert_int_equal(r.n, cases[c].rows);
        assert_int_equal(total_count(&r), cases[c].want);
        /* a token of the filtered query is not one of the unfiltered query */
        rp_stats_page_t pg = {.max_rows = 1};
        rows_t one = {0};
        assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 1440, &flt, RP_AGG_HOUR, &pg,
                                             collect, &one, &d), RH_OK);
        assert_true(pg.next[0]);
        rp_stats_page_t p2 = {.page_token = pg.next};
        assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 1440, NULL, RP_AGG_HOUR, &p2,
                                             collect, &one, &d), RH_EINVAL);
        rows_free(&r);
        rows_free(&one);
    }
    /* a protocol out of range is skipped and named, the valid rows of the batch are written */
    rp_stats_item_t bad[2] = {proto_row(T0 + 7, TS, TS, 1000), proto_row(T0 + 7, TS, TS, 1)};
    bad[0].home_protocol = (rp_protocol_t)RP_PROTO_COUNT;
    assert_int_equal(rp_stats_add(f->db, bad, 2, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "stats[0].home_protocol: 2 out of range"));
    rows_t r = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 1440, NULL, RP_AGG_DAY, collect, &r, &d), RH_OK);
    assert_int_equal(total_count(&r), 255 + 1);
    rows_free(&r);
}

/* The FNV-1a query hash of a version-1 page token (the format before the protocols): over
 * int64 {from period, to period, period length} then uint32 {forwarder, home, class, outcome,
 * has_party, party}. Written here independently of rp_stats.c. */
static uint32_t v1_query_hash(int64_t from_p, int64_t to_p, int64_t len, const uint32_t fv[6])
{
    uint32_t h = 2166136261u;
    int64_t qv[3] = {from_p, to_p, len};
    const uint8_t *p = (const uint8_t *)qv;
    for (size_t i = 0; i < sizeof qv; i++)
        h = (h ^ p[i]) * 16777619u;
    p = (const uint8_t *)fv;
    for (size_t i = 0; i < 6 * sizeof *fv; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* A minute bucket in the key layout written before the protocols were a dimension (50 bytes for
 * a NetID forwarder, 58 with a JoinEUI): every such row reads as TS002 on both sides, merges with
 * the TS002 rows this version writes, and stays apart from Packet Broker rows. A page token of
 * the version before (65 bytes, version 1) still continues its query. */
static void test_old_rows_and_tokens_read_as_ts002(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    legacy_put(f->db, T0 + 1, 0x13, 0x707, 5);
    legacy_put(f->db, T0 + 2, 0x13, 0x707, 6);
    { /* a JoinEUI forwarder's row in the old layout */
        uint8_t k[RP_KEY_STATS + 8] = {0};
        rh_put_be64(k, (uint64_t)(T0 + 1));
        rh_put_be32(k + 8, 0xFFFFFFFFu);
        rh_put_be32(k + 12, 0x707);
        k[16] = RP_CLASS_JOIN_REQUEST;
        k[17] = RP_OUT_FORWARDED;
        rh_put_be64(k + RP_KEY_STATS, 0x70B3D57ED0000001ull);
        Roamhub__V1__StatsBucket b = ROAMHUB__V1__STATS_BUCKET__INIT;
        b.count = 7;
        uint8_t buf[64];
        size_t len = roamhub__v1__stats_bucket__pack(&b, buf);
        MDB_txn *txn;
        assert_int_equal(mdb_txn_begin(f->db->env, NULL, 0, &txn), 0);
        MDB_val kv = {sizeof k, k}, vv = {len, buf};
        assert_int_equal(mdb_put(txn, f->db->dbi[RP_DBI_STATS], &kv, &vv, 0), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
    }
    rows_t r = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 60, NULL, RP_AGG_MINUTE, collect, &r, &d), RH_OK);
    assert_int_equal(r.n, 3);
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.v[i].forwarder_protocol, TS);
        assert_int_equal(r.v[i].home_protocol, TS);
    }
    rows_free(&r);
    /* this version adds to the same minute: TS002 merges into the old bucket, PB stays apart */
    rp_stats_item_t b[3] = {proto_row(T0 + 1, TS, TS, 100), proto_row(T0 + 1, PB, TS, 1000),
                            proto_row(T0 + 1, TS, PB, 10000)};
    assert_int_equal(rp_stats_add(f->db, b, 3, &d), RH_OK);
    assert_int_equal(rp_stats_query(f->db, T0 + 1, T0 + 2, NULL, RP_AGG_MINUTE, collect, &r, &d),
                     RH_OK);
    assert_int_equal(r.n, 4); /* NetID TS/TS (old + new merged), PB/TS, TS/PB; the JoinEUI row */
    uint64_t ts = 0;
    for (size_t i = 0; i < r.n; i++)
        if (r.v[i].forwarder_kind == RP_STATS_ID_NETID && r.v[i].forwarder_protocol == TS &&
            r.v[i].home_protocol == TS)
            ts += r.v[i].count;
    assert_int_equal(ts, 105);
    rows_free(&r);
    rp_stats_filter_t pbf = {RP_ANY, RP_ANY, RP_ANY, RP_ANY, false, 0, 0, 0, 1u << PB};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 60, &pbf, RP_AGG_MINUTE, collect, &r, &d), RH_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(total_count(&r), 11000);
    rows_free(&r);

    /* a version-1 token: the page after the first row of the minute query [T0, T0+60) */
    rows_t all = {0}, rest = {0};
    assert_int_equal(rp_stats_query(f->db, T0, T0 + 60, NULL, RP_AGG_MINUTE, collect, &all, &d),
                     RH_OK);
    assert_int_equal(all.n, 5);
    rp_stats_page_t pg = {.max_rows = 1};
    rows_t first = {0};
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 60, NULL, RP_AGG_MINUTE, &pg, collect,
                                         &first, &d), RH_OK);
    assert_int_equal(first.n, 1);
    assert_int_equal(first.v[0].forwarder_protocol, TS); /* the old row sorts first */
    uint8_t t[67];
    size_t tn = 0;
    assert_int_equal(strlen(pg.next), 2 * 67);
    assert_int_equal(rh_hex_decode(pg.next, 2 * 67, t, sizeof t, &tn, "t", NULL), RH_OK);
    assert_int_equal(t[55], 2);
    uint32_t fv[6] = {RP_ANY, RP_ANY, RP_ANY, RP_ANY, 0, 0};
    assert_int_equal(rh_get_be32(t + 51), v1_query_hash(T0, T0 + 60, 1, fv)); /* unchanged */
    t[55] = 1; /* what the version before wrote: the same 65 bytes, version 1 */
    char v1[2 * 65 + 1];
    rh_hex_encode(t, 65, v1, 0);
    rp_stats_page_t p2 = {.page_token = v1};
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 60, NULL, RP_AGG_MINUTE, &p2, collect,
                                         &rest, &d), RH_OK);
    assert_int_equal(rest.n, all.n - 1);
    for (size_t i = 0; i < rest.n; i++) {
        assert_int_equal(rest.v[i].minute, all.v[i + 1].minute);
        assert_int_equal(rest.v[i].count, all.v[i + 1].count);
    }
    /* a version-1 token cannot name a protocol; a version-2 token with one out of range fails */
    t[55] = 2;
    t[66] = RP_PROTO_COUNT;
    char bad[2 * 67 + 1];
    rh_hex_encode(t, 67, bad, 0);
    rp_stats_page_t p3 = {.page_token = bad};
    assert_int_equal(rp_stats_query_page(f->db, T0, T0 + 60, NULL, RP_AGG_MINUTE, &p3, collect,
                                         &rest, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "page_token: malformed"));
    rows_free(&all);
    rows_free(&first);
    rows_free(&rest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollups_match_minutes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pages_cover_everything_once, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_page_tokens_refused, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_party_filter, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_upgraded_database, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_pages_with_join_eui_forwarders, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rows_differing_only_in_protocol, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_old_rows_and_tokens_read_as_ts002, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
