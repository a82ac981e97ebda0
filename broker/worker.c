/* worker.c — a worker's inbox, thread identity and registry view (see worker.h). */
#include "worker.h"

#include "rh_err.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct inbox_item {
    void (*fn)(worker_t *w, void *arg);
    void *arg;
    inbox_item_t *next;
};

static _Thread_local worker_t *tl_worker;

worker_t *worker_self(void)
{
    return tl_worker;
}

void worker_set_self(worker_t *w)
{
    tl_worker = w;
}

int worker_post(worker_t *w, void (*fn)(worker_t *w, void *arg), void *arg)
{
    inbox_item_t *it = malloc(sizeof *it);
    if (!it)
        return RH_ENOMEM;
    it->fn = fn;
    it->arg = arg;
    it->next = NULL;
    pthread_mutex_lock(&w->inbox_mu);
    bool wake = !w->inbox_head; /* a non-empty inbox has its wake-up on the way already */
    if (w->inbox_tail)
        w->inbox_tail->next = it;
    else
        w->inbox_head = it;
    w->inbox_tail = it;
    pthread_mutex_unlock(&w->inbox_mu);
    if (wake) {
        uint64_t one = 1;
        while (write(w->inbox_fd, &one, sizeof one) < 0 && errno == EINTR)
            ; /* EAGAIN: the counter is far from empty, the worker wakes anyway */
    }
    return RH_OK;
}

static void inbox_cb(evutil_socket_t fd, short ev, void *arg)
{
    worker_t *w = arg;
    (void)fd;
    (void)ev;
    /* reset the eventfd before taking the list: a post after this read wakes the loop again
     * (at worst once more, for an empty inbox) */
    if (w->inbox_fd >= 0) {
        uint64_t n;
        ssize_t got = read(w->inbox_fd, &n, sizeof n); /* EAGAIN: a direct call, nothing counted */
        (void)got;
    }
    pthread_mutex_lock(&w->inbox_mu);
    inbox_item_t *it = w->inbox_head;
    w->inbox_head = w->inbox_tail = NULL;
    pthread_mutex_unlock(&w->inbox_mu);
    while (it) {
        inbox_item_t *next = it->next;
        it->fn(w, it->arg);
        free(it);
        it = next;
    }
}

int worker_inbox_init(worker_t *w)
{
    pthread_mutex_init(&w->inbox_mu, NULL);
    w->inbox_ev = NULL;
    w->inbox_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->inbox_fd < 0)
        return RH_EIO;
    w->inbox_ev = event_new(w->base, w->inbox_fd, EV_READ | EV_PERSIST, inbox_cb, w);
    if (!w->inbox_ev || event_add(w->inbox_ev, NULL) != 0)
        return RH_ENOMEM;
    return RH_OK;
}

void worker_inbox_fini(worker_t *w)
{
    if (w->inbox_ev) {
        inbox_cb(-1, 0, w); /* run what is left (frees handoffs) */
        event_free(w->inbox_ev);
        w->inbox_ev = NULL;
    }
    if (w->inbox_fd >= 0)
        close(w->inbox_fd);
    w->inbox_fd = -1;
    pthread_mutex_destroy(&w->inbox_mu);
}

peer_registry_t *worker_registry(worker_t *w)
{
    /* the view hands out a const pointer; transactions need a mutable one to take their own
     * reference (the count is atomic, the registry itself stays immutable) */
    return (peer_registry_t *)peer_registry_view_get(w->registry, &w->view);
}
