/*
 * bench-rp — routing-policy benchmark (docs/PERFORMANCE.md, "Routing table and policy").
 *
 *   bench-rp [--dir TMPDIR] [--ops N] [--import N] [--flips N] [--import-only 1]
 *
 * Builds a table of 10,000 networks, 100,000 DevAddr blocks and 100,000 policies, then measures
 * per-operation latency (each op timed with CLOCK_MONOTONIC; timer overhead is included and
 * reported) for: DevAddr lookup, policy check, a whole message (reader begin + lookup + policy
 * check + reader end), in one thread and in two threads at once; the references measured in
 * the same run are a bare mdb_get-equivalent exact lookup (rp_get of a policy is not on the hot
 * path, so the floor is measured as the hot path's own exact-key policy hit) and
 * protobuf_c_message_unpack of a block value (the design the scanner replaces). Then the time to
 * import 1,000,000 blocks in one transaction, and write-to-visible latency (a policy flip
 * committed by one thread, polled by a reader thread). Default durability (fsync per commit).
 * After the import: the index brought up to date after each of 200 single-block writes
 * (a delta, in proportion to the change). --import-only 1 runs only the import part.
 */
#include "rh_time.h"
#include "rh_version.h"
#include "rp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *ns, size_t n)
{
    qsort(ns, n, sizeof *ns, cmp_u64);
    printf("%-44s median %6llu ns  p99 %6llu ns  p99.9 %6llu ns  (n=%zu)\n", name,
           (unsigned long long)ns[n / 2], (unsigned long long)ns[n * 99 / 100],
           (unsigned long long)ns[n * 999 / 1000], n);
}

static void die(const char *what, int rc, const rh_diag_t *d)
{
    fprintf(stderr, "bench-rp: %s: %s %s\n", what, rh_strerror(rc), d ? d->text : "");
    exit(1);
}

static void rmdb(const char *dir)
{
    char p[512];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

#define NNET 10000
#define BLK_PER_NET 10
#define POL_PER_NET 10

static uint32_t netid(unsigned i) { return 0xC00000u | i; }         /* type 6: /22 prefixes */
static uint32_t netpfx(unsigned i) { return 0xFC000000u | (i << 10); } /* 111111 0 + 15-bit NwkID */

static void build(rp_db_t *db)
{
    rh_diag_t d;
    rp_txn_t *t;
    uint64_t t0 = rh_mono_ns();
    if (rp_txn_begin(db, "bench", RP_TXN_AUDIT_SUMMARY, &t, &d))
        die("begin", RH_EIO, &d);
    static const char *ten[] = {"", "t1", "t2"};
    for (unsigned i = 0; i < NNET; i++) {
        Roamhub__V1__Network n = ROAMHUB__V1__NETWORK__INIT;
        n.net_id = netid(i);
        n.name = "bench network";
        int rc = rp_txn_put(t, RP_KIND_NETWORK, &n.base, RP_PUT_UPSERT, &d);
        if (rc)
            die("network", rc, &d);
        for (unsigned j = 0; j < BLK_PER_NET; j++) {
            Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
            b.prefix = netpfx(i) | (j << 6);
            b.length = 26;
            b.net_id = netid(i);
            b.tenant_id = (char *)ten[j % 3];
            if ((rc = rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d)))
                die("block", rc, &d);
        }
        for (unsigned j = 0; j < POL_PER_NET; j++) {
            Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
            Roamhub__V1__UplinkPolicy up = ROAMHUB__V1__UPLINK_POLICY__INIT;
            Roamhub__V1__DownlinkPolicy dn = ROAMHUB__V1__DOWNLINK_POLICY__INIT;
            up.join_request = up.mac_data = up.application_data = 1;
            up.signal_quality = j & 1;
            dn.join_accept = dn.mac_data = dn.application_data = 1;
            p.uplink = &up;
            p.downlink = &dn;
            p.forwarder_net_id = netid(i);
            p.forwarder_tenant_id = (char *)ten[j % 3 == 2 ? 1 : 0];
            p.has_home = j != 0;
            p.home_net_id = j ? netid((unsigned)(rnd() % NNET)) : 0;
            if ((rc = rp_txn_put(t, RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d)))
                die("policy", rc, &d);
        }
    }
    if (rp_txn_commit(t, &d))
        die("commit", RH_EIO, &d);
    size_t nb, np;
    rp_count(db, RP_KIND_BLOCK, &nb);
    rp_count(db, RP_KIND_POLICY, &np);
    printf("table: %d networks, %zu blocks, %zu policies, built in %.2f s (one transaction)\n",
           NNET, nb, np, (double)(rh_mono_ns() - t0) / 1e9);
}

