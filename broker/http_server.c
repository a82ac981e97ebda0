/*
 * http_server.c — HTTP/1.1 server on conn_io (plain or TLS) + http_parser (see http_server.h).
 *
 * Invariants:
 *  - a connection has at most one request awaiting a reply (conn->pending); reading stays on
 *    meanwhile and bytes already received stay in the input buffer (at most HS_PIPELINE_MAX
 *    read ahead) until the reply is sent;
 *  - a connection's transport is conn_io (c->io: plain, or TLS when c->ssl is set);
 *  - conn->deadline_ms is exactly one deadline at a time: header (from accept or end of previous
 *    reply), body (from headers complete), idle (keep-alive, before the first byte of the next
 *    request); none (0) while a request awaits its reply. conn->timer is armed lazily: only when
 *    it is not armed or would fire after the new deadline; firing early re-arms it for the rest.
 *    A keep-alive connection's deadlines move forward with every message without a timer
 *    operation (three event_add and an event_del per message before, issue #15);
 *  - srv->nconns counts open connections; the listener is disabled at max_connections;
 *  - when accept() fails (EMFILE/ENFILE when out of descriptors, ENOBUFS, ...) the listener is
 *    disabled for pause_ms (100 ms, doubling to 1 s while it keeps failing, reset by the next
 *    accepted connection) instead of retrying at once in a busy loop; nothing re-enables it
 *    during the pause (srv->accept_paused);
 *  - one connection is accepted per readiness of the listening socket (srv->accept_ev, level
 *    triggered: the next loop turn accepts the next one), as nginx's default `multi_accept off`:
 *    connections already open are served before a burst of new ones is let in. libevent's
 *    evconnlistener (which only creates and binds the socket here, never enabled) accepts until
 *    EAGAIN, and a burst of TLS handshakes accepted at once delayed every request behind them
 *    (issue #15: new-connection requests p50 20 ms against nginx's 10-12 ms).
 */
#include "http_server.h"

#include "rh_err.h"
#include "rh_dlist.h"
#include "rh_log.h"
#include "rh_time.h"
#include "conn_io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define HS_MAX_HEADERS 48

#define HS_PIPELINE_MAX (64 * 1024) /* bytes read ahead of a pending request */

enum conn_phase { PH_HEADERS, PH_BODY, PH_PENDING, PH_STREAM, PH_IDLE, PH_CLOSING };

struct hs_req {
    /* Per request: req_recycle zeroes everything up to `hname` (HST_URL is 0). */
    hs_conn_t *conn; /* NULL once the connection is gone */
    char method[16];
    char *target;    /* path NUL query, inside hdrbuf */
    const char *query;
    unsigned nheaders;
    enum { HST_URL, HST_FIELD, HST_VALUE } hst;
    size_t hdrlen;
    size_t bodylen;
    int keep_alive;
    int http11;          /* HTTP/1.1 or later (chunked responses allowed) */
    int body_incomplete; /* replied before the body was read: must close */
    uint64_t received_ns;
    uint64_t arrival_ns; /* hs_req_arrival_ns */
    /* Valid up to nheaders: not cleared between requests. */
    const char *hname[HS_MAX_HEADERS];
    size_t hname_len[HS_MAX_HEADERS]; /* strlen(hname[i]): lookups compare lengths first */
    const char *hvalue[HS_MAX_HEADERS];
    size_t name_off[HS_MAX_HEADERS], value_off[HS_MAX_HEADERS]; /* into hdrbuf while parsing */
    /* Buffers a recycled request keeps. */
    char *hdrbuf; /* URL + header names/values, NUL-separated */
    size_t hdrcap;
    char *body;
    size_t bodycap;
};

struct hs_conn {
    hs_server_t *srv;
    conn_io_t *io;           /* plain or TLS (conn_io.c: answers written at once) */
    struct event *timer;     /* fires at timer_at_ms (0: not armed), see conn_arm */
    uint64_t deadline_ms;    /* monotonic ms of the current deadline, 0: none */
    uint64_t timer_at_ms;
    uint64_t input_ns;       /* monotonic ns when conn_process_input began parsing: the one
                                clock read of a pass (deadlines armed and received_ns in it) */
    http_parser parser;
    hs_req_t *req;      /* request being parsed or awaiting reply */
    hs_req_t *spare;    /* the last request replied to, reset for the next one (req_recycle) */
    enum conn_phase phase;
    int close_after_write;
    int closing;
    SSL *ssl;
    int loopback;
    char peer[64];
    void *data;
    void (*data_free)(void *);
    hs_conn_t *prev, *next;
};

