/*
 * bi_leaf.h — private to proto/bi_*.c: the leaf decoders of TS002 member values (hex fields,
 * integers and numbers, booleans, strings, ProtocolVersion, MessageType, ResultCode, RFRegion,
 * RecvTime), static inline so that both passes — bi_msg.c's tree pass (bi_decode_value) and
 * bi_fast.c's one pass — compile them into their member loops. Their contract is
 * bi_decode_leaf's; errors go through bi_fail_at (bi_msg.c).
 */
#ifndef BI_LEAF_H
#define BI_LEAF_H

#include "bi_internal.h"
#include "rh_hex.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <math.h> /* isfinite (a macro: no libm needed) */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define MALFORMED BI_RC_MALFORMED_REQUEST /* respelt per version at the end of build() */

/* cJSON_IsString and its kin without a call into the shared library: the same test of the type's
 * low byte (the leaf decoders run for every member of every message). */
static inline bool is_type(const bi_val_t *v, int type)
{
    return v->type == type;
}

/* A message from bi_fast_decode before its tree exists (m->text is the received body, then the
 * working copy the view's strings point into): where the typed hex field's digits s (n bytes)
 * stand in the body, for bi_msg_splice_header's respelling. Recorded here, next to the case flags
 * they go with, so every field whose case counts has its span. */
static inline void note_hex_span(bi_msg_t *m, const char *s, size_t n)
{
    if (m->root || !m->text)
        return;
    const char *copy = m->text + m->text_len + 1;
    if (s < copy || s + n > copy + m->text_len)
        return;
    if (m->hex_n < BI_HEX_SPANS)
        m->hex[m->hex_n] = (bi_hex_span_t){(uint32_t)(s - copy), (uint32_t)n};
    m->hex_n++;
}

/* Decodes a hex string of minb..maxb bytes into out (NULL: validate only). For `sizes` != 0 the
 * byte count must be one of the two sizes packed as (a | b << 8). */
static inline int hex_field(dctx_t *c, const path_t *p, const bi_val_t *v, size_t minb, size_t maxb,
                            unsigned sizes, uint8_t *out, size_t *outlen,
                            bi_result_code_t size_code)
{
    if (!is_type(v, cJSON_String))
        return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected a hex string");
    const char *s = v->s;
    size_t n = v->len;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        n -= 2;
        c->m->canon |= BI_CANON_HEX_PREFIX;
    }
    /* Class of each byte: 1 digit, 2 upper-case letter, 4 lower-case letter, 0 not hex. The
     * classes seen are OR-ed and the canonical-form flags set once, after the loop. */
    static const uint8_t cls[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['A'] = 2, ['B'] = 2, ['C'] = 2, ['D'] = 2, ['E'] = 2, ['F'] = 2,
        ['a'] = 4, ['b'] = 4, ['c'] = 4, ['d'] = 4, ['e'] = 4, ['f'] = 4};
    unsigned seen = 0;
    size_t i = 0;
#if defined(__SSE2__)
    /* 16 digits at a time: each byte in '0'..'9', 'A'..'F' or 'a'..'f' (signed compares: bytes
     * >= 0x80 are in no range); a chunk with anything else is left to the loop below, which
     * names the byte. */
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
#define IN_RANGE(lo, hi)                                                                           \
    _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((lo)-1)),                                        \
                  _mm_cmplt_epi8(x, _mm_set1_epi8((hi) + 1)))
        unsigned digit = (unsigned)_mm_movemask_epi8(IN_RANGE('0', '9')),
                 upper = (unsigned)_mm_movemask_epi8(IN_RANGE('A', 'F')),
                 lower = (unsigned)_mm_movemask_epi8(IN_RANGE('a', 'f'));
#undef IN_RANGE
        if ((digit | upper | lower) != 0xFFFFu)
            break;
        seen |= (upper ? 2u : 0u) | (lower ? 4u : 0u);
    }
