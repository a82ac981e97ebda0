/* Unit tests for broker/gateways: the bounded LRU store of gateway locations seen in GWInfo. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gateways.h"
#include "rh_err.h"

static void one(gw_store_t *s, uint32_t net, uint64_t id, double lat, double lon, int64_t t)
{
    bi_gwinfo_t g = {
        .present = BI_GW_ID | BI_GW_LAT | BI_GW_LON, .id_len = 8, .id = id, .lat = lat, .lon = lon};
    bi_ulmeta_t ul = {.gw = &g, .gw_count = 1};
    gw_store_note(s, net, &ul, t);
}

static const gw_entry_t *find(const gw_entry_t *a, size_t n, uint32_t net, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].net_id == net && a[i].id == id)
            return &a[i];
    return NULL;
}

static void test_bounds_and_lru(void **state)
{
    (void)state;
    gw_store_t *s;
    assert_int_equal(gw_store_new(0, &s), RH_EINVAL);
    assert_int_equal(gw_store_new(GW_STORE_MAX_ENTRIES + 1, &s), RH_EINVAL);
    assert_int_equal(gw_store_new(3, &s), RH_OK);
    one(s, 0x13, 1, 52.0, 4.0, 1000);
    one(s, 0x13, 2, 52.1, 4.1, 2000);
    one(s, 0x13, 3, 52.2, 4.2, 3000);
    one(s, 0x13, 1, 52.3, 4.3, 4000); /* 1 is now the most recent: 2 is the oldest */
    one(s, 0x13, 4, 52.4, 4.4, 5000); /* evicts 2 */
    one(s, 0x13, 5, 52.5, 4.5, 6000); /* evicts 3 */
    assert_int_equal(gw_store_count(s), 3);
    assert_int_equal(gw_store_evicted(s), 2);
    gw_entry_t *a;
    size_t n = gw_store_snapshot(s, &a);
    assert_int_equal(n, 3);
    assert_int_equal(a[0].id, 5); /* most recent first */
    assert_int_equal(a[1].id, 4);
    assert_int_equal(a[2].id, 1);
    assert_null(find(a, n, 0x13, 2));
    assert_null(find(a, n, 0x13, 3));
    const gw_entry_t *e = find(a, n, 0x13, 1);
    assert_non_null(e);
    assert_int_equal(e->uplinks, 2);
    assert_int_equal(e->first_seen_ms, 1000);
    assert_int_equal(e->last_seen_ms, 4000);
    assert_true(fabs(e->lat - 52.3) < 1e-9 && fabs(e->lon - 4.3) < 1e-9);
    free(a);
    gw_store_free(s);
    gw_store_free(NULL);
}

static void test_filters(void **state)
{
    (void)state;
    gw_store_t *s;
    assert_int_equal(gw_store_new(16, &s), RH_OK);
    one(s, 0x13, 1, 0.0, 0.0, 1);  /* no GPS */
    one(s, 0x13, 2, 91.0, 4.0, 1); /* out of range */
    one(s, 0x13, 3, 52.0, -180.5, 1);
    one(s, 0x13, 4, NAN, 4.0, 1);
    bi_gwinfo_t g[3] = {
        {.present = BI_GW_ID | BI_GW_LAT, .id_len = 8, .id = 5, .lat = 1, .lon = 1}, /* no Lon */
        {.present = BI_GW_LAT | BI_GW_LON, .lat = 1, .lon = 1},                      /* no ID */
        {.present = BI_GW_ID | BI_GW_LAT | BI_GW_LON,
         .id_len = 4,
         .id = 6,
         .lat = -33.9,
         .lon = 151.2},
    };
    bi_ulmeta_t ul = {.gw = g, .gw_count = 3};
    gw_store_note(s, 0x13, &ul, 7);
    gw_store_note(NULL, 0x13, &ul, 7);
    gw_store_note(s, 0x13, NULL, 7);
    /* the same gateway ID under two forwarders is two entries */
    one(s, 0x505, 6, 10.0, 10.0, 8);
    gw_entry_t *a;
    size_t n = gw_store_snapshot(s, &a);
    assert_int_equal(n, 2);
    assert_non_null(find(a, n, 0x13, 6));
    assert_non_null(find(a, n, 0x505, 6));
    assert_int_equal(find(a, n, 0x13, 6)->id_len, 4);
    free(a);
    gw_store_free(s);
}

/* Random inserts against a reference model: the hash table's backward-shift deletion must never
 * lose or duplicate an entry, and the LRU bound must hold. */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { MAX = 37, IDS = 120, STEPS = 20000 };
    gw_store_t *s;
    assert_int_equal(gw_store_new(MAX, &s), RH_OK);
    int64_t last[IDS];
    for (int i = 0; i < IDS; i++)
        last[i] = -1;
    uint64_t x = 88172645463325252ull;
    for (int64_t t = 1; t <= STEPS; t++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int id = (int)(x % IDS);
        one(s, 0x13 + (uint32_t)(id & 1), (uint64_t)id, 45.0, 5.0, t);
        last[id] = t;
    }
    /* the model: the MAX most recently seen IDs */
    gw_entry_t *a;
    size_t n = gw_store_snapshot(s, &a);
    assert_int_equal(n, MAX);
    for (int id = 0; id < IDS; id++) {
        int newer = 0;
        for (int j = 0; j < IDS; j++)
            newer += last[j] > last[id];
        const gw_entry_t *e = find(a, n, 0x13 + (uint32_t)(id & 1), (uint64_t)id);
        if (last[id] >= 0 && newer < MAX) {
            assert_non_null(e);
            assert_int_equal(e->last_seen_ms, last[id]);
        } else {
            assert_null(e);
        }
    }
    for (size_t i = 1; i < n; i++)
        assert_true(a[i - 1].last_seen_ms > a[i].last_seen_ms);
    free(a);
    gw_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_and_lru),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
