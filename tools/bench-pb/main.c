/*
 * bench-pb — a small C load client for the hub's Packet Broker data plane (issue #12, section
 * "Benchmark"; docs/PERFORMANCE.md "Packet Broker data plane"; tools/bench/pb_publish.py drives
 * it). It plays The Things Stack's Packet Broker Agent on both sides at once, on the project's own
 * gRPC client (tools/common/grpc_client.h, nghttp2) and protobuf-c messages:
 *   1. gets the agent's tokens: OAuth2 client credentials (pba_token.h's form, POSTed to the token
 *      URL; the keys "id:secret" from $PB_FWD_KEY and $PB_HOME_KEY, never the command line);
 *   2. home network: opens 4 HomeNetworkData/Subscribe streams in one group on one connection, as
 *      the agent does, and reads every RoutedUplinkMessage;
 *   3. forwarder: publishes uplinks with ForwarderData/Publish on C connections (3 s deadline, the
 *      agent's publishMessageTimeout). Each uplink is the template request (-b: a serialized
 *      PublishUplinkMessageRequest, e.g. the shared vector's) with its PHYPayload replaced by an
 *      unconfirmed data uplink whose FRMPayload is the 4-byte big-endian sequence number and FCnt
 *      its low 16 bits: the subscriber matches each routed message to its publish by it.
 * Closed loop (-n N): K publishes in flight per connection until N are done; throughput.
 * Open loop (-r RATE): publish k is DUE at t0 + k / RATE, sent at that moment whatever happened to
 * the earlier ones, and every latency is counted from the due time (no coordinated omission; the
 * scheme of tools/bench-openloop): due -> the subscriber stream received it ("one way"), and due
 * -> the Publish call's OK answer ("ack", a round trip). Publishes due during the warm-up (-w) are
 * sent but not counted.
 * With -S - there is no subscriber (a protocol-blind reference such as nginx grpc_pass answers the
 * publishes itself): only the ack figures are measured.
 *
 * Usage: bench-pb -s HOST:PORT -b TEMPLATE (-n N | -r RATE) [-t TOKEN_URL] [-S HOST:PORT|-]
 *                 [-H HOME_NETID] [-g GROUP] [-c CONNECTIONS] [-k IN_FLIGHT] [-d SECONDS]
 *                 [-w WARMUP_SECONDS]
 * Output, one line of key=value: mode= due= (counted publishes) sent= acked= (OK answers) failed=
 * (other answers) received= (distinct counted messages the subscriber got) dup= (copies received
 * more than once) lost= (acked, counted and never received: 0 without subscriber) stray= (routed
 * messages that are not this run's) reconnects= (publishing connections re-dialled after the
 * server closed or reset them; a failed publish is not retried) answered= (counted publishes
 * answered OK) elapsed_s= pub_rate= (OK answers/s from the first publish to
 * the last answer) recv_rate= (receipts/s from the first publish to the last receipt) p50_us= p99_us= p999_us= max_us= (one way)
 * ack_p50_us= ack_p99_us= ack_p999_us= late_us= (p99 of how late the client wrote a publish after
 * it was due: when it grows, the client is the bottleneck).
 * Exit status: 0 when the run completed (the caller judges the counts), 1 on usage, token or
 * connection errors.
 *
 * One thread, one libevent base with precise timers (timerfd).
 */
#include "grpc_client.h"
#include "pba_token.h"
#include "rh_fs.h"

#include "packetbroker/routing_v1.pb-c.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define P_PUBLISH "/org.packetbroker.routing.v1.ForwarderData/Publish"
#define P_SUBSCRIBE "/org.packetbroker.routing.v1.HomeNetworkData/Subscribe"
#define SUB_STREAMS 4              /* as the agent opens per role */
#define PUBLISH_TIMEOUT_MS 3000    /* the agent's publishMessageTimeout */
#define DRAIN_NS 3000000000ull     /* after the last publish: wait this long for stragglers */
#define PHY_LEN 17                 /* MHDR DevAddr FCtrl FCnt FPort seq(4) MIC(4) */
#define MAX_CONNS 64

