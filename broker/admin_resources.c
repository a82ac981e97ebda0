/* admin_resources.c — the admin API's records: networks, tenants, endpoints, DevAddr blocks, join
 * routes, routing policies, members and API keys: list/get/create/replace/delete, and the
 * dispatch of /api/v1/<resource> (the read-only views are admin_views.c, API key issue/revoke
 * admin_keys.c).
 *
 * Authorization (docs/openapi.yaml "Roles"): every request needs the resource's read or write
 * right; which records a key may reach is admin_scope.c's rule (operator: all; member: records
 * it owns). Records a member does not own are reported exactly like records that do not exist
 * (404), and listings skip them, so other members' IDs never appear in a member's responses.
 * Secrets never leave: endpoint Authorization values and API key hashes are removed from every
 * response (admin_record_json). Changes to Member/Endpoint records are told to the hub through
 * the registry_changed hook (admin_registry_changed), never by calling into hub.c.
 * The record helpers it shares with admin_keys.c and admin_views.c are admin_records.c's, so
 * the dispatch here calls down into those files and nothing calls back up.
 */
#include "admin_internal.h"

#include "lw_netid.h"
#include "peer_endpoint.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rh_time.h"
#include "rp_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const admin_res_t resources[] = {
    {"networks", RP_KIND_NETWORK, R_READ_NETWORK, R_WRITE_NETWORK, 0},
    {"tenants", RP_KIND_TENANT, R_READ_NETWORK, R_WRITE_NETWORK, 0},
    {"devaddr-blocks", RP_KIND_BLOCK, R_READ_BLOCKS, R_WRITE_BLOCKS, 0},
    {"join-routes", RP_KIND_JOIN_ROUTE, R_READ_ROUTES, R_WRITE_NETWORK, 0},
    {"policies", RP_KIND_POLICY, R_READ_POLICY, R_WRITE_POLICY, 0},
    {"endpoints", RP_KIND_ENDPOINT, R_READ_NETWORK, R_WRITE_NETWORK, 0},
    {"members", RP_KIND_MEMBER, R_READ_NETWORK, R_WRITE_NETWORK, 1},
    {"keys", RP_KIND_API_KEY, R_ADMIN, R_ADMIN, 0},
};

/* Key object of a record from path segments (after the resource name) and query. NULL with a
 * reply sent when the path is not a key of this kind. */
static cJSON *key_json(admin_req_t *r, const admin_res_t *res, char **s, int n)
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
        int qf = admin_query(r, "forwarder_tenant_id", t, sizeof t);
        if (qf == 1)
            cJSON_AddStringToObject(o, "forwarder_tenant_id", t);
        int qh = qf < 0 ? 0 : admin_query(r, "home_tenant_id", t, sizeof t);
        if (qh == 1)
            cJSON_AddStringToObject(o, "home_tenant_id", t);
        if (qf < 0 || qh < 0) { /* too long: never ignored (that would name another record) */
            cJSON_Delete(o);
            admin_reply_error(r, 400, "%s: longer than a tenant ID (at most %d characters)",
                              qf < 0 ? "forwarder_tenant_id" : "home_tenant_id", RH_TENANT_MAX);
            return NULL;
        }
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

static ProtobufCMessage *key_msg(admin_req_t *r, const admin_res_t *res, char **s, int n)
{
    cJSON *k = key_json(r, res, s, n);
    if (!k)
        return NULL;
    ProtobufCMessage *m = NULL;
    rh_diag_t d = {{0}};
    int rc = rp_json_to_record(res->kind, k, "path", &m, &d);
    cJSON_Delete(k);
    if (rc) {
        admin_reply_error(r, rc == RH_EINVAL ? 400 : admin_status_of(rc), "%s", d.text);
        return NULL;
    }
    return m;
}

/* ------------------------------------------------------------------ writes: shared checks */

/* Tells the hub that Member/Endpoint records changed (the hook admin_new installed): one record
 * is applied to the registry incrementally, an import rebuilds it. Errors: the hook's (the
 * registry refused the records). */
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

/* Stores (create or upsert) through admin_table_write (which undoes it if the member registry
 * refuses it). Returns an HTTP status (reply not sent) and fills d. */
static int store(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *m, rp_put_mode_t mode,
                 rh_diag_t *d)
{
    int rc = admin_table_write(r, TABLE_OP_PUT, kind, m, mode, NULL, d);
    return rc == RH_OK ? 0 : rc == RH_EINVAL ? 422 : admin_status_of(rc);
}

