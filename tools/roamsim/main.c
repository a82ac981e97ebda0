/*
 * roamsim — simulated LoRaWAN gateways and class A devices for roamhub's demo, tests and load
 * generation (docs/roamsim.md).
 *
 * Gateways speak the Semtech UDP protocol (GWMP v2) to a network server: PULL_DATA keep-alive,
 * PUSH_DATA with one rxpk per heard uplink, TX_ACK for every PULL_RESP. Each gateway has a
 * simulated free-running µs counter (tmst = its random offset + real time since start), so a
 * downlink is on time when its txpk.tmst is the uplink tmst + 1 s / + 2 s (data RX1/RX2) or
 * + 5 s / + 6 s (join-accept) on the right frequency and data rate, and its PULL_RESP arrives
 * before the counter reaches that tmst. Devices (ABP or OTAA, LoRaWAN 1.0.x, real crypto from
 * proto/lw_*) join, send data at a configured rate, check and decrypt downlinks, and ACK
 * confirmed downlinks in their next uplink.
 *
 * The run ends when every device has sent its uplinks and its last receive windows are over
 * (or after --duration); a summary is printed (and written as JSON with --json). Exit status 0
 * only when every expectation holds (joins, ACKs, downlinks, no late or wrong downlink), 1
 * otherwise, 2 on bad usage or start-up errors.
 */
#include "devcfg.h"
#include "gwmp.h"
#include "lw_frame.h"
#include "region.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"
#include "sim_dev.h"
#include "tl_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_GW 64
#define MAX_APP_RECORDS 10000
#define RX_SLACK_MS 500 /* after RX2 opens, how long a device still waits for its downlink */

typedef struct opts {
    char ns_host[64];
    uint16_t ns_port;
    size_t n_gw;
    uint64_t gw_eui_start;
    double lat, lon;
    unsigned uplinks;
    unsigned interval_ms;
    unsigned start_spread_ms;
    uint8_t fport;
    size_t payload_size;
    bool fixed_payload;
    uint8_t payload[242];
    double confirmed_ratio;
    double duration_s;
    unsigned keepalive_s;
    int dr;
    region_id_t region;
    uint64_t seed;
    long expect_joins, expect_acks, expect_downlinks, max_late, max_wrong;
    bool no_expect;
    unsigned join_attempts;
    unsigned linger_ms;
    const char *json_out, *log_out;
    bool quiet;
} opts_t;

struct sim;

typedef struct sgw {
    struct sim *sim;
    unsigned idx;
    uint64_t eui;
    int fd;
    struct event *ev, *keepalive;
    uint32_t tmst_offset;
    bool pull_acked;
    uint16_t token;
} sgw_t;

typedef enum { ST_JOIN, ST_DATA, ST_DONE } dstate_t;

typedef struct last_up {
    bool valid, join, confirmed, answered;
    uint32_t fcnt;
    uint32_t freq_hz;
    uint8_t dr;
    uint32_t tmst[MAX_GW];
    uint64_t sent_ns;
} last_up_t;

typedef struct sdev {
    struct sim *sim;
    size_t idx;
    sim_dev_t d;
    struct event *timer;
    dstate_t st;
    unsigned sent, join_tries;
    last_up_t last;
    bool awaiting;          /* join-accept, or ACK of a confirmed uplink */
    uint64_t await_until_ns;
    uint64_t next_send_ns;
} sdev_t;

typedef struct app_rec {
    uint64_t dev_eui;
    uint32_t fcnt;
    uint8_t fport;
    size_t len;
    uint8_t data[242];
} app_rec_t;

typedef struct sim {
    opts_t o;
    struct event_base *base;
    sgw_t gw[MAX_GW];
    sdev_t *devs;
    size_t ndev;
    tl_map_t by_addr;       /* DevAddr -> sdev_t* (active devices) */
    tl_map_t join_wait;     /* (gw idx << 32 | uplink tmst) -> sdev_t* awaiting a join-accept */
    uint64_t start_ns;
    tl_rng_t rng;
    FILE *log;
    size_t ndone;
    struct event *end_ev, *start_ev, *sig_ev;
    bool started, finished, interrupted;
    /* counters */
    uint64_t uplinks, confirmed, acks, unacked, join_requests, joins, join_failures;
    uint64_t dl_total, dl_on_time, dl_late, dl_wrong, dl_rx1, dl_rx2, dl_app, dl_mic;
    uint64_t push_sent, push_acked, pull_sent, pull_acked, tx_ack_sent;
    double *rtt;
    size_t nrtt, caprtt;
    double *jrtt;
    size_t njrtt, capjrtt;
    app_rec_t *apps;
    size_t napps;
    char first_wrong[160];
} sim_t;

static uint32_t gw_tmst(const sgw_t *g)
{
    return g->tmst_offset + (uint32_t)((rh_mono_ns() - g->sim->start_ns) / 1000u);
}

static void push_sample(double **arr, size_t *n, size_t *cap, double v)
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

static void log_line(sim_t *s, cJSON *o)
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

static void add_hex(cJSON *o, const char *k, const uint8_t *b, size_t n)
{
    char h[2 * 256 + 1];
    rh_hex_encode(b, n, h, 0);
    cJSON_AddStringToObject(o, k, h);
}

static void add_eui(cJSON *o, const char *k, uint64_t e)
{
    char h[17];
    rh_eui64_format(e, h);
    cJSON_AddStringToObject(o, k, h);
}

/* ------------------------------------------------------------------ radio */

static uint32_t channel_freq(const sim_t *s, unsigned i)
{
    if (s->o.region == REGION_US915)
        return 902300000u + (i % 8) * 200000u;
    static const uint32_t eu[3] = {868100000u, 868300000u, 868500000u};
    return eu[i % 3];
}