static uint32_t rand_addr(void)
{
    unsigned i = (unsigned)(rnd() % NNET);
    if (rnd() % 10 == 0) /* 10 %: inside the NetID prefix but in no block */
        return netpfx(i) | 0x3C0 | (uint32_t)(rnd() & 0x3f);
    return netpfx(i) | (uint32_t)(rnd() % BLK_PER_NET) << 6 | (uint32_t)(rnd() & 0x3f);
}

typedef struct run {
    rp_db_t *db;
    size_t ops;
    uint64_t *lookup, *check, *msg, *unpack;
    unsigned long found, allowed;
    int mode; /* 0 all measurements, 1 whole-message only */
} run_t;

static void *worker(void *arg)
{
    run_t *r = arg;
    rp_reader_t *rd;
    if (rp_reader_new(r->db, &rd, NULL))
        die("reader", RH_EIO, NULL);
    uint32_t *addr = malloc(r->ops * sizeof *addr);
    rp_party_t *fw = malloc(r->ops * sizeof *fw);
    for (size_t i = 0; i < r->ops; i++) {
        addr[i] = rand_addr();
        rp_party_set(&fw[i], netid((unsigned)(rnd() % NNET)), rnd() % 4 == 0 ? "t1" : "", NULL);
    }
    rp_block_match_t m;
    rp_verdict_t v;
    if (r->mode == 0) {
        /* lookups and checks timed separately inside long-ish snapshots (reset every 64 ops) */
        for (size_t i = 0; i < r->ops; i++) {
            if (i % 64 == 0) {
                if (i)
                    rp_reader_end(rd);
                rp_reader_begin(rd);
            }
            uint64_t a = rh_mono_ns();
            rp_lookup_devaddr(rd, addr[i], &m);
            uint64_t b = rh_mono_ns();
            rp_party_t home = m.owner;
            if (!m.found)
                rp_party_set(&home, netid(0), NULL, NULL);
            uint64_t c = rh_mono_ns();
            rp_policy_check(rd, RP_CLASS_UPLINK_APP, &fw[i], &home, &v);
            uint64_t e = rh_mono_ns();
            r->lookup[i] = b - a;
            r->check[i] = e - c;
            r->found += m.found;
            r->allowed += v.allow;
        }
        rp_reader_end(rd);
        /* reference: protobuf-c unpack of a packed block value */
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        b.prefix = 0xFC000000;
        b.length = 26;
        b.net_id = 0xC00001;
        b.tenant_id = "t1";
        uint8_t buf[64];
        size_t len = roamhub__v1__dev_addr_block__pack(&b, buf);
        for (size_t i = 0; i < r->ops / 4; i++) {
            uint64_t a = rh_mono_ns();
            Roamhub__V1__DevAddrBlock *u = roamhub__v1__dev_addr_block__unpack(NULL, len, buf);
            roamhub__v1__dev_addr_block__free_unpacked(u, NULL);
            r->unpack[i] = rh_mono_ns() - a;
        }
    }
    /* whole message: begin + DevAddr lookup + policy check + end */
    for (size_t i = 0; i < r->ops; i++) {
        uint64_t a = rh_mono_ns();
        rp_reader_begin(rd);
        rp_lookup_devaddr(rd, addr[i], &m);
        if (m.found)
            rp_policy_check(rd, RP_CLASS_UPLINK_APP, &fw[i], &m.owner, &v);
        rp_reader_end(rd);
        r->msg[i] = rh_mono_ns() - a;
    }
    free(addr);
    free(fw);
    rp_reader_free(rd);
    return NULL;
}

