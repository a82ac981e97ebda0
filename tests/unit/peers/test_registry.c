/*
 * Unit tests for the member registry (peers/peer_registry.c, peer_endpoint.c): authentication
 * by certificate fingerprint / exact subject / Bearer API key / dev loopback, the SenderID
 * binding matrix with tenants, the security log line, endpoint lookups and URL parsing,
 * build-time validation and uniqueness, the GCRA rate limiter (also under two threads), and the
 * publication slot.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "peer_endpoint.h"
#include "peer_registry.h"
#include "peer_tls.h"
#include "rh_err.h"
#include "rh_log.h"

#define NET_A1 0x000013u
#define NET_A2 0x000014u
#define NET_B 0x600001u
#define JOIN_EUI 0x70B3D57ED0000000ull

static const char FP_A[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

typedef struct recs {
    Roamhub__V1__Member a, b, c;
    uint32_t a_nets[3], b_nets[1], c_nets[1];
    char *a_fps[1], *a_subj[1], *b_subj[1], *b_tenants[2], *c_tenants[1];
    ProtobufCBinaryData a_keys[1], b_keys[2];
    uint8_t ka[32], kb[32], kb2[32];
    Roamhub__V1__Endpoint ea, eb, ebt1, js;
    const Roamhub__V1__Member *members[3];
    const Roamhub__V1__Endpoint *endpoints[4];
    const char *dev[1];
    peer_registry_config_t cfg;
} recs_t;

static void recs_init(recs_t *r)
{
    memset(r, 0, sizeof *r);
    Roamhub__V1__Member mi = ROAMHUB__V1__MEMBER__INIT;
    Roamhub__V1__Endpoint ei = ROAMHUB__V1__ENDPOINT__INIT;
    r->a = r->b = r->c = mi;
    r->ea = r->eb = r->ebt1 = r->js = ei;

    assert_int_equal(peer_api_key_hash("keyA-0123456789", 15, r->ka), RH_OK);
    assert_int_equal(peer_api_key_hash("keyB-0123456789", 15, r->kb), RH_OK);
    assert_int_equal(peer_api_key_hash("keyB-rotated", 12, r->kb2), RH_OK);

    r->a.id = "netA";
    r->a_nets[0] = NET_A2;
    r->a_nets[1] = NET_A1;
    r->a_nets[2] = NET_A2; /* duplicate, tolerated */
    r->a.n_net_ids = 3;
    r->a.net_ids = r->a_nets;
    r->a_fps[0] = (char *)FP_A;
    r->a.n_cert_fingerprints = 1;
    r->a.cert_fingerprints = r->a_fps;
    r->a_subj[0] = "CN=netA,O=Example A";
    r->a.n_cert_subjects = 1;
    r->a.cert_subjects = r->a_subj;
    r->a_keys[0] = (ProtobufCBinaryData){32, r->ka};
    r->a.n_api_key_hashes = 1;
    r->a.api_key_hashes = r->a_keys;

    r->b.id = "netB";
    r->b_nets[0] = NET_B;
    r->b.n_net_ids = 1;
    r->b.net_ids = r->b_nets;
    r->b_tenants[0] = "t2";
    r->b_tenants[1] = "t1";
    r->b.n_tenant_ids = 2;
    r->b.tenant_ids = r->b_tenants;
    r->b_subj[0] = "CN=netB,O=Example B";
    r->b.n_cert_subjects = 1;
    r->b.cert_subjects = r->b_subj;
    r->b_keys[0] = (ProtobufCBinaryData){32, r->kb};
    r->b_keys[1] = (ProtobufCBinaryData){32, r->kb2};
    r->b.n_api_key_hashes = 2;
    r->b.api_key_hashes = r->b_keys;
    r->b.rate_limit_per_s = 10;

    r->c.id = "netC-dev";
    r->c_nets[0] = NET_B;
    r->c.n_net_ids = 1;
    r->c.net_ids = r->c_nets;
    r->c_tenants[0] = "t3";
    r->c.n_tenant_ids = 1;
    r->c.tenant_ids = r->c_tenants;

    r->ea.id = "epA";
    r->ea.net_id = NET_A1;
    r->ea.url = "http://127.0.0.1:9001/";
    r->eb.id = "epB";
    r->eb.net_id = NET_B;
    r->eb.url = "http://127.0.0.1:9002/";
    r->eb.async_answers = 1;
    r->eb.protocol_version = ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_1;
    r->ebt1.id = "epB-t1";
    r->ebt1.net_id = NET_B;
    r->ebt1.tenant_id = "t1";
    r->ebt1.url = "http://127.0.0.1:9003/t1";
    r->js.id = "js1";
    r->js.join_eui = JOIN_EUI;
    r->js.url = "http://127.0.0.1:9004/js";

    r->members[0] = &r->a;
    r->members[1] = &r->b;
    r->members[2] = &r->c;
    r->endpoints[0] = &r->ea;
    r->endpoints[1] = &r->eb;
    r->endpoints[2] = &r->ebt1;
    r->endpoints[3] = &r->js;
    r->dev[0] = "netC-dev";
    r->cfg.members = r->members;
    r->cfg.n_members = 3;
    r->cfg.endpoints = r->endpoints;
    r->cfg.n_endpoints = 4;
    r->cfg.dev_loopback_members = r->dev;
    r->cfg.n_dev_loopback_members = 1;
}

