/*
 * pb_claims.c — Packet Broker token identity claim (see pb_claims.h).
 */
#include "pb_claims.h"

#include <string.h>

cJSON *pb_claims_to_json(const pb_identity_t *id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ns = cJSON_AddArrayToObject(o, "ns");
    cJSON *rights = cJSON_AddArrayToObject(o, "rights");
    if (!o || !ns || !rights) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < id->n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToArray(ns, e);
        if (!e || !cJSON_AddNumberToObject(e, "nid", id->ns[i].net_id) ||
            !cJSON_AddStringToObject(e, "tid", id->ns[i].tenant)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    for (unsigned r = 0; r < 32; r++) {
        cJSON *v = (id->rights >> r & 1u) ? cJSON_CreateNumber(r) : NULL;
        if ((id->rights >> r & 1u) && !cJSON_AddItemToArray(rights, v)) {
            cJSON_Delete(v);
            cJSON_Delete(o);
            return NULL;
        }
    }
    if (id->cluster && !cJSON_AddTrueToObject(o, "c")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool is_int_in(const cJSON *v, double lo, double hi)
{
    return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
           v->valuedouble == (double)(long long)v->valuedouble;
}

int pb_claims_from_json(const cJSON *set, pb_identity_t *out, rh_diag_t *d)
{
    memset(out, 0, sizeof *out);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(set, PB_CLAIMS_KEY);
    if (!cJSON_IsObject(c))
        return rh_diag_fail(d, RH_EINVAL, "%s: missing or not an object", PB_CLAIMS_KEY);
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(c, "ns");
    int n = cJSON_GetArraySize(ns);
    if (!cJSON_IsArray(ns) || n == 0)
        return rh_diag_fail(d, RH_EINVAL, "claims.ns: expected a non-empty array");
    if (n > PB_NS_MAX)
        return rh_diag_fail(d, RH_EINVAL, "claims.ns: %d entries, at most %d", n, PB_NS_MAX);
    const cJSON *e;
    cJSON_ArrayForEach(e, ns) {
        size_t i = out->n;
        const cJSON *nid = cJSON_GetObjectItemCaseSensitive(e, "nid");
        const cJSON *tid = cJSON_GetObjectItemCaseSensitive(e, "tid");
        if (!is_int_in(nid, 0, 0xFFFFFF))
            return rh_diag_fail(d, RH_EINVAL, "claims.ns[%zu].nid: expected a NetID 0..16777215", i);
        if (tid && !cJSON_IsString(tid))
            return rh_diag_fail(d, RH_EINVAL, "claims.ns[%zu].tid: expected a string", i);
        const char *t = tid ? tid->valuestring : "";
        if (strlen(t) >= PB_TENANT_MAX)
            return rh_diag_fail(d, RH_EINVAL, "claims.ns[%zu].tid: %zu bytes, at most %d", i,
                                strlen(t), PB_TENANT_MAX - 1);
        out->ns[i].net_id = (uint32_t)nid->valuedouble;
        memcpy(out->ns[i].tenant, t, strlen(t) + 1);
        out->n++;
    }
    const cJSON *rights = cJSON_GetObjectItemCaseSensitive(c, "rights");
    if (rights) {
        if (!cJSON_IsArray(rights))
            return rh_diag_fail(d, RH_EINVAL, "claims.rights: expected an array");
        const cJSON *r;
        cJSON_ArrayForEach(r, rights) {
            if (!is_int_in(r, 0, 31))
                return rh_diag_fail(d, RH_EINVAL, "claims.rights: expected integers 0..31");
            out->rights |= 1u << (unsigned)r->valuedouble;
        }
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(c, "c");
    if (cl && !cJSON_IsBool(cl))
        return rh_diag_fail(d, RH_EINVAL, "claims.c: expected true or false");
    out->cluster = cJSON_IsTrue(cl);
    return RH_OK;
}

bool pb_identity_covers(const pb_identity_t *id, uint32_t net_id, const char *tenant)
{
    if (!tenant)
        tenant = "";
    for (size_t i = 0; i < id->n; i++)
        if (id->ns[i].net_id == net_id &&
            (id->ns[i].tenant[0] == '\0' || strcmp(id->ns[i].tenant, tenant) == 0))
            return true;
    return false;
}

bool pb_identity_has_right(const pb_identity_t *id, unsigned r)
{
    return r < 32 && (id->rights >> r & 1u);
}
