/* cluster_table.c — a routing-table change: applied locally, packed for the stream. See
 * cluster_table.h. */
#include "cluster_table.h"

#include "roamhub.pb-c.h"

#include <stdlib.h>
#include <string.h>

/* After the table changed: tells the registry; when it refuses, the table goes back to what the
 * registry holds (old restored, or the new record deleted) and RH_EINVAL carries its reason. */
static int registry_check(rp_db_t *db, const table_change_t *ch, const ProtobufCMessage *old,
                          table_registry_fn reg, void *reg_arg, rh_diag_t *d)
{
    if (!reg || (ch->kind != RP_KIND_MEMBER && ch->kind != RP_KIND_ENDPOINT))
        return RH_OK;
    rh_diag_t rd = {{0}};
    int del = ch->op == TABLE_OP_DELETE;
    if (reg(reg_arg, ch->kind, del ? NULL : ch->msg, del ? old : NULL, &rd) == RH_OK)
        return RH_OK;
    rh_diag_t ud;
    if (old)
        rp_put(db, ch->actor, ch->kind, old, RP_PUT_UPSERT, &ud);
    else
        rp_delete(db, ch->actor, ch->kind, ch->msg, NULL, &ud);
    return rh_diag_fail(d, RH_EINVAL, "%s", rd.text);
}

int table_change_apply(rp_db_t *db, const table_change_t *ch, table_registry_fn reg,
                       void *reg_arg, int *deleted, rh_diag_t *d)
{
    int del = 0;
    if (deleted)
        *deleted = 0;
    ProtobufCMessage *old = NULL;
    int needs_old = reg && (ch->kind == RP_KIND_MEMBER || ch->kind == RP_KIND_ENDPOINT);
    if (needs_old) {
        rh_diag_t gd;
        int g = rp_get(db, ch->kind, ch->msg, &old, &gd);
        if (g != RH_OK && g != RH_ENOTFOUND)
            return rh_diag_fail(d, g, "%s", gd.text);
    }
    int rc;
    if (ch->op == TABLE_OP_DELETE) {
        rc = rp_delete(db, ch->actor, ch->kind, ch->msg, &del, d);
        if (rc == RH_OK && del && old) {
            /* the registry is told about the removed record; undo puts it back */
            rc = registry_check(db, ch, old, reg, reg_arg, d);
            if (rc)
                del = 0;
        }
    } else {
        rc = rp_put(db, ch->actor, ch->kind, ch->msg, ch->mode, d);
        if (rc == RH_OK)
            rc = registry_check(db, ch, old, reg, reg_arg, d);
    }
    if (old)
        protobuf_c_message_free_unpacked(old, NULL);
    if (deleted)
        *deleted = del;
    return rc;
}

int table_change_needs_registry(const table_change_t *ch)
{
    return ch->kind == RP_KIND_MEMBER || ch->kind == RP_KIND_ENDPOINT;
}

int table_change_apply_txn(rp_txn_t *t, const table_change_t *ch, int *deleted, rh_diag_t *d)
{
    if (deleted)
        *deleted = 0;
    if (table_change_needs_registry(ch))
        return rh_diag_fail(d, RH_EINVAL, "table change: %s records are applied one at a time",
                            rp_kind_name(ch->kind));
    if (ch->op == TABLE_OP_DELETE)
        return rp_txn_delete(t, ch->kind, ch->msg, deleted, d);
    return rp_txn_put(t, ch->kind, ch->msg, ch->mode, d);
}

int table_change_pack(const table_change_t *ch, unsigned node_id, uint8_t **out, size_t *len,
                      rh_diag_t *d)
{
    *out = NULL;
    *len = 0;
    const ProtobufCMessageDescriptor *desc = rp_kind_descriptor(ch->kind);
    if (!desc || ch->msg->descriptor != desc ||
        (ch->op != TABLE_OP_PUT && ch->op != TABLE_OP_DELETE))
        return rh_diag_fail(d, RH_EINVAL, "table change: record of another kind or bad op");
    size_t rl = protobuf_c_message_get_packed_size(ch->msg);
    uint8_t *rec = malloc(rl ? rl : 1);
    if (!rec)
        return RH_ENOMEM;
    protobuf_c_message_pack(ch->msg, rec);
    Roamhub__V1__TableChange w = ROAMHUB__V1__TABLE_CHANGE__INIT;
    w.op = ch->op == TABLE_OP_PUT ? ROAMHUB__V1__TABLE_CHANGE__OP__OP_PUT
                                  : ROAMHUB__V1__TABLE_CHANGE__OP__OP_DELETE;
    w.kind = (uint32_t)ch->kind;
    w.mode = (uint32_t)ch->mode;
    w.actor = (char *)(ch->actor ? ch->actor : "");
    w.record.data = rec;
    w.record.len = rl;
    w.node_id = node_id;
    size_t n = roamhub__v1__table_change__get_packed_size(&w);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        free(rec);
        return RH_ENOMEM;
    }
    roamhub__v1__table_change__pack(&w, buf);
    free(rec);
    *out = buf;
    *len = n;
    return RH_OK;
}

int table_change_unpack(const uint8_t *data, size_t len, table_change_owned_t *o, rh_diag_t *d)
{
    memset(o, 0, sizeof *o);
    Roamhub__V1__TableChange *w = roamhub__v1__table_change__unpack(NULL, len, data);
    if (!w)
        return rh_diag_fail(d, RH_EINVAL, "table change: not a TableChange record");
    const ProtobufCMessageDescriptor *desc =
        w->kind < RP_KIND_COUNT ? rp_kind_descriptor((rp_kind_t)w->kind) : NULL;
    int op_ok = w->op == ROAMHUB__V1__TABLE_CHANGE__OP__OP_PUT ||
                w->op == ROAMHUB__V1__TABLE_CHANGE__OP__OP_DELETE;
    if (!desc || !op_ok || w->mode > RP_PUT_UPDATE) {
        roamhub__v1__table_change__free_unpacked(w, NULL);
        return rh_diag_fail(d, RH_EINVAL, "table change: unknown op, kind or mode");
    }
    ProtobufCMessage *rec = protobuf_c_message_unpack(desc, NULL, w->record.len, w->record.data);
    if (!rec) {
        roamhub__v1__table_change__free_unpacked(w, NULL);
        return rh_diag_fail(d, RH_EINVAL, "table change: record is not a %s",
                            rp_kind_name((rp_kind_t)w->kind));
    }
    o->wire = w;
    o->rec = rec;
    o->node_id = w->node_id;
    o->ch.op = w->op == ROAMHUB__V1__TABLE_CHANGE__OP__OP_PUT ? TABLE_OP_PUT : TABLE_OP_DELETE;
    o->ch.kind = (rp_kind_t)w->kind;
    o->ch.mode = (rp_put_mode_t)w->mode;
    o->ch.actor = w->actor;
    o->ch.msg = rec;
    return RH_OK;
}

void table_change_release(table_change_owned_t *o)
{
    if (o->rec)
        protobuf_c_message_free_unpacked(o->rec, NULL);
    if (o->wire)
        roamhub__v1__table_change__free_unpacked(o->wire, NULL);
    memset(o, 0, sizeof *o);
}
