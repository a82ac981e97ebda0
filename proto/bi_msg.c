/*
 * bi_msg.c — TS002 message decode/validate (one table-driven pass over the cJSON tree filling the
 * typed view), the relay's mutations, the answer builder and dialect encoding (see bi_msg.h and
 * docs/ARCHITECTURE.md, "TS002 JSON codec").
 *
 * The message struct and its invariants are in bi_internal.h (shared with bi_fast.c, the
 * one-pass decoder, which fills the typed view through bi_leaf.h's leaf decoders and leaves the
 * tree to bi_msg_tree: every function here that reads or edits m->root calls it first).
 */
#include "bi_internal.h"
#include "bi_leaf.h"
#include "rh_hex.h"

#include <math.h> /* isfinite (a macro: no libm needed) */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Tree flags meaning "rewrite everything on encode". */
#define TREE_ALL                                                                               \
    (BI_CANON_HEX_PREFIX | BI_CANON_HEX_LOWER | BI_CANON_HEX_UPPER | BI_CANON_REGION_NOT_RP002 | \
     BI_CANON_REGION_NOT_SPEC | BI_CANON_TIME | BI_CANON_RC_ALIAS)

/* ================================================================== field tables */

#define TOFF(f) offsetof(bi_fields_t, f)
static const fdesc_t bi_top_tab[] = {
    {"ProtocolVersion", FT_VERSION, W_HDR, TOFF(hdr.version), BI_H_VERSION, 0, 0},
    {"SenderID", FT_ID, W_HDR, TOFF(hdr.sender_id), BI_H_SENDER_ID, 0, 0},
    {"ReceiverID", FT_ID, W_HDR, TOFF(hdr.receiver_id), BI_H_RECEIVER_ID, 0, 0},
    {"TransactionID", FT_U32, W_HDR, TOFF(hdr.transaction_id), BI_H_TRANSACTION_ID, 0, 4294967295.0},
    {"MessageType", FT_MSGTYPE, W_HDR, TOFF(hdr.type), BI_H_MESSAGE_TYPE, 0, 0},
    {"SenderNSID", FT_NSID, W_HDR, TOFF(hdr.sender_nsid), BI_H_SENDER_NSID, 0, 0},
    {"ReceiverNSID", FT_NSID, W_HDR, TOFF(hdr.receiver_nsid), BI_H_RECEIVER_NSID, 0, 0},
    {"SenderToken", FT_TOKEN, W_TOP, TOFF(sender_token), BI_F_SENDER_TOKEN, 0, 0},
    {"ReceiverToken", FT_TOKEN, W_TOP, TOFF(receiver_token), BI_F_RECEIVER_TOKEN, 0, 0},
    {"VSExtension", FT_OBJECT, W_TOP, TOFF(vs_extension), BI_F_VS_EXTENSION, 0, 0},
    {"Result", FT_RESULT, W_TOP, 0, BI_F_RESULT, 0, 0},
    {"PHYPayload", FT_PHY, W_TOP, 0, BI_F_PHY_PAYLOAD, 0, 0},
    {"FRMPayload", FT_FRM, W_TOP, 0, BI_F_FRM_PAYLOAD, 0, 0},
    {"ULMetaData", FT_UL, W_TOP, TOFF(ul), BI_F_UL_META, 0, 0},
    {"DLMetaData", FT_DL, W_TOP, TOFF(dl), BI_F_DL_META, 0, 0},
    {"Lifetime", FT_U32, W_TOP, TOFF(lifetime), BI_F_LIFETIME, 0, 4294967295.0},
    {"DevEUI", FT_EUI, W_TOP, TOFF(dev_eui), BI_F_DEV_EUI, 0, 0},
    {"DevAddr", FT_DEVADDR, W_TOP, TOFF(dev_addr), BI_F_DEV_ADDR, 0, 0},
    {"FCntUp", FT_U32, W_TOP, TOFF(fcnt_up), BI_F_FCNT_UP, 0, 4294967295.0},
    {"NwkSKey", FT_KEYENV, W_TOP, TOFF(nwk_s_key), BI_F_NWK_S_KEY, 0, 0},
    {"FNwkSIntKey", FT_KEYENV, W_TOP, TOFF(f_nwk_s_int_key), BI_F_F_NWK_S_INT_KEY, 0, 0},
    {"SNwkSIntKey", FT_KEYENV, W_TOP, TOFF(s_nwk_s_int_key), BI_F_S_NWK_S_INT_KEY, 0, 0},
    {"NwkSEncKey", FT_KEYENV, W_TOP, TOFF(nwk_s_enc_key), BI_F_NWK_S_ENC_KEY, 0, 0},
    {"AppSKey", FT_KEYENV, W_TOP, TOFF(app_s_key), BI_F_APP_S_KEY, 0, 0},
    {"SessionKeyID", FT_HEX64, W_TOP, 0, BI_F_SESSION_KEY_ID, 0, 0},
    {"HNetID", FT_NETID, W_TOP, TOFF(hnetid), BI_F_HNETID, 0, 0},
    {"HNSID", FT_NSID, W_TOP, TOFF(hnsid), BI_F_HNSID, 0, 0},
    {"ServiceProfile", FT_OBJECT, W_TOP, TOFF(service_profile), BI_F_SERVICE_PROFILE, 0, 0},
    {"DeviceProfile", FT_OBJECT, W_TOP, TOFF(device_profile), BI_F_DEVICE_PROFILE, 0, 0},
    {"DeviceProfileTimestamp", FT_STR, W_TOP, TOFF(device_profile_timestamp), BI_F_DEVICE_PROFILE_TS, 0, 0},
    {"RoamingActivationType", FT_STR, W_TOP, TOFF(roaming_activation_type), BI_F_ROAMING_ACT_TYPE, 0, 0},
    {"DLFreq1", FT_DOUBLE, W_TOP, TOFF(dl_freq1), BI_F_DL_FREQ1, 0, 10000},
    {"DLFreq2", FT_DOUBLE, W_TOP, TOFF(dl_freq2), BI_F_DL_FREQ2, 0, 10000},
    {"MACVersion", FT_STR, W_TOP, TOFF(mac_version), BI_F_MAC_VERSION, 0, 0},
    {"DLSettings", FT_HEXU8, W_TOP, TOFF(dl_settings), BI_F_DL_SETTINGS, 0, 0},
    {"RxDelay", FT_U8, W_TOP, TOFF(rx_delay), BI_F_RX_DELAY, 0, 15},
    {"CFList", FT_HEX16, W_TOP, TOFF(cf_list), BI_F_CF_LIST, 0, 0},
};

static const fdesc_t bi_result_tab[] = {
    {"ResultCode", FT_RCODE, W_NONE, 0, 0, 0, 0},
    {"Description", FT_STR, W_TOP, TOFF(result_description), BI_F_RESULT_DESCRIPTION, 0, 0},
};

#define UOFF(f) offsetof(bi_ulmeta_t, f)
static const fdesc_t bi_ul_tab[] = {
    {"DevEUI", FT_EUI, W_NESTED, UOFF(dev_eui), BI_UL_DEV_EUI, 0, 0},
    {"DevAddr", FT_DEVADDR, W_NESTED, UOFF(dev_addr), BI_UL_DEV_ADDR, 0, 0},
    {"FPort", FT_U32, W_NESTED, UOFF(fport), BI_UL_FPORT, 0, 255},
    {"FCntUp", FT_U32, W_NESTED, UOFF(fcnt_up), BI_UL_FCNT_UP, 0, 4294967295.0},
    {"FCntDown", FT_U32, W_NESTED, UOFF(fcnt_down), BI_UL_FCNT_DOWN, 0, 4294967295.0},
    {"Confirmed", FT_BOOL, W_NESTED, UOFF(confirmed), BI_UL_CONFIRMED, 0, 0},
    {"DataRate", FT_U32, W_NESTED, UOFF(data_rate), BI_UL_DATA_RATE, 0, 15},
    {"ULFreq", FT_DOUBLE, W_NESTED, UOFF(ul_freq), BI_UL_UL_FREQ, 0, 10000},
    {"Margin", FT_I32, W_NESTED, UOFF(margin), BI_UL_MARGIN, -128, 127},
    {"Battery", FT_U32, W_NESTED, UOFF(battery), BI_UL_BATTERY, 0, 255},
    {"FNSULToken", FT_TOKEN, W_NESTED, UOFF(fns_ul_token), BI_UL_FNS_UL_TOKEN, 0, 0},
    {"RecvTime", FT_TIME, W_NESTED, UOFF(recv_time), BI_UL_RECV_TIME, 0, 0},
    {"RFRegion", FT_REGION, W_NESTED, UOFF(rf_region), BI_UL_RF_REGION, 0, 0},
    {"GWCnt", FT_U32, W_NESTED, UOFF(gw_cnt), BI_UL_GW_CNT, 0, 4294967295.0},
    {"GWInfo", FT_GWARRAY, W_NESTED, UOFF(gw), BI_UL_GW_INFO, 0, 0},
};

