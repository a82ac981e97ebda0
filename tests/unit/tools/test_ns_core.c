/* Unit tests for tools/common/ns_core (roamns's device side) against the shared LoRaWAN vectors
 * (ChirpStack examples in lorawan_crypto_vectors.json) and against the simulator's device model
 * (tools/common/sim_dev): uplink MIC/decryption, 32-bit FCnt with rollover and replay refusal,
 * shared DevAddrs, the join server (DevNonce replay, MIC, DevAddr allocation from the block),
 * downlinks (ACK, queue, FPending, confirmed, sizes), and the output JSON line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ns_core.h"
#include "rh_hex.h"
#include "rh_test.h"
#include "sim_dev.h"

static const cJSON *vector(cJSON *root, const char *id)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "vectors"))
    {
        if (strcmp(rh_test_str(v, "id"), id) == 0)
            return v;
    }
    fail_msg("vector %s missing", id);
    return NULL;
}

static void hexkey(const cJSON *o, const char *k, uint8_t out[16])
{
    assert_int_equal(rh_test_hex(rh_test_str(o, k), out, 16), 16);
}

static ns_opts_t opts_for(const char *block)
{
    ns_opts_t o;
    memset(&o, 0, sizeof o);
    o.net_id = 0x000013;
    assert_int_equal(lw_devaddr_prefix_parse(block, &o.blocks[0], NULL), RH_OK);
    o.n_blocks = 1;
    o.join_euis[0] = (ns_eui_prefix_t){0x0101010101010101ull, 64};
    o.n_join_euis = 1;
    o.rx_delay = 1;
    return o;
}

static devcfg_t abp(uint64_t eui, uint32_t addr, const uint8_t nwks[16], const uint8_t apps[16])
{
    devcfg_t d;
    memset(&d, 0, sizeof d);
    d.dev_eui = eui;
    d.dev_addr = addr;
    memcpy(d.nwk_s_key, nwks, 16);
    memcpy(d.app_s_key, apps, 16);
    snprintf(d.name, sizeof d.name, "abp");
    return d;
}

static void test_vector_uplink(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("lorawan_crypto_vectors.json");
    const cJSON *v = vector(root, "cs-confirmed-uplink-fopts");
    const cJSON *in = cJSON_GetObjectItem(v, "inputs");
    uint8_t nwks[16], apps[16], phy[64];
    hexkey(in, "nwk_s_key", nwks);
    hexkey(in, "app_s_key", apps);
    size_t len = rh_test_hex(rh_test_str(cJSON_GetObjectItem(v, "expected"), "phy_payload"), phy,
                             sizeof phy);
    devcfg_t d = abp(0x1111, 0x01020304, nwks, apps);
    ns_opts_t o = opts_for("01000000/8");
    ns_registry_t *r;
    assert_int_equal(ns_registry_new(&o, &d, 1, &r, NULL), RH_OK);
    ns_up_t u;
    rh_diag_t diag;
    assert_int_equal(ns_data_up(r, phy, len, &u, &diag), RH_OK);
    assert_true(u.confirmed);
    assert_int_equal(u.fcnt, 0);
    assert_int_equal(u.fport, 10);
    assert_int_equal(u.fopts_len, 3);
    assert_int_equal(u.payload_len, 4);
    const uint8_t plain[] = {1, 2, 3, 4};
    assert_memory_equal(u.payload, plain, 4);
    assert_true(u.dev->cfg.dev_eui == 0x1111);
    /* The same frame again is a replay. */
    assert_int_equal(ns_data_up(r, phy, len, &u, &diag), RH_EEXIST);
    assert_non_null(strstr(diag.text, "FCnt"));
    /* A flipped MIC bit is a MIC failure, an unknown DevAddr is not found. */
    phy[len - 1] ^= 1;
    assert_int_equal(ns_data_up(r, phy, len, &u, &diag), RH_EMIC);
    phy[len - 1] ^= 1;
    phy[1] ^= 0x10; /* DevAddr LSB */
    assert_int_equal(ns_data_up(r, phy, len, &u, &diag), RH_ENOTFOUND);
    assert_non_null(strstr(diag.text, "DevAddr"));
    /* A join-request is not a data uplink. */
    const uint8_t jr[23] = {0};
    assert_int_equal(ns_data_up(r, jr, sizeof jr, &u, &diag), RH_EINVAL);
    ns_registry_free(r);
    cJSON_Delete(root);
}

