/*
 * grpc_client.c — gRPC client calls over one nghttp2 client session on a libevent bufferevent
 * (see grpc_client.h). nghttp2 does HTTP/2; this file does gRPC on top: request headers and the
 * framed request body, reply deframing (grpc_frame.h), status from trailers, local deadlines.
 */
#include "grpc_client.h"

#include "rh_dlist.h"
#include "rh_log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <nghttp2/nghttp2.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define DEFAULT_MAX_MSG (16u << 20)

struct grpc_ccall {
    grpc_client_t *c;
    grpc_ccall_t *prev, *next;
    int32_t stream_id;
    uint8_t *req;               /* 5-byte prefix + message */
    size_t req_len, req_off;
    grpc_deframer_t in;
    grpc_reply_fn on_reply;
    grpc_done_fn on_done;
    void *arg;
    struct event *deadline;
    int http_status;
    bool has_status;
    int status;
    char message[256];
    bool cancelled;             /* no more callbacks */
    int local_status;           /* set when this side ended the stream (-1 = none) */
    char local_msg[256];
};

struct grpc_client {
    struct event_base *base;
    struct bufferevent *bev;
    nghttp2_session *h2;
    grpc_ccall_t *calls;
    unsigned ncalls;
    size_t max_msg;
    char authority[300];
    SSL_CTX *tls;               /* a reference, or NULL for h2c */
    SSL *ssl;                   /* owned by the bufferevent */
    bool dead;
    bool in_recv;               /* inside nghttp2_session_mem_recv: do not send */
};

static void call_free(grpc_ccall_t *k)
{
    grpc_client_t *c = k->c;
    RH_DLIST_UNLINK(c->calls, k);
    c->ncalls--;
    if (k->deadline)
        event_free(k->deadline);
    grpc_deframer_fini(&k->in);
    free(k->req);
    free(k);
}

static void call_end(grpc_ccall_t *k, int status, const char *msg)
{
    if (!k->cancelled && k->on_done) {
        k->cancelled = true;
        k->on_done(k->arg, status, msg ? msg : "");
    }
    k->cancelled = true;
}

/* Ends every call with UNAVAILABLE and drops the session (the connection is dead). */
static void fail_all(grpc_client_t *c, const char *why)
{
    if (c->dead && !c->calls)
        return;
    c->dead = true;
    while (c->calls) {
        grpc_ccall_t *k = c->calls;
        if (c->h2 && k->stream_id > 0)
            nghttp2_session_set_stream_user_data(c->h2, k->stream_id, NULL);
        call_end(k, GRPC_UNAVAILABLE, why);
        call_free(k);
    }
}

static void flush(grpc_client_t *c)
{
    if (c->dead || c->in_recv || !c->h2)
        return;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->h2, &data);
        if (n < 0) {
            fail_all(c, nghttp2_strerror((int)n));
            return;
        }
        if (n == 0)
            break;
        if (bufferevent_write(c->bev, data, (size_t)n) < 0) {
            fail_all(c, "write failed");
            return;
        }
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        fail_all(c, "connection closed by the server");
}

/* ---- nghttp2 callbacks ---- */

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    grpc_ccall_t *k = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!k)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        k->http_status = atoi((const char *)value);
    } else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0) {
        char buf[16];
        size_t n = valuelen < sizeof buf - 1 ? valuelen : sizeof buf - 1;
        memcpy(buf, value, n);
        buf[n] = 0;
        char *end;
        long v = strtol(buf, &end, 10);
        k->has_status = true;
        k->status = (n > 0 && *end == 0 && v >= 0 && v <= 16) ? (int)v : GRPC_UNKNOWN;
    } else if (namelen == 12 && memcmp(name, "grpc-message", 12) == 0) {
        grpc_percent_decode((const char *)value, valuelen, k->message, sizeof k->message);
    }
    return 0;
}

static int on_msg(void *arg, const uint8_t *msg, size_t len)
{
    grpc_ccall_t *k = arg;
    if (!k->cancelled && k->on_reply)
        k->on_reply(k->arg, msg, len);
    return GRPC_OK;
}

static void reset_local(grpc_ccall_t *k, int status, const char *msg)
{
    if (k->local_status < 0) {
        k->local_status = status;
        snprintf(k->local_msg, sizeof k->local_msg, "%s", msg);
    }
    nghttp2_submit_rst_stream(k->c->h2, NGHTTP2_FLAG_NONE, k->stream_id, NGHTTP2_CANCEL);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                   size_t len, void *ud)
{
    (void)flags;
    (void)ud;
    grpc_ccall_t *k = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!k || k->local_status >= 0)
        return 0;
    rh_diag_t d;
    rh_diag_clear(&d);
    int st = grpc_deframer_feed(&k->in, data, len, &d);
    if (st != GRPC_OK)
        reset_local(k, st, d.text[0] ? d.text : "malformed reply message");
    return 0;
}

