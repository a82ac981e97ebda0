/*
 * fuzz_rp.c — libFuzzer target over the routing-policy write/lookup API. Each input is a program
 * of operations (put/delete DevAddr blocks, policies and join routes; DevAddr, join and policy
 * lookups) run against the real LMDB store and against a naive linear reference model; any
 * disagreement (a write accepted by one and refused by the other, a different longest match or
 * effective policy) aborts. One environment per process (MDB_NOSYNC, temp directory), cleared
 * at the start of every input.
 */
#include "rp.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAXREF 256

typedef struct { uint32_t p, net; unsigned len; int ten; } rblk_t;
typedef struct { uint32_t fnet, hnet; int ften, has_home, hten; unsigned flags; } rpol_t;
typedef struct { uint64_t jp, dp; unsigned jl, dl; uint32_t home; } rjoin_t;

static const char *const TEN[3] = {"", "a", "b"};
static rp_db_t *db;
static rp_reader_t *rd, *rd2; /* rd: compiled index when valid; rd2: LMDB only */
static char dir[64];

static void cleanup(void)
{
    rp_reader_free(rd);
    rp_reader_free(rd2);
    rp_db_close(db);
    char p[128];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

static void init(void)
{
    snprintf(dir, sizeof dir, "/tmp/fuzz-rp-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    rp_db_opts_t o = {0};
    o.no_sync = 1;
    o.map_size = 64 << 20;
    o.no_builder = 1; /* index refreshed by an explicit operation: reproducible */
    if (rp_db_open(dir, &o, &db, NULL) || rp_reader_new(db, &rd, NULL) ||
        rp_reader_new(db, &rd2, NULL))
        abort();
    rp_reader_use_index(rd2, 0);
    atexit(cleanup);
}

typedef struct { const uint8_t *p; size_t n; } in_t;
static uint8_t u8(in_t *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}
static uint16_t u16(in_t *in) { return (uint16_t)(u8(in) << 8 | u8(in)); }

static uint32_t m32(unsigned l) { return l == 0 ? 0 : ~0u << (32 - l); }
static uint64_t m64(unsigned l) { return l == 0 ? 0 : ~0ull << (64 - l); }

#define CHECK(c)                                                                                 \
    do {                                                                                         \
        if (!(c)) {                                                                              \
            fprintf(stderr, "fuzz_rp: check failed: %s (line %d)\n", #c, __LINE__);             \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static int ref_block_ok(const rblk_t *r, size_t n, const rblk_t *b, int outside)
{
    if (!outside) {
        uint32_t np = b->net == 0x13 ? 0x26000000u : 0x28000000u; /* /7 prefixes */
        if (b->len < 7 || ((b->p ^ np) & m32(7)))
            return 0;
    }
    for (size_t k = 0; k < n; k++) {
        if (r[k].p == b->p && r[k].len == b->len)
            continue;
        unsigned ml = r[k].len < b->len ? r[k].len : b->len;
        if ((r[k].p ^ b->p) & m32(ml))
            continue;
        const rblk_t *o = r[k].len < b->len ? &r[k] : b, *i = r[k].len < b->len ? b : &r[k];
        if (!(o->net == i->net && (o->ten == 0 || o->ten == i->ten)))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db)
        init();
    static rblk_t blk[MAXREF];
    static rpol_t pol[MAXREF];
    static rjoin_t jr[MAXREF];
    size_t nb = 0, np = 0, nj = 0;
    rp_txn_t *t;
    CHECK(rp_txn_begin(db, "fuzz", RP_TXN_AUDIT_SUMMARY, &t, NULL) == RH_OK);
    CHECK(rp_txn_clear(t, RP_KIND_BLOCK, NULL) == RH_OK);
    CHECK(rp_txn_clear(t, RP_KIND_POLICY, NULL) == RH_OK);
    CHECK(rp_txn_clear(t, RP_KIND_JOIN_ROUTE, NULL) == RH_OK);
    CHECK(rp_txn_commit(t, NULL) == RH_OK);
    in_t in = {data, size};
    for (int step = 0; step < 300 && in.n; step++) {
        uint8_t op = u8(&in) % 8;
        rh_diag_t d;
        switch (op) {
        case 0: { /* put block */
            rblk_t b;
            b.len = 5 + u8(&in) % 28;
            uint8_t sel = u8(&in);
            b.p = ((sel & 2 ? 0x28000000u : 0x26000000u) | (uint32_t)u16(&in) << 9) & m32(b.len);
            b.net = sel & 1 ? 0x14 : 0x13;
            b.ten = (sel >> 2) % 3;
            int outside = (sel >> 4) & 1;
            Roamhub__V1__DevAddrBlock m = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
            m.prefix = b.p;
            m.length = b.len;
            m.net_id = b.net;
            m.tenant_id = (char *)TEN[b.ten];
            m.outside_net_id = outside;
            int rc = rp_put(db, "fuzz", RP_KIND_BLOCK, &m.base, RP_PUT_UPSERT, &d);
            int want = ref_block_ok(blk, nb, &b, outside);
            if ((rc == RH_OK) != want) {
                fprintf(stderr, "block %08x/%u net %x ten %d outside %d: rc %d want %d (%s)\n",
                        b.p, b.len, b.net, b.ten, outside, rc, want, d.text);
                abort();
            }
            if (rc == RH_OK) {
                size_t k = 0;
                while (k < nb && !(blk[k].p == b.p && blk[k].len == b.len))
                    k++;
                if (k == nb) {
                    if (nb == MAXREF) { /* keep the model bounded: undo */
                        rp_delete(db, "fuzz", RP_KIND_BLOCK, &m.base, NULL, NULL);
                        break;
                    }
                    nb++;
                }
                blk[k] = b;
            }
            break;
        }
        case 1: { /* delete block */
            if (!nb)
                break;
            size_t k = u8(&in) % nb;
            Roamhub__V1__DevAddrBlock m = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
            m.prefix = blk[k].p;
            m.length = blk[k].len;
            int del = 0;
            CHECK(rp_delete(db, "fuzz", RP_KIND_BLOCK, &m.base, &del, NULL) == RH_OK && del == 1);
            blk[k] = blk[--nb];
            break;
        }
        case 2: { /* DevAddr lookup */
            uint32_t a = (u8(&in) & 1 ? 0x28000000u : 0x26000000u) | (uint32_t)u16(&in) << 9 |
                         (u8(&in) & 0x1ff);
            if (nb && (a & 1))
                a = blk[a % nb].p | (a & ~m32(blk[a % nb].len));
            const rblk_t *best = NULL;
            for (size_t k = 0; k < nb; k++)
                if (!((a ^ blk[k].p) & m32(blk[k].len)) && (!best || blk[k].len > best->len))
                    best = &blk[k];
            for (int pass = 0; pass < 2; pass++) {
                rp_reader_t *r = pass ? rd2 : rd;
                rp_block_match_t m;
                CHECK(rp_reader_begin(r) == RH_OK);
                CHECK(rp_lookup_devaddr(r, a, &m) == RH_OK);
                rp_reader_end(r);
                CHECK(m.found == (best != NULL));
                if (best) {
                    CHECK(m.prefix == best->p && m.length == best->len);
                    CHECK(m.owner.net_id == best->net &&
                          strcmp(m.owner.tenant_id, TEN[best->ten]) == 0);
                }
            }
            if (a & 2)
                CHECK(rp_db_refresh(db) == RH_OK);
            break;
        }
        case 3: case 4: { /* put / delete policy */
            rpol_t p;
            uint8_t sel = u8(&in);
            p.fnet = 1 + (sel & 1);
            p.ften = (sel >> 1) & 1;
            p.has_home = (sel >> 2) & 1;
            p.hnet = p.has_home ? 5 + ((sel >> 3) & 1) : 0;
            p.hten = p.has_home ? (sel >> 4) & 1 : 0;
            p.flags = u8(&in);
            Roamhub__V1__RoutingPolicy m = ROAMHUB__V1__ROUTING_POLICY__INIT;
            Roamhub__V1__UplinkPolicy up = ROAMHUB__V1__UPLINK_POLICY__INIT;
            Roamhub__V1__DownlinkPolicy dn = ROAMHUB__V1__DOWNLINK_POLICY__INIT;
            m.forwarder_net_id = p.fnet;
            m.forwarder_tenant_id = p.ften ? "t" : "";
            m.has_home = p.has_home;
            m.home_net_id = p.hnet;
            m.home_tenant_id = p.hten ? "h" : "";
            up.join_request = p.flags & 1;
            up.mac_data = (p.flags >> 1) & 1;
            up.application_data = (p.flags >> 2) & 1;
            up.signal_quality = (p.flags >> 3) & 1;
            up.localization = (p.flags >> 4) & 1;
            dn.join_accept = (p.flags >> 5) & 1;
            dn.mac_data = (p.flags >> 6) & 1;
            dn.application_data = (p.flags >> 7) & 1;
            m.uplink = &up;
            m.downlink = &dn;
            size_t k = 0;
            while (k < np && !(pol[k].fnet == p.fnet && pol[k].ften == p.ften &&
                               pol[k].has_home == p.has_home && pol[k].hnet == p.hnet &&
                               pol[k].hten == p.hten))
                k++;
            if (op == 3) {
                CHECK(rp_put(db, "fuzz", RP_KIND_POLICY, &m.base, RP_PUT_UPSERT, NULL) == RH_OK);
                if (k == np)
                    np++;
                pol[k] = p;
            } else {
                int del = -1;
                CHECK(rp_delete(db, "fuzz", RP_KIND_POLICY, &m.base, &del, NULL) == RH_OK);
                CHECK(del == (k < np));
                if (k < np)
                    pol[k] = pol[--np];
            }
            break;
        }
        case 5: { /* policy check */
            uint8_t sel = u8(&in);
            rp_party_t f, h;
            rp_party_set(&f, 1 + (sel & 1), (sel >> 1) & 1 ? "t" : "", NULL);
            rp_party_set(&h, 5 + ((sel >> 2) & 1), (sel >> 3) & 1 ? "h" : "", NULL);
            rp_class_t cls = (rp_class_t)(u8(&in) % RP_CLASS_COUNT);
            /* reference: the six steps in order */
            int ft = f.tenant_id[0] != 0, ht = h.tenant_id[0] != 0;
            static const int steps[6][3] = {{1, 1, 1}, {1, 1, 0}, {1, 0, 0},
                                            {0, 1, 1}, {0, 1, 0}, {0, 0, 0}};
            const rpol_t *hit = NULL;
            int src = 0;
            for (int s = 0; s < 6 && !hit; s++) {
                if ((steps[s][0] && !ft) || (steps[s][2] && !ht))
                    continue;
                for (size_t k = 0; k < np && !hit; k++)
                    if (pol[k].fnet == f.net_id && pol[k].ften == steps[s][0] &&
                        pol[k].has_home == steps[s][1] &&
                        (!steps[s][1] || (pol[k].hnet == h.net_id && pol[k].hten == steps[s][2]))) {
                        hit = &pol[k];
                        src = s + 1;
                    }
            }
            rp_verdict_t v, v2;
            CHECK(rp_reader_begin(rd) == RH_OK);
            CHECK(rp_policy_check(rd, cls, &f, &h, &v) == RH_OK);
            rp_reader_end(rd);
            CHECK(rp_reader_begin(rd2) == RH_OK);
            CHECK(rp_policy_check(rd2, cls, &f, &h, &v2) == RH_OK);
            rp_reader_end(rd2);
            CHECK(memcmp(&v, &v2, sizeof v) == 0);
            if (sel & 0x80)
                CHECK(rp_db_refresh(db) == RH_OK);
            CHECK((int)v.source == src);
            if (!hit) {
                CHECK(!v.allow && v.reason == RP_DENY_NO_POLICY);
                break;
            }
            static const int bit[RP_CLASS_COUNT] = {0, 1, 2, 5, 6, 7, -1};
            int want = bit[cls] >= 0 ? (int)((hit->flags >> bit[cls]) & 1) : (hit->flags & 0xe7) != 0;
            CHECK(v.allow == want);
            if (want && cls <= RP_CLASS_UPLINK_APP) {
                CHECK(v.strip_signal_quality == !((hit->flags >> 3) & 1));
                CHECK(v.strip_localization == !((hit->flags >> 4) & 1));
            }
            break;
        }
        case 6: { /* put join route */
            if (nj == MAXREF)
                break;
            rjoin_t j;
            j.jl = u8(&in) % 65;
            j.jp = ((uint64_t)u16(&in) << 48 | (uint64_t)u8(&in) << 40) & m64(j.jl);
            j.dl = u8(&in) % 65;
            j.dp = ((uint64_t)u8(&in) << 56 | (uint64_t)u8(&in) << 24) & m64(j.dl);
            j.home = u8(&in);
            Roamhub__V1__JoinRoute m = ROAMHUB__V1__JOIN_ROUTE__INIT;
            m.join_eui_prefix = j.jp;
            m.join_eui_length = j.jl;
            m.dev_eui_prefix = j.dp;
            m.dev_eui_length = j.dl;
            m.home_net_id = j.home;
            CHECK(rp_put(db, "fuzz", RP_KIND_JOIN_ROUTE, &m.base, RP_PUT_UPSERT, NULL) == RH_OK);
            size_t k = 0;
            while (k < nj && !(jr[k].jp == j.jp && jr[k].jl == j.jl && jr[k].dp == j.dp &&
                               jr[k].dl == j.dl))
                k++;
            if (k == nj)
                nj++;
            jr[k] = j;
            break;
        }
        case 7: { /* join lookup */
            uint64_t je = (uint64_t)u16(&in) << 48 | (uint64_t)u8(&in) << 40 | u8(&in);
            uint64_t de = (uint64_t)u8(&in) << 56 | (uint64_t)u8(&in) << 24 | u8(&in);
            if (nj && (je & 1)) {
                const rjoin_t *r = &jr[je % nj];
                je = r->jp | (je & ~m64(r->jl));
                de = r->dp | (de & ~m64(r->dl));
            }
            const rjoin_t *best = NULL;
            for (size_t k = 0; k < nj; k++) {
                if (((je ^ jr[k].jp) & m64(jr[k].jl)) || ((de ^ jr[k].dp) & m64(jr[k].dl)))
                    continue;
                if (!best || jr[k].jl > best->jl || (jr[k].jl == best->jl && jr[k].dl > best->dl))
                    best = &jr[k];
            }
            rp_join_match_t m;
            CHECK(rp_reader_begin(rd) == RH_OK);
            CHECK(rp_lookup_join(rd, je, de, &m) == RH_OK);
            rp_reader_end(rd);
            CHECK(m.found == (best != NULL));
            if (best)
                CHECK(m.join_eui_prefix == best->jp && m.join_eui_length == best->jl &&
                      m.dev_eui_prefix == best->dp && m.dev_eui_length == best->dl &&
                      m.home.net_id == best->home);
            break;
        }
        }
    }
    return 0;
}
