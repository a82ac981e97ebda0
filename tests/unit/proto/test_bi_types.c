/* Unit tests for bi_types: MessageType, ResultCode (spelling rules per version/dialect, aliases,
 * unknown -> Other), RFRegion (spec, RP002 common and band names, case, '-'/'_'), RFC 3339. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "bi_types.h"

static void test_msg_types(void **state)
{
    (void)state;
    for (int t = 1; t < BI_MT_COUNT; t++) {
        const char *n = bi_msg_type_name((bi_msg_type_t)t);
        assert_non_null(n);
        assert_int_equal(bi_msg_type_parse(n), t);
    }
    assert_int_equal(bi_msg_type_parse("prstartreq"), BI_MT_UNKNOWN); /* case-sensitive */
    assert_int_equal(bi_msg_type_parse("Foo"), BI_MT_UNKNOWN);
    assert_null(bi_msg_type_name(BI_MT_UNKNOWN));
    assert_null(bi_msg_type_name(BI_MT_COUNT));
    static const struct {
        bi_msg_type_t req, ans;
    } pairs[] = {
        {BI_MT_PR_START_REQ, BI_MT_PR_START_ANS}, {BI_MT_PR_STOP_REQ, BI_MT_PR_STOP_ANS},
        {BI_MT_XMIT_DATA_REQ, BI_MT_XMIT_DATA_ANS}, {BI_MT_PROFILE_REQ, BI_MT_PROFILE_ANS},
        {BI_MT_HOME_NS_REQ, BI_MT_HOME_NS_ANS}, {BI_MT_JOIN_REQ, BI_MT_JOIN_ANS},
        {BI_MT_REJOIN_REQ, BI_MT_REJOIN_ANS}, {BI_MT_APP_SKEY_REQ, BI_MT_APP_SKEY_ANS},
        {BI_MT_HR_START_REQ, BI_MT_HR_START_ANS}, {BI_MT_HR_STOP_REQ, BI_MT_HR_STOP_ANS},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_true(bi_msg_type_is_request(pairs[i].req));
        assert_true(bi_msg_type_is_answer(pairs[i].ans));
        assert_int_equal(bi_msg_type_answer_for(pairs[i].req), pairs[i].ans);
        assert_int_equal(bi_msg_type_answer_for(pairs[i].ans), BI_MT_UNKNOWN);
    }
    assert_int_equal(bi_msg_type_answer_for(BI_MT_PR_START_NOTIF), BI_MT_UNKNOWN);
    assert_int_equal(bi_msg_type_answer_for(BI_MT_ERROR_NOTIF), BI_MT_UNKNOWN);
    assert_false(bi_msg_type_is_request(BI_MT_ERROR_NOTIF));
    assert_false(bi_msg_type_is_answer(BI_MT_PR_START_NOTIF));
}

static void test_versions(void **state)
{
    (void)state;
    assert_int_equal(bi_version_parse("1.0", 3), BI_VERSION_1_0);
    assert_int_equal(bi_version_parse("1.1", 3), BI_VERSION_1_1);
    assert_int_equal(bi_version_parse("1.2", 3), BI_VERSION_UNKNOWN);
    assert_int_equal(bi_version_parse("1.0.0", 5), BI_VERSION_UNKNOWN);
    assert_int_equal(bi_version_parse("", 0), BI_VERSION_UNKNOWN);
    assert_string_equal(bi_version_name(BI_VERSION_1_0), "1.0");
    assert_string_equal(bi_version_name(BI_VERSION_1_1), "1.1");
    assert_null(bi_version_name(BI_VERSION_UNKNOWN));
}

