/* Unit tests for tools/common/grpc_client (roamns's gRPC client for Packet Broker mode) against
 * the hub's own server (broker/grpc_server) on 127.0.0.1, both on one event_base: request headers
 * as grpc-go sends them, unary and server-streaming replies, status and percent-decoded
 * grpc-message from trailers (and trailers-only refusals), UNIMPLEMENTED paths, deadlines, cancel,
 * a refused connection, the server going away under an open call; TLS with ALPN h2 (a server
 * certificate made here), an untrusted certificate and a server that selects no ALPN refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include "grpc_client.h"
#include "grpc_server.h"
#include "rh_test.h"
#include "rh_time.h"

typedef struct seen {
    char auth[128], te[32], ctype[64], timeout[32];
    int cancels;
    grpc_call_t *hanging;
} seen_t;

static void keep(seen_t *s, grpc_call_t *call)
{
    const char *v;
    snprintf(s->auth, sizeof s->auth, "%s", (v = grpc_call_header(call, "authorization")) ? v : "");
    snprintf(s->te, sizeof s->te, "%s", (v = grpc_call_header(call, "te")) ? v : "");
    snprintf(s->ctype, sizeof s->ctype, "%s", (v = grpc_call_header(call, "content-type")) ? v : "");
    snprintf(s->timeout, sizeof s->timeout, "%s", (v = grpc_call_header(call, "grpc-timeout")) ? v : "");
}

static void echo(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    keep(arg, call);
    grpc_call_send(call, msg, len);
    grpc_call_finish(call, GRPC_OK, NULL);
}

static void stream(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len;
    keep(arg, call);
    grpc_call_send(call, (const uint8_t *)"a", 1);
    grpc_call_send(call, (const uint8_t *)"bb", 2);
    grpc_call_send(call, (const uint8_t *)"", 0);
    grpc_call_finish(call, GRPC_OK, NULL);
}

static void refuse(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len;
    (void)arg;
    grpc_call_finish(call, GRPC_PERMISSION_DENIED, "forwarder_net_id: 100% not covered \xc3\xa9");
}

static void hang(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len;
    seen_t *s = arg;
    keep(s, call);
    s->hanging = call;
    grpc_call_send(call, (const uint8_t *)"first", 5);
}

static void hang_cancel(grpc_call_t *call, void *arg)
{
    seen_t *s = arg;
    (void)call;
    s->cancels++;
    s->hanging = NULL;
}

static const grpc_method_t methods[] = {
    {"/t.S/Echo", echo, NULL},
    {"/t.S/Stream", stream, NULL},
    {"/t.S/Refuse", refuse, NULL},
    {"/t.S/Hang", hang, hang_cancel},
};

typedef struct result {
    int done, status;
    char msg[256];
    size_t nreplies;
    uint8_t replies[8][16];
    size_t lens[8];
} result_t;

static void on_reply(void *arg, const uint8_t *msg, size_t len)
{
    result_t *r = arg;
    if (r->nreplies < 8 && len <= 16) {
        memcpy(r->replies[r->nreplies], msg, len);
        r->lens[r->nreplies] = len;
    }
    r->nreplies++;
}

static void on_done(void *arg, int status, const char *msg)
{
    result_t *r = arg;
    r->done++;
    r->status = status;
    snprintf(r->msg, sizeof r->msg, "%s", msg);
}

typedef struct fx {
    struct event_base *base;
    grpc_server_t *srv;
    seen_t seen;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    grpc_opts_t o = {.bind_addr = "127.0.0.1", .methods = methods,
                     .n_methods = sizeof methods / sizeof methods[0], .arg = &f->seen};
    rh_diag_t d;
    f->srv = grpc_server_new(f->base, &o, &d);
    assert_non_null(f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    grpc_server_free(f->srv);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Runs the loop until *flag >= want or 5 s passed. */
static void run_until(fx_t *f, const int *flag, int want)
{
    uint64_t end = rh_mono_ms() + 5000;
    while (*flag < want && rh_mono_ms() < end)
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
}

static grpc_client_t *connect_fx(fx_t *f)
{
    rh_diag_t d;
    grpc_client_t *c = grpc_client_new(f->base, "127.0.0.1", grpc_server_port(f->srv), NULL, 0, &d);
    assert_non_null(c);
    return c;
}

static void test_unary_and_headers(void **state)
{
    fx_t *f = *state;
    grpc_client_t *c = connect_fx(f);
    result_t r = {0};
    const uint8_t req[] = {0x08, 0x13, 0x12, 0x03, 'e', 'u', '1'};
    assert_non_null(grpc_client_call(c, "/t.S/Echo", req, sizeof req, "tok.en", 3000, on_reply,
                                     on_done, &r));
    run_until(f, &r.done, 1);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.status, GRPC_OK);
    assert_int_equal(r.nreplies, 1);
    assert_int_equal(r.lens[0], sizeof req);
    assert_memory_equal(r.replies[0], req, sizeof req);
    assert_string_equal(f->seen.auth, "Bearer tok.en");
    assert_string_equal(f->seen.te, "trailers");
    assert_string_equal(f->seen.ctype, "application/grpc");
    assert_string_equal(f->seen.timeout, "3000m");
    assert_true(grpc_client_alive(c));
    assert_int_equal(grpc_client_calls(c), 0);
    grpc_client_free(c);
}

