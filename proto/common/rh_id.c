/* rh_id.c — identifier rules (see rh_id.h). */
#include "rh_id.h"

#include <string.h>

static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

static int alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int rh_id_check(rh_id_kind_t kind, const char *s, const char *field, rh_diag_t *diag)
{
    size_t n = s ? strlen(s) : 0;
    if (kind == RH_ID_NAME) {
        if (n > RH_NAME_MAX)
            return rh_diag_fail(diag, RH_EINVAL, "%s: %zu bytes, at most %d", field, n,
                                RH_NAME_MAX);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return rh_diag_fail(diag, RH_EINVAL,
                                    "%s: byte %zu is a control character (0x%02x)", field, i + 1,
                                    (unsigned char)s[i]);
        return RH_OK;
    }
    size_t max = kind == RH_ID_TENANT ? RH_TENANT_MAX : RH_ID_MAX;
    const char *what = kind == RH_ID_TENANT ? "tenant ID" : "ID";
    if (n == 0)
        return kind == RH_ID_TENANT ? RH_OK
                                    : rh_diag_fail(diag, RH_EINVAL, "%s: an ID is required", field);
    if (n > max)
        return rh_diag_fail(diag, RH_EINVAL, "%s: %s is %zu characters, at most %zu", field, what,
                            n, max);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 0 && !alnum(c))
            return rh_diag_fail(diag, RH_EINVAL,
                                "%s: the %s must start with a letter or digit [A-Za-z0-9]", field,
                                what);
        if (!id_char(c)) {
            if (c > 0x20 && c < 0x7f)
                return rh_diag_fail(diag, RH_EINVAL,
                                    "%s: character %zu ('%c') of the %s is not one of "
                                    "[A-Za-z0-9._-]",
                                    field, i + 1, c, what);
            return rh_diag_fail(diag, RH_EINVAL,
                                "%s: character %zu (byte 0x%02x) of the %s is not one of "
                                "[A-Za-z0-9._-]",
                                field, i + 1, c, what);
        }
    }
    return RH_OK;
}
