/* Unit tests for broker/pb_auth (Packet Broker data-plane tokens) and the admin JWT layer's
 * extra audience/claims: a member key with RIGHT_DATA_PLANE gets a token whose claims set holds
 * the identity claim The Things Stack's agent decodes (ns[0].nid/tid, rights) and whose aud names
 * both audiences; the data plane refuses admin-only tokens, expired tokens, tokens signed with
 * another key, other schemes, and a forged claim on an otherwise valid signature cannot exist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_jwt.h"
#include "pb_auth.h"

#define NOW 1800000000LL
static const char SECRET[] = "0123456789abcdef0123456789abcdef-test";
static const char OTHER[] = "fedcba9876543210fedcba9876543210-other";

static admin_jwt_t *signer(const char *secret)
{
    admin_jwt_opts_t o = {.alg = "HS256", .secret = (const uint8_t *)secret,
                          .secret_len = strlen(secret), .issuer = "roamhub",
                          .audience = "roamhub-admin", .ttl_s = 900};
    admin_jwt_t *j = NULL;
    assert_int_equal(admin_jwt_new(&o, &j, NULL), RH_OK);
    return j;
}

static Roamhub__V1__ApiKey member_key(Roamhub__V1__Right *r, size_t nr)
{
    Roamhub__V1__ApiKey k = ROAMHUB__V1__API_KEY__INIT;
    k.id = "tts-eu1";
    k.net_id = 0x000013;
    k.tenant_id = "ttn";
    k.rights = r;
    k.n_rights = nr;
    return k;
}

/* The claims set of a token, decoded without verification (as the agent does). */
static cJSON *payload_of(const char *tok)
{
    const char *d1 = strchr(tok, '.'), *d2 = strchr(d1 + 1, '.');
    size_t n = (size_t)(d2 - d1 - 1);
    char *b = malloc(n + 4);
    memcpy(b, d1 + 1, n);
    for (size_t i = 0; i < n; i++)
        b[i] = b[i] == '-' ? '+' : b[i] == '_' ? '/' : b[i];
    while (n % 4)
        b[n++] = '=';
    unsigned char *out = malloc(n);
    int len = EVP_DecodeBlock(out, (unsigned char *)b, (int)n);
    while (len > 0 && out[len - 1] == 0)
        len--;
    cJSON *o = cJSON_ParseWithLength((const char *)out, (size_t)len);
    free(b);
    free(out);
    return o;
}

static void test_key_rights(void **st)
{
    (void)st;
    Roamhub__V1__Right dp = ROAMHUB__V1__RIGHT__RIGHT_DATA_PLANE,
                       rt = ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC,
                       ad = ROAMHUB__V1__RIGHT__RIGHT_ADMIN;
    Roamhub__V1__ApiKey k = member_key(&dp, 1);
    assert_true(pb_auth_key_allowed(&k));
    k = member_key(&ad, 1);
    assert_true(pb_auth_key_allowed(&k));
    k = member_key(&rt, 1);
    assert_false(pb_auth_key_allowed(&k)); /* reading statistics is not the data plane */
    k = member_key(&dp, 1);
    k.operator_ = 1; /* an operator key has no NetID to speak for */
    assert_false(pb_auth_key_allowed(&k));
    assert_false(pb_auth_key_allowed(NULL));
}

