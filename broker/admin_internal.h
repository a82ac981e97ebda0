/*
 * admin_internal.h — what the admin API's files share (internal to broker/admin*.c): the API
 * state, the per-request context, the reply helpers (admin_reply.c) that give every response the
 * same shape — JSON, errors as {"error": {"code": N, "message": "..."}}, gzip when the client
 * accepts it — and the record helpers the resource files share. Dependencies point one way:
 * admin_api.c (router) -> handlers (admin_resources/keys/views/stats/capture.c) ->
 * admin_reply.c, admin_scope.c. The hub is told about registry changes through the
 * registry_changed hook, so no admin file calls into hub.c.
 *
 * Everything here runs on the main thread (the admin listener's event loop), except the statistics
 * thread of admin_stats.c, which touches only its own jobs and the LMDB environment, and the
 * registry thread of admin_registry.c, which only builds the next member registry.
 */
#ifndef RH_ADMIN_INTERNAL_H
#define RH_ADMIN_INTERNAL_H

#include "admin.h"
#include "admin_auth.h"
#include "admin_jwt.h"
#include "admin_scope.h"
#include "capture.h"
#include "gateways.h"
#include "hub.h"
#include "lw_netid.h"

#include <cjson/cJSON.h>
#include <stdint.h>

#define ADMIN_MAX_SEGS 8

typedef struct admin_download admin_download_t;
typedef struct admin_console admin_console_t;
typedef struct admin_follow admin_follow_t;
typedef struct admin_stats admin_stats_t;
typedef struct admin_registry admin_registry_t;

struct admin_api {
    hub_t *hub;                   /* the listener's process (admin.c, stats, capture) */
    rp_db_t *db;                  /* the routing table: records, keys, audit, import */
    admin_registry_hooks_t reg_hooks; /* admin.h; set by admin_new */
    admin_registry_t *registry;   /* member/endpoint writes in progress (admin_registry.c), lazy */
    hs_server_t *srv;
    admin_jwt_t *jwt;
    rp_reader_t *reader;          /* route table view (main thread only) */
    admin_download_t *downloads;  /* captures awaiting their end (admin_capture.c) */
    admin_follow_t *follows;      /* live capture streams (admin_capture_stream.c) */
    admin_console_t *console;     /* web console files (admin_console.c); NULL = disabled */
    gw_store_t *gws;              /* the gateway store (gateways.h), owned here; published in
                                   * gateways_global while the console is enabled, kept (not
                                   * freed) when a reload disables it: a worker may still hold
                                   * the pointer. Freed by admin_free after the workers stop. */
    admin_stats_t *stats;         /* statistics thread and its queue (admin_stats.c), lazy */
    struct offload *cluster_metrics; /* GET /metrics/cluster's helper thread, lazy */
    unsigned cluster_metrics_queued; /* its requests waiting or running (listener loop) */
};

typedef struct admin_req {
    admin_api_t *a;
    hs_req_t *req;
    const char *method;
    char pathbuf[1024];
    char *seg[ADMIN_MAX_SEGS];    /* percent-decoded path segments after /api/v1/ */
    int nseg;
    admin_principal_t p;
    int64_t now_s;
    char location[1200];          /* Location of a 201 (set by admin_reply_json) */
    const char *allow;            /* methods the path allows, as in docs/openapi.yaml
                                     (a 405's Allow header): set by the router */
} admin_req_t;

/* Routes one /api/v1/ request (admin.c calls it). */
void admin_api_handle(admin_api_t *a, hs_req_t *req);

/* Replies (and frees the hs request). JSON bodies are consumed. Responses are gzip-compressed
 * when the request's Accept-Encoding allows gzip. */
void admin_reply_json(admin_req_t *r, int status, cJSON *body);
void admin_reply_error(admin_req_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void admin_reply_body(admin_req_t *r, int status, const char *ctype, const void *body,
                      size_t len);

/* 503 with Retry-After: 1 and the error body naming `why` (a bounded queue is full). */
void admin_reply_busy(admin_req_t *r, const char *why);

/* HTTP status for an RH_E* code from storage/validation. */
int admin_status_of(int rc);

/* Query parameter `name`, percent-decoded, into out. 1 = present, 0 = absent, -1 = too long or
 * malformed. */
int admin_query(const admin_req_t *r, const char *name, char *out, size_t cap);

/* Boolean query parameter `name`: exactly "true" or "false". 1 = present (*out set), 0 = absent
 * (*out untouched), -1 = anything else: a 400 naming the parameter has been sent. */
int admin_query_bool(admin_req_t *r, const char *name, int *out);

/* Checks every query parameter once, before any handler reads one: each name and value must
 * percent-decode (no %00, no control character, no truncated escape), as path segments must.
 * 0, or -1 with a 400 naming the parameter sent. */
int admin_query_valid(admin_req_t *r);

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated); plus: '+' is a space (form
 * encoding). Returns 0, or -1 for a malformed escape, a control character (decoded or not) or
 * no room. */
