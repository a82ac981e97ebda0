/* Unit tests for broker/http_server: parsing, keep-alive, pipelining, size caps, header/body
 * deadlines and the connection cap. The server runs its event loop in a second thread; the test
 * thread is a plain blocking-socket client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_server.h"
#include "rh_err.h"
#include "rh_log.h"
#include "rh_time.h"

static struct event_base *hs_req_base_for_test; /* the fixture's loop (one at a time) */

typedef struct fixture {
    struct event_base *base;
    hs_server_t *srv;
    pthread_t thr;
    struct event *stop;
    uint16_t port;
} fixture_t;

/* Streaming: GET /stream sends chunk "first", then every 50 ms "tick N" until N = 3 (and ends) or,
 * for /stream-forever, until the client goes away, which the ticker records in `gone_seen`. */
typedef struct streamer {
    hs_req_t *req;
    struct event *ev;
    int n, forever, flood;
} streamer_t;
static volatile int gone_seen, stream_rc, flood_eagain;

static void stream_tick(evutil_socket_t fd, short what, void *arg)
{
    streamer_t *st = arg;
    (void)fd;
    (void)what;
    if (hs_req_gone(st->req)) {
        gone_seen = 1;
    } else if (st->flood && !flood_eagain) {
        /* 256 KiB per tick to a client that does not read: once the socket buffers are full
         * the output buffer passes the 512 KiB bound and the write is refused, not queued */
        static char big[256 * 1024];
        if (hs_stream_write(st->req, big, sizeof big, 512 * 1024) == RH_EAGAIN)
            flood_eagain = 1;
        struct timeval tv = {0, 20000};
        evtimer_add(st->ev, &tv);
        return;
    } else if (st->forever || st->n < 3) {
        char b[32];
        int n = snprintf(b, sizeof b, "tick %d\n", ++st->n);
        stream_rc = hs_stream_write(st->req, b, (size_t)n, 1 << 20);
        struct timeval tv = {0, 50000};
        evtimer_add(st->ev, &tv);
        return;
    }
    hs_stream_end(st->req);
    event_free(st->ev);
    free(st);
}

static void start_stream(hs_req_t *req, int forever, int flood)
{
    if (hs_stream_begin(req, 200, "text/event-stream", "Cache-Control: no-store\r\n") != 0) {
        hs_reply(req, 505, "text/plain", "no\n", 3);
        return;
    }
    hs_stream_write(req, "first\n", 6, 1 << 20);
    streamer_t *st = calloc(1, sizeof *st);
    st->req = req;
    st->forever = forever || flood;
    st->flood = flood;
    st->ev = evtimer_new(hs_req_base_for_test, stream_tick, st);
    struct timeval tv = {0, 50000};
    evtimer_add(st->ev, &tv);
}

#define BIG_REPLY (6 * 1024 * 1024) /* more than a loopback socket takes at once */

/* Echo handler: replies 200 with "<method> <path>?<query> h=<X-Test> body=<body>". */
static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    hs_req_t *req = arg;
    (void)fd;
    (void)what;
    hs_reply(req, 200, "text/plain", "later", 5);
}

static hs_server_t *count_srv; /* GET /count answers this server's open connections */

