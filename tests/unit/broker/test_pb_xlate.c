/* Unit tests for broker/pb_xlate: Packet Broker v3 <-> TS002 metadata field by field — regions
 * both ways, RP002 data rate tables (EU868, US915 uplink and downlink), Hz <-> MHz, the best
 * antenna's RSSI/SNR, location, GWInfo.ID from an EUI or a hashed ID, tokens, RX windows, class B
 * refused naming the field, RX1 delay defaults, priorities, and the delivery report -> Result
 * mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "pb_bridge_ts002.h"
#include "pb_xlate.h"

static void test_regions_and_rates(void **state)
{
    (void)state;
    assert_int_equal(pb_xlate_region_to_bi(ORG__PACKETBROKER__V3__REGION__EU_863_870),
                     BI_REGION_EU868);
    assert_int_equal(pb_xlate_region_to_bi(ORG__PACKETBROKER__V3__REGION__CN_470_510_20_B),
                     BI_REGION_CN470);
    assert_int_equal(pb_xlate_region_from_bi(BI_REGION_AS923_2),
                     ORG__PACKETBROKER__V3__REGION__AS_923_2);
    assert_int_equal(pb_xlate_region_from_bi(BI_REGION_UNKNOWN),
                     ORG__PACKETBROKER__V3__REGION__UNKNOWN_REGION);
    uint32_t dr = 99, sf = 0, bw = 0;
    assert_int_equal(pb_xlate_dr_index(BI_REGION_EU868, true, 7, 125000, &dr), RH_OK);
    assert_int_equal(dr, 5);
    assert_int_equal(pb_xlate_dr_index(BI_REGION_EU868, true, 12, 125000, &dr), RH_OK);
    assert_int_equal(dr, 0);
    assert_int_equal(pb_xlate_dr_index(BI_REGION_US915, true, 10, 125000, &dr), RH_OK);
    assert_int_equal(dr, 0);
    assert_int_equal(pb_xlate_dr_index(BI_REGION_US915, false, 7, 500000, &dr), RH_OK);
    assert_int_equal(dr, 13);
    assert_int_equal(pb_xlate_dr_index(BI_REGION_US915, true, 12, 125000, &dr), RH_EINVAL);
    assert_int_equal(pb_xlate_dr_index(BI_REGION_UNKNOWN, true, 7, 125000, &dr), RH_EINVAL);
    assert_int_equal(pb_xlate_dr_lora(BI_REGION_US915, false, 8, &sf, &bw), RH_OK);
    assert_int_equal(sf, 12);
    assert_int_equal(bw, 500000);
    assert_int_equal(pb_xlate_dr_lora(BI_REGION_EU868, true, 6, &sf, &bw), RH_OK);
    assert_int_equal(bw, 250000);
}

static void test_ulmeta(void **state)
{
    (void)state;
    Org__Packetbroker__V3__UplinkMessage um = ORG__PACKETBROKER__V3__UPLINK_MESSAGE__INIT;
    Org__Packetbroker__V3__DataRate dr = ORG__PACKETBROKER__V3__DATA_RATE__INIT;
    Org__Packetbroker__V3__LoRaDataRate lora = ORG__PACKETBROKER__V3__LO_RA_DATA_RATE__INIT;
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    Org__Packetbroker__V3__GatewayIdentifier gid = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__INIT;
    um.gateway_region = ORG__PACKETBROKER__V3__REGION__EU_863_870;
    um.frequency = 867500000;
    bi_ulmeta_t ul;
    bi_gwinfo_t gw;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_xlate_ulmeta(&um, NULL, &ul, &gw, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "message.data_rate"));
    lora.spreading_factor = 9;
    lora.bandwidth = 125000;
    dr.modulation_case = ORG__PACKETBROKER__V3__DATA_RATE__MODULATION_LORA;
    dr.lora = &lora;
    um.data_rate = &dr;
    ts.seconds = 1765000000;
    ts.nanos = 5000;
    um.forwarder_receive_time = &ts;
    gid.id_case = ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_PLAIN;
    gid.plain = "abc"; /* SHA-256("abc") = ba7816bf 8f01cfea ... */
    um.gateway_id = &gid;
    assert_int_equal(pb_xlate_ulmeta(&um, "c0ffee", &ul, &gw, &d), RH_OK);
    assert_int_equal(ul.data_rate, 3);
    assert_true(ul.ul_freq == 867.5);
    assert_int_equal(ul.rf_region, BI_REGION_EU868);
    assert_int_equal(ul.recv_time.sec, 1765000000); /* forwarder time when no gateway time */
    assert_int_equal(ul.recv_time.nsec, 5000);
    assert_string_equal(ul.fns_ul_token, "c0ffee");
    assert_int_equal(ul.gw_count, 1);
    assert_ptr_equal(ul.gw, &gw);
    assert_true(gw.present & BI_GW_ID);
    assert_int_equal(gw.id_len, 8);
    assert_true(gw.id == 0xba7816bf8f01cfeaull);
    assert_string_equal(gw.ul_token, "c0ffee");
    assert_true(gw.dl_allowed);
    assert_false(gw.present & (BI_GW_RSSI | BI_GW_LAT)); /* no metadata: none invented */
    /* no token: no downlink through this gateway */
    assert_int_equal(pb_xlate_ulmeta(&um, NULL, &ul, &gw, &d), RH_OK);
    assert_false(gw.dl_allowed);
    assert_false(ul.present & BI_UL_FNS_UL_TOKEN);
    /* US915 SF12 is no uplink rate */
    um.gateway_region = ORG__PACKETBROKER__V3__REGION__US_902_928;
    lora.spreading_factor = 12;
    assert_int_equal(pb_xlate_ulmeta(&um, NULL, &ul, &gw, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "US915"));
}

