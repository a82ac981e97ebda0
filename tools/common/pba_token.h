/*
 * pba_token.h — the two tokens of The Things Stack's Packet Broker Agent, as pure functions
 * (roamns's Packet Broker mode does the I/O; docs/roamns.md):
 *   - the OAuth2 client-credentials exchange (access token for every RPC);
 *   - the sealed gateway uplink token a forwarder puts in each published uplink and gets back
 *     unchanged in the routed downlink.
 * Source: shared/reference/packet-broker-api.md section 5 (T pkg/packetbroker/token.go,
 * golang.org/x/oauth2 AuthStyleInParams): POST <token-url> with an
 * application/x-www-form-urlencoded body `grant_type=client_credentials&client_id=..&
 * client_secret=..&scope=networks&audience=<hosts>` (credentials in the body, not Basic); the
 * answer is JSON {"access_token","token_type":"bearer","expires_in"} (RFC 6749 section 5.1).
 */
#ifndef TOOLS_PBA_TOKEN_H
#define TOOLS_PBA_TOKEN_H

#include "rh_err.h"

#include <stddef.h>
#include <stdint.h>

/*
 * The form body of the token request, fields in the agent's order, each value
 * percent-encoded as application/x-www-form-urlencoded (unreserved characters kept, space '+').
 * audience: space-separated host names (may be ""). Returns a malloc'd NUL-terminated string
 * (the caller frees it, after wiping it: it holds the secret), or NULL when out of memory.
 */
char *pba_token_form(const char *client_id, const char *client_secret, const char *scope,
                    const char *audience);

/*
 * Reads the token endpoint's JSON answer (len bytes, not necessarily NUL-terminated).
 * *token: malloc'd access_token (caller frees); *expires_in_s: expires_in in seconds, 0 when the
 * answer has none (the agent then never refreshes). token_type must be "bearer" in any case.
 * Errors: RH_EINVAL with diag naming the field ("access_token: missing", "token_type: ..."),
 * RH_ENOMEM.
 */
int pba_token_parse(const char *body, size_t len, char **token, uint64_t *expires_in_s,
                   rh_diag_t *diag);

/*
 * Gateway uplink token, sealed as the agent does (shared/reference/packet-broker-api.md section
 * 6, T translation.go/crypto.go): AES-GCM under the forwarder's token key (16 or 32 bytes), a
 * random 12-byte nonce, and as associated data the forwarder identity "%06x:%s:%s" (NetID,
 * tenant, cluster), so a downlink whose forwarder_* fields differ from what was published does
 * not open. Wire form here: nonce (12) || ciphertext || tag (16) (the agent wraps the same parts
 * in a protobuf; the token is opaque to everyone but its maker).
 */
#define PBA_GWTOKEN_OVERHEAD (12u + 16u)

/* Seals n bytes of plain into out (cap >= n + PBA_GWTOKEN_OVERHEAD); *outlen the token length.
 * Errors: RH_EINVAL (key length, cap), RH_ECRYPTO (OpenSSL). */
int pba_gwtoken_seal(const uint8_t *key, size_t keylen, uint32_t net_id, const char *tenant,
                    const char *cluster, const uint8_t *plain, size_t n, uint8_t *out, size_t cap,
                    size_t *outlen);

/* Opens a token sealed by pba_gwtoken_seal under the same key and identity; plain gets
 * len - PBA_GWTOKEN_OVERHEAD bytes (cap must allow it). Errors: RH_EINVAL (too short, cap, key
 * length), RH_EMIC (authentication failed: other key, other identity, tampered). */
int pba_gwtoken_open(const uint8_t *key, size_t keylen, uint32_t net_id, const char *tenant,
                    const char *cluster, const uint8_t *tok, size_t len, uint8_t *plain,
                    size_t cap, size_t *plainlen);

#endif
