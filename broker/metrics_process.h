/*
 * metrics_process.h — the process_* metrics every Prometheus client library exports
 * (https://prometheus.io/docs/instrumenting/writing_clientlibs/#process-metrics), read from
 * getrusage(2), getrlimit(2) and /proc/self (statm, fd/), which the systemd unit's
 * ProtectProc=invisible/ProcSubset=pid leave readable.
 */
#ifndef RH_METRICS_PROCESS_H
#define RH_METRICS_PROCESS_H

#include <stdint.h>

typedef struct metrics_process {
    double start_time_s;     /* Unix time the process started, s (0 = unknown) */
    double cpu_s;            /* user + system CPU time, s */
    uint64_t resident_bytes; /* resident set size (0 = unreadable) */
    uint64_t virtual_bytes;  /* virtual memory size (0 = unreadable) */
    long open_fds;           /* open file descriptors (-1 = unreadable) */
    long max_fds;            /* RLIMIT_NOFILE soft limit (-1 = unlimited or unreadable) */
} metrics_process_t;

/* Records the process start time (call once, early in main). */
void metrics_process_mark_start(void);

/* Reads the current values into *p. Never fails: what cannot be read is marked as above. */
void metrics_process_read(metrics_process_t *p);

#endif
