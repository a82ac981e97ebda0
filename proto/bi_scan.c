/*
 * bi_scan.c — the cheap pass over the raw TS002 body that runs before cJSON allocates anything:
 * it enforces the limits of bi_msg.h (body size, nesting, array/object sizes, string/number
 * lengths), UTF-8 validity, and flags integer fields written as non-integers. It tracks the key
 * path so that a refusal names the field ("ULMetaData.GWInfo: more than 256 elements").
 * It is not a JSON parser: grammar errors are left to cJSON.
 */
#include "bi_internal.h"

#include <stdio.h>
#include <string.h>

int bi_fail(bi_error_t *err, bi_result_code_t code, int errcode, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        err->err = errcode;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->description, sizeof err->description, fmt, ap);
        va_end(ap);
    }
    return errcode;
}

struct level {
    char kind;         /* '{' or '[' */
    bool expect_key;   /* object: the next string is a key */
    bool nonempty;     /* a value or key has been seen */
    uint32_t commas;   /* separators seen: elements = commas + 1 when nonempty */
    const char *key;   /* object: current key (raw bytes, escapes as written) */
    size_t keylen;
};

/* Integer-typed TS002 field names: a number written 12.0 or 1e1 under one of these keys makes
 * the body non-canonical (encoding writes 12). */
static bool is_int_key(const char *k, size_t n)
{
#define K(s) {s, sizeof s - 1}
    static const struct {
        const char *name;
        size_t len;
    } names[] = {
        K("TransactionID"), K("FPort"),    K("FCntUp"),       K("FCntDown"), K("DataRate"),
        K("Margin"),        K("Battery"),  K("GWCnt"),        K("FineRecvTime"), K("RSSI"),
        K("RXDelay1"),      K("DataRate1"), K("DataRate2"),   K("Lifetime"), K("RxDelay"),
    };
#undef K
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].len == n && memcmp(names[i].name, k, n) == 0)
            return true;
    return false;
}

/* Writes the path of the element currently open at depth d ("ULMetaData.GWInfo[0].RSSI"). */
static void path_of(const struct level *st, int d, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = '\0';
    for (int k = 1; k <= d && o + 1 < cap; k++) {
        int w;
        if (st[k].kind == '{') {
            if (!st[k].key)
                break;
            size_t kl = st[k].keylen > 40 ? 40 : st[k].keylen;
            w = snprintf(out + o, cap - o, "%s%.*s", o ? "." : "", (int)kl, st[k].key);
        } else {
            w = snprintf(out + o, cap - o, "[%u]", st[k].commas);
        }
        if (w < 0)
            break;
        o += (size_t)w;
        if (o >= cap) {
            out[cap - 1] = '\0';
            break;
        }
    }
    if (out[0] == '\0')
        snprintf(out, cap, "body");
}

