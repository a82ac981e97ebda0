/*
 * peer_registry.h — the member registry: who a TS002 caller is, what it may speak for, and where
 * each member is reached. Built from roamhub.v1 Member and Endpoint records that the broker
 * loads (peers/ reads no files of records and no LMDB).
 *
 * Identity binding (reference/reliability-security.md §1.1, §2.2): TS002 leaves authentication
 * to the transport and ChirpStack derives the caller from the JSON SenderID alone. A hub between
 * operators that do not trust each other must bind them: the caller is authenticated here (TLS
 * client certificate mapped by exact SHA-256 fingerprint or exact RFC 2253 subject, or a Bearer
 * API key stored only as its SHA-256 and compared with CRYPTO_memcmp), and the SenderID of every
 * request must be one of that member's NetIDs (peer_member_check_sender), else UnknownSender.
 *
 * Snapshot semantics: a registry is immutable after peer_registry_new (except the per-member
 * rate-limit state, which is atomic). On a change the broker builds a new registry and publishes
 * it; readers never lock on the hot path:
 *   - peer_registry_ref / peer_registry_unref: atomic reference count; the last unref frees;
 *   - peer_registry_slot_t: the "current registry" cell. Publishing bumps a generation counter;
 *     each worker thread keeps a peer_registry_view_t and calls peer_registry_view_get once per
 *     event (one relaxed atomic load when nothing changed; a short mutex only on the first call
 *     after a publish, to take a reference to the new registry and drop the old one).
 *   Pointers returned by lookups (members, endpoints) stay valid while the caller holds a
 *   reference to the registry they came from (the view holds one until it next refreshes, so a
 *   transaction that outlives the current event must take its own peer_registry_ref).
 *
 * Incremental changes: peer_registry_apply builds the next registry from the current one and a
 * few changed Member/Endpoint records. Unchanged members and endpoints are shared between the
 * two (reference counted; their rate-limit state and client pools carry over), only the changed
 * records are parsed and validated, and the sorted indexes are copied with the changed entries
 * removed and inserted (no sort, no LMDB read): the cost is the changed records' plus a copy of
 * the index arrays and a reference taken per shared member and endpoint (linear in the registry's
 * size, not a rebuild: about 0.06 ms at 1,000 and 0.26 ms at 10,000 members + endpoints on the
 * project's VM, docs/PERFORMANCE.md "growth"). The result equals a full
 * peer_registry_new of the resulting records (the unit tests compare them after random writes).
 *
 * Uniqueness enforced at build time (RH_EEXIST, diag names both records): member ids, endpoint
 * ids, certificate fingerprints, subjects and API key hashes across members (an identity maps to
 * exactly one member); overlapping NetID claims (two members on one NetID unless both are
 * tenant-scoped to disjoint tenants); two endpoints for one (NetID, tenant) or one JoinEUI.
 */
#ifndef PEER_REGISTRY_H
#define PEER_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "peer_endpoint.h"
#include "rh_err.h"
#include "roamhub.pb-c.h"

#define PEER_MEMBER_DEFAULT_RATE 1000u /* requests/s when Member.rate_limit_per_s = 0 */
#define PEER_MEMBER_BURST_FACTOR 2u    /* bucket depth = 2 s worth of requests */
#define PEER_SHA256_LEN 32

typedef struct peer_registry peer_registry_t;

/* A member (read-only for callers; `rate_tat_ns` is the only mutable state, atomic). */
typedef struct peer_member {
    char *id;                     /* Member.id */
    uint32_t *net_ids;            /* sorted ascending, no duplicates */
    size_t n_net_ids;
    char **tenant_ids;            /* sorted (strcmp); n_tenant_ids = 0: every tenant */
    size_t n_tenant_ids;
    bool dev_loopback;            /* may be used without credentials on a dev loopback listener */
    uint32_t rate_per_s;          /* effective rate (default applied) */
    uint64_t rate_interval_ns;    /* 1e9 / rate_per_s */
    uint64_t rate_tolerance_ns;   /* (burst - 1) * interval */
    _Atomic uint64_t rate_tat_ns; /* GCRA theoretical arrival time (monotonic ns) */
    /* Private to peer_registry.c: the member's own credentials (what its index entries were
     * made from) and the count of registries sharing the member. */
    uint8_t (*fps)[PEER_SHA256_LEN];
    size_t n_fps;
    char **subjects;
    size_t n_subjects;
    uint8_t (*keys)[PEER_SHA256_LEN];
    size_t n_keys;
    _Atomic long refs;
} peer_member_t;