/* Sends the frame as heard by every gateway; records the per-gateway tmst. */
static void transmit(sim_t *s, sdev_t *dv, const uint8_t *phy, size_t len)
{
    last_up_t *l = &dv->last;
    l->freq_hz = channel_freq(s, (unsigned)(tl_rng_next(&s->rng) % 8));
    l->dr = (uint8_t)s->o.dr;
    l->sent_ns = rh_mono_ns();
    l->answered = false;
    l->valid = true;
    gwmp_rxpk_t r;
    memset(&r, 0, sizeof r);
    region_dr_to_sf_bw(s->o.region, l->dr, &r.sf, &r.bw_khz);
    r.freq_hz = l->freq_hz;
    r.stat = 1;
    snprintf(r.codr, sizeof r.codr, "4/5");
    memcpy(r.data, phy, len);
    r.size = len;
    for (size_t g = 0; g < s->o.n_gw; g++) {
        sgw_t *gw = &s->gw[g];
        r.tmst = gw_tmst(gw);
        r.chan = 0;
        r.rssi = -60 - (int)(g * 7) - (int)(tl_rng_next(&s->rng) % 10);
        r.lsnr = 9.5 - (double)g * 2.0;
        l->tmst[g] = r.tmst;
        cJSON *root = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(root, "rxpk");
        cJSON *it = gwmp_rxpk_to_json(&r);
        if (!arr || !it || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            cJSON_Delete(root);
            continue;
        }
        if (s->o.lat != 0 || s->o.lon != 0) {
            cJSON *st = cJSON_AddObjectToObject(root, "stat");
            cJSON_AddNumberToObject(st, "lati", s->o.lat + (double)g * 0.001);
            cJSON_AddNumberToObject(st, "long", s->o.lon + (double)g * 0.001);
            cJSON_AddNumberToObject(st, "alti", 10);
        }
        char *js = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!js)
            continue;
        uint8_t buf[2048];
        size_t n = gwmp_write(buf, sizeof buf, GWMP_PUSH_DATA, gw->token++, gw->eui, js, strlen(js));
        cJSON_free(js);
        if (n && send(gw->fd, buf, n, 0) >= 0)
            s->push_sent++;
    }
}

/* ------------------------------------------------------------------ devices */

static void dev_schedule(sdev_t *dv);

static void dev_done(sdev_t *dv)
{
    if (dv->st == ST_DONE)
        return;
    dv->st = ST_DONE;
    dv->sim->ndone++;
    if (dv->sim->ndone == dv->sim->ndev && dv->sim->end_ev) {
        struct timeval tv = {dv->sim->o.linger_ms / 1000, (dv->sim->o.linger_ms % 1000) * 1000};
        event_add(dv->sim->end_ev, &tv);
    }
}

static void join_wait_del(sim_t *s, sdev_t *dv)
{
    for (size_t g = 0; g < s->o.n_gw; g++) {
        uint64_t k = ((uint64_t)g << 32) | dv->last.tmst[g];
        if (tl_map_get(&s->join_wait, k) == dv)
            tl_map_del(&s->join_wait, k);
    }
}

static void send_join(sim_t *s, sdev_t *dv)
{
    uint8_t phy[LW_JOIN_REQUEST_LEN];
    size_t len;
    if (sim_build_join(&dv->d, phy, &len) < 0) {
        dev_done(dv);
        return;
    }
    dv->last.join = true;
    dv->last.confirmed = false;
    transmit(s, dv, phy, len);
    for (size_t g = 0; g < s->o.n_gw; g++)
        tl_map_put(&s->join_wait, ((uint64_t)g << 32) | dv->last.tmst[g], dv);
    s->join_requests++;
    dv->join_tries++;
    dv->awaiting = true;
    dv->await_until_ns = rh_mono_ns() + (6000ull + RX_SLACK_MS) * 1000000ull;
    if (s->log) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "event", "join_request");
        add_eui(o, "dev_eui", dv->d.cfg.dev_eui);
        cJSON_AddNumberToObject(o, "dev_nonce", dv->d.last_dev_nonce);
        add_hex(o, "phy_hex", phy, len);
        cJSON *t = cJSON_AddArrayToObject(o, "tmst");
        for (size_t g = 0; t && g < s->o.n_gw; g++)
            cJSON_AddItemToArray(t, cJSON_CreateNumber(dv->last.tmst[g]));
        log_line(s, o);
    }
}

static void send_data(sim_t *s, sdev_t *dv)
{
    uint8_t pl[242], phy[LW_PHY_MAX];
    size_t plen = s->o.payload_size;
    if (s->o.fixed_payload)
        memcpy(pl, s->o.payload, plen);
    else
        for (size_t i = 0; i < plen; i++)
            pl[i] = (uint8_t)tl_rng_next(&s->rng);
    bool confirmed = s->o.confirmed_ratio > 0 && tl_rng_unit(&s->rng) < s->o.confirmed_ratio;
    uint32_t fcnt = dv->d.fcnt_up;
    size_t len;
    if (sim_build_data(&dv->d, confirmed, s->o.fport, pl, plen, phy, &len) < 0) {
        dev_done(dv);
        return;
    }
    dv->last.join = false;
    dv->last.confirmed = confirmed;
    dv->last.fcnt = fcnt;
    transmit(s, dv, phy, len);
    s->uplinks++;
    dv->sent++;
    if (confirmed) {
        s->confirmed++;
        dv->awaiting = true;
        dv->await_until_ns = rh_mono_ns() + (2000ull + RX_SLACK_MS) * 1000000ull;
    }
    if (s->log) {
        cJSON *o = cJSON_CreateObject();
        char a[9];
        cJSON_AddStringToObject(o, "event", "uplink");
        add_eui(o, "dev_eui", dv->d.cfg.dev_eui);
        rh_hex_format_be(dv->d.devaddr, 4, a, 0);
        cJSON_AddStringToObject(o, "dev_addr", a);
        cJSON_AddNumberToObject(o, "fcnt", fcnt);
        cJSON_AddNumberToObject(o, "fport", s->o.fport);
        cJSON_AddBoolToObject(o, "confirmed", confirmed);
        add_hex(o, "payload_hex", pl, plen);
        add_hex(o, "phy_hex", phy, len);
        cJSON_AddNumberToObject(o, "freq", gwmp_hz_to_mhz(dv->last.freq_hz));
        cJSON_AddNumberToObject(o, "dr", dv->last.dr);
        cJSON *t = cJSON_AddArrayToObject(o, "tmst");
        for (size_t g = 0; t && g < s->o.n_gw; g++)
            cJSON_AddItemToArray(t, cJSON_CreateNumber(dv->last.tmst[g]));
        log_line(s, o);
    }
}