struct hs_server {
    struct event_base *base;
    hs_opts_t o;
    struct evconnlistener *lev;  /* the listening socket (created and bound; never enabled) */
    struct event *accept_ev;     /* readiness of lev's socket: accepts one connection */
    int listening;               /* accept_ev is added */
    unsigned nconns;
    hs_conn_t *conns;
    uint16_t port;
    int draining;
    struct event *drain_timer;
    void (*drain_done)(void *);
    void *drain_arg;
    struct event *accept_pause_timer;
    int accept_paused;
    unsigned pause_ms;            /* current pause after a failed accept, 0 after a success */
    unsigned long accept_errors;
};

static http_parser_settings parser_settings;

static void listen_on(hs_server_t *s) { event_add(s->accept_ev, NULL); }
static void listen_off(hs_server_t *s) { event_del(s->accept_ev); }

static void conn_close(hs_conn_t *c);
static void conn_process_input(hs_conn_t *c);

const char *hs_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Status";
    }
}

/* ---------- timers ---------- */

static void timer_add_ms(hs_conn_t *c, uint64_t now, uint64_t at)
{
    uint64_t ms = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(c->timer, &tv);
    c->timer_at_ms = at;
}

/* The connection's one deadline, ms after monotonic time `now` (ms; replaces the previous one). */
static void conn_arm_at(hs_conn_t *c, uint64_t now, unsigned ms)
{
    c->deadline_ms = now + ms;
    if (!c->timer_at_ms || c->timer_at_ms > c->deadline_ms)
        timer_add_ms(c, now, c->deadline_ms);
}

/* The connection's one deadline, ms from now. */
static void conn_arm(hs_conn_t *c, unsigned ms) { conn_arm_at(c, rh_mono_ms(), ms); }

/* No deadline (a request awaits its reply, or a stream runs); the armed timer finds none. */
static void conn_disarm(hs_conn_t *c) { c->deadline_ms = 0; }

static void conn_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    hs_conn_t *c = arg;
    (void)fd;
    (void)ev;
    c->timer_at_ms = 0;
    if (!c->deadline_ms)
        return;
    uint64_t now = rh_mono_ms();
    if (now < c->deadline_ms) { /* the deadline moved on since the timer was armed */
        timer_add_ms(c, now, c->deadline_ms);
        return;
    }
    if (c->phase == PH_HEADERS || c->phase == PH_BODY)
        RH_LOG(RH_LOG_INFO, "http", "deadline missed, closing phase=%s peer=%s",
               c->phase == PH_HEADERS ? "headers" : "body", c->peer);
    conn_close(c);
}

/* ---------- request buffer helpers ---------- */

/* Largest body buffer a connection keeps between requests: bigger ones (up to max_body_bytes)
 * are freed with their request, so an idle keep-alive connection holds about 5 KiB. */
#define HS_SPARE_BODY_MAX 4096

static hs_req_t *req_new(hs_conn_t *c)
{
    if (c->spare) { /* the previous request's object and buffers, already reset */
        hs_req_t *r = c->spare;
        c->spare = NULL;
        r->conn = c;
        return r;
    }
    hs_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->conn = c;
    r->hdrcap = 1024;
    r->hdrbuf = malloc(r->hdrcap);
    if (!r->hdrbuf) {
        free(r);
        return NULL;
    }
    return r;
}

static void req_free(hs_req_t *r)
{
    if (!r)
        return;
    free(r->hdrbuf);
    free(r->body);
    free(r);
}

/* After the reply to r on its live connection c: r becomes c's spare, reset to what req_new
 * gives (its header buffer and a small body buffer kept), instead of a calloc of ~2 KiB and two
 * buffers per request (issue #15). */
static void req_recycle(hs_conn_t *c, hs_req_t *r)
{
    if (c->spare || r->bodycap > HS_SPARE_BODY_MAX || r->hdrcap > 1024) {
        req_free(r);
        return;
    }
    memset(r, 0, offsetof(hs_req_t, hname)); /* the per-request fields; buffers kept */
    c->spare = r;
}

/* Appends to hdrbuf; returns offset of the appended data or -1 when the header cap is hit. */
static long hdr_append(hs_req_t *r, size_t cap, const char *at, size_t len, int nul)
{
    size_t need = r->hdrlen + len + (nul ? 1 : 0);
    if (need > cap)
        return -1;
    if (need > r->hdrcap) {
        size_t nc = r->hdrcap * 2;
        while (nc < need)
            nc *= 2;
        if (nc > cap + 1)
            nc = cap + 1;
        if (nc < need)
            nc = need;
        char *nb = realloc(r->hdrbuf, nc);
        if (!nb)
            return -1;
        r->hdrbuf = nb;
        r->hdrcap = nc;
    }
    long off = (long)r->hdrlen;
    memcpy(r->hdrbuf + r->hdrlen, at, len);
    r->hdrlen += len;
    if (nul)
        r->hdrbuf[r->hdrlen++] = '\0';
    return off;
}

/* ---------- http_parser callbacks ---------- */

