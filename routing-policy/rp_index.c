/*
 * rp_index.c — the compiled read index: an immutable in-memory copy of the DevAddr blocks
 * (sorted array, same longest-prefix walk as on LMDB) and of the routing policies (open
 * addressing hash table on the fixed-width policy key), as of one LMDB snapshot.
 *
 * Why: on the 2-core target a single LMDB B-tree descent costs ~400 ns with 100k keys, and a
 * message needs up to seven (DevAddr walk + six policy steps); the index answers the same
 * questions in tens of nanoseconds. LMDB stays the only source of truth:
 *  - each index version is tagged with the LMDB transaction ID whose state it holds
 *    (built_txnid) and the routing generation (META "gen", bumped by every routing write in the
 *    same transaction);
 *  - a reader uses it only if its own snapshot T satisfies built_txnid <= T <= valid_upto (and
 *    T is really the state the transaction reads, see rp__snap_attach in rp_reader.c), where
 *    valid_upto only advances after the builder checked that the generation at T is unchanged
 *    (statistics writes do not change routing); otherwise the reader falls back to LMDB, so every
 *    message sees exactly its snapshot and a commit is visible to the next message either way.
 *
 * Layers, so that a write costs in proportion to the change, not to the table:
 *  - a version is a *base* (built from LMDB, large, shared between versions, reference-counted
 *    under build_mu) plus a small *overlay* of the block and policy keys changed since the base
 *    was built (new value, or a tombstone for a key the base holds). Lookups consult the overlay
 *    first; the LPM walk runs over "base minus the keys the overlay names, plus overlay puts",
 *    which is again a sorted set, so the walk's argument holds unchanged;
 *  - a committing writer (rp_write.c) records the blocks and policies it changed as a delta,
 *    tagged with its transaction ID Y and the generation g0 it started from, and queues it;
 *  - the builder applies a queued delta to the published version V only if V.gen == g0, i.e. V
 *    holds exactly the routing state of Y - 1 (every routing change bumps gen, in any process).
 *    The result holds the state of Y: built_txnid = valid_upto = Y. A delta that cannot be
 *    applied (another process wrote in between, a clear, an oversized delta) falls back to a
 *    full rebuild from LMDB, as does an overlay grown beyond ov_limit() (the merge: amortized
 *    over thousands of writes). Applying a delta copies the overlay only: O(overlay + change);
 *  - a builder thread (woken by commits in this process, polling every 100 ms for commits by
 *    other processes) applies deltas, revalidates or rebuilds; readers and writers never wait
 *    for it;
 *  - an old version is freed after the builder has taken and released every reader's mutex once
 *    (readers load the index pointer only while holding their own mutex), so the hot path pays
 *    no reference counting.
 */
#include "rp_internal.h"

#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"

#include <stdlib.h>
#include <time.h>

typedef struct pent {
    uint8_t key[RP_KEY_POLICY];
    rp_flags_t flags;
} pent_t;

/* The part built from LMDB. Immutable once published; shared by the versions derived from it. */
typedef struct rp_base {
    int refs;           /* versions using it (changed under build_mu only) */
    size_t nblk;
    uint64_t *bkey;     /* value << 8 | length, ascending */
    uint32_t *bnet;
    uint32_t *bten;     /* offsets into strs (0 = "") */
    uint32_t *bclu;
    char *strs;
    size_t nstrs, capstrs;
    uint32_t *bucket;   /* 65537 entries: first block whose value's top 16 bits >= i */
    size_t npol, mask;  /* slots: mask + 1 entries */
    struct rp_slot *slots;
    pent_t *pol;
} rp_base_t;

static const uint8_t META_GEN[] = "gen";

uint64_t rp__read_gen(MDB_txn *txn, MDB_dbi meta)
{
    MDB_val k = {sizeof META_GEN - 1, (void *)META_GEN}, v;
    if (mdb_get(txn, meta, &k, &v) == 0 && v.mv_size == 8)
        return rh_get_be64(v.mv_data);
    return 0;
}

