/* Unit tests for the one-pass TS002 decoder (proto/bi_fast.h), linked with the differential
 * fuzz target tests/fuzz/fuzz_bi_fast.c (bi_fast_differential aborts on any difference from
 * bi_msg_decode): every example of ../shared/vectors/bi_json_examples.json, compact and
 * indented, takes the one pass with the full decoder's view; what the one pass must hand over
 * (escapes, non-ASCII, duplicate keys, opaque objects, refusals) is decided by bi_msg_decode
 * with its ResultCode and Description; the tree of a forwarded message is parsed only when
 * needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bi_fast.h"
#include "rh_test.h"

int bi_fast_differential(const char *body, size_t len);

static const char *prstart =
    "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000505\",\"ReceiverID\":\"000013\","
    "\"TransactionID\":42,\"MessageType\":\"PRStartReq\",\"PHYPayload\":\"40040302018000010001a2b3c4d5\","
    "\"ULMetaData\":{\"DevAddr\":\"01020304\",\"DataRate\":5,\"ULFreq\":868.1,"
    "\"RecvTime\":\"2026-12-06T10:00:00.123Z\",\"RFRegion\":\"EU868\",\"GWCnt\":1,"
    "\"GWInfo\":[{\"ID\":\"0102030405060708\",\"RSSI\":-60,\"SNR\":7.5,\"Lat\":52.1,\"Lon\":4.3,"
    "\"ULToken\":\"abc\",\"DLAllowed\":true}]}}";

static void test_vectors_take_the_one_pass(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("bi_json_examples.json");
    const cJSON *ex;
    int n = 0;
    cJSON_ArrayForEach(ex, cJSON_GetObjectItem(root, "examples"))
    {
        const cJSON *msg = cJSON_GetObjectItem(ex, "message");
        char *compact = cJSON_PrintUnformatted(msg), *pretty = cJSON_Print(msg);
        if (!bi_fast_differential(compact, strlen(compact)) ||
            !bi_fast_differential(pretty, strlen(pretty)))
            fail_msg("%s: not decoded in one pass", cJSON_GetObjectItem(ex, "name")->valuestring);
        free(compact);
        free(pretty);
        n++;
    }
    assert_true(n >= 16);
    cJSON_Delete(root);
    assert_int_equal(bi_fast_differential(prstart, strlen(prstart)), 1);
}

/* Number spellings: the one pass's own conversion (no exponent, up to 15 significant digits and
 * 22 fraction digits) and its strtod fallback give the full decoder's values bit for bit. */
static void test_number_spellings(void **state)
{
    (void)state;
    static const char *const freq[] = {"868.1", "868.10", "868.100000000000001", "8681e-1",
                                       "0.8681e3", "868.1000000000000", "868.1000000000000000000001",
                                       "868", "868.000000000000000000001",
                                       /* not whole Hz: the sender's digits stay in bytes
                                        * forwarded as received, an encoding rounds to whole Hz */
                                       "868.0999999999999", "868.1000004", "868.1000005",
                                       "867.9999995"};
    static const char *const rate[] = {"5", "5.0", "0", "-0", "5.00000000000000000000"};
    char body[1024];
    for (size_t i = 0; i < sizeof freq / sizeof freq[0]; i++)
        for (size_t j = 0; j < sizeof rate / sizeof rate[0]; j++) {
            snprintf(body, sizeof body,
                     "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000505\",\"ReceiverID\":\"000013\","
                     "\"TransactionID\":7,\"MessageType\":\"PRStartReq\",\"PHYPayload\":\"40040302018000010001a2b3c4d5\","
                     "\"ULMetaData\":{\"DataRate\":%s,\"ULFreq\":%s,\"RFRegion\":\"EU868\"}}",
                     rate[j], freq[i]);
            if (bi_fast_differential(body, strlen(body)) != 1)
                fail_msg("ULFreq %s, DataRate %s: not taken in one pass", freq[i], rate[j]);
        }
}

/* Keys are predicted from the order the previous message on this thread used (bi_fast.c
 * predicted_key): another order, a longer key starting with a predicted one, a duplicate of a
 * predicted key and a predicted key written with an escape all give the full decoder's answer. */
