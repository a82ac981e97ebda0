/*
 * fuzz_pb_messages.c — libFuzzer target for what the Packet Broker method handlers parse once a
 * call is authenticated (issue 12; broker/pb_forwarder.c, pb_home.c, pb_mapper.c): the request
 * messages with the project's protobuf-c schema, the uplink's PHYPayload facts, home-network
 * routing filters (pb_filter_set_new / pb_filter_set_pass), and the policy / filter stripping of
 * an uplink's gateway metadata followed by the re-encoding the router hands to a stream.
 *
 * Input: byte 0 picks the request type (mod 6), the rest is the protobuf message. Checked
 * besides the sanitizers: a stripped uplink re-encodes and decodes again without the stripped
 * parts; a refused filter set gives a diagnostic; whatever the bridge's translation (pb_xlate.h)
 * accepts of an uplink or a downlink, the TS002 codec accepts as ULMetaData / DLMetaData.
 * Seeds: tests/fuzz/corpus/pb_messages/ (the pb_messages.json vectors, type byte prepended).
 */
#include "bi_msg.h"
#include "pb_filter.h"
#include "pb_service.h"
#include "pb_xlate.h"
#include "route.h"

#include "packetbroker/mapping_v2.pb-c.h"
#include "packetbroker/routing_v1.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *why)
{
    fprintf(stderr, "fuzz_pb_messages: %s\n", why);
    abort();
}

