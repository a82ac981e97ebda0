/* metrics.c — per-worker counters (see metrics.h). Cells live in an open-addressing table that
 * only grows; the key includes the ResultCode text (bounded by RP_RESULT_MAX) and the two sides'
 * protocols (packed into one byte, PROTOS). */
#include "metrics.h"

#include "lw_netid.h"
#include "metrics_process.h"
#include "rh_err.h"
#include "rh_hex.h"
#include "rh_version.h"

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
    uint8_t protos; /* PROTOS(forwarder protocol, home protocol) */
    char result[RP_RESULT_MAX + 1];
    uint64_t total;
    uint64_t d_count, d_sum;
    uint64_t d_hist[RP_STATS_HIST];
} cell_t;

#define MAX_EVENTS 32

/* The forwarder's and the home network's rp_protocol_t in one byte, and back. */
#define PROTOS(fp, hp) ((uint8_t)((unsigned)(fp) | (unsigned)(hp) << 4))
#define PROTO_FWD(b) ((rp_protocol_t)((b) & 15u))
#define PROTO_HOME(b) ((rp_protocol_t)((b) >> 4))

struct metrics {
    pthread_mutex_t mu;
    cell_t *cells;
    size_t cap, used;
    struct {
        uint64_t hist[RP_STATS_HIST], sum_us, n;
    } stage[METRICS_STAGES];
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

static uint64_t cell_hash(unsigned fk, uint64_t fwd, uint32_t home, unsigned pr, unsigned cls,
                          unsigned out, const char *r)
{
    /* a JoinEUI's high bits only collide (equality compares everything) */
    uint64_t h = ((fwd << 32) ^ ((uint64_t)fk << 31) ^ home) * 0x9E3779B97F4A7C15ull;
    h ^= (pr << 16 | cls << 8 | out) * 0xC2B2AE3D27D4EB4Full;
    for (; r && *r; r++)
        h = (h ^ (unsigned char)*r) * 0x100000001B3ull;
    return h ^ (h >> 31);
}

static cell_t *find_cell(cell_t *cells, size_t cap, unsigned fk, uint64_t fwd, uint32_t home,
                         unsigned pr, unsigned cls, unsigned out, const char *r)
{
    size_t i = cell_hash(fk, fwd, home, pr, cls, out, r) & (cap - 1);
    for (;;) {
        cell_t *c = &cells[i];
        if (!c->used ||
            (c->fwd_kind == fk && c->fwd == fwd && c->home == home && c->protos == pr &&
             c->cls == cls && c->outcome == out &&
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
        *find_cell(n, ncap, o->fwd_kind, o->fwd, o->home, o->protos, o->cls, o->outcome,
                   o->result) = *o;
    }
    free(m->cells);
    m->cells = n;
    m->cap = ncap;
    return RH_OK;
}

static cell_t *get_cell(metrics_t *m, unsigned fk, uint64_t fwd, uint32_t home, unsigned pr,
                        unsigned cls, unsigned out, const char *r)
{
    if ((m->used + 1) * 4 > m->cap * 3 && grow(m) != RH_OK)
        return NULL;
    cell_t *c = find_cell(m->cells, m->cap, fk, fwd, home, pr, cls, out, r);
    if (!c->used) {
        c->used = 1;
        c->fwd_kind = (uint8_t)fk;
        c->fwd = fwd;
        c->home = home;
        c->protos = (uint8_t)pr;
        c->cls = (uint8_t)cls;
        c->outcome = (uint8_t)out;
        snprintf(c->result, sizeof c->result, "%s", r ? r : "");
        m->used++;
    }
    return c;
}

void metrics_count(metrics_t *m, rp_stats_id_kind_t fwd_kind, uint64_t fwd, uint32_t home,
                   rp_protocol_t fwd_proto, rp_protocol_t home_proto, rp_class_t cls,
                   rp_outcome_t outcome, const char *result_code, uint64_t total_us)
{
    pthread_mutex_lock(&m->mu);
    cell_t *c = get_cell(m, fwd_kind, fwd, home, PROTOS(fwd_proto, home_proto), cls, outcome,
                         result_code);
    if (c) {
        c->total++;
        c->d_count++;
        c->d_sum += total_us;
        c->d_hist[rp_stats_hist_index(total_us)]++;
    }
    pthread_mutex_unlock(&m->mu);
}

void metrics_observe(metrics_t *m, metrics_stage_t stage, uint64_t us)
{
    pthread_mutex_lock(&m->mu);
    m->stage[stage].hist[rp_stats_hist_index(us)]++;
    m->stage[stage].sum_us += us;
    m->stage[stage].n++;
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

/* Writes `us` microseconds as exact decimal seconds ("0.000015", "1.048575", "0"). */
static void sb_seconds(sbuf_t *b, uint64_t us)
{
    char frac[8];
    snprintf(frac, sizeof frac, "%06llu", (unsigned long long)(us % 1000000u));
    size_t n = 6;
    while (n > 0 && frac[n - 1] == '0')
        frac[--n] = '\0';
    sb_printf(b, "%llu%s%s", (unsigned long long)(us / 1000000u), n ? "." : "", frac);
}

static void render_hist(sbuf_t *b, const char *stage, const uint64_t *hist, uint64_t sum_us,
                        uint64_t n)
{
    uint64_t cum = 0;
    /* rp_stats_hist_index: bucket 0 holds 0 µs, bucket i holds [2^(i-1), 2^i) µs, the last one
     * everything above; so the cumulative count up to bucket i is of latencies <= 2^i - 1 µs
     * (integers), and the last bucket is +Inf. */
    for (unsigned i = 0; i + 1 < RP_STATS_HIST; i++) {
        cum += hist[i];
        sb_printf(b, "roamhub_relay_latency_seconds_bucket{stage=\"%s\",le=\"", stage);
        sb_seconds(b, (1ull << i) - 1);
        sb_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    sb_printf(b, "roamhub_relay_latency_seconds_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", stage,
              (unsigned long long)n);
    sb_printf(b, "roamhub_relay_latency_seconds_sum{stage=\"%s\"} ", stage);
    sb_seconds(b, sum_us);
    sb_printf(b, "\nroamhub_relay_latency_seconds_count{stage=\"%s\"} %llu\n", stage,
              (unsigned long long)n);
}

/* Event names shown from the start (at 0); others appear when first counted. */
static const char *const known_events[] = {
    "answer_txid_mismatch", "async_answer_not_sent", "malformed", "rate_limited",
    "sender_refused", "unauthenticated", "unmatched_answer",
};
#define N_KNOWN_EVENTS (sizeof known_events / sizeof known_events[0])

/* --- forwarder x home label pairs (metrics_set_max_peer_pairs) --- */

/* Label markers beside the real identities: the forwarder's kind (rp_stats_id_kind_t) gets
 * KIND_NONE (no label: not identified) or KIND_OTHER (folded beyond the cap); a home NetID
 * (24 bits) gets HOME_NONE or HOME_OTHER. */
#define KIND_NONE 0xFE
#define KIND_OTHER 0xFF
#define HOME_NONE 0xFE000000u
#define HOME_OTHER 0xFF000000u

typedef struct pair {
    uint8_t used, kind;
    uint64_t fwd;
    uint32_t home;
} pair_t;

static pthread_mutex_t pairs_mu = PTHREAD_MUTEX_INITIALIZER;
static pair_t *pairs; /* open addressing, grows; the admitted pairs, for the process's life */
static size_t pairs_cap, pairs_used;
static size_t pairs_max = 10000;

void metrics_set_max_peer_pairs(size_t max_pairs)
{
    pthread_mutex_lock(&pairs_mu);
    pairs_max = max_pairs;
    pthread_mutex_unlock(&pairs_mu);
}

static int pair_eq(const pair_t *a, const pair_t *b)
{
    return a->kind == b->kind && a->fwd == b->fwd && a->home == b->home;
}

static size_t pair_slot(const pair_t *tab, size_t cap, const pair_t *k)
{
    uint64_t h = (k->fwd * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)k->home << 8 | k->kind);
    size_t i = (size_t)((h * 0xC2B2AE3D27D4EB4Full) >> 17) & (cap - 1);
    while (tab[i].used && !pair_eq(&tab[i], k))
        i = (i + 1) & (cap - 1);
    return i;
}

/* Whether the pair keeps its labels; admits it while fewer than pairs_max are. Caller holds
 * pairs_mu. */
static int pair_admit(const pair_t *k)
{
    if (pairs_cap && pairs[pair_slot(pairs, pairs_cap, k)].used)
        return 1;
    if (pairs_used >= pairs_max)
        return 0;
    if ((pairs_used + 1) * 2 > pairs_cap) {
        size_t ncap = pairs_cap ? pairs_cap * 2 : 64;
        pair_t *n = calloc(ncap, sizeof *n);
        if (!n)
            return 0;
        for (size_t i = 0; i < pairs_cap; i++)
            if (pairs[i].used)
                n[pair_slot(n, ncap, &pairs[i])] = pairs[i];
        free(pairs);
        pairs = n;
        pairs_cap = ncap;
    }
    pair_t *slot = &pairs[pair_slot(pairs, pairs_cap, k)];
    *slot = *k;
    slot->used = 1;
    pairs_used++;
    return 1;
}

static int pair_cmp(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->fwd != y->fwd)
        return x->fwd < y->fwd ? -1 : 1;
    return x->home < y->home ? -1 : x->home > y->home;
}

/* The identities the hub did not establish get no label rather than a "000000" stand-in. */
static pair_t label_pair(const cell_t *c)
{
    pair_t p = {.used = 1, .kind = c->fwd_kind, .fwd = c->fwd, .home = c->home};
    if (c->fwd == 0 && (c->outcome == RP_OUT_MALFORMED || c->outcome == RP_OUT_UNAUTHORIZED)) {
        p.kind = KIND_NONE;
        p.fwd = 0;
    }
    if (c->home == 0 && (c->outcome == RP_OUT_NO_ROUTE || c->outcome == RP_OUT_MALFORMED ||
                         c->outcome == RP_OUT_UNAUTHORIZED))
        p.home = HOME_NONE;
    return p;
}

static void sb_fwd_label(sbuf_t *b, unsigned kind, uint64_t fwd)
{
    char t[17];
    if (kind == KIND_NONE)
        return;
    if (kind == KIND_OTHER) {
        sb_printf(b, "forwarder=\"other\",");
        return;
    }
    if (kind == RP_STATS_ID_JOIN_EUI)
        rh_eui64_format(fwd, t);
    else
        lw_netid_format((uint32_t)fwd, t, 0);
    sb_printf(b, "forwarder=\"%s\",", t);
}

static void sb_home_label(sbuf_t *b, uint32_t home)
{
    char t[7];
    if (home == HOME_NONE)
        return;
    if (home == HOME_OTHER) {
        sb_printf(b, "home=\"other\",");
        return;
    }
    lw_netid_format(home, t, 0);
    sb_printf(b, "home=\"%s\",", t);
}

/* roamhub_messages_total (capped pairs) and roamhub_relay_outcomes_total (all classes x
 * outcomes, pre-created) from the summed cells. */
static void render_messages(sbuf_t *b, metrics_t *sum)
{
    metrics_t *out = metrics_new();
    pair_t *folded = calloc(sum->used + 1, sizeof *folded);
    uint64_t outcomes[RP_CLASS_COUNT][RP_OUT_COUNT] = {{0}};
    size_t nfolded = 0;
    if (!out || !folded) {
        metrics_free(out);
        free(folded);
        b->oom = 1;
        return;
    }
    pthread_mutex_lock(&pairs_mu);
    size_t max = pairs_max;
    for (size_t i = 0; i < sum->cap; i++) {
        cell_t *c = &sum->cells[i];
        if (!c->used)
            continue;
        if (c->cls < RP_CLASS_COUNT && c->outcome < RP_OUT_COUNT)
            outcomes[c->cls][c->outcome] += c->total;
        pair_t p = label_pair(c);
        if (max == 0) {
            p.kind = KIND_NONE;
            p.fwd = 0;
            p.home = HOME_NONE;
        } else if (!pair_admit(&p)) {
            folded[nfolded++] = p;
            p.kind = KIND_OTHER;
            p.fwd = 0;
            p.home = HOME_OTHER;
        }
        cell_t *o = get_cell(out, p.kind, p.fwd, p.home, c->protos, c->cls, c->outcome, c->result);
        if (o)
            o->total += c->total;
        else
            b->oom = 1;
    }
    size_t labelled = pairs_used;
    pthread_mutex_unlock(&pairs_mu);
    qsort(folded, nfolded, sizeof *folded, pair_cmp);
    size_t distinct = 0;
    for (size_t i = 0; i < nfolded; i++)
        distinct += i == 0 || pair_cmp(&folded[i], &folded[i - 1]) != 0;
    free(folded);

    sb_printf(b, "# HELP roamhub_messages_total Messages handled, by forwarder, home network, "
                 "message class, outcome, the receiver's ResultCode and the protocol each side "
                 "spoke (ts002, packet_broker).\n"
                 "# TYPE roamhub_messages_total counter\n");
    for (size_t i = 0; i < out->cap; i++) {
        cell_t *c = &out->cells[i];
        if (!c->used)
            continue;
        sb_printf(b, "roamhub_messages_total{");
        sb_fwd_label(b, c->fwd_kind, c->fwd);
        sb_home_label(b, c->home);
        sb_printf(b, "class=\"%s\",outcome=\"%s\"", rp_class_name((rp_class_t)c->cls),
                  rp_outcome_name((rp_outcome_t)c->outcome));
        if (c->result[0])
            sb_printf(b, ",result=\"%s\"", c->result);
        sb_printf(b, ",forwarder_protocol=\"%s\",home_protocol=\"%s\"} %llu\n",
                  rp_protocol_name(PROTO_FWD(c->protos)), rp_protocol_name(PROTO_HOME(c->protos)),
                  (unsigned long long)c->total);
    }
    metrics_free(out);
    sb_printf(b, "# HELP roamhub_relay_outcomes_total TS002 messages handled, by message class "
                 "and outcome (every pair from the start).\n"
                 "# TYPE roamhub_relay_outcomes_total counter\n");
    for (unsigned c = 0; c < RP_CLASS_COUNT; c++)
        for (unsigned o = 0; o < RP_OUT_COUNT; o++)
            sb_printf(b, "roamhub_relay_outcomes_total{class=\"%s\",outcome=\"%s\"} %llu\n",
                      rp_class_name((rp_class_t)c), rp_outcome_name((rp_outcome_t)o),
                      (unsigned long long)outcomes[c][o]);
    sb_printf(b, "# HELP roamhub_metrics_peer_pairs Forwarder x home pairs of "
                 "roamhub_messages_total: labelled, or folded into \"other\" beyond "
                 "admin.metrics_max_peer_pairs.\n"
                 "# TYPE roamhub_metrics_peer_pairs gauge\n"
                 "roamhub_metrics_peer_pairs{state=\"labelled\"} %zu\n"
                 "roamhub_metrics_peer_pairs{state=\"folded\"} %zu\n",
              labelled, distinct);
}

static void render_gauge(sbuf_t *b, const char *name, const char *help, double v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void render_process(sbuf_t *b)
{
    metrics_process_t p;
    metrics_process_read(&p);
    render_gauge(b, "process_start_time_seconds",
                 "Start time of the process since unix epoch in seconds.", p.start_time_s);
    sb_printf(b, "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                 "seconds.\n# TYPE process_cpu_seconds_total counter\n"
                 "process_cpu_seconds_total %.6f\n", p.cpu_s);
    if (p.resident_bytes)
        render_gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
                     (double)p.resident_bytes);
    if (p.virtual_bytes)
        render_gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                     (double)p.virtual_bytes);
    if (p.open_fds >= 0)
        render_gauge(b, "process_open_fds", "Number of open file descriptors.",
                     (double)p.open_fds);
    if (p.max_fds >= 0)
        render_gauge(b, "process_max_fds", "Maximum number of open file descriptors.",
                     (double)p.max_fds);
}

char *metrics_render(metrics_t *const *all, size_t n, const metrics_hub_gauges_t *g)
{
    sbuf_t b = {0};
    b.cap = 8192;
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
            cell_t *s = get_cell(sum, c->fwd_kind, c->fwd, c->home, c->protos, c->cls, c->outcome,
                                 c->result);
            if (s)
                s->total += c->total;
            else
                b.oom = 1;
        }
        for (unsigned st = 0; st < METRICS_STAGES; st++) {
            for (unsigned i = 0; i < RP_STATS_HIST; i++)
                sum->stage[st].hist[i] += m->stage[st].hist[i];
            sum->stage[st].sum_us += m->stage[st].sum_us;
            sum->stage[st].n += m->stage[st].n;
        }
        pthread_mutex_unlock(&m->mu);
    }
    sb_printf(&b, "# HELP roamhub_build_info The roamhub build: version (project version and "
                  "git describe).\n# TYPE roamhub_build_info gauge\n"
                  "roamhub_build_info{version=\"%s\"} 1\n", rh_version());
    render_messages(&b, sum);
    sb_printf(&b, "# HELP roamhub_relay_latency_seconds Hub processing (receive to forward), "
                  "receiver (forward to answer) and, with relay.hub_latency, the hub's own part "
                  "of a relayed message's round trip (hub_added).\n"
                  "# TYPE roamhub_relay_latency_seconds histogram\n");
    static const char *const stage_names[METRICS_STAGES] = {
        [METRICS_FORWARD] = "receive_to_forward",
        [METRICS_ANSWER] = "forward_to_answer",
        [METRICS_HUB_ADDED] = "hub_added",
    };
    for (unsigned st = 0; st < METRICS_STAGES; st++)
        render_hist(&b, stage_names[st], sum->stage[st].hist, sum->stage[st].sum_us,
                    sum->stage[st].n);
    sb_printf(&b, "# HELP roamhub_events_total Notable relay events.\n"
                  "# TYPE roamhub_events_total counter\n");
    /* events: sum by name across workers, the known names first (at 0 when never seen) */
    const char *names[MAX_EVENTS * 4 + N_KNOWN_EVENTS];
    uint64_t counts[MAX_EVENTS * 4 + N_KNOWN_EVENTS];
    size_t nn = 0;
    for (size_t k = 0; k < N_KNOWN_EVENTS; k++) {
        names[nn] = known_events[k];
        counts[nn++] = 0;
    }
    for (size_t w = 0; w < n; w++) {
        metrics_t *m = all[w];
        pthread_mutex_lock(&m->mu);
        for (int i = 0; i < MAX_EVENTS && m->ev_name[i]; i++) {
            size_t k = 0;
            while (k < nn && strcmp(names[k], m->ev_name[i]) != 0)
                k++;
            if (k == nn && nn < sizeof names / sizeof names[0]) {
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
    if (g) {
        render_gauge(&b, "roamhub_pending_transactions",
                     "TS002 transactions awaiting an answer.", (double)g->pending);
        render_gauge(&b, "roamhub_members", "Members in the current member registry.",
                     (double)g->members);
        render_gauge(&b, "roamhub_endpoints", "Endpoints in the current member registry.",
                     (double)g->endpoints);
        render_gauge(&b, "roamhub_uptime_seconds", "Seconds since the hub started.",
                     (double)g->uptime_s);
        render_gauge(&b, "roamhub_relay_transactions",
                     "Live relay transactions (a leak shows as a gauge that never falls).",
                     (double)g->relay_transactions);
    }
    if (g && g->pb) {
        render_gauge(&b, "roamhub_pb_subscription_groups",
                     "Packet Broker subscription groups (gRPC data plane).", (double)g->pb_groups);
        render_gauge(&b, "roamhub_pb_subscription_streams",
                     "Open Packet Broker Subscribe streams.", (double)g->pb_streams);
        render_gauge(&b, "roamhub_pb_queued_messages",
                     "Routed messages waiting in subscription group queues.", (double)g->pb_queued);
        render_gauge(&b, "roamhub_pb_queued_bytes",
                     "Bytes of routed messages waiting in subscription group queues.",
                     (double)g->pb_queued_bytes);
    }
    render_process(&b);
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
        it->forwarder_protocol = PROTO_FWD(c->protos);
        it->home_protocol = PROTO_HOME(c->protos);
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
                             it->home_net_id, PROTOS(it->forwarder_protocol, it->home_protocol),
                             it->cls, it->outcome, it->result_code);
        if (!c)
            continue;
        c->d_count += it->count;
        c->d_sum += it->latency_us_sum;
        for (unsigned h = 0; h < RP_STATS_HIST; h++)
            c->d_hist[h] += it->latency_hist[h];
    }
    pthread_mutex_unlock(&m->mu);
}

/* --- the cluster view: several nodes' texts as one --- */

static void sb_init(sbuf_t *b)
{
    b->len = 0;
    b->cap = 256;
    b->p = malloc(b->cap);
    b->oom = !b->p;
    if (b->p)
        b->p[0] = '\0';
}

typedef struct family {
    char name[128];
    size_t owner;   /* 1 + index of the text whose HELP/TYPE lines are kept */
    sbuf_t head;    /* HELP and TYPE lines (from the first text that has them) */
    sbuf_t samples; /* every text's samples, labelled */
} family_t;

/* The family a line belongs to: the name after "# HELP " / "# TYPE ", else the sample's metric
 * name; "" for other comments. */
static void line_family(const char *l, size_t n, char *out, size_t cap, int *is_head)
{
    *is_head = 0;
    size_t i = 0, k = 0;
    if (n && l[0] == '#') {
        if (n > 7 && (!strncmp(l, "# HELP ", 7) || !strncmp(l, "# TYPE ", 7))) {
            *is_head = 1;
            i = 7;
        } else {
            out[0] = '\0';
            return;
        }
    }
    while (i < n && l[i] != ' ' && l[i] != '{' && k + 1 < cap)
        out[k++] = l[i++];
    out[k] = '\0';
}

char *metrics_text_merge(const char *const *texts, const unsigned *nodes, size_t n)
{
    family_t *fam = NULL;
    size_t nf = 0, capf = 0;
    int oom = 0;
    for (size_t t = 0; t < n && !oom; t++) {
        family_t *cur = NULL;
        for (const char *l = texts[t]; l && *l && !oom;) {
            const char *e = strchr(l, '\n');
            size_t len = e ? (size_t)(e - l) : strlen(l);
            char name[128];
            int head;
            line_family(l, len, name, sizeof name, &head);
            if (name[0] && (!cur || (head && strcmp(cur->name, name)))) {
                cur = NULL;
                for (size_t f = 0; f < nf && !cur; f++)
                    if (!strcmp(fam[f].name, name))
                        cur = &fam[f];
                /* a histogram's _bucket/_sum/_count samples stay in the family whose head came
                 * before them (cur unchanged when the sample is not a head) */
                if (!cur) {
                    if (nf == capf) {
                        size_t nc = capf ? capf * 2 : 64;
                        family_t *nfam = realloc(fam, nc * sizeof *fam);
                        if (!nfam) {
                            oom = 1;
                            break;
                        }
                        fam = nfam;
                        capf = nc;
                    }
                    cur = &fam[nf++];
                    memset(cur, 0, sizeof *cur);
                    snprintf(cur->name, sizeof cur->name, "%s", name);
                    sb_init(&cur->head);
                    sb_init(&cur->samples);
                    cur->owner = t + 1;
                }
            }
            if (cur && head && cur->owner == t + 1) {
                sb_printf(&cur->head, "%.*s\n", (int)len, l);
            } else if (cur && !head && len && l[0] != '#') {
                size_t nl = strcspn(l, " {");
                if (nl < len && l[nl] == '{')
                    sb_printf(&cur->samples, "%.*s{node=\"%u\",%.*s\n", (int)nl, l, nodes[t],
                              (int)(len - nl - 1), l + nl + 1);
                else
                    sb_printf(&cur->samples, "%.*s{node=\"%u\"}%.*s\n", (int)nl, l, nodes[t],
                              (int)(len - nl), l + nl);
            }
            l = e ? e + 1 : l + len;
        }
    }
    sbuf_t out;
    sb_init(&out);
    for (size_t f = 0; f < nf; f++) {
        oom |= fam[f].head.oom | fam[f].samples.oom;
        if (fam[f].head.p)
            sb_printf(&out, "%s", fam[f].head.p);
        if (fam[f].samples.p)
            sb_printf(&out, "%s", fam[f].samples.p);
        free(fam[f].head.p);
        free(fam[f].samples.p);
    }
    free(fam);
    if (oom || out.oom) {
        free(out.p);
        return NULL;
    }
    return out.p;
}
