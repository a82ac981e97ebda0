/*
 * rp_reader.c — per-thread readers of the LMDB environment (rp.h rp_reader_*): a read
 * transaction reset and renewed per message, cursors renewed lazily, the compiled index attached
 * when it matches the reader's snapshot (rp__snap_attach), and short-lived readers for cold
 * paths (rp__temp_reader); the LMDB error mapping every rp file uses (rp__lmdb_err); and map
 * growth (rp__set_mapsize). Growth (mdb_env_set_mapsize) is
 * only safe with no transaction active in the process, so each reader holds its own mutex while
 * active and the grower takes the write mutex, the registry mutex and then every reader's mutex
 * (always in that order). Readers never contend with each other: each mutex is private to its
 * thread.
 *
 * Dependencies point one way: rp_db.c (open/close: starts and stops the builder) and
 * rp_builder.c, rp_lookup.c, rp_read.c, rp_stats.c use readers; this file uses neither the
 * builder nor the index code, only the index version's fields (rp_internal.h).
 */
#include "rp_internal.h"

#include "rh_log.h"

#include <errno.h>
#include <stdlib.h>

int rp__lmdb_err(int rc, rh_diag_t *diag, const char *what)
{
    if (rc == MDB_MAP_FULL)
        return RP_EMAPFULL;
    if (rc == ENOMEM)
        return rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", what);
    if (rc == EACCES || rc == EROFS)
        return rh_diag_fail(diag, RH_EPERM, "%s: %s", what, mdb_strerror(rc));
    return rh_diag_fail(diag, RH_EIO, "%s: %s", what, mdb_strerror(rc));
}

size_t rp_db_map_size(rp_db_t *db)
{
    return db ? db->map_size : 0;
}

int rp__set_mapsize(rp_db_t *db, size_t new_size)
{
    pthread_mutex_lock(&db->reg_mu);
    for (rp_reader_t *r = db->readers; r; r = r->next)
        pthread_mutex_lock(&r->mu);
    int rc = mdb_env_set_mapsize(db->env, new_size);
    if (rc == 0) {
        MDB_envinfo info;
        mdb_env_info(db->env, &info);
        db->map_size = info.me_mapsize;
        if (db->max_map_size < db->map_size)
            db->max_map_size = db->map_size;
    }
    for (rp_reader_t *r = db->readers; r; r = r->next)
        pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&db->reg_mu);
    return rc ? rp__lmdb_err(rc, NULL, "mdb_env_set_mapsize") : RH_OK;
}

static _Thread_local char thread_marker;

/* A per-thread address: identifies the thread that began a reader (reader ownership checks). */
void *rp__thread_marker(void)
{
    return &thread_marker;
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
    if (s->built_txnid <= t && t <= atomic_load_explicit(&s->valid_upto, memory_order_acquire)) {
        /* LMDB takes a read snapshot's ID and then copies the meta page in slot ID & 1; two
         * commits in between overwrite that slot, and the transaction then reads a later
         * state than its ID says. When two or more commits have happened since the ID was
         * taken, this message reads LMDB: its own data, whatever they are. */
        MDB_envinfo info;
        mdb_env_info(r->db->env, &info);
        if (info.me_last_txnid <= t + 1)
            r->snap = s;
    }
}

int rp_reader_new(rp_db_t *db, rp_reader_t **out, rh_diag_t *diag)
{
    if (!db || !out)
        return rh_diag_fail(diag, RH_EINVAL, "rp_reader_new: db and out are required");
    rp_reader_t *r = calloc(1, sizeof *r);
    if (!r)
        return rh_diag_fail(diag, RH_ENOMEM, "rp_reader_new: out of memory");
    r->db = db;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_lock(&db->reg_mu);
    r->next = db->readers;
    if (db->readers)
        db->readers->prev = r;
    db->readers = r;
    pthread_mutex_unlock(&db->reg_mu);
    *out = r;
    return RH_OK;
}

void rp_reader_free(rp_reader_t *r)
{
    if (!r)
        return;
    rp_reader_end(r);
    rp_db_t *db = r->db;
    pthread_mutex_lock(&db->reg_mu);
    for (int i = 0; i < RP_DBI_COUNT; i++)
        if (r->cur[i])
            mdb_cursor_close(r->cur[i]);
    if (r->txn)
        mdb_txn_abort(r->txn);
    if (r->prev)
        r->prev->next = r->next;
    else
        db->readers = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&db->reg_mu);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int rp_reader_begin(rp_reader_t *r)
{
    if (!r || r->active)
        return RH_EINVAL;
    for (int attempt = 0; attempt < 3; attempt++) {
        pthread_mutex_lock(&r->mu);
        int rc;
        if (r->txn) {
            rc = mdb_txn_renew(r->txn);
        } else {
            rc = mdb_txn_begin(r->db->env, NULL, MDB_RDONLY, &r->txn);
            if (rc)
                r->txn = NULL;
        }
        if (rc == 0) {
            atomic_store_explicit(&r->owner, rp__thread_marker(), memory_order_relaxed);
            r->active = 1;
            r->cur_fresh = 0;
            rp__snap_attach(r);
            return RH_OK;
        }
        /* Failed: drop the transaction (and its cursors) and start over. */
        for (int i = 0; i < RP_DBI_COUNT; i++)
            if (r->cur[i]) {
                mdb_cursor_close(r->cur[i]);
                r->cur[i] = NULL;
            }
        if (r->txn) {
            mdb_txn_abort(r->txn);
            r->txn = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        if (rc != MDB_MAP_RESIZED) {
            RH_LOG(RH_LOG_ERR, "rp", "read transaction failed err=\"%s\"", mdb_strerror(rc));
            return RH_EIO;
        }
        /* Another process grew the map: adopt its size (no transaction of ours active). */
        pthread_mutex_lock(&r->db->write_mu);
        rp__set_mapsize(r->db, 0);
        pthread_mutex_unlock(&r->db->write_mu);
    }
    return RH_EIO;
}

void rp_reader_end(rp_reader_t *r)
{
    if (!r || !r->active)
        return;
    mdb_txn_reset(r->txn);
    r->active = 0;
    r->snap = NULL;
    pthread_mutex_unlock(&r->mu);
}

int rp_reader_uses_index(const rp_reader_t *r)
{
    return r && r->active && r->snap != NULL;
}

void rp_reader_use_index(rp_reader_t *r, int on)
{
    if (r)
        r->no_index = !on;
}

MDB_txn *rp__reader_txn(rp_reader_t *r)
{
    return r->txn;
}

MDB_cursor *rp__reader_cursor(rp_reader_t *r, int dbi)
{
    unsigned bit = 1u << dbi;
    if (r->cur_fresh & bit)
        return r->cur[dbi];
    int rc;
    if (r->cur[dbi]) {
        rc = mdb_cursor_renew(r->txn, r->cur[dbi]);
    } else {
        rc = mdb_cursor_open(r->txn, r->db->dbi[dbi], &r->cur[dbi]);
        if (rc)
            r->cur[dbi] = NULL;
    }
    if (rc)
        return NULL;
    r->cur_fresh |= bit;
    return r->cur[dbi];
}

int rp__temp_reader(rp_db_t *db, rp_reader_t **out, rh_diag_t *diag)
{
    int rc = rp_reader_new(db, out, diag);
    if (rc)
        return rc;
    rc = rp_reader_begin(*out);
    if (rc) {
        rp_reader_free(*out);
        *out = NULL;
        return rh_diag_fail(diag, rc, "read transaction failed (see log)");
    }
    return RH_OK;
}

void rp__temp_reader_done(rp_reader_t *r)
{
    rp_reader_free(r);
}