#define DOFF(f) offsetof(bi_dlmeta_t, f)
static const fdesc_t bi_dl_tab[] = {
    {"DevEUI", FT_EUI, W_NESTED, DOFF(dev_eui), BI_DL_DEV_EUI, 0, 0},
    {"FPort", FT_U32, W_NESTED, DOFF(fport), BI_DL_FPORT, 0, 255},
    {"FCntDown", FT_U32, W_NESTED, DOFF(fcnt_down), BI_DL_FCNT_DOWN, 0, 4294967295.0},
    {"Confirmed", FT_BOOL, W_NESTED, DOFF(confirmed), BI_DL_CONFIRMED, 0, 0},
    {"DLFreq1", FT_DOUBLE, W_NESTED, DOFF(dl_freq1), BI_DL_DL_FREQ1, 0, 10000},
    {"DLFreq2", FT_DOUBLE, W_NESTED, DOFF(dl_freq2), BI_DL_DL_FREQ2, 0, 10000},
    {"RXDelay1", FT_U32, W_NESTED, DOFF(rx_delay1), BI_DL_RX_DELAY1, 0, 15},
    {"ClassMode", FT_CLASS, W_NESTED, DOFF(class_mode), BI_DL_CLASS_MODE, 0, 0},
    {"DataRate1", FT_U32, W_NESTED, DOFF(data_rate1), BI_DL_DATA_RATE1, 0, 15},
    {"DataRate2", FT_U32, W_NESTED, DOFF(data_rate2), BI_DL_DATA_RATE2, 0, 15},
    {"FNSULToken", FT_TOKEN, W_NESTED, DOFF(fns_ul_token), BI_DL_FNS_UL_TOKEN, 0, 0},
    {"GWInfo", FT_GWARRAY, W_NESTED, DOFF(gw), BI_DL_GW_INFO, 0, 0},
    {"HiPriorityFlag", FT_BOOL, W_NESTED, DOFF(hi_priority), BI_DL_HI_PRIORITY, 0, 0},
};

#define GOFF(f) offsetof(bi_gwinfo_t, f)
static const fdesc_t bi_gw_tab[] = {
    {"ID", FT_GWID, W_NESTED, 0, BI_GW_ID, 0, 0},
    {"FineRecvTime", FT_U64, W_NESTED, GOFF(fine_recv_time), BI_GW_FINE_RECV_TIME, 0, 999999999999999.0},
    {"RFRegion", FT_REGION, W_NESTED, GOFF(rf_region), BI_GW_RF_REGION, 0, 0},
    {"RSSI", FT_I32, W_NESTED, GOFF(rssi), BI_GW_RSSI, -32768, 32767},
    {"SNR", FT_DOUBLE, W_NESTED, GOFF(snr), BI_GW_SNR, -1000, 1000},
    {"Lat", FT_DOUBLE, W_NESTED, GOFF(lat), BI_GW_LAT, -90, 90},
    {"Lon", FT_DOUBLE, W_NESTED, GOFF(lon), BI_GW_LON, -180, 180},
    {"ULToken", FT_TOKEN, W_NESTED, GOFF(ul_token), BI_GW_UL_TOKEN, 0, 0},
    {"DLAllowed", FT_BOOL, W_NESTED, GOFF(dl_allowed), BI_GW_DL_ALLOWED, 0, 0},
};

static const fdesc_t bi_keyenv_tab[] = {
    {"KEKLabel", FT_STR, W_NONE, offsetof(bi_key_envelope_t, kek_label), 0, 0, 0},
    {"AESKey", FT_AESKEY, W_NONE, 0, 1, 0, 0},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const bi_tab_t bi_tab_top = {bi_top_tab, NELEM(bi_top_tab)};
const bi_tab_t bi_tab_result = {bi_result_tab, NELEM(bi_result_tab)};
const bi_tab_t bi_tab_ul = {bi_ul_tab, NELEM(bi_ul_tab)};
const bi_tab_t bi_tab_dl = {bi_dl_tab, NELEM(bi_dl_tab)};
const bi_tab_t bi_tab_gw = {bi_gw_tab, NELEM(bi_gw_tab)};
const bi_tab_t bi_tab_keyenv = {bi_keyenv_tab, NELEM(bi_keyenv_tab)};

int bi_find_field(const fdesc_t *tab, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (tab[i].name[0] == key[0] && strcmp(tab[i].name, key) == 0)
            return (int)i;
    return -1;
}

/* ================================================================== decode context */

static size_t fmt_path(const path_t *p, char *out, size_t cap)
{
    if (!p)
        return 0;
    size_t o = fmt_path(p->up, out, cap);
    if (o >= cap)
        return o;
    int w;
    if (p->key)
        w = snprintf(out + o, cap - o, "%s%.48s", o ? "." : "", p->key);
    else
        w = snprintf(out + o, cap - o, "[%d]", p->idx);
    return w < 0 ? o : o + (size_t)w;
}

int bi_fail_at(dctx_t *c, const path_t *p, bi_result_code_t code, int e, const char *fmt, ...)
{
    if (c->rc != RH_OK)
        return c->rc;
    c->rc = e;
    if (c->err) {
        char path[128];
        path[0] = '\0';
        fmt_path(p, path, sizeof path);
        char msg[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        c->err->code = code;
        c->err->err = e;
        snprintf(c->err->description, sizeof c->err->description, "%.120s: %.120s",
                 path[0] ? path : "body", msg);
    }
    return e;
}

/* A tree node as the leaf decoders read it (bi_val_t). */
static bi_val_t val_of(const cJSON *v)
{
    bi_val_t x = {v->type & 0xFF, NULL, 0, v->valuedouble, v};
    if (x.type == cJSON_String) {
        if (v->valuestring) {
            x.s = v->valuestring;
            x.len = strlen(x.s);
        } else {
            x.type = 0; /* a caller-built node: "expected string" */
        }
    }
    return x;
}

/* ================================================================== objects */

static int decode_object(dctx_t *c, const cJSON *obj, const fdesc_t *tab, size_t ntab, void *base,
                         const path_t *up, bool top);

/* Duplicate keys, finite numbers and (for caller-built trees) array sizes anywhere in an opaque
 * or unknown value. */
static int check_generic(dctx_t *c, const cJSON *v, const path_t *p, int depth)
{
    if (depth > BI_MAX_DEPTH)
        return bi_fail_at(c, p, MALFORMED, RH_ERANGE, "nesting deeper than %d levels",
                          BI_MAX_DEPTH);
    if (cJSON_IsNumber(v) && !isfinite(v->valuedouble))
        return bi_fail_at(c, p, MALFORMED, RH_ERANGE, "number out of range");
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return RH_OK;
    int i = 0;
    for (const cJSON *ch = v->child; ch; ch = ch->next, i++) {
        if (i >= (cJSON_IsArray(v) ? BI_MAX_ARRAY : BI_MAX_MEMBERS))
            return bi_fail_at(c, p, MALFORMED, RH_ERANGE, "more than %d %s", i,
                              cJSON_IsArray(v) ? "elements" : "members");
        path_t cp = {p, cJSON_IsObject(v) ? ch->string : NULL, i};
        if (cJSON_IsObject(v)) {
            if (!ch->string)
                return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "member without a key");
            for (const cJSON *prev = v->child; prev != ch; prev = prev->next)
                if (strcmp(prev->string, ch->string) == 0)
                    return bi_fail_at(c, &cp, MALFORMED, RH_EEXIST, "duplicate key");
        }
        int r = check_generic(c, ch, &cp, depth + 1);
        if (r)
            return r;
    }
    return RH_OK;
}

_Static_assert(offsetof(bi_ulmeta_t, gw_count) == offsetof(bi_ulmeta_t, gw) + sizeof(bi_gwinfo_t *),
               "GWInfo count follows the array pointer");
_Static_assert(offsetof(bi_dlmeta_t, gw_count) == offsetof(bi_dlmeta_t, gw) + sizeof(bi_gwinfo_t *),
               "GWInfo count follows the array pointer");

static int decode_gwarray(dctx_t *c, const cJSON *v, bi_gwinfo_t **out, size_t *count,
                          const path_t *p)
{
    if (!cJSON_IsArray(v))
        return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected array");
    size_t n = 0;
    for (const cJSON *e = v->child; e; e = e->next)
        if (++n > BI_MAX_GWINFO)
            return bi_fail_at(c, p, MALFORMED, RH_ERANGE, "more than %d elements", BI_MAX_GWINFO);
    if (n == 0)
        return RH_OK;
    bi_gwinfo_t *gw = calloc(n, sizeof *gw);
    if (!gw)
        return bi_fail_at(c, p, BI_RC_OTHER, RH_ENOMEM, "out of memory");
    *out = gw;
    *count = n;
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        path_t ep = {p, NULL, i};
        if (!cJSON_IsObject(e))
            return bi_fail_at(c, &ep, MALFORMED, RH_EINVAL, "expected object");
        int r = decode_object(c, e, bi_gw_tab, NELEM(bi_gw_tab), &gw[i], &ep, false);
        if (r)
            return r;
    }
    return RH_OK;
}

