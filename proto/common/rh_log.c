/* rh_log.c — key=value line logger (see rh_log.h). One write(2) per line, so lines from several
 * threads never interleave. */
#include "rh_log.h"

#include "rh_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int rh_log_level = RH_LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"err", "warn", "info", "debug"};

int rh_log_set_level_name(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, level_names[i]) == 0) {
            rh_log_level = i;
            return RH_OK;
        }
    }
    return RH_EINVAL;
}

void rh_log_set_fd(int fd) { log_fd = fd; }

void rh_log_write(int level, const char *subsys, const char *fmt, ...)
{
    char body[1024], line[1200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;

    /* Split "message key=value ..." at the first " word=" to quote the message part. */
    const char *ctx = "";
    size_t msglen = strlen(body);
    for (const char *p = body; (p = strchr(p, ' ')) != NULL; p++) {
        const char *q = p + 1;
        while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_')
            q++;
        if (*q == '=' && q > p + 1) {
            msglen = (size_t)(p - body);
            ctx = p;
            break;
        }
    }

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    if (level < 0)
        level = 0;
    if (level > 3)
        level = 3;
    int len = snprintf(line, sizeof line,
                       "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s sub=%s msg=\"%.*s\"%s\n",
                       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                       tm.tm_sec, ts.tv_nsec / 1000000, level_names[level],
                       subsys ? subsys : "-", (int)msglen, body, ctx);
    if (len > (int)sizeof line - 1) {
        len = (int)sizeof line - 1;
        line[len - 1] = '\n';
    }
    if (len > 0) {
        ssize_t w = write(log_fd, line, (size_t)len);
        (void)w;
    }
}
