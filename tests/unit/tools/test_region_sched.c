/* Unit tests for tools/common/region (EU868 / US915 data rates, RX1 / RX2 windows, power) and
 * tools/common/ns_sched (uplink tokens, the RX1/RX2 choice with margins and clock wrap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ns_sched.h"
#include "region.h"
#include "rh_test.h"

static void test_eu868(void **state)
{
    (void)state;
    region_id_t r;
    assert_int_equal(region_parse("eu868", &r), RH_OK);
    assert_int_equal(r, REGION_EU868);
    assert_int_equal(region_parse("AS923", &r), RH_EINVAL);
    assert_string_equal(region_name(REGION_EU868), "EU868");
    /* DR0..DR5 = SF12..SF7 BW125, DR6 = SF7BW250, both directions. */
    for (uint8_t dr = 0; dr <= 5; dr++) {
        uint8_t sf, back;
        uint16_t bw;
        assert_int_equal(region_dr_to_sf_bw(REGION_EU868, dr, &sf, &bw), RH_OK);
        assert_int_equal(sf, 12 - dr);
        assert_int_equal(bw, 125);
        assert_int_equal(region_dr_from_sf_bw(REGION_EU868, sf, bw, true, &back), RH_OK);
        assert_int_equal(back, dr);
        assert_int_equal(region_dr_from_sf_bw(REGION_EU868, sf, bw, false, &back), RH_OK);
        assert_int_equal(back, dr);
    }
    uint8_t dr, sf;
    uint16_t bw;
    assert_int_equal(region_dr_from_sf_bw(REGION_EU868, 7, 250, true, &dr), RH_OK);
    assert_int_equal(dr, 6);
    assert_int_equal(region_dr_from_sf_bw(REGION_EU868, 7, 500, true, &dr), RH_EINVAL);
    assert_int_equal(region_dr_to_sf_bw(REGION_EU868, 7, &sf, &bw), RH_EINVAL); /* FSK */
    assert_int_equal(region_dr_to_sf_bw(REGION_EU868, 16, &sf, &bw), RH_EINVAL);
    /* RX1 = uplink frequency, DR - offset (floored at 0); RX2 869.525 DR0. */
    region_win_t w;
    assert_int_equal(region_rx1(REGION_EU868, 868100000u, 5, 0, &w), RH_OK);
    assert_int_equal(w.freq_hz, 868100000u);
    assert_int_equal(w.dr, 5);
    assert_int_equal(region_rx1(REGION_EU868, 867900000u, 5, 2, &w), RH_OK);
    assert_int_equal(w.freq_hz, 867900000u);
    assert_int_equal(w.dr, 3);
    assert_int_equal(region_rx1(REGION_EU868, 868100000u, 1, 3, &w), RH_OK);
    assert_int_equal(w.dr, 0);
    assert_int_equal(region_rx1(REGION_EU868, 868100000u, 5, 6, &w), RH_EINVAL);
    w = region_rx2(REGION_EU868);
    assert_int_equal(w.freq_hz, 869525000u);
    assert_int_equal(w.dr, 0);
    assert_int_equal(region_dl_power(REGION_EU868, 868100000u), 14);
    assert_int_equal(region_dl_power(REGION_EU868, 869525000u), 27);
    assert_int_equal(REGION_RECEIVE_DELAY1_S, 1);
    assert_int_equal(REGION_JOIN_ACCEPT_DELAY1_S, 5);
}

static void test_us915(void **state)
{
    (void)state;
    region_id_t r;
    assert_int_equal(region_parse("US902", &r), RH_OK);
    assert_int_equal(r, REGION_US915);
    uint8_t dr;
    /* SF8BW500 is DR4 up, DR12 down. */
    assert_int_equal(region_dr_from_sf_bw(REGION_US915, 8, 500, true, &dr), RH_OK);
    assert_int_equal(dr, 4);
    assert_int_equal(region_dr_from_sf_bw(REGION_US915, 8, 500, false, &dr), RH_OK);
    assert_int_equal(dr, 12);
    assert_int_equal(region_dr_from_sf_bw(REGION_US915, 12, 125, true, &dr), RH_EINVAL);
    region_win_t w;
    /* Channel 9 (904.1 MHz) -> RX1 channel 1 = 923.9 MHz; DR3 offset 0 -> DR13. */
    assert_int_equal(region_rx1(REGION_US915, 904100000u, 3, 0, &w), RH_OK);
    assert_int_equal(w.freq_hz, 923900000u);
    assert_int_equal(w.dr, 13);
    /* Channel 0, DR0 offset 2 -> DR8. */
    assert_int_equal(region_rx1(REGION_US915, 902300000u, 0, 2, &w), RH_OK);
    assert_int_equal(w.freq_hz, 923300000u);
    assert_int_equal(w.dr, 8);
    /* 500 kHz channel 65 (904.6 MHz) DR4 -> RX1 channel 1, DR13. */
    assert_int_equal(region_rx1(REGION_US915, 904600000u, 4, 0, &w), RH_OK);
    assert_int_equal(w.freq_hz, 923900000u);
    assert_int_equal(w.dr, 13);
    assert_int_equal(region_rx1(REGION_US915, 902350000u, 0, 0, &w), RH_EINVAL); /* off grid */
    assert_int_equal(region_rx1(REGION_US915, 902300000u, 5, 0, &w), RH_EINVAL);
    w = region_rx2(REGION_US915);
    assert_int_equal(w.freq_hz, 923300000u);
    assert_int_equal(w.dr, 8);
}