int bi_decode_value(dctx_t *c, const fdesc_t *fd, const bi_val_t *v, void *base, const path_t *p)
{
    char *dst = (char *)base + fd->off;
    bi_fields_t *f = &c->m->f;
    int r;
    switch ((enum ftype)fd->type) {
    case FT_OBJECT:
        if (!cJSON_IsObject(v->node))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected object");
        *(const cJSON **)dst = v->node;
        return check_generic(c, v->node, p, 0);
    case FT_RESULT:
        if (!cJSON_IsObject(v->node))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected object");
        if ((r = decode_object(c, v->node, bi_result_tab, NELEM(bi_result_tab), f, p, false)))
            return r;
        if (!f->result_code_text) {
            path_t rp = {p, "ResultCode", 0};
            return bi_fail_at(c, &rp, MALFORMED, RH_EINVAL, "missing");
        }
        return RH_OK;
    case FT_UL:
        if (!cJSON_IsObject(v->node))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected object");
        return decode_object(c, v->node, bi_ul_tab, NELEM(bi_ul_tab), dst, p, false);
    case FT_DL:
        if (!cJSON_IsObject(v->node))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected object");
        if ((r = decode_object(c, v->node, bi_dl_tab, NELEM(bi_dl_tab), dst, p, false)))
            return r;
        if (!(((bi_dlmeta_t *)dst)->present & (BI_DL_DL_FREQ1 | BI_DL_DL_FREQ2)))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "needs DLFreq1 or DLFreq2");
        return RH_OK;
    case FT_KEYENV: {
        if (!cJSON_IsObject(v->node))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected object");
        bi_key_envelope_t *k = (bi_key_envelope_t *)dst;
        if ((r = decode_object(c, v->node, bi_keyenv_tab, NELEM(bi_keyenv_tab), k, p, false)))
            return r;
        if (k->aes_key_len == 0) {
            path_t kp = {p, "AESKey", 0};
            return bi_fail_at(c, &kp, MALFORMED, RH_EINVAL, "missing");
        }
        return RH_OK;
    }
    case FT_GWARRAY:
        return decode_gwarray(c, v->node, (bi_gwinfo_t **)dst,
                              (size_t *)(dst + sizeof(bi_gwinfo_t *)), p);
    default:
        return bi_decode_leaf(c, fd, v, base, p);
    }
}

/* One pass over an object's members: known keys are typed through the table (a bitmask catches
 * duplicates), unknown keys are compared with earlier siblings and checked generically. At the
 * top level, after a body field fails, header fields are still read so the answer can be
 * addressed. */
static int decode_object(dctx_t *c, const cJSON *obj, const fdesc_t *tab, size_t ntab, void *base,
                         const path_t *up, bool top)
{
    uint64_t seen = 0;
    int i = 0;
    for (const cJSON *ch = obj->child; ch; ch = ch->next, i++) {
        if (c->rc && !top)
            return c->rc;
        if (!ch->string)
            return bi_fail_at(c, up, MALFORMED, RH_EINVAL, "member without a key");
        path_t p = {up, ch->string, 0};
        if (i >= BI_MAX_MEMBERS && c->from_tree)
            return bi_fail_at(c, up, MALFORMED, RH_ERANGE, "more than %d members", BI_MAX_MEMBERS);
        int k = bi_find_field(tab, ntab, ch->string);
        if (k < 0) {
            if (c->rc)
                continue;
            for (const cJSON *prev = obj->child; prev != ch; prev = prev->next)
                if (strcmp(prev->string, ch->string) == 0)
                    return bi_fail_at(c, &p, MALFORMED, RH_EEXIST, "duplicate key");
            check_generic(c, ch, &p, 1);
            continue;
        }
        const fdesc_t *fd = &tab[k];
        if (c->rc && fd->where != W_HDR)
            continue;
        if (seen & (1ull << k)) {
            bi_fail_at(c, &p, MALFORMED, RH_EEXIST, "duplicate key");
            continue;
        }
        seen |= 1ull << k;
        if (cJSON_IsNull(ch))
            continue; /* null = absent */
        bi_error_t *saved = c->err;
        int prev_rc = c->rc;
        if (prev_rc) {
            /* Reading header fields after an error: fill them in, never report. */
            c->err = NULL;
            c->rc = RH_OK;
        }
        bi_val_t v = val_of(ch);
        int r = bi_decode_value(c, fd, &v, base, &p);
        if (prev_rc) {
            c->err = saved;
            c->rc = prev_rc;
        }
        if (r)
            continue;
        switch (fd->where) {
        case W_HDR: c->m->f.hdr.present |= (uint32_t)fd->bit; break;
        case W_TOP: c->m->f.present |= fd->bit; break;
        case W_NESTED: *(uint32_t *)base |= (uint32_t)fd->bit; break;
        default: break;
        }
    }
    return c->rc;
}

/* ================================================================== validation */

/* `why` is "in <why_type>" when why_type is set (formatted only on failure: this runs for every
 * message). */
static int need_in(dctx_t *c, bool ok, const char *field, const char *why, const char *why_type)
{
    if (ok)
        return RH_OK;
    path_t p = {NULL, field, 0};
    if (why_type)
        return bi_fail_at(c, &p, MALFORMED, RH_EINVAL, "missing (mandatory in %s)", why_type);
    /* why is NULL when a caller passed bi_msg_type_name's NULL (a type it does not name) as
     * why_type: never %s of NULL */
    return bi_fail_at(c, &p, MALFORMED, RH_EINVAL, "missing (mandatory %s)", why ? why : "here");
}

static int need(dctx_t *c, bool ok, const char *field, const char *why)
{
    return need_in(c, ok, field, why, NULL);
}

int bi_validate(dctx_t *c)
{
    const bi_fields_t *f = &c->m->f;
    uint32_t h = f->hdr.present;
    int r;
    static const struct {
        uint32_t bit;
        const char *name;
    } hdr_req[] = {
        {BI_H_VERSION, "ProtocolVersion"}, {BI_H_MESSAGE_TYPE, "MessageType"},
        {BI_H_SENDER_ID, "SenderID"},      {BI_H_RECEIVER_ID, "ReceiverID"},
        {BI_H_TRANSACTION_ID, "TransactionID"},
    };
    for (size_t i = 0; i < NELEM(hdr_req); i++)
        if ((r = need(c, h & hdr_req[i].bit, hdr_req[i].name, "in every message")))
            return r;
    uint64_t p = f->present;
    bi_msg_type_t t = f->hdr.type;
    const char *tn = bi_msg_type_name(t);
    if (bi_msg_type_is_answer(t) && (r = need_in(c, p & BI_F_RESULT, "Result", NULL, tn)))
        return r;
    switch (t) {
    case BI_MT_PR_START_REQ:
        if ((r = need_in(c, p & BI_F_PHY_PAYLOAD, "PHYPayload", NULL, tn)) ||
            (r = need_in(c, p & BI_F_UL_META, "ULMetaData", NULL, tn)))
            return r;
        break;
    case BI_MT_XMIT_DATA_REQ:
        if ((r = need_in(c, p & (BI_F_PHY_PAYLOAD | BI_F_FRM_PAYLOAD), "PHYPayload", NULL, tn)) ||
            (r = need_in(c, p & (BI_F_UL_META | BI_F_DL_META), "ULMetaData", NULL, tn)))
            return r;
        if ((p & BI_F_PHY_PAYLOAD) && (p & BI_F_FRM_PAYLOAD))
            return bi_fail_at(c, NULL, MALFORMED, RH_EINVAL,
                              "PHYPayload and FRMPayload are mutually exclusive in XmitDataReq");
        if ((p & BI_F_UL_META) && (p & BI_F_DL_META))
            return bi_fail_at(c, NULL, MALFORMED, RH_EINVAL,
                              "ULMetaData and DLMetaData are mutually exclusive in XmitDataReq");
        break;
    case BI_MT_PR_STOP_REQ:
    case BI_MT_PROFILE_REQ:
    case BI_MT_HOME_NS_REQ:
        if ((r = need_in(c, p & BI_F_DEV_EUI, "DevEUI", NULL, tn)))
            return r;
        break;
    case BI_MT_HOME_NS_ANS:
        if (f->result_code == BI_RC_SUCCESS &&
            (r = need(c, p & BI_F_HNETID, "HNetID", "in HomeNSAns with Success")))
            return r;
        break;
    case BI_MT_JOIN_REQ:
        if ((r = need_in(c, p & BI_F_MAC_VERSION, "MACVersion", NULL, tn)) ||
            (r = need_in(c, p & BI_F_PHY_PAYLOAD, "PHYPayload", NULL, tn)) ||
            (r = need_in(c, p & BI_F_DEV_EUI, "DevEUI", NULL, tn)) ||
            (r = need_in(c, p & BI_F_DEV_ADDR, "DevAddr", NULL, tn)) ||
            (r = need_in(c, p & BI_F_DL_SETTINGS, "DLSettings", NULL, tn)) ||
            (r = need_in(c, p & BI_F_RX_DELAY, "RxDelay", NULL, tn)))
            return r;
        break;
    default:
        break;
    }
    return RH_OK;
}

