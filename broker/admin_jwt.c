/* admin_jwt.c — strict JWT verification and issuing around libjwt (see admin_jwt.h). */
#include "admin_jwt.h"

#include "rh_json.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct admin_jwt {
    jwt_alg_t alg;
    char alg_name[8];
    uint8_t *verify_key; /* HS256 secret or public key PEM */
    size_t verify_len;
    uint8_t *sign_key;   /* HS256 secret or private key PEM; NULL = cannot issue */
    size_t sign_len;
    size_t sig_len;      /* expected signature bytes */
    char *issuer, *audience;
    unsigned ttl_s, leeway_s, max_lifetime_s;
};

const char *admin_jwt_alg(const admin_jwt_t *j) { return j->alg_name; }
int admin_jwt_can_issue(const admin_jwt_t *j) { return j->sign_key != NULL; }

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

/* Checks a PEM key's type against the algorithm; *sig_len gets the signature size. */
static int check_pem(const char *pem, int is_private, jwt_alg_t alg, size_t *sig_len,
                     const char *what, rh_diag_t *d)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    if (!b)
        return RH_ENOMEM;
    EVP_PKEY *k = is_private ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)
                             : PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    BIO_free(b);
    ERR_clear_error();
    if (!k)
        return rh_diag_fail(d, RH_ECRYPTO, "%s: not a readable PEM %s key", what,
                            is_private ? "private" : "public");
    int rc = RH_OK;
    if (alg == JWT_ALG_ES256) {
        char group[64] = "";
        size_t glen = 0;
        if (EVP_PKEY_base_id(k) != EVP_PKEY_EC ||
            !EVP_PKEY_get_utf8_string_param(k, "group", group, sizeof group, &glen) ||
            strcmp(group, "prime256v1") != 0)
            rc = rh_diag_fail(d, RH_EINVAL, "%s: ES256 needs an EC key on P-256", what);
        *sig_len = 64;
    } else {
        if (EVP_PKEY_base_id(k) != EVP_PKEY_RSA || EVP_PKEY_get_bits(k) < 2048)
            rc = rh_diag_fail(d, RH_EINVAL, "%s: RS256 needs an RSA key of at least 2048 bits",
                              what);
        *sig_len = (size_t)EVP_PKEY_get_size(k);
    }
    EVP_PKEY_free(k);
    return rc;
}

int admin_jwt_new(const admin_jwt_opts_t *o, admin_jwt_t **out, rh_diag_t *d)
{
    *out = NULL;
    if (!o || !o->alg || !o->issuer || !o->audience)
        return rh_diag_fail(d, RH_EINVAL, "admin.jwt_alg: missing");
    admin_jwt_t *j = calloc(1, sizeof *j);
    if (!j)
        return RH_ENOMEM;
    int rc = RH_OK;
    if (!strcmp(o->alg, "HS256")) {
        j->alg = JWT_ALG_HS256;
        j->sig_len = 32;
        if (!o->secret || o->secret_len < 32) {
            rc = rh_diag_fail(d, RH_EINVAL, "admin.jwt_secret_file: HS256 needs a secret of at "
                              "least 32 bytes");
            goto fail;
        }
        j->verify_key = dup_bytes(o->secret, o->secret_len);
        j->sign_key = dup_bytes(o->secret, o->secret_len);
        j->verify_len = j->sign_len = o->secret_len;
        if (!j->verify_key || !j->sign_key) {
            rc = RH_ENOMEM;
            goto fail;
        }
    } else if (!strcmp(o->alg, "ES256") || !strcmp(o->alg, "RS256")) {
        j->alg = o->alg[0] == 'E' ? JWT_ALG_ES256 : JWT_ALG_RS256;
        if (!o->public_key_pem) {
            rc = rh_diag_fail(d, RH_EINVAL, "admin.jwt_public_key_file: %s needs a public key",
                              o->alg);
            goto fail;
        }
        rc = check_pem(o->public_key_pem, 0, j->alg, &j->sig_len, "admin.jwt_public_key_file", d);
        if (rc)
            goto fail;
        j->verify_len = strlen(o->public_key_pem);
        j->verify_key = dup_bytes(o->public_key_pem, j->verify_len);
        if (!j->verify_key) {
            rc = RH_ENOMEM;
            goto fail;
        }
        if (o->private_key_pem) {
            size_t sl;
            rc = check_pem(o->private_key_pem, 1, j->alg, &sl, "admin.jwt_private_key_file", d);
            if (rc)
                goto fail;
            j->sign_len = strlen(o->private_key_pem);
            j->sign_key = dup_bytes(o->private_key_pem, j->sign_len);
            if (!j->sign_key) {
                rc = RH_ENOMEM;
                goto fail;
            }
        }
    } else {
        rc = rh_diag_fail(d, RH_EINVAL, "admin.jwt_alg: expected HS256, ES256 or RS256");
        goto fail;
    }
    snprintf(j->alg_name, sizeof j->alg_name, "%s", o->alg);
    j->issuer = strdup(o->issuer);
    j->audience = strdup(o->audience);
    j->ttl_s = o->ttl_s ? o->ttl_s : 900;
    j->leeway_s = o->leeway_s ? o->leeway_s : 60;
    j->max_lifetime_s = o->max_lifetime_s ? o->max_lifetime_s : 86400;
    if (!j->issuer || !j->audience) {
        rc = RH_ENOMEM;
        goto fail;
    }
    *out = j;
    return RH_OK;
fail:
    admin_jwt_free(j);
    return rc;
}

