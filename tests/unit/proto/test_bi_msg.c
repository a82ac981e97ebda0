/* Unit tests for bi_msg: every example of ../shared/vectors/bi_json_examples.json decodes,
 * validates and re-encodes without losing a field; typed access; unknown-field and token
 * preservation; dialect (leniency) tables; malformed-input tables with the expected ResultCode
 * and Description; mutations, canonical detection, answers, building. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "bi_msg.h"
#include "rh_test.h"

/* Test bodies are written with single quotes; q() turns them into JSON (static buffer). */
static char qbuf[1 << 17];
static const char *q(const char *s)
{
    size_t n = strlen(s);
    assert_true(n < sizeof qbuf);
    for (size_t i = 0; i <= n; i++)
        qbuf[i] = s[i] == '\'' ? '"' : s[i];
    return qbuf;
}

static bi_msg_t *decode_ok(const char *body)
{
    bi_msg_t *m = NULL;
    bi_error_t err;
    int r = bi_msg_decode(body, strlen(body), &m, &err);
    if (r != RH_OK)
        fail_msg("decode failed (%d): %s\n  body: %.300s", r, err.description, body);
    assert_non_null(m);
    return m;
}

static char *encode(bi_msg_t *m, bi_dialect_t d)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(bi_msg_encode(m, &d, &out, &len), RH_OK);
    assert_int_equal(strlen(out), len);
    return out;
}

static bool hex_same(const char *a, const char *b)
{
    if (a[0] == '0' && (a[1] == 'x' || a[1] == 'X'))
        a += 2;
    if (b[0] == '0' && (b[1] == 'x' || b[1] == 'X'))
        b += 2;
    return strcasecmp(a, b) == 0;
}

/* Same values: strings equal exactly, or as hex ignoring case/0x, as the same region, or as
 * the same instant; numbers equal as doubles; every key of `want` present in `got` and no
 * extra key except those listed in `extra_ok`. */
static void assert_same(const cJSON *want, const cJSON *got, const char *path)
{
    if (!got)
        fail_msg("%s: missing after re-encoding", path);
    if (cJSON_IsObject(want)) {
        if (!cJSON_IsObject(got))
            fail_msg("%s: type changed", path);
        assert_int_equal(cJSON_GetArraySize(want), cJSON_GetArraySize(got));
        const cJSON *c;
        cJSON_ArrayForEach(c, want)
        {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.%s", path, c->string);
            assert_same(c, cJSON_GetObjectItemCaseSensitive(got, c->string), sub);
        }
    } else if (cJSON_IsArray(want)) {
        if (!cJSON_IsArray(got))
            fail_msg("%s: type changed", path);
        assert_int_equal(cJSON_GetArraySize(want), cJSON_GetArraySize(got));
        for (int i = 0; i < cJSON_GetArraySize(want); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s[%d]", path, i);
            assert_same(cJSON_GetArrayItem(want, i), cJSON_GetArrayItem(got, i), sub);
        }
    } else if (cJSON_IsString(want)) {
        if (!cJSON_IsString(got))
            fail_msg("%s: type changed", path);
        const char *a = want->valuestring, *b = got->valuestring;
        if (strcmp(a, b) == 0 || hex_same(a, b))
            return;
        if (bi_region_parse(a) != BI_REGION_UNKNOWN && bi_region_parse(a) == bi_region_parse(b))
            return;
        bi_time_t ta, tb;
        if (bi_time_parse(a, &ta, "", NULL) == RH_OK && bi_time_parse(b, &tb, "", NULL) == RH_OK &&
            ta.sec == tb.sec && ta.nsec == tb.nsec)
            return;
        bi_result_code_t ra = bi_result_code_parse(a, NULL);
        if (ra != BI_RC_OTHER && ra == bi_result_code_parse(b, NULL))
            return;
        fail_msg("%s: \"%s\" became \"%s\"", path, a, b);
    } else if (cJSON_IsNumber(want)) {
        if (!cJSON_IsNumber(got) || want->valuedouble != got->valuedouble)
            fail_msg("%s: number changed", path);
    } else {
        if ((want->type & 0xff) != (got->type & 0xff))
            fail_msg("%s: value changed", path);
    }
}

/* ------------------------------------------------------------------ vectors */

static void test_vectors_roundtrip(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("bi_json_examples.json");
    const cJSON *ex;
    int n = 0, canonical_seen = 0;
    cJSON_ArrayForEach(ex, cJSON_GetObjectItem(root, "examples"))
    {
        const cJSON *msg = cJSON_GetObjectItem(ex, "message");
        char *body = cJSON_PrintUnformatted(msg);
        bi_msg_t *m = decode_ok(body);
        const bi_fields_t *f = bi_msg_fields(m);
        assert_int_equal(f->hdr.present & 0x1f, 0x1f);
        assert_string_equal(bi_msg_type_name(f->hdr.type),
                            cJSON_GetObjectItem(msg, "MessageType")->valuestring);
        bi_dialect_t dialects[] = {
            {BI_VERSION_UNKNOWN, BI_HEX_LOWER, BI_REGION_NAMES_RP002, false, false},
            {BI_VERSION_UNKNOWN, BI_HEX_UPPER, BI_REGION_NAMES_SPEC, true, false},
        };
        for (size_t k = 0; k < 2; k++) {
            char *out = encode(m, dialects[k]);
            cJSON *back = cJSON_Parse(out);
            assert_non_null(back);
            assert_same(msg, back, cJSON_GetObjectItem(ex, "name")->valuestring);
            if (bi_msg_is_canonical_for(m, &dialects[k])) {
                /* Canonical: the received bytes and the encoding are the same JSON value. */
                assert_true(cJSON_Compare(msg, back, 1));
                canonical_seen++;
            }
            /* Re-decoding the output and encoding again is a fixed point. */
            bi_msg_t *m2 = decode_ok(out);
            assert_true(bi_msg_is_canonical_for(m2, &dialects[k]));
            char *out2 = encode(m2, dialects[k]);
            assert_string_equal(out, out2);
            free(out2);
            bi_msg_free(m2);
            cJSON_Delete(back);
            bi_buf_free(out);
        }
        bi_msg_free(m);
        free(body);
        n++;
    }
    assert_true(n >= 16);
    assert_true(canonical_seen >= 8);
    cJSON_Delete(root);
}

static const cJSON *example(const cJSON *root, const char *prefix)
{
    const cJSON *ex;
    cJSON_ArrayForEach(ex, cJSON_GetObjectItem(root, "examples"))
    if (strncmp(cJSON_GetObjectItem(ex, "name")->valuestring, prefix, strlen(prefix)) == 0)
        return cJSON_GetObjectItem(ex, "message");
    fail_msg("no example %s", prefix);
    return NULL;
}

static bi_msg_t *decode_example(const cJSON *root, const char *prefix)
{
    char *body = cJSON_PrintUnformatted(example(root, prefix));
    bi_msg_t *m = decode_ok(body);
    free(body);
    return m;
}

