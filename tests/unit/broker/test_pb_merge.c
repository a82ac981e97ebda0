/* Unit tests for broker/pb_merge (and the downlink token choice of pb_bridge_ts002): a Packet
 * Broker forwarder's per-gateway copies of one uplink — same forwarder identity, same
 * PHYPayload, within the window — become one ULMetaData with a GWInfo per copy (best signal
 * first, GWCnt, FNSULToken = the first GWInfo's token, the first copy's RecvTime), each GWInfo
 * keeping its own sealed ULToken that opens to its own gateway_uplink_token; another PHYPayload
 * or another forwarder (NetID, tenant or cluster) is another merge; nothing is sent before the
 * window ends; the cap of open merges makes further copies go alone; a full merge is sent at
 * once; a TS002 downlink naming the 2nd GWInfo's token restores the 2nd copy's gateway token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pb_bridge_ts002.h"
#include "pb_merge.h"
#include "pb_service.h"
#include "pb_token.h"
#include "rh_hex.h"
#include "rh_time.h"

#define MAX_FLUSH 8

/* What the flush callback saw (deep copies). */
typedef struct flushed {
    pb_ids_t fwd;
    uint8_t phy[BI_MAX_PHY];
    size_t phy_len, copies;
    bi_ulmeta_t ul;
    bi_gwinfo_t gw[PB_MERGE_MAX_COPIES];
    char tok[PB_MERGE_MAX_COPIES][2 * PB_TOKEN_MAX + 1];
    char fns[2 * PB_TOKEN_MAX + 1];
    char first[32];
    uint64_t at_ms;
} flushed_t;

typedef struct seen {
    size_t n;
    flushed_t f[MAX_FLUSH];
} seen_t;

static void on_flush(void *arg, const pb_merged_t *m)
{
    seen_t *s = arg;
    assert_true(s->n < MAX_FLUSH);
    flushed_t *o = &s->f[s->n++];
    o->fwd = *m->fwd;
    memcpy(o->phy, m->phy, m->phy_len);
    o->phy_len = m->phy_len;
    o->copies = m->copies;
    o->ul = *m->ul;
    assert_int_equal(m->ul->gw_count, m->copies);
    for (size_t i = 0; i < m->copies; i++) {
        o->gw[i] = m->ul->gw[i];
        snprintf(o->tok[i], sizeof o->tok[i], "%s", m->ul->gw[i].ul_token);
    }
    snprintf(o->fns, sizeof o->fns, "%s", m->ul->fns_ul_token ? m->ul->fns_ul_token : "");
    snprintf(o->first, sizeof o->first, "%.*s", (int)m->first_len, (const char *)m->first);
    o->at_ms = rh_mono_ms();
}

static pb_token_key_t key;

static int setup(void **state)
{
    (void)state;
    return pb_token_key_init(&key, NULL, NULL) == RH_OK ? 0 : -1;
}

static const uint8_t PHY[] = {0x40, 0x34, 0x12, 0x00, 0x0a, 0x00, 0x03, 0x00,
                              0x01, 0xaa, 0x11, 0x22, 0x33, 0x44};

static pb_ids_t ids(uint32_t net_id, const char *tenant, const char *cluster)
{
    pb_ids_t f;
    memset(&f, 0, sizeof f);
    f.net_id = net_id;
    snprintf(f.tenant, sizeof f.tenant, "%s", tenant);
    snprintf(f.cluster, sizeof f.cluster, "%s", cluster);
    return f;
}

/* A copy as pb_bridge_uplink makes it: gateway `id` with SNR/RSSI, its own sealed token (the
 * gateway_uplink_token "gw-token-<id>") in hex in *hex. */