int rp__bump_gen(MDB_txn *txn, MDB_dbi meta)
{
    uint8_t b[8];
    rh_put_be64(b, rp__read_gen(txn, meta) + 1);
    MDB_val k = {sizeof META_GEN - 1, (void *)META_GEN}, v = {8, b};
    return mdb_put(txn, meta, &k, &v, 0);
}

static uint64_t hash_key(const uint8_t *k)
{
    uint64_t h = 0x9E3779B97F4A7C15ull;
    size_t i = 0;
    for (; i + 8 <= RP_KEY_POLICY; i += 8) {
        uint64_t x;
        memcpy(&x, k + i, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; i < RP_KEY_POLICY; i++)
        h = (h ^ k[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    return h;
}

static void base_free(rp_base_t *b)
{
    if (!b)
        return;
    free(b->bkey);
    free(b->bnet);
    free(b->bten);
    free(b->bclu);
    free(b->strs);
    free(b->slots);
    free(b->pol);
    free(b->bucket);
    free(b);
}

/* Caller holds build_mu (or is the only thread left, rp__index_stop). */
void rp__snap_free(rp_snap_t *s)
{
    if (!s)
        return;
    if (s->base && --s->base->refs == 0)
        base_free(s->base);
    free(s->ob);
    free(s->op);
    free(s->oslots);
    free(s);
}

/* ---- base built from LMDB ------------------------------------------------------------------ */

static uint32_t add_str(rp_base_t *s, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (s->nstrs + n + 1 > s->capstrs) {
        size_t nc = s->capstrs * 2 + n + 1024;
        char *ns = realloc(s->strs, nc);
        if (!ns)
            return UINT32_MAX;
        s->strs = ns;
        s->capstrs = nc;
    }
    uint32_t off = (uint32_t)s->nstrs;
    memcpy(s->strs + off, p, n);
    s->strs[off + n] = 0;
    s->nstrs += n + 1;
    return off;
}

static int build_base(rp_db_t *db, MDB_txn *txn, rp_base_t **out)
{
    *out = NULL;
    rp_base_t *s = calloc(1, sizeof *s);
    if (!s)
        return RH_ENOMEM;
    s->refs = 0;
    s->capstrs = 1024;
    s->strs = malloc(s->capstrs);
    if (!s->strs)
        goto nomem;
    s->strs[0] = 0;
    s->nstrs = 1;
    MDB_stat st;
    if (mdb_stat(txn, db->dbi[RP_DBI_BLOCK], &st))
        goto fail;
    size_t nb = st.ms_entries;
    s->bkey = malloc((nb ? nb : 1) * sizeof *s->bkey);
    s->bnet = malloc((nb ? nb : 1) * sizeof *s->bnet);
    s->bten = malloc((nb ? nb : 1) * sizeof *s->bten);
    s->bclu = malloc((nb ? nb : 1) * sizeof *s->bclu);
    if (!s->bkey || !s->bnet || !s->bten || !s->bclu)
        goto nomem;
    MDB_cursor *c;
    if (mdb_cursor_open(txn, db->dbi[RP_DBI_BLOCK], &c))
        goto fail;
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && s->nblk < nb; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != RP_KEY_BLOCK)
            continue;
        size_t i = s->nblk;
        s->bkey[i] = (uint64_t)rh_get_be32(k.mv_data) << 8 | ((const uint8_t *)k.mv_data)[4];
        rp_block_val_t bv;
        rp__block_decode(v.mv_data, v.mv_size, &bv); /* a malformed tail keeps what was read */
        s->bnet[i] = bv.net_id;
        s->bten[i] = add_str(s, bv.tenant, bv.tenant_len);
        s->bclu[i] = add_str(s, bv.cluster, bv.cluster_len);
        if (s->bten[i] == UINT32_MAX || s->bclu[i] == UINT32_MAX) {
            mdb_cursor_close(c);
            goto nomem;
        }
        s->nblk++;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    s->bucket = malloc(65537 * sizeof *s->bucket);
    if (!s->bucket)
        goto nomem;
    for (size_t b = 0, i = 0; b <= 65536; b++) {
        while (i < s->nblk && (s->bkey[i] >> 24) < b)
            i++;
        s->bucket[b] = (uint32_t)i;
    }

    if (mdb_stat(txn, db->dbi[RP_DBI_POLICY], &st))
        goto fail;
    size_t np = st.ms_entries, cap = 16;
    while (cap < np * 2)
        cap <<= 1;
    s->mask = cap - 1;
    s->slots = calloc(cap, sizeof *s->slots);
    s->pol = malloc((np ? np : 1) * sizeof *s->pol);
    if (!s->slots || !s->pol)
        goto nomem;
    if (mdb_cursor_open(txn, db->dbi[RP_DBI_POLICY], &c))
        goto fail;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    for (; rc == 0 && s->npol < np; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != RP_KEY_POLICY)
            continue;
        pent_t *e = &s->pol[s->npol];
        memcpy(e->key, k.mv_data, RP_KEY_POLICY);
        if (rp__policy_flags(v.mv_data, v.mv_size, &e->flags))
            memset(&e->flags, 0, sizeof e->flags);
        uint64_t hk = hash_key(e->key);
        size_t h = (size_t)hk & s->mask;
        while (s->slots[h].idx)
            h = (h + 1) & s->mask;
        s->slots[h].tag = (uint32_t)(hk >> 32);
        s->slots[h].idx = (uint32_t)++s->npol;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    *out = s;
    return RH_OK;
nomem:
    base_free(s);
    return RH_ENOMEM;
fail:
    base_free(s);
    return RH_EIO;
}

int rp__snap_build(rp_db_t *db, MDB_txn *txn, rp_snap_t **out)
{
    *out = NULL;
    rp_snap_t *s = calloc(1, sizeof *s);
    if (!s)
        return RH_ENOMEM;
    int rc = build_base(db, txn, &s->base);
    if (rc) {
        free(s);
        return rc;
    }
    s->base->refs = 1;
    s->built_txnid = mdb_txn_id(txn);
    s->gen = rp__read_gen(txn, db->dbi[RP_DBI_META]);
    s->valid_upto = s->built_txnid;
    *out = s;
    return RH_OK;
}

/* ---- lookups on the index ------------------------------------------------------------------ */

/* Index of the largest base key <= k, or -1: binary search inside the key's 16-bit bucket (keys
 * in earlier buckets are all smaller, keys in later ones all larger). */
static ptrdiff_t base_le(const rp_base_t *s, uint64_t k)
{
    const uint64_t *a = s->bkey;
    size_t b = (size_t)(k >> 24);
    size_t lo = s->bucket[b], hi = s->bucket[b + 1]; /* first index with a[i] > k */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] <= k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

static int base_has_block(const rp_base_t *s, uint64_t k)
{
    ptrdiff_t i = base_le(s, k);
    return i >= 0 && s->bkey[i] == k;
}

/* Index of the largest overlay block key <= k (tombstones included), or -1. */
static ptrdiff_t ov_le(const rp_ovb_t *a, size_t n, uint64_t k)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid].key <= k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

static int ov_names(const rp_snap_t *s, uint64_t k)
{
    ptrdiff_t j = ov_le(s->ob, s->nob, k);
    return j >= 0 && s->ob[j].key == k;
}

static void copy_s(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

int rp__snap_devaddr(const rp_snap_t *s, uint32_t a, rp_block_match_t *out)
{
    const rp_base_t *b = s->base;
    unsigned L = 32;
    for (int iter = 0; iter < 34; iter++) {
        uint64_t k = (uint64_t)(a & rp__mask32(L)) << 8 | L;
        /* largest key <= k of: base minus the keys the overlay names, plus overlay puts */
        ptrdiff_t i = base_le(b, k), j = -1;
        if (s->nob) {
            while (i >= 0 && ov_names(s, b->bkey[i]))
                i--;
            j = ov_le(s->ob, s->nob, k);
            while (j >= 0 && s->ob[j].del)
                j--;
            if (j >= 0 && i >= 0 && b->bkey[i] > s->ob[j].key)
                j = -1;
        }
        if (i < 0 && j < 0)
            return RH_OK;
        uint64_t key = j >= 0 ? s->ob[j].key : b->bkey[i];
        uint32_t bv = (uint32_t)(key >> 8);
        unsigned bl = (unsigned)(key & 0xff);
        if (bl <= 32 && ((a ^ bv) & rp__mask32(bl)) == 0) {
            out->found = 1;
            out->prefix = bv;
            out->length = (uint8_t)bl;
            if (j >= 0) {
                out->owner.net_id = s->ob[j].net_id;
                copy_s(out->owner.tenant_id, sizeof out->owner.tenant_id, s->ob[j].tenant);
                copy_s(out->cluster_id, sizeof out->cluster_id, s->ob[j].cluster);
            } else {
                out->owner.net_id = b->bnet[i];
                copy_s(out->owner.tenant_id, sizeof out->owner.tenant_id, b->strs + b->bten[i]);
                copy_s(out->cluster_id, sizeof out->cluster_id, b->strs + b->bclu[i]);
            }
            return RH_OK;
        }
        unsigned cl = (unsigned)__builtin_clz(a ^ bv);
        if (cl >= L)
            return RH_EIO;
        L = cl;
    }
    return RH_EIO;
}

static const pent_t *base_policy(const rp_base_t *s, const uint8_t *key, uint64_t hk)
{
    uint32_t tag = (uint32_t)(hk >> 32);
    size_t h = (size_t)hk & s->mask;
    for (;;) {
        const struct rp_slot *sl = &s->slots[h];
        if (!sl->idx)
            return NULL;
        if (sl->tag == tag && memcmp(s->pol[sl->idx - 1].key, key, RP_KEY_POLICY) == 0)
            return &s->pol[sl->idx - 1];
        h = (h + 1) & s->mask;
    }
}

/* Overlay entry of a policy key (live or tombstone), or NULL. */
static rp_ovp_t *ov_policy(const rp_ovp_t *op, const struct rp_slot *slots, size_t mask,
                           const uint8_t *key, uint64_t hk)
{
    uint32_t tag = (uint32_t)(hk >> 32);
    size_t h = (size_t)hk & mask;
    for (;;) {
        const struct rp_slot *sl = &slots[h];
        if (!sl->idx)
            return NULL;
        if (sl->tag == tag && memcmp(op[sl->idx - 1].key, key, RP_KEY_POLICY) == 0)
            return (rp_ovp_t *)&op[sl->idx - 1];
        h = (h + 1) & mask;
    }
}

const rp_flags_t *rp__snap_policy(const rp_snap_t *s, const uint8_t *key)
{
    uint64_t hk = hash_key(key);
    if (s->nop) {
        const rp_ovp_t *e = ov_policy(s->op, s->oslots, s->omask, key, hk);
        if (e)
            return e->del ? NULL : &e->flags;
    }
    const pent_t *e = base_policy(s->base, key, hk);
    return e ? &e->flags : NULL;
}

/* ---- deltas (recorded by rp_write.c, applied here) ----------------------------------------- */

#define DELTA_MAX 65536 /* changes beyond this in one transaction: rebuild instead */

void rp__delta_free(rp_delta_t *d)
{
    if (!d)
        return;
    free(d->b);
    free(d->p);
    free(d);
}

void rp__delta_reset(rp_delta_t *d)
{
    if (d) {
        d->nb = d->np = 0;
        d->overflow = 0;
    }
}

static void delta_overflow(rp_delta_t *d)
{
    d->overflow = 1;
    free(d->b);
    free(d->p);
    d->b = NULL;
    d->p = NULL;
    d->nb = d->np = d->capb = d->capp = 0;
}

void rp__delta_clear(rp_delta_t *d)
{
    delta_overflow(d);
}

static int grow(void **arr, size_t *cap, size_t need, size_t esz)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *n = realloc(*arr, nc * esz);
    if (!n)
        return -1;
    *arr = n;
    *cap = nc;
    return 0;
}

void rp__delta_block(rp_delta_t *d, const uint8_t *key, const uint8_t *val, size_t vlen)
{
    if (d->overflow)
        return;
    if (d->nb + d->np >= DELTA_MAX || grow((void **)&d->b, &d->capb, d->nb + 1, sizeof *d->b)) {
        delta_overflow(d);
        return;
    }
    rp_ovb_t *e = &d->b[d->nb++];
    memset(e, 0, sizeof *e);
    e->key = (uint64_t)rh_get_be32(key) << 8 | key[4];
    if (!val) {
        e->del = 1;
        return;
    }
    rp_block_val_t bv;
    rp__block_decode(val, vlen, &bv);
    e->net_id = bv.net_id;
    rp__copy_str(e->tenant, sizeof e->tenant, bv.tenant, bv.tenant_len);
    rp__copy_str(e->cluster, sizeof e->cluster, bv.cluster, bv.cluster_len);
}

void rp__delta_policy(rp_delta_t *d, const uint8_t *key, const uint8_t *val, size_t vlen)
{
    if (d->overflow)
        return;
    if (d->nb + d->np >= DELTA_MAX || grow((void **)&d->p, &d->capp, d->np + 1, sizeof *d->p)) {
        delta_overflow(d);
        return;
    }
    rp_ovp_t *e = &d->p[d->np++];
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, RP_KEY_POLICY);
    if (!val)
        e->del = 1;
    else if (rp__policy_flags(val, vlen, &e->flags))
        memset(&e->flags, 0, sizeof e->flags); /* as build_base */
}

