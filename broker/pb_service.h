/*
 * pb_service.h — the Packet Broker data plane served on the gRPC listener (issue 12;
 * shared/reference/packet-broker-api.md sections 1-4): the method table for grpc_opts, and what
 * the method files share.
 *
 * Methods (paths of packetbroker/api routing/v1/service.proto, mapping/v2/service.proto):
 *   pb_forwarder.c  ForwarderData/{Publish, Subscribe, ReportDownlinkMessageDeliveryState}
 *   pb_home.c       HomeNetworkData/{Publish, Subscribe, ReportUplinkMessageDeliveryState}
 *   pb_mapper.c     mapping.v2.Mapper/UpdateGateway
 * Every other path (IAM, control plane) is the gRPC server's UNIMPLEMENTED.
 *
 * Every call: the bearer token is verified (pb_auth.h; UNAUTHENTICATED otherwise), then the
 * request's forwarder_* or home_network_* identity must be covered by it (PERMISSION_DENIED
 * otherwise, "<field>: NetID xxxxxx tenant "t" is not covered by the token"); both refusals are
 * security events: one rate-limited log line (sub=security) and the /metrics event
 * pb_unauthenticated / pb_permission_denied. A request that does not decode or names an
 * impossible identity is INVALID_ARGUMENT naming the field.
 *
 * Routing goes through route_decide (route.h) with any_transport: the same routing table, policy
 * classes and signal-quality/localization stripping as TS002, the same per-member rate limit
 * (the member owning the caller's NetID), statistics (metrics_count) and capture (capture_tap);
 * subscriptions, queues and hand-over are pb_router.h's.
 *
 * Threads: every function runs on the worker thread of its call.
 */
#ifndef RH_PB_SERVICE_H
#define RH_PB_SERVICE_H

#include "admin_jwt.h"
#include "grpc_server.h"
#include "pb_claims.h"
#include "pb_router.h"
#include "pb_token.h"
#include "worker.h"

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "packetbroker/v3.pb-c.h"

/* Shared by the workers; set up by hub.c before they run, read-only afterwards. */
typedef struct pb_service {
    pb_router_t *router;
    const admin_jwt_t *jwt; /* the admin API's verifier/signer; NULL = admin off: no tokens */
    char agent[64];         /* RouteHop.receiver_agent: "roamhub/<version>" */
    pb_token_key_t token_key; /* sealed bridge tokens (pb_token.h) */
    unsigned merge_window_ms; /* grpc.merge_window_ms: copies of one uplink gathered for a
                                 TS002 home network (pb_merge.h); 0 = off */
    size_t merge_max;         /* grpc.merge_max: open merges per worker */
} pb_service_t;

/* The methods (grpc_opts.methods, arg = the worker_t) and their count. */
extern const grpc_method_t pb_methods[];
extern const size_t pb_n_methods;

/* pb_router hooks: statistics of queued messages (sent to a stream, failed). */
extern const pb_router_hooks_t pb_router_hooks;

/* --- shared by the method files --- */

/* The start of every method: verifies the bearer token (pb_call_auth) and decodes the request
 * of type `desc`. Returns the request (free with protobuf_c_message_free_unpacked(m, NULL)), or
 * NULL when the call was finished (UNAUTHENTICATED, or INVALID_ARGUMENT "<Type>: does not
 * decode" / "<Type>: field number 0 in <sub-type>", pb_message_valid). */
ProtobufCMessage *pb_call_begin(grpc_call_t *call, worker_t *w,
                                const ProtobufCMessageDescriptor *desc, const uint8_t *msg,
                                size_t len, pb_identity_t *id, char sub[129]);

/* Whether a decoded message is one protobuf-c can encode back into something it decodes:
 * protobuf-c 1.4 keeps a field numbered 0 (invalid in protobuf) as an unknown field and writes
 * it back as a tag it then refuses, so a forwarder could make the hub route messages no
 * subscriber can read. Walks every sub-message (the schema is not recursive). false with the
 * offending message type in why (cap bytes). */
bool pb_message_valid(const ProtobufCMessage *m, char *why, size_t cap);

/* pb_call_ids + pb_call_covers: the request's `field` identity into *out, checked against the
 * token. false when the call was finished. */
