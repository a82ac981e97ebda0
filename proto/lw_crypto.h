/*
 * lw_crypto.h — LoRaWAN cryptography through OpenSSL 3 EVP: data MICs (TS001 1.0.4 §4.4,
 * 1.1 §4.4), join-request / rejoin-request / join-accept MICs and join-accept encryption
 * (1.0.4 §6.2.4-6.2.5, 1.1 §6.2.2-6.2.3 and §6.2.4.4), FRMPayload encryption (§4.3.3),
 * 1.1 FOpts encryption (1.1 §4.3.1.6 as amended by the 1.1 errata), session-key derivation
 * (1.0.x: NwkSKey/AppSKey; 1.1: FNwkSIntKey, SNwkSIntKey, NwkSEncKey, AppSKey, JSIntKey,
 * JSEncKey) and RFC 3394 AES key wrap (TS002 1.0 §6.6 KeyEnvelope).
 *
 * Keys: an lw_aes128_key_t holds a 16-byte AES key as ready OpenSSL state (a keyed CMAC context
 * and ECB encrypt/decrypt contexts), so a MIC costs no algorithm fetch, no key schedule and no
 * allocation: EVP_MAC_init(ctx, NULL...) restarts the keyed CMAC. Algorithms are fetched once
 * per process (pthread_once).
 *
 * THREAD SAFETY: an lw_aes128_key_t is NOT shareable between threads at the same time — every
 * operation mutates its EVP contexts (OpenSSL EVP_MAC_CTX / EVP_CIPHER_CTX are single-threaded).
 * Use one lw_aes128_key_t per thread per key (e.g. per session object owned by one worker), or
 * serialize access. Functions that take raw key bytes (key wrap) are thread-safe.
 *
 * Byte order: every LoRaWAN field inside B0/B1/A_i blocks and derivation blocks is little-endian
 * on the wire; arguments are host-order integers (DevAddr, FCnt, NetID, JoinNonce, DevNonce,
 * EUIs), exactly as in lw_frame.h. MICs are 4 bytes in wire order. Keys are 16 bytes as written
 * in display hex (no byte swapping: "0102..10" is bytes 01 02 .. 10).
 * Secrets never appear in diagnostics or logs.
 */
#ifndef LW_CRYPTO_H
#define LW_CRYPTO_H

#include "rh_err.h"

#include <openssl/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LW_KEY_LEN 16u

/* A 16-byte AES key with precomputed OpenSSL state. Zero-initialise (or lw_aes128_key_init) before
 * use; lw_aes128_key_fini() on a zeroed or initialised key is safe. Not copyable (owns contexts). */
typedef struct lw_aes128_key {
    EVP_MAC_CTX *cmac;    /* keyed AES-128-CMAC */
    EVP_CIPHER_CTX *enc;  /* AES-128-ECB encrypt, no padding */
    EVP_CIPHER_CTX *dec;  /* AES-128-ECB decrypt, no padding */
} lw_aes128_key_t;

/* Sets up *k for the 16 bytes at `key` (the key bytes are not kept anywhere else by roamhub).
 * Errors: RH_ECRYPTO (OpenSSL failed; *k is left zeroed), RH_ENOMEM. */
int lw_aes128_key_init(lw_aes128_key_t *k, const uint8_t key[16]);

/* Releases the contexts (OpenSSL clears the key schedules) and zeroes *k. NULL is a no-op. */
void lw_aes128_key_fini(lw_aes128_key_t *k);

/* --- primitives ---------------------------------------------------------------------------- */

/* Full 16-byte AES-CMAC (RFC 4493) of `len` bytes. Errors: RH_ECRYPTO. */
int lw_aes_cmac(lw_aes128_key_t *k, const uint8_t *msg, size_t len, uint8_t mac[16]);

/* AES-128 ECB over `nblocks` 16-byte blocks (in == out allowed). Errors: RH_ECRYPTO. */
int lw_aes_encrypt_blocks(lw_aes128_key_t *k, const uint8_t *in, uint8_t *out, size_t nblocks);
int lw_aes_decrypt_blocks(lw_aes128_key_t *k, const uint8_t *in, uint8_t *out, size_t nblocks);