static void test_downlink_both_ways(void **state)
{
    (void)state;
    bi_dlmeta_t dl = {0};
    dl.present = BI_DL_DL_FREQ1 | BI_DL_DATA_RATE1 | BI_DL_DL_FREQ2 | BI_DL_DATA_RATE2 |
                 BI_DL_RX_DELAY1 | BI_DL_CLASS_MODE | BI_DL_HI_PRIORITY;
    dl.dl_freq1 = 923.3;
    dl.data_rate1 = 10;
    dl.dl_freq2 = 923.3;
    dl.data_rate2 = 8;
    dl.rx_delay1 = 5;
    dl.class_mode = 'A';
    dl.hi_priority = true;
    uint8_t phy[12] = {0x60};
    pb_xlate_dl_t x;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_xlate_downlink(phy, sizeof phy, &dl, BI_REGION_US915, &x, &d), RH_OK);
    assert_int_equal(x.dm.rx1->frequency, 923300000);
    assert_int_equal(x.dm.rx1->data_rate->lora->spreading_factor, 10);
    assert_int_equal(x.dm.rx1->data_rate->lora->bandwidth, 500000);
    assert_int_equal(x.dm.rx2->data_rate->lora->spreading_factor, 12);
    assert_int_equal(x.dm.rx1_delay->seconds, 5);
    assert_int_equal(x.dm.class_, ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_A);
    assert_int_equal(x.dm.priority, ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PRIORITY__HIGHEST);
    assert_int_equal(x.dm.region, ORG__PACKETBROKER__V3__REGION__US_902_928);
    assert_int_equal(x.dm.phy_payload.len, sizeof phy);
    /* and back: the same TS002 values */
    bi_dlmeta_t back;
    assert_int_equal(pb_xlate_dlmeta(&x.dm, BI_REGION_US915, &back, &d), RH_OK);
    assert_true(back.dl_freq1 == 923.3 && back.dl_freq2 == 923.3);
    assert_int_equal(back.data_rate1, 10);
    assert_int_equal(back.data_rate2, 8);
    assert_int_equal(back.rx_delay1, 5);
    assert_int_equal(back.class_mode, 'A');
    assert_true(back.hi_priority);
    /* absent RX1 delay: 1 s both ways; class C; NORMAL priority */
    x.dm.rx1_delay = NULL;
    x.dm.class_ = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_C;
    x.dm.priority = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PRIORITY__NORMAL;
    assert_int_equal(pb_xlate_dlmeta(&x.dm, BI_REGION_US915, &back, &d), RH_OK);
    assert_int_equal(back.rx_delay1, 1);
    assert_int_equal(back.class_mode, 'C');
    assert_false(back.present & BI_DL_HI_PRIORITY);
    /* class B refused both ways, naming the field */
    x.dm.class_ = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_B;
    assert_int_equal(pb_xlate_dlmeta(&x.dm, BI_REGION_US915, &back, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "message.class"));
    dl.class_mode = 'B';
    assert_int_equal(pb_xlate_downlink(phy, sizeof phy, &dl, BI_REGION_US915, &x, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "DLMetaData.ClassMode"));
    /* a data rate the region lacks */
    dl.class_mode = 'A';
    dl.data_rate1 = 3;
    assert_int_equal(pb_xlate_downlink(phy, sizeof phy, &dl, BI_REGION_US915, &x, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "DataRate1"));
}