/* What the broker hands over. Arrays of record pointers (NULL-free); records are copied. */
typedef struct peer_registry_config {
    const Roamhub__V1__Member *const *members;
    size_t n_members;
    const Roamhub__V1__Endpoint *const *endpoints;
    size_t n_endpoints;
    /* Member ids that may be used WITHOUT credentials, but only through
     * peer_registry_auth_dev_loopback (development listener on loopback). Unknown ids are an
     * error (RH_EINVAL). Leave empty in production configurations. */
    const char *const *dev_loopback_members;
    size_t n_dev_loopback_members;
    unsigned endpoint_flags;      /* passed to peer_endpoint_new (enum peer_endpoint_flags) */
    /* > 1: each member's rate limit is this node's share of a limit that holds for rate_share
     * nodes together (a cluster, cluster.nodes): rate_limit_per_s / rate_share, rounded up.
     * 0 or 1: the whole rate. Kept by registries derived with peer_registry_apply. */
    unsigned rate_share;
} peer_registry_config_t;

/* Builds a registry (reference count 1). Errors, with `diag` naming the record and field
 * ("Member[netA].cert_fingerprints[1]: expected 64 hex digits ..."):
 *   RH_EINVAL   a malformed record (empty id, no NetIDs, NetID > 24 bits, fingerprint not 32
 *               bytes of hex (colons allowed), api_key_hashes entry not 32 bytes, empty subject
 *               or tenant, unknown dev_loopback member), or any peer_endpoint_new error;
 *   RH_EEXIST   a uniqueness rule above is broken;
 *   RH_ERANGE / RH_ECRYPTO from peer_endpoint_new; RH_ENOMEM.
 * A failed build changes nothing: keep using the previous registry. */
int peer_registry_new(const peer_registry_config_t *cfg, peer_registry_t **out, rh_diag_t *diag);

/* One change for peer_registry_apply. */
typedef enum peer_change_op { PEER_CHANGE_UPSERT = 0, PEER_CHANGE_DELETE = 1 } peer_change_op_t;
typedef struct peer_registry_change {
    peer_change_op_t op;
    /* exactly one of member/endpoint for an upsert (the record, copied), or of member_id /
     * endpoint_id for a delete (deleting an id that is not there is not an error) */
    const Roamhub__V1__Member *member;
    const Roamhub__V1__Endpoint *endpoint;
    const char *member_id;
    const char *endpoint_id;
    bool dev_loopback;            /* upserted member may be used on a dev loopback listener */
} peer_registry_change_t;

/* Builds the registry that results from applying `changes` in order to `base` (not modified;
 * may be NULL = empty). Endpoints of upserts are built with `endpoint_flags` (enum
 * peer_endpoint_flags). Same validation and uniqueness rules, errors and diagnostics as
 * peer_registry_new (RH_EINVAL, RH_EEXIST, RH_ERANGE, RH_ECRYPTO, RH_ENOMEM; also RH_EINVAL for a
 * change naming no record); a failed apply changes nothing. *out has reference count 1. Members
 * and endpoints that did not change are the same objects as in `base` (lookups return equal
 * pointers, rate-limit state carries over). Any thread; `base` is only read. */
int peer_registry_apply(const peer_registry_t *base, const peer_registry_change_t *changes,
                        size_t n_changes, unsigned endpoint_flags, peer_registry_t **out,
                        rh_diag_t *diag);

