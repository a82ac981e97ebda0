/* admin_reply.c — the admin API's request and reply helpers (see admin_internal.h): JSON replies
 * and errors of one shape, gzip when accepted, HTTP status of storage errors, query parameters
 * and the JSON body. Used by the router and every handler; calls none of them. */
#include "admin_internal.h"

#include "rh_hex.h"
#include "rh_json.h"

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
    char extra[1400] = "Cache-Control: no-store\r\n";
    if (status == 401)
        strcat(extra, "WWW-Authenticate: Bearer realm=\"roamhub\"\r\n");
    if (status == 405) {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "Allow: %s\r\n", r->allow ? r->allow : "GET");
    }
    if (status == 201 && r->location[0]) {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof extra - n, "Location: %s\r\n", r->location);
    }
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

/* Appends `lead` (a character, 0 for none) and s percent-encoded (RFC 3986 unreserved kept, so
 * nothing from a record can break the header) to out. */
static void loc_append(char *out, size_t cap, char lead, const char *s)
{
    size_t n = strlen(out);
    if (lead && n + 1 < cap)
        out[n++] = lead;
    for (; *s && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c)) {
            out[n++] = (char)c;
        } else {
            snprintf(out + n, cap - n, "%%%02X", c);
            n += 3;
        }
    }
    out[n] = '\0';
}

/* Appends "/" and the percent-encoded segment s. */
static void loc_add(char *out, size_t cap, const char *s) { loc_append(out, cap, '/', s); }

/* A "prefix/len" value as two segments. */
static void loc_add_prefix(char *out, size_t cap, const char *v)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s", v);
    char *slash = strchr(tmp, '/');
    if (slash)
        *slash = '\0';
    loc_add(out, cap, tmp);
    if (slash)
        loc_add(out, cap, slash + 1);
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Location of a record created by POST /api/v1/<collection> (RFC 9110 §15.3.2), from the
 * record's key fields in the response body; a PUT that created names its own path. */
static void set_location(admin_req_t *r, const cJSON *body)
{
    char loc[sizeof r->location];
    snprintf(loc, sizeof loc, "/api/v1");
    if (strcmp(r->method, "POST") != 0) {
        for (int i = 0; i < r->nseg; i++)
            loc_add(loc, sizeof loc, r->seg[i]);
        snprintf(r->location, sizeof r->location, "%s", loc);
        return;
    }
    const char *c = r->nseg ? r->seg[0] : "";
    const cJSON *rec = body;
    if (!strcmp(c, "keys"))
        rec = cJSON_GetObjectItemCaseSensitive(body, "key");
    loc_add(loc, sizeof loc, c);
    const char *a = NULL;
    if (!strcmp(c, "networks") && (a = jstr(rec, "net_id"))) {
        loc_add(loc, sizeof loc, a);
    } else if (!strcmp(c, "tenants") && (a = jstr(rec, "net_id")) && jstr(rec, "tenant_id")) {
        loc_add(loc, sizeof loc, a);
        loc_add(loc, sizeof loc, jstr(rec, "tenant_id"));
    } else if (!strcmp(c, "devaddr-blocks") && (a = jstr(rec, "prefix"))) {
        loc_add_prefix(loc, sizeof loc, a);
    } else if (!strcmp(c, "join-routes") && (a = jstr(rec, "join_eui"))) {
        loc_add_prefix(loc, sizeof loc, a);
        if (jstr(rec, "dev_eui"))
            loc_add_prefix(loc, sizeof loc, jstr(rec, "dev_eui"));
    } else if (!strcmp(c, "policies") && (a = jstr(rec, "forwarder_net_id"))) {
        loc_add(loc, sizeof loc, a);
        loc_add(loc, sizeof loc, jstr(rec, "home_net_id") ? jstr(rec, "home_net_id") : "default");
        const char *ft = jstr(rec, "forwarder_tenant_id"), *ht = jstr(rec, "home_tenant_id");
        if (ft && *ft) {
            loc_append(loc, sizeof loc, '?', "");
            strncat(loc, "forwarder_tenant_id", sizeof loc - strlen(loc) - 1);
            loc_append(loc, sizeof loc, '=', ft);
        }
        if (ht && *ht) {
            loc_append(loc, sizeof loc, ft && *ft ? '&' : '?', "");
            strncat(loc, "home_tenant_id", sizeof loc - strlen(loc) - 1);
            loc_append(loc, sizeof loc, '=', ht);
        }
    } else if ((a = jstr(rec, "id"))) {
        loc_add(loc, sizeof loc, a);
    } else {
        return; /* no key fields: no Location */
    }
    snprintf(r->location, sizeof r->location, "%s", loc);
}

