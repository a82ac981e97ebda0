/*
 * rp_index.c — the compiled read index: an immutable in-memory copy of the DevAddr blocks
 * (sorted array, same longest-prefix walk as on LMDB) and of the routing policies (open
 * addressing hash table on the fixed-width policy key), built from one LMDB snapshot.
 *
 * Why: on the 2-core target a single LMDB B-tree descent costs ~400 ns with 100k keys, and a
 * message needs up to seven (DevAddr walk + six policy steps); the index answers the same
 * questions in tens of nanoseconds. LMDB stays the only source of truth:
 *  - the index is tagged with the LMDB transaction ID it was built from (built_txnid) and the
 *    routing generation (META "gen", bumped by every routing write in the same transaction);
 *  - a reader uses it only if its own snapshot T satisfies built_txnid <= T <= valid_upto, where
 *    valid_upto only advances after the builder checked that the generation at T is unchanged
 *    (statistics writes do not change routing); otherwise the reader falls back to LMDB, so every
 *    message sees exactly its snapshot and a commit is visible to the next message either way;
 *  - a builder thread (woken by commits in this process, polling every 100 ms for commits by
 *    other processes) rebuilds or revalidates; readers never wait for it;
 *  - an old index is freed after the builder has taken and released every reader's mutex once
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

struct rp_snap {
    uint64_t built_txnid, gen;
    _Atomic uint64_t valid_upto;
    size_t nblk;
    uint64_t *bkey;     /* value << 8 | length, ascending */
    uint32_t *bnet;
    uint32_t *bten;     /* offsets into strs (0 = "") */
    uint32_t *bclu;
    char *strs;
    size_t nstrs, capstrs;
    struct rp_snap *next_retired;
    uint32_t *bucket;   /* 65537 entries: first block whose value's top 16 bits >= i */
    size_t npol, mask;  /* slots: mask + 1 entries */
    struct slot {
        uint32_t tag;   /* high 32 bits of the key hash: most misses never touch an entry */
        uint32_t idx;   /* pent index + 1, 0 = empty */
    } *slots;
    pent_t *pol;
};

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

void rp__snap_free(rp_snap_t *s)
{
    if (!s)
        return;
    free(s->bkey);
    free(s->bnet);
    free(s->bten);
    free(s->bclu);
    free(s->strs);
    free(s->slots);
    free(s->pol);
    free(s->bucket);
    free(s);
}

static uint32_t add_str(rp_snap_t *s, const uint8_t *p, size_t n)
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

/* Policy flags decoder shared with rp_lookup.c. */
int rp__policy_flags(const uint8_t *p, size_t len, rp_flags_t *f);

static int build(rp_db_t *db, MDB_txn *txn, rp_snap_t **out)
{
    *out = NULL;
    rp_snap_t *s = calloc(1, sizeof *s);
    if (!s)
        return RH_ENOMEM;
    s->built_txnid = mdb_txn_id(txn);
    s->gen = rp__read_gen(txn, db->dbi[RP_DBI_META]);
    s->valid_upto = s->built_txnid;
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
        s->bnet[i] = 0;
        s->bten[i] = s->bclu[i] = 0;
        rp_pbs_t ps = {v.mv_data, (const uint8_t *)v.mv_data + v.mv_size};
        uint32_t f;
        uint64_t vi;
        const uint8_t *b;
        size_t n;
        while (rp__pbs_next(&ps, &f, &vi, &b, &n) > 0) {
            if (f == 3)
                s->bnet[i] = (uint32_t)vi;
            else if (f == 4 && b)
                s->bten[i] = add_str(s, b, n > RP_TENANT_MAX ? RP_TENANT_MAX : n);
            else if (f == 5 && b)
                s->bclu[i] = add_str(s, b, n > RP_CLUSTER_MAX ? RP_CLUSTER_MAX : n);
        }
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
    rp__snap_free(s);
    return RH_ENOMEM;
fail:
    rp__snap_free(s);
    return RH_EIO;
}

/* ---- lookups on the index ------------------------------------------------------------------ */

