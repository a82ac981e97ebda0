/*
 * test_rp_index.c — the compiled index updated write by write (rp_index.c deltas) answers
 * exactly like an index freshly built from LMDB and like LMDB itself, after every kind of write
 * (block add / delete / owner change, policy set / delete, join route add / delete, NetID
 * cascade, whole-kind clear, batches changing one key several times), in randomized sequences;
 * and a version is never used for a snapshot it does not match (an active reader keeps its
 * snapshot, a commit whose delta is not applied yet is read from LMDB, a write the index did
 * not see as a delta — another process — forces a rebuild instead of a wrong delta); and, with
 * the builder thread running while one thread writes and two read, every snapshot the index
 * serves answers like LMDB in that same snapshot.
 */
#include "rp_fixture.h"
#include "rp_internal.h"

#include "lw_netid.h"

#include <pthread.h>
#include <stdatomic.h>

static uint64_t rs = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

/* Type-0 NetIDs 0x00000A..0x00000D: DevAddr prefixes (NwkID << 25)/7. */
#define NNET 4
static uint32_t net(unsigned i) { return 0x00000Au + i; }
static uint32_t net_prefix(unsigned i) { return (0x0Au + i) << 25; }
static const char *const tenants[] = {"", "a", "b"};

static void put_networks(fx_t *f)
{
    for (unsigned i = 0; i < NNET; i++) {
        Roamhub__V1__Network n = ROAMHUB__V1__NETWORK__INIT;
        n.net_id = net(i);
        rh_diag_t d;
        assert_int_equal(rp_put(f->db, "t", RP_KIND_NETWORK, &n.base, RP_PUT_UPSERT, &d), RH_OK);
    }
}

/* Known block keys (for deletes, owner changes and probe addresses). */
static uint32_t keys_v[4096];
static uint8_t keys_l[4096];
static size_t nkeys;

static void random_block(Roamhub__V1__DevAddrBlock *b)
{
    unsigned i = (unsigned)(rnd() % NNET);
    if (nkeys && rnd() % 3 == 0) { /* an existing key: owner change */
        size_t k = rnd() % nkeys;
        b->prefix = keys_v[k];
        b->length = keys_l[k];
        i = (unsigned)((keys_v[k] >> 25) - 0x0A) % NNET;
    } else {
        unsigned len = 7 + (unsigned)(rnd() % 20);
        b->length = len;
        b->prefix = (net_prefix(i) | ((uint32_t)rnd() & 0x01FFFFFFu)) & rp__mask32(len);
    }
    b->net_id = net(i);
    b->tenant_id = (char *)tenants[rnd() % 3];
    static char clu[8];
    snprintf(clu, sizeof clu, "c%u", (unsigned)(rnd() % 4));
    b->cluster_id = rnd() % 2 ? clu : "";
}

static void remember(uint32_t v, unsigned l)
{
    for (size_t k = 0; k < nkeys; k++)
        if (keys_v[k] == v && keys_l[k] == l)
            return;
    if (nkeys < 4096) {
        keys_v[nkeys] = v;
        keys_l[nkeys++] = (uint8_t)l;
    }
}

static void random_policy(Roamhub__V1__RoutingPolicy *p, Roamhub__V1__UplinkPolicy *up,
                          Roamhub__V1__DownlinkPolicy *dn)
{
    p->forwarder_net_id = net((unsigned)(rnd() % NNET));
    p->forwarder_tenant_id = (char *)tenants[rnd() % 2];
    p->has_home = rnd() % 4 != 0;
    p->home_net_id = p->has_home ? net((unsigned)(rnd() % NNET)) : 0;
    p->home_tenant_id = (char *)(p->has_home ? tenants[rnd() % 2] : "");
    unsigned fl = (unsigned)rnd();
    up->join_request = fl & 1;
    up->mac_data = (fl >> 1) & 1;
    up->application_data = (fl >> 2) & 1;
    up->signal_quality = (fl >> 3) & 1;
    up->localization = (fl >> 4) & 1;
    dn->join_accept = (fl >> 5) & 1;
    dn->mac_data = (fl >> 6) & 1;
    dn->application_data = (fl >> 7) & 1;
    p->uplink = (fl >> 8) & 3 ? up : NULL; /* sometimes absent: all off */
    p->downlink = dn;
}