static void clear_view(bi_msg_t *m)
{
    free(m->f.ul.gw);
    free(m->f.dl.gw);
    memset(&m->f, 0, sizeof m->f);
    m->valid = false;
}

/* Builds the typed view from m->root. */
static int build(bi_msg_t *m, bi_error_t *err, bool from_tree)
{
    dctx_t c = {m, err, RH_OK, from_tree};
    clear_view(m);
    if (!cJSON_IsObject(m->root)) {
        bi_fail_at(&c, NULL, MALFORMED, RH_EINVAL, "expected a JSON object");
    } else {
        decode_object(&c, m->root, bi_top_tab, NELEM(bi_top_tab), &m->f, NULL, true);
        if (c.rc == RH_OK)
            bi_validate(&c);
    }
    if (err)
        err->hdr = m->f.hdr;
    if (c.rc) {
        if (err && err->code == BI_RC_MALFORMED_REQUEST)
            err->code = bi_result_code_malformed(m->f.hdr.version);
        return c.rc;
    }
    m->valid = true;
    return RH_OK;
}

/* ================================================================== public: decode */

static void err_init(bi_error_t *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

int bi_msg_decode(const char *body, size_t len, bi_msg_t **out, bi_error_t *err)
{
    *out = NULL;
    err_init(err);
    uint32_t canon = 0;
    int r = bi_scan(body, len, &canon, err);
    if (r)
        return r;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        size_t off = end && end >= body && end <= body + len ? (size_t)(end - body) : 0;
        return bi_fail(err, BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: invalid JSON at offset %zu",
                       off);
    }
    size_t off = (size_t)(end - body);
    while (off < len && (body[off] == ' ' || body[off] == '\t' || body[off] == '\r' ||
                         body[off] == '\n'))
        off++;
    if (off < len) {
        cJSON_Delete(root);
        return bi_fail(err, BI_RC_MALFORMED_REQUEST, RH_EINVAL,
                       "body: unexpected data after the JSON value at offset %zu", off);
    }
    bi_msg_t *m = malloc(sizeof *m);
    if (!m) {
        cJSON_Delete(root);
        return bi_fail(err, BI_RC_OTHER, RH_ENOMEM, "body: out of memory");
    }
    memset(m, 0, offsetof(bi_msg_t, phy));
    m->root = root;
    m->canon = canon;
    r = build(m, err, false);
    if (r) {
        bi_msg_free(m);
        return r;
    }
    m->tree = m->canon;
    *out = m;
    return RH_OK;
}

int bi_msg_from_json(cJSON *root, bi_msg_t **out, bi_error_t *err)
{
    *out = NULL;
    err_init(err);
    if (!root)
        return bi_fail(err, BI_RC_MALFORMED_REQUEST, RH_EINVAL, "body: no JSON");
    bi_msg_t *m = malloc(sizeof *m);
    if (!m) {
        cJSON_Delete(root);
        return bi_fail(err, BI_RC_OTHER, RH_ENOMEM, "body: out of memory");
    }
    memset(m, 0, offsetof(bi_msg_t, phy));
    m->root = root;
    int r = build(m, err, true);
    if (r) {
        bi_msg_free(m);
        return r;
    }
    m->canon |= BI_CANON_NOT_RECEIVED;
    m->tree = TREE_ALL;
    *out = m;
    return RH_OK;
}

void bi_msg_free(bi_msg_t *m)
{
    if (!m)
        return;
    free(m->f.ul.gw);
    free(m->f.dl.gw);
    cJSON_Delete(m->root);
    if (m->gwm != m->gwm_small)
        free(m->gwm);
    if (m->gwobj != m->gwobj_small)
        free(m->gwobj);
    free(m);
}

int bi_msg_tree(bi_msg_t *m)
{
    if (m->root || !m->text)
        return RH_OK;
    /* The bytes were accepted by bi_fast_decode, which accepts only what cJSON parses. */
    cJSON *root = cJSON_ParseWithLength(m->text, m->text_len);
    if (!root)
        return RH_ENOMEM;
    m->root = root;
    /* From here the message is what bi_msg_decode makes: the view's strings point into the tree
     * (an encoding respells them there), values unchanged. */
    int r = build(m, NULL, false);
    if (r) {
        cJSON_Delete(root);
        m->root = NULL;
        return r;
    }
    m->text = NULL; /* (its bytes stay in m's allocation, unused) */
    if (m->raw_strip) { /* members dropped from the bytes: drop them from the tree too */
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(m->root, "ULMetaData"), "GWInfo");
        for (size_t j = 0; j < m->gwm_n; j++) {
            const bi_gw_member_t *g = &m->gwm[j];
            if (!g->dropped || g->field < 0)
                continue;
            cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(arr, (int)g->elem),
                                                    bi_gw_tab[g->field].name);
            if (g->elem < m->f.ul.gw_count)
                m->f.ul.gw[g->elem].present &= ~(uint32_t)bi_gw_tab[g->field].bit;
        }
        m->raw_strip = false;
        m->dirty = true;
    }
    return RH_OK;
}

const bi_fields_t *bi_msg_fields(const bi_msg_t *m) { return &m->f; }
const cJSON *bi_msg_json(const bi_msg_t *m)
{
    /* Parsing the tree on first need changes no value: the message is logically const. */
    if (bi_msg_tree((bi_msg_t *)m))
        return NULL;
    return m->root;
}

cJSON *bi_msg_json_mut(bi_msg_t *m)
{
    if (bi_msg_tree(m))
        return NULL;
    m->dirty = true;
    m->valid = false;
    m->tree = TREE_ALL;
    return m->root;
}

int bi_msg_refresh(bi_msg_t *m, bi_error_t *err)
{
    err_init(err);
    if (bi_msg_tree(m))
        return bi_fail(err, BI_RC_OTHER, RH_ENOMEM, "body: out of memory");
    uint32_t canon = m->canon;
    int r = build(m, err, true);
    m->canon = canon; /* the received bytes have not changed */
    m->dirty = true;
    m->tree = TREE_ALL;
    return r;
}

/* ================================================================== mutations */

int bi_msg_strip_gwinfo(bi_msg_t *m, unsigned what)
{
    static const struct {
        const char *key;
        uint32_t bit;
        unsigned what;
    } strip[] = {
        {"RSSI", BI_GW_RSSI, BI_STRIP_SIGNAL},
        {"SNR", BI_GW_SNR, BI_STRIP_SIGNAL},
        {"Lat", BI_GW_LAT, BI_STRIP_LOCATION},
        {"Lon", BI_GW_LON, BI_STRIP_LOCATION},
        {"FineRecvTime", BI_GW_FINE_RECV_TIME, BI_STRIP_LOCATION},
    };
    if (!m->root) {
        /* From bi_fast_decode: drop the members from the bytes (bi_msg_splice_header writes the
         * elements without them); the tree, if ever parsed, loses them too (bi_msg_tree). */
        uint32_t bits = 0;
        for (size_t k = 0; k < NELEM(strip); k++)
            if (what & strip[k].what)
                bits |= strip[k].bit;
        int removed = 0;
        for (size_t j = 0; j < m->gwm_n; j++) {
            bi_gw_member_t *g = &m->gwm[j];
            if (g->dropped || g->field < 0 || !(bi_gw_tab[g->field].bit & bits))
                continue;
            g->dropped = true;
            removed++;
            if (g->elem < m->f.ul.gw_count)
                m->f.ul.gw[g->elem].present &= ~(uint32_t)bi_gw_tab[g->field].bit;
        }
        if (removed)
            m->raw_strip = true;
        return removed;
    }
    cJSON *ul = cJSON_GetObjectItemCaseSensitive(m->root, "ULMetaData");
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(ul, "GWInfo");
    if (!cJSON_IsArray(arr))
        return 0;
    int removed = 0;
    size_t i = 0;
    for (cJSON *e = arr->child; e; e = e->next, i++) {
        for (size_t k = 0; k < NELEM(strip); k++) {
            if (!(what & strip[k].what))
                continue;
            cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(e, strip[k].key);
            if (it) {
                cJSON_Delete(it);
                removed++;
            }
            if (i < m->f.ul.gw_count)
                m->f.ul.gw[i].present &= ~strip[k].bit;
        }
    }
    if (removed)
        m->dirty = true;
    return removed;
}

