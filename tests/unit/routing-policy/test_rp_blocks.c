/* Unit tests for DevAddr blocks: containment in the owner's NetID prefix (every NetID of
 * ../shared/vectors/netid_devaddr_prefix.json), every overlap/delegation rule, longest-prefix
 * match against a naive linear reference, deletes, and the NetID prefix index. */
#include "rp_fixture.h"

#include "lw_netid.h"
#include "rh_test.h"

static int put_network(fx_t *f, uint32_t net_id, const uint32_t *deleg, size_t n)
{
    Roamhub__V1__Network nw = ROAMHUB__V1__NETWORK__INIT;
    nw.net_id = net_id;
    nw.delegated_net_ids = (uint32_t *)deleg;
    nw.n_delegated_net_ids = n;
    rh_diag_t d;
    int rc = rp_put(f->db, "test", RP_KIND_NETWORK, &nw.base, RP_PUT_UPSERT, &d);
    if (rc)
        print_error("network: %s\n", d.text);
    return rc;
}

static void test_netid_vectors(void **state)
{
    fx_t *f = *state;
    cJSON *root = rh_test_load_vectors("netid_devaddr_prefix.json");
    const cJSON *v;
    int n = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "vectors"))
    {
        uint32_t netid;
        lw_devaddr_prefix_t p;
        assert_int_equal(lw_netid_parse(rh_test_str(v, "net_id"), &netid, NULL), RH_OK);
        assert_int_equal(lw_devaddr_prefix_parse(rh_test_str(v, "dev_addr_prefix"), &p, NULL),
                         RH_OK);
        rh_diag_t d;
        /* A block one bit wider than the NetID prefix lies outside it. */
        if (p.len > 0) {
            uint32_t wider = p.value & (p.len == 1 ? 0 : ~0u << (33 - p.len));
            assert_int_equal(fx_block(f, wider, p.len - 1u, netid, "", 0, &d), RH_EINVAL);
            assert_non_null(strstr(d.text, "not inside DevAddr prefix"));
        }
        /* The prefix itself, and a sub-block, are accepted (replacing earlier vectors' blocks
         * that would overlap: the table is cleared per vector). */
        rp_txn_t *t;
        assert_int_equal(rp_txn_begin(f->db, "test", 0, &t, NULL), RH_OK);
        assert_int_equal(rp_txn_clear(t, RP_KIND_BLOCK, NULL), RH_OK);
        assert_int_equal(rp_txn_clear(t, RP_KIND_NETWORK, NULL), RH_OK);
        assert_int_equal(rp_txn_commit(t, NULL), RH_OK);
        if (fx_block(f, p.value, p.len, netid, "", 0, &d) != RH_OK)
            fail_msg("NetID %06X prefix block: %s", netid, d.text);
        if (p.len < 32)
            assert_int_equal(fx_block(f, p.value | (1u << (31 - p.len)), p.len + 1u, netid,
                                      "t1", 0, &d),
                             RH_OK);
        assert_int_equal(put_network(f, netid, NULL, 0), RH_OK);
        const cJSON *ex = cJSON_GetObjectItem(v, "example_dev_addr");
        if (cJSON_IsString(ex)) {
            uint32_t a;
            assert_int_equal(lw_devaddr_parse(ex->valuestring, &a, NULL), RH_OK);
            rp_block_match_t m = fx_lookup(f, a);
            int want = cJSON_IsTrue(cJSON_GetObjectItem(v, "example_matches"));
            assert_int_equal(m.found, want);
            if (want) {
                assert_int_equal(m.owner.net_id, netid);
                uint32_t ids[8];
                size_t cnt;
                assert_int_equal(rp_reader_begin(f->r), RH_OK);
                assert_int_equal(rp_lookup_netids(f->r, a, ids, NULL, 8, &cnt), RH_OK);
                rp_reader_end(f->r);
                assert_int_equal(cnt, 1);
                assert_int_equal(ids[0], netid);
            }
        }
        n++;
    }
    assert_true(n >= 11);
    cJSON_Delete(root);
}

