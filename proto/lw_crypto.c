/* lw_crypto.c — LoRaWAN MICs, encryption, key derivation and key wrap over OpenSSL 3 EVP
 * (see lw_crypto.h).
 * Invariants: algorithms are fetched once per process (pthread_once) and never freed; an
 * lw_aes128_key_t is either all-NULL or fully keyed; no function allocates per call except
 * lw_key_wrap/unwrap (one short-lived EVP_CIPHER_CTX); the OpenSSL error queue is cleared on
 * every failure so that errors do not leak into unrelated callers. */
#include "lw_crypto.h"

#include "rh_hex.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <string.h>

#define LW_PHY_MAX_CMAC 256 /* largest MIC message: B0 + 255-byte frame fits in 16 + 256 */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EVP_MAC *g_cmac;
static EVP_CIPHER *g_ecb;
static EVP_CIPHER *g_wrap[3]; /* AES-128/192/256-WRAP */

static void fetch_algorithms(void)
{
    g_cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    g_ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
    g_wrap[0] = EVP_CIPHER_fetch(NULL, "AES-128-WRAP", NULL);
    g_wrap[1] = EVP_CIPHER_fetch(NULL, "AES-192-WRAP", NULL);
    g_wrap[2] = EVP_CIPHER_fetch(NULL, "AES-256-WRAP", NULL);
}

static int fetched(void)
{
    pthread_once(&g_once, fetch_algorithms);
    return g_cmac && g_ecb && g_wrap[0] && g_wrap[1] && g_wrap[2];
}

static int crypto_fail(void)
{
    ERR_clear_error();
    return RH_ECRYPTO;
}

