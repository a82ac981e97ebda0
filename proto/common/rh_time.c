/* rh_time.c — clock wrappers (see rh_time.h). */
#include "rh_time.h"

#include <time.h>

uint64_t rh_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t rh_mono_ms(void) { return rh_mono_ns() / 1000000u; }

int64_t rh_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rh_real_ms(void) { return rh_real_ns() / 1000000; }