static void test_vector_join(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("lorawan_crypto_vectors.json");
    const cJSON *v = vector(root, "cs-join-request");
    const cJSON *in = cJSON_GetObjectItem(v, "inputs");
    devcfg_t d;
    memset(&d, 0, sizeof d);
    d.otaa = true;
    hexkey(in, "app_key", d.app_key);
    assert_int_equal(rh_eui64_parse(rh_test_str(in, "join_eui"), &d.join_eui, NULL), RH_OK);
    assert_int_equal(rh_eui64_parse(rh_test_str(in, "dev_eui"), &d.dev_eui, NULL), RH_OK);
    uint8_t want[32], phy[32];
    size_t wlen = rh_test_hex(rh_test_str(cJSON_GetObjectItem(v, "expected"), "phy_payload"), want,
                              sizeof want);
    /* The simulator's device builds exactly the vector's join-request. */
    sim_dev_t sd;
    assert_int_equal(sim_dev_init(&sd, &d, (uint16_t)cJSON_GetObjectItem(in, "dev_nonce")->valueint),
                     RH_OK);
    size_t len;
    assert_int_equal(sim_build_join(&sd, phy, &len), RH_OK);
    assert_int_equal(len, wlen);
    assert_memory_equal(phy, want, len);

    ns_opts_t o = opts_for("26000000/7");
    ns_registry_t *r;
    assert_int_equal(ns_registry_new(&o, &d, 1, &r, NULL), RH_OK);
    assert_true(ns_serves_join_eui(r, d.join_eui));
    assert_false(ns_serves_join_eui(r, d.join_eui + 1));
    ns_join_result_t jr;
    rh_diag_t diag;
    assert_int_equal(ns_join(r, phy, len, &jr, &diag), RH_OK);
    assert_int_equal(jr.accept_len, 17);
    assert_int_equal(jr.accept[0], 0x20);
    assert_true(ns_owns_devaddr(r, jr.devaddr));
    assert_int_equal(jr.dev_nonce, 771);
    /* The device opens the join-accept and derives the same session keys: its next uplink is
     * accepted and decrypted by the network server. */
    sim_rx_t rx;
    assert_int_equal(sim_accept_join(&sd, jr.accept, jr.accept_len, &rx), RH_OK);
    assert_true(rx.join_accept);
    assert_int_equal(rx.devaddr, jr.devaddr);
    const uint8_t pl[] = {0xde, 0xad, 0xbe, 0xef, 0x01};
    uint8_t up[64];
    assert_int_equal(sim_build_data(&sd, false, 7, pl, sizeof pl, up, &len), RH_OK);
    ns_up_t u;
    assert_int_equal(ns_data_up(r, up, len, &u, &diag), RH_OK);
    assert_int_equal(u.fport, 7);
    assert_int_equal(u.payload_len, sizeof pl);
    assert_memory_equal(u.payload, pl, sizeof pl);
    assert_ptr_equal(ns_find_addr(r, jr.devaddr), u.dev);

    /* The same DevNonce again is refused; a new one is accepted and keeps the DevAddr. */
    assert_int_equal(ns_join(r, phy, 23, &jr, &diag), RH_EEXIST);
    assert_non_null(strstr(diag.text, "DevNonce"));
    uint32_t addr = rx.devaddr;
    assert_int_equal(sim_build_join(&sd, phy, &len), RH_OK);
    assert_int_equal(ns_join(r, phy, len, &jr, &diag), RH_OK);
    assert_int_equal(jr.devaddr, addr);
    /* A corrupted MIC; an unknown DevEUI; a JoinEUI that is not the device's. */
    assert_int_equal(sim_build_join(&sd, phy, &len), RH_OK);
    phy[22] ^= 0x80;
    assert_int_equal(ns_join(r, phy, len, &jr, &diag), RH_EMIC);
    phy[22] ^= 0x80;
    phy[9] ^= 1; /* DevEUI LSB */
    assert_int_equal(ns_join(r, phy, len, &jr, &diag), RH_ENOTFOUND);
    phy[9] ^= 1;
    phy[1] ^= 1; /* JoinEUI LSB */
    assert_int_equal(ns_join(r, phy, len, &jr, &diag), RH_ENOTFOUND);
    assert_non_null(strstr(diag.text, "JoinEUI"));
    sim_dev_fini(&sd);
    ns_registry_free(r);
    cJSON_Delete(root);
}