/* Constant-time comparison of two 4-byte MICs: true when equal. */
bool lw_mic_equal(const uint8_t a[4], const uint8_t b[4]);

/* The first 4 bytes of AES-CMAC(key, msg): the MIC of join-request (key = AppKey in 1.0,
 * NwkKey in 1.1; msg = MHDR|JoinEUI|DevEUI|DevNonce), rejoin-request type 0/2 (SNwkSIntKey) and
 * type 1 (JSIntKey) (msg = the PHYPayload without its MIC), and the 1.0 join-accept
 * (key = AppKey, or NwkKey for a 1.1 device with OptNeg unset; msg = the plaintext MHDR|JoinNonce|
 * NetID|DevAddr|DLSettings|RxDelay|[CFList]). Errors: RH_ECRYPTO. */
int lw_cmac_mic(lw_aes128_key_t *k, const uint8_t *msg, size_t len, uint8_t mic[4]);

/* Verifies the MIC of a join-request or rejoin-request PHYPayload (the last 4 bytes are the MIC,
 * computed with lw_cmac_mic over the rest). Errors: RH_ESIZE (phy_len < 5), RH_EMIC (mismatch),
 * RH_ECRYPTO. */
int lw_cmac_mic_verify(lw_aes128_key_t *k, const uint8_t *phy, size_t phy_len);

/* --- data frames --------------------------------------------------------------------------- */

typedef enum lw_dir { LW_UPLINK = 0, LW_DOWNLINK = 1 } lw_dir_t;

/* LoRaWAN 1.0.x data MIC: first 4 bytes of AES-CMAC(NwkSKey, B0 | msg) with
 * B0 = 0x49 | 4x00 | Dir | DevAddr(LE) | FCnt(LE, 32 bits) | 0x00 | len(msg).
 * msg = MHDR..FRMPayload (the PHYPayload without its MIC), msg_len <= 251.
 * devaddr host order; fcnt the full 32-bit counter (lw_fcnt_extend).
 * Errors: RH_ESIZE (msg_len > 255), RH_ECRYPTO. */
int lw_data_mic_1_0(lw_aes128_key_t *nwk_s_key, lw_dir_t dir, uint32_t devaddr, uint32_t fcnt,
                    const uint8_t *msg, size_t msg_len, uint8_t mic[4]);

/* Verifies a 1.0.x data PHYPayload of phy_len bytes whose last 4 bytes are the MIC.
 * Errors: RH_ESIZE (phy_len < 12 or > 255), RH_EMIC (mismatch), RH_ECRYPTO. */
int lw_data_mic_verify_1_0(lw_aes128_key_t *nwk_s_key, lw_dir_t dir, uint32_t devaddr,
                           uint32_t fcnt, const uint8_t *phy, size_t phy_len);

/* LoRaWAN 1.1 uplink MIC: cmacS = CMAC(SNwkSIntKey, B1 | msg), cmacF = CMAC(FNwkSIntKey, B0 | msg),
 * MIC = cmacS[0..1] | cmacF[0..1], with
 * B0 = 0x49 | 4x00 | 0x00 | DevAddr | FCntUp(32) | 0x00 | len(msg) and
 * B1 = 0x49 | ConfFCnt(LE 2) | TxDr | TxCh | 0x00 | DevAddr | FCntUp(32) | 0x00 | len(msg).
 * conf_fcnt: the 16 LSBs of the confirmed downlink's counter this uplink ACKs (0 if ACK unset);
 * tx_dr: the data rate index, tx_ch: the channel index of the uplink.
 * Errors: RH_ESIZE, RH_ECRYPTO. */
int lw_data_up_mic_1_1(lw_aes128_key_t *s_nwk_s_int_key, lw_aes128_key_t *f_nwk_s_int_key,
                       uint16_t conf_fcnt, uint8_t tx_dr, uint8_t tx_ch, uint32_t devaddr,
                       uint32_t fcnt, const uint8_t *msg, size_t msg_len, uint8_t mic[4]);

/* LoRaWAN 1.1 downlink MIC: first 4 bytes of CMAC(SNwkSIntKey, B0 | msg) with
 * B0 = 0x49 | ConfFCnt(LE 2) | 2x00 | 0x01 | DevAddr | FCntDown(32: AFCntDown or NFCntDown) |
 * 0x00 | len(msg). conf_fcnt: 16 LSBs of the confirmed uplink's FCnt this downlink ACKs, else 0.
 * Errors: RH_ESIZE, RH_ECRYPTO. */