static peer_registry_t *build(recs_t *r)
{
    peer_registry_t *reg = NULL;
    rh_diag_t d;
    int rc = peer_registry_new(&r->cfg, &reg, &d);
    if (rc != RH_OK)
        fail_msg("peer_registry_new: %d %s", rc, d.text);
    return reg;
}

static peer_tls_identity_t ident(const char *fp_hex, const char *subject)
{
    peer_tls_identity_t id;
    memset(&id, 0, sizeof id);
    id.present = true;
    for (int i = 0; fp_hex && i < 32; i++) {
        unsigned v;
        sscanf(fp_hex + 2 * i, "%2x", &v);
        id.fingerprint[i] = (uint8_t)v;
    }
    snprintf(id.subject, sizeof id.subject, "%s", subject ? subject : "");
    return id;
}

static void test_auth_tls(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    peer_registry_t *reg = build(&r);
    assert_int_equal(peer_registry_member_count(reg), 3);
    const peer_member_t *m = NULL;

    peer_tls_identity_t id = ident(FP_A, "CN=whatever");
    assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
    assert_non_null(m);
    assert_string_equal(m->id, "netA");

    /* Exact subject; any other fingerprint. */
    id = ident(NULL, "CN=netB,O=Example B");
    assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
    assert_non_null(m);
    assert_string_equal(m->id, "netB");
    /* No substring, prefix, suffix or case-folded match. */
    const char *near[] = {"CN=netB,O=Example B,C=FR", "CN=netB", "O=Example B",
                          "cn=netB,O=Example B", "CN=netB,O=Example B ", "CN=netB,O=Example",
                          "X CN=netB,O=Example B", ""};
    for (size_t i = 0; i < sizeof near / sizeof *near; i++) {
        id = ident(NULL, near[i]);
        assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
        assert_null(m);
    }
    /* A fingerprint one bit off. */
    id = ident(FP_A, "");
    id.fingerprint[31] ^= 1;
    assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
    assert_null(m);
    /* No certificate. */
    memset(&id, 0, sizeof id);
    assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
    assert_null(m);
    assert_int_equal(peer_registry_auth_tls(reg, NULL, &m), RH_EINVAL);
    peer_registry_unref(reg);
}

static void test_auth_bearer(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    peer_registry_t *reg = build(&r);
    const peer_member_t *m = NULL;
    assert_int_equal(peer_registry_auth_bearer(reg, "Bearer keyA-0123456789", &m), RH_OK);
    assert_non_null(m);
    assert_string_equal(m->id, "netA");
    assert_int_equal(peer_registry_auth_bearer(reg, "  bearer \t keyB-0123456789  ", &m), RH_OK);
    assert_non_null(m);
    assert_string_equal(m->id, "netB");
    assert_int_equal(peer_registry_auth_bearer(reg, "BEARER keyB-rotated", &m), RH_OK);
    assert_non_null(m);
    assert_string_equal(m->id, "netB");
    /* Another member's key authenticates as that member, which may not speak for netA. */
    assert_int_equal(peer_registry_auth_bearer(reg, "Bearer keyB-0123456789", &m), RH_OK);
    assert_false(peer_member_may_send_as(m, NET_A1, NULL));
    /* Wrong keys: not found, not an error. */
    const char *wrong[] = {"Bearer keyA-012345678", "Bearer keyA-01234567890", "Bearer KEYA-0123456789",
                           "Bearer x"};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        m = (const peer_member_t *)1;
        assert_int_equal(peer_registry_auth_bearer(reg, wrong[i], &m), RH_OK);
        assert_null(m);
    }
    /* Not a Bearer credential. */
    const char *bad[] = {"Basic a2V5QQ==", "Bearer", "Bearer   ", "Bearerx keyA-0123456789",
                         "Bearer keyA-0123456789 extra", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(peer_registry_auth_bearer(reg, bad[i], &m), RH_EINVAL);
    assert_int_equal(peer_registry_auth_bearer(reg, NULL, &m), RH_EINVAL);
    char *huge = malloc(5000);
    memcpy(huge, "Bearer ", 7);
    memset(huge + 7, 'k', 4992);
    huge[4999] = '\0';
    assert_int_equal(peer_registry_auth_bearer(reg, huge, &m), RH_EINVAL);
    free(huge);
    peer_registry_unref(reg);
}

