/*
 * pba_token.c — the agent's token request form and answer (see pba_token.h).
 */
#include "pba_token.h"

#include "rh_json.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Appends s form-encoded; returns the new length. out has room (3 bytes per input byte). */
static size_t form_enc(char *out, size_t n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[n++] = (char)ch;
        } else if (ch == ' ') {
            out[n++] = '+';
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    return n;
}

char *pba_token_form(const char *client_id, const char *client_secret, const char *scope,
                    const char *audience)
{
    const char *names[] = {"grant_type", "client_id", "client_secret", "scope", "audience"};
    const char *vals[] = {"client_credentials", client_id ? client_id : "",
                          client_secret ? client_secret : "", scope ? scope : "",
                          audience ? audience : ""};
    size_t cap = 1;
    for (size_t i = 0; i < 5; i++)
        cap += strlen(names[i]) + 2 + 3 * strlen(vals[i]);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < 5; i++) {
        if (i)
            out[n++] = '&';
        memcpy(out + n, names[i], strlen(names[i]));
        n += strlen(names[i]);
        out[n++] = '=';
        n = form_enc(out, n, vals[i]);
    }
    out[n] = 0;
    return out;
}

int pba_token_parse(const char *body, size_t len, char **token, uint64_t *expires_in_s,
                   rh_diag_t *diag)
{
    *token = NULL;
    *expires_in_s = 0;
    int rc = RH_EINVAL;
    cJSON *root = rh_json_parse(body, len, &rh_json_limits_admin, &rc, diag);
    if (!root)
        return rc;
    rc = RH_EINVAL;
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(root, "token_type");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    if (!cJSON_IsObject(root)) {
        rh_diag_fail(diag, rc, "token answer: expected a JSON object");
    } else if (!cJSON_IsString(at) || !at->valuestring[0]) {
        rh_diag_fail(diag, rc, "access_token: missing or not a non-empty string");
    } else if (!cJSON_IsString(tt) || strcasecmp(tt->valuestring, "bearer") != 0) {
        rh_diag_fail(diag, rc, "token_type: expected \"bearer\"");
    } else if (ex && !cJSON_IsNull(ex) &&
               (!cJSON_IsNumber(ex) || ex->valuedouble < 0 || ex->valuedouble > 1e9)) {
        rh_diag_fail(diag, rc, "expires_in: expected a number of seconds");
    } else if (!(*token = strdup(at->valuestring))) {
        rc = rh_diag_fail(diag, RH_ENOMEM, "access_token: out of memory");
    } else {
        *expires_in_s = cJSON_IsNumber(ex) ? (uint64_t)ex->valuedouble : 0;
        rc = RH_OK;
    }
    cJSON_Delete(root);
    return rc;
}

/* AES-GCM in one direction; aad is the forwarder identity. */
static int gcm(bool enc, const uint8_t *key, size_t keylen, const char *aad, const uint8_t *iv,
               const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[16])
{
    const EVP_CIPHER *ciph = keylen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int len = 0, ok = x && EVP_CipherInit_ex(x, ciph, NULL, NULL, NULL, enc ? 1 : 0) == 1 &&
                      EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
                      EVP_CipherInit_ex(x, NULL, NULL, key, iv, enc ? 1 : 0) == 1 &&
                      EVP_CipherUpdate(x, NULL, &len, (const uint8_t *)aad, (int)strlen(aad)) == 1 &&
                      (n == 0 || EVP_CipherUpdate(x, out, &len, in, (int)n) == 1);
    int rc = ok ? RH_OK : RH_ECRYPTO;
    if (ok && !enc && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1)
        rc = RH_ECRYPTO;
    if (rc == RH_OK && EVP_CipherFinal_ex(x, out + (n ? len : 0), &len) != 1)
        rc = enc ? RH_ECRYPTO : RH_EMIC;
    if (rc == RH_OK && enc && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        rc = RH_ECRYPTO;
    EVP_CIPHER_CTX_free(x);
    return rc;
}

static void identity(char *out, size_t cap, uint32_t net_id, const char *tenant, const char *cluster)
{
    snprintf(out, cap, "%06x:%s:%s", (unsigned)(net_id & 0xFFFFFF), tenant ? tenant : "",
             cluster ? cluster : "");
}

int pba_gwtoken_seal(const uint8_t *key, size_t keylen, uint32_t net_id, const char *tenant,
                    const char *cluster, const uint8_t *plain, size_t n, uint8_t *out, size_t cap,
                    size_t *outlen)
{
    if ((keylen != 16 && keylen != 32) || cap < n + PBA_GWTOKEN_OVERHEAD)
        return RH_EINVAL;
    char aad[320];
    identity(aad, sizeof aad, net_id, tenant, cluster);
    if (RAND_bytes(out, 12) != 1)
        return RH_ECRYPTO;
    int rc = gcm(true, key, keylen, aad, out, plain, n, out + 12, out + 12 + n);
    if (rc == RH_OK)
        *outlen = n + PBA_GWTOKEN_OVERHEAD;
    return rc;
}

int pba_gwtoken_open(const uint8_t *key, size_t keylen, uint32_t net_id, const char *tenant,
                    const char *cluster, const uint8_t *tok, size_t len, uint8_t *plain,
                    size_t cap, size_t *plainlen)
{
    if ((keylen != 16 && keylen != 32) || len < PBA_GWTOKEN_OVERHEAD ||
        cap < len - PBA_GWTOKEN_OVERHEAD)
        return RH_EINVAL;
    size_t n = len - PBA_GWTOKEN_OVERHEAD;
    uint8_t tag[16];
    memcpy(tag, tok + 12 + n, 16);
    char aad[320];
    identity(aad, sizeof aad, net_id, tenant, cluster);
    int rc = gcm(false, key, keylen, aad, tok, tok + 12, n, plain, tag);
    if (rc == RH_OK)
        *plainlen = n;
    else
        memset(plain, 0, n);
    return rc == RH_ECRYPTO ? RH_EMIC : rc;
}
