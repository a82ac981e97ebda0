/*
 * bi_build.c — typed setters that build the body of a TS002 message from values (bi_msg.h,
 * "building"): PHYPayload, ULMetaData and DLMetaData written from bi_ulmeta_t / bi_dlmeta_t, for
 * front ends that translate another protocol into TS002 (the Packet Broker bridge, issue 12).
 * Each setter replaces the whole field in the tree and re-validates the message through the
 * decoder's tables (bi_msg_refresh), so what they write is exactly what a decode would accept.
 */
#include "bi_msg.h"

#include "rh_hex.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Adds a hex field of nbytes (big-endian display value). */
static bool add_hex(cJSON *o, const char *key, uint64_t v, unsigned nbytes)
{
    char s[17];
    rh_hex_format_be(v, nbytes, s, 0);
    return cJSON_AddStringToObject(o, key, s) != NULL;
}

static bool add_num(cJSON *o, const char *key, double v)
{
    return cJSON_AddNumberToObject(o, key, v) != NULL;
}

/* Frequencies in MHz are written with at most 6 decimals (Hz resolution): 868.1 stays 868.1
 * however the value was computed. */
static double mhz_round(double mhz)
{
    return round(mhz * 1e6) / 1e6;
}

static bool add_gwinfo(cJSON *o, const bi_gwinfo_t *gw, size_t n)
{
    cJSON *arr = cJSON_AddArrayToObject(o, "GWInfo");
    if (!arr)
        return false;
    for (size_t i = 0; i < n; i++) {
        const bi_gwinfo_t *g = &gw[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            return false;
        }
        bool ok = true;
        if (g->present & BI_GW_ID)
            ok &= add_hex(e, "ID", g->id, g->id_len == 4 ? 4 : 8);
        if (g->present & BI_GW_FINE_RECV_TIME)
            ok &= add_num(e, "FineRecvTime", (double)g->fine_recv_time);
        if ((g->present & BI_GW_RF_REGION) && bi_region_name(g->rf_region, BI_REGION_NAMES_RP002))
            ok &= cJSON_AddStringToObject(
                      e, "RFRegion", bi_region_name(g->rf_region, BI_REGION_NAMES_RP002)) != NULL;
        if (g->present & BI_GW_RSSI)
            ok &= add_num(e, "RSSI", g->rssi);
        if (g->present & BI_GW_SNR)
            ok &= add_num(e, "SNR", g->snr);
        if (g->present & BI_GW_LAT)
            ok &= add_num(e, "Lat", g->lat);
        if (g->present & BI_GW_LON)
            ok &= add_num(e, "Lon", g->lon);
        if ((g->present & BI_GW_UL_TOKEN) && g->ul_token)
            ok &= cJSON_AddStringToObject(e, "ULToken", g->ul_token) != NULL;
        if (g->present & BI_GW_DL_ALLOWED)
            ok &= cJSON_AddBoolToObject(e, "DLAllowed", g->dl_allowed) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

/* Replaces PHYPayload (phy NULL: removes it) and the metadata object `key` (owned) at the
 * message's top level, then re-validates once: a PRStartReq or XmitDataReq is only valid with
 * both. */
static int put_frame(bi_msg_t *m, const uint8_t *phy, size_t len, const char *key, cJSON *meta,
                     bi_error_t *err)
{
    if (phy && (len == 0 || len > BI_MAX_PHY)) {
        cJSON_Delete(meta);
        return RH_ESIZE;
    }
    cJSON *root = bi_msg_json_mut(m);
    if (!root) {
        cJSON_Delete(meta);
        return RH_ENOMEM;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "PHYPayload");
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    bool ok = true;
    if (phy) {
        char hex[2 * BI_MAX_PHY + 1];
        rh_hex_encode(phy, len, hex, 0);
        ok = cJSON_AddStringToObject(root, "PHYPayload", hex) != NULL;
    }
    if (ok && !cJSON_AddItemToObject(root, key, meta))
        ok = false;
    else if (!ok)
        cJSON_Delete(meta);
    if (!ok) {
        bi_msg_refresh(m, NULL);
        return RH_ENOMEM;
    }
    return bi_msg_refresh(m, err);
}

int bi_msg_set_uplink(bi_msg_t *m, const uint8_t *phy, size_t phy_len, const bi_ulmeta_t *ul,
                      bi_error_t *err)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return RH_ENOMEM;
    bool ok = true;
    uint32_t p = ul->present;
    if (p & BI_UL_DEV_EUI)
        ok &= add_hex(o, "DevEUI", ul->dev_eui, 8);
    if (p & BI_UL_DEV_ADDR)
        ok &= add_hex(o, "DevAddr", ul->dev_addr, 4);
    if (p & BI_UL_FPORT)
        ok &= add_num(o, "FPort", ul->fport);
    if (p & BI_UL_FCNT_UP)
        ok &= add_num(o, "FCntUp", ul->fcnt_up);
    if (p & BI_UL_FCNT_DOWN)
        ok &= add_num(o, "FCntDown", ul->fcnt_down);
    if (p & BI_UL_CONFIRMED)
        ok &= cJSON_AddBoolToObject(o, "Confirmed", ul->confirmed) != NULL;
    if (p & BI_UL_DATA_RATE)
        ok &= add_num(o, "DataRate", ul->data_rate);
    if (p & BI_UL_UL_FREQ)
        ok &= add_num(o, "ULFreq", mhz_round(ul->ul_freq));
    if (p & BI_UL_MARGIN)
        ok &= add_num(o, "Margin", ul->margin);
    if (p & BI_UL_BATTERY)
        ok &= add_num(o, "Battery", ul->battery);
    if ((p & BI_UL_FNS_UL_TOKEN) && ul->fns_ul_token)
        ok &= cJSON_AddStringToObject(o, "FNSULToken", ul->fns_ul_token) != NULL;
    if (p & BI_UL_RECV_TIME) {
        char t[BI_TIME_MAX];
        bi_time_format(ul->recv_time, t);
        ok &= cJSON_AddStringToObject(o, "RecvTime", t) != NULL;
    }
    if ((p & BI_UL_RF_REGION) && bi_region_name(ul->rf_region, BI_REGION_NAMES_RP002))
        ok &= cJSON_AddStringToObject(o, "RFRegion",
                                      bi_region_name(ul->rf_region, BI_REGION_NAMES_RP002)) != NULL;
    if (p & BI_UL_GW_CNT)
        ok &= add_num(o, "GWCnt", ul->gw_cnt);
    if (p & BI_UL_GW_INFO)
        ok &= add_gwinfo(o, ul->gw, ul->gw_count);
    if (!ok) {
        cJSON_Delete(o);
        return RH_ENOMEM;
    }
    return put_frame(m, phy, phy_len, "ULMetaData", o, err);
}

int bi_msg_set_downlink(bi_msg_t *m, const uint8_t *phy, size_t phy_len,
                        const bi_dlmeta_t *dl, bi_error_t *err)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return RH_ENOMEM;
    bool ok = true;
    uint32_t p = dl->present;
    if (p & BI_DL_DEV_EUI)
        ok &= add_hex(o, "DevEUI", dl->dev_eui, 8);
    if (p & BI_DL_FPORT)
        ok &= add_num(o, "FPort", dl->fport);
    if (p & BI_DL_FCNT_DOWN)
        ok &= add_num(o, "FCntDown", dl->fcnt_down);
    if (p & BI_DL_CONFIRMED)
        ok &= cJSON_AddBoolToObject(o, "Confirmed", dl->confirmed) != NULL;
    if (p & BI_DL_DL_FREQ1)
        ok &= add_num(o, "DLFreq1", mhz_round(dl->dl_freq1));
    if (p & BI_DL_DL_FREQ2)
        ok &= add_num(o, "DLFreq2", mhz_round(dl->dl_freq2));
    if (p & BI_DL_RX_DELAY1)
        ok &= add_num(o, "RXDelay1", dl->rx_delay1);
    if (p & BI_DL_CLASS_MODE) {
        char cm[2] = {dl->class_mode, '\0'};
        ok &= cJSON_AddStringToObject(o, "ClassMode", cm) != NULL;
    }
    if (p & BI_DL_DATA_RATE1)
        ok &= add_num(o, "DataRate1", dl->data_rate1);
    if (p & BI_DL_DATA_RATE2)
        ok &= add_num(o, "DataRate2", dl->data_rate2);
    if ((p & BI_DL_FNS_UL_TOKEN) && dl->fns_ul_token)
        ok &= cJSON_AddStringToObject(o, "FNSULToken", dl->fns_ul_token) != NULL;
    if (p & BI_DL_GW_INFO)
        ok &= add_gwinfo(o, dl->gw, dl->gw_count);
    if (p & BI_DL_HI_PRIORITY)
        ok &= cJSON_AddBoolToObject(o, "HiPriorityFlag", dl->hi_priority) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return RH_ENOMEM;
    }
    return put_frame(m, phy, phy_len, "DLMetaData", o, err);
}