static void echo(hs_req_t *req, void *arg)
{
    (void)arg;
    if (!strcmp(hs_req_path(req), "/block")) { /* holds the loop for 300 ms, then answers */
        usleep(300000);
        hs_reply(req, 200, "text/plain", "blocked", 7);
        return;
    }
    if (!strcmp(hs_req_path(req), "/count")) {
        char b[32];
        int n = snprintf(b, sizeof b, "conns=%u", hs_server_connections(count_srv));
        hs_reply(req, 200, "text/plain", b, (size_t)n);
        return;
    }
    if (!strcmp(hs_req_path(req), "/later")) { /* answered 200 ms after dispatch */
        struct timeval tv = {0, 200000};
        event_base_once(hs_req_base_for_test, -1, EV_TIMEOUT, later_cb, req, &tv);
        return;
    }
    if (!strncmp(hs_req_path(req), "/stream", 7)) {
        start_stream(req, !strcmp(hs_req_path(req), "/stream-forever"),
                     !strcmp(hs_req_path(req), "/stream-flood"));
        return;
    }
    if (!strcmp(hs_req_path(req), "/big")) { /* BIG_REPLY bytes: byte i is 'a' + i % 23 */
        static char big[BIG_REPLY];
        for (size_t i = 0; i < sizeof big; i++)
            big[i] = (char)('a' + i % 23);
        hs_reply(req, 200, "text/plain", big, sizeof big);
        return;
    }
    size_t len;
    const char *body = hs_req_body(req, &len);
    char out[70000];
    const char *h = hs_req_header(req, "x-test");
    int n = snprintf(out, sizeof out, "%s %s?%s h=%s body=%.*s", hs_req_method(req),
                     hs_req_path(req), hs_req_query(req), h ? h : "-", (int)len, body);
    hs_reply(req, 200, "text/plain", out, (size_t)n);
}

static void *loop_thread(void *arg)
{
    fixture_t *f = arg;
    event_base_dispatch(f->base);
    return NULL;
}

static void stop_cb(evutil_socket_t fd, short ev, void *arg)
{
    fixture_t *f = arg;
    (void)fd;
    (void)ev;
    event_base_loopbreak(f->base);
}

static fixture_t *start(unsigned header_ms, unsigned body_ms, unsigned max_conns)
{
    fixture_t *f = calloc(1, sizeof *f);
    evthread_use_pthreads();
    f->base = event_base_new();
    hs_req_base_for_test = f->base;
    hs_opts_t o = {.bind_addr = "127.0.0.1", .port = 0, .listen_fd = -1,
                   .header_timeout_ms = header_ms, .body_timeout_ms = body_ms,
                   .max_connections = max_conns, .max_body_bytes = 1024,
                   .max_header_bytes = 2048, .handler = echo};
    f->srv = hs_server_new(f->base, &o);
    assert_non_null(f->srv);
    f->port = hs_server_port(f->srv);
    assert_true(f->port > 0);
    f->stop = event_new(f->base, -1, 0, stop_cb, f);
    pthread_create(&f->thr, NULL, loop_thread, f);
    return f;
}

static void stop(fixture_t *f)
{
    event_active(f->stop, 0, 0);
    pthread_join(f->thr, NULL);
    hs_server_free(f->srv);
    event_free(f->stop);
    event_base_free(f->base);
    free(f);
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Reads until `want` responses ("HTTP/1.1 " occurrences with full bodies) or EOF/timeout. */
static size_t recv_until(int fd, char *buf, size_t cap, const char *needle, unsigned timeout_ms)
{
    size_t n = 0;
    uint64_t end = rh_mono_ms() + timeout_ms;
    buf[0] = 0;
    while (n < cap - 1 && rh_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = 0;
        if (needle && strstr(buf, needle))
            break;
    }
    return n;
}

/* Returns 1 if the peer closed the connection within timeout_ms. */
static int closed_within(int fd, unsigned timeout_ms)
{
    char b[512];
    uint64_t end = rh_mono_ms() + timeout_ms;
    while (rh_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r <= 0)
            return 1;
    }
    return 0;
}

static void test_post_and_keepalive(void **state)
{
    (void)state;
    fixture_t *f = start(2000, 2000, 16);
    int fd = dial(f->port);
    const char *req = "POST /sns?x=1 HTTP/1.1\r\nHost: h\r\nX-Test: abc\r\nContent-Length: 5\r\n\r\nhello";
    char buf[4096];
    send_all(fd, req, strlen(req));
    recv_until(fd, buf, sizeof buf, "body=hello", 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(buf, "POST /sns?x=1 h=abc body=hello"));
    /* same connection, second request */
    send_all(fd, req, strlen(req));
    recv_until(fd, buf, sizeof buf, "body=hello", 2000);
    assert_non_null(strstr(buf, "body=hello"));
    close(fd);
    stop(f);
}

