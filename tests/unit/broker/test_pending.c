/* Unit tests for broker/pending: keyed by (peer, TransactionID, answer type), bounded, and
 * safe when several threads put and take concurrently. */
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
    pending_table_t *t = pending_new(100);
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
    pending_table_t *t = pending_new(100);
    pending_set_node(t, 5);
    int v = 1;
    /* a value the next fresh ID would take is already pending for this receiver */
    pending_key_t taken = {.peer = 9, .txid = hub_txid_make(5, 0), .ans_type = 3};
    assert_int_equal(pending_put(t, &taken, &v), RH_OK);
    pending_key_t a = {.peer = 9, .txid = 0, .ans_type = 3}, b = a;
    assert_int_equal(pending_put_fresh(t, &a, &v), RH_OK);
    assert_int_equal(pending_put_fresh(t, &b, &v), RH_OK);
    assert_int_equal(hub_txid_node(a.txid), 5);
    assert_int_equal(hub_txid_node(b.txid), 5);
    assert_int_not_equal(a.txid, taken.txid);
    assert_int_not_equal(a.txid, b.txid);
    assert_ptr_equal(pending_take(t, &a), &v);
    assert_ptr_equal(pending_take(t, &b), &v);
    assert_int_equal(hub_txid_seq(hub_txid_make(1, 0x1234567)), 0x234567);
    pending_free(t);
}

static void test_bounded(void **state)
{
    (void)state;
    pending_table_t *t = pending_new(10);
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

static pending_table_t *shared;

static void *worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (uint32_t i = 0; i < 20000; i++) {
        pending_key_t k = {.peer = id, .txid = i, .ans_type = 2};
        if (pending_put(shared, &k, (void *)(uintptr_t)(i + 1)) != RH_OK)
            return (void *)1;
        if (pending_take(shared, &k) != (void *)(uintptr_t)(i + 1))
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    shared = pending_new(1000);
    pthread_t th[4];
    for (uintptr_t i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        assert_null(r);
    }
    assert_int_equal(pending_count(shared), 0);
    pending_free(shared);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_parts_all_matter),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_fresh_ids),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
