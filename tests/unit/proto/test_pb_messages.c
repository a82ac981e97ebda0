/*
 * test_pb_messages.c — wire compatibility of roamhub's Packet Broker schema
 * (proto/packetbroker/{v3,routing_v1}.proto) with the public one.
 *
 * ../shared/vectors/pb_messages.json holds messages encoded with Python classes generated from
 * the public packetbroker/api schema, each with its `json` (MessageToDict: proto field names,
 * default values left out, bytes base64, 64-bit integers as strings, enums by name, well-known
 * types in their JSON forms). For every vector of an org.packetbroker.* type this test
 *   1. decodes the bytes with the project's generated protobuf-c code;
 *   2. renders the decoded message the way MessageToDict does, from the protobuf-c descriptors
 *      only (so a wrong field number, wire type, enum value or message nesting shows up as a
 *      missing, extra or different field), and requires it to equal `json` exactly;
 *   3. re-encodes it and requires the bytes to decode to the same JSON again, and — since both
 *      encoders write fields in field-number order — to equal the vector's bytes.
 * Any vector of a type the test does not know fails the test rather than being skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "packetbroker/routing_v1.pb-c.h"
#include "packetbroker/v3.pb-c.h"
#include "rh_test.h"

/* Message types the vectors use, looked up by full name. */
static const ProtobufCMessageDescriptor *const known_types[] = {
  &org__packetbroker__routing__v1__publish_uplink_message_request__descriptor,
  &org__packetbroker__routing__v1__publish_uplink_message_response__descriptor,
  &org__packetbroker__routing__v1__publish_downlink_message_request__descriptor,
  &org__packetbroker__routing__v1__publish_downlink_message_response__descriptor,
  &org__packetbroker__routing__v1__subscribe_forwarder_request__descriptor,
  &org__packetbroker__routing__v1__subscribe_home_network_request__descriptor,
  &org__packetbroker__routing__v1__uplink_message_delivery_state_change_request__descriptor,
  &org__packetbroker__routing__v1__downlink_message_delivery_state_change_request__descriptor,
  &org__packetbroker__v3__routed_uplink_message__descriptor,
  &org__packetbroker__v3__routed_downlink_message__descriptor,
};

static const ProtobufCMessageDescriptor *find_type(const char *name)
{
  for (size_t i = 0; i < sizeof known_types / sizeof known_types[0]; i++)
    if (strcmp(known_types[i]->name, name) == 0)
      return known_types[i];
  return NULL;
}

/* ---- MessageToDict, from descriptors ---- */

static cJSON *msg_to_json(const ProtobufCMessage *m);

static cJSON *u64_str(uint64_t v)
{
  char b[24];
  snprintf(b, sizeof b, "%llu", (unsigned long long)v);
  return cJSON_CreateString(b);
}

static cJSON *i64_str(int64_t v)
{
  char b[24];
  snprintf(b, sizeof b, "%lld", (long long)v);
  return cJSON_CreateString(b);
}

static cJSON *bytes_b64(const ProtobufCBinaryData *bd)
{
  size_t cap = 4 * ((bd->len + 2) / 3) + 1;
  char *out = malloc(cap);
  assert_non_null(out);
  EVP_EncodeBlock((unsigned char *)out, bd->data, (int)bd->len);
  cJSON *s = cJSON_CreateString(out);
  free(out);
  return s;
}

/* Fraction as protobuf's JSON does: 0, 3, 6 or 9 digits. */
static void fraction(char *b, size_t cap, int32_t nanos)
{
  if (nanos == 0)
    b[0] = '\0';
  else if (nanos % 1000000 == 0)
    snprintf(b, cap, ".%03d", nanos / 1000000);
  else if (nanos % 1000 == 0)
    snprintf(b, cap, ".%06d", nanos / 1000);
  else
    snprintf(b, cap, ".%09d", nanos);
}