static void uplink(const uint8_t *p, size_t n)
{
    Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *r =
        org__packetbroker__routing__v1__publish_uplink_message_request__unpack(NULL, n, p);
    if (!r)
        return;
    char why[160];
    if (!pb_message_valid(&r->base, why, sizeof why)) { /* refused by pb_call_begin */
        protobuf_c_message_free_unpacked(&r->base, NULL);
        return;
    }
    Org__Packetbroker__V3__UplinkMessage *m = r->message;
    if (m && m->phy_payload &&
        m->phy_payload->value_case == ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN) {
        pb_uplink_facts_t f;
        rh_diag_t d = {{0}};
        if (pb_uplink_facts(m->phy_payload->plain.data, m->phy_payload->plain.len, &f, &d) !=
                RH_OK &&
            !d.text[0])
            die("refused PHYPayload without a diagnostic");
    }
    if (m && m->phy_payload &&
        m->phy_payload->value_case == ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN &&
        m->phy_payload->plain.len > 0 && m->phy_payload->plain.len <= BI_MAX_PHY) {
        bi_ulmeta_t ul;
        bi_gwinfo_t gw;
        rh_diag_t d = {{0}};
        int rc = pb_xlate_ulmeta(m, n & 8 ? "0a0b" : NULL, &ul, &gw, &d);
        if (rc != RH_OK && !d.text[0])
            die("refused uplink translation without a diagnostic");
        if (rc == RH_OK) {
            bi_msg_t *msg = NULL;
            bi_id_t s = {BI_ID_NETID, 0x13}, rcv = {BI_ID_NETID, 0x505};
            bi_error_t err;
            if (bi_msg_new(BI_MT_PR_START_REQ, BI_VERSION_1_0, s, rcv, 1, &msg) != RH_OK)
                die("bi_msg_new");
            int r2 = bi_msg_set_uplink(msg, m->phy_payload->plain.data, m->phy_payload->plain.len,
                                       &ul, &err);
            if (r2 != RH_OK && r2 != RH_ENOMEM) {
                fprintf(stderr, "%s\n", err.description);
                die("the codec refused a translated ULMetaData");
            }
            bi_msg_free(msg);
        }
    }
    if (m) {
        unsigned strip = (n & 1 ? ROUTE_STRIP_SIGNAL : 0) | (n & 2 ? ROUTE_STRIP_LOCATION : 0);
        pb_uplink_strip(m, strip, (n & 4) != 0);
        size_t len = protobuf_c_message_get_packed_size(&r->base);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
            die("malloc");
        protobuf_c_message_pack(&r->base, buf);
        Org__Packetbroker__Routing__V1__PublishUplinkMessageRequest *again =
            org__packetbroker__routing__v1__publish_uplink_message_request__unpack(NULL, len, buf);
        if (!again)
            die("a stripped uplink does not decode again");
        const Org__Packetbroker__V3__UplinkMessage__GatewayMetadata *g =
            again->message ? again->message->gateway_metadata : NULL;
        if ((n & 4) && g)
            die("gateway metadata survived stripping");
        if (g && (strip & ROUTE_STRIP_SIGNAL) && g->signal_quality_case)
            die("signal quality survived stripping");
        if (g && (strip & ROUTE_STRIP_LOCATION) && g->localization_case)
            die("localization survived stripping");
        protobuf_c_message_free_unpacked(&again->base, NULL);
        free(buf);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void subscribe_home(const uint8_t *p, size_t n)
{
    Org__Packetbroker__Routing__V1__SubscribeHomeNetworkRequest *r =
        org__packetbroker__routing__v1__subscribe_home_network_request__unpack(NULL, n, p);
    if (!r)
        return;
    pb_filter_set_t *s = NULL;
    rh_diag_t d = {{0}};
    int rc = pb_filter_set_new(r->filters, r->n_filters, &s, &d);
    if (rc == RH_EINVAL && !d.text[0])
        die("refused filter without a diagnostic");
    if (rc == RH_OK) {
        pb_uplink_facts_t f = {.is_data = true, .dev_addr = (uint32_t)n * 2654435761u,
                               .f_port = (uint32_t)n & 0xff, .confirmed = n & 1};
        bool meta;
        pb_filter_set_pass(s, &f, &meta);
        f = (pb_uplink_facts_t){.is_join = true, .join_eui = n, .dev_eui = ~(uint64_t)n};
        pb_filter_set_pass(s, &f, &meta);
        pb_filter_set_free(s);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* The bridge's translation of a home network's downlink for a TS002 forwarder: what it accepts,
 * the codec accepts as DLMetaData of an XmitDataReq. */
static void downlink(const Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest *r,
                     size_t n)
{
    const Org__Packetbroker__V3__DownlinkMessage *dm = r->message;
    if (!dm || dm->phy_payload.len == 0 || dm->phy_payload.len > BI_MAX_PHY)
        return;
    bi_dlmeta_t dl;
    rh_diag_t d = {{0}};
    bi_region_t region = n & 1 ? BI_REGION_US915 : BI_REGION_EU868;
    int rc = pb_xlate_dlmeta(dm, region, &dl, &d);
    if (rc != RH_OK) {
        if (!d.text[0])
            die("refused downlink translation without a diagnostic");
        return;
    }
    bi_msg_t *msg = NULL;
    bi_id_t s = {BI_ID_NETID, 0x13}, rcv = {BI_ID_NETID, 0x202};
    bi_error_t err;
    if (bi_msg_new(BI_MT_XMIT_DATA_REQ, BI_VERSION_1_0, s, rcv, 1, &msg) != RH_OK)
        die("bi_msg_new");
    int r2 = bi_msg_set_downlink(msg, dm->phy_payload.data, dm->phy_payload.len, &dl, &err);
    if (r2 != RH_OK && r2 != RH_ENOMEM) {
        fprintf(stderr, "%s\n", err.description);
        die("the codec refused a translated DLMetaData");
    }
    /* and back: the Packet Broker form of what the codec holds */
    pb_xlate_dl_t x;
    if (r2 == RH_OK && pb_xlate_downlink(dm->phy_payload.data, dm->phy_payload.len,
                                         &bi_msg_fields(msg)->dl, region, &x, &d) != RH_OK)
        die("a translated DLMetaData does not translate back");
    bi_msg_free(msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    ProtobufCMessage *m = NULL;
    switch (data[0] % 6) {
    case 0:
        uplink(p, n);
        break;
    case 1:
        subscribe_home(p, n);
        break;
    case 2:
        m = protobuf_c_message_unpack(
            &org__packetbroker__routing__v1__publish_downlink_message_request__descriptor, NULL, n,
            p);
        if (m)
            downlink((Org__Packetbroker__Routing__V1__PublishDownlinkMessageRequest *)m, n);
        break;
    case 3:
        m = protobuf_c_message_unpack(
            &org__packetbroker__routing__v1__uplink_message_delivery_state_change_request__descriptor,
            NULL, n, p);
        break;
    case 4:
        m = protobuf_c_message_unpack(
            &org__packetbroker__routing__v1__downlink_message_delivery_state_change_request__descriptor,
            NULL, n, p);
        break;
    default:
        m = protobuf_c_message_unpack(
            &org__packetbroker__mapping__v2__update_gateway_request__descriptor, NULL, n, p);
        break;
    }
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}
