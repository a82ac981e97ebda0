/* lw_frame.c — LoRaWAN PHYPayload codec (see lw_frame.h).
 * Invariants: decode never reads outside [phy, phy+len) and never allocates; every accepted
 * input re-encodes to the same bytes (MHDR RFU bits and the downlink FCtrl RFU bit are kept). */
#include "lw_frame.h"

#include "rh_hex.h"

#include <string.h>

static const char *const mtype_names[8] = {
    "JoinRequest",       "JoinAccept",      "UnconfirmedDataUp", "UnconfirmedDataDown",
    "ConfirmedDataUp",   "ConfirmedDataDown", "RejoinRequest",   "Proprietary",
};

const char *lw_mtype_name(lw_mtype_t m)
{
    return (unsigned)m < 8 ? mtype_names[m] : "unknown MType";
}

const char *lw_class_name(lw_class_t c)
{
    switch (c) {
    case LW_CLASS_UP_JOIN_REQUEST: return "uplink join-request";
    case LW_CLASS_UP_REJOIN_REQUEST: return "uplink rejoin-request";
    case LW_CLASS_UP_MAC_DATA: return "uplink MAC data";
    case LW_CLASS_UP_APP_DATA: return "uplink application data";
    case LW_CLASS_DOWN_JOIN_ACCEPT: return "downlink join-accept";
    case LW_CLASS_DOWN_MAC_DATA: return "downlink MAC data";
    case LW_CLASS_DOWN_APP_DATA: return "downlink application data";
    case LW_CLASS_PROPRIETARY: return "proprietary";
    }
    return "unknown class";
}

lw_class_t lw_frame_class(const lw_frame_t *f)
{
    switch (f->mtype) {
    case LW_MTYPE_JOIN_REQUEST: return LW_CLASS_UP_JOIN_REQUEST;
    case LW_MTYPE_REJOIN_REQUEST: return LW_CLASS_UP_REJOIN_REQUEST;
    case LW_MTYPE_JOIN_ACCEPT: return LW_CLASS_DOWN_JOIN_ACCEPT;
    case LW_MTYPE_UNCONFIRMED_UP:
    case LW_MTYPE_CONFIRMED_UP:
        return f->u.data.has_fport && f->u.data.fport > 0 ? LW_CLASS_UP_APP_DATA
                                                         : LW_CLASS_UP_MAC_DATA;
    case LW_MTYPE_UNCONFIRMED_DOWN:
    case LW_MTYPE_CONFIRMED_DOWN:
        return f->u.data.has_fport && f->u.data.fport > 0 ? LW_CLASS_DOWN_APP_DATA
                                                         : LW_CLASS_DOWN_MAC_DATA;
    case LW_MTYPE_PROPRIETARY: break;
    }
    return LW_CLASS_PROPRIETARY;
}

uint32_t lw_fcnt_extend(uint32_t last32, uint16_t fcnt16)
{
    uint32_t v = (last32 & 0xFFFF0000u) | fcnt16;
    if (v < last32)
        v += 0x10000u; /* the 16-bit counter wrapped since last32 (wraps at 2^32 too) */
    return v;
}

static uint32_t get_le24(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
}

static void put_le24(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
}

static int check_exact(size_t len, size_t want, const char *what, rh_diag_t *diag)
{
    if (len != want)
        return rh_diag_fail(diag, RH_ESIZE, "PHYPayload: a %s is %zu bytes, got %zu", what, want,
                            len);
    return RH_OK;
}