/* Member/Endpoint writes of a single node build the next registry off the admin loop
 * (admin_registry.c); in a cluster every node applies them from the table stream. */
static int offloop_registry_write(const admin_req_t *r, rp_kind_t kind)
{
    return (kind == RP_KIND_ENDPOINT || kind == RP_KIND_MEMBER) && !r->a->hub->cluster;
}

/* Member-specific write rules (admin_scope.c); replies and returns -1 when refused. */
static int member_write_rules(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *m,
                              const ProtobufCMessage *old)
{
    char why[200];
    int st = admin_member_write_check(&r->p, kind, m, old, why, sizeof why);
    if (!st)
        return 0;
    admin_reply_error(r, st, "%s", why);
    return -1;
}

/* ------------------------------------------------------------------ list / get */

typedef struct list_ctx {
    admin_req_t *r;
    const admin_res_t *res;
    cJSON *items;
    size_t n, limit;
    uint32_t net_filter; /* RP_ANY = all */
} list_ctx_t;

static int list_cb(void *ud, rp_kind_t kind, const ProtobufCMessage *m)
{
    list_ctx_t *c = ud;
    if (!admin_may_touch(&c->r->p, kind, m, 0))
        return 0;
    if (c->net_filter != RP_ANY) {
        uint32_t net;
        const char *t;
        if (!admin_record_owner(kind, m, &net, &t) || net != c->net_filter)
            return 0;
    }
    cJSON_AddItemToArray(c->items, admin_record_json(kind, m));
    return ++c->n >= c->limit;
}

static void do_list(admin_req_t *r, const admin_res_t *res)
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
    int rc = rp_list(r->a->db, res->kind, tok, 0, list_cb, &c, next, sizeof next, &d);
    if (rc) {
        cJSON_Delete(o);
        admin_reply_error(r, rc == RH_EINVAL ? 400 : 503, "%s", d.text);
        return;
    }
    cJSON_AddStringToObject(o, "next_page_token", c.n >= c.limit ? next : "");
    admin_reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ create / replace / delete */

/* Body -> record, with the key fields from the path filled in when absent and checked to be the
 * path's key when present. */
static ProtobufCMessage *body_record(admin_req_t *r, const admin_res_t *res, cJSON *b,
                                     cJSON *keyobj)
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
    /* a literal address is judged now (a name is judged where it is connected to, after DNS) */
    if (rc == RH_OK && ep->host_is_ip &&
        peer_addr_check_text(r->a->hub->addr_policy, ep->addr_text, ep->port, &d) != RH_OK) {
        char why[sizeof d.text];
        snprintf(why, sizeof why, "%s", d.text);
        rc = rh_diag_fail(&d, RH_EPERM, "endpoint.url: %s", why);
    }
    peer_endpoint_free(ep);
    if (rc) {
        admin_reply_error(r, rc == RH_ENOMEM ? 503 : 422, "%s", d.text);
        return -1;
    }
    return 0;
}

/* The end of a create or replace: status 0 = stored (answer 201/200 with the record as stored),
 * else the refusal (admin_registry_done_fn for Members and Endpoints). */
static void write_done(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *m,
                       const ProtobufCMessage *old, int status, rh_diag_t *d)
{
    if (status) {
        if (status == 409)
            admin_scope_conflict_text(&r->p, d->text, sizeof d->text);
        admin_reply_error(r, status, "%s", d->text);
        return;
    }
    char kt[200];
    rp_key_text(kind, m, kt, sizeof kt);
    RH_LOG(RH_LOG_INFO, "admin", "%s %s key=\"%s\" by=%s", old ? "updated" : "created",
           rp_kind_name(kind), kt, r->p.key_id);
    ProtobufCMessage *now = NULL;
    rp_get(r->a->db, kind, m, &now, NULL);
    admin_reply_json(r, old ? 200 : 201, admin_record_json(kind, now ? now : m));
    admin_free_msg(now);
}

