/*
 * lw_frame.h — LoRaWAN PHYPayload codec (TS001 1.0.4 §4, TS001 1.1 §4 and §6.2): decode and
 * encode every MType — join-request, join-accept (encrypted; a separate plaintext codec for
 * after decryption), unconfirmed/confirmed data up/down, rejoin-request types 0/1/2 and
 * proprietary — plus a classifier for the routing policy.
 *
 * Zero-copy and allocation-free: lw_frame_decode() fills an lw_frame_t whose pointers (FOpts,
 * FRMPayload, encrypted join-accept, proprietary payload) point INTO the caller's input buffer,
 * which must outlive the frame. No global state; every function is thread-safe.
 *
 * Byte order: on the wire every multi-byte LoRaWAN field is little-endian (DevAddr, FCnt,
 * JoinEUI, DevEUI, DevNonce, JoinNonce, NetID, RJcount). In lw_frame_t they are host-order
 * integers whose display form is big-endian hex (DevAddr "01020304" = wire 04 03 02 01).
 * The MIC is kept as its 4 wire bytes, in wire order.
 *
 * Strictness: a PHYPayload longer than 255 bytes, shorter than its MType's minimum, a join-accept
 * that is not 17 or 33 bytes, FOptsLen running past the end, FOpts together with FPort 0,
 * an RFU rejoin type and an RFU Major are refused, with one diagnostic sentence naming the
 * field. MHDR RFU bits and the downlink FCtrl RFU bit are kept (not refused) so that the relay
 * can pass frames on byte-for-byte; encode(decode(x)) == x for every x that decodes.
 */
#ifndef LW_FRAME_H
#define LW_FRAME_H

#include "rh_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_PHY_MAX 255u        /* largest PHYPayload the codec accepts, bytes */
#define LW_FOPTS_MAX 15u       /* FCtrl.FOptsLen is 4 bits */
#define LW_MIC_LEN 4u
#define LW_DATA_MIN 12u        /* MHDR(1) FHDR(7) MIC(4) */
#define LW_JOIN_REQUEST_LEN 23u
#define LW_JOIN_ACCEPT_LEN 17u       /* MHDR + 16 encrypted bytes, no CFList */
#define LW_JOIN_ACCEPT_CFLIST_LEN 33u /* MHDR + 32 encrypted bytes, with a 16-byte CFList */
#define LW_REJOIN02_LEN 19u    /* rejoin-request type 0 or 2 */
#define LW_REJOIN1_LEN 24u     /* rejoin-request type 1 */

/* MHDR.MType (3 MSBs of the first byte). */
typedef enum lw_mtype {
    LW_MTYPE_JOIN_REQUEST = 0,
    LW_MTYPE_JOIN_ACCEPT = 1,
    LW_MTYPE_UNCONFIRMED_UP = 2,
    LW_MTYPE_UNCONFIRMED_DOWN = 3,
    LW_MTYPE_CONFIRMED_UP = 4,
    LW_MTYPE_CONFIRMED_DOWN = 5,
    LW_MTYPE_REJOIN_REQUEST = 6, /* LoRaWAN 1.1; RFU in 1.0.x */
    LW_MTYPE_PROPRIETARY = 7,
} lw_mtype_t;

/* FCtrl byte. Uplink:   ADR(7) ADRACKReq(6) ACK(5) ClassB(4)   FOptsLen(3..0).
 *             Downlink: ADR(7) RFU(6)       ACK(5) FPending(4) FOptsLen(3..0).
 * FOptsLen lives in lw_data_t.fopts_len. Decode sets only the bits of the frame's direction;
 * encode reads only those (class_b/adr_ack_req for uplinks, f_pending/rfu for downlinks). */
typedef struct lw_fctrl {
    bool adr;
    bool ack;
    bool adr_ack_req; /* uplink bit 6 */
    bool class_b;     /* uplink bit 4 */
    bool f_pending;   /* downlink bit 4 */
    bool rfu;         /* downlink bit 6 (RFU, kept for byte-exact re-encoding) */
} lw_fctrl_t;