static void test_issue_and_verify(void **st)
{
    (void)st;
    admin_jwt_t *j = signer(SECRET);
    Roamhub__V1__Right dp = ROAMHUB__V1__RIGHT__RIGHT_DATA_PLANE;
    Roamhub__V1__ApiKey k = member_key(&dp, 1);
    char *tok = NULL;
    int64_t exp = 0;
    assert_int_equal(pb_auth_issue(j, &k, NOW, &tok, &exp), RH_OK);
    assert_int_equal(exp, NOW + 900);

    /* what the agent reads: ns[0].nid 19, tid "ttn", rights include 10/11; aud has both */
    cJSON *p = payload_of(tok);
    assert_non_null(p);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(p, PB_CLAIMS_KEY);
    assert_true(cJSON_IsObject(c));
    const cJSON *ns0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "ns"), 0);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(ns0, "nid")->valueint, 19);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(ns0, "tid")->valuestring, "ttn");
    const cJSON *rights = cJSON_GetObjectItemCaseSensitive(c, "rights");
    int have10 = 0, have11 = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, rights)
    {
        have10 |= r->valueint == 10;
        have11 |= r->valueint == 11;
    }
    assert_true(have10 && have11);
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(p, "aud");
    assert_true(cJSON_IsArray(aud));
    assert_int_equal(cJSON_GetArraySize(aud), 2);
    assert_string_equal(cJSON_GetArrayItem(aud, 1)->valuestring, PB_AUTH_AUDIENCE);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "sub")->valuestring, "tts-eu1");
    cJSON_Delete(p);

    /* the data plane accepts it and reads the identity back */
    char hdr[2048], sub[129];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    pb_identity_t id;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_auth_verify(j, hdr, NOW + 10, &id, sub, &d), RH_OK);
    assert_string_equal(sub, "tts-eu1");
    assert_true(pb_identity_covers(&id, 0x13, "ttn"));
    assert_false(pb_identity_covers(&id, 0x13, "other-tenant"));
    assert_false(pb_identity_covers(&id, 0x14, "ttn"));
    assert_true(pb_identity_has_right(&id, PB_RIGHT_WRITE_TRAFFIC));
    /* scheme is case-insensitive (RFC 7235) */
    hdr[0] = 'b';
    assert_int_equal(pb_auth_verify(j, hdr, NOW + 10, &id, NULL, &d), RH_OK);

    /* the admin API accepts it too (its audience is in the array) */
    admin_jwt_claims_t ac;
    assert_int_equal(admin_jwt_verify(j, tok, strlen(tok), NOW + 10, &ac, NULL), RH_OK);

    /* expired */
    assert_int_equal(pb_auth_verify(j, hdr, NOW + 900 + 61, &id, NULL, &d), RH_EPERM);
    assert_non_null(strstr(d.text, "expired"));
    /* another hub's key */
    admin_jwt_t *o = signer(OTHER);
    assert_int_equal(pb_auth_verify(o, hdr, NOW + 10, &id, NULL, &d), RH_EPERM);
    assert_non_null(strstr(d.text, "does not verify"));
    /* no verifier (admin API off) */
    assert_int_equal(pb_auth_verify(NULL, hdr, NOW + 10, &id, NULL, &d), RH_EPERM);
    /* missing header, other scheme */
    assert_int_equal(pb_auth_verify(j, NULL, NOW, &id, NULL, &d), RH_EPERM);
    assert_non_null(strstr(d.text, "missing"));
    assert_int_equal(pb_auth_verify(j, "Basic dXNlcjpwYXNz", NOW, &id, NULL, &d), RH_EPERM);
    assert_non_null(strstr(d.text, "Bearer"));
    /* a tampered claim breaks the signature */
    char *bad = strdup(tok);
    char *dot = strchr(bad, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    snprintf(hdr, sizeof hdr, "Bearer %s", bad);
    assert_int_equal(pb_auth_verify(j, hdr, NOW + 10, &id, NULL, &d), RH_EPERM);
    free(bad);
    admin_jwt_free(o);
    free(tok);
    admin_jwt_free(j);
}

static void test_admin_token_refused(void **st)
{
    (void)st;
    admin_jwt_t *j = signer(SECRET);
    char *tok = NULL;
    assert_int_equal(admin_jwt_issue(j, "op-1", NOW, &tok, NULL), RH_OK);
    char hdr[2048];
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    pb_identity_t id;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_auth_verify(j, hdr, NOW + 1, &id, NULL, &d), RH_EPERM);
    assert_non_null(strstr(d.text, "aud"));
    free(tok);

    /* right audience but no identity claim */
    cJSON *extra = cJSON_CreateObject();
    cJSON_AddStringToObject(extra, "iss", "someone-else"); /* reserved: stays the issuer's */
    assert_int_equal(admin_jwt_issue_ex(j, "k2", PB_AUTH_AUDIENCE, extra, NOW, &tok, NULL),
                     RH_OK);
    cJSON_Delete(extra);
    snprintf(hdr, sizeof hdr, "Bearer %s", tok);
    assert_int_equal(pb_auth_verify(j, hdr, NOW + 1, &id, NULL, &d), RH_EPERM);
    assert_non_null(strstr(d.text, PB_CLAIMS_KEY));
    admin_jwt_claims_t ac;
    cJSON *set = NULL;
    assert_int_equal(admin_jwt_verify_ex(j, tok, strlen(tok), PB_AUTH_AUDIENCE, NOW + 1, &ac,
                                         &set, NULL),
                     RH_OK);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(set, "iss")->valuestring, "roamhub");
    cJSON_Delete(set);
    free(tok);
    /* invalid extra audience */
    assert_int_equal(admin_jwt_issue_ex(j, "k2", "roamhub-admin", NULL, NOW, &tok, NULL),
                     RH_EINVAL);
    assert_int_equal(admin_jwt_issue_ex(j, "k2", "", NULL, NOW, &tok, NULL), RH_EINVAL);
    admin_jwt_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_rights),
        cmocka_unit_test(test_issue_and_verify),
        cmocka_unit_test(test_admin_token_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
