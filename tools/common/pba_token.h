/*
 * pba_token.h — the OAuth2 client-credentials exchange of The Things Stack's Packet Broker Agent,
 * as pure functions (roamns's Packet Broker mode does the HTTP; docs/roamns.md). The agent's other
 * token, the sealed gateway uplink token, is sealed with the hub's own broker/pb_token.h (the same
 * AES-GCM construction with the forwarder identity as associated data).
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

#endif
