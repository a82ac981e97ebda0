/* pb_auth.c — Packet Broker data-plane tokens (see pb_auth.h). */
#include "pb_auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool pb_auth_key_allowed(const Roamhub__V1__ApiKey *k)
{
    if (!k || k->operator_)
        return false;
    for (size_t i = 0; i < k->n_rights; i++)
        if (k->rights[i] == ROAMHUB__V1__RIGHT__RIGHT_DATA_PLANE ||
            k->rights[i] == ROAMHUB__V1__RIGHT__RIGHT_ADMIN)
            return true;
    return false;
}

void pb_auth_identity_of_key(const Roamhub__V1__ApiKey *k, pb_identity_t *out)
{
    memset(out, 0, sizeof *out);
    out->n = 1;
    out->ns[0].net_id = k->net_id & 0xFFFFFFu;
    snprintf(out->ns[0].tenant, sizeof out->ns[0].tenant, "%s", k->tenant_id ? k->tenant_id : "");
    out->rights = 1u << PB_RIGHT_READ_NETWORK | 1u << PB_RIGHT_READ_TRAFFIC |
                  1u << PB_RIGHT_WRITE_TRAFFIC;
}

int pb_auth_issue(const admin_jwt_t *j, const Roamhub__V1__ApiKey *k, int64_t now_s, char **token,
                  int64_t *exp_s)
{
    *token = NULL;
    pb_identity_t id;
    pb_auth_identity_of_key(k, &id);
    cJSON *claim = pb_claims_to_json(&id);
    cJSON *extra = cJSON_CreateObject();
    if (!claim || !extra || !cJSON_AddItemToObject(extra, PB_CLAIMS_KEY, claim)) {
        if (extra && !cJSON_GetObjectItemCaseSensitive(extra, PB_CLAIMS_KEY))
            cJSON_Delete(claim);
        cJSON_Delete(extra);
        return RH_ENOMEM;
    }
    int rc = admin_jwt_issue_ex(j, k->id, PB_AUTH_AUDIENCE, extra, now_s, token, exp_s);
    cJSON_Delete(extra);
    return rc;
}

int pb_auth_verify(const admin_jwt_t *j, const char *authz, int64_t now_s, pb_identity_t *out,
                   char sub[129], rh_diag_t *d)
{
    memset(out, 0, sizeof *out);
    if (sub)
        sub[0] = '\0';
    if (!j)
        return rh_diag_fail(d, RH_EPERM, "this hub issues no tokens (admin API off)");
    if (!authz || !*authz)
        return rh_diag_fail(d, RH_EPERM, "missing authorization: Bearer token");
    if (strncasecmp(authz, "Bearer ", 7) != 0)
        return rh_diag_fail(d, RH_EPERM, "authorization: expected the Bearer scheme");
    const char *tok = authz + 7;
    admin_jwt_claims_t c;
    cJSON *set = NULL;
    rh_diag_t vd = {{0}};
    int rc = admin_jwt_verify_ex(j, tok, strlen(tok), PB_AUTH_AUDIENCE, now_s, &c, &set, &vd);
    if (rc)
        return rh_diag_fail(d, RH_EPERM, "invalid token: %s", vd.text);
    rh_diag_t cd = {{0}};
    rc = pb_claims_from_json(set, out, &cd);
    cJSON_Delete(set);
    if (rc) {
        memset(out, 0, sizeof *out);
        return rh_diag_fail(d, RH_EPERM, "invalid token: %s", cd.text);
    }
    if (sub)
        snprintf(sub, 129, "%s", c.sub);
    return RH_OK;
}
