/* Unit tests for tools/common/gwmp: datagram framing of every identifier, malformed datagrams,
 * rxpk parsing (SX1301 and SX1302 rsig forms, skipped FSK / bad CRC entries, malformed fields
 * named in the diagnostic), txpk build -> parse round trip, TX_ACK, datr and base64 (OpenSSL). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gwmp.h"
#include "rh_test.h"

static void test_framing(void **state)
{
    (void)state;
    uint8_t buf[256];
    gwmp_pkt_t p;
    rh_diag_t d;
    const char *js = "{\"rxpk\":[]}";
    size_t n = gwmp_write(buf, sizeof buf, GWMP_PUSH_DATA, 0xABCD, 0x0102030405060708ull, js,
                          strlen(js));
    assert_int_equal(n, 12 + strlen(js));
    assert_int_equal(buf[0], 2);
    assert_int_equal(buf[1], 0xAB);
    assert_int_equal(buf[2], 0xCD);
    assert_int_equal(buf[3], GWMP_PUSH_DATA);
    assert_int_equal(buf[4], 0x01);
    assert_int_equal(buf[11], 0x08);
    assert_int_equal(gwmp_parse(buf, n, &p, &d), RH_OK);
    assert_int_equal(p.token, 0xABCD);
    assert_int_equal(p.ident, GWMP_PUSH_DATA);
    assert_true(p.has_eui);
    assert_true(p.gw_eui == 0x0102030405060708ull);
    assert_int_equal(p.json_len, strlen(js));
    assert_memory_equal(p.json, js, strlen(js));

    /* PULL_DATA: EUI, no JSON. ACKs: 4 bytes. PULL_RESP: JSON right after the header. */
    n = gwmp_write(buf, sizeof buf, GWMP_PULL_DATA, 7, 0xFFull, NULL, 0);
    assert_int_equal(n, 12);
    assert_int_equal(gwmp_parse(buf, n, &p, NULL), RH_OK);
    assert_true(p.gw_eui == 0xFF && p.json == NULL);
    n = gwmp_write(buf, sizeof buf, GWMP_PULL_ACK, 7, 0, NULL, 0);
    assert_int_equal(n, 4);
    assert_int_equal(gwmp_parse(buf, n, &p, NULL), RH_OK);
    assert_int_equal(p.ident, GWMP_PULL_ACK);
    assert_false(p.has_eui);
    n = gwmp_write(buf, sizeof buf, GWMP_PULL_RESP, 9, 0, "{}", 2);
    assert_int_equal(n, 6);
    assert_int_equal(gwmp_parse(buf, n, &p, NULL), RH_OK);
    assert_int_equal(p.json_len, 2);
    /* TX_ACK without JSON (older forwarders) and with. */
    n = gwmp_write(buf, sizeof buf, GWMP_TX_ACK, 9, 0x1122ull, NULL, 0);
    assert_int_equal(gwmp_parse(buf, n, &p, NULL), RH_OK);
    assert_null(p.json);
    /* Capacity too small. */
    assert_int_equal(gwmp_write(buf, 11, GWMP_PULL_DATA, 1, 1, NULL, 0), 0);
}

