/*
 * bi_fast.c — one-pass TS002 decoding (see bi_fast.h): a recursive-descent reader of strict JSON
 * over a copy of the body that types known members through bi_msg.c's field tables and the leaf
 * decoders of bi_leaf.h as it meets them, skips unknown members (checking them as bi_scan and the
 * tree pass would), and answers RH_EAGAIN — "let bi_msg_decode decide" — at the first thing it does
 * not handle. Nothing here produces a refusal, so refusals keep bi_msg_decode's exact wording.
 */
#include "bi_fast.h"
#include "bi_internal.h"
#include "bi_leaf.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <math.h>
#include <stddef.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFER RH_EAGAIN
#define FAST_MAX_MEMBERS 127 /* bi_scan refuses the 129th member: stay clear of the edge */
#define FAST_MAX_ELEMENTS 255
#define FAST_MAX_STRING 4000 /* BI_MAX_STRING 4096 */
#define FAST_MAX_NUMBER 40   /* bi_scan's max_number */
#define FAST_PAD 16          /* zero bytes after the working copy's NUL: 16-byte loads stay inside */

typedef struct fctx {
    char *p; /* the working copy: strings are NUL-terminated in place (the closing quote) */
    size_t n, i;
    int depth;
    size_t vstart; /* where the last value read starts */
    int rec_depth;  /* depth of the ULMetaData.GWInfo element whose members are recorded, or 0 */
    uint32_t rec_elem;
    int last_k;     /* field index of the member typed_member just read (-1: unknown) */
    size_t gwm_cap, gwobj_cap;
    dctx_t dc;
} fctx_t;

/* The array `arr` (*cap elements of `size` bytes) with room for element `n` (0-based): arr
 * itself, or a heap copy of twice the size with the added part zeroed. `inl`: the message's
 * inline storage arr starts in (copied, never freed or reallocated here), or NULL. NULL when out
 * of memory (arr is then unchanged and still the caller's). */
static inline void *room(void *arr, size_t *cap, size_t n, size_t size, const void *inl)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? 2 * *cap : 4;
    char *g = arr && arr == inl ? malloc(ncap * size) : realloc(arr, ncap * size);
    if (!g)
        return NULL;
    if (arr && arr == inl)
        memcpy(g, arr, *cap * size);
    memset(g + *cap * size, 0, (ncap - *cap) * size);
    *cap = ncap;
    return g;
}

/* Records one member of a ULMetaData.GWInfo element (bi_msg.gwm). */
static int record_member(fctx_t *c, size_t key_off)
{
    bi_msg_t *m = c->dc.m;
    bi_gw_member_t *g = room(m->gwm, &c->gwm_cap, m->gwm_n, sizeof *g, m->gwm_small);
    if (!g)
        return DEFER;
    m->gwm = g;
    m->gwm[m->gwm_n++] = (bi_gw_member_t){c->rec_elem, (uint32_t)key_off, (uint32_t)c->i,
                                          (int8_t)c->last_k, false};
    return RH_OK;
}

/* A parsed JSON value: what the leaf decoders read (bi_val_t, without a tree node). */
typedef struct fval {
    bi_val_t v;
    char kind; /* 's' string, 'n' number, 't'/'f' booleans, 'z' null, '{' '[' containers (not
                  consumed: the caller reads them) */
    bool frac; /* a number written with a fraction or an exponent (bi_scan's integer-written-as-
                  float check is the caller's: it knows whether the key is an integer field) */
} fval_t;

static inline void ws(fctx_t *c)
{
    /* the common case, no whitespace: p[n] is the NUL, so the first byte needs no bound check */
    if ((unsigned char)c->p[c->i] > ' ')
        return;
    while (c->i < c->n) {
        char ch = c->p[c->i];
        if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t')
            return;
        c->i++;
    }
}

/* At '"': the string's bytes, NUL-terminated in place; i after the closing quote. Only
 * printable ASCII without escapes is handled (what cJSON keeps byte for byte). */
