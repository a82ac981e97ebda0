/* admin_stats.c — GET /api/v1/stats: the relay's statistics buckets (rp_stats_query_page) by
 * time range, per minute/hour/day (hour/day read the roll-ups), filtered by forwarder, home,
 * class, outcome and protocol (`forwarder_protocol`, `home_protocol`, `protocol` = either side;
 * ts002 or packet_broker), with latency mean and percentiles estimated from the log2 histograms;
 * JSON or CSV (gzip when accepted). Every row names the protocol each side spoke
 * (forwarder_protocol, home_protocol; the CSV's last two columns, so positional readers of the
 * earlier columns are unaffected). A member sees only rows whose forwarder or home NetID is its
 * own.
 *
 * Paging: at most `limit` rows per response (default 10,000, at most 100,000); when there is
 * more, JSON carries "next_page_token" (else "") and both JSON and CSV carry the header
 * `X-Next-Page-Token`; the client repeats the query with `page_token=` to continue. A page also
 * ends early (with a token) at a period boundary after STATS_MAX_SCAN buckets or
 * STATS_PAGE_MS, so one request's time and memory are bounded whatever the range.
 *
 * Threads: the query, the formatting and the gzip run on one statistics thread, never on the
 * admin listener's loop (which serves /healthz); the request is held (hs_req kept) and answered
 * from the main loop when the thread posts the result. At most STATS_QUEUE_MAX queries wait;
 * beyond that the answer is 503 with Retry-After.
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

#include "rh_log.h"
#include "rh_time.h"

#include "offload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATS_LIMIT_DEFAULT 10000
#define STATS_LIMIT_MAX 100000
#define STATS_MAX_SCAN 4000000u /* buckets per page (~1.2 s at 0.3 µs) */
#define STATS_PAGE_MS 2000      /* a page stops at the next period boundary after this */
#define STATS_QUEUE_MAX 4

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
    int csv;
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

#define APPEND_LIT(c, lit) append((c), (lit), sizeof(lit) - 1)

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void json_string(stats_ctx_t *c, const char *s)
{
    append(c, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            append(c, e, 2);
        } else if (ch < 0x20) {
            char e[8];
            snprintf(e, sizeof e, "\\u%04x", ch);
            append(c, e, 6);
        } else {
            append(c, (const char *)&ch, 1);
        }
    }
    append(c, "\"", 1);
}

static int stats_cb(void *ud, const rp_stats_item_t *it)
{
    stats_ctx_t *c = ud;
    char per[32], f[17], h[7]; /* forwarder: 6 hex digits (NetID) or 16 (JoinEUI), as SenderID */
    period_text(it->minute, per);
    if (it->forwarder_kind == RP_STATS_ID_JOIN_EUI) /* a Join Server's JoinEUI */
        rh_eui64_format(it->forwarder_join_eui, f);
    else
        lw_netid_format(it->forwarder_net_id, f, 0);
    lw_netid_format(it->home_net_id, h, 0);
    double mean = it->count ? (double)it->latency_us_sum / (double)it->count / 1000.0 : 0;
    double p50 = admin_stats_pct_ms(it, 0.5), p90 = admin_stats_pct_ms(it, 0.9),
           p99 = admin_stats_pct_ms(it, 0.99);
    if (c->csv) {
        char line[400];
        int n = snprintf(line, sizeof line, "%s,%s,%s,%s,%s,%s,%llu,%.3f,%.3f,%.3f,%.3f,%s,%s\n",
                         per, f, h, rp_class_name(it->cls), rp_outcome_name(it->outcome),
                         it->result_code ? it->result_code : "",
                         (unsigned long long)it->count, mean, p50, p90, p99,
                         rp_protocol_name(it->forwarder_protocol),
                         rp_protocol_name(it->home_protocol));
        append(c, line, (size_t)n);
        return c->oom;
    }
    /* JSON written directly (cJSON trees cost ~5 µs per row): every value is hex, an enum
     * name, a fixed-format time or a number, except the ResultCode, which is escaped. */
    char line[640];
    int n = snprintf(line, sizeof line,
                     "%s{\"period_start\":\"%s\",\"forwarder\":\"%s\",\"home\":\"%s\","
                     "\"forwarder_protocol\":\"%s\",\"home_protocol\":\"%s\","
                     "\"class\":\"%s\",\"outcome\":\"%s\",",
                     c->rows ? "," : "", per, f, h, rp_protocol_name(it->forwarder_protocol),
                     rp_protocol_name(it->home_protocol), rp_class_name(it->cls),
                     rp_outcome_name(it->outcome));
    append(c, line, (size_t)n);
    if (it->result_code) {
        APPEND_LIT(c, "\"result_code\":");
        json_string(c, it->result_code);
        append(c, ",", 1);
    }
    n = snprintf(line, sizeof line,
                 "\"count\":%llu,\"latency_ms\":{\"mean\":%.15g,\"p50\":%.15g,\"p90\":%.15g,"
                 "\"p99\":%.15g}}",
                 (unsigned long long)it->count, round3(mean), round3(p50), round3(p90),
                 round3(p99));
    append(c, line, (size_t)n);
    c->rows++;
    return c->oom;
}