void admin_jwt_free(admin_jwt_t *j)
{
    if (!j)
        return;
    if (j->verify_key)
        OPENSSL_cleanse(j->verify_key, j->verify_len);
    if (j->sign_key)
        OPENSSL_cleanse(j->sign_key, j->sign_len);
    free(j->verify_key);
    free(j->sign_key);
    free(j->issuer);
    free(j->audience);
    free(j);
}

/* ------------------------------------------------------------------ issuing */

int admin_jwt_issue(const admin_jwt_t *j, const char *sub, int64_t now_s, char **token,
                    int64_t *exp_s)
{
    return admin_jwt_issue_ex(j, sub, NULL, NULL, now_s, token, exp_s);
}

/* The extra audience and claims as one JSON object for jwt_add_grants_json, or NULL. */
static char *extra_grants(const admin_jwt_t *j, const char *extra_aud, const cJSON *extra)
{
    cJSON *o = extra ? cJSON_Duplicate(extra, 1) : cJSON_CreateObject();
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    if (extra_aud) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "aud");
        cJSON *aud = cJSON_AddArrayToObject(o, "aud");
        if (!aud || !cJSON_AddItemToArray(aud, cJSON_CreateString(j->audience)) ||
            !cJSON_AddItemToArray(aud, cJSON_CreateString(extra_aud))) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    static const char *const reserved[] = {"iss", "sub", "jti", "iat", "nbf", "exp"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(o, reserved[i]);
    if (!extra_aud)
        cJSON_DeleteItemFromObjectCaseSensitive(o, "aud");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int admin_jwt_issue_ex(const admin_jwt_t *j, const char *sub, const char *extra_aud,
                       const cJSON *extra, int64_t now_s, char **token, int64_t *exp_s)
{
    *token = NULL;
    if (extra && !cJSON_IsObject(extra))
        return RH_EINVAL;
    if (extra_aud && (!*extra_aud || !strcmp(extra_aud, j->audience)))
        return RH_EINVAL;
    if (!sub || !*sub || strlen(sub) > 128)
        return RH_EINVAL;
    if (!j->sign_key)
        return RH_EUNSUPPORTED;
    uint8_t rnd[16];
    char jti[33];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return RH_ECRYPTO;
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(jti + 2 * i, 3, "%02x", rnd[i]);
    jwt_t *t = NULL;
    if (jwt_new(&t) != 0)
        return RH_ENOMEM;
    int64_t exp = now_s + (int64_t)j->ttl_s;
    char *more = NULL;
    if (extra_aud || extra) {
        more = extra_grants(j, extra_aud, extra);
        if (!more) {
            jwt_free(t);
            return RH_ENOMEM;
        }
    }
    int bad = jwt_add_grant(t, "iss", j->issuer) ||
              (extra_aud ? 0 : jwt_add_grant(t, "aud", j->audience)) ||
              (more ? jwt_add_grants_json(t, more) : 0) || jwt_add_grant(t, "sub", sub) ||
              jwt_add_grant(t, "jti", jti) ||
              jwt_add_grant_int(t, "iat", (long)now_s) || jwt_add_grant_int(t, "nbf", (long)now_s) ||
              jwt_add_grant_int(t, "exp", (long)exp) ||
              jwt_set_alg(t, j->alg, j->sign_key, (int)j->sign_len);
    cJSON_free(more);
    char *s = bad ? NULL : jwt_encode_str(t);
    jwt_free(t);
    if (!s)
        return bad ? RH_ENOMEM : RH_ECRYPTO;
    *token = strdup(s);
    OPENSSL_cleanse(s, strlen(s));
    free(s); /* libjwt 1.10 allocates with malloc (no jwt_free_str yet) */
    if (!*token)
        return RH_ENOMEM;
    if (exp_s)
        *exp_s = exp;
    return RH_OK;
}

/* ------------------------------------------------------------------ verification */

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Strict base64url (RFC 4648 §5, unpadded) decode: only the alphabet, length mod 4 != 1, unused
 * bits of the last character zero (so the text is the canonical encoding of the bytes).
 * Returns the decoded length or -1. out must hold n*3/4 bytes. */
static long b64url_decode(const char *s, size_t n, uint8_t *out)
{
    if (n == 0 || n % 4 == 1)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1)) != 0)
        return -1; /* non-zero pad bits: not canonical */
    return (long)o;
}

