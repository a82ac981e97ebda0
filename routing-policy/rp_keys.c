/*
 * rp_keys.c — record kinds, key encodings (fixed-width big-endian), field validation, names of
 * classes/outcomes, and the zero-allocation protobuf scanner used by the lookups.
 */
#include "rp_internal.h"

#include "rh_id.h"

#include "lw_netid.h"
#include "rh_hex.h"
#include "roamhub_fields.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const kind_names[RP_KIND_COUNT] = {
    "network", "tenant", "devaddr_block", "join_route", "policy", "endpoint", "member", "api_key",
};

const char *rp_kind_name(rp_kind_t k)
{
    return (unsigned)k < RP_KIND_COUNT ? kind_names[k] : "?";
}

const ProtobufCMessageDescriptor *rp_kind_descriptor(rp_kind_t k)
{
    switch (k) {
    case RP_KIND_NETWORK: return &roamhub__v1__network__descriptor;
    case RP_KIND_TENANT: return &roamhub__v1__tenant__descriptor;
    case RP_KIND_BLOCK: return &roamhub__v1__dev_addr_block__descriptor;
    case RP_KIND_JOIN_ROUTE: return &roamhub__v1__join_route__descriptor;
    case RP_KIND_POLICY: return &roamhub__v1__routing_policy__descriptor;
    case RP_KIND_ENDPOINT: return &roamhub__v1__endpoint__descriptor;
    case RP_KIND_MEMBER: return &roamhub__v1__member__descriptor;
    case RP_KIND_API_KEY: return &roamhub__v1__api_key__descriptor;
    default: return NULL;
    }
}

static const char *const class_names[RP_CLASS_COUNT] = {
    "join_request", "uplink_mac", "uplink_app", "join_accept", "downlink_mac", "downlink_app",
    "other",
};
static const char *const outcome_names[RP_OUT_COUNT] = {
    "forwarded", "policy_denied", "no_route", "receiver_error",
    "timeout",   "malformed",     "unauthorized", "unreachable", "rate_limited",
};

const char *rp_class_name(rp_class_t c)
{
    return (unsigned)c < RP_CLASS_COUNT ? class_names[c] : "?";
}