static void bench_lookups(rp_db_t *db, size_t ops)
{
    uint64_t t0 = rh_mono_ns(), overhead[1000];
    for (int i = 0; i < 1000; i++) {
        uint64_t a = rh_mono_ns();
        overhead[i] = rh_mono_ns() - a;
    }
    qsort(overhead, 1000, sizeof *overhead, cmp_u64);
    printf("timer overhead (clock_gettime pair): median %llu ns (included below)\n",
           (unsigned long long)overhead[500]);
    (void)t0;
    run_t r = {db, ops, NULL, NULL, NULL, NULL, 0, 0, 0};
    r.lookup = malloc(ops * 8);
    r.check = malloc(ops * 8);
    r.msg = malloc(ops * 8);
    r.unpack = malloc(ops * 8);
    worker(&r); /* warm-up pass populates the page cache */
    r.found = r.allowed = 0;
    worker(&r);
    printf("-- 1 thread (%lu%% found, %lu%% allowed)\n", r.found * 100 / ops, r.allowed * 100 / ops);
    report("DevAddr lookup (LPM, 100k blocks)", r.lookup, ops);
    report("policy check (effective policy + eval)", r.check, ops);
    report("message: begin+lookup+check+end", r.msg, ops);
    report("reference: protobuf_c unpack+free of a block", r.unpack, ops / 4);
    /* two threads */
    run_t t2[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        t2[k] = r;
        t2[k].mode = 1;
        t2[k].msg = malloc(ops * 8);
        pthread_create(&th[k], NULL, worker, &t2[k]);
    }
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    printf("-- 2 threads at once (each its own reader)\n");
    report("message, thread 1", t2[0].msg, ops);
    report("message, thread 2", t2[1].msg, ops);
    free(t2[0].msg);
    free(t2[1].msg);
    free(r.lookup);
    free(r.check);
    free(r.msg);
    free(r.unpack);
}

static void bench_import(const char *base, size_t n)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bench-rp-import-XXXXXX", base);
    if (!mkdtemp(dir))
        die("mkdtemp", RH_EIO, NULL);
    rp_db_opts_t o = {0};
    o.map_size = (size_t)1 << 30;
    o.no_builder = 1; /* time the index build explicitly below */
    rp_db_t *db;
    rh_diag_t d;
    if (rp_db_open(dir, &o, &db, &d))
        die("open", RH_EIO, &d);
    /* n blocks /25 inside 1,000+ type-3 NetIDs (/15 each = 1024 blocks), shuffled */
    uint32_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnd() % (i + 1);
        uint32_t x = idx[i];
        idx[i] = idx[j];
        idx[j] = x;
    }
    uint64_t t0 = rh_mono_ns();
    rp_txn_t *t;
    if (rp_txn_begin(db, "bench", RP_TXN_AUDIT_SUMMARY, &t, &d))
        die("begin", RH_EIO, &d);
    for (size_t i = 0; i < n; i++) {
        uint32_t net = idx[i] / 1024, sub = idx[i] % 1024;
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        b.net_id = 0x600000u | net;                        /* type 3, NwkID = low 11 bits */
        b.prefix = 0xE0000000u | net << 17 | sub << 7;     /* 1110 + 11-bit NwkID + 10 + 7 */
        b.length = 25;
        int rc = rp_txn_put(t, RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d);
        if (rc)
            die("import put", rc, &d);
    }
    uint64_t t1 = rh_mono_ns();
    if (rp_txn_commit(t, &d))
        die("import commit", RH_EIO, &d);
    uint64_t t2 = rh_mono_ns();
    printf("import %zu blocks (shuffled, validated, one txn): %.2f s total (puts %.2f s, "
           "commit+fsync %.2f s) = %.0f blocks/s; map %zu MiB\n",
           n, (double)(t2 - t0) / 1e9, (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9,
           (double)n / ((double)(t2 - t0) / 1e9), rp_db_map_size(db) >> 20);
    uint64_t t3 = rh_mono_ns();
    if (rp_db_refresh(db))
        die("index build", RH_EIO, NULL);
    printf("compiled index rebuild for %zu blocks: %.0f ms (lookups read LMDB meanwhile)\n", n,
           (double)(rh_mono_ns() - t3) / 1e6);
    /* One routing write, then bring the index up to date (explicitly: no builder thread): with
     * deltas this costs in proportion to the change, not to the table. */
    enum { W = 200 };
    uint64_t upd[W];
    for (int i = 0; i < W; i++) {
        uint32_t k = (uint32_t)(rnd() % n);
        uint32_t net = k / 1024, sub = k % 1024;
        Roamhub__V1__DevAddrBlock b = ROAMHUB__V1__DEV_ADDR_BLOCK__INIT;
        b.net_id = 0x600000u | net;
        b.prefix = 0xE0000000u | net << 17 | sub << 7;
        b.length = 25;
        char ten[16];
        snprintf(ten, sizeof ten, "w%d", i);
        b.tenant_id = ten;
        if (rp_put(db, "bench", RP_KIND_BLOCK, &b.base, RP_PUT_UPSERT, &d))
            die("write", RH_EIO, &d);
        uint64_t a = rh_mono_ns();
        if (rp_db_refresh(db))
            die("index update", RH_EIO, NULL);
        upd[i] = rh_mono_ns() - a;
    }
    char what[96];
    snprintf(what, sizeof what, "index update after one write (%zu blocks)", n);
    report(what, upd, W);
    free(idx);
    rp_db_close(db);
    rmdb(dir);
}

