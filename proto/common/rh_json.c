/*
 * rh_json.c — the JSON input policy (see rh_json.h): the pre-parse byte scan, the tree check
 * (duplicate keys, non-finite numbers) and rh_json_parse that runs both around cJSON.
 */
#include "rh_json.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_MAX_DEPTH 255

const rh_json_limits_t rh_json_limits_admin = {
    .max_bytes = 0, /* the admin listener's max_body_bytes */
    .max_depth = 32,
    .max_array = 0, /* imports: bounded by the body size */
    .max_members = 1024,
    .max_string = 131072, /* hex bytes fields up to 64 KiB */
    .max_number = 40,
};
const rh_json_limits_t rh_json_limits_config = {
    .max_bytes = 1u << 20, .max_depth = 8, .max_array = 1024, .max_members = 256,
    .max_string = 4096, .max_number = 40,
};
const rh_json_limits_t rh_json_limits_import = {
    .max_bytes = 256u << 20, .max_depth = 32, .max_array = 0, .max_members = 1024,
    .max_string = 131072, .max_number = 40,
};

struct level {
    char kind;         /* '{' or '[' */
    bool expect_key;   /* object: the next string is a key */
    uint32_t commas;   /* separators seen: elements = commas + 1 when non-empty */
    const char *key;   /* object: current key (raw bytes, escapes as written) */
    size_t keylen;
};

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

int rh_json_scan(const char *body, size_t n, const rh_json_limits_t *lim,
                 rh_json_number_fn on_number, void *arg, rh_diag_t *diag)
{
    struct level st[SCAN_MAX_DEPTH + 1];
    char path[160];
    const unsigned char *p = (const unsigned char *)body;
    const size_t max_bytes = lim->max_bytes ? lim->max_bytes : SIZE_MAX;
    const int max_depth = lim->max_depth && lim->max_depth < SCAN_MAX_DEPTH ? (int)lim->max_depth
                                                                             : SCAN_MAX_DEPTH;
    const uint32_t max_array = lim->max_array ? lim->max_array : UINT32_MAX;
    const uint32_t max_members = lim->max_members ? lim->max_members : UINT32_MAX;
    const size_t max_string = lim->max_string ? lim->max_string : SIZE_MAX;
    const size_t max_number = lim->max_number ? lim->max_number : SIZE_MAX;
    int d = 0;
    size_t i = 0;

    if (n == 0 || !body)
        return rh_diag_fail(diag, RH_EINVAL, "body: empty");
    if (n > max_bytes)
        return rh_diag_fail(diag, RH_ERANGE, "body: %zu bytes exceeds the limit of %zu bytes", n,
                            max_bytes);
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
                    return rh_diag_fail(diag, RH_EINVAL, "%s: unterminated string", path);
                }
                c = p[i];
                if (c == '"')
                    break;
                if (c < 0x20) {
                    path_of(st, d, path, sizeof path);
                    return rh_diag_fail(diag, RH_EINVAL,
                                        "%s: control character 0x%02x in a string", path, c);
                }
                if (c == '\\') {
                    if (i + 5 < n && p[i + 1] == 'u' && memcmp(p + i + 2, "0000", 4) == 0) {
                        path_of(st, d, path, sizeof path);
                        return rh_diag_fail(diag, RH_EINVAL,
                                            "%s: \\u0000 is not allowed in a string", path);
                    }
                    i += 2; /* the escaped character (a quote or backslash) is skipped */
                    continue;
                }
                if (c >= 0x80) {
                    size_t l = utf8_len(p + i, n - i);
                    if (l == 0) {
                        path_of(st, d, path, sizeof path);
                        return rh_diag_fail(diag, RH_EINVAL, "%s: invalid UTF-8 at byte %zu",
                                            path, i);
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
            }
            if (len > max_string) {
                path_of(st, d, path, sizeof path);
                return rh_diag_fail(diag, RH_ERANGE,
                                    "%s: %s of %zu bytes exceeds the limit of %zu bytes", path,
                                    is_key ? "key" : "string", len, max_string);
            }
            continue;
        }
        switch (c) {
        case '{':
        case '[':
            if (d == max_depth) {
                path_of(st, d, path, sizeof path);
                return rh_diag_fail(diag, RH_ERANGE, "%s: nesting deeper than %d levels", path,
                                    max_depth);
            }
            d++;
            st[d].kind = (char)c;
            st[d].expect_key = c == '{';
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
                uint32_t limit = st[d].kind == '[' ? max_array : max_members;
                if (st[d].commas >= limit) {
                    path_of(st, d - 1, path, sizeof path);
                    return rh_diag_fail(diag, RH_ERANGE, "%s: %s has more than %u %s", path,
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
            if (i - start > max_number) {
                path_of(st, d, path, sizeof path);
                return rh_diag_fail(diag, RH_ERANGE, "%s: number of %zu characters is too long",
                                    path, i - start);
            }
            if (on_number) {
                bool member = d > 0 && st[d].kind == '{' && st[d].key;
                on_number(arg, member ? st[d].key : NULL, member ? st[d].keylen : 0, frac);
            }
            break;
        }
        case 0:
            return rh_diag_fail(diag, RH_EINVAL, "body: NUL byte at offset %zu", i);
        default:
            if (c >= 0x80)
                return rh_diag_fail(diag, RH_EINVAL, "body: unexpected byte 0x%02x at offset %zu",
                                    c, i);
            i++;
            break;
        }
    }
    return RH_OK;
}