static void test_vector_join_accept_and_downlink(void **state)
{
    (void)state;
    cJSON *root = rh_test_load_vectors("lorawan_crypto_vectors.json");
    /* Join-accept vector opened by the simulator's device. */
    const cJSON *v = vector(root, "cs-join-accept-1.0");
    const cJSON *in = cJSON_GetObjectItem(v, "inputs");
    devcfg_t d;
    memset(&d, 0, sizeof d);
    d.otaa = true;
    hexkey(in, "app_key", d.app_key);
    sim_dev_t sd;
    assert_int_equal(sim_dev_init(&sd, &d, 1), RH_OK);
    uint8_t phy[64];
    size_t len = rh_test_hex(rh_test_str(cJSON_GetObjectItem(v, "expected"), "phy_payload_encrypted"),
                             phy, sizeof phy);
    sim_rx_t rx;
    assert_int_equal(sim_accept_join(&sd, phy, len, &rx), RH_OK);
    assert_int_equal(rx.devaddr, 0x01020304u);
    phy[5] ^= 1;
    assert_int_equal(sim_accept_join(&sd, phy, len, &rx), RH_EMIC);
    sim_dev_fini(&sd);

    /* Downlink vector (ChirpStack passive-roaming sNS downlink) checked by the device model. */
    v = vector(root, "cs-pr-downlink");
    in = cJSON_GetObjectItem(v, "inputs");
    uint8_t nwks[16], apps[16];
    hexkey(in, "nwk_s_key", nwks);
    hexkey(in, "app_s_key", apps);
    devcfg_t a = abp(0x2222, 0x0a000000, nwks, apps);
    assert_int_equal(sim_dev_init(&sd, &a, 0), RH_OK);
    len = rh_test_hex(rh_test_str(cJSON_GetObjectItem(v, "expected"), "phy_payload"), phy, sizeof phy);
    assert_int_equal(sim_accept_data(&sd, phy, len, &rx), RH_OK);
    assert_int_equal(rx.fcnt, 5);
    assert_int_equal(rx.fport, 10);
    assert_int_equal(rx.len, 4);
    const uint8_t plain[] = {1, 2, 3, 4};
    assert_memory_equal(rx.payload, plain, 4);
    assert_false(rx.ack);
    assert_false(rx.confirmed);
    assert_int_equal(sim_accept_data(&sd, phy, len, &rx), RH_EEXIST);
    phy[len - 2] ^= 4;
    sd.fcnt_down_seen = false;
    assert_int_equal(sim_accept_data(&sd, phy, len, &rx), RH_EMIC);
    sim_dev_fini(&sd);
    cJSON_Delete(root);
}

