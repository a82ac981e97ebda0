/* rh_log.c — logfmt / JSON lines logger with per-call-site rate limits (see rh_log.h).
 *
 * A line is built from the FORMAT STRING's structure, never from the formatted text: the format is
 * split into the message and " key=" fields first, then each piece is formatted on its own with
 * its own arguments (taken from the va_list in order, by the printf conversion that names them)
 * and escaped. One write(2) per line, so lines from several threads never interleave. */
#include "rh_log.h"

#include "rh_err.h"
#include "rh_time.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int rh_log_level = RH_LOG_INFO;
static atomic_int log_fd = 2;
static atomic_int log_format = RH_LOG_LOGFMT;
static atomic_int journal = -1; /* -1: not checked yet for log_fd */
static _Atomic unsigned rate_burst = 20;
static _Atomic unsigned rate_window_ms = 1000;
static rh_log_site_t *_Atomic sites; /* sites that suppressed at least once (never removed) */

static const char *const level_names[] = {"err", "warn", "info", "debug"};
static const int syslog_prio[] = {3, 4, 6, 7}; /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */

int rh_log_level_from_name(const char *name)
{
    static const struct { const char *n; int l; } names[] = {
        {"err", RH_LOG_ERR},   {"error", RH_LOG_ERR},    {"warn", RH_LOG_WARN},
        {"warning", RH_LOG_WARN}, {"info", RH_LOG_INFO}, {"debug", RH_LOG_DEBUG}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(name, names[i].n) == 0)
            return names[i].l;
    }
    return RH_EINVAL;
}

int rh_log_set_level_name(const char *name)
{
    int l = rh_log_level_from_name(name);
    if (l < 0)
        return l;
    rh_log_level = l;
    return RH_OK;
}

int rh_log_format_from_name(const char *name)
{
    if (name && strcasecmp(name, "logfmt") == 0)
        return RH_LOG_LOGFMT;
    if (name && strcasecmp(name, "json") == 0)
        return RH_LOG_JSON;
    return RH_EINVAL;
}

void rh_log_set_format(enum rh_log_format f) { atomic_store(&log_format, (int)f); }

void rh_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
    atomic_store(&journal, -1);
}

void rh_log_set_journal(int on) { atomic_store(&journal, on ? 1 : 0); }

void rh_log_set_rate(unsigned burst, unsigned window_ms)
{
    atomic_store(&rate_burst, burst);
    atomic_store(&rate_window_ms, window_ms ? window_ms : 1);
}

/* systemd.exec(5): JOURNAL_STREAM="DEV:INODE" of the stream stdout/stderr are connected to. */
static int journal_on(int fd)
{
    int j = atomic_load(&journal);
    if (j >= 0)
        return j;
    j = 0;
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(fd, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        j = 1;
    atomic_store(&journal, j);
    return j;
}

/* ------------------------------------------------------------------ line buffer */

typedef struct {
    char *p;
    size_t len, cap;
    int full; /* something did not fit: the line ends with truncated=true */
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    size_t room = b->len < b->cap ? b->cap - b->len : 0;
    if (n > room) {
        b->full = 1;
        n = room;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Whether a logfmt value must be quoted. */
static int needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '=' || c == '"' || c == '\\' || c == 0x7f)
            return 1;
        if (c >= 0x80 && utf8_len((const unsigned char *)s + i, n - i) == 0)
            return 1;
    }
    return 0;
}

/* Appends s[0..n) as the inside of a quoted string, escaped for both logfmt and JSON. An escape
 * is never cut: when the rest does not fit, the value ends early and the line is marked full. */
static void put_escaped(buf_t *b, const char *s, size_t n, size_t reserve)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        const char *out = esc;
        size_t olen, adv = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            olen = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            olen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            olen = 6;
        } else if (c < 0x80) {
            out = (const char *)s + i;
            olen = 1;
        } else if ((adv = utf8_len((const unsigned char *)s + i, n - i)) != 0) {
            out = (const char *)s + i;
            olen = adv;
        } else {
            out = "\xef\xbf\xbd"; /* U+FFFD for a byte that is not UTF-8 */
            olen = 3;
            adv = 1;
        }
        if (b->len + olen + reserve > b->cap) {
            b->full = 1;
            return;
        }
        put(b, out, olen);
        i += adv;
    }
}

