/*
 * test_roamhub_fields.c — every field number in proto/roamhub_fields.h (used by the
 * routing-policy field scanners on packed records) equals the number protoc-c generated from
 * roamhub.proto, looked up by message and field name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "roamhub.pb-c.h"
#include "roamhub_fields.h"

static void same(const ProtobufCMessageDescriptor *d, const char *field, unsigned expect)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, field);
    if (!f)
        fail_msg("%s.%s: no such field", d->name, field);
    if (f->id != expect)
        fail_msg("%s.%s is field %u in roamhub.proto, roamhub_fields.h says %u", d->name, field,
                 f->id, expect);
}

static void test_numbers_match_the_proto(void **state)
{
    (void)state;
    same(&roamhub__v1__network__descriptor, "delegated_net_ids", RH_FLD_NETWORK_DELEGATED_NET_IDS);
    same(&roamhub__v1__dev_addr_block__descriptor, "net_id", RH_FLD_BLOCK_NET_ID);
    same(&roamhub__v1__dev_addr_block__descriptor, "tenant_id", RH_FLD_BLOCK_TENANT_ID);
    same(&roamhub__v1__dev_addr_block__descriptor, "cluster_id", RH_FLD_BLOCK_CLUSTER_ID);
    same(&roamhub__v1__join_route__descriptor, "home_net_id", RH_FLD_JOIN_HOME_NET_ID);
    same(&roamhub__v1__join_route__descriptor, "home_tenant_id", RH_FLD_JOIN_HOME_TENANT_ID);
    same(&roamhub__v1__join_route__descriptor, "join_server_id", RH_FLD_JOIN_SERVER_ID);
    same(&roamhub__v1__routing_policy__descriptor, "uplink", RH_FLD_POLICY_UPLINK);
    same(&roamhub__v1__routing_policy__descriptor, "downlink", RH_FLD_POLICY_DOWNLINK);
    same(&roamhub__v1__uplink_policy__descriptor, "join_request", RH_FLD_UP_JOIN_REQUEST);
    same(&roamhub__v1__uplink_policy__descriptor, "mac_data", RH_FLD_UP_MAC_DATA);
    same(&roamhub__v1__uplink_policy__descriptor, "application_data",
         RH_FLD_UP_APPLICATION_DATA);
    same(&roamhub__v1__uplink_policy__descriptor, "signal_quality", RH_FLD_UP_SIGNAL_QUALITY);
    same(&roamhub__v1__uplink_policy__descriptor, "localization", RH_FLD_UP_LOCALIZATION);
    same(&roamhub__v1__downlink_policy__descriptor, "join_accept", RH_FLD_DOWN_JOIN_ACCEPT);
    same(&roamhub__v1__downlink_policy__descriptor, "mac_data", RH_FLD_DOWN_MAC_DATA);
    same(&roamhub__v1__downlink_policy__descriptor, "application_data",
         RH_FLD_DOWN_APPLICATION_DATA);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_numbers_match_the_proto)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