static void test_dev_loopback(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    peer_registry_t *reg = build(&r);
    const peer_member_t *m = NULL;
    struct sockaddr_in lo = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
    struct sockaddr_in lo2 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.1.2.3", &lo2.sin_addr);
    struct sockaddr_in ext = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.0.0.1", &ext.sin_addr);
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::1", &lo6.sin6_addr);
    struct sockaddr_in6 mapped = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.sin6_addr);
    struct sockaddr_in6 ext6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::1", &ext6.sin6_addr);

    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&lo, NET_B, &m), RH_OK);
    assert_non_null(m);
    assert_string_equal(m->id, "netC-dev");
    assert_true(m->dev_loopback);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&lo2, NET_B, &m), RH_OK);
    assert_non_null(m);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&lo6, NET_B, &m), RH_OK);
    assert_non_null(m);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&mapped, NET_B, &m), RH_OK);
    assert_non_null(m);
    /* Not a dev listener, not loopback, not a dev member's NetID, no address. */
    assert_int_equal(peer_registry_auth_dev_loopback(reg, false, (struct sockaddr *)&lo, NET_B, &m), RH_OK);
    assert_null(m);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&ext, NET_B, &m), RH_OK);
    assert_null(m);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&ext6, NET_B, &m), RH_OK);
    assert_null(m);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&lo, NET_A1, &m), RH_OK);
    assert_null(m);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, NULL, NET_B, &m), RH_OK);
    assert_null(m);
    /* netA is not a dev member. */
    const peer_member_t *a = NULL;
    peer_registry_member_by_id(reg, "netA", &a);
    assert_non_null(a);
    assert_false(a->dev_loopback);
    peer_registry_unref(reg);

    /* Without dev members configured, nothing is ever returned. */
    recs_init(&r);
    r.cfg.n_dev_loopback_members = 0;
    reg = build(&r);
    assert_int_equal(peer_registry_auth_dev_loopback(reg, true, (struct sockaddr *)&lo, NET_B, &m), RH_OK);
    assert_null(m);
    peer_registry_unref(reg);
}