/* ---- tree check ------------------------------------------------------------------------------ */

static int key_cmp(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* Appends ".key" or "[i]" to the path in buf (at len); returns the new length. */
static size_t path_push(char *buf, size_t cap, size_t len, const cJSON *item, size_t index,
                        bool in_object)
{
    int w;
    if (in_object)
        w = snprintf(buf + len, cap - len, "%s%.40s", len ? "." : "",
                     item->string ? item->string : "?");
    else
        w = snprintf(buf + len, cap - len, "[%zu]", index);
    if (w < 0)
        return len;
    return len + (size_t)w >= cap ? cap - 1 : len + (size_t)w;
}

static int check(const cJSON *v, char *path, size_t cap, size_t plen, int depth, rh_diag_t *diag)
{
    if (depth > SCAN_MAX_DEPTH)
        return rh_diag_fail(diag, RH_ERANGE, "%s: nesting deeper than %d levels",
                            plen ? path : "body", SCAN_MAX_DEPTH);
    if (cJSON_IsNumber(v) && !isfinite(v->valuedouble))
        return rh_diag_fail(diag, RH_EINVAL, "%s: number is not finite", plen ? path : "body");
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v))
        return RH_OK;
    bool obj = cJSON_IsObject(v);
    size_t m = 0, idx = 0;
    for (const cJSON *c = v->child; c; c = c->next)
        m++;
    if (obj && m > 1) {
        /* sorted copy of the member pointers: O(m log m) even for large objects */
        const cJSON *stackbuf[32];
        const cJSON **arr = m <= 32 ? stackbuf : malloc(m * sizeof *arr);
        if (!arr)
            return rh_diag_fail(diag, RH_ENOMEM, "body: out of memory");
        size_t k = 0;
        for (const cJSON *c = v->child; c; c = c->next)
            arr[k++] = c->string ? c : NULL;
        size_t named = 0;
        for (k = 0; k < m; k++)
            if (arr[k])
                arr[named++] = arr[k];
        qsort(arr, named, sizeof *arr, key_cmp);
        const cJSON *dup = NULL;
        for (k = 1; k < named && !dup; k++)
            if (!strcmp(arr[k - 1]->string, arr[k]->string))
                dup = arr[k];
        if (arr != stackbuf)
            free(arr);
        if (dup) {
            size_t l = path_push(path, cap, plen, dup, 0, true);
            (void)l;
            return rh_diag_fail(diag, RH_EINVAL, "%s: duplicate key", path);
        }
    }
    for (const cJSON *c = v->child; c; c = c->next, idx++) {
        size_t l = path_push(path, cap, plen, c, idx, obj);
        int rc = check(c, path, cap, l, depth + 1, diag);
        path[plen] = '\0';
        if (rc)
            return rc;
    }
    return RH_OK;
}

int rh_json_check_tree(const cJSON *root, rh_diag_t *diag)
{
    char path[200] = "";
    return root ? check(root, path, sizeof path, 0, 0, diag) : RH_OK;
}

cJSON *rh_json_parse(const char *p, size_t n, const rh_json_limits_t *lim, int *err,
                     rh_diag_t *diag)
{
    int rc = rh_json_scan(p, n, lim, NULL, NULL, diag);
    if (rc) {
        if (err)
            *err = rc;
        return NULL;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    if (!o) {
        if (err)
            *err = RH_EINVAL;
        rh_diag_fail(diag, RH_EINVAL, "body: not valid JSON (near byte %zu)",
                     end && end >= p ? (size_t)(end - p) : (size_t)0);
        return NULL;
    }
    while (end && (size_t)(end - p) < n && strchr(" \t\r\n", *end) && *end)
        end++;
    if (end && (size_t)(end - p) != n) {
        cJSON_Delete(o);
        if (err)
            *err = RH_EINVAL;
        rh_diag_fail(diag, RH_EINVAL, "body: trailing data after the JSON value");
        return NULL;
    }
    rc = rh_json_check_tree(o, diag);
    if (rc) {
        cJSON_Delete(o);
        if (err)
            *err = rc;
        return NULL;
    }
    return o;
}