static void test_fcnt_rollover_and_replay(void **state)
{
    (void)state;
    uint8_t nwks[16], apps[16];
    for (int i = 0; i < 16; i++) {
        nwks[i] = (uint8_t)i;
        apps[i] = (uint8_t)(0xF0 | i);
    }
    devcfg_t d = abp(0x3333, 0x26000042, nwks, apps);
    d.fcnt_up = 0xFFFE;
    ns_opts_t o = opts_for("26000000/7");
    ns_registry_t *r;
    assert_int_equal(ns_registry_new(&o, &d, 1, &r, NULL), RH_OK);
    sim_dev_t sd;
    assert_int_equal(sim_dev_init(&sd, &d, 0), RH_OK);
    uint8_t f[4][64];
    size_t fl[4];
    const uint8_t pl[] = {0x42};
    for (int i = 0; i < 3; i++) /* 0xFFFE, 0xFFFF, 0x10000 (0x0000 on air) */
        assert_int_equal(sim_build_data(&sd, false, 1, pl, 1, f[i], &fl[i]), RH_OK);
    ns_up_t u;
    rh_diag_t diag;
    assert_int_equal(ns_data_up(r, f[0], fl[0], &u, &diag), RH_OK);
    assert_int_equal(u.fcnt, 0xFFFE);
    assert_int_equal(ns_data_up(r, f[1], fl[1], &u, &diag), RH_OK);
    assert_int_equal(u.fcnt, 0xFFFF);
    assert_int_equal(ns_data_up(r, f[2], fl[2], &u, &diag), RH_OK);
    assert_int_equal(u.fcnt, 0x10000);
    assert_int_equal(u.payload[0], 0x42);
    /* Older frames come back: replays, not MIC failures. */
    assert_int_equal(ns_data_up(r, f[1], fl[1], &u, &diag), RH_EEXIST);
    assert_int_equal(ns_data_up(r, f[0], fl[0], &u, &diag), RH_EEXIST);
    assert_int_equal(ns_data_up(r, f[2], fl[2], &u, &diag), RH_EEXIST);
    /* A gap forward is fine. */
    sd.fcnt_up = 0x10010;
    assert_int_equal(sim_build_data(&sd, true, 2, pl, 1, f[3], &fl[3]), RH_OK);
    assert_int_equal(ns_data_up(r, f[3], fl[3], &u, &diag), RH_OK);
    assert_int_equal(u.fcnt, 0x10010);
    assert_true(u.confirmed);
    sim_dev_fini(&sd);
    ns_registry_free(r);

    /* The configured lowest counter: frames below it are replays. */
    d.fcnt_up = 10;
    assert_int_equal(ns_registry_new(&o, &d, 1, &r, NULL), RH_OK);
    devcfg_t low = d;
    low.fcnt_up = 5;
    assert_int_equal(sim_dev_init(&sd, &low, 0), RH_OK);
    assert_int_equal(sim_build_data(&sd, false, 1, pl, 1, f[0], &fl[0]), RH_OK);
    assert_int_equal(ns_data_up(r, f[0], fl[0], &u, &diag), RH_EEXIST);
    sd.fcnt_up = 10;
    assert_int_equal(sim_build_data(&sd, false, 1, pl, 1, f[0], &fl[0]), RH_OK);
    assert_int_equal(ns_data_up(r, f[0], fl[0], &u, &diag), RH_OK);
    assert_int_equal(u.fcnt, 10);
    sim_dev_fini(&sd);
    ns_registry_free(r);
}

static void test_shared_devaddr(void **state)
{
    (void)state;
    uint8_t k1[16], k2[16];
    memset(k1, 0x11, 16);
    memset(k2, 0x22, 16);
    devcfg_t d[2] = {abp(0xA1, 0x26000001, k1, k1), abp(0xA2, 0x26000001, k2, k2)};
    ns_opts_t o = opts_for("26000000/7");
    ns_registry_t *r;
    assert_int_equal(ns_registry_new(&o, d, 2, &r, NULL), RH_OK);
    for (int i = 0; i < 2; i++) {
        sim_dev_t sd;
        uint8_t f[64];
        size_t fl;
        assert_int_equal(sim_dev_init(&sd, &d[i], 0), RH_OK);
        assert_int_equal(sim_build_data(&sd, false, 1, (const uint8_t *)"x", 1, f, &fl), RH_OK);
        ns_up_t u;
        assert_int_equal(ns_data_up(r, f, fl, &u, NULL), RH_OK);
        assert_true(u.dev->cfg.dev_eui == d[i].dev_eui);
        sim_dev_fini(&sd);
    }
    ns_registry_free(r);
}

