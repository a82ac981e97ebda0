/* lw_netid.c — NetID / DevAddr prefix arithmetic with the errata NwkID widths (see lw_netid.h).
 * Invariant: every function is a pure computation on integers; tables are indexed by type 0..7. */
#include "lw_netid.h"

#include "rh_hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t nwkid_bits[8] = {6, 6, 9, 11, 12, 13, 15, 17};
static const uint8_t id_bits[8] = {6, 6, 9, 21, 21, 21, 21, 21};

unsigned lw_nwkid_bits(unsigned type) { return type < 8 ? nwkid_bits[type] : 0; }

unsigned lw_nwkaddr_bits(unsigned type)
{
    return type < 8 ? 32u - (type + 1u) - nwkid_bits[type] : 0;
}

uint32_t lw_netid_id(uint32_t netid)
{
    return netid & ((1u << id_bits[lw_netid_type(netid)]) - 1u);
}

uint32_t lw_netid_nwkid(uint32_t netid)
{
    return netid & ((1u << nwkid_bits[lw_netid_type(netid)]) - 1u);
}

int lw_netid_devaddr_prefix(uint32_t netid, lw_devaddr_prefix_t *prefix, rh_diag_t *diag)
{
    if (netid > 0xFFFFFFu)
        return rh_diag_fail(diag, RH_EINVAL, "NetID: %08X is wider than 24 bits", netid);
    unsigned t = lw_netid_type(netid);
    unsigned len = t + 1 + nwkid_bits[t];
    uint32_t type_prefix = (uint32_t)(0xFF00u >> t) & 0xFEu; /* t ones then a zero, 8 bits */
    uint32_t v = type_prefix << 24;
    v |= lw_netid_nwkid(netid) << (32 - len);
    prefix->value = v;
    prefix->len = (uint8_t)len;
    return RH_OK;
}

int lw_devaddr_type(uint32_t devaddr)
{
    for (int t = 0; t < 8; t++) {
        if (!(devaddr & (0x80000000u >> t)))
            return t;
    }
    return -1;
}

int lw_devaddr_nwkid(uint32_t devaddr, uint32_t *nwkid)
{
    int t = lw_devaddr_type(devaddr);
    if (t < 0)
        return RH_EINVAL;
    unsigned shift = 32u - (unsigned)(t + 1) - nwkid_bits[t];
    *nwkid = (devaddr >> shift) & ((1u << nwkid_bits[t]) - 1u);
    return RH_OK;
}

int lw_devaddr_in_netid(uint32_t devaddr, uint32_t netid)
{
    lw_devaddr_prefix_t p;
    if (lw_netid_devaddr_prefix(netid, &p, NULL) != RH_OK)
        return 0;
    return lw_prefix_contains(p, devaddr);
}

int lw_netid_parse(const char *s, uint32_t *netid, rh_diag_t *diag)
{
    uint64_t v;
    int rc = rh_hex_parse_be(s, strlen(s), 3, &v, "NetID", diag);
    if (rc == RH_OK)
        *netid = (uint32_t)v;
    return rc;
}

void lw_netid_format(uint32_t netid, char out[7], int upper)
{
    rh_hex_format_be(netid, 3, out, upper);
}

int lw_devaddr_parse(const char *s, uint32_t *devaddr, rh_diag_t *diag)
{
    uint64_t v;
    int rc = rh_hex_parse_be(s, strlen(s), 4, &v, "DevAddr", diag);
    if (rc == RH_OK)
        *devaddr = (uint32_t)v;
    return rc;
}

void lw_devaddr_format(uint32_t devaddr, char out[9], int upper)
{
    rh_hex_format_be(devaddr, 4, out, upper);
}

int lw_devaddr_prefix_parse(const char *s, lw_devaddr_prefix_t *p, rh_diag_t *diag)
{
    const char *slash = strchr(s, '/');
    if (!slash)
        return rh_diag_fail(diag, RH_EINVAL, "DevAddr prefix: expected VALUE/LENGTH, got '%.40s'",
                            s);
    uint64_t v;
    int rc = rh_hex_parse_be(s, (size_t)(slash - s), 4, &v, "DevAddr prefix", diag);
    if (rc)
        return rc;
    char *end;
    const char *lp = slash + 1;
    if (*lp < '0' || *lp > '9')
        return rh_diag_fail(diag, RH_EINVAL, "DevAddr prefix: length must be a number 0..32");
    unsigned long len = strtoul(lp, &end, 10);
    if (*end != '\0' || len > 32)
        return rh_diag_fail(diag, RH_EINVAL, "DevAddr prefix: length must be a number 0..32");
    uint32_t mask = len == 0 ? 0 : 0xFFFFFFFFu << (32 - len);
    if ((uint32_t)v & ~mask)
        return rh_diag_fail(diag, RH_EINVAL,
                            "DevAddr prefix: %08X has bits set beyond the /%lu prefix length",
                            (uint32_t)v, len);
    p->value = (uint32_t)v;
    p->len = (uint8_t)len;
    return RH_OK;
}

void lw_devaddr_prefix_format(lw_devaddr_prefix_t p, char out[16])
{
    snprintf(out, 16, "%08X/%u", p.value, (unsigned)p.len);
}
