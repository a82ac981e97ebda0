/* admin_stats.c — GET /api/v1/stats: the relay's per-minute statistics buckets (rp_stats_query)
 * by time range, aggregated per minute/hour/day, filtered by forwarder, home, class and outcome,
 * with latency mean and percentiles estimated from the log2 histograms; JSON or CSV (gzip when
 * accepted). A member sees only rows whose forwarder or home NetID is its own.
 *
 * Percentiles: bucket i of the histogram holds latencies in [2^(i-1), 2^i) µs (bucket 0: 0 µs);
 * the estimate interpolates linearly inside the bucket that holds the rank, so it is exact to
 * within one power of two and monotonic in q.
 */
#define _GNU_SOURCE /* strptime */
#include "admin_internal.h"

#include "bi_types.h"
#include "lw_netid.h"
#include "rh_hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double admin_stats_pct_ms(const rp_stats_item_t *it, double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < RP_STATS_HIST; i++)
        total += it->latency_hist[i];
    if (total == 0)
        return 0;
    double rank = q * (double)total;
    uint64_t cum = 0;
    for (unsigned i = 0; i < RP_STATS_HIST; i++) {
        uint64_t c = it->latency_hist[i];
        if (c && (double)(cum + c) >= rank) {
            double lo = i == 0 ? 0 : (double)(1ull << (i - 1)), hi = i == 0 ? 0 : (double)(1ull << i);
            double frac = (rank - (double)cum) / (double)c;
            if (frac < 0)
                frac = 0;
            return (lo + (hi - lo) * frac) / 1000.0;
        }
        cum += c;
    }
    return (double)(1ull << (RP_STATS_HIST - 1)) / 1000.0;
}

static double round3(double x) { return (double)(long long)(x * 1000.0 + 0.5) / 1000.0; }

