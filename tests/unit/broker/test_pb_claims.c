/*
 * test_pb_claims.c — Packet Broker token identity claim (broker/pb_claims.c): the vector's
 * claims set (pb_messages.json "JWT claims TTS reads") parses to its NetID/tenant and rights,
 * renders back to the same claim, coverage of forwarder/home identities (tenant keys vs
 * whole-NetID keys), and every refusal naming its field.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pb_claims.h"
#include "rh_test.h"

static const cJSON *vector_claims(cJSON *root)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(root, "vectors"))
        if (strncmp(rh_test_str(v, "name"), "JWT claims", 10) == 0)
            return cJSON_GetObjectItemCaseSensitive(v, "json");
    fail_msg("pb_messages.json: no JWT claims vector");
    return NULL;
}

static void test_vector_claims(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("pb_messages.json");
    const cJSON *set = vector_claims(root);
    pb_identity_t id;
    rh_diag_t d;
    assert_int_equal(pb_claims_from_json(set, &id, &d), RH_OK);
    assert_int_equal(id.n, 1);
    assert_int_equal(id.ns[0].net_id, 0x000014);
    assert_string_equal(id.ns[0].tenant, "tenant-a");
    assert_true(pb_identity_has_right(&id, PB_RIGHT_READ_TRAFFIC));
    assert_true(pb_identity_has_right(&id, PB_RIGHT_WRITE_TRAFFIC));
    assert_false(pb_identity_has_right(&id, 14)); /* READ_REPORT not granted */
    assert_false(pb_identity_has_right(&id, 40));
    assert_false(id.cluster);

    /* renders back to exactly the vector's claim */
    cJSON *back = pb_claims_to_json(&id);
    assert_non_null(back);
    assert_true(cJSON_Compare(back, cJSON_GetObjectItemCaseSensitive(set, PB_CLAIMS_KEY), 1));
    cJSON_Delete(back);
    cJSON_Delete(root);
}

static void test_coverage(void **state)
{
    (void)state;
    pb_identity_t tenant_key = {.n = 1, .ns = {{0x14, "tenant-a"}}};
    assert_true(pb_identity_covers(&tenant_key, 0x14, "tenant-a"));
    assert_false(pb_identity_covers(&tenant_key, 0x14, ""));       /* not the whole NetID */
    assert_false(pb_identity_covers(&tenant_key, 0x14, NULL));
    assert_false(pb_identity_covers(&tenant_key, 0x14, "tenant-b"));
    assert_false(pb_identity_covers(&tenant_key, 0x13, "tenant-a"));
    assert_false(pb_identity_covers(&tenant_key, 0x14, "tenant-a2"));

    pb_identity_t net_key = {.n = 2, .ns = {{0x13, ""}, {0x600001, "x"}}};
    assert_true(pb_identity_covers(&net_key, 0x13, ""));
    assert_true(pb_identity_covers(&net_key, 0x13, "any-tenant"));
    assert_true(pb_identity_covers(&net_key, 0x600001, "x"));
    assert_false(pb_identity_covers(&net_key, 0x600001, "y"));
    assert_false(pb_identity_covers(&net_key, 0x14, ""));

    pb_identity_t none = {0};
    assert_false(pb_identity_covers(&none, 0, ""));
}

static void test_round_trip_cluster(void **state)
{
    (void)state;
    pb_identity_t id = {.n = 2, .ns = {{0x13, ""}, {0xFFFFFF, "t"}}, .cluster = true,
                        .rights = 1u << 10 | 1u << 11 | 1u << 0};
    cJSON *set = cJSON_CreateObject();
    cJSON_AddItemToObject(set, PB_CLAIMS_KEY, pb_claims_to_json(&id));
    pb_identity_t back;
    assert_int_equal(pb_claims_from_json(set, &back, NULL), RH_OK);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.ns[1].net_id, 0xFFFFFF);
    assert_string_equal(back.ns[1].tenant, "t");
    assert_int_equal(back.rights, id.rights);
    assert_true(back.cluster);
    cJSON_Delete(set);
}

static void refused(const char *json, const char *field)
{
    cJSON *set = cJSON_Parse(json);
    assert_non_null(set);
    pb_identity_t id;
    rh_diag_t d;
    assert_int_equal(pb_claims_from_json(set, &id, &d), RH_EINVAL);
    if (!strstr(d.text, field))
        fail_msg("%s: diagnostic '%s' does not name %s", json, d.text, field);
    cJSON_Delete(set);
}

static void test_refusals(void **state)
{
    (void)state;
    refused("{}", PB_CLAIMS_KEY);
    refused("{\"" PB_CLAIMS_KEY "\":[]}", PB_CLAIMS_KEY);
    refused("{\"" PB_CLAIMS_KEY "\":{}}", "claims.ns");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[]}}", "claims.ns");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"tid\":\"a\"}]}}", "claims.ns[0].nid");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":16777216}]}}", "claims.ns[0].nid");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":1.5}]}}", "claims.ns[0].nid");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":-1}]}}", "claims.ns[0].nid");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":1},{\"nid\":\"2\"}]}}", "claims.ns[1].nid");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":1,\"tid\":5}]}}", "claims.ns[0].tid");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":1,\"tid\":\""
            "0123456789012345678901234567890123456789012345678901234567890123\"}]}}",
            "claims.ns[0].tid");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":1}],\"rights\":[32]}}", "claims.rights");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":1}],\"rights\":10}}", "claims.rights");
    refused("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":1}],\"c\":1}}", "claims.c");
    char big[2048] = "{\"" PB_CLAIMS_KEY "\":{\"ns\":[";
    for (int i = 0; i <= PB_NS_MAX; i++)
        strcat(big, i ? ",{\"nid\":1}" : "{\"nid\":1}");
    strcat(big, "]}}");
    refused(big, "at most 16");
    /* tid absent = whole NetID */
    cJSON *ok = cJSON_Parse("{\"" PB_CLAIMS_KEY "\":{\"ns\":[{\"nid\":19}]}}");
    pb_identity_t id;
    assert_int_equal(pb_claims_from_json(ok, &id, NULL), RH_OK);
    assert_true(pb_identity_covers(&id, 19, "anything"));
    assert_int_equal(id.rights, 0);
    cJSON_Delete(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_claims),
        cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_round_trip_cluster),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
