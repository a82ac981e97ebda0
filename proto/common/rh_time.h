/*
 * rh_time.h — clocks (shared runtime). Deadlines and latencies use the monotonic clock; only
 * timestamps shown to people or peers (TS002 RecvTime, logs, statistics buckets) use real time.
 */
#ifndef RH_TIME_H
#define RH_TIME_H

#include <stdint.h>

/* Monotonic time in nanoseconds / milliseconds since an arbitrary origin (CLOCK_MONOTONIC). */
uint64_t rh_mono_ns(void);
uint64_t rh_mono_ms(void);

/* Wall-clock time in nanoseconds / milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t rh_real_ns(void);
int64_t rh_real_ms(void);

#endif
