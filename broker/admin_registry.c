/* admin_registry.c — Member and Endpoint writes of the admin API (issue 18): the next member
 * registry is built on a registry thread (offload.h), so the admin loop, which also answers
 * /healthz, /metrics and every other admin request, never spends the build's time; on the loop
 * the record is then stored and that registry published in one step (hub_registry_commit through
 * the hooks of admin.h). A record the registry refuses is never stored (422). Writes run one at a
 * time, in arrival order: each is built on the registry its predecessor published. If something
 * else published a registry in between (an import, SIGHUP), the write is built again; after
 * REG_RETRIES such rounds it falls back to the synchronous path (admin_table_write: store, apply
 * on the loop, undo if refused), which is also the path when the hooks have no `prepare`. In a
 * cluster (hub->cluster) admin_resources.c does not come here: every node applies the change
 * from the table stream through the synchronous hook. */
#include "admin_internal.h"

#include "offload.h"
#include "rh_log.h"

#include <stdlib.h>
#include <string.h>

#define REG_QUEUE_MAX 256 /* writes waiting or in progress; beyond: 503 + Retry-After */
#define REG_RETRIES 8

typedef struct reg_write reg_write_t;
struct reg_write {
    offload_job_t job;        /* first: the job is the write */
    admin_api_t *a;
    admin_req_t r;            /* held copy: answered by done */
    admin_registry_done_fn done;
    rp_kind_t kind;
    int del;
    rp_put_mode_t mode;
    ProtobufCMessage *m, *old;
    /* registry thread's result */
    int rc;
    rh_diag_t d;
    void *next;               /* the prepared registry */
    unsigned rounds;
    reg_write_t *qnext;
};

struct admin_registry {
    offload_t *off;
    reg_write_t *head, *tail; /* waiting for their turn */
    unsigned n;               /* waiting + the one in progress */
    int busy, stopping;
};

void admin_req_hold(admin_req_t *r, admin_req_t *copy)
{
    *copy = *r;
    for (int i = 0; i < r->nseg; i++)
        copy->seg[i] = copy->pathbuf + (r->seg[i] - r->pathbuf);
    r->req = NULL;
}

static int status_of_store(int rc)
{
    return rc == RH_OK ? 0 : rc == RH_EINVAL ? 422 : admin_status_of(rc);
}

/* The LMDB write of the change (hub_registry_commit's store callback): the single-node table
 * write (cluster_table.h) without its registry hook, the registry being published by the commit. */
static int store_cb(void *arg, rh_diag_t *d)
{
    reg_write_t *w = arg;
    table_change_t ch = {.op = w->del ? TABLE_OP_DELETE : TABLE_OP_PUT, .kind = w->kind,
                         .mode = w->mode, .actor = w->r.p.key_id, .msg = w->m};
    return table_change_apply(w->a->db, &ch, NULL, NULL, NULL, d);
}

/* Synchronous path: store, apply on this loop through the registry hook, undo the store when
 * the registry refuses it (admin_table_write). Returns the HTTP status (0: done). */
static int write_sync(reg_write_t *w, rh_diag_t *d)
{
    return status_of_store(admin_table_write(&w->r, w->del ? TABLE_OP_DELETE : TABLE_OP_PUT,
                                             w->kind, w->m, w->mode, NULL, d));
}

static void write_free(reg_write_t *w)
{
    admin_free_msg(w->m);
    admin_free_msg(w->old);
    free(w);
}

static void finish(reg_write_t *w, int status, rh_diag_t *d)
{
    w->done(&w->r, w->kind, w->m, w->old, status, d);
    write_free(w);
}

static void start_next(admin_registry_t *g);

static void run_cb(offload_job_t *j)
{
    reg_write_t *w = (reg_write_t *)j;
    const admin_registry_hooks_t *h = &w->a->reg_hooks;
    rh_diag_clear(&w->d);
    w->next = NULL;
    w->rc = h->prepare(h->arg, w->kind, w->del ? NULL : w->m, w->del ? w->m : NULL, &w->next,
                       &w->d);
}

