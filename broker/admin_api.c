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

/* An RFC 6749 §5.2 error response of the token endpoint: {"error": code, "error_description":
 * text}, no-store; a 401 (invalid_client) carries WWW-Authenticate: Basic, the HTTP
 * authentication scheme the endpoint accepts besides the form fields. */
static void oauth_error(admin_req_t *r, int status, const char *code, const char *desc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", code);
    cJSON_AddStringToObject(o, "error_description", desc);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    const char *extra = status == 401 ? "Cache-Control: no-store\r\nPragma: no-cache\r\n"
                                        "WWW-Authenticate: Basic realm=\"roamhub\"\r\n"
                                      : "Cache-Control: no-store\r\nPragma: no-cache\r\n";
    if (!text) {
        hs_reply(r->req, 503, "text/plain", "out of memory\n", 14);
    } else {
        hs_reply_ex(r->req, status, "application/json", extra, text, strlen(text));
        cJSON_free(text);
    }
    r->req = NULL;
}

/* POST /api/v1/oauth/token (RFC 6749 §4.4): grant_type=client_credentials with client_id and
 * client_secret in the form body, or HTTP Basic authentication. Errors per §5.2:
 * invalid_request (not a form, malformed or missing field), unsupported_grant_type,
 * invalid_client (401: unknown, revoked or wrong key). */
static void token_endpoint(admin_req_t *r)
{
    if (!admin_content_type_is(r, "application/x-www-form-urlencoded")) {
        oauth_error(r, 415, "invalid_request",
                    "Content-Type: expected application/x-www-form-urlencoded");
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
                oauth_error(r, 400, "invalid_request", "oauth/token: malformed form field");
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
        if (grant[0])
            oauth_error(r, 400, "unsupported_grant_type",
                        "grant_type: only client_credentials is supported");
        else
            oauth_error(r, 400, "invalid_request", "grant_type: missing");
        return;
    }
    if (!id[0]) {
        OPENSSL_cleanse(secret, sizeof secret);
        oauth_error(r, 401, "invalid_client",
                    "client authentication: client_id and client_secret, or HTTP Basic");
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
        if (rc == RH_EPERM)
            oauth_error(r, 401, "invalid_client", d.text);
        else if (rc == RH_EUNSUPPORTED)
            oauth_error(r, 501, "unsupported_grant_type", d.text);
        else
            admin_reply_error(r, admin_status_of(rc), "%s", d.text);
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

/* The methods each path shape allows (docs/openapi.yaml): fixed endpoints by name, the record
 * collections (GET lists, POST creates) and their items (GET, PUT, DELETE; keys: GET, DELETE). */
static const struct route {
    const char *seg0, *seg1; /* seg1 NULL: a one-segment path */
    const char *allow;
} fixed_routes[] = {
    {"oauth", "token", "POST"},    {"whoami", NULL, "GET"},  {"catalog", NULL, "GET"},
    {"routes", NULL, "GET"},       {"audit", NULL, "GET"},   {"stats", NULL, "GET"},
    {"capture", NULL, "GET"},      {"import", NULL, "POST"}, {"policies", "effective", "GET"},
    {"gateways", NULL, "GET"},     {"endpoint-health", NULL, "GET"}, {"console", NULL, "GET"},
};

static const struct route *fixed_route(const admin_req_t *r)
{
    for (size_t i = 0; i < sizeof fixed_routes / sizeof fixed_routes[0]; i++) {
        const struct route *f = &fixed_routes[i];
        if (r->nseg == (f->seg1 ? 2 : 1) && !strcmp(r->seg[0], f->seg0) &&
            (!f->seg1 || !strcmp(r->seg[1], f->seg1)))
            return f;
    }
    return NULL;
}

/* The methods r's path allows (a 405's Allow header, "GET, POST"). */
static const char *allow_of(const admin_req_t *r)
{
    const struct route *f = fixed_route(r);
    if (f)
        return f->allow;
    if (r->nseg == 1)
        return "GET, POST";
    if (r->nseg > 1 && !strcmp(r->seg[0], "keys"))
        return "GET, DELETE";
    return "GET, PUT, DELETE";
}

/* Whether the method is in the comma-separated list. */
static int method_allowed(const char *allow, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)) != NULL; p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

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
    r.allow = allow_of(&r); /* a 405's Allow header (admin_reply_body) */
    const struct route *fixed = fixed_route(&r);
    if (fixed && !method_allowed(fixed->allow, r.method)) {
        admin_reply_error(&r, 405, "%s%s%s: use %s", r.seg[0], r.nseg > 1 ? "/" : "",
                          r.nseg > 1 ? r.seg[1] : "", fixed->allow);
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