static void test_containment(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    /* 000013 -> 26000000/7; 600013 (type 3) -> e0260000/15... computed by lw_netid. */
    assert_int_equal(fx_block(f, 0x26000000, 8, 0x13, "", 0, &d), RH_OK);
    assert_int_equal(fx_block(f, 0x24000000, 7, 0x13, "", 0, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "26000000/7"));
    assert_int_equal(fx_block(f, 0x24000000, 6, 0x13, "", 0, &d), RH_EINVAL);
    /* bits beyond the length */
    assert_int_equal(fx_block(f, 0x26000001, 8, 0x13, "", 0, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "devaddr_block.prefix"));
    assert_int_equal(fx_block(f, 0x26000000, 33, 0x13, "", 0, &d), RH_EINVAL);
    /* delegated NetID */
    lw_devaddr_prefix_t dp;
    assert_int_equal(lw_netid_devaddr_prefix(0x600013, &dp, NULL), RH_OK);
    assert_int_equal(fx_block(f, dp.value, dp.len, 0x13, "", 0, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "outside_net_id"));
    uint32_t deleg = 0x600013;
    assert_int_equal(put_network(f, 0x13, &deleg, 1), RH_OK);
    assert_int_equal(fx_block(f, dp.value, dp.len, 0x13, "", 0, &d), RH_OK);
    /* operator override */
    assert_int_equal(fx_block(f, 0x10000000, 8, 0x13, "", 1, &d), RH_OK);
    /* NetID out of range, tenant too long / bad characters */
    assert_int_equal(fx_block(f, 0x26000000, 9, 0x1000000, "", 1, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "devaddr_block.net_id"));
    assert_int_equal(fx_block(f, 0x26000000, 9, 0x13, "0123456789012345678901234567890123456", 0,
                              &d),
                     RH_EINVAL);
    assert_int_equal(fx_block(f, 0x26000000, 9, 0x13, "a b", 0, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "tenant"));
}

/* Overlap/delegation rules: existing blocks, then a new one, expected result. */
typedef struct blk {
    uint32_t prefix;
    unsigned len;
    uint32_t net;
    const char *tenant;
} blk_t;

static const struct {
    const char *name;
    blk_t existing[3];
    size_t n;
    blk_t add;
    int want;
    const char *conflict; /* substring of the diagnostic */
} overlap_cases[] = {
    {"nested tenant block inside NetID-level block", {{0x26000000, 7, 0x13, ""}}, 1,
     {0x26010000, 16, 0x13, "acme"}, RH_OK, NULL},
    {"nested NetID-level block inside NetID-level block (cluster split)",
     {{0x26000000, 7, 0x13, ""}}, 1, {0x26010000, 16, 0x13, ""}, RH_OK, NULL},
    {"other NetID inside", {{0x26000000, 7, 0x13, ""}}, 1, {0x26010000, 16, 0x14, ""}, RH_EEXIST,
     "26000000/7"},
    {"other tenant inside a tenant block", {{0x26010000, 16, 0x13, "a"}}, 1,
     {0x26010000, 17, 0x13, "b"}, RH_EEXIST, "26010000/16 owned by 000013/a"},
    {"same tenant inside a tenant block", {{0x26010000, 16, 0x13, "a"}}, 1,
     {0x26018000, 17, 0x13, "a"}, RH_OK, NULL},
    {"NetID-level block inside a tenant block", {{0x26010000, 16, 0x13, "a"}}, 1,
     {0x26010000, 24, 0x13, ""}, RH_EEXIST, "26010000/16"},
    {"less specific block over another NetID's block", {{0x26010000, 16, 0x14, ""}}, 1,
     {0x26000000, 8, 0x13, ""}, RH_EEXIST, "26010000/16 owned by 000014"},
    {"less specific NetID block over its tenant's block", {{0x26010000, 16, 0x13, "t"}}, 1,
     {0x26000000, 8, 0x13, ""}, RH_OK, NULL},
    {"less specific tenant block over another tenant's block", {{0x26010000, 16, 0x13, "t"}}, 1,
     {0x26000000, 8, 0x13, "u"}, RH_EEXIST, "26010000/16 owned by 000013/t"},
    {"disjoint siblings of different NetIDs", {{0x26000000, 16, 0x13, ""}}, 1,
     {0x26010000, 16, 0x14, ""}, RH_OK, NULL},
    {"deep chain: conflict with the grandparent",
     {{0x26000000, 7, 0x13, ""}, {0x26010000, 16, 0x13, "t"}}, 2, {0x26010100, 24, 0x14, ""},
     RH_EEXIST, "26010000/16"},
    {"deep chain: allowed three levels",
     {{0x26000000, 7, 0x13, ""}, {0x26010000, 16, 0x13, "t"}}, 2, {0x26010100, 24, 0x13, "t"},
     RH_OK, NULL},
    {"update changing the owner under nested blocks",
     {{0x26000000, 8, 0x13, ""}, {0x26010000, 16, 0x13, ""}}, 2, {0x26000000, 8, 0x14, ""},
     RH_EEXIST, "26010000/16"},
    {"/0 over everything", {{0x26010000, 16, 0x13, ""}, {0x0a000000, 7, 0x505, ""}}, 2,
     {0, 0, 0x13, ""}, RH_EEXIST, "0A000000/7"},
    {"/32 inside another NetID's /31", {{0x26000002, 31, 0x13, ""}}, 1,
     {0x26000003, 32, 0x14, ""}, RH_EEXIST, "26000002/31"},
    {"/32 next to a /32", {{0x26000002, 32, 0x13, ""}}, 1, {0x26000003, 32, 0x14, ""}, RH_OK,
     NULL},
    {"sibling before, ancestor further back",
     {{0x26000000, 8, 0x13, ""}, {0x26000000, 16, 0x13, ""}}, 2, {0x26ff0000, 16, 0x14, ""},
     RH_EEXIST, "26000000/8"},
};

