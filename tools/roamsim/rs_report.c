/*
 * rs_report.c — what roamsim tells: the --log event lines, RTT samples, and after the run the
 * expectations, the printed summary and the --json file (formats in docs/roamsim.md).
 */
#include "roamsim.h"

#include "rh_hex.h"
#include "rh_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rs_sample_add(double **arr, size_t *n, size_t *cap, double v)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        double *na = realloc(*arr, nc * sizeof *na);
        if (!na)
            return;
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
}

void rs_log_event(rs_sim_t *s, cJSON *o)
{
    if (s->log) {
        char *t = cJSON_PrintUnformatted(o);
        if (t) {
            fprintf(s->log, "%s\n", t);
            fflush(s->log);
            cJSON_free(t);
        }
    }
    cJSON_Delete(o);
}

void rs_json_add_hex(cJSON *o, const char *k, const uint8_t *b, size_t n)
{
    char h[2 * 256 + 1];
    rh_hex_encode(b, n, h, 0);
    cJSON_AddStringToObject(o, k, h);
}

void rs_json_add_eui(cJSON *o, const char *k, uint64_t e)
{
    char h[17];
    rh_eui64_format(e, h);
    cJSON_AddStringToObject(o, k, h);
}

/* Figures computed once for both the printed and the JSON summary. */
typedef struct figures {
    double elapsed;           /* s since start */
    double p50, p99, pmax;    /* confirmed uplink -> ACK, ms */
    double j50;               /* join-request -> join-accept, ms */
} figures_t;

/* The expectations: explicit --expect-X and --max-X values, else the defaults (every OTAA device
 * joins, every confirmed uplink is acknowledged, nothing late or wrong, every device finished)
 * unless --no-expect. Returns the array of failure sentences (empty when all hold). */
static cJSON *check_expectations(const rs_sim_t *s)
{
    const rs_opts_t *o = &s->o;
    size_t pending_dev = s->ndev - s->ndone;
    long exp_joins = o->expect_joins >= 0 ? o->expect_joins : o->no_expect ? 0 : (long)s->n_otaa;
    long exp_acks = o->expect_acks >= 0 ? o->expect_acks : o->no_expect ? 0 : (long)s->confirmed;
    long exp_dl = o->expect_downlinks >= 0 ? o->expect_downlinks : 0;
    long max_late = o->max_late >= 0 ? o->max_late : o->no_expect ? -1 : 0;
    long max_wrong = o->max_wrong >= 0 ? o->max_wrong : o->no_expect ? -1 : 0;
    cJSON *fails = cJSON_CreateArray();
    char msg[256];
#define FAIL(...)                                                                              \
    do {                                                                                       \
        snprintf(msg, sizeof msg, __VA_ARGS__);                                                \
        cJSON_AddItemToArray(fails, cJSON_CreateString(msg));                                  \
    } while (0)
    if ((long)s->joins < exp_joins)
        FAIL("joins accepted %llu < expected %ld", (unsigned long long)s->joins, exp_joins);
    if ((long)s->acks < exp_acks)
        FAIL("acks %llu < expected %ld", (unsigned long long)s->acks, exp_acks);
    if ((long)s->dl_app < exp_dl)
        FAIL("application downlinks %llu < expected %ld", (unsigned long long)s->dl_app, exp_dl);
    if (max_late >= 0 && (long)s->dl_late > max_late)
        FAIL("late downlinks %llu > %ld", (unsigned long long)s->dl_late, max_late);
    if (max_wrong >= 0 && (long)s->dl_wrong > max_wrong)
        FAIL("wrong downlinks %llu > %ld (first: %s)", (unsigned long long)s->dl_wrong, max_wrong,
             s->first_wrong);
    if (s->interrupted)
        FAIL("interrupted by a signal");
    if (pending_dev && !o->no_expect)
        FAIL("%zu devices had not finished when the run ended (duration %.0f s)", pending_dev,
             o->duration_s);
#undef FAIL
    return fails;
}

static void print_summary(const rs_sim_t *s, const figures_t *f, const cJSON *fails, bool ok)
{
    const rs_opts_t *o = &s->o;
    printf("roamsim: %zu gateways, %zu devices (%zu OTAA), %.1f s\n", o->n_gw, s->ndev, s->n_otaa,
           f->elapsed);
    printf("  uplinks sent      %llu (confirmed %llu, %.1f/s)\n", (unsigned long long)s->uplinks,
           (unsigned long long)s->confirmed, f->elapsed > 0 ? (double)s->uplinks / f->elapsed : 0);
    printf("  acknowledged      %llu (unacknowledged %llu)\n", (unsigned long long)s->acks,
           (unsigned long long)s->unacked);
    printf("  joins             %llu accepted of %llu join-requests (%llu devices failed)\n",
           (unsigned long long)s->joins, (unsigned long long)s->join_requests,
           (unsigned long long)s->join_failures);
    printf("  downlinks         %llu: on time %llu (RX1 %llu, RX2 %llu), late %llu, wrong %llu; "
           "application %llu\n",
           (unsigned long long)s->dl_total, (unsigned long long)s->dl_on_time,
           (unsigned long long)s->dl_rx1, (unsigned long long)s->dl_rx2,
           (unsigned long long)s->dl_late, (unsigned long long)s->dl_wrong,
           (unsigned long long)s->dl_app);
    printf("  gateway RTT       confirmed uplink PUSH_DATA -> ACK PULL_RESP: p50 %.2f ms, "
           "p99 %.2f ms, max %.2f ms (n=%zu)\n", f->p50, f->p99, f->pmax, s->nrtt);
    printf("  GWMP              PUSH_DATA %llu (acked %llu), PULL_DATA %llu (acked %llu), "
           "TX_ACK %llu\n",
           (unsigned long long)s->push_sent, (unsigned long long)s->push_acked,
           (unsigned long long)s->pull_sent, (unsigned long long)s->pull_acked,
           (unsigned long long)s->tx_ack_sent);
    const cJSON *it;
    cJSON_ArrayForEach(it, fails) printf("  FAILED: %s\n", it->valuestring);
    printf("  result            %s\n", ok ? "OK" : "FAILED");
    fflush(stdout);
}