static int decode_data(const uint8_t *phy, size_t len, lw_frame_t *f, rh_diag_t *diag)
{
    lw_data_t *d = &f->u.data;
    if (len < LW_DATA_MIN)
        return rh_diag_fail(diag, RH_ESIZE,
                            "PHYPayload: %zu bytes, a %s needs at least %u (MHDR, FHDR, MIC)", len,
                            lw_mtype_name(f->mtype), LW_DATA_MIN);
    bool up = lw_mtype_is_uplink(f->mtype);
    d->devaddr = rh_get_le32(phy + 1);
    uint8_t fc = phy[5];
    d->fctrl.adr = fc & 0x80;
    d->fctrl.ack = fc & 0x20;
    d->fctrl.adr_ack_req = up && (fc & 0x40);
    d->fctrl.class_b = up && (fc & 0x10);
    d->fctrl.rfu = !up && (fc & 0x40);
    d->fctrl.f_pending = !up && (fc & 0x10);
    d->fopts_len = fc & 0x0F;
    d->fcnt = rh_get_le16(phy + 6);
    size_t body_end = len - LW_MIC_LEN; /* first byte of the MIC */
    if (8u + d->fopts_len > body_end)
        return rh_diag_fail(diag, RH_ESIZE,
                            "FHDR.FOptsLen: %u bytes of FOpts run past the end of a %zu-byte frame",
                            d->fopts_len, len);
    d->fopts = d->fopts_len ? phy + 8 : NULL;
    size_t pos = 8u + d->fopts_len;
    if (pos < body_end) {
        d->has_fport = true;
        d->fport = phy[pos++];
        d->frm_payload_len = body_end - pos;
        d->frm_payload = d->frm_payload_len ? phy + pos : NULL;
        if (d->fport == 0 && d->fopts_len > 0)
            return rh_diag_fail(diag, RH_EINVAL,
                                "FPort: FOpts present together with FPort 0 (%u bytes of FOpts)",
                                d->fopts_len);
    } else {
        d->has_fport = false;
        d->fport = 0;
        d->frm_payload = NULL;
        d->frm_payload_len = 0;
    }
    memcpy(f->mic, phy + body_end, 4);
    return RH_OK;
}

int lw_frame_decode(const uint8_t *phy, size_t len, lw_frame_t *f, rh_diag_t *diag)
{
    memset(f, 0, sizeof *f);
    if (len == 0 || phy == NULL)
        return rh_diag_fail(diag, RH_ESIZE, "PHYPayload: empty, at least the MHDR byte is needed");
    if (len > LW_PHY_MAX)
        return rh_diag_fail(diag, RH_ESIZE, "PHYPayload: %zu bytes, at most %u", len, LW_PHY_MAX);
    f->mtype = (lw_mtype_t)(phy[0] >> 5);
    f->mhdr_rfu = (phy[0] >> 2) & 7u;
    f->major = phy[0] & 3u;
    if (f->major != 0)
        return rh_diag_fail(diag, RH_EVERSION, "MHDR.Major: RFU value %u (only 0, LoRaWAN R1)",
                            f->major);
    int rc;
    switch (f->mtype) {
    case LW_MTYPE_JOIN_REQUEST:
        if ((rc = check_exact(len, LW_JOIN_REQUEST_LEN, "join-request", diag)) != RH_OK)
            return rc;
        f->u.join_request.join_eui = rh_get_le64(phy + 1);
        f->u.join_request.dev_eui = rh_get_le64(phy + 9);
        f->u.join_request.dev_nonce = rh_get_le16(phy + 17);
        memcpy(f->mic, phy + 19, 4);
        return RH_OK;
    case LW_MTYPE_JOIN_ACCEPT:
        if (len != LW_JOIN_ACCEPT_LEN && len != LW_JOIN_ACCEPT_CFLIST_LEN)
            return rh_diag_fail(diag, RH_ESIZE,
                                "PHYPayload: a join-accept is 17 bytes (33 with CFList), got %zu",
                                len);
        f->u.join_accept.payload = phy + 1;
        f->u.join_accept.len = len - 1;
        return RH_OK;
    case LW_MTYPE_REJOIN_REQUEST: {
        lw_rejoin_t *r = &f->u.rejoin;
        if (len < 2)
            return rh_diag_fail(diag, RH_ESIZE,
                                "PHYPayload: 1 byte, a rejoin-request needs a RejoinType");
        r->type = phy[1];
        if (r->type == 0 || r->type == 2) {
            if ((rc = check_exact(len, LW_REJOIN02_LEN, r->type ? "rejoin-request type 2"
                                                                 : "rejoin-request type 0",
                                  diag)) != RH_OK)
                return rc;
            r->netid = get_le24(phy + 2);
            r->dev_eui = rh_get_le64(phy + 5);
            r->rj_count = rh_get_le16(phy + 13);
            memcpy(f->mic, phy + 15, 4);
        } else if (r->type == 1) {
            if ((rc = check_exact(len, LW_REJOIN1_LEN, "rejoin-request type 1", diag)) != RH_OK)
                return rc;
            r->join_eui = rh_get_le64(phy + 2);
            r->dev_eui = rh_get_le64(phy + 10);
            r->rj_count = rh_get_le16(phy + 18);
            memcpy(f->mic, phy + 20, 4);
        } else {
            return rh_diag_fail(diag, RH_EINVAL, "RejoinType: RFU value %u (0, 1 or 2)", r->type);
        }
        return RH_OK;
    }
    case LW_MTYPE_PROPRIETARY:
        f->u.proprietary.len = len - 1;
        f->u.proprietary.payload = len > 1 ? phy + 1 : NULL;
        return RH_OK;
    default:
        return decode_data(phy, len, f, diag);
    }
}