static int read_string(fctx_t *c, const char **s, size_t *len)
{
    size_t start = ++c->i, i = start;
    const unsigned char *p = (const unsigned char *)c->p;
#if defined(__SSE2__)
    /* 16 bytes at a time: the first byte that is '"', '\\', < 0x20 or >= 0x80 (a signed
     * compare with 0x20 takes both). The working copy ends in a NUL and FAST_PAD zero bytes, so
     * every load stays inside it and the NUL at n stops the scan. */
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    for (;;) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                    _mm_cmplt_epi8(x, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(stop);
        if (mask) {
            i += (size_t)__builtin_ctz(mask);
            break;
        }
        i += 16;
    }
    if (i >= c->n || p[i] != '"')
        return DEFER; /* the end, an escape, a control character or a byte >= 0x80 */
#else
    for (;;) {
        if (i + 8 <= c->n) {
            /* 8 bytes at a time: the lowest flagged byte is the first one < 0x20, >= 0x80, '"'
             * or '\\' (borrows only run upwards from a flagged byte, so it is exact). */
            uint64_t x;
            memcpy(&x, p + i, 8);
            const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
            uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
            uint64_t stop = (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & high;
            if (!stop) {
                i += 8;
                continue;
            }
            i += (size_t)__builtin_ctzll(stop) / 8;
        } else {
            while (i < c->n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' && p[i] != '\\')
                i++;
            if (i >= c->n)
                return DEFER;
        }
        if (p[i] != '"')
            return DEFER; /* an escape, a control character or a byte >= 0x80 */
        break;
    }
#endif
    if (i - start > FAST_MAX_STRING)
        return DEFER;
    c->p[i] = '\0';
    *s = c->p + start;
    *len = i - start;
    c->i = i + 1;
    return RH_OK;
}

/* The powers of ten that are exact doubles (10^0..10^22): read_number's fast path. */
static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A number in the strict JSON grammar, converted as cJSON does (strtod of the same characters).
 * The digits and the exponent are accumulated while the grammar is checked: with at most 15
 * significant digits and a power of ten within 10^-22..10^22, one exact IEEE multiplication or
 * division gives strtod's correctly rounded value (Clinger's fast path); otherwise strtod. */
static int read_number(fctx_t *c, double *d, bool *frac)
{
    const char *p = c->p;
    size_t i = c->i, start = i;
    *frac = false;
    /* p[n] is the working copy's NUL, which ends every run of digits: no bound checks */
    bool neg = p[i] == '-';
    if (neg)
        i++;
    uint64_t m = 0;  /* the digits (meaningful while digits <= 15) */
    int digits = 0, scale = 0;
    if (p[i] == '0')
        i++;
    else if (p[i] >= '1' && p[i] <= '9')
        for (; p[i] >= '0' && p[i] <= '9'; i++, digits++)
            m = m * 10 + (uint64_t)(p[i] - '0');
    else
        return DEFER;
    if (p[i] == '.') {
        *frac = true;
        i++;
        if (p[i] < '0' || p[i] > '9')
            return DEFER;
        for (; p[i] >= '0' && p[i] <= '9'; i++, scale--) {
            if (m || p[i] != '0')
                digits++;
            m = m * 10 + (uint64_t)(p[i] - '0');
        }
    }
    if (p[i] == 'e' || p[i] == 'E') {
        *frac = true;
        i++;
        if (p[i] == '+' || p[i] == '-')
            i++;
        bool eneg = p[i - 1] == '-';
        if (p[i] < '0' || p[i] > '9')
            return DEFER;
        int e = 0;
        for (; p[i] >= '0' && p[i] <= '9'; i++)
            if (e <= 400) /* beyond any fast-path power: only "too large" matters */
                e = e * 10 + (p[i] - '0');
        scale += eneg ? -e : e;
    }
    /* bi_scan measures the run of number characters: a longer run than the grammar's token is a
     * grammar error anyway, so this length is the scan's. */
    if (i - start > FAST_MAX_NUMBER)
        return DEFER;
    if (digits <= 15 && scale >= -22 && scale <= 22) {
        double v = scale < 0 ? (double)m / pow10[-scale] : (double)m * pow10[scale];
        *d = neg ? -v : v;
        c->i = i;
        return RH_OK;
    }
    char buf[FAST_MAX_NUMBER + 1];
    memcpy(buf, p + start, i - start);
    buf[i - start] = '\0';
    char *end;
    *d = strtod(buf, &end);
    if (end != buf + (i - start) || !isfinite(*d))
        return DEFER;
    c->i = i;
    return RH_OK;
}

static int literal(fctx_t *c, const char *word, size_t len)
{
    if (c->n - c->i < len || memcmp(c->p + c->i, word, len) != 0)
        return DEFER;
    c->i += len;
    return RH_OK;
}

/* Reads a scalar (or notes a container without consuming it). */
static inline __attribute__((always_inline)) int read_value(fctx_t *c, fval_t *v)
{
    /* each kind sets what the leaf decoders read of it (bi_val_t: type, then s/len or d) */
    v->frac = false;
    v->v.node = NULL;
    c->vstart = c->i;
    if (c->i >= c->n)
        return DEFER;
    char ch = c->p[c->i];
    switch (ch) {
    case '"':
        v->kind = 's';
        v->v.type = cJSON_String;
        return read_string(c, &v->v.s, &v->v.len);
    case '{':
    case '[':
        v->kind = ch;
        v->v.type = ch == '{' ? cJSON_Object : cJSON_Array;
        return RH_OK;
    case 't':
        v->kind = 't';
        v->v.type = cJSON_True;
        return literal(c, "true", 4);
    case 'f':
        v->kind = 'f';
        v->v.type = cJSON_False;
        return literal(c, "false", 5);
    case 'n':
        v->kind = 'z';
        v->v.type = cJSON_NULL;
        return literal(c, "null", 4);
    default:
        v->kind = 'n';
        v->v.type = cJSON_Number;
        return read_number(c, &v->v.d, &v->frac);
    }
}

/* After a member or element: ',' (more: true) or the closing `close` (more: false). */
static int next(fctx_t *c, char close, bool *more)
{
    ws(c);
    if (c->i >= c->n)
        return DEFER;
    char ch = c->p[c->i++];
    if (ch == ',') {
        *more = true;
        return RH_OK;
    }
    if (ch == close) {
        *more = false;
        return RH_OK;
    }
    return DEFER;
}

/* Unknown keys of one object, for the duplicate check (known keys use the table's bitmask). */
typedef struct keyset {
    const char *k[FAST_MAX_MEMBERS];
    size_t len[FAST_MAX_MEMBERS];
    int n;
} keyset_t;

static int key_new(keyset_t *ks, const char *k, size_t len)
{
    for (int j = 0; j < ks->n; j++)
        if (ks->len[j] == len && memcmp(ks->k[j], k, len) == 0)
            return DEFER;
    ks->k[ks->n] = k;
    ks->len[ks->n] = len;
    ks->n++;
    return RH_OK;
}

/* At '{' or '[': enters the container; *empty when it closes at once (then it is left again). */
static int enter(fctx_t *c, char close, bool *empty)
{
    if (++c->depth > BI_FAST_MAX_DEPTH)
        return DEFER;
    c->i++;
    ws(c);
    *empty = c->i < c->n && c->p[c->i] == close;
    if (*empty) {
        c->i++;
        c->depth--;
    }
    return RH_OK;
}

typedef int (*member_fn)(fctx_t *c, void *arg, const char *key, size_t keylen);
typedef struct tobj tobj_t;
static int predicted_key(fctx_t *c, tobj_t *o);
static int typed_member(fctx_t *c, void *arg, const char *key, size_t keylen);
static int typed_known(fctx_t *c, tobj_t *o, int k, const char *key, size_t keylen);

/* At '{': calls fn for each member with i at the member's value; fn consumes the value. A typed
 * object (fn typed_member, arg its tobj_t) first tries the key its table's previous member was
 * followed by last time (predicted_key): on a match the member goes straight to typed_known,
 * without reading the key as a string and looking it up. */
static int read_object(fctx_t *c, member_fn fn, void *arg)
{
    tobj_t *typed = fn == typed_member ? arg : NULL;
    bool empty;
    int members = 0, r = enter(c, '}', &empty);
    if (r || empty)
        return r;
    for (bool more = true; more;) {
        if (++members > FAST_MAX_MEMBERS)
            return DEFER;
        ws(c);
        if (c->i >= c->n || c->p[c->i] != '"')
            return DEFER;
        size_t key_off = c->i;
        int k = typed ? predicted_key(c, typed) : -1;
        if (k >= 0) {
            size_t keylen = c->i - key_off - 3; /* i is past "Name": */
            ws(c);
            r = typed_known(c, typed, k, c->p + key_off + 1, keylen);
        } else {
            const char *key;
            size_t keylen;
            if ((r = read_string(c, &key, &keylen)))
                return r;
            ws(c);
            if (c->i >= c->n || c->p[c->i] != ':')
                return DEFER;
            c->i++;
            ws(c);
            r = fn(c, arg, key, keylen);
        }
        if (r)
            return r;
        if (c->depth == c->rec_depth && (r = record_member(c, key_off)))
            return r;
        if ((r = next(c, '}', &more)))
            return r;
    }
    c->depth--;
    return RH_OK;
}

static int skip_value(fctx_t *c, const char *key, size_t keylen);

static int skip_member(fctx_t *c, void *arg, const char *key, size_t keylen)
{
    int r = key_new(arg, key, keylen);
    return r ? r : skip_value(c, key, keylen);
}

/* An unknown member's value (or an element of one): checked and passed over. */
static int skip_value(fctx_t *c, const char *key, size_t keylen)
{
    fval_t v;
    int r = read_value(c, &v);
    if (r)
        return r;
    if (v.frac && key && bi_is_int_key(key, keylen))
        c->dc.m->canon |= BI_CANON_INT_AS_FLOAT;
    if (v.kind == '{') {
        keyset_t ks;
        ks.n = 0;
        return read_object(c, skip_member, &ks);
    }
    if (v.kind != '[')
        return RH_OK;
    bool empty;
    if ((r = enter(c, ']', &empty)) || empty)
        return r;
    int elements = 0;
    for (bool more = true; more;) {
        if (++elements > FAST_MAX_ELEMENTS)
            return DEFER;
        ws(c);
        if ((r = skip_value(c, NULL, 0)) || (r = next(c, ']', &more)))
            return r;
    }
    c->depth--;
    return RH_OK;
}

/* A typed object: the members of one field table (bi_msg.c's decode_object, without its
 * error reporting). */
struct tobj {
    const bi_tab_t *tab;
    unsigned t; /* tab's index in tabs[] (its key index) */
    void *base;
    uint64_t seen;
    int prev_k; /* field index of the previous member (-1: none yet, or unknown) */
    int8_t *next; /* this thread's next_field[t] */
    const struct keyindex *x; /* key_index[t] */
    keyset_t unknown;
};

static int read_typed(fctx_t *c, const bi_tab_t *tab, void *base);

/* ul: the ULMetaData array, whose elements' members and object spans are recorded. */
static int read_gwarray(fctx_t *c, bi_gwinfo_t **out, size_t *count, bool ul)
{
    bool empty;
    int r = enter(c, ']', &empty);
    if (r || empty)
        return r; /* empty: as decode_gwarray, no elements, no array */
    size_t cap = 0;
    for (bool more = true; more;) {
        if (*count >= FAST_MAX_ELEMENTS || *count >= BI_MAX_GWINFO)
            return DEFER;
        ws(c);
        if (c->i >= c->n || c->p[c->i] != '{')
            return DEFER;
        bi_gwinfo_t *g = room(*out, &cap, *count, sizeof *g, NULL);
        if (!g)
            return DEFER;
        *out = g;
        bi_gwinfo_t *e = &(*out)[(*count)++];
        size_t obj_off = c->i;
        if (ul) {
            bi_msg_t *m = c->dc.m;
            bi_span_t *o = room(m->gwobj, &c->gwobj_cap, *count - 1, sizeof *o, m->gwobj_small);
            if (!o)
                return DEFER;
            m->gwobj = o;
            c->rec_depth = c->depth + 1;
            c->rec_elem = (uint32_t)(*count - 1);
        }
        r = read_typed(c, &bi_tab_gw, e);
        c->rec_depth = 0;
        if (r)
            return r;
        if (ul)
            c->dc.m->gwobj[*count - 1] = (bi_span_t){obj_off, c->i - obj_off};
        if ((r = next(c, ']', &more)))
            return r;
    }
    c->depth--;
    return RH_OK;
}

/* Field lookup by key: bi_find_field's answer, through a small hash of (length, first and last
 * character) built once per process instead of a walk through the table. */
#define KEY_BUCKETS 64
#define KEY_SLOTS 4
typedef struct keyindex {
    int8_t slot[KEY_BUCKETS][KEY_SLOTS]; /* field indexes, -1 = empty */
    uint8_t len[64];
    char head[64][16];   /* the names' first 16 bytes, zero-padded: one 16-byte compare */
    uint64_t int_key;    /* bit i: bi_is_int_key(name of field i) */
    uint64_t span_key;   /* bit i: field i is a header value bi_msg_splice_header rewrites */
} keyindex_t;

static const bi_tab_t *const tabs[] = {&bi_tab_top, &bi_tab_result, &bi_tab_ul,
                                       &bi_tab_dl,  &bi_tab_gw,     &bi_tab_keyenv};
static keyindex_t key_index[sizeof tabs / sizeof tabs[0]];
static bool key_index_ok;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static unsigned key_hash(const char *k, size_t n)
{
    return (unsigned)(n * 7u + (unsigned char)k[0] * 3u + (unsigned char)k[n - 1]) % KEY_BUCKETS;
}

static void key_index_build(void)
{
    bool ok = true;
    for (size_t t = 0; t < sizeof tabs / sizeof tabs[0]; t++) {
        keyindex_t *x = &key_index[t];
        memset(x, 0, sizeof *x);
        memset(x->slot, -1, sizeof x->slot);
        ok = ok && tabs[t]->n <= 64;
        for (size_t i = 0; i < tabs[t]->n && i < 64; i++) {
            const char *name = tabs[t]->f[i].name;
            size_t n = strlen(name);
            x->len[i] = (uint8_t)n;
            memcpy(x->head[i], name, n < 16 ? n : 16);
            if (bi_is_int_key(name, n))
                x->int_key |= 1ull << i;
            const fdesc_t *fd = &tabs[t]->f[i];
            if (tabs[t] == &bi_tab_top &&
                (fd->type == FT_ID ||
                 (fd->type == FT_U32 && fd->off == offsetof(bi_fields_t, hdr.transaction_id))))
                x->span_key |= 1ull << i;
            int8_t *b = x->slot[key_hash(name, n)];
            int j = 0;
            while (j < KEY_SLOTS && b[j] >= 0)
                j++;
            if (j == KEY_SLOTS)
                ok = false; /* would miss a field: fall back to bi_find_field */
            else
                b[j] = (int8_t)i;
        }
    }
    key_index_ok = ok;
}

static unsigned tab_index(const bi_tab_t *tab)
{
    unsigned t = 0;
    while (tabs[t] != tab)
        t++;
    return t;
}

/* `key` is in the working copy: at least FAST_PAD bytes follow its NUL, so 16 bytes from its
 * start can be loaded. */
static inline int find_key(const bi_tab_t *tab, unsigned t, const char *key, size_t len)
{
    if (!key_index_ok || len == 0)
        return bi_find_field(tab->f, tab->n, key);
    const keyindex_t *x = &key_index[t];
    const int8_t *b = x->slot[key_hash(key, len)];
    for (int j = 0; j < KEY_SLOTS && b[j] >= 0; j++) {
        int k = b[j];
        if (x->len[k] != len)
            continue;
#if defined(__SSE2__)
        if (len <= 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)key),
                    h = _mm_loadu_si128((const __m128i *)(const void *)x->head[k]);
            unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, h));
            if ((~eq & ((1u << len) - 1)) == 0)
                return k;
            continue;
        }
