/* Unit tests for broker/pb_token: sealed cross-protocol tokens (AES-256-GCM) open to exactly
 * what was sealed; every altered byte, another identity (forwarder NetID, tenant or cluster),
 * another hub's key, an expired token and malformed input are refused with their own error and a
 * reason; the BridgeToken layer round-trips every field; key files are checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pb_token.h"
#include "rh_hex.h"

static pb_token_key_t key, other;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(pb_token_key_init(&key, NULL, NULL), RH_OK);
    assert_int_equal(pb_token_key_init(&other, NULL, NULL), RH_OK);
    assert_memory_not_equal(key.k, other.k, sizeof key.k);
    return 0;
}

static void test_seal_open(void **state)
{
    (void)state;
    const uint8_t pt[] = "gateway token and forwarder ids";
    uint8_t tok[128], out[128];
    size_t tl = 0, ol = 0;
    char aad[200];
    pb_token_aad(aad, sizeof aad, 0x13, "ttn", "eu1");
    assert_string_equal(aad, "000013:ttn:eu1");
    assert_int_equal(pb_token_seal(&key, pt, sizeof pt, aad, 2000, tok, sizeof tok, &tl), RH_OK);
    assert_int_equal(tl, sizeof pt + PB_TOKEN_OVERHEAD);
    assert_memory_not_equal(tok + 21, pt, sizeof pt); /* encrypted, not only signed */
    rh_diag_t d = {{0}};
    assert_int_equal(pb_token_open(&key, tok, tl, aad, 1000, out, sizeof out, &ol, &d), RH_OK);
    assert_int_equal(ol, sizeof pt);
    assert_memory_equal(out, pt, sizeof pt);
    /* two seals of the same plaintext differ (random nonce) */
    uint8_t tok2[128];
    size_t tl2 = 0;
    assert_int_equal(pb_token_seal(&key, pt, sizeof pt, aad, 2000, tok2, sizeof tok2, &tl2), RH_OK);
    assert_memory_not_equal(tok, tok2, tl);
    /* empty plaintext works too */
    assert_int_equal(pb_token_seal(&key, pt, 0, aad, 2000, tok2, sizeof tok2, &tl2), RH_OK);
    assert_int_equal(pb_token_open(&key, tok2, tl2, aad, 1000, out, sizeof out, &ol, &d), RH_OK);
    assert_int_equal(ol, 0);
}

static void test_tamper(void **state)
{
    (void)state;
    const uint8_t pt[] = "abc";
    uint8_t tok[64], out[64];
    size_t tl = 0, ol = 0;
    assert_int_equal(pb_token_seal(&key, pt, sizeof pt, "000013::", 2000, tok, sizeof tok, &tl),
                     RH_OK);
    for (size_t i = 1; i < tl; i++) { /* byte 0 is the version: malformed */
        for (int bit = 0; bit < 8; bit += 7) {
            tok[i] ^= (uint8_t)(1u << bit);
            rh_diag_t d = {{0}};
            assert_int_equal(pb_token_open(&key, tok, tl, "000013::", 1000, out, sizeof out,
                                           &ol, &d), RH_EPERM);
            assert_non_null(strstr(d.text, "does not authenticate"));
            tok[i] ^= (uint8_t)(1u << bit);
        }
    }
    rh_diag_t d = {{0}};
    tok[0] = 2;
    assert_int_equal(pb_token_open(&key, tok, tl, "000013::", 1000, out, sizeof out, &ol, &d),
                     RH_EINVAL);
    assert_non_null(strstr(d.text, "malformed"));
    tok[0] = 1;
    assert_int_equal(pb_token_open(&key, tok, tl - 1, "000013::", 1000, out, sizeof out, &ol,
                                   &d), RH_EPERM);
    assert_int_equal(pb_token_open(&key, tok, 10, "000013::", 1000, out, sizeof out, &ol, &d),
                     RH_EINVAL);
}

static void test_identity_and_key(void **state)
{
    (void)state;
    const uint8_t pt[] = "abc";
    uint8_t tok[64], out[64];
    size_t tl = 0, ol = 0;
    char aad[64];
    pb_token_aad(aad, sizeof aad, 0x13, "ttn", "eu1");
    assert_int_equal(pb_token_seal(&key, pt, sizeof pt, aad, 2000, tok, sizeof tok, &tl), RH_OK);
    static const struct { uint32_t n; const char *t, *c; } wrong[] = {
        {0x14, "ttn", "eu1"}, {0x13, "tti", "eu1"}, {0x13, "ttn", "eu2"}, {0x13, "", ""},
        {0x13, "ttn", "eu1 "}};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        char a2[64];
        pb_token_aad(a2, sizeof a2, wrong[i].n, wrong[i].t, wrong[i].c);
        rh_diag_t d = {{0}};
        assert_int_equal(pb_token_open(&key, tok, tl, a2, 1000, out, sizeof out, &ol, &d),
                         RH_EPERM);
    }
    rh_diag_t d = {{0}};
    assert_int_equal(pb_token_open(&other, tok, tl, aad, 1000, out, sizeof out, &ol, &d),
                     RH_EPERM); /* another hub's key */
}