/* One value of field f at p (pointer to the member, or to one element of a repeated member). */
static cJSON *value_to_json(const ProtobufCFieldDescriptor *f, const void *p)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return cJSON_CreateNumber(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return cJSON_CreateNumber(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return i64_str(*(const int64_t *)p);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return u64_str(*(const uint64_t *)p);
  case PROTOBUF_C_TYPE_FLOAT:
    return cJSON_CreateNumber(*(const float *)p);
  case PROTOBUF_C_TYPE_DOUBLE:
    return cJSON_CreateNumber(*(const double *)p);
  case PROTOBUF_C_TYPE_BOOL:
    return cJSON_CreateBool(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_ENUM: {
    int v = *(const int *)p;
    const ProtobufCEnumValue *ev =
      protobuf_c_enum_descriptor_get_value((const ProtobufCEnumDescriptor *)f->descriptor, v);
    return ev ? cJSON_CreateString(ev->name) : cJSON_CreateNumber(v);
  }
  case PROTOBUF_C_TYPE_STRING:
    return cJSON_CreateString(*(char *const *)p);
  case PROTOBUF_C_TYPE_BYTES:
    return bytes_b64((const ProtobufCBinaryData *)p);
  case PROTOBUF_C_TYPE_MESSAGE:
    return msg_to_json(*(ProtobufCMessage *const *)p);
  }
  fail_msg("field %s: unhandled type %d", f->name, (int)f->type);
  return NULL;
}

/* Is a singular proto3 field (not in a oneof) set to a non-default value? */
static int scalar_present(const ProtobufCFieldDescriptor *f, const void *p)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return s && s[0];
  }
  case PROTOBUF_C_TYPE_BYTES:
    return ((const ProtobufCBinaryData *)p)->len > 0;
  case PROTOBUF_C_TYPE_MESSAGE:
    return *(void *const *)p != NULL;
  case PROTOBUF_C_TYPE_FLOAT:
    return *(const float *)p != 0.0f;
  case PROTOBUF_C_TYPE_DOUBLE:
    return *(const double *)p != 0.0;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return *(const uint64_t *)p != 0;
  case PROTOBUF_C_TYPE_BOOL:
    return *(const protobuf_c_boolean *)p != 0;
  default: /* 32-bit integers and enums */
    return *(const uint32_t *)p != 0;
  }
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 8;
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_ENUM:
    return sizeof(int);
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  default:
    return 4;
  }
}

