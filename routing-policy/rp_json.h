/*
 * rp_json.h — the JSON form of the routing table (roamdb import/export, backups, the demo and the
 * admin API). Format (docs/ARCHITECTURE.md, "Routing table and policies" > "JSON format", has a
 * full example):
 *   { "networks": [...], "tenants": [...], "devaddr_blocks": [...], "join_routes": [...],
 *     "policies": [...], "endpoints": [...], "members": [...], "api_keys": [...],
 *     "member_net_ids": ["000013"] }            <- optional: replace what these NetIDs own
 * Each record is an object whose keys are the roamhub.v1 field names, except:
 *   - NetIDs (net_id, xxx_net_id, net_ids, xxx_net_ids) are 6 hex digits ("000013");
 *   - devaddr_block: "prefix": "26000000/15" (replaces prefix + length);
 *   - join_route: "join_eui": "70b3d57ed0000000/40", optional "dev_eui": "0004a30b00000000/32"
 *     (16 hex digits, slash, bits; replaces the prefix and length fields);
 *   - policy: "home_net_id" absent = the forwarder's default (has_home is not written);
 *   - EUIs (endpoint.join_eui) are 16 hex digits; bytes are hex; enums are their proto names
 *     ("PROTOCOL_VERSION_1_1", "RIGHT_ADMIN"); other integers are JSON numbers.
 * Input is lenient on hex case and a "0x" prefix; unknown keys are refused with the JSON path.
 * Output is lower-case hex and always loadable by import. Exports include endpoint
 * Authorization values (secrets): protect backups accordingly.
 */
#ifndef RP_JSON_H
#define RP_JSON_H

#include "rp.h"

#include <cjson/cJSON.h>
#include <stdio.h>

/* Section name of a kind ("networks", "devaddr_blocks", ...); "?" out of range. */
const char *rp_json_section(rp_kind_t kind);

/* Record -> new JSON object (caller cJSON_Delete). NULL on allocation failure. */
cJSON *rp_json_from_record(rp_kind_t kind, const ProtobufCMessage *msg);

/* JSON object -> new record (caller frees with protobuf_c_message_free_unpacked(*out, NULL)).
 * `path` names the object in diagnostics ("devaddr_blocks[3]"). Field values are checked for
 * syntax here and for meaning by rp_txn_put. Errors: RH_EINVAL (diag names the path and field),
 * RH_ENOMEM. */
int rp_json_to_record(rp_kind_t kind, const cJSON *obj, const char *path, ProtobufCMessage **out,
                      rh_diag_t *diag);

#define RP_IMPORT_REPLACE 1u /* clear every record kind first: the document is the whole table */

/* Imports a document in one transaction (all or nothing), audited as one "import" by `actor`.
 * Without RP_IMPORT_REPLACE records are upserted; "member_net_ids" first clears what those
 * NetIDs own (rp_txn_clear_net_id). *count (may be NULL) gets the number of records written.
 * Errors: RH_EINVAL (diag: JSON path + reason), RH_EEXIST (block overlap), RH_EFULL, RH_EIO. */
int rp_json_import(rp_db_t *db, const char *actor, const cJSON *doc, unsigned flags,
                   size_t *count, rh_diag_t *diag);

/* Largest record (one element of a section) the streaming import accepts, in bytes. */
#define RP_IMPORT_RECORD_MAX (1024 * 1024)

/* rp_json_import of a document read from a seekable file (not a pipe), streaming: memory is
 * bounded by the largest record (RP_IMPORT_RECORD_MAX), not by the document. Same result and
 * the same all-or-nothing transaction as rp_json_import on the parsed document; in addition a
 * section name appearing twice and bytes after the object are refused. The file is read from
 * its start (twice, plus once more per map growth). Errors: as rp_json_import (diag: JSON path
 * or byte offset + reason), RH_EIO (read or seek error). */
int rp_json_import_file(rp_db_t *db, const char *actor, FILE *f, unsigned flags, size_t *count,
                        rh_diag_t *diag);

/* Exports every record (one consistent snapshot) as a document loadable by rp_json_import.
 * *out is a new object (caller cJSON_Delete). Errors: RH_ENOMEM, RH_EIO. */
int rp_json_export(rp_db_t *db, cJSON **out, rh_diag_t *diag);

#endif
