/* Unit tests for broker/gateways: the bounded LRU store of the gateways seen in GWInfo and in
 * Packet Broker Mapper updates (gw_store_put). */
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

/* SHA-256("my-gateway"), computed with `printf %s my-gateway | sha256sum`. */
static const uint8_t MY_GW_SHA256[32] = {
    0x66, 0x32, 0xe8, 0x49, 0xd9, 0xfa, 0xdd, 0x4a, 0x8b, 0xa7, 0x82, 0x87, 0x15, 0x14, 0xc5, 0x85,
    0x31, 0xc8, 0x4e, 0xbe, 0x88, 0xce, 0xaf, 0xa6, 0x2e, 0x18, 0xa6, 0x9e, 0xc5, 0x3a, 0x10, 0x48};

static void test_pb_id64(void **state)
{
    (void)state;
    uint64_t id;
    rh_diag_t d;
    assert_int_equal(gw_pb_id64(1, 0x0102030405060708ull, "x", NULL, 0, &id, &d), RH_OK);
    assert_int_equal(id, 0x0102030405060708ull); /* the EUI wins over the plain ID */
    assert_int_equal(gw_pb_id64(0, 0, "my-gateway", NULL, 0, &id, &d), RH_OK);
    uint64_t want = 0;
    for (int i = 0; i < 8; i++)
        want = want << 8 | MY_GW_SHA256[i];
    assert_int_equal(id, want);
    uint64_t id2;
    assert_int_equal(gw_pb_id64(0, 0, NULL, MY_GW_SHA256, 32, &id2, &d), RH_OK);
    assert_int_equal(id2, want); /* hash = SHA-256(plain): the same gateway, the same key */
    assert_int_equal(gw_pb_id64(0, 0, NULL, MY_GW_SHA256, 31, &id, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "forwarder_gateway_id.hash"));
    assert_int_equal(gw_pb_id64(0, 0, NULL, NULL, 0, &id, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "forwarder_gateway_id"));
    assert_int_equal(gw_pb_id64(0, 0, "", NULL, 0, &id, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "plain"));
}

/* Each bad field is refused with a diagnostic naming it, and nothing is stored. */
static void test_put_refuses(void **state)
{
    (void)state;
    gw_store_t *s;
    assert_int_equal(gw_store_new(8, &s), RH_OK);
    const gw_put_t ok = {.net_id = 0x13, .has_eui = 1, .eui = 0xAA, .online = -1, .now_ms = 5};
    struct {
        gw_put_t u;
        const char *field;
    } bad[] = {
        {ok, "forwarder_net_id"},
        {ok, "forwarder_tenant_id"},
        {ok, "forwarder_tenant_id"},
        {ok, "forwarder_gateway_id"},
        {ok, "forwarder_gateway_id.plain"},
        {ok, "forwarder_gateway_id.plain"},
        {ok, "gateway_location.latitude"},
        {ok, "gateway_location.longitude"},
        {ok, "gateway_location.latitude"},
        {ok, "gateway_location.altitude"},
        {ok, "online_ttl"},
        {ok, "online_ttl"},
        {ok, "online"},
        {ok, "rx_rate"},
        {ok, "tx_rate"},
    };
    char longid[GW_PB_ID_MAX + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    bad[0].u.net_id = 0x1000000;
    bad[1].u.tenant_id = "a/b";
    bad[2].u.tenant_id = "0123456789012345678901234567890123456"; /* 37 bytes */
    bad[3].u.has_eui = 0;
    bad[4].u.plain = longid;
    bad[5].u.plain = "gw 1";
    bad[6].u.has_location = 1, bad[6].u.lat = 90.5, bad[6].u.lon = 1;
    bad[7].u.has_location = 1, bad[7].u.lat = 1, bad[7].u.lon = -181;
    bad[8].u.has_location = 1, bad[8].u.lat = NAN, bad[8].u.lon = 1;
    bad[9].u.has_location = 1, bad[9].u.lat = 1, bad[9].u.lon = 1, bad[9].u.has_alt = 1,
    bad[9].u.alt = INFINITY;
    bad[10].u.online = 1; /* no TTL */
    bad[11].u.online = 1, bad[11].u.online_ttl_ms = GW_ONLINE_TTL_MAX_MS + 1;
    bad[12].u.online = 2;
    bad[13].u.has_rx_rate = 1, bad[13].u.rx_rate = -1;
    bad[14].u.has_tx_rate = 1, bad[14].u.tx_rate = NAN;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rh_diag_t d = {{0}};
        assert_int_equal(gw_store_put(s, &bad[i].u, &d), RH_EINVAL);
        if (!strstr(d.text, bad[i].field))
            fail_msg("case %zu: diag '%s' does not name %s", i, d.text, bad[i].field);
        assert_int_equal(gw_store_put(NULL, &bad[i].u, NULL), RH_EINVAL); /* checked anyway */
    }
    assert_int_equal(gw_store_count(s), 0);
    assert_int_equal(gw_store_put(NULL, &ok, NULL), RH_OK); /* console disabled: nothing kept */
    assert_int_equal(gw_store_put(s, &ok, NULL), RH_OK);
    assert_int_equal(gw_store_count(s), 1);
    gw_store_free(s);
}