#endif
        if (memcmp(tab->f[k].name, key, len) == 0)
            return k;
    }
    return -1;
}

/* The key order a table's members came in last time on this thread: next[t][k + 1] is 1 + the
 * field that followed field k (next[t][0]: the first member), 0 when unknown. Senders write
 * their members in a fixed order, so after the first message nearly every key is predicted. */
static _Thread_local int8_t next_field[6][65] __attribute__((tls_model("initial-exec")));

/* At a member's opening quote: when the bytes are "Name": for the field its table predicts
 * (the same bytes read_string and find_key would find that field from), i moves past the ':'
 * and the field index is returned; otherwise -1 and nothing moved. The name is NUL-terminated
 * in place as read_string does (the closing quote). */
static int predicted_key(fctx_t *c, tobj_t *o)
{
    int k = o->next[o->prev_k + 1] - 1;
    if (k < 0 || !key_index_ok)
        return -1;
    const keyindex_t *x = o->x;
    size_t len = x->len[k], at = c->i + 1;
    if (len > 16 || at + len + 2 > c->n)
        return -1;
#if defined(__SSE2__)
    __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(c->p + at)),
            h = _mm_loadu_si128((const __m128i *)(const void *)x->head[k]);
    unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, h));
    if ((~eq & ((1u << len) - 1)) != 0)
        return -1;
