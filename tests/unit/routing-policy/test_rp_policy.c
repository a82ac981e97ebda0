/* Unit tests for routing policies: the inheritance order exhaustively (every subset of the six
 * candidate records x every query shape), explicit all-off vs no policy, every message class,
 * stripping, downlink direction, snapshot consistency and write-to-visible. */
#include "rp_fixture.h"

#define FN 0x000013u
#define HN 0x000505u

/* The six candidate records of rp_policy_effective, in lookup order. */
static const struct cand {
    const char *ften;
    int has_home;
    const char *hten;
    rp_policy_source_t src;
} cands[6] = {
    {"t", 1, "h", RP_SRC_TENANT_HOME_TENANT}, {"t", 1, "", RP_SRC_TENANT_HOME_NETID},
    {"t", 0, "", RP_SRC_TENANT_DEFAULT},      {"", 1, "h", RP_SRC_NETID_HOME_TENANT},
    {"", 1, "", RP_SRC_NETID_HOME_NETID},     {"", 0, "", RP_SRC_NETID_DEFAULT},
};

static void clear_policies(fx_t *f)
{
    rp_txn_t *t;
    assert_int_equal(rp_txn_begin(f->db, "test", 0, &t, NULL), RH_OK);
    assert_int_equal(rp_txn_clear(t, RP_KIND_POLICY, NULL), RH_OK);
    assert_int_equal(rp_txn_commit(t, NULL), RH_OK);
}

static void test_inheritance_exhaustive(void **state)
{
    fx_t *f = *state;
    /* queries: forwarder tenant x home tenant (the "x" tenants have no records of their own) */
    static const struct {
        const char *ften, *hten;
    } queries[] = {{"t", "h"}, {"t", ""}, {"", "h"}, {"", ""}, {"x", "h"}, {"t", "x"}, {"x", "x"}};
    for (unsigned set = 0; set < 64; set++) {
        clear_policies(f);
        for (int i = 0; i < 6; i++)
            if (set & (1u << i)) /* record i carries a flag pattern that identifies it */
                assert_int_equal(fx_policy(f, FN, cands[i].ften, cands[i].has_home,
                                           cands[i].has_home ? HN : 0, cands[i].hten,
                                           (1u << (i + 1)) | 1u),
                                 RH_OK);
        /* a record of another forwarder/home must never be picked */
        assert_int_equal(fx_policy(f, FN + 1, "", 0, 0, "", 0xff), RH_OK);
        assert_int_equal(fx_policy(f, FN, "", 1, HN + 1, "", 0xff), RH_OK);
        for (size_t q = 0; q < sizeof queries / sizeof queries[0]; q++) {
            rp_party_t fw, hm;
            assert_int_equal(rp_party_set(&fw, FN, queries[q].ften, NULL), RH_OK);
            assert_int_equal(rp_party_set(&hm, HN, queries[q].hten, NULL), RH_OK);
            /* reference: first candidate in order whose key equals the query's step key */
            int want = -1;
            for (int i = 0; i < 6 && want < 0; i++) {
                if (!(set & (1u << i)))
                    continue;
                const char *ft = cands[i].ften, *ht = cands[i].hten;
                int fwd_ok = ft[0] == 0 || strcmp(ft, queries[q].ften) == 0;
                int home_ok = !cands[i].has_home || ht[0] == 0 || strcmp(ht, queries[q].hten) == 0;
                if (fwd_ok && home_ok)
                    want = i;
            }
            rp_policy_eff_t eff = fx_effective(f, &fw, &hm);
            if (want < 0) {
                if (eff.source != RP_SRC_NONE)
                    fail_msg("set %02x query %zu: got %s want none", set, q,
                             rp_source_name(eff.source));
                continue;
            }
            /* the source reports the step kind; t/h steps only apply to matching tenants */
            rp_policy_source_t ws = cands[want].src;
            if (eff.source != ws)
                fail_msg("set %02x query %zu (%s->%s): got %s want %s", set, q, queries[q].ften,
                         queries[q].hten, rp_source_name(eff.source), rp_source_name(ws));
            /* flags identify the record: bit (want+1) of the pattern is mac_data..dl flags */
            unsigned pat = (1u << (want + 1)) | 1u;
            assert_int_equal(eff.flags.up_join_request, 1);
            assert_int_equal(eff.flags.up_mac_data, (pat >> 1) & 1);
            assert_int_equal(eff.flags.up_application_data, (pat >> 2) & 1);
            assert_int_equal(eff.flags.up_signal_quality, (pat >> 3) & 1);
            assert_int_equal(eff.flags.up_localization, (pat >> 4) & 1);
            assert_int_equal(eff.flags.down_join_accept, (pat >> 5) & 1);
            assert_int_equal(eff.flags.down_mac_data, (pat >> 6) & 1);
        }
    }
}