/* One random write operation inside transaction t. */
static void random_op(rp_txn_t *t)
{
    rh_diag_t d;
    unsigned op = (unsigned)(rnd() % 100);
    if (op < 35) {
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        random_block(&b);
        if (rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d) == RH_OK)
            remember(b.prefix, b.length);
    } else if (op < 50) {
        if (!nkeys)
            return;
        size_t k = rnd() % nkeys;
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        b.prefix = keys_v[k];
        b.length = keys_l[k];
        assert_int_equal(rp_txn_delete(t, RP_KIND_BLOCK, &b.base, NULL, &d), RH_OK);
    } else if (op < 75) {
        Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
        Roamhub__V1__UplinkPolicy up = ROAMHUB__V1__UPLINK_POLICY__INIT;
        Roamhub__V1__DownlinkPolicy dn = ROAMHUB__V1__DOWNLINK_POLICY__INIT;
        random_policy(&p, &up, &dn);
        assert_int_equal(rp_txn_put(t, RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d), RH_OK);
    } else if (op < 88) {
        Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
        Roamhub__V1__UplinkPolicy up = ROAMHUB__V1__UPLINK_POLICY__INIT;
        Roamhub__V1__DownlinkPolicy dn = ROAMHUB__V1__DOWNLINK_POLICY__INIT;
        random_policy(&p, &up, &dn);
        assert_int_equal(rp_txn_delete(t, RP_KIND_POLICY, &p.base, NULL, &d), RH_OK);
    } else if (op < 96) {
        Roamhub__V1__JoinRoute j = ROAMHUB__V1__JOIN_ROUTE__INIT;
        j.join_eui_prefix = (rnd() % 16) << 56;
        j.join_eui_length = 8;
        j.home_net_id = net((unsigned)(rnd() % NNET));
        if (rnd() % 2)
            assert_int_equal(rp_txn_put(t, RP_KIND_JOIN_ROUTE, &j.base, RP_PUT_UPSERT, &d),
                             RH_OK);
        else
            assert_int_equal(rp_txn_delete(t, RP_KIND_JOIN_ROUTE, &j.base, NULL, &d), RH_OK);
    } else if (op < 99) {
        assert_int_equal(rp_txn_clear_net_id(t, net((unsigned)(rnd() % NNET)), &d), RH_OK);
    } else {
        assert_int_equal(rp_txn_clear(t, rnd() % 2 ? RP_KIND_BLOCK : RP_KIND_POLICY, &d), RH_OK);
    }
}

static void same_block(const rp_block_match_t *a, const rp_block_match_t *b, uint32_t addr)
{
    if (a->found != b->found)
        fail_msg("DevAddr %08X: found %d vs %d", addr, a->found, b->found);
    if (!a->found)
        return;
    if (a->prefix != b->prefix || a->length != b->length || a->owner.net_id != b->owner.net_id ||
        strcmp(a->owner.tenant_id, b->owner.tenant_id) || strcmp(a->cluster_id, b->cluster_id))
        fail_msg("DevAddr %08X: %08X/%u %06X/%s/%s vs %08X/%u %06X/%s/%s", addr, a->prefix,
                 a->length, a->owner.net_id, a->owner.tenant_id, a->cluster_id, b->prefix,
                 b->length, b->owner.net_id, b->owner.tenant_id, b->cluster_id);
}

