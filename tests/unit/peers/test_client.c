/*
 * Unit tests for the outbound client pool (peers/peer_client.c) against in-process evhttp
 * servers on 127.0.0.1 in the same event_base: keep-alive reuse, headers, in-flight bound,
 * total deadline with isolation of a healthy endpoint, circuit breaker (open, fail-fast,
 * half-open probe, doubling, recovery), 5xx counting, retirement on configuration change; and
 * a scripted raw server for the plain read path (answers in pieces, stray bytes after one).
 * Deadlines are generous (ASan/valgrind) but every assertion can fail.
 */
#define _GNU_SOURCE /* memmem */
#include "peer_fixture.h"

#include <event2/listener.h>

#include "peer_client.h"
#include "peer_endpoint.h"
#include "rh_err.h"
#include "rh_log.h"
#include "rh_time.h"

#include <unistd.h>

typedef struct result {
    int done;
    int status[64];
    int http[64];
    char body[64][64];
    uint64_t at_ms[64];
} result_t;

static void on_done(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    result_t *r = arg;
    int i = r->done < 64 ? r->done : 63;
    r->status[i] = status;
    r->http[i] = http_status;
    size_t n = len < 63 ? len : 63;
    if (body)
        memcpy(r->body[i], body, n);
    r->body[i][n] = '\0';
    r->at_ms[i] = fx_now_ms();
    r->done++;
}

/* An endpoint `id` of NetID 000013 at http://127.0.0.1:<port><path> (path starts with '/');
 * authz NULL = none. The caller frees it (peer_endpoint_free). */
static peer_endpoint_t *make_ep(const char *id, uint16_t port, const char *path,
                                uint32_t timeout_ms, uint32_t max_in_flight, const char *authz)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
    Roamhub__V1__Endpoint rec = ROAMHUB__V1__ENDPOINT__INIT;
    rec.id = (char *)id;
    rec.net_id = 0x000013;
    rec.url = url;
    rec.timeout_ms = timeout_ms;
    rec.max_in_flight = max_in_flight;
    rec.authorization = (char *)(authz ? authz : "");
    peer_endpoint_t *ep = NULL;
    rh_diag_t d;
    int rc = peer_endpoint_new(&rec, 0, &ep, &d);
    if (rc != RH_OK)
        fail_msg("peer_endpoint_new: %s", d.text);
    return ep;
}

