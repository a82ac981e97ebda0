/* metrics.c — per-worker counters (see metrics.h). Cells live in an open-addressing table that
 * only grows; the key includes the ResultCode text (bounded by RP_RESULT_MAX). */
#include "metrics.h"

#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_err.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cell {
    int used;
    uint8_t fwd_kind; /* rp_stats_id_kind_t: fwd is a NetID or a JoinEUI */
    uint64_t fwd;
    uint32_t home;
    uint8_t cls, outcome;
    char result[RP_RESULT_MAX + 1];
    uint64_t total;
    uint64_t d_count, d_sum;
    uint64_t d_hist[RP_STATS_HIST];
} cell_t;

#define MAX_EVENTS 32

struct metrics {
    pthread_mutex_t mu;
    cell_t *cells;
    size_t cap, used;
    uint64_t fwd_hist[RP_STATS_HIST], ans_hist[RP_STATS_HIST];
    uint64_t fwd_sum_us, ans_sum_us, fwd_n, ans_n;
    const char *ev_name[MAX_EVENTS];
    uint64_t ev_count[MAX_EVENTS];
    char (*taken_results)[RP_RESULT_MAX + 1];
};

metrics_t *metrics_new(void)
{
    metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->cap = 256;
    m->cells = calloc(m->cap, sizeof(cell_t));
    if (!m->cells) {
        free(m);
        return NULL;
    }
    return m;
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->cells);
    free(m->taken_results);
    free(m);
}

static uint64_t cell_hash(unsigned fk, uint64_t fwd, uint32_t home, unsigned cls, unsigned out,
                          const char *r)
{
    /* a JoinEUI's high bits only collide (equality compares everything) */
    uint64_t h = ((fwd << 32) ^ ((uint64_t)fk << 31) ^ home) * 0x9E3779B97F4A7C15ull;
    h ^= (cls << 8 | out) * 0xC2B2AE3D27D4EB4Full;
    for (; r && *r; r++)
        h = (h ^ (unsigned char)*r) * 0x100000001B3ull;
    return h ^ (h >> 31);
}

static cell_t *find_cell(cell_t *cells, size_t cap, unsigned fk, uint64_t fwd, uint32_t home,
                         unsigned cls, unsigned out, const char *r)
{
    size_t i = cell_hash(fk, fwd, home, cls, out, r) & (cap - 1);
    for (;;) {
        cell_t *c = &cells[i];
        if (!c->used ||
            (c->fwd_kind == fk && c->fwd == fwd && c->home == home && c->cls == cls &&
             c->outcome == out &&
             strcmp(c->result, r ? r : "") == 0))
            return c;
        i = (i + 1) & (cap - 1);
    }
}

static int grow(metrics_t *m)
{
    size_t ncap = m->cap * 2;
    cell_t *n = calloc(ncap, sizeof(cell_t));
    if (!n)
        return RH_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        cell_t *o = &m->cells[i];
        if (!o->used)
            continue;
        *find_cell(n, ncap, o->fwd_kind, o->fwd, o->home, o->cls, o->outcome, o->result) = *o;
    }
    free(m->cells);
    m->cells = n;
    m->cap = ncap;
    return RH_OK;
}

static cell_t *get_cell(metrics_t *m, unsigned fk, uint64_t fwd, uint32_t home, unsigned cls,
                        unsigned out, const char *r)
{
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != RH_OK)
        return NULL;
    cell_t *c = find_cell(m->cells, m->cap, fk, fwd, home, cls, out, r);
    if (!c->used) {
        c->used = 1;
        c->fwd_kind = (uint8_t)fk;
        c->fwd = fwd;
        c->home = home;
        c->cls = (uint8_t)cls;
        c->outcome = (uint8_t)out;
        snprintf(c->result, sizeof c->result, "%s", r ? r : "");
        m->used++;
    }
    return c;
}