static rp_verdict_t check(fx_t *f, rp_class_t cls, uint32_t fn, const char *ft, uint32_t hn,
                          const char *ht)
{
    rp_party_t fw, hm;
    assert_int_equal(rp_party_set(&fw, fn, ft, NULL), RH_OK);
    assert_int_equal(rp_party_set(&hm, hn, ht, NULL), RH_OK);
    rp_verdict_t v, v2;
    rp_policy_eff_t e = fx_effective(f, &fw, &hm); /* both paths agree */
    rp_policy_eval(cls, &e, &v2);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_int_equal(rp_policy_check(f->r, cls, &fw, &hm, &v), RH_OK);
    rp_reader_end(f->r);
    assert_memory_equal(&v, &v2, sizeof v);
    return v;
}

static void test_explicit_all_off(void **state)
{
    fx_t *f = *state;
    /* NetID-level default allows everything; tenant t sets an explicit all-off default. */
    assert_int_equal(fx_policy(f, FN, "", 0, 0, "", 0xff), RH_OK);
    rp_verdict_t v = check(f, RP_CLASS_UPLINK_APP, FN, "t", HN, "");
    assert_true(v.allow);
    assert_int_equal(v.source, RP_SRC_NETID_DEFAULT);
    assert_int_equal(fx_policy(f, FN, "t", 0, 0, "", 0), RH_OK);
    v = check(f, RP_CLASS_UPLINK_APP, FN, "t", HN, "");
    assert_false(v.allow);
    assert_int_equal(v.reason, RP_DENY_CLASS);
    assert_int_equal(v.source, RP_SRC_TENANT_DEFAULT);
    /* other tenants still inherit */
    v = check(f, RP_CLASS_UPLINK_APP, FN, "u", HN, "");
    assert_true(v.allow);
    /* a stored policy with no uplink/downlink sub-messages at all is also all-off */
    Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
    p.forwarder_net_id = FN;
    p.forwarder_tenant_id = "u";
    assert_int_equal(rp_put(f->db, "t", RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, NULL), RH_OK);
    v = check(f, RP_CLASS_JOIN_REQUEST, FN, "u", HN, "");
    assert_false(v.allow);
    assert_int_equal(v.reason, RP_DENY_CLASS);
    /* no policy at all */
    v = check(f, RP_CLASS_JOIN_REQUEST, FN + 7, "", HN, "");
    assert_false(v.allow);
    assert_int_equal(v.reason, RP_DENY_NO_POLICY);
    assert_int_equal(v.source, RP_SRC_NONE);
    /* deleting the all-off record restores inheritance */
    p.forwarder_tenant_id = "t";
    int del = 0;
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_POLICY, &p.base, &del, NULL), RH_OK);
    assert_int_equal(del, 1);
    v = check(f, RP_CLASS_UPLINK_APP, FN, "t", HN, "");
    assert_true(v.allow);
}