static int need(size_t n, size_t cap, rh_diag_t *diag)
{
    if (n > LW_PHY_MAX)
        return rh_diag_fail(diag, RH_ESIZE, "PHYPayload: %zu bytes, at most %u", n, LW_PHY_MAX);
    if (n > cap)
        return rh_diag_fail(diag, RH_ERANGE, "PHYPayload: needs %zu bytes, buffer holds %zu", n,
                            cap);
    return RH_OK;
}

static int encode_data(const lw_frame_t *f, uint8_t *out, size_t cap, size_t *len,
                       rh_diag_t *diag)
{
    const lw_data_t *d = &f->u.data;
    bool up = lw_mtype_is_uplink(f->mtype);
    if (d->fopts_len > LW_FOPTS_MAX)
        return rh_diag_fail(diag, RH_ESIZE, "FHDR.FOptsLen: %u bytes, at most %u", d->fopts_len,
                            LW_FOPTS_MAX);
    if (d->fopts_len && !d->fopts)
        return rh_diag_fail(diag, RH_EINVAL, "FHDR.FOpts: NULL with FOptsLen %u", d->fopts_len);
    if (d->has_fport && d->fport == 0 && d->fopts_len)
        return rh_diag_fail(diag, RH_EINVAL, "FPort: FOpts present together with FPort 0");
    if (!d->has_fport && d->frm_payload_len)
        return rh_diag_fail(diag, RH_EINVAL, "FPort: absent but FRMPayload has %zu bytes",
                            d->frm_payload_len);
    if (d->frm_payload_len && !d->frm_payload)
        return rh_diag_fail(diag, RH_EINVAL, "FRMPayload: NULL with length %zu",
                            d->frm_payload_len);
    if (d->frm_payload_len > LW_PHY_MAX)
        return rh_diag_fail(diag, RH_ESIZE, "FRMPayload: %zu bytes, at most %u",
                            d->frm_payload_len, LW_PHY_MAX);
    size_t n = 1 + 7 + d->fopts_len + (d->has_fport ? 1 + d->frm_payload_len : 0) + LW_MIC_LEN;
    int rc = need(n, cap, diag);
    if (rc != RH_OK)
        return rc;
    rh_put_le32(out + 1, d->devaddr);
    uint8_t fc = (uint8_t)(d->fopts_len | (d->fctrl.adr ? 0x80 : 0) | (d->fctrl.ack ? 0x20 : 0));
    if (up)
        fc |= (uint8_t)((d->fctrl.adr_ack_req ? 0x40 : 0) | (d->fctrl.class_b ? 0x10 : 0));
    else
        fc |= (uint8_t)((d->fctrl.rfu ? 0x40 : 0) | (d->fctrl.f_pending ? 0x10 : 0));
    out[5] = fc;
    rh_put_le16(out + 6, d->fcnt);
    size_t pos = 8;
    if (d->fopts_len)
        memcpy(out + pos, d->fopts, d->fopts_len);
    pos += d->fopts_len;
    if (d->has_fport) {
        out[pos++] = d->fport;
        if (d->frm_payload_len)
            memcpy(out + pos, d->frm_payload, d->frm_payload_len);
        pos += d->frm_payload_len;
    }
    memcpy(out + pos, f->mic, 4);
    *len = n;
    return RH_OK;
}

