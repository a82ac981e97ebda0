/* admin_reply.c — the admin API's request and reply helpers (see admin_internal.h): JSON replies
 * and errors of one shape, gzip when accepted, HTTP status of storage errors, query parameters
 * and the JSON body. Used by the router and every handler; calls none of them. */
#include "admin_internal.h"

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
int admin_pct_decode(const char *s, size_t n, char *out, size_t cap, int plus)
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

cJSON *admin_body_json(admin_req_t *r)
{
    size_t len;
    const char *body = hs_req_body(r->req, &len);
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
