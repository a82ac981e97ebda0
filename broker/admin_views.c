/* admin_views.c — the admin API's read-only views and bulk operations over the routing table:
 * GET /catalog (listed networks and tenants, for every key), GET /policies/effective (the
 * policy that applies between two parties, scoped to the caller), GET /routes (where a DevAddr
 * or JoinEUI/DevEUI goes), GET /audit (operator) and POST /import (operator). */
#include "admin_internal.h"

#include "lw_netid.h"
#include "rh_hex.h"
#include "rh_log.h"
#include "rp_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    rp_list(r->a->db, RP_KIND_NETWORK, NULL, 0, catalog_cb, &c, next, sizeof next, NULL);
    c.items = cJSON_AddArrayToObject(o, "tenants");
    rp_list(r->a->db, RP_KIND_TENANT, NULL, 0, catalog_cb, &c, next, sizeof next, NULL);
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

static int effective_one(admin_req_t *r, const rp_party_t *fwd, const rp_party_t *home, cJSON **out)
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
    cJSON_AddStringToObject(o, "forwarder_net_id", admin_netid_text(fwd->net_id, a));
    if (fwd->tenant_id[0])
        cJSON_AddStringToObject(o, "forwarder_tenant_id", fwd->tenant_id);
    cJSON_AddStringToObject(o, "home_net_id", admin_netid_text(home->net_id, b));
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
    if (admin_query(r, tenant, tb, sizeof tb) < 0) {
        admin_reply_error(r, 400, "%s: longer than a tenant ID (at most %d characters)", tenant,
                          RH_TENANT_MAX);
        return -1;
    }
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
    rp_list(r->a->db, RP_KIND_NETWORK, NULL, 0, eff_cb, &c, next, sizeof next, NULL);
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
            cJSON_AddStringToObject(o, "home_net_id", admin_netid_text(bm.owner.net_id, t));
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
                cJSON_AddStringToObject(o, "home_net_id", admin_netid_text(jm.home.net_id, t));
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
    size_t skip, want, n; /* records to pass over (page token), page size, returned */
    int64_t last_at;      /* `at` of the last returned record and how many share it */
    size_t last_at_count;
    int more;             /* a record beyond the page exists */
} audit_ctx_t;

