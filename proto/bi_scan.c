/*
 * bi_scan.c — the cheap pass over the raw TS002 body that runs before cJSON allocates anything:
 * the project's JSON input policy scan (rh_json_scan, proto/common/rh_json.h) with the limits of
 * bi_msg.h, plus the TS002-specific part: integer fields written as non-integers are flagged.
 * A refusal names the field ("ULMetaData.GWInfo: array has more than 256 elements") and is
 * answered MalformedRequest.
 */
#include "bi_internal.h"

#include "rh_json.h"

#include <stdio.h>
#include <string.h>

int bi_fail(bi_error_t *err, bi_result_code_t code, int errcode, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->err = errcode;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->description, sizeof err->description, fmt, ap);
        va_end(ap);
    }
    return errcode;
}

/* Integer-typed TS002 field names: a number written 12.0 or 1e1 under one of these keys makes
 * the body non-canonical (encoding writes 12). */
bool bi_is_int_key(const char *k, size_t n)
{
#define K(s) {s, sizeof s - 1}
    static const struct {
        const char *name;
        size_t len;
    } names[] = {
        K("TransactionID"), K("FPort"),    K("FCntUp"),       K("FCntDown"), K("DataRate"),
        K("Margin"),        K("Battery"),  K("GWCnt"),        K("FineRecvTime"), K("RSSI"),
        K("RXDelay1"),      K("DataRate1"), K("DataRate2"),   K("Lifetime"), K("RxDelay"),
    };
#undef K
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].len == n && memcmp(names[i].name, k, n) == 0)
            return true;
    return false;
}


static const rh_json_limits_t bi_limits = {
    .max_bytes = BI_MAX_BODY,
    .max_depth = BI_MAX_DEPTH,
    .max_array = BI_MAX_ARRAY,
    .max_members = BI_MAX_MEMBERS,
    .max_string = BI_MAX_STRING,
    .max_number = 40,
};

static void on_number(void *arg, const char *key, size_t keylen, bool nonint)
{
    if (nonint && key && bi_is_int_key(key, keylen))
        *(uint32_t *)arg |= BI_CANON_INT_AS_FLOAT;
}

int bi_scan(const char *body, size_t n, uint32_t *canon, bi_error_t *err)
{
    rh_diag_t d;
    int rc = rh_json_scan(body, n, &bi_limits, on_number, canon, &d);
    if (rc)
        return bi_fail(err, BI_RC_MALFORMED_REQUEST, rc, "%s", d.text);
    return RH_OK;
}
