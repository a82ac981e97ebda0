/*
 * rp_import.c — streaming import of the JSON table (rp_json.h format) from a seekable file,
 * with memory bounded by the largest record, not by the document.
 *
 * The document is read twice through a 64 KiB buffer. Pass 1 checks its outline (one object
 * whose members are known sections holding arrays, nothing after it) and notes where each
 * section's array starts. Pass 2 imports member_net_ids first and then the sections in kind
 * order (networks before blocks: block containment reads delegated NetIDs), whatever their
 * order in the file, so the result equals rp_json_import's on the parsed document. Only the
 * outline is scanned here: strings (with escapes) and bracket depth, to find where each value
 * ends; every record and section name goes through the JSON input policy (rh_json_parse with
 * rh_json_limits_import: UTF-8, no duplicate key, no \u0000, bounded) and cJSON, one at a time,
 * and is freed before the next. Everything is one write transaction without the operation log (RP_TXN_NO_OP_LOG): when
 * the LMDB map must grow, the transaction is aborted, the map grown and the file imported again
 * from the start, so nothing proportional to the document is kept in memory by this code (LMDB
 * itself holds the transaction's dirty pages until the commit, spilling beyond 512 MiB).
 */
#include "rp_json.h"

#include "rp_internal.h"

#include "lw_netid.h"
#include "rh_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define RD_BUF (64 * 1024)
#define KEY_MAX 256

typedef struct rd {
    FILE *f;
    unsigned char buf[RD_BUF];
    size_t pos, len;
    off_t off; /* file offset of buf[0] */
    int err;
} rd_t;

static int rd_fill(rd_t *r)
{
    r->off += (off_t)r->len;
    r->pos = 0;
    r->len = fread(r->buf, 1, sizeof r->buf, r->f);
    if (r->len == 0 && ferror(r->f))
        r->err = errno ? errno : EIO;
    return r->len > 0;
}

static int rd_peek(rd_t *r)
{
    if (r->pos == r->len && !rd_fill(r))
        return -1;
    return r->buf[r->pos];
}

static int rd_get(rd_t *r)
{
    int c = rd_peek(r);
    if (c >= 0)
        r->pos++;
    return c;
}

static off_t rd_tell(const rd_t *r)
{
    return r->off + (off_t)r->pos;
}

static int rd_seek(rd_t *r, off_t off)
{
    if (fseeko(r->f, off, SEEK_SET) != 0)
        return -1;
    r->off = off;
    r->pos = r->len = 0;
    return 0;
}

static int skip_ws(rd_t *r)
{
    int c;
    while ((c = rd_peek(r)) == ' ' || c == '\t' || c == '\n' || c == '\r')
        r->pos++;
    return c;
}

/* Growable capture buffer with a hard limit. */
typedef struct cap {
    char *p;
    size_t n, cap, max;
} cap_t;

static int cap_put(cap_t *c, int ch)
{
    if (!c)
        return 0;
    if (c->n + 2 > c->cap) {
        if (c->cap >= c->max)
            return -1;
        size_t nc = c->cap ? c->cap * 2 : 4096;
        if (nc > c->max)
            nc = c->max;
        char *np = realloc(c->p, nc);
        if (!np)
            return -2;
        c->p = np;
        c->cap = nc;
    }
    c->p[c->n++] = (char)ch;
    return 0;
}

static int syntax(rd_t *r, rh_diag_t *diag, const char *where, const char *what)
{
    if (r->err)
        return rh_diag_fail(diag, RH_EIO, "%s: read error: %s", where, strerror(r->err));
    return rh_diag_fail(diag, RH_EINVAL, "%s: byte %lld: %s", where, (long long)rd_tell(r), what);
}

/* Scans one JSON value starting at the current byte (after whitespace), appending its bytes to
 * out (NULL: skip). Only finds where the value ends; cJSON judges it. Errors: RH_EINVAL (end
 * of file inside the value, value larger than out->max), RH_ENOMEM, RH_EIO. */
static int scan_value(rd_t *r, cap_t *out, const char *where, rh_diag_t *diag)
{
    int c = skip_ws(r);
    if (c < 0)
        return syntax(r, diag, where, "unexpected end of the document");
    int depth = 0, in_str = 0, esc = 0, scalar = c != '{' && c != '[' && c != '"';
    for (;;) {
        c = rd_peek(r);
        if (c < 0) {
            if (scalar && depth == 0)
                return RH_OK;
            return syntax(r, diag, where, "unexpected end of the document");
        }
        if (scalar && (c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\n' ||
                       c == '\r'))
            return RH_OK;
        r->pos++;
        int rc = cap_put(out, c);
        if (rc == -1)
            return rh_diag_fail(diag, RH_EINVAL, "%s: larger than %zu bytes", where,
                                out->max - 1);
        if (rc)
            return rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", where);
        if (scalar)
            continue;
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"') {
                in_str = 0;
                if (depth == 0)
                    return RH_OK; /* a top-level string value */
            }
            continue;
        }
        if (c == '"')
            in_str = 1;
        else if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return RH_OK;
        else if (depth < 0)
            return syntax(r, diag, where, "unbalanced brackets");
    }
}

