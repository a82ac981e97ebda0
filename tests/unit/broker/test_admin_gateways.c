/* Unit tests for broker/admin_gateways: what GET /api/v1/gateways shows of the gateway store to
 * the operator, to the gateway's own network and to another member, for gateways reported by
 * GWInfo and by a Packet Broker Mapper update (gw_store_put), with each visibility setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_gateways.h"
#include "rh_err.h"
#include "rp.h"

#define NOW 1800000000000LL /* Unix ms */

static gw_vis_t vis_a; /* the setting of forwarder 000013 in each case */

static void lookup(void *arg, uint32_t net_id, gw_vis_t *out)
{
    int *calls = arg;
    (*calls)++;
    gw_vis_t none = {.visibility = -1};
    *out = net_id == 0x13 ? vis_a : none;
}

/* A store with one Mapper-reported gateway of 000013 (tenant "ttn", online, location with
 * altitude) and one GWInfo-reported gateway of 000505. */
static gw_store_t *world(void)
{
    gw_store_t *s;
    assert_int_equal(gw_store_new(16, &s), RH_OK);
    gw_put_t u = {.net_id = 0x13,
                  .tenant_id = "ttn",
                  .has_eui = 1,
                  .eui = 0x0016C001FF10A235ull,
                  .plain = "my-gateway",
                  .has_location = 1,
                  .lat = 52.3702,
                  .lon = 4.8952,
                  .has_alt = 1,
                  .alt = 12.5,
                  .online = 1,
                  .online_ttl_ms = 600000,
                  .has_rx_rate = 1,
                  .rx_rate = 42,
                  .source = GW_SOURCE_MAPPER,
                  .now_ms = NOW - 1000};
    assert_int_equal(gw_store_put(s, &u, NULL), RH_OK);
    /* online but no location: kept in the store, not listed */
    gw_put_t nl = {.net_id = 0x13, .plain = "no-fix", .online = 0, .now_ms = NOW - 500};
    assert_int_equal(gw_store_put(s, &nl, NULL), RH_OK);
    bi_gwinfo_t g = {.present = BI_GW_ID | BI_GW_LAT | BI_GW_LON,
                     .id_len = 8,
                     .id = 0x0102030405060708ull,
                     .lat = 46.2,
                     .lon = 6.1};
    bi_ulmeta_t ul = {.gw = &g, .gw_count = 1};
    gw_store_note(s, 0x505, &ul, NOW - 2000);
    return s;
}

/* The list as `who` sees it, as a JSON array (caller deletes). */
static cJSON *view(gw_store_t *s, int op, uint32_t net, uint32_t only, size_t *shown,
                   size_t *hidden, int64_t now)
{
    gw_entry_t *all;
    size_t n = gw_store_snapshot(s, &all);
    assert_int_equal(n, 3);
    cJSON *arr = cJSON_CreateArray();
    gw_viewer_t who = {.is_operator = op, .net_id = net};
    int calls = 0;
    *shown = *hidden = 0;
    assert_int_equal(
        admin_gateways_view(arr, all, n, only, &who, lookup, &calls, now, shown, hidden), RH_OK);
    free(all);
    return arr;
}

static const cJSON *by_net(const cJSON *arr, const char *net)
{
    const cJSON *g;
    cJSON_ArrayForEach(g, arr)
    {
        if (!strcmp(cJSON_GetObjectItem(g, "net_id")->valuestring, net))
            return g;
    }
    return NULL;
}