int lw_data_down_mic_1_1(lw_aes128_key_t *s_nwk_s_int_key, uint16_t conf_fcnt, uint32_t devaddr,
                         uint32_t fcnt, const uint8_t *msg, size_t msg_len, uint8_t mic[4]);

/* FRMPayload encryption = decryption (TS001 §4.3.3): XOR with AES(key, A_i),
 * A_i = 0x01 | 4x00 | Dir | DevAddr(LE) | FCnt(LE 32) | 0x00 | i (i from 1).
 * key: AppSKey for FPort 1..255; NwkSKey (1.0) / NwkSEncKey (1.1) for FPort 0. in == out allowed;
 * len <= 255. In 1.1 downlinks fcnt is AFCntDown (FPort > 0) or NFCntDown (FPort 0).
 * Errors: RH_ESIZE (len > 255), RH_ECRYPTO. */
int lw_frm_payload_crypt(lw_aes128_key_t *key, lw_dir_t dir, uint32_t devaddr, uint32_t fcnt,
                         const uint8_t *in, size_t len, uint8_t *out);

/* LoRaWAN 1.1 FOpts encryption = decryption with NwkSEncKey: XOR with AES(key, A),
 * A = 0x01 | 4x00 (byte 4 = 0x01, or 0x02 for a downlink counted by AFCntDown, per the 1.1
 * errata) | Dir | DevAddr(LE) | FCnt(LE 32) | 0x00 | 0x01. a_fcnt_down: true for downlinks with
 * FPort > 0 (fcnt = AFCntDown); false for uplinks (FCntUp) and other downlinks (NFCntDown).
 * len <= 15; in == out allowed. Errors: RH_ESIZE, RH_ECRYPTO. */
int lw_fopts_crypt(lw_aes128_key_t *nwk_s_enc_key, lw_dir_t dir, bool a_fcnt_down,
                   uint32_t devaddr, uint32_t fcnt, const uint8_t *in, size_t len, uint8_t *out);

/* --- join-accept --------------------------------------------------------------------------- */

/* Network side: plain (17 or 33 bytes, MHDR | fields | MIC, see lw_join_accept_encode) to the
 * wire form MHDR | AES-ECB-DECRYPT(key, rest). key: AppKey (1.0), NwkKey (1.1 join-request),
 * JSEncKey (1.1 rejoin-request). in == out allowed. Errors: RH_ESIZE (length), RH_ECRYPTO. */
int lw_join_accept_encrypt(lw_aes128_key_t *key, const uint8_t *plain, size_t len, uint8_t *out);

/* Inverse of lw_join_accept_encrypt (AES-ECB-ENCRYPT, as the device does). Errors as above. */
int lw_join_accept_decrypt(lw_aes128_key_t *key, const uint8_t *enc, size_t len, uint8_t *out);

/* JoinReqType values for the 1.1 join-accept MIC. */
enum { LW_JOIN_REQ_TYPE_JOIN = 0xFF, LW_JOIN_REQ_TYPE_REJOIN0 = 0x00,
       LW_JOIN_REQ_TYPE_REJOIN1 = 0x01, LW_JOIN_REQ_TYPE_REJOIN2 = 0x02 };

/* LoRaWAN 1.1 join-accept MIC (OptNeg set): first 4 bytes of CMAC(JSIntKey, JoinReqType |
 * JoinEUI(LE) | DevNonce(LE) | MHDR | JoinNonce | NetID | DevAddr | DLSettings | RxDelay |
 * [CFList]). msg = the plaintext PHYPayload without its MIC (13 or 29 bytes).
 * dev_nonce: DevNonce for a join-request, RJcount0/1 for a rejoin-request.
 * Errors: RH_ESIZE (msg_len not 13/29), RH_ECRYPTO. */
int lw_join_accept_mic_1_1(lw_aes128_key_t *js_int_key, uint8_t join_req_type, uint64_t join_eui,
                           uint16_t dev_nonce, const uint8_t *msg, size_t msg_len, uint8_t mic[4]);