/* The published (incrementally updated) index, a freshly built one and LMDB agree. */
static void check_against_oracles(fx_t *f)
{
    rp_snap_t *fresh;
    assert_int_equal(rp__index_fresh(f->db, &fresh), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r)); /* refreshed: the index matches the snapshot */
    assert_int_equal(rp_reader_begin(f->r2), RH_OK);
    uint32_t probes[3 * 4096 + 512];
    size_t np = 0;
    for (size_t k = 0; k < nkeys; k++) {
        probes[np++] = keys_v[k];
        probes[np++] = keys_v[k] | ~rp__mask32(keys_l[k]);
        probes[np++] = keys_v[k] - 1;
    }
    for (int i = 0; i < 512; i++)
        probes[np++] = net_prefix((unsigned)(rnd() % NNET)) | ((uint32_t)rnd() & 0x01FFFFFF);
    for (size_t i = 0; i < np; i++) {
        rp_block_match_t a, b, c;
        memset(&c, 0, sizeof c);
        assert_int_equal(rp_lookup_devaddr(f->r, probes[i], &a), RH_OK);
        assert_int_equal(rp_lookup_devaddr(f->r2, probes[i], &b), RH_OK);
        assert_int_equal(rp__snap_devaddr(fresh, probes[i], &c), RH_OK);
        same_block(&a, &b, probes[i]);
        same_block(&a, &c, probes[i]);
    }
    /* every policy key shape over the parties in use */
    for (unsigned fn = 0; fn < NNET; fn++)
        for (unsigned ft = 0; ft < 2; ft++)
            for (unsigned hn = 0; hn < NNET; hn++)
                for (unsigned ht = 0; ht < 2; ht++) {
                    rp_party_t fw, hm;
                    rp_party_set(&fw, net(fn), tenants[ft], NULL);
                    rp_party_set(&hm, net(hn), tenants[ht], NULL);
                    rp_policy_eff_t e1, e2;
                    assert_int_equal(rp_policy_effective(f->r, &fw, &hm, &e1), RH_OK);
                    assert_int_equal(rp_policy_effective(f->r2, &fw, &hm, &e2), RH_OK);
                    assert_int_equal(e1.source, e2.source);
                    assert_memory_equal(&e1.flags, &e2.flags, sizeof e1.flags);
                    for (int hh = 0; hh < 2; hh++) {
                        uint8_t key[RP_KEY_POLICY];
                        rp__key_policy(key, net(fn), tenants[ft], hh, hh ? net(hn) : 0,
                                       hh ? tenants[ht] : "");
                        const rp_flags_t *x = rp__snap_policy(f->r->snap, key);
                        const rp_flags_t *y = rp__snap_policy(fresh, key);
                        assert_int_equal(x != NULL, y != NULL);
                        if (x)
                            assert_memory_equal(x, y, sizeof *x);
                    }
                }
    rp_reader_end(f->r);
    rp_reader_end(f->r2);
    rp__snap_free(fresh);
}

static void test_random_sequences(void **state)
{
    fx_t *f = *state;
    nkeys = 0;
    put_networks(f);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    uint64_t d0, r0, d1, r1;
    rp__index_counts(f->db, &d0, &r0);
    for (int step = 0; step < 600; step++) {
        rp_txn_t *t;
        rh_diag_t d;
        assert_int_equal(rp_txn_begin(f->db, "t", 0, &t, &d), RH_OK);
        int ops = rnd() % 4 == 0 ? 1 + (int)(rnd() % 12) : 1; /* some batches */
        for (int i = 0; i < ops; i++)
            random_op(t);
        assert_int_equal(rp_txn_commit(t, &d), RH_OK);
        int check = step % 3 == 0 || step > 560;
        if (check || rnd() % 3 == 0) /* else several commits' deltas are applied at once */
            assert_int_equal(rp_db_refresh(f->db), RH_OK);
        if (check)
            check_against_oracles(f);
    }
    rp__index_counts(f->db, &d1, &r1);
    /* the sequence ran mostly as deltas: rebuilds only for clears (1 %) */
    print_message("deltas %llu rebuilds %llu\n", (unsigned long long)(d1 - d0),
                  (unsigned long long)(r1 - r0));
    assert_true(d1 - d0 > 300);
    assert_true(r1 - r0 < 60);
}

