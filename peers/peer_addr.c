/* peer_addr.c — the outbound address policy (see peer_addr.h). */
#include "peer_addr.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SELF 8

typedef struct self_listener {
    int family;       /* AF_INET / AF_INET6 (an IPv4-mapped bind is stored as AF_INET) */
    uint8_t addr[16];
    bool any;         /* bound to the unspecified address */
    uint16_t port;
} self_listener_t;

struct peer_addr_policy {
    peer_addr_range_t *allow;
    size_t n_allow;
    self_listener_t self[MAX_SELF];
    size_t n_self;
    /* local interface addresses, read once when a listener binds the unspecified address */
    peer_addr_range_t *local;
    size_t n_local;
};

/* A destination normalised: IPv4 (also when mapped/NAT64 in IPv6) or IPv6. */
typedef struct dest {
    int family;
    uint8_t a[16];
    uint16_t port;
} dest_t;

static bool in_range(const peer_addr_range_t *r, int family, const uint8_t *a)
{
    if (r->family != family)
        return false;
    unsigned full = r->bits / 8, rest = r->bits % 8;
    if (memcmp(r->addr, a, full) != 0)
        return false;
    if (rest) {
        uint8_t m = (uint8_t)(0xFF << (8 - rest));
        if ((r->addr[full] & m) != (a[full] & m))
            return false;
    }
    return true;
}

int peer_addr_range_parse(const char *text, const char *field, peer_addr_range_t *out,
                          rh_diag_t *diag)
{
    char buf[64];
    memset(out, 0, sizeof *out);
    if (!text || strlen(text) >= sizeof buf)
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected an address range such as "
                                             "\"127.0.0.0/8\" or \"::1/128\"", field);
    snprintf(buf, sizeof buf, "%s", text);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1)
        out->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, out->addr) == 1)
        out->family = AF_INET6;
    else
        return rh_diag_fail(diag, RH_EINVAL, "%s: %s is not a numeric IPv4 or IPv6 address",
                            field, buf);
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        char *end;
        unsigned long b = strtoul(slash + 1, &end, 10);
        if (end == slash + 1 || *end || b > max)
            return rh_diag_fail(diag, RH_EINVAL, "%s: %s: prefix length must be 0..%u", field,
                                text, max);
        out->bits = (unsigned)b;
    }
    peer_addr_range_t masked = *out;
    memset(masked.addr, 0, sizeof masked.addr);
    unsigned full = out->bits / 8, rest = out->bits % 8;
    memcpy(masked.addr, out->addr, full);
    if (rest)
        masked.addr[full] = (uint8_t)(out->addr[full] & (0xFF << (8 - rest)));
    if (memcmp(masked.addr, out->addr, sizeof masked.addr) != 0)
        return rh_diag_fail(diag, RH_EINVAL, "%s: %s has bits set beyond /%u", field, text,
                            out->bits);
    return RH_OK;
}

int peer_addr_policy_new(const char *const *ranges, size_t n, const char *field,
                         peer_addr_policy_t **out, rh_diag_t *diag)
{
    *out = NULL;
    peer_addr_policy_t *p = calloc(1, sizeof *p);
    if (!p || (n && !(p->allow = calloc(n, sizeof *p->allow)))) {
        free(p);
        return rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", field);
    }
    for (size_t i = 0; i < n; i++) {
        char f[96];
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        int rc = peer_addr_range_parse(ranges[i], f, &p->allow[i], diag);
        if (rc) {
            peer_addr_policy_free(p);
            return rc;
        }
    }
    p->n_allow = n;
    *out = p;
    return RH_OK;
}

static int load_local(peer_addr_policy_t *p)
{
    if (p->local)
        return RH_OK;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return RH_ENOMEM;
    size_t n = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
        n++;
    p->local = calloc(n ? n : 1, sizeof *p->local);
    if (!p->local) {
        freeifaddrs(ifs);
        return RH_ENOMEM;
    }
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr)
            continue;
        peer_addr_range_t *r = &p->local[p->n_local];
        if (i->ifa_addr->sa_family == AF_INET) {
            r->family = AF_INET;
            r->bits = 32;
            memcpy(r->addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
            p->n_local++;
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            r->family = AF_INET6;
            r->bits = 128;
            memcpy(r->addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
            p->n_local++;
        }
    }
    freeifaddrs(ifs);
    return RH_OK;
}

/* IPv4 carried in an IPv6 address (mapped ::ffff:0:0/96 or NAT64 64:ff9b::/96), else false. */
static bool embedded_v4(const uint8_t *a6, uint8_t *a4)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(a6, mapped, 12) && memcmp(a6, nat64, 12))
        return false;
    memcpy(a4, a6 + 12, 4);
    return true;
}

static int to_dest(const struct sockaddr *sa, dest_t *d)
{
    memset(d, 0, sizeof *d);
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        d->family = AF_INET;
        memcpy(d->a, &in->sin_addr, 4);
        d->port = ntohs(in->sin_port);
        return RH_OK;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        d->port = ntohs(in6->sin6_port);
        if (embedded_v4(in6->sin6_addr.s6_addr, d->a)) {
            d->family = AF_INET;
        } else {
            d->family = AF_INET6;
            memcpy(d->a, in6->sin6_addr.s6_addr, 16);
        }
        return RH_OK;
    }
    return RH_EPERM;
}

/* A numeric address text and port as a sockaddr; RH_EINVAL when not numeric. */
static int sockaddr_of(const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (addr && inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
    } else if (addr && inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
    } else {
        return RH_EINVAL;
    }
    return RH_OK;
}