/* Index of s in names[0..n), or -1 (also for NULL). */
static int name_index(const char *const *names, unsigned n, const char *s)
{
    for (unsigned i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return (int)i;
    return -1;
}

int rp_class_parse(const char *s, rp_class_t *out)
{
    int i = name_index(class_names, RP_CLASS_COUNT, s);
    if (i < 0)
        return RH_EINVAL;
    *out = (rp_class_t)i;
    return RH_OK;
}

const char *rp_outcome_name(rp_outcome_t o)
{
    return (unsigned)o < RP_OUT_COUNT ? outcome_names[o] : "?";
}

int rp_outcome_parse(const char *s, rp_outcome_t *out)
{
    int i = name_index(outcome_names, RP_OUT_COUNT, s);
    if (i < 0)
        return RH_EINVAL;
    *out = (rp_outcome_t)i;
    return RH_OK;
}

static const char *const protocol_names[RP_PROTO_COUNT] = {"ts002", "packet_broker"};

const char *rp_protocol_name(rp_protocol_t p)
{
    return (unsigned)p < RP_PROTO_COUNT ? protocol_names[p] : "?";
}

int rp_protocol_parse(const char *s, rp_protocol_t *out)
{
    int i = name_index(protocol_names, RP_PROTO_COUNT, s);
    if (i < 0)
        return RH_EINVAL;
    *out = (rp_protocol_t)i;
    return RH_OK;
}

const char *rp_deny_name(rp_deny_t d)
{
    switch (d) {
    case RP_DENY_NONE: return "allowed";
    case RP_DENY_NO_POLICY: return "no_policy";
    case RP_DENY_CLASS: return "class_denied";
    }
    return "?";
}

const char *rp_source_name(rp_policy_source_t s)
{
    static const char *const n[] = {"none",        "tenant->home_tenant", "tenant->home_netid",
                                    "tenant->default", "netid->home_tenant", "netid->home_netid",
                                    "netid->default"};
    return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "?";
}

/* ---- validation ---------------------------------------------------------------------------- */

/* Both identifier rules live in proto/common/rh_id (one place for the whole hub). */
int rp__tenant_valid(const char *t, const char *field, rh_diag_t *diag)
{
    return rh_id_check(RH_ID_TENANT, t, field, diag);
}

int rp__id_valid(const char *id, const char *field, rh_diag_t *diag)
{
    return rh_id_check(RH_ID_RECORD, id, field, diag);
}

static int netid_valid(uint32_t v, const char *field, rh_diag_t *diag)
{
    if (v > 0xFFFFFFu)
        return rh_diag_fail(diag, RH_EINVAL, "%s: NetID 0x%X is wider than 24 bits", field, v);
    return RH_OK;
}

static int str_max(const char *s, size_t max, const char *field, rh_diag_t *diag)
{
    size_t n = s ? strlen(s) : 0;
    if (n > max)
        return rh_diag_fail(diag, RH_EINVAL, "%s: %zu characters, at most %zu", field, n, max);
    return RH_OK;
}

int rp_party_set(rp_party_t *p, uint32_t net_id, const char *tenant, rh_diag_t *diag)
{
    int rc = netid_valid(net_id, "NetID", diag);
    if (rc == RH_OK)
        rc = rp__tenant_valid(tenant, "tenant", diag);
    if (rc)
        return rc;
    memset(p, 0, sizeof *p);
    p->net_id = net_id;
    if (tenant)
        memcpy(p->tenant_id, tenant, strlen(tenant));
    return RH_OK;
}

/* ---- keys ---------------------------------------------------------------------------------- */

static void put_tenant(uint8_t *out, const char *t)
{
    memset(out, 0, RP_TENANT_MAX);
    if (t) {
        size_t n = strlen(t);
        memcpy(out, t, n > RP_TENANT_MAX ? RP_TENANT_MAX : n);
    }
}

void rp__tenant_copy(char out[RP_TENANT_MAX + 1], const uint8_t *key36)
{
    memcpy(out, key36, RP_TENANT_MAX);
    out[RP_TENANT_MAX] = 0;
}

void rp__key_tenant(uint8_t out[RP_KEY_TENANT], uint32_t net_id, const char *tenant)
{
    rh_put_be32(out, net_id);
    put_tenant(out + 4, tenant);
}

void rp__key_policy(uint8_t out[RP_KEY_POLICY], uint32_t fnet, const char *ften, int has_home,
                    uint32_t hnet, const char *hten)
{
    rh_put_be32(out, fnet);
    put_tenant(out + 4, ften);
    out[4 + RP_TENANT_MAX] = has_home ? 1 : 0;
    rh_put_be32(out + 5 + RP_TENANT_MAX, has_home ? hnet : 0);
    put_tenant(out + 9 + RP_TENANT_MAX, has_home ? hten : NULL);
}

void rp__key_block(uint8_t out[RP_KEY_BLOCK], uint32_t prefix, unsigned len)
{
    rh_put_be32(out, prefix);
    out[4] = (uint8_t)len;
}

void rp__key_join(uint8_t out[RP_KEY_JOIN], uint64_t jp, unsigned jl, uint64_t dp, unsigned dl)
{
    rh_put_be64(out, jp);
    out[8] = (uint8_t)jl;
    rh_put_be64(out + 9, dp);
    out[17] = (uint8_t)dl;
}

static int key_string(const char *id, uint8_t *key, size_t *klen)
{
    size_t n = strlen(id);
    memcpy(key, id, n);
    *klen = n;
    return RH_OK;
}

int rp__key_of(rp_kind_t kind, const ProtobufCMessage *msg, uint8_t *key, size_t *klen,
               rh_diag_t *diag)
{
    if (!msg || msg->descriptor != rp_kind_descriptor(kind))
        return rh_diag_fail(diag, RH_EINVAL, "record: expected a %s message", rp_kind_name(kind));
    int rc;
    switch (kind) {
    case RP_KIND_NETWORK: {
        const Roamhub__V1__Network *m = (const void *)msg;
        if ((rc = netid_valid(m->net_id, "network.net_id", diag)))
            return rc;
        rh_put_be32(key, m->net_id);
        *klen = 4;
        return RH_OK;
    }
    case RP_KIND_TENANT: {
        const Roamhub__V1__Tenant *m = (const void *)msg;
        if ((rc = netid_valid(m->net_id, "tenant.net_id", diag)) ||
            (rc = rp__tenant_valid(m->tenant_id, "tenant.tenant_id", diag)))
            return rc;
        if (!m->tenant_id || !m->tenant_id[0])
            return rh_diag_fail(diag, RH_EINVAL, "tenant.tenant_id: a tenant ID is required");
        rp__key_tenant(key, m->net_id, m->tenant_id);
        *klen = RP_KEY_TENANT;
        return RH_OK;
    }
    case RP_KIND_BLOCK: {
        const Roamhub__V1__DevAddrBlock *m = (const void *)msg;
        if (m->length > 32)
            return rh_diag_fail(diag, RH_EINVAL, "devaddr_block.length: %u is more than 32 bits",
                                m->length);
        if (m->prefix & ~rp__mask32(m->length))
            return rh_diag_fail(diag, RH_EINVAL,
                                "devaddr_block.prefix: %08X has bits set beyond /%u", m->prefix,
                                m->length);
        rp__key_block(key, m->prefix, m->length);
        *klen = RP_KEY_BLOCK;
        return RH_OK;
    }
    case RP_KIND_JOIN_ROUTE: {
        const Roamhub__V1__JoinRoute *m = (const void *)msg;
        if (m->join_eui_length > 64)
            return rh_diag_fail(diag, RH_EINVAL, "join_route.join_eui_length: %u is more than 64",
                                m->join_eui_length);
        if (m->dev_eui_length > 64)
            return rh_diag_fail(diag, RH_EINVAL, "join_route.dev_eui_length: %u is more than 64",
                                m->dev_eui_length);
        if (m->join_eui_prefix & ~rp__mask64(m->join_eui_length))
            return rh_diag_fail(diag, RH_EINVAL,
                                "join_route.join_eui_prefix: bits set beyond /%u",
                                m->join_eui_length);
        if (m->dev_eui_prefix & ~rp__mask64(m->dev_eui_length))
            return rh_diag_fail(diag, RH_EINVAL, "join_route.dev_eui_prefix: bits set beyond /%u",
                                m->dev_eui_length);
        rp__key_join(key, m->join_eui_prefix, m->join_eui_length, m->dev_eui_prefix,
                     m->dev_eui_length);
        *klen = RP_KEY_JOIN;
        return RH_OK;
    }
    case RP_KIND_POLICY: {
        const Roamhub__V1__RoutingPolicy *m = (const void *)msg;
        if ((rc = netid_valid(m->forwarder_net_id, "policy.forwarder_net_id", diag)) ||
            (rc = rp__tenant_valid(m->forwarder_tenant_id, "policy.forwarder_tenant_id", diag)) ||
            (rc = netid_valid(m->home_net_id, "policy.home_net_id", diag)) ||
            (rc = rp__tenant_valid(m->home_tenant_id, "policy.home_tenant_id", diag)))
            return rc;
        if (!m->has_home && (m->home_net_id != 0 || (m->home_tenant_id && m->home_tenant_id[0])))
            return rh_diag_fail(diag, RH_EINVAL,
                                "policy.home_net_id: a default policy (has_home false) names no "
                                "home network");
        rp__key_policy(key, m->forwarder_net_id, m->forwarder_tenant_id, m->has_home,
                       m->home_net_id, m->home_tenant_id);
        *klen = RP_KEY_POLICY;
        return RH_OK;
    }
    case RP_KIND_ENDPOINT: {
        const Roamhub__V1__Endpoint *m = (const void *)msg;
        if ((rc = rp__id_valid(m->id, "endpoint.id", diag)))
            return rc;
        return key_string(m->id, key, klen);
    }
    case RP_KIND_MEMBER: {
        const Roamhub__V1__Member *m = (const void *)msg;
        if ((rc = rp__id_valid(m->id, "member.id", diag)))
            return rc;
        return key_string(m->id, key, klen);
    }
    case RP_KIND_API_KEY: {
        const Roamhub__V1__ApiKey *m = (const void *)msg;
        if ((rc = rp__id_valid(m->id, "api_key.id", diag)))
            return rc;
        return key_string(m->id, key, klen);
    }
    default:
        return rh_diag_fail(diag, RH_EINVAL, "record: unknown kind %d", (int)kind);
    }
}

static int contacts_valid(size_t n, Roamhub__V1__Contact **c, const char *field, rh_diag_t *diag)
{
    if (n > 64)
        return rh_diag_fail(diag, RH_EINVAL, "%s: %zu contacts, at most 64", field, n);
    for (size_t i = 0; i < n; i++) {
        if (!c[i])
            return rh_diag_fail(diag, RH_EINVAL, "%s[%zu]: missing", field, i);
        if (str_max(c[i]->name, 256, "contact.name", diag) ||
            str_max(c[i]->email, 256, "contact.email", diag) ||
            str_max(c[i]->phone, 64, "contact.phone", diag))
            return RH_EINVAL;
    }
    return RH_OK;
}

int rp__validate(rp_kind_t kind, const ProtobufCMessage *msg, rh_diag_t *diag)
{
    uint8_t key[RP_KEY_MAX];
    size_t klen;
    int rc = rp__key_of(kind, msg, key, &klen, diag);
    if (rc)
        return rc;
    switch (kind) {
    case RP_KIND_NETWORK: {
        const Roamhub__V1__Network *m = (const void *)msg;
        if (rh_id_check(RH_ID_NAME, m->name, "network.name", diag) ||
            contacts_valid(m->n_contacts, m->contacts, "network.contacts", diag))
            return RH_EINVAL;
        if (m->n_delegated_net_ids > 256)
            return rh_diag_fail(diag, RH_EINVAL, "network.delegated_net_ids: at most 256");
        for (size_t i = 0; i < m->n_delegated_net_ids; i++)
            if (netid_valid(m->delegated_net_ids[i], "network.delegated_net_ids", diag))
                return RH_EINVAL;
        if (m->gateway_precision_m != 0 &&
            (m->gateway_precision_m < 100 || m->gateway_precision_m > 1000000))
            return rh_diag_fail(diag, RH_EINVAL,
                                "network.gateway_precision_m: %u, expected 0 or 100..1000000",
                                (unsigned)m->gateway_precision_m);
        return RH_OK;
    }
    case RP_KIND_TENANT: {
        const Roamhub__V1__Tenant *m = (const void *)msg;
        if (rh_id_check(RH_ID_NAME, m->name, "tenant.name", diag) ||
            contacts_valid(m->n_contacts, m->contacts, "tenant.contacts", diag))
            return RH_EINVAL;
        return RH_OK;
    }
    case RP_KIND_BLOCK: {
        const Roamhub__V1__DevAddrBlock *m = (const void *)msg;
        if ((rc = netid_valid(m->net_id, "devaddr_block.net_id", diag)) ||
            (rc = rp__tenant_valid(m->tenant_id, "devaddr_block.tenant_id", diag)) ||
            (rc = str_max(m->cluster_id, RP_CLUSTER_MAX, "devaddr_block.cluster_id", diag)))
            return rc;
        return RH_OK;
    }
    case RP_KIND_JOIN_ROUTE: {
        const Roamhub__V1__JoinRoute *m = (const void *)msg;
        if ((rc = netid_valid(m->home_net_id, "join_route.home_net_id", diag)) ||
            (rc = rp__tenant_valid(m->home_tenant_id, "join_route.home_tenant_id", diag)))
            return rc;
        if (m->join_server_id && m->join_server_id[0]) {
            if ((rc = rp__id_valid(m->join_server_id, "join_route.join_server_id", diag)))
                return rc;
            if (m->home_net_id != 0 || (m->home_tenant_id && m->home_tenant_id[0]))
                return rh_diag_fail(diag, RH_EINVAL,
                                    "join_route.join_server_id: a route goes either to a home "
                                    "network or to a Join Server, not both");
        }
        return RH_OK;
    }
    case RP_KIND_POLICY: {
        const Roamhub__V1__RoutingPolicy *m = (const void *)msg;
        if (!m->uplink && !m->downlink)
            return RH_OK; /* explicit all-off */
        return RH_OK;
    }
    case RP_KIND_ENDPOINT: {
        const Roamhub__V1__Endpoint *m = (const void *)msg;
        if ((rc = netid_valid(m->net_id, "endpoint.net_id", diag)) ||
            (rc = rp__tenant_valid(m->tenant_id, "endpoint.tenant_id", diag)))
            return rc;
        if (!m->url || (strncmp(m->url, "http://", 7) != 0 && strncmp(m->url, "https://", 8) != 0))
            return rh_diag_fail(diag, RH_EINVAL,
                                "endpoint.url: must start with http:// or https://");
        if (str_max(m->url, 2048, "endpoint.url", diag) ||
            str_max(m->ca_file, 4096, "endpoint.ca_file", diag) ||
            str_max(m->client_cert_file, 4096, "endpoint.client_cert_file", diag) ||
            str_max(m->client_key_file, 4096, "endpoint.client_key_file", diag) ||
            str_max(m->authorization, 8192, "endpoint.authorization", diag))
            return RH_EINVAL;
        if (m->protocol_version != ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_0 &&
            m->protocol_version != ROAMHUB__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_1_1)
            return rh_diag_fail(diag, RH_EINVAL, "endpoint.protocol_version: unknown value %d",
                                (int)m->protocol_version);
        return RH_OK;
    }
    case RP_KIND_MEMBER: {
        const Roamhub__V1__Member *m = (const void *)msg;
        if (m->n_net_ids > 256 || m->n_tenant_ids > 256 || m->n_cert_fingerprints > 64 ||
            m->n_cert_subjects > 64 || m->n_api_key_hashes > 64)
            return rh_diag_fail(diag, RH_EINVAL, "member: too many list entries (limits 256/64)");
        for (size_t i = 0; i < m->n_net_ids; i++)
            if ((rc = netid_valid(m->net_ids[i], "member.net_ids", diag)))
                return rc;
        for (size_t i = 0; i < m->n_tenant_ids; i++)
            if ((rc = rp__tenant_valid(m->tenant_ids[i], "member.tenant_ids", diag)))
                return rc;
        for (size_t i = 0; i < m->n_cert_fingerprints; i++)
            if ((rc = str_max(m->cert_fingerprints[i], 128, "member.cert_fingerprints", diag)))
                return rc;
        for (size_t i = 0; i < m->n_cert_subjects; i++)
            if ((rc = str_max(m->cert_subjects[i], 1024, "member.cert_subjects", diag)))
                return rc;
        for (size_t i = 0; i < m->n_api_key_hashes; i++)
            if (m->api_key_hashes[i].len != 32)
                return rh_diag_fail(diag, RH_EINVAL,
                                    "member.api_key_hashes[%zu]: a SHA-256 hash is 32 bytes, got "
                                    "%zu",
                                    i, m->api_key_hashes[i].len);
        return RH_OK;
    }
    case RP_KIND_API_KEY: {
        const Roamhub__V1__ApiKey *m = (const void *)msg;
        if ((rc = netid_valid(m->net_id, "api_key.net_id", diag)) ||
            (rc = rp__tenant_valid(m->tenant_id, "api_key.tenant_id", diag)) ||
            (rc = rh_id_check(RH_ID_NAME, m->name, "api_key.name", diag)))
            return rc;
        if (m->secret_hash.len > 64 || m->salt.len > 64)
            return rh_diag_fail(diag, RH_EINVAL, "api_key.secret_hash: hash and salt are at most "
                                                 "64 bytes");
        if (m->n_rights > 64)
            return rh_diag_fail(diag, RH_EINVAL, "api_key.rights: at most 64");
        return RH_OK;
    }
    default:
        return RH_EINVAL;
    }
}

/* ---- key text ------------------------------------------------------------------------------ */

int rp_key_text(rp_kind_t kind, const ProtobufCMessage *msg, char *out, size_t cap)
{
    char a[24], b[24];
    int n;
    switch (kind) {
    case RP_KIND_NETWORK: {
        const Roamhub__V1__Network *m = (const void *)msg;
        n = snprintf(out, cap, "%06X", m->net_id);
        break;
    }
    case RP_KIND_TENANT: {
        const Roamhub__V1__Tenant *m = (const void *)msg;
        n = snprintf(out, cap, "%06X/%s", m->net_id, m->tenant_id ? m->tenant_id : "");
        break;
    }
    case RP_KIND_BLOCK: {
        const Roamhub__V1__DevAddrBlock *m = (const void *)msg;
        n = snprintf(out, cap, "%08X/%u", m->prefix, m->length);
        break;
    }
    case RP_KIND_JOIN_ROUTE: {
        const Roamhub__V1__JoinRoute *m = (const void *)msg;
        rp__eui_prefix_format(m->join_eui_prefix, m->join_eui_length, a);
        rp__eui_prefix_format(m->dev_eui_prefix, m->dev_eui_length, b);
        n = snprintf(out, cap, "%s,%s", a, b);
        break;
    }
    case RP_KIND_POLICY: {
        const Roamhub__V1__RoutingPolicy *m = (const void *)msg;
        const char *ft = m->forwarder_tenant_id ? m->forwarder_tenant_id : "";
        if (m->has_home)
            n = snprintf(out, cap, "%06X/%s->%06X/%s", m->forwarder_net_id, ft, m->home_net_id,
                         m->home_tenant_id ? m->home_tenant_id : "");
        else
            n = snprintf(out, cap, "%06X/%s->*", m->forwarder_net_id, ft);
        break;
    }
    case RP_KIND_ENDPOINT:
        n = snprintf(out, cap, "%s", ((const Roamhub__V1__Endpoint *)(const void *)msg)->id);
        break;
    case RP_KIND_MEMBER:
        n = snprintf(out, cap, "%s", ((const Roamhub__V1__Member *)(const void *)msg)->id);
        break;
    case RP_KIND_API_KEY:
        n = snprintf(out, cap, "%s", ((const Roamhub__V1__ApiKey *)(const void *)msg)->id);
        break;
    default:
        n = snprintf(out, cap, "?");
    }
    return (n < 0 || (size_t)n >= cap) ? RH_ERANGE : RH_OK;
}

/* ---- EUI prefixes -------------------------------------------------------------------------- */

int rp__eui_prefix_parse(const char *s, uint64_t *v, unsigned *len, const char *field,
                         rh_diag_t *diag)
{
    const char *slash = s ? strchr(s, '/') : NULL;
    if (!slash)
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected \"<16 hex digits>/<bits>\"", field);
    int rc = rh_hex_parse_be(s, (size_t)(slash - s), 8, v, field, diag);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    long l = strtol(slash + 1, &end, 10);
    if (errno || end == slash + 1 || *end || l < 0 || l > 64)
        return rh_diag_fail(diag, RH_EINVAL, "%s: prefix length must be 0..64", field);
    if (*v & ~rp__mask64((unsigned)l))
        return rh_diag_fail(diag, RH_EINVAL, "%s: bits set beyond /%ld", field, l);
    *len = (unsigned)l;
    return RH_OK;
}

