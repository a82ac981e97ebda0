/*
 * rp_json.c — JSON <-> roamhub.v1 records, driven by the protobuf-c descriptors (field names are
 * the proto names), with the few special forms of rp_json.h (hex NetIDs, prefixes, EUIs).
 * Uses cJSON; never a home-made parser.
 */
#include "rp_json.h"

#include "rp_internal.h"

#include "lw_netid.h"
#include "rh_hex.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const sections[RP_KIND_COUNT] = {
    "networks", "tenants", "devaddr_blocks", "join_routes",
    "policies", "endpoints", "members", "api_keys",
};

const char *rp_json_section(rp_kind_t k)
{
    return (unsigned)k < RP_KIND_COUNT ? sections[k] : "?";
}

/* ---- record -> JSON ------------------------------------------------------------------------ */

static int is_netid_field(const char *name)
{
    size_t n = strlen(name);
    return strcmp(name, "net_id") == 0 || strcmp(name, "net_ids") == 0 ||
           (n > 7 && strcmp(name + n - 7, "_net_id") == 0) ||
           (n > 8 && strcmp(name + n - 8, "_net_ids") == 0);
}

static int is_eui_field(const char *name)
{
    return strcmp(name, "join_eui") == 0;
}

/* Fields written in a special form (skipped by the generic walk). */
static int special_field(rp_kind_t kind, const char *name)
{
    switch (kind) {
    case RP_KIND_BLOCK: return strcmp(name, "prefix") == 0 || strcmp(name, "length") == 0;
    case RP_KIND_JOIN_ROUTE:
        return strcmp(name, "join_eui_prefix") == 0 || strcmp(name, "join_eui_length") == 0 ||
               strcmp(name, "dev_eui_prefix") == 0 || strcmp(name, "dev_eui_length") == 0;
    case RP_KIND_POLICY:
        return strcmp(name, "has_home") == 0 || strcmp(name, "home_net_id") == 0 ||
               strcmp(name, "home_tenant_id") == 0;
    default: return 0;
    }
}

static cJSON *scalar_to_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    char buf[24];
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v = *(const uint32_t *)p;
        if (is_netid_field(f->name)) {
            lw_netid_format(v, buf, 0);
            return cJSON_CreateString(buf);
        }
        return cJSON_CreateNumber(v);
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: return cJSON_CreateNumber(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        if (is_eui_field(f->name)) {
            rh_eui64_format(v, buf);
            return cJSON_CreateString(buf);
        }
        return cJSON_CreateNumber((double)v);
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: return cJSON_CreateNumber((double)*(const int64_t *)p);
    case PROTOBUF_C_TYPE_BOOL: return cJSON_CreateBool(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_FLOAT: return cJSON_CreateNumber(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE: return cJSON_CreateNumber(*(const double *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
        if (ev)
            return cJSON_CreateString(ev->name);
        return cJSON_CreateNumber(*(const int *)p);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return cJSON_CreateString(s ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *h = malloc(2 * b->len + 1);
        if (!h)
            return NULL;
        rh_hex_encode(b->data, b->len, h, 0);
        cJSON *j = cJSON_CreateString(h);
        free(h);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        if (m)
            return rp_json_from_record(RP_KIND_COUNT, m);
        /* absent sub-message: write its defaults, as a present empty one would be */
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *tmp = calloc(1, sd->sizeof_message);
        if (!tmp)
            return NULL;
        protobuf_c_message_init(sd, tmp);
        cJSON *j = rp_json_from_record(RP_KIND_COUNT, tmp);
        free(tmp);
        return j;
    }
    }
    return NULL;
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    default: return 4;
    }
}

/* kind == RP_KIND_COUNT: a nested message (no special fields). */
cJSON *rp_json_from_record(rp_kind_t kind, const ProtobufCMessage *msg)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    if (!msg)
        return o; /* absent sub-message: all defaults */
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    char buf[40];
    if (kind == RP_KIND_BLOCK) {
        const Roamhub__V1__DevAddrBlock *b = (const void *)msg;
        lw_devaddr_prefix_t p = {b->prefix, (uint8_t)b->length};
        lw_devaddr_prefix_format(p, buf);
        for (char *c = buf; *c; c++)
            if (*c >= 'A' && *c <= 'F')
                *c = (char)(*c - 'A' + 'a');
        cJSON_AddStringToObject(o, "prefix", buf);
    } else if (kind == RP_KIND_JOIN_ROUTE) {
        const Roamhub__V1__JoinRoute *j = (const void *)msg;
        rp__eui_prefix_format(j->join_eui_prefix, j->join_eui_length, buf);
        cJSON_AddStringToObject(o, "join_eui", buf);
        if (j->dev_eui_length || j->dev_eui_prefix) {
            rp__eui_prefix_format(j->dev_eui_prefix, j->dev_eui_length, buf);
            cJSON_AddStringToObject(o, "dev_eui", buf);
        }
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (kind != RP_KIND_COUNT && special_field(kind, f->name))
            continue;
        const void *p = base + f->offset;
        cJSON *j;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)p;
            j = cJSON_CreateArray();
            for (size_t k = 0; j && k < n; k++)
                cJSON_AddItemToArray(j, scalar_to_json(f, arr + k * type_size(f->type)));
        } else {
            j = scalar_to_json(f, p);
        }
        if (j)
            cJSON_AddItemToObject(o, f->name, j);
    }
    if (kind == RP_KIND_POLICY) {
        const Roamhub__V1__RoutingPolicy *pol = (const void *)msg;
        if (pol->has_home) {
            lw_netid_format(pol->home_net_id, buf, 0);
            cJSON_AddStringToObject(o, "home_net_id", buf);
            cJSON_AddStringToObject(o, "home_tenant_id",
                                    pol->home_tenant_id ? pol->home_tenant_id : "");
        }
    }
    return o;
}