void admin_reply_json(admin_req_t *r, int status, cJSON *body)
{
    if (status == 201)
        set_location(r, body);
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

void admin_reply_busy(admin_req_t *r, const char *why)
{
    char body[600];
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddNumberToObject(e, "code", 503);
    cJSON_AddStringToObject(e, "message", why);
    if (!e || !cJSON_PrintPreallocated(o, body, sizeof body, 0))
        snprintf(body, sizeof body, "{\"error\":{\"code\":503,\"message\":\"busy\"}}");
    cJSON_Delete(o);
    hs_reply_ex(r->req, 503, "application/json", "Retry-After: 1\r\n", body, strlen(body));
    r->req = NULL;
}

int admin_status_of(int rc)
{
    switch (rc) {
    case RH_OK:
        return 200;
    case RH_EINVAL:
        return 400;
    case RH_ERANGE:
        return 400;
    case RH_ENOTFOUND:
        return 404;
    case RH_EEXIST:
        return 409;
    case RH_EPERM:
        return 403;
    case RH_EFULL:
        return 507;
    case RH_EUNSUPPORTED:
        return 501;
    default:
        return 503;
    }
}

/* ------------------------------------------------------------------ request parsing */

/* Percent-decodes [s, s+n) into out (cap bytes incl. NUL); '+' is a space when plus is set.
 * Refuses %00 and control characters. Returns 0 or -1. */
int admin_pct_decode(const char *s, size_t n, char *out, size_t cap, int plus)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = rh_hex_nibble(s[i + 1]), l = rh_hex_nibble(s[i + 2]);
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
            return admin_pct_decode(q + nl + 1, len - nl - 1, out, cap, 1) == 0 ? 1 : -1;
        if (len == nl && !strncmp(q, name, nl)) {
            if (cap)
                out[0] = '\0';
            return 1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

int admin_query_bool(admin_req_t *r, const char *name, int *out)
{
    char b[8];
    int q = admin_query(r, name, b, sizeof b);
    if (q == 0)
        return 0;
    if (q == 1 && !strcmp(b, "true")) {
        *out = 1;
        return 1;
    }
    if (q == 1 && !strcmp(b, "false")) {
        *out = 0;
        return 1;
    }
    admin_reply_error(r, 400, "%s: expected true or false", name);
    return -1;
}

int admin_query_valid(admin_req_t *r)
{
    const char *q = hs_req_query(r->req);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        size_t nl = eq ? (size_t)(eq - q) : len;
        char name[64], value[1024];
        if (admin_pct_decode(q, nl, name, sizeof name, 1) != 0) {
            admin_reply_error(r, 400,
                              "query: a parameter name is malformed (percent-encoding, "
                              "control character or longer than 63 bytes)");
            return -1;
        }
        if (eq && admin_pct_decode(eq + 1, len - nl - 1, value, sizeof value, 1) != 0) {
            admin_reply_error(r, 400,
                              "%s: malformed value (percent-encoding, %%00 or control "
                              "character, or longer than 1023 bytes)",
                              name);
            return -1;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* Whether the request's Content-Type is the media type `type` (case-insensitive, parameters
 * such as charset allowed). */
int admin_content_type_is(const admin_req_t *r, const char *type)
{
    const char *ct = hs_req_header(r->req, "content-type");
    size_t n = strlen(type);
    if (!ct || strncasecmp(ct, type, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

cJSON *admin_body_json(admin_req_t *r)
{
    size_t len;
    const char *body = hs_req_body(r->req, &len);
    if (!admin_content_type_is(r, "application/json")) {
        admin_reply_error(r, 415, "Content-Type: expected application/json");
        return NULL;
    }
    if (len == 0) {
        admin_reply_error(r, 400, "body: expected a JSON object");
        return NULL;
    }
    /* the JSON input policy (rh_json.h): UTF-8, no duplicate key, no NUL, bounded */
    rh_diag_t d;
    int err = 0;
    cJSON *o = rh_json_parse(body, len, &rh_json_limits_admin, &err, &d);
    if (!o) {
        admin_reply_error(r, err == RH_ENOMEM ? 503 : 400, "%s", d.text);
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        admin_reply_error(r, 400, "body: expected a JSON object");
        return NULL;
    }
    return o;
}