/* Data frame (MType 2..5): FHDR | [FPort | FRMPayload]. */
typedef struct lw_data {
    uint32_t devaddr;           /* host order; wire 4 bytes LE; display 8 hex BE */
    lw_fctrl_t fctrl;
    uint16_t fcnt;              /* the 16 LSBs of the frame counter (wire 2 bytes LE) */
    uint8_t fopts_len;          /* 0..15 */
    const uint8_t *fopts;       /* fopts_len bytes (MAC commands; encrypted in 1.1) or NULL */
    bool has_fport;
    uint8_t fport;              /* valid when has_fport */
    const uint8_t *frm_payload; /* frm_payload_len bytes (encrypted as on the wire) or NULL */
    size_t frm_payload_len;     /* 0 when !has_fport; may be 0 with an FPort */
} lw_data_t;

/* Join-request (MType 0): JoinEUI | DevEUI | DevNonce. */
typedef struct lw_join_request {
    uint64_t join_eui; /* host order; wire 8 bytes LE; display 16 hex BE */
    uint64_t dev_eui;  /* same */
    uint16_t dev_nonce; /* wire 2 bytes LE */
} lw_join_request_t;

/* Join-accept (MType 1) as received: the encrypted 16 or 32 bytes after MHDR (the MIC is inside
 * the encryption). Use lw_join_accept_decrypt() (lw_crypto.h) then lw_join_accept_decode(). */
typedef struct lw_join_accept_enc {
    const uint8_t *payload; /* 16 or 32 bytes, pointing into the input */
    size_t len;
} lw_join_accept_enc_t;

/* Rejoin-request (MType 6). Type 0 and 2: RejoinType | NetID | DevEUI | RJcount0.
 * Type 1: RejoinType | JoinEUI | DevEUI | RJcount1. */
typedef struct lw_rejoin {
    uint8_t type;      /* 0, 1 or 2 */
    uint32_t netid;    /* types 0/2; 24 bits; wire 3 bytes LE; display 6 hex BE */
    uint64_t join_eui; /* type 1; wire LE */
    uint64_t dev_eui;  /* wire LE */
    uint16_t rj_count; /* RJcount0 (types 0/2) or RJcount1 (type 1); wire 2 bytes LE */
} lw_rejoin_t;

/* Proprietary (MType 7): everything after MHDR, opaque (no MIC is split off: its format is not
 * defined by TS001). */
typedef struct lw_proprietary {
    const uint8_t *payload;
    size_t len; /* 0..254 */
} lw_proprietary_t;

/* A decoded PHYPayload. Pointers point into the decoded buffer. */
typedef struct lw_frame {
    lw_mtype_t mtype;
    uint8_t major;    /* MHDR bits 1..0; only 0 (LoRaWAN R1) is accepted */
    uint8_t mhdr_rfu; /* MHDR bits 4..2, kept as received (0 when encoding new frames) */
    union {
        lw_data_t data;                 /* MType 2..5 */
        lw_join_request_t join_request; /* MType 0 */
        lw_join_accept_enc_t join_accept; /* MType 1 */
        lw_rejoin_t rejoin;             /* MType 6 */
        lw_proprietary_t proprietary;   /* MType 7 */
    } u;
    uint8_t mic[4]; /* wire order; unused for join-accept (encrypted) and proprietary */
} lw_frame_t;

/* Decodes a PHYPayload of `len` bytes (wire format) into *f. Zero-copy: f's pointers point into
 * `phy`. Errors (diag names the field):
 *   RH_ESIZE    — len 0, > 255, below the MType's minimum, a join-accept not of 17/33 bytes, a
 *                 join-request/rejoin not of its exact size, FOptsLen running past the end;
 *   RH_EVERSION — MHDR.Major is RFU (1..3);
 *   RH_EINVAL   — FOpts present together with FPort 0; rejoin type RFU (3..255). */
int lw_frame_decode(const uint8_t *phy, size_t len, lw_frame_t *f, rh_diag_t *diag);

/* Encodes *f into out (capacity `cap` bytes); *len gets the PHYPayload length. Writes f->mic as
 * the last 4 bytes (data, join-request, rejoin): to set a MIC on a new frame, encode, compute
 * the MIC over out[0 .. *len-4) (lw_crypto.h) and store it at out + *len - 4.
 * Errors: RH_ERANGE (cap too small), RH_ESIZE (the frame would exceed 255 bytes, fopts_len > 15,
 * a join-accept payload not 16/32 bytes), RH_EVERSION (major != 0), RH_EINVAL (FOpts with
 * FPort 0, FRMPayload without FPort, NULL pointer with a non-zero length, rejoin type > 2,
 * NetID > 24 bits, unknown MType). */