static int on_message_begin(http_parser *p)
{
    hs_conn_t *c = p->data;
    if (!c->req) {
        c->req = req_new(c);
        if (!c->req)
            return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    return hdr_append(c->req, c->srv->o.max_header_bytes, at, len, 0) < 0 ? -1 : 0;
}

/* Header state machine: URL -> (FIELD -> VALUE)* ; each piece may arrive in several callbacks
 * (TCP segments); a NUL terminates a piece when the next kind starts. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    hs_req_t *r = c->req;
    size_t cap = c->srv->o.max_header_bytes;
    if (r->target)
        return 0; /* a chunked body's trailer: ignored (RFC 9112 §7.1.2); storing it would move
                     hdrbuf under the pointers fixed up at headers complete */
    if (r->hst != HST_FIELD) {
        if (hdr_append(r, cap, "", 0, 1) < 0 || r->nheaders >= HS_MAX_HEADERS)
            return -1;
        r->name_off[r->nheaders++] = r->hdrlen;
        r->hst = HST_FIELD;
    }
    return hdr_append(r, cap, at, len, 0) < 0 ? -1 : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    hs_req_t *r = c->req;
    size_t cap = c->srv->o.max_header_bytes;
    if (r->target)
        return 0; /* trailer value: ignored, as its name */
    if (r->hst != HST_VALUE) {
        if (hdr_append(r, cap, "", 0, 1) < 0)
            return -1;
        r->value_off[r->nheaders - 1] = r->hdrlen;
        r->hst = HST_VALUE;
    }
    return hdr_append(r, cap, at, len, 0) < 0 ? -1 : 0;
}

static void send_error_and_close(hs_conn_t *c, int status);

static int on_headers_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    hs_req_t *r = c->req;
    if (hdr_append(r, c->srv->o.max_header_bytes + 2, "", 0, 1) < 0)
        return -1;
    if (r->hst == HST_FIELD) { /* a name without value */
        r->value_off[r->nheaders - 1] = r->hdrlen - 1;
    }
    /* Fix up pointers now that hdrbuf no longer moves. */
    r->target = r->hdrbuf;
    for (unsigned i = 0; i < r->nheaders; i++) {
        r->hname[i] = r->hdrbuf + r->name_off[i];
        r->hname_len[i] = strlen(r->hname[i]);
        r->hvalue[i] = r->hdrbuf + r->value_off[i];
    }
    /* A header that must appear once (RFC 9110 §5.3): two Authorization values (or Hosts,
     * Content-Types) would let a proxy and this server act on different ones. http_parser
     * already refuses two Content-Lengths; these get the same 400. */
    static const char *const single[] = {"authorization", "host", "content-type"};
    static const size_t single_len[] = {13, 4, 12};
    unsigned seen[sizeof single / sizeof single[0]] = {0};
    for (unsigned i = 0; i < r->nheaders; i++)
        for (unsigned s = 0; s < sizeof single / sizeof single[0]; s++)
            if (r->hname_len[i] == single_len[s] && !strcasecmp(r->hname[i], single[s]) &&
                seen[s]++)
                return -1; /* HPE_CB_headers_complete: 400 and close */
    char *q = strchr(r->target, '?');
    if (q) {
        *q = '\0';
        r->query = q + 1;
    } else {
        r->query = "";
    }
    const char *method = http_method_str((enum http_method)p->method);
    size_t mlen = strlen(method); /* http_parser's names: at most 11 characters */
    if (mlen >= sizeof r->method)
        mlen = sizeof r->method - 1;
    memcpy(r->method, method, mlen);
    r->method[mlen] = '\0';
    if (p->content_length != ULLONG_MAX && p->content_length > c->srv->o.max_body_bytes) {
        r->body_incomplete = 1;
        return -2; /* 413 */
    }
    c->phase = PH_BODY;
    conn_arm_at(c, c->input_ns / 1000000u, c->srv->o.body_timeout_ms);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    hs_conn_t *c = p->data;
    hs_req_t *r = c->req;
    if (r->bodylen + len > c->srv->o.max_body_bytes) {
        r->body_incomplete = 1;
        return -2;
    }
    if (r->bodylen + len + 1 > r->bodycap) {
        size_t nc = r->bodycap ? r->bodycap * 2 : 1024;
        while (nc < r->bodylen + len + 1)
            nc *= 2;
        if (nc > c->srv->o.max_body_bytes + 1)
            nc = c->srv->o.max_body_bytes + 1;
        char *nb = realloc(r->body, nc);
        if (!nb)
            return -1;
        r->body = nb;
        r->bodycap = nc;
    }
    memcpy(r->body + r->bodylen, at, len);
    r->bodylen += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    hs_conn_t *c = p->data;
    hs_req_t *r = c->req;
    if (!r->body) {
        r->body = malloc(1);
        if (!r->body)
            return -1;
    }
    r->body[r->bodylen] = '\0';
    r->keep_alive = http_should_keep_alive(p);
    r->http11 = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);
    r->received_ns = c->input_ns;
    r->arrival_ns = conn_io_rx_ns(c->io);
    c->phase = PH_PENDING;
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

