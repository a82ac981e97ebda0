/*
 * pb_auth.h — Packet Broker data-plane authentication the way The Things Stack's agent does it
 * (issue 12; shared/reference/packet-broker-api.md section 5): the hub's OAuth2 client-
 * credentials endpoint (admin API, POST /api/v1/oauth/token) exchanges a member API key holding
 * RIGHT_DATA_PLANE for a JWT signed by the admin JWT layer (admin_jwt.h) whose "aud" also names
 * PB_AUTH_AUDIENCE and whose PB_CLAIMS_KEY claim holds the key's NetID and tenant (pb_claims.h);
 * every gRPC call's `authorization: Bearer` token is verified here (signature, expiry, the
 * PB_AUTH_AUDIENCE audience: an admin-only token is refused) and its identity returned for the
 * per-request coverage check (pb_identity_covers).
 *
 * Revocation: the data plane reads no key record per call (the identity is in the signed claim,
 * as Packet Broker's own tokens carry it), so a revoked key's tokens keep working on the gRPC
 * listener until they expire (admin.jwt_ttl_s, 900 s by default); the token endpoint refuses it
 * at once.
 * Pure apart from the JWT signature work; thread-safe (the verifier is immutable).
 */
#ifndef RH_PB_AUTH_H
#define RH_PB_AUTH_H

#include "admin_jwt.h"
#include "pb_claims.h"
#include "roamhub.pb-c.h"

#define PB_AUTH_AUDIENCE "roamhub-packetbroker"

/* Whether the key record may use the data plane: a member key (not operator) holding
 * RIGHT_DATA_PLANE or RIGHT_ADMIN. */
bool pb_auth_key_allowed(const Roamhub__V1__ApiKey *k);

/* The identity a data-plane token of key k carries: ns = [{k->net_id, k->tenant_id}], rights
 * READ_NETWORK, READ_TRAFFIC, WRITE_TRAFFIC. */
void pb_auth_identity_of_key(const Roamhub__V1__ApiKey *k, pb_identity_t *out);

/* Issues a data-plane token for key k (pb_auth_key_allowed must hold) at now_s (Unix seconds):
 * admin_jwt_issue_ex with PB_AUTH_AUDIENCE and the identity claim. *token malloc'd (a secret).
 * Errors: those of admin_jwt_issue_ex. */
int pb_auth_issue(const admin_jwt_t *j, const Roamhub__V1__ApiKey *k, int64_t now_s, char **token,
                  int64_t *exp_s);

/* Verifies an authorization header value ("Bearer <JWT>", scheme case-insensitive) at now_s and
 * fills *out with its identity; *sub (may be NULL) gets the API key ID. j NULL (the hub issues no
 * tokens: admin API off) refuses every token. Errors: RH_EPERM with diag saying why (missing
 * header, other scheme, token invalid/expired/for another audience, no identity claim), safe to
 * send to the client (never echoes the token). */
int pb_auth_verify(const admin_jwt_t *j, const char *authorization, int64_t now_s,
                   pb_identity_t *out, char sub[129], rh_diag_t *diag);

#endif
