/* Unit tests for the simulator's downlink verdicts (tools/common/sim_dev sim_dl_check: RX1/RX2
 * tmst for data and join-accepts, frequency, data rate, polarity, lateness) and for the shared
 * configuration code (tools/common/devcfg device lists and generation, tools/common/ns_config). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devcfg.h"
#include "ns_config.h"
#include "rh_test.h"
#include "sim_dev.h"

static gwmp_txpk_t txpk(uint32_t tmst, uint32_t freq, uint8_t sf)
{
    gwmp_txpk_t t;
    memset(&t, 0, sizeof t);
    t.tmst = tmst;
    t.freq_hz = freq;
    t.sf = sf;
    t.bw_khz = 125;
    t.ipol = true;
    return t;
}

static void test_dl_verdicts(void **state)
{
    (void)state;
    const uint32_t ul = 0xFFF00000u; /* RX windows wrap around 2^32 */
    int w;
    char why[96];
    gwmp_txpk_t t = txpk(ul + 1000000u, 868300000u, 7);
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul + 100000u, &w, why),
                     SIM_DL_ON_TIME);
    assert_int_equal(w, 1);
    t = txpk(ul + 2000000u, 869525000u, 12);
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul + 100000u, &w, why),
                     SIM_DL_ON_TIME);
    assert_int_equal(w, 2);
    t = txpk(ul + 5000000u, 868100000u, 9);
    assert_int_equal(sim_dl_check(REGION_EU868, true, ul, 868100000u, 3, &t, ul, &w, why),
                     SIM_DL_ON_TIME);
    assert_int_equal(w, 1);
    t = txpk(ul + 6000000u, 869525000u, 12);
    assert_int_equal(sim_dl_check(REGION_EU868, true, ul, 868100000u, 3, &t, ul, &w, why),
                     SIM_DL_ON_TIME);
    assert_int_equal(w, 2);
    /* A data delay used for a join-accept, and the reverse, are wrong. */
    t = txpk(ul + 1000000u, 868100000u, 9);
    assert_int_equal(sim_dl_check(REGION_EU868, true, ul, 868100000u, 3, &t, ul, &w, why), SIM_DL_WRONG);
    assert_non_null(strstr(why, "tmst"));
    t = txpk(ul + 5000000u, 868100000u, 9);
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868100000u, 3, &t, ul, &w, why), SIM_DL_WRONG);
    /* Wrong frequency, wrong data rate, no inverted polarity, immediate. */
    t = txpk(ul + 1000000u, 868500000u, 7);
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul, &w, why), SIM_DL_WRONG);
    assert_non_null(strstr(why, "frequency"));
    t = txpk(ul + 1000000u, 868300000u, 8);
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul, &w, why), SIM_DL_WRONG);
    assert_non_null(strstr(why, "data rate"));
    t = txpk(ul + 2000000u, 869525000u, 12);
    t.ipol = false;
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul, &w, why), SIM_DL_WRONG);
    t.ipol = true;
    t.imme = true;
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul, &w, why), SIM_DL_WRONG);
    /* Right window, but the PULL_RESP came at or after its tmst. */
    t = txpk(ul + 1000000u, 868300000u, 7);
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul + 1000000u, &w, why),
                     SIM_DL_LATE);
    assert_int_equal(w, 1);
    assert_int_equal(sim_dl_check(REGION_EU868, false, ul, 868300000u, 5, &t, ul + 1500000u, &w, why),
                     SIM_DL_LATE);
    /* US915: RX1 on the 500 kHz downlink channel. */
    t = txpk(ul + 1000000u, 923900000u, 7);
    t.bw_khz = 500;
    assert_int_equal(sim_dl_check(REGION_US915, false, ul, 904100000u, 3, &t, ul, &w, why), SIM_DL_ON_TIME);
}