static void test_classes(void **state)
{
    (void)state;
    /* Each flag alone: exactly its class is allowed. */
    static const struct {
        unsigned flag;
        rp_class_t cls;
    } map[] = {{1, RP_CLASS_JOIN_REQUEST},  {2, RP_CLASS_UPLINK_MAC},    {4, RP_CLASS_UPLINK_APP},
               {32, RP_CLASS_JOIN_ACCEPT},  {64, RP_CLASS_DOWNLINK_MAC}, {128, RP_CLASS_DOWNLINK_APP}};
    for (size_t i = 0; i < 6; i++) {
        rp_policy_eff_t eff = {RP_SRC_NETID_DEFAULT, {0}};
        unsigned fl = map[i].flag;
        eff.flags.up_join_request = fl & 1;
        eff.flags.up_mac_data = (fl >> 1) & 1;
        eff.flags.up_application_data = (fl >> 2) & 1;
        eff.flags.down_join_accept = (fl >> 5) & 1;
        eff.flags.down_mac_data = (fl >> 6) & 1;
        eff.flags.down_application_data = (fl >> 7) & 1;
        for (int c = 0; c < RP_CLASS_COUNT; c++) {
            rp_verdict_t v;
            rp_policy_eval((rp_class_t)c, &eff, &v);
            int want = c == (int)map[i].cls || c == RP_CLASS_OTHER;
            if (v.allow != want)
                fail_msg("flag %u class %s: allow %d want %d", fl, rp_class_name((rp_class_t)c),
                         v.allow, want);
            assert_int_equal(v.reason, want ? RP_DENY_NONE : RP_DENY_CLASS);
            /* nothing allows sq/loc here: allowed uplinks are stripped, downlinks never */
            int up = c <= RP_CLASS_UPLINK_APP;
            assert_int_equal(v.strip_signal_quality, want && up);
            assert_int_equal(v.strip_localization, want && up);
        }
    }
    /* signal quality and localization independently */
    for (unsigned sq = 0; sq < 2; sq++)
        for (unsigned loc = 0; loc < 2; loc++) {
            rp_policy_eff_t eff = {RP_SRC_TENANT_DEFAULT, {0}};
            eff.flags.up_application_data = 1;
            eff.flags.up_signal_quality = (uint8_t)sq;
            eff.flags.up_localization = (uint8_t)loc;
            rp_verdict_t v;
            rp_policy_eval(RP_CLASS_UPLINK_APP, &eff, &v);
            assert_true(v.allow);
            assert_int_equal(v.strip_signal_quality, !sq);
            assert_int_equal(v.strip_localization, !loc);
        }
    /* all-off: OTHER denied too; no policy: no_policy */
    rp_policy_eff_t off = {RP_SRC_NETID_HOME_NETID, {0}}, none = {RP_SRC_NONE, {0}};
    rp_verdict_t v;
    rp_policy_eval(RP_CLASS_OTHER, &off, &v);
    assert_false(v.allow);
    rp_policy_eval(RP_CLASS_UPLINK_MAC, &none, &v);
    assert_int_equal(v.reason, RP_DENY_NO_POLICY);
    /* names */
    rp_class_t c;
    assert_int_equal(rp_class_parse("downlink_app", &c), RH_OK);
    assert_int_equal(c, RP_CLASS_DOWNLINK_APP);
    assert_int_equal(rp_class_parse("bogus", &c), RH_EINVAL);
    assert_string_equal(rp_outcome_name(RP_OUT_RECEIVER_ERROR), "receiver_error");
}

static void test_downlink_direction(void **state)
{
    fx_t *f = *state;
    /* F=000013 lets uplinks flow to H=000505 but no downlinks; H->F has everything. */
    assert_int_equal(fx_policy(f, FN, "", 1, HN, "", 0x07), RH_OK);
    assert_int_equal(fx_policy(f, HN, "", 1, FN, "", 0xff), RH_OK);
    /* a downlink from H to F is checked against policy(F->H).downlink */
    rp_verdict_t v = check(f, RP_CLASS_DOWNLINK_APP, FN, "", HN, "");
    assert_false(v.allow);
    v = check(f, RP_CLASS_UPLINK_APP, FN, "", HN, "");
    assert_true(v.allow);
    v = check(f, RP_CLASS_JOIN_ACCEPT, HN, "", FN, "");
    assert_true(v.allow);
    /* bad class */
    rp_party_t a, b;
    rp_party_set(&a, FN, NULL, NULL);
    rp_party_set(&b, HN, NULL, NULL);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_int_equal(rp_policy_check(f->r, RP_CLASS_COUNT, &a, &b, &v), RH_EINVAL);
    rp_reader_end(f->r);
    assert_int_equal(rp_party_set(&a, 0x1000000, NULL, NULL), RH_EINVAL);
    assert_int_equal(rp_party_set(&a, 1, "bad tenant", NULL), RH_EINVAL);
}

static void test_snapshot_and_visibility(void **state)
{
    fx_t *f = *state;
    rp_party_t fw, hm;
    rp_party_set(&fw, FN, NULL, NULL);
    rp_party_set(&hm, HN, NULL, NULL);
    rp_reader_t *r2;
    assert_int_equal(rp_reader_new(f->db, &r2, NULL), RH_OK);
    /* r2 holds a snapshot from before the write (another "thread" mid-message) */
    assert_int_equal(rp_reader_begin(r2), RH_OK);
    assert_int_equal(fx_policy(f, FN, "", 0, 0, "", 0x02), RH_OK);
    rp_verdict_t v;
    assert_int_equal(rp_policy_check(r2, RP_CLASS_UPLINK_MAC, &fw, &hm, &v), RH_OK);
    assert_false(v.allow); /* still the old snapshot */
    rp_reader_end(r2);
    /* the next message sees the committed write */
    assert_int_equal(rp_reader_begin(r2), RH_OK);
    assert_int_equal(rp_policy_check(r2, RP_CLASS_UPLINK_MAC, &fw, &hm, &v), RH_OK);
    assert_true(v.allow);
    assert_int_equal(rp_reader_begin(r2), RH_EINVAL); /* already active */
    rp_reader_end(r2);
    rp_reader_end(r2); /* idempotent */
    rp_reader_free(r2);
    rp_reader_free(NULL);
}