/* --- key derivation ------------------------------------------------------------------------ */

/* Session keys. For a 1.0.x session the three network keys are all NwkSKey (TS001 1.1 §6.1.2
 * backwards compatibility), so callers can treat both versions alike. */
typedef struct lw_session_keys {
    uint8_t f_nwk_s_int_key[16]; /* 1.0: NwkSKey */
    uint8_t s_nwk_s_int_key[16]; /* 1.0: NwkSKey */
    uint8_t nwk_s_enc_key[16];   /* 1.0: NwkSKey */
    uint8_t app_s_key[16];
} lw_session_keys_t;

/* 1.0.x: NwkSKey = aes128_encrypt(AppKey, 0x01 | JoinNonce(3 LE) | NetID(3 LE) | DevNonce(2 LE) |
 * pad16); AppSKey the same with 0x02. join_nonce and netid are 24-bit host-order values.
 * Errors: RH_EINVAL (join_nonce/netid > 24 bits), RH_ECRYPTO. */
int lw_derive_session_keys_1_0(lw_aes128_key_t *app_key, uint32_t join_nonce, uint32_t netid,
                               uint16_t dev_nonce, lw_session_keys_t *out);

/* A 1.0.x session after a join, as both a join server and a device set it up: derives NwkSKey
 * and AppSKey (lw_derive_session_keys_1_0) and (re)initialises the two key contexts with them
 * (previous contents released with lw_aes128_key_fini). The derived key bytes are wiped before
 * returning. On error both contexts are left released (zeroed).
 * Errors: as lw_derive_session_keys_1_0 and lw_aes128_key_init. */
int lw_session_keys_1_0_init(lw_aes128_key_t *app_key, uint32_t join_nonce, uint32_t netid,
                             uint16_t dev_nonce, lw_aes128_key_t *nwk_s_key,
                             lw_aes128_key_t *app_s_key);

/* 1.1 (OptNeg set): FNwkSIntKey/SNwkSIntKey/NwkSEncKey = aes128_encrypt(NwkKey, 0x01/0x03/0x04 |
 * JoinNonce(3 LE) | JoinEUI(8 LE) | DevNonce(2 LE) | pad16); AppSKey = aes128_encrypt(AppKey,
 * 0x02 | same). Errors: RH_EINVAL (join_nonce > 24 bits), RH_ECRYPTO. */
int lw_derive_session_keys_1_1(lw_aes128_key_t *nwk_key, lw_aes128_key_t *app_key,
                               uint32_t join_nonce, uint64_t join_eui, uint16_t dev_nonce,
                               lw_session_keys_t *out);

/* 1.1 Join Server keys: JSIntKey = aes128_encrypt(NwkKey, 0x06 | DevEUI(8 LE) | pad16),
 * JSEncKey = same with 0x05. Either output may be NULL. Errors: RH_ECRYPTO. */
int lw_derive_js_keys_1_1(lw_aes128_key_t *nwk_key, uint64_t dev_eui, uint8_t js_int_key[16],
                          uint8_t js_enc_key[16]);

/* --- RFC 3394 key wrap (TS002 KeyEnvelope.AESKey) ------------------------------------------ */

/* Wraps key_len bytes (a multiple of 8, 16..64) under a KEK of 16, 24 or 32 bytes; out gets
 * key_len + 8 bytes (capacity cap). Thread-safe (no shared state besides fetched algorithms).
 * Errors: RH_EINVAL (KEK or key length), RH_ERANGE (cap), RH_ECRYPTO. */
int lw_key_wrap(const uint8_t *kek, size_t kek_len, const uint8_t *key, size_t key_len,
                uint8_t *out, size_t cap, size_t *out_len, rh_diag_t *diag);

/* Unwraps: wrapped_len (a multiple of 8, 24..72) -> wrapped_len - 8 bytes into out.
 * Errors: RH_EINVAL (lengths), RH_ERANGE (cap), RH_EMIC (integrity check failed: wrong KEK or
 * corrupted data; out is zeroed), RH_ECRYPTO. */
int lw_key_unwrap(const uint8_t *kek, size_t kek_len, const uint8_t *wrapped, size_t wrapped_len,
                  uint8_t *out, size_t cap, size_t *out_len, rh_diag_t *diag);

#endif