/* ---------- connection I/O ---------- */

static void conn_unlink(hs_conn_t *c)
{
    RH_DLIST_UNLINK(c->srv->conns, c);
}

static void maybe_drain_done(hs_server_t *s);

static void conn_close(hs_conn_t *c)
{
    hs_server_t *s = c->srv;
    if (c->req) {
        if (c->phase == PH_PENDING || c->phase == PH_STREAM) {
            c->req->conn = NULL; /* orphan: the handler's reply (or stream end) frees it */
        } else {
            req_free(c->req);
        }
        c->req = NULL;
    }
    req_free(c->spare);
    c->spare = NULL;
    if (c->data && c->data_free)
        c->data_free(c->data);
    if (c->timer)
        event_free(c->timer);
    conn_io_free(c->io); /* TLS: close_notify; then the socket (and the SSL object) */
    conn_unlink(c);
    s->nconns--;
    free(c);
    if (!s->draining && !s->listening && !s->accept_paused && s->lev &&
        s->nconns < s->o.max_connections) {
        listen_on(s);
        s->listening = 1;
    }
    if (s->draining)
        maybe_drain_done(s);
}

/* Appends n bytes of s to the head buffer h (capacity cap), bounded. */
static size_t put(char *h, size_t at, size_t cap, const char *s, size_t n)
{
    if (at + n > cap)
        n = at < cap ? cap - at : 0;
    memcpy(h + at, s, n);
    return at + n;
}

