/* http.c — roamctl's HTTP(S) client: one request at a time on libevent's evhttp client (a CLI,
 * not a hot path), TLS through bufferevent_openssl with peer verification, gzip responses
 * inflated with zlib. */
#include "roamctl.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

typedef struct ctx {
    rc_resp_t *out;
    int done;
    rc_stream_fn stream;      /* streamed responses: called per received piece */
    void *stream_arg;
} ctx_t;

/* Streamed (chunked) responses: hands each received piece to the caller and keeps nothing. */
static void chunk_cb(struct evhttp_request *req, void *arg)
{
    ctx_t *c = arg;
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    if (evhttp_request_get_response_code(req) != 200)
        return; /* an error answer is read whole by done_cb */
    size_t n;
    while ((n = evbuffer_get_length(b)) > 0) {
        char piece[4096];
        int got = evbuffer_remove(b, piece, n < sizeof piece ? n : sizeof piece);
        if (got <= 0)
            break;
        c->stream(piece, (size_t)got, c->stream_arg);
    }
}

static void done_cb(struct evhttp_request *req, void *arg)
{
    ctx_t *c = arg;
    c->done = 1;
    if (!req || evhttp_request_get_response_code(req) == 0) {
        c->out->status = 0;
        return;
    }
    c->out->status = evhttp_request_get_response_code(req);
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *ct = evhttp_find_header(h, "Content-Type");
    const char *ce = evhttp_find_header(h, "Content-Encoding");
    snprintf(c->out->content_type, sizeof c->out->content_type, "%s", ct ? ct : "");
    const char *np = evhttp_find_header(h, "X-Next-Page-Token");
    snprintf(c->out->next_page_token, sizeof c->out->next_page_token, "%s", np ? np : "");
    c->out->gzip = ce && !strcasecmp(ce, "gzip");
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(b);
    c->out->body = malloc(n + 1);
    if (c->out->body) {
        evbuffer_remove(b, c->out->body, n);
        c->out->body[n] = '\0';
        c->out->len = n;
    }
}

