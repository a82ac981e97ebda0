/*
 * bench-stats — statistics data for the growth benchmark (tools/bench/growth-admin.sh) and the
 * stats integration test:
 *   bench-stats fill DB_DIR PAIRS DAYS [EVERY_MIN] [END_MINUTE]
 *       writes DAYS days of traffic ending at END_MINUTE (default: now) for PAIRS (forwarder,
 *       home) pairs, one forwarded uplink bucket per pair every EVERY_MIN minutes (default 1),
 *       through rp_stats_add in batches like the hub's flush (so the hour and day roll-ups are
 *       written too). Prints the number of minute buckets written.
 *   bench-stats query DB_DIR FROM_MIN TO_MIN minute|hour|day [ROWS_PER_PAGE]
 *       follows every page in-process and prints pages, buckets scanned, rows and seconds
 *       (cost per bucket scanned and per row returned, without HTTP).
 * Forwarder NetIDs are 0x010000 + i, home NetIDs 0x020000 + i.
 */
#include "rp.h"
#include "rh_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int count_cb(void *ud, const rp_stats_item_t *it)
{
    (void)it;
    ++*(size_t *)ud;
    return 0;
}

static int fill(rp_db_t *db, long pairs, long days, long every, long end)
{
    rp_stats_item_t batch[512];
    size_t nb = 0, total = 0;
    rh_diag_t d;
    long start = end - days * 1440;
    for (long m = start; m < end; m += every) {
        for (long p = 0; p < pairs; p++) {
            rp_stats_item_t *it = &batch[nb++];
            memset(it, 0, sizeof *it);
            it->minute = m;
            it->forwarder_net_id = 0x010000u + (uint32_t)p;
            it->home_net_id = 0x020000u + (uint32_t)p;
            it->cls = RP_CLASS_UPLINK_APP;
            it->outcome = RP_OUT_FORWARDED;
            it->count = 10;
            it->latency_us_sum = 10 * 1500;
            it->latency_hist[rp_stats_hist_index(1500)] = 10;
            if (nb == sizeof batch / sizeof batch[0]) {
                if (rp_stats_add(db, batch, nb, &d) != RH_OK) {
                    fprintf(stderr, "bench-stats: %s\n", d.text);
                    return 1;
                }
                total += nb;
                nb = 0;
            }
        }
    }
    if (nb && rp_stats_add(db, batch, nb, &d) != RH_OK) {
        fprintf(stderr, "bench-stats: %s\n", d.text);
        return 1;
    }
    printf("%zu\n", total + nb);
    return 0;
}

static int query(rp_db_t *db, long from, long to, const char *by, size_t limit)
{
    rp_agg_t agg = !strcmp(by, "day") ? RP_AGG_DAY : !strcmp(by, "hour") ? RP_AGG_HOUR
                                                                         : RP_AGG_MINUTE;
    char tok[RP_STATS_TOKEN_MAX] = "";
    size_t pages = 0, scanned = 0, rows = 0;
    uint64_t t0 = rh_mono_ns();
    do {
        rp_stats_page_t pg = {.page_token = tok, .max_rows = limit};
        rh_diag_t d;
        if (rp_stats_query_page(db, from, to, NULL, agg, &pg, count_cb, &rows, &d) != RH_OK) {
            fprintf(stderr, "bench-stats: %s\n", d.text);
            return 1;
        }
        pages++;
        scanned += pg.scanned;
        snprintf(tok, sizeof tok, "%s", pg.next);
    } while (tok[0]);
    printf("pages=%zu scanned=%zu rows=%zu seconds=%.3f\n", pages, scanned, rows,
           (double)(rh_mono_ns() - t0) / 1e9);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench-stats fill DB_DIR PAIRS DAYS [EVERY_MIN] [END_MINUTE]\n"
                        "       bench-stats query DB_DIR FROM_MIN TO_MIN minute|hour|day [ROWS]\n");
        return 2;
    }
    rp_db_opts_t o = {.no_sync = 1, .no_index = 1, .map_size = (size_t)1 << 30};
    rp_db_t *db;
    rh_diag_t d;
    if (rp_db_open(argv[2], &o, &db, &d) != RH_OK) {
        fprintf(stderr, "bench-stats: %s\n", d.text);
        return 1;
    }
    int rc = 2;
    if (!strcmp(argv[1], "fill") && argc >= 5)
        rc = fill(db, atol(argv[3]), atol(argv[4]), argc > 5 ? atol(argv[5]) : 1,
                  argc > 6 ? atol(argv[6]) : (long)(rh_real_ms() / 60000));
    else if (!strcmp(argv[1], "query") && argc >= 6)
        rc = query(db, atol(argv[3]), atol(argv[4]), argv[5],
                   argc > 6 ? (size_t)atol(argv[6]) : 10000);
    rp_db_close(db);
    return rc;
}