/* Writes the --json summary file; takes `fails` over. */
static void write_json(const rs_sim_t *s, const figures_t *f, cJSON *fails, bool ok)
{
    const rs_opts_t *o = &s->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "elapsed_s", f->elapsed);
    cJSON_AddNumberToObject(j, "gateways", (double)o->n_gw);
    cJSON_AddNumberToObject(j, "devices", (double)s->ndev);
    cJSON_AddNumberToObject(j, "uplinks_sent", (double)s->uplinks);
    cJSON_AddNumberToObject(j, "confirmed_sent", (double)s->confirmed);
    cJSON_AddNumberToObject(j, "acks", (double)s->acks);
    cJSON_AddNumberToObject(j, "unacked", (double)s->unacked);
    cJSON_AddNumberToObject(j, "join_requests", (double)s->join_requests);
    cJSON_AddNumberToObject(j, "joins_accepted", (double)s->joins);
    cJSON_AddNumberToObject(j, "join_failures", (double)s->join_failures);
    cJSON *dl = cJSON_AddObjectToObject(j, "downlinks");
    cJSON_AddNumberToObject(dl, "total", (double)s->dl_total);
    cJSON_AddNumberToObject(dl, "on_time", (double)s->dl_on_time);
    cJSON_AddNumberToObject(dl, "late", (double)s->dl_late);
    cJSON_AddNumberToObject(dl, "wrong", (double)s->dl_wrong);
    cJSON_AddNumberToObject(dl, "rx1", (double)s->dl_rx1);
    cJSON_AddNumberToObject(dl, "rx2", (double)s->dl_rx2);
    cJSON_AddNumberToObject(dl, "application", (double)s->dl_app);
    cJSON *rt = cJSON_AddObjectToObject(j, "rtt_ms");
    cJSON_AddNumberToObject(rt, "count", (double)s->nrtt);
    cJSON_AddNumberToObject(rt, "p50", f->p50);
    cJSON_AddNumberToObject(rt, "p99", f->p99);
    cJSON_AddNumberToObject(rt, "max", f->pmax);
    cJSON_AddNumberToObject(j, "join_rtt_ms_p50", f->j50);
    cJSON *gw = cJSON_AddObjectToObject(j, "gwmp");
    cJSON_AddNumberToObject(gw, "push_data", (double)s->push_sent);
    cJSON_AddNumberToObject(gw, "push_ack", (double)s->push_acked);
    cJSON_AddNumberToObject(gw, "pull_data", (double)s->pull_sent);
    cJSON_AddNumberToObject(gw, "pull_ack", (double)s->pull_acked);
    cJSON_AddNumberToObject(gw, "tx_ack", (double)s->tx_ack_sent);
    cJSON *apps = cJSON_AddArrayToObject(j, "app_downlinks");
    for (size_t i = 0; apps && i < s->napps; i++) {
        cJSON *a = cJSON_CreateObject();
        rs_json_add_eui(a, "dev_eui", s->apps[i].dev_eui);
        cJSON_AddNumberToObject(a, "fcnt", s->apps[i].fcnt);
        cJSON_AddNumberToObject(a, "fport", s->apps[i].fport);
        rs_json_add_hex(a, "payload_hex", s->apps[i].data, s->apps[i].len);
        cJSON_AddItemToArray(apps, a);
    }
    cJSON_AddBoolToObject(j, "ok", ok);
    cJSON_AddItemToObject(j, "failures", fails);
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt || tl_write_file_atomic(o->json_out, txt, strlen(txt)) < 0)
        fprintf(stderr, "roamsim: cannot write %s\n", o->json_out);
    cJSON_free(txt);
}

bool rs_report(rs_sim_t *s)
{
    figures_t fig = {0}, *f = &fig;
    f->elapsed = (double)(rh_mono_ns() - s->start_ns) / 1e9;
    if (s->nrtt) {
        f->p50 = tl_percentile(s->rtt, s->nrtt, 50);
        f->p99 = tl_percentile(s->rtt, s->nrtt, 99);
        f->pmax = s->rtt[s->nrtt - 1]; /* tl_percentile sorted them */
    }
    if (s->njrtt)
        f->j50 = tl_percentile(s->jrtt, s->njrtt, 50);
    cJSON *fails = check_expectations(s);
    bool ok = cJSON_GetArraySize(fails) == 0;
    if (!s->o.quiet)
        print_summary(s, f, fails, ok);
    if (s->o.json_out) {
        write_json(s, f, fails, ok);
        fails = NULL;
    }
    cJSON_Delete(fails);
    return ok;
}