/* Section positions found by pass 1: the offset of each array's '[' (-1: absent). */
typedef struct outline {
    off_t at[RP_KIND_COUNT + 1]; /* RP_KIND_COUNT: member_net_ids */
} outline_t;

static cJSON *parse_value(const cap_t *buf, const char *path, int *err, rh_diag_t *diag);

static int pass1(rd_t *r, outline_t *o, rh_diag_t *diag)
{
    for (int k = 0; k <= RP_KIND_COUNT; k++)
        o->at[k] = -1;
    if (rd_seek(r, 0))
        return rh_diag_fail(diag, RH_EIO, "document: cannot seek: %s", strerror(errno));
    if (skip_ws(r) != '{')
        return syntax(r, diag, "document", "expected a JSON object");
    r->pos++;
    if (skip_ws(r) == '}') {
        r->pos++;
    } else {
        cap_t key = {NULL, 0, 0, KEY_MAX + 3};
        int rc = RH_OK;
        for (;;) {
            if (skip_ws(r) != '"') {
                rc = syntax(r, diag, "document", "expected a section name");
                break;
            }
            key.n = 0;
            if ((rc = scan_value(r, &key, "document: section name", diag)))
                break;
            cJSON *name = parse_value(&key, "document: section name", &rc, diag);
            if (!name)
                break;
            if (!cJSON_IsString(name)) {
                cJSON_Delete(name);
                rc = syntax(r, diag, "document", "section name is not a JSON string");
                break;
            }
            int k = RP_KIND_COUNT + 1;
            if (strcmp(name->valuestring, "member_net_ids") == 0)
                k = RP_KIND_COUNT;
            for (int i = 0; i < RP_KIND_COUNT && k > RP_KIND_COUNT; i++)
                if (strcmp(name->valuestring, rp_json_section((rp_kind_t)i)) == 0)
                    k = i;
            char sec[KEY_MAX + 16];
            snprintf(sec, sizeof sec, "document.%s", name->valuestring);
            cJSON_Delete(name);
            if (k > RP_KIND_COUNT) {
                rc = rh_diag_fail(diag, RH_EINVAL, "%s: unknown section", sec);
                break;
            }
            if (o->at[k] >= 0) {
                rc = rh_diag_fail(diag, RH_EINVAL, "%s: section appears twice", sec);
                break;
            }
            if (skip_ws(r) != ':') {
                rc = syntax(r, diag, sec, "expected ':'");
                break;
            }
            r->pos++;
            if (skip_ws(r) != '[') {
                rc = rh_diag_fail(diag, RH_EINVAL, "%s: expected an array", sec);
                break;
            }
            o->at[k] = rd_tell(r);
            if ((rc = scan_value(r, NULL, sec, diag)))
                break;
            int c = skip_ws(r);
            if (c != ',' && c != '}') {
                rc = syntax(r, diag, sec, "expected ',' or '}' after the section");
                break;
            }
            r->pos++;
            if (c == '}')
                break;
        }
        free(key.p);
        if (rc)
            return rc;
    }
    if (skip_ws(r) >= 0)
        return syntax(r, diag, "document", "data after the end of the object");
    return r->err ? syntax(r, diag, "document", "") : RH_OK;
}

/* One value through the JSON input policy; a refusal is named by `path` ("networks[3].name:
 * invalid UTF-8 ..."). NULL with diag set on failure. */
