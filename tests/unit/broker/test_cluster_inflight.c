/* Unit tests for the table of broker/cluster_inflight: other nodes' in-flight async transactions,
 * bounded per holder node (the oldest dropped), ended by their IDs, and handed out as orphans at
 * their deadlines — only to the node whose turn it is, only when the holder is missing or
 * restarted, exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cluster_inflight.h"
#include "rh_err.h"

static cluster_inflight_rec_t rec(unsigned node, uint64_t run, uint32_t hub_txid,
                                  uint32_t sender_txid, int64_t deadline_ms)
{
    cluster_inflight_rec_t r;
    memset(&r, 0, sizeof r);
    r.node = node;
    r.run = run;
    snprintf(r.sender, sizeof r.sender, "member-%u", sender_txid);
    r.i.sender_id.kind = RP_STATS_ID_NETID;
    r.i.sender_id.id = 0x000202;
    r.i.receiver = 0x000505;
    r.i.hub_txid = hub_txid;
    r.i.sender_txid = sender_txid;
    r.i.req_type = BI_MT_PR_START_REQ;
    r.i.ans_type = BI_MT_PR_START_ANS;
    r.i.fail_code = BI_RC_OTHER;
    r.i.deadline_ms = deadline_ms;
    return r;
}

/* node 1 missing, node 2 (this one) answers its orphans */
static cluster_inflight_who_t node1_missing(void)
{
    cluster_inflight_who_t w;
    memset(&w, 0, sizeof w);
    w.missing[1] = true;
    w.mine[1] = true;
    return w;
}

static void test_cap_drops_the_oldest(void **state)
{
    (void)state;
    cluster_inflight_table_t *t = cluster_inflight_table_new(3);
    assert_non_null(t);
    cluster_inflight_table_run(t, 1, 7);
    for (uint32_t k = 1; k <= 3; k++) {
        cluster_inflight_rec_t r = rec(1, 7, 0x01000000u | k, k, 1000);
        assert_int_equal(cluster_inflight_table_put(t, &r), 0);
    }
    cluster_inflight_rec_t r4 = rec(1, 7, 0x01000004u, 4, 1000);
    assert_int_equal(cluster_inflight_table_put(t, &r4), 1); /* the cap: the oldest went */
    assert_int_equal(cluster_inflight_table_count(t, 1), 3);
    /* another holder has a cap of its own */
    cluster_inflight_rec_t o = rec(3, 9, 0x03000001u, 1, 1000);
    assert_int_equal(cluster_inflight_table_put(t, &o), 0);
    assert_int_equal(cluster_inflight_table_count(t, 3), 1);
    assert_int_equal(cluster_inflight_table_count(t, 0), 4);
    assert_false(cluster_inflight_table_end(t, 1, 0x01000001u, 1)); /* dropped: gone */
    cluster_inflight_who_t who = node1_missing();
    cluster_inflight_rec_t out[8];
    size_t n = cluster_inflight_table_due(t, 1000, &who, out, 8, NULL);
    assert_int_equal(n, 3);
    for (size_t k = 0; k < n; k++) { /* in start order, with their strings */
        assert_int_equal(out[k].i.sender_txid, k + 2);
        assert_int_equal(out[k].node, 1);
        char want[32];
        snprintf(want, sizeof want, "member-%zu", k + 2);
        assert_string_equal(out[k].i.sender, want);
        assert_ptr_equal(out[k].i.sender, out[k].sender);
    }
    assert_int_equal(cluster_inflight_table_count(t, 1), 0);
    assert_int_equal(cluster_inflight_table_count(t, 3), 1); /* node 3 is not missing */
    cluster_inflight_table_free(t);
}

static void test_ended_never_due_and_due_only_at_deadline(void **state)
{
    (void)state;
    cluster_inflight_table_t *t = cluster_inflight_table_new(100);
    cluster_inflight_table_run(t, 1, 7);
    cluster_inflight_rec_t a = rec(1, 7, 0x01000001u, 11, 5000);
    cluster_inflight_rec_t b = rec(1, 7, 0x01000002u, 12, 6000);
    cluster_inflight_rec_t c = rec(1, 7, 0x01000003u, 13, 6000);
    assert_int_equal(cluster_inflight_table_put(t, &a), 0);
    assert_int_equal(cluster_inflight_table_put(t, &b), 0);
    assert_int_equal(cluster_inflight_table_put(t, &c), 0);
    /* the end names both IDs: another sender TransactionID does not end it */
    assert_false(cluster_inflight_table_end(t, 1, 0x01000002u, 99));
    assert_false(cluster_inflight_table_end(t, 2, 0x01000002u, 12));
    assert_true(cluster_inflight_table_end(t, 1, 0x01000002u, 12));
    assert_false(cluster_inflight_table_end(t, 1, 0x01000002u, 12));
    cluster_inflight_who_t who = node1_missing();
    cluster_inflight_rec_t out[8];
    assert_int_equal(cluster_inflight_table_due(t, 4999, &who, out, 8, NULL), 0); /* not yet */
    assert_int_equal(cluster_inflight_table_due(t, 5000, &who, out, 8, NULL), 1);
    assert_int_equal(out[0].i.sender_txid, 11);
    assert_int_equal(cluster_inflight_table_due(t, 5500, &who, out, 8, NULL), 0); /* once */
    assert_int_equal(cluster_inflight_table_due(t, 6000, &who, out, 8, NULL), 1);
    assert_int_equal(out[0].i.sender_txid, 13); /* the ended one never */
    assert_int_equal(cluster_inflight_table_count(t, 0), 0);
    cluster_inflight_table_free(t);
}

