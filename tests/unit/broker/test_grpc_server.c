/*
 * test_grpc_server.c — the gRPC server (broker/grpc_server.c) end to end over a socketpair,
 * against an HTTP/2 client built from nghttp2's client session in this file (the server's code
 * is not reused): replies and trailers, trailers-only refusals with percent-encoded
 * grpc-message, grpc-timeout deadlines, the message cap, unknown methods, cancellation on
 * RST_STREAM and on connection loss, and the per-call output cap for a subscriber that never
 * opens its flow-control window.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "grpc_server.h"

/* ---- server side: test methods ---- */

static int cancelled, held, flood_eagain;
static size_t flood_queued;
static grpc_call_t *last_held;

static void m_echo(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    assert_int_equal(grpc_call_send(call, msg, len), RH_OK);
    grpc_call_finish(call, GRPC_OK, NULL);
}

static void m_deny(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    grpc_call_finish(call, GRPC_PERMISSION_DENIED, "\xc3\xa9 100%");
}

static void m_hold(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    held++;
    last_held = call;
}

static void m_flood(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    static uint8_t chunk[65536];
    held++;
    for (int i = 0; i < 64; i++) {
        int rc = grpc_call_send(call, chunk, sizeof chunk);
        if (rc == RH_EAGAIN) {
            flood_eagain = 1;
            break;
        }
        assert_int_equal(rc, RH_OK);
    }
    flood_queued = grpc_call_queued_bytes(call);
}

static void m_cancel(grpc_call_t *call, void *arg)
{
    cancelled++;
    held--;
}

static const grpc_method_t methods[] = {
    {"/t.S/Echo", m_echo, NULL},
    {"/t.S/Deny", m_deny, NULL},
    {"/t.S/Hold", m_hold, m_cancel},
    {"/t.S/Flood", m_flood, m_cancel},
};

/* ---- client side: nghttp2 client session over the socketpair ---- */

typedef struct cstream {
    int32_t id;
    char status[8], grpc_status[8], grpc_message[256], content_type[64];
    uint8_t body[1 << 16];
    size_t body_len;
    bool closed, data_seen;
    unsigned header_blocks;
} cstream_t;

typedef struct client {
    struct event_base *base;
    grpc_server_t *srv;
    int fd;
    nghttp2_session *h2;
    cstream_t s[4];
} client_t;

static cstream_t *cs_of(client_t *c, int32_t id)
{
    for (int i = 0; i < 4; i++)
        if (c->s[i].id == id)
            return &c->s[i];
    return NULL;
}

static ssize_t c_send(nghttp2_session *h2, const uint8_t *data, size_t len, int flags, void *u)
{
    client_t *c = u;
    ssize_t k = write(c->fd, data, len);
    return k < 0 ? NGHTTP2_ERR_WOULDBLOCK : k;
}

static int c_header(nghttp2_session *h2, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                    const uint8_t *value, size_t vl, uint8_t flags, void *u)
{
    cstream_t *s = cs_of(u, f->hd.stream_id);
    if (!s)
        return 0;
#define KEEP(field, key)                                                                           \
    if (nl == strlen(key) && memcmp(name, key, nl) == 0 && vl < sizeof s->field) {                 \
        memcpy(s->field, value, vl);                                                               \
        s->field[vl] = 0;                                                                          \
    }
    KEEP(status, ":status")
    KEEP(grpc_status, "grpc-status")
    KEEP(grpc_message, "grpc-message")
    KEEP(content_type, "content-type")
#undef KEEP
    return 0;
}

static int c_frame(nghttp2_session *h2, const nghttp2_frame *f, void *u)
{
    cstream_t *s = cs_of(u, f->hd.stream_id);
    if (s && f->hd.type == NGHTTP2_HEADERS)
        s->header_blocks++;
    return 0;
}

static int c_data(nghttp2_session *h2, uint8_t flags, int32_t id, const uint8_t *d, size_t n,
                  void *u)
{
    cstream_t *s = cs_of(u, id);
    if (s) {
        s->data_seen = true;
        if (s->body_len + n <= sizeof s->body) {
            memcpy(s->body + s->body_len, d, n);
            s->body_len += n;
        }
    }
    return 0;
}

static int c_close(nghttp2_session *h2, int32_t id, uint32_t err, void *u)
{
    cstream_t *s = cs_of(u, id);
    if (s)
        s->closed = true;
    return 0;
}

/* One round: client output -> socket, server loop, socket -> client input. */
static void pump(client_t *c, bool client_reads)
{
    nghttp2_session_send(c->h2);
    event_base_loop(c->base, EVLOOP_NONBLOCK);
    if (!client_reads)
        return;
    uint8_t buf[16384];
    ssize_t k;
    while ((k = read(c->fd, buf, sizeof buf)) > 0)
        assert_true(nghttp2_session_mem_recv(c->h2, buf, (size_t)k) >= 0);
}

