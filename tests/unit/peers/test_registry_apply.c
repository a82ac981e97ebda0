/*
 * Incremental registry updates (peer_registry_apply, issue 18 item 2): after every step of random
 * sequences of member/endpoint upserts and deletes, the incrementally built registry answers
 * every lookup exactly like a full peer_registry_new of the resulting records; a change the full
 * build refuses is refused by apply with the same error (and the registry stays as it was);
 * unchanged members are shared (their rate-limit state carries over) while changed ones are new.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peer_registry.h"
#include "rh_err.h"
#include "rh_time.h"

#define N_IDS 12    /* member ids m0..m11, endpoint ids e0..e11 */
#define N_NETS 6    /* NetIDs 0x000100 + i */
#define N_TEN 3     /* tenants "", "t0", "t1" */
#define N_FPS 8
#define N_SUBJ 6
#define N_KEYS 8

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const tenants[N_TEN] = {"", "t0", "t1"};
static uint8_t key_hash[N_KEYS][32];
static char key_text[N_KEYS][16];
static char fp_text[N_FPS][65];
static char subj_text[N_SUBJ][32];
static char ids[N_IDS][8], eids[N_IDS][8];
static char urls[N_IDS][48];

/* The model: the records that currently exist (slot i = id i). */
typedef struct mrec {
    bool present;
    Roamhub__V1__Member m;
    uint32_t nets[2];
    char *ten[2];
    char *fps[2];
    char *subj[1];
    ProtobufCBinaryData keys[2];
} mrec_t;

typedef struct erec {
    bool present;
    Roamhub__V1__Endpoint e;
} erec_t;

static mrec_t members[N_IDS];
static erec_t endpoints[N_IDS];

static void random_member(mrec_t *r, int i)
{
    Roamhub__V1__Member init = ROAMHUB__V1__MEMBER__INIT;
    r->m = init;
    r->m.id = ids[i];
    r->m.n_net_ids = 1 + rnd(2);
    for (size_t k = 0; k < r->m.n_net_ids; k++)
        r->nets[k] = 0x100 + rnd(N_NETS);
    r->m.net_ids = r->nets;
    r->m.n_tenant_ids = rnd(3) == 0 ? 1 + rnd(2) : 0;
    for (size_t k = 0; k < r->m.n_tenant_ids; k++)
        r->ten[k] = (char *)tenants[1 + rnd(2)];
    r->m.tenant_ids = r->ten;
    r->m.n_cert_fingerprints = rnd(3);
    for (size_t k = 0; k < r->m.n_cert_fingerprints; k++)
        r->fps[k] = fp_text[rnd(N_FPS)];
    r->m.cert_fingerprints = r->fps;
    r->m.n_cert_subjects = rnd(2);
    r->subj[0] = subj_text[rnd(N_SUBJ)];
    r->m.cert_subjects = r->subj;
    r->m.n_api_key_hashes = rnd(3);
    for (size_t k = 0; k < r->m.n_api_key_hashes; k++)
        r->keys[k] = (ProtobufCBinaryData){32, key_hash[rnd(N_KEYS)]};
    r->m.api_key_hashes = r->keys;
    r->m.rate_limit_per_s = 100 + (uint32_t)i;
}

static void random_endpoint(erec_t *r, int i)
{
    Roamhub__V1__Endpoint init = ROAMHUB__V1__ENDPOINT__INIT;
    r->e = init;
    r->e.id = eids[i];
    r->e.url = urls[i];
    if (rnd(4) == 0) {
        r->e.join_eui = 0x70B3D57ED0000000ull + rnd(4);
    } else {
        r->e.net_id = 0x100 + rnd(N_NETS);
        r->e.tenant_id = (char *)tenants[rnd(N_TEN)];
    }
    r->e.timeout_ms = 1000 + (uint32_t)rnd(3);
}

static int full_build(peer_registry_t **out, rh_diag_t *d)
{
    const Roamhub__V1__Member *mv[N_IDS];
    const Roamhub__V1__Endpoint *ev[N_IDS];
    size_t nm = 0, ne = 0;
    for (int i = 0; i < N_IDS; i++) {
        if (members[i].present)
            mv[nm++] = &members[i].m;
        if (endpoints[i].present)
            ev[ne++] = &endpoints[i].e;
    }
    peer_registry_config_t cfg = {.members = mv, .n_members = nm, .endpoints = ev,
                                  .n_endpoints = ne, .endpoint_flags = PEER_ENDPOINT_NO_RESOLVE};
    return peer_registry_new(&cfg, out, d);
}

static const char *mid(const peer_member_t *m) { return m ? m->id : "-"; }
static const char *eid(const peer_endpoint_t *e) { return e ? e->id : "-"; }

/* Every lookup of the public API over the whole universe of ids, NetIDs, tenants and
 * credentials gives the same answer (by id: the objects differ between the two registries). */