bool pb_call_identity(grpc_call_t *call, worker_t *w, const pb_identity_t *id, const char *sub,
                      const char *field, uint32_t net_id, const char *tenant,
                      const char *cluster, unsigned right, pb_ids_t *out);

/* Opens a Subscribe stream in group `group` ("" = "default") for the checked identity; the
 * call stays open (grpc_call_user = the stream) until the client or the hub ends it. filters
 * (home role) pass to the router. Finishes the call on failure (INVALID_ARGUMENT for a group
 * longer than PB_ID_MAX, RESOURCE_EXHAUSTED). */
void pb_subscribe(grpc_call_t *call, worker_t *w, pb_role_t role, const pb_ids_t *ids,
                  const char *group, pb_filter_set_t *filters);

/* A delivery report taken (dir "uplink" or "downlink"): the /metrics event
 * pb_<dir>_report_ok or _error, a debug log line
 * naming the message ID and result (error_name NULL = success), and the Empty reply. */
void pb_report_done(grpc_call_t *call, worker_t *w, const char *dir, const char *msg_id,
                    const char *error_name);

/* Verifies the call's bearer token into *id (and *sub). On failure finishes the call with
 * UNAUTHENTICATED (security event) and returns false. */
bool pb_call_auth(grpc_call_t *call, worker_t *w, pb_identity_t *id, char sub[129]);

/* Checks that the token covers (net_id, tenant) named by the request's `field` ("forwarder",
 * "home_network") and holds Right `right`. On failure finishes the call with PERMISSION_DENIED
 * (security event) and returns false. */
bool pb_call_covers(grpc_call_t *call, worker_t *w, const pb_identity_t *id, const char *sub,
                    const char *field, uint32_t net_id, const char *tenant, unsigned right);

/* Copies request identity strings into *out; finishes the call with INVALID_ARGUMENT naming the
 * field and returns false when the NetID is above 0xFFFFFF or a string is longer than
 * PB_ID_MAX. */
bool pb_call_ids(grpc_call_t *call, const char *field, uint32_t net_id, const char *tenant,
                 const char *cluster, pb_ids_t *out);

/* Finishes the call with INVALID_ARGUMENT "<what>: <why>" (malformed request). */
void pb_call_invalid(grpc_call_t *call, const char *what, const char *why);

/* Packs `msg` and replies it as the one message, then OK. INTERNAL when it cannot. */
void pb_call_reply(grpc_call_t *call, const ProtobufCMessage *msg);

/* Counts one terminal outcome of a Packet Broker message through relay_count (relay.h): the
 * same statistics and capture as TS002 traffic. The forwarder spoke Packet Broker (bridged
 * traffic toward a TS002 forwarder is counted by its relay transaction, not here); home_proto is
 * the home network's protocol (rp_protocol_t: Packet Broker when it is the sender, was routed to
 * a subscription or the message was refused; TS002 when the route chose a TS002 endpoint).
 * recv_ns: rh_mono_ns() at receipt (0: unknown); result_code: ResultCode name or NULL; sender:
 * member ID or NULL. */
void pb_count(worker_t *w, uint32_t fwd_net_id, uint32_t home_net_id, rp_protocol_t home_proto,
              rp_class_t cls, rp_outcome_t outcome, const char *result_code, uint64_t recv_ns,
              const char *sender);

/* A Timestamp of the real time now (fields filled into *ts). */
void pb_timestamp_now(Google__Protobuf__Timestamp *ts);

/* Fills a RouteHop for this hub: received_at = ts, sender_name = sender, sender_address = the
 * call's peer, receiver_name "roamhub", receiver_agent svc->agent, protocol GRPC. Strings are
 * borrowed. */
void pb_hop_fill(Org__Packetbroker__V3__RouteHop *hop, Google__Protobuf__Timestamp *ts,
                 const pb_service_t *svc, grpc_call_t *call, const char *sender);

/* The member that speaks for (net_id, tenant) in the worker's registry (rate limit, "never back
 * to the sender", statistics' sender), or NULL. */
const peer_member_t *pb_member_of(worker_t *w, uint32_t net_id, const char *tenant);

/* The member's rate limit (peer_member_rate_allow); a caller without a member record is not
 * limited here. On refusal finishes the call with RESOURCE_EXHAUSTED and returns false. */
bool pb_call_rate(grpc_call_t *call, worker_t *w, const peer_member_t *m);

#endif
