/* pb_xlate.c — Packet Broker v3 <-> TS002 metadata, field by field (see pb_xlate.h). */
#include "pb_xlate.h"

#include "lw_frame.h"
#include "pb_filter.h"

#include <math.h>
#include <openssl/sha.h>
#include <string.h>

/* ---------------------------------------------------------------- regions */

static const struct {
    Org__Packetbroker__V3__Region pb;
    bi_region_t bi;
} regions[] = {
    {ORG__PACKETBROKER__V3__REGION__EU_863_870, BI_REGION_EU868},
    {ORG__PACKETBROKER__V3__REGION__US_902_928, BI_REGION_US915},
    {ORG__PACKETBROKER__V3__REGION__CN_779_787, BI_REGION_CN779},
    {ORG__PACKETBROKER__V3__REGION__EU_433, BI_REGION_EU433},
    {ORG__PACKETBROKER__V3__REGION__AU_915_928, BI_REGION_AU915},
    {ORG__PACKETBROKER__V3__REGION__CN_470_510, BI_REGION_CN470},
    {ORG__PACKETBROKER__V3__REGION__CN_470_510_20_A, BI_REGION_CN470},
    {ORG__PACKETBROKER__V3__REGION__CN_470_510_20_B, BI_REGION_CN470},
    {ORG__PACKETBROKER__V3__REGION__CN_470_510_26_A, BI_REGION_CN470},
    {ORG__PACKETBROKER__V3__REGION__CN_470_510_26_B, BI_REGION_CN470},
    {ORG__PACKETBROKER__V3__REGION__AS_923, BI_REGION_AS923},
    {ORG__PACKETBROKER__V3__REGION__AS_923_2, BI_REGION_AS923_2},
    {ORG__PACKETBROKER__V3__REGION__AS_923_3, BI_REGION_AS923_3},
    {ORG__PACKETBROKER__V3__REGION__AS_923_4, BI_REGION_AS923_4},
    {ORG__PACKETBROKER__V3__REGION__KR_920_923, BI_REGION_KR920},
    {ORG__PACKETBROKER__V3__REGION__IN_865_867, BI_REGION_IN865},
    {ORG__PACKETBROKER__V3__REGION__RU_864_870, BI_REGION_RU864},
    {ORG__PACKETBROKER__V3__REGION__WW_2G4, BI_REGION_ISM2400},
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_FREQ_HZ 10000000000ull /* TS002's frequency fields allow up to 10000 MHz */

bi_region_t pb_xlate_region_to_bi(Org__Packetbroker__V3__Region r)
{
    for (size_t i = 0; i < NELEM(regions); i++)
        if (regions[i].pb == r)
            return regions[i].bi;
    return BI_REGION_UNKNOWN;
}

Org__Packetbroker__V3__Region pb_xlate_region_from_bi(bi_region_t r)
{
    for (size_t i = 0; i < NELEM(regions); i++)
        if (regions[i].bi == r)
            return regions[i].pb;
    return ORG__PACKETBROKER__V3__REGION__UNKNOWN_REGION;
}

/* ---------------------------------------------------------------- data rates (RP002-1.0.4) */

typedef struct dr_row {
    uint8_t dr, sf;
    uint32_t bw;
} dr_row_t;

static const dr_row_t dr_eu[] = {{0, 12, 125000}, {1, 11, 125000}, {2, 10, 125000},
                                 {3, 9, 125000},  {4, 8, 125000},  {5, 7, 125000},
                                 {6, 7, 250000}};
static const dr_row_t dr_cn470[] = {{0, 12, 125000}, {1, 11, 125000}, {2, 10, 125000},
                                    {3, 9, 125000},  {4, 8, 125000},  {5, 7, 125000}};
static const dr_row_t dr_us_up[] = {{0, 10, 125000}, {1, 9, 125000}, {2, 8, 125000},
                                    {3, 7, 125000},  {4, 8, 500000}};
static const dr_row_t dr_au_up[] = {{0, 12, 125000}, {1, 11, 125000}, {2, 10, 125000},
                                    {3, 9, 125000},  {4, 8, 125000},  {5, 7, 125000},
                                    {6, 8, 500000}};
static const dr_row_t dr_us_down[] = {{8, 12, 500000},  {9, 11, 500000},  {10, 10, 500000},
                                      {11, 9, 500000},  {12, 8, 500000},  {13, 7, 500000}};

static const dr_row_t *dr_table(bi_region_t r, bool uplink, size_t *n)
{
    switch (r) {
    case BI_REGION_UNKNOWN:
    case BI_REGION_ISM2400:
    case BI_REGION_COUNT:
        *n = 0;
        return NULL;
    case BI_REGION_US915:
        *n = uplink ? NELEM(dr_us_up) : NELEM(dr_us_down);
        return uplink ? dr_us_up : dr_us_down;
    case BI_REGION_AU915:
        *n = uplink ? NELEM(dr_au_up) : NELEM(dr_us_down);
        return uplink ? dr_au_up : dr_us_down;
    case BI_REGION_CN470:
        *n = NELEM(dr_cn470);
        return dr_cn470;
    default:
        *n = NELEM(dr_eu);
        return dr_eu;
    }
}

int pb_xlate_dr_index(bi_region_t r, bool uplink, uint32_t sf, uint32_t bw_hz, uint32_t *dr)
{
    size_t n;
    const dr_row_t *t = dr_table(r, uplink, &n);
    for (size_t i = 0; i < n; i++)
        if (t[i].sf == sf && t[i].bw == bw_hz) {
            *dr = t[i].dr;
            return RH_OK;
        }
    return RH_EINVAL;
}

int pb_xlate_dr_lora(bi_region_t r, bool uplink, uint32_t dr, uint32_t *sf, uint32_t *bw_hz)
{
    size_t n;
    const dr_row_t *t = dr_table(r, uplink, &n);
    for (size_t i = 0; i < n; i++)
        if (t[i].dr == dr) {
            *sf = t[i].sf;
            *bw_hz = t[i].bw;
            return RH_OK;
        }
    return RH_EINVAL;
}

/* ---------------------------------------------------------------- uplink: PB -> TS002 */

static bi_time_t time_of(const Google__Protobuf__Timestamp *ts)
{
    bi_time_t t = {ts->seconds, ts->nanos > 0 ? (uint32_t)ts->nanos : 0};
    return t;
}

/* GWInfo.ID of a Packet Broker gateway: its EUI, else the first 8 bytes of SHA-256 of its ID. */
static bool gw_id_of(const Org__Packetbroker__V3__GatewayIdentifier *g, uint64_t *id)
{
    if (!g)
        return false;
    if (g->eui) {
        *id = g->eui->value;
        return true;
    }
    uint8_t h[SHA256_DIGEST_LENGTH];
    const uint8_t *p = NULL;
    if (g->id_case == ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_PLAIN && g->plain[0]) {
        SHA256((const uint8_t *)g->plain, strlen(g->plain), h);
        p = h;
    } else if (g->id_case == ORG__PACKETBROKER__V3__GATEWAY_IDENTIFIER__ID_HASH &&
               g->hash.len >= 8) {
        p = g->hash.data;
    }
    if (!p)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    *id = v;
    return true;
}

int pb_xlate_ulmeta(const Org__Packetbroker__V3__UplinkMessage *um, const char *token,
                    bi_ulmeta_t *ul, bi_gwinfo_t *gw, rh_diag_t *d)
{
    memset(ul, 0, sizeof *ul);
    memset(gw, 0, sizeof *gw);
    bi_region_t region = pb_xlate_region_to_bi(um->gateway_region);
    if (!um->data_rate ||
        um->data_rate->modulation_case != ORG__PACKETBROKER__V3__DATA_RATE__MODULATION_LORA ||
        !um->data_rate->lora)
        return rh_diag_fail(d, RH_EINVAL, "message.data_rate: missing or not LoRa");
    if (pb_xlate_dr_index(region, true, um->data_rate->lora->spreading_factor,
                          um->data_rate->lora->bandwidth, &ul->data_rate) != RH_OK)
        return rh_diag_fail(d, RH_EINVAL, "message.data_rate: SF%u/%u Hz is no uplink data rate "
                            "of region %s", um->data_rate->lora->spreading_factor,
                            um->data_rate->lora->bandwidth,
                            region ? bi_region_name(region, BI_REGION_NAMES_RP002) : "unknown");
    if (um->frequency == 0 || um->frequency > MAX_FREQ_HZ)
        return rh_diag_fail(d, RH_EINVAL, "message.frequency: %s",
                            um->frequency ? "above 10 GHz" : "missing");
    ul->present = BI_UL_DATA_RATE | BI_UL_UL_FREQ | BI_UL_RF_REGION | BI_UL_GW_CNT |
                  BI_UL_GW_INFO;
    ul->ul_freq = (double)um->frequency / 1e6;
    ul->rf_region = region;
    const Google__Protobuf__Timestamp *ts =
        um->gateway_receive_time ? um->gateway_receive_time : um->forwarder_receive_time;
    if (ts) {
        ul->present |= BI_UL_RECV_TIME;
        ul->recv_time = time_of(ts);
    }
    ul->gw_cnt = 1;
    ul->gw = gw;
    ul->gw_count = 1;
    if (token) {
        ul->present |= BI_UL_FNS_UL_TOKEN;
        ul->fns_ul_token = token;
    }
    /* what the frame says (the home network reads the PHYPayload anyway) */
    pb_uplink_facts_t f;
    if (um->phy_payload &&
        um->phy_payload->value_case == ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN &&
        pb_uplink_facts(um->phy_payload->plain.data, um->phy_payload->plain.len, &f, NULL) ==
            RH_OK) {
        if (f.is_data) {
            ul->present |= BI_UL_DEV_ADDR | BI_UL_CONFIRMED;
            ul->dev_addr = f.dev_addr;
            ul->confirmed = f.confirmed;
        } else if (f.is_join) {
            ul->present |= BI_UL_DEV_EUI;
            ul->dev_eui = f.dev_eui;
        }
    }
    /* GWInfo: the gateway, its best antenna's signal, its location */
    gw->present = BI_GW_RF_REGION | BI_GW_DL_ALLOWED;
    gw->rf_region = region;
    gw->dl_allowed = token != NULL;
    if (token) {
        gw->present |= BI_GW_UL_TOKEN;
        gw->ul_token = token;
    }
    if (gw_id_of(um->gateway_id, &gw->id)) {
        gw->present |= BI_GW_ID;
        gw->id_len = 8;
    }
    const Org__Packetbroker__V3__UplinkMessage__GatewayMetadata *md = um->gateway_metadata;
    if (md && md->signal_quality_case ==
                  ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY_PLAIN_SIGNAL_QUALITY &&
        md->plain_signal_quality &&
        md->plain_signal_quality->value_case ==
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__VALUE_TERRESTRIAL &&
        md->plain_signal_quality->terrestrial) {
        const Org__Packetbroker__V3__GatewayMetadataSignalQuality__Terrestrial *t =
            md->plain_signal_quality->terrestrial;
        const Org__Packetbroker__V3__TerrestrialGatewayAntennaSignalQuality *best = NULL;
        for (size_t i = 0; i < t->n_antennas; i++) {
            const Org__Packetbroker__V3__TerrestrialGatewayAntennaSignalQuality *v =
                t->antennas[i]->value;
            if (v && (!best || v->snr > best->snr ||
                      (v->snr == best->snr && v->channel_rssi > best->channel_rssi)))
                best = v;
        }
        if (best && isfinite(best->channel_rssi) && fabsf(best->channel_rssi) < 32767.0f &&
            isfinite(best->snr) && fabsf(best->snr) <= 1000.0f) {
            gw->present |= BI_GW_RSSI | BI_GW_SNR;
            gw->rssi = (int32_t)lroundf(best->channel_rssi);
            gw->snr = best->snr;
        }
    }
    if (md && md->localization_case ==
                  ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION_PLAIN_LOCALIZATION &&
        md->plain_localization &&
        md->plain_localization->value_case ==
            ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__VALUE_TERRESTRIAL &&
        md->plain_localization->terrestrial) {
        const Org__Packetbroker__V3__GatewayMetadataLocalization__Terrestrial *t =
            md->plain_localization->terrestrial;
        for (size_t i = 0; i < t->n_antennas; i++) {
            const Org__Packetbroker__V3__GatewayMetadataLocalization__Terrestrial__Antenna *a =
                t->antennas[i];
            if (!a->location || !(fabs(a->location->latitude) <= 90.0) ||
                !(fabs(a->location->longitude) <= 180.0))
                continue; /* none, or not a place on Earth (NaN included) */
            gw->present |= BI_GW_LAT | BI_GW_LON;
            gw->lat = a->location->latitude;
            gw->lon = a->location->longitude;
            if (a->fine_timestamp && a->fine_timestamp->value <= 999999999999999ull) {
                gw->present |= BI_GW_FINE_RECV_TIME;
                gw->fine_recv_time = a->fine_timestamp->value;
            }
            break;
        }
    }
    return RH_OK;
}

/* ---------------------------------------------------------------- downlink: TS002 -> PB */

static int rx_settings(double mhz, bool has_dr, uint32_t dr, bi_region_t r, int i,
                       pb_xlate_dl_t *o, const char *field, rh_diag_t *d)
{
    org__packetbroker__v3__downlink_message__rxsettings__init(&o->rx[i]);
    o->rx[i].frequency = (uint64_t)llround(mhz * 1e6);
    if (has_dr) {
        uint32_t sf, bw;
        if (pb_xlate_dr_lora(r, false, dr, &sf, &bw) != RH_OK)
            return rh_diag_fail(d, RH_EINVAL, "DLMetaData.%s: %u is no LoRa downlink data rate "
                                "of region %s", field, dr,
                                r ? bi_region_name(r, BI_REGION_NAMES_RP002) : "unknown");
        org__packetbroker__v3__data_rate__init(&o->dr[i]);
        org__packetbroker__v3__lo_ra_data_rate__init(&o->lora[i]);
        o->lora[i].spreading_factor = sf;
        o->lora[i].bandwidth = bw;
        o->lora[i].coding_rate = (char *)"4/5";
        o->dr[i].modulation_case = ORG__PACKETBROKER__V3__DATA_RATE__MODULATION_LORA;
        o->dr[i].lora = &o->lora[i];
        o->rx[i].data_rate = &o->dr[i];
    }
    return RH_OK;
}

int pb_xlate_downlink(const uint8_t *phy, size_t phy_len, const bi_dlmeta_t *dl, bi_region_t r,
                      pb_xlate_dl_t *o, rh_diag_t *d)
{
    org__packetbroker__v3__downlink_message__init(&o->dm);
    o->dm.phy_payload.data = (uint8_t *)phy;
    o->dm.phy_payload.len = phy_len;
    o->dm.region = pb_xlate_region_from_bi(r);
    if (dl->present & BI_DL_DL_FREQ1) {
        if (rx_settings(dl->dl_freq1, dl->present & BI_DL_DATA_RATE1, dl->data_rate1, r, 0, o,
                        "DataRate1", d))
            return RH_EINVAL;
        o->dm.rx1 = &o->rx[0];
    }
    if (dl->present & BI_DL_DL_FREQ2) {
        if (rx_settings(dl->dl_freq2, dl->present & BI_DL_DATA_RATE2, dl->data_rate2, r, 1, o,
                        "DataRate2", d))
            return RH_EINVAL;
        o->dm.rx2 = &o->rx[1];
    }
    if (!o->dm.rx1 && !o->dm.rx2)
        return rh_diag_fail(d, RH_EINVAL, "DLMetaData: neither DLFreq1 nor DLFreq2");
    google__protobuf__duration__init(&o->delay);
    o->delay.seconds = (dl->present & BI_DL_RX_DELAY1) && dl->rx_delay1 ? dl->rx_delay1 : 1;
    o->dm.rx1_delay = &o->delay;
    char cm = (dl->present & BI_DL_CLASS_MODE) ? dl->class_mode : 'A';
    if (cm == 'B')
        return rh_diag_fail(d, RH_EINVAL, "DLMetaData.ClassMode: class B cannot be bridged to "
                            "Packet Broker (no ping-slot timing)");
    o->dm.class_ = cm == 'C' ? ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_C
                             : ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_A;
    o->dm.priority = (dl->present & BI_DL_HI_PRIORITY) && dl->hi_priority
                         ? ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PRIORITY__HIGHEST
                         : ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PRIORITY__NORMAL;
    return RH_OK;
}

/* ---------------------------------------------------------------- downlink: PB -> TS002 */

static int dl_window(const Org__Packetbroker__V3__DownlinkMessage__RXSettings *rx, bi_region_t r,
                     double *mhz, uint32_t *dr, bool *has_dr, const char *field, rh_diag_t *d)
{
    if (rx->frequency > MAX_FREQ_HZ)
        return rh_diag_fail(d, RH_EINVAL, "message.%s.frequency: above 10 GHz", field);
    *mhz = (double)rx->frequency / 1e6;
    *has_dr = false;
    if (!rx->data_rate)
        return RH_OK;
    if (rx->data_rate->modulation_case != ORG__PACKETBROKER__V3__DATA_RATE__MODULATION_LORA ||
        !rx->data_rate->lora ||
        pb_xlate_dr_index(r, false, rx->data_rate->lora->spreading_factor,
                          rx->data_rate->lora->bandwidth, dr) != RH_OK)
        return rh_diag_fail(d, RH_EINVAL, "message.%s.data_rate: not a LoRa downlink data rate "
                            "of region %s", field,
                            r ? bi_region_name(r, BI_REGION_NAMES_RP002) : "unknown");
    *has_dr = true;
    return RH_OK;
}

int pb_xlate_dlmeta(const Org__Packetbroker__V3__DownlinkMessage *dm, bi_region_t r,
                    bi_dlmeta_t *dl, rh_diag_t *d)
{
    memset(dl, 0, sizeof *dl);
    bool has;
    if (dm->rx1 && dm->rx1->frequency) {
        if (dl_window(dm->rx1, r, &dl->dl_freq1, &dl->data_rate1, &has, "rx1", d))
            return RH_EINVAL;
        dl->present |= BI_DL_DL_FREQ1 | (has ? BI_DL_DATA_RATE1 : 0);
    }
    if (dm->rx2 && dm->rx2->frequency) {
        if (dl_window(dm->rx2, r, &dl->dl_freq2, &dl->data_rate2, &has, "rx2", d))
            return RH_EINVAL;
        dl->present |= BI_DL_DL_FREQ2 | (has ? BI_DL_DATA_RATE2 : 0);
    }
    if (!(dl->present & (BI_DL_DL_FREQ1 | BI_DL_DL_FREQ2)))
        return rh_diag_fail(d, RH_EINVAL, "message.rx1/rx2: no receive window with a frequency");
    int64_t delay = dm->rx1_delay ? dm->rx1_delay->seconds : 0;
    if (delay < 0 || delay > 15)
        return rh_diag_fail(d, RH_EINVAL, "message.rx1_delay: %lld s, expected 0..15",
                            (long long)delay);
    dl->present |= BI_DL_RX_DELAY1 | BI_DL_CLASS_MODE;
    dl->rx_delay1 = delay ? (uint32_t)delay : 1;
    switch (dm->class_) {
    case ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_A:
        dl->class_mode = 'A';
        break;
    case ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_CLASS__CLASS_C:
        dl->class_mode = 'C';
        break;
    default:
        return rh_diag_fail(d, RH_EINVAL, "message.class: class B cannot be bridged to TS002 "
                            "(no ping-slot timing)");
    }
    if (dm->priority >= ORG__PACKETBROKER__V3__DOWNLINK_MESSAGE_PRIORITY__HIGH) {
        dl->present |= BI_DL_HI_PRIORITY;
        dl->hi_priority = true;
    }
    return RH_OK;
}

/* ---------------------------------------------------------------- uplink: TS002 -> PB */

bool pb_xlate_gw_better(const bi_gwinfo_t *a, const bi_gwinfo_t *b)
{
    bool as = a->present & BI_GW_SNR, bs = b->present & BI_GW_SNR;
    return (as && !bs) || (as && bs && (a->snr > b->snr ||
                                        (a->snr == b->snr && a->rssi > b->rssi)));
}

int pb_xlate_best_gw(const bi_ulmeta_t *ul)
{
    if (!(ul->present & BI_UL_GW_INFO) || ul->gw_count == 0)
        return -1;
    int best = 0;
    for (size_t i = 1; i < ul->gw_count; i++)
        if (pb_xlate_gw_better(&ul->gw[i], &ul->gw[best]))
            best = (int)i;
    return best;
}

int pb_xlate_uplink(const uint8_t *phy, size_t phy_len, const bi_ulmeta_t *ul, int gw,
                    pb_xlate_up_t *o, rh_diag_t *d)
{
    memset(o, 0, sizeof *o);
    org__packetbroker__v3__uplink_message__init(&o->um);
    org__packetbroker__v3__uplink_message__phypayload__init(&o->phy);
    o->phy.value_case = ORG__PACKETBROKER__V3__UPLINK_MESSAGE__PHYPAYLOAD__VALUE_PLAIN;
    o->phy.plain.data = (uint8_t *)phy;
    o->phy.plain.len = phy_len;
    o->um.phy_payload = &o->phy;
    bi_region_t r = (ul->present & BI_UL_RF_REGION) ? ul->rf_region : BI_REGION_UNKNOWN;
    if (r == BI_REGION_UNKNOWN && gw >= 0 && (ul->gw[gw].present & BI_GW_RF_REGION))
        r = ul->gw[gw].rf_region;
    if (r == BI_REGION_UNKNOWN)
        return rh_diag_fail(d, RH_EINVAL, "ULMetaData.RFRegion: missing or unknown (Packet "
                            "Broker needs the region's data rate)");
    if (!(ul->present & BI_UL_UL_FREQ))
        return rh_diag_fail(d, RH_EINVAL, "ULMetaData.ULFreq: missing");
    uint32_t sf, bw;
    if (!(ul->present & BI_UL_DATA_RATE) ||
        pb_xlate_dr_lora(r, true, ul->data_rate, &sf, &bw) != RH_OK)
        return rh_diag_fail(d, RH_EINVAL, "ULMetaData.DataRate: missing or no LoRa uplink data "
                            "rate of region %s", bi_region_name(r, BI_REGION_NAMES_RP002));
    o->um.gateway_region = pb_xlate_region_from_bi(r);
    o->um.frequency = (uint64_t)llround(ul->ul_freq * 1e6);
    org__packetbroker__v3__data_rate__init(&o->dr);
    org__packetbroker__v3__lo_ra_data_rate__init(&o->lora);
    o->lora.spreading_factor = sf;
    o->lora.bandwidth = bw;
    o->lora.coding_rate = (char *)"4/5";
    o->dr.modulation_case = ORG__PACKETBROKER__V3__DATA_RATE__MODULATION_LORA;
    o->dr.lora = &o->lora;
    o->um.data_rate = &o->dr;
    if (ul->present & BI_UL_RECV_TIME) {
        google__protobuf__timestamp__init(&o->recv);
        o->recv.seconds = ul->recv_time.sec;
        o->recv.nanos = (int32_t)ul->recv_time.nsec;
        o->um.gateway_receive_time = &o->recv;
    }
    if (gw < 0)
        return RH_OK;
    const bi_gwinfo_t *g = &ul->gw[gw];
    if (g->present & BI_GW_ID) {
        org__packetbroker__v3__gateway_identifier__init(&o->gw_id);
        google__protobuf__uint64_value__init(&o->eui);
        o->eui.value = g->id;
        o->gw_id.eui = &o->eui;
        o->um.gateway_id = &o->gw_id;
    }
    org__packetbroker__v3__uplink_message__gateway_metadata__init(&o->md);
    org__packetbroker__v3__gateway_metadata_teaser__init(&o->teaser);
    org__packetbroker__v3__gateway_metadata_teaser__terrestrial__init(&o->teaser_t);
    o->teaser.value_case = ORG__PACKETBROKER__V3__GATEWAY_METADATA_TEASER__VALUE_TERRESTRIAL;
    o->teaser.terrestrial = &o->teaser_t;
    o->md.teaser = &o->teaser;
    o->um.gateway_metadata = &o->md;
    if (g->present & (BI_GW_RSSI | BI_GW_SNR)) {
        org__packetbroker__v3__gateway_metadata_signal_quality__init(&o->sq);
        org__packetbroker__v3__gateway_metadata_signal_quality__terrestrial__init(&o->sq_t);
        org__packetbroker__v3__gateway_metadata_signal_quality__terrestrial__antenna__init(&o->sq_a);
        org__packetbroker__v3__terrestrial_gateway_antenna_signal_quality__init(&o->sq_v);
        o->sq_v.channel_rssi = (float)g->rssi;
        o->sq_v.snr = (float)g->snr;
        o->sq_a.value = &o->sq_v;
        o->sq_ap[0] = &o->sq_a;
        o->sq_t.n_antennas = 1;
        o->sq_t.antennas = o->sq_ap;
        o->sq.value_case = ORG__PACKETBROKER__V3__GATEWAY_METADATA_SIGNAL_QUALITY__VALUE_TERRESTRIAL;
        o->sq.terrestrial = &o->sq_t;
        o->md.signal_quality_case =
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__SIGNAL_QUALITY_PLAIN_SIGNAL_QUALITY;
        o->md.plain_signal_quality = &o->sq;
    }
    if ((g->present & BI_GW_LAT) && (g->present & BI_GW_LON)) {
        org__packetbroker__v3__gateway_metadata_localization__init(&o->lo);
        org__packetbroker__v3__gateway_metadata_localization__terrestrial__init(&o->lo_t);
        org__packetbroker__v3__gateway_metadata_localization__terrestrial__antenna__init(&o->lo_a);
        org__packetbroker__v3__location__init(&o->loc);
        o->loc.latitude = g->lat;
        o->loc.longitude = g->lon;
        o->lo_a.location = &o->loc;
        o->lo_ap[0] = &o->lo_a;
        o->lo_t.n_antennas = 1;
        o->lo_t.antennas = o->lo_ap;
        o->lo.value_case = ORG__PACKETBROKER__V3__GATEWAY_METADATA_LOCALIZATION__VALUE_TERRESTRIAL;
        o->lo.terrestrial = &o->lo_t;
        o->md.localization_case =
            ORG__PACKETBROKER__V3__UPLINK_MESSAGE__GATEWAY_METADATA__LOCALIZATION_PLAIN_LOCALIZATION;
        o->md.plain_localization = &o->lo;
    }
    return RH_OK;
}

/* ---------------------------------------------------------------- results */

bi_result_code_t pb_xlate_report_result(bool has_error, int error, bool join)
{
    if (!has_error)
        return BI_RC_SUCCESS;
    switch (error) {
    case ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__NOT_FOUND:
        return join ? BI_RC_UNKNOWN_DEV_EUI : BI_RC_UNKNOWN_DEV_ADDR;
    case ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__DUPLICATE_PAYLOAD:
        return BI_RC_SUCCESS;
    case ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__UPLINK_ROUTING_POLICY:
        return BI_RC_NO_ROAMING_AGREEMENT;
    case ORG__PACKETBROKER__V3__UPLINK_MESSAGE_PROCESSING_ERROR__NO_HOME_NETWORK_ENDPOINTS:
        return BI_RC_UNKNOWN_RECEIVER;
    default:
        return BI_RC_OTHER;
    }
}
