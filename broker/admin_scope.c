/* admin_scope.c — who may touch which record through the admin API (see admin_scope.h). Pure
 * functions of a principal and records: no storage, no replies. */
#include "admin_scope.h"

#include "lw_netid.h"

#include <stdio.h>
#include <string.h>

int admin_scope_net(const admin_principal_t *p, uint32_t n)
{
    return p->is_operator || p->net_id == n;
}

int admin_record_owner(rp_kind_t kind, const ProtobufCMessage *m, uint32_t *net,
                       const char **tenant)
{
    *tenant = "";
    switch (kind) {
    case RP_KIND_NETWORK:
        *net = ((const Roamhub__V1__Network *)m)->net_id;
        return 1;
    case RP_KIND_TENANT: {
        const Roamhub__V1__Tenant *t = (const void *)m;
        *net = t->net_id;
        *tenant = t->tenant_id;
        return 1;
    }
    case RP_KIND_BLOCK: {
        const Roamhub__V1__DevAddrBlock *b = (const void *)m;
        *net = b->net_id;
        *tenant = b->tenant_id;
        return 1;
    }
    case RP_KIND_JOIN_ROUTE: {
        const Roamhub__V1__JoinRoute *j = (const void *)m;
        if (j->join_server_id && j->join_server_id[0])
            return 0;
        *net = j->home_net_id;
        *tenant = j->home_tenant_id;
        return 1;
    }
    case RP_KIND_POLICY: {
        const Roamhub__V1__RoutingPolicy *p = (const void *)m;
        *net = p->forwarder_net_id;
        *tenant = p->forwarder_tenant_id;
        return 1;
    }
    case RP_KIND_ENDPOINT: {
        const Roamhub__V1__Endpoint *e = (const void *)m;
        if (e->net_id == 0)
            return 0;
        *net = e->net_id;
        *tenant = e->tenant_id;
        return 1;
    }
    case RP_KIND_API_KEY: {
        const Roamhub__V1__ApiKey *k = (const void *)m;
        if (k->operator_)
            return 0;
        *net = k->net_id;
        *tenant = k->tenant_id;
        return 1;
    }
    default:
        return 0;
    }
}

int admin_may_touch(const admin_principal_t *p, rp_kind_t kind, const ProtobufCMessage *m,
                    int write)
{
    if (p->is_operator)
        return 1;
    uint32_t net;
    const char *tenant;
    if (!admin_record_owner(kind, m, &net, &tenant) || net != p->net_id)
        return 0;
    if (!p->tenant_id[0])
        return 1;
    if (!strcmp(tenant ? tenant : "", p->tenant_id))
        return 1;
    /* a tenant key may read its NetID's network record */
    return !write && kind == RP_KIND_NETWORK;
}

int admin_member_write_check(const admin_principal_t *p, rp_kind_t kind, const ProtobufCMessage *m,
                             const ProtobufCMessage *old, char *why, size_t cap)
{
    if (p->is_operator)
        return 0;
    switch (kind) {
    case RP_KIND_NETWORK: {
        const Roamhub__V1__Network *n = (const void *)m, *o = (const void *)old;
        if (!o) {
            snprintf(why, cap, "networks are created by the operator");
            return 403;
        }
        int same = n->n_delegated_net_ids == o->n_delegated_net_ids;
        for (size_t i = 0; same && i < n->n_delegated_net_ids; i++)
            same = n->delegated_net_ids[i] == o->delegated_net_ids[i];
        if (!same) {
            snprintf(why, cap, "network.delegated_net_ids: set by the operator");
            return 403;
        }
        return 0;
    }
    case RP_KIND_BLOCK:
        if (((const Roamhub__V1__DevAddrBlock *)m)->outside_net_id) {
            snprintf(why, cap,
                     "devaddr_block.outside_net_id: only the operator may "
                     "place a block outside its NetID");
            return 403;
        }
        return 0;
    case RP_KIND_ENDPOINT: {
        const Roamhub__V1__Endpoint *e = (const void *)m;
        if ((e->ca_file && e->ca_file[0]) || (e->client_cert_file && e->client_cert_file[0]) ||
            (e->client_key_file && e->client_key_file[0])) {
            /* paths on the hub's disk: only the operator decides which files the hub reads */
            const Roamhub__V1__Endpoint *o = (const void *)old;
            if (!o || strcmp(o->ca_file, e->ca_file) ||
                strcmp(o->client_cert_file, e->client_cert_file) ||
                strcmp(o->client_key_file, e->client_key_file)) {
                snprintf(why, cap,
                         "endpoint.ca_file/client_cert_file/client_key_file: "
                         "TLS file paths are set by the operator");
                return 403;
            }
        }
        return 0;
    }
    case RP_KIND_JOIN_ROUTE: {
        const Roamhub__V1__JoinRoute *j = (const void *)m;
        if (j->join_eui_length < 24) {
            snprintf(why, cap,
                     "join_route.join_eui: members route JoinEUI prefixes of "
                     "at least 24 bits");
            return 403;
        }
        return 0;
    }
    default:
        return 0;
    }
}

void admin_scope_conflict_text(const admin_principal_t *p, char *text, size_t cap)
{
    if (p->is_operator)
        return;
    char own[7];
    lw_netid_format(p->net_id, own, 0);
    const char *by = strstr(text, "owned by ");
    if (by && strncmp(by + 9, own, 6) == 0)
        return;
    if (by || strstr(text, "overlap"))
        snprintf(text, cap, "conflicts with an existing record that is not yours");
}