int lw_frame_encode(const lw_frame_t *f, uint8_t *out, size_t cap, size_t *len, rh_diag_t *diag)
{
    int rc;
    *len = 0;
    if (f->major != 0)
        return rh_diag_fail(diag, RH_EVERSION, "MHDR.Major: RFU value %u (only 0, LoRaWAN R1)",
                            f->major);
    if ((unsigned)f->mtype > 7)
        return rh_diag_fail(diag, RH_EINVAL, "MHDR.MType: %u is not a 3-bit value",
                            (unsigned)f->mtype);
    if (f->mhdr_rfu > 7)
        return rh_diag_fail(diag, RH_EINVAL, "MHDR.RFU: %u is not a 3-bit value", f->mhdr_rfu);
    if (cap < 1)
        return rh_diag_fail(diag, RH_ERANGE, "PHYPayload: buffer holds 0 bytes");
    out[0] = (uint8_t)(((unsigned)f->mtype << 5) | ((unsigned)f->mhdr_rfu << 2) | f->major);
    switch (f->mtype) {
    case LW_MTYPE_JOIN_REQUEST:
        if ((rc = need(LW_JOIN_REQUEST_LEN, cap, diag)) != RH_OK)
            return rc;
        rh_put_le64(out + 1, f->u.join_request.join_eui);
        rh_put_le64(out + 9, f->u.join_request.dev_eui);
        rh_put_le16(out + 17, f->u.join_request.dev_nonce);
        memcpy(out + 19, f->mic, 4);
        *len = LW_JOIN_REQUEST_LEN;
        return RH_OK;
    case LW_MTYPE_JOIN_ACCEPT: {
        const lw_join_accept_enc_t *j = &f->u.join_accept;
        if (j->len != 16 && j->len != 32)
            return rh_diag_fail(diag, RH_ESIZE,
                                "JoinAccept: encrypted payload of %zu bytes, must be 16 or 32",
                                j->len);
        if (!j->payload)
            return rh_diag_fail(diag, RH_EINVAL, "JoinAccept: NULL payload");
        if ((rc = need(1 + j->len, cap, diag)) != RH_OK)
            return rc;
        memcpy(out + 1, j->payload, j->len);
        *len = 1 + j->len;
        return RH_OK;
    }
    case LW_MTYPE_REJOIN_REQUEST: {
        const lw_rejoin_t *r = &f->u.rejoin;
        if (r->type == 1) {
            if ((rc = need(LW_REJOIN1_LEN, cap, diag)) != RH_OK)
                return rc;
            out[1] = 1;
            rh_put_le64(out + 2, r->join_eui);
            rh_put_le64(out + 10, r->dev_eui);
            rh_put_le16(out + 18, r->rj_count);
            memcpy(out + 20, f->mic, 4);
            *len = LW_REJOIN1_LEN;
            return RH_OK;
        }
        if (r->type != 0 && r->type != 2)
            return rh_diag_fail(diag, RH_EINVAL, "RejoinType: RFU value %u (0, 1 or 2)", r->type);
        if (r->netid > 0xFFFFFFu)
            return rh_diag_fail(diag, RH_EINVAL, "NetID: %08X is wider than 24 bits", r->netid);
        if ((rc = need(LW_REJOIN02_LEN, cap, diag)) != RH_OK)
            return rc;
        out[1] = r->type;
        put_le24(out + 2, r->netid);
        rh_put_le64(out + 5, r->dev_eui);
        rh_put_le16(out + 13, r->rj_count);
        memcpy(out + 15, f->mic, 4);
        *len = LW_REJOIN02_LEN;
        return RH_OK;
    }
    case LW_MTYPE_PROPRIETARY: {
        const lw_proprietary_t *p = &f->u.proprietary;
        if (p->len && !p->payload)
            return rh_diag_fail(diag, RH_EINVAL, "Proprietary: NULL payload of %zu bytes", p->len);
        if (p->len >= LW_PHY_MAX)
            return rh_diag_fail(diag, RH_ESIZE, "PHYPayload: %zu bytes, at most %u", p->len + 1,
                                LW_PHY_MAX);
        if ((rc = need(1 + p->len, cap, diag)) != RH_OK)
            return rc;
        if (p->len)
            memcpy(out + 1, p->payload, p->len);
        *len = 1 + p->len;
        return RH_OK;
    }
    default:
        return encode_data(f, out, cap, len, diag);
    }
}

