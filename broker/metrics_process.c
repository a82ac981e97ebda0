/* metrics_process.c — process_* values (see metrics_process.h). */
#include "metrics_process.h"

#include "rh_time.h"

#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

static _Atomic int64_t start_ms;

void metrics_process_mark_start(void)
{
    int64_t zero = 0;
    atomic_compare_exchange_strong(&start_ms, &zero, rh_real_ms());
}

void metrics_process_read(metrics_process_t *p)
{
    p->start_time_s = (double)atomic_load(&start_ms) / 1000.0;
    struct rusage ru;
    p->cpu_s = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        p->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    p->resident_bytes = p->virtual_bytes = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long long size = 0, resident = 0;
        if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
            long page = sysconf(_SC_PAGESIZE);
            p->virtual_bytes = size * (unsigned long long)page;
            p->resident_bytes = resident * (unsigned long long)page;
        }
        fclose(f);
    }
    p->open_fds = -1;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        p->open_fds = n - 1; /* not the directory stream's own descriptor */
    }
    struct rlimit rl;
    p->max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                     ? (long)rl.rlim_cur
                     : -1;
}