static void test_live_holder_or_not_mine_keeps_them_then_forgets(void **state)
{
    (void)state;
    cluster_inflight_table_t *t = cluster_inflight_table_new(100);
    cluster_inflight_table_run(t, 1, 7);
    cluster_inflight_rec_t a = rec(1, 7, 0x01000001u, 11, 5000);
    assert_int_equal(cluster_inflight_table_put(t, &a), 0);
    cluster_inflight_who_t alive;
    memset(&alive, 0, sizeof alive);
    alive.mine[1] = true; /* this node's turn, but the holder is alive: it answers itself */
    cluster_inflight_rec_t out[8];
    uint64_t forgotten = 0;
    assert_int_equal(cluster_inflight_table_due(t, 9000, &alive, out, 8, &forgotten), 0);
    assert_int_equal(cluster_inflight_table_count(t, 1), 1);
    cluster_inflight_who_t other = node1_missing();
    other.mine[1] = false; /* missing, but another node's turn */
    assert_int_equal(cluster_inflight_table_due(t, 9000, &other, out, 8, &forgotten), 0);
    assert_int_equal(cluster_inflight_table_count(t, 1), 1);
    /* its end never came: forgotten after the grace */
    assert_int_equal(cluster_inflight_table_due(t, 5000 + CLUSTER_INFLIGHT_GRACE_MS + 1, &alive,
                                                out, 8, &forgotten), 0);
    assert_int_equal(forgotten, 1);
    assert_int_equal(cluster_inflight_table_count(t, 1), 0);
    cluster_inflight_table_free(t);
}

static void test_restarted_holder_orphans_its_earlier_run(void **state)
{
    (void)state;
    cluster_inflight_table_t *t = cluster_inflight_table_new(100);
    assert_false(cluster_inflight_table_run(t, 1, 7)); /* first heard: no restart */
    cluster_inflight_rec_t a = rec(1, 7, 0x01000001u, 11, 5000);
    assert_int_equal(cluster_inflight_table_put(t, &a), 0);
    assert_false(cluster_inflight_table_run(t, 1, 7));
    assert_true(cluster_inflight_table_run(t, 1, 8)); /* back within the presence timeout */
    cluster_inflight_rec_t b = rec(1, 8, 0x01000001u, 21, 5000); /* the new run's own */
    assert_int_equal(cluster_inflight_table_put(t, &b), 0);
    cluster_inflight_who_t who;
    memset(&who, 0, sizeof who); /* node 1 reporting again */
    who.mine[1] = true;
    cluster_inflight_rec_t out[8];
    assert_int_equal(cluster_inflight_table_due(t, 5000, &who, out, 8, NULL), 1);
    assert_int_equal(out[0].i.sender_txid, 11); /* only the earlier run's */
    assert_int_equal(out[0].run, 7);
    assert_int_equal(cluster_inflight_table_count(t, 1), 1);
    cluster_inflight_table_free(t);
}

static void test_due_respects_max(void **state)
{
    (void)state;
    cluster_inflight_table_t *t = cluster_inflight_table_new(100);
    cluster_inflight_table_run(t, 1, 7);
    for (uint32_t k = 1; k <= 5; k++) {
        cluster_inflight_rec_t r = rec(1, 7, 0x01000000u | k, k, 1000);
        assert_int_equal(cluster_inflight_table_put(t, &r), 0);
    }
    cluster_inflight_who_t who = node1_missing();
    cluster_inflight_rec_t out[2];
    assert_int_equal(cluster_inflight_table_due(t, 1000, &who, out, 2, NULL), 2);
    assert_int_equal(cluster_inflight_table_due(t, 1000, &who, out, 2, NULL), 2);
    assert_int_equal(cluster_inflight_table_due(t, 1000, &who, out, 2, NULL), 1);
    assert_int_equal(out[0].i.sender_txid, 5);
    assert_int_equal(cluster_inflight_table_due(t, 1000, &who, out, 2, NULL), 0);
    cluster_inflight_rec_t bad = rec(0, 7, 1, 1, 1000); /* node 0: a single node, none */
    assert_int_equal(cluster_inflight_table_put(t, &bad), RH_EINVAL);
    cluster_inflight_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_drops_the_oldest),
        cmocka_unit_test(test_ended_never_due_and_due_only_at_deadline),
        cmocka_unit_test(test_live_holder_or_not_mine_keeps_them_then_forgets),
        cmocka_unit_test(test_restarted_holder_orphans_its_earlier_run),
        cmocka_unit_test(test_due_respects_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