int peer_addr_policy_add_self(peer_addr_policy_t *p, const char *bind_addr, uint16_t port)
{
    if (p->n_self == MAX_SELF)
        return RH_ENOMEM;
    struct sockaddr_storage ss;
    if (sockaddr_of(bind_addr, port, &ss) != RH_OK)
        return RH_EINVAL;
    dest_t d;
    to_dest((struct sockaddr *)&ss, &d);
    self_listener_t *s = &p->self[p->n_self];
    s->family = d.family;
    memcpy(s->addr, d.a, sizeof s->addr);
    s->port = port;
    static const uint8_t zero[16];
    s->any = memcmp(d.a, zero, d.family == AF_INET ? 4 : 16) == 0;
    if (s->any && load_local(p) != RH_OK)
        return RH_ENOMEM;
    p->n_self++;
    return RH_OK;
}

void peer_addr_policy_free(peer_addr_policy_t *p)
{
    if (!p)
        return;
    free(p->allow);
    free(p->local);
    free(p);
}

/* The special-purpose class of an address, or NULL for a public one. */
static const char *special_class(const dest_t *d)
{
    static const struct {
        int family;
        uint8_t addr[16];
        unsigned bits;
        const char *what;
    } cls[] = {
        {AF_INET, {0}, 8, "an unspecified (0.0.0.0/8)"},
        {AF_INET, {127}, 8, "a loopback"},
        {AF_INET, {10}, 8, "a private (RFC 1918)"},
        {AF_INET, {172, 16}, 12, "a private (RFC 1918)"},
        {AF_INET, {192, 168}, 16, "a private (RFC 1918)"},
        {AF_INET, {100, 64}, 10, "a shared (RFC 6598)"},
        {AF_INET, {169, 254}, 16, "a link-local"},
        {AF_INET, {224}, 4, "a multicast"},
        {AF_INET, {240}, 4, "a reserved or broadcast"},
        {AF_INET6, {0}, 128, "an unspecified"},
        {AF_INET6, {[15] = 1}, 128, "a loopback"},
        {AF_INET6, {0}, 96, "an IPv4-compatible"},
        {AF_INET6, {0xfe, 0x80}, 10, "a link-local"},
        {AF_INET6, {0xfe, 0xc0}, 10, "a site-local"},
        {AF_INET6, {0xfc}, 7, "a unique local"},
        {AF_INET6, {0xff}, 8, "a multicast"},
    };
    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++) {
        peer_addr_range_t r = {cls[i].family, {0}, cls[i].bits};
        memcpy(r.addr, cls[i].addr, sizeof r.addr);
        if (in_range(&r, d->family, d->a))
            return cls[i].what;
    }
    return NULL;
}

static bool is_loopback(const dest_t *d)
{
    return (d->family == AF_INET && d->a[0] == 127) ||
           (d->family == AF_INET6 && !memcmp(d->a, (const uint8_t[16]){[15] = 1}, 16));
}

static bool is_self(const peer_addr_policy_t *p, const dest_t *d0)
{
    dest_t d = *d0;
    static const uint8_t zero[16];
    if (!memcmp(d.a, zero, d.family == AF_INET ? 4 : 16)) { /* connect(0.0.0.0) = loopback */
        memset(d.a, 0, sizeof d.a);
        if (d.family == AF_INET)
            d.a[0] = 127, d.a[3] = 1;
        else
            d.a[15] = 1;
    }
    for (size_t i = 0; i < p->n_self; i++) {
        const self_listener_t *s = &p->self[i];
        if (s->port != d.port)
            continue;
        if (s->any) {
            if (is_loopback(&d))
                return true;
            for (size_t k = 0; k < p->n_local; k++)
                if (in_range(&p->local[k], d.family, d.a))
                    return true;
            continue;
        }
        if (s->family == d.family && !memcmp(s->addr, d.a, d.family == AF_INET ? 4 : 16))
            return true;
    }
    return false;
}

int peer_addr_check(const peer_addr_policy_t *p, const struct sockaddr *sa, rh_diag_t *diag)
{
    dest_t d;
    if (to_dest(sa, &d) != RH_OK)
        return rh_diag_fail(diag, RH_EPERM, "endpoint address: not an IPv4 or IPv6 address");
    if (!p)
        return RH_OK;
    char text[INET6_ADDRSTRLEN];
    inet_ntop(d.family, d.a, text, sizeof text);
    if (is_self(p, &d))
        return rh_diag_fail(diag, RH_EPERM, "%s%s%s:%u is the hub's own listener",
                            d.family == AF_INET6 ? "[" : "", text,
                            d.family == AF_INET6 ? "]" : "", d.port);
    const char *what = special_class(&d);
    if (!what)
        return RH_OK;
    for (size_t i = 0; i < p->n_allow; i++)
        if (in_range(&p->allow[i], d.family, d.a))
            return RH_OK;
    return rh_diag_fail(diag, RH_EPERM,
                        "%s is %s address, which the hub does not connect to unless "
                        "relay.endpoint_allow_ranges allows it",
                        text, what);
}

int peer_addr_check_text(const peer_addr_policy_t *p, const char *addr, uint16_t port,
                         rh_diag_t *diag)
{
    struct sockaddr_storage ss;
    if (sockaddr_of(addr, port, &ss) != RH_OK)
        return rh_diag_fail(diag, RH_EINVAL, "endpoint address: %s is not numeric",
                            addr ? addr : "(none)");
    return peer_addr_check(p, (struct sockaddr *)&ss, diag);
}
