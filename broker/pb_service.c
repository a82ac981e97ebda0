/*
 * pb_service.c — the Packet Broker method table and what the method files share (see
 * pb_service.h).
 */
#include "pb_service.h"

#include "lw_netid.h"
#include "metrics.h"
#include "pb_auth.h"
#include "relay.h"
#include "rh_log.h"
#include "rh_time.h"

#include "google/protobuf/empty.pb-c.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the method files' entry points */
void pb_fwd_publish(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
void pb_fwd_subscribe(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
void pb_fwd_report(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
void pb_home_publish(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
void pb_home_subscribe(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
void pb_home_report(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
void pb_mapper_update_gateway(grpc_call_t *call, const uint8_t *msg, size_t len, void *arg);
void pb_subscribe(grpc_call_t *call, worker_t *w, pb_role_t role, const pb_ids_t *ids,
                  const char *group, pb_filter_set_t *filters)
{
    if (strlen(group) > PB_ID_MAX) {
        pb_filter_set_free(filters);
        pb_call_invalid(call, "group", "longer than 64 bytes");
        return;
    }
    pb_stream_t *s = NULL;
    int rc = pb_router_subscribe(w->pb->router, w, call, role, ids, group[0] ? group : "default",
                                 filters, &s);
    if (rc != RH_OK)
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED,
                         rc == RH_EFULL ? "too many subscription groups" : "out of memory");
    else
        grpc_call_set_user(call, s);
}

void pb_subscribe_cancel(grpc_call_t *call, void *arg);

const grpc_method_t pb_methods[] = {
    {"/org.packetbroker.routing.v1.ForwarderData/Publish", pb_fwd_publish, NULL},
    {"/org.packetbroker.routing.v1.ForwarderData/Subscribe", pb_fwd_subscribe,
     pb_subscribe_cancel},
    {"/org.packetbroker.routing.v1.ForwarderData/ReportDownlinkMessageDeliveryState",
     pb_fwd_report, NULL},
    {"/org.packetbroker.routing.v1.HomeNetworkData/Publish", pb_home_publish, NULL},
    {"/org.packetbroker.routing.v1.HomeNetworkData/Subscribe", pb_home_subscribe,
     pb_subscribe_cancel},
    {"/org.packetbroker.routing.v1.HomeNetworkData/ReportUplinkMessageDeliveryState",
     pb_home_report, NULL},
    {"/org.packetbroker.mapping.v2.Mapper/UpdateGateway", pb_mapper_update_gateway, NULL},
};
const size_t pb_n_methods = sizeof pb_methods / sizeof pb_methods[0];

/* ------------------------------------------------------------------ refusals */

__attribute__((format(printf, 5, 6))) static void security_refusal(grpc_call_t *call,
                                                                   worker_t *w,
                                                                   grpc_status_t st,
                                                                   const char *sub,
                                                                   const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    metrics_event(w->metrics,
                  st == GRPC_UNAUTHENTICATED ? "pb_unauthenticated" : "pb_permission_denied");
    RH_LOG(RH_LOG_WARN, "security", "grpc call refused status=%s method=%s remote=%s key=%s "
           "reason=\"%s\"", st == GRPC_UNAUTHENTICATED ? "UNAUTHENTICATED" : "PERMISSION_DENIED",
           grpc_call_path(call), grpc_call_peer(call), sub && *sub ? sub : "-", why);
    grpc_call_finish(call, st, why);
}

bool pb_call_auth(grpc_call_t *call, worker_t *w, pb_identity_t *id, char sub[129])
{
    rh_diag_t d = {{0}};
    if (pb_auth_verify(w->pb->jwt, grpc_call_header(call, "authorization"),
                       rh_real_ms() / 1000, id, sub, &d) == RH_OK)
        return true;
    security_refusal(call, w, GRPC_UNAUTHENTICATED, NULL, "%s", d.text);
    return false;
}

bool pb_call_covers(grpc_call_t *call, worker_t *w, const pb_identity_t *id, const char *sub,
                    const char *field, uint32_t net_id, const char *tenant, unsigned right)
{
    char n[7];
    lw_netid_format(net_id & 0xFFFFFFu, n, 0);
    if (!pb_identity_covers(id, net_id, tenant)) {
        security_refusal(call, w, GRPC_PERMISSION_DENIED, sub,
                         "%s_net_id/%s_tenant_id: NetID %s tenant \"%s\" is not covered by the "
                         "token", field, field, n, tenant ? tenant : "");
        return false;
    }
    if (!pb_identity_has_right(id, right)) {
        security_refusal(call, w, GRPC_PERMISSION_DENIED, sub,
                         "the token lacks the right %u this method needs", right);
        return false;
    }
    return true;
}

ProtobufCMessage *pb_call_begin(grpc_call_t *call, worker_t *w,
                                const ProtobufCMessageDescriptor *desc, const uint8_t *msg,
                                size_t len, pb_identity_t *id, char sub[129])
{
    if (!pb_call_auth(call, w, id, sub))
        return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, msg);
    char why[160];
    if (!m) {
        pb_call_invalid(call, desc->short_name, "does not decode");
    } else if (!pb_message_valid(m, why, sizeof why)) {
        pb_call_invalid(call, desc->short_name, why);
        protobuf_c_message_free_unpacked(m, NULL);
        m = NULL;
    }
    return m;
}

bool pb_message_valid(const ProtobufCMessage *m, char *why, size_t cap)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0) {
            snprintf(why, cap, "field number 0 in %s", d->short_name);
            return false;
        }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *a = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (a[k] && !pb_message_valid(a[k], why, cap))
                    return false;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue; /* another member of the oneof holds the union */
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)(base + f->offset);
        if (sub && !pb_message_valid(sub, why, cap))
            return false;
    }
    return true;
}

