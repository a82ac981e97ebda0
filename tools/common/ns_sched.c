/*
 * ns_sched.c — uplink tokens and RX1/RX2 choice (see ns_sched.h).
 */
#include "ns_sched.h"

#include "rh_hex.h"

#include <string.h>

void ns_token_encode(const ns_token_t *t, char out[NS_TOKEN_HEX + 1])
{
    uint8_t b[NS_TOKEN_BYTES];
    b[0] = 1;
    b[1] = t->region;
    rh_put_be64(b + 2, t->gw_eui);
    rh_put_be32(b + 10, t->tmst);
    rh_put_be32(b + 14, t->freq_hz);
    b[18] = t->dr;
    rh_put_be32(b + 19, t->rx_ms);
    rh_hex_encode(b, sizeof b, out, 0);
}

int ns_token_decode(const char *s, ns_token_t *t, const char *what, rh_diag_t *diag)
{
    uint8_t b[NS_TOKEN_BYTES + 1];
    size_t n = 0;
    if (!s)
        return rh_diag_fail(diag, RH_EINVAL, "%s: missing", what);
    int rc = rh_hex_decode(s, strlen(s), b, sizeof b, &n, what, diag);
    if (rc < 0)
        return RH_EINVAL;
    if (n != NS_TOKEN_BYTES || b[0] != 1)
        return rh_diag_fail(diag, RH_EINVAL, "%s: not a token issued by this network server", what);
    t->region = b[1];
    t->gw_eui = rh_get_be64(b + 2);
    t->tmst = rh_get_be32(b + 10);
    t->freq_hz = rh_get_be32(b + 14);
    t->dr = b[18];
    t->rx_ms = rh_get_be32(b + 19);
    return RH_OK;
}

int ns_dl_choose(uint32_t ul_tmst, uint32_t rx_ms, uint32_t now_ms, const ns_dl_offer_t *o,
                 unsigned margin_ms, ns_dl_plan_t *out)
{
    if (!o->rx1_ok && !o->rx2_ok)
        return RH_EINVAL;
    unsigned d1 = o->rx_delay1_s ? o->rx_delay1_s : 1;
    /* Signed distance, modulo 2^32 ms, from now to each window opening. */
    int32_t elapsed = (int32_t)(now_ms - rx_ms);
    int64_t to_rx1 = (int64_t)d1 * 1000 - elapsed;
    int64_t to_rx2 = to_rx1 + 1000;
    if (o->rx1_ok && to_rx1 >= (int64_t)margin_ms) {
        out->window = 1;
        out->tmst = ul_tmst + d1 * 1000000u;
        out->freq_hz = o->rx1_freq_hz;
        out->dr = o->rx1_dr;
        return RH_OK;
    }
    if (o->rx2_ok && to_rx2 >= (int64_t)margin_ms) {
        out->window = 2;
        out->tmst = ul_tmst + (d1 + 1) * 1000000u;
        out->freq_hz = o->rx2_freq_hz;
        out->dr = o->rx2_dr;
        return RH_OK;
    }
    return RH_ETIMEDOUT;
}
