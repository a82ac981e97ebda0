/* Unit tests for lw_frame: decode -> encode round trips for every MType (and every FCtrl bit in
 * both directions), field extraction and byte order, classification, the malformed-frame table
 * (each case: error code AND the field named in the diagnostic), encode-side validation,
 * join-accept plaintext codec and FCnt reconstruction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lw_frame.h"
#include "rh_test.h"

static void roundtrip(const uint8_t *phy, size_t len, lw_frame_t *f)
{
    rh_diag_t d = {{0}};
    uint8_t out[LW_PHY_MAX];
    size_t ol = 0;
    int rc = lw_frame_decode(phy, len, f, &d);
    if (rc != RH_OK)
        fail_msg("decode failed (%d): %s", rc, d.text);
    assert_int_equal(lw_frame_encode(f, out, sizeof out, &ol, &d), RH_OK);
    assert_int_equal(ol, len);
    assert_memory_equal(out, phy, len);
    /* a buffer one byte short is refused, not overrun */
    assert_int_equal(lw_frame_encode(f, out, len - 1, &ol, &d), RH_ERANGE);
    assert_non_null(strstr(d.text, "PHYPayload"));
}

static void test_roundtrip_table(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        lw_mtype_t mtype;
        lw_class_t cls;
    } cases[] = {
        /* join-request (ChirpStack example) */
        {"0001010101010101010202020202020202030309b97b32", LW_MTYPE_JOIN_REQUEST,
         LW_CLASS_UP_JOIN_REQUEST},
        /* join-accept, encrypted, without and with CFList */
        {"2023cf335489aae3183c0be0baa8dee5f3", LW_MTYPE_JOIN_ACCEPT, LW_CLASS_DOWN_JOIN_ACCEPT},
        {"20000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
         LW_MTYPE_JOIN_ACCEPT, LW_CLASS_DOWN_JOIN_ACCEPT},
        /* data: no FPort (empty), FOpts only, FPort 0 with MAC payload, FPort 0 empty,
         * app data, FPort with empty FRMPayload, downlinks, max FOpts */
        {"400000000a000800b41451a9", LW_MTYPE_UNCONFIRMED_UP, LW_CLASS_UP_MAC_DATA},
        {"4004030201030000067307a1b2c3d4", LW_MTYPE_UNCONFIRMED_UP, LW_CLASS_UP_MAC_DATA},
        {"400403020100010000aabbccdd11223344", LW_MTYPE_UNCONFIRMED_UP, LW_CLASS_UP_MAC_DATA},
        {"40040302010001000011223344", LW_MTYPE_UNCONFIRMED_UP, LW_CLASS_UP_MAC_DATA},
        {"80040302010300000673070ae264d4f7e117d2c0", LW_MTYPE_CONFIRMED_UP, LW_CLASS_UP_APP_DATA},
        {"4004030201f0ffff010111223344", LW_MTYPE_UNCONFIRMED_UP, LW_CLASS_UP_APP_DATA},
        {"600000000a8005000a54972baa8b983cd1", LW_MTYPE_UNCONFIRMED_DOWN,
         LW_CLASS_DOWN_APP_DATA},
        {"a00403020170020011223344", LW_MTYPE_CONFIRMED_DOWN, LW_CLASS_DOWN_MAC_DATA},
        {"6004030201ff0100000102030405060708090a0b0c0d0edeadbeef", LW_MTYPE_UNCONFIRMED_DOWN,
         LW_CLASS_DOWN_MAC_DATA},
        /* rejoin-request types 0, 1, 2 */
        {"c000050500080706050403020101001122aabb", LW_MTYPE_REJOIN_REQUEST,
         LW_CLASS_UP_REJOIN_REQUEST},
        {"c0010102030405060708080706050403020134121122aabb", LW_MTYPE_REJOIN_REQUEST,
         LW_CLASS_UP_REJOIN_REQUEST},
        {"c002050500080706050403020101001122aabb", LW_MTYPE_REJOIN_REQUEST,
         LW_CLASS_UP_REJOIN_REQUEST},
        /* proprietary: empty and with payload (ChirpStack example) */
        {"e0", LW_MTYPE_PROPRIETARY, LW_CLASS_PROPRIETARY},
        {"e0010203", LW_MTYPE_PROPRIETARY, LW_CLASS_PROPRIETARY},
        /* MHDR RFU bits set: kept */
        {"5c0000000a000800b41451a9", LW_MTYPE_UNCONFIRMED_UP, LW_CLASS_UP_MAC_DATA},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t phy[LW_PHY_MAX];
        size_t len = rh_test_hex(cases[i].hex, phy, sizeof phy);
        lw_frame_t f;
        print_message("case %zu: %s\n", i, cases[i].hex);
        roundtrip(phy, len, &f);
        assert_int_equal(f.mtype, cases[i].mtype);
        assert_int_equal(lw_frame_class(&f), cases[i].cls);
        assert_string_not_equal(lw_class_name(lw_frame_class(&f)), "unknown class");
    }
}

