/*
 * rh_hex.h — hex and EUI-64 helpers (shared runtime).
 *
 * Input is lenient the way TS002 peers differ (TS002 1.0 §22.3): an optional "0x"/"0X" prefix,
 * upper or lower case. Odd lengths and non-hex characters are refused. Output is plain hex
 * without prefix, lower case unless asked otherwise.
 * Byte order: hex text is always the display (big-endian, most significant byte first) order;
 * converting to LoRaWAN wire (little-endian) order is the caller's job (see lw_*.h).
 */
#ifndef RH_HEX_H
#define RH_HEX_H

#include "rh_err.h"

#include <stddef.h>
#include <stdint.h>

/* Value + 1 of each hex digit byte (either case), 0 for every other byte: one load per digit
 * (the TS002 codec reads every hex field of every message through it). */
extern const uint8_t rh_hex_value1[256];

/* Value 0..15 of one hex digit (either case), or -1 when the byte c (0..255, or a char) is not
 * one. */
static inline int rh_hex_nibble(int c)
{
    return (int)rh_hex_value1[(unsigned char)c] - 1;
}

/* Decodes `len` chars of `s` (not necessarily NUL-terminated) into `out` (capacity `cap` bytes).
 * Sets *outlen to the number of bytes written.
 * Errors: RH_EINVAL (odd number of digits, a non-hex character), RH_ERANGE (more than `cap`
 * bytes). `what` names the field in the diagnostic ("DevEUI"); diag may be NULL. */
int rh_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen,
                  const char *what, rh_diag_t *diag);

/* Encodes n bytes as 2n hex digits plus NUL into out (capacity >= 2n+1). upper != 0 for A-F.
 * Returns 2n. */
size_t rh_hex_encode(const uint8_t *in, size_t n, char *out, int upper);

/* Parses exactly `nbytes` (1..8) big-endian bytes of hex into *v, e.g. a NetID (3), a DevAddr (4)
 * or an EUI-64 (8). Errors as rh_hex_decode, plus RH_EINVAL when the byte count differs. */
int rh_hex_parse_be(const char *s, size_t len, unsigned nbytes, uint64_t *v, const char *what,
                    rh_diag_t *diag);

/* Formats the low `nbytes` bytes of v as 2*nbytes hex digits + NUL into out. Returns 2*nbytes. */
size_t rh_hex_format_be(uint64_t v, unsigned nbytes, char *out, int upper);

/* EUI-64 (DevEUI, JoinEUI, gateway EUI, NSID) from/to 16 hex digits, big-endian display order.
 * Errors as rh_hex_parse_be. */
int rh_eui64_parse(const char *s, uint64_t *eui, rh_diag_t *diag);
void rh_eui64_format(uint64_t eui, char out[17]);

/* Big/little-endian byte helpers for wire codecs. */
static inline void rh_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void rh_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void rh_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t rh_get_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t rh_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t rh_get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static inline void rh_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void rh_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint32_t rh_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t rh_get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

#endif