static void test_devaddr_allocation(void **state)
{
    (void)state;
    /* A /30 block holds 4 addresses; an ABP device occupies one of them. */
    devcfg_t d[5];
    memset(d, 0, sizeof d);
    uint8_t k[16];
    memset(k, 7, 16);
    d[0] = abp(0x10, 0x26000002, k, k);
    for (int i = 1; i < 5; i++) {
        d[i].otaa = true;
        d[i].dev_eui = 0x20 + (uint64_t)i;
        d[i].join_eui = 0x0101010101010101ull;
        memset(d[i].app_key, i, 16);
    }
    ns_opts_t o = opts_for("26000000/30");
    ns_registry_t *r;
    assert_int_equal(ns_registry_new(&o, d, 5, &r, NULL), RH_OK);
    uint32_t seen[4] = {0};
    for (int i = 1; i < 5; i++) {
        sim_dev_t sd;
        uint8_t f[32];
        size_t fl;
        assert_int_equal(sim_dev_init(&sd, &d[i], 100), RH_OK);
        assert_int_equal(sim_build_join(&sd, f, &fl), RH_OK);
        ns_join_result_t jr;
        rh_diag_t diag;
        int rc = ns_join(r, f, fl, &jr, &diag);
        if (i < 4) {
            assert_int_equal(rc, RH_OK);
            assert_true((jr.devaddr & 0xFFFFFFFCu) == 0x26000000u);
            assert_int_not_equal(jr.devaddr, 0x26000002u);
            for (int k2 = 1; k2 < i; k2++)
                assert_int_not_equal(seen[k2], jr.devaddr);
            seen[i] = jr.devaddr;
        } else {
            assert_int_equal(rc, RH_EFULL);
            assert_non_null(strstr(diag.text, "DevAddr"));
        }
        sim_dev_fini(&sd);
    }
    ns_registry_free(r);
}