/* A JSON integer (exact, within +-2^53). */
static int json_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double x = v->valuedouble;
    if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0) || x != (double)(int64_t)x)
        return 0;
    *out = (int64_t)x;
    return 1;
}

static int id_chars_ok(const char *s, size_t max, int printable_any)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (printable_any) {
            if (c < 0x21 || c > 0x7e)
                return 0;
        } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* NUL bytes or \u0000 escapes: cJSON would silently cut strings there. */
static int has_nul(const uint8_t *p, size_t n)
{
    if (memchr(p, 0, n))
        return 1;
    for (size_t i = 0; i + 6 <= n; i++)
        if (p[i] == '\\' && p[i + 1] == 'u' && !memcmp(p + i + 2, "0000", 4))
            return 1;
    return 0;
}

static int check_header(const admin_jwt_t *j, const uint8_t *h, size_t n, rh_diag_t *d)
{
    if (has_nul(h, n))
        return rh_diag_fail(d, RH_EINVAL, "token header: contains a NUL character");
    /* the JSON input policy: a duplicate "sub" or "alg" would be read one way here and
     * another by libjwt (jansson keeps the last), so refuse it */
    cJSON *o = rh_json_parse((const char *)h, n, &rh_json_limits_admin, NULL, NULL);
    int rc = RH_OK;
    if (!cJSON_IsObject(o)) {
        rc = rh_diag_fail(d, RH_EINVAL, "token header: not a JSON object");
        goto out;
    }
    int have_alg = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        if (!strcmp(it->string, "alg")) {
            if (have_alg++ || !cJSON_IsString(it) || strcmp(it->valuestring, j->alg_name) != 0) {
                rc = rh_diag_fail(d, RH_EINVAL, "token header.alg: must be %s", j->alg_name);
                goto out;
            }
        } else if (!strcmp(it->string, "typ")) {
            if (!cJSON_IsString(it) || strcmp(it->valuestring, "JWT") != 0) {
                rc = rh_diag_fail(d, RH_EINVAL, "token header.typ: must be JWT");
                goto out;
            }
        } else if (!strcmp(it->string, "kid")) {
            if (!cJSON_IsString(it) || !id_chars_ok(it->valuestring, 64, 0)) {
                rc = rh_diag_fail(d, RH_EINVAL, "token header.kid: 1..64 characters of "
                                  "[A-Za-z0-9._-]");
                goto out;
            }
        } else {
            rc = rh_diag_fail(d, RH_EINVAL, "token header: unsupported member (only alg, typ, "
                              "kid)");
            goto out;
        }
    }
    if (!have_alg)
        rc = rh_diag_fail(d, RH_EINVAL, "token header.alg: missing");
