/*
 * pb_xlate.h — field-by-field translation between Packet Broker's v3 messages and TS002's typed
 * metadata (bi_ulmeta_t / bi_dlmeta_t), for the bridge (pb_bridge.c, pb_bridge_ts002.c; issue 12;
 * shared/reference/packet-broker-api.md §7). Pure: no I/O, no allocation — outputs borrow the
 * inputs' strings and bytes and live in caller-provided storage.
 *
 * Units: Packet Broker frequencies are Hz (uint64), TS002 MHz (double); Packet Broker data rates
 * are LoRa {spreading factor, bandwidth Hz}, TS002 data rates RP002 indexes of the region (uplink
 * and downlink tables differ for US915/AU915); RSSI dBm (float -> integer, rounded), SNR dB;
 * RX1 delay: Duration seconds <-> RXDelay1 (0 means 1 s in both); RecvTime <-> Timestamp.
 */
#ifndef RH_PB_XLATE_H
#define RH_PB_XLATE_H

#include "bi_msg.h"
#include "rh_err.h"

#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "packetbroker/v3.pb-c.h"

#include <stdbool.h>
#include <stdint.h>

/* Region names both ways (EU_863_870 <-> EU868, CN_470_510* -> CN470, WW_2G4 <-> ISM2400...);
 * unknown -> BI_REGION_UNKNOWN / UNKNOWN_REGION. */
bi_region_t pb_xlate_region_to_bi(Org__Packetbroker__V3__Region r);
Org__Packetbroker__V3__Region pb_xlate_region_from_bi(bi_region_t r);

/* The RP002 data rate index of LoRa (sf, bw_hz) in region r (uplink or downlink table).
 * Errors: RH_EINVAL when the region has no such LoRa data rate (or the region is unknown). */
int pb_xlate_dr_index(bi_region_t r, bool uplink, uint32_t sf, uint32_t bw_hz, uint32_t *dr);
/* The LoRa (sf, bw_hz) of index dr in region r. Errors: RH_EINVAL (not a LoRa rate there). */
int pb_xlate_dr_lora(bi_region_t r, bool uplink, uint32_t dr, uint32_t *sf, uint32_t *bw_hz);

/* ULMetaData of a Packet Broker uplink (a gRPC forwarder's Publish) for a TS002 home network:
 * DataRate (index from data_rate.lora and gateway_region), ULFreq (frequency / 1e6), RecvTime
 * (gateway_receive_time, else forwarder_receive_time), RFRegion, GWCnt 1 and one GWInfo: ID =
 * gateway_id.eui (8 bytes), else the first 8 bytes of SHA-256(gateway_id.plain) or of hash; RSSI
 * (channel_rssi, rounded) and SNR of the best antenna (highest SNR, then RSSI); Lat/Lon of the
 * first localized antenna; ULToken = token (hex) and DLAllowed = token non-NULL; FNSULToken =
 * token. DevAddr / DevEUI / FPort / FCntUp / Confirmed from the frame when it decodes. *ul and
 * *gw are filled (ul->gw = gw). Errors: RH_EINVAL with d naming the field (data_rate missing or
 * not LoRa, frequency 0). */
int pb_xlate_ulmeta(const Org__Packetbroker__V3__UplinkMessage *um, const char *token,
                    bi_ulmeta_t *ul, bi_gwinfo_t *gw, rh_diag_t *d);

/* Storage for a DownlinkMessage built from TS002 DLMetaData (pb_xlate_downlink). */
typedef struct pb_xlate_dl {
    Org__Packetbroker__V3__DownlinkMessage dm;
    Org__Packetbroker__V3__DownlinkMessage__RXSettings rx[2];
    Org__Packetbroker__V3__DataRate dr[2];
    Org__Packetbroker__V3__LoRaDataRate lora[2];
    Google__Protobuf__Duration delay;
} pb_xlate_dl_t;

/* A DownlinkMessage from a TS002 downlink (phy + dl) for a Packet Broker forwarder in region r:
 * rx1 {DLFreq1 * 1e6 Hz, DataRate1 as LoRa} and rx2 likewise when present, rx1_delay RXDelay1 s,
 * class A / C from ClassMode (B refused: Packet Broker cannot time ping slots), priority HIGHEST
 * with HiPriorityFlag else NORMAL, region r. Tokens are the caller's. Errors: RH_EINVAL with d
 * naming the field. */
int pb_xlate_downlink(const uint8_t *phy, size_t phy_len, const bi_dlmeta_t *dl, bi_region_t r,
                      pb_xlate_dl_t *out, rh_diag_t *d);