static void test_result_codes(void **state)
{
    (void)state;
    /* Every canonical name (1.0 and 1.1) parses to itself, exactly. */
    static const char *const all[] = {
        "Success", "MICFailed", "FrameReplayed", "JoinReqFailed", "NoRoamingAgreement",
        "DevRoamingDisallowed", "RoamingActDisallowed", "ActivationDisallowed", "UnknownDevEUI",
        "UnknownDevAddr", "UnknownSender", "UnkownReceiver", "Deferred", "XmitFailed",
        "InvalidFPort", "InvalidProtocolVersion", "StaleDeviceProfile", "MalformedRequest",
        "MalformedMessage", "FrameSizeError", "NoAction", "Other",
    };
    assert_int_equal(sizeof all / sizeof all[0], BI_RC_COUNT);
    for (int i = 0; i < BI_RC_COUNT; i++) {
        bool exact = false;
        assert_int_equal(bi_result_code_parse(all[i], &exact), i);
        assert_true(exact);
    }
    static const struct {
        const char *in;
        bi_result_code_t rc;
        bool exact;
    } lenient[] = {
        {"UnknownReceiver", BI_RC_UNKNOWN_RECEIVER, true},
        {"unkownreceiver", BI_RC_UNKNOWN_RECEIVER, false},
        {"UNKNOWNRECEIVER", BI_RC_UNKNOWN_RECEIVER, false},
        {"UnknownReceiverID", BI_RC_UNKNOWN_RECEIVER, false},
        {"RoamingActDisallowedA", BI_RC_ROAMING_ACT_DISALLOWED, false},
        {"success", BI_RC_SUCCESS, false},
        {"VendorSpecificThing", BI_RC_OTHER, false},
        {"", BI_RC_OTHER, false},
    };
    for (size_t i = 0; i < sizeof lenient / sizeof lenient[0]; i++) {
        bool exact = !lenient[i].exact;
        assert_int_equal(bi_result_code_parse(lenient[i].in, &exact), lenient[i].rc);
        assert_int_equal(exact, lenient[i].exact);
    }
    assert_int_equal(bi_result_code_parse(NULL, NULL), BI_RC_OTHER);
    /* Output spelling per version and dialect. */
    assert_string_equal(bi_result_code_name(BI_RC_MALFORMED_REQUEST, BI_VERSION_1_0, false), "MalformedRequest");
    assert_string_equal(bi_result_code_name(BI_RC_MALFORMED_REQUEST, BI_VERSION_1_1, false), "MalformedMessage");
    assert_string_equal(bi_result_code_name(BI_RC_MALFORMED_MESSAGE, BI_VERSION_1_0, false), "MalformedRequest");
    assert_string_equal(bi_result_code_name(BI_RC_MALFORMED_MESSAGE, BI_VERSION_UNKNOWN, false), "MalformedRequest");
    assert_string_equal(bi_result_code_name(BI_RC_UNKNOWN_RECEIVER, BI_VERSION_1_0, false), "UnkownReceiver");
    assert_string_equal(bi_result_code_name(BI_RC_UNKNOWN_RECEIVER, BI_VERSION_1_1, true), "UnknownReceiver");
    assert_string_equal(bi_result_code_name(BI_RC_NO_ACTION, BI_VERSION_1_1, false), "NoAction");
    assert_null(bi_result_code_name(BI_RC_COUNT, BI_VERSION_1_0, false));
    assert_int_equal(bi_result_code_malformed(BI_VERSION_1_1), BI_RC_MALFORMED_MESSAGE);
    assert_int_equal(bi_result_code_malformed(BI_VERSION_1_0), BI_RC_MALFORMED_REQUEST);
    assert_int_equal(bi_result_code_malformed(BI_VERSION_UNKNOWN), BI_RC_MALFORMED_REQUEST);
}