void rp__eui_prefix_format(uint64_t v, unsigned len, char out[24])
{
    rh_hex_format_be(v, 8, out, 0);
    snprintf(out + 16, 8, "/%u", len);
}

/* ---- record values read without unpacking ----------------------------------------------- */

int rp__policy_flags(const uint8_t *p, size_t len, rp_flags_t *f)
{
    memset(f, 0, sizeof *f);
    rp_pbs_t s = {p, p + len};
    uint32_t fld;
    uint64_t vi;
    const uint8_t *b;
    size_t n;
    int st;
    while ((st = rp__pbs_next(&s, &fld, &vi, &b, &n)) > 0) {
        if ((fld != RH_FLD_POLICY_UPLINK && fld != RH_FLD_POLICY_DOWNLINK) || !b)
            continue;
        rp_pbs_t in = {b, b + n};
        uint32_t g;
        const uint8_t *bb;
        size_t nn;
        int st2;
        while ((st2 = rp__pbs_next(&in, &g, &vi, &bb, &nn)) > 0) {
            uint8_t on = vi != 0;
            if (fld == RH_FLD_POLICY_UPLINK) {
                switch (g) {
                case RH_FLD_UP_JOIN_REQUEST: f->up_join_request = on; break;
                case RH_FLD_UP_MAC_DATA: f->up_mac_data = on; break;
                case RH_FLD_UP_APPLICATION_DATA: f->up_application_data = on; break;
                case RH_FLD_UP_SIGNAL_QUALITY: f->up_signal_quality = on; break;
                case RH_FLD_UP_LOCALIZATION: f->up_localization = on; break;
                }
            } else {
                switch (g) {
                case RH_FLD_DOWN_JOIN_ACCEPT: f->down_join_accept = on; break;
                case RH_FLD_DOWN_MAC_DATA: f->down_mac_data = on; break;
                case RH_FLD_DOWN_APPLICATION_DATA: f->down_application_data = on; break;
                }
            }
        }
        if (st2 < 0)
            return -1;
    }
    return st < 0 ? -1 : 0;
}