typedef Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest PublishReq;

static struct {
    struct event_base *base;
    grpc_client_t *pub[MAX_CONNS];
    grpc_client_t *sub;
    unsigned nconns, inflight_per_conn;
    char *fwd_token, *home_token;
    PublishReq *tmpl;             /* the template request; its PHYPayload points at phy */
    uint8_t phy[PHY_LEN];
    uint32_t devaddr;
    bool closed;                  /* closed loop (-n) or open loop (-r) */
    uint64_t total, counted_from; /* publishes; seqs below counted_from are warm-up */
    double rate;
    uint64_t t0;
    uint64_t *due, *ack, *recv;   /* per seq, ns since the epoch of now_ns(); 0 = not (yet) */
    uint8_t *conn_of;             /* closed loop: the connection of each seq */
    uint64_t next;                /* next seq to publish */
    uint64_t sent, acked, failed, done, received, dup, stray;
    uint64_t last_ack, last_recv; /* time of the last OK answer, of the last receipt */
    uint64_t *late;
    size_t nlate;
    struct event *tick, *stop_ev, *redial_ev;
    char host[256];               /* the publishing target */
    uint16_t port;
    uint64_t owed;                /* closed loop: publishes waiting for a live connection */
    unsigned reconnects;
    bool error;
} B;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) {
        fprintf(stderr, "bench-pb: out of memory\n");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------------ token */

typedef struct {
    char *token;
    char err[320];
    bool done;
} tok_res_t;

static void token_cb(struct evhttp_request *req, void *arg)
{
    tok_res_t *r = arg;
    r->done = true;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code != 200) {
        snprintf(r->err, sizeof r->err, "token request: HTTP status %d", code);
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        rh_diag_t d;
        rh_diag_clear(&d);
        uint64_t exp = 0;
        if (pba_token_parse((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in),
                            &r->token, &exp, &d) < 0)
            snprintf(r->err, sizeof r->err, "token answer: %s", d.text);
    }
    event_base_loopbreak(B.base);
}

/* The agent's token exchange for key "id:secret" with audience the data plane's host (roamns's
 * Packet Broker mode does the same asynchronously): returns the access token (malloc'd) or NULL
 * with the reason printed. */
static char *fetch_token(const char *url, const char *key, const char *audience)
{
    const char *colon = key ? strchr(key, ':') : NULL;
    if (!colon) {
        fprintf(stderr, "bench-pb: key: want \"id:secret\"\n");
        return NULL;
    }
    char id[256];
    snprintf(id, sizeof id, "%.*s", (int)(colon - key), key);
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    if (!host) {
        fprintf(stderr, "bench-pb: -t: not a URL: %s\n", url);
        evhttp_uri_free(u);
        return NULL;
    }
    int port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
    const char *path = evhttp_uri_get_path(u);
    tok_res_t r = {0};
    struct evhttp_connection *conn = evhttp_connection_base_new(B.base, NULL, host, (uint16_t)port);
    struct evhttp_request *req = evhttp_request_new(token_cb, &r);
    char *body = pba_token_form(id, colon + 1, "networks", audience);
    if (!conn || !req || !body) {
        fprintf(stderr, "bench-pb: out of memory\n");
        exit(1);
    }
    evhttp_connection_set_timeout(conn, 5);
    char hostport[300];
    snprintf(hostport, sizeof hostport, "%s:%d", host, port);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", hostport);
    evhttp_add_header(h, "Content-Type", "application/x-www-form-urlencoded");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    memset(body, 0, strlen(body));
    free(body);
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, path && *path ? path : "/") == 0)
        event_base_dispatch(B.base); /* until token_cb breaks the loop */
    if (!r.done)
        snprintf(r.err, sizeof r.err, "token request: no answer");
    evhttp_connection_free(conn);
    evhttp_uri_free(u);
    if (!r.token)
        fprintf(stderr, "bench-pb: %s: %s\n", url, r.err);
    return r.token;
}

