/*
 * test_bi_build.c — the typed setters of bi_build.c (bi_msg_set_uplink / bi_msg_set_downlink):
 * every field written from typed values decodes back (after encoding, as a receiver reads it)
 * to the same value in the same unit; tokens stay verbatim; a message missing what its type
 * needs is refused naming the field; an empty or oversized PHYPayload is RH_ESIZE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bi_msg.h"

static const bi_id_t FWD = {BI_ID_NETID, 0x000013}, HOME = {BI_ID_NETID, 0x000505};

/* encode (ChirpStack dialect) -> decode: what a receiver reads */
static bi_msg_t *reread(bi_msg_t *m, char **text)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(bi_msg_encode(m, NULL, &out, &len), RH_OK);
    bi_msg_t *r = NULL;
    bi_error_t err;
    if (bi_msg_decode(out, len, &r, &err) != RH_OK)
        fail_msg("decode: %s (%s)", err.description, out);
    if (text)
        *text = out;
    else
        bi_buf_free(out);
    return r;
}

static void test_uplink_fields(void **state)
{
    (void)state;
    bi_msg_t *m = NULL;
    assert_int_equal(bi_msg_new(BI_MT_PR_START_REQ, BI_VERSION_1_0, FWD, HOME, 77, &m), RH_OK);
    static const uint8_t phy[] = {0x40, 0x34, 0x12, 0x01, 0x26, 0x00, 0x07, 0x00, 0x01, 0xaa,
                                  0x01, 0x02, 0x03, 0x04};
    bi_gwinfo_t gw[2] = {{0}};
    gw[0].present = BI_GW_ID | BI_GW_RSSI | BI_GW_SNR | BI_GW_LAT | BI_GW_LON | BI_GW_UL_TOKEN |
                    BI_GW_DL_ALLOWED | BI_GW_FINE_RECV_TIME | BI_GW_RF_REGION;
    gw[0].id_len = 8;
    gw[0].id = 0x0102030405060708ull;
    gw[0].rssi = -97;
    gw[0].snr = 7.25;
    gw[0].lat = 52.375;
    gw[0].lon = 4.875;
    gw[0].ul_token = "0a0b0c";
    gw[0].dl_allowed = true;
    gw[0].fine_recv_time = 123456789;
    gw[0].rf_region = BI_REGION_EU868;
    gw[1].present = BI_GW_ID | BI_GW_DL_ALLOWED;
    gw[1].id_len = 4;
    gw[1].id = 0xa0b0c0d0;
    gw[1].dl_allowed = false;
    bi_ulmeta_t ul = {0};
    ul.present = BI_UL_DEV_ADDR | BI_UL_DATA_RATE | BI_UL_UL_FREQ | BI_UL_RECV_TIME |
                 BI_UL_RF_REGION | BI_UL_GW_CNT | BI_UL_GW_INFO | BI_UL_FNS_UL_TOKEN |
                 BI_UL_FPORT | BI_UL_FCNT_UP | BI_UL_CONFIRMED;
    ul.dev_addr = 0x26011234;
    ul.data_rate = 5;
    ul.ul_freq = 868100000 / 1e6; /* Hz -> MHz as the bridge computes it */
    ul.recv_time.sec = 1765000000;
    ul.recv_time.nsec = 123000000;
    ul.rf_region = BI_REGION_EU868;
    ul.gw_cnt = 2;
    ul.gw = gw;
    ul.gw_count = 2;
    ul.fns_ul_token = "deadbeef";
    ul.fport = 1;
    ul.fcnt_up = 7;
    ul.confirmed = false;
    bi_error_t err;
    assert_int_equal(bi_msg_set_uplink(m, phy, sizeof phy, &ul, &err), RH_OK);
    char *text = NULL;
    bi_msg_t *r = reread(m, &text);
    assert_non_null(strstr(text, "\"ULFreq\":868.1,"));
    assert_non_null(strstr(text, "\"RecvTime\":\"2025-12-06T05:46:40.123Z\""));
    assert_non_null(strstr(text, "\"DevAddr\":\"26011234\""));
    assert_non_null(strstr(text, "\"PHYPayload\":\"403412012600070001aa01020304\""));
    bi_buf_free(text);
    const bi_fields_t *f = bi_msg_fields(r);
    assert_int_equal(f->phy_payload_len, sizeof phy);
    assert_memory_equal(f->phy_payload, phy, sizeof phy);
    assert_int_equal(f->ul.dev_addr, 0x26011234);
    assert_int_equal(f->ul.data_rate, 5);
    assert_true(f->ul.ul_freq == 868.1);
    assert_int_equal(f->ul.recv_time.sec, 1765000000);
    assert_int_equal(f->ul.recv_time.nsec, 123000000);
    assert_int_equal(f->ul.rf_region, BI_REGION_EU868);
    assert_int_equal(f->ul.gw_cnt, 2);
    assert_string_equal(f->ul.fns_ul_token, "deadbeef");
    assert_int_equal(f->ul.fport, 1);
    assert_int_equal(f->ul.fcnt_up, 7);
    assert_true((f->ul.present & BI_UL_CONFIRMED) && !f->ul.confirmed);
    assert_int_equal(f->ul.gw_count, 2);
    assert_int_equal(f->ul.gw[0].id_len, 8);
    assert_true(f->ul.gw[0].id == 0x0102030405060708ull);
    assert_int_equal(f->ul.gw[0].rssi, -97);
    assert_true(f->ul.gw[0].snr == 7.25);
    assert_true(f->ul.gw[0].lat == 52.375 && f->ul.gw[0].lon == 4.875);
    assert_string_equal(f->ul.gw[0].ul_token, "0a0b0c");
    assert_true(f->ul.gw[0].dl_allowed);
    assert_int_equal(f->ul.gw[0].fine_recv_time, 123456789);
    assert_int_equal(f->ul.gw[0].rf_region, BI_REGION_EU868);
    assert_int_equal(f->ul.gw[1].id_len, 4);
    assert_int_equal(f->ul.gw[1].id, 0xa0b0c0d0);
    assert_true((f->ul.gw[1].present & BI_GW_DL_ALLOWED) && !f->ul.gw[1].dl_allowed);
    assert_false(f->ul.gw[1].present & (BI_GW_RSSI | BI_GW_UL_TOKEN));
    bi_msg_free(r);
    bi_msg_free(m);
}