/* Takes a reference (atomic); returns reg. NULL-safe. */
peer_registry_t *peer_registry_ref(peer_registry_t *reg);
/* Drops a reference; the last one frees the registry, its members and endpoints. NULL no-op. */
void peer_registry_unref(peer_registry_t *reg);

/* Counts, for metrics and tests. */
size_t peer_registry_member_count(const peer_registry_t *reg);
size_t peer_registry_endpoint_count(const peer_registry_t *reg);

/* ---- authentication (all return RH_OK and *out = NULL when nothing matches) ---- */

/* Identity of a TLS peer, extracted once per connection by peer_tls_identity_from_ssl /
 * _from_x509 (peer_tls.h). */
typedef struct peer_tls_identity {
    bool present;                    /* a client certificate was presented */
    uint8_t fingerprint[PEER_SHA256_LEN]; /* SHA-256 of the DER certificate */
    char subject[512];               /* RFC 2253 subject; "" if it did not fit (never matches) */
} peer_tls_identity_t;

/* Maps a client certificate identity to its member: exact fingerprint first, then the exact
 * subject string (byte-wise equal, no substring or case folding). The broker must only call
 * this for certificates its TLS layer has verified (chain to the configured CA); a fingerprint
 * match is safe for any certificate, a subject match is only as strong as the CA.
 * Errors: RH_EINVAL for NULL arguments. */
int peer_registry_auth_tls(const peer_registry_t *reg, const peer_tls_identity_t *id,
                           const peer_member_t **out);

/* Maps an `Authorization` header value to a member: "Bearer <token>" (scheme case-insensitive,
 * surrounding blanks ignored), token -> SHA-256 -> table probe, every candidate compared in
 * full with CRYPTO_memcmp (no early exit on stored secrets; the table index is derived from the
 * hash of the presented token, which tells an attacker nothing about stored keys).
 * Errors: RH_EINVAL when the value is not a Bearer credential (no token, other scheme, token
 * longer than 4096 bytes) — answer 401; RH_OK with *out NULL for an unknown key. */
int peer_registry_auth_bearer(const peer_registry_t *reg, const char *authorization,
                              const peer_member_t **out);

/* Development only: the member used for an unauthenticated request on a plain-HTTP listener
 * the broker configured for development on loopback. All of the following must hold, else
 * *out = NULL: listener_is_dev_loopback is true; `peer` is an IPv4 127.0.0.0/8 or IPv6 ::1 (or
 * v4-mapped 127/8) address; some member listed in dev_loopback_members owns `sender_net_id`
 * (the request's SenderID). Logs nothing; the caller logs the decision.
 * Errors: RH_EINVAL for NULL reg/out. */
int peer_registry_auth_dev_loopback(const peer_registry_t *reg, bool listener_is_dev_loopback,
                                    const struct sockaddr *peer, uint32_t sender_net_id,
                                    const peer_member_t **out);

/* ---- what a member may do ---- */

/* True when `net_id` (24-bit NetID) is one of the member's NetIDs and, if the member is
 * tenant-scoped, `tenant` (NULL or "" = no tenant) is one of its tenants. A tenant-scoped member
 * may not speak at NetID level (no tenant). An unscoped member may name any tenant. Pure. */
bool peer_member_may_send_as(const peer_member_t *m, uint32_t net_id, const char *tenant);

/* peer_member_may_send_as plus the security event: on refusal logs once, at WARN, subsystem
 * "security": `sender refused peer=<member id> netid=<NetID hex> tenant=<t> remote=<remote>`
 * (remote: the caller's address text or NULL). Returns RH_OK or RH_EPERM (answer UnknownSender,
 * forward nothing). */
int peer_member_check_sender(const peer_member_t *m, uint32_t net_id, const char *tenant,
                             const char *remote);

/* Per-member rate limit, GCRA (equivalent to a token bucket of rate_per_s and depth
 * PEER_MEMBER_BURST_FACTOR * rate_per_s): true if a request arriving at `now_ns` (rh_mono_ns())
 * is allowed. Lock-free (one CAS), shared by all threads using this registry; state starts
 * full at build time and is not carried over to a rebuilt registry. */