static void test_fields_and_byte_order(void **state)
{
    (void)state;
    uint8_t phy[64];
    size_t len = rh_test_hex("80040302010300000673070ae264d4f7e117d2c0", phy, sizeof phy);
    lw_frame_t f;
    assert_int_equal(lw_frame_decode(phy, len, &f, NULL), RH_OK);
    const lw_data_t *d = &f.u.data;
    assert_int_equal(d->devaddr, 0x01020304); /* wire 04 03 02 01 */
    assert_int_equal(d->fopts_len, 3);
    assert_ptr_equal(d->fopts, phy + 8); /* zero-copy */
    assert_true(d->has_fport);
    assert_int_equal(d->fport, 10);
    assert_ptr_equal(d->frm_payload, phy + 12);
    assert_int_equal(d->frm_payload_len, 4);
    static const uint8_t mic[4] = {0xe1, 0x17, 0xd2, 0xc0};
    assert_memory_equal(f.mic, mic, 4);
    assert_string_equal(lw_mtype_name(f.mtype), "ConfirmedDataUp");

    len = rh_test_hex("0001010101010101010202020202020202030309b97b32", phy, sizeof phy);
    assert_int_equal(lw_frame_decode(phy, len, &f, NULL), RH_OK);
    assert_true(f.u.join_request.join_eui == 0x0101010101010101ull);
    assert_int_equal(f.u.join_request.dev_nonce, 0x0303);
    len = rh_test_hex("00 0807060504030201 1122334455667788 0201 00000000", phy, sizeof phy);
    assert_int_equal(lw_frame_decode(phy, len, &f, NULL), RH_OK);
    assert_true(f.u.join_request.join_eui == 0x0102030405060708ull);
    assert_true(f.u.join_request.dev_eui == 0x8877665544332211ull);
    assert_int_equal(f.u.join_request.dev_nonce, 0x0102);

    len = rh_test_hex("c0 00 050500 0807060504030201 0100 1122aabb", phy, sizeof phy);
    assert_int_equal(lw_frame_decode(phy, len, &f, NULL), RH_OK);
    assert_int_equal(f.u.rejoin.type, 0);
    assert_int_equal(f.u.rejoin.netid, 0x000505);
    assert_true(f.u.rejoin.dev_eui == 0x0102030405060708ull);
    assert_int_equal(f.u.rejoin.rj_count, 1);
    len = rh_test_hex("c0 01 0102030405060708 0807060504030201 3412 1122aabb", phy, sizeof phy);
    assert_int_equal(lw_frame_decode(phy, len, &f, NULL), RH_OK);
    assert_true(f.u.rejoin.join_eui == 0x0807060504030201ull);
    assert_true(f.u.rejoin.dev_eui == 0x0102030405060708ull);
    assert_int_equal(f.u.rejoin.rj_count, 0x1234);
}

/* Every FCtrl bit, uplink and downlink: set exactly one and check decode and re-encode. */
static void test_fctrl_bits(void **state)
{
    (void)state;
    for (int up = 0; up <= 1; up++) {
        for (int bit = 4; bit < 8; bit++) {
            uint8_t phy[12] = {up ? 0x40 : 0x60, 4, 3, 2, 1, (uint8_t)(1u << bit), 0, 0, 9, 9, 9, 9};
            lw_frame_t f;
            roundtrip(phy, sizeof phy, &f);
            const lw_fctrl_t *c = &f.u.data.fctrl;
            assert_int_equal(c->adr, bit == 7);
            assert_int_equal(c->ack, bit == 5);
            assert_int_equal(c->adr_ack_req, up && bit == 6);
            assert_int_equal(c->rfu, !up && bit == 6);
            assert_int_equal(c->class_b, up && bit == 4);
            assert_int_equal(c->f_pending, !up && bit == 4);
        }
    }
}

