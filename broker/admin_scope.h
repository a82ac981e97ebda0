/*
 * admin_scope.h — the admin API's security rules: which records a key may see or change. Pure
 * functions of a principal (admin_auth.h) and roamhub.v1 records; no storage, no HTTP, so they
 * are unit-tested on their own (tests/unit/broker/test_admin_scope.c).
 *
 * Rules (docs/openapi.yaml "Roles"):
 *  - an operator key reaches every record;
 *  - a member key reaches only records it owns. The owner of a record is its NetID (+ tenant)
 *    field: network/tenant/block/endpoint net_id, join route home, policy forwarder, API key
 *    scope. Records without a member owner — members, Join Server endpoints (net_id 0), join
 *    routes naming a Join Server, operator keys — are operator-only;
 *  - a NetID-level member key reaches every tenant of its NetID; a tenant key reaches records of
 *    its tenant only, and may read (not change) its NetID's network record;
 *  - members may not create networks, change delegated NetIDs, place blocks outside their NetID,
 *    set TLS file paths on the hub's disk, or route JoinEUI prefixes shorter than 24 bits.
 */
#ifndef RH_ADMIN_SCOPE_H
#define RH_ADMIN_SCOPE_H

#include "admin_auth.h"
#include "rp.h"

#include <stddef.h>
#include <stdint.h>

/* Owner (NetID, tenant — "" when NetID-level) of record m of `kind`. Returns 1 with *net and
 * *tenant (pointing into m) set, or 0 when no member owns it (operator only). */
int admin_record_owner(rp_kind_t kind, const ProtobufCMessage *m, uint32_t *net,
                       const char **tenant);

/* Whether principal p may see (write = 0) or change (write = 1) record m. */
int admin_may_touch(const admin_principal_t *p, rp_kind_t kind, const ProtobufCMessage *m,
                    int write);

/* Whether the principal may see traffic of NetID n (statistics, capture; operator: always). */
int admin_scope_net(const admin_principal_t *p, uint32_t n);

/* The member-only write rules for a new (old == NULL) or changed record m. Returns 0 when
 * allowed, else the HTTP status to refuse with (403) and one sentence naming the field in why
 * (cap bytes). Operators: always 0. */
int admin_member_write_check(const admin_principal_t *p, rp_kind_t kind, const ProtobufCMessage *m,
                             const ProtobufCMessage *old, char *why, size_t cap);

/* A storage conflict message (text, cap bytes, rewritten in place) as a member may see it: one
 * naming another owner's record or an overlap becomes "conflicts with an existing record that
 * is not yours", so a member never learns other members' blocks. Operators see it unchanged. */
void admin_scope_conflict_text(const admin_principal_t *p, char *text, size_t cap);

#endif
