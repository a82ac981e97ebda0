/* Unit tests for broker/pb_filter: Packet Broker home-network routing filters (any filter
 * passes; mac: DevAddr prefixes, FPort ranges, confirmed, FOpts; join_request EUI prefixes;
 * gateway metadata on/off), the facts read from a PHYPayload, refusals naming the field, and the
 * stripping of an uplink's gateway metadata (policy classes and the filter's metadata off). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pb_filter.h"
#include "route.h"

typedef Org__Packetbroker__V3__RoutingFilter filter_t;
typedef Org__Packetbroker__V3__RoutingFilter__MACPayload mac_t;

static const uint8_t UP_APP[] = {0x40, 0x34, 0x12, 0x01, 0x26, 0x00, 0x07, 0x00, 0x03,
                                 0xaa, 0x01, 0x02, 0x03, 0x04}; /* DevAddr 26011234 FPort 3 */
static const uint8_t UP_CONF_FOPTS[] = {0x80, 0x34, 0x12, 0x01, 0x26, 0x01, 0x07, 0x00, 0x02,
                                        0x01, 0x01, 0x02, 0x03, 0x04}; /* FOpts 1, FPort 1 */
static const uint8_t JOIN[] = {0x00, 0x00, 0x00, 0x00, 0xd0, 0x7e, 0xd5, 0xb3, 0x70, 0x30, 0x05,
                               0x1c, 0x00, 0x0b, 0xa3, 0x04, 0x00, 0x34, 0x12, 0x7c, 0x98, 0x40,
                               0xe6}; /* JoinEUI 70B3D57ED0000000, DevEUI 0004A30B001C0530 */
static const uint8_t DOWN[] = {0x60, 0x34, 0x12, 0x01, 0x26, 0x00, 0x03, 0x00, 0x01, 0xaa, 0xbb,
                               0x64, 0xf0, 0x25, 0x46};

static void test_facts(void **st)
{
    (void)st;
    pb_uplink_facts_t f;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_uplink_facts(UP_APP, sizeof UP_APP, &f, &d), RH_OK);
    assert_true(f.is_data);
    assert_false(f.is_join);
    assert_false(f.confirmed);
    assert_false(f.f_opts);
    assert_int_equal(f.dev_addr, 0x26011234u);
    assert_int_equal(f.f_port, 3);
    assert_int_equal(pb_uplink_facts(UP_CONF_FOPTS, sizeof UP_CONF_FOPTS, &f, &d), RH_OK);
    assert_true(f.confirmed && f.f_opts);
    assert_int_equal(f.f_port, 1);
    assert_int_equal(pb_uplink_facts(JOIN, sizeof JOIN, &f, &d), RH_OK);
    assert_true(f.is_join);
    assert_true(f.join_eui == 0x70B3D57ED0000000ull);
    assert_true(f.dev_eui == 0x0004A30B001C0530ull);
    assert_int_equal(pb_uplink_facts(DOWN, sizeof DOWN, &f, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "PHYPayload"));
    assert_non_null(strstr(d.text, "not an uplink"));
    assert_int_not_equal(pb_uplink_facts(UP_APP, 3, &f, &d), RH_OK);
}

static void test_prefix(void **st)
{
    (void)st;
    assert_true(pb_devaddr_prefix_match(0x26011234, 0, 0));
    assert_true(pb_devaddr_prefix_match(0x26011234, 0x26000000, 7));
    assert_true(pb_devaddr_prefix_match(0x27FFFFFF, 0x26000000, 7));
    assert_false(pb_devaddr_prefix_match(0x28000000, 0x26000000, 7));
    assert_true(pb_devaddr_prefix_match(0x26011234, 0x26011234, 32));
    assert_false(pb_devaddr_prefix_match(0x26011235, 0x26011234, 32));
}

/* a set from the filters, checked for pass/metadata on the three frames */
static void expect(filter_t **fs, size_t n, bool app, bool conf, bool join, bool meta_app)
{
    pb_filter_set_t *s = NULL;
    assert_int_equal(pb_filter_set_new(fs, n, &s, NULL), RH_OK);
    pb_uplink_facts_t a, c, j;
    pb_uplink_facts(UP_APP, sizeof UP_APP, &a, NULL);
    pb_uplink_facts(UP_CONF_FOPTS, sizeof UP_CONF_FOPTS, &c, NULL);
    pb_uplink_facts(JOIN, sizeof JOIN, &j, NULL);
    bool meta = false;
    assert_int_equal(pb_filter_set_pass(s, &a, &meta), app);
    if (app)
        assert_int_equal(meta, meta_app);
    assert_int_equal(pb_filter_set_pass(s, &c, NULL), conf);
    assert_int_equal(pb_filter_set_pass(s, &j, NULL), join);
    pb_filter_set_free(s);
}