typedef struct fixture {
    struct event_base *base;
    peer_client_t *client;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    peer_client_opts_t o = {.failure_threshold = 3, .backoff_base_ms = 200, .no_jitter = true};
    assert_int_equal(peer_client_new(f->base, &o, &f->client), RH_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    peer_client_free(f->client);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Sequential requests reuse one TCP connection; the headers are what the spec needs. */
static void test_roundtrip_keepalive(void **state)
{
    fixture_t *f = *state;
    fx_server_t s;
    fx_server_start(&s, f->base, 0, NULL, NULL, NULL);
    peer_endpoint_t *ep = make_ep("netA", s.port, "/bi", 5000, 8, "Bearer s3cret-token");
    result_t r = {0};
    const int N = 20;
    for (int i = 0; i < N; i++) {
        char body[64];
        int n = snprintf(body, sizeof body, "{\"TransactionID\":%d}", i);
        assert_int_equal(peer_client_post(f->client, ep, NULL, body, (size_t)n, NULL, 0, on_done, &r),
                         RH_OK);
        assert_true(fx_run_until(f->base, &r.done, i + 1, 10000));
        assert_int_equal(r.status[i], RH_OK);
        assert_int_equal(r.http[i], 200);
        char want[32];
        snprintf(want, sizeof want, "{\"echo\":%d}", n);
        assert_string_equal(r.body[i], want);
        assert_string_equal(s.last_body, body);
    }
    assert_int_equal(s.requests, N);
    assert_int_equal(s.accepted, 1); /* one TCP connection for N sequential requests */
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", s.port);
    assert_string_equal(s.last_host, host);
    assert_string_equal(s.last_auth, "Bearer s3cret-token");
    assert_string_equal(s.last_ctype, "application/json");
    assert_string_equal(s.last_conn, "keep-alive");
    assert_string_equal(s.last_path, "/bi");

    /* Explicit path and an extra header. */
    peer_header_t xh = {"X-Test", "yes"};
    assert_int_equal(peer_client_post(f->client, ep, "/sns", "{}", 2, &xh, 1, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, N + 1, 10000));
    assert_string_equal(s.last_path, "/sns");
    assert_string_equal(s.last_extra, "yes");
    assert_int_equal(s.accepted, 1);

    peer_endpoint_stats_t st;
    bool found = false;
    assert_int_equal(peer_client_stats(f->client, "netA", &st, &found), RH_OK);
    assert_true(found);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.requests, N + 1);
    assert_int_equal(st.responses, N + 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.circuit, PEER_CIRCUIT_CLOSED);

    /* Bad arguments never call back. */
    assert_int_equal(peer_client_post(f->client, ep, "nosl", "{}", 2, NULL, 0, on_done, &r), RH_EINVAL);
    peer_header_t bad = {"X-Evil", "a\r\nInjected: 1"};
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, &bad, 1, on_done, &r), RH_EINVAL);
    assert_int_equal(peer_client_post(f->client, ep, NULL, NULL, 2, NULL, 0, on_done, &r), RH_EINVAL);
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, NULL, &r), RH_EINVAL);
    fx_run_until(f->base, NULL, 0, 20);
    assert_int_equal(r.done, N + 1);

    /* A server that closes after each answer: every request still succeeds, over new
     * connections. */
    s.mode = FX_CLOSE;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
        assert_true(fx_run_until(f->base, &r.done, N + 2 + i, 10000));
        assert_int_equal(r.status[N + 1 + i], RH_OK);
        assert_int_equal(r.http[N + 1 + i], 200);
    }
    assert_int_equal(s.accepted, 3); /* the first reused the open connection, then 2 new */
    peer_endpoint_free(ep);
    fx_server_stop(&s);
}

/* Beyond max_in_flight a post fails at once with RH_EAGAIN, never queues. */
static void test_inflight_bound(void **state)
{
    fixture_t *f = *state;
    fx_server_t s;
    fx_server_start(&s, f->base, 0, NULL, NULL, NULL);
    s.mode = FX_HANG;
    peer_endpoint_t *ep = make_ep("slow", s.port, "/", 400, 4, NULL);
    result_t r = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_EAGAIN);
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(f->client, "slow", &st, &found);
    assert_int_equal(st.in_flight, 4);
    assert_int_equal(st.limit, 4);
    assert_int_equal(st.rejected_inflight, 1);
    /* The server sees 4 requests, on 4 connections (one request per connection). */
    assert_true(fx_run_until(f->base, &s.requests, 4, 5000));
    assert_int_equal(s.accepted, 4);
    assert_int_equal(r.done, 0);
    /* All four time out. */
    assert_true(fx_run_until(f->base, &r.done, 4, 10000));
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.status[i], RH_ETIMEDOUT);
    peer_client_stats(f->client, "slow", &st, &found);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.timeouts, 4);
    assert_int_equal(st.circuit, PEER_CIRCUIT_OPEN); /* 4 consecutive failures >= 3 */
    peer_endpoint_free(ep);
    fx_server_stop(&s);
}