static int set_item(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return RH_ENOMEM;
    if (cJSON_GetObjectItemCaseSensitive(obj, key)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)) {
            cJSON_Delete(item);
            return RH_ENOMEM;
        }
    } else if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return RH_ENOMEM;
    }
    return RH_OK;
}

static int set_hex(bi_msg_t *m, const char *key, uint64_t v, unsigned nbytes)
{
    char hex[17];
    rh_hex_format_be(v, nbytes, hex, 0);
    if (bi_msg_tree(m))
        return RH_ENOMEM;
    m->tree |= BI_CANON_HEX_LOWER;
    return set_item(m->root, key, cJSON_CreateString(hex));
}

int bi_msg_set_version(bi_msg_t *m, bi_version_t v)
{
    const char *name = bi_version_name(v);
    if (!name)
        return RH_EINVAL;
    if (bi_msg_tree(m))
        return RH_ENOMEM;
    int r = set_item(m->root, "ProtocolVersion", cJSON_CreateString(name));
    if (r)
        return r;
    m->f.hdr.version = v;
    m->f.hdr.present |= BI_H_VERSION;
    m->dirty = true;
    return RH_OK;
}

static int set_id(bi_msg_t *m, const char *key, bi_id_t id, bi_id_t *dst, uint32_t bit)
{
    if ((id.kind != BI_ID_NETID && id.kind != BI_ID_EUI64) ||
        (id.kind == BI_ID_NETID && id.value > 0xFFFFFF))
        return RH_EINVAL;
    int r = set_hex(m, key, id.value, (unsigned)id.kind);
    if (r)
        return r;
    *dst = id;
    m->f.hdr.present |= bit;
    m->dirty = true;
    return RH_OK;
}

int bi_msg_set_sender_id(bi_msg_t *m, bi_id_t id)
{
    return set_id(m, "SenderID", id, &m->f.hdr.sender_id, BI_H_SENDER_ID);
}

int bi_msg_set_receiver_id(bi_msg_t *m, bi_id_t id)
{
    return set_id(m, "ReceiverID", id, &m->f.hdr.receiver_id, BI_H_RECEIVER_ID);
}

int bi_msg_set_transaction_id(bi_msg_t *m, uint32_t txid)
{
    if (bi_msg_tree(m))
        return RH_ENOMEM;
    int r = set_item(m->root, "TransactionID", cJSON_CreateNumber((double)txid));
    if (r)
        return r;
    m->f.hdr.transaction_id = txid;
    m->f.hdr.present |= BI_H_TRANSACTION_ID;
    m->dirty = true;
    return RH_OK;
}

static int set_nsid(bi_msg_t *m, const char *key, bool present, uint64_t nsid, uint64_t *dst,
                    uint32_t bit)
{
    if (bi_msg_tree(m))
        return RH_ENOMEM;
    if (!present) {
        cJSON_DeleteItemFromObjectCaseSensitive(m->root, key);
        m->f.hdr.present &= ~bit;
        *dst = 0;
    } else {
        int r = set_hex(m, key, nsid, 8);
        if (r)
            return r;
        *dst = nsid;
        m->f.hdr.present |= bit;
    }
    m->dirty = true;
    return RH_OK;
}

int bi_msg_set_sender_nsid(bi_msg_t *m, bool present, uint64_t nsid)
{
    return set_nsid(m, "SenderNSID", present, nsid, &m->f.hdr.sender_nsid, BI_H_SENDER_NSID);
}

int bi_msg_set_receiver_nsid(bi_msg_t *m, bool present, uint64_t nsid)
{
    return set_nsid(m, "ReceiverNSID", present, nsid, &m->f.hdr.receiver_nsid, BI_H_RECEIVER_NSID);
}

int bi_msg_set_result(bi_msg_t *m, bi_result_code_t code, const char *description)
{
    const char *name = bi_result_code_name(code, m->f.hdr.version, false);
    if (!name)
        return RH_EINVAL;
    if (bi_msg_tree(m))
        return RH_ENOMEM;
    cJSON *res = cJSON_CreateObject();
    if (!res)
        return RH_ENOMEM;
    cJSON *rc = cJSON_AddStringToObject(res, "ResultCode", name);
    cJSON *desc = NULL;
    if (description && description[0])
        desc = cJSON_AddStringToObject(res, "Description", description);
    if (!rc || (description && description[0] && !desc)) {
        cJSON_Delete(res);
        return RH_ENOMEM;
    }
    int r = set_item(m->root, "Result", res);
    if (r)
        return r;
    m->f.result_code = code;
    m->f.result_code_text = rc->valuestring;
    m->f.result_description = desc ? desc->valuestring : NULL;
    m->f.present |= BI_F_RESULT;
    if (desc)
        m->f.present |= BI_F_RESULT_DESCRIPTION;
    else
        m->f.present &= ~BI_F_RESULT_DESCRIPTION;
    m->tree |= BI_CANON_RC_ALIAS;
    m->dirty = true;
    return RH_OK;
}

int bi_msg_set_hnet_id(bi_msg_t *m, uint32_t net_id)
{
    if (net_id > 0xFFFFFFu)
        return RH_EINVAL;
    int r = set_hex(m, "HNetID", net_id, 3);
    if (r)
        return r;
    m->f.hnetid = net_id;
    m->f.present |= BI_F_HNETID;
    m->dirty = true;
    return RH_OK;
}

int bi_msg_drop_downlink(bi_msg_t *m)
{
    int removed = 0;
    static const char *const keys[] = {"PHYPayload", "DLMetaData"};
    if (bi_msg_tree(m))
        return RH_ENOMEM;
    for (size_t i = 0; i < NELEM(keys); i++) {
        cJSON *it = cJSON_DetachItemFromObjectCaseSensitive(m->root, keys[i]);
        if (it) {
            cJSON_Delete(it);
            removed++;
        }
    }
    if (!removed)
        return 0;
    int r = bi_msg_refresh(m, NULL); /* the typed view held pointers into what went */
    return r ? r : removed;
}

/* ================================================================== building */

