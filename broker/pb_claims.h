/*
 * pb_claims.h — the identity a Packet Broker token carries, and what it allows (issue 12).
 *
 * Packet Broker's IAM issues JWTs whose claim "https://iam.packetbroker.net/claims" holds
 *   {"ns": [{"nid": <NetID as a number>, "tid": "<tenant ID>"}, ...], "rights": [<Right>, ...]}
 * (optionally "c": true for a cluster key). The Things Stack's agent decodes ns[0] of its own
 * token without verifying it; the hub issues such tokens from its API keys and, on every gRPC
 * call, accepts a request's forwarder_* / home_network_* identity only when the verified token's
 * ns covers it: same NetID, and same tenant unless the entry's tid is "" (the whole NetID).
 * Source: shared/reference/packet-broker-api.md section 5; vectors/pb_messages.json "JWT claims
 * TTS reads"; Right numbers from org.packetbroker.v3.Right (proto/packetbroker/v3.proto).
 * Pure: no I/O, no clock, no signature work (that is the JWT layer's).
 */
#ifndef RH_PB_CLAIMS_H
#define RH_PB_CLAIMS_H

#include "rh_err.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PB_CLAIMS_KEY "https://iam.packetbroker.net/claims"
#define PB_NS_MAX 16          /* ns entries kept per token */
#define PB_TENANT_MAX 64      /* tenant ID bytes incl. NUL (Packet Broker IDs are <= 36) */

/* org.packetbroker.v3.Right values the data plane checks. */
enum {
    PB_RIGHT_READ_NETWORK = 0,
    PB_RIGHT_READ_TRAFFIC = 10,  /* Subscribe, delivery reports */
    PB_RIGHT_WRITE_TRAFFIC = 11, /* Publish */
};

typedef struct pb_ns {
    uint32_t net_id;              /* 24-bit NetID value */
    char tenant[PB_TENANT_MAX];   /* "" = every tenant of net_id */
} pb_ns_t;

typedef struct pb_identity {
    pb_ns_t ns[PB_NS_MAX];
    size_t n;
    uint32_t rights;              /* bit r set = Right r granted (r < 32) */
    bool cluster;                 /* "c": true */
} pb_identity_t;

/* The claim object ({"ns": [...], "rights": [...]}, plus "c": true when cluster) for id.
 * Caller owns the result (cJSON_Delete). NULL on allocation failure. */
cJSON *pb_claims_to_json(const pb_identity_t *id);

/*
 * Reads the claim from a token's claims set (the object holding PB_CLAIMS_KEY). Errors:
 * RH_EINVAL with diag naming the field: claim missing or not an object, ns missing/empty/not an
 * array or longer than PB_NS_MAX, nid not an integer in 0..0xFFFFFF, tid not a string or
 * longer than PB_TENANT_MAX - 1 bytes, rights not an array of integers 0..31, c not a boolean.
 */
int pb_claims_from_json(const cJSON *claims_set, pb_identity_t *out, rh_diag_t *diag);

/* Whether id may speak for (net_id, tenant): an ns entry with that NetID and either the same
 * tenant or tid "". tenant NULL is treated as "". */
bool pb_identity_covers(const pb_identity_t *id, uint32_t net_id, const char *tenant);

/* Whether Right r is granted. */
bool pb_identity_has_right(const pb_identity_t *id, unsigned r);

#endif