/* A hung endpoint times out at its deadline while a healthy endpoint keeps answering. */
static void test_timeout_isolation(void **state)
{
    fixture_t *f = *state;
    fx_server_t hung, ok;
    fx_server_start(&hung, f->base, 0, NULL, NULL, NULL);
    fx_server_start(&ok, f->base, 0, NULL, NULL, NULL);
    hung.mode = FX_HANG;
    peer_endpoint_t *slow = make_ep("hung", hung.port, "/", 1000, 8, NULL);
    peer_endpoint_t *fast = make_ep("ok", ok.port, "/", 5000, 8, NULL);

    result_t rs = {0}, rf = {0};
    uint64_t t0 = fx_now_ms();
    assert_int_equal(peer_client_post(f->client, slow, NULL, "{}", 2, NULL, 0, on_done, &rs), RH_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(peer_client_post(f->client, fast, NULL, "{}", 2, NULL, 0, on_done, &rf), RH_OK);
        assert_true(fx_run_until(f->base, &rf.done, i + 1, 5000));
        assert_int_equal(rf.status[i], RH_OK);
    }
    /* The healthy endpoint's requests all completed while the hung one was still pending. */
    assert_int_equal(rs.done, 0);
    assert_true(fx_run_until(f->base, &rs.done, 1, 10000));
    uint64_t took = rs.at_ms[0] - t0;
    assert_int_equal(rs.status[0], RH_ETIMEDOUT);
    assert_int_equal(rs.http[0], 0);
    assert_true(took >= 990);
    assert_true(took < 1000 + 1500); /* the deadline, plus a margin for slow runs */
    for (int i = 0; i < 5; i++)
        assert_true(rf.at_ms[i] < rs.at_ms[0]);
    peer_endpoint_free(slow);
    peer_endpoint_free(fast);
    fx_server_stop(&hung);
    fx_server_stop(&ok);
}

/* Deadlines posted at different times each end at their own time: one pool timer armed for the
 * earliest, re-armed when it fires early (the request it was armed for completed) and after
 * timing out one request (the next, posted later, is not taken with it). */
static void test_staggered_deadlines(void **state)
{
    fixture_t *f = *state;
    fx_server_t s;
    fx_server_start(&s, f->base, 0, NULL, NULL, NULL);
    peer_endpoint_t *ep = make_ep("staggered", s.port, "/", 600, 8, NULL);
    result_t r = {0};
    int never = 0;
    /* A completes at once: the timer armed for A's deadline stays armed */
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, 1, 5000));
    assert_int_equal(r.status[0], RH_OK);
    s.mode = FX_HANG;
    fx_run_until(f->base, &never, 1, 300);
    /* B and C, 300 ms apart, hang: the timer fires early for B (A's deadline), then for B, then
     * for C — each times out 600 ms after its post */
    uint64_t tb = fx_now_ms();
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    fx_run_until(f->base, &never, 1, 300);
    uint64_t tc = fx_now_ms();
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, 3, 5000));
    assert_int_equal(r.status[1], RH_ETIMEDOUT);
    assert_int_equal(r.status[2], RH_ETIMEDOUT);
    assert_true(r.at_ms[1] - tb >= 590 && r.at_ms[1] - tb < 600 + 400);
    assert_true(r.at_ms[2] - tc >= 590 && r.at_ms[2] - tc < 600 + 400);
    assert_true(r.at_ms[2] >= r.at_ms[1] + 200);
    peer_endpoint_free(ep);
    fx_server_stop(&s);
}

/* Connection refused: back-off opens after 3 failures, fails fast, probes, recovers. */
static void test_backoff_and_recovery(void **state)
{
    fixture_t *f = *state;
    uint16_t port = fx_closed_port();
    peer_endpoint_t *ep = make_ep("dead", port, "/", 2000, 8, NULL);
    result_t r = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
        assert_true(fx_run_until(f->base, &r.done, i + 1, 5000));
        assert_int_equal(r.status[i], RH_EIO);
        assert_int_equal(r.http[i], 0);
    }
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(f->client, "dead", &st, &found);
    assert_int_equal(st.circuit, PEER_CIRCUIT_OPEN);
    assert_int_equal(st.consecutive_failures, 3);
    assert_true(st.backoff_remaining_ms > 0 && st.backoff_remaining_ms <= 200);
    /* Fail fast during back-off: no callback, no connection attempt. */
    uint64_t connects = st.connects;
    for (int i = 0; i < 10; i++)
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r),
                         RH_EAGAIN);
    peer_client_stats(f->client, "dead", &st, &found);
    assert_int_equal(st.rejected_backoff, 10);
    assert_int_equal(st.connects, connects);

    /* Wait out the back-off; the probe fails again: the next period doubles (400 ms). */
    fx_run_until(f->base, NULL, 0, 250);
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    /* HALF-OPEN with the probe outstanding: others are refused. */
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_EAGAIN);
    assert_true(fx_run_until(f->base, &r.done, 4, 5000));
    assert_int_equal(r.status[3], RH_EIO);
    peer_client_stats(f->client, "dead", &st, &found);
    assert_int_equal(st.circuit, PEER_CIRCUIT_OPEN);
    assert_true(st.backoff_remaining_ms > 200 && st.backoff_remaining_ms <= 400);

    /* The member comes back on the same port. */
    fx_server_t s;
    fx_server_start(&s, f->base, port, NULL, NULL, NULL);
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_EAGAIN);
    fx_run_until(f->base, NULL, 0, 450);
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, 5, 5000));
    assert_int_equal(r.status[4], RH_OK);
    assert_int_equal(r.http[4], 200);
    peer_client_stats(f->client, "dead", &st, &found);
    assert_int_equal(st.circuit, PEER_CIRCUIT_CLOSED);
    assert_int_equal(st.consecutive_failures, 0);
    /* Closed again: several requests at once are accepted. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, 8, 5000));
    peer_endpoint_free(ep);
    fx_server_stop(&s);
}

/* 5xx answers are delivered and do NOT count as failures of the endpoint: a peer refusing one
 * message (ChirpStack's 500 for unhandled types, Helium's 500 "Downlink Lost") is not a dead peer
 * (issue #11 item 7). */