static void assert_same(const peer_registry_t *a, const peer_registry_t *b)
{
    assert_int_equal(peer_registry_member_count(a), peer_registry_member_count(b));
    assert_int_equal(peer_registry_endpoint_count(a), peer_registry_endpoint_count(b));
    const peer_member_t *ma, *mb;
    const peer_endpoint_t *ea, *eb;
    for (int i = 0; i < N_IDS; i++) {
        peer_registry_member_by_id(a, ids[i], &ma);
        peer_registry_member_by_id(b, ids[i], &mb);
        assert_string_equal(mid(ma), mid(mb));
        if (ma) {
            assert_int_equal(ma->n_net_ids, mb->n_net_ids);
            assert_int_equal(ma->rate_per_s, mb->rate_per_s);
            assert_int_equal(ma->n_tenant_ids, mb->n_tenant_ids);
        }
        peer_registry_endpoint_by_id(a, eids[i], &ea);
        peer_registry_endpoint_by_id(b, eids[i], &eb);
        assert_string_equal(eid(ea), eid(eb));
        if (ea)
            assert_memory_equal(ea->digest, eb->digest, 32);
    }
    for (int n = 0; n < N_NETS; n++)
        for (int t = 0; t < N_TEN; t++) {
            peer_registry_member_by_netid(a, 0x100u + (uint32_t)n, tenants[t], &ma);
            peer_registry_member_by_netid(b, 0x100u + (uint32_t)n, tenants[t], &mb);
            assert_string_equal(mid(ma), mid(mb));
            peer_registry_endpoint_by_netid(a, 0x100u + (uint32_t)n, tenants[t], &ea);
            peer_registry_endpoint_by_netid(b, 0x100u + (uint32_t)n, tenants[t], &eb);
            assert_string_equal(eid(ea), eid(eb));
        }
    for (unsigned j = 0; j < 4; j++) {
        peer_registry_endpoint_by_join_eui(a, 0x70B3D57ED0000000ull + j, &ea);
        peer_registry_endpoint_by_join_eui(b, 0x70B3D57ED0000000ull + j, &eb);
        assert_string_equal(eid(ea), eid(eb));
    }
    for (int k = 0; k < N_KEYS; k++) {
        char h[160];
        snprintf(h, sizeof h, "Bearer %s", key_text[k]);
        assert_int_equal(peer_registry_auth_bearer(a, h, &ma), RH_OK);
        assert_int_equal(peer_registry_auth_bearer(b, h, &mb), RH_OK);
        assert_string_equal(mid(ma), mid(mb));
    }
    for (int f = 0; f < N_FPS + N_SUBJ; f++) {
        peer_tls_identity_t id = {.present = true};
        if (f < N_FPS) {
            for (int k = 0; k < 32; k++)
                sscanf(fp_text[f] + 2 * k, "%2hhx", &id.fingerprint[k]);
        } else {
            snprintf(id.subject, sizeof id.subject, "%s", subj_text[f - N_FPS]);
        }
        assert_int_equal(peer_registry_auth_tls(a, &id, &ma), RH_OK);
        assert_int_equal(peer_registry_auth_tls(b, &id, &mb), RH_OK);
        assert_string_equal(mid(ma), mid(mb));
    }
}

static void setup_universe(void)
{
    for (int i = 0; i < N_IDS; i++) {
        snprintf(ids[i], sizeof ids[i], "m%d", i);
        snprintf(eids[i], sizeof eids[i], "e%d", i);
        snprintf(urls[i], sizeof urls[i], "http://127.0.0.1:%d/ts002", 9000 + i);
    }
    for (int k = 0; k < N_KEYS; k++) {
        snprintf(key_text[k], sizeof key_text[k], "key-%d-secret", k);
        assert_int_equal(peer_api_key_hash(key_text[k], strlen(key_text[k]), key_hash[k]), RH_OK);
    }
    for (int f = 0; f < N_FPS; f++)
        for (int k = 0; k < 32; k++)
            snprintf(fp_text[f] + 2 * k, 3, "%02x", (unsigned)(f * 37 + k) & 0xff);
    for (int s = 0; s < N_SUBJ; s++)
        snprintf(subj_text[s], sizeof subj_text[s], "CN=net%d,O=test", s);
    memset(members, 0, sizeof members);
    memset(endpoints, 0, sizeof endpoints);
}