static void test_uplink_from_ts002(void **state)
{
    (void)state;
    bi_gwinfo_t gw[2] = {{0}};
    gw[0].present = BI_GW_ID | BI_GW_RSSI | BI_GW_SNR;
    gw[0].id = 0x1111;
    gw[0].rssi = -120;
    gw[0].snr = -10;
    gw[1].present = BI_GW_ID | BI_GW_RSSI | BI_GW_SNR | BI_GW_LAT | BI_GW_LON;
    gw[1].id = 0x2222;
    gw[1].rssi = -80;
    gw[1].snr = 9.5;
    gw[1].lat = 1.5;
    gw[1].lon = -2.5;
    bi_ulmeta_t ul = {0};
    ul.present = BI_UL_DATA_RATE | BI_UL_UL_FREQ | BI_UL_RF_REGION | BI_UL_RECV_TIME | BI_UL_GW_INFO;
    ul.data_rate = 5;
    ul.ul_freq = 868.3;
    ul.rf_region = BI_REGION_EU868;
    ul.recv_time.sec = 1765000000;
    ul.gw = gw;
    ul.gw_count = 2;
    int best = pb_xlate_best_gw(&ul);
    assert_int_equal(best, 1);
    uint8_t phy[12] = {0x40};
    pb_xlate_up_t o;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_xlate_uplink(phy, sizeof phy, &ul, best, &o, &d), RH_OK);
    assert_int_equal(o.um.frequency, 868300000);
    assert_int_equal(o.um.data_rate->lora->spreading_factor, 7);
    assert_int_equal(o.um.data_rate->lora->bandwidth, 125000);
    assert_int_equal(o.um.gateway_region, ORG__PACKETBROKER__V3__REGION__EU_863_870);
    assert_int_equal(o.um.gateway_receive_time->seconds, 1765000000);
    assert_int_equal(o.um.gateway_id->eui->value, 0x2222);
    assert_true(o.um.gateway_metadata->plain_signal_quality->terrestrial->antennas[0]->value->snr == 9.5f);
    assert_true(o.um.gateway_metadata->plain_localization->terrestrial->antennas[0]->location->longitude == -2.5);
    /* the packed message decodes as Packet Broker's */
    size_t n = protobuf_c_message_get_packed_size(&o.um.base);
    uint8_t buf[512];
    assert_true(n < sizeof buf);
    protobuf_c_message_pack(&o.um.base, buf);
    Org__Packetbroker__V3__UplinkMessage *u = org__packetbroker__v3__uplink_message__unpack(NULL, n, buf);
    assert_non_null(u);
    assert_int_equal(u->phy_payload->plain.len, sizeof phy);
    org__packetbroker__v3__uplink_message__free_unpacked(u, NULL);
    ul.present &= ~BI_UL_RF_REGION;
    assert_int_equal(pb_xlate_uplink(phy, sizeof phy, &ul, best, &o, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "ULMetaData.RFRegion"));
}