static void test_5xx_not_counted(void **state)
{
    fixture_t *f = *state;
    fx_server_t s;
    fx_server_start(&s, f->base, 0, NULL, NULL, NULL);
    s.mode = FX_503;
    peer_endpoint_t *ep = make_ep("e503", s.port, "/", 5000, 8, NULL);
    result_t r = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
        assert_true(fx_run_until(f->base, &r.done, i + 1, 5000));
        assert_int_equal(r.status[i], RH_OK);
        assert_int_equal(r.http[i], 503);
    }
    /* a fourth and fifth still go out: the circuit stayed closed */
    for (int i = 3; i < 5; i++) {
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
        assert_true(fx_run_until(f->base, &r.done, i + 1, 5000));
        assert_int_equal(r.http[i], 503);
    }
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(f->client, "e503", &st, &found);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.responses, 5);
    assert_int_equal(st.circuit, PEER_CIRCUIT_CLOSED);
    assert_int_equal(s.accepted, 1); /* 503 with keep-alive kept the connection */
    peer_endpoint_free(ep);
    fx_server_stop(&s);
}

/* A changed endpoint configuration (same id) retires the old pool and its connections. */
static void test_config_change_retires_pool(void **state)
{
    fixture_t *f = *state;
    fx_server_t s;
    fx_server_start(&s, f->base, 0, NULL, NULL, NULL);
    peer_endpoint_t *a = make_ep("chg", s.port, "/", 5000, 8, "Bearer one");
    peer_endpoint_t *a_same = make_ep("chg", s.port, "/", 5000, 8, "Bearer one");
    peer_endpoint_t *b = make_ep("chg", s.port, "/", 5000, 8, "Bearer two");
    assert_memory_equal(a->digest, a_same->digest, 32);
    assert_memory_not_equal(a->digest, b->digest, 32);
    result_t r = {0};
    assert_int_equal(peer_client_post(f->client, a, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, 1, 5000));
    assert_int_equal(peer_client_post(f->client, a_same, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, 2, 5000));
    assert_int_equal(s.accepted, 1); /* an equal rebuilt endpoint keeps the pool */
    assert_int_equal(peer_client_post(f->client, b, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(f->base, &r.done, 3, 5000));
    assert_string_equal(s.last_auth, "Bearer two");
    assert_int_equal(s.accepted, 2);
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(f->client, "chg", &st, &found);
    assert_int_equal(st.requests, 1); /* the new pool */
    peer_endpoint_free(a);
    peer_endpoint_free(a_same);
    peer_endpoint_free(b);
    fx_server_stop(&s);
}

/* The peer closes an idle keep-alive connection and we pick it before noticing: the request
 * fails (RH_EIO, not retried) but the endpoint is not blamed; the next request reconnects. */
static void test_stale_keepalive_not_counted(void **state)
{
    fixture_t *f = *state;
    fx_server_t s;
    fx_server_start(&s, f->base, 0, NULL, NULL, NULL);
    peer_endpoint_t *ep = make_ep("stale", s.port, "/", 5000, 8, NULL);
    result_t r = {0};
    peer_endpoint_stats_t st;
    bool found;
    for (int round = 0; round < 4; round++) {
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
        assert_true(fx_run_until(f->base, &r.done, 2 * round + 1, 5000));
        assert_int_equal(r.status[2 * round], RH_OK);
        /* Server drops the connection; the client posts before its loop sees the FIN. */
        evhttp_connection_free(s.last_evcon);
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
        assert_true(fx_run_until(f->base, &r.done, 2 * round + 2, 5000));
        assert_int_equal(r.status[2 * round + 1], RH_EIO);
        peer_client_stats(f->client, "stale", &st, &found);
        assert_int_equal(st.consecutive_failures, 0);
        assert_int_equal(st.circuit, PEER_CIRCUIT_CLOSED);
    }
    assert_int_equal(st.stale_failures, 4);
    assert_int_equal(st.failures, 0);
    assert_int_equal(s.accepted, 4);
    peer_endpoint_free(ep);
    fx_server_stop(&s);
}

/* Freeing the client completes outstanding requests with RH_EIO. */
static void test_free_with_outstanding(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    peer_client_t *c = NULL;
    assert_int_equal(peer_client_new(base, NULL, &c), RH_OK);
    fx_server_t s;
    fx_server_start(&s, base, 0, NULL, NULL, NULL);
    s.mode = FX_HANG;
    peer_endpoint_t *ep = make_ep("x", s.port, "/", 5000, 8, NULL);
    result_t r = {0};
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(base, &s.requests, 2, 5000));
    peer_client_free(c);
    assert_int_equal(r.done, 2);
    assert_int_equal(r.status[0], RH_EIO);
    assert_int_equal(r.status[1], RH_EIO);
    peer_endpoint_free(ep);
    fx_server_stop(&s);
    event_base_free(base);
}

