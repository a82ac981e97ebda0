/*
 * roamcheck — self-check of roamhub's LoRaWAN library against the project's public test vectors.
 *
 * Usage: roamcheck [VECTORS_DIR]   (default ../shared/vectors)
 *
 * For each vector file it recomputes every expected value with proto/lw_*.h and prints one line
 * per vector family: what was verified and how many vectors passed. Failures are listed with the
 * vector id and the first mismatch. Exit status: 0 all passed, 1 a vector failed, 2 a file is
 * missing or unreadable. Keys are test keys from public sources; nothing secret is printed.
 */
#include "lw_crypto.h"
#include "lw_frame.h"
#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_version.h"
#include "tl_util.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *g_dir = "../shared/vectors";
static int g_failed;   /* vectors that failed */
static int g_io_error; /* files that could not be read */
static char g_why[512]; /* first mismatch of the current vector */

/* Records why the current vector failed (first reason wins) and returns false. */
static bool why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool why(const char *fmt, ...)
{
    if (g_why[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_why, sizeof g_why, fmt, ap);
        va_end(ap);
    }
    return false;
}

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            return why(__VA_ARGS__);                                                               \
    } while (0)

static cJSON *load(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    cJSON *j = NULL;
    rh_diag_t d;
    if (tl_json_load(path, &j, &d) < 0) { /* rh_read_file (16 MiB at most) + cJSON */
        fprintf(stderr, "%s\n", d.text);
        g_io_error = 1;
    }
    return j;
}

/* Member named `key` or `key (comment)`. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *it;
    size_t n = strlen(key);
    cJSON_ArrayForEach(it, obj)
    {
        if (it->string && strncmp(it->string, key, n) == 0 &&
            (it->string[n] == '\0' || it->string[n] == ' '))
            return it;
    }
    return NULL;
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *m = member(obj, key);
    return cJSON_IsString(m) ? m->valuestring : NULL;
}

/* Hex of the first whitespace-separated token of member `key` into out; want = exact byte count
 * (0 = any). Returns the byte count or -1 (reason recorded). */
static long hexm(const cJSON *obj, const char *key, uint8_t *out, size_t cap, size_t want)
{
    const char *s = str(obj, key);
    if (!s)
        return why("member %s missing", key), -1;
    size_t n = strcspn(s, " "), len = 0;
    rh_diag_t d;
    if (rh_hex_decode(s, n, out, cap, &len, key, &d) != RH_OK)
        return why("%s", d.text), -1;
    if (want && len != want)
        return why("%s: %zu bytes, expected %zu", key, len, want), -1;
    return (long)len;
}

static bool num(const cJSON *obj, const char *key, double *v)
{
    const cJSON *m = member(obj, key);
    if (!cJSON_IsNumber(m))
        return why("member %s missing or not a number", key);
    *v = m->valuedouble;
    return true;
}

static bool be(const cJSON *obj, const char *key, unsigned nbytes, uint64_t *v)
{
    uint8_t b[8];
    if (hexm(obj, key, b, sizeof b, nbytes) < 0)
        return false;
    *v = 0;
    for (unsigned i = 0; i < nbytes; i++)
        *v = (*v << 8) | b[i];
    return true;
}

static bool same(const uint8_t *got, size_t n, const cJSON *obj, const char *key)
{
    uint8_t want[300];
    long wn = hexm(obj, key, want, sizeof want, 0);
    if (wn < 0)
        return false;
    if ((size_t)wn != n || memcmp(got, want, n) != 0) {
        char g[601];
        rh_hex_encode(got, n < 300 ? n : 300, g, 0);
        return why("%s: computed %s, expected %s", key, g, str(obj, key));
    }
    return true;
}

static bool key_init(const cJSON *obj, const char *name, lw_aes128_key_t *k)
{
    uint8_t raw[16];
    if (hexm(obj, name, raw, sizeof raw, 16) < 0)
        return false;
    CHECK(lw_aes128_key_init(k, raw) == RH_OK, "%s: OpenSSL key setup failed", name);
    return true;
}