bool pb_call_identity(grpc_call_t *call, worker_t *w, const pb_identity_t *id, const char *sub,
                      const char *field, uint32_t net_id, const char *tenant,
                      const char *cluster, unsigned right, pb_ids_t *out)
{
    return pb_call_ids(call, field, net_id, tenant, cluster, out) &&
           pb_call_covers(call, w, id, sub, field, out->net_id, out->tenant, right);
}

void pb_report_done(grpc_call_t *call, worker_t *w, const char *dir, const char *msg_id,
                    const char *error_name)
{
    /* metrics_event keeps the name pointer: static spellings only */
    static const char *const names[] = {"pb_uplink_report_ok", "pb_uplink_report_error",
                                        "pb_downlink_report_ok", "pb_downlink_report_error"};
    metrics_event(w->metrics, names[(strcmp(dir, "uplink") ? 2 : 0) + (error_name ? 1 : 0)]);
    RH_LOG(RH_LOG_DEBUG, "pb", "delivery report dir=%s id=%s result=%s", dir, msg_id,
           error_name ? error_name : "success");
    Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
    pb_call_reply(call, &e.base);
}

bool pb_call_ids(grpc_call_t *call, const char *field, uint32_t net_id, const char *tenant,
                 const char *cluster, pb_ids_t *out)
{
    char what[64];
    memset(out, 0, sizeof *out);
    if (net_id > 0xFFFFFFu) {
        snprintf(what, sizeof what, "%s_net_id", field);
        pb_call_invalid(call, what, "not a 24-bit NetID");
        return false;
    }
    if (tenant && strlen(tenant) > PB_ID_MAX) {
        snprintf(what, sizeof what, "%s_tenant_id", field);
        pb_call_invalid(call, what, "longer than 64 bytes");
        return false;
    }
    if (cluster && strlen(cluster) > PB_ID_MAX) {
        snprintf(what, sizeof what, "%s_cluster_id", field);
        pb_call_invalid(call, what, "longer than 64 bytes");
        return false;
    }
    out->net_id = net_id;
    snprintf(out->tenant, sizeof out->tenant, "%s", tenant ? tenant : "");
    snprintf(out->cluster, sizeof out->cluster, "%s", cluster ? cluster : "");
    return true;
}

void pb_call_invalid(grpc_call_t *call, const char *what, const char *why)
{
    char m[240];
    snprintf(m, sizeof m, "%s: %s", what, why);
    grpc_call_finish(call, GRPC_INVALID_ARGUMENT, m);
}