/* Answers the server's oldest hung request with 200 {} (FX_HANG keeps them). */
static void answer_hung(fx_server_t *s, int i)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "{}");
    evhttp_send_reply(s->hung[i], 200, "OK", out);
    evbuffer_free(out);
    s->hung[i] = NULL;
}

typedef struct conn_sum {
    unsigned conns, waiting;
} conn_sum_t;

static void sum_cb(const peer_endpoint_stats_t *st, void *arg)
{
    conn_sum_t *c = arg;
    c->conns += st->connections;
    c->waiting += st->waiting;
}

static conn_sum_t sum_conns(peer_client_t *c)
{
    conn_sum_t s = {0, 0};
    peer_client_foreach_stats(c, sum_cb, &s);
    return s;
}

/* At most max_conns_per_endpoint connections: further requests wait for one (FIFO), the
 * in-flight bound limits how many wait (then RH_EAGAIN), a waiting request keeps its deadline. */
static void test_connection_bound_queues(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    peer_client_opts_t o = {.max_conns_per_endpoint = 2, .no_jitter = true};
    peer_client_t *c = NULL;
    assert_int_equal(peer_client_new(base, &o, &c), RH_OK);
    fx_server_t s;
    fx_server_start(&s, base, 0, NULL, NULL, NULL);
    s.mode = FX_HANG;
    peer_endpoint_t *ep = make_ep("capped", s.port, "/", 3000, 5, NULL);
    result_t r = {0};
    for (int i = 0; i < 5; i++)
        assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    /* the queue is full (in-flight bound 5 = 2 on connections + 3 waiting): a clear refusal */
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_EAGAIN);
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(c, "capped", &st, &found);
    assert_true(found);
    assert_int_equal(st.connection_limit, 2);
    assert_int_equal(st.connections, 2);
    assert_int_equal(st.waiting, 3);
    assert_int_equal(st.in_flight, 5);
    assert_int_equal(st.rejected_inflight, 1);
    assert_true(fx_run_until(base, &s.requests, 2, 5000));
    fx_run_until(base, NULL, 0, 200); /* nothing more reaches the server */
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.accepted, 2);
    /* answering one request hands its connection to the next waiting one, and so on */
    s.mode = FX_ECHO;
    answer_hung(&s, 0);
    answer_hung(&s, 1);
    assert_true(fx_run_until(base, &r.done, 5, 5000));
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.status[i], RH_OK);
        assert_int_equal(r.http[i], 200);
    }
    assert_int_equal(s.requests, 5);
    assert_int_equal(s.accepted, 2); /* never more than the bound */
    peer_client_stats(c, "capped", &st, &found);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.waiting, 0);
    assert_true(st.connections <= 2);
    peer_endpoint_free(ep);

    /* a waiting request that never gets a connection fails at its deadline */
    s.mode = FX_HANG;
    s.n_hung = 0;
    peer_endpoint_t *slow = make_ep("slow1", s.port, "/", 300, 4, NULL);
    peer_client_opts_t o1 = {.max_conns_per_endpoint = 1, .no_jitter = true};
    peer_client_t *c1 = NULL;
    assert_int_equal(peer_client_new(base, &o1, &c1), RH_OK);
    result_t r1 = {0};
    int before = s.requests;
    assert_int_equal(peer_client_post(c1, slow, NULL, "{}", 2, NULL, 0, on_done, &r1), RH_OK);
    assert_int_equal(peer_client_post(c1, slow, NULL, "{}", 2, NULL, 0, on_done, &r1), RH_OK);
    assert_true(fx_run_until(base, &r1.done, 2, 5000));
    assert_int_equal(r1.status[0], RH_ETIMEDOUT);
    assert_int_equal(r1.status[1], RH_ETIMEDOUT);
    assert_int_equal(s.requests - before, 1); /* the waiting one never went out */
    peer_client_free(c1);
    peer_endpoint_free(slow);
    peer_client_free(c);
    fx_server_stop(&s);
    event_base_free(base);
}