int lw_join_accept_decode(const uint8_t *plain, size_t len, lw_join_accept_t *ja, rh_diag_t *diag)
{
    memset(ja, 0, sizeof *ja);
    if (len != LW_JOIN_ACCEPT_LEN && len != LW_JOIN_ACCEPT_CFLIST_LEN)
        return rh_diag_fail(diag, RH_ESIZE,
                            "PHYPayload: a join-accept is 17 bytes (33 with CFList), got %zu", len);
    if ((plain[0] >> 5) != LW_MTYPE_JOIN_ACCEPT)
        return rh_diag_fail(diag, RH_EINVAL, "MHDR.MType: %s, expected JoinAccept",
                            lw_mtype_name((lw_mtype_t)(plain[0] >> 5)));
    if (plain[0] & 3u)
        return rh_diag_fail(diag, RH_EVERSION, "MHDR.Major: RFU value %u (only 0, LoRaWAN R1)",
                            plain[0] & 3u);
    ja->join_nonce = get_le24(plain + 1);
    ja->home_netid = get_le24(plain + 4);
    ja->devaddr = rh_get_le32(plain + 7);
    ja->dl_settings = plain[11];
    ja->rx_delay = plain[12];
    ja->has_cflist = len == LW_JOIN_ACCEPT_CFLIST_LEN;
    if (ja->has_cflist)
        memcpy(ja->cflist, plain + 13, 16);
    memcpy(ja->mic, plain + len - 4, 4);
    return RH_OK;
}

int lw_join_accept_encode(const lw_join_accept_t *ja, uint8_t *out, size_t cap, size_t *len,
                          rh_diag_t *diag)
{
    size_t n = ja->has_cflist ? LW_JOIN_ACCEPT_CFLIST_LEN : LW_JOIN_ACCEPT_LEN;
    *len = 0;
    if (ja->join_nonce > 0xFFFFFFu)
        return rh_diag_fail(diag, RH_EINVAL, "JoinNonce: %08X is wider than 24 bits",
                            ja->join_nonce);
    if (ja->home_netid > 0xFFFFFFu)
        return rh_diag_fail(diag, RH_EINVAL, "Home_NetID: %08X is wider than 24 bits",
                            ja->home_netid);
    if (cap < n)
        return rh_diag_fail(diag, RH_ERANGE, "PHYPayload: needs %zu bytes, buffer holds %zu", n,
                            cap);
    out[0] = LW_MTYPE_JOIN_ACCEPT << 5;
    put_le24(out + 1, ja->join_nonce);
    put_le24(out + 4, ja->home_netid);
    rh_put_le32(out + 7, ja->devaddr);
    out[11] = ja->dl_settings;
    out[12] = ja->rx_delay;
    if (ja->has_cflist)
        memcpy(out + 13, ja->cflist, 16);
    memcpy(out + n - 4, ja->mic, 4);
    *len = n;
    return RH_OK;
}