/* Decodes a PHYPayload, checks the class, and re-encodes it byte for byte. */
static bool roundtrip(const uint8_t *phy, size_t len, lw_class_t want)
{
    lw_frame_t f;
    rh_diag_t d;
    uint8_t out[LW_PHY_MAX];
    size_t ol;
    CHECK(lw_frame_decode(phy, len, &f, &d) == RH_OK, "decode: %s", d.text);
    CHECK(lw_frame_class(&f) == want, "class: %s, expected %s", lw_class_name(lw_frame_class(&f)),
          lw_class_name(want));
    CHECK(lw_frame_encode(&f, out, sizeof out, &ol, &d) == RH_OK, "encode: %s", d.text);
    CHECK(ol == len && memcmp(out, phy, len) == 0, "re-encoded bytes differ from the input");
    return true;
}

/* ---- families ---------------------------------------------------------------------------- */

typedef struct tally {
    int ok, total;
} tally_t;

static void count(tally_t *t, const char *id, bool ok)
{
    t->total++;
    if (ok) {
        t->ok++;
    } else {
        g_failed++;
        printf("  FAIL %s: %s\n", id, g_why[0] ? g_why : "(no reason recorded)");
    }
    g_why[0] = '\0';
}

static void report(const char *file, const tally_t *t, const char *what)
{
    printf("%s: %d/%d %s %s\n", file, t->ok, t->total, what,
           t->ok == t->total && t->total > 0 ? "OK" : "FAILED");
    if (t->total == 0)
        g_failed++;
}

static bool netid_vector(const cJSON *v, int *with_example)
{
    const char *n = str(v, "net_id"), *p = str(v, "dev_addr_prefix");
    uint32_t netid;
    lw_devaddr_prefix_t got, want;
    rh_diag_t d;
    CHECK(n && p, "net_id or dev_addr_prefix missing");
    CHECK(lw_netid_parse(n, &netid, &d) == RH_OK, "%s", d.text);
    CHECK(lw_devaddr_prefix_parse(p, &want, &d) == RH_OK, "%s", d.text);
    CHECK(lw_netid_devaddr_prefix(netid, &got, &d) == RH_OK, "%s", d.text);
    char txt[16];
    lw_devaddr_prefix_format(got, txt);
    CHECK(got.value == want.value && got.len == want.len, "NetID %s: prefix %s, expected %s", n,
          txt, p);
    const cJSON *t = member(v, "type"), *nb = member(v, "nwk_id_bits");
    CHECK(!cJSON_IsNumber(t) || (int)lw_netid_type(netid) == t->valueint, "NetID %s: type", n);
    CHECK(!cJSON_IsNumber(nb) || (int)lw_nwkid_bits(lw_netid_type(netid)) == nb->valueint,
          "NetID %s: NwkID bits", n);
    const char *ex = str(v, "example_dev_addr");
    if (ex) {
        uint32_t da;
        CHECK(lw_devaddr_parse(ex, &da, &d) == RH_OK, "%s", d.text);
        bool in = lw_devaddr_in_netid(da, netid);
        CHECK(in == cJSON_IsTrue(member(v, "example_matches")),
              "DevAddr %s: membership in NetID %s is %d", ex, n, in);
        (*with_example)++;
    }
    return true;
}

static void check_netid(void)
{
    const char *file = "netid_devaddr_prefix.json";
    cJSON *root = load(file);
    if (!root)
        return;
    tally_t t = {0};
    int examples = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, member(root, "vectors"))
    {
        const char *id = str(v, "net_id");
        count(&t, id ? id : "?", netid_vector(v, &examples));
    }
    char what[128];
    snprintf(what, sizeof what, "NetID -> DevAddr prefix vectors (errata widths; %d DevAddr "
                                "membership examples)", examples);
    report(file, &t, what);
    cJSON_Delete(root);
}

static bool cmac_case(lw_aes128_key_t *k, const cJSON *c)
{
    uint8_t msg[256], mac[16];
    long n = hexm(c, "msg", msg, sizeof msg, 0);
    if (n < 0)
        return false;
    CHECK(lw_aes_cmac(k, msg, (size_t)n, mac) == RH_OK, "CMAC failed");
    return same(mac, 16, c, "mac");
}