static void test_downlink_fields(void **state)
{
    (void)state;
    bi_msg_t *m = NULL;
    assert_int_equal(bi_msg_new(BI_MT_XMIT_DATA_REQ, BI_VERSION_1_0, HOME, FWD, 9, &m), RH_OK);
    static const uint8_t phy[] = {0x60, 0x34, 0x12, 0x01, 0x26, 0x00, 0x01, 0x00, 0x01, 0x02,
                                  0x03, 0x04};
    bi_gwinfo_t gw[1] = {{0}};
    gw[0].present = BI_GW_UL_TOKEN;
    gw[0].ul_token = "00112233445566778899";
    bi_dlmeta_t dl = {0};
    dl.present = BI_DL_DL_FREQ1 | BI_DL_DL_FREQ2 | BI_DL_DATA_RATE1 | BI_DL_DATA_RATE2 |
                 BI_DL_RX_DELAY1 | BI_DL_CLASS_MODE | BI_DL_FNS_UL_TOKEN | BI_DL_GW_INFO |
                 BI_DL_HI_PRIORITY;
    dl.dl_freq1 = 868300000 / 1e6;
    dl.dl_freq2 = 869525000 / 1e6;
    dl.data_rate1 = 5;
    dl.data_rate2 = 0;
    dl.rx_delay1 = 5;
    dl.class_mode = 'A';
    dl.fns_ul_token = "cafe";
    dl.gw = gw;
    dl.gw_count = 1;
    dl.hi_priority = true;
    bi_error_t err;
    assert_int_equal(bi_msg_set_downlink(m, phy, sizeof phy, &dl, &err), RH_OK);
    char *text = NULL;
    bi_msg_t *r = reread(m, &text);
    assert_non_null(strstr(text, "\"DLFreq1\":868.3,"));
    assert_non_null(strstr(text, "\"DLFreq2\":869.525,"));
    bi_buf_free(text);
    const bi_fields_t *f = bi_msg_fields(r);
    assert_memory_equal(f->phy_payload, phy, sizeof phy);
    assert_true(f->dl.dl_freq1 == 868.3 && f->dl.dl_freq2 == 869.525);
    assert_int_equal(f->dl.data_rate1, 5);
    assert_true((f->dl.present & BI_DL_DATA_RATE2) && f->dl.data_rate2 == 0);
    assert_int_equal(f->dl.rx_delay1, 5);
    assert_int_equal(f->dl.class_mode, 'A');
    assert_string_equal(f->dl.fns_ul_token, "cafe");
    assert_int_equal(f->dl.gw_count, 1);
    assert_string_equal(f->dl.gw[0].ul_token, "00112233445566778899");
    assert_true(f->dl.hi_priority);
    bi_msg_free(r);
    bi_msg_free(m);
}

