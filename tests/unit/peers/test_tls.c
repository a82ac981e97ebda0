/*
 * Unit tests for TLS in peers/: the outbound client over HTTPS with a throwaway PKI generated at
 * test time (mutual TLS, host name and IP SAN checks, wrong CA, hostname mismatch, session
 * resumption on reconnect) and the server-side identity extraction (peer_tls.h) mapped through
 * the registry.
 */
#include "peer_fixture.h"

#include "peer_client.h"
#include "peer_endpoint.h"
#include "peer_registry.h"
#include "peer_tls.h"
#include "rh_err.h"
#include "rh_hex.h"
#include "rh_log.h"

static fx_pki_t pki;

typedef struct result {
    int done;
    int status[16];
    int http[16];
} result_t;

static void on_done(int status, int http_status, const uint8_t *body, size_t len, void *arg)
{
    (void)body;
    (void)len;
    result_t *r = arg;
    if (r->done < 16) {
        r->status[r->done] = status;
        r->http[r->done] = http_status;
    }
    r->done++;
}

static int group_setup(void **state)
{
    (void)state;
    fx_pki_make(&pki);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    fx_pki_remove(&pki);
    return 0;
}

static int ep_new(const char *url, const char *ca, const char *cert, const char *key,
                  peer_endpoint_t **ep, rh_diag_t *d)
{
    Roamhub__V1__Endpoint rec = ROAMHUB__V1__ENDPOINT__INIT;
    rec.id = "tlsA";
    rec.net_id = 0x000013;
    rec.url = (char *)url;
    rec.timeout_ms = 5000;
    rec.ca_file = (char *)(ca ? ca : "");
    rec.client_cert_file = (char *)(cert ? cert : "");
    rec.client_key_file = (char *)(key ? key : "");
    return peer_endpoint_new(&rec, 0, ep, d);
}

static peer_endpoint_t *ep_make(const char *url, const char *ca, const char *cert, const char *key)
{
    peer_endpoint_t *ep = NULL;
    rh_diag_t d;
    if (ep_new(url, ca, cert, key, &ep, &d) != RH_OK)
        fail_msg("peer_endpoint_new: %s", d.text);
    return ep;
}

/* Mutual TLS round trip by host name, then resumption on a new connection. */
static void test_mtls_and_resumption(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    peer_client_t *c = NULL;
    assert_int_equal(peer_client_new(base, NULL, &c), RH_OK);
    fx_server_t s;
    fx_server_start(&s, base, 0, pki.srv_cert, pki.srv_key, pki.ca);
    char url[128];
    snprintf(url, sizeof url, "https://localhost:%u/", s.port);
    peer_endpoint_t *ep = ep_make(url, pki.ca, pki.cli_cert, pki.cli_key);
    assert_true(ep->tls);
    assert_string_equal(ep->addr_text, "127.0.0.1"); /* IPv4 preferred, resolved once */

    result_t r = {0};
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(base, &r.done, 1, 10000));
    assert_int_equal(r.status[0], RH_OK);
    assert_int_equal(r.http[0], 200);
    assert_int_equal(s.last_reused, 0);
    assert_string_equal(s.last_client_subject, "/O=roamhub test/CN=netA client");
    assert_int_equal(s.accepted, 1);

    /* Same connection for the next request. */
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(base, &r.done, 2, 10000));
    assert_int_equal(s.accepted, 1);

    /* Force a new connection: the cached session is resumed. */
    peer_client_close_idle(c);
    fx_run_until(base, NULL, 0, 50);
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(base, &r.done, 3, 10000));
    assert_int_equal(r.status[2], RH_OK);
    assert_int_equal(s.accepted, 2);
    assert_int_equal(s.last_reused, 1);
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(c, "tlsA", &st, &found);
    assert_true(found);
    assert_int_equal(st.tls_handshakes, 2);
    assert_int_equal(st.tls_resumed, 1);
    assert_int_equal(st.connections, 1);

    peer_client_free(c);
    peer_endpoint_free(ep);
    fx_server_stop(&s);
    event_base_free(base);
}

/* IP literal URL: verified against the IP SAN, no SNI. */
static void test_ip_san(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    peer_client_t *c = NULL;
    assert_int_equal(peer_client_new(base, NULL, &c), RH_OK);
    fx_server_t s;
    fx_server_start(&s, base, 0, pki.srv_cert, pki.srv_key, NULL);
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%u/sns", s.port);
    peer_endpoint_t *ep = ep_make(url, pki.ca, NULL, NULL);
    assert_true(ep->host_is_ip);
    result_t r = {0};
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(base, &r.done, 1, 10000));
    assert_int_equal(r.status[0], RH_OK);
    assert_int_equal(r.http[0], 200);
    assert_string_equal(s.last_path, "/sns");
    peer_client_free(c);
    peer_endpoint_free(ep);
    fx_server_stop(&s);
    event_base_free(base);
}

/* Each handshake failure reaches the callback as RH_EIO and no request reaches the server. */
static void expect_refused(const char *srv_cert, const char *srv_key, const char *client_ca_on_server,
                           const char *host, const char *ca, const char *cert, const char *key)
{
    struct event_base *base = event_base_new();
    peer_client_t *c = NULL;
    assert_int_equal(peer_client_new(base, NULL, &c), RH_OK);
    fx_server_t s;
    fx_server_start(&s, base, 0, srv_cert, srv_key, client_ca_on_server);
    char url[128];
    snprintf(url, sizeof url, "https://%s:%u/", host, s.port);
    peer_endpoint_t *ep = ep_make(url, ca, cert, key);
    result_t r = {0};
    assert_int_equal(peer_client_post(c, ep, NULL, "{}", 2, NULL, 0, on_done, &r), RH_OK);
    assert_true(fx_run_until(base, &r.done, 1, 10000));
    assert_int_equal(r.status[0], RH_EIO);
    assert_int_equal(r.http[0], 0);
    assert_int_equal(s.requests, 0);
    peer_endpoint_stats_t st;
    bool found;
    peer_client_stats(c, "tlsA", &st, &found);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.tls_handshakes, 0);
    peer_client_free(c);
    peer_endpoint_free(ep);
    fx_server_stop(&s);
    event_base_free(base);
}

