/*
 * lw_netid.h — NetID and DevAddr arithmetic (LoRaWAN Backend Interfaces TS002 1.0 §13, with the
 * LoRa Alliance errata "NwkID length fix Type 3 and Type 4 NetIDs": type 3 NwkID = 11 bits,
 * type 4 NwkID = 12 bits; as ChirpStack lrwn/src/netid.rs and TTS pkg/types/devaddr.go).
 *
 * Representation: a NetID is a 24-bit value in the low bits of a uint32_t (display: 6 hex digits,
 * big-endian, e.g. "000505"); a DevAddr is a host-order uint32_t (display: 8 hex digits,
 * big-endian, e.g. "0A000000"; on the LoRaWAN wire it is little-endian — see lw_frame.h).
 *
 * NetID layout: Type (3 MSBs) | RFU | ID (6 bits for types 0-1, 9 for type 2, 21 for 3-7).
 * DevAddr layout: type prefix (type N = N one-bits then a zero) | NwkID (the NwkID-width LSBs of
 * the ID) | NwkAddr. Prefix length = (type + 1) + NwkID bits: /7 /8 /12 /15 /17 /19 /22 /25.
 * All functions are pure (no state, thread-safe).
 */
#ifndef LW_NETID_H
#define LW_NETID_H

#include "rh_err.h"

#include <stddef.h>
#include <stdint.h>

/* A DevAddr prefix: `len` leading bits of `value` (bits past len are zero). */
typedef struct lw_devaddr_prefix {
    uint32_t value;
    uint8_t len; /* 0..32 */
} lw_devaddr_prefix_t;

/* NetID type (0..7): the 3 MSBs of the 24-bit NetID. */
static inline unsigned lw_netid_type(uint32_t netid) { return (netid >> 21) & 7u; }

/* ID field of a NetID (6, 9 or 21 LSBs depending on type). */
uint32_t lw_netid_id(uint32_t netid);

/* Width in bits of the NwkID for a NetID/DevAddr type (errata values), and of the NwkAddr. */
unsigned lw_nwkid_bits(unsigned type);
unsigned lw_nwkaddr_bits(unsigned type);

/* NwkID of a NetID: the lw_nwkid_bits(type) LSBs of its ID. */
uint32_t lw_netid_nwkid(uint32_t netid);

/* DevAddr prefix of a NetID (TS002 §13 AddrPrefix). Bits between the type and the NwkID are
 * ignored, as ChirpStack and TTS do (real NetIDs such as 000505 and 00006D set them).
 * Errors: RH_EINVAL if netid > 0xFFFFFF. */
int lw_netid_devaddr_prefix(uint32_t netid, lw_devaddr_prefix_t *prefix, rh_diag_t *diag);

/* Type of a DevAddr: the number of leading one bits (0..7). Returns -1 for 0xFE/0xFF-prefixed
 * addresses with 8 leading ones (not assignable to any NetID type). */
int lw_devaddr_type(uint32_t devaddr);

/* NwkID of a DevAddr into *nwkid. Errors: RH_EINVAL when the DevAddr has 8 leading one bits. */
int lw_devaddr_nwkid(uint32_t devaddr, uint32_t *nwkid);

/* Whether the DevAddr lies inside the NetID's DevAddr prefix. Types 3-7 have NwkIDs narrower
 * than the ID, so several NetIDs of one type can match one DevAddr (TS002 §13: try them all). */
int lw_devaddr_in_netid(uint32_t devaddr, uint32_t netid);

/* Whether `addr` lies inside prefix `p`, and whether prefix `inner` lies inside `outer`. */
static inline int lw_prefix_contains(lw_devaddr_prefix_t p, uint32_t addr)
{
    return p.len == 0 || ((addr ^ p.value) >> (32 - p.len)) == 0;
}
static inline int lw_prefix_covers(lw_devaddr_prefix_t outer, lw_devaddr_prefix_t inner)
{
    return inner.len >= outer.len && lw_prefix_contains(outer, inner.value);
}

/* Parse/format. Input accepts "0x", either case; exactly 6 (NetID) or 8 (DevAddr) hex digits.
 * Errors: RH_EINVAL naming "NetID"/"DevAddr" and the reason. Output is upper-case-free plain hex
 * (lower case) unless `upper`. Buffers: 7 and 9 bytes incl. NUL. */
int lw_netid_parse(const char *s, uint32_t *netid, rh_diag_t *diag);
void lw_netid_format(uint32_t netid, char out[7], int upper);
int lw_devaddr_parse(const char *s, uint32_t *devaddr, rh_diag_t *diag);
void lw_devaddr_format(uint32_t devaddr, char out[9], int upper);

/* Prefix text "0A000000/7": parse (accepts "0x", either case; bits beyond len must be zero) and
 * format (buffer 16 bytes). Errors: RH_EINVAL. */
int lw_devaddr_prefix_parse(const char *s, lw_devaddr_prefix_t *p, rh_diag_t *diag);
void lw_devaddr_prefix_format(lw_devaddr_prefix_t p, char out[16]);

#endif