int rc_gunzip(const char *in, size_t len, char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return -1;
    size_t cap = len * 4 + 1024, n = 0;
    char *buf = malloc(cap);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int zr = Z_OK;
    while (buf && zr != Z_STREAM_END) {
        if (n + 1 >= cap) {
            if (cap > (256u << 20))
                break;
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        z.next_out = (Bytef *)buf + n;
        z.avail_out = (uInt)(cap - n - 1);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - 1 - z.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END)
            break;
    }
    inflateEnd(&z);
    if (!buf || zr != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

struct evhttp_uri *rc_url_parse(const char *url, char *err, size_t errcap)
{
    if (!url || !*url) {
        snprintf(err, errcap, "server URL: empty (expected http://HOST:PORT or HOST:PORT)");
        return NULL;
    }
    /* "host:port" and "host" mean http://host:port: evhttp would read "127.0.0.1:4271" as a
     * scheme "127.0.0.1" and fail to find a host. */
    char buf[1100];
    const char *text = url;
    if (!strstr(url, "://")) {
        if (strlen(url) + 8 > sizeof buf) {
            snprintf(err, errcap, "server URL: too long");
            return NULL;
        }
        snprintf(buf, sizeof buf, "http://%s", url);
        text = buf;
    }
    struct evhttp_uri *u = evhttp_uri_parse(text);
    if (!u || !evhttp_uri_get_host(u) || !evhttp_uri_get_host(u)[0] || !evhttp_uri_get_scheme(u)) {
        snprintf(err, errcap, "server URL %.200s: expected http://HOST[:PORT] or HOST:PORT", url);
        if (u) /* evhttp_uri_free(NULL) dereferences its argument */
            evhttp_uri_free(u);
        return NULL;
    }
    const char *scheme = evhttp_uri_get_scheme(u);
    if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) {
        snprintf(err, errcap, "server URL: http:// or https:// only");
        evhttp_uri_free(u);
        return NULL;
    }
    return u;
}

static int http_do(const rc_conf_t *cf, const char *method, const char *path, const char *ctype,
                   const char *body, size_t len, const char *authorization, int raw_gzip,
                   const char *accept, rc_stream_fn stream, void *stream_arg, rc_resp_t *out)
{
    memset(out, 0, sizeof *out);
    struct evhttp_uri *u = rc_url_parse(cf->url, out->error, sizeof out->error);
    if (!u)
        return -1;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    int https = !strcasecmp(scheme, "https");
    int port = evhttp_uri_get_port(u);
    if (port < 0)
        port = https ? 443 : 80;
    const char *prefix = evhttp_uri_get_path(u);
    struct event_base *base = event_base_new();
    SSL_CTX *sctx = NULL;
    SSL *ssl = NULL;
    struct bufferevent *bev = NULL;
    int rc = -1;
    if (https) {
        sctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(sctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER, NULL);
        if (cf->ca_file ? SSL_CTX_load_verify_locations(sctx, cf->ca_file, NULL) != 1
                        : SSL_CTX_set_default_verify_paths(sctx) != 1) {
            snprintf(out->error, sizeof out->error, "cannot load CA file %s",
                     cf->ca_file ? cf->ca_file : "(system)");
            goto done;
        }
        ssl = SSL_new(sctx);
        SSL_set_tlsext_host_name(ssl, host);
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (!X509_VERIFY_PARAM_set1_ip_asc(vp, host))
            SSL_set1_host(ssl, host);
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    struct evhttp_connection *conn =
        evhttp_connection_base_bufferevent_new(base, NULL, bev, host, (unsigned short)port);
    if (!conn) {
        snprintf(out->error, sizeof out->error, "out of memory");
        goto done;
    }
    /* a stream is silent between events: the hub sends a keep-alive at least every 15 s */
    evhttp_connection_set_timeout(conn, stream && cf->timeout_s < 60 ? 60 : cf->timeout_s);
    evhttp_connection_set_retries(conn, 0);
    ctx_t c = {out, 0, stream, stream_arg};
    struct evhttp_request *req = evhttp_request_new(done_cb, &c);
    if (stream)
        evhttp_request_set_chunked_cb(req, chunk_cb);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Accept", accept ? accept : "application/json");
    evhttp_add_header(h, "Accept-Encoding", raw_gzip ? "identity" : "gzip");
    evhttp_add_header(h, "Connection", "close");
    if (authorization)
        evhttp_add_header(h, "Authorization", authorization);
    if (body) {
        evhttp_add_header(h, "Content-Type", ctype ? ctype : "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    }
    char full[4096];
    snprintf(full, sizeof full, "%s%s", prefix && strcmp(prefix, "/") ? prefix : "", path);
    enum evhttp_cmd_type cmd = !strcmp(method, "GET")    ? EVHTTP_REQ_GET
                               : !strcmp(method, "POST") ? EVHTTP_REQ_POST
                               : !strcmp(method, "PUT")  ? EVHTTP_REQ_PUT
                                                         : EVHTTP_REQ_DELETE;
    if (evhttp_make_request(conn, req, cmd, full) != 0) {
        snprintf(out->error, sizeof out->error, "cannot send the request");
        evhttp_connection_free(conn);
        goto done;
    }
    while (!c.done && event_base_loop(base, EVLOOP_ONCE) == 0)
        ;
    evhttp_connection_free(conn);
    bev = NULL; /* freed with the connection */
    if (out->status == 0) {
        unsigned long e = ERR_get_error();
        snprintf(out->error, sizeof out->error, "cannot reach %s%s%s", cf->url,
                 e ? ": " : "", e ? ERR_reason_error_string(e) : "");
        goto done;
    }
    if (out->gzip && !raw_gzip) {
        char *plain;
        size_t pl;
        if (rc_gunzip(out->body, out->len, &plain, &pl) != 0) {
            snprintf(out->error, sizeof out->error, "server sent a corrupt gzip body");
            out->status = 0;
            goto done;
        }
        free(out->body);
        out->body = plain;
        out->len = pl;
        out->gzip = 0;
    }
    rc = 0;
done:
    if (bev)
        bufferevent_free(bev);
    SSL_CTX_free(sctx); /* the SSL object went with the bufferevent */
    event_base_free(base);
    evhttp_uri_free(u);
    return rc;
}

int rc_http(const rc_conf_t *cf, const char *method, const char *path, const char *ctype,
            const char *body, size_t len, const char *authorization, int raw_gzip, rc_resp_t *out)
{
    return http_do(cf, method, path, ctype, body, len, authorization, raw_gzip, NULL, NULL, NULL,
                   out);
}

int rc_http_stream(const rc_conf_t *cf, const char *path, const char *authorization,
                   const char *accept, rc_stream_fn fn, void *arg, rc_resp_t *out)
{
    return http_do(cf, "GET", path, NULL, NULL, 0, authorization, 1, accept, fn, arg, out);
}

void rc_resp_free(rc_resp_t *r)
{
    free(r->body);
    r->body = NULL;
}
