/*
 * rh_err.h — the project's error model (shared runtime, see docs/ARCHITECTURE.md).
 *
 * Every fallible function returns int: 0 (RH_OK) on success, a negative RH_E* code on failure.
 * A lookup that finds nothing is not a failure: it returns RH_OK and says so through an out
 * parameter, unless its doc comment says RH_ENOTFOUND. Parsers and validators additionally fill
 * an optional rh_diag_t with one human-readable sentence naming the field and what was wrong
 * (e.g. "FHDR.FOptsLen: 5 bytes of FOpts run past the end of a 14-byte frame").
 */
#ifndef RH_ERR_H
#define RH_ERR_H

#include <stddef.h>

enum rh_err {
    RH_OK = 0,
    RH_EINVAL = -1,     /* malformed input (bad syntax, wrong type, bad value) */
    RH_ENOMEM = -2,     /* allocation failed */
    RH_ERANGE = -3,     /* value or length out of the allowed range; output buffer too small */
    RH_ENOTFOUND = -4,  /* the named object does not exist (only where documented) */
    RH_EEXIST = -5,     /* conflicts with an existing object (overlap, duplicate key) */
    RH_EMIC = -6,       /* MIC verification failed */
    RH_ECRYPTO = -7,    /* the crypto backend (OpenSSL) failed */
    RH_EIO = -8,        /* I/O or storage failure */
    RH_EFULL = -9,      /* storage full (LMDB map full even after growing) */
    RH_EPERM = -10,     /* not allowed (authorization, policy) */
    RH_ETIMEDOUT = -11, /* deadline passed */
    RH_EAGAIN = -12,    /* temporarily unavailable (rate limit, back-off) */
    RH_ESIZE = -13,     /* frame or message size error (LoRaWAN FrameSizeError) */
    RH_EVERSION = -14,  /* unsupported (RFU) protocol or LoRaWAN major version */
    RH_EUNSUPPORTED = -15, /* well-formed but not implemented */
};

/* Static text for an RH_E* code ("invalid input", ...). Never NULL; unknown codes give
 * "unknown error". */
const char *rh_strerror(int code);

/* A diagnostic: one sentence naming the field and the reason. Callers may pass NULL wherever an
 * rh_diag_t* is accepted; text is always NUL-terminated (truncated if longer). */
typedef struct rh_diag {
    char text[256];
} rh_diag_t;

/* printf-style setter; a NULL diag is a no-op. Returns `code` so that parsers can write
 * `return rh_diag_fail(d, RH_EINVAL, "DevAddr: expected 8 hex digits, got %zu", n);`. */
int rh_diag_fail(rh_diag_t *diag, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears a diagnostic (text becomes ""). NULL is a no-op. */
void rh_diag_clear(rh_diag_t *diag);

#endif
