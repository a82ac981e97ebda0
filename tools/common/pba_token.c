/*
 * pba_token.c — the agent's token request form and answer (see pba_token.h).
 */
#include "pba_token.h"

#include "rh_json.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Appends s form-encoded; returns the new length. out has room (3 bytes per input byte). */
static size_t form_enc(char *out, size_t n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            out[n++] = (char)ch;
        } else if (ch == ' ') {
            out[n++] = '+';
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    return n;
}

char *pba_token_form(const char *client_id, const char *client_secret, const char *scope,
                    const char *audience)
{
    const char *names[] = {"grant_type", "client_id", "client_secret", "scope", "audience"};
    const char *vals[] = {"client_credentials", client_id ? client_id : "",
                          client_secret ? client_secret : "", scope ? scope : "",
                          audience ? audience : ""};
    size_t cap = 1;
    for (size_t i = 0; i < 5; i++)
        cap += strlen(names[i]) + 2 + 3 * strlen(vals[i]);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < 5; i++) {
        if (i)
            out[n++] = '&';
        memcpy(out + n, names[i], strlen(names[i]));
        n += strlen(names[i]);
        out[n++] = '=';
        n = form_enc(out, n, vals[i]);
    }
    out[n] = 0;
    return out;
}

int pba_token_parse(const char *body, size_t len, char **token, uint64_t *expires_in_s,
                   rh_diag_t *diag)
{
    *token = NULL;
    *expires_in_s = 0;
    int rc = RH_EINVAL;
    cJSON *root = rh_json_parse(body, len, &rh_json_limits_admin, &rc, diag);
    if (!root)
        return rc;
    rc = RH_EINVAL;
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(root, "access_token");
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(root, "token_type");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(root, "expires_in");
    if (!cJSON_IsObject(root)) {
        rh_diag_fail(diag, rc, "token answer: expected a JSON object");
    } else if (!cJSON_IsString(at) || !at->valuestring[0]) {
        rh_diag_fail(diag, rc, "access_token: missing or not a non-empty string");
    } else if (!cJSON_IsString(tt) || strcasecmp(tt->valuestring, "bearer") != 0) {
        rh_diag_fail(diag, rc, "token_type: expected \"bearer\"");
    } else if (ex && !cJSON_IsNull(ex) &&
               (!cJSON_IsNumber(ex) || ex->valuedouble < 0 || ex->valuedouble > 1e9)) {
        rh_diag_fail(diag, rc, "expires_in: expected a number of seconds");
    } else if (!(*token = strdup(at->valuestring))) {
        rc = rh_diag_fail(diag, RH_ENOMEM, "access_token: out of memory");
    } else {
        *expires_in_s = cJSON_IsNumber(ex) ? (uint64_t)ex->valuedouble : 0;
        rc = RH_OK;
    }
    cJSON_Delete(root);
    return rc;
}