#else
    if (memcmp(c->p + at, x->head[k], len) != 0)
        return -1;
#endif
    if (c->p[at + len] != '"' || c->p[at + len + 1] != ':')
        return -1;
    c->p[at + len] = '\0';
    c->i = at + len + 2;
    return k;
}

static int typed_member(fctx_t *c, void *arg, const char *key, size_t keylen)
{
    tobj_t *o = arg;
    int k = find_key(o->tab, o->t, key, keylen);
    if (k < 0) {
        c->last_k = -1;
        o->prev_k = -1;
        return skip_member(c, &o->unknown, key, keylen);
    }
    if (key_index_ok)
        o->next[o->prev_k + 1] = (int8_t)(k + 1);
    return typed_known(c, o, k, key, keylen);
}

/* A member of a known field k (key: its name, keylen bytes) with i at its value. */
static inline __attribute__((always_inline)) int typed_known(fctx_t *c, tobj_t *o, int k,
                                                             const char *key, size_t keylen)
{
    c->last_k = k;
    o->prev_k = k;
    if (o->seen & (1ull << k))
        return DEFER; /* duplicate key */
    o->seen |= 1ull << k;
    const fdesc_t *fd = &o->tab->f[k];
    fval_t v;
    int r = read_value(c, &v);
    if (r)
        return r;
    if (v.frac && ((!key_index_ok && bi_is_int_key(key, keylen)) ||
                   (key_index_ok && (o->x->int_key >> k & 1))))
        c->dc.m->canon |= BI_CANON_INT_AS_FLOAT;
    if (v.kind == 'z')
        return RH_OK; /* null = absent */
    if (o->x->span_key >> k & 1) {
        /* The header values bi_msg_splice_header rewrites: strings with their quotes. */
        bi_hdr_spans_t *sp = &c->dc.m->spans;
        size_t end = c->i, off = v.kind == 's' ? (size_t)(v.v.s - c->p) - 1 : c->vstart;
        bi_span_t *at = fd->type != FT_ID ? &sp->txid
                        : fd->off == offsetof(bi_fields_t, hdr.sender_id) ? &sp->sender
                                                                          : &sp->receiver;
        *at = (bi_span_t){off, end - off};
    }
    char *dst = (char *)o->base + fd->off;
    bi_fields_t *f = &c->dc.m->f;
    switch ((enum ftype)fd->type) {
    case FT_RESULT:
        if (v.kind != '{' || (r = read_typed(c, &bi_tab_result, f)))
            return DEFER;
        if (!f->result_code_text)
            return DEFER;
        break;
    case FT_UL:
        if (v.kind != '{' || (r = read_typed(c, &bi_tab_ul, dst)))
            return DEFER;
        break;
    case FT_DL:
        if (v.kind != '{' || (r = read_typed(c, &bi_tab_dl, dst)))
            return DEFER;
        if (!(((bi_dlmeta_t *)dst)->present & (BI_DL_DL_FREQ1 | BI_DL_DL_FREQ2)))
            return DEFER;
        break;
    case FT_KEYENV:
        if (v.kind != '{' || (r = read_typed(c, &bi_tab_keyenv, dst)))
            return DEFER;
        if (((bi_key_envelope_t *)dst)->aes_key_len == 0)
            return DEFER;
        break;
    case FT_GWARRAY:
        if (v.kind != '[' ||
            read_gwarray(c, (bi_gwinfo_t **)dst, (size_t *)(dst + sizeof(bi_gwinfo_t *)),
                         o->tab == &bi_tab_ul))
            return DEFER;
        break;
    case FT_OBJECT:
        return DEFER; /* opaque objects are cJSON nodes in the view: the tree pass keeps them */
    default:
        if (v.kind == '{' || v.kind == '[')
            return DEFER; /* a leaf field with a container value is refused */
        if (bi_decode_leaf(&c->dc, fd, &v.v, o->base, NULL))
            return DEFER; /* (hex fields note where they stand: bi_leaf.h's hex_field) */
        break;
    }
    switch (fd->where) {
    case W_HDR: f->hdr.present |= (uint32_t)fd->bit; break;
    case W_TOP: f->present |= fd->bit; break;
    case W_NESTED: *(uint32_t *)o->base |= (uint32_t)fd->bit; break;
    default: break;
    }
    return RH_OK;
}