static void test_may_send_as_matrix(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    peer_registry_t *reg = build(&r);
    const peer_member_t *a, *b, *c;
    peer_registry_member_by_id(reg, "netA", &a);
    peer_registry_member_by_id(reg, "netB", &b);
    peer_registry_member_by_id(reg, "netC-dev", &c);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(a->n_net_ids, 2);
    struct {
        const peer_member_t *m;
        uint32_t net;
        const char *tenant;
        bool want;
    } cases[] = {
        {a, NET_A1, NULL, true},   {a, NET_A2, NULL, true},  {a, NET_A1, "any", true},
        {a, NET_A1, "", true},     {a, 0x000015, NULL, false}, {a, NET_B, NULL, false},
        {a, NET_B, "t1", false},   {a, 0x1000013, NULL, false},
        {b, NET_B, "t1", true},    {b, NET_B, "t2", true},   {b, NET_B, "t3", false},
        {b, NET_B, NULL, false},   {b, NET_B, "", false},    {b, NET_B, "t", false},
        {b, NET_B, "t1 ", false},  {b, NET_A1, "t1", false},
        {c, NET_B, "t3", true},    {c, NET_B, "t1", false},  {c, NET_B, NULL, false},
        {NULL, NET_A1, NULL, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        bool got = peer_member_may_send_as(cases[i].m, cases[i].net, cases[i].tenant);
        if (got != cases[i].want)
            fail_msg("case %zu: member %s netid %06X tenant %s: got %d", i,
                     cases[i].m ? cases[i].m->id : "NULL", cases[i].net,
                     cases[i].tenant ? cases[i].tenant : "NULL", got);
    }
    peer_registry_unref(reg);
}

static void test_check_sender_logs_security_event(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    peer_registry_t *reg = build(&r);
    const peer_member_t *a;
    peer_registry_member_by_id(reg, "netA", &a);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    rh_log_set_level_name("info");
    rh_log_set_fd(fds[1]);
    assert_int_equal(peer_member_check_sender(a, NET_A1, NULL, "127.0.0.1"), RH_OK);
    assert_int_equal(peer_member_check_sender(a, NET_B, "t1", "192.0.2.7"), RH_EPERM);
    rh_log_set_fd(2);
    rh_log_set_level_name("err");
    close(fds[1]);
    char buf[1024] = "";
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "sub=security"));
    assert_non_null(strstr(buf, "peer=netA"));
    assert_non_null(strstr(buf, "netid=600001"));
    assert_non_null(strstr(buf, "tenant=t1"));
    assert_non_null(strstr(buf, "remote=192.0.2.7"));
    int lines = 0;
    for (char *q = buf; *q; q++)
        lines += *q == '\n';
    assert_int_equal(lines, 1); /* the accepted call logs nothing */
    peer_registry_unref(reg);
}

static void test_endpoint_lookups(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    peer_registry_t *reg = build(&r);
    assert_int_equal(peer_registry_endpoint_count(reg), 4);
    const peer_endpoint_t *e = NULL;
    assert_int_equal(peer_registry_endpoint_by_id(reg, "epB-t1", &e), RH_OK);
    assert_non_null(e);
    assert_string_equal(e->path, "/t1");
    assert_int_equal(peer_registry_endpoint_by_id(reg, "nope", &e), RH_OK);
    assert_null(e);

    assert_int_equal(peer_registry_endpoint_by_netid(reg, NET_B, "t1", &e), RH_OK);
    assert_string_equal(e->id, "epB-t1");
    assert_int_equal(peer_registry_endpoint_by_netid(reg, NET_B, "t2", &e), RH_OK);
    assert_string_equal(e->id, "epB"); /* NetID-level fallback */
    assert_int_equal(peer_registry_endpoint_by_netid(reg, NET_B, NULL, &e), RH_OK);
    assert_string_equal(e->id, "epB");
    assert_true(e->async_answers);
    assert_int_equal(e->protocol, PEER_PROTOCOL_1_1);
    assert_int_equal(e->timeout_ms, PEER_ENDPOINT_DEFAULT_TIMEOUT_MS);
    assert_int_equal(e->max_in_flight, PEER_ENDPOINT_DEFAULT_MAX_IN_FLIGHT);
    assert_int_equal(peer_registry_endpoint_by_netid(reg, NET_A1, NULL, &e), RH_OK);
    assert_string_equal(e->id, "epA");
    assert_int_equal(e->protocol, PEER_PROTOCOL_1_0);
    assert_int_equal(peer_registry_endpoint_by_netid(reg, NET_A2, NULL, &e), RH_OK);
    assert_null(e);
    assert_int_equal(peer_registry_endpoint_by_join_eui(reg, JOIN_EUI, &e), RH_OK);
    assert_non_null(e);
    assert_string_equal(e->id, "js1");
    assert_int_equal(peer_registry_endpoint_by_join_eui(reg, JOIN_EUI + 1, &e), RH_OK);
    assert_null(e);
    assert_non_null(peer_registry_endpoint_at(reg, 3));
    assert_null(peer_registry_endpoint_at(reg, 4));

    const peer_member_t *m = NULL;
    assert_int_equal(peer_registry_member_by_netid(reg, NET_B, "t1", &m), RH_OK);
    assert_string_equal(m->id, "netB");
    assert_int_equal(peer_registry_member_by_netid(reg, NET_B, "t3", &m), RH_OK);
    assert_string_equal(m->id, "netC-dev");
    assert_int_equal(peer_registry_member_by_netid(reg, NET_B, "t9", &m), RH_OK);
    assert_null(m);
    assert_int_equal(peer_registry_member_by_netid(reg, NET_A2, NULL, &m), RH_OK);
    assert_string_equal(m->id, "netA");
    assert_int_equal(peer_registry_member_by_netid(reg, NET_A2, "x", &m), RH_OK);
    assert_string_equal(m->id, "netA"); /* unscoped member owns every tenant */
    peer_registry_unref(reg);
}

