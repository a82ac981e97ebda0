/* offload.c — a helper thread with a job queue, finished jobs handed back to an event loop
 * (offload.h). */
#include "offload.h"

#include "rh_err.h"

#include <pthread.h>
#include <stdlib.h>

struct offload {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    offload_job_t *q_head, *q_tail; /* waiting, in submission order */
    offload_job_t *done_head, *done_tail;
    struct event *done_ev;          /* activated on the loop when a job finished */
};

static void *offload_thread(void *arg)
{
    offload_t *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->stop && !o->q_head)
            pthread_cond_wait(&o->cv, &o->mu);
        if (o->stop)
            break;
        offload_job_t *j = o->q_head;
        o->q_head = j->next;
        if (!o->q_head)
            o->q_tail = NULL;
        pthread_mutex_unlock(&o->mu);
        j->run(j);
        pthread_mutex_lock(&o->mu);
        j->next = NULL;
        if (o->done_tail)
            o->done_tail->next = j;
        else
            o->done_head = j;
        o->done_tail = j;
        event_active(o->done_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* The loop: hands back what finished (in finishing order). */
static void done_cb(evutil_socket_t fd, short ev, void *arg)
{
    offload_t *o = arg;
    (void)fd;
    (void)ev;
    pthread_mutex_lock(&o->mu);
    offload_job_t *j = o->done_head;
    o->done_head = o->done_tail = NULL;
    pthread_mutex_unlock(&o->mu);
    while (j) {
        offload_job_t *next = j->next; /* done may free or resubmit j */
        j->done(j);
        j = next;
    }
}

int offload_new(struct event_base *base, offload_t **out)
{
    *out = NULL;
    offload_t *o = calloc(1, sizeof *o);
    if (!o)
        return RH_ENOMEM;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->done_ev = event_new(base, -1, 0, done_cb, o);
    if (!o->done_ev || pthread_create(&o->th, NULL, offload_thread, o) != 0) {
        if (o->done_ev)
            event_free(o->done_ev);
        pthread_cond_destroy(&o->cv);
        pthread_mutex_destroy(&o->mu);
        free(o);
        return RH_ENOMEM;
    }
    *out = o;
    return RH_OK;
}

void offload_submit(offload_t *o, offload_job_t *j)
{
    j->next = NULL;
    pthread_mutex_lock(&o->mu);
    if (o->q_tail)
        o->q_tail->next = j;
    else
        o->q_head = j;
    o->q_tail = j;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

void offload_free(offload_t *o, void (*cancel)(offload_job_t *j))
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->th, NULL);
    done_cb(-1, 0, o);
    for (offload_job_t *j = o->q_head, *nx; j; j = nx) {
        nx = j->next;
        (cancel ? cancel : j->done)(j);
    }
    event_free(o->done_ev);
    pthread_cond_destroy(&o->cv);
    pthread_mutex_destroy(&o->mu);
    free(o);
}
