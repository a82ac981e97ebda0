/* admin_resources.c — the admin API's records: networks, tenants, endpoints, DevAddr blocks, join
 * routes, routing policies, members, API keys (list/get/create/replace/delete), plus the catalog,
 * effective policies, the route table view, the audit log and bulk import.
 *
 * Authorization (docs/openapi.yaml "Roles"): every request needs the resource's read or write
 * right. An operator key reaches every record. A member key reaches only records it owns: the
 * owner of a record is its NetID (+ tenant) field (network/tenant/block/endpoint net_id, join
 * route home, policy forwarder, API key scope); records without a member owner (members, Join
 * Server endpoints and routes, operator keys) are operator-only. Records a member does not own
 * are reported exactly like records that do not exist (404), and listings skip them, so other
 * members' IDs never appear in a member's responses. Secrets never leave: endpoint
 * Authorization values and API key hashes are removed from every response.
 */
#include "admin_internal.h"

#include "lw_netid.h"
#include "peer_endpoint.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"
#include "rp_json.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    R_READ_NETWORK = ROAMHUB__V1__RIGHT__RIGHT_READ_NETWORK,
    R_READ_ROUTES = ROAMHUB__V1__RIGHT__RIGHT_READ_ROUTES,
    R_READ_POLICY = ROAMHUB__V1__RIGHT__RIGHT_READ_ROUTING_POLICY,
    R_WRITE_POLICY = ROAMHUB__V1__RIGHT__RIGHT_WRITE_ROUTING_POLICY,
    R_READ_BLOCKS = ROAMHUB__V1__RIGHT__RIGHT_READ_DEVADDR_BLOCKS,
    R_WRITE_BLOCKS = ROAMHUB__V1__RIGHT__RIGHT_WRITE_DEVADDR_BLOCKS,
    R_READ_TRAFFIC = ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC,
    R_ADMIN = ROAMHUB__V1__RIGHT__RIGHT_ADMIN,
    R_WRITE_NETWORK = ROAMHUB__V1__RIGHT__RIGHT_WRITE_NETWORK,
};

typedef struct res {
    const char *name;     /* path segment */
    rp_kind_t kind;
    int read_right, write_right;
    int operator_only;
} res_t;

static const res_t resources[] = {
    {"networks", RP_KIND_NETWORK, R_READ_NETWORK, R_WRITE_NETWORK, 0},
    {"tenants", RP_KIND_TENANT, R_READ_NETWORK, R_WRITE_NETWORK, 0},
    {"devaddr-blocks", RP_KIND_BLOCK, R_READ_BLOCKS, R_WRITE_BLOCKS, 0},
    {"join-routes", RP_KIND_JOIN_ROUTE, R_READ_ROUTES, R_WRITE_NETWORK, 0},
    {"policies", RP_KIND_POLICY, R_READ_POLICY, R_WRITE_POLICY, 0},
    {"endpoints", RP_KIND_ENDPOINT, R_READ_NETWORK, R_WRITE_NETWORK, 0},
    {"members", RP_KIND_MEMBER, R_READ_NETWORK, R_WRITE_NETWORK, 1},
    {"keys", RP_KIND_API_KEY, R_ADMIN, R_ADMIN, 0},
};

static const char *netid_text(uint32_t n, char out[7])
{
    lw_netid_format(n, out, 0);
    return out;
}

/* ------------------------------------------------------------------ ownership */

/* Owner (NetID, tenant) of a record; 0 when only the operator may touch it. */
static int owner_of(rp_kind_t kind, const ProtobufCMessage *m, uint32_t *net, const char **tenant)
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

/* Whether principal p may see (write = 0) or change (write = 1) record m. */
static int may_touch(const admin_principal_t *p, rp_kind_t kind, const ProtobufCMessage *m,
                     int write)
{
    if (p->is_operator)
        return 1;
    uint32_t net;
    const char *tenant;
    if (!owner_of(kind, m, &net, &tenant) || net != p->net_id)
        return 0;
    if (!p->tenant_id[0])
        return 1;
    if (!strcmp(tenant ? tenant : "", p->tenant_id))
        return 1;
    /* a tenant key may read its NetID's network record */
    return !write && kind == RP_KIND_NETWORK;
}

/* ------------------------------------------------------------------ JSON views */

static cJSON *record_json(rp_kind_t kind, const ProtobufCMessage *m)
{
    cJSON *o = rp_json_from_record(kind, m);
    if (!o)
        return NULL;
    if (kind == RP_KIND_ENDPOINT) {
        const Roamhub__V1__Endpoint *e = (const void *)m;
        cJSON_DeleteItemFromObjectCaseSensitive(o, "authorization");
        cJSON_AddBoolToObject(o, "authorization_set", e->authorization && e->authorization[0]);
    } else if (kind == RP_KIND_API_KEY) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "secret_hash");
        cJSON_DeleteItemFromObjectCaseSensitive(o, "salt");
    }
    return o;
}