static cJSON *header_tree(bi_msg_type_t type, bi_version_t version, bi_id_t sender,
                          bi_id_t receiver, uint32_t txid)
{
    const char *vn = bi_version_name(version), *tn = bi_msg_type_name(type);
    if (!vn || !tn)
        return NULL;
    char s[17], r[17];
    if ((sender.kind != BI_ID_NETID && sender.kind != BI_ID_EUI64) ||
        (receiver.kind != BI_ID_NETID && receiver.kind != BI_ID_EUI64))
        return NULL;
    rh_hex_format_be(sender.value, (unsigned)sender.kind, s, 0);
    rh_hex_format_be(receiver.value, (unsigned)receiver.kind, r, 0);
    cJSON *root = cJSON_CreateObject();
    if (!root || !cJSON_AddStringToObject(root, "ProtocolVersion", vn) ||
        !cJSON_AddStringToObject(root, "SenderID", s) ||
        !cJSON_AddStringToObject(root, "ReceiverID", r) ||
        !cJSON_AddNumberToObject(root, "TransactionID", (double)txid) ||
        !cJSON_AddStringToObject(root, "MessageType", tn)) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

int bi_msg_new(bi_msg_type_t type, bi_version_t version, bi_id_t sender, bi_id_t receiver,
               uint32_t txid, bi_msg_t **out)
{
    *out = NULL;
    if (!bi_version_name(version) || !bi_msg_type_name(type) ||
        (sender.kind == BI_ID_NETID && sender.value > 0xFFFFFF) ||
        (receiver.kind == BI_ID_NETID && receiver.value > 0xFFFFFF) ||
        (sender.kind != BI_ID_NETID && sender.kind != BI_ID_EUI64) ||
        (receiver.kind != BI_ID_NETID && receiver.kind != BI_ID_EUI64))
        return RH_EINVAL;
    cJSON *root = header_tree(type, version, sender, receiver, txid);
    if (!root)
        return RH_ENOMEM;
    /* Header-only: skip the per-type mandatory fields (the caller adds the body, then refreshes). */
    bi_msg_t *m = malloc(sizeof *m);
    if (!m) {
        cJSON_Delete(root);
        return RH_ENOMEM;
    }
    memset(m, 0, offsetof(bi_msg_t, phy));
    m->root = root;
    m->f.hdr.present = BI_H_VERSION | BI_H_SENDER_ID | BI_H_RECEIVER_ID | BI_H_TRANSACTION_ID |
                       BI_H_MESSAGE_TYPE;
    m->f.hdr.version = version;
    m->f.hdr.type = type;
    m->f.hdr.sender_id = sender;
    m->f.hdr.receiver_id = receiver;
    m->f.hdr.transaction_id = txid;
    m->canon = BI_CANON_NOT_RECEIVED;
    m->tree = TREE_ALL;
    m->valid = true;
    *out = m;
    return RH_OK;
}

static int answer_from_header(const bi_header_t *h, const char *sender_token,
                              bi_result_code_t code, const char *description, bi_msg_t **out)
{
    *out = NULL;
    bi_msg_type_t at = bi_msg_type_answer_for(h->type);
    if (at == BI_MT_UNKNOWN || !(h->present & BI_H_SENDER_ID) ||
        !(h->present & BI_H_RECEIVER_ID) || !(h->present & BI_H_TRANSACTION_ID) ||
        (unsigned)code >= BI_RC_COUNT)
        return RH_EINVAL;
    bi_version_t v = (h->present & BI_H_VERSION) ? h->version : BI_VERSION_1_0;
    bi_msg_t *m;
    int r = bi_msg_new(at, v, h->receiver_id, h->sender_id, h->transaction_id, &m);
    if (r)
        return r;
    if (v == BI_VERSION_1_1 && (h->present & BI_H_SENDER_NSID))
        r = bi_msg_set_receiver_nsid(m, true, h->sender_nsid);
    if (!r && sender_token) {
        r = set_item(m->root, "ReceiverToken", cJSON_CreateString(sender_token));
        if (!r) {
            m->f.receiver_token = cJSON_GetObjectItemCaseSensitive(m->root, "ReceiverToken")->valuestring;
            m->f.present |= BI_F_RECEIVER_TOKEN;
        }
    }
    if (!r)
        r = bi_msg_set_result(m, code, description);
    if (r) {
        bi_msg_free(m);
        return r;
    }
    m->dirty = false;
    *out = m;
    return RH_OK;
}

int bi_answer_new(const bi_msg_t *req, bi_result_code_t code, const char *description,
                  bi_msg_t **out)
{
    const bi_fields_t *f = &req->f;
    return answer_from_header(&f->hdr, (f->present & BI_F_SENDER_TOKEN) ? f->sender_token : NULL,
                              code, description, out);
}

int bi_answer_from_error(const bi_error_t *err, bi_msg_t **out)
{
    return answer_from_header(&err->hdr, NULL, err->code, err->description, out);
}

/* ================================================================== encoding */

typedef struct nctx {
    bool hex, region, time, rcode;
    bool upper;
    bi_region_names_t names;
    bi_version_t version;
    bool correct;
    int rc;
} nctx_t;

static void norm_hex(cJSON *v, bool upper)
{
    if (!cJSON_IsString(v))
        return;
    char *s = v->valuestring;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        memmove(s, s + 2, strlen(s + 2) + 1);
    for (; *s; s++) {
        if (upper && *s >= 'a' && *s <= 'f')
            *s = (char)(*s - 32);
        else if (!upper && *s >= 'A' && *s <= 'F')
            *s = (char)(*s + 32);
    }
}

static void set_string(nctx_t *n, cJSON *v, const char *want)
{
    if (strcmp(v->valuestring, want) != 0 && !cJSON_SetValuestring(v, want))
        n->rc = RH_ENOMEM;
}

static void normalise(nctx_t *n, cJSON *obj, const fdesc_t *tab, size_t ntab)
{
    for (cJSON *ch = obj->child; ch; ch = ch->next) {
        int k = bi_find_field(tab, ntab, ch->string);
        if (k < 0 || cJSON_IsNull(ch))
            continue;
        switch ((enum ftype)tab[k].type) {
        case FT_ID: case FT_EUI: case FT_NSID: case FT_NETID: case FT_DEVADDR: case FT_GWID:
        case FT_PHY: case FT_FRM: case FT_HEX64: case FT_HEXU8: case FT_HEX16: case FT_AESKEY:
            if (n->hex)
                norm_hex(ch, n->upper);
            break;
        case FT_REGION:
            if (n->region) {
                bi_region_t r = bi_region_parse(ch->valuestring);
                if (r != BI_REGION_UNKNOWN)
                    set_string(n, ch, bi_region_name(r, n->names));
            }
            break;
        case FT_TIME:
            if (n->time) {
                bi_time_t t;
                char buf[BI_TIME_MAX];
                if (bi_time_parse(ch->valuestring, &t, "", NULL) == RH_OK) {
                    bi_time_format(t, buf);
                    set_string(n, ch, buf);
                }
            }
            break;
        case FT_RCODE:
            if (n->rcode) {
                bi_result_code_t rc = bi_result_code_parse(ch->valuestring, NULL);
                if (rc != BI_RC_OTHER || strcasecmp(ch->valuestring, "Other") == 0)
                    set_string(n, ch, bi_result_code_name(rc, n->version, n->correct));
            }
            break;
        case FT_RESULT: normalise(n, ch, bi_result_tab, NELEM(bi_result_tab)); break;
        case FT_UL: normalise(n, ch, bi_ul_tab, NELEM(bi_ul_tab)); break;
        case FT_DL: normalise(n, ch, bi_dl_tab, NELEM(bi_dl_tab)); break;
        case FT_KEYENV: normalise(n, ch, bi_keyenv_tab, NELEM(bi_keyenv_tab)); break;
        case FT_GWARRAY:
            for (cJSON *e = ch->child; e; e = e->next)
                if (cJSON_IsObject(e))
                    normalise(n, e, bi_gw_tab, NELEM(bi_gw_tab));
            break;
        default:
            break;
        }
    }
}

static bi_version_t out_version(const bi_msg_t *m, const bi_dialect_t *d)
{
    return d->version != BI_VERSION_UNKNOWN ? d->version : m->f.hdr.version;
}

/* Whether the spelling flags `fl` already satisfy dialect d (hex, region, time, rcode). */
static bool hex_ok(uint32_t fl, const bi_dialect_t *d)
{
    return !(fl & BI_CANON_HEX_PREFIX) &&
           !(fl & (d->hex_case == BI_HEX_UPPER ? BI_CANON_HEX_LOWER : BI_CANON_HEX_UPPER));
}
static bool region_ok(uint32_t fl, const bi_dialect_t *d)
{
    return !(fl & (d->region_names == BI_REGION_NAMES_SPEC ? BI_CANON_REGION_NOT_SPEC
                                                            : BI_CANON_REGION_NOT_RP002));
}
static bool rcode_ok(uint32_t fl, const bi_dialect_t *d, bi_version_t v)
{
    if (fl & BI_CANON_RC_ALIAS)
        return false;
    if ((fl & BI_CANON_RC_UNKOWN) && d->unknown_receiver_correct)
        return false;
    if ((fl & BI_CANON_RC_UNKNOWN) && !d->unknown_receiver_correct)
        return false;
    if ((fl & BI_CANON_RC_MALFORMED_REQ) && v == BI_VERSION_1_1)
        return false;
    if ((fl & BI_CANON_RC_MALFORMED_MSG) && v != BI_VERSION_1_1)
        return false;
    return true;
}

/* The code a strict (closed-enum, TS002 1.0) receiver must get instead of the message's
 * ResultCode, or -1 when the message's is acceptable (see bi_dialect_t.strict_enums). */
static int strict_code(const bi_msg_t *m)
{
    if (!(m->f.present & BI_F_RESULT))
        return -1;
    switch (m->f.result_code) {
    case BI_RC_FRAME_REPLAYED:
    case BI_RC_NO_ACTION:
        return BI_RC_OTHER;
    case BI_RC_MALFORMED_MESSAGE:
        return BI_RC_MALFORMED_REQUEST;
    case BI_RC_OTHER: {
        bool exact = false;
        bi_result_code_parse(m->f.result_code_text ? m->f.result_code_text : "", &exact);
        return exact ? -1 : BI_RC_OTHER; /* an unrecognised string */
    }
    default:
        return -1;
    }
}

/* Rewrites a ResultCode a strict receiver would reject, keeping the original in Description. */
static int apply_strict(bi_msg_t *m)
{
    int code = strict_code(m);
    if (code < 0)
        return RH_OK;
    char desc[512];
    const char *orig = m->f.result_code_text ? m->f.result_code_text : "?";
    const char *d0 = m->f.result_description;
    snprintf(desc, sizeof desc, "ResultCode %.64s%s%.400s", orig, d0 && *d0 ? ": " : "",
             d0 ? d0 : "");
    return bi_msg_set_result(m, (bi_result_code_t)code, desc);
}

/* bi_msg_is_canonical_for, except that members dropped from the bytes (raw_strip) are allowed
 * when allow_raw_strip (bi_msg_splice_header writes them out). */
static bool canonical(const bi_msg_t *m, const bi_dialect_t *d, bool allow_raw_strip)
{
    if (m->raw_strip && !allow_raw_strip)
        return false;
    if (d->strict_enums && strict_code(m) >= 0)
        return false;
    uint32_t fl = m->canon;
    bi_version_t v = out_version(m, d);
    if (m->dirty || (fl & BI_CANON_NOT_RECEIVED) || v != m->f.hdr.version)
        return false;
    if (fl & (BI_CANON_TIME | BI_CANON_INT_AS_FLOAT))
        return false;
    if (v != BI_VERSION_1_1 && (fl & BI_CANON_NSID))
        return false;
    return hex_ok(fl, d) && region_ok(fl, d) && rcode_ok(fl, d, v);
}

bool bi_msg_is_canonical_for(const bi_msg_t *m, const bi_dialect_t *d)
{
    return canonical(m, d, false);
}

static const char *const nsid_keys[] = {"SenderNSID", "ReceiverNSID", "HNSID"};

/* Puts the tree in dialect d's spelling and the version/NSID state for printing; the returned
 * state is undone by unprepare() after printing. */
typedef struct prep {
    cJSON *version_node;
    char saved_version[4];
    cJSON *detached[3];
    int detached_at[3];
} prep_t;

/* Unlinks / relinks a member at a position. Done here rather than with cJSON's Detach/Insert
 * because cJSON_InsertItemInArray of Debian's 1.7.15 refuses to insert before an item whose
 * neighbour was detached; cJSON's list invariant (child->prev is the last item) is kept. */
static void unlink_item(cJSON *parent, cJSON *item)
{
    if (item == parent->child) {
        parent->child = item->next;
        if (item->next)
            item->next->prev = item->prev;
    } else {
        item->prev->next = item->next;
        if (item->next)
            item->next->prev = item->prev;
        else
            parent->child->prev = item->prev;
    }
    item->next = item->prev = NULL;
}

static void link_item_at(cJSON *parent, int at, cJSON *item)
{
    cJSON *after = parent->child;
    for (int i = 0; after && i < at; i++)
        after = after->next;
    if (!after) {
        if (!parent->child) {
            parent->child = item;
            item->prev = item;
        } else {
            cJSON *last = parent->child->prev;
            last->next = item;
            item->prev = last;
            parent->child->prev = item;
        }
        item->next = NULL;
        return;
    }
    item->next = after;
    item->prev = after->prev;
    if (after == parent->child)
        parent->child = item;
    else
        item->prev->next = item;
    after->prev = item;
}

static int prepare(bi_msg_t *m, const bi_dialect_t *d, prep_t *st)
{
    memset(st, 0, sizeof *st);
    if (bi_msg_tree(m))
        return RH_ENOMEM;
    if (d->strict_enums) {
        int r = apply_strict(m);
        if (r)
            return r;
    }
    bi_version_t v = out_version(m, d);
    nctx_t n = {
        .hex = !hex_ok(m->tree, d),
        .region = !region_ok(m->tree, d),
        .time = (m->tree & BI_CANON_TIME) != 0,
        .rcode = !rcode_ok(m->tree, d, v),
        .upper = d->hex_case == BI_HEX_UPPER,
        .names = d->region_names,
        .version = v,
        .correct = d->unknown_receiver_correct,
        .rc = RH_OK,
    };
    if (n.hex || n.region || n.time || n.rcode) {
        normalise(&n, m->root, bi_top_tab, NELEM(bi_top_tab));
        if (n.rc)
            return n.rc;
        uint32_t t = m->tree;
        if (n.hex)
            t = (t & ~(BI_CANON_HEX_PREFIX | BI_CANON_HEX_LOWER | BI_CANON_HEX_UPPER)) |
                (n.upper ? BI_CANON_HEX_UPPER : BI_CANON_HEX_LOWER);
        if (n.region)
            t = (t & ~(BI_CANON_REGION_NOT_RP002 | BI_CANON_REGION_NOT_SPEC)) |
                (n.names == BI_REGION_NAMES_SPEC ? BI_CANON_REGION_NOT_RP002
                                                 : BI_CANON_REGION_NOT_SPEC);
        if (n.time)
            t &= ~BI_CANON_TIME;
        if (n.rcode) {
            t &= ~(BI_CANON_RC_ALIAS | BI_CANON_RC_UNKOWN | BI_CANON_RC_UNKNOWN |
                   BI_CANON_RC_MALFORMED_REQ | BI_CANON_RC_MALFORMED_MSG);
            bi_result_code_t rc = m->f.result_code;
            if (rc == BI_RC_UNKNOWN_RECEIVER)
                t |= n.correct ? BI_CANON_RC_UNKNOWN : BI_CANON_RC_UNKOWN;
            else if (rc == BI_RC_MALFORMED_REQUEST || rc == BI_RC_MALFORMED_MESSAGE)
                t |= v == BI_VERSION_1_1 ? BI_CANON_RC_MALFORMED_MSG : BI_CANON_RC_MALFORMED_REQ;
        }
        m->tree = t;
    }
    if (v != m->f.hdr.version) {
        cJSON *vn = cJSON_GetObjectItemCaseSensitive(m->root, "ProtocolVersion");
        if (cJSON_IsString(vn) && strlen(vn->valuestring) == 3) {
            memcpy(st->saved_version, vn->valuestring, 4);
            memcpy(vn->valuestring, bi_version_name(v), 4);
            st->version_node = vn;
        }
    }
    if (v != BI_VERSION_1_1) {
        for (int i = 0; i < 3; i++) {
            int at = 0;
            for (cJSON *ch = m->root->child; ch; ch = ch->next, at++) {
                if (ch->string && strcmp(ch->string, nsid_keys[i]) == 0) {
                    unlink_item(m->root, ch);
                    st->detached[i] = ch;
                    st->detached_at[i] = at;
                    break;
                }
            }
        }
    }
    return RH_OK;
}

static void unprepare(bi_msg_t *m, prep_t *st)
{
    if (st->version_node)
        memcpy(st->version_node->valuestring, st->saved_version, 4);
    /* Reverse order restores the original positions (the item keeps its key). */
    for (int i = 2; i >= 0; i--)
        if (st->detached[i])
            link_item_at(m->root, st->detached_at[i], st->detached[i]);
}

int bi_msg_encode(bi_msg_t *m, const bi_dialect_t *d, char **out, size_t *len)
{
    bi_dialect_t def = BI_DIALECT_CHIRPSTACK;
    prep_t st;
    *out = NULL;
    int r = prepare(m, d ? d : &def, &st);
    char *s = r ? NULL : cJSON_PrintUnformatted(m->root);
    unprepare(m, &st);
    if (r)
        return r;
    if (!s)
        return RH_ENOMEM;
    *out = s;
    if (len)
        *len = strlen(s);
    return RH_OK;
}

int bi_msg_encode_to(bi_msg_t *m, const bi_dialect_t *d, char *buf, size_t cap, size_t *len)
{
    bi_dialect_t def = BI_DIALECT_CHIRPSTACK;
    prep_t st;
    int r = prepare(m, d ? d : &def, &st);
    if (r == RH_OK) {
        int c = cap > (size_t)0x7fffffff ? 0x7fffffff : (int)cap;
        if (c < 1 || !cJSON_PrintPreallocated(m->root, buf, c, 0))
            r = RH_ERANGE;
        else if (len)
            *len = strlen(buf);
    }
    unprepare(m, &st);
    return r;
}

/* Where the top-level header values stand in received bytes (offset, length; len 0: not seen):
 * the TransactionID number and the SenderID / ReceiverID strings with their quotes. */
/* Finds the header spans in `p` (n bytes, a body bi_msg_decode accepted, so valid JSON with no
 * duplicate keys): one pass tracking depth, strings and escapes, comparing only keys of the
 * top-level object, and stopping as soon as the spans in `need` (1 TransactionID, 2 SenderID,
 * 4 ReceiverID) are found — the header normally comes first, so the pass reads ~100 bytes. */
static void find_spans(const char *p, size_t n, unsigned need, bi_hdr_spans_t *sp)
{
    memset(sp, 0, sizeof *sp);
    unsigned found = 0;
    int depth = 0;
    bool expect_key = false;
    bi_span_t *want = NULL; /* the value after the current top-level key is wanted here */
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '"') {
            size_t start = i++;
            while (i < n && p[i] != '"')
                i += p[i] == '\\' ? 2 : 1;
            size_t len = i - start + 1;
            if (depth == 1 && expect_key) {
                const char *k = p + start + 1;
                size_t kl = len - 2;
                want = kl == 13 && !memcmp(k, "TransactionID", 13) ? &sp->txid
                       : kl == 8 && !memcmp(k, "SenderID", 8)      ? &sp->sender
                       : kl == 10 && !memcmp(k, "ReceiverID", 10)  ? &sp->receiver
                                                                   : NULL;
                expect_key = false;
            } else if (depth == 1 && want) {
                if (want != &sp->txid) {
                    *want = (bi_span_t){start, len};
                    found |= want == &sp->sender ? 2u : 4u;
                    if ((found & need) == need)
                        return;
                }
                want = NULL;
            }
        } else if (c == '{' || c == '[') {
            depth++;
            expect_key = depth == 1 && c == '{';
            if (depth == 2)
                want = NULL;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == ',') {
            expect_key = depth == 1;
            if (depth == 1)
                want = NULL;
        } else if (depth == 1 && want == &sp->txid && (c == '-' || (c >= '0' && c <= '9'))) {
            size_t start = i;
            while (i + 1 < n && ((p[i + 1] >= '0' && p[i + 1] <= '9') || p[i + 1] == '.' ||
                                 p[i + 1] == 'e' || p[i + 1] == 'E' || p[i + 1] == '+' ||
                                 p[i + 1] == '-'))
                i++;
            sp->txid = (bi_span_t){start, i - start + 1};
            want = NULL;
            found |= 1u;
            if ((found & need) == need)
                return;
        }
    }
}