static bool wrap_case(const cJSON *c)
{
    uint8_t kek[32], key[64], out[80], back[72];
    long kl = hexm(c, "kek", kek, sizeof kek, 0), keyl = hexm(c, "key", key, sizeof key, 0);
    if (kl < 0 || keyl < 0)
        return false;
    size_t ol;
    rh_diag_t d;
    CHECK(lw_key_wrap(kek, (size_t)kl, key, (size_t)keyl, out, sizeof out, &ol, &d) == RH_OK,
          "wrap: %s", d.text);
    if (!same(out, ol, c, "wrapped"))
        return false;
    CHECK(lw_key_unwrap(kek, (size_t)kl, out, ol, back, sizeof back, &ol, &d) == RH_OK,
          "unwrap: %s", d.text);
    CHECK(ol == (size_t)keyl && memcmp(back, key, ol) == 0, "unwrap does not give the key back");
    const cJSON *env = member(c, "json_key_envelope");
    if (env) {
        uint8_t w[80];
        long wl = hexm(env, "AESKey", w, sizeof w, 0);
        if (wl < 0)
            return false;
        CHECK(lw_key_unwrap(kek, (size_t)kl, w, (size_t)wl, back, sizeof back, &ol, &d) == RH_OK,
              "KeyEnvelope.AESKey: %s", d.text);
        CHECK(ol == (size_t)keyl && memcmp(back, key, ol) == 0, "KeyEnvelope does not unwrap");
    }
    out[0] ^= 1; /* a corrupted envelope must be refused */
    CHECK(lw_key_unwrap(kek, (size_t)kl, out, (size_t)keyl + 8, back, sizeof back, &ol, &d) ==
              RH_EMIC,
          "a corrupted wrapped key was accepted");
    return true;
}

static void check_aes(void)
{
    const char *file = "aes_primitives.json";
    cJSON *root = load(file);
    if (!root)
        return;
    tally_t t = {0};
    const cJSON *cm = member(root, "aes_cmac_rfc4493"), *c;
    lw_aes128_key_t k = {0};
    bool keyed = cm && key_init(cm, "key", &k);
    int i = 0;
    cJSON_ArrayForEach(c, member(cm, "cases"))
    {
        char id[32];
        snprintf(id, sizeof id, "cmac case %d", i++);
        count(&t, id, keyed && cmac_case(&k, c));
    }
    lw_aes128_key_fini(&k);
    report(file, &t, "AES-CMAC (RFC 4493) vectors");
    tally_t w = {0};
    i = 0;
    cJSON_ArrayForEach(c, member(root, "aes_key_wrap_rfc3394"))
    {
        char id[32];
        snprintf(id, sizeof id, "key wrap case %d", i++);
        count(&w, id, wrap_case(c));
    }
    report(file, &w, "AES key wrap (RFC 3394, TS002 KeyEnvelope) vectors: wrap, unwrap, tamper");
    cJSON_Delete(root);
}

static bool join_request(const cJSON *v, tally_t *rt)
{
    const cJSON *in = member(v, "inputs"), *ex = member(v, "expected");
    lw_aes128_key_t k = {0};
    double dn = 0;
    lw_frame_t f = {.mtype = LW_MTYPE_JOIN_REQUEST};
    uint64_t je = 0, de = 0;
    if (!key_init(in, "app_key", &k) || !be(in, "join_eui", 8, &je) ||
        !be(in, "dev_eui", 8, &de) || !num(in, "dev_nonce", &dn))
        return lw_aes128_key_fini(&k), false;
    f.u.join_request.join_eui = je;
    f.u.join_request.dev_eui = de;
    f.u.join_request.dev_nonce = (uint16_t)dn;
    uint8_t phy[64];
    size_t len;
    bool ok = lw_frame_encode(&f, phy, sizeof phy, &len, NULL) == RH_OK &&
              lw_cmac_mic(&k, phy, len - 4, phy + len - 4) == RH_OK &&
              same(phy + len - 4, 4, ex, "mic") && same(phy, len, ex, "phy_payload") &&
              (lw_cmac_mic_verify(&k, phy, len) == RH_OK || why("MIC does not verify"));
    lw_aes128_key_fini(&k);
    if (ok) {
        bool r = roundtrip(phy, len, LW_CLASS_UP_JOIN_REQUEST);
        count(rt, str(v, "id"), r);
    }
    return ok;
}