/* Decimal digits of v (no snprintf: this runs for every response). */
static size_t put_uint(char *h, size_t at, size_t cap, size_t v)
{
    char d[24];
    size_t n = 0;
    do {
        d[sizeof d - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < sizeof d);
    return put(h, at, cap, d + sizeof d - n, n);
}

/* "HTTP/1.1 <status> <reason>" (no CRLF) at the start of h. */
static size_t put_status_line(char *h, size_t cap, int status)
{
    const char *reason = hs_status_text(status);
    size_t n = put(h, 0, cap, "HTTP/1.1 ", 9);
    n = put_uint(h, n, cap, (size_t)(status % 1000));
    n = put(h, n, cap, " ", 1);
    return put(h, n, cap, reason, strlen(reason));
}

/* Content-Type (when given), the caller's extra header lines, and the blank line ending the
 * head; h has 2 bytes beyond cap for the final CRLF. */
static size_t put_head_end(char *h, size_t n, size_t cap, const char *ctype, const char *extra)
{
    if (ctype) {
        n = put(h, n, cap, "Content-Type: ", 14);
        n = put(h, n, cap, ctype, strlen(ctype));
        n = put(h, n, cap, "\r\n", 2);
    }
    if (extra)
        n = put(h, n, cap, extra, strlen(extra));
    h[n++] = '\r';
    h[n++] = '\n';
    return n;
}

/* ---------- the connection's transport: conn_io ---------- */

static struct evbuffer *conn_in(hs_conn_t *c) { return conn_io_input(c->io); }

static size_t conn_out_len(hs_conn_t *c) { return conn_io_output_len(c->io); }

static void conn_read_enable(hs_conn_t *c, int on) { conn_io_read_enable(c->io, on); }

/* Sends the n buffers in order. now != 0 with nothing queued: at once — plain: one sendmsg; TLS:
 * one SSL_write (one record) — instead of queueing for the next loop turn, which costs two
 * epoll_ctl (write event on, off) and an epoll_wait per answer and under load delays every answer
 * of a loop turn until the turn's other callbacks have run (issue #15). What the socket does not
 * take now (or an error, which the transport then reports) is queued. now == 0: queued, and the
 * write-done callback follows. */
static void conn_send(hs_conn_t *c, const struct iovec *iov, int n, int now)
{
    conn_io_send(c->io, iov, n, now);
}

static void write_response(hs_conn_t *c, int status, const char *ctype, const char *extra,
                           const void *body, size_t len, int keep_alive)
{
    char h[512];
    const size_t cap = sizeof h - 2;
    size_t n = put_status_line(h, cap, status);
    n = put(h, n, cap, "\r\nContent-Length: ", 18);
    n = put_uint(h, n, cap, len);
    n = put(h, n, cap, "\r\n", 2);
    if (!keep_alive)
        n = put(h, n, cap, "Connection: close\r\n", 19);
    n = put_head_end(h, n, cap, ctype, extra);
    /* Keep-alive answer: sent now (see conn_send). Closing answers are queued: close_after_write
     * needs the write-done callback. */
    struct iovec iov[2] = {{h, n}, {(void *)body, len}};
    conn_send(c, iov, len ? 2 : 1, keep_alive);
}

static void send_error_and_close(hs_conn_t *c, int status)
{
    if (c->closing)
        return;
    if (c->srv->o.json_errors) {
        char body[160];
        int n = snprintf(body, sizeof body, "{\"error\":{\"code\":%d,\"message\":\"%s\"}}",
                         status, hs_status_text(status));
        write_response(c, status, "application/json", NULL, body, (size_t)n, 0);
    } else {
        write_response(c, status, "text/plain", NULL, hs_status_text(status),
                       strlen(hs_status_text(status)), 0);
    }
    c->close_after_write = 1;
    c->closing = 1;
    c->phase = PH_CLOSING;
    conn_read_enable(c, 0);
    conn_arm(c, 5000); /* bound the time spent flushing to a client that doesn't read */
}

static void conn_dispatch(hs_conn_t *c)
{
    hs_req_t *r = c->req;
    conn_disarm(c);
    /* Reading stays on while the request is pending (turning it off and on again cost two
     * epoll_ctl per message): pipelined bytes wait in the input buffer, bounded by the read
     * high-water mark set at accept, and conn_process_input parses nothing while PH_PENDING. */
    c->srv->o.handler(r, c->srv->o.handler_arg);
}

static void conn_process_input(hs_conn_t *c)
{
    struct evbuffer *in = conn_in(c);
    bool clock_read = false;
    while (!c->closing && c->phase != PH_PENDING) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            return;
        if (!clock_read) { /* callbacks of this pass use it (issue #15: fewer clock reads) */
            c->input_ns = rh_mono_ns();
            clock_read = true;
        }
        if (c->phase == PH_IDLE) {
            c->phase = PH_HEADERS;
            conn_arm_at(c, c->input_ns / 1000000u, c->srv->o.header_timeout_ms);
        }
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            return;
        size_t n = http_parser_execute(&c->parser, &parser_settings, v.iov_base, v.iov_len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (err == HPE_PAUSED) {
            /* message complete: consume exactly what the parser used */
            evbuffer_drain(in, n);
            http_parser_pause(&c->parser, 0);
            conn_dispatch(c);
            return;
        }
        if (err != HPE_OK) {
            int status = 400;
            if (c->req && c->req->body_incomplete)
                status = 413;
            else if (err == HPE_CB_url || err == HPE_CB_header_field ||
                     err == HPE_CB_header_value || err == HPE_HEADER_OVERFLOW)
                status = 431;
            RH_LOG(RH_LOG_INFO, "http", "bad request status=%d err=%s peer=%s", status,
                   http_errno_name(err), c->peer);
            send_error_and_close(c, status);
            return;
        }
        evbuffer_drain(in, n);
        if (c->phase == PH_HEADERS && c->req && c->req->hdrlen > c->srv->o.max_header_bytes) {
            send_error_and_close(c, 431);
            return;
        }
    }
}

static void conn_on_read(hs_conn_t *c)
{
    if (c->phase == PH_STREAM) { /* nothing more is expected from a streaming client */
        struct evbuffer *in = conn_in(c);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    conn_process_input(c);
}

/* The client's EOF (eof != 0) or an error: close, except that a client that half-closed after
 * its request is still answered (reading has stopped; hs_reply_ex turns it on again, which then
 * reports the EOF again and closes). */
static void conn_on_end(hs_conn_t *c, int eof)
{
    if (eof && c->phase == PH_PENDING)
        return;
    conn_close(c);
}

static void io_read_cb(conn_io_t *t, void *arg)
{
    (void)t;
    conn_on_read(arg);
}

static void io_drained_cb(conn_io_t *t, void *arg)
{
    hs_conn_t *c = arg;
    (void)t;
    if (c->close_after_write)
        conn_close(c);
}

static void io_event_cb(conn_io_t *t, int what, void *arg)
{
    hs_conn_t *c = arg;
    unsigned long e = conn_io_error(t);
    if ((what & CONN_IO_ERROR) && e) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof buf);
        RH_LOG(RH_LOG_INFO, "tls", "connection error peer=%s err=\"%s\"", c->peer, buf);
    }
    conn_on_end(c, what == CONN_IO_EOF);
}

static const conn_io_cbs_t io_cbs = {io_read_cb, io_drained_cb, io_event_cb};

static void accept_resume_cb(evutil_socket_t fd, short ev, void *arg)
{
    hs_server_t *s = arg;
    (void)fd;
    (void)ev;
    s->accept_paused = 0;
    if (!s->draining && !s->listening && s->nconns < s->o.max_connections) {
        listen_on(s);
        s->listening = 1;
    }
}

/* accept() failed with an error that retrying does not cure (EMFILE, ENFILE, ENOBUFS, ENOMEM,
 * ...): retrying at once would spin at 100 % CPU, as the pending connection keeps the listener
 * readable. Pause instead (see the invariants above). */
