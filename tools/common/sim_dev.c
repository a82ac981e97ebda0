/*
 * sim_dev.c — simulated LoRaWAN 1.0.x class A device (see sim_dev.h).
 */
#include "sim_dev.h"

#include "lw_frame.h"

#include <stdio.h>
#include <string.h>

int sim_dev_init(sim_dev_t *d, const devcfg_t *cfg, uint16_t dev_nonce_start)
{
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->dev_nonce = dev_nonce_start;
    int rc;
    if (cfg->otaa)
        return lw_aes128_key_init(&d->app_key, cfg->app_key);
    d->active = true;
    d->devaddr = cfg->dev_addr;
    d->fcnt_up = cfg->fcnt_up;
    if (cfg->fcnt_down) {
        d->fcnt_down = cfg->fcnt_down - 1;
        d->fcnt_down_seen = true;
    }
    if ((rc = lw_aes128_key_init(&d->nwk_s_key, cfg->nwk_s_key)) < 0 ||
        (rc = lw_aes128_key_init(&d->app_s_key, cfg->app_s_key)) < 0) {
        sim_dev_fini(d);
        return rc;
    }
    return RH_OK;
}

void sim_dev_fini(sim_dev_t *d)
{
    if (!d)
        return;
    lw_aes128_key_fini(&d->app_key);
    lw_aes128_key_fini(&d->nwk_s_key);
    lw_aes128_key_fini(&d->app_s_key);
}

int sim_build_join(sim_dev_t *d, uint8_t *out, size_t *len)
{
    if (!d->cfg.otaa)
        return RH_EINVAL;
    lw_frame_t f = {.mtype = LW_MTYPE_JOIN_REQUEST};
    f.u.join_request.join_eui = d->cfg.join_eui;
    f.u.join_request.dev_eui = d->cfg.dev_eui;
    f.u.join_request.dev_nonce = d->dev_nonce;
    int rc = lw_frame_encode(&f, out, LW_JOIN_REQUEST_LEN, len, NULL);
    if (rc < 0)
        return rc;
    if ((rc = lw_cmac_mic(&d->app_key, out, *len - 4, out + *len - 4)) < 0)
        return rc;
    d->last_dev_nonce = d->dev_nonce++;
    return RH_OK;
}

int sim_build_data(sim_dev_t *d, bool confirmed, uint8_t fport, const uint8_t *payload,
                   size_t plen, uint8_t *out, size_t *len)
{
    if (!d->active)
        return RH_EINVAL;
    if (plen > LW_PHY_MAX - LW_DATA_MIN - 1)
        return RH_ESIZE;
    uint8_t enc[LW_PHY_MAX];
    lw_frame_t f = {.mtype = confirmed ? LW_MTYPE_CONFIRMED_UP : LW_MTYPE_UNCONFIRMED_UP};
    f.u.data.devaddr = d->devaddr;
    f.u.data.fctrl.ack = d->ack_next;
    f.u.data.fcnt = (uint16_t)d->fcnt_up;
    f.u.data.has_fport = true;
    f.u.data.fport = fport;
    int rc;
    if (plen) {
        lw_aes128_key_t *k = fport == 0 ? &d->nwk_s_key : &d->app_s_key;
        if ((rc = lw_frm_payload_crypt(k, LW_UPLINK, d->devaddr, d->fcnt_up, payload, plen, enc)) < 0)
            return rc;
        f.u.data.frm_payload = enc;
        f.u.data.frm_payload_len = plen;
    }
    if ((rc = lw_frame_encode(&f, out, LW_PHY_MAX, len, NULL)) < 0)
        return rc;
    if ((rc = lw_data_mic_1_0(&d->nwk_s_key, LW_UPLINK, d->devaddr, d->fcnt_up, out, *len - 4,
                              out + *len - 4)) < 0)
        return rc;
    d->fcnt_up++;
    d->ack_next = false;
    return RH_OK;
}

int sim_accept_join(sim_dev_t *d, const uint8_t *phy, size_t len, sim_rx_t *out)
{
    memset(out, 0, sizeof *out);
    if (!d->cfg.otaa)
        return RH_EINVAL;
    lw_frame_t f;
    int rc = lw_frame_decode(phy, len, &f, NULL);
    if (rc < 0)
        return rc;
    if (f.mtype != LW_MTYPE_JOIN_ACCEPT)
        return RH_EINVAL;
    uint8_t plain[LW_JOIN_ACCEPT_CFLIST_LEN];
    if ((rc = lw_join_accept_decrypt(&d->app_key, phy, len, plain)) < 0)
        return rc;
    uint8_t mic[4];
    if ((rc = lw_cmac_mic(&d->app_key, plain, len - 4, mic)) < 0)
        return rc;
    if (!lw_mic_equal(mic, plain + len - 4))
        return RH_EMIC;
    lw_join_accept_t ja;
    if ((rc = lw_join_accept_decode(plain, len, &ja, NULL)) < 0)
        return rc;
    if ((rc = lw_session_keys_1_0_init(&d->app_key, ja.join_nonce, ja.home_netid,
                                       d->last_dev_nonce, &d->nwk_s_key, &d->app_s_key)) < 0) {
        d->active = false;
        return rc;
    }
    d->active = true;
    d->devaddr = ja.devaddr;
    d->fcnt_up = 0;
    d->fcnt_down = 0;
    d->fcnt_down_seen = false;
    d->ack_next = false;
    out->join_accept = true;
    out->devaddr = ja.devaddr;
    return RH_OK;
}