static void test_predicted_key_order(void **state)
{
    (void)state;
    static const char *const variants[] = {
        /* the learned order */
        "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000505\",\"ReceiverID\":\"000013\","
        "\"TransactionID\":7,\"MessageType\":\"PRStartReq\",\"PHYPayload\":\"40040302018000010001a2b3c4d5\","
        "\"ULMetaData\":{\"DataRate\":5,\"ULFreq\":868.1,\"RFRegion\":\"EU868\"}}",
        /* reversed */
        "{\"ULMetaData\":{\"RFRegion\":\"EU868\",\"ULFreq\":868.1,\"DataRate\":5},"
        "\"PHYPayload\":\"40040302018000010001a2b3c4d5\",\"MessageType\":\"PRStartReq\","
        "\"TransactionID\":7,\"ReceiverID\":\"000013\",\"SenderID\":\"000505\",\"ProtocolVersion\":\"1.0\"}",
        /* "ULFreqX" where ULFreq is predicted: an unknown member, skipped */
        "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000505\",\"ReceiverID\":\"000013\","
        "\"TransactionID\":7,\"MessageType\":\"PRStartReq\",\"PHYPayload\":\"40040302018000010001a2b3c4d5\","
        "\"ULMetaData\":{\"DataRate\":5,\"ULFreqX\":1,\"ULFreq\":868.1,\"RFRegion\":\"EU868\"}}",
    };
    static const int one_pass[] = {1, 1, 1};
    for (int round = 0; round < 2; round++) /* the second round starts from a learned order */
        for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++)
            if (bi_fast_differential(variants[i], strlen(variants[i])) != one_pass[i])
                fail_msg("round %d, variant %zu: one pass %d", round, i, !one_pass[i]);
    /* with SenderID predicted after ProtocolVersion: a duplicate, and an escaped spelling */
    static const char *const deferred[] = {
        "{\"ProtocolVersion\":\"1.0\",\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000505\","
        "\"ReceiverID\":\"000013\",\"TransactionID\":7,\"MessageType\":\"PRStartReq\"}",
        "{\"ProtocolVersion\":\"1.0\",\"Sender\\u0049D\":\"000505\",\"ReceiverID\":\"000013\","
        "\"TransactionID\":7,\"MessageType\":\"PRStartReq\"}",
    };
    for (size_t i = 0; i < sizeof deferred / sizeof deferred[0]; i++) {
        assert_int_equal(bi_fast_differential(variants[0], strlen(variants[0])), 1);
        assert_int_equal(bi_fast_differential(deferred[i], strlen(deferred[i])), 0);
    }
}

/* Variants of one PRStartReq: those the one pass takes give the full decoder's view; those it
 * hands to bi_msg_decode are decided (accepted or refused) exactly as bi_msg_decode does. */
static void test_deferred_spellings(void **state)
{
    (void)state;
    static const struct {
        const char *from, *to;
        int accepted; /* by bi_msg_decode */
        int fast;     /* taken by the one pass */
    } v[] = {
        {"\"PRStartReq\"", "\"PRStart\\u0052eq\"", 1, 0},          /* escape */
        {"\"abc\"", "\"caf\xc3\xa9\"", 1, 0},                        /* non-ASCII token */
        {"\"TransactionID\":42", "\"TransactionID\":42.0", 1, 1},   /* integer written 42.0 */
        {"\"GWCnt\":1", "\"GWCnt\":1,\"VSExtension\":{}", 1, 1},    /* not top level: unknown */
        {"\"TransactionID\":42", "\"TransactionID\":42,\"VSExtension\":{\"a\":1}", 1, 0},
        {"\"TransactionID\":42", "\"TransactionID\":42,\"X\":1,\"X\":2", 0, 0},
        {"\"TransactionID\":42", "\"TransactionID\":42,\"TransactionID\":43", 0, 0},
        {"\"RSSI\":-60", "\"RSSI\":-60.5", 0, 0},
        {"\"1.0\"", "\"2.0\"", 0, 0},
        {"\"01020304\"", "\"010203\"", 0, 0},
        {"\"40040302018000010001a2b3c4d5\"", "\"\"", 0, 0},
        {"\"DataRate\":5", "\"DataRate\":16", 0, 0},
        {"\"ULFreq\":868.1", "\"ULFreq\":1e999", 0, 0},
        {"{\"ProtocolVersion\"", "{\f\"ProtocolVersion\"", 1, 0}, /* cJSON's whitespace */
        {"\"DataRate\":5", "\"DataRate\":05", 1, 0},              /* cJSON reads 05 as 5 */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char body[2048];
        const char *at = strstr(prstart, v[i].from);
        assert_non_null(at);
        int k = snprintf(body, sizeof body, "%.*s%s%s", (int)(at - prstart), prstart, v[i].to,
                         at + strlen(v[i].from));
        assert_true(k > 0 && (size_t)k < sizeof body);
        bi_msg_t *m = NULL;
        if ((bi_fast_decode(body, strlen(body), &m) == RH_OK) != v[i].fast)
            fail_msg("case %zu %s by the one pass: %s", i, v[i].fast ? "not taken" : "taken", body);
        bi_msg_free(m);
        m = NULL;
        assert_int_equal(bi_fast_differential(body, strlen(body)), v[i].fast);
        bi_error_t err;
        int r = bi_msg_decode_fast(body, strlen(body), &m, &err);
        if ((r == RH_OK) != v[i].accepted)
            fail_msg("case %zu: %s (%s)", i, r ? "refused" : "accepted", err.description);
        if (r != RH_OK)
            assert_true(err.description[0] != '\0');
        bi_msg_free(m);
    }
    /* A refusal through the wrapper keeps bi_msg_decode's ResultCode and Description. */
    const char *bad = "{\"ProtocolVersion\":\"9.9\",\"SenderID\":\"000505\",\"ReceiverID\":\"000013\","
                      "\"TransactionID\":1,\"MessageType\":\"PRStartReq\"}";
    bi_msg_t *m = NULL;
    bi_error_t err;
    assert_int_equal(bi_msg_decode_fast(bad, strlen(bad), &m, &err), RH_EVERSION);
    assert_int_equal(err.code, BI_RC_INVALID_PROTOCOL_VERSION);
    assert_non_null(strstr(err.description, "ProtocolVersion"));
    assert_int_equal(err.hdr.transaction_id, 1);
}