static void test_stream_refusal_unknown(void **state)
{
    fx_t *f = *state;
    grpc_client_t *c = connect_fx(f);
    result_t s = {0}, x = {0}, u = {0};
    assert_non_null(grpc_client_call(c, "/t.S/Stream", NULL, 0, NULL, 0, on_reply, on_done, &s));
    assert_non_null(grpc_client_call(c, "/t.S/Refuse", NULL, 0, "t", 0, on_reply, on_done, &x));
    assert_non_null(grpc_client_call(c, "/t.S/Nope", NULL, 0, "t", 0, on_reply, on_done, &u));
    run_until(f, &s.done, 1);
    run_until(f, &x.done, 1);
    run_until(f, &u.done, 1);
    assert_int_equal(s.status, GRPC_OK);
    assert_int_equal(s.nreplies, 3); /* an empty message is a message */
    assert_memory_equal(s.replies[1], "bb", 2);
    assert_int_equal(s.lens[2], 0);
    assert_string_equal(f->seen.auth, ""); /* no token: no authorization header */
    assert_string_equal(f->seen.timeout, "");
    assert_int_equal(x.status, GRPC_PERMISSION_DENIED);
    assert_string_equal(x.msg, "forwarder_net_id: 100% not covered \xc3\xa9"); /* decoded */
    assert_int_equal(x.nreplies, 0);
    assert_int_equal(u.status, GRPC_UNIMPLEMENTED);
    assert_non_null(strstr(u.msg, "/t.S/Nope"));
    assert_int_equal(s.done + x.done + u.done, 3); /* each exactly once */
    grpc_client_free(c);
}

static void test_deadline_and_cancel(void **state)
{
    fx_t *f = *state;
    grpc_client_t *c = connect_fx(f);
    result_t r = {0};
    uint64_t t0 = rh_mono_ms();
    assert_non_null(grpc_client_call(c, "/t.S/Hang", NULL, 0, "t", 200, on_reply, on_done, &r));
    run_until(f, &r.done, 1);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.status, GRPC_DEADLINE_EXCEEDED);
    assert_int_equal(r.nreplies, 1); /* the message sent before the deadline arrived */
    assert_true(rh_mono_ms() - t0 >= 190);
    run_until(f, &f->seen.cancels, 1); /* the server saw the stream end */
    assert_int_equal(f->seen.cancels, 1);
    /* cancel: no callback afterwards, the server's handler is told */
    result_t k = {0};
    grpc_ccall_t *call = grpc_client_call(c, "/t.S/Hang", NULL, 0, "t", 0, on_reply, on_done, &k);
    assert_non_null(call);
    run_until(f, (const int *)&k.nreplies, 1);
    assert_int_equal(k.nreplies, 1);
    grpc_client_cancel(call);
    run_until(f, &f->seen.cancels, 2);
    assert_int_equal(f->seen.cancels, 2);
    assert_int_equal(k.done, 0);
    assert_int_equal(grpc_client_calls(c), 0);
    assert_true(grpc_client_alive(c));
    grpc_client_free(c);
}

static void test_server_gone(void **state)
{
    fx_t *f = *state;
    grpc_client_t *c = connect_fx(f);
    result_t r = {0};
    assert_non_null(grpc_client_call(c, "/t.S/Hang", NULL, 0, "t", 0, on_reply, on_done, &r));
    run_until(f, (const int *)&r.nreplies, 1);
    grpc_server_free(f->srv); /* closes the connection under the open call */
    f->srv = NULL;
    run_until(f, &r.done, 1);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.status, GRPC_UNAVAILABLE);
    assert_false(grpc_client_alive(c));
    assert_null(grpc_client_call(c, "/t.S/Echo", NULL, 0, "t", 0, on_reply, on_done, &r));
    grpc_client_free(c);
    /* a refused connection: the call ends UNAVAILABLE */
    grpc_opts_t o = {.bind_addr = "127.0.0.1", .methods = methods, .n_methods = 1, .arg = &f->seen};
    rh_diag_t d;
    f->srv = grpc_server_new(f->base, &o, &d);
    uint16_t port = grpc_server_port(f->srv);
    grpc_server_free(f->srv);
    f->srv = NULL;
    c = grpc_client_new(f->base, "127.0.0.1", port, NULL, 0, &d);
    assert_non_null(c);
    result_t z = {0};
    assert_non_null(grpc_client_call(c, "/t.S/Echo", NULL, 0, "t", 0, on_reply, on_done, &z));
    run_until(f, &z.done, 1);
    assert_int_equal(z.status, GRPC_UNAVAILABLE);
    grpc_client_free(c);
}

