/*
 * rn_gw.c — roamns's GWMP (Semtech UDP packet forwarder) server: one non-blocking UDP socket in
 * the event loop. PUSH_DATA is acknowledged at once, its rxpk entries are deduplicated by
 * PHYPayload (copies from several gateways within dedup_window_ms become one uplink with several
 * receptions), then handed to rn_uplink(). PULL_DATA is acknowledged and records the address
 * downlinks go to. TX_ACK errors are counted and logged.
 * Invariant: an rn_up_t lives in ns->ups from its first copy until the sweep removes it
 * (window + RN_DEDUP_HOLD_MS after the first copy), so late copies are recognised as duplicates.
 */
#include "roamns.h"

#include "region.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RN_DEDUP_HOLD_MS 2000u

uint32_t rn_now_ms32(void) { return (uint32_t)rh_mono_ms(); }

rn_gw_t *rn_gw_find(roamns_t *ns, uint64_t eui)
{
    for (size_t i = 0; i < ns->ngws; i++)
        if (ns->gws[i].eui == eui)
            return &ns->gws[i];
    return NULL;
}

static rn_gw_t *gw_get(roamns_t *ns, uint64_t eui)
{
    rn_gw_t *g = rn_gw_find(ns, eui);
    if (g)
        return g;
    if (ns->ngws == ns->capgws) {
        if (ns->capgws >= 65536)
            return NULL;
        size_t nc = ns->capgws ? ns->capgws * 2 : 8;
        rn_gw_t *n = realloc(ns->gws, nc * sizeof *n);
        if (!n)
            return NULL;
        ns->gws = n;
        ns->capgws = nc;
    }
    g = &ns->gws[ns->ngws++];
    memset(g, 0, sizeof *g);
    g->eui = eui;
    char e[17];
    rh_eui64_format(eui, e);
    RH_LOG(RH_LOG_INFO, "gwmp", "new gateway gw=%s", e);
    return g;
}

static uint64_t fnv64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void up_free(rn_up_t *u)
{
    if (u->timer)
        event_free(u->timer);
    free(u);
}

static void up_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    rn_up_t *u = arg;
    (void)fd;
    (void)ev;
    u->done = true;
    rn_uplink(u->ns, u);
}

void rn_sweep(roamns_t *ns)
{
    uint64_t now = rh_mono_ms();
    /* Collect first (deleting while walking the table would skip entries). */
    size_t nkill = 0, cap = 64;
    uint64_t *kill = malloc(cap * sizeof *kill);
    if (!kill)
        return;
    for (size_t i = 0; i < ns->ups.cap; i++) {
        rn_up_t *u = ns->ups.vals[i];
        if (!u || !u->done)
            continue;
        if (now - u->first_ms < ns->cfg.dedup_window_ms + RN_DEDUP_HOLD_MS && !ns->stopping)
            continue;
        if (nkill == cap) {
            uint64_t *nk = realloc(kill, 2 * cap * sizeof *nk);
            if (!nk)
                break;
            kill = nk;
            cap *= 2;
        }
        kill[nkill++] = u->key;
    }
    for (size_t i = 0; i < nkill; i++) {
        rn_up_t *u = tl_map_get(&ns->ups, kill[i]);
        tl_map_del(&ns->ups, kill[i]);
        if (u)
            up_free(u);
    }
    free(kill);
}

static void on_rxpk(roamns_t *ns, uint64_t gw_eui, const gwmp_rxpk_t *r, uint32_t rx_ms)
{
    uint8_t dr;
    char e[17];
    rh_eui64_format(gw_eui, e);
    if (region_dr_from_sf_bw(ns->cfg.region, r->sf, r->bw_khz, true, &dr) < 0) {
        RH_LOG(RH_LOG_WARN, "gwmp", "rxpk dropped: no %s uplink data rate for SF%uBW%u gw=%s",
               region_name(ns->cfg.region), r->sf, r->bw_khz, e);
        ns->st.gwmp_bad++;
        return;
    }
    if (r->size == 0)
        return;
    uint64_t key = fnv64(r->data, r->size);
    rn_up_t *u = tl_map_get(&ns->ups, key);
    if (u && u->done && rh_mono_ms() - u->first_ms >= ns->cfg.dedup_window_ms + RN_DEDUP_HOLD_MS) {
        tl_map_del(&ns->ups, key); /* hold over: a new reception (a replay, if anything) */
        up_free(u);
        u = NULL;
    }
    if (u && (u->len != r->size || memcmp(u->phy, r->data, r->size) != 0)) {
        RH_LOG(RH_LOG_WARN, "gwmp", "dedup hash collision, frame dropped gw=%s", e);
        return;
    }
    rn_rx_t rx = {.gw_eui = gw_eui, .tmst = r->tmst, .freq_hz = r->freq_hz, .dr = dr,
                  .rssi = r->rssi, .snr = r->lsnr, .rx_ms = rx_ms};
    if (u) {
        if (u->done) {
            ns->st.duplicates++;
            RH_LOG(RH_LOG_DEBUG, "gwmp", "late copy of an uplink ignored gw=%s", e);
            return;
        }
        for (size_t i = 0; i < u->nrx; i++)
            if (u->rx[i].gw_eui == gw_eui)
                return;
        if (u->nrx < RN_MAX_GW_PER_UPLINK)
            u->rx[u->nrx++] = rx;
        return;
    }
    u = calloc(1, sizeof *u);
    if (!u)
        return;
    u->ns = ns;
    u->key = key;
    memcpy(u->phy, r->data, r->size);
    u->len = r->size;
    u->rx[0] = rx;
    u->nrx = 1;
    u->first_ms = rh_mono_ms();
    u->timer = evtimer_new(ns->base, up_timer_cb, u);
    if (!u->timer || tl_map_put(&ns->ups, key, u) < 0) {
        up_free(u);
        return;
    }
    ns->st.uplinks_received++;
    struct timeval tv = {ns->cfg.dedup_window_ms / 1000, (ns->cfg.dedup_window_ms % 1000) * 1000};
    evtimer_add(u->timer, &tv);
}

