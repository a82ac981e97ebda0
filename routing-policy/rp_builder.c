/*
 * rp_builder.c — keeps the compiled index (rp_index.c) current: the queue of committed deltas,
 * their application in commit order with one publication per batch, revalidation after
 * commits that change no routing, rebuilds, the builder thread, and the reclamation of
 * replaced versions (publish waits until every reader has been idle once).
 */
#include "rp_internal.h"

#include "rh_log.h"
#include "rh_time.h"

#include <stdlib.h>
#include <time.h>

void rp__index_push(rp_db_t *db, rp_delta_t *d)
{
    if (db->no_index) {
        rp__delta_free(d);
        return;
    }
    d->next = NULL;
    pthread_mutex_lock(&db->q_mu);
    if (db->q_tail)
        db->q_tail->next = d;
    else
        db->q_head = d;
    db->q_tail = d;
    pthread_mutex_unlock(&db->q_mu);
}

/* Swaps in the new index and frees replaced ones once every reader has been idle since the
 * swap (readers load the index pointer only while holding their own mutex). A reader that is
 * active in the calling thread cannot be waited for: the old index is then kept on the retired
 * list and freed by a later publish or by rp_db_close. Caller holds build_mu. */
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

/* Applies the queued deltas that start from the published version, in commit order, and
 * publishes the result once (a burst of writes costs one publication). Caller holds build_mu. */
static void drain(rp_db_t *db)
{
    pthread_mutex_lock(&db->q_mu);
    rp_delta_t *d = db->q_head;
    db->q_head = db->q_tail = NULL;
    pthread_mutex_unlock(&db->q_mu);
    rp_snap_t *cur = atomic_load(&db->snap), *v = cur; /* v != cur: not published yet */
    size_t nd = 0, nc = 0;
    uint64_t t0 = rh_mono_ns();
    while (d) {
        rp_delta_t *next = d->next;
        if (v && rp__snap_applicable(v, d)) {
            rp_snap_t *ns;
            if (rp__snap_apply(v, d, &ns) == RH_OK) {
                if (v != cur)
                    rp__snap_free(v);
                v = ns;
                nd++;
                nc += d->nb + d->np;
            }
        }
        /* otherwise: already included, or the state moved on: rp_db_refresh rebuilds */
        rp__delta_free(d);
        d = next;
    }
    if (v != cur) {
        publish(db, v);
        db->n_deltas += nd;
        RH_LOG(RH_LOG_DEBUG, "rp", "index deltas applied deltas=%zu changes=%zu overlay=%zu us=%llu",
               nd, nc, v->nob + v->nop, (unsigned long long)((rh_mono_ns() - t0) / 1000));
    }
}

static int queue_empty(rp_db_t *db)
{
    pthread_mutex_lock(&db->q_mu);
    int e = db->q_head == NULL;
    pthread_mutex_unlock(&db->q_mu);
    return e;
}

int rp_db_refresh(rp_db_t *db)
{
    if (!db || db->no_index)
        return RH_OK;
    pthread_mutex_lock(&db->build_mu);
    int rc = RH_OK;
    for (int round = 0;; round++) {
        drain(db);
        rp_reader_t *r;
        rc = rp__temp_reader(db, &r, NULL);
        if (rc)
            break;
        MDB_txn *txn = rp__reader_txn(r);
        uint64_t t = mdb_txn_id(txn);
        rp_snap_t *cur = atomic_load(&db->snap);
        if (cur && cur->built_txnid <= t && !rp__snap_needs_merge(cur)) {
            if (t <= atomic_load(&cur->valid_upto)) {
                rp__temp_reader_done(r);
                break;
            }
            if (rp__read_gen(txn, db->dbi[RP_DBI_META]) == cur->gen) {
                atomic_store(&cur->valid_upto, t);
                rp__temp_reader_done(r);
                break;
            }
            /* A routing change whose delta is on its way (committed, not queued yet, or
             * queued after the drain): apply it instead of rebuilding. */
            if (atomic_load(&db->pending) > 0 || !queue_empty(db)) {
                rp__temp_reader_done(r);
                if (round < 3 && !queue_empty(db))
                    continue;
                break; /* the writer kicks the builder once its delta is queued */
            }
        }
        uint64_t t0 = rh_mono_ns();
        rp_snap_t *ns = NULL;
        rc = rp__snap_build(db, txn, &ns);
        rp__temp_reader_done(r); /* end the read txn before publish (publish waits for readers) */
        if (rc == RH_OK) {
            size_t nb, np;
            rp__snap_sizes(ns, &nb, &np);
            publish(db, ns);
            db->n_rebuilds++;
            RH_LOG(RH_LOG_DEBUG, "rp", "index rebuilt blocks=%zu policies=%zu ms=%llu", nb, np,
                   (unsigned long long)((rh_mono_ns() - t0) / 1000000));
        } else {
            RH_LOG(RH_LOG_ERR, "rp", "index rebuild failed err=\"%s\" (lookups use LMDB)",
                   rh_strerror(rc));
        }
        break;
    }
    pthread_mutex_unlock(&db->build_mu);
    return rc;
}

int rp__index_fresh(rp_db_t *db, rp_snap_t **out)
{
    *out = NULL;
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, NULL);
    if (rc)
        return rc;
    pthread_mutex_lock(&db->build_mu);
    rc = rp__snap_build(db, rp__reader_txn(r), out);
    pthread_mutex_unlock(&db->build_mu);
    rp__temp_reader_done(r);
    return rc;
}

void rp__index_counts(rp_db_t *db, uint64_t *deltas, uint64_t *rebuilds)
{
    pthread_mutex_lock(&db->build_mu);
    *deltas = db->n_deltas;
    *rebuilds = db->n_rebuilds;
    pthread_mutex_unlock(&db->build_mu);
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
        /* Cheap check first: anything committed or queued since the index was validated? */
        MDB_envinfo info;
        mdb_env_info(db->env, &info);
        rp_snap_t *cur = atomic_load(&db->snap);
        if (!cur || info.me_last_txnid > atomic_load(&cur->valid_upto) || !queue_empty(db))
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
    pthread_mutex_init(&db->q_mu, NULL);
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
    while (db->q_head) {
        rp_delta_t *n = db->q_head->next;
        rp__delta_free(db->q_head);
        db->q_head = n;
    }
    pthread_mutex_destroy(&db->build_mu);
    pthread_mutex_destroy(&db->kick_mu);
    pthread_mutex_destroy(&db->q_mu);
    pthread_cond_destroy(&db->kick_cv);
}