/* ---- TLS: a self-signed P-256 certificate for IP 127.0.0.1 ---- */

typedef struct tls_fx {
    EVP_PKEY *key;
    X509 *cert;
    char ca_path[512];
    SSL_CTX *srv_ctx;
} tls_fx_t;

static tls_fx_t tlsfx;

static void make_cert(void)
{
    tlsfx.key = EVP_EC_gen("P-256");
    assert_non_null(tlsfx.key);
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, tlsfx.key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"hub", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, tlsfx.key, EVP_sha256()) > 0);
    tlsfx.cert = x;
    const char *tmp = getenv("TMPDIR");
    snprintf(tlsfx.ca_path, sizeof tlsfx.ca_path, "%s/rh-grpcc-ca-%d.pem", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    FILE *f = fopen(tlsfx.ca_path, "w");
    assert_non_null(f);
    PEM_write_X509(f, x);
    fclose(f);
}

static SSL_CTX *server_ctx(bool alpn)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_int_equal(SSL_CTX_use_certificate(ctx, tlsfx.cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, tlsfx.key), 1);
    return alpn ? grpc_server_tls_prepare(ctx) : ctx;
}

static SSL_CTX *tls_ctx_cb(void *arg)
{
    SSL_CTX *ctx = arg;
    SSL_CTX_up_ref(ctx);
    return ctx;
}

static void tls_call(fx_t *f, SSL_CTX *srv_ctx, SSL_CTX *cli_ctx, result_t *r)
{
    grpc_opts_t o = {.bind_addr = "127.0.0.1", .methods = methods,
                     .n_methods = sizeof methods / sizeof methods[0], .arg = &f->seen,
                     .tls_ctx = tls_ctx_cb, .tls_ctx_arg = srv_ctx};
    rh_diag_t d;
    grpc_server_free(f->srv);
    f->srv = grpc_server_new(f->base, &o, &d);
    assert_non_null(f->srv);
    grpc_client_t *c = grpc_client_new(f->base, "127.0.0.1", grpc_server_port(f->srv), cli_ctx, 0, &d);
    assert_non_null(c);
    const uint8_t req[] = {1, 2, 3};
    assert_non_null(grpc_client_call(c, "/t.S/Echo", req, sizeof req, "t", 3000, on_reply, on_done, r));
    run_until(f, &r->done, 1);
    assert_int_equal(r->done, 1);
    grpc_client_free(c);
}

static void test_tls(void **state)
{
    fx_t *f = *state;
    make_cert();
    rh_diag_t d;
    SSL_CTX *trusting = grpc_client_tls_ctx(tlsfx.ca_path, "tls_ca_file", &d);
    assert_non_null(trusting);
    /* TLS with ALPN h2, the certificate checked against 127.0.0.1 */
    SSL_CTX *srv = server_ctx(true);
    result_t r = {0};
    tls_call(f, srv, trusting, &r);
    assert_int_equal(r.status, GRPC_OK);
    assert_int_equal(r.nreplies, 1);
    assert_memory_equal(r.replies[0], "\x01\x02\x03", 3);
    assert_string_equal(f->seen.auth, "Bearer t");
    /* a certificate the client does not trust (system store only): refused */
    SSL_CTX *system = grpc_client_tls_ctx(NULL, "tls_ca_file", &d);
    assert_non_null(system);
    result_t u = {0};
    tls_call(f, srv, system, &u);
    assert_int_equal(u.status, GRPC_UNAVAILABLE);
    assert_true(strncmp(u.msg, "TLS: ", 5) == 0);
    /* a server that selects no ALPN protocol: refused, as grpc-go >= 1.67 does */
    SSL_CTX *no_alpn = server_ctx(false);
    result_t a = {0};
    tls_call(f, no_alpn, trusting, &a);
    assert_int_equal(a.status, GRPC_UNAVAILABLE);
    assert_non_null(strstr(a.msg, "ALPN h2"));
    /* a CA file that does not exist: the diagnostic names the setting */
    rh_diag_clear(&d);
    assert_null(grpc_client_tls_ctx("/nonexistent/ca.pem", "packet_broker.tls_ca_file", &d));
    assert_true(strncmp(d.text, "packet_broker.tls_ca_file: cannot load", 38) == 0);
    SSL_CTX_free(trusting);
    SSL_CTX_free(system);
    SSL_CTX_free(srv);
    SSL_CTX_free(no_alpn);
    unlink(tlsfx.ca_path);
    X509_free(tlsfx.cert);
    EVP_PKEY_free(tlsfx.key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_unary_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_refusal_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
