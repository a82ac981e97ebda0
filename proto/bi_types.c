/* bi_types.c — TS002 enumerations, ResultCode/RFRegion spelling rules and RFC 3339 times
 * (see bi_types.h). Tables only; no state. */
#include "bi_types.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *bi_version_name(bi_version_t v)
{
    switch (v) {
    case BI_VERSION_1_0: return "1.0";
    case BI_VERSION_1_1: return "1.1";
    default: return NULL;
    }
}

bi_version_t bi_version_parse(const char *s, size_t len)
{
    if (len == 3 && s[0] == '1' && s[1] == '.') {
        if (s[2] == '0')
            return BI_VERSION_1_0;
        if (s[2] == '1')
            return BI_VERSION_1_1;
    }
    return BI_VERSION_UNKNOWN;
}

static const char *const mt_names[BI_MT_COUNT] = {
    [BI_MT_PR_START_REQ] = "PRStartReq",     [BI_MT_PR_START_ANS] = "PRStartAns",
    [BI_MT_PR_STOP_REQ] = "PRStopReq",       [BI_MT_PR_STOP_ANS] = "PRStopAns",
    [BI_MT_XMIT_DATA_REQ] = "XmitDataReq",   [BI_MT_XMIT_DATA_ANS] = "XmitDataAns",
    [BI_MT_PROFILE_REQ] = "ProfileReq",      [BI_MT_PROFILE_ANS] = "ProfileAns",
    [BI_MT_HOME_NS_REQ] = "HomeNSReq",       [BI_MT_HOME_NS_ANS] = "HomeNSAns",
    [BI_MT_JOIN_REQ] = "JoinReq",            [BI_MT_JOIN_ANS] = "JoinAns",
    [BI_MT_PR_START_NOTIF] = "PRStartNotif", [BI_MT_ERROR_NOTIF] = "ErrorNotif",
    [BI_MT_REJOIN_REQ] = "RejoinReq",        [BI_MT_REJOIN_ANS] = "RejoinAns",
    [BI_MT_APP_SKEY_REQ] = "AppSKeyReq",     [BI_MT_APP_SKEY_ANS] = "AppSKeyAns",
    [BI_MT_HR_START_REQ] = "HRStartReq",     [BI_MT_HR_START_ANS] = "HRStartAns",
    [BI_MT_HR_STOP_REQ] = "HRStopReq",       [BI_MT_HR_STOP_ANS] = "HRStopAns",
};

const char *bi_msg_type_name(bi_msg_type_t t)
{
    if ((unsigned)t >= BI_MT_COUNT)
        return NULL;
    return mt_names[t];
}

bi_msg_type_t bi_msg_type_parse(const char *s)
{
    if (!s)
        return BI_MT_UNKNOWN;
    for (int t = 1; t < BI_MT_COUNT; t++)
        if (mt_names[t][0] == s[0] && strcmp(mt_names[t], s) == 0)
            return (bi_msg_type_t)t;
    return BI_MT_UNKNOWN;
}

/* True when name ends in the three characters suffix (and has more before them). */
static bool name_suffix_is(const char *name, const char suffix[4])
{
    size_t n = strlen(name);
    return n > 3 && memcmp(name + n - 3, suffix, 3) == 0;
}

bool bi_msg_type_is_request(bi_msg_type_t t)
{
    const char *n = bi_msg_type_name(t);
    return n && name_suffix_is(n, "Req");
}

bool bi_msg_type_is_answer(bi_msg_type_t t)
{
    const char *n = bi_msg_type_name(t);
    return n && name_suffix_is(n, "Ans");
}

bi_msg_type_t bi_msg_type_answer_for(bi_msg_type_t t)
{
    /* Every request is immediately followed by its answer in the enum. */
    if (!bi_msg_type_is_request(t))
        return BI_MT_UNKNOWN;
    return (bi_msg_type_t)(t + 1);
}

/* ---------------------------------------------------------------- ResultCode */

static const char *const rc_names[BI_RC_COUNT] = {
    [BI_RC_SUCCESS] = "Success",
    [BI_RC_MIC_FAILED] = "MICFailed",
    [BI_RC_FRAME_REPLAYED] = "FrameReplayed",
    [BI_RC_JOIN_REQ_FAILED] = "JoinReqFailed",
    [BI_RC_NO_ROAMING_AGREEMENT] = "NoRoamingAgreement",
    [BI_RC_DEV_ROAMING_DISALLOWED] = "DevRoamingDisallowed",
    [BI_RC_ROAMING_ACT_DISALLOWED] = "RoamingActDisallowed",
    [BI_RC_ACTIVATION_DISALLOWED] = "ActivationDisallowed",
    [BI_RC_UNKNOWN_DEV_EUI] = "UnknownDevEUI",
    [BI_RC_UNKNOWN_DEV_ADDR] = "UnknownDevAddr",
    [BI_RC_UNKNOWN_SENDER] = "UnknownSender",
    [BI_RC_UNKNOWN_RECEIVER] = "UnkownReceiver",
    [BI_RC_DEFERRED] = "Deferred",
    [BI_RC_XMIT_FAILED] = "XmitFailed",
    [BI_RC_INVALID_FPORT] = "InvalidFPort",
    [BI_RC_INVALID_PROTOCOL_VERSION] = "InvalidProtocolVersion",
    [BI_RC_STALE_DEVICE_PROFILE] = "StaleDeviceProfile",
    [BI_RC_MALFORMED_REQUEST] = "MalformedRequest",
    [BI_RC_MALFORMED_MESSAGE] = "MalformedMessage",
    [BI_RC_FRAME_SIZE_ERROR] = "FrameSizeError",
    [BI_RC_NO_ACTION] = "NoAction",
    [BI_RC_OTHER] = "Other",
};