static int on_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    (void)ud;
    grpc_ccall_t *k = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!k)
        return 0;
    nghttp2_session_set_stream_user_data(s, stream_id, NULL);
    char why[96];
    if (k->local_status >= 0) {
        call_end(k, k->local_status, k->local_msg);
    } else if (k->has_status) {
        if (k->status == GRPC_OK && !grpc_deframer_idle(&k->in))
            call_end(k, GRPC_INTERNAL, "stream ended inside a reply message");
        else
            call_end(k, k->status, k->message);
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        call_end(k, GRPC_UNAVAILABLE, "stream refused by the server");
    } else if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(why, sizeof why, "stream reset by the server: %s",
                 nghttp2_http2_strerror(error_code));
        call_end(k, error_code == NGHTTP2_CANCEL ? GRPC_CANCELLED : GRPC_INTERNAL, why);
    } else {
        snprintf(why, sizeof why, "no grpc-status in the reply (HTTP status %d)", k->http_status);
        call_end(k, k->http_status == 503 ? GRPC_UNAVAILABLE : GRPC_INTERNAL, why);
    }
    call_free(k);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    grpc_client_t *c = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY)
        c->dead = true; /* no new calls; open streams below last_stream_id finish normally */
    return 0;
}

static ssize_t read_req(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                        uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)stream_id;
    (void)ud;
    grpc_ccall_t *k = src->ptr;
    size_t n = k->req_len - k->req_off;
    if (n > length)
        n = length;
    memcpy(buf, k->req + k->req_off, n);
    k->req_off += n;
    if (k->req_off == k->req_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- I/O ---- */

static void on_read(struct bufferevent *bev, void *arg)
{
    grpc_client_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    if (n == 0 || !c->h2)
        return;
    const uint8_t *p = evbuffer_pullup(in, -1);
    c->in_recv = true;
    ssize_t r = nghttp2_session_mem_recv(c->h2, p, n);
    c->in_recv = false;
    evbuffer_drain(in, n);
    if (r < 0) {
        fail_all(c, nghttp2_strerror((int)r));
        return;
    }
    flush(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    grpc_client_t *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        /* as grpc-go (Go's TCP connections default to TCP_NODELAY): a request or a
         * WINDOW_UPDATE written while an earlier segment is unacknowledged goes out at once */
        int one = 1;
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (c->ssl) { /* grpc-go >= 1.67: a server that does not select h2 is refused */
            const unsigned char *proto = NULL;
            unsigned len = 0;
            SSL_get0_alpn_selected(c->ssl, &proto, &len);
            if (len != 2 || memcmp(proto, "h2", 2) != 0) {
                fail_all(c, "TLS: the server did not select ALPN h2");
                return;
            }
        }
        flush(c);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        char why[200];
        unsigned long e = c->ssl ? bufferevent_get_openssl_error(c->bev) : 0;
        if (e) {
            char buf[160];
            ERR_error_string_n(e, buf, sizeof buf);
            snprintf(why, sizeof why, "TLS: %s", buf);
            while (bufferevent_get_openssl_error(c->bev))
                ;
        } else {
            snprintf(why, sizeof why, "%s", (what & BEV_EVENT_EOF) ? "connection closed by the server"
                                                                     : "connection failed");
        }
        fail_all(c, why);
    }
}

static void on_deadline(evutil_socket_t fd, short ev, void *arg)
{
    (void)fd;
    (void)ev;
    grpc_ccall_t *k = arg;
    grpc_client_t *c = k->c;
    call_end(k, GRPC_DEADLINE_EXCEEDED, "deadline exceeded (local)");
    if (!c->dead && c->h2)
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, k->stream_id, NGHTTP2_CANCEL);
    flush(c);
}

/* ---- public ---- */

SSL_CTX *grpc_client_tls_ctx(const char *ca_file, const char *what, rh_diag_t *diag)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        char buf[160];
        ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        rh_diag_fail(diag, RH_ECRYPTO, "%s: cannot load %s (%s)", what,
                     ca_file ? ca_file : "the system trust store", buf);
        return NULL;
    }
    return ctx;
}

/* A new SSL for host: ALPN h2 only, SNI for names, the certificate checked against the name or
 * the IP address. NULL on failure. */
