/* admin_auth.c — API keys, token exchange, request authentication (see admin_auth.h). */
#include "admin_auth.h"

#include "cluster_table.h"

#include "pb_auth.h"

#include "rh_fs.h"

#include "rh_log.h"
#include "rh_time.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int admin_has_right(const admin_principal_t *p, int r)
{
    if (p->rights & ADMIN_RIGHT(ROAMHUB__V1__RIGHT__RIGHT_ADMIN))
        return 1;
    return (p->rights & ADMIN_RIGHT(r)) != 0;
}

static int salted_hash(const uint8_t *salt, size_t salt_len, const char *secret, size_t len,
                       uint8_t out[ADMIN_HASH_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned n = 0;
    int ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(c, salt, salt_len) && EVP_DigestUpdate(c, secret, len) &&
             EVP_DigestFinal_ex(c, out, &n) && n == ADMIN_HASH_LEN;
    EVP_MD_CTX_free(c);
    return ok ? RH_OK : RH_ECRYPTO;
}

int admin_key_set_secret(Roamhub__V1__ApiKey *k, admin_key_material_t *m, const char *secret,
                         size_t len)
{
    if (len < 16 || len > 256)
        return RH_EINVAL;
    if (RAND_bytes(m->salt, sizeof m->salt) != 1)
        return RH_ECRYPTO;
    int rc = salted_hash(m->salt, sizeof m->salt, secret, len, m->hash);
    if (rc)
        return rc;
    k->salt.data = m->salt;
    k->salt.len = sizeof m->salt;
    k->secret_hash.data = m->hash;
    k->secret_hash.len = sizeof m->hash;
    return RH_OK;
}

int admin_key_generate(Roamhub__V1__ApiKey *k, admin_key_material_t *m,
                       char secret[ADMIN_SECRET_LEN + 1])
{
    uint8_t rnd[ADMIN_SECRET_LEN / 2];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return RH_ECRYPTO;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(secret + 2 * i, 3, "%02x", rnd[i]);
    OPENSSL_cleanse(rnd, sizeof rnd);
    return admin_key_set_secret(k, m, secret, ADMIN_SECRET_LEN);
}

int admin_key_check(const Roamhub__V1__ApiKey *k, const char *secret, size_t len)
{
    uint8_t h[ADMIN_HASH_LEN];
    static const uint8_t zero_salt[ADMIN_SALT_LEN];
    const uint8_t *salt = k && k->salt.len ? k->salt.data : zero_salt;
    size_t salt_len = k && k->salt.len ? k->salt.len : sizeof zero_salt;
    /* hash even when the record is unusable, so every refusal costs the same */
    if (salted_hash(salt, salt_len, secret, len, h) != RH_OK)
        return 0;
    int ok = k && k->secret_hash.len == ADMIN_HASH_LEN &&
             CRYPTO_memcmp(h, k->secret_hash.data, ADMIN_HASH_LEN) == 0;
    OPENSSL_cleanse(h, sizeof h);
    return ok;
}

void admin_principal_from_key(const Roamhub__V1__ApiKey *k, admin_principal_t *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->key_id, sizeof p->key_id, "%s", k->id);
    p->is_operator = k->operator_;
    p->net_id = k->net_id;
    snprintf(p->tenant_id, sizeof p->tenant_id, "%s", k->tenant_id ? k->tenant_id : "");
    for (size_t i = 0; i < k->n_rights; i++)
        if (k->rights[i] > 0 && k->rights[i] < 32)
            p->rights |= ADMIN_RIGHT(k->rights[i]);
}