/* Each write kind on its own goes through a delta, not a rebuild. */
static void test_each_kind_is_a_delta(void **state)
{
    fx_t *f = *state;
    nkeys = 0;
    put_networks(f);
    assert_int_equal(fx_block(f, 0x14000000, 7, net(0), NULL, 0, NULL), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    uint64_t d0, r0, d1, r1;
    rp__index_counts(f->db, &d0, &r0);
    rh_diag_t d;
    /* block add, owner change (tenant/cluster), delete */
    assert_int_equal(fx_block(f, 0x14100000, 12, net(0), "a", 0, &d), RH_OK);
    assert_int_equal(fx_lookup(f, 0x14100001).owner.tenant_id[0], 'a');
    assert_int_equal(fx_block(f, 0x14100000, 12, net(0), "b", 0, &d), RH_OK);
    assert_int_equal(fx_lookup(f, 0x14100001).owner.tenant_id[0], 'b');
    Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
    b.prefix = 0x14100000;
    b.length = 12;
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_BLOCK, &b.base, NULL, &d), RH_OK);
    assert_int_equal(fx_lookup(f, 0x14100001).length, 7); /* back to the outer block */
    /* delete of a base block: the walk must skip the tombstone */
    b.prefix = 0x14000000;
    b.length = 7;
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_BLOCK, &b.base, NULL, &d), RH_OK);
    assert_false(fx_lookup(f, 0x14100001).found);
    /* policy set, change, delete */
    rp_party_t fw, hm;
    rp_party_set(&fw, net(1), NULL, NULL);
    rp_party_set(&hm, net(2), NULL, NULL);
    assert_int_equal(fx_policy(f, net(1), NULL, 1, net(2), NULL, 0x07), RH_OK);
    assert_int_equal(fx_effective(f, &fw, &hm).flags.up_application_data, 1);
    assert_int_equal(fx_policy(f, net(1), NULL, 1, net(2), NULL, 0x03), RH_OK);
    assert_int_equal(fx_effective(f, &fw, &hm).flags.up_application_data, 0);
    Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
    p.forwarder_net_id = net(1);
    p.has_home = 1;
    p.home_net_id = net(2);
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_POLICY, &p.base, NULL, &d), RH_OK);
    assert_int_equal(fx_effective(f, &fw, &hm).source, RP_SRC_NONE);
    rp__index_counts(f->db, &d1, &r1);
    assert_int_equal(r1, r0);     /* no rebuild */
    assert_int_equal(d1 - d0, 7); /* one delta per write */
    /* join routes do not change routing content: the index is revalidated, not rebuilt */
    Roamhub__V1__JoinRoute j = ROAMHUB__V1__JOIN_ROUTE__INIT;
    j.join_eui_prefix = 0x70B3D57ED0000000ull;
    j.join_eui_length = 40;
    j.home_net_id = net(1);
    assert_int_equal(rp_put(f->db, "t", RP_KIND_JOIN_ROUTE, &j.base, RP_PUT_UPSERT, &d), RH_OK);
    assert_int_equal(rp_delete(f->db, "t", RP_KIND_JOIN_ROUTE, &j.base, NULL, &d), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r));
    rp_reader_end(f->r);
    /* NetID cascade: several deletes in one transaction, one delta */
    assert_int_equal(fx_block(f, 0x18000000, 7, net(2), NULL, 0, &d), RH_OK);
    assert_int_equal(fx_block(f, 0x18400000, 10, net(2), "a", 0, &d), RH_OK);
    assert_int_equal(fx_policy(f, net(2), NULL, 0, 0, NULL, 0xff), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    rp__index_counts(f->db, &d0, &r0);
    rp_txn_t *t;
    assert_int_equal(rp_txn_begin(f->db, "t", 0, &t, &d), RH_OK);
    assert_int_equal(rp_txn_clear_net_id(t, net(2), &d), RH_OK);
    assert_int_equal(rp_txn_commit(t, &d), RH_OK);
    assert_false(fx_lookup(f, 0x18400001).found);
    rp_party_set(&fw, net(2), NULL, NULL);
    assert_int_equal(fx_effective(f, &fw, &hm).source, RP_SRC_NONE);
    rp__index_counts(f->db, &d1, &r1);
    assert_int_equal(r1, r0);
    assert_int_equal(d1 - d0, 1);
    check_against_oracles(f);
}