/* ------------------------------------------------------------------ subscriber */

static void sub_reply(void *arg, const uint8_t *msg, size_t len)
{
    (void)arg;
    uint64_t t = now_ns();
    Org__Packetbroker__V3__RoutedUplinkMessage *m =
        org__packetbroker__v3__routed_uplink_message__unpack(NULL, len, msg);
    const Org__Packetbroker__V3__UplinkMessage__PHYPayload *p =
        m && m->message ? m->message->phy_payload : NULL;
    if (!p || p->value_case != ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN ||
        p->plain.len != PHY_LEN) {
        B.stray++;
    } else {
        const uint8_t *q = p->plain.data + PHY_LEN - 8;
        uint64_t seq = (uint64_t)q[0] << 24 | (uint64_t)q[1] << 16 | (uint64_t)q[2] << 8 | q[3];
        if (seq >= B.total || !B.due[seq]) {
            B.stray++;
        } else if (B.recv[seq]) {
            B.dup++;
        } else {
            B.recv[seq] = t;
            B.received++;
            B.last_recv = t;
        }
    }
    if (m)
        org__packetbroker__v3__routed_uplink_message__free_unpacked(m, NULL);
}

/* A subscription that ends during the run is an error (at the end the streams are dropped
 * without callbacks). */
static void sub_done(void *arg, int status, const char *msg)
{
    (void)arg;
    fprintf(stderr, "bench-pb: subscription ended: %s %s\n", grpc_status_name(status), msg);
    B.error = true;
    event_base_loopbreak(B.base);
}

static int subscribe(uint32_t home_net_id, const char *group)
{
    Org__Packetbroker__Routing__V1__SubscribeHomeNetworkRequest r =
        ORG__PACKETBROKER__ROUTING__V1__SUBSCRIBE_HOME_NETWORK_REQUEST__INIT;
    r.home_network_net_id = home_net_id;
    r.home_network_cluster_id = "bench";
    r.group = (char *)group;
    uint8_t buf[512];
    size_t n = protobuf_c_message_get_packed_size(&r.base);
    if (n > sizeof buf)
        return -1;
    protobuf_c_message_pack(&r.base, buf);
    for (int i = 0; i < SUB_STREAMS; i++)
        if (!grpc_client_call(B.sub, P_SUBSCRIBE, buf, n, B.home_token, 0, sub_reply, sub_done, NULL))
            return -1;
    return 0;
}

/* ------------------------------------------------------------------ publisher */

static void maybe_finish(void);
static void issue_next(unsigned conn);

/* A live publishing connection, conn if it is, else the next live one; -1 when none is (a
 * re-dial is then scheduled). */
static int live_conn(unsigned conn)
{
    for (unsigned i = 0; i < B.nconns; i++) {
        unsigned c = (conn + i) % B.nconns;
        if (grpc_client_alive(B.pub[c]))
            return (int)c;
    }
    if (!evtimer_pending(B.redial_ev, NULL)) {
        struct timeval tv = {0, 10000};
        evtimer_add(B.redial_ev, &tv);
    }
    return -1;
}

/* Replaces the publishing connections that failed (GOAWAY, reset) once their calls have ended,
 * as a gRPC client re-dials, then issues the closed loop's publishes that had no connection. */
