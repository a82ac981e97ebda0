/*
 * gwmp.h — the Semtech UDP packet forwarder protocol ("GWMP", PROTOCOL.TXT of
 * Lora-net/packet_forwarder, protocol version 2): datagram framing and the JSON objects it
 * carries (rxpk in PUSH_DATA, txpk in PULL_RESP, txpk_ack in TX_ACK).
 *
 * Datagrams (all start with version 2, a 2-byte random token and an identifier):
 *   PUSH_DATA 0x00  gw -> ns  token | gateway EUI (8 bytes) | JSON {"rxpk":[...],"stat":{...}}
 *   PUSH_ACK  0x01  ns -> gw  token
 *   PULL_DATA 0x02  gw -> ns  token | gateway EUI            (keep-alive, opens the downlink path)
 *   PULL_RESP 0x03  ns -> gw  token | JSON {"txpk":{...}}
 *   PULL_ACK  0x04  ns -> gw  token
 *   TX_ACK    0x05  gw -> ns  token (of the PULL_RESP) | gateway EUI | [JSON {"txpk_ack":{...}}]
 * The token is kept as the 2 bytes on the wire (a uint16_t built big-endian from them; it only
 * has to be echoed). The gateway EUI is 8 bytes, most significant first (display order).
 *
 * JSON is parsed with cJSON; base64 ("data") uses OpenSSL EVP_EncodeBlock/EVP_DecodeBlock.
 * Frequencies are carried in the structs as integer Hz (the JSON has MHz floats), times in µs
 * (the gateway's free-running 32-bit "tmst" counter). Only LoRa modulation is supported: rxpk
 * entries with "modu":"FSK" are reported as skipped, not as errors.
 * All functions are pure (no global state) and thread-safe.
 */
#ifndef GWMP_H
#define GWMP_H

#include "rh_err.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GWMP_VERSION 2
#define GWMP_HDR_LEN 4u      /* version | token(2) | identifier */
#define GWMP_EUI_HDR_LEN 12u /* + gateway EUI (PUSH_DATA, PULL_DATA, TX_ACK) */
#define GWMP_MAX_DATAGRAM 65507u
#define GWMP_MAX_RXPK 32u    /* rxpk entries accepted per PUSH_DATA */

enum gwmp_ident {
    GWMP_PUSH_DATA = 0x00,
    GWMP_PUSH_ACK = 0x01,
    GWMP_PULL_DATA = 0x02,
    GWMP_PULL_RESP = 0x03,
    GWMP_PULL_ACK = 0x04,
    GWMP_TX_ACK = 0x05,
};

/* A parsed datagram. `json` points into the caller's buffer (NOT NUL-terminated). */
typedef struct gwmp_pkt {
    uint8_t version;     /* 1 or 2 (1 accepted on input: same framing, TX_ACK absent) */
    uint16_t token;      /* wire bytes 1..2, big-endian */
    uint8_t ident;       /* enum gwmp_ident */
    bool has_eui;
    uint64_t gw_eui;     /* PUSH_DATA, PULL_DATA, TX_ACK */
    const uint8_t *json; /* PUSH_DATA, PULL_RESP, TX_ACK (may be absent: NULL, 0) */
    size_t json_len;
} gwmp_pkt_t;

/* Parses a datagram of `len` bytes. Errors (diag names the part): RH_ESIZE (shorter than its
 * identifier needs), RH_EVERSION (protocol version not 1 or 2), RH_EINVAL (unknown identifier). */
int gwmp_parse(const uint8_t *buf, size_t len, gwmp_pkt_t *p, rh_diag_t *diag);

/* Writes a datagram header: version 2, token, ident, and for PUSH_DATA/PULL_DATA/TX_ACK the
 * gateway EUI; then `json_len` bytes of json (may be NULL/0). Returns the length written, or 0
 * when `cap` is too small. */
size_t gwmp_write(uint8_t *out, size_t cap, uint8_t ident, uint16_t token, uint64_t gw_eui,
                  const char *json, size_t json_len);