static int ep_try(const char *url, unsigned flags, peer_endpoint_t **ep, rh_diag_t *d)
{
    Roamhub__V1__Endpoint rec = ROAMHUB__V1__ENDPOINT__INIT;
    rec.id = "u";
    rec.net_id = 1;
    rec.url = (char *)url;
    return peer_endpoint_new(&rec, flags, ep, d);
}

static void test_url_parsing(void **state)
{
    (void)state;
    peer_endpoint_t *ep = NULL;
    rh_diag_t d;
    assert_int_equal(ep_try("https://[::1]:8443/x/y?z=1", 0, &ep, &d), RH_OK);
    assert_string_equal(ep->host, "::1");
    assert_int_equal(ep->port, 8443);
    assert_string_equal(ep->path, "/x/y?z=1");
    assert_string_equal(ep->host_header, "[::1]:8443");
    assert_true(ep->host_is_ip);
    assert_true(ep->tls);
    assert_true(ep->resolved);
    assert_string_equal(ep->addr_text, "::1");
    peer_endpoint_free(ep);

    assert_int_equal(ep_try("http://ns.example.org", PEER_ENDPOINT_NO_RESOLVE, &ep, &d), RH_OK);
    assert_int_equal(ep->port, 80);
    assert_string_equal(ep->path, "/");
    assert_string_equal(ep->host_header, "ns.example.org");
    assert_false(ep->host_is_ip);
    assert_false(ep->resolved);
    assert_false(ep->tls);
    assert_null(ep->ssl_ctx);
    peer_endpoint_free(ep);

    assert_int_equal(ep_try("HTTP://127.0.0.1:8080/sns", 0, &ep, &d), RH_OK);
    assert_string_equal(ep->addr_text, "127.0.0.1");
    assert_string_equal(ep->host_header, "127.0.0.1:8080");
    peer_endpoint_free(ep);

    struct {
        const char *url;
        const char *want;
    } bad[] = {
        {"ftp://x/", "scheme must be http or https"},
        {"http://user:pw@x/", "credentials in the URL"},
        {"http:///path", "missing host"},
        {"http://x:0/", "port 0"},
        {"http://x:99999/", "Endpoint[u].url"},
        {"http://x/#frag", "fragment"},
        {"not a url", "Endpoint[u].url"},
        {"", "Endpoint[u].url: missing"},
        {"http://x/\r\nHost: y", "CR/LF"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ep = (peer_endpoint_t *)1;
        int rc = ep_try(bad[i].url, 0, &ep, &d);
        if (rc != RH_EINVAL || !strstr(d.text, bad[i].want))
            fail_msg("url %s: rc %d diag \"%s\"", bad[i].url, rc, d.text);
        assert_null(ep);
    }

    /* Other record fields. */
    Roamhub__V1__Endpoint rec = ROAMHUB__V1__ENDPOINT__INIT;
    rec.url = "http://127.0.0.1/";
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_EINVAL);
    assert_string_equal(d.text, "Endpoint.id: missing");
    rec.id = "z";
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "Endpoint[z].net_id"));
    rec.net_id = 0x1000000;
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_ERANGE);
    rec.net_id = 1;
    rec.timeout_ms = PEER_ENDPOINT_MAX_TIMEOUT_MS + 1;
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_ERANGE);
    assert_non_null(strstr(d.text, "Endpoint[z].timeout_ms"));
    rec.timeout_ms = 0;
    rec.max_in_flight = PEER_ENDPOINT_MAX_MAX_IN_FLIGHT + 1;
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_ERANGE);
    rec.max_in_flight = 0;
    rec.authorization = "Bearer a\r\nX: y";
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "Endpoint[z].authorization"));
    assert_null(strstr(d.text, "Bearer")); /* the secret is not echoed */
    rec.authorization = "";
    rec.protocol_version = 7;
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_EINVAL);
    rec.protocol_version = 0;
    assert_int_equal(peer_endpoint_new(&rec, 0, &ep, &d), RH_OK);
    assert_null(ep->authorization);
    peer_endpoint_free(ep);
    peer_endpoint_free(NULL);
}

