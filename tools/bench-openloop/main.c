/*
 * bench-openloop — an open-loop, fixed-rate HTTP/1.1 load client for the relay latency table
 * (issue #15; docs/PERFORMANCE.md, "Fixed-rate latency"). Request k is due at t0 + k / RATE,
 * whatever happened to the earlier ones: it is written at that moment on connection k mod C
 * (pipelined behind unanswered ones if need be), and its latency is counted from the moment it
 * was DUE, not from when it was written — a stalled server or a late client loop shows up in
 * the figures instead of silently lowering the offered rate (no coordinated omission).
 *
 * Usage: bench-openloop -p PORT -r RATE [-d SECONDS] [-c CONNECTIONS] [-w WARMUP_SECONDS]
 *                       [-a AUTHORIZATION] [-b BODY_FILE] [-s SERIES_FILE] [-m MARK_FILE]
 *   127.0.0.1 only. The body is a TS002 PRStartReq (relay.sh's) or BODY_FILE's text, in which
 *   every "{TXID}" becomes the request number (a fresh TransactionID per request).
 * Output (one line, key=value): due= sent= ok= bad= (non-2xx) lost= (unanswered at the end or
 * on a closed connection) rate= (achieved sends/s) p50_us= p99_us= p999_us= max_us= late_us=
 * (p99 of how late the client wrote a request after it was due: if this grows, the client, not
 * the server, is the bottleneck). Requests due during the warm-up are sent but not counted.
 * -s SERIES_FILE also writes, per 100 ms of due time after the warm-up, "ms answered max_us"
 * (one line each): a stall shows as one window's maximum, a queue that builds as a rising run.
 * -m MARK_FILE is opened for writing (created if missing) and closed when the first counted
 * request is due: a script that reads the server's own counters then (tools/bench/relay_world.sh
 * hub_added_begin, HUB_LATENCY=1) counts what this does. When MARK_FILE is a FIFO, its reader
 * wakes at that moment (no process started, no polling, while the client measures); a FIFO
 * without a reader is left alone (O_NONBLOCK: ENXIO).
 * Exit status 1 on usage or connection errors.
 *
 * One thread, epoll_pwait2 with a nanosecond timeout to the next due time (no timer file
 * descriptor: two system calls fewer per request than a timerfd re-armed each time, so the
 * client takes less of the CPU it shares with what it measures); responses framed with
 * http_parser (the project's HTTP framing library). Every socket has TCP_NODELAY.
 */
#define _GNU_SOURCE
#include "rh_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *default_body =
    "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000202\",\"ReceiverID\":\"000505\","
    "\"TransactionID\":{TXID},\"MessageType\":\"PRStartReq\","
    "\"PHYPayload\":\"400100000a800100016b5ed0ec2e5c4f9f09f2bd7b\",\"ULMetaData\":{\"DataRate\":5,"
    "\"ULFreq\":868.1,\"RecvTime\":\"2026-11-21T12:00:00.123Z\",\"RFRegion\":\"EU868\",\"GWCnt\":1,"
    "\"GWInfo\":[{\"ID\":\"05060708\",\"RFRegion\":\"EU868\",\"RSSI\":-81,\"SNR\":7.5,\"Lat\":52.37,"
    "\"Lon\":4.89,\"ULToken\":\"0a0b0c0d0e0f10111213\",\"DLAllowed\":true}]}}";

typedef struct conn {
    int fd;
    http_parser parser;
    uint64_t *due; /* FIFO of due times (ns) of the requests written and not yet answered */
    size_t head, tail, cap;
    char *out; /* bytes not yet taken by the socket */
    size_t out_len, out_cap;
    bool closed, want_out;
} conn_t;

static uint64_t *lat;  /* latency (ns) of each counted answer */
static uint64_t *late; /* how late each counted request was written (ns) */
static size_t nlat, nlate, lat_cap;
static uint64_t count_from; /* due times before this are warm-up */
static unsigned long ok, bad, lost;
static uint64_t *win_max; /* -s: the largest latency (ns) per 100 ms window of due time */
static uint32_t *win_n;   /* -s: answers counted per window */
static size_t nwin;
#define WINDOW_NS 100000000u

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "bench-openloop: out of memory\n");
        exit(1);
    }
    return q;
}