/* max_conns_total: the least recently used idle connection of another endpoint is closed to make
 * room; with none idle, the request waits until one becomes idle; never more than the bound. */
static void test_total_connection_bound(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    peer_client_opts_t o = {.max_conns_total = 2, .no_jitter = true};
    peer_client_t *c = NULL;
    assert_int_equal(peer_client_new(base, &o, &c), RH_OK);
    fx_server_t s;
    fx_server_start(&s, base, 0, NULL, NULL, NULL);
    peer_endpoint_t *ep[3];
    for (int i = 0; i < 3; i++) {
        char path[8];
        snprintf(path, sizeof path, "/e%d", i);
        ep[i] = make_ep(path + 1, s.port, path, 3000, 8, NULL);
    }
    result_t r = {0};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(peer_client_post(c, ep[i], NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
        assert_true(fx_run_until(base, &r.done, i + 1, 5000));
        assert_int_equal(r.status[i], RH_OK);
        fx_run_until(base, NULL, 0, 50); /* let the evicted connection be reaped */
        assert_true(sum_conns(c).conns <= 2);
    }
    assert_int_equal(s.accepted, 3);
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(c, "e0", &st, &found);
    assert_int_equal(st.evicted, 1); /* e0's was the least recently used idle connection */
    assert_int_equal(st.connections, 0);

    /* both slots busy: a third endpoint waits until a connection becomes idle */
    s.mode = FX_HANG;
    result_t h = {0};
    assert_int_equal(peer_client_post(c, ep[1], NULL, "{}", 2, NULL, 0, on_done, &h), RH_OK);
    assert_int_equal(peer_client_post(c, ep[2], NULL, "{}", 2, NULL, 0, on_done, &h), RH_OK);
    assert_int_equal(peer_client_post(c, ep[0], NULL, "{}", 2, NULL, 0, on_done, &h), RH_OK);
    fx_run_until(base, NULL, 0, 200);
    assert_int_equal(s.n_hung, 2);
    conn_sum_t cs = sum_conns(c);
    assert_int_equal(cs.conns, 2);
    assert_int_equal(cs.waiting, 1);
    answer_hung(&s, 0); /* e1's connection goes idle: closed for e0, which then gets through */
    assert_true(fx_run_until(base, &h.done, 1, 5000));
    int hung_before = s.n_hung;
    for (int i = 0; i < 100 && s.n_hung == hung_before; i++)
        fx_run_until(base, NULL, 0, 20);
    assert_int_equal(s.n_hung, 3);
    assert_true(sum_conns(c).conns <= 2);
    s.mode = FX_ECHO;
    answer_hung(&s, 1);
    answer_hung(&s, 2);
    assert_true(fx_run_until(base, &h.done, 3, 5000));
    for (int i = 0; i < 3; i++)
        assert_int_equal(h.status[i], RH_OK);
    for (int i = 0; i < 3; i++)
        peer_endpoint_free(ep[i]);
    peer_client_free(c);
    fx_server_stop(&s);
    event_base_free(base);
}

/* ---- a scripted raw server: answers each request with fixed bytes, possibly in two writes ---- */

typedef struct raw_server {
    struct event_base *base;
    struct evconnlistener *lev;
    uint16_t port;
    int accepted, requests;
    const char *first, *second; /* the answer: first at once, second (if any) 30 ms later */
    struct bufferevent *pending; /* the connection waiting for `second` */
    struct event *later;
    struct bufferevent *conns[4]; /* open server sides, freed by raw_stop */
} raw_server_t;

static void raw_later(evutil_socket_t fd, short w, void *arg)
{
    (void)fd;
    (void)w;
    raw_server_t *s = arg;
    if (s->pending)
        bufferevent_write(s->pending, s->second, strlen(s->second));
}

static void raw_read(struct bufferevent *bev, void *arg)
{
    raw_server_t *s = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) { /* one whole request (head + Content-Length body) at a time */
        size_t len = evbuffer_get_length(in);
        char *text = (char *)evbuffer_pullup(in, -1);
        char *end = len ? memmem(text, len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return;
        char *cl = memmem(text, (size_t)(end - text), "Content-Length: ", 16);
        size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
        size_t need = (size_t)(end - text) + 4 + body;
        if (len < need)
            return;
        evbuffer_drain(in, need);
        s->requests++;
        bufferevent_write(bev, s->first, strlen(s->first));
        if (s->second) {
            s->pending = bev;
            struct timeval tv = {0, 30000};
            event_add(s->later, &tv);
        }
    }
}

static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    raw_server_t *s = arg;
    (void)what;
    if (s->pending == bev)
        s->pending = NULL;
    for (int i = 0; i < 4; i++)
        if (s->conns[i] == bev)
            s->conns[i] = NULL;
    bufferevent_free(bev);
}

