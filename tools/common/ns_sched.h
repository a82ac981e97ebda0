/*
 * ns_sched.h — uplink context tokens and class A downlink scheduling for roamns.
 *
 * Token: what roamns, as forwarding network (fNS, TS002 1.0 §11.3 stateless), hands out as
 * ULMetaData.FNSULToken and GWInfo[].ULToken so that a downlink coming back (PRStartAns or
 * XmitDataReq with DLMetaData echoing them) can be sent through the gateway that heard the
 * uplink, at the right gateway time. It is the hex (lower case, 46 digits) of a fixed 23-byte
 * big-endian struct:
 *   version(1)=1 | region(1) | gateway EUI(8) | uplink tmst(4, µs) | uplink freq(4, Hz) |
 *   uplink DR(1) | local receive time(4, ms of roamns's monotonic clock, mod 2^32)
 * Opaque to everyone else (TS002 says so); roamns refuses tokens of another version or length.
 *
 * Scheduling: RX1 opens at uplink tmst + RXDelay1 s, RX2 one second later (TS001 1.0.4 §3.3).
 * A window is usable when the downlink can reach the gateway `margin_ms` before it opens,
 * judged on the local clock from the uplink's local receive time.
 * All functions are pure and thread-safe.
 */
#ifndef NS_SCHED_H
#define NS_SCHED_H

#include "rh_err.h"

#include <stdbool.h>
#include <stdint.h>

#define NS_TOKEN_BYTES 23u
#define NS_TOKEN_HEX (2u * NS_TOKEN_BYTES) /* characters, without NUL */

typedef struct ns_token {
    uint8_t region;    /* region_id_t */
    uint64_t gw_eui;
    uint32_t tmst;     /* gateway µs counter of the uplink */
    uint32_t freq_hz;  /* uplink frequency */
    uint8_t dr;        /* uplink data rate index */
    uint32_t rx_ms;    /* local monotonic ms (mod 2^32) when the uplink arrived */
} ns_token_t;

/* Hex text of the token into out (NS_TOKEN_HEX + 1 bytes). */
void ns_token_encode(const ns_token_t *t, char out[NS_TOKEN_HEX + 1]);

/* Parses a token (either hex case, optional "0x"). Errors: RH_EINVAL (not hex, wrong length,
 * unknown version) with diag naming `what` ("FNSULToken"). */
int ns_token_decode(const char *s, ns_token_t *t, const char *what, rh_diag_t *diag);

/* One class A downlink window offer (from DLMetaData or local computation). */
typedef struct ns_dl_offer {
    bool rx1_ok, rx2_ok;     /* which windows the sender allows */
    uint32_t rx1_freq_hz, rx2_freq_hz;
    uint8_t rx1_dr, rx2_dr;
    unsigned rx_delay1_s;    /* RX1 delay (1 for data, 5 for join-accept; 0 is read as 1) */
} ns_dl_offer_t;

/* The chosen window. */
typedef struct ns_dl_plan {
    int window;        /* 1 or 2 */
    uint32_t tmst;     /* gateway µs counter to transmit at */
    uint32_t freq_hz;
    uint8_t dr;
} ns_dl_plan_t;

/* Chooses RX1 if it opens at least margin_ms after now_ms (local monotonic ms mod 2^32), else
 * RX2 under the same rule. ul_tmst/rx_ms: the uplink's gateway tmst and local receive time.
 * Errors: RH_ETIMEDOUT (both usable windows are too close or past), RH_EINVAL (no window
 * offered). */
int ns_dl_choose(uint32_t ul_tmst, uint32_t rx_ms, uint32_t now_ms, const ns_dl_offer_t *offer,
                 unsigned margin_ms, ns_dl_plan_t *out);

#endif