static void put_quoted(buf_t *b, const char *s, size_t n)
{
    put(b, "\"", 1);
    put_escaped(b, s, n, 1);
    put(b, "\"", 1);
}

/* ------------------------------------------------------------------ format pieces */

/* Formats fmt[0..n) with arguments taken from *ap into out (at most cap-1 bytes, NUL-terminated).
 * Every conversion is parsed (flags, width, precision, length) so that exactly its argument is
 * consumed. *only_int is set when the piece is exactly one %d/%i/%u conversion. */
static size_t format_piece(char *out, size_t cap, const char *fmt, size_t n, va_list *ap,
                           int *only_int)
{
    size_t len = 0, nconv = 0;
    int ints = 0;
    for (size_t i = 0; i < n;) {
        if (fmt[i] != '%') {
            if (len + 1 < cap)
                out[len++] = fmt[i];
            i++;
            continue;
        }
        if (i + 1 < n && fmt[i + 1] == '%') {
            if (len + 1 < cap)
                out[len++] = '%';
            i += 2;
            continue;
        }
        char spec[48];
        size_t sl = 0;
        spec[sl++] = fmt[i++];
        while (i < n && strchr("-+ #0'", fmt[i]) && sl < 8)
            spec[sl++] = fmt[i++];
        if (i < n && fmt[i] == '*') {
            sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "%d", va_arg(*ap, int));
            i++;
        } else {
            while (i < n && fmt[i] >= '0' && fmt[i] <= '9' && sl < 20)
                spec[sl++] = fmt[i++];
        }
        if (i < n && fmt[i] == '.') {
            i++;
            if (i < n && fmt[i] == '*') {
                int p = va_arg(*ap, int);
                if (p >= 0)
                    sl += (size_t)snprintf(spec + sl, sizeof spec - sl, ".%d", p);
                i++;
            } else {
                spec[sl++] = '.';
                while (i < n && fmt[i] >= '0' && fmt[i] <= '9' && sl < 36)
                    spec[sl++] = fmt[i++];
            }
        }
        char lenmod[3] = {0};
        size_t lm = 0;
        while (i < n && strchr("hlzjtL", fmt[i]) && lm < 2)
            lenmod[lm++] = fmt[i++];
        if (i >= n)
            break;
        char conv = fmt[i++];
        memcpy(spec + sl, lenmod, lm);
        sl += lm;
        spec[sl++] = conv;
        spec[sl] = 0;
        nconv++;
        char tmp[512];
        const char *piece = tmp;
        int w = 0;
        int is_l = lm == 1 && lenmod[0] == 'l', is_ll = lm == 2 && lenmod[0] == 'l';
        int is_z = lenmod[0] == 'z', is_j = lenmod[0] == 'j', is_t = lenmod[0] == 't';
        switch (conv) {
        case 'd': case 'i':
            ints = 1;
            if (is_ll) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, long long));
            else if (is_l) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, long));
            else if (is_z) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, ptrdiff_t));
            else if (is_j) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, intmax_t));
            else if (is_t) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, ptrdiff_t));
            else w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, int));
            break;
        case 'u': case 'x': case 'X': case 'o':
            ints = conv == 'u';
            if (is_ll) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, unsigned long long));
            else if (is_l) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, unsigned long));
            else if (is_z) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, size_t));
            else if (is_j) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, uintmax_t));
            else if (is_t) w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, ptrdiff_t));
            else w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, unsigned));
            break;
        case 'c':
            w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, int));
            break;
        case 's': {
            const char *s = va_arg(*ap, const char *);
            if (!s)
                s = "(null)";
            if (strchr(spec, '.') || spec[1] != 's') {
                w = snprintf(tmp, sizeof tmp, spec, s);
            } else { /* plain %s: copy directly, no 512-byte bound of tmp */
                piece = s;
                w = (int)strlen(s);
            }
            break;
        }
        case 'p':
            w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, void *));
            break;
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A':
            if (lenmod[0] == 'L')
                w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, long double));
            else
                w = snprintf(tmp, sizeof tmp, spec, va_arg(*ap, double));
            break;
        default: /* unknown conversion: written as is, no argument consumed */
            piece = spec;
            w = (int)sl;
            break;
        }
        if (w < 0)
            w = 0;
        if (piece == tmp && (size_t)w >= sizeof tmp)
            w = (int)sizeof tmp - 1;
        size_t take = (size_t)w;
        if (len + take + 1 > cap)
            take = cap - 1 - len;
        memcpy(out + len, piece, take);
        len += take;
    }
    out[len] = 0;
    *only_int = nconv == 1 && ints && len > 0;
    if (*only_int) { /* exactly one integer conversion and nothing else around it */
        for (size_t i = 0; i < n; i++) {
            if (fmt[i] != '%' && !strchr("-+ #0123456789.*hlzjtLdiu", fmt[i]))
                *only_int = 0;
        }
    }
    return len;
}