/* A message forwarded as received never needs its tree; GWInfo members are stripped from the
 * bytes; an encoding parses the tree (without the stripped members) and keeps the values. */
static void test_tree_on_demand(void **state)
{
    (void)state;
    bi_msg_t *m = NULL;
    assert_int_equal(bi_fast_decode(prstart, strlen(prstart), &m), RH_OK);
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK;
    assert_true(bi_msg_is_canonical_for(m, &cs));
    const bi_fields_t *f = bi_msg_fields(m);
    assert_int_equal(f->ul.dev_addr, 0x01020304);
    assert_int_equal(f->ul.gw_count, 1);
    assert_int_equal(f->ul.gw[0].rssi, -60);
    assert_string_equal(f->ul.gw[0].ul_token, "abc");
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL), 2);
    assert_false(bi_msg_is_canonical_for(m, &cs));
    assert_int_equal(bi_msg_fields(m)->ul.gw[0].present & (BI_GW_RSSI | BI_GW_SNR), 0);
    /* Dropped from the bytes: the splice writes the element without them, the rest as received. */
    bi_header_edit_t e = {true, 7, false, {BI_ID_NONE, 0}, false, {BI_ID_NONE, 0}};
    char *sp = NULL;
    size_t sl = 0;
    assert_int_equal(bi_msg_splice_header(m, prstart, strlen(prstart), &cs, &e, &sp, &sl), RH_OK);
    assert_null(strstr(sp, "RSSI"));
    assert_null(strstr(sp, "SNR"));
    assert_non_null(strstr(sp, "{\"ID\":\"0102030405060708\",\"Lat\":52.1,\"Lon\":4.3,"
                               "\"ULToken\":\"abc\",\"DLAllowed\":true}"));
    assert_non_null(strstr(sp, "\"TransactionID\":7,"));
    assert_int_equal(bi_fast_differential(sp, sl), 1);
    bi_buf_free(sp);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(bi_msg_encode(m, &cs, &out, &len), RH_OK);
    assert_null(strstr(out, "RSSI"));
    assert_non_null(strstr(out, "\"ULToken\":\"abc\""));
    assert_non_null(bi_msg_json(m));
    assert_string_equal(bi_msg_fields(m)->ul.gw[0].ul_token, "abc");
    bi_buf_free(out);
    bi_msg_free(m);
}

/* A PRStartReq of `count` GWInfo elements into buf: `head` up to and including "GWInfo":[, each
 * element printed with `elem` given (separator, i, i, i), then "]}}". Returns its length. */
static size_t with_gwinfo(char *buf, size_t cap, const char *head, int count, const char *elem)
{
    size_t n = (size_t)snprintf(buf, cap, "%s", head);
    for (int i = 0; i < count; i++)
        n += (size_t)snprintf(buf + n, cap - n, elem, i ? "," : "", i, i, i);
    n += (size_t)snprintf(buf + n, cap - n, "]}}");
    assert_true(n < cap);
    return n;
}