const char *bi_result_code_name(bi_result_code_t rc, bi_version_t v, bool correct_spelling)
{
    if ((unsigned)rc >= BI_RC_COUNT)
        return NULL;
    if (rc == BI_RC_MALFORMED_REQUEST || rc == BI_RC_MALFORMED_MESSAGE)
        return v == BI_VERSION_1_1 ? "MalformedMessage" : "MalformedRequest";
    if (rc == BI_RC_UNKNOWN_RECEIVER && correct_spelling)
        return "UnknownReceiver";
    return rc_names[rc];
}

bi_result_code_t bi_result_code_malformed(bi_version_t v)
{
    return v == BI_VERSION_1_1 ? BI_RC_MALFORMED_MESSAGE : BI_RC_MALFORMED_REQUEST;
}

bi_result_code_t bi_result_code_parse(const char *s, bool *exact)
{
    static const struct {
        const char *name;
        bi_result_code_t rc;
    } aliases[] = {
        {"UnknownReceiver", BI_RC_UNKNOWN_RECEIVER},      /* corrected spelling (TTS, ChirpStack) */
        {"UnknownReceiverID", BI_RC_UNKNOWN_RECEIVER},    /* dudmuck/LoRaWAN-Backend */
        {"RoamingActDisallowedA", BI_RC_ROAMING_ACT_DISALLOWED}, /* brocaar/lorawan typo */
    };
    if (exact)
        *exact = false;
    if (!s)
        return BI_RC_OTHER;
    for (int i = 0; i < BI_RC_COUNT; i++) {
        if (strcasecmp(s, rc_names[i]) == 0) {
            if (exact)
                *exact = strcmp(s, rc_names[i]) == 0;
            return (bi_result_code_t)i;
        }
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcasecmp(s, aliases[i].name) == 0) {
            if (exact)
                *exact = i == 0 && strcmp(s, aliases[i].name) == 0;
            return aliases[i].rc;
        }
    }
    return BI_RC_OTHER;
}

/* ---------------------------------------------------------------- RFRegion */

static const char *const region_rp002[BI_REGION_COUNT] = {
    [BI_REGION_EU868] = "EU868",     [BI_REGION_US915] = "US915",     [BI_REGION_CN779] = "CN779",
    [BI_REGION_EU433] = "EU433",     [BI_REGION_AU915] = "AU915",     [BI_REGION_CN470] = "CN470",
    [BI_REGION_AS923] = "AS923",     [BI_REGION_AS923_2] = "AS923-2", [BI_REGION_AS923_3] = "AS923-3",
    [BI_REGION_AS923_4] = "AS923-4", [BI_REGION_KR920] = "KR920",     [BI_REGION_IN865] = "IN865",
    [BI_REGION_RU864] = "RU864",     [BI_REGION_ISM2400] = "ISM2400",
};

static const char *region_spec_name(bi_region_t r)
{
    switch (r) {
    case BI_REGION_US915: return "US902";
    case BI_REGION_CN779: return "China779";
    case BI_REGION_AU915: return "Australia915";
    case BI_REGION_CN470: return "China470";
    default: return region_rp002[r];
    }
}

const char *bi_region_name(bi_region_t r, bi_region_names_t names)
{
    if (r <= BI_REGION_UNKNOWN || r >= BI_REGION_COUNT)
        return NULL;
    return names == BI_REGION_NAMES_SPEC ? region_spec_name(r) : region_rp002[r];
}

/* Case-insensitive compare with '-' == '_'. */
static bool region_eq(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'a' && ca <= 'z') ca -= 32;
        if (cb >= 'a' && cb <= 'z') cb -= 32;
        if (ca == '_') ca = '-';
        if (cb == '_') cb = '-';
        if (ca != cb)
            return false;
        if (ca == 0)
            return true;
    }
}