static SSL *new_ssl(SSL_CTX *ctx, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    if (!ssl)
        return NULL;
    unsigned char a4[4], a6[16];
    bool ip = inet_pton(AF_INET, host, a4) == 1 || inet_pton(AF_INET6, host, a6) == 1;
    static const unsigned char alpn[] = {2, 'h', '2'};
    int ok = SSL_set_alpn_protos(ssl, alpn, sizeof alpn) == 0;
    if (ip) {
        ok = ok && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
    } else {
        ok = ok && SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    if (!ok) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

grpc_client_t *grpc_client_new(struct event_base *base, const char *host, uint16_t port,
                               SSL_CTX *tls, size_t max_msg, rh_diag_t *diag)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int e = getaddrinfo(host, ps, &hints, &ai);
    if (e != 0 || !ai) {
        rh_diag_fail(diag, RH_EINVAL, "host: %s: %s", host, gai_strerror(e));
        return NULL;
    }
    grpc_client_t *c = calloc(1, sizeof *c);
    nghttp2_session_callbacks *cb = NULL;
    if (!c || nghttp2_session_callbacks_new(&cb) != 0) {
        free(c);
        freeaddrinfo(ai);
        rh_diag_fail(diag, RH_ENOMEM, "gRPC client: out of memory");
        return NULL;
    }
    c->base = base;
    c->max_msg = max_msg ? max_msg : DEFAULT_MAX_MSG;
    snprintf(c->authority, sizeof c->authority, "%s:%u", host, (unsigned)port);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    int rc = nghttp2_session_client_new(&c->h2, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc == 0 && tls) {
        c->tls = tls;
        SSL_CTX_up_ref(tls);
        c->ssl = new_ssl(tls, host);
        c->bev = c->ssl ? bufferevent_openssl_socket_new(base, -1, c->ssl, BUFFEREVENT_SSL_CONNECTING,
                                                         BEV_OPT_CLOSE_ON_FREE)
                        : NULL;
        if (!c->bev && c->ssl) {
            SSL_free(c->ssl);
            c->ssl = NULL;
        }
    } else if (rc == 0) {
        c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        freeaddrinfo(ai);
        grpc_client_free(c);
        rh_diag_fail(diag, RH_ENOMEM, "gRPC client: out of memory");
        return NULL;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                   {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    rc = bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc < 0) {
        grpc_client_free(c);
        rh_diag_fail(diag, RH_EIO, "%s: connect failed", host);
        return NULL;
    }
    flush(c); /* the preface and SETTINGS wait in the output buffer until connected */
    return c;
}

bool grpc_client_alive(const grpc_client_t *c) { return c && !c->dead; }

unsigned grpc_client_calls(const grpc_client_t *c) { return c ? c->ncalls : 0; }

#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE}

grpc_ccall_t *grpc_client_call(grpc_client_t *c, const char *path, const uint8_t *req, size_t len,
                               const char *bearer, unsigned timeout_ms, grpc_reply_fn on_reply,
                               grpc_done_fn on_done, void *arg)
{
    if (!c || c->dead || !c->h2 || len > UINT32_MAX - GRPC_FRAME_HDR)
        return NULL;
    grpc_ccall_t *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->req = malloc(GRPC_FRAME_HDR + len);
    if (!k->req) {
        free(k);
        return NULL;
    }
    grpc_frame_header(k->req, (uint32_t)len);
    if (len)
        memcpy(k->req + GRPC_FRAME_HDR, req, len);
    k->req_len = GRPC_FRAME_HDR + len;
    k->c = c;
    k->on_reply = on_reply;
    k->on_done = on_done;
    k->arg = arg;
    k->local_status = -1;
    grpc_deframer_init(&k->in, c->max_msg, on_msg, k);
    char auth[2200], tmo[16];
    nghttp2_nv nv[9] = {NV(":method", "POST"), NV(":scheme", c->ssl ? "https" : "http"), NV(":path", path),
                        NV(":authority", c->authority), NV("content-type", "application/grpc"),
                        NV("te", "trailers"),
                        NV("user-agent", "roamns-pba grpc-c/nghttp2")};
    size_t nnv = 7;
    if (bearer) {
        snprintf(auth, sizeof auth, "Bearer %s", bearer);
        nv[nnv++] = (nghttp2_nv)NV("authorization", auth);
    }
    if (timeout_ms) {
        snprintf(tmo, sizeof tmo, "%um", timeout_ms);
        nv[nnv++] = (nghttp2_nv)NV("grpc-timeout", tmo);
    }
    nghttp2_data_provider dp = {.source = {.ptr = k}, .read_callback = read_req};
    int32_t id = nghttp2_submit_request(c->h2, NULL, nv, nnv, &dp, k);
    memset(auth, 0, sizeof auth);
    if (id < 0) {
        grpc_deframer_fini(&k->in);
        free(k->req);
        free(k);
        return NULL;
    }
    k->stream_id = id;
    RH_DLIST_PUSH(c->calls, k);
    c->ncalls++;
    if (timeout_ms) {
        k->deadline = evtimer_new(c->base, on_deadline, k);
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        if (k->deadline)
            evtimer_add(k->deadline, &tv);
    }
    flush(c);
    return k;
}

void grpc_client_cancel(grpc_ccall_t *k)
{
    if (!k)
        return;
    grpc_client_t *c = k->c;
    k->cancelled = true;
    if (k->deadline)
        evtimer_del(k->deadline);
    if (c->dead || !c->h2)
        return; /* freed with the connection */
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, k->stream_id, NGHTTP2_CANCEL);
    flush(c);
}

void grpc_client_free(grpc_client_t *c)
{
    if (!c)
        return;
    while (c->calls) {
        grpc_ccall_t *k = c->calls;
        k->cancelled = true;
        call_free(k);
    }
    if (c->h2)
        nghttp2_session_del(c->h2);
    if (c->bev)
        bufferevent_free(c->bev); /* frees the SSL too */
    SSL_CTX_free(c->tls);
    free(c);
}