int admin_pct_decode(const char *s, size_t n, char *out, size_t cap, int plus);

/* Whether the request's Content-Type is the media type `type` (case-insensitive; parameters
 * such as charset allowed). */
int admin_content_type_is(const admin_req_t *r, const char *type);


/* Parses the request body as a JSON object. On failure replies 400 itself and returns NULL. */
cJSON *admin_body_json(admin_req_t *r);

/* Whether the client accepts gzip; gzip (RFC 1952) compression of a buffer (malloc'd). */
int admin_accepts_gzip(const admin_req_t *r);
int admin_gzip(const void *in, size_t len, uint8_t **out, size_t *outlen);

/* ---- record helpers shared by admin_resources.c, admin_keys.c, admin_views.c ---- */

enum {
    R_READ_NETWORK = ROAMHUB__V1__RIGHT__RIGHT_READ_NETWORK,
    R_READ_ROUTES = ROAMHUB__V1__RIGHT__RIGHT_READ_ROUTES,
    R_READ_POLICY = ROAMHUB__V1__RIGHT__RIGHT_READ_ROUTING_POLICY,
    R_WRITE_POLICY = ROAMHUB__V1__RIGHT__RIGHT_WRITE_ROUTING_POLICY,
    R_READ_BLOCKS = ROAMHUB__V1__RIGHT__RIGHT_READ_DEVADDR_BLOCKS,
    R_WRITE_BLOCKS = ROAMHUB__V1__RIGHT__RIGHT_WRITE_DEVADDR_BLOCKS,
    R_READ_TRAFFIC = ROAMHUB__V1__RIGHT__RIGHT_READ_TRAFFIC,
    R_ADMIN = ROAMHUB__V1__RIGHT__RIGHT_ADMIN,
    R_WRITE_NETWORK = ROAMHUB__V1__RIGHT__RIGHT_WRITE_NETWORK,
};


/* NetID as 6 hex digits into out. */
static inline const char *admin_netid_text(uint32_t n, char out[7])
{
    lw_netid_format(n, out, 0);
    return out;
}

/* A record resource of /api/v1/ (admin_resources.c's table). */
typedef struct admin_res {
    const char *name;     /* path segment */
    rp_kind_t kind;
    int read_right, write_right;
    int operator_only;
} admin_res_t;

/* JSON of a record for a response, secrets removed (endpoint authorization -> authorization_set,
 * API key hash and salt). NULL on ENOMEM. */
cJSON *admin_record_json(rp_kind_t kind, const ProtobufCMessage *m);

/* Frees an unpacked record; NULL is a no-op. */
void admin_free_msg(ProtobufCMessage *m);

/* Loads the record at key; NULL with 404 replied when missing or not visible to the caller
 * (write: visible for changing). Caller frees with admin_free_msg. */
ProtobufCMessage *admin_load_visible(admin_req_t *r, const admin_res_t *res, ProtobufCMessage *key,
                                     int write);

/* Tells the hub that Member/Endpoint records changed (the registry_changed hook, admin.h): one
 * record (kind, upserted or deleted) or, both NULL, many (import). */
int admin_registry_changed(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *upserted,
                           const ProtobufCMessage *deleted, rh_diag_t *d);

/* Every admin write of one record goes through here (cluster_table.h): on a single node it is
 * applied to the local table at once (table_change_apply with the registry hook); in a cluster
 * it goes through the table stream and is applied by every node (cluster_write), the outcome
 * being this node's application of it. op TABLE_OP_PUT with mode, or TABLE_OP_DELETE (m = the
 * key fields; *deleted may be NULL). Returns RH_OK or the error with diag: RH_EINVAL (invalid
 * field, or the member registry refused: undone), RH_EEXIST, RH_ENOTFOUND, RH_EAGAIN (cluster:
 * no NATS / not caught up / not stored; nothing changed), RH_ETIMEDOUT, RH_EFULL, RH_EIO. */
int admin_table_write(admin_req_t *r, table_op_t op, rp_kind_t kind, const ProtobufCMessage *m,
                      rp_put_mode_t mode, int *deleted, rh_diag_t *d);

/* Member/Endpoint writes (admin_registry.c). The next registry is built on the registry thread
 * (the admin loop answers /healthz meanwhile), then on the loop the record is stored (rp_put
 * with `mode`, or rp_delete when `del`) and that registry published; writes run one at a time in
 * arrival order. Afterwards `done` runs on the loop with r (a held copy of the request: reply
 * through it), the records, and status 0 (stored) or the HTTP status with d naming the reason
 * (422: the registry refused the record, nothing stored; 409/5xx from the store; 503 at
 * shutdown or with too many writes waiting). Takes ownership of m and old (freed after done). */
