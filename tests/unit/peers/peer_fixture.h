/*
 * peer_fixture.h — test-only helpers for tests/unit/peers (header-only: each test_*.c is its own
 * executable). Generates a throwaway PKI with OpenSSL APIs into a mkdtemp directory (no private
 * keys committed), runs in-process evhttp servers (plain or TLS) on 127.0.0.1 port 0 in the
 * test's event_base, and drives the loop until a condition holds or a deadline passes.
 */
#ifndef PEER_FIXTURE_H
#define PEER_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define FX_UNUSED __attribute__((unused))

/* ---- PKI -------------------------------------------------------------------------------- */

typedef struct fx_pki {
    char dir[64];
    char ca[128], ca2[128];                 /* trusted CA, and an unrelated CA */
    char srv_cert[128], srv_key[128];       /* SAN DNS:localhost, IP:127.0.0.1 */
    char other_cert[128], other_key[128];   /* SAN DNS:other.example only */
    char cli_cert[128], cli_key[128];       /* CN=netA client,O=roamhub test */
    char cli2_cert[128], cli2_key[128];     /* signed by ca2 (untrusted by the server) */
} fx_pki_t;

static FX_UNUSED EVP_PKEY *fx_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static FX_UNUSED void fx_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* Makes a certificate for `key` named by (cn, o), signed by (issuer, ikey) or self-signed. */
static FX_UNUSED X509 *fx_cert(EVP_PKEY *key, const char *cn, const char *o, X509 *issuer,
                               EVP_PKEY *ikey, bool ca, const char *san, const char *eku)
{
    static long serial = 1000;
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)o, -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509 *iss = issuer ? issuer : x;
    if (ca) {
        fx_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
        fx_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        fx_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
        fx_ext(x, iss, NID_key_usage, "critical,digitalSignature");
    }
    fx_ext(x, iss, NID_subject_key_identifier, "hash");
    if (san)
        fx_ext(x, iss, NID_subject_alt_name, san);
    if (eku)
        fx_ext(x, iss, NID_ext_key_usage, eku);
    assert_true(X509_sign(x, ikey ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static FX_UNUSED void fx_write(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (x)
        assert_int_equal(PEM_write_X509(f, x), 1);
    if (k)
        assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static FX_UNUSED void fx_pki_make(fx_pki_t *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "/tmp/rh-peers-pki-XXXXXX");
    assert_non_null(mkdtemp(p->dir));
#define FX_PATH(field, name) snprintf(p->field, sizeof p->field, "%s/" name, p->dir)
    FX_PATH(ca, "ca.pem");
    FX_PATH(ca2, "ca2.pem");
    FX_PATH(srv_cert, "srv.pem");
    FX_PATH(srv_key, "srv.key");
    FX_PATH(other_cert, "other.pem");
    FX_PATH(other_key, "other.key");
    FX_PATH(cli_cert, "cli.pem");
    FX_PATH(cli_key, "cli.key");
    FX_PATH(cli2_cert, "cli2.pem");
    FX_PATH(cli2_key, "cli2.key");
#undef FX_PATH
    EVP_PKEY *cak = fx_key(), *ca2k = fx_key(), *sk = fx_key(), *ok = fx_key(), *ck = fx_key(),
             *c2k = fx_key();
    X509 *ca = fx_cert(cak, "roamhub test CA", "roamhub test", NULL, NULL, true, NULL, NULL);
    X509 *ca2 = fx_cert(ca2k, "other CA", "elsewhere", NULL, NULL, true, NULL, NULL);
    X509 *srv = fx_cert(sk, "localhost", "roamhub test", ca, cak, false,
                        "DNS:localhost,IP:127.0.0.1", "serverAuth");
    X509 *oth = fx_cert(ok, "other.example", "roamhub test", ca, cak, false,
                        "DNS:other.example", "serverAuth");
    X509 *cli = fx_cert(ck, "netA client", "roamhub test", ca, cak, false, NULL, "clientAuth");
    X509 *cli2 = fx_cert(c2k, "netA client", "roamhub test", ca2, ca2k, false, NULL, "clientAuth");
    fx_write(p->ca, ca, NULL);
    fx_write(p->ca2, ca2, NULL);
    fx_write(p->srv_cert, srv, NULL);
    fx_write(p->srv_key, NULL, sk);
    fx_write(p->other_cert, oth, NULL);
    fx_write(p->other_key, NULL, ok);
    fx_write(p->cli_cert, cli, NULL);
    fx_write(p->cli_key, NULL, ck);
    fx_write(p->cli2_cert, cli2, NULL);
    fx_write(p->cli2_key, NULL, c2k);
    X509 *all[] = {ca, ca2, srv, oth, cli, cli2};
    EVP_PKEY *keys[] = {cak, ca2k, sk, ok, ck, c2k};
    for (size_t i = 0; i < 6; i++) {
        X509_free(all[i]);
        EVP_PKEY_free(keys[i]);
    }
}

static FX_UNUSED void fx_pki_remove(fx_pki_t *p)
{
    const char *files[] = {p->ca, p->ca2, p->srv_cert, p->srv_key, p->other_cert, p->other_key,
                           p->cli_cert, p->cli_key, p->cli2_cert, p->cli2_key};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(files[i]);
    rmdir(p->dir);
}

static FX_UNUSED X509 *fx_load_cert(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

/* ---- loop -------------------------------------------------------------------------------- */

static FX_UNUSED uint64_t fx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static FX_UNUSED void fx_tick(evutil_socket_t fd, short w, void *a)
{
    (void)fd;
    (void)w;
    (void)a;
}

/* Runs the loop until *flag >= want or timeout_ms passes; returns whether the condition held. */
static FX_UNUSED bool fx_run_until(struct event_base *base, const int *flag, int want,
                                   unsigned timeout_ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, fx_tick, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
    uint64_t end = fx_now_ms() + timeout_ms;
    while ((!flag || *flag < want) && fx_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return !flag || *flag >= want;
}

/* ---- in-process HTTP(S) server ----------------------------------------------------------- */

enum fx_mode { FX_ECHO = 0, FX_HANG, FX_503, FX_CLOSE };

typedef struct fx_server {
    struct event_base *base;
    struct evhttp *http;
    SSL_CTX *ssl;               /* NULL: plain HTTP */
    uint16_t port;
    enum fx_mode mode;
    int accepted;               /* TCP connections accepted */
    int requests;
    char last_host[128], last_auth[256], last_ctype[64], last_conn[32], last_path[128],
        last_extra[64];
    char last_body[256];
    int last_reused;            /* TLS: server side SSL_session_reused of last request */
    char last_client_subject[256];
    struct evhttp_request *hung[64];
    int n_hung;
    struct evhttp_connection *last_evcon; /* server side of the last request's connection */
} fx_server_t;

static FX_UNUSED struct bufferevent *fx_bevcb(struct event_base *base, void *arg)
{
    fx_server_t *s = arg;
    s->accepted++;
    if (!s->ssl)
        return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    return bufferevent_openssl_socket_new(base, -1, SSL_new(s->ssl), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static FX_UNUSED void fx_copy_hdr(char *dst, size_t cap, struct evkeyvalq *h, const char *name)
{
    const char *v = evhttp_find_header(h, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static FX_UNUSED void fx_handler(struct evhttp_request *req, void *arg)
{
    fx_server_t *s = arg;
    s->requests++;
    s->last_evcon = evhttp_request_get_connection(req);
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    fx_copy_hdr(s->last_host, sizeof s->last_host, h, "Host");
    fx_copy_hdr(s->last_auth, sizeof s->last_auth, h, "Authorization");
    fx_copy_hdr(s->last_ctype, sizeof s->last_ctype, h, "Content-Type");
    fx_copy_hdr(s->last_conn, sizeof s->last_conn, h, "Connection");
    fx_copy_hdr(s->last_extra, sizeof s->last_extra, h, "X-Test");
    snprintf(s->last_path, sizeof s->last_path, "%s", evhttp_request_get_uri(req));
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n >= sizeof s->last_body)
        n = sizeof s->last_body - 1;
    evbuffer_copyout(in, s->last_body, n);
    s->last_body[n] = '\0';
    if (s->ssl) {
        struct bufferevent *bev =
            evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        s->last_reused = ssl ? SSL_session_reused(ssl) : -1;
        X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
        s->last_client_subject[0] = '\0';
        if (peer)
            X509_NAME_oneline(X509_get_subject_name(peer), s->last_client_subject,
                              sizeof s->last_client_subject);
    }
    if (s->mode == FX_HANG) {
        if (s->n_hung < 64)
            s->hung[s->n_hung++] = req;
        return;
    }
    struct evbuffer *out = evbuffer_new();
    evbuffer_add_printf(out, "{\"echo\":%zu}", evbuffer_get_length(in));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (s->mode == FX_CLOSE)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    evhttp_send_reply(req, s->mode == FX_503 ? 503 : 200, s->mode == FX_503 ? "Unavailable" : "OK",
                      out);
    evbuffer_free(out);
}

/* Starts a server on 127.0.0.1:port (0 = ephemeral). tls_cert/key NULL: plain HTTP.
 * client_ca: require client certificates from that CA (NULL: none requested). */
static FX_UNUSED void fx_server_start(fx_server_t *s, struct event_base *base, uint16_t port,
                                      const char *tls_cert, const char *tls_key,
                                      const char *client_ca)
{
    memset(s, 0, sizeof *s);
    s->base = base;
    if (tls_cert) {
        s->ssl = SSL_CTX_new(TLS_server_method());
        assert_non_null(s->ssl);
        assert_int_equal(SSL_CTX_use_certificate_chain_file(s->ssl, tls_cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(s->ssl, tls_key, SSL_FILETYPE_PEM), 1);
        if (client_ca) {
            assert_int_equal(SSL_CTX_load_verify_locations(s->ssl, client_ca, NULL), 1);
            SSL_CTX_set_verify(s->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
        SSL_CTX_set_session_id_context(s->ssl, (const unsigned char *)"fx", 2);
    }
    s->http = evhttp_new(base);
    assert_non_null(s->http);
    evhttp_set_bevcb(s->http, fx_bevcb, s);
    evhttp_set_gencb(s->http, fx_handler, s);
    struct evhttp_bound_socket *b = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", port);
    assert_non_null(b);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(b), (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
}

static FX_UNUSED void fx_server_stop(fx_server_t *s)
{
    if (s->http)
        evhttp_free(s->http); /* frees hung requests with their connections */
    s->http = NULL;
    SSL_CTX_free(s->ssl);
    s->ssl = NULL;
}

/* A TCP port on 127.0.0.1 with nothing listening (bound, then closed). */
static FX_UNUSED uint16_t fx_closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

#endif