bi_region_t bi_region_parse(const char *s)
{
    static const struct {
        const char *name;
        bi_region_t r;
    } aliases[] = {
        {"US902", BI_REGION_US915},        {"Australia915", BI_REGION_AU915},
        {"China470", BI_REGION_CN470},     {"China779", BI_REGION_CN779},
        {"EU863-870", BI_REGION_EU868},    {"US902-928", BI_REGION_US915},
        {"CN779-787", BI_REGION_CN779},    {"AU915-928", BI_REGION_AU915},
        {"CN470-510", BI_REGION_CN470},    {"AS923-1", BI_REGION_AS923},
        {"KR920-923", BI_REGION_KR920},    {"IN865-867", BI_REGION_IN865},
        {"RU864-870", BI_REGION_RU864},
    };
    if (!s)
        return BI_REGION_UNKNOWN;
    for (int r = 1; r < BI_REGION_COUNT; r++)
        if (region_eq(s, region_rp002[r]))
            return (bi_region_t)r;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (region_eq(s, aliases[i].name))
            return aliases[i].r;
    return BI_REGION_UNKNOWN;
}

/* ---------------------------------------------------------------- RFC 3339 */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int bi_time_parse(const char *s, bi_time_t *t, const char *what, rh_diag_t *diag)
{
    const char *bad = "expected an RFC 3339 time like 2024-01-01T12:00:00Z";
    size_t n = strlen(s);
    if (n < 19)
        return rh_diag_fail(diag, RH_EINVAL, "%s: %s", what, bad);
    int Y = digits(s, 4), M = digits(s + 5, 2), D = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (Y < 0 || M < 0 || D < 0 || h < 0 || mi < 0 || se < 0 || s[4] != '-' || s[7] != '-' ||
        (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' || s[16] != ':')
        return rh_diag_fail(diag, RH_EINVAL, "%s: %s", what, bad);
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || (unsigned)D > mdays[M - 1] || (M == 2 && D == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60)
        return rh_diag_fail(diag, RH_EINVAL, "%s: date or time field out of range", what);
    const char *p = s + 19;
    uint32_t ns = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 9) {
                ns = ns * 10 + (uint32_t)(*p - '0');
            }
            nd++;
            p++;
        }
        if (nd == 0)
            return rh_diag_fail(diag, RH_EINVAL, "%s: empty fraction of a second", what);
        for (int i = nd; i < 9; i++)
            ns *= 10;
    }
    int off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh = digits(p + 1, 2), om = p[1] && p[2] && p[3] == ':' ? digits(p + 4, 2) : -1;
        if (oh < 0 || om < 0 || oh > 23 || om > 59)
            return rh_diag_fail(diag, RH_EINVAL, "%s: bad UTC offset (expected Z or +hh:mm)", what);
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return rh_diag_fail(diag, RH_EINVAL, "%s: missing UTC offset (expected Z or +hh:mm)", what);
    }
    if (*p != '\0')
        return rh_diag_fail(diag, RH_EINVAL, "%s: trailing characters after the time", what);
    t->sec = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 + se - off;
    t->nsec = ns;
    return RH_OK;
}

bool bi_time_text_canonical(const char *s)
{
    /* Accepted by bi_time_parse, 24 characters with '.' at 19 and 'Z' at 23 leave no other
     * shape than "YYYY-MM-DDTHH:MM:SS.mmmZ" (or 't', ' ' at 10): its fields are fixed-width
     * digits and the fraction runs up to the zone. */
    return strnlen(s, 25) == 24 && s[10] == 'T' && s[19] == '.' && s[23] == 'Z' &&
           !(s[17] == '6' && s[18] == '0');
}

size_t bi_time_format(bi_time_t t, char out[BI_TIME_MAX])
{
    int64_t days = t.sec / 86400, rem = t.sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0) {
        y = 0; m = 1; d = 1; rem = 0;
    } else if (y > 9999) {
        y = 9999; m = 12; d = 31; rem = 86399;
    }
    uint32_t ns = t.nsec % 1000000000u;
    /* Hand-formatted: this runs on every decoded RecvTime (canonical check). */
    char *o = out;
    unsigned Y = (unsigned)y, sec = (unsigned)rem;
    unsigned f[5] = {m, d, sec / 3600, sec / 60 % 60, sec % 60};
    *o++ = (char)('0' + Y / 1000);
    *o++ = (char)('0' + Y / 100 % 10);
    *o++ = (char)('0' + Y / 10 % 10);
    *o++ = (char)('0' + Y % 10);
    static const char sep[5] = {'-', '-', 'T', ':', ':'};
    for (int i = 0; i < 5; i++) {
        *o++ = sep[i];
        *o++ = (char)('0' + f[i] / 10);
        *o++ = (char)('0' + f[i] % 10);
    }
    int digits = ns % 1000000u == 0 ? 3 : ns % 1000u == 0 ? 6 : 9;
    *o++ = '.';
    uint32_t div = 100000000u;
    for (int i = 0; i < digits; i++, div /= 10)
        *o++ = (char)('0' + ns / div % 10);
    *o++ = 'Z';
    *o = '\0';
    return (size_t)(o - out);
}
