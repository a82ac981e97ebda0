/*
 * offload.h — one helper thread that runs jobs off an event loop and hands each finished job back
 * to that loop (the admin listener's: its /healthz must not wait for slow work; issue 18).
 *
 * A job is a struct the caller embeds offload_job_t in: `run` executes on the helper thread
 * (it may only touch what the job owns and thread-safe shared state), then `done` executes on
 * the loop's thread, in the order the jobs finished. Jobs run one at a time, in submission
 * order. The caller owns the job memory throughout (free it in `done`, or submit it again).
 */
#ifndef RH_OFFLOAD_H
#define RH_OFFLOAD_H

#include <event2/event.h>

typedef struct offload offload_t;
typedef struct offload_job offload_job_t;

struct offload_job {
    void (*run)(offload_job_t *j);  /* helper thread */
    void (*done)(offload_job_t *j); /* the loop's thread, after run */
    offload_job_t *next;            /* private to offload.c */
};

/* Starts the helper thread; finished jobs are handed back on `base` (which must outlive the
 * offload_t). Errors: RH_ENOMEM (allocation, event, or thread creation failed). */
int offload_new(struct event_base *base, offload_t **out);

/* Queues a job (from the loop's thread; also from inside a `done`). Never blocks beyond a short
 * mutex; never calls run or done itself. Not after offload_free started. */
void offload_submit(offload_t *o, offload_job_t *j);

/* Stops the thread after its current job, then calls `done` for every job that ran, and
 * `cancel` (or `done` when NULL) for every job that never ran; then frees. A `done` or `cancel`
 * called from here must not submit again. NULL is a no-op. Loop's thread. */
void offload_free(offload_t *o, void (*cancel)(offload_job_t *j));

#endif