out:
    cJSON_Delete(o);
    return rc;
}

static int check_claims(const admin_jwt_t *j, const char *audience, const uint8_t *p, size_t n,
                        int64_t now, admin_jwt_claims_t *c, cJSON **set_out, rh_diag_t *d)
{
    if (has_nul(p, n))
        return rh_diag_fail(d, RH_EINVAL, "token claims: contain a NUL character");
    /* the JSON input policy: a duplicate "sub" or "alg" would be read one way here and
     * another by libjwt (jansson keeps the last), so refuse it */
    cJSON *o = rh_json_parse((const char *)p, n, &rh_json_limits_admin, NULL, NULL);
    int rc = RH_OK;
    if (!cJSON_IsObject(o)) {
        rc = rh_diag_fail(d, RH_EINVAL, "token claims: not a JSON object");
        goto out;
    }
    const cJSON *iss = cJSON_GetObjectItemCaseSensitive(o, "iss");
    if (!cJSON_IsString(iss) || strcmp(iss->valuestring, j->issuer) != 0) {
        rc = rh_diag_fail(d, RH_EINVAL, "token iss: must be %s", j->issuer);
        goto out;
    }
    const cJSON *aud = cJSON_GetObjectItemCaseSensitive(o, "aud");
    int aud_ok = 0;
    if (cJSON_IsString(aud)) {
        aud_ok = strcmp(aud->valuestring, audience) == 0;
    } else if (cJSON_IsArray(aud)) {
        const cJSON *a;
        cJSON_ArrayForEach(a, aud) aud_ok |= cJSON_IsString(a) && !strcmp(a->valuestring, audience);
    }
    if (!aud_ok) {
        rc = rh_diag_fail(d, RH_EINVAL, "token aud: must include %s", audience);
        goto out;
    }
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(o, "sub");
    if (!cJSON_IsString(sub) || !id_chars_ok(sub->valuestring, 128, 1)) {
        rc = rh_diag_fail(d, RH_EINVAL, "token sub: missing or not an API key ID");
        goto out;
    }
    snprintf(c->sub, sizeof c->sub, "%s", sub->valuestring);
    const cJSON *jti = cJSON_GetObjectItemCaseSensitive(o, "jti");
    if (jti && !(cJSON_IsString(jti) && strlen(jti->valuestring) < sizeof c->jti)) {
        rc = rh_diag_fail(d, RH_EINVAL, "token jti: not a string of at most 64 characters");
        goto out;
    }
    if (jti)
        snprintf(c->jti, sizeof c->jti, "%s", jti->valuestring);
    int64_t lee = j->leeway_s;
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "exp");
    if (!exp || !json_int(exp, &c->exp)) {
        rc = rh_diag_fail(d, RH_EINVAL, "token exp: missing or not an integer");
        goto out;
    }
    if (c->exp + lee <= now) {
        rc = rh_diag_fail(d, RH_ETIMEDOUT, "token expired");
        goto out;
    }
    if (c->exp > now + (int64_t)j->max_lifetime_s + lee) {
        rc = rh_diag_fail(d, RH_ETIMEDOUT, "token exp: too far in the future");
        goto out;
    }
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(o, "nbf");
    if (nbf && !json_int(nbf, &c->nbf)) {
        rc = rh_diag_fail(d, RH_EINVAL, "token nbf: not an integer");
        goto out;
    }
    if (nbf && c->nbf > now + lee) {
        rc = rh_diag_fail(d, RH_ETIMEDOUT, "token not valid yet (nbf)");
        goto out;
    }
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(o, "iat");
    if (iat && !json_int(iat, &c->iat)) {
        rc = rh_diag_fail(d, RH_EINVAL, "token iat: not an integer");
        goto out;
    }
    if (iat && c->iat > now + lee) {
        rc = rh_diag_fail(d, RH_ETIMEDOUT, "token issued in the future (iat)");
        goto out;
    }
    if (set_out) { /* the caller reads its own claims from the checked set */
        *set_out = o;
        o = NULL;
    }