static void test_apply_equals_full_build(void **state)
{
    (void)state;
    setup_universe();
    peer_registry_t *cur = NULL;
    rh_diag_t d;
    assert_int_equal(full_build(&cur, &d), RH_OK);
    size_t accepted = 0, refused = 0;
    for (int step = 0; step < 3000; step++) {
        int i = (int)rnd(N_IDS);
        bool is_member = rnd(2) == 0;
        bool del = rnd(4) == 0;
        mrec_t msave = members[i];
        erec_t esave = endpoints[i];
        peer_registry_change_t c = {.op = del ? PEER_CHANGE_DELETE : PEER_CHANGE_UPSERT};
        if (is_member) {
            if (del) {
                members[i].present = false;
                c.member_id = ids[i];
            } else {
                random_member(&members[i], i);
                members[i].present = true;
                c.member = &members[i].m;
            }
        } else {
            if (del) {
                endpoints[i].present = false;
                c.endpoint_id = eids[i];
            } else {
                random_endpoint(&endpoints[i], i);
                endpoints[i].present = true;
                c.endpoint = &endpoints[i].e;
            }
        }
        peer_registry_t *full = NULL, *inc = NULL;
        rh_diag_t df = {{0}}, di = {{0}};
        int rf = full_build(&full, &df);
        int ri = peer_registry_apply(cur, &c, 1, PEER_ENDPOINT_NO_RESOLVE, &inc, &di);
        assert_int_equal(ri, rf);
        if (rf != RH_OK) {
            /* refused: same reason class, the model and the registry stay as they were */
            assert_null(inc);
            assert_true(strstr(di.text, "already") || strstr(di.text, "also mapped"));
            members[i] = msave;
            endpoints[i] = esave;
            refused++;
            continue;
        }
        assert_same(full, inc);
        /* unchanged members are shared with the previous registry, the changed one is new */
        for (int j = 0; j < N_IDS; j++) {
            const peer_member_t *a = NULL, *b = NULL;
            peer_registry_member_by_id(cur, ids[j], &a);
            peer_registry_member_by_id(inc, ids[j], &b);
            if (a && b)
                assert_true((a == b) == !(is_member && j == i));
        }
        peer_registry_unref(full);
        peer_registry_unref(cur);
        cur = inc;
        accepted++;
    }
    assert_true(accepted > 500);
    assert_true(refused > 50); /* the sequences do hit the uniqueness rules */
    peer_registry_unref(cur);
}

static void test_apply_multiple_and_errors(void **state)
{
    (void)state;
    setup_universe();
    rh_diag_t d;
    peer_registry_t *base = NULL, *next = NULL;
    assert_int_equal(peer_registry_apply(NULL, NULL, 0, 0, &base, &d), RH_OK);
    assert_int_equal(peer_registry_member_count(base), 0);
    /* several changes at once, in order: upsert then delete the same member */
    random_member(&members[0], 0);
    random_member(&members[1], 1);
    members[1].nets[0] = members[0].nets[0] ^ 1; /* keep claims apart */
    members[1].m.n_net_ids = 1;
    members[0].m.n_net_ids = 1;
    members[0].m.n_tenant_ids = members[1].m.n_tenant_ids = 0;
    members[0].m.n_cert_fingerprints = members[1].m.n_cert_fingerprints = 0;
    members[0].m.n_cert_subjects = members[1].m.n_cert_subjects = 0;
    members[0].m.n_api_key_hashes = members[1].m.n_api_key_hashes = 0;
    peer_registry_change_t ch[3] = {
        {.member = &members[0].m}, {.member = &members[1].m},
        {.op = PEER_CHANGE_DELETE, .member_id = "m0"}};
    assert_int_equal(peer_registry_apply(base, ch, 3, 0, &next, &d), RH_OK);
    assert_int_equal(peer_registry_member_count(next), 1);
    const peer_member_t *m;
    peer_registry_member_by_id(next, "m1", &m);
    assert_non_null(m);
    /* the rate-limit state of an unchanged member carries over to the next registry */
    uint64_t now = rh_mono_ns();
    while (peer_member_rate_allow(m, now))
        ;
    peer_registry_t *after = NULL;
    peer_registry_change_t e = {.endpoint = &endpoints[0].e};
    random_endpoint(&endpoints[0], 0);
    assert_int_equal(peer_registry_apply(next, &e, 1, PEER_ENDPOINT_NO_RESOLVE, &after, &d), RH_OK);
    const peer_member_t *m2;
    peer_registry_member_by_id(after, "m1", &m2);
    assert_ptr_equal(m, m2);
    assert_false(peer_member_rate_allow(m2, now));
    /* a change naming nothing, or a bad record: refused, naming the field */
    peer_registry_change_t bad = {.op = PEER_CHANGE_UPSERT};
    peer_registry_t *x = NULL;
    assert_int_equal(peer_registry_apply(after, &bad, 1, 0, &x, &d), RH_EINVAL);
    assert_null(x);
    members[2].m = members[0].m;
    members[2].m.id = "m2";
    members[2].m.n_net_ids = 0;
    peer_registry_change_t nonet = {.member = &members[2].m};
    assert_int_equal(peer_registry_apply(after, &nonet, 1, 0, &x, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "Member[m2].net_ids"));
    /* deleting an id that is not there changes nothing */
    peer_registry_change_t gone = {.op = PEER_CHANGE_DELETE, .endpoint_id = "nope"};
    assert_int_equal(peer_registry_apply(after, &gone, 1, 0, &x, &d), RH_OK);
    assert_int_equal(peer_registry_endpoint_count(x), 1);
    peer_registry_unref(x);
    peer_registry_unref(base);
    peer_registry_unref(next);
    /* `after` outlives `next`: the shared member is still valid */
    peer_registry_member_by_id(after, "m1", &m2);
    assert_string_equal(m2->id, "m1");
    peer_registry_unref(after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_equals_full_build),
        cmocka_unit_test(test_apply_multiple_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