static void test_index_staleness(void **state)
{
    fx_t *f = *state;
    rp_party_t fw, hm;
    rp_party_set(&fw, FN, NULL, NULL);
    rp_party_set(&hm, HN, NULL, NULL);
    rp_verdict_t v;
    assert_int_equal(fx_policy(f, FN, "", 0, 0, "", 0x00), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    /* a routing write makes the index stale: the next message reads LMDB and sees the write */
    assert_int_equal(fx_policy(f, FN, "", 0, 0, "", 0x04), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_false(rp_reader_uses_index(f->r));
    assert_int_equal(rp_policy_check(f->r, RP_CLASS_UPLINK_APP, &fw, &hm, &v), RH_OK);
    assert_true(v.allow);
    rp_reader_end(f->r);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r));
    assert_int_equal(rp_policy_check(f->r, RP_CLASS_UPLINK_APP, &fw, &hm, &v), RH_OK);
    assert_true(v.allow);
    rp_reader_end(f->r);
    /* a statistics write is a new LMDB transaction but no routing change: revalidated */
    rp_stats_item_t it;
    memset(&it, 0, sizeof it);
    it.minute = 5;
    it.count = 1;
    assert_int_equal(rp_stats_add(f->db, &it, 1, NULL), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_false(rp_reader_uses_index(f->r));
    rp_reader_end(f->r);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r));
    rp_reader_end(f->r);
    /* a reader that began before a rebuild keeps its own snapshot's answers */
    assert_int_equal(rp_reader_begin(f->r2), RH_OK);
    assert_int_equal(fx_policy(f, FN, "", 0, 0, "", 0x00), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    assert_int_equal(rp_policy_check(f->r2, RP_CLASS_UPLINK_APP, &fw, &hm, &v), RH_OK);
    assert_true(v.allow);
    rp_reader_end(f->r2);
    v = check(f, RP_CLASS_UPLINK_APP, FN, "", HN, "");
    assert_false(v.allow);
}

static void test_policy_validation(void **state)
{
    fx_t *f = *state;
    Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
    rh_diag_t d;
    p.forwarder_net_id = FN;
    p.home_net_id = HN; /* has_home false with a home */
    assert_int_equal(rp_put(f->db, "t", RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "policy.home_net_id"));
    p.home_net_id = 0;
    p.forwarder_tenant_id = "way-too-long-tenant-identifier-0123456789";
    assert_int_equal(rp_put(f->db, "t", RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "policy.forwarder_tenant_id"));
    p.forwarder_tenant_id = "";
    p.forwarder_net_id = 0x1000000;
    assert_int_equal(rp_put(f->db, "t", RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    /* wrong message type for the kind */
    Roamhub__V1__Network n = ROAMHUB__V1__NETWORK__INIT;
    assert_int_equal(rp_put(f->db, "t", RP_KIND_POLICY, &n.base, RP_PUT_UPSERT, &d), RH_EINVAL);
    /* updated_at is filled in */
    p.forwarder_net_id = FN;
    assert_int_equal(rp_put(f->db, "t", RP_KIND_POLICY, &p.base, RP_PUT_CREATE, &d), RH_OK);
    ProtobufCMessage *got;
    assert_int_equal(rp_get(f->db, RP_KIND_POLICY, &p.base, &got, &d), RH_OK);
    assert_non_null(got);
    assert_true(((Roamhub__V1__RoutingPolicy *)(void *)got)->updated_at > 0);
    protobuf_c_message_free_unpacked(got, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_inheritance_exhaustive, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_explicit_all_off, fx_setup, fx_teardown),
        cmocka_unit_test(test_classes),
        cmocka_unit_test_setup_teardown(test_downlink_direction, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_visibility, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_index_staleness, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_policy_validation, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