static const char *str(const cJSON *g, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(g, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *g, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(g, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_operator_sees_mapper_fields(void **state)
{
    (void)state;
    gw_store_t *s = world();
    vis_a = (gw_vis_t){.visibility = 0, .name = "A"};
    size_t shown, hidden;
    cJSON *arr = view(s, 1, 0, RP_ANY, &shown, &hidden, NOW);
    assert_int_equal(shown, 2); /* the entry without a location is not listed */
    assert_int_equal(hidden, 0);
    const cJSON *m = by_net(arr, "000013");
    assert_non_null(m);
    assert_string_equal(str(m, "id"), "0016c001ff10a235");
    assert_string_equal(str(m, "pb_id"), "my-gateway");
    assert_string_equal(str(m, "tenant_id"), "ttn");
    assert_string_equal(str(m, "network"), "A");
    assert_true(fabs(num(m, "lat") - 52.3702) < 1e-9);
    assert_true(fabs(num(m, "altitude") - 12.5) < 1e-9);
    assert_true(fabs(num(m, "rx_rate") - 42) < 1e-9);
    assert_null(cJSON_GetObjectItem(m, "tx_rate"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "online")));
    assert_string_equal(str(m, "last_source"), "mapper");
    const cJSON *src = cJSON_GetObjectItem(m, "sources");
    assert_int_equal(cJSON_GetArraySize(src), 1);
    assert_string_equal(cJSON_GetArrayItem(src, 0)->valuestring, "mapper");
    assert_int_equal((int)num(m, "uplinks"), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "own")));
    const cJSON *w = by_net(arr, "000505");
    assert_non_null(w);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(w, "online"))); /* GWInfo says nothing */
    assert_string_equal(str(w, "last_source"), "gwinfo");
    assert_null(str(w, "tenant_id"));
    assert_null(cJSON_GetObjectItem(w, "altitude"));
    cJSON_Delete(arr);
    /* after the online TTL: offline */
    arr = view(s, 1, 0, 0x13, &shown, &hidden, NOW - 1000 + 600000);
    assert_int_equal(shown, 1);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(by_net(arr, "000013"), "online")));
    cJSON_Delete(arr);
    gw_store_free(s);
}

/* The forwarder's visibility setting applies to its Mapper-reported gateways as to GWInfo ones. */
static void test_visibility_applies_to_mapper_gateways(void **state)
{
    (void)state;
    gw_store_t *s = world();
    size_t shown, hidden;
    /* its own network: exact, whatever the setting */
    vis_a = (gw_vis_t){.visibility = 0};
    cJSON *arr = view(s, 0, 0x13, RP_ANY, &shown, &hidden, NOW);
    assert_int_equal(shown, 1); /* 000505 has no record: hidden from 000013 */
    assert_int_equal(hidden, 1);
    assert_string_equal(str(by_net(arr, "000013"), "pb_id"), "my-gateway");
    cJSON_Delete(arr);
    /* another member, HIDDEN (and no record): nothing */
    arr = view(s, 0, 0x505, RP_ANY, &shown, &hidden, NOW);
    assert_int_equal(shown, 1); /* its own GWInfo gateway */
    assert_int_equal(hidden, 1);
    assert_null(by_net(arr, "000013"));
    cJSON_Delete(arr);
    vis_a = (gw_vis_t){.visibility = -1};
    arr = view(s, 0, 0x505, RP_ANY, &shown, &hidden, NOW);
    assert_null(by_net(arr, "000013"));
    cJSON_Delete(arr);
    /* APPROXIMATE: snapped, nothing identifying, online still shown */
    vis_a = (gw_vis_t){.visibility = 1, .precision_m = 5000};
    arr = view(s, 0, 0x505, RP_ANY, &shown, &hidden, NOW);
    assert_int_equal(shown, 2);
    const cJSON *m = by_net(arr, "000013");
    assert_non_null(m);
    assert_null(str(m, "id"));
    assert_null(str(m, "pb_id"));
    assert_null(str(m, "tenant_id"));
    assert_null(cJSON_GetObjectItem(m, "altitude"));
    assert_int_equal((int)num(m, "precision_m"), 5000);
    assert_true(fabs(num(m, "lat") - 52.3702) < 0.05 && num(m, "lat") != 52.3702);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "online")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(m, "own")));
    cJSON_Delete(arr);
    /* EXACT: as reported */
    vis_a = (gw_vis_t){.visibility = 2};
    arr = view(s, 0, 0x505, RP_ANY, &shown, &hidden, NOW);
    m = by_net(arr, "000013");
    assert_string_equal(str(m, "id"), "0016c001ff10a235");
    assert_string_equal(str(m, "tenant_id"), "ttn");
    assert_true(fabs(num(m, "lat") - 52.3702) < 1e-9);
    assert_int_equal((int)num(m, "precision_m"), 0);
    cJSON_Delete(arr);
    gw_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operator_sees_mapper_fields),
        cmocka_unit_test(test_visibility_applies_to_mapper_gateways),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