int sim_accept_data(sim_dev_t *d, const uint8_t *phy, size_t len, sim_rx_t *out)
{
    memset(out, 0, sizeof *out);
    if (!d->active)
        return RH_EINVAL;
    lw_frame_t f;
    int rc = lw_frame_decode(phy, len, &f, NULL);
    if (rc < 0)
        return rc;
    if (f.mtype != LW_MTYPE_UNCONFIRMED_DOWN && f.mtype != LW_MTYPE_CONFIRMED_DOWN)
        return RH_EINVAL;
    const lw_data_t *dd = &f.u.data;
    if (dd->devaddr != d->devaddr)
        return RH_ENOTFOUND;
    uint32_t fcnt = d->fcnt_down_seen ? lw_fcnt_extend(d->fcnt_down, dd->fcnt)
                                      : lw_fcnt_extend(0, dd->fcnt);
    if (d->fcnt_down_seen && fcnt == d->fcnt_down)
        return RH_EEXIST;
    if ((rc = lw_data_mic_verify_1_0(&d->nwk_s_key, LW_DOWNLINK, d->devaddr, fcnt, phy, len)) < 0)
        return rc;
    if (dd->has_fport && dd->frm_payload_len) {
        lw_aes128_key_t *k = dd->fport == 0 ? &d->nwk_s_key : &d->app_s_key;
        if ((rc = lw_frm_payload_crypt(k, LW_DOWNLINK, d->devaddr, fcnt, dd->frm_payload,
                                       dd->frm_payload_len, out->payload)) < 0)
            return rc;
        out->len = dd->frm_payload_len;
    }
    d->fcnt_down = fcnt;
    d->fcnt_down_seen = true;
    out->ack = dd->fctrl.ack;
    out->fpending = dd->fctrl.f_pending;
    out->confirmed = f.mtype == LW_MTYPE_CONFIRMED_DOWN;
    out->has_fport = dd->has_fport;
    out->fport = dd->fport;
    out->fcnt = fcnt;
    if (out->confirmed)
        d->ack_next = true;
    return RH_OK;
}

sim_dl_verdict_t sim_dl_check(region_id_t r, bool join, uint32_t ul_tmst, uint32_t ul_freq_hz,
                              uint8_t ul_dr, const gwmp_txpk_t *t, uint32_t now_tmst,
                              int *window, char *why)
{
    char tmp[96];
    if (!why)
        why = tmp;
    why[0] = '\0';
    *window = 0;
    uint32_t d1 = (join ? 5u : 1u) * 1000000u;
    region_win_t w;
    uint8_t dr;
    if (t->imme) {
        snprintf(why, 96, "txpk.imme set for a class A downlink");
        return SIM_DL_WRONG;
    }
    if (t->tmst == ul_tmst + d1) {
        *window = 1;
        if (region_rx1(r, ul_freq_hz, ul_dr, 0, &w) < 0) {
            snprintf(why, 96, "uplink has no RX1 window");
            *window = 0;
            return SIM_DL_WRONG;
        }
    } else if (t->tmst == ul_tmst + d1 + 1000000u) {
        *window = 2;
        w = region_rx2(r);
    } else {
        snprintf(why, 96, "txpk.tmst is uplink %+.0f us, not RX1/RX2",
                 (double)(int32_t)(t->tmst - ul_tmst));
        return SIM_DL_WRONG;
    }
    if (t->freq_hz != w.freq_hz) {
        snprintf(why, 96, "RX%d frequency %u Hz, expected %u Hz", *window, t->freq_hz, w.freq_hz);
        *window = 0;
        return SIM_DL_WRONG;
    }
    if (region_dr_from_sf_bw(r, t->sf, t->bw_khz, false, &dr) < 0 || dr != w.dr) {
        snprintf(why, 96, "RX%d data rate SF%uBW%u, expected DR%u", *window, t->sf, t->bw_khz,
                 w.dr);
        *window = 0;
        return SIM_DL_WRONG;
    }
    if (!t->ipol) {
        snprintf(why, 96, "txpk.ipol not set");
        *window = 0;
        return SIM_DL_WRONG;
    }
    if ((int32_t)(t->tmst - now_tmst) <= 0) {
        snprintf(why, 96, "PULL_RESP arrived %.0f us after its tmst",
                 (double)(int32_t)(now_tmst - t->tmst));
        return SIM_DL_LATE;
    }
    return SIM_DL_ON_TIME;
}