static void test_malformed_table(void **state)
{
    (void)state;
    static const struct {
        const char *hex; /* "" = empty input; "LONG" = 256 bytes */
        int rc;
        const char *field; /* must appear in the diagnostic */
        const char *detail;
    } cases[] = {
        {"", RH_ESIZE, "PHYPayload", "empty"},
        {"LONG", RH_ESIZE, "PHYPayload", "256 bytes, at most 255"},
        {"41", RH_EVERSION, "MHDR.Major", "RFU value 1"},
        {"430000000a000800b41451a9", RH_EVERSION, "MHDR.Major", "RFU value 3"},
        {"400000000a0008b41451a9", RH_ESIZE, "PHYPayload", "at least 12"},
        {"40", RH_ESIZE, "PHYPayload", "1 bytes"},
        {"400403020105000006730711223344", RH_ESIZE, "FHDR.FOptsLen",
         "5 bytes of FOpts run past the end of a 15-byte frame"},
        {"40040302010f0000aabbccdd", RH_ESIZE, "FHDR.FOptsLen", "15 bytes"},
        {"4004030201030000067307001122334455", RH_EINVAL, "FPort",
         "FOpts present together with FPort 0"},
        {"0001010101010101010202020202020202030309b97b", RH_ESIZE, "PHYPayload",
         "join-request is 23 bytes, got 22"},
        {"0001010101010101010202020202020202030309b97b3200", RH_ESIZE, "PHYPayload",
         "got 24"},
        {"2023cf335489aae3183c0be0baa8dee5", RH_ESIZE, "PHYPayload", "join-accept"},
        {"2023cf335489aae3183c0be0baa8dee5f3f3", RH_ESIZE, "PHYPayload", "got 18"},
        {"c0", RH_ESIZE, "PHYPayload", "RejoinType"},
        {"c003050500080706050403020101001122aabb", RH_EINVAL, "RejoinType", "RFU value 3"},
        {"c0ff", RH_EINVAL, "RejoinType", "RFU value 255"},
        {"c000050500080706050403020101001122aa", RH_ESIZE, "PHYPayload",
         "rejoin-request type 0 is 19 bytes"},
        {"c0020505000807060504030201010011", RH_ESIZE, "PHYPayload", "type 2"},
        {"c0010102030405060708080706050403020134121122aa", RH_ESIZE, "PHYPayload",
         "rejoin-request type 1 is 24 bytes"},
        {"e2010203", RH_EVERSION, "MHDR.Major", "RFU value 2"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t phy[300];
        size_t len;
        if (strcmp(cases[i].hex, "LONG") == 0) {
            len = 256;
            memset(phy, 0, len);
            phy[0] = 0x40;
        } else {
            len = rh_test_hex(cases[i].hex, phy, sizeof phy);
        }
        lw_frame_t f;
        rh_diag_t d;
        rh_diag_clear(&d);
        int rc = lw_frame_decode(phy, len, &f, &d);
        print_message("case %zu: rc=%d %s\n", i, rc, d.text);
        assert_int_equal(rc, cases[i].rc);
        if (strncmp(d.text, cases[i].field, strlen(cases[i].field)) != 0)
            fail_msg("case %zu: diagnostic \"%s\" does not start with the field %s", i, d.text,
                     cases[i].field);
        if (!strstr(d.text, cases[i].detail))
            fail_msg("case %zu: diagnostic \"%s\" lacks \"%s\"", i, d.text, cases[i].detail);
        /* the same input with a NULL diag gives the same code */
        assert_int_equal(lw_frame_decode(phy, len, &f, NULL), cases[i].rc);
    }
    /* NULL input */
    lw_frame_t f;
    assert_int_equal(lw_frame_decode(NULL, 5, &f, NULL), RH_ESIZE);
}

/* Exactly-at-the-limit frames decode: 255 bytes, FOptsLen reaching the MIC. */
static void test_limits(void **state)
{
    (void)state;
    uint8_t phy[LW_PHY_MAX];
    memset(phy, 0xA5, sizeof phy);
    phy[0] = 0x80;
    phy[5] = 0x00;
    phy[8] = 1; /* FPort 1 */
    lw_frame_t f;
    roundtrip(phy, sizeof phy, &f);
    assert_int_equal(f.u.data.frm_payload_len, 255 - 1 - 7 - 1 - 4);
    /* FOptsLen 15, nothing after: no FPort */
    uint8_t p2[1 + 7 + 15 + 4] = {0x40, 1, 2, 3, 4, 0x0F};
    roundtrip(p2, sizeof p2, &f);
    assert_false(f.u.data.has_fport);
    assert_int_equal(f.u.data.fopts_len, 15);
    assert_int_equal(lw_frame_class(&f), LW_CLASS_UP_MAC_DATA);
    /* 254-byte proprietary payload: 255 bytes in all */
    phy[0] = 0xE0;
    roundtrip(phy, sizeof phy, &f);
    assert_int_equal(f.u.proprietary.len, 254);
}

static void test_encode_validation(void **state)
{
    (void)state;
    uint8_t out[LW_PHY_MAX + 10], big[300] = {0};
    size_t len;
    rh_diag_t d;
    lw_frame_t f = {.mtype = LW_MTYPE_UNCONFIRMED_UP};
    f.u.data.fopts_len = 16;
    f.u.data.fopts = big;
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_ESIZE);
    assert_non_null(strstr(d.text, "FHDR.FOptsLen"));
    f.u.data.fopts_len = 2;
    f.u.data.has_fport = true;
    f.u.data.fport = 0;
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "FPort: FOpts present together with FPort 0"));
    f.u.data.fopts = NULL;
    f.u.data.fport = 1;
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "FHDR.FOpts"));
    f.u.data.fopts_len = 0;
    f.u.data.frm_payload = big;
    f.u.data.frm_payload_len = 243; /* 1+7+1+243+4 = 256 */
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_ESIZE);
    assert_non_null(strstr(d.text, "PHYPayload: 256 bytes, at most 255"));
    f.u.data.frm_payload_len = 242;
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_OK);
    assert_int_equal(len, 255);
    f.u.data.has_fport = false;
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "FPort: absent"));
    f.u.data.has_fport = true;
    f.u.data.frm_payload = NULL;
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "FRMPayload"));
    f.major = 1;
    assert_int_equal(lw_frame_encode(&f, out, sizeof out, &len, &d), RH_EVERSION);
    assert_non_null(strstr(d.text, "MHDR.Major"));

    lw_frame_t j = {.mtype = LW_MTYPE_JOIN_ACCEPT};
    j.u.join_accept.payload = big;
    j.u.join_accept.len = 20;
    assert_int_equal(lw_frame_encode(&j, out, sizeof out, &len, &d), RH_ESIZE);
    assert_non_null(strstr(d.text, "JoinAccept"));
    lw_frame_t r = {.mtype = LW_MTYPE_REJOIN_REQUEST};
    r.u.rejoin.type = 3;
    assert_int_equal(lw_frame_encode(&r, out, sizeof out, &len, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "RejoinType"));
    r.u.rejoin.type = 0;
    r.u.rejoin.netid = 0x1000000;
    assert_int_equal(lw_frame_encode(&r, out, sizeof out, &len, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "NetID"));
    lw_frame_t p = {.mtype = LW_MTYPE_PROPRIETARY};
    p.u.proprietary.payload = big;
    p.u.proprietary.len = 255;
    assert_int_equal(lw_frame_encode(&p, out, sizeof out, &len, &d), RH_ESIZE);
    p.u.proprietary.len = 3;
    p.u.proprietary.payload = NULL;
    assert_int_equal(lw_frame_encode(&p, out, sizeof out, &len, &d), RH_EINVAL);
}