static void pump_until(client_t *c, bool *flag, unsigned ms)
{
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        pump(c, true);
        if (flag && *flag)
            return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > (long)ms)
            return;
        usleep(1000);
    }
}

static int setup(void **state)
{
    client_t *c = calloc(1, sizeof *c);
    c->base = event_base_new();
    grpc_opts_t o = {.max_msg_bytes = 4096, .handshake_timeout_ms = 300, .methods = methods,
                     .n_methods = 4};
    rh_diag_t d;
    c->srv = grpc_server_new(c->base, &o, &d);
    assert_non_null(c->srv);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    grpc_server_adopt(c->srv, sv[0]);
    c->fd = sv[1];
    nghttp2_session_callbacks *cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(cb, c_send);
    nghttp2_session_callbacks_set_on_header_callback(cb, c_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, c_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, c_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, c_close);
    assert_int_equal(nghttp2_session_client_new(&c->h2, cb, c), 0);
    nghttp2_session_callbacks_del(cb);
    cancelled = held = flood_eagain = 0;
    flood_queued = 0;
    last_held = NULL;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    client_t *c = *state;
    nghttp2_session_del(c->h2);
    close(c->fd);
    for (int i = 0; i < 8; i++)
        event_base_loop(c->base, EVLOOP_NONBLOCK);
    assert_int_equal(grpc_server_connections(c->srv), 0);
    assert_int_equal(held, 0); /* every held call was cancelled with its connection */
    grpc_server_free(c->srv);
    event_base_free(c->base);
    free(c);
    return 0;
}

typedef struct body {
    const uint8_t *p;
    size_t n, off;
} body_t;

static ssize_t body_read(nghttp2_session *h2, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *u)
{
    body_t *b = src->ptr;
    size_t k = b->n - b->off < len ? b->n - b->off : len;
    memcpy(buf, b->p + b->off, k);
    b->off += k;
    if (b->off == b->n)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

/* Starts a call with one framed message (payload of n bytes); returns its stream record. */
static cstream_t *call(client_t *c, int slot, const char *path, const char *timeout,
                       const uint8_t *payload, size_t n, body_t *b)
{
    static uint8_t framed[8192];
    assert_true(n + 5 <= sizeof framed);
    framed[0] = 0;
    framed[1] = (uint8_t)(n >> 24);
    framed[2] = (uint8_t)(n >> 16);
    framed[3] = (uint8_t)(n >> 8);
    framed[4] = (uint8_t)n;
    memcpy(framed + 5, payload, n);
    *b = (body_t){framed, n + 5, 0};
#define NV(k, v) {(uint8_t *)(uintptr_t)(k), (uint8_t *)(uintptr_t)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv h[7] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", path),
                       NV(":authority", "hub"), NV("content-type", "application/grpc"),
                       NV("te", "trailers"), NV("grpc-timeout", timeout ? timeout : "")};
#undef NV
    nghttp2_data_provider dp = {.source.ptr = b, .read_callback = body_read};
    int32_t id = nghttp2_submit_request(c->h2, NULL, h, timeout ? 7 : 6, &dp, NULL);
    assert_true(id > 0);
    memset(&c->s[slot], 0, sizeof c->s[slot]);
    c->s[slot].id = id;
    return &c->s[slot];
}

static void test_echo(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    body_t b;
    cstream_t *s = call(c, 0, "/t.S/Echo", NULL, (const uint8_t *)"hello", 5, &b);
    pump_until(c, &s->closed, 2000);
    assert_true(s->closed);
    assert_string_equal(s->status, "200");
    assert_string_equal(s->content_type, "application/grpc");
    assert_string_equal(s->grpc_status, "0");
    assert_int_equal(s->header_blocks, 2); /* response headers, then trailers */
    assert_int_equal(s->body_len, 10);
    assert_memory_equal(s->body, "\0\0\0\0\x05hello", 10);
}

static void test_trailers_only_percent_encoded(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    body_t b;
    cstream_t *s = call(c, 0, "/t.S/Deny", NULL, (const uint8_t *)"x", 1, &b);
    pump_until(c, &s->closed, 2000);
    assert_true(s->closed);
    assert_string_equal(s->grpc_status, "7");
    assert_string_equal(s->grpc_message, "%C3%A9 100%25");
    assert_int_equal(s->header_blocks, 1); /* trailers-only */
    assert_false(s->data_seen);
}

static void test_unknown_method(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    body_t b;
    cstream_t *s = call(c, 0, "/org.packetbroker.iam.v1.NetworkRegistry/GetNetwork", NULL,
                        (const uint8_t *)"", 0, &b);
    pump_until(c, &s->closed, 2000);
    assert_string_equal(s->grpc_status, "12");
    assert_string_equal(s->grpc_message,
                        "unknown method /org.packetbroker.iam.v1.NetworkRegistry/GetNetwork");
}

