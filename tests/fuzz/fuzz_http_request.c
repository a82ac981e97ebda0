/*
 * fuzz_http_request.c — libFuzzer target over the HTTP/1.1 server's request handling
 * (broker/http_server.c: http_parser callbacks, header buffer, duplicate-header refusal, query
 * split, body limits, keep-alive/pipelining, error replies). The input is the raw byte stream a
 * client sends on one connection; it is written into one end of a socketpair whose other end the
 * server adopts (hs_server_adopt), so nothing touches the network. The handler checks what the
 * server hands it (method, path, query, headers, body within the limits, NUL-terminated) and
 * answers at once, so pipelined requests are served too. Every response must start with an HTTP
 * status line.
 */
#include "http_server.h"

#include "rh_log.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY 4096
#define MAX_HEADER 2048

static struct event_base *base;
static hs_server_t *srv;
static unsigned served;

static void handler(hs_req_t *r, void *arg)
{
    (void)arg;
    const char *m = hs_req_method(r), *path = hs_req_path(r), *q = hs_req_query(r);
    if (!m || !m[0] || !path || !q)
        abort();
    if (strlen(path) > MAX_HEADER || strlen(q) > MAX_HEADER)
        abort();
    size_t len;
    const char *body = hs_req_body(r, &len);
    if (!body || len > MAX_BODY || body[len] != '\0')
        abort();
    const char *auth = hs_req_header(r, "authorization");
    if (auth && strlen(auth) > MAX_HEADER)
        abort();
    served++;
    hs_reply(r, 200, "text/plain", "ok", 2);
}

static void init(void)
{
    rh_log_set_level_name("err");
    base = event_base_new();
    hs_opts_t o = {
        .bind_addr = "127.0.0.1", .port = 0, .listen_fd = -1, .handler = handler,
        .max_header_bytes = MAX_HEADER, .max_body_bytes = MAX_BODY, .max_connections = 4,
    };
    srv = hs_server_new(base, &o);
    if (!base || !srv)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        init();
    if (size > 65536)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        abort();
    struct sockaddr_in lo;
    memset(&lo, 0, sizeof lo);
    lo.sin_family = AF_INET;
    lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    evutil_make_socket_nonblocking(sv[0]);
    hs_server_adopt(srv, sv[0], (struct sockaddr *)&lo);
    evutil_make_socket_nonblocking(sv[1]);
    size_t off = 0;
    char resp[8192];
    size_t got = 0;
    int first = 1;
    for (int spins = 0; spins < 10000; spins++) {
        if (off < size) {
            ssize_t w = write(sv[1], data + off, size - off);
            if (w > 0)
                off += (size_t)w;
        } else if (off == size) {
            shutdown(sv[1], SHUT_WR); /* end of the client's stream */
            off++;
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n;
        while ((n = read(sv[1], resp, sizeof resp)) > 0) {
            if (first && (size_t)n >= 5 && memcmp(resp, "HTTP/", 5) != 0)
                abort();
            first = 0;
            got += (size_t)n;
        }
        if (off > size && hs_server_connections(srv) == 0)
            break;
    }
    if (hs_server_connections(srv) != 0)
        abort(); /* the connection must end with the client's stream */
    close(sv[1]);
    (void)got;
    return 0;
}
