/*
 * bench-peers — throughput/latency of the peers/ outbound client pool against a bare-evhttp
 * client doing the same work (the reference, measured in the same run), plus the per-request
 * cost of the registry lookups the relay makes (auth by Bearer key and by TLS identity,
 * SenderID check, endpoint lookup, rate limiter).
 *
 * Setup: one server thread (evhttp on 127.0.0.1, answers 200 with a small JSON body), one client
 * thread keeping C requests outstanding over keep-alive HTTP/1.1 for D seconds. Each mode runs
 * R times; the median is printed.
 *   usage: bench-peers [seconds=3] [concurrency=32] [runs=3]
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "peer_client.h"
#include "rh_version.h"
#include "peer_endpoint.h"
#include "peer_registry.h"
#include "rh_log.h"
#include "rh_time.h"

static const char BODY[] =
    "{\"ProtocolVersion\":\"1.1\",\"SenderID\":\"000013\",\"ReceiverID\":\"600001\","
    "\"TransactionID\":1234,\"MessageType\":\"PRStartReq\",\"SenderNSID\":\"0000000000000001\","
    "\"PHYPayload\":\"40e1ff0126800100010a3f1e3b85a0b3\",\"ULMetaData\":{\"DevAddr\":\"26ffffe1\","
    "\"DataRate\":5,\"ULFreq\":868.1,\"RecvTime\":\"2024-01-01T00:00:00Z\",\"RFRegion\":\"EU868\","
    "\"GWCnt\":1,\"GWInfo\":[{\"ID\":\"0102030405060708\",\"RSSI\":-60,\"SNR\":7.5,"
    "\"Lat\":48.85,\"Lon\":2.35,\"ULToken\":\"AQIDBA==\",\"DLAllowed\":true}]}}";

/* ---- server thread ---------------------------------------------------------------------- */

typedef struct server {
    struct event_base *base;
    struct evhttp *http;
    uint16_t port;
    pthread_t th;
} server_t;