static void period_text(int64_t minute, char out[32])
{
    time_t t = (time_t)(minute * 60);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Parses a time: RFC 3339 UTC ("2026-01-02T03:04:05Z"), or Unix seconds. */
static int parse_time(const char *s, int64_t *out_s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end) {
        *out_s = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    if (*p == '.')
        p += 1 + strspn(p + 1, "0123456789");
    if (strcmp(p, "Z") && strcmp(p, "z") && strcmp(p, "+00:00"))
        return -1;
    *out_s = (int64_t)timegm(&tm);
    return 0;
}

typedef struct stats_ctx {
    admin_req_t *r;
    int csv;
    cJSON *items;
    char *buf;
    size_t len, cap;
    size_t rows;
    int oom;
} stats_ctx_t;

static void append(stats_ctx_t *c, const char *s, size_t n)
{
    if (c->oom)
        return;
    if (c->len + n + 1 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 4096;
        while (nc < c->len + n + 1)
            nc *= 2;
        char *b = realloc(c->buf, nc);
        if (!b) {
            c->oom = 1;
            return;
        }
        c->buf = b;
        c->cap = nc;
    }
    memcpy(c->buf + c->len, s, n);
    c->len += n;
    c->buf[c->len] = '\0';
}

static int stats_cb(void *ud, const rp_stats_item_t *it)
{
    stats_ctx_t *c = ud;
    bool fwd_eui = it->forwarder_kind == RP_STATS_ID_JOIN_EUI; /* a Join Server's JoinEUI */
    if (!(!fwd_eui && admin_scope_net(&c->r->p, it->forwarder_net_id)) &&
        !admin_scope_net(&c->r->p, it->home_net_id))
        return 0;
    if (++c->rows > 100000)
        return 1;
    char per[32], f[17], h[7]; /* forwarder: 6 hex digits (NetID) or 16 (JoinEUI), as SenderID */
    period_text(it->minute, per);
    if (fwd_eui)
        rh_eui64_format(it->forwarder_join_eui, f);
    else
        lw_netid_format(it->forwarder_net_id, f, 0);
    lw_netid_format(it->home_net_id, h, 0);
    double mean = it->count ? (double)it->latency_us_sum / (double)it->count / 1000.0 : 0;
    double p50 = admin_stats_pct_ms(it, 0.5), p90 = admin_stats_pct_ms(it, 0.9), p99 = admin_stats_pct_ms(it, 0.99);
    if (c->csv) {
        char line[400];
        int n = snprintf(line, sizeof line, "%s,%s,%s,%s,%s,%s,%llu,%.3f,%.3f,%.3f,%.3f\n", per, f,
                         h, rp_class_name(it->cls), rp_outcome_name(it->outcome),
                         it->result_code ? it->result_code : "",
                         (unsigned long long)it->count, mean, p50, p90, p99);
        append(c, line, (size_t)n);
        return c->oom;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "period_start", per);
    cJSON_AddStringToObject(o, "forwarder", f);
    cJSON_AddStringToObject(o, "home", h);
    cJSON_AddStringToObject(o, "class", rp_class_name(it->cls));
    cJSON_AddStringToObject(o, "outcome", rp_outcome_name(it->outcome));
    if (it->result_code)
        cJSON_AddStringToObject(o, "result_code", it->result_code);
    cJSON_AddNumberToObject(o, "count", (double)it->count);
    cJSON *l = cJSON_AddObjectToObject(o, "latency_ms");
    cJSON_AddNumberToObject(l, "mean", round3(mean));
    cJSON_AddNumberToObject(l, "p50", round3(p50));
    cJSON_AddNumberToObject(l, "p90", round3(p90));
    cJSON_AddNumberToObject(l, "p99", round3(p99));
    cJSON_AddItemToArray(c->items, o);
    return 0;
}

void admin_stats_handle(admin_req_t *r)
{
    if (strcmp(r->method, "GET") || r->nseg != 1) {
        admin_reply_error(r, 405, "stats: GET /api/v1/stats");
        return;
    }
    if (!admin_has_right(&r->p, ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC)) {
        admin_reply_error(r, 403, "stats: your key lacks RIGHT_READ_TRAFFIC");
        return;
    }
    char b[64];
    int64_t to_s = r->now_s + 60, from_s = r->now_s - 3600;
    if (admin_query(r, "from", b, sizeof b) == 1 && parse_time(b, &from_s)) {
        admin_reply_error(r, 400, "from: expected RFC 3339 UTC (2026-01-02T03:04:05Z) or Unix "
                          "seconds");
        return;
    }
    if (admin_query(r, "to", b, sizeof b) == 1 && parse_time(b, &to_s)) {
        admin_reply_error(r, 400, "to: expected RFC 3339 UTC or Unix seconds");
        return;
    }
    if (to_s <= from_s) {
        admin_reply_error(r, 400, "to: must be after from");
        return;
    }
    rp_agg_t agg = RP_AGG_MINUTE;
    if (admin_query(r, "by", b, sizeof b) == 1) {
        if (!strcmp(b, "minute"))
            agg = RP_AGG_MINUTE;
        else if (!strcmp(b, "hour"))
            agg = RP_AGG_HOUR;
        else if (!strcmp(b, "day"))
            agg = RP_AGG_DAY;
        else {
            admin_reply_error(r, 400, "by: expected minute, hour or day");
            return;
        }
    }
    rp_stats_filter_t f = {RP_ANY, RP_ANY, RP_ANY, RP_ANY};
    if (admin_query_netid(r, "forwarder", &f.forwarder_net_id) || admin_query_netid(r, "home", &f.home_net_id))
        return;
    if (admin_query(r, "class", b, sizeof b) == 1) {
        rp_class_t c;
        if (rp_class_parse(b, &c) != RH_OK) {
            admin_reply_error(r, 400, "class: unknown (join_request, uplink_mac, ...)");
            return;
        }
        f.cls = c;
    }
    if (admin_query(r, "outcome", b, sizeof b) == 1) {
        unsigned o;
        for (o = 0; o < RP_OUT_COUNT; o++)
            if (!strcmp(rp_outcome_name((rp_outcome_t)o), b))
                break;
        if (o == RP_OUT_COUNT) {
            admin_reply_error(r, 400, "outcome: unknown (forwarded, policy_denied, ...)");
            return;
        }
        f.outcome = o;
    }
    int csv = 0;
    if (admin_query(r, "format", b, sizeof b) == 1) {
        if (!strcmp(b, "csv"))
            csv = 1;
        else if (strcmp(b, "json")) {
            admin_reply_error(r, 400, "format: expected json or csv");
            return;
        }
    }
    stats_ctx_t c = {r, csv, NULL, NULL, 0, 0, 0, 0};
    cJSON *o = NULL;
    if (csv) {
        const char *hdr = "period_start,forwarder,home,class,outcome,result_code,count,"
                          "latency_mean_ms,latency_p50_ms,latency_p90_ms,latency_p99_ms\n";
        append(&c, hdr, strlen(hdr));
    } else {
        o = cJSON_CreateObject();
        c.items = cJSON_AddArrayToObject(o, "items");
    }
    rh_diag_t d = {{0}};
    int rc = rp_stats_query(r->a->hub->db, from_s / 60, (to_s + 59) / 60, &f, agg, stats_cb, &c,
                            &d);
    if (rc || c.oom) {
        cJSON_Delete(o);
        free(c.buf);
        admin_reply_error(r, rc == RH_EINVAL ? 400 : 503, "%s", rc ? d.text : "out of memory");
        return;
    }
    if (csv) {
        admin_reply_body(r, 200, "text/csv; charset=utf-8", c.buf, c.len);
        free(c.buf);
        return;
    }
    admin_reply_json(r, 200, o);
}