static void test_expiry(void **state)
{
    (void)state;
    const uint8_t pt[] = "abc";
    uint8_t tok[64], out[64];
    size_t tl = 0, ol = 0;
    assert_int_equal(pb_token_seal(&key, pt, sizeof pt, "x", 2000, tok, sizeof tok, &tl), RH_OK);
    rh_diag_t d = {{0}};
    assert_int_equal(pb_token_open(&key, tok, tl, "x", 2000, out, sizeof out, &ol, &d), RH_OK);
    assert_int_equal(pb_token_open(&key, tok, tl, "x", 2001, out, sizeof out, &ol, &d),
                     RH_ETIMEDOUT);
    assert_non_null(strstr(d.text, "expired"));
    /* moving the expiry forward is tampering */
    tok[8] ^= 0x10;
    assert_int_equal(pb_token_open(&key, tok, tl, "x", 2001, out, sizeof out, &ol, &d), RH_EPERM);
}

static void test_bridge_layer(void **state)
{
    (void)state;
    Roamhub__V1__BridgeToken bt = ROAMHUB__V1__BRIDGE_TOKEN__INIT;
    uint8_t gw[40];
    for (size_t i = 0; i < sizeof gw; i++)
        gw[i] = (uint8_t)i;
    char *uls[2] = {"0a0b", "c0ffee"};
    bt.kind = ROAMHUB__V1__BRIDGE_TOKEN__KIND__KIND_TS002_FORWARDER;
    bt.forwarder_net_id = 0x13;
    bt.forwarder_tenant_id = "ttn";
    bt.forwarder_cluster_id = "";
    bt.gateway_uplink_token.data = gw;
    bt.gateway_uplink_token.len = sizeof gw;
    bt.home_net_id = 0x505;
    bt.fns_ul_token = "fns";
    bt.has_fns_ul_token = true;
    bt.n_gw_ul_tokens = 2;
    bt.gw_ul_tokens = uls;
    bt.hub_txid = 0x01000007;
    bt.ans_type = 3;
    bt.join = true;
    uint8_t tok[PB_TOKEN_MAX];
    size_t tl = 0;
    assert_int_equal(pb_token_seal_bridge(&key, &bt, "000013:ttn:", 1000, tok, sizeof tok, &tl),
                     RH_OK);
    char hex[2 * PB_TOKEN_MAX + 1];
    rh_hex_encode(tok, tl, hex, 0);
    Roamhub__V1__BridgeToken *o = NULL;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_token_open_bridge_hex(&key, hex, "000013:ttn:", 1000 + PB_TOKEN_TTL_S,
                                              &o, &d), RH_OK);
    assert_int_equal(o->kind, bt.kind);
    assert_int_equal(o->forwarder_net_id, 0x13);
    assert_string_equal(o->forwarder_tenant_id, "ttn");
    assert_string_equal(o->forwarder_cluster_id, "");
    assert_int_equal(o->gateway_uplink_token.len, sizeof gw);
    assert_memory_equal(o->gateway_uplink_token.data, gw, sizeof gw);
    assert_int_equal(o->home_net_id, 0x505);
    assert_string_equal(o->fns_ul_token, "fns");
    assert_true(o->has_fns_ul_token);
    assert_int_equal(o->n_gw_ul_tokens, 2);
    assert_string_equal(o->gw_ul_tokens[1], "c0ffee");
    assert_int_equal(o->hub_txid, 0x01000007);
    assert_int_equal(o->ans_type, 3);
    assert_true(o->join);
    roamhub__v1__bridge_token__free_unpacked(o, NULL);
    assert_int_equal(pb_token_open_bridge_hex(&key, hex, "000013:ttn:",
                                              1000 + PB_TOKEN_TTL_S + 1, &o, &d), RH_ETIMEDOUT);
    assert_null(o);
    assert_int_equal(pb_token_open_bridge_hex(&key, "zz", "000013:ttn:", 1000, &o, &d),
                     RH_EINVAL);
    assert_non_null(strstr(d.text, "not hex"));
}

static void test_key_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pbtokXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *good = "  000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
    assert_int_equal(write(fd, good, strlen(good)), (ssize_t)strlen(good));
    close(fd);
    pb_token_key_t k;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_token_key_init(&k, path, &d), RH_OK);
    assert_int_equal(k.k[0], 0);
    assert_int_equal(k.k[31], 0x1f);
    FILE *f = fopen(path, "w");
    fputs("0011", f);
    fclose(f);
    assert_int_equal(pb_token_key_init(&k, path, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "grpc.token_key_file"));
    assert_non_null(strstr(d.text, "64 hex digits"));
    unlink(path);
    assert_int_not_equal(pb_token_key_init(&k, path, &d), RH_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open),   cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_identity_and_key), cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_bridge_layer), cmocka_unit_test(test_key_file),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