static void accept_error(hs_server_t *s, int err)
{
    s->accept_errors++;
    if (s->listening) {
        listen_off(s);
        s->listening = 0;
    }
    s->pause_ms = s->pause_ms ? (s->pause_ms >= 500 ? 1000 : s->pause_ms * 2) : 100;
    s->accept_paused = 1;
    RH_LOG(RH_LOG_WARN, "http", "accept failed, pausing accept err=\"%s\" pause_ms=%u conns=%u",
           evutil_socket_error_to_string(err), s->pause_ms, s->nconns);
    struct timeval tv = {s->pause_ms / 1000, (s->pause_ms % 1000) * 1000};
    evtimer_add(s->accept_pause_timer, &tv);
}

static void accept_conn(hs_server_t *s, evutil_socket_t fd, const struct sockaddr *sa)
{
    s->pause_ms = 0;
    if (s->draining) {
        evutil_closesocket(fd);
        return;
    }
    hs_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        c->loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
        inet_ntop(AF_INET, &in->sin_addr, c->peer, sizeof c->peer);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        c->loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        inet_ntop(AF_INET6, &in6->sin6_addr, c->peer, sizeof c->peer);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = NULL;
    if (s->o.tls_ctx) {
        SSL_CTX *ctx = s->o.tls_ctx(s->o.tls_ctx_arg);
        ssl = ctx ? SSL_new(ctx) : NULL;
        if (ctx)
            SSL_CTX_free(ctx); /* SSL_new holds its own reference */
        if (!ssl) {
            free(c);
            evutil_closesocket(fd);
            return;
        }
        c->ssl = ssl;
    }
    /* HS_PIPELINE_MAX bounds what a client can pipeline behind a pending request: reading pauses
     * at this many buffered bytes and resumes when parsing has consumed them. */
    c->io = conn_io_new(s->base, fd, ssl, HS_PIPELINE_MAX, &io_cbs, c); /* owns fd, ssl */
    c->timer = evtimer_new(s->base, conn_timer_cb, c);
    if (!c->io || !c->timer) {
        conn_io_free(c->io);
        if (c->timer)
            event_free(c->timer);
        free(c);
        return;
    }
    if (s->o.rx_stamps && !ssl)
        conn_io_rx_stamps(c->io); /* on failure requests carry no arrival time, nothing else */
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->phase = PH_HEADERS;
    conn_arm(c, s->o.header_timeout_ms);
    RH_DLIST_PUSH(s->conns, c);
    s->nconns++;
    if (s->nconns >= s->o.max_connections && s->listening) {
        listen_off(s);
        s->listening = 0;
        RH_LOG(RH_LOG_WARN, "http", "connection cap reached, pausing accept conns=%u",
               s->nconns);
    }
}

/* ---------- public API ---------- */

/* The listening socket is readable: one connection (see the invariants above). */
static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    hs_server_t *s = arg;
    (void)what;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR && err != ECONNABORTED)
            accept_error(s, err);
        return;
    }
    if (sl == 0) { /* seen on old kernels in answer to port scans */
        close(fd);
        return;
    }
    accept_conn(s, fd, (struct sockaddr *)&ss);
}

void hs_server_adopt(hs_server_t *srv, evutil_socket_t fd, const struct sockaddr *peer)
{
    accept_conn(srv, fd, peer);
}

void hs_server_set_limits(hs_server_t *s, const hs_limits_t *l)
{
#define SET(f)         \
    if (l->f)          \
        s->o.f = l->f;
    SET(header_timeout_ms)
    SET(body_timeout_ms)
    SET(idle_timeout_ms)
    SET(max_header_bytes)
    SET(max_body_bytes)
    SET(max_connections)
#undef SET
    if (!s->draining && s->lev) {
        if (!s->listening && s->nconns < s->o.max_connections) {
            listen_on(s);
            s->listening = 1;
        } else if (s->listening && s->nconns >= s->o.max_connections) {
            listen_off(s);
            s->listening = 0;
        }
    }
}