/* ---- JSON -> record ------------------------------------------------------------------------ */

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int num_in(const cJSON *j, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(j))
        return 0;
    double v = j->valuedouble;
    if (!(v >= lo && v <= hi) || v != (double)(long long)v)
        return 0;
    *out = v;
    return 1;
}

static int msg_from_json(const ProtobufCMessageDescriptor *d, rp_kind_t kind, const cJSON *obj,
                         const char *path, ProtobufCMessage **out, rh_diag_t *diag);

/* Parses one scalar JSON value into *p (field type f). */
static int scalar_from_json(const ProtobufCFieldDescriptor *f, const cJSON *j, void *p,
                            const char *path, rh_diag_t *diag)
{
    double v;
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (is_netid_field(f->name)) {
            if (!cJSON_IsString(j))
                return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected a NetID string (6 hex "
                                                     "digits)", path, f->name);
            uint32_t id;
            rh_diag_t d2;
            if (lw_netid_parse(j->valuestring, &id, &d2))
                return rh_diag_fail(diag, RH_EINVAL, "%s.%s: %s", path, f->name, d2.text);
            *(uint32_t *)p = id;
            return RH_OK;
        }
        if (!num_in(j, 0, 4294967295.0, &v))
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected an integer 0..4294967295",
                                path, f->name);
        *(uint32_t *)p = (uint32_t)v;
        return RH_OK;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!num_in(j, -2147483648.0, 2147483647.0, &v))
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected a 32-bit integer", path,
                                f->name);
        *(int32_t *)p = (int32_t)v;
        return RH_OK;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (is_eui_field(f->name)) {
            rh_diag_t d2;
            uint64_t e;
            if (!cJSON_IsString(j) || rh_eui64_parse(j->valuestring, &e, &d2))
                return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected an EUI-64 (16 hex digits)",
                                    path, f->name);
            *(uint64_t *)p = e;
            return RH_OK;
        }
        if (!num_in(j, 0, 9007199254740992.0, &v))
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected an integer 0..2^53", path,
                                f->name);
        *(uint64_t *)p = (uint64_t)v;
        return RH_OK;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!num_in(j, -9007199254740992.0, 9007199254740992.0, &v))
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected an integer within +-2^53",
                                path, f->name);
        *(int64_t *)p = (int64_t)v;
        return RH_OK;
    case PROTOBUF_C_TYPE_BOOL:
        if (!cJSON_IsBool(j))
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected true or false", path, f->name);
        *(protobuf_c_boolean *)p = cJSON_IsTrue(j);
        return RH_OK;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev = NULL;
        if (cJSON_IsString(j))
            ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, j->valuestring);
        else if (num_in(j, -2147483648.0, 2147483647.0, &v))
            ev = protobuf_c_enum_descriptor_get_value(f->descriptor, (int)v);
        if (!ev)
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: unknown value", path, f->name);
        *(int *)p = ev->value;
        return RH_OK;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!cJSON_IsString(j))
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected a string", path, f->name);
        char *s = dupstr(j->valuestring);
        if (!s)
            return RH_ENOMEM;
        *(char **)p = s;
        return RH_OK;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (!cJSON_IsString(j))
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected a hex string", path, f->name);
        size_t n = strlen(j->valuestring);
        if (n > 65536)
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s: too long", path, f->name);
        uint8_t *b = malloc(n / 2 + 1);
        if (!b)
            return RH_ENOMEM;
        size_t len;
        rh_diag_t d2;
        if (rh_hex_decode(j->valuestring, n, b, n / 2 + 1, &len, f->name, &d2)) {
            free(b);
            return rh_diag_fail(diag, RH_EINVAL, "%s.%s", path, d2.text);
        }
        ProtobufCBinaryData *bd = p;
        bd->data = b;
        bd->len = len;
        return RH_OK;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        char sub[256];
        snprintf(sub, sizeof sub, "%s.%s", path, f->name);
        return msg_from_json(f->descriptor, RP_KIND_COUNT, j, sub, (ProtobufCMessage **)p, diag);
    }
    default:
        return rh_diag_fail(diag, RH_EINVAL, "%s.%s: unsupported field type", path, f->name);
    }
}