/* DLMetaData of a Packet Broker DownlinkMessage for a TS002 forwarder in region r: DLFreq1/2 in
 * MHz and DataRate1/2 (downlink table) from rx1/rx2, RXDelay1 from rx1_delay (whole seconds,
 * absent: 1), ClassMode "A" / "C" (class B refused), HiPriorityFlag for HIGH/HIGHEST. Tokens
 * (FNSULToken, GWInfo ULTokens) are the caller's. Errors: RH_EINVAL with d naming the field (no
 * window, a data rate that is not LoRa or not in the region's table). */
int pb_xlate_dlmeta(const Org__Packetbroker__V3__DownlinkMessage *dm, bi_region_t r,
                    bi_dlmeta_t *dl, rh_diag_t *d);

/* Storage for an UplinkMessage built from TS002 ULMetaData (pb_xlate_uplink). */
typedef struct pb_xlate_up {
    Org__Packetbroker__V3__UplinkMessage um;
    Org__Packetbroker__V3__UplinkMessage__PHYPayload phy;
    Org__Packetbroker__V3__DataRate dr;
    Org__Packetbroker__V3__LoRaDataRate lora;
    Google__Protobuf__Timestamp recv;
    Org__Packetbroker__V3__GatewayIdentifier gw_id;
    Google__Protobuf__UInt64Value eui;
    Org__Packetbroker__V3__UplinkMessage__GatewayMetadata md;
    Org__Packetbroker__V3__GatewayMetadataSignalQuality sq;
    Org__Packetbroker__V3__GatewayMetadataSignalQuality__Terrestrial sq_t;
    Org__Packetbroker__V3__GatewayMetadataSignalQuality__Terrestrial__Antenna sq_a, *sq_ap[1];
    Org__Packetbroker__V3__TerrestrialGatewayAntennaSignalQuality sq_v;
    Org__Packetbroker__V3__GatewayMetadataLocalization lo;
    Org__Packetbroker__V3__GatewayMetadataLocalization__Terrestrial lo_t;
    Org__Packetbroker__V3__GatewayMetadataLocalization__Terrestrial__Antenna lo_a, *lo_ap[1];
    Org__Packetbroker__V3__Location loc;
    Org__Packetbroker__V3__GatewayMetadataTeaser teaser;
    Org__Packetbroker__V3__GatewayMetadataTeaser__Terrestrial teaser_t;
} pb_xlate_up_t;

/* Whether GWInfo a has the better signal than b: a has an SNR and b none, or both have one and
 * a's is higher (equal: the higher RSSI). Used to pick a bridged uplink's gateway
 * (pb_xlate_best_gw) and to order merged copies (pb_merge.h). */
bool pb_xlate_gw_better(const bi_gwinfo_t *a, const bi_gwinfo_t *b);

/* The index of the GWInfo element a bridged uplink is sent with: the best signal (SNR, then
 * RSSI) among the elements, 0 when none has signal quality; -1 when there is no GWInfo. */
int pb_xlate_best_gw(const bi_ulmeta_t *ul);

/* An UplinkMessage from a TS002 uplink (phy + ul) for a Packet Broker home network: plain
 * PHYPayload, frequency ULFreq * 1e6 Hz, data_rate from DataRate (uplink table of RFRegion),
 * gateway_region, gateway_receive_time = RecvTime, and from GWInfo[gw] (gw >= 0): gateway_id.eui
 * = its ID, plain signal quality (RSSI, SNR) and localization (Lat/Lon, FineRecvTime). Tokens are
 * the caller's. Errors: RH_EINVAL with d naming the field (RFRegion unknown, DataRate not LoRa in
 * that region, ULFreq missing). */
int pb_xlate_uplink(const uint8_t *phy, size_t phy_len, const bi_ulmeta_t *ul, int gw,
                    pb_xlate_up_t *out, rh_diag_t *d);

/* The TS002 Result for a Packet Broker home network's uplink delivery report (docs/PEERING.md,
 * "Bridging"): no error -> Success; NOT_FOUND -> UnknownDevAddr (data) / UnknownDevEUI (join);
 * DUPLICATE_PAYLOAD -> Success (the home network already had it: keep the first answer);
 * UPLINK_ROUTING_POLICY -> NoRoamingAgreement; NO_HOME_NETWORK_ENDPOINTS -> UnknownReceiver;
 * UPLINK_UNKNOWN_ERROR, UPLINK_INTERNAL and others -> Other. */
bi_result_code_t pb_xlate_report_result(bool has_error, int error, bool join);

#endif