static bool join_accept(const cJSON *v, tally_t *rt)
{
    const cJSON *in = member(v, "inputs"), *ex = member(v, "expected");
    const cJSON *im = member(v, "intermediate");
    const char *ver = str(v, "lorawan");
    bool v11 = ver && strncmp(ver, "1.1", 3) == 0;
    lw_aes128_key_t k = {0};
    lw_join_accept_t ja = {0};
    double jn = 0, rx = 0, dn = 0;
    uint64_t netid = 0, devaddr = 0, join_eui = 0;
    uint8_t dl = 0;
    if (!key_init(in, "app_key", &k))
        return false;
    bool ok = num(in, "join_nonce", &jn) && be(in, "home_net_id", 3, &netid) &&
              be(in, "dev_addr", 4, &devaddr) && hexm(in, "dl_settings", &dl, 1, 1) == 1 &&
              num(in, "rx_delay", &rx) &&
              (!v11 || (be(in, "join_eui", 8, &join_eui) && num(in, "dev_nonce", &dn)));
    const cJSON *cf = member(in, "cflist");
    if (ok && cJSON_IsString(cf)) {
        ja.has_cflist = true;
        ok = hexm(in, "cflist", ja.cflist, 16, 16) == 16;
    }
    uint8_t plain[33], enc[33], back[33];
    size_t len = 0;
    if (ok) {
        ja.join_nonce = (uint32_t)jn;
        ja.home_netid = (uint32_t)netid;
        ja.devaddr = (uint32_t)devaddr;
        ja.dl_settings = dl;
        ja.rx_delay = (uint8_t)rx;
        rh_diag_t d;
        ok = lw_join_accept_encode(&ja, plain, sizeof plain, &len, &d) == RH_OK ||
             why("%s", d.text);
    }
    if (ok)
        ok = (v11 ? lw_join_accept_mic_1_1(&k, LW_JOIN_REQ_TYPE_JOIN, join_eui, (uint16_t)dn,
                                           plain, len - 4, plain + len - 4)
                  : lw_cmac_mic(&k, plain, len - 4, plain + len - 4)) == RH_OK &&
             same(plain + len - 4, 4, ex, "mic");
    if (ok && im && member(im, "phy_payload_plaintext"))
        ok = same(plain, len, im, "phy_payload_plaintext");
    if (ok)
        ok = lw_join_accept_encrypt(&k, plain, len, enc) == RH_OK &&
             same(enc, len, ex, "phy_payload_encrypted");
    if (ok) {
        lw_join_accept_t got;
        ok = (lw_join_accept_decrypt(&k, enc, len, back) == RH_OK &&
              memcmp(back, plain, len) == 0 &&
              lw_join_accept_decode(back, len, &got, NULL) == RH_OK &&
              got.devaddr == ja.devaddr && got.home_netid == ja.home_netid &&
              got.join_nonce == ja.join_nonce) ||
             why("decrypt + parse does not give the join-accept back");
    }
    lw_aes128_key_fini(&k);
    if (ok)
        count(rt, str(v, "id"), roundtrip(enc, len, LW_CLASS_DOWN_JOIN_ACCEPT));
    return ok;
}