static void test_vectors_typed(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("bi_json_examples.json");

    bi_msg_t *m = decode_example(root, "PRStartReq (fNS->sNS");
    const bi_fields_t *f = bi_msg_fields(m);
    assert_int_equal(f->hdr.version, BI_VERSION_1_0);
    assert_int_equal(f->hdr.sender_id.kind, BI_ID_NETID);
    assert_int_equal(f->hdr.sender_id.value, 0x000202);
    assert_int_equal(f->hdr.receiver_id.value, 0x000505);
    assert_int_equal(bi_msg_transaction_id(m), 1234);
    assert_int_equal(bi_msg_type(m), BI_MT_PR_START_REQ);
    size_t plen;
    const uint8_t *phy = bi_msg_phy_payload(m, &plen);
    static const uint8_t want_phy[] = {0x40, 0, 0, 0, 0x0a, 0, 1, 0, 1, 2, 3, 4};
    assert_int_equal(plen, sizeof want_phy);
    assert_memory_equal(phy, want_phy, plen);
    assert_true(f->present & BI_F_UL_META);
    assert_false(f->present & BI_F_DL_META);
    assert_false(f->ul.present & (BI_UL_DEV_ADDR | BI_UL_DEV_EUI));
    assert_int_equal(f->ul.data_rate, 0);
    assert_true(f->ul.ul_freq == 868.1);
    assert_int_equal(f->ul.rf_region, BI_REGION_EU868);
    assert_int_equal(f->ul.recv_time.sec, 1704110400);
    assert_int_equal(f->ul.recv_time.nsec, 123456789);
    assert_int_equal(f->ul.gw_cnt, 1);
    assert_int_equal(f->ul.gw_count, 1);
    assert_int_equal(f->ul.gw[0].id_len, 4);
    assert_int_equal(f->ul.gw[0].id, 0x05060708);
    assert_true(f->ul.gw[0].dl_allowed);
    assert_int_equal(f->ul.gw[0].present & (BI_GW_RSSI | BI_GW_SNR | BI_GW_LAT | BI_GW_LON),
                     BI_GW_RSSI | BI_GW_SNR | BI_GW_LAT | BI_GW_LON);
    assert_true(strncmp(f->ul.gw[0].ul_token, "<opaque ULToken", 15) == 0);
    assert_int_equal(f->lifetime, 0);
    bi_msg_free(m);

    m = decode_example(root, "PRStartAns (sNS->fNS, success");
    f = bi_msg_fields(m);
    assert_int_equal(f->result_code, BI_RC_SUCCESS);
    assert_true(f->present & BI_F_DEV_EUI);
    assert_int_equal(f->dev_eui, 0x0202030405060708ull);
    assert_true(f->present & BI_F_NWK_S_KEY);
    assert_string_equal(f->nwk_s_key.kek_label, "");
    assert_int_equal(f->nwk_s_key.aes_key_len, 16);
    assert_int_equal(f->nwk_s_key.aes_key[15], 0x10);
    assert_int_equal(f->fcnt_up, 8);
    assert_false(f->present & BI_F_LIFETIME); /* missing Lifetime = 0 (stateless) */
    assert_int_equal(f->lifetime, 0);
    bi_msg_free(m);

    m = decode_example(root, "XmitDataReq (sNS->fNS");
    f = bi_msg_fields(m);
    assert_true(f->present & BI_F_DL_META);
    assert_int_equal(f->dl.class_mode, 'A');
    assert_true(f->dl.dl_freq1 == 868.1 && f->dl.dl_freq2 == 869.525);
    assert_int_equal(f->dl.rx_delay1, 1);
    assert_int_equal(f->dl.gw_count, 1);
    assert_int_equal(f->dl.gw[0].present, BI_GW_UL_TOKEN);
    assert_false(f->dl.hi_priority);
    bi_msg_free(m);

    m = decode_example(root, "JoinAns BI 1.0 Success");
    f = bi_msg_fields(m);
    assert_int_equal(f->hdr.sender_id.kind, BI_ID_EUI64);
    assert_int_equal(f->hdr.sender_id.value, 0x70B3D57ED0000000ull);
    assert_int_equal(f->nwk_s_key.aes_key_len, 24);
    assert_string_equal(f->nwk_s_key.kek_label, "ns:42ffff");
    assert_int_equal(f->app_s_key.aes_key_len, 24);
    assert_string_equal(f->receiver_token, "01");
    assert_true(f->present & BI_F_LIFETIME);
    assert_int_equal(f->phy_payload_len, 33);
    bi_msg_free(m);

    m = decode_example(root, "JoinReq BI 1.1");
    f = bi_msg_fields(m);
    assert_int_equal(f->hdr.version, BI_VERSION_1_1);
    assert_true(f->hdr.present & BI_H_SENDER_NSID);
    assert_int_equal(f->hdr.sender_nsid, 0x70B3D57ED0000001ull);
    assert_int_equal(f->dev_addr, 0x01020304);
    assert_int_equal(f->dl_settings, 0);
    assert_int_equal(f->rx_delay, 5);
    assert_string_equal(f->mac_version, "1.0.3");
    bi_msg_free(m);

    m = decode_example(root, "HomeNSAns BI 1.1");
    f = bi_msg_fields(m);
    assert_int_equal(f->hnetid, 0x000001);
    assert_true(f->present & BI_F_HNSID);
    assert_int_equal(f->hnsid, 0x4242420000000000ull);
    assert_true(f->hdr.present & BI_H_RECEIVER_NSID);
    /* 1.0 output drops the NSID fields; 1.1 keeps them. */
    char *out = encode(m, BI_DIALECT_CHIRPSTACK);
    assert_null(strstr(out, "NSID"));
    assert_non_null(strstr(out, "\"ProtocolVersion\":\"1.0\""));
    bi_buf_free(out);
    out = encode(m, BI_DIALECT_TTS_1_1);
    assert_non_null(strstr(out, "\"HNSID\":\"4242420000000000\""));
    assert_non_null(strstr(out, "\"ReceiverNSID\":\"0000000000000000\""));
    assert_non_null(strstr(out, "\"ProtocolVersion\":\"1.1\""));
    bi_buf_free(out);
    assert_int_equal(bi_msg_fields(m)->hdr.version, BI_VERSION_1_1); /* encoding changes no value */
    bi_msg_free(m);
    cJSON_Delete(root);
}

/* ------------------------------------------------------------------ transparency */

#define HELIUM_PRSTART                                                                          \
    "{'ProtocolVersion':'1.0','SenderID':'0xC00053','ReceiverID':'0x600013','TransactionID':"  \
    "3845224576,'MessageType':'PRStartReq','DedupWindowSize':250,'SenderToken':'0xAbCd',"     \
    "'VSExtension':{'VendorID':'0xABCDEF','Object':{'x':[1,2.5,{'y':null}],'Hex':'0xAB'}},"    \
    "'PHYPayload':'0x4013D5DE25800100025E6F0C9B','ULMetaData':{'DevAddr':'0xE0279AE8',"        \
    "'DataRate':5,'ULFreq':904.6,'RecvTime':'2022-11-03T20:32:53Z','RFRegion':'us915',"       \
    "'GWCnt':2,'FNSULToken':'0x5553393135...not-hex','Vendor':{'k':'v'},'GWInfo':[{'ID':"     \
    "'0xAABBCCDDEEFF0011','RFRegion':'US902','RSSI':-112,'SNR':5.5,'Lat':37.25,'Lon':"        \
    "-122.5,'DLAllowed':true,'Extra':'keep me'},{'ID':'aabbccdd','RSSI':-120.0,'SNR':-3,"     \
    "'FineRecvTime':123456789,'ULToken':'AbC0x'}]}}"

static void test_unknown_fields_and_tokens(void **state)
{
    (void)state;
    bi_msg_t *m = decode_ok(q(HELIUM_PRSTART));
    const bi_fields_t *f = bi_msg_fields(m);
    assert_int_equal(f->hdr.transaction_id, 3845224576u);
    assert_int_equal(f->ul.dev_addr, 0xE0279AE8u);
    assert_int_equal(f->ul.rf_region, BI_REGION_US915);
    assert_int_equal(f->ul.gw_count, 2);
    assert_int_equal(f->ul.gw[0].id_len, 8);
    assert_int_equal(f->ul.gw[0].id, 0xAABBCCDDEEFF0011ull);
    assert_int_equal(f->ul.gw[0].rssi, -112);
    assert_int_equal(f->ul.gw[1].rssi, -120); /* written -120.0 */
    assert_int_equal(f->ul.gw[1].fine_recv_time, 123456789);
    assert_string_equal(f->sender_token, "0xAbCd");
    assert_string_equal(f->ul.fns_ul_token, "0x5553393135...not-hex");
    assert_string_equal(f->ul.gw[1].ul_token, "AbC0x");
    assert_true(f->present & BI_F_VS_EXTENSION);

    bi_dialect_t d = BI_DIALECT_CHIRPSTACK;
    assert_false(bi_msg_is_canonical_for(m, &d));
    char *out = encode(m, d);
    cJSON *j = cJSON_Parse(out);
    cJSON *orig = cJSON_Parse(q(HELIUM_PRSTART));
    assert_same(orig, j, "helium");
    /* Unknown fields kept, at every level, with their values. */
    assert_int_equal(cJSON_GetObjectItem(j, "DedupWindowSize")->valueint, 250);
    assert_true(cJSON_Compare(cJSON_GetObjectItem(orig, "VSExtension"),
                              cJSON_GetObjectItem(j, "VSExtension"), 1));
    cJSON *ul = cJSON_GetObjectItem(j, "ULMetaData");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(ul, "Vendor"), "k")->valuestring, "v");
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ul, "GWInfo"), 0), "Extra")->valuestring,
        "keep me");
    /* Tokens byte for byte; typed hex normalised (no 0x, lower case); regions RP002; time ms. */
    assert_non_null(strstr(out, "\"SenderToken\":\"0xAbCd\""));
    assert_non_null(strstr(out, "\"FNSULToken\":\"0x5553393135...not-hex\""));
    assert_non_null(strstr(out, "\"ULToken\":\"AbC0x\""));
    assert_non_null(strstr(out, "\"SenderID\":\"c00053\""));
    assert_non_null(strstr(out, "\"PHYPayload\":\"4013d5de25800100025e6f0c9b\""));
    assert_non_null(strstr(out, "\"DevAddr\":\"e0279ae8\""));
    assert_non_null(strstr(out, "\"ID\":\"aabbccddeeff0011\""));
    assert_non_null(strstr(out, "\"RFRegion\":\"US915\""));
    assert_null(strstr(out, "US902"));
    assert_non_null(strstr(out, "\"RecvTime\":\"2022-11-03T20:32:53.000Z\""));
    assert_non_null(strstr(out, "\"RSSI\":-120,"));
    assert_non_null(strstr(out, "\"TransactionID\":3845224576,"));
    /* VSExtension is opaque: its hex is not touched. */
    assert_non_null(strstr(out, "\"VendorID\":\"0xABCDEF\""));
    cJSON_Delete(j);
    cJSON_Delete(orig);
    bi_buf_free(out);

    /* Spec region names for a dialect that wants them. */
    bi_dialect_t spec = {BI_VERSION_1_0, BI_HEX_UPPER, BI_REGION_NAMES_SPEC, false, false};
    out = encode(m, spec);
    assert_non_null(strstr(out, "\"RFRegion\":\"US902\""));
    assert_null(strstr(out, "us915"));
    assert_null(strstr(out, "US915"));
    assert_non_null(strstr(out, "\"DevAddr\":\"E0279AE8\""));
    assert_non_null(strstr(out, "\"ULToken\":\"AbC0x\""));
    bi_buf_free(out);
    bi_msg_free(m);
}

