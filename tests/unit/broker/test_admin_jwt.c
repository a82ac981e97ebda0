/* Unit tests for broker/admin_jwt (token verification wrapper) and admin_auth (API keys,
 * revocation): an attack corpus built here (HMAC via OpenSSL, EC/RSA keys generated at test time)
 * must all be refused, valid tokens accepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_auth.h"
#include "admin_jwt.h"
#include "rh_time.h"

#define NOW 1800000000LL
static const char SECRET[] = "0123456789abcdef0123456789abcdef-test";

static char *b64url(const void *p, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (len > 0 && out[len - 1] == '=')
        len--;
    out[len] = '\0';
    for (int i = 0; i < len; i++)
        out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    return out;
}

/* header.payload.HMAC-SHA256(key) */
static char *hs_token(const char *header, const char *payload, const void *key, size_t keylen)
{
    char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
    size_t n = strlen(h) + strlen(p) + 2;
    char *si = malloc(n);
    snprintf(si, n, "%s.%s", h, p);
    unsigned char mac[32];
    unsigned ml = 0;
    HMAC(EVP_sha256(), key, (int)keylen, (unsigned char *)si, strlen(si), mac, &ml);
    char *s = b64url(mac, ml);
    char *tok = malloc(n + strlen(s) + 2);
    sprintf(tok, "%s.%s", si, s);
    free(h);
    free(p);
    free(si);
    free(s);
    return tok;
}

static char claims_buf[512];
static const char *claims(const char *extra)
{
    snprintf(claims_buf, sizeof claims_buf,
             "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\",\"iat\":%lld,"
             "\"exp\":%lld%s%s}",
             NOW, NOW + 300, extra && *extra ? "," : "", extra ? extra : "");
    return claims_buf;
}

static admin_jwt_t *hs_verifier(void)
{
    admin_jwt_opts_t o = {.alg = "HS256", .secret = (const uint8_t *)SECRET,
                          .secret_len = strlen(SECRET), .issuer = "roamhub",
                          .audience = "roamhub-admin", .ttl_s = 300};
    admin_jwt_t *j = NULL;
    assert_int_equal(admin_jwt_new(&o, &j, NULL), RH_OK);
    return j;
}

static int verify(admin_jwt_t *j, const char *tok)
{
    admin_jwt_claims_t c;
    rh_diag_t d = {{0}};
    int rc = admin_jwt_verify(j, tok, strlen(tok), NOW, &c, &d);
    if (rc == RH_OK)
        assert_string_equal(c.sub, "k1");
    else
        assert_true(strlen(d.text) > 0); /* every refusal says why */
    return rc;
}