/* ---- the statistics thread ---------------------------------------------------------------- */

typedef struct stats_job stats_job_t;
struct stats_job {
    offload_job_t job;        /* first: the job is the query */
    admin_stats_t *s;
    admin_req_t r;            /* r.req held until the main loop answers */
    int64_t from_min, to_min;
    rp_agg_t agg;
    rp_stats_filter_t f;
    int csv, gzip;
    size_t limit;
    char token[RP_STATS_TOKEN_MAX];
    /* result (filled by the thread) */
    int rc;
    rh_diag_t d;
    char *body;               /* malloc'd, possibly gzip */
    size_t len;
    int gzipped;
    rp_stats_page_t pg;
    uint64_t took_us;
    int cluster;              /* a cluster node: the answer says which nodes it covers */
    char reporting[CLUSTER_VIEW_NODES * 4], missing[CLUSTER_VIEW_NODES * 4]; /* "1,3" */
};

struct admin_stats {
    admin_api_t *a;
    offload_t *off;           /* the statistics thread */
    unsigned queued;          /* waiting or running (main loop only) */
};

static const char CSV_HEADER[] = "period_start,forwarder,home,class,outcome,result_code,count,"
                                 "latency_mean_ms,latency_p50_ms,latency_p90_ms,latency_p99_ms,"
                                 "forwarder_protocol,home_protocol\n";

/* "1,3": node IDs joined by commas ("" for none). */
static void node_list(const unsigned *ids, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && len + 5 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%u", i ? "," : "", ids[i]);
}

/* Runs one page of a query and formats it (statistics thread). */
static void job_run(offload_job_t *oj)
{
    stats_job_t *j = (stats_job_t *)oj;
    admin_stats_t *s = j->s;
    uint64_t t0 = rh_mono_ns();
    stats_ctx_t c = {.csv = j->csv};
    if (j->csv)
        append(&c, CSV_HEADER, sizeof CSV_HEADER - 1);
    else
        APPEND_LIT(&c, "{\"items\":[");
    j->pg.page_token = j->token;
    j->pg.max_rows = j->limit;
    j->pg.max_scan = STATS_MAX_SCAN;
    j->pg.deadline_ns = t0 + (uint64_t)STATS_PAGE_MS * 1000000u;
    j->rc = c.oom ? RH_ENOMEM
                  : rp_stats_query_page(s->a->hub->db, j->from_min, j->to_min, &j->f, j->agg,
                                        &j->pg, stats_cb, &c, &j->d);
    if (j->rc == RH_OK && s->a->hub->cview) { /* after the query: a node missing since is */
        cluster_nodes_t cn;
        cluster_view_nodes(s->a->hub->cview, &cn);
        j->cluster = 1;
        node_list(cn.reporting, cn.n_reporting, j->reporting, sizeof j->reporting);
        node_list(cn.missing, cn.n_missing, j->missing, sizeof j->missing);
    }
    if (j->rc == RH_OK && !j->csv) {
        APPEND_LIT(&c, "],\"next_page_token\":\"");
        append(&c, j->pg.next, strlen(j->pg.next)); /* hex */
        APPEND_LIT(&c, "\"");
        if (j->cluster) {
            char cl[sizeof j->reporting + sizeof j->missing + 96];
            int n = snprintf(cl, sizeof cl, ",\"cluster\":{\"nodes_reporting\":[%s],"
                             "\"nodes_missing\":[%s],\"partial\":%s}", j->reporting,
                             j->missing, j->missing[0] ? "true" : "false");
            append(&c, cl, (size_t)n);
        }
        APPEND_LIT(&c, "}");
    }
    if (j->rc == RH_OK && c.oom)
        j->rc = rh_diag_fail(&j->d, RH_ENOMEM, "stats: out of memory");
    if (j->rc) {
        free(c.buf);
        return;
    }
    j->body = c.buf;
    j->len = c.len;
    uint8_t *z;
    size_t zl;
    if (j->gzip && j->len > 0 && admin_gzip(j->body, j->len, &z, &zl) == RH_OK) {
        free(j->body);
        j->body = (char *)z;
        j->len = zl;
        j->gzipped = 1;
    }
    j->took_us = (rh_mono_ns() - t0) / 1000;
}

static void job_free(stats_job_t *j)
{
    free(j->body);
    free(j);
}