/* Index of the largest key <= k, or -1: binary search inside the key's 16-bit bucket (keys in
 * earlier buckets are all smaller, keys in later ones all larger). */
static ptrdiff_t le(const rp_snap_t *s, uint64_t k)
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
    unsigned L = 32;
    for (int iter = 0; iter < 34; iter++) {
        ptrdiff_t i = le(s, (uint64_t)(a & rp__mask32(L)) << 8 | L);
        if (i < 0)
            return RH_OK;
        uint32_t bv = (uint32_t)(s->bkey[i] >> 8);
        unsigned bl = (unsigned)(s->bkey[i] & 0xff);
        if (bl <= 32 && ((a ^ bv) & rp__mask32(bl)) == 0) {
            out->found = 1;
            out->prefix = bv;
            out->length = (uint8_t)bl;
            out->owner.net_id = s->bnet[i];
            copy_s(out->owner.tenant_id, sizeof out->owner.tenant_id, s->strs + s->bten[i]);
            copy_s(out->cluster_id, sizeof out->cluster_id, s->strs + s->bclu[i]);
            return RH_OK;
        }
        unsigned cl = (unsigned)__builtin_clz(a ^ bv);
        if (cl >= L)
            return RH_EIO;
        L = cl;
    }
    return RH_EIO;
}

const rp_flags_t *rp__snap_policy(const rp_snap_t *s, const uint8_t *key)
{
    uint64_t hk = hash_key(key);
    uint32_t tag = (uint32_t)(hk >> 32);
    size_t h = (size_t)hk & s->mask;
    for (;;) {
        const struct slot *sl = &s->slots[h];
        if (!sl->idx)
            return NULL;
        if (sl->tag == tag && memcmp(s->pol[sl->idx - 1].key, key, RP_KEY_POLICY) == 0)
            return &s->pol[sl->idx - 1].flags;
        h = (h + 1) & s->mask;
    }
}

/* Called by rp_reader_begin with r->mu held: attach the index if it matches the snapshot. */
void rp__snap_attach(rp_reader_t *r)
{
    r->snap = NULL;
    if (r->no_index)
        return;
    rp_snap_t *s = atomic_load_explicit(&r->db->snap, memory_order_acquire);
    if (!s)
        return;
    uint64_t t = mdb_txn_id(r->txn);
    if (s->built_txnid <= t && t <= atomic_load_explicit(&s->valid_upto, memory_order_acquire))
        r->snap = s;
}

/* ---- builder ------------------------------------------------------------------------------- */

static _Thread_local char thread_marker;

void *rp__thread_marker(void)
{
    return &thread_marker;
}

/* Swaps in the new index and frees replaced ones once every reader has been idle since the
 * swap (readers load the index pointer only while holding their own mutex). A reader that is
 * active in the calling thread cannot be waited for: the old index is then kept on the retired
 * list and freed by a later publish or by rp_db_close. */
static void publish(rp_db_t *db, rp_snap_t *s)
{
    pthread_mutex_lock(&db->reg_mu);
    rp_snap_t *old = atomic_exchange_explicit(&db->snap, s, memory_order_acq_rel);
    if (old) {
        old->next_retired = db->retired;
        db->retired = old;
    }
    int deferred = 0;
    for (rp_reader_t *r = db->readers; r; r = r->next) {
        if (pthread_mutex_trylock(&r->mu) == 0) {
            pthread_mutex_unlock(&r->mu);
            continue;
        }
        if (atomic_load_explicit(&r->owner, memory_order_relaxed) == rp__thread_marker()) {
            deferred = 1; /* active in this very thread */
            continue;
        }
        pthread_mutex_lock(&r->mu); /* another thread's message: wait for its end */
        pthread_mutex_unlock(&r->mu);
    }
    rp_snap_t *free_list = deferred ? NULL : db->retired;
    if (!deferred)
        db->retired = NULL;
    pthread_mutex_unlock(&db->reg_mu);
    while (free_list) {
        rp_snap_t *n = free_list->next_retired;
        rp__snap_free(free_list);
        free_list = n;
    }
}

