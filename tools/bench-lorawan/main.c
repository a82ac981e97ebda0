/*
 * bench-lorawan — micro-benchmark of the LoRaWAN library's hot paths (not a test).
 *
 * Usage: bench-lorawan [-n ITERATIONS] [-r RUNS]   (defaults 200000 and 7)
 *
 * Measures, single-threaded, with one lw_aes128_key_t reused as the relay / NS would:
 *   decode           lw_frame_decode of a 30-byte unconfirmed uplink (FOpts 0, FPort 1, 17 B)
 *   mic_verify       lw_data_mic_verify_1_0 of that uplink (AES-CMAC over B0 + 26 bytes = 42 B)
 *   decode_mic       decode + lw_fcnt_extend + MIC verification (what a NS does per uplink)
 *   raw_cmac_42      reference: EVP_MAC_init/update/final of 42 bytes on a keyed CMAC context,
 *                    the loop `openssl speed -cmac aes-128-cbc -bytes 42` runs
 *   key_setup        lw_aes128_key_init + fini (ITERATIONS/10): what each MIC would cost on top
 *                    if contexts were not cached per key
 * Each figure is ns/op over ITERATIONS, repeated RUNS times; the median (and min/max) is printed
 * as `name median_ns min_ns max_ns`. Wall-clock (CLOCK_MONOTONIC).
 */
#include "lw_crypto.h"
#include "rh_version.h"
#include "lw_frame.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned g_sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct ctx {
    lw_aes128_key_t key;
    EVP_MAC_CTX *raw;
    uint8_t phy[30];
    uint8_t cmac_in[42];
} ctx_t;

typedef unsigned (*op_fn)(ctx_t *c, long n);

static unsigned op_decode(ctx_t *c, long n)
{
    unsigned acc = 0;
    lw_frame_t f;
    for (long i = 0; i < n; i++) {
        if (lw_frame_decode(c->phy, sizeof c->phy, &f, NULL) != RH_OK)
            abort();
        acc += f.u.data.fcnt + lw_frame_class(&f);
    }
    return acc;
}

static unsigned op_mic_verify(ctx_t *c, long n)
{
    unsigned acc = 0;
    for (long i = 0; i < n; i++) {
        if (lw_data_mic_verify_1_0(&c->key, LW_UPLINK, 0x26011234, 0x00010007, c->phy,
                                   sizeof c->phy) != RH_OK)
            abort();
        acc++;
    }
    return acc;
}

static unsigned op_decode_mic(ctx_t *c, long n)
{
    unsigned acc = 0;
    lw_frame_t f;
    for (long i = 0; i < n; i++) {
        if (lw_frame_decode(c->phy, sizeof c->phy, &f, NULL) != RH_OK)
            abort();
        uint32_t fcnt = lw_fcnt_extend(0x00010000, f.u.data.fcnt);
        if (lw_data_mic_verify_1_0(&c->key, LW_UPLINK, f.u.data.devaddr, fcnt, c->phy,
                                   sizeof c->phy) != RH_OK)
            abort();
        acc += lw_frame_class(&f);
    }
    return acc;
}

static unsigned op_raw_cmac(ctx_t *c, long n)
{
    unsigned acc = 0;
    uint8_t mac[16];
    size_t outl;
    for (long i = 0; i < n; i++) {
        if (EVP_MAC_init(c->raw, NULL, 0, NULL) != 1 ||
            EVP_MAC_update(c->raw, c->cmac_in, sizeof c->cmac_in) != 1 ||
            EVP_MAC_final(c->raw, mac, &outl, sizeof mac) != 1)
            abort();
        acc += mac[0];
    }
    return acc;
}

/* What a MIC would cost without cached state: set a key up and tear it down every time. */
static unsigned op_key_setup(ctx_t *c, long n)
{
    static const uint8_t k[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    unsigned acc = 0;
    for (long i = 0; i < n; i++) {
        lw_aes128_key_t key;
        if (lw_aes128_key_init(&key, k) != RH_OK)
            abort();
        lw_aes128_key_fini(&key);
        acc++;
    }
    (void)c;
    return acc;
}

static void run(const char *name, op_fn fn, ctx_t *c, long iters, int runs)
{
    double *ns = calloc((size_t)runs, sizeof *ns);
    if (!ns)
        abort();
    g_sink += fn(c, iters / 10 + 1); /* warm-up */
    for (int r = 0; r < runs; r++) {
        double t0 = now_ns();
        g_sink += fn(c, iters);
        ns[r] = (now_ns() - t0) / (double)iters;
    }
    qsort(ns, (size_t)runs, sizeof *ns, cmp_double);
    printf("%-12s %8.1f %8.1f %8.1f\n", name, ns[runs / 2], ns[0], ns[runs - 1]);
    free(ns);
}

int main(int argc, char **argv)
{
    if (argc == 2 && rh_version_arg(argv[1], "bench-lorawan"))
        return 0;
    long iters = 200000;
    int runs = 7, opt;
    while ((opt = getopt(argc, argv, "n:r:")) != -1) {
        if (opt == 'n')
            iters = atol(optarg);
        else if (opt == 'r')
            runs = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-n ITERATIONS] [-r RUNS]\n", argv[0]);
            return 2;
        }
    }
    if (iters < 1 || runs < 1) {
        fprintf(stderr, "ITERATIONS and RUNS must be positive\n");
        return 2;
    }
    static const uint8_t k[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                  0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
    ctx_t c;
    memset(&c, 0, sizeof c);
    if (lw_aes128_key_init(&c.key, k) != RH_OK)
        return 1;
    /* 30-byte uplink: MHDR | DevAddr 26011234 | FCtrl 80 | FCnt 7 | FPort 1 | 17 bytes | MIC */
    lw_frame_t f = {.mtype = LW_MTYPE_UNCONFIRMED_UP};
    static const uint8_t payload[17] = "roamhub-bench-30";
    f.u.data.devaddr = 0x26011234;
    f.u.data.fctrl.adr = true;
    f.u.data.fcnt = 7;
    f.u.data.has_fport = true;
    f.u.data.fport = 1;
    f.u.data.frm_payload = payload;
    f.u.data.frm_payload_len = sizeof payload;
    size_t len;
    if (lw_frame_encode(&f, c.phy, sizeof c.phy, &len, NULL) != RH_OK || len != 30 ||
        lw_data_mic_1_0(&c.key, LW_UPLINK, 0x26011234, 0x00010007, c.phy, len - 4,
                        c.phy + len - 4) != RH_OK)
        return 1;
    memcpy(c.cmac_in + 16, c.phy, 26);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "CMAC", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)"AES-128-CBC", 0),
        OSSL_PARAM_construct_end(),
    };
    c.raw = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (!c.raw || EVP_MAC_init(c.raw, k, 16, params) != 1)
        return 1;

    printf("# bench-lorawan: %ld iterations x %d runs, ns/op (median min max)\n", iters, runs);
    run("decode", op_decode, &c, iters, runs);
    run("mic_verify", op_mic_verify, &c, iters, runs);
    run("decode_mic", op_decode_mic, &c, iters, runs);
    run("raw_cmac_42", op_raw_cmac, &c, iters, runs);
    run("key_setup", op_key_setup, &c, iters / 10 > 0 ? iters / 10 : 1, runs);

    EVP_MAC_CTX_free(c.raw);
    EVP_MAC_free(mac);
    lw_aes128_key_fini(&c.key);
    return g_sink == 0xFFFFFFFFu; /* keeps the work observable */
}
