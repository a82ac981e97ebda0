/*
 * fuzz_admin_record.c — libFuzzer target over the admin API's JSON-to-record path: a body goes
 * through the JSON input policy (rh_json_parse with the admin limits, as admin_body_json does),
 * then rp_json_to_record for the record kind chosen by the first input byte (as the admin API's
 * create/replace and import do). An accepted record must print back (rp_json_from_record) to JSON
 * that loads again to a record that prints identically (the export -> import round trip); a
 * refusal must say why. Key validation (rp_key_text) runs on accepted records too.
 */
#include "rh_json.h"
#include "rp_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Same JSON form (an absent sub-message prints as {} and loads back as an empty one, so the
 * comparison is on what an export shows, not on the protobuf bytes). */
static int same(rp_kind_t kind, const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    cJSON *ja = rp_json_from_record(kind, a), *jb = rp_json_from_record(kind, b);
    char *ta = ja ? cJSON_PrintUnformatted(ja) : NULL, *tb = jb ? cJSON_PrintUnformatted(jb) : NULL;
    if (!ta || !tb)
        abort();
    int eq = strcmp(ta, tb) == 0;
    cJSON_free(ta);
    cJSON_free(tb);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return eq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    rp_kind_t kind = (rp_kind_t)(data[0] % RP_KIND_COUNT);
    rh_diag_t d = {{0}};
    cJSON *o = rh_json_parse((const char *)data + 1, size - 1, &rh_json_limits_admin, NULL, &d);
    if (!o) {
        if (!d.text[0])
            abort();
        return 0;
    }
    ProtobufCMessage *m = NULL;
    rh_diag_clear(&d);
    int rc = rp_json_to_record(kind, o, "body", &m, &d);
    cJSON_Delete(o);
    if (rc) {
        if (m || !d.text[0])
            abort();
        return 0;
    }
    char kt[256];
    rp_key_text(kind, m, kt, sizeof kt);
    cJSON *back = rp_json_from_record(kind, m);
    if (!back)
        abort();
    ProtobufCMessage *m2 = NULL;
    rc = rp_json_to_record(kind, back, "export", &m2, &d);
    cJSON_Delete(back);
    if (rc || !same(kind, m, m2))
        abort();
    protobuf_c_message_free_unpacked(m, NULL);
    protobuf_c_message_free_unpacked(m2, NULL);
    return 0;
}
