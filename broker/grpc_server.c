/*
 * grpc_server.c — gRPC over HTTP/2 with nghttp2 on libevent (see grpc_server.h).
 *
 * Shape: a conn_t per TCP connection owns an nghttp2 server session and a bufferevent (plain or
 * OpenSSL); a grpc_call_t per stream is created at the stream's first HEADERS and freed when
 * nghttp2 closes the stream (or with its connection). nghttp2 does framing, HPACK, SETTINGS,
 * PING acks, flow control and stream limits; this file does gRPC on top: request validation,
 * the method table, message (de)framing, deadlines, replies and trailers, and the connection's
 * timers and caps.
 */
#include "grpc_server.h"

#include "rh_dlist.h"
#include "rh_log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define OUT_HIGH_WATER (256u << 10) /* connection output queued before nghttp2 is told to wait */
#define CALL_OUT_CAP (1u << 20)     /* reply bytes one call may have waiting (grpc_call_send) */
#define MAX_HEADERS 64              /* header fields kept per call */

typedef struct conn conn_t;

typedef struct hdr {
    char *name, *value;
} hdr_t;

struct grpc_call {
    conn_t *conn;
    int32_t stream_id;
    grpc_call_t *prev, *next;       /* conn's list */
    hdr_t hdrs[MAX_HEADERS];
    unsigned nhdrs;
    size_t hdr_bytes;
    const grpc_method_t *method;
    grpc_deframer_t in;
    uint8_t *req;                   /* the request message (copied) */
    size_t req_len;
    unsigned nreq;
    struct event *deadline;         /* grpc-timeout, or the request deadline (below) */
    uint64_t deadline_ms;           /* grpc-timeout as absolute ms, 0 = none */
    bool request_timer;             /* `deadline` runs only until the request is complete */
    struct evbuffer *out;           /* framed reply messages not yet taken by nghttp2 */
    bool response_submitted;        /* HEADERS (and a data provider) submitted */
    bool handler_owns;              /* on_request ran and the handler has not finished */
    bool finished;                  /* status decided; trailers go after `out` */
    bool trailers_sent;
    grpc_status_t status;
    char message[256];              /* percent-encoded */
    void *user;                     /* the handler's (grpc_call_set_user) */
};

struct conn {
    grpc_server_t *srv;
    conn_t *prev, *next;
    struct bufferevent *bev;
    nghttp2_session *h2;
    struct event *timer;            /* handshake, then idle */
    grpc_call_t *calls;
    unsigned open_calls;
    bool preface_seen;
    bool closing;                   /* close once the output is written */
    bool in_io;                     /* inside a read/write pass: do not free */
    char peer[64];                  /* "ip:port" of the client, for logs and route hops */
};

struct grpc_server {
    struct event_base *base;
    grpc_opts_t o;
    struct evconnlistener *lev;
    bool listening, shutting_down;
    uint16_t port;
    conn_t *conns;
    unsigned nconns;
};

static void conn_pump(conn_t *c);
static void call_finish_internal(grpc_call_t *call, grpc_status_t st, const char *msg);

/* ------------------------------------------------------------------ time */