static void send_ack(roamns_t *ns, uint8_t ident, uint16_t token, const struct sockaddr *sa,
                     socklen_t sl)
{
    uint8_t b[GWMP_HDR_LEN];
    size_t n = gwmp_write(b, sizeof b, ident, token, 0, NULL, 0);
    if (sendto(ns->udp_fd, b, n, 0, sa, sl) < 0)
        RH_LOG(RH_LOG_WARN, "gwmp", "sendto failed err=%s", strerror(errno));
}

static void on_datagram(roamns_t *ns, const uint8_t *buf, size_t len, struct sockaddr_storage *ss,
                        socklen_t sl)
{
    gwmp_pkt_t p;
    rh_diag_t d;
    uint32_t rx_ms = rn_now_ms32();
    if (gwmp_parse(buf, len, &p, &d) < 0) {
        ns->st.gwmp_bad++;
        RH_LOG(RH_LOG_DEBUG, "gwmp", "bad datagram err=\"%s\"", d.text);
        return;
    }
    char e[17];
    rh_eui64_format(p.gw_eui, e);
    switch (p.ident) {
    case GWMP_PUSH_DATA: {
        ns->st.push_data++;
        send_ack(ns, GWMP_PUSH_ACK, p.token, (struct sockaddr *)ss, sl);
        rn_gw_t *g = gw_get(ns, p.gw_eui);
        gwmp_rxpk_t rx[GWMP_MAX_RXPK];
        size_t n = 0, skipped = 0;
        bool has_loc = false;
        double lat = 0, lon = 0;
        rh_diag_clear(&d);
        if (gwmp_push_parse(p.json, p.json_len, rx, GWMP_MAX_RXPK, &n, &skipped, &has_loc, &lat,
                            &lon, &d) < 0) {
            ns->st.gwmp_bad++;
            RH_LOG(RH_LOG_WARN, "gwmp", "PUSH_DATA refused gw=%s err=\"%s\"", e, d.text);
            return;
        }
        if (d.text[0])
            RH_LOG(RH_LOG_WARN, "gwmp", "rxpk skipped gw=%s err=\"%s\"", e, d.text);
        if (g) {
            g->last_seen_ms = rh_mono_ms();
            if (has_loc) {
                g->has_loc = true;
                g->lat = lat;
                g->lon = lon;
            }
        }
        for (size_t i = 0; i < n; i++)
            on_rxpk(ns, p.gw_eui, &rx[i], rx_ms);
        break;
    }
    case GWMP_PULL_DATA: {
        ns->st.pull_data++;
        send_ack(ns, GWMP_PULL_ACK, p.token, (struct sockaddr *)ss, sl);
        rn_gw_t *g = gw_get(ns, p.gw_eui);
        if (g) {
            if (!g->has_pull)
                RH_LOG(RH_LOG_INFO, "gwmp", "gateway downlink path open gw=%s", e);
            memcpy(&g->pull_addr, ss, sl);
            g->pull_len = sl;
            g->has_pull = true;
            g->last_seen_ms = rh_mono_ms();
        }
        break;
    }
    case GWMP_TX_ACK: {
        char err[32];
        ns->st.tx_ack++;
        if (gwmp_txack_parse(p.json, p.json_len, err, sizeof err) == RH_OK &&
            strcmp(err, "NONE") != 0) {
            ns->st.tx_ack_errors++;
            RH_LOG(RH_LOG_WARN, "gwmp", "TX_ACK error gw=%s error=%s", e, err);
        }
        break;
    }
    default:
        ns->st.gwmp_bad++;
        RH_LOG(RH_LOG_DEBUG, "gwmp", "unexpected GWMP packet ident=%u", p.ident);
    }
}

