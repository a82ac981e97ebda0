/*
 * grpc_frame.c — gRPC framing, status names, grpc-message encoding, grpc-timeout (grpc_frame.h).
 */
#include "grpc_frame.h"

#include "rh_hex.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *grpc_status_name(int status)
{
    if (status < 0 || status >= (int)(sizeof status_names / sizeof status_names[0]))
        return "UNKNOWN";
    return status_names[status];
}

void grpc_frame_header(uint8_t hdr[GRPC_FRAME_HDR], uint32_t len)
{
    hdr[0] = 0;
    hdr[1] = (uint8_t)(len >> 24);
    hdr[2] = (uint8_t)(len >> 16);
    hdr[3] = (uint8_t)(len >> 8);
    hdr[4] = (uint8_t)len;
}

void grpc_deframer_init(grpc_deframer_t *r, size_t max_msg, grpc_msg_fn on_msg, void *arg)
{
    memset(r, 0, sizeof *r);
    r->max_msg = max_msg;
    r->on_msg = on_msg;
    r->arg = arg;
}

bool grpc_deframer_idle(const grpc_deframer_t *r)
{
    return r->hdr_have == 0;
}

void grpc_deframer_fini(grpc_deframer_t *r)
{
    free(r->buf);
    r->buf = NULL;
    r->hdr_have = r->want = r->have = 0;
}

/* Hands over the assembled message and resets for the next header. */
static int deliver(grpc_deframer_t *r, const uint8_t *msg, size_t len)
{
    r->messages++;
    int rc = r->on_msg ? r->on_msg(r->arg, msg, len) : GRPC_OK;
    free(r->buf);
    r->buf = NULL;
    r->hdr_have = r->want = r->have = 0;
    return rc;
}

int grpc_deframer_feed(grpc_deframer_t *r, const uint8_t *p, size_t n, rh_diag_t *diag)
{
    while (n > 0) {
        if (r->hdr_have < GRPC_FRAME_HDR) {
            size_t take = GRPC_FRAME_HDR - r->hdr_have;
            if (take > n)
                take = n;
            memcpy(r->hdr + r->hdr_have, p, take);
            r->hdr_have += take;
            p += take;
            n -= take;
            if (r->hdr_have < GRPC_FRAME_HDR)
                return GRPC_OK;
            if (r->hdr[0] == 1) {
                rh_diag_fail(diag, RH_EUNSUPPORTED,
                             "message: compressed, but no grpc-encoding is supported");
                return GRPC_UNIMPLEMENTED;
            }
            if (r->hdr[0] != 0) {
                rh_diag_fail(diag, RH_EINVAL, "message: Compressed-Flag %u, expected 0 or 1",
                             r->hdr[0]);
                return GRPC_INTERNAL;
            }
            r->want = (size_t)r->hdr[1] << 24 | (size_t)r->hdr[2] << 16 |
                      (size_t)r->hdr[3] << 8 | r->hdr[4];
            if (r->want > r->max_msg) {
                rh_diag_fail(diag, RH_ERANGE, "message: %zu bytes, at most %zu", r->want,
                             r->max_msg);
                return GRPC_RESOURCE_EXHAUSTED;
            }
            r->have = 0;
            if (r->want == 0) {
                int rc = deliver(r, (const uint8_t *)"", 0);
                if (rc != GRPC_OK)
                    return rc;
                continue;
            }
            /* The whole message is already here: no copy. */
            if (n >= r->want) {
                size_t len = r->want;
                int rc = deliver(r, p, len);
                p += len;
                n -= len;
                if (rc != GRPC_OK)
                    return rc;
                continue;
            }
            r->buf = malloc(r->want);
            if (!r->buf) {
                rh_diag_fail(diag, RH_ENOMEM, "message: out of memory for %zu bytes", r->want);
                return GRPC_INTERNAL;
            }
        }
        size_t take = r->want - r->have;
        if (take > n)
            take = n;
        memcpy(r->buf + r->have, p, take);
        r->have += take;
        p += take;
        n -= take;
        if (r->have == r->want) {
            int rc = deliver(r, r->buf, r->want);
            if (rc != GRPC_OK)
                return rc;
        }
    }
    return GRPC_OK;
}

size_t grpc_percent_encode(const char *msg, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *s = (const unsigned char *)msg; *s; s++) {
        bool plain = *s >= 0x20 && *s <= 0x7e && *s != '%';
        size_t need = plain ? 1 : 3;
        if (o + need > cap - 1)
            break;
        if (plain) {
            out[o++] = (char)*s;
        } else {
            out[o++] = '%';
            out[o++] = hex[*s >> 4];
            out[o++] = hex[*s & 15];
        }
    }
    out[o] = '\0';
    return o;
}

size_t grpc_percent_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o < cap - 1; i++) {
        int hi, lo;
        if (in[i] == '%' && i + 2 < len &&
            (hi = rh_hex_nibble((unsigned char)in[i + 1])) >= 0 &&
            (lo = rh_hex_nibble((unsigned char)in[i + 2])) >= 0) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return o;
}

int grpc_timeout_parse(const char *v, size_t len, uint64_t *ms, rh_diag_t *diag)
{
    if (len < 2 || len > 9)
        return rh_diag_fail(diag, RH_EINVAL,
                            "grpc-timeout: %zu characters, expected 1 to 8 digits and a unit", len);
    uint64_t n = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return rh_diag_fail(diag, RH_EINVAL, "grpc-timeout: '%c' is not a digit", v[i]);
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    uint64_t r;
    switch (v[len - 1]) {
    case 'H': r = n * 3600000u; break;
    case 'M': r = n * 60000u; break;
    case 'S': r = n * 1000u; break;
    case 'm': r = n; break;
    case 'u': r = (n + 999u) / 1000u; break;
    case 'n': r = (n + 999999u) / 1000000u; break;
    default:
        return rh_diag_fail(diag, RH_EINVAL,
                            "grpc-timeout: unit '%c', expected one of H M S m u n", v[len - 1]);
    }
    *ms = (n > 0 && r == 0) ? 1 : r;
    return RH_OK;
}