/* Well-known types have their own JSON forms; NULL when m is not one. */
static cJSON *wkt_to_json(const ProtobufCMessage *m)
{
  const char *n = m->descriptor->name;
  if (strncmp(n, "google.protobuf.", 16) != 0)
    return NULL;
  n += 16;
  if (strcmp(n, "Timestamp") == 0) {
    const Google__Protobuf__Timestamp *t = (const Google__Protobuf__Timestamp *)m;
    time_t s = (time_t)t->seconds;
    struct tm tm;
    assert_non_null(gmtime_r(&s, &tm));
    char date[32], frac[16], out[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    fraction(frac, sizeof frac, t->nanos);
    snprintf(out, sizeof out, "%s%sZ", date, frac);
    return cJSON_CreateString(out);
  }
  if (strcmp(n, "Duration") == 0) {
    const Google__Protobuf__Duration *d = (const Google__Protobuf__Duration *)m;
    char frac[16], out[48];
    fraction(frac, sizeof frac, d->nanos < 0 ? -d->nanos : d->nanos);
    snprintf(out, sizeof out, "%s%lld%ss", (d->seconds < 0 || d->nanos < 0) ? "-" : "",
             llabs((long long)d->seconds), frac);
    return cJSON_CreateString(out);
  }
  if (strcmp(n, "Empty") == 0)
    return cJSON_CreateObject();
  /* Wrappers: one field `value` (number 1), rendered bare even when it is the default. */
  if (strlen(n) > 5 && strcmp(n + strlen(n) - 5, "Value") == 0 && m->descriptor->n_fields == 1) {
    const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
    return value_to_json(f, (const char *)m + f->offset);
  }
  fail_msg("well-known type %s not handled by the test", m->descriptor->name);
  return NULL;
}

static cJSON *msg_to_json(const ProtobufCMessage *m)
{
  cJSON *w = wkt_to_json(m);
  if (w)
    return w;
  if (m->n_unknown_fields != 0) /* every field of the vector must be in our schema */
    fail_msg("%s: %u field(s) unknown to roamhub's schema, first number %u", m->descriptor->name,
             m->n_unknown_fields, m->unknown_fields[0].tag);
  cJSON *o = cJSON_CreateObject();
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)m;
    const void *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t n = *(const size_t *)(base + f->quantifier_offset);
      if (n == 0)
        continue;
      const char *arr = *(char *const *)p;
      const ProtobufCMessageDescriptor *ed =
        f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
      int is_map = ed && ed->n_fields == 2 && strcmp(ed->fields[0].name, "key") == 0 &&
                   strlen(ed->name) > 5 && strcmp(ed->name + strlen(ed->name) - 5, "Entry") == 0;
      cJSON *c = is_map ? cJSON_CreateObject() : cJSON_CreateArray();
      for (size_t k = 0; k < n; k++) {
        const void *ep = arr + k * elem_size(f);
        if (is_map) {
          const ProtobufCMessage *e = *(ProtobufCMessage *const *)ep;
          const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
          cJSON *key = value_to_json(kf, (const char *)e + kf->offset);
          assert_true(cJSON_IsString(key));
          cJSON_AddItemToObject(c, key->valuestring, value_to_json(vf, (const char *)e + vf->offset));
          cJSON_Delete(key);
        } else {
          cJSON_AddItemToArray(c, value_to_json(f, ep));
        }
      }
      cJSON_AddItemToObject(o, f->name, c);
      continue;
    }
    int present;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
      present = *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
             f->type != PROTOBUF_C_TYPE_STRING)
      present = *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    else
      present = scalar_present(f, p);
    if (present)
      cJSON_AddItemToObject(o, f->name, value_to_json(f, p));
  }
  return o;
}

/* ---- comparison: exact, except numbers within float precision ---- */

static int json_equal(const cJSON *a, const cJSON *b, char *path, size_t cap)
{
  size_t plen = strlen(path);
  if (cJSON_IsNumber(a) && cJSON_IsNumber(b)) {
    double x = a->valuedouble, y = b->valuedouble;
    double ax = x < 0 ? -x : x, ay = y < 0 ? -y : y, d = x > y ? x - y : y - x;
    double scale = ax > ay ? ax : ay;
    return d <= 1e-6 * (scale > 1.0 ? scale : 1.0);
  }
  if ((a->type & 0xff) != (b->type & 0xff))
    return 0;
  if (cJSON_IsObject(a)) {
    if (cJSON_GetArraySize(a) != cJSON_GetArraySize(b))
      return 0;
    const cJSON *ca;
    cJSON_ArrayForEach(ca, a) {
      const cJSON *cb = cJSON_GetObjectItemCaseSensitive(b, ca->string);
      snprintf(path + plen, cap - plen, ".%s", ca->string);
      if (!cb || !json_equal(ca, cb, path, cap))
        return 0;
    }
    path[plen] = '\0';
    return 1;
  }
  if (cJSON_IsArray(a)) {
    int n = cJSON_GetArraySize(a);
    if (n != cJSON_GetArraySize(b))
      return 0;
    for (int i = 0; i < n; i++) {
      snprintf(path + plen, cap - plen, "[%d]", i);
      if (!json_equal(cJSON_GetArrayItem(a, i), cJSON_GetArrayItem(b, i), path, cap))
        return 0;
    }
    path[plen] = '\0';
    return 1;
  }
  return cJSON_Compare(a, b, 1);
}