/* One varint field fv and two length-delimited fields fb1, fb2 of a packed message (the last
 * occurrence wins; absent fields stay 0 / NULL). 0, or -1 if malformed. */
static int scan_1v2b(const uint8_t *p, size_t len, uint32_t fv, uint32_t fb1, uint32_t fb2,
                     uint32_t *v, const uint8_t **b1, size_t *n1, const uint8_t **b2, size_t *n2)
{
    rp_pbs_t s = {p, p + len};
    uint32_t f;
    uint64_t vi;
    const uint8_t *b;
    size_t n;
    int st;
    while ((st = rp__pbs_next(&s, &f, &vi, &b, &n)) > 0) {
        if (f == fv && !b) {
            *v = (uint32_t)vi;
        } else if (f == fb1 && b) {
            *b1 = b;
            *n1 = n;
        } else if (f == fb2 && b) {
            *b2 = b;
            *n2 = n;
        }
    }
    return st < 0 ? -1 : 0;
}

int rp__block_decode(const uint8_t *p, size_t len, rp_block_val_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = scan_1v2b(p, len, RH_FLD_BLOCK_NET_ID, RH_FLD_BLOCK_TENANT_ID,
                       RH_FLD_BLOCK_CLUSTER_ID, &out->net_id, &out->tenant, &out->tenant_len,
                       &out->cluster, &out->cluster_len);
    if (out->tenant_len > RP_TENANT_MAX)
        out->tenant_len = RP_TENANT_MAX;
    if (out->cluster_len > RP_CLUSTER_MAX)
        out->cluster_len = RP_CLUSTER_MAX;
    return rc;
}