static void test_downlinks(void **state)
{
    (void)state;
    uint8_t nwks[16], apps[16];
    memset(nwks, 0x5a, 16);
    memset(apps, 0xa5, 16);
    devcfg_t d = abp(0x4444, 0x26001234, nwks, apps);
    d.fcnt_down = 7;
    ns_opts_t o = opts_for("26000000/7");
    ns_registry_t *r;
    assert_int_equal(ns_registry_new(&o, &d, 1, &r, NULL), RH_OK);
    ns_device_t *dev = ns_find_eui(r, 0x4444);
    assert_non_null(dev);
    sim_dev_t sd;
    assert_int_equal(sim_dev_init(&sd, &d, 0), RH_OK);
    ns_dl_frame_t f;
    bool built;
    size_t dropped;
    sim_rx_t rx;
    /* Nothing to send. */
    assert_int_equal(ns_build_downlink(dev, false, 51, &f, &built, &dropped), RH_OK);
    assert_false(built);
    /* ACK only: no FPort, FCntDown 7. */
    assert_int_equal(ns_build_downlink(dev, true, 51, &f, &built, &dropped), RH_OK);
    assert_true(built);
    assert_int_equal(f.fcnt, 7);
    assert_int_equal(f.phy[0], 0x60);
    assert_int_equal(sim_accept_data(&sd, f.phy, f.len, &rx), RH_OK);
    assert_true(rx.ack);
    assert_false(rx.has_fport);
    assert_int_equal(rx.fcnt, 7);
    /* Two queued items: the first goes with FPending, then the second (confirmed). */
    const uint8_t a1[] = {1, 2, 3}, a2[] = {9, 8, 7, 6};
    assert_int_equal(ns_enqueue(dev, 10, a1, sizeof a1, false), RH_OK);
    assert_int_equal(ns_enqueue(dev, 11, a2, sizeof a2, true), RH_OK);
    assert_int_equal(ns_build_downlink(dev, false, 51, &f, &built, &dropped), RH_OK);
    assert_int_equal(sim_accept_data(&sd, f.phy, f.len, &rx), RH_OK);
    assert_true(rx.fpending);
    assert_false(rx.ack);
    assert_int_equal(rx.fport, 10);
    assert_int_equal(rx.len, 3);
    assert_memory_equal(rx.payload, a1, 3);
    assert_int_equal(ns_build_downlink(dev, true, 51, &f, &built, &dropped), RH_OK);
    assert_true(f.confirmed);
    assert_int_equal(f.phy[0], 0xA0);
    assert_int_equal(sim_accept_data(&sd, f.phy, f.len, &rx), RH_OK);
    assert_false(rx.fpending);
    assert_true(rx.ack && rx.confirmed);
    assert_memory_equal(rx.payload, a2, 4);
    assert_true(sd.ack_next); /* the device will ACK in its next uplink */
    uint8_t up[64];
    size_t ul;
    assert_int_equal(sim_build_data(&sd, false, 1, a1, 1, up, &ul), RH_OK);
    ns_up_t u;
    assert_int_equal(ns_data_up(r, up, ul, &u, NULL), RH_OK);
    assert_true(u.ack);
    /* Too large for the window: dropped and reported; queue limits. */
    uint8_t big[200] = {0};
    assert_int_equal(ns_enqueue(dev, 1, big, sizeof big, false), RH_OK);
    assert_int_equal(ns_build_downlink(dev, false, 51, &f, &built, &dropped), RH_OK);
    assert_false(built);
    assert_int_equal(dropped, 1);
    assert_int_equal(ns_enqueue(dev, 0, a1, 1, false), RH_EINVAL);
    assert_int_equal(ns_enqueue(dev, 224, a1, 1, false), RH_EINVAL);
    assert_int_equal(ns_enqueue(dev, 1, big, 243, false), RH_ERANGE);
    for (unsigned i = 0; i < NS_MAX_QUEUE; i++)
        assert_int_equal(ns_enqueue(dev, 1, a1, 1, false), RH_OK);
    assert_int_equal(ns_enqueue(dev, 1, a1, 1, false), RH_EFULL);
    assert_int_equal(ns_max_payload(0, 0), 51);
    assert_int_equal(ns_max_payload(0, 3), 115);
    assert_int_equal(ns_max_payload(0, 5), 222);
    sim_dev_fini(&sd);
    ns_registry_free(r);
}