/* The receive windows of the last uplink are over without the expected downlink. */
static void await_expired(sim_t *s, sdev_t *dv)
{
    dv->awaiting = false;
    if (dv->last.join) {
        join_wait_del(s, dv);
        if (dv->join_tries >= s->o.join_attempts) {
            s->join_failures++;
            RH_LOG(RH_LOG_WARN, "sim", "join failed deveui=%016llx attempts=%u",
                   (unsigned long long)dv->d.cfg.dev_eui, dv->join_tries);
            dev_done(dv);
        } else {
            dv->next_send_ns = rh_mono_ns();
        }
    } else if (dv->last.confirmed) {
        s->unacked++;
    }
}

static void dev_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    sdev_t *dv = arg;
    sim_t *s = dv->sim;
    (void)fd;
    (void)ev;
    uint64_t now = rh_mono_ns();
    if (dv->st == ST_DONE)
        return;
    if (dv->awaiting && now >= dv->await_until_ns)
        await_expired(s, dv);
    if (dv->st == ST_DONE)
        return;
    if (now >= dv->next_send_ns && !(dv->st == ST_JOIN && dv->awaiting)) {
        if (dv->st == ST_JOIN) {
            send_join(s, dv);
        } else if (dv->sent < s->o.uplinks) {
            if (dv->awaiting) /* a new uplink closes the previous receive windows */
                await_expired(s, dv);
            send_data(s, dv);
            dv->next_send_ns = now + (uint64_t)s->o.interval_ms * 1000000ull;
        }
    }
    if (dv->st == ST_DATA && dv->sent >= s->o.uplinks && !dv->awaiting) {
        dev_done(dv);
        return;
    }
    dev_schedule(dv);
}

static void dev_schedule(sdev_t *dv)
{
    uint64_t now = rh_mono_ns(), at = UINT64_MAX;
    bool can_send = !(dv->st == ST_JOIN && dv->awaiting) &&
                    (dv->st == ST_JOIN || dv->sent < dv->sim->o.uplinks);
    if (can_send)
        at = dv->next_send_ns;
    if (dv->awaiting && dv->await_until_ns < at)
        at = dv->await_until_ns;
    if (at == UINT64_MAX) { /* nothing left to send or to wait for (e.g. --uplinks 0) */
        if (dv->st != ST_DONE)
            dev_done(dv);
        return;
    }
    uint64_t d = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(d / 1000000000ull), (suseconds_t)((d % 1000000000ull) / 1000)};
    event_add(dv->timer, &tv);
}

/* ------------------------------------------------------------------ downlinks */

static void wrong(sim_t *s, const char *fmt, unsigned long long eui, const char *why)
{
    s->dl_wrong++;
    char buf[160];
    snprintf(buf, sizeof buf, fmt, eui, why);
    if (!s->first_wrong[0])
        snprintf(s->first_wrong, sizeof s->first_wrong, "%s", buf);
    RH_LOG(RH_LOG_WARN, "sim", "wrong downlink %s", buf);
}