typedef void (*admin_registry_done_fn)(admin_req_t *r, rp_kind_t kind, const ProtobufCMessage *m,
                                       const ProtobufCMessage *old, int status, rh_diag_t *d);
void admin_registry_write(admin_req_t *r, rp_kind_t kind, int del, rp_put_mode_t mode,
                          ProtobufCMessage *m, ProtobufCMessage *old, admin_registry_done_fn done);
void admin_registry_fini(admin_api_t *a); /* answers writes in progress 503 (shutdown) */

/* Copies a request to answer it later (off this handler): the copy's segments point into its own
 * path buffer; r->req is taken (NULL afterwards, so r is no longer replied through). */
void admin_req_hold(admin_req_t *r, admin_req_t *copy);

/* API keys (admin_keys.c): POST /keys, DELETE /keys/{id}. Reply themselves. */
void admin_key_create(admin_req_t *r);
void admin_key_revoke(admin_req_t *r, const admin_res_t *res, ProtobufCMessage *key);

/* Read-only views and import (admin_views.c): catalog, policies/effective, routes, audit,
 * import. Returns 1 when the request was one of them (and was replied to), else 0. */
int admin_views_handle(admin_req_t *r);

/* Query parameters (admin_params.c). Each returns 0 when absent (out unchanged; netid: RP_ANY)
 * or valid, and -1 after replying 400 naming the parameter ("seconds: expected an integer in
 * 1..60", "net_id: <the NetID parser's reason>"). */
int admin_query_uint(admin_req_t *r, const char *name, unsigned lo, unsigned hi, unsigned *v);
int admin_query_netid(admin_req_t *r, const char *name, uint32_t *out);

/* Unix ms as RFC 3339 UTC with milliseconds ("2026-12-06T08:01:45.541Z"). */
#define ADMIN_TIME_TEXT 40
void admin_time_text(int64_t ms, char out[ADMIN_TIME_TEXT]);

/* Handlers by area. */
void admin_resources_handle(admin_req_t *r);   /* networks ... keys, import, catalog, routes,
                                                  audit, policies/effective */
void admin_stats_handle(admin_req_t *r);       /* GET /stats (answered later, off this loop) */
void admin_stats_fini(admin_api_t *a);
/* GET /metrics/cluster (admin_cluster_metrics.c) and its shutdown. */
void admin_cluster_metrics_serve(admin_api_t *a, hs_req_t *req);
void admin_cluster_metrics_fini(admin_api_t *a);
/* This node's /metrics text (admin.c): malloc'd, NULL on ENOMEM; any thread. */
char *admin_metrics_text(hub_t *hub);         /* stops the statistics thread (shutdown) */
void admin_capture_handle(admin_req_t *r);     /* GET /capture */
void admin_capture_fini(admin_api_t *a);       /* ends captures in progress (shutdown) */
/* GET /capture?follow=true: the live stream (SSE or chunked JSON lines), admin_capture_stream.c.
 * Called by admin_capture_handle after the rights check with the validated parameters. */
void admin_capture_follow(admin_req_t *r, unsigned seconds, unsigned max_events);
void admin_capture_follow_fini(admin_api_t *a); /* ends live streams (shutdown) */
/* Starts a capture in the principal's scope (operator: all; member: its NetID); on failure
 * replies itself (503 too many captures, 400) and returns the RH_E* code
 * (admin_capture_stream.c). */
int admin_capture_start(admin_req_t *r, unsigned max_events, capture_t **out);
/* Stops a capture admin_capture_start started (the other cluster nodes stop feeding it first).
 * NULL is a no-op. */
void admin_capture_stop(admin_api_t *a, capture_t *cap);
/* One capture event as a JSON object line ("{...}\n") into out (admin_capture_stream.c). */
void admin_capture_event_line(admin_api_t *a, const capture_event_t *e, char *out, size_t cap);
void admin_gateways_handle(admin_req_t *r);    /* GET /gateways (admin_gateways.c) */
void admin_health_handle(admin_req_t *r);      /* GET /endpoint-health (admin_health.c) */
void admin_console_settings(admin_req_t *r);   /* GET /console (admin_console.c) */

/* Latency percentile (q in 0..1) in ms from a statistics item's log2-µs histogram
 * (admin_stats.c; exact to a factor of two). */
double admin_stats_pct_ms(const rp_stats_item_t *it, double q);

/* The web console's static files (admin_console.c). admin_console_new loads the built assets
 * (config console.dir or beside the executable); missing assets are not an error (the console
 * then answers 503). Errors: RH_EIO (console.dir set but unreadable), RH_ENOMEM. */
int admin_console_new(const rh_config_t *cfg, admin_console_t **out, rh_diag_t *d);
void admin_console_free(admin_console_t *c);
/* Answers "/", "/console" and "/console/<file>" and returns 1; 0 for any other path. */
int admin_console_handle(admin_api_t *a, hs_req_t *req);

#endif