static bool data(const cJSON *v, tally_t *rt)
{
    const cJSON *in = member(v, "inputs"), *ex = member(v, "expected");
    lw_aes128_key_t nwk = {0}, app = {0};
    bool has_app = member(in, "app_s_key") != NULL;
    if (!key_init(in, "nwk_s_key", &nwk))
        return false;
    if (has_app && !key_init(in, "app_s_key", &app))
        return lw_aes128_key_fini(&nwk), false;
    uint8_t mhdr, fctrl, fopts[16], plain[256], enc[256], phy[256];
    uint64_t devaddr = 0;
    double fcnt = 0, fport = 0;
    lw_frame_t f = {0};
    lw_data_t *d = &f.u.data;
    bool ok = hexm(in, "mhdr", &mhdr, 1, 1) == 1 && be(in, "dev_addr", 4, &devaddr) &&
              hexm(in, "fctrl", &fctrl, 1, 1) == 1 && num(in, "fcnt", &fcnt);
    lw_dir_t dir = LW_UPLINK;
    if (ok) {
        f.mtype = (lw_mtype_t)(mhdr >> 5);
        ok = lw_mtype_is_data(f.mtype) || why("mhdr: not a data MType");
        dir = lw_mtype_is_uplink(f.mtype) ? LW_UPLINK : LW_DOWNLINK;
        d->devaddr = (uint32_t)devaddr;
        d->fctrl.adr = fctrl & 0x80;
        d->fctrl.ack = fctrl & 0x20;
        d->fctrl.adr_ack_req = dir == LW_UPLINK && (fctrl & 0x40);
        d->fcnt = (uint16_t)fcnt;
    }
    if (ok && member(in, "fopts")) {
        long n = hexm(in, "fopts", fopts, sizeof fopts, 0);
        ok = n >= 0 && ((size_t)n == (fctrl & 0x0Fu) || why("fopts: length differs from FCtrl"));
        d->fopts_len = (uint8_t)(n > 0 ? n : 0);
        d->fopts = fopts;
    }
    if (ok && member(in, "fport")) {
        long n = -1;
        ok = num(in, "fport", &fport) &&
             (n = hexm(in, "frm_payload_plain", plain, sizeof plain, 0)) >= 0;
        if (ok) {
            d->has_fport = true;
            d->fport = (uint8_t)fport;
            ok = (d->fport == 0 || has_app || why("app_s_key missing for FPort > 0")) &&
                 lw_frm_payload_crypt(d->fport ? &app : &nwk, dir, d->devaddr, (uint32_t)fcnt,
                                      plain, (size_t)n, enc) == RH_OK &&
                 same(enc, (size_t)n, ex, "frm_payload_enc");
            d->frm_payload = enc;
            d->frm_payload_len = (size_t)n;
        }
    }
    size_t len = 0;
    if (ok) {
        rh_diag_t dg;
        ok = (lw_frame_encode(&f, phy, sizeof phy, &len, &dg) == RH_OK || why("%s", dg.text)) &&
             lw_data_mic_1_0(&nwk, dir, d->devaddr, (uint32_t)fcnt, phy, len - 4,
                             phy + len - 4) == RH_OK &&
             same(phy + len - 4, 4, ex, "mic") && same(phy, len, ex, "phy_payload") &&
             (lw_data_mic_verify_1_0(&nwk, dir, d->devaddr, (uint32_t)fcnt, phy, len) == RH_OK ||
              why("MIC does not verify"));
    }
    lw_aes128_key_fini(&nwk);
    lw_aes128_key_fini(&app);
    if (ok) {
        bool app_data = d->has_fport && d->fport > 0;
        lw_class_t want = dir == LW_UPLINK
                              ? (app_data ? LW_CLASS_UP_APP_DATA : LW_CLASS_UP_MAC_DATA)
                              : (app_data ? LW_CLASS_DOWN_APP_DATA : LW_CLASS_DOWN_MAC_DATA);
        count(rt, str(v, "id"), roundtrip(phy, len, want));
    }
    return ok;
}

static bool session_keys(const cJSON *v, int *skipped)
{
    const cJSON *in = member(v, "inputs"), *ex = member(v, "expected");
    const char *ver = str(v, "lorawan");
    double jn = 0, dn = 0;
    lw_session_keys_t sk;
    lw_aes128_key_t app = {0}, nwk = {0};
    bool ok;
    if (!num(in, "join_nonce", &jn) || !num(in, "dev_nonce", &dn))
        return false;
    if (ver && strncmp(ver, "1.1", 3) == 0) {
        uint64_t je = 0;
        ok = key_init(in, "nwk_key", &nwk) && key_init(in, "app_key", &app) &&
             be(in, "join_eui", 8, &je) &&
             lw_derive_session_keys_1_1(&nwk, &app, (uint32_t)jn, je, (uint16_t)dn, &sk) ==
                 RH_OK &&
             same(sk.f_nwk_s_int_key, 16, ex, "f_nwk_s_int_key") &&
             same(sk.s_nwk_s_int_key, 16, ex, "s_nwk_s_int_key") &&
             same(sk.nwk_s_enc_key, 16, ex, "nwk_s_enc_key") &&
             same(sk.app_s_key, 16, ex, "app_s_key");
    } else {
        uint64_t netid = 0;
        ok = key_init(in, "app_key", &app) && be(in, "net_id", 3, &netid) &&
             lw_derive_session_keys_1_0(&app, (uint32_t)jn, (uint32_t)netid, (uint16_t)dn,
                                        &sk) == RH_OK &&
             same(sk.f_nwk_s_int_key, 16, ex, "nwk_s_key") &&
             same(sk.app_s_key, 16, ex, "app_s_key");
    }
    /* expected values this library does not compute (TS011 relay keys) */
    const cJSON *e;
    cJSON_ArrayForEach(e, ex)
    {
        if (strncmp(e->string, "root_wor_s_key", 14) == 0)
            (*skipped)++;
    }
    lw_aes128_key_fini(&app);
    lw_aes128_key_fini(&nwk);
    return ok;
}