static void test_regions(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bi_region_t r;
    } tab[] = {
        {"EU868", BI_REGION_EU868},       {"eu868", BI_REGION_EU868},
        {"EU863-870", BI_REGION_EU868},   {"US915", BI_REGION_US915},
        {"US902", BI_REGION_US915},       {"us902-928", BI_REGION_US915},
        {"Australia915", BI_REGION_AU915}, {"AUSTRALIA915", BI_REGION_AU915},
        {"AU915", BI_REGION_AU915},       {"China470", BI_REGION_CN470},
        {"CN470", BI_REGION_CN470},       {"China779", BI_REGION_CN779},
        {"CN779", BI_REGION_CN779},       {"EU433", BI_REGION_EU433},
        {"AS923", BI_REGION_AS923},       {"AS923-1", BI_REGION_AS923},
        {"AS923_1", BI_REGION_AS923},     {"AS923-2", BI_REGION_AS923_2},
        {"AS923_2", BI_REGION_AS923_2},   {"as923_3", BI_REGION_AS923_3},
        {"AS923-4", BI_REGION_AS923_4},   {"KR920", BI_REGION_KR920},
        {"IN865", BI_REGION_IN865},       {"RU864", BI_REGION_RU864},
        {"ISM2400", BI_REGION_ISM2400},   {"Mars1", BI_REGION_UNKNOWN},
        {"", BI_REGION_UNKNOWN},          {"AS923-", BI_REGION_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (bi_region_parse(tab[i].in) != tab[i].r)
            fail_msg("region %s: got %d want %d", tab[i].in, bi_region_parse(tab[i].in), tab[i].r);
    assert_string_equal(bi_region_name(BI_REGION_US915, BI_REGION_NAMES_RP002), "US915");
    assert_string_equal(bi_region_name(BI_REGION_US915, BI_REGION_NAMES_SPEC), "US902");
    assert_string_equal(bi_region_name(BI_REGION_AU915, BI_REGION_NAMES_SPEC), "Australia915");
    assert_string_equal(bi_region_name(BI_REGION_CN470, BI_REGION_NAMES_SPEC), "China470");
    assert_string_equal(bi_region_name(BI_REGION_CN779, BI_REGION_NAMES_SPEC), "China779");
    assert_string_equal(bi_region_name(BI_REGION_AS923_2, BI_REGION_NAMES_RP002), "AS923-2");
    assert_string_equal(bi_region_name(BI_REGION_KR920, BI_REGION_NAMES_SPEC), "KR920");
    assert_null(bi_region_name(BI_REGION_UNKNOWN, BI_REGION_NAMES_RP002));
    /* Every name round-trips in both namings. */
    for (int r = 1; r < BI_REGION_COUNT; r++) {
        assert_int_equal(bi_region_parse(bi_region_name((bi_region_t)r, BI_REGION_NAMES_RP002)), r);
        assert_int_equal(bi_region_parse(bi_region_name((bi_region_t)r, BI_REGION_NAMES_SPEC)), r);
    }
}

static void test_times(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t sec;
        uint32_t nsec;
        const char *out;
    } ok[] = {
        {"2024-01-01T12:00:00Z", 1704110400, 0, "2024-01-01T12:00:00.000Z"},
        {"2024-01-01T12:00:00.123456789Z", 1704110400, 123456789, "2024-01-01T12:00:00.123456789Z"},
        {"2024-01-01T12:00:00.5Z", 1704110400, 500000000, "2024-01-01T12:00:00.500Z"},
        {"2024-01-01T12:00:00.123456Z", 1704110400, 123456000, "2024-01-01T12:00:00.123456Z"},
        {"2024-01-01T12:00:00.1234567891234z", 1704110400, 123456789, "2024-01-01T12:00:00.123456789Z"},
        {"2024-01-01T12:00:00+00:00", 1704110400, 0, "2024-01-01T12:00:00.000Z"},
        {"2024-01-01T14:30:00.250+02:30", 1704110400, 250000000, "2024-01-01T12:00:00.250Z"},
        {"2024-01-01T00:00:00-05:00", 1704085200, 0, "2024-01-01T05:00:00.000Z"},
        {"2017-12-27T17:06:35Z", 1514394395, 0, "2017-12-27T17:06:35.000Z"},
        {"2022-11-03T20:32:53Z", 1667507573, 0, "2022-11-03T20:32:53.000Z"},
        {"2024-02-29t23:59:59Z", 1709251199, 0, "2024-02-29T23:59:59.000Z"},
        {"1970-01-01 00:00:00Z", 0, 0, "1970-01-01T00:00:00.000Z"},
        {"2016-12-31T23:59:60Z", 1483228800, 0, "2017-01-01T00:00:00.000Z"},
        {"2026-11-21T12:00:00.123Z", 1795262400, 123000000, "2026-11-21T12:00:00.123Z"},
        {"2016-12-31T23:59:60.000Z", 1483228800, 0, "2017-01-01T00:00:00.000Z"},
        {"2024-02-29t23:59:59.000Z", 1709251199, 0, "2024-02-29T23:59:59.000Z"},
        {"2024-02-29T23:59:59.000z", 1709251199, 0, "2024-02-29T23:59:59.000Z"},
        {"2024-01-01T14:30:00.250+02:30", 1704110400, 250000000, "2024-01-01T12:00:00.250Z"},
    };
    size_t canonical = 0;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        bi_time_t t;
        rh_diag_t d;
        if (bi_time_parse(ok[i].in, &t, "RecvTime", &d) != RH_OK)
            fail_msg("%s: %s", ok[i].in, d.text);
        if (t.sec != ok[i].sec || t.nsec != ok[i].nsec)
            fail_msg("%s: got %lld.%09u", ok[i].in, (long long)t.sec, t.nsec);
        char out[BI_TIME_MAX];
        bi_time_format(t, out);
        assert_string_equal(out, ok[i].out);
        /* the shortcut the decoder takes before formatting: true only for the format's own text */
        if (bi_time_text_canonical(ok[i].in)) {
            assert_string_equal(ok[i].in, ok[i].out);
            canonical++;
        }
    }
    assert_int_equal(canonical, 1); /* "2026-11-21T12:00:00.123Z" */
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"2024-01-01T12:00:00", "missing UTC offset"},
        {"2024-01-01", "expected an RFC 3339"},
        {"2024-13-01T12:00:00Z", "out of range"},
        {"2023-02-29T12:00:00Z", "out of range"},
        {"2024-01-01T24:00:00Z", "out of range"},
        {"2024-01-01T12:00:00.Z", "empty fraction"},
        {"2024-01-01T12:00:00+0100", "bad UTC offset"},
        {"2024-01-01T12:00:00Zjunk", "trailing"},
        {"20240101T120000Z00000", "expected an RFC 3339"},
        {"", "expected an RFC 3339"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bi_time_t t;
        rh_diag_t d;
        assert_int_equal(bi_time_parse(bad[i].in, &t, "ULMetaData.RecvTime", &d), RH_EINVAL);
        if (!strstr(d.text, bad[i].why) || strncmp(d.text, "ULMetaData.RecvTime: ", 21))
            fail_msg("%s: diag '%s' lacks '%s'", bad[i].in, d.text, bad[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_types), cmocka_unit_test(test_versions),
        cmocka_unit_test(test_result_codes), cmocka_unit_test(test_regions),
        cmocka_unit_test(test_times),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
