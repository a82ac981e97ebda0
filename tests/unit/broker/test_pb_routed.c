/* Unit tests for broker/pb_routed: the routed messages built from the published requests of
 * shared/vectors/pb_messages.json equal the vectors' routed messages (as a Router sends them)
 * field for field, apart from what the router assigns (id, time, hops, downlink_token); the
 * forwarder's IDs and the gateway token pass byte for byte; the request is not changed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pb_routed.h"
#include "rh_test.h"

static cJSON *vectors;

static ProtobufCMessage *vector(const char *name, const ProtobufCMessageDescriptor *desc)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(vectors, "vectors"))
    {
        if (strcmp(rh_test_str(v, "name"), name) != 0)
            continue;
        const char *hex = rh_test_str(v, "hex");
        size_t cap = strlen(hex) / 2 + 1;
        uint8_t *buf = malloc(cap);
        size_t n = rh_test_hex(hex, buf, cap);
        ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, n, buf);
        free(buf);
        assert_non_null(m);
        return m;
    }
    fail_msg("vector %s missing", name);
    return NULL;
}

/* Packed bytes of a message, for comparisons. */
static uint8_t *packed(const ProtobufCMessage *m, size_t *n)
{
    *n = protobuf_c_message_get_packed_size(m);
    uint8_t *b = malloc(*n + 1);
    protobuf_c_message_pack(m, b);
    return b;
}

static void assert_same_msg(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t na, nb;
    uint8_t *pa = packed(a, &na), *pb = packed(b, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    free(pa);
    free(pb);
}

static void test_uplink(void **st)
{
    (void)st;
    const char *names[][2] = {
        {"PublishUplinkMessageRequest: data uplink", "RoutedUplinkMessage: data uplink"},
        {"PublishUplinkMessageRequest: join-request", "RoutedUplinkMessage: join-request"},
    };
    for (size_t k = 0; k < 2; k++) {
        Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *req = (void *)vector(
            names[k][0], &org__packetbroker__routing__v1__publish_uplink_message_request__descriptor);
        Org__Packetbroker__V3__RoutedUplinkMessage *want = (void *)vector(
            names[k][1], &org__packetbroker__v3__routed_uplink_message__descriptor);
        size_t n0;
        uint8_t *before = packed(&req->base, &n0);
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = 1714564800;
        Org__Packetbroker__V3__RouteHop hop = ORG__PACKETBROKER__V3__ROUTE_HOP__INIT, *hops[] = {&hop};
        hop.protocol = ORG__PACKETBROKER__V3__PROTOCOL__GRPC;
        pb_route_stamp_t stamp = {.id = "router-id-1", .time = &ts, .hops = hops, .n_hops = 1};
        Org__Packetbroker__V3__RoutedUplinkMessage got;
        pb_routed_uplink(&got, req, want->home_network_net_id, want->home_network_tenant_id,
                         &stamp);
        assert_int_equal(got.forwarder_net_id, want->forwarder_net_id);
        assert_string_equal(got.forwarder_tenant_id, want->forwarder_tenant_id);
        assert_string_equal(got.forwarder_cluster_id, want->forwarder_cluster_id);
        assert_int_equal(got.home_network_net_id, 0x13);
        assert_string_equal(got.home_network_tenant_id, want->home_network_tenant_id);
        assert_same_msg(&got.message->base, &want->message->base); /* the uplink as published */
        assert_string_equal(got.id, "router-id-1");
        assert_ptr_equal(got.time, &ts);
        assert_int_equal(got.n_hops, 1);
        /* the whole message packs and decodes as a RoutedUplinkMessage */
        size_t n;
        uint8_t *b = packed(&got.base, &n);
        Org__Packetbroker__V3__RoutedUplinkMessage *again =
            org__packetbroker__v3__routed_uplink_message__unpack(NULL, n, b);
        assert_non_null(again);
        assert_int_equal(again->hops[0]->protocol, ORG__PACKETBROKER__V3__PROTOCOL__GRPC);
        assert_memory_equal(again->message->gateway_uplink_token.data,
                            req->message->gateway_uplink_token.data,
                            req->message->gateway_uplink_token.len);
        protobuf_c_message_free_unpacked(&again->base, NULL);
        free(b);
        size_t n1;
        uint8_t *after = packed(&req->base, &n1); /* the request is unchanged */
        assert_int_equal(n0, n1);
        assert_memory_equal(before, after, n0);
        free(before);
        free(after);
        protobuf_c_message_free_unpacked(&req->base, NULL);
        protobuf_c_message_free_unpacked(&want->base, NULL);
    }
}

static void test_downlink(void **st)
{
    (void)st;
    Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest *req = (void *)vector(
        "PublishDownlinkMessageRequest: class A data downlink",
        &org__packetbroker__routing__v1__publish_downlink_message_request__descriptor);
    Org__Packetbroker__V3__RoutedDownlinkMessage *want = (void *)vector(
        "RoutedDownlinkMessage", &org__packetbroker__v3__routed_downlink_message__descriptor);
    size_t n0;
    uint8_t *before = packed(&req->base, &n0);
    Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    pb_route_stamp_t stamp = {.id = "router-id-2", .time = &ts};
    Org__Packetbroker__V3__DownlinkMessage dl = *req->message;
    /* the vector's Router minted this downlink_token; the hub mints its own */
    assert_int_equal(want->message->downlink_token.len, 8);
    Org__Packetbroker__V3__RoutedDownlinkMessage got;
    pb_routed_downlink(&got, req, &dl, want->message->downlink_token.data, &stamp);
    assert_int_equal(got.forwarder_net_id, want->forwarder_net_id);
    assert_string_equal(got.forwarder_tenant_id, want->forwarder_tenant_id);
    assert_string_equal(got.forwarder_cluster_id, want->forwarder_cluster_id);
    assert_int_equal(got.home_network_net_id, want->home_network_net_id);
    assert_string_equal(got.home_network_cluster_id, req->home_network_cluster_id);
    assert_string_equal(got.home_network_tenant_id, want->home_network_tenant_id);
    /* the DownlinkMessage as the Router passes it on: as sent plus its downlink_token */
    assert_same_msg(&got.message->base, &want->message->base);
    assert_memory_equal(got.message->gateway_uplink_token.data,
                        req->message->gateway_uplink_token.data,
                        req->message->gateway_uplink_token.len);
    size_t n1;
    uint8_t *after = packed(&req->base, &n1); /* the request is unchanged */
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    assert_int_equal(req->message->downlink_token.len, 0);
    free(before);
    free(after);
    protobuf_c_message_free_unpacked(&req->base, NULL);
    protobuf_c_message_free_unpacked(&want->base, NULL);
}

static int setup(void **st)
{
    (void)st;
    vectors = rh_test_load_vectors("pb_messages.json");
    return vectors ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    cJSON_Delete(vectors);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uplink),
        cmocka_unit_test(test_downlink),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
