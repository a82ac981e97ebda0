/*
 * rs_dev.c — roamsim's class A devices (see roamsim.h): each device has one timer that sends its
 * join-requests (until accepted or o.join_attempts) and data uplinks (o.uplinks, o.interval_ms
 * apart, a share o.confirmed_ratio confirmed) and closes its receive windows. Downlinks are
 * matched to the device (join-accept: by gateway and the join-request's tmst; data: by DevAddr),
 * judged against the last uplink (sim_dl_check) and opened with the device's keys.
 */
#include "roamsim.h"

#include "lw_frame.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdlib.h>
#include <string.h>

static void dev_schedule(rs_dev_t *dv);

static void dev_done(rs_dev_t *dv)
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

static void join_wait_del(rs_sim_t *s, rs_dev_t *dv)
{
    for (size_t g = 0; g < s->o.n_gw; g++) {
        uint64_t k = ((uint64_t)g << 32) | dv->last.tmst[g];
        if (tl_map_get(&s->join_wait, k) == dv)
            tl_map_del(&s->join_wait, k);
    }
}

static void send_join(rs_sim_t *s, rs_dev_t *dv)
{
    uint8_t phy[LW_JOIN_REQUEST_LEN];
    size_t len;
    if (sim_build_join(&dv->d, phy, &len) < 0) {
        dev_done(dv);
        return;
    }
    dv->last.join = true;
    dv->last.confirmed = false;
    rs_gw_transmit(s, &dv->last, phy, len);
    for (size_t g = 0; g < s->o.n_gw; g++)
        tl_map_put(&s->join_wait, ((uint64_t)g << 32) | dv->last.tmst[g], dv);
    s->join_requests++;
    dv->join_tries++;
    dv->awaiting = true;
    dv->await_until_ns = rh_mono_ns() + (6000ull + RS_RX_SLACK_MS) * 1000000ull;
    if (s->log) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "event", "join_request");
        rs_json_add_eui(o, "dev_eui", dv->d.cfg.dev_eui);
        cJSON_AddNumberToObject(o, "dev_nonce", dv->d.last_dev_nonce);
        rs_json_add_hex(o, "phy_hex", phy, len);
        cJSON *t = cJSON_AddArrayToObject(o, "tmst");
        for (size_t g = 0; t && g < s->o.n_gw; g++)
            cJSON_AddItemToArray(t, cJSON_CreateNumber(dv->last.tmst[g]));
        rs_log_event(s, o);
    }
}

static void send_data(rs_sim_t *s, rs_dev_t *dv)
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
    rs_gw_transmit(s, &dv->last, phy, len);
    s->uplinks++;
    dv->sent++;
    if (confirmed) {
        s->confirmed++;
        dv->awaiting = true;
        dv->await_until_ns = rh_mono_ns() + (2000ull + RS_RX_SLACK_MS) * 1000000ull;
    }
    if (s->log) {
        cJSON *o = cJSON_CreateObject();
        char a[9];
        cJSON_AddStringToObject(o, "event", "uplink");
        rs_json_add_eui(o, "dev_eui", dv->d.cfg.dev_eui);
        rh_hex_format_be(dv->d.devaddr, 4, a, 0);
        cJSON_AddStringToObject(o, "dev_addr", a);
        cJSON_AddNumberToObject(o, "fcnt", fcnt);
        cJSON_AddNumberToObject(o, "fport", s->o.fport);
        cJSON_AddBoolToObject(o, "confirmed", confirmed);
        rs_json_add_hex(o, "payload_hex", pl, plen);
        rs_json_add_hex(o, "phy_hex", phy, len);
        cJSON_AddNumberToObject(o, "freq", gwmp_hz_to_mhz(dv->last.freq_hz));
        cJSON_AddNumberToObject(o, "dr", dv->last.dr);
        cJSON *t = cJSON_AddArrayToObject(o, "tmst");
        for (size_t g = 0; t && g < s->o.n_gw; g++)
            cJSON_AddItemToArray(t, cJSON_CreateNumber(dv->last.tmst[g]));
        rs_log_event(s, o);
    }
}

/* The receive windows of the last uplink are over without the expected downlink. */
static void await_expired(rs_sim_t *s, rs_dev_t *dv)
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
    rs_dev_t *dv = arg;
    rs_sim_t *s = dv->sim;
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

static void dev_schedule(rs_dev_t *dv)
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

static void wrong(rs_sim_t *s, const char *fmt, unsigned long long eui, const char *why)
{
    s->dl_wrong++;
    char buf[160];
    snprintf(buf, sizeof buf, fmt, eui, why);
    if (!s->first_wrong[0])
        snprintf(s->first_wrong, sizeof s->first_wrong, "%s", buf);
    RH_LOG(RH_LOG_WARN, "sim", "wrong downlink %s", buf);
}