/* Where the next " key=" field starts in fmt at or after `from` (fmt+len if none); *key, *klen
 * name the key. A value that starts with '"' (from is a value start) is skipped to its closing
 * '"' whole, so its text may hold " x=". */
static const char *next_field(const char *fmt, const char *from, const char **key, size_t *klen)
{
    const char *p = from;
    if (from != fmt && *p == '"') {
        const char *close = strchr(p + 1, '"');
        if (close)
            p = close;
    }
    for (; *p; p++) {
        if (*p != ' ')
            continue;
        const char *q = p + 1;
        while ((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') || *q == '_')
            q++;
        if (*q == '=' && q > p + 1) {
            *key = p + 1;
            *klen = (size_t)(q - p - 1);
            return p;
        }
    }
    *key = NULL;
    *klen = 0;
    return from + strlen(from);
}

/* Whether v[0..n) is a JSON integer: -?(0|[1-9][0-9]*) (e.g. "%05u" gives "00042", not one). */
static int json_integer(const char *v, size_t n)
{
    size_t i = n && v[0] == '-';
    if (i >= n || (v[i] == '0' && n - i > 1))
        return 0;
    for (; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0;
    }
    return 1;
}

/* Appends one field (key + formatted value) in the current format. */
static void put_field(buf_t *b, int json, const char *key, size_t klen, const char *v, size_t vlen,
                      int always_quote, int number)
{
    if (b->full)
        return;
    size_t mark = b->len;
    if (json) {
        put(b, ",\"", 2);
        put(b, key, klen);
        put(b, "\":", 2);
        if (number && json_integer(v, vlen))
            put(b, v, vlen);
        else
            put_quoted(b, v, vlen);
    } else {
        put(b, " ", 1);
        put(b, key, klen);
        put(b, "=", 1);
        if (always_quote || needs_quotes(v, vlen))
            put_quoted(b, v, vlen);
        else
            put(b, v, vlen);
    }
    if (b->full) /* never leave half a field: drop it, the line says truncated */
        b->len = mark;
}

#define LINE_MAX_BYTES 4096
#define LINE_TAIL 40 /* room kept for " truncated=true" / ",\"truncated\":true}" and "\n" */

static void vemit(int level, const char *subsys, const char *fmt, va_list ap0)
{
    if (level < 0)
        level = 0;
    if (level > 3)
        level = 3;
    int json = atomic_load(&log_format) == RH_LOG_JSON;
    int fd = atomic_load(&log_fd);
    char line[LINE_MAX_BYTES];
    buf_t b = {line, 0, sizeof line - LINE_TAIL, 0};

    if (journal_on(fd)) {
        char pfx[8];
        snprintf(pfx, sizeof pfx, "<%d>", syslog_prio[level]);
        puts_(&b, pfx);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tsbuf[64];
    snprintf(tsbuf, sizeof tsbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    const char *sub = subsys ? subsys : "-";
    if (json) {
        puts_(&b, "{\"ts\":\"");
        puts_(&b, tsbuf);
        puts_(&b, "\",\"level\":\"");
        puts_(&b, level_names[level]);
        puts_(&b, "\",\"sub\":");
        put_quoted(&b, sub, strlen(sub));
        puts_(&b, ",\"msg\":");
    } else {
        puts_(&b, "ts=");
        puts_(&b, tsbuf);
        puts_(&b, " level=");
        puts_(&b, level_names[level]);
        puts_(&b, " sub=");
        if (needs_quotes(sub, strlen(sub)))
            put_quoted(&b, sub, strlen(sub));
        else
            puts_(&b, sub);
        puts_(&b, " msg=");
    }

    va_list ap;
    va_copy(ap, ap0);
    char val[2048];
    int only_int;
    const char *key;
    size_t klen;
    const char *end = next_field(fmt, fmt, &key, &klen);
    size_t vlen = format_piece(val, sizeof val, fmt, (size_t)(end - fmt), &ap, &only_int);
    put_quoted(&b, val, vlen);
    while (key) {
        const char *vstart = key + klen + 1;
        const char *nkey;
        size_t nklen;
        end = next_field(fmt, vstart, &nkey, &nklen);
        const char *vs = vstart, *ve = end;
        int quoted = ve - vs >= 2 && vs[0] == '"' && ve[-1] == '"';
        if (quoted) {
            vs++;
            ve--;
        }
        vlen = format_piece(val, sizeof val, vs, (size_t)(ve - vs), &ap, &only_int);
        put_field(&b, json, key, klen, val, vlen, quoted, only_int && !quoted);
        key = nkey;
        klen = nklen;
    }
    va_end(ap);

    b.cap = sizeof line; /* the tail room */
    if (b.full)
        puts_(&b, json ? ",\"truncated\":true" : " truncated=true");
    if (json)
        puts_(&b, "}");
    puts_(&b, "\n");
    ssize_t w = write(fd, line, b.len);
    (void)w;
}

static void emit(int level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void emit(int level, const char *subsys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(level, subsys, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ rate limit */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The message part of a call site's format (up to its first field), for the report. */
static size_t msg_part(const char *fmt)
{
    const char *key;
    size_t klen;
    return (size_t)(next_field(fmt, fmt, &key, &klen) - fmt);
}

/* The report is written at the level of the lines it stands for (so it passes the same filter). */
static void report(rh_log_site_t *s, uint32_t n, unsigned window_ms)
{
    const char *fmt = atomic_load(&s->fmt);
    int level = atomic_load(&s->level);
    if (!fmt || level > rh_log_level)
        return;
    emit(level, atomic_load(&s->subsys),
         "log lines suppressed site=%s:%d suppressed=%u window_ms=%u of=%.*s", base_name(s->file),
         s->line, n, window_ms, (int)msg_part(fmt), fmt);
}

/* Starts a new window at `now` if the one that began at `start` has ended and nobody else did;
 * reports what the old window suppressed. */
static void roll_window(rh_log_site_t *s, uint64_t start, uint64_t now, unsigned window_ms)
{
    if (!atomic_compare_exchange_strong(&s->window_start_ms, &start, now))
        return;
    atomic_store(&s->count, 0);
    uint32_t n = atomic_exchange(&s->suppressed, 0);
    if (n)
        report(s, n, window_ms);
}

void rh_log_flush_suppressed(int force)
{
    uint64_t now = rh_mono_ms();
    unsigned window_ms = atomic_load(&rate_window_ms);
    for (rh_log_site_t *s = atomic_load(&sites); s; s = s->next) {
        if (atomic_load(&s->suppressed) == 0)
            continue;
        uint64_t start = atomic_load(&s->window_start_ms);
        if (force || now - start >= window_ms)
            roll_window(s, start, now, window_ms);
    }
}

void rh_log_emit(rh_log_site_t *s, int level, const char *subsys, const char *fmt, ...)
{
    unsigned burst = atomic_load(&rate_burst);
    if (s && burst) {
        unsigned window_ms = atomic_load(&rate_window_ms);
        uint64_t now = rh_mono_ms();
        uint64_t start = atomic_load(&s->window_start_ms);
        if (start == 0 || now - start >= window_ms)
            roll_window(s, start, now ? now : 1, window_ms);
        if (atomic_fetch_add(&s->count, 1) >= burst) {
            atomic_store(&s->level, level);
            atomic_store(&s->subsys, subsys);
            atomic_store(&s->fmt, fmt);
            atomic_fetch_add(&s->suppressed, 1);
            if (!atomic_exchange(&s->listed, 1)) {
                rh_log_site_t *head = atomic_load(&sites);
                do {
                    s->next = head;
                } while (!atomic_compare_exchange_weak(&sites, &head, s));
            }
            return;
        }
    }
    va_list ap;
    va_start(ap, fmt);
    vemit(level, subsys, fmt, ap);
    va_end(ap);
}

void rh_log_write(int level, const char *subsys, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vemit(level, subsys, fmt, ap);
    va_end(ap);
}