static void redial_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    (void)arg;
    bool waiting = false;
    for (unsigned i = 0; i < B.nconns; i++) {
        if (grpc_client_alive(B.pub[i]))
            continue;
        if (grpc_client_calls(B.pub[i])) {
            waiting = true;
            continue;
        }
        rh_diag_t d;
        rh_diag_clear(&d);
        grpc_client_free(B.pub[i]);
        if (!(B.pub[i] = grpc_client_new(B.base, B.host, B.port, NULL, 0, &d))) {
            fprintf(stderr, "bench-pb: publisher: %s\n", d.text);
            B.error = true;
            event_base_loopbreak(B.base);
            return;
        }
        B.reconnects++;
    }
    while (B.owed && live_conn(0) >= 0) {
        B.owed--;
        issue_next(0);
    }
    if (waiting && !evtimer_pending(B.redial_ev, NULL)) {
        struct timeval tv = {0, 10000};
        evtimer_add(B.redial_ev, &tv);
    }
    maybe_finish();
}

static void pub_done(void *arg, int status, const char *msg)
{
    uint64_t seq = (uint64_t)(uintptr_t)arg - 1, t = now_ns();
    B.done++;
    if (status == GRPC_OK) {
        B.ack[seq] = t;
        B.acked++;
        B.last_ack = t;
    } else {
        if (B.failed++ < 5)
            fprintf(stderr, "bench-pb: publish %llu: %s %s\n", (unsigned long long)seq,
                    grpc_status_name(status), msg);
    }
    if (B.closed && B.next < B.total)
        issue_next(B.conn_of[seq]);
    maybe_finish();
}

/* Publishes uplink number seq (its due time set) on connection conn or another live one; a
 * publish no connection takes fails at once (false). */
static bool publish(uint64_t seq, unsigned conn)
{
    B.phy[6] = (uint8_t)(seq & 0xff); /* FCnt, little-endian */
    B.phy[7] = (uint8_t)(seq >> 8 & 0xff);
    B.phy[9] = (uint8_t)(seq >> 24); /* FRMPayload: seq, big-endian */
    B.phy[10] = (uint8_t)(seq >> 16);
    B.phy[11] = (uint8_t)(seq >> 8);
    B.phy[12] = (uint8_t)seq;
    Org__Packetbroker__V3__UplinkMessage__PHYPayload *p = B.tmpl->message->phy_payload;
    if (p->teaser && p->teaser->payload_case == ORG__PACKETBROKER__V3__PHYPAYLOAD_TEASER__PAYLOAD_MAC)
        p->teaser->mac->f_cnt = (uint32_t)(seq & 0xffff);
    uint8_t buf[4096];
    size_t n = protobuf_c_message_get_packed_size(&B.tmpl->base);
    if (n > sizeof buf) {
        fprintf(stderr, "bench-pb: template request too large (%zu bytes)\n", n);
        exit(1);
    }
    protobuf_c_message_pack(&B.tmpl->base, buf);
    int c = live_conn(conn);
    if (B.conn_of)
        B.conn_of[seq] = (uint8_t)(c < 0 ? conn : (unsigned)c);
    B.sent++;
    if (c < 0 || !grpc_client_call(B.pub[c], P_PUBLISH, buf, n, B.fwd_token, PUBLISH_TIMEOUT_MS,
                                   NULL, pub_done, (void *)(uintptr_t)(seq + 1))) {
        B.done++;
        if (B.failed++ < 5)
            fprintf(stderr, "bench-pb: publish %llu: no connection takes it\n",
                    (unsigned long long)seq);
        return false;
    }
    return true;
}

/* Closed loop: the next publish, due now, on connection conn (or another live one); when none
 * is live, it waits for the re-dial. */
static void issue_next(unsigned conn)
{
    while (B.next < B.total) {
        if (live_conn(conn) < 0) {
            B.owed++;
            return;
        }
        uint64_t s = B.next++;
        B.due[s] = now_ns();
        if (publish(s, conn))
            return; /* else it failed at once: its slot takes the next one */
    }
}