static void do_write(admin_req_t *r, const admin_res_t *res, char **s, int n, int create)
{
    if (res->kind == RP_KIND_API_KEY) {
        if (create)
            admin_key_create(r);
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
        admin_free_msg(pathkey);
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
    int grc = rp_get(r->a->db, res->kind, m, &old, &d);
    if (grc != RH_OK) { /* RH_EINVAL: a key (ID) the rules of rh_id.h refuse: 400, not 503 */
        admin_reply_error(r, admin_status_of(grc), "%s", d.text);
        goto out;
    }
    if (old && !admin_may_touch(&r->p, res->kind, old, 1)) {
        /* another member's record: do not reveal it (PUT: as if missing; POST: taken) */
        if (create)
            admin_reply_error(r, 409, "%s: that key is not available", rp_kind_name(res->kind));
        else
            admin_reply_error(r, 404, "%s: not found", rp_kind_name(res->kind));
        goto out;
    }
    if (!admin_may_touch(&r->p, res->kind, m, 1)) {
        char own[7];
        admin_reply_error(r, 403, "%s: a member may only write records of its own NetID %s%s%s",
                          rp_kind_name(res->kind), admin_netid_text(r->p.net_id, own),
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
        rp_list(r->a->db, RP_KIND_JOIN_ROUTE, NULL, 0, jr_scan_cb, &js, next, sizeof next,
                NULL);
        if (js.conflict) {
            admin_reply_error(r, 409, "join_route %s: overlaps a JoinEUI prefix routed to "
                              "another network", kt);
            goto out;
        }
    }
    if (offloop_registry_write(r, res->kind)) { /* answered by write_done when stored */
        admin_registry_write(r, res->kind, 0, create ? RP_PUT_CREATE : RP_PUT_UPSERT, m, old,
                             write_done);
        admin_free_msg(pathkey);
        return;
    }
    status = store(r, res->kind, m, create ? RP_PUT_CREATE : RP_PUT_UPSERT, &d);
    write_done(r, res->kind, m, old, status, &d);
out:
    admin_free_msg(m);
    admin_free_msg(old);
    admin_free_msg(pathkey);
}

/* The end of a delete (admin_registry_done_fn for Members and Endpoints). */
static void delete_done(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *m,
                        const ProtobufCMessage *old, int status, rh_diag_t *d)
{
    (void)old;
    if (status) {
        admin_reply_error(r, status, "%s", d->text);
        return;
    }
    char kt[200] = "?";
    rp_key_text(kind, m, kt, sizeof kt);
    RH_LOG(RH_LOG_INFO, "admin", "deleted %s key=\"%s\" by=%s", rp_kind_name(kind), kt,
           r->p.key_id);
    admin_reply_json(r, 204, NULL);
}

static void do_delete(admin_req_t *r, const admin_res_t *res, ProtobufCMessage *key)
{
    if (res->kind == RP_KIND_API_KEY) {
        admin_key_revoke(r, res, key);
        return;
    }
    ProtobufCMessage *m = admin_load_visible(r, res, key, 1);
    if (!m)
        return;
    if (!r->p.is_operator && res->kind == RP_KIND_NETWORK) {
        admin_free_msg(m);
        admin_reply_error(r, 403, "networks are deleted by the operator");
        return;
    }
    if (offloop_registry_write(r, res->kind)) { /* answered by delete_done when deleted */
        admin_registry_write(r, res->kind, 1, RP_PUT_UPSERT, m, NULL, delete_done);
        return;
    }
    rh_diag_t d = {{0}};
    int rc = admin_table_write(r, TABLE_OP_DELETE, res->kind, m, RP_PUT_UPSERT, NULL, &d);
    delete_done(r, res->kind, m, NULL, rc == RH_OK ? 0 : rc == RH_EINVAL ? 422 : admin_status_of(rc),
                &d);
    admin_free_msg(m);
}

static void handle_resource(admin_req_t *r, const admin_res_t *res)
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
        ProtobufCMessage *m = admin_load_visible(r, res, key, 0);
        if (m)
            admin_reply_json(r, 200, admin_record_json(res->kind, m));
        admin_free_msg(m);
    } else {
        do_delete(r, res, key);
    }
    admin_free_msg(key);
}

/* ------------------------------------------------------------------ dispatch */

void admin_resources_handle(admin_req_t *r)
{
    if (admin_views_handle(r))
        return;
    const char *top = r->seg[0];
    for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++) {
        if (!strcmp(top, resources[i].name)) {
            handle_resource(r, &resources[i]);
            return;
        }
    }
    admin_reply_error(r, 404, "no such resource: %s", top);
}
