/*
 * ns_core.h — the device side of roamns, a minimal LoRaWAN 1.0.x class A network server:
 * device registry, embedded join server, data uplink verification and decryption, the
 * downlink queue and downlink frame building, and the JSON line written per application
 * uplink. No sockets and no clocks: roamns (tools/roamns) drives it from its event loop, and the
 * unit tests drive it directly.
 *
 * Spec: TS001 1.0.4 — §4.3.1.5 frame counters (32-bit, the 16 LSBs on air, reconstructed with
 * lw_fcnt_extend), §4.4 MIC, §4.3.3 FRMPayload encryption, §6.2 OTAA (join-request MIC with
 * AppKey, DevNonce never reused, join-accept encrypted with AppKey, NwkSKey/AppSKey derivation),
 * §3.3 class A receive windows (the caller schedules them: ns_sched.h).
 *
 * Invariants:
 *  - a device is found by DevEUI (unique) and by DevAddr (several devices may share a DevAddr;
 *    the MIC decides, TS001 §6.1.1);
 *  - an accepted uplink counter is strictly greater than the last accepted one (replays, and
 *    second copies from other gateways after deduplication, are refused with RH_EEXIST);
 *  - a DevNonce is accepted once per device (RH_EEXIST afterwards), a JoinNonce is never reused;
 *  - OTAA DevAddrs come from the network's own DevAddr block(s) and are unique in the registry;
 *  - downlink counters increase by one per built downlink.
 * Keys live in lw_aes128_key_t contexts owned by each device (one thread: the event loop).
 */
#ifndef NS_CORE_H
#define NS_CORE_H

#include "devcfg.h"
#include "lw_crypto.h"
#include "lw_frame.h"
#include "lw_netid.h"
#include "rh_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_MAX_BLOCKS 8
#define NS_MAX_JOIN_EUIS 16
#define NS_MAX_APP_PAYLOAD 242u /* largest FRMPayload roamns queues (EU868 DR4..7 N) */
#define NS_MAX_QUEUE 64u        /* queued application downlinks per device */

/* A JoinEUI prefix: the first `len` bits of `value` (len 64 = one JoinEUI). */
typedef struct ns_eui_prefix {
    uint64_t value;
    uint8_t len;
} ns_eui_prefix_t;

/* Parses "70B3D57ED0000000" or "70B3D57ED0000000/36". Errors: RH_EINVAL. */
int ns_eui_prefix_parse(const char *s, ns_eui_prefix_t *p, rh_diag_t *diag);

typedef struct ns_opts {
    uint32_t net_id;                          /* 24 bits */
    lw_devaddr_prefix_t blocks[NS_MAX_BLOCKS]; /* own DevAddr blocks (OTAA addresses come from
                                                  blocks[0], then the next) */
    size_t n_blocks;
    ns_eui_prefix_t join_euis[NS_MAX_JOIN_EUIS]; /* JoinEUIs served by the embedded JS */
    size_t n_join_euis;
    uint8_t rx1_dr_offset;                    /* join-accept DLSettings */
    uint8_t rx2_dr;
    uint8_t rx_delay;                         /* join-accept RxDelay (s), 1 by default */
} ns_opts_t;

typedef struct ns_dl_item {
    struct ns_dl_item *next;
    uint8_t fport;       /* 1..223 */
    bool confirmed;
    uint8_t len;
    uint8_t data[NS_MAX_APP_PAYLOAD];
} ns_dl_item_t;

typedef struct ns_device {
    devcfg_t cfg;              /* as configured (keys: secrets) */
    lw_aes128_key_t app_key;   /* OTAA */
    bool active;               /* has a session (ABP always; OTAA after a join) */
    uint32_t devaddr;
    lw_aes128_key_t nwk_s_key, app_s_key;
    bool fcnt_seen;            /* an uplink was accepted in this session */
    uint32_t fcnt_up;          /* last accepted FCntUp, or the lowest acceptable when !fcnt_seen */
    uint32_t fcnt_down;        /* next FCntDown */
    uint16_t *nonces;          /* DevNonces used, sorted */
    size_t n_nonces, cap_nonces;
    uint32_t join_nonce;       /* next JoinNonce (24 bits) */
    ns_dl_item_t *dlq, *dlq_tail;
    size_t dlq_len;
    struct ns_device *addr_next; /* next device with the same DevAddr */
    uint64_t uplinks, joins;
} ns_device_t;

typedef struct ns_registry ns_registry_t;

/* Builds the registry from a device list (copied). ABP sessions start active.
 * Errors: RH_EINVAL (no DevAddr block, opts out of range, an ABP DevAddr shared with another
 * ABP device), RH_ECRYPTO, RH_ENOMEM. */
int ns_registry_new(const ns_opts_t *opts, const devcfg_t *devs, size_t n, ns_registry_t **out,
                    rh_diag_t *diag);
void ns_registry_free(ns_registry_t *r); /* NULL is a no-op */

const ns_opts_t *ns_registry_opts(const ns_registry_t *r);
size_t ns_registry_count(const ns_registry_t *r);
ns_device_t *ns_registry_device(ns_registry_t *r, size_t i);

/* Lookups (NULL when not found). ns_find_addr returns the first device of the DevAddr chain. */
ns_device_t *ns_find_eui(ns_registry_t *r, uint64_t dev_eui);
ns_device_t *ns_find_addr(ns_registry_t *r, uint32_t devaddr);