static void udp_cb(evutil_socket_t fd, short ev, void *arg)
{
    roamns_t *ns = arg;
    (void)ev;
    uint8_t buf[GWMP_MAX_DATAGRAM];
    for (int i = 0; i < 256; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&ss, &sl);
        if (n < 0)
            return;
        on_datagram(ns, buf, (size_t)n, &ss, sl);
    }
}

static void sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    rn_sweep(arg);
    rn_hub_sweep(arg);
}

int rn_gw_start(roamns_t *ns)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ns->cfg.gwmp_address, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(ns->cfg.gwmp_port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, ns->cfg.gwmp_address, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(ns->cfg.gwmp_port);
        sl = sizeof *s6;
    } else {
        RH_LOG(RH_LOG_ERR, "gwmp", "gwmp.address is not a numeric IP address addr=%s",
               ns->cfg.gwmp_address);
        return RH_EINVAL;
    }
    ns->udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ns->udp_fd < 0)
        return RH_EIO;
    int rcv = 4 << 20;
    setsockopt(ns->udp_fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (bind(ns->udp_fd, (struct sockaddr *)&ss, sl) < 0) {
        RH_LOG(RH_LOG_ERR, "gwmp", "bind failed addr=%s port=%u err=%s", ns->cfg.gwmp_address,
               ns->cfg.gwmp_port, strerror(errno));
        close(ns->udp_fd);
        ns->udp_fd = -1;
        return RH_EIO;
    }
    sl = sizeof ss;
    getsockname(ns->udp_fd, (struct sockaddr *)&ss, &sl);
    ns->gwmp_port = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
    ns->udp_ev = event_new(ns->base, ns->udp_fd, EV_READ | EV_PERSIST, udp_cb, ns);
    ns->sweep_ev = event_new(ns->base, -1, EV_PERSIST, sweep_cb, ns);
    if (!ns->udp_ev || !ns->sweep_ev)
        return RH_ENOMEM;
    struct timeval tv = {0, 500000};
    event_add(ns->udp_ev, NULL);
    event_add(ns->sweep_ev, &tv);
    return RH_OK;
}

void rn_gw_stop(roamns_t *ns)
{
    if (ns->udp_ev)
        event_free(ns->udp_ev);
    if (ns->sweep_ev)
        event_free(ns->sweep_ev);
    ns->udp_ev = ns->sweep_ev = NULL;
    for (size_t i = 0; i < ns->ups.cap; i++)
        if (ns->ups.vals && ns->ups.vals[i])
            up_free(ns->ups.vals[i]);
    tl_map_fini(&ns->ups);
    if (ns->udp_fd >= 0)
        close(ns->udp_fd);
    ns->udp_fd = -1;
    free(ns->gws);
    ns->gws = NULL;
    ns->ngws = ns->capgws = 0;
}

int rn_send_txpk(roamns_t *ns, uint64_t gw_eui, uint32_t tmst, uint32_t freq_hz, uint8_t dr,
                 const uint8_t *phy, size_t len)
{
    rn_gw_t *g = rn_gw_find(ns, gw_eui);
    if (!g || !g->has_pull)
        return RH_ENOTFOUND;
    gwmp_txpk_t t = {.imme = false, .tmst = tmst, .freq_hz = freq_hz, .rfch = 0, .ipol = true,
                     .size = len};
    if (len > sizeof t.data || region_dr_to_sf_bw(ns->cfg.region, dr, &t.sf, &t.bw_khz) < 0)
        return RH_EINVAL;
    t.powe = ns->cfg.tx_power >= 0 ? ns->cfg.tx_power : region_dl_power(ns->cfg.region, freq_hz);
    snprintf(t.codr, sizeof t.codr, "4/5");
    memcpy(t.data, phy, len);
    char *json;
    size_t jl;
    int rc = gwmp_txpk_build(&t, &json, &jl);
    if (rc < 0)
        return rc;
    uint8_t buf[1024];
    size_t n = gwmp_write(buf, sizeof buf, GWMP_PULL_RESP, ns->gw_token++, 0, json, jl);
    cJSON_free(json);
    if (!n)
        return RH_ERANGE;
    if (sendto(ns->udp_fd, buf, n, 0, (struct sockaddr *)&g->pull_addr, g->pull_len) < 0) {
        RH_LOG(RH_LOG_WARN, "gwmp", "PULL_RESP sendto failed err=%s", strerror(errno));
        return RH_EIO;
    }
    ns->st.downlinks_sent++;
    return RH_OK;
}