static void test_uplink_json(void **state)
{
    (void)state;
    ns_device_t dev;
    memset(&dev, 0, sizeof dev);
    dev.cfg.dev_eui = 0x0102030405060708ull;
    ns_up_t u;
    memset(&u, 0, sizeof u);
    u.dev = &dev;
    u.devaddr = 0x26000001;
    u.fcnt = 70000;
    u.has_fport = true;
    u.fport = 3;
    u.payload[0] = 0xAB;
    u.payload_len = 1;
    u.confirmed = true;
    ns_rxinfo_t gw[2] = {{.id = "00800000a0000001", .rssi = -70, .snr = 7.5, .has_rssi = true,
                          .has_snr = true, .has_loc = true, .lat = 52.5, .lon = 4.25},
                         {.id = "a0000002", .snr = -2, .has_snr = true}}; /* RSSI stripped */
    char *s = ns_uplink_json(&u, gw, 2, true, "000505", 1700000000123);
    cJSON *o = cJSON_Parse(s);
    assert_non_null(o);
    assert_string_equal(rh_test_str(o, "time"), "2023-11-14T22:13:20.123Z");
    assert_string_equal(rh_test_str(o, "dev_eui"), "0102030405060708");
    assert_string_equal(rh_test_str(o, "dev_addr"), "26000001");
    assert_int_equal(cJSON_GetObjectItem(o, "fcnt")->valueint, 70000);
    assert_int_equal(cJSON_GetObjectItem(o, "fport")->valueint, 3);
    assert_string_equal(rh_test_str(o, "payload_hex"), "ab");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "confirmed")));
    assert_string_equal(rh_test_str(o, "via"), "roaming");
    assert_string_equal(rh_test_str(o, "forwarder_net_id"), "000505");
    const cJSON *g = cJSON_GetObjectItem(o, "gateways");
    assert_int_equal(cJSON_GetArraySize(g), 2);
    assert_string_equal(rh_test_str(cJSON_GetArrayItem(g, 0), "id"), "00800000a0000001");
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 0), "lat")->valuedouble == 52.5);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 1), "lat")));
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 1), "snr")->valuedouble == -2);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 0), "rssi")->valuedouble == -70);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(g, 1), "rssi")));
    cJSON_Delete(o);
    cJSON_free(s);
    u.has_fport = false;
    s = ns_uplink_json(&u, gw, 0, false, NULL, 0);
    o = cJSON_Parse(s);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "fport")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "forwarder_net_id")));
    assert_string_equal(rh_test_str(o, "via"), "local");
    cJSON_Delete(o);
    cJSON_free(s);
}

static void test_registry_errors(void **state)
{
    (void)state;
    ns_opts_t o = opts_for("26000000/7");
    ns_registry_t *r;
    rh_diag_t d;
    o.n_blocks = 0;
    assert_int_equal(ns_registry_new(&o, NULL, 0, &r, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "dev_addr_blocks"));
    o = opts_for("26000000/7");
    o.net_id = 0x1000000;
    assert_int_equal(ns_registry_new(&o, NULL, 0, &r, &d), RH_EINVAL);
    ns_eui_prefix_t p;
    assert_int_equal(ns_eui_prefix_parse("70B3D57ED0000000/36", &p, &d), RH_OK);
    assert_int_equal(p.len, 36);
    assert_int_equal(ns_eui_prefix_parse("70B3D57ED0000001/36", &p, &d), RH_EINVAL);
    assert_int_equal(ns_eui_prefix_parse("70B3D57ED0000001/65", &p, &d), RH_EINVAL);
    assert_int_equal(ns_eui_prefix_parse("0000000000000000/0", &p, &d), RH_OK);
    assert_int_equal(ns_eui_prefix_parse("xyz", &p, &d), RH_EINVAL);
    assert_non_null(strstr(d.text, "JoinEUI"));
    /* A JoinEUI prefix of length 36 serves everything under it. */
    o = opts_for("26000000/7");
    o.join_euis[0] = (ns_eui_prefix_t){0x70B3D57ED0000000ull, 36};
    assert_int_equal(ns_registry_new(&o, NULL, 0, &r, &d), RH_OK);
    assert_true(ns_serves_join_eui(r, 0x70B3D57ED0000FFFull));
    assert_true(ns_serves_join_eui(r, 0x70B3D57ED1000000ull));
    assert_false(ns_serves_join_eui(r, 0x70B3D57EE0000000ull));
    assert_null(ns_find_eui(r, 1));
    ns_registry_free(r);
    ns_registry_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vector_uplink),
        cmocka_unit_test(test_vector_join),
        cmocka_unit_test(test_vector_join_accept_and_downlink),
        cmocka_unit_test(test_fcnt_rollover_and_replay),
        cmocka_unit_test(test_shared_devaddr),
        cmocka_unit_test(test_devaddr_allocation),
        cmocka_unit_test(test_downlinks),
        cmocka_unit_test(test_uplink_json),
        cmocka_unit_test(test_registry_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
