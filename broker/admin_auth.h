/*
 * admin_auth.h — admin API credentials: API keys (roamhub.v1 ApiKey: id + secret shown once,
 * stored as SHA-256(salt | secret) with a 16-byte random salt), the OAuth2 client-credentials
 * exchange of a key for a short-lived JWT (RFC 6749 §4.4), and the authentication of a request
 * (Bearer JWT -> key record -> principal).
 *
 * Invariants:
 *  - a key's secret never reaches storage, logs or any response except the one that created it;
 *    comparisons are constant-time (CRYPTO_memcmp over the salted hashes);
 *  - a token carries only the key ID (sub); scope and rights are read from the key record on
 *    every request, so revoking or deleting a key stops its tokens at once, and a token can never
 *    carry more than its key has now. A token issued before the key's creation (a deleted and
 *    re-created ID) is refused;
 *  - the bootstrap operator key file (admin.operator_key_file) holds "id:secret", mode 0600;
 *    only its hash is stored; only its ID is logged.
 * Roles: an operator key (ApiKey.operator) sees everything its rights allow; any other key is a
 * member key scoped to ApiKey.net_id (and ApiKey.tenant_id when set).
 */
#ifndef RH_ADMIN_AUTH_H
#define RH_ADMIN_AUTH_H

#include "admin_jwt.h"
#include "rp.h"

#define ADMIN_SECRET_LEN 64   /* hex characters of a generated secret (32 random bytes) */
#define ADMIN_SALT_LEN 16
#define ADMIN_HASH_LEN 32

/* Bit of a right in admin_principal_t.rights (Roamhub__V1__Right values 1..10). */
#define ADMIN_RIGHT(r) (1u << (unsigned)(r))
#define ADMIN_RIGHTS_ALL 0x7FEu /* bits 1..10 */

typedef struct admin_principal {
    char key_id[RP_ID_MAX + 1];
    int is_operator;
    uint32_t net_id;                      /* member keys: the NetID in scope */
    char tenant_id[RP_TENANT_MAX + 1];    /* member keys: "" = every tenant of net_id */
    uint32_t rights;                      /* ADMIN_RIGHT bits; RIGHT_ADMIN expands to all */
} admin_principal_t;

/* Whether the principal holds right r (RIGHT_ADMIN grants every right). */
int admin_has_right(const admin_principal_t *p, int r);

/* Holds the salt and hash that an ApiKey record points to (no allocation). */
typedef struct admin_key_material {
    uint8_t salt[ADMIN_SALT_LEN];
    uint8_t hash[ADMIN_HASH_LEN];
} admin_key_material_t;

/* Generates a random secret (ADMIN_SECRET_LEN hex chars + NUL into secret) and sets k->salt and
 * k->secret_hash to point into *m (which must outlive k's use). Errors: RH_ECRYPTO. */
int admin_key_generate(Roamhub__V1__ApiKey *k, admin_key_material_t *m,
                       char secret[ADMIN_SECRET_LEN + 1]);

/* Same with a given secret (len bytes, 16..256). Errors: RH_EINVAL, RH_ECRYPTO. */
int admin_key_set_secret(Roamhub__V1__ApiKey *k, admin_key_material_t *m, const char *secret,
                         size_t len);

/* 1 if secret matches the record's salted hash (constant time), else 0. */
int admin_key_check(const Roamhub__V1__ApiKey *k, const char *secret, size_t len);

/* Fills a principal from a key record. */
void admin_principal_from_key(const Roamhub__V1__ApiKey *k, admin_principal_t *p);

/* Client credentials: checks (id, secret) against the stored key and issues a token. A member
 * key holding RIGHT_DATA_PLANE (or RIGHT_ADMIN) gets a token that also serves the Packet Broker
 * data plane (pb_auth.h: audience PB_AUTH_AUDIENCE added, the identity claim with its NetID and
 * tenant); other keys get an admin-only token. *token is malloc'd (a secret). Errors: RH_EPERM (unknown ID, wrong secret, revoked: one
 * message for all, so IDs cannot be probed), RH_EUNSUPPORTED (no signing key), RH_EIO. */
int admin_token_exchange(rp_db_t *db, const admin_jwt_t *j, const char *id, const char *secret,
                         size_t secret_len, int64_t now_s, char **token, int64_t *exp_s,
                         rh_diag_t *diag);

/* Authenticates an Authorization header value ("Bearer <JWT>"): verifies the token, loads the
 * key named by sub and refuses revoked, deleted or re-created keys. Errors: RH_EPERM (diag: the
 * reason, safe to show to the client), RH_EIO. */
int admin_authenticate(rp_db_t *db, const admin_jwt_t *j, const char *authorization,
                       int64_t now_s, admin_principal_t *p, rh_diag_t *diag);

/* Bootstrap operator key: if `path` exists it must hold "id:secret" (mode 0600 advised; a
 * group/other-readable file is refused); the key record is created or its hash updated, unless
 * the stored key was revoked (then it stays revoked). If `path` does not exist a random key is
 * created (O_EXCL, 0600) and stored. Logs the key ID only. Errors: RH_EIO, RH_EINVAL, RH_EPERM,
 * RH_EFULL. */
int admin_operator_key_bootstrap(rp_db_t *db, const char *path, rh_diag_t *diag);

#endif