static int load_key(rp_db_t *db, const char *id, Roamhub__V1__ApiKey **out, rh_diag_t *d)
{
    Roamhub__V1__ApiKey key = ROAMHUB__V1__API_KEY__INIT;
    key.id = (char *)id;
    *out = NULL;
    if (!*id || strlen(id) > RP_ID_MAX)
        return RH_OK;
    ProtobufCMessage *m = NULL;
    int rc = rp_get(db, RP_KIND_API_KEY, &key.base, &m, d);
    if (rc == RH_EINVAL)
        return RH_OK; /* an ID rp refuses cannot exist */
    *out = (Roamhub__V1__ApiKey *)m;
    return rc;
}

int admin_token_exchange(rp_db_t *db, const admin_jwt_t *j, const char *id, const char *secret,
                         size_t secret_len, int64_t now_s, char **token, int64_t *exp_s,
                         rh_diag_t *d)
{
    *token = NULL;
    if (!admin_jwt_can_issue(j))
        return rh_diag_fail(d, RH_EUNSUPPORTED, "this hub issues no tokens: configure "
                            "admin.jwt_private_key_file");
    Roamhub__V1__ApiKey *k = NULL;
    int rc = load_key(db, id ? id : "", &k, d);
    if (rc)
        return rc;
    int ok = admin_key_check(k, secret ? secret : "", secret ? secret_len : 0);
    if (!ok || !k || k->revoked_at != 0) {
        if (k)
            protobuf_c_message_free_unpacked(&k->base, NULL);
        return rh_diag_fail(d, RH_EPERM, "invalid client credentials");
    }
    /* a member key with the data-plane right: the token also serves the gRPC listener */
    if (pb_auth_key_allowed(k))
        rc = pb_auth_issue(j, k, now_s, token, exp_s);
    else
        rc = admin_jwt_issue(j, id, now_s, token, exp_s);
    protobuf_c_message_free_unpacked(&k->base, NULL);
    if (rc)
        return rh_diag_fail(d, rc, "cannot issue a token: %s", rh_strerror(rc));
    return RH_OK;
}

int admin_authenticate(rp_db_t *db, const admin_jwt_t *j, const char *authz, int64_t now_s,
                       admin_principal_t *p, rh_diag_t *d)
{
    memset(p, 0, sizeof *p);
    if (!authz)
        return rh_diag_fail(d, RH_EPERM, "missing Authorization: Bearer token");
    if (strncasecmp(authz, "Bearer ", 7) != 0)
        return rh_diag_fail(d, RH_EPERM, "Authorization: expected the Bearer scheme");
    const char *tok = authz + 7;
    admin_jwt_claims_t c;
    rh_diag_t vd = {{0}};
    int rc = admin_jwt_verify(j, tok, strlen(tok), now_s, &c, &vd);
    if (rc)
        return rh_diag_fail(d, RH_EPERM, "invalid token: %s", vd.text);
    Roamhub__V1__ApiKey *k = NULL;
    rc = load_key(db, c.sub, &k, d);
    if (rc)
        return rc;
    if (!k)
        return rh_diag_fail(d, RH_EPERM, "invalid token: its API key no longer exists");
    int64_t lee = 60;
    if (k->revoked_at != 0)
        rc = rh_diag_fail(d, RH_EPERM, "invalid token: its API key was revoked");
    else if (c.iat && k->created_at && c.iat + lee < k->created_at / 1000)
        rc = rh_diag_fail(d, RH_EPERM, "invalid token: issued before its API key was created");
    else
        admin_principal_from_key(k, p);
    protobuf_c_message_free_unpacked(&k->base, NULL);
    return rc;
}

/* ------------------------------------------------------------------ operator key file */