static void test_token(void **state)
{
    (void)state;
    ns_token_t t = {.region = REGION_EU868, .gw_eui = 0x0080000000A1B2C3ull, .tmst = 0xFFFFFFF0u,
                    .freq_hz = 868300000u, .dr = 5, .rx_ms = 0x12345678u};
    char hex[NS_TOKEN_HEX + 1];
    ns_token_encode(&t, hex);
    assert_int_equal(strlen(hex), NS_TOKEN_HEX);
    ns_token_t b;
    rh_diag_t d;
    assert_int_equal(ns_token_decode(hex, &b, "FNSULToken", &d), RH_OK);
    assert_true(b.gw_eui == t.gw_eui);
    assert_int_equal(b.tmst, t.tmst);
    assert_int_equal(b.freq_hz, t.freq_hz);
    assert_int_equal(b.dr, 5);
    assert_int_equal(b.rx_ms, t.rx_ms);
    /* Upper case and 0x accepted. */
    char up[NS_TOKEN_HEX + 3] = "0X";
    for (size_t i = 0; i < NS_TOKEN_HEX; i++)
        up[2 + i] = (char)(hex[i] >= 'a' ? hex[i] - 32 : hex[i]);
    up[NS_TOKEN_HEX + 2] = '\0';
    assert_int_equal(ns_token_decode(up, &b, "FNSULToken", &d), RH_OK);
    assert_int_equal(b.tmst, t.tmst);
    /* Someone else's token, a wrong version, not hex, missing. */
    assert_int_equal(ns_token_decode("0a0b0c0d", &b, "GWInfo.ULToken", &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "GWInfo.ULToken"));
    char v2[NS_TOKEN_HEX + 1];
    memcpy(v2, hex, sizeof v2);
    v2[1] = '2';
    assert_int_equal(ns_token_decode(v2, &b, "FNSULToken", &d), RH_EINVAL);
    assert_int_equal(ns_token_decode("zz", &b, "FNSULToken", &d), RH_EINVAL);
    assert_int_equal(ns_token_decode(NULL, &b, "FNSULToken", &d), RH_EINVAL);
}

static void test_dl_choose(void **state)
{
    (void)state;
    ns_dl_offer_t o = {.rx1_ok = true, .rx2_ok = true, .rx1_freq_hz = 868100000u,
                       .rx2_freq_hz = 869525000u, .rx1_dr = 5, .rx2_dr = 0, .rx_delay1_s = 1};
    ns_dl_plan_t p;
    /* 100 ms after the uplink: RX1 at tmst + 1 s. */
    assert_int_equal(ns_dl_choose(1000, 5000, 5100, &o, 50, &p), RH_OK);
    assert_int_equal(p.window, 1);
    assert_int_equal(p.tmst, 1000 + 1000000);
    assert_int_equal(p.freq_hz, 868100000u);
    assert_int_equal(p.dr, 5);
    /* 960 ms after: RX1 opens in 40 ms < margin 50 -> RX2 at tmst + 2 s. */
    assert_int_equal(ns_dl_choose(1000, 5000, 5960, &o, 50, &p), RH_OK);
    assert_int_equal(p.window, 2);
    assert_int_equal(p.tmst, 1000 + 2000000);
    assert_int_equal(p.freq_hz, 869525000u);
    assert_int_equal(p.dr, 0);
    /* Exactly at the margin is still fine. */
    assert_int_equal(ns_dl_choose(1000, 5000, 5950, &o, 50, &p), RH_OK);
    assert_int_equal(p.window, 1);
    /* Too late for both. */
    assert_int_equal(ns_dl_choose(1000, 5000, 6990, &o, 50, &p), RH_ETIMEDOUT);
    /* Join-accept: 5 s / 6 s; tmst wraps around 2^32; local clock wraps too. */
    o.rx_delay1_s = 5;
    assert_int_equal(ns_dl_choose(0xFFFFFF00u, 0xFFFFFFF0u, 0x00000100u, &o, 50, &p), RH_OK);
    assert_int_equal(p.window, 1);
    assert_int_equal(p.tmst, (uint32_t)(0xFFFFFF00u + 5000000u));
    assert_int_equal(ns_dl_choose(7, 0, 5500, &o, 50, &p), RH_OK);
    assert_int_equal(p.window, 2);
    assert_int_equal(p.tmst, 7 + 6000000);
    /* Only RX2 offered; nothing offered; RXDelay1 0 is read as 1 s. */
    o.rx1_ok = false;
    o.rx_delay1_s = 1;
    assert_int_equal(ns_dl_choose(0, 0, 10, &o, 50, &p), RH_OK);
    assert_int_equal(p.window, 2);
    o.rx2_ok = false;
    assert_int_equal(ns_dl_choose(0, 0, 10, &o, 50, &p), RH_EINVAL);
    o.rx1_ok = true;
    o.rx_delay1_s = 0;
    assert_int_equal(ns_dl_choose(0, 0, 10, &o, 50, &p), RH_OK);
    assert_int_equal(p.tmst, 1000000);
    /* A uplink received "in the future" (clock skew) still gets RX1. */
    assert_int_equal(ns_dl_choose(0, 100, 90, &o, 50, &p), RH_OK);
    assert_int_equal(p.window, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eu868),
        cmocka_unit_test(test_us915),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_dl_choose),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
