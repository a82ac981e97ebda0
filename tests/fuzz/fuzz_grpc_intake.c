/*
 * fuzz_grpc_intake.c — libFuzzer target for the gRPC listener's intake (issue 12): raw client
 * bytes -> nghttp2's server session -> broker/grpc_server.c (request validation, the method table,
 * message deframing, deadlines, replies and trailers, connection timers and caps).
 *
 * The bytes go through a socketpair adopted by a server that has no listener. Methods:
 *   /t.S/Unary   echoes the request message and finishes OK;
 *   /t.S/Stream  answers three messages, then finishes with a status whose message needs
 *                percent-encoding;
 *   /t.S/Hold    keeps the call (a subscriber's stream) until it is cancelled.
 * Checked after every input, besides the sanitizers: once the client closed, the connection is
 * gone and every held call was cancelled (no call outlives its connection).
 * Seeds: tests/fuzz/make_grpc_corpus.py (hand-encoded HTTP/2 frames, HPACK literals).
 */
#include "grpc_server.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct event_base *base;
static grpc_server_t *srv;
static int held; /* calls kept by /t.S/Hold and not yet cancelled */

static void die(const char *why)
{
    fprintf(stderr, "fuzz_grpc_intake: %s\n", why);
    abort();
}

static void unary(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    grpc_call_send(call, msg, len);
    grpc_call_finish(call, GRPC_OK, NULL);
}

static void stream(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    for (int i = 0; i < 3; i++)
        grpc_call_send(call, msg, len);
    grpc_call_finish(call, GRPC_PERMISSION_DENIED, "forwarder 000014/tenant-a: not yours \xc3\xa9 100%");
}

static void hold(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    held++;
}

static void hold_cancel(grpc_call_t *call, void *arg)
{
    held--;
}

static const grpc_method_t methods[] = {
    {"/t.S/Unary", unary, NULL},
    {"/t.S/Stream", stream, NULL},
    {"/t.S/Hold", hold, hold_cancel},
};

static void cleanup(void)
{
    grpc_server_free(srv);
    event_base_free(base);
}

static void init(void)
{
    base = event_base_new();
    if (!base)
        die("event base");
    grpc_opts_t o = {.max_msg_bytes = 4096, .max_header_bytes = 2048, .methods = methods,
                     .n_methods = sizeof methods / sizeof methods[0]};
    rh_diag_t d;
    srv = grpc_server_new(base, &o, &d);
    if (!srv)
        die(d.text);
    atexit(cleanup);
}

static void drain(int fd)
{
    char sink[4096];
    while (read(fd, sink, sizeof sink) > 0)
        ;
}

static void run_loop(int rounds)
{
    for (int i = 0; i < rounds; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        init();
    if (size > 100000)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        die("socketpair");
    int bufsz = 1 << 18;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof bufsz);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    grpc_server_adopt(srv, sv[0]);
    size_t off = 0;
    for (int i = 0; i < 64 && off < size; i++) {
        ssize_t k = write(sv[1], data + off, size - off);
        if (k > 0)
            off += (size_t)k;
        run_loop(2);
        drain(sv[1]);
    }
    run_loop(4);
    drain(sv[1]);
    close(sv[1]);
    run_loop(8);
    if (grpc_server_connections(srv) != 0)
        die("invariant: a connection outlived its client");
    if (held != 0)
        die("invariant: a held call was not cancelled with its connection");
    return 0;
}