static void test_overlap_rules(void **state)
{
    fx_t *f = *state;
    for (size_t i = 0; i < sizeof overlap_cases / sizeof overlap_cases[0]; i++) {
        rp_txn_t *t;
        assert_int_equal(rp_txn_begin(f->db, "test", 0, &t, NULL), RH_OK);
        assert_int_equal(rp_txn_clear(t, RP_KIND_BLOCK, NULL), RH_OK);
        assert_int_equal(rp_txn_commit(t, NULL), RH_OK);
        rh_diag_t d;
        for (size_t k = 0; k < overlap_cases[i].n; k++) {
            const blk_t *b = &overlap_cases[i].existing[k];
            if (fx_block(f, b->prefix, b->len, b->net, b->tenant, 1, &d))
                fail_msg("case %zu (%s): setup: %s", i, overlap_cases[i].name, d.text);
        }
        const blk_t *a = &overlap_cases[i].add;
        rh_diag_clear(&d);
        int rc = fx_block(f, a->prefix, a->len, a->net, a->tenant, 1, &d);
        if (rc != overlap_cases[i].want)
            fail_msg("case %zu (%s): got %d want %d (%s)", i, overlap_cases[i].name, rc,
                     overlap_cases[i].want, d.text);
        if (overlap_cases[i].conflict && !strstr(d.text, overlap_cases[i].conflict))
            fail_msg("case %zu (%s): diagnostic \"%s\" does not name %s", i,
                     overlap_cases[i].name, d.text, overlap_cases[i].conflict);
        /* A refused block left nothing behind. */
        if (rc != RH_OK) {
            rp_block_match_t m = fx_lookup(f, a->prefix | (a->len < 32 ? 1u : 0));
            assert_false(m.found && m.prefix == a->prefix && m.length == a->len &&
                         m.owner.net_id == a->net);
        }
    }
}

/* Naive reference: longest block containing a. */
typedef struct ref {
    uint32_t p, net;
    unsigned len;
    char tenant[4];
} ref_t;

static uint32_t mask(unsigned l)
{
    return l == 0 ? 0 : ~0u << (32 - l);
}

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_lpm_reference(void **state)
{
    fx_t *f = *state;
    ref_t *refs = calloc(600, sizeof *refs);
    size_t n = 0;
    static const char *tenants[] = {"", "a", "b"};
    for (int i = 0; i < 600; i++) {
        unsigned len = (unsigned)(rng() % 33);
        /* cluster prefixes in a small region so that they nest and collide */
        uint32_t p = (0x26000000u | (uint32_t)(rng() & 0x0003ffff) << (rng() % 8)) & mask(len);
        uint32_t net = 0x13 + (uint32_t)(rng() % 2);
        const char *ten = tenants[rng() % 3];
        /* reference verdict */
        int ok = 1;
        for (size_t k = 0; k < n && ok; k++) {
            if (refs[k].p == p && refs[k].len == len)
                continue;
            unsigned ml = refs[k].len < len ? refs[k].len : len;
            if (((refs[k].p ^ p) & mask(ml)) != 0)
                continue; /* disjoint */
            int new_inner = len > refs[k].len;
            uint32_t on = new_inner ? refs[k].net : net, in = new_inner ? net : refs[k].net;
            const char *ot = new_inner ? refs[k].tenant : ten, *it = new_inner ? ten : refs[k].tenant;
            if (!(on == in && (ot[0] == 0 || strcmp(ot, it) == 0)))
                ok = 0;
        }
        /* an update of an existing key must also respect nested blocks: covered above */
        rh_diag_t d;
        int rc = fx_block(f, p, len, net, ten, 1, &d);
        if ((rc == RH_OK) != ok)
            fail_msg("block %08X/%u net %06X tenant '%s': store %d reference %d (%s)", p, len,
                     net, ten, rc, ok, d.text);
        if (rc == RH_OK) {
            size_t k = 0;
            while (k < n && !(refs[k].p == p && refs[k].len == len))
                k++;
            if (k == n)
                n++;
            refs[k].p = p;
            refs[k].len = len;
            refs[k].net = net;
            snprintf(refs[k].tenant, sizeof refs[k].tenant, "%s", ten);
        }
    }
    assert_true(n > 20);
    for (int i = 0; i < 5000; i++) {
        uint32_t a;
        if (i % 2 && n) {
            const ref_t *r = &refs[rng() % n];
            a = r->p | ((uint32_t)rng() & ~mask(r->len));
            if (i % 4 == 1)
                a = r->p + (uint32_t)(rng() % 3) - 1; /* edges */
        } else {
            a = 0x26000000u | (uint32_t)(rng() & 0x03ffffff);
        }
        const ref_t *best = NULL;
        for (size_t k = 0; k < n; k++)
            if (((a ^ refs[k].p) & mask(refs[k].len)) == 0 && (!best || refs[k].len > best->len))
                best = &refs[k];
        rp_block_match_t m = fx_lookup(f, a);
        assert_int_equal(m.found, best != NULL);
        if (best) {
            if (m.prefix != best->p || m.length != best->len)
                fail_msg("DevAddr %08X: got %08X/%u want %08X/%u", a, m.prefix, m.length, best->p,
                         best->len);
            assert_int_equal(m.owner.net_id, best->net);
            assert_string_equal(m.owner.tenant_id, best->tenant);
        }
    }
    free(refs);
}

