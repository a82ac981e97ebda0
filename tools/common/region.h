/*
 * region.h — the LoRaWAN Regional Parameters the tools need (RP002-1.0.3 §2.4 EU863-870 and
 * §2.5 US902-928): data rate tables (DR <-> spreading factor / bandwidth), the RX1 and RX2
 * downlink parameters for an uplink, receive delays and default downlink power.
 *
 * EU868: DR0..DR5 = SF12..SF7 BW125, DR6 = SF7 BW250 (DR7 FSK unsupported); RX1 frequency = the
 *        uplink frequency, RX1 DR = max(0, uplink DR - RX1DROffset) (offset 0..5); RX2 869.525 MHz
 *        DR0; downlink power 14 dBm (27 dBm on the 869.4-869.65 MHz RX2 sub-band).
 * US915: uplink DR0..DR3 = SF10..SF7 BW125, DR4 = SF8 BW500; downlink DR8..DR13 = SF12..SF7
 *        BW500; RX1 channel = uplink channel mod 8 at 923.3 + 0.6 * ch MHz, RX1 DR from the
 *        RP002 table (offset 0..3); RX2 923.3 MHz DR8; downlink power 20 dBm.
 * RECEIVE_DELAY1 = 1 s, RECEIVE_DELAY2 = RECEIVE_DELAY1 + 1 s, JOIN_ACCEPT_DELAY1 = 5 s,
 * JOIN_ACCEPT_DELAY2 = 6 s (RP002 §2.x.2 default settings for both regions).
 * Frequencies are integer Hz. All functions are pure and thread-safe.
 */
#ifndef TOOLS_REGION_H
#define TOOLS_REGION_H

#include "rh_err.h"

#include <stdbool.h>
#include <stdint.h>

#define REGION_RECEIVE_DELAY1_S 1u
#define REGION_JOIN_ACCEPT_DELAY1_S 5u

typedef enum region_id { REGION_EU868 = 0, REGION_US915 = 1 } region_id_t;

/* A downlink window: frequency (Hz) and data rate index. */
typedef struct region_win {
    uint32_t freq_hz;
    uint8_t dr;
} region_win_t;

/* "EU868" / "US915" (RP002 names; "US902" accepted). Errors: RH_EINVAL for other regions. */
int region_parse(const char *name, region_id_t *r);
/* RP002 common name ("EU868", "US915"). */
const char *region_name(region_id_t r);

/* Data rate index of a LoRa (sf, bw kHz) in the uplink or downlink table.
 * Errors: RH_EINVAL when the combination has no DR in that direction. */
int region_dr_from_sf_bw(region_id_t r, uint8_t sf, uint16_t bw_khz, bool uplink, uint8_t *dr);

/* Spreading factor and bandwidth (kHz) of a data rate index. Errors: RH_EINVAL (undefined or FSK). */
int region_dr_to_sf_bw(region_id_t r, uint8_t dr, uint8_t *sf, uint16_t *bw_khz);

/* RX1 window for an uplink on ul_freq_hz at data rate ul_dr with RX1DROffset `offset`.
 * Errors: RH_EINVAL (DR not an uplink DR, offset out of range, US915 frequency not on the
 * channel grid). */
int region_rx1(region_id_t r, uint32_t ul_freq_hz, uint8_t ul_dr, uint8_t offset,
               region_win_t *out);

/* Default RX2 window. */
region_win_t region_rx2(region_id_t r);

/* Default downlink transmit power in dBm for a frequency. */
int region_dl_power(region_id_t r, uint32_t freq_hz);

#endif