static int special_from_json(rp_kind_t kind, ProtobufCMessage *m, const cJSON *j,
                             const char *path, int *handled, rh_diag_t *diag)
{
    *handled = 1;
    const char *k = j->string;
    rh_diag_t d2;
    if (kind == RP_KIND_BLOCK && strcmp(k, "prefix") == 0) {
        lw_devaddr_prefix_t p;
        if (!cJSON_IsString(j) || lw_devaddr_prefix_parse(j->valuestring, &p, &d2))
            return rh_diag_fail(diag, RH_EINVAL, "%s.prefix: %s", path,
                                cJSON_IsString(j) ? d2.text : "expected \"0a000000/7\"");
        Roamhub__V1__DevAddrBlock *b = (void *)m;
        b->prefix = p.value;
        b->length = p.len;
        return RH_OK;
    }
    if (kind == RP_KIND_JOIN_ROUTE && (strcmp(k, "join_eui") == 0 || strcmp(k, "dev_eui") == 0)) {
        uint64_t v;
        unsigned l;
        char field[300];
        snprintf(field, sizeof field, "%s.%s", path, k);
        if (!cJSON_IsString(j))
            return rh_diag_fail(diag, RH_EINVAL, "%s: expected \"<16 hex digits>/<bits>\"",
                                field);
        int rc = rp__eui_prefix_parse(j->valuestring, &v, &l, field, diag);
        if (rc)
            return rc;
        Roamhub__V1__JoinRoute *r = (void *)m;
        if (k[0] == 'j') {
            r->join_eui_prefix = v;
            r->join_eui_length = l;
        } else {
            r->dev_eui_prefix = v;
            r->dev_eui_length = l;
        }
        return RH_OK;
    }
    if (kind == RP_KIND_POLICY && strcmp(k, "home_net_id") == 0) {
        Roamhub__V1__RoutingPolicy *p = (void *)m;
        uint32_t id;
        if (!cJSON_IsString(j) || lw_netid_parse(j->valuestring, &id, &d2))
            return rh_diag_fail(diag, RH_EINVAL, "%s.home_net_id: %s", path,
                                cJSON_IsString(j) ? d2.text : "expected 6 hex digits");
        p->has_home = 1;
        p->home_net_id = id;
        return RH_OK;
    }
    if (kind == RP_KIND_POLICY && strcmp(k, "home_tenant_id") == 0) {
        Roamhub__V1__RoutingPolicy *p = (void *)m;
        if (!cJSON_IsString(j))
            return rh_diag_fail(diag, RH_EINVAL, "%s.home_tenant_id: expected a string", path);
        char *s = dupstr(j->valuestring);
        if (!s)
            return RH_ENOMEM;
        p->home_tenant_id = s;
        return RH_OK;
    }
    *handled = 0;
    return RH_OK;
}

