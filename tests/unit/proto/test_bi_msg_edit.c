/*
 * test_bi_msg_edit.c — the codec's message edits that the relay applies (issue #10: message
 * edits are codec operations): bi_msg_set_hnet_id, bi_msg_drop_downlink, bi_msg_strip_gwinfo —
 * tree and typed view agree after each edit, the message counts as mutated only when something
 * changed, and the encoded result decodes to what was asked.
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

static const bi_dialect_t LOWER = {BI_VERSION_1_0, BI_HEX_LOWER, BI_REGION_NAMES_RP002, false, false};

static bi_msg_t *decode(const char *json)
{
    bi_msg_t *m = NULL;
    bi_error_t err;
    if (bi_msg_decode(json, strlen(json), &m, &err) != RH_OK)
        fail_msg("decode: %s", err.description);
    return m;
}

/* encode -> decode: what a receiver would read */
static bi_msg_t *reread(bi_msg_t *m)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(bi_msg_encode(m, &LOWER, &out, &len), RH_OK);
    bi_msg_t *r = NULL;
    assert_int_equal(bi_msg_decode(out, len, &r, NULL), RH_OK);
    bi_buf_free(out);
    return r;
}

/* strict_enums (ChirpStack's closed ResultCode enum, issue #11 item 6): codes outside TS002 1.0
 * are sent as a 1.0 code with the original kept in Description; 1.0 codes pass unchanged. */
static void strict_case(const char *code, const char *desc, const char *want_code,
                        const char *want_desc)
{
    char json[400];
    snprintf(json, sizeof json,
             "{\"ProtocolVersion\":\"1.1\",\"SenderID\":\"000202\",\"ReceiverID\":\"000303\","
             "\"TransactionID\":7,\"MessageType\":\"PRStartAns\",\"Result\":{\"ResultCode\":"
             "\"%s\"%s%s%s}}",
             code, desc ? ",\"Description\":\"" : "", desc ? desc : "", desc ? "\"" : "");
    bi_msg_t *m = decode(json);
    bi_dialect_t strict = BI_DIALECT_CHIRPSTACK_STRICT;
    assert_int_equal(bi_msg_is_canonical_for(m, &strict), false);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(bi_msg_encode(m, &strict, &out, &len), RH_OK);
    cJSON *root = cJSON_Parse(out);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "Result");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(res, "ResultCode")->valuestring,
                        want_code);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(res, "Description");
    if (want_desc)
        assert_string_equal(d->valuestring, want_desc);
    else
        assert_null(d);
    cJSON_Delete(root);
    bi_buf_free(out);
    bi_msg_free(m);
}

static void test_strict_enums(void **state)
{
    (void)state;
    strict_case("FrameReplayed", "seen before", "Other", "ResultCode FrameReplayed: seen before");
    strict_case("NoAction", NULL, "Other", "ResultCode NoAction");
    strict_case("MalformedMessage", "bad", "MalformedRequest", "ResultCode MalformedMessage: bad");
    strict_case("VendorSpecificFailure", NULL, "Other", "ResultCode VendorSpecificFailure");
    strict_case("RoamingActDisallowedA", NULL, "RoamingActDisallowed", NULL); /* a known typo */
    strict_case("MICFailed", "x", "MICFailed", "x"); /* a 1.0 code stays (only re-versioned) */
}

/* bi_msg_splice_header writes exactly what apply + encode would, without re-encoding; it
 * declines (RH_EAGAIN) when the received bytes are not canonical for the dialect. */
static void test_splice_header(void **state)
{
    (void)state;
    const char *raw = "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000202\",\"ReceiverID\":"
                      "\"000000\",\"TransactionID\":7,\"MessageType\":\"HomeNSReq\","
                      "\"DevEUI\":\"0102030405060708\"}";
    bi_msg_t *m = decode(raw);
    bi_header_edit_t e = {true, 4000000000u, false, {BI_ID_NONE, 0}, true,
                          {BI_ID_EUI64, 0x70b3d57ed0000b42ull}};
    char *sp = NULL;
    size_t splen = 0;
    assert_int_equal(bi_msg_splice_header(m, raw, strlen(raw), &LOWER, &e, &sp, &splen), RH_OK);
    assert_int_equal(bi_msg_transaction_id(m), 7); /* m unchanged */
    assert_int_equal(bi_msg_apply_header_edit(m, &e), RH_OK);
    char *enc = NULL;
    size_t enclen = 0;
    assert_int_equal(bi_msg_encode(m, &LOWER, &enc, &enclen), RH_OK);
    assert_string_equal(sp, enc);
    assert_int_equal(splen, enclen);
    bi_buf_free(sp);
    bi_buf_free(enc);
    bi_msg_free(m);
    /* upper-case hex received, lower-case wanted: not canonical, encode instead */
    const char *up = "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"0x00020A\",\"ReceiverID\":"
                     "\"000000\",\"TransactionID\":7,\"MessageType\":\"HomeNSReq\","
                     "\"DevEUI\":\"0102030405060708\"}";
    m = decode(up);
    assert_int_equal(bi_msg_splice_header(m, up, strlen(up), &LOWER, &e, &sp, &splen), RH_EAGAIN);
    assert_null(sp);
    bi_msg_free(m);
}