static void raw_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n,
                       void *arg)
{
    (void)l;
    (void)sa;
    (void)n;
    raw_server_t *s = arg;
    s->accepted++;
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(bev);
    assert_true(s->accepted <= 4);
    s->conns[s->accepted - 1] = bev;
    bufferevent_setcb(bev, raw_read, NULL, raw_event, s);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void raw_start(raw_server_t *s, struct event_base *base, const char *first,
                      const char *second)
{
    memset(s, 0, sizeof *s);
    s->base = base;
    s->first = first;
    s->second = second;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->lev = evconnlistener_new_bind(base, raw_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                     16, (struct sockaddr *)&sin, sizeof sin);
    assert_non_null(s->lev);
    struct sockaddr_in got;
    socklen_t gl = sizeof got;
    assert_int_equal(getsockname(evconnlistener_get_fd(s->lev), (struct sockaddr *)&got, &gl), 0);
    s->port = ntohs(got.sin_port);
    s->later = evtimer_new(base, raw_later, s);
}

static void raw_stop(raw_server_t *s)
{
    for (int i = 0; i < 4; i++)
        if (s->conns[i])
            bufferevent_free(s->conns[i]);
    evconnlistener_free(s->lev);
    event_free(s->later);
}

/* Runs `n` sequential requests against a raw server; each must complete with 200 and `body`. */
static void raw_requests(fixture_t *f, raw_server_t *s, int n, const char *body)
{
    peer_endpoint_t *ep = make_ep("raw", s->port, "/", 5000, 8, NULL);
    result_t r = {0};
    for (int i = 0; i < n; i++) {
        assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_done, &r),
                         RH_OK);
        assert_true(fx_run_until(f->base, &r.done, i + 1, 10000));
        assert_int_equal(r.status[i], RH_OK);
        assert_int_equal(r.http[i], 200);
        assert_string_equal(r.body[i], body);
    }
    peer_endpoint_free(ep);
}