/* More GWInfo members and elements than the message holds inline (16 members, 4 elements):
 * the recorded spans move to the heap and stay right — every element is stripped in the bytes. */
static void test_many_gwinfo_elements(void **state)
{
    (void)state;
    char body[4096];
    size_t n = with_gwinfo(body, sizeof body,
        "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"000505\",\"ReceiverID\":\"000013\","
        "\"TransactionID\":42,\"MessageType\":\"PRStartReq\",\"PHYPayload\":\"40040302018000010001a2b3c4d5\","
        "\"ULMetaData\":{\"DevAddr\":\"01020304\",\"DataRate\":5,\"ULFreq\":868.1,\"GWCnt\":6,\"GWInfo\":[",
        6, "%s{\"ID\":\"01020304050607%02x\",\"RSSI\":-6%d,\"SNR\":7.5,\"Lat\":52.1,"
           "\"Lon\":4.3,\"ULToken\":\"t%d\",\"DLAllowed\":true}");
    assert_int_equal(bi_fast_differential(body, n), 1);
    bi_msg_t *m = NULL;
    assert_int_equal(bi_fast_decode(body, n, &m), RH_OK);
    const bi_fields_t *f = bi_msg_fields(m);
    assert_int_equal(f->ul.gw_count, 6);
    assert_int_equal(f->ul.gw[5].rssi, -65);
    assert_string_equal(f->ul.gw[5].ul_token, "t5");
    assert_int_equal(bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL), 12);
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK;
    bi_header_edit_t e = {true, 7, false, {BI_ID_NONE, 0}, false, {BI_ID_NONE, 0}};
    char *sp = NULL;
    size_t sl = 0;
    assert_int_equal(bi_msg_splice_header(m, body, n, &cs, &e, &sp, &sl), RH_OK);
    assert_null(strstr(sp, "RSSI"));
    assert_null(strstr(sp, "SNR"));
    for (int i = 0; i < 6; i++) {
        char el[128];
        snprintf(el, sizeof el, "{\"ID\":\"01020304050607%02x\",\"Lat\":52.1,\"Lon\":4.3,"
                 "\"ULToken\":\"t%d\",\"DLAllowed\":true}", i, i);
        assert_non_null(strstr(sp, el));
    }
    assert_int_equal(bi_fast_differential(sp, sl), 1);
    bi_buf_free(sp);
    bi_msg_free(m);
}

/* Bytes canonical for a dialect but for hex case (Helium/TTS upper case to ChirpStack's lower
 * case) are respelled in place of a re-encoding: typed hex fields change case, opaque strings
 * (ULToken) and everything else stay as received, and the result decodes to the same values
 * as bi_msg_encode's. Mixed case, "0x" and more hex fields than recorded are re-encoded. */