int lw_aes128_key_init(lw_aes128_key_t *k, const uint8_t key[16])
{
    memset(k, 0, sizeof *k);
    if (!fetched())
        return crypto_fail();
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)"AES-128-CBC", 0),
        OSSL_PARAM_construct_end(),
    };
    k->cmac = EVP_MAC_CTX_new(g_cmac);
    k->enc = EVP_CIPHER_CTX_new();
    k->dec = EVP_CIPHER_CTX_new();
    if (!k->cmac || !k->enc || !k->dec) {
        lw_aes128_key_fini(k);
        ERR_clear_error();
        return RH_ENOMEM;
    }
    if (EVP_MAC_init(k->cmac, key, LW_KEY_LEN, params) != 1 ||
        EVP_EncryptInit_ex2(k->enc, g_ecb, key, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(k->enc, 0) != 1 ||
        EVP_DecryptInit_ex2(k->dec, g_ecb, key, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(k->dec, 0) != 1) {
        lw_aes128_key_fini(k);
        return crypto_fail();
    }
    return RH_OK;
}

void lw_aes128_key_fini(lw_aes128_key_t *k)
{
    if (!k)
        return;
    EVP_MAC_CTX_free(k->cmac);
    EVP_CIPHER_CTX_free(k->enc);
    EVP_CIPHER_CTX_free(k->dec);
    memset(k, 0, sizeof *k);
}

/* CMAC over up to two parts (a B0/B1 block and the message) into mac[16]. */
static int cmac2(lw_aes128_key_t *k, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                 uint8_t mac[16])
{
    size_t outl = 0;
    uint8_t buf[16 + LW_PHY_MAX_CMAC];
    if (alen && blen && alen + blen <= sizeof buf) {
        /* one EVP_MAC_update instead of two: each provider call costs more than the copy */
        memcpy(buf, a, alen);
        memcpy(buf + alen, b, blen);
        a = buf;
        alen += blen;
        blen = 0;
    }
    if (!k->cmac || EVP_MAC_init(k->cmac, NULL, 0, NULL) != 1 ||
        (alen && EVP_MAC_update(k->cmac, a, alen) != 1) ||
        (blen && EVP_MAC_update(k->cmac, b, blen) != 1) ||
        EVP_MAC_final(k->cmac, mac, &outl, 16) != 1 || outl != 16)
        return crypto_fail();
    return RH_OK;
}

int lw_aes_cmac(lw_aes128_key_t *k, const uint8_t *msg, size_t len, uint8_t mac[16])
{
    return cmac2(k, msg, len, NULL, 0, mac);
}

static int ecb(EVP_CIPHER_CTX *ctx, const uint8_t *in, uint8_t *out, size_t nblocks)
{
    int outl = 0;
    if (nblocks == 0)
        return RH_OK;
    if (!ctx || nblocks > 0x7FFFFFF || EVP_CipherUpdate(ctx, out, &outl, in, (int)(nblocks * 16)) != 1 ||
        (size_t)outl != nblocks * 16)
        return crypto_fail();
    return RH_OK;
}

int lw_aes_encrypt_blocks(lw_aes128_key_t *k, const uint8_t *in, uint8_t *out, size_t nblocks)
{
    return ecb(k->enc, in, out, nblocks);
}

int lw_aes_decrypt_blocks(lw_aes128_key_t *k, const uint8_t *in, uint8_t *out, size_t nblocks)
{
    return ecb(k->dec, in, out, nblocks);
}

bool lw_mic_equal(const uint8_t a[4], const uint8_t b[4]) { return CRYPTO_memcmp(a, b, 4) == 0; }

int lw_cmac_mic(lw_aes128_key_t *k, const uint8_t *msg, size_t len, uint8_t mic[4])
{
    uint8_t mac[16];
    int rc = cmac2(k, msg, len, NULL, 0, mac);
    if (rc == RH_OK)
        memcpy(mic, mac, 4);
    return rc;
}

int lw_cmac_mic_verify(lw_aes128_key_t *k, const uint8_t *phy, size_t phy_len)
{
    uint8_t mic[4];
    if (phy_len < 5)
        return RH_ESIZE;
    int rc = lw_cmac_mic(k, phy, phy_len - 4, mic);
    if (rc != RH_OK)
        return rc;
    return lw_mic_equal(mic, phy + phy_len - 4) ? RH_OK : RH_EMIC;
}

/* B0/B1/A_i layout: tag | 4 bytes (ConfFCnt etc.) | dir | DevAddr LE | FCnt LE | 0x00 | last. */
static void block(uint8_t b[16], uint8_t tag, uint8_t dir, uint32_t devaddr, uint32_t fcnt,
                  uint8_t last)
{
    b[0] = tag;
    b[1] = b[2] = b[3] = b[4] = 0;
    b[5] = dir;
    rh_put_le32(b + 6, devaddr);
    rh_put_le32(b + 10, fcnt);
    b[14] = 0;
    b[15] = last;
}

int lw_data_mic_1_0(lw_aes128_key_t *nwk_s_key, lw_dir_t dir, uint32_t devaddr, uint32_t fcnt,
                    const uint8_t *msg, size_t msg_len, uint8_t mic[4])
{
    uint8_t b0[16], mac[16];
    if (msg_len > 255)
        return RH_ESIZE;
    block(b0, 0x49, (uint8_t)dir, devaddr, fcnt, (uint8_t)msg_len);
    int rc = cmac2(nwk_s_key, b0, 16, msg, msg_len, mac);
    if (rc == RH_OK)
        memcpy(mic, mac, 4);
    return rc;
}

int lw_data_mic_verify_1_0(lw_aes128_key_t *nwk_s_key, lw_dir_t dir, uint32_t devaddr,
                           uint32_t fcnt, const uint8_t *phy, size_t phy_len)
{
    uint8_t mic[4];
    if (phy_len < 12 || phy_len > 255)
        return RH_ESIZE;
    int rc = lw_data_mic_1_0(nwk_s_key, dir, devaddr, fcnt, phy, phy_len - 4, mic);
    if (rc != RH_OK)
        return rc;
    return lw_mic_equal(mic, phy + phy_len - 4) ? RH_OK : RH_EMIC;
}

int lw_data_up_mic_1_1(lw_aes128_key_t *s_nwk_s_int_key, lw_aes128_key_t *f_nwk_s_int_key,
                       uint16_t conf_fcnt, uint8_t tx_dr, uint8_t tx_ch, uint32_t devaddr,
                       uint32_t fcnt, const uint8_t *msg, size_t msg_len, uint8_t mic[4])
{
    uint8_t b0[16], b1[16], macs[16], macf[16];
    if (msg_len > 255)
        return RH_ESIZE;
    block(b0, 0x49, 0, devaddr, fcnt, (uint8_t)msg_len);
    block(b1, 0x49, 0, devaddr, fcnt, (uint8_t)msg_len);
    rh_put_le16(b1 + 1, conf_fcnt);
    b1[3] = tx_dr;
    b1[4] = tx_ch;
    int rc = cmac2(s_nwk_s_int_key, b1, 16, msg, msg_len, macs);
    if (rc == RH_OK)
        rc = cmac2(f_nwk_s_int_key, b0, 16, msg, msg_len, macf);
    if (rc != RH_OK)
        return rc;
    mic[0] = macs[0];
    mic[1] = macs[1];
    mic[2] = macf[0];
    mic[3] = macf[1];
    return RH_OK;
}

int lw_data_down_mic_1_1(lw_aes128_key_t *s_nwk_s_int_key, uint16_t conf_fcnt, uint32_t devaddr,
                         uint32_t fcnt, const uint8_t *msg, size_t msg_len, uint8_t mic[4])
{
    uint8_t b0[16], mac[16];
    if (msg_len > 255)
        return RH_ESIZE;
    block(b0, 0x49, 1, devaddr, fcnt, (uint8_t)msg_len);
    rh_put_le16(b0 + 1, conf_fcnt);
    int rc = cmac2(s_nwk_s_int_key, b0, 16, msg, msg_len, mac);
    if (rc == RH_OK)
        memcpy(mic, mac, 4);
    return rc;
}

int lw_frm_payload_crypt(lw_aes128_key_t *key, lw_dir_t dir, uint32_t devaddr, uint32_t fcnt,
                         const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t s[16 * 16];
    if (len > 255)
        return RH_ESIZE;
    size_t nblocks = (len + 15) / 16;
    for (size_t i = 0; i < nblocks; i++)
        block(s + 16 * i, 0x01, (uint8_t)dir, devaddr, fcnt, (uint8_t)(i + 1));
    int rc = lw_aes_encrypt_blocks(key, s, s, nblocks);
    if (rc != RH_OK)
        return rc;
    for (size_t i = 0; i < len; i++)
        out[i] = in[i] ^ s[i];
    OPENSSL_cleanse(s, sizeof s);
    return RH_OK;
}

int lw_fopts_crypt(lw_aes128_key_t *nwk_s_enc_key, lw_dir_t dir, bool a_fcnt_down,
                   uint32_t devaddr, uint32_t fcnt, const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t a[16];
    if (len > 15)
        return RH_ESIZE;
    block(a, 0x01, (uint8_t)dir, devaddr, fcnt, 0x01);
    a[4] = (dir == LW_DOWNLINK && a_fcnt_down) ? 0x02 : 0x01;
    int rc = lw_aes_encrypt_blocks(nwk_s_enc_key, a, a, 1);
    if (rc != RH_OK)
        return rc;
    for (size_t i = 0; i < len; i++)
        out[i] = in[i] ^ a[i];
    OPENSSL_cleanse(a, sizeof a);
    return RH_OK;
}

int lw_join_accept_encrypt(lw_aes128_key_t *key, const uint8_t *plain, size_t len, uint8_t *out)
{
    if (len != 17 && len != 33)
        return RH_ESIZE;
    out[0] = plain[0];
    return lw_aes_decrypt_blocks(key, plain + 1, out + 1, (len - 1) / 16);
}

int lw_join_accept_decrypt(lw_aes128_key_t *key, const uint8_t *enc, size_t len, uint8_t *out)
{
    if (len != 17 && len != 33)
        return RH_ESIZE;
    out[0] = enc[0];
    return lw_aes_encrypt_blocks(key, enc + 1, out + 1, (len - 1) / 16);
}

int lw_join_accept_mic_1_1(lw_aes128_key_t *js_int_key, uint8_t join_req_type, uint64_t join_eui,
                           uint16_t dev_nonce, const uint8_t *msg, size_t msg_len, uint8_t mic[4])
{
    uint8_t hdr[11], mac[16];
    if (msg_len != 13 && msg_len != 29)
        return RH_ESIZE;
    hdr[0] = join_req_type;
    rh_put_le64(hdr + 1, join_eui);
    rh_put_le16(hdr + 9, dev_nonce);
    int rc = cmac2(js_int_key, hdr, sizeof hdr, msg, msg_len, mac);
    if (rc == RH_OK)
        memcpy(mic, mac, 4);
    return rc;
}

static int derive(lw_aes128_key_t *k, uint8_t tag, const uint8_t *data, size_t n, uint8_t out[16])
{
    uint8_t b[16] = {0};
    b[0] = tag;
    memcpy(b + 1, data, n);
    int rc = lw_aes_encrypt_blocks(k, b, out, 1);
    OPENSSL_cleanse(b, sizeof b);
    return rc;
}

int lw_derive_session_keys_1_0(lw_aes128_key_t *app_key, uint32_t join_nonce, uint32_t netid,
                               uint16_t dev_nonce, lw_session_keys_t *out)
{
    uint8_t d[8];
    if (join_nonce > 0xFFFFFFu || netid > 0xFFFFFFu)
        return RH_EINVAL;
    for (int i = 0; i < 3; i++) {
        d[i] = (uint8_t)(join_nonce >> (8 * i));
        d[3 + i] = (uint8_t)(netid >> (8 * i));
    }
    rh_put_le16(d + 6, dev_nonce);
    int rc = derive(app_key, 0x01, d, 8, out->f_nwk_s_int_key);
    if (rc == RH_OK)
        rc = derive(app_key, 0x02, d, 8, out->app_s_key);
    if (rc != RH_OK)
        return rc;
    memcpy(out->s_nwk_s_int_key, out->f_nwk_s_int_key, 16);
    memcpy(out->nwk_s_enc_key, out->f_nwk_s_int_key, 16);
    return RH_OK;
}

int lw_session_keys_1_0_init(lw_aes128_key_t *app_key, uint32_t join_nonce, uint32_t netid,
                             uint16_t dev_nonce, lw_aes128_key_t *nwk_s_key,
                             lw_aes128_key_t *app_s_key)
{
    lw_session_keys_t sk;
    int rc = lw_derive_session_keys_1_0(app_key, join_nonce, netid, dev_nonce, &sk);
    lw_aes128_key_fini(nwk_s_key);
    lw_aes128_key_fini(app_s_key);
    if (rc == RH_OK)
        rc = lw_aes128_key_init(nwk_s_key, sk.f_nwk_s_int_key);
    if (rc == RH_OK)
        rc = lw_aes128_key_init(app_s_key, sk.app_s_key);
    OPENSSL_cleanse(&sk, sizeof sk);
    if (rc != RH_OK) {
        lw_aes128_key_fini(nwk_s_key);
        lw_aes128_key_fini(app_s_key);
    }
    return rc;
}

int lw_derive_session_keys_1_1(lw_aes128_key_t *nwk_key, lw_aes128_key_t *app_key,
                               uint32_t join_nonce, uint64_t join_eui, uint16_t dev_nonce,
                               lw_session_keys_t *out)
{
    uint8_t d[13];
    if (join_nonce > 0xFFFFFFu)
        return RH_EINVAL;
    d[0] = (uint8_t)join_nonce;
    d[1] = (uint8_t)(join_nonce >> 8);
    d[2] = (uint8_t)(join_nonce >> 16);
    rh_put_le64(d + 3, join_eui);
    rh_put_le16(d + 11, dev_nonce);
    int rc = derive(nwk_key, 0x01, d, 13, out->f_nwk_s_int_key);
    if (rc == RH_OK)
        rc = derive(nwk_key, 0x03, d, 13, out->s_nwk_s_int_key);
    if (rc == RH_OK)
        rc = derive(nwk_key, 0x04, d, 13, out->nwk_s_enc_key);
    if (rc == RH_OK)
        rc = derive(app_key, 0x02, d, 13, out->app_s_key);
    return rc;
}

int lw_derive_js_keys_1_1(lw_aes128_key_t *nwk_key, uint64_t dev_eui, uint8_t js_int_key[16],
                          uint8_t js_enc_key[16])
{
    uint8_t d[8];
    int rc = RH_OK;
    rh_put_le64(d, dev_eui);
    if (js_int_key)
        rc = derive(nwk_key, 0x06, d, 8, js_int_key);
    if (rc == RH_OK && js_enc_key)
        rc = derive(nwk_key, 0x05, d, 8, js_enc_key);
    return rc;
}

static EVP_CIPHER *wrap_cipher(size_t kek_len)
{
    switch (kek_len) {
    case 16: return g_wrap[0];
    case 24: return g_wrap[1];
    case 32: return g_wrap[2];
    default: return NULL;
    }
}

/* One RFC 3394 pass: enc != 0 wraps, else unwraps. */
static int wrap_op(int enc, const uint8_t *kek, size_t kek_len, const uint8_t *in, size_t in_len,
                   uint8_t *out, size_t out_len, rh_diag_t *diag)
{
    if (!fetched())
        return crypto_fail();
    EVP_CIPHER *c = wrap_cipher(kek_len);
    if (!c)
        return rh_diag_fail(diag, RH_EINVAL, "KEK: %zu bytes, must be 16, 24 or 32", kek_len);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        return RH_ENOMEM;
    uint8_t tmp[80];
    int n = 0, fin = 0, rc = RH_OK;
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    if (EVP_CipherInit_ex2(ctx, c, kek, NULL, enc, NULL) != 1) {
        rc = crypto_fail();
    } else if (EVP_CipherUpdate(ctx, tmp, &n, in, (int)in_len) != 1 ||
               EVP_CipherFinal_ex(ctx, tmp + n, &fin) != 1 || (size_t)(n + fin) != out_len) {
        ERR_clear_error();
        rc = enc ? RH_ECRYPTO
                 : rh_diag_fail(diag, RH_EMIC,
                                "AESKey: key unwrap integrity check failed (wrong KEK or "
                                "corrupted data)");
    } else {
        memcpy(out, tmp, out_len);
    }
    OPENSSL_cleanse(tmp, sizeof tmp);
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int lw_key_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *key, size_t key_len,
                uint8_t *out, size_t cap, size_t *out_len, rh_diag_t *diag)
{
    *out_len = 0;
    if (key_len < 16 || key_len > 64 || key_len % 8)
        return rh_diag_fail(diag, RH_EINVAL, "Key: %zu bytes, must be a multiple of 8 in 16..64",
                            key_len);
    if (cap < key_len + 8)
        return rh_diag_fail(diag, RH_ERANGE, "AESKey: needs %zu bytes, buffer holds %zu",
                            key_len + 8, cap);
    int rc = wrap_op(1, kek, kek_len, key, key_len, out, key_len + 8, diag);
    if (rc == RH_OK)
        *out_len = key_len + 8;
    return rc;
}

int lw_key_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *wrapped, size_t wrapped_len,
                  uint8_t *out, size_t cap, size_t *out_len, rh_diag_t *diag)
{
    *out_len = 0;
    if (wrapped_len < 24 || wrapped_len > 72 || wrapped_len % 8)
        return rh_diag_fail(diag, RH_EINVAL,
                            "AESKey: %zu wrapped bytes, must be a multiple of 8 in 24..72",
                            wrapped_len);
    if (cap < wrapped_len - 8)
        return rh_diag_fail(diag, RH_ERANGE, "Key: needs %zu bytes, buffer holds %zu",
                            wrapped_len - 8, cap);
    int rc = wrap_op(0, kek, kek_len, wrapped, wrapped_len, out, wrapped_len - 8, diag);
    if (rc == RH_OK)
        *out_len = wrapped_len - 8;
    else if (rc == RH_EMIC)
        memset(out, 0, wrapped_len - 8);
    return rc;
}