/* A keep-alive reply larger than the socket takes at once (the client reads only after 300 ms):
 * the part sent at once and the part queued arrive complete and in order, and the connection
 * then serves the next request (conn_io: sendmsg now, the rest written when writable). */
static void test_big_reply_partly_queued_then_keepalive(void **state)
{
    (void)state;
    fixture_t *f = start(2000, 2000, 16);
    int fd = dial(f->port);
    const char *req = "GET /big HTTP/1.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    usleep(300000);
    size_t cap = BIG_REPLY + 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    char *body = NULL;
    uint64_t end = rh_mono_ms() + 10000;
    while (rh_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        assert_true(r > 0);
        n += (size_t)r;
        buf[n] = 0;
        if (!body && (body = strstr(buf, "\r\n\r\n")) != NULL)
            body += 4;
        if (body && (size_t)(buf + n - body) >= BIG_REPLY)
            break;
    }
    assert_non_null(body);
    assert_non_null(strstr(buf, "Content-Length: 6291456\r\n"));
    assert_int_equal((size_t)(buf + n - body), BIG_REPLY);
    for (size_t i = 0; i < BIG_REPLY; i++)
        if (body[i] != (char)('a' + i % 23))
            fail_msg("byte %zu of the reply is %d", i, body[i]);
    free(buf);
    const char *next = "POST /next HTTP/1.1\r\nContent-Length: 2\r\n\r\nok";
    send_all(fd, next, strlen(next));
    char small[4096];
    recv_until(fd, small, sizeof small, "body=ok", 2000);
    assert_non_null(strstr(small, "POST /next? h=- body=ok"));
    close(fd);
    stop(f);
}

static void test_pipelined_in_order(void **state)
{
    (void)state;
    fixture_t *f = start(2000, 2000, 16);
    int fd = dial(f->port);
    const char *two = "POST /a HTTP/1.1\r\nContent-Length: 1\r\n\r\n1"
                      "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n22\r\n0\r\n\r\n";
    send_all(fd, two, strlen(two));
    char buf[4096];
    recv_until(fd, buf, sizeof buf, "body=22", 2000);
    char *a = strstr(buf, "POST /a? h=- body=1");
    char *b = strstr(buf, "POST /b? h=- body=22");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    close(fd);
    stop(f);
}

/* A client that half-closes (shutdown SHUT_WR) right after its request still gets the answer,
 * even when the handler answers later (reading stays on while a request is pending, so the
 * server sees the EOF before the answer). */
static void test_half_close_still_answered(void **state)
{
    (void)state;
    fixture_t *f = start(2000, 2000, 16);
    int fd = dial(f->port);
    const char *req = "POST /later HTTP/1.1\r\nContent-Length: 1\r\n\r\nx";
    send_all(fd, req, strlen(req));
    shutdown(fd, SHUT_WR);
    char buf[4096];
    recv_until(fd, buf, sizeof buf, "later", 3000);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK"));
    assert_non_null(strstr(buf, "\r\n\r\nlater"));
    assert_int_equal(closed_within(fd, 3000), 1);
    close(fd);
    stop(f);
}