static int audit_cb(void *ud, const Roamhub__V1__AuditRecord *a)
{
    audit_ctx_t *c = ud;
    if (c->skip) {
        c->skip--;
        if (a->at == c->last_at)
            c->last_at_count++;
        return 0;
    }
    if (c->n == c->want) {
        c->more = 1;
        return 1;
    }
    if (a->at == c->last_at) {
        c->last_at_count++;
    } else {
        c->last_at = a->at;
        c->last_at_count = 1;
    }
    c->n++;
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
    /* Paginated like every list: page_size (1..1000, default 100), page_token from the previous
     * page's next_page_token ("<at ms>.<records at that ms already returned>"), and `since`
     * (Unix ms) for the first page. Oldest first. */
    char b[64], *end;
    int64_t since = 0;
    long size = 100;
    size_t skip = 0;
    if (admin_query(r, "since", b, sizeof b) == 1) {
        since = strtoll(b, &end, 10);
        if (!b[0] || *end || since < 0) {
            admin_reply_error(r, 400, "since: expected Unix milliseconds");
            return;
        }
    }
    if (admin_query(r, "page_size", b, sizeof b) == 1) {
        size = strtol(b, &end, 10);
        if (!b[0] || *end || size < 1 || size > 1000) {
            admin_reply_error(r, 400, "page_size: expected an integer in 1..1000");
            return;
        }
    }
    int tok = admin_query(r, "page_token", b, sizeof b);
    if (tok == 1 && b[0]) {
        long long at = strtoll(b, &end, 10);
        unsigned long long k = *end == '.' ? strtoull(end + 1, &end, 10) : 0;
        if (at < 0 || *end || k == 0 || k > 1000000 || !strchr(b, '.')) {
            admin_reply_error(r, 400, "page_token: not a token of this list");
            return;
        }
        since = at;
        skip = (size_t)k;
    } else if (tok < 0) {
        admin_reply_error(r, 400, "page_token: not a token of this list");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    audit_ctx_t c = {.r = r, .items = cJSON_AddArrayToObject(o, "items"), .skip = skip,
                     .want = (size_t)size, .last_at = since, .last_at_count = 0};
    rh_diag_t d = {{0}};
    int rc = rp_audit_list(r->a->db, since, 0, audit_cb, &c, &d);
    if (rc) {
        cJSON_Delete(o);
        admin_reply_error(r, 503, "%s", d.text);
        return;
    }
    char next[64] = "";
    if (c.more)
        snprintf(next, sizeof next, "%lld.%zu", (long long)c.last_at, c.last_at_count);
    cJSON_AddStringToObject(o, "next_page_token", next);
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
    if (r->a->hub->cluster) { /* a whole-table import is not a table change the stream carries */
        admin_reply_error(r, 501, "import: not available on a cluster node (it would change "
                          "this node's table only); write the records through the API");
        return;
    }
    int replace = 0;
    if (admin_query_bool(r, "replace", &replace) < 0)
        return;
    cJSON *doc = admin_body_json(r);
    if (!doc)
        return;
    size_t count = 0;
    rh_diag_t d = {{0}};
    /* replace=true clears the whole table first: refuse it when the document does not carry
     * the calling key (the caller would lock itself out until a restart). */
    size_t before[RP_KIND_COUNT] = {0};
    if (replace) {
        int keeps_caller = 0;
        const cJSON *k;
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(doc, "api_keys"))
        {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(k, "id");
            keeps_caller |= cJSON_IsString(id) && !strcmp(id->valuestring, r->p.key_id);
        }
        if (!keeps_caller) {
            cJSON_Delete(doc);
            admin_reply_error(r, 422,
                              "replace: the document's api_keys do not contain the calling key "
                              "%s, which replace=true would delete",
                              r->p.key_id);
            return;
        }
        for (int k2 = 0; k2 < RP_KIND_COUNT; k2++)
            rp_count(r->a->db, (rp_kind_t)k2, &before[k2]);
    }
    int rc =
        rp_json_import(r->a->db, r->p.key_id, doc, replace ? RP_IMPORT_REPLACE : 0, &count, &d);
    cJSON_Delete(doc);
    if (rc) {
        admin_reply_error(r, rc == RH_EINVAL ? 400 : admin_status_of(rc), "%s", d.text);
        return;
    }
    if (replace)
        RH_LOG(RH_LOG_WARN, "admin",
               "import replaced the routing table records=%zu removed_networks=%zu "
               "removed_tenants=%zu removed_devaddr_blocks=%zu removed_join_routes=%zu "
               "removed_policies=%zu removed_endpoints=%zu removed_members=%zu "
               "removed_api_keys=%zu by=%s",
               count, before[RP_KIND_NETWORK], before[RP_KIND_TENANT], before[RP_KIND_BLOCK],
               before[RP_KIND_JOIN_ROUTE], before[RP_KIND_POLICY], before[RP_KIND_ENDPOINT],
               before[RP_KIND_MEMBER], before[RP_KIND_API_KEY], r->p.key_id);
    rh_diag_t rd = {{0}};
    if (admin_registry_changed(r, RP_KIND_MEMBER, NULL, NULL, &rd) != RH_OK) { /* rebuild */
        admin_reply_error(r, 422,
                          "imported, but the member registry refused it (the relay keeps "
                          "the previous one): %s",
                          rd.text);
        return;
    }
    RH_LOG(RH_LOG_INFO, "admin", "import records=%zu by=%s", count, r->p.key_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", (double)count);
    admin_reply_json(r, 200, o);
}

int admin_views_handle(admin_req_t *r)
{
    const char *top = r->seg[0];
    int get = !strcmp(r->method, "GET");
    if (!strcmp(top, "catalog") && r->nseg == 1 && get)
        catalog(r);
    else if (!strcmp(top, "policies") && r->nseg == 2 && !strcmp(r->seg[1], "effective") && get)
        effective(r);
    else if (!strcmp(top, "routes") && r->nseg == 1 && get)
        routes(r);
    else if (!strcmp(top, "audit") && r->nseg == 1 && get)
        audit(r);
    else if (!strcmp(top, "import") && r->nseg == 1)
        import_doc(r);
    else
        return 0;
    return 1;
}