void pb_call_reply(grpc_call_t *call, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    protobuf_c_message_pack(msg, buf);
    int rc = grpc_call_send(call, buf, n);
    free(buf);
    grpc_call_finish(call, rc == RH_OK ? GRPC_OK : GRPC_INTERNAL,
                     rc == RH_OK ? NULL : "reply could not be queued");
}

/* ------------------------------------------------------------------ statistics */

void pb_count(worker_t *w, uint32_t fwd_net_id, uint32_t home_net_id, rp_protocol_t home_proto,
              rp_class_t cls, rp_outcome_t outcome, const char *result_code, uint64_t recv_ns,
              const char *sender)
{
    /* the relay core's one counting site: same statistics and capture semantics as TS002 */
    relay_count(w, (relay_fwd_t){.kind = RP_STATS_ID_NETID, .id = fwd_net_id}, home_net_id,
                RP_PROTO_PACKET_BROKER, home_proto, BI_MT_UNKNOWN, 0, cls, outcome, result_code,
                recv_ns, sender);
}

static void hook_sent(worker_t *w, const pb_item_meta_t *m)
{
    metrics_event(w->metrics, "pb_delivered");
    if (m->bridged)
        return; /* the relay transaction counts its outcome */
    pb_count(w, m->fwd_net_id, m->home_net_id,
             m->home_ts002 ? RP_PROTO_TS002 : RP_PROTO_PACKET_BROKER, m->cls, RP_OUT_FORWARDED,
             NULL, m->recv_ns, NULL);
}

static void hook_fail(worker_t *w, const pb_item_meta_t *m, rp_outcome_t outcome, const char *why)
{
    metrics_event(w->metrics, outcome == RP_OUT_TIMEOUT ? "pb_hold_expired" : "pb_queue_full");
    char f[7], h[7];
    lw_netid_format(m->fwd_net_id, f, 0);
    lw_netid_format(m->home_net_id, h, 0);
    RH_LOG(RH_LOG_INFO, "pb", "message failed id=%s forwarder=%s home=%s reason=\"%s\"", m->id,
           f, h, why);
    if (m->bridged)
        return; /* the transaction's answer deadline fails it and counts */
    pb_count(w, m->fwd_net_id, m->home_net_id,
             m->home_ts002 ? RP_PROTO_TS002 : RP_PROTO_PACKET_BROKER, m->cls, outcome, NULL,
             m->recv_ns, NULL);
}

const pb_router_hooks_t pb_router_hooks = {.on_sent = hook_sent, .on_fail = hook_fail};

/* ------------------------------------------------------------------ helpers */

void pb_timestamp_now(Google__Protobuf__Timestamp *ts)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    google__protobuf__timestamp__init(ts);
    ts->seconds = t.tv_sec;
    ts->nanos = (int32_t)t.tv_nsec;
}

void pb_hop_fill(Org__Packetbroker__V3__RouteHop *hop, Google__Protobuf__Timestamp *ts,
                 const pb_service_t *svc, grpc_call_t *call, const char *sender)
{
    org__packetbroker__v3__route_hop__init(hop);
    hop->received_at = ts;
    hop->sender_name = (char *)(sender ? sender : "");
    hop->sender_address = (char *)grpc_call_peer(call);
    hop->receiver_name = (char *)"roamhub";
    hop->receiver_agent = (char *)svc->agent;
    hop->protocol = ORG__PACKETBROKER__V3__PROTOCOL__GRPC;
}

const peer_member_t *pb_member_of(worker_t *w, uint32_t net_id, const char *tenant)
{
    const peer_member_t *m = NULL;
    peer_registry_member_by_netid(worker_registry(w), net_id, tenant && *tenant ? tenant : NULL,
                                  &m);
    return m;
}

bool pb_call_rate(grpc_call_t *call, worker_t *w, const peer_member_t *m)
{
    if (!m || peer_member_rate_allow(m, rh_mono_ns()))
        return true;
    metrics_event(w->metrics, "rate_limited");
    grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "rate limit exceeded: retry later");
    return false;
}

void pb_subscribe_cancel(grpc_call_t *call, void *arg)
{
    worker_t *w = arg;
    pb_stream_t *s = grpc_call_user(call);
    if (s) {
        grpc_call_set_user(call, NULL);
        pb_router_stream_closed(w->pb->router, s);
    }
}