int rp_db_refresh(rp_db_t *db)
{
    if (!db || db->no_index)
        return RH_OK;
    pthread_mutex_lock(&db->build_mu);
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, NULL);
    if (rc) {
        pthread_mutex_unlock(&db->build_mu);
        return rc;
    }
    MDB_txn *txn = rp__reader_txn(r);
    uint64_t t = mdb_txn_id(txn);
    rp_snap_t *cur = atomic_load(&db->snap);
    rp_snap_t *ns = NULL;
    if (cur && cur->built_txnid <= t) {
        if (t <= atomic_load(&cur->valid_upto)) {
            rp__temp_reader_done(r);
            pthread_mutex_unlock(&db->build_mu);
            return RH_OK;
        }
        if (rp__read_gen(txn, db->dbi[RP_DBI_META]) == cur->gen) {
            atomic_store(&cur->valid_upto, t);
            rp__temp_reader_done(r);
            pthread_mutex_unlock(&db->build_mu);
            return RH_OK;
        }
    }
    uint64_t t0 = rh_mono_ns();
    rc = build(db, txn, &ns);
    rp__temp_reader_done(r); /* end the read txn before publish (publish waits for readers) */
    if (rc == RH_OK) {
        size_t nb = ns->nblk, np = ns->npol;
        publish(db, ns);
        RH_LOG(RH_LOG_DEBUG, "rp", "index rebuilt blocks=%zu policies=%zu ms=%llu", nb, np,
               (unsigned long long)((rh_mono_ns() - t0) / 1000000));
    } else {
        RH_LOG(RH_LOG_ERR, "rp", "index rebuild failed err=\"%s\" (lookups use LMDB)",
               rh_strerror(rc));
    }
    pthread_mutex_unlock(&db->build_mu);
    return rc;
}

void rp__index_kick(rp_db_t *db)
{
    if (db->no_index)
        return;
    pthread_mutex_lock(&db->kick_mu);
    db->kicked = 1;
    pthread_cond_signal(&db->kick_cv);
    pthread_mutex_unlock(&db->kick_mu);
}

static void *builder(void *arg)
{
    rp_db_t *db = arg;
    pthread_mutex_lock(&db->kick_mu);
    while (!db->stopping) {
        if (!db->kicked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&db->kick_cv, &db->kick_mu, &ts);
        }
        if (db->stopping)
            break;
        db->kicked = 0;
        pthread_mutex_unlock(&db->kick_mu);
        /* Cheap check first: anything committed since the index was last validated? */
        MDB_envinfo info;
        mdb_env_info(db->env, &info);
        rp_snap_t *cur = atomic_load(&db->snap);
        if (!cur || info.me_last_txnid > atomic_load(&cur->valid_upto))
            rp_db_refresh(db);
        pthread_mutex_lock(&db->kick_mu);
    }
    pthread_mutex_unlock(&db->kick_mu);
    return NULL;
}

int rp__index_start(rp_db_t *db)
{
    pthread_mutex_init(&db->build_mu, NULL);
    pthread_mutex_init(&db->kick_mu, NULL);
    pthread_cond_init(&db->kick_cv, NULL);
    if (db->no_index)
        return RH_OK;
    rp_db_refresh(db);
    if (db->no_builder)
        return RH_OK;
    if (pthread_create(&db->builder, NULL, builder, db) != 0)
        return RH_ENOMEM;
    db->builder_started = 1;
    return RH_OK;
}

void rp__index_stop(rp_db_t *db)
{
    if (db->builder_started) {
        pthread_mutex_lock(&db->kick_mu);
        db->stopping = 1;
        pthread_cond_signal(&db->kick_cv);
        pthread_mutex_unlock(&db->kick_mu);
        pthread_join(db->builder, NULL);
        db->builder_started = 0;
    }
    rp__snap_free(atomic_load(&db->snap));
    atomic_store(&db->snap, NULL);
    while (db->retired) {
        rp_snap_t *n = db->retired->next_retired;
        rp__snap_free(db->retired);
        db->retired = n;
    }
    pthread_mutex_destroy(&db->build_mu);
    pthread_mutex_destroy(&db->kick_mu);
    pthread_cond_destroy(&db->kick_cv);
}