bool peer_member_rate_allow(const peer_member_t *m, uint64_t now_ns);

/* ---- lookups (RH_OK and NULL when nothing matches; NULL reg/out: RH_EINVAL) ---- */

/* Member by id. */
int peer_registry_member_by_id(const peer_registry_t *reg, const char *id,
                               const peer_member_t **out);
/* The member that owns (net_id, tenant): an exact tenant-scoped member first, then the
 * member holding the NetID unscoped. tenant NULL/"" matches only an unscoped member. */
int peer_registry_member_by_netid(const peer_registry_t *reg, uint32_t net_id,
                                  const char *tenant, const peer_member_t **out);

/* Endpoint by id. */
int peer_registry_endpoint_by_id(const peer_registry_t *reg, const char *id,
                                 const peer_endpoint_t **out);
/* Endpoint serving (net_id, tenant): exact (NetID, tenant) first, then the NetID-level endpoint
 * (tenant ""). */
int peer_registry_endpoint_by_netid(const peer_registry_t *reg, uint32_t net_id,
                                    const char *tenant, const peer_endpoint_t **out);
/* Join Server endpoint by exact JoinEUI (host order). */
int peer_registry_endpoint_by_join_eui(const peer_registry_t *reg, uint64_t join_eui,
                                       const peer_endpoint_t **out);
/* Iteration (i < peer_registry_endpoint_count), e.g. for metrics. NULL when out of range. */
const peer_endpoint_t *peer_registry_endpoint_at(const peer_registry_t *reg, size_t i);

/* ---- publication: the current registry shared by worker threads ---- */

typedef struct peer_registry_slot {
    pthread_mutex_t mu;
    peer_registry_t *cur;          /* owned reference, may be NULL */
    _Atomic uint64_t gen;          /* bumped by every publish */
} peer_registry_slot_t;

typedef struct peer_registry_view {
    uint64_t gen;                  /* generation of `reg` */
    peer_registry_t *reg;          /* owned reference or NULL */
} peer_registry_view_t;

#define PEER_REGISTRY_VIEW_INIT {0, NULL}

/* Initialises a slot holding `initial` (ownership of one reference taken; may be NULL).
 * Returns RH_OK or RH_ENOMEM (mutex init failed). */
int peer_registry_slot_init(peer_registry_slot_t *slot, peer_registry_t *initial);
/* Drops the slot's reference. Views must have been released first. */
void peer_registry_slot_fini(peer_registry_slot_t *slot);
/* Replaces the current registry with `reg` (ownership of one reference taken) and drops the
 * slot's reference to the previous one (it lives on while views still hold it). Any thread. */
void peer_registry_slot_publish(peer_registry_slot_t *slot, peer_registry_t *reg);
/* Publishes `reg` only if the slot's generation is still `gen` (nothing was published since a
 * view_get that returned the registry `reg` was built from, view->gen): then as
 * peer_registry_slot_publish, and true. Otherwise false, and the caller keeps its reference to
 * `reg` (build it again from the current registry). The check and the publish are one step
 * under the slot's mutex. Any thread. */
bool peer_registry_slot_publish_if(peer_registry_slot_t *slot, peer_registry_t *reg,
                                   uint64_t gen);
/* The current registry for this thread's view: refreshes the view if a publish happened since
 * its last call. The result stays valid until the next view_get/view_release on this view.
 * May return NULL if nothing was published. Never blocks unless a publish just happened. */
const peer_registry_t *peer_registry_view_get(peer_registry_slot_t *slot,
                                              peer_registry_view_t *view);
/* Drops the view's reference. */
void peer_registry_view_release(peer_registry_view_t *view);

/* SHA-256 of an API key as stored in Member.api_key_hashes (for roamctl/admin API when a key is
 * issued). out: 32 bytes. Returns RH_OK or RH_ECRYPTO. */
int peer_api_key_hash(const char *key, size_t len, uint8_t out[PEER_SHA256_LEN]);

#endif
