/*
 * rh_log.h — one logging macro for the whole project (shared runtime).
 *
 * RH_LOG(level, subsystem, fmt, ...) writes one line:
 *   ts=2026-11-21T12:00:00.123Z level=info sub=relay msg="forwarded" peer=netB netid=000505 txid=7
 * The format string is the message, optionally followed by key=value context:
 *   RH_LOG(RH_LOG_INFO, "relay", "forwarded peer=%s netid=%06X txid=%u", name, netid, txid);
 * Everything up to the first " key=" is quoted as msg. Conventional keys: peer=, netid=, txid=,
 * devaddr=, deveui=, err=. NEVER pass keys, secrets, tokens or Authorization values.
 * Level filtering is a cheap integer compare before any formatting. Thread-safe (one write(2)
 * per line). Libraries above (broker/) route libevent and OpenSSL errors into it.
 */
#ifndef RH_LOG_H
#define RH_LOG_H

enum rh_log_level { RH_LOG_ERR = 0, RH_LOG_WARN = 1, RH_LOG_INFO = 2, RH_LOG_DEBUG = 3 };

extern int rh_log_level; /* messages above this level are dropped; default RH_LOG_INFO */

/* Sets the threshold from a name ("err", "warn", "info", "debug"); returns 0 or RH_EINVAL. */
int rh_log_set_level_name(const char *name);

/* Output file descriptor (default 2 = stderr). */
void rh_log_set_fd(int fd);

void rh_log_write(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RH_LOG(level, subsys, ...)                                                            \
    do {                                                                                     \
        if ((level) <= rh_log_level)                                                         \
            rh_log_write((level), (subsys), __VA_ARGS__);                                    \
    } while (0)

#endif