static void test_hostname_mismatch_refused(void **state)
{
    (void)state;
    /* The server presents a valid certificate (trusted CA) for other.example. */
    expect_refused(pki.other_cert, pki.other_key, NULL, "localhost", pki.ca, NULL, NULL);
    expect_refused(pki.other_cert, pki.other_key, NULL, "127.0.0.1", pki.ca, NULL, NULL);
}

static void test_untrusted_server_refused(void **state)
{
    (void)state;
    expect_refused(pki.srv_cert, pki.srv_key, NULL, "localhost", pki.ca2, NULL, NULL);
}

static void test_client_cert_required(void **state)
{
    (void)state;
    /* No client certificate, and one from a CA the server does not trust. */
    expect_refused(pki.srv_cert, pki.srv_key, pki.ca, "localhost", pki.ca, NULL, NULL);
    expect_refused(pki.srv_cert, pki.srv_key, pki.ca, "localhost", pki.ca, pki.cli2_cert,
                   pki.cli2_key);
}

static void test_endpoint_tls_config_errors(void **state)
{
    (void)state;
    peer_endpoint_t *ep = NULL;
    rh_diag_t d;
    assert_int_equal(ep_new("https://localhost:1/", "/nonexistent/ca.pem", NULL, NULL, &ep, &d),
                     RH_ECRYPTO);
    assert_non_null(strstr(d.text, "Endpoint[tlsA].ca_file"));
    assert_int_equal(ep_new("https://localhost:1/", pki.ca, pki.cli_cert, NULL, &ep, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "client_key_file"));
    /* Key of another certificate. */
    assert_int_equal(ep_new("https://localhost:1/", pki.ca, pki.cli_cert, pki.srv_key, &ep, &d),
                     RH_ECRYPTO);
    assert_non_null(strstr(d.text, "Endpoint[tlsA].client_key_file"));
    assert_non_null(strstr(d.text, "mismatch"));
    assert_int_equal(ep_new("http://localhost:1/", pki.ca, NULL, NULL, &ep, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "Endpoint[tlsA].ca_file: set but the URL is plain http"));
    assert_null(ep);
}

/* Server side: identity extraction and mapping through the registry. */
static void test_identity_extraction(void **state)
{
    (void)state;
    X509 *cli = fx_load_cert(pki.cli_cert);
    peer_tls_identity_t id;
    assert_int_equal(peer_tls_identity_from_x509(cli, &id), RH_OK);
    assert_true(id.present);
    assert_string_equal(id.subject, "CN=netA client,O=roamhub test");
    /* Independent fingerprint: SHA-256 over i2d_X509. */
    unsigned char *der = NULL;
    int n = i2d_X509(cli, &der);
    assert_true(n > 0);
    uint8_t md[32];
    unsigned int ml = 0;
    assert_int_equal(EVP_Digest(der, (size_t)n, md, &ml, EVP_sha256(), NULL), 1);
    OPENSSL_free(der);
    assert_memory_equal(id.fingerprint, md, 32);
    char hex[65];
    peer_tls_fingerprint_hex(&id, hex);
    assert_int_equal(strlen(hex), 64);

    assert_int_equal(peer_tls_identity_from_x509(NULL, &id), RH_OK);
    assert_false(id.present);

    /* Registry: member mapped by fingerprint (colon form, upper case), another by subject. */
    char colon[100] = "";
    for (int i = 0; i < 32; i++) {
        char b[4];
        snprintf(b, sizeof b, "%s%02X", i ? ":" : "", md[i]);
        strcat(colon, b);
    }
    Roamhub__V1__Member a = ROAMHUB__V1__MEMBER__INIT;
    uint32_t a_nets[] = {0x000013};
    char *a_fps[] = {colon};
    a.id = "netA";
    a.n_net_ids = 1;
    a.net_ids = a_nets;
    a.n_cert_fingerprints = 1;
    a.cert_fingerprints = a_fps;
    const Roamhub__V1__Member *members[] = {&a};
    peer_registry_config_t cfg = {.members = members, .n_members = 1};
    peer_registry_t *reg = NULL;
    rh_diag_t d;
    if (peer_registry_new(&cfg, &reg, &d) != RH_OK)
        fail_msg("%s", d.text);
    assert_int_equal(peer_tls_identity_from_x509(cli, &id), RH_OK);
    const peer_member_t *m = NULL;
    assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
    assert_non_null(m);
    assert_string_equal(m->id, "netA");
    /* The same subject from another CA (cli2) has another fingerprint: not netA. */
    X509 *cli2 = fx_load_cert(pki.cli2_cert);
    assert_int_equal(peer_tls_identity_from_x509(cli2, &id), RH_OK);
    assert_string_equal(id.subject, "CN=netA client,O=roamhub test");
    assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
    assert_null(m);
    peer_registry_unref(reg);
    X509_free(cli);
    X509_free(cli2);
}

int main(void)
{
    rh_log_set_level_name("err");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mtls_and_resumption),
        cmocka_unit_test(test_ip_san),
        cmocka_unit_test(test_hostname_mismatch_refused),
        cmocka_unit_test(test_untrusted_server_refused),
        cmocka_unit_test(test_client_cert_required),
        cmocka_unit_test(test_endpoint_tls_config_errors),
        cmocka_unit_test(test_identity_extraction),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