void metrics_count(metrics_t *m, rp_stats_id_kind_t fwd_kind, uint64_t fwd, uint32_t home,
                   rp_class_t cls, rp_outcome_t outcome, const char *result_code,
                   uint64_t total_us)
{
    pthread_mutex_lock(&m->mu);
    cell_t *c = get_cell(m, fwd_kind, fwd, home, cls, outcome, result_code);
    if (c) {
        c->total++;
        c->d_count++;
        c->d_sum += total_us;
        c->d_hist[rp_stats_hist_index(total_us)]++;
    }
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe_forward(metrics_t *m, uint64_t us)
{
    pthread_mutex_lock(&m->mu);
    m->fwd_hist[rp_stats_hist_index(us)]++;
    m->fwd_sum_us += us;
    m->fwd_n++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe_answer(metrics_t *m, uint64_t us)
{
    pthread_mutex_lock(&m->mu);
    m->ans_hist[rp_stats_hist_index(us)]++;
    m->ans_sum_us += us;
    m->ans_n++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_event(metrics_t *m, const char *name)
{
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < MAX_EVENTS; i++) {
        if (m->ev_name[i] == NULL)
            m->ev_name[i] = name;
        if (m->ev_name[i] == name || strcmp(m->ev_name[i], name) == 0) {
            m->ev_count[i]++;
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* --- rendering --- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf_t;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = (b->cap + (size_t)n + 1) * 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

static void render_hist(sbuf_t *b, const char *stage, const uint64_t *hist, uint64_t sum_us,
                        uint64_t n)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i < RP_STATS_HIST; i++) {
        cum += hist[i];
        /* bucket i holds latencies < 2^i µs */
        double le = (double)(1ull << i) / 1e6;
        sb_printf(b, "roamhub_relay_latency_seconds_bucket{stage=\"%s\",le=\"%g\"} %llu\n", stage,
                  le, (unsigned long long)cum);
    }
    sb_printf(b, "roamhub_relay_latency_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", stage,
              (unsigned long long)n);
    sb_printf(b, "roamhub_relay_latency_seconds_sum{stage=\"%s\"} %.6f\n", stage,
              (double)sum_us / 1e6);
    sb_printf(b, "roamhub_relay_latency_seconds_count{stage=\"%s\"} %llu\n", stage,
              (unsigned long long)n);
}

char *metrics_render(metrics_t *const *all, size_t n, const char *extra)
{
    sbuf_t b = {0};
    b.cap = 4096;
    b.p = malloc(b.cap);
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    /* Sum all workers into one temporary metrics object. */
    metrics_t *sum = metrics_new();
    if (!sum) {
        free(b.p);
        return NULL;
    }
    for (size_t w = 0; w < n; w++) {
        metrics_t *m = all[w];
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; i < m->cap; i++) {
            cell_t *c = &m->cells[i];
            if (!c->used)
                continue;
            cell_t *s = get_cell(sum, c->fwd_kind, c->fwd, c->home, c->cls, c->outcome, c->result);
            if (s)
                s->total += c->total;
        }
        for (unsigned i = 0; i < RP_STATS_HIST; i++) {
            sum->fwd_hist[i] += m->fwd_hist[i];
            sum->ans_hist[i] += m->ans_hist[i];
        }
        sum->fwd_sum_us += m->fwd_sum_us;
        sum->ans_sum_us += m->ans_sum_us;
        sum->fwd_n += m->fwd_n;
        sum->ans_n += m->ans_n;
        pthread_mutex_unlock(&m->mu);
    }
    sb_printf(&b, "# HELP roamhub_messages_total TS002 messages handled, by forwarder, home "
                  "network, message class and outcome.\n# TYPE roamhub_messages_total counter\n");
    for (size_t i = 0; i < sum->cap; i++) {
        cell_t *c = &sum->cells[i];
        if (!c->used)
            continue;
        char f[17], h[7];
        if (c->fwd_kind == RP_STATS_ID_JOIN_EUI)
            rh_eui64_format(c->fwd, f);
        else
            lw_netid_format((uint32_t)c->fwd, f, 0);
        lw_netid_format(c->home, h, 0);
        sb_printf(&b,
                  "roamhub_messages_total{forwarder=\"%s\",home=\"%s\",class=\"%s\",outcome=\"%s\","
                  "result=\"%s\"} %llu\n",
                  f, h, rp_class_name((rp_class_t)c->cls), rp_outcome_name((rp_outcome_t)c->outcome),
                  c->result, (unsigned long long)c->total);
    }
    sb_printf(&b, "# HELP roamhub_relay_latency_seconds Hub processing (receive to forward) and "
                  "receiver (forward to answer) latency.\n"
                  "# TYPE roamhub_relay_latency_seconds histogram\n");
    render_hist(&b, "receive_to_forward", sum->fwd_hist, sum->fwd_sum_us, sum->fwd_n);
    render_hist(&b, "forward_to_answer", sum->ans_hist, sum->ans_sum_us, sum->ans_n);
    sb_printf(&b, "# HELP roamhub_events_total Notable relay events.\n"
                  "# TYPE roamhub_events_total counter\n");
    /* events: sum by name across workers */
    const char *names[MAX_EVENTS * 4];
    uint64_t counts[MAX_EVENTS * 4];
    size_t nn = 0;
    for (size_t w = 0; w < n; w++) {
        metrics_t *m = all[w];
        pthread_mutex_lock(&m->mu);
        for (int i = 0; i < MAX_EVENTS && m->ev_name[i]; i++) {
            size_t k = 0;
            while (k < nn && strcmp(names[k], m->ev_name[i]) != 0)
                k++;
            if (k == nn && nn < MAX_EVENTS * 4) {
                names[nn] = m->ev_name[i];
                counts[nn++] = 0;
            }
            if (k < nn)
                counts[k] += m->ev_count[i];
        }
        pthread_mutex_unlock(&m->mu);
    }
    for (size_t k = 0; k < nn; k++)
        sb_printf(&b, "roamhub_events_total{event=\"%s\"} %llu\n", names[k],
                  (unsigned long long)counts[k]);
    if (extra)
        sb_printf(&b, "%s", extra);
    metrics_free(sum);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

int metrics_take_deltas(metrics_t *m, int64_t minute, rp_stats_item_t **items, size_t *n)
{
    pthread_mutex_lock(&m->mu);
    size_t k = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->cells[i].used && m->cells[i].d_count)
            k++;
    *items = NULL;
    *n = 0;
    if (k == 0) {
        pthread_mutex_unlock(&m->mu);
        return RH_OK;
    }
    rp_stats_item_t *out = calloc(k, sizeof *out);
    char(*res)[RP_RESULT_MAX + 1] = calloc(k, sizeof *res);
    if (!out || !res) {
        free(out);
        free(res);
        pthread_mutex_unlock(&m->mu);
        return RH_ENOMEM;
    }
    free(m->taken_results);
    m->taken_results = res;
    size_t j = 0;
    for (size_t i = 0; i < m->cap; i++) {
        cell_t *c = &m->cells[i];
        if (!c->used || !c->d_count)
            continue;
        rp_stats_item_t *it = &out[j];
        it->minute = minute;
        it->forwarder_kind = (rp_stats_id_kind_t)c->fwd_kind;
        if (c->fwd_kind == RP_STATS_ID_JOIN_EUI)
            it->forwarder_join_eui = c->fwd;
        else
            it->forwarder_net_id = (uint32_t)c->fwd;
        it->home_net_id = c->home;
        it->cls = (rp_class_t)c->cls;
        it->outcome = (rp_outcome_t)c->outcome;
        memcpy(res[j], c->result, sizeof res[j]);
        it->result_code = res[j][0] ? res[j] : NULL;
        it->count = c->d_count;
        it->latency_us_sum = c->d_sum;
        memcpy(it->latency_hist, c->d_hist, sizeof it->latency_hist);
        c->d_count = c->d_sum = 0;
        memset(c->d_hist, 0, sizeof c->d_hist);
        j++;
    }
    pthread_mutex_unlock(&m->mu);
    *items = out;
    *n = k;
    return RH_OK;
}

void metrics_restore_deltas(metrics_t *m, const rp_stats_item_t *items, size_t n)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < n; i++) {
        const rp_stats_item_t *it = &items[i];
        cell_t *c = get_cell(m, it->forwarder_kind,
                             it->forwarder_kind == RP_STATS_ID_JOIN_EUI ? it->forwarder_join_eui
                                                                         : it->forwarder_net_id,
                             it->home_net_id, it->cls, it->outcome, it->result_code);
        if (!c)
            continue;
        c->d_count += it->count;
        c->d_sum += it->latency_us_sum;
        for (unsigned h = 0; h < RP_STATS_HIST; h++)
            c->d_hist[h] += it->latency_hist[h];
    }
    pthread_mutex_unlock(&m->mu);
}