void rs_dev_downlink(rs_sim_t *s, rs_gw_t *gw, const gwmp_txpk_t *t, const rh_diag_t *why_txpk,
                     uint32_t now_tmst, uint64_t now)
{
    int rc;
    rh_diag_t d;
    if (!t) {
        wrong(s, "txpk %llx%s", 0, why_txpk->text);
        return;
    }
    lw_frame_t f;
    if (lw_frame_decode(t->data, t->size, &f, &d) < 0) {
        wrong(s, "frame %llx undecodable: %s", 0, d.text);
        return;
    }
    rs_dev_t *dv = NULL;
    bool join = f.mtype == LW_MTYPE_JOIN_ACCEPT;
    if (join) {
        dv = tl_map_get(&s->join_wait, ((uint64_t)gw->idx << 32) | (uint32_t)(t->tmst - 5000000u));
        if (!dv)
            dv = tl_map_get(&s->join_wait, ((uint64_t)gw->idx << 32) | (uint32_t)(t->tmst - 6000000u));
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
                                      dv->last.dr, t, now_tmst, &window, why);
    cJSON *lo = NULL;
    if (s->log) {
        lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "event", join ? "join_accept" : "downlink");
        rs_json_add_eui(lo, "dev_eui", dv->d.cfg.dev_eui);
        cJSON_AddNumberToObject(lo, "gateway", gw->idx);
        cJSON_AddNumberToObject(lo, "window", window);
        cJSON_AddStringToObject(lo, "verdict", v == SIM_DL_ON_TIME ? "on_time"
                                               : v == SIM_DL_LATE  ? "late"
                                                                   : "wrong");
        cJSON_AddNumberToObject(lo, "tmst", t->tmst);
        cJSON_AddNumberToObject(lo, "lead_ms", (double)(int32_t)(t->tmst - now_tmst) / 1000.0);
        if (why[0])
            cJSON_AddStringToObject(lo, "why", why);
    }
    if (v == SIM_DL_WRONG) {
        wrong(s, "device %016llx: %s", eui, why);
        if (lo)
            rs_log_event(s, lo);
        return;
    }
    dv->last.answered = true;
    if (v == SIM_DL_LATE) {
        s->dl_late++;
        RH_LOG(RH_LOG_WARN, "sim", "late downlink deveui=%016llx why=\"%s\"", eui, why);
        if (lo)
            rs_log_event(s, lo);
        return; /* a real device would not have heard it */
    }
    sim_rx_t rx;
    if (join) {
        rc = sim_accept_join(&dv->d, t->data, t->size, &rx);
        if (rc < 0) {
            s->dl_mic += rc == RH_EMIC;
            wrong(s, "device %016llx: join-accept refused: %s", eui, rh_strerror(rc));
            if (lo)
                rs_log_event(s, lo);
            return;
        }
        join_wait_del(s, dv);
        tl_map_put(&s->by_addr, rx.devaddr, dv);
        s->joins++;
        rs_sample_add(&s->jrtt, &s->njrtt, &s->capjrtt, (double)(now - dv->last.sent_ns) / 1e6);
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
        rc = sim_accept_data(&dv->d, t->data, t->size, &rx);
        if (rc < 0) {
            s->dl_mic += rc == RH_EMIC;
            wrong(s, "device %016llx: data downlink refused: %s", eui, rh_strerror(rc));
            if (lo)
                rs_log_event(s, lo);
            return;
        }
        if (rx.ack) {
            if (dv->awaiting && dv->last.confirmed) {
                s->acks++;
                rs_sample_add(&s->rtt, &s->nrtt, &s->caprtt, (double)(now - dv->last.sent_ns) / 1e6);
                dv->awaiting = false;
            } else {
                wrong(s, "device %016llx: ACK for an unconfirmed uplink%s", eui, "");
            }
        }
        if (rx.has_fport && rx.fport > 0) {
            s->dl_app++;
            if (s->napps < RS_MAX_APP_RECORDS) {
                rs_app_rec_t *a = &s->apps[s->napps++];
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
            rs_json_add_hex(lo, "payload_hex", rx.payload, rx.len);
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
        rs_log_event(s, lo);
}

void rs_dev_start_all(rs_sim_t *s)
{
    if (s->started)
        return;
    s->started = true;
    uint64_t now = rh_mono_ns();
    for (size_t i = 0; i < s->ndev; i++) {
        rs_dev_t *dv = &s->devs[i];
        uint64_t off = s->o.start_spread_ms ? tl_rng_next(&s->rng) % s->o.start_spread_ms : 0;
        dv->next_send_ns = now + off * 1000000ull;
        dev_schedule(dv);
    }
    if (s->ndev == 0 && s->end_ev) {
        struct timeval tv = {0, 0};
        event_add(s->end_ev, &tv);
    }
}

int rs_dev_init_all(rs_sim_t *s, const devcfg_t *devs, size_t ndev)
{
    for (size_t i = 0; i < ndev; i++) {
        rs_dev_t *dv = &s->devs[i];
        dv->sim = s;
        dv->idx = i;
        if (sim_dev_init(&dv->d, &devs[i], (uint16_t)tl_rng_next(&s->rng)) < 0) {
            fprintf(stderr, "roamsim: device keys: OpenSSL failed\n");
            return -1;
        }
        dv->st = devs[i].otaa ? ST_JOIN : ST_DATA;
        s->n_otaa += devs[i].otaa;
        if (!devs[i].otaa)
            tl_map_put(&s->by_addr, dv->d.devaddr, dv);
        dv->timer = evtimer_new(s->base, dev_timer_cb, dv);
    }
    s->ndev = ndev;
    return 0;
}

void rs_dev_fini_all(rs_sim_t *s)
{
    for (size_t i = 0; i < s->ndev; i++) {
        sim_dev_fini(&s->devs[i].d);
        if (s->devs[i].timer)
            event_free(s->devs[i].timer);
    }
}