static void test_hex_case_respelled_in_the_bytes(void **state)
{
    (void)state;
    const char *up =
        "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"00000A\",\"ReceiverID\":\"0000BC\","
        "\"TransactionID\":42,\"MessageType\":\"PRStartReq\",\"PHYPayload\":\"40040302018000010001A2B3C4D5\","
        "\"ULMetaData\":{\"DevAddr\":\"0102030F\",\"DataRate\":5,\"ULFreq\":868.1,"
        "\"RFRegion\":\"EU868\",\"GWCnt\":1,"
        "\"GWInfo\":[{\"ID\":\"0102030405060AEF\",\"RSSI\":-60,\"SNR\":7.5,"
        "\"ULToken\":\"ABCDEF\",\"DLAllowed\":true}]}}";
    bi_dialect_t cs = BI_DIALECT_CHIRPSTACK, he = BI_DIALECT_HELIUM;
    bi_msg_t *m = NULL;
    assert_int_equal(bi_fast_decode(up, strlen(up), &m), RH_OK);
    assert_true(bi_msg_is_canonical_for(m, &he));
    assert_false(bi_msg_is_canonical_for(m, &cs));
    bi_header_edit_t e = {true, 7, false, {BI_ID_NONE, 0}, false, {BI_ID_NONE, 0}};
    char *sp = NULL, *enc = NULL;
    size_t sl = 0, el = 0;
    assert_int_equal(bi_msg_splice_header(m, up, strlen(up), &cs, &e, &sp, &sl), RH_OK);
    assert_int_equal(sl, strlen(up) - 1); /* "42" -> "7" */
    assert_non_null(strstr(sp, "\"SenderID\":\"00000a\",\"ReceiverID\":\"0000bc\",\"TransactionID\":7,"));
    assert_non_null(strstr(sp, "\"PHYPayload\":\"40040302018000010001a2b3c4d5\""));
    assert_non_null(strstr(sp, "\"DevAddr\":\"0102030f\""));
    assert_non_null(strstr(sp, "\"ID\":\"0102030405060aef\""));
    assert_non_null(strstr(sp, "\"ULToken\":\"ABCDEF\"")); /* opaque: as received */
    assert_non_null(strstr(sp, "\"RFRegion\":\"EU868\""));
    /* the same message as the re-encoding gives */
    assert_int_equal(bi_msg_apply_header_edit(m, &e), RH_OK);
    assert_int_equal(bi_msg_encode(m, &cs, &enc, &el), RH_OK);
    bi_msg_t *a = NULL, *b = NULL;
    bi_error_t err;
    assert_int_equal(bi_msg_decode(sp, sl, &a, &err), RH_OK);
    assert_int_equal(bi_msg_decode(enc, el, &b, &err), RH_OK);
    assert_true(bi_msg_is_canonical_for(a, &cs));
    const bi_fields_t *fa = bi_msg_fields(a), *fb = bi_msg_fields(b);
    assert_int_equal(fa->hdr.transaction_id, 7);
    assert_int_equal(fa->hdr.sender_id.value, fb->hdr.sender_id.value);
    assert_int_equal(fa->hdr.receiver_id.value, fb->hdr.receiver_id.value);
    assert_int_equal(fa->phy_payload_len, fb->phy_payload_len);
    assert_memory_equal(fa->phy_payload, fb->phy_payload, fa->phy_payload_len);
    assert_int_equal(fa->ul.dev_addr, 0x0102030F);
    assert_int_equal(fa->ul.dev_addr, fb->ul.dev_addr);
    assert_int_equal(fa->ul.gw[0].id, fb->ul.gw[0].id);
    assert_string_equal(fa->ul.gw[0].ul_token, fb->ul.gw[0].ul_token);
    bi_msg_free(a);
    bi_msg_free(b);
    bi_buf_free(sp);
    bi_buf_free(enc);
    bi_msg_free(m);

    /* mixed case, or a "0x" prefix: not respelled */
    static const char *const refused[][2] = {{"\"00000A\"", "\"00000a\""}, {"\"00000A\"", "\"0x00000A\""}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char body[1024];
        const char *at = strstr(up, refused[i][0]);
        size_t pre = (size_t)(at - up);
        snprintf(body, sizeof body, "%.*s%s%s", (int)pre, up, refused[i][1], at + strlen(refused[i][0]));
        assert_int_equal(bi_msg_decode_fast(body, strlen(body), &m, &err), RH_OK);
        assert_int_equal(bi_msg_splice_header(m, body, strlen(body), &cs, &e, &sp, &sl), RH_EAGAIN);
        bi_msg_free(m);
    }
    /* more typed hex fields than recorded (50 GWInfo IDs): re-encoded instead */
    char big[8192];
    size_t n = with_gwinfo(big, sizeof big,
        "{\"ProtocolVersion\":\"1.0\",\"SenderID\":\"00000A\",\"ReceiverID\":\"0000BC\","
        "\"TransactionID\":42,\"MessageType\":\"PRStartReq\",\"PHYPayload\":\"40040302018000010001A2B3C4D5\","
        "\"ULMetaData\":{\"DataRate\":5,\"ULFreq\":868.1,\"GWCnt\":50,\"GWInfo\":[",
        50, "%s{\"ID\":\"0102030405060A%02X\"}");
    assert_int_equal(bi_fast_decode(big, n, &m), RH_OK);
    assert_true(bi_msg_is_canonical_for(m, &he));
    assert_int_equal(bi_msg_splice_header(m, big, n, &cs, &e, &sp, &sl), RH_EAGAIN);
    assert_int_equal(bi_msg_splice_header(m, big, n, &he, &e, &sp, &sl), RH_OK); /* same case */
    bi_buf_free(sp);
    bi_msg_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_take_the_one_pass),
        cmocka_unit_test(test_number_spellings),
        cmocka_unit_test(test_predicted_key_order),
        cmocka_unit_test(test_deferred_spellings),
        cmocka_unit_test(test_tree_on_demand),
        cmocka_unit_test(test_many_gwinfo_elements),
        cmocka_unit_test(test_hex_case_respelled_in_the_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