/* A received LoRa packet (rxpk element). */
typedef struct gwmp_rxpk {
    uint32_t tmst;        /* gateway µs counter at the end of the packet's reception */
    bool has_time;
    char time[40];        /* "time" as sent (UTC ISO 8601), when has_time */
    uint32_t freq_hz;     /* "freq" MHz -> Hz */
    uint8_t chan, rfch;
    int stat;             /* CRC: 1 OK, -1 bad, 0 none */
    uint8_t sf;           /* spreading factor 5..12, from "datr" "SF7BW125" */
    uint16_t bw_khz;      /* 125, 250, 500 */
    char codr[8];         /* "4/5" */
    int rssi;             /* dBm ("rssi", or rsig[0].rssic) */
    double lsnr;          /* dB */
    uint8_t data[255];    /* PHYPayload, decoded from base64 */
    size_t size;
} gwmp_rxpk_t;

/* Parses the JSON of a PUSH_DATA: up to `cap` rxpk entries into out[] (*n set), skipping (and
 * counting in *skipped) entries that are FSK, have a bad CRC (stat != 1) or are malformed; the
 * diag gets the reason for the first malformed entry ("rxpk[0].datr: ..."). A "stat" object's
 * "lati"/"long" are returned in lat, lon and has_loc (any of these pointers may be NULL).
 * Errors: RH_EINVAL (not a JSON object), RH_ENOMEM. An object without "rxpk" is fine (*n = 0). */
int gwmp_push_parse(const uint8_t *json, size_t len, gwmp_rxpk_t *out, size_t cap, size_t *n,
                    size_t *skipped, bool *has_loc, double *lat, double *lon, rh_diag_t *diag);

/* Parses one rxpk object. Errors: RH_EINVAL naming the field; RH_EUNSUPPORTED for FSK. */
int gwmp_rxpk_from_json(const cJSON *o, gwmp_rxpk_t *out, rh_diag_t *diag);

/* Builds one rxpk object (for simulators). Returns NULL on allocation failure. */
cJSON *gwmp_rxpk_to_json(const gwmp_rxpk_t *r);

/* A packet to transmit (txpk). */
typedef struct gwmp_txpk {
    bool imme;            /* send immediately (class C); else at tmst */
    uint32_t tmst;        /* gateway µs counter at which to start transmitting */
    uint32_t freq_hz;
    uint8_t rfch;
    int powe;             /* dBm */
    uint8_t sf;
    uint16_t bw_khz;
    char codr[8];         /* "4/5" */
    bool ipol;            /* inverted polarity: true for LoRaWAN downlinks */
    uint8_t data[255];
    size_t size;
} gwmp_txpk_t;

/* {"txpk":{...}} as compact JSON into a new buffer (*out, cJSON_free()) of *len bytes.
 * Errors: RH_EINVAL (size > 255 or sf/bw unset), RH_ENOMEM. */
int gwmp_txpk_build(const gwmp_txpk_t *t, char **out, size_t *len);

/* Parses the JSON of a PULL_RESP ({"txpk":{...}}). Errors: RH_EINVAL naming the field
 * ("txpk.tmst: ..."), RH_EUNSUPPORTED for FSK. */
int gwmp_txpk_parse(const uint8_t *json, size_t len, gwmp_txpk_t *out, rh_diag_t *diag);

/* TX_ACK: the "txpk_ack"."error" string ("NONE" when absent or when the JSON is absent) into
 * err (capacity cap). Errors: RH_EINVAL (JSON present but not an object). */
int gwmp_txack_parse(const uint8_t *json, size_t len, char *err, size_t cap);

/* "datr" for LoRa: "SF7BW125" <-> (7, 125). Parse errors: RH_EINVAL. Format needs 16 bytes. */
int gwmp_datr_parse(const char *s, uint8_t *sf, uint16_t *bw_khz);
void gwmp_datr_format(uint8_t sf, uint16_t bw_khz, char out[16]);

/* Base64 (OpenSSL EVP_EncodeBlock/EVP_DecodeBlock, RFC 4648 with padding; missing padding is
 * accepted on input). Decode errors: RH_EINVAL (bad characters), RH_ERANGE (more than cap
 * bytes). Encode writes 4*ceil(n/3) characters + NUL (out must hold that) and returns the
 * character count. */
int gwmp_b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen);
size_t gwmp_b64_encode(const uint8_t *in, size_t n, char *out);

/* MHz float <-> Hz integer (rounded to the nearest Hz). */
uint32_t gwmp_mhz_to_hz(double mhz);
double gwmp_hz_to_mhz(uint32_t hz);

#endif