static const gw_entry_t *only_entry(gw_store_t *s, gw_entry_t **a)
{
    size_t n = gw_store_snapshot(s, a);
    assert_int_equal(n, 1);
    return &(*a)[0];
}

/* A Mapper update sets only the fields it carries; GWInfo and Mapper reports of one gateway
 * merge into one entry; the online state expires with its TTL. */
static void test_put_merges(void **state)
{
    (void)state;
    gw_store_t *s;
    gw_entry_t *a;
    assert_int_equal(gw_store_new(8, &s), RH_OK);
    /* first: online only, no location — kept but without GW_F_LOCATION */
    gw_put_t u = {.net_id = 0x13,
                  .tenant_id = "ttn",
                  .has_eui = 1,
                  .eui = 0x0016C001FF10A235ull,
                  .plain = "my-gateway",
                  .online = 1,
                  .online_ttl_ms = 600000,
                  .source = GW_SOURCE_MAPPER,
                  .now_ms = 1000};
    assert_int_equal(gw_store_put(s, &u, NULL), RH_OK);
    const gw_entry_t *e = only_entry(s, &a);
    assert_int_equal(e->net_id, 0x13);
    assert_int_equal(e->id, 0x0016C001FF10A235ull);
    assert_int_equal(e->id_len, 8);
    assert_string_equal(e->tenant_id, "ttn");
    assert_string_equal(e->pb_id, "my-gateway");
    assert_int_equal(e->flags & (GW_F_LOCATION | GW_F_EUI), GW_F_EUI);
    assert_int_equal(e->sources, GW_SOURCE_MAPPER);
    assert_int_equal(e->last_source, GW_SOURCE_MAPPER);
    assert_int_equal(e->uplinks, 0);
    assert_int_equal(e->first_seen_ms, 1000);
    assert_int_equal(gw_entry_online(e, 1000), 1);
    assert_int_equal(gw_entry_online(e, 600999), 1);
    assert_int_equal(gw_entry_online(e, 601000), 0); /* the TTL ran out */
    free(a);

    /* second: location with altitude and rates; tenant/plain/online not set: kept */
    gw_put_t v = {.net_id = 0x13,
                  .has_eui = 1,
                  .eui = 0x0016C001FF10A235ull,
                  .has_location = 1,
                  .lat = 52.37,
                  .lon = 4.89,
                  .has_alt = 1,
                  .alt = 12.5,
                  .online = -1,
                  .has_rx_rate = 1,
                  .rx_rate = 120.5f,
                  .now_ms = 2000};
    assert_int_equal(gw_store_put(s, &v, NULL), RH_OK);
    e = only_entry(s, &a);
    assert_string_equal(e->tenant_id, "ttn");
    assert_string_equal(e->pb_id, "my-gateway");
    assert_true(e->flags & GW_F_LOCATION);
    assert_true(e->flags & GW_F_ALT);
    assert_true(e->flags & GW_F_RX_RATE);
    assert_false(e->flags & GW_F_TX_RATE);
    assert_true(fabs(e->lat - 52.37) < 1e-9 && fabs(e->lon - 4.89) < 1e-9);
    assert_true(fabs(e->alt - 12.5) < 1e-9);
    assert_true(fabs(e->rx_rate - 120.5f) < 1e-6);
    assert_int_equal(gw_entry_online(e, 2000), 1); /* online not set: still the earlier state */
    assert_int_equal(e->last_seen_ms, 2000);
    assert_int_equal(e->first_seen_ms, 1000);
    free(a);

    /* an uplink's GWInfo with the same ID under the same forwarder: the same entry */
    one(s, 0x13, 0x0016C001FF10A235ull, 52.38, 4.90, 3000);
    e = only_entry(s, &a);
    assert_int_equal(e->sources, GW_SOURCE_MAPPER | GW_SOURCE_GWINFO);
    assert_int_equal(e->last_source, GW_SOURCE_GWINFO);
    assert_int_equal(e->uplinks, 1);
    assert_string_equal(e->tenant_id, "ttn"); /* GWInfo carries no tenant: kept */
    assert_true(fabs(e->lat - 52.38) < 1e-9);
    assert_false(e->flags & GW_F_ALT); /* GWInfo has no altitude: the old one no longer holds */
    assert_int_equal(gw_entry_online(e, 3000), 1);
    free(a);

    /* offline; a (0, 0) location is "no fix": the stored location stays */
    gw_put_t w = {.net_id = 0x13,
                  .has_eui = 1,
                  .eui = 0x0016C001FF10A235ull,
                  .has_location = 1,
                  .online = 0,
                  .now_ms = 4000};
    assert_int_equal(gw_store_put(s, &w, NULL), RH_OK);
    e = only_entry(s, &a);
    assert_int_equal(gw_entry_online(e, 4000), 0);
    assert_true(fabs(e->lat - 52.38) < 1e-9 && fabs(e->lon - 4.90) < 1e-9);
    assert_int_equal(e->last_source, GW_SOURCE_MAPPER);
    free(a);

    /* a gateway known only by its plain ID, and the same one by its hash: one entry, distinct
     * from the EUI one and from another forwarder's */
    gw_put_t p1 = {.net_id = 0x13, .plain = "my-gateway", .online = -1, .now_ms = 5000};
    gw_put_t p2 = {
        .net_id = 0x13, .hash = MY_GW_SHA256, .hash_len = 32, .online = -1, .now_ms = 6000};
    gw_put_t p3 = {.net_id = 0x14, .plain = "my-gateway", .online = -1, .now_ms = 7000};
    assert_int_equal(gw_store_put(s, &p1, NULL), RH_OK);
    assert_int_equal(gw_store_put(s, &p2, NULL), RH_OK);
    assert_int_equal(gw_store_put(s, &p3, NULL), RH_OK);
    size_t n = gw_store_snapshot(s, &a);
    assert_int_equal(n, 3);
    uint64_t hid;
    assert_int_equal(gw_pb_id64(0, 0, "my-gateway", NULL, 0, &hid, NULL), RH_OK);
    const gw_entry_t *h = find(a, n, 0x13, hid);
    assert_non_null(h);
    assert_int_equal(h->first_seen_ms, 5000);
    assert_int_equal(h->last_seen_ms, 6000);
    assert_string_equal(h->pb_id, "my-gateway");
    assert_false(h->flags & GW_F_EUI);
    assert_int_equal(gw_entry_online(h, 6000), -1);
    assert_non_null(find(a, n, 0x14, hid));
    assert_int_equal(a[0].net_id, 0x14); /* most recent first */
    free(a);
    gw_store_free(s);
}