/* a downlink in an answer: PRStartAns with PHYPayload + DLMetaData (join-accept) */
static void test_answer_downlink(void **state)
{
    (void)state;
    bi_msg_t *m = NULL;
    assert_int_equal(bi_msg_new(BI_MT_PR_START_ANS, BI_VERSION_1_0, HOME, FWD, 9, &m), RH_OK);
    assert_int_equal(bi_msg_set_result(m, BI_RC_SUCCESS, NULL), RH_OK);
    uint8_t ja[17] = {0x20};
    bi_dlmeta_t dl = {0};
    dl.present = BI_DL_DL_FREQ1 | BI_DL_RX_DELAY1 | BI_DL_CLASS_MODE;
    dl.dl_freq1 = 868.1;
    dl.rx_delay1 = 5;
    dl.class_mode = 'A';
    assert_int_equal(bi_msg_set_downlink(m, ja, sizeof ja, &dl, NULL), RH_OK);
    bi_msg_t *r = reread(m, NULL);
    assert_int_equal(bi_msg_fields(r)->phy_payload_len, 17);
    assert_true(bi_msg_fields(r)->present & BI_F_DL_META);
    bi_msg_free(r);
    bi_msg_free(m);
}

static void test_refusals(void **state)
{
    (void)state;
    bi_msg_t *m = NULL;
    assert_int_equal(bi_msg_new(BI_MT_XMIT_DATA_REQ, BI_VERSION_1_0, HOME, FWD, 9, &m), RH_OK);
    uint8_t big[256] = {0x60};
    bi_dlmeta_t dl = {0};
    dl.present = BI_DL_DL_FREQ1;
    dl.dl_freq1 = 868.1;
    assert_int_equal(bi_msg_set_downlink(m, big, 256, &dl, NULL), RH_ESIZE);
    assert_int_equal(bi_msg_set_downlink(m, big, 0, &dl, NULL), RH_ESIZE);
    bi_msg_free(m);
    /* DLMetaData without a frequency: the decoder's rule, naming the field */
    assert_int_equal(bi_msg_new(BI_MT_XMIT_DATA_REQ, BI_VERSION_1_0, HOME, FWD, 9, &m), RH_OK);
    dl.present = BI_DL_RX_DELAY1;
    dl.rx_delay1 = 1;
    bi_error_t err;
    assert_int_not_equal(bi_msg_set_downlink(m, big, 12, &dl, &err), RH_OK);
    assert_non_null(strstr(err.description, "DLMetaData"));
    bi_msg_free(m);
    /* out of range: RXDelay1 16 */
    assert_int_equal(bi_msg_new(BI_MT_XMIT_DATA_REQ, BI_VERSION_1_0, HOME, FWD, 9, &m), RH_OK);
    dl.present = BI_DL_RX_DELAY1 | BI_DL_DL_FREQ1;
    dl.rx_delay1 = 16;
    assert_int_not_equal(bi_msg_set_downlink(m, big, 12, &dl, &err), RH_OK);
    assert_non_null(strstr(err.description, "RXDelay1"));
    bi_msg_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uplink_fields),
        cmocka_unit_test(test_downlink_fields),
        cmocka_unit_test(test_answer_downlink),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