static void on_pull_resp(sim_t *s, sgw_t *gw, const gwmp_pkt_t *p)
{
    uint32_t now_tmst = gw_tmst(gw);
    uint64_t now = rh_mono_ns();
    gwmp_txpk_t t;
    rh_diag_t d;
    int rc = gwmp_txpk_parse(p->json, p->json_len, &t, &d);
    s->dl_total++;
    /* TX_ACK: the gateway's verdict on the schedule. */
    const char *err = "NONE";
    if (rc == RH_OK && !t.imme && (int32_t)(t.tmst - now_tmst) <= 0)
        err = "TOO_LATE";
    char js[64];
    int jn = snprintf(js, sizeof js, "{\"txpk_ack\":{\"error\":\"%s\"}}", err);
    uint8_t buf[128];
    size_t n = gwmp_write(buf, sizeof buf, GWMP_TX_ACK, p->token, gw->eui, js, (size_t)jn);
    if (n && send(gw->fd, buf, n, 0) >= 0)
        s->tx_ack_sent++;
    if (rc < 0) {
        wrong(s, "txpk %llx%s", 0, d.text);
        return;
    }
    lw_frame_t f;
    if (lw_frame_decode(t.data, t.size, &f, &d) < 0) {
        wrong(s, "frame %llx undecodable: %s", 0, d.text);
        return;
    }
    sdev_t *dv = NULL;
    bool join = f.mtype == LW_MTYPE_JOIN_ACCEPT;
    if (join) {
        dv = tl_map_get(&s->join_wait, ((uint64_t)gw->idx << 32) | (uint32_t)(t.tmst - 5000000u));
        if (!dv)
            dv = tl_map_get(&s->join_wait, ((uint64_t)gw->idx << 32) | (uint32_t)(t.tmst - 6000000u));
        if (!dv) {
            wrong(s, "join-accept %llx matches no join-request's RX1/RX2 at this gateway%s", 0, "");
            return;
        }
    } else if (f.mtype == LW_MTYPE_UNCONFIRMED_DOWN || f.mtype == LW_MTYPE_CONFIRMED_DOWN) {
        dv = tl_map_get(&s->by_addr, f.u.data.devaddr);
        if (!dv) {
            wrong(s, "data downlink for unknown DevAddr %08llx%s", f.u.data.devaddr, "");
            return;
        }
    } else {
        wrong(s, "frame %llx is not a downlink%s", 0, "");
        return;
    }
    unsigned long long eui = (unsigned long long)dv->d.cfg.dev_eui;
    if (!dv->last.valid || dv->last.join != join) {
        wrong(s, "device %016llx: downlink without a matching uplink%s", eui, "");
        return;
    }
    if (dv->last.answered) {
        wrong(s, "device %016llx: second downlink for one uplink%s", eui, "");
        return;
    }
    int window;
    char why[96];
    sim_dl_verdict_t v = sim_dl_check(s->o.region, join, dv->last.tmst[gw->idx], dv->last.freq_hz,
                                      dv->last.dr, &t, now_tmst, &window, why);
    cJSON *lo = NULL;
    if (s->log) {
        lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "event", join ? "join_accept" : "downlink");
        add_eui(lo, "dev_eui", dv->d.cfg.dev_eui);
        cJSON_AddNumberToObject(lo, "gateway", gw->idx);
        cJSON_AddNumberToObject(lo, "window", window);
        cJSON_AddStringToObject(lo, "verdict", v == SIM_DL_ON_TIME ? "on_time"
                                               : v == SIM_DL_LATE  ? "late"
                                                                   : "wrong");
        cJSON_AddNumberToObject(lo, "tmst", t.tmst);
        cJSON_AddNumberToObject(lo, "lead_ms", (double)(int32_t)(t.tmst - now_tmst) / 1000.0);
        if (why[0])
            cJSON_AddStringToObject(lo, "why", why);
    }
    if (v == SIM_DL_WRONG) {
        wrong(s, "device %016llx: %s", eui, why);
        if (lo)
            log_line(s, lo);
        return;
    }
    dv->last.answered = true;
    if (v == SIM_DL_LATE) {
        s->dl_late++;
        RH_LOG(RH_LOG_WARN, "sim", "late downlink deveui=%016llx why=\"%s\"", eui, why);
        if (lo)
            log_line(s, lo);
        return; /* a real device would not have heard it */
    }
    sim_rx_t rx;
    if (join) {
        rc = sim_accept_join(&dv->d, t.data, t.size, &rx);
        if (rc < 0) {
            s->dl_mic += rc == RH_EMIC;
            wrong(s, "device %016llx: join-accept refused: %s", eui, rh_strerror(rc));
            if (lo)
                log_line(s, lo);
            return;
        }
        join_wait_del(s, dv);
        tl_map_put(&s->by_addr, rx.devaddr, dv);
        s->joins++;
        push_sample(&s->jrtt, &s->njrtt, &s->capjrtt, (double)(now - dv->last.sent_ns) / 1e6);
        dv->awaiting = false;
        dv->st = ST_DATA;
        dv->next_send_ns = now + (uint64_t)s->o.interval_ms * 1000000ull;
        if (lo) {
            char a[9];
            rh_hex_format_be(rx.devaddr, 4, a, 0);
            cJSON_AddStringToObject(lo, "dev_addr", a);
        }
        event_del(dv->timer);
        dev_schedule(dv);
    } else {
        rc = sim_accept_data(&dv->d, t.data, t.size, &rx);
        if (rc < 0) {
            s->dl_mic += rc == RH_EMIC;
            wrong(s, "device %016llx: data downlink refused: %s", eui, rh_strerror(rc));
            if (lo)
                log_line(s, lo);
            return;
        }
        if (rx.ack) {
            if (dv->awaiting && dv->last.confirmed) {
                s->acks++;
                push_sample(&s->rtt, &s->nrtt, &s->caprtt, (double)(now - dv->last.sent_ns) / 1e6);
                dv->awaiting = false;
            } else {
                wrong(s, "device %016llx: ACK for an unconfirmed uplink%s", eui, "");
            }
        }
        if (rx.has_fport && rx.fport > 0) {
            s->dl_app++;
            if (s->napps < MAX_APP_RECORDS) {
                app_rec_t *a = &s->apps[s->napps++];
                a->dev_eui = dv->d.cfg.dev_eui;
                a->fcnt = rx.fcnt;
                a->fport = rx.fport;
                a->len = rx.len < sizeof a->data ? rx.len : sizeof a->data;
                memcpy(a->data, rx.payload, a->len);
            }
        }
        if (lo) {
            cJSON_AddNumberToObject(lo, "fcnt", rx.fcnt);
            cJSON_AddBoolToObject(lo, "ack", rx.ack);
            cJSON_AddBoolToObject(lo, "confirmed", rx.confirmed);
            if (rx.has_fport)
                cJSON_AddNumberToObject(lo, "fport", rx.fport);
            add_hex(lo, "payload_hex", rx.payload, rx.len);
        }
        if (dv->st == ST_DATA && dv->sent >= s->o.uplinks && !dv->awaiting)
            dev_done(dv);
    }
    s->dl_on_time++;
    if (window == 1)
        s->dl_rx1++;
    else
        s->dl_rx2++;
    if (lo)
        log_line(s, lo);
}

static void gw_read_cb(evutil_socket_t fd, short ev, void *arg)
{
    sgw_t *gw = arg;
    sim_t *s = gw->sim;
    (void)ev;
    uint8_t buf[GWMP_MAX_DATAGRAM];
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0)
            return;
        gwmp_pkt_t p;
        if (gwmp_parse(buf, (size_t)n, &p, NULL) < 0)
            continue;
        switch (p.ident) {
        case GWMP_PUSH_ACK:
            s->push_acked++;
            break;
        case GWMP_PULL_ACK:
            s->pull_acked++;
            gw->pull_acked = true;
            break;
        case GWMP_PULL_RESP:
            on_pull_resp(s, gw, &p);
            break;
        default:
            break;
        }
    }
}