static void copy(uint64_t id, bool sq, double snr, int rssi, int64_t recv_sec, char *hex,
                 bi_ulmeta_t *ul, bi_gwinfo_t *gw)
{
    char gtok[32];
    snprintf(gtok, sizeof gtok, "gw-token-%llu", (unsigned long long)id);
    Roamhub__V1__BridgeToken bt = ROAMHUB__V1__BRIDGE_TOKEN__INIT;
    bt.kind = ROAMHUB__V1__BRIDGE_TOKEN__KIND__KIND_GRPC_FORWARDER;
    bt.forwarder_net_id = 0x14;
    bt.forwarder_tenant_id = (char *)"";
    bt.forwarder_cluster_id = (char *)"eu1";
    bt.gateway_uplink_token.data = (uint8_t *)gtok;
    bt.gateway_uplink_token.len = strlen(gtok);
    bt.home_net_id = 0x505;
    uint8_t tok[PB_TOKEN_MAX];
    size_t tl = 0;
    char aad[16];
    pb_token_aad(aad, sizeof aad, 0x14, NULL, NULL);
    assert_int_equal(pb_token_seal_bridge(&key, &bt, aad, rh_real_ms() / 1000, tok, sizeof tok,
                                          &tl), RH_OK);
    rh_hex_encode(tok, tl, hex, 0);
    memset(ul, 0, sizeof *ul);
    memset(gw, 0, sizeof *gw);
    ul->present = BI_UL_DATA_RATE | BI_UL_UL_FREQ | BI_UL_RECV_TIME | BI_UL_RF_REGION |
                  BI_UL_GW_CNT | BI_UL_GW_INFO | BI_UL_FNS_UL_TOKEN;
    ul->data_rate = 5;
    ul->ul_freq = 868.1;
    ul->recv_time.sec = recv_sec;
    ul->rf_region = BI_REGION_EU868;
    ul->gw_cnt = 1;
    ul->fns_ul_token = hex;
    gw->present = BI_GW_ID | BI_GW_UL_TOKEN | BI_GW_DL_ALLOWED;
    if (sq)
        gw->present |= BI_GW_RSSI | BI_GW_SNR;
    gw->id_len = 8;
    gw->id = id;
    gw->snr = snr;
    gw->rssi = rssi;
    gw->ul_token = hex;
    gw->dl_allowed = true;
    ul->gw = gw;
    ul->gw_count = 1;
}

/* Runs the loop until the flush count reaches n or 2 s pass. */
static void run_until(struct event_base *b, seen_t *s, size_t n)
{
    uint64_t t0 = rh_mono_ms();
    while (s->n < n && rh_mono_ms() - t0 < 2000)
        event_base_loop(b, EVLOOP_ONCE);
}

/* The gateway_uplink_token a sealed hex token restores. */
static void opens_to(const char *hex, const char *want)
{
    Roamhub__V1__BridgeToken *bt = NULL;
    char aad[16];
    rh_diag_t d = {{0}};
    pb_token_aad(aad, sizeof aad, 0x14, NULL, NULL);
    assert_int_equal(pb_token_open_bridge_hex(&key, hex, aad, rh_real_ms() / 1000, &bt, &d),
                     RH_OK);
    assert_int_equal(bt->gateway_uplink_token.len, strlen(want));
    assert_memory_equal(bt->gateway_uplink_token.data, want, strlen(want));
    roamhub__v1__bridge_token__free_unpacked(bt, NULL);
}