static void test_filters(void **st)
{
    (void)st;
    /* no filters: everything, with metadata */
    expect(NULL, 0, true, true, true, true);
    bool meta = false;
    pb_uplink_facts_t a;
    pb_uplink_facts(UP_APP, sizeof UP_APP, &a, NULL);
    assert_true(pb_filter_set_pass(NULL, &a, &meta) && meta);

    filter_t f = ORG__PACKETBROKER__V3__ROUTING_FILTER__INIT;
    mac_t mac = ORG__PACKETBROKER__V3__ROUTING_FILTER__MACPAYLOAD__INIT;
    f.message_case = ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_MAC;
    f.mac = &mac;
    filter_t *one[] = {&f};
    /* mac with nothing set: every data uplink, no join */
    expect(one, 1, true, true, false, true);
    /* DevAddr prefixes: the TTS default 00000000/0 passes all; another block none */
    Org__Packetbroker__V3__DevAddrPrefix p0 = ORG__PACKETBROKER__V3__DEV_ADDR_PREFIX__INIT,
                                         p1 = ORG__PACKETBROKER__V3__DEV_ADDR_PREFIX__INIT;
    Org__Packetbroker__V3__DevAddrPrefix *pp[] = {&p0};
    mac.dev_addr_prefixes = pp;
    mac.n_dev_addr_prefixes = 1;
    expect(one, 1, true, true, false, true);
    p0.value = 0x32000000;
    p0.length = 7;
    expect(one, 1, false, false, false, true);
    p1.value = 0x26000000;
    p1.length = 7;
    Org__Packetbroker__V3__DevAddrPrefix *pp2[] = {&p0, &p1};
    mac.dev_addr_prefixes = pp2;
    mac.n_dev_addr_prefixes = 2; /* any prefix */
    expect(one, 1, true, true, false, true);
    /* FPort ranges (inclusive) */
    Org__Packetbroker__V3__RoutingFilter__MACPayload__FPortRange r =
        ORG__PACKETBROKER__V3__ROUTING_FILTER__MACPAYLOAD__FPORT_RANGE__INIT;
    Org__Packetbroker__V3__RoutingFilter__MACPayload__FPortRange *rr[] = {&r};
    r.low = 3;
    r.high = 3;
    mac.f_port_ranges = rr;
    mac.n_f_port_ranges = 1;
    expect(one, 1, true, false, false, true);
    r.low = 1;
    r.high = 2;
    expect(one, 1, false, true, false, true);
    mac.n_f_port_ranges = 0;
    /* confirmed / FOpts (BoolValue: unset = either) */
    Google__Protobuf__BoolValue yes = GOOGLE__PROTOBUF__BOOL_VALUE__INIT,
                                no = GOOGLE__PROTOBUF__BOOL_VALUE__INIT;
    yes.value = 1;
    mac.confirmed = &yes;
    expect(one, 1, false, true, false, true);
    mac.confirmed = &no;
    expect(one, 1, true, false, false, true);
    mac.confirmed = NULL;
    mac.f_opts = &yes;
    expect(one, 1, false, true, false, true);
    mac.f_opts = NULL;
    /* gateway metadata off on the filter that passes */
    f.gateway_metadata = &no;
    expect(one, 1, true, true, false, false);
    /* ... kept when another passing filter wants it (any filter passes) */
    filter_t g = ORG__PACKETBROKER__V3__ROUTING_FILTER__INIT;
    filter_t *two[] = {&f, &g};
    expect(two, 2, true, true, true, true);
    f.gateway_metadata = NULL;

    /* join_request: empty = all joins; EUI prefixes */
    filter_t j = ORG__PACKETBROKER__V3__ROUTING_FILTER__INIT;
    Org__Packetbroker__V3__RoutingFilter__JoinRequest jr =
        ORG__PACKETBROKER__V3__ROUTING_FILTER__JOIN_REQUEST__INIT;
    j.message_case = ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_JOIN_REQUEST;
    j.join_request = &jr;
    filter_t *jj[] = {&j};
    expect(jj, 1, false, false, true, true);
    Org__Packetbroker__V3__RoutingFilter__JoinRequest__EUIPrefixes e =
        ORG__PACKETBROKER__V3__ROUTING_FILTER__JOIN_REQUEST__EUIPREFIXES__INIT;
    Org__Packetbroker__V3__RoutingFilter__JoinRequest__EUIPrefixes *ee[] = {&e};
    jr.eui_prefixes = ee;
    jr.n_eui_prefixes = 1;
    expect(jj, 1, false, false, true, true); /* all-zero prefix: every join (the TTS default) */
    e.join_eui = 0x70B3D57E00000000ull;
    e.join_eui_length = 32;
    expect(jj, 1, false, false, true, true);
    e.dev_eui = 0x0004A30B00000000ull;
    e.dev_eui_length = 48;
    expect(jj, 1, false, false, false, true); /* 0004A30B001C... is not in 0004A30B0000/48 */
    e.dev_eui_length = 40;
    expect(jj, 1, false, false, true, true); /* ... but in 0004A30B00/40 */
    e.dev_eui_length = 32;
    expect(jj, 1, false, false, true, true);
    e.join_eui = 0x1111111100000000ull;
    expect(jj, 1, false, false, false, true);
    /* the TTS pair: mac /0 + all joins */
    filter_t *tts[] = {&f, &j};
    e.join_eui_length = 0;
    e.dev_eui_length = 0;
    mac.dev_addr_prefixes = pp;
    mac.n_dev_addr_prefixes = 1;
    p0.value = 0;
    p0.length = 0;
    expect(tts, 2, true, true, true, true);
}

