/* Unit tests for broker/pending: keyed by (peer, TransactionID, answer type), bounded per lane,
 * fresh IDs naming their lane, and safe when several threads put and take concurrently (also
 * across lanes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>

#include "hub_txid.h"
#include "pending.h"
#include "rh_err.h"

static void test_key_parts_all_matter(void **state)
{
    (void)state;
    pending_table_t *t = pending_new(100, 1);
    int v = 1;
    pending_key_t k = {.peer = 0x000505, .txid = 7, .ans_type = 3};
    assert_int_equal(pending_put(t, &k, &v), RH_OK);
    assert_int_equal(pending_put(t, &k, &v), RH_EEXIST);
    pending_key_t other_peer = k, other_tx = k, other_type = k;
    other_peer.peer = 0x000202;
    other_tx.txid = 8;
    other_type.ans_type = 4;
    assert_null(pending_take(t, &other_peer));
    assert_null(pending_take(t, &other_tx));
    assert_null(pending_take(t, &other_type));
    assert_int_equal(pending_count(t), 1);
    assert_ptr_equal(pending_take(t, &k), &v);
    assert_null(pending_take(t, &k));
    assert_int_equal(pending_count(t), 0);
    pending_free(t);
}

/* Hub-owned TransactionIDs (hub_txid.h): node bits on top, distinct while pending, and a value
 * still pending for the receiver is skipped. */
static void test_fresh_ids(void **state)
{
    (void)state;
    pending_table_t *t = pending_new(100, 1);
    pending_set_node(t, 5);
    int v = 1;
    /* a value the next fresh ID would take is already pending for this receiver */
    pending_key_t taken = {.peer = 9, .txid = hub_txid_make(5, 0), .ans_type = 3};
    assert_int_equal(pending_put(t, &taken, &v), RH_OK);
    pending_key_t a = {.peer = 9, .txid = 0, .ans_type = 3}, b = a;
    assert_int_equal(pending_put_fresh(t, 0, &a, &v), RH_OK);
    assert_int_equal(pending_put_fresh(t, 0, &b, &v), RH_OK);
    assert_int_equal(hub_txid_node(a.txid), 5);
    assert_int_equal(hub_txid_node(b.txid), 5);
    assert_int_not_equal(a.txid, taken.txid);
    assert_int_not_equal(a.txid, b.txid);
    assert_ptr_equal(pending_take(t, &a), &v);
    assert_ptr_equal(pending_take(t, &b), &v);
    assert_int_equal(hub_txid_seq(hub_txid_make(1, 0x1234567)), 0x234567);
    pending_free(t);
    /* node 0, lane 0: TransactionID 0 (the fronts' "none") is never issued, neither first nor
     * when the lane's range (2^16 IDs with 256 lanes) wraps */
    t = pending_new(4, PENDING_MAX_LANES);
    assert_non_null(t);
    uint32_t lowest = UINT32_MAX;
    for (uint32_t i = 0; i < (1u << 16) + 2; i++) {
        pending_key_t k = {.peer = 9, .txid = 0, .ans_type = 3};
        assert_int_equal(pending_put_fresh(t, 0, &k, &v), RH_OK);
        lowest = k.txid < lowest ? k.txid : lowest;
        assert_ptr_equal(pending_take(t, &k), &v);
    }
    assert_int_equal(lowest, 1);
    pending_free(t);
}

static void test_bounded(void **state)
{
    (void)state;
    pending_table_t *t = pending_new(10, 1);
    int v;
    for (uint32_t i = 0; i < 10; i++) {
        pending_key_t k = {.peer = 1, .txid = i, .ans_type = 1};
        assert_int_equal(pending_put(t, &k, &v), RH_OK);
    }
    pending_key_t k = {.peer = 1, .txid = 99, .ans_type = 1};
    assert_int_equal(pending_put(t, &k, &v), RH_EAGAIN);
    pending_key_t k0 = {.peer = 1, .txid = 0, .ans_type = 1};
    assert_non_null(pending_take(t, &k0));
    assert_int_equal(pending_put(t, &k, &v), RH_OK);
    pending_free(t);
}

/* A lane per worker: fresh IDs carry their lane in the top bits of the sequence, any holder of the
 * key finds the entry, and each lane has its own bound. */