static void assert_json_equal(const char *name, const cJSON *got, const cJSON *want)
{
  char path[512] = "";
  if (!json_equal(got, want, path, sizeof path)) {
    char *g = cJSON_PrintUnformatted(got), *w = cJSON_PrintUnformatted(want);
    print_error("%s: differs at '%s'\n got:  %s\n want: %s\n", name, path, g, w);
    free(g);
    free(w);
    fail_msg("%s: decoded fields differ from the vector's json", name);
  }
}

/* ---- the test ---- */

static void test_vectors_decode_and_reencode(void **state)
{
  (void)state;
  cJSON *root = rh_test_load_vectors("pb_messages.json");
  const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "vectors");
  assert_true(cJSON_IsArray(vs));
  int checked = 0;
  const cJSON *v;
  cJSON_ArrayForEach(v, vs) {
    const char *name = rh_test_str(v, "name");
    const char *type = rh_test_str(v, "message_type");
    if (strncmp(type, "org.packetbroker.", 17) != 0)
      continue; /* OAuth2 / JWT JSON documents: tested with the token endpoint */
    const ProtobufCMessageDescriptor *d = find_type(type);
    if (!d)
      fail_msg("%s: message type %s is not in roamhub's schema", name, type);
    const char *hex = rh_test_str(v, "hex");
    size_t cap = strlen(hex) / 2 + 1;
    uint8_t *wire = malloc(cap);
    assert_non_null(wire);
    size_t n = rh_test_hex(hex, wire, cap);

    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, wire);
    if (!m)
      fail_msg("%s: protobuf-c refuses the vector's bytes", name);
    cJSON *got = msg_to_json(m);
    assert_json_equal(name, got, cJSON_GetObjectItemCaseSensitive(v, "json"));

    size_t n2 = protobuf_c_message_get_packed_size(m);
    uint8_t *wire2 = malloc(n2 ? n2 : 1);
    assert_non_null(wire2);
    assert_int_equal(protobuf_c_message_pack(m, wire2), n2);
    ProtobufCMessage *m2 = protobuf_c_message_unpack(d, NULL, n2, wire2);
    if (!m2)
      fail_msg("%s: re-encoded bytes do not decode", name);
    cJSON *got2 = msg_to_json(m2);
    assert_json_equal(name, got2, got);
    if (n2 != n || memcmp(wire, wire2, n) != 0)
      fail_msg("%s: re-encoded bytes (%zu) differ from the vector's (%zu)", name, n2, n);

    cJSON_Delete(got2);
    protobuf_c_message_free_unpacked(m2, NULL);
    free(wire2);
    cJSON_Delete(got);
    protobuf_c_message_free_unpacked(m, NULL);
    free(wire);
    checked++;
  }
  /* The file holds 15 protobuf vectors; fewer means the test silently lost coverage. */
  assert_true(checked >= 15);
  cJSON_Delete(root);
}

/* The renderer must be able to tell a wrong schema: a field number moved by one no longer
 * matches (guards against a converter that passes everything). */
static void test_wrong_field_number_is_detected(void **state)
{
  (void)state;
  /* SubscribeForwarderRequest with the group in field 5 instead of 4. */
  static const uint8_t wire[] = {0x08, 0x14, 0x2a, 0x03, 'e', 'u', '1'};
  ProtobufCMessage *m = protobuf_c_message_unpack(
    &org__packetbroker__routing__v1__subscribe_forwarder_request__descriptor, NULL, sizeof wire,
    wire);
  assert_non_null(m);
  assert_int_equal(m->n_unknown_fields, 1);
  const Org__Packetbroker__Routing__V1__SubscribeForwarderRequest *r =
    (const Org__Packetbroker__Routing__V1__SubscribeForwarderRequest *)m;
  assert_int_equal(r->forwarder_net_id, 20);
  assert_string_equal(r->group, "");
  protobuf_c_message_free_unpacked(m, NULL);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_vectors_decode_and_reencode),
    cmocka_unit_test(test_wrong_field_number_is_detected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
