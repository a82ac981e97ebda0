/*
 * fuzz_bi_decode.c — libFuzzer target for the TS002 JSON decoder (proto/bi_msg.h).
 * Feeds arbitrary bytes to bi_msg_decode and, for accepted messages, drives everything a relay
 * does with them: typed access, canonical checks, strip, encoding for several dialects, answers.
 * Invariants checked (abort on violation):
 *  - a refusal always names a ResultCode and a non-empty description;
 *  - an encoding of an accepted message decodes again (unless it outgrew BI_MAX_BODY through
 *    longer region names or time fractions) and encoding that is a fixed point.
 * The committed corpus (corpus/bi_decode/) replays as ctest case fuzz_replay_bi_decode.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bi_msg.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "invariant violated: %s\n", what);
        abort();
    }
}

static void roundtrip(bi_msg_t *m, const bi_dialect_t *d)
{
    char *out = NULL;
    size_t len = 0;
    if (bi_msg_encode(m, d, &out, &len) != RH_OK)
        return; /* only RH_ENOMEM */
    check(strlen(out) == len, "encoded length");
    bi_msg_t *m2 = NULL;
    bi_error_t err;
    int r = bi_msg_decode(out, len, &m2, &err);
    if (r != RH_OK) {
        if (len <= BI_MAX_BODY)
            fprintf(stderr, "re-decode failed: %s\n%s\n", err.description, out);
        check(len > BI_MAX_BODY, "encoding of an accepted message decodes");
    } else {
        char *out2 = NULL;
        size_t len2 = 0;
        if (bi_msg_encode(m2, d, &out2, &len2) == RH_OK) {
            check(len2 == len && memcmp(out, out2, len) == 0, "encoding is a fixed point");
            bi_buf_free(out2);
        }
        bi_msg_free(m2);
    }
    char small[64];
    size_t l2;
    r = bi_msg_encode_to(m, d, small, sizeof small, &l2);
    check(r == RH_OK || r == RH_ERANGE, "encode_to result");
    if (r == RH_OK)
        check(l2 == len && memcmp(small, out, len) == 0, "encode_to matches encode");
    bi_buf_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bi_msg_t *m = NULL;
    bi_error_t err;
    int r = bi_msg_decode((const char *)data, size, &m, &err);
    if (r != RH_OK) {
        check(m == NULL, "no message on failure");
        check(err.description[0] != '\0', "a refusal has a description");
        check(err.code == BI_RC_MALFORMED_REQUEST || err.code == BI_RC_MALFORMED_MESSAGE ||
                  err.code == BI_RC_FRAME_SIZE_ERROR || err.code == BI_RC_INVALID_PROTOCOL_VERSION ||
                  err.code == BI_RC_OTHER,
              "refusal code");
        bi_msg_t *a = NULL;
        if (bi_answer_from_error(&err, &a) == RH_OK) {
            char *out;
            size_t len;
            if (bi_msg_encode(a, NULL, &out, &len) == RH_OK)
                bi_buf_free(out);
            bi_msg_free(a);
        }
        return 0;
    }
    const bi_fields_t *f = bi_msg_fields(m);
    size_t plen;
    const uint8_t *phy = bi_msg_phy_payload(m, &plen);
    check((phy == NULL) == (plen == 0), "PHYPayload pointer and length agree");
    for (size_t i = 0; i < f->ul.gw_count; i++)
        check(f->ul.gw[i].id_len == 0 || f->ul.gw[i].id_len == 4 || f->ul.gw[i].id_len == 8, "gw id");

    static const bi_dialect_t dialects[] = {
        BI_DIALECT_CHIRPSTACK,
        BI_DIALECT_TTS_1_1,
        {BI_VERSION_UNKNOWN, BI_HEX_UPPER, BI_REGION_NAMES_SPEC, true, false},
    };
    for (size_t i = 0; i < sizeof dialects / sizeof dialects[0]; i++) {
        (void)bi_msg_is_canonical_for(m, &dialects[i]);
        roundtrip(m, &dialects[i]);
    }
    bi_msg_t *a = NULL;
    if (bi_answer_new(m, BI_RC_UNKNOWN_RECEIVER, "fuzz", &a) == RH_OK) {
        roundtrip(a, &dialects[0]);
        bi_msg_free(a);
    }
    if (size & 1)
        bi_msg_strip_gwinfo(m, BI_STRIP_SIGNAL);
    if (size & 2)
        bi_msg_strip_gwinfo(m, BI_STRIP_LOCATION);
    roundtrip(m, &dialects[size % 3]);
    bi_msg_free(m);
    return 0;
}
