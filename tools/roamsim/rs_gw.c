/*
 * rs_gw.c — roamsim's gateways (see roamsim.h): Semtech UDP protocol v2 towards the network
 * server, one connected socket per gateway. Each gateway has a free-running µs counter (its
 * random offset + real time since start); an uplink is pushed by every gateway with its own
 * tmst and a weaker RSSI/SNR the higher its index.
 */
#include "roamsim.h"

#include "rh_time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

uint32_t rs_gw_tmst(const rs_gw_t *g)
{
    return g->tmst_offset + (uint32_t)((rh_mono_ns() - g->sim->start_ns) / 1000u);
}

static uint32_t channel_freq(const rs_sim_t *s, unsigned i)
{
    if (s->o.region == REGION_US915)
        return 902300000u + (i % 8) * 200000u;
    static const uint32_t eu[3] = {868100000u, 868300000u, 868500000u};
    return eu[i % 3];
}

void rs_gw_transmit(rs_sim_t *s, rs_last_up_t *l, const uint8_t *phy, size_t len)
{
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
        rs_gw_t *gw = &s->gw[g];
        r.tmst = rs_gw_tmst(gw);
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

static void send_pull(rs_gw_t *gw)
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

/* A PULL_RESP: TX_ACK at once (TOO_LATE when its tmst has passed), then the device judges it. */
static void on_pull_resp(rs_sim_t *s, rs_gw_t *gw, const gwmp_pkt_t *p)
{
    uint32_t now_tmst = rs_gw_tmst(gw);
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
    rs_dev_downlink(s, gw, rc < 0 ? NULL : &t, &d, now_tmst, now);
}

static void gw_read_cb(evutil_socket_t fd, short ev, void *arg)
{
    rs_gw_t *gw = arg;
    rs_sim_t *s = gw->sim;
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

int rs_gw_open(rs_sim_t *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(s->o.ns_port)};
    if (inet_pton(AF_INET, s->o.ns_host, &sa.sin_addr) != 1) {
        fprintf(stderr, "roamsim: --ns: %s is not a numeric IPv4 address\n", s->o.ns_host);
        return -1;
    }
    for (size_t g = 0; g < s->o.n_gw; g++) {
        rs_gw_t *gw = &s->gw[g];
        gw->sim = s;
        gw->idx = (unsigned)g;
        gw->eui = s->o.gw_eui_start + g;
        gw->tmst_offset = (uint32_t)tl_rng_next(&s->rng);
        gw->token = (uint16_t)tl_rng_next(&s->rng);
        gw->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (gw->fd < 0 || connect(gw->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            fprintf(stderr, "roamsim: gateway socket: %s\n", strerror(errno));
            return -1;
        }
        int rcv = 1 << 20;
        setsockopt(gw->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
        gw->ev = event_new(s->base, gw->fd, EV_READ | EV_PERSIST, gw_read_cb, gw);
        gw->keepalive = event_new(s->base, -1, EV_PERSIST, keepalive_cb, gw);
        struct timeval ka = {s->o.keepalive_s, 0};
        event_add(gw->ev, NULL);
        event_add(gw->keepalive, &ka);
        send_pull(gw);
    }
    return 0;
}

void rs_gw_close(rs_sim_t *s)
{
    for (size_t g = 0; g < s->o.n_gw; g++) {
        event_free(s->gw[g].ev);
        event_free(s->gw[g].keepalive);
        close(s->gw[g].fd);
    }
}