static int read_typed(fctx_t *c, const bi_tab_t *tab, void *base)
{
    tobj_t o;
    o.tab = tab;
    o.t = tab_index(tab);
    o.base = base;
    o.seen = 0;
    o.prev_k = -1;
    o.next = next_field[o.t];
    o.x = &key_index[o.t];
    o.unknown.n = 0;
    return read_object(c, typed_member, &o);
}

int bi_fast_decode(const char *body, size_t len, bi_msg_t **out)
{
    *out = NULL;
    if (!body || len == 0 || len > BI_MAX_BODY)
        return DEFER;
    /* the message and its working text in one allocation (BI_MSG_TEXT_INLINE) */
    bi_msg_t *m = malloc(sizeof *m + 2 * len + 2 + FAST_PAD);
    if (!m)
        return DEFER;
    char *text = BI_MSG_TEXT_INLINE(m);
    memset(m, 0, offsetof(bi_msg_t, phy));
    m->gwm = m->gwm_small;
    m->gwobj = m->gwobj_small;
    memcpy(text, body, len);
    text[len] = '\0';
    memcpy(text + len + 1, body, len);
    memset(text + 2 * len + 1, 0, 1 + FAST_PAD);
    m->text = text;
    m->text_len = len;
    fctx_t c = {.p = text + len + 1, .n = len, .i = 0, .depth = 0,
                .gwm_cap = sizeof m->gwm_small / sizeof m->gwm_small[0],
                .gwobj_cap = sizeof m->gwobj_small / sizeof m->gwobj_small[0],
                .dc = {.m = m, .err = NULL, .rc = RH_OK, .from_tree = false}};
    pthread_once(&key_once, key_index_build);
    ws(&c);
    int r = c.i < c.n && c.p[c.i] == '{' ? read_typed(&c, &bi_tab_top, &m->f) : DEFER;
    if (r == RH_OK) {
        ws(&c);
        if (c.i != c.n || bi_validate(&c.dc))
            r = DEFER;
    }
    if (r != RH_OK) {
        bi_msg_free(m);
        return DEFER;
    }
    m->tree = m->canon;
    m->valid = true;
    m->spans_body_len = len;
    *out = m;
    return RH_OK;
}

int bi_msg_decode_fast(const char *body, size_t len, bi_msg_t **out, bi_error_t *err)
{
    if (bi_fast_decode(body, len, out) == RH_OK) {
        if (err)
            memset(err, 0, sizeof *err);
        return RH_OK;
    }
    return bi_msg_decode(body, len, out, err);
}
