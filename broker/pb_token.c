/* pb_token.c — sealed cross-protocol tokens: AES-256-GCM with OpenSSL EVP (see pb_token.h). */
#include "pb_token.h"

#include "rh_fs.h"
#include "rh_hex.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR (1 + 8 + 12)
#define TAG 16
#define VERSION 1

int pb_token_key_init(pb_token_key_t *key, const char *path, rh_diag_t *d)
{
    if (!path)
        return RAND_bytes(key->k, sizeof key->k) == 1 ? RH_OK : RH_ECRYPTO;
    char *buf = NULL;
    size_t len = 0;
    int rc = rh_read_file(path, 4096, &buf, &len, d);
    if (rc)
        return rc;
    const char *s = buf;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = 0;
    while (s[n] && !isspace((unsigned char)s[n]))
        n++;
    size_t out = 0;
    rc = n == 64 ? rh_hex_decode(s, n, key->k, sizeof key->k, &out, "grpc.token_key_file", NULL)
                 : RH_EINVAL;
    OPENSSL_cleanse(buf, len);
    free(buf);
    if (rc || out != sizeof key->k) {
        OPENSSL_cleanse(key->k, sizeof key->k);
        return rh_diag_fail(d, RH_EINVAL, "grpc.token_key_file %s: expected 64 hex digits (a "
                            "32-byte key)", path);
    }
    return RH_OK;
}

size_t pb_token_aad(char *out, size_t cap, uint32_t net_id, const char *tenant,
                    const char *cluster)
{
    int n = snprintf(out, cap, "%06x:%s:%s", (unsigned)net_id, tenant ? tenant : "",
                     cluster ? cluster : "");
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

/* One AES-256-GCM pass: encrypt (enc 1) or decrypt-and-verify (enc 0). aad = header + identity.
 * Returns RH_OK, RH_EPERM (tag mismatch) or RH_ECRYPTO. */
static int gcm(int enc, const pb_token_key_t *key, const uint8_t hdr[HDR], const char *id,
               const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[TAG])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ok = c != NULL, l = 0;
    ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key->k, hdr + 9, enc) == 1;
    ok = ok && EVP_CipherUpdate(c, NULL, &l, hdr, HDR) == 1;
    ok = ok && EVP_CipherUpdate(c, NULL, &l, (const uint8_t *)id, (int)strlen(id)) == 1;
    ok = ok && (n == 0 || EVP_CipherUpdate(c, out, &l, in, (int)n) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, tag) == 1;
    int rc = RH_ECRYPTO;
    if (ok) {
        int fin = EVP_CipherFinal_ex(c, out + (n ? l : 0), &l);
        if (enc)
            rc = fin == 1 && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag) == 1
                     ? RH_OK
                     : RH_ECRYPTO;
        else
            rc = fin == 1 ? RH_OK : RH_EPERM;
    }
    EVP_CIPHER_CTX_free(c);
    return rc;
}

int pb_token_seal(const pb_token_key_t *key, const uint8_t *pt, size_t n, const char *aad,
                  int64_t expires_s, uint8_t *out, size_t cap, size_t *len)
{
    size_t total = n + PB_TOKEN_OVERHEAD;
    if (total > cap || total > PB_TOKEN_MAX)
        return RH_ERANGE;
    out[0] = VERSION;
    for (int i = 0; i < 8; i++)
        out[1 + i] = (uint8_t)((uint64_t)expires_s >> (56 - 8 * i));
    if (RAND_bytes(out + 9, 12) != 1)
        return RH_ECRYPTO;
    int rc = gcm(1, key, out, aad ? aad : "", pt, n, out + HDR, out + HDR + n);
    if (rc == RH_OK)
        *len = total;
    return rc;
}

int pb_token_open(const pb_token_key_t *key, const uint8_t *tok, size_t n, const char *aad,
                  int64_t now_s, uint8_t *pt, size_t cap, size_t *len, rh_diag_t *d)
{
    if (n < PB_TOKEN_OVERHEAD || n > PB_TOKEN_MAX || tok[0] != VERSION)
        return rh_diag_fail(d, RH_EINVAL, "malformed token (%zu bytes%s)", n,
                            n && tok[0] != VERSION ? ", unknown version" : "");
    size_t m = n - PB_TOKEN_OVERHEAD;
    if (m > cap)
        return rh_diag_fail(d, RH_ERANGE, "token too large");
    uint8_t tag[TAG];
    memcpy(tag, tok + n - TAG, TAG);
    int rc = gcm(0, key, tok, aad ? aad : "", tok + HDR, m, pt, tag);
    if (rc == RH_EPERM) {
        OPENSSL_cleanse(pt, m);
        return rh_diag_fail(d, RH_EPERM, "token does not authenticate (altered, sealed by "
                            "another hub, or for another forwarder)");
    }
    if (rc)
        return rh_diag_fail(d, rc, "token could not be opened (crypto failure)");
    uint64_t exp = 0;
    for (int i = 0; i < 8; i++)
        exp = (exp << 8) | tok[1 + i];
    if ((int64_t)exp < now_s) {
        OPENSSL_cleanse(pt, m);
        return rh_diag_fail(d, RH_ETIMEDOUT, "token expired %lld s ago",
                            (long long)(now_s - (int64_t)exp));
    }
    *len = m;
    return RH_OK;
}

/* ---------------------------------------------------------------- BridgeToken */

int pb_token_seal_bridge(const pb_token_key_t *key, const Roamhub__V1__BridgeToken *bt,
                         const char *aad, int64_t now_s, uint8_t *out, size_t cap, size_t *len)
{
    size_t n = roamhub__v1__bridge_token__get_packed_size(bt);
    if (n + PB_TOKEN_OVERHEAD > PB_TOKEN_MAX || n + PB_TOKEN_OVERHEAD > cap)
        return RH_ERANGE;
    uint8_t pt[PB_TOKEN_MAX];
    roamhub__v1__bridge_token__pack(bt, pt);
    int rc = pb_token_seal(key, pt, n, aad, now_s + PB_TOKEN_TTL_S, out, cap, len);
    OPENSSL_cleanse(pt, n);
    return rc;
}

int pb_token_open_bridge(const pb_token_key_t *key, const uint8_t *tok, size_t n,
                         const char *aad, int64_t now_s, Roamhub__V1__BridgeToken **out,
                         rh_diag_t *d)
{
    uint8_t pt[PB_TOKEN_MAX];
    size_t m = 0;
    *out = NULL;
    int rc = pb_token_open(key, tok, n, aad, now_s, pt, sizeof pt, &m, d);
    if (rc)
        return rc;
    *out = roamhub__v1__bridge_token__unpack(NULL, m, pt);
    OPENSSL_cleanse(pt, m);
    return *out ? RH_OK : rh_diag_fail(d, RH_EINVAL, "token does not decode");
}

int pb_token_open_bridge_hex(const pb_token_key_t *key, const char *hex, const char *aad,
                             int64_t now_s, Roamhub__V1__BridgeToken **out, rh_diag_t *d)
{
    uint8_t tok[PB_TOKEN_MAX];
    size_t n = 0, hl = hex ? strlen(hex) : 0;
    *out = NULL;
    if (hl == 0 || hl > 2 * PB_TOKEN_MAX ||
        rh_hex_decode(hex, hl, tok, sizeof tok, &n, "token", NULL) != RH_OK)
        return rh_diag_fail(d, RH_EINVAL, "malformed token (not hex of at most %d bytes)",
                            PB_TOKEN_MAX);
    return pb_token_open_bridge(key, tok, n, aad, now_s, out, d);
}