#endif
    for (; i < n; i++) {
        int ch = (unsigned char)s[i];
        unsigned k = cls[ch];
        seen |= k;
        if (!k) {
            if (ch > 0x20 && ch < 0x7f)
                return bi_fail_at(c, p, MALFORMED, RH_EINVAL,
                                  "invalid hex digit '%c' at position %zu", ch, i);
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL,
                              "invalid hex digit 0x%02x at position %zu", ch, i);
        }
    }
    if (seen & 4)
        c->m->canon |= BI_CANON_HEX_LOWER;
    if (seen & 2)
        c->m->canon |= BI_CANON_HEX_UPPER;
    if (n % 2)
        return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "odd number of hex digits (%zu)", n);
    size_t nb = n / 2;
    if (sizes) {
        unsigned a = sizes & 0xff, b = sizes >> 8;
        if (nb != a && nb != b) {
            if (a == 3 && b == 8)
                return bi_fail_at(
                    c, p, size_code, RH_EINVAL,
                    "expected a NetID (3 bytes) or an EUI-64 (8 bytes), got %zu bytes", nb);
            return bi_fail_at(c, p, size_code, RH_EINVAL, "expected %u or %u bytes, got %zu", a, b,
                              nb);
        }
    } else if (minb == maxb && nb != minb) {
        return bi_fail_at(c, p, size_code, size_code == MALFORMED ? RH_EINVAL : RH_ESIZE,
                          "expected %zu bytes (%zu hex digits), got %zu", minb, 2 * minb, nb);
    } else if (nb < minb || nb > maxb) {
        return bi_fail_at(c, p, size_code, size_code == MALFORMED ? RH_ERANGE : RH_ESIZE,
                          "%zu bytes is outside %zu..%zu", nb, minb, maxb);
    }
    if (out)
        for (size_t j = 0; j < nb; j++)
            out[j] = (uint8_t)(rh_hex_nibble((unsigned char)s[2 * j]) << 4 |
                               rh_hex_nibble((unsigned char)s[2 * j + 1]));
    if (outlen)
        *outlen = nb;
    note_hex_span(c->m, s, n);
    return RH_OK;
}

static inline int hex_be(dctx_t *c, const path_t *p, const bi_val_t *v, unsigned sizes,
                         size_t fixed, uint64_t *val, size_t *nb)
{
    uint8_t b[8];
    size_t n = 0;
    int r = hex_field(c, p, v, fixed, fixed, sizes, b, &n, MALFORMED);
    if (r)
        return r;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | b[i];
    *val = x;
    if (nb)
        *nb = n;
    return RH_OK;
}

/* An integer field of descriptor fd (FT_U32, FT_U8, FT_I32 or FT_U64, fd->min..fd->max), stored
 * at dst in the field's width. */
static inline int int_field(dctx_t *c, const path_t *p, const bi_val_t *v, const fdesc_t *fd,
                            char *dst)
{
    if (!is_type(v, cJSON_Number))
        return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected integer");
    double d = v->d;
    if (!isfinite(d))
        return bi_fail_at(c, p, MALFORMED, RH_ERANGE, "number out of range");
    double ad = d < 0 ? -d : d;
    if (ad < 9007199254740992.0 && d != (double)(int64_t)d) /* >= 2^53 is always integral */
        return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected integer, got %.17g", d);
    if (d < fd->min || d > fd->max)
        return bi_fail_at(c, p, MALFORMED, RH_ERANGE, "%.15g is out of range %.15g..%.15g", d,
                          fd->min, fd->max);
    switch ((enum ftype)fd->type) {
    case FT_U8:
        *(uint8_t *)dst = (uint8_t)d;
        break;
    case FT_I32:
        *(int32_t *)dst = (int32_t)d;
        break;
    case FT_U64:
        *(uint64_t *)dst = (uint64_t)d;
        break;
    default: /* FT_U32 */
        *(uint32_t *)dst = (uint32_t)d;
        break;
    }
    return RH_OK;
}