/* ------------------------------------------------------------------ leniency (dialect) tables */

#define HDR10 "'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':7"
#define UL_MIN "'PHYPayload':'40','ULMetaData':{'RecvTime':'2024-01-01T12:00:00.000Z'}"

static void test_hex_leniency(void **state)
{
    (void)state;
    static const char *const forms[] = {"0a0b0c", "0A0B0C", "0x0a0b0c", "0X0A0B0C", "0x0A0b0C"};
    for (size_t i = 0; i < 5; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{'ProtocolVersion':'1.0','SenderID':'%s','ReceiverID':'000505','TransactionID':1,"
                 "'MessageType':'HomeNSAns','Result':{'ResultCode':'Success'},'HNetID':'%s'}",
                 forms[i], forms[i]);
        bi_msg_t *m = decode_ok(q(body));
        const bi_fields_t *f = bi_msg_fields(m);
        assert_int_equal(f->hdr.sender_id.kind, BI_ID_NETID);
        assert_int_equal(f->hdr.sender_id.value, 0x0a0b0c);
        assert_int_equal(f->hnetid, 0x0a0b0c);
        bi_dialect_t lo = BI_DIALECT_CHIRPSTACK, up = BI_DIALECT_HELIUM;
        assert_int_equal(bi_msg_is_canonical_for(m, &lo), i == 0);
        assert_int_equal(bi_msg_is_canonical_for(m, &up), i == 1);
        char *out = encode(m, lo);
        assert_non_null(strstr(out, "\"SenderID\":\"0a0b0c\""));
        assert_non_null(strstr(out, "\"HNetID\":\"0a0b0c\""));
        bi_buf_free(out);
        out = encode(m, up);
        assert_non_null(strstr(out, "\"SenderID\":\"0A0B0C\""));
        assert_non_null(strstr(out, "\"HNetID\":\"0A0B0C\""));
        bi_buf_free(out);
        bi_msg_free(m);
    }
}

static void test_netid_exactly_3_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *sender, *hnetid, *desc;
    } tab[] = {
        {"0505", "000001", "SenderID: expected a NetID (3 bytes) or an EUI-64 (8 bytes), got 2 bytes"},
        {"00000505", "000001", "SenderID: expected a NetID (3 bytes) or an EUI-64 (8 bytes), got 4 bytes"},
        {"000505", "00000001", "HNetID: expected 3 bytes (6 hex digits), got 4"},
        {"000505", "0x01", "HNetID: expected 3 bytes (6 hex digits), got 1"},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{'ProtocolVersion':'1.0','SenderID':'%s','ReceiverID':'000505','TransactionID':1,"
                 "'MessageType':'HomeNSAns','Result':{'ResultCode':'Success'},'HNetID':'%s'}",
                 tab[i].sender, tab[i].hnetid);
        bi_msg_t *m = (bi_msg_t *)1;
        bi_error_t err;
        assert_int_equal(bi_msg_decode(q(body), strlen(body), &m, &err), RH_EINVAL);
        assert_null(m);
        assert_int_equal(err.code, BI_RC_MALFORMED_REQUEST);
        assert_string_equal(err.description, tab[i].desc);
    }
}

static void test_recvtime_leniency(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t sec;
        uint32_t nsec;
        const char *out;
        bool canonical;
    } tab[] = {
        {"2024-01-01T12:00:00.123456789Z", 1704110400, 123456789, "2024-01-01T12:00:00.123456789Z", true},
        {"2024-01-01T12:00:00.123Z", 1704110400, 123000000, "2024-01-01T12:00:00.123Z", true},
        {"2024-01-01T12:00:00Z", 1704110400, 0, "2024-01-01T12:00:00.000Z", false},
        {"2024-01-01T12:00:00+00:00", 1704110400, 0, "2024-01-01T12:00:00.000Z", false},
        {"2024-01-01T13:00:00.5+01:00", 1704110400, 500000000, "2024-01-01T12:00:00.500Z", false},
        {"2024-01-01T07:00:00-05:00", 1704110400, 0, "2024-01-01T12:00:00.000Z", false},
        {"2024-01-01t12:00:00.123z", 1704110400, 123000000, "2024-01-01T12:00:00.123Z", false},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{" HDR10 ",'MessageType':'PRStartReq','PHYPayload':'40','ULMetaData':{'RecvTime':'%s'}}",
                 tab[i].in);
        bi_msg_t *m = decode_ok(q(body));
        const bi_fields_t *f = bi_msg_fields(m);
        assert_int_equal(f->ul.recv_time.sec, tab[i].sec);
        assert_int_equal(f->ul.recv_time.nsec, tab[i].nsec);
        bi_dialect_t d = BI_DIALECT_CHIRPSTACK;
        assert_int_equal(bi_msg_is_canonical_for(m, &d), tab[i].canonical);
        char *out = encode(m, d);
        char want[128];
        snprintf(want, sizeof want, "\"RecvTime\":\"%s\"", tab[i].out);
        if (!strstr(out, want))
            fail_msg("%s -> %s", tab[i].in, out);
        bi_buf_free(out);
        bi_msg_free(m);
    }
}