hs_server_t *hs_server_new(struct event_base *base, const hs_opts_t *opts)
{
    static int settings_ready;
    if (!settings_ready) {
        http_parser_settings_init(&parser_settings);
        parser_settings.on_message_begin = on_message_begin;
        parser_settings.on_url = on_url;
        parser_settings.on_header_field = on_header_field;
        parser_settings.on_header_value = on_header_value;
        parser_settings.on_headers_complete = on_headers_complete;
        parser_settings.on_body = on_body;
        parser_settings.on_message_complete = on_message_complete;
        settings_ready = 1;
    }
    hs_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->base = base;
    s->o = *opts;
    if (!s->o.header_timeout_ms) s->o.header_timeout_ms = 10000;
    if (!s->o.body_timeout_ms) s->o.body_timeout_ms = 30000;
    if (!s->o.idle_timeout_ms) s->o.idle_timeout_ms = 60000;
    if (!s->o.max_header_bytes) s->o.max_header_bytes = 8192;
    if (!s->o.max_body_bytes) s->o.max_body_bytes = 65536;
    if (!s->o.max_connections) s->o.max_connections = 4096;

    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_DISABLED;
    if (opts->listen_fd >= 0) {
        s->lev = evconnlistener_new(base, NULL, NULL, flags, -1, opts->listen_fd);
    } else {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof ss);
        int sl;
        char spec[128];
        snprintf(spec, sizeof spec, "%s port %u", opts->bind_addr, opts->port);
        struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, opts->bind_addr, &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            in4->sin_port = htons(opts->port);
            sl = sizeof *in4;
        } else if (inet_pton(AF_INET6, opts->bind_addr, &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(opts->port);
            sl = sizeof *in6;
        } else {
            RH_LOG(RH_LOG_ERR, "http", "bad listen address, expected a numeric IP addr=%s",
                   opts->bind_addr);
            free(s);
            return NULL;
        }
        if (opts->reuse_port)
            flags |= LEV_OPT_REUSEABLE_PORT;
        s->lev = evconnlistener_new_bind(base, NULL, NULL, flags, 1024,
                                         (struct sockaddr *)&ss, sl);
        if (!s->lev)
            RH_LOG(RH_LOG_ERR, "http", "cannot listen addr=%s err=\"%s\"", spec,
                   strerror(errno));
    }
    s->accept_pause_timer = s->lev ? evtimer_new(base, accept_resume_cb, s) : NULL;
    s->accept_ev = s->accept_pause_timer ? event_new(base, evconnlistener_get_fd(s->lev),
                                                     EV_READ | EV_PERSIST, accept_cb, s)
                                         : NULL;
    if (!s->accept_ev || event_add(s->accept_ev, NULL) != 0) {
        if (s->accept_ev)
            event_free(s->accept_ev);
        if (s->accept_pause_timer)
            event_free(s->accept_pause_timer);
        if (s->lev)
            evconnlistener_free(s->lev);
        free(s);
        return NULL;
    }
    s->listening = 1;
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(evconnlistener_get_fd(s->lev), (struct sockaddr *)&bound, &bl) == 0) {
        if (bound.ss_family == AF_INET)
            s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        else if (bound.ss_family == AF_INET6)
            s->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    }
    return s;
}

uint16_t hs_server_port(const hs_server_t *s) { return s->port; }

int hs_server_listen_fd(const hs_server_t *s) { return evconnlistener_get_fd(s->lev); }

unsigned hs_server_connections(const hs_server_t *s) { return s->nconns; }

unsigned long hs_server_accept_errors(const hs_server_t *s) { return s->accept_errors; }

static void drain_finish(hs_server_t *s)
{
    if (!s->drain_done)
        return;
    void (*done)(void *) = s->drain_done;
    s->drain_done = NULL;
    if (s->drain_timer) {
        event_free(s->drain_timer);
        s->drain_timer = NULL;
    }
    done(s->drain_arg);
}

static void maybe_drain_done(hs_server_t *s)
{
    if (s->nconns == 0)
        drain_finish(s);
}

static void drain_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    hs_server_t *s = arg;
    (void)fd;
    (void)ev;
    drain_finish(s);
}

void hs_server_drain(hs_server_t *s, unsigned drain_ms, void (*done)(void *), void *arg)
{
    s->draining = 1;
    s->drain_done = done;
    s->drain_arg = arg;
    if (s->lev && s->listening) {
        listen_off(s);
        s->listening = 0;
    }
    /* Close idle connections now; busy ones close after their reply. */
    hs_conn_t *c = s->conns;
    while (c) {
        hs_conn_t *next = c->next;
        if (c->phase == PH_IDLE || (c->phase == PH_HEADERS && !c->req))
            conn_close(c);
        c = next;
    }
    if (s->nconns == 0) {
        drain_finish(s);
        return;
    }
    s->drain_timer = evtimer_new(s->base, drain_timer_cb, s);
    struct timeval tv = {drain_ms / 1000, (drain_ms % 1000) * 1000};
    evtimer_add(s->drain_timer, &tv);
}

void hs_server_free(hs_server_t *s)
{
    if (!s)
        return;
    s->drain_done = NULL;
    while (s->conns)
        conn_close(s->conns);
    if (s->drain_timer)
        event_free(s->drain_timer);
    if (s->accept_pause_timer)
        event_free(s->accept_pause_timer);
    if (s->accept_ev)
        event_free(s->accept_ev);
    if (s->lev)
        evconnlistener_free(s->lev);
    free(s);
}

const char *hs_req_method(const hs_req_t *r) { return r->method; }
const char *hs_req_path(const hs_req_t *r) { return r->target; }
const char *hs_req_query(const hs_req_t *r) { return r->query; }