static void free_msg(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* Key object of a record from path segments (after the resource name) and query. NULL with a
 * reply sent when the path is not a key of this kind. */
static cJSON *key_json(admin_req_t *r, const res_t *res, char **s, int n)
{
    cJSON *o = cJSON_CreateObject();
    char buf[160];
    switch (res->kind) {
    case RP_KIND_NETWORK:
        if (n != 1)
            goto bad;
        cJSON_AddStringToObject(o, "net_id", s[0]);
        break;
    case RP_KIND_TENANT:
        if (n != 2)
            goto bad;
        cJSON_AddStringToObject(o, "net_id", s[0]);
        cJSON_AddStringToObject(o, "tenant_id", s[1]);
        break;
    case RP_KIND_BLOCK:
        if (n != 2)
            goto bad;
        snprintf(buf, sizeof buf, "%s/%s", s[0], s[1]);
        cJSON_AddStringToObject(o, "prefix", buf);
        break;
    case RP_KIND_JOIN_ROUTE:
        if (n != 2 && n != 4)
            goto bad;
        snprintf(buf, sizeof buf, "%s/%s", s[0], s[1]);
        cJSON_AddStringToObject(o, "join_eui", buf);
        if (n == 4) {
            snprintf(buf, sizeof buf, "%s/%s", s[2], s[3]);
            cJSON_AddStringToObject(o, "dev_eui", buf);
        }
        break;
    case RP_KIND_POLICY: {
        if (n != 1 && n != 2)
            goto bad;
        cJSON_AddStringToObject(o, "forwarder_net_id", s[0]);
        if (n == 2 && strcmp(s[1], "default") != 0)
            cJSON_AddStringToObject(o, "home_net_id", s[1]);
        char t[64];
        if (admin_query(r, "forwarder_tenant_id", t, sizeof t) == 1)
            cJSON_AddStringToObject(o, "forwarder_tenant_id", t);
        if (admin_query(r, "home_tenant_id", t, sizeof t) == 1)
            cJSON_AddStringToObject(o, "home_tenant_id", t);
        break;
    }
    default:
        if (n != 1)
            goto bad;
        cJSON_AddStringToObject(o, "id", s[0]);
        break;
    }
    return o;
bad:
    cJSON_Delete(o);
    admin_reply_error(r, 404, "no such %s path (see docs/openapi.yaml)", res->name);
    return NULL;
}

static ProtobufCMessage *key_msg(admin_req_t *r, const res_t *res, char **s, int n)
{
    cJSON *k = key_json(r, res, s, n);
    if (!k)
        return NULL;
    ProtobufCMessage *m = NULL;
    rh_diag_t d = {{0}};
    int rc = rp_json_to_record(res->kind, k, "path", &m, &d);
    cJSON_Delete(k);
    if (rc) {
        admin_reply_error(r, rc == RH_EINVAL ? 404 : 503, "%s", d.text);
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------------ writes: shared checks */

static int reload_registry(admin_req_t *r, rh_diag_t *d)
{
    return hub_reload_registry(r->a->hub, d);
}

/* Member-specific write rules for a new/changed record; replies and returns -1 when refused. */
static int member_write_rules(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *m,
                              const ProtobufCMessage *old)
{
    if (r->p.is_operator)
        return 0;
    switch (kind) {
    case RP_KIND_NETWORK: {
        const Roamhub__V1__Network *n = (const void *)m, *o = (const void *)old;
        if (!o) {
            admin_reply_error(r, 403, "networks are created by the operator");
            return -1;
        }
        int same = n->n_delegated_net_ids == o->n_delegated_net_ids;
        for (size_t i = 0; same && i < n->n_delegated_net_ids; i++)
            same = n->delegated_net_ids[i] == o->delegated_net_ids[i];
        if (!same) {
            admin_reply_error(r, 403, "network.delegated_net_ids: set by the operator");
            return -1;
        }
        return 0;
    }
    case RP_KIND_BLOCK:
        if (((const Roamhub__V1__DevAddrBlock *)m)->outside_net_id) {
            admin_reply_error(r, 403, "devaddr_block.outside_net_id: only the operator may "
                              "place a block outside its NetID");
            return -1;
        }
        return 0;
    case RP_KIND_ENDPOINT: {
        const Roamhub__V1__Endpoint *e = (const void *)m;
        if ((e->ca_file && e->ca_file[0]) || (e->client_cert_file && e->client_cert_file[0]) ||
            (e->client_key_file && e->client_key_file[0])) {
            /* paths on the hub's disk: only the operator decides which files the hub reads */
            const Roamhub__V1__Endpoint *o = (const void *)old;
            if (!o || strcmp(o->ca_file, e->ca_file) || strcmp(o->client_cert_file,
                                                                e->client_cert_file) ||
                strcmp(o->client_key_file, e->client_key_file)) {
                admin_reply_error(r, 403, "endpoint.ca_file/client_cert_file/client_key_file: "
                                  "TLS file paths are set by the operator");
                return -1;
            }
        }
        return 0;
    }
    case RP_KIND_JOIN_ROUTE: {
        const Roamhub__V1__JoinRoute *j = (const void *)m;
        if (j->join_eui_length < 24) {
            admin_reply_error(r, 403, "join_route.join_eui: members route JoinEUI prefixes of "
                              "at least 24 bits");
            return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

/* Join routes of a member must not overlap another home network's JoinEUI prefixes. */
typedef struct jr_scan {
    const Roamhub__V1__JoinRoute *mine;
    int conflict;
} jr_scan_t;

static int jr_scan_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *msg)
{
    jr_scan_t *s = ud;
    (void)kind;
    const Roamhub__V1__JoinRoute *j = (const void *)msg, *m = s->mine;
    unsigned l = j->join_eui_length < m->join_eui_length ? j->join_eui_length
                                                         : m->join_eui_length;
    uint64_t mask = l == 0 ? 0 : ~0ull << (64 - l);
    if ((j->join_eui_prefix & mask) != (m->join_eui_prefix & mask))
        return 0;
    if (j->home_net_id != m->home_net_id || (j->join_server_id && j->join_server_id[0]))
        s->conflict = 1;
    return s->conflict;
}

/* Stores (create or upsert), then reloads the registry for members/endpoints, undoing the write
 * if the registry refuses it. Returns an HTTP status (reply not sent) and fills d. */
static int store(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *m,
                 const ProtobufCMessage *old, rp_put_mode_t mode, rh_diag_t *d)
{
    int rc = rp_put(r->a->hub->db, r->p.key_id, kind, m, mode, d);
    if (rc)
        return rc == RH_EINVAL ? 422 : admin_status_of(rc);
    if (kind == RP_KIND_ENDPOINT || kind == RP_KIND_MEMBER) {
        rh_diag_t rd = {{0}};
        if (reload_registry(r, &rd) != RH_OK) {
            rh_diag_t ud;
            if (old)
                rp_put(r->a->hub->db, r->p.key_id, kind, old, RP_PUT_UPSERT, &ud);
            else
                rp_delete(r->a->hub->db, r->p.key_id, kind, m, NULL, &ud);
            rh_diag_fail(d, RH_EINVAL, "%s", rd.text);
            return 422;
        }
    }
    return 0;
}

/* A member must not learn about other members' blocks from an overlap message. */
static void sanitize_conflict(admin_req_t *r, rh_diag_t *d)
{
    if (r->p.is_operator)
        return;
    char own[7];
    netid_text(r->p.net_id, own);
    const char *by = strstr(d->text, "owned by ");
    if (by && strncmp(by + 9, own, 6) == 0)
        return;
    if (by || strstr(d->text, "overlap"))
        snprintf(d->text, sizeof d->text, "conflicts with an existing record that is not yours");
}

/* ------------------------------------------------------------------ list / get */

typedef struct list_ctx {
    admin_req_t *r;
    const res_t *res;
    cJSON *items;
    size_t n, limit;
    uint32_t net_filter; /* RP_ANY = all */
} list_ctx_t;

static int list_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *m)
{
    list_ctx_t *c = ud;
    if (!may_touch(&c->r->p, kind, m, 0))
        return 0;
    if (c->net_filter != RP_ANY) {
        uint32_t net;
        const char *t;
        if (!owner_of(kind, m, &net, &t) || net != c->net_filter)
            return 0;
    }
    cJSON_AddItemToArray(c->items, record_json(kind, m));
    return ++c->n >= c->limit;
}

static void do_list(admin_req_t *r, const res_t *res)
{
    char buf[RP_PAGE_TOKEN_MAX], tok[RP_PAGE_TOKEN_MAX] = "", next[RP_PAGE_TOKEN_MAX] = "";
    list_ctx_t c = {r, res, NULL, 0, 100, RP_ANY};
    if (admin_query(r, "page_size", buf, sizeof buf) == 1) {
        char *end;
        long v = strtol(buf, &end, 10);
        if (*end || v < 1 || v > 1000) {
            admin_reply_error(r, 400, "page_size: expected 1..1000");
            return;
        }
        c.limit = (size_t)v;
    }
    if (admin_query(r, "page_token", tok, sizeof tok) < 0) {
        admin_reply_error(r, 400, "page_token: malformed");
        return;
    }
    if (admin_query(r, "net_id", buf, sizeof buf) == 1) {
        rh_diag_t d;
        uint32_t n;
        if (lw_netid_parse(buf, &n, &d) != RH_OK) {
            admin_reply_error(r, 400, "net_id: %s", d.text);
            return;
        }
        c.net_filter = n;
    }
    cJSON *o = cJSON_CreateObject();
    c.items = cJSON_AddArrayToObject(o, "items");
    rh_diag_t d = {{0}};
    int rc = rp_list(r->a->hub->db, res->kind, tok, 0, list_cb, &c, next, sizeof next, &d);
    if (rc) {
        cJSON_Delete(o);
        admin_reply_error(r, rc == RH_EINVAL ? 400 : 503, "%s", d.text);
        return;
    }
    cJSON_AddStringToObject(o, "next_page_token", c.n >= c.limit ? next : "");
    admin_reply_json(r, 200, o);
}

/* Loads the record at the path; NULL with 404 sent when missing or not visible. */
static ProtobufCMessage *load_visible(admin_req_t *r, const res_t *res, ProtobufCMessage *key,
                                      int write)
{
    ProtobufCMessage *m = NULL;
    rh_diag_t d = {{0}};
    int rc = rp_get(r->a->hub->db, res->kind, key, &m, &d);
    if (rc) {
        admin_reply_error(r, admin_status_of(rc), "%s", d.text);
        return NULL;
    }
    if (m && !may_touch(&r->p, res->kind, m, write)) {
        free_msg(m);
        m = NULL;
    }
    if (!m) {
        /* members: no echo of the key, so a response never names another member's object */
        char kt[200] = "";
        if (r->p.is_operator)
            rp_key_text(res->kind, key, kt, sizeof kt);
        admin_reply_error(r, 404, "%s%s%s: not found", rp_kind_name(res->kind), kt[0] ? " " : "",
                          kt);
    }
    return m;
}

/* ------------------------------------------------------------------ API keys */

static int parse_rights(const cJSON *arr, Roamhub__V1__Right *out, size_t *n, char *err,
                        size_t errcap)
{
    *n = 0;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0 || cJSON_GetArraySize(arr) > 16) {
        snprintf(err, errcap, "rights: expected a non-empty array of RIGHT_* names");
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const ProtobufCEnumValue *v =
            cJSON_IsString(it)
                ? protobuf_c_enum_descriptor_get_value_by_name(&roamhub__v1__right__descriptor,
                                                              it->valuestring)
                : NULL;
        if (!v || v->value == 0) {
            snprintf(err, errcap, "rights[%zu]: unknown right (RIGHT_READ_NETWORK, ...)", *n);
            return -1;
        }
        out[(*n)++] = (Roamhub__V1__Right)v->value;
    }
    return 0;
}

static void key_create(admin_req_t *r)
{
    cJSON *b = admin_body_json(r);
    if (!b)
        return;
    Roamhub__V1__ApiKey k = ROAMHUB__V1__API_KEY__INIT;
    Roamhub__V1__Right rights[16];
    char id[RP_ID_MAX + 1], err[160];
    const cJSON *v;
    int status = 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(b, "id")) && cJSON_IsString(v)) {
        snprintf(id, sizeof id, "%s", v->valuestring);
    } else {
        uint8_t rnd[6];
        RAND_bytes(rnd, sizeof rnd);
        snprintf(id, sizeof id, "k-%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3],
                 rnd[4], rnd[5]);
    }
    k.id = id;
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(b, "operator");
    k.operator_ = cJSON_IsTrue(op);
    const cJSON *net = cJSON_GetObjectItemCaseSensitive(b, "net_id");
    const cJSON *ten = cJSON_GetObjectItemCaseSensitive(b, "tenant_id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(b, "name");
    k.name = cJSON_IsString(name) ? name->valuestring : "";
    k.tenant_id = cJSON_IsString(ten) ? ten->valuestring : "";
    const cJSON *it;
    cJSON_ArrayForEach(it, b)
    {
        if (strcmp(it->string, "id") && strcmp(it->string, "operator") &&
            strcmp(it->string, "net_id") && strcmp(it->string, "tenant_id") &&
            strcmp(it->string, "name") && strcmp(it->string, "rights")) {
            snprintf(err, sizeof err, "body.%s: unknown field", it->string);
            status = 400;
            break;
        }
    }
    if (!status && parse_rights(cJSON_GetObjectItemCaseSensitive(b, "rights"), rights,
                                &k.n_rights, err, sizeof err))
        status = 400;
    k.rights = rights;
    if (!status && !k.operator_) {
        rh_diag_t d;
        if (!cJSON_IsString(net) || lw_netid_parse(net->valuestring, &k.net_id, &d) != RH_OK) {
            snprintf(err, sizeof err, "net_id: a member key needs its NetID (6 hex digits)");
            status = 400;
        }
    }
    if (!status && !r->p.is_operator) {
        uint32_t want = 0;
        for (size_t i = 0; i < k.n_rights; i++)
            want |= ADMIN_RIGHT(k.rights[i]);
        uint32_t have = (r->p.rights & ADMIN_RIGHT(R_ADMIN)) ? ADMIN_RIGHTS_ALL : r->p.rights;
        if (k.operator_) {
            snprintf(err, sizeof err, "operator: only the operator creates operator keys");
            status = 403;
        } else if (k.net_id != r->p.net_id ||
                   (r->p.tenant_id[0] && strcmp(k.tenant_id, r->p.tenant_id))) {
            snprintf(err, sizeof err, "net_id/tenant_id: a member creates keys for its own "
                     "scope only");
            status = 403;
        } else if (want & ~have) {
            snprintf(err, sizeof err, "rights: more than your own key has");
            status = 403;
        }
    }
    if (status) {
        cJSON_Delete(b);
        admin_reply_error(r, status, "%s", err);
        return;
    }
    admin_key_material_t mat;
    char secret[ADMIN_SECRET_LEN + 1];
    k.created_at = rh_real_ms();
    rh_diag_t d = {{0}};
    int rc = admin_key_generate(&k, &mat, secret);
    if (rc == RH_OK)
        rc = rp_put(r->a->hub->db, r->p.key_id, RP_KIND_API_KEY, &k.base, RP_PUT_CREATE, &d);
    cJSON_Delete(b); /* k's strings pointed into b: not used after this */
    if (rc) {
        OPENSSL_cleanse(secret, sizeof secret);
        admin_reply_error(r, rc == RH_EEXIST ? 409 : rc == RH_EINVAL ? 422 : admin_status_of(rc),
                          "%s", rc == RH_EEXIST ? "api_key: that id is already taken" : d.text);
        return;
    }
    RH_LOG(RH_LOG_INFO, "admin", "api key created key=%s by=%s", id, r->p.key_id);
    ProtobufCMessage *stored = NULL;
    Roamhub__V1__ApiKey kk = ROAMHUB__V1__API_KEY__INIT;
    kk.id = id;
    rp_get(r->a->hub->db, RP_KIND_API_KEY, &kk.base, &stored, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "key", stored ? record_json(RP_KIND_API_KEY, stored)
                                           : cJSON_CreateObject());
    free_msg(stored);
    cJSON_AddStringToObject(o, "secret", secret);
    char full[RP_ID_MAX + ADMIN_SECRET_LEN + 2];
    snprintf(full, sizeof full, "%s:%s", id, secret);
    cJSON_AddStringToObject(o, "api_key", full);
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(full, sizeof full);
    admin_reply_json(r, 201, o);
}

static void key_revoke(admin_req_t *r, const res_t *res, ProtobufCMessage *key)
{
    ProtobufCMessage *m = load_visible(r, res, key, 1);
    if (!m)
        return;
    Roamhub__V1__ApiKey *k = (Roamhub__V1__ApiKey *)m;
    int rc = RH_OK;
    rh_diag_t d = {{0}};
    if (k->revoked_at == 0) {
        k->revoked_at = rh_real_ms();
        rc = rp_put(r->a->hub->db, r->p.key_id, RP_KIND_API_KEY, m, RP_PUT_UPDATE, &d);
    }
    if (rc) {
        free_msg(m);
        admin_reply_error(r, admin_status_of(rc), "%s", d.text);
        return;
    }
    RH_LOG(RH_LOG_INFO, "admin", "api key revoked key=%s by=%s", k->id, r->p.key_id);
    cJSON *o = record_json(RP_KIND_API_KEY, m);
    free_msg(m);
    admin_reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ create / replace / delete */

/* Body -> record, with the key fields from the path filled in when absent and checked to be the
 * path's key when present. */
static ProtobufCMessage *body_record(admin_req_t *r, const res_t *res, cJSON *b, cJSON *keyobj)
{
    cJSON_DeleteItemFromObjectCaseSensitive(b, "authorization_set");
    if (keyobj) {
        const cJSON *it;
        cJSON_ArrayForEach(it, keyobj)
        {
            if (!cJSON_GetObjectItemCaseSensitive(b, it->string))
                cJSON_AddItemToObject(b, it->string, cJSON_Duplicate(it, 1));
        }
    }
    ProtobufCMessage *m = NULL;
    rh_diag_t d = {{0}};
    int rc = rp_json_to_record(res->kind, b, "body", &m, &d);
    if (rc) {
        admin_reply_error(r, rc == RH_EINVAL ? 400 : 503, "%s", d.text);
        return NULL;
    }
    return m;
}

static int validate_endpoint(admin_req_t *r, const ProtobufCMessage *m)
{
    peer_endpoint_t *ep = NULL;
    rh_diag_t d = {{0}};
    int rc = peer_endpoint_new((const Roamhub__V1__Endpoint *)m, PEER_ENDPOINT_NO_RESOLVE, &ep, &d);
    peer_endpoint_free(ep);
    if (rc) {
        admin_reply_error(r, rc == RH_ENOMEM ? 503 : 422, "%s", d.text);
        return -1;
    }
    return 0;
}

static void do_write(admin_req_t *r, const res_t *res, char **s, int n, int create)
{
    if (res->kind == RP_KIND_API_KEY) {
        if (create)
            key_create(r);
        else
            admin_reply_error(r, 405, "keys: create with POST /keys, revoke with DELETE");
        return;
    }
    cJSON *keyobj = NULL;
    ProtobufCMessage *pathkey = NULL;
    if (!create) {
        keyobj = key_json(r, res, s, n);
        if (!keyobj)
            return;
        pathkey = key_msg(r, res, s, n);
        if (!pathkey) {
            cJSON_Delete(keyobj);
            return;
        }
    }
    cJSON *b = admin_body_json(r);
    if (!b) {
        cJSON_Delete(keyobj);
        free_msg(pathkey);
        return;
    }
    ProtobufCMessage *m = body_record(r, res, b, keyobj);
    cJSON_Delete(b);
    cJSON_Delete(keyobj);
    ProtobufCMessage *old = NULL;
    int status = 0;
    rh_diag_t d = {{0}};
    char kt[200], pt[200];
    if (!m)
        goto out;
    rp_key_text(res->kind, m, kt, sizeof kt);
    if (pathkey) {
        rp_key_text(res->kind, pathkey, pt, sizeof pt);
        if (strcmp(kt, pt)) {
            admin_reply_error(r, 400, "body: its key %s is not the path's %s", kt, pt);
            goto out;
        }
    }
    if (rp_get(r->a->hub->db, res->kind, m, &old, &d) != RH_OK) {
        admin_reply_error(r, 503, "%s", d.text);
        goto out;
    }
    if (old && !may_touch(&r->p, res->kind, old, 1)) {
        /* another member's record: do not reveal it (PUT: as if missing; POST: taken) */
        if (create)
            admin_reply_error(r, 409, "%s: that key is not available", rp_kind_name(res->kind));
        else
            admin_reply_error(r, 404, "%s: not found", rp_kind_name(res->kind));
        goto out;
    }
    if (!may_touch(&r->p, res->kind, m, 1)) {
        char own[7];
        admin_reply_error(r, 403, "%s: a member may only write records of its own NetID %s%s%s",
                          rp_kind_name(res->kind), netid_text(r->p.net_id, own),
                          r->p.tenant_id[0] ? " tenant " : "", r->p.tenant_id);
        goto out;
    }
    if (member_write_rules(r, res->kind, m, old))
        goto out;
    if (res->kind == RP_KIND_ENDPOINT) {
        Roamhub__V1__Endpoint *e = (Roamhub__V1__Endpoint *)m;
        const Roamhub__V1__Endpoint *oe = (const void *)old;
        /* authorization omitted = unchanged (responses never carry it) */
        if (oe && (!e->authorization || !e->authorization[0]) && oe->authorization &&
            oe->authorization[0]) {
            free(e->authorization == protobuf_c_empty_string ? NULL : e->authorization);
            e->authorization = strdup(oe->authorization);
        }
        if (validate_endpoint(r, m))
            goto out;
    }
    if (res->kind == RP_KIND_POLICY)
        ((Roamhub__V1__RoutingPolicy *)m)->updated_at = rh_real_ms();
    if (res->kind == RP_KIND_JOIN_ROUTE && !r->p.is_operator) {
        jr_scan_t js = {(const Roamhub__V1__JoinRoute *)m, 0};
        char next[RP_PAGE_TOKEN_MAX];
        rp_list(r->a->hub->db, RP_KIND_JOIN_ROUTE, NULL, 0, jr_scan_cb, &js, next, sizeof next,
                NULL);
        if (js.conflict) {
            admin_reply_error(r, 409, "join_route %s: overlaps a JoinEUI prefix routed to "
                              "another network", kt);
            goto out;
        }
    }
    status = store(r, res->kind, m, old, create ? RP_PUT_CREATE : RP_PUT_UPSERT, &d);
    if (status) {
        if (status == 409)
            sanitize_conflict(r, &d);
        admin_reply_error(r, status, "%s", d.text);
        goto out;
    }
    RH_LOG(RH_LOG_INFO, "admin", "%s %s key=\"%s\" by=%s", old ? "updated" : "created",
           rp_kind_name(res->kind), kt, r->p.key_id);
    ProtobufCMessage *now = NULL;
    rp_get(r->a->hub->db, res->kind, m, &now, NULL);
    admin_reply_json(r, old ? 200 : 201, record_json(res->kind, now ? now : m));
    free_msg(now);
out:
    free_msg(m);
    free_msg(old);
    free_msg(pathkey);
}

static void do_delete(admin_req_t *r, const res_t *res, ProtobufCMessage *key)
{
    if (res->kind == RP_KIND_API_KEY) {
        key_revoke(r, res, key);
        return;
    }
    ProtobufCMessage *m = load_visible(r, res, key, 1);
    if (!m)
        return;
    if (!r->p.is_operator && res->kind == RP_KIND_NETWORK) {
        free_msg(m);
        admin_reply_error(r, 403, "networks are deleted by the operator");
        return;
    }
    rh_diag_t d = {{0}};
    int rc = rp_delete(r->a->hub->db, r->p.key_id, res->kind, m, NULL, &d);
    if (rc == RH_OK && (res->kind == RP_KIND_ENDPOINT || res->kind == RP_KIND_MEMBER)) {
        rh_diag_t rd = {{0}};
        if (reload_registry(r, &rd) != RH_OK) {
            rp_put(r->a->hub->db, r->p.key_id, res->kind, m, RP_PUT_UPSERT, NULL);
            free_msg(m);
            admin_reply_error(r, 422, "%s", rd.text);
            return;
        }
    }
    char kt[200] = "?";
    rp_key_text(res->kind, m, kt, sizeof kt);
    free_msg(m);
    if (rc) {
        admin_reply_error(r, admin_status_of(rc), "%s", d.text);
        return;
    }
    RH_LOG(RH_LOG_INFO, "admin", "deleted %s key=\"%s\" by=%s", rp_kind_name(res->kind), kt,
           r->p.key_id);
    admin_reply_json(r, 204, NULL);
}

static void handle_resource(admin_req_t *r, const res_t *res)
{
    int get = !strcmp(r->method, "GET");
    int right = get ? res->read_right : res->write_right;
    if (!admin_has_right(&r->p, right)) {
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&roamhub__v1__right__descriptor, right);
        admin_reply_error(r, 403, "%s: your key lacks %s", res->name, v ? v->name : "a right");
        return;
    }
    if (res->operator_only && !r->p.is_operator) {
        admin_reply_error(r, 403, "%s: operator only", res->name);
        return;
    }
    char **s = r->seg + 1;
    int n = r->nseg - 1;
    if (n == 0) {
        if (get)
            do_list(r, res);
        else if (!strcmp(r->method, "POST"))
            do_write(r, res, s, n, 1);
        else
            admin_reply_error(r, 405, "%s: GET lists, POST creates", res->name);
        return;
    }
    if (!strcmp(r->method, "PUT")) {
        do_write(r, res, s, n, 0);
        return;
    }
    if (!get && strcmp(r->method, "DELETE")) {
        admin_reply_error(r, 405, "%s/...: GET, PUT or DELETE", res->name);
        return;
    }
    ProtobufCMessage *key = key_msg(r, res, s, n);
    if (!key)
        return;
    if (get) {
        ProtobufCMessage *m = load_visible(r, res, key, 0);
        if (m)
            admin_reply_json(r, 200, record_json(res->kind, m));
        free_msg(m);
    } else {
        do_delete(r, res, key);
    }
    free_msg(key);
}

/* ------------------------------------------------------------------ catalog */

typedef struct cat_ctx {
    cJSON *items;
} cat_ctx_t;

static int catalog_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *m)
{
    cat_ctx_t *c = ud;
    int listed = kind == RP_KIND_NETWORK ? ((const Roamhub__V1__Network *)m)->listed
                                         : ((const Roamhub__V1__Tenant *)m)->listed;
    if (!listed)
        return 0;
    cJSON *o = rp_json_from_record(kind, m);
    if (kind == RP_KIND_NETWORK)
        cJSON_DeleteItemFromObjectCaseSensitive(o, "delegated_net_ids");
    cJSON_DeleteItemFromObjectCaseSensitive(o, "listed");
    cJSON_AddItemToArray(c->items, o);
    return 0;
}

static void catalog(admin_req_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cat_ctx_t c = {cJSON_AddArrayToObject(o, "networks")};
    char next[RP_PAGE_TOKEN_MAX];
    rp_list(r->a->hub->db, RP_KIND_NETWORK, NULL, 0, catalog_cb, &c, next, sizeof next, NULL);
    c.items = cJSON_AddArrayToObject(o, "tenants");
    rp_list(r->a->hub->db, RP_KIND_TENANT, NULL, 0, catalog_cb, &c, next, sizeof next, NULL);
    admin_reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ effective policies */

static cJSON *flags_json(const rp_flags_t *f)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *u = cJSON_AddObjectToObject(o, "uplink");
    cJSON_AddBoolToObject(u, "join_request", f->up_join_request);
    cJSON_AddBoolToObject(u, "mac_data", f->up_mac_data);
    cJSON_AddBoolToObject(u, "application_data", f->up_application_data);
    cJSON_AddBoolToObject(u, "signal_quality", f->up_signal_quality);
    cJSON_AddBoolToObject(u, "localization", f->up_localization);
    cJSON *dn = cJSON_AddObjectToObject(o, "downlink");
    cJSON_AddBoolToObject(dn, "join_accept", f->down_join_accept);
    cJSON_AddBoolToObject(dn, "mac_data", f->down_mac_data);
    cJSON_AddBoolToObject(dn, "application_data", f->down_application_data);
    return o;
}

static int effective_one(admin_req_t *r, const rp_party_t *fwd, const rp_party_t *home,
                         cJSON **out)
{
    rp_policy_eff_t eff;
    int rc = rp_reader_begin(r->a->reader);
    if (rc == RH_OK) {
        rc = rp_policy_effective(r->a->reader, fwd, home, &eff);
        rp_reader_end(r->a->reader);
    }
    if (rc)
        return rc;
    char a[7], b[7];
    cJSON *o = flags_json(&eff.flags);
    cJSON_AddStringToObject(o, "forwarder_net_id", netid_text(fwd->net_id, a));
    if (fwd->tenant_id[0])
        cJSON_AddStringToObject(o, "forwarder_tenant_id", fwd->tenant_id);
    cJSON_AddStringToObject(o, "home_net_id", netid_text(home->net_id, b));
    if (home->tenant_id[0])
        cJSON_AddStringToObject(o, "home_tenant_id", home->tenant_id);
    cJSON_AddStringToObject(o, "source", rp_source_name(eff.source));
    *out = eff.source == RP_SRC_NONE ? (cJSON_Delete(o), (cJSON *)NULL) : o;
    if (!*out)
        *out = cJSON_CreateNull();
    return RH_OK;
}

typedef struct eff_ctx {
    admin_req_t *r;
    rp_party_t home;
    cJSON *items;
    int rc;
} eff_ctx_t;

static int eff_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *m)
{
    eff_ctx_t *c = ud;
    (void)kind;
    uint32_t n = ((const Roamhub__V1__Network *)m)->net_id;
    if (n == c->home.net_id)
        return 0;
    rp_party_t fwd;
    rp_party_set(&fwd, n, NULL, NULL);
    cJSON *o = NULL;
    c->rc = effective_one(c->r, &fwd, &c->home, &o);
    if (o && !cJSON_IsNull(o))
        cJSON_AddItemToArray(c->items, o);
    else
        cJSON_Delete(o);
    return c->rc != RH_OK;
}

static int party_from_query(admin_req_t *r, const char *net, const char *tenant, rp_party_t *p,
                            int *present)
{
    char nb[32], tb[64] = "";
    *present = admin_query(r, net, nb, sizeof nb) == 1;
    if (!*present)
        return 0;
    admin_query(r, tenant, tb, sizeof tb);
    uint32_t n;
    rh_diag_t d;
    if (lw_netid_parse(nb, &n, &d) != RH_OK || rp_party_set(p, n, tb, &d) != RH_OK) {
        admin_reply_error(r, 400, "%s: %s", net, d.text);
        return -1;
    }
    return 0;
}

static void effective(admin_req_t *r)
{
    if (!admin_has_right(&r->p, R_READ_POLICY)) {
        admin_reply_error(r, 403, "policies: your key lacks RIGHT_READ_ROUTING_POLICY");
        return;
    }
    rp_party_t fwd = {0}, home = {0};
    int hf, hh;
    if (party_from_query(r, "forwarder_net_id", "forwarder_tenant_id", &fwd, &hf) ||
        party_from_query(r, "home_net_id", "home_tenant_id", &home, &hh))
        return;
    if (hf && hh) {
        int mine = r->p.is_operator || fwd.net_id == r->p.net_id || home.net_id == r->p.net_id;
        if (!mine) {
            admin_reply_error(r, 404, "no effective policy visible to you for that pair");
            return;
        }
        cJSON *o = NULL;
        int rc = effective_one(r, &fwd, &home, &o);
        if (rc) {
            admin_reply_error(r, 503, "%s", rh_strerror(rc));
            return;
        }
        if (cJSON_IsNull(o)) {
            cJSON_Delete(o);
            admin_reply_error(r, 404, "no policy: nothing flows from that forwarder to that home");
            return;
        }
        admin_reply_json(r, 200, o);
        return;
    }
    /* grants to a home network: the member's own NetID (operator: home_net_id required) */
    if (!hh) {
        if (r->p.is_operator) {
            admin_reply_error(r, 400, "home_net_id: required (with forwarder_net_id for one pair)");
            return;
        }
        rp_party_set(&home, r->p.net_id, r->p.tenant_id, NULL);
    } else if (!r->p.is_operator && home.net_id != r->p.net_id) {
        admin_reply_error(r, 404, "no effective policy visible to you for that home network");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    eff_ctx_t c = {r, home, cJSON_AddArrayToObject(o, "items"), RH_OK};
    char next[RP_PAGE_TOKEN_MAX];
    rp_list(r->a->hub->db, RP_KIND_NETWORK, NULL, 0, eff_cb, &c, next, sizeof next, NULL);
    if (c.rc) {
        cJSON_Delete(o);
        admin_reply_error(r, 503, "%s", rh_strerror(c.rc));
        return;
    }
    admin_reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ route table view */

static void routes(admin_req_t *r)
{
    if (!admin_has_right(&r->p, R_READ_ROUTES)) {
        admin_reply_error(r, 403, "routes: your key lacks RIGHT_READ_ROUTES");
        return;
    }
    char da[32], je[32], de[32] = "";
    int has_da = admin_query(r, "devaddr", da, sizeof da) == 1;
    int has_je = admin_query(r, "join_eui", je, sizeof je) == 1;
    admin_query(r, "dev_eui", de, sizeof de);
    if (has_da == has_je) {
        admin_reply_error(r, 400, "routes: give devaddr=XXXXXXXX, or join_eui (+ dev_eui)");
        return;
    }
    rh_diag_t d = {{0}};
    cJSON *o = cJSON_CreateObject();
    int found = 0, visible = 0, rc;
    char t[32];
    if (has_da) {
        uint32_t a;
        if (lw_devaddr_parse(da, &a, &d) != RH_OK) {
            cJSON_Delete(o);
            admin_reply_error(r, 400, "devaddr: %s", d.text);
            return;
        }
        rp_block_match_t bm;
        rc = rp_reader_begin(r->a->reader);
        if (rc == RH_OK) {
            rc = rp_lookup_devaddr(r->a->reader, a, &bm);
            rp_reader_end(r->a->reader);
        }
        if (rc == RH_OK && bm.found) {
            found = 1;
            visible = admin_scope_net(&r->p, bm.owner.net_id);
            lw_devaddr_format(a, t, 0);
            cJSON_AddStringToObject(o, "devaddr", t);
            lw_devaddr_prefix_t p = {bm.prefix, bm.length};
            char pt[16];
            lw_devaddr_prefix_format(p, pt);
            cJSON_AddStringToObject(o, "prefix", pt);
            cJSON_AddStringToObject(o, "home_net_id", netid_text(bm.owner.net_id, t));
            cJSON_AddStringToObject(o, "home_tenant_id", bm.owner.tenant_id);
            cJSON_AddStringToObject(o, "cluster_id", bm.cluster_id);
        }
    } else {
        uint64_t j, dv = 0;
        if (rh_eui64_parse(je, &j, &d) != RH_OK || (de[0] && rh_eui64_parse(de, &dv, &d))) {
            cJSON_Delete(o);
            admin_reply_error(r, 400, "join_eui/dev_eui: %s", d.text);
            return;
        }
        rp_join_match_t jm;
        rc = rp_reader_begin(r->a->reader);
        if (rc == RH_OK) {
            rc = rp_lookup_join(r->a->reader, j, dv, &jm);
            rp_reader_end(r->a->reader);
        }
        if (rc == RH_OK && jm.found) {
            found = 1;
            visible = r->p.is_operator || (!jm.via_join_server && jm.home.net_id == r->p.net_id);
            char e[24];
            rh_eui64_format(j, e);
            cJSON_AddStringToObject(o, "join_eui", e);
            if (jm.via_join_server) {
                cJSON_AddStringToObject(o, "join_server_id", jm.join_server_id);
            } else {
                cJSON_AddStringToObject(o, "home_net_id", netid_text(jm.home.net_id, t));
                cJSON_AddStringToObject(o, "home_tenant_id", jm.home.tenant_id);
            }
        }
    }
    if (rc) {
        cJSON_Delete(o);
        admin_reply_error(r, 503, "%s", rh_strerror(rc));
        return;
    }
    if (!found || !visible) {
        cJSON_Delete(o);
        admin_reply_error(r, 404, "no route%s", found ? " visible to you" : "");
        return;
    }
    admin_reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ audit, import */

typedef struct audit_ctx {
    admin_req_t *r;
    cJSON *items;
} audit_ctx_t;

static int audit_cb(void *ud, const Roamhub__V1__AuditRecord *a)
{
    audit_ctx_t *c = ud;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "at", (double)a->at);
    cJSON_AddStringToObject(o, "actor", a->actor);
    cJSON_AddStringToObject(o, "action", a->action);
    cJSON_AddStringToObject(o, "kind", a->kind);
    cJSON_AddStringToObject(o, "key", a->key);
    cJSON_AddItemToArray(c->items, o);
    return 0;
}

static void audit(admin_req_t *r)
{
    if (!r->p.is_operator || !admin_has_right(&r->p, R_ADMIN)) {
        admin_reply_error(r, 403, "audit: operator keys with RIGHT_ADMIN only");
        return;
    }
    char b[32];
    int64_t since = 0;
    long limit = 1000;
    if (admin_query(r, "since", b, sizeof b) == 1)
        since = strtoll(b, NULL, 10);
    if (admin_query(r, "limit", b, sizeof b) == 1) {
        limit = strtol(b, NULL, 10);
        if (limit < 1 || limit > 10000) {
            admin_reply_error(r, 400, "limit: expected 1..10000");
            return;
        }
    }
    cJSON *o = cJSON_CreateObject();
    audit_ctx_t c = {r, cJSON_AddArrayToObject(o, "items")};
    rh_diag_t d = {{0}};
    int rc = rp_audit_list(r->a->hub->db, since, (size_t)limit, audit_cb, &c, &d);
    if (rc) {
        cJSON_Delete(o);
        admin_reply_error(r, 503, "%s", d.text);
        return;
    }
    admin_reply_json(r, 200, o);
}

static void import_doc(admin_req_t *r)
{
    if (strcmp(r->method, "POST")) {
        admin_reply_error(r, 405, "import: use POST");
        return;
    }
    if (!r->p.is_operator || !admin_has_right(&r->p, R_ADMIN)) {
        admin_reply_error(r, 403, "import: operator keys with RIGHT_ADMIN only");
        return;
    }
    cJSON *doc = admin_body_json(r);
    if (!doc)
        return;
    size_t count = 0;
    rh_diag_t d = {{0}};
    unsigned flags = 0;
    char b[8];
    if (admin_query(r, "replace", b, sizeof b) == 1 && strcmp(b, "false") && strcmp(b, "0"))
        flags |= RP_IMPORT_REPLACE;
    int rc = rp_json_import(r->a->hub->db, r->p.key_id, doc, flags, &count, &d);
    cJSON_Delete(doc);
    if (rc) {
        admin_reply_error(r, rc == RH_EINVAL ? 400 : admin_status_of(rc), "%s", d.text);
        return;
    }
    rh_diag_t rd = {{0}};
    if (reload_registry(r, &rd) != RH_OK) {
        admin_reply_error(r, 422, "imported, but the member registry refused it (the relay keeps "
                          "the previous one): %s", rd.text);
        return;
    }
    RH_LOG(RH_LOG_INFO, "admin", "import records=%zu by=%s", count, r->p.key_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)count);
    admin_reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ dispatch */

void admin_resources_handle(admin_req_t *r)
{
    const char *top = r->seg[0];
    int get = !strcmp(r->method, "GET");
    if (!strcmp(top, "catalog") && r->nseg == 1 && get) {
        catalog(r);
        return;
    }
    if (!strcmp(top, "policies") && r->nseg == 2 && !strcmp(r->seg[1], "effective") && get) {
        effective(r);
        return;
    }
    if (!strcmp(top, "routes") && r->nseg == 1 && get) {
        routes(r);
        return;
    }
    if (!strcmp(top, "audit") && r->nseg == 1 && get) {
        audit(r);
        return;
    }
    if (!strcmp(top, "import") && r->nseg == 1) {
        import_doc(r);
        return;
    }
    for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++) {
        if (!strcmp(top, resources[i].name)) {
            handle_resource(r, &resources[i]);
            return;
        }
    }
    admin_reply_error(r, 404, "no such resource: %s", top);
}
