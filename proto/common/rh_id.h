/*
 * rh_id.h — the identifier rules of the routing table and the admin API, in one place
 * (issue 16 item 6; documented in docs/openapi.yaml "Identifiers" and docs/admin-api rules):
 *
 *   kind          used for                                              characters          bytes
 *   RH_ID_RECORD  endpoint id, member id, API key id, Join Server id    [A-Za-z0-9._-],     1..128
 *                                                                       first alphanumeric
 *   RH_ID_TENANT  tenant ids (tenant_id, *_tenant_id, tenant_ids)       same set             0..36
 *                                                                       ("" = no tenant)
 *   RH_ID_NAME    display names (network, tenant, API key)              UTF-8 text without   0..256
 *                                                                       control characters
 * Identifiers appear in URL paths, logs, "id:secret" credentials and JSON: the record/tenant
 * set is URL-safe without escaping and has no '/', '"', '%', ':', space or non-ASCII character.
 * Names are free text (valid UTF-8 is the JSON input policy's job) but never carry a control
 * character (U+0000..U+001F, U+007F) that could break a log line or a terminal.
 */
#ifndef RH_ID_H
#define RH_ID_H

#include "rh_err.h"

#define RH_ID_MAX 128     /* record identifiers, bytes */
#define RH_TENANT_MAX 36  /* tenant identifiers, bytes (routing-table key width) */
#define RH_NAME_MAX 256   /* display names, bytes */

typedef enum rh_id_kind { RH_ID_RECORD, RH_ID_TENANT, RH_ID_NAME } rh_id_kind_t;

/* Checks `s` (NUL-terminated; NULL counts as "") against the rules of `kind`. `field` names it in
 * the diagnostic ("endpoint.id: character 2 ('/') is not one of [A-Za-z0-9._-]").
 * Errors: RH_EINVAL (empty where required, too long, a character outside the set). */
int rh_id_check(rh_id_kind_t kind, const char *s, const char *field, rh_diag_t *diag);

#endif