/* Each mutation of a valid configuration must be refused with the right code and field. */
static void expect_build_error(recs_t *r, int want, const char *diag_part)
{
    peer_registry_t *reg = (peer_registry_t *)1;
    rh_diag_t d;
    int rc = peer_registry_new(&r->cfg, &reg, &d);
    if (rc != want || !strstr(d.text, diag_part))
        fail_msg("want %d \"%s\", got %d \"%s\"", want, diag_part, rc, d.text);
    assert_null(reg);
}

static void test_build_validation(void **state)
{
    (void)state;
    recs_t r;
    char *fp_b[1];

    recs_init(&r); /* same fingerprint on two members (colon/upper-case form) */
    fp_b[0] = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:"
              "CC:DD:EE:FF";
    r.b.n_cert_fingerprints = 1;
    r.b.cert_fingerprints = fp_b;
    expect_build_error(&r, RH_EEXIST, "also mapped to Member[net");

    recs_init(&r);
    fp_b[0] = "0011";
    r.b.n_cert_fingerprints = 1;
    r.b.cert_fingerprints = fp_b;
    expect_build_error(&r, RH_EINVAL, "Member[netB].cert_fingerprints[0]");

    recs_init(&r);
    r.b.cert_subjects = r.a_subj;
    expect_build_error(&r, RH_EEXIST, "cert_subjects: subject \"CN=netA,O=Example A\"");

    recs_init(&r); /* same API key on two members */
    r.b_keys[1] = (ProtobufCBinaryData){32, r.ka};
    expect_build_error(&r, RH_EEXIST, "api_key_hashes");

    recs_init(&r);
    r.b_keys[1] = (ProtobufCBinaryData){31, r.kb2};
    expect_build_error(&r, RH_EINVAL, "Member[netB].api_key_hashes[1]: 31 bytes");

    recs_init(&r); /* unscoped netC on netB's NetID */
    r.c.n_tenant_ids = 0;
    expect_build_error(&r, RH_EEXIST, "NetID 600001");

    recs_init(&r); /* overlapping tenant */
    r.c_tenants[0] = "t1";
    expect_build_error(&r, RH_EEXIST, "NetID 600001 tenant t1");

    recs_init(&r);
    r.c.id = "netA";
    expect_build_error(&r, RH_EEXIST, "Member[netA].id: duplicate");

    recs_init(&r);
    r.c.n_net_ids = 0;
    expect_build_error(&r, RH_EINVAL, "Member[netC-dev].net_ids");

    recs_init(&r);
    r.c_nets[0] = 0x1000000;
    expect_build_error(&r, RH_EINVAL, "wider than 24 bits");

    recs_init(&r);
    r.c_tenants[0] = "";
    expect_build_error(&r, RH_EINVAL, "tenant_ids[0]: empty");

    recs_init(&r);
    r.dev[0] = "nobody";
    expect_build_error(&r, RH_EINVAL, "dev_loopback_members[0]: no member \"nobody\"");

    recs_init(&r);
    r.ebt1.id = "epA";
    expect_build_error(&r, RH_EEXIST, "Endpoint[epA].id: duplicate");

    recs_init(&r);
    r.ebt1.tenant_id = "";
    expect_build_error(&r, RH_EEXIST, "NetID 600001 is already served by Endpoint");

    recs_init(&r);
    r.ea.join_eui = JOIN_EUI;
    expect_build_error(&r, RH_EEXIST, "join_eui: 70B3D57ED0000000 is already served");

    recs_init(&r);
    r.ea.url = "gopher://x/";
    expect_build_error(&r, RH_EINVAL, "Endpoint[epA].url");

    /* An empty registry is valid. */
    peer_registry_config_t empty = {0};
    peer_registry_t *reg = NULL;
    assert_int_equal(peer_registry_new(&empty, &reg, NULL), RH_OK);
    const peer_member_t *m = (const peer_member_t *)1;
    assert_int_equal(peer_registry_auth_bearer(reg, "Bearer x", &m), RH_OK);
    assert_null(m);
    peer_tls_identity_t id = ident(FP_A, "CN=x");
    assert_int_equal(peer_registry_auth_tls(reg, &id, &m), RH_OK);
    assert_null(m);
    const peer_endpoint_t *e = (const peer_endpoint_t *)1;
    assert_int_equal(peer_registry_endpoint_by_netid(reg, 1, NULL, &e), RH_OK);
    assert_null(e);
    peer_registry_unref(reg);
    assert_int_equal(peer_registry_new(NULL, &reg, NULL), RH_EINVAL);
}