static int store_operator_key(rp_db_t *db, const char *id, const char *secret, size_t len,
                              rh_diag_t *d)
{
    Roamhub__V1__ApiKey *old = NULL;
    int rc = load_key(db, id, &old, d);
    if (rc)
        return rc;
    if (old && old->revoked_at != 0) {
        RH_LOG(RH_LOG_WARN, "admin", "operator key from file is revoked, not restored key=%s", id);
        protobuf_c_message_free_unpacked(&old->base, NULL);
        return RH_OK;
    }
    int same = old && old->operator_ && admin_key_check(old, secret, len);
    if (old)
        protobuf_c_message_free_unpacked(&old->base, NULL);
    if (same)
        return RH_OK;
    Roamhub__V1__ApiKey k = ROAMHUB__V1__API_KEY__INIT;
    admin_key_material_t m;
    Roamhub__V1__Right admin = ROAMHUB__V1__RIGHT__RIGHT_ADMIN;
    k.id = (char *)id;
    k.operator_ = 1;
    k.rights = &admin;
    k.n_rights = 1;
    k.created_at = rh_real_ms();
    k.name = TABLE_LOCAL_KEY_NAME; /* local to this node (cluster_table.h) */
    rc = admin_key_set_secret(&k, &m, secret, len);
    if (rc)
        return rh_diag_fail(d, rc, "admin.operator_key_file: secret must be 16..256 bytes");
    rc = rp_put(db, "bootstrap", RP_KIND_API_KEY, &k.base, RP_PUT_UPSERT, d);
    OPENSSL_cleanse(&m, sizeof m);
    if (rc == RH_OK)
        RH_LOG(RH_LOG_INFO, "admin", "operator key stored key=%s", id);
    return rc;
}

int admin_operator_key_bootstrap(rp_db_t *db, const char *path, rh_diag_t *d)
{
    char buf[512];
    int fd = open(path, O_RDONLY | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        uint8_t rnd[8];
        char id[32], secret[ADMIN_SECRET_LEN + 1];
        Roamhub__V1__ApiKey tmp = ROAMHUB__V1__API_KEY__INIT;
        admin_key_material_t m;
        if (RAND_bytes(rnd, sizeof rnd) != 1 || admin_key_generate(&tmp, &m, secret) != RH_OK)
            return rh_diag_fail(d, RH_ECRYPTO, "admin.operator_key_file: no randomness");
        snprintf(id, sizeof id, "op-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
                 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
        if (rh_mkdir_parent(path, 0700) != RH_OK)
            return rh_diag_fail(d, RH_EIO, "admin.operator_key_file %s: cannot create its "
                                "directory: %s", path, strerror(errno));
        int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
        if (wfd < 0)
            return rh_diag_fail(d, RH_EIO, "admin.operator_key_file %s: %s", path,
                                strerror(errno));
        int n = snprintf(buf, sizeof buf, "%s:%s\n", id, secret);
        ssize_t w = write(wfd, buf, (size_t)n);
        close(wfd);
        OPENSSL_cleanse(buf, sizeof buf);
        if (w != n) {
            unlink(path);
            return rh_diag_fail(d, RH_EIO, "admin.operator_key_file %s: short write", path);
        }
        int rc = store_operator_key(db, id, secret, ADMIN_SECRET_LEN, d);
        OPENSSL_cleanse(secret, sizeof secret);
        if (rc == RH_OK)
            RH_LOG(RH_LOG_INFO, "admin", "operator key created key=%s file=%s", id, path);
        return rc;
    }
    if (fd < 0)
        return rh_diag_fail(d, RH_EIO, "admin.operator_key_file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rh_diag_fail(d, RH_EIO, "admin.operator_key_file %s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return rh_diag_fail(d, RH_EPERM, "admin.operator_key_file %s: readable by group or "
                            "others (chmod 600)", path);
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return rh_diag_fail(d, RH_EINVAL, "admin.operator_key_file %s: empty", path);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    char *colon = strchr(buf, ':');
    int rc;
    if (!colon || colon == buf || (size_t)(colon - buf) > RP_ID_MAX) {
        rc = rh_diag_fail(d, RH_EINVAL, "admin.operator_key_file %s: expected \"id:secret\"",
                          path);
    } else {
        *colon = '\0';
        rc = store_operator_key(db, buf, colon + 1, strlen(colon + 1), d);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}