static void test_lanes(void **state)
{
    (void)state;
    assert_null(pending_new(10, 0));
    assert_null(pending_new(10, PENDING_MAX_LANES + 1));
    pending_table_t *t = pending_new(3, 4);
    assert_non_null(t);
    pending_set_node(t, 7);
    int v[4][3];
    pending_key_t k[4][3];
    for (unsigned lane = 0; lane < 4; lane++) {
        for (int i = 0; i < 3; i++) {
            k[lane][i] = (pending_key_t){.peer = 0x000505, .txid = 0, .ans_type = 3};
            assert_int_equal(pending_put_fresh(t, lane, &k[lane][i], &v[lane][i]), RH_OK);
            assert_int_equal(hub_txid_node(k[lane][i].txid), 7);
            /* 4 lanes: the top 2 bits of the 24-bit sequence name the lane */
            assert_int_equal(hub_txid_seq(k[lane][i].txid) >> 22, lane);
        }
        /* this lane is full; the others are not affected */
        pending_key_t more = {.peer = 0x000505, .txid = 0, .ans_type = 3};
        assert_int_equal(pending_put_fresh(t, lane, &more, &v[0][0]), RH_EAGAIN);
    }
    assert_int_equal(pending_count(t), 12);
    /* a plain put lands in the lane its TransactionID names (lane 1, full until one is taken) */
    pending_key_t named = {.peer = 1, .txid = hub_txid_make(7, 1u << 22), .ans_type = 3};
    assert_int_equal(pending_put(t, &named, &v[0][0]), RH_EAGAIN);
    assert_ptr_equal(pending_take(t, &k[1][2]), &v[1][2]);
    assert_int_equal(pending_put(t, &named, &v[0][0]), RH_OK);
    assert_ptr_equal(pending_take(t, &named), &v[0][0]);
    /* the same key taken twice, or with another peer: nothing */
    assert_null(pending_take(t, &k[1][2]));
    pending_key_t wrong = k[3][0];
    wrong.peer = 0x000202;
    assert_null(pending_take(t, &wrong));
    for (unsigned lane = 0; lane < 4; lane++)
        for (int i = 0; i < 3; i++)
            if (lane != 1 || i != 2)
                assert_ptr_equal(pending_take(t, &k[lane][i]), &v[lane][i]);
    assert_int_equal(pending_count(t), 0);
    /* a lane count that is not a power of two still maps every ID to a lane */
    pending_table_t *t3 = pending_new(4, 3);
    pending_key_t odd = {.peer = 2, .txid = hub_txid_make(0, 3u << 22), .ans_type = 1};
    assert_int_equal(pending_put(t3, &odd, &v[0][0]), RH_OK);
    assert_ptr_equal(pending_take(t3, &odd), &v[0][0]);
    pending_free(t3);
    pending_free(t);
}

static pending_table_t *shared;
static pending_key_t handed[4][64]; /* keys each thread leaves for the next one to take */

static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (uint32_t i = 0; i < 20000; i++) {
        pending_key_t k = {.peer = id, .txid = i, .ans_type = 2};
        if (pending_put(shared, &k, (void *)(uintptr_t)(i + 1)) != RH_OK)
            return (void *)1;
        if (pending_take(shared, &k) != (void *)(uintptr_t)(i + 1))
            return (void *)1;
        pending_key_t f = {.peer = id, .txid = 0, .ans_type = 5};
        if (pending_put_fresh(shared, (unsigned)id, &f, (void *)(uintptr_t)(i + 1)) != RH_OK ||
            pending_take(shared, &f) != (void *)(uintptr_t)(i + 1))
            return (void *)1;
    }
    for (int i = 0; i < 64; i++) {
        handed[id][i] = (pending_key_t){.peer = 100 + id, .txid = 0, .ans_type = 4};
        if (pending_put_fresh(shared, (unsigned)id, &handed[id][i], &handed[id][i]) != RH_OK)
            return (void *)1;
    }
    return NULL;
}

static void *taker(void *arg)
{
    uintptr_t id = (uintptr_t)arg, from = (id + 1) % 4; /* another lane's entries */
    for (int i = 0; i < 64; i++)
        if (pending_take(shared, &handed[from][i]) != &handed[from][i])
            return (void *)1;
    return NULL;
}

/* Runs fn on four threads (argument 0..3) and checks each returned NULL. */
static void run4(void *(*fn)(void *))
{
    pthread_t th[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, fn, (void *)i), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
}

static void test_concurrent(void **state)
{
    (void)state;
    shared = pending_new(1000, 4);
    run4(worker);
    assert_int_equal(pending_count(shared), 4 * 64);
    run4(taker);
    assert_int_equal(pending_count(shared), 0);
    pending_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_parts_all_matter),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_fresh_ids),
        cmocka_unit_test(test_lanes),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
