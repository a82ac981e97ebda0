/*
 * fuzz_jwt_verify.c — libFuzzer target for the admin API's token verification wrapper
 * (broker/admin_jwt.h). Input: a candidate bearer token. The verifier is HS256 with a fixed
 * secret and a fixed clock, so the seed corpus holds valid tokens and near-misses. Properties:
 * no crash, no leak, refusals carry a diagnostic, and an accepted token has a non-empty sub and
 * an exp after the clock (minus the leeway) — and re-verifying gives the same answer.
 */
#include "admin_jwt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NOW 1800000000LL
static const char SECRET[] = "fuzz-secret-fuzz-secret-fuzz-secret-0001";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static admin_jwt_t *j;
    if (!j) {
        admin_jwt_opts_t o = {.alg = "HS256", .secret = (const uint8_t *)SECRET,
                              .secret_len = sizeof SECRET - 1, .issuer = "roamhub",
                              .audience = "roamhub-admin", .ttl_s = 900};
        if (admin_jwt_new(&o, &j, NULL) != RH_OK)
            abort();
    }
    admin_jwt_claims_t c;
    rh_diag_t d = {{0}};
    int rc = admin_jwt_verify(j, (const char *)data, size, FUZZ_NOW, &c, &d);
    if (rc != RH_OK) {
        if (d.text[0] == '\0' && rc != RH_ENOMEM)
            abort(); /* every refusal says why */
        return 0;
    }
    if (c.sub[0] == '\0' || c.exp + 60 <= FUZZ_NOW)
        abort();
    admin_jwt_claims_t c2;
    if (admin_jwt_verify(j, (const char *)data, size, FUZZ_NOW, &c2, NULL) != RH_OK ||
        memcmp(&c, &c2, sizeof c) != 0)
        abort();
    return 0;
}