int lw_frame_encode(const lw_frame_t *f, uint8_t *out, size_t cap, size_t *len, rh_diag_t *diag);

/* What a frame is, for the routing policy (DESIGN.md §1 message classes). */
typedef enum lw_class {
    LW_CLASS_UP_JOIN_REQUEST = 1,   /* join-request */
    LW_CLASS_UP_REJOIN_REQUEST,     /* rejoin-request 0/1/2 (policy: treat as join-request) */
    LW_CLASS_UP_MAC_DATA,           /* data up with FPort 0, or without FPort (FOpts only/empty) */
    LW_CLASS_UP_APP_DATA,           /* data up with FPort 1..255 */
    LW_CLASS_DOWN_JOIN_ACCEPT,      /* join-accept */
    LW_CLASS_DOWN_MAC_DATA,         /* data down with FPort 0 or without FPort */
    LW_CLASS_DOWN_APP_DATA,         /* data down with FPort 1..255 */
    LW_CLASS_PROPRIETARY,           /* MType 7: direction unknown, no policy class */
} lw_class_t;

/* Class of a decoded frame (a pure function of mtype and FPort). */
lw_class_t lw_frame_class(const lw_frame_t *f);

/* Short static name of a class ("uplink application data", ...) and of an MType
 * ("ConfirmedDataUp", ...). Never NULL. */
const char *lw_class_name(lw_class_t c);
const char *lw_mtype_name(lw_mtype_t m);

/* Whether an MType travels uplink (join-request, data up, rejoin) — false for downlinks and
 * proprietary. */
static inline bool lw_mtype_is_uplink(lw_mtype_t m)
{
    return m == LW_MTYPE_JOIN_REQUEST || m == LW_MTYPE_UNCONFIRMED_UP ||
           m == LW_MTYPE_CONFIRMED_UP || m == LW_MTYPE_REJOIN_REQUEST;
}
static inline bool lw_mtype_is_data(lw_mtype_t m)
{
    return m >= LW_MTYPE_UNCONFIRMED_UP && m <= LW_MTYPE_CONFIRMED_DOWN;
}

/* The 32-bit frame counter whose 16 LSBs are `fcnt16` and that is closest at or after `last32`
 * (the last counter value seen): TS001 §4.3.1.5 counter reconstruction. Pure. */
uint32_t lw_fcnt_extend(uint32_t last32, uint16_t fcnt16);

/* Join-accept after decryption (TS001 1.0.4 §6.2.5, 1.1 §6.2.3):
 * JoinNonce(3) | Home_NetID(3) | DevAddr(4) | DLSettings(1) | RxDelay(1) | [CFList(16)] | MIC(4). */
typedef struct lw_join_accept {
    uint32_t join_nonce;  /* 24 bits (AppNonce in 1.0); wire 3 bytes LE */
    uint32_t home_netid;  /* 24 bits; wire 3 bytes LE; display 6 hex BE */
    uint32_t devaddr;     /* host order; wire LE */
    uint8_t dl_settings;  /* OptNeg(7) RX1DRoffset(6..4) RX2DataRate(3..0) */
    uint8_t rx_delay;
    bool has_cflist;
    uint8_t cflist[16];   /* as on the wire */
    uint8_t mic[4];       /* wire order */
} lw_join_accept_t;

/* Parses a DECRYPTED join-accept PHYPayload (MHDR | fields | MIC; 17 or 33 bytes).
 * Errors: RH_ESIZE (other lengths), RH_EINVAL (MHDR is not a join-accept), RH_EVERSION (RFU Major). */
int lw_join_accept_decode(const uint8_t *plain, size_t len, lw_join_accept_t *ja, rh_diag_t *diag);

/* Writes the plaintext join-accept PHYPayload (MHDR 0x20 | fields | ja->mic) into out (capacity
 * cap >= 17, or 33 with a CFList); *len gets 17 or 33. Encrypt it with lw_join_accept_encrypt().
 * Errors: RH_ERANGE (cap), RH_EINVAL (join_nonce or home_netid wider than 24 bits). */
int lw_join_accept_encode(const lw_join_accept_t *ja, uint8_t *out, size_t cap, size_t *len,
                          rh_diag_t *diag);

#endif
