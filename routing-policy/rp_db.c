/*
 * rp_db.c — the LMDB environment: open (named databases, stale reader check, the index builder
 * started, rp_builder.c) and close. Readers, map growth and the LMDB error mapping are
 * rp_reader.c's (the lowest environment file).
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
