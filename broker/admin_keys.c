/* admin_keys.c — API keys through the admin API: issue (POST /keys: the secret is shown once,
 * only its salted hash is stored) and revoke (DELETE /keys/{id}); listing and reading keys is
 * the generic record code in admin_resources.c. Who may issue which key is admin_scope.c's
 * rule plus the checks here (a member issues keys for its own NetID/tenant only, never operator
 * keys, never rights it does not hold). */
#include "admin_internal.h"

#include "lw_netid.h"
#include "rh_log.h"
#include "rh_time.h"
#include "rp_json.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        const ProtobufCEnumValue *v = cJSON_IsString(it)
                                          ? protobuf_c_enum_descriptor_get_value_by_name(
                                                &roamhub__v1__right__descriptor, it->valuestring)
                                          : NULL;
        if (!v || v->value == 0) {
            snprintf(err, errcap, "rights[%zu]: unknown right (RIGHT_READ_NETWORK, ...)", *n);
            return -1;
        }
        out[(*n)++] = (Roamhub__V1__Right)v->value;
    }
    return 0;
}

void admin_key_create(admin_req_t *r)
{
    cJSON *b = admin_body_json(r);
    if (!b)
        return;
    Roamhub__V1__ApiKey k = ROAMHUB__V1__API_KEY__INIT;
    Roamhub__V1__Right rights[16];
    char id[RP_ID_MAX + 1], err[160];
    const cJSON *v;
    int status = 0;
    if ((v = cJSON_GetObjectItemCaseSensitive(b, "id"))) {
        rh_diag_t idd;
        if (!cJSON_IsString(v) || rh_id_check(RH_ID_RECORD, v->valuestring, "id", &idd)) {
            admin_reply_error(r, 400, "%s", cJSON_IsString(v) ? idd.text : "id: expected a string");
            cJSON_Delete(b);
            return;
        }
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
    if (!status && parse_rights(cJSON_GetObjectItemCaseSensitive(b, "rights"), rights, &k.n_rights,
                                err, sizeof err))
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
            snprintf(err, sizeof err,
                     "net_id/tenant_id: a member creates keys for its own "
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
        rc = admin_table_write(r, TABLE_OP_PUT, RP_KIND_API_KEY, &k.base, RP_PUT_CREATE, NULL, &d);
    cJSON_Delete(b); /* k's strings pointed into b: not used after this */
    if (rc) {
        OPENSSL_cleanse(secret, sizeof secret);
        admin_reply_error(r,
                          rc == RH_EEXIST   ? 409
                          : rc == RH_EINVAL ? 422
                                            : admin_status_of(rc),
                          "%s", rc == RH_EEXIST ? "api_key: that id is already taken" : d.text);
        return;
    }
    RH_LOG(RH_LOG_INFO, "admin", "api key created key=%s by=%s", id, r->p.key_id);
    ProtobufCMessage *stored = NULL;
    Roamhub__V1__ApiKey kk = ROAMHUB__V1__API_KEY__INIT;
    kk.id = id;
    rp_get(r->a->db, RP_KIND_API_KEY, &kk.base, &stored, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(
        o, "key", stored ? admin_record_json(RP_KIND_API_KEY, stored) : cJSON_CreateObject());
    admin_free_msg(stored);
    cJSON_AddStringToObject(o, "secret", secret);
    char full[RP_ID_MAX + ADMIN_SECRET_LEN + 2];
    snprintf(full, sizeof full, "%s:%s", id, secret);
    cJSON_AddStringToObject(o, "api_key", full);
    OPENSSL_cleanse(secret, sizeof secret);
    OPENSSL_cleanse(full, sizeof full);
    admin_reply_json(r, 201, o);
}

void admin_key_revoke(admin_req_t *r, const admin_res_t *res, ProtobufCMessage *key)
{
    ProtobufCMessage *m = admin_load_visible(r, res, key, 1);
    if (!m)
        return;
    Roamhub__V1__ApiKey *k = (Roamhub__V1__ApiKey *)m;
    int rc = RH_OK;
    rh_diag_t d = {{0}};
    if (k->revoked_at == 0) {
        k->revoked_at = rh_real_ms();
        rc = admin_table_write(r, TABLE_OP_PUT, RP_KIND_API_KEY, m, RP_PUT_UPDATE, NULL, &d);
    }
    if (rc) {
        admin_free_msg(m);
        admin_reply_error(r, admin_status_of(rc), "%s", d.text);
        return;
    }
    RH_LOG(RH_LOG_INFO, "admin", "api key revoked key=%s by=%s", k->id, r->p.key_id);
    cJSON *o = admin_record_json(RP_KIND_API_KEY, m);
    admin_free_msg(m);
    admin_reply_json(r, 200, o);
}
