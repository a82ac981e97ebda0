/*
 * bench-handoff — what sharing outbound connections across workers would cost per relayed
 * message (issue 18 item 5; docs/PERFORMANCE.md "Many home endpoints"): a connection belongs to
 * one worker's event loop, so a request relayed by another worker must be handed to the owner
 * (worker_post) and its answer handed back — two inbox hand-offs per message, which per-worker
 * pools never pay. Two worker threads with their own event_base; C requests kept outstanding,
 * each one hop A -> B -> A through the real inbox (broker/worker.c). Prints round trips per
 * second and the process CPU (user + system, all threads) per round trip in µs.
 *
 * Usage: bench-handoff [SECONDS (2)] [OUTSTANDING...(1 8 64)]
 */
#include "rh_version.h"
#include "worker.h"

#include <event2/thread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static worker_t wa, wb;
static atomic_int stopping;
static unsigned long trips;

static void at_b(worker_t *w, void *arg);

static void at_a(worker_t *w, void *arg) /* the answer is back at the requesting worker */
{
    (void)w;
    trips++;
    if (!atomic_load(&stopping))
        worker_post(&wb, at_b, arg);
}

static void at_b(worker_t *w, void *arg) /* the connection's owner: sends, gets the answer */
{
    (void)w;
    if (!atomic_load(&stopping))
        worker_post(&wa, at_a, arg);
}

static void *loop(void *arg)
{
    event_base_loop(((worker_t *)arg)->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void run(double secs, unsigned outstanding)
{
    wa.base = event_base_new();
    wb.base = event_base_new();
    if (!wa.base || !wb.base || worker_inbox_init(&wa) || worker_inbox_init(&wb)) {
        fprintf(stderr, "bench-handoff: cannot set up the event loops\n");
        exit(1);
    }
    atomic_store(&stopping, 0);
    trips = 0;
    pthread_t ta, tb;
    pthread_create(&tb, NULL, loop, &wb);
    pthread_create(&ta, NULL, loop, &wa);
    struct timespec t0, t1;
    double c0 = cpu_s();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (unsigned i = 0; i < outstanding; i++)
        worker_post(&wb, at_b, NULL);
    struct timespec d = {(time_t)secs, (long)((secs - (time_t)secs) * 1e9)};
    nanosleep(&d, NULL);
    atomic_store(&stopping, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double c1 = cpu_s();
    unsigned long n = trips; /* read after stopping: a few more may still land */
    event_base_loopbreak(wa.base);
    event_base_loopbreak(wb.base);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    worker_inbox_fini(&wa);
    worker_inbox_fini(&wb);
    event_base_free(wa.base);
    event_base_free(wb.base);
    double wall = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("outstanding %u: %.0f round trips/s, CPU %.2f us per round trip (2 hand-offs)\n",
           outstanding, n / wall, n ? (c1 - c0) / n * 1e6 : 0.0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && rh_version_arg(argv[1], "bench-handoff"))
        return 0;
    evthread_use_pthreads();
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    if (argc > 2) {
        for (int i = 2; i < argc; i++)
            run(secs, (unsigned)atoi(argv[i]));
    } else {
        unsigned def[] = {1, 8, 64};
        for (size_t i = 0; i < sizeof def / sizeof def[0]; i++)
            run(secs, def[i]);
    }
    return 0;
}
