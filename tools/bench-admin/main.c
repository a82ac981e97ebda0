/*
 * bench-admin — costs of the admin API's per-request and per-message pieces, on this machine:
 *   - admin_jwt_verify of a valid HS256 token (what every admin API request pays before the key
 *     lookup), and of an ES256 token;
 *   - capture_tap with no capture active (what every relayed message pays for the capture
 *     feature: one relaxed atomic load) and with one capture active (ring copy under a mutex).
 * Usage: bench-admin [ITERATIONS]   (prints ns/op; docs/PERFORMANCE.md, "Admin API and capture
 *        tap", has the method)
 */
#include "admin_jwt.h"
#include "rh_version.h"
#include "capture.h"
#include "rh_time.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile int sink;

static double bench_verify(admin_jwt_t *j, const char *tok, long n)
{
    admin_jwt_claims_t c;
    int64_t now = rh_real_ms() / 1000;
    uint64_t t0 = rh_mono_ns();
    for (long i = 0; i < n; i++)
        sink += admin_jwt_verify(j, tok, strlen(tok), now, &c, NULL);
    return (double)(rh_mono_ns() - t0) / (double)n;
}

static double bench_tap(long n)
{
    uint64_t t0 = rh_mono_ns();
    for (long i = 0; i < n; i++)
        capture_tap(0, 0x000202, 0x000505, BI_MT_PR_START_REQ, 1, RP_CLASS_UPLINK_APP,
                    RP_OUT_FORWARDED, NULL, 0, "netA");
    return (double)(rh_mono_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    if (argc == 2 && rh_version_arg(argv[1], "bench-admin"))
        return 0;
    long n = argc > 1 ? atol(argv[1]) : 20000;
    if (n <= 0)
        n = 20000;
    static const char secret[] = "bench-secret-bench-secret-bench-secret-01";
    admin_jwt_opts_t o = {.alg = "HS256", .secret = (const uint8_t *)secret,
                          .secret_len = sizeof secret - 1, .issuer = "roamhub",
                          .audience = "roamhub-admin", .ttl_s = 900};
    admin_jwt_t *hs = NULL;
    if (admin_jwt_new(&o, &hs, NULL) != RH_OK)
        return 1;
    char *tok = NULL;
    admin_jwt_issue(hs, "op-bench", rh_real_ms() / 1000, &tok, NULL);
    printf("jwt_verify_hs256_ns %.0f\n", bench_verify(hs, tok, n));
    free(tok);

    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    BIO *b1 = BIO_new(BIO_s_mem()), *b2 = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b1, k);
    PEM_write_bio_PrivateKey(b2, k, NULL, NULL, 0, NULL, NULL);
    char *pub, *priv;
    long pl = BIO_get_mem_data(b1, &pub), kl = BIO_get_mem_data(b2, &priv);
    char *pubz = strndup(pub, (size_t)pl), *privz = strndup(priv, (size_t)kl);
    admin_jwt_opts_t e = {.alg = "ES256", .public_key_pem = pubz, .private_key_pem = privz,
                          .issuer = "roamhub", .audience = "roamhub-admin", .ttl_s = 900};
    admin_jwt_t *es = NULL;
    if (admin_jwt_new(&e, &es, NULL) != RH_OK)
        return 1;
    admin_jwt_issue(es, "op-bench", rh_real_ms() / 1000, &tok, NULL);
    printf("jwt_verify_es256_ns %.0f\n", bench_verify(es, tok, n / 4 + 1));
    free(tok);

    printf("capture_tap_inactive_ns %.2f\n", bench_tap(n * 1000));
    capture_t *c = NULL;
    capture_start(1, 0, 1000, &c);
    printf("capture_tap_active_ns %.1f\n", bench_tap(n * 10)); /* ring full after 1000: drops */
    capture_stop(c);
    admin_jwt_free(hs);
    admin_jwt_free(es);
    EVP_PKEY_free(k);
    BIO_free(b1);
    BIO_free(b2);
    free(pubz);
    free(privz);
    return sink == 12345;
}