static const char HDR[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static void test_valid_and_claim_attacks(void **state)
{
    (void)state;
    admin_jwt_t *j = hs_verifier();
    struct {
        const char *header, *payload;
        int want;
    } cases[] = {
        {HDR, claims(NULL), RH_OK},
        {"{\"alg\":\"HS256\"}", claims(NULL), RH_OK},
        {"{\"alg\":\"HS256\",\"kid\":\"key-1.a_b\"}", claims(NULL), RH_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = hs_token(cases[i].header, cases[i].payload, SECRET, strlen(SECRET));
        assert_int_equal(verify(j, t), cases[i].want);
        free(t);
    }
    /* aud as an array containing ours */
    char p[512];
    snprintf(p, sizeof p, "{\"iss\":\"roamhub\",\"aud\":[\"x\",\"roamhub-admin\"],\"sub\":\"k1\","
             "\"exp\":%lld}", NOW + 60);
    char *t = hs_token(HDR, p, SECRET, strlen(SECRET));
    assert_int_equal(verify(j, t), RH_OK);
    free(t);

    const char *bad_payloads[] = {
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\"}",           /* exp missing */
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\",\"exp\":1}",  /* expired */
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\",\"exp\":\"9999999999\"}",
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\",\"exp\":1.7e9}", /* past */
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\",\"exp\":99999999999}", /* far */
        "{\"iss\":\"evil\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\",\"exp\":1800000300}",
        "{\"aud\":\"roamhub-admin\",\"sub\":\"k1\",\"exp\":1800000300}",
        "{\"iss\":\"roamhub\",\"aud\":\"other\",\"sub\":\"k1\",\"exp\":1800000300}",
        "{\"iss\":\"roamhub\",\"aud\":[\"other\"],\"sub\":\"k1\",\"exp\":1800000300}",
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"exp\":1800000300}",        /* no sub */
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"\",\"exp\":1800000300}",
        "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"a b\",\"exp\":1800000300}",
        "[1,2,3]",
        "not json",
    };
    for (size_t i = 0; i < sizeof bad_payloads / sizeof bad_payloads[0]; i++) {
        t = hs_token(HDR, bad_payloads[i], SECRET, strlen(SECRET));
        if (verify(j, t) == RH_OK)
            fail_msg("payload %zu accepted: %s", i, bad_payloads[i]);
        free(t);
    }
    /* nbf in the future, iat in the future beyond the leeway; within the leeway accepted */
    char extra[64];
    snprintf(extra, sizeof extra, "\"nbf\":%lld", NOW + 3600);
    t = hs_token(HDR, claims(extra), SECRET, strlen(SECRET));
    assert_int_equal(verify(j, t), RH_ETIMEDOUT);
    free(t);
    snprintf(p, sizeof p, "{\"iss\":\"roamhub\",\"aud\":\"roamhub-admin\",\"sub\":\"k1\","
             "\"iat\":%lld,\"exp\":%lld}", NOW + 600, NOW + 900);
    t = hs_token(HDR, p, SECRET, strlen(SECRET));
    assert_int_equal(verify(j, t), RH_ETIMEDOUT);
    free(t);
    snprintf(extra, sizeof extra, "\"nbf\":%lld", NOW + 10);
    t = hs_token(HDR, claims(extra), SECRET, strlen(SECRET));
    assert_int_equal(verify(j, t), RH_OK);
    free(t);
    /* issue 16 item 5: a repeated claim or header member is refused (cJSON would read the first
     * "sub", libjwt's jansson the last) */
    t = hs_token(HDR, claims("\"sub\":\"k2\""), SECRET, strlen(SECRET));
    assert_int_equal(verify(j, t), RH_EINVAL);
    free(t);
    t = hs_token("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", claims(NULL), SECRET, strlen(SECRET));
    assert_int_equal(verify(j, t), RH_EINVAL);
    free(t);
    admin_jwt_free(j);
}

static void test_header_and_shape_attacks(void **state)
{
    (void)state;
    admin_jwt_t *j = hs_verifier();
    const char *bad_headers[] = {
        "{\"alg\":\"none\",\"typ\":\"JWT\"}",
        "{\"alg\":\"None\"}",
        "{\"alg\":\"HS384\"}",
        "{\"alg\":\"RS256\"}",
        "{\"alg\":\"hs256\"}",
        "{\"typ\":\"JWT\"}",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWE\"}",
        "{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}",
        "{\"alg\":\"HS256\",\"kid\":\"\"}",
        "{\"alg\":\"HS256\",\"kid\":7}",
        "{\"alg\":\"HS256\",\"kid\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
        "{\"alg\":\"HS256\",\"kid\":\"k\\u0000\"}",
        "{\"alg\":\"HS256\",\"jku\":\"https://evil/keys\"}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "[\"HS256\"]",
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers[0]; i++) {
        char *t = hs_token(bad_headers[i], claims(NULL), SECRET, strlen(SECRET));
        int rc = verify(j, t);
        if (rc != RH_EINVAL)
            fail_msg("header %zu: rc %d: %s", i, rc, bad_headers[i]);
        free(t);
    }
    char *good = hs_token(HDR, claims(NULL), SECRET, strlen(SECRET));
    size_t gl = strlen(good);
    char buf[ADMIN_JWT_MAX + 64];
    /* alg none with an empty signature, and with the valid signature kept */
    char *none_h = b64url("{\"alg\":\"none\"}", 14);
    const char *dot = strchr(good, '.');
    snprintf(buf, sizeof buf, "%s%.*s.", none_h, (int)(strrchr(good, '.') - dot), dot);
    assert_int_not_equal(verify(j, buf), RH_OK);
    snprintf(buf, sizeof buf, "%s%s", none_h, dot);
    assert_int_not_equal(verify(j, buf), RH_OK);
    free(none_h);
    /* trailing garbage: 1 and 2 base64url bytes, a fourth segment, whitespace, NUL */
    const char *trail[] = {"A", "AA", "AAA", ".e30", " ", "=", "\n"};
    for (size_t i = 0; i < sizeof trail / sizeof trail[0]; i++) {
        snprintf(buf, sizeof buf, "%s%s", good, trail[i]);
        assert_int_not_equal(verify(j, buf), RH_OK);
    }
    admin_jwt_claims_t c;
    memcpy(buf, good, gl);
    buf[gl] = '\0';
    buf[gl + 1] = 'A';
    assert_int_not_equal(admin_jwt_verify(j, buf, gl + 2, NOW, &c, NULL), RH_OK);
    /* empty signature, empty segments, missing segments */
    snprintf(buf, sizeof buf, "%.*s.", (int)(strrchr(good, '.') - good), good);
    assert_int_equal(verify(j, buf), RH_EINVAL);
    assert_int_equal(verify(j, ".."), RH_EINVAL);
    assert_int_equal(verify(j, "abc"), RH_EINVAL);
    assert_int_equal(verify(j, "a.b"), RH_EINVAL);
    assert_int_equal(admin_jwt_verify(j, "", 0, NOW, &c, NULL), RH_ERANGE);
    /* bad base64: a character outside the alphabet, padding, non-canonical last character */
    snprintf(buf, sizeof buf, "%s", good);
    buf[3] = '!';
    assert_int_equal(verify(j, buf), RH_EINVAL);
    snprintf(buf, sizeof buf, "%s", good);
    char *sig = strrchr(buf, '.') + 1;
    size_t sl = strlen(sig); /* 43 chars for 32 bytes: the last carries 2 pad bits */
    assert_int_equal(sl, 43);
    sig[sl - 1] = sig[sl - 1] == 'A' ? 'B' : (char)(sig[sl - 1] ^ 1);
    assert_int_not_equal(verify(j, buf), RH_OK);
    /* tampered claims: signature no longer matches */
    char *forged = hs_token(HDR, claims("\"x\":1"), "wrong-key-wrong-key-wrong-key-12", 32);
    assert_int_equal(verify(j, forged), RH_EPERM);
    free(forged);
    /* oversized */
    memset(buf, 'A', sizeof buf);
    buf[ADMIN_JWT_MAX + 10] = '\0';
    assert_int_equal(verify(j, buf), RH_ERANGE);
    free(good);
    admin_jwt_free(j);
}

static char *pem_of(EVP_PKEY *k, int priv)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (priv)
        PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    else
        PEM_write_bio_PUBKEY(b, k);
    char *p;
    long n = BIO_get_mem_data(b, &p);
    char *out = malloc((size_t)n + 1);
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static void asym_case(const char *alg, EVP_PKEY *k, EVP_PKEY *other)
{
    char *pub = pem_of(k, 0), *priv = pem_of(k, 1), *opriv = pem_of(other, 1);
    admin_jwt_opts_t o = {.alg = alg, .public_key_pem = pub, .private_key_pem = priv,
                          .issuer = "roamhub", .audience = "roamhub-admin", .ttl_s = 300};
    admin_jwt_t *j = NULL, *jo = NULL;
    assert_int_equal(admin_jwt_new(&o, &j, NULL), RH_OK);
    o.private_key_pem = opriv;
    o.public_key_pem = NULL;
    admin_jwt_opts_t oo = o;
    char *opub = pem_of(other, 0);
    oo.public_key_pem = opub;
    assert_int_equal(admin_jwt_new(&oo, &jo, NULL), RH_OK);
    char *tok = NULL;
    assert_int_equal(admin_jwt_issue(j, "k1", NOW, &tok, NULL), RH_OK);
    assert_int_equal(verify(j, tok), RH_OK);
    /* tampered signature byte */
    char *t2 = strdup(tok);
    char *s = strrchr(t2, '.') + 1;
    s[5] = s[5] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(j, t2), RH_EPERM);
    free(t2);
    /* signed by another key of the same type */
    char *ot = NULL;
    assert_int_equal(admin_jwt_issue(jo, "k1", NOW, &ot, NULL), RH_OK);
    assert_int_equal(verify(j, ot), RH_EPERM);
    free(ot);
    /* algorithm confusion: HS256 keyed with the public key PEM */
    char *conf = hs_token(HDR, claims(NULL), pub, strlen(pub));
    assert_int_equal(verify(j, conf), RH_EINVAL);
    free(conf);
    /* right header, HMAC signature of the same length class is still refused */
    char hdr[64];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\"}", alg);
    conf = hs_token(hdr, claims(NULL), pub, strlen(pub));
    assert_int_not_equal(verify(j, conf), RH_OK);
    free(conf);
    /* no private key: cannot issue */
    admin_jwt_opts_t vo = {.alg = alg, .public_key_pem = pub, .issuer = "roamhub",
                           .audience = "roamhub-admin"};
    admin_jwt_t *jv = NULL;
    assert_int_equal(admin_jwt_new(&vo, &jv, NULL), RH_OK);
    assert_false(admin_jwt_can_issue(jv));
    assert_int_equal(verify(jv, tok), RH_OK);
    char *x = NULL;
    assert_int_equal(admin_jwt_issue(jv, "k1", NOW, &x, NULL), RH_EUNSUPPORTED);
    admin_jwt_free(jv);
    free(tok);
    admin_jwt_free(j);
    admin_jwt_free(jo);
    free(pub);
    free(priv);
    free(opriv);
    free(opub);
}

static void test_es256_rs256(void **state)
{
    (void)state;
    EVP_PKEY *ec1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *rsa1 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(ec1);
    assert_non_null(rsa1);
    asym_case("ES256", ec1, ec2);
    asym_case("RS256", rsa1, rsa2);
    /* key of the wrong type for the algorithm */
    char *rsapub = pem_of(rsa1, 0), *ecpub = pem_of(ec1, 0);
    admin_jwt_opts_t o = {.alg = "ES256", .public_key_pem = rsapub, .issuer = "i", .audience = "a"};
    admin_jwt_t *j = NULL;
    rh_diag_t d;
    assert_int_equal(admin_jwt_new(&o, &j, &d), RH_EINVAL);
    o.alg = "RS256";
    o.public_key_pem = ecpub;
    assert_int_equal(admin_jwt_new(&o, &j, &d), RH_EINVAL);
    o.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n";
    assert_int_equal(admin_jwt_new(&o, &j, &d), RH_ECRYPTO);
    admin_jwt_opts_t h = {.alg = "HS256", .secret = (const uint8_t *)"short", .secret_len = 5,
                          .issuer = "i", .audience = "a"};
    assert_int_equal(admin_jwt_new(&h, &j, &d), RH_EINVAL);
    h.alg = "none";
    assert_int_equal(admin_jwt_new(&h, &j, &d), RH_EINVAL);
    free(rsapub);
    free(ecpub);
    EVP_PKEY_free(ec1);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(rsa1);
    EVP_PKEY_free(rsa2);
}

static void test_keys_and_revocation(void **state)
{
    (void)state;
    char dir[] = "/tmp/roamhub-jwt-XXXXXX";
    assert_non_null(mkdtemp(dir));
    rp_db_t *db = NULL;
    rp_db_opts_t dbo = {.map_size = 8u << 20, .no_sync = 1, .no_index = 1};
    assert_int_equal(rp_db_open(dir, &dbo, &db, NULL), RH_OK);
    admin_jwt_t *j = hs_verifier();
    Roamhub__V1__ApiKey k = ROAMHUB__V1__API_KEY__INIT;
    admin_key_material_t m;
    char secret[ADMIN_SECRET_LEN + 1];
    Roamhub__V1__Right r = ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC;
    k.id = "k1";
    k.net_id = 0x000505;
    k.rights = &r;
    k.n_rights = 1;
    k.created_at = (NOW - 10) * 1000;
    assert_int_equal(admin_key_generate(&k, &m, secret), RH_OK);
    assert_int_equal(strlen(secret), ADMIN_SECRET_LEN);
    assert_true(admin_key_check(&k, secret, strlen(secret)));
    assert_false(admin_key_check(&k, secret, strlen(secret) - 1));
    assert_false(admin_key_check(NULL, secret, strlen(secret)));
    assert_int_equal(rp_put(db, "t", RP_KIND_API_KEY, &k.base, RP_PUT_CREATE, NULL), RH_OK);

    char *tok = NULL;
    rh_diag_t d;
    assert_int_equal(admin_token_exchange(db, j, "k1", "wrong-secret-wrong", 18, NOW, &tok, NULL,
                                          &d), RH_EPERM);
    assert_int_equal(admin_token_exchange(db, j, "nope", secret, strlen(secret), NOW, &tok, NULL,
                                          &d), RH_EPERM);
    assert_int_equal(admin_token_exchange(db, j, "k1", secret, strlen(secret), NOW, &tok, NULL,
                                          &d), RH_OK);
    char authz[ADMIN_JWT_MAX];
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    admin_principal_t p;
    assert_int_equal(admin_authenticate(db, j, authz, NOW, &p, &d), RH_OK);
    assert_string_equal(p.key_id, "k1");
    assert_false(p.is_operator);
    assert_int_equal(p.net_id, 0x000505);
    assert_true(admin_has_right(&p, ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC));
    assert_false(admin_has_right(&p, ROAMHUB__V1__RIGHT__RIGHT_WRITE_ROUTING_POLICY));
    assert_int_equal(admin_authenticate(db, j, tok, NOW, &p, &d), RH_EPERM); /* no scheme */
    assert_int_equal(admin_authenticate(db, j, NULL, NOW, &p, &d), RH_EPERM);
    /* a token for a key that does not exist */
    char *other = NULL;
    assert_int_equal(admin_jwt_issue(j, "ghost", NOW, &other, NULL), RH_OK);
    snprintf(authz, sizeof authz, "Bearer %s", other);
    assert_int_equal(admin_authenticate(db, j, authz, NOW, &p, &d), RH_EPERM);
    free(other);
    /* revoke: the same token stops working at once */
    k.revoked_at = NOW * 1000;
    assert_int_equal(rp_put(db, "t", RP_KIND_API_KEY, &k.base, RP_PUT_UPDATE, NULL), RH_OK);
    snprintf(authz, sizeof authz, "Bearer %s", tok);
    assert_int_equal(admin_authenticate(db, j, authz, NOW, &p, &d), RH_EPERM);
    assert_non_null(strstr(d.text, "revoked"));
    assert_int_equal(admin_token_exchange(db, j, "k1", secret, strlen(secret), NOW, &other, NULL,
                                          &d), RH_EPERM);
    /* deleted and re-created under the same ID: old tokens (iat before creation) refused */
    k.revoked_at = 0;
    k.created_at = (NOW + 3600) * 1000;
    assert_int_equal(rp_put(db, "t", RP_KIND_API_KEY, &k.base, RP_PUT_UPSERT, NULL), RH_OK);
    assert_int_equal(admin_authenticate(db, j, authz, NOW + 3700 - 300, &p, &d), RH_EPERM);
    free(tok);
    admin_jwt_free(j);
    rp_db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_operator_key_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/roamhub-opk-XXXXXX";
    assert_non_null(mkdtemp(dir));
    rp_db_t *db = NULL;
    rp_db_opts_t dbo = {.map_size = 8u << 20, .no_sync = 1, .no_index = 1};
    assert_int_equal(rp_db_open(dir, &dbo, &db, NULL), RH_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/operator.key", dir);
    rh_diag_t d;
    assert_int_equal(admin_operator_key_bootstrap(db, path, &d), RH_OK);
    FILE *f = fopen(path, "r");
    char line[300];
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    char *colon = strchr(line, ':');
    assert_non_null(colon);
    *colon = '\0';
    admin_jwt_t *j = hs_verifier();
    char *tok = NULL;
    assert_int_equal(admin_token_exchange(db, j, line, colon + 1, strlen(colon + 1),
                                          rh_real_ms() / 1000, &tok, NULL, &d), RH_OK);
    free(tok);
    /* a second start keeps the same key; a group-readable file is refused */
    assert_int_equal(admin_operator_key_bootstrap(db, path, &d), RH_OK);
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(admin_operator_key_bootstrap(db, path, &d), RH_EPERM);
    admin_jwt_free(j);
    rp_db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_claim_attacks),
        cmocka_unit_test(test_header_and_shape_attacks),
        cmocka_unit_test(test_es256_rs256),
        cmocka_unit_test(test_keys_and_revocation),
        cmocka_unit_test(test_operator_key_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