static void test_join_accept_plain(void **state)
{
    (void)state;
    uint8_t plain[40];
    size_t len = rh_test_hex("200101010202020403020100003449f212", plain, sizeof plain);
    lw_join_accept_t ja;
    assert_int_equal(lw_join_accept_decode(plain, len, &ja, NULL), RH_OK);
    assert_int_equal(ja.join_nonce, 0x010101);
    assert_int_equal(ja.home_netid, 0x020202);
    assert_int_equal(ja.devaddr, 0x01020304);
    assert_false(ja.has_cflist);
    uint8_t out[40];
    size_t ol;
    assert_int_equal(lw_join_accept_encode(&ja, out, sizeof out, &ol, NULL), RH_OK);
    assert_int_equal(ol, len);
    assert_memory_equal(out, plain, len);
    rh_diag_t d;
    assert_int_equal(lw_join_accept_encode(&ja, out, 16, &ol, &d), RH_ERANGE);
    ja.join_nonce = 0x1000000;
    assert_int_equal(lw_join_accept_encode(&ja, out, sizeof out, &ol, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "JoinNonce"));
    assert_int_equal(lw_join_accept_decode(plain, 16, &ja, &d), RH_ESIZE);
    assert_non_null(strstr(d.text, "PHYPayload"));
    plain[0] = 0x40;
    assert_int_equal(lw_join_accept_decode(plain, len, &ja, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "MHDR.MType"));
    plain[0] = 0x21;
    assert_int_equal(lw_join_accept_decode(plain, len, &ja, &d), RH_EVERSION);
}

static void test_fcnt_extend(void **state)
{
    (void)state;
    assert_int_equal(lw_fcnt_extend(0, 0), 0);
    assert_int_equal(lw_fcnt_extend(5, 7), 7);
    assert_int_equal(lw_fcnt_extend(0x0001FFFE, 0x0001), 0x00020001);
    assert_int_equal(lw_fcnt_extend(0x00010005, 0x0005), 0x00010005);
    assert_int_equal(lw_fcnt_extend(0x00010005, 0x0004), 0x00020004);
    assert_int_equal(lw_fcnt_extend(0xFFFFFFF0u, 0x0002), 0x00000002); /* 32-bit wrap */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_table),   cmocka_unit_test(test_fields_and_byte_order),
        cmocka_unit_test(test_fctrl_bits),        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_limits),            cmocka_unit_test(test_encode_validation),
        cmocka_unit_test(test_join_accept_plain), cmocka_unit_test(test_fcnt_extend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