static void test_copies_become_one(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    seen_t s = {0};
    pb_merge_t *m = pb_merge_new(b, 50, 8, on_flush, &s);
    assert_non_null(m);
    pb_ids_t f = ids(0x14, "", "eu1");
    static char hex[3][2 * PB_TOKEN_MAX + 1];
    bi_ulmeta_t ul;
    bi_gwinfo_t gw;
    uint64_t t0 = rh_mono_ms();
    /* three gateways: the 2nd has the best SNR, the 3rd no signal quality (stripped) */
    copy(1, true, -3.5, -110, 1000, hex[0], &ul, &gw);
    assert_int_equal(pb_merge_add(m, &f, PHY, sizeof PHY, &ul, "first", 5), PB_MERGE_OPENED);
    copy(2, true, 7.25, -98, 1001, hex[1], &ul, &gw);
    assert_int_equal(pb_merge_add(m, &f, PHY, sizeof PHY, &ul, "second", 6), PB_MERGE_JOINED);
    copy(3, false, 0, 0, 1002, hex[2], &ul, &gw);
    assert_int_equal(pb_merge_add(m, &f, PHY, sizeof PHY, &ul, "third", 5), PB_MERGE_JOINED);
    assert_int_equal(pb_merge_pending(m), 1);
    assert_int_equal(s.n, 0); /* nothing before the window ends */
    run_until(b, &s, 1);
    assert_int_equal(s.n, 1);
    assert_true(s.f[0].at_ms - t0 >= 45); /* the window, not earlier (timer granularity) */
    assert_int_equal(pb_merge_pending(m), 0);
    assert_int_equal(s.f[0].copies, 3);
    assert_int_equal(s.f[0].ul.gw_cnt, 3);
    assert_true(s.f[0].ul.present & BI_UL_GW_CNT);
    assert_int_equal(s.f[0].ul.recv_time.sec, 1000); /* the first copy's RecvTime */
    assert_string_equal(s.f[0].first, "first");       /* the first copy's bytes */
    assert_int_equal(s.f[0].fwd.net_id, 0x14);
    assert_string_equal(s.f[0].fwd.cluster, "eu1");
    assert_memory_equal(s.f[0].phy, PHY, sizeof PHY);
    /* best signal first, the one without signal quality last */
    assert_int_equal(s.f[0].gw[0].id, 2);
    assert_int_equal(s.f[0].gw[1].id, 1);
    assert_int_equal(s.f[0].gw[2].id, 3);
    assert_string_equal(s.f[0].fns, s.f[0].tok[0]);
    /* each GWInfo its own token, distinct, restoring its own gateway_uplink_token */
    assert_string_not_equal(s.f[0].tok[0], s.f[0].tok[1]);
    assert_string_not_equal(s.f[0].tok[1], s.f[0].tok[2]);
    assert_string_not_equal(s.f[0].tok[0], s.f[0].tok[2]);
    for (size_t i = 0; i < 3; i++) {
        char want[32];
        snprintf(want, sizeof want, "gw-token-%llu", (unsigned long long)s.f[0].gw[i].id);
        opens_to(s.f[0].tok[i], want);
    }
    /* a copy after the window opens a new merge */
    copy(4, true, 1, -100, 1003, hex[0], &ul, &gw);
    assert_int_equal(pb_merge_add(m, &f, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    run_until(b, &s, 2);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.f[1].copies, 1);
    assert_int_equal(pb_merge_free(m), 0);
    event_base_free(b);
}

static void test_other_payload_or_forwarder_separate(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    seen_t s = {0};
    pb_merge_t *m = pb_merge_new(b, 30, 8, on_flush, &s);
    static char hex[2 * PB_TOKEN_MAX + 1];
    bi_ulmeta_t ul;
    bi_gwinfo_t gw;
    copy(1, true, 1, -100, 1000, hex, &ul, &gw);
    pb_ids_t f = ids(0x14, "", "eu1");
    assert_int_equal(pb_merge_add(m, &f, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    uint8_t other[sizeof PHY];
    memcpy(other, PHY, sizeof PHY);
    other[sizeof PHY - 1] ^= 1; /* another MIC: another uplink */
    assert_int_equal(pb_merge_add(m, &f, other, sizeof other, &ul, NULL, 0), PB_MERGE_OPENED);
    assert_int_equal(pb_merge_add(m, &f, PHY, sizeof PHY - 1, &ul, NULL, 0), PB_MERGE_OPENED);
    pb_ids_t f2 = ids(0x15, "", "eu1"), f3 = ids(0x14, "t", "eu1"), f4 = ids(0x14, "", "eu2");
    assert_int_equal(pb_merge_add(m, &f2, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    assert_int_equal(pb_merge_add(m, &f3, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    assert_int_equal(pb_merge_add(m, &f4, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    assert_int_equal(pb_merge_pending(m), 6);
    run_until(b, &s, 6);
    assert_int_equal(s.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(s.f[i].copies, 1);
    pb_merge_free(m);
    event_base_free(b);
}

static void test_cap_and_full_merge(void **state)
{
    (void)state;
    struct event_base *b = event_base_new();
    seen_t s = {0};
    pb_merge_t *m = pb_merge_new(b, 1000, 2, on_flush, &s);
    static char hex[2 * PB_TOKEN_MAX + 1];
    bi_ulmeta_t ul;
    bi_gwinfo_t gw;
    copy(1, true, 1, -100, 1000, hex, &ul, &gw);
    pb_ids_t f1 = ids(1, "", ""), f2 = ids(2, "", ""), f3 = ids(3, "", "");
    assert_int_equal(pb_merge_add(m, &f1, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    assert_int_equal(pb_merge_add(m, &f2, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    /* the cap: a third uplink is not held (the caller sends it alone) */
    assert_int_equal(pb_merge_add(m, &f3, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_FULL);
    assert_int_equal(pb_merge_pending(m), 2);
    /* copies of an open merge still join at the cap; the last one fills it: sent at once */
    for (int i = 1; i < PB_MERGE_MAX_COPIES - 1; i++)
        assert_int_equal(pb_merge_add(m, &f1, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_JOINED);
    assert_int_equal(s.n, 0);
    assert_int_equal(pb_merge_add(m, &f1, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_SENT);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.f[0].copies, PB_MERGE_MAX_COPIES);
    assert_int_equal(pb_merge_pending(m), 1);
    assert_int_equal(pb_merge_add(m, &f3, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    /* not mergeable */
    uint8_t big[BI_MAX_PHY + 1] = {0x40};
    assert_int_equal(pb_merge_add(m, &f1, big, sizeof big, &ul, NULL, 0), PB_MERGE_INVALID);
    assert_int_equal(pb_merge_add(m, &f1, PHY, 0, &ul, NULL, 0), PB_MERGE_INVALID);
    /* the drain: every open merge sent now */
    assert_int_equal(pb_merge_add(m, &f2, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_JOINED);
    assert_int_equal(pb_merge_flush_all(m), 2);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.f[1].copies + s.f[2].copies, 3); /* f2's two, f3's one */
    assert_int_equal(pb_merge_pending(m), 0);
    assert_int_equal(pb_merge_flush_all(m), 0);
    /* freed with open merges: their copies dropped, not sent */
    assert_int_equal(pb_merge_add(m, &f1, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_OPENED);
    assert_int_equal(pb_merge_add(m, &f1, PHY, sizeof PHY, &ul, NULL, 0), PB_MERGE_JOINED);
    assert_int_equal(pb_merge_free(m), 2);
    assert_int_equal(s.n, 3);
    /* arguments */
    assert_null(pb_merge_new(b, 0, 8, on_flush, &s));
    assert_null(pb_merge_new(b, PB_MERGE_WINDOW_MAX_MS + 1, 8, on_flush, &s));
    assert_null(pb_merge_new(b, 100, 0, on_flush, &s));
    assert_null(pb_merge_new(b, 100, 8, NULL, &s));
    event_base_free(b);
}

/* The downlink of a TS002 home network names its gateway: the first GWInfo ULToken it carries,
 * else FNSULToken. */
static void test_downlink_token_choice(void **state)
{
    (void)state;
    pb_service_t svc;
    memset(&svc, 0, sizeof svc);
    svc.token_key = key;
    worker_t w;
    memset(&w, 0, sizeof w);
    w.pb = &svc;
    static char hex[3][2 * PB_TOKEN_MAX + 1];
    bi_ulmeta_t ul;
    bi_gwinfo_t gw;
    for (int i = 0; i < 3; i++)
        copy((uint64_t)i + 1, true, 0, 0, 0, hex[i], &ul, &gw);
    bi_dlmeta_t dl;
    memset(&dl, 0, sizeof dl);
    bi_gwinfo_t g[1];
    memset(g, 0, sizeof g);
    g[0].present = BI_GW_UL_TOKEN;
    g[0].ul_token = hex[1];
    dl.present = BI_DL_FNS_UL_TOKEN | BI_DL_GW_INFO;
    dl.fns_ul_token = hex[0]; /* echoed: the first GWInfo of the uplink */
    dl.gw = g;
    dl.gw_count = 1;
    Roamhub__V1__BridgeToken *bt = NULL;
    const char *field = NULL;
    rh_diag_t d = {{0}};
    assert_int_equal(pb_bridge_ts002_dl_token(&w, &dl, 0x14, 0x505, &bt, &field, &d), RH_OK);
    assert_string_equal(field, "DLMetaData.GWInfo[0].ULToken");
    assert_memory_equal(bt->gateway_uplink_token.data, "gw-token-2", 10);
    assert_string_equal(bt->forwarder_cluster_id, "eu1");
    roamhub__v1__bridge_token__free_unpacked(bt, NULL);
    /* no GWInfo token: FNSULToken */
    dl.gw_count = 0;
    dl.gw = NULL;
    assert_int_equal(pb_bridge_ts002_dl_token(&w, &dl, 0x14, 0x505, &bt, &field, &d), RH_OK);
    assert_string_equal(field, "DLMetaData.FNSULToken");
    assert_memory_equal(bt->gateway_uplink_token.data, "gw-token-1", 10);
    roamhub__v1__bridge_token__free_unpacked(bt, NULL);
    /* another home network, another forwarder NetID, none at all */
    assert_int_equal(pb_bridge_ts002_dl_token(&w, &dl, 0x14, 0x506, &bt, &field, &d), RH_EPERM);
    assert_null(bt);
    assert_int_equal(pb_bridge_ts002_dl_token(&w, &dl, 0x15, 0x505, &bt, &field, &d), RH_EPERM);
    dl.present = 0;
    assert_int_equal(pb_bridge_ts002_dl_token(&w, &dl, 0x14, 0x505, &bt, &field, &d),
                     RH_ENOTFOUND);
    assert_non_null(strstr(d.text, "missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_copies_become_one),
        cmocka_unit_test(test_other_payload_or_forwarder_separate),
        cmocka_unit_test(test_cap_and_full_merge),
        cmocka_unit_test(test_downlink_token_choice),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
