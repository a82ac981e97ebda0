/*
 * rh_log.h — one logging macro for the whole project (shared runtime).
 *
 * RH_LOG(level, subsystem, fmt, ...) writes one line, logfmt by default:
 *   ts=2026-11-21T12:00:00.123Z level=info sub=relay msg="forwarded" peer=netB netid=000505 txid=7
 * or, with rh_log_set_format(RH_LOG_JSON), one JSON object per line (JSON lines):
 *   {"ts":"2026-11-21T12:00:00.123Z","level":"info","sub":"relay","msg":"forwarded","peer":"netB",
 *    "netid":"000505","txid":7}
 * The format string is the message, optionally followed by key=value context:
 *   RH_LOG(RH_LOG_INFO, "relay", "forwarded peer=%s netid=%06X txid=%u", name, netid, txid);
 * The FORMAT STRING decides what is a key: everything before its first " key=" (key: [a-z0-9_]+)
 * is the message, and each " key=" of the format string starts a field whose value is the format
 * text up to the next one. The arguments are only ever values: each formatted value is escaped as
 * logfmt requires (quoted when empty or holding a space, '=', '"', '\' or a control character;
 * '"' '\' and control characters backslash-escaped; invalid UTF-8 replaced by U+FFFD), so a
 * remote-supplied "x level=err" or '"' can neither forge a key nor break the line. A value written
 * in quotes in the format (err=\"%s\") is always quoted. In JSON a value that is exactly one %d/%i/%u
 * conversion (printing a JSON integer: not "%05u") is a number, every other value a string.
 * Conventional keys: peer=, netid=, txid=, devaddr=, deveui=, err=. NEVER pass keys, secrets,
 * tokens or Authorization values.
 *
 * Rate limit (every call site): each RH_LOG call site may write at most `burst` lines per window
 * (default 20 lines per 1000 ms, rh_log_set_rate); further lines in the window are counted, not
 * written, and when the window ends one line reports them:
 *   level=warn sub=relay msg="log lines suppressed" site=relay.c:236 suppressed=4711 window_ms=1000
 *   of="refused"
 * (written by the next call of that site or by rh_log_flush_suppressed(), which a daemon calls
 * periodically and at exit). So no line a remote party can trigger repeats without limit.
 *
 * Levels and names: err (alias error), warn (alias warning), info, debug. Filtering is a cheap
 * integer compare before any formatting. Thread-safe: one write(2) per line, lock-free rate state.
 * Under systemd (JOURNAL_STREAM names the log descriptor, see systemd.exec(5)) every line starts
 * with its syslog priority "<3>".."<7>" (sd-daemon(3)), so journald keeps the level.
 * Libraries above route libevent's and OpenSSL's messages into it (broker/: runtime.c sets
 * libevent's log callback, tls_server.c drains OpenSSL's error queue).
 */
#ifndef RH_LOG_H
#define RH_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum rh_log_level { RH_LOG_ERR = 0, RH_LOG_WARN = 1, RH_LOG_INFO = 2, RH_LOG_DEBUG = 3 };
enum rh_log_format { RH_LOG_LOGFMT = 0, RH_LOG_JSON = 1 };

extern int rh_log_level; /* messages above this level are dropped; default RH_LOG_INFO */

/* The level named `name` (case-insensitive "err"/"error", "warn"/"warning", "info", "debug"), or
 * RH_EINVAL for anything else (NULL included). */
int rh_log_level_from_name(const char *name);

/* Sets the threshold from a name (see rh_log_level_from_name); returns 0 or RH_EINVAL (threshold
 * unchanged). */
int rh_log_set_level_name(const char *name);

/* The format named `name` ("logfmt" or "json"), or RH_EINVAL. */
int rh_log_format_from_name(const char *name);
void rh_log_set_format(enum rh_log_format f);

/* Output file descriptor (default 2 = stderr). Journald priority prefixes are on when the
 * descriptor is the stream named by $JOURNAL_STREAM (checked on every change of fd). */
void rh_log_set_fd(int fd);

/* Forces the "<N>" priority prefixes on or off (tests; the default follows $JOURNAL_STREAM). */
void rh_log_set_journal(int on);

/* Per call site: at most `burst` lines per `window_ms` (burst 0 = no limit). Defaults 20, 1000. */
void rh_log_set_rate(unsigned burst, unsigned window_ms);

/* Writes the "log lines suppressed" report of every call site whose window has ended with lines
 * suppressed (all of them with force != 0, e.g. at exit). Any thread. */
void rh_log_flush_suppressed(int force);

/* One call site's rate state (static, zero-initialised but for file/line; see RH_LOG). */
typedef struct rh_log_site {
    const char *file;
    int line;
    const char *_Atomic fmt;     /* set on suppression: the report names the message */
    atomic_int level;
    const char *_Atomic subsys;
    _Atomic uint64_t window_start_ms;
    _Atomic uint32_t count;      /* lines in the current window */
    _Atomic uint32_t suppressed; /* lines not written in the current window */
    atomic_int listed;           /* on the list rh_log_flush_suppressed walks */
    struct rh_log_site *next;
} rh_log_site_t;

/* Formats and writes one line for call site `site` (NULL = not rate-limited: only for lines no
 * remote party can cause, e.g. tests). Use RH_LOG rather than calling this. */
void rh_log_emit(rh_log_site_t *site, int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Not rate-limited (NULL site). Kept for callers outside the macro. */
void rh_log_write(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RH_LOG(level, subsys, ...)                                                            \
    do {                                                                                     \
        if ((level) <= rh_log_level) {                                                       \
            static rh_log_site_t rh_log_site_ = {.file = __FILE__, .line = __LINE__};        \
            rh_log_emit(&rh_log_site_, (level), (subsys), __VA_ARGS__);                      \
        }                                                                                    \
    } while (0)

#endif
