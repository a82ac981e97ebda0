/*
 * fuzz_peer_response.c — libFuzzer target over the outbound client pool's response handling
 * (peers/peer_client.c: http_parser over the member's answer, body accumulation and its limit,
 * keep-alive decisions, EOF-delimited bodies, failure accounting). For each input the pool POSTs
 * a request to a scripted server on 127.0.0.1 (an ephemeral port of this process, loopback only)
 * that reads the request and answers with the input bytes, then closes its side. The completion
 * callback must run exactly once with a consistent result: RH_OK with a status 100..599 and a
 * body within the limit, or RH_EIO / RH_ETIMEDOUT without one.
 */
#include "peer_client.h"
#include "peer_endpoint.h"
#include "rh_log.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY 8192

static struct event_base *base;
static peer_client_t *client;
static peer_endpoint_t *ep;
static int lfd = -1;

static struct {
    const uint8_t *data;
    size_t size;
    int conn;        /* accepted server-side socket, -1 none */
    int answered;    /* input written and our side shut down */
    int calls;       /* completion callbacks */
} cur;

static void on_done(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    (void)arg;
    cur.calls++;
    if (status == RH_OK) {
        if (http_status < 100 || http_status > 599 || len > MAX_BODY || (len && !body))
            abort();
    } else if (status != RH_EIO && status != RH_ETIMEDOUT) {
        abort();
    } else if (http_status != 0 || body) {
        abort();
    }
}

static void init(void)
{
    rh_log_set_level_name("err");
    base = event_base_new();
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (!base || lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, 16) != 0 || getsockname(lfd, (struct sockaddr *)&a, &al) != 0)
        abort();
    evutil_make_socket_nonblocking(lfd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/ts002", ntohs(a.sin_port));
    Roamhub__V1__Endpoint rec = ROAMHUB__V1__ENDPOINT__INIT;
    rec.id = "fuzz";
    rec.net_id = 0x13;
    rec.url = url;
    rec.timeout_ms = 2000;
    rec.max_in_flight = 4;
    peer_client_opts_t o = {.failure_threshold = 0xFFFFFFFFu, .no_jitter = true,
                            .max_body = MAX_BODY};
    if (peer_endpoint_new(&rec, 0, &ep, NULL) != RH_OK ||
        peer_client_new(base, &o, &client) != RH_OK)
        abort();
}

/* The scripted server: accept, read the request head, answer with the input, shut down. */
static void serve(void)
{
    if (cur.conn < 0) {
        int c = accept(lfd, NULL, NULL);
        if (c < 0)
            return;
        evutil_make_socket_nonblocking(c);
        cur.conn = c;
    }
    if (cur.answered)
        return;
    char buf[4096];
    ssize_t n = read(cur.conn, buf, sizeof buf);
    if (n <= 0)
        return; /* the request (about 150 bytes) arrives in one segment on loopback */
    size_t off = 0;
    while (off < cur.size) {
        ssize_t w = write(cur.conn, cur.data + off, cur.size - off);
        if (w > 0)
            off += (size_t)w;
        else
            event_base_loop(base, EVLOOP_NONBLOCK);
    }
    shutdown(cur.conn, SHUT_WR);
    cur.answered = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        init();
    if (size > 65536)
        return 0;
    memset(&cur, 0, sizeof cur);
    cur.data = data;
    cur.size = size;
    cur.conn = -1;
    peer_client_close_idle(client); /* every input on a fresh connection */
    event_base_loop(base, EVLOOP_NONBLOCK);
    int rc = peer_client_post(client, ep, NULL, "{}", 2, NULL, 0, on_done, NULL);
    if (rc != RH_OK)
        abort();
    for (int spins = 0; cur.calls == 0 && spins < 200000; spins++) {
        serve();
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (cur.answered && cur.calls == 0)
            event_base_loop(base, EVLOOP_ONCE); /* wait for the client's next event */
    }
    if (cur.calls != 1)
        abort();
    if (cur.conn >= 0) {
        char sink[4096];
        while (read(cur.conn, sink, sizeof sink) > 0)
            ;
        close(cur.conn);
    }
    return 0;
}