static void test_refusals(void **st)
{
    (void)st;
    filter_t f = ORG__PACKETBROKER__V3__ROUTING_FILTER__INIT;
    mac_t mac = ORG__PACKETBROKER__V3__ROUTING_FILTER__MACPAYLOAD__INIT;
    f.message_case = ORG__PACKETBROKER__V3__ROUTING_FILTER__MESSAGE_MAC;
    f.mac = &mac;
    filter_t *fs[] = {&f, &f};
    Org__Packetbroker__V3__DevAddrPrefix p = ORG__PACKETBROKER__V3__DEV_ADDR_PREFIX__INIT;
    Org__Packetbroker__V3__DevAddrPrefix *pp[] = {&p};
    p.length = 33;
    mac.dev_addr_prefixes = pp;
    mac.n_dev_addr_prefixes = 1;
    pb_filter_set_t *s = (void *)1;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_filter_set_new(fs, 2, &s, &d), RH_EINVAL);
    assert_null(s);
    assert_string_equal(d.text, "filters[0].mac.dev_addr_prefixes[0].length: 33, at most 32");
    p.length = 8;
    Org__Packetbroker__V3__RoutingFilter__MACPayload__FPortRange r =
        ORG__PACKETBROKER__V3__ROUTING_FILTER__MACPAYLOAD__FPORT_RANGE__INIT;
    Org__Packetbroker__V3__RoutingFilter__MACPayload__FPortRange *rr[] = {&r};
    r.low = 9;
    r.high = 2;
    mac.f_port_ranges = rr;
    mac.n_f_port_ranges = 1;
    assert_int_equal(pb_filter_set_new(fs, 1, &s, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "filters[0].mac.f_port_ranges[0]"));
    r.low = 1;
    r.high = 256;
    assert_int_equal(pb_filter_set_new(fs, 1, &s, &d), RH_EINVAL);
    filter_t *many[65];
    for (int i = 0; i < 65; i++)
        many[i] = &f;
    assert_int_equal(pb_filter_set_new(many, 65, &s, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "filters: more than 64"));
}

/* An uplink with plain signal quality and localization, as protobuf-c would unpack it. */
static Org__Packetbroker__V3__UplinkMessage *uplink_with_metadata(void)
{
    Org__Packetbroker__V3__UplinkMessage m = ORG__PACKETBROKER__V3__UPLINK_MESSAGE__INIT;
    Org__Packetbroker__V3__UplinkMessage__GatewayMetadata g =
        ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__INIT;
    Org__Packetbroker__V3__GatewayMetadataSignalQuality sq =
        ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__INIT;
    Org__Packetbroker__V3__GatewayMetadataLocalization lo =
        ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__INIT;
    g.signal_quality_case =
        ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY_PLAIN_SIGNAL_QUALITY;
    g.plain_signal_quality = &sq;
    g.localization_case =
        ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION_PLAIN_LOCALIZATION;
    g.plain_localization = &lo;
    m.gateway_metadata = &g;
    m.frequency = 868100000;
    size_t n = org__packetbroker__v3__uplink_message__get_packed_size(&m);
    uint8_t *buf = malloc(n);
    org__packetbroker__v3__uplink_message__pack(&m, buf);
    Org__Packetbroker__V3__UplinkMessage *u =
        org__packetbroker__v3__uplink_message__unpack(NULL, n, buf);
    free(buf);
    assert_non_null(u);
    assert_non_null(u->gateway_metadata);
    return u;
}

static void test_strip(void **st)
{
    (void)st;
    Org__Packetbroker__V3__UplinkMessage *u = uplink_with_metadata();
    pb_uplink_strip(u, 0, false);
    assert_int_not_equal(u->gateway_metadata->signal_quality_case, 0);
    pb_uplink_strip(u, ROUTE_STRIP_SIGNAL, false);
    assert_int_equal(u->gateway_metadata->signal_quality_case, 0);
    assert_null(u->gateway_metadata->plain_signal_quality);
    assert_int_not_equal(u->gateway_metadata->localization_case, 0);
    pb_uplink_strip(u, ROUTE_STRIP_LOCATION, false);
    assert_int_equal(u->gateway_metadata->localization_case, 0);
    assert_int_equal(u->frequency, 868100000);
    org__packetbroker__v3__uplink_message__free_unpacked(u, NULL); /* no double free */

    u = uplink_with_metadata();
    pb_uplink_strip(u, ROUTE_STRIP_SIGNAL | ROUTE_STRIP_LOCATION, true);
    assert_null(u->gateway_metadata);
    pb_uplink_strip(u, ROUTE_STRIP_SIGNAL, true); /* nothing left: no-op */
    org__packetbroker__v3__uplink_message__free_unpacked(u, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_facts),   cmocka_unit_test(test_prefix),
        cmocka_unit_test(test_filters), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_strip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