static void test_framing_errors(void **state)
{
    (void)state;
    gwmp_pkt_t p;
    rh_diag_t d;
    const uint8_t short3[] = {2, 0, 0};
    assert_int_equal(gwmp_parse(short3, sizeof short3, &p, &d), RH_ESIZE);
    assert_non_null(strstr(d.text, "GWMP header"));
    const uint8_t v3[] = {3, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, '{', '}'};
    assert_int_equal(gwmp_parse(v3, sizeof v3, &p, &d), RH_EVERSION);
    assert_non_null(strstr(d.text, "version"));
    const uint8_t push_short[] = {2, 0, 0, GWMP_PUSH_DATA, 1, 2, 3};
    assert_int_equal(gwmp_parse(push_short, sizeof push_short, &p, &d), RH_ESIZE);
    const uint8_t push_nojson[] = {2, 0, 0, GWMP_PUSH_DATA, 1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(gwmp_parse(push_nojson, sizeof push_nojson, &p, &d), RH_ESIZE);
    const uint8_t bad_ident[] = {2, 0, 0, 0x42};
    assert_int_equal(gwmp_parse(bad_ident, sizeof bad_ident, &p, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "identifier"));
    const uint8_t resp_empty[] = {2, 0, 0, GWMP_PULL_RESP};
    assert_int_equal(gwmp_parse(resp_empty, sizeof resp_empty, &p, &d), RH_ESIZE);
    /* Version 1 is accepted (same framing). */
    const uint8_t v1[] = {1, 0, 0, GWMP_PUSH_ACK};
    assert_int_equal(gwmp_parse(v1, sizeof v1, &p, NULL), RH_OK);
}

static void test_base64_datr(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n;
    char enc[32];
    const uint8_t in[] = {0x40, 0x01, 0x02, 0x03, 0x04};
    assert_int_equal(gwmp_b64_encode(in, sizeof in, enc), 8);
    assert_string_equal(enc, "QAECAwQ=");
    assert_int_equal(gwmp_b64_decode(enc, strlen(enc), out, sizeof out, &n), RH_OK);
    assert_int_equal(n, sizeof in);
    assert_memory_equal(out, in, sizeof in);
    /* Missing padding accepted; one and two pad characters; empty. */
    assert_int_equal(gwmp_b64_decode("QAECAwQ", 7, out, sizeof out, &n), RH_OK);
    assert_int_equal(n, 5);
    assert_int_equal(gwmp_b64_decode("QQ==", 4, out, sizeof out, &n), RH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(gwmp_b64_decode("", 0, out, sizeof out, &n), RH_OK);
    assert_int_equal(n, 0);
    assert_int_equal(gwmp_b64_decode("Q!==", 4, out, sizeof out, &n), RH_EINVAL);
    assert_int_equal(gwmp_b64_decode("QUFBQUFB", 8, out, 3, &n), RH_ERANGE);

    uint8_t sf;
    uint16_t bw;
    assert_int_equal(gwmp_datr_parse("SF7BW125", &sf, &bw), RH_OK);
    assert_int_equal(sf, 7);
    assert_int_equal(bw, 125);
    assert_int_equal(gwmp_datr_parse("SF12BW500", &sf, &bw), RH_OK);
    assert_int_equal(sf, 12);
    assert_int_equal(gwmp_datr_parse("SF13BW125", &sf, &bw), RH_EINVAL);
    assert_int_equal(gwmp_datr_parse("SF7BW126", &sf, &bw), RH_EINVAL);
    assert_int_equal(gwmp_datr_parse("SF7BW125x", &sf, &bw), RH_EINVAL);
    assert_int_equal(gwmp_datr_parse("50000", &sf, &bw), RH_EINVAL);
    char s[16];
    gwmp_datr_format(9, 250, s);
    assert_string_equal(s, "SF9BW250");
    assert_int_equal(gwmp_mhz_to_hz(868.1), 868100000u);
    assert_int_equal(gwmp_mhz_to_hz(869.525), 869525000u);
    assert_int_equal(gwmp_mhz_to_hz(-1), 0);
}

static void test_push_parse(void **state)
{
    (void)state;
    /* From Semtech PROTOCOL.TXT §4 (the FSK entry is skipped), plus an SX1302 rsig entry and
     * a bad-CRC entry. */
    const char *js =
        "{\"rxpk\":["
        "{\"time\":\"2013-03-31T16:21:17.528002Z\",\"tmst\":3512348611,\"chan\":2,\"rfch\":0,"
        "\"freq\":866.349812,\"stat\":1,\"modu\":\"LORA\",\"datr\":\"SF7BW125\",\"codr\":\"4/6\","
        "\"rssi\":-35,\"lsnr\":5.1,\"size\":32,"
        "\"data\":\"-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84\"},"
        "{\"time\":\"2013-03-31T16:21:17.530974Z\",\"tmst\":3512348514,\"chan\":9,\"rfch\":1,"
        "\"freq\":869.1,\"stat\":1,\"modu\":\"FSK\",\"datr\":50000,\"rssi\":-75,\"size\":16,"
        "\"data\":\"VEVTVF9QQUNLRVRfMTIzNA==\"},"
        "{\"tmst\":100,\"freq\":868.3,\"stat\":1,\"modu\":\"LORA\",\"datr\":\"SF9BW125\","
        "\"codr\":\"4/5\",\"size\":5,\"data\":\"QAECAwQ=\",\"rsig\":[{\"ant\":0,\"chan\":1,"
        "\"rssic\":-90,\"lsnr\":-3.5}]},"
        "{\"tmst\":101,\"freq\":868.3,\"stat\":-1,\"modu\":\"LORA\",\"datr\":\"SF9BW125\","
        "\"size\":1,\"data\":\"QQ==\"}"
        "],\"stat\":{\"lati\":46.24,\"long\":3.2523,\"alti\":145}}";
    gwmp_rxpk_t r[4];
    size_t n, skipped;
    bool has_loc;
    double lat, lon;
    rh_diag_t d;
    rh_diag_clear(&d);
    /* The first entry's base64 uses the URL alphabet ('-'), which is not RFC 4648 §4: refused
     * and named, the rest still parsed. */
    assert_int_equal(gwmp_push_parse((const uint8_t *)js, strlen(js), r, 4, &n, &skipped, &has_loc,
                                     &lat, &lon, &d), RH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(skipped, 3);
    assert_non_null(strstr(d.text, "rxpk[0].data"));
    assert_true(has_loc);
    assert_true(lat > 46.23 && lat < 46.25 && lon > 3.25 && lon < 3.26);
    assert_int_equal(r[0].tmst, 100);
    assert_int_equal(r[0].freq_hz, 868300000u);
    assert_int_equal(r[0].sf, 9);
    assert_int_equal(r[0].bw_khz, 125);
    assert_int_equal(r[0].rssi, -90);
    assert_true(r[0].lsnr < -3.4 && r[0].lsnr > -3.6);
    assert_int_equal(r[0].size, 5);
    assert_int_equal(r[0].data[0], 0x40);

    /* Not an object; rxpk not an array; no rxpk at all. */
    assert_int_equal(gwmp_push_parse((const uint8_t *)"[1]", 3, r, 4, &n, NULL, NULL, NULL, NULL, &d),
                     RH_EINVAL);
    assert_int_equal(gwmp_push_parse((const uint8_t *)"{\"rxpk\":1}", 10, r, 4, &n, NULL, NULL,
                                     NULL, NULL, &d), RH_EINVAL);
    const char *stat_only = "{\"stat\":{\"rxnb\":0}}";
    assert_int_equal(gwmp_push_parse((const uint8_t *)stat_only, strlen(stat_only), r, 4, &n, NULL,
                                     NULL, NULL, NULL, &d), RH_OK);
    assert_int_equal(n, 0);
}

static void test_rxpk_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"{\"freq\":868.1,\"datr\":\"SF7BW125\",\"data\":\"QQ==\"}", "rxpk.tmst"},
        {"{\"tmst\":-1,\"freq\":868.1,\"datr\":\"SF7BW125\",\"data\":\"QQ==\"}", "rxpk.tmst"},
        {"{\"tmst\":1,\"datr\":\"SF7BW125\",\"data\":\"QQ==\"}", "rxpk.freq"},
        {"{\"tmst\":1,\"freq\":868.1,\"datr\":\"SF7\",\"data\":\"QQ==\"}", "rxpk.datr"},
        {"{\"tmst\":1,\"freq\":868.1,\"datr\":7,\"data\":\"QQ==\"}", "rxpk.datr"},
        {"{\"tmst\":1,\"freq\":868.1,\"datr\":\"SF7BW125\"}", "rxpk.data"},
        {"{\"tmst\":1,\"freq\":868.1,\"datr\":\"SF7BW125\",\"data\":\"Q*==\"}", "rxpk.data"},
        {"{\"tmst\":1,\"freq\":868.1,\"datr\":\"SF7BW125\",\"data\":\"QQ==\",\"size\":2}", "rxpk.size"},
        {"{\"tmst\":1,\"freq\":868.1,\"datr\":\"SF7BW125\",\"data\":\"QQ==\",\"rssi\":\"x\"}", "rxpk.rssi"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *o = cJSON_Parse(cases[i].json);
        gwmp_rxpk_t r;
        rh_diag_t d;
        assert_non_null(o);
        assert_int_equal(gwmp_rxpk_from_json(o, &r, &d), RH_EINVAL);
        if (strncmp(d.text, cases[i].field, strlen(cases[i].field)) != 0)
            fail_msg("case %zu: diagnostic \"%s\" does not name %s", i, d.text, cases[i].field);
        cJSON_Delete(o);
    }
    /* 256 bytes of data are refused. */
    uint8_t big[256] = {0};
    char b64[400];
    gwmp_b64_encode(big, sizeof big, b64);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "tmst", 1);
    cJSON_AddNumberToObject(o, "freq", 868.1);
    cJSON_AddStringToObject(o, "datr", "SF7BW125");
    cJSON_AddStringToObject(o, "data", b64);
    gwmp_rxpk_t r;
    rh_diag_t d;
    assert_int_equal(gwmp_rxpk_from_json(o, &r, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "255"));
    cJSON_Delete(o);
}