static void test_rate_limit(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    peer_registry_t *reg = build(&r);
    const peer_member_t *b, *a;
    peer_registry_member_by_id(reg, "netB", &b);
    peer_registry_member_by_id(reg, "netA", &a);
    assert_int_equal(b->rate_per_s, 10);
    assert_int_equal(a->rate_per_s, PEER_MEMBER_DEFAULT_RATE);
    const uint64_t t0 = 1000000000000ull, s = 1000000000ull;
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += peer_member_rate_allow(b, t0);
    assert_int_equal(ok, 20); /* burst = 2 s worth */
    assert_false(peer_member_rate_allow(b, t0 + s / 20)); /* 50 ms: less than one interval */
    assert_true(peer_member_rate_allow(b, t0 + s / 10));  /* 100 ms: one token back */
    assert_false(peer_member_rate_allow(b, t0 + s / 10));
    ok = 0;
    for (int i = 0; i < 100; i++)
        ok += peer_member_rate_allow(b, t0 + 10 * s);
    assert_int_equal(ok, 20); /* refilled to the burst, not beyond */
    /* Steady 10/s is allowed indefinitely. */
    for (int i = 1; i <= 50; i++)
        assert_true(peer_member_rate_allow(b, t0 + 20 * s + (uint64_t)i * s / 10));
    /* netA has its own bucket. */
    assert_true(peer_member_rate_allow(a, t0));
    peer_registry_unref(reg);
}

/* A cluster node's share of a member's rate (rate_share = cluster.nodes): rate / share rounded
 * up, never 0; kept by a registry derived with peer_registry_apply (a member written later gets
 * the share too). */
static void test_rate_share(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    r.cfg.rate_share = 3;
    peer_registry_t *reg = build(&r);
    const peer_member_t *b, *a;
    peer_registry_member_by_id(reg, "netB", &b);
    peer_registry_member_by_id(reg, "netA", &a);
    assert_int_equal(b->rate_per_s, 4);                                  /* 10 / 3, rounded up */
    assert_int_equal(a->rate_per_s, (PEER_MEMBER_DEFAULT_RATE + 2) / 3); /* the default, shared */
    int ok = 0;
    for (int i = 0; i < 100; i++)
        ok += peer_member_rate_allow(b, 1000000000000ull);
    assert_int_equal(ok, 8); /* burst = 2 s of the share */
    Roamhub__V1__Member nb = r.b;
    nb.rate_limit_per_s = 2; /* 2 / 3 rounds up to 1, never 0 */
    peer_registry_change_t ch = {.op = PEER_CHANGE_UPSERT, .member = &nb};
    peer_registry_t *next = NULL;
    rh_diag_t d;
    assert_int_equal(peer_registry_apply(reg, &ch, 1, 0, &next, &d), RH_OK);
    peer_registry_member_by_id(next, "netB", &b);
    assert_int_equal(b->rate_per_s, 1);
    peer_registry_unref(next);
    peer_registry_unref(reg);
    recs_init(&r); /* 0 and 1: the whole rate */
    r.cfg.rate_share = 1;
    reg = build(&r);
    peer_registry_member_by_id(reg, "netB", &b);
    assert_int_equal(b->rate_per_s, 10);
    peer_registry_unref(reg);
}

typedef struct rate_thread {
    const peer_member_t *m;
    uint64_t now;
    int allowed;
} rate_thread_t;

static void *rate_worker(void *arg)
{
    rate_thread_t *t = arg;
    for (int i = 0; i < 20000; i++)
        t->allowed += peer_member_rate_allow(t->m, t->now);
    return NULL;
}