/* One replacement of a span of the received bytes. */
typedef struct splice {
    bi_span_t at;
    char text[24];
    size_t len;
} splice_t;

static bool id_text(bi_id_t id, bi_hex_case_t hc, splice_t *s)
{
    if (id.kind != BI_ID_NETID && id.kind != BI_ID_EUI64)
        return false;
    int w = id.kind == BI_ID_NETID ? 6 : 16;
    s->text[0] = '"';
    rh_hex_format_be(id.value, (unsigned)id.kind, s->text + 1, hc == BI_HEX_UPPER);
    s->text[w + 1] = '"';
    s->text[w + 2] = '\0';
    s->len = (size_t)w + 2;
    return true;
}

int bi_msg_splice_header(const bi_msg_t *m, const char *raw, size_t raw_len, const bi_dialect_t *d,
                         const bi_header_edit_t *e, char **out, size_t *len)
{
    bi_dialect_t def = BI_DIALECT_CHIRPSTACK;
    if (!d)
        d = &def;
    *out = NULL;
    if (!raw)
        return RH_EAGAIN;
    /* Canonical for d but for the case of hex digits: respelled in a copy of the bytes when
     * bi_fast_decode recorded where every typed hex field stands in them (same length). */
    bool respell = false;
    if (!canonical(m, d, true)) {
        bi_dialect_t other = *d;
        other.hex_case = d->hex_case == BI_HEX_UPPER ? BI_HEX_LOWER : BI_HEX_UPPER;
        if (m->spans_body_len != raw_len || m->hex_n > BI_HEX_SPANS ||
            (m->canon & BI_CANON_HEX_PREFIX) || !canonical(m, &other, true))
            return RH_EAGAIN;
        respell = true;
    }
    /* GWInfo members dropped from the bytes (bi_msg_strip_gwinfo on a message from
     * bi_fast_decode): those elements are written again without them. */
    if (m->raw_strip && m->spans_body_len != raw_len)
        return RH_EAGAIN;
    bi_hdr_spans_t spans;
    if (m->spans_body_len && m->spans_body_len == raw_len)
        spans = m->spans; /* recorded by bi_fast_decode's pass over these bytes */
    else
        find_spans(raw, raw_len,
                   (e->set_txid ? 1u : 0u) | (e->set_sender ? 2u : 0u) | (e->set_receiver ? 4u : 0u),
                   &spans);
    splice_t sp[3];
    int n = 0;
    if (e->set_txid) {
        if (!spans.txid.len)
            return RH_EAGAIN;
        sp[n].at = spans.txid;
        char digits[10];
        size_t nd = 0;
        uint32_t v = e->txid;
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        for (size_t j = 0; j < nd; j++)
            sp[n].text[j] = digits[nd - 1 - j];
        sp[n].len = nd;
        n++;
    }
    if (e->set_sender) {
        if (!spans.sender.len || !id_text(e->sender, d->hex_case, &sp[n]))
            return RH_EAGAIN;
        sp[n++].at = spans.sender;
    }
    if (e->set_receiver) {
        if (!spans.receiver.len || !id_text(e->receiver, d->hex_case, &sp[n]))
            return RH_EAGAIN;
        sp[n++].at = spans.receiver;
    }
    for (int a = 1; a < n; a++) /* by offset (at most 3) */
        for (int b = a; b > 0 && sp[b].at.off < sp[b - 1].at.off; b--) {
            splice_t t = sp[b];
            sp[b] = sp[b - 1];
            sp[b - 1] = t;
        }
    char *copy = NULL;
    if (respell) {
        if (!(copy = malloc(raw_len)))
            return RH_ENOMEM;
        memcpy(copy, raw, raw_len);
        bool upper = d->hex_case == BI_HEX_UPPER;
        for (uint32_t h = 0; h < m->hex_n; h++) {
            char *x = copy + m->hex[h].off;
            if (m->hex[h].off + m->hex[h].len > raw_len) {
                free(copy);
                return RH_EAGAIN;
            }
            for (uint32_t j = 0; j < m->hex[h].len; j++) /* the digits were checked: 0-9 a-f A-F */
                if (x[j] >= 'A')
                    x[j] = upper ? (char)(x[j] & ~0x20) : (char)(x[j] | 0x20);
        }
        raw = copy;
    }
    /* Element rewrites only shorten the text. */
    size_t cap = raw_len + 3 * sizeof sp[0].text + 1;
    char *buf = cJSON_malloc(cap);
    if (!buf) {
        free(copy);
        return RH_ENOMEM;
    }
    size_t o = 0, from = 0, gj = 0, ge = 0;
    int k = 0;
    for (;;) {
        /* The next element with a dropped member (elements are in body order). */
        while (m->raw_strip && gj < m->gwm_n && !m->gwm[gj].dropped)
            gj++;
        bool elem = m->raw_strip && gj < m->gwm_n;
        ge = elem ? m->gwm[gj].elem : 0;
        size_t eoff = elem ? m->gwobj[ge].off : SIZE_MAX;
        size_t hoff = k < n ? sp[k].at.off : SIZE_MAX;
        if (!elem && k >= n)
            break;
        size_t at = eoff < hoff ? eoff : hoff;
        size_t span = eoff < hoff ? m->gwobj[ge].len : sp[k].at.len;
        if (at < from || at + span > raw_len) {
            cJSON_free(buf);
            free(copy);
            return RH_EAGAIN;
        }
        memcpy(buf + o, raw + from, at - from);
        o += at - from;
        if (eoff < hoff) {
            buf[o++] = '{';
            bool first = true;
            size_t j = 0;
            while (j < m->gwm_n && m->gwm[j].elem != ge)
                j++;
            for (; j < m->gwm_n && m->gwm[j].elem == ge; j++) {
                const bi_gw_member_t *g = &m->gwm[j];
                if (g->dropped)
                    continue;
                if (!first)
                    buf[o++] = ',';
                first = false;
                memcpy(buf + o, raw + g->key_off, g->end - g->key_off);
                o += g->end - g->key_off;
            }
            buf[o++] = '}';
            while (gj < m->gwm_n && m->gwm[gj].elem == ge)
                gj++;
        } else {
            memcpy(buf + o, sp[k].text, sp[k].len);
            o += sp[k].len;
            k++;
        }
        from = at + span;
    }
    memcpy(buf + o, raw + from, raw_len - from);
    o += raw_len - from;
    buf[o] = '\0';
    free(copy);
    *out = buf;
    if (len)
        *len = o;
    return RH_OK;
}

int bi_msg_apply_header_edit(bi_msg_t *m, const bi_header_edit_t *e)
{
    const bi_header_t *h = &m->f.hdr;
    int r = RH_OK;
    if (e->set_txid && h->transaction_id != e->txid)
        r = bi_msg_set_transaction_id(m, e->txid);
    if (r == RH_OK && e->set_sender &&
        (h->sender_id.kind != e->sender.kind || h->sender_id.value != e->sender.value))
        r = bi_msg_set_sender_id(m, e->sender);
    if (r == RH_OK && e->set_receiver &&
        (h->receiver_id.kind != e->receiver.kind || h->receiver_id.value != e->receiver.value))
        r = bi_msg_set_receiver_id(m, e->receiver);
    return r;
}

void bi_buf_free(char *buf)
{
    if (buf)
        cJSON_free(buf);
}