/* Mapper updates take part in the LRU bound like GWInfo reports. */
static void test_put_bound(void **state)
{
    (void)state;
    gw_store_t *s;
    gw_entry_t *a;
    assert_int_equal(gw_store_new(2, &s), RH_OK);
    one(s, 0x13, 1, 52.0, 4.0, 1);
    gw_put_t u = {.net_id = 0x13, .has_eui = 1, .eui = 2, .online = 0, .now_ms = 2};
    assert_int_equal(gw_store_put(s, &u, NULL), RH_OK);
    u.eui = 3, u.now_ms = 3; /* evicts 1 */
    assert_int_equal(gw_store_put(s, &u, NULL), RH_OK);
    assert_int_equal(gw_store_evicted(s), 1);
    size_t n = gw_store_snapshot(s, &a);
    assert_int_equal(n, 2);
    assert_null(find(a, n, 0x13, 1));
    assert_non_null(find(a, n, 0x13, 2));
    assert_non_null(find(a, n, 0x13, 3));
    free(a);
    gw_store_free(s);
}

/* A reload's resize keeps the most recent entries in order, counts the rest as evicted, and the
 * resized store keeps working (hash table rebuilt). */
static void test_take_resizes(void **state)
{
    (void)state;
    gw_store_t *s, *fresh;
    gw_entry_t *a;
    assert_int_equal(gw_store_new(8, &s), RH_OK);
    for (uint64_t id = 1; id <= 8; id++)
        one(s, 0x13, id, 50.0 + (double)id, 4.0, (int64_t)id * 10);
    gw_put_t u = {.net_id = 0x13, .tenant_id = "t1", .has_eui = 1, .eui = 7, .online = -1,
                  .now_ms = 100};
    assert_int_equal(gw_store_put(s, &u, NULL), RH_OK); /* 7 is the most recent now */
    /* shrink to 3: 7, 8, 6 stay */
    assert_int_equal(gw_store_new(3, &fresh), RH_OK);
    gw_store_take(s, fresh);
    assert_int_equal(gw_store_max(s), 3);
    assert_int_equal(gw_store_count(s), 3);
    assert_int_equal(gw_store_evicted(s), 5);
    size_t n = gw_store_snapshot(s, &a);
    assert_int_equal(n, 3);
    assert_int_equal(a[0].id, 7);
    assert_string_equal(a[0].tenant_id, "t1");
    assert_int_equal(a[0].first_seen_ms, 70);
    assert_int_equal(a[1].id, 8);
    assert_int_equal(a[2].id, 6);
    free(a);
    /* the table still finds them: a note for 6 updates, not duplicates */
    one(s, 0x13, 6, 1.0, 1.0, 200);
    assert_int_equal(gw_store_count(s), 3);
    n = gw_store_snapshot(s, &a);
    assert_int_equal(a[0].id, 6);
    assert_int_equal(a[0].uplinks, 2);
    free(a);
    /* grow to 10: all kept, room for more */
    assert_int_equal(gw_store_new(10, &fresh), RH_OK);
    gw_store_take(s, fresh);
    assert_int_equal(gw_store_max(s), 10);
    for (uint64_t id = 20; id < 27; id++)
        one(s, 0x13, id, 1.0, 1.0, 300 + (int64_t)id);
    assert_int_equal(gw_store_count(s), 10);
    assert_int_equal(gw_store_evicted(s), 5);
    /* an empty store */
    gw_store_t *e;
    assert_int_equal(gw_store_new(2, &e), RH_OK);
    assert_int_equal(gw_store_new(5, &fresh), RH_OK);
    gw_store_take(e, fresh);
    assert_int_equal(gw_store_count(e), 0);
    assert_int_equal(gw_store_max(e), 5);
    gw_store_free(e);
    gw_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounds_and_lru),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_random_against_model),
        cmocka_unit_test(test_pb_id64),
        cmocka_unit_test(test_put_refuses),
        cmocka_unit_test(test_put_merges),
        cmocka_unit_test(test_put_bound),
        cmocka_unit_test(test_take_resizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