/* Main loop: answers finished queries. */
static void job_reply(stats_job_t *j)
{
    admin_req_t *r = &j->r;
    if (j->rc) {
        admin_reply_error(r, j->rc == RH_EINVAL || j->rc == RH_ERANGE ? 400 : 503, "%s",
                          j->d.text);
        return;
    }
    char extra[400 + sizeof j->reporting + sizeof j->missing], cl[sizeof j->reporting +
                                                                   sizeof j->missing + 96] = "";
    if (j->cluster) /* the CSV form's only place for it; the JSON has it in "cluster" too */
        snprintf(cl, sizeof cl, "X-Cluster-Nodes-Reporting: %s\r\nX-Cluster-Nodes-Missing: %s\r\n",
                 j->reporting, j->missing);
    snprintf(extra, sizeof extra, "Cache-Control: no-store\r\n%s%s%s%s%s",
             j->gzipped ? "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n" : "",
             j->pg.next[0] ? "X-Next-Page-Token: " : "", j->pg.next,
             j->pg.next[0] ? "\r\n" : "", cl);
    hs_reply_ex(r->req, 200, j->csv ? "text/csv; charset=utf-8" : "application/json", extra,
                j->body, j->len);
    r->req = NULL;
    RH_LOG(RH_LOG_DEBUG, "admin", "stats page rows=%zu scanned=%zu more=%d took_us=%llu by=%s",
           j->pg.rows, j->pg.scanned, j->pg.next[0] != '\0', (unsigned long long)j->took_us,
           r->p.key_id);
}

/* Main loop: a query page finished. */
static void job_done(offload_job_t *oj)
{
    stats_job_t *j = (stats_job_t *)oj;
    j->s->queued--;
    job_reply(j);
    job_free(j);
}

/* Shutdown: a query that never ran. */
static void job_cancel(offload_job_t *oj)
{
    stats_job_t *j = (stats_job_t *)oj;
    admin_reply_error(&j->r, 503, "stats: the hub is shutting down");
    job_free(j);
}

static admin_stats_t *stats_state(admin_api_t *a)
{
    if (a->stats)
        return a->stats;
    admin_stats_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->a = a;
    if (offload_new(a->hub->main_base, &s->off) != RH_OK) {
        free(s);
        return NULL;
    }
    a->stats = s;
    return s;
}

void admin_stats_fini(admin_api_t *a)
{
    admin_stats_t *s = a->stats;
    if (!s)
        return;
    /* a running page ends within STATS_PAGE_MS + one period; finished ones are answered */
    offload_free(s->off, job_cancel);
    free(s);
    a->stats = NULL;
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
    rp_stats_filter_t f = {RP_ANY, RP_ANY, RP_ANY, RP_ANY, false, 0, 0, 0, 0};
    if (admin_query_netid(r, "forwarder", &f.forwarder_net_id) ||
        admin_query_netid(r, "home", &f.home_net_id))
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
        rp_outcome_t o;
        if (rp_outcome_parse(b, &o) != RH_OK) {
            admin_reply_error(r, 400, "outcome: unknown (forwarded, policy_denied, ...)");
            return;
        }
        f.outcome = o;
    }
    static const char *const proto_params[3] = {"forwarder_protocol", "home_protocol",
                                                "protocol"};
    unsigned *proto_sets[3] = {&f.forwarder_protocols, &f.home_protocols, &f.either_protocols};
    for (unsigned i = 0; i < 3; i++) {
        rp_protocol_t p;
        int got = admin_query(r, proto_params[i], b, sizeof b);
        if (got == 1 && rp_protocol_parse(b, &p) != RH_OK)
            got = -1;
        if (got < 0) {
            admin_reply_error(r, 400, "%s: expected ts002 or packet_broker", proto_params[i]);
            return;
        }
        if (got == 1)
            *proto_sets[i] = 1u << p;
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
    unsigned limit = STATS_LIMIT_DEFAULT;
    if (admin_query_uint(r, "limit", 1, STATS_LIMIT_MAX, &limit))
        return;
    if (!r->p.is_operator) {
        f.has_party = true; /* a member sees rows where it is forwarder or home */
        f.party_net_id = r->p.net_id;
    }
    stats_job_t *j = calloc(1, sizeof *j);
    if (!j) {
        admin_reply_error(r, 503, "stats: out of memory");
        return;
    }
    if (admin_query(r, "page_token", j->token, sizeof j->token) < 0) {
        free(j);
        admin_reply_error(r, 400, "page_token: malformed (too long)");
        return;
    }
    j->from_min = from_s / 60;
    j->to_min = (to_s + 59) / 60;
    j->agg = agg;
    j->f = f;
    j->csv = csv;
    j->gzip = admin_accepts_gzip(r);
    j->limit = limit;
    admin_stats_t *s = stats_state(r->a);
    if (!s) {
        free(j);
        admin_reply_error(r, 503, "stats: cannot start the statistics thread");
        return;
    }
    if (s->queued >= STATS_QUEUE_MAX) {
        free(j);
        admin_reply_busy(r, "stats: too many queries in progress, retry later");
        return;
    }
    j->job.run = job_run;
    j->job.done = job_done;
    j->s = s;
    admin_req_hold(r, &j->r);
    s->queued++;
    offload_submit(s->off, &j->job);
}