static void test_region_leniency(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bi_region_t r;
        const char *rp002, *spec;
    } tab[] = {
        {"US902", BI_REGION_US915, "US915", "US902"},
        {"US915", BI_REGION_US915, "US915", "US902"},
        {"us915", BI_REGION_US915, "US915", "US902"},
        {"Australia915", BI_REGION_AU915, "AU915", "Australia915"},
        {"AU915", BI_REGION_AU915, "AU915", "Australia915"},
        {"China470", BI_REGION_CN470, "CN470", "China470"},
        {"CN470", BI_REGION_CN470, "CN470", "China470"},
        {"China779", BI_REGION_CN779, "CN779", "China779"},
        {"AS923-2", BI_REGION_AS923_2, "AS923-2", "AS923-2"},
        {"AS923_2", BI_REGION_AS923_2, "AS923-2", "AS923-2"},
        {"as923_3", BI_REGION_AS923_3, "AS923-3", "AS923-3"},
        {"EU868", BI_REGION_EU868, "EU868", "EU868"},
        {"Mars1", BI_REGION_UNKNOWN, "Mars1", "Mars1"}, /* unrecognised: kept verbatim */
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{" HDR10 ",'MessageType':'PRStartReq','PHYPayload':'40','ULMetaData':{"
                 "'RFRegion':'%s','GWInfo':[{'ID':'01020304','RFRegion':'%s'}]}}",
                 tab[i].in, tab[i].in);
        bi_msg_t *m = decode_ok(q(body));
        const bi_fields_t *f = bi_msg_fields(m);
        assert_int_equal(f->ul.rf_region, tab[i].r);
        assert_int_equal(f->ul.gw[0].rf_region, tab[i].r);
        bi_dialect_t rp = BI_DIALECT_CHIRPSTACK;
        bi_dialect_t sp = {BI_VERSION_1_0, BI_HEX_LOWER, BI_REGION_NAMES_SPEC, false, false};
        assert_int_equal(bi_msg_is_canonical_for(m, &rp), strcmp(tab[i].in, tab[i].rp002) == 0);
        assert_int_equal(bi_msg_is_canonical_for(m, &sp), strcmp(tab[i].in, tab[i].spec) == 0);
        char *out = encode(m, rp), want[64];
        snprintf(want, sizeof want, "\"RFRegion\":\"%s\"", tab[i].rp002);
        if (!strstr(out, want) || strstr(strstr(out, want) + 1, want) == NULL)
            fail_msg("%s -> %s", tab[i].in, out); /* both RFRegion fields */
        bi_buf_free(out);
        out = encode(m, sp);
        snprintf(want, sizeof want, "\"RFRegion\":\"%s\"", tab[i].spec);
        if (!strstr(out, want))
            fail_msg("%s -> %s", tab[i].in, out);
        bi_buf_free(out);
        bi_msg_free(m);
    }
}

static void test_result_code_leniency(void **state)
{
    (void)state;
    static const struct {
        const char *version, *in;
        bi_result_code_t rc;
        const char *out_spec, *out_fixed; /* emitted with unknown_receiver_correct false/true */
    } tab[] = {
        {"1.0", "UnkownReceiver", BI_RC_UNKNOWN_RECEIVER, "UnkownReceiver", "UnknownReceiver"},
        {"1.0", "UnknownReceiver", BI_RC_UNKNOWN_RECEIVER, "UnkownReceiver", "UnknownReceiver"},
        {"1.1", "UnknownReceiverID", BI_RC_UNKNOWN_RECEIVER, "UnkownReceiver", "UnknownReceiver"},
        {"1.0", "RoamingActDisallowedA", BI_RC_ROAMING_ACT_DISALLOWED, "RoamingActDisallowed", "RoamingActDisallowed"},
        {"1.0", "MalformedMessage", BI_RC_MALFORMED_MESSAGE, "MalformedRequest", "MalformedRequest"},
        {"1.1", "MalformedRequest", BI_RC_MALFORMED_REQUEST, "MalformedMessage", "MalformedMessage"},
        {"1.1", "NoAction", BI_RC_NO_ACTION, "NoAction", "NoAction"},
        {"1.1", "FrameReplayed", BI_RC_FRAME_REPLAYED, "FrameReplayed", "FrameReplayed"},
        {"1.0", "success", BI_RC_SUCCESS, "Success", "Success"},
        {"1.0", "VendorCode42", BI_RC_OTHER, "VendorCode42", "VendorCode42"}, /* kept verbatim */
        {"1.0", "Other", BI_RC_OTHER, "Other", "Other"},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{'ProtocolVersion':'%s','SenderID':'000202','ReceiverID':'000505','TransactionID':"
                 "1,'MessageType':'PRStartAns','Result':{'ResultCode':'%s','Description':'d'}}",
                 tab[i].version, tab[i].in);
        bi_msg_t *m = decode_ok(q(body));
        assert_int_equal(bi_msg_fields(m)->result_code, tab[i].rc);
        assert_string_equal(bi_msg_fields(m)->result_code_text, tab[i].in);
        for (int fixed = 0; fixed < 2; fixed++) {
            bi_dialect_t d = {BI_VERSION_UNKNOWN, BI_HEX_LOWER, BI_REGION_NAMES_RP002, fixed, false};
            const char *want_rc = fixed ? tab[i].out_fixed : tab[i].out_spec;
            assert_int_equal(bi_msg_is_canonical_for(m, &d), strcmp(want_rc, tab[i].in) == 0);
            char *out = encode(m, d), want[96];
            snprintf(want, sizeof want, "{\"ResultCode\":\"%s\",\"Description\":\"d\"}", want_rc);
            if (!strstr(out, want))
                fail_msg("%s (fixed=%d) -> %s", tab[i].in, fixed, out);
            bi_buf_free(out);
        }
        bi_msg_free(m);
    }
}

static void test_integer_leniency(void **state)
{
    (void)state;
    bi_msg_t *m = decode_ok(q("{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505',"
                              "'TransactionID':12.0,'MessageType':'PRStartAns','Result':{"
                              "'ResultCode':'Success'},'Lifetime':3.6e3,'FCntUp':0.0}"));
    const bi_fields_t *f = bi_msg_fields(m);
    assert_int_equal(f->hdr.transaction_id, 12);
    assert_int_equal(f->lifetime, 3600);
    assert_true(f->present & BI_F_LIFETIME);
    bi_dialect_t d = BI_DIALECT_CHIRPSTACK;
    assert_false(bi_msg_is_canonical_for(m, &d));
    char *out = encode(m, d);
    assert_non_null(strstr(out, "\"TransactionID\":12,"));
    assert_non_null(strstr(out, "\"Lifetime\":3600,"));
    assert_non_null(strstr(out, "\"FCntUp\":0}"));
    bi_buf_free(out);
    bi_msg_free(m);

    /* A float field written as 868.0 or an integer stays canonical. */
    m = decode_ok(q("{" HDR10 ",'MessageType':'PRStartReq','PHYPayload':'40','ULMetaData':{"
                    "'ULFreq':868.0,'DataRate':5,'GWInfo':[{'SNR':7,'Lat':1.5}]}}"));
    assert_true(bi_msg_is_canonical_for(m, &d));
    assert_true(bi_msg_fields(m)->ul.ul_freq == 868.0);
    bi_msg_free(m);
}

static void test_null_is_absent(void **state)
{
    (void)state;
    bi_msg_t *m = decode_ok(q("{" HDR10 ",'MessageType':'PRStartAns','Result':{'ResultCode':"
                              "'Success','Description':null},'Lifetime':null,'DevEUI':null}"));
    const bi_fields_t *f = bi_msg_fields(m);
    assert_false(f->present & (BI_F_LIFETIME | BI_F_DEV_EUI | BI_F_RESULT_DESCRIPTION));
    assert_int_equal(f->lifetime, 0);
    char *out = encode(m, BI_DIALECT_CHIRPSTACK);
    assert_non_null(strstr(out, "\"Lifetime\":null")); /* kept as received */
    bi_buf_free(out);
    bi_msg_free(m);
}

/* ------------------------------------------------------------------ malformed tables */

#define PRS "'MessageType':'PRStartReq'"
#define GW(x) "{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'GWInfo':[{" x "}]}}"

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * n + tl + 1);
    memcpy(s, head, hl);
    for (size_t i = 0; i < n; i++)
        memcpy(s + hl + i * ul, unit, ul);
    memcpy(s + hl + ul * n, tail, tl + 1);
    return s;
}

typedef struct bad_case {
    const char *body; /* single-quoted JSON; NULL = generated */
    bi_result_code_t code;
    int err;
    const char *desc; /* exact, or prefix when it ends with '*' */
} bad_case_t;

static void check_bad(const char *body, size_t len, const bad_case_t *c)
{
    bi_msg_t *m = (bi_msg_t *)1;
    bi_error_t err;
    int r = bi_msg_decode(body, len, &m, &err);
    if (r == RH_OK)
        fail_msg("accepted: %.200s", body);
    assert_null(m);
    size_t dl = strlen(c->desc);
    bool ok = c->desc[dl - 1] == '*' ? strncmp(err.description, c->desc, dl - 1) == 0
                                     : strcmp(err.description, c->desc) == 0;
    if (!ok || err.code != c->code || r != c->err || err.err != r)
        fail_msg("body %.120s\n  got code=%d err=%d '%s'\n want code=%d err=%d '%s'", body,
                 err.code, r, err.description, c->code, c->err, c->desc);
}

