/*
 * pb_filter.h — Packet Broker home-network subscription filters and uplink metadata stripping
 * (issue 12; org.packetbroker.v3.RoutingFilter, shared/reference/packet-broker-api.md section 3/4).
 *
 * A SubscribeHomeNetworkRequest carries repeated RoutingFilter; an uplink passes when ANY filter
 * passes, and with no filters everything passes. A filter passes when its message part matches:
 *   - mac (data uplinks only): `confirmed` (BoolValue; unset = either) against the MType
 *     (ConfirmedDataUp), `dev_addr_prefixes` (empty = all; else any DevAddrPrefix{value,length}
 *     whose top `length` bits equal the DevAddr's), `f_opts` (BoolValue; unset = either) against
 *     FOptsLen > 0, `f_port_ranges` (empty = all; else any inclusive [low, high] holding FPort; a
 *     frame without FPort has FPort 0 here, as in the teaser);
 *   - join_request (join-requests only): `eui_prefixes` (empty = all; else any prefix whose
 *     JoinEUI and DevEUI top bits match; length 0 = any);
 *   - no message part: every uplink.
 * `gateway_metadata` (BoolValue) of the filters that pass decides whether the subscriber gets the
 * gateway metadata: false on every passing filter = stripped; unset or true on one = kept.
 * This is the subscriber's wish only: what a home network may receive at all (its DevAddr blocks
 * and join routes) is the routing table's decision (route.h), taken before filters are applied.
 *
 * Pure: no allocation except pb_filter_set_new/free; thread-safe for distinct sets, and a built
 * set is immutable (read from any thread).
 */
#ifndef RH_PB_FILTER_H
#define RH_PB_FILTER_H

#include "packetbroker/v3.pb-c.h"
#include "rh_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the filters look at, taken from the uplink's PHYPayload (pb_uplink_facts). */
typedef struct pb_uplink_facts {
    bool is_data;      /* UnconfirmedDataUp / ConfirmedDataUp */
    bool is_join;      /* JoinRequest */
    bool confirmed;    /* ConfirmedDataUp */
    bool f_opts;       /* FOptsLen > 0 */
    uint32_t dev_addr; /* host order */
    uint32_t f_port;   /* 0 without FPort */
    uint64_t join_eui, dev_eui;
} pb_uplink_facts_t;

/* Reads the facts from a PHYPayload (len bytes). Errors: RH_ESIZE / RH_EINVAL / RH_EVERSION
 * (lw_frame_decode's, diag naming the field) and RH_EINVAL for a frame that is not an uplink. */
int pb_uplink_facts(const uint8_t *phy, size_t len, pb_uplink_facts_t *out, rh_diag_t *diag);

typedef struct pb_filter_set pb_filter_set_t;

/* Copies the filters into an immutable set (filters NULL or n 0 = pass everything). Errors:
 * RH_EINVAL with diag naming the filter and field (DevAddrPrefix length > 32, EUI prefix length
 * > 64, FPort range low > high or > 255, more than 64 filters or 256 prefixes/ranges in one),
 * RH_ENOMEM. Free with pb_filter_set_free (NULL is a no-op). */
int pb_filter_set_new(Org__Packetbroker__V3__RoutingFilter *const *filters, size_t n,
                      pb_filter_set_t **out, rh_diag_t *diag);
void pb_filter_set_free(pb_filter_set_t *s);

/* Whether the uplink passes; *with_metadata (may be NULL) gets whether gateway metadata is kept.
 * s NULL passes everything with metadata. */
bool pb_filter_set_pass(const pb_filter_set_t *s, const pb_uplink_facts_t *f, bool *with_metadata);

/* Whether a DevAddr lies in a prefix of `length` significant bits (0 = every DevAddr). */
bool pb_devaddr_prefix_match(uint32_t dev_addr, uint32_t value, uint32_t length);

/* What the routing policy (ROUTE_STRIP_* bits, route.h) or a filter removes from an uplink's
 * gateway metadata, in place: signal quality (plain and encrypted), localization (plain and
 * encrypted), or the whole gateway_metadata when `all`. Removed sub-messages are freed with the
 * allocator they were unpacked with (NULL = protobuf-c's default), so the message stays one that
 * protobuf_c_message_free_unpacked can free. */
void pb_uplink_strip(Org__Packetbroker__V3__UplinkMessage *m, unsigned route_strip, bool all);

#endif
