/* rh_hex.c — lenient hex input, plain hex output (see rh_hex.h). */
#include "rh_hex.h"

const uint8_t rh_hex_value1[256] = {
    ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5, ['5'] = 6, ['6'] = 7, ['7'] = 8,
    ['8'] = 9, ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int rh_hex_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen,
                  const char *what, rh_diag_t *diag)
{
    if (!what)
        what = "hex";
    if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        len -= 2;
    }
    if (len % 2)
        return rh_diag_fail(diag, RH_EINVAL, "%s: odd number of hex digits (%zu)", what, len);
    if (len / 2 > cap)
        return rh_diag_fail(diag, RH_ERANGE, "%s: %zu bytes, at most %zu allowed", what, len / 2,
                            cap);
    for (size_t i = 0; i < len; i += 2) {
        int hi = rh_hex_nibble((unsigned char)s[i]), lo = rh_hex_nibble((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) {
            size_t bad = hi < 0 ? i : i + 1;
            return rh_diag_fail(diag, RH_EINVAL, "%s: non-hex character at position %zu", what,
                                bad);
        }
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    if (outlen)
        *outlen = len / 2;
    return RH_OK;
}

size_t rh_hex_encode(const uint8_t *in, size_t n, char *out, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
    return 2 * n;
}

int rh_hex_parse_be(const char *s, size_t len, unsigned nbytes, uint64_t *v, const char *what,
                    rh_diag_t *diag)
{
    uint8_t buf[8];
    size_t n = 0;
    if (nbytes == 0 || nbytes > 8)
        return RH_ERANGE;
    int rc = rh_hex_decode(s, len, buf, sizeof buf, &n, what, diag);
    if (rc == RH_ERANGE || (rc == RH_OK && n != nbytes))
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected %u bytes (%u hex digits)",
                            what ? what : "hex", nbytes, 2 * nbytes);
    if (rc)
        return rc;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | buf[i];
    *v = x;
    return RH_OK;
}

size_t rh_hex_format_be(uint64_t v, unsigned nbytes, char *out, int upper)
{
    uint8_t buf[8];
    for (unsigned i = 0; i < nbytes; i++)
        buf[i] = (uint8_t)(v >> (8 * (nbytes - 1 - i)));
    return rh_hex_encode(buf, nbytes, out, upper);
}

int rh_eui64_parse(const char *s, uint64_t *eui, rh_diag_t *diag)
{
    size_t len = 0;
    while (s[len])
        len++;
    return rh_hex_parse_be(s, len, 8, eui, "EUI-64", diag);
}

void rh_eui64_format(uint64_t eui, char out[17]) { rh_hex_format_be(eui, 8, out, 0); }