/* Sort order of delta block entries: key, then position (the later change wins). */
typedef struct { uint64_t key; size_t pos; } bord_t;
static int cmp_bord(const void *a, const void *b)
{
    const bord_t *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void ov_insert(rp_snap_t *s, size_t i)
{
    uint64_t hk = hash_key(s->op[i].key);
    size_t h = (size_t)hk & s->omask;
    while (s->oslots[h].idx)
        h = (h + 1) & s->omask;
    s->oslots[h].tag = (uint32_t)(hk >> 32);
    s->oslots[h].idx = (uint32_t)(i + 1);
}

static int ov_hash(rp_snap_t *s)
{
    free(s->oslots);
    s->oslots = NULL;
    s->omask = 0;
    if (!s->nop)
        return 0;
    size_t cap = 16;
    while (cap < s->nop * 2)
        cap <<= 1;
    s->oslots = calloc(cap, sizeof *s->oslots);
    if (!s->oslots)
        return -1;
    s->omask = cap - 1;
    for (size_t i = 0; i < s->nop; i++)
        ov_insert(s, i);
    return 0;
}

/* New version = cur + d (d must start from cur's state). O(overlay + change). */
int rp__snap_apply(const rp_snap_t *cur, const rp_delta_t *d, rp_snap_t **out)
{
    *out = NULL;
    const rp_base_t *b = cur->base;
    rp_snap_t *s = calloc(1, sizeof *s);
    bord_t *ord = NULL;
    if (!s)
        return RH_ENOMEM;
    s->base = cur->base;
    s->built_txnid = d->txnid;
    s->valid_upto = d->txnid;
    s->gen = d->gen_before + 1;

    /* blocks: merge the sorted overlay with the (sorted, last-wins) changes */
    s->ob = malloc((cur->nob + d->nb + 1) * sizeof *s->ob);
    ord = malloc((d->nb + 1) * sizeof *ord);
    if (!s->ob || !ord)
        goto nomem;
    for (size_t i = 0; i < d->nb; i++)
        ord[i] = (bord_t){d->b[i].key, i};
    qsort(ord, d->nb, sizeof *ord, cmp_bord);
    size_t i = 0, j = 0;
    while (i < cur->nob || j < d->nb) {
        if (j < d->nb && j + 1 < d->nb && ord[j + 1].key == ord[j].key) {
            j++; /* an earlier change of the same key in this transaction */
            continue;
        }
        const rp_ovb_t *e;
        if (j >= d->nb || (i < cur->nob && cur->ob[i].key < ord[j].key)) {
            e = &cur->ob[i++];
        } else {
            if (i < cur->nob && cur->ob[i].key == ord[j].key)
                i++; /* replaced */
            e = &d->b[ord[j++].pos];
            if (e->del && !base_has_block(b, e->key))
                continue; /* deleting a key the base never had: no entry at all */
        }
        s->ob[s->nob++] = *e;
        s->nobdel += e->del;
    }
    free(ord);
    ord = NULL;

    /* policies: copy, then update in place or append, then drop pointless tombstones */
    s->op = malloc((cur->nop + d->np + 1) * sizeof *s->op);
    if (!s->op)
        goto nomem;
    if (cur->nop)
        memcpy(s->op, cur->op, cur->nop * sizeof *s->op);
    s->nop = cur->nop;
    size_t cap = 16;
    while (cap < (cur->nop + d->np) * 2)
        cap <<= 1;
    s->oslots = calloc(cap, sizeof *s->oslots);
    if (!s->oslots)
        goto nomem;
    s->omask = cap - 1;
    for (size_t k = 0; k < s->nop; k++)
        ov_insert(s, k);
    for (size_t k = 0; k < d->np; k++) {
        const rp_ovp_t *src = &d->p[k];
        rp_ovp_t *e = ov_policy(s->op, s->oslots, s->omask, src->key, hash_key(src->key));
        if (e) {
            *e = *src;
        } else {
            s->op[s->nop] = *src;
            ov_insert(s, s->nop++);
        }
    }
    size_t w = 0;
    for (size_t k = 0; k < s->nop; k++) {
        if (s->op[k].del && !base_policy(b, s->op[k].key, hash_key(s->op[k].key)))
            continue;
        s->op[w++] = s->op[k];
    }
    if (w != s->nop) {
        s->nop = w;
        if (ov_hash(s))
            goto nomem;
    }
    s->base->refs++;
    *out = s;
    return RH_OK;
nomem:
    free(ord);
    s->base = NULL;
    rp__snap_free(s);
    return RH_ENOMEM;
}

/* Overlay size beyond which the builder rebuilds from LMDB (the merge): big enough that the
 * rebuild's O(table) cost is spread over thousands of writes, small enough that copying the
 * overlay on each write stays in the tens of microseconds. */
static size_t ov_limit(const rp_base_t *b)
{
    return 4096 + (b->nblk + b->npol) / 512;
}

int rp__snap_needs_merge(const rp_snap_t *s)
{
    return s->nob + s->nop > ov_limit(s->base) || s->nobdel > 512;
}

int rp__snap_applicable(const rp_snap_t *v, const rp_delta_t *d)
{
    return d->txnid > atomic_load(&v->valid_upto) && !d->overflow && v->gen == d->gen_before &&
           v->nob + v->nop + d->nb + d->np <= ov_limit(v->base);
}

void rp__snap_sizes(const rp_snap_t *s, size_t *blocks, size_t *policies)
{
    *blocks = s->base->nblk;
    *policies = s->base->npol;
}