static void send_pull(sgw_t *gw)
{
    uint8_t b[GWMP_EUI_HDR_LEN];
    size_t n = gwmp_write(b, sizeof b, GWMP_PULL_DATA, gw->token++, gw->eui, NULL, 0);
    if (send(gw->fd, b, n, 0) >= 0)
        gw->sim->pull_sent++;
}

static void keepalive_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    send_pull(arg);
}

/* ------------------------------------------------------------------ run control */

static void start_devices(sim_t *s)
{
    if (s->started)
        return;
    s->started = true;
    uint64_t now = rh_mono_ns();
    for (size_t i = 0; i < s->ndev; i++) {
        sdev_t *dv = &s->devs[i];
        uint64_t off = s->o.start_spread_ms ? tl_rng_next(&s->rng) % s->o.start_spread_ms : 0;
        dv->next_send_ns = now + off * 1000000ull;
        dev_schedule(dv);
    }
    if (s->ndev == 0 && s->end_ev) {
        struct timeval tv = {0, 0};
        event_add(s->end_ev, &tv);
    }
}

static void start_cb(evutil_socket_t fd, short ev, void *arg)
{
    sim_t *s = arg;
    (void)fd;
    (void)ev;
    bool all = true;
    for (size_t g = 0; g < s->o.n_gw; g++)
        all &= s->gw[g].pull_acked;
    if (all || rh_mono_ns() - s->start_ns > 2000000000ull) {
        if (!all)
            RH_LOG(RH_LOG_WARN, "sim", "not every gateway got a PULL_ACK; starting anyway");
        start_devices(s);
        return;
    }
    struct timeval tv = {0, 20000};
    event_add(s->start_ev, &tv);
}

static void end_cb(evutil_socket_t fd, short ev, void *arg)
{
    sim_t *s = arg;
    (void)fd;
    (void)ev;
    s->finished = true;
    event_base_loopbreak(s->base);
}

static void sig_cb(evutil_socket_t fd, short ev, void *arg)
{
    sim_t *s = arg;
    (void)fd;
    (void)ev;
    s->interrupted = true;
    event_base_loopbreak(s->base);
}

/* ------------------------------------------------------------------ options */

static int parse_hostport(const char *v, opts_t *o)
{
    const char *c = strrchr(v, ':');
    if (!c || (size_t)(c - v) >= sizeof o->ns_host || c == v)
        return -1;
    memcpy(o->ns_host, v, (size_t)(c - v));
    o->ns_host[c - v] = '\0';
    char *end;
    unsigned long p = strtoul(c + 1, &end, 10);
    if (*end || p == 0 || p > 65535)
        return -1;
    o->ns_port = (uint16_t)p;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: roamsim --ns HOST:PORT [options]   (docs/roamsim.md)\n"
        "  -c FILE                 JSON configuration (same keys as the long options, '_' for '-')\n"
        "  --ns HOST:PORT          GWMP (UDP) address of the network server\n"
        "  --gateways N            simulated gateways (default 1), --gateway-eui-start EUI\n"
        "  --lat DEG --lon DEG     gateway location reported in stat\n"
        "  --devices FILE          JSON array of devices (roamns format)\n"
        "  --devices-from-ns FILE  the devices of a roamns configuration file\n"
        "  --gen-otaa N | --gen-abp N  generate devices (--dev-eui-start, --join-eui,\n"
        "                          --dev-addr-start, --seed-keys TEXT; same rule as roamns)\n"
        "  --uplinks N             data uplinks per device (default 3)\n"
        "  --interval MS           between a device's uplinks (default 1000)\n"
        "  --start-spread MS       random start offset per device (default 0)\n"
        "  --fport P --payload-size B --payload-hex HEX --confirmed-ratio R (0..1)\n"
        "  --dr DR --region EU868|US915\n"
        "  --duration S            stop after S seconds at most (default 120)\n"
        "  --keepalive S           PULL_DATA period (default 5)\n"
        "  --join-attempts N       join-requests per OTAA device before giving up (default 3)\n"
        "  --expect-joins N --expect-acks N --expect-downlinks N --max-late N --max-wrong N\n"
        "  --no-expect             no default expectations (all joins, all ACKs, none late/wrong)\n"
        "  --json FILE             summary as JSON;  --log FILE  events as JSON lines\n"
        "  --seed N --linger MS --log-level LEVEL --quiet\n");
}

/* Turns the scalar keys of a -c FILE object into "--key value" arguments (placed before the
 * command line, which therefore overrides them); "devices"/"generate" stay structured. */
static int config_to_args(const char *path, char ***out, int *n, cJSON **keep, char **dir)
{
    cJSON *j = NULL;
    rh_diag_t d;
    rh_diag_clear(&d);
    if (tl_json_load(path, &j, &d) < 0 || !cJSON_IsObject(j)) {
        fprintf(stderr, "roamsim: %s\n", d.text[0] ? d.text : "config: expected a JSON object");
        cJSON_Delete(j);
        return -1;
    }
    char *copy = strdup(path);
    *dir = copy ? strdup(dirname(copy)) : NULL;
    free(copy);
    int cnt = cJSON_GetArraySize(j);
    char **a = calloc((size_t)cnt * 2 + 1, sizeof *a);
    if (!a) {
        cJSON_Delete(j);
        return -1;
    }
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        char key[64];
        char val[256];
        if (!strcmp(it->string, "devices") || !strcmp(it->string, "generate"))
            continue;
        snprintf(key, sizeof key, "--%s", it->string);
        for (char *p = key; *p; p++)
            if (*p == '_')
                *p = '-';
        if (cJSON_IsString(it))
            snprintf(val, sizeof val, "%s", it->valuestring);
        else if (cJSON_IsNumber(it))
            snprintf(val, sizeof val, "%.17g", it->valuedouble);
        else if (cJSON_IsBool(it))
            snprintf(val, sizeof val, "%s", cJSON_IsTrue(it) ? "true" : "false");
        else {
            fprintf(stderr, "roamsim: config.%s: expected a string, number or boolean\n", it->string);
            for (int i = 0; i < k; i++)
                free(a[i]);
            free(a);
            cJSON_Delete(j);
            return -1;
        }
        a[k++] = strdup(key);
        a[k++] = strdup(val);
    }
    *out = a;
    *n = k;
    *keep = j;
    return 0;
}