static void test_devcfg(void **state)
{
    (void)state;
    const char *js =
        "{\"devices\":[{\"name\":\"a\",\"dev_eui\":\"0x0102030405060708\",\"dev_addr\":\"26000001\","
        "\"nwk_s_key\":\"000102030405060708090A0B0C0D0E0F\",\"app_s_key\":\"000102030405060708090a0b0c0d0e0f\","
        "\"fcnt_up\":5},"
        "{\"dev_eui\":\"0102030405060709\",\"join_eui\":\"70b3d57ed0000000\","
        "\"app_key\":\"00112233445566778899aabbccddeeff\",\"mac_version\":\"1.0.3\"}],"
        "\"generate\":{\"count\":3,\"activation\":\"abp\",\"dev_eui_start\":\"00000000000000f0\","
        "\"dev_addr_start\":\"26000100\",\"seed\":\"s\"}}";
    cJSON *o = cJSON_Parse(js);
    devcfg_t *d, *d2;
    size_t n, n2;
    rh_diag_t diag;
    assert_int_equal(devcfg_load(cJSON_GetObjectItem(o, "devices"), cJSON_GetObjectItem(o, "generate"),
                                 NULL, &d, &n, &diag), RH_OK);
    assert_int_equal(n, 5);
    assert_string_equal(d[0].name, "a");
    assert_false(d[0].otaa);
    assert_int_equal(d[0].fcnt_up, 5);
    assert_int_equal(d[0].nwk_s_key[15], 0x0F);
    assert_true(d[1].otaa);
    assert_string_equal(d[1].name, "0102030405060709");
    assert_true(d[4].dev_eui == 0xF2);
    assert_int_equal(d[4].dev_addr, 0x26000102);
    /* Generation is deterministic and keys differ per device. */
    assert_int_equal(devcfg_load(NULL, cJSON_GetObjectItem(o, "generate"), NULL, &d2, &n2, &diag), RH_OK);
    assert_int_equal(n2, 3);
    assert_memory_equal(d2[0].nwk_s_key, d[2].nwk_s_key, 16);
    assert_memory_not_equal(d2[0].nwk_s_key, d2[1].nwk_s_key, 16);
    assert_memory_not_equal(d2[0].nwk_s_key, d2[0].app_s_key, 16);
    /* Round trip through JSON. */
    cJSON *arr = devcfg_to_json(d, n);
    devcfg_t *d3;
    size_t n3;
    assert_int_equal(devcfg_load(arr, NULL, NULL, &d3, &n3, &diag), RH_OK);
    assert_int_equal(n3, n);
    assert_memory_equal(d3[3].app_s_key, d[3].app_s_key, 16);
    assert_memory_equal(d3[1].app_key, d[1].app_key, 16);
    cJSON_Delete(arr);
    free(d);
    free(d2);
    free(d3);
    cJSON_Delete(o);

    static const struct {
        const char *json, *field;
    } bad[] = {
        {"[{\"dev_eui\":\"01\"}]", "devices[0].dev_eui"},
        {"[{\"join_eui\":\"0102030405060708\"}]", "devices[0].dev_eui"},
        {"[{\"dev_eui\":\"0102030405060708\"}]", "devices[0]: give either"},
        {"[{\"dev_eui\":\"0102030405060708\",\"join_eui\":\"0102030405060708\"}]", "devices[0].app_key"},
        {"[{\"dev_eui\":\"0102030405060708\",\"dev_addr\":\"01020304\",\"nwk_s_key\":"
         "\"000102030405060708090a0b0c0d0e0f\"}]", "devices[0].app_s_key"},
        {"[{\"dev_eui\":\"0102030405060708\",\"join_eui\":\"0102030405060708\",\"app_key\":\"00\"}]",
         "devices[0].app_key"},
        {"[{\"dev_eui\":\"0102030405060708\",\"join_eui\":\"0102030405060708\",\"app_key\":"
         "\"000102030405060708090a0b0c0d0e0f\",\"colour\":1}]", "devices[0].colour"},
        {"[{\"dev_eui\":\"0102030405060708\",\"join_eui\":\"0102030405060708\",\"app_key\":"
         "\"000102030405060708090a0b0c0d0e0f\",\"mac_version\":\"1.1.0\"}]", "devices[0].mac_version"},
        {"[{\"dev_eui\":\"0102030405060708\",\"join_eui\":\"0102030405060708\",\"app_key\":"
         "\"000102030405060708090a0b0c0d0e0f\"},{\"dev_eui\":\"0102030405060708\",\"join_eui\":"
         "\"0102030405060708\",\"app_key\":\"000102030405060708090a0b0c0d0e0f\"}]", "devices: DevEUI"},
        {"{\"a\":1}", "devices: expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i].json);
        assert_non_null(j);
        int rc = devcfg_load(j, NULL, NULL, &d, &n, &diag);
        if (rc != RH_EINVAL || strncmp(diag.text, bad[i].field, strlen(bad[i].field)) != 0)
            fail_msg("case %zu: rc %d diag \"%s\", expected %s", i, rc, diag.text, bad[i].field);
        cJSON_Delete(j);
    }
    cJSON *g = cJSON_Parse("{\"count\":2,\"activation\":\"otaa\",\"dev_eui_start\":\"0000000000000001\"}");
    assert_int_equal(devcfg_load(NULL, g, NULL, &d, &n, &diag), RH_EINVAL);
    assert_non_null(strstr(diag.text, "generate.join_eui"));
    cJSON_Delete(g);
}

static void test_ns_config(void **state)
{
    (void)state;
    const char *js =
        "{\"net_id\":\"000013\",\"region\":\"EU868\",\"gwmp\":{\"port\":0},"
        "\"ts002\":{\"address\":\"127.0.0.1\",\"port\":0,\"authorization\":\"Bearer x\"},"
        "\"hub\":{\"url\":\"http://127.0.0.1:1/\",\"async\":true,\"api_key\":\"k\",\"protocol\":\"1.1\","
        "\"receiver_id\":\"C00053\"},"
        "\"devices\":[{\"dev_eui\":\"0102030405060709\",\"join_eui\":\"70b3d57ed0000000\","
        "\"app_key\":\"00112233445566778899aabbccddeeff\"}],\"output\":\"up.jsonl\","
        "\"dedup_window_ms\":50}";
    cJSON *o = cJSON_Parse(js);
    ns_config_t c;
    rh_diag_t d;
    assert_int_equal(ns_config_from_json(o, "/tmp/x", &c, &d), RH_OK);
    assert_int_equal(c.net_id, 0x13);
    assert_int_equal(c.core.n_blocks, 1); /* the NetID's own prefix */
    assert_int_equal(c.core.blocks[0].value, 0x26000000u);
    assert_int_equal(c.core.blocks[0].len, 7);
    assert_int_equal(c.core.n_join_euis, 1); /* from the OTAA device */
    assert_true(c.core.join_euis[0].value == 0x70b3d57ed0000000ull);
    assert_int_equal(c.core.rx2_dr, 0);
    assert_true(c.has_hub && c.hub_async);
    assert_int_equal(c.hub_protocol, 1);
    assert_int_equal(c.hub_receiver_id, 0xC00053);
    assert_int_equal(c.hub_timeout_ms, 3000);
    assert_string_equal(c.ts002_authorization, "Bearer x");
    assert_string_equal(c.output, "/tmp/x/up.jsonl");
    assert_string_equal(c.gwmp_address, "127.0.0.1");
    assert_int_equal(c.gwmp_port, 0);
    assert_int_equal(c.dedup_window_ms, 50);
    assert_int_equal(c.tx_power, -1);
    assert_int_equal(c.n_devs, 1);
    ns_config_fini(&c);
    ns_config_fini(NULL);
    cJSON_Delete(o);

    static const struct {
        const char *json, *field;
    } bad[] = {
        {"{}", "config.net_id"},
        {"{\"net_id\":\"13\"}", "config.net_id"},
        {"{\"net_id\":\"000013\",\"colour\":1}", "config.colour"},
        {"{\"net_id\":\"000013\",\"region\":\"AS923\"}", "config.region"},
        {"{\"net_id\":\"000013\",\"dev_addr_blocks\":[\"26000000/77\"]}", "config.dev_addr_blocks[0]"},
        {"{\"net_id\":\"000013\",\"dev_addr_blocks\":[]}", "config.dev_addr_blocks"},
        {"{\"net_id\":\"000013\",\"gwmp\":{\"port\":70000}}", "config.gwmp.port"},
        {"{\"net_id\":\"000013\",\"gwmp\":{\"authorization\":\"x\"}}", "config.gwmp.authorization"},
        {"{\"net_id\":\"000013\",\"hub\":{\"url\":\"ftp://x\"}}", "config.hub.url"},
        {"{\"net_id\":\"000013\",\"hub\":{\"url\":\"http://x/\",\"protocol\":\"2.0\"}}", "config.hub.protocol"},
        {"{\"net_id\":\"000013\",\"hub\":{\"url\":\"http://x/\",\"tls\":1}}", "config.hub.tls"},
        {"{\"net_id\":\"000013\",\"log_level\":\"loud\"}", "config.log_level"},
        {"{\"net_id\":\"000013\",\"join_euis\":[\"xyz\"]}", "config.join_euis[0]"},
        {"{\"net_id\":\"000013\",\"rx1_dr_offset\":6}", "config.rx1_dr_offset"},
        {"{\"net_id\":\"000013\",\"devices\":[{\"dev_eui\":\"x\"}]}", "devices[0].dev_eui"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *j = cJSON_Parse(bad[i].json);
        assert_non_null(j);
        int rc = ns_config_from_json(j, NULL, &c, &d);
        if (rc != RH_EINVAL || strncmp(d.text, bad[i].field, strlen(bad[i].field)) != 0)
            fail_msg("case %zu: rc %d diag \"%s\", expected %s", i, rc, d.text, bad[i].field);
        cJSON_Delete(j);
    }
    assert_int_equal(ns_config_load("/nonexistent/roamns.json", &c, &d), RH_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dl_verdicts),
        cmocka_unit_test(test_devcfg),
        cmocka_unit_test(test_ns_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