static void done_cb(offload_job_t *j)
{
    reg_write_t *w = (reg_write_t *)j;
    admin_api_t *a = w->a;
    admin_registry_t *g = a->registry;
    const admin_registry_hooks_t *h = &a->reg_hooks;
    int status;
    rh_diag_t d = {{0}};
    if (w->rc != RH_OK) {
        status = w->rc == RH_ENOMEM ? 503 : 422; /* the registry refused the record */
        d = w->d;
    } else {
        int rc = h->commit(h->arg, w->next, store_cb, w, &d);
        w->next = NULL;
        if (rc == RH_EAGAIN && ++w->rounds < REG_RETRIES && !g->stopping) {
            offload_submit(g->off, &w->job); /* built on a registry since replaced: again */
            return;
        }
        status = rc == RH_EAGAIN ? write_sync(w, &d) : status_of_store(rc);
    }
    g->busy = 0;
    g->n--;
    finish(w, status, &d);
    start_next(g);
}

/* Shutdown: a write that never ran. */
static void cancel_cb(offload_job_t *j)
{
    reg_write_t *w = (reg_write_t *)j;
    rh_diag_t d = {{0}};
    rh_diag_fail(&d, RH_EIO, "%s: the hub is shutting down, not stored", rp_kind_name(w->kind));
    finish(w, 503, &d);
}

static void start_next(admin_registry_t *g)
{
    if (g->busy || g->stopping || !g->head)
        return;
    reg_write_t *w = g->head;
    g->head = w->qnext;
    if (!g->head)
        g->tail = NULL;
    g->busy = 1;
    offload_submit(g->off, &w->job);
}

void admin_registry_write(admin_req_t *r, rp_kind_t kind, int del, rp_put_mode_t mode,
                          ProtobufCMessage *m, ProtobufCMessage *old, admin_registry_done_fn done)
{
    admin_api_t *a = r->a;
    rh_diag_t d = {{0}};
    reg_write_t *w = calloc(1, sizeof *w);
    if (!w) {
        admin_free_msg(m);
        admin_free_msg(old);
        admin_reply_error(r, 503, "%s: out of memory", rp_kind_name(kind));
        return;
    }
    w->a = a;
    w->done = done;
    w->kind = kind;
    w->del = del;
    w->mode = mode;
    w->m = m;
    w->old = old;
    w->job.run = run_cb;
    w->job.done = done_cb;
    admin_registry_t *g = a->registry;
    if (!g && a->reg_hooks.prepare && a->reg_hooks.commit) {
        g = calloc(1, sizeof *g);
        if (g && offload_new(a->hub->main_base, &g->off) != RH_OK) {
            free(g);
            g = NULL;
        }
        a->registry = g;
        if (!g)
            RH_LOG(RH_LOG_WARN, "admin", "no registry thread: member writes apply on the loop");
    }
    if (!g) { /* no off-loop path: as before, on this loop */
        admin_req_hold(r, &w->r);
        finish(w, write_sync(w, &d), &d);
        return;
    }
    if (g->n >= REG_QUEUE_MAX) {
        write_free(w);
        admin_reply_busy(r, "too many member and endpoint writes in progress, retry later");
        return;
    }
    admin_req_hold(r, &w->r);
    g->n++;
    if (g->tail)
        g->tail->qnext = w;
    else
        g->head = w;
    g->tail = w;
    start_next(g);
}

void admin_registry_fini(admin_api_t *a)
{
    admin_registry_t *g = a->registry;
    if (!g)
        return;
    g->stopping = 1;
    offload_free(g->off, cancel_cb); /* the write in progress is finished or cancelled */
    for (reg_write_t *w = g->head, *nx; w; w = nx) {
        nx = w->qnext;
        cancel_cb(&w->job);
    }
    free(g);
    a->registry = NULL;
}