out:
    cJSON_Delete(o);
    return rc;
}

int admin_jwt_verify(const admin_jwt_t *j, const char *token, size_t len, int64_t now_s,
                     admin_jwt_claims_t *claims, rh_diag_t *d)
{
    return admin_jwt_verify_ex(j, token, len, NULL, now_s, claims, NULL, d);
}

int admin_jwt_verify_ex(const admin_jwt_t *j, const char *token, size_t len, const char *audience,
                        int64_t now_s, admin_jwt_claims_t *claims, cJSON **claims_set,
                        rh_diag_t *d)
{
    memset(claims, 0, sizeof *claims);
    if (claims_set)
        *claims_set = NULL;
    if (!audience)
        audience = j->audience;
    cJSON *set = NULL;
    if (!token || len == 0)
        return rh_diag_fail(d, RH_ERANGE, "token: empty");
    if (len > ADMIN_JWT_MAX)
        return rh_diag_fail(d, RH_ERANGE, "token: longer than %d bytes", ADMIN_JWT_MAX);
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2)
        return rh_diag_fail(d, RH_EINVAL, "token: not three dot-separated segments");
    size_t hl = (size_t)(dot1 - token), pl = (size_t)(dot2 - dot1 - 1);
    size_t sl = len - (size_t)(dot2 + 1 - token);
    if (hl == 0 || pl == 0 || sl == 0)
        return rh_diag_fail(d, RH_EINVAL, "token: empty segment");
    if (memchr(dot2 + 1, '.', sl))
        return rh_diag_fail(d, RH_EINVAL, "token: more than three segments");
    uint8_t *buf = malloc(len); /* decoded segments are shorter than the text */
    if (!buf)
        return RH_ENOMEM;
    int rc = RH_OK;
    long hn = b64url_decode(token, hl, buf);
    if (hn < 0) {
        rc = rh_diag_fail(d, RH_EINVAL, "token header: not canonical base64url");
        goto out;
    }
    rc = check_header(j, buf, (size_t)hn, d);
    if (rc)
        goto out;
    long sn = b64url_decode(dot2 + 1, sl, buf);
    if (sn < 0 || (size_t)sn != j->sig_len) {
        rc = rh_diag_fail(d, RH_EINVAL, "token signature: not canonical base64url of %zu bytes",
                          j->sig_len);
        goto out;
    }
    long pn = b64url_decode(dot1 + 1, pl, buf);
    if (pn < 0) {
        rc = rh_diag_fail(d, RH_EINVAL, "token claims: not canonical base64url");
        goto out;
    }
    rc = check_claims(j, audience, buf, (size_t)pn, now_s, claims, claims_set ? &set : NULL, d);
    if (rc)
        goto out;
    /* the signature last: libjwt needs a NUL-terminated copy */
    char *copy = malloc(len + 1);
    if (!copy) {
        rc = RH_ENOMEM;
        goto out;
    }
    memcpy(copy, token, len);
    copy[len] = '\0';
    jwt_t *t = NULL;
    int jr = jwt_decode(&t, copy, j->verify_key, (int)j->verify_len);
    free(copy);
    if (jr != 0 || !t || jwt_get_alg(t) != j->alg)
        rc = rh_diag_fail(d, RH_EPERM, "token signature: does not verify");
    jwt_free(t);
out:
    free(buf);
    if (rc) {
        memset(claims, 0, sizeof *claims);
        cJSON_Delete(set);
    } else if (claims_set) {
        *claims_set = set;
    }
    return rc;
}
