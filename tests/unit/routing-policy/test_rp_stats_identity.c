/*
 * test_rp_stats_identity.c — statistics rows keep the forwarder's identity kind (NetID or
 * JoinEUI, never an EUI cut to 32 bits), and one invalid row never blocks a batch (issue #16
 * item 2: a batch refused as a whole was re-queued and refused again at every flush).
 */
#include "rp_fixture.h"

#define EUI 0x70b3d57ed000aaaaull

static int collect(void *ud, const rp_stats_item_t *it)
{
    rp_stats_item_t *out = ud;
    int i = 0;
    while (out[i].count)
        i++;
    if (i >= 7)
        return 1;
    out[i] = *it;
    out[i].result_code = NULL;
    return 0;
}

static rp_stats_item_t row(int64_t minute, uint32_t fwd, uint64_t n)
{
    rp_stats_item_t it;
    memset(&it, 0, sizeof it);
    it.minute = minute;
    it.forwarder_net_id = fwd;
    it.home_net_id = 0x505;
    it.cls = RP_CLASS_OTHER;
    it.outcome = RP_OUT_UNAUTHORIZED;
    it.count = n;
    it.latency_us_sum = 10 * n;
    return it;
}

/* A batch with one bad row: the others are written, the bad one is skipped and named. */
static void test_bad_row_skipped_rest_written(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    rp_stats_item_t b[3] = {row(100, 0x13, 2), row(100, 0xd000aaaa, 5), row(101, 0x13, 3)};
    assert_int_equal(rp_stats_add(f->db, b, 3, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "1 of 3"));
    assert_non_null(strstr(d.text, "stats[1]"));
    assert_non_null(strstr(d.text, "NetID wider than 24 bits"));
    rp_stats_item_t out[8];
    memset(out, 0, sizeof out);
    assert_int_equal(rp_stats_query(f->db, 0, 1000, NULL, RP_AGG_MINUTE, collect, out, &d), RH_OK);
    assert_int_equal(out[0].minute, 100);
    assert_int_equal(out[0].forwarder_net_id, 0x13);
    assert_int_equal(out[0].count, 2);
    assert_int_equal(out[1].minute, 101);
    assert_int_equal(out[1].count, 3);
    assert_int_equal(out[2].count, 0); /* the bad row is not there under any identity */
    /* a batch of only bad rows writes nothing and says so */
    b[0].cls = RP_CLASS_COUNT;
    assert_int_equal(rp_stats_add(f->db, b, 2, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "2 of 2"));
    assert_non_null(strstr(d.text, "stats[0].class"));
}

/* A forwarder named by its JoinEUI is stored and read back as a JoinEUI, whole; it is neither
 * merged with NetID rows nor matched by a NetID filter. */
static void test_join_eui_forwarder_round_trip(void **state)
{
    fx_t *f = *state;
    rh_diag_t d;
    rp_stats_item_t b[4] = {row(200, 0, 1), row(200, 0, 1), row(200, 0xaaaa, 4), row(200, 0, 7)};
    b[0].forwarder_kind = b[1].forwarder_kind = RP_STATS_ID_JOIN_EUI;
    b[0].forwarder_join_eui = b[1].forwarder_join_eui = EUI;
    b[0].forwarder_net_id = 0x123456; /* ignored for a JoinEUI row */
    b[3].forwarder_kind = RP_STATS_ID_JOIN_EUI;
    b[3].forwarder_join_eui = EUI + 1;
    assert_int_equal(rp_stats_add(f->db, b, 4, &d), RH_OK);
    rp_stats_item_t out[8];
    memset(out, 0, sizeof out);
    assert_int_equal(rp_stats_query(f->db, 0, 1000, NULL, RP_AGG_MINUTE, collect, out, &d), RH_OK);
    /* NetID rows first, then JoinEUI rows in EUI order */
    assert_int_equal(out[0].forwarder_kind, RP_STATS_ID_NETID);
    assert_int_equal(out[0].forwarder_net_id, 0xaaaa);
    assert_int_equal(out[0].count, 4);
    assert_int_equal(out[1].forwarder_kind, RP_STATS_ID_JOIN_EUI);
    assert_true(out[1].forwarder_join_eui == EUI);
    assert_int_equal(out[1].count, 2);
    assert_int_equal(out[2].forwarder_kind, RP_STATS_ID_JOIN_EUI);
    assert_true(out[2].forwarder_join_eui == EUI + 1);
    assert_int_equal(out[2].count, 7);
    assert_int_equal(out[3].count, 0);
    /* a NetID filter for the EUI's low 24 bits (or anything else) does not match EUI rows */
    memset(out, 0, sizeof out);
    rp_stats_filter_t flt = {0xaaaa, RP_ANY, RP_ANY, RP_ANY, false, 0, 0, 0, 0};
    assert_int_equal(rp_stats_query(f->db, 0, 1000, &flt, RP_AGG_HOUR, collect, out, &d), RH_OK);
    assert_int_equal(out[0].count, 4);
    assert_int_equal(out[0].forwarder_kind, RP_STATS_ID_NETID);
    assert_int_equal(out[1].count, 0);
    /* pruning removes JoinEUI rows like the others */
    size_t removed = 0;
    assert_int_equal(rp_stats_prune_res(f->db, RP_AGG_MINUTE, 201, 0, &removed, &d), RH_OK);
    assert_int_equal(removed, 3);
    assert_int_equal(rp_stats_prune(f->db, 100000, &removed, &d), RH_OK);
    assert_int_equal(removed, 3 + 3); /* their hour and day roll-ups */
    /* an identity kind out of range is a bad row */
    b[0].forwarder_kind = (rp_stats_id_kind_t)7;
    assert_int_equal(rp_stats_add(f->db, b, 1, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "forwarder_kind"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_row_skipped_rest_written, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_join_eui_forwarder_round_trip, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