/* Snapshots: a version is used only for the snapshot it holds. */
static void test_never_stale(void **state)
{
    fx_t *f = *state;
    nkeys = 0;
    put_networks(f);
    rh_diag_t d;
    assert_int_equal(fx_block(f, 0x14000000, 7, net(0), "a", 0, &d), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);

    /* 1. a reader active across a write and the delta's publication keeps its snapshot */
    rp_block_match_t m;
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r));
    assert_int_equal(fx_block(f, 0x14000000, 7, net(0), "b", 0, &d), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK); /* r is active in this thread: deferred */
    assert_int_equal(rp_lookup_devaddr(f->r, 0x14000001, &m), RH_OK);
    assert_string_equal(m.owner.tenant_id, "a");
    rp_reader_end(f->r);
    assert_string_equal(fx_lookup(f, 0x14000001).owner.tenant_id, "b");

    /* 2. committed, delta not applied yet: the reader reads LMDB and sees the write */
    assert_int_equal(fx_block(f, 0x14000000, 7, net(0), "c", 0, &d), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_false(rp_reader_uses_index(f->r));
    assert_int_equal(rp_lookup_devaddr(f->r, 0x14000001, &m), RH_OK);
    assert_string_equal(m.owner.tenant_id, "c");
    rp_reader_end(f->r);
    assert_string_equal(fx_lookup(f, 0x14000001).owner.tenant_id, "c");

    /* 3. a routing write the index never got as a delta (as from another process), followed by
     *    one of ours: our delta must not be applied on the stale version; the index rebuilds */
    uint64_t d0, r0, d1, r1;
    rp__index_counts(f->db, &d0, &r0);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->db->env, NULL, 0, &txn), 0);
    Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
    b.prefix = 0x14000000;
    b.length = 7;
    b.net_id = net(0);
    b.tenant_id = "foreign";
    uint8_t val[64], key[RP_KEY_BLOCK];
    size_t vl = roamhub__v1__dev_addr_block__pack(&b, val);
    rp__key_block(key, b.prefix, b.length);
    MDB_val k = {sizeof key, key}, v = {vl, val};
    assert_int_equal(mdb_put(txn, f->db->dbi[RP_DBI_BLOCK], &k, &v, 0), 0);
    assert_int_equal(rp__bump_gen(txn, f->db->dbi[RP_DBI_META]), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    assert_int_equal(fx_policy(f, net(1), NULL, 0, 0, NULL, 0x04), RH_OK);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_false(rp_reader_uses_index(f->r)); /* no version holds this state yet */
    rp_reader_end(f->r);
    assert_string_equal(fx_lookup(f, 0x14000001).owner.tenant_id, "foreign");
    rp__index_counts(f->db, &d1, &r1);
    assert_int_equal(d1, d0);
    assert_int_equal(r1, r0 + 1);
    rp_party_t fw, hm;
    rp_party_set(&fw, net(1), NULL, NULL);
    rp_party_set(&hm, net(0), NULL, NULL);
    assert_int_equal(fx_effective(f, &fw, &hm).flags.up_application_data, 1);

    /* 4. a write without routing content (statistics) keeps the version valid */
    rp_stats_item_t it = {0};
    it.minute = 1000;
    it.forwarder_net_id = net(1);
    it.home_net_id = net(0);
    it.count = 1;
    assert_int_equal(rp_stats_add(f->db, &it, 1, &d), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    rp__index_counts(f->db, &d0, &r0);
    assert_int_equal(r0, r1);
    assert_int_equal(rp_reader_begin(f->r), RH_OK);
    assert_true(rp_reader_uses_index(f->r));
    rp_reader_end(f->r);
}

/* Many tombstones: the builder merges by rebuilding, and answers stay right throughout. */
static void test_overlay_merge(void **state)
{
    fx_t *f = *state;
    nkeys = 0;
    put_networks(f);
    rh_diag_t d;
    rp_txn_t *t;
    assert_int_equal(rp_txn_begin(f->db, "t", 0, &t, &d), RH_OK);
    for (uint32_t i = 0; i < 700; i++) {
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        b.prefix = net_prefix(0) | i << 8;
        b.length = 24;
        b.net_id = net(0);
        assert_int_equal(rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d), RH_OK);
    }
    /* a clear in the same transaction: no delta, so the blocks land in a rebuilt base */
    assert_int_equal(rp_txn_clear(t, RP_KIND_POLICY, &d), RH_OK);
    assert_int_equal(rp_txn_commit(t, &d), RH_OK);
    assert_int_equal(rp_db_refresh(f->db), RH_OK);
    uint64_t d0, r0, d1, r1;
    rp__index_counts(f->db, &d0, &r0);
    for (uint32_t i = 0; i < 600; i++) {
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        b.prefix = net_prefix(0) | i << 8;
        b.length = 24;
        assert_int_equal(rp_delete(f->db, "t", RP_KIND_BLOCK, &b.base, NULL, &d), RH_OK);
        assert_int_equal(rp_db_refresh(f->db), RH_OK);
        if (i % 50 == 0 || i > 505) {
            assert_false(fx_lookup(f, net_prefix(0) | i << 8 | 1).found);
            assert_true(fx_lookup(f, net_prefix(0) | (i + 1) << 8).found);
        }
    }
    rp__index_counts(f->db, &d1, &r1);
    assert_true(r1 > r0);      /* merged at least once */
    assert_true(d1 - d0 > 500); /* the rest as deltas */
    keys_v[0] = net_prefix(0);
    keys_l[0] = 7;
    nkeys = 1;
    check_against_oracles(f);
}


/* With the real builder thread: one thread writes (random operations, batches), two threads
 * read; inside every snapshot served by the index, the index and LMDB give the same answers
 * for random DevAddrs and policy queries (the same reader, the index detached for the second
 * lookup). */
typedef struct conc {
    fx_t *f;
    rp_reader_t *r;
    atomic_int *stop;
    atomic_long mismatches, indexed, snapshots;
    char first[256];
} conc_t;