/* Open loop: sends everything due by now, then sleeps until the next due time. */
static void tick_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    (void)arg;
    uint64_t t = now_ns();
    double step = 1e9 / B.rate;
    while (B.next < B.total && B.t0 + (uint64_t)((double)B.next * step) <= t) {
        uint64_t s = B.next++;
        B.due[s] = B.t0 + (uint64_t)((double)s * step);
        publish(s, (unsigned)(s % B.nconns));
        if (s >= B.counted_from)
            B.late[B.nlate++] = now_ns() - B.due[s];
    }
    if (B.next < B.total) {
        uint64_t wait = B.t0 + (uint64_t)((double)B.next * step) - t;
        struct timeval tv = {(time_t)(wait / 1000000000u), (suseconds_t)(wait % 1000000000u / 1000u)};
        evtimer_add(B.tick, &tv);
    }
    maybe_finish();
}

/* The run ends when every publish was answered and, with a subscriber, every acked one received
 * (or DRAIN_NS after the last publish was due, whichever is first). */
static void maybe_finish(void)
{
    if (B.next < B.total || B.done < B.total)
        return;
    if (!B.sub || B.received + (B.total - B.acked) >= B.total) {
        event_base_loopbreak(B.base);
        return;
    }
    if (!event_pending(B.stop_ev, EV_TIMEOUT, NULL)) {
        struct timeval tv = {(time_t)(DRAIN_NS / 1000000000u), 0};
        evtimer_add(B.stop_ev, &tv);
    }
}

static void stop_cb(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    (void)arg;
    event_base_loopbreak(B.base);
}

/* ------------------------------------------------------------------ main */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double q)
{
    return n ? (double)v[(size_t)(q * (double)(n - 1) + 0.5)] / 1000.0 : 0.0;
}

