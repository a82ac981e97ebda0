/* admin_api.c — the /api/v1/ router, OAuth2 token endpoint and whoami (see admin_internal.h,
 * docs/openapi.yaml). The reply helpers are admin_reply.c; the handlers by area are
 * admin_resources.c, admin_keys.c, admin_views.c, admin_stats.c, admin_capture.c. */
#include "admin_internal.h"

#include "lw_netid.h"
#include "rh_log.h"
#include "rh_time.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* ------------------------------------------------------------------ token endpoint */

/* POST /api/v1/oauth/token (RFC 6749 §4.4): grant_type=client_credentials with client_id and
 * client_secret in the form body, or HTTP Basic authentication. */
static void token_endpoint(admin_req_t *r)
{
    if (strcmp(r->method, "POST")) {
        admin_reply_error(r, 405, "oauth/token: use POST");
        return;
    }
    size_t len;
    const char *body = hs_req_body(r->req, &len);
    char grant[64] = "", id[RP_ID_MAX + 1] = "", secret[300] = "";
    /* form fields */
    const char *p = body;
    while (p && p < body + len) {
        const char *amp = memchr(p, '&', (size_t)(body + len - p));
        size_t n = amp ? (size_t)(amp - p) : (size_t)(body + len - p);
        const char *eq = memchr(p, '=', n);
        if (eq) {
            size_t kl = (size_t)(eq - p), vl = n - kl - 1;
            char *dst = NULL;
            size_t cap = 0;
            if (kl == 10 && !strncmp(p, "grant_type", 10)) {
                dst = grant;
                cap = sizeof grant;
            } else if (kl == 9 && !strncmp(p, "client_id", 9)) {
                dst = id;
                cap = sizeof id;
            } else if (kl == 13 && !strncmp(p, "client_secret", 13)) {
                dst = secret;
                cap = sizeof secret;
            }
            if (dst && admin_pct_decode(eq + 1, vl, dst, cap, 1) != 0) {
                admin_reply_error(r, 400, "oauth/token: malformed form field");
                OPENSSL_cleanse(secret, sizeof secret);
                return;
            }
        }
        p = amp ? amp + 1 : NULL;
    }
    const char *authz = hs_req_header(r->req, "authorization");
    if (authz && !strncasecmp(authz, "Basic ", 6)) {
        unsigned char dec[600];
        const char *b = authz + 6;
        size_t bl = strlen(b);
        int n = bl < 780 ? EVP_DecodeBlock(dec, (const unsigned char *)b, (int)bl) : -1;
        if (n > 0) {
            while (n > 0 && dec[n - 1] == 0 && bl >= 1 && b[bl - 1] == '=') { /* padding */
                n--;
                bl--;
            }
            dec[n] = '\0';
            char *colon = strchr((char *)dec, ':');
            size_t il = colon ? (size_t)(colon - (char *)dec) : 0;
            size_t xl = colon ? strlen(colon + 1) : 0;
            if (colon && il < sizeof id && xl < sizeof secret) {
                memcpy(id, dec, il);
                id[il] = '\0';
                memcpy(secret, colon + 1, xl + 1);
            }
        }
        OPENSSL_cleanse(dec, sizeof dec);
    }
    if (strcmp(grant, "client_credentials") != 0) {
        OPENSSL_cleanse(secret, sizeof secret);
        admin_reply_error(r, 400, "oauth/token: grant_type must be client_credentials");
        return;
    }
    char *token = NULL;
    int64_t exp = 0;
    rh_diag_t d = {{0}};
    int rc = admin_token_exchange(r->a->db, r->a->jwt, id, secret, strlen(secret), r->now_s,
                                  &token, &exp, &d);
    OPENSSL_cleanse(secret, sizeof secret);
    if (rc) {
        RH_LOG(RH_LOG_INFO, "admin", "token refused client=%s remote=%s", id[0] ? id : "-",
               hs_req_peer_addr(r->req));
        admin_reply_error(r, rc == RH_EPERM ? 401 : admin_status_of(rc), "%s", d.text);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "access_token", token);
    cJSON_AddStringToObject(o, "token_type", "Bearer");
    cJSON_AddNumberToObject(o, "expires_in", (double)(exp - r->now_s));
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    admin_reply_json(r, 200, o);
}

