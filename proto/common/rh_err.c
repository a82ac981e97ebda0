/* rh_err.c — error texts and diagnostics (see rh_err.h). */
#include "rh_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *rh_strerror(int code)
{
    switch (code) {
    case RH_OK: return "success";
    case RH_EINVAL: return "invalid input";
    case RH_ENOMEM: return "out of memory";
    case RH_ERANGE: return "out of range";
    case RH_ENOTFOUND: return "not found";
    case RH_EEXIST: return "conflicts with an existing object";
    case RH_EMIC: return "MIC verification failed";
    case RH_ECRYPTO: return "crypto backend failure";
    case RH_EIO: return "I/O error";
    case RH_EFULL: return "storage full";
    case RH_EPERM: return "not permitted";
    case RH_ETIMEDOUT: return "timed out";
    case RH_EAGAIN: return "temporarily unavailable";
    case RH_ESIZE: return "frame size error";
    case RH_EVERSION: return "unsupported version";
    case RH_EUNSUPPORTED: return "not supported";
    default: return "unknown error";
    }
}

int rh_diag_fail(rh_diag_t *diag, int code, const char *fmt, ...)
{
    if (diag) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag->text, sizeof diag->text, fmt, ap);
        va_end(ap);
    }
    return code;
}

void rh_diag_clear(rh_diag_t *diag)
{
    if (diag)
        diag->text[0] = '\0';
}
