/* admin_records.c — the record helpers shared by the admin API's record CRUD
 * (admin_resources.c), API keys (admin_keys.c) and read-only views (admin_views.c): a record's
 * JSON with secrets removed, loading a record the caller may see, every write of one record
 * (admin_table_write: local table or cluster stream) and the registry_changed hook.
 * The lowest of the three record files: it calls none of them.
 */
#include "admin_internal.h"

#include "rp_json.h"

cJSON *admin_record_json(rp_kind_t kind, const ProtobufCMessage *m)
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

void admin_free_msg(ProtobufCMessage *m)
{
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
}

/* Loads the record at the path; NULL with 404 sent when missing or not visible. */
ProtobufCMessage *admin_load_visible(admin_req_t *r, const admin_res_t *res, ProtobufCMessage *key,
                                      int write)
{
    ProtobufCMessage *m = NULL;
    rh_diag_t d = {{0}};
    int rc = rp_get(r->a->db, res->kind, key, &m, &d);
    if (rc) {
        admin_reply_error(r, admin_status_of(rc), "%s", d.text);
        return NULL;
    }
    if (m && !admin_may_touch(&r->p, res->kind, m, write)) {
        admin_free_msg(m);
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

/* The registry_changed hook (admin.h) as table_change_apply calls it. */
static int registry_hook(void *arg, rp_kind_t kind, const ProtobufCMessage *upserted,
                         const ProtobufCMessage *deleted, rh_diag_t *d)
{
    admin_api_t *a = arg;
    return a->reg_hooks.changed
               ? a->reg_hooks.changed(a->reg_hooks.arg, kind, upserted, deleted, d)
               : RH_OK;
}

int admin_table_write(admin_req_t *r, table_op_t op, rp_kind_t kind, const ProtobufCMessage *m,
                      rp_put_mode_t mode, int *deleted, rh_diag_t *d)
{
    table_change_t ch = {.op = op, .kind = kind, .mode = mode, .actor = r->p.key_id, .msg = m};
    if (r->a->hub->cluster)
        return cluster_write(r->a->hub->cluster, &ch, deleted, d);
    return table_change_apply(r->a->db, &ch, registry_hook, r->a, deleted, d);
}

int admin_registry_changed(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *upserted,
                           const ProtobufCMessage *deleted, rh_diag_t *d)
{
    return registry_hook(r->a, kind, upserted, deleted, d);
}