static void check_lorawan(void)
{
    const char *file = "lorawan_crypto_vectors.json";
    cJSON *root = load(file);
    if (!root)
        return;
    tally_t jr = {0}, ja = {0}, dt = {0}, sk = {0}, rt = {0}, unknown = {0};
    int skipped = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, member(root, "vectors"))
    {
        const char *kind = str(v, "kind"), *id = str(v, "id");
        if (!id)
            id = "?";
        if (!kind) {
            why("no kind");
            count(&unknown, id, false);
        } else if (strcmp(kind, "join_request_mic") == 0) {
            count(&jr, id, join_request(v, &rt));
        } else if (strcmp(kind, "join_accept_mic_and_encryption") == 0) {
            count(&ja, id, join_accept(v, &rt));
        } else if (strncmp(kind, "data_", 5) == 0) {
            count(&dt, id, data(v, &rt));
        } else if (strcmp(kind, "session_key_derivation") == 0) {
            count(&sk, id, session_keys(v, &skipped));
        } else {
            why("unknown vector kind %s: roamcheck does not know how to verify it", kind);
            count(&unknown, id, false);
        }
    }
    report(file, &jr, "join-request MIC vectors (MIC, PHYPayload, verify)");
    report(file, &ja, "join-accept MIC + encryption vectors (1.0 and 1.1; decrypt + parse back)");
    report(file, &dt, "data MIC + FRMPayload vectors (FRMPayload encryption, MIC, PHYPayload, verify)");
    report(file, &sk, "session key derivation vectors (1.0: NwkSKey/AppSKey; 1.1: 4 keys)");
    report(file, &rt, "PHYPayloads decoded, classified and re-encoded byte for byte");
    if (unknown.total)
        printf("%s: %d vectors of an unknown kind FAILED\n", file, unknown.total);
    if (skipped)
        printf("%s: note: %d expected TS011 relay key(s) (root_wor_s_key) not checked, outside "
               "roamhub's scope\n",
               file, skipped);
    cJSON_Delete(root);
}

int main(int argc, char **argv)
{
    if (argc == 2 && rh_version_arg(argv[1], "roamcheck"))
        return 0;
    int help = argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
    if (argc > 2 || help || (argc == 2 && argv[1][0] == '-')) {
        if (!help && argc == 2)
            fprintf(stderr, "roamcheck: %s: unknown option\n", argv[1]);
        fprintf(help ? stdout : stderr,
                "Usage: roamcheck [VECTORS_DIR]   (default ../shared/vectors)\n"
                "Verifies roamhub's LoRaWAN library against the shared test vectors.\n"
                "\n"
                "Options:\n"
                "  -h, --help   show this help and exit\n"
                "  --version    show the version and exit\n"
                "\n"
                "Exit status: 0 when every check passed, 1 otherwise, 2 on bad usage.\n");
        return help ? 0 : 2;
    }
    if (argc == 2)
        g_dir = argv[1];
    printf("roamcheck: LoRaWAN library self-check, vectors from %s\n", g_dir);
    check_netid();
    check_aes();
    check_lorawan();
    if (g_io_error) {
        printf("roamcheck: a vector file could not be read\n");
        return 2;
    }
    if (g_failed) {
        printf("roamcheck: %d check(s) FAILED\n", g_failed);
        return 1;
    }
    printf("roamcheck: all checks passed\n");
    return 0;
}