static int msg_from_json(const ProtobufCMessageDescriptor *d, rp_kind_t kind, const cJSON *obj,
                         const char *path, ProtobufCMessage **out, rh_diag_t *diag)
{
    *out = NULL;
    if (!cJSON_IsObject(obj))
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected an object", path);
    ProtobufCMessage *m = calloc(1, d->sizeof_message);
    if (!m)
        return rh_diag_fail(diag, RH_ENOMEM, "out of memory");
    protobuf_c_message_init(d, m);
    int rc = RH_OK;
    int seen_join = 0, seen_prefix = 0, seen_home_tenant = 0, seen_home = 0;
    const cJSON *j;
    cJSON_ArrayForEach(j, obj)
    {
        if (!j->string)
            continue;
        /* A repeated key would overwrite (and leak) the value stored for the first one; the
         * JSON input policy refuses duplicates before a body gets here, this keeps trees built
         * otherwise safe. Earlier siblings are known fields (an unknown one stopped the loop),
         * so this scan is bounded by the message's field count. */
        for (const cJSON *e = obj->child; e != j && rc == RH_OK; e = e->next)
            if (e->string && strcmp(e->string, j->string) == 0)
                rc = rh_diag_fail(diag, RH_EINVAL, "%s.%s: duplicate field", path, j->string);
        if (rc)
            break;
        if (kind != RP_KIND_COUNT) {
            int handled;
            rc = special_from_json(kind, m, j, path, &handled, diag);
            if (rc)
                break;
            if (handled) {
                seen_join |= strcmp(j->string, "join_eui") == 0;
                seen_prefix |= strcmp(j->string, "prefix") == 0;
                seen_home |= strcmp(j->string, "home_net_id") == 0;
                seen_home_tenant |= strcmp(j->string, "home_tenant_id") == 0;
                continue;
            }
        }
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(d, j->string);
        if (!f || (kind != RP_KIND_COUNT && special_field(kind, f->name))) {
            rc = rh_diag_fail(diag, RH_EINVAL, "%s.%s: unknown field", path, j->string);
            break;
        }
        char *base = (char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!cJSON_IsArray(j)) {
                rc = rh_diag_fail(diag, RH_EINVAL, "%s.%s: expected an array", path, f->name);
                break;
            }
            size_t n = (size_t)cJSON_GetArraySize(j);
            if (n > 4096) {
                rc = rh_diag_fail(diag, RH_EINVAL, "%s.%s: more than 4096 entries", path, f->name);
                break;
            }
            size_t es = type_size(f->type);
            char *arr = calloc(n ? n : 1, es);
            if (!arr) {
                rc = RH_ENOMEM;
                break;
            }
            *(char **)(base + f->offset) = arr;
            size_t *count = (size_t *)(base + f->quantifier_offset);
            const cJSON *e;
            size_t k = 0;
            cJSON_ArrayForEach(e, j)
            {
                rc = scalar_from_json(f, e, arr + k * es, path, diag);
                if (rc)
                    break;
                k++;
                *count = k;
            }
            if (rc)
                break;
        } else {
            rc = scalar_from_json(f, j, base + f->offset, path, diag);
            if (rc)
                break;
        }
    }
    if (rc == RH_OK && kind == RP_KIND_BLOCK && !seen_prefix)
        rc = rh_diag_fail(diag, RH_EINVAL, "%s.prefix: required (\"0a000000/7\")", path);
    if (rc == RH_OK && kind == RP_KIND_JOIN_ROUTE && !seen_join)
        rc = rh_diag_fail(diag, RH_EINVAL, "%s.join_eui: required (\"70b3d57ed0000000/40\")",
                          path);
    if (rc == RH_OK && kind == RP_KIND_POLICY && seen_home_tenant && !seen_home)
        rc = rh_diag_fail(diag, RH_EINVAL,
                          "%s.home_tenant_id: needs home_net_id (a default has no home)", path);
    if (rc) {
        if (rc == RH_ENOMEM)
            rh_diag_fail(diag, RH_ENOMEM, "%s: out of memory", path);
        protobuf_c_message_free_unpacked(m, NULL);
        return rc;
    }
    *out = m;
    return RH_OK;
}

int rp_json_to_record(rp_kind_t kind, const cJSON *obj, const char *path, ProtobufCMessage **out,
                      rh_diag_t *diag)
{
    const ProtobufCMessageDescriptor *d = rp_kind_descriptor(kind);
    if (!d || !out)
        return rh_diag_fail(diag, RH_EINVAL, "record: unknown kind");
    return msg_from_json(d, kind, obj, path ? path : rp_kind_name(kind), out, diag);
}

/* ---- import / export ----------------------------------------------------------------------- */

int rp__import_member_net_id(rp_txn_t *t, const cJSON *v, const char *path, rh_diag_t *diag)
{
    uint32_t id;
    rh_diag_t d2;
    if (!cJSON_IsString(v) || lw_netid_parse(v->valuestring, &id, &d2))
        return rh_diag_fail(diag, RH_EINVAL, "%s: expected 6 hex digits", path);
    return rp_txn_clear_net_id(t, id, diag);
}

int rp__import_record(rp_txn_t *t, rp_kind_t kind, const cJSON *v, const char *path,
                      rh_diag_t *diag)
{
    ProtobufCMessage *m;
    int rc = rp_json_to_record(kind, v, path, &m, diag);
    if (rc)
        return rc;
    rh_diag_t d2;
    rh_diag_clear(&d2);
    rc = rp_txn_put(t, kind, m, RP_PUT_UPSERT, &d2);
    protobuf_c_message_free_unpacked(m, NULL);
    if (rc)
        return rh_diag_fail(diag, rc, "%s: %s", path, d2.text);
    return RH_OK;
}