static bool hostport(const char *s, char *host, size_t cap, uint16_t *port)
{
    const char *c = s ? strrchr(s, ':') : NULL;
    if (!c || c == s || (size_t)(c - s) >= cap)
        return false;
    long p = strtol(c + 1, NULL, 10);
    if (p <= 0 || p > 65535)
        return false;
    snprintf(host, cap, "%.*s", (int)(c - s), s);
    *port = (uint16_t)p;
    return true;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-pb -s HOST:PORT -b TEMPLATE (-n N | -r RATE) [-t TOKEN_URL] "
                    "[-S HOST:PORT|-] [-H HOME_NETID] [-g GROUP] [-c CONNECTIONS] [-k IN_FLIGHT] "
                    "[-d SECONDS] [-w WARMUP_SECONDS]\n"
                    "  keys: PB_FWD_KEY, PB_HOME_KEY (\"id:secret\") in the environment\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *target = NULL, *sub_target = NULL, *tmpl_file = NULL, *token_url = NULL,
               *group = "bench";
    unsigned long home_net = 0x13, n = 0;
    double secs = 5, warm = 1;
    int opt;
    B.nconns = 4;
    B.inflight_per_conn = 16;
    while ((opt = getopt(argc, argv, "s:S:b:t:H:g:n:r:c:k:d:w:")) != -1) {
        switch (opt) {
        case 's': target = optarg; break;
        case 'S': sub_target = optarg; break;
        case 'b': tmpl_file = optarg; break;
        case 't': token_url = optarg; break;
        case 'H': home_net = strtoul(optarg, NULL, 16); break;
        case 'g': group = optarg; break;
        case 'n': n = strtoul(optarg, NULL, 10); break;
        case 'r': B.rate = atof(optarg); break;
        case 'c': B.nconns = (unsigned)atoi(optarg); break;
        case 'k': B.inflight_per_conn = (unsigned)atoi(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'w': warm = atof(optarg); break;
        default: usage();
        }
    }
    char *host = B.host, shost[256];
    uint16_t sport = 0;
    bool with_sub = !sub_target || strcmp(sub_target, "-") != 0;
    if (!hostport(target, B.host, sizeof B.host, &B.port) || !tmpl_file || (n > 0) == (B.rate > 0) ||
        B.nconns == 0 || B.nconns > MAX_CONNS || B.inflight_per_conn == 0 || secs <= 0 ||
        warm < 0 || home_net > 0xffffff ||
        (with_sub && !hostport(sub_target ? sub_target : target, shost, sizeof shost, &sport)))
        usage();

    /* the template request */
    rh_diag_t d;
    rh_diag_clear(&d);
    char *raw = NULL;
    size_t raw_len = 0;
    if (rh_read_file(tmpl_file, 1u << 16, &raw, &raw_len, &d) != RH_OK) {
        fprintf(stderr, "bench-pb: %s\n", d.text);
        return 1;
    }
    B.tmpl = org__packetbroker__routing__v1__publish_uplink_message_request__unpack(NULL, raw_len,
                                                                                    (uint8_t *)raw);
    free(raw);
    Org__Packetbroker__V3__UplinkMessage__PHYPayload *p =
        B.tmpl && B.tmpl->message ? B.tmpl->message->phy_payload : NULL;
    if (!p || p->value_case != ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN ||
        p->plain.len < 5) {
        fprintf(stderr, "bench-pb: %s: not a PublishUplinkMessageRequest with a plain PHYPayload\n",
                tmpl_file);
        return 1;
    }
    /* an unconfirmed data uplink of the template's DevAddr, FPort 1, 4-byte FRMPayload */
    memcpy(B.phy + 1, p->plain.data + 1, 4);
    B.phy[0] = 0x40;
    B.phy[8] = 1;
    memcpy(B.phy + 13, "\x01\x02\x03\x04", 4); /* MIC: the hub does not check it */
    free(p->plain.data);                        /* ours now: the unpacker's copy */
    p->plain.data = B.phy;
    p->plain.len = PHY_LEN;
    if (p->teaser && p->teaser->payload_case == ORG__PACKETBROKER__V3__PHYPAYLOAD_TEASER__PAYLOAD_MAC) {
        p->teaser->length = PHY_LEN;
        p->teaser->mac->confirmed = false;
        p->teaser->mac->f_opts = false;
        p->teaser->mac->f_port = 1;
        p->teaser->mac->frm_payload_length = 4;
    }

    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    B.base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (!B.base)
        return 1;
    if (token_url) {
        if (!(B.fwd_token = fetch_token(token_url, getenv("PB_FWD_KEY"), host)))
            return 1;
        if (with_sub && !(B.home_token = fetch_token(token_url, getenv("PB_HOME_KEY"), shost)))
            return 1;
    }

    B.closed = n > 0;
    B.total = B.closed ? n : (uint64_t)((secs + warm) * B.rate);
    B.counted_from = B.closed ? 0 : (uint64_t)(warm * B.rate);
    if (B.total == 0 || B.total > UINT32_MAX)
        usage();
    B.due = xcalloc(B.total, sizeof *B.due);
    B.ack = xcalloc(B.total, sizeof *B.ack);
    B.recv = xcalloc(B.total, sizeof *B.recv);
    B.late = xcalloc(B.total, sizeof *B.late);
    if (B.closed)
        B.conn_of = xcalloc(B.total, 1);
    B.tick = evtimer_new(B.base, tick_cb, NULL);
    B.stop_ev = evtimer_new(B.base, stop_cb, NULL);
    B.redial_ev = evtimer_new(B.base, redial_cb, NULL);

    /* connections, subscriptions, then a pause so that the streams are open at the hub */
    if (with_sub) {
        if (!(B.sub = grpc_client_new(B.base, shost, sport, NULL, 0, &d)) ||
            subscribe((uint32_t)home_net, group) < 0) {
            fprintf(stderr, "bench-pb: subscriber: %s\n", d.text[0] ? d.text : "call refused");
            return 1;
        }
    }
    for (unsigned i = 0; i < B.nconns; i++)
        if (!(B.pub[i] = grpc_client_new(B.base, host, B.port, NULL, 0, &d))) {
            fprintf(stderr, "bench-pb: publisher: %s\n", d.text);
            return 1;
        }
    struct timeval settle = {0, 300000};
    event_base_loopexit(B.base, &settle);
    event_base_dispatch(B.base);
    if (B.error)
        return 1;

    B.t0 = now_ns();
    if (B.closed) {
        for (unsigned i = 0; i < B.nconns; i++)
            for (unsigned j = 0; j < B.inflight_per_conn; j++)
                issue_next(i);
    } else {
        tick_cb(-1, 0, NULL);
    }
    if (!B.error)
        event_base_dispatch(B.base);
    uint64_t t_end = now_ns();

    /* figures over the counted publishes */
    uint64_t *lat = xcalloc(B.total, sizeof *lat), *alat = xcalloc(B.total, sizeof *alat);
    size_t nl = 0, na = 0;
    uint64_t lost = 0, counted_recv = 0;
    for (uint64_t s = B.counted_from; s < B.next; s++) {
        if (B.ack[s])
            alat[na++] = B.ack[s] - B.due[s];
        if (B.recv[s]) {
            lat[nl++] = B.recv[s] - B.due[s];
            counted_recv++;
        } else if (B.sub && B.ack[s]) {
            lost++;
        }
    }
    qsort(lat, nl, sizeof *lat, cmp_u64);
    qsort(alat, na, sizeof *alat, cmp_u64);
    qsort(B.late, B.nlate, sizeof *B.late, cmp_u64);
    /* rates over the time from the first publish to the last answer / the last receipt */
    double el_ack = (double)((B.last_ack > B.t0 ? B.last_ack : t_end) - B.t0) / 1e9;
    double el_recv = (double)((B.last_recv > B.t0 ? B.last_recv : t_end) - B.t0) / 1e9;
    double el = el_ack > el_recv ? el_ack : el_recv;
    printf("mode=%s due=%llu sent=%llu acked=%llu failed=%llu received=%llu dup=%llu lost=%llu "
           "stray=%llu reconnects=%u answered=%zu elapsed_s=%.3f pub_rate=%.0f recv_rate=%.0f p50_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f ack_p50_us=%.1f ack_p99_us=%.1f ack_p999_us=%.1f late_us=%.1f\n",
           B.closed ? "closed" : "open", (unsigned long long)(B.total - B.counted_from),
           (unsigned long long)B.sent, (unsigned long long)B.acked, (unsigned long long)B.failed,
           (unsigned long long)counted_recv, (unsigned long long)B.dup, (unsigned long long)lost,
           (unsigned long long)B.stray, B.reconnects, na, el, (double)B.acked / el_ack, (double)B.received / el_recv,
           pct(lat, nl, 0.50), pct(lat, nl, 0.99), pct(lat, nl, 0.999),
           nl ? (double)lat[nl - 1] / 1000.0 : 0.0, pct(alat, na, 0.50), pct(alat, na, 0.99),
           pct(alat, na, 0.999), pct(B.late, B.nlate, 0.99));
    fflush(stdout);

    for (unsigned i = 0; i < B.nconns; i++)
        grpc_client_free(B.pub[i]);
    grpc_client_free(B.sub);
    event_free(B.tick);
    event_free(B.stop_ev);
    event_free(B.redial_ev);
    event_base_free(B.base);
    p->plain.data = NULL; /* B.phy is not the unpacker's */
    p->plain.len = 0;
    org__packetbroker__routing__v1__publish_uplink_message_request__free_unpacked(B.tmpl, NULL);
    free(lat);
    free(alat);
    free(B.due);
    free(B.ack);
    free(B.recv);
    free(B.late);
    free(B.conn_of);
    if (B.fwd_token) {
        memset(B.fwd_token, 0, strlen(B.fwd_token));
        free(B.fwd_token);
    }
    if (B.home_token) {
        memset(B.home_token, 0, strlen(B.home_token));
        free(B.home_token);
    }
    return B.error ? 1 : 0;
}