typedef struct vis {
    rp_db_t *db;
    volatile int want, stop;
    volatile uint64_t seen_at;
} vis_t;

static void *poller(void *arg)
{
    vis_t *v = arg;
    rp_reader_t *rd;
    rp_reader_new(v->db, &rd, NULL);
    rp_party_t f, h;
    rp_party_set(&f, 0x000777, NULL, NULL);
    rp_party_set(&h, 0x000888, NULL, NULL);
    int last = -1;
    while (!v->stop) {
        rp_verdict_t vd;
        rp_reader_begin(rd);
        rp_policy_check(rd, RP_CLASS_UPLINK_APP, &f, &h, &vd);
        rp_reader_end(rd);
        if (vd.allow != last) {
            last = vd.allow;
            if (last == v->want)
                v->seen_at = rh_mono_ns();
        }
    }
    rp_reader_free(rd);
    return NULL;
}

static void bench_visible(rp_db_t *db, int flips)
{
    vis_t v = {db, 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, poller, &v);
    uint64_t *commit = malloc((size_t)flips * 8), *visible = malloc((size_t)flips * 8);
    int ok = 0;
    for (int i = 0; i < flips; i++) {
        int allow = (i & 1) == 0;
        Roamhub__V1__RoutingPolicy p = ROAMHUB__V1__ROUTING_POLICY__INIT;
        Roamhub__V1__UplinkPolicy up = ROAMHUB__V1__UPLINK_POLICY__INIT;
        up.application_data = allow;
        p.uplink = &up;
        p.forwarder_net_id = 0x000777;
        p.has_home = 1;
        p.home_net_id = 0x000888;
        v.seen_at = 0;
        v.want = allow;
        uint64_t a = rh_mono_ns();
        rh_diag_t d;
        if (rp_put(db, "bench", RP_KIND_POLICY, &p.base, RP_PUT_UPSERT, &d))
            die("flip", RH_EIO, &d);
        uint64_t b = rh_mono_ns();
        while (!v.seen_at && rh_mono_ns() - a < 1000000000ull)
            usleep(20); /* do not steal the poller's core */
        if (!v.seen_at)
            continue;
        commit[ok] = b - a;
        visible[ok] = v.seen_at - a;
        ok++;
        usleep(2000);
    }
    v.stop = 1;
    pthread_join(th, NULL);
    printf("-- write-to-visible (%d policy flips, fsync per commit, reader polling in a thread)\n",
           ok);
    report("write committed (rp_put returns)", commit, (size_t)ok);
    report("visible to the data-plane reader", visible, (size_t)ok);
    free(commit);
    free(visible);
}

int main(int argc, char **argv)
{
    if (argc == 2 && rh_version_arg(argv[1], "bench-rp"))
        return 0;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    size_t ops = 1000000, import_n = 1000000;
    int flips = 200, import_only = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0)
            base = argv[i + 1];
        else if (strcmp(argv[i], "--ops") == 0)
            ops = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--import") == 0)
            import_n = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--flips") == 0)
            flips = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--import-only") == 0)
            import_only = atoi(argv[i + 1]);
    }
    if (import_only) {
        bench_import(base, import_n);
        return 0;
    }
    if (ops < 1000)
        ops = 1000;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/bench-rp-XXXXXX", base);
    if (!mkdtemp(dir))
        die("mkdtemp", RH_EIO, NULL);
    rp_db_t *db;
    rh_diag_t d;
    if (rp_db_open(dir, NULL, &db, &d))
        die("open", RH_EIO, &d);
    build(db);
    bench_lookups(db, ops);
    if (flips > 0)
        bench_visible(db, flips);
    rp_db_close(db);
    rmdb(dir);
    if (import_n)
        bench_import(base, import_n);
    return 0;
}