static void test_malformed_table(void **state)
{
    (void)state;
    static const bad_case_t tab[] = {
        /* wrong types */
        {GW("'RSSI':'-100'"), BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[0].RSSI: expected integer"},
        {GW("'RSSI':-100.5"), BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[0].RSSI: expected integer, got -100.5"},
        {GW("'SNR':'5'"), BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[0].SNR: expected number"},
        {GW("'DLAllowed':'true'"), BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[0].DLAllowed: expected boolean"},
        {GW("'ULToken':12"), BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[0].ULToken: expected string"},
        {GW("'ID':5"), BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[0].ID: expected a hex string"},
        {"{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':'7'," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_EINVAL, "TransactionID: expected integer"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':[]}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData: expected object"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'GWInfo':{}}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo: expected array"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'GWInfo':[{},7]}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[1]: expected object"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'Confirmed':1}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.Confirmed: expected boolean"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RecvTime':'yesterday'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RecvTime: expected an RFC 3339 time like 2024-01-01T12:00:00Z"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{},'VSExtension':'x'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "VSExtension: expected object"},
        {"{" HDR10 ",'MessageType':7,'PHYPayload':'40','ULMetaData':{}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "MessageType: expected string"},
        {"{" HDR10 ",'MessageType':'PRStartAns','Result':'Success'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "Result: expected object"},
        /* hex */
        {"{" HDR10 "," PRS ",'PHYPayload':'400','ULMetaData':{}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "PHYPayload: odd number of hex digits (3)"},
        {"{" HDR10 "," PRS ",'PHYPayload':'0x4','ULMetaData':{}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "PHYPayload: odd number of hex digits (1)"},
        {"{" HDR10 ",'MessageType':'PRStopReq','DevEUI':'zz02030405060708'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "DevEUI: invalid hex digit 'z' at position 0"},
        {"{" HDR10 ",'MessageType':'PRStopReq','DevEUI':'01 02030405060708'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "DevEUI: invalid hex digit 0x20 at position 2"},
        {"{" HDR10 ",'MessageType':'PRStopReq','DevEUI':'0102030405060708aa'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "DevEUI: expected 8 bytes (16 hex digits), got 9"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'DevAddr':'0x0a00000'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.DevAddr: odd number of hex digits (7)"},
        {GW("'ID':'0102030405'"), BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.GWInfo[0].ID: expected 4 or 8 bytes, got 5"},
        {"{" HDR10 ",'MessageType':'PRStartAns','Result':{'ResultCode':'Success'},'NwkSKey':{'AESKey':'0102'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "NwkSKey.AESKey: expected 16 or 24 bytes, got 2"},
        {"{" HDR10 ",'MessageType':'PRStartAns','Result':{'ResultCode':'Success'},'NwkSKey':{'KEKLabel':''}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "NwkSKey.AESKey: missing"},
        /* numbers */
        {"{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':4294967296," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_ERANGE, "TransactionID: 4294967296 is out of range 0..4294967295"},
        {"{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':-1," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_ERANGE, "TransactionID: -1 is out of range 0..4294967295"},
        {"{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':1e400," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_ERANGE, "TransactionID: number out of range"},
        {"{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':1e300," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_ERANGE, "TransactionID: 1e+300 is out of range 0..4294967295"},
        {"{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':12345678901234567890123456789012345678901234567890," PRS "}",
         BI_RC_MALFORMED_REQUEST, RH_ERANGE, "TransactionID: number of 50 characters is too long"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'ULFreq':-1e308}}", BI_RC_MALFORMED_REQUEST, RH_ERANGE, "ULMetaData.ULFreq: -1e+308 is out of range 0..10000"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'DataRate':16}}", BI_RC_MALFORMED_REQUEST, RH_ERANGE, "ULMetaData.DataRate: 16 is out of range 0..15"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'FPort':256}}", BI_RC_MALFORMED_REQUEST, RH_ERANGE, "ULMetaData.FPort: 256 is out of range 0..255"},
        {GW("'Lat':91"), BI_RC_MALFORMED_REQUEST, RH_ERANGE, "ULMetaData.GWInfo[0].Lat: 91 is out of range -90..90"},
        {GW("'RSSI':-99999"), BI_RC_MALFORMED_REQUEST, RH_ERANGE, "ULMetaData.GWInfo[0].RSSI: -99999 is out of range -32768..32767"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{},'DedupWindowSize':1e999}", BI_RC_MALFORMED_REQUEST, RH_ERANGE, "DedupWindowSize: number out of range"},
        /* duplicate keys */
        {"{" HDR10 ",'TransactionID':8," PRS ",'PHYPayload':'40','ULMetaData':{}}", BI_RC_MALFORMED_REQUEST, RH_EEXIST, "TransactionID: duplicate key"},
        {GW("'RSSI':1,'RSSI':2"), BI_RC_MALFORMED_REQUEST, RH_EEXIST, "ULMetaData.GWInfo[0].RSSI: duplicate key"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{},'X':{'a':1,'b':{'c':1,'c':2}}}", BI_RC_MALFORMED_REQUEST, RH_EEXIST, "X.b.c: duplicate key"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{},'Foo':1,'Foo':2}", BI_RC_MALFORMED_REQUEST, RH_EEXIST, "Foo: duplicate key"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{},'VSExtension':{'Object':{'k':[{'z':1,'z':1}]}}}", BI_RC_MALFORMED_REQUEST, RH_EEXIST, "VSExtension.Object.k[0].z: duplicate key"},
        /* JSON, UTF-8, control characters */
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: invalid JSON at offset*"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{}} x", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: unexpected data after the JSON value at offset*"},
        {"[1,2]", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: expected a JSON object"},
        {"'just a string'", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: expected a JSON object"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'EU\xff" "868'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: invalid UTF-8 at byte*"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'\xc0\xaf'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: invalid UTF-8 at byte*"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'\xed\xa0\x80'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: invalid UTF-8 at byte*"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'\xe2\x82'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: invalid UTF-8 at byte*"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'\xf4\x90\x80\x80'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: invalid UTF-8 at byte*"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'a\nb'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: control character 0x0a in a string"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'EU\\u0000868'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: \\u0000 is not allowed in a string"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'\\ud800'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: invalid JSON at offset*"},
        {"{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'RFRegion':'EU868}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData.RFRegion: unterminated string"},
        {"\xef\xbb\xbf{" HDR10 "}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: unexpected byte 0xef at offset 0"},
        /* header and per-type mandatory fields */
        {"{'ProtocolVersion':'2.0','SenderID':'000202','ReceiverID':'000505','TransactionID':7," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_INVALID_PROTOCOL_VERSION, RH_EVERSION, "ProtocolVersion: unsupported version \"2.0\" (expected \"1.0\" or \"1.1\")"},
        {"{'ProtocolVersion':'1.0.0','SenderID':'000202','ReceiverID':'000505','TransactionID':7," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_INVALID_PROTOCOL_VERSION, RH_EVERSION, "ProtocolVersion: unsupported version*"},
        {"{'SenderID':'000202','ReceiverID':'000505','TransactionID':7," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ProtocolVersion: missing (mandatory in every message)"},
        {"{'ProtocolVersion':'1.0','ReceiverID':'000505','TransactionID':7," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_EINVAL, "SenderID: missing (mandatory in every message)"},
        {"{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505'," PRS ",'PHYPayload':'40','ULMetaData':{}}",
         BI_RC_MALFORMED_REQUEST, RH_EINVAL, "TransactionID: missing (mandatory in every message)"},
        {"{" HDR10 ",'MessageType':'PRStartReqX'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "MessageType: unknown message type \"PRStartReqX\""},
        {"{" HDR10 "," PRS ",'PHYPayload':'40'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData: missing (mandatory in PRStartReq)"},
        {"{" HDR10 "," PRS ",'ULMetaData':{}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "PHYPayload: missing (mandatory in PRStartReq)"},
        {"{" HDR10 ",'MessageType':'PRStartAns'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "Result: missing (mandatory in PRStartAns)"},
        {"{" HDR10 ",'MessageType':'PRStartAns','Result':{'Description':'x'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "Result.ResultCode: missing"},
        {"{" HDR10 ",'MessageType':'PRStopReq'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "DevEUI: missing (mandatory in PRStopReq)"},
        {"{" HDR10 ",'MessageType':'HomeNSAns','Result':{'ResultCode':'Success'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "HNetID: missing (mandatory in HomeNSAns with Success)"},
        {"{" HDR10 ",'MessageType':'JoinReq','PHYPayload':'00','DevEUI':'0102030405060708'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "MACVersion: missing (mandatory in JoinReq)"},
        {"{" HDR10 ",'MessageType':'XmitDataReq','PHYPayload':'40','ULMetaData':{},'DLMetaData':{'DLFreq1':868.1}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: ULMetaData and DLMetaData are mutually exclusive in XmitDataReq"},
        {"{" HDR10 ",'MessageType':'XmitDataReq','PHYPayload':'40','FRMPayload':'01','DLMetaData':{'DLFreq1':868.1}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: PHYPayload and FRMPayload are mutually exclusive in XmitDataReq"},
        {"{" HDR10 ",'MessageType':'XmitDataReq','PHYPayload':'40'}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "ULMetaData: missing (mandatory in XmitDataReq)"},
        {"{" HDR10 ",'MessageType':'XmitDataReq','PHYPayload':'40','DLMetaData':{'ClassMode':'A'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "DLMetaData: needs DLFreq1 or DLFreq2"},
        {"{" HDR10 ",'MessageType':'XmitDataReq','PHYPayload':'40','DLMetaData':{'DLFreq1':868.1,'ClassMode':'D'}}", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "DLMetaData.ClassMode: expected \"A\", \"B\" or \"C\""},
        /* 1.1 senders get MalformedMessage */
        {"{'ProtocolVersion':'1.1','SenderID':'000202','ReceiverID':'000505','TransactionID':7," PRS ",'PHYPayload':'4','ULMetaData':{}}",
         BI_RC_MALFORMED_MESSAGE, RH_EINVAL, "PHYPayload: odd number of hex digits (1)"},
        /* frame size */
        {"{" HDR10 "," PRS ",'PHYPayload':'','ULMetaData':{}}", BI_RC_FRAME_SIZE_ERROR, RH_ESIZE, "PHYPayload: 0 bytes is outside 1..255"},
        /* limits */
        {"", BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: empty"},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        const char *b = q(tab[i].body);
        check_bad(b, strlen(b), &tab[i]);
    }
    /* A NUL byte (not expressible in a C literal table). */
    static const char nul[] = "{\"ProtocolVersion\":\"1.0\"\0}";
    check_bad(nul, sizeof nul - 1, &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: NUL byte at offset 24"});
}

static void test_limits(void **state)
{
    (void)state;
    char *s;
    /* Body over 64 KiB, even if it is valid JSON. */
    s = repeat("{\"X\":\"", "a", 4000, "\"");
    char *big = repeat(q("{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{}"), " ", 70000, "}");
    check_bad(big, strlen(big), &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_ERANGE, "body: 70146 bytes exceeds the limit of 65536 bytes"});
    free(big);
    free(s);
    /* Nesting deeper than 32. */
    s = repeat(q("{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{},'VSExtension':"), "{\"a\":", 40, "1");
    check_bad(s, strlen(s), &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_ERANGE, "VSExtension.a.a.a*"});
    bi_error_t err;
    bi_msg_t *m;
    assert_int_equal(bi_msg_decode(s, strlen(s), &m, &err), RH_ERANGE);
    assert_non_null(strstr(err.description, ": nesting deeper than 32 levels"));
    free(s);
    s = repeat("", "[", 50000, "");
    check_bad(s, strlen(s), &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_ERANGE, "[0][0][0]*"});
    free(s);
    s = repeat("", "[", 1000, "");
    check_bad(s, strlen(s), &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_ERANGE, "*"});
    assert_int_equal(bi_msg_decode(s, strlen(s), &m, &err), RH_ERANGE);
    assert_non_null(strstr(err.description, "nesting deeper than 32 levels"));
    free(s);
    /* GWInfo longer than 256 (checked by the scan, before cJSON allocates). */
    s = repeat(q("{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'GWInfo':[{}"), ",{}", 256, "]}}");
    check_bad(s, strlen(s), &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_ERANGE, "ULMetaData.GWInfo: array has more than 256 elements"});
    free(s);
    /* Exactly 256 is fine. */
    s = repeat(q("{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'GWInfo':[{}"), ",{}", 255, "]}}");
    m = decode_ok(s);
    assert_int_equal(bi_msg_fields(m)->ul.gw_count, 256);
    bi_msg_free(m);
    free(s);
    /* String longer than 4096 bytes. */
    s = repeat(q("{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{'GWInfo':[{'ULToken':'"), "ab", 2500, "\"}]}}");
    check_bad(s, strlen(s), &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_ERANGE, "ULMetaData.GWInfo[0].ULToken: string of 5000 bytes exceeds the limit of 4096 bytes"});
    free(s);
    /* Object with more than 128 members. */
    s = repeat(q("{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{},'X':{'k':0"), ",\"k\":0", 128, "}}");
    check_bad(s, strlen(s), &(bad_case_t){NULL, BI_RC_MALFORMED_REQUEST, RH_ERANGE, "X: object has more than 128 members"});
    free(s);
    /* PHYPayload of 256 bytes: FrameSizeError. */
    s = repeat(q("{" HDR10 "," PRS ",'PHYPayload':'"), "00", 256, "\",\"ULMetaData\":{}}");
    check_bad(s, strlen(s), &(bad_case_t){NULL, BI_RC_FRAME_SIZE_ERROR, RH_ESIZE, "PHYPayload: 256 bytes is outside 1..255"});
    free(s);
}

static void test_error_header(void **state)
{
    (void)state;
    /* The body field fails before the header fields are seen: the header is still read. */
    const char *b = q("{'ULMetaData':{'GWInfo':[{'RSSI':'x'}]},'PHYPayload':'40','ProtocolVersion':"
                      "'1.1','SenderID':'0x000202','ReceiverID':'000505','TransactionID':99,"
                      "'MessageType':'PRStartReq','SenderNSID':'0102030405060708'}");
    bi_msg_t *m;
    bi_error_t err;
    assert_int_equal(bi_msg_decode(b, strlen(b), &m, &err), RH_EINVAL);
    assert_int_equal(err.code, BI_RC_MALFORMED_MESSAGE); /* 1.1 sender */
    assert_string_equal(err.description, "ULMetaData.GWInfo[0].RSSI: expected integer");
    assert_int_equal(err.hdr.present, BI_H_VERSION | BI_H_SENDER_ID | BI_H_RECEIVER_ID |
                                          BI_H_TRANSACTION_ID | BI_H_MESSAGE_TYPE | BI_H_SENDER_NSID);
    assert_int_equal(err.hdr.version, BI_VERSION_1_1);
    assert_int_equal(err.hdr.sender_id.value, 0x000202);
    assert_int_equal(err.hdr.receiver_id.value, 0x000505);
    assert_int_equal(err.hdr.transaction_id, 99);
    assert_int_equal(err.hdr.type, BI_MT_PR_START_REQ);

    /* The answer to it. */
    bi_msg_t *a;
    assert_int_equal(bi_answer_from_error(&err, &a), RH_OK);
    char *out = encode(a, BI_DIALECT_TTS_1_1);
    assert_string_equal(out, "{\"ProtocolVersion\":\"1.1\",\"SenderID\":\"000505\",\"ReceiverID\":"
                             "\"000202\",\"TransactionID\":99,\"MessageType\":\"PRStartAns\","
                             "\"ReceiverNSID\":\"0102030405060708\",\"Result\":{\"ResultCode\":"
                             "\"MalformedMessage\",\"Description\":\"ULMetaData.GWInfo[0].RSSI: "
                             "expected integer\"}}");
    bi_buf_free(out);
    bi_msg_free(a);

    /* Invalid version: InvalidProtocolVersion, answered as 1.0. */
    b = q("{'ProtocolVersion':'9.9','SenderID':'000202','ReceiverID':'000505','TransactionID':5,"
          "'MessageType':'PRStopReq','DevEUI':'0102030405060708'}");
    assert_int_equal(bi_msg_decode(b, strlen(b), &m, &err), RH_EVERSION);
    assert_int_equal(err.code, BI_RC_INVALID_PROTOCOL_VERSION);
    assert_false(err.hdr.present & BI_H_VERSION);
    assert_int_equal(bi_answer_from_error(&err, &a), RH_OK);
    out = encode(a, BI_DIALECT_CHIRPSTACK);
    assert_non_null(strstr(out, "\"MessageType\":\"PRStopAns\""));
    assert_non_null(strstr(out, "\"ResultCode\":\"InvalidProtocolVersion\""));
    bi_buf_free(out);
    bi_msg_free(a);

    /* Unreadable JSON: nothing to address. */
    b = "{\"ProtocolVersion\":";
    assert_int_equal(bi_msg_decode(b, strlen(b), &m, &err), RH_EINVAL);
    assert_int_equal(err.hdr.present, 0);
    a = (bi_msg_t *)1;
    assert_int_equal(bi_answer_from_error(&err, &a), RH_EINVAL);
    assert_null(a);
    /* A failed answer (no request type) cannot be answered either. */
    b = q("{'ProtocolVersion':'1.0','SenderID':'000202','ReceiverID':'000505','TransactionID':5,"
          "'MessageType':'PRStartAns','Result':7}");
    assert_int_equal(bi_msg_decode(b, strlen(b), &m, &err), RH_EINVAL);
    assert_int_equal(bi_answer_from_error(&err, &a), RH_EINVAL);
}

/* ------------------------------------------------------------------ relay operations */

static void test_strip(void **state)
{
    (void)state;
    bi_msg_t *m = decode_ok(q(HELIUM_PRSTART));
    bi_dialect_t d = BI_DIALECT_HELIUM;
    d.region_names = BI_REGION_NAMES_RP002;
    /* Nothing to strip in a message without GWInfo: no mutation. */
    bi_msg_t *plain = decode_ok(q("{" HDR10 "," PRS ",'PHYPayload':'40','ULMetaData':{}}"));
    assert_int_equal(bi_msg_strip_gwinfo(plain, BI_STRIP_SIGNAL | BI_STRIP_LOCATION), 0);
    assert_true(bi_msg_is_canonical_for(plain, &BI_DIALECT_CHIRPSTACK));
    bi_msg_free(plain);

    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL), 4);
    const bi_fields_t *f = bi_msg_fields(m);
    assert_false(f->ul.gw[0].present & (BI_GW_RSSI | BI_GW_SNR));
    assert_true(f->ul.gw[0].present & (BI_GW_LAT | BI_GW_LON));
    char *out = encode(m, d);
    assert_null(strstr(out, "RSSI"));
    assert_null(strstr(out, "SNR"));
    assert_non_null(strstr(out, "\"Lat\":37.25"));
    assert_non_null(strstr(out, "FineRecvTime"));
    bi_buf_free(out);
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL), 0);
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_LOCATION), 3);
    assert_false(f->ul.gw[0].present & (BI_GW_LAT | BI_GW_LON));
    assert_false(f->ul.gw[1].present & BI_GW_FINE_RECV_TIME);
    out = encode(m, d);
    assert_null(strstr(out, "Lat"));
    assert_null(strstr(out, "Lon"));
    assert_null(strstr(out, "FineRecvTime"));
    assert_non_null(strstr(out, "\"Extra\":\"keep me\""));
    assert_non_null(strstr(out, "\"ULToken\":\"AbC0x\""));
    assert_non_null(strstr(out, "\"DLAllowed\":true"));
    bi_buf_free(out);
    bi_msg_free(m);

    /* A canonical message stops being canonical once something is stripped. */
    m = decode_ok(q(GW("'ID':'01020304','RSSI':-50,'SNR':1.5")));
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK;
    assert_true(bi_msg_is_canonical_for(m, &cs));
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_LOCATION), 0);
    assert_true(bi_msg_is_canonical_for(m, &cs));
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL), 2);
    assert_false(bi_msg_is_canonical_for(m, &cs));
    bi_msg_free(m);
}

static void test_canonical(void **state)
{
    (void)state;
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK, tts = BI_DIALECT_TTS_1_1;
    bi_dialect_t keep = {BI_VERSION_UNKNOWN, BI_HEX_UPPER, BI_REGION_NAMES_RP002, false, false};
    /* 1.1 with an NSID: canonical for 1.1 upper, not for a 1.0 receiver (drops the NSID). */
    bi_msg_t *m = decode_ok(q("{'ProtocolVersion':'1.1','SenderID':'42FFFF','SenderNSID':"
                              "'70B3D57ED0000001','ReceiverID':'EC656E0000000000','TransactionID':0,"
                              "'MessageType':'HomeNSReq','DevEUI':'0102030405060708'}"));
    assert_true(bi_msg_is_canonical_for(m, &tts));
    assert_true(bi_msg_is_canonical_for(m, &keep));
    bi_dialect_t up10 = BI_DIALECT_HELIUM;
    assert_false(bi_msg_is_canonical_for(m, &up10));
    assert_false(bi_msg_is_canonical_for(m, &cs));
    /* Setting a header value is a mutation. */
    assert_int_equal(bi_msg_set_transaction_id(m, 1), RH_OK);
    assert_false(bi_msg_is_canonical_for(m, &tts));
    bi_msg_free(m);
    /* Version mismatch. */
    m = decode_ok(q("{" HDR10 ",'MessageType':'PRStopAns','Result':{'ResultCode':'Success'}}"));
    assert_true(bi_msg_is_canonical_for(m, &cs));
    assert_false(bi_msg_is_canonical_for(m, &tts));
    bi_msg_free(m);
    /* Built messages are never canonical. */
    assert_int_equal(bi_msg_new(BI_MT_PR_STOP_REQ, BI_VERSION_1_0, (bi_id_t){BI_ID_NETID, 1},
                                (bi_id_t){BI_ID_NETID, 2}, 3, &m), RH_OK);
    assert_false(bi_msg_is_canonical_for(m, &cs));
    bi_msg_free(m);
}

static void test_answer(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("bi_json_examples.json");
    bi_msg_t *req = decode_example(root, "PRStartReq (fNS->sNS");
    bi_msg_t *a;
    assert_int_equal(bi_answer_new(req, BI_RC_UNKNOWN_DEV_ADDR, "Object does not exist (id: 0a000000)", &a), RH_OK);
    const bi_fields_t *f = bi_msg_fields(a);
    assert_int_equal(f->hdr.type, BI_MT_PR_START_ANS);
    assert_int_equal(f->hdr.sender_id.value, 0x000505);
    assert_int_equal(f->hdr.receiver_id.value, 0x000202);
    assert_int_equal(f->hdr.transaction_id, 1234);
    assert_int_equal(f->result_code, BI_RC_UNKNOWN_DEV_ADDR);
    char *out = encode(a, BI_DIALECT_CHIRPSTACK);
    /* Same JSON value as the ChirpStack fixture for this answer. */
    cJSON *got = cJSON_Parse(out);
    assert_true(cJSON_Compare(got, example(root, "PRStartAns error: UnknownDevAddr"), 1));
    cJSON_Delete(got);
    bi_buf_free(out);
    bi_msg_free(a);
    /* Description omitted when empty. */
    assert_int_equal(bi_answer_new(req, BI_RC_SUCCESS, "", &a), RH_OK);
    out = encode(a, BI_DIALECT_CHIRPSTACK);
    assert_non_null(strstr(out, "\"Result\":{\"ResultCode\":\"Success\"}"));
    bi_buf_free(out);
    bi_msg_free(a);
    bi_msg_free(req);

    /* 1.1: ReceiverNSID = the request's SenderNSID; matches the TTS fixture. */
    req = decode_example(root, "JoinReq BI 1.1");
    assert_int_equal(bi_answer_new(req, BI_RC_MIC_FAILED, NULL, &a), RH_OK);
    f = bi_msg_fields(a);
    assert_int_equal(f->hdr.type, BI_MT_JOIN_ANS);
    assert_true(f->hdr.present & BI_H_RECEIVER_NSID);
    assert_int_equal(f->hdr.receiver_nsid, 0x70B3D57ED0000001ull);
    out = encode(a, BI_DIALECT_TTS_1_1);
    got = cJSON_Parse(out);
    assert_true(cJSON_Compare(got, example(root, "JoinAns BI 1.1 MICFailed"), 1));
    cJSON_Delete(got);
    bi_buf_free(out);
    bi_msg_free(a);
    bi_msg_free(req);

    /* Answers and notifications have no answer. */
    req = decode_example(root, "PRStopAns");
    a = (bi_msg_t *)1;
    assert_int_equal(bi_answer_new(req, BI_RC_SUCCESS, NULL, &a), RH_EINVAL);
    assert_null(a);
    bi_msg_free(req);
    req = decode_ok(q("{" HDR10 ",'MessageType':'ErrorNotif','Result':{'ResultCode':'Other'}}"));
    assert_int_equal(bi_answer_new(req, BI_RC_SUCCESS, NULL, &a), RH_EINVAL);
    bi_msg_free(req);

    /* SenderToken comes back as ReceiverToken, exactly. */
    req = decode_ok(q("{" HDR10 ",'MessageType':'PRStopReq','DevEUI':'0102030405060708',"
                      "'SenderToken':'0xDeAd'}"));
    assert_int_equal(bi_answer_new(req, BI_RC_UNKNOWN_DEV_EUI, NULL, &a), RH_OK);
    assert_string_equal(bi_msg_fields(a)->receiver_token, "0xDeAd");
    out = encode(a, BI_DIALECT_HELIUM);
    assert_non_null(strstr(out, "\"ReceiverToken\":\"0xDeAd\""));
    assert_non_null(strstr(out, "\"ResultCode\":\"UnknownDevEUI\""));
    bi_buf_free(out);
    bi_msg_free(a);
    bi_msg_free(req);
    cJSON_Delete(root);
}

static void test_setters_and_building(void **state)
{
    (void)state;
    bi_msg_t *m;
    assert_int_equal(bi_msg_new(BI_MT_PR_START_REQ, BI_VERSION_1_0, (bi_id_t){BI_ID_NETID, 0x202},
                                (bi_id_t){BI_ID_NETID, 0x505}, 42, &m), RH_OK);
    /* Header only: a PRStartReq needs a body, which the caller adds through the tree. */
    cJSON *root = bi_msg_json_mut(m);
    cJSON_AddStringToObject(root, "PHYPayload", "40AA");
    cJSON *ul = cJSON_AddObjectToObject(root, "ULMetaData");
    cJSON_AddStringToObject(ul, "RFRegion", "Australia915");
    cJSON_AddStringToObject(ul, "RecvTime", "2024-01-01T12:00:00Z");
    bi_error_t err;
    assert_int_equal(bi_msg_refresh(m, &err), RH_OK);
    assert_int_equal(bi_msg_fields(m)->phy_payload_len, 2);
    assert_int_equal(bi_msg_fields(m)->ul.rf_region, BI_REGION_AU915);
    assert_int_equal(bi_msg_set_version(m, BI_VERSION_1_1), RH_OK);
    assert_int_equal(bi_msg_set_sender_nsid(m, true, 0x0102030405060708ull), RH_OK);
    assert_int_equal(bi_msg_set_receiver_id(m, (bi_id_t){BI_ID_EUI64, 0xAABBCCDDEEFF0011ull}), RH_OK);
    assert_int_equal(bi_msg_set_sender_id(m, (bi_id_t){BI_ID_NETID, 0xC00053}), RH_OK);
    assert_int_equal(bi_msg_set_transaction_id(m, 4294967295u), RH_OK);
    char *out = encode(m, (bi_dialect_t){BI_VERSION_UNKNOWN, BI_HEX_UPPER, BI_REGION_NAMES_RP002, false, false});
    assert_string_equal(out, "{\"ProtocolVersion\":\"1.1\",\"SenderID\":\"C00053\",\"ReceiverID\":"
                             "\"AABBCCDDEEFF0011\",\"TransactionID\":4294967295,\"MessageType\":"
                             "\"PRStartReq\",\"PHYPayload\":\"40AA\",\"ULMetaData\":{\"RFRegion\":"
                             "\"AU915\",\"RecvTime\":\"2024-01-01T12:00:00.000Z\"},\"SenderNSID\":"
                             "\"0102030405060708\"}");
    bi_buf_free(out);
    /* The caller buffer variant gives the same bytes, or RH_ERANGE. */
    char buf[512];
    size_t len;
    assert_int_equal(bi_msg_encode_to(m, &BI_DIALECT_TTS_1_1, buf, sizeof buf, &len), RH_OK);
    assert_int_equal(strlen(buf), len);
    assert_non_null(strstr(buf, "\"SenderNSID\":\"0102030405060708\""));
    assert_int_equal(bi_msg_encode_to(m, &BI_DIALECT_TTS_1_1, buf, 40, &len), RH_ERANGE);
    /* For 1.0 the NSID is left out, and the tree keeps it for later encodings. */
    out = encode(m, BI_DIALECT_CHIRPSTACK);
    assert_null(strstr(out, "NSID"));
    assert_non_null(strstr(out, "\"ProtocolVersion\":\"1.0\""));
    bi_buf_free(out);
    out = encode(m, BI_DIALECT_TTS_1_1);
    assert_non_null(strstr(out, "\"SenderNSID\":\"0102030405060708\"}"));
    bi_buf_free(out);
    assert_int_equal(bi_msg_set_sender_nsid(m, false, 0), RH_OK);
    assert_false(bi_msg_fields(m)->hdr.present & BI_H_SENDER_NSID);
    /* Result on a 1.1 message, with an Ans type set through the tree. */
    assert_int_equal(bi_msg_set_result(m, BI_RC_MALFORMED_REQUEST, "x"), RH_OK);
    out = encode(m, BI_DIALECT_TTS_1_1);
    assert_non_null(strstr(out, "\"Result\":{\"ResultCode\":\"MalformedMessage\",\"Description\":\"x\"}"));
    bi_buf_free(out);
    /* Refresh re-validates: a bad edit is reported with its field. */
    cJSON_AddNumberToObject(bi_msg_json_mut(m), "DevEUI", 5);
    assert_int_equal(bi_msg_refresh(m, &err), RH_EINVAL);
    assert_string_equal(err.description, "DevEUI: expected a hex string");
    bi_msg_free(m);

    /* Invalid arguments. */
    m = (bi_msg_t *)1;
    assert_int_equal(bi_msg_new(BI_MT_UNKNOWN, BI_VERSION_1_0, (bi_id_t){BI_ID_NETID, 1},
                                (bi_id_t){BI_ID_NETID, 2}, 3, &m), RH_EINVAL);
    assert_null(m);
    assert_int_equal(bi_msg_new(BI_MT_PR_STOP_REQ, BI_VERSION_1_0, (bi_id_t){BI_ID_NETID, 0x1000000},
                                (bi_id_t){BI_ID_NETID, 2}, 3, &m), RH_EINVAL);
    assert_int_equal(bi_msg_new(BI_MT_PR_STOP_REQ, BI_VERSION_UNKNOWN, (bi_id_t){BI_ID_NETID, 1},
                                (bi_id_t){BI_ID_NETID, 2}, 3, &m), RH_EINVAL);
    assert_int_equal(bi_msg_new(BI_MT_PR_STOP_REQ, BI_VERSION_1_0, (bi_id_t){BI_ID_NONE, 1},
                                (bi_id_t){BI_ID_NETID, 2}, 3, &m), RH_EINVAL);

    /* from_json: caller-built tree, ownership taken even on error. */
    cJSON *t = cJSON_Parse(q("{" HDR10 ",'MessageType':'PRStopReq','DevEUI':'0102030405060708'}"));
    assert_int_equal(bi_msg_from_json(t, &m, &err), RH_OK);
    assert_int_equal(bi_msg_fields(m)->dev_eui, 0x0102030405060708ull);
    bi_msg_free(m);
    t = cJSON_Parse(q("{" HDR10 ",'MessageType':'PRStopReq'}"));
    cJSON_AddStringToObject(t, "DevEUI", "0102030405060708");
    cJSON_AddStringToObject(t, "DevEUI", "0102030405060709"); /* cJSON allows building duplicates */
    assert_int_equal(bi_msg_from_json(t, &m, &err), RH_EEXIST);
    assert_string_equal(err.description, "DevEUI: duplicate key");
    bi_msg_free(NULL);
    bi_buf_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_roundtrip),
        cmocka_unit_test(test_vectors_typed),
        cmocka_unit_test(test_unknown_fields_and_tokens),
        cmocka_unit_test(test_hex_leniency),
        cmocka_unit_test(test_netid_exactly_3_bytes),
        cmocka_unit_test(test_recvtime_leniency),
        cmocka_unit_test(test_region_leniency),
        cmocka_unit_test(test_result_code_leniency),
        cmocka_unit_test(test_integer_leniency),
        cmocka_unit_test(test_null_is_absent),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_error_header),
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_setters_and_building),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