static void *conc_reader(void *arg)
{
    conc_t *c = arg;
    uint64_t x = (uint64_t)(uintptr_t)arg | 1;
    while (!atomic_load(c->stop)) {
        if (rp_reader_begin(c->r) != RH_OK)
            continue;
        atomic_fetch_add(&c->snapshots, 1);
        rp_snap_t *s = c->r->snap;
        if (s) {
            atomic_fetch_add(&c->indexed, 1);
            for (int i = 0; i < 16; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                uint32_t a = net_prefix((unsigned)(x % NNET)) | ((uint32_t)(x >> 20) & 0x01FFFFFF);
                rp_block_match_t m1, m2;
                rp_party_t fw, hm;
                rp_party_set(&fw, net((unsigned)(x >> 8) % NNET), tenants[(x >> 12) & 1], NULL);
                rp_party_set(&hm, net((unsigned)(x >> 16) % NNET), tenants[(x >> 14) & 1], NULL);
                rp_policy_eff_t e1, e2;
                rp_lookup_devaddr(c->r, a, &m1);
                rp_policy_effective(c->r, &fw, &hm, &e1);
                c->r->snap = NULL; /* the same snapshot, read from LMDB */
                rp_lookup_devaddr(c->r, a, &m2);
                rp_policy_effective(c->r, &fw, &hm, &e2);
                c->r->snap = s;
                int bad = m1.found != m2.found ||
                          (m1.found && (m1.prefix != m2.prefix || m1.length != m2.length ||
                                        m1.owner.net_id != m2.owner.net_id ||
                                        strcmp(m1.owner.tenant_id, m2.owner.tenant_id) ||
                                        strcmp(m1.cluster_id, m2.cluster_id))) ||
                          e1.source != e2.source || memcmp(&e1.flags, &e2.flags, sizeof e1.flags);
                if (bad && atomic_fetch_add(&c->mismatches, 1) == 0)
                    snprintf(c->first, sizeof c->first,
                             "DevAddr %08X: %d %08X/%u %06X/%s vs %d %08X/%u %06X/%s; policy "
                             "%06X/%s->%06X/%s: source %d vs %d; T %llu",
                             a, m1.found, m1.prefix, m1.length, m1.owner.net_id,
                             m1.owner.tenant_id, m2.found, m2.prefix, m2.length,
                             m2.owner.net_id, m2.owner.tenant_id, fw.net_id, fw.tenant_id,
                             hm.net_id, hm.tenant_id, e1.source, e2.source,
                             (unsigned long long)mdb_txn_id(c->r->txn));
            }
        }
        rp_reader_end(c->r);
    }
    return NULL;
}

static void test_concurrent_with_builder(void **state)
{
    (void)state;
    rp_db_opts_t o = {0};
    o.no_sync = 1; /* the builder thread runs */
    fx_t *f = fx_open_opts(&o);
    nkeys = 0;
    put_networks(f);
    atomic_int stop = 0;
    conc_t c[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].f = f;
        c[i].stop = &stop;
        assert_int_equal(rp_reader_new(f->db, &c[i].r, NULL), RH_OK);
        assert_int_equal(pthread_create(&th[i], NULL, conc_reader, &c[i]), 0);
    }
    for (int step = 0; step < 1500; step++) {
        rp_txn_t *t;
        rh_diag_t d;
        assert_int_equal(rp_txn_begin(f->db, "t", 0, &t, &d), RH_OK);
        int ops = rnd() % 4 == 0 ? 1 + (int)(rnd() % 8) : 1;
        for (int i = 0; i < ops; i++)
            random_op(t);
        assert_int_equal(rp_txn_commit(t, &d), RH_OK);
        if (step % 2)
            usleep(300); /* let the builder catch up now and then: snapshots the index serves */
    }
    atomic_store(&stop, 1);
    long snaps = 0, indexed = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        rp_reader_free(c[i].r);
        if (c[i].mismatches)
            fail_msg("reader %d: %ld mismatches, first: %s", i, (long)c[i].mismatches,
                     c[i].first);
        snaps += c[i].snapshots;
        indexed += c[i].indexed;
    }
    uint64_t dl, rb;
    rp__index_counts(f->db, &dl, &rb);
    print_message("snapshots %ld, served by the index %ld; deltas %llu rebuilds %llu\n", snaps,
                  indexed, (unsigned long long)dl, (unsigned long long)rb);
    assert_true(indexed > 0);
    assert_true(dl > 0);
    void *sp = f;
    fx_teardown(&sp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_kind_is_a_delta, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_never_stale, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_overlay_merge, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_random_sequences, fx_setup, fx_teardown),
        cmocka_unit_test(test_concurrent_with_builder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