/* a TS002 forwarder's own tokens come back exactly from the sealed token's plaintext */
static void test_tokens_restored(void **state)
{
    (void)state;
    Roamhub__V1__BridgeToken bt = ROAMHUB__V1__BRIDGE_TOKEN__INIT;
    char *uls[2] = {"0A0B0C0D", "1a1b"};
    bt.region = BI_REGION_EU868;
    bt.has_fns_ul_token = true;
    bt.fns_ul_token = "";
    bt.n_gw_ul_tokens = 2;
    bt.gw_ul_tokens = uls;
    Org__Packetbroker__V3__DownlinkMessage dm = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE__INIT;
    Org__Packetbroker__V3__DownlinkMessage__RXSettings rx2 =
        ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE__RXSETTINGS__INIT;
    rx2.frequency = 869525000;
    dm.rx2 = &rx2;
    dm.class_ = ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_C;
    bi_dlmeta_t dl;
    bi_gwinfo_t gw[4];
    rh_diag_t d = {{0}};
    assert_int_equal(pb_bridge_ts002_dlmeta(&bt, &dm, &dl, gw, 4, &d), RH_OK);
    assert_true(dl.present & BI_DL_FNS_UL_TOKEN);
    assert_string_equal(dl.fns_ul_token, ""); /* present though empty: kept */
    assert_int_equal(dl.gw_count, 2);
    assert_string_equal(dl.gw[0].ul_token, "0A0B0C0D"); /* case and all, exactly */
    assert_string_equal(dl.gw[1].ul_token, "1a1b");
    assert_true(dl.dl_freq2 == 869.525);
    assert_false(dl.present & BI_DL_DL_FREQ1);
    assert_int_equal(dl.class_mode, 'C');
    assert_int_equal(dl.rx_delay1, 1);
    bt.has_fns_ul_token = false;
    bt.n_gw_ul_tokens = 0;
    assert_int_equal(pb_bridge_ts002_dlmeta(&bt, &dm, &dl, gw, 4, &d), RH_OK);
    assert_false(dl.present & (BI_DL_FNS_UL_TOKEN | BI_DL_GW_INFO));
}

static void test_report_result(void **state)
{
    (void)state;
    assert_int_equal(pb_xlate_report_result(false, 0, false), BI_RC_SUCCESS);
    assert_int_equal(pb_xlate_report_result(true, 0, false), BI_RC_OTHER); /* UNKNOWN_ERROR = 0 */
    assert_int_equal(pb_xlate_report_result(true, 2, false), BI_RC_UNKNOWN_DEV_ADDR);
    assert_int_equal(pb_xlate_report_result(true, 2, true), BI_RC_UNKNOWN_DEV_EUI);
    assert_int_equal(pb_xlate_report_result(true, 5, false), BI_RC_SUCCESS);
    assert_int_equal(pb_xlate_report_result(true, 1, false), BI_RC_NO_ROAMING_AGREEMENT);
    assert_int_equal(pb_xlate_report_result(true, 4, false), BI_RC_UNKNOWN_RECEIVER);
    assert_int_equal(pb_xlate_report_result(true, 3, false), BI_RC_OTHER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regions_and_rates), cmocka_unit_test(test_ulmeta),
        cmocka_unit_test(test_downlink_both_ways), cmocka_unit_test(test_uplink_from_ts002),
        cmocka_unit_test(test_tokens_restored), cmocka_unit_test(test_report_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