/* ---- whole documents ----------------------------------------------------------------------- */

int rp_json_import(rp_db_t *db, const char *actor, const cJSON *doc, unsigned flags,
                   size_t *count, rh_diag_t *diag)
{
    if (count)
        *count = 0;
    if (!cJSON_IsObject(doc))
        return rh_diag_fail(diag, RH_EINVAL, "document: expected a JSON object");
    const cJSON *j;
    cJSON_ArrayForEach(j, doc)
    {
        int known = j->string && strcmp(j->string, "member_net_ids") == 0;
        for (int k = 0; k < RP_KIND_COUNT && !known; k++)
            known = j->string && strcmp(j->string, sections[k]) == 0;
        if (!known)
            return rh_diag_fail(diag, RH_EINVAL, "document.%s: unknown section",
                                j->string ? j->string : "?");
        if (!cJSON_IsArray(j))
            return rh_diag_fail(diag, RH_EINVAL, "document.%s: expected an array", j->string);
    }
    rp_txn_t *t;
    int rc = rp_txn_begin(db, actor ? actor : "import", RP_TXN_AUDIT_SUMMARY, &t, diag);
    if (rc)
        return rc;
    if (flags & RP_IMPORT_REPLACE)
        for (int k = 0; k < RP_KIND_COUNT && rc == RH_OK; k++)
            rc = rp_txn_clear(t, (rp_kind_t)k, diag);
    const cJSON *mids = cJSON_GetObjectItemCaseSensitive(doc, "member_net_ids");
    size_t i = 0;
    cJSON_ArrayForEach(j, mids)
    {
        if (rc)
            break;
        char path[64];
        snprintf(path, sizeof path, "member_net_ids[%zu]", i++);
        rc = rp__import_member_net_id(t, j, path, diag);
    }
    size_t n = 0;
    /* Networks first (block containment reads delegated NetIDs), then the rest in kind order. */
    for (int k = 0; k < RP_KIND_COUNT && rc == RH_OK; k++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, sections[k]);
        size_t idx = 0;
        cJSON_ArrayForEach(j, arr)
        {
            char path[64];
            snprintf(path, sizeof path, "%s[%zu]", sections[k], idx++);
            if ((rc = rp__import_record(t, (rp_kind_t)k, j, path, diag)))
                break;
            n++;
        }
    }
    if (rc) {
        rp_txn_abort(t);
        return rc;
    }
    rc = rp_txn_commit(t, diag);
    if (rc == RH_OK && count)
        *count = n;
    return rc;
}

int rp_json_export(rp_db_t *db, cJSON **out, rh_diag_t *diag)
{
    *out = NULL;
    rp_reader_t *r;
    int rc = rp__temp_reader(db, &r, diag);
    if (rc)
        return rc;
    cJSON *doc = cJSON_CreateObject();
    for (int k = 0; doc && k < RP_KIND_COUNT && rc == RH_OK; k++) {
        cJSON *arr = cJSON_AddArrayToObject(doc, sections[k]);
        MDB_cursor *c = rp__reader_cursor(r, k);
        if (!arr || !c) {
            rc = rh_diag_fail(diag, RH_ENOMEM, "export: out of memory");
            break;
        }
        MDB_val key, v;
        int m = mdb_cursor_get(c, &key, &v, MDB_FIRST);
        for (; m == 0; m = mdb_cursor_get(c, &key, &v, MDB_NEXT)) {
            ProtobufCMessage *msg =
                protobuf_c_message_unpack(rp_kind_descriptor((rp_kind_t)k), NULL, v.mv_size,
                                          v.mv_data);
            if (!msg) {
                rc = rh_diag_fail(diag, RH_EIO, "export: a stored %s does not unpack",
                                  rp_kind_name((rp_kind_t)k));
                break;
            }
            cJSON *o = rp_json_from_record((rp_kind_t)k, msg);
            protobuf_c_message_free_unpacked(msg, NULL);
            if (!o) {
                rc = rh_diag_fail(diag, RH_ENOMEM, "export: out of memory");
                break;
            }
            cJSON_AddItemToArray(arr, o);
        }
        if (rc == RH_OK && m != MDB_NOTFOUND)
            rc = rp__lmdb_err(m, diag, "export");
    }
    rp__temp_reader_done(r);
    if (!doc)
        return rh_diag_fail(diag, RH_ENOMEM, "export: out of memory");
    if (rc) {
        cJSON_Delete(doc);
        return rc;
    }
    *out = doc;
    return RH_OK;
}