/* Decodes leaf value v of descriptor fd (any type but FT_OBJECT and the containers FT_RESULT,
 * FT_UL, FT_DL, FT_KEYENV, FT_GWARRAY: those are bi_decode_value's) into base (+ fd->off) and
 * m->f / m->canon, with the field's type, range and size checks (TS002 1.0/1.1 §17 and the
 * tables in bi_msg.c). p: the member's path for error descriptions (NULL: none). Returns RH_OK or
 * the first error (recorded in c through bi_fail_at). */
static inline __attribute__((always_inline)) int
bi_decode_leaf(dctx_t *c, const fdesc_t *fd, const bi_val_t *v, void *base, const path_t *p)
{
    char *dst = (char *)base + fd->off;
    bi_fields_t *f = &c->m->f;
    double d;
    int r;
    switch ((enum ftype)fd->type) {
    case FT_VERSION: {
        if (!is_type(v, cJSON_String))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected string");
        bi_version_t ver = bi_version_parse(v->s, v->len);
        if (ver == BI_VERSION_UNKNOWN)
            return bi_fail_at(c, p, BI_RC_INVALID_PROTOCOL_VERSION, RH_EVERSION,
                              "unsupported version \"%.16s\" (expected \"1.0\" or \"1.1\")", v->s);
        *(bi_version_t *)dst = ver;
        return RH_OK;
    }
    case FT_MSGTYPE: {
        if (!is_type(v, cJSON_String))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected string");
        bi_msg_type_t t = bi_msg_type_parse(v->s);
        if (t == BI_MT_UNKNOWN)
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "unknown message type \"%.32s\"", v->s);
        *(bi_msg_type_t *)dst = t;
        return RH_OK;
    }
    case FT_ID: {
        bi_id_t *id = (bi_id_t *)dst;
        size_t nb;
        if ((r = hex_be(c, p, v, 3 | 8 << 8, 0, &id->value, &nb)))
            return r;
        id->kind = nb == 3 ? BI_ID_NETID : BI_ID_EUI64;
        return RH_OK;
    }
    case FT_NSID:
        c->m->canon |= BI_CANON_NSID;
        /* fall through */
    case FT_EUI:
        return hex_be(c, p, v, 0, 8, (uint64_t *)dst, NULL);
    case FT_NETID: {
        uint64_t x;
        if ((r = hex_be(c, p, v, 0, 3, &x, NULL)))
            return r;
        *(uint32_t *)dst = (uint32_t)x;
        return RH_OK;
    }
    case FT_DEVADDR: {
        uint64_t x;
        if ((r = hex_be(c, p, v, 0, 4, &x, NULL)))
            return r;
        *(uint32_t *)dst = (uint32_t)x;
        return RH_OK;
    }
    case FT_GWID: {
        bi_gwinfo_t *g = (bi_gwinfo_t *)base;
        size_t nb;
        if ((r = hex_be(c, p, v, 4 | 8 << 8, 0, &g->id, &nb)))
            return r;
        g->id_len = (uint8_t)nb;
        return RH_OK;
    }
    case FT_PHY: {
        size_t n = 0;
        if ((r = hex_field(c, p, v, 1, BI_MAX_PHY, 0, c->m->phy, &n, BI_RC_FRAME_SIZE_ERROR)))
            return r;
        f->phy_payload = c->m->phy;
        f->phy_payload_len = n;
        return RH_OK;
    }
    case FT_FRM:
        return hex_field(c, p, v, 0, BI_MAX_PHY, 0, NULL, NULL, BI_RC_FRAME_SIZE_ERROR);
    case FT_HEX64:
        return hex_field(c, p, v, 0, 64, 0, NULL, NULL, MALFORMED);
    case FT_HEXU8:
        return hex_field(c, p, v, 1, 1, 0, (uint8_t *)dst, NULL, MALFORMED);
    case FT_HEX16:
        return hex_field(c, p, v, 16, 16, 0, (uint8_t *)dst, NULL, MALFORMED);
    case FT_AESKEY: {
        bi_key_envelope_t *k = (bi_key_envelope_t *)base;
        size_t n = 0;
        if ((r = hex_field(c, p, v, 0, 0, 16 | 24 << 8, k->aes_key, &n, MALFORMED)))
            return r;
        k->aes_key_len = (uint8_t)n;
        return RH_OK;
    }
    case FT_TOKEN:
    case FT_STR:
        if (!is_type(v, cJSON_String))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected string");
        *(const char **)dst = v->s;
        return RH_OK;
    case FT_CLASS:
        if (!is_type(v, cJSON_String))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected string");
        if (strcmp(v->s, "A") && strcmp(v->s, "B") && strcmp(v->s, "C"))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected \"A\", \"B\" or \"C\"");
        *dst = v->s[0];
        return RH_OK;
    case FT_RCODE: {
        if (!is_type(v, cJSON_String))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected string");
        bool exact;
        const char *s = v->s;
        bi_result_code_t rc = bi_result_code_parse(s, &exact);
        f->result_code = rc;
        f->result_code_text = s;
        if (rc == BI_RC_UNKNOWN_RECEIVER && exact)
            c->m->canon |=
                strcmp(s, "UnkownReceiver") == 0 ? BI_CANON_RC_UNKOWN : BI_CANON_RC_UNKNOWN;
        else if ((rc == BI_RC_MALFORMED_REQUEST || rc == BI_RC_MALFORMED_MESSAGE) && exact)
            c->m->canon |= rc == BI_RC_MALFORMED_REQUEST ? BI_CANON_RC_MALFORMED_REQ
                                                         : BI_CANON_RC_MALFORMED_MSG;
        else if (!exact && (rc != BI_RC_OTHER || strcasecmp(s, "Other") == 0))
            c->m->canon |= BI_CANON_RC_ALIAS;
        return RH_OK;
    }
    case FT_U32:
    case FT_U8:
    case FT_I32:
    case FT_U64:
        return int_field(c, p, v, fd, dst);
    case FT_DOUBLE:
        if (!is_type(v, cJSON_Number))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected number");
        d = v->d;
        if (!isfinite(d) || d < fd->min || d > fd->max)
            return bi_fail_at(c, p, MALFORMED, RH_ERANGE, "%.17g is out of range %.15g..%.15g", d,
                              fd->min, fd->max);
        *(double *)dst = d;
        return RH_OK;
    case FT_BOOL:
        if (!(is_type(v, cJSON_True) || is_type(v, cJSON_False)))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected boolean");
        *(bool *)dst = is_type(v, cJSON_True);
        return RH_OK;
    case FT_REGION: {
        if (!is_type(v, cJSON_String))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected string");
        bi_region_t rg = bi_region_parse(v->s);
        *(bi_region_t *)dst = rg;
        if (rg != BI_REGION_UNKNOWN) {
            if (strcmp(v->s, bi_region_name(rg, BI_REGION_NAMES_RP002)))
                c->m->canon |= BI_CANON_REGION_NOT_RP002;
            if (strcmp(v->s, bi_region_name(rg, BI_REGION_NAMES_SPEC)))
                c->m->canon |= BI_CANON_REGION_NOT_SPEC;
        }
        return RH_OK;
    }
    case FT_TIME: {
        if (!is_type(v, cJSON_String))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "expected string");
        rh_diag_t diag;
        bi_time_t *t = (bi_time_t *)dst;
        if (bi_time_parse(v->s, t, "x", &diag))
            return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "%s", diag.text + 3);
        if (!bi_time_text_canonical(v->s)) {
            char canon[BI_TIME_MAX];
            bi_time_format(*t, canon);
            if (strcmp(canon, v->s))
                c->m->canon |= BI_CANON_TIME;
        }
        return RH_OK;
    }
    default:
        return bi_fail_at(c, p, MALFORMED, RH_EINVAL, "not a leaf field");
    }
}

#endif
