/*
 * region.c — EU868 / US915 regional parameters (see region.h; RP002-1.0.3 §2.4, §2.5).
 */
#include "region.h"

#include <string.h>
#include <strings.h>

typedef struct dr_def {
    uint8_t sf;
    uint16_t bw;
    bool up, down;
} dr_def_t;

/* Index = DR. sf 0 = undefined/FSK. */
static const dr_def_t eu868_dr[16] = {
    {12, 125, true, true}, {11, 125, true, true}, {10, 125, true, true}, {9, 125, true, true},
    {8, 125, true, true},  {7, 125, true, true},  {7, 250, true, true},
};
static const dr_def_t us915_dr[16] = {
    {10, 125, true, false}, {9, 125, true, false}, {8, 125, true, false}, {7, 125, true, false},
    {8, 500, true, false},  {0, 0, false, false},  {0, 0, false, false},  {0, 0, false, false},
    {12, 500, false, true}, {11, 500, false, true}, {10, 500, false, true}, {9, 500, false, true},
    {8, 500, false, true},  {7, 500, false, true},
};
/* RP002 Table "US915 downlink RX1 data rate mapping": [uplink DR][offset]. */
static const uint8_t us915_rx1[5][4] = {
    {10, 9, 8, 8}, {11, 10, 9, 8}, {12, 11, 10, 9}, {13, 12, 11, 10}, {13, 13, 12, 11},
};

static const dr_def_t *table(region_id_t r)
{
    return r == REGION_US915 ? us915_dr : eu868_dr;
}

int region_parse(const char *name, region_id_t *r)
{
    if (!name)
        return RH_EINVAL;
    if (strcasecmp(name, "EU868") == 0 || strcasecmp(name, "EU863-870") == 0) {
        *r = REGION_EU868;
        return RH_OK;
    }
    if (strcasecmp(name, "US915") == 0 || strcasecmp(name, "US902") == 0 ||
        strcasecmp(name, "US902-928") == 0) {
        *r = REGION_US915;
        return RH_OK;
    }
    return RH_EINVAL;
}

const char *region_name(region_id_t r) { return r == REGION_US915 ? "US915" : "EU868"; }

int region_dr_from_sf_bw(region_id_t r, uint8_t sf, uint16_t bw_khz, bool uplink, uint8_t *dr)
{
    const dr_def_t *t = table(r);
    for (unsigned i = 0; i < 16; i++) {
        if (t[i].sf == sf && t[i].bw == bw_khz && (uplink ? t[i].up : t[i].down)) {
            *dr = (uint8_t)i;
            return RH_OK;
        }
    }
    return RH_EINVAL;
}

int region_dr_to_sf_bw(region_id_t r, uint8_t dr, uint8_t *sf, uint16_t *bw_khz)
{
    if (dr >= 16 || table(r)[dr].sf == 0)
        return RH_EINVAL;
    *sf = table(r)[dr].sf;
    *bw_khz = table(r)[dr].bw;
    return RH_OK;
}

int region_rx1(region_id_t r, uint32_t ul_freq_hz, uint8_t ul_dr, uint8_t offset,
               region_win_t *out)
{
    if (r == REGION_EU868) {
        if (ul_dr > 6 || offset > 5)
            return RH_EINVAL;
        out->freq_hz = ul_freq_hz;
        out->dr = ul_dr > offset ? (uint8_t)(ul_dr - offset) : 0;
        return RH_OK;
    }
    /* US915 */
    if (ul_dr > 4 || offset > 3)
        return RH_EINVAL;
    unsigned ch;
    if (ul_dr == 4) { /* 500 kHz channels 64..71 at 903.0 + 1.6 * (ch - 64) MHz */
        if (ul_freq_hz < 903000000u || (ul_freq_hz - 903000000u) % 1600000u)
            return RH_EINVAL;
        ch = 64 + (ul_freq_hz - 903000000u) / 1600000u;
        if (ch > 71)
            return RH_EINVAL;
    } else { /* 125 kHz channels 0..63 at 902.3 + 0.2 * ch MHz */
        if (ul_freq_hz < 902300000u || (ul_freq_hz - 902300000u) % 200000u)
            return RH_EINVAL;
        ch = (ul_freq_hz - 902300000u) / 200000u;
        if (ch > 63)
            return RH_EINVAL;
    }
    out->freq_hz = 923300000u + (ch % 8) * 600000u;
    out->dr = us915_rx1[ul_dr][offset];
    return RH_OK;
}

region_win_t region_rx2(region_id_t r)
{
    if (r == REGION_US915)
        return (region_win_t){923300000u, 8};
    return (region_win_t){869525000u, 0};
}

int region_dl_power(region_id_t r, uint32_t freq_hz)
{
    if (r == REGION_US915)
        return 20;
    if (freq_hz >= 869400000u && freq_hz <= 869650000u)
        return 27;
    return 14;
}