static void srv_handler(struct evhttp_request *req, void *arg)
{
    (void)arg;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evbuffer_add(out, "{\"Result\":{\"ResultCode\":\"Success\"},\"MessageType\":\"PRStartAns\"}", 62);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void *srv_run(void *arg)
{
    server_t *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void srv_start(server_t *s)
{
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    evhttp_set_gencb(s->http, srv_handler, NULL);
    struct evhttp_bound_socket *b = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(b), (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    pthread_create(&s->th, NULL, srv_run, s);
}

static void srv_stop(server_t *s)
{
    event_base_loopbreak(s->base);
    pthread_join(s->th, NULL);
    evhttp_free(s->http);
    event_base_free(s->base);
}

/* ---- latency record ----------------------------------------------------------------------- */

#define MAXLAT (1u << 22)
static uint32_t lat_us[MAXLAT];
static size_t n_lat;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct run_result {
    double rps, p50_us, p99_us;
    uint64_t errors;
} run_result_t;

static run_result_t summarize(uint64_t done, uint64_t errors, double secs)
{
    run_result_t r = {done / secs, 0, 0, errors};
    if (n_lat) {
        qsort(lat_us, n_lat, sizeof *lat_us, cmp_u32);
        r.p50_us = lat_us[n_lat / 2];
        r.p99_us = lat_us[(size_t)(n_lat * 0.99)];
    }
    return r;
}

/* ---- mode 1: peers client pool ------------------------------------------------------------ */

typedef struct pool_ctx {
    struct event_base *base;
    peer_client_t *client;
    const peer_endpoint_t *ep;
    uint64_t deadline_ns, done, errors;
    int outstanding;
} pool_ctx_t;

typedef struct slot {
    pool_ctx_t *ctx;
    uint64_t t0;
} slot_t;

static void pool_cb(int status, int http_status, const uint8_t *body, size_t len, void *arg);

static void pool_send(slot_t *s)
{
    pool_ctx_t *c = s->ctx;
    s->t0 = rh_mono_ns();
    if (peer_client_post(c->client, c->ep, NULL, BODY, sizeof BODY - 1, NULL, 0, pool_cb, s) !=
        RH_OK) {
        c->errors++;
        c->outstanding--;
    }
}

static void pool_cb(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    (void)body;
    (void)len;
    slot_t *s = arg;
    pool_ctx_t *c = s->ctx;
    uint64_t now = rh_mono_ns();
    if (status == RH_OK && http_status == 200) {
        c->done++;
        if (n_lat < MAXLAT)
            lat_us[n_lat++] = (uint32_t)((now - s->t0) / 1000);
    } else {
        c->errors++;
    }
    if (now < c->deadline_ns)
        pool_send(s);
    else if (--c->outstanding == 0)
        event_base_loopbreak(c->base);
}

static run_result_t run_pool(uint16_t port, unsigned secs, int conc)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
    Roamhub__V1__Endpoint rec = ROAMHUB__V1__ENDPOINT__INIT;
    rec.id = "bench";
    rec.net_id = 0x600001;
    rec.url = url;
    rec.max_in_flight = (uint32_t)conc;
    rec.authorization = "Bearer bench-token";
    peer_endpoint_t *ep = NULL;
    if (peer_endpoint_new(&rec, 0, &ep, NULL) != RH_OK)
        abort();
    pool_ctx_t c = {.base = event_base_new()};
    peer_client_new(c.base, NULL, &c.client);
    c.ep = ep;
    slot_t *slots = calloc((size_t)conc, sizeof *slots);
    n_lat = 0;
    uint64_t t0 = rh_mono_ns();
    c.deadline_ns = t0 + (uint64_t)secs * 1000000000ull;
    c.outstanding = conc;
    for (int i = 0; i < conc; i++) {
        slots[i].ctx = &c;
        pool_send(&slots[i]);
    }
    event_base_dispatch(c.base);
    double el = (rh_mono_ns() - t0) / 1e9;
    run_result_t r = summarize(c.done, c.errors, el);
    peer_client_free(c.client);
    event_base_free(c.base);
    peer_endpoint_free(ep);
    free(slots);
    return r;
}

/* ---- mode 2: reference, bare evhttp (one connection per outstanding request) -------------- */

typedef struct raw_slot {
    struct raw_ctx *ctx;
    struct evhttp_connection *evcon;
    uint64_t t0;
} raw_slot_t;

typedef struct raw_ctx {
    struct event_base *base;
    uint16_t port;
    uint64_t deadline_ns, done, errors;
    int outstanding;
} raw_ctx_t;

static void raw_send(raw_slot_t *s);

static void raw_cb(struct evhttp_request *req, void *arg)
{
    raw_slot_t *s = arg;
    raw_ctx_t *c = s->ctx;
    uint64_t now = rh_mono_ns();
    if (req && evhttp_request_get_response_code(req) == 200) {
        c->done++;
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        (void)evbuffer_pullup(in, -1);
        if (n_lat < MAXLAT)
            lat_us[n_lat++] = (uint32_t)((now - s->t0) / 1000);
    } else {
        c->errors++;
    }
    if (now < c->deadline_ns)
        raw_send(s);
    else if (--c->outstanding == 0)
        event_base_loopbreak(c->base);
}

static void raw_send(raw_slot_t *s)
{
    s->t0 = rh_mono_ns();
    struct evhttp_request *req = evhttp_request_new(raw_cb, s);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", "127.0.0.1");
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Connection", "keep-alive");
    evhttp_add_header(h, "Authorization", "Bearer bench-token");
    evbuffer_add(evhttp_request_get_output_buffer(req), BODY, sizeof BODY - 1);
    evhttp_make_request(s->evcon, req, EVHTTP_REQ_POST, "/");
}

static run_result_t run_raw(uint16_t port, unsigned secs, int conc)
{
    raw_ctx_t c = {.base = event_base_new(), .port = port};
    raw_slot_t *slots = calloc((size_t)conc, sizeof *slots);
    n_lat = 0;
    uint64_t t0 = rh_mono_ns();
    c.deadline_ns = t0 + (uint64_t)secs * 1000000000ull;
    c.outstanding = conc;
    for (int i = 0; i < conc; i++) {
        slots[i].ctx = &c;
        slots[i].evcon = evhttp_connection_base_new(c.base, NULL, "127.0.0.1", port);
        raw_send(&slots[i]);
    }
    event_base_dispatch(c.base);
    double el = (rh_mono_ns() - t0) / 1e9;
    run_result_t r = summarize(c.done, c.errors, el);
    for (int i = 0; i < conc; i++)
        evhttp_connection_free(slots[i].evcon);
    event_base_free(c.base);
    free(slots);
    return r;
}

/* ---- registry lookups --------------------------------------------------------------------- */

static double ns_per_op(uint64_t t0, unsigned n) { return (double)(rh_mono_ns() - t0) / n; }

static void bench_registry(void)
{
    enum { MEMBERS = 1000, N = 2000000 };
    static Roamhub__V1__Member m[MEMBERS];
    static const Roamhub__V1__Member *mp[MEMBERS];
    static uint32_t nets[MEMBERS];
    static uint8_t hashes[MEMBERS][32];
    static ProtobufCBinaryData keys[MEMBERS];
    static char ids[MEMBERS][16], fps[MEMBERS][65], subj[MEMBERS][64];
    static char *fpp[MEMBERS], *subjp[MEMBERS];
    static Roamhub__V1__Endpoint e[MEMBERS];
    static const Roamhub__V1__Endpoint *ep[MEMBERS];
    static char eids[MEMBERS][16];
    for (int i = 0; i < MEMBERS; i++) {
        Roamhub__V1__Member mi = ROAMHUB__V1__MEMBER__INIT;
        Roamhub__V1__Endpoint ei = ROAMHUB__V1__ENDPOINT__INIT;
        m[i] = mi;
        e[i] = ei;
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        nets[i] = 0x600000u + (uint32_t)i;
        char key[32];
        int kl = snprintf(key, sizeof key, "key-%d-abcdefghijkl", i);
        peer_api_key_hash(key, (size_t)kl, hashes[i]);
        keys[i] = (ProtobufCBinaryData){32, hashes[i]};
        snprintf(fps[i], sizeof fps[i], "%08x%056x", (unsigned)i, 0u);
        snprintf(subj[i], sizeof subj[i], "CN=member %d,O=Example", i);
        fpp[i] = fps[i];
        subjp[i] = subj[i];
        m[i].id = ids[i];
        m[i].n_net_ids = 1;
        m[i].net_ids = &nets[i];
        m[i].n_api_key_hashes = 1;
        m[i].api_key_hashes = &keys[i];
        m[i].n_cert_fingerprints = 1;
        m[i].cert_fingerprints = &fpp[i];
        m[i].n_cert_subjects = 1;
        m[i].cert_subjects = &subjp[i];
        mp[i] = &m[i];
        snprintf(eids[i], sizeof eids[i], "e%d", i);
        e[i].id = eids[i];
        e[i].net_id = nets[i];
        e[i].url = "http://127.0.0.1:9/";
        ep[i] = &e[i];
    }
    peer_registry_config_t cfg = {.members = mp, .n_members = MEMBERS, .endpoints = ep,
                                  .n_endpoints = MEMBERS};
    peer_registry_t *reg = NULL;
    rh_diag_t d;
    uint64_t t0 = rh_mono_ns();
    if (peer_registry_new(&cfg, &reg, &d) != RH_OK) {
        fprintf(stderr, "registry: %s\n", d.text);
        exit(1);
    }
    printf("| registry build, %d members + %d endpoints | %.1f ms |\n", MEMBERS, MEMBERS,
           (rh_mono_ns() - t0) / 1e6);
    const peer_member_t *mm = NULL;
    volatile uintptr_t sink = 0;
    t0 = rh_mono_ns();
    for (unsigned i = 0; i < N; i++) {
        peer_registry_auth_bearer(reg, "Bearer key-517-abcdefghijkl", &mm);
        sink += (uintptr_t)mm;
    }
    printf("| auth Bearer key (SHA-256 + table probe) | %.0f ns |\n", ns_per_op(t0, N));
    peer_tls_identity_t id = {.present = true};
    snprintf(id.subject, sizeof id.subject, "CN=member 517,O=Example");
    t0 = rh_mono_ns();
    for (unsigned i = 0; i < N; i++) {
        peer_registry_auth_tls(reg, &id, &mm); /* fingerprint miss, then subject hit */
        sink += (uintptr_t)mm;
    }
    printf("| auth TLS identity (fingerprint miss + subject hit) | %.0f ns |\n", ns_per_op(t0, N));
    t0 = rh_mono_ns();
    for (unsigned i = 0; i < N; i++)
        sink += peer_member_may_send_as(mm, 0x600000u + (i & 1023), NULL);
    printf("| SenderID check (may_send_as) | %.1f ns |\n", ns_per_op(t0, N));
    const peer_endpoint_t *pe = NULL;
    t0 = rh_mono_ns();
    for (unsigned i = 0; i < N; i++) {
        peer_registry_endpoint_by_netid(reg, 0x600000u + (i & 1023), NULL, &pe);
        sink += (uintptr_t)pe;
    }
    printf("| endpoint by NetID (1000 endpoints) | %.1f ns |\n", ns_per_op(t0, N));
    t0 = rh_mono_ns();
    uint64_t now = rh_mono_ns();
    for (unsigned i = 0; i < N; i++)
        sink += peer_member_rate_allow(mm, now + i * 1000ull);
    printf("| rate limiter (GCRA, one CAS) | %.1f ns |\n", ns_per_op(t0, N));
    (void)sink;
    peer_registry_unref(reg);
}

static int cmp_run(const void *a, const void *b)
{
    double x = ((const run_result_t *)a)->rps, y = ((const run_result_t *)b)->rps;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc == 2 && rh_version_arg(argv[1], "bench-peers"))
        return 0;
    unsigned secs = argc > 1 ? (unsigned)atoi(argv[1]) : 3;
    int conc = argc > 2 ? atoi(argv[2]) : 32;
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    if (runs < 1 || runs > 15 || conc < 1 || conc > 1024 || secs < 1)
        return 2;
    rh_log_set_level_name("err");
    evthread_use_pthreads(); /* loopbreak across threads */
    server_t s;
    srv_start(&s);
    run_result_t pool[15], raw[15];
    for (int i = 0; i < runs; i++) { /* interleaved so both see the same machine load */
        raw[i] = run_raw(s.port, secs, conc);
        pool[i] = run_pool(s.port, secs, conc);
    }
    srv_stop(&s);
    qsort(pool, (size_t)runs, sizeof *pool, cmp_run);
    qsort(raw, (size_t)runs, sizeof *raw, cmp_run);
    run_result_t p = pool[runs / 2], r = raw[runs / 2];
    printf("| client | req/s (median of %d) | p50 us | p99 us | errors |\n", runs);
    printf("|---|---|---|---|---|\n");
    printf("| bare evhttp, %d keep-alive connections (reference) | %.0f | %.0f | %.0f | %llu |\n",
           conc, r.rps, r.p50_us, r.p99_us, (unsigned long long)r.errors);
    printf("| peers client pool, max_in_flight %d | %.0f | %.0f | %.0f | %llu |\n", conc, p.rps,
           p.p50_us, p.p99_us, (unsigned long long)p.errors);
    printf("\n| registry operation | cost |\n|---|---|\n");
    bench_registry();
    return 0;
}