/* A plain connection reads with its own event (peer_client.c conn_plain_read_cb): an answer in
 * two writes 30 ms apart (two reads) completes once and the connection is reused; an answer
 * followed by stray bytes completes, and the next request takes a new connection. */
static void test_plain_reads(void **state)
{
    fixture_t *f = *state;
    raw_server_t s;
    raw_start(&s, f->base, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"a\":", "12345}");
    raw_requests(f, &s, 3, "{\"a\":12345}");
    assert_int_equal(s.requests, 3);
    assert_int_equal(s.accepted, 1);
    raw_stop(&s);

    raw_start(&s, f->base, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n", NULL);
    raw_requests(f, &s, 2, "{}");
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.accepted, 2); /* not reused after the stray bytes */
    raw_stop(&s);
}

typedef struct stamp_result {
    peer_client_t *client;
    int done;
    uint64_t arrival[8], cb_real[8];
} stamp_result_t;

static void on_stamped(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    (void)body, (void)len;
    stamp_result_t *r = arg;
    assert_int_equal(status, RH_OK);
    assert_int_equal(http_status, 200);
    r->arrival[r->done] = peer_client_response_arrival_ns(r->client);
    r->cb_real[r->done] = (uint64_t)rh_real_ns();
    r->done++;
}

/* opts.rx_stamps: during a response callback the client says when the kernel received the
 * response (between the post and the callback); 0 outside callbacks and without rx_stamps. */
static void test_response_arrival_stamps(void **state)
{
    fixture_t *f = *state;
    fx_server_t s;
    fx_server_start(&s, f->base, 0, NULL, NULL, NULL);
    peer_endpoint_t *ep = make_ep("netA", s.port, "/bi", 5000, 8, NULL);
    peer_client_t *stamped = NULL;
    peer_client_opts_t o = {.rx_stamps = true};
    assert_int_equal(peer_client_new(f->base, &o, &stamped), RH_OK);
    stamp_result_t r = {.client = stamped}, plain = {.client = f->client};
    uint64_t posted[8];
    for (int i = 0; i < 4; i++) {
        posted[i] = (uint64_t)rh_real_ns();
        assert_int_equal(peer_client_post(stamped, ep, NULL, "{}", 2, NULL, 0, on_stamped, &r),
                         RH_OK);
        assert_true(fx_run_until(f->base, &r.done, i + 1, 10000));
        assert_int_equal(peer_client_response_arrival_ns(stamped), 0); /* outside a callback */
        if (i == 0)
            usleep(200000); /* the kernel turns timestamping on a moment after it is asked */
    }
    for (int i = 1; i < 4; i++) { /* the first response may precede the kernel's timestamps */
        assert_true(r.arrival[i] >= posted[i]);
        assert_true(r.arrival[i] <= r.cb_real[i]);
    }
    assert_int_equal(peer_client_post(f->client, ep, NULL, "{}", 2, NULL, 0, on_stamped, &plain),
                     RH_OK);
    assert_true(fx_run_until(f->base, &plain.done, 1, 10000));
    assert_int_equal(plain.arrival[0], 0); /* a client without rx_stamps */
    peer_client_free(stamped);
    peer_endpoint_free(ep);
    fx_server_stop(&s);
}

int main(void)
{
    rh_log_set_level_name("err");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_arrival_stamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inflight_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staggered_deadlines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_and_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_5xx_not_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_change_retires_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_keepalive_not_counted, setup, teardown),
        cmocka_unit_test(test_free_with_outstanding),
        cmocka_unit_test(test_connection_bound_queues),
        cmocka_unit_test(test_total_connection_bound),
        cmocka_unit_test_setup_teardown(test_plain_reads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