static void whoami(admin_req_t *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key_id", r->p.key_id);
    cJSON_AddBoolToObject(o, "operator", r->p.is_operator);
    if (!r->p.is_operator) {
        char n[7];
        lw_netid_format(r->p.net_id, n, 0);
        cJSON_AddStringToObject(o, "net_id", n);
        if (r->p.tenant_id[0])
            cJSON_AddStringToObject(o, "tenant_id", r->p.tenant_id);
    }
    cJSON *rights = cJSON_AddArrayToObject(o, "rights");
    for (int i = 1; i < 32; i++) {
        if (!(r->p.rights & ADMIN_RIGHT(i)))
            continue;
        const ProtobufCEnumValue *v =
            protobuf_c_enum_descriptor_get_value(&roamhub__v1__right__descriptor, i);
        if (v)
            cJSON_AddItemToArray(rights, cJSON_CreateString(v->name));
    }
    admin_reply_json(r, 200, o);
}

/* ------------------------------------------------------------------ router */

void admin_api_handle(admin_api_t *a, hs_req_t *req)
{
    admin_req_t r;
    memset(&r, 0, sizeof r);
    r.a = a;
    r.req = req;
    r.method = hs_req_method(req);
    r.now_s = rh_real_ms() / 1000;
    const char *path = hs_req_path(req) + strlen("/api/v1/");
    snprintf(r.pathbuf, sizeof r.pathbuf, "%s", path);
    if (strlen(path) >= sizeof r.pathbuf) {
        admin_reply_error(&r, 404, "path too long");
        return;
    }
    /* split and percent-decode segments (in place: decoding never grows) */
    char *s = r.pathbuf;
    while (*s) {
        char *slash = strchr(s, '/');
        if (slash)
            *slash = '\0';
        if (*s) {
            if (r.nseg == ADMIN_MAX_SEGS) {
                admin_reply_error(&r, 404, "no such resource");
                return;
            }
            char tmp[1024];
            if (admin_pct_decode(s, strlen(s), tmp, sizeof tmp, 0) != 0) {
                admin_reply_error(&r, 400, "path: malformed percent-encoding");
                return;
            }
            strcpy(s, tmp);
            r.seg[r.nseg++] = s;
        }
        if (!slash)
            break;
        s = slash + 1;
    }
    if (r.nseg == 0) {
        admin_reply_error(&r, 404, "no such resource: see docs/openapi.yaml");
        return;
    }
    if (admin_query_valid(&r))
        return;
    if (r.nseg == 2 && !strcmp(r.seg[0], "oauth") && !strcmp(r.seg[1], "token")) {
        token_endpoint(&r);
        return;
    }
    rh_diag_t d = {{0}};
    int rc = admin_authenticate(a->db, a->jwt, hs_req_header(req, "authorization"), r.now_s,
                                &r.p, &d);
    if (rc) {
        admin_reply_error(&r, rc == RH_EPERM ? 401 : 503, "%s", d.text);
        return;
    }
    const char *top = r.seg[0];
    if (!strcmp(top, "whoami") && r.nseg == 1 && !strcmp(r.method, "GET"))
        whoami(&r);
    else if (!strcmp(top, "stats"))
        admin_stats_handle(&r);
    else if (!strcmp(top, "capture"))
        admin_capture_handle(&r);
    else if (!strcmp(top, "gateways"))
        admin_gateways_handle(&r);
    else if (!strcmp(top, "endpoint-health"))
        admin_health_handle(&r);
    else if (!strcmp(top, "console"))
        admin_console_settings(&r);
    else
        admin_resources_handle(&r);
}