static cJSON *parse_value(const cap_t *buf, const char *path, int *err, rh_diag_t *diag)
{
    rh_diag_t jd;
    rh_diag_clear(&jd);
    int e = RH_EINVAL;
    cJSON *v = buf->n ? rh_json_parse(buf->p, buf->n, &rh_json_limits_import, &e, &jd) : NULL;
    if (v)
        return v;
    const char *t = jd.text;
    if (strncmp(t, "body", 4) == 0)
        t += 4;
    else if (!buf->n)
        t = ": not valid JSON (empty)";
    *err = e == RH_ENOMEM ? RH_ENOMEM : RH_EINVAL;
    /* the policy names fields relative to the value ("name: invalid UTF-8 ..."): join them to
     * the element's path */
    const char *sep = t[0] == ':' || t[0] == '.' || t[0] == '[' ? "" :
                      ((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z') || t[0] == '_')
                          ? "." : ": ";
    rh_diag_fail(diag, *err, "%s%s%s", path, sep, t);
    return NULL;
}

typedef int (*elem_fn)(void *ud, const cJSON *v, const char *path, rh_diag_t *diag);

/* Pass 2 over one section: each element parsed alone and handed to fn. */
static int each_element(rd_t *r, off_t at, int kind, cap_t *buf, elem_fn fn, void *ud,
                        rh_diag_t *diag)
{
    const char *sec = kind == RP_KIND_COUNT ? "member_net_ids" : rp_json_section((rp_kind_t)kind);
    if (rd_seek(r, at) || rd_get(r) != '[')
        return rh_diag_fail(diag, RH_EIO, "%s: the file changed while importing", sec);
    if (skip_ws(r) == ']')
        return RH_OK;
    for (size_t i = 0;; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s[%zu]", sec, i);
        buf->n = 0;
        int rc = scan_value(r, buf, path, diag);
        if (rc)
            return rc;
        cJSON *v = parse_value(buf, path, &rc, diag);
        if (!v)
            return rc;
        rc = fn(ud, v, path, diag);
        cJSON_Delete(v);
        if (rc)
            return rc;
        int c = skip_ws(r);
        if (c != ',' && c != ']')
            return syntax(r, diag, path, "expected ',' or ']' after the element");
        r->pos++;
        if (c == ']')
            return RH_OK;
    }
}

typedef struct imp {
    rp_txn_t *t;
    rp_kind_t kind;
    size_t n;
} imp_t;

static int on_net_id(void *ud, const cJSON *v, const char *path, rh_diag_t *diag)
{
    imp_t *im = ud;
    return rp__import_member_net_id(im->t, v, path, diag);
}

static int on_record(void *ud, const cJSON *v, const char *path, rh_diag_t *diag)
{
    imp_t *im = ud;
    int rc = rp__import_record(im->t, im->kind, v, path, diag);
    if (rc == RH_OK)
        im->n++;
    return rc;
}

/* One attempt: RH_EAGAIN when the map was grown and the import must start again. */
static int attempt(rp_db_t *db, const char *actor, rd_t *r, const outline_t *o, unsigned flags,
                   size_t *count, rh_diag_t *diag)
{
    rp_txn_t *t;
    int rc = rp_txn_begin(db, actor ? actor : "import", RP_TXN_AUDIT_SUMMARY | RP_TXN_NO_OP_LOG,
                          &t, diag);
    if (rc)
        return rc;
    if (flags & RP_IMPORT_REPLACE)
        for (int k = 0; k < RP_KIND_COUNT && rc == RH_OK; k++)
            rc = rp_txn_clear(t, (rp_kind_t)k, diag);
    cap_t buf = {NULL, 0, 0, RP_IMPORT_RECORD_MAX + 1};
    imp_t im = {t, 0, 0};
    if (rc == RH_OK && o->at[RP_KIND_COUNT] >= 0)
        rc = each_element(r, o->at[RP_KIND_COUNT], RP_KIND_COUNT, &buf, on_net_id, &im, diag);
    for (int k = 0; k < RP_KIND_COUNT && rc == RH_OK; k++) {
        if (o->at[k] < 0)
            continue;
        im.kind = (rp_kind_t)k;
        rc = each_element(r, o->at[k], k, &buf, on_record, &im, diag);
    }
    free(buf.p);
    if (rc) {
        rp_txn_abort(t);
        return rc;
    }
    rc = rp_txn_commit(t, diag);
    if (rc == RH_OK)
        *count = im.n;
    return rc;
}

int rp_json_import_file(rp_db_t *db, const char *actor, FILE *f, unsigned flags, size_t *count,
                        rh_diag_t *diag)
{
    if (count)
        *count = 0;
    if (!db || !f)
        return rh_diag_fail(diag, RH_EINVAL, "rp_json_import_file: db and file are required");
    rd_t *r = calloc(1, sizeof *r);
    if (!r)
        return rh_diag_fail(diag, RH_ENOMEM, "import: out of memory");
    r->f = f;
    outline_t o;
    int rc = pass1(r, &o, diag);
    size_t n = 0;
    for (int tries = 0; rc == RH_OK; tries++) {
        rh_diag_t d2;
        rh_diag_clear(&d2);
        rc = attempt(db, actor, r, &o, flags, &n, &d2);
        if (rc == RH_EAGAIN && tries < 16) {
            rc = RH_OK; /* the map grew: import again from the start */
            continue;
        }
        if (rc)
            rh_diag_fail(diag, rc, "%s", d2.text);
        break;
    }
    free(r);
    if (rc == RH_OK && count)
        *count = n;
    return rc;
}