static void test_rate_limit_threads(void **state)
{
    (void)state;
    recs_t r;
    recs_init(&r);
    r.a.rate_limit_per_s = 1000; /* burst 2000 */
    peer_registry_t *reg = build(&r);
    const peer_member_t *a;
    peer_registry_member_by_id(reg, "netA", &a);
    rate_thread_t t[2] = {{a, 5000000000000ull, 0}, {a, 5000000000000ull, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, rate_worker, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(t[0].allowed + t[1].allowed, 2000);
    peer_registry_unref(reg);
}

/* A registry of the fixture's 3 members, then one of its first 2. */
static peer_registry_t *build_3_then_2(recs_t *r, peer_registry_t **two)
{
    recs_init(r);
    peer_registry_t *three = build(r);
    r->cfg.n_members = 2;
    r->cfg.n_dev_loopback_members = 0;
    *two = build(r);
    return three;
}

static void test_slot_and_views(void **state)
{
    (void)state;
    recs_t r;
    peer_registry_t *r2, *r1 = build_3_then_2(&r, &r2);
    peer_registry_slot_t slot;
    assert_int_equal(peer_registry_slot_init(&slot, NULL), RH_OK);
    peer_registry_view_t v1 = PEER_REGISTRY_VIEW_INIT, v2 = PEER_REGISTRY_VIEW_INIT;
    assert_null(peer_registry_view_get(&slot, &v1));
    peer_registry_slot_publish(&slot, r1);
    const peer_registry_t *g1 = peer_registry_view_get(&slot, &v1);
    assert_ptr_equal(g1, r1);
    assert_ptr_equal(peer_registry_view_get(&slot, &v1), r1); /* no change: same */
    assert_ptr_equal(peer_registry_view_get(&slot, &v2), r1);
    peer_registry_slot_publish(&slot, r2);
    /* v2 still holds r1 (valid) until it refreshes. */
    assert_int_equal(peer_registry_member_count(v2.reg), 3);
    assert_ptr_equal(peer_registry_view_get(&slot, &v1), r2);
    assert_int_equal(peer_registry_member_count(peer_registry_view_get(&slot, &v1)), 2);
    /* A transaction holding its own reference across refreshes. */
    peer_registry_t *held = peer_registry_ref(v2.reg);
    assert_ptr_equal(peer_registry_view_get(&slot, &v2), r2); /* drops v2's ref on r1 */
    assert_int_equal(peer_registry_member_count(held), 3);    /* still alive: ASan would see */
    peer_registry_unref(held);                                /* last ref: r1 freed */
    peer_registry_view_release(&v1);
    peer_registry_view_release(&v2);
    peer_registry_slot_fini(&slot);
    peer_registry_unref(NULL);
}

/* publish_if: a registry built from a view's registry is published only while nothing else was
 * published since (the admin API builds the next registry off the main loop, issue 18). */
static void test_slot_publish_if(void **state)
{
    (void)state;
    recs_t r;
    peer_registry_t *r2, *r1 = build_3_then_2(&r, &r2), *r3 = build(&r);
    peer_registry_slot_t slot;
    assert_int_equal(peer_registry_slot_init(&slot, NULL), RH_OK);
    peer_registry_view_t v = PEER_REGISTRY_VIEW_INIT;
    peer_registry_slot_publish(&slot, r1);
    assert_ptr_equal(peer_registry_view_get(&slot, &v), r1);
    uint64_t base = v.gen;
    /* someone else publishes in between: refused, the caller keeps r3 */
    peer_registry_slot_publish(&slot, r2);
    assert_false(peer_registry_slot_publish_if(&slot, r3, base));
    assert_ptr_equal(peer_registry_view_get(&slot, &v), r2);
    /* built on the current generation: published */
    assert_true(peer_registry_slot_publish_if(&slot, r3, v.gen));
    assert_ptr_equal(peer_registry_view_get(&slot, &v), r3);
    assert_int_equal(peer_registry_member_count(v.reg), 2);
    peer_registry_view_release(&v);
    peer_registry_slot_fini(&slot);
}

int main(void)
{
    rh_log_set_level_name("err");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_tls),
        cmocka_unit_test(test_auth_bearer),
        cmocka_unit_test(test_dev_loopback),
        cmocka_unit_test(test_may_send_as_matrix),
        cmocka_unit_test(test_check_sender_logs_security_event),
        cmocka_unit_test(test_endpoint_lookups),
        cmocka_unit_test(test_url_parsing),
        cmocka_unit_test(test_build_validation),
        cmocka_unit_test(test_rate_limit),
        cmocka_unit_test(test_rate_share),
        cmocka_unit_test(test_rate_limit_threads),
        cmocka_unit_test(test_slot_and_views),
        cmocka_unit_test(test_slot_publish_if),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