static void test_rxpk_roundtrip(void **state)
{
    (void)state;
    gwmp_rxpk_t a = {.tmst = 4294967295u, .freq_hz = 868500000u, .chan = 2, .rfch = 1, .stat = 1,
                     .sf = 12, .bw_khz = 125, .rssi = -117, .lsnr = -12.25, .size = 3,
                     .data = {1, 2, 3}};
    snprintf(a.codr, sizeof a.codr, "4/5");
    cJSON *o = gwmp_rxpk_to_json(&a);
    assert_non_null(o);
    gwmp_rxpk_t b;
    assert_int_equal(gwmp_rxpk_from_json(o, &b, NULL), RH_OK);
    assert_int_equal(b.tmst, a.tmst);
    assert_int_equal(b.freq_hz, a.freq_hz);
    assert_int_equal(b.sf, 12);
    assert_int_equal(b.rssi, -117);
    assert_true(b.lsnr == -12.25);
    assert_int_equal(b.size, 3);
    assert_memory_equal(b.data, a.data, 3);
    cJSON_Delete(o);
}

static void test_txpk(void **state)
{
    (void)state;
    gwmp_txpk_t t = {.tmst = 3512348611u + 1000000u, .freq_hz = 869525000u, .powe = 14, .sf = 12,
                     .bw_khz = 125, .ipol = true, .size = 4, .data = {0x60, 1, 2, 3}};
    char *js;
    size_t len;
    assert_int_equal(gwmp_txpk_build(&t, &js, &len), RH_OK);
    cJSON *root = cJSON_Parse(js);
    const cJSON *o = cJSON_GetObjectItem(root, "txpk");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(o, "imme")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "ipol")));
    assert_string_equal(cJSON_GetObjectItem(o, "modu")->valuestring, "LORA");
    assert_string_equal(cJSON_GetObjectItem(o, "datr")->valuestring, "SF12BW125");
    assert_string_equal(cJSON_GetObjectItem(o, "codr")->valuestring, "4/5");
    assert_true(cJSON_GetObjectItem(o, "tmst")->valuedouble == (double)(3512348611u + 1000000u));
    assert_int_equal(cJSON_GetObjectItem(o, "rfch")->valueint, 0);
    assert_int_equal(cJSON_GetObjectItem(o, "powe")->valueint, 14);
    assert_int_equal(cJSON_GetObjectItem(o, "size")->valueint, 4);
    cJSON_Delete(root);
    gwmp_txpk_t b;
    rh_diag_t d;
    assert_int_equal(gwmp_txpk_parse((const uint8_t *)js, len, &b, &d), RH_OK);
    assert_int_equal(b.tmst, t.tmst);
    assert_int_equal(b.freq_hz, 869525000u);
    assert_int_equal(b.sf, 12);
    assert_true(b.ipol);
    assert_int_equal(b.size, 4);
    assert_memory_equal(b.data, t.data, 4);
    cJSON_free(js);
    /* Errors name the field. */
    const char *bad = "{\"txpk\":{\"imme\":false,\"freq\":869.525,\"datr\":\"SF12BW125\",\"data\":\"QQ==\"}}";
    assert_int_equal(gwmp_txpk_parse((const uint8_t *)bad, strlen(bad), &b, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "txpk.tmst"));
    const char *imme = "{\"txpk\":{\"imme\":true,\"freq\":869.525,\"datr\":\"SF12BW125\",\"data\":\"QQ==\"}}";
    assert_int_equal(gwmp_txpk_parse((const uint8_t *)imme, strlen(imme), &b, &d), RH_OK);
    assert_true(b.imme);
    assert_int_equal(gwmp_txpk_parse((const uint8_t *)"{}", 2, &b, &d), RH_EINVAL);
    t.size = 256;
    assert_int_equal(gwmp_txpk_build(&t, &js, &len), RH_EINVAL);

    char err[16];
    assert_int_equal(gwmp_txack_parse(NULL, 0, err, sizeof err), RH_OK);
    assert_string_equal(err, "NONE");
    const char *ack = "{\"txpk_ack\":{\"error\":\"TOO_LATE\"}}";
    assert_int_equal(gwmp_txack_parse((const uint8_t *)ack, strlen(ack), err, sizeof err), RH_OK);
    assert_string_equal(err, "TOO_LATE");
    assert_int_equal(gwmp_txack_parse((const uint8_t *)"x", 1, err, sizeof err), RH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing),     cmocka_unit_test(test_framing_errors),
        cmocka_unit_test(test_base64_datr), cmocka_unit_test(test_push_parse),
        cmocka_unit_test(test_rxpk_errors), cmocka_unit_test(test_rxpk_roundtrip),
        cmocka_unit_test(test_txpk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