int main(int argc, char **argv)
{
    static sim_t S;
    sim_t *s = &S;
    opts_t *o = &s->o;
    o->n_gw = 1;
    o->gw_eui_start = 0x00800000A0000001ull;
    o->uplinks = 3;
    o->interval_ms = 1000;
    o->fport = 1;
    o->payload_size = 8;
    o->duration_s = 120;
    o->keepalive_s = 5;
    o->dr = -1;
    o->region = REGION_EU868;
    o->seed = 1;
    o->expect_joins = o->expect_acks = o->expect_downlinks = o->max_late = o->max_wrong = -1;
    o->join_attempts = 3;
    o->linger_ms = 300;
    const char *devices_file = NULL, *ns_config = NULL, *level = "warn";
    cJSON *gen = cJSON_CreateObject();
    bool have_gen = false;
    cJSON *cfg = NULL;
    char *cfg_dir = NULL;
    char **cargs = NULL;
    int ncargs = 0;
    int status = 2;
    signal(SIGPIPE, SIG_IGN);

    /* -c FILE first: its keys come before the command line, which overrides them. */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "-c") && !cfg) {
            if (config_to_args(argv[i + 1], &cargs, &ncargs, &cfg, &cfg_dir) < 0)
                return 2;
        }
    int total = ncargs + argc - 1;
    char **args = calloc((size_t)total + 1, sizeof *args);
    if (!args)
        return 2;
    for (int i = 0; i < ncargs; i++)
        args[i] = cargs[i];
    for (int i = 1; i < argc; i++)
        args[ncargs + i - 1] = argv[i];

    for (int i = 0; i < total; i++) {
        const char *a = args[i];
        const char *v = i + 1 < total ? args[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (++i, 1))
        char *end = NULL;
        if (ARG("-c")) {
        } else if (ARG("--ns")) {
            if (parse_hostport(v, o) < 0)
                goto bad;
        } else if (ARG("--gateways")) {
            o->n_gw = strtoul(v, &end, 10);
            if (*end || o->n_gw < 1 || o->n_gw > MAX_GW)
                goto bad;
        } else if (ARG("--gateway-eui-start")) {
            if (rh_eui64_parse(v, &o->gw_eui_start, NULL) < 0)
                goto bad;
        } else if (ARG("--lat")) {
            o->lat = strtod(v, &end);
        } else if (ARG("--lon")) {
            o->lon = strtod(v, &end);
        } else if (ARG("--devices")) {
            devices_file = v;
        } else if (ARG("--devices-from-ns")) {
            ns_config = v;
        } else if (ARG("--gen-otaa") || ARG("--gen-abp")) {
            cJSON_AddNumberToObject(gen, "count", strtod(v, &end));
            cJSON_AddStringToObject(gen, "activation", strstr(a, "otaa") ? "otaa" : "abp");
            have_gen = true;
        } else if (ARG("--dev-eui-start")) {
            cJSON_AddStringToObject(gen, "dev_eui_start", v);
        } else if (ARG("--join-eui")) {
            cJSON_AddStringToObject(gen, "join_eui", v);
        } else if (ARG("--dev-addr-start")) {
            cJSON_AddStringToObject(gen, "dev_addr_start", v);
        } else if (ARG("--seed-keys")) {
            cJSON_AddStringToObject(gen, "seed", v);
        } else if (ARG("--uplinks")) {
            o->uplinks = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--interval")) {
            o->interval_ms = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--start-spread")) {
            o->start_spread_ms = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--fport")) {
            unsigned long p = strtoul(v, &end, 10);
            if (p > 223)
                goto bad;
            o->fport = (uint8_t)p;
        } else if (ARG("--payload-size")) {
            o->payload_size = strtoul(v, &end, 10);
            if (o->payload_size > 222)
                goto bad;
        } else if (ARG("--payload-hex")) {
            if (rh_hex_decode(v, strlen(v), o->payload, sizeof o->payload, &o->payload_size,
                              "payload", NULL) < 0 || o->payload_size > 222)
                goto bad;
            o->fixed_payload = true;
        } else if (ARG("--confirmed-ratio")) {
            o->confirmed_ratio = strtod(v, &end);
            if (o->confirmed_ratio < 0 || o->confirmed_ratio > 1)
                goto bad;
        } else if (ARG("--dr")) {
            o->dr = (int)strtol(v, &end, 10);
        } else if (ARG("--region")) {
            if (region_parse(v, &o->region) < 0)
                goto bad;
        } else if (ARG("--duration")) {
            o->duration_s = strtod(v, &end);
            if (!(o->duration_s > 0) || o->duration_s > 1e6)
                goto bad;
        } else if (ARG("--keepalive")) {
            o->keepalive_s = (unsigned)strtoul(v, &end, 10);
            if (!o->keepalive_s)
                goto bad;
        } else if (ARG("--join-attempts")) {
            o->join_attempts = (unsigned)strtoul(v, &end, 10);
            if (!o->join_attempts)
                goto bad;
        } else if (ARG("--expect-joins")) {
            o->expect_joins = strtol(v, &end, 10);
        } else if (ARG("--expect-acks")) {
            o->expect_acks = strtol(v, &end, 10);
        } else if (ARG("--expect-downlinks")) {
            o->expect_downlinks = strtol(v, &end, 10);
        } else if (ARG("--max-late")) {
            o->max_late = strtol(v, &end, 10);
        } else if (ARG("--max-wrong")) {
            o->max_wrong = strtol(v, &end, 10);
        } else if (!strcmp(a, "--no-expect") || !strcmp(a, "--quiet")) {
            bool val = true;
            if (v && (!strcmp(v, "true") || !strcmp(v, "false")))
                val = !strcmp(args[++i], "true");
            if (!strcmp(a, "--quiet"))
                o->quiet = val;
            else
                o->no_expect = val;
        } else if (ARG("--json")) {
            o->json_out = v;
        } else if (ARG("--log")) {
            o->log_out = v;
        } else if (ARG("--seed")) {
            o->seed = strtoull(v, &end, 10);
        } else if (ARG("--linger")) {
            o->linger_ms = (unsigned)strtoul(v, &end, 10);
        } else if (ARG("--log-level")) {
            level = v;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            status = 0;
            goto out_args;
        } else {
            fprintf(stderr, "roamsim: unknown or incomplete option %s\n", a);
            usage(stderr);
            goto out_args;
        }
        if (end && *end) {
        bad:
            fprintf(stderr, "roamsim: bad value for %s\n", a);
            goto out_args;
        }
#undef ARG
    }
    if (!o->ns_port) {
        fprintf(stderr, "roamsim: --ns HOST:PORT is required\n");
        goto out_args;
    }
    if (rh_log_set_level_name(level) < 0) {
        fprintf(stderr, "roamsim: --log-level: expected err, warn, info or debug\n");
        goto out_args;
    }
    if (o->dr < 0)
        o->dr = o->region == REGION_US915 ? 3 : 5;
    uint8_t sf, updr;
    uint16_t bw;
    if (o->dr > 15 || region_dr_to_sf_bw(o->region, (uint8_t)o->dr, &sf, &bw) < 0 ||
        region_dr_from_sf_bw(o->region, sf, bw, true, &updr) < 0) {
        fprintf(stderr, "roamsim: --dr %d is not an uplink data rate of %s\n", o->dr,
                region_name(o->region));
        goto out_args;
    }

    /* Devices: config "devices"/"generate", --devices FILE, --devices-from-ns, --gen-*. */
    devcfg_t *devs = NULL;
    size_t ndev = 0;
    rh_diag_t d;
    {
        cJSON *dj = NULL, *gj = have_gen ? gen : NULL, *owned = NULL;
        const char *base = NULL;
        if (cfg) {
            dj = cJSON_GetObjectItemCaseSensitive(cfg, "devices");
            if (!gj)
                gj = cJSON_GetObjectItemCaseSensitive(cfg, "generate");
            base = cfg_dir;
        }
        char *nsdir = NULL;
        if (ns_config) {
            if (tl_json_load(ns_config, &owned, &d) < 0) {
                fprintf(stderr, "roamsim: %s\n", d.text);
                goto out_args;
            }
            dj = cJSON_GetObjectItemCaseSensitive(owned, "devices");
            if (!gj)
                gj = cJSON_GetObjectItemCaseSensitive(owned, "generate");
            char *c = strdup(ns_config);
            nsdir = c ? strdup(dirname(c)) : NULL;
            free(c);
            base = nsdir;
        }
        cJSON *fileref = NULL;
        if (devices_file) {
            fileref = cJSON_CreateString(devices_file);
            dj = fileref;
            base = NULL;
        }
        int rc = devcfg_load(dj, gj, base, &devs, &ndev, &d);
        cJSON_Delete(fileref);
        cJSON_Delete(owned);
        free(nsdir);
        if (rc < 0) {
            fprintf(stderr, "roamsim: %s\n", d.text);
            goto out_args;
        }
    }

    s->base = event_base_new();
    tl_rng_seed(&s->rng, o->seed);
    s->start_ns = rh_mono_ns();
    if (o->log_out && !(s->log = fopen(o->log_out, "w"))) {
        fprintf(stderr, "roamsim: %s: %s\n", o->log_out, strerror(errno));
        free(devs);
        goto out_args;
    }
    s->apps = calloc(MAX_APP_RECORDS, sizeof *s->apps);
    s->devs = calloc(ndev ? ndev : 1, sizeof *s->devs);
    if (!s->base || !s->apps || !s->devs || tl_map_init(&s->by_addr, ndev) < 0 ||
        tl_map_init(&s->join_wait, ndev * o->n_gw) < 0) {
        fprintf(stderr, "roamsim: out of memory\n");
        return 2;
    }
    /* Gateways: one connected UDP socket each. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(o->ns_port)};
    if (inet_pton(AF_INET, o->ns_host, &sa.sin_addr) != 1) {
        fprintf(stderr, "roamsim: --ns: %s is not a numeric IPv4 address\n", o->ns_host);
        return 2;
    }
    for (size_t g = 0; g < o->n_gw; g++) {
        sgw_t *gw = &s->gw[g];
        gw->sim = s;
        gw->idx = (unsigned)g;
        gw->eui = o->gw_eui_start + g;
        gw->tmst_offset = (uint32_t)tl_rng_next(&s->rng);
        gw->token = (uint16_t)tl_rng_next(&s->rng);
        gw->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (gw->fd < 0 || connect(gw->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            fprintf(stderr, "roamsim: gateway socket: %s\n", strerror(errno));
            return 2;
        }
        int rcv = 1 << 20;
        setsockopt(gw->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        gw->ev = event_new(s->base, gw->fd, EV_READ | EV_PERSIST, gw_read_cb, gw);
        gw->keepalive = event_new(s->base, -1, EV_PERSIST, keepalive_cb, gw);
        struct timeval ka = {o->keepalive_s, 0};
        event_add(gw->ev, NULL);
        event_add(gw->keepalive, &ka);
        send_pull(gw);
    }
    size_t n_otaa = 0;
    for (size_t i = 0; i < ndev; i++) {
        sdev_t *dv = &s->devs[i];
        dv->sim = s;
        dv->idx = i;
        if (sim_dev_init(&dv->d, &devs[i], (uint16_t)tl_rng_next(&s->rng)) < 0) {
            fprintf(stderr, "roamsim: device keys: OpenSSL failed\n");
            return 2;
        }
        dv->st = devs[i].otaa ? ST_JOIN : ST_DATA;
        n_otaa += devs[i].otaa;
        if (!devs[i].otaa)
            tl_map_put(&s->by_addr, dv->d.devaddr, dv);
        dv->timer = evtimer_new(s->base, dev_timer_cb, dv);
    }
    s->ndev = ndev;
    free(devs);
    s->end_ev = evtimer_new(s->base, end_cb, s);
    s->start_ev = evtimer_new(s->base, start_cb, s);
    s->sig_ev = evsignal_new(s->base, SIGINT, sig_cb, s);
    struct event *sig_term = evsignal_new(s->base, SIGTERM, sig_cb, s);
    struct event *limit = evtimer_new(s->base, end_cb, s);
    event_add(s->sig_ev, NULL);
    event_add(sig_term, NULL);
    struct timeval lim = {(time_t)o->duration_s,
                          (suseconds_t)((o->duration_s - (double)(time_t)o->duration_s) * 1e6)};
    event_add(limit, &lim);
    struct timeval st = {0, 20000};
    event_add(s->start_ev, &st);

    event_base_dispatch(s->base);

    /* ------------------------------------------------ summary and expectations */
    double elapsed = (double)(rh_mono_ns() - s->start_ns) / 1e9;
    size_t pending_dev = s->ndev - s->ndone;
    double p50 = 0, p99 = 0, pmax = 0, j50 = 0;
    if (s->nrtt) {
        p50 = tl_percentile(s->rtt, s->nrtt, 50);
        p99 = tl_percentile(s->rtt, s->nrtt, 99);
        pmax = s->rtt[s->nrtt - 1];
    }
    if (s->njrtt)
        j50 = tl_percentile(s->jrtt, s->njrtt, 50);
    long exp_joins = o->expect_joins >= 0 ? o->expect_joins : o->no_expect ? 0 : (long)n_otaa;
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
    bool ok = cJSON_GetArraySize(fails) == 0;

    if (!o->quiet) {
        printf("roamsim: %zu gateways, %zu devices (%zu OTAA), %.1f s\n", o->n_gw, s->ndev, n_otaa,
               elapsed);
        printf("  uplinks sent      %llu (confirmed %llu, %.1f/s)\n", (unsigned long long)s->uplinks,
               (unsigned long long)s->confirmed, elapsed > 0 ? (double)s->uplinks / elapsed : 0);
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
               "p99 %.2f ms, max %.2f ms (n=%zu)\n", p50, p99, pmax, s->nrtt);
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
    if (o->json_out) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "elapsed_s", elapsed);
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
        cJSON_AddNumberToObject(rt, "p50", p50);
        cJSON_AddNumberToObject(rt, "p99", p99);
        cJSON_AddNumberToObject(rt, "max", pmax);
        cJSON_AddNumberToObject(j, "join_rtt_ms_p50", j50);
        cJSON *gw = cJSON_AddObjectToObject(j, "gwmp");
        cJSON_AddNumberToObject(gw, "push_data", (double)s->push_sent);
        cJSON_AddNumberToObject(gw, "push_ack", (double)s->push_acked);
        cJSON_AddNumberToObject(gw, "pull_data", (double)s->pull_sent);
        cJSON_AddNumberToObject(gw, "pull_ack", (double)s->pull_acked);
        cJSON_AddNumberToObject(gw, "tx_ack", (double)s->tx_ack_sent);
        cJSON *apps = cJSON_AddArrayToObject(j, "app_downlinks");
        for (size_t i = 0; apps && i < s->napps; i++) {
            cJSON *a = cJSON_CreateObject();
            add_eui(a, "dev_eui", s->apps[i].dev_eui);
            cJSON_AddNumberToObject(a, "fcnt", s->apps[i].fcnt);
            cJSON_AddNumberToObject(a, "fport", s->apps[i].fport);
            add_hex(a, "payload_hex", s->apps[i].data, s->apps[i].len);
            cJSON_AddItemToArray(apps, a);
        }
        cJSON_AddBoolToObject(j, "ok", ok);
        cJSON_AddItemToObject(j, "failures", fails);
        fails = NULL;
        char *txt = cJSON_Print(j);
        cJSON_Delete(j);
        if (!txt || tl_write_file_atomic(o->json_out, txt, strlen(txt)) < 0)
            fprintf(stderr, "roamsim: cannot write %s\n", o->json_out);
        cJSON_free(txt);
    }
    cJSON_Delete(fails);

    /* cleanup */
    for (size_t i = 0; i < s->ndev; i++) {
        sim_dev_fini(&s->devs[i].d);
        if (s->devs[i].timer)
            event_free(s->devs[i].timer);
    }
    for (size_t g = 0; g < o->n_gw; g++) {
        event_free(s->gw[g].ev);
        event_free(s->gw[g].keepalive);
        close(s->gw[g].fd);
    }
    event_free(s->end_ev);
    event_free(s->start_ev);
    event_free(s->sig_ev);
    event_free(sig_term);
    event_free(limit);
    event_base_free(s->base);
    tl_map_fini(&s->by_addr);
    tl_map_fini(&s->join_wait);
    free(s->devs);
    free(s->apps);
    free(s->rtt);
    free(s->jrtt);
    if (s->log)
        fclose(s->log);
    status = ok ? 0 : 1;
out_args:
    cJSON_Delete(gen);
    cJSON_Delete(cfg);
    free(cfg_dir);
    for (int i = 0; i < ncargs; i++)
        free(cargs[i]);
    free(cargs);
    free(args);
    return status;
}