static int on_complete(http_parser *p)
{
    conn_t *c = p->data;
    uint64_t t = now_ns();
    if (c->head == c->tail)
        return 0; /* an answer to nothing: counted by nobody */
    uint64_t due = c->due[c->head++ % c->cap];
    if (due < count_from)
        return 0;
    if (p->status_code >= 200 && p->status_code < 300)
        ok++;
    else
        bad++;
    lat[nlat++] = t - due;
    if (win_max) {
        size_t w = (size_t)((due - count_from) / WINDOW_NS);
        if (w < nwin) {
            win_n[w]++;
            if (t - due > win_max[w])
                win_max[w] = t - due;
        }
    }
    return 0;
}

static http_parser_settings settings = {.on_message_complete = on_complete};

static int ep; /* the epoll set */

/* Writes what the socket takes; asks for EPOLLOUT only while bytes are left (an always-on
 * EPOLLOUT would wake the loop on every ACK). */
static void flush(conn_t *c)
{
    while (c->out_len) {
        ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                c->closed = true;
            break;
        }
        memmove(c->out, c->out + w, c->out_len - (size_t)w);
        c->out_len -= (size_t)w;
    }
    if (c->closed) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        return;
    }
    bool want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u), .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[i] / 1000.0;
}

int main(int argc, char **argv)
{
    int port = 0, conns = 16;
    double rate = 0, secs = 10, warm = 1;
    const char *auth = "Bearer bench-key-0123456789", *body_file = NULL, *series = NULL,
               *mark_file = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "p:r:d:c:w:a:b:s:m:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'd': secs = atof(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 'w': warm = atof(optarg); break;
        case 'a': auth = optarg; break;
        case 'b': body_file = optarg; break;
        case 's': series = optarg; break;
        case 'm':
            mark_file = optarg;
            break;
        default: goto usage;
        }
    }
    if (port <= 0 || port > 65535 || rate <= 0 || secs <= 0 || conns <= 0 || warm < 0) {
    usage:
        fprintf(stderr, "usage: bench-openloop -p PORT -r RATE [-d SECONDS] [-c CONNECTIONS] "
                        "[-w WARMUP_SECONDS] [-a AUTHORIZATION] [-b BODY_FILE] [-s SERIES_FILE] "
                        "[-m MARK_FILE]\n");
        return 1;
    }
    char *tmpl = NULL;
    if (body_file) {
        rh_diag_t d;
        rh_diag_clear(&d);
        if (rh_read_file(body_file, 1u << 20, &tmpl, NULL, &d) != RH_OK) {
            fprintf(stderr, "bench-openloop: %s\n", d.text);
            return 1;
        }
    } else {
        tmpl = (char *)default_body;
    }
    char *mark = strstr(tmpl, "{TXID}");
    size_t pre = mark ? (size_t)(mark - tmpl) : strlen(tmpl);
    const char *post = mark ? mark + 6 : "";

    ep = epoll_create1(0);
    conn_t *cs = calloc((size_t)conns, sizeof *cs);
    for (int i = 0; i < conns; i++) {
        conn_t *c = &cs[i];
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c->fd, F_SETFL, O_NONBLOCK);
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
        c->cap = 1024;
        c->due = calloc(c->cap, sizeof *c->due);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }

    uint64_t total = (uint64_t)((secs + warm) * rate);
    lat_cap = (size_t)total + 1;
    lat = calloc(lat_cap, sizeof *lat);
    late = calloc(lat_cap, sizeof *late);
    if (series) {
        nwin = (size_t)(secs * 10.0) + 1;
        win_max = calloc(nwin, sizeof *win_max);
        win_n = calloc(nwin, sizeof *win_n);
    }
    uint64_t t0 = now_ns() + 50000000u; /* 50 ms to settle */
    double step = 1e9 / rate;
    count_from = t0 + (uint64_t)(warm * 1e9);
    uint64_t end = t0 + (uint64_t)((secs + warm) * 1e9);
    uint64_t k = 0, sent = 0;
    char req[66000 + 512];
    struct epoll_event evs[64];
    for (;;) {
        uint64_t t = now_ns();
        /* Everything due by now goes out (late ones too: their latency counts from due). */
        while (k < total && t0 + (uint64_t)((double)k * step) <= t) {
            uint64_t due = t0 + (uint64_t)((double)k * step);
            if (mark_file && due >= count_from) {
                int mf = open(mark_file, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
                if (mf >= 0)
                    close(mf);
                mark_file = NULL;
            }
            conn_t *c = &cs[k % (uint64_t)conns];
            k++;
            if (c->closed) {
                if (due >= count_from)
                    lost++;
                continue;
            }
            char txid[24];
            int tl = snprintf(txid, sizeof txid, "%llu", (unsigned long long)(k % 4000000000u));
            size_t blen = pre + (mark ? (size_t)tl + strlen(post) : 0);
            int hl = snprintf(req, sizeof req,
                              "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                              "Authorization: %s\r\nContent-Length: %zu\r\n\r\n",
                              port, auth, blen);
            size_t n = (size_t)hl;
            memcpy(req + n, tmpl, pre);
            n += pre;
            if (mark) {
                memcpy(req + n, txid, (size_t)tl);
                n += (size_t)tl;
                memcpy(req + n, post, strlen(post));
                n += strlen(post);
            }
            if (c->tail - c->head == c->cap) { /* grow the FIFO, keeping its order */
                uint64_t *nd = calloc(2 * c->cap, sizeof *nd);
                for (size_t j = 0; j < c->cap; j++)
                    nd[j] = c->due[(c->head + j) % c->cap];
                free(c->due);
                c->due = nd;
                c->tail -= c->head;
                c->head = 0;
                c->cap *= 2;
            }
            c->due[c->tail++ % c->cap] = due;
            if (c->out_len + n > c->out_cap) {
                c->out_cap = (c->out_len + n) * 2;
                c->out = xrealloc(c->out, c->out_cap);
            }
            memcpy(c->out + c->out_len, req, n);
            c->out_len += n;
            flush(c);
            sent++;
            if (due >= count_from)
                late[nlate++] = now_ns() - due;
        }
        bool pending = false;
        for (int i = 0; i < conns && !pending; i++)
            pending = !cs[i].closed && cs[i].head != cs[i].tail;
        if (k >= total && (!pending || t > end + 2000000000u))
            break;
        /* Sleep until the next due time (ns precision) or an event. */
        struct timespec to = {0, 100000000}; /* after the last one: 100 ms for the answers */
        if (k < total) {
            uint64_t next = t0 + (uint64_t)((double)k * step), now = now_ns();
            uint64_t d = next > now ? next - now : 0;
            to = (struct timespec){(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
        }
        int ne = epoll_pwait2(ep, evs, 64, &to, NULL);
        for (int e = 0; e < ne; e++) {
            conn_t *c = evs[e].data.ptr;
            if (evs[e].events & EPOLLOUT)
                flush(c);
            if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                char buf[65536];
                for (;;) { /* level-triggered: one read per event unless it filled the buffer */
                    ssize_t r = recv(c->fd, buf, sizeof buf, 0);
                    if (r > 0) {
                        size_t used = http_parser_execute(&c->parser, &settings, buf, (size_t)r);
                        if (used != (size_t)r || c->parser.http_errno) {
                            fprintf(stderr, "bench-openloop: bad response: %s\n",
                                    http_errno_name((enum http_errno)c->parser.http_errno));
                            c->closed = true;
                            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                            break;
                        }
                        if ((size_t)r < sizeof buf)
                            break;
                        continue;
                    }
                    if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                        c->closed = true;
                        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    }
                    break;
                }
            }
        }
    }
    for (int i = 0; i < conns; i++) {
        for (size_t j = cs[i].head; j != cs[i].tail; j++)
            if (cs[i].due[j % cs[i].cap] >= count_from)
                lost++;
        close(cs[i].fd);
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    qsort(late, nlate, sizeof *late, cmp_u64);
    uint64_t counted = (uint64_t)(secs * rate);
    printf("due=%llu sent=%llu ok=%lu bad=%lu lost=%lu rate=%.0f p50_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f late_us=%.1f\n",
           (unsigned long long)counted, (unsigned long long)sent, ok, bad, lost,
           (double)sent / (secs + warm), pct(lat, nlat, 0.50), pct(lat, nlat, 0.99),
           pct(lat, nlat, 0.999), nlat ? (double)lat[nlat - 1] / 1000.0 : 0.0,
           pct(late, nlate, 0.99));
    if (series) {
        FILE *f = fopen(series, "w");
        if (!f) {
            perror(series);
            return 1;
        }
        for (size_t w = 0; w < nwin; w++)
            fprintf(f, "%zu %u %.1f\n", w * 100, win_n[w], (double)win_max[w] / 1000.0);
        fclose(f);
    }
    return 0;
}