static void test_set_hnet_id(void **state)
{
    (void)state;
    bi_msg_t *req = decode("{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000202\","
                           "\"ReceiverID\":\"70B3D57ED000AAAA\",\"TransactionID\":7,"
                           "\"MessageType\":\"HomeNSReq\",\"DevEUI\":\"0102030405060708\"}");
    bi_msg_t *ans = NULL;
    assert_int_equal(bi_answer_new(req, BI_RC_SUCCESS, NULL, &ans), RH_OK);
    assert_false(bi_msg_fields(ans)->present & BI_F_HNETID);
    assert_int_equal(bi_msg_set_hnet_id(ans, 0x600013), RH_OK);
    assert_true(bi_msg_fields(ans)->present & BI_F_HNETID);
    assert_int_equal(bi_msg_fields(ans)->hnetid, 0x600013);
    bi_msg_t *r = reread(ans);
    assert_int_equal(bi_msg_fields(r)->hnetid, 0x600013);
    assert_int_equal(bi_msg_header(r)->type, BI_MT_HOME_NS_ANS);
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(bi_msg_json(r), "HNetID");
    assert_string_equal(h->valuestring, "600013");
    /* replacing keeps one HNetID */
    assert_int_equal(bi_msg_set_hnet_id(ans, 0x13), RH_OK);
    bi_msg_free(r);
    r = reread(ans);
    assert_int_equal(bi_msg_fields(r)->hnetid, 0x13);
    assert_int_equal(bi_msg_set_hnet_id(ans, 0x1000000), RH_EINVAL);
    bi_msg_free(r);
    bi_msg_free(ans);
    bi_msg_free(req);
}

static const char *PRSTART_ANS =
    "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000505\",\"ReceiverID\":\"000202\","
    "\"TransactionID\":9,\"MessageType\":\"PRStartAns\",\"Result\":{\"ResultCode\":\"Success\"},"
    "\"PHYPayload\":\"202023cf335489aae3183c0be0baa8dee5\",\"Lifetime\":0,"
    "\"DLMetaData\":{\"DevEUI\":\"0807060504030201\",\"DLFreq1\":868.1,\"RXDelay1\":5,"
    "\"ClassMode\":\"A\",\"DataRate1\":5,\"GWInfo\":[{\"ULToken\":\"0a0b\"}]},"
    "\"DevEUI\":\"0102030405060708\",\"VendorField\":{\"k\":1}}";

static void test_drop_downlink(void **state)
{
    (void)state;
    bi_msg_t *m = decode(PRSTART_ANS);
    assert_true(bi_msg_fields(m)->present & BI_F_PHY_PAYLOAD);
    assert_true(bi_msg_fields(m)->present & BI_F_DL_META);
    assert_true(bi_msg_is_canonical_for(m, &LOWER));
    assert_int_equal(bi_msg_drop_downlink(m), 2);
    assert_false(bi_msg_fields(m)->present & BI_F_PHY_PAYLOAD);
    assert_false(bi_msg_fields(m)->present & BI_F_DL_META);
    assert_false(bi_msg_is_canonical_for(m, &LOWER)); /* mutated: re-encoded, not the raw bytes */
    assert_int_equal(bi_msg_set_result(m, BI_RC_NO_ROAMING_AGREEMENT, "policy"), RH_OK);
    bi_msg_t *r = reread(m);
    const cJSON *root = bi_msg_json(r);
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "PHYPayload"));
    assert_null(cJSON_GetObjectItemCaseSensitive(root, "DLMetaData"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(root, "VendorField")); /* others kept */
    assert_int_equal(bi_msg_fields(r)->result_code, BI_RC_NO_ROAMING_AGREEMENT);
    assert_int_equal(bi_msg_fields(r)->dev_eui, 0x0102030405060708ull);
    /* nothing left to drop: no change */
    assert_int_equal(bi_msg_drop_downlink(r), 0);
    assert_true(bi_msg_is_canonical_for(r, &LOWER));
    bi_msg_free(r);
    bi_msg_free(m);
}

static void test_strip_gwinfo(void **state)
{
    (void)state;
    bi_msg_t *m =
        decode("{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000202\",\"ReceiverID\":\"000505\","
               "\"TransactionID\":3,\"MessageType\":\"PRStartReq\",\"PHYPayload\":"
               "\"400100000a00010001aa01020304\","
               "\"ULMetaData\":{\"DataRate\":5,\"ULFreq\":868.1,\"RFRegion\":\"EU868\",\"GWCnt\":2,"
               "\"GWInfo\":[{\"ID\":\"05060708\",\"RSSI\":-80,\"SNR\":7.5,\"Lat\":52.1,\"Lon\":4.3,"
               "\"FineRecvTime\":12,\"ULToken\":\"0a\"},{\"ID\":\"05060709\",\"RSSI\":-90}]}}");
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_LOCATION), 3);
    const bi_fields_t *f = bi_msg_fields(m);
    assert_true(f->ul.gw[0].present & BI_GW_RSSI);
    assert_false(f->ul.gw[0].present & BI_GW_LAT);
    bi_msg_t *r = reread(m);
    assert_int_equal(bi_msg_fields(r)->ul.gw_count, 2);
    assert_true(bi_msg_fields(r)->ul.gw[0].present & BI_GW_SNR);
    assert_false(bi_msg_fields(r)->ul.gw[0].present & BI_GW_FINE_RECV_TIME);
    bi_msg_free(r);
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL), 3);
    r = reread(m);
    assert_false(bi_msg_fields(r)->ul.gw[0].present & BI_GW_RSSI);
    assert_false(bi_msg_fields(r)->ul.gw[1].present & BI_GW_RSSI);
    assert_true(bi_msg_fields(r)->ul.gw[0].present & BI_GW_UL_TOKEN);
    bi_msg_free(r);
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL | BI_STRIP_LOCATION), 0);
    bi_msg_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_hnet_id),
        cmocka_unit_test(test_strict_enums),
        cmocka_unit_test(test_splice_header),
        cmocka_unit_test(test_drop_downlink),
        cmocka_unit_test(test_strip_gwinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