static void test_size_caps(void **state)
{
    (void)state;
    fixture_t *f = start(2000, 2000, 16);
    char buf[4096];
    int fd = dial(f->port);
    const char *big = "POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n";
    send_all(fd, big, strlen(big));
    recv_until(fd, buf, sizeof buf, "\r\n\r\n", 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    assert_true(closed_within(fd, 2000));
    close(fd);

    fd = dial(f->port);
    char hdr[4000];
    memset(hdr, 'a', sizeof hdr);
    send_all(fd, "POST / HTTP/1.1\r\nX-Big: ", 24);
    send_all(fd, hdr, sizeof hdr);
    send_all(fd, "\r\n\r\n", 4);
    recv_until(fd, buf, sizeof buf, "\r\n\r\n", 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 431"));
    close(fd);

    fd = dial(f->port);
    send_all(fd, "GARBAGE\r\n\r\n", 11);
    recv_until(fd, buf, sizeof buf, "\r\n\r\n", 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 400"));
    close(fd);
    stop(f);
}

static void test_deadlines(void **state)
{
    (void)state;
    fixture_t *f = start(300, 300, 16);
    /* slowloris: headers trickled one byte every 100 ms never complete */
    int fd = dial(f->port);
    const char *part = "POST / HTTP/1.1\r\nX-A: b";
    uint64_t t0 = rh_mono_ms();
    int closed = 0;
    for (size_t i = 0; i < strlen(part) && !closed; i++) {
        send_all(fd, part + i, 1);
        closed = closed_within(fd, 100);
    }
    if (!closed)
        closed = closed_within(fd, 2000);
    assert_true(closed);
    assert_true(rh_mono_ms() - t0 < 2000);
    close(fd);
    /* slow body */
    fd = dial(f->port);
    send_all(fd, "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", 42);
    assert_true(closed_within(fd, 2000));
    close(fd);
    /* an idle connection that never sends anything is closed too */
    fd = dial(f->port);
    assert_true(closed_within(fd, 2000));
    close(fd);
    stop(f);
}

/* Deadlines on a keep-alive connection move with every message (the timer is armed lazily):
 * requests every 100 ms for 1.5 s, across several firings of the 300 ms header/body timer while
 * the 60 s idle deadline was the current one, are all answered; then a request that stops
 * half-way through its headers still meets the 300 ms header deadline (earlier than the armed
 * idle timer: re-armed), not the idle one. */
static void test_deadlines_move_with_keepalive(void **state)
{
    (void)state;
    fixture_t *f = start(300, 300, 16);
    int fd = dial(f->port);
    const char *req = "POST /k HTTP/1.1\r\nContent-Length: 1\r\n\r\nk";
    char buf[4096];
    for (int i = 0; i < 15; i++) {
        send_all(fd, req, strlen(req));
        recv_until(fd, buf, sizeof buf, "body=k", 2000);
        assert_non_null(strstr(buf, "POST /k? h=- body=k"));
        usleep(100000);
    }
    usleep(400000); /* idle: the 60 s idle deadline is the current one, the timer re-armed */
    send_all(fd, "POST /k HTTP/1.1\r\nX-A: b", 24);
    uint64_t t0 = rh_mono_ms();
    assert_true(closed_within(fd, 3000));
    uint64_t took = rh_mono_ms() - t0;
    assert_true(took >= 250);
    assert_true(took < 2000);
    close(fd);
    stop(f);
}

static void test_connection_cap(void **state)
{
    (void)state;
    fixture_t *f = start(1500, 1500, 2);
    int a = dial(f->port), b = dial(f->port);
    usleep(100000);
    int c = dial(f->port); /* queued in the backlog, not served while a and b are open */
    const char *req = "POST /c HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    send_all(c, req, strlen(req));
    char buf[1024];
    recv_until(c, buf, sizeof buf, "body=", 300);
    assert_null(strstr(buf, "200 OK"));
    close(a);
    recv_until(c, buf, sizeof buf, "body=", 3000);
    assert_non_null(strstr(buf, "POST /c"));
    close(b);
    close(c);
    stop(f);
}

/* Connections already open are served before a burst of new ones is let in: one accept per
 * readiness of the listener (as nginx's `multi_accept off`). While the loop is held, 20 clients
 * connect (the kernel completes their handshakes) and then an open connection sends a request:
 * the listener became ready first, so accepting until EAGAIN would have taken all 20 before that
 * request (it would count 22 connections); then every new connection is still served. */
static void test_open_connections_before_a_burst_of_new_ones(void **state)
{
    (void)state;
    fixture_t *f = start(3000, 3000, 64);
    count_srv = f->srv;
    int a = dial(f->port), b = dial(f->port), burst[20];
    char buf[1024];
    const char *blk = "GET /block HTTP/1.1\r\n\r\n", *cnt = "GET /count HTTP/1.1\r\n\r\n";
    send_all(b, cnt, strlen(cnt)); /* both accepted and served before the loop is held */
    recv_until(b, buf, sizeof buf, "conns=", 2000);
    assert_non_null(strstr(buf, "conns=2"));
    send_all(a, blk, strlen(blk));
    usleep(100000); /* the loop is in the /block handler */
    for (int i = 0; i < 20; i++)
        burst[i] = dial(f->port);
    send_all(b, cnt, strlen(cnt));
    recv_until(a, buf, sizeof buf, "blocked", 3000);
    assert_non_null(strstr(buf, "blocked"));
    recv_until(b, buf, sizeof buf, "conns=", 3000);
    char *at = strstr(buf, "conns=");
    assert_non_null(at);
    unsigned n = (unsigned)atoi(at + 6);
    assert_true(n >= 2 && n <= 3); /* a, b and at most the one new connection of that turn */
    for (int i = 0; i < 20; i++) {
        const char *req = "POST /n HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
        send_all(burst[i], req, strlen(req));
    }
    for (int i = 0; i < 20; i++) {
        recv_until(burst[i], buf, sizeof buf, "body=", 3000);
        assert_non_null(strstr(buf, "POST /n"));
        close(burst[i]);
    }
    close(a);
    close(b);
    stop(f);
}

static void test_stream_chunked(void **state)
{
    (void)state;
    fixture_t *f = start(2000, 2000, 16);
    int fd = dial(f->port);
    const char *req = "GET /stream HTTP/1.1\r\nHost: h\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[4096];
    recv_until(fd, buf, sizeof buf, "0\r\n\r\n", 3000);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"));
    assert_non_null(strstr(buf, "Content-Type: text/event-stream\r\n"));
    assert_null(strstr(buf, "Content-Length"));
    /* chunk framing: hex length, CRLF, data, CRLF; then the terminating chunk */
    char *body = strstr(buf, "\r\n\r\n") + 4;
    assert_string_equal(body, "6\r\nfirst\n\r\n7\r\ntick 1\n\r\n7\r\ntick 2\n\r\n7\r\ntick 3\n\r\n0\r\n\r\n");
    assert_true(closed_within(fd, 2000)); /* Connection: close after the stream */
    close(fd);
    /* HTTP/1.0 clients get no chunked stream */
    fd = dial(f->port);
    send_all(fd, "GET /stream HTTP/1.0\r\n\r\n", 25);
    recv_until(fd, buf, sizeof buf, "no\n", 2000);
    assert_non_null(strstr(buf, "HTTP/1.1 505"));
    close(fd);
    stop(f);
}

static void test_stream_client_gone(void **state)
{
    (void)state;
    fixture_t *f = start(300, 300, 16);
    gone_seen = 0;
    int fd = dial(f->port);
    const char *req = "GET /stream-forever HTTP/1.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    char buf[4096];
    /* no deadline while streaming: still ticking well after the 300 ms header/idle limits */
    usleep(800000);
    recv_until(fd, buf, sizeof buf, "tick 12", 3000);
    assert_non_null(strstr(buf, "tick 12"));
    close(fd);
    uint64_t end = rh_mono_ms() + 3000;
    while (!gone_seen && rh_mono_ms() < end)
        usleep(20000);
    assert_true(gone_seen);
    stop(f);
}

static void test_stream_bounded_for_a_client_not_reading(void **state)
{
    (void)state;
    fixture_t *f = start(2000, 2000, 16);
    flood_eagain = 0;
    gone_seen = 0;
    int fd = dial(f->port);
    const char *req = "GET /stream-flood HTTP/1.1\r\n\r\n";
    send_all(fd, req, strlen(req));
    uint64_t end = rh_mono_ms() + 10000;
    while (!flood_eagain && rh_mono_ms() < end)
        usleep(20000);
    assert_true(flood_eagain);
    close(fd);
    end = rh_mono_ms() + 3000;
    while (!gone_seen && rh_mono_ms() < end)
        usleep(20000);
    assert_true(gone_seen);
    stop(f);
}

static atomic_int libevent_msgs;

static void count_libevent_log(int severity, const char *msg)
{
    (void)severity;
    (void)msg;
    atomic_fetch_add(&libevent_msgs, 1);
}

static int highest_open_fd(void)
{
    int hi = 2;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > hi)
            hi = fd;
    }
    if (d)
        closedir(d);
    return hi;
}

/* Out of file descriptors, accept() fails with EMFILE while connections wait in the backlog:
 * the server must pause accepting (a few failed accepts, no libevent retry storm) and serve again
 * once descriptors are free. Regression: libevent retried at once, 100 % CPU and a log line per
 * retry (issue 16 item 3). */
static void test_accept_pauses_when_out_of_descriptors(void **state)
{
    (void)state;
    int logfd[2];
    assert_int_equal(pipe(logfd), 0);
    rh_log_set_fd(logfd[1]);
    event_set_log_callback(count_libevent_log);
    fixture_t *f = start(5000, 5000, 1000);
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    struct rlimit low = old;
    low.rlim_cur = (rlim_t)highest_open_fd() + 1 + 12;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

    /* The client side takes every descriptor left; its connections complete in the backlog. */
    int fds[1024], n = 0; /* lower fds closed earlier are free too */
    while (n < 1024) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) {
            assert_int_equal(errno, EMFILE);
            break;
        }
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f->port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
        fds[n++] = fd;
    }
    assert_true(n < 1024);
    usleep(700 * 1000);
    unsigned long errs = hs_server_accept_errors(f->srv);
    assert_true(errs >= 1);   /* the server did hit EMFILE ... */
    assert_true(errs <= 10);  /* ... and paused (100, 200, 400 ms) instead of spinning */
    assert_int_equal(atomic_load(&libevent_msgs), 0);

    for (int i = 0; i < n; i++)
        close(fds[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    int c = dial(f->port);
    const char *req = "POST /again HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    send_all(c, req, strlen(req));
    char buf[1024];
    recv_until(c, buf, sizeof buf, "body=", 3000);
    assert_non_null(strstr(buf, "POST /again"));
    close(c);
    stop(f);
    event_set_log_callback(NULL);
    rh_log_set_fd(2);
    char logs[8192];
    ssize_t got = read(logfd[0], logs, sizeof logs - 1);
    assert_true(got > 0);
    logs[got] = 0;
    assert_non_null(strstr(logs, "msg=\"accept failed, pausing accept\""));
    close(logfd[0]);
    close(logfd[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_and_keepalive), cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_big_reply_partly_queued_then_keepalive),
        cmocka_unit_test(test_half_close_still_answered), cmocka_unit_test(test_size_caps),          cmocka_unit_test(test_deadlines), cmocka_unit_test(test_deadlines_move_with_keepalive),
        cmocka_unit_test(test_connection_cap),     cmocka_unit_test(test_stream_chunked),
        cmocka_unit_test(test_open_connections_before_a_burst_of_new_ones),
        cmocka_unit_test(test_stream_client_gone),
        cmocka_unit_test(test_stream_bounded_for_a_client_not_reading),
        cmocka_unit_test(test_accept_pauses_when_out_of_descriptors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