/* Length of a valid UTF-8 sequence at p (at most n bytes), 0 when invalid (overlong forms,
 * surrogates, > U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90)
            return 0;
        if (c == 0xF4 && p[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

#define MALFORMED BI_RC_MALFORMED_REQUEST

int bi_scan(const char *body, size_t n, uint32_t *canon, bi_error_t *err)
{
    struct level st[BI_MAX_DEPTH + 1];
    char path[160];
    const unsigned char *p = (const unsigned char *)body;
    int d = 0;
    size_t i = 0;

    if (n == 0)
        return bi_fail(err, MALFORMED, RH_EINVAL, "body: empty");
    if (n > BI_MAX_BODY)
        return bi_fail(err, MALFORMED, RH_ERANGE, "body: %zu bytes exceeds the limit of %d bytes",
                       n, BI_MAX_BODY);
    memset(&st[0], 0, sizeof st[0]);
    while (i < n) {
        unsigned c = p[i];
        if (c == '"') {
            size_t start = ++i;
            for (;;) {
                /* Fast path: 8 bytes at a time while all are printable ASCII other than '"'
                 * and '\\' (SWAR: a byte < 0x20, >= 0x80, == '"' or == '\\' stops it). */
                while (i + 8 <= n) {
                    uint64_t x;
                    memcpy(&x, p + i, 8);
                    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
                    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
                    uint64_t stop = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) |
                                    ((b - ones) & ~b) | x;
                    if (stop & high)
                        break;
                    i += 8;
                }
                while (i < n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
                    i++;
                if (i >= n) {
                    path_of(st, d, path, sizeof path);
                    return bi_fail(err, MALFORMED, RH_EINVAL, "%s: unterminated string", path);
                }
                c = p[i];
                if (c == '"')
                    break;
                if (c < 0x20) {
                    path_of(st, d, path, sizeof path);
                    return bi_fail(err, MALFORMED, RH_EINVAL,
                                   "%s: control character 0x%02x in a string", path, c);
                }
                if (c == '\\') {
                    if (i + 1 < n && p[i + 1] == 'u') {
                        if (i + 5 < n && memcmp(p + i + 2, "0000", 4) == 0) {
                            path_of(st, d, path, sizeof path);
                            return bi_fail(err, MALFORMED, RH_EINVAL,
                                           "%s: \\u0000 is not allowed in a string", path);
                        }
                    }
                    i += 2; /* the escaped character (a quote or backslash) is skipped */
                    continue;
                }
                if (c >= 0x80) {
                    size_t l = utf8_len(p + i, n - i);
                    if (l == 0) {
                        path_of(st, d, path, sizeof path);
                        return bi_fail(err, MALFORMED, RH_EINVAL,
                                       "%s: invalid UTF-8 at byte %zu", path, i);
                    }
                    i += l;
                    continue;
                }
                i++;
            }
            size_t len = i - start;
            i++; /* closing quote */
            bool is_key = d > 0 && st[d].kind == '{' && st[d].expect_key;
            if (is_key) {
                st[d].key = (const char *)p + start;
                st[d].keylen = len;
                st[d].expect_key = false;
                st[d].nonempty = true;
            } else if (d > 0) {
                st[d].nonempty = true;
            }
            if (len > BI_MAX_STRING) {
                path_of(st, d, path, sizeof path);
                return bi_fail(err, MALFORMED, RH_ERANGE,
                               "%s: %s of %zu bytes exceeds the limit of %d bytes", path,
                               is_key ? "key" : "string", len, BI_MAX_STRING);
            }
            continue;
        }
        switch (c) {
        case '{':
        case '[':
            if (d > 0)
                st[d].nonempty = true;
            if (d == BI_MAX_DEPTH) {
                path_of(st, d, path, sizeof path);
                return bi_fail(err, MALFORMED, RH_ERANGE,
                               "%s: nesting deeper than %d levels", path, BI_MAX_DEPTH);
            }
            d++;
            st[d].kind = (char)c;
            st[d].expect_key = c == '{';
            st[d].nonempty = false;
            st[d].commas = 0;
            st[d].key = NULL;
            st[d].keylen = 0;
            i++;
            break;
        case '}':
        case ']':
            if (d > 0)
                d--;
            i++;
            break;
        case ',':
            if (d > 0) {
                st[d].commas++;
                unsigned limit = st[d].kind == '[' ? BI_MAX_ARRAY : BI_MAX_MEMBERS;
                if (st[d].commas >= limit) {
                    path_of(st, d - 1, path, sizeof path);
                    return bi_fail(err, MALFORMED, RH_ERANGE,
                                   "%s: %s has more than %u %s", path,
                                   st[d].kind == '[' ? "array" : "object", limit,
                                   st[d].kind == '[' ? "elements" : "members");
                }
                if (st[d].kind == '{')
                    st[d].expect_key = true;
            }
            i++;
            break;
        case '-':
        case '0': case '1': case '2': case '3': case '4':
        case '5': case '6': case '7': case '8': case '9': {
            size_t start = i;
            bool frac = false;
            while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '+' ||
                             p[i] == '.' || p[i] == 'e' || p[i] == 'E')) {
                if (p[i] == '.' || p[i] == 'e' || p[i] == 'E')
                    frac = true;
                i++;
            }
            if (i - start > 40) {
                path_of(st, d, path, sizeof path);
                return bi_fail(err, MALFORMED, RH_ERANGE,
                               "%s: number of %zu characters is too long", path, i - start);
            }
            if (d > 0) {
                st[d].nonempty = true;
                if (frac && st[d].kind == '{' && st[d].key && is_int_key(st[d].key, st[d].keylen))
                    *canon |= BI_CANON_INT_AS_FLOAT;
            }
            break;
        }
        case 0:
            return bi_fail(err, MALFORMED, RH_EINVAL, "body: NUL byte at offset %zu", i);
        default:
            if (c >= 0x80)
                return bi_fail(err, MALFORMED, RH_EINVAL,
                               "body: unexpected byte 0x%02x at offset %zu", c, i);
            if (d > 0 && c > ' ' && c != ':')
                st[d].nonempty = true;
            i++;
            break;
        }
    }
    return RH_OK;
}
