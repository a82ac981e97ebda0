/*
 * rp_db.c — the LMDB environment: open (named databases, stale reader check), per-thread
 * readers with reset/renew, and map growth. Growth (mdb_env_set_mapsize) is only safe with no
 * transaction active in the process, so each reader holds its own mutex while active and the
 * grower takes the write mutex, the registry mutex and then every reader's mutex (always in that
 * order). Readers never contend with each other: each mutex is private to its thread.
 */
#include "rp_internal.h"

#include "rh_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const dbi_names[RP_DBI_COUNT] = {
    "network", "tenant", "block", "join", "policy", "endpoint", "member", "api_key",
    "audit",   "stats",  "netidx", "meta",
};

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

int rp_db_open(const char *path, const rp_db_opts_t *opts, rp_db_t **out, rh_diag_t *diag)
{
    if (!path || !out)
        return rh_diag_fail(diag, RH_EINVAL, "rp_db_open: path and out are required");
    *out = NULL;
    rp_db_opts_t o = {0};
    if (opts)
        o = *opts;
    if (o.map_size == 0)
        o.map_size = (size_t)256 << 20;
    if (o.max_map_size == 0)
        o.max_map_size = (size_t)16 << 30;
    if (o.max_map_size < o.map_size)
        o.max_map_size = o.map_size;
    if (o.max_readers == 0)
        o.max_readers = 126;

    rp_db_t *db = calloc(1, sizeof *db);
    if (!db)
        return rh_diag_fail(diag, RH_ENOMEM, "rp_db_open: out of memory");
    pthread_mutex_init(&db->write_mu, NULL);
    pthread_mutex_init(&db->reg_mu, NULL);
    db->max_map_size = o.max_map_size;
    db->read_only = o.read_only;
    db->no_index = o.no_index;
    db->no_builder = o.no_builder;

    int rc = mdb_env_create(&db->env);
    if (rc) {
        free(db);
        return rp__lmdb_err(rc, diag, "mdb_env_create");
    }
    mdb_env_set_maxdbs(db->env, RP_DBI_COUNT + 4);
    mdb_env_set_maxreaders(db->env, o.max_readers);
    mdb_env_set_mapsize(db->env, o.map_size);
    unsigned flags = MDB_NOTLS; /* reader slots belong to rp_reader_t objects, not threads */
    if (o.no_sync)
        flags |= MDB_NOSYNC;
    if (o.read_only)
        flags |= MDB_RDONLY;
    rc = mdb_env_open(db->env, path, flags, 0640);
    if (rc) {
        rh_diag_fail(diag, rc == ENOENT ? RH_EINVAL : RH_EIO, "LMDB environment %s: %s", path,
                     mdb_strerror(rc));
        mdb_env_close(db->env);
        free(db);
        return rc == ENOENT ? RH_EINVAL : RH_EIO;
    }
    int dead = 0;
    mdb_reader_check(db->env, &dead);
    if (dead)
        RH_LOG(RH_LOG_WARN, "rp", "cleared stale LMDB reader slots count=%d path=%s", dead, path);

    /* Adopt a larger size set by another process or a previous run. */
    MDB_envinfo info;
    mdb_env_info(db->env, &info);
    db->map_size = info.me_mapsize;
    if (db->max_map_size < db->map_size)
        db->max_map_size = db->map_size;

    MDB_txn *txn;
    rc = mdb_txn_begin(db->env, NULL, o.read_only ? MDB_RDONLY : 0, &txn);
    if (rc) {
        int e = rp__lmdb_err(rc, diag, "open: mdb_txn_begin");
        mdb_env_close(db->env);
        free(db);
        return e == RP_EMAPFULL ? RH_EFULL : e;
    }
    for (int i = 0; i < RP_DBI_COUNT; i++) {
        rc = mdb_dbi_open(txn, dbi_names[i], o.read_only ? 0 : MDB_CREATE, &db->dbi[i]);
        if (rc) {
            rh_diag_fail(diag, RH_EIO, "LMDB database \"%s\" in %s: %s%s", dbi_names[i], path,
                         mdb_strerror(rc),
                         o.read_only && rc == MDB_NOTFOUND ? " (environment not initialized)"
                                                          : "");
            mdb_txn_abort(txn);
            mdb_env_close(db->env);
            free(db);
            return RH_EIO;
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc) {
        int e = rp__lmdb_err(rc, diag, "open: commit");
        mdb_env_close(db->env);
        free(db);
        return e == RP_EMAPFULL ? RH_EFULL : e;
    }
    *out = db;
    if (rp__index_start(db) != RH_OK)
        RH_LOG(RH_LOG_WARN, "rp", "index builder thread did not start (lookups use LMDB)");
    return RH_OK;
}

void rp_db_close(rp_db_t *db)
{
    if (!db)
        return;
    rp__index_stop(db);
    if (db->readers)
        RH_LOG(RH_LOG_WARN, "rp", "rp_db_close with readers still registered");
    mdb_env_close(db->env);
    pthread_mutex_destroy(&db->write_mu);
    pthread_mutex_destroy(&db->reg_mu);
    free(db);
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
