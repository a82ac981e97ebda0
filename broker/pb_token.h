/*
 * pb_token.h — sealed cross-protocol tokens (issue 12, "Bridging"): what the hub needs to route
 * a bridged uplink's downlink back to its forwarder and to restore that forwarder's own tokens
 * (a roamhub.v1.BridgeToken, proto/roamhub.proto) travels inside the other protocol's opaque
 * token fields — TS002 ULMetaData.FNSULToken / GWInfo.ULToken toward a TS002 home network,
 * Packet Broker gateway_uplink_token / forwarder_uplink_token toward a gRPC home network — so the
 * hub keeps no per-uplink state for downlinks.
 *
 * Sealing: AES-256-GCM (OpenSSL EVP) under the hub's 32-byte token key, a random 96-bit nonce per
 * token, an expiry, and associated data = the token's header + the forwarder identity the caller
 * names (pb_token_aad), so a token opens only for the forwarder it was sealed for: no member can
 * forge one, read one, or redirect a downlink to another forwarder with one.
 *
 * Wire form (bytes): version 0x01 | expiry (8, big-endian Unix seconds) | nonce (12) |
 * ciphertext | tag (16). Carried as lower-case hex in TS002 (ChirpStack parses tokens as hex) and
 * as the raw bytes in protobuf.
 *
 * Keys: grpc.token_key_file (docs/CONFIG.md: 64 hex digits) or 32 random bytes at start (tokens
 * then die with the process; cluster nodes must share the file). A key is never logged.
 * Threads: a key is read-only after pb_token_key_init; seal/open are thread-safe.
 */
#ifndef RH_PB_TOKEN_H
#define RH_PB_TOKEN_H

#include "rh_err.h"

#include <stddef.h>
#include <stdint.h>

#define PB_TOKEN_OVERHEAD (1 + 8 + 12 + 16) /* bytes a sealed token adds to its plaintext */
#define PB_TOKEN_MAX 1024                   /* largest sealed token accepted, bytes */
#define PB_TOKEN_TTL_S 600                  /* default lifetime: class A windows, a retried
                                               join-accept, clock skew between cluster nodes */

typedef struct pb_token_key {
    unsigned char k[32];
} pb_token_key_t;

/* Loads the key from `path` (64 hex digits, surrounding white space allowed) or, path NULL, draws
 * 32 random bytes. Errors: RH_EIO / RH_EINVAL with d naming grpc.token_key_file and the reason;
 * RH_ECRYPTO (no randomness). */
int pb_token_key_init(pb_token_key_t *key, const char *path, rh_diag_t *d);

/* Associated data naming a forwarder: "%06x:%s:%s" of NetID, tenant, cluster (Packet Broker's own
 * gateway-token AAD form); tenant/cluster NULL = "". Returns the length written into out (cap
 * bytes, truncated strings never match). */
size_t pb_token_aad(char *out, size_t cap, uint32_t net_id, const char *tenant,
                    const char *cluster);

/* Seals pt (n bytes) for identity aad, valid until expires_s (Unix seconds), into out (cap bytes,
 * n + PB_TOKEN_OVERHEAD needed); *len the token's length. Errors: RH_ERANGE (out too small or the
 * token would exceed PB_TOKEN_MAX), RH_ECRYPTO. */
int pb_token_seal(const pb_token_key_t *key, const uint8_t *pt, size_t n, const char *aad,
                  int64_t expires_s, uint8_t *out, size_t cap, size_t *len);

/* Opens token tok (n bytes) for identity aad at time now_s into pt (cap bytes); *len the
 * plaintext's length. Errors, each with d saying why (callers prefix the field name):
 * RH_EINVAL "malformed token" (too short/long, unknown version), RH_EPERM "token does not
 * authenticate (altered, sealed by another hub, or for another forwarder)", RH_ETIMEDOUT
 * "token expired" (only said of an authentic token), RH_ERANGE (pt too small), RH_ECRYPTO. */
int pb_token_open(const pb_token_key_t *key, const uint8_t *tok, size_t n, const char *aad,
                  int64_t now_s, uint8_t *pt, size_t cap, size_t *len, rh_diag_t *d);


/* ---- the BridgeToken layer (roamhub.v1.BridgeToken sealed as above) ---- */
#include "roamhub.pb-c.h"

/* Packs and seals bt for identity aad with lifetime PB_TOKEN_TTL_S from now_s into out (cap
 * bytes). Errors as pb_token_seal (RH_ERANGE when bt's strings make it too large). */
int pb_token_seal_bridge(const pb_token_key_t *key, const Roamhub__V1__BridgeToken *bt,
                         const char *aad, int64_t now_s, uint8_t *out, size_t cap, size_t *len);

/* Opens a sealed BridgeToken (tok, n bytes) for identity aad at now_s: *out a new message (free
 * with roamhub__v1__bridge_token__free_unpacked(*out, NULL)). Errors as pb_token_open, plus
 * RH_EINVAL "token does not decode" (an authentic token always decodes; kept for safety) and
 * RH_ENOMEM. */
int pb_token_open_bridge(const pb_token_key_t *key, const uint8_t *tok, size_t n,
                         const char *aad, int64_t now_s, Roamhub__V1__BridgeToken **out,
                         rh_diag_t *d);

/* The same with the token as hex text (TS002 FNSULToken / ULToken): RH_EINVAL "not hex" for
 * anything else. */
int pb_token_open_bridge_hex(const pb_token_key_t *key, const char *hex, const char *aad,
                             int64_t now_s, Roamhub__V1__BridgeToken **out, rh_diag_t *d);

#endif
