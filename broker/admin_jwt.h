/*
 * admin_jwt.h — bearer-token verification and issuing for the admin API (RFC 7519 JWT, RFC 7515
 * JWS compact form), a strict wrapper around libjwt 1.10.
 *
 * libjwt verifies signatures; everything else is checked here, before and after it, because
 * libjwt 1.10 trusts the token's own header for the algorithm and checks no claim:
 *   - size: at most ADMIN_JWT_MAX bytes, refused before anything is decoded;
 *   - shape: exactly three non-empty base64url segments (no padding, no whitespace, nothing
 *     after the signature), each in canonical encoding (decode + re-encode gives the same text,
 *     so trailing garbage and non-zero pad bits are refused);
 *   - header: a JSON object with only "alg", "typ" and "kid"; "alg" must equal the configured
 *     algorithm exactly ("none", other algorithms and HS256-with-a-public-key confusion are
 *     refused before libjwt sees the token); "typ", if present, "JWT"; "kid", if present, 1..64
 *     characters of [A-Za-z0-9._-];
 *   - signature length: 32 bytes (HS256), 64 (ES256, JWS R||S), the modulus size (RS256);
 *   - claims: "iss" and "aud" (string, or array containing it) equal the configured values;
 *     "sub" 1..128 printable ASCII; "exp" required, integral, and not past (with leeway), and not
 *     further ahead than max_lifetime_s; "nbf" and "iat", if present, integral and not in the
 *     future beyond the leeway; after libjwt's verification the algorithm is checked again.
 * The verifier is immutable after admin_jwt_new and may be used from any thread.
 */
#ifndef RH_ADMIN_JWT_H
#define RH_ADMIN_JWT_H

#include "rh_err.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define ADMIN_JWT_MAX 8192 /* bytes: longer tokens are refused before decoding */

typedef struct admin_jwt admin_jwt_t;

typedef struct admin_jwt_opts {
    const char *alg;              /* "HS256", "ES256" or "RS256" (pinned) */
    const uint8_t *secret;        /* HS256: the shared secret (>= 32 bytes) */
    size_t secret_len;
    const char *public_key_pem;   /* ES256/RS256: verification key (PEM, NUL-terminated) */
    const char *private_key_pem;  /* ES256/RS256: signing key, NULL = this hub cannot issue */
    const char *issuer;           /* required "iss" (and the one issued) */
    const char *audience;         /* required "aud" */
    unsigned ttl_s;               /* lifetime of issued tokens, seconds */
    unsigned leeway_s;            /* clock skew allowed for exp/nbf/iat, seconds (0 = 60) */
    unsigned max_lifetime_s;      /* exp may lie at most this far ahead (0 = 86400) */
} admin_jwt_opts_t;

/* The claims of a verified token that the admin API uses. */
typedef struct admin_jwt_claims {
    char sub[129];                /* API key ID */
    char jti[65];                 /* token ID ("" when absent) */
    int64_t iat, nbf, exp;        /* Unix seconds; iat/nbf 0 when absent */
} admin_jwt_claims_t;

/* Builds a verifier (and signer). The keys are copied. Errors: RH_EINVAL (unknown alg, HS256
 * secret shorter than 32 bytes, missing key, key of the wrong type: RSA key for ES256, EC key
 * not on P-256, RSA key below 2048 bits; diag names the option), RH_ECRYPTO (PEM unreadable),
 * RH_ENOMEM. */
int admin_jwt_new(const admin_jwt_opts_t *o, admin_jwt_t **out, rh_diag_t *diag);

/* Frees; NULL is a no-op. */
void admin_jwt_free(admin_jwt_t *j);

/* The pinned algorithm name ("HS256", ...). */
const char *admin_jwt_alg(const admin_jwt_t *j);

/* Whether this hub can issue tokens (HS256, or a private key was configured). */
int admin_jwt_can_issue(const admin_jwt_t *j);

/* Issues a token for `sub` valid from now_s (Unix seconds) for the configured ttl, with a random
 * jti. *token is malloc'd (caller frees; it is a secret: never log it); *exp_s gets its expiry.
 * Errors: RH_EINVAL (sub empty or too long), RH_EUNSUPPORTED (no signing key), RH_ECRYPTO,
 * RH_ENOMEM. */
int admin_jwt_issue(const admin_jwt_t *j, const char *sub, int64_t now_s, char **token,
                    int64_t *exp_s);

/* The same with an extra audience and extra claims (the Packet Broker identity claim of a data-
 * plane token, pb_auth.h): extra_aud non-NULL makes "aud" the array [configured audience,
 * extra_aud] (it must differ from the configured one); `extra` (a JSON object, or NULL) adds its
 * members as claims, except iss/sub/jti/iat/nbf/exp, which stay the issuer's. Errors: as
 * admin_jwt_issue, RH_EINVAL also for an empty or equal extra_aud or a non-object extra. */
int admin_jwt_issue_ex(const admin_jwt_t *j, const char *sub, const char *extra_aud,
                       const cJSON *extra, int64_t now_s, char **token, int64_t *exp_s);

/* Verifies `token` (len bytes, need not be NUL-terminated) at time now_s (Unix seconds) and
 * fills *claims. Errors (diag says which check failed, never echoes the token):
 *   RH_ERANGE  empty or longer than ADMIN_JWT_MAX;
 *   RH_EINVAL  not three canonical base64url segments, header or claims malformed, wrong alg,
 *              iss, aud or sub, bad signature length;
 *   RH_EPERM   signature does not verify;
 *   RH_ETIMEDOUT expired (exp), not yet valid (nbf), issued in the future (iat), or exp too far
 *              ahead;
 *   RH_ENOMEM. */
int admin_jwt_verify(const admin_jwt_t *j, const char *token, size_t len, int64_t now_s,
                     admin_jwt_claims_t *claims, rh_diag_t *diag);

/* admin_jwt_verify with the required audience `audience` (NULL = the configured one) instead of
 * the configured one, and, when claims_set is non-NULL, the verified claims object in
 * *claims_set (caller cJSON_Deletes it; NULL on any error) for claims this layer does not read.
 * Same checks and errors. */
int admin_jwt_verify_ex(const admin_jwt_t *j, const char *token, size_t len, const char *audience,
                        int64_t now_s, admin_jwt_claims_t *claims, cJSON **claims_set,
                        rh_diag_t *diag);

#endif