static uint64_t now_ms(const grpc_server_t *s)
{
    struct timeval tv;
    event_base_gettimeofday_cached(s->base, &tv);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static void arm(struct event *ev, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
}

/* ------------------------------------------------------------------ calls */

static void call_free(grpc_call_t *call)
{
    conn_t *c = call->conn;
    RH_DLIST_UNLINK(c->calls, call);
    c->open_calls--;
    for (unsigned i = 0; i < call->nhdrs; i++) {
        free(call->hdrs[i].name);
        free(call->hdrs[i].value);
    }
    grpc_deframer_fini(&call->in);
    free(call->req);
    if (call->deadline)
        event_free(call->deadline);
    if (call->out)
        evbuffer_free(call->out);
    free(call);
    if (c->open_calls == 0 && c->preface_seen && !c->closing)
        arm(c->timer, c->srv->o.idle_timeout_ms);
}

/* The call ends without its handler: tell the handler, once. */
static void call_cancel_handler(grpc_call_t *call)
{
    if (call->handler_owns) {
        call->handler_owns = false;
        if (call->method && call->method->on_cancel)
            call->method->on_cancel(call, call->conn->srv->o.arg);
    }
}

const char *grpc_call_header(const grpc_call_t *call, const char *name)
{
    for (unsigned i = 0; i < call->nhdrs; i++)
        if (strcmp(call->hdrs[i].name, name) == 0)
            return call->hdrs[i].value;
    return NULL;
}

const char *grpc_call_path(const grpc_call_t *call)
{
    const char *p = grpc_call_header(call, ":path");
    return p ? p : "";
}

uint64_t grpc_call_remaining_ms(const grpc_call_t *call)
{
    if (!call->deadline_ms)
        return UINT64_MAX;
    uint64_t now = now_ms(call->conn->srv);
    return call->deadline_ms > now ? call->deadline_ms - now : 0;
}

void grpc_call_set_user(grpc_call_t *call, void *user)
{
    call->user = user;
}

void *grpc_call_user(const grpc_call_t *call)
{
    return call->user;
}

const char *grpc_call_peer(const grpc_call_t *call)
{
    return call->conn->peer;
}

size_t grpc_call_queued_bytes(const grpc_call_t *call)
{
    return call->out ? evbuffer_get_length(call->out) : 0;
}

/* nghttp2 pulls reply DATA from call->out; at the end of a finished call it sends the trailers. */
static ssize_t data_read_cb(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    grpc_call_t *call = src->ptr;
    size_t n = evbuffer_remove(call->out, buf, length);
    if (evbuffer_get_length(call->out) == 0 && call->finished) {
        *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (!call->trailers_sent) {
            char st[8];
            snprintf(st, sizeof st, "%d", (int)call->status);
            nghttp2_nv tr[2] = {
                {(uint8_t *)"grpc-status", (uint8_t *)st, 11, strlen(st), NGHTTP2_NV_FLAG_NONE},
                {(uint8_t *)"grpc-message", (uint8_t *)call->message, 12, strlen(call->message),
                 NGHTTP2_NV_FLAG_NONE},
            };
            call->trailers_sent = true;
            if (nghttp2_submit_trailer(h2, stream_id, tr, call->message[0] ? 2 : 1) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return (ssize_t)n;
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    return (ssize_t)n;
}

static const nghttp2_nv resp_hdrs[] = {
    {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
    {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
};

/* Submits HEADERS + a data provider (once); resumes a deferred provider afterwards. */
static int call_submit_or_resume(grpc_call_t *call)
{
    conn_t *c = call->conn;
    if (call->response_submitted) {
        /* wakes a deferred provider; fails harmlessly when it is not deferred */
        nghttp2_session_resume_data(c->h2, call->stream_id);
        return RH_OK;
    }
    nghttp2_data_provider dp = {.source.ptr = call, .read_callback = data_read_cb};
    if (nghttp2_submit_response(c->h2, call->stream_id, resp_hdrs, 2, &dp) != 0)
        return RH_EINVAL;
    call->response_submitted = true;
    return RH_OK;
}

int grpc_call_send(grpc_call_t *call, const uint8_t *msg, size_t len)
{
    if (call->finished || len > UINT32_MAX)
        return RH_EINVAL;
    if (!call->out && !(call->out = evbuffer_new()))
        return RH_ENOMEM;
    if (evbuffer_get_length(call->out) + len > CALL_OUT_CAP)
        return RH_EAGAIN;
    uint8_t hdr[GRPC_FRAME_HDR];
    grpc_frame_header(hdr, (uint32_t)len);
    if (evbuffer_add(call->out, hdr, sizeof hdr) != 0 || evbuffer_add(call->out, msg, len) != 0)
        return RH_ENOMEM;
    if (call_submit_or_resume(call) != RH_OK)
        return RH_EINVAL;
    conn_pump(call->conn);
    return RH_OK;
}

/* Decides the status; sends trailers-only when nothing was replied yet, else trailers after the
 * queued messages. Does not pump (callers inside nghttp2 callbacks must not re-enter). */
static void call_finish_internal(grpc_call_t *call, grpc_status_t st, const char *msg)
{
    if (call->finished)
        return;
    call->finished = true;
    call->handler_owns = false;
    call->status = st;
    grpc_percent_encode(msg ? msg : "", call->message, sizeof call->message);
    if (call->deadline)
        evtimer_del(call->deadline);
    conn_t *c = call->conn;
    if (!call->response_submitted) {
        char s[8];
        snprintf(s, sizeof s, "%d", (int)st);
        nghttp2_nv h[4] = {
            resp_hdrs[0],
            resp_hdrs[1],
            {(uint8_t *)"grpc-status", (uint8_t *)s, 11, strlen(s), NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-message", (uint8_t *)call->message, 12, strlen(call->message),
             NGHTTP2_NV_FLAG_NONE},
        };
        call->response_submitted = call->trailers_sent = true;
        nghttp2_submit_response(c->h2, call->stream_id, h, call->message[0] ? 4 : 3, NULL);
    } else {
        nghttp2_session_resume_data(c->h2, call->stream_id);
    }
}

void grpc_call_finish(grpc_call_t *call, grpc_status_t status, const char *message)
{
    call_finish_internal(call, status, message);
    conn_pump(call->conn);
}

static void deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
    grpc_call_t *call = arg;
    conn_t *c = call->conn;
    call_cancel_handler(call);
    call_finish_internal(call, GRPC_DEADLINE_EXCEEDED,
                         call->request_timer ? "request: not complete in time"
                                             : "deadline exceeded");
    conn_pump(c);
}

/* ------------------------------------------------------------------ request intake */

static grpc_call_t *call_of(conn_t *c, int32_t stream_id)
{
    return nghttp2_session_get_stream_user_data(c->h2, stream_id);
}

static int on_begin_headers(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    conn_t *c = user;
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    grpc_call_t *call = calloc(1, sizeof *call);
    if (!call)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    call->conn = c;
    call->stream_id = f->hd.stream_id;
    RH_DLIST_PUSH(c->calls, call);
    c->open_calls++;
    evtimer_del(c->timer); /* a stream is open: not idle */
    nghttp2_session_set_stream_user_data(h2, f->hd.stream_id, call);
    return 0;
}

static int on_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    conn_t *c = user;
    grpc_call_t *call = call_of(c, f->hd.stream_id);
    if (!call || f->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (f->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* request trailers carry nothing gRPC reads */
    call->hdr_bytes += namelen + valuelen + 32; /* RFC 7540 6.5.2 accounting */
    if (call->hdr_bytes > c->srv->o.max_header_bytes || call->nhdrs >= MAX_HEADERS)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM; the stream closes */
    hdr_t *h = &call->hdrs[call->nhdrs];
    h->name = strndup((const char *)name, namelen);
    h->value = strndup((const char *)value, valuelen);
    if (!h->name || !h->value) {
        free(h->name);
        free(h->value);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    call->nhdrs++;
    return 0;
}

static int keep_request(void *arg, const uint8_t *msg, size_t len)
{
    grpc_call_t *call = arg;
    if (++call->nreq > 1)
        return GRPC_INTERNAL;
    call->req = malloc(len ? len : 1);
    if (!call->req)
        return GRPC_RESOURCE_EXHAUSTED;
    memcpy(call->req, msg, len);
    call->req_len = len;
    return GRPC_OK;
}

/* Request headers complete: validate and find the method. Answers refusals at once. */
static void call_headers_done(conn_t *c, grpc_call_t *call)
{
    grpc_server_t *s = c->srv;
    const char *method = grpc_call_header(call, ":method");
    const char *ctype = grpc_call_header(call, "content-type");
    const char *path = grpc_call_path(call);
    if (s->shutting_down) {
        call_finish_internal(call, GRPC_UNAVAILABLE, "server shutting down");
        return;
    }
    if (!method || strcmp(method, "POST") != 0) {
        call_finish_internal(call, GRPC_UNIMPLEMENTED, "gRPC requires POST");
        return;
    }
    if (!ctype || strncmp(ctype, "application/grpc", 16) != 0 ||
        (ctype[16] != '\0' && ctype[16] != '+' && ctype[16] != ';')) {
        call_finish_internal(call, GRPC_INTERNAL, "content-type: expected application/grpc");
        return;
    }
    const char *enc = grpc_call_header(call, "grpc-encoding");
    if (enc && strcmp(enc, "identity") != 0) {
        call_finish_internal(call, GRPC_UNIMPLEMENTED, "grpc-encoding: only identity is supported");
        return;
    }
    const char *to = grpc_call_header(call, "grpc-timeout");
    call->deadline = evtimer_new(s->base, deadline_cb, call);
    if (!call->deadline) {
        call_finish_internal(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    if (!to) {
        /* no deadline of its own: the request itself must still arrive in time (a stream that
         * opens and never sends its message would otherwise hold its slot forever) */
        call->request_timer = true;
        arm(call->deadline, s->o.handshake_timeout_ms);
    } else {
        uint64_t ms;
        rh_diag_t d;
        if (grpc_timeout_parse(to, strlen(to), &ms, &d) != RH_OK) {
            call_finish_internal(call, GRPC_INTERNAL, d.text);
            return;
        }
        if (ms > 24u * 3600u * 1000u)
            ms = 24u * 3600u * 1000u; /* a day: further deadlines change nothing here */
        call->deadline_ms = now_ms(s) + ms;
        arm(call->deadline, (unsigned)ms);
    }
    for (size_t i = 0; i < s->o.n_methods; i++)
        if (strcmp(s->o.methods[i].path, path) == 0)
            call->method = &s->o.methods[i];
    if (!call->method) {
        char m[200];
        snprintf(m, sizeof m, "unknown method %.160s", path);
        call_finish_internal(call, GRPC_UNIMPLEMENTED, m);
        return;
    }
    grpc_deframer_init(&call->in, s->o.max_msg_bytes, keep_request, call);
}

/* The client ended its side: hand the one request message to the method. */
static void call_request_done(grpc_call_t *call)
{
    if (call->finished)
        return;
    if (!grpc_deframer_idle(&call->in)) {
        call_finish_internal(call, GRPC_INTERNAL, "message: stream ended inside a message");
        return;
    }
    if (call->nreq != 1) {
        call_finish_internal(call, GRPC_INTERNAL, "request: expected exactly one message");
        return;
    }
    if (call->request_timer) {
        evtimer_del(call->deadline);
        call->request_timer = false;
    }
    call->handler_owns = true;
    call->method->on_request(call, call->req, call->req_len, call->conn->srv->o.arg);
}

static int on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user)
{
    conn_t *c = user;
    grpc_call_t *call = call_of(c, stream_id);
    if (!call || call->finished || !call->method)
        return 0; /* already answered: the rest of the body is read and dropped */
    if (call->nreq >= 1 && len > 0) {
        call_finish_internal(call, GRPC_INTERNAL, "request: expected exactly one message");
        return 0;
    }
    rh_diag_t d = {{0}};
    int st = grpc_deframer_feed(&call->in, data, len, &d);
    if (st != GRPC_OK)
        call_finish_internal(call, (grpc_status_t)st,
                             d.text[0] ? d.text : "request: expected exactly one message");
    return 0;
}

static int on_frame_recv(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    conn_t *c = user;
    if (!c->preface_seen) {
        c->preface_seen = true; /* the client's SETTINGS came: the handshake deadline is over */
        evtimer_del(c->timer);
        if (c->open_calls == 0)
            arm(c->timer, c->srv->o.idle_timeout_ms);
    }
    grpc_call_t *call = f->hd.stream_id ? call_of(c, f->hd.stream_id) : NULL;
    if (!call)
        return 0;
    if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST)
        call_headers_done(c, call);
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM))
        call_request_done(call);
    return 0;
}

static int on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code,
                           void *user)
{
    conn_t *c = user;
    grpc_call_t *call = call_of(c, stream_id);
    if (!call)
        return 0;
    call_cancel_handler(call);
    nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
    call_free(call);
    return 0;
}

/* After our END_STREAM (the reply is complete), a client still sending is told to stop with
 * RST_STREAM(NO_ERROR) (RFC 9113 section 8.1), so the stream closes and frees its slot now
 * instead of when the client finishes a request nobody will read. */
static int on_frame_send(nghttp2_session *h2, const nghttp2_frame *f, void *user)
{
    if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(h2, f->hd.stream_id) == 0)
        nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static ssize_t send_cb(nghttp2_session *h2, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    conn_t *c = user;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_get_length(out) >= OUT_HIGH_WATER)
        return NGHTTP2_ERR_WOULDBLOCK; /* resumed from the write callback */
    if (bufferevent_write(c->bev, data, len) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)len;
}

/* ------------------------------------------------------------------ connections */

static void conn_free(conn_t *c)
{
    grpc_server_t *s = c->srv;
    while (c->calls) {
        grpc_call_t *call = c->calls;
        call_cancel_handler(call);
        call_free(call);
    }
    if (c->h2)
        nghttp2_session_del(c->h2);
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->timer)
        event_free(c->timer);
    RH_DLIST_UNLINK(s->conns, c);
    s->nconns--;
    free(c);
    if (!s->listening && s->lev && !s->shutting_down && s->nconns < s->o.max_connections) {
        evconnlistener_enable(s->lev);
        s->listening = true;
    }
}

/* Sends what nghttp2 has; starts closing when the session is done. May free c (never inside an
 * nghttp2 callback: those only set state, and the I/O callbacks pump afterwards). */
static void conn_pump(conn_t *c)
{
    if (c->in_io)
        return; /* the I/O callback that is running pumps when it returns */
    if (!c->closing && nghttp2_session_send(c->h2) != 0)
        c->closing = true;
    if (!c->closing && !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        c->closing = true;
    if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        conn_free(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->in_io = true;
    while (!c->closing && evbuffer_get_length(in) > 0) {
        size_t n = evbuffer_get_contiguous_space(in);
        unsigned char *p = evbuffer_pullup(in, (ssize_t)n);
        ssize_t used = nghttp2_session_mem_recv(c->h2, p, n);
        if (used < 0) {
            RH_LOG(RH_LOG_DEBUG, "grpc", "connection refused err=\"%s\"",
                   nghttp2_strerror((int)used));
            /* GOAWAY (nghttp2 queues one itself for most protocol errors, not for a bad
             * preface such as an HTTP/1.1 request): send it, then close */
            nghttp2_session_terminate_session(c->h2, NGHTTP2_PROTOCOL_ERROR);
            nghttp2_session_send(c->h2);
            c->closing = true;
            evbuffer_drain(in, evbuffer_get_length(in));
            break;
        }
        evbuffer_drain(in, (size_t)used);
    }
    c->in_io = false;
    conn_pump(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    conn_pump(arg); /* output drained below the watermark: more of nghttp2's queue, or close */
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn_t *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (what & BEV_EVENT_ERROR)
            RH_LOG(RH_LOG_DEBUG, "grpc", "connection error err=\"%s\"",
                   evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        conn_free(c);
    }
}

/* Graceful GOAWAY: streams already begun finish (their replies and trailers go out first);
 * nghttp2 stops wanting to read once none is left, and the connection closes. */
static void goaway(conn_t *c)
{
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(c->h2),
                          NGHTTP2_NO_ERROR, NULL, 0);
}

static void conn_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
    conn_t *c = arg;
    if (!c->preface_seen) {
        RH_LOG(RH_LOG_DEBUG, "grpc", "no HTTP/2 preface in time, closing");
        conn_free(c);
        return;
    }
    if (c->open_calls > 0)
        return;
    goaway(c); /* idle */
    conn_pump(c);
}

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cbs;
    if (!cbs) { /* created on the first server; all servers are made before workers start */
        if (nghttp2_session_callbacks_new(&cbs) != 0)
            return NULL;
        nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    }
    return cbs;
}

static void conn_start(grpc_server_t *s, evutil_socket_t fd)
{
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        evutil_closesocket(fd);
        return;
    }
    c->srv = s;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
        char host[48] = "";
        bool v4 = ss.ss_family == AF_INET;
        evutil_inet_ntop(ss.ss_family,
                         v4 ? (void *)&((struct sockaddr_in *)&ss)->sin_addr
                            : (void *)&((struct sockaddr_in6 *)&ss)->sin6_addr,
                         host, sizeof host);
        unsigned port = ntohs(v4 ? ((struct sockaddr_in *)&ss)->sin_port
                                 : ((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(c->peer, sizeof c->peer, v4 ? "%s:%u" : "[%s]:%u", host, port);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s->o.tls_ctx) {
        SSL_CTX *ctx = s->o.tls_ctx(s->o.tls_ctx_arg);
        SSL *ssl = ctx ? SSL_new(ctx) : NULL;
        if (ctx)
            SSL_CTX_free(ctx); /* SSL_new holds its own reference */
        if (ssl)
            c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev && ssl)
            SSL_free(ssl);
    } else {
        c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev)
        evutil_closesocket(fd);
    c->timer = c->bev ? evtimer_new(s->base, conn_timer_cb, c) : NULL;
    nghttp2_option *opt = NULL;
    nghttp2_session_callbacks *cbs = callbacks();
    if (c->timer && cbs && nghttp2_option_new(&opt) == 0) {
        /* HPACK: our encoder's dynamic table stays small whatever the client allows */
        nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
        if (nghttp2_session_server_new2(&c->h2, cbs, c, opt) != 0)
            c->h2 = NULL;
        nghttp2_option_del(opt);
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->o.max_streams},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->o.max_header_bytes},
    };
    /* linked first so that conn_free below can unlink it */
    RH_DLIST_PUSH(s->conns, c);
    s->nconns++;
    if (!c->h2 || nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0) {
        RH_LOG(RH_LOG_WARN, "grpc", "cannot set up a connection (out of memory)");
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_WRITE, OUT_HIGH_WATER / 2, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm(c->timer, s->o.handshake_timeout_ms);
    conn_pump(c);
    if (s->nconns >= s->o.max_connections && s->listening && s->lev) {
        evconnlistener_disable(s->lev);
        s->listening = false;
        RH_LOG(RH_LOG_WARN, "grpc", "connection cap reached, pausing accept conns=%u", s->nconns);
    }
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    conn_start(arg, fd);
}

void grpc_server_adopt(grpc_server_t *srv, evutil_socket_t fd)
{
    conn_start(srv, fd);
}

/* ------------------------------------------------------------------ TLS */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char h2[] = "\x02h2";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h2, sizeof h2 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* gRPC over TLS is h2 only */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *grpc_server_tls_prepare(SSL_CTX *ctx)
{
    if (ctx)
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
}

/* ------------------------------------------------------------------ server */

grpc_server_t *grpc_server_new(struct event_base *base, const grpc_opts_t *opts, rh_diag_t *diag)
{
    grpc_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        rh_diag_fail(diag, RH_ENOMEM, "grpc: out of memory");
        return NULL;
    }
    s->base = base;
    s->o = *opts;
    if (!s->o.handshake_timeout_ms) s->o.handshake_timeout_ms = 10000;
    if (!s->o.idle_timeout_ms) s->o.idle_timeout_ms = 300000;
    if (s->o.max_streams < 100) s->o.max_streams = 100;
    if (!s->o.max_header_bytes) s->o.max_header_bytes = 16384;
    if (!s->o.max_msg_bytes) s->o.max_msg_bytes = 1u << 20;
    if (!s->o.max_connections) s->o.max_connections = 1024;
    if (!callbacks()) {
        free(s);
        rh_diag_fail(diag, RH_ENOMEM, "grpc: out of memory");
        return NULL;
    }
    if (!opts->bind_addr)
        return s;
    char spec[128];
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    snprintf(spec, sizeof spec, strchr(opts->bind_addr, ':') ? "[%s]:%u" : "%s:%u",
             opts->bind_addr, opts->port);
    /* the address alone (libevent refuses port 0 in "addr:port"); the port is set below */
    memset(&ss, 0, sizeof ss);
    if (evutil_parse_sockaddr_port(opts->bind_addr, (struct sockaddr *)&ss, &sl) != 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        free(s);
        rh_diag_fail(diag, RH_EINVAL, "grpc.address: %s is not a numeric IP address",
                     opts->bind_addr);
        return NULL;
    }
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(opts->port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons(opts->port);
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE;
    if (opts->reuse_port)
        flags |= LEV_OPT_REUSEABLE_PORT;
    s->lev = evconnlistener_new_bind(base, accept_cb, s, flags, 1024, (struct sockaddr *)&ss, sl);
    if (!s->lev) {
        rh_diag_fail(diag, RH_EIO, "grpc: cannot listen on %s: %s", spec, strerror(errno));
        free(s);
        return NULL;
    }
    s->listening = true;
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(evconnlistener_get_fd(s->lev), (struct sockaddr *)&bound, &bl) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    return s;
}

uint16_t grpc_server_port(const grpc_server_t *s) { return s->port; }

unsigned grpc_server_connections(const grpc_server_t *s) { return s->nconns; }

void grpc_server_shutdown(grpc_server_t *s)
{
    s->shutting_down = true;
    if (s->lev && s->listening) {
        evconnlistener_disable(s->lev);
        s->listening = false;
    }
    for (conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        for (grpc_call_t *call = c->calls; call; call = call->next) {
            call_cancel_handler(call);
            call_finish_internal(call, GRPC_UNAVAILABLE, "server shutting down");
        }
        goaway(c);
        conn_pump(c);
    }
}

void grpc_server_free(grpc_server_t *s)
{
    if (!s)
        return;
    s->shutting_down = true;
    while (s->conns)
        conn_free(s->conns);
    if (s->lev)
        evconnlistener_free(s->lev);
    free(s);
}
