/* admin_api.c — the /api/v1/ router, reply helpers, OAuth2 token endpoint and whoami
 * (see admin_internal.h, docs/openapi.yaml). */
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

/* ------------------------------------------------------------------ replies */

int admin_accepts_gzip(const admin_req_t *r)
{
    const char *ae = hs_req_header(r->req, "accept-encoding");
    if (!ae)
        return 0;
    const char *g = ae;
    while (*g && strncasecmp(g, "gzip", 4) != 0)
        g++;
    if (!*g)
        return 0;
    /* "gzip;q=0" (or q=0.0...) refuses it */
    const char *q = g + 4;
    while (*q == ' ')
        q++;
    if (*q == ';') {
        q++;
        while (*q == ' ')
            q++;
        if (!strncasecmp(q, "q=0", 3)) {
            const char *t = q + 3;
            if (*t == '.')
                t += 1 + strspn(t + 1, "0");
            if (*t == '\0' || *t == ',' || *t == ' ')
                return 0;
        }
    }
    return 1;
}

int admin_gzip(const void *in, size_t len, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return RH_ENOMEM;
    uLong bound = deflateBound(&z, (uLong)len);
    uint8_t *buf = malloc(bound + 32);
    if (!buf) {
        deflateEnd(&z);
        return RH_ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = buf;
    z.avail_out = (uInt)(bound + 32);
    int zr = deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(buf);
        return RH_ENOMEM;
    }
    *out = buf;
    *outlen = n;
    return RH_OK;
}

void admin_reply_body(admin_req_t *r, int status, const char *ctype, const void *body, size_t len)
{
    char extra[160] = "Cache-Control: no-store\r\n";
    if (status == 401)
        strcat(extra, "WWW-Authenticate: Bearer realm=\"roamhub\"\r\n");
    if (len > 0 && admin_accepts_gzip(r)) {
        uint8_t *z;
        size_t zl;
        if (admin_gzip(body, len, &z, &zl) == RH_OK) {
            strcat(extra, "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n");
            hs_reply_ex(r->req, status, ctype, extra, z, zl);
            free(z);
            r->req = NULL;
            return;
        }
    }
    hs_reply_ex(r->req, status, ctype, extra, body, len);
    r->req = NULL;
}

void admin_reply_json(admin_req_t *r, int status, cJSON *body)
{
    if (status == 204 || !body) {
        cJSON_Delete(body);
        hs_reply_ex(r->req, status, NULL, "Cache-Control: no-store\r\n", NULL, 0);
        r->req = NULL;
        return;
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text) {
        hs_reply(r->req, 503, "text/plain", "out of memory\n", 14);
        r->req = NULL;
        return;
    }
    size_t n = strlen(text);
    text[n] = '\0';
    admin_reply_body(r, status, "application/json", text, n);
    cJSON_free(text);
}

void admin_reply_error(admin_req_t *r, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", status);
    cJSON_AddStringToObject(e, "message", msg);
    admin_reply_json(r, status, o);
}

int admin_status_of(int rc)
{
    switch (rc) {
    case RH_OK: return 200;
    case RH_EINVAL: return 400;
    case RH_ERANGE: return 400;
    case RH_ENOTFOUND: return 404;
    case RH_EEXIST: return 409;
    case RH_EPERM: return 403;
    case RH_EFULL: return 507;
    case RH_EUNSUPPORTED: return 501;
    default: return 503;
    }
}

/* ------------------------------------------------------------------ request parsing */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+n) into out (cap bytes incl. NUL); '+' is a space when plus is set.
 * Refuses %00 and control characters. Returns 0 or -1. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap, int plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7f || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int admin_query(const admin_req_t *r, const char *name, char *out, size_t cap)
{
    const char *q = hs_req_query(r->req);
    size_t nl = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > nl && q[nl] == '=' && !strncmp(q, name, nl))
            return pct_decode(q + nl + 1, len - nl - 1, out, cap, 1) == 0 ? 1 : -1;
        if (len == nl && !strncmp(q, name, nl)) {
            if (cap)
                out[0] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

cJSON *admin_body_json(admin_req_t *r)
{
    size_t len;
    const char *body = hs_req_body(r->req, &len);
    if (len == 0) {
        admin_reply_error(r, 400, "body: expected a JSON object");
        return NULL;
    }
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!o) {
        admin_reply_error(r, 400, "body: not valid JSON (near byte %zu)",
                          end && end >= body ? (size_t)(end - body) : (size_t)0);
        return NULL;
    }
    while (end && (size_t)(end - body) < len && strchr(" \t\r\n", *end))
        end++;
    if (end && (size_t)(end - body) != len) {
        cJSON_Delete(o);
        admin_reply_error(r, 400, "body: trailing data after the JSON value");
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        admin_reply_error(r, 400, "body: expected a JSON object");
        return NULL;
    }
    return o;
}

int admin_scope_net(const admin_principal_t *p, uint32_t n)
{
    return p->is_operator || p->net_id == n;
}

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
            if (dst && pct_decode(eq + 1, vl, dst, cap, 1) != 0) {
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
    int rc = admin_token_exchange(r->a->hub->db, r->a->jwt, id, secret, strlen(secret), r->now_s,
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
            if (pct_decode(s, strlen(s), tmp, sizeof tmp, 0) != 0) {
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
    if (r.nseg == 2 && !strcmp(r.seg[0], "oauth") && !strcmp(r.seg[1], "token")) {
        token_endpoint(&r);
        return;
    }
    rh_diag_t d = {{0}};
    int rc = admin_authenticate(a->hub->db, a->jwt, hs_req_header(req, "authorization"), r.now_s,
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
    else
        admin_resources_handle(&r);
}