/* Whether a DevAddr lies in one of the network's own blocks / a JoinEUI is served here. */
bool ns_owns_devaddr(const ns_registry_t *r, uint32_t devaddr);
bool ns_serves_join_eui(const ns_registry_t *r, uint64_t join_eui);

/* ---- join ---- */

typedef struct ns_join_result {
    ns_device_t *dev;
    uint64_t dev_eui, join_eui;
    uint16_t dev_nonce;
    uint32_t devaddr;
    uint8_t accept[LW_JOIN_ACCEPT_LEN]; /* encrypted join-accept PHYPayload */
    size_t accept_len;
} ns_join_result_t;

/* Runs the embedded join server on a join-request PHYPayload: checks the device (DevEUI known,
 * OTAA, its JoinEUI), the MIC (AppKey) and the DevNonce (never used before by this device),
 * assigns a DevAddr (kept across re-joins), derives NwkSKey/AppSKey and activates the new
 * session (counters reset), and builds the encrypted join-accept. out->dev_eui/join_eui are set
 * whenever the frame decoded.
 * Errors: RH_EINVAL/RH_ESIZE (not a join-request), RH_ENOTFOUND (unknown DevEUI, ABP device or
 * JoinEUI mismatch), RH_EMIC, RH_EEXIST (DevNonce replayed), RH_EFULL (no free DevAddr),
 * RH_ECRYPTO, RH_ENOMEM. diag says which. */
int ns_join(ns_registry_t *r, const uint8_t *phy, size_t len, ns_join_result_t *out,
            rh_diag_t *diag);

/* ---- data uplinks ---- */

typedef struct ns_up {
    ns_device_t *dev;
    uint32_t devaddr;
    uint32_t fcnt;          /* full 32-bit FCntUp */
    bool confirmed;
    bool ack;               /* the device acknowledges a confirmed downlink */
    bool adr;
    uint8_t fopts_len;
    bool has_fport;
    uint8_t fport;
    uint8_t payload[LW_PHY_MAX]; /* decrypted FRMPayload */
    size_t payload_len;
} ns_up_t;

/* Verifies and decrypts a data uplink PHYPayload: finds the device by DevAddr (trying every
 * device sharing it, by MIC), reconstructs the 32-bit FCnt, refuses replays, decrypts FRMPayload
 * (AppSKey for FPort 1..255, NwkSKey for FPort 0) and records the counter.
 * Errors: RH_EINVAL/RH_ESIZE/RH_EVERSION (not a data uplink or malformed), RH_ENOTFOUND (no
 * active device has that DevAddr), RH_EMIC (no device's MIC matches), RH_EEXIST (MIC valid for a
 * counter at or below the last accepted one: replay), RH_ECRYPTO. */
int ns_data_up(ns_registry_t *r, const uint8_t *phy, size_t len, ns_up_t *out, rh_diag_t *diag);

/* ---- downlinks ---- */

/* Queues an application downlink. Errors: RH_EINVAL (fport 0 or > 223), RH_ERANGE (len > 242),
 * RH_EFULL (NS_MAX_QUEUE items queued), RH_ENOMEM. */
int ns_enqueue(ns_device_t *d, uint8_t fport, const uint8_t *data, size_t len, bool confirmed);

typedef struct ns_dl_frame {
    uint8_t phy[LW_PHY_MAX];
    size_t len;
    uint32_t fcnt;
    bool ack, confirmed, has_fport;
    uint8_t fport;
    size_t app_len;
} ns_dl_frame_t;

/* Builds the class A downlink answering an uplink of d: the ACK bit when `ack`, plus the head of
 * the queue (removed) when it fits `max_payload` bytes (items larger than that are dropped with
 * RH_ERANGE reported through *dropped), FPending when more items remain. *built is false when
 * there is nothing to send (no ACK and an empty queue). Uses and increments FCntDown.
 * Errors: RH_EINVAL (device has no session), RH_ECRYPTO. */
int ns_build_downlink(ns_device_t *d, bool ack, size_t max_payload, ns_dl_frame_t *out,
                      bool *built, size_t *dropped);

/* Largest FRMPayload (N) for a downlink data rate (EU868 51/115/222, US915 53/129/222). */
size_t ns_max_payload(int region, uint8_t dr);

/* ---- output ---- */

typedef struct ns_rxinfo {
    char id[17];        /* gateway ID as hex (8 bytes locally, 4 or 8 via roaming) */
    int rssi;
    double snr;
    bool has_rssi, has_snr; /* false when unknown (a hub may strip them by policy): null */
    bool has_loc;
    double lat, lon;
} ns_rxinfo_t;

/* The JSON line for an application uplink (no trailing newline), malloc'd (free()):
 * {"time","dev_eui","dev_addr","fcnt","fport","payload_hex","confirmed","gateways":[{"id",
 * "rssi","snr","lat","lon"}],"via":"local"|"roaming","forwarder_net_id"}. fport is null without
 * FPort; lat/lon are null when unknown; forwarder_net_id is null for local uplinks.
 * real_ms: wall-clock time (ms since the epoch). NULL on allocation failure. */
char *ns_uplink_json(const ns_up_t *u, const ns_rxinfo_t *gw, size_t ngw, bool roaming,
                     const char *forwarder_net_id, int64_t real_ms);

#endif