void rp__copy_str(char *dst, size_t cap, const uint8_t *s, size_t n)
{
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, s, n);
    dst[n] = 0;
}

int rp__join_decode(const uint8_t *p, size_t len, rp_join_val_t *out)
{
    memset(out, 0, sizeof *out);
    return scan_1v2b(p, len, RH_FLD_JOIN_HOME_NET_ID, RH_FLD_JOIN_HOME_TENANT_ID,
                     RH_FLD_JOIN_SERVER_ID, &out->home_net_id, &out->home_tenant,
                     &out->home_tenant_len, &out->join_server, &out->join_server_len);
}

size_t rp__network_delegated(const uint8_t *p, size_t len, uint32_t *out, size_t cap)
{
    size_t cnt = 0;
    rp_pbs_t s = {p, p + len};
    uint32_t f;
    uint64_t vi;
    const uint8_t *b;
    size_t n;
    while (rp__pbs_next(&s, &f, &vi, &b, &n) > 0) {
        if (f != RH_FLD_NETWORK_DELEGATED_NET_IDS)
            continue;
        if (!b) {
            if (cnt < cap)
                out[cnt++] = (uint32_t)vi;
            continue;
        }
        /* packed: a run of varints */
        const uint8_t *q = b, *end = b + n;
        while (q < end && cnt < cap) {
            uint64_t x = 0;
            unsigned sh = 0;
            while (q < end) {
                uint8_t c = *q++;
                x |= (uint64_t)(c & 0x7f) << sh;
                sh += 7;
                if (!(c & 0x80) || sh >= 64)
                    break;
            }
            out[cnt++] = (uint32_t)x;
        }
    }
    return cnt;
}


/* ---- protobuf scanner ---------------------------------------------------------------------- */

static int varint(rp_pbs_t *s, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (s->p >= s->end)
            return -1;
        uint8_t b = *s->p++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

int rp__pbs_next(rp_pbs_t *s, uint32_t *field, uint64_t *vi, const uint8_t **bytes, size_t *len)
{
    for (;;) {
        if (s->p >= s->end)
            return 0;
        uint64_t tag;
        if (varint(s, &tag))
            return -1;
        unsigned wt = (unsigned)(tag & 7);
        *field = (uint32_t)(tag >> 3);
        *bytes = NULL;
        *len = 0;
        *vi = 0;
        switch (wt) {
        case 0:
            if (varint(s, vi))
                return -1;
            return 1;
        case 2: {
            uint64_t n;
            if (varint(s, &n) || n > (uint64_t)(s->end - s->p))
                return -1;
            *bytes = s->p;
            *len = (size_t)n;
            s->p += n;
            return 1;
        }
        case 1:
            if (s->end - s->p < 8)
                return -1;
            s->p += 8;
            continue;
        case 5:
            if (s->end - s->p < 4)
                return -1;
            s->p += 4;
            continue;
        default:
            return -1;
        }
    }
}
