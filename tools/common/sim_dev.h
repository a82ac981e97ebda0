/*
 * sim_dev.h — the device model of roamsim: a LoRaWAN 1.0.x class A end device (ABP or OTAA)
 * that builds real uplink frames (join-request with a fresh DevNonce, data up with FCntUp,
 * encrypted FRMPayload, MIC) and checks the downlinks it receives (join-accept decryption and
 * MIC, session key derivation; data down DevAddr, FCntDown, MIC, decryption), plus the check of
 * a downlink's transmit parameters against the class A receive windows of its uplink.
 *
 * Spec: TS001 1.0.4 §4 (frames), §6.2 (OTAA), §3.3 (RX1 = uplink + RECEIVE_DELAY1, or
 * JOIN_ACCEPT_DELAY1 for join-accepts; RX2 one second later on the RX2 frequency/DR), RP002
 * (region.h). Pure: no sockets and no clocks (times are passed in); one thread per device.
 */
#ifndef SIM_DEV_H
#define SIM_DEV_H

#include "devcfg.h"
#include "gwmp.h"
#include "lw_crypto.h"
#include "lw_frame.h"
#include "region.h"
#include "rh_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sim_dev {
    devcfg_t cfg;
    lw_aes128_key_t app_key;   /* OTAA */
    lw_aes128_key_t nwk_s_key, app_s_key;
    bool active;               /* has a session (ABP, or OTAA after a join-accept) */
    uint32_t devaddr;
    uint32_t fcnt_up;          /* next FCntUp */
    bool fcnt_down_seen;
    uint32_t fcnt_down;        /* last accepted FCntDown */
    uint16_t dev_nonce;        /* next DevNonce (a counter, as in 1.0.4) */
    uint16_t last_dev_nonce;   /* DevNonce of the last join-request */
    bool ack_next;             /* a confirmed downlink was received: set ACK in the next uplink */
} sim_dev_t;

/* Sets up a device from its configuration (ABP: session active). dev_nonce_start: first
 * DevNonce (OTAA). Errors: RH_ECRYPTO, RH_ENOMEM. */
int sim_dev_init(sim_dev_t *d, const devcfg_t *cfg, uint16_t dev_nonce_start);
void sim_dev_fini(sim_dev_t *d); /* NULL is a no-op */

/* A join-request PHYPayload (23 bytes) with the next DevNonce into out (>= 23 bytes).
 * Errors: RH_EINVAL (ABP device), RH_ECRYPTO. */
int sim_build_join(sim_dev_t *d, uint8_t *out, size_t *len);

/* A data uplink (unconfirmed or confirmed) with FPort `fport` (0 = MAC, NwkSKey) and `plen`
 * payload bytes, using and incrementing FCntUp; sets FCtrl.ACK when a confirmed downlink is to
 * be acknowledged. out must hold LW_PHY_MAX bytes.
 * Errors: RH_EINVAL (no session), RH_ESIZE (frame > 255 bytes), RH_ECRYPTO. */
int sim_build_data(sim_dev_t *d, bool confirmed, uint8_t fport, const uint8_t *payload,
                   size_t plen, uint8_t *out, size_t *len);

/* What a device made of a downlink. */
typedef struct sim_rx {
    bool join_accept;
    uint32_t devaddr;          /* join-accept: the assigned DevAddr */
    bool ack, confirmed, fpending, has_fport;
    uint8_t fport;
    uint32_t fcnt;
    uint8_t payload[LW_PHY_MAX];
    size_t len;
} sim_rx_t;

/* Processes a join-accept PHYPayload: decrypts with AppKey, checks the MIC, derives the session
 * keys from the last join-request's DevNonce and activates the session (counters reset).
 * Errors: RH_EINVAL/RH_ESIZE (not a join-accept), RH_EMIC, RH_ECRYPTO. */
int sim_accept_join(sim_dev_t *d, const uint8_t *phy, size_t len, sim_rx_t *out);

/* Processes a data downlink: DevAddr must be the device's, FCntDown greater than the last one
 * (32-bit reconstruction), MIC valid; FRMPayload decrypted. Records the counter and, for a
 * confirmed downlink, sets ack_next.
 * Errors: RH_EINVAL (not a data downlink, no session), RH_ENOTFOUND (another DevAddr),
 * RH_EEXIST (counter replayed), RH_EMIC, RH_ECRYPTO. */
int sim_accept_data(sim_dev_t *d, const uint8_t *phy, size_t len, sim_rx_t *out);

/* Verdict on a downlink's timing and radio parameters. */
typedef enum sim_dl_verdict {
    SIM_DL_ON_TIME = 0, /* right RX1/RX2 tmst, frequency and data rate, arrived before tmst */
    SIM_DL_LATE = 1,    /* right window, but the PULL_RESP arrived at or after its tmst */
    SIM_DL_WRONG = 2,   /* tmst is neither window, or wrong frequency / data rate / polarity */
} sim_dl_verdict_t;

/* Checks txpk against the uplink (gateway tmst ul_tmst, frequency, DR) in region r: RX1 at
 * ul_tmst + (join ? 5 : 1) s on region_rx1(ul_freq, ul_dr, offset 0), RX2 one second later on
 * region_rx2; ipol must be set and imme unset. now_tmst: the gateway's counter when the
 * PULL_RESP arrived. *window gets 1 or 2 (0 when wrong); why (may be NULL, 96 bytes) says what
 * was wrong. */
sim_dl_verdict_t sim_dl_check(region_id_t r, bool join, uint32_t ul_tmst, uint32_t ul_freq_hz,
                              uint8_t ul_dr, const gwmp_txpk_t *txpk, uint32_t now_tmst,
                              int *window, char *why);

#endif