static void test_delete_and_cluster(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    assert_int_equal(fx_block(f, 0x26000000, 7, 0x13, "", 0, &d), RH_OK);
    Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
    b.prefix = 0x26010000;
    b.length = 16;
    b.net_id = 0x13;
    b.tenant_id = "acme";
    b.cluster_id = "eu1.cloud";
    assert_int_equal(rp_put(f->db, "t", RP_KIND_BLOCK, &b.base, RP_PUT_CREATE, &d), RH_OK);
    rp_block_match_t m = fx_lookup(f, 0x2601abcd);
    assert_true(m.found);
    assert_int_equal(m.length, 16);
    assert_string_equal(m.owner.tenant_id, "acme");
    assert_string_equal(m.cluster_id, "eu1.cloud");
    int deleted = 0;
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_BLOCK, &b.base, &deleted, &d), RH_OK);
    assert_int_equal(deleted, 1);
    m = fx_lookup(f, 0x2601abcd);
    assert_true(m.found);
    assert_int_equal(m.length, 7);
    assert_string_equal(m.owner.tenant_id, "");
    assert_string_equal(m.cluster_id, "");
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_BLOCK, &b.base, &deleted, &d), RH_OK);
    assert_int_equal(deleted, 0);
    m = fx_lookup(f, 0x0a000000);
    assert_false(m.found);
    /* lookups need an active reader */
    assert_int_equal(rp_lookup_devaddr(f->r, 1, &m), RH_EINVAL);
}

static void test_netid_index(void **state)
{
    fx_t *f = *state;
    /* Two type-3 NetIDs sharing an 11-bit NwkID, one of them delegated to network 000013. */
    uint32_t deleg = 0x600813;
    assert_int_equal(put_network(f, 0x600013, NULL, 0), RH_OK);
    assert_int_equal(put_network(f, 0x13, &deleg, 1), RH_OK);
    lw_devaddr_prefix_t p;
    assert_int_equal(lw_netid_devaddr_prefix(0x600013, &p, NULL), RH_OK);
    uint32_t ids[4], owners[4];
    size_t n;
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_int_equal(rp_lookup_netids(f->r, p.value | 5, ids, owners, 4, &n), RH_OK);
    rp_reader_end(f->r);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 0x600013);
    assert_int_equal(owners[0], 0x600013);
    assert_int_equal(ids[1], 0x600813);
    assert_int_equal(owners[1], 0x13);
    /* dropping the delegation removes it from the index */
    assert_int_equal(put_network(f, 0x13, NULL, 0), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_int_equal(rp_lookup_netids(f->r, p.value | 5, ids, owners, 4, &n), RH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(rp_lookup_netids(f->r, 0x26000001, ids, owners, 4, &n), RH_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 0x13);
    assert_int_equal(rp_lookup_netids(f->r, 0xFE000000, ids, owners, 4, &n), RH_OK);
    assert_int_equal(n, 0);
    rp_reader_end(f->r);
    Roamhub__V1__Network nw = ROAMHUB__V1__NETWORK__INIT;
    nw.net_id = 0x13;
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_NETWORK, &nw.base, NULL, NULL), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_int_equal(rp_lookup_netids(f->r, 0x26000001, ids, owners, 4, &n), RH_OK);
    rp_reader_end(f->r);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_netid_vectors, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_containment, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_overlap_rules, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_lpm_reference, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_delete_and_cluster, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_netid_index, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