static void test_message_cap(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    static uint8_t big[5000];
    body_t b;
    cstream_t *s = call(c, 0, "/t.S/Hold", NULL, big, sizeof big, &b);
    pump_until(c, &s->closed, 2000);
    assert_string_equal(s->grpc_status, "8"); /* RESOURCE_EXHAUSTED */
    assert_non_null(strstr(s->grpc_message, "5000 bytes, at most 4096"));
    assert_int_equal(held, 0); /* the handler never saw it */
}

static void test_deadline(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    body_t b;
    cstream_t *s = call(c, 0, "/t.S/Hold", "50m", (const uint8_t *)"x", 1, &b);
    pump_until(c, NULL, 20);
    assert_int_equal(held, 1);
    assert_true(grpc_call_remaining_ms(last_held) <= 50);
    pump_until(c, &s->closed, 2000);
    assert_true(s->closed);
    assert_string_equal(s->grpc_status, "4"); /* DEADLINE_EXCEEDED */
    assert_int_equal(cancelled, 1);
    assert_int_equal(held, 0);
}

/* A stream that opens and never sends its request does not hold its slot forever. */
static void test_request_must_arrive_in_time(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
#define NV(k, v) {(uint8_t *)(uintptr_t)(k), (uint8_t *)(uintptr_t)(v), strlen(k), strlen(v), 0}
    nghttp2_nv h[6] = {NV(":method", "POST"), NV(":scheme", "http"), NV(":path", "/t.S/Hold"),
                       NV(":authority", "hub"), NV("content-type", "application/grpc"),
                       NV("te", "trailers")};
#undef NV
    /* HEADERS without END_STREAM and no DATA provider: nghttp2 sends no body */
    int32_t id = nghttp2_submit_headers(c->h2, NGHTTP2_FLAG_NONE, -1, NULL, h, 6, NULL);
    assert_true(id > 0);
    memset(&c->s[0], 0, sizeof c->s[0]);
    c->s[0].id = id;
    pump_until(c, NULL, 100);
    assert_false(c->s[0].closed);
    pump_until(c, &c->s[0].closed, 2000);
    assert_true(c->s[0].closed);
    assert_string_equal(c->s[0].grpc_status, "4");
    assert_string_equal(c->s[0].grpc_message, "request: not complete in time");
    assert_int_equal(held, 0); /* the handler never ran */
}

static void test_rst_stream_cancels(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    body_t b;
    cstream_t *s = call(c, 0, "/t.S/Hold", NULL, (const uint8_t *)"x", 1, &b);
    pump_until(c, NULL, 20);
    assert_int_equal(held, 1);
    assert_int_equal(grpc_call_remaining_ms(last_held), UINT64_MAX);
    nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
    pump_until(c, NULL, 20);
    assert_int_equal(cancelled, 1);
    assert_int_equal(held, 0);
}

/* A subscriber that never opens its window: the server stops at the per-call cap. */
static void test_slow_subscriber_is_capped(void **state)
{
    client_t *c = *state;
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &iv, 1);
    body_t b;
    call(c, 0, "/t.S/Flood", NULL, (const uint8_t *)"x", 1, &b);
    pump_until(c, NULL, 50);
    assert_int_equal(held, 1);
    assert_true(flood_eagain);
    assert_true(flood_queued <= (1u << 20));
    assert_true(flood_queued >= (1u << 20) - 65536 - 10);
    /* the connection going away cancels it (checked in teardown) */
}

static void test_held_calls_cancelled_when_connection_dies(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    body_t b1, b2;
    call(c, 0, "/t.S/Hold", NULL, (const uint8_t *)"x", 1, &b1);
    call(c, 1, "/t.S/Hold", NULL, (const uint8_t *)"y", 1, &b2);
    pump_until(c, NULL, 20);
    assert_int_equal(held, 2);
    close(c->fd);
    c->fd = -1;
    for (int i = 0; i < 8; i++)
        event_base_loop(c->base, EVLOOP_NONBLOCK);
    assert_int_equal(cancelled, 2);
    assert_int_equal(grpc_server_connections(c->srv), 0);
}

static void test_shutdown_ends_calls_unavailable(void **state)
{
    client_t *c = *state;
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, NULL, 0);
    body_t b;
    cstream_t *s = call(c, 0, "/t.S/Hold", NULL, (const uint8_t *)"x", 1, &b);
    pump_until(c, NULL, 20);
    assert_int_equal(held, 1);
    grpc_server_shutdown(c->srv);
    pump_until(c, &s->closed, 2000);
    assert_string_equal(s->grpc_status, "14"); /* UNAVAILABLE */
    assert_int_equal(cancelled, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailers_only_percent_encoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_must_arrive_in_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rst_stream_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_subscriber_is_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_held_calls_cancelled_when_connection_dies, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_ends_calls_unavailable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
