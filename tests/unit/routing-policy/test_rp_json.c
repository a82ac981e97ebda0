/* Unit tests for routing-policy/rp_json: a record object whose tree holds the same key twice
 * (built in memory, so past the JSON input policy's parser-level check) is refused and frees
 * everything (issue 16 item 9: msg_from_json leaked the first copy of each repeated string or
 * array field; ASan's leak check catches a regression, the status check catches it everywhere). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "rp_json.h"

static cJSON *network_with(const char *dup_key, cJSON *first, cJSON *second)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "net_id", "000013");
    cJSON_AddItemToObject(o, dup_key, first);
    cJSON_AddItemToObject(o, dup_key, second); /* cJSON keeps both members */
    return o;
}

static void expect_duplicate(cJSON *o, const char *key)
{
    ProtobufCMessage *m = NULL;
    rh_diag_t d = {{0}};
    int rc = rp_json_to_record(RP_KIND_NETWORK, o, "body", &m, &d);
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    cJSON_Delete(o);
    assert_int_equal(rc, RH_EINVAL);
    assert_null(m);
    char want[64];
    snprintf(want, sizeof want, "body.%s: duplicate field", key);
    assert_string_equal(d.text, want);
}

static void test_repeated_string_field(void **state)
{
    (void)state;
    expect_duplicate(network_with("name", cJSON_CreateString("first"), cJSON_CreateString("x")),
                     "name");
}

static void test_repeated_array_field(void **state)
{
    (void)state;
    const char *a[] = {"000014"}, *b[] = {"000015"};
    expect_duplicate(network_with("delegated_net_ids", cJSON_CreateStringArray(a, 1),
                                  cJSON_CreateStringArray(b, 1)),
                     "delegated_net_ids");
}

static void test_distinct_fields_still_load(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "net_id", "000013");
    cJSON_AddStringToObject(o, "name", "Alpha");
    ProtobufCMessage *m = NULL;
    rh_diag_t d = {{0}};
    assert_int_equal(rp_json_to_record(RP_KIND_NETWORK, o, "body", &m, &d), RH_OK);
    assert_string_equal(((Roamhub__V1__Network *)m)->name, "Alpha");
    protobuf_c_message_free_unpacked(m, NULL);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeated_string_field),
        cmocka_unit_test(test_repeated_array_field),
        cmocka_unit_test(test_distinct_fields_still_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