const char *hs_req_header(const hs_req_t *r, const char *name)
{
    size_t len = strlen(name);
    for (unsigned i = 0; i < r->nheaders; i++) {
        if (r->hname_len[i] == len && strcasecmp(r->hname[i], name) == 0)
            return r->hvalue[i];
    }
    return NULL;
}

const char *hs_req_body(const hs_req_t *r, size_t *len)
{
    if (len)
        *len = r->bodylen;
    return r->body;
}

SSL *hs_req_ssl(const hs_req_t *r) { return r->conn ? r->conn->ssl : NULL; }
int hs_req_peer_is_loopback(const hs_req_t *r) { return r->conn ? r->conn->loopback : 0; }
const char *hs_req_peer_addr(const hs_req_t *r) { return r->conn ? r->conn->peer : "-"; }
void *hs_req_conn_data(const hs_req_t *r) { return r->conn ? r->conn->data : NULL; }

void hs_req_set_conn_data(hs_req_t *r, void *data, void (*free_fn)(void *))
{
    if (!r->conn) {
        if (free_fn && data)
            free_fn(data);
        return;
    }
    if (r->conn->data && r->conn->data_free)
        r->conn->data_free(r->conn->data);
    r->conn->data = data;
    r->conn->data_free = free_fn;
}

uint64_t hs_req_received_ns(const hs_req_t *r) { return r->received_ns; }

uint64_t hs_req_arrival_ns(const hs_req_t *r)
{
    return r->arrival_ns;
}

int hs_req_gone(const hs_req_t *r) { return r->conn == NULL; }

void hs_reply_ex(hs_req_t *r, int status, const char *ctype, const char *extra, const void *body,
                 size_t len)
{
    hs_conn_t *c = r->conn;
    if (!c) {
        req_free(r);
        return;
    }
    hs_server_t *s = c->srv;
    int keep = r->keep_alive && !r->body_incomplete && !s->draining;
    write_response(c, status, ctype, extra, body, len, keep);
    c->req = NULL;
    if (keep)
        req_recycle(c, r); /* (body and headers are the caller's no more) */
    else
        req_free(r);
    if (!keep) {
        c->close_after_write = 1;
        c->phase = PH_CLOSING;
        conn_arm(c, 5000);
        return;
    }
    c->phase = PH_IDLE;
    conn_arm(c, s->o.idle_timeout_ms);
    conn_read_enable(c, 1);
    /* Pipelined bytes may already be waiting. */
    if (evbuffer_get_length(conn_in(c)) > 0)
        conn_process_input(c);
}

int hs_stream_begin(hs_req_t *r, int status, const char *ctype, const char *extra)
{
    hs_conn_t *c = r->conn;
    if (!c)
        return RH_EIO;
    if (c->phase != PH_PENDING || c->req != r || !r->http11)
        return RH_EINVAL;
    char h[512];
    const size_t cap = sizeof h - 2;
    size_t n = put_status_line(h, cap, status);
    static const char te[] = "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n";
    n = put(h, n, cap, te, sizeof te - 1);
    n = put_head_end(h, n, cap, ctype, extra);
    conn_send(c, &(struct iovec){h, n}, 1, 0);
    c->phase = PH_STREAM;
    conn_disarm(c);
    conn_read_enable(c, 1); /* to notice the client closing */
    return RH_OK;
}

int hs_stream_write(hs_req_t *r, const void *data, size_t len, size_t max_buffered)
{
    hs_conn_t *c = r->conn;
    if (!c)
        return RH_EIO;
    if (c->phase != PH_STREAM)
        return RH_EINVAL;
    if (len == 0)
        return RH_OK;
    if (conn_out_len(c) > max_buffered)
        return RH_EAGAIN;
    char h[24];
    static const char hexd[] = "0123456789abcdef";
    size_t n = 0;
    char d[16];
    size_t v = len;
    do {
        d[n++] = hexd[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        h[i] = d[n - 1 - i];
    h[n++] = '\r';
    h[n++] = '\n';
    struct iovec iov[3] = {{h, n}, {(void *)data, len}, {"\r\n", 2}};
    conn_send(c, iov, 3, 0);
    return RH_OK;
}

void hs_stream_end(hs_req_t *r)
{
    hs_conn_t *c = r->conn;
    if (!c) {
        req_free(r);
        return;
    }
    if (c->phase != PH_STREAM) { /* never started: an empty answer */
        hs_reply(r, 204, NULL, NULL, 0);
        return;
    }
    conn_send(c, &(struct iovec){"0\r\n\r\n", 5}, 1, 0);
    req_free(r);
    c->req = NULL;
    c->close_after_write = 1;
    c->closing = 1;
    c->phase = PH_CLOSING;
    conn_read_enable(c, 0);
    conn_arm(c, 5000); /* bound the time spent flushing to a client that doesn't read */
}

void hs_reply(hs_req_t *r, int status, const char *ctype, const void *body, size_t len)
{
    hs_reply_ex(r, status, ctype, NULL, body, len);
}
